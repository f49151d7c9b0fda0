#!/bin/bash
# The cost of the TLS uprobes (issue 13), per request and per SSL call, on a
# veth test bed, interleaved over rounds; medians.
#   bench/tls_overhead.sh BUILD/daemon/l7tap [ROUNDS]
# Root. Creates namespaces <P>-n (node, routes), <P>-a (clients), <P>-b
# (nginx with TLS) with veths <P>a/<P>b on the node side, 10.84.x addresses,
# a CA and server certificate made with openssl, and removes them on exit
# (also on failure or Ctrl-C). P is l7tlb<pid % 100000>.
#
# Configurations, in this order in every round:
#   a  nothing attached
#   b  l7tap attached, TLS uprobes on (the default)
#   n  l7tap attached with --no-tls-uprobes (the TC program only)
# l7tap runs as overhead.sh runs it: attach --iface '<P>*' --output json.
# A binary without TLS uprobes (main before issue 13's merge) runs a and n
# only (its n without the flag it does not know: it has no uprobes).
#
# Workloads:
#   h1     h2load --h1 over TLS (HTTP/1.1, ALPN http/1.1) to nginx:8443
#   h2     h2load over TLS (ALPN h2) to nginx:8444
#   calls  the per-call figure: python3 (OpenSSL 3 through python's ssl)
#          holding both ends of one TLS connection over loopback in the
#          server namespace, in one thread: CALLS round trips of 64 bytes,
#          each an SSL_write and an SSL_read on both ends (4 SSL calls); the
#          process's CPU time (user + system) per round trip. Loopback: no TC program sees it, and one
#          thread: no scheduling; so b - a is the uprobes' cost (the traps,
#          the programs, the syscall tracepoints).
# Per run: requests/s, daemon CPU, run_time_ns/run_cnt of the daemon's BPF
# programs (kernel.bpf_stats_enabled=1 while running, restored after): for
# b, mostly the uprobe programs' own time, without the trap into the kernel
# that the calls workload includes.
#
# Environment (defaults): DUR=10 (s per h2load run), H2_T=2, H2_C=16,
# H2_M=10 (h2 streams per connection; h1 runs one at a time), CALLS=200000,
# NGINX_WORKERS=2, WORKLOADS="h1 h2 calls", CONFIGS="a b n", OUT=directory
# for the raw outputs, runs.tsv and report.md (default
# /tmp/l7tap-tls-overhead.DATE; kept), QUIET_WAIT=900 (s to wait, before each
# run, for other processes' TLS uprobes to go: they would trap this bed too).
set -euo pipefail
L7=$(realpath "${1:?usage: tls_overhead.sh PATH/TO/l7tap [ROUNDS]}")
ROUNDS=${2:-5}
DUR=${DUR:-10} H2_T=${H2_T:-2} H2_C=${H2_C:-16} H2_M=${H2_M:-10} CALLS=${CALLS:-200000}
NGINX_WORKERS=${NGINX_WORKERS:-2} WORKLOADS=${WORKLOADS:-h1 h2 calls} CONFIGS=${CONFIGS:-a b n}
OUT=${OUT:-/tmp/l7tap-tls-overhead.$(date +%Y%m%d-%H%M%S)}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/testbed.sh
. "$HERE/testbed.sh"
[ "$(id -u)" = 0 ] || { echo "tls_overhead.sh: run as root" >&2; exit 1; }
[ -x "$L7" ] || { echo "tls_overhead.sh: $L7 is not executable" >&2; exit 1; }
for t in nginx h2load openssl bpftool /usr/bin/python3; do
  command -v $t >/dev/null || { echo "tls_overhead.sh: no $t (bash .ci/deps installs it)" >&2; exit 1; }
done

# What the binary can do: before the merge it has neither the uprobes nor the flag.
HAS_TLS=0
"$L7" attach --help 2>&1 | grep -q -- --no-tls-uprobes && HAS_TLS=1
NO_TLS_ARG=
if [ $HAS_TLS = 1 ]; then
  NO_TLS_ARG=--no-tls-uprobes
else
  echo "tls_overhead.sh: $L7 has no TLS uprobes: configurations a and n only" >&2
  CONFIGS=$(echo "$CONFIGS" | tr ' ' '\n' | grep -v '^b$' | xargs)
fi

