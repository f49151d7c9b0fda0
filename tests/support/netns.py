"""The network namespaces of a privileged suite's run: the suites name
theirs after a prefix and their pid, so that what a run killed with -9 left
behind is told from what a running one owns, and removed by the next run."""

import os
import re
import signal
import subprocess


def netns_list():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def kill_namespace_pids(ns, keep=()):
    """SIGKILL to every process in `ns` but `keep` (pids): whatever still runs
    in a namespace of the run's own was started by it."""
    r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    for pid in r.stdout.split():
        try:
            if int(pid) not in keep:
                os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def delete_namespace(ns):
    kill_namespace_pids(ns)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def remove_stale_namespaces(pattern, log):
    """Deletes the namespaces that fully match `pattern`, whose group 1 is
    the pid of the run that made them, where that process is gone."""
    for ns in netns_list():
        m = re.fullmatch(pattern, ns)
        if m and int(m.group(1)) != os.getpid() and not os.path.exists(f"/proc/{m.group(1)}"):
            log(f"removing {ns}, left behind by an earlier run")
            delete_namespace(ns)


def namespaces_left(prefix):
    """The namespaces named `prefix`-something that still exist."""
    return [ns for ns in netns_list() if ns.startswith(prefix + "-")]
