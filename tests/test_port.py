"""port/: the FreeBSD port net/dpinger-selfheal.

Checks the rc.d script (syntax, rc.subr conventions, and its profile
logic run against a stand-in rc.subr, with pid files OPNsense leaves
alone), the Makefile's variable order and values, that PLIST_FILES matches
what the project's install target stages, that INSTALL_PROGRAM strips or
not as the framework says (WITH_DEBUG), and that make dist's tarball,
taken from DISTDIR as the port would and checked against distinfo, builds
and installs offline with bmake (BSD make)."""

import hashlib
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT = os.path.join(ROOT, "port")
RC_SCRIPT = os.path.join(PORT, "files", "dpinger.in")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def port_vars():
    """[(name, value)] of the port Makefile's assignments, in order, with
    continuation lines joined."""
    text = read(os.path.join(PORT, "Makefile")).replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)\s*[+?:!]?=\s*(.*)$", line)
        if m:
            out.append((m.group(1), m.group(2).strip()))
    return out


# ------------------------------------------------------------------ #
# rc.d script                                                         #
# ------------------------------------------------------------------ #

def test_rc_script_syntax():
    r = subprocess.run(["sh", "-n", RC_SCRIPT], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    if shutil.which("dash"):
        r = subprocess.run(["dash", "-n", RC_SCRIPT], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0, r.stderr


def test_rc_script_conventions():
    text = read(RC_SCRIPT)
    assert text.startswith("#!/bin/sh\n")
    for pattern in (r"^# PROVIDE: dpinger$", r"^# REQUIRE: .*NETWORKING",
                    r"^# KEYWORD: .*shutdown", r"^\. /etc/rc\.subr$",
                    r"^name=\"?dpinger\"?$", r"^rcvar=\"?dpinger_enable\"?$",
                    r"^load_rc_config \$name$",
                    r'^: \$\{dpinger_enable:="NO"\}$',
                    r"^: \$\{dpinger_pidfile:=",
                    r'^command="%%PREFIX%%/bin/dpinger"$',
                    r'^run_rc_command "\$1"$'):
        assert re.search(pattern, text, re.M), pattern
    # load_rc_config comes before the defaults, run_rc_command last.
    assert text.index("load_rc_config") < text.index("dpinger_enable:=")
    assert text.rstrip().endswith('run_rc_command "$1"')
    for word in ("dpinger_profiles", "dpinger_${profile}_flags",
                 "dpinger_${profile}_pidfile", "dpinger_${profile}_enable"):
        assert word in text, word


FAKE_RC_SUBR = r"""
# Stand-in for /etc/rc.subr: just enough to run the script's own logic.
load_rc_config() { . "$FAKE_RC_CONF"; }
err() { _code=$1; shift; echo "ERR: $*"; exit "$_code"; }
warn() { echo "WARN: $*"; }
run_rc_command() {
	eval _enable=\$$rcvar
	eval _flags=\$${name}_flags
	echo "RUN $1 enable=$_enable pidfile=$pidfile cmd=$command flags=$_flags"
}
"""


def run_rc(tmp_path, rc_conf, *args):
    prefix = tmp_path / "prefix"
    rcd = prefix / "etc" / "rc.d"
    rcd.mkdir(parents=True, exist_ok=True)
    subr = tmp_path / "rc.subr"
    subr.write_text(FAKE_RC_SUBR)
    script = read(RC_SCRIPT).replace("%%PREFIX%%", str(prefix))
    script = script.replace(". /etc/rc.subr", ". " + str(subr))
    target = rcd / "dpinger"
    target.write_text(script)
    target.chmod(0o755)
    conf = tmp_path / "rc.conf"
    conf.write_text(rc_conf)
    env = dict(os.environ, FAKE_RC_CONF=str(conf))
    return subprocess.run(["sh", str(target)] + list(args), env=env,
                          capture_output=True, text=True, timeout=10)


def test_rc_single_instance(tmp_path):
    r = run_rc(tmp_path, 'dpinger_enable="YES"\n'
               'dpinger_flags="-S -r 0 -u /var/run/dpinger.sock 192.0.2.1"\n',
               "start")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines == [
        "RUN start enable=YES pidfile=/var/run/dpinger.pid "
        "cmd=%s/bin/dpinger flags=-p /var/run/dpinger.pid -S -r 0 "
        "-u /var/run/dpinger.sock 192.0.2.1" % (tmp_path / "prefix")]


def test_rc_default_is_disabled(tmp_path):
    r = run_rc(tmp_path, "", "start")
    assert r.returncode == 0
    assert "enable=NO " in r.stdout


def test_rc_profiles(tmp_path):
    conf = ('dpinger_enable="YES"\n'
            'dpinger_profiles="wan vpn"\n'
            'dpinger_wan_flags="-S -r 0 -B 192.0.2.10 192.0.2.1"\n'
            'dpinger_vpn_flags="-r 0 -u /var/run/vpn.sock 198.51.100.1"\n'
            'dpinger_vpn_enable="NO"\n'
            'dpinger_vpn_pidfile="/var/run/vpn.pid"\n')
    r = run_rc(tmp_path, conf, "start")
    assert r.returncode == 0, r.stdout + r.stderr
    runs = [l for l in r.stdout.splitlines() if l.startswith("RUN ")]
    assert runs == [
        "RUN start enable=YES pidfile=/var/run/dpinger-wan.pid "
        "cmd=%s/bin/dpinger flags=-p /var/run/dpinger-wan.pid -S -r 0 "
        "-B 192.0.2.10 192.0.2.1" % (tmp_path / "prefix"),
        "RUN start enable=NO pidfile=/var/run/vpn.pid "
        "cmd=%s/bin/dpinger flags=-p /var/run/vpn.pid -r 0 "
        "-u /var/run/vpn.sock 198.51.100.1" % (tmp_path / "prefix")]
    assert "===> dpinger profile: wan" in r.stdout
    # One profile by name.
    r = run_rc(tmp_path, conf, "reload", "vpn")
    assert r.returncode == 0
    assert r.stdout.startswith("RUN reload enable=NO pidfile=/var/run/vpn.pid")


# OPNsense's monitor restart kills every process that a /var/run file
# matching this names (dpinger_processes(), field.md).
OPNSENSE_PIDFILE = re.compile(r"^dpinger_(.+)\.pid$")


def test_rc_pid_files_are_not_opnsense_s(tmp_path):
    profiles = ["wan", "WAN_DHCP", "vpn_2"]
    conf = 'dpinger_enable="YES"\ndpinger_profiles="%s"\n' % " ".join(
        profiles) + "".join('dpinger_%s_flags="192.0.2.1"\n' % p
                            for p in profiles)
    r = run_rc(tmp_path, conf, "start")
    assert r.returncode == 0, r.stdout + r.stderr
    pidfiles = re.findall(r" pidfile=(\S+) ", r.stdout)
    assert len(pidfiles) == 3, r.stdout
    r = run_rc(tmp_path, 'dpinger_flags="192.0.2.1"\n', "start")
    pidfiles += re.findall(r" pidfile=(\S+) ", r.stdout)
    for path in pidfiles:
        assert os.path.dirname(path) == "/var/run", path
        assert not OPNSENSE_PIDFILE.match(os.path.basename(path)), path
    assert "/var/run/dpinger-WAN_DHCP.pid" in pidfiles
    # the regex does match what the script used to write
    assert OPNSENSE_PIDFILE.match("dpinger_wan.pid")


def test_rc_profile_errors(tmp_path):
    conf = 'dpinger_profiles="wan"\ndpinger_wan_flags="192.0.2.1"\n'
    r = run_rc(tmp_path, conf, "start", "bad-name")
    assert r.returncode != 0 and "invalid profile name" in r.stdout
    r = run_rc(tmp_path, conf, "start", "other")
    assert r.returncode != 0 and "dpinger_other_flags is not set" in r.stdout
    r = run_rc(tmp_path, "", "start", "wan")
    assert r.returncode != 0 and "dpinger_profiles is empty" in r.stdout


def test_rc_flags_parse_as_dpinger_arguments(tmp_path):
    """-p goes first: the flags the script builds are a valid command line
    for dpinger even with getopt stopping at the first operand (BSD).
    POSIXLY_CORRECT makes glibc's getopt stop there too."""
    binary = os.path.join(ROOT, "dpinger")
    if not os.access(binary, os.X_OK):
        pytest.skip("SKIPPED: ./dpinger is not built (make dpinger)")
    r = run_rc(tmp_path, 'dpinger_enable="YES"\n'
               'dpinger_flags="-r 0 -X 192.0.2.1"\n', "start")
    flags = r.stdout.split("flags=", 1)[1].split()
    assert flags[:2] == ["-p", "/var/run/dpinger.pid"]
    # "no activity enabled" comes after a complete parse with exactly one
    # operand left: every option was taken as an option.
    env = dict(os.environ, POSIXLY_CORRECT="1")
    p = subprocess.run([binary] + flags, env=env, capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 1
    assert "no activity enabled" in p.stderr, p.stderr


# ------------------------------------------------------------------ #
# Makefile, plist, version                                            #
# ------------------------------------------------------------------ #

# Porter's Handbook, chapter 15 (order of variables), the blocks and
# variables this port can use, in order.
HANDBOOK_ORDER = [
    # PORTNAME block
    "PORTNAME", "PORTVERSION", "DISTVERSIONPREFIX", "DISTVERSION",
    "DISTVERSIONSUFFIX", "PORTREVISION", "PORTEPOCH", "CATEGORIES",
    "MASTER_SITES", "MASTER_SITE_SUBDIR", "PKGNAMEPREFIX", "PKGNAMESUFFIX",
    "DISTNAME", "EXTRACT_SUFX", "DISTFILES", "DIST_SUBDIR", "EXTRACT_ONLY",
    # MAINTAINER block
    "MAINTAINER", "COMMENT", "WWW",
    # LICENSE block
    "LICENSE", "LICENSE_COMB", "LICENSE_GROUPS", "LICENSE_NAME",
    "LICENSE_TEXT", "LICENSE_FILE", "LICENSE_PERMS",
    # dependencies
    "FETCH_DEPENDS", "EXTRACT_DEPENDS", "PATCH_DEPENDS", "BUILD_DEPENDS",
    "LIB_DEPENDS", "RUN_DEPENDS", "TEST_DEPENDS",
    # USES and USE_x
    "USES", "USE_GITHUB", "GH_ACCOUNT", "GH_PROJECT", "GH_SUBDIR",
    "GH_TAGNAME", "GH_TUPLE", "USE_RC_SUBR",
    # standard bsd.port.mk variables
    "MAKEFILE", "MAKE_CMD", "MAKE_ARGS", "MAKE_ENV", "MAKE_FLAGS",
    "MAKE_JOBS_UNSAFE", "ALL_TARGET", "INSTALL_TARGET", "TEST_TARGET",
    "CONFLICTS_INSTALL", "PLIST_FILES", "PORTDOCS",
]


def version():
    return read(os.path.join(ROOT, "VERSION")).strip()


def test_port_makefile_order_and_values():
    pairs = port_vars()
    names = [n for n, _ in pairs]
    unknown = [n for n in names if n not in HANDBOOK_ORDER]
    assert not unknown, "variables outside the known order: %s" % unknown
    positions = [HANDBOOK_ORDER.index(n) for n in names]
    assert positions == sorted(positions), names
    assert len(set(names)) == len(names), "a variable is set twice"
    values = dict(pairs)
    # a port of its own beside net/dpinger, never taking over its package
    assert values["PORTNAME"] == "dpinger-selfheal"
    assert values["CONFLICTS_INSTALL"] == "dpinger"
    assert values["DISTVERSION"] == version()
    assert "PORTVERSION" not in values and "PKGNAMEPREFIX" not in values
    assert values["CATEGORIES"].split()[0] == "net"
    assert values["LICENSE"] == "BSD2CLAUSE"
    assert values["LICENSE_FILE"] == "${WRKSRC}/LICENSE"
    assert values["USE_RC_SUBR"] == "dpinger"
    # make dist's tarball, as a release asset: DISTNAME is the default
    # PORTNAME-DISTVERSION, which is the tarball's name and top directory
    assert "USE_GITHUB" not in values and "DISTNAME" not in values
    assert re.fullmatch(r"https://github\.com/[\w-]+/[\w-]+/releases/"
                        r"download/v\$\{DISTVERSION\}/",
                        values["MASTER_SITES"]), values["MASTER_SITES"]
    text = read(os.path.join(PORT, "Makefile"))
    assert text.rstrip().endswith(".include <bsd.port.mk>")
    # Blocks separated by one blank line: MAINTAINER and LICENSE blocks
    # each start after an empty line, and no two blank lines in a row.
    assert "\n\nMAINTAINER=" in text and "\n\nLICENSE=" in text
    assert "\n\n\n" not in text
    # Nothing that means nothing in a ports tree: no comments at all.
    assert not [l for l in text.splitlines() if l.startswith("#")]
    for line in text.splitlines():
        # a URL cannot be wrapped
        if not line.startswith("MASTER_SITES="):
            assert len(line.expandtabs()) <= 80, line


def test_port_files_present():
    for f in ("Makefile", "pkg-descr", "distinfo", "files/dpinger.in",
              "README.md"):
        assert os.path.isfile(os.path.join(PORT, f)), f
    # two files: PLIST_FILES, as portlint asks, not a pkg-plist
    assert not os.path.exists(os.path.join(PORT, "pkg-plist"))
    descr = read(os.path.join(PORT, "pkg-descr"))
    assert 0 < len(descr.splitlines()) and all(
        len(l) <= 80 for l in descr.splitlines())
    assert "make distinfo" in read(os.path.join(PORT, "README.md"))


# ------------------------------------------------------------------ #
# Clean-tree builds with BSD make                                     #
# ------------------------------------------------------------------ #

def export_tree(dest):
    """HEAD as a fresh checkout would have it."""
    # .git is a file in a worktree
    if not os.path.exists(os.path.join(ROOT, ".git")):
        pytest.skip("SKIPPED: not a git checkout")
    dest.mkdir()
    archive = subprocess.run(["git", "-C", ROOT, "archive", "HEAD"],
                             capture_output=True, timeout=60, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout,
                   check=True, timeout=60)
    return dest


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip("SKIPPED: %s is not installed (tests/deps installs it)"
                    % tool)


def installed_files(destdir):
    out = {}
    for base, _, files in os.walk(destdir):
        for f in files:
            full = os.path.join(base, f)
            out[os.path.relpath(full, destdir)] = \
                stat.S_IMODE(os.stat(full).st_mode)
    return out


def plist_entries():
    return dict(port_vars())["PLIST_FILES"].split()


def port_make_args(install_program):
    """The port's MAKE_ARGS as the framework expands them, PREFIX
    /usr/local, with INSTALL_PROGRAM as given."""
    make_args = dict(port_vars())["MAKE_ARGS"]
    make_args = make_args.replace("${PREFIX}", "/usr/local")
    make_args = make_args.replace("${INSTALL_PROGRAM}", install_program)
    assert "${" not in make_args, make_args
    return shlex.split(make_args)


def fetch_and_extract(workdir):
    """What the port does offline with make dist's tarball in DISTDIR:
    checksum (SHA256 and SIZE against distinfo), then extract into WRKDIR;
    WRKSRC is WRKDIR/PORTNAME-DISTVERSION."""
    if not os.path.exists(os.path.join(ROOT, ".git")):
        pytest.skip("SKIPPED: not a git checkout")
    r = subprocess.run(["make", "-s", "dist"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    values = dict(port_vars())
    distname = "%s-%s" % (values["PORTNAME"], values["DISTVERSION"])
    distdir = workdir / "distfiles"
    distdir.mkdir()
    shutil.copy(os.path.join(ROOT, "build", distname + ".tar.gz"),
                str(distdir))
    with open(str(distdir / (distname + ".tar.gz")), "rb") as f:
        data = f.read()
    info = dict(l.split(" = ") for l in
                read(os.path.join(PORT, "distinfo")).splitlines())
    name = distname + ".tar.gz"
    assert info["SHA256 (%s)" % name] == hashlib.sha256(data).hexdigest(), \
        "checksum mismatch: port/distinfo is stale (make distinfo)"
    assert info["SIZE (%s)" % name] == str(len(data))
    wrkdir = workdir / "work"
    wrkdir.mkdir()
    subprocess.run(["tar", "-xzf", str(distdir / name), "-C", str(wrkdir)],
                   check=True, timeout=60)
    return wrkdir / distname


@pytest.fixture(scope="module")
def bmake_tree(tmp_path_factory):
    """The port's build, offline: make dist's tarball from DISTDIR, then
    bmake ALL_TARGET with MAKE_ARGS in WRKSRC."""
    need("bmake")
    tree = fetch_and_extract(tmp_path_factory.mktemp("port"))
    values = dict(port_vars())
    r = subprocess.run(["bmake"] + port_make_args("install -s -m 555") +
                       [values["ALL_TARGET"]], cwd=tree,
                       capture_output=True, text=True, timeout=300)
    return tree, r


def test_bmake_clean_tree_builds_without_warnings(bmake_tree):
    tree, r = bmake_tree
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning" not in (r.stdout + r.stderr).lower(), r.stderr
    binary = tree / "dpinger"
    assert binary.is_file()
    h = subprocess.run([str(binary), "-h"], capture_output=True, text=True,
                       timeout=10)
    assert h.returncode == 1 and h.stderr.startswith("usage: dpinger")


def test_bmake_build_carries_the_version(bmake_tree):
    """bmake passes VERSION to the compiler as GNU make does."""
    tree, r = bmake_tree
    assert r.returncode == 0
    assert '-DDPINGER_VERSION=\\"$(cat VERSION)\\"' in r.stdout, r.stdout
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("SKIPPED: needs root and unshare for a private network "
                    "namespace")
    v = subprocess.run(["unshare", "--net", str(tree / "dpinger"), "-V"],
                       capture_output=True, text=True, timeout=10)
    assert v.returncode == 0, v.stderr
    assert v.stdout == "dpinger-selfheal %s\n" % version()


def stage_install(tree, stage, install_program):
    """What the port's staging does: the project's install target, with
    the port's MAKE_ARGS, DESTDIR = the stage."""
    inst = subprocess.run(["bmake"] + port_make_args(install_program) +
                          ["DESTDIR=" + str(stage),
                           dict(port_vars())["INSTALL_TARGET"]], cwd=tree,
                          capture_output=True, text=True, timeout=120)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    return installed_files(stage / "usr" / "local")


def test_bmake_install_with_port_make_args_matches_plist(bmake_tree,
                                                         tmp_path):
    tree, r = bmake_tree
    assert r.returncode == 0
    stage = tmp_path / "stage"
    files = stage_install(tree, stage, "install -s -m 555")
    # The ports framework compresses manual pages: the plist says .gz.
    staged = sorted(p + ".gz" if re.search(r"/man/man\d/[^/]+\.\d$", p)
                    else p for p in files)
    assert staged == sorted(plist_entries())
    assert files["bin/dpinger"] == 0o555
    assert files["share/man/man8/dpinger.8"] == 0o444
    assert set(os.listdir(stage)) == {"usr"}, "installed outside PREFIX"
    # the installed page names the version (from VERSION) in its footer
    page = (stage / "usr/local/share/man/man8/dpinger.8").read_text()
    assert re.search(r"^\.Os dpinger-selfheal %s$" % re.escape(version()),
                     page, re.M)


def is_stripped(path):
    with open(str(path), "rb") as f:
        return b".symtab" not in f.read()


def test_strip_follows_the_framework(bmake_tree, tmp_path):
    """The binary is installed with the framework's INSTALL_PROGRAM:
    stripped by default (STRIP=-s), left alone with WITH_DEBUG, where
    Mk/Features/debug.mk empties STRIP."""
    tree, r = bmake_tree
    assert r.returncode == 0
    assert not is_stripped(tree / "dpinger"), "nothing to strip: no -g?"
    stage = tmp_path / "default"
    stage_install(tree, stage, "install -s -m 555")
    assert is_stripped(stage / "usr/local/bin/dpinger")
    stage = tmp_path / "debug"
    stage_install(tree, stage, "install -m 555")
    assert not is_stripped(stage / "usr/local/bin/dpinger")
    text = read(os.path.join(PORT, "Makefile"))
    assert "strip" not in text.lower().replace("install_program", "")


def test_gnu_make_install_matches_plist(tmp_path):
    """The README's `make install DESTDIR=... PREFIX=/usr/local` installs
    exactly what PLIST_FILES lists (its manual page uncompressed)."""
    need("make")
    tree = export_tree(tmp_path / "src")
    stage = tmp_path / "stage"
    r = subprocess.run(["make", "install", "DESTDIR=" + str(stage),
                        "PREFIX=/usr/local"], cwd=tree, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    files = installed_files(stage / "usr" / "local")
    assert sorted(f + ".gz" if f.endswith(".8") else f for f in files) == \
        sorted(plist_entries())


# ------------------------------------------------------------------ #
# Linux: systemd unit                                                 #
# ------------------------------------------------------------------ #

UNIT = os.path.join(PORT, "linux", "dpinger@.service")


def test_systemd_unit_verifies(tmp_path):
    need("systemd-analyze")
    binary = os.path.join(ROOT, "dpinger")
    if not os.access(binary, os.X_OK):
        pytest.skip("SKIPPED: ./dpinger is not built (make dpinger)")
    text = read(UNIT)
    assert "ExecStart=/usr/local/bin/dpinger -f " in text
    # verify checks that the command exists: point it at ./dpinger.
    (tmp_path / "dpinger@.service").write_text(
        text.replace("/usr/local/bin/dpinger", binary))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                        "./dpinger@wan.service"], cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.strip() == "", r.stderr


def test_systemd_unit_contract():
    """What the README promises: per-instance config, reload = SIGHUP,
    -f (systemd supervises), a status socket per instance, raw sockets
    through CAP_NET_RAW only."""
    lines = dict(l.split("=", 1) for l in read(UNIT).splitlines()
                 if "=" in l and not l.startswith("#"))
    assert lines["EnvironmentFile"] == "/etc/dpinger/%i.conf"
    assert lines["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert lines["Type"] == "simple"
    start = lines["ExecStart"].split()
    assert start[1] == "-f" and start[-1] == "$DPINGER_ARGS"
    assert start[start.index("-u") + 1] == "/run/dpinger-%i/status.sock"
    assert lines["RuntimeDirectory"] == "dpinger-%i"
    assert lines["AmbientCapabilities"] == "CAP_NET_RAW"
    assert lines["CapabilityBoundingSet"] == "CAP_NET_RAW"
    assert "AF_NETLINK" in lines["RestrictAddressFamilies"]


def test_unit_privileges_suffice_for_a_rebind(tmp_path):
    """The unit runs dpinger as an unprivileged user whose only capability
    is an ambient CAP_NET_RAW.  Check, with setpriv standing in for
    systemd, that this is enough to start and to reopen the raw sockets
    on SIGHUP (rebind logs its line only once new sockets are open).
    Traffic stays on the loopback of a namespace made for the test."""
    need("setpriv")
    need("ip")
    binary = os.path.join(ROOT, "dpinger")
    if not os.access(binary, os.X_OK):
        pytest.skip("SKIPPED: ./dpinger is not built (make dpinger)")
    if os.geteuid() != 0:
        pytest.skip("SKIPPED: needs root to make a network namespace")
    ns = "dpd-cap%d" % os.getpid()
    # The unprivileged user must reach its socket directory: pytest's
    # tmp_path sits under a 0700 directory.
    rundir = tempfile.mkdtemp(prefix="dpd-", dir="/tmp")
    os.chmod(rundir, 0o777)
    rundir = pathlib.Path(rundir)
    sock = str(rundir / "status.sock")
    err = tmp_path / "err"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=30)
    proc = None
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"],
                       check=True, timeout=30)
        with open(str(err), "w") as e:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, "setpriv", "--reuid=65534",
                 "--regid=65534", "--clear-groups", "--inh-caps=+net_raw",
                 "--ambient-caps=+net_raw", "--bounding-set=-all,+net_raw",
                 binary, "-f", "-r", "0", "-s", "100", "-u", sock,
                 "127.0.0.1"], stderr=e)

        def status():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            try:
                s.connect(sock)
                return s.recv(100).decode()
            except OSError:
                return ""
            finally:
                s.close()

        def wait_for(cond, what):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if cond():
                    return
                assert proc.poll() is None, err.read_text()
                time.sleep(0.05)
            pytest.fail("timed out waiting for %s: %s" % (what,
                                                         err.read_text()))

        # Replies arrive: average latency > 0, loss 0.
        wait_for(lambda: status().split()[:1] not in ([], ["0"]),
                 "replies")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "rebind (SIGHUP)" in err.read_text(), "rebind")
        assert "cannot create" not in err.read_text()
        line = status().split()
        assert len(line) == 3 and line[2] == "0", line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "exiting on signal 15" in err.read_text()
        proc = None
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        subprocess.run(["ip", "netns", "del", ns], timeout=30)
        shutil.rmtree(str(rundir), ignore_errors=True)
