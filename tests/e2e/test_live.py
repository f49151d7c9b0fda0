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
ring buffer that is full on purpose, and interfaces that come and go.

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

import argparse
import atexit
import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

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
RING_N = 20000  # requests of the ring-full burst

JOURNAL_SOCKET = "/run/systemd/journal/socket"
JOURNALD = "/lib/systemd/systemd-journald"
TOOLS = ["ip", "tc", "nginx", "curl", "nghttp", "h2load", "tcpdump", "bpftool", "journalctl", "ss"]

ARGS = None
TMP = None  # this run's temp dir
L7TAP = None
REPORT = collections.OrderedDict()  # scenario -> facts for the closing table


def log(msg):
    print(f"[e2e] {msg}", file=sys.stderr, flush=True)


# --- cleanup ------------------------------------------------------------------


class Cleanup:
    """Everything this run created, removed in reverse order, once."""

    def __init__(self):
        self.procs = []  # subprocess.Popen
        self.namespaces = []
        self.journald = None  # Popen of a journald started here
        self.journal_paths = []  # dirs that did not exist before that journald
        self.tmp = None
        self.done = False

    def run(self):
        if self.done:
            return
        self.done = True
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
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
            # Whatever still runs inside our own namespaces was started by us.
            out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            for pid in out.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if self.journald is not None:
            self.journald.terminate()
            try:
                self.journald.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.journald.kill()
                self.journald.wait()
            for path in self.journal_paths:
                shutil.rmtree(path, ignore_errors=True)
        if self.tmp and not (ARGS and ARGS.keep_temp):
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp:
            log(f"kept {self.tmp}")
        left = [ns for ns in netns_list() if ns.startswith(PREFIX + "-")]
        if left:
            log(f"ERROR: namespaces left behind: {left}")


CLEANUP = Cleanup()


def on_signal(signum, _frame):
    # Unwinds through the running test into main()'s finally.
    raise KeyboardInterrupt(f"signal {signum}")


def netns_list():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def remove_stale_namespaces():
    """Namespaces of earlier runs whose process is gone (killed with -9)."""
    for ns in netns_list():
        m = re.fullmatch(r"l7e(\d+)-(node|a|b|c)", ns)
        if m and int(m.group(1)) != PID and not os.path.exists(f"/proc/{m.group(1)}"):
            log(f"removing {ns}, left behind by an earlier run")
            out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            for pid in out.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# --- helpers --------------------------------------------------------------------


def sh(*cmd, ns=None, check=True, timeout=60, input=None):
    """Runs cmd (in namespace ns), returns CompletedProcess with text output."""
    full = (["ip", "netns", "exec", ns] if ns else []) + [str(c) for c in cmd]
    r = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(full)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def spawn(cmd, ns=None, stdout=None, stderr=None, name=None):
    """Starts cmd in the background (in namespace ns); the Popen pid is the
    program itself (ip netns exec execs it). Registered for cleanup."""
    full = (["ip", "netns", "exec", ns] if ns else []) + [str(c) for c in cmd]
    if name:
        stdout = stdout or open(os.path.join(TMP, name + ".out"), "wb")
        stderr = stderr or open(os.path.join(TMP, name + ".err"), "wb")
    p = subprocess.Popen(full, stdout=stdout or subprocess.DEVNULL,
                         stderr=stderr or subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    CLEANUP.procs.append(p)
    return p


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
    wait_until(lambda: sh("ss", "-Hltn", f"sport = :{port}", ns=ns).stdout.strip(), 10,
               f"a listener on port {port} in {ns}")


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


def privileged_required():
    v = os.environ.get("L7TAP_REQUIRE_PRIVILEGED", "")
    return v not in ("", "0")


def missing_privileges():
    """Empty when the tests can run; otherwise why not."""
    if os.geteuid() != 0:
        return "needs root (BPF, network namespaces)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return "missing tools: " + " ".join(missing) + " (bash .ci/deps installs them)"
    if not os.access(L7TAP, os.X_OK):
        return f"no l7tap program at {L7TAP}"
    r = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True)
    if r.returncode != 0:
        return "BPF not available: bpftool prog show: " + r.stderr.strip()
    probe = f"{PREFIX}-probe"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return "network namespaces not available: " + r.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if not journal_socket_works() and not os.access(JOURNALD, os.X_OK):
        return f"no journal socket and no {JOURNALD} to start"
    return ""


