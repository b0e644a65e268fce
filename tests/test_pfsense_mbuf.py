"""The pfSense 2.8 mbuf guard (port/pfsense/mbuf-guard.sh and its wrappers).

A stand-in sysctl(8) answers from a table of zone values and logs every
name it is asked for, so that a test can prove kern.malloc_stats is never
read.  Stand-ins for the stock netstat and vmstat log their arguments and
exit with a chosen status, so that a test can prove which calls reach the
original and that passthrough keeps arguments, output and exit status.

Proven here: netstat -m's exact lines from the table (under dash and bash,
with Debian's awk and with original-awk, the one true awk that FreeBSD
ships); pfSense's two pipelines, verbatim with real awk and grep, get four
numbers; every option spelling is parsed as netstat's and vmstat's
getopt(3) would; and the install, upgrade (stock binaries untarred over
the wrappers), reboot (boot script, /var wiped) and rollback cycle against
a scratch root, with group kmem and mode 2555 kept byte for byte."""

import grp
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT = os.path.join(REPO, "port", "pfsense")
WRAPPER = os.path.join(PORT, "mbuf-wrapper.sh")
GUARD = os.path.join(PORT, "mbuf-guard.sh")
BOOT = os.path.join(PORT, "mbuf-guard-boot.sh")
INSTALL = os.path.join(PORT, "dpinger-install.sh")
SCRIPTS = [WRAPPER, GUARD, BOOT,
           os.path.join(PORT, "common.sh")]

# pfSense's callers, verbatim: rrd.inc's updaterrd.sh and get_mbuf() in
# functions.inc.php.  Only /usr/bin/netstat is pointed at the wrapper.
RRD_PIPELINE = ("/usr/bin/netstat -m |  /usr/bin/awk '/mbuf clusters in use/"
                " { gsub(/\\//, \":\", $1); print $1; }'")
DASHBOARD_PIPELINE = ("/usr/bin/netstat -mb | /usr/bin/grep \"mbuf clusters "
                      "in use\" | /usr/bin/awk '{ print $1 }'")


def sfstat_hex(values):
    """kern.ipc.sfstat as sysctl -nx prints it: little-endian uint64s."""
    dump = "".join(v.to_bytes(8, "little").hex() for v in values)
    return "Format:I Length:%d Dump:0x%s" % (8 * len(values), dump)


# struct sfstat order: syscalls, noiocnt, iocnt, pages_read, pages_valid,
# rhpages_requested, rhpages_read, busy, allocfail, allocwait, pages_bogus.
SFSTAT = [2 ** 40 + 5, 3, 4, 5, 6, 7, 8, 9, 10, 11, 300]


def zone(prefix, size, max_items, current, fails, sleeps, nitems,
         kegfree=None):
    t = {prefix + ".size": size, prefix + ".limit.max_items": max_items,
         prefix + ".limit.items": 0, prefix + ".limit.sleeps": sleeps,
         prefix + ".limit.sleepers": 0, prefix + ".stats.current": current,
         prefix + ".stats.allocs": 99999, prefix + ".stats.frees": 88888,
         prefix + ".stats.fails": fails, prefix + ".stats.xdomain": 0,
         prefix + ".flags": "0x10000<NUMA>",
         prefix + ".bucket_size": 253}
    for i, n in enumerate(nitems):
        t["%s.domain.%d.nitems" % (prefix, i)] = n
        t["%s.domain.%d.imax" % (prefix, i)] = 77777
        t["%s.domain.%d.wss" % (prefix, i)] = 66666
    if kegfree is None:
        t[prefix + ".keg.name"] = "cache zone"
    else:
        t[prefix + ".keg.name"] = prefix.split(".")[-1]
        t[prefix + ".keg.efficiency"] = 98
        for i, n in enumerate(kegfree):
            t["%s.keg.domain.%d.free_items" % (prefix, i)] = n
            t["%s.keg.domain.%d.pages" % (prefix, i)] = 55555
    return t


def zone_table(**extra):
    t = {"kern.ostype": "FreeBSD", "kern.osrelease": "15.0-CURRENT",
         "kern.ipc.sfstat": sfstat_hex(SFSTAT),
         "kern.malloc_stats": "Format:S,malloc_type_stream_header"}
    t.update(zone("vm.uma.mbuf", 256, 6511245, 3044, 0, 0, [1000, 20],
                  [900, 3]))
    t.update(zone("vm.uma.mbuf_packet", 256, 0, 2033, 0, 0, [2000, 30]))
    t.update(zone("vm.uma.mbuf_cluster", 2048, 1000000, 4100, 1, 2,
                  [500, 0], [1000, 26]))
    t.update(zone("vm.uma.mbuf_jumbo_page", 4096, 500000, 512, 0, 0,
                  [100, 0], [28, 0]))
    t.update(zone("vm.uma.mbuf_jumbo_9k", 9216, 148148, 3, 0, 0, [0, 0],
                  [1, 0]))
    t.update(zone("vm.uma.mbuf_jumbo_16k", 16384, 83333, 0, 5, 7, [0, 0],
                  [0, 0]))
    t.update(extra)
    return t


