#!/bin/sh
#
# A per-gateway watchdog for pfSense's gateway monitors (dpinger): what no
# process can heal from inside.  Cron runs it once a minute.
#
# usage: dpinger-watchdog.sh [-q]
#        dpinger-watchdog.sh --status | --list
#
# One run asks pfSense which gateways it monitors (the list that
# setup_gateways_monitor() feeds to start_dpinger()) and checks each one:
# a pid file, a live process that is dpinger, a status socket that answers
# within 2 s with a well-formed line for that gateway.  It repairs only
# what is broken, one gateway at a time:
#   missing  (no pid file, or its process is gone or is not dpinger):
#            started through pfSense's own start_dpinger();
#   hung     (the socket does not answer, or not with a status line):
#            SIGTERM, SIGKILL after 3 s if still there, then started;
#   zombie   (100 % loss while `ping -c 3 -S <src> <monitor>` gets
#            replies): SIGHUP (the self-healing dpinger rebinds), and a
#            restart if it is still at 100 % on the next run.  A real
#            outage (ping fails too) is left alone.
# Every repair goes to syslog (logger -t dpinger-watchdog) with the
# gateway's name and the reason.  Starts and restarts are limited to one
# per gateway per 5 minutes, so a gateway that cannot start does not
# flap; SIGHUP has its own limit, one per gateway per 5 minutes.  A
# gateway that answers is never touched, and all monitors are never
# restarted together.
#
# It does nothing, and says why, on a box that is not pfSense, where
# /usr/local/bin/dpinger is not the self-healing one (rolled back), or
# while pfSense boots (it starts every monitor itself then).
# Runs never overlap: the second waits for nobody, it says so and exits.
#
# -q: nothing on stdout (cron); syslog and the state files still say it all.
# --status: the last run and the last repairs.
# --list: the gateways it checks (name, source, monitor, pid/socket stem).
#
# State: run-time state in /var/run/dpinger-watchdog/ (last run, rate-limit
# stamps, SIGHUP marks): it may go at a reboot (RAM disks), when every
# monitor restarts anyway.  The last repairs in
# /conf/dpinger-selfheal/watchdog/repairs, which survives a reboot and is
# written only when something was repaired.
#
# For tests: every absolute path is under $ROOT (empty on pfSense); php,
# nc, ping, logger, ps are found through PATH; DPINGER_WATCHDOG_NOW (epoch
# seconds) stands in for the clock of the rate limit.

set -fu

# Cron's PATH may lack /usr/local, where php lives.
PATH=$PATH:/usr/local/sbin:/usr/local/bin
export PATH

ROOT=${ROOT:-}
PROG=dpinger-watchdog
BIN=$ROOT/usr/local/bin/dpinger
VERSION_FILE=$ROOT/etc/version
PFSSH=$ROOT/usr/local/sbin/pfSsh.php
RUN_DIR=$ROOT/var/run/dpinger-watchdog
LOCK=$ROOT/var/run/dpinger-watchdog.lock
KEEP_DIR=$ROOT/conf/dpinger-selfheal/watchdog
LAST_RUN=$RUN_DIR/last-run
REPAIRS=$KEEP_DIR/repairs
STATUS_WAIT=2		# seconds a status socket has to answer
KILL_WAIT=3		# seconds between SIGTERM and SIGKILL
START_WAIT=5		# seconds a started monitor has to answer
HOLD_OFF=300		# seconds between two repairs of one gateway
KEEP_REPAIRS=20		# lines kept in the repairs file
TAB=$(printf '\t')

# >>> common.sh: say, warn, read_status (the installer puts the file here)
COMMON=$(dirname "$0")/common.sh
if [ ! -r "$COMMON" ]; then
	echo "$PROG: $COMMON is missing: copy it beside this script" >&2
	exit 2
fi
# shellcheck source=port/pfsense/common.sh disable=SC1091
. "$COMMON"
# <<< common.sh

# ------------------------------------------------------------------ #
# pfSense, through its PHP                                            #
# ------------------------------------------------------------------ #