def ensure_journald():
    if journal_socket_works():
        log("using the running journald")
        return
    log(f"no journald: starting {JOURNALD}")
    for path in ("/run/systemd/journal", "/run/log/journal"):
        if not os.path.exists(path):
            CLEANUP.journal_paths.append(path)
    CLEANUP.journald = subprocess.Popen([JOURNALD], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
    wait_until(journal_socket_works, 10, "journald's socket")


# --- the test bed -------------------------------------------------------------------


def add_namespace(ns):
    CLEANUP.namespaces.append(ns)
    sh("ip", "netns", "add", ns)
    sh("ip", "-n", ns, "link", "set", "lo", "up")


def add_pod(pod):
    """Pod namespace with eth0, joined to the node by a veth whose node side is
    IFACE[pod]; default route through the node."""
    ns, ifc, net = NS[pod], IFACE[pod], SUBNET[pod]
    if ns not in CLEANUP.namespaces:
        add_namespace(ns)
    sh("ip", "-n", NS_NODE, "link", "add", ifc, "type", "veth", "peer", "name", "eth0", "netns", ns)
    sh("ip", "-n", NS_NODE, "addr", "add", f"{net}.1/24", "dev", ifc)
    sh("ip", "-n", NS_NODE, "link", "set", ifc, "up")
    sh("ip", "-n", ns, "addr", "add", f"{net}.2/24", "dev", "eth0")
    sh("ip", "-n", ns, "link", "set", "eth0", "up")
    sh("ip", "-n", ns, "route", "add", "default", "via", f"{net}.1")


def build_testbed():
    add_namespace(NS_NODE)
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=NS_NODE)
    add_pod("a")
    add_pod("b")
    make_content()
    start_servers()


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
    spawn(["nginx", "-c", conf, "-p", os.path.join(TMP, "nginx")], ns=NS["b"], name="nginx")
    spawn(["/usr/bin/python3", "-m", "http.server", PORT_PY10, "--bind", SERVER,
           "--directory", DOC], ns=NS["b"], name="python-http")
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
    """One `l7tap attach` run in the node namespace."""

    counter = 0

    def __init__(self, *args, output="both"):
        L7tap.counter += 1
        self.name = f"l7tap-{L7tap.counter}"
        self.args = ["attach", "--output", output] + [str(a) for a in args]
        self.out_path = os.path.join(TMP, self.name + ".jsonl")
        self.err_path = os.path.join(TMP, self.name + ".err")
        self.proc = None
        self.rc = None
        self.prog_ids = set()

    def start(self, attached=()):
        self.proc = spawn([L7TAP] + self.args, ns=NS_NODE, stdout=open(self.out_path, "wb"),
                          stderr=open(self.err_path, "wb"))
        wait_until(lambda: "stop with SIGINT" in self.stderr() or self.proc.poll() is not None,
                   20, f"{self.name} to start")
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

    def wait_stderr(self, text, timeout=10):
        wait_until(lambda: text in self.stderr() or self.proc.poll() is not None, timeout,
                   f"{self.name} to say {text!r}")
        if text not in self.stderr():
            raise AssertionError(f"{self.name} exited {self.proc.returncode} before saying "
                                 f"{text!r}: {self.stderr()}")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} did not exit within {timeout} s of {sig!r}")
        return self.rc

    def records(self):
        recs = []
        with open(self.out_path, errors="strict") as f:
            for n, line in enumerate(f, 1):
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

    def journal(self, want, timeout=10):
        """Journal entries of this run (by _PID), waiting for `want` of them."""
        def read():
            sh("journalctl", "--sync", check=False)
            r = sh("journalctl", "-o", "json", "--no-pager", "--all", f"_PID={self.pid}",
                   "SYSLOG_IDENTIFIER=l7tap", check=False)
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
    cmd = ["curl", "-sS", "--max-time", "30", "-w", CURL_W] + list(extra)
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
    r = sh("nghttp", "-nv", "-t", "30", *urls, ns=NS["a"])
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


