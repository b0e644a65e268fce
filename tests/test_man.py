"""dpinger.8: lints clean, and its SYNOPSIS and option list agree with
usage() as ./dpinger -h prints it."""

import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "dpinger.8")
BINARY = os.path.join(ROOT, "dpinger")


def need_mandoc():
    if shutil.which("mandoc") is None:
        pytest.skip("SKIPPED: mandoc is not installed (tests/deps installs it)")


def usage_text():
    if not os.access(BINARY, os.X_OK):
        pytest.skip("SKIPPED: ./dpinger is not built (make dpinger)")
    r = subprocess.run([BINARY, "-h"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1, "dpinger -h must exit 1"
    assert r.stdout == ""
    assert r.stderr.startswith("usage: dpinger "), r.stderr
    return r.stderr


def parse_synopsis_words(text):
    """[('f', None), ('B', 'bind_addr'), ...], and the positional names,
    from a rendered synopsis or usage line."""
    opts = re.findall(r"\[-(\w)(?: (\w+))?\]", text)
    rest = re.sub(r"\[-\w(?: \w+)?\]", " ", text).split()
    return [(f, a or None) for f, a in opts], rest


def usage_words():
    text = usage_text()[len("usage: dpinger "):]
    return parse_synopsis_words(text)


def source_lines():
    with open(PAGE, encoding="utf-8") as f:
        return f.read().splitlines()


def section(lines, name):
    out, inside = [], False
    for line in lines:
        if line.startswith(".Sh "):
            inside = line[4:].strip() == name
            continue
        if inside:
            out.append(line)
    return out


def test_mandoc_lint_clean():
    need_mandoc()
    r = subprocess.run(["mandoc", "-Tlint", "-Wwarning", PAGE],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "" and r.stderr == "", r.stdout + r.stderr


def test_make_man_lint_target():
    need_mandoc()
    make = shutil.which("make")
    if make is None:
        pytest.skip("SKIPPED: make is not installed")
    r = subprocess.run([make, "-s", "man-lint"], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def test_synopsis_macros_match_usage():
    """The .Op/.Fl/.Ar macros of SYNOPSIS, in order, equal usage()."""
    syn = section(source_lines(), "SYNOPSIS")
    opts, positional = [], []
    for line in syn:
        m = re.fullmatch(r"\.Op Fl (\w)(?: Ar (\w+))?", line)
        if m:
            opts.append((m.group(1), m.group(2)))
            continue
        m = re.fullmatch(r"\.Ar (\w+)", line)
        if m:
            positional.append(m.group(1))
            continue
        assert line == ".Nm", "unexpected SYNOPSIS line: %r" % line
    want_opts, want_pos = usage_words()
    assert want_opts, "no options parsed from usage"
    assert opts == want_opts
    assert positional == want_pos == ["dest_addr"]


def test_rendered_synopsis_equals_usage():
    """What a reader sees is the usage line, word for word."""
    need_mandoc()
    r = subprocess.run(["mandoc", "-Tascii", "-Owidth=400", PAGE],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    text = re.sub(r".\x08", "", r.stdout)       # overstrike (bold, underline)
    m = re.search(r"^SYNOPSIS\n(.*?)\n\n", text, re.S | re.M)
    assert m, "no SYNOPSIS section rendered"
    rendered = " ".join(m.group(1).split())
    assert rendered == " ".join(usage_text()[len("usage: "):].split())


def test_every_flag_is_described():
    """Each usage flag has an .It Fl entry in DESCRIPTION's option list,
    with the same argument name, in usage order, and no extra ones."""
    desc = section(source_lines(), "DESCRIPTION")
    items = []
    for line in desc:
        m = re.fullmatch(r"\.It Fl (\w)(?: Ar (\w+))?", line)
        if m:
            items.append((m.group(1), m.group(2)))
    want, _ = usage_words()
    assert items == want


def test_new_flags_and_self_healing_documented():
    """The parts issue 5 asks for are there, with the daemon's strings."""
    text = "\n".join(source_lines())
    for name in ("OUTPUT FORMATS", "ALERT COMMAND", "SELF-HEALING",
                 "SIGNALS", "FILES", "EXIT STATUS", "EXAMPLES",
                 "SEE ALSO", "HISTORY", "AUTHORS"):
        assert ".Sh " + name in text, name
    with open(os.path.join(ROOT, "dpinger.c"), encoding="utf-8") as f:
        source = f.read()
    # Trigger names as the daemon logs them.
    block = re.search(r"trigger_names\[\] = \{(.*?)\};", source, re.S)
    assert block
    names = re.findall(r'= "([^"]+)"', block.group(1))
    assert len(names) >= 8
    for n in names:
        if n != "none":
            assert (".It " + n) in text, "trigger %r not listed" % n
    for s in ("rebind (TRIGGER) on IFNAME: echo id N",
              "waiting for bind address ADDR: REASON",
              "sendto error: N repeated K times",
              "exiting on signal N", "Denny Page",
              "-C \"/etc/rc.gateway_alarm\" -d 1 -s 500 -l 2000 -t 60000"):
        assert s in text, s
    # The back-off constants the page states are the daemon's.
    assert re.search(r"BACKOFF_FIRST_USEC\s+2000000ULL", source)
    assert re.search(r"BACKOFF_CAP_USEC\s+120000000ULL", source)
    assert "after 2 seconds" in text and "up to 120 seconds" in text


def test_mandoc_style_clean_but_for_missing_xrefs():
    """At style level too, only cross-references to pages this Linux
    machine lacks (pf(4), route(4), rc.conf(5), ...) may be reported."""
    need_mandoc()
    r = subprocess.run(["mandoc", "-Tlint", "-Wstyle", PAGE],
                       capture_output=True, text=True, timeout=30)
    other = [l for l in (r.stdout + r.stderr).splitlines()
             if "referenced manual not found" not in l
             and "mandoc.db" not in l]
    assert other == []
