#!/bin/bash
# Soak (issue 9): SOAK_MIN minutes of mixed HTTP/1.1 and h2c load with
# connection churn through an attached l7tap, sampling the daemon's RSS and
# CPU every SAMPLE_S seconds. Not a test: a measurement for bench/README.md.
#   bench/soak.sh BUILD/daemon/l7tap
# Root. Uses the veth test bed of testbed.sh (namespaces l7sk<N>-{a,b,n},
# 10.84.x addresses, removed on exit, also on failure or Ctrl-C).
#
# Load: two loops, one HTTP/1.1 and one h2c (prior knowledge), each running
# h2load batches back to back: CLIENTS new connections per batch, each making
# PER_CONN requests at RPS requests/s per connection, then closing. So every
# few seconds both loops open and close a new set of connections. The sum of
# the batches' "succeeded" is what the clients did; the records must match it.
#
# Environment (defaults): SOAK_MIN=30, SAMPLE_S=10, CLIENTS=4, PER_CONN=50,
# RPS=25 (per connection: 2 x 4 x 25 = 200 req/s in all), OUT=directory for
# samples.tsv, summary.txt and soak.png (default /tmp/l7tap-soak.DATE; kept),
# KEEP_RECORDS=0 (1 keeps the daemon's records.jsonl in OUT).
set -euo pipefail
L7=$(realpath "${1:?usage: soak.sh PATH/TO/l7tap}")
SOAK_MIN=${SOAK_MIN:-30} SAMPLE_S=${SAMPLE_S:-10}
CLIENTS=${CLIENTS:-4} PER_CONN=${PER_CONN:-50} RPS=${RPS:-25}
KEEP_RECORDS=${KEEP_RECORDS:-0}
OUT=${OUT:-/tmp/l7tap-soak.$(date +%Y%m%d-%H%M%S)}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/testbed.sh
. "$HERE/testbed.sh"
[ "$(id -u)" = 0 ] || { echo "soak.sh: run as root" >&2; exit 1; }
[ -x "$L7" ] || { echo "soak.sh: $L7 is not executable" >&2; exit 1; }

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
if [ ${#need[@]} -gt 0 ]; then
  echo "soak.sh: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

P=l7sk$(( $$ % 10000 ))
A=$P-a B=$P-b N=$P-n
TMP=$(mktemp -d /tmp/l7sk.XXXXXX)
mkdir -p "$OUT"
L7PID=
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  [ -n "$L7PID" ] && kill -9 "$L7PID" 2>/dev/null
  jobs -p | xargs -r kill 2>/dev/null
  testbed_down
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

testbed_up "$P" 10.84
SRV=10.84.2.2
mkdir -p "$TMP/www"
printf 'thirty-five bytes of small file...\n' >"$TMP/www/small.txt"
head -c 20000 /dev/zero | tr '\0' 'x' >"$TMP/www/medium.txt"
cat >"$TMP/nginx.conf" <<CONF
worker_processes 1; pid $TMP/nginx.pid; error_log $TMP/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP;
  uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  server { listen 8080; listen 8081 http2; root $TMP/www; } }
CONF
ip netns exec $B nginx -c "$TMP/nginx.conf"

ip netns exec $N "$L7" attach --iface "$P*" --output json --metrics-addr none >"$TMP/records.jsonl" 2>"$OUT/l7tap.err" &
L7PID=$!
for _ in $(seq 100); do
  [ "$(grep -c 'attached to' "$OUT/l7tap.err" || true)" -ge 2 ] && break
  kill -0 $L7PID 2>/dev/null || { cat "$OUT/l7tap.err" >&2; exit 1; }
  sleep 0.1
done

# One load loop: $1 label, then h2load's protocol options. Appends each
# batch's succeeded/failed counts to $TMP/$1.counts until $END.
END=$(( $(date +%s) + SOAK_MIN * 60 ))
load_loop() {
  local label=$1 i=0 path; shift
  while [ "$(date +%s)" -lt $END ]; do
    # Alternate small and 20 KB responses so bodies cross several packets.
    if (( i++ % 2 )); then path=medium.txt; else path=small.txt; fi
    ip netns exec $A h2load "$@" -c "$CLIENTS" -n $((CLIENTS * PER_CONN)) --rps "$RPS" \
      "http://$SRV:$PORT/$path" 2>&1 |
      awk '/^requests:/ {print $8, $10}' >>"$TMP/$label.counts"
  done
}
PORT=8080 load_loop h1 --h1 &
PORT=8081 load_loop h2c &

HZ=$(getconf CLK_TCK)
echo -e "elapsed_s\trss_kb\tcpu_ticks\tcpu_pct\trecords" >"$OUT/samples.tsv"
T0=$(date +%s) prev_t=$T0 prev_ticks=$(awk '{print $14 + $15}' /proc/$L7PID/stat)
while [ "$(date +%s)" -lt $END ]; do
  sleep "$SAMPLE_S"
  now=$(date +%s)
  rss=$(awk '/^VmRSS/ {print $2}' /proc/$L7PID/status)
  ticks=$(awk '{print $14 + $15}' /proc/$L7PID/stat)
  pct=$(awk -v d=$((ticks - prev_ticks)) -v s=$((now - prev_t)) -v hz="$HZ" \
    'BEGIN {printf "%.2f", s ? 100 * d / hz / s : 0}')
  prev_t=$now prev_ticks=$ticks
  echo -e "$((now - T0))\t$rss\t$ticks\t$pct\t$(wc -l <"$TMP/records.jsonl")" >>"$OUT/samples.tsv"
done
wait %2 %3 2>/dev/null || true
sleep 2  # the last batches' FINs reach the ring
kill -INT $L7PID
wait $L7PID || true
L7PID=

sum() { awk -v c="$2" '{s += $c} END {print s + 0}' "$TMP/$1.counts"; }
requests=$(( $(sum h1 1) + $(sum h2c 1) ))
failed=$(( $(sum h1 2) + $(sum h2c 2) ))
http=$(grep -c '"type":"http"' "$TMP/records.jsonl" || true)
ok=$(grep '"type":"http"' "$TMP/records.jsonl" | grep -c '"http.response.status_code":200' || true)
# Capture control skips known-length bodies, flagged "gap"; any other flag
# (no_response, truncated, ...) would say something went wrong.
other_flags=$(grep '"type":"http"' "$TMP/records.jsonl" | grep -o '"l7tap.flags":\[[^]]*\]' |
  grep -vc '^"l7tap.flags":\["gap"\]$' || true)
conns=$(grep -c '"type":"conn"' "$TMP/records.jsonl" || true)
{
  echo "date $(date -Is) kernel $(uname -r) cpus $(nproc) minutes $SOAK_MIN"
  echo "load: 2 loops (h1, h2c) x $CLIENTS connections x $PER_CONN requests at $RPS req/s each"
  echo "requests_succeeded $requests failed $failed"
  echo "http_records $http status_200 $ok flags_other_than_gap $other_flags connection_records $conns"
  awk -F'\t' -v hz="$HZ" 'NR == 2 {r0 = $2; t0 = $1; c0 = $3}
    NR > 1 {if ($2 > max) max = $2; if (min == "" || $2 < min) min = $2; r1 = $2; t1 = $1; c1 = $3}
    END {printf "rss_kb first %d last %d min %d max %d; cpu %.4f cores\n", r0, r1, min, max,
         (c1 - c0) / hz / (t1 - t0)}' "$OUT/samples.tsv"
  grep -E 'ringbuf_full|events|packets' "$OUT/l7tap.err" | tail -5
} | tee "$OUT/summary.txt"
[ "$KEEP_RECORDS" = 1 ] && mv "$TMP/records.jsonl" "$OUT/"

gnuplot <<PLOT
set terminal png size 900,450
set output "$OUT/soak.png"
set title "l7tap soak: daemon RSS and CPU, $SOAK_MIN min of HTTP/1.1 + h2c with connection churn"
set xlabel "minutes"
set ylabel "RSS (MB)"
set y2label "CPU (% of a core)"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set datafile separator "\t"
plot "$OUT/samples.tsv" every ::1 using (\$1/60):(\$2/1024) with lines title "RSS" axes x1y1, \
     "" every ::1 using (\$1/60):4 with lines title "CPU" axes x1y2
PLOT
echo "soak.sh: results in $OUT" >&2
[ "$requests" = "$http" ] && [ "$requests" = "$ok" ] ||
  { echo "soak.sh: $requests requests but $http records ($ok with status 200)" >&2; exit 1; }
