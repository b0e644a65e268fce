"""Self-healing: every trigger, the back-off, what must not trigger, the
echo identifier and the statistics window across a rebind, and -X.

Triggers, as logged (`<dest>: rebind (<trigger>) on <ifname>: echo id N`):
address returned, interface returned, link up (the interface watcher),
send errors (-F), no replies (-W), SIGHUP, address available (the send
thread's own retry while it waits for a missing address).  Stale sockets
come from the fault shim (tests/shim/faultshim.c).
"""

import os
import signal
import sys
import time

import pytest

import netns
from netns import sh

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "shim"))
import faults  # noqa: E402

FAST = ["-s", "100m", "-t", "2000", "-r", "0"]
FW_ADDR = {"v4": (netns.V4_FW + "/24",), "v6": (netns.V6_FW + "/64", "nodad"),
           "ll": (netns.LL_FW + "/64", "nodad")}


def start(spawn, binary, topo, tmp_path, family, extra=(), env=None,
          healthy=True):
    sock = str(tmp_path / "status")
    dp = spawn(binary, FAST + ["-u", sock] + list(extra)
               + topo.args_for(family), ns=topo.fw, env=env)
    if healthy:
        faults.wait_status(sock, faults.healthy, 15,
                           "replies before the test")
    return dp, sock


def del_fw_addr(topo, family):
    sh("ip", "addr", "del", FW_ADDR[family][0], "dev", topo.fw_if,
       ns=topo.fw)


def add_fw_addr(topo, family):
    sh("ip", "addr", "add", *FW_ADDR[family], "dev", topo.fw_if,
       ns=topo.fw)


# -- the interface watcher ----------------------------------------------

@pytest.mark.parametrize("family", ["v4", "v6", "ll"])
def test_address_returned(topo, spawn, binary, tmp_path, family):
    """The bind address is deleted (dpinger drops its socket and says it
    is waiting) and added again: rebind (address returned), a new echo
    id, loss back to 0."""
    topo.wait_path(family)
    dp, sock = start(spawn, binary, topo, tmp_path, family)
    start_line = len(dp.err())
    del_fw_addr(topo, family)
    dp.wait_err(r": waiting for bind address %s: Cannot assign requested"
                r" address$" % topo.args_for(family)[1], start=start_line)
    mono = time.monotonic()
    add_fw_addr(topo, family)
    # The waiting send thread retries every interval; a retry that binds
    # before the watcher has read the kernel's message logs "address
    # available" first, and the watcher's rebind follows it.
    _, trigger, ifname, echo_id = faults.wait_rebind(
        dp, "address returned", after=mono)
    assert ifname == topo.fw_if
    assert echo_id != dp.pid & 0xffff
    faults.wait_status(sock, faults.healthy, 10, "loss back to 0")


def test_interface_returned(topo, spawn, binary, tmp_path):
    """No -B, destination fe80::1%if: the watcher follows the scope's
    interface; destroyed and created again, it is rebound (interface
    returned) to the new index."""
    topo.wait_path("ll")
    sock = str(tmp_path / "status")
    # Send-error and silence triggers off: a slow create_link() (ten ip
    # commands) must not let three failed sends rebind first.
    dp = spawn(binary, FAST + ["-F", "0", "-W", "0", "-u", sock,
                               "%s%%%s" % (netns.LL_GW, topo.fw_if)],
               ns=topo.fw)
    faults.wait_status(sock, faults.healthy, 15, "replies before the test")
    old_index = topo.fw_ifindex()
    topo.destroy_link()
    mono = time.monotonic()
    topo.create_link()
    assert topo.fw_ifindex() != old_index
    _, trigger, ifname, _ = faults.wait_rebind(dp, after=mono)
    assert trigger == "interface returned"
    assert ifname == topo.fw_if
    faults.wait_status(sock, faults.healthy, 10, "loss back to 0")


