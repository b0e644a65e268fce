"""What dpinger prints, byte for byte, from the real binary: the start-up
line, the report line on stdout and in -o files (with and without -R), the
fatal messages of a few bad command lines; and that IPv4, IPv6 and IPv6
link-local all measure a live gateway (loss 0, a sane latency)."""

import math
import os
import re
import subprocess
import sys
import time

import pytest

import netns
from netns import V4_FW, V4_GW, V6_FW, wait_until

# TSan sleeps a second in _exit() by default (see test_daemon.py).
SAN_ENV = dict(netns.SANITIZER_ENV)
if "atexit_sleep_ms" not in SAN_ENV["TSAN_OPTIONS"]:
    SAN_ENV["TSAN_OPTIONS"] += ":atexit_sleep_ms=0"

NUM = r"(0|[1-9][0-9]*)"
REPORT = re.compile(r"(?:(\S+) )?%s %s %s" % (NUM, NUM, NUM))
# 20 slots of 100 ms, a report every 200 ms.
FAST = ["-s", "100m", "-r", "200m", "-t", "2s"]


def report_ok(line, ident=None):
    """A report line: `[identifier ]avg stddev loss`, integers only."""
    m = REPORT.fullmatch(line)
    return m is not None and m.group(1) == ident


def fitted_period(slots, times):
    """Least-squares slope of times against deadline numbers."""
    n = len(times)
    mean_i = sum(slots) / n
    mean_t = sum(times) / n
    return sum((i - mean_i) * (t - mean_t) for i, t in zip(slots, times)) \
        / sum((i - mean_i) ** 2 for i in slots)


def live(line):
    latency, _, loss = netns.status_numbers(line)
    return 0 < latency < 200000 and loss == 0


# ---------------------------------------------------------------------
# Start-up line
# ---------------------------------------------------------------------

STARTUP_CASES = {
    # pfSense's command line (without -S, so the line reaches stderr).
    "pfsense": (
        ["-r", "0", "-i", "WAN_DHCP", "-B", V4_FW, "-u", "{sock}",
         "-d", "1", "-s", "500", "-l", "2000", "-t", "60000", "-A", "1000",
         "-D", "500", "-L", "20", V4_GW],
        "send_interval 500ms  loss_interval 2000ms  time_period 60000ms  "
        "report_interval 0ms  data_len 1  alert_interval 1000ms  "
        "latency_alarm 500ms  loss_alarm 20%  alarm_hold 10000ms  "
        "dest_addr 192.0.2.1  bind_addr 192.0.2.2  "
        "identifier \"WAN_DHCP \""),
    # Defaults: loss 4 x send, hold 10 x alert, no bind, no identifier.
    "defaults": (
        [V4_GW],
        "send_interval 500ms  loss_interval 2000ms  time_period 60000ms  "
        "report_interval 1000ms  data_len 0  alert_interval 1000ms  "
        "latency_alarm 0ms  loss_alarm 0%  alarm_hold 10000ms  "
        "dest_addr 192.0.2.1  bind_addr (none)  identifier \"\""),
    # OPNsense's suffixed times; k lengths; % on -L; -H given.
    "suffixes": (
        ["-r", "0", "-i", "GW_V6", "-B", V6_FW, "-u", "{sock}", "-s", "1s",
         "-l", "4s", "-t", "60s", "-d", "2k", "-A", "2s", "-D", "0",
         "-L", "15%", "-H", "3s", "2001:db8::1"],
        "send_interval 1000ms  loss_interval 4000ms  time_period 60000ms  "
        "report_interval 0ms  data_len 2048  alert_interval 2000ms  "
        "latency_alarm 0ms  loss_alarm 15%  alarm_hold 3000ms  "
        "dest_addr 2001:db8::1  bind_addr 2001:db8::2  "
        "identifier \"GW_V6 \""),
    # Link-local with scope, printed as given; -s without -l.
    "link-local": (
        ["-s", "250m", "-r", "2s", "-B", "fe80::2%{fwif}",
         "fe80::1%{fwif}"],
        "send_interval 250ms  loss_interval 1000ms  time_period 60000ms  "
        "report_interval 2000ms  data_len 0  alert_interval 1000ms  "
        "latency_alarm 0ms  loss_alarm 0%  alarm_hold 10000ms  "
        "dest_addr fe80::1%{fwif}  bind_addr fe80::2%{fwif}  "
        "identifier \"\""),
}


