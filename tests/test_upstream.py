"""Caller-visible behaviour that must be upstream's (issue 9), from the real
binary in network namespaces: the alarm events (two independent alarms,
one alert call per raise or clear), no burst of reports or alert checks
after a stall, SIGPIPE on a report pipe whose reader is gone, and the
arguments: `-i ""`, a relative -C run by a daemon, -S for fatal errors,
getopt's own message, the -C length limit.

Delay and loss come from a small user-space responder in the gateway's
namespace (the kernel's own echo replies are turned off there): it answers
each echo request after the delay, and drops a share of them, as its mode
file says at that moment."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import netns
from netns import V4_FW, V4_GW, wait_until
from test_daemon import (LOG_DAEMON, LOG_ERR, SAN_ENV, alert_calls,
                         make_alert_script)
from test_daemon import reaped, syslog  # noqa: F401 (fixtures)
from test_outputs import ECHO_SRC, check_refused, set_mode

# Runs in the gateway's namespace.  The mode file holds "DELAY_MS DROP_PCT":
# each echo request from fw is answered DELAY_MS later, unless it is one of
# the DROP_PCT in a hundred that are dropped (spread evenly over the
# sequence numbers).  Replies wait in a heap, so a delay longer than the
# send interval does not hold up the next requests.
RESPONDER = r"""
import heapq, select, socket, struct, sys, time
mode_path, gw, fw = sys.argv[1:4]

%(echo)s
listen = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sender.bind((gw, 0))
due = []
print("ready", flush=True)
while True:
    wait = max(0.0, due[0][0] - time.monotonic()) if due else None
    readable = select.select([listen], [], [], wait)[0]
    now = time.monotonic()
    while due and due[0][0] <= now:
        sender.sendto(heapq.heappop(due)[2], (fw, 0))
    if not readable:
        continue
    request = echo_request(*listen.recvfrom(65535), fw)
    if request is None:
        continue
    ident, seq, payload = request
    delay, drop = (int(x) for x in read_mode(mode_path).split())
    if seq * drop // 100 != (seq + 1) * drop // 100:
        continue
    heapq.heappush(due, (now + delay / 1000, seq,
                         echo_reply(ident, seq, payload)))
""".replace("%(echo)s", ECHO_SRC)


@pytest.fixture
def responder(topo, tmp_path):
    """set(delay_ms, drop_pct) for the gateway's answers (0 0 at first)."""
    topo.wait_path("v4")
    netns.sh("sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1", ns=topo.gw)
    mode = os.path.join(str(tmp_path), "responder.mode")
    set_mode(mode, "0 0")
    proc = netns.Dpinger(sys.executable, ["-c", RESPONDER, mode, V4_GW,
                                          V4_FW], ns=topo.gw,
                         foreground=False)
    try:
        try:
            proc.wait_out("^ready$")
        except AssertionError:
            raise AssertionError("responder did not start: %s" % proc.err())
        yield lambda delay, drop: set_mode(mode, "%d %d" % (delay, drop))
    finally:
        proc.proc.kill()
        proc.proc.wait()
    assert not [line for line in proc.err() if "Error" in line], proc.err()


def alarm_lines(dp):
    """(time, text) of the Alarm/Clear log lines so far."""
    return [(t, line) for t, line in dp.err_timed()
            if ": Alarm latency " in line or ": Clear latency " in line]


def expected_line(ident, call):
    """The log line that goes with one alert call."""
    flag, avg, sd, loss = call[-4:]
    return "%s%s: %s latency %sus stddev %sus loss %s%%" % (
        ident, V4_GW, "Alarm" if flag == "1" else "Clear", avg, sd, loss)


def nth_call(directory, n, what):
    return wait_until(lambda: len(alert_calls(directory)) >= n and
                      alert_calls(directory), 15, what)


# ---------------------------------------------------------------------
# Alarm events
# ---------------------------------------------------------------------

