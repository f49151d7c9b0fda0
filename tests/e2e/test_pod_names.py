#!/usr/bin/python3
"""Privileged end-to-end tests of pod names on records (issue 11).

A node with pods, as the kubelet would lay them out, and a stand-in kubelet:

    checkout (shop, Deployment)   eth0 10.81.1.2 ──veth── i11e<pid>a 10.81.1.1 ┐
    payments-0 (shop, StatefulSet) eth0 10.81.2.2 ──veth── i11e<pid>b 10.81.2.1 ┤ node namespace:
    cart (shop, Deployment; the restart test) 10.81.3.2 ── i11e<pid>c 10.81.3.1 ┘ router, l7tap,
                                                                  stand-in kubelet, host-network pod

Each pod is a network namespace whose processes sit in cgroups laid out like
the kubelet's on the cgroup v2 mount (found in /proc/mounts), under a parent
of this run's own (<v2>/i11e-<pid>): a sandbox ("pause", a copy of sleep) and
app containers, checkout with the systemd driver
(kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<UID>.slice/
cri-containerd-<ID>.scope), payments with the cgroupfs driver
(kubepods/besteffort/pod<UID>/<ID>). checkout's app container is a
long-running process named "checkout", and its clients (curl, loadgen.py)
run in that container's cgroup; payments has two containers, "api" (python3
http.server on 8080) and "admin" (on 9090), each in its own cgroup. The
host-network pod (monitoring/node-exporter, a DaemonSet) is a server in the
node namespace, which plays the node's root namespace here: l7tap runs there
too, and its kubelet is tests/kubelet/stand_in_kubelet.py on the node's
127.0.0.1 (HTTPS with a certificate made by openssl per run and a Bearer
token), whose pod list and mode (ok, garbage, hang) the tests change while
l7tap runs; a kubelet that is down is a stopped one.

The tests: both pods named on every record, from the client's veth and
from the server's; a pod with two containers, each its own port; a pod
restarted with a new UID on the same address (the list lagging, then
catching up); an app container that starts after its veth was scanned; a
pod deleted from the list while a connection is open; a kubelet that is
down, hangs or answers garbage from the start, or after one good list; a
host-network pod, whose addresses name no pod.

Every test checks l7tap's JSON lines and its journal entries (a journald of
this run's own, in a journal namespace) against the pods it made: the
observed pod (k8s.*), its side (l7tap.observed.side) and the peer
(l7tap.peer.k8s.*), or their absence; the JSON and journal fields agree
record for record. Never a wrong pod: every name on every record is checked
against the pod that was at that address or behind that interface.

Nothing depends on how fast the machine is: waits are for events (a line on
l7tap's stderr, the stand-in kubelet having served a given list twice since
it changed, connections closed), with generous timeouts that only bound a
failure. Everything created (namespaces, veths, cgroups, processes, the
journald, temp files) is removed on pass, failure, exception and
SIGINT/SIGTERM; names start with i11e<pid>. The run holds the flock on
/tmp/l7tap-e2e.lock so that no other e2e suite runs meanwhile.

Usage: test_pod_names.py --l7tap PATH [--keep-temp] [TestClass[.test_name] ...]

Without root, BPF, network namespaces or cgroup v2 the tests skip with the
reason; with L7TAP_REQUIRE_PRIVILEGED set (non-empty, not "0") a skip is a
failure. The last line is "N passed, N failed, N skipped"; the exit status is
non-zero on failure.
"""

import collections
import hashlib
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
import time
import unittest
import uuid

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Its helpers only; importing it starts nothing (its tests run from its main()).
from test_live import (conns_of, http_of, sh, stop_process, wait_until)  # noqa: E402
from privileged_suite import (arguments, basic_problem, cannot_run, hold_e2e_lock,  # noqa: E402
                              ignore_signals, interrupt_on_signals, load_suite, remove_temp,
                              run_tests, tally)
from netns import delete_namespace, namespaces_left, netns_list, remove_stale_namespaces  # noqa: E402

PID = os.getpid()
PREFIX = f"i11e{PID}"  # every namespace, interface and cgroup made here starts with it
NS_NODE = f"{PREFIX}-node"
NODE = "i11e-node"  # --node-name, and spec.nodeName of every pod
T_EVENT = 60  # bounds a wait for something bound to happen; never a timing assumption
HERE = os.path.dirname(os.path.abspath(__file__))
LOADGEN = os.path.join(HERE, "loadgen.py")
STAND_IN = os.path.join(HERE, "..", "kubelet", "stand_in_kubelet.py")
PYTHON = "/usr/bin/python3"
JOURNALD = "/lib/systemd/systemd-journald"
JOURNAL_NS = PREFIX
JOURNAL_DIR = f"/run/systemd/journal.{JOURNAL_NS}"
TOKEN = "i11e-token-" + uuid.uuid4().hex
SUBNET = {"a": "10.81.1", "b": "10.81.2", "c": "10.81.3"}
PORT_API, PORT_ADMIN, PORT_CART, PORT_EXPORTER = 8080, 9090, 8080, 9100
TOOLS = ["ip", "curl", "openssl", "journalctl", "ss", "unshare", "mount", "bpftool"]

ARGS = None
TMP = None
L7TAP = None
CGROUP_ROOT = None  # <cgroup v2 mount>/i11e-<pid>


def log(msg):
    print(f"[pod-names] {msg}", file=sys.stderr, flush=True)


# --- cleanup ------------------------------------------------------------------


class Cleanup:
    """Everything this run created, removed in reverse order, once."""

    def __init__(self):
        self.procs = []
        self.namespaces = []
        self.journald = None
        self.journal_keepalive = None  # a socket
        self.journal_paths = []
        self.done = False

    def run(self):
        if self.done:
            return
        self.done = True
        ignore_signals()
        # l7tap first and with SIGTERM, so that it detaches.
        for p in sorted(self.procs, key=lambda p: not getattr(p, "is_l7tap", False)):
            stop_process(p, timeout=10)
        if CGROUP_ROOT:
            remove_cgroup_tree(CGROUP_ROOT)
        for ns in reversed(self.namespaces):
            delete_namespace(ns)
        if self.journal_keepalive is not None:
            self.journal_keepalive.close()
        if self.journald is not None:
            stop_process(self.journald, timeout=5)
            for path in self.journal_paths:
                shutil.rmtree(path, ignore_errors=True)
        remove_temp(TMP, ARGS and ARGS.keep_temp, log)


CLEANUP = Cleanup()


def cgroup2_mount():
    with open("/proc/mounts") as f:
        for line in f:
            words = line.split()
            if len(words) >= 3 and words[2] == "cgroup2":
                return words[1]
    return None


def cgroup_populated(path):
    try:
        with open(os.path.join(path, "cgroup.events")) as f:
            return "populated 1" in f.read()
    except OSError:
        return False


