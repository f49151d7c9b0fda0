#!/usr/bin/python3
"""Privileged end-to-end test of function latency by uprobes (issue 14):
real servers whose handlers are timed by `l7tap trace` and by
`l7tap attach --trace-config`, in pod-like namespaces:

    client eth0 10.92.1.2 ──veth── l7at<pid>a 10.92.1.1 ┐ node namespace: router,
    server eth0 10.92.2.2 ──veth── l7at<pid>b 10.92.2.1 ┘ l7tap

The programs (tests/apptrace/programs) are built once per run, offline:
the Go server (Debian's golang-go; a copy stripped with -ldflags="-s -w")
and the C server (cc -O2 -g -fno-omit-frame-pointer, USDT probes from
<sys/sdt.h>). In the server namespace: the Go server on 8080, the stripped
Go server on 8081, the C server on 8090. GET /user?sleep_ms=S&bytes=N
sleeps S ms in the handler, then sends N body bytes from inside it.

What it checks, per the contract of issue 14 (docs: the plan's "CLI"):
- `trace --pid` on the Go server: one app_call record per request, with
  the function's name, the server's pid, one goroutine per connection, a
  duration of at least the handler's sleep, the bytes sent equal to the
  response as it is on the socket (headers and body, as curl counts them),
  the socket's endpoints; the exit summary counts the calls and no loss;
  the responses are those without l7tap (status, sizes, body checksum);
- a Go function whose entry runs twice per call (the stack grows in its
  prologue: runtime.morestack jumps back to its first instruction): one
  record per call, not a recursion that never ends;
- `--histogram` under wrk's load then a fixed number of curl requests: no
  per-call lines, only exemplars; the final table's call count of each
  function is the number of requests the server says it finished;
- errors, each one line `l7tap: trace: ...` and exit 1: a stripped binary
  (the stripped server unharmed), a function that does not exist, a pid
  that is gone, a file that is not ELF; and a usage error: exit 2;
- `--duration`: l7tap ends by itself;
- the C server: handle_request by uprobe + uretprobe (`--func`, with
  `--pid` and with `--binary`), and the USDT pair
  l7tap_test:request__start/request__done (`--usdt`), with the same checks
  as Go (one thread per connection: one thread.id);
- `attach --trace-config` with the Go server's file: each call linked to
  its exchange (the exchange record has l7tap.app.function and the call's
  l7tap.app.call_id; both have the same l7tap.exchange_id,
  CONNECTION_ID:N with N the exchange's number on its connection), in
  request order.

No time is asserted but "the call lasted at least the handler's sleep",
and a bound that only catches nonsense (a duration of minutes); every wait
is on a condition, bounded by T_EVENT.

Everything created (namespaces, veths, processes, the temp dir with the
builds) is removed on pass, failure, exception and SIGINT/SIGTERM; names
start with l7at<pid>. The run holds the flock on /tmp/l7tap-e2e.lock so
that no other e2e suite runs meanwhile.

Usage: test_apptrace.py --l7tap PATH [--keep-temp] [TestClass[.test_name] ...]

Without root, BPF, network namespaces, Go or a C compiler the tests skip
with the reason; with L7TAP_REQUIRE_PRIVILEGED set (non-empty, not "0") a
skip is a failure. The last line is "N passed, N failed, N skipped"; the
exit status is non-zero on failure.
"""

import calendar
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
# Its helpers only; importing it starts nothing (its tests run from its main()).
from test_live import sh, wait_until  # noqa: E402
from privileged_suite import arguments, basic_problem, run_on_testbed  # noqa: E402
from testbed import Daemon, Testbed  # noqa: E402

# A bound on waiting for what is bound to happen (shared CPUs): never a
# correctness condition.
T_EVENT = 60


def log(msg):
    print(f"[apptrace-e2e] {msg}", file=sys.stderr, flush=True)


