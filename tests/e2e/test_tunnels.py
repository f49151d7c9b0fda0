#!/usr/bin/python3
"""Privileged end-to-end test of `l7tap attach` on an overlay's underlay.

Two network namespaces, two "nodes", joined by a veth pair, the underlay;
in each a VXLAN device (dstport 4789) over it carries the overlay:

    node a: PREFIXu 10.211.0.1 fd11::1 ──veth── PREFIXv 10.211.0.2 fd11::2 :node b
            PREFIXx vxlan id 42 10.212.0.1    ·    PREFIXx vxlan id 42 10.212.0.2
            PREFIXy vxlan id 4242 (over IPv6) 10.213.0.1 · 10.213.0.2

A python3 http.server listens on the overlay addresses in node b; curl
runs in node a over the overlay; l7tap attaches to node a's underlay veth
only, where every packet of the HTTP connection is VXLAN. The records must
be the inner flow's (addresses, method, status) and the connection record
must name the tunnel: `l7tap.tunnel.type` "vxlan", `l7tap.tunnel.id`, and
the outer addresses of client and server. The exchange records carry none
of it.

Geneve is not tested here: this machine's kernel has no Geneve device
(CONFIG_GENEVE is off, only VXLAN is built in). The kernel program's Geneve
decapsulation is covered by tests/tc/tunnel_test.cc (BPF_PROG_TEST_RUN).

Everything created (namespaces with their links, processes, the temp dir)
is removed on pass, failure, exception and SIGINT/SIGTERM; names start with
h3v<pid>. The run holds the flock on /tmp/l7tap-e2e.lock.

Usage: test_tunnels.py --l7tap PATH [--keep-temp] [TestClass[.test_name] ...]

Without root, BPF, network namespaces or VXLAN the tests skip with the
reason; with L7TAP_REQUIRE_PRIVILEGED set (non-empty, not "0") a skip is a
failure. The last line is "N passed, N failed, N skipped"; the exit status
is non-zero on failure.
"""

import json
import os
import signal
import subprocess
import sys
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
TOOLS = ["ip", "curl", "bpftool", "ss", "python3"]


def log(msg):
    print(f"[tunnels] {msg}", file=sys.stderr, flush=True)


# The namespaces are the two nodes; Testbed's pods are only names here (no
# node namespace, no routing through one).
BED = Testbed("h3v", {"a": "10.211.0", "b": "10.211.0"}, log, T_EVENT, signal.SIGTERM)
PREFIX, NS = BED.prefix, BED.ns
UNDERLAY = {"a": PREFIX + "u", "b": PREFIX + "v"}  # the veth pair's ends
UNDERLAY4 = {"a": "10.211.0.1", "b": "10.211.0.2"}
UNDERLAY6 = {"a": "fd11::1", "b": "fd11::2"}
# Overlays: VXLAN device name suffix, VNI, underlay addresses, overlay subnet.
OVERLAYS = {
    "v4": {"dev": PREFIX + "x", "vni": 42, "under": UNDERLAY4, "net": "10.212.0"},
    "v6": {"dev": PREFIX + "y", "vni": 4242, "under": UNDERLAY6, "net": "10.213.0"},
}
PORT = 8000
L7TAP = None
TMP = None


def missing_privileges():
    problem = basic_problem(L7TAP, TOOLS, f"{PREFIX}-probe")
    if problem:
        return problem
    # VXLAN devices: this kernel may lack them (CONFIG_VXLAN).
    probe = f"{PREFIX}-probe"
    try:
        sh("ip", "netns", "add", probe)
        r = sh("ip", "-n", probe, "link", "add", PREFIX + "p", "type", "vxlan", "id", "1",
               "dstport", "4789", "local", "127.0.0.1", check=False)
        if r.returncode != 0:
            return "no VXLAN devices in this kernel: " + r.stderr.strip()
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return ""