# The gateways setup_gateways_monitor() (gwlb.inc) starts, each with the
# source address it computes for start_dpinger() ('gwifip', which
# return_gateways_array() does not carry): monitoring enabled, a monitor
# address (the gateway's own when none is set), a source address on the
# interface (not 0.0.0.0, still waiting for DHCP), link-local addresses
# scoped, and each monitor address once.  wd_prefix() is start_dpinger()'s
# pid file and socket stem, shortened the same way past 95 bytes.
# shellcheck disable=SC2016
PHP_GATEWAYS='
ini_set("display_errors", "stderr");
require_once("config.inc");
require_once("functions.inc");
require_once("gwlb.inc");
function wd_gateways() {
	$out = array();
	$seen = array();
	$all = return_gateways_array();
	if (!is_array($all))
		return $out;
	foreach ($all as $name => $gw) {
		if (isset($gw["monitor_disable"]))
			continue;
		if (empty($gw["monitor"]) || !is_ipaddr($gw["monitor"])) {
			if (!is_ipaddr($gw["gateway"]))
				continue;
			$gw["monitor"] = $gw["gateway"];
		}
		if (in_array($gw["monitor"], $seen))
			continue;
		if ($gw["ipprotocol"] == "inet") {
			$src = find_interface_ip($gw["interface"], true);
			if (!is_ipaddrv4($src) || $src == "0.0.0.0")
				continue;
		} else if ($gw["ipprotocol"] == "inet6") {
			if (is_linklocal($gw["monitor"])) {
				$src = find_interface_ipv6_ll($gw["interface"],
				    true);
				if (get_ll_scope($src) == "")
					$src .= "%" . $gw["interface"];
			} else
				$src = find_interface_ipv6($gw["interface"],
				    true);
			if (!is_ipaddrv6($src))
				continue;
		} else
			continue;
		$seen[] = $gw["monitor"];
		if (is_linklocal($gw["monitor"]) &&
		    get_ll_scope($gw["monitor"]) == "")
			$gw["monitor"] .= "%" . $gw["interface"];
		$gw["gwifip"] = $src;
		$out[$name] = $gw;
	}
	return $out;
}
function wd_prefix($gw) {
	global $g;
	$p = "{$g["varrun_path"]}/dpinger_{$gw["name"]}~";
	if (strlen("$p{$gw["gwifip"]}~{$gw["monitor"]}") > 95)
		return $p . substr(md5($gw["gwifip"]), 0, 8) .
		    "~{$gw["monitor"]}";
	return "$p{$gw["gwifip"]}~{$gw["monitor"]}";
}
'
# One line per gateway: name, source, monitor, pid/socket stem (tabs).
# Exit 4 while pfSense boots: it starts every monitor itself then.
# shellcheck disable=SC2016
PHP_LIST=$PHP_GATEWAYS'
if (function_exists("platform_booting") && platform_booting())
	exit(4);
foreach (wd_gateways() as $gw)
	echo "{$gw["name"]}\t{$gw["gwifip"]}\t{$gw["monitor"]}\t" .
	    wd_prefix($gw) . "\n";
exit(0);
'
# start_dpinger() for the one gateway named in DPINGER_WATCHDOG_GW: it
# stops an instance still named by the pid file, then starts dpinger with
# the gateway's own settings, exactly as pfSense does.
# shellcheck disable=SC2016
PHP_START=$PHP_GATEWAYS'
$gws = wd_gateways();
$name = getenv("DPINGER_WATCHDOG_GW");
if (!isset($gws[$name]))
	exit(3);
exit(start_dpinger($gws[$name]) === 0 ? 0 : 1);
'

# ------------------------------------------------------------------ #
# Small helpers                                                       #
# ------------------------------------------------------------------ #

now() {
	echo "${DPINGER_WATCHDOG_NOW:-$(date +%s)}"
}

is_uint() {
	case "$1" in
	""|*[!0-9]*) return 1 ;;
	esac
	return 0
}

# To syslog, and to stdout unless -q.
log() {
	say "$*"
	logger -t "$PROG" -p daemon.notice -- "$*" 2>/dev/null
}

# Write a small file atomically (a reader sees the old or the new one):
# file $1, its text the other arguments.
put() {
	_file=$1
	shift
	printf '%s\n' "$*" >"$_file.new.$$" && mv -f "$_file.new.$$" "$_file"
}

# "stat comm" of a process, or nothing when it is gone.  A zombie counts
# as gone: it holds no socket, and only its parent can reap it.
proc_of() {
	# shellcheck disable=SC2046
	set -- $(ps -o stat= -o comm= -p "$1" 2>/dev/null)
	[ $# -ge 2 ] || return 1
	case "$1" in
	Z*) return 1 ;;
	esac
	echo "$1 $2"
}

alive() {
	proc_of "$1" >/dev/null
}

