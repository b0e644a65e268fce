"""Network namespaces, veth links and dpinger processes for the tests.

A Topology is two namespaces joined by one veth pair: "fw" (where dpinger
runs) and "gw" (the gateway it monitors).  Every name carries a short
prefix, so tests can run side by side and leave nothing behind.

    fw: <p>f  192.0.2.2/24  2001:db8::2/64  fe80::2/64
    gw: <p>g  192.0.2.1/24  2001:db8::1/64  fe80::1/64

Waiting is always polling with a deadline, never a bare sleep.
"""

import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

V4_FW, V4_GW = "192.0.2.2", "192.0.2.1"
V6_FW, V6_GW = "2001:db8::2", "2001:db8::1"
LL_FW, LL_GW = "fe80::2", "fe80::1"

# Binaries under test: DPINGER_VARIANTS picks a subset (comma separated).
VARIANT_PATHS = {
    "plain": os.path.join(ROOT, "dpinger"),
    "asan": os.path.join(ROOT, "build", "dpinger-asan"),
    "tsan": os.path.join(ROOT, "build", "dpinger-tsan"),
}
SANITIZER_ENV = {
    "ASAN_OPTIONS": "halt_on_error=1:detect_leaks=1:abort_on_error=0",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
    "TSAN_OPTIONS": "halt_on_error=1:second_deadlock_stack=1:"
                    "atexit_sleep_ms=0",
}
SANITIZER_MARKS = ("Sanitizer", "runtime error:", "ThreadSanitizer",
                   "LeakSanitizer")


def variants():
    wanted = os.environ.get("DPINGER_VARIANTS", "plain,asan,tsan")
    return [v.strip() for v in wanted.split(",") if v.strip()]


def sh(*args, check=True, ns=None, timeout=30):
    """Run a command (optionally inside a namespace); return its stdout."""
    cmd = list(args)
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns] + cmd
    proc = subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd),
                           proc.returncode, proc.stderr.strip()))
    return proc.stdout


