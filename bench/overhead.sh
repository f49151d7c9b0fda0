#!/bin/bash
# The observability tax on a veth test bed (issues 4 and 15): nothing
# attached, l7tap attached (all records, sampled records, journald) and a
# sidecar-style proxy hop, interleaved over rounds; prints issue 15's table.
#   bench/overhead.sh BUILD/daemon/l7tap [ROUNDS]
# Root. Creates namespaces <P>-n (node, routes), <P>-a (clients), <P>-b (nginx,
# the proxy, iperf3 -s) with veths <P>a/<P>b on the node side (P = l7ovbPID),
# 10.83.x addresses, a journald of its own in journal namespace <P>, and
# removes all of it on exit (also on failure or Ctrl-C).
#
# Configurations, in this order in each round of each workload (CONFIGS):
#   a  nothing attached   clients -> nginx
#   b  all records        l7tap attach --iface IFACE --output json (standard
#                         output to /dev/null)
#   s  sampled records    the same with SAMPLED_ARGS; skipped, with a note,
#                         when the binary's help does not know the option
#   c  sidecar hop        clients -> proxy in the server namespace -> nginx
#   j  journald           l7tap attach --output journald; journald's CPU is
#                         counted as part of the tax
# Workloads (WORKLOADS): wrk (HTTP/1.1 at saturation), h2load (h2c, prior
# knowledge, at saturation), iperf (one TCP stream; a and b only). After the
# saturation rounds, RATE_ROUNDS rounds of a fixed rate (h2load --h1 --rps)
# at RATE_FRACTION of the median wrk req/s of (a) measured above.
#
# Environment (defaults): DUR=10 (s per wrk/h2load run), RATE_DUR=10,
# RATE_ROUNDS=ROUNDS, RATE_FRACTION=0.5, RATE= (req/s; set: instead of the
# measured one), RATE_C=20 (clients; --rps is per client), RATE_T=1,
# IPERF_DUR=5, WRK_T=2, WRK_C=32, H2_T=2, H2_C=16, H2_M=10, BODY_BYTES=1024
# (response size), PROXY=haproxy|nginx (haproxy), PROXY_THREADS=1,
# NGINX_WORKERS=2, WORKLOADS="wrk h2load", CONFIGS="a b s c j",
# IFACE='<P>*' (both node-side veths, as a node agent attaches to every pod
# veth; '<P>b': the server's only), SAMPLED_ARGS="--records sample:0.01",
# METRICS_ADDR=none, L7TAP_NICE=0 (the nice value l7tap starts at; it then
# lowers itself to its --nice, default 10), L7TAP_ARGS=
# (extra attach options for b, s, j), JOURNALD=own|system (own: a journald
# of this script in a journal namespace, no rate limit, volatile storage,
# its files removed after, l7tap sees its socket at the usual path through
# a mount namespace; system: the journald at /run/systemd/journal/socket,
# started here and stopped after when there is none), BPF_STATS=1 (the
# kernel programs' run time counted: through a BPF_ENABLE_STATS descriptor
# held while running, which other users' writes to kernel.bpf_stats_enabled
# do not turn off; where the kernel refuses it, that sysctl set to 1 and
# restored after), OUT=directory
# for the raw outputs, runs.tsv and report.md (default
# /tmp/l7tap-overhead.DATE; kept). Tables again: bench/overhead_report.py
# report OUT.
set -euo pipefail
L7=$(realpath "${1:?usage: overhead.sh PATH/TO/l7tap [ROUNDS]}")
ROUNDS=${2:-3}
DUR=${DUR:-10} IPERF_DUR=${IPERF_DUR:-5}
RATE=${RATE:-} RATE_FRACTION=${RATE_FRACTION:-0.5} RATE_DUR=${RATE_DUR:-10}
RATE_ROUNDS=${RATE_ROUNDS:-$ROUNDS} RATE_C=${RATE_C:-20} RATE_T=${RATE_T:-1}
WRK_T=${WRK_T:-2} WRK_C=${WRK_C:-32} H2_T=${H2_T:-2} H2_C=${H2_C:-16} H2_M=${H2_M:-10}
BODY_BYTES=${BODY_BYTES:-1024}
PROXY=${PROXY:-haproxy} PROXY_THREADS=${PROXY_THREADS:-1} NGINX_WORKERS=${NGINX_WORKERS:-2}
WORKLOADS=${WORKLOADS:-wrk h2load} CONFIGS=${CONFIGS:-a b s c j} BPF_STATS=${BPF_STATS:-1}
SAMPLED_ARGS=${SAMPLED_ARGS:---records sample:0.01} METRICS_ADDR=${METRICS_ADDR:-none}
L7TAP_NICE=${L7TAP_NICE:-0} L7TAP_ARGS=${L7TAP_ARGS:-} JOURNALD=${JOURNALD:-own}
OUT=${OUT:-/tmp/l7tap-overhead.$(date +%Y%m%d-%H%M%S)}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/testbed.sh
. "$HERE/testbed.sh"
REPORT="$HERE/overhead_report.py"
JOURNALD_BIN=/lib/systemd/systemd-journald
die() { echo "overhead.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
[ -x "$L7" ] || die "$L7 is not executable"
case $PROXY in haproxy|nginx) ;; *) die "PROXY is haproxy or nginx";; esac
case $JOURNALD in own|system) ;; *) die "JOURNALD is own or system";; esac