def remove_cgroup_tree(path):
    """Kills every process under `path` (cgroup.kill) and removes the
    cgroups, deepest first."""
    if not os.path.isdir(path):
        return
    try:
        with open(os.path.join(path, "cgroup.kill"), "w") as f:
            f.write("1")
    except OSError:
        for dirpath, _dirs, _files in os.walk(path):
            try:
                with open(os.path.join(dirpath, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
    try:
        wait_until(lambda: not cgroup_populated(path), T_EVENT, f"{path} to empty")
    except AssertionError as e:
        log(f"ERROR: {e}")
    for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda w: -w[0].count("/")):
        try:
            os.rmdir(dirpath)
        except OSError as e:
            log(f"ERROR: cannot remove cgroup {dirpath}: {e}")


def remove_stale():
    """Namespaces and cgroups of earlier runs whose process is gone."""
    remove_stale_namespaces(r"i11e(\d+)-\w+", log)
    v2 = cgroup2_mount()
    for name in os.listdir(v2) if v2 else []:
        m = re.fullmatch(r"i11e-(\d+)", name)
        if m and int(m.group(1)) != PID and not os.path.exists(f"/proc/{m.group(1)}"):
            log(f"removing cgroup {name}, left behind by an earlier run")
            remove_cgroup_tree(os.path.join(v2, name))


# --- processes ------------------------------------------------------------------

TEST_PROCS = None  # processes of the running test, stopped by its cleanup


def spawn(cmd, name, ns=None, cgroup=None, stdin=None, stdout=None, l7tap=False):
    """Starts cmd in the background, in namespace ns and cgroup `cgroup`
    (joined before the exec, so the program and its children are in it);
    the Popen pid is the program itself. Output goes to TMP/name.{out,err}."""
    full = [str(c) for c in cmd]
    if ns:
        full = ["ip", "netns", "exec", ns] + full
    if cgroup:
        full = ["sh", "-c", 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', "sh",
                cgroup] + full
    p = subprocess.Popen(full, stdin=stdin or subprocess.DEVNULL,
                         stdout=stdout or open(os.path.join(TMP, name + ".out"), "wb"),
                         stderr=open(os.path.join(TMP, name + ".err"), "wb"),
                         start_new_session=True)
    p.is_l7tap = l7tap
    p.label = name
    CLEANUP.procs.append(p)
    if TEST_PROCS is not None:
        TEST_PROCS.append(p)
    return p


def run_in(cmd, ns=None, cgroup=None, timeout=3 * T_EVENT):
    """Runs cmd to its end (in ns and cgroup), returns CompletedProcess."""
    full = [str(c) for c in cmd]
    if ns:
        full = ["ip", "netns", "exec", ns] + full
    if cgroup:
        full = ["sh", "-c", 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', "sh",
                cgroup] + full
    return subprocess.run(full, capture_output=True, text=True, timeout=timeout)


def read_line(proc, what):
    """The next line of proc's stdout (a pipe), waiting at most T_EVENT."""
    ready, _, _ = select.select([proc.stdout], [], [], T_EVENT)
    if not ready:
        raise AssertionError(f"no line from {what} within {T_EVENT} s")
    return proc.stdout.readline().decode()


def wait_port(ns, port):
    wait_until(lambda: sh("ss", "-Hltn", f"sport = :{port}", ns=ns).stdout.strip(), T_EVENT,
               f"a listener on port {port} in {ns}")


def open_connections(ns):
    """TCP connections of ns between pod or node addresses (not l7tap's to
    the kubelet on 127.0.0.1) that are neither listening nor in TIME-WAIT."""
    r = sh("ss", "-Htan", ns=ns, check=False)
    out = []
    for ln in r.stdout.splitlines():
        w = ln.split()
        if len(w) >= 5 and w[0] not in ("LISTEN", "TIME-WAIT") and \
                any(a.startswith(("10.81.", "10.82.")) for a in w[3:5]):
            out.append(ln)
    return out


def wait_connections_closed(namespaces):
    """Until every TCP connection in these namespaces is closed on both ends
    (so its last packets went through l7tap's hooks)."""
    def still_open():
        return [c for ns in namespaces if ns in netns_list() for c in open_connections(ns)]
    try:
        wait_until(lambda: not still_open(), T_EVENT, "connections to close")
    except AssertionError as e:
        raise AssertionError(f"{e}: {still_open()}") from None


# --- journald -------------------------------------------------------------------------


def journal_socket_works():
    path = JOURNAL_DIR + "/socket"
    if not os.path.exists(path):
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def start_journald():
    with open("/etc/machine-id") as f:
        machine = f.read().strip()
    CLEANUP.journal_paths += [JOURNAL_DIR, f"/var/log/journal/{machine}.{JOURNAL_NS}",
                              f"/run/log/journal/{machine}.{JOURNAL_NS}"]
    CLEANUP.journald = subprocess.Popen([JOURNALD, JOURNAL_NS], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
    wait_until(journal_socket_works, T_EVENT, "journald's socket")
    # A journald of a journal namespace exits after 30 s without a client
    # (systemd's idle timer for namespaces), which a test that waits on the
    # kubelet can exceed between two l7tap runs: an open stdout stream is a
    # client, held until the cleanup.
    keep = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    keep.connect(JOURNAL_DIR + "/stdout")
    keep.sendall(f"i11e-keepalive-{PID}\n\n6\n0\n0\n0\n0\n".encode())
    CLEANUP.journal_keepalive = keep


def journal_wrap():
    """A private mount namespace where this run's journal socket is at
    /run/systemd/journal (as in test_live.py)."""
    bind = os.path.join(TMP, "journal-bind")
    os.makedirs(bind, exist_ok=True)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'j=$1; b=$2; shift 2; mount --bind "$j" "$b" && '
            'mount -t tmpfs i11e-e2e /run/systemd && mkdir /run/systemd/journal && '
            'mount --bind "$b" /run/systemd/journal && exec "$@"', "sh", JOURNAL_DIR, bind]


def journal_name(field):
    return re.sub(r"[^A-Za-z0-9]", "_", field).upper()


# --- pods ----------------------------------------------------------------------------------


def hex64():
    return uuid.uuid4().hex + uuid.uuid4().hex


BIN = None  # TMP/bin: copies of sleep named pause and checkout (their comm)
DOC = None  # served by the python servers


class Container:
    def __init__(self, name, kind, port=None):
        self.name = name
        self.kind = kind  # "pause", "sleeper" (a copy of sleep named after `name`) or "http"
        self.port = port
        self.id = hex64()


class Pod:
    """One pod: its network namespace and veth (none for host network), its
    kubelet-style cgroups and processes, and its entry in the pod list."""

    def __init__(self, key, name, owner, containers, namespace="shop", labels=None,
                 driver="systemd", qos="burstable", host_network=False):
        self.key = key
        self.name = name
        self.namespace = namespace
        self.owner = owner  # (kind, name) of the controller
        self.labels = labels or {}
        self.driver = driver
        self.qos = qos
        self.host_network = host_network
        self.uid = str(uuid.uuid4())
        self.pause = Container("pause", "pause")
        self.containers = list(containers)
        self.ns = NS_NODE if host_network else f"{PREFIX}-{key}"
        self.iface = None if host_network else f"{PREFIX}{key}"
        if host_network:  # a host-network pod's addresses are the node's
            self.addrs = [SUBNET["a"] + ".1", SUBNET["b"] + ".1"]
        else:
            self.addrs = [SUBNET[key] + ".2"]
        self.addr = self.addrs[0]
        self.deleting = False  # listed with a deletionTimestamp
        self.comms = {"pause"}
        self.netns_inode = None

    # -- pod list
    def workload(self):
        """The OpenTelemetry attribute l7tap should give (name, value)."""
        kind, name = self.owner
        if kind == "ReplicaSet" and name.endswith("-" + self.labels.get("pod-template-hash", "\0")):
            return "k8s.deployment.name", name.rsplit("-", 1)[0]
        return f"k8s.{kind.lower()}.name", name

    def entry(self):
        meta = {"name": self.name, "namespace": self.namespace, "uid": self.uid,
                "labels": self.labels, "creationTimestamp": "2026-12-04T23:00:00Z",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": self.owner[0],
                                     "name": self.owner[1], "uid": str(uuid.uuid4()),
                                     "controller": True, "blockOwnerDeletion": True}]}
        if self.deleting:
            meta["deletionTimestamp"] = "2026-12-04T23:30:00Z"
            meta["deletionGracePeriodSeconds"] = 30
        spec = {"nodeName": NODE, "containers": [{"name": c.name, "image": f"shop/{c.name}:1"}
                                                  for c in self.containers]}
        if self.host_network:
            spec["hostNetwork"] = True
        status = {"phase": "Running", "hostIP": SUBNET["a"] + ".1", "podIP": self.addr,
                  "podIPs": [{"ip": a} for a in self.addrs],
                  "containerStatuses": [
                      {"name": c.name, "ready": True, "restartCount": 0, "image": f"shop/{c.name}:1",
                       "containerID": "containerd://" + c.id,
                       "state": {"running": {"startedAt": "2026-12-04T23:00:01Z"}}}
                      for c in self.containers]}
        return {"metadata": meta, "spec": spec, "status": status}

    # -- cgroups
    def pod_cgroup(self):
        uid_ = self.uid.replace("-", "_")
        if self.driver == "systemd":
            if self.qos == "guaranteed":
                return f"{CGROUP_ROOT}/kubepods.slice/kubepods-pod{uid_}.slice"
            return (f"{CGROUP_ROOT}/kubepods.slice/kubepods-{self.qos}.slice/"
                    f"kubepods-{self.qos}-pod{uid_}.slice")
        if self.qos == "guaranteed":
            return f"{CGROUP_ROOT}/kubepods/pod{self.uid}"
        return f"{CGROUP_ROOT}/kubepods/{self.qos}/pod{self.uid}"

    def cgroup(self, container):
        if self.driver == "systemd":
            return f"{self.pod_cgroup()}/cri-containerd-{container.id}.scope"
        return f"{self.pod_cgroup()}/{container.id}"

    def container(self, name):
        return next(c for c in self.containers if c.name == name)

    # -- life
    def start(self):
        """As a node does it: the sandbox's namespace and pause process
        first, then the CNI's veth, then the app containers."""
        self.start_sandbox()
        self.start_containers()

    def start_sandbox(self):
        if not self.host_network:
            if self.ns not in CLEANUP.namespaces:
                CLEANUP.namespaces.append(self.ns)
            sh("ip", "netns", "add", self.ns)
            sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        self.netns_inode = os.stat(f"/run/netns/{self.ns}").st_ino
        for c in [self.pause] + self.containers:
            os.makedirs(self.cgroup(c))
        if not self.host_network:  # a host-network pod's sandbox has no netns of its own to hold
            self.spawn(self.pause, [os.path.join(BIN, "pause"), "infinity"])
            self.wait_process(self.pause, "pause")
            net = SUBNET[self.key]
            sh("ip", "-n", NS_NODE, "link", "add", self.iface, "type", "veth", "peer", "name", "eth0",
               "netns", self.ns)
            sh("ip", "-n", NS_NODE, "addr", "add", f"{net}.1/24", "dev", self.iface)
            sh("ip", "-n", NS_NODE, "link", "set", self.iface, "up")
            sh("ip", "-n", self.ns, "addr", "add", f"{net}.2/24", "dev", "eth0")
            sh("ip", "-n", self.ns, "link", "set", "eth0", "up")
            sh("ip", "-n", self.ns, "route", "add", "default", "via", f"{net}.1")

    def start_containers(self):
        for c in self.containers:
            if c.kind == "sleeper":
                shutil.copy("/bin/sleep", os.path.join(BIN, c.name))
                self.spawn(c, [os.path.join(BIN, c.name), "infinity"])
                self.wait_process(c, c.name)
                self.comms.add(c.name)
            elif c.kind == "http":
                bind = "0.0.0.0" if self.host_network else self.addr
                self.spawn(c, [PYTHON, "-m", "http.server", c.port, "--bind", bind, "--directory",
                               DOC, "--protocol", "HTTP/1.1"])
                self.comms.add("python3")
            # "exec": an empty container; the caller runs what it wants in it
        for c in self.containers:
            if c.port:
                wait_port(self.ns, c.port)

    def wait_process(self, container, comm):
        """Until a process named comm runs in the container's cgroup (and
        so in the pod's namespace: it joined it before the exec)."""
        def there():
            try:
                with open(os.path.join(self.cgroup(container), "cgroup.procs")) as f:
                    pids = f.read().split()
                for pid in pids:
                    with open(f"/proc/{pid}/comm") as f:
                        if f.read().strip() == comm:
                            return True
            except OSError:
                pass
            return False
        wait_until(there, T_EVENT, f"{comm} in {self.name}'s container {container.name}")

    def spawn(self, container, cmd, **kw):
        return spawn(cmd, f"{self.name}-{container.name}-{len(CLEANUP.procs)}", ns=self.ns,
                     cgroup=self.cgroup(container), **kw)

    def run(self, container_name, cmd, **kw):
        """Runs cmd to its end in one of this pod's containers."""
        comm = os.path.basename(str(cmd[0]))
        self.comms.add(comm)
        return run_in(cmd, ns=self.ns, cgroup=self.cgroup(self.container(container_name)), **kw)

    def stop(self):
        """The pod's processes and cgroups go, then its namespace (and veth)."""
        remove_cgroup_tree(self.pod_cgroup())
        if self.host_network:
            return
        delete_namespace(self.ns)
        if self.ns in CLEANUP.namespaces:
            CLEANUP.namespaces.remove(self.ns)
        wait_until(lambda: self.iface not in node_links(), T_EVENT, f"{self.iface} to go")