def test_alarm_sequence_four_events(binary, topo, tmp_path, spawn,
                                    responder):
    """Latency high; then loss high too; then latency recovers while loss
    stays high; then loss recovers.  Upstream: four alert calls with flags
    1, 1, 1, 0 and four log lines (the combined state changes only twice).
    -A 100m -H 500m: each alarm clears on its 5th good check."""
    alert = make_alert_script(tmp_path)
    sock = os.path.join(str(tmp_path), "s.sock")
    dp = spawn(binary, ["-i", "GW", "-r", "0", "-u", sock, "-s", "100m",
                        "-t", "2s", "-A", "100m", "-D", "50", "-L", "20",
                        "-H", "500m", "-C", alert, "-B", V4_FW, V4_GW],
               ns=topo.fw, env=SAN_ENV)
    netns.wait_status_line(sock, what="the status socket")

    # 1. Replies 100 ms late: the latency alarm.
    responder(100, 0)
    calls = nth_call(tmp_path, 1, "the latency alarm")
    assert calls[0][:3] == ["GW", V4_GW, "1"], calls
    assert int(calls[0][3]) > 50000 and int(calls[0][5]) <= 20, calls

    # 2. Half of them dropped as well: the loss alarm, a second call
    # with flag 1 although the combined state was already "alarm".
    responder(100, 50)
    calls = nth_call(tmp_path, 2, "the loss alarm while latency is high")
    assert calls[1][:3] == ["GW", V4_GW, "1"], calls
    assert int(calls[1][3]) > 50000 and int(calls[1][5]) > 20, calls

    # 3. No delay, still half dropped: the latency alarm clears while the
    # loss alarm stays: a third call, flag still 1.
    responder(0, 50)
    calls = nth_call(tmp_path, 3, "the latency alarm to clear")
    assert calls[2][:3] == ["GW", V4_GW, "1"], calls
    assert int(calls[2][3]) <= 50000 and int(calls[2][5]) > 20, calls

    # 4. All answered: the loss alarm clears, flag 0.
    responder(0, 0)
    calls = nth_call(tmp_path, 4, "the loss alarm to clear")
    assert calls[3][:3] == ["GW", V4_GW, "0"], calls
    assert int(calls[3][3]) <= 50000 and int(calls[3][5]) <= 20, calls

    # Nothing more: a second of checks (10) without an event.
    quiet_from = time.monotonic()
    netns.wait_status(sock, lambda n: time.monotonic() - quiet_from > 1.0,
                      5, "a quiet second")
    assert len(alert_calls(tmp_path)) == 4, alert_calls(tmp_path)
    for call in calls:
        assert len(call) == 6, call
    lines = [line for _, line in alarm_lines(dp)]
    assert lines == [expected_line("GW ", call) for call in calls], lines
    assert dp.stop() == 0


def test_hold_ends_on_nth_check(plain_binary, topo, spawn, responder):
    """-A 2s -H 4s: N = 2.  The replies turn fast just after the check
    that raised the latency alarm; the 1 s window is all fast by the next
    check, so upstream clears on the 2nd check after the alarm, 4 s
    later.  Clearing on the (N+1)th would take 6 s."""
    responder(200, 0)
    dp = spawn(plain_binary, ["-r", "0", "-s", "100m", "-l", "400m",
                              "-t", "1s", "-A", "2s", "-D", "100",
                              "-H", "4s", "-B", V4_FW, V4_GW], ns=topo.fw)
    raised = dp.wait_err("^%s: Alarm latency " % V4_GW, timeout=10)
    responder(0, 0)
    cleared = dp.wait_err("^%s: Clear latency " % V4_GW, timeout=15)
    times = dict((text, t) for t, text in alarm_lines(dp))
    took = times[cleared] - times[raised]
    print("alarm to clear: %.2f s (2 checks of 2 s)" % took)
    assert 3.0 <= took < 5.0, \
        "cleared %.2f s after the alarm: not on the 2nd good check" % took
    assert len(alarm_lines(dp)) == 2
    assert dp.stop() == 0


# ---------------------------------------------------------------------
# No burst after a stall
# ---------------------------------------------------------------------

def stall(dp, seconds):
    """SIGSTOP the process for a while (the stall is the test's stimulus,
    not a wait for something); the monotonic time of the SIGCONT."""
    dp.signal(signal.SIGSTOP)
    time.sleep(seconds)
    resumed = time.monotonic()
    dp.signal(signal.SIGCONT)
    return resumed


def test_no_report_burst_after_stall(plain_binary, topo, spawn):
    """-r 200m, stopped for 3 s: upstream prints one line on waking and
    goes on every 200 ms; a thread on absolute deadlines that catches up
    prints the 15 missed lines back to back."""
    topo.wait_path("v4")
    dp = spawn(plain_binary, ["-s", "100m", "-r", "200m", "-t", "2s",
                              "-B", V4_FW, V4_GW], ns=topo.fw)
    wait_until(lambda: len(dp.out()) >= 3, 10, "three report lines")
    resumed = stall(dp, 3.0)
    wait_until(lambda: time.monotonic() - resumed > 1.0 and
               len(dp.out()) >= 1, 5, "a second after SIGCONT")
    after = [t - resumed for t, _ in dp.out_timed() if t >= resumed]
    within = [t for t in after if t <= 1.0]
    print("report lines in the first second after a 3 s stop: %d"
          % len(within))
    # One on waking, then one per 200 ms: 6, or 7 with a tick right at
    # the end.  Lines read late by a loaded test only lower the count.
    assert 1 <= len(within) <= 8, \
        "%d lines in the first second after SIGCONT: %s" % (
            len(within), ["%.3f" % t for t in after])
    assert after[0] < 0.5, "no report within 0.5 s after SIGCONT"
    assert dp.stop() == 0