def h2load(url, n, c, m=1, h1=False, timeout=120):
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
        wait_until(lambda: "listening on" in open(dump_err).read() or dump.poll() is not None, 10,
                   "tcpdump to listen")
        sc.exchanges = sc.run_clients()
        time.sleep(0.3)  # the last FIN/ACKs, and a few drain periods
        dump.send_signal(signal.SIGTERM)
        dump.wait(timeout=10)
        sc.tcpdump_err = open(dump_err).read()
        if ARGS.clients_only:  # no live run: check the checks on the replayed capture
            r = sh(L7TAP, "replay", "--window", WINDOW, "--quiet", sc.pcap)
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


class TestScenarios(unittest.TestCase):
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


class TestReplayEquivalence(unittest.TestCase):
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
                self.assertTrue(cap and seen and drop and cap.group(1) == seen.group(1) and
                                drop.group(1) == "0", f"tcpdump lost packets: {sc.tcpdump_err}")
                r = sh(L7TAP, "replay", "--window", WINDOW, "--capture-control", "--quiet", sc.pcap,
                       check=False)
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


def our_progs_gone(ids, timeout=10):
    """Waits until none of the BPF program ids is loaded; returns those left."""
    deadline = time.time() + timeout
    while True:
        left = {i: n for i, n in loaded_prog_ids().items() if i in ids}
        if not left or time.time() > deadline:
            return left
        time.sleep(0.1)


class TestKill9(unittest.TestCase):
    """Test 3: kill -9 while h2load runs: the traffic carries on, and nothing of
    l7tap's stays attached (clsact: the next start removes what was left)."""

    N = 20000

    def kill_during_load(self, mode):
        l7 = L7tap("--iface", PREFIX + "[ab]", "--attach-mode", mode, output="json")
        l7.start(attached=[IFACE["a"], IFACE["b"]])
        self.assertIn(f"{mode})", l7.stderr())
        ids = set(l7.prog_ids)
        names = loaded_prog_ids()
        self.assertTrue(ids, "l7tap holds no BPF program")
        self.assertTrue({names.get(i) for i in ids} >= {"l7tap_ingress", "l7tap_egress"},
                        f"programs held: {[names.get(i) for i in ids]}")
        load = spawn(["h2load", "-n", self.N, "-c", 2, "-m", 10, url(PORT_H2, "/a.txt?sc=kill9")],
                     ns=NS["a"], stdout=subprocess.PIPE)
        wait_until(lambda: os.path.getsize(l7.out_path) > 0, 10, "the first records")
        time.sleep(0.2)  # well into the run (it takes about 2 s with l7tap attached)
        self.assertIsNone(load.poll(), "h2load finished before the kill")
        l7.proc.send_signal(signal.SIGKILL)
        l7.proc.wait()
        out, _ = load.communicate(timeout=120)
        out = out.decode()
        res = h2load_result(out)
        self.assertEqual(load.returncode, 0, out)
        self.assertEqual((res["succeeded"], res["2xx"]), (self.N, self.N), out)
        return l7, ids

    def test_tcx(self):
        l7, ids = self.kill_during_load("tcx")
        left = our_progs_gone(ids)
        self.assertEqual(left, {}, "BPF programs still loaded after kill -9 in tcx mode")
        self.assertEqual(tc_filters(IFACE["a"]) + tc_filters(IFACE["b"]), "")

    def test_clsact(self):
        l7, ids = self.kill_during_load("clsact")
        # By design the clsact filters outlive a kill -9 ...
        left_behind = tc_filters(IFACE["a"])
        log(f"clsact after kill -9: filters on {IFACE['a']}: {left_behind!r}")
        # ... and the next start replaces them.
        l7b = L7tap("--iface", PREFIX + "[ab]", "--attach-mode", "clsact", output="json")
        l7b.start(attached=[IFACE["a"], IFACE["b"]])
        ids_b = set(l7b.prog_ids)
        old = our_progs_gone(ids, timeout=5)
        self.assertEqual(old, {}, "the restart left the killed run's programs attached")
        ex = curl([url(PORT_H1, "/small.txt?sc=restart")])
        time.sleep(0.3)
        self.assertEqual(l7b.stop(), 0, l7b.stderr())
        http = http_of(l7b.records())
        self.assertEqual([(r.get("url.path"), r.get("url.query"), r.get("http.response.status_code"),
                           r.get("client.port")) for r in http],
                         [("/small.txt", "sc=restart", 200, ex[0].client_port)], l7b.stderr())
        self.assertEqual(tc_filters(IFACE["a"]), "", "filters left after a clean exit")
        self.assertEqual(tc_filters(IFACE["b"]), "", "filters left after a clean exit")
        self.assertEqual(our_progs_gone(ids | ids_b), {}, "programs left after a clean exit")