# netstat -m for zone_table(), worked out by hand from netstat's mbpr():
# mbuf free 1923, packet free 2030, cluster free 1526, jumbo page free 128.
EXPECTED = [
    "5077/3953/9030 mbufs in use (current/cache/total)",
    "2070/3556/5626/1000000 mbuf clusters in use (current/cache/total/max)",
    "2033/2030 mbuf+clusters out of packet secondary zone in use "
    "(current/cache)",
    "512/128/640/500000 4k (page size) jumbo clusters in use "
    "(current/cache/total/max)",
    "3/1/4/148148 9k jumbo clusters in use (current/cache/total/max)",
    "0/0/0/83333 16k jumbo clusters in use (current/cache/total/max)",
    # in use: 3044*256 + 2033*256 + 2033*2048 + 37*2048 + 512*4096 +
    # 3*9216 = 7663872; cache: 1923*256 + 2030*256 + 2030*2048 +
    # 1526*2048 + 128*4096 + 9216 = 8828160.
    "7484K/8621K/16105K bytes allocated to network (current/cache/total)",
    "0/1/0 requests for mbufs denied (mbufs/clusters/mbuf+clusters)",
    "0/2/0 requests for mbufs delayed (mbufs/clusters/mbuf+clusters)",
    "0/0/7 requests for jumbo clusters delayed (4k/9k/16k)",
    "0/0/5 requests for jumbo clusters denied (4k/9k/16k)",
    "1099511627781 sendfile syscalls",
    "3 sendfile syscalls completed without I/O request",
    "4 requests for I/O initiated by sendfile",
    "5 pages read by sendfile as part of a request",
    "6 pages were valid at time of a sendfile request",
    "300 pages were valid and substituted to bogus page",
    "7 pages were requested for read ahead by applications",
    "8 pages were read ahead by sendfile",
    "9 times sendfile encountered an already busy page",
    "10 requests for sfbufs denied",
    "11 requests for sfbufs delayed",
]

SYSCTL = textwrap.dedent(r'''
    import json, os, sys
    table = json.load(open(os.environ["MBUF_TEST_TABLE"]))
    args = sys.argv[1:]
    flags = ""
    while args and args[0].startswith("-") and len(args[0]) > 1:
        flags += args.pop(0)[1:]
    with open(os.environ["MBUF_TEST_LOG"], "a") as f:
        f.write("sysctl -%s %s\n" % (flags, " ".join(args)))
    rc = 0
    for name in args:
        if name == "kern.malloc_stats":
            with open(os.environ["MBUF_TEST_LOG"], "a") as f:
                f.write("MALLOC_STATS_READ\n")
            sys.exit(99)
        if "N" in flags:
            hits = sorted(k for k in table
                          if k == name or k.startswith(name + "."))
            if not hits:
                print("sysctl: unknown oid '%s'" % name, file=sys.stderr)
                rc = 1
            for k in hits:
                print(k)
            continue
        if name not in table:
            if "i" not in flags:
                print("sysctl: unknown oid '%s'" % name, file=sys.stderr)
                rc = 1
            continue
        v = table[name]
        if str(v).startswith("Format:") and "x" not in flags:
            continue
        if "n" in flags:
            print(v)
        elif "e" in flags:
            print("%s=%s" % (name, v))
        else:
            print("%s: %s" % (name, v))
    sys.exit(rc)
''')

# A stock netstat or vmstat: logs its arguments (one per line after the
# program name), prints them, exits with $STOCK_RC.
STOCK = textwrap.dedent('''\
    #!/bin/sh
    # stand-in for the stock %s, version %s
    {
    \techo "%s $#"
    \tfor a do printf '[%%s]\\n' "$a"; done
    } >>"$MBUF_TEST_STOCK_LOG"
    echo "stock %s output"
    echo "stock %s stderr" >&2
    exit "${STOCK_RC:-0}"
''')