def wait_until(predicate, timeout, what, interval=0.01):
    """Poll predicate() until it returns something true; fail after timeout.
    `what` may be a callable, to describe the state at the failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s"
                                 % (timeout, what() if callable(what)
                                    else what))
        time.sleep(interval)


def bench_unavailable(binary):
    """Why a benchmark cannot run here (its SKIPPED line), or None."""
    reason = can_use_netns()
    if reason:
        return reason
    if not os.access(binary, os.X_OK):
        return "SKIPPED: %s not built (make dpinger)" % binary
    return None


def can_use_netns():
    if os.geteuid() != 0:
        return "SKIPPED: network namespaces need root"
    name = "dpt-probe-%d" % os.getpid()
    try:
        sh("ip", "netns", "add", name)
        sh("ip", "netns", "del", name)
    except (RuntimeError, FileNotFoundError) as err:
        return "SKIPPED: ip netns does not work here: %s" % err
    return None


class Topology:
    def __init__(self, prefix):
        assert len(prefix) <= 12, "interface names are at most 15 bytes"
        self.prefix = prefix
        self.fw = prefix + "fw"
        self.gw = prefix + "gw"
        self.fw_if = prefix + "f"
        self.gw_if = prefix + "g"

    # -- life cycle --------------------------------------------------------
    def create(self):
        self.destroy()
        sh("ip", "netns", "add", self.fw)
        sh("ip", "netns", "add", self.gw)
        for ns in (self.fw, self.gw):
            sh("ip", "link", "set", "lo", "up", ns=ns)
            # Answer pings only; nothing else listens.
            sh("sysctl", "-qw", "net.ipv4.ping_group_range=1 0", ns=ns,
               check=False)
        self.create_link()
        return self

    def destroy(self):
        for ns in (self.fw, self.gw):
            subprocess.run(["ip", "netns", "del", ns],
                           stderr=subprocess.DEVNULL)

    def create_link(self, fw_addrs=True):
        """The veth pair with its addresses: what an IPsec reload
        re-creates."""
        sh("ip", "link", "add", self.fw_if, "netns", self.fw, "type", "veth",
           "peer", "name", self.gw_if, "netns", self.gw)
        for ns, ifname, v4, v6, ll in (
                (self.fw, self.fw_if, V4_FW, V6_FW, LL_FW),
                (self.gw, self.gw_if, V4_GW, V6_GW, LL_GW)):
            # Our own link-local address only, so the tests know it.
            sh("sysctl", "-qw", "net.ipv6.conf.%s.addr_gen_mode=1" % ifname,
               ns=ns)
            if ns == self.gw or fw_addrs:
                self.add_addrs(ns, ifname, v4, v6, ll)
            sh("ip", "link", "set", ifname, "up", ns=ns)

    def add_addrs(self, ns, ifname, v4, v6, ll):
        sh("ip", "addr", "add", v4 + "/24", "dev", ifname, ns=ns)
        sh("ip", "-6", "addr", "add", v6 + "/64", "dev", ifname, "nodad",
           ns=ns)
        sh("ip", "-6", "addr", "add", ll + "/64", "dev", ifname, "nodad",
           ns=ns)

    def add_fw_addrs(self):
        self.add_addrs(self.fw, self.fw_if, V4_FW, V6_FW, LL_FW)

    def destroy_link(self):
        sh("ip", "link", "del", self.fw_if, ns=self.fw)

    def recreate_link(self):
        self.destroy_link()
        self.create_link()

    def fw_ifindex(self):
        return int(sh("cat", "/sys/class/net/%s/ifindex" % self.fw_if,
                      ns=self.fw).strip())

    def wait_path(self, family, timeout=10):
        """Until the gateway answers a ping from fw (NDP takes about a
        second after a veth comes up)."""
        dest = {"v4": V4_GW, "v6": V6_GW,
                "ll": LL_GW + "%" + self.fw_if}[family]

        def answered():
            return subprocess.run(
                ["ip", "netns", "exec", self.fw, "ping", "-n", "-c", "1",
                 "-W", "1", dest], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL).returncode == 0
        wait_until(answered, timeout, "a ping from fw to %s" % dest)

    def args_for(self, family):
        """Bind and destination arguments for one address family."""
        return {
            "v4": ["-B", V4_FW, V4_GW],
            "v6": ["-B", V6_FW, V6_GW],
            "ll": ["-B", "%s%%%s" % (LL_FW, self.fw_if),
                   "%s%%%s" % (LL_GW, self.fw_if)],
        }[family]


class Dpinger:
    """A dpinger process (foreground, -f) whose stdout and stderr lines are
    collected by two threads, so that a test can wait for a line."""

    def __init__(self, binary, args, ns=None, env=None, foreground=True):
        self.binary = binary
        cmd = [binary] + (["-f"] if foreground else []) + list(args)
        if ns is not None:
            cmd = ["ip", "netns", "exec", ns] + cmd
        self.cmd = cmd
        full_env = dict(os.environ)
        full_env.update(SANITIZER_ENV)
        full_env.update(env or {})
        self.lock = threading.Lock()
        self.stdout_lines = []
        self.stderr_lines = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full_env,
                                     start_new_session=True)
        self.readers = [
            threading.Thread(target=self._read,
                             args=(self.proc.stdout, self.stdout_lines),
                             daemon=True),
            threading.Thread(target=self._read,
                             args=(self.proc.stderr, self.stderr_lines),
                             daemon=True)]
        for reader in self.readers:
            reader.start()

    def _read(self, stream, lines):
        for raw in iter(stream.readline, b""):
            with self.lock:
                lines.append((time.monotonic(),
                              raw.decode(errors="replace").rstrip("\n")))
        stream.close()

    @property
    def pid(self):
        return self.proc.pid

    def out(self):
        with self.lock:
            return [line for _, line in self.stdout_lines]

    def err(self):
        with self.lock:
            return [line for _, line in self.stderr_lines]

    def err_timed(self):
        with self.lock:
            return list(self.stderr_lines)

    def out_timed(self):
        with self.lock:
            return list(self.stdout_lines)

    def wait_err(self, pattern, timeout=10, start=0):
        """The first stderr line from index start on matching pattern."""
        regex = re.compile(pattern)

        def found():
            for line in self.err()[start:]:
                if regex.search(line):
                    return line
            if self.proc.poll() is not None:
                raise AssertionError("dpinger exited (%s) before logging %r;"
                                     " stderr: %s" % (self.proc.returncode,
                                                      pattern, self.err()))
            return None
        return wait_until(found, timeout, "stderr line %r (stderr so far: %r)"
                          % (pattern, self.err()[-10:]))

    def wait_out(self, pattern, timeout=10, start=0):
        regex = re.compile(pattern)

        def found():
            for line in self.out()[start:]:
                if regex.search(line):
                    return line
            return None
        return wait_until(found, timeout, "stdout line %r (so far: %r)"
                          % (pattern, self.out()[-10:]))

    def signal(self, signum):
        os.kill(self.proc.pid, signum)

    def stop(self, timeout=5):
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("dpinger did not exit on SIGTERM within"
                                 " %ss" % timeout)
        for reader in self.readers:
            reader.join(5)
        return self.proc.returncode

    def sanitizer_reports(self):
        return [line for line in self.err()
                if any(mark in line for mark in SANITIZER_MARKS)]


def query_status(path, timeout=2):
    """One connection to a -u socket: the line it writes, without '\\n'."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        # Kernel timeouts, not sock.settimeout(): that makes connect()
        # non-blocking, and a full listen backlog then fails at once with
        # EAGAIN where a real client (pfSense's) would wait.
        tv = struct.pack("ll", int(timeout), int(timeout % 1 * 1e6))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        sock.connect(path)
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    text = data.decode()
    assert text.endswith("\n"), "status line without newline: %r" % text
    return text[:-1]


