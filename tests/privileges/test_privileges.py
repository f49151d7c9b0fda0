#!/usr/bin/python3
"""Privileged test of what `l7tap attach` keeps once attached.

Builds one "pod" (a network namespace joined to the node by a veth whose node
side matches the daemon's --iface glob, python3's http.server inside), starts
`l7tap attach --user nobody --output json` as root and checks, from
/proc/PID/status, that it now runs as nobody with exactly the capabilities it
still needs (effective = permitted = bounding, nothing inheritable or
ambient) and no_new_privs; then that it still works without the rest: HTTP
records of real requests arrive (the ring buffer and maps opened before the
drop stay usable), and a second pod whose veth appears later is attached and
reported too. Once per attach mode that keeps something different: auto
(keeps NET_ADMIN for clsact, its fallback before Linux 6.6) and tcx (keeps
no attach capability at all), both with --no-tls-uprobes; and tcx with the TLS
uprobes on (they keep SYS_ADMIN to attach to libraries found later).

Holds /tmp/l7tap-e2e.lock for the whole run, so that it never loads programs
and attaches to interfaces while another end-to-end suite does. Everything it
makes carries the prefix i11p<pid> and is removed on exit, failure and
SIGINT/SIGTERM; /run/l7tap (which --user gives to nobody) gets its owner back.

Usage: test_privileges.py --l7tap PATH [-v]

Without root, BPF or network namespaces the tests skip with the reason; with
L7TAP_REQUIRE_PRIVILEGED set (non-empty, not "0") a skip is a failure. The last
line is "N passed, N failed, N skipped"; the exit status is non-zero on failure.
"""

import argparse
import fcntl
import json
import os
import pwd
import queue
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from privileged_suite import basic_problem, cannot_run, load_suite  # noqa: E402

PID = os.getpid()
PREFIX = f"i11p{PID}"  # every namespace and interface name starts with it
LOCK_FILE = "/tmp/l7tap-e2e.lock"
LOCK_DIR = "/run/l7tap"  # the daemon's interface locks (InterfaceLock::kDirectory)
PORT = 8097
USER = "nobody"
# Bounds a wait for something bound to happen (a daemon starting, a record
# arriving); generous because the CPUs are shared. Nothing waits for
# something *not* to happen.
T_EVENT = 60
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# Capability numbers (linux/capability.h).
CAP = {"dac_read_search": 2, "net_admin": 12, "sys_ptrace": 19, "sys_admin": 21, "bpf": 39,
       "perfmon": 38}
# What each attach mode keeps (privileges/privilege_drop.h, StillNeeded).
EXPECTED = {
    "auto": {"dac_read_search", "net_admin", "sys_ptrace"},
    "tcx": {"dac_read_search", "sys_ptrace"},
}
# TLS uprobes (on by default) attach to libraries found later: perf_event_open
# of a uprobe takes SYS_ADMIN (privileges/README.md).
TLS_KEEPS = {"sys_admin", "sys_ptrace", "dac_read_search"}

L7TAP = None


def run(*cmd, check=True, **kw):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True, **kw)


class Cleanup:
    """What this run made, undone in reverse on exit, failure and signals."""

    def __init__(self):
        self.steps = []

    def add(self, fn):
        self.steps.append(fn)

    def run(self):
        while self.steps:
            fn = self.steps.pop()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - clean up the rest regardless
                print(f"cleanup: {type(e).__name__}: {e}", file=sys.stderr)


