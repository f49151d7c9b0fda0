#!/bin/bash
# What timing a function by uprobes (issue 14) costs the traced process, and
# how many events reach user space: a Go loop calling a never-inlined
# function (tests/apptrace/programs/go_server, `apptracego hot`), untraced
# and traced by `l7tap trace --pid`, interleaved over rounds; medians.
#   bench/apptrace_overhead.sh BUILD/daemon/l7tap [ROUNDS]
# Root (uprobes). No namespaces or interfaces: the loop does no I/O.
#
# Configurations, in this order in every round and rate:
#   u  untraced
#   c  l7tap trace --pid P --func main.hotFunction (a record per call, to /dev/null)
#   h  the same with --histogram (in-kernel histograms, exemplars only)
# Rates (calls per second): 50000 (the loop sleeps between batches: its wall
# time is fixed, so the figure is its CPU time) and 0 (as fast as it can).
#
# Per run: calls, CPU ns per call of the loop's process (user + system: the
# trap and the BPF programs run in its context), and, traced, the events
# l7tap read from the kernel (its exit summary's `E events read`, `L lost`)
# per second of the loop, and l7tap's own CPU time.
#
# Environment (defaults): DUR=5 (s per run), RATES="50000 0", CONFIGS="u c h",
# OUT=directory for the raw outputs, runs.tsv and report.md (default
# /tmp/l7tap-apptrace-overhead.DATE; kept), QUIET_WAIT=900 (s to wait, before
# each run, for other processes' l7tap uprobes and syscall tracepoints to go:
# their programs run in every process's syscalls, this loop's too).
set -euo pipefail
L7=$(realpath "${1:?usage: apptrace_overhead.sh PATH/TO/l7tap [ROUNDS]}")
ROUNDS=${2:-3}
DUR=${DUR:-5} RATES=${RATES:-50000 0} CONFIGS=${CONFIGS:-u c h}
OUT=${OUT:-/tmp/l7tap-apptrace-overhead.$(date +%Y%m%d-%H%M%S)}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$HERE/../tests/apptrace/programs/go_server
[ "$(id -u)" = 0 ] || { echo "apptrace_overhead.sh: run as root" >&2; exit 1; }
[ -x "$L7" ] || { echo "apptrace_overhead.sh: $L7 is not executable" >&2; exit 1; }
for t in go bpftool /usr/bin/python3; do
  command -v $t >/dev/null || { echo "apptrace_overhead.sh: no $t (bash .ci/deps installs it)" >&2; exit 1; }
done
if [ "$CONFIGS" != u ] && ! "$L7" trace --help 2>&1 | grep -q -- --func; then
  echo "apptrace_overhead.sh: $L7 has no trace command (CONFIGS=u runs the untraced loop alone)" >&2
  exit 1
fi

TMP=$(mktemp -d /tmp/l7at-bench.XXXXXX)
mkdir -p "$OUT/raw"
L7PID="" HOTPID=""
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  [ -n "$L7PID" ] && kill -INT "$L7PID" 2>/dev/null && wait "$L7PID"
  [ -n "$HOTPID" ] && kill -KILL "$HOTPID" 2>/dev/null && wait "$HOTPID"
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Offline, with Debian's golang-go: no module to download.
(cd "$SRC" && env GOCACHE="$TMP/gocache" GOPATH="$TMP/gopath" GOTOOLCHAIN=local GOPROXY=off \
  GOFLAGS= CGO_ENABLED=0 go build -o "$TMP/apptracego" .)
HOT=$TMP/apptracego

# Another l7tap's apptrace or TLS programs (a test run on the same machine)
# would run in this loop's syscalls too, in every configuration: wait until
# none is loaded (at most QUIET_WAIT seconds).
others_loaded() { bpftool prog show 2>/dev/null | grep -cE 'name l7tap_(app|ssl|go)_' || true; }
wait_quiet() {
  local waited=0
  while [ "$(others_loaded)" != 0 ]; do
    ((waited % 30 == 0)) && echo "apptrace_overhead.sh: other l7tap uprobes are loaded; waiting" >&2
    ((waited++ < ${QUIET_WAIT:-900})) || { echo "apptrace_overhead.sh: still not quiet" >&2; exit 1; }
    sleep 1
  done
}
wait_for() {  # $1: file, $2: text, $3: pid that must stay alive meanwhile
  for _ in $(seq 600); do
    grep -q "$2" "$1" && return 0
    kill -0 "$3" 2>/dev/null || break
    sleep 0.1
  done
  echo "apptrace_overhead.sh: no '$2' in $1:" >&2; cat "$1" >&2; exit 1
}
ticks_of() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

RUNS="$OUT/runs.tsv"
echo -e "round\trate\tconfig\tcalls\twall_ns\tcpu_ns\tevents\tlost\tl7tap_ticks\thz" >"$RUNS"
HZ=$(getconf CLK_TCK)

