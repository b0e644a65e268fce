"""FreeBSD cross builds (make cross, Zig's bundled FreeBSD sysroot) for
every FreeBSD architecture, the proof that they carry the PF_ROUTE watcher,
that the layout assertions (dpinger.c's and the unit tests' fixtures') are
compiled and would fail, and that gcc and clang build dpinger.c
warning-free.

FreeBSD itself cannot run here: what these tests establish is that the
code compiles and links against FreeBSD's own headers and libc for amd64,
arm64, i386, armv7, powerpc64 (big-endian), powerpc64le and riscv64, and
that the byte
layouts the parser and its tests use are FreeBSD's on each.  That the
parser reads each layout right is tests/unit/rtsock.c's job: it runs every
PF_ROUTE fixture in each layout model.
"""
import os
import re
import shutil
import struct
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DPINGER_C = os.path.join(ROOT, "dpinger.c")
WARN = ["-Wall", "-Wextra", "-Werror"]
TARGETS = {
    # make cross's name: (zig target, ELF e_machine, what it is called)
    "amd64": ("x86_64-freebsd.14.0", 62, "x86-64"),
    "arm64": ("aarch64-freebsd.14.0", 183, "AArch64"),
    "i386": ("x86-freebsd.14.0", 3, "Intel 80386"),
    "armv7": ("arm-freebsd.14.0-eabihf", 40, "ARM"),
    "powerpc64": ("powerpc64-freebsd.14.0", 21, "PowerPC64"),
    "powerpc64le": ("powerpc64le-freebsd.14.0", 21, "PowerPC64"),
    "riscv64": ("riscv64-freebsd.14.0", 243, "RISC-V"),
}
# One architecture per layout model (long size, byte order), for the
# checks that compile dpinger.c again.
MODELS = ["amd64", "i386", "powerpc64"]
# Flags as make cross passes them: Zig hands powerpc64* a flag of its own
# that clang then calls unused.
CROSSFLAGS = WARN + ["-Wno-unused-command-line-argument"]
# Zig says the same about its own libc stubs the first time it builds them
# for powerpc64*; that is not our code.
ZIG_OWN_NOISE = re.compile(r"^zig: warning: argument unused during "
                           r"compilation: '-mabi=ieeelongdouble'.*$", re.M)


def our_warnings(stderr):
    return ZIG_OWN_NOISE.sub("", stderr)
ELFOSABI_FREEBSD = 9
NT_FREEBSD_ABI_TAG = 1


def have_zig():
    try:
        import ziglang  # noqa: F401
    except ImportError:
        return False
    return True


needs_zig = pytest.mark.skipif(not have_zig(),
                               reason="SKIPPED: Python package ziglang "
                                      "(Zig's C compiler) is not installed")


