"""port/pfsense/dpinger-install.sh against a scratch pfSense root.

Stand-ins for pkg, php, pfSsh.php and nc record every call, with the state
of the box at that moment (which binary is installed, whether the stock
copy is saved), in a calls log.  The stand-in php's setup_gateways_monitor()
stops the gateway "monitors" and starts one small Python server per
gateway that answers on a unix socket like dpinger's -u does.  The stock
binary is a stand-in script printing 3.3's usage; the new binary is the
real ./dpinger.

Proven here: the install order (save, install, verify, lock, restart,
check); idempotence; that a failure at each step leaves the box as it was;
that --rollback restores the stock binary byte for byte and unlocks, and
that a second rollback is a no-op."""

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
BINARY = os.path.join(ROOT, "dpinger")
GATEWAYS = ["WAN_DHCP", "VPN_VTI"]

STOCK_USAGE = ("usage: dpinger [-f] [-R] [-S] [-P] [-B bind_addr] "
               "[-s send_interval] [-l loss_interval] [-t time_period] "
               "[-r report_interval] [-d data_length] [-o output_file] "
               "[-A alert_interval] [-D latency_alarm] [-L loss_alarm] "
               "[-H hold_interval] [-C alert_cmd] [-i identifier] "
               "[-u usocket] [-p pidfile] dest_addr")

