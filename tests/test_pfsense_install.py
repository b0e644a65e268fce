"""port/pfsense/dpinger-install.sh against a scratch pfSense or OPNsense root.

Stand-ins for pkg, php, pfSsh.php, pluginctl, opnsense-version and nc
record every call, with the state of the box at that moment (which binary
is installed, whether the stock copy is saved), in a calls log.  The
stand-in php's setup_gateways_monitor() (and OPNsense's pluginctl -c
monitor) stops the gateway "monitors" and starts one small Python server
per gateway that answers on a unix socket like dpinger's -u does, with the
platform's pid and socket names.  The stock binary is a stand-in script
printing 3.3's usage; the new binary is the real ./dpinger.  The stand-in
pkg keeps its database (lock, installed and repository versions) outside
/var, as pfSense keeps its package data across RAM-disk reboots.

Proven here: the install order (save, install, verify, lock, restart,
check); idempotence; that a failure at each step leaves the box as it was,
a monitor that never measures, goes missing or dies included; that the
state survives a reboot that wipes /var, and moves from the old /var/db
place; what --status and install do after a stock upgrade, locked and
unlocked; that --rollback restores the stock binary byte for byte and
unlocks, and that a second rollback is a no-op; the same on OPNsense; and
that the real ./dpinger, started as pfSense starts it inside a test
namespace, passes the verify."""

import hashlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "port", "pfsense", "dpinger-install.sh")
COMMON = os.path.join(ROOT, "port", "pfsense", "common.sh")
BINARY = os.path.join(ROOT, "dpinger")
GATEWAYS = ["WAN_DHCP", "VPN_VTI"]

STOCK_USAGE = ("usage: dpinger [-f] [-R] [-S] [-P] [-B bind_addr] "
               "[-s send_interval] [-l loss_interval] [-t time_period] "
               "[-r report_interval] [-d data_length] [-o output_file] "
               "[-A alert_interval] [-D latency_alarm] [-L loss_alarm] "
               "[-H hold_interval] [-C alert_cmd] [-i identifier] "
               "[-u usocket] [-p pidfile] dest_addr")

