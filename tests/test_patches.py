"""patches/: the committed ports-tree diff is what `make patches` makes
from port/ now, it applies to a ports tree and reproduces port/, and
`make check-patches` fails when it is out of date."""

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIFF = os.path.join(ROOT, "patches", "freebsd-ports-net-dpinger.diff")
PORT_FILES = ["Makefile", "pkg-descr", "pkg-plist", "files/dpinger.in"]


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip("SKIPPED: %s is not installed" % tool)


def copy_tree(dest):
    """The files check-patches needs, as the checkout has them now."""
    os.makedirs(dest)
    shutil.copy(os.path.join(ROOT, "Makefile"), dest)
    for d in ("port", "patches"):
        shutil.copytree(os.path.join(ROOT, d), os.path.join(dest, d))
    return dest


@pytest.mark.parametrize("make", ["make", "bmake"])
def test_check_patches_passes_on_this_tree(make, tmp_path):
    need(make)
    tree = copy_tree(str(tmp_path / "t"))
    r = subprocess.run([make, "check-patches"], cwd=tree,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_check_patches_fails_when_port_changes(tmp_path):
    need("make")
    tree = copy_tree(str(tmp_path / "t"))
    with open(os.path.join(tree, "port", "pkg-descr"), "a") as f:
        f.write("One more line.\n")
    r = subprocess.run(["make", "check-patches"], cwd=tree,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "out of date" in r.stderr and "make patches" in r.stderr
    # `make patches` brings it back in line.
    r = subprocess.run(["make", "patches"], cwd=tree, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["make", "check-patches"], cwd=tree,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_generation_is_deterministic(tmp_path):
    out1, out2 = str(tmp_path / "1.diff"), str(tmp_path / "2.diff")
    for out in (out1, out2):
        subprocess.run(["sh", os.path.join(ROOT, "patches", "mkdiff.sh"),
                        out], check=True, timeout=60,
                       env=dict(os.environ, TZ="America/New_York"))
    with open(out1, "rb") as a, open(out2, "rb") as b:
        assert a.read() == b.read()


def test_diff_shape():
    with open(DIFF, encoding="utf-8") as f:
        text = f.read()
    headers = [l for l in text.splitlines() if l.startswith(("--- ", "+++ "))]
    assert headers, "empty diff"
    for h in headers:
        path = h[4:]
        assert path.startswith(("a/net/dpinger/", "b/net/dpinger/")), h
        assert "\t" not in h, "timestamp left in %r" % h
    for f in PORT_FILES:
        assert "+++ b/net/dpinger/%s" % f in headers
    assert "README" not in "\n".join(headers)
    assert "pfsense" not in "\n".join(headers)


def test_diff_applies_to_a_ports_tree(tmp_path):
    """patch -p1 at the top of a ports tree yields net/dpinger == port/."""
    need("patch")
    tree = tmp_path / "ports"
    (tree / "net").mkdir(parents=True)
    (tree / "Mk").mkdir()
    with open(DIFF, "rb") as f:
        r = subprocess.run(["patch", "-p1", "--batch"], cwd=str(tree),
                           stdin=f, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in PORT_FILES:
        with open(os.path.join(ROOT, "port", name), "rb") as a, \
                open(str(tree / "net" / "dpinger" / name), "rb") as b:
            assert a.read() == b.read(), name
