#!/usr/bin/python3
"""Privileged end-to-end test of TLS plaintext through uprobes (issue 13):
real TLS servers and clients (OpenSSL 3 in nginx, curl, nghttp2's tools and
python3) in pod-like namespaces, `l7tap attach` with the real TC program and
the TLS uprobes on the node-side veths.

    client eth0 10.91.1.2 ──veth── l7tl<pid>a 10.91.1.1 ┐ node namespace: router,
    server eth0 10.91.2.2 ──veth── l7tl<pid>b 10.91.2.1 ┘ l7tap

The test makes a CA and a server certificate with `openssl` (SAN: the
server's address and the name api.l7tl.test, which the clients use, so that
it is their SNI: the client namespace's /etc/hosts, through
/etc/netns/NS/hosts, resolves it). The server namespace runs nginx with TLS
on 8443 (HTTP/1.1) and 8444 (http2: ALPN h2), the same tree in cleartext on
8080 (HTTP/1.1) and 8081 (h2c, prior knowledge), and a python3 TLS server
(http.server wrapped with ssl) on 9443, so that OpenSSL is on the server side
through python too.

What it checks, per the contract of issue 13:
- every exchange over TLS is reported exactly once, with the fields of the
  same exchange over cleartext (method, target, status, versions, body sizes,
  header sizes for HTTP/1.1, flags), `l7tap.capture.source` `tls_uprobe`
  (`packet` in cleartext), on the connection of the client's own socket
  (addresses and ports, the client's port as it reports it) and with
  `tls.client.server_name` the SNI;
- HTTP/2 over TLS: one record per stream (curl --http2, nghttp, h2load);
- a keep-alive connection opened before l7tap started (its SSL_set_fd
  happened before the probes) is still reported once l7tap runs;
- a client killed with SIGKILL while its request is outstanding: no crash,
  l7tap goes on reporting;
- a server started while l7tap runs is covered; what the traced programs
  send and receive is unchanged (a download compared byte for byte);
- `--no-tls-uprobes`: connection records with the SNI, no HTTP records for
  TLS; `--tls-pid PID`: only that process's exchanges; `--tls-binary` on a
  file without OpenSSL: one line `l7tap: tls: PATH: reason`, not fatal;
- gRPC over TLS and in cleartext from python3-grpcio (generic handlers, no
  generated code): a unary call that succeeds and one that ends in an error
  status, the same records but for the source and the SNI;
- Go crypto/tls (tests/e2e/go, built once per run with Debian's golang-go,
  offline): curl -> a Go HTTPS server (HTTP/1.1 and h2 by ALPN, and
  HTTP/1.1 in cleartext to compare) on 7443, the Go client -> nginx, a Go
  server started after l7tap (discovery after exec), and a stripped copy
  (-ldflags="-s -w"): one line saying so, no records of its TLS, the
  program unharmed; the Go programs' outputs are those without l7tap.

Everything created (namespaces, veths, /etc/netns/NS, processes, the temp
dir with the keys) is removed on pass, failure, exception and
SIGINT/SIGTERM; names start with l7tl<pid>. The run holds the flock on
/tmp/l7tap-e2e.lock so that no other e2e suite runs meanwhile.

Usage: test_tls.py --l7tap PATH [--keep-temp] [TestClass[.test_name] ...]

Without root, BPF or network namespaces the tests skip with the reason; with
L7TAP_REQUIRE_PRIVILEGED set (non-empty, not "0") a skip is a failure. The
last line is "N passed, N failed, N skipped"; the exit status is non-zero on
failure.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
# Its helpers only; importing it starts nothing (its tests run from its main()).
from test_live import sh, stop_process, wait_until  # noqa: E402
from privileged_suite import arguments, basic_problem, run_on_testbed  # noqa: E402
from testbed import Daemon, Testbed  # noqa: E402

# A bound on waiting for what is bound to happen (shared CPUs): never a
# correctness condition.
T_EVENT = 60


def log(msg):
    print(f"[tls-e2e] {msg}", file=sys.stderr, flush=True)


# Names start with l7tl<pid>; what still runs at the end is killed.
BED = Testbed("l7tl", {"a": "10.91.1", "b": "10.91.2"}, log, T_EVENT, signal.SIGKILL)
PREFIX, NS_NODE, NS, IFACE, SUBNET = BED.prefix, BED.node, BED.ns, BED.iface, BED.subnet
spawn, read_tmp, wait_port, PROCS = BED.spawn, BED.read, BED.wait_port, BED.procs
CLIENT = SUBNET["a"] + ".2"
SERVER = SUBNET["b"] + ".2"
SNI = "api.l7tl.test"
PORT = {"h1": 8443, "h2": 8444, "h1c": 8080, "h2c": 8081, "py": 9443, "py_late": 9444,
        "grpc": 50443, "grpcc": 50080, "go": 7443, "goc": 7080, "go_late": 7444,
        "go_strip": 7445}
# Debian's python3 (python3-grpcio is for it), whatever python3 is first on PATH.
PYTHON = "/usr/bin/python3"
TOOLS = ["ip", "nginx", "curl", "nghttp", "h2load", "openssl", "bpftool", "ss", "go", PYTHON]
LARGE = 300000  # bytes of /large.bin: responses cut into many TLS records and SSL calls
TLS_SOURCE = "tls_uprobe"
# What an exchange over TLS must share with the same exchange in cleartext.
SAME_FIELDS = ["network.protocol.version", "http.request.method", "url.path", "url.query",
               "http.response.status_code", "http.request.body.size",
               "http.response.body.size"]
# HTTP/1.1 only: HPACK sizes may differ with the :authority's port.
SAME_FIELDS_H1 = SAME_FIELDS + ["l7tap.request.header_bytes", "l7tap.response.header_bytes"]

TMP = None  # BED.tmp, once made
L7TAP = None
SERVERS = {}  # name -> Popen of the servers started with the test bed


# --- test bed -------------------------------------------------------------------


def make_certificates(d):
    """A CA and a server certificate for SNI and SERVER, signed by it."""
    os.makedirs(d)

    def ossl(*a):
        sh("openssl", *a)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem", "-days", "2", "-subj", "/CN=l7tl test CA")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr", "-subj", f"/CN={SNI}")
    with open(f"{d}/ext.cnf", "w") as f:
        f.write(f"subjectAltName=DNS:{SNI},IP:{SERVER}\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
         "-CAcreateserial", "-out", f"{d}/server.pem", "-days", "2", "-extfile", f"{d}/ext.cnf")
    ossl("verify", "-CAfile", f"{d}/ca.pem", f"{d}/server.pem")


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx/nginx.pid;
error_log {tmp}/nginx/error.log notice;
events {{ worker_connections 256; }}
http {{
  access_log off;
  keepalive_requests 100000;
  client_body_temp_path {tmp}/nginx/body;
  proxy_temp_path {tmp}/nginx/proxy;
  fastcgi_temp_path {tmp}/nginx/fastcgi;
  uwsgi_temp_path {tmp}/nginx/uwsgi;
  scgi_temp_path {tmp}/nginx/scgi;
  default_type text/plain;
  ssl_certificate {tmp}/pki/server.pem;
  ssl_certificate_key {tmp}/pki/server.key;
  ssl_protocols TLSv1.2 TLSv1.3;
  server {{
    listen {addr}:{h1} ssl;
    listen {addr}:{h2} ssl http2;
    listen {addr}:{h1c};
    listen {addr}:{h2c} http2;
    root {root};
  }}
}}
"""