# One program behind every stand-in, dispatched on its name.  STANDIN_FAIL
# lists faults, each for one binary ("-new" or "-stock": the one installed
# when monitoring restarts): restart-X (the restart fails), silent-X (the
# monitors accept and say nothing), notready-X (they answer "0 0 0"
# forever), down-X (they measure 100 % loss: the gateway is down),
# missing-X (the last gateway is not started), dead-X (the last
# gateway starts and dies); and warmup ("0 0 0" for a second, then
# measured), stale-sock, pkg-lock, pkg-unlock, php, pfssh.
STANDIN = textwrap.dedent(r'''
    import glob, hashlib, os, signal, socket, subprocess, sys, time

    root = os.environ["ROOT"]
    log = os.environ["STANDIN_LOG"]
    fail = os.environ.get("STANDIN_FAIL", "").split(",")
    name = os.environ["STANDIN_NAME"]
    opnsense = os.environ["STANDIN_PLATFORM"] == "opnsense"
    binpath = os.path.join(root, "usr/local/bin/dpinger")
    stock = os.path.join(root, "usr/local/bin/dpinger.stock")
    rundir = os.path.join(root, "var/run")
    pkgdb = os.environ["STANDIN_PKGDB"]
    lockfile = os.path.join(pkgdb, "locked")

    def kind():
        try:
            r = subprocess.run([binpath, "-h"], capture_output=True,
                               text=True, timeout=10)
        except OSError:
            return "none"
        return "new" if "[-X]" in r.stderr else "stock"

    def record(*extra):
        with open(log, "a") as f:
            f.write(" ".join([name] + sys.argv[1:] + list(extra) +
                             ["bin=" + kind(),
                              "saved=" + str(os.path.exists(stock))])
                    + "\n")

    def pkgdb_read(what, default):
        try:
            with open(os.path.join(pkgdb, what)) as f:
                return f.read().strip()
        except OSError:
            return default

    def spawned(pid):
        with open(os.environ["STANDIN_SPAWNED"], "a") as f:
            f.write("%d\n" % pid)

    def restart():
        which = kind()
        if "restart-" + which in fail:
            sys.exit(255)
        for pidf in glob.glob(os.path.join(rundir, "dpinger_*.pid")):
            try:
                pid = int(open(pidf).read())
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    os.kill(pid, 0)
                    # Gone once a zombie: no init may reap it here.
                    with open("/proc/%d/stat" % pid) as f:
                        if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                            break
                    time.sleep(0.02)
            except (OSError, ValueError):
                pass
            # A real dpinger removes its own files when it exits.
            for f in (pidf, pidf[:-4] + ".sock"):
                if os.path.exists(f):
                    os.unlink(f)
        for s in glob.glob(os.path.join(rundir, "dpinger_*.sock")):
            os.unlink(s)
        mode = "answer"
        for m in ("silent", "notready", "down"):
            if m + "-" + which in fail:
                mode = m
        if "warmup" in fail:
            mode = "warmup"
        gateways = os.environ["STANDIN_GATEWAYS"].split()
        real_ns = os.environ.get("STANDIN_REAL_NS")
        src = os.environ.get("STANDIN_REAL_SRC", "192.0.2.10")
        dst = os.environ.get("STANDIN_REAL_DST", "192.0.2.1")
        for i, gw in enumerate(gateways):
            last = i == len(gateways) - 1
            if last and "missing-" + which in fail:
                continue
            if opnsense:
                base = os.path.join(rundir, "dpinger_%s" % gw)
            else:
                base = os.path.join(rundir, "dpinger_%s~%s~%s"
                                    % (gw, src, dst))
            if real_ns and which == "new":
                # The installed binary itself, with pfSense's command line,
                # inside the test's firewall namespace; it daemonises.
                subprocess.run(["ip", "netns", "exec", real_ns, binpath,
                                "-S", "-r", "0", "-i", gw, "-B", src,
                                "-p", base + ".pid", "-u", base + ".sock",
                                "-d", "1", "-s", "500", "-l", "2000",
                                "-t", "60000", "-A", "1000", "-D", "500",
                                "-L", "20", dst],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=10,
                               check=True)
                deadline = time.monotonic() + 10
                while True:
                    try:
                        spawned(int(open(base + ".pid").read()))
                        break
                    except (OSError, ValueError):
                        if time.monotonic() > deadline:
                            sys.exit(1)
                        time.sleep(0.02)
                continue
            p = subprocess.Popen([sys.executable, os.environ["STANDIN_SERVER"],
                                  base + ".sock", base + ".pid", gw, mode],
                                 start_new_session=True,
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            spawned(p.pid)
            deadline = time.monotonic() + 10
            while not os.path.exists(base + ".pid"):
                if time.monotonic() > deadline:
                    sys.exit(1)
                time.sleep(0.02)
            if last and "dead-" + which in fail:
                # Started, then died: its pid file and socket stay.
                p.kill()
                p.wait()
        if "stale-sock" in fail:
            # A socket file left by a gateway no longer configured.
            open(os.path.join(rundir, "dpinger_OLD~x~y.sock"), "w").close()

    if name == "pkg":
        record()
        args = sys.argv[1:]
        if args == ["query", "%k", "dpinger"]:
            print("1" if os.path.exists(lockfile) else "0")
        elif args == ["query", "%v", "dpinger"]:
            print(pkgdb_read("version", "3.3_1"))
        elif args == ["rquery", "-U", "%v", "dpinger"]:
            v = pkgdb_read("repo-version", "")
            if not v:
                sys.exit(1)
            print(v)
        elif args == ["lock", "-y", "dpinger"]:
            if "pkg-lock" in fail:
                sys.exit(1)
            open(lockfile, "w").close()
        elif args == ["unlock", "-y", "dpinger"]:
            if "pkg-unlock" in fail:
                sys.exit(1)
            if os.path.exists(lockfile):
                os.unlink(lockfile)
        else:
            sys.exit(64)
    elif name == "php" and "install_cron_job(" in " ".join(sys.argv[1:]):
        pass  # the watchdog's cron item: tests/test_pfsense_watchdog.py
    elif name == "php":
        record()
        code = " ".join(sys.argv[1:])
        if opnsense or sys.argv[1:2] != ["-r"] or \
                "setup_gateways_monitor();" not in code or \
                'require_once("gwlb.inc")' not in code:
            sys.exit(64)
        if "php" in fail:
            sys.exit(255)
        restart()
    elif name == "pfSsh.php":
        record()
        if sys.argv[1:] != ["playback", "svc", "restart", "dpinger"]:
            sys.exit(64)
        if "pfssh" in fail:
            sys.exit(1)
        restart()
    elif name == "pluginctl":
        record()
        if not opnsense or sys.argv[1:] != ["-c", "monitor"]:
            sys.exit(64)
        restart()
    elif name == "opnsense-version":
        record()
        if sys.argv[1:]:
            sys.exit(64)
        print("OPNsense 24.7.1 (amd64/OpenSSL)")
    elif name == "nc":
        args = sys.argv[1:]
        record()
        wait, path = 5.0, None
        i = 0
        while i < len(args):
            if args[i] == "-U":
                pass
            elif args[i] == "-w":
                i += 1
                wait = float(args[i])
            else:
                path = args[i]
            i += 1
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(wait)
        try:
            s.connect(path)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            sys.exit(1)
        sys.stdout.buffer.write(data)
    else:
        sys.exit(70)
''')

# A gateway monitor: answers each connection with one status line, as
# dpinger -u does.  "silent" accepts and closes without a word;
# "notready" answers "0 0 0" (no result yet) forever; "warmup" does so for
# its first second, then measures; "down" measures 100 % loss.
SERVER = textwrap.dedent(r'''
    import os, socket, sys, time
    sock, pidf, gw, mode = sys.argv[1:5]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock)
    s.listen(5)
    with open(pidf + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(pidf + ".tmp", pidf)
    started = time.monotonic()
    while True:
        c, _ = s.accept()
        ready = mode == "answer" or \
            (mode == "warmup" and time.monotonic() - started > 1.0)
        if mode == "down":
            c.sendall(("%s 0 0 100\n" % gw).encode())
        elif ready:
            c.sendall(("%s 1520 310 0\n" % gw).encode())
        elif mode != "silent":
            c.sendall(("%s 0 0 0\n" % gw).encode())
        c.close()
''')

