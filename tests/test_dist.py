"""Release files: the version in one place (VERSION), make dist's tarball
(byte-identical from run to run, from the committed tree only), the
port's distinfo that must match it, and make release's FreeBSD binaries
and SHA256SUMS."""

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from test_cross import Elf, ELFOSABI_FREEBSD, have_zig  # noqa: E402

NAME = "dpinger-selfheal"


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def version():
    return read("VERSION").strip()


def need_git_checkout():
    if not os.path.exists(os.path.join(ROOT, ".git")):
        pytest.skip("SKIPPED: not a git checkout")


def make_dist(tree=ROOT):
    r = subprocess.run(["make", "-s", "dist"], cwd=tree, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    path = os.path.join(tree, "build", "%s-%s.tar.gz" % (NAME, version()))
    with open(path, "rb") as f:
        return path, f.read()


@pytest.fixture(scope="module")
def dist():
    need_git_checkout()
    return make_dist()


def test_version_is_written_once():
    """VERSION is the only place: the daemon, the manual page and the port
    read it (the port's DISTVERSION is stamped from it by `make
    distinfo`)."""
    ver = version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", ver), ver
    assert read("VERSION") == ver + "\n"
    assert ver not in read("dpinger.c")
    assert ver not in read("dpinger.8")
    assert ver not in read("Makefile")
    assert re.search(r"^DISTVERSION=\t%s$" % re.escape(ver),
                     read("port/Makefile"), re.M)


def test_dash_v_prints_the_version():
    binary = os.path.join(ROOT, "dpinger")
    if not os.access(binary, os.X_OK):
        pytest.skip("SKIPPED: ./dpinger is not built (make dpinger)")
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("SKIPPED: needs root and unshare for a private network "
                    "namespace")
    r = subprocess.run(["unshare", "--net", binary, "-V"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "%s %s\n" % (NAME, version())
    assert r.stderr == ""


def test_two_runs_same_bytes(dist):
    path, first = dist
    assert os.path.basename(path) == "%s-%s.tar.gz" % (NAME, version())
    _, second = make_dist()
    assert first == second


def test_tarball_is_normalised(dist):
    path, data = dist
    # gzip: no file name (FLG 0), no time (MTIME 0)
    assert data[:3] == b"\x1f\x8b\x08"
    assert data[3] == 0 and data[4:8] == b"\0\0\0\0"
    prefix = "%s-%s" % (NAME, version())
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[0] == prefix
    assert names[1:] == sorted(names[1:], key=lambda n: n.encode())
    mtimes = {m.mtime for m in members}
    assert len(mtimes) == 1, mtimes
    for m in members:
        assert m.name == prefix or m.name.startswith(prefix + "/")
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "root", "root")
        assert m.mode in (0o644, 0o755), (m.name, oct(m.mode))
        assert m.isdir() or m.isfile(), m.name


def test_tarball_holds_what_builds_and_installs(dist):
    path, _ = dist
    prefix = "%s-%s/" % (NAME, version())
    with tarfile.open(path) as tar:
        names = {m.name[len(prefix):] for m in tar.getmembers()}
        script = tar.getmember(prefix + "port/pfsense/dpinger-install.sh")
        assert script.mode == 0o755
    for want in ("dpinger.c", "dpinger.8", "Makefile", "VERSION", "LICENSE",
                 "README.md", "port/linux/dpinger@.service"):
        assert want in names, want
    # the ports-tree side records the tarball's checksum: never inside it
    for never in ("port/distinfo", "port/Makefile", "patches", "tests",
                  "tools", ".gitattributes"):
        assert never not in names, never
        assert not any(n.startswith(never + "/") for n in names), never


def distinfo():
    """{key: value} of port/distinfo, e.g. 'SHA256 (name)'."""
    out = {}
    for line in read("port/distinfo").splitlines():
        key, value = line.split(" = ")
        out[key] = value
    return out


def test_distinfo_matches_the_tarball(dist):
    """The port's distinfo is the ports format (TIMESTAMP, SHA256 and SIZE
    of DISTNAME.tar.gz) and records make dist's tarball.  After changing
    VERSION or a file that goes into the tarball: commit, `make distinfo`,
    commit again."""
    path, data = dist
    name = os.path.basename(path)
    info = distinfo()
    assert sorted(info) == sorted(["TIMESTAMP", "SHA256 (%s)" % name,
                                   "SIZE (%s)" % name]), \
        "port/distinfo names another tarball: run `make distinfo`"
    assert re.fullmatch(r"\d{10}", info["TIMESTAMP"])
    assert info["SHA256 (%s)" % name] == hashlib.sha256(data).hexdigest(), \
        "port/distinfo is stale: commit, run `make distinfo`, commit"
    assert info["SIZE (%s)" % name] == str(len(data))
    # DISTNAME is PORTNAME-DISTVERSION: the name the port fetches
    port = read("port/Makefile")
    assert re.search(r"^PORTNAME=\t%s$" % NAME, port, re.M)


def test_tarball_follows_committed_files_only(tmp_path):
    """In a clone: a commit that changes a file in the tarball changes its
    bytes (so the distinfo test above would fail), a commit that changes
    only an export-ignored file (port/distinfo) does not, and neither does
    an uncommitted change."""
    need_git_checkout()
    clone = str(tmp_path / "clone")
    subprocess.run(["git", "clone", "-q", ROOT, clone], check=True,
                   timeout=60)

    def commit(path, text):
        with open(os.path.join(clone, path), "a") as f:
            f.write(text)
        subprocess.run(["git", "-C", clone, "commit", "-q", "-a", "-m", "x"],
                       check=True, timeout=60,
                       env=dict(os.environ, GIT_AUTHOR_NAME="t",
                                GIT_AUTHOR_EMAIL="t@example.org",
                                GIT_COMMITTER_NAME="t",
                                GIT_COMMITTER_EMAIL="t@example.org"))

    _, base = make_dist(clone)
    with open(os.path.join(clone, "dpinger.c"), "a") as f:
        f.write("/* not committed */\n")
    assert make_dist(clone)[1] == base
    subprocess.run(["git", "-C", clone, "checkout", "-q", "dpinger.c"],
                   check=True, timeout=60)
    commit("port/distinfo", "# another checksum\n")
    assert make_dist(clone)[1] == base
    commit("dpinger.c", "/* committed */\n")
    assert make_dist(clone)[1] != base


@pytest.fixture(scope="module")
def release(dist):
    if not have_zig():
        pytest.skip("SKIPPED: Python package ziglang is not installed")
    r = subprocess.run(["make", "release"], cwd=ROOT, capture_output=True,
                       text=True, timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    return os.path.join(ROOT, "build", "release")


def test_release_contents(release, dist):
    ver = version()
    binaries = {"amd64": 62, "arm64": 183}
    want = {"%s-%s.tar.gz" % (NAME, ver), "SHA256SUMS"} | {
        "%s-%s-freebsd-%s" % (NAME, ver, arch) for arch in binaries}
    assert set(os.listdir(release)) == want
    with open(os.path.join(release, "%s-%s.tar.gz" % (NAME, ver)),
              "rb") as f:
        assert f.read() == dist[1]
    for arch, machine in binaries.items():
        elf = Elf(os.path.join(release, "%s-%s-freebsd-%s" % (NAME, ver,
                                                              arch)))
        # branded as FreeBSD's toolchain brands, unlike make cross's
        assert elf.osabi == ELFOSABI_FREEBSD
        assert elf.machine == machine
        assert elf.interpreter() == "/libexec/ld-elf.so.1"
        assert elf.abi_tags() and 1400000 <= elf.abi_tags()[0] < 1500000
        # built from the tarball with its version
        assert ("%s %%s" % NAME).encode() in elf.data
        assert b"\0" + ver.encode() + b"\0" in elf.data


def test_release_sha256sums(release):
    with open(os.path.join(release, "SHA256SUMS")) as f:
        lines = f.read().splitlines()
    listed = []
    for line in lines:
        digest, name = line.split("  ")
        with open(os.path.join(release, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, name
        listed.append(name)
    assert listed == sorted(listed)
    assert set(listed) == set(os.listdir(release)) - {"SHA256SUMS"}
    if shutil.which("sha256sum"):
        r = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=release,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
