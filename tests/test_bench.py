"""The churn benchmark (tests/bench/churn.py, `make bench`) runs and prints
its figures.  Performance is judged from the figures it prints, not by a
timed assertion here: this only checks that churn happened, that every
figure is there, and that dpinger kept monitoring without a rebind."""

import os
import re
import subprocess
import sys

import pytest

import netns

BENCH = os.path.join(netns.ROOT, "tests", "bench", "churn.py")


def test_churn_benchmark_prints_figures(netns_available, plain_binary):
    proc = subprocess.run([sys.executable, BENCH, "--seconds", "1.5",
                           "--binary", plain_binary],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=120)
    print(proc.stdout)
    if "SKIPPED" in proc.stdout:
        pytest.skip(proc.stdout.strip())
    assert proc.returncode == 0, proc.stdout
    out = proc.stdout
    rows = re.findall(r"^  (idle|route churn|IPv[46] addresses[^\d]*?)"
                      r" +(\d+) +(\d+\.\d+) +\S+$", out, re.M)
    assert len(rows) == 5, out
    assert all(int(rate) > 0 for _, rate, _ in rows[1:]), out
    assert re.search(r"rebinds during the benchmark: 0;", out), out
    assert out.rstrip().endswith("churn benchmark: done"), out
