"""`make demo` (tests/demo.sh): it must run to its PASS line and exit 0,
within its time budget, and leave no namespace behind."""

import os
import re
import subprocess

import pytest

import netns


def test_demo(netns_available, plain_binary):
    if not os.access(os.path.join(netns.ROOT, "dpinger"), os.X_OK):
        pytest.skip("SKIPPED: ./dpinger not built")
    proc = subprocess.run(["sh", "tests/demo.sh"], cwd=netns.ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=60)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout
    assert re.search(r"^PASS: ", proc.stdout, re.M), proc.stdout
    assert re.search(r"^  \S+: rebind \(\w[\w ]*\) on dd\d+f: echo id \d+$",
                     proc.stdout, re.M), proc.stdout
    ns = re.search(r"namespaces (dpdemo\d+fw)", proc.stdout).group(1)
    assert ns not in subprocess.run(["ip", "netns", "list"],
                                    stdout=subprocess.PIPE,
                                    text=True).stdout


def test_demo_fails_loudly(netns_available, tmp_path):
    """A FAIL line and exit 1 when it cannot work (no ./dpinger here)."""
    os.makedirs(str(tmp_path / "tests"))
    with open(os.path.join(netns.ROOT, "tests", "demo.sh")) as f:
        demo = f.read()
    with open(str(tmp_path / "tests" / "demo.sh"), "w") as f:
        f.write(demo)
    proc = subprocess.run(["sh", "tests/demo.sh"], cwd=str(tmp_path),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=30)
    assert proc.returncode == 1
    assert "FAIL: ./dpinger not built" in proc.stdout