def zigcc(*args, cwd=ROOT, timeout=600):
    return subprocess.run([sys.executable, "-m", "ziglang", "cc"] +
                          list(args), cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


# A small ELF reader (32 and 64 bits, either byte order): no binutils
# needed, any machine.

class Elf:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        d = self.data
        assert d[:4] == b"\x7fELF", path
        assert d[4] in (1, 2) and d[5] in (1, 2), "bad ELF class or order"
        self.is64 = d[4] == 2
        self.e = "<" if d[5] == 1 else ">"
        self.osabi = d[7]
        word = "Q" if self.is64 else "I"
        (self.type, self.machine, _, _, self.phoff, self.shoff, _, _,
         self.phentsize, self.phnum, self.shentsize, self.shnum,
         self.shstrndx) = struct.unpack_from(
             self.e + "HHI" + word * 3 + "IHHHHHH", d, 16)

    def unpack(self, fmt, off):
        return struct.unpack_from(self.e + fmt, self.data, off)

    def segments(self):
        for i in range(self.phnum):
            off = self.phoff + i * self.phentsize
            if self.is64:
                p_type, _, p_offset, _, _, p_filesz, _, _ = self.unpack(
                    "IIQQQQQQ", off)
            else:
                p_type, p_offset, _, _, p_filesz, _, _, _ = self.unpack(
                    "IIIIIIII", off)
            yield p_type, self.data[p_offset:p_offset + p_filesz]

    def interpreter(self):
        for p_type, body in self.segments():
            if p_type == 3:     # PT_INTERP
                return body.rstrip(b"\0").decode()
        return None

    def notes(self):
        for p_type, body in self.segments():
            if p_type != 4:     # PT_NOTE
                continue
            off = 0
            while off + 12 <= len(body):
                namesz, descsz, ntype = struct.unpack_from(self.e + "III",
                                                           body, off)
                off += 12
                name = body[off:off + namesz].rstrip(b"\0").decode(
                    "latin-1")
                off += (namesz + 3) & ~3
                desc = body[off:off + descsz]
                off += (descsz + 3) & ~3
                yield name, ntype, desc

    def abi_tags(self):
        """The FreeBSD ABI note's __FreeBSD_version values."""
        return [struct.unpack(self.e + "I", desc[:4])[0]
                for name, ntype, desc in self.notes()
                if name == "FreeBSD" and ntype == NT_FREEBSD_ABI_TAG]

    def sections(self):
        """(name, type, offset, size, link, info, entsize) per section."""
        for i in range(self.shnum):
            fields = self.unpack("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII",
                                 self.shoff + i * self.shentsize)
            yield (fields[0], fields[1], fields[4], fields[5], fields[6],
                   fields[7], fields[9])

    def section_name(self, index):
        secs = list(self.sections())
        stroff = secs[self.shstrndx][2]
        start = stroff + secs[index][0]
        return self.data[start:self.data.index(b"\0", start)].decode()

    def symtab(self):
        """[(name, st_info type, st_shndx)] of .symtab, locals included."""
        secs = list(self.sections())
        out = []
        for _, sh_type, off, size, link, _, entsize in secs:
            if sh_type != 2:    # SHT_SYMTAB
                continue
            stroff = secs[link][2]
            for i in range(size // entsize):
                if self.is64:
                    st_name, st_info, _, st_shndx, _, _ = self.unpack(
                        "IBBHQQ", off + i * entsize)
                else:
                    st_name, _, _, st_info, _, st_shndx = self.unpack(
                        "IIIBBH", off + i * entsize)
                end = self.data.index(b"\0", stroff + st_name)
                out.append((self.data[stroff + st_name:end].decode(),
                            st_info & 0xf, st_shndx))
        return out

    def needed(self):
        """DT_NEEDED libraries of the .dynamic section."""
        secs = list(self.sections())
        out = []
        step = 16 if self.is64 else 8
        for _, sh_type, off, size, link, _, _ in secs:
            if sh_type != 6:    # SHT_DYNAMIC
                continue
            stroff = secs[link][2]
            for i in range(size // step):
                tag, val = self.unpack("qQ" if self.is64 else "iI",
                                       off + step * i)
                if tag == 1:    # DT_NEEDED
                    end = self.data.index(b"\0", stroff + val)
                    out.append(self.data[stroff + val:end].decode())
        return out

    def symbols(self):
        """{name: (defined, type)}"""
        return {name: (shndx != 0, kind)
                for name, kind, shndx in self.symtab()}

    def called_from(self, func):
        """What the relocations of .text.<func> (an object built with
        -ffunction-sections) point at: symbol or section names, with
        ".text." dropped."""
        secs = list(self.sections())
        names = [self.section_name(i) for i in range(len(secs))]
        text = names.index(".text." + func)
        syms = self.symtab()
        out = set()
        for _, sh_type, off, size, _, info, entsize in secs:
            # SHT_RELA or SHT_REL (i386, armv7) for that text
            if sh_type not in (4, 9) or info != text:
                continue
            for i in range(size // entsize):
                if self.is64:
                    r_info = self.unpack("QQ", off + i * entsize)[1]
                    index = r_info >> 32
                else:
                    r_info = self.unpack("II", off + i * entsize)[1]
                    index = r_info >> 8
                name, kind, shndx = syms[index]
                if kind == 3:   # STT_SECTION
                    name = names[shndx]
                out.add(name[len(".text."):] if name.startswith(".text.")
                        else name)
        return out


STT_FUNC = 2


@pytest.fixture(scope="session")
def cross_build():
    """make cross, once per test session: seven architectures."""
    if not have_zig():
        pytest.skip("SKIPPED: Python package ziglang is not installed")
    proc = subprocess.run(["make", "cross"], cwd=ROOT, capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # -Werror is on: anything said on stderr is worth seeing
    assert "warning" not in our_warnings(proc.stderr), proc.stderr
    return {arch: os.path.join(ROOT, "build", "dpinger-freebsd-" + arch)
            for arch in TARGETS}


@pytest.mark.parametrize("arch", sorted(TARGETS))
def test_cross_binary_is_freebsd(cross_build, arch):
    path = cross_build[arch]
    assert os.path.isfile(path), path
    elf = Elf(path)
    # Zig's linker leaves EI_OSABI at 0 (FreeBSD's own toolchain writes 9);
    # FreeBSD's image activator brands by the ABI note first, checked below.
    assert elf.osabi in (0, ELFOSABI_FREEBSD)
    assert elf.machine == TARGETS[arch][1], TARGETS[arch][2]
    # the layout models: 32-bit on i386 and armv7, big-endian on powerpc64
    assert elf.is64 == (arch not in ("i386", "armv7"))
    assert elf.e == (">" if arch == "powerpc64" else "<")
    assert elf.type in (2, 3)           # ET_EXEC or ET_DYN
    assert elf.interpreter() == "/libexec/ld-elf.so.1"
    tags = elf.abi_tags()
    assert tags, "no FreeBSD ABI note"
    assert 1400000 <= tags[0] < 1500000, tags    # built for 14.x, the floor
    # FreeBSD's libc and its pthread library, by their FreeBSD sonames
    assert {"libc.so.7", "libthr.so.3"} <= set(elf.needed()), elf.needed()


@pytest.mark.parametrize("arch", sorted(TARGETS))
def test_cross_binary_has_watcher(cross_build, arch):
    """watch_thread is handed to pthread_create, so it survives -O2 as a
    function of its own; without a watcher it would not exist at all."""
    syms = Elf(cross_build[arch]).symbols()
    for name in ("watch_thread", "watch_open", "watch_resync"):
        assert name in syms and syms[name][0], name
        assert syms[name][1] == STT_FUNC, name
    assert "rtmsg_parse_netlink" not in syms


@pytest.mark.parametrize("arch", sorted(TARGETS))
def test_freebsd_preprocessing_picks_pf_route(arch):
    if not have_zig():
        pytest.skip("SKIPPED: Python package ziglang is not installed")
    proc = zigcc("-target", TARGETS[arch][0], "-dM", "-E",
                 "-Wno-unused-command-line-argument", DPINGER_C)
    assert proc.returncode == 0, proc.stderr
    macros = proc.stdout
    assert re.search(r"^#define WATCH_PF_ROUTE 1$", macros, re.M)
    assert re.search(r"^#define HAVE_WATCHER 1$", macros, re.M)
    assert re.search(r"^#define rtmsg_parse rtmsg_parse_bsd$", macros, re.M)
    assert re.search(r"^#define SO_RERROR ", macros, re.M)
    assert not re.search(r"^#define WATCH_NETLINK ", macros, re.M)


def watcher_calls(tmp_path, compiler, extra):
    """What watch_thread() and watch_open() call, from the relocations of
    dpinger.c compiled at -O0 with a section per function: nothing is
    inlined, and every call leaves a relocation."""
    obj = str(tmp_path / "dpinger.o")
    proc = subprocess.run(compiler + extra + ["-O0", "-ffunction-sections",
                                              "-c", "-o", obj, DPINGER_C] +
                          WARN, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    elf = Elf(obj)
    return elf.called_from("watch_thread"), elf.called_from("watch_open")


@needs_zig
@pytest.mark.parametrize("arch", MODELS)
def test_freebsd_watcher_uses_pf_route(tmp_path, arch):
    thread, opener = watcher_calls(
        tmp_path, [sys.executable, "-m", "ziglang", "cc"],
        ["-target", TARGETS[arch][0], "-Wno-unused-command-line-argument"])
    assert {"rtmsg_parse_bsd", "watch_apply", "watch_resync",
            "recv"} <= thread, sorted(thread)
    assert "rtmsg_parse_netlink" not in thread
    assert {"socket", "setsockopt"} <= opener, sorted(opener)
    assert "bind" not in opener     # netlink's watch_open binds, PF_ROUTE's
    # does not
    # Issue 9: the routing socket gets the netlink one's receive buffer.
    assert "watch_rcvbuf" in opener, sorted(opener)


def test_linux_watcher_uses_netlink(tmp_path):
    """The control for the test above: the same check tells the two
    watchers apart."""
    if shutil.which("clang") is None:
        pytest.skip("SKIPPED: clang is not installed")
    thread, opener = watcher_calls(tmp_path, ["clang"], [])
    assert "rtmsg_parse_netlink" in thread, sorted(thread)
    assert "rtmsg_parse_bsd" not in thread
    assert {"socket", "bind", "watch_rcvbuf"} <= opener, sorted(opener)


@needs_zig
def test_static_assertions_survive_preprocessing():
    proc = zigcc("-target", TARGETS["amd64"][0], "-E", DPINGER_C)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    asserts = re.findall(r"_Static_assert\s*\((.*?)\"([^\"]+)\"\s*\)", text,
                         re.S)
    names = {name for _, name in asserts}
    for name in ("ifa_msghdr", "if_msghdr", "if_announcemsghdr",
                 "rt_msghdr", "sockaddr_in", "sockaddr_in6", "sockaddr_dl",
                 "RTM_VERSION", "SA_SIZE alignment"):
        assert name in names, (name, sorted(names))
    ifam = [body for body, name in asserts if name == "ifa_msghdr"][0]
    assert "struct ifa_msghdr" in ifam and "offsetof" in ifam, ifam


def mutate(src, dst, old, new):
    with open(src) as f:
        text = f.read()
    assert old in text, old
    with open(dst, "w") as f:
        f.write(text.replace(old, new, 1))


def mutant_build(tmp_path, arch, *changes):
    """Compile dpinger.c for arch with each (old, new) change made: the
    result of the attempt."""
    copy = str(tmp_path / "dpinger.c")
    source = DPINGER_C
    for old, new in changes:
        mutate(source, copy, old, new)
        source = copy
    return zigcc("-target", TARGETS[arch][0], "-c", "-o",
                 str(tmp_path / "x.o"), copy, *CROSSFLAGS)


@needs_zig
@pytest.mark.parametrize("arch", MODELS)
def test_dpinger_layout_assertion_bites(tmp_path, arch):
    """A wrong offset in dpinger.c fails the FreeBSD build: the static
    assertions are compiled, not just present."""
    proc = mutant_build(tmp_path, arch, ("#define BSD_IFAM_INDEX_OFF\t12",
                                         "#define BSD_IFAM_INDEX_OFF\t14"))
    assert proc.returncode != 0
    assert "static assertion failed" in proc.stderr, proc.stderr
    assert "ifa_msghdr" in proc.stderr, proc.stderr


@needs_zig
@pytest.mark.parametrize("arch", MODELS)
def test_dpinger_byte_order_assertion_bites(tmp_path, arch):
    """The parser's idea of the host byte order is checked against
    FreeBSD's <sys/endian.h> on each model: swap the two answers."""
    proc = mutant_build(
        tmp_path, arch,
        ("#define BSD_HOST_BIG_ENDIAN\ttrue",
         "#define BSD_HOST_BIG_ENDIAN\tfalse"),
        ("#define BSD_HOST_BIG_ENDIAN\tfalse\n#endif",
         "#define BSD_HOST_BIG_ENDIAN\ttrue\n#endif"))
    assert proc.returncode != 0
    assert "byte order" in proc.stderr, proc.stderr


@pytest.mark.parametrize("arch", sorted(TARGETS))
def test_fixture_layout_compiled_for_every_arch(cross_build, arch):
    """make cross compiled tests/unit/fbsd_layout_check.c for each
    architecture: its model (long size, byte order) and every offset the
    fixtures use are FreeBSD's there."""
    assert os.path.isfile(os.path.join(ROOT, "build",
                                       "fbsd-layout-%s.o" % arch))


# A wrong number in the fixtures' layout fails the check: an offset, the
# model's long size or rt_msghdr size, the architecture's byte order.
LAYOUT_MUTATIONS = {
    "amd64": [("#define FX_IFAN_WHAT\t\t22", "#define FX_IFAN_WHAT\t\t20",
               "FX_IFAN_WHAT"),
              ("#define FX_LP64_SA_ALIGN\t8", "#define FX_LP64_SA_ALIGN\t4",
               "FX_LP64_SA_ALIGN")],
    "i386": [("#define FX_ILP32_SA_ALIGN\t4", "#define FX_ILP32_SA_ALIGN\t8",
              "FX_ILP32_SA_ALIGN"),
             ("#define FX_ILP32_RTM_SIZE\t92", "#define FX_ILP32_RTM_SIZE\t96",
              "FX_ILP32_RTM_SIZE")],
    "powerpc64": [("#define FX_ARCH_BIG_ENDIAN\t1",
                   "#define FX_ARCH_BIG_ENDIAN\t0", "FX_ARCH_BIG_ENDIAN")],
}


@pytest.mark.parametrize("arch,old,new,name",
                         [(a, o, n, w) for a in sorted(LAYOUT_MUTATIONS)
                          for o, n, w in LAYOUT_MUTATIONS[a]])
def test_fixture_layout_check_bites(cross_build, tmp_path, arch, old, new,
                                    name):
    unit = os.path.join(ROOT, "tests", "unit")
    shutil.copy(os.path.join(unit, "fbsd_layout_check.c"), tmp_path)
    mutate(os.path.join(unit, "fbsd_layout.h"),
           str(tmp_path / "fbsd_layout.h"), old, new)
    proc = zigcc("-target", TARGETS[arch][0], "-c", "-o",
                 str(tmp_path / "x.o"),
                 str(tmp_path / "fbsd_layout_check.c"), *CROSSFLAGS)
    assert proc.returncode != 0
    assert name in proc.stderr, proc.stderr


@needs_zig
@pytest.mark.parametrize("arch", ["amd64", "arm64"] + MODELS[1:])
def test_links_for_freebsd_15(tmp_path, arch):
    """pfSense 2.8 runs FreeBSD 15: link against its libc as well."""
    target = TARGETS[arch][0].replace("freebsd.14.0", "freebsd.15.0")
    out = str(tmp_path / "dpinger")
    proc = zigcc("-target", target, "-O2", *CROSSFLAGS, "-o", out,
                 DPINGER_C, "-pthread")
    assert proc.returncode == 0, proc.stderr
    elf = Elf(out)
    assert elf.osabi in (0, ELFOSABI_FREEBSD)
    assert elf.machine == TARGETS[arch][1]
    tags = elf.abi_tags()
    assert tags and 1500000 <= tags[0] < 1600000, tags


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
@pytest.mark.parametrize("opt", ["-O0", "-O2"])
def test_native_build_warning_free(tmp_path, compiler, opt):
    if shutil.which(compiler) is None:
        pytest.skip("SKIPPED: %s is not installed" % compiler)
    proc = subprocess.run([compiler, opt, "-g", *WARN, "-o",
                           str(tmp_path / "dpinger"), DPINGER_C, "-pthread"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_build_without_watcher(tmp_path, compiler):
    """Issue 9: a platform with no routing-socket watcher (simulated: Linux
    headers without __linux__; _GNU_SOURCE stands for a libc that declares
    accept4 by default) still builds with -Werror, and says loudly what
    it lacks."""
    if shutil.which(compiler) is None:
        pytest.skip("SKIPPED: %s is not installed" % compiler)
    out = str(tmp_path / "dpinger")
    proc = subprocess.run([compiler, "-U__linux__", "-D_GNU_SOURCE", "-O2",
                           *WARN, "-o", out, DPINGER_C, "-pthread"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "warning" in proc.stderr, proc.stderr
    assert "no interface watcher here" in proc.stderr, proc.stderr
    syms = Elf(out).symbols()
    assert "watch_thread" not in syms and "watch_open" not in syms
    assert "send_thread" in syms


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
@pytest.mark.parametrize("source", ["unit.c", "rtsock.c"])
def test_unit_sources_warning_free(tmp_path, compiler, source):
    """The unit tests include dpinger.c with DPINGER_TEST (no main()):
    that configuration must build with both compilers too."""
    if shutil.which(compiler) is None:
        pytest.skip("SKIPPED: %s is not installed" % compiler)
    proc = subprocess.run([compiler, "-O1", *WARN, "-Wno-unused-function",
                           "-c", "-o", str(tmp_path / "unit.o"),
                           os.path.join(ROOT, "tests", "unit", source)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
