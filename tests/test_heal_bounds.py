"""Self-healing: the bounds of issue 3, measured in network namespaces.

1. IPv6 link-local bind, interface destroyed and recreated: the first echo
   request leaves within one send interval + 200 ms of the address's
   return (measured on the wire with tcpdump).
2. Stale sockets (fault shim) at pfSense's settings, full window: healed
   before the loss alarm can fire; the alert command is never called.
3. The seed's chain: a real outage raises the alarm, the alert command
   destroys and recreates the interface, the alarm clears by itself.
4. 100 destroy/create cycles leave no extra fds, threads or memory, and
   monitoring works at the end.

Figures are printed (pytest -s, or -rA shows them with the captured
output); timing assertions use the plain binary only.
"""

import datetime
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

import netns
from netns import sh

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "shim"))
import faults  # noqa: E402

WATCH_TRIGGERS = ("address returned", "interface returned", "link up",
                  "resync")
# The send thread's own retry while it waits for the address.
RETRY_TRIGGER = "address available"


# -- recreating the link in two orders ----------------------------------

def new_pair(topo):
    """The veth pair again, gateway side complete and up; fw side bare
    and down.  What `ifconfig ipsecN create` leaves behind."""
    sh("ip", "link", "add", topo.fw_if, "netns", topo.fw, "type", "veth",
       "peer", "name", topo.gw_if, "netns", topo.gw)
    for ns, ifname in ((topo.fw, topo.fw_if), (topo.gw, topo.gw_if)):
        sh("sysctl", "-qw", "net.ipv6.conf.%s.addr_gen_mode=1" % ifname,
           ns=ns)
    topo.add_addrs(topo.gw, topo.gw_if, netns.V4_GW, netns.V6_GW,
                   netns.LL_GW)
    sh("ip", "link", "set", topo.gw_if, "up", ns=topo.gw)


def recreate_address_last(topo):
    """fw link up first, the link-local address last.  Returns the wall
    time just before the command that brings the address back."""
    new_pair(topo)
    sh("ip", "addr", "add", netns.V4_FW + "/24", "dev", topo.fw_if,
       ns=topo.fw)
    sh("ip", "-6", "addr", "add", netns.V6_FW + "/64", "dev", topo.fw_if,
       "nodad", ns=topo.fw)
    sh("ip", "link", "set", topo.fw_if, "up", ns=topo.fw)
    before = time.time()
    sh("ip", "-6", "addr", "add", netns.LL_FW + "/64", "dev", topo.fw_if,
       "nodad", ns=topo.fw)
    return before


def recreate_link_last(topo):
    """Addresses on the down interface first, then the link up (the
    address becomes usable only then).  Wall time before the link-up."""
    new_pair(topo)
    topo.add_fw_addrs()
    before = time.time()
    sh("ip", "link", "set", topo.fw_if, "up", ns=topo.fw)
    return before