# The python3 TLS server: http.server wrapped with ssl, HTTP/1.1 keep-alive.
# GET /hang answers only once the test writes to the FIFO argv[4]; GET
# /bytes?n=N answers N bytes; POST answers 201 with the length it read.
PY_SERVER = r"""
import http.server, ssl, sys
cert, key, addr, fifo = sys.argv[1:5]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def answer(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/hang":
            print("hang " + query, flush=True)
            with open(fifo) as f:
                f.read()
            self.answer(200, b"late\n")
        elif path == "/bytes":
            n = int(dict(kv.split("=") for kv in query.split("&"))["n"])
            self.answer(200, b"x" * n)
        else:
            self.answer(404, b"none\n")
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        got = self.rfile.read(n)
        self.answer(201, b"%d\n" % len(got))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = http.server.ThreadingHTTPServer((addr, int(sys.argv[5])), H)
srv.daemon_threads = True
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("listening", flush=True)
srv.serve_forever()
"""

# The python3 TLS client: one http.client connection (so one SSL object),
# requests given as JSON [[method, target, body or null], ...] in argv[4].
# Prints its local port, then one JSON line per answer. With argv[5] ==
# "wait-after-first" it reads a line from standard input after the first
# request (the test starts l7tap meanwhile); with "hang-last" the last
# request is sent and its answer never read (the test kills it then).
PY_CLIENT = r"""
import http.client, json, ssl, sys
host, port, ca, reqs, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4]), sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
c = http.client.HTTPSConnection(host, port, context=ctx)
c.connect()
print(json.dumps({"port": c.sock.getsockname()[1], "version": c.sock.version(),
                  "alpn": c.sock.selected_alpn_protocol()}), flush=True)
for i, (method, target, body) in enumerate(reqs):
    c.request(method, target, body=body.encode() if body is not None else None)
    if mode == "hang-last" and i == len(reqs) - 1:
        print(json.dumps({"sent": target}), flush=True)
        c.getresponse()
    r = c.getresponse()
    data = r.read()
    print(json.dumps({"method": method, "target": target, "status": r.status,
                      "body": len(data), "sent": len(body or "")}), flush=True)
    if mode == "wait-after-first" and i == 0:
        sys.stdin.readline()
"""

# gRPC over TLS with python3-grpcio's generic handlers (no generated code):
# /l7tl.Echo/Unary answers its request, /l7tl.Echo/Fail aborts with
# INVALID_ARGUMENT.
GRPC_SERVER = r"""
import grpc, sys, time
from concurrent import futures
cert, key, addr, clear_addr = sys.argv[1:5]
def unary(req, ctx):
    return req
def fail(req, ctx):
    ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "no such thing")
ident = lambda b: b
handlers = grpc.method_handlers_generic_handler("l7tl.Echo", {
    "Unary": grpc.unary_unary_rpc_method_handler(unary, ident, ident),
    "Fail": grpc.unary_unary_rpc_method_handler(fail, ident, ident)})
s = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handlers])
with open(cert, "rb") as c, open(key, "rb") as k:
    creds = grpc.ssl_server_credentials([(k.read(), c.read())])
s.add_secure_port(addr, creds)
s.add_insecure_port(clear_addr)
s.start()
print("listening", flush=True)
s.wait_for_termination()
"""

GRPC_CLIENT = r"""
import os
os.environ["GRPC_DNS_RESOLVER"] = "native"  # c-ares would ask a DNS server, not /etc/hosts
import grpc, json, sys
target, ca = sys.argv[1:3]
if ca == "none":
    ch = grpc.insecure_channel(target)
else:
    with open(ca, "rb") as f:
        ch = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=f.read()))
ident = lambda b: b
out = {}
out["unary"] = ch.unary_unary("/l7tl.Echo/Unary", ident, ident)(b"ping" * 10, timeout=30).decode()
try:
    ch.unary_unary("/l7tl.Echo/Fail", ident, ident)(b"x", timeout=30)
    out["fail"] = "OK"
except grpc.RpcError as e:
    out["fail"] = e.code().name
print(json.dumps(out), flush=True)
"""


