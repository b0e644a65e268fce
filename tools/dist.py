#!/usr/bin/env python3
"""Release files, made from the committed tree (HEAD) only.

    python3 tools/dist.py dist            build/dpinger-selfheal-V.tar.gz
    python3 tools/dist.py release ZIGCC   build/release/: the tarball, FreeBSD
                                          amd64 and arm64 binaries, SHA256SUMS
    python3 tools/dist.py distinfo        port/distinfo, and port/Makefile's
                                          DISTVERSION, for that tarball

V is the committed VERSION file.  The tarball depends on the committed
files' names, contents and executable bits alone, not on the commit, the
clock or the machine: every entry has the same fixed mtime, owner 0:0, mode
0644 or 0755, entries are in byte order of their names, and gzip writes no
name and no time.  So two runs give the same bytes, and port/distinfo stays
true until a file in the tarball changes.  What .gitattributes marks
export-ignore (tests, the ports-tree files and patches, which record the
tarball's checksum) is left out.
"""
import gzip
import hashlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
NAME = "dpinger-selfheal"
# 2026-01-01 00:00:00 UTC: every entry's mtime, and distinfo's TIMESTAMP.
MTIME = 1767225600
# FreeBSD architecture -> Zig target, for the release binaries.
RELEASE_TARGETS = {"amd64": "x86_64-freebsd.14.0",
                   "arm64": "aarch64-freebsd.14.0"}
ELFOSABI_FREEBSD = 9


def git(*args):
    return subprocess.run(["git", "-C", ROOT] + list(args), check=True,
                          capture_output=True, timeout=120).stdout


def version():
    text = git("show", "HEAD:VERSION").decode().strip()
    if not re.fullmatch(r"\d+(\.\d+)*", text):
        sys.exit("dist.py: VERSION must be numeric, e.g. 1.0.0: %r" % text)
    return text


def tarball_name(ver):
    return "%s-%s.tar.gz" % (NAME, ver)


def tarball_bytes(ver):
    """The release tarball of HEAD, in memory."""
    src = tarfile.open(fileobj=io.BytesIO(git("archive", "--format=tar",
                                              "HEAD")))
    prefix = "%s-%s" % (NAME, ver)
    entries = []
    for m in src.getmembers():
        if not (m.isdir() or m.isfile() or m.issym()):
            continue
        data = src.extractfile(m).read() if m.isfile() else None
        entries.append((m, data))
    top = tarfile.TarInfo(prefix)
    top.type = tarfile.DIRTYPE
    entries.sort(key=lambda e: e[0].name.encode())
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w",
                      format=tarfile.USTAR_FORMAT) as tar:
        for m, data in [(top, None)] + entries:
            info = tarfile.TarInfo(prefix if m is top else
                                   prefix + "/" + m.name)
            info.type = m.type
            info.mtime = MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = 0o755 if m.isdir() or m.mode & 0o100 else 0o644
            info.linkname = m.linkname
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0,
                       compresslevel=9) as gz:
        gz.write(out.getvalue())
    return packed.getvalue()


def dist():
    ver = version()
    data = tarball_bytes(ver)
    os.makedirs(BUILD, exist_ok=True)
    path = os.path.join(BUILD, tarball_name(ver))
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)
    print(path)
    return path


def brand_freebsd(path):
    """Set EI_OSABI to ELFOSABI_FREEBSD, as FreeBSD's toolchain (and its
    brandelf(1)) does; Zig's linker leaves 0."""
    with open(path, "r+b") as f:
        ident = f.read(8)
        if ident[:4] != b"\x7fELF":
            sys.exit("dist.py: %s is not an ELF file" % path)
        f.seek(7)
        f.write(bytes([ELFOSABI_FREEBSD]))


def release(zigcc):
    ver = version()
    tarball = dist()
    out = os.path.join(BUILD, "release")
    work = os.path.join(BUILD, "release-src")
    for d in (out, work):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    with tarfile.open(tarball) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(work, filter="data")
        else:
            tar.extractall(work)
    src = os.path.join(work, "%s-%s" % (NAME, ver))
    files = [os.path.basename(tarball)]
    shutil.copy(tarball, out)
    # The binaries come from the tarball, built by its own Makefile.
    for arch, target in sorted(RELEASE_TARGETS.items()):
        binary = os.path.join(src, "dpinger")
        if os.path.exists(binary):
            os.unlink(binary)
        subprocess.run(["make", "-C", src, "dpinger",
                        "CC=%s -target %s" % (" ".join(
                            shlex.quote(w) for w in zigcc), target),
                        "CFLAGS=-O2", "LDFLAGS=-s",
                        "WARNFLAGS=-Wall -Wextra -Werror"], check=True,
                       timeout=900)
        name = "%s-%s-freebsd-%s" % (NAME, ver, arch)
        shutil.copy(binary, os.path.join(out, name))
        brand_freebsd(os.path.join(out, name))
        files.append(name)
    sums = []
    for name in sorted(files):
        with open(os.path.join(out, name), "rb") as f:
            sums.append("%s  %s\n" % (hashlib.sha256(f.read()).hexdigest(),
                                      name))
    with open(os.path.join(out, "SHA256SUMS"), "w") as f:
        f.writelines(sums)
    print(out)


def distinfo_text(ver, data):
    name = tarball_name(ver)
    return ("TIMESTAMP = %d\nSHA256 (%s) = %s\nSIZE (%s) = %d\n" %
            (MTIME, name, hashlib.sha256(data).hexdigest(), name,
             len(data)))


def distinfo():
    ver = version()
    with open(os.path.join(ROOT, "port", "distinfo"), "w") as f:
        f.write(distinfo_text(ver, tarball_bytes(ver)))
    makefile = os.path.join(ROOT, "port", "Makefile")
    with open(makefile) as f:
        text = f.read()
    text, n = re.subn(r"^DISTVERSION=\t.*$", "DISTVERSION=\t" + ver, text,
                      flags=re.M)
    if n != 1:
        sys.exit("dist.py: no DISTVERSION line in port/Makefile")
    with open(makefile, "w") as f:
        f.write(text)


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "dist":
        dist()
    elif len(sys.argv) == 3 and sys.argv[1] == "release":
        release(shlex.split(sys.argv[2]))
    elif len(sys.argv) == 2 and sys.argv[1] == "distinfo":
        distinfo()
    else:
        sys.exit("usage: dist.py dist | release ZIGCC | distinfo")


if __name__ == "__main__":
    main()
