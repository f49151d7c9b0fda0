#!/bin/bash
# The TC program's CPU per HTTP/1.1 exchange on a pod-to-pod path with both
# node-side veths attached, for one or more l7tap binaries, interleaved.
#   bench/kernel_cost.sh [ROUNDS] L7TAP [L7TAP...]
# Root. A client pod, a node and a server pod namespace (bench/testbed.sh,
# prefix l7krn<PID>, removed on exit also on failure), nginx in the server
# pod, `l7tap attach --iface '<P>*' --output json` in the node namespace,
# then `h2load --h1` with a fixed number of requests (REQS=200000, CONNS=16
# connections, kept alive). kernel.bpf_stats_enabled=1 while running
# (restored after). Per binary and round: run_time_ns and run_cnt of the
# daemon's TC programs (l7tap_ingress, l7tap_egress), summed; then the
# medians over the rounds of ns per run, runs per request and kernel ns per
# request. Environment: REQS, CONNS, L7TAP_ARGS (extra attach options),
# IFACES=a|b (attach only the client's or the server's veth),
# SHOW_SUMMARY=1 (print each daemon's exit summary: kernel counters).
set -euo pipefail
ROUNDS=${1:?usage: kernel_cost.sh ROUNDS L7TAP [L7TAP...]}
shift
BINS=()
for b in "$@"; do BINS+=("$(realpath "$b")"); done
[ ${#BINS[@]} -gt 0 ] || { echo "kernel_cost.sh: no l7tap binary" >&2; exit 1; }
REQS=${REQS:-200000} CONNS=${CONNS:-16} L7TAP_ARGS=${L7TAP_ARGS:-}
# IFACES=a or b: attach the client's or the server's veth only.
IFACES=${IFACES:-both} WANT=1
[ "$IFACES" = both ] && WANT=2 IFACES='*'

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/testbed.sh
. "$HERE/testbed.sh"
[ "$(id -u)" = 0 ] || { echo "kernel_cost.sh: run as root" >&2; exit 1; }
for t in nginx h2load bpftool; do
  command -v $t >/dev/null || { echo "kernel_cost.sh: needs $t" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/l7krn.XXXXXX)
STATS_OLD=$(sysctl -n kernel.bpf_stats_enabled)
L7PID=
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  [ -n "$L7PID" ] && kill -INT "$L7PID" 2>/dev/null && wait "$L7PID"
  testbed_down
  sysctl -qw kernel.bpf_stats_enabled="$STATS_OLD"
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

testbed_up "l7krn$(( $$ % 100000 ))" 10.84
SRV=10.84.2.2
mkdir -p "$TMP/www"
printf 'thirty-five bytes of small file...\n' >"$TMP/www/small.txt"
cat >"$TMP/nginx.conf" <<CONF
worker_processes 1; pid $TMP/nginx.pid; error_log $TMP/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP;
  uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  server { listen 8080; root $TMP/www; } }
CONF
ip netns exec "$B" nginx -c "$TMP/nginx.conf"
sysctl -qw kernel.bpf_stats_enabled=1

# run_time_ns and run_cnt summed over the TC programs (l7tap_ingress,
# l7tap_egress) process $1 holds; its other programs (TLS probes, process
# tracking) run on other events.
bpf_stats() {
  local ids id ns=0 cnt=0 a b
  ids=$(grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -u)
  for id in $ids; do
    read -r a b < <(bpftool -j prog show id "$id" | python3 -c \
      'import json,sys; p=json.load(sys.stdin); tc=p.get("name") in ("l7tap_ingress","l7tap_egress"); print(p.get("run_time_ns",0)*tc, p.get("run_cnt",0)*tc)')
    ns=$((ns + a)); cnt=$((cnt + b))
  done
  echo "$ns $cnt"
}

RES="$TMP/results"
: >"$RES"
for round in $(seq "$ROUNDS"); do
  for i in "${!BINS[@]}"; do
    # shellcheck disable=SC2086
    ip netns exec "$N" "${BINS[$i]}" attach --iface "$P$IFACES" --output json --metrics-addr none \
      $L7TAP_ARGS >/dev/null 2>"$TMP/l7tap.err" &
    L7PID=$!
    for _ in $(seq 100); do
      [ "$(grep -c 'attached to' "$TMP/l7tap.err" || true)" -ge $WANT ] && break
      kill -0 $L7PID 2>/dev/null || { cat "$TMP/l7tap.err" >&2; exit 1; }
      sleep 0.1
    done
    sleep 0.3
    read -r ns0 cnt0 < <(bpf_stats $L7PID)
    ip netns exec "$A" h2load --h1 -n "$REQS" -c "$CONNS" -t 1 "http://$SRV:8080/small.txt" >"$TMP/h2load.out"
    read -r ns1 cnt1 < <(bpf_stats $L7PID)
    ok=$(awk '/^status codes:/{print $3}' "$TMP/h2load.out")
    kill -INT $L7PID; wait $L7PID || true; L7PID=
    [ -n "${SHOW_SUMMARY:-}" ] && grep -v "attached to" "$TMP/l7tap.err" >&2
    echo "$i $round $((ns1 - ns0)) $((cnt1 - cnt0)) $ok" >>"$RES"
    awk -v b="${BINS[$i]}" -v r="$round" -v ns=$((ns1 - ns0)) -v c=$((cnt1 - cnt0)) -v ok="$ok" \
      'BEGIN{printf "round %d %s: %d runs, %.0f ns/run, %.2f runs/req, %.0f ns/req (%d 2xx)\n",
             r, b, c, ns/c, c/ok, ns/ok, ok}' >&2
  done
done

python3 - "$RES" "${BINS[@]}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print("binary\tns/run\truns/req\tkernel ns/req (medians of %d rounds)" % (len(rows) // len(sys.argv[2:])))
for i, b in enumerate(sys.argv[2:]):
    r = [(int(ns), int(c), int(ok)) for j, _, ns, c, ok in rows if int(j) == i]
    print("%s\t%.0f\t%.2f\t%.0f" % (b, statistics.median(ns / c for ns, c, _ in r),
          statistics.median(c / ok for _, c, ok in r), statistics.median(ns / ok for ns, _, ok in r)))
PY