def build_testbed():
    global TMP
    TMP = BED.tmp
    for node in ("a", "b"):
        BED.add_namespace(NS[node])
    sh("ip", "-n", NS["a"], "link", "add", UNDERLAY["a"], "type", "veth", "peer", "name",
       UNDERLAY["b"], "netns", NS["b"])
    for node in ("a", "b"):
        ns, dev = NS[node], UNDERLAY[node]
        sh("ip", "-n", ns, "addr", "add", UNDERLAY4[node] + "/24", "dev", dev)
        sh("ip", "-n", ns, "addr", "add", UNDERLAY6[node] + "/64", "dev", dev, "nodad")
        sh("ip", "-n", ns, "link", "set", dev, "up")
    for overlay in OVERLAYS.values():
        for node, peer, host in (("a", "b", "1"), ("b", "a", "2")):
            ns = NS[node]
            sh("ip", "-n", ns, "link", "add", overlay["dev"], "type", "vxlan", "id",
               overlay["vni"], "local", overlay["under"][node], "remote", overlay["under"][peer],
               "dstport", "4789", "dev", UNDERLAY[node])
            sh("ip", "-n", ns, "addr", "add", f"{overlay['net']}.{host}/24", "dev", overlay["dev"])
            sh("ip", "-n", ns, "link", "set", overlay["dev"], "up")
    root = os.path.join(TMP, "www")
    os.makedirs(root)
    with open(os.path.join(root, "hello.txt"), "w") as f:
        f.write("hello over the overlay\n" * 40)
    for name, overlay in OVERLAYS.items():
        BED.spawn(["python3", "-m", "http.server", PORT, "--bind", overlay["net"] + ".2",
                   "--directory", root], NS["b"], f"server-{name}")
    BED.wait_port(NS["b"], PORT)
    wait_until(lambda: len(sh("ss", "-Hltn", f"sport = :{PORT}", ns=NS["b"]).stdout
                           .strip().splitlines()) == len(OVERLAYS), T_EVENT, "both servers")


def records(daemon):
    return [json.loads(line) for line in daemon.stdout_lines() if line.startswith("{")]


class VxlanUnderlay(unittest.TestCase):
    """l7tap on node a's underlay veth, curl from node a to node b over VXLAN."""

    def setUp(self):
        self.daemon = Daemon(BED, [L7TAP, "attach", "--iface", UNDERLAY["a"], "--output", "json",
                                   "--kubelet", "none", "--metrics-addr", "none"],
                             NS["a"], ready=(f"attached to {UNDERLAY['a']}",))
        self.addCleanup(self.stop)

    def stop(self):
        if self.daemon.proc in BED.procs:
            self.daemon.stop()

    def curl(self, overlay, path):
        url = f"http://{overlay['net']}.2:{PORT}{path}"
        r = sh("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", T_EVENT, url,
               ns=NS["a"])
        return int(r.stdout)

    def check_overlay(self, name):
        overlay = OVERLAYS[name]
        self.assertEqual(self.curl(overlay, "/hello.txt"), 200)
        self.assertEqual(self.curl(overlay, "/missing"), 404)
        client, server = overlay["net"] + ".1", overlay["net"] + ".2"
        self.assertEqual(self.daemon.stop(), 0, self.daemon.stderr())
        recs = records(self.daemon)
        http = [r for r in recs if r.get("type") == "http" and r.get("server.address") == server]
        self.assertEqual(sorted((r.get("url.path"), r.get("http.response.status_code"))
                                for r in http),
                         [("/hello.txt", 200), ("/missing", 404)], recs)
        for r in http:
            self.assertEqual(r.get("http.request.method"), "GET", r)
            self.assertEqual(r.get("client.address"), client, r)
            self.assertEqual(r.get("server.port"), PORT, r)
            self.assertEqual(r.get("network.type"), "ipv4", r)
            self.assertFalse([k for k in r if k.startswith("l7tap.tunnel.")],
                             f"an exchange record with tunnel fields: {r}")
        conn_ids = {r["l7tap.connection_id"] for r in http}
        conns = [r for r in recs if r.get("type") == "conn"
                 and r.get("l7tap.connection_id") in conn_ids]
        self.assertEqual(len(conns), 2, recs)
        for c in conns:
            self.assertEqual(c.get("client.address"), client, c)
            self.assertEqual(c.get("server.address"), server, c)
            self.assertEqual(c.get("l7tap.tunnel.type"), "vxlan", c)
            self.assertEqual(c.get("l7tap.tunnel.id"), overlay["vni"], c)
            self.assertEqual(c.get("l7tap.tunnel.client.address"), overlay["under"]["a"], c)
            self.assertEqual(c.get("l7tap.tunnel.server.address"), overlay["under"]["b"], c)
        # The kernel's summary: flows created by encapsulated packets.
        kernel = [line for line in self.daemon.stderr().splitlines() if "l7tap: kernel:" in line]
        self.assertTrue(kernel, self.daemon.stderr())
        counts = dict(item.rsplit(" ", 1) for item in
                      kernel[-1].split("l7tap: kernel: ", 1)[1].split(", "))
        self.assertGreaterEqual(int(counts["tunnel_flows"]), 2, kernel[-1])

    def test_vxlan_over_ipv4(self):
        self.check_overlay("v4")

    def test_vxlan_over_ipv6(self):
        self.check_overlay("v6")


def main():
    global L7TAP
    args = arguments(__doc__, "logs").parse_args()
    L7TAP = os.path.abspath(args.l7tap)
    return run_on_testbed(sys.modules[__name__], args, "tunnel e2e tests", "tunnel e2e", BED,
                          build_testbed, missing_privileges)


if __name__ == "__main__":
    sys.exit(main())