def test_tentative_address(topo, spawn, plain_binary, tmp_path):
    """An IPv6 bind address added with duplicate address detection is
    tentative for about a second and cannot be bound: dpinger binds once
    DAD completes (the kernel's second announcement), not before, and
    logs no bind failure."""
    topo.wait_path("v6")
    dp, sock = start(spawn, plain_binary, topo, tmp_path, "v6")
    start_line = len(dp.err())
    del_fw_addr(topo, "v6")
    dp.wait_err(": waiting for bind address ", start=start_line)
    mono = time.monotonic()
    sh("ip", "addr", "add", FW_ADDR["v6"][0], "dev", topo.fw_if, ns=topo.fw)
    assert "tentative" in sh("ip", "-6", "addr", "show", "dev", topo.fw_if,
                             ns=topo.fw)
    when, trigger, _, _ = faults.wait_rebind(dp, after=mono)

    def settled():
        return "tentative" not in sh("ip", "-6", "addr", "show", "dev",
                                     topo.fw_if, ns=topo.fw)
    netns.wait_until(settled, 5, "DAD to complete")
    # The watcher's event, or the send thread's retry if it came first.
    assert trigger in ("address returned", "address available")
    # DAD: one probe, one second (the kernel's defaults).
    assert when - mono >= 0.5, when - mono
    assert not [line for line in dp.err() if "cannot" in line]
    faults.wait_status(sock, faults.healthy, 10, "loss back to 0")


def test_address_moved(topo, spawn, plain_binary, tmp_path):
    """-B 192.0.2.2 without a scope follows the address to another
    interface and back."""
    topo.wait_path("v4")
    dp, sock = start(spawn, plain_binary, topo, tmp_path, "v4")
    other, peer = topo.prefix + "o", topo.prefix + "p"
    sh("ip", "link", "add", other, "type", "veth", "peer", "name", peer,
       ns=topo.fw)
    sh("ip", "link", "set", other, "up", ns=topo.fw)
    sh("ip", "link", "set", peer, "up", ns=topo.fw)
    mono = time.monotonic()
    del_fw_addr(topo, "v4")
    sh("ip", "addr", "add", netns.V4_FW + "/32", "dev", other, ns=topo.fw)
    # As in test_address_returned, a waiting retry may bind first.
    _, _, ifname, _ = faults.wait_rebind(dp, "address returned", after=mono)
    assert ifname == other
    mono = time.monotonic()
    sh("ip", "addr", "del", netns.V4_FW + "/32", "dev", other, ns=topo.fw)
    add_fw_addr(topo, "v4")
    _, _, ifname, _ = faults.wait_rebind(dp, "address returned", after=mono)
    assert ifname == topo.fw_if
    faults.wait_status(sock, faults.healthy, 10, "loss back to 0")


def test_overflow_resync(topo, spawn, plain_binary, tmp_path):
    """The routing socket overflows (dpinger stopped while thousands of
    address changes and the interface's re-creation happen): on ENOBUFS
    it re-reads the interfaces, finds the new one, and rebinds
    (resync)."""
    topo.wait_path("ll")
    # Send errors and silence off: only the watcher may rebind here.
    dp, sock = start(spawn, plain_binary, topo, tmp_path, "ll",
                     extra=["-F", "0", "-W", "0"])
    flood = str(tmp_path / "flood")
    # Link messages: the kernel's socket filter drops other addresses'
    # messages, but every link change reaches the watcher.  Far more than
    # its receive buffer holds.
    with open(flood, "w") as f:
        for i in range(5000):
            f.write("link set dev lo mtu %d\n" % (60000 + i % 2))
    dp.signal(signal.SIGSTOP)
    try:
        sh("ip", "-batch", flood, ns=topo.fw)
        topo.recreate_link()
        mono = time.monotonic()
    finally:
        dp.signal(signal.SIGCONT)
    _, trigger, ifname, _ = faults.wait_rebind(dp, after=mono)
    assert (trigger, ifname) == ("resync", topo.fw_if)
    faults.wait_status(sock, faults.healthy, 10, "loss back to 0")


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_link_up(topo, spawn, plain_binary, tmp_path, family):
    """The fw link goes down and up with the address kept (IPv6 keeps its
    addresses only with keep_addr_on_down): rebind (link up) once the
    link is back, and loss returns to 0."""
    sh("sysctl", "-qw", "net.ipv6.conf.%s.keep_addr_on_down=1"
       % topo.fw_if, ns=topo.fw)
    topo.wait_path(family)
    dp, sock = start(spawn, plain_binary, topo, tmp_path, family)
    sh("ip", "link", "set", topo.fw_if, "down", ns=topo.fw)
    # Down long enough for the sends to fail.
    dp.wait_err(": sendto error: ", timeout=5)
    mono = time.monotonic()
    sh("ip", "link", "set", topo.fw_if, "up", ns=topo.fw)
    faults.wait_rebind(dp, "link up", after=mono, timeout=10)
    faults.wait_status(sock, faults.healthy, 10, "loss back to 0")