# Wait up to $2 seconds (in tenths) for process $1 to go.
wait_gone() {
	_n=$(($2 * 10))
	while alive "$1"; do
		[ "$_n" -gt 0 ] || return 1
		sleep 0.1
		_n=$((_n - 1))
	done
	return 0
}

# Does the path work?  `ping -c 3 -S src monitor` gets a reply within 5 s
# (three echo requests a second apart; a real outage must not hold the
# run for long).  Replies are counted from the output: ping cut short by
# timeout, or missing one reply of three, still saw the path work.
ping_works() {
	_src=$1
	_mon=$2
	case "$_mon" in
	*:*)
		if command -v ping6 >/dev/null 2>&1; then
			set -- ping6
		else
			set -- ping -6
		fi
		;;
	*) set -- ping ;;
	esac
	if command -v timeout >/dev/null 2>&1; then
		set -- timeout 5 "$@"
	fi
	"$@" -c 3 -S "$_src" "$_mon" 2>/dev/null | grep -q " bytes from "
}

# The self-healing dpinger lists -X in its usage; the stock one does not.
selfheal_installed() {
	[ -x "$BIN" ] || return 1
	case "$("$BIN" -h 2>&1)" in
	*"[-X]"*) return 0 ;;
	esac
	return 1
}

# ------------------------------------------------------------------ #
# Repairs                                                             #
# ------------------------------------------------------------------ #

# Seconds since the stamp in file $1 was written, or nothing.
age_of() {
	[ -f "$1" ] || return 1
	_t=$(cut -d ' ' -f 1 "$1" 2>/dev/null)
	is_uint "$_t" || return 1
	echo $(($(now) - _t))
}

# True when gateway $1 was repaired less than HOLD_OFF seconds ago; the
# outcome is in $held.
held_back() {
	held=""
	_age=$(age_of "$RUN_DIR/repaired.$1") || return 1
	[ "$_age" -lt "$HOLD_OFF" ] || return 1
	held="held back: repaired ${_age}s ago, next repair allowed in"
	held="$held $((HOLD_OFF - _age))s"
	return 0
}

# A repair: logged, remembered in the repairs file (trimmed), counted.
record() {
	log "$1"
	mkdir -p "$KEEP_DIR" 2>/dev/null || return 0
	{
		[ -f "$REPAIRS" ] && tail -n $((KEEP_REPAIRS - 1)) "$REPAIRS"
		echo "$(date '+%Y-%m-%d %H:%M:%S') $1"
	} >"$REPAIRS.new.$$" && mv -f "$REPAIRS.new.$$" "$REPAIRS"
	repaired=$((repaired + 1))
}

# Start gateway $1 through start_dpinger(), then wait for its pid file,
# its process and a status line.  The outcome is in $outcome.
start_gateway() {
	_name=$1
	_prefix=$2
	DPINGER_WATCHDOG_GW=$_name php -r "$PHP_START" \
	    </dev/null >"$RUN_DIR/start.out" 2>&1
	_rc=$?
	if [ "$_rc" -ne 0 ]; then
		outcome="start failed (start_dpinger, php exit $_rc)"
		return 1
	fi
	_until=$(($(date +%s) + START_WAIT))
	while :; do
		_pid=$(head -n 1 "$_prefix.pid" 2>/dev/null)
		if is_uint "$_pid" && alive "$_pid" && well_formed "$_name" \
		    "$(read_status "$_prefix.sock" "$STATUS_WAIT")"; then
			outcome="started, pid $_pid answers"
			return 0
		fi
		if [ "$(date +%s)" -ge "$_until" ]; then
			outcome="started, but no answer within ${START_WAIT}s"
			return 1
		fi
		sleep 0.1
	done
}

# Stop process $1 (pid file $2): SIGTERM, SIGKILL after KILL_WAIT seconds.
# The pid file goes with a process that could not remove it.
stop_pid() {
	_how="SIGTERM"
	kill -TERM "$1" 2>/dev/null
	if ! wait_gone "$1" "$KILL_WAIT"; then
		_how="SIGTERM, SIGKILL after ${KILL_WAIT}s"
		kill -KILL "$1" 2>/dev/null
		if ! wait_gone "$1" 2; then
			outcome="pid $1 survives SIGKILL"
			return 1
		fi
	fi
	outcome=$_how
	forget_pidfile "$2" "$1"
	return 0
}

forget_mark() {
	[ ! -e "$mark" ] || rm -f "$mark"
}

