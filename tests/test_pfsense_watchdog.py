"""port/pfsense/dpinger-watchdog.sh, the per-gateway watchdog, against real
dpinger processes in network namespaces.

A scratch pfSense root (ROOT=...) holds the installed binary (a copy of
the plain build, named dpinger as on pfSense: the watchdog is under test
here; dpinger runs under the sanitizers in the heal tests), /etc/version,
pfSsh.php and /var/run.  pfSense's PHP is the real php interpreter with
stand-in include files (config.inc, functions.inc, gwlb.inc, services.inc)
on its include path: return_gateways_array() and the interface addresses
come from a JSON file, start_dpinger() stops the gateway's old instance
and starts ./dpinger with pfSense's command line (without -S, so that
its log lands in a file, and without -C), setup_gateways_monitor() starts
them all, install_cron_job() keeps cron items in conf/config.json and
writes etc/crontab.  Every call is recorded.  logger and ping are
stand-ins too (ping maps FreeBSD's -S source to iputils' -I).  The
watchdog runs inside the fw namespace (ip netns exec), so its probes and
its pings never leave it.

Proven here: each mode (killed, stopped, zombie, real outage, healthy),
that overlapping runs repair nothing twice, the rate limit, the idle
cases, the PHP gateway list, install/remove/status through
dpinger-install.sh; and the time of one run with 8 healthy gateways."""

import hashlib
import json
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

import netns

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "shim"))
import faults  # noqa: E402
# The stock dpinger 3.3's usage line, and a stand-in binary printing it.
from test_pfsense_install import STOCK_SCRIPT, STOCK_USAGE  # noqa: E402

PFSENSE = os.path.join(netns.ROOT, "port", "pfsense")
WATCHDOG = os.path.join(PFSENSE, "dpinger-watchdog.sh")
INSTALLER = os.path.join(PFSENSE, "dpinger-install.sh")
WD_INSTALL = os.path.join(PFSENSE, "watchdog-install.sh")

# Fast probes for the tests that need loss to move within seconds.
FAST = {"interval": "100", "loss_interval": "300", "time_period": "1500"}

# -- pfSense's PHP, stood in ------------------------------------------------

CONFIG_INC = r'''<?php
/* config.inc: $g, and $config from conf/config.json (config.xml). */
$wd_root = getenv("ROOT");
$g = array("varrun_path" => "$wd_root/var/run",
    "etc_path" => "$wd_root/etc");
$config = json_decode(@file_get_contents("$wd_root/conf/config.json"),
    true);
if (!is_array($config))
	$config = array();
function platform_booting() {
	return getenv("STANDIN_BOOTING") == "1";
}
function wd_box() {
	return json_decode(file_get_contents(getenv("ROOT") .
	    "/standin/box.json"), true);
}
function wd_record($fn, $args) {
	file_put_contents(getenv("ROOT") . "/standin/calls",
	    json_encode(array("fn" => $fn, "args" => $args)) . "\n",
	    FILE_APPEND | LOCK_EX);
}
function write_config($desc = "") {
	global $config;
	wd_record("write_config", array($desc));
	file_put_contents(getenv("ROOT") . "/conf/config.json",
	    json_encode($config));
}
'''

SERVICES_INC = r'''<?php
require_once("config.inc");
function configure_cron() {
	global $config;
	$t = "";
	foreach ($config["cron"]["item"] ?? array() as $it)
		$t .= implode("\t", array($it["minute"], $it["hour"],
		    $it["mday"], $it["month"], $it["wday"], $it["who"],
		    $it["command"])) . "\n";
	file_put_contents(getenv("ROOT") . "/etc/crontab", $t);
}
/* pfSense's semantics: the first item whose command contains $command. */
function install_cron_job($command, $active = false, $minute = "0",
    $hour = "*", $monthday = "*", $month = "*", $weekday = "*",
    $who = "root", $write_config = true) {
	global $config;
	wd_record("install_cron_job", func_get_args());
	$items = $config["cron"]["item"] ?? array();
	$at = null;
	foreach ($items as $i => $it)
		if (strstr($it["command"], $command)) {
			$at = $i;
			break;
		}
	$new = array("minute" => $minute, "hour" => $hour,
	    "mday" => $monthday, "month" => $month, "wday" => $weekday,
	    "who" => $who, "command" => $command);
	if ($active) {
		if ($at !== null && $items[$at] == $new)
			return;
		if ($at === null)
			$items[] = $new;
		else
			$items[$at] = $new;
	} else {
		if ($at === null)
			return;
		array_splice($items, $at, 1);
	}
	$config["cron"]["item"] = $items;
	if ($write_config)
		write_config("cron");
	configure_cron();
}
'''