def test_no_alert_burst_after_stall(plain_binary, topo, tmp_path, spawn,
                                    responder):
    """A loss alarm held for 2 s (20 checks of 100 ms) once the loss is
    back at the threshold.  Stopped for 3 s just after that: a thread
    that catches up runs the 30 missed checks at once and clears at
    SIGCONT; upstream counts the hold in time and clears about 2 s
    later."""
    sock = os.path.join(str(tmp_path), "s.sock")
    dp = spawn(plain_binary, ["-i", "GW", "-r", "0", "-u", sock,
                              "-s", "100m", "-l", "300m", "-t", "2s",
                              "-A", "100m", "-L", "50", "-H", "2s",
                              "-B", V4_FW, V4_GW], ns=topo.fw)
    netns.wait_status(sock, lambda n: n[0] > 0, 10, "a first reply")
    responder(0, 100)
    dp.wait_err("^GW %s: Alarm latency " % V4_GW, timeout=10)
    responder(0, 0)
    # Stopped as soon as the hold starts.  Should a probe be counted lost
    # around the stop and raise the alarm again, the hold only restarts:
    # a burst would still use it up at once.
    netns.wait_status(sock, lambda n: n[2] <= 50, 10, "loss <= 50 %")
    resumed = stall(dp, 3.0)
    line = dp.wait_err("^GW %s: Clear latency " % V4_GW, timeout=10)
    cleared = [t for t, text in alarm_lines(dp) if text == line][0]
    print("clear %.2f s after SIGCONT (hold 2 s)" % (cleared - resumed))
    # At most a few checks ran between the status read and the stop.
    assert cleared - resumed >= 1.0, \
        "cleared %.3f s after SIGCONT: the hold was used up in a burst" \
        % (cleared - resumed)
    assert [text for _, text in alarm_lines(dp)][-1] == line
    assert dp.stop() == 0


# ---------------------------------------------------------------------
# SIGPIPE
# ---------------------------------------------------------------------