def node_links():
    r = sh("ip", "-n", NS_NODE, "-j", "link", "show")
    return {link["ifname"] for link in json.loads(r.stdout or "[]")}


def make_checkout():
    return Pod("a", "checkout-7d9f8b6c5-x2k4p", ("ReplicaSet", "checkout-7d9f8b6c5"),
               [Container("checkout", "sleeper")],
               labels={"app": "checkout", "pod-template-hash": "7d9f8b6c5"},
               driver="systemd", qos="burstable")


def make_payments():
    return Pod("b", "payments-0", ("StatefulSet", "payments"),
               [Container("api", "http", PORT_API), Container("admin", "http", PORT_ADMIN)],
               labels={"app": "payments", "controller-revision-hash": "payments-6c8d9f"},
               driver="cgroupfs", qos="besteffort")


def make_cart(suffix):
    return Pod("c", f"cart-5f6d7c8b9-{suffix}", ("ReplicaSet", "cart-5f6d7c8b9"),
               [Container("web", "http", PORT_CART)],
               labels={"app": "cart", "pod-template-hash": "5f6d7c8b9"},
               driver="systemd", qos="besteffort")


def make_exporter():
    return Pod("node", "node-exporter-q8z7r", ("DaemonSet", "node-exporter"),
               [Container("exporter", "http", PORT_EXPORTER)], namespace="monitoring",
               driver="systemd", qos="guaranteed", host_network=True)