# --- test bed --------------------------------------------------------------
ID=$(( $$ % 100000 ))
P=l7tlb$ID                      # node-side veths: ${P}a, ${P}b (<= 11 chars)
TMP=$(mktemp -d /tmp/l7tlb.XXXXXX)
mkdir -p "$OUT/raw"
STATS_OLD=$(sysctl -n kernel.bpf_stats_enabled)
L7PID=
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  [ -n "$L7PID" ] && kill -INT "$L7PID" 2>/dev/null && wait "$L7PID"
  [ -n "${A:-}" ] && rm -rf "/etc/netns/$A"
  testbed_down
  sysctl -qw kernel.bpf_stats_enabled="$STATS_OLD"
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

testbed_up "$P" 10.84
SRV=10.84.2.2
NAME=api.l7tl.test

# A CA and the server's certificate (SAN: the name the clients use, the address).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$TMP/ca.key" -out "$TMP/ca.pem" -subj "/CN=l7tl bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$TMP/server.key" -out "$TMP/server.csr" -subj "/CN=$NAME" 2>/dev/null
printf 'subjectAltName=DNS:%s,IP:%s,IP:127.0.0.1\n' "$NAME" "$SRV" >"$TMP/ext.cnf"
openssl x509 -req -in "$TMP/server.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial \
  -days 2 -extfile "$TMP/ext.cnf" -out "$TMP/server.pem" 2>/dev/null

mkdir -p "$TMP/www"
printf 'thirty-five bytes of small file...\n' >"$TMP/www/small.txt"
chmod 755 "$TMP"
cat >"$TMP/nginx.conf" <<CONF
worker_processes $NGINX_WORKERS; pid $TMP/nginx.pid; error_log $TMP/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP;
  uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  ssl_certificate $TMP/server.pem; ssl_certificate_key $TMP/server.key;
  server { listen $SRV:8443 ssl; listen $SRV:8444 ssl http2; root $TMP/www; } }
CONF
ip netns exec "$B" nginx -c "$TMP/nginx.conf"
# h2load resolves the certificate's name (its SNI) like a client of a
# service would: `ip netns exec` mounts /etc/netns/NS/hosts on /etc/hosts.
mkdir -p "/etc/netns/$A"
echo "$SRV $NAME" >"/etc/netns/$A/hosts"

# The per-call loop: both ends of one TLS connection over loopback in one
# thread of one process (client SSL_write, server SSL_read, server SSL_write,
# client SSL_read: 64 bytes each), so that no scheduling between processes
# enters the time; prints the CPU seconds CALLS round trips take (20 times
# the least of 20 blocks).
cat >"$TMP/calls.py" <<'PY'
import socket, ssl, sys, time
cert, key, ca, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lsock = socket.create_server(("127.0.0.1", 0))
c_raw = socket.create_connection(lsock.getsockname())
s_raw, _ = lsock.accept()
for x in (c_raw, s_raw):
    x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(cert, key)
cctx = ssl.create_default_context(cafile=ca)
c = cctx.wrap_socket(c_raw, server_hostname="127.0.0.1", do_handshake_on_connect=False)
s = sctx.wrap_socket(s_raw, server_side=True, do_handshake_on_connect=False)
c.setblocking(False)
s.setblocking(False)
done = [False, False]
while not all(done):  # both handshakes, in turns
    for i, x in enumerate((c, s)):
        if not done[i]:
            try:
                x.do_handshake()
                done[i] = True
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
c.setblocking(True)
s.setblocking(True)
msg = b"m" * 64
def round_trips(k):
    for _ in range(k):
        c.sendall(msg)
        s.recv(64)
        s.sendall(msg)
        c.recv(64)
