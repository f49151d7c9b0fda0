#!/usr/bin/python3
"""Privileged end-to-end tests of `l7tap attach`.

Builds a pod-like test bed of network namespaces joined by veth pairs:

    pod-a (clients) eth0 10.79.1.2 ──veth── l7e<pid>a 10.79.1.1 ┐
                                                                  node (router, l7tap runs here)
    pod-b (servers) eth0 10.79.2.2 ──veth── l7e<pid>b 10.79.2.1 ┘

runs real servers in pod-b (nginx: HTTP/1.1 on 8080, h2c prior knowledge on
8081; python3 http.server: HTTP/1.0 on 8090) and real clients in pod-a (curl,
nghttp, h2load), attaches l7tap to the node-side veths and checks its JSON
lines and journal entries against what each client did. Then: kernel versus
replay of a tcpdump capture, kill -9 while traffic flows (tcx and clsact), a
ring buffer that is full on purpose (its loss accounted for exactly),
interfaces that come and go, and the daemon's faults (TestFaults): journald
gone or stuck, a closed or full output, an interface deleted under load, a
second daemon on the same interfaces.

Nothing depends on how fast the machine is: a load that must overlap an event
(loadgen.py) runs until the test stops it, and the test checks it ran on both
sides of the event; waits are for events (a record, a message, connections
closed), with generous timeouts (T_EVENT) that only bound a failure.

Every test starts from the bare test bed, checked (LiveTest.setUp), and its
cleanup, run whether it passes, fails or raises, stops what it started
(l7tap with SIGTERM first, so that it detaches), removes what is attached to
the node's interfaces and links and namespaces added since, and fails the
test if l7tap's filters or XDP programs stayed once its processes had ended.

Traffic only ever goes to addresses inside the namespaces made here: the node
has no route anywhere else, and the pods route only through the node. The root
namespace is not changed. Everything created (namespaces, veths, processes,
a journald started here, temp dirs) is removed on exit, failure and
SIGINT/SIGTERM; names carry this process's pid.

Usage: test_live.py --l7tap PATH [--keep-temp] [-v] [TestClass[.test_name] ...]

Without root, BPF or network namespaces the tests skip with the reason; with
L7TAP_REQUIRE_PRIVILEGED set (non-empty, not "0") a skip is a failure. The last
line is "N passed, N failed, N skipped"; the exit status is non-zero on failure.
"""

import atexit
import collections
import glob
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from privileged_suite import (arguments, basic_problem, cannot_run,  # noqa: E402
                              hold_e2e_lock, ignore_signals, interrupt_on_signals,
                              load_suite, remove_temp, run_tests, tally)
from netns import (kill_namespace_pids, namespaces_left, netns_list,  # noqa: E402
                   remove_stale_namespaces)

PID = os.getpid()
PREFIX = f"l7e{PID}"  # every namespace and interface name starts with it
NS_NODE = f"{PREFIX}-node"
NS = {"a": f"{PREFIX}-a", "b": f"{PREFIX}-b", "c": f"{PREFIX}-c"}
IFACE = {"a": f"{PREFIX}a", "b": f"{PREFIX}b", "c": f"{PREFIX}c"}  # node side
SUBNET = {"a": "10.79.1", "b": "10.79.2", "c": "10.79.3"}
POD_ADDR = {k: v + ".2" for k, v in SUBNET.items()}
SERVER = POD_ADDR["b"]
PORT_H1 = 8080  # nginx HTTP/1.1
PORT_H2 = 8081  # nginx h2c prior knowledge
PORT_PY10 = 8090  # python3 http.server, HTTP/1.0
WINDOW = 1024  # the live window, and the replay window that must agree with it
RING_N = 3000  # requests of the ring-full burst

# How long to wait for something that is bound to happen (a daemon starting,
# a record appearing): generous, since the CPUs are shared. Nothing here waits
# for something to *not* happen within a time, and no load is assumed to last
# or end within one.
T_EVENT = 60
LOADGEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loadgen.py")
# A small capture replayed many times over, for the output faults.
PCAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "pcaps",
                    "h2c-prior-knowledge.pcap")

JOURNALD = "/lib/systemd/systemd-journald"
# A journald of this run's own, in a journal namespace (its socket and files
# apart from any other journald's): the machine's journald, or one that
# another suite starts and stops meanwhile, is never relied on. l7tap finds it
# at the usual path through journal_wrap().
JOURNAL_NS = PREFIX
JOURNAL_DIR = f"/run/systemd/journal.{JOURNAL_NS}"
JOURNAL_SOCKET = JOURNAL_DIR + "/socket"
TOOLS = ["ip", "tc", "nginx", "curl", "nghttp", "h2load", "tcpdump", "bpftool", "journalctl", "ss",
         "unshare", "mount", "umount"]

ARGS = None
TMP = None  # this run's temp dir
L7TAP = None
E2E_LOCK = None  # the open lock file: one e2e suite at a time on a machine
REPORT = collections.OrderedDict()  # scenario -> facts for the closing table


def log(msg):
    print(f"[e2e] {msg}", file=sys.stderr, flush=True)


# --- cleanup ------------------------------------------------------------------


class Cleanup:
    """Everything this run created, removed in reverse order, once."""

    def __init__(self):
        self.procs = []  # subprocess.Popen
        self.namespaces = []
        self.journald = None  # Popen of the journald started here
        self.journal_keepalive = None  # a stream client, so that it stays
        self.journal_paths = []  # what it created
        self.tmp = None
        self.done = False

    def run(self):
        if self.done:
            return
        self.done = True
        ignore_signals()
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    p.terminate()
                except OSError:
                    pass
        deadline = time.time() + 3
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    pass
        for ns in reversed(self.namespaces):
            kill_namespace_pids(ns)
        for ns in reversed(self.namespaces):
            # l7tap's interface locks of this namespace (a killed daemon leaves its files).
            try:
                ino = os.stat(f"/run/netns/{ns}").st_ino
                for lock in glob.glob(f"/run/l7tap/net-{ino}-if-*.lock"):
                    os.unlink(lock)
            except OSError:
                pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if self.journal_keepalive is not None:
            self.journal_keepalive.close()
            self.journal_keepalive = None
        if self.journald is not None:
            self.journald.terminate()
            try:
                self.journald.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.journald.kill()
                self.journald.wait()
            for path in self.journal_paths:
                shutil.rmtree(path, ignore_errors=True)
        remove_temp(self.tmp, ARGS and ARGS.keep_temp, log)
        left = namespaces_left(PREFIX)
        if left:
            log(f"ERROR: namespaces left behind: {left}")


CLEANUP = Cleanup()


# --- helpers --------------------------------------------------------------------


def sh(*cmd, ns=None, check=True, timeout=3 * T_EVENT, input=None):
    """Runs cmd (in namespace ns), returns CompletedProcess with text output."""
    full = (["ip", "netns", "exec", ns] if ns else []) + [str(c) for c in cmd]
    r = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(full)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


TEST_PROCS = None  # processes started by the running test (None: no test runs)


def spawn(cmd, ns=None, stdout=None, stderr=None, name=None, stdin=None, l7tap=False):
    """Starts cmd in the background (in namespace ns); the Popen pid is the
    program itself (ip netns exec execs it). Registered for cleanup: by the
    running test's cleanup (`l7tap` ones get SIGTERM first, to detach), and
    by the run's."""
    full = (["ip", "netns", "exec", ns] if ns else []) + [str(c) for c in cmd]
    if name:
        stdout = stdout or open(os.path.join(TMP, name + ".out"), "wb")
        stderr = stderr or open(os.path.join(TMP, name + ".err"), "wb")
    p = subprocess.Popen(full, stdout=stdout or subprocess.DEVNULL,
                         stderr=stderr or subprocess.DEVNULL, stdin=stdin or subprocess.DEVNULL,
                         start_new_session=True)
    p.is_l7tap = l7tap
    CLEANUP.procs.append(p)
    if TEST_PROCS is not None:
        TEST_PROCS.append(p)
    return p


