"""The test bed of the e2e suites with pods on one node (test_apptrace,
test_tls, test_metrics):

    pod X eth0 SUBNET.2 ──veth── PREFIX<X> SUBNET.1 ┐ node namespace: router
    ...                                             ┘

PREFIX is the suite's stem and the run's pid, so that what a run killed
with -9 left behind is told from what a running one owns and removed by the
next run (netns.py). The processes started in it write to the run's temp
dir; everything is removed, in reverse order, by cleanup(). Its helpers
(sh, stop_process, wait_until) are test_live's, the first suite's, which
every e2e suite imports."""

import glob
import os
import re
import shutil
import subprocess
import tempfile

from netns import delete_namespace, namespaces_left, remove_stale_namespaces
from privileged_suite import remove_temp
from test_live import sh, stop_process, wait_until


def etc_netns(ns):
    """Where `ip netns exec` finds files it bind-mounts over /etc (hosts);
    `ip netns del` leaves it."""
    return os.path.join("/etc/netns", ns)


class Testbed:
    def __init__(self, stem, subnets, log, t_event, stop_signal):
        """`subnets`: pod -> its /24 ("10.92.1"). `t_event` bounds the waits
        for what is bound to happen; `stop_signal` is what cleanup() sends to
        the processes still running."""
        self.stem = stem
        self.prefix = f"{stem}{os.getpid()}"  # every namespace and interface name starts with it
        self.node = f"{self.prefix}-node"
        self.ns = {pod: f"{self.prefix}-{pod}" for pod in subnets}
        self.iface = {pod: f"{self.prefix}{pod}" for pod in subnets}  # node side
        self.subnet = dict(subnets)
        self.log = log
        self.t_event = t_event
        self.stop_signal = stop_signal
        self.tmp = None
        self.keep_temp = False
        self.procs = []  # every long-lived process started, stopped in reverse order
        self.namespaces = []

    # --- around the run ----------------------------------------------------------

    def remove_stale(self):
        """What runs of this suite that are gone left behind: their
        namespaces and /etc/netns files."""
        pattern = rf"{self.stem}(\d+)-(node|{'|'.join(self.ns)})"
        remove_stale_namespaces(pattern, self.log)
        for name in os.listdir("/etc/netns") if os.path.isdir("/etc/netns") else []:
            m = re.fullmatch(pattern, name)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                shutil.rmtree(etc_netns(name), ignore_errors=True)

    def make_temp(self):
        self.tmp = tempfile.mkdtemp(prefix=f"{self.prefix}-")
        return self.tmp

    def cleanup(self):
        for p in reversed(self.procs):
            stop_process(p, sig=self.stop_signal, timeout=10)
        self.procs.clear()
        for ns in reversed(self.namespaces):
            delete_namespace(ns)
            shutil.rmtree(etc_netns(ns), ignore_errors=True)
        self.namespaces.clear()
        remove_temp(self.tmp, self.keep_temp, self.log)

    def left(self):
        """What of this run still exists after cleanup(): none when it worked."""
        return namespaces_left(self.prefix) + glob.glob(etc_netns(self.prefix + "-*"))

    # --- network ------------------------------------------------------------------

    def add_namespace(self, ns):
        self.namespaces.append(ns)
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")

    def add_pod(self, pod, hosts=None):
        """Pod `pod` joined to the node by a veth; with `hosts`, the pod's
        /etc/hosts (`ip netns exec` bind-mounts /etc/netns/NS/hosts on it)."""
        ns, ifc, net = self.ns[pod], self.iface[pod], self.subnet[pod]
        self.add_namespace(ns)
        sh("ip", "-n", self.node, "link", "add", ifc, "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        sh("ip", "-n", self.node, "addr", "add", f"{net}.1/24", "dev", ifc)
        sh("ip", "-n", self.node, "link", "set", ifc, "up")
        sh("ip", "-n", ns, "addr", "add", f"{net}.2/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "route", "add", "default", "via", f"{net}.1")
        if hosts is not None:
            os.makedirs(etc_netns(ns), exist_ok=True)
            with open(os.path.join(etc_netns(ns), "hosts"), "w") as f:
                f.write(hosts)

    def build_network(self, hosts=None):
        """The node namespace, routing between the pods, and every pod."""
        self.add_namespace(self.node)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=self.node)
        for pod in self.ns:
            self.add_pod(pod, hosts)

    def wait_port(self, ns, port):
        wait_until(lambda: sh("ss", "-Hltn", f"sport = :{port}", ns=ns).stdout.strip(),
                   self.t_event, f"a listener on port {port} in {ns}")

    # --- processes ----------------------------------------------------------------

    def spawn(self, cmd, ns, name, stdin=subprocess.DEVNULL, keep=True):
        """`cmd` in namespace `ns`, output to TMP/name.{out,err}. `ip netns
        exec` execs the command: the Popen's pid is the program's. With
        `keep`, cleanup() stops it."""
        full = ["ip", "netns", "exec", ns] + [str(c) for c in cmd]
        out = open(os.path.join(self.tmp, name + ".out"), "wb")
        err = open(os.path.join(self.tmp, name + ".err"), "wb")
        p = subprocess.Popen(full, stdout=out, stderr=err, stdin=stdin, start_new_session=True)
        out.close()
        err.close()
        if keep:
            self.procs.append(p)
        return p

    def read(self, name):
        """The file TMP/name, as text."""
        with open(os.path.join(self.tmp, name), errors="replace") as f:
            return f.read()


class Daemon:
    """A program that runs across a test's steps (l7tap) in namespace `ns`,
    named `kind`-N in the order started, its output in TMP/NAME.{out,err}:
    ready once its stderr has said each of `ready`, in order."""

    started = 0

    def __init__(self, bed, cmd, ns, ready=(), kind="l7tap"):
        Daemon.started += 1
        self.bed = bed
        self.name = f"{kind}-{Daemon.started}"
        self.proc = bed.spawn(cmd, ns, self.name)
        self.rc = None
        for what in ready:
            wait_until(lambda: what in self.stderr() or self.proc.poll() is not None,
                       bed.t_event, f"{self.name} to say {what!r}")
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.proc.returncode}: {self.stderr()}")

    def stderr(self):
        return self.bed.read(self.name + ".err")

    def stdout_lines(self):
        """The complete lines so far (the last may be being written)."""
        with open(os.path.join(self.bed.tmp, self.name + ".out"), errors="strict") as f:
            return [line[:-1] for line in f if line.endswith("\n")]

    def stop(self):
        """SIGTERM (l7tap drains its rings and flushes): its exit status."""
        if self.rc is None:
            self.rc = stop_process(self.proc)
            self.bed.procs.remove(self.proc)
        return self.rc