# --- tools -----------------------------------------------------------------
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v bpftool >/dev/null || need+=(bpftool)
[[ " $WORKLOADS " == *" iperf "* ]] && ! command -v iperf3 >/dev/null && need+=(iperf3)
[ "$PROXY" = haproxy ] && ! command -v haproxy >/dev/null && need+=(haproxy)
[[ " $CONFIGS " == *" j "* ]] && [ ! -x $JOURNALD_BIN ] && need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  echo "overhead.sh: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian's packages enable services; this bed starts its own copies only.

# Configurations the binary can run: (s) needs the record-policy option.
SKIPPED=
if [[ " $CONFIGS " == *" s "* ]]; then
  opt=${SAMPLED_ARGS%% *}
  if ! "$L7" attach --help 2>&1 | grep -q -- "$opt"; then
    SKIPPED="s: $L7 does not know $opt (attach --help)"
    CONFIGS=$(echo " $CONFIGS " | sed 's/ s / /; s/^ //; s/ $//')
    echo "overhead.sh: skipping configuration $SKIPPED" >&2
  fi
fi

# --- test bed --------------------------------------------------------------
ID=$(( $$ % 100000 ))
P=l7ovb$ID                      # node-side veths: ${P}a, ${P}b (<= 11 chars)
A=$P-a B=$P-b N=$P-n
IFACE=${IFACE:-$P*}
TMP=$(mktemp -d /tmp/l7ovb.XXXXXX)
mkdir -p "$OUT/raw"
STATS_OLD=$(sysctl -n kernel.bpf_stats_enabled)
JPID='' JKEEP='' JSTARTED='' JCONF='' JPATHS=() STATS_FD_PID='' STATS_SYSCTL=
L7PID=
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ -n "$L7PID" ] && kill -INT "$L7PID" 2>/dev/null; then
    # Its detach and summary, unless it is stuck (journald behind): testbed_down kills it.
    for _ in $(seq 30); do kill -0 "$L7PID" 2>/dev/null || break; sleep 0.1; done
  fi
  testbed_down
  [ -n "$JKEEP" ] && kill "$JKEEP" 2>/dev/null && wait "$JKEEP" 2>/dev/null
  if [ -n "$JSTARTED" ]; then
    kill -TERM "$JPID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$JPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$JPID" 2>/dev/null
    wait "$JPID" 2>/dev/null
    [ ${#JPATHS[@]} -gt 0 ] && rm -rf "${JPATHS[@]}"
  fi
  [ -n "$JCONF" ] && rm -f "$JCONF"
  [ -n "$STATS_FD_PID" ] && kill "$STATS_FD_PID" 2>/dev/null && wait "$STATS_FD_PID" 2>/dev/null
  [ -n "$STATS_SYSCTL" ] && sysctl -qw kernel.bpf_stats_enabled="$STATS_OLD"
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

testbed_up "$P" 10.83
SRV=10.83.2.2

mkdir -p "$TMP/www"
head -c "$BODY_BYTES" /dev/zero | tr '\0' x >"$TMP/www/body.txt"
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
if [[ " $WORKLOADS " == *" iperf "* ]]; then
  ip netns exec $B iperf3 -s -B $SRV -p 5201 >/dev/null 2>&1 &
  disown
fi
sleep 0.5
# Every process of a master pid file: the master and its children.
pids_of() { local m; m=$(cat "$1"); echo "$m" "$(pgrep -P "$m" | xargs)"; }
SRV_PIDS=$(pids_of "$TMP/nginx.pid")
PROXY_PIDS=$(pids_of "$TMP/proxy.pid")
# Sanity: each path answers.
for url in http://$SRV:8080/body.txt http://$SRV:9080/body.txt; do
  ip netns exec $A h2load --h1 -n 10 -c 1 "$url" | grep -q '10 succeeded' || die "no answer from $url"
done
for url in http://$SRV:8081/body.txt http://$SRV:9081/body.txt; do
  ip netns exec $A h2load -n 10 -c 1 "$url" | grep -q '10 succeeded' || die "no h2c answer from $url"
done

# --- journald (configuration j) --------------------------------------------
JOURNAL_SOCKET=/run/systemd/journal/socket
JDIR=  # the journal socket's directory, when it is not the usual one
ticks_of() { local s=0 p t; for p in "$@"; do
  t=$(awk '{print $14 + $15}' /proc/$p/stat 2>/dev/null || echo 0); s=$((s + t)); done; echo $s; }
wait_socket() {
  for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done
  die "journald's socket $1 did not appear"
}
if [[ " $CONFIGS " == *" j "* ]]; then
  MACHINE=$(cat /etc/machine-id)
  if [ "$JOURNALD" = own ]; then
    # A journal namespace keeps this journald's socket, files and CPU apart
    # from the machine's and other users'; no rate limit, so that every
    # record costs journald what it costs.
    JCONF=/etc/systemd/journald@$P.conf
    printf '[Journal]\nStorage=volatile\nRateLimitIntervalSec=0\n' >"$JCONF"
    JDIR=/run/systemd/journal.$P
    JPATHS=("$JDIR" "/run/log/journal/$MACHINE.$P" "/var/log/journal/$MACHINE.$P")
    $JOURNALD_BIN "$P" </dev/null >"$OUT/raw/journald.log" 2>&1 &
    JPID=$! JSTARTED=1
    wait_socket "$JDIR/socket"
    # A journal namespace's journald exits after 30 s without a stream client.
    python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(sys.argv[1])
s.sendall(b"l7ovb-keepalive\n\n6\n0\n0\n0\n0\n"); time.sleep(1e9)' "$JDIR/stdout" &
    JKEEP=$!
  elif [ -S $JOURNAL_SOCKET ]; then
    # The machine's: the journald process without a namespace argument.
    for p in $(pgrep -x systemd-journal); do
      [ "$(tr '\0' ' ' </proc/$p/cmdline | wc -w)" = 1 ] && JPID=$p
    done
    [ -n "$JPID" ] || die "$JOURNAL_SOCKET exists but no systemd-journald without a namespace runs"
  else
    [ -d /run/systemd/journal ] || JPATHS+=(/run/systemd/journal)
    [ -d "/run/log/journal/$MACHINE" ] || JPATHS+=("/run/log/journal/$MACHINE")
    [ -d "/var/log/journal/$MACHINE" ] || JPATHS+=("/var/log/journal/$MACHINE")
    $JOURNALD_BIN </dev/null >"$OUT/raw/journald.log" 2>&1 &
    JPID=$! JSTARTED=1
    wait_socket $JOURNAL_SOCKET
  fi
fi

# --- measuring -------------------------------------------------------------
if [ "$BPF_STATS" = 1 ]; then
  # The run-time counters stay on while this descriptor is open (the kernel
  # counts holders), whatever other benches write to the sysctl meanwhile.
  python3 -c 'import ctypes, os, sys, time
nr = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine)
attr = ctypes.create_string_buffer(16)  # enable_stats.type = BPF_STATS_RUN_TIME (0)
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(ctypes.c_long(nr), ctypes.c_long(32), attr, ctypes.c_long(len(attr))) if nr else -1  # BPF_ENABLE_STATS
if fd < 0:
    sys.exit(1)
print("held", flush=True)
time.sleep(1e9)' >"$TMP/stats-fd" 2>&1 &
  STATS_FD_PID=$!
  for _ in $(seq 50); do
    grep -q held "$TMP/stats-fd" && break
    kill -0 $STATS_FD_PID 2>/dev/null || { STATS_FD_PID=; break; }
    sleep 0.1
  done
  if [ -z "$STATS_FD_PID" ]; then
    echo "overhead.sh: no BPF_ENABLE_STATS descriptor; kernel.bpf_stats_enabled=1 until the end" >&2
    STATS_SYSCTL=1
  fi
fi
# Busy (user, nice, system, irq, softirq), stolen by the hypervisor, and total jiffies of the machine.
machine() { awk '/^cpu /{print $2+$3+$4+$7+$8, $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
# run_time_ns and run_cnt summed over the BPF programs the daemon ($1) holds;
# each program's (id, type, name, run_time_ns, run_cnt) to file $2.
bpf_stats() {
  local ids
  ids=$(grep -h '^prog_id:' /proc/$1/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -u | xargs)
  [ -n "$ids" ] || { : >"$2"; echo 0 0; return; }
  # shellcheck disable=SC2086
  bpftool -j prog show | python3 -c 'import json, sys
ids = {int(x) for x in sys.argv[2:]}
ps = [p for p in json.load(sys.stdin) if p["id"] in ids]
with open(sys.argv[1], "w") as f:
    for p in ps:
        print(p["id"], p.get("type", "-"), p.get("name", "-"), p.get("run_time_ns", 0), p.get("run_cnt", 0),
              sep="\t", file=f)
print(sum(p.get("run_time_ns", 0) for p in ps), sum(p.get("run_cnt", 0) for p in ps))' "$2" $ids
}
# Interfaces of the node namespace IFACE matches: l7tap says "attached to" for each.
IFACE_COUNT=0
for ifc in $(ip -n $N -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do
  # shellcheck disable=SC2053
  [[ $ifc == $IFACE ]] && IFACE_COUNT=$((IFACE_COUNT + 1))
done
[ $IFACE_COUNT -gt 0 ] || die "IFACE '$IFACE' matches no interface of the node namespace"
start_l7tap() {  # $1: file for the daemon's standard error, $2: configuration
  local args=(attach --iface "$IFACE" --metrics-addr "$METRICS_ADDR") wrap=()
  # shellcheck disable=SC2206
  case $2 in
    b) args+=(--output json) ;;
    s) args+=(--output json $SAMPLED_ARGS) ;;
    j) args+=(--output journald)
       # l7tap finds the journal at the usual path only: a private mount
       # namespace puts this script's journald's socket directory there.
       [ -n "$JDIR" ] && wrap=(unshare -m --propagation private sh -c \
         'j=$1; b=$2; shift 2; mount --bind "$j" "$b" && mount -t tmpfs l7ovb /run/systemd &&
          mkdir /run/systemd/journal && mount --bind "$b" /run/systemd/journal && exec "$@"' \
         sh "$JDIR" "$TMP/jbind") && mkdir -p "$TMP/jbind" ;;
  esac
  # shellcheck disable=SC2206
  args+=($L7TAP_ARGS)
  ip netns exec $N nice -n "$L7TAP_NICE" "${wrap[@]}" "$L7" "${args[@]}" >/dev/null 2>"$1" &
  L7PID=$!
  for _ in $(seq 150); do
    [ "$(grep -c 'attached to' "$1" || true)" -ge $IFACE_COUNT ] && return 0
    kill -0 $L7PID 2>/dev/null || break
    sleep 0.1
  done
  echo "overhead.sh: l7tap did not attach ($2):" >&2; cat "$1" >&2; exit 1
}
stop_l7tap() { kill -INT $L7PID 2>/dev/null || true; wait $L7PID || true; L7PID=; }
# journald's CPU once it has written what it was sent: until its ticks stand still.
settled_ticks() {
  local t u
  t=$(ticks_of "$1")
  for _ in $(seq 20); do sleep 0.3; u=$(ticks_of "$1"); [ "$u" = "$t" ] && break; t=$u; done
  echo "$t"
}

RUNS="$OUT/runs.tsv"
echo -e "round\tworkload\tconfig\twall_s\tdaemon_ticks\tbpf_ns\tbpf_cnt\tproxy_ticks\tserver_ticks\tbusy\tsteal\ttotal\thz\tp50_us\tp99_us\tjournald_ticks\ttarget_rps\tnote" >"$RUNS"
HZ=$(getconf CLK_TCK)
# One measured run: $1 round, $2 workload (wrk, h2load, iperf, rate), $3 config.
run() {
  local round=$1 wl=$2 cfg=$3 tag="$OUT/raw/r$1-$2-$3" port1=8080 port2=8081 note=
  [ "$cfg" = c ] && port1=9080 port2=9081
  # Re-asserted for each run: another user's bench may have turned it off.
  [ -n "$STATS_SYSCTL" ] && sysctl -qw kernel.bpf_stats_enabled=1
  case $cfg in b|s|j) start_l7tap "$tag.l7tap" "$cfg" ;; esac
  sleep 0.5
  local d0=0 d1=0 k0="0 0" k1="0 0" j0=0 j1=0 m0 m1 p0 p1 s0 s1 t0 t1 p50=- p99=- rc=0
  if [ -n "$L7PID" ]; then d0=$(ticks_of $L7PID); k0=$(bpf_stats $L7PID "$tag.bpf0"); fi
  [ "$cfg" = j ] && j0=$(settled_ticks "$JPID")
  p0=$(ticks_of $PROXY_PIDS); s0=$(ticks_of $SRV_PIDS); m0=$(machine); t0=$(date +%s.%N)
  local TIMEFORMAT='%U %S'
  { time case $wl in
    wrk) ip netns exec $A wrk -t"$WRK_T" -c"$WRK_C" -d"${DUR}s" --latency \
           "http://$SRV:$port1/body.txt" ;;
    h2load) ip netns exec $A h2load -t "$H2_T" -c "$H2_C" -m "$H2_M" -D "$DUR" --log-file="$TMP/h2.log" \
           "http://$SRV:$port2/body.txt" ;;
    iperf) ip netns exec $A iperf3 -c $SRV -p 5201 -t "$IPERF_DUR" -J ;;
    rate) ip netns exec $A h2load --h1 -t "$RATE_T" -c "$RATE_C" --rps "$RATE_PER_CLIENT" -D "$RATE_DUR" \
           --log-file="$TMP/h2.log" "http://$SRV:$port1/body.txt" ;;
  esac >"$tag.out" 2>"$tag.err"; } 2>"$tag.time" &
  wait $! || rc=$?  # in the background so that a signal to this script stops it at once
  t1=$(date +%s.%N); m1=$(machine); p1=$(ticks_of $PROXY_PIDS); s1=$(ticks_of $SRV_PIDS)
  [ $rc = 0 ] || note="load tool exit $rc;"
  if [ -n "$L7PID" ]; then
    kill -0 $L7PID 2>/dev/null || note="$note l7tap exited during the run;"
    d1=$(ticks_of $L7PID); k1=$(bpf_stats $L7PID "$tag.bpf1")
  fi
  [ -n "$STATS_SYSCTL" ] && [ "$(sysctl -n kernel.bpf_stats_enabled)" != 1 ] && note="$note bpf_stats turned off meanwhile;"
  [ -n "$STATS_FD_PID" ] && ! kill -0 "$STATS_FD_PID" 2>/dev/null && note="$note bpf stats descriptor gone;"
  if [ -f "$TMP/h2.log" ]; then
    read -r p50 p99 < <(python3 "$REPORT" pct "$TMP/h2.log"); rm -f "$TMP/h2.log"
  fi
  [ -n "$L7PID" ] && stop_l7tap
  [ "$cfg" = j ] && j1=$(settled_ticks "$JPID")
  local target=-
  [ "$wl" = rate ] && target=$((RATE_PER_CLIENT * RATE_C))
  set -- $k0 $k1 $m0 $m1
  echo -e "$round\t$wl\t$cfg\t$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')\t$((d1 - d0))\t$(($3 - $1))\t$(($4 - $2))\t$((p1 - p0))\t$((s1 - s0))\t$(($8 - $5))\t$(($9 - $6))\t$((${10} - $7))\t$HZ\t$p50\t$p99\t$((j1 - j0))\t$target\t${note:--}" >>"$RUNS"
  printf '  round %s %-6s %s done%s\n' "$round" "$wl" "$cfg" "${note:+ ($note)}" >&2
}