@pytest.mark.parametrize("case", sorted(STARTUP_CASES))
def test_startup_line(binary, topo, tmp_path, spawn, case):
    args, expected = STARTUP_CASES[case]
    subst = {"sock": os.path.join(str(tmp_path), "s.sock"),
             "fwif": topo.fw_if}
    args = [a.format(**subst) for a in args]
    expected = expected.format(**subst)
    dp = spawn(binary, args, ns=topo.fw, env=SAN_ENV)
    first = dp.wait_err(".", timeout=10)
    assert first == expected
    assert dp.stop() == 0
    assert dp.err()[0] == expected
    assert dp.err()[-1] == "exiting on signal 15"


# ---------------------------------------------------------------------
# Report lines
# ---------------------------------------------------------------------

@pytest.mark.parametrize("ident", ["WAN_DHCP", None])
def test_report_lines_on_stdout(binary, topo, spawn, ident):
    topo.wait_path("v4")
    args = (["-i", ident] if ident else []) + FAST + ["-B", V4_FW, V4_GW]
    dp = spawn(binary, args, ns=topo.fw, env=SAN_ENV)
    # Past 5 reports (1 s) the loss interval (400 ms) has passed for most
    # requests: a live gateway must then show loss 0.
    wait_until(lambda: len(dp.out()) >= 6, 10, "six report lines")
    lines = dp.out()
    for line in lines:
        assert report_ok(line, ident), line
    assert live(lines[5]), lines
    assert dp.stop() == 0
    for line in dp.out():
        assert report_ok(line, ident), line


def test_report_interval_does_not_drift(plain_binary, topo, spawn):
    """One line per report interval, on absolute deadlines."""
    dp = spawn(plain_binary, FAST + ["-B", V4_FW, V4_GW], ns=topo.fw)
    wait_until(lambda: len(dp.out()) >= 11, 10, "eleven report lines")
    times = [t for t, _ in dp.out_timed()][:11]
    gaps = [b - a for a, b in zip(times, times[1:])]
    # Read times: a loaded machine delays a read, never skips a line.
    assert all(0.0 < g < 0.6 for g in gaps), gaps
    # Ten intervals of 200 ms: a drifting loop would add its own time.
    # The times are when the test read each line, so the period is
    # fitted: one late read on a loaded machine moves it little.
    period = fitted_period(list(range(len(times))), times)
    assert abs(period - 0.200) < 0.005, \
        "fitted report period %.1f ms, not 200 ms" % (period * 1e3)


def test_output_file_appends(binary, topo, tmp_path, spawn):
    topo.wait_path("v4")
    out = os.path.join(str(tmp_path), "report.txt")
    with open(out, "w") as f:
        f.write("old content that -o must truncate\n")
    dp = spawn(binary, ["-i", "GW", "-o", out] + FAST + ["-B", V4_FW, V4_GW],
               ns=topo.fw, env=SAN_ENV)

    def lines():
        with open(out) as f:
            text = f.read()
        return text.endswith("\n") and text.splitlines()
    wait_until(lambda: len(lines() or []) >= 6, 10, "six lines in the file")
    got = lines()
    assert all(report_ok(line, "GW") for line in got), got
    assert live(got[5]), got
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(out).st_mode & 0o777 == 0o644 & ~umask
    assert dp.stop() == 0
    assert dp.out() == [], "reports went to stdout as well as -o"


