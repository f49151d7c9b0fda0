#!/usr/bin/python3
"""Time from a new pod's first packet to its name on l7tap's records.

One `l7tap attach --iface 'i11e<pid>p*'` with the stand-in kubelet runs
(default refresh timer, as deployed) while pods come one after the other, as
a node makes them: the pod in the kubelet's list (--order list-first, as the
kubelet lists a pod once it is bound to the node; --order veth-first puts it
there only after the veth: a list that lags), the sandbox (namespace, pause
process in kubelet-style cgroups), the CNI's veth (l7tap attaches it as it
appears), then an app container that opens a new connection to a server on
the node every 10 ms from its first instant. For each pod: its first packet
is the earliest `time` of its records (a request's time is one round trip
after its connection's first packet; connection records are written at the
end but carry the connection's start), its name is the earliest `time` of a
record that carries its k8s.pod.name; the difference is the latency, to the
10 ms between connections. The median of --runs pods is the number.

Uses the test bed of tests/e2e/test_pod_names.py (imported; it starts
nothing by itself) and holds /tmp/l7tap-e2e.lock like the e2e suites.

Usage: bench/pod_name_latency.py --l7tap build/daemon/l7tap [--runs 7]
       [--order list-first|veth-first]

Measured here (2 shared cores, main at 05f1fa0, --runs 7): list-first 0 ms
(every pod's first record is named); veth-first median 1747 ms (min 155,
max 1775): a pod unknown to the list waits for a refresh, and refreshes for
unknown pods are at least 2 s apart (KubeletLimits
min_unknown_refresh_interval_ns).
"""

import argparse
import calendar
import os
import statistics
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import test_pod_names as tp  # noqa: E402

CLIENT = r"""
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), 0
while True:
    try:
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(b"GET /a.txt?n=%d HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n" % n)
        while s.recv(65536):
            pass
        s.close()
    except OSError:
        pass
    n += 1
    time.sleep(0.01)
"""
PORT = 8080


def record_time(rec):
    """Seconds (float, ns kept as far as a float does) of "time"."""
    whole, _, frac = rec["time"].rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))


def one_pod(i, l7, kubelet, listed, order):
    key = f"p{i}"
    tp.SUBNET[key] = f"10.82.{i + 1}"
    pod = tp.Pod(key, f"bench-7c9d8e6f5-{i:05d}", ("ReplicaSet", "bench-7c9d8e6f5"),
                 [tp.Container("client", "exec")],
                 labels={"pod-template-hash": "7c9d8e6f5"}, driver="systemd", qos="besteffort")
    try:
        if order == "list-first":
            kubelet.set_pods(listed + [pod])
            kubelet.wait_list_taken()
        pod.start()
        if order == "veth-first":
            kubelet.set_pods(listed + [pod])
        client = pod.spawn(pod.container("client"),
                           [tp.PYTHON, "-c", CLIENT, tp.SUBNET[key] + ".1", PORT])
        tp.wait_until(lambda: any(r.get("k8s.pod.name") == pod.name for r in l7.records()),
                      tp.T_EVENT, f"a record naming {pod.name}")
        tp.stop_process(client)
        tp.wait_connections_closed([pod.ns])
        tp.wait_until(lambda: not any(tp.open_connections(tp.NS_NODE)), tp.T_EVENT, "node conns")
    finally:
        pod.stop()
    recs = [r for r in l7.records() if r.get("client.address") == pod.addr]
    # Connection records come at the end of a connection (or of l7tap):
    # the first packet is the earliest time of any record of the pod's, a
    # connection's or its request's (the request starts one round trip
    # after the connection's first packet).
    first = min(record_time(r) for r in recs)
    named = min(record_time(r) for r in recs if r.get("k8s.pod.name") == pod.name)
    before = sum(1 for r in recs if r.get("type") == "http" and "k8s.pod.name" not in r
                 and record_time(r) < named)
    wrong = [r for r in recs if r.get("k8s.pod.name") not in (None, pod.name)]
    return named - first, before, len(wrong)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--l7tap", required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--order", choices=["list-first", "veth-first"], default="list-first",
                    help="list-first: the kubelet lists the pod (as it does once the pod is "
                         "bound to the node) before its sandbox and veth exist; veth-first: the "
                         "list lags behind the veth (l7tap must ask again)")
    ap.add_argument("--keep-temp", action="store_true")
    args = ap.parse_args()
    tp.ARGS = args
    tp.L7TAP = os.path.abspath(args.l7tap)
    reason = tp.missing_privileges()
    if reason:
        print(f"cannot run: {reason}")
        return 1
    lock = tp.hold_e2e_lock(tp.log)
    results = []
    try:
        tp.remove_stale()
        tp.TMP = tempfile.mkdtemp(prefix=f"{tp.PREFIX}-")
        tp.build_node()
        tp.spawn([tp.PYTHON, "-m", "http.server", PORT, "--bind", "0.0.0.0", "--directory", tp.DOC],
                 "node-server", ns=tp.NS_NODE)
        tp.wait_port(tp.NS_NODE, PORT)
        kubelet = tp.Kubelet().start([])
        l7 = tp.L7tap([f"{tp.PREFIX}p*"], kubelet.url(), output="json", refresh=None).start()
        for i in range(args.runs):
            latency, before, wrong = one_pod(i, l7, kubelet, [], args.order)
            results.append(latency)
            print(f"pod {i}: {latency * 1000:.0f} ms from its first packet to its name "
                  f"({before} requests unnamed before, {wrong} wrong names)", flush=True)
        l7.stop()
        print("\n".join(ln for ln in l7.stderr().splitlines() if "pod names" in ln))
        print(f"kubelet requests: {len(kubelet.served())}")
    finally:
        tp.CLEANUP.run()
        lock.close()
    if results:
        print(f"--order {args.order}: median of {len(results)} pods: {statistics.median(results) * 1000:.0f} ms "
              f"(min {min(results) * 1000:.0f}, max {max(results) * 1000:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
