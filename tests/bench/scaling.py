#!/usr/bin/env python3
"""What one dpinger costs as more run beside it, and what unrelated ICMP
and a busy machine do to it (issue 13).  Every dpinger runs in one
namespace ("fw") and monitors its own gateway address on one veth link
(192.0.2.100 and up, in "gw"), at 10 probes a second, with pfSense's
other settings: -r 0, alarms on (-A 1s -D 500 -L 20), a status socket.

    python3 tests/bench/scaling.py [--seconds N] [--counts 1,16,64]

Phases:
  scaling   1, 16, then 64 instances: CPU per instance per second, its
            ratio to one instance, and wake-ups per probe (voluntary
            context switches of every thread, per probe sent);
  flood     one instance, while another process floods echo requests
            at another gateway address (20 000 a second) and while it
            is stopped, in alternating one-second slices: the
            instance's CPU under the flood against idle;
  accuracy  one instance (-t 3s): the reported average and deviation on
            an idle machine, then with both cores kept busy; beside them,
            what `ping -U` (a user-space clock at both ends) read from the
            same gateway in the same windows.

CPU time is the sum of every thread's run time from
/proc/PID/task/*/schedstat; each figure is the median of one-second
slices.  Prints figures; asserts nothing but that
every instance kept answering, the flood happened and nothing rebound.
Needs root (network namespaces); addresses only inside them.
"""

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
import netns  # noqa: E402
from netns import sh, V4_FW  # noqa: E402

PROBES_PER_SEC = 10
FLOOD_TARGET = "192.0.2.200"
FLOOD_RATE = 20000      # echo requests a second


def gateway(i):
    return "192.0.2.%d" % (100 + i)


class Fleet:
    """dpinger instances in fw, instance i monitoring gateway(i)."""

    def __init__(self, binary, topo, tmp):
        self.binary, self.topo, self.tmp = binary, topo, tmp
        self.procs = []

    def sock(self, i):
        return os.path.join(self.tmp, "s%d" % i)

    def grow(self, count, extra=()):
        """Start instances until there are count; wait until each new
        one has its first replies."""
        first = len(self.procs)
        for i in range(first, count):
            self.procs.append(netns.Dpinger(
                self.binary,
                ["-s", "%dm" % (1000 // PROBES_PER_SEC), "-r", "0",
                 "-t", "3s", "-A", "1s", "-D", "500", "-L", "20",
                 "-u", self.sock(i)] + list(extra) +
                ["-B", V4_FW, gateway(i)], ns=self.topo.fw))
        for i in range(first, count):
            netns.wait_status(self.sock(i), lambda n: n[0] > 0, 30,
                              "first replies of instance %d" % i)

    def shrink(self, count):
        while len(self.procs) > count:
            self.procs.pop().stop()

    def pids(self):
        return [dp.pid for dp in self.procs]

    def rebinds(self):
        return sum(1 for dp in self.procs for line in dp.err()
                   if ": rebind (" in line)

    def stop(self):
        self.shrink(0)


def measure(pids, seconds):
    """(CPU us per instance per second, wake-ups per probe, per-thread
    wake-ups per second of the first instance, sorted).  The CPU figure
    is the median of one-second slices: on a shared machine, a slice in
    which the hypervisor or a neighbour got in the way is an outlier,
    not a trend."""
    slices = max(1, int(round(seconds)))
    wakes0 = [netns.proc_wakeups(p) for p in pids]
    t0 = time.monotonic()
    cpu = []
    for _ in range(slices):
        cpu0, s0 = sum(netns.proc_cpu_ns(p) for p in pids), time.monotonic()
        time.sleep(seconds / slices)     # the measurement window itself
        cpu.append((sum(netns.proc_cpu_ns(p) for p in pids) - cpu0) /
                   1e3 / len(pids) / (time.monotonic() - s0))
    wakes1 = [netns.proc_wakeups(p) for p in pids]
    elapsed = time.monotonic() - t0
    deltas = [{tid: after[tid] - before.get(tid, 0) for tid in after}
              for before, after in zip(wakes0, wakes1)]
    total = sum(sum(d.values()) for d in deltas)
    probes = len(pids) * PROBES_PER_SEC * elapsed
    first = sorted((n / elapsed for n in deltas[0].values()), reverse=True)
    return statistics.median(cpu), total / probes, first


# Runs in fw: sends rate echo requests a second at dest for seconds (so
# at most rate x seconds of them), paced, from a raw socket that never
# reads; the gateway answers each one.  Stopped and continued, it picks
# up the pace again instead of catching up in a burst.
FLOODER = r"""
import socket, struct, sys, time
dest, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)

def echo(seq):
    total = 0x0800 + 0x4243 + seq
    total = (total & 0xffff) + (total >> 16)
    return struct.pack("!BBHHH", 8, 0, ~total & 0xffff, 0x4243, seq)

start = time.monotonic()
for i in range(int(rate * seconds)):
    s.sendto(echo(i & 0xffff), (dest, 0))
    if i % 50 == 49:
        delay = start + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.1:
            start -= delay
"""


def flood(topo, rate, seconds):
    """The flooder in fw, at another gateway address; a Popen."""
    return subprocess.Popen(
        ["ip", "netns", "exec", topo.fw, sys.executable, "-c", FLOODER,
         FLOOD_TARGET, "%g" % rate, "%g" % seconds])


def flood_phase(topo, pid, seconds):
    """(idle CPU us/s, CPU us/s under the flood, replies/s that reached
    the host during the flood, wake-ups per probe under the flood) of one
    instance.  One-second slices
    alternate, the flooder stopped and then continued, so that a change
    in the machine's load weighs on both sides alike; medians."""
    slices = max(1, int(round(seconds)))
    proc = flood(topo, FLOOD_RATE, slices + 1)
    idle, flooded, wakes, replies, flood_time = [], [], [], 0, 0.0
    try:
        for _ in range(slices):
            proc.send_signal(signal.SIGSTOP)
            time.sleep(0.05)    # the last replies land
            idle.append(measure([pid], 1)[0])
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.05)    # the flood is back
            replies0, t0 = netns.echo_replies_in(pid), time.monotonic()
            cpu, per_probe, _ = measure([pid], 1)
            flooded.append(cpu)
            wakes.append(per_probe)
            replies += netns.echo_replies_in(pid) - replies0
            flood_time += time.monotonic() - t0
    finally:
        proc.kill()
        proc.wait()
    return (statistics.median(idle), statistics.median(flooded),
            replies / flood_time, statistics.mean(wakes))