def test_output_file_rewound(binary, topo, tmp_path, spawn):
    """-R: the file always holds exactly the last line."""
    topo.wait_path("v4")
    out = os.path.join(str(tmp_path), "report.txt")
    dp = spawn(binary, ["-R", "-i", "GW", "-o", out] + FAST +
               ["-B", V4_FW, V4_GW], ns=topo.fw, env=SAN_ENV)
    wait_until(lambda: os.path.exists(out) and os.path.getsize(out) > 0, 10,
               "a first report")
    seen = []

    def sample():
        # A rewrite is lseek + write + ftruncate: a read can fall between
        # them, and a report thread preempted there (TSan) keeps the
        # file mixed for a while; within 50 ms it must be one line.
        for _ in range(10):
            with open(out) as f:
                text = f.read()
            if text.count("\n") == 1 and text.endswith("\n"):
                return text
            time.sleep(0.005)
        return text

    def enough():
        text = sample()
        assert text.count("\n") == 1 and text.endswith("\n") and \
            report_ok(text[:-1], "GW"), "-R file holds %r" % text
        if not seen or seen[-1] != text:
            seen.append(text)
        return len(seen) >= 6
    wait_until(enough, 10, "six different single-line contents",
               interval=0.02)
    assert live(seen[-1][:-1]), seen
    assert dp.stop() == 0
    assert dp.out() == []


def test_no_reports_with_r0(binary, topo, tmp_path, spawn):
    """-r 0: no report thread; the status socket still answers."""
    topo.wait_path("v4")
    sock = os.path.join(str(tmp_path), "s.sock")
    dp = spawn(binary, ["-r", "0", "-u", sock, "-s", "100m", "-t", "2s",
                        "-B", V4_FW, V4_GW], ns=topo.fw, env=SAN_ENV)
    # The start-up line is the reference: the reader thread can see it
    # after the socket file exists.
    started = wait_until(dp.err_timed, 10, "the start-up line")[0][0]
    # More than the default report interval (1 s) must pass in silence.
    netns.wait_status_line(sock, lambda line: live(line) and
                           time.monotonic() - started > 1.2, 10,
                           "a live status after 1.2 s")
    assert dp.out() == []
    assert dp.stop() == 0
    assert dp.out() == []


# ---------------------------------------------------------------------
# The three address families
# ---------------------------------------------------------------------

@pytest.mark.parametrize("family", ["v4", "v6", "ll"])
def test_family_measures_live_gateway(binary, topo, tmp_path, spawn, family):
    topo.wait_path(family)
    sock = os.path.join(str(tmp_path), "s.sock")
    dp = spawn(binary, ["-i", "GW", "-u", sock] + FAST +
               topo.args_for(family), ns=topo.fw, env=SAN_ENV)
    wait_until(lambda: len(dp.out()) >= 6, 10, "six report lines")
    lines = dp.out()
    assert all(report_ok(line, "GW") for line in lines), lines
    assert live(lines[5]), lines
    status = netns.query_status(sock)
    assert report_ok(status, "GW") and live(status), status
    assert not [x for x in dp.err()[1:] if "error" in x], dp.err()
    assert dp.stop() == 0


# ---------------------------------------------------------------------
# Bad command lines: exit 1, the spec's message, nothing else
# ---------------------------------------------------------------------

LONG_SOCK = "/tmp/" + "s" * 120

BAD_CASES = [
    (["-s", "10x", V4_GW], ["invalid send interval 10x"]),
    # An error before -S is parsed still goes to stderr (after it: syslog
    # only, see test_upstream.py).
    (["-t", "-5", "-S", V4_GW], ["invalid averaging time period -5"]),
    (["-L", "101", V4_GW], ["invalid loss alarm threshold 101"]),
    (["-i", "x" * 63, V4_GW],
     ["identifier argument too large (max 63 bytes)"]),
    (["192.0.2.300"], ["invalid destination IP address 192.0.2.300"]),
    (["gateway.example"], ["invalid destination IP address gateway.example"]),
    (["-B", V6_FW, V4_GW], ["invalid bind IP address 2001:db8::2"]),
    (["-r", "0", V4_GW], ["no activity enabled"]),
    (["-s", "1s", "-t", "2s", V4_GW],
     ["the time period must be greater than twice the send interval plus"
      " the loss interval"]),
    (["-d", "65508", V4_GW],
     ["data length too large for IPv4 - maximum is 65507 bytes"]),
    (["-u", LONG_SOCK, V4_GW], ["socket name too large"]),
    ([V4_GW, V4_FW], "usage+incorrect number of parameters"),
    ([], "usage+incorrect number of parameters"),
    (["-Z", V4_GW], "invalid option -- 'Z'"),
]