def stop_process(p, sig=signal.SIGTERM, timeout=T_EVENT):
    """Ends p (a Popen): `sig`, then SIGKILL if it has not exited within
    `timeout`. Returns its exit status."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"pid {p.pid} ({p.args[-1] if p.args else '?'}) ignored {sig!r}: SIGKILL")
            p.kill()
            p.wait(timeout=T_EVENT)
        except OSError:
            pass
    for f in (p.stdin, p.stdout, p.stderr):
        if f:
            try:
                f.close()
            except OSError:
                pass
    return p.returncode


def wait_until(pred, timeout, what, interval=0.05):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_port(ns, port):
    wait_until(lambda: sh("ss", "-Hltn", f"sport = :{port}", ns=ns).stdout.strip(), T_EVENT,
               f"a listener on port {port} in {ns}")


def open_connections(ns, peer=None):
    """TCP sockets in ns that are neither listening nor in TIME-WAIT (with
    peer address `peer` only, if given)."""
    r = sh("ss", "-Htan", ns=ns)
    out = []
    for line in r.stdout.splitlines():
        words = line.split()
        if not words or words[0] in ("LISTEN", "TIME-WAIT"):
            continue
        if peer is None or (len(words) >= 5 and words[4].rsplit(":", 1)[0] == peer):
            out.append(line)
    return out


def wait_connections_closed(clients=("a",)):
    """Waits until every connection of the client pods is closed on both
    ends (the last FIN and ACK went through the node, so through l7tap's
    hooks), in place of a sleep for "the last packets"."""
    def still_open():
        return [c for p in clients
                for c in open_connections(NS[p]) + open_connections(NS["b"], POD_ADDR[p])]
    try:
        wait_until(lambda: not still_open(), T_EVENT, "the clients' connections to close")
    except AssertionError as e:
        raise AssertionError(f"{e}: {still_open()}") from None


def journal_socket_works():
    if not os.path.exists(JOURNAL_SOCKET):
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect(JOURNAL_SOCKET)
        return True
    except OSError:
        return False
    finally:
        s.close()


def missing_privileges():
    """Empty when the tests can run; otherwise why not."""
    problem = basic_problem(L7TAP, TOOLS, f"{PREFIX}-probe")
    if problem:
        return problem
    if not os.access(JOURNALD, os.X_OK):
        return f"no {JOURNALD} to start"
    return ""


def start_journald():
    log(f"starting {JOURNALD} in journal namespace {JOURNAL_NS}")
    with open("/etc/machine-id") as f:
        machine = f.read().strip()
    CLEANUP.journal_paths += [JOURNAL_DIR, f"/var/log/journal/{machine}.{JOURNAL_NS}",
                              f"/run/log/journal/{machine}.{JOURNAL_NS}"]
    CLEANUP.journald = subprocess.Popen([JOURNALD, JOURNAL_NS], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
    wait_until(journal_socket_works, T_EVENT, "journald's socket")
    # A journald of a journal namespace exits after 30 s without a stream
    # client ("Server is idle, exiting."): one stays connected for the run,
    # or a run longer than 30 s loses its journal half-way.
    keepalive = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    keepalive.connect(JOURNAL_DIR + "/stdout")
    keepalive.sendall(b"l7tap-e2e-keepalive\n\n6\n0\n0\n0\n0\n")
    CLEANUP.journal_keepalive = keepalive


def journal_wrap(directory):
    """Runs a command in a mount namespace of its own where `directory`
    (holding a journal socket) is /run/systemd/journal. /run/systemd is a
    fresh tmpfs there, so the mount point exists whether or not a journald
    runs on the machine."""
    bind = os.path.join(TMP, "journal-bind")
    os.makedirs(bind, exist_ok=True)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'j=$1; b=$2; shift 2; mount --bind "$j" "$b" && '
            'mount -t tmpfs l7tap-e2e /run/systemd && mkdir /run/systemd/journal && '
            'mount --bind "$b" /run/systemd/journal && exec "$@"', "sh", directory, bind]


# --- the test bed -------------------------------------------------------------------


def add_namespace(ns):
    if ns not in CLEANUP.namespaces:
        CLEANUP.namespaces.append(ns)
    sh("ip", "netns", "add", ns)
    sh("ip", "-n", ns, "link", "set", "lo", "up")


def add_pod(pod):
    """Pod namespace with eth0, joined to the node by a veth whose node side is
    IFACE[pod]; default route through the node."""
    ns, ifc, net = NS[pod], IFACE[pod], SUBNET[pod]
    if ns not in netns_list():
        add_namespace(ns)
    sh("ip", "-n", NS_NODE, "link", "add", ifc, "type", "veth", "peer", "name", "eth0", "netns", ns)
    sh("ip", "-n", NS_NODE, "addr", "add", f"{net}.1/24", "dev", ifc)
    sh("ip", "-n", NS_NODE, "link", "set", ifc, "up")
    sh("ip", "-n", ns, "addr", "add", f"{net}.2/24", "dev", "eth0")
    sh("ip", "-n", ns, "link", "set", "eth0", "up")
    sh("ip", "-n", ns, "route", "add", "default", "via", f"{net}.1")


BASE_LINKS = set()  # the node's links in the bare test bed
SERVERS = []  # Popen of the servers in pod-b


def build_testbed():
    add_namespace(NS_NODE)
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=NS_NODE)
    add_pod("a")
    add_pod("b")
    make_content()
    start_servers()
    BASE_LINKS.update(node_links())


DOC = None
FILES = {}  # url path -> size


def make_content():
    global DOC
    DOC = os.path.join(TMP, "www")
    os.makedirs(DOC)

    def put(name, data):
        with open(os.path.join(DOC, name), "wb") as f:
            f.write(data)
        FILES["/" + name] = len(data)

    lines = "".join(f"<p>line {i:02d} of the l7tap e2e index page</p>\n" for i in range(12))
    put("index.html", f"<!DOCTYPE html>\n<html><body>\n{lines}</body></html>\n".encode())
    put("small.txt", b"small text file for l7tap e2e tests\n")
    for n in "abcde":
        put(f"{n}.txt", "".join(f"{n} line {i:03d}\n" for i in range(40)).encode())
    put("large.bin", "".join(f"large {i:013d}\n" for i in range(50000)).encode())  # 1,000,000
    put("f8k.bin", "".join(f"8k {i:013d}\n" for i in range(512)).encode())  # 8192
    with open(os.path.join(TMP, "post-body.bin"), "wb") as f:
        f.write("".join(f"post {i:014d}\n" for i in range(250)).encode())  # 5000


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx/nginx.pid;
error_log {tmp}/nginx/error.log notice;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/nginx/body;
  proxy_temp_path {tmp}/nginx/proxy;
  fastcgi_temp_path {tmp}/nginx/fastcgi;
  uwsgi_temp_path {tmp}/nginx/uwsgi;
  scgi_temp_path {tmp}/nginx/scgi;
  types {{ text/html html; text/plain txt; application/octet-stream bin; }}
  default_type application/octet-stream;
  server_tokens off;
  sendfile on;
  gzip off;
  keepalive_timeout 60s;
  keepalive_requests 100000;
  server {{
    listen {addr}:{h1};
    root {doc};
    location = /upload {{ return 201 "created\\n"; }}
    location /slow/ {{ alias {doc}/; limit_rate 100k; }}
  }}
  server {{
    listen {addr}:{h2} http2;
    root {doc};
  }}
}}
"""


def start_servers():
    os.makedirs(os.path.join(TMP, "nginx"))
    conf = os.path.join(TMP, "nginx", "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(tmp=TMP, addr=SERVER, h1=PORT_H1, h2=PORT_H2, doc=DOC))
    SERVERS.append(spawn(["nginx", "-c", conf, "-p", os.path.join(TMP, "nginx")], ns=NS["b"],
                         name="nginx"))
    SERVERS.append(spawn(["/usr/bin/python3", "-m", "http.server", PORT_PY10, "--bind", SERVER,
                          "--directory", DOC], ns=NS["b"], name="python-http"))
    wait_port(NS["b"], PORT_H1)
    wait_port(NS["b"], PORT_H2)
    wait_port(NS["b"], PORT_PY10)
    # The route through the node works (and only our namespaces are reached).
    sh("curl", "-sS", "-o", "/dev/null", "--max-time", "5", f"http://{SERVER}:{PORT_H1}/small.txt",
       ns=NS["a"])


# --- l7tap ------------------------------------------------------------------------


def bpf_ids_of(pid):
    """BPF program ids held open by process pid (from its fdinfo)."""
    ids = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return ids
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def loaded_prog_ids():
    r = sh("bpftool", "-j", "prog", "show")
    return {p["id"]: p.get("name", "") for p in json.loads(r.stdout or "[]")}


def ifindex(iface):
    r = sh("ip", "-n", NS_NODE, "-j", "link", "show", "dev", iface)
    return json.loads(r.stdout)[0]["ifindex"]


def tc_filters(iface):
    """Classic tc filters on iface (node side) ingress and egress; "" when none
    or when the interface is gone."""
    out = ""
    for d in ("ingress", "egress"):
        r = sh("tc", "filter", "show", "dev", iface, d, ns=NS_NODE, check=False)
        if r.returncode == 0:
            out += r.stdout
    return out.strip()


class L7tap:
    """One `l7tap attach` run in the node namespace. `wrap` goes before the
    l7tap command (e.g. a private mount namespace); `stdout` replaces the
    JSON lines file (a pipe, /dev/full)."""

    counter = 0

    def __init__(self, *args, output="both", wrap=(), stdout=None):
        L7tap.counter += 1
        self.name = f"l7tap-{L7tap.counter}"
        # --keep-query: these tests compare targets with what the clients sent;
        # redaction has its own fixture test (tests/daemon/redaction_fixture_test.cc).
        # --metrics-addr none: no endpoint, so that several l7taps (and other
        # suites) never contend for 9464; tests/e2e/test_metrics.py tests it.
        self.args = ["attach", "--output", output, "--keep-query", "--metrics-addr", "none"] + \
            [str(a) for a in args]
        if not wrap and output != "json":
            wrap = journal_wrap(JOURNAL_DIR)
        self.wrap = list(wrap)
        self.stdout = stdout
        self.out_path = os.path.join(TMP, self.name + ".jsonl")
        self.err_path = os.path.join(TMP, self.name + ".err")
        self.proc = None
        self.rc = None
        self.prog_ids = set()

    def spawn(self):
        self.proc = spawn(self.wrap + [L7TAP] + self.args, ns=NS_NODE,
                          stdout=self.stdout or open(self.out_path, "wb"),
                          stderr=open(self.err_path, "wb"), l7tap=True)
        return self.proc

    def start(self, attached=()):
        self.spawn()
        wait_until(lambda: "stop with SIGINT" in self.stderr() or self.proc.poll() is not None,
                   T_EVENT, f"{self.name} to start")
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.proc.returncode}: {self.stderr()}")
        for ifc in attached:
            self.wait_stderr(f"attached to {ifc} ")
        self.prog_ids = bpf_ids_of(self.proc.pid)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def wait_stderr(self, text, timeout=T_EVENT, count=1):
        wait_until(lambda: self.stderr().count(text) >= count or self.proc.poll() is not None,
                   timeout, f"{self.name} to say {text!r}")
        if self.stderr().count(text) < count:
            raise AssertionError(f"{self.name} exited {self.proc.returncode} before saying "
                                 f"{text!r}: {self.stderr()}")

    def stop(self, sig=signal.SIGTERM, timeout=T_EVENT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} did not exit within {timeout} s of {sig!r}")
        return self.rc

    def summary(self, pattern):
        """The first group of `pattern` in the summary on stderr, as int."""
        m = re.search(pattern, self.stderr(), re.M)
        if not m:
            raise AssertionError(f"{self.name}: no {pattern!r} in its stderr:\n{self.stderr()}")
        return int(m.group(1))

    def records(self):
        """The JSON records so far. While l7tap runs, its last line may be
        in the middle of being written: only complete lines count then."""
        recs = []
        running = self.proc is not None and self.proc.poll() is None
        with open(self.out_path, errors="strict") as f:
            for n, line in enumerate(f, 1):
                if running and not line.endswith("\n"):
                    break
                try:
                    recs.append(json.loads(line))
                except ValueError as e:
                    raise AssertionError(f"{self.name} stdout line {n} is not JSON ({e}): {line!r}")
        return recs

    def kernel_counters(self):
        m = re.search(r"^l7tap: kernel: (.*)$", self.stderr(), re.M)
        if not m:
            return None
        out = {}
        for part in m.group(1).split(", "):
            k, _, v = part.rpartition(" ")
            out[k] = int(v)
        return out

    def journal(self, want, timeout=T_EVENT):
        """Journal entries of this run (by _PID), waiting for `want` of them."""
        def read():
            sh("journalctl", f"--namespace={JOURNAL_NS}", "--sync", check=False)
            r = sh("journalctl", f"--namespace={JOURNAL_NS}", "-o", "json", "--no-pager", "--all",
                   f"_PID={self.pid}", "SYSLOG_IDENTIFIER=l7tap", check=False)
            entries = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
            return entries

        deadline = time.time() + timeout
        entries = read()
        while len(entries) < want and time.time() < deadline:
            time.sleep(0.2)
            entries = read()
        return entries


def http_of(recs):
    return [r for r in recs if r.get("type") == "http"]


def conns_of(recs):
    return [r for r in recs if r.get("type") == "conn"]


def flags_of(r):
    return tuple(sorted(r.get("l7tap.flags", [])))


def jfield(entry, name):
    v = entry.get(name)
    if isinstance(v, list):  # a field sent more than once
        return tuple(sorted(v))
    return v


# --- a known-clean test bed before and after every test ----------------------------


def node_links():
    r = sh("ip", "-n", NS_NODE, "-j", "link", "show")
    return {link["ifname"] for link in json.loads(r.stdout or "[]")}