class TestRingFull(unittest.TestCase):
    """Test 4: a tiny ring drained slowly overflows; the daemon says so, flags
    what it lost, and never reports a wrong status."""

    def test_ring_full(self):
        l7 = L7tap("--iface", PREFIX + "[ab]", "--ring-kb", 4, "--drain-ms", 500, "--interim", 0,
                   output="json")
        l7.start(attached=[IFACE["a"], IFACE["b"]])
        # Long enough (about 2 s) for several 500 ms drains: loss, then resumption mid-stream.
        r = h2load(url(PORT_H2, "/f8k.bin?sc=ring"), RING_N, 1, 50)
        res = h2load_result(r.stdout)
        self.assertEqual((res["succeeded"], res["2xx"]), (RING_N, RING_N), r.stdout)
        rc = l7.stop()
        self.assertEqual(rc, 0, l7.stderr())
        k = l7.kernel_counters()
        self.assertIsNotNone(k, l7.stderr())
        recs = l7.records()
        http, conns = http_of(recs), conns_of(recs)
        missed = sum(c.get("l7tap.conn.client.missed_bytes", 0) +
                     c.get("l7tap.conn.server.missed_bytes", 0) for c in conns)
        gap = sum(1 for x in http if "gap" in x.get("l7tap.flags", []))
        statuses = collections.Counter(x.get("http.response.status_code") for x in http)
        REPORT["ring_full"] = {
            "requests": RING_N, "http_json": len(http), "conns": len(conns), "conns_made": 1,
            "ringbuf_full": k["ringbuf_full"], "events": k["events"],
            "payload_bytes": k["payload_bytes"], "copied_bytes": k["copied_bytes"],
            "gap_records": gap, "missed_bytes": missed, "statuses": dict(statuses),
            "flags": dict(collections.Counter(",".join(x.get("l7tap.flags", [])) for x in http)),
            "response_body_sizes_with_status": dict(collections.Counter(
                x.get("http.response.body.size") for x in http
                if x.get("http.response.status_code") is not None)),
            "summary": [line for line in l7.stderr().splitlines() if "kernel" in line or
                        "events" in line],
        }
        self.assertGreater(k["ringbuf_full"], 0, l7.stderr())
        self.assertIn("lost to a full ring buffer", l7.stderr())
        self.assertTrue(gap > 0 or missed > 0, "no gap flag and no missed bytes")
        # Every status seen is one the server sent (nginx: 200 for this file);
        # a record without a response is allowed, a wrong status is not.
        self.assertLessEqual(set(statuses) - {None}, {200}, f"statuses {statuses}")
        for x in http:  # a response without its request is fine, another request is not
            if x.get("url.path") is not None:
                self.assertEqual((x.get("url.path"), x.get("url.query")), ("/f8k.bin", "sc=ring"),
                                 str(x))
        self.assertLessEqual(sum(1 for x in http if x.get("url.path") == "/f8k.bin"), RING_N)


