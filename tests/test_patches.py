"""patches/: the committed ports-tree diff is what `make patches` makes
from port/ now; it applies with `git apply` and `patch -p1` to a ports
tree that still holds the stock net/dpinger (patches/stand-in), adds
net/dpinger-selfheal and its net/Makefile line and touches nothing else;
`make check-patches` fails when it is out of date."""

import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIFF = os.path.join(ROOT, "patches", "freebsd-ports-net-dpinger-selfheal.diff")
STAND_IN = os.path.join(ROOT, "patches", "stand-in")
PORT_FILES = ["Makefile", "pkg-descr", "distinfo", "files/dpinger.in"]
NEW_LINE = "    SUBDIR += dpinger-selfheal"


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


def ports_tree(dest):
    """A ports tree as a committer has it: the stand-in's net/Makefile and
    stock net/dpinger, plus Mk/."""
    shutil.copytree(STAND_IN, str(dest))
    os.unlink(str(dest / "README"))
    (dest / "Mk").mkdir()
    (dest / "Mk" / "bsd.port.mk").write_text("# stand-in\n")
    return dest


def snapshot(tree):
    out = {}
    for base, _, files in os.walk(str(tree)):
        for f in files:
            full = os.path.join(base, f)
            with open(full, "rb") as fh:
                out[os.path.relpath(full, str(tree))] = fh.read()
    return out


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
    """New files under net/dpinger-selfheal/ only, and net/Makefile; never
    net/dpinger/."""
    with open(DIFF, encoding="utf-8") as f:
        text = f.read()
    headers = [l for l in text.splitlines() if l.startswith(("--- ", "+++ "))]
    assert headers, "empty diff"
    for h in headers:
        path = h[4:]
        assert path in ("a/net/Makefile", "b/net/Makefile") or \
            path.startswith(("a/net/dpinger-selfheal/",
                             "b/net/dpinger-selfheal/")), h
        assert "\t" not in h, "timestamp left in %r" % h
    for f in PORT_FILES:
        assert "+++ b/net/dpinger-selfheal/%s" % f in headers
    joined = "\n".join(headers)
    assert "net/dpinger/" not in joined
    assert "README" not in joined and "pfsense" not in joined
    # every file but net/Makefile is created from nothing
    hunks = re.findall(r"^\+\+\+ (\S+)\n@@ -(\d+),(\d+) ", text, re.M)
    for path, start, count in hunks:
        if path != "b/net/Makefile":
            assert (start, count) == ("0", "0"), path
    # net/Makefile: one line added, nothing removed
    mk = text.split("+++ b/net/Makefile\n", 1)[1].split("\ndiff ", 1)[0]
    assert [l for l in mk.splitlines() if l.startswith(("+", "-"))] == \
        ["+" + NEW_LINE]


def test_git_apply_and_patch_check_on_a_tree_with_stock_dpinger(tmp_path):
    need("git")
    need("patch")
    tree = ports_tree(tmp_path / "ports")
    r = subprocess.run(["git", "apply", "--check", "-v", DIFF],
                       cwd=str(tree), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["patch", "-p1", "--dry-run", "--batch", "-i", DIFF],
                       cwd=str(tree), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # no fuzz, no offset: the context is the stand-in's, line for line
    assert "fuzz" not in r.stdout and "offset" not in r.stdout, r.stdout


@pytest.mark.parametrize("tool", ["git", "patch"])
def test_diff_applies_beside_stock_dpinger(tmp_path, tool):
    """Applied for real: net/dpinger-selfheal is port/, net/Makefile gains
    exactly the SUBDIR line after dpinger's, stock net/dpinger and
    everything else are byte for byte what they were."""
    need(tool)
    tree = ports_tree(tmp_path / "ports")
    before = snapshot(tree)
    cmd = (["git", "apply", DIFF] if tool == "git" else
           ["patch", "-p1", "--batch", "-i", DIFF])
    r = subprocess.run(cmd, cwd=str(tree), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    after = snapshot(tree)
    new = {p for p in after if p not in before}
    assert new == {"net/dpinger-selfheal/" + f for f in PORT_FILES}
    for name in PORT_FILES:
        with open(os.path.join(ROOT, "port", name), "rb") as a:
            assert a.read() == after["net/dpinger-selfheal/" + name], name
    changed = {p for p in before if before[p] != after[p]}
    assert changed == {"net/Makefile"}
    old = before["net/Makefile"].decode().splitlines()
    lines = after["net/Makefile"].decode().splitlines()
    at = old.index("    SUBDIR += dpinger") + 1
    assert lines == old[:at] + [NEW_LINE] + old[at:]
    # still in alphabetical order, as the ports tree keeps it
    subdirs = [l.split("+= ")[1] for l in lines if "SUBDIR +=" in l]
    assert subdirs == sorted(subdirs)


def test_stand_in_is_a_ports_tree_with_stock_dpinger():
    """The fixture holds what the old diff silently overwrote: a stock
    net/dpinger with its own Makefile and distinfo."""
    with open(os.path.join(STAND_IN, "net", "dpinger", "Makefile")) as f:
        assert re.search(r"^PORTNAME=\tdpinger$", f.read(), re.M)
    assert os.path.isfile(os.path.join(STAND_IN, "net", "dpinger",
                                       "distinfo"))
    with open(os.path.join(STAND_IN, "net", "Makefile")) as f:
        text = f.read()
    assert "    SUBDIR += dpinger\n" in text
    assert "dpinger-selfheal" not in text
    assert text.rstrip().endswith(".include <bsd.port.subdir.mk>")