echo "overhead.sh: l7tap $L7, configurations $CONFIGS, proxy $PROXY, $ROUNDS rounds, results in $OUT" >&2
{ echo "date $(date -Is)"; echo "kernel $(uname -r)"; echo "cpus $(nproc)";
  echo "l7tap $L7 iface '$IFACE' nice $L7TAP_NICE metrics-addr $METRICS_ADDR args '$L7TAP_ARGS'"
  echo "records: json to standard output, which is /dev/null; sampled args '$SAMPLED_ARGS'"
  echo "configurations $CONFIGS${SKIPPED:+ (skipped $SKIPPED)}"
  if [[ " $CONFIGS " != *" j "* ]]; then echo "journald not used"
  elif [ -n "$JDIR" ]; then echo "journald own: journal namespace $P, Storage=volatile, RateLimitIntervalSec=0"
  elif [ -n "$JSTARTED" ]; then echo "journald system: none ran, started here (its defaults) and stopped after"
  else echo "journald system: the running one, pid $JPID (its settings, its other clients' CPU included)"; fi
  echo "proxy $PROXY threads $PROXY_THREADS"; echo "nginx workers $NGINX_WORKERS, responses $BODY_BYTES bytes"
  echo "rounds $ROUNDS dur $DUR iperf_dur $IPERF_DUR rate_rounds $RATE_ROUNDS rate_dur $RATE_DUR"
  echo "wrk -t$WRK_T -c$WRK_C; h2load -t $H2_T -c $H2_C -m $H2_M"; echo "loadavg_start $(cat /proc/loadavg)"; } >"$OUT/meta.txt"
