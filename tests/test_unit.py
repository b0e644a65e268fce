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