@pytest.mark.parametrize("args,expected", BAD_CASES,
                         ids=[" ".join(a)[:30] or "none"
                              for a, _ in BAD_CASES])
def test_bad_command_line(binary, args, expected):
    env = dict(os.environ)
    env.update(SAN_ENV)
    proc = subprocess.run([binary] + args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=30,
                          env=env)
    check_refused(proc, binary, expected)
    assert not os.path.exists(LONG_SOCK)


def check_refused(proc, binary, expected):
    """Exit 1, nothing on stdout, and on stderr: the lines in expected (a
    list); or usage then `incorrect number of parameters`; or getopt's
    own message (expected, a string) then usage."""
    assert proc.returncode == 1
    assert proc.stdout == ""
    err = proc.stderr.splitlines()
    if isinstance(expected, list):
        assert err == expected
        return
    getopt_message = not expected.startswith("usage+")
    if getopt_message:
        # getopt's own message first, as upstream's.
        assert err.pop(0) == "%s: %s" % (binary, expected), err
    assert err[0].startswith("usage: dpinger "), err
    assert "dest_addr" in proc.stderr
    if getopt_message:
        assert len(err) == 1, err
    else:
        assert err[1:] == ["incorrect number of parameters"], err


# ---------------------------------------------------------------------
# Which replies count
# ---------------------------------------------------------------------

V4_OTHER = "192.0.2.3"

# The Internet checksum, shared by the helper scripts below.
CHECKSUM_SRC = r'''
def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff
'''

# Echo requests from fw, and replies to them, for the responders that run
# in the gateway's namespace (here and in test_upstream.py).
ECHO_SRC = CHECKSUM_SRC + r'''
def echo_request(pkt, addr, fw):
    """(ident, seq, payload) of an IPv4 echo request from fw, or None."""
    icmp = pkt[(pkt[0] & 15) * 4:]
    if addr[0] != fw or len(icmp) < 8 or icmp[0] != 8:
        return None
    return struct.unpack("!HH", icmp[4:8]) + (icmp[8:],)

def echo_reply(ident, seq, payload):
    csum = checksum(struct.pack("!BBHHH", 0, 0, 0, ident, seq) + payload)
    return struct.pack("!BBHHH", 0, 0, csum, ident, seq) + payload

def read_mode(path):
    with open(path) as f:
        return f.read().strip()
'''

# Runs in the gateway's namespace: sees every echo request from fw on a
# raw socket and answers it as the mode file says:
#   dup    one more, correct reply from the gateway (the kernel answers too)
#   wrong  a reply from another host (192.0.2.3), one with another echo
#          identifier, and one for the same slot a lap of the ring earlier
#   delay:E:O  the correct reply, E ms late for even sequence numbers and
#          O ms late for odd ones (the kernel's own replies turned off)
SPOOFER = r"""
import socket, struct, sys, time
mode_path, gw, other, fw, slots = sys.argv[1:6]
slots = int(slots)

%(echo)s
def raw(bind=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    if bind:
        s.bind((bind, 0))
    return s

listen, from_gw, from_other = raw(), raw(gw), raw(other)
sent = {}

def reply(sock, ident, seq, payload, kind):
    sock.sendto(echo_reply(ident, seq, payload), (fw, 0))
    sent[kind] = sent.get(kind, 0) + 1
    print(" ".join("%s=%d" % kv for kv in sorted(sent.items())), flush=True)

print("ready", flush=True)
while True:
    request = echo_request(*listen.recvfrom(65535), fw)
    if request is None:
        continue
    ident, seq, payload = request
    mode = read_mode(mode_path)
    if mode == "dup":
        reply(from_gw, ident, seq, payload, "dup")
    elif mode == "wrong":
        reply(from_other, ident, seq, payload, "other_host")
        reply(from_gw, ident ^ 0x5a5a, seq, payload, "other_id")
        if seq >= slots:
            reply(from_gw, ident, seq - slots, payload, "earlier_lap")
    elif mode.startswith("delay:"):
        # delay:EVEN:ODD  answer after EVEN or ODD ms, by sequence parity
        even, odd = (int(x) for x in mode.split(":")[1:])
        time.sleep((odd if seq % 2 else even) / 1000)
        reply(from_gw, ident, seq, payload, "delayed")
""".replace("%(echo)s", ECHO_SRC)


