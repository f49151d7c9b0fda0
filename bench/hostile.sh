#!/usr/bin/env bash
# l7tap under hostile traffic: floods, reassembly abuse, HTTP/1 and HTTP/2
# bombs. Memory must stay bounded, losses counted, no record wrong.
#
#   bench/hostile.sh [BUILD_DIR] [WORK_DIR]
#
# BUILD_DIR (default build) has daemon/l7tap and bench/l7tap_gen_hostile;
# WORK_DIR (default /tmp/l7tap-hostile) receives each capture while it is
# replayed (the largest, h1-chunk-16mb and h2-frame-16mb, are about 17 MB;
# the floods 54-85 MB); they are removed afterwards. QUICK=1 divides every
# count by 100 (a check of the script, not a figure).
#
# Each scenario (bench/gen_hostile.cc says what it sends) is replayed as
#   l7tap replay CAPTURE                                       (mode "full")
#   l7tap replay --window 256 --capture-control CAPTURE         (mode "w256+cc")
# and one Markdown table row is printed per run: peak RSS (/usr/bin/time -f
# %M), wall time, HTTP records, how many records carry each flag, and the
# summary's counters (evictions, the "counted:" line, frame walk losses).
set -euo pipefail

build=${1:-build}
work=${2:-/tmp/l7tap-hostile}
l7tap=$build/daemon/l7tap
gen=$build/bench/l7tap_gen_hostile
for f in "$l7tap" "$gen"; do
  [[ -x $f ]] || { echo "hostile.sh: $f not built" >&2; exit 1; }
done
mkdir -p "$work"
trap 'rm -f "$work"/hostile.pcap' EXIT

# scenario count
scenarios=(
  "syn-flood 100000" "syn-flood 300000" "syn-flood 1000000"
  "data-flood 100000" "data-flood 1000000"
  "ooo-hole 100000" "overlap-conflict 10000" "seq-wrap 10000"
  "h1-headers 100000" "h1-header-line 1048576" "h1-chunk-16mb 16777216"
  "h1-chunk-overflow 1" "h1-pipeline 10000" "h1-slowloris 1000"
  "h2-table-size 1000000" "h2-continuation 1000000" "h2-frame-16mb 1"
  "h2-streams 100000" "h2-settings-flood 1000000" "h2-rapid-reset 100000"
)

# Records and flag counts from the JSON lines on standard input.
count_records() {
  awk '
    /"type":"http"/ {
      n++
      if (match($0, /"l7tap.flags":\[[^]]*\]/)) {
        s = substr($0, RSTART + 15, RLENGTH - 16)
        k = split(s, fl, ",")
        for (i = 1; i <= k; i++) { gsub(/"/, "", fl[i]); c[fl[i]]++ }
      }
    }
    END {
      out = ""
      for (f in c) out = out (out == "" ? "" : ", ") f " " c[f]
      printf "%d\t%s\n", n, (out == "" ? "none" : out)
    }'
}

printf '| scenario | count | mode | packets | peak RSS | wall | HTTP records | flags on records | summary counters |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for entry in "${scenarios[@]}"; do
  read -r name count <<<"$entry"
  [[ ${QUICK:-0} == 1 ]] && count=$(((count + 99) / 100))
  "$gen" "$name" "$work/hostile.pcap" "$count" >"$work/info.txt"
  packets=$(tr ' ' '\n' <"$work/info.txt" | sed -n 's/^packets=//p')
  for mode in full w256+cc; do
    args=()
    [[ $mode == full ]] || args=(--window 256 --capture-control)
    "/usr/bin/time" -f '%M %e' -o "$work/time.txt" \
      "$l7tap" replay "${args[@]}" "$work/hostile.pcap" 2>"$work/summary.txt" |
      count_records >"$work/records.txt"
    read -r rss secs <"$work/time.txt"
    IFS=$'\t' read -r records flags <"$work/records.txt"
    counters=$(sed -n -e 's/^l7tap: \([0-9]* connections evicted.*\)/\1/p' \
      -e 's/^l7tap: counted: //p' \
      -e 's/.*HTTP\/2 frame walk: [0-9]* segments, lost \([1-9][0-9]*\) times.*/frame walk lost \1 times/p' \
      "$work/summary.txt" | paste -sd ';' -)
    printf '| %s | %s | %s | %s | %.1f MB | %.2f s | %s | %s | %s |\n' "$name" "$count" "$mode" \
      "$packets" "$(echo "$rss / 1024" | bc -l)" "$secs" "$records" "$flags" "${counters:-none}"
  done
  rm -f "$work/hostile.pcap"
done