class TestLateInterface(unittest.TestCase):
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
        wait_until(lambda: any(r.get("url.query") == "sc=late" for r in l7.records()), 10,
                   "the record of pod-c's request")
        sh("ip", "-n", NS_NODE, "link", "del", IFACE["c"])
        l7.wait_stderr(f"{IFACE['c']} (ifindex")
        self.assertRegex(l7.stderr(), rf"{IFACE['c']} \(ifindex \d+\) is gone")
        time.sleep(0.3)
        self.assertIsNone(l7.proc.poll(), "l7tap stopped when the interface went away")
        # It comes back: attached again.
        sh("ip", "-n", NS_NODE, "link", "add", IFACE["c"], "type", "veth", "peer", "name", "eth1",
           "netns", NS["c"])
        wait_until(lambda: l7.stderr().count(f"attached to {IFACE['c']} ") == 2, 10,
                   "the second attach")
        self.assertEqual(l7.stop(), 0, l7.stderr())
        http = http_of(l7.records())
        self.assertEqual([(r.get("client.address"), r.get("client.port"), r.get("url.path"),
                           r.get("http.response.status_code")) for r in http],
                         [(POD_ADDR["c"], ex[0].client_port, "/small.txt", 200)])


class TestLoopback(unittest.TestCase):
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
                   10, "both loopback records")
        self.assertEqual(l7.stop(), 0, l7.stderr())
        recs = l7.records()
        got = sorted((r.get("url.path"), r.get("http.response.status_code"))
                     for r in http_of(recs))
        self.assertEqual(got, [("/missing", 404), ("/small.txt", 200)])
        for c in conns_of(recs):
            self.assertEqual(c["l7tap.conn.counted_by"], "kernel", c)
            for side in ("client", "server"):
                self.assertEqual(c[f"l7tap.conn.{side}.retransmitted_segments"], 0, c)


class TestStopFlush(unittest.TestCase):
    """SIGINT in the middle of a download: the open exchange is written (its
    response unfinished), the connection gets a final record, exit 0; while it
    ran, --interim 1 wrote interim connection records."""

    def test_sigint_flushes_open_exchange(self):
        l7 = L7tap("--iface", PREFIX + "[ab]", "--interim", 1, output="json")
        l7.start(attached=[IFACE["a"], IFACE["b"]])
        # nginx sends /slow/ at 100 KB/s: 1 MB takes 10 s.
        client = spawn(["curl", "-sS", "-o", "/dev/null", url(PORT_H1, "/slow/large.bin?sc=flush")],
                       ns=NS["a"])
        wait_until(lambda: any(r.get("l7tap.conn.record") == "interim" for r in l7.records()),
                   5, "an interim connection record")
        self.assertIsNone(client.poll(), "the slow download finished too early")
        self.assertEqual(l7.stop(signal.SIGINT), 0, l7.stderr())
        client.kill()
        client.wait()
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