CLEANUP = Cleanup()


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def make_pod(name, octet):
    """Namespace PREFIX-name, node side PREFIX+name (10.213.octet.1), pod side
    eth0 (10.213.octet.2) serving HTTP on PORT. Returns the server address."""
    ns, iface = f"{PREFIX}-{name}", f"{PREFIX}{name}"
    run("ip", "netns", "add", ns)
    CLEANUP.add(lambda: run("ip", "netns", "del", ns, check=False))
    run("ip", "link", "add", iface, "type", "veth", "peer", "name", "eth0", "netns", ns)
    CLEANUP.add(lambda: run("ip", "link", "del", iface, check=False))
    run("ip", "addr", "add", f"10.213.{octet}.1/24", "dev", iface)
    run("ip", "link", "set", iface, "up")
    run("ip", "-n", ns, "addr", "add", f"10.213.{octet}.2/24", "dev", "eth0")
    run("ip", "-n", ns, "link", "set", "eth0", "up")
    run("ip", "-n", ns, "link", "set", "lo", "up")
    server = subprocess.Popen(
        ["ip", "netns", "exec", ns, "python3", "-m", "http.server", str(PORT), "--bind",
         f"10.213.{octet}.2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    CLEANUP.add(lambda: stop(server))
    return f"10.213.{octet}.2"


def get(addr, path):
    """One request from the node (http.server answers 404: no such file);
    retried while the server is still starting (connection refused), which
    is not what is tested. Returns the status code."""
    deadline = time.time() + T_EVENT
    while True:
        r = run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                f"http://{addr}:{PORT}{path}", check=False)
        if r.stdout.isdigit() and r.stdout != "000":
            return int(r.stdout)
        if time.time() > deadline:
            raise AssertionError(f"GET http://{addr}:{PORT}{path}: {r.stdout} {r.stderr}")
        time.sleep(0.2)


class Daemon:
    """`l7tap attach` with its stdout records and stderr lines read as they come."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([L7TAP, "attach", "--output", "json", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        CLEANUP.add(lambda: stop(self.proc))
        self.records, self.lines = queue.Queue(), queue.Queue()
        self.stderr = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.records),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.lines),
                         daemon=True).start()

    @staticmethod
    def _read(stream, q):
        for line in stream:
            q.put(line.rstrip("\n"))
        q.put(None)

    def wait_line(self, pred, what):
        deadline = time.time() + T_EVENT
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"l7tap ended while waiting for {what}: "
                                     + "\n".join(self.stderr))
            self.stderr.append(line)
            if pred(line):
                return line
        raise AssertionError(f"no {what} within {T_EVENT} s: " + "\n".join(self.stderr))

    def wait_record(self, pred, what):
        deadline = time.time() + T_EVENT
        while time.time() < deadline:
            try:
                line = self.records.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"l7tap's output ended while waiting for {what}")
            rec = json.loads(line)
            if pred(rec):
                return rec
        raise AssertionError(f"no {what} within {T_EVENT} s")


def status_of(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def mask(names):
    return sum(1 << CAP[n] for n in names)


class PrivilegesTest(unittest.TestCase):
    def tearDown(self):
        CLEANUP.run()

    def check_mode(self, mode, octet, tls=False):
        pod_a = make_pod(f"a{octet}", octet)
        # A free port of its own: suites run beside each other (and beside a
        # node's l7tap on 9464).
        daemon = Daemon("--iface", f"{PREFIX}*", "--attach-mode", mode, "--user", USER,
                        "--metrics-addr", "127.0.0.1:0", *([] if tls else ["--no-tls-uprobes"]))
        daemon.wait_line(lambda l: f"attached to {PREFIX}a{octet} " in l, "attach to pod a")
        line = daemon.wait_line(lambda l: "privileges:" in l, "the privileges line")

        nobody = pwd.getpwnam(USER)
        st = status_of(daemon.proc.pid)
        self.assertEqual(st["Uid"].split(), [str(nobody.pw_uid)] * 4, line)
        self.assertEqual(st["Gid"].split(), [str(nobody.pw_gid)] * 4, line)
        expected = EXPECTED[mode] | (TLS_KEEPS if tls else set())
        want = mask(expected)
        for key in ("CapEff", "CapPrm", "CapBnd"):
            self.assertEqual(int(st[key], 16), want,
                             f"{key} {st[key]}, want {want:016x} ({sorted(expected)})")
        self.assertEqual(int(st["CapInh"], 16), 0)
        self.assertEqual(int(st["CapAmb"], 16), 0)
        self.assertEqual(st["NoNewPrivs"], "1")

        # The endpoint, bound as root before the drop, serves from a thread
        # started after it.
        line = daemon.wait_line(lambda l: "metrics on http://" in l, "the metrics line")
        base = line.split("metrics on ", 1)[1].removesuffix("/metrics")
        with NO_PROXY.open(base + "/readyz", timeout=T_EVENT) as r:
            self.assertEqual((r.status, r.read()), (200, b"ok\n"))
        with NO_PROXY.open(base + "/metrics", timeout=T_EVENT) as r:
            self.assertEqual(r.status, 200)

        # The ring buffer and the maps, opened as root, still work.
        code = get(pod_a, "/first")
        rec = daemon.wait_record(lambda r: r.get("url.path") == "/first", "record of GET /first")
        self.assertEqual(rec.get("http.response.status_code"), code)

        # An interface that appears now is attached without what was dropped.
        pod_b = make_pod(f"b{octet}", octet + 1)
        line = daemon.wait_line(lambda l: f"attached to {PREFIX}b{octet} " in l,
                                "attach to pod b, which came later")
        ifindex_b = int(open(f"/sys/class/net/{PREFIX}b{octet}/ifindex").read())
        get(pod_b, "/later")
        rec = daemon.wait_record(lambda r: r.get("url.path") == "/later", "record of GET /later")
        self.assertEqual(rec.get("l7tap.ifindex"), ifindex_b)

        stop(daemon.proc)
        self.assertEqual(daemon.proc.returncode, 0, "\n".join(daemon.stderr))

    def test_auto_keeps_net_admin_for_clsact(self):
        self.check_mode("auto", 10)

    def test_tcx_keeps_no_attach_capability(self):
        self.check_mode("tcx", 20)

    def test_tls_uprobes_keep_sys_admin(self):
        self.check_mode("tcx", 30, tls=True)


def missing_privileges():
    """Empty when the tests can run; otherwise why not."""
    problem = basic_problem(L7TAP, ("ip", "curl", "bpftool"), f"{PREFIX}-probe")
    if problem:
        return problem
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return f"no user {USER}"
    return ""


def lock_dir_owner():
    """(uid, gid) of /run/l7tap, which --user gives to nobody, or None."""
    try:
        st = os.stat(LOCK_DIR)
        return st.st_uid, st.st_gid
    except FileNotFoundError:
        return None


def on_signal(signum, _frame):
    CLEANUP.run()
    sys.exit(128 + signum)


def main():
    global L7TAP
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--l7tap", required=True, help="the l7tap program")
    ap.add_argument("tests", nargs="*", help="PrivilegesTest.test_name")
    args = ap.parse_args()
    L7TAP = os.path.abspath(args.l7tap)
    suite = load_suite(sys.modules[__name__], args.tests)
    status = cannot_run("privileges tests", suite.countTestCases(), missing_privileges())
    if status is not None:
        return status

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    lock = open(LOCK_FILE, "a")
    print(f"waiting for {LOCK_FILE} (other end-to-end suites)", flush=True)
    fcntl.flock(lock, fcntl.LOCK_EX)
    owner = lock_dir_owner()
    try:
        result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    finally:
        CLEANUP.run()
        # The machine gets the lock directory back as it was.
        if os.path.isdir(LOCK_DIR):
            os.chown(LOCK_DIR, *(owner or (0, 0)))
        lock.close()
    left = [l for l in run("ip", "-o", "link").stdout.splitlines() if PREFIX in l]
    left += [n for n in run("ip", "netns", "list").stdout.splitlines() if PREFIX in n]
    if left:
        print(f"left behind: {left}")
    failed = len(result.failures) + len(result.errors) + (1 if left else 0)
    skipped = len(result.skipped)
    passed = result.testsRun - len(result.failures) - len(result.errors) - skipped
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
