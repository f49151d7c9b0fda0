"""What every privileged Python suite (tests/e2e, tests/privileges) does
around its tests: load the ones asked for, and when the machine cannot run
them, skip with the reason, or fail under L7TAP_REQUIRE_PRIVILEGED (what CI
sets). The C++ suites do the same through tests/support/privileged.h.
Around a run: the lock that keeps e2e runs apart, signals turned into an
exception that unwinds into the suite's cleanup, the temp dir removed.
Their network namespaces: netns.py."""

import fcntl
import os
import shutil
import signal
import subprocess
import unittest


def privileged_required():
    return os.environ.get("L7TAP_REQUIRE_PRIVILEGED", "") not in ("", "0")


def basic_problem(l7tap, tools, probe_netns):
    """Why root, the tools, the l7tap program, BPF or network namespaces are
    missing; empty when none is."""
    if os.geteuid() != 0:
        return "needs root (BPF, network namespaces)"
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        return "missing tools: " + " ".join(missing) + " (bash .ci/deps installs them)"
    if not os.access(l7tap, os.X_OK):
        return f"no l7tap program at {l7tap}"
    r = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True)
    if r.returncode != 0:
        return "BPF not available: bpftool prog show: " + r.stderr.strip()
    r = subprocess.run(["ip", "netns", "add", probe_netns], capture_output=True, text=True)
    if r.returncode != 0:
        return "network namespaces not available: " + r.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe_netns], capture_output=True)
    return ""


def load_suite(module, names):
    """The tests `names` (TestClass or TestClass.test_name) of `module`, or all."""
    loader = unittest.TestLoader()
    return loader.loadTestsFromNames(names, module) if names else loader.loadTestsFromModule(module)


def cannot_run(what, count, reason):
    """None when `reason` is empty; else the exit status after printing the
    skip (or, when privileged tests are required, the failure)."""
    if not reason:
        return None
    if privileged_required():
        print(f"L7TAP_REQUIRE_PRIVILEGED is set but the {what} cannot run: {reason}")
        print(f"0 passed, {count} failed")
        return 1
    print(f"skipping the {what}: {reason}")
    print(f"0 passed, 0 failed, {count} skipped")
    return 0


# Held for a whole run by the suites that must not overlap another's
# (test_pod_names, test_metrics, tests/privileges, bench/pod_name_latency.py):
# ctest's RUN_SERIAL does not reach across build trees or worktrees.
E2E_LOCK_FILE = "/tmp/l7tap-e2e.lock"
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def hold_e2e_lock(log):
    """Blocks until this process holds E2E_LOCK_FILE (saying so through
    `log` when it has to wait); the open file holds it until closed."""
    lock = open(E2E_LOCK_FILE, "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"waiting for {E2E_LOCK_FILE} (another e2e suite runs)")
        fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def _interrupt(signum, _frame):
    # Unwinds through the running test into main()'s finally, which cleans up.
    raise KeyboardInterrupt(f"signal {signum}")


def interrupt_on_signals():
    for s in SIGNALS:
        signal.signal(s, _interrupt)


def ignore_signals():
    """For the cleanup: a second signal must not cut it short."""
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)


def remove_temp(path, keep, log):
    """Removes the run's temp dir `path`, or with `keep` (--keep-temp) says
    where it is."""
    if path and not keep:
        shutil.rmtree(path, ignore_errors=True)
    elif path:
        log(f"kept {path}")