def attach_state(iface):
    """What l7tap may leave on a node interface: a clsact qdisc, tc filters,
    an XDP program. "" when there is none."""
    out = []
    filters = tc_filters(iface)
    if filters:
        out.append("tc filters: " + " | ".join(filters.splitlines()))
    xdp = xdp_attached(iface)
    if xdp:
        out.append("XDP: " + " | ".join(xdp.splitlines()))
    return "; ".join(out)


def restore_testbed():
    """Puts the test bed back as build_testbed() left it: stops what the
    running test started (l7tap first, with SIGTERM, so that it detaches),
    removes what is attached to the node's interfaces, and links and
    namespaces added since. Returns the attachments that were left once
    every process had ended (a leak); [] if none."""
    procs = TEST_PROCS or []
    for p in reversed(procs):
        if getattr(p, "is_l7tap", False):
            stop_process(p)
    for p in reversed(procs):
        stop_process(p, timeout=10)
    servers = {p.pid for p in SERVERS}
    for ns in (NS_NODE, NS["a"], NS["c"]):
        if ns in netns_list():
            kill_namespace_pids(ns)
    kill_namespace_pids(NS["b"], keep=servers)
    leaks = []
    for ifc in sorted(node_links()):
        # l7tap leaves the clsact qdisc by design (other programs may have
        # filters there); the test bed goes back to none.
        sh("tc", "qdisc", "del", "dev", ifc, "clsact", ns=NS_NODE, check=False)
        state = attach_state(ifc)
        if not state:
            continue
        leaks.append(f"{ifc}: {state}")
        if shutil.which("xdp-loader"):
            sh("xdp-loader", "unload", "--all", ifc, ns=NS_NODE, check=False)
        sh("ip", "-n", NS_NODE, "link", "set", "dev", ifc, "xdp", "off", ns=None, check=False)
    for ifc in sorted(node_links() - BASE_LINKS):
        sh("ip", "-n", NS_NODE, "link", "del", ifc, check=False)
    if NS["c"] in netns_list():
        sh("ip", "netns", "del", NS["c"], check=False)
    # A server's connections to a pod that is gone would resend their last
    # segments for minutes, into the next tests' captures.
    sh("ss", "-K", "-Htn", "dst", SUBNET["c"] + ".0/24", ns=NS["b"], check=False)
    return leaks


def testbed_problems():
    """Why the test bed is not in its known-clean state; [] if it is."""
    problems = []
    have = netns_list()
    problems += [f"namespace {ns} missing" for ns in (NS_NODE, NS["a"], NS["b"]) if ns not in have]
    if problems:
        return problems
    links = node_links()
    if links != BASE_LINKS:
        problems.append(f"node links {sorted(links)}, not {sorted(BASE_LINKS)}")
    for ifc in sorted(links):
        state = attach_state(ifc)
        if "clsact" in sh("tc", "qdisc", "show", "dev", ifc, ns=NS_NODE, check=False).stdout:
            state += "; clsact qdisc"
        if state:
            problems.append(f"{ifc}: {state}")
    problems += [f"server {p.args} exited {p.returncode}" for p in SERVERS if p.poll() is not None]
    strays = [c for c in open_connections(NS["b"]) if c.split()[4].rsplit(":", 1)[0] != POD_ADDR["a"]]
    if strays:
        problems.append(f"server connections to pods that are gone: {strays}")
    for ns in (NS_NODE, NS["a"]):
        pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
        if pids:
            problems.append(f"processes left in {ns}: {pids}")
    r = sh("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", str(T_EVENT),
           url(PORT_H1, "/small.txt?sc=clean-check"), ns=NS["a"], check=False, timeout=T_EVENT + 5)
    if r.stdout.strip() != "200":
        problems.append(f"pod-a cannot reach the server: {r.stdout} {r.stderr.strip()}")
    return problems


class LiveTest(unittest.TestCase):
    """Every test starts from the bare test bed, checked, and leaves it so,
    whether it passes, fails or raises: its cleanup stops what it started
    and removes what it attached, and fails the test if something stayed
    attached once its processes had ended."""

    def setUp(self):
        global TEST_PROCS
        TEST_PROCS = []
        self.addCleanup(self.restore)
        found = restore_testbed()
        if found:
            log(f"{self.id()}: removed before the test: {found}")
        problems = testbed_problems()
        if problems:
            self.fail("the test bed is not in its known-clean state: " + "; ".join(problems))

    def restore(self):
        global TEST_PROCS
        try:
            leaks = restore_testbed()
        finally:
            TEST_PROCS = None
        if leaks:
            raise AssertionError(f"{self.id()} left attachments behind: {leaks}")


# --- load that lasts until the test stops it ----------------------------------------


class Load:
    """tests/e2e/loadgen.py in a pod: keep-alive HTTP/1.1 connections to
    nginx, never reopened. mode "loop": requests until stop(); "command":
    one connection, requests on demand (req())."""

    counter = 0

    def __init__(self, pod="a", path="/a.txt", connections=2, mode="loop", port=PORT_H1):
        Load.counter += 1
        self.name = f"load-{Load.counter}"
        self.out_path = os.path.join(TMP, self.name + ".out")
        self.mode = mode
        cmd = ["/usr/bin/python3", LOADGEN, "--host", SERVER, "--port", port, "--path", path,
               "--size", FILES[path.split("?")[0]], "--connections", connections, "--mode", mode]
        self.proc = spawn(cmd, ns=NS[pod], stdin=subprocess.PIPE,
                          stdout=open(self.out_path, "wb") if mode == "loop" else subprocess.PIPE,
                          stderr=open(os.path.join(TMP, self.name + ".err"), "wb"))
        self.result = None

    def lines(self):
        with open(self.out_path) as f:
            return f.read().splitlines()

    def ok(self):
        """Requests answered correctly so far (loop mode)."""
        progress = [ln for ln in self.lines() if ln.startswith("progress ")]
        return int(progress[-1].split()[1]) if progress else 0

    def wait_ok(self, n, what):
        wait_until(lambda: self.ok() >= n or self.proc.poll() is not None, T_EVENT, what)
        if self.ok() < n:
            raise AssertionError(f"{self.name} ended after {self.ok()} requests: "
                                 f"{self.lines()[-3:]}")

    def command(self, line):
        """Sends a command (command mode) and returns its answer."""
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        deadline = time.time() + T_EVENT
        while time.time() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1)
            if ready:
                answer = self.proc.stdout.readline().decode().strip()
                if not answer:
                    raise AssertionError(f"{self.name} ended: {self.proc.poll()}")
                return answer
        raise AssertionError(f"{self.name} did not answer {line!r} within {T_EVENT} s")

    def req(self, n, path=None):
        answer = self.command(f"req {n}" + (f" {path} {FILES[path.split('?')[0]]}"
                                            if path else "")).split()
        if answer[:1] != ["done"] or int(answer[2]) != 0:
            raise AssertionError(f"{self.name}: {n} requests: {answer}")
        return int(answer[1])

    def stop(self):
        """Ends the load; returns loadgen's summary (ok, failed, errors,
        first_ok, last_ok, connections)."""
        if self.mode == "command":
            self.proc.stdin.close()
            out = self.proc.stdout.read().decode()
            self.proc.wait(timeout=T_EVENT)
        else:
            stop_process(self.proc)
            out = "\n".join(self.lines())
        m = re.search(r"^summary (.*)$", out, re.M)
        if not m:
            raise AssertionError(f"{self.name}: no summary (exit {self.proc.returncode}): {out}")
        self.result = json.loads(m.group(1))
        return self.result


# --- clients (run in pod-a) ---------------------------------------------------------

CURL_W = "%{http_code} %{size_download} %{size_upload} %{local_port} %{num_connects}\\n"


class Exchange:
    """What a client did and saw for one request."""

    def __init__(self, method, target, status, version, resp_body=None, req_body=None,
                 stream_id=None, client_port=None):
        self.method = method
        self.path, _, self.query = target.partition("?")
        self.status = status
        self.version = version
        self.resp_body = resp_body
        self.req_body = req_body
        self.stream_id = stream_id
        self.client_port = client_port

    def key(self):
        return (self.method, self.path, self.query, self.status)


def curl(urls, extra=(), method="GET", version="1.1", req_body=None, pod="a"):
    """One curl run, one connection (curl reuses it for the same host);
    returns an Exchange per URL."""
    cmd = ["curl", "-sS", "--max-time", str(2 * T_EVENT), "-w", CURL_W] + list(extra)
    for u in urls:
        cmd += ["-o", "/dev/null", u]
    r = sh(*cmd, ns=NS[pod])
    lines = r.stdout.split("\n")
    got = []
    for u, line in zip(urls, lines):
        code, down, _up, port, _n = line.split()
        target = u.split("/", 3)[3]
        got.append(Exchange(method, "/" + target, int(code), version,
                            resp_body=0 if method == "HEAD" else int(down), req_body=req_body,
                            client_port=int(port)))
    connects = sum(int(line.split()[4]) for line in lines if line.strip())
    if connects != 1:
        raise AssertionError(f"curl made {connects} connections, not 1: {r.stdout}")
    return got


def nghttp(urls):
    """nghttp -v: all URLs as streams of one h2c connection; statuses and
    content lengths from its frame log."""
    r = sh("nghttp", "-nv", "-t", str(2 * T_EVENT), *urls, ns=NS["a"])
    paths, methods, status, length = {}, {}, {}, {}
    current = None
    for line in r.stdout.splitlines():
        m = re.search(r"send HEADERS frame <.*stream_id=(\d+)>", line)
        if m:
            current = int(m.group(1))
            continue
        m = re.match(r"\s+:path: (.*)$", line)
        if m and current is not None and current not in paths:
            paths[current] = m.group(1)
            continue
        m = re.match(r"\s+:method: (.*)$", line)
        if m and current is not None and current not in methods:
            methods[current] = m.group(1)
            continue
        if not line.startswith(" "):
            current = None if "send HEADERS" not in line else current
        m = re.search(r"recv \(stream_id=(\d+)\) :status: (\d+)", line)
        if m:
            status[int(m.group(1))] = int(m.group(2))
        m = re.search(r"recv \(stream_id=(\d+)\) content-length: (\d+)", line)
        if m:
            length[int(m.group(1))] = int(m.group(2))
    got = [Exchange(methods.get(sid, "GET"), paths[sid], status[sid], "2",
                    resp_body=length.get(sid), req_body=0, stream_id=sid) for sid in sorted(paths)]
    if len(got) != len(urls):
        raise AssertionError(f"nghttp: {len(got)} streams for {len(urls)} URLs:\n{r.stdout}")
    return got


def h2load(url, n, c, m=1, h1=False, timeout=5 * T_EVENT):
    cmd = ["h2load", "-n", n, "-c", c, "-m", m] + (["--h1"] if h1 else []) + [url]
    return sh(*cmd, ns=NS["a"], timeout=timeout)