class TestXdpMode(unittest.TestCase):
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
        time.sleep(0.3)  # the last FIN/ACKs, and a few drain periods
        self.assertEqual(l7.stop(), 0, l7.stderr())
        http = http_of(l7.records())
        want = collections.Counter(x.key() for x in exchanges)
        got = collections.Counter((r.get("http.request.method"), r.get("url.path"),
                                   r.get("url.query", ""), r.get("http.response.status_code"))
                                  for r in http)
        self.assertEqual(got, want, f"got - want = {dict(got - want)}, "
                                    f"want - got = {dict(want - got)}\n{l7.stderr()}")
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
        self.assertEqual(our_progs_gone(ids, timeout=5), {}, "the restart left the old programs")
        self.assertEqual(l7b.stop(), 0, l7b.stderr())
        self.assertEqual(our_progs_gone(set(l7b.prog_ids)), {})
        for ifc in (IFACE["a"], IFACE["b"]):
            self.assertEqual(xdp_attached(ifc), "", f"XDP program left on {ifc}")


# --- runner ---------------------------------------------------------------------------


class Result(unittest.TextTestResult):
    """Counts tests (not subtests) as passed, failed or skipped."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.outcome = collections.OrderedDict()

    def _mark(self, test, what):
        tid = test.id() if not isinstance(test, unittest.case._SubTest) else test.test_case.id()
        if what == "failed" or tid not in self.outcome:
            self.outcome[tid] = what

    def addSuccess(self, test):
        super().addSuccess(test)
        self._mark(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._mark(test, "failed")

    def addError(self, test, err):
        super().addError(test, err)
        self._mark(test, "failed")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._mark(test, "skipped")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._mark(test, "failed")


def print_report():
    if not REPORT:
        return
    print("\nper-scenario records (l7tap --window %d):" % WINDOW)
    cols = ["requests", "http_json", "http_journal", "conns_made", "conns", "payload_bytes",
            "copied_bytes", "skipped_bytes", "not_owner", "ringbuf_full", "walked", "walk_lost"]
    print("%-18s" % "scenario" + "".join("%14s" % c for c in cols))
    for name, r in REPORT.items():
        print("%-18s" % name + "".join("%14s" % (r.get(c, "-"),) for c in cols))
    if "ring_full" in REPORT:
        print("ring_full: " + json.dumps(REPORT["ring_full"]))


def main():
    global ARGS, TMP, L7TAP
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--l7tap", required=True, help="the l7tap program")
    ap.add_argument("--keep-temp", action="store_true", help="keep the temp dir (records, logs)")
    ap.add_argument("--clients-only", action="store_true",
                    help="no live l7tap: scenarios checked on a replay of their capture "
                         "(to check the test bed and the checks themselves)")
    ap.add_argument("tests", nargs="*", help="TestClass or TestClass.test_name")
    ARGS = ap.parse_args()
    L7TAP = os.path.abspath(ARGS.l7tap)

    loader = unittest.TestLoader()
    module = sys.modules[__name__]
    suite = (loader.loadTestsFromNames(ARGS.tests, module) if ARGS.tests
             else loader.loadTestsFromModule(module))
    count = suite.countTestCases()

    reason = missing_privileges()
    if reason:
        if privileged_required():
            print(f"L7TAP_REQUIRE_PRIVILEGED is set but the e2e tests cannot run: {reason}")
            print(f"0 passed, {count} failed")
            return 1
        print(f"skipping the e2e tests: {reason}")
        print(f"0 passed, 0 failed, {count} skipped")
        return 0

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    atexit.register(CLEANUP.run)
    started = time.time()
    try:
        remove_stale_namespaces()
        TMP = CLEANUP.tmp = tempfile.mkdtemp(prefix=f"l7tap-e2e-{PID}-")
        ensure_journald()
        build_testbed()
        runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=Result)
        result = runner.run(suite)
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
    left = [ns for ns in netns_list() if ns.startswith(PREFIX + "-")]
    print_report()
    print(f"e2e: {time.time() - started:.1f} s; namespaces of this run left: {left or 'none'}")
    outcomes = list(result.outcome.values())
    passed, failed, skipped = (outcomes.count(w) for w in ("passed", "failed", "skipped"))
    failed += max(0, count - len(outcomes))  # a test that never reported (module fixture error)
    if left:
        failed += 1
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