LOGGER = textwrap.dedent('''\
    #!/bin/sh
    # stand-in for logger(1): records what would go to syslog
    tag=""
    while [ $# -gt 0 ]; do
    \tcase $1 in
    \t-t) tag=$2; shift 2 ;;
    \t--) shift; break ;;
    \t*) break ;;
    \tesac
    done
    if [ $# -gt 0 ]; then
    \techo "$tag: $*" >>"$MBUF_TEST_SYSLOG"
    else
    \twhile IFS= read -r line; do
    \t\techo "$tag: $line" >>"$MBUF_TEST_SYSLOG"
    \tdone
    fi
''')


def kmem_gid():
    """Debian's kmem group (15) stands in for FreeBSD's kmem (2)."""
    try:
        return grp.getgrnam("kmem").gr_gid
    except KeyError:
        return 15


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Env:
    """Stand-ins and logs, in a temporary directory."""

    def __init__(self, tmp, table=None):
        self.tmp = tmp
        self.bin = tmp / "standin"
        self.bin.mkdir()
        self.log = tmp / "sysctl.log"
        self.stock_log = tmp / "stock.log"
        self.syslog = tmp / "syslog"
        self.table = tmp / "table.json"
        self.set_table(table or zone_table())
        sysctl = self.bin / "sysctl"
        sysctl.write_text("#!%s\n%s" % (sys.executable, SYSCTL))
        sysctl.chmod(0o755)
        logger = self.bin / "logger"
        logger.write_text(LOGGER)
        logger.chmod(0o755)
        self.stock_netstat = self.make_stock(tmp / "netstat.stock",
                                             "netstat", 1)
        self.stock_vmstat = self.make_stock(tmp / "vmstat.stock", "vmstat",
                                            1)
        # The wrapper acts on the name it is run as, as once installed.
        wrap = tmp / "wrap"
        wrap.mkdir()
        self.netstat = str(wrap / "netstat")
        self.vmstat = str(wrap / "vmstat")
        for path in (self.netstat, self.vmstat):
            shutil.copy(WRAPPER, path)
        self.env = dict(
            os.environ, MBUF_TEST_TABLE=str(self.table),
            MBUF_TEST_LOG=str(self.log),
            MBUF_TEST_STOCK_LOG=str(self.stock_log),
            MBUF_TEST_SYSLOG=str(self.syslog),
            MBUF_GUARD_SYSCTL=str(sysctl),
            MBUF_GUARD_NETSTAT=str(self.stock_netstat),
            MBUF_GUARD_VMSTAT=str(self.stock_vmstat),
            PATH="%s:%s" % (self.bin, os.environ.get("PATH", "/usr/bin")))
        self.env.pop("STOCK_RC", None)
        self.env.pop("ROOT", None)

    def set_table(self, table):
        self.table.write_text(json.dumps(table))

    @staticmethod
    def make_stock(path, name, version):
        path.write_text(STOCK % (name, version, name, name, name))
        path.chmod(0o755)
        return path

    def clear_logs(self):
        for p in (self.log, self.stock_log, self.syslog):
            if p.exists():
                p.unlink()

    def stock_calls(self):
        """[(program, [args])] of the stock stand-ins since the last clear."""
        if not self.stock_log.exists():
            return []
        calls = []
        for line in self.stock_log.read_text().splitlines():
            if line.startswith("["):
                calls[-1][1].append(line[1:-1])
            else:
                calls.append((line.split()[0], []))
        return calls

    def sysctl_log(self):
        return self.log.read_text() if self.log.exists() else ""

    def run(self, argv, shell="sh", **env):
        self.clear_logs()
        e = dict(self.env, **env)
        return subprocess.run([shell] + argv, capture_output=True,
                              text=True, env=e, timeout=60)


@pytest.fixture
def env(tmp_path):
    return Env(tmp_path)


# ------------------------------------------------------------------ #
# netstat -m output                                                   #
# ------------------------------------------------------------------ #

@pytest.mark.parametrize("awk", ["awk", "original-awk"])
@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_netstat_m_exact_lines(env, shell, awk):
    """Line for line, in netstat's formats; original-awk is FreeBSD's."""
    if not shutil.which(shell):
        pytest.skip("SKIPPED: %s not installed" % shell)
    if not shutil.which(awk):
        pytest.skip("SKIPPED: %s not installed (tests/deps installs it)"
                    % awk)
    if awk != "awk":
        os.symlink(shutil.which(awk), env.bin / "awk")
    r = env.run([env.netstat, "-m"], shell=shell)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.splitlines() == EXPECTED
    assert env.stock_calls() == []
    assert "malloc_stats" not in env.sysctl_log()


def test_netstat_m_with_a_short_path(env):
    """pfSense's PHP and rc scripts may not have /usr/bin in PATH."""
    r = env.run([env.netstat, "-m"], shell="/bin/sh", PATH="/nonexistent")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == EXPECTED