def h2load_result(out):
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not m or not s:
        raise AssertionError(f"h2load output not understood:\n{out}")
    return {"total": int(m.group(1)), "done": int(m.group(3)), "succeeded": int(m.group(4)),
            "failed": int(m.group(5)), "errored": int(m.group(6)), "2xx": int(s.group(1)),
            "other": int(s.group(2)) + int(s.group(3)) + int(s.group(4))}


def url(port, target):
    return f"http://{SERVER}:{port}{target}"


# --- scenarios ------------------------------------------------------------------------


class Scenario:
    """One client scenario under its own l7tap run (output both) and its own
    tcpdump on the pod-a veth."""

    def __init__(self, name, run, conns, protocol):
        self.name = name
        self.run_clients = run  # () -> list of Exchange
        self.conns = conns  # connections the client made
        self.protocol = protocol  # l7tap.protocol of those connections
        self.exchanges = None
        self.l7 = None
        self.records = None
        self.journal = None
        self.pcap = None
        self.tcpdump_err = ""
        self.error = None


def sc_keepalive():
    return curl([url(PORT_H1, "/index.html?sc=keepalive&i=1"),
                 url(PORT_H1, "/small.txt?sc=keepalive&i=2"),
                 url(PORT_H1, "/missing?sc=keepalive&i=3")])


def sc_head():
    return curl([url(PORT_H1, "/index.html?sc=head")], extra=["-I"], method="HEAD")


def sc_post():
    body = os.path.join(TMP, "post-body.bin")
    got = curl([url(PORT_H1, "/upload?sc=post")],
               extra=["-H", "Expect:", "--data-binary", "@" + body], method="POST",
               req_body=os.path.getsize(body))
    return got


def sc_large():
    return curl([url(PORT_H1, "/large.bin?sc=large")])


def sc_nghttp():
    return nghttp([url(PORT_H2, f"/{n}.txt?sc=nghttp&i={i}") for i, n in enumerate("abcd", 1)] +
                  [url(PORT_H2, "/missing?sc=nghttp&i=5")])


def sc_h2load():
    r = h2load(url(PORT_H2, "/a.txt?sc=h2load"), 300, 3, 10)
    res = h2load_result(r.stdout)
    if res["succeeded"] != 300 or res["2xx"] != 300 or "h2c" not in r.stdout:
        raise AssertionError(f"h2load did not do 300 h2c requests:\n{r.stdout}")
    return [Exchange("GET", "/a.txt?sc=h2load", 200, "2", resp_body=FILES["/a.txt"], req_body=0)
            for _ in range(300)]


def sc_h2load_large():
    # 1 MB responses, four streams at once: without the frame walk, HEADERS
    # frames inside 64 KB GSO skbs fall beyond the window and streams lose
    # their status; with it every record is complete.
    n = 20
    r = h2load(url(PORT_H2, "/large.bin?sc=h2large"), n, 1, 4)
    res = h2load_result(r.stdout)
    if res["succeeded"] != n or res["2xx"] != n or "h2c" not in r.stdout:
        raise AssertionError(f"h2load did not do {n} h2c requests:\n{r.stdout}")
    return [Exchange("GET", "/large.bin?sc=h2large", 200, "2", resp_body=FILES["/large.bin"],
                     req_body=0) for _ in range(n)]


def sc_h2load_h1():
    r = h2load(url(PORT_H1, "/b.txt?sc=h1load"), 300, 3, h1=True)
    res = h2load_result(r.stdout)
    if res["succeeded"] != 300 or res["2xx"] != 300:
        raise AssertionError(f"h2load --h1 did not do 300 requests:\n{r.stdout}")
    return [Exchange("GET", "/b.txt?sc=h1load", 200, "1.1", resp_body=FILES["/b.txt"], req_body=0)
            for _ in range(300)]


def sc_http10():
    return curl([url(PORT_PY10, "/small.txt?sc=http10")], extra=["--http1.0"], version="1.0")


SCENARIOS = collections.OrderedDict((s.name, s) for s in [
    Scenario("keepalive", sc_keepalive, 1, "http/1"),
    Scenario("head", sc_head, 1, "http/1"),
    Scenario("post", sc_post, 1, "http/1"),
    Scenario("large_download", sc_large, 1, "http/1"),
    Scenario("nghttp_5_streams", sc_nghttp, 1, "h2"),
    Scenario("h2load_h2c", sc_h2load, 3, "h2"),
    Scenario("h2load_h2c_1mb", sc_h2load_large, 1, "h2"),
    Scenario("h2load_h1", sc_h2load_h1, 3, "http/1"),
    Scenario("python_http10", sc_http10, 1, "http/1"),
])


def run_scenario(name):
    """Runs a scenario once (cached): l7tap on both node-side veths, tcpdump
    on the pod-a veth, the clients; then stops both and reads the records."""
    sc = SCENARIOS[name]
    if sc.records is not None or sc.error is not None:
        if sc.error:
            raise AssertionError(f"scenario {name} could not run: {sc.error}")
        return sc
    try:
        if not ARGS.clients_only:
            sc.l7 = L7tap("--iface", PREFIX + "[ab]", "--window", WINDOW, "--interim", 0)
            sc.l7.start(attached=[IFACE["a"], IFACE["b"]])
        sc.pcap = os.path.join(TMP, f"{name}.pcap")
        dump_err = os.path.join(TMP, f"{name}.tcpdump.err")
        dump = spawn(["tcpdump", "-i", IFACE["a"], "-s", "0", "-B", "65536", "-U", "--immediate-mode", "-n", "-Z", "root", "-w",
                      sc.pcap, "tcp"], ns=NS_NODE, stderr=open(dump_err, "wb"))
        wait_until(lambda: "listening on" in open(dump_err).read() or dump.poll() is not None,
                   T_EVENT, "tcpdump to listen")
        sc.exchanges = sc.run_clients()
        wait_connections_closed()
        stop_process(dump)
        sc.tcpdump_err = open(dump_err).read()
        if ARGS.clients_only:  # no live run: check the checks on the replayed capture
            r = sh(L7TAP, "replay", "--keep-query", "--window", WINDOW, "--quiet", sc.pcap)
            sc.records = [json.loads(line) for line in r.stdout.splitlines()]
            sc.journal = []
            return sc
        rc = sc.l7.stop()
        if rc != 0:
            raise AssertionError(f"l7tap exited {rc}: {sc.l7.stderr()}")
        sc.records = sc.l7.records()
        sc.journal = sc.l7.journal(want=len(sc.records))
        k = sc.l7.kernel_counters() or {}
        REPORT[name] = {
            "requests": len(sc.exchanges),
            "http_json": len(http_of(sc.records)),
            "http_journal": sum(1 for e in sc.journal if e.get("L7TAP_TYPE") == "http"),
            "conns": len(conns_of(sc.records)),
            "conns_made": sc.conns,
            "payload_bytes": k.get("payload_bytes"),
            "copied_bytes": k.get("copied_bytes"),
            "skipped_bytes": k.get("skipped_bytes"),
            "not_owner": k.get("not_owner"),
            "ringbuf_full": k.get("ringbuf_full"),
            "walked": k.get("walked"),
            "walk_lost": k.get("walk_lost"),
        }
    except Exception as e:  # noqa: BLE001 - recorded, re-raised for this test
        sc.error = f"{type(e).__name__}: {e}"
        raise
    return sc


class TestScenarios(LiveTest):
    """Test 1: records (JSON and journal) match what each client did."""

    def check(self, name):
        sc = run_scenario(name)
        recs, http, conns = sc.records, http_of(sc.records), conns_of(sc.records)
        ctx = f"\nscenario {name}; l7tap stderr:\n{sc.l7.stderr() if sc.l7 else '-'}"

        # Every exchange exactly once: same multiset of (method, path, query, status).
        want = collections.Counter(x.key() for x in sc.exchanges)
        got = collections.Counter((r.get("http.request.method"), r.get("url.path"),
                                   r.get("url.query", ""), r.get("http.response.status_code"))
                                  for r in http)
        self.assertEqual(got, want, f"exchanges: got - want = {dict(got - want)}, "
                                    f"want - got = {dict(want - got)}{ctx}")

        # Per exchange details the client knows.
        by_key = collections.defaultdict(list)
        for r in http:
            by_key[(r.get("http.request.method"), r.get("url.path"), r.get("url.query", ""),
                    r.get("http.response.status_code"))].append(r)
        for x in sc.exchanges:
            rs = by_key[x.key()]
            with self.subTest(exchange=x.key()):
                r = rs.pop(0) if x.stream_id is None else next(
                    (r for r in rs if r.get("l7tap.http2.stream_id") == x.stream_id), None)
                self.assertIsNotNone(r, f"no record with stream id {x.stream_id}")
                self.assertEqual(r.get("network.protocol.version"), x.version)
                self.assertEqual(r.get("client.address"), POD_ADDR["a"])
                self.assertEqual(r.get("server.address"), SERVER)
                if x.client_port is not None:
                    self.assertEqual(r.get("client.port"), x.client_port)
                if x.resp_body is not None:
                    self.assertEqual(r.get("http.response.body.size"), x.resp_body, str(r))
                if x.req_body is not None:
                    self.assertEqual(r.get("http.request.body.size"), x.req_body, str(r))
                # A body longer than the window is a gap by design (the window
                # applies per skb); nothing else may be flagged on a clean run.
                self.assertLessEqual(set(flags_of(r)), {"gap"}, f"unexpected flags in {r}")
                if sc.l7 is not None:  # reported by the interface that saw the flow first
                    self.assertEqual(r.get("l7tap.ifindex"), ifindex(IFACE["a"]), str(r))

        # Connection records: one final record per connection the client made.
        finals = [c for c in conns if c.get("l7tap.conn.record") == "final"]
        self.assertEqual(len(finals), sc.conns, f"final connection records {finals}{ctx}")
        self.assertEqual(len({c["l7tap.connection_id"] for c in finals}), sc.conns)
        for c in finals:
            self.assertEqual(c.get("l7tap.protocol"), sc.protocol, str(c))
            self.assertEqual(c.get("client.address"), POD_ADDR["a"], str(c))
            self.assertEqual(c.get("server.address"), SERVER, str(c))
        ids = {c["l7tap.connection_id"] for c in finals}
        for r in http:
            self.assertIn(r.get("l7tap.connection_id"), ids, f"record of no connection: {r}")
        per_conn = collections.Counter(r["l7tap.connection_id"] for r in http)
        for c in finals:
            self.assertEqual(c.get("l7tap.conn.http_exchanges"), per_conn[c["l7tap.connection_id"]],
                             str(c))

        if sc.l7 is None:
            return
        # The journal has the same records.
        jhttp = [e for e in sc.journal if e.get("L7TAP_TYPE") == "http"]
        jconn = [e for e in sc.journal if e.get("L7TAP_TYPE") == "conn"]
        jgot = collections.Counter(
            (e.get("HTTP_REQUEST_METHOD"), e.get("URL_PATH"), e.get("URL_QUERY", ""),
             int(e["HTTP_RESPONSE_STATUS_CODE"]) if "HTTP_RESPONSE_STATUS_CODE" in e else None)
            for e in jhttp)
        self.assertEqual(jgot, got, f"journal http entries differ from JSON: journal - json = "
                                    f"{dict(jgot - got)}, json - journal = {dict(got - jgot)}")
        self.assertEqual(len(jconn), len(conns), "journal conn entries")
        self.assertEqual({int(e["L7TAP_CONNECTION_ID"]) for e in sc.journal},
                         {r["l7tap.connection_id"] for r in recs})
        jbody = collections.Counter(e.get("HTTP_RESPONSE_BODY_SIZE") for e in jhttp)
        self.assertEqual(jbody, collections.Counter(str(r.get("http.response.body.size"))
                                                    for r in http))
        for e in jhttp:
            self.assertTrue(e.get("MESSAGE", "").startswith(e.get("HTTP_REQUEST_METHOD", "-") + " "),
                            str(e.get("MESSAGE")))
            self.assertEqual(e.get("SYSLOG_IDENTIFIER"), "l7tap")

        # The flow crossed both attached veths; the other one stood aside.
        k = sc.l7.kernel_counters()
        self.assertIsNotNone(k, "no kernel counter line in the summary")
        self.assertGreater(k["not_owner"], 0, "the second interface should see the flows too")
        self.assertEqual(k["ringbuf_full"], 0)

    def test_curl_keepalive(self):
        self.check("keepalive")

    def test_curl_head(self):
        self.check("head")

    def test_curl_post(self):
        self.check("post")

    def test_large_download(self):
        self.check("large_download")

    def test_nghttp_streams(self):
        self.check("nghttp_5_streams")

    def test_h2load_h2c(self):
        self.check("h2load_h2c")

    def test_h2load_h2c_1mb(self):
        sc = run_scenario("h2load_h2c_1mb")
        r = REPORT.get("h2load_h2c_1mb")
        if r is None or not r.get("walk_lost"):
            # The kernel walked the HTTP/2 frames from the connection's first
            # bytes: every record complete, far less than a window per skb.
            self.check("h2load_h2c_1mb")
            if r is not None:
                self.assertGreater(r["walked"], 0, str(r))
                self.assertLess(r["copied_bytes"], r["payload_bytes"] / 100, str(r))
            return
        # A packet dropped before the hook left a hole across frame headers
        # (TCP sent it again later): the walk lost its place, and on a
        # connection that never pauses the daemon cannot re-arm it before the
        # kernel has passed the boundary it knows. Records after that may be
        # incomplete, flagged, but never wrong.
        log(f"h2load_h2c_1mb: the walk was lost ({r}); checking never-wrong only")
        http = http_of(sc.records)
        self.assertEqual(len(http), 20)
        for rec in http:
            self.assertEqual(rec.get("url.path"), "/large.bin", str(rec))
            self.assertIn(rec.get("http.response.status_code"), (200, None), str(rec))
            self.assertLessEqual(rec.get("http.response.body.size", 0), FILES["/large.bin"], str(rec))
            if rec.get("http.response.status_code") is None or \
                    rec.get("http.response.body.size") != FILES["/large.bin"]:
                self.assertIn("gap", flags_of(rec), str(rec))

    def test_h2load_h1(self):
        self.check("h2load_h1")

    def test_python_http10(self):
        self.check("python_http10")