# One measured run: $1 round, $2 rate, $3 config. The loop starts once
# l7tap says it traces (the loop waits for SIGUSR1), so l7tap's events are
# the loop's calls alone.
run() {
  local round=$1 rate=$2 cfg=$3 tag="$OUT/raw/r$1-$2-$3" events=0 lost=0 t0=0 t1=0
  wait_quiet
  : >"$tag.hot"
  "$HOT" hot -wait -rate "$rate" -duration "${DUR}s" >"$tag.hot" 2>&1 &
  HOTPID=$!
  wait_for "$tag.hot" ready $HOTPID
  if [ "$cfg" != u ]; then
    local extra=()
    [ "$cfg" = h ] && extra=(--histogram --interval 3600)
    : >"$tag.l7tap"
    "$L7" trace --pid "$HOTPID" --func main.hotFunction "${extra[@]}" >/dev/null 2>"$tag.l7tap" &
    L7PID=$!
    wait_for "$tag.l7tap" tracing $L7PID
    t0=$(ticks_of $L7PID)
  fi
  kill -USR1 $HOTPID
  wait $HOTPID
  HOTPID=
  if [ -n "$L7PID" ]; then
    t1=$(ticks_of $L7PID)
    kill -INT $L7PID
    wait $L7PID || { echo "apptrace_overhead.sh: l7tap failed:" >&2; cat "$tag.l7tap" >&2; exit 1; }
    L7PID=
    read -r events lost < <(sed -n 's/^l7tap: trace: [0-9]* calls, \([0-9]*\) events read (\([0-9]*\) lost.*/\1 \2/p' \
      "$tag.l7tap")
    [ -n "$events" ] || { echo "apptrace_overhead.sh: no exit summary in $tag.l7tap" >&2; exit 1; }
  fi
  read -r calls wall cpu < <(/usr/bin/python3 -c 'import json,sys
r = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])
print(r["calls"], r["wall_ns"], r["cpu_ns"])' "$tag.hot")
  echo -e "$round\t$rate\t$cfg\t$calls\t$wall\t$cpu\t$events\t$lost\t$((t1 - t0))\t$HZ" >>"$RUNS"
  printf '  round %s rate %-6s %s: %s calls, %s cpu ns/call, %s events, %s lost\n' "$round" "$rate" \
    "$cfg" "$calls" "$((cpu / calls))" "$events" "$lost" >&2
}

echo "apptrace_overhead.sh: l7tap $L7, $ROUNDS rounds, results in $OUT" >&2
{ echo "date $(date -Is)"; echo "kernel $(uname -r)"; echo "cpus $(nproc)"; echo "l7tap $L7";
  echo "rounds $ROUNDS dur $DUR rates '$RATES' configs '$CONFIGS'"; go version;
  echo "loadavg_start $(cat /proc/loadavg)"; } >"$OUT/meta.txt"
for round in $(seq "$ROUNDS"); do
  for rate in $RATES; do
    for cfg in $CONFIGS; do run "$round" "$rate" "$cfg"; done
  done
done
echo "loadavg_end $(cat /proc/loadavg)" >>"$OUT/meta.txt"

/usr/bin/python3 - "$RUNS" <<'PY' | tee "$OUT/report.md"
import collections, csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
by = collections.defaultdict(list)
for r in rows:
    by[(r["rate"], r["config"])].append(r)
names = {"u": "untraced", "c": "trace, per call", "h": "trace --histogram"}
med = statistics.median
print("| rate (calls/s) | config | runs | calls/s done | CPU ns per call | added ns per call "
      "| events read per s | lost | l7tap CPU % of a core |")
print("|---|---|---|---|---|---|---|---|---|")
for rate in dict.fromkeys(r["rate"] for r in rows):
    base = None
    for cfg in ("u", "c", "h"):
        rs = by.get((rate, cfg))
        if not rs:
            continue
        per_call = med(int(r["cpu_ns"]) / int(r["calls"]) for r in rs)
        done = med(int(r["calls"]) / int(r["wall_ns"]) * 1e9 for r in rs)
        base = per_call if cfg == "u" else base
        added = "" if base is None or cfg == "u" else f"{per_call - base:+.0f}"
        if cfg == "u":
            extra = "| | |"
        else:
            ev = med(int(r["events"]) / int(r["wall_ns"]) * 1e9 for r in rs)
            lost = med(int(r["lost"]) for r in rs)
            cpu = med(100 * int(r["l7tap_ticks"]) / int(r["hz"]) / (int(r["wall_ns"]) / 1e9)
                      for r in rs)
            extra = f"{ev:.0f} | {lost:.0f} | {cpu:.1f} |"
        label = "max" if rate == "0" else rate
        print(f"| {label} | {cfg}: {names[cfg]} | {len(rs)} | {done:.0f} | {per_call:.0f} "
              f"| {added} | {extra}")
PY
