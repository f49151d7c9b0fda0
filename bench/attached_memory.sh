#!/usr/bin/env bash
# Resident memory of the whole daemon, attached, with many open idle
# connections and metrics on.
#
#   bench/attached_memory.sh PATH/TO/l7tap [CONNECTIONS] [ROUNDS]    # root
#
# Builds the test bed of bench/testbed.sh (client pod, server pod, node
# routing between them; prefix l7memPID, all removed on exit, also on
# failure), starts `l7tap attach --iface 'l7memPID*' --output json
# --metrics-addr 127.0.0.1:0` in the node, and reads its VmRSS and VmHWM
# (/proc/PID/status):
#   idle   attached, metrics scraped once, no connection yet;
#   open   CONNECTIONS (default 10,000) connections from the client pod to a
#          python3 server in the server pod, each carrying one HTTP/1.1
#          request and its response and then kept open, once the daemon's
#          l7tap_flows_tracked gauge counts them all.
# Per connection: (open - idle) / CONNECTIONS. Nothing depends on timing:
# the client holds its connections until it is told to close them, after
# the reading. With ROUNDS > 1 (default 1) the whole run repeats with a new
# daemon and the medians are printed too. SMAPS=1 also prints the daemon's
# /proc/PID/smaps_rollup and its largest mappings with the connections open.
set -euo pipefail