class TestReplayEquivalence(LiveTest):
    """Test 2: the live records agree with `l7tap replay --window W
    --capture-control` of a tcpdump capture taken on the pod-a veth at the
    same time (the daemon runs with capture control, its default)."""

    @staticmethod
    def key(r):
        return (r.get("client.port"), r.get("l7tap.http2.stream_id"), r.get("http.request.method"),
                r.get("url.path"), r.get("url.query"), r.get("http.response.status_code"),
                r.get("network.protocol.version"), r.get("http.request.body.size"),
                r.get("http.response.body.size"), flags_of(r))

    def test_kernel_equals_replay(self):
        compared = 0
        for name in SCENARIOS:
            with self.subTest(scenario=name):
                sc = run_scenario(name)
                if REPORT.get(name, {}).get("walk_lost"):
                    # Re-arming a lost walk depends on the daemon's timing
                    # live and is instant in replay: the records may differ.
                    log(f"{name}: frame walk lost live; kernel = replay not comparable")
                    continue
                cap = re.search(r"(\d+) packets? captured", sc.tcpdump_err)
                seen = re.search(r"(\d+) packets? received by filter", sc.tcpdump_err)
                drop = re.search(r"(\d+) packets? dropped by kernel", sc.tcpdump_err)
                self.assertTrue(cap and seen and drop, f"tcpdump said: {sc.tcpdump_err}")
                if cap.group(1) != seen.group(1) or drop.group(1) != "0":
                    # tcpdump could not keep up (the CPUs are shared): the
                    # capture misses what l7tap saw, not comparable.
                    log(f"{name}: tcpdump lost packets; kernel = replay not comparable: "
                        f"{sc.tcpdump_err.strip()}")
                    continue
                compared += 1
                r = sh(L7TAP, "replay", "--keep-query", "--window", WINDOW, "--capture-control",
                       "--quiet", sc.pcap, check=False)
                self.assertEqual(r.returncode, 0, r.stderr)
                replay = [json.loads(line) for line in r.stdout.splitlines()]
                live = collections.Counter(self.key(x) for x in http_of(sc.records))
                rep = collections.Counter(self.key(x) for x in http_of(replay))
                self.assertEqual(live, rep, f"live - replay = {dict(live - rep)}\n"
                                            f"replay - live = {dict(rep - live)}")
                lc = sorted((c.get("client.port"), c.get("l7tap.protocol"),
                             c.get("l7tap.conn.http_exchanges")) for c in conns_of(sc.records))
                rc = sorted((c.get("client.port"), c.get("l7tap.protocol"),
                             c.get("l7tap.conn.http_exchanges")) for c in conns_of(replay))
                self.assertEqual(lc, rc, "connections")
        self.assertGreater(compared, 0, "no scenario could be compared")


def our_progs_gone(ids, timeout=T_EVENT):
    """Waits until none of the BPF program ids is loaded; returns those left."""
    deadline = time.time() + timeout
    while True:
        left = {i: n for i, n in loaded_prog_ids().items() if i in ids}
        if not left or time.time() > deadline:
            return left
        time.sleep(0.1)


class TestKill9(LiveTest):
    """Test 3: kill -9 while a load runs: the traffic carries on untouched
    (no request fails, no connection breaks), nothing of l7tap's stays
    attached (tcx; clsact: the next start removes what was left), and a
    restart captures again."""

    def kill_during_load(self, mode):
        l7 = L7tap("--iface", PREFIX + "[ab]", "--attach-mode", mode, output="json")
        l7.start(attached=[IFACE["a"], IFACE["b"]])
        self.assertIn(f"{mode})", l7.stderr())
        ids = set(l7.prog_ids)
        names = loaded_prog_ids()
        self.assertTrue(ids, "l7tap holds no BPF program")
        self.assertTrue({names.get(i) for i in ids} >= {"l7tap_ingress", "l7tap_egress"},
                        f"programs held: {[names.get(i) for i in ids]}")
        # The load lasts until it is stopped below, however fast it runs.
        load = Load(path="/a.txt?sc=kill9", connections=2)
        wait_until(lambda: any(r.get("url.query") == "sc=kill9" for r in http_of(l7.records())),
                   T_EVENT, "the first records of the load")
        load.wait_ok(1, "the load's first answers")
        before = load.ok()
        l7.proc.send_signal(signal.SIGKILL)
        l7.proc.wait()
        self.assertEqual(l7.proc.returncode, -signal.SIGKILL)
        # The same connections go on answering after the kill.
        load.wait_ok(before + 200, "200 more requests of the load after the kill")
        res = load.stop()
        self.assertEqual((res["failed"], res["connections"]), (0, 2),
                         f"the load was disturbed: {res}")
        self.assertGreater(res["ok"], before, res)
        return l7, ids

    def restart_captures(self, mode, old_ids):
        """A new start attaches and captures a request; a clean exit then
        leaves nothing."""
        l7b = L7tap("--iface", PREFIX + "[ab]", "--attach-mode", mode, output="json")
        l7b.start(attached=[IFACE["a"], IFACE["b"]])
        ids_b = set(l7b.prog_ids)
        self.assertEqual(our_progs_gone(old_ids), {},
                         "the killed run's programs are still loaded after the restart")
        ex = curl([url(PORT_H1, "/small.txt?sc=restart")])
        wait_connections_closed()
        self.assertEqual(l7b.stop(), 0, l7b.stderr())
        http = http_of(l7b.records())
        self.assertEqual([(r.get("url.path"), r.get("url.query"), r.get("http.response.status_code"),
                           r.get("client.port")) for r in http],
                         [("/small.txt", "sc=restart", 200, ex[0].client_port)], l7b.stderr())
        self.assertEqual(tc_filters(IFACE["a"]), "", "filters left after a clean exit")
        self.assertEqual(tc_filters(IFACE["b"]), "", "filters left after a clean exit")
        self.assertEqual(our_progs_gone(ids_b), {}, "programs left after a clean exit")

    def test_tcx(self):
        l7, ids = self.kill_during_load("tcx")
        left = our_progs_gone(ids)
        self.assertEqual(left, {}, "BPF programs still loaded after kill -9 in tcx mode")
        self.assertEqual(tc_filters(IFACE["a"]) + tc_filters(IFACE["b"]), "")
        self.restart_captures("tcx", ids)

    def test_clsact(self):
        l7, ids = self.kill_during_load("clsact")
        # By design the clsact filters outlive a kill -9 (the traffic above
        # passed them untouched) ...
        left_behind = tc_filters(IFACE["a"])
        log(f"clsact after kill -9: filters on {IFACE['a']}: {left_behind!r}")
        self.assertIn("bpf", left_behind)
        # ... and the next start replaces them.
        self.restart_captures("clsact", ids)


