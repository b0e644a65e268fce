"""The fault shim itself (tests/shim/faultshim.c), checked with ping, so
that the heal tests rest on a model that does what it says: sockets
opened before the fault file fail (or, in drop mode, go silent), sockets
opened after it work, and "all" mode fails every socket.  (That failing
sends fail with the chosen errno, and dropped ones do not, is seen in
dpinger's own log: test_heal_triggers.py.)"""

import os
import subprocess
import sys

import pytest

import netns

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "shim"))
import faults  # noqa: E402


def ping(topo, env, count, interval="0.2"):
    full = dict(os.environ)
    full.update(env)
    return subprocess.Popen(
        ["ip", "netns", "exec", topo.fw, "ping", "-n", "-c", str(count),
         "-i", interval, "-W", "1", netns.V4_GW], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env=full)


def first_reply(proc):
    """Read ping's output up to its first reply: its socket is open."""
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "bytes from" in line:
            return "".join(seen)
    raise AssertionError("no reply from ping: %r" % seen)


@pytest.mark.parametrize("mode", ["fail", "drop"])
def test_shim_old_sockets_faulted_new_ones_work(topo, tmp_path, mode):
    """A ping started before the fault loses its later probes (its sends
    fail, or vanish in drop mode); one started after it gets every reply."""
    topo.wait_path("v4")
    fault = (faults.Fault(tmp_path, err=113) if mode == "fail" else
             faults.Fault(tmp_path, mode="drop"))
    old = ping(topo, fault.env(), 12)
    first_reply(old)
    fault.arm()
    out, _ = old.communicate(timeout=20)
    assert " 0% packet loss" not in out and "packet loss" in out, out
    fresh = ping(topo, fault.env(), 2)
    out, _ = fresh.communicate(timeout=20)
    assert fresh.returncode == 0 and " 0% packet loss" in out, out


def test_shim_all_mode_and_disarm(topo, tmp_path):
    topo.wait_path("v4")
    fault = faults.Fault(tmp_path, mode="all")
    fault.arm()
    fresh = ping(topo, fault.env(), 2)
    out, _ = fresh.communicate(timeout=20)
    assert fresh.returncode != 0 and "100% packet loss" in out, out
    fault.disarm()
    fresh = ping(topo, fault.env(), 2)
    out, _ = fresh.communicate(timeout=20)
    assert fresh.returncode == 0, out