GWLB_INC = r'''<?php
require_once("config.inc");
function wd_bare($a) {
	return explode("%", $a, 2)[0];
}
function is_ipaddrv4($a) {
	return filter_var($a, FILTER_VALIDATE_IP, FILTER_FLAG_IPV4) !== false;
}
function is_ipaddrv6($a) {
	return filter_var(wd_bare($a), FILTER_VALIDATE_IP,
	    FILTER_FLAG_IPV6) !== false;
}
function is_ipaddr($a) {
	return is_ipaddrv4($a) || is_ipaddrv6($a);
}
function is_linklocal($a) {
	return stripos($a, "fe80:") === 0;
}
function get_ll_scope($a) {
	return explode("%", $a, 2)[1] ?? "";
}
function wd_if($if, $key) {
	return wd_box()["interfaces"][$if][$key] ?? "";
}
function find_interface_ip($if, $flush = false) {
	return wd_if($if, "ip");
}
function find_interface_ipv6($if, $flush = false) {
	return wd_if($if, "ipv6");
}
function find_interface_ipv6_ll($if, $flush = false) {
	return wd_if($if, "ll");
}
function return_gateways_array() {
	$out = array();
	foreach (wd_box()["gateways"] as $gw)
		$out[$gw["name"]] = $gw;
	return $out;
}
function wd_alive($pid) {
	$s = @file_get_contents("/proc/$pid/stat");
	if ($s === false)
		return false;
	return substr($s, strrpos($s, ")") + 2, 1) != "Z";
}
/* SIGTERM through the pid file, up to 3 s; a stale pid file goes. */
function stop_dpinger($name = "") {
	global $g;
	wd_record("stop_dpinger", array($name));
	foreach (glob("{$g["varrun_path"]}/dpinger_*.pid") as $pidf) {
		if ($name != "" &&
		    strpos(basename($pidf), "dpinger_{$name}~") !== 0)
			continue;
		$pid = (int)trim(@file_get_contents($pidf));
		if ($pid > 0 && wd_alive($pid)) {
			exec("kill -TERM $pid");
			for ($i = 0; $i < 30 && wd_alive($pid); $i++)
				usleep(100000);
		} else
			@unlink($pidf);
	}
}
function start_dpinger($gw) {
	global $g;
	wd_record("start_dpinger", array($gw["name"]));
	$gate = getenv("STANDIN_GATE");
	if ($gate) {
		touch("$gate.entered");
		while (!file_exists("$gate.open"))
			usleep(20000);
	}
	if (!isset($gw["gwifip"]))
		return false;
	$p = "{$g["varrun_path"]}/dpinger_{$gw["name"]}~";
	if (strlen("$p{$gw["gwifip"]}~{$gw["monitor"]}") > 95)
		$p .= substr(md5($gw["gwifip"]), 0, 8) . "~{$gw["monitor"]}";
	else
		$p .= "{$gw["gwifip"]}~{$gw["monitor"]}";
	$args = array("-r", "0", "-i", $gw["name"], "-B", $gw["gwifip"],
	    "-p", "$p.pid", "-u", "$p.sock", "-d", "1",
	    "-s", $gw["interval"] ?? "500",
	    "-l", $gw["loss_interval"] ?? "2000",
	    "-t", $gw["time_period"] ?? "60000",
	    "-A", "1000", "-D", "500", "-L", "20");
	$args = array_merge($args, $gw["test_args"] ?? array(),
	    array($gw["monitor"]));
	stop_dpinger($gw["name"]);
	$env = "";
	foreach ($gw["test_env"] ?? array() as $k => $v)
		$env .= " " . escapeshellarg("$k=$v");
	$root = getenv("ROOT");
	exec("env$env " . escapeshellarg("$root/usr/local/bin/dpinger") .
	    " " . implode(" ", array_map("escapeshellarg", $args)) .
	    " >>" . escapeshellarg("$root/standin/dpinger-{$gw["name"]}.log") .
	    " 2>&1", $out, $rc);
	return $rc;
}
function setup_gateways_monitor() {
	wd_record("setup_gateways_monitor", array());
	foreach (return_gateways_array() as $gw) {
		if (isset($gw["monitor_disable"]))
			continue;
		$gw["gwifip"] = find_interface_ip($gw["interface"]);
		start_dpinger($gw);
	}
}
'''