class TestRingFull(LiveTest):
    """Test 4: a tiny ring drained slowly overflows. The daemon says so, and
    the accounting is exact: every segment event the kernel could not queue
    is a sequence range user space never saw, so the payload bytes of the
    lost events (kernel: ringbuf_full_bytes) are the bytes user space
    declares as holes (summary: "N of them in holes"), provided no event of
    a retransmission covered a lost range again (the kernel's per-flow
    retransmission count is 0) and the connection's first and last events
    got through (the test makes sure of both). Every record touched by a hole
    is flagged gap; no record holds a wrong value."""

    def test_ring_full(self):
        # No tail loss probes: on a busy machine they resend segments the
        # peer got (the kernel counts them as retransmissions), and an event
        # of a resent segment may fill a hole the ring left.
        for pod in ("a", "b"):
            old = sh("sysctl", "-n", "net.ipv4.tcp_early_retrans", ns=NS[pod]).stdout.strip()
            sh("sysctl", "-qw", "net.ipv4.tcp_early_retrans=0", ns=NS[pod])
            self.addCleanup(sh, "sysctl", "-qw", f"net.ipv4.tcp_early_retrans={old}", ns=NS[pod])
        l7 = L7tap("--iface", PREFIX + "[ab]", "--ring-kb", 4, "--drain-ms", 500, "--interim", 0,
                   output="json")
        l7.start(attached=[IFACE["a"], IFACE["b"]])
        # One connection. Its start goes through an empty ring: the first
        # record appears complete before the burst.
        load = Load(path="/small.txt?sc=ring", mode="command")
        load.req(1)
        wait_until(lambda: any(r.get("url.query") == "sc=ring" and not flags_of(r)
                               for r in http_of(l7.records())), T_EVENT,
                   "the complete record of the first request")
        # Small responses: no window truncation, so any gap is a loss.
        self.assertEqual(load.req(RING_N), RING_N)
        # Its end too: requests until one is seen complete (the ring was
        # drained after the burst), then the close.
        sent = []  # time of each marking request

        def drained():
            if not sent or time.time() - sent[-1] > 1.0:  # two drains apart
                load.req(1, f"/small.txt?sc=ring-mark-{len(sent) + 1}")
                sent.append(time.time())
            complete = {r.get("url.query") for r in http_of(l7.records()) if not flags_of(r)}
            return any(f"sc=ring-mark-{i}" in complete for i in range(1, len(sent) + 1))
        wait_until(drained, T_EVENT, "a request after the burst recorded complete", interval=0.1)
        marks = len(sent)
        self.assertEqual(load.command("close"), "closed")
        res = load.stop()
        self.assertEqual((res["failed"], res["connections"]), (0, 1), res)
        wait_connections_closed()
        rc = l7.stop()
        self.assertEqual(rc, 0, l7.stderr())
        k = l7.kernel_counters()
        self.assertIsNotNone(k, l7.stderr())
        gaps = l7.summary(r"(\d+) bytes in gaps")
        holes = l7.summary(r"(\d+) of them in holes")
        recs = l7.records()
        http, conns = http_of(recs), conns_of(recs)
        missed = sum(c.get("l7tap.conn.client.missed_bytes", 0) +
                     c.get("l7tap.conn.server.missed_bytes", 0) for c in conns)
        retrans = sum(c.get("l7tap.conn.client.retransmitted_segments", 0) +
                      c.get("l7tap.conn.server.retransmitted_segments", 0) for c in conns)
        gap = sum(1 for x in http if "gap" in flags_of(x))
        statuses = collections.Counter(x.get("http.response.status_code") for x in http)
        REPORT["ring_full"] = {
            "requests": RING_N + 1 + marks, "http_json": len(http), "conns": len(conns),
            "conns_made": 1, "ringbuf_full": k["ringbuf_full"],
            "ringbuf_full_bytes": k["ringbuf_full_bytes"], "events": k["events"],
            "bytes_in_gaps": gaps, "bytes_in_holes": holes, "missed_bytes": missed,
            "retransmitted_segments": retrans, "gap_records": gap, "statuses": dict(statuses),
            "flags": dict(collections.Counter(",".join(flags_of(x)) for x in http)),
        }
        self.assertGreater(k["ringbuf_full"], 0, l7.stderr())
        self.assertGreater(k["ringbuf_full_bytes"], 0, l7.stderr())
        self.assertIn("lost to a full ring buffer", l7.stderr())
        # The accounting.
        finals = [c for c in conns if c.get("l7tap.conn.record") == "final"]
        self.assertEqual(len(finals), 1, str(conns))
        self.assertEqual(finals[0].get("l7tap.conn.counted_by"), "kernel", str(finals[0]))
        self.assertEqual(missed, gaps, "connection records and summary disagree on gap bytes")
        self.assertLessEqual(holes, gaps)
        odd = [x for x in http if flags_of(x)] + conns
        if retrans == 0:
            self.assertEqual(holes, k["ringbuf_full_bytes"],
                             f"user space holes vs payload of the events lost in the ring\n"
                             f"{l7.stderr()}\nflagged records and connections: {odd}")
        else:  # a retransmission's event may have brought lost bytes back
            log(f"ring_full: {retrans} retransmitted segments: holes {holes} <= "
                f"lost {k['ringbuf_full_bytes']}")
            self.assertLessEqual(holes, k["ringbuf_full_bytes"])
        self.assertEqual(gap > 0, holes > 0, f"{gap} records flagged gap, {holes} hole bytes")
        # Never a wrong value: a record without flags is exactly what was
        # asked and answered; a flagged one is flagged gap, and what it
        # holds is right.
        size = FILES["/small.txt"]
        queries = {"sc=ring"} | {f"sc=ring-mark-{i}" for i in range(1, marks + 1)}
        for x in http:
            flags = set(flags_of(x))
            if not flags:
                self.assertEqual((x.get("http.request.method"), x.get("url.path"),
                                  x.get("http.response.status_code"),
                                  x.get("http.response.body.size"),
                                  x.get("http.request.body.size")),
                                 ("GET", "/small.txt", 200, size, 0), str(x))
                self.assertIn(x.get("url.query"), queries, str(x))
                continue
            self.assertIn("gap", flags, str(x))
            self.assertLessEqual(flags, {"gap", "no_request", "no_response", "midstream"}, str(x))
            self.assertIn(x.get("http.response.status_code"), (200, None), str(x))
            self.assertIn(x.get("url.path"), ("/small.txt", None), str(x))
            if x.get("url.path") is not None:
                self.assertIn(x.get("url.query"), queries, str(x))
            if x.get("http.response.status_code") is not None:
                self.assertLessEqual(x.get("http.response.body.size", 0), size, str(x))
        self.assertLessEqual(sum(1 for x in http if x.get("url.query") == "sc=ring"), RING_N + 1)


class TestLateInterface(LiveTest):
    """Test 5: an interface that matches the glob after the start is attached;
    when it goes away l7tap says so and keeps running."""

    def test_appears_later(self):
        self.assertNotIn(IFACE["c"], sh("ip", "-n", NS_NODE, "-o", "link").stdout)
        l7 = L7tap("--iface", PREFIX + "c*", "--interim", 0, output="json")
        l7.start()
        self.assertIn("no interface matches yet", l7.stderr())
        add_pod("c")
        l7.wait_stderr(f"attached to {IFACE['c']} ")
        ex = curl([url(PORT_H1, "/small.txt?sc=late")], pod="c")
        wait_until(lambda: any(r.get("url.query") == "sc=late" for r in l7.records()), T_EVENT,
                   "the record of pod-c's request")
        sh("ip", "-n", NS_NODE, "link", "del", IFACE["c"])
        l7.wait_stderr(f"{IFACE['c']} (ifindex")
        self.assertRegex(l7.stderr(), rf"{IFACE['c']} \(ifindex \d+\) is gone")
        # It comes back: attached again (so l7tap kept running meanwhile).
        sh("ip", "-n", NS_NODE, "link", "add", IFACE["c"], "type", "veth", "peer", "name", "eth1",
           "netns", NS["c"])
        l7.wait_stderr(f"attached to {IFACE['c']} ", count=2)
        self.assertEqual(l7.stop(), 0, l7.stderr())
        http = http_of(l7.records())
        self.assertEqual([(r.get("client.address"), r.get("client.port"), r.get("url.path"),
                           r.get("http.response.status_code")) for r in http],
                         [(POD_ADDR["c"], ex[0].client_port, "/small.txt", 200)])


class TestLoopback(LiveTest):
    """On a loopback device every packet passes the egress and then the
    ingress hook: l7tap attaches egress only there, so each exchange and each
    packet is reported once (no phantom retransmissions)."""

    def test_loopback_reports_once(self):
        port = "18099"
        spawn(["/usr/bin/python3", "-m", "http.server", port, "--bind", "127.0.0.1",
               "--directory", DOC], ns=NS_NODE, name="python-lo")
        wait_port(NS_NODE, port)
        l7 = L7tap("--iface", "lo", "--interim", 0, output="json")
        l7.start(attached=["lo"])
        for target in ("/small.txt?sc=lo1", "/missing?sc=lo2"):
            sh("curl", "-sS", "-o", "/dev/null", f"http://127.0.0.1:{port}{target}", ns=NS_NODE)
        wait_until(lambda: sum(1 for r in http_of(l7.records())
                               if r.get("url.query", "").startswith("sc=lo")) == 2,
                   T_EVENT, "both loopback records")
        self.assertEqual(l7.stop(), 0, l7.stderr())
        recs = l7.records()
        got = sorted((r.get("url.path"), r.get("http.response.status_code"))
                     for r in http_of(recs))
        self.assertEqual(got, [("/missing", 404), ("/small.txt", 200)])
        for c in conns_of(recs):
            self.assertEqual(c["l7tap.conn.counted_by"], "kernel", c)
            for side in ("client", "server"):
                self.assertEqual(c[f"l7tap.conn.{side}.retransmitted_segments"], 0, c)


class TestRecordPolicy(LiveTest):
    """--records errors live: only the failed exchange is written (while
    attach runs: the buffered JSON lines are flushed every drain), every
    connection still is; attach runs at nice 10 by default, --nice 0 leaves
    it as started."""

    @staticmethod
    def nice_of(pid):
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        return stat[stat.index("(") + 1:stat.rindex(")")], int(fields[16])

    def test_errors_only_and_nice(self):
        port = "18098"
        spawn(["/usr/bin/python3", "-m", "http.server", port, "--bind", "127.0.0.1",
               "--directory", DOC], ns=NS_NODE, name="python-lo-records")
        wait_port(NS_NODE, port)
        l7 = L7tap("--iface", "lo", "--interim", 0, "--records", "errors", output="json")
        l7.start(attached=["lo"])
        self.assertEqual(self.nice_of(l7.pid), ("l7tap", 10))
        # http.server answers a method it does not implement with 501.
        for method, target in (("GET", "/small.txt?sc=rp1"), ("GET", "/missing?sc=rp2"),
                               ("DELETE", "/pot?sc=rp3")):
            sh("curl", "-sS", "-o", "/dev/null", "-X", method,
               f"http://127.0.0.1:{port}{target}", ns=NS_NODE)
        wait_until(lambda: len(conns_of(l7.records())) >= 3, T_EVENT, "three connection records")
        self.assertEqual(l7.stop(), 0, l7.stderr())
        recs = l7.records()
        got = [(r.get("http.request.method"), r.get("http.response.status_code"))
               for r in http_of(recs)]
        self.assertEqual(got, [("DELETE", 501)])
        self.assertEqual(len(conns_of(recs)), 3, str(recs))
        self.assertIn("l7tap: records errors: 1 HTTP records written, 2 dropped by the policy",
                      l7.stderr())
        l7 = L7tap("--iface", "lo", "--interim", 0, "--nice", 0, output="json")
        l7.start(attached=["lo"])
        self.assertEqual(self.nice_of(l7.pid), ("l7tap", os.nice(0)))
        self.assertEqual(l7.stop(), 0, l7.stderr())