def test_report_pipe_reader_gone_ends_process(binary, topo):
    """`dpinger -f -r 100m dest | head -1` returns: the next report line
    after the reader has gone ends dpinger with SIGPIPE, as upstream."""
    topo.wait_path("v4")
    env = dict(os.environ, **SAN_ENV)
    proc = subprocess.Popen(
        ["ip", "netns", "exec", topo.fw, binary, "-f", "-r", "100m",
         "-s", "100m", "-t", "2s", "-B", V4_FW, V4_GW],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        first = proc.stdout.readline()
        assert first.strip(), "no report line"
        proc.stdout.close()
        try:
            status = proc.wait(5)
        except subprocess.TimeoutExpired:
            raise AssertionError("dpinger kept running with its report"
                                 " pipe's reader gone")
        assert status == -signal.SIGPIPE, status
        err = proc.stderr.read().decode()
        assert not [x for x in err.splitlines()
                    if any(m in x for m in netns.SANITIZER_MARKS)], err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_daemon_report_pipe_reader_gone(binary, topo, tmp_path, reaped):
    """Daemonised with stdout on a pipe: when the reader goes, so does the
    daemon (upstream), instead of running on for ever."""
    topo.wait_path("v4")
    fifo = os.path.join(str(tmp_path), "reports.fifo")
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        pidpath = os.path.join(str(tmp_path), "d.pid")
        run = reaped(binary, ["-r", "100m", "-p", pidpath, "-s", "100m",
                              "-t", "2s", "-B", V4_FW, V4_GW],
                     ns=topo.fw, out_path=fifo)
        pid = run.daemon_pid(pidpath)

        def read_some():
            try:
                return os.read(reader, 4096)
            except BlockingIOError:
                return None
        assert wait_until(read_some, 10, "a report line").endswith(b"\n")
    finally:
        os.close(reader)
    status, _ = run.wait_exit(pid, 5)
    assert status == -signal.SIGPIPE, status


def test_status_clients_that_hang_up_kill_nothing(binary, topo, tmp_path,
                                                  spawn):
    """SIGPIPE is not blocked now, so every socket write must not raise
    it: 300 status clients that hang up before the answer; the daemon
    goes on answering."""
    topo.wait_path("v4")
    sock = os.path.join(str(tmp_path), "s.sock")
    dp = spawn(binary, ["-r", "0", "-u", sock, "-s", "100m", "-t", "2s",
                        "-B", V4_FW, V4_GW], ns=topo.fw, env=SAN_ENV)
    netns.wait_status_line(sock, what="the status socket")
    with open("/proc/%d/status" % dp.pid) as f:
        masks = dict(line.split(":\t", 1) for line in f if ":\t" in line)
    sigpipe = 1 << (signal.SIGPIPE - 1)
    assert not int(masks["SigBlk"], 16) & sigpipe, "SIGPIPE blocked"
    assert not int(masks["SigIgn"], 16) & sigpipe, "SIGPIPE ignored"
    for _ in range(300):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(sock)
    assert dp.proc.poll() is None, "died: %s" % dp.proc.returncode
    assert netns.query_status(sock)
    assert dp.stop() == 0


# ---------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------

def test_relative_alert_command_and_empty_identifier(binary, topo, tmp_path,
                                                     reaped, responder):
    """Daemonised from a directory with `-C ./rc.gateway_alarm`, relative
    -p, -u and -o, and `-i ""`: the daemon stays in that directory (as
    upstream: no chdir), the command runs, and it gets exactly five
    arguments.  The lines carry upstream's identifier, a lone space."""
    make_alert_script(tmp_path)
    run = reaped(binary, ["-i", "", "-r", "200m", "-o", "rel.out",
                          "-p", "rel.pid", "-u", "rel.sock",
                          "-C", "./rc.gateway_alarm", "-s", "100m",
                          "-l", "300m", "-t", "2s", "-A", "100m",
                          "-L", "20", "-B", V4_FW, V4_GW],
                 ns=topo.fw, cwd=tmp_path)
    pid = run.daemon_pid(os.path.join(str(tmp_path), "rel.pid"))
    assert os.readlink("/proc/%d/cwd" % pid) == str(tmp_path)
    sock = os.path.join(str(tmp_path), "rel.sock")
    netns.wait_status(sock, lambda n: n[0] > 0, 10, "a first reply")
    assert netns.query_status(sock).startswith(" ")

    responder(0, 100)
    calls = nth_call(tmp_path, 1, "the relative alert command")
    assert len(calls[0]) == 5, calls
    assert calls[0][:2] == [V4_GW, "1"], calls
    with open(os.path.join(str(tmp_path), "rel.out")) as f:
        assert f.readline().startswith(" ")
    os.kill(pid, signal.SIGTERM)
    assert run.wait_exit(pid, 5)[0] == 0
    assert not os.path.exists(sock)
    assert not os.path.exists(os.path.join(str(tmp_path), "rel.pid"))
    assert expected_line(" ", calls[0]) in run.err().splitlines(), \
        run.err()


def run_in_ns(binary, topo, args, wrap=()):
    env = dict(os.environ, **SAN_ENV)
    return subprocess.run(list(wrap) + ["ip", "netns", "exec", topo.fw,
                                        binary] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=30, env=env)


def test_fatal_errors_after_S_go_to_syslog_only(binary, topo, syslog):
    """Upstream: once -S is parsed, a fatal error goes to syslog (LOG_ERR)
    and nowhere else; before it, to stderr.  getopt's own message for an
    unknown option, and usage, go to stderr even with -S."""
    proc = run_in_ns(binary, topo, ["-S", "-t", "-5", V4_GW],
                     wrap=syslog.wrap)
    assert proc.returncode == 1
    assert proc.stdout == "" and proc.stderr == "", proc.stderr
    prio, _, _ = syslog.wait("invalid averaging time period -5")
    assert prio == LOG_DAEMON | LOG_ERR

    proc = run_in_ns(binary, topo, ["-S", "-r", "0", V4_GW],
                     wrap=syslog.wrap)
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr
    assert syslog.wait("no activity enabled")[0] == LOG_DAEMON | LOG_ERR

    proc = run_in_ns(binary, topo, ["-t", "-6", "-S", V4_GW],
                     wrap=syslog.wrap)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["invalid averaging time period -6"]

    proc = run_in_ns(binary, topo, ["-S", "-Z", V4_GW], wrap=syslog.wrap)
    assert proc.returncode == 1
    err = proc.stderr.splitlines()
    assert err[0] == "%s: invalid option -- 'Z'" % binary, err
    assert err[1].startswith("usage: dpinger "), err
    # Only the two messages that had to go there.
    assert sorted(m[2] for m in syslog.got()) == [
        "invalid averaging time period -5", "no activity enabled"]


@pytest.mark.parametrize("args,expected", [
    (["-C", "x" * 65537, V4_GW], ["alert command too long (max 65536 bytes)"]),
    (["-s"], "option requires an argument -- 's'"),
    (["-Z", V4_GW], "invalid option -- 'Z'"),
], ids=["long -C", "-s without value", "unknown option"])
def test_bad_arguments(binary, topo, args, expected):
    check_refused(run_in_ns(binary, topo, args), binary, expected)
