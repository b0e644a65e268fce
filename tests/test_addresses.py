"""Issue 9, addresses and limits, from the real binary: every address is
read as getaddrinfo(AI_NUMERICHOST) reads it and printed in getnameinfo's
numeric form (start-up line, Alarm line, alert command arguments, rebind
line); a link-local address without a scope is fatal at start-up; times
beyond 32 bits of milliseconds are accepted and printed in full."""

import signal

import pytest

import netns
from netns import wait_until

SAN_ENV = dict(netns.SANITIZER_ENV)

LINE = ("send_interval {s}ms  loss_interval {l}ms  time_period {t}ms  "
        "report_interval {r}ms  data_len 0  alert_interval {a}ms  "
        "latency_alarm 0ms  loss_alarm {L}%  alarm_hold {h}ms  "
        "dest_addr {dest}  bind_addr {bind}  identifier \"\"")


def startup(**kw):
    values = dict(s=500, l=2000, t=60000, r=1000, a=1000, L=0, h=10000)
    values.update(kw)
    return LINE.format(**values)


# args, expected start-up line; {fwif} is fw's interface, {fwidx} its
# index.
CASES = {
    # Upper case and leading zeros: printed as getnameinfo prints them.
    "v6-case": (["-B", "2001:DB8::2", "2001:0DB8:0:0::1"],
                startup(dest="2001:db8::1", bind="2001:db8::2")),
    # inet_aton's forms, which getaddrinfo(AI_NUMERICHOST) takes.
    "v4-leading-zero": (["-B", "192.0.2.002", "192.0.2.001"],
                        startup(dest="192.0.2.1", bind="192.0.2.2")),
    # A numeric scope prints as the interface's name.
    "numeric-scope": (["-B", "FE80::2%{fwidx}", "fe80::0:1%{fwidx}"],
                      startup(dest="fe80::1%{fwif}", bind="fe80::2%{fwif}")),
    # Issue 9: 3000000 s is 3e9 ms, past 32 bits on today's main.
    "long-period": (["-s", "60s", "-t", "3000000s", "-r", "0", "-L", "50",
                     "192.0.2.1"],
                    startup(s=60000, l=240000, t=3000000000, r=0, L=50,
                            dest="192.0.2.1", bind="(none)")),
    # Issue 9: the default hold, 10 x 500000000, printed wrapped on main.
    "long-hold": (["-A", "500000000", "192.0.2.1"],
                  startup(a=500000000, h=5000000000, dest="192.0.2.1",
                          bind="(none)")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_startup_line_addresses_and_limits(binary, topo, spawn, case):
    args, expected = CASES[case]
    subst = {"fwif": topo.fw_if, "fwidx": topo.fw_ifindex()}
    args = [a.format(**subst) for a in args]
    expected = expected.format(**subst)
    dp = spawn(binary, args, ns=topo.fw, env=SAN_ENV)
    assert dp.wait_err(".", timeout=10) == expected
    assert dp.stop() == 0


@pytest.mark.parametrize("args,message", [
    (["fe80::1"], "invalid destination IP address fe80::1"),
    (["FE80::1"], "invalid destination IP address FE80::1"),
    (["-B", "fe80::2", "fe80::1%{fwif}"], "invalid bind IP address fe80::2"),
    (["-B", "fe80::2", "2001:db8::1"], "invalid bind IP address fe80::2"),
], ids=["dest", "dest-upper", "bind", "bind-global-dest"])
def test_link_local_without_scope_is_fatal(binary, topo, spawn, args,
                                           message):
    """Today's main waits for ever on EINVAL instead (run in a namespace,
    because it would run)."""
    args = [a.format(fwif=topo.fw_if) for a in args]
    dp = spawn(binary, args, ns=topo.fw, env=SAN_ENV)
    wait_until(lambda: dp.proc.poll() is not None, 10,
               "dpinger to exit on %s" % args)
    assert dp.proc.returncode == 1
    for reader in dp.readers:
        reader.join(5)
    assert dp.err() == [message]


def test_alarm_and_alert_arguments_print_parsed_address(binary, topo,
                                                        tmp_path, spawn):
    """The Alarm line and the alert command get getnameinfo's form of a
    destination typed with upper case and zeros; so does the rebind line."""
    log = tmp_path / "alert.log"
    script = tmp_path / "alert.sh"
    script.write_text("#!/bin/sh\necho \"$@\" >> %s\n" % log)
    script.chmod(0o755)
    topo.wait_path("v6")
    # Replies blackholed at the gateway: loss alarm within a second.
    netns.sh("ip", "-6", "route", "add", "blackhole", netns.V6_FW + "/128",
             ns=topo.gw)
    dp = spawn(binary, ["-r", "0", "-i", "GW", "-B", "2001:DB8:0::2",
                        "-s", "100m", "-l", "300m", "-t", "2s",
                        "-A", "100m", "-L", "20", "-C", str(script),
                        "2001:0DB8::0001"], ns=topo.fw, env=SAN_ENV)
    line = dp.wait_err(r": Alarm ", timeout=10)
    assert line.startswith("GW 2001:db8::1: Alarm latency "), line
    wait_until(lambda: log.exists() and log.read_text().endswith("\n"), 10,
               "the alert command's arguments")
    words = log.read_text().splitlines()[0].split()
    assert words[:3] == ["GW", "2001:db8::1", "1"], words
    dp.signal(signal.SIGHUP)
    line = dp.wait_err(r"rebind \(SIGHUP\)", timeout=10)
    assert line.startswith("GW 2001:db8::1: rebind (SIGHUP) on "), line
    assert dp.stop() == 0
    assert not any("2001:DB8" in l or "0DB8" in l for l in dp.err())


def test_link_local_still_heals_with_uppercase_scoped_address(binary, topo,
                                                              tmp_path,
                                                              spawn):
    """The scope stays a name resolved at each rebind: the interface
    destroyed and re-created (a new index) is followed, and the lines
    print the parsed form."""
    sock = str(tmp_path / "s.sock")
    topo.wait_path("ll")
    old_index = topo.fw_ifindex()
    dp = spawn(binary, ["-r", "0", "-s", "100m", "-u", sock, "-B",
                        "FE80::2%" + topo.fw_if, "FE80::0:1%" + topo.fw_if],
               ns=topo.fw, env=SAN_ENV)
    first = dp.wait_err(".", timeout=10)
    assert "dest_addr fe80::1%{0}  bind_addr fe80::2%{0}  ".format(
        topo.fw_if) in first, first
    netns.wait_status(sock, lambda n: n[2] == 0 and n[0] > 0, 15,
                      "loss 0 before the interface goes")
    topo.recreate_link()
    assert topo.fw_ifindex() != old_index
    line = dp.wait_err(r"rebind \((address|interface) returned\)",
                       timeout=15)
    assert line.startswith("fe80::1%%%s: rebind (" % topo.fw_if), line
    netns.wait_status(sock, lambda n: n[2] == 0 and n[0] > 0, 20,
                      "loss 0 after the interface came back")
    assert dp.stop() == 0