round_trips(1000)  # warm-up; TLS 1.3's session tickets
# CPU time of this process, user and system: the traps and the BPF programs
# run in its context and count there. The least of 20 blocks (timeit's rule):
# other load on the shared machine only ever adds to a block's time.
blocks = []
for _ in range(20):
    t0 = time.process_time()
    round_trips(n // 20)
    blocks.append(time.process_time() - t0)
print(f"{min(blocks) * 20:.6f}")
PY

PIDS=$(cat "$TMP/nginx.pid"; pgrep -P "$(cat "$TMP/nginx.pid")" | xargs)
for port in 8443 8444; do
  extra=; [ $port = 8443 ] && extra=--h1
  # shellcheck disable=SC2086
  ip netns exec "$A" h2load $extra -n 10 -c 1 "https://$NAME:$port/small.txt" | grep -q '10 succeeded' ||
    { echo "tls_overhead.sh: no TLS answer from $SRV:$port" >&2; exit 1; }
done
ip netns exec "$B" /usr/bin/python3 "$TMP/calls.py" "$TMP/server.pem" "$TMP/server.key" \
  "$TMP/ca.pem" 100 >/dev/null || { echo "tls_overhead.sh: the calls loop fails" >&2; exit 1; }
sysctl -qw kernel.bpf_stats_enabled=1

# --- measuring -------------------------------------------------------------
ticks_of() { local s=0 p t; for p in "$@"; do
  t=$(awk '{print $14 + $15}' /proc/$p/stat 2>/dev/null || echo 0); s=$((s + t)); done; echo $s; }
# run_time_ns and run_cnt summed over the BPF programs the daemon holds.
bpf_stats() {
  local ids id ns=0 cnt=0 a b
  ids=$(grep -h '^prog_id:' /proc/$1/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -u)
  for id in $ids; do
    read -r a b < <(bpftool -j prog show id "$id" | /usr/bin/python3 -c \
      'import json,sys; p=json.load(sys.stdin); print(p.get("run_time_ns",0), p.get("run_cnt",0))')
    ns=$((ns + a)); cnt=$((cnt + b))
  done
  echo $ns $cnt
}
start_l7tap() {  # $1: file for the daemon's standard error, $2...: extra options
  local err=$1; shift
  : >"$err"  # before the daemon's shell opens it: the loop below reads it at once
  ip netns exec "$N" "$L7" attach --iface "$P*" --output json --metrics-addr none "$@" \
    >/dev/null 2>"$err" &
  L7PID=$!
  for _ in $(seq 300); do
    grep -q 'stop with SIGINT' "$err" && [ "$(grep -c 'attached to' "$err" || true)" -ge 2 ] && return 0
    kill -0 $L7PID 2>/dev/null || break
    sleep 0.1
  done
  echo "tls_overhead.sh: l7tap did not attach:" >&2; cat "$err" >&2; exit 1
}
stop_l7tap() { kill -INT $L7PID; wait $L7PID || true; L7PID=; }

RUNS="$OUT/runs.tsv"
echo -e "round\tworkload\tconfig\tvalue\tunit\trequests\tdaemon_ticks\tbpf_ns\tbpf_cnt\tserver_ticks\thz" >"$RUNS"
HZ=$(getconf CLK_TCK)
# Uprobes go on the library file for every process that maps it: another
# l7tap with TLS uprobes (a test run on the same machine) would trap this
# bed's nginx and clients too, in every configuration. Wait until none is
# loaded (at most QUIET_WAIT seconds), so no run measures someone else's.
tls_programs_loaded() { bpftool prog show 2>/dev/null | grep -cE 'name l7tap_(ssl|go)_' || true; }
wait_quiet() {
  local waited=0
  while [ "$(tls_programs_loaded)" != 0 ]; do
    ((waited % 30 == 0)) && echo "tls_overhead.sh: another process has TLS uprobes loaded; waiting" >&2
    ((waited++ < ${QUIET_WAIT:-900})) || { echo "tls_overhead.sh: still not quiet" >&2; exit 1; }
    sleep 1
  done
}

# One measured run: $1 round, $2 workload, $3 config.
run() {
  local round=$1 wl=$2 cfg=$3 tag="$OUT/raw/r$1-$2-$3" value unit reqs
  wait_quiet
  case $cfg in
    b) start_l7tap "$tag.l7tap" ;;
    n) start_l7tap "$tag.l7tap" $NO_TLS_ARG ;;
  esac
  local d0=0 d1=0 k0="0 0" k1="0 0" s0 s1
  if [ -n "$L7PID" ]; then d0=$(ticks_of $L7PID); k0=$(bpf_stats $L7PID); fi
  s0=$(ticks_of $PIDS)
  case $wl in
    h1) ip netns exec "$A" h2load --h1 -t "$H2_T" -c "$H2_C" -D "$DUR" \
          "https://$NAME:8443/small.txt" >"$tag.out" 2>"$tag.err" &
        ;;
    h2) ip netns exec "$A" h2load -t "$H2_T" -c "$H2_C" -m "$H2_M" -D "$DUR" \
          "https://$NAME:8444/small.txt" >"$tag.out" 2>"$tag.err" &
        ;;
    calls) ip netns exec "$B" /usr/bin/python3 "$TMP/calls.py" "$TMP/server.pem" \
             "$TMP/server.key" "$TMP/ca.pem" "$CALLS" >"$tag.out" 2>"$tag.err" &
        ;;
  esac
  wait $!  # in the background so that a signal to this script stops it at once
  s1=$(ticks_of $PIDS)
  if [ -n "$L7PID" ]; then d1=$(ticks_of $L7PID); k1=$(bpf_stats $L7PID); fi
  [ -n "$L7PID" ] && stop_l7tap
  if [ "$wl" = calls ]; then
    value=$(awk -v n="$CALLS" '{printf "%.3f", $1 / n * 1e6}' "$tag.out") unit=us_per_round_trip
    reqs=$((CALLS + 1000))  # with the warm-up, which the daemon sees too
  else
    grep -q "succeeded, 0 failed, 0 errored" "$tag.out" ||
      { echo "tls_overhead.sh: h2load failed requests in $tag.out" >&2; exit 1; }
    value=$(sed -n 's/^finished in [0-9.]*s, \([0-9.]*\) req\/s.*/\1/p' "$tag.out") unit=req_per_s
    reqs=$(sed -n 's/^requests: [0-9]* total, [0-9]* started, [0-9]* done, \([0-9]*\) succeeded.*/\1/p' "$tag.out")
  fi
  set -- $k0 $k1
  echo -e "$round\t$wl\t$cfg\t$value\t$unit\t$reqs\t$((d1 - d0))\t$(($3 - $1))\t$(($4 - $2))\t$((s1 - s0))\t$HZ" >>"$RUNS"
  printf '  round %s %-5s %s: %s %s\n' "$round" "$wl" "$cfg" "$value" "$unit" >&2
}