# One program behind every stand-in, dispatched on its name.
STANDIN = textwrap.dedent(r'''
    import glob, hashlib, os, signal, socket, subprocess, sys, time

    root = os.environ["ROOT"]
    log = os.environ["STANDIN_LOG"]
    fail = os.environ.get("STANDIN_FAIL", "").split(",")
    name = os.environ["STANDIN_NAME"]
    binpath = os.path.join(root, "usr/local/bin/dpinger")
    stock = os.path.join(root, "usr/local/bin/dpinger.stock")
    rundir = os.path.join(root, "var/run")
    lockfile = os.path.join(root, "var/db/pkg/standin.locked")

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
            os.unlink(pidf)
        for s in glob.glob(os.path.join(rundir, "dpinger_*.sock")):
            os.unlink(s)
        mode = "silent" if "silent-" + which in fail else "answer"
        for gw in os.environ["STANDIN_GATEWAYS"].split():
            base = os.path.join(rundir, "dpinger_%s~192.0.2.10~192.0.2.1" % gw)
            p = subprocess.Popen([sys.executable, os.environ["STANDIN_SERVER"],
                                  base + ".sock", base + ".pid", gw, mode],
                                 start_new_session=True,
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            with open(os.environ["STANDIN_SPAWNED"], "a") as f:
                f.write("%d\n" % p.pid)
            deadline = time.monotonic() + 10
            while not os.path.exists(base + ".pid"):
                if time.monotonic() > deadline:
                    sys.exit(1)
                time.sleep(0.02)
        if "dead-" + which in fail:
            # A monitor that died right after its start.
            p = subprocess.Popen(["true"])
            p.wait()
            with open(os.path.join(rundir, "dpinger_DEAD~x~y.pid"), "w") as f:
                f.write("%d\n" % p.pid)
        if "stale-sock" in fail:
            # A socket file left by a gateway no longer configured.
            open(os.path.join(rundir, "dpinger_OLD~x~y.sock"), "w").close()

    if name == "pkg":
        record()
        args = sys.argv[1:]
        if args[:1] == ["query"] and args[1:] == ["%k", "dpinger"]:
            print("1" if os.path.exists(lockfile) else "0")
        elif args == ["lock", "-y", "dpinger"]:
            if "pkg-lock" in fail:
                sys.exit(1)
            os.makedirs(os.path.dirname(lockfile), exist_ok=True)
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
        if sys.argv[1:2] != ["-r"] or "setup_gateways_monitor();" not in code \
                or 'require_once("gwlb.inc")' not in code:
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
# dpinger -u does ("silent": accepts and closes without a word).
SERVER = textwrap.dedent(r'''
    import os, socket, sys
    sock, pidf, gw, mode = sys.argv[1:5]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock)
    s.listen(5)
    with open(pidf + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(pidf + ".tmp", pidf)
    while True:
        c, _ = s.accept()
        if mode == "answer":
            c.sendall(("%s 1520 310 0\n" % gw).encode())
        c.close()
''')

STOCK_SCRIPT = "#!/bin/sh\n# stand-in for the stock dpinger 3.3\n" \
    "echo '%s' >&2\nexit 1\n" % STOCK_USAGE


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Box:
    """A scratch pfSense root with stand-ins and a calls log."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.root = tmp / "root"
        self.log = tmp / "calls.log"
        self.spawned = tmp / "spawned.pids"
        self.standin_dir = tmp / "standin"
        for d in ("etc", "usr/local/bin", "usr/local/sbin", "var/run",
                  "var/db/pkg"):
            (self.root / d).mkdir(parents=True)
        (self.root / "etc" / "version").write_text("2.8.0-RELEASE\n")
        self.bin = self.root / "usr" / "local" / "bin" / "dpinger"
        self.stock = self.root / "usr" / "local" / "bin" / "dpinger.stock"
        self.state = self.root / "var" / "db" / "dpinger-selfheal"
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
        for name in ("pkg", "php", "nc"):
            self._wrapper(self.standin_dir / name, prog)
        self._wrapper(self.root / "usr" / "local" / "sbin" / "pfSsh.php",
                      prog)
        self.env = dict(
            os.environ, ROOT=str(self.root), STANDIN_LOG=str(self.log),
            STANDIN_SERVER=str(server), STANDIN_SPAWNED=str(self.spawned),
            STANDIN_GATEWAYS=" ".join(GATEWAYS), DPINGER_VERIFY_TIMEOUT="3",
            PATH="%s:%s:%s" % (self.standin_dir,
                               self.root / "usr" / "local" / "sbin",
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
        return (self.root / "var" / "db" / "pkg" / "standin.locked").exists()

    def snapshot(self):
        """Everything the script may change, except the running monitors."""
        files = {}
        for d in (self.root / "usr" / "local" / "bin", self.root / "var" /
                  "db"):
            for base, dirs, names in os.walk(d):
                for n in dirs:
                    files[os.path.join(base, n)] = "dir"
                for n in names:
                    p = os.path.join(base, n)
                    st = os.stat(p)
                    files[p] = (sha(p), oct(st.st_mode), int(st.st_mtime))
        return files

    def start_monitors(self):
        """pfSense at boot: the stock monitors already run."""
        env = dict(self.env)
        r = subprocess.run(["php", "-r", 'require_once("gwlb.inc"); '
                            'setup_gateways_monitor();'], env=env,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr

    def cleanup(self):
        if self.spawned.exists():
            for line in self.spawned.read_text().split():
                try:
                    os.kill(int(line), signal.SIGKILL)
                except (OSError, ValueError):
                    pass


@pytest.fixture
def box():
    if not os.access(BINARY, os.X_OK):
        pytest.skip("SKIPPED: ./dpinger is not built (make dpinger)")
    # A short path: unix socket names are limited to about 100 bytes, and
    # pfSense's socket names are long.
    tmp = tempfile.mkdtemp(prefix="dpd-", dir="/tmp")
    b = None
    try:
        b = Box(pathlib.Path(tmp))
        b.start_monitors()
        yield b
    finally:
        if b is not None:
            b.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def restarts(calls):
    return [c for c in calls if c.startswith(("php ", "pfSsh.php "))]


def test_install_order_and_result(box):
    before_stock = box.snapshot()[str(box.bin)]
    r = box.run(str(box.new))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    steps = ["saved the stock binary", "installed ", "verified ",
             "locked package dpinger", "restarting gateway monitoring",
             "all 2 gateway monitors answer", "done:"]
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
    assert box.locked()


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
    assert "checksum ok" in r.stdout and ": locked" in r.stdout
    assert "WAN_DHCP 1520 310 0" in r.stdout


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
    ("check-dead", "dead-new", "DEAD~x~y(not running)"),
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
        target = {"save": "dpinger.stock.tmp.*",
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
        r = subprocess.run([path, "-n", SCRIPT], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0, (sh, r.stderr)
    if shutil.which("shellcheck"):
        r = subprocess.run(["shellcheck", "-s", "sh", SCRIPT],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
    if shutil.which("checkbashisms"):
        r = subprocess.run(["checkbashisms", SCRIPT], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr


def test_leftover_socket_without_process_is_ignored(box):
    r = box.run(str(box.new), fail="stale-sock")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ignoring dpinger_OLD~x~y.sock" in r.stdout
    assert "all 2 gateway monitors answer" in r.stdout
