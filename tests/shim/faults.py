"""Helpers for the self-healing tests: the fault shim (build/faultshim.so),
rebind log lines, status polling and a stand-in alert command.

The shim (faultshim.c) makes sockets stale: once the fault file exists,
IPv4/IPv6 sockets created before its modification time fail their sends
(mode "fail"), or swallow them (mode "drop"); mode "all" fails every
socket's sends, old or new (a persistent fault).
"""

import os
import re
import subprocess
import time

import pytest

import netns

SHIM = os.path.join(netns.ROOT, "build", "faultshim.so")
SHIM_SRC = os.path.join(netns.ROOT, "tests", "shim", "faultshim.c")

# "<dest>: rebind (<trigger>) on <ifname>: echo id N"
REBIND_RE = re.compile(r": rebind \((?P<trigger>[^)]*)\) on (?P<ifname>\S+):"
                       r" echo id (?P<id>\d+)$")


def shim_path():
    """build/faultshim.so, built now if it is missing or older than its
    source (tests/run does not build it yet)."""
    stale = (not os.path.exists(SHIM) or
             os.path.getmtime(SHIM) < os.path.getmtime(SHIM_SRC))
    if stale:
        proc = subprocess.run(["make", "build/faultshim.so"], cwd=netns.ROOT,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            pytest.fail("cannot build the fault shim:\n" + proc.stdout)
    return SHIM


class Fault:
    """One fault file; env() is what dpinger's environment needs."""

    def __init__(self, directory, mode="fail", err=None, name="fault"):
        self.path = os.path.join(str(directory), name)
        self.mode = mode
        self.err = err
        if os.path.exists(self.path):
            os.unlink(self.path)

    def env(self):
        env = {"LD_PRELOAD": shim_path(), "DPINGER_FAULT_FILE": self.path,
               "DPINGER_FAULT_MODE": self.mode}
        if self.err is not None:
            env["DPINGER_FAULT_ERRNO"] = str(self.err)
        return env

    def arm(self):
        """Every socket open now is stale from here on."""
        with open(self.path, "w"):
            pass
        # An explicit time: the kernel stamps a file from its coarse
        # clock (up to a tick behind), which can predate a socket made
        # a millisecond ago; the shim reads socket times exactly.
        now = time.time_ns()
        os.utime(self.path, ns=(now, now))

    def disarm(self):
        if os.path.exists(self.path):
            os.unlink(self.path)


def rebinds(dp):
    """[(monotonic time, trigger, ifname, echo id)] from dpinger's stderr."""
    found = []
    for when, line in dp.err_timed():
        m = REBIND_RE.search(line)
        if m:
            found.append((when, m.group("trigger"), m.group("ifname"),
                          int(m.group("id"))))
    return found


def wait_rebind(dp, trigger=None, after=0, timeout=10):
    """The first rebind (with that trigger, if given) logged at or after
    monotonic time `after`."""
    def found():
        for entry in rebinds(dp):
            if entry[0] >= after and (trigger is None or
                                      entry[1] == trigger):
                return entry
        if dp.proc.poll() is not None:
            raise AssertionError("dpinger exited (%s); stderr: %s"
                                 % (dp.proc.returncode, dp.err()))
        return None
    return netns.wait_until(
        found, timeout, lambda: "a rebind%s logged (stderr: %r)"
        % (" (%s)" % trigger if trigger else "", dp.err()[-8:]))


def status(sock):
    """(latency_us, stddev_us, loss_pct) from the status socket."""
    return netns.status_numbers(netns.query_status(sock))


wait_status = netns.wait_status


def healthy(numbers):
    """Replies in the window, none lost."""
    return numbers[0] > 0 and numbers[2] == 0


def alert_script(directory, body=""):
    """A stand-in alert command: appends its arguments as one line to
    <directory>/alerts, then runs body (sh).  Returns (script, log)."""
    script = os.path.join(str(directory), "alert.sh")
    log = os.path.join(str(directory), "alerts")
    with open(script, "w") as f:
        f.write("#!/bin/sh\necho \"$*\" >> %s\n%s\n" % (log, body))
    os.chmod(script, 0o755)
    return script, log


def alert_calls(log):
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return [line.split() for line in f.read().splitlines() if line]


def now_wall():
    return time.time()
