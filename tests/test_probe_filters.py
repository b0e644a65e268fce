"""What the kernel keeps away from dpinger's probe sockets (issue 13): the
receive socket is connected to the gateway and its socket filter passes
only echo replies with the current identifier, so a flood of replies with
another identifier never wakes a thread; the send socket never queues a
packet, under any ICMP traffic; after a rebind the filter follows the new
identifier.  Wake-ups are voluntary context switches of dpinger's threads
(/proc/PID/task/*/status); queues are the kernel's own counts
(/proc/PID/net/raw, raw6)."""

import os
import signal
import socket
import struct
import sys

import pytest

import netns
from netns import V4_FW, V4_GW, V6_FW, V6_GW, LL_FW, LL_GW, wait_until
from test_outputs import CHECKSUM_SRC, SAN_ENV

FLOOD = 1500            # wrong replies per flood
FLOOD_RATE = 1000       # per second: the flood lasts 1.5 s

# Runs in the gateway's namespace: waits for one echo request from fw,
# prints "ident N", waits for the file go_path to exist, then sends count
# echo replies from the gateway's own address that carry the request's
# identifier XOR xor, paced, and echo requests of its own to fw (which
# the kernel answers, and which every raw ICMP socket on fw sees), then
# prints "done N".
FLOODER = r"""
import os, socket, struct, sys, time
family, fw, count, rate, xor, go_path = sys.argv[1], sys.argv[2], \
    int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
%(checksum)s
if family == "4":
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    reply, request, dest = 0, 8, (fw, 0)
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW,
                      socket.IPPROTO_ICMPV6)
    reply, request = 129, 128
    dest = socket.getaddrinfo(fw, None, socket.AF_INET6)[0][4]
print("ready", flush=True)
while True:
    pkt, addr = s.recvfrom(65535)
    icmp = pkt[(pkt[0] & 15) * 4:] if family == "4" else pkt
    if addr[0].split("%%")[0] == fw.split("%%")[0] and len(icmp) >= 8 \
            and icmp[0] == request:
        ident = struct.unpack("!H", icmp[4:6])[0]
        break
print("ident %%d" %% ident, flush=True)
while not os.path.exists(go_path):
    time.sleep(0.01)

def echo(kind, ident, seq):
    head = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    csum = checksum(head) if family == "4" else 0
    return struct.pack("!BBHHH", kind, 0, csum, ident, seq)

start = time.monotonic()
for i in range(count):
    s.sendto(echo(reply, ident ^ xor, i & 0xffff), dest)
    if i %% 10 == 0:
        s.sendto(echo(request, 0x4242, i & 0xffff), dest)
    delay = start + (i + 1) / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
print("done %%d" %% count, flush=True)
""".replace("%(checksum)s", CHECKSUM_SRC).replace("%%", "%")

FAMILIES = {
    # family: (the flooder's family argument, fw's address)
    "v4": ("4", V4_FW),
    "v6": ("6", V6_FW),
    "ll": ("6", LL_FW),
}


