"""What every privileged Python suite (tests/e2e, tests/privileges) does
around its tests: load the ones asked for, and when the machine cannot run
them, skip with the reason, or fail under L7TAP_REQUIRE_PRIVILEGED (what CI
sets). The C++ suites do the same through tests/support/privileged.h."""

import os
import shutil
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
