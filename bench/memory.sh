#!/usr/bin/env bash
# Resident memory of `l7tap replay` with many connections.
#
#   bench/memory.sh [BUILD_DIR] [WORK_DIR]
#
# BUILD_DIR (default build) has daemon/l7tap and bench/l7tap_gen_capture;
# WORK_DIR (default /tmp/l7tap-memory) receives the generated captures
# (about 2 GB; removed at the end unless KEEP=1). SCALE=0.01 shrinks every
# capture (a quick check of the script, not a figure).
#
# Peak RSS (/usr/bin/time -f %M) of `l7tap replay -o /dev/null --quiet` on
#   baseline         pcaps/http1-keepalive.pcap (one connection)
#   conn-open-100k   100,000 connections open at once (handshake + one exchange, never
#                    closed; all closed by the end of the file)
#   conn-closed-1m   connections each closed by FIN, ~1,000 new per second of capture
#                    time: 250,000 and 1,000,000 of them
#   conn-idle-1m     connections never closed, ~100 new per second: idle expiry (300 s)
#                    removes them; 250,000 and 1,000,000 of them
# and prints bytes per tracked connection, (RSS(100k) - RSS(baseline)) / 100,000,
# and whether the over-time runs stay flat from 250 k to 1 M connections seen.
set -euo pipefail

build=${1:-build}
work=${2:-/tmp/l7tap-memory}
l7tap=$build/daemon/l7tap
gen=$build/bench/l7tap_gen_capture
src=$(cd "$(dirname "$0")/.." && pwd)
for f in "$l7tap" "$gen"; do
  [[ -x $f ]] || { echo "memory.sh: $f not built" >&2; exit 1; }
done
mkdir -p "$work"
[[ ${KEEP:-0} == 1 ]] || trap 'rm -f "$work"/conn-*.pcap' EXIT

# peak RSS in KB and wall seconds of one replay
measure() {
  /usr/bin/time -f '%M %e' -o "$work/time.txt" "$l7tap" replay -o /dev/null "$1" 2>"$work/summary.txt"
  read -r rss secs <"$work/time.txt"
  records=$(grep -o '[0-9]* HTTP records' "$work/summary.txt" | cut -d' ' -f1)
  evicted=$(grep -o '[0-9]* connections evicted' "$work/summary.txt" | cut -d' ' -f1 || true)
  echo "$rss $secs $records ${evicted:-0}"
}

printf '| capture | connections | tracked at once (about) | HTTP records | peak RSS | replay wall |\n'
printf '|---|---|---|---|---|---|\n'
read -r base secs records _ <<<"$(measure "$src/pcaps/http1-keepalive.pcap")"
printf '| baseline (http1-keepalive.pcap) | 1 | 1 | %s | %.1f MB | %.2f s |\n' "$records" \
  "$(echo "$base / 1024" | bc -l)" "$secs"

run() {  # preset scale tracked-description
  local file=$work/$1-$2.pcap scale
  scale=$(awk -v a="$2" -v b="${SCALE:-1}" 'BEGIN { print a * b }')
  "$gen" --scale "$scale" "$1" "$file" >"$work/info.txt"
  local conns
  conns=$(tr ' ' '\n' <"$work/info.txt" | sed -n 's/^connections=//p')
  read -r rss secs records evicted <<<"$(measure "$file")"
  rm -f "$file"
  printf '| %s | %s | %s | %s | %.1f MB | %.2f s |\n' "$1" "$conns" "$3" "$records" \
    "$(echo "$rss / 1024" | bc -l)" "$secs"
  [[ $evicted == 0 ]] || echo "  ($evicted connections evicted: table full)"
  peak["$1 $2"]=$rss
  count["$1 $2"]=$conns
}
declare -A peak count
run conn-open-100k 1 100000
run conn-closed-1m 0.25 "5000 (5 s close delay)"
run conn-closed-1m 1 "5000 (5 s close delay)"
run conn-idle-1m 0.25 "30000 (300 s idle)"
run conn-idle-1m 1 "30000 (300 s idle)"

echo
awk -v open="${peak["conn-open-100k 1"]}" -v base="$base" -v n="${count["conn-open-100k 1"]}" 'BEGIN {
  printf "per tracked connection: (%d - %d) KB / %d = %.0f bytes\n", open, base, n,
    (open - base) * 1024 / n }'
for kind in closed idle; do
  quarter=${peak["conn-$kind-1m 0.25"]}
  full=${peak["conn-$kind-1m 1"]}
  echo "over time, $kind: $((quarter / 1024)) MB after ${count["conn-$kind-1m 0.25"]} connections," \
    "$((full / 1024)) MB after ${count["conn-$kind-1m 1"]}"
done