def set_mode(path, mode):
    with open(path + ".new", "w") as f:
        f.write(mode + "\n")
    os.rename(path + ".new", path)


def start_spoofer(topo, mode_path):
    """The spoofer in gw, with the other host's address there too."""
    netns.sh("ip", "addr", "add", V4_OTHER + "/24", "dev", topo.gw_if,
             ns=topo.gw)
    spoofer = netns.Dpinger(sys.executable,
                            ["-c", SPOOFER, mode_path, V4_GW, V4_OTHER,
                             V4_FW, "20"], ns=topo.gw, foreground=False)
    try:
        spoofer.wait_out("^ready$")
    except AssertionError:
        spoofer.proc.kill()
        spoofer.proc.wait()
        raise AssertionError("spoofer did not start: %s" % spoofer.err())
    return spoofer


def spoofed(spoofer):
    """The spoofer's counts of replies sent, by kind."""
    out = spoofer.out()
    if not out or out[-1] == "ready":
        return {}
    return {k: int(v) for k, v in (kv.split("=") for kv in out[-1].split())}


def test_only_the_gateways_replies_count(binary, topo, tmp_path, spawn):
    topo.wait_path("v4")
    mode = os.path.join(str(tmp_path), "mode")
    set_mode(mode, "dup")
    spoofer = start_spoofer(topo, mode)
    try:
        sock = os.path.join(str(tmp_path), "s.sock")
        dp = spawn(binary, ["-i", "GW", "-r", "0", "-u", sock, "-s", "100m",
                            "-t", "2s", "-B", V4_FW, V4_GW],
                   ns=topo.fw, env=SAN_ENV)
        # Two answers to every request: the second is a duplicate.
        dp.wait_err("^GW %s: duplicate echo reply received$" % V4_GW)
        netns.wait_status_line(sock, what="the status socket")
        wait_until(lambda: spoofed(spoofer).get("dup", 0) >= 10, 10,
                   "ten duplicates")
        assert live(netns.query_status(sock)), "duplicates were lost?"

        # The gateway falls silent; only wrong replies arrive now.
        netns.sh("sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1",
                 ns=topo.gw)
        set_mode(mode, "wrong")
        start = time.monotonic()

        def all_lost():
            line = netns.query_status(sock)
            return netns.status_numbers(line)[2] == 100 and line
        try:
            wait_until(all_lost, 8, "loss 100 %")
        except AssertionError:
            raise AssertionError(
                "wrong replies were counted: status %r after %.1fs; "
                "spoofer sent %s" % (netns.query_status(sock),
                                     time.monotonic() - start,
                                     spoofer.out()[-1]))
        wait_until(lambda: all(spoofed(spoofer).get(kind, 0) >= 10
                               for kind in ("other_host", "other_id",
                                            "earlier_lap")),
                   5, "ten wrong replies of each kind")
        line = netns.query_status(sock)
        assert netns.status_numbers(line)[2] == 100, \
            "wrong replies were counted: %r, spoofed %s" % (
                line, spoofed(spoofer))
        assert dp.stop() == 0
    finally:
        spoofer.proc.kill()
        spoofer.proc.wait()


# ---------------------------------------------------------------------
# The echo requests on the wire
# ---------------------------------------------------------------------