# -- send errors ------------------------------------------------------------

@pytest.mark.parametrize("family", ["v4", "v6"])
def test_send_errors(topo, spawn, binary, tmp_path, family):
    """Stale sockets (sends fail with EHOSTUNREACH): upstream's first line
    `sendto error: 113`, then, after three failed sends (-F 3, the
    default), rebind (send errors) and loss back to 0."""
    topo.wait_path(family)
    fault = faults.Fault(tmp_path)
    dp, sock = start(spawn, binary, topo, tmp_path, family,
                     env=fault.env())
    dest = topo.args_for(family)[-1]
    armed = time.monotonic()
    fault.arm()
    when, _, _, _ = faults.wait_rebind(dp, "send errors", after=armed)
    # Three sends 100 ms apart: the third one, 200 to 300 ms in.
    assert 0.15 <= when - armed <= 1.0, when - armed
    assert "%s: sendto error: 113" % dest in dp.err()
    faults.wait_status(sock, faults.healthy, 10, "loss back to 0")


@pytest.mark.parametrize("err, heals", [
    (100, True),    # ENETDOWN
    (101, True),    # ENETUNREACH
    (99, True),     # EADDRNOTAVAIL
    (1, True),      # EPERM, from a packet filter
    (105, False),   # ENOBUFS: transient
    (11, False),    # EAGAIN: transient
])
def test_send_errors_which(topo, spawn, plain_binary, tmp_path, err,
                           heals):
    """Any persistent error counts; the transient ones never do."""
    topo.wait_path("v4")
    fault = faults.Fault(tmp_path, err=err)
    dp, sock = start(spawn, plain_binary, topo, tmp_path, "v4",
                     env=fault.env(), extra=["-W", "0"])
    armed = time.monotonic()
    fault.arm()
    dp.wait_err(": sendto error: %d$" % err, timeout=5)
    if heals:
        faults.wait_rebind(dp, "send errors", after=armed, timeout=5)
        faults.wait_status(sock, faults.healthy, 10, "loss back to 0")
    else:
        # Ten failed sends, and still no rebind.
        netns.wait_until(lambda: time.monotonic() - armed > 1.2, 5,
                         "ten send intervals")
        assert faults.rebinds(dp) == []