# Names start with l7at<pid> (<= 12 chars + a/b); what still runs at the end is killed.
BED = Testbed("l7at", {"a": "10.92.1", "b": "10.92.2"}, log, T_EVENT, signal.SIGKILL)
PREFIX, NS_NODE, NS, IFACE, SUBNET = BED.prefix, BED.node, BED.ns, BED.iface, BED.subnet
spawn, read_tmp, wait_port, PROCS = BED.spawn, BED.read, BED.wait_port, BED.procs
CLIENT = SUBNET["a"] + ".2"
SERVER = SUBNET["b"] + ".2"
PORT = {"go": 8080, "go_strip": 8081, "c": 8090}
PROGRAMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "apptrace", "programs")
TOOLS = ["ip", "curl", "wrk", "go", "cc", "readelf", "bpftool", "ss"]
# A call that lasts this much longer than its handler's sleep has a wrong
# time, not a slow machine: the correctness bound on durations.
NONSENSE_MS = 30000
GO_FUNC = "main.handleGetUser"
GO_HEALTH = "main.handleHealth"
C_FUNC = "handle_request"
USDT = "l7tap_test:request__start:request__done"
USDT_NAME = "l7tap_test:request__start"  # what records call a USDT pair
SUMMARY = re.compile(r"l7tap: trace: (\d+) calls, (\d+) events read \((\d+) lost")

TMP = None  # BED.tmp, once made
L7TAP = None
SERVERS = {}  # name -> Popen of the servers started with the test bed
BIN = {}  # program name -> path in TMP/bin


# --- test bed -------------------------------------------------------------------


def build_programs():
    """The Go server (normal and stripped) and the C server, in TMP/bin,
    offline: Go's cache in TMP, no module download."""
    d = os.path.join(TMP, "bin")
    os.makedirs(d)
    env = dict(os.environ, GOCACHE=f"{d}/gocache", GOPATH=f"{d}/gopath", GOTOOLCHAIN="local",
               GOPROXY="off", GOFLAGS="", CGO_ENABLED="0")
    builds = [("apptracego", ["go", "build", "-o", f"{d}/apptracego", "."]),
              ("apptracego-stripped",
               ["go", "build", "-ldflags=-s -w", "-o", f"{d}/apptracego-stripped", "."]),
              ("c_server", ["cc", "-O2", "-g", "-fno-omit-frame-pointer", "-Wall", "-Wextra",
                            "-pthread", "-o", f"{d}/c_server",
                            os.path.join(PROGRAMS, "c_server.c")])]
    for name, cmd in builds:
        log(" ".join(cmd))
        cwd = os.path.join(PROGRAMS, "go_server") if cmd[0] == "go" else d
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=20 * T_EVENT)
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr}")
        BIN[name] = os.path.join(d, name)
    # The USDT pair the C tests trace must be in the file (systemtap-sdt-dev).
    notes = sh("readelf", "-n", BIN["c_server"]).stdout
    for probe in ("request__start", "request__done"):
        if f"Name: {probe}" not in notes:
            raise AssertionError(f"no USDT note {probe} in {BIN['c_server']}:\n{notes}")


def start_server(name, cmd, port):
    p = spawn(cmd, NS["b"], name)
    wait_until(lambda: "listening" in read_tmp(name + ".out") or p.poll() is not None, T_EVENT,
               f"{name} to listen")
    if p.poll() is not None:
        raise AssertionError(f"{name} exited {p.returncode}: {read_tmp(name + '.err')}")
    wait_port(NS["b"], port)
    SERVERS[name] = p
    return p


def build_testbed():
    global TMP
    TMP = BED.tmp
    BED.build_network()
    build_programs()
    start_server("go", [BIN["apptracego"], "serve", "-addr", f"{SERVER}:{PORT['go']}"],
                 PORT["go"])
    start_server("go-strip", [BIN["apptracego-stripped"], "serve", "-addr",
                              f"{SERVER}:{PORT['go_strip']}"], PORT["go_strip"])
    start_server("c", [BIN["c_server"], SERVER, PORT["c"]], PORT["c"])


def missing_privileges():
    return basic_problem(L7TAP, TOOLS, f"{PREFIX}-probe")


# --- clients ------------------------------------------------------------------------

CURL_W = "%{http_code} %{size_header} %{size_download} %{local_port} %{num_connects}\\n"