echo "tls_overhead.sh: l7tap $L7 (TLS uprobes: $HAS_TLS), $ROUNDS rounds, results in $OUT" >&2
{ echo "date $(date -Is)"; echo "kernel $(uname -r)"; echo "cpus $(nproc)";
  echo "l7tap $L7 tls_uprobes $HAS_TLS configs '$CONFIGS'"; echo "nginx workers $NGINX_WORKERS";
  echo "rounds $ROUNDS dur $DUR calls $CALLS"; echo "h2load -t $H2_T -c $H2_C -m $H2_M (h1: --h1)";
  echo "openssl $(openssl version)"; echo "loadavg_start $(cat /proc/loadavg)"; } >"$OUT/meta.txt"
for round in $(seq "$ROUNDS"); do
  for wl in $WORKLOADS; do
    for cfg in $CONFIGS; do run "$round" "$wl" "$cfg"; done
  done
done
echo "loadavg_end $(cat /proc/loadavg)" >>"$OUT/meta.txt"

# Medians per workload and configuration, and the ratios to a. Requests are
# round trips for calls.
/usr/bin/python3 - "$RUNS" <<'PY' | tee "$OUT/report.md"
import collections, csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
by = collections.defaultdict(list)
for r in rows:
    by[(r["workload"], r["config"])].append(r)
names = {"a": "nothing attached", "b": "l7tap, TLS uprobes", "n": "l7tap --no-tls-uprobes"}
med = statistics.median
print("| workload | config | runs | median | vs a | daemon CPU ms per 1000 requests "
      "| BPF runs per request | BPF ns per run |")
print("|---|---|---|---|---|---|---|---|")
for wl in dict.fromkeys(r["workload"] for r in rows):
    base = None
    for cfg in ("a", "b", "n"):
        rs = by.get((wl, cfg))
        if not rs:
            continue
        v = med(float(r["value"]) for r in rs)
        base = v if cfg == "a" else base
        vs = "" if base is None or cfg == "a" else f"{v / base:.3f}x"
        if cfg == "a":
            extra = "| | |"
        else:
            cpu = med(1e6 * int(r["daemon_ticks"]) / int(r["hz"]) / int(r["requests"]) for r in rs)
            runs = med(int(r["bpf_cnt"]) / int(r["requests"]) for r in rs)
            ns = med(int(r["bpf_ns"]) / max(1, int(r["bpf_cnt"])) for r in rs)
            extra = f"{cpu:.1f} | {runs:.1f} | {ns:.0f} |"
        print(f"| {wl} | {cfg}: {names[cfg]} | {len(rs)} | {v:.1f} {rs[0]['unit']} | {vs} | {extra}")
for cfg in ("b", "n"):
    if ("calls", cfg) in by and ("calls", "a") in by:
        d = med(float(r["value"]) for r in by[("calls", cfg)]) - \
            med(float(r["value"]) for r in by[("calls", "a")])
        print(f"\ncalls, {names[cfg]}: {d:+.2f} us per round trip, {d / 4:+.2f} us per SSL call "
              "(4 per round trip; medians)")
PY
