#!/bin/bash
# CPU per HTTP exchange of writing records, attached: the daemon's and, with
# --output journald, journald's own, by output and --records policy.
#   bench/output_cost.sh NEW/l7tap [BEFORE/l7tap|-] [REQUESTS] [ROUNDS] [OUTPUTS]
# OUTPUTS: "json journald" (default), or one of them.
# Root. The test bed of testbed.sh (namespaces l7out-{a,b,n}, 10.86.x):
# nginx in pod b, h2load --h1 (10 connections) in pod a, l7tap attached to
# the node's veths, JSON lines into a pipe (as a container runtime reads
# them), journald of a journal namespace of its own (l7out) found at the
# usual path through a private mount namespace. CPU is utime+stime from
# /proc/PID/stat (every thread), so other load on the machine does not
# count. BEFORE (a build without --records) runs the `all` rows only.
# Removes everything on exit.
set -euo pipefail
L7=$(realpath "${1:?usage: output_cost.sh NEW/l7tap [BEFORE/l7tap|-] [REQUESTS] [ROUNDS]}")
BEFORE=${2:--}
[ "$BEFORE" = - ] || BEFORE=$(realpath "$BEFORE")
N_REQ=${3:-100000}
ROUNDS=${4:-3}
OUTPUTS=${5:-json journald}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/testbed.sh
. "$HERE/testbed.sh"
TMP=$(mktemp -d /tmp/l7out.XXXXXX)
JNS=l7out$$
JDIR=/run/systemd/journal.$JNS
MACHINE=$(cat /etc/machine-id)
JPID= KPID=
cleanup() {
  set +e
  [ -n "$KPID" ] && kill "$KPID" 2>/dev/null
  [ -n "$JPID" ] && kill "$JPID" 2>/dev/null && wait "$JPID" 2>/dev/null
  testbed_down
  rm -rf "$TMP" "$JDIR" "/var/log/journal/$MACHINE.$JNS" "/run/log/journal/$MACHINE.$JNS"
}
trap cleanup EXIT
testbed_up l7out 10.86
mkdir -p "$TMP/www" "$TMP/bind"
printf 'thirty-five bytes of small file...\n' >"$TMP/www/small.txt"
cat >"$TMP/nginx.conf" <<CONF
worker_processes 1; pid $TMP/nginx.pid; error_log $TMP/error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP;
  uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  server { listen 10.86.2.2:8080; root $TMP/www; } }
CONF
ip netns exec "$B" nginx -c "$TMP/nginx.conf"
/lib/systemd/systemd-journald "$JNS" </dev/null >/dev/null 2>&1 &
JPID=$!
for _ in $(seq 50); do [ -S "$JDIR/socket" ] && break; sleep 0.1; done
# A namespace's journald exits after 30 s without a stream client.
python3 -c 'import socket,sys,time
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(1e6)' "$JDIR/stdout" &
KPID=$!
sleep 0.3
hz=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run LABEL BINARY OUTPUT [ARGS...]: one attached run, one line.
run() {
  local label=$1 bin=$2 output=$3
  shift 3
  ip netns exec "$N" unshare -m --propagation private sh -c \
    'mount --bind "$1" "$2" && mount -t tmpfs l7out /run/systemd && mkdir /run/systemd/journal &&
     mount --bind "$2" /run/systemd/journal && shift 2 && exec "$@"' sh "$JDIR" "$TMP/bind" \
    "$bin" attach --iface "$P*" --output "$output" --metrics-addr none --interim 0 "$@" \
    2>"$TMP/err" | cat >/dev/null &
  local reader=$! pid
  for _ in $(seq 50); do
    pid=$(pgrep -f -n "^$bin attach --iface $P" || true)
    [ -n "$pid" ] && grep -q 'stop with SIGINT' "$TMP/err" && break
    sleep 0.1
  done
  local d0 j0 d1 j1
  d0=$(cpu "$pid") j0=$(cpu "$JPID")
  ip netns exec "$A" h2load --h1 -n "$N_REQ" -c 10 http://10.86.2.2:8080/small.txt >/dev/null
  sleep 0.1  # the last drain
  d1=$(cpu "$pid") j1=$(cpu "$JPID")
  kill -INT "$pid"
  wait "$reader"
  local http
  http=$(sed -n 's/.* connections, \([0-9]*\) HTTP records.*/\1/p' "$TMP/err")
  awk -v l="$label" -v n="$http" -v d=$((d1 - d0)) -v j=$((j1 - j0)) -v hz="$hz" 'BEGIN {
    printf "%-28s %9d %12.2f %14.2f\n", l, n, d / hz / n * 1e6, j / hz / n * 1e6 }'
}

printf '%-28s %9s %12s %14s\n' run exchanges daemon_us/ex journald_us/ex
for _ in $(seq "$ROUNDS"); do
  for output in $OUTPUTS; do
    [ "$BEFORE" = - ] || run "before $output" "$BEFORE" "$output"
    run "$output all" "$L7" "$output"
    run "$output sample:0.01" "$L7" "$output" --records sample:0.01
  done
done
