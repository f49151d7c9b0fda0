"""What every privileged Python suite (tests/e2e, tests/privileges) does
around its tests: load the ones asked for, and when the machine cannot run
them, skip with the reason, or fail under L7TAP_REQUIRE_PRIVILEGED (what CI
sets). The C++ suites do the same through tests/support/privileged.h.
Around a run: the lock that keeps e2e runs apart, signals turned into an
exception that unwinds into the suite's cleanup, the temp dir removed;
the closing count. Their network namespaces: netns.py; the test bed of
those with pods on one node: testbed.py."""

import argparse
import collections
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
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


def arguments(doc, kept):
    """The command line of a suite: --l7tap, --keep-temp (the temp dir holds
    `kept`), the tests to run; `doc` is the suite's docstring."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--l7tap", required=True, help="the l7tap program")
    ap.add_argument("--keep-temp", action="store_true", help=f"keep the temp dir ({kept})")
    ap.add_argument("tests", nargs="*", help="TestClass or TestClass.test_name")
    return ap


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


def run_tests(suite):
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=Result)
    return runner.run(suite)


def tally(result, count, left):
    """Prints the last line, "N passed, N failed, N skipped", and returns the
    exit status. A test that never reported (a class fixture failed) and
    anything the run `left` behind count as failures."""
    outcomes = list(result.outcome.values())
    passed, failed, skipped = (outcomes.count(w) for w in ("passed", "failed", "skipped"))
    failed += max(0, count - len(outcomes)) + (1 if left else 0)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


def run_on_testbed(module, args, what, title, bed, build, problem):
    """main() of a suite on a testbed.Testbed: runs the tests `args` asks for
    of `module` (the `what`: "TLS e2e tests"), or says why they cannot run
    (`problem()`); around them the e2e lock, `build()` after the stale
    namespaces are gone and the temp dir made, and the cleanup, whatever
    happened. The closing lines start with `title`. Returns the exit
    status."""
    suite = load_suite(module, args.tests)
    count = suite.countTestCases()
    status = cannot_run(what, count, problem())
    if status is not None:
        return status

    bed.keep_temp = args.keep_temp
    lock = hold_e2e_lock(bed.log)
    interrupt_on_signals()
    started = time.time()
    result = None
    try:
        bed.remove_stale()
        bed.make_temp()
        build()
        result = run_tests(suite)
    except KeyboardInterrupt as e:
        print(f"interrupted ({e})")
    except Exception as e:  # noqa: BLE001 - the test bed could not be built
        print(f"the test bed could not be built: {type(e).__name__}: {e}")
    finally:
        ignore_signals()
        bed.cleanup()
        lock.close()
    left = bed.left()
    print(f"{title}: {time.time() - started:.1f} s; namespaces of this run left: "
          f"{left or 'none'}")
    if result is None:
        print(f"0 passed, {count} failed")
        return 1
    return tally(result, count, left)