class Capture:
    """tcpdump -i any in a namespace (survives the veth's recreation):
    (wall time, echo id) of every ICMPv6/ICMP echo request seen."""

    LINE = re.compile(r"^(\d+\.\d+) .*echo request, id (\d+)")

    def __init__(self, ns):
        if shutil.which("tcpdump") is None:
            pytest.skip("SKIPPED: tcpdump not installed (sh tests/deps)")
        self.requests = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, "tcpdump", "-i", "any", "-l", "-n",
             "-tt", "icmp or icmp6"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._out, daemon=True).start()
        threading.Thread(target=self._err, daemon=True).start()
        if not self.ready.wait(10):
            self.stop()
            pytest.fail("tcpdump did not start listening")

    def _out(self):
        for line in self.proc.stdout:
            m = self.LINE.match(line)
            if m:
                with self.lock:
                    self.requests.append((float(m.group(1)),
                                          int(m.group(2))))

    def _err(self):
        for line in self.proc.stderr:
            if "listening on" in line:
                self.ready.set()

    def first_request(self, echo_id, timeout):
        def found():
            with self.lock:
                for when, ident in self.requests:
                    if ident == echo_id:
                        return when
            return None
        return netns.wait_until(found, timeout,
                                "an echo request with id %d on the wire"
                                % echo_id)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class LinkMonitor:
    """`ip -ts monitor address link` in the fw namespace: when the kernel
    announced the link-local address and the link's carrier.  A veth
    brought up gets its carrier through the kernel's link watch, up to a
    second after `ip link set up` returns; nothing can leave before, so
    the address is back when both are there, not when a command ends."""

    HEAD = re.compile(r"^\[(\S+)\] (.*)$")

    def __init__(self, topo):
        self.topo = topo
        self.events = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", topo.fw, "ip", "-ts", "monitor",
             "address", "link"], stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        # Ready once it reports a change we make.
        probe = "198.51.100.254/32"
        sh("ip", "addr", "add", probe, "dev", "lo", ns=topo.fw)
        sh("ip", "addr", "del", probe, "dev", "lo", ns=topo.fw)
        netns.wait_until(lambda: self.since(0, "198.51.100.254"), 10,
                         "ip monitor to start")

    def _read(self):
        for line in self.proc.stdout:
            m = self.HEAD.match(line.rstrip("\n"))
            if m:
                when = datetime.datetime.fromisoformat(
                    m.group(1)).timestamp()
                with self.lock:
                    self.events.append((when, m.group(2)))

    def since(self, after, *words, without=()):
        """Wall time of the first event after `after` with every word in
        it and none of `without`."""
        with self.lock:
            for when, text in self.events:
                if when >= after and all(w in text for w in words) and \
                        not any(w in text for w in without):
                    return when
        return None

    def usable(self, after, timeout=5):
        """When fe80::2 and the carrier were both back (wall time)."""
        fw_if = self.topo.fw_if

        def both():
            addr = self.since(after, fw_if, netns.LL_FW + "/64",
                              without=("Deleted", "tentative"))
            link = self.since(after, fw_if + "@", "state UP",
                              without=("Deleted", "NO-CARRIER"))
            return addr and link and max(addr, link)
        return netns.wait_until(both, timeout,
                                "the kernel to announce address and link")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)


# -- bound 1 --------------------------------------------------------------

def test_bound1_linklocal_first_request_timing(topo, spawn, plain_binary,
                                               tmp_path):
    """-B fe80::2%if, interface destroyed and recreated, four times: twice
    at once, twice after dpinger has given up its socket and is waiting;
    in both orders (address last, link last).  The first echo request
    with the new identifier is on the wire (tcpdump on the gateway)
    within 500 ms + 200 ms of the moment the kernel announced the address
    and the carrier back (ip monitor)."""
    send_ms = 500
    sock = str(tmp_path / "status")
    topo.wait_path("ll")
    mon = LinkMonitor(topo)
    dp = spawn(plain_binary, ["-s", "%dm" % send_ms, "-r", "0", "-u", sock]
               + topo.args_for("ll"), ns=topo.fw)
    faults.wait_status(sock, faults.healthy, 10, "replies before the test")
    cap = Capture(topo.gw)
    figures = []
    try:
        for cycle, (wait_for_give_up, recreate) in enumerate((
                (False, recreate_address_last),
                (True, recreate_address_last),
                (False, recreate_link_last),
                (True, recreate_link_last))):
            start = len(dp.err())
            topo.destroy_link()
            if wait_for_give_up:
                # Three failed sends: the stale socket is dropped.
                dp.wait_err("waiting for bind address", timeout=10,
                            start=start)
            mono, wall = time.monotonic(), time.time()
            command = recreate(topo)
            _, trigger, ifname, echo_id = faults.wait_rebind(dp, after=mono)
            assert trigger in WATCH_TRIGGERS + (RETRY_TRIGGER,), \
                trigger
            assert ifname == topo.fw_if
            first = cap.first_request(echo_id, 5)
            usable = mon.usable(wall)
            figures.append((recreate.__name__, wait_for_give_up, trigger,
                            (first - usable) * 1000,
                            (first - command) * 1000))
            # Replies again before the next cycle.
            faults.wait_status(sock, lambda n: n[0] > 0, 10,
                               "replies after cycle %d" % cycle)
    finally:
        cap.stop()
        mon.stop()
    for name, waited, trigger, ms, from_cmd in figures:
        print("bound 1: %s, %s: rebind (%s), first echo request %.1f ms"
              " after the kernel announced address and carrier (%.1f ms"
              " after the command)" % (
                  name, "after give-up" if waited else "at once", trigger,
                  ms, from_cmd))
    worst = max(f[3] for f in figures)
    print("bound 1: worst %.1f ms (bound %d ms)" % (worst, send_ms + 200))
    assert worst <= send_ms + 200, figures