def busy(topo, seconds, count=2):
    """count processes that keep a core busy each, for seconds."""
    return [subprocess.Popen(
        ["ip", "netns", "exec", topo.fw, "timeout", "%g" % seconds, "sh",
         "-c", "while :; do :; done"]) for _ in range(count)]


def window_figures(topo, sock, seconds):
    """(dpinger's status numbers once a fresh -t window has filled, the
    average round trip in us that `ping -U` read meanwhile from the same
    gateway: a user-space clock at both ends, 10 probes a second)."""
    ping = subprocess.Popen(
        ["ip", "netns", "exec", topo.fw, "ping", "-U", "-n", "-q", "-c",
         "%d" % (seconds * PROBES_PER_SEC), "-i", "%g" % (
             1.0 / PROBES_PER_SEC), gateway(0)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(seconds)      # the -t window refills with this phase only
    numbers = netns.status_numbers(netns.query_status(sock))
    out, _ = ping.communicate(timeout=30)
    m = re.search(r" = [\d.]+/([\d.]+)/", out)
    return numbers, float(m.group(1)) * 1000 if m else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--counts", default="1,16,64")
    parser.add_argument("--binary", default=netns.VARIANT_PATHS["plain"])
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    reason = netns.bench_unavailable(args.binary)
    if reason:
        print(reason)
        return 0

    topo = netns.Topology("bs%05d" % (os.getpid() % 100000)).create()
    tmp = tempfile.mkdtemp(prefix="dpinger-scaling-")
    fleet = Fleet(args.binary, topo, tmp)
    try:
        for i in range(max(counts)):
            sh("ip", "addr", "add", gateway(i) + "/24", "dev", topo.gw_if,
               ns=topo.gw)
        sh("ip", "addr", "add", FLOOD_TARGET + "/24", "dev", topo.gw_if,
           ns=topo.gw)
        topo.wait_path("v4")

        rows = []
        for count in counts:
            fleet.grow(count)
            rows.append((count,) + measure(fleet.pids(), args.seconds))

        fleet.shrink(1)
        idle_cpu, flood_cpu, rate, flood_wakes = flood_phase(
            topo, fleet.pids()[0], args.seconds)

        sock = fleet.sock(0)
        window = 3.5
        idle_avg, idle_user = window_figures(topo, sock, window)
        hogs = busy(topo, window + 1)
        loaded_avg, loaded_user = window_figures(topo, sock, window)
        for hog in hogs:
            hog.wait()
        final = netns.status_numbers(netns.query_status(sock))
        rebinds = fleet.rebinds()

        one = rows[0][1]

        def ratio(x, base):
            return "%.2fx" % (x / base) if base > 0 else "-"
        print("scaling benchmark: %s, -s %dm, IPv4, one gateway address"
              " each, %g s per phase" % (os.path.basename(args.binary),
                                         1000 // PROBES_PER_SEC,
                                         args.seconds))
        print("  %9s %24s %8s %19s" % ("instances", "CPU us/s per instance",
                                       "vs one", "wake-ups per probe"))
        for count, cpu, wakes, _ in rows:
            print("  %9d %24.1f %8s %19.2f" % (count, cpu, ratio(cpu, one),
                                               wakes))
        print("  wake-ups per second of each thread, one instance: %s"
              % " ".join("%.1f" % w for w in rows[0][3]))
        print("  unrelated ICMP: a flood at another gateway, %.0f replies/s:"
              " idle %.1f us/s, flood %.1f us/s, %s; %.2f wake-ups per"
              " probe under the flood" % (
                  rate, idle_cpu, flood_cpu, ratio(flood_cpu, idle_cpu),
                  flood_wakes))
        print("  accuracy, -t 3s on a veth: idle avg %d us stddev %d us;"
              " both cores busy avg %d us stddev %d us; difference %+d us"
              % (idle_avg[0], idle_avg[1], loaded_avg[0], loaded_avg[1],
                 loaded_avg[0] - idle_avg[0]))
        print("  the same windows read with a user-space clock (ping -U):"
              " idle avg %.0f us; both cores busy avg %.0f us"
              % (idle_user, loaded_user))
        print("  rebinds during the benchmark: %d; status at the end: %s"
              % (rebinds, " ".join(str(n) for n in final)))
        ok = rate > 0 and rebinds == 0 and final[0] > 0 and \
            idle_avg[0] > 0 and loaded_avg[0] > 0
        print("scaling benchmark: %s" % ("done" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        fleet.stop()
        topo.destroy()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())