class Answer:
    """What curl saw for one request."""

    def __init__(self, url, status, header, body, port, sha256, sleep_ms):
        self.url = url
        self.status = status
        self.header = header  # bytes of the status line and headers, CRLFs included
        self.body = body
        self.port = port  # curl's local port: the connection
        self.sha256 = sha256
        self.sleep_ms = sleep_ms

    @property
    def wire(self):
        """The response's bytes on the socket (HTTP/1.1, Content-Length)."""
        return self.header + self.body

    def same(self):
        return (self.status, self.header, self.body, self.sha256)

    def __repr__(self):
        return f"{self.url} -> {self.status} ({self.header}+{self.body} B) port {self.port}"


def curl(urls, tag):
    """One curl run, one keep-alive connection; each body saved and hashed."""
    cmd = ["curl", "-sS", "--http1.1", "--max-time", 2 * T_EVENT, "-w", CURL_W]
    files = []
    for i, u in enumerate(urls):
        files.append(os.path.join(TMP, f"{tag}-{i}.body"))
        cmd += ["-o", files[-1], u]
    r = sh(*cmd, ns=NS["a"])
    lines = [line for line in r.stdout.split("\n") if line.strip()]
    got = []
    for u, line, f in zip(urls, lines, files):
        code, header, body, port, _n = (int(x) for x in line.split())
        with open(f, "rb") as fh:
            sha = hashlib.sha256(fh.read()).hexdigest()
        m = re.search(r"sleep_ms=(\d+)", u)
        got.append(Answer(u, code, header, body, port, sha, int(m.group(1)) if m else 0))
    connects = sum(int(line.split()[4]) for line in lines)
    if len(got) != len(urls) or connects != 1:
        raise AssertionError(f"curl: {len(got)} answers, {connects} connections: {r.stdout}")
    return got


def user_url(port, sleep_ms, n, i):
    return f"http://{SERVER}:{port}/user?sleep_ms={sleep_ms}&bytes={n}&i={i}"


def go_stats():
    r = sh("curl", "-sS", "--max-time", T_EVENT, f"http://{SERVER}:{PORT['go']}/stats", ns=NS["a"])
    return json.loads(r.stdout)


