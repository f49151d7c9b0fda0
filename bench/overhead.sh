#!/bin/bash
# Kernel-side overhead on a veth test bed (issue 4, part 3): nothing attached,
# l7tap attached, and a sidecar-style proxy hop, interleaved over rounds.
#   bench/overhead.sh BUILD/daemon/l7tap [ROUNDS]
# Root. Creates namespaces <P>-n (node, routes), <P>-a (clients), <P>-b (nginx,
# the proxy, iperf3 -s) with veths <P>a/<P>b on the node side, 10.83.x
# addresses, and removes them on exit (also on failure or Ctrl-C).
#
# Each round runs, for each workload, the configurations in this order:
#   a  nothing attached        clients -> nginx
#   b  l7tap attached          l7tap attach --iface '<P>*' --output json (defaults)
#   c  sidecar hop             clients -> proxy in the server namespace -> nginx
# Workloads: wrk (HTTP/1.1), h2load (h2c prior knowledge), iperf3 (a and b).
# Then fixed-rate runs (h2load --h1 --rps) at RATE req/s: a, b, c.
#
# Environment (defaults): DUR=10 (s per wrk/h2load run), IPERF_DUR=5,
# RATE=20000, RATE_DUR=10, RATE_ROUNDS=2, WRK_T=2, WRK_C=32, H2_T=2, H2_C=16,
# H2_M=10, PROXY=haproxy|nginx (haproxy), PROXY_THREADS=1, NGINX_WORKERS=2,
# WORKLOADS="wrk h2load iperf", L7TAP_NICE=0 (the daemon's nice value),
# L7TAP_ARGS= (extra attach options; empty: the defaults), BPF_STATS=1
# (kernel.bpf_stats_enabled=1 while running, restored after), OUT=directory
# for the raw outputs, runs.tsv and report.md (default
# /tmp/l7tap-overhead.DATE; kept). Tables: bench/overhead_report.py report OUT.
set -euo pipefail
L7=$(realpath "${1:?usage: overhead.sh PATH/TO/l7tap [ROUNDS]}")
ROUNDS=${2:-5}
DUR=${DUR:-10} IPERF_DUR=${IPERF_DUR:-5}
RATE=${RATE:-20000} RATE_DUR=${RATE_DUR:-10} RATE_ROUNDS=${RATE_ROUNDS:-2}
WRK_T=${WRK_T:-2} WRK_C=${WRK_C:-32} H2_T=${H2_T:-2} H2_C=${H2_C:-16} H2_M=${H2_M:-10}
PROXY=${PROXY:-haproxy} PROXY_THREADS=${PROXY_THREADS:-1} NGINX_WORKERS=${NGINX_WORKERS:-2}
WORKLOADS=${WORKLOADS:-wrk h2load iperf} BPF_STATS=${BPF_STATS:-1}
L7TAP_NICE=${L7TAP_NICE:-0} L7TAP_ARGS=${L7TAP_ARGS:-}
OUT=${OUT:-/tmp/l7tap-overhead.$(date +%Y%m%d-%H%M%S)}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/testbed.sh
. "$HERE/testbed.sh"
REPORT="$HERE/overhead_report.py"
[ "$(id -u)" = 0 ] || { echo "overhead.sh: run as root" >&2; exit 1; }
[ -x "$L7" ] || { echo "overhead.sh: $L7 is not executable" >&2; exit 1; }
case $PROXY in haproxy|nginx) ;; *) echo "overhead.sh: PROXY is haproxy or nginx" >&2; exit 1;; esac