def test_wrapper_under_another_name_refuses(env):
    r = env.run([WRAPPER, "-m"])
    assert r.returncode == 2
    assert "run this wrapper as netstat or vmstat" in r.stderr
    assert env.stock_calls() == [] and env.sysctl_log() == ""


def test_netstat_m_reads_only_safe_leaves(env):
    """Names first (-N, no handler runs), then the leaves: never a whole
    subtree, never vm.zone_stats or kern.malloc_stats."""
    r = env.run([env.netstat, "-m"])
    assert r.returncode == 0, r.stderr
    safe = (".size", ".limit.max_items", ".limit.sleeps", ".stats.current",
            ".stats.fails", ".nitems", ".free_items")
    for line in env.sysctl_log().splitlines():
        flags, *names = line.split()[1:]
        if flags == "-N":
            assert all(n.startswith("vm.uma.mbuf") for n in names), line
            continue
        for n in names:
            if n.startswith("vm.uma."):
                assert n.endswith(safe), n
            else:
                assert n in ("kern.ipc.nsfbufs", "kern.ipc.nsfbufsused",
                             "kern.ipc.nsfbufspeak", "kern.ipc.sfstat"), n
    assert "vm.uma.mbuf.flags" not in env.sysctl_log()
    assert "vm.zone_stats" not in env.sysctl_log()