LOGGER = '#!/bin/sh\nprintf \'%s\\n\' "$*" >>"$ROOT/standin/syslog"\n'

# FreeBSD's ping -S is the source address; iputils' -I is.
PING = textwrap.dedent('''\
    #!/bin/sh
    n=$#
    while [ "$n" -gt 0 ]; do
    	a=$1
    	shift
    	n=$((n - 1))
    	if [ "$a" = -S ]; then
    		set -- "$@" -I "$1"
    		shift
    		n=$((n - 1))
    	else
    		set -- "$@" "$a"
    	fi
    done
    echo "$*" >>"$ROOT/standin/pings"
    exec %s -n -W 1 -i 0.2 %s "$@"
    ''')



def _need(tool):
    if shutil.which(tool) is None:
        pytest.skip("SKIPPED: %s is not installed (tests/deps)" % tool)


class Box:
    """A scratch pfSense root, its stand-ins and its records."""

    def __init__(self, tmp, binary, topo=None):
        self.tmp = tmp
        self.root = tmp / "root"
        self.topo = topo
        for d in ("etc", "usr/local/bin", "usr/local/sbin", "var/run",
                  "conf", "standin", "tools", "inc"):
            (self.root / d if d not in ("tools", "inc") else tmp / d).mkdir(
                parents=True)
        (self.root / "etc/version").write_text("2.8.0-RELEASE\n")
        (self.root / "usr/local/sbin/pfSsh.php").write_text("")
        self.bin = self.root / "usr/local/bin/dpinger"
        if binary is not None:
            # Network safety: a real dpinger only where every run and
            # every start happens inside the test's namespace.
            assert topo is not None, "a real dpinger needs a namespace"
            # A copy, not a link: a sanitizer that re-executes itself
            # goes through /proc/self/exe, and ps must say "dpinger".
            shutil.copy(binary, self.bin)
        else:
            # Says it is the self-healing one; started, it only fails.
            self.bin.write_text("#!/bin/sh\necho '%s [-X]' >&2\nexit 1\n"
                                % STOCK_USAGE)
            self.bin.chmod(0o755)
        self.standin = self.root / "standin"
        for name, text in (("config.inc", CONFIG_INC),
                           ("functions.inc", "<?php\n"),
                           ("gwlb.inc", GWLB_INC),
                           ("services.inc", SERVICES_INC)):
            (tmp / "inc" / name).write_text(text)
        tools = tmp / "tools"
        self._tool(tools / "php", "#!/bin/sh\nexec %s -n -d include_path=%s"
                   " -d display_errors=stderr \"$@\"\n"
                   % (shutil.which("php"), tmp / "inc"))
        self._tool(tools / "logger", LOGGER)
        ping = shutil.which("ping")
        self._tool(tools / "ping", PING % (ping, ""))
        self._tool(tools / "ping6", PING % (ping, "-6"))
        self.env = dict(os.environ, ROOT=str(self.root),
                        PATH="%s:%s" % (tools, os.environ["PATH"]))
        self.env.update(netns.SANITIZER_ENV)
        self.gateways = []
        self.interfaces = {}

    @staticmethod
    def _tool(path, text):
        path.write_text(text)
        path.chmod(0o755)

    # -- configuration --------------------------------------------------
    def add_gateway(self, name, address, src=netns.V4_FW, **extra):
        """A gateway at address, monitored there unless extra says."""
        iface = "if_" + name
        self.interfaces[iface] = {"ip": src}
        gw = {"name": name, "interface": iface, "gateway": address,
              "monitor": address, "ipprotocol": "inet"}
        gw.update(extra)
        self.gateways.append(gw)
        self.save()
        return gw

    def save(self):
        (self.standin / "box.json").write_text(json.dumps(
            {"gateways": self.gateways, "interfaces": self.interfaces}))

    # -- running things -------------------------------------------------
    def _cmd(self, cmd, ns=True):
        if ns and self.topo is not None:
            return ["ip", "netns", "exec", self.topo.fw] + cmd
        return cmd

    def php(self, code):
        r = subprocess.run(self._cmd(["php", "-r", code]), env=self.env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def start_all(self):
        """pfSense at boot: setup_gateways_monitor()."""
        self.php('require_once("gwlb.inc"); setup_gateways_monitor();')
        for gw in self.gateways:
            self.wait_answer(gw["name"])

    def watchdog(self, *args, now=None, env=None, timeout=120):
        full = dict(self.env)
        if now is not None:
            full["DPINGER_WATCHDOG_NOW"] = str(now)
        full.update(env or {})
        return subprocess.run(self._cmd(["sh", WATCHDOG] + list(args)),
                              env=full, capture_output=True, text=True,
                              timeout=timeout)

    def watchdog_bg(self, *args, env=None):
        full = dict(self.env)
        full.update(env or {})
        return subprocess.Popen(self._cmd(["sh", WATCHDOG] + list(args)),
                                env=full, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    # -- what happened --------------------------------------------------
    def stem(self, name):
        gw = [g for g in self.gateways if g["name"] == name][0]
        return str(self.root / "var/run" / ("dpinger_%s~%s~%s" % (
            name, self.interfaces[gw["interface"]]["ip"], gw["monitor"])))

    def pid(self, name):
        try:
            return int(pathlib.Path(self.stem(name) + ".pid").read_text())
        except (OSError, ValueError):
            return None

    def sock(self, name):
        return self.stem(name) + ".sock"

    def wait_answer(self, name, predicate=bool, timeout=15):
        return netns.wait_status_line(self.sock(name), predicate, timeout,
                                      "%s answering" % name)

    def calls(self, fn=None):
        path = self.standin / "calls"
        if not path.exists():
            return []
        out = [json.loads(line) for line in path.read_text().splitlines()]
        return [c for c in out if fn is None or c["fn"] == fn]

    def starts(self):
        return [c["args"][0] for c in self.calls("start_dpinger")]

    def syslog(self):
        path = self.standin / "syslog"
        return path.read_text().splitlines() if path.exists() else []

    def dpinger_log(self, name):
        path = self.standin / ("dpinger-%s.log" % name)
        return path.read_text() if path.exists() else ""

    def our_pids(self):
        """Every live process running this box's dpinger."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                exe = os.readlink("/proc/%s/exe" % entry)
            except OSError:
                continue
            if exe == str(self.bin):
                found.append(int(entry))
        return found

    def cleanup(self):
        for pid in self.our_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def sanitizer_reports(self):
        reports = []
        for path in self.standin.glob("dpinger-*.log"):
            reports += [line for line in path.read_text().splitlines()
                        if any(m in line for m in netns.SANITIZER_MARKS)]
        return reports


def _make_box(topo, binary):
    _need("php")
    _need("nc")
    # A short path: pfSense's socket names are long, sun_path is not.
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="dpw-", dir="/tmp"))
    return Box(tmp, binary, topo)


@pytest.fixture
def make_box():
    boxes = []

    def make(topo, binary):
        box = _make_box(topo, binary)
        boxes.append(box)
        return box
    yield make
    reports = []
    for box in boxes:
        box.cleanup()
        reports += box.sanitizer_reports()
        shutil.rmtree(box.tmp, ignore_errors=True)
    assert not reports, "sanitizer reports:\n" + "\n".join(reports)


def gone(pid):
    """Dead, or a zombie nobody reaps here."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def two_gateways(make_box, topo, binary):
    """WAN_DHCP monitors 192.0.2.1, OTHER 192.0.2.11; both answer."""
    netns.sh("ip", "addr", "add", "192.0.2.11/24", "dev", topo.gw_if,
             ns=topo.gw)
    box = make_box(topo, binary)
    box.add_gateway("WAN_DHCP", netns.V4_GW)
    box.add_gateway("OTHER", "192.0.2.11")
    topo.wait_path("v4")
    box.start_all()
    return box


# -- the modes ---------------------------------------------------------------

@pytest.mark.parametrize("how", ["TERM", "KILL"])
def test_killed_monitor_comes_back_within_one_run(topo, make_box,
                                                  plain_binary, how):
    """SIGTERM (pid file and socket go: pfSense's missing monitor after an
    IPsec reload) or SIGKILL (they stay): one run starts that gateway,
    through start_dpinger(), and touches nothing else."""
    box = two_gateways(make_box, topo, plain_binary)
    old, other = box.pid("WAN_DHCP"), box.pid("OTHER")
    os.kill(old, getattr(signal, "SIG" + how))
    netns.wait_until(lambda: gone(old), 10, "the monitor gone")
    r = box.watchdog()
    assert r.returncode == 0, r.stdout + r.stderr
    why = "no pid file" if how == "TERM" else "process %d is gone" % old
    assert "WAN_DHCP: started: no monitor (%s): started, pid" % why \
        in r.stdout, r.stdout
    assert "OTHER: ok (OTHER " in r.stdout, r.stdout
    new = box.pid("WAN_DHCP")
    assert new not in (None, old) and not gone(new)
    assert box.wait_answer("WAN_DHCP").startswith("WAN_DHCP ")
    assert box.pid("OTHER") == other
    assert box.starts() == ["WAN_DHCP", "OTHER", "WAN_DHCP"]
    assert len(box.calls("setup_gateways_monitor")) == 1
    logged = [line for line in box.syslog() if "WAN_DHCP" in line]
    assert len(logged) == 1 and "-t dpinger-watchdog" in logged[0], logged
    assert why in logged[0]
    # The next run finds nothing to do.
    r = box.watchdog()
    assert "WAN_DHCP: ok" in r.stdout and "1 repaired" not in r.stdout
    assert box.starts() == ["WAN_DHCP", "OTHER", "WAN_DHCP"]


def test_stopped_monitor_is_replaced(topo, make_box, plain_binary):
    """SIGSTOP: the socket stops answering.  SIGTERM cannot end a stopped
    process, so SIGKILL after 3 s, then a new start."""
    box = two_gateways(make_box, topo, plain_binary)
    old, other = box.pid("WAN_DHCP"), box.pid("OTHER")
    os.kill(old, signal.SIGSTOP)
    try:
        began = time.monotonic()
        r = box.watchdog()
        took = time.monotonic() - began
    finally:
        if not gone(old):
            os.kill(old, signal.SIGCONT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ("WAN_DHCP: restarted (hung, status socket does not answer "
            "within 2s): SIGTERM, SIGKILL after 3s, started, pid"
            in r.stdout), r.stdout
    assert gone(old)
    new = box.pid("WAN_DHCP")
    assert new not in (None, old)
    box.wait_answer("WAN_DHCP")
    assert box.pid("OTHER") == other
    assert box.starts()[-1] == "WAN_DHCP" and len(box.starts()) == 3
    assert took >= 2 + 3, "2 s for the socket, 3 s before SIGKILL"
    assert any("WAN_DHCP: restarted (hung" in line for line in box.syslog())


def zombie_box(make_box, topo, binary, mode):
    """One gateway whose dpinger (-X: no self-healing of its own) runs
    with the fault shim: its sends fail, ping's do not."""
    box = make_box(topo, binary)
    fault = faults.Fault(box.tmp, mode=mode)
    gw = box.add_gateway("VTI", netns.V4_GW, test_args=["-X"],
                         test_env=fault.env(), **FAST)
    topo.wait_path("v4")
    if mode == "all":
        fault.arm()
    box.php('require_once("gwlb.inc"); setup_gateways_monitor();')
    if mode != "all":
        box.wait_answer("VTI", lambda line: faults.healthy(
            netns.status_numbers(line)))
        fault.arm()
    box.wait_answer("VTI", lambda line: line.endswith(" 100"), timeout=20)
    return box, gw


def test_zombie_gets_sighup_and_heals(topo, make_box, plain_binary):
    """Stale sockets (the shim fails sends on sockets older than the
    fault): 100 % loss while ping works.  The run sends SIGHUP, the
    monitor rebinds and recovers; the next run finds it well and
    restarts nothing."""
    box, _ = zombie_box(make_box, topo, plain_binary, "fail")
    pid = box.pid("VTI")
    r = box.watchdog()
    assert r.returncode == 0, r.stdout + r.stderr
    assert ("VTI: sent SIGHUP (rebind) to pid %d: zombie, 100 %% loss "
            "while ping -S 192.0.2.2 192.0.2.1 gets replies" % pid
            in r.stdout), r.stdout
    assert "-I 192.0.2.2 192.0.2.1" in (box.standin / "pings").read_text()
    netns.wait_until(lambda: "rebind (SIGHUP)" in box.dpinger_log("VTI"),
                     10, "the rebind in dpinger's log")
    box.wait_answer("VTI", lambda line: netns.status_numbers(line)[2] < 100,
                    timeout=20)
    r = box.watchdog()
    assert "VTI: ok" in r.stdout, r.stdout
    assert box.pid("VTI") == pid and not gone(pid)
    assert box.starts() == ["VTI"]
    assert len([x for x in box.syslog() if "SIGHUP" in x]) == 1


def test_zombie_still_at_100_is_restarted_next_run(topo, make_box,
                                                   plain_binary):
    """Every send fails, rebind or not: SIGHUP first, a restart on the
    next run (the SIGHUP does not count against the rate limit)."""
    box, _ = zombie_box(make_box, topo, plain_binary, "all")
    pid = box.pid("VTI")
    r = box.watchdog()
    assert "VTI: sent SIGHUP (rebind) to pid %d" % pid in r.stdout, r.stdout
    assert box.pid("VTI") == pid
    r = box.watchdog()
    assert ("VTI: restarted (zombie, still 100 % loss after SIGHUP while "
            "ping -S 192.0.2.2 192.0.2.1 gets replies): SIGTERM, started"
            in r.stdout), r.stdout
    assert gone(pid) and box.pid("VTI") not in (None, pid)
    assert box.starts() == ["VTI", "VTI"]
    lines = [x for x in box.syslog() if "VTI: " in x]
    assert len(lines) == 2 and "SIGHUP" in lines[0] and \
        "restarted" in lines[1], lines


def test_real_outage_and_healthy_gateway_left_alone(topo, make_box,
                                                    plain_binary):
    """The monitor address goes away: 100 % loss and ping fails too.  No
    signal, no restart, nothing logged; the healthy gateway is ok."""
    netns.sh("ip", "addr", "add", "192.0.2.11/24", "dev", topo.gw_if,
             ns=topo.gw)
    box = make_box(topo, plain_binary)
    box.add_gateway("DOWN", netns.V4_GW, **FAST)
    box.add_gateway("UP", "192.0.2.11")
    topo.wait_path("v4")
    box.start_all()
    pids = box.pid("DOWN"), box.pid("UP")
    netns.sh("ip", "addr", "del", netns.V4_GW + "/24", "dev", topo.gw_if,
             ns=topo.gw)
    box.wait_answer("DOWN", lambda line: line.endswith(" 100"), timeout=20)
    for _ in range(2):
        r = box.watchdog()
        assert r.returncode == 0, r.stdout + r.stderr
        assert ("DOWN: 100 % loss and ping -S 192.0.2.2 192.0.2.1 fails "
                "too: a real outage, left alone" in r.stdout), r.stdout
        assert "UP: ok (UP " in r.stdout
    assert (box.pid("DOWN"), box.pid("UP")) == pids
    assert not any(gone(p) for p in pids)
    assert box.starts() == ["DOWN", "UP"]
    assert box.syslog() == []
    assert "rebind (SIGHUP)" not in box.dpinger_log("DOWN")
    assert "checked 2 gateways, 0 repaired" in (
        box.root / "var/run/dpinger-watchdog/last-run").read_text()


def test_overlapping_runs_repair_nothing_twice(topo, make_box, plain_binary):
    """Run A holds the lock while start_dpinger() is under way; run B
    starts then, says so and does nothing; A's repair is the only one."""
    box = two_gateways(make_box, topo, plain_binary)
    old = box.pid("WAN_DHCP")
    os.kill(old, signal.SIGKILL)
    netns.wait_until(lambda: gone(old), 10, "the monitor gone")
    gate = str(box.tmp / "gate")
    a = box.watchdog_bg(env={"STANDIN_GATE": gate})
    try:
        netns.wait_until(lambda: os.path.exists(gate + ".entered"), 30,
                         "run A inside start_dpinger()")
        b = box.watchdog(env={"STANDIN_GATE": gate})
        assert b.returncode == 0, b.stdout + b.stderr
        assert "another run holds" in b.stdout and "nothing done" in b.stdout
        assert "WAN_DHCP" not in b.stdout
    finally:
        pathlib.Path(gate + ".open").touch()
        out, err = a.communicate(timeout=60)
    assert a.returncode == 0, out + err
    assert "WAN_DHCP: started: no monitor" in out
    assert box.starts() == ["WAN_DHCP", "OTHER", "WAN_DHCP"]
    assert len([x for x in box.syslog() if "WAN_DHCP" in x]) == 1
    # And the lock is free again: the started monitor did not keep it.
    r = box.watchdog()
    assert "WAN_DHCP: ok" in r.stdout, r.stdout


def test_rate_limit_holds(topo, make_box, plain_binary):
    """A gateway that cannot start (its source address is not on the box,
    and -X makes that fatal): one attempt, then none for 5 minutes of the
    injected clock, then one again."""
    box = make_box(topo, plain_binary)
    box.add_gateway("BROKEN", netns.V4_GW, src="192.0.2.99",
                    test_args=["-X"])
    t0 = 1800000000
    r = box.watchdog(now=t0)
    assert "BROKEN: started: no monitor (no pid file): start failed" \
        in r.stdout, r.stdout
    for later in (60, 299):
        r = box.watchdog(now=t0 + later)
        assert ("BROKEN: missing (no pid file); held back: repaired %ds "
                "ago, next repair allowed in %ds" % (later, 300 - later)
                in r.stdout), r.stdout
    assert box.starts() == ["BROKEN"]
    assert len(box.syslog()) == 1
    r = box.watchdog(now=t0 + 300)
    assert "BROKEN: started: no monitor" in r.stdout, r.stdout
    assert box.starts() == ["BROKEN", "BROKEN"]
    assert len(box.syslog()) == 2
    repairs = (box.root / "conf/dpinger-selfheal/watchdog/repairs")
    assert len(repairs.read_text().splitlines()) == 2


# -- when it does nothing ----------------------------------------------------

@pytest.fixture
def bare_box():
    """A box without namespaces and without a real dpinger (a stand-in
    that prints the self-healing usage and fails to start)."""
    box = _make_box(None, None)
    box.add_gateway("WAN_DHCP", netns.V4_GW)
    try:
        yield box
    finally:
        box.cleanup()
        shutil.rmtree(box.tmp, ignore_errors=True)


@pytest.mark.parametrize("case", ["stock", "not-pfsense", "booting"])
def test_idle_says_why(bare_box, case):
    box = bare_box
    if case == "booting":
        box.env["STANDIN_BOOTING"] = "1"
        why = "pfSense is booting (platform_booting())"
    elif case == "stock":
        box.bin.write_text(STOCK_SCRIPT)
        why = "is not the self-healing dpinger (rolled back?)"
    else:
        (box.root / "etc/version").unlink()
        why = "this is not pfSense"
    for _ in range(2):
        r = box.watchdog()
        assert r.returncode == 0, r.stdout + r.stderr
        assert "dpinger-watchdog: idle: " in r.stdout and why in r.stdout
    # Said to syslog once, not every minute; nothing asked of pfSense.
    assert len(box.syslog()) == 1 and why in box.syslog()[0]
    assert box.starts() == []
    r = box.watchdog("-q")
    assert r.stdout == "" and r.returncode == 0
    r = box.watchdog("--status")
    assert "last run: " in r.stdout and why in r.stdout


def test_gateway_list_is_setup_gateways_monitors(bare_box):
    """The PHP list: monitoring disabled, no address, DHCP not bound yet
    and a monitor seen before are left out, as setup_gateways_monitor()
    does; no monitor set means the gateway's own address; link-local is
    scoped; a long stem is shortened like start_dpinger()'s."""
    box = bare_box
    box.gateways = []
    box.add_gateway("OFF", "192.0.2.21", monitor_disable=True)
    box.add_gateway("NOMON", "192.0.2.22", monitor="")
    box.add_gateway("DHCPWAIT", "192.0.2.23", src="0.0.0.0")
    box.add_gateway("NOADDR", "192.0.2.24", src="")
    box.add_gateway("DUP", "192.0.2.22")
    gw = box.add_gateway("LL", "fe80::1", ipprotocol="inet6")
    box.interfaces[gw["interface"]] = {"ll": "fe80::2"}
    long_name = "A_RATHER_LONG_GATEWAY_NAME_FOR_A_VTI"
    gw = box.add_gateway(long_name, "2001:db8:ffff:ffff::1",
                         ipprotocol="inet6")
    box.interfaces[gw["interface"]] = {"ipv6": "2001:db8:ffff:ffff::2"}
    box.save()
    r = box.watchdog("--list")
    assert r.returncode == 0, r.stdout + r.stderr
    run = box.root / "var/run"
    short = hashlib.md5(b"2001:db8:ffff:ffff::2").hexdigest()[:8]
    assert r.stdout.splitlines() == [
        "NOMON\t192.0.2.2\t192.0.2.22\t%s/dpinger_NOMON~192.0.2.2~192.0.2.22"
        % run,
        "LL\tfe80::2%%if_LL\tfe80::1%%if_LL\t"
        "%s/dpinger_LL~fe80::2%%if_LL~fe80::1%%if_LL" % run,
        "%s\t2001:db8:ffff:ffff::2\t2001:db8:ffff:ffff::1\t"
        "%s/dpinger_%s~%s~2001:db8:ffff:ffff::1" % (long_name, run,
                                                    long_name, short),
    ]


# -- install, status, remove -------------------------------------------------

def test_install_remove_status(bare_box):
    """watchdog-install.sh through dpinger-install.sh: one cron item every
    minute in the configuration (and crontab), a self-contained script in
    /usr/local/sbin; idempotent; --status shows the last run and repairs;
    --rollback removes the item, the script and its state."""
    box = bare_box
    script = box.root / "usr/local/sbin/dpinger-watchdog.sh"
    harness = ('. "%s"; PROG=test; ROOT=%s; . "%s"; watchdog_install'
               % (os.path.join(PFSENSE, "common.sh"), box.root, WD_INSTALL))

    def install():
        return subprocess.run(["sh", "-c", harness, INSTALLER],
                              env=box.env, capture_output=True, text=True,
                              timeout=60)
    r = install()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "installed the watchdog as /usr/local/sbin/dpinger-watchdog.sh" \
        in r.stdout
    config = json.loads((box.root / "conf/config.json").read_text())
    assert config["cron"]["item"] == [{
        "minute": "*", "hour": "*", "mday": "*", "month": "*", "wday": "*",
        "who": "root", "command": "/usr/local/sbin/dpinger-watchdog.sh -q"}]
    assert (box.root / "etc/crontab").read_text() == \
        "*\t*\t*\t*\t*\troot\t/usr/local/sbin/dpinger-watchdog.sh -q\n"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert '. "$COMMON"' not in text and "\nsay() {" in text
    writes = len(box.calls("write_config"))
    # Again: nothing changes, nothing is written.
    r = install()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "already installed" in r.stdout
    assert len(box.calls("write_config")) == writes
    assert len(box.calls("install_cron_job")) == 1
    # The installed copy runs on its own (no common.sh beside it).
    r = subprocess.run(["sh", str(script)], env=box.env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # --status through the installer.
    r = subprocess.run(["sh", INSTALLER, "--status"], env=box.env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "watchdog: /usr/local/sbin/dpinger-watchdog.sh, run by cron " \
        "every minute" in r.stdout
    assert "last run: " in r.stdout and "last repairs" in r.stdout
    # --rollback: pkg says nothing is locked; the stock binary is in place.
    box._tool(box.tmp / "tools" / "pkg", "#!/bin/sh\necho 0\n")
    box.bin.write_text(STOCK_SCRIPT)
    r = subprocess.run(["sh", INSTALLER, "--rollback"], env=box.env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "removed the watchdog" in r.stdout
    assert "nothing to roll back" in r.stdout
    config = json.loads((box.root / "conf/config.json").read_text())
    assert config["cron"]["item"] == []
    assert (box.root / "etc/crontab").read_text() == ""
    assert not script.exists()
    assert not (box.root / "var/run/dpinger-watchdog").exists()
    assert not (box.root / "conf/dpinger-selfheal/watchdog").exists()


def test_scripts_are_posix_sh():
    for path in (WATCHDOG, WD_INSTALL):
        for shell in ("sh", "dash", "bash"):
            if shutil.which(shell):
                r = subprocess.run([shell, "-n", path], capture_output=True,
                                   text=True, timeout=10)
                assert r.returncode == 0, (shell, path, r.stderr)
        if shutil.which("shellcheck"):
            r = subprocess.run(["shellcheck", "-s", "sh", path],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stdout + r.stderr
        if shutil.which("checkbashisms"):
            r = subprocess.run(["checkbashisms", "-f", path],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stdout + r.stderr


# -- the figure ---------------------------------------------------------------

def test_bench_one_run_eight_gateways(topo, make_box, plain_binary):
    """Eight healthy gateways: the time of one run (median of five)."""
    box = make_box(topo, plain_binary)
    for i in range(8):
        monitor = "192.0.2.%d" % (11 + i)
        netns.sh("ip", "addr", "add", monitor + "/24", "dev", topo.gw_if,
                 ns=topo.gw)
        box.add_gateway("GW%d" % (i + 1), monitor)
    topo.wait_path("v4")
    box.start_all()
    times = []
    for _ in range(5):
        began = time.monotonic()
        r = box.watchdog()
        times.append(time.monotonic() - began)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.count(": ok (GW") == 8, r.stdout
    assert box.syslog() == [] and len(box.starts()) == 8
    print("\nBENCH watchdog: one run, 8 healthy gateways: %.0f ms median "
          "(min %.0f, max %.0f, 5 runs)" % (
              statistics.median(times) * 1000, min(times) * 1000,
              max(times) * 1000))