# Runs in the gateway's namespace: one line per echo request from fw:
# monotonic time, source, ICMP type, code, id, seq, ICMP length, and
# whether an IPv4 checksum is right.
SNIFFER = r"""
import socket, struct, sys, time
family, src = sys.argv[1:3]
if family == "4":
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW,
                      socket.IPPROTO_ICMPV6)

%(checksum)s
# Kernel arrival stamps: the sniffer's own scheduling does not count.
# (Linux's SO_TIMESTAMPNS, 35, when Python does not name it.)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
print("ready", flush=True)
while True:
    pkt, anc, _, addr = s.recvmsg(65535, 256)
    now = time.monotonic()
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = struct.unpack("qq", data[:16])
            now = sec + nsec / 1e9
    icmp = pkt[(pkt[0] & 15) * 4:] if family == "4" else pkt
    if addr[0].split("%")[0] != src or len(icmp) < 8 or \
            icmp[0] not in (8, 128):
        continue
    ident, seq = struct.unpack("!HH", icmp[4:8])
    ok = checksum(icmp) == 0 if family == "4" else True
    print("%.6f %s %d %d %d %d %d %d" % (now, addr[0].split("%")[0],
          icmp[0], icmp[1], ident, seq, len(icmp), ok), flush=True)
""".replace("%(checksum)s", CHECKSUM_SRC)


@pytest.mark.parametrize("family,data_len", [("v4", 1), ("v6", 100),
                                             ("ll", 0)])