def test_netstat_m_sfbufs_line_when_present(env):
    env.set_table(zone_table(**{"kern.ipc.nsfbufs": 6656,
                                "kern.ipc.nsfbufsused": 12,
                                "kern.ipc.nsfbufspeak": 40}))
    r = env.run([env.netstat, "-m"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[11] == "12/40/6656 sfbufs in use (current/peak/max)"
    assert lines[:11] + lines[12:] == EXPECTED


def test_netstat_m_without_sfstat_stops_after_the_counters(env):
    t = zone_table()
    del t["kern.ipc.sfstat"]
    env.set_table(t)
    r = env.run([env.netstat, "-m"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == EXPECTED[:11]


def test_netstat_m_negative_difference_is_zero(env):
    """More free packets than clusters counted (a race between reads)."""
    env.set_table(zone_table(**{"vm.uma.mbuf_cluster.stats.current": 10}))
    r = env.run([env.netstat, "-m"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1] == \
        "0/3556/1536/1000000 mbuf clusters in use (current/cache/total/max)"


def test_netstat_m_missing_zone_fails_clearly(env):
    t = {k: v for k, v in zone_table().items()
         if not k.startswith("vm.uma.mbuf_jumbo_9k.")}
    env.set_table(t)
    r = env.run([env.netstat, "-m"])
    assert r.returncode == 1
    assert "zone mbuf_jumbo_9k not found" in r.stderr
    assert env.stock_calls() == []


def test_pfsense_pipelines_get_four_numbers(env, tmp_path):
    """rrd.inc and get_mbuf(), verbatim, with /usr/bin/awk and grep."""
    for tool in ("/usr/bin/awk", "/usr/bin/grep"):
        if not os.access(tool, os.X_OK):
            pytest.skip("SKIPPED: %s missing" % tool)
    netstat = tmp_path / "netstat"
    shutil.copy(WRAPPER, netstat)
    netstat.chmod(0o755)
    for pipeline in (RRD_PIPELINE, DASHBOARD_PIPELINE):
        cmd = pipeline.replace("/usr/bin/netstat", str(netstat))
        assert cmd.count(str(netstat)) == 1
        r = subprocess.run(["sh", "-c", cmd], capture_output=True,
                           text=True, env=env.env, timeout=60)
        assert r.returncode == 0, r.stderr
        out = r.stdout.strip()
        sep = ":" if pipeline is RRD_PIPELINE else "/"
        fields = out.split(sep)
        assert len(fields) == 4 and all(f.isdigit() for f in fields), out
        assert fields == ["2070", "3556", "5626", "1000000"]
    # get_mbuf(): total/max and the percentage.
    assert round(5626 / 1000000 * 100) == 1


# ------------------------------------------------------------------ #
# netstat's option parsing                                            #
# ------------------------------------------------------------------ #

GUARDED = [
    ["-m"], ["-mb"], ["-bm"], ["-mn"], ["-m", "-b"], ["-am"], ["-46m"],
    ["-mI", "em0"], ["-I", "em0", "-m"], ["-Iem0", "-m"], ["-Iem0", "-bm"],
    ["-m", "--"], ["-m", "--", "5"], ["-m", "5"], ["-w", "1", "-m"],
    ["-f", "inet", "-m"], ["-finet6", "-m"], ["-Fm", "-m"],
    ["-m", "--libxo", "json"], ["--libxo=json", "-m"], ["-zm"],
    ["-I", "--libxo", "xml", "em0", "-m"],
]

PASSED = [
    [], ["-rn"], ["-I", "em0"], ["-Iem0"], ["-Imem0"], ["-I", "-m"],
    ["-pm"], ["-q", "m"], ["-jm"], ["-Mm"], ["-w", "m"],
    ["-M", "/var/crash/vmcore.0", "-m"], ["-m", "-N", "/boot/kernel/kernel"],
    ["-mM/dev/mem"], ["-m", "/boot/kernel/kernel"],
    ["-m", "5", "/boot/kernel/kernel", "/dev/mem"],
    ["--", "-m"], ["-b", "--", "-m"], ["foo", "-m"], ["-", "-m"],
    ["-y", "-m"], ["-rn", "a b", "c'd"],
]


@pytest.mark.parametrize("args", GUARDED, ids=" ".join)
def test_netstat_m_spellings_never_reach_the_original(env, args):
    r = env.run([env.netstat] + args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == EXPECTED
    assert env.stock_calls() == []
    assert "malloc_stats" not in env.sysctl_log()


@pytest.mark.parametrize("args", PASSED, ids=lambda a: " ".join(a) or "-")
def test_netstat_other_calls_reach_the_original_unchanged(env, args):
    r = env.run([env.netstat] + args, STOCK_RC="3")
    assert r.returncode == 3
    assert r.stdout == "stock netstat output\n"
    assert r.stderr == "stock netstat stderr\n"
    assert env.stock_calls() == [("netstat", args)]
    assert env.sysctl_log() == ""


@pytest.mark.parametrize("args,message", [
    (["-m", "-y"], "illegal option -- y"),
    (["-my"], "illegal option -- y"),
    (["-m:"], "illegal option -- :"),
    (["-m", "-I"], "option requires an argument -- I"),
    (["-mw"], "option requires an argument -- w"),
    (["-m", "0"], "interval must be positive"),
], ids=lambda x: " ".join(x) if isinstance(x, list) else "")
def test_netstat_m_usage_errors_exit_1_without_the_original(env, args,
                                                            message):
    r = env.run([env.netstat] + args)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "netstat: " + message in r.stderr
    assert "usage: netstat -m" in r.stderr
    assert env.stock_calls() == []
    assert env.sysctl_log() == ""


# ------------------------------------------------------------------ #
# vmstat                                                              #
# ------------------------------------------------------------------ #

NOTE = ("vmstat: malloc statistics (-m) left out: reading kern.malloc_stats"
        " can panic this kernel (pfSense 2.8 mbuf guard)")


@pytest.mark.parametrize("args,stock_args", [
    (["-m"], None),
    (["-m", "1", "5"], None),
    (["-mH"], None),
    (["-afimsz"], ["-afisz"]),
    (["-mz"], ["-z"]),
    (["-m", "-z"], ["-z"]),
    (["-z", "-m"], ["-z"]),
    (["-mc", "5", "-s"], ["-c", "5", "-s"]),
    (["-mw1", "-i"], ["-w1", "-i"]),
    (["-sm", "--", "1", "2"], ["-s", "--", "1", "2"]),
    (["-im", "a b"], ["-i", "a b"]),
], ids=lambda x: " ".join(x) if isinstance(x, list) else "")
def test_vmstat_m_is_left_out(env, args, stock_args):
    r = env.run([env.vmstat] + args, STOCK_RC="4")
    if stock_args is None:
        assert r.returncode == 0
        assert r.stdout == NOTE + "\n"
        assert env.stock_calls() == []
    else:
        assert r.returncode == 4
        assert r.stdout == NOTE + "\nstock vmstat output\n"
        assert env.stock_calls() == [("vmstat", stock_args)]
    assert env.sysctl_log() == ""


def test_vmstat_m_with_libxo_keeps_stdout_clean(env):
    r = env.run([env.vmstat, "-m", "--libxo", "json", "-z"])
    assert r.returncode == 0
    assert r.stdout == "stock vmstat output\n"
    assert NOTE in r.stderr
    assert env.stock_calls() == [("vmstat", ["--libxo", "json", "-z"])]


@pytest.mark.parametrize("args", [
    [], ["-z"], ["-z", "--libxo=json"], ["-s"], ["-i", "1", "3"],
    ["-M", "/var/crash/vmcore.0", "-m"], ["-mM/var/crash/vmcore.0"],
    ["-cm"], ["-p", "m"], ["--", "-m"], ["-x", "-m"],
], ids=lambda a: " ".join(a) or "-")
def test_vmstat_other_calls_reach_the_original_unchanged(env, args):
    r = env.run([env.vmstat] + args, STOCK_RC="2")
    assert r.returncode == 2
    assert r.stdout == "stock vmstat output\n"
    assert env.stock_calls() == [("vmstat", args)]


@pytest.mark.parametrize("tool,args", [
    ("netstat", ["-rn"]), ("vmstat", ["-z"]), ("vmstat", ["-mz"])])
def test_missing_original_is_named(env, tool, args):
    r = env.run([getattr(env, tool)] + args, MBUF_GUARD_NETSTAT="/nonexistent",
                MBUF_GUARD_VMSTAT="/nonexistent")
    assert r.returncode == 127
    assert "the original %s (/nonexistent) is missing" % tool in r.stderr


def test_vmstat_m_usage_error(env):
    r = env.run([env.vmstat, "-m", "-x"])
    assert r.returncode == 1
    assert "vmstat: illegal option -- x" in r.stderr
    assert env.stock_calls() == []


# ------------------------------------------------------------------ #
# Install, upgrade, reboot, rollback                                  #
# ------------------------------------------------------------------ #

class Box:
    """A scratch pfSense root: /usr/bin/netstat group kmem mode 2555."""

    def __init__(self, env):
        self.env = env
        self.root = env.tmp / "root"
        for d in ("etc", "usr/bin", "usr/local/etc/rc.d", "var/db/rrd",
                  "tmp", "conf"):
            (self.root / d).mkdir(parents=True)
        (self.root / "etc" / "version").write_text("2.8.1-RELEASE\n")
        self.netstat = self.root / "usr" / "bin" / "netstat"
        self.vmstat = self.root / "usr" / "bin" / "vmstat"
        self.gid = kmem_gid()
        self.put_stock(1)
        self.state = self.root / "conf" / "dpinger-selfheal" / "mbuf-guard"
        self.boot = self.root / "usr" / "local" / "etc" / "rc.d" / \
            "mbuf-guard.sh"

    def put_stock(self, version):
        """What a pfSense-base untar does: stock files over the old."""
        for path, name, mode, gid in ((self.netstat, "netstat", 0o2555,
                                       self.gid),
                                      (self.vmstat, "vmstat", 0o555, 0)):
            tmp = path.with_name(".untar")
            Env.make_stock(tmp, name, version)
            os.chown(tmp, 0, gid)
            os.chmod(tmp, mode)
            os.utime(tmp, (1700000000 + version, 1700000000 + version))
            os.rename(tmp, path)

    def env_vars(self):
        e = dict(self.env.env, ROOT=str(self.root))
        e["MBUF_GUARD_NETSTAT"] = str(self.netstat) + ".stock"
        e["MBUF_GUARD_VMSTAT"] = str(self.vmstat) + ".stock"
        return e

    def run(self, script, *args):
        self.env.clear_logs()
        return subprocess.run(["sh", script] + list(args),
                              capture_output=True, text=True,
                              env=self.env_vars(), timeout=120)

    def run_unchanged(self, script, *args, rc=0):
        """Run; the exit status is rc and no file under the root changed."""
        snap = self.snapshot()
        r = self.run(script, *args)
        assert r.returncode == rc, r.stdout + r.stderr
        assert self.snapshot() == snap
        return r

    def snapshot(self):
        """Every file under the root: bytes, mode, owner, group."""
        snap = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for n in filenames + dirnames:
                p = os.path.join(dirpath, n)
                st = os.lstat(p)
                data = None
                if stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as f:
                        data = f.read()
                snap[os.path.relpath(p, self.root)] = (
                    data, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        return snap

    def attrs(self, path):
        st = os.stat(path)
        return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


@pytest.fixture
def box(env):
    if os.geteuid() != 0:
        pytest.skip("SKIPPED: needs root to chown the scratch root")
    return Box(env)


def is_wrapper(path):
    with open(path, "rb") as f:
        return f.read() == open(WRAPPER, "rb").read()


def test_install_upgrade_reboot_rollback_cycle(box):
    stock1 = {p: (p.read_bytes(), box.attrs(p))
              for p in (box.netstat, box.vmstat)}
    assert box.attrs(box.netstat) == (0o2555, 0, box.gid)

    # Install.
    r = box.run(GUARD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert is_wrapper(box.netstat)
    assert is_wrapper(box.vmstat)
    assert box.attrs(box.netstat)[0] == 0o555
    for p in (box.netstat, box.vmstat):
        saved = p.with_name(p.name + ".stock")
        assert saved.read_bytes() == stock1[p][0]
        assert box.attrs(saved) == stock1[p][1]
        assert os.stat(saved).st_mtime == 1700000001
        recorded = (box.state / (p.name + ".sha256")).read_text().split()
        assert recorded == [sha(saved), p.name + ".stock"]
    assert (box.boot).exists() and os.access(box.boot, os.X_OK)
    for f in ("mbuf-guard.sh", "common.sh", "mbuf-wrapper.sh"):
        assert (box.state / f).read_bytes() == \
            open(os.path.join(PORT, f), "rb").read()
    assert "verified: netstat -m: 2070/3556/5626/1000000 mbuf clusters" \
        in r.stdout
    assert "verified: netstat -rn works" in r.stdout
    assert "malloc_stats" not in box.env.sysctl_log()
    # The installed wrapper at work; -rn reaches the saved original.
    e = box.env_vars()
    out = subprocess.run([str(box.netstat), "-mb"], capture_output=True,
                         text=True, env=e, timeout=60)
    assert out.stdout.splitlines() == EXPECTED
    out = subprocess.run([str(box.netstat), "-rn"], capture_output=True,
                         text=True, env=e, timeout=60)
    assert out.stdout == "stock netstat output\n"

    # Again: nothing changes.
    r = box.run_unchanged(GUARD, "--install")
    assert "already the wrapper" in r.stdout

    # Status.
    r = box.run(GUARD, "--status")
    assert r.returncode == 0
    assert "affected system: yes" in r.stdout
    assert "netstat.stock: saved original, checksum ok" in r.stdout
    assert "mbuf guard: installed (netstat -m: 2070/3556/5626/1000000" \
        in r.stdout

    # A pfSense-base upgrade untars stock version 2 over the wrappers, then
    # reboots: RAM disks come back empty.
    box.put_stock(2)
    stock2 = {p: (p.read_bytes(), box.attrs(p))
              for p in (box.netstat, box.vmstat)}
    assert stock2[box.netstat][0] != stock1[box.netstat][0]
    r = box.run(GUARD, "--status")
    assert "not the wrapper (upgraded, not rebooted yet?)" in r.stdout
    shutil.rmtree(box.root / "var")
    shutil.rmtree(box.root / "tmp")
    (box.root / "var").mkdir()
    (box.root / "tmp").mkdir()
    r = box.run(str(box.boot), "start")
    assert r.returncode == 0, r.stdout + r.stderr
    syslog = box.env.syslog.read_text()
    assert "mbuf-guard: mbuf-guard: " in syslog
    assert "saved the new one as %s.stock" % box.netstat in syslog
    assert "put the netstat wrapper back" in syslog
    assert "put the vmstat wrapper back" in syslog
    assert "verified: netstat -m: 2070/3556/5626/1000000" in syslog
    assert is_wrapper(box.netstat)
    assert is_wrapper(box.vmstat)
    for p in (box.netstat, box.vmstat):
        saved = p.with_name(p.name + ".stock")
        assert saved.read_bytes() == stock2[p][0]
        assert box.attrs(saved) == stock2[p][1]
        recorded = (box.state / (p.name + ".sha256")).read_text().split()
        assert recorded[0] == sha(saved)

    # The next boot finds everything in place.
    box.run_unchanged(str(box.boot), "start")
    assert "guard in place" in box.env.syslog.read_text()
    # The boot script ignores stop.
    r = box.run(str(box.boot), "stop")
    assert not box.env.syslog.exists()

    # Roll back: version 2, byte for byte, mode 2555, group kmem.
    r = box.run(GUARD, "--rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    for p in (box.netstat, box.vmstat):
        assert p.read_bytes() == stock2[p][0]
        assert box.attrs(p) == stock2[p][1]
        assert not p.with_name(p.name + ".stock").exists()
    assert box.attrs(box.netstat) == (0o2555, 0, box.gid)
    assert not box.boot.exists()
    assert not box.state.exists()
    assert not (box.root / "conf" / "dpinger-selfheal").exists()

    # Again: nothing to do.
    r = box.run_unchanged(GUARD, "--rollback")
    assert "nothing to roll back" in r.stdout


def test_install_again_after_an_upgrade_saves_the_new_stock(box):
    """Upgraded, not rebooted yet, and the admin installs again."""
    r = box.run(GUARD)
    assert r.returncode == 0, r.stdout + r.stderr
    box.put_stock(2)
    stock2 = box.netstat.read_bytes()
    r = box.run(GUARD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "saved %s as %s.stock" % (box.netstat, box.netstat) in r.stdout
    assert is_wrapper(box.netstat) and is_wrapper(box.vmstat)
    saved = box.root / "usr" / "bin" / "netstat.stock"
    assert saved.read_bytes() == stock2
    assert box.attrs(saved) == (0o2555, 0, box.gid)
    r = box.run(GUARD, "--rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    assert box.netstat.read_bytes() == stock2


@pytest.mark.parametrize("table,version,why", [
    ({"kern.osrelease": "14.3-RELEASE"}, "2.8.1-RELEASE",
     "the kernel is 'FreeBSD 14.3-RELEASE', not FreeBSD 15.0-CURRENT"),
    ({}, "2.7.2-RELEASE", "pfSense '2.7.2-RELEASE' is not 2.8.x"),
    ({"kern.ostype": "Linux"}, "25.07-RELEASE", "not FreeBSD 15.0-CURRENT;"
     " pfSense '25.07-RELEASE' is not 2.8.x"),
])
def test_install_refuses_unaffected_system_unless_forced(box, table,
                                                         version, why):
    box.env.set_table(zone_table(**table))
    (box.root / "etc" / "version").write_text(version + "\n")
    r = box.run_unchanged(GUARD, rc=1)
    assert "not installing: this system is not affected" in r.stderr
    assert why in r.stderr
    assert "--force" in r.stderr
    r = box.run(GUARD, "--force")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "--force: installing although" in r.stdout
    assert (box.state / "forced").exists()
    assert is_wrapper(box.netstat)


def test_boot_leaves_an_upgrade_to_an_unaffected_system_alone(box):
    r = box.run(GUARD)
    assert r.returncode == 0, r.stdout + r.stderr
    box.put_stock(2)
    box.env.set_table(zone_table(**{"kern.osrelease": "15.0-RELEASE"}))
    r = box.run(str(box.boot))
    assert "no longer affected" in box.env.syslog.read_text()
    assert not is_wrapper(box.netstat)
    r = box.run(GUARD, "--rollback")
    assert r.returncode == 0
    assert "not the wrapper" in r.stdout
    assert box.attrs(box.netstat) == (0o2555, 0, box.gid)
    assert "version 2" in box.netstat.read_text()
    assert not box.state.exists()


def test_failed_verify_leaves_the_box_as_it_was(box):
    """No mbuf zones: the wrapped netstat -m fails, the install undoes."""
    t = {k: v for k, v in zone_table().items()
         if not k.startswith("vm.uma.")}
    box.env.set_table(t)
    r = box.run_unchanged(GUARD, rc=1)
    assert "gives no cluster line" in r.stderr
    assert "install failed; the box is as it was" in r.stderr


def test_rollback_refuses_a_corrupt_saved_copy(box):
    r = box.run(GUARD)
    assert r.returncode == 0, r.stdout + r.stderr
    saved = box.root / "usr" / "bin" / "netstat.stock"
    saved.chmod(0o755)
    saved.write_text(saved.read_text() + "# damaged\n")
    r = box.run_unchanged(GUARD, "--rollback", rc=1)
    assert "does not match its checksum" in r.stderr


def test_dpinger_install_delegates_mbuf_guard(box):
    r = box.run(INSTALL, "--mbuf-guard")
    assert r.returncode == 0, r.stdout + r.stderr
    assert is_wrapper(box.netstat)
    r = box.run(INSTALL, "--status")
    assert "mbuf guard: installed (netstat -m: 2070/3556/5626/1000000" \
        in r.stdout
    r = box.run(INSTALL, "--mbuf-guard", "--status")
    assert "netstat.stock: saved original, checksum ok" in r.stdout
    r = box.run(INSTALL, "--mbuf-guard", "--rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    assert box.attrs(box.netstat) == (0o2555, 0, box.gid)
    assert "mbuf guard: not installed" in box.run(INSTALL, "--status").stdout


# ------------------------------------------------------------------ #
# POSIX sh                                                            #
# ------------------------------------------------------------------ #

@pytest.mark.parametrize("script", SCRIPTS, ids=os.path.basename)
def test_scripts_are_posix_sh(script):
    for sh in ("sh", "dash", "bash"):
        path = shutil.which(sh)
        if path:
            r = subprocess.run([path, "-n", script], capture_output=True,
                               text=True, timeout=10)
            assert r.returncode == 0, (sh, r.stderr)
    if not shutil.which("shellcheck"):
        pytest.skip("SKIPPED: shellcheck not installed")
    r = subprocess.run(["shellcheck", "-s", "sh", script],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    if not shutil.which("checkbashisms"):
        pytest.skip("SKIPPED: checkbashisms not installed (devscripts)")
    r = subprocess.run(["checkbashisms", "-f", script],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
