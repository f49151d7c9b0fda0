#!/usr/bin/python3
"""Privileged end-to-end test of /metrics: a live `l7tap attach` scraped by a
real Prometheus (Debian's `prometheus`), counts checked through Prometheus's
HTTP query API against what the clients did.

    client eth0 10.83.1.2 ──veth── l7ep<pid>a 10.83.1.1 ┐ node namespace: router,
    server eth0 10.83.2.2 ──veth── l7ep<pid>b 10.83.2.1 ┘ l7tap, Prometheus

The server namespace runs nginx (HTTP/1.1 on 8080) and nghttpd (h2c on
8082) over one document tree (/api/users/1..N); the client runs curl
(keep-alive HTTP/1.1), nghttp and h2load. l7tap attaches to the server's
veth only (each exchange seen once), serves on the node's 127.0.0.1 (port
0: the one it prints), and a Prometheus in the node namespace scrapes it
every second. The test waits (polls; no sleep stands for correctness)
until Prometheus says

    sum by (http_response_status_code, http_route)
        (http_server_request_duration_seconds_count)

equals the status codes the clients themselves reported, per route
(/api/users/{id}, /missing/page, /nope), and runs `promtool check metrics`
on a direct scrape. Plumbing alone (up == 1 through Prometheus, /readyz,
/healthz, OpenMetrics negotiation) is a test of its own.

Everything created (namespaces, veths, processes, temp dirs with
Prometheus's TSDB) is removed on pass, failure, exception and
SIGINT/SIGTERM; names start with l7ep<pid>. The run holds the flock on
/tmp/l7tap-e2e.lock so that no other e2e suite runs meanwhile.

Usage: test_metrics.py --l7tap PATH [--keep-temp] [TestClass[.test_name] ...]

Without root, BPF or network namespaces the tests skip with the reason; with
L7TAP_REQUIRE_PRIVILEGED set (non-empty, not "0") a skip is a failure. The
last line is "N passed, N failed, N skipped"; the exit status is non-zero on
failure.
"""

import collections
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
# Its helpers only; importing it starts nothing (its tests run from its main()).
from test_live import sh, stop_process, wait_until  # noqa: E402
from privileged_suite import arguments, basic_problem, run_on_testbed  # noqa: E402
from testbed import Testbed  # noqa: E402

# A bound on waiting for what is bound to happen (shared CPUs): never a
# correctness condition.
T_EVENT = 60


def log(msg):
    print(f"[metrics-e2e] {msg}", file=sys.stderr, flush=True)


# Names start with l7ep<pid>; what still runs at the end gets SIGTERM.
BED = Testbed("l7ep", {"a": "10.83.1", "b": "10.83.2"}, log, T_EVENT, signal.SIGTERM)
PREFIX, NS_NODE, NS, IFACE, SUBNET = BED.prefix, BED.node, BED.ns, BED.iface, BED.subnet
spawn, wait_port, PROCS = BED.spawn, BED.wait_port, BED.procs
SERVER = SUBNET["b"] + ".2"
PORT_NGINX = 8080  # HTTP/1.1
PORT_NGHTTPD = 8082  # h2c
PROMETHEUS_PORT = 9090  # in the node namespace of this run: free by construction
TOOLS = ["ip", "nginx", "nghttpd", "curl", "nghttp", "h2load", "bpftool", "ss", "prometheus",
         "promtool"]
USERS = 12  # /api/users/1..USERS exist

TMP = None  # BED.tmp, once made
L7TAP = None


