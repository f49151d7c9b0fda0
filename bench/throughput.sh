#!/usr/bin/env bash
# Replay throughput on large generated captures, side by side with tshark.
#
#   bench/throughput.sh [BUILD_DIR] [WORK_DIR]
#
# BUILD_DIR (default build) has daemon/l7tap and bench/l7tap_gen_capture.
# WORK_DIR (default /tmp/l7tap-throughput) receives the generated captures
# (about 1.2 GB; kept for a second run, delete it afterwards).
# PRESETS="http1-1m h2-200k mix-1mb", RUNS=3 and CPU=1 (the core) may be
# overridden; SCALE=0.1 makes every capture ten times smaller (a quick look,
# not a figure).
#
# For each capture and window (256, 1024, unlimited) it runs
#   taskset -c 1 l7tap replay [--window N] -o /dev/null --quiet FILE
# RUNS times and takes the median of its CPU time (user + system: the one
# core's worth of work, robust to other load on the machine) and of its wall
# time, then tshark once on the same core (HTTP/1: -Y http; HTTP/2:
# -d tcp.port==PORT,http2 -Y http2.type==1; fields of the request and the
# response), and prints one table. Exchanges
# are the HTTP exchanges (HTTP/2 streams) in the file, as the generator
# counts them; MB/s is captured bytes (packet data, as l7tap's summary counts
# it) per CPU second; the ratio is tshark's CPU time over l7tap's.
set -euo pipefail

build=${1:-build}
work=${2:-/tmp/l7tap-throughput}
presets=${PRESETS:-http1-1m h2-200k mix-1mb}
runs=${RUNS:-3}
scale=${SCALE:-1}
cpu=${CPU:-1}
l7tap=$build/daemon/l7tap
gen=$build/bench/l7tap_gen_capture
for f in "$l7tap" "$gen"; do
  [[ -x $f ]] || { echo "throughput.sh: $f not built" >&2; exit 1; }
done
command -v tshark >/dev/null || { echo "throughput.sh: tshark not installed" >&2; exit 1; }
mkdir -p "$work"

median() { sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
# Runs "$@" on one core; sets wall and cpu (seconds).
timed() {
  /usr/bin/time -f '%e %U %S' -o "$work/time.txt" taskset -c "$cpu" "$@"
  read -r wall user sys <"$work/time.txt"
  cpu_s=$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u + s}')
}

rows=()
for preset in $presets; do
  file=$work/$preset.pcap
  info=$work/$preset.info
  if [[ ! -s $file || ! -s $info || $(cat "$work/$preset.scale" 2>/dev/null) != "$scale" ]]; then
    "$gen" --scale "$scale" "$preset" "$file" >"$info"
    echo "$scale" >"$work/$preset.scale"
  fi
  # file=... packets=N bytes=N connections=N exchanges=N seconds=S server_port=P
  eval "$(tr ' ' '\n' <"$info" | grep -E '^(packets|bytes|connections|exchanges|server_port)=')"
  cat "$file" >/dev/null  # page cache: measure parsing, not the disk
  for window in 256 1024 unlimited; do
    opt=()
    [[ $window != unlimited ]] && opt=(--window "$window")
    walls=()
    cpus=()
    for ((r = 0; r < runs; r++)); do
      timed "$l7tap" replay "${opt[@]}" -o /dev/null --quiet "$file"
      walls+=("$wall")
      cpus+=("$cpu_s")
    done
    wmed=$(printf '%s\n' "${walls[@]}" | median)
    cmed=$(printf '%s\n' "${cpus[@]}" | median)
    all=$(printf '%s\n' "${cpus[@]}" | sort -n | paste -sd/)
    rows+=("$preset $window $cmed $wmed $all")
    echo "  $preset window $window: cpu ${all} s, wall $(printf '%s\n' "${walls[@]}" | paste -sd/) s" >&2
  done
  if [[ $preset == h2* ]]; then
    targs=(-d "tcp.port==$server_port,http2" -Y http2.type==1 -e http2.headers.method
      -e http2.headers.path -e http2.headers.status)
  else
    targs=(-Y http -e http.request.method -e http.request.uri -e http.response.code)
  fi
  timed tshark -n -r "$file" "${targs[@]}" -T fields >"$work/tshark.out" 2>/dev/null
  key=${preset//-/_}
  declare "tshark_$key=$cpu_s $wall"
  declare "meta_$key=$exchanges $bytes $packets"
  echo "  $preset tshark: cpu $cpu_s s, wall $wall s, $(wc -l <"$work/tshark.out") lines" >&2
  rm -f "$work/tshark.out"
done

printf '\n| capture | window | l7tap CPU s (runs) | wall s | exchanges/s per core | captured MB/s | tshark CPU s (wall) | tshark exchanges/s | l7tap / tshark |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for row in "${rows[@]}"; do
  read -r preset window cmed wmed all <<<"$row"
  key=${preset//-/_}
  meta=meta_$key
  ts=tshark_$key
  read -r exchanges bytes packets <<<"${!meta}"
  read -r tcpu twall <<<"${!ts}"
  awk -v p="$preset" -v w="$window" -v c="$cmed" -v wl="$wmed" -v all="$all" -v ex="$exchanges" \
    -v by="$bytes" -v tc="$tcpu" -v tw="$twall" 'BEGIN {
      rate = ex / c; trate = ex / tc
      printf "| %s | %s | %.2f (%s) | %.2f | %.0f k | %.0f | %.1f (%.1f) | %.1f k | %.0fx |\n",
        p, w, c, all, wl, rate / 1e3, by / 1e6 / c, tc, tw, trate / 1e3, rate / trate
    }'
done