# --- the stand-in kubelet -----------------------------------------------------------------


class Kubelet:
    """tests/kubelet/stand_in_kubelet.py in the node namespace: its pod list
    (set_pods), its mode (set_mode) and the requests it answered (served)."""

    counter = 0

    def __init__(self):
        Kubelet.counter += 1
        self.name = f"kubelet-{Kubelet.counter}"
        self.pods_path = os.path.join(TMP, self.name + ".pods.json")
        self.control = os.path.join(TMP, self.name + ".mode")
        self.log_path = os.path.join(TMP, self.name + ".log")
        self.proc = None
        self.port = 0
        self.sha = None

    def start(self, pods, mode="ok"):
        self.set_pods(pods)
        self.set_mode(mode)
        open(self.log_path, "a").close()
        self.proc = spawn([PYTHON, STAND_IN, "--cert", CERT, "--key", KEY, "--token", TOKEN,
                           "--pods", self.pods_path, "--control", self.control, "--log",
                           self.log_path, "--port", self.port], self.name, ns=NS_NODE,
                          stdout=subprocess.PIPE)
        line = read_line(self.proc, self.name).strip()
        if not line.isdigit():
            raise AssertionError(f"{self.name} did not start: {line!r}")
        self.port = int(line)
        return self

    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def stop(self):
        stop_process(self.proc)

    def set_pods(self, pods):
        body = json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {},
                           "items": [p.entry() for p in pods]}, indent=1).encode()
        tmp = self.pods_path + ".new"
        with open(tmp, "wb") as f:
            f.write(body)
        os.rename(tmp, self.pods_path)  # a request reads the old or the new list, whole
        self.sha = hashlib.sha1(body).hexdigest()
        return self.sha

    def set_mode(self, mode):
        with open(self.control + ".new", "w") as f:
            f.write(mode + "\n")
        os.rename(self.control + ".new", self.control)

    def served(self):
        with open(self.log_path) as f:
            return [ln.split() for ln in f if ln.endswith("\n")]

    def wait_served(self, what, count=2):
        """Until `count` requests were answered with `what` (a mode, or the
        current list's sha1) since the last change: with one fetch at a time,
        the second means l7tap has taken in the first."""
        def n():
            return sum(1 for w in self.served() if what in (w[1], w[2]))
        start = n()
        wait_until(lambda: n() >= start + count, T_EVENT,
                   f"{self.name} to answer {count} requests with {what}")

    def wait_list_taken(self):
        self.wait_served(self.sha)


# --- l7tap ---------------------------------------------------------------------------------


class L7tap:
    """One `l7tap attach` in the node namespace, with this run's kubelet
    options, its JSON lines in a file and (unless output is json) its
    journal entries in this run's journald."""

    counter = 0

    def __init__(self, ifaces, kubelet_url, *extra, output="both", refresh=1):
        L7tap.counter += 1
        self.name = f"l7tap-{L7tap.counter}"
        lock_dir = os.path.join(TMP, "locks")
        os.makedirs(lock_dir, exist_ok=True)
        self.wrap = journal_wrap() if output != "json" else []
        self.args = ["attach", "--output", output, "--interim", 0, "--kubelet", kubelet_url,
                     "--kubelet-token", TOKEN_FILE, "--kubelet-ca", CERT, "--node-name", NODE,
                     "--lock-dir", lock_dir,
                     # Records are found by their query (q=...), which is redacted by default.
                     "--keep-query",
                     # No endpoint: suites run beside each other (tests/e2e/test_metrics.py).
                     "--metrics-addr", "none"]
        if refresh is not None:  # 1 s: changes of the list reach l7tap soon (waited for, not slept)
            self.args += ["--kubelet-refresh", refresh]
        for ifc in ifaces:
            self.args += ["--iface", ifc]
        self.args += list(extra)
        self.out_path = os.path.join(TMP, self.name + ".jsonl")
        self.err_path = os.path.join(TMP, self.name + ".err")
        self.proc = None

    def start(self, attached=()):
        self.proc = spawn(self.wrap + [L7TAP] + self.args, self.name, ns=NS_NODE,
                          stdout=open(self.out_path, "wb"), l7tap=True)
        self.wait_stderr("stop with SIGINT")
        for ifc in attached:
            self.wait_stderr(f"attached to {ifc} ")
        return self

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def wait_stderr(self, text, count=1):
        wait_until(lambda: self.stderr().count(text) >= count or self.proc.poll() is not None,
                   T_EVENT, f"{self.name} to say {text!r}")
        if self.stderr().count(text) < count:
            raise AssertionError(f"{self.name} exited {self.proc.returncode} before saying "
                                 f"{text!r}:\n{self.stderr()}")

    def wait_named(self, pod):
        self.wait_stderr(f"l7tap: {pod.iface}: pod {pod.namespace}/{pod.name} (uid {pod.uid})")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=T_EVENT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} did not exit within {T_EVENT} s of SIGTERM")
        if rc != 0:
            raise AssertionError(f"{self.name} exited {rc}:\n{self.stderr()}")
        return rc

    def pod_names_lines(self):
        return re.findall(r"^l7tap: (pod names: .*)$", self.stderr(), re.M)

    def records(self):
        recs = []
        running = self.proc.poll() is None
        with open(self.out_path) as f:
            for n, line in enumerate(f, 1):
                if running and not line.endswith("\n"):
                    break
                try:
                    recs.append(json.loads(line))
                except ValueError as e:
                    raise AssertionError(f"{self.name} line {n} is not JSON ({e}): {line!r}")
        return recs

    def journal(self, want):
        """This run's journal entries (by _PID), waiting for `want` of them."""
        def read():
            sh("journalctl", f"--namespace={JOURNAL_NS}", "--sync", check=False)
            r = sh("journalctl", f"--namespace={JOURNAL_NS}", "-o", "json", "--no-pager", "--all",
                   f"_PID={self.pid}", "SYSLOG_IDENTIFIER=l7tap", check=False)
            return [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]
        deadline = time.time() + T_EVENT
        entries = read()
        while len(entries) < want:
            if time.time() > deadline:
                raise AssertionError(f"{len(entries)} journal entries of {self.name}, "
                                     f"not {want}, after {T_EVENT} s")
            time.sleep(0.2)
            entries = read()
        return entries


# --- what the records must say ----------------------------------------------------------

WORKLOADS = ("deployment", "replicaset", "statefulset", "daemonset", "job")
POD_KEYS = ["k8s.node.name", "k8s.namespace.name", "k8s.pod.name", "k8s.pod.uid"] + \
    [f"k8s.{w}.name" for w in WORKLOADS]
PEER = "l7tap.peer."


def identity_fields(rec):
    """The identity part of a record: the fields of the contract."""
    return {k: v for k, v in rec.items()
            if k.startswith(("k8s.", PEER, "container.", "process."))
            or k in ("l7tap.netns.inode", "l7tap.observed.side")}


def pod_expectation(pod, prefix=""):
    want = {prefix + "k8s.node.name": NODE, prefix + "k8s.namespace.name": pod.namespace,
            prefix + "k8s.pod.name": pod.name, prefix + "k8s.pod.uid": pod.uid}
    attr, value = pod.workload()
    want[prefix + attr] = value
    return want