# Remove pid file $1 if it still names pid $2: a stale one would make
# pfSense's stop_dpinger() signal whatever process has that pid now.
forget_pidfile() {
	[ "$(head -n 1 "$1" 2>/dev/null)" = "$2" ] && rm -f "$1"
}

# ------------------------------------------------------------------ #
# One gateway                                                         #
# ------------------------------------------------------------------ #

# A status line for gateway $1: "<name> <avg> <stddev> <loss>", numbers.
well_formed() {
	case "$2" in
	"$1 "*) ;;
	*) return 1 ;;
	esac
	# shellcheck disable=SC2086
	set -- ${2#"$1 "}
	[ $# -eq 3 ] && is_uint "$1" && is_uint "$2" && is_uint "$3"
}

# Check one gateway and repair it if needed; one line about it in $verdict.
check_gateway() {
	name=$1
	src=$2
	mon=$3
	prefix=$4
	pidf=$prefix.pid
	mark=$RUN_DIR/hup.$name

	# Missing: no pid file, no process, or not dpinger.  (Builtins where
	# they do: a run costs process start-ups, per gateway.)
	why=""
	pid=""
	[ -e "$pidf" ] && { IFS= read -r pid <"$pidf"; } 2>/dev/null
	if [ ! -e "$pidf" ]; then
		why="no pid file"
	elif ! is_uint "$pid"; then
		why="unreadable pid file"
	elif ! info=$(proc_of "$pid"); then
		why="process $pid is gone"
	elif [ "${info#* }" != dpinger ]; then
		why="pid $pid is ${info#* }, not dpinger"
	fi
	if [ -n "$why" ]; then
		forget_mark
		if held_back "$name"; then
			verdict="missing ($why); $held"
			return
		fi
		put "$RUN_DIR/repaired.$name" "$(now)"
		is_uint "$pid" && forget_pidfile "$pidf" "$pid"
		start_gateway "$name" "$prefix"
		verdict="started: no monitor ($why): $outcome"
		record "$name: $verdict"
		return
	fi

	# Hung: no status line within STATUS_WAIT seconds.
	line=$(read_status "$prefix.sock" "$STATUS_WAIT")
	why=""
	if [ -z "$line" ]; then
		why="status socket does not answer within ${STATUS_WAIT}s"
	elif ! well_formed "$name" "$line"; then
		why="status socket answers '$line', not a status line"
	fi
	if [ -n "$why" ]; then
		restart_gateway "hung, $why"
		return
	fi

	# Zombie: 100 % loss while the path works.
	# shellcheck disable=SC2086
	set -- ${line#"$name "}
	loss=$3
	if [ "$loss" -lt 100 ]; then
		forget_mark
		verdict="ok ($line)"
		return
	fi
	if ! ping_works "$src" "$mon"; then
		forget_mark
		verdict="100 % loss and ping -S $src $mon fails too:"
		verdict="$verdict a real outage, left alone"
		return
	fi
	if [ "$(cut -d ' ' -f 2 "$mark" 2>/dev/null)" = "$pid" ]; then
		restart_gateway "zombie, still 100 % loss after SIGHUP while" \
		    "ping -S $src $mon gets replies"
		return
	fi
	_age=$(age_of "$mark") || _age=$HOLD_OFF
	if [ "$_age" -lt "$HOLD_OFF" ]; then
		verdict="100 % loss while ping works; held back: SIGHUP sent"
		verdict="$verdict ${_age}s ago"
		return
	fi
	put "$mark" "$(now) $pid"
	kill -HUP "$pid" 2>/dev/null
	verdict="sent SIGHUP (rebind) to pid $pid: zombie, 100 % loss while"
	verdict="$verdict ping -S $src $mon gets replies"
	record "$name: $verdict"
}

# Stop the gateway's process and start it again (rate-limited); $* is why.
restart_gateway() {
	if held_back "$name"; then
		verdict="$*; $held"
		return
	fi
	put "$RUN_DIR/repaired.$name" "$(now)"
	forget_mark
	if stop_pid "$pid" "$pidf"; then
		_stopped=$outcome
		start_gateway "$name" "$prefix"
		verdict="restarted ($*): $_stopped, $outcome"
	else
		verdict="restart failed ($*): $outcome"
	fi
	record "$name: $verdict"
}

# ------------------------------------------------------------------ #
# A run                                                               #
# ------------------------------------------------------------------ #

# Run again under the lock (lockf on FreeBSD, flock on Linux), or say
# that another run holds it.  75 is EX_TEMPFAIL: the lock is taken.
locked_rerun() {
	if command -v lockf >/dev/null 2>&1; then
		DPINGER_WATCHDOG_LOCKED=$LOCK lockf -k -s -t 0 "$LOCK" \
		    /bin/sh "$0" "$@"
	elif command -v flock >/dev/null 2>&1; then
		DPINGER_WATCHDOG_LOCKED=$LOCK flock -n -o -E 75 "$LOCK" \
		    /bin/sh "$0" "$@"
	else
		warn "neither lockf(1) nor flock(1) found: not running unlocked"
		exit 1
	fi
	_rc=$?
	if [ "$_rc" -eq 75 ]; then
		say "another run holds $LOCK: nothing done"
		exit 0
	fi
	exit "$_rc"
}

# Nothing to do here: say why, to syslog only when the reason is new.
idle() {
	_before=$(head -n 1 "$LAST_RUN" 2>/dev/null)
	put "$LAST_RUN" "$(now) $(date '+%Y-%m-%d %H:%M:%S') idle: $*"
	case "$_before" in
	*" idle: $*") say "idle: $*" ;;
	*) log "idle: $*" ;;
	esac
	exit 0
}