class TestStopFlush(LiveTest):
    """SIGINT in the middle of a download: the open exchange is written (its
    response unfinished), the connection gets a final record, exit 0; while it
    ran, --interim 1 wrote interim connection records."""

    def test_sigint_flushes_open_exchange(self):
        l7 = L7tap("--iface", PREFIX + "[ab]", "--interim", 1, output="json")
        l7.start(attached=[IFACE["a"], IFACE["b"]])
        # The client reads at 10 KB/s: 1 MB takes 100 s at least, however
        # fast the machine, and the test ends it long before.
        client = spawn(["curl", "-sS", "--limit-rate", "10k", "-o", "/dev/null",
                        url(PORT_H1, "/slow/large.bin?sc=flush")], ns=NS["a"])
        wait_until(lambda: any(r.get("l7tap.conn.record") == "interim" for r in l7.records()),
                   T_EVENT, "an interim connection record")
        self.assertIsNone(client.poll(), "the download ended before the test stopped it")
        self.assertEqual(l7.stop(signal.SIGINT), 0, l7.stderr())
        stop_process(client, signal.SIGKILL)
        recs = l7.records()
        http = http_of(recs)
        self.assertEqual(len(http), 1, str(http))
        r = http[0]
        self.assertEqual((r.get("http.request.method"), r.get("url.path"), r.get("url.query")),
                         ("GET", "/slow/large.bin", "sc=flush"))
        self.assertIn("no_response", r.get("l7tap.flags", []), "the response was not finished")
        conns = conns_of(recs)
        finals = [c for c in conns if c.get("l7tap.conn.record") == "final"]
        interims = [c for c in conns if c.get("l7tap.conn.record") == "interim"]
        self.assertEqual(len(finals), 1, str(conns))
        self.assertEqual(finals[0].get("l7tap.conn.close_reason"), "end_of_input", str(finals[0]))
        self.assertGreaterEqual(len(interims), 1)
        self.assertEqual({c["l7tap.connection_id"] for c in conns}, {r["l7tap.connection_id"]})
        # Capture control: once the response headers were parsed, the kernel
        # was told to copy none of the rest of the 1 MB body.
        k = l7.kernel_counters()
        self.assertGreater(k["skipped_bytes"], 0, l7.stderr())
        self.assertLess(k["copied_bytes"], k["payload_bytes"] // 4, l7.stderr())
        # The connection's packet counts come from the kernel's flow entry.
        self.assertEqual(finals[0].get("l7tap.conn.counted_by"), "kernel", str(finals[0]))


class FakeJournal:
    """A journal socket this test controls: it counts the l7tap entries it
    reads, and can stop reading (journald stuck) or go away (journald
    stopped) and come back. l7tap finds it at /run/systemd/journal/socket
    through journal_wrap(), so no real journald is touched."""

    def __init__(self):
        self.dir = os.path.join(TMP, "fake-journal")
        os.makedirs(self.dir, exist_ok=True)
        self.path = os.path.join(self.dir, "socket")
        self.entries = 0
        self.lock = threading.Lock()
        self.reading = threading.Event()
        self.reading.set()
        self.sock = None
        self.thread = None
        self.stop_flag = None
        self.open()

    def open(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.read, args=(self.sock, self.stop_flag),
                                       daemon=True)
        self.thread.start()

    def read(self, sock, stop):
        while not stop.is_set():
            if not self.reading.wait(0.05):
                continue
            try:
                data = sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                return
            if b"\nSYSLOG_IDENTIFIER=l7tap\n" in data:
                with self.lock:
                    self.entries += 1

    def count(self):
        with self.lock:
            return self.entries

    def pause(self):
        self.reading.clear()

    def resume(self):
        self.reading.set()

    def close(self):
        """Gone: the socket closed (what was queued is lost) and its file removed."""
        if self.sock is None:
            return
        self.stop_flag.set()
        self.thread.join()
        self.sock.close()
        self.sock = None
        os.unlink(self.path)


class TestFaults(LiveTest):
    """The daemon's faults and their defined outcomes (README, Live capture)."""

    def test_journald_gone_and_stuck(self):
        """journald goes away, comes back, then stops reading: l7tap says so
        once per episode on stderr, keeps running and writing JSON, and
        counts what journald did not take: records sent + lost = records."""
        fake = FakeJournal()
        self.addCleanup(fake.close)
        l7 = L7tap("--iface", PREFIX + "[ab]", "--interim", 0, output="both",
                   wrap=journal_wrap(fake.dir))
        l7.start(attached=[IFACE["a"], IFACE["b"]])
        load = Load(path="/small.txt?sc=journal", mode="command")

        def json_count():
            return len(l7.records())

        def wait_json(n, what):
            wait_until(lambda: json_count() >= n, T_EVENT, what)

        load.req(5)
        wait_json(5, "5 JSON records")
        wait_until(lambda: fake.count() == json_count(), T_EVENT, "journald to get them all")
        # Gone.
        fake.close()
        load.req(50)
        wait_json(55, "55 JSON records")
        l7.wait_stderr("l7tap: journald: cannot send")
        # Back.
        fake.open()
        load.req(5)
        wait_json(60, "60 JSON records")
        l7.wait_stderr("l7tap: journald: sending again; 50 records were lost meanwhile")
        wait_until(lambda: fake.count() == 10, T_EVENT, "the 5 new entries in journald")
        # Stuck: it stops reading, its queue fills up (net.unix.max_dgram_qlen).
        fake.pause()
        load.req(1500)
        wait_json(1560, "1560 JSON records")
        l7.wait_stderr("l7tap: journald: not reading")
        self.assertIsNone(l7.proc.poll())
        self.assertEqual(load.command("close"), "closed")
        load.stop()
        wait_connections_closed()
        # It stops promptly while journald is still stuck.
        self.assertEqual(l7.stop(), 0, l7.stderr())
        err = l7.stderr()
        self.assertEqual(err.count("l7tap: journald: cannot send"), 1, err)
        self.assertEqual(err.count("l7tap: journald: sending again"), 1, err)
        self.assertEqual(err.count("l7tap: journald: not reading"), 1, err)
        total = json_count()
        sent = l7.summary(r"^l7tap: journald: (\d+) records sent")
        lost = l7.summary(r"^l7tap: journald: \d+ records sent, (\d+) lost")
        self.assertEqual(sent + lost, total, err)
        self.assertGreater(lost, 50, err)
        fake.resume()  # what it had queued is read now
        wait_until(lambda: fake.count() == sent, T_EVENT,
                   f"journald to read the {sent} entries l7tap counted as sent")
        REPORT["journald_fault"] = {"records": total, "sent": sent, "lost": lost}

    def test_replay_into_closed_pipe(self):
        """`l7tap replay ... | head -c1`: a clear error, exit 1, no SIGPIPE."""
        pcap = PCAP
        p1 = subprocess.Popen([L7TAP, "replay", "--quiet"] + [pcap] * 300, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        p2 = subprocess.Popen(["head", "-c1"], stdin=p1.stdout, stdout=subprocess.PIPE)
        p1.stdout.close()  # head holds the only reading end
        first, _ = p2.communicate(timeout=T_EVENT)
        err = p1.stderr.read().decode()
        p1.wait(timeout=T_EVENT)
        self.assertEqual(first, b"{")
        self.assertEqual(p1.returncode, 1, f"exit {p1.returncode}: {err}")
        self.assertRegex(err, r"standard output: writing records failed: Broken pipe; stopped "
                              r"after \d+ complete records")

    def test_replay_disk_full(self):
        """-o FILE on a full disk: a clear error, exit 1, and the records
        written before are intact (the file ends with the last whole one)."""
        pcap = PCAP
        whole = sh(L7TAP, "replay", "--quiet", *([pcap] * 100)).stdout.splitlines(keepends=True)
        tiny = os.path.join(TMP, "tiny-disk")
        os.makedirs(tiny, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", "size=64k", "l7tap-e2e-tiny", tiny)
        self.addCleanup(sh, "umount", tiny, check=False)
        out = os.path.join(tiny, "records.jsonl")
        r = sh(L7TAP, "replay", "--quiet", "-o", out, *([pcap] * 100), check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        m = re.search(r"records.jsonl: writing records failed: No space left on device; stopped "
                      r"after (\d+) complete records", r.stderr)
        self.assertTrue(m, r.stderr)
        with open(out) as f:
            got = f.read().splitlines(keepends=True)
        self.assertEqual(len(got), int(m.group(1)))
        self.assertGreater(len(got), 0)
        self.assertEqual(got, whole[:len(got)], "the records written are not the first ones")
        for line in got:
            json.loads(line)
        r = sh(L7TAP, "replay", "--quiet", "-o", "/dev/full", pcap, check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("/dev/full: writing records failed: No space left on device", r.stderr)

    def test_attach_output_fails(self):
        """attach --output json into a pipe nobody reads any more, or onto a
        full disk: it says why, detaches and exits 1 (clsact: its filters go
        too)."""
        for kind in ("closed pipe", "full disk"):
            with self.subTest(kind):
                if kind == "closed pipe":
                    r, w = os.pipe()
                    out, expect = w, "standard output: Broken pipe"
                else:
                    r, w = None, None
                    out, expect = open("/dev/full", "wb"), "standard output: No space left"
                l7 = L7tap("--iface", PREFIX + "[ab]", "--attach-mode", "clsact", output="json",
                           stdout=out)
                l7.start(attached=[IFACE["a"], IFACE["b"]])
                ids = set(l7.prog_ids)
                if r is not None:
                    os.close(w)
                    os.close(r)  # the reader goes away
                else:
                    out.close()
                curl([url(PORT_H1, "/small.txt?sc=output-fails")])
                wait_until(lambda: l7.proc.poll() is not None, T_EVENT,
                           f"l7tap to end on a {kind}")
                self.assertEqual(l7.proc.returncode, 1, l7.stderr())
                self.assertIn(expect, l7.stderr())
                self.assertIn("detaching", l7.stderr())
                self.assertEqual(tc_filters(IFACE["a"]) + tc_filters(IFACE["b"]), "")
                self.assertEqual(our_progs_gone(ids), {})

    def test_interface_deleted_under_load(self):
        """An attached interface goes away while traffic flows on it and on
        others: l7tap says it is gone, keeps running and keeps capturing the
        others."""
        add_pod("c")
        l7 = L7tap("--iface", PREFIX + "[abc]", "--interim", 0, output="json")
        l7.start(attached=[IFACE["a"], IFACE["b"], IFACE["c"]])
        load_a = Load(pod="a", path="/a.txt?sc=del-a", connections=2)
        load_c = Load(pod="c", path="/b.txt?sc=del-c", connections=1)
        wait_until(lambda: {"sc=del-a", "sc=del-c"} <= {r.get("url.query")
                                                        for r in http_of(l7.records())},
                   T_EVENT, "records of both loads")
        sh("ip", "-n", NS_NODE, "link", "del", IFACE["c"])
        deleted_ns = time.time_ns()
        l7.wait_stderr(f"{IFACE['c']} (ifindex")
        self.assertRegex(l7.stderr(), rf"{IFACE['c']} \(ifindex \d+\) is gone")
        load_a.wait_ok(load_a.ok() + 200, "pod-a's load to go on")
        wait_until(lambda: any(r.get("url.query") == "sc=del-a" and
                               r.get("l7tap.timing.request_start_ns", 0) > deleted_ns
                               for r in http_of(l7.records())), T_EVENT,
                   "records of pod-a's requests made after the deletion")
        self.assertIsNone(l7.proc.poll(), l7.stderr())
        res = load_a.stop()
        self.assertEqual((res["failed"], res["connections"]), (0, 2), res)
        load_c.stop()  # its link is gone: what it says does not matter
        wait_connections_closed()
        self.assertEqual(l7.stop(), 0, l7.stderr())

    def test_started_twice(self):
        """A second l7tap on an interface the first captures refuses to
        start (exit 1, naming the interface and the first's pid); the first
        goes on untouched. Disjoint interfaces are fine, and once the first
        has gone (even by kill -9) the interface is free."""
        first = L7tap("--iface", PREFIX + "[ab]", "--attach-mode", "clsact", "--interim", 0,
                      output="json")
        first.start(attached=[IFACE["a"], IFACE["b"]])
        filters = tc_filters(IFACE["a"])
        for mode in ("clsact", "tcx"):
            second = L7tap("--iface", PREFIX + "b", "--attach-mode", mode, output="json")
            second.spawn()
            self.assertEqual(second.proc.wait(timeout=T_EVENT), 1, second.stderr())
            self.assertRegex(second.stderr(),
                             rf"{IFACE['b']} \(ifindex \d+\) is captured by another l7tap "
                             rf"\(pid {first.pid}\); one l7tap per interface")
            self.assertNotIn("attached to", second.stderr())
        self.assertEqual(tc_filters(IFACE["a"]), filters, "the first one's filters changed")
        ex = curl([url(PORT_H1, "/small.txt?sc=twice")])
        wait_until(lambda: any(r.get("url.query") == "sc=twice" for r in first.records()),
                   T_EVENT, "the first l7tap's record")
        other = L7tap("--iface", "lo", output="json")
        other.start(attached=["lo"])
        self.assertEqual(other.stop(), 0, other.stderr())
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        again = L7tap("--iface", PREFIX + "[ab]", "--attach-mode", "clsact", output="json")
        again.start(attached=[IFACE["a"], IFACE["b"]])
        self.assertEqual(again.stop(), 0, again.stderr())
        http = http_of(first.records())
        self.assertEqual([(r.get("url.query"), r.get("client.port")) for r in http],
                         [("sc=twice", ex[0].client_port)])


def xdp_attached(iface):
    """What is attached to the XDP hook of iface (node side): `xdp-loader
    status` where xdp-tools is installed (it also lists the programs inside a
    libxdp dispatcher), else the prog/xdp line of `ip -d link`. "" when
    nothing is."""
    if shutil.which("xdp-loader"):
        r = sh("xdp-loader", "status", iface, ns=NS_NODE, check=False)
        line = next((ln for ln in r.stdout.splitlines() if ln.startswith(iface + " ")), "")
        # A dispatcher lists its programs on the lines that follow.
        rest = r.stdout.split(line, 1)[1] if line else ""
        out = (line + rest).strip()
        return "" if "No XDP program loaded" in out else out
    r = sh("ip", "-n", NS_NODE, "-d", "link", "show", "dev", iface, check=False)
    return "\n".join(ln.strip() for ln in r.stdout.splitlines() if "prog/xdp" in ln)


class TestXdpMode(LiveTest):
    """--attach-mode xdp on both node-side veths. XDP sees ingress only: the
    requests where pod-a's packets enter the node, the responses where
    pod-b's do; each exchange is still reported once, with its method, path
    and status. A clean exit leaves no XDP program and no l7tap program."""

    def test_keepalive_and_h2load(self):
        l7 = L7tap("--iface", PREFIX + "[ab]", "--attach-mode", "xdp", "--window", WINDOW,
                   "--interim", 0, output="json")
        l7.start(attached=[IFACE["a"], IFACE["b"]])
        for ifc in (IFACE["a"], IFACE["b"]):
            self.assertRegex(l7.stderr(), rf"attached to {ifc} \(ifindex \d+, xdp "
                                          r"(native|generic), (dispatcher|link)\)")
            self.assertNotEqual(xdp_attached(ifc), "", f"no XDP program on {ifc}")
        self.assertEqual(tc_filters(IFACE["a"]) + tc_filters(IFACE["b"]), "")
        ids = set(l7.prog_ids)
        names = loaded_prog_ids()
        held = {names.get(i) for i in ids}
        self.assertIn("l7tap_xdp", held, f"programs held: {held}")
        self.assertFalse(held & {"l7tap_ingress", "l7tap_egress"}, "XDP mode loads XDP alone")
        log("xdp mode: " + "; ".join(ln for ln in l7.stderr().splitlines()
                                      if "attached to" in ln or "XDP" in ln))

        exchanges = sc_keepalive() + sc_h2load()
        wait_connections_closed()
        self.assertEqual(l7.stop(), 0, l7.stderr())
        http = http_of(l7.records())
        want = collections.Counter(x.key() for x in exchanges)
        got = collections.Counter((r.get("http.request.method"), r.get("url.path"),
                                   r.get("url.query", ""), r.get("http.response.status_code"))
                                  for r in http)
        extra = got - want
        self.assertEqual(got, want, f"got - want = {dict(extra)}, "
                                    f"want - got = {dict(want - got)}\n{l7.stderr()}\n" +
                         str([r for r in http if (r.get("http.request.method"), r.get("url.path"),
                                                  r.get("url.query", ""),
                                                  r.get("http.response.status_code")) in extra]) +
                         str(conns_of(l7.records())))
        for r in http:
            self.assertEqual((r.get("client.address"), r.get("server.address")),
                             (POD_ADDR["a"], SERVER), str(r))
            self.assertLessEqual(set(flags_of(r)), {"gap"}, f"unexpected flags in {r}")
        k = l7.kernel_counters()
        self.assertIsNotNone(k, l7.stderr())
        self.assertEqual(k["not_owner"], 0, "XDP sees each packet once")
        self.assertEqual(k["ringbuf_full"], 0)

        # Nothing left behind.
        self.assertEqual(our_progs_gone(ids), {}, "l7tap's programs still loaded after exit")
        for ifc in (IFACE["a"], IFACE["b"]):
            self.assertEqual(xdp_attached(ifc), "", f"XDP program left on {ifc}")

    def test_kill9(self):
        """An XDP link goes with the process; a dispatcher's pinned links stay
        until the next start takes l7tap's program out of the dispatcher."""
        l7 = L7tap("--iface", PREFIX + "[ab]", "--attach-mode", "xdp", output="json")
        l7.start(attached=[IFACE["a"], IFACE["b"]])
        ids = set(l7.prog_ids)
        dispatcher = ", dispatcher)" in l7.stderr()
        l7.proc.send_signal(signal.SIGKILL)
        l7.proc.wait()
        curl([url(PORT_H1, "/small.txt?sc=xdp-kill9")])  # traffic flows meanwhile
        if not dispatcher:
            self.assertEqual(our_progs_gone(ids), {}, "programs left after kill -9 (link mode)")
            for ifc in (IFACE["a"], IFACE["b"]):
                self.assertEqual(xdp_attached(ifc), "", f"XDP program left on {ifc}")
            return
        l7b = L7tap("--iface", PREFIX + "[ab]", "--attach-mode", "xdp", output="json")
        l7b.start(attached=[IFACE["a"], IFACE["b"]])
        self.assertEqual(our_progs_gone(ids), {}, "the restart left the old programs")
        self.assertEqual(l7b.stop(), 0, l7b.stderr())
        self.assertEqual(our_progs_gone(set(l7b.prog_ids)), {})
        for ifc in (IFACE["a"], IFACE["b"]):
            self.assertEqual(xdp_attached(ifc), "", f"XDP program left on {ifc}")


# --- runner ---------------------------------------------------------------------------


def print_report():
    if not REPORT:
        return
    print("\nper-scenario records (l7tap --window %d):" % WINDOW)
    cols = ["requests", "http_json", "http_journal", "conns_made", "conns", "payload_bytes",
            "copied_bytes", "skipped_bytes", "not_owner", "ringbuf_full", "walked", "walk_lost"]
    print("%-18s" % "scenario" + "".join("%14s" % c for c in cols))
    faults = ("ring_full", "journald_fault")
    for name, r in REPORT.items():
        if name not in faults:
            print("%-18s" % name + "".join("%14s" % (r.get(c, "-"),) for c in cols))
    for name in faults:
        if name in REPORT:
            print(f"{name}: " + json.dumps(REPORT[name]))


def main():
    global ARGS, TMP, L7TAP, E2E_LOCK
    ap = arguments(__doc__, "records, logs")
    ap.add_argument("--clients-only", action="store_true",
                    help="no live l7tap: scenarios checked on a replay of their capture "
                         "(to check the test bed and the checks themselves)")
    ARGS = ap.parse_args()
    L7TAP = os.path.abspath(ARGS.l7tap)

    suite = load_suite(sys.modules[__name__], ARGS.tests)
    count = suite.countTestCases()
    status = cannot_run("e2e tests", count, missing_privileges())
    if status is not None:
        return status

    # One e2e suite at a time on a machine, whichever build tree runs it:
    # two attached daemons on one test bed would see each other's traffic.
    E2E_LOCK = hold_e2e_lock(log)  # held until the process exits
    interrupt_on_signals()
    atexit.register(CLEANUP.run)
    started = time.time()
    try:
        remove_stale_namespaces(r"l7e(\d+)-(node|a|b|c)", log)
        TMP = CLEANUP.tmp = tempfile.mkdtemp(prefix=f"l7tap-e2e-{PID}-")
        start_journald()
        build_testbed()
        result = run_tests(suite)
    except KeyboardInterrupt as e:
        print(f"interrupted ({e})")
        print(f"0 passed, {count} failed")
        return 130
    except Exception as e:  # noqa: BLE001 - the test bed could not be built
        print(f"the e2e test bed could not be built: {type(e).__name__}: {e}")
        print(f"0 passed, {count} failed")
        return 1
    finally:
        CLEANUP.run()
    left = namespaces_left(PREFIX)
    print_report()
    print(f"e2e: {time.time() - started:.1f} s; namespaces of this run left: {left or 'none'}")
    return tally(result, count, left)


if __name__ == "__main__":
    sys.exit(main())