def test_bound1_linklocal_recovery(topo, spawn, binary, tmp_path):
    """The same cycle under every variant (ASan, TSan see the rebind
    path): the monitor recovers to loss 0 without a restart."""
    sock = str(tmp_path / "status")
    topo.wait_path("ll")
    dp = spawn(binary, ["-s", "100m", "-t", "2000", "-r", "0", "-u", sock]
               + topo.args_for("ll"), ns=topo.fw)
    faults.wait_status(sock, faults.healthy, 15, "replies before the test")
    first_id = None
    for recreate in (recreate_address_last, recreate_link_last):
        topo.destroy_link()
        mono = time.monotonic()
        recreate(topo)
        # Any trigger will do here (at 100 ms, three failed sends may
        # come before the carrier): recovery is what counts.
        _, _, _, echo_id = faults.wait_rebind(dp, after=mono, timeout=15)
        assert echo_id != first_id
        first_id = echo_id
        faults.wait_status(sock, faults.healthy, 15,
                           "loss back to 0 after recreating the link")
    assert dp.proc.poll() is None


# -- bound 2 --------------------------------------------------------------

# pfSense's settings, but a 10 s window instead of 60 s: the smaller the
# window, the more each lost probe weighs (5 % here, 0.8 % at 60 s), so
# this is the stricter case, and the window is full after 10 s, not 60.
PFSENSE = ["-s", "500", "-l", "2000", "-t", "10000", "-A", "1000",
           "-L", "20"]


def test_bound2_stale_sockets_heal_before_alarm(topo, spawn, plain_binary,
                                                tmp_path):
    """IPv4, IPv6 and IPv6 link-local monitors side by side; once their
    windows are full of answered probes, every socket they hold goes
    stale (sends fail with EHOSTUNREACH).  Each heals (rebind (send
    errors)), its loss never reaches the alarm, the alert command is never
    called, and the loss returns to 0."""
    for family in ("v4", "v6", "ll"):
        topo.wait_path(family)
    mons = {}
    for family in ("v4", "v6", "ll"):
        d = tmp_path / family
        d.mkdir()
        fault = faults.Fault(d)
        script, log = faults.alert_script(d)
        sock = str(d / "status")
        dp = spawn(plain_binary, PFSENSE + ["-r", "0", "-i", "GW_" + family,
                                            "-u", sock, "-C", script]
                   + topo.args_for(family), ns=topo.fw, env=fault.env())
        mons[family] = (dp, fault, sock, log, time.monotonic())
    # A full window: every slot sent, and answered.
    for family, (dp, fault, sock, log, started) in mons.items():
        faults.wait_status(
            sock, lambda n, s=started: faults.healthy(n) and
            time.monotonic() - s > 10.5, 20, "a full window for " + family)
    armed = time.monotonic()
    for dp, fault, _, _, _ in mons.values():
        fault.arm()
    heal_ms = {}
    for family, (dp, _, _, _, _) in mons.items():
        when, _, _, _ = faults.wait_rebind(dp, "send errors", after=armed,
                                           timeout=10)
        heal_ms[family] = (when - armed) * 1000
        assert any(line.endswith(": sendto error: 113")
                   for line in dp.err()), dp.err()
    # Until the lost probes have left the window: loss stays at or below
    # the threshold all along, and no alarm.
    worst = dict.fromkeys(mons, 0)
    recovered = set()
    deadline = armed + 25
    while len(recovered) < len(mons) and time.monotonic() < deadline:
        for family, (dp, _, sock, _, _) in mons.items():
            numbers = faults.status(sock)
            worst[family] = max(worst[family], numbers[2])
            if time.monotonic() - armed > 3 and faults.healthy(numbers):
                recovered.add(family)
        time.sleep(0.1)
    for family, (dp, _, sock, log, _) in mons.items():
        print("bound 2: %s healed %.0f ms after the fault, worst loss %d%%"
              % (family, heal_ms[family], worst[family]))
        assert family in recovered, "%s: loss never back to 0" % family
        assert worst[family] <= 20, worst
        assert faults.alert_calls(log) == [], faults.alert_calls(log)
        assert not [line for line in dp.err() if ": Alarm " in line]
        assert dp.proc.poll() is None


# -- bound 3 --------------------------------------------------------------