do_run() {
	mkdir -p "$RUN_DIR" || {
		warn "cannot create $RUN_DIR"
		exit 1
	}
	if [ "${DPINGER_WATCHDOG_LOCKED:-}" != "$LOCK" ]; then
		locked_rerun "$@"
	fi
	if [ ! -f "$VERSION_FILE" ] || [ ! -f "$PFSSH" ]; then
		idle "this is not pfSense ($VERSION_FILE or $PFSSH missing)"
	fi
	if ! selfheal_installed; then
		idle "$BIN is not the self-healing dpinger (rolled back?)"
	fi
	for _cmd in php nc ps; do
		command -v "$_cmd" >/dev/null 2>&1 ||
		    idle "$_cmd not found in PATH"
	done
	started=$(now)
	list=$RUN_DIR/gateways
	php -r "$PHP_LIST" </dev/null >"$list.new" 2>/dev/null
	_rc=$?
	if [ "$_rc" -eq 4 ]; then
		idle "pfSense is booting (platform_booting())"
	elif [ "$_rc" -ne 0 ]; then
		log "cannot list the gateways (php return_gateways_array())"
		put "$LAST_RUN" "$started $(date '+%Y-%m-%d %H:%M:%S')" \
		    "error: cannot list the gateways"
		exit 1
	fi
	mv -f "$list.new" "$list"
	repaired=0
	total=0
	report=""
	while IFS="$TAB" read -r _name _src _mon _prefix _rest <&3; do
		case "$_name$_src$_mon" in
		""|*[!A-Za-z0-9_.:%-]*)
			warn "ignoring a gateway line from php: $_name"
			continue
			;;
		esac
		case "$_prefix" in
		/*) ;;
		*) continue ;;
		esac
		total=$((total + 1))
		check_gateway "$_name" "$_src" "$_mon" "$_prefix"
		say "$_name: $verdict"
		report="$report$_name: $verdict
"
	done 3<"$list"
	put "$LAST_RUN" "$started $(date '+%Y-%m-%d %H:%M:%S') checked" \
	    "$total gateways, $repaired repaired
$report"
	exit 0
}

do_status() {
	if [ -f "$LAST_RUN" ]; then
		_first=$(head -n 1 "$LAST_RUN")
		_t=${_first%% *}
		_ago=""
		is_uint "$_t" && _ago=" ($(($(now) - _t))s ago)"
		say "last run: ${_first#* }$_ago"
		tail -n +2 "$LAST_RUN" | while IFS= read -r _l; do
			[ -n "$_l" ] && say "  $_l"
		done
	else
		say "last run: none yet"
	fi
	if [ -s "$REPAIRS" ]; then
		say "last repairs (newest last, $REPAIRS):"
		while IFS= read -r _l; do
			say "  $_l"
		done <"$REPAIRS"
	else
		say "last repairs: none"
	fi
	exit 0
}

case "${1:-}" in
--status) do_status ;;
--list) exec php -r "$PHP_LIST" </dev/null ;;
-q)
	exec >/dev/null
	do_run -q
	;;
"") do_run ;;
*)
	echo "usage: $0 [-q] | --status | --list" >&2
	exit 2
	;;
esac
