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
    assert re.search(r"idle: +dpinger CPU \d+\.\d+ ms/s", out), out
    rates = [float(x) for x in re.findall(r"(\d+) (?:route )?changes/s",
                                          out)]
    assert len(rates) == 4 and all(r > 0 for r in rates), out
    assert re.search(r"rebinds during the benchmark: 0;", out), out
    assert out.rstrip().endswith("churn benchmark: done"), out