def test_send_errors_count_and_off(topo, spawn, plain_binary, tmp_path):
    """-F 10 waits for ten failed sends; -F 0 (with -W 0) never rebinds,
    and the failure stays visible as loss."""
    topo.wait_path("v4")
    d10, d0 = tmp_path / "f10", tmp_path / "f0"
    d10.mkdir()
    d0.mkdir()
    f10, f0 = faults.Fault(d10), faults.Fault(d0)
    dp10, _ = start(spawn, plain_binary, topo, d10, "v4", env=f10.env(),
                    extra=["-F", "10", "-W", "0"])
    dp0, sock0 = start(spawn, plain_binary, topo, d0, "v4", env=f0.env(),
                       extra=["-F", "0", "-W", "0"])
    armed = time.monotonic()
    f10.arm()
    f0.arm()
    when, _, _, _ = faults.wait_rebind(dp10, "send errors", after=armed)
    assert 0.85 <= when - armed <= 2.0, when - armed
    netns.wait_until(lambda: time.monotonic() - armed > 2.5, 5,
                     "25 send intervals")
    assert faults.rebinds(dp0) == []
    assert faults.status(sock0)[2] > 0
    assert dp0.proc.poll() is None


# -- silence ----------------------------------------------------------------

@pytest.mark.parametrize("family", ["v4", "ll"])
def test_no_replies(topo, spawn, binary, tmp_path, family):
    """Sends succeed but nothing comes back (the shim swallows what the
    stale sockets send): after -W 2s of silence, rebind (no replies), and
    no sendto error is logged."""
    topo.wait_path(family)
    fault = faults.Fault(tmp_path, mode="drop")
    dp, sock = start(spawn, binary, topo, tmp_path, family,
                     env=fault.env(), extra=["-W", "2s"])
    armed = time.monotonic()
    fault.arm()
    when, _, _, _ = faults.wait_rebind(dp, "no replies", after=armed)
    # Silence counts from the last reply, up to a send interval before
    # the fault.
    assert 1.8 <= when - armed <= 3.5, when - armed
    assert not [line for line in dp.err() if "sendto error" in line]
    faults.wait_status(sock, faults.healthy, 10, "loss back to 0")


# -- SIGHUP, echo identifier, statistics window -----------------------------

def test_sighup_new_id_window_kept(topo, spawn, binary, tmp_path):
    """SIGHUP rebinds at once (upstream would die).  Every rebind moves to
    a new echo identifier, never the pid-derived one nor a previous one,
    and the statistics window carries over: right after the rebinds the
    status still has its latency and no loss."""
    topo.wait_path("v4")
    sock = str(tmp_path / "status")
    dp = spawn(binary, ["-s", "100m", "-t", "10000", "-r", "0", "-u", sock]
               + topo.args_for("v4"), ns=topo.fw)
    started = time.monotonic()
    faults.wait_status(sock, lambda n: faults.healthy(n) and
                       time.monotonic() - started > 2, 15,
                       "two seconds of answered probes")
    before = faults.status(sock)
    ids = [dp.pid & 0xffff]
    for _ in range(3):
        mono = time.monotonic()
        dp.signal(signal.SIGHUP)
        _, trigger, ifname, echo_id = faults.wait_rebind(dp, "SIGHUP",
                                                         after=mono)
        assert ifname == topo.fw_if
        assert echo_id not in ids
        ids.append(echo_id)
        after = faults.status(sock)
        # No reset: the window still holds its answered probes.  A probe
        # in flight at the rebind may be lost (its reply carries the old
        # identifier): at most one of the 20+ in the window.
        assert after[0] > 0 and after[2] <= 5, (before, after)
    assert dp.proc.poll() is None
    faults.wait_status(sock, lambda n: n[0] > 0, 5, "replies after SIGHUP")


# -- a bind address missing at start-up ---------------------------------------

@pytest.mark.parametrize("family", ["v4", "v6"])
def test_missing_address_at_start(topo, spawn, binary, tmp_path, family):
    """Not fatal: dpinger starts, logs that it waits, reports 100 % loss,
    and binds as soon as the address is added."""
    topo.wait_path(family)
    del_fw_addr(topo, family)
    dp, sock = start(spawn, binary, topo, tmp_path, family, healthy=False)
    dp.wait_err(r": waiting for bind address %s: Cannot assign requested"
                r" address$" % topo.args_for(family)[1])
    faults.wait_status(sock, lambda n: n == (0, 0, 100), 10,
                       "loss 100 while waiting")
    assert dp.proc.poll() is None
    mono = time.monotonic()
    add_fw_addr(topo, family)
    _, trigger, _, _ = faults.wait_rebind(dp, after=mono)
    assert trigger in ("address returned", "address available")
    faults.wait_status(sock, faults.healthy, 10, "loss back to 0")