L7=$(realpath "${1:?usage: attached_memory.sh PATH/TO/l7tap [CONNECTIONS] [ROUNDS]}")
CONNS=${2:-10000}
ROUNDS=${3:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/testbed.sh
. "$HERE/testbed.sh"
[ "$(id -u)" = 0 ] || { echo "attached_memory.sh: run as root" >&2; exit 1; }
[ -x "$L7" ] || { echo "attached_memory.sh: $L7 is not executable" >&2; exit 1; }
PY=$(command -v python3) || { echo "attached_memory.sh: needs python3" >&2; exit 1; }
command -v curl >/dev/null || { echo "attached_memory.sh: needs curl" >&2; exit 1; }

# Per process: the client and the server each hold CONNS descriptors.
ulimit -n $((CONNS + 1024)) 2>/dev/null ||
  { echo "attached_memory.sh: cannot raise the open files limit to $((CONNS + 1024)) (hard limit $(ulimit -Hn))" >&2; exit 1; }

ID=$(( $$ % 100000 ))
P=l7mem$ID                      # node-side veths ${P}a, ${P}b (<= 11 chars)
TMP=$(mktemp -d /tmp/l7mem.XXXXXX)
L7PID='' SRVPID='' CLIPID=''
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  for p in $CLIPID $L7PID $SRVPID; do kill "$p" 2>/dev/null; done
  testbed_down
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

testbed_up "$P" 10.85
SRV=10.85.2.2
# Room for every connection: file descriptors, the accept backlog, ports.
ip netns exec $B sysctl -qw net.core.somaxconn=65535
ip netns exec $A sysctl -qw net.ipv4.ip_local_port_range="10000 65000"

# The server answers every request with a small response and keeps the
# connection open; it prints "ready" once listening.
cat >"$TMP/server.py" <<'EOF'
import asyncio, sys
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                break
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()
async def main():
    server = await asyncio.start_server(serve, sys.argv[1], 8080, backlog=65535)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
EOF
# The client opens N connections, 200 at a time, sends one request on each
# and reads its response, prints "open N" and holds them until its standard
# input closes.
cat >"$TMP/client.py" <<'EOF'
import asyncio, sys
HOST, N = sys.argv[1], int(sys.argv[2])
REQUEST = b"GET /hello HTTP/1.1\r\nHost: l7mem\r\nUser-Agent: l7mem\r\n\r\n"
async def one(conns):
    reader, writer = await asyncio.open_connection(HOST, 8080)
    writer.write(REQUEST)
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    await reader.readexactly(2)
    conns.append(writer)
async def main():
    conns = []
    for start in range(0, N, 200):
        await asyncio.gather(*(one(conns) for _ in range(start, min(N, start + 200))))
    print("open", len(conns), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for w in conns:
        w.close()
asyncio.run(main())
EOF

ip netns exec $B "$PY" "$TMP/server.py" $SRV >"$TMP/server.out" 2>&1 &
SRVPID=$!
for _ in $(seq 100); do grep -q ready "$TMP/server.out" && break; sleep 0.1; done
grep -q ready "$TMP/server.out" || { echo "attached_memory.sh: server did not start" >&2; cat "$TMP/server.out" >&2; exit 1; }

status() {  # VmRSS VmHWM in KB
  awk '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } END { print r, h }' /proc/$L7PID/status
}
gauge() {  # the value of a metric without labels
  ip netns exec $N curl -sf "$METRICS" | awk -v m="$1" '$1 == m { printf "%d\n", $2 }'
}

round() {
  ip netns exec $N "$L7" attach --iface "$P*" --output json \
    --metrics-addr 127.0.0.1:0 >/dev/null 2>"$TMP/l7tap.err" &
  L7PID=$!
  for _ in $(seq 200); do
    [ "$(grep -c 'attached to' "$TMP/l7tap.err" || true)" -ge 2 ] &&
      grep -q 'metrics on' "$TMP/l7tap.err" && break
    kill -0 $L7PID 2>/dev/null || break
    sleep 0.1
  done
  METRICS=$(sed -n 's|.*metrics on \(http://[^ ]*\).*|\1|p' "$TMP/l7tap.err" | head -1)
  [ -n "$METRICS" ] || { echo "attached_memory.sh: l7tap did not attach:" >&2; cat "$TMP/l7tap.err" >&2; exit 1; }
  gauge l7tap_flows_tracked >/dev/null  # the first scrape builds the endpoint's buffers
  read -r idle_rss idle_hwm <<<"$(status)"

  # The client's standard input is a fifo held open here until the reading.
  rm -f "$TMP/hold" && mkfifo "$TMP/hold"
  ip netns exec $A "$PY" "$TMP/client.py" $SRV "$CONNS" <"$TMP/hold" >"$TMP/client.out" 2>&1 &
  CLIPID=$!
  exec 3>"$TMP/hold"
  while ! grep -q '^open' "$TMP/client.out"; do
    kill -0 $CLIPID 2>/dev/null || { echo "attached_memory.sh: client failed:" >&2; cat "$TMP/client.out" >&2; exit 1; }
    sleep 0.2
  done
  # Every connection's packets read by the daemon: its flow table counts them.
  local tracked=0
  while [ "${tracked:-0}" -lt "$CONNS" ]; do
    sleep 0.2
    tracked=$(gauge l7tap_flows_tracked)
    kill -0 $L7PID 2>/dev/null || { echo "attached_memory.sh: l7tap died:" >&2; cat "$TMP/l7tap.err" >&2; exit 1; }
  done
  read -r open_rss open_hwm <<<"$(status)"
  if [ "${SMAPS:-0}" = 1 ]; then
    cat /proc/$L7PID/smaps_rollup
    awk '/^[0-9a-f]+-[0-9a-f]+ / { name = $6 ? $6 : "[anon]"; range = $1 }
         /^Rss:/ { if ($2 >= 512) printf "%8d KB  %s %s\n", $2, range, name }' /proc/$L7PID/smaps |
      sort -rn | head -15
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%.0f\n' "$r" "$idle_rss" "$idle_hwm" "$open_rss" "$open_hwm" \
    "$tracked" "$(echo "($open_rss - $idle_rss) * 1024 / $CONNS" | bc -l)" | tee -a "$TMP/rows"

  exec 3>&-  # the client closes its connections and exits
  wait $CLIPID || true
  CLIPID=
  kill -INT $L7PID
  wait $L7PID || true
  L7PID=
}

printf 'round\tidle VmRSS KB\tidle VmHWM KB\topen VmRSS KB\topen VmHWM KB\tflows tracked\tbytes per connection\n'
for r in $(seq "$ROUNDS"); do round; done
if [ "$ROUNDS" -gt 1 ]; then
  "$PY" - "$TMP/rows" <<'EOF'
import statistics, sys
rows = [line.split("\t")[1:] for line in open(sys.argv[1])]
print("median\t" + "\t".join("%g" % statistics.median(float(r[i]) for r in rows) for i in range(6)))
EOF
fi