STOCK_SCRIPT = "#!/bin/sh\n# stand-in for the stock dpinger 3.3\n" \
    "echo '%s' >&2\nexit 1\n" % STOCK_USAGE


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Box:
    """A scratch pfSense (or OPNsense) root with stand-ins and a calls
    log."""

    def __init__(self, tmp, platform="pfsense"):
        self.tmp = tmp
        self.platform = platform
        self.root = tmp / "root"
        self.log = tmp / "calls.log"
        self.spawned = tmp / "spawned.pids"
        self.standin_dir = tmp / "standin"
        self.pkgdb = tmp / "pkgdb"
        self.pkgdb.mkdir()
        for d in ("etc", "usr/local/bin", "usr/local/sbin", "var/run",
                  "var/db", "conf"):
            (self.root / d).mkdir(parents=True)
        self.bin = self.root / "usr" / "local" / "bin" / "dpinger"
        self.stock = self.root / "usr" / "local" / "bin" / "dpinger.stock"
        self.state = self.root / "conf" / "dpinger-selfheal"
        self.old_state = self.root / "var" / "db" / "dpinger-selfheal"
        self.bin.write_text(STOCK_SCRIPT)
        self.bin.chmod(0o755)
        os.utime(self.bin, (1700000000, 1700000000))
        self.stock_bytes = self.bin.read_bytes()
        self.new = tmp / "new" / "dpinger"
        self.new.parent.mkdir()
        shutil.copy(BINARY, self.new)
        self.standin_dir.mkdir()
        prog = self.standin_dir / "standin.py"
        prog.write_text(STANDIN)
        server = tmp / "server.py"
        server.write_text(SERVER)
        sbin = self.root / "usr" / "local" / "sbin"
        for name in ("pkg", "php", "nc", "pluginctl"):
            self._wrapper(self.standin_dir / name, prog)
        if platform == "pfsense":
            (self.root / "etc" / "version").write_text("2.8.0-RELEASE\n")
            self._wrapper(sbin / "pfSsh.php", prog)
        else:
            self._wrapper(sbin / "opnsense-version", prog)
        self.env = dict(
            os.environ, ROOT=str(self.root), STANDIN_LOG=str(self.log),
            STANDIN_SERVER=str(server), STANDIN_SPAWNED=str(self.spawned),
            STANDIN_GATEWAYS=" ".join(GATEWAYS), DPINGER_VERIFY_TIMEOUT="3",
            STANDIN_PLATFORM=platform, STANDIN_PKGDB=str(self.pkgdb),
            PATH="%s:%s:%s" % (self.standin_dir, sbin,
                               os.environ.get("PATH", "/usr/bin:/bin")))
        self.env.pop("STANDIN_FAIL", None)

    @staticmethod
    def _wrapper(path, prog):
        # Dispatch is on the script name: run it under that name.
        path.write_text("#!%s\nimport os, runpy\n"
                        "os.environ['STANDIN_NAME'] = %r\n"
                        "runpy.run_path(%r, run_name='__main__')\n"
                        % (sys.executable, path.name, str(prog)))
        path.chmod(0o755)

    def run(self, *args, fail=None, timeout=60):
        env = dict(self.env)
        if fail:
            env["STANDIN_FAIL"] = fail
        if self.log.exists():
            self.log.unlink()
        r = subprocess.run(["sh", SCRIPT] + list(args), env=env,
                           capture_output=True, text=True, timeout=timeout)
        self.calls = self.log.read_text().splitlines() \
            if self.log.exists() else []
        return r

    def locked(self):
        return (self.pkgdb / "locked").exists()

    def set_pkg(self, version=None, repo_version=None):
        """What the package database and the repository catalogue say."""
        if version is not None:
            (self.pkgdb / "version").write_text(version + "\n")
        if repo_version is not None:
            (self.pkgdb / "repo-version").write_text(repo_version + "\n")

    def snapshot(self):
        """Everything the script may change, except the running monitors."""
        files = {}
        for d in (self.root / "usr" / "local" / "bin", self.root / "var" /
                  "db", self.root / "conf", self.pkgdb):
            for base, dirs, names in os.walk(d):
                for n in dirs:
                    files[os.path.join(base, n)] = "dir"
                for n in names:
                    p = os.path.join(base, n)
                    st = os.stat(p)
                    files[p] = (sha(p), oct(st.st_mode), int(st.st_mtime))
        return files

    def start_monitors(self):
        """The firewall at boot: the monitors start with whatever binary
        is installed."""
        env = dict(self.env)
        if self.platform == "pfsense":
            cmd = ["php", "-r", 'require_once("gwlb.inc"); '
                   'setup_gateways_monitor();']
        else:
            cmd = ["pluginctl", "-c", "monitor"]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr

    def stop_monitors(self):
        self.cleanup()
        for f in (self.root / "var" / "run").glob("dpinger_*"):
            f.unlink()

    def reboot(self, ram_disks):
        """Power cycle; with "Use RAM Disks", /var comes back empty."""
        self.stop_monitors()
        if ram_disks:
            shutil.rmtree(self.root / "var")
            (self.root / "var" / "run").mkdir(parents=True)
        self.start_monitors()

    def cleanup(self):
        if self.spawned.exists():
            for line in self.spawned.read_text().split():
                try:
                    os.kill(int(line), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            self.spawned.unlink()


def make_box(platform):
    if not os.access(BINARY, os.X_OK):
        pytest.skip("SKIPPED: ./dpinger is not built (make dpinger)")
    # A short path: unix socket names are limited to about 100 bytes, and
    # pfSense's socket names are long.
    tmp = tempfile.mkdtemp(prefix="dpd-", dir="/tmp")
    b = None
    try:
        b = Box(pathlib.Path(tmp), platform)
        b.start_monitors()
        yield b
    finally:
        if b is not None:
            b.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def box():
    yield from make_box("pfsense")


@pytest.fixture
def opnbox():
    yield from make_box("opnsense")


def restarts(calls):
    return [c for c in calls if c.startswith(("php ", "pfSsh.php "))]


def test_install_order_and_result(box):
    before_stock = box.snapshot()[str(box.bin)]
    r = box.run(str(box.new))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    steps = ["monitored now: VPN_VTI WAN_DHCP", "saved the stock binary",
             "installed ", "verified ", "locked package dpinger",
             "restarting gateway monitoring",
             "all 2 gateway monitors answer with a measured status", "done:"]
    positions = [out.find(s) for s in steps]
    assert all(p >= 0 for p in positions), out
    assert positions == sorted(positions), out
    # The calls, each with the state of the box when it was made.
    lock = [i for i, c in enumerate(box.calls)
            if c.startswith("pkg lock -y dpinger")]
    restart = [i for i, c in enumerate(box.calls)
               if c.startswith("php -r")]
    ncs = [i for i, c in enumerate(box.calls) if c.startswith("nc -U")]
    assert len(lock) == 1 and len(restart) == 1, box.calls
    assert "bin=new saved=True" in box.calls[lock[0]]
    assert "bin=new saved=True" in box.calls[restart[0]]
    assert lock[0] < restart[0] < min(ncs)
    assert len(ncs) >= 2
    # The result.
    assert sha(box.bin) == sha(box.new)
    assert oct(os.stat(box.bin).st_mode & 0o777) == "0o555"
    assert box.stock.read_bytes() == box.stock_bytes
    assert box.snapshot()[str(box.stock)] == before_stock
    saved = (box.state / "stock.sha256").read_text().split()[0]
    assert saved == hashlib.sha256(box.stock_bytes).hexdigest()
    assert (box.state / "stock.version").read_text() == "3.3_1\n"
    assert not box.old_state.exists()
    assert box.locked()
    # The gateway watchdog's hook ran (tests/test_pfsense_watchdog.py).
    assert (box.root / "usr/local/sbin/dpinger-watchdog.sh").exists()


def test_install_is_idempotent(box):
    assert box.run(str(box.new)).returncode == 0
    snap = box.snapshot()
    r = box.run(str(box.new))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "already saved" in r.stdout
    assert "already the new binary" in r.stdout
    assert "already locked" in r.stdout
    assert "already installed" in r.stdout
    assert box.snapshot() == snap
    assert restarts(box.calls) == []
    assert not any(c.startswith(("pkg lock", "pkg unlock"))
                   for c in box.calls)


def test_rollback_restores_stock_exactly_and_second_is_noop(box):
    before = box.snapshot()
    assert box.run(str(box.new)).returncode == 0
    r = box.run("--rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    assert box.bin.read_bytes() == box.stock_bytes
    assert not box.locked()
    # Mode, times and everything else as before the install.
    assert box.snapshot() == before
    unlock = [i for i, c in enumerate(box.calls)
              if c.startswith("pkg unlock -y dpinger")]
    restart = [i for i, c in enumerate(box.calls) if c.startswith("php -r")]
    assert len(unlock) == 1 and len(restart) == 1
    assert "bin=stock" in box.calls[unlock[0]]
    assert unlock[0] < restart[0]
    assert "bin=stock" in box.calls[restart[0]]
    assert "rolled back" in r.stdout
    assert not (box.root / "usr/local/sbin/dpinger-watchdog.sh").exists()
    # Again: nothing to do, nothing done.
    r = box.run("--rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing to roll back" in r.stdout
    assert box.snapshot() == before
    assert restarts(box.calls) == []
    assert not any(c.startswith(("pkg lock", "pkg unlock"))
                   for c in box.calls)


def test_status(box):
    r = box.run("--status")
    assert r.returncode == 0
    assert "stock dpinger" in r.stdout and "not locked" in r.stdout
    assert box.run(str(box.new)).returncode == 0
    r = box.run("--status")
    assert "self-healing dpinger" in r.stdout
    assert "(dpinger 3.3_1), checksum ok" in r.stdout
    assert "package dpinger 3.3_1: locked" in r.stdout
    assert "WAN_DHCP 1520 310 0" in r.stdout
    assert "UPGRADED" not in r.stdout and "HELD BACK" not in r.stdout


# Each failure, where it strikes, and what the message says.  The box
# must be as it was before the run in every case.
FAILURES = [
    ("not-pfsense", None, "this is not pfSense"),
    ("new-not-runnable", None, "does not run here as dpinger"),
    ("new-is-stock", None, "not the self-healing dpinger"),
    ("save", None, "cannot save the stock binary"),
    ("install", None, "cannot install"),
    ("verify", None, "does not verify"),
    ("lock", "pkg-lock", "pkg lock -y dpinger failed"),
    ("restart", "restart-new", "restarting gateway monitoring failed"),
    ("check", "silent-new", "does not verify with the new binary"),
    ("check-dead", "dead-new", "VPN_VTI(not running)"),
    ("check-missing", "missing-new", "VPN_VTI(not started)"),
    ("check-notready", "notready-new",
     "WAN_DHCP(not ready: 'WAN_DHCP 0 0 0')"),
]


@pytest.mark.parametrize("step,fail,message", FAILURES,
                         ids=[f[0] for f in FAILURES])
def test_failure_leaves_box_as_it_was(box, step, fail, message):
    before = box.snapshot()
    new = str(box.new)
    if step == "not-pfsense":
        (box.root / "etc" / "version").unlink()
    elif step == "new-not-runnable":
        # A binary for another architecture: the kernel refuses it.
        bad = box.tmp / "bad" / "dpinger"
        bad.parent.mkdir()
        bad.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 57)
        bad.chmod(0o755)
        new = str(bad)
    elif step == "new-is-stock":
        new = str(box.bin)
    elif step in ("save", "install", "verify"):
        # A cp that fails (or, for verify, writes a short copy) when it
        # writes the file this step writes.
        target = {"save": ".dpinger.stock.new.*",
                  "install": ".dpinger.new.*",
                  "verify": ".dpinger.new.*"}[step]
        action = "exit 1" if step != "verify" else \
            'eval "last=\\${$#}"; head -c 100 "$1" > "$last"; exit 0'
        cp = box.standin_dir / "cp"
        # The restore after a failure copies with -p: leave it alone,
        # except for the save step, which copies with -p itself.
        skip_p = "" if step == "save" else \
            'case "$1" in -p) exec /bin/cp "$@" ;; esac'
        cp.write_text(textwrap.dedent('''\
            #!/bin/sh
            %s
            eval "last=\\${$#}"
            case "$last" in
            */%s) %s ;;
            esac
            exec /bin/cp "$@"
            ''' % (skip_p, target, action)))
        cp.chmod(0o755)
    before = box.snapshot()
    r = box.run(new, fail=fail)
    assert r.returncode != 0, r.stdout
    assert message in r.stderr, r.stdout + r.stderr
    if step != "not-pfsense":
        assert "the box is as it was" in r.stderr or step in (
            "new-not-runnable", "new-is-stock"), r.stderr
    assert box.bin.read_bytes() == box.stock_bytes
    assert not box.locked()
    assert box.snapshot() == before
    if step.startswith("check"):
        # Rolled back and restarted with the stock binary, which answers.
        rs = restarts(box.calls)
        assert len(rs) == 2
        assert "bin=new" in rs[0] and "bin=stock" in rs[1]
        assert "the stock dpinger monitors the gateways again" in r.stderr
    if step == "restart":
        assert any(c.startswith("pfSsh.php playback svc restart dpinger")
                   for c in box.calls), box.calls
    # And the install still works afterwards.
    if step not in ("not-pfsense",):
        cp = box.standin_dir / "cp"
        if cp.exists():
            cp.unlink()
        r = box.run(str(box.new))
        assert r.returncode == 0, r.stdout + r.stderr
        assert sha(box.bin) == sha(box.new)


def test_rollback_refuses_a_tampered_copy(box):
    assert box.run(str(box.new)).returncode == 0
    box.stock.write_bytes(box.stock_bytes + b"# changed\n")
    snap = box.snapshot()
    r = box.run("--rollback")
    assert r.returncode != 0
    assert "does not match" in r.stderr
    assert box.snapshot() == snap
    assert sha(box.bin) == sha(box.new)


def test_install_refuses_when_stock_already_replaced(box):
    """No stock copy to keep: the script will not save ours as 'stock'."""
    shutil.copy(box.new, box.bin)
    snap = box.snapshot()
    r = box.run(str(box.new))
    assert r.returncode != 0
    assert "no stock copy was saved" in r.stderr
    assert box.snapshot() == snap


def test_script_is_posix_sh():
    for sh in ("sh", "dash", "bash"):
        path = shutil.which(sh)
        if path is None:
            continue
        for f in (SCRIPT, COMMON):
            r = subprocess.run([path, "-n", f], capture_output=True,
                               text=True, timeout=10)
            assert r.returncode == 0, (sh, f, r.stderr)
    if shutil.which("shellcheck"):
        # -x: follow the source line into common.sh.
        r = subprocess.run(["shellcheck", "-x", "-s", "sh", SCRIPT, COMMON],
                           capture_output=True, text=True, timeout=60,
                           cwd=ROOT)
        assert r.returncode == 0, r.stdout + r.stderr
    if shutil.which("checkbashisms"):
        r = subprocess.run(["checkbashisms", "-f", SCRIPT, COMMON],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr


def test_leftover_socket_without_process_is_ignored(box):
    r = box.run(str(box.new), fail="stale-sock")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ignoring dpinger_OLD~x~y.sock" in r.stdout
    assert "all 2 gateway monitors answer" in r.stdout


# ---------------------------------------------------------------------- #
# Verifying the monitors                                                  #
# ---------------------------------------------------------------------- #

def test_waits_for_a_measured_status(box):
    """"0 0 0" is "not ready yet": the check asks again until it measures."""
    box.env["DPINGER_VERIFY_TIMEOUT"] = "20"  # slack for a loaded machine
    r = box.run(str(box.new), fail="warmup")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all 2 gateway monitors answer with a measured status" \
        in r.stdout
    after = [c for c in box.calls if c.startswith("nc -U")
             and "WAN_DHCP" in c]
    assert len(after) >= 2, box.calls


def test_a_gateway_down_is_a_measurement(box):
    """100 % loss: the gateway is down, the monitor works."""
    r = box.run(str(box.new), fail="down-new")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all 2 gateway monitors answer with a measured status" \
        in r.stdout


def test_no_gateway_monitored_still_installs(box):
    box.stop_monitors()
    r = box.run(str(box.new))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no gateway is monitored now" in r.stdout
    assert "no gateway to verify" in r.stdout
    # The restart started the configured gateways: named, not required.
    assert "also running now: VPN_VTI" in r.stdout
    assert sha(box.bin) == sha(box.new) and box.locked()


def test_no_gateway_at_all_still_installs(box):
    box.stop_monitors()
    box.env["STANDIN_GATEWAYS"] = ""
    r = box.run(str(box.new))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no gateway is monitored now" in r.stdout
    assert "also running" not in r.stdout
    assert sha(box.bin) == sha(box.new)
    r = box.run("--status")
    assert "no gateway monitor is running" in r.stdout


def test_status_names_a_monitor_not_ready_and_a_dead_one(box):
    assert box.run(str(box.new)).returncode == 0
    # Restarted behind the script's back: one never measures, one died.
    box.stop_monitors()
    box.env["STANDIN_FAIL"] = "notready-new,dead-new"
    box.start_monitors()
    r = box.run("--status")
    assert "WAN_DHCP 0 0 0 (not ready yet)" in r.stdout, r.stdout
    assert "dpinger_VPN_VTI~192.0.2.10~192.0.2.1.pid: process not running" \
        in r.stdout, r.stdout
    # Nothing to change: install checks the running monitors, and fails.
    snap = box.snapshot()
    r = box.run(str(box.new), fail="notready-new,dead-new")
    assert r.returncode != 0
    assert "WAN_DHCP(not ready: 'WAN_DHCP 0 0 0')" in r.stderr, r.stderr
    assert "not running: VPN_VTI" in r.stdout
    assert restarts(box.calls) == []
    assert box.snapshot() == snap


# ---------------------------------------------------------------------- #
# State across reboots                                                    #
# ---------------------------------------------------------------------- #

def test_state_survives_a_ram_disk_reboot(box):
    """"Use RAM Disks": /var is empty after a reboot; /conf is not."""
    before = box.snapshot()
    assert box.run(str(box.new)).returncode == 0
    box.reboot(ram_disks=True)
    assert not (box.root / "var" / "db").exists()
    r = box.run("--status")
    assert r.returncode == 0
    assert "self-healing dpinger" in r.stdout
    assert "(dpinger 3.3_1), checksum ok" in r.stdout, r.stdout
    assert "VPN_VTI 1520 310 0" in r.stdout
    r = box.run("--rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rolled back" in r.stdout
    assert box.bin.read_bytes() == box.stock_bytes
    assert not box.locked()
    assert not box.state.exists()
    (box.root / "var" / "db").mkdir()
    assert box.snapshot() == before


def test_state_in_old_place_moves_to_conf(box):
    """An install made when the state lived in /var/db keeps working."""
    assert box.run(str(box.new)).returncode == 0
    # As the older installer left it: /var/db, no version recorded.
    box.old_state.mkdir()
    shutil.move(str(box.state / "stock.sha256"), str(box.old_state))
    (box.state / "stock.version").unlink()
    box.state.rmdir()
    (box.root / "conf").rmdir()
    r = box.run("--status")
    assert "older installer's place" in r.stdout, r.stdout
    assert "checksum ok" in r.stdout
    assert "version of the saved copy: unknown" in r.stdout
    assert box.old_state.exists()
    r = box.run(str(box.new))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "moved the saved state from" in r.stdout
    assert "recorded the saved copy's package version, 3.3_1" in r.stdout
    assert "already installed" in r.stdout
    assert not box.old_state.exists()
    assert (box.state / "stock.version").read_text() == "3.3_1\n"
    assert (box.state / "stock.sha256").exists()
    r = box.run("--rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    assert box.bin.read_bytes() == box.stock_bytes


def test_rollback_moves_old_state_too(box):
    assert box.run(str(box.new)).returncode == 0
    box.old_state.mkdir()
    for f in box.state.iterdir():
        shutil.move(str(f), str(box.old_state))
    box.state.rmdir()
    r = box.run("--rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "moved the saved state from" in r.stdout
    assert box.bin.read_bytes() == box.stock_bytes
    assert not box.old_state.exists() and not box.state.exists()


def test_rollback_after_lost_state_says_what_to_do(box):
    """A RAM-disk reboot under the older installer lost the checksum."""
    assert box.run(str(box.new)).returncode == 0
    shutil.rmtree(box.state)
    snap = box.snapshot()
    r = box.run("--rollback")
    assert r.returncode != 0
    assert "cannot check" in r.stderr and "pkg check -s dpinger" in r.stderr
    assert box.snapshot() == snap
    r = box.run("--status")
    assert "CHECKSUM LOST" in r.stdout


# ---------------------------------------------------------------------- #
# Stock upgrades                                                          #
# ---------------------------------------------------------------------- #

STOCK2_SCRIPT = STOCK_SCRIPT.replace("3.3", "3.5")


def upgrade_unlocked(box):
    """The package unlocked, then upgraded: pkg replaces our binary."""
    subprocess.run(["pkg", "unlock", "-y", "dpinger"], env=box.env,
                   check=True, timeout=30)
    box.bin.unlink()
    box.bin.write_text(STOCK2_SCRIPT)
    box.bin.chmod(0o755)
    os.utime(box.bin, (1710000000, 1710000000))
    box.set_pkg(version="3.5_0", repo_version="3.5_0")
    return box.bin.read_bytes()


def test_upgrade_unlocked_status_and_install_save_the_new_stock(box):
    assert box.run(str(box.new)).returncode == 0
    stock2 = upgrade_unlocked(box)
    box.reboot(ram_disks=True)
    r = box.run("--status")
    assert "UPGRADED: package dpinger is 3.5_0 now; the saved stock " \
        "copy is 3.3_1's" in r.stdout, r.stdout
    assert "is the upgraded stock binary: install again" in r.stdout
    assert ": stock dpinger" in r.stdout and "not locked" in r.stdout
    r = box.run(str(box.new))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the package was upgraded while unlocked; saving it" in r.stdout
    assert box.stock.read_bytes() == stock2
    assert (box.state / "stock.version").read_text() == "3.5_0\n"
    assert sha(box.bin) == sha(box.new) and box.locked()
    assert not list(box.bin.parent.glob("*.prev"))
    assert not list(box.state.glob("*.prev"))
    r = box.run("--status")
    assert "UPGRADED" not in r.stdout and "HELD BACK" not in r.stdout
    r = box.run("--rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    assert box.bin.read_bytes() == stock2
    assert int(os.stat(box.bin).st_mtime) == 1710000000


def test_upgrade_unlocked_failed_install_keeps_the_older_copy(box):
    assert box.run(str(box.new)).returncode == 0
    upgrade_unlocked(box)
    box.reboot(ram_disks=False)
    before = box.snapshot()
    r = box.run(str(box.new), fail="silent-new")
    assert r.returncode != 0
    assert "undone: the older saved copy is back" in r.stdout
    assert box.snapshot() == before
    assert box.stock.read_bytes() == box.stock_bytes


def test_upgrade_locked_is_held_back_and_said(box):
    """pfSense-upgrade skips a locked package silently: say it."""
    assert box.run(str(box.new)).returncode == 0
    box.set_pkg(repo_version="3.5_0")
    r = box.run("--status")
    assert "HELD BACK: the repository has dpinger 3.5_0; 3.3_1 is " \
        "installed and locked, so pfSense-upgrade skipped it" in r.stdout, \
        r.stdout
    assert "UPGRADED" not in r.stdout
    snap = box.snapshot()
    r = box.run(str(box.new))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "HELD BACK" in r.stdout and "already installed" in r.stdout
    assert box.snapshot() == snap


def test_upgrade_seen_while_ours_is_installed(box):
    """Version changed under our binary: rollback gives the older one."""
    assert box.run(str(box.new)).returncode == 0
    box.set_pkg(version="3.5_0")
    r = box.run("--status")
    assert "UPGRADED: package dpinger is 3.5_0" in r.stdout
    assert "run 'pkg install -f dpinger' after it" in r.stdout


# ---------------------------------------------------------------------- #
# OPNsense                                                                #
# ---------------------------------------------------------------------- #

def test_opnsense_install_status_rollback(opnbox):
    box = opnbox
    before = box.snapshot()
    r = box.run(str(box.new))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    steps = ["OPNsense 24.7.1", "pkg check -sa", "monitored now: VPN_VTI "
             "WAN_DHCP", "saved the stock binary", "installed ",
             "locked package dpinger", "pluginctl -c monitor",
             "all 2 gateway monitors answer with a measured status", "done:"]
    positions = [out.find(s) for s in steps]
    assert all(p >= 0 for p in positions), out
    assert positions == sorted(positions), out
    restart = [c for c in box.calls if c.startswith("pluginctl ")]
    assert len(restart) == 1 and "bin=new saved=True" in restart[0]
    assert not any(c.startswith(("php", "pfSsh.php")) for c in box.calls)
    socks = [c for c in box.calls if c.startswith("nc -U")]
    assert any(c.split()[-3].endswith("/var/run/dpinger_WAN_DHCP.sock")
               for c in socks), socks
    assert sha(box.bin) == sha(box.new) and box.locked()
    # The watchdog is pfSense-only (its cron item is pfSense's PHP).
    assert not (box.root / "usr/local/sbin/dpinger-watchdog.sh").exists()
    r = box.run("--status")
    assert "OPNsense 24.7.1" in r.stdout
    assert "watchdog" not in r.stdout and "mbuf" not in r.stdout
    assert "dpinger_WAN_DHCP.sock: WAN_DHCP 1520 310 0" in r.stdout
    box.reboot(ram_disks=True)
    r = box.run("--rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    restart = [c for c in box.calls if c.startswith("pluginctl ")]
    assert len(restart) == 1 and "bin=stock" in restart[0]
    assert box.bin.read_bytes() == box.stock_bytes and not box.locked()
    (box.root / "var" / "db").mkdir()
    assert box.snapshot() == before


@pytest.mark.parametrize("fail,message", [
    ("missing-new", "VPN_VTI(not started)"),
    ("notready-new", "not ready: 'VPN_VTI 0 0 0'"),
    ("restart-new", "restarting gateway monitoring failed"),
])
def test_opnsense_failure_rolls_back(opnbox, fail, message):
    box = opnbox
    before = box.snapshot()
    r = box.run(str(box.new), fail=fail)
    assert r.returncode != 0
    assert message in r.stderr, r.stdout + r.stderr
    assert "the box is as it was" in r.stderr
    assert box.snapshot() == before
    rs = [c for c in box.calls if c.startswith("pluginctl ")]
    assert len(rs) == 2 and "bin=new" in rs[0] and "bin=stock" in rs[1]
    assert "the stock dpinger monitors the gateways again" in r.stderr


def test_state_in_both_places_refuses(box):
    """Nothing is overwritten when old and new state disagree."""
    assert box.run(str(box.new)).returncode == 0
    box.old_state.mkdir()
    (box.old_state / "stock.sha256").write_text("0" * 64 + "  x\n")
    snap = box.snapshot()
    r = box.run(str(box.new))
    assert r.returncode != 0
    assert "exist: keep the right one" in r.stderr, r.stderr
    assert box.snapshot() == snap


# ---------------------------------------------------------------------- #
# The real binary                                                         #
# ---------------------------------------------------------------------- #

def test_real_dpinger_verifies_with_pfsense_command_line(box, topo):
    """The installed ./dpinger itself, started the way pfSense starts it
    (daemonised, pfSense's intervals) in the test's firewall namespace:
    its pid file and socket are found, its first "0 0 0" lines are waited
    out, and it measures within the verify timeout."""
    topo.wait_path("v4")
    box.stop_monitors()
    box.env.update(STANDIN_GATEWAYS="WAN_DHCP", STANDIN_REAL_NS=topo.fw,
                   STANDIN_REAL_SRC="192.0.2.2", STANDIN_REAL_DST="192.0.2.1",
                   DPINGER_VERIFY_TIMEOUT="30")
    box.start_monitors()
    r = box.run(str(box.new))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all 1 gateway monitors answer with a measured status: " \
        "WAN_DHCP" in r.stdout
    pidf = box.root / "var" / "run" / \
        "dpinger_WAN_DHCP~192.0.2.2~192.0.2.1.pid"
    pid = int(pidf.read_text())
    assert os.path.realpath("/proc/%d/exe" % pid) == str(box.bin)
    r = box.run("--status")
    line = [x for x in r.stdout.splitlines()
            if "dpinger_WAN_DHCP~192.0.2.2~192.0.2.1.sock: " in x]
    assert len(line) == 1 and "(not ready yet)" not in line[0], r.stdout
    avg, sd, loss = line[0].split()[-3:]
    assert int(avg) > 0 and loss == "0", line
    # Back to the stock stand-in: the real one was stopped, and is gone.
    r = box.run("--rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.exists("/proc/%d" % pid) or \
        open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] \
        == "Z"