# --- test bed -------------------------------------------------------------------


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx/nginx.pid;
error_log {tmp}/nginx/error.log notice;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/nginx/body;
  proxy_temp_path {tmp}/nginx/proxy;
  fastcgi_temp_path {tmp}/nginx/fastcgi;
  uwsgi_temp_path {tmp}/nginx/uwsgi;
  scgi_temp_path {tmp}/nginx/scgi;
  default_type text/plain;
  server {{
    listen {addr}:{port};
    root {root};
  }}
}}
"""


def build_testbed():
    global TMP
    TMP = BED.tmp
    BED.build_network()
    # nginx's workers are not root: the tree must be readable to them.
    os.chmod(TMP, 0o755)
    root = os.path.join(TMP, "www")
    os.makedirs(os.path.join(root, "api", "users"))
    for i in range(1, USERS + 1):
        with open(os.path.join(root, "api", "users", str(i)), "w") as f:
            f.write(f'{{"id": {i}}}\n')
    os.makedirs(os.path.join(TMP, "nginx"))
    conf = os.path.join(TMP, "nginx", "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(tmp=TMP, addr=SERVER, port=PORT_NGINX, root=root))
    spawn(["nginx", "-c", conf, "-p", os.path.join(TMP, "nginx")], NS["b"], "nginx")
    spawn(["nghttpd", "--no-tls", "-a", SERVER, "-d", root, PORT_NGHTTPD], NS["b"], "nghttpd")
    wait_port(NS["b"], PORT_NGINX)
    wait_port(NS["b"], PORT_NGHTTPD)


def missing_privileges():
    return basic_problem(L7TAP, TOOLS, f"{PREFIX}-probe")


# --- l7tap and Prometheus -----------------------------------------------------------


def http_get(url, accept=None, method="GET"):
    """(status, content type, body) of a request from the node namespace."""
    cmd = ["curl", "-s", "--noproxy", "*", "-X", method, "-o", "-", "-w",
           "\n%{http_code} %{content_type}", "--max-time", T_EVENT, url]
    if accept:
        cmd += ["-H", f"Accept: {accept}"]
    r = sh(*cmd, ns=NS_NODE, check=False)
    body, _, tail = r.stdout.rpartition("\n")
    code, _, ctype = tail.partition(" ")
    return int(code or 0), ctype, body


class L7tap:
    """`l7tap attach` on the server's veth, JSON records to a file, /metrics
    on a port of the kernel's choosing in the node namespace."""

    counter = 0

    def __init__(self):
        L7tap.counter += 1
        name = f"l7tap-{L7tap.counter}"
        self.proc = spawn([L7TAP, "attach", "--iface", IFACE["b"], "--output", "json",
                           "--kubelet", "none", "--keep-query",
                           "--metrics-addr", "127.0.0.1:0"], NS_NODE, name)
        self.err_path = os.path.join(TMP, name + ".err")
        self.out_path = os.path.join(TMP, name + ".out")
        self.base = wait_until(self.metrics_base, T_EVENT, "l7tap's `metrics on` line")
        wait_until(lambda: f"attached to {IFACE['b']}" in self.stderr(), T_EVENT,
                   f"l7tap to attach to {IFACE['b']}")

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def metrics_base(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"l7tap ended ({self.proc.returncode}): {self.stderr()}")
        m = re.search(r"metrics on (http://127\.0\.0\.1:\d+)/metrics", self.stderr())
        return m and m.group(1)

    def stop(self):
        return stop_process(self.proc)