for round in $(seq "$ROUNDS"); do
  for wl in $WORKLOADS; do
    for cfg in $CONFIGS; do
      [ "$wl" = iperf ] && [ "$cfg" != a ] && [ "$cfg" != b ] && continue
      run "$round" "$wl" "$cfg"
    done
  done
done
if [ "$RATE_ROUNDS" -gt 0 ]; then
  if [ -z "$RATE" ]; then
    RATE=$(python3 "$REPORT" rate "$OUT" "$RATE_FRACTION") ||
      die "no fixed rate: set RATE, or keep wrk in WORKLOADS (its (a) req/s sets it)"
  fi
  RATE_PER_CLIENT=$(( (RATE + RATE_C / 2) / RATE_C ))
  [ $RATE_PER_CLIENT -gt 0 ] || die "RATE $RATE is below one request per second per client"
  echo "fixed rate $((RATE_PER_CLIENT * RATE_C)) req/s (h2load --h1 -t $RATE_T -c $RATE_C --rps $RATE_PER_CLIENT)" >>"$OUT/meta.txt"
  echo "overhead.sh: fixed rate $((RATE_PER_CLIENT * RATE_C)) req/s" >&2
  for round in $(seq "$RATE_ROUNDS"); do
    for cfg in $CONFIGS; do run "$round" rate "$cfg"; done
  done
fi
echo "loadavg_end $(cat /proc/loadavg)" >>"$OUT/meta.txt"
python3 "$REPORT" report "$OUT" | tee "$OUT/report.md"