RECREATE_BODY = """
if [ "$3" = 1 ]; then
    # What pfSense's IPsec reload does to a VTI: destroy, create again,
    # same addresses; the gateway side comes back with it.
    ip link del {fw_if}
    ip link add {fw_if} type veth peer name {gw_if} netns {gw}
    sysctl -qw net.ipv6.conf.{fw_if}.addr_gen_mode=1
    ip netns exec {gw} sysctl -qw net.ipv6.conf.{gw_if}.addr_gen_mode=1
    ip addr add {v4_fw}/24 dev {fw_if}
    ip -6 addr add {v6_fw}/64 dev {fw_if} nodad
    ip -6 addr add {ll_fw}/64 dev {fw_if} nodad
    ip netns exec {gw} ip addr add {v4_gw}/24 dev {gw_if}
    ip netns exec {gw} ip -6 addr add {v6_gw}/64 dev {gw_if} nodad
    ip netns exec {gw} ip -6 addr add {ll_gw}/64 dev {gw_if} nodad
    ip link set {fw_if} up
    ip netns exec {gw} ip link set {gw_if} up
    echo recreated >> {log}.done
fi
"""


def recreate_body(tp, log):
    """The alert command's body for topology tp, logging to log."""
    return RECREATE_BODY.format(
        fw_if=tp.fw_if, gw_if=tp.gw_if, gw=tp.gw, log=log,
        v4_fw=netns.V4_FW, v6_fw=netns.V6_FW, ll_fw=netns.LL_FW,
        v4_gw=netns.V4_GW, v6_gw=netns.V6_GW, ll_gw=netns.LL_GW)


def test_bound3_alarm_recreate_clears(topo, spawn, plain_binary, tmp_path):
    """The gateway's address goes (a real outage): the alarm is raised
    and the alert command runs with 1.  That command destroys and
    recreates the interface (and with it the gateway's side).  No
    restart: the alarm clears by itself (the command runs with 0).
    IPv6 link-local (the seed) and IPv4, side by side, each in its own
    pair of namespaces (each alert command recreates its own link)."""
    second = netns.Topology(topo.prefix + "b").create()
    try:
        runs = {}
        for family, tp in (("ll", topo), ("v4", second)):
            tp.wait_path(family)
            d = tmp_path / family
            d.mkdir()
            sock = str(d / "status")
            log = str(d / "alerts")
            body = recreate_body(tp, log)
            script, log = faults.alert_script(d, body)
            dp = spawn(plain_binary, PFSENSE + [
                "-r", "0", "-i", "GW", "-u", sock, "-C", script]
                + tp.args_for(family), ns=tp.fw)
            runs[family] = (tp, dp, sock, log, time.monotonic())
        for family, (tp, dp, sock, log, started) in runs.items():
            faults.wait_status(
                sock, lambda n, s=started: faults.healthy(n) and
                time.monotonic() - s > 10.5, 20, "a full window")
        outage = time.monotonic()
        for family, (tp, dp, sock, log, _) in runs.items():
            gw_addr = {"ll": netns.LL_GW + "/64",
                       "v4": netns.V4_GW + "/24"}[family]
            sh("ip", "addr", "del", gw_addr, "dev", tp.gw_if, ns=tp.gw)
        figures = {}
        for family, (tp, dp, sock, log, _) in runs.items():
            netns.wait_until(lambda: os.path.exists(log + ".done"), 20,
                             "the alert command to recreate the interface")
            alarmed = time.monotonic()
            calls = faults.alert_calls(log)
            dest = tp.args_for(family)[-1]
            assert calls[0][:3] == ["GW", dest, "1"], calls
            faults.wait_rebind(dp, after=outage, timeout=10)
            figures[family] = [alarmed - outage]
        for family, (tp, dp, sock, log, _) in runs.items():
            netns.wait_until(lambda: any(c[2] == "0" for c in
                                         faults.alert_calls(log)), 40,
                             "the alarm to clear (alert command with 0)")
            figures[family].append(time.monotonic() - outage)
            calls = faults.alert_calls(log)
            assert [c[2] for c in calls] == ["1", "0"], calls
            assert int(calls[1][5]) <= 20
            assert dp.proc.poll() is None
            faults.wait_status(sock, faults.healthy, 15, "loss back to 0")
            print("bound 3 (%s): alarm %.1f s after the outage began, clear"
                  " %.1f s after it began (no restart)"
                  % (family, figures[family][0], figures[family][1]))
    finally:
        second.destroy()


