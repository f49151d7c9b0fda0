#!/bin/bash
# Daemon CPU per ring-buffer event: wake the reader for every event versus
# batched wake-ups (BPF_RB_NO_WAKEUP below a byte threshold + a 2 ms drain).
#   bench/wakeup_cost.sh BUILD/daemon/l7tap [REQUESTS] [ROUNDS]
# Root. The test bed of testbed.sh (namespaces l7wk-{a,b,n}, 10.82.x): nginx
# in pod b, h2load --h1 in pod a, l7tap attached to the node's veths;
# removes all on exit.
set -euo pipefail
L7=$(realpath "${1:?usage: wakeup_cost.sh PATH/TO/l7tap [REQUESTS] [ROUNDS]}")
N_REQ=${2:-200000}
ROUNDS=${3:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/testbed.sh
. "$HERE/testbed.sh"
TMP=$(mktemp -d /tmp/l7wk.XXXXXX)
cleanup() {
  set +e
  testbed_down
  rm -rf "$TMP"
}
trap cleanup EXIT
testbed_up l7wk 10.82
mkdir -p "$TMP/www"
printf 'thirty-five bytes of small file...\n' >"$TMP/www/small.txt"
cat >"$TMP/nginx.conf" <<CONF
worker_processes 1; pid $TMP/nginx.pid; error_log $TMP/error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP;
  uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  server { listen 10.82.2.2:8080; root $TMP/www; } }
CONF
ip netns exec $B nginx -c "$TMP/nginx.conf"
sleep 0.3
ticks=$(getconf CLK_TCK)
printf '%-14s %10s %10s %12s %14s %12s\n' mode events seconds events/s "cpu_s" "cpu_%_core"
for round in $(seq "$ROUNDS"); do
  for wake in 0 262144; do
    ip netns exec $N "$L7" attach --iface "$P*" --output json --metrics-addr none --wakeup-bytes $wake \
      >/dev/null 2>"$TMP/err" &
    pid=$!
    sleep 1
    t0=$(date +%s.%N)
    read -r u0 s0 < <(awk '{print $14, $15}' /proc/$pid/stat)
    ip netns exec $A h2load --h1 -n "$N_REQ" -c 10 http://10.82.2.2:8080/small.txt >/dev/null
    read -r u1 s1 < <(awk '{print $14, $15}' /proc/$pid/stat)
    t1=$(date +%s.%N)
    kill -INT $pid
    wait $pid
    events=$(sed -n 's/^l7tap: \([0-9]*\) events read.*/\1/p' "$TMP/err")
    python3 - "$wake" "$events" "$t0" "$t1" "$u0" "$s0" "$u1" "$s1" "$ticks" <<'PY'
import sys
wake, events, t0, t1, u0, s0, u1, s1, hz = sys.argv[1:]
secs = float(t1) - float(t0)
cpu = (int(u1) + int(s1) - int(u0) - int(s0)) / int(hz)
mode = "every-event" if wake == "0" else "batched"
print(f"{mode:<14} {int(events):>10} {secs:>10.2f} {int(events)/secs:>12.0f} {cpu:>14.2f} {100*cpu/secs:>12.1f}")
PY
  done
done