class Prometheus:
    def __init__(self, target):
        # A fresh TSDB per test: nothing another test scraped is queried.
        self.dir = tempfile.mkdtemp(prefix="prometheus-", dir=TMP)
        os.makedirs(os.path.join(self.dir, "tsdb"))
        conf = os.path.join(self.dir, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: l7tap\n"
                    f"    static_configs:\n      - targets: ['{target}']\n")
        self.base = f"http://127.0.0.1:{PROMETHEUS_PORT}"
        self.name = os.path.basename(self.dir)
        self.proc = spawn(["prometheus", f"--config.file={conf}",
                           f"--storage.tsdb.path={self.dir}/tsdb",
                           f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}",
                           "--log.level=warn"], NS_NODE, self.name)
        wait_until(self.ready, T_EVENT, "Prometheus to be ready", interval=0.2)

    def ready(self):
        if self.proc.poll() is not None:
            with open(os.path.join(TMP, self.name + ".err"), errors="replace") as f:
                raise AssertionError(f"prometheus ended ({self.proc.returncode}): {f.read()}")
        return http_get(self.base + "/-/ready")[0] == 200

    def query(self, promql):
        """The instant vector of `promql`: {frozenset(labels): value}."""
        code, _, body = http_get(self.base + "/api/v1/query?query=" + urllib.parse.quote(promql))
        if code != 200:
            raise AssertionError(f"query {promql}: HTTP {code}: {body}")
        data = json.loads(body)["data"]
        return {frozenset(r["metric"].items()): float(r["value"][1]) for r in data["result"]}

    def wait_for(self, promql, expected, what):
        """Polls until the query's result is `expected`; the last result in
        the failure otherwise."""
        last = {}

        def matches():
            nonlocal last
            last = self.query(promql)
            return last == expected

        try:
            wait_until(matches, T_EVENT, what, interval=0.5)
        except AssertionError as e:
            raise AssertionError(f"{e}:\n  query: {promql}\n  expected: {pretty(expected)}\n"
                                 f"  Prometheus: {pretty(last)}") from None

    def stop(self):
        return stop_process(self.proc)


def pretty(vector):
    return sorted((sorted(k), v) for k, v in vector.items())


