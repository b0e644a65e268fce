#!/usr/bin/env python3
"""What churn that does not concern dpinger costs it: CPU time of a plain
./dpinger (link-local bind, interface watcher running) while nothing
happens, against the same while another process in its namespace changes
routes, then addresses on another interface: IPv6 (the monitor's own
family) at 1000 changes/s, then IPv4 and IPv6 as fast as `ip -batch` can.

    python3 tests/bench/churn.py [--seconds N]      (make bench: 10 s each)

CPU time is the sum of every thread's run time from
/proc/PID/task/*/schedstat (nanoseconds), not utime+stime (10 ms ticks).
Prints figures; asserts nothing but that churn happened and dpinger kept
monitoring.  Needs root (network namespaces).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
import netns  # noqa: E402
from netns import sh  # noqa: E402


def batch_file(directory, name, lines):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, len(lines)


class Churn(threading.Thread):
    """Runs `ip -batch file` in the namespace over and over until told to
    stop; counts the changes made."""

    def __init__(self, ns, path, per_run, rate=None):
        super().__init__(daemon=True)
        self.ns, self.path, self.per_run = ns, path, per_run
        self.rate = rate        # changes per second, None: flat out
        self.done = 0
        self.stopping = threading.Event()

    def run(self):
        began = time.monotonic()
        while not self.stopping.is_set():
            subprocess.run(["ip", "netns", "exec", self.ns, "ip", "-batch",
                            self.path], check=True)
            self.done += self.per_run
            if self.rate:
                # Paced: wait for the schedule to catch up.
                self.stopping.wait(began + self.done / self.rate -
                                   time.monotonic())


def measure(pid, seconds, churn=None):
    """(dpinger CPU ms per second, changes per second)."""
    if churn is not None:
        churn.start()
        # Let it get going before the window opens.
        while churn.done == 0:
            time.sleep(0.05)
        done0 = churn.done
    cpu0, t0 = netns.proc_cpu_ns(pid), time.monotonic()
    time.sleep(seconds)      # the measurement window itself
    cpu1, t1 = netns.proc_cpu_ns(pid), time.monotonic()
    rate = 0.0
    if churn is not None:
        rate = (churn.done - done0) / (t1 - t0)
        churn.stopping.set()
        churn.join()
    return (cpu1 - cpu0) / 1e6 / (t1 - t0), rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--binary", default=netns.VARIANT_PATHS["plain"])
    args = parser.parse_args()
    reason = netns.bench_unavailable(args.binary)
    if reason:
        print(reason)
        return 0

    topo = netns.Topology("bc%05d" % (os.getpid() % 100000)).create()
    tmp = tempfile.mkdtemp(prefix="dpinger-bench-")
    dp = None
    try:
        other, peer = topo.prefix + "o", topo.prefix + "p"
        sh("ip", "link", "add", other, "type", "veth", "peer", "name", peer,
           ns=topo.fw)
        sh("ip", "link", "set", other, "up", ns=topo.fw)
        sh("ip", "link", "set", peer, "up", ns=topo.fw)
        topo.wait_path("ll")
        sock = os.path.join(tmp, "status")
        dp = netns.Dpinger(args.binary, ["-s", "500m", "-r", "0", "-u",
                                         sock] + topo.args_for("ll"),
                           ns=topo.fw)
        netns.wait_status(sock, lambda n: n[0] > 0, 10, "first replies")

        hosts = ["198.51.100.%d" % i for i in range(1, 255)]
        routes, n_routes = batch_file(
            tmp, "routes",
            ["route add %s/32 dev %s" % (h, other) for h in hosts] +
            ["route del %s/32 dev %s" % (h, other) for h in hosts])
        addrs, n_addrs = batch_file(
            tmp, "addrs",
            ["address add %s/32 dev %s" % (h, other) for h in hosts] +
            ["address del %s/32 dev %s" % (h, other) for h in hosts])

        v6hosts = ["2001:db8:99::%x" % i for i in range(1, 255)]
        paced, n_paced = batch_file(
            tmp, "paced",
            ["address add %s/128 dev %s nodad" % (h, other)
             for h in v6hosts[:50]] +
            ["address del %s/128 dev %s" % (h, other)
             for h in v6hosts[:50]])

        addrs6, n_addrs6 = batch_file(
            tmp, "addrs6",
            ["address add %s/128 dev %s nodad" % (h, other)
             for h in v6hosts] +
            ["address del %s/128 dev %s" % (h, other) for h in v6hosts])

        idle, _ = measure(dp.pid, args.seconds)
        paced_cpu, paced_rate = measure(
            dp.pid, args.seconds, Churn(topo.fw, paced, n_paced, 1000))
        route_cpu, route_rate = measure(dp.pid, args.seconds,
                                        Churn(topo.fw, routes, n_routes))
        addr_cpu, addr_rate = measure(dp.pid, args.seconds,
                                      Churn(topo.fw, addrs, n_addrs))
        addr6_cpu, addr6_rate = measure(dp.pid, args.seconds,
                                        Churn(topo.fw, addrs6, n_addrs6))
        final = netns.status_numbers(netns.query_status(sock))
        rebinds = [line for line in dp.err() if ": rebind (" in line]

        def ratio(x):
            return "%.2fx" % (x / idle) if idle > 0 else "-"
        print("churn benchmark: %s, -s 500m, -B fe80::2%%if, %g s per"
              " phase" % (os.path.basename(args.binary), args.seconds))
        print("  %-36s %9s %17s %8s" % ("phase", "changes/s",
                                        "dpinger CPU ms/s", "vs idle"))
        for label, rate, cpu in (
                ("idle", 0, idle),
                ("route churn", route_rate, route_cpu),
                ("IPv4 addresses, other if", addr_rate, addr_cpu),
                ("IPv6 addresses, other if, paced", paced_rate, paced_cpu),
                ("IPv6 addresses, other if", addr6_rate, addr6_cpu)):
            print("  %-36s %9.0f %17.3f %8s" % (label, rate, cpu,
                                                ratio(cpu)))
        for what, cpu, rate in (("IPv4", addr_cpu, addr_rate),
                                ("IPv6", addr6_cpu, addr6_rate)):
            if rate > 0:
                print("  per unrelated %s address event: %.1f us of dpinger"
                      " CPU" % (what, (cpu - idle) * 1000 / rate))
        print("  rebinds during the benchmark: %d; status at the end: %s"
              % (len(rebinds), " ".join(str(n) for n in final)))
        ok = route_rate > 0 and addr_rate > 0 and paced_rate > 0 and \
            addr6_rate > 0 and \
            not rebinds and \
            final[0] > 0
        print("churn benchmark: %s" % ("done" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        if dp is not None:
            dp.stop()
        topo.destroy()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())