def wall_ns(iso):
    """A record's time ("2026-12-05T09:33:34.123456789Z") in ns."""
    secs = calendar.timegm(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S"))
    frac = iso[20:-1] if len(iso) > 20 else ""
    return secs * 10**9 + int((frac + "000000000")[:9] or 0)


def uprobes_of(l7tap_pid, path):
    """The file offsets of `l7tap_pid`'s uprobes on the file `path` (opened
    as it is, or as /proc/PID/root/PATH): bpftool lists the perf events that
    carry BPF programs, with their file and offset."""
    r = sh("bpftool", "-j", "perf", "show", check=False)
    try:
        events = json.loads(r.stdout or "[]")
    except ValueError:
        return []
    return sorted(e.get("offset") for e in events
                  if e.get("pid") == l7tap_pid and
                  e.get("fd_type") in ("uprobe", "uretprobe") and
                  (e.get("filename") == path or e.get("filename", "").endswith("/root" + path)))


# --- l7tap ------------------------------------------------------------------------


class L7tap(Daemon):
    """A running l7tap (trace or attach) in the node namespace, ready once
    it has said each of `ready`."""

    def __init__(self, args, ready):
        super().__init__(BED, [L7TAP] + [str(a) for a in args], NS_NODE, ready)

    def records(self):
        recs = []
        for n, line in enumerate(self.stdout_lines(), 1):
            if not line.startswith("{"):
                continue  # a histogram table
            try:
                recs.append(json.loads(line))
            except ValueError as e:
                raise AssertionError(f"{self.name} line {n} is not JSON ({e}): {line!r}")
        return recs


def trace(*args):
    """`l7tap trace ARGS`, once it says it traces."""
    return L7tap(["trace"] + list(args), ["tracing"])


def trace_fails(*args):
    """`l7tap trace ARGS` that ends by itself: (exit status, stdout, stderr)."""
    full = ["ip", "netns", "exec", NS_NODE, L7TAP, "trace"] + [str(a) for a in args]
    r = subprocess.run(full, capture_output=True, text=True, timeout=2 * T_EVENT)
    return r.returncode, r.stdout, r.stderr


def calls_of(recs, function=None):
    return [r for r in recs if r.get("type") == "app_call" and
            (function is None or r.get("l7tap.app.function") == function)]


def http_of(recs, port=None):
    return [r for r in recs if r.get("type") == "http" and
            (port is None or r.get("server.port") == port)]


# --- tests ------------------------------------------------------------------------------


class AppTraceTest(unittest.TestCase):
    def setUp(self):
        self.l7tap = None

    def tearDown(self):
        if self.l7tap is not None and self.l7tap.rc is None:
            self.l7tap.stop()
        # The traced servers must outlive whatever was done to them.
        for name, p in SERVERS.items():
            self.assertIsNone(p.poll(), f"the {name} server exited {p.returncode}: "
                              f"{read_tmp(name + '.err')}")

    def finish(self, done):
        """Waits until `done(records)` holds (or the bound passes), stops
        l7tap (it drains and flushes) and returns every record. Counting
        happens on the final records: exactly once means after the flush
        too."""
        try:
            wait_until(lambda: done(self.l7tap.records()), T_EVENT, "the expected records")
        except AssertionError:
            pass  # the assertions on the final records say what is missing
        self.assertEqual(self.l7tap.stop(), 0, self.l7tap.stderr())
        return self.l7tap.records()

    def summary(self):
        """The exit summary's (calls, events read, lost)."""
        m = SUMMARY.search(self.l7tap.stderr())
        self.assertIsNotNone(m, self.l7tap.stderr())
        return tuple(int(x) for x in m.groups())

    def assert_calls(self, calls, answers, function, pid, server_port):
        """One call per answer, in request order (by start time): the
        function, the process, a duration of at least the handler's sleep,
        the response's bytes as sent, the socket's endpoints."""
        self.assertEqual(len(calls), len(answers), f"{calls}\nstderr: {self.l7tap.stderr()}")
        calls = sorted(calls, key=lambda r: wall_ns(r["time"]))
        for c, a in zip(calls, answers):
            self.assertEqual(c.get("l7tap.app.function"), function, c)
            self.assertEqual(c.get("process.pid"), pid, c)
            d = c.get("l7tap.app.duration_ms")
            self.assertIsInstance(d, (int, float), c)
            # Printed in ms with a few decimals: allow its rounding only.
            self.assertGreaterEqual(d, a.sleep_ms - 0.001, f"{a}: {c}")
            self.assertLess(d, a.sleep_ms + NONSENSE_MS, f"{a}: {c}")
            self.assertEqual(c.get("l7tap.app.io.bytes_sent"), a.wire, f"{a}: {c}")
            self.assertEqual((c.get("network.local.address"), c.get("network.local.port"),
                              c.get("network.peer.address"), c.get("network.peer.port")),
                             (SERVER, server_port, CLIENT, a.port), c)
            self.assertNotIn("exemplar", c.get("l7tap.app.flags", []), c)
        return calls

    def assert_one_line_error(self, rc, out, err, *words):
        lines = err.strip().splitlines()
        self.assertEqual(rc, 1, err)
        self.assertEqual(out, "")
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("l7tap: trace: "), lines[0])
        for w in words:
            self.assertIn(w, lines[0])