def describe(rec):
    keep = ("type", "l7tap.connection_id", "client.address", "client.port", "server.address",
            "server.port", "url.path", "url.query", "http.response.status_code")
    return json.dumps({k: rec[k] for k in keep if k in rec} | identity_fields(rec))


class PodNamesTest(unittest.TestCase):
    """Every test starts its own pods, kubelet and l7tap; its cleanup stops
    and removes them, whether it passes, fails or raises."""

    def setUp(self):
        global TEST_PROCS
        TEST_PROCS = []
        self.pods = []
        self.addCleanup(self.restore)

    def restore(self):
        global TEST_PROCS
        procs, TEST_PROCS = TEST_PROCS or [], None
        for p in sorted(procs, key=lambda p: not getattr(p, "is_l7tap", False)):
            stop_process(p, timeout=T_EVENT)
        for pod in reversed(self.pods):
            pod.stop()
        left = node_links() - {"lo"}
        if left:
            for ifc in left:
                sh("ip", "-n", NS_NODE, "link", "del", ifc, check=False)
            raise AssertionError(f"links left in the node namespace: {sorted(left)}")

    # -- building blocks
    def start_pods(self, *pods):
        for pod in pods:
            self.pods.append(pod)
            pod.start()
        return pods

    def curl(self, pod, container, urls):
        """Requests from one of pod's containers; each must answer 200."""
        cmd = ["curl", "-sS", "--max-time", T_EVENT, "-w", "%{http_code}\\n"]
        for u in urls:
            cmd += ["-o", "/dev/null", u]
        r = pod.run(container, cmd)
        codes = r.stdout.split()
        self.assertEqual(codes, ["200"] * len(urls), f"curl {urls}: {r.stderr}")

    def finish(self, l7, pods_with_conns):
        """Waits until every connection is closed, stops l7tap, returns its
        records and journal entries."""
        wait_connections_closed([p.ns for p in pods_with_conns])
        l7.stop()
        recs = l7.records()
        journal = l7.journal(len(recs))
        log(f"{self.id()}: {len(http_of(recs))} http, {len(conns_of(recs))} conn records; "
            + "; ".join(l7.pod_names_lines()))
        self.check_journal_agrees(recs, journal, l7)
        return recs, journal

    def check_journal_agrees(self, recs, journal, l7):
        """Record for record, the journal carries the same identity fields."""
        def jkey(e):
            fields = tuple(sorted((k, str(v)) for k, v in e.items()
                                  if k.startswith(("K8S_", "L7TAP_PEER_", "CONTAINER_", "PROCESS_"))
                                  or k in ("L7TAP_NETNS_INODE", "L7TAP_OBSERVED_SIDE")))
            return (e.get("L7TAP_TYPE"), e.get("L7TAP_CONNECTION_ID"), e.get("URL_QUERY")) + fields

        def rkey(r):
            fields = tuple(sorted((journal_name(k), str(v)) for k, v in identity_fields(r).items()))
            return (r.get("type"), str(r.get("l7tap.connection_id")), r.get("url.query")) + fields
        want = collections.Counter(rkey(r) for r in recs if r.get("type") in ("http", "conn"))
        got = collections.Counter(jkey(e) for e in journal if e.get("L7TAP_TYPE") in ("http", "conn"))
        self.assertEqual(got, want, f"journal - json: {list((got - want).elements())[:5]}\n"
                                    f"json - journal: {list((want - got).elements())[:5]}")

    def assert_pod(self, rec, pod, prefix="", container=None, process=True):
        """rec names `pod` (observed, or peer with the prefix) and no other."""
        fields = identity_fields(rec)
        want = pod_expectation(pod, prefix)
        keys = [prefix + k for k in POD_KEYS]
        got = {k: fields[k] for k in keys if k in fields}
        self.assertEqual(got, want, describe(rec))
        if prefix:
            return
        self.assertEqual(fields.get("l7tap.netns.inode"), pod.netns_inode, describe(rec))
        ids = {c.id for c in [pod.pause] + pod.containers}
        if container is not None:
            self.assertEqual(fields.get("k8s.container.name"), container.name, describe(rec))
            self.assertEqual(fields.get("container.id", container.id), container.id, describe(rec))
        elif "container.id" in fields:
            self.assertIn(fields["container.id"], ids, describe(rec))
        if process and "process.executable.name" in fields:
            # The sandbox's pause is never the process that does the work
            # (a pod's app containers start after its veth exists).
            self.assertIn(fields["process.executable.name"], pod.comms - {"pause"}, describe(rec))

    def assert_no_pod(self, rec, prefix=""):
        """rec names no pod: no peer field at all (prefix PEER), or no
        observed name (a pod UID from the cgroups and the node's name may
        stay: they are known without the kubelet)."""
        fields = identity_fields(rec)
        if prefix:
            named = {k: v for k, v in fields.items() if k.startswith(prefix)}
        else:
            named = {k: v for k, v in fields.items()
                     if k.startswith("k8s.") and k not in ("k8s.pod.uid", "k8s.node.name")}
            self.assertIn(fields.get("k8s.node.name"), (None, NODE), describe(rec))
        self.assertEqual(named, {}, describe(rec))

    def assert_never_wrong(self, recs, observed_ok, peer_ok):
        """No record names a pod outside these (pods or None: unnamed)."""
        for r in recs:
            f = identity_fields(r)
            obs = (f.get("k8s.namespace.name"), f.get("k8s.pod.name"), f.get("k8s.pod.uid"))
            peer = (f.get(PEER + "k8s.namespace.name"), f.get(PEER + "k8s.pod.name"),
                    f.get(PEER + "k8s.pod.uid"))
            ok_obs = {(p.namespace, p.name, p.uid) for p in observed_ok}
            ok_peer = {(p.namespace, p.name, p.uid) for p in peer_ok}
            if obs[1] is not None or obs[0] is not None:
                self.assertIn(obs, ok_obs, f"a wrong observed pod: {describe(r)}")
            if any(peer):
                self.assertIn(peer, ok_peer, f"a wrong peer: {describe(r)}")

    def by_query(self, recs, query_prefix):
        """The http records whose url.query starts with query_prefix and
        every record of their connections."""
        http = [r for r in http_of(recs) if r.get("url.query", "").startswith("q=" + query_prefix)]
        ids = {r.get("l7tap.connection_id") for r in http}
        return http, [r for r in recs if r.get("l7tap.connection_id") in ids]

    # -- the tests
    def test_client_and_server_pods_named(self):
        """checkout (a Deployment's pod) calls payments-0 (a StatefulSet's)
        through both attached veths: the connection is checkout's (its veth
        sees the first packet), every http and conn record names checkout as
        the observed pod (client side) and payments-0 as the peer. With only
        payments' veth attached, the same traffic is payments-0's (server
        side) and names checkout as the peer."""
        checkout, payments = self.start_pods(make_checkout(), make_payments())
        kubelet = Kubelet().start([checkout, payments])
        urls = [f"http://{payments.addr}:{PORT_API}/a.txt?q=both-{i}" for i in range(3)]

        l7 = L7tap([f"{PREFIX}[ab]"], kubelet.url()).start(attached=[checkout.iface, payments.iface])
        l7.wait_named(checkout)
        l7.wait_named(payments)
        self.curl(checkout, "checkout", urls)
        self.curl(checkout, "checkout", urls)  # two connections, three requests each
        recs, _ = self.finish(l7, [checkout, payments])
        self.assertEqual(len(http_of(recs)), 6, l7.stderr())
        self.assertEqual(len(conns_of(recs)), 2, l7.stderr())
        for r in recs:
            with self.subTest(rec=describe(r)):
                self.assertEqual(r.get("l7tap.observed.side"), "client", describe(r))
                self.assertEqual((r.get("client.address"), r.get("server.address")),
                                 (checkout.addr, payments.addr))
                self.assert_pod(r, checkout, container=checkout.container("checkout"))
                self.assert_pod(r, payments, prefix=PEER)
        # As the issue has it: `journalctl -t l7tap K8S_NAMESPACE_NAME=shop`.
        r = sh("journalctl", f"--namespace={JOURNAL_NS}", "-o", "json", "--no-pager", "-t", "l7tap",
               f"_PID={l7.pid}", "K8S_NAMESPACE_NAME=shop", f"K8S_POD_NAME={checkout.name}",
               f"L7TAP_PEER_K8S_POD_NAME={payments.name}", "L7TAP_PEER_K8S_STATEFULSET_NAME=payments")
        self.assertEqual(len([ln for ln in r.stdout.splitlines() if ln.strip()]), len(recs), r.stdout)

        l7 = L7tap([payments.iface], kubelet.url()).start(attached=[payments.iface])
        l7.wait_named(payments)
        self.curl(checkout, "checkout", urls)
        recs, _ = self.finish(l7, [checkout, payments])
        self.assertEqual(len(http_of(recs)), 3, l7.stderr())
        self.assertEqual(len(conns_of(recs)), 1, l7.stderr())
        for r in recs:
            with self.subTest(rec=describe(r)):
                self.assertEqual(r.get("l7tap.observed.side"), "server", describe(r))
                self.assert_pod(r, payments, container=payments.container("api"))
                self.assert_pod(r, checkout, prefix=PEER)

    def test_two_containers_each_its_port(self):
        """payments-0 has two app containers, api (8080) and admin (9090),
        each with its own cgroup and listening socket: as the observed
        server pod, each record's k8s.container.name (and container.id) is
        the container that owns the port."""
        checkout, payments = self.start_pods(make_checkout(), make_payments())
        kubelet = Kubelet().start([checkout, payments])
        l7 = L7tap([payments.iface], kubelet.url()).start(attached=[payments.iface])
        l7.wait_named(payments)
        for i in range(2):
            self.curl(checkout, "checkout", [f"http://{payments.addr}:{PORT_API}/a.txt?q=api-{i}",
                                             f"http://{payments.addr}:{PORT_API}/b.txt?q=api-{i}"])
            self.curl(checkout, "checkout", [f"http://{payments.addr}:{PORT_ADMIN}/c.txt?q=admin-{i}"])
        recs, _ = self.finish(l7, [checkout, payments])
        self.assertEqual(len(http_of(recs)), 6, l7.stderr())
        self.assertEqual(len(conns_of(recs)), 4, l7.stderr())
        by_port = {PORT_API: payments.container("api"), PORT_ADMIN: payments.container("admin")}
        for r in recs:
            with self.subTest(rec=describe(r)):
                self.assertEqual(r.get("l7tap.observed.side"), "server", describe(r))
                self.assert_pod(r, payments, container=by_port[r.get("server.port")])
                self.assert_pod(r, checkout, prefix=PEER)

    def test_restarted_pod_new_uid_reused_address(self):
        """cart restarts: a new namespace on the same veth name and address,
        cgroups under a new pod UID, a new pod name. While the kubelet's list
        still has only the old pod, nothing names the old pod for the new
        namespace (its UID differs); once the list has the new pod (the old
        one terminating, same address), records name the new pod, never the
        old."""
        checkout, payments = self.start_pods(make_checkout(), make_payments())
        (old,) = self.start_pods(make_cart("aaaaa"))
        kubelet = Kubelet().start([checkout, payments, old])
        l7 = L7tap([f"{PREFIX}[abc]"], kubelet.url()).start(
            attached=[checkout.iface, payments.iface, old.iface])
        l7.wait_named(old)
        self.curl(checkout, "checkout", [f"http://{old.addr}:{PORT_CART}/a.txt?q=old"])
        wait_connections_closed([checkout.ns, old.ns])
        # Its http record is written before the restart (it is waited for).
        wait_until(lambda: self.by_query(l7.records(), "old")[0], T_EVENT, "the q=old record")

        # The restart, the kubelet's list lagging behind: only the old pod.
        old.stop()
        self.pods.remove(old)
        new = make_cart("bbbbb")
        self.pods.append(new)
        new.start_sandbox()
        l7.wait_stderr(f"attached to {new.iface} ", count=2)
        l7.wait_stderr(f"l7tap: {new.iface}: pod uid {new.uid} (not in the kubelet's list")
        new.start_containers()  # (their process name: test_app_started_after_the_veth)
        self.curl(new, "web", [f"http://{payments.addr}:{PORT_API}/a.txt?q=stale-observed"])
        self.curl(checkout, "checkout", [f"http://{new.addr}:{PORT_CART}/a.txt?q=stale-peer"])

        # The list catches up: the old pod terminating, the new one running.
        old.deleting = True
        kubelet.set_pods([checkout, payments, old, new])
        l7.wait_named(new)
        kubelet.wait_list_taken()
        self.curl(checkout, "checkout", [f"http://{new.addr}:{PORT_CART}/a.txt?q=new-peer"])
        self.curl(new, "web", [f"http://{payments.addr}:{PORT_API}/a.txt?q=new-observed"])
        recs, _ = self.finish(l7, [checkout, payments, new])
        self.assertEqual(len(http_of(recs)), 5, l7.stderr())
        self.assert_never_wrong(recs, [checkout, old, new], [payments, old, new])

        # Names are those of when a record is written: the old connection's
        # conn record, written once the new pod is on the node, may have no
        # peer (a list older than a pod on the node names no peer by address).
        http, conn = self.by_query(recs, "old")
        self.assertEqual(len(http), 1)
        for r in conn:
            with self.subTest(rec=describe(r)):
                self.assert_pod(r, checkout, container=checkout.container("checkout"))
                if r.get("type") == "http" or PEER + "k8s.pod.name" in r:
                    self.assert_pod(r, old, prefix=PEER)
                else:
                    self.assert_no_pod(r, prefix=PEER)
        # With the list still giving the address to the old pod, running,
        # nothing names the old pod: not the new namespace (its UID differs),
        # not its address as a peer. Records written after the list caught up
        # (conn records) may name the new pod.
        # Unnamed, the new pod's side is unknown to l7tap (its addresses are
        # not in the list, and it does not listen on the port) and so is its
        # peer; if given, both must be right.
        http, conn = self.by_query(recs, "stale-observed")
        self.assertEqual(len(http), 1)
        for r in conn:
            with self.subTest(rec=describe(r)):
                if "k8s.pod.name" in r:
                    self.assertEqual(r.get("l7tap.observed.side"), "client", describe(r))
                    self.assert_pod(r, new, container=new.container("web"), process=False)
                else:
                    self.assertIn(r.get("l7tap.observed.side"), (None, "client"), describe(r))
                    self.assert_no_pod(r)
                    self.assertIn(r.get("k8s.pod.uid"), (None, new.uid), describe(r))
                if PEER + "k8s.pod.name" in r:
                    self.assert_pod(r, payments, prefix=PEER)
        http, conn = self.by_query(recs, "stale-peer")
        self.assertEqual(len(http), 1)
        for r in conn:
            with self.subTest(rec=describe(r)):
                self.assert_pod(r, checkout, container=checkout.container("checkout"))
                if PEER + "k8s.pod.name" in r:
                    self.assert_pod(r, new, prefix=PEER)
                else:
                    self.assert_no_pod(r, prefix=PEER)
        log("stale list, the new cart as the peer: named " + ", ".join(
            sorted({str(r.get(PEER + "k8s.pod.name")) for r in self.by_query(recs, "stale-peer")[1]})))
        http, conn = self.by_query(recs, "new-peer")
        self.assertEqual(len(http), 1)
        for r in conn:
            with self.subTest(rec=describe(r)):
                self.assert_pod(r, checkout, container=checkout.container("checkout"))
                self.assert_pod(r, new, prefix=PEER)
        http, conn = self.by_query(recs, "new-observed")
        self.assertEqual(len(http), 1)
        for r in conn:
            with self.subTest(rec=describe(r)):
                self.assertEqual(r.get("l7tap.observed.side"), "client", describe(r))
                self.assert_pod(r, new, container=new.container("web"), process=False)
                self.assert_pod(r, payments, prefix=PEER)

    def test_app_started_after_the_veth(self):
        """As on a node, cart's app container starts after its veth, which
        l7tap has scanned by then (only the sandbox's pause was there):
        records name the app's process (python3 serving, curl calling), or
        none, never pause; as a server, the container that listens."""
        checkout, payments = self.start_pods(make_checkout(), make_payments())
        cart = make_cart("ddddd")
        kubelet = Kubelet().start([checkout, payments, cart])
        l7 = L7tap([f"{PREFIX}[abc]"], kubelet.url()).start(attached=[checkout.iface, payments.iface])
        self.pods.append(cart)
        cart.start_sandbox()
        l7.wait_named(cart)  # scanned: pause alone
        cart.start_containers()
        self.curl(checkout, "checkout", [f"http://{cart.addr}:{PORT_CART}/a.txt?q=to-cart"])
        self.curl(cart, "web", [f"http://{payments.addr}:{PORT_API}/a.txt?q=from-cart"])
        recs, _ = self.finish(l7, [checkout, payments, cart])
        self.assertEqual(len(http_of(recs)), 2, l7.stderr())
        for r in self.by_query(recs, "to-cart")[1]:
            with self.subTest(rec=describe(r)):
                self.assert_pod(r, checkout, container=checkout.container("checkout"))
                self.assert_pod(r, cart, prefix=PEER)
        for r in self.by_query(recs, "from-cart")[1]:
            with self.subTest(rec=describe(r)):
                self.assertEqual(r.get("l7tap.observed.side"), "client", describe(r))
                self.assert_pod(r, cart, container=cart.container("web"))
                self.assert_pod(r, payments, prefix=PEER)

    def test_deleted_pod_with_open_connection(self):
        """payments-0 leaves the kubelet's list while checkout holds a
        keep-alive connection to it: the records of that connection name
        payments-0 or no peer, never another pod, and records keep coming;
        a connection opened after l7tap took in the new list names no
        peer."""
        checkout, payments = self.start_pods(make_checkout(), make_payments())
        cart = make_cart("ccccc")
        kubelet = Kubelet().start([checkout, payments])
        l7 = L7tap([f"{PREFIX}[ab]"], kubelet.url()).start(attached=[checkout.iface, payments.iface])
        l7.wait_named(checkout)
        l7.wait_named(payments)
        size = os.path.getsize(os.path.join(DOC, "a.txt"))
        load = checkout.spawn(checkout.container("checkout"),
                              [PYTHON, LOADGEN, "--host", payments.addr, "--port", PORT_API,
                               "--path", "/a.txt", "--mode", "command"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        checkout.comms.add("python3")

        def req(n, query):
            load.stdin.write(f"req {n} /a.txt?q={query} {size}\n".encode())
            load.stdin.flush()
            line = read_line(load, "loadgen").split()
            self.assertEqual(line, ["done", str(n), "0"], f"loadgen: {line}")
        req(2, "open-before")
        # Deleted: gone from the list (a pod that is not yet in the list,
        # cart, joins it, so the list changes in more than one way).
        kubelet.set_pods([checkout, cart])
        kubelet.wait_list_taken()
        req(3, "open-after")
        load.stdin.write(b"close\n")
        load.stdin.flush()
        self.assertEqual(read_line(load, "loadgen").split(), ["closed"])
        self.curl(checkout, "checkout", [f"http://{payments.addr}:{PORT_API}/a.txt?q=new-conn"])
        recs, _ = self.finish(l7, [checkout, payments])
        self.assertEqual(len(http_of(recs)), 6, l7.stderr())
        self.assert_never_wrong(recs, [checkout], [payments])
        http, conn = self.by_query(recs, "open-")
        self.assertEqual(len(http), 5)
        for r in conn:
            with self.subTest(rec=describe(r)):
                self.assertEqual(r.get("l7tap.observed.side"), "client", describe(r))
                self.assert_pod(r, checkout)
        http, conn = self.by_query(recs, "new-conn")
        self.assertEqual(len(http), 1)
        for r in conn:
            with self.subTest(rec=describe(r)):
                self.assert_pod(r, checkout, container=checkout.container("checkout"))
                self.assert_no_pod(r, prefix=PEER)

    def run_without_kubelet(self, kubelet_url, expect_error):
        """Records flow without names when the kubelet gives no list; the
        summary's `pod names:` line says why."""
        checkout, payments = self.start_pods(make_checkout(), make_payments())
        l7 = L7tap([f"{PREFIX}[ab]"], kubelet_url).start(attached=[checkout.iface, payments.iface])
        l7.wait_stderr("l7tap: pod names:")  # the first fetch's result: failed
        urls = [f"http://{payments.addr}:{PORT_API}/a.txt?q=nokubelet-{i}" for i in range(3)]
        self.curl(checkout, "checkout", urls)
        recs, _ = self.finish(l7, [checkout, payments])
        self.assertEqual(len(http_of(recs)), 3, l7.stderr())
        self.assertEqual(len(conns_of(recs)), 1, l7.stderr())
        for r in recs:
            with self.subTest(rec=describe(r)):
                self.assert_no_pod(r)
                self.assert_no_pod(r, prefix=PEER)
                self.assertIn(r.get("k8s.pod.uid"), (None, checkout.uid), describe(r))
                self.assertIn(r.get("l7tap.observed.side"), (None, "client"), describe(r))
                self.assertIn(r.get("l7tap.netns.inode"), (None, checkout.netns_inode), describe(r))
        lines = l7.pod_names_lines()
        self.assertTrue(lines, l7.stderr())
        summary = lines[-1]
        self.assertIn("none (no pod list yet)", summary, l7.stderr())
        self.assertRegex(summary, r"refreshes failed, last: \S", l7.stderr())
        self.assertRegex(summary, expect_error, l7.stderr())
        return summary

    def test_kubelet_down(self):
        kubelet = Kubelet().start([])
        kubelet.stop()  # nothing listens on its port now
        self.run_without_kubelet(kubelet.url(), r"(?i)connect|refused")

    def test_kubelet_hangs(self):
        kubelet = Kubelet().start([], mode="hang")
        self.run_without_kubelet(kubelet.url(), r"(?i)time")
        self.assertTrue(kubelet.served(), "l7tap never asked the kubelet")

    def test_kubelet_garbage(self):
        kubelet = Kubelet().start([], mode="garbage")
        self.run_without_kubelet(kubelet.url(), r"(?i)json|parse|pod ?list")

    def test_kubelet_fails_after_a_good_list(self):
        """The kubelet turns to garbage, hangs, then goes down after one good
        list: the last good list keeps naming pods, and the summary counts
        the failed refreshes."""
        checkout, payments = self.start_pods(make_checkout(), make_payments())
        kubelet = Kubelet().start([checkout, payments])
        l7 = L7tap([f"{PREFIX}[ab]"], kubelet.url()).start(attached=[checkout.iface, payments.iface])
        l7.wait_named(checkout)
        self.curl(checkout, "checkout", [f"http://{payments.addr}:{PORT_API}/a.txt?q=good"])
        kubelet.set_mode("garbage")
        kubelet.wait_served("garbage")
        self.curl(checkout, "checkout", [f"http://{payments.addr}:{PORT_API}/a.txt?q=garbage"])
        kubelet.set_mode("hang")
        kubelet.wait_served("hang", count=1)
        self.curl(checkout, "checkout", [f"http://{payments.addr}:{PORT_API}/a.txt?q=hang"])
        kubelet.stop()
        self.curl(checkout, "checkout", [f"http://{payments.addr}:{PORT_API}/a.txt?q=down"])
        recs, _ = self.finish(l7, [checkout, payments])
        self.assertEqual(len(http_of(recs)), 4, l7.stderr())
        for r in recs:
            with self.subTest(rec=describe(r)):
                self.assert_pod(r, checkout, container=checkout.container("checkout"))
                self.assert_pod(r, payments, prefix=PEER)
        summary = l7.pod_names_lines()[-1]
        self.assertRegex(summary, r"^pod names: 2 pods, \d+ of \d+ refreshes failed, last: \S",
                         l7.stderr())

    def test_host_network_pod_names_no_peer(self):
        """node-exporter (a DaemonSet's host-network pod: a server in the
        node namespace, listed with the node's addresses) is no pod's
        address: checkout calling it names checkout and no peer; it calling
        payments-0 names payments-0 (server side) and no peer."""
        checkout, payments = self.start_pods(make_checkout(), make_payments())
        (exporter,) = self.start_pods(make_exporter())
        kubelet = Kubelet().start([checkout, payments, exporter])
        l7 = L7tap([f"{PREFIX}[ab]"], kubelet.url()).start(attached=[checkout.iface, payments.iface])
        l7.wait_named(checkout)
        l7.wait_named(payments)
        kubelet.wait_list_taken()
        self.curl(checkout, "checkout", [f"http://{exporter.addrs[0]}:{PORT_EXPORTER}/a.txt?q=to-host"])
        self.curl(exporter, "exporter", [f"http://{payments.addr}:{PORT_API}/a.txt?q=from-host"])
        recs, _ = self.finish(l7, [checkout, payments, exporter])
        self.assertEqual(len(http_of(recs)), 2, l7.stderr())
        self.assert_never_wrong(recs, [checkout, payments], [])
        http, conn = self.by_query(recs, "to-host")
        self.assertEqual(len(http), 1)
        for r in conn:
            with self.subTest(rec=describe(r)):
                self.assertEqual(r.get("l7tap.observed.side"), "client", describe(r))
                self.assert_pod(r, checkout, container=checkout.container("checkout"))
                self.assert_no_pod(r, prefix=PEER)
        http, conn = self.by_query(recs, "from-host")
        self.assertEqual(len(http), 1)
        for r in conn:
            with self.subTest(rec=describe(r)):
                self.assertEqual(r.get("l7tap.observed.side"), "server", describe(r))
                self.assert_pod(r, payments, container=payments.container("api"))
                self.assert_no_pod(r, prefix=PEER)


# --- the run ----------------------------------------------------------------------------

CERT = KEY = TOKEN_FILE = None


def missing_privileges():
    problem = basic_problem(L7TAP, TOOLS, f"{PREFIX}-probe")
    if problem:
        return problem
    if not os.access(JOURNALD, os.X_OK):
        return f"no {JOURNALD} to start"
    v2 = cgroup2_mount()
    if not v2:
        return "no cgroup v2 mount in /proc/mounts"
    if not os.access(v2, os.W_OK):
        return f"cannot write to the cgroup v2 mount {v2}"
    return ""


def build_node():
    global BIN, DOC, CERT, KEY, TOKEN_FILE, CGROUP_ROOT
    CGROUP_ROOT = os.path.join(cgroup2_mount(), f"i11e-{PID}")
    os.makedirs(CGROUP_ROOT)
    CLEANUP.namespaces.append(NS_NODE)
    sh("ip", "netns", "add", NS_NODE)
    sh("ip", "-n", NS_NODE, "link", "set", "lo", "up")
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=NS_NODE)
    BIN = os.path.join(TMP, "bin")
    os.makedirs(BIN)
    shutil.copy("/bin/sleep", os.path.join(BIN, "pause"))
    DOC = os.path.join(TMP, "www")
    os.makedirs(DOC)
    for n in "abc":
        with open(os.path.join(DOC, f"{n}.txt"), "w") as f:
            f.write("".join(f"{n} line {i:03d}\n" for i in range(40)))
    CERT, KEY = os.path.join(TMP, "kubelet.crt"), os.path.join(TMP, "kubelet.key")
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", KEY, "-out", CERT,
       "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1")
    TOKEN_FILE = os.path.join(TMP, "token")
    with open(TOKEN_FILE, "w") as f:
        f.write(TOKEN + "\n")