def kernel_hex(family, addr):
    """An address as /proc/net/raw{,6} prints it: 32-bit words in host
    order."""
    packed = socket.inet_pton(socket.AF_INET if family == "v4"
                              else socket.AF_INET6, addr.split("%")[0])
    words = struct.unpack("=%dI" % (len(packed) // 4), packed)
    return "".join("%08X" % w for w in words)


def start_flooder(topo, family, count, rate, xor, go_path):
    """The flooder, once it has seen dpinger's identifier; (process,
    identifier)."""
    kind, fw = FAMILIES[family]
    if family == "ll":
        fw = "%s%%%s" % (fw, topo.gw_if)
    flooder = netns.Dpinger(sys.executable,
                            ["-c", FLOODER, kind, fw, str(count), str(rate),
                             str(xor), go_path],
                            ns=topo.gw, foreground=False)
    try:
        line = flooder.wait_out("^ident ")
    except AssertionError:
        flooder.proc.kill()
        flooder.proc.wait()
        raise AssertionError("flooder did not start: %s" % flooder.err())
    return flooder, int(line.split()[1])


def flood(dp, flooder, family, go_path):
    """Start the flood and wait for its end; (wake-ups of dpinger's
    threads, echo replies that reached the host, the send socket's
    rx_queue samples)."""
    wakes0 = sum(netns.proc_wakeups(dp.pid).values())
    replies0 = netns.echo_replies_in(dp.pid)
    queued = []

    def done():
        queued.append(probe_sockets(dp.pid, family)[1]["rx_queue"])
        return flooder.out()[-1].startswith("done")
    open(go_path, "w").close()
    wait_until(done, 15, "the flood", interval=0.02)
    wakes = sum(netns.proc_wakeups(dp.pid).values()) - wakes0
    queued.append(probe_sockets(dp.pid, family)[1]["rx_queue"])
    return wakes, netns.echo_replies_in(dp.pid) - replies0, queued


def probe_sockets(pid, family):
    """(receive socket, send socket) rows: the receive one is connected
    when a bind address is given."""
    rows = [r for r in netns.raw_sockets(pid)
            if r["family"] == ("v4" if family == "v4" else "v6")]
    assert len(rows) == 2, "expected two raw sockets: %r" % rows
    rows.sort(key=lambda r: int(r["remote"], 16) == 0)
    return rows[0], rows[1]


@pytest.mark.parametrize("family", ["v4", "v6", "ll"])
def test_other_traffic_stays_in_the_kernel(binary, topo, tmp_path, spawn,
                                           family):
    topo.wait_path(family)
    sock = os.path.join(str(tmp_path), "s.sock")
    go = os.path.join(str(tmp_path), "go")
    dp = spawn(binary, ["-r", "0", "-s", "1000m", "-u", sock] +
               topo.args_for(family), ns=topo.fw, env=SAN_ENV)
    netns.wait_status(sock, lambda n: n[0] > 0, 10, "first replies")
    recv_row, send_row = probe_sockets(dp.pid, family)
    gw = {"v4": V4_GW, "v6": V6_GW, "ll": LL_GW}[family]
    assert recv_row["remote"] == kernel_hex(family, gw), \
        "receive socket not connected to the gateway: %r" % recv_row
    assert int(send_row["remote"], 16) == 0, send_row

    flooder, _ = start_flooder(topo, family, FLOOD, FLOOD_RATE, 0x5a5a, go)
    try:
        wakes, replies, queued = flood(dp, flooder, family, go)
    finally:
        flooder.proc.kill()
        flooder.proc.wait()
    # The wrong replies reached the host, and no thread woke for them:
    # about two wake-ups per probe (send, receive) and one a second for
    # the status socket, for a few seconds, against 1500 replies.
    assert replies >= FLOOD, replies
    assert wakes < FLOOD / 10, \
        "%d wake-ups during %d wrong replies" % (wakes, FLOOD)
    # The send socket never held a packet.
    assert max(queued) == 0, queued
    # And the gateway's own replies still count.
    netns.wait_status(sock, lambda n: n[2] == 0, 10, "loss 0")
    assert dp.stop() == 0


def test_filter_follows_the_identifier(binary, topo, tmp_path, spawn):
    """A rebind moves to a fresh identifier: the new receive socket's
    filter drops replies to the old one, and passes the new one's."""
    topo.wait_path("v4")
    sock = os.path.join(str(tmp_path), "s.sock")
    go = os.path.join(str(tmp_path), "go")
    dp = spawn(binary, ["-r", "0", "-s", "1000m", "-t", "3s", "-u", sock] +
               topo.args_for("v4"), ns=topo.fw, env=SAN_ENV)
    netns.wait_status(sock, lambda n: n[0] > 0, 10, "first replies")
    # Replies with the identifier the flooder sees now (xor 0) ...
    flooder, old_id = start_flooder(topo, "v4", FLOOD, FLOOD_RATE, 0, go)
    try:
        count = len(dp.err())
        dp.signal(signal.SIGHUP)    # rebind, new identifier
        line = dp.wait_err(r": rebind \(SIGHUP\) on .*: echo id \d+$",
                           start=count)
        assert int(line.split()[-1]) != old_id, line
        # ... are the old identifier's once the rebind is done.
        wakes, replies, _ = flood(dp, flooder, "v4", go)
    finally:
        flooder.proc.kill()
        flooder.proc.wait()
    assert replies >= FLOOD, replies
    assert wakes < FLOOD / 10, \
        "%d wake-ups during %d replies to the old identifier" % (wakes,
                                                                 FLOOD)
    # The new identifier's replies pass: the window (3 s) refills with
    # answered probes.
    netns.wait_status(sock, lambda n: n[2] == 0 and n[0] > 0, 10,
                      "loss 0 after the rebind")
    assert dp.stop() == 0