class TestTraceGo(AppTraceTest):
    def test_per_call_records(self):
        """curl -> the Go server, traced by --pid: one record per call, the
        responses as without l7tap."""
        reqs = [(50, 1000), (20, 100000), (0, 10), (120, 5000)]
        urls = [user_url(PORT["go"], s, n, i) for i, (s, n) in enumerate(reqs, 1)] + \
            [f"http://{SERVER}:{PORT['go']}/health"]
        untraced = curl(urls, "go-untraced")
        go = SERVERS["go"].pid
        self.l7tap = trace("--pid", go, "--func", GO_FUNC, "--func", GO_HEALTH)
        self.assertIn("tracing 2 functions", self.l7tap.stderr())
        t0 = time.time_ns()
        traced = curl(urls, "go-traced")
        t1 = time.time_ns()
        self.assertEqual([a.same() for a in traced], [a.same() for a in untraced])
        self.assertEqual([a.status for a in traced], [200] * 5)
        recs = self.finish(lambda rs: len(calls_of(rs)) >= len(urls))
        self.assertEqual(calls_of(recs), recs, "only app_call records")
        got = self.assert_calls(calls_of(recs, GO_FUNC), traced[:-1], GO_FUNC, go, PORT["go"])
        self.assert_calls(calls_of(recs, GO_HEALTH), traced[-1:], GO_HEALTH, go, PORT["go"])
        # net/http serves a connection's requests on one goroutine.
        goroutines = {c.get("l7tap.app.goroutine") for c in calls_of(recs)}
        self.assertEqual(len(goroutines), 1, goroutines)
        self.assertGreater(goroutines.pop() or 0, 0)
        for c in got:
            self.assertTrue(t0 <= wall_ns(c["time"]) <= t1, (t0, c, t1))
            self.assertEqual(c.get("process.name"), "apptracego", c)
        self.assertEqual(self.summary()[0], len(urls))
        self.assertEqual(self.summary()[2], 0)

    def test_stack_growth_at_entry(self):
        """main.growStack's frame is larger than its new goroutine's stack:
        each call runs its entry twice (runtime.morestack jumps back to the
        first instruction; checked with gdb: 6 entry hits for 3 calls) and
        returns once. One record per call, not a recursion, each on its
        own goroutine."""
        self.l7tap = trace("--pid", SERVERS["go"].pid, "--func", "main.growStack")
        got = curl([f"http://{SERVER}:{PORT['go']}/grow?i={i}" for i in range(3)], "go-grow")
        self.assertEqual([a.status for a in got], [200] * 3)
        recs = self.finish(lambda rs: len(calls_of(rs)) >= 3)
        calls = calls_of(recs, "main.growStack")
        self.assertEqual(len(calls), 3, f"{recs}\n{self.l7tap.stderr()}")
        for c in calls:
            self.assertEqual(c.get("process.pid"), SERVERS["go"].pid, c)
            self.assertEqual(c.get("l7tap.app.flags", []), [], c)
            self.assertEqual(c.get("l7tap.app.io.bytes_sent"), 0, c)
        goroutines = {c.get("l7tap.app.goroutine") for c in calls}
        self.assertEqual(len(goroutines), 3, calls)
        self.assertEqual(self.summary()[0], 3)

    def test_duration(self):
        """--duration: l7tap ends by itself, exit 0, with its summary."""
        # Not through L7tap(): it may be gone before its start is seen.
        rc, out, err = trace_fails("--pid", SERVERS["go"].pid, "--func", GO_FUNC, "--duration", 1)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "")
        self.assertIn("tracing 1 functions", err)
        self.assertRegex(err, SUMMARY)

    def test_histogram_counts(self):
        """--histogram under wrk's load, then a fixed number of curl
        requests: the final table counts what the server finished, and the
        only JSON lines are exemplars."""
        before = go_stats()
        self.l7tap = trace("--pid", SERVERS["go"].pid, "--func", "main.handle*", "--histogram",
                           "--interval", 3600)
        self.assertIn("tracing 2 functions", self.l7tap.stderr())
        load = f"http://{SERVER}:{PORT['go']}/user?sleep_ms=1&bytes=200"
        r = sh("wrk", "-t1", "-c4", "-d2s", load, ns=NS["a"], timeout=3 * T_EVENT)
        m = re.search(r"(\d+) requests in", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertNotIn("Non-2xx", r.stdout)
        # wrk leaves requests in flight when it stops: wait until the server
        # has finished them.
        wait_until(lambda: go_stats()["running"] == 0, T_EVENT,
                   "the server to finish wrk's requests")
        curl([user_url(PORT["go"], 2, 300, i) for i in range(10)], "go-hist")
        curl([f"http://{SERVER}:{PORT['go']}/health"] * 3, "go-hist-health")
        after = go_stats()
        self.assertEqual(self.l7tap.stop(), 0, self.l7tap.stderr())
        served = {GO_FUNC: after["getUser"] - before["getUser"],
                  GO_HEALTH: after["health"] - before["health"]}
        self.assertGreaterEqual(served[GO_FUNC], int(m.group(1)) + 10)
        self.assertEqual(served[GO_HEALTH], 3)
        table = histogram_counts(self.l7tap.stdout_lines())
        self.assertEqual({f: table.get(f) for f in served}, served, self.l7tap.stdout_lines())
        recs = self.l7tap.records()
        self.assertGreaterEqual(len(recs), 1, "no exemplar")
        for c in recs:
            self.assertEqual(c.get("type"), "app_call", c)
            self.assertIn("exemplar", c.get("l7tap.app.flags", []), c)
        self.assertLessEqual(len(recs), sum(served.values()))
        # Whether the summary's calls count every call or the exemplars is
        # the CLI's choice; nothing is lost either way.
        self.assertEqual(self.summary()[2], 0, self.l7tap.stderr())


def histogram_counts(lines):
    """{function: calls} of the last table on l7tap's stdout: the lines after
    the last header (it starts with "function" and names a "calls" column)
    whose first word is a function name, up to a blank or JSON line."""
    starts = [i for i, line in enumerate(lines) if line.startswith("function")]
    if not starts:
        return {}
    header = lines[starts[-1]].split()
    col = header.index("calls")
    counts = {}
    for line in lines[starts[-1] + 1:]:
        words = line.split()
        if not words or line.startswith("{"):
            break
        if len(words) > col and words[col].isdigit():
            counts[words[0]] = int(words[col])
    return counts


class TestTraceErrors(AppTraceTest):
    def test_stripped_binary(self):
        """A stripped Go server: one line saying so, exit 1; the server
        still answers."""
        rc, out, err = trace_fails("--pid", SERVERS["go-strip"].pid, "--func", GO_FUNC)
        self.assert_one_line_error(rc, out, err, "stripped")
        got = curl([user_url(PORT["go_strip"], 0, 50, 1)], "strip")
        self.assertEqual((got[0].status, got[0].body), (200, 50))

    def test_no_such_function(self):
        rc, out, err = trace_fails("--pid", SERVERS["go"].pid, "--func", "main.noSuchHandler")
        self.assert_one_line_error(rc, out, err, "main.noSuchHandler")

    def test_gone_pid(self):
        p = spawn(["true"], NS["b"], "gone", keep=False)
        p.wait(timeout=T_EVENT)
        self.assertFalse(os.path.exists(f"/proc/{p.pid}"))
        rc, out, err = trace_fails("--pid", p.pid, "--func", GO_FUNC)
        self.assert_one_line_error(rc, out, err, str(p.pid))

    def test_not_elf(self):
        path = os.path.join(TMP, "not-elf.sh")
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho not an ELF file\n")
        os.chmod(path, 0o755)
        rc, out, err = trace_fails("--binary", path, "--func", "main")
        self.assert_one_line_error(rc, out, err)

    def test_usage(self):
        """Neither --pid nor --binary: a usage error, exit 2."""
        rc, _out, err = trace_fails("--func", GO_FUNC)
        self.assertEqual(rc, 2, err)


class TestTraceNative(AppTraceTest):
    """The C server: handle_request by uprobe and uretprobe, and the same
    handling between its USDT probes."""

    def run_c(self, args, function, tag, pid=True):
        reqs = [(50, 1000), (10, 20000), (0, 0), (30, 70000)]
        urls = [user_url(PORT["c"], s, n, i) for i, (s, n) in enumerate(reqs, 1)]
        untraced = curl(urls, f"{tag}-untraced")
        c = SERVERS["c"].pid
        self.l7tap = trace(*(["--pid", c] if pid else []), *args)
        traced = curl(urls, f"{tag}-traced")
        self.assertEqual([a.same() for a in traced], [a.same() for a in untraced])
        recs = self.finish(lambda rs: len(calls_of(rs)) >= len(urls))
        self.assertEqual(calls_of(recs), recs, "only app_call records")
        got = self.assert_calls(calls_of(recs), traced, function, c, PORT["c"])
        # One thread per connection, and a thread id, not a goroutine.
        threads = {r.get("thread.id") for r in got}
        self.assertEqual(len(threads), 1, threads)
        self.assertNotEqual(threads.pop() or c, c)
        self.assertNotIn("l7tap.app.goroutine", got[0])
        self.assertEqual(self.summary()[0], len(urls))

    def test_binary(self):
        """--binary: the probes on the file, for every process running it
        (the C server, started before l7tap)."""
        self.run_c(["--binary", BIN["c_server"], "--func", C_FUNC], C_FUNC, "c-binary", pid=None)

    def test_uretprobe(self):
        self.run_c(["--func", C_FUNC], C_FUNC, "c-func")

    def test_usdt(self):
        self.run_c(["--usdt", USDT], USDT_NAME, "c-usdt")


class TestAttachLinking(AppTraceTest):
    def test_calls_linked_to_exchanges(self):
        """`attach --trace-config` on the Go server's file: each call is
        linked to the exchange it served, both ways, in request order."""
        cfg = os.path.join(TMP, "trace.yaml")
        with open(cfg, "w") as f:
            f.write(f"traces:\n  - executable: apptracego\n    functions: [\"{GO_FUNC}\"]\n")
        self.l7tap = L7tap(["attach", "--iface", PREFIX + "[ab]", "--output", "json",
                            "--keep-query", "--metrics-addr", "none", "--kubelet", "none",
                            "--interim", 0, "--trace-config", cfg],
                           ["stop with SIGINT"] + [f"attached to {i} " for i in IFACE.values()])
        wait_until(lambda: uprobes_of(self.l7tap.proc.pid, BIN["apptracego"]), T_EVENT,
                   f"l7tap's uprobes on {BIN['apptracego']}")
        conns = [curl([user_url(PORT["go"], s, n, f"{k}.{i}") for i, (s, n) in
                       enumerate([(30, 500), (0, 40000), (10, 7)], 1)], f"attach-{k}")
                 for k in (1, 2)]
        answers = [a for conn in conns for a in conn]
        recs = self.finish(lambda rs: len(calls_of(rs)) >= len(answers) and
                           len([r for r in http_of(rs, PORT["go"])
                                if r.get("l7tap.app.function")]) >= len(answers))
        calls = calls_of(recs, GO_FUNC)
        self.assertEqual(len(calls), len(answers), f"{calls}\n{self.l7tap.stderr()}")
        by_exchange = {}
        for c in calls:
            self.assertIn("l7tap.exchange_id", c, f"{c}\n{self.l7tap.stderr()}")
            by_exchange.setdefault(c["l7tap.exchange_id"], []).append(c)
        starts = []
        for conn in conns:
            conn_id = None
            for n, a in enumerate(conn, 1):
                query = a.url.split("?", 1)[1]
                ex = [r for r in http_of(recs, PORT["go"])
                      if r.get("client.port") == a.port and r.get("url.query") == query]
                self.assertEqual(len(ex), 1, f"{a}: {ex}")
                ex = ex[0]
                self.assertEqual(ex.get("http.response.status_code"), 200, ex)
                conn_id = conn_id or ex.get("l7tap.connection_id")
                self.assertEqual(ex.get("l7tap.connection_id"), conn_id, ex)
                self.assertEqual(ex.get("l7tap.exchange_id"), f"{conn_id}:{n}", ex)
                self.assertEqual(ex.get("l7tap.app.function"), GO_FUNC, ex)
                # Held for its call or not, the record keeps every field.
                self.assertEqual(ex.get("l7tap.capture.source"), "packet", ex)
                mine = by_exchange.get(ex["l7tap.exchange_id"], [])
                self.assertEqual(len(mine), 1, f"{a}: {ex}: calls {mine}")
                c = mine[0]
                self.assertEqual(c.get("l7tap.app.call_id"), ex.get("l7tap.app.call_id"), (c, ex))
                self.assertEqual(c.get("l7tap.connection_id"), conn_id, c)
                self.assertEqual(c.get("process.pid"), SERVERS["go"].pid, c)
                self.assertGreaterEqual(c.get("l7tap.app.duration_ms", -1), a.sleep_ms - 0.001, c)
                self.assertLess(c.get("l7tap.app.duration_ms"), a.sleep_ms + NONSENSE_MS, c)
                self.assertEqual(c.get("l7tap.app.io.bytes_sent"), a.wire, (a, c))
                starts.append(wall_ns(c["time"]))
        # The second connection's requests follow the first's: calls start
        # in request order.
        self.assertEqual(starts, sorted(starts))


def main():
    global L7TAP
    args = arguments(__doc__, "logs, builds").parse_args()
    L7TAP = os.path.abspath(args.l7tap)
    return run_on_testbed(sys.modules[__name__], args, "function-latency e2e tests",
                          "apptrace e2e", BED, build_testbed, missing_privileges)


if __name__ == "__main__":
    sys.exit(main())