def wait_status_line(path, predicate=bool, timeout=10,
                     what="an answer on the status socket"):
    """Poll a -u socket until its line satisfies predicate; the line.
    A socket not yet there, or bound but not yet listening (the file
    appears a moment before listen()), counts as no answer yet."""
    last = [None]

    def answered():
        try:
            last[0] = query_status(path)
        except OSError:
            return None
        return last[0] if predicate(last[0]) else None
    try:
        return wait_until(answered, timeout, what, interval=0.05)
    except AssertionError as err:
        raise AssertionError("%s (last status %r)" % (err, last[0]))


def wait_status(path, predicate, timeout, what):
    """wait_status_line on the numbers; (latency_us, stddev_us, loss_pct)."""
    return status_numbers(wait_status_line(
        path, lambda line: predicate(status_numbers(line)), timeout, what))


def answer_limit(binary):
    """How long one status query may take: 200 ms, or 500 ms under a
    sanitizer."""
    return 0.2 if binary == VARIANT_PATHS["plain"] else 0.5


def status_numbers(line):
    """(latency_us, stddev_us, loss_pct) from a status/report line."""
    parts = line.split()
    return int(parts[-3]), int(parts[-2]), int(parts[-1])


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def proc_threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0



def proc_cpu_ns(pid):
    """CPU time of a process, summed over its threads, in nanoseconds
    (/proc/PID/task/*/schedstat: finer than utime+stime's ticks)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def proc_wakeups(pid):
    """{thread id: voluntary context switches}: each is a wait that ended
    in a wake-up."""
    counts = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        counts[int(tid)] = int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return counts


def raw_sockets(pid):
    """A process's raw sockets as its namespace lists them
    (/proc/PID/net/raw and raw6): dicts with the remote address (hex, as
    the kernel prints it; all zeros when not connected), rx_queue (bytes
    waiting)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("raw", "raw6"):
        with open("/proc/%d/net/%s" % (pid, table)) as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[9] in inodes:
                    found.append({
                        "family": "v4" if table == "raw" else "v6",
                        "remote": cols[2].split(":")[0],
                        "rx_queue": int(cols[4].split(":")[1], 16)})
    return found


def echo_replies_in(pid):
    """ICMP and ICMPv6 echo replies the namespace of pid has received:
    what reached the host, whichever socket took it."""
    with open("/proc/%d/net/snmp" % pid) as f:
        rows = [line.split() for line in f if line.startswith("Icmp:")]
    total = int(rows[1][rows[0].index("InEchoReps")])
    with open("/proc/%d/net/snmp6" % pid) as f:
        for line in f:
            if line.startswith("Icmp6InEchoReplies"):
                total += int(line.split()[1])
    return total