def make_content(root):
    os.makedirs(os.path.join(root, "api", "users"))
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<html><body>l7tl</body></html>\n")
    with open(os.path.join(root, "small.txt"), "w") as f:
        f.write("thirty-five bytes of small file...\n")
    for i in range(1, 9):
        with open(os.path.join(root, "api", "users", str(i)), "w") as f:
            f.write(f'{{"id": {i}}}\n')
    with open(os.path.join(root, "large.bin"), "wb") as f:
        f.write(bytes(range(256)) * (LARGE // 256) + b"x" * (LARGE % 256))


def build_testbed():
    global TMP
    TMP = BED.tmp
    # The clients resolve the SNI name like a service name.
    BED.build_network(hosts=f"127.0.0.1 localhost\n{SERVER} {SNI}\n")
    # nginx's workers are not root: the tree must be readable to them.
    os.chmod(TMP, 0o755)
    make_certificates(os.path.join(TMP, "pki"))
    root = os.path.join(TMP, "www")
    make_content(root)
    os.makedirs(os.path.join(TMP, "nginx"))
    conf = os.path.join(TMP, "nginx", "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(tmp=TMP, addr=SERVER, root=root, **PORT))
    SERVERS["nginx"] = spawn(["nginx", "-c", conf, "-p", os.path.join(TMP, "nginx")], NS["b"],
                             "nginx")
    SERVERS["py"] = start_py_server("py-server", PORT["py"])
    for kind in ("h1", "h2", "h1c", "h2c", "py"):
        wait_port(NS["b"], PORT[kind])


def start_py_server(name, port, keep=True):
    fifo = os.path.join(TMP, name + ".release")
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    p = spawn([PYTHON, "-c", PY_SERVER, f"{TMP}/pki/server.pem", f"{TMP}/pki/server.key", SERVER,
               fifo, port], NS["b"], name, keep=keep)
    wait_until(lambda: "listening" in read_tmp(name + ".out") or p.poll() is not None, T_EVENT,
               f"{name} to listen")
    if p.poll() is not None:
        raise RuntimeError(f"{name} exited {p.returncode}: {read_tmp(name + '.err')}")
    return p


def release_hang(name="py-server"):
    """Lets the python server's /hang handler answer."""
    with open(os.path.join(TMP, name + ".release"), "w") as f:
        f.write("go\n")


def missing_privileges():
    return basic_problem(L7TAP, TOOLS, f"{PREFIX}-probe")


# --- l7tap ------------------------------------------------------------------------


class L7tap(Daemon):
    """`l7tap attach` on both node-side veths, JSON records to a file, no
    metrics endpoint (other suites may hold 9464), no kubelet, no interim
    records (a connection's record comes at its end)."""

    def __init__(self, *extra):
        # The uprobes are attached (to every libssl loaded anywhere) before
        # the daemon says how to stop it: the clients may start then.
        super().__init__(BED, [L7TAP, "attach", "--iface", PREFIX + "[ab]", "--output", "json",
                               "--keep-query", "--metrics-addr", "none", "--kubelet", "none",
                               "--interim", 0] + list(extra), NS_NODE,
                         ["stop with SIGINT"] + [f"attached to {i} " for i in IFACE.values()])

    def records(self):
        """The JSON lines so far (the last, being written, waits)."""
        recs = []
        for n, line in enumerate(self.stdout_lines(), 1):
            try:
                recs.append(json.loads(line))
            except ValueError as e:
                raise AssertionError(f"{self.name} line {n} is not JSON ({e}): {line!r}")
        return recs


def http_of(recs, port=None):
    return [r for r in recs if r.get("type") == "http" and
            (port is None or r.get("server.port") == port)]


def conns_of(recs, port=None):
    return [r for r in recs if r.get("type") == "conn" and
            (port is None or r.get("server.port") == port)]


def same(r, fields):
    return {f: r.get(f) for f in fields}


# --- clients ------------------------------------------------------------------------

CURL_W = "%{http_code} %{size_download} %{local_port} %{num_connects} %{http_version}\\n"


class Exchange:
    """What a client did and saw for one request."""

    def __init__(self, method, target, status, body, port, version, server_port, sent=0):
        self.method = method
        self.path, _, self.query = target.partition("?")
        self.status = status
        self.body = body
        self.port = port  # the client's local port: the connection
        self.version = version
        self.server_port = server_port
        self.sent = sent

    def __repr__(self):
        return (f"{self.method} {self.path}?{self.query} -> {self.status} ({self.body} B) "
                f"port {self.port}->{self.server_port} HTTP/{self.version}")


def curl(urls, extra=(), method="GET", data=None):
    """One curl run, one connection (curl reuses it for the same host)."""
    cmd = ["curl", "-sS", "--max-time", 2 * T_EVENT, "--cacert", f"{TMP}/pki/ca.pem",
           "-w", CURL_W] + list(extra)
    if method != "GET":
        cmd += ["-X", method]
    if data is not None:
        cmd += ["--data-binary", data]
    for u in urls:
        cmd += ["-o", "/dev/null", u]
    r = sh(*cmd, ns=NS["a"])
    got = []
    lines = [line for line in r.stdout.split("\n") if line.strip()]
    for u, line in zip(urls, lines):
        code, down, port, _n, version = line.split()
        target = "/" + u.split("/", 3)[3]
        server_port = int(u.split("/")[2].rpartition(":")[2])
        got.append(Exchange(method, target, int(code), int(down), int(port),
                            "2" if version == "2" else version, server_port,
                            len(data) if data else 0))
    connects = sum(int(line.split()[3]) for line in lines)
    if len(got) != len(urls) or connects != 1:
        raise AssertionError(f"curl: {len(got)} answers, {connects} connections: {r.stdout}")
    return got


def tls_url(kind, target):
    return f"https://{SNI}:{PORT[kind]}{target}"


def clear_url(kind, target):
    return f"http://{SNI}:{PORT[kind]}{target}"


def py_client(port, reqs, mode="plain", name="py-client", stdin=None):
    """Starts the python3 client (its Popen)."""
    return spawn([PYTHON, "-c", PY_CLIENT, SNI, port, f"{TMP}/pki/ca.pem", json.dumps(reqs), mode],
                 NS["a"], name, stdin=stdin if stdin is not None else subprocess.DEVNULL)


def py_client_lines(name):
    return [json.loads(line) for line in read_tmp(name + ".out").splitlines() if line.strip()]


def py_exchanges(name, server_port):
    lines = py_client_lines(name)
    local = lines[0]["port"]
    return [Exchange(x["method"], x["target"], x["status"], x["body"], local, "1.1", server_port,
                     x["sent"]) for x in lines[1:] if "status" in x]


def run_py_client(port, reqs, name):
    p = py_client(port, reqs, name=name)
    rc = p.wait(timeout=3 * T_EVENT)
    PROCS.remove(p)
    if rc != 0:
        raise AssertionError(f"{name} exited {rc}: {read_tmp(name + '.err')}")
    got = py_exchanges(name, port)
    if len(got) != len(reqs):
        raise AssertionError(f"{name}: {len(got)} answers for {len(reqs)} requests")
    return got


def nghttp(urls):
    """nghttp -nv: all URLs as streams of one connection (TLS, ALPN h2):
    (path, status) per stream id."""
    r = sh("nghttp", "-nv", "-t", 2 * T_EVENT, *urls, ns=NS["a"])
    paths, status = {}, {}
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
        if not line.startswith(" "):
            current = None
        m = re.search(r"recv \(stream_id=(\d+)\) :status: (\d+)", line)
        if m:
            status[int(m.group(1))] = int(m.group(2))
    if "h2" not in r.stdout or len(paths) != len(urls):
        raise AssertionError(f"nghttp: {len(paths)} streams for {len(urls)} URLs:\n{r.stdout}")
    return {sid: (paths[sid], status.get(sid)) for sid in paths}


def h2load(url, n, extra=()):
    r = sh("h2load", "-n", n, "-c", 2, "-m", 4, *extra, url, ns=NS["a"], timeout=5 * T_EVENT)
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded", r.stdout)
    if not m or int(m.group(4)) != n:
        raise AssertionError(f"h2load: not {n} succeeded:\n{r.stdout}")
    return r.stdout


# --- tests ------------------------------------------------------------------------------


class TlsTest(unittest.TestCase):
    def setUp(self):
        self.l7tap = None

    def tearDown(self):
        if self.l7tap is not None and self.l7tap.rc is None:
            self.l7tap.stop()
        # The servers must outlive whatever a test did to their clients.
        for name, p in SERVERS.items():
            self.assertIsNone(p.poll(), f"the {name} server exited: {read_tmp(name + '.err')}"
                              if name != "py" else f"the python server exited {p.returncode}")

    def start(self, *extra):
        self.l7tap = L7tap(*extra)
        return self.l7tap

    def finish(self, done):
        """Waits until `done(records)` holds (or the bound passes), stops
        l7tap (it drains its rings and flushes) and returns every record.
        Counting happens on the final records: exactly once means after the
        flush too."""
        try:
            wait_until(lambda: done(self.l7tap.records()), T_EVENT, "the expected records")
        except AssertionError:
            pass  # the assertions on the final records say what is missing
        self.assertEqual(self.l7tap.stop(), 0, self.l7tap.stderr())
        return self.l7tap.records()

    def matches(self, recs, x):
        """HTTP records of exchange `x`, by target and the client's port."""
        return [r for r in http_of(recs)
                if r.get("http.request.method") == x.method and r.get("url.path") == x.path and
                (r.get("url.query") or "") == x.query and r.get("client.port") == x.port]

    def assert_once(self, recs, exchanges, source=TLS_SOURCE, sni=SNI, flags_ok=()):
        """Each exchange has exactly one record, from `source`, on the
        client's own socket, with the SNI when TLS; returns them in order."""
        found = []
        for x in exchanges:
            got = self.matches(recs, x)
            self.assertEqual(len(got), 1, f"{x}: {len(got)} records, not 1: {got}\n"
                             f"stderr: {self.l7tap.stderr()}")
            r = got[0]
            self.assertEqual(r.get("l7tap.capture.source"), source, r)
            self.assertEqual((r.get("client.address"), r.get("client.port"),
                              r.get("server.address"), r.get("server.port")),
                             (CLIENT, x.port, SERVER, x.server_port), r)
            self.assertEqual(r.get("http.response.status_code"), x.status, r)
            self.assertEqual(r.get("network.protocol.version"), x.version, r)
            if x.method != "HEAD":
                self.assertEqual(r.get("http.response.body.size"), x.body, r)
            if sni:
                self.assertEqual(r.get("tls.client.server_name"), sni, r)
            # Over TLS no bytes are lost, but a call that moves more than the
            # 4 x 16 KiB an event set carries is cut there, as the window
            # (1024) cuts large segments in cleartext: a gap of known length
            # (python's server writes a body in one call).
            windowed = source == "packet" or (x.body or 0) > 4 * 16384
            self.assertEqual(set(r.get("l7tap.flags", [])) - set(flags_ok) -
                             ({"gap"} if windowed else set()), set(), r)
            found.append(r)
        return found

    def assert_same_as_cleartext(self, tls, clear, fields):
        self.assertEqual([same(r, fields) for r in tls], [same(r, fields) for r in clear])

    def assert_conn_tuple(self, recs, port, server_port):
        """The connection record of the client's socket: one, and the HTTP
        records on it point at it."""
        conns = [r for r in conns_of(recs, server_port) if r.get("client.port") == port]
        self.assertEqual(len(conns), 1, f"connection records of port {port}: {conns}")
        c = conns[0]
        self.assertEqual((c.get("client.address"), c.get("server.address")), (CLIENT, SERVER), c)
        ids = {r.get("l7tap.connection_id") for r in http_of(recs, server_port)
               if r.get("client.port") == port}
        self.assertEqual(ids, {c.get("l7tap.connection_id")}, c)
        return c


class TestHttp1(TlsTest):
    def test_curl_nginx_same_as_cleartext(self):
        """curl -> nginx, one keep-alive connection each way, over TLS and
        in cleartext: the same records but for the source and the SNI."""
        targets = ["/index.html?t=curl1&i=1", "/api/users/3?t=curl1&i=2", "/nope?t=curl1&i=3",
                   "/large.bin?t=curl1&i=4", "/small.txt?t=curl1&i=5"]
        self.start()
        tls = curl([tls_url("h1", t) for t in targets], ["--http1.1"])
        clear = curl([clear_url("h1c", t) for t in targets], ["--http1.1"])
        head = curl([tls_url("h1", "/small.txt?t=curl1head")], ["--http1.1", "-I"], method="HEAD")
        self.assertEqual([x.status for x in tls], [200, 200, 404, 200, 200])
        self.assertEqual(tls[3].body, LARGE)
        recs = self.finish(lambda rs: len(http_of(rs)) >= 2 * len(targets) + 1)
        got_tls = self.assert_once(recs, tls)
        got_clear = self.assert_once(recs, clear, source="packet", sni=None)
        self.assert_once(recs, head)
        self.assert_same_as_cleartext(got_tls, got_clear, SAME_FIELDS_H1)
        c = self.assert_conn_tuple(recs, tls[0].port, PORT["h1"])
        self.assertEqual(c.get("tls.client.server_name"), SNI, c)
        self.assert_conn_tuple(recs, clear[0].port, PORT["h1c"])

    def test_post_to_python_server(self):
        """curl and the python3 client -> the python3 TLS server (OpenSSL
        through python's ssl on the server side): GETs, a POST with a body,
        an error status."""
        self.start()
        body = "field=" + "v" * 5000
        posted = curl([f"https://{SNI}:{PORT['py']}/form?t=pypost"], ["--http1.1"],
                      method="POST", data=body)
        gets = curl([f"https://{SNI}:{PORT['py']}/bytes?n={n}&t=pyget" for n in (10, 70000)] +
                    [f"https://{SNI}:{PORT['py']}/missing?t=pyget"], ["--http1.1"])
        reqs = [["GET", "/bytes?n=123&t=pyc", None], ["POST", "/up?t=pyc", "y" * 40000],
                ["GET", "/missing?t=pyc", None], ["GET", "/bytes?n=20000&t=pyc", None]]
        mine = run_py_client(PORT["py"], reqs, "pyc-py")
        self.assertEqual([x.status for x in posted + gets + mine], [201, 200, 200, 404,
                                                                  200, 201, 404, 200])
        recs = self.finish(lambda rs: len(http_of(rs, PORT["py"])) >= 8)
        got = self.assert_once(recs, posted + gets + mine)
        self.assertEqual(got[0].get("http.request.body.size"), len(body), got[0])
        self.assertEqual(got[5].get("http.request.body.size"), 40000, got[5])
        self.assertEqual(len(http_of(recs, PORT["py"])), 8, http_of(recs, PORT["py"]))
        self.assert_conn_tuple(recs, mine[0].port, PORT["py"])

    def test_python_client_nginx_same_as_cleartext(self):
        """python3's http.client over ssl -> nginx, one connection, and the
        same requests in cleartext (a python client without ssl is curl's
        twin here: the cleartext side is curl)."""
        self.start()
        targets = ["/index.html?t=pyn&i=1", "/api/users/5?t=pyn&i=2", "/large.bin?t=pyn&i=3",
                   "/nope?t=pyn&i=4"]
        tls = run_py_client(PORT["h1"], [["GET", t, None] for t in targets], "pyc-nginx")
        clear = curl([clear_url("h1c", t) for t in targets], ["--http1.1"])
        recs = self.finish(lambda rs: len(http_of(rs)) >= 2 * len(targets))
        got_tls = self.assert_once(recs, tls)
        got_clear = self.assert_once(recs, clear, source="packet", sni=None)
        # Request headers differ between python and curl: not their sizes.
        self.assert_same_as_cleartext(got_tls, got_clear, SAME_FIELDS)
        self.assert_conn_tuple(recs, tls[0].port, PORT["h1"])

    def test_keepalive_opened_before_l7tap(self):
        """A connection whose handshake and SSL_set_fd happened before l7tap
        started: its later exchanges are reported, on its own socket."""
        name = "pyc-before"
        reqs = [["GET", f"/api/users/{i}?t=before&i={i}", None] for i in range(1, 6)]
        p = py_client(PORT["h1"], reqs, "wait-after-first", name=name, stdin=subprocess.PIPE)
        wait_until(lambda: len(py_client_lines(name)) >= 2 or p.poll() is not None, T_EVENT,
                   "the first answer before l7tap starts")
        self.assertIsNone(p.poll(), read_tmp(name + ".err"))
        self.start()
        p.stdin.write(b"go\n")
        p.stdin.close()
        self.assertEqual(p.wait(timeout=3 * T_EVENT), 0, read_tmp(name + ".err"))
        PROCS.remove(p)
        got = py_exchanges(name, PORT["h1"])
        self.assertEqual(len(got), len(reqs))
        recs = self.finish(lambda rs: len(http_of(rs)) >= len(reqs) - 1)
        # The first exchange was over before l7tap ran; the ClientHello too,
        # so no SNI is known for this connection.
        self.assertEqual(self.matches(recs, got[0]), [])
        # A parser that joins a connection late may say so (midstream).
        self.assert_once(recs, got[1:], sni=None, flags_ok={"midstream"})
        self.assertEqual(len(http_of(recs)), len(reqs) - 1, http_of(recs))

    def test_client_killed_mid_request(self):
        """A client killed with SIGKILL while its request waits for the
        answer: l7tap goes on, the servers too, and the exchange is reported
        at most once; later connections are reported as usual."""
        self.start()
        name = "pyc-killed"
        p = py_client(PORT["py"], [["GET", "/bytes?n=10&t=kill&i=1", None],
                                   ["GET", "/hang?t=kill&i=2", None]], "hang-last", name=name)
        wait_until(lambda: "hang t=kill" in read_tmp("py-server.out") or p.poll() is not None,
                   T_EVENT, "the server to hold the request")
        self.assertIsNone(p.poll(), read_tmp(name + ".err"))
        p.kill()
        p.wait()
        PROCS.remove(p)
        release_hang()
        after = curl([tls_url("h1", "/small.txt?t=kill&i=3")], ["--http1.1"])
        after += curl([f"https://{SNI}:{PORT['py']}/bytes?n=5&t=kill&i=4"], ["--http1.1"])
        self.assertIsNone(self.l7tap.proc.poll(), self.l7tap.stderr())
        first = py_exchanges(name, PORT["py"])
        recs = self.finish(lambda rs: len(http_of(rs)) >= 3)
        self.assert_once(recs, first + after)
        hung = [r for r in http_of(recs) if r.get("url.path") == "/hang"]
        self.assertLessEqual(len(hung), 1, hung)


class TestProcesses(TlsTest):
    def test_server_started_after_l7tap(self):
        """A TLS server that starts while l7tap runs is covered (the probes
        are on libssl's file, for processes present and future)."""
        self.start()
        srv = start_py_server("py-late", PORT["py_late"], keep=False)
        PROCS.append(srv)
        got = curl([f"https://{SNI}:{PORT['py_late']}/bytes?n={n}&t=late" for n in (7, 30000)],
                   ["--http1.1"])
        recs = self.finish(lambda rs: len(http_of(rs, PORT["py_late"])) >= 2)
        stop_process(srv)
        PROCS.remove(srv)
        self.assert_once(recs, got)
        self.assertEqual(len(http_of(recs)), 2, http_of(recs))

    def test_traced_output_unchanged(self):
        """What the traced programs send and receive is byte for byte what
        they do without l7tap: a download over TLS and h2, and a POST whose
        length the server echoes."""
        self.start()
        for extra, port in ((["--http1.1"], PORT["h1"]), (["--http2"], PORT["h2"])):
            out = os.path.join(TMP, f"large-{port}.bin")
            sh("curl", "-sS", "--cacert", f"{TMP}/pki/ca.pem", *extra, "-o", out,
               f"https://{SNI}:{port}/large.bin?t=unchanged", ns=NS["a"])
            with open(out, "rb") as a, open(os.path.join(TMP, "www", "large.bin"), "rb") as b:
                self.assertTrue(a.read() == b.read(), f"{out} differs from what nginx has")
        r = sh("curl", "-sS", "--cacert", f"{TMP}/pki/ca.pem", "--data-binary", "z" * 100000,
               f"https://{SNI}:{PORT['py']}/echo?t=unchanged", ns=NS["a"])
        self.assertEqual(r.stdout, "100000\n")
        self.assertIsNone(self.l7tap.proc.poll(), self.l7tap.stderr())

    def test_tls_binary_without_openssl(self):
        """--tls-binary on a file without OpenSSL's symbols: one line naming
        it and why, l7tap goes on (and the libssl users stay covered)."""
        self.start("--tls-binary", "/bin/true")
        got = curl([tls_url("h1", "/small.txt?t=tlsbinary")], ["--http1.1"])
        recs = self.finish(lambda rs: len(http_of(rs)) >= 1)
        lines = [line for line in self.l7tap.stderr().splitlines()
                 if line.startswith("l7tap: tls: /bin/true: ")]
        self.assertEqual(len(lines), 1, self.l7tap.stderr())
        self.assert_once(recs, got)


class TestHttp2(TlsTest):
    def test_curl_h2_same_as_cleartext(self):
        """curl --http2 (ALPN h2) -> nginx: one record per stream, as in h2c."""
        targets = ["/index.html?t=curl2&i=1", "/api/users/2?t=curl2&i=2", "/nope?t=curl2&i=3",
                   "/large.bin?t=curl2&i=4"]
        self.start()
        tls = curl([tls_url("h2", t) for t in targets], ["--http2"])
        # curl 7.88 fails to reuse a prior-knowledge h2c connection (error
        # 16): one connection per URL in cleartext.
        clear = [x for t in targets for x in curl([clear_url("h2c", t)],
                                                   ["--http2-prior-knowledge"])]
        self.assertEqual({x.version for x in tls + clear}, {"2"})
        recs = self.finish(lambda rs: len(http_of(rs)) >= 2 * len(targets))
        got_tls = self.assert_once(recs, tls)
        got_clear = self.assert_once(recs, clear, source="packet", sni=None)
        self.assert_same_as_cleartext(got_tls, got_clear, SAME_FIELDS)
        self.assertEqual([r.get("l7tap.http2.stream_id") for r in got_tls], [1, 3, 5, 7])
        c = self.assert_conn_tuple(recs, tls[0].port, PORT["h2"])
        self.assertEqual(c.get("tls.client.server_name"), SNI, c)
        self.assertIn("h2", c.get("l7tap.tls.alpn_offered", "").split(","), c)

    def test_nghttp_streams(self):
        """nghttp: concurrent streams of one TLS connection, one record each."""
        self.start()
        urls = [tls_url("h2", f"/api/users/{i}?t=nghttp") for i in range(1, 7)] + \
            [tls_url("h2", "/large.bin?t=nghttp"), tls_url("h2", "/nope?t=nghttp")]
        streams = nghttp(urls)
        recs = self.finish(lambda rs: len(http_of(rs, PORT["h2"])) >= len(urls))
        got = http_of(recs, PORT["h2"])
        self.assertEqual(len(got), len(urls), got)
        self.assertEqual(len({r.get("client.port") for r in got}), 1, got)
        by_stream = {r.get("l7tap.http2.stream_id"): r for r in got}
        self.assertEqual(sorted(by_stream), sorted(streams))
        for sid, (path, status) in streams.items():
            r = by_stream[sid]
            self.assertEqual((r.get("url.path") + "?" + r.get("url.query", ""),
                              r.get("http.response.status_code")), (path, status), r)
            self.assertEqual(r.get("l7tap.capture.source"), TLS_SOURCE, r)
            self.assertEqual(r.get("tls.client.server_name"), SNI, r)
            self.assertEqual((r.get("client.address"), r.get("server.address")),
                             (CLIENT, SERVER), r)

    def test_h2load_counts(self):
        """h2load over TLS, h2 and HTTP/1.1: as many records as requests."""
        self.start()
        h2load(tls_url("h2", "/small.txt?t=h2load"), 200)
        h2load(tls_url("h1", "/small.txt?t=h2loadh1"), 120, ["--h1"])
        recs = self.finish(lambda rs: len(http_of(rs)) >= 320)
        for port, query, n, version in ((PORT["h2"], "t=h2load", 200, "2"),
                                        (PORT["h1"], "t=h2loadh1", 120, "1.1")):
            got = [r for r in http_of(recs, port) if r.get("url.query") == query]
            self.assertEqual(len(got), n, f"{query}: {len(got)} records")
            self.assertEqual({(r.get("http.response.status_code"), r.get("network.protocol.version"),
                               r.get("l7tap.capture.source"), r.get("tls.client.server_name"),
                               r.get("client.address"))
                              for r in got}, {(200, version, TLS_SOURCE, SNI, CLIENT)})
            # h2load's two connections, each with its own record and SNI.
            self.assertEqual(len({r.get("client.port") for r in got}), 2)
            self.assertEqual(len(conns_of(recs, port)), 2, conns_of(recs, port))
        self.assertEqual(len(http_of(recs)), 320)


class TestFlags(TlsTest):
    def test_no_tls_uprobes(self):
        """--no-tls-uprobes: TLS connections keep their connection records
        with the SNI, and have no HTTP records; cleartext is as before."""
        self.start("--no-tls-uprobes")
        tls = curl([tls_url("h1", "/small.txt?t=nouprobe")], ["--http1.1"])
        tls += curl([tls_url("h2", "/small.txt?t=nouprobe")], ["--http2"])
        clear = curl([clear_url("h1c", "/small.txt?t=nouprobe")], ["--http1.1"])
        recs = self.finish(lambda rs: len(conns_of(rs)) >= 3)
        self.assertEqual([r for r in http_of(recs) if r.get("server.port") != PORT["h1c"]], [])
        self.assert_once(recs, clear, source="packet", sni=None)
        for x in tls:
            c = [r for r in conns_of(recs, x.server_port) if r.get("client.port") == x.port]
            self.assertEqual(len(c), 1, conns_of(recs))
            self.assertEqual((c[0].get("tls.client.server_name"), c[0].get("l7tap.protocol")),
                             (SNI, "tls"), c[0])

    def test_tls_pid(self):
        """--tls-pid: only that process's TLS calls; here the python server
        (so its half of each exchange, with curl untraced), not nginx."""
        self.start("--tls-pid", SERVERS["py"].pid)
        py = curl([f"https://{SNI}:{PORT['py']}/bytes?n={n}&t=tlspid" for n in (1, 2, 3)],
                  ["--http1.1"])
        other = curl([tls_url("h1", "/small.txt?t=tlspid")], ["--http1.1"])
        recs = self.finish(lambda rs: len(http_of(rs)) >= 3 and len(conns_of(rs)) >= 2)
        self.assert_once(recs, py)
        self.assertEqual(http_of(recs, PORT["h1"]), [])
        c = [r for r in conns_of(recs, PORT["h1"]) if r.get("client.port") == other[0].port]
        self.assertEqual(len(c), 1, conns_of(recs))
        self.assertEqual(c[0].get("tls.client.server_name"), SNI, c[0])


class TestGrpc(TlsTest):
    def test_grpc_over_tls_same_as_cleartext(self):
        """python3-grpcio over TLS and in cleartext (h2c): a unary call that
        succeeds and one that ends in INVALID_ARGUMENT, one record each with
        the same gRPC fields. The server starts after l7tap: a process the
        probes must pick up."""
        self.start()
        srv = spawn([PYTHON, "-c", GRPC_SERVER, f"{TMP}/pki/server.pem", f"{TMP}/pki/server.key",
                     f"{SERVER}:{PORT['grpc']}", f"{SERVER}:{PORT['grpcc']}"], NS["b"],
                    "grpc-server")
        wait_until(lambda: "listening" in read_tmp("grpc-server.out") or srv.poll() is not None,
                   T_EVENT, "the gRPC server to listen")
        self.assertIsNone(srv.poll(), read_tmp("grpc-server.err"))
        for port, ca in ((PORT["grpc"], f"{TMP}/pki/ca.pem"), (PORT["grpcc"], "none")):
            r = sh(PYTHON, "-c", GRPC_CLIENT, f"{SNI}:{port}", ca, ns=NS["a"])
            self.assertEqual(json.loads(r.stdout),
                             {"unary": "ping" * 10, "fail": "INVALID_ARGUMENT"})
        recs = self.finish(lambda rs: len(http_of(rs, PORT["grpc"])) >= 2 and
                           len(http_of(rs, PORT["grpcc"])) >= 2)
        stop_process(srv)
        PROCS.remove(srv)
        fields = ["rpc.system", "rpc.service", "rpc.method", "rpc.grpc.status_code", "url.path",
                  "network.protocol.version", "http.response.status_code",
                  "http.request.body.size", "http.response.body.size", "client.address",
                  "server.address"]
        by = {}
        for port in (PORT["grpc"], PORT["grpcc"]):
            got = http_of(recs, port)
            self.assertEqual(len(got), 2, got)
            by[port] = sorted((same(r, fields) for r in got), key=lambda r: r["rpc.method"] or "")
            self.assertEqual([(r["rpc.method"], r["rpc.grpc.status_code"]) for r in by[port]],
                             [("Fail", 3), ("Unary", 0)], got)
            self.assertEqual({r.get("l7tap.capture.source") for r in got},
                             {TLS_SOURCE if port == PORT["grpc"] else "packet"}, got)
            if port == PORT["grpc"]:
                self.assertEqual({r.get("tls.client.server_name") for r in got}, {SNI}, got)
        self.assertEqual(by[PORT["grpc"]], by[PORT["grpcc"]])


# --- Go crypto/tls ----------------------------------------------------------------------

GO_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "go")
GO_BIN = {}  # file name -> path in TMP/go, built once per run


def go_build():
    """tests/e2e/go built offline with Debian's golang-go, its cache in TMP:
    the program, a stripped copy (-s -w: no symbol table, no DWARF), and a
    copy of the program that is a file of its own (another inode), so that
    only the discovery after exec can find it when it starts after l7tap."""
    if GO_BIN:
        return GO_BIN
    d = os.path.join(TMP, "go")
    env = dict(os.environ, GOCACHE=f"{d}/cache", GOPATH=f"{d}/path", GOTOOLCHAIN="local",
               GOPROXY="off", GOFLAGS="", CGO_ENABLED="0")
    for name, flags in (("l7tlgo", []), ("l7tlgo-stripped", ["-ldflags=-s -w"])):
        out = os.path.join(d, name)
        log(f"go build {' '.join(flags)} -o {out}")
        r = subprocess.run(["go", "build"] + flags + ["-o", out, "."], cwd=GO_SRC, env=env,
                           capture_output=True, text=True, timeout=20 * T_EVENT)
        if r.returncode != 0:
            raise AssertionError(f"go build {name}: exit {r.returncode}: {r.stderr}")
        GO_BIN[name] = out
    GO_BIN["l7tlgo-late"] = os.path.join(d, "l7tlgo-late")
    shutil.copy2(GO_BIN["l7tlgo"], GO_BIN["l7tlgo-late"])
    return GO_BIN


def start_go_server(binary, name, port, clear_port=None):
    cmd = [binary, "serve", "-cert", f"{TMP}/pki/server.pem", "-key", f"{TMP}/pki/server.key",
           "-addr", f"{SERVER}:{port}"]
    if clear_port is not None:
        cmd += ["-clear", f"{SERVER}:{clear_port}"]
    p = spawn(cmd, NS["b"], name)
    # It prints "listening" once its listeners are bound.
    wait_until(lambda: "listening" in read_tmp(name + ".out") or p.poll() is not None, T_EVENT,
               f"{name} to listen")
    if p.poll() is not None:
        raise AssertionError(f"{name} exited {p.returncode}: {read_tmp(name + '.err')}")
    return p


def go_url(port, target):
    return f"https://{SNI}:{port}{target}"


def go_client(binary, reqs, name, h2=False, wait=False):
    """Starts the Go client (its Popen): `reqs` [(method, url, body size)],
    all over one connection."""
    cmd = [binary, "get", "-ca", f"{TMP}/pki/ca.pem"] + (["-h2"] if h2 else []) + \
        (["-wait"] if wait else []) + [f"{m} {u} {n}" for m, u, n in reqs]
    return spawn(cmd, NS["a"], name, stdin=subprocess.PIPE if wait else subprocess.DEVNULL)


def go_exchanges(p, name, reqs):
    """Waits for the Go client `p`; what it saw, as Exchanges, and its JSON
    lines (with the sha256 of each body)."""
    rc = p.wait(timeout=3 * T_EVENT)
    PROCS.remove(p)
    if rc != 0:
        raise AssertionError(f"{name} exited {rc}: {read_tmp(name + '.err')}")
    lines = [json.loads(line) for line in read_tmp(name + ".out").splitlines()
             if line.startswith("{")]
    if len(lines) != len(reqs) or {x["conns"] for x in lines} != {1}:
        raise AssertionError(f"{name}: {len(lines)} answers for {len(reqs)} requests, "
                             f"not over one connection: {lines}")
    got = [Exchange(x["method"], x["target"], x["status"], x["body"], x["port"], x["version"],
                    int(u.split("/")[2].rpartition(":")[2]), x["sent"])
           for x, (_m, u, _n) in zip(lines, reqs)]
    return got, lines


def run_go_client(binary, reqs, name, h2=False):
    return go_exchanges(go_client(binary, reqs, name, h2=h2), name, reqs)


def sha256_of(data):
    return hashlib.sha256(data).hexdigest()


def go_pattern(n):
    """What the Go server's /bytes?n=N answers."""
    return bytes(ord("a") + i % 26 for i in range(n))


def go_probes(l7tap, path):
    """The file offsets of l7tap's uprobes on the file `path` (l7tap opens
    it as /proc/PID/root/PATH): bpftool lists the perf events that carry BPF
    programs, with their file and offset."""
    r = sh("bpftool", "-j", "perf", "show", check=False)
    try:
        events = json.loads(r.stdout or "[]")
    except ValueError:
        return []
    return sorted(e.get("offset") for e in events
                  if e.get("pid") == l7tap.proc.pid and
                  e.get("fd_type") in ("uprobe", "uretprobe") and
                  e.get("filename", "").endswith("/root" + path))


class TestGo(TlsTest):
    """Go crypto/tls: the probes at (*Conn).Read/Write's entry and return
    instructions, per the Go register ABI."""

    @classmethod
    def setUpClass(cls):
        go_build()
        # Running before each l7tap: the scan at start finds it.
        SERVERS["go"] = start_go_server(GO_BIN["l7tlgo"], "go", PORT["go"], PORT["goc"])

    @classmethod
    def tearDownClass(cls):
        p = SERVERS.pop("go", None)
        if p is not None:
            stop_process(p)
            PROCS.remove(p)

    def test_curl_to_go_server_same_as_cleartext(self):
        """curl -> the Go server, HTTP/1.1 and h2 over TLS and HTTP/1.1 in
        cleartext: the records of TLS are the Go server's alone (--tls-pid:
        curl's OpenSSL untraced), the same as in cleartext but for the
        source and the SNI."""
        self.start("--tls-pid", SERVERS["go"].pid)
        targets = ["/bytes?n=10&t=curlgo&i=1", "/missing?t=curlgo&i=2",
                   f"/bytes?n={LARGE}&t=curlgo&i=3", "/bytes?n=35&t=curlgo&i=4"]
        h1 = curl([go_url(PORT["go"], t) for t in targets], ["--http1.1"])
        clear = curl([f"http://{SNI}:{PORT['goc']}{t}" for t in targets], ["--http1.1"])
        h2 = curl([go_url(PORT["go"], t) for t in targets], ["--http2"])
        body = "f=" + "v" * 5000
        posted = curl([go_url(PORT["go"], "/form?t=curlgopost")], ["--http1.1"], method="POST",
                      data=body)
        self.assertEqual([x.status for x in h1 + h2 + posted], [200, 404, 200, 200] * 2 + [201])
        self.assertEqual(({x.version for x in h1}, {x.version for x in h2}), ({"1.1"}, {"2"}))
        n = len(targets)
        recs = self.finish(lambda rs: len(http_of(rs, PORT["go"])) >= 2 * n + 1 and
                           len(http_of(rs, PORT["goc"])) >= n)
        got_h1 = self.assert_once(recs, h1)
        got_clear = self.assert_once(recs, clear, source="packet", sni=None)
        got_h2 = self.assert_once(recs, h2)
        got_post = self.assert_once(recs, posted)
        self.assertEqual(len(http_of(recs, PORT["go"])), 2 * n + 1, http_of(recs, PORT["go"]))
        self.assertEqual(got_post[0].get("http.request.body.size"), len(body), got_post[0])
        self.assert_same_as_cleartext(got_h1, got_clear, SAME_FIELDS_H1)
        no_version = [f for f in SAME_FIELDS if f != "network.protocol.version"]
        self.assert_same_as_cleartext(got_h2, got_clear, no_version)
        self.assertEqual([r.get("l7tap.http2.stream_id") for r in got_h2], [1, 3, 5, 7])
        for x in (h1[0], h2[0], posted[0]):
            c = self.assert_conn_tuple(recs, x.port, PORT["go"])
            self.assertEqual(c.get("tls.client.server_name"), SNI, c)
        c = self.assert_conn_tuple(recs, h2[0].port, PORT["go"])
        self.assertIn("h2", c.get("l7tap.tls.alpn_offered", "").split(","), c)

    def test_go_client_to_nginx_same_as_cleartext(self):
        """The Go client -> nginx, HTTP/1.1 and h2 over TLS: the records of
        TLS are the Go client's alone (--tls-pid: nginx untraced), the same
        as curl's in cleartext but for the source and the SNI; what it
        downloads is what nginx has."""
        targets = ["/index.html?t=gon&i=1", "/api/users/4?t=gon&i=2", "/large.bin?t=gon&i=3",
                   "/nope?t=gon&i=4"]
        reqs = {"h1": [("GET", tls_url("h1", t), 0) for t in targets],
                "h2": [("GET", tls_url("h2", t), 0) for t in targets]}
        procs = {k: go_client(GO_BIN["l7tlgo"], reqs[k], f"go-nginx-{k}", h2=k == "h2",
                              wait=True) for k in reqs}
        for k, p in procs.items():
            wait_until(lambda: "waiting" in read_tmp(f"go-nginx-{k}.out") or
                       p.poll() is not None, T_EVENT, f"go-nginx-{k} to start")
        self.start(*[a for p in procs.values() for a in ("--tls-pid", p.pid)])
        got, lines = {}, {}
        for k, p in procs.items():
            p.stdin.write(b"go\n")
            p.stdin.close()
            got[k], lines[k] = go_exchanges(p, f"go-nginx-{k}", reqs[k])
        clear = curl([clear_url("h1c", t) for t in targets], ["--http1.1"])
        self.assertEqual(({x.version for x in got["h1"]}, {x.version for x in got["h2"]}),
                         ({"1.1"}, {"2"}))
        with open(os.path.join(TMP, "www", "large.bin"), "rb") as f:
            large = sha256_of(f.read())
        for k in got:
            self.assertEqual([x.status for x in got[k]], [200, 200, 200, 404])
            self.assertEqual(lines[k][2]["sha256"], large, lines[k][2])
        n = len(targets)
        recs = self.finish(lambda rs: len(http_of(rs, PORT["h1"])) >= n and
                           len(http_of(rs, PORT["h2"])) >= n and
                           len(http_of(rs, PORT["h1c"])) >= n)
        got_h1 = self.assert_once(recs, got["h1"])
        got_h2 = self.assert_once(recs, got["h2"])
        got_clear = self.assert_once(recs, clear, source="packet", sni=None)
        # Request headers differ between Go and curl: not their sizes.
        self.assert_same_as_cleartext(got_h1, got_clear, SAME_FIELDS)
        no_version = [f for f in SAME_FIELDS if f != "network.protocol.version"]
        self.assert_same_as_cleartext(got_h2, got_clear, no_version)
        self.assertEqual([r.get("l7tap.http2.stream_id") for r in got_h2], [1, 3, 5, 7])
        for k in got:
            c = self.assert_conn_tuple(recs, got[k][0].port, PORT[k])
            self.assertEqual(c.get("tls.client.server_name"), SNI, c)
            self.assertEqual(len(http_of(recs, PORT[k])), n, http_of(recs, PORT[k]))

    def test_go_server_started_after_l7tap(self):
        """A Go server whose file l7tap has not seen starts while l7tap
        runs: the discovery after exec attaches it; the Go client of the
        same file is then covered too (both ends traced: each exchange
        still once)."""
        self.start()
        late = GO_BIN["l7tlgo-late"]
        srv = start_go_server(late, "go-late", PORT["go_late"])
        # Attaching follows the exec after a delay: wait for the probes on the
        # file, not for a time; all of them, those l7tap has on the program
        # this file is a copy of (the Go server's, found at start).
        probes = go_probes(self.l7tap, GO_BIN["l7tlgo"])
        self.assertTrue(probes, self.l7tap.stderr())
        wait_until(lambda: go_probes(self.l7tap, late) == probes, T_EVENT,
                   f"l7tap's uprobes on {late}")
        reqs = [("GET", go_url(PORT["go_late"], "/bytes?n=100&t=late&i=1"), 0),
                ("POST", go_url(PORT["go_late"], "/up?t=late&i=2"), 20000),
                ("GET", go_url(PORT["go_late"], "/missing?t=late&i=3"), 0)]
        h1, lines1 = run_go_client(late, reqs, "go-late-h1")
        h2, lines2 = run_go_client(late, reqs, "go-late-h2", h2=True)
        for x, line in zip(h1 + h2, lines1 + lines2):
            self.assertEqual(x.status, {"GET": 200, "POST": 201}[x.method] if
                             "missing" not in x.path else 404, line)
        self.assertEqual(lines1[0]["sha256"], sha256_of(go_pattern(100)))
        self.assertEqual([x["sha256"] for x in lines1], [x["sha256"] for x in lines2])
        recs = self.finish(lambda rs: len(http_of(rs, PORT["go_late"])) >= 2 * len(reqs))
        self.assertIsNone(srv.poll(), read_tmp("go-late.err"))
        stop_process(srv)
        PROCS.remove(srv)
        got = self.assert_once(recs, h1 + h2)
        self.assertEqual(got[1].get("http.request.body.size"), 20000, got[1])
        self.assertEqual(len(http_of(recs, PORT["go_late"])), 2 * len(reqs),
                         http_of(recs, PORT["go_late"]))
        for x in (h1[0], h2[0]):
            c = self.assert_conn_tuple(recs, x.port, PORT["go_late"])
            self.assertEqual(c.get("tls.client.server_name"), SNI, c)

    def test_stripped_go(self):
        """A stripped Go server and client (-ldflags="-s -w") started while
        l7tap runs: exactly one line naming the file and saying it is
        stripped, no records from its TLS (its connections keep theirs,
        with the SNI), and the programs work as without l7tap."""
        self.start()
        stripped = GO_BIN["l7tlgo-stripped"]
        srv = start_go_server(stripped, "go-strip", PORT["go_strip"])
        prefix = f"l7tap: tls: {stripped}: "

        def refused():
            return [line for line in self.l7tap.stderr().splitlines()
                    if line.startswith(prefix)]
        wait_until(refused, T_EVENT, f"l7tap's line on {stripped}")
        reqs = [("GET", go_url(PORT["go_strip"], "/bytes?n=1000&t=strip&i=1"), 0),
                ("POST", go_url(PORT["go_strip"], "/up?t=strip&i=2"), 3000),
                ("GET", go_url(PORT["go_strip"], "/missing?t=strip&i=3"), 0)]
        h1, lines1 = run_go_client(stripped, reqs, "go-strip-h1")
        h2, lines2 = run_go_client(stripped, reqs, "go-strip-h2", h2=True)
        self.assertEqual([x.status for x in h1 + h2], [200, 201, 404] * 2)
        self.assertEqual(({x.version for x in h1}, {x.version for x in h2}), ({"1.1"}, {"2"}))
        self.assertEqual(lines1[0]["sha256"], sha256_of(go_pattern(1000)))
        self.assertEqual(lines2[0]["sha256"], sha256_of(go_pattern(1000)))
        recs = self.finish(lambda rs: len(conns_of(rs, PORT["go_strip"])) >= 2)
        self.assertIsNone(srv.poll(), read_tmp("go-strip.err"))
        stop_process(srv)
        PROCS.remove(srv)
        lines = refused()
        self.assertEqual(len(lines), 1, self.l7tap.stderr())
        self.assertIn("stripped", lines[0])
        self.assertEqual(http_of(recs, PORT["go_strip"]), [])
        for x in (h1[0], h2[0]):
            c = [r for r in conns_of(recs, PORT["go_strip"]) if r.get("client.port") == x.port]
            self.assertEqual(len(c), 1, conns_of(recs, PORT["go_strip"]))
            self.assertEqual(c[0].get("tls.client.server_name"), SNI, c[0])


def main():
    global L7TAP
    args = arguments(__doc__, "logs, keys").parse_args()
    L7TAP = os.path.abspath(args.l7tap)
    return run_on_testbed(sys.modules[__name__], args, "TLS e2e tests", "TLS e2e", BED,
                          build_testbed, missing_privileges)


if __name__ == "__main__":
    sys.exit(main())