def test_bound3_chain_fast(topo, spawn, binary, tmp_path):
    """The same chain on a fast clock, under every variant: the alert
    command (run by the alert thread) recreates the interface while the
    watcher, send and receive threads heal around it.  ASan and TSan
    must stay silent; the alarm clears by itself."""
    topo.wait_path("ll")
    sock = str(tmp_path / "status")
    log = str(tmp_path / "alerts")
    body = recreate_body(topo, log)
    script, log = faults.alert_script(tmp_path, body)
    dp = spawn(binary, ["-s", "100m", "-l", "400m", "-t", "2000", "-A",
                        "200m", "-H", "400m", "-L", "20", "-r", "0",
                        "-i", "GW", "-u", sock, "-C", script]
               + topo.args_for("ll"), ns=topo.fw)
    faults.wait_status(sock, faults.healthy, 15, "replies before the test")
    outage = time.monotonic()
    sh("ip", "addr", "del", netns.LL_GW + "/64", "dev", topo.gw_if,
       ns=topo.gw)
    netns.wait_until(lambda: os.path.exists(log + ".done"), 20,
                     "the alert command to recreate the interface")
    faults.wait_rebind(dp, after=outage, timeout=10)
    netns.wait_until(lambda: [c[2] for c in faults.alert_calls(log)]
                     == ["1", "0"], 20, "the alarm to clear")
    faults.wait_status(sock, faults.healthy, 15, "loss back to 0")
    assert dp.proc.poll() is None


# -- bound 4 --------------------------------------------------------------

def cycles(topo, dp, count):
    """Destroy and recreate the link count times; every cycle must be
    seen (a rebind logged after its recreation began)."""
    for i in range(count):
        topo.destroy_link()
        mono = time.monotonic()
        topo.create_link()
        faults.wait_rebind(dp, after=mono, timeout=15)


def resources(pid, samples=25, interval=0.02):
    """(fds, threads, RSS kB) at rest: the lowest counts over half a
    second.  A single reading can catch a descriptor that lives for a
    moment (getifaddrs()'s netlink socket, the sanitizer runtime reading
    /proc), which is not a leak; a leak is there in every sample."""
    fds, threads = [], []
    for _ in range(samples):
        fds.append(netns.proc_fds(pid))
        threads.append(netns.proc_threads(pid))
        time.sleep(interval)
    return min(fds), min(threads), netns.proc_rss_kb(pid)


def run_cycles(topo, spawn, binary, tmp_path, count, rss_slack_kb):
    sock = str(tmp_path / "status")
    topo.wait_path("ll")
    dp = spawn(binary, ["-s", "100m", "-t", "2000", "-r", "0", "-u", sock]
               + topo.args_for("ll"), ns=topo.fw)
    faults.wait_status(sock, faults.healthy, 15, "replies before the test")
    cycles(topo, dp, 5)     # warm-up: allocator and kernel caches
    faults.wait_status(sock, faults.healthy, 15, "replies after warm-up")
    before = resources(dp.pid)
    started = time.monotonic()
    cycles(topo, dp, count)
    took = time.monotonic() - started
    seen = [r[1] for r in faults.rebinds(dp) if r[0] >= started]
    assert len(seen) >= count
    faults.wait_status(sock, faults.healthy, 15,
                       "loss back to 0 after %d cycles" % count)
    after = resources(dp.pid)
    print("bound 4 (%s): %d cycles in %.1f s, %d rebinds (%s); fds %d ->"
          " %d, threads %d -> %d, RSS %d -> %d kB" % (
              os.path.basename(binary), count, took, len(seen),
              ", ".join("%s %d" % (t, seen.count(t))
                        for t in sorted(set(seen))),
              before[0], after[0], before[1], after[1], before[2],
              after[2]))
    assert after[0] == before[0], "file descriptors leaked"
    assert after[1] == before[1], "threads leaked"
    if rss_slack_kb is not None:
        assert after[2] - before[2] < rss_slack_kb, "memory grew"
    assert dp.proc.poll() is None


def test_bound4_hundred_cycles(topo, spawn, plain_binary, tmp_path):
    run_cycles(topo, spawn, plain_binary, tmp_path, 100, 1024)


@pytest.mark.parametrize("variant", ["asan", "tsan"])
def test_bound4_cycles_sanitizers(topo, spawn, tmp_path, variant):
    """Fewer cycles, but the sanitizers watch every one; their RSS is
    their own (shadow memory), so only fds and threads are compared."""
    if variant not in netns.variants():
        pytest.skip("SKIPPED: %s not selected by DPINGER_VARIANTS"
                    % variant)
    path = netns.VARIANT_PATHS[variant]
    if not os.access(path, os.X_OK):
        pytest.skip("SKIPPED: %s not built" % path)
    run_cycles(topo, spawn, path, tmp_path, 10, None)