def main():
    global ARGS, TMP, L7TAP
    ARGS = arguments(__doc__, "records, logs").parse_args()
    L7TAP = os.path.abspath(ARGS.l7tap)
    suite = load_suite(sys.modules[__name__], ARGS.tests)
    count = suite.countTestCases()
    status = cannot_run("pod-name tests", count, missing_privileges())
    if status is not None:
        return status

    lock = hold_e2e_lock(log)
    interrupt_on_signals()
    started = time.time()
    try:
        remove_stale()
        TMP = tempfile.mkdtemp(prefix=f"{PREFIX}-")
        start_journald()
        build_node()
        result = run_tests(suite)
    except KeyboardInterrupt as e:
        print(f"interrupted ({e})")
        print(f"0 passed, {count} failed")
        return 130
    except Exception as e:  # noqa: BLE001 - the node could not be built
        print(f"the pod-name test bed could not be built: {type(e).__name__}: {e}")
        print(f"0 passed, {count} failed")
        return 1
    finally:
        CLEANUP.run()
        lock.close()
    left = namespaces_left(PREFIX)
    left += [CGROUP_ROOT] if CGROUP_ROOT and os.path.exists(CGROUP_ROOT) else []
    print(f"pod names e2e: {time.time() - started:.1f} s; left behind: {left or 'nothing'}")
    return tally(result, count, left)


if __name__ == "__main__":
    sys.exit(main())