def test_missing_interface_at_start(topo, spawn, plain_binary, tmp_path):
    """-B fe80::2%if before the interface exists (pfSense starting a VTI
    monitor a moment early): waits, then binds once the interface and
    its address appear."""
    topo.destroy_link()
    dp, sock = start(spawn, plain_binary, topo, tmp_path, "ll",
                     healthy=False)
    dp.wait_err(r": waiting for bind address %s: "
                % topo.args_for("ll")[1])
    faults.wait_status(sock, lambda n: n == (0, 0, 100), 10,
                       "loss 100 while waiting")
    mono = time.monotonic()
    topo.create_link()
    faults.wait_rebind(dp, after=mono)
    faults.wait_status(sock, faults.healthy, 10, "loss back to 0")


# -- -X: upstream's behaviour ----------------------------------------------

def test_no_heal_missing_address_is_fatal(topo, plain_binary, tmp_path):
    """-X: a missing bind address is fatal, with upstream's message."""
    del_fw_addr(topo, "v4")
    proc = netns.Dpinger(plain_binary, ["-X"] + FAST + [
        "-u", str(tmp_path / "status")] + topo.args_for("v4"), ns=topo.fw)
    assert proc.proc.wait(10) == 1
    for reader in proc.readers:
        reader.join(5)
    assert proc.err() == ["cannot bind send socket: Cannot assign requested"
                          " address"]


def test_no_heal_zombie(topo, spawn, plain_binary, tmp_path):
    """-X keeps upstream's zombie: after the link-local interface is
    recreated, the path works (ping) but dpinger stays at 100 % loss and
    never rebinds by itself.  SIGHUP cures it."""
    topo.wait_path("ll")
    dp, sock = start(spawn, plain_binary, topo, tmp_path, "ll",
                     extra=["-X"])
    topo.recreate_link()
    topo.wait_path("ll")
    faults.wait_status(sock, lambda n: n == (0, 0, 100), 10,
                       "loss 100 (zombie)")
    mono = time.monotonic()
    netns.wait_until(lambda: time.monotonic() - mono > 2, 5,
                     "two more seconds")
    assert faults.status(sock) == (0, 0, 100)
    assert faults.rebinds(dp) == []
    assert not [line for line in dp.err() if "waiting for" in line]
    # SIGHUP still rebinds under -X: the explicit cure.
    mono = time.monotonic()
    dp.signal(signal.SIGHUP)
    faults.wait_rebind(dp, "SIGHUP", after=mono)
    faults.wait_status(sock, faults.healthy, 10, "loss back to 0")


# -- back-off ----------------------------------------------------------------