# --- tools -----------------------------------------------------------------
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v iperf3 >/dev/null || need+=(iperf3)
command -v bpftool >/dev/null || need+=(bpftool)
[ "$PROXY" = haproxy ] && ! command -v haproxy >/dev/null && need+=(haproxy)
if [ ${#need[@]} -gt 0 ]; then
  echo "overhead.sh: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian's packages enable services; this bed starts its own copies only.

# --- test bed --------------------------------------------------------------
ID=$(( $$ % 100000 ))
P=l7ov$ID                       # node-side veths: ${P}a, ${P}b (<= 11 chars)
A=$P-a B=$P-b N=$P-n
TMP=$(mktemp -d /tmp/l7ov.XXXXXX)
mkdir -p "$OUT/raw"
STATS_OLD=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  testbed_down
  [ "$BPF_STATS" = 1 ] && sysctl -qw kernel.bpf_stats_enabled="$STATS_OLD"
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

testbed_up "$P" 10.83
SRV=10.83.2.2

mkdir -p "$TMP/www"
printf 'thirty-five bytes of small file...\n' >"$TMP/www/small.txt"
# The application: nginx, HTTP/1.1 on 8080 (also on 127.0.0.1 for the proxy),
# h2c (prior knowledge) on 8081.
cat >"$TMP/nginx.conf" <<CONF
worker_processes $NGINX_WORKERS; pid $TMP/nginx.pid; error_log $TMP/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP;
  uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  server { listen 8080 reuseport; listen 8081 http2; root $TMP/www; } }
CONF
ip netns exec $B nginx -c "$TMP/nginx.conf"

# The sidecar: a reverse proxy in the server's namespace, HTTP/1.1 on 9080 and
# h2c on 9081, to the application over loopback with kept-alive connections,
# in the client's protocol (haproxy; nginx cannot proxy to h2, so its h2c
# front end goes to the application in HTTP/1.1).
if [ "$PROXY" = haproxy ]; then
  cat >"$TMP/haproxy.cfg" <<CONF
global
  nbthread $PROXY_THREADS
  maxconn 8192
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend h1
  bind $SRV:9080
  default_backend app
frontend h2c
  bind $SRV:9081 proto h2
  default_backend app_h2
backend app
  server app 127.0.0.1:8080 maxconn 1024
backend app_h2
  server app 127.0.0.1:8081 proto h2 maxconn 1024
CONF
  ip netns exec $B haproxy -D -f "$TMP/haproxy.cfg" -p "$TMP/proxy.pid"
else
  cat >"$TMP/proxy.conf" <<CONF
worker_processes $PROXY_THREADS; pid $TMP/proxy.pid; error_log $TMP/proxy-error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP;
  uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  upstream app { server 127.0.0.1:8080; keepalive 64; keepalive_requests 1000000; }
  server { listen $SRV:9080; listen $SRV:9081 http2;
    location / { proxy_pass http://app; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_buffering on; } } }
CONF
  ip netns exec $B nginx -c "$TMP/proxy.conf"
fi
ip netns exec $B iperf3 -s -B $SRV -p 5201 >/dev/null 2>&1 &
disown
sleep 0.5
# Every process of a master pid file: the master and its children.
pids_of() { local m; m=$(cat "$1"); echo "$m" "$(pgrep -P "$m" | xargs)"; }
SRV_PIDS=$(pids_of "$TMP/nginx.pid")
PROXY_PIDS=$(pids_of "$TMP/proxy.pid")
# Sanity: each path answers.
for url in http://$SRV:8080/small.txt http://$SRV:9080/small.txt; do
  ip netns exec $A h2load --h1 -n 10 -c 1 "$url" | grep -q '10 succeeded' ||
    { echo "overhead.sh: no answer from $url" >&2; exit 1; }
done
for url in http://$SRV:8081/small.txt http://$SRV:9081/small.txt; do
  ip netns exec $A h2load -n 10 -c 1 "$url" | grep -q '10 succeeded' ||
    { echo "overhead.sh: no h2c answer from $url" >&2; exit 1; }
done
[ "$BPF_STATS" = 1 ] && sysctl -qw kernel.bpf_stats_enabled=1

# --- measuring -------------------------------------------------------------
ticks_of() { local s=0 p t; for p in "$@"; do
  t=$(awk '{print $14 + $15}' /proc/$p/stat 2>/dev/null || echo 0); s=$((s + t)); done; echo $s; }
# Busy (user, nice, system, irq, softirq), stolen by the hypervisor, and total jiffies of the machine.
machine() { awk '/^cpu /{print $2+$3+$4+$7+$8, $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
# run_time_ns and run_cnt summed over the BPF programs the daemon holds.
bpf_stats() {
  local ids id ns=0 cnt=0 a b
  ids=$(grep -h '^prog_id:' /proc/$1/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -u)
  for id in $ids; do
    read -r a b < <(bpftool -j prog show id "$id" | python3 -c \
      'import json,sys; p=json.load(sys.stdin); print(p.get("run_time_ns",0), p.get("run_cnt",0))')
    ns=$((ns + a)); cnt=$((cnt + b))
  done
  echo $ns $cnt
}
L7PID=
start_l7tap() {  # $1: file for the daemon's standard error
  # shellcheck disable=SC2086
  ip netns exec $N nice -n "$L7TAP_NICE" "$L7" attach --iface "$P*" --output json --metrics-addr none $L7TAP_ARGS \
    >/dev/null 2>"$1" &
  L7PID=$!
  for _ in $(seq 100); do
    [ "$(grep -c 'attached to' "$1" || true)" -ge 2 ] && return 0
    kill -0 $L7PID 2>/dev/null || break
    sleep 0.1
  done
  echo "overhead.sh: l7tap did not attach:" >&2; cat "$1" >&2; exit 1
}
stop_l7tap() { kill -INT $L7PID; wait $L7PID || true; L7PID=; }

RUNS="$OUT/runs.tsv"
echo -e "round\tworkload\tconfig\twall_s\tdaemon_ticks\tbpf_ns\tbpf_cnt\tproxy_ticks\tserver_ticks\tbusy\tsteal\ttotal\thz\tp50_us\tp99_us" >"$RUNS"
HZ=$(getconf CLK_TCK)
# One measured run: $1 round, $2 workload (wrk, h2load, iperf, rate), $3 config (a, b, c).
run() {
  local round=$1 wl=$2 cfg=$3 tag="$OUT/raw/r$1-$2-$3" port1=8080 port2=8081
  [ "$cfg" = c ] && port1=9080 port2=9081
  [ "$cfg" = b ] && start_l7tap "$tag.l7tap"
  sleep 0.5
  local d0=0 d1=0 k0="0 0" k1="0 0" m0 m1 p0 p1 s0 s1 t0 t1 p50=- p99=-
  if [ -n "$L7PID" ]; then d0=$(ticks_of $L7PID); k0=$(bpf_stats $L7PID); fi
  p0=$(ticks_of $PROXY_PIDS); s0=$(ticks_of $SRV_PIDS); m0=$(machine); t0=$(date +%s.%N)
  local TIMEFORMAT='%U %S'
  { time case $wl in
    wrk) ip netns exec $A wrk -t"$WRK_T" -c"$WRK_C" -d"${DUR}s" --latency \
           "http://$SRV:$port1/small.txt" ;;
    h2load) ip netns exec $A h2load -t "$H2_T" -c "$H2_C" -m "$H2_M" -D "$DUR" --log-file="$TMP/h2.log" \
           "http://$SRV:$port2/small.txt" ;;
    iperf) ip netns exec $A iperf3 -c $SRV -p 5201 -t "$IPERF_DUR" -J ;;
    rate) ip netns exec $A h2load --h1 -c 20 --rps $((RATE / 20)) -D "$RATE_DUR" \
           --log-file="$TMP/h2.log" "http://$SRV:$port1/small.txt" ;;
  esac >"$tag.out" 2>"$tag.err"; } 2>"$tag.time" &
  wait $!  # in the background so that a signal to this script stops it at once
  t1=$(date +%s.%N); m1=$(machine); p1=$(ticks_of $PROXY_PIDS); s1=$(ticks_of $SRV_PIDS)
  if [ -n "$L7PID" ]; then d1=$(ticks_of $L7PID); k1=$(bpf_stats $L7PID); fi
  if [ -f "$TMP/h2.log" ]; then
    read -r p50 p99 < <(python3 "$REPORT" pct "$TMP/h2.log"); rm -f "$TMP/h2.log"
  fi
  [ "$cfg" = b ] && stop_l7tap
  set -- $k0 $k1 $m0 $m1
  echo -e "$round\t$wl\t$cfg\t$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')\t$((d1 - d0))\t$(($3 - $1))\t$(($4 - $2))\t$((p1 - p0))\t$((s1 - s0))\t$(($8 - $5))\t$(($9 - $6))\t$((${10} - $7))\t$HZ\t$p50\t$p99" >>"$RUNS"
  printf '  round %s %-6s %s done\n' "$round" "$wl" "$cfg" >&2
}

