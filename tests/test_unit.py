"""The C unit tests (tests/unit/*.c), built by `make unit`, run here.

Each binary prints "N passed, M failed" as its last line and exits 0 only
when nothing failed.  A binary that was not built is a SKIPPED test, never
a silent pass.
"""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUMMARY = re.compile(r"^(\d+) passed, 0 failed$")


@pytest.mark.parametrize("name", ["unit", "unit-rtsock"])
def test_unit_binary(name):
    path = os.path.join(ROOT, "build", name)
    if not os.access(path, os.X_OK):
        pytest.skip("SKIPPED: build/%s not built (run `make unit`)" % name)
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "halt_on_error=1:abort_on_error=0:exitcode=99"
    env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1:exitcode=98"
    proc = subprocess.run([path], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    output = "stdout:\n%s\nstderr:\n%s" % (proc.stdout, proc.stderr)
    assert proc.returncode == 0, output
    lines = proc.stdout.strip().splitlines()
    assert lines, output
    match = SUMMARY.match(lines[-1])
    assert match, output
    assert int(match.group(1)) > 0, output
    assert "Sanitizer" not in proc.stderr, output
    assert "runtime error" not in proc.stderr, output


def test_rtsock_fixtures_restate_the_layout():
    """The PF_ROUTE fixtures are written at fbsd_layout.h's offsets (which
    `make cross` checks against FreeBSD's headers), never at dpinger.c's
    BSD_* offsets: a wrong offset in dpinger.c must not be copied into
    its own test."""
    with open(os.path.join(ROOT, "tests", "unit", "rtsock.c")) as f:
        code = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    assert re.findall(r"\bBSD_\w+", code) == []
    assert "#include \"fbsd_layout.h\"" in code
    assert len(re.findall(r"\bFX_\w+", code)) > 100


def llvm_tool(name):
    """The LLVM tool matching clang's version, else the unversioned one."""
    import shutil
    try:
        out = subprocess.run(["clang", "--version"], capture_output=True,
                             text=True, timeout=30).stdout
    except OSError:
        return None
    major = re.search(r"clang version (\d+)", out)
    if major and shutil.which("%s-%s" % (name, major.group(1))):
        return "%s-%s" % (name, major.group(1))
    return shutil.which(name)


PARSERS = ["rtmsg_parse_bsd", "rtmsg_parse_bsd_layout", "bsd_addr_sockaddrs",
           "bsd_u16", "bsd_u32", "rtmsg_parse_netlink", "nl_next_attr",
           "copy_ifname"]


def test_rtsock_covers_every_parser_branch(tmp_path):
    """Every line and branch of the routing-message parsers is taken by
    tests/unit/rtsock.c: a branch added without a fixture fails here."""
    profdata, cov = llvm_tool("llvm-profdata"), llvm_tool("llvm-cov")
    if profdata is None or cov is None:
        pytest.skip("SKIPPED: clang with llvm-profdata and llvm-cov needed")
    binary = str(tmp_path / "rtsock-cov")
    proc = subprocess.run(
        ["clang", "-O0", "-g", "-fprofile-instr-generate",
         "-fcoverage-mapping", "-Wno-unused-function", "-o", binary,
         os.path.join(ROOT, "tests", "unit", "rtsock.c"), "-pthread"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    raw = str(tmp_path / "rtsock.profraw")
    proc = subprocess.run([binary], env=dict(os.environ,
                                             LLVM_PROFILE_FILE=raw),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = str(tmp_path / "rtsock.profdata")
    subprocess.run([profdata, "merge", "-o", data, raw], check=True,
                   timeout=60)
    report = subprocess.run([cov, "report", binary, "-instr-profile=" + data,
                             "-show-functions",
                             os.path.join(ROOT, "dpinger.c")],
                            capture_output=True, text=True, timeout=60)
    assert report.returncode == 0, report.stderr
    rows = {}
    for line in report.stdout.splitlines():
        fields = line.split()
        if fields and ":" in fields[0]:
            rows[fields[0].split(":")[-1]] = fields
    for name in PARSERS:
        assert name in rows, (name, report.stdout)
        # Regions Miss Cover Lines Miss Cover Branches Miss Cover
        regions_miss, lines_miss, branches_miss = (rows[name][2],
                                                   rows[name][5],
                                                   rows[name][8])
        assert (regions_miss, lines_miss, branches_miss) == ("0", "0", "0"), \
            "%s not fully covered:\n%s" % (name, report.stdout)