def test_backoff(topo, spawn, plain_binary, tmp_path):
    """A fault that new sockets share (a real outage): rebinds back off
    2 s, 4 s, 8 s; the errors are summarised (one `sendto error` line, not
    one per probe).  A reply resets the back-off."""
    topo.wait_path("v4")
    fault = faults.Fault(tmp_path, mode="all")
    dp, sock = start(spawn, plain_binary, topo, tmp_path, "v4",
                     env=fault.env())
    armed = time.monotonic()
    fault.arm()
    netns.wait_until(lambda: len(faults.rebinds(dp)) >= 4, 20,
                     "four rebinds")
    watched = time.monotonic() - armed
    times = [r[0] for r in faults.rebinds(dp)]
    assert {r[1] for r in faults.rebinds(dp)} <= {"send errors",
                                                  "no replies"}
    gaps = [b - a for a, b in zip(times, times[1:])]
    print("back-off: first rebind %.2f s after the fault, then gaps %s"
          % (times[0] - armed, ", ".join("%.2f s" % g for g in gaps)))
    assert times[0] - armed < 1.0
    for i, gap in enumerate(gaps[:3]):
        expected = 2.0 * 2 ** i
        # Log lines are timestamped as the test reads them: some slack.
        assert expected - 0.5 <= gap <= expected + 1.0, gaps
    errors = [line for line in dp.err() if "sendto error" in line]
    print("back-off: %d sendto error line(s) in %.1f s at 10 sends/s"
          % (len(errors), watched))
    assert errors == ["%s: sendto error: 113" % netns.V4_GW], errors
    # The fault ends: replies, and the summary of the repeats.
    fault.disarm()
    faults.wait_status(sock, lambda n: n[0] > 0, 15, "replies again")
    netns.wait_until(lambda: any("repeated" in line for line in dp.err()),
                     5, "the repeat count once sends work")
    # The replies reset the back-off: the next fault is healed after three
    # failed sends again, not after 16 s.
    count = len(faults.rebinds(dp))
    rearmed = time.monotonic()
    fault.arm()
    netns.wait_until(lambda: len(faults.rebinds(dp)) > count, 10,
                     "a rebind for the new fault")
    assert faults.rebinds(dp)[-1][0] - rearmed < 1.0


# -- events that do not concern us -----------------------------------------

def test_unrelated_events_ignored(topo, spawn, plain_binary, tmp_path):
    """Addresses added and removed on another interface and on our own,
    another link flapping, and route churn: no rebind, no loss."""
    for family in ("v4", "v6", "ll"):
        topo.wait_path(family)
    mons = []
    for family in ("v4", "v6", "ll"):
        d = tmp_path / family
        d.mkdir()
        mons.append(start(spawn, plain_binary, topo, d, family))
    other, peer = topo.prefix + "o", topo.prefix + "p"
    sh("ip", "link", "add", other, "type", "veth", "peer", "name", peer,
       ns=topo.fw)
    sh("ip", "link", "set", other, "up", ns=topo.fw)
    sh("ip", "link", "set", peer, "up", ns=topo.fw)
    batch = tmp_path / "churn"
    with open(str(batch), "w") as f:
        for rnd in range(3):
            for i in range(1, 200):
                f.write("route add 198.51.100.%d/32 dev %s\n" % (i, other))
            f.write("address add 198.51.100.250/32 dev %s\n" % other)
            f.write("address add 2001:db8:77::%d/64 dev %s nodad\n"
                    % (rnd + 1, other))
            f.write("address add 198.51.100.251/32 dev %s\n" % topo.fw_if)
            f.write("address add 2001:db8:78::1/64 dev %s nodad\n"
                    % topo.fw_if)
            f.write("address add 192.0.2.77/32 dev lo\n")
            for i in range(1, 200):
                f.write("route del 198.51.100.%d/32 dev %s\n" % (i, other))
            f.write("link set %s down\n" % other)
            f.write("link set %s up\n" % other)
            f.write("address del 198.51.100.250/32 dev %s\n" % other)
            f.write("address del 198.51.100.251/32 dev %s\n" % topo.fw_if)
            f.write("address del 2001:db8:78::1/64 dev %s\n" % topo.fw_if)
            f.write("address del 192.0.2.77/32 dev lo\n")
    mono = time.monotonic()
    sh("ip", "-batch", str(batch), ns=topo.fw)
    sh("ip", "link", "del", other, ns=topo.fw)
    # A second of probes after the churn, all answered.
    netns.wait_until(lambda: time.monotonic() - mono > 1.5, 5,
                     "probes after the churn")
    for dp, sock in mons:
        assert faults.rebinds(dp) == [], dp.err()
        assert faults.healthy(faults.status(sock))
        assert not [line for line in dp.err() if "error" in line]