echo "overhead.sh: l7tap $L7, proxy $PROXY, $ROUNDS rounds, results in $OUT" >&2
{ echo "date $(date -Is)"; echo "kernel $(uname -r)"; echo "cpus $(nproc)";
  echo "l7tap $L7 nice $L7TAP_NICE args '$L7TAP_ARGS'"; echo "proxy $PROXY threads $PROXY_THREADS"; echo "nginx workers $NGINX_WORKERS";
  echo "rounds $ROUNDS dur $DUR iperf_dur $IPERF_DUR rate $RATE rate_dur $RATE_DUR";
  echo "wrk -t$WRK_T -c$WRK_C; h2load -t $H2_T -c $H2_C -m $H2_M"; echo "loadavg_start $(cat /proc/loadavg)"; } >"$OUT/meta.txt"
for round in $(seq "$ROUNDS"); do
  for wl in $WORKLOADS; do
    if [ "$wl" = iperf ]; then cfgs="a b"; else cfgs="a b c"; fi
    for cfg in $cfgs; do run "$round" "$wl" "$cfg"; done
  done
done
for round in $(seq "$RATE_ROUNDS"); do
  for cfg in a b c; do run "$round" rate "$cfg"; done
done
echo "loadavg_end $(cat /proc/loadavg)" >>"$OUT/meta.txt"
python3 "$REPORT" report "$OUT" | tee "$OUT/report.md"