def promtool_check(text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


# --- clients --------------------------------------------------------------------------


def curl_codes(urls):
    """One keep-alive HTTP/1.1 connection for `urls`: the status of each."""
    r = sh("curl", "-s", "--noproxy", "*", "--http1.1", "-w", "%{http_code}\n",
           *[x for u in urls for x in (u, "-o", "/dev/null")], ns=NS["a"], check=False)
    return [int(c) for c in r.stdout.split()]


def nghttp_codes(urls):
    """One h2c (prior knowledge) connection for `urls`, as nghttp reports
    each response's :status."""
    r = sh("nghttp", "-v", "-n", *urls, ns=NS["a"], check=False)
    return [int(c) for c in re.findall(r"recv \(stream_id=\d+\) :status: (\d+)", r.stdout)]


def h2load_codes(url, n):
    r = sh("h2load", "-n", n, "-c", 2, url, ns=NS["a"])
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", r.stdout)
    if not m:
        raise AssertionError(f"h2load: {r.stdout}")
    return [200] * int(m.group(1)) + [404] * int(m.group(3))  # only 200s are asked for


def route_of(url):
    path = urllib.parse.urlsplit(url).path
    return "/api/users/{id}" if path.startswith("/api/users/") else path


# --- tests ------------------------------------------------------------------------------


class MetricsTest(unittest.TestCase):
    def setUp(self):
        self.l7tap = L7tap()
        self.prometheus = Prometheus(self.l7tap.base.removeprefix("http://"))

    def tearDown(self):
        self.prometheus.stop()
        rc = self.l7tap.stop()
        PROCS.remove(self.prometheus.proc)
        PROCS.remove(self.l7tap.proc)
        self.assertEqual(rc, 0, self.l7tap.stderr())

    def test_prometheus_scrapes_l7tap(self):
        """The plumbing: Prometheus negotiates and scrapes, the probes answer,
        promtool accepts what a scrape gets."""
        self.prometheus.wait_for('up{job="l7tap"}', {
            frozenset({"__name__": "up", "job": "l7tap",
                       "instance": self.l7tap.base.removeprefix("http://")}.items()): 1.0},
            "Prometheus to scrape l7tap")
        # A scrape sample count only exists for a successful scrape.
        self.assertTrue(self.prometheus.query('scrape_samples_scraped{job="l7tap"}'))
        self.assertEqual(http_get(self.l7tap.base + "/readyz"),
                         (200, "text/plain; charset=utf-8", "ok\n"))
        self.assertEqual(http_get(self.l7tap.base + "/healthz")[::2], (200, "ok\n"))
        self.assertEqual(http_get(self.l7tap.base + "/nothing")[0], 404)
        self.assertEqual(http_get(self.l7tap.base + "/metrics", method="POST")[0], 405)
        code, ctype, body = http_get(self.l7tap.base + "/metrics",
                                     accept="application/openmetrics-text;version=1.0.0")
        self.assertEqual(code, 200)
        self.assertTrue(ctype.startswith("application/openmetrics-text"), ctype)
        self.assertTrue(body.endswith("# EOF\n"), body[-200:])
        code, ctype, body = http_get(self.l7tap.base + "/metrics")
        self.assertEqual((code, ctype), (200, "text/plain; version=0.0.4; charset=utf-8"))
        self.assertEqual(promtool_check(body), (0, ""))

    def test_request_counts_by_status_and_route(self):
        h1 = f"http://{SERVER}:{PORT_NGINX}"
        h2 = f"http://{SERVER}:{PORT_NGHTTPD}"
        done = collections.Counter()  # (status, route) -> requests, as the clients saw them

        def count(urls, codes, what):
            self.assertEqual(len(codes), len(urls), f"{what}: {codes}")
            for u, c in zip(urls, codes):
                done[(str(c), route_of(u))] += 1

        urls = [f"{h1}/api/users/{i}" for i in range(1, USERS + 1)] + [f"{h1}/missing/page"] * 5
        count(urls, curl_codes(urls), "curl")
        # nghttp fetches a URI once however often it is given: queries tell
        # them apart (and the route drops them).
        urls = [f"{h2}/api/users/{i}" for i in range(1, 7)] + [f"{h2}/nope?n={i}" for i in (1, 2)]
        count(urls, nghttp_codes(urls), "nghttp")
        urls = [f"{h2}/api/users/3"] * 40
        count(urls, h2load_codes(urls[0], len(urls)), "h2load")
        self.assertEqual(done[("200", "/api/users/{id}")], USERS + 6 + 40, done)
        self.assertEqual(done[("404", "/missing/page")], 5, done)
        self.assertEqual(done[("404", "/nope")], 2, done)

        # l7tap's own records first: each exchange seen once, so what the
        # metrics must show is what the clients did.
        def records():
            with open(self.l7tap.out_path, errors="replace") as f:
                recs = [json.loads(line) for line in f if line.strip()]
            return collections.Counter(
                (str(r.get("http.response.status_code")), route_of(r.get("url.path", "")))
                for r in recs if r.get("type") == "http")

        try:
            wait_until(lambda: records() == done, T_EVENT, "l7tap's records of every exchange")
        except AssertionError as e:
            raise AssertionError(f"{e}: clients {dict(done)}, records {dict(records())}") from None

        # Needs the MetricsSink (i12-sink) wired in attach: without it no
        # http_server_request_duration_seconds is exposed and this fails.
        expected = {frozenset({"http_response_status_code": s, "http_route": r}.items()): float(n)
                    for (s, r), n in done.items()}
        self.prometheus.wait_for(
            "sum by (http_response_status_code, http_route) "
            "(http_server_request_duration_seconds_count)", expected,
            "Prometheus's request counts to equal the clients'")
        code, _, body = http_get(self.l7tap.base + "/metrics")
        self.assertEqual(code, 200)
        self.assertIn("# TYPE http_server_request_duration_seconds histogram", body)
        self.assertEqual(promtool_check(body), (0, ""))


def main():
    global L7TAP
    args = arguments(__doc__, "logs, TSDB").parse_args()
    L7TAP = os.path.abspath(args.l7tap)
    return run_on_testbed(sys.modules[__name__], args, "metrics e2e tests", "metrics e2e", BED,
                          build_testbed, missing_privileges)


if __name__ == "__main__":
    sys.exit(main())
