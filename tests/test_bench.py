"""The benchmarks (tests/bench/churn.py and scaling.py, `make bench`) run
and print their figures.  Performance is judged from the figures they
print, not by a timed assertion here: this only checks that churn and the
flood happened, that every figure is there, and that dpinger kept
monitoring without a rebind."""

import os
import re
import subprocess
import sys

import pytest

import netns

BENCH = os.path.join(netns.ROOT, "tests", "bench", "churn.py")
SCALING = os.path.join(netns.ROOT, "tests", "bench", "scaling.py")


def run_bench(script, args):
    """The benchmark's output, once it ran to the end (or pytest.skip)."""
    proc = subprocess.run([sys.executable, script] + args,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=120)
    print(proc.stdout)
    if "SKIPPED" in proc.stdout:
        pytest.skip(proc.stdout.strip())
    assert proc.returncode == 0, proc.stdout
    assert re.search(r"rebinds during the benchmark: 0;", proc.stdout), \
        proc.stdout
    return proc.stdout


def test_churn_benchmark_prints_figures(netns_available, plain_binary):
    out = run_bench(BENCH, ["--seconds", "1.5", "--binary", plain_binary])
    rows = re.findall(r"^  (idle|route churn|IPv[46] addresses[^\d]*?)"
                      r" +(\d+) +(\d+\.\d+) +\S+$", out, re.M)
    assert len(rows) == 5, out
    assert all(int(rate) > 0 for _, rate, _ in rows[1:]), out
    assert out.rstrip().endswith("churn benchmark: done"), out


def test_scaling_benchmark_prints_figures(netns_available, plain_binary):
    """A small run: 1 and 3 instances, one-second phases."""
    out = run_bench(SCALING, ["--seconds", "1", "--counts", "1,3",
                              "--binary", plain_binary])
    rows = re.findall(r"^ +([13]) +(\d+\.\d) +(\d+\.\d\d)x +(\d+\.\d\d)$",
                      out, re.M)
    assert [r[0] for r in rows] == ["1", "3"], out
    # Each probe wakes the send and the receive thread at least.
    assert all(float(r[3]) >= 1.5 for r in rows), out
    flood = re.search(r"flood at another gateway, (\d+) replies/s: idle"
                      r" (\d+\.\d) us/s, flood (\d+\.\d) us/s", out)
    assert flood and int(flood.group(1)) > 1000, out
    assert re.search(r"accuracy, -t 3s on a veth: idle avg [1-9]\d* us"
                     r" stddev \d+ us; both cores busy avg [1-9]\d* us",
                     out), out
    assert re.search(r"user-space clock \(ping -U\): idle avg [1-9]\d* us;"
                     r" both cores busy avg [1-9]\d* us", out), out
    assert out.rstrip().endswith("scaling benchmark: done"), out