def test_echo_requests(binary, topo, spawn, family, data_len):
    """Type, code, identifier (the low 16 bits of the pid), sequence
    numbers counting up, payload length (-d), source (-B), checksum."""
    topo.wait_path(family)
    src = {"v4": V4_FW, "v6": V6_FW, "ll": netns.LL_FW}[family]
    sniffer = netns.Dpinger(sys.executable,
                            ["-c", SNIFFER, "4" if family == "v4" else "6",
                             src], ns=topo.gw, foreground=False)
    try:
        sniffer.wait_out("^ready$")
        dp = spawn(binary, ["-d", str(data_len), "-s", "100m", "-r", "0",
                            "-L", "50", "-t", "2s"] + topo.args_for(family),
                   ns=topo.fw, env=SAN_ENV)
        wait_until(lambda: len(sniffer.out()) >= 13, 10,
                   "twelve echo requests")
        assert dp.stop() == 0
    finally:
        sniffer.proc.kill()
        sniffer.proc.wait()
    requests = [line.split() for line in sniffer.out()[1:]]
    echo_type = 8 if family == "v4" else 128
    seqs = []
    for when, source, typ, code, ident, seq, length, ok in requests:
        assert source == src
        assert (int(typ), int(code)) == (echo_type, 0)
        assert int(ident) == dp.pid & 0xffff
        assert int(length) == 8 + data_len
        assert ok == "1", "bad ICMP checksum"
        seqs.append(int(seq))
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def test_send_interval_does_not_drift(plain_binary, topo, spawn):
    """Sends on absolute deadlines: the fitted period is the send interval
    itself.  A loop that sleeps for the interval after each send adds its
    own overhead and wake-up latency (50 us or more) to every period."""
    topo.wait_path("v4")
    sniffer = netns.Dpinger(sys.executable, ["-c", SNIFFER, "4", V4_FW],
                            ns=topo.gw, foreground=False)
    try:
        sniffer.wait_out("^ready$")
        dp = spawn(plain_binary, ["-s", "20m", "-r", "0", "-L", "50",
                                  "-t", "2s", "-B", V4_FW, V4_GW],
                   ns=topo.fw)
        wait_until(lambda: len(sniffer.out()) >= 102, 10,
                   "a hundred and one echo requests")
        dp.stop()
    finally:
        sniffer.proc.kill()
        sniffer.proc.wait()
    times = [float(line.split()[0]) for line in sniffer.out()[1:102]]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(0.0 < g < 0.1 for g in gaps), gaps
    # A drift shows in the median gap, whatever a few late wakes do.
    median_gap = sorted(gaps)[len(gaps) // 2]
    assert abs(median_gap - 0.020) < 15e-6, \
        "median gap %.1f us, not 20000 us" % (median_gap * 1e6)
    # Each send's deadline number.  Sends are never early, only late: a
    # wake up to 18 ms late stays on its deadline, and a sender stalled
    # past a whole interval (a loaded machine) skips a deadline instead
    # of bursting.  The deadlines' phase is the sends' circular mean, as
    # the first send may itself be late.
    offsets = [t - times[0] for t in times]
    angles = [2 * math.pi * o / 0.020 for o in offsets]
    phase = 0.020 * math.atan2(sum(map(math.sin, angles)),
                               sum(map(math.cos, angles))) / (2 * math.pi)
    slots = [math.floor((o - phase) / 0.020 + 0.1) for o in offsets]
    assert all(a < b for a, b in zip(slots, slots[1:])), \
        "two sends on one deadline: %r" % gaps
    # Least-squares period over 101 sends, fitted again without the
    # late wakes (more than 1 ms off the line), which drift is not.
    period = fitted_period(slots, times)
    base = sum(t - s * period for s, t in zip(slots, times)) / len(times)
    kept = [(s, t) for s, t in zip(slots, times)
            if abs(t - base - s * period) < 0.001]
    assert len(kept) > len(times) // 2, "most sends were late: %r" % gaps
    period = fitted_period([s for s, _ in kept], [t for _, t in kept])
    assert abs(period - 0.020) < 20e-6, \
        "fitted send period %.1f us, not 20000 us" % (period * 1e6)
    print("fitted send period at -s 20m: %.2f us" % (period * 1e6))


def test_latency_stddev_and_latency_alarm(binary, topo, tmp_path, spawn):
    """Replies held back 10 ms and 30 ms in turn: average 20 ms, standard
    deviation 10 ms.  Then 40 ms: the latency alarm (-D 25) calls the
    alert command with the latency; then no delay: Clear."""
    from test_daemon import alert_calls, make_alert_script
    topo.wait_path("v4")
    netns.sh("sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1", ns=topo.gw)
    mode = os.path.join(str(tmp_path), "mode")
    set_mode(mode, "delay:10:30")
    spoofer = start_spoofer(topo, mode)
    try:
        alert = make_alert_script(tmp_path)
        sock = os.path.join(str(tmp_path), "s.sock")
        dp = spawn(binary, ["-i", "GW", "-r", "0", "-u", sock, "-s", "100m",
                            "-t", "2s", "-A", "100m", "-D", "25",
                            "-H", "300m", "-C", alert, "-B", V4_FW, V4_GW],
                   ns=topo.fw, env=SAN_ENV)
        # Twenty answered requests fill the 2 s window.
        wait_until(lambda: spoofed(spoofer).get("delayed", 0) >= 22, 10,
                   "a window of delayed replies")
        # Polled: a reply that our spoofer sent late (descheduled) skews
        # the window until it leaves it 2 s later.
        avg, sd, loss = netns.wait_status(
            sock, lambda n: 19500 <= n[0] <= 24000 and 8500 <= n[1] <= 12000,
            5, "average ~20 ms and stddev ~10 ms")
        print("10/30 ms replies: average %d us, stddev %d us" % (avg, sd))
        assert loss == 0
        assert alert_calls(tmp_path) == []

        set_mode(mode, "delay:40:40")
        calls = wait_until(lambda: alert_calls(tmp_path), 10,
                           "the latency alarm")
        assert calls[0][:3] == ["GW", V4_GW, "1"], calls
        avg, sd, loss = (int(x) for x in calls[0][3:])
        assert avg > 25000 and loss == 0, calls
        dp.wait_err("^GW %s: Alarm latency %dus stddev %dus loss 0%%$"
                    % (V4_GW, avg, sd), timeout=2)

        set_mode(mode, "delay:0:0")
        calls = wait_until(lambda: len(alert_calls(tmp_path)) >= 2 and
                           alert_calls(tmp_path), 10, "the clear")
        assert calls[1][:3] == ["GW", V4_GW, "0"], calls
        assert int(calls[1][3]) <= 25000, calls
        assert len(calls) == 2, calls
        assert dp.stop() == 0
    finally:
        spoofer.proc.kill()
        spoofer.proc.wait()
