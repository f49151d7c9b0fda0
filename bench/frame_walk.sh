#!/bin/bash
# HTTP/2 frame-aware windows: what the kernel copies of h2c traffic with plain
# windows (--no-capture-control) and with capture control (the frame walk:
# HEADERS etc. whole, of DATA only the 9-byte frame header + 5 payload bytes).
#   bench/frame_walk.sh PATH/TO/l7tap [REQUESTS]          (root; default 100)
# Creates namespaces <P>-n (node, routes), <P>-a (h2load), <P>-b (nghttpd
# serving a 1 MB file over h2c) with veths <P>a/<P>b on the node side, 10.85.x
# addresses, and removes them on exit (also on failure or Ctrl-C). For windows
# 256, 1024 and 4096, capture control off and on: l7tap attach to '<P>*',
# h2load -n REQUESTS -c 1 -m 10, SIGINT, then the daemon's kernel counters and
# its JSON records ("full body size": records with http.response.body.size
# 1048576; "walked": segments the kernel walked). Raw outputs in OUT
# (default /tmp/l7tap-framewalk.DATE).
# Environment: WINDOWS (default "256 1024 4096"), L7TAP_ARGS (extra attach
# options, e.g. --wakeup-bytes 0), LOSS=1 (bench/random_drop.bpf.c drops one
# server skb in 200 in the server's own namespace, before l7tap's hook: holes
# the walk must survive or recover from), OUT.
# shellcheck disable=SC2086  # word splitting of names and commands is intended
set -euo pipefail
L7=$(realpath "${1:?usage: frame_walk.sh PATH/TO/l7tap [REQUESTS]}")
REQ=${2:-100}
WINDOWS=${WINDOWS:-256 1024 4096} L7TAP_ARGS=${L7TAP_ARGS:-}
OUT=${OUT:-/tmp/l7tap-framewalk.$(date +%Y%m%d-%H%M%S)}
[ "$(id -u)" = 0 ] || { echo "frame_walk.sh: run as root" >&2; exit 1; }
[ -x "$L7" ] || { echo "frame_walk.sh: $L7 is not executable" >&2; exit 1; }

need=()
command -v nghttpd >/dev/null || need+=(nghttp2-server)
command -v h2load >/dev/null || need+=(nghttp2-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "frame_walk.sh: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/testbed.sh
. "$HERE/testbed.sh"
P=l7fw$(( $$ % 100000 ))        # node-side veths: ${P}a, ${P}b (<= 11 chars)
A=$P-a B=$P-b N=$P-n
mkdir -p "$OUT/www"
L7PID=
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  [ -n "$L7PID" ] && { kill -INT "$L7PID"; wait "$L7PID"; }
  testbed_down
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

testbed_up "$P" 10.85
URL=http://10.85.2.2:8443/1m.bin

head -c 1048576 /dev/urandom >"$OUT/www/1m.bin"
if [ "${LOSS:-0}" = 1 ]; then
  clang -O2 -g -target bpf -I/usr/include/"$(gcc -print-multiarch)" \
    -c "$HERE/random_drop.bpf.c" -o "$OUT/random_drop.o"
  ip netns exec $B tc qdisc add dev eth0 clsact
  ip netns exec $B tc filter add dev eth0 egress bpf direct-action obj "$OUT/random_drop.o" sec tc
fi
NGHTTPD="nghttpd --no-tls -d $OUT/www 8443"
ip netns exec $B $NGHTTPD >"$OUT/nghttpd.log" 2>&1 &
disown
for _ in $(seq 50); do
  ip netns exec $A h2load -n 1 -c 1 "$URL" 2>/dev/null | grep -q '1 succeeded' && break
  sleep 0.1
done
ip netns exec $A h2load -n 1 -c 1 "$URL" | grep -q '1 succeeded' ||
  { echo "frame_walk.sh: no h2c answer from $URL" >&2; exit 1; }

H2LOAD="h2load -n $REQ -c 1 -m 10 $URL"
{ echo "# $(date -Is), kernel $(uname -r), $(nproc) cpus"
  echo "# l7tap $L7, $(date -r "$L7" -Is), sha256 $(sha256sum "$L7" | cut -c1-16)"
  echo "ip netns exec $B $NGHTTPD"; } >"$OUT/commands.txt"
TABLE="| config | requests | HTTP records | with status 200 | flagged | payload bytes | copied bytes | copied per exchange | ringbuf_full | walk lost | walked | full body size |
|---|---|---|---|---|---|---|---|---|---|---|---|"
# $1: name of a kernel counter, $2: the daemon's standard error.
counter() { sed -n 's/^l7tap: kernel: //p' "$2" | tr ',' '\n' | awk -v n="$1" '$1 == n {print $2}'; }
for w in $WINDOWS; do
  for cc in off on; do
    tag="$OUT/w$w-cc-$cc"; args="--window $w $L7TAP_ARGS"
    [ $cc = off ] && args="$args --no-capture-control"
    cmd="$L7 attach --iface '$P*' --output json --metrics-addr none $args"
    echo "ip netns exec $N $cmd >$tag.json 2>$tag.err" >>"$OUT/commands.txt"
    echo "ip netns exec $A $H2LOAD >$tag.h2load" >>"$OUT/commands.txt"
    # shellcheck disable=SC2086
    ip netns exec $N "$L7" attach --iface "$P*" --output json --metrics-addr none $args >"$tag.json" 2>"$tag.err" &
    L7PID=$!
    for _ in $(seq 100); do
      [ "$(grep -c 'attached to' "$tag.err" || true)" -ge 2 ] && break
      kill -0 $L7PID 2>/dev/null || { cat "$tag.err" >&2; exit 1; }
      sleep 0.1
    done
    sleep 0.5
    ip netns exec $A $H2LOAD >"$tag.h2load" 2>&1 &
    wait $!
    sleep 0.5
    kill -INT $L7PID; wait $L7PID || echo "frame_walk.sh: l7tap exited $?" >&2; L7PID=
    done_req=$(awk '/^requests:/{print $8}' "$tag.h2load")
    http=$(grep -c '"type":"http"' "$tag.json" || true)
    ok=$(grep '"type":"http"' "$tag.json" | grep -c '"http.response.status_code":200' || true)
    full=$(grep '"type":"http"' "$tag.json" | grep -c '"http.response.body.size":1048576,' || true)
    flagged=$(grep '"type":"http"' "$tag.json" | grep -c '"l7tap.flags"' || true)
    pay=$(counter payload_bytes "$tag.err"); cop=$(counter copied_bytes "$tag.err")
    per=-; [ "${done_req:-0}" -gt 0 ] && [ -n "$cop" ] && per=$((cop / done_req))
    TABLE+="
| window $w, capture control $cc | ${done_req:-?} | $http | $ok | $flagged | ${pay:-?} | ${cop:-?} | $per | $(counter ringbuf_full "$tag.err") | $(counter walk_lost "$tag.err") | $(counter walked "$tag.err") | $full |"
    { echo "== window $w, capture control $cc"; grep '^l7tap:' "$tag.err"
      grep -o '"l7tap.flags":\[[^]]*\]' "$tag.json" | sort | uniq -c || true; } >>"$OUT/summaries.txt"
  done
done
echo "Commands:"; sed 's/^/    /' "$OUT/commands.txt"; echo
echo "$TABLE" | tee "$OUT/table.md"
echo; echo "Daemon summaries and flag counts: $OUT/summaries.txt"
