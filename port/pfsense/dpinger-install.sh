#!/bin/sh
#
# Install the self-healing dpinger on pfSense or OPNsense in place of the
# stock one, and take it out again.
#
# usage: dpinger-install.sh [--install] [NEW_BINARY]
#        dpinger-install.sh --rollback
#        dpinger-install.sh --status
#        dpinger-install.sh --mbuf-guard [--force | --rollback | --status]
#
# --install (the default) does what a person would do by hand, one step at
# a time, each step a no-op when already done:
#   a. preflight: this is pfSense (/etc/version, pfSsh.php) or OPNsense
#      (opnsense-version), the stock binary is there, the new one runs here
#      and is the self-healing one; note which gateways are monitored now;
#   b. save the stock binary beside it, as dpinger.stock, with its SHA-256
#      and its package's version in /conf/dpinger-selfheal/ (/conf survives
#      pfSense's RAM disks, /var does not).  The copy is kept, unless the
#      binary on disk is a different stock one: the package was upgraded
#      while unlocked, and the new stock binary is saved in its place;
#   c. install the new binary atomically (temporary file in the same
#      directory, mode 555, rename);
#   d. verify the installed binary;
#   e. pkg lock dpinger, so that upgrades do not put the stock binary back;
#   f. restart gateway monitoring the platform's way (pfSense:
#      setup_gateways_monitor(); OPNsense: pluginctl -c monitor);
#   g. verify that every gateway monitored in (a) runs again and answers
#      with a measured status line.
# A failing step undoes what this run did, so the box is left as it was;
# a failure in f or g restores the stock binary and restarts monitoring
# with it.
#
# --rollback restores the stock binary byte for byte (checked against the
# saved SHA-256), unlocks the package, restarts and verifies monitoring,
# then removes the saved copy.  Run again, it says so and does nothing.
#
# --status shows what is installed, the saved copy, the lock, whether the
# stock package changed since it was saved, and every status socket's
# answer.
#
# --mbuf-guard (first) runs mbuf-guard.sh from this directory with the
# other arguments: the pfSense 2.8 `netstat -m` panic guard.
#
# On pfSense, install also installs the gateway watchdog (watchdog-install.sh
# beside this script), rollback removes it and status shows it; both the
# watchdog and the mbuf guard are pfSense-only and left out on OPNsense.
#
# For tests: every absolute path is under $ROOT (empty on the firewall),
# and pkg, php, pfSsh.php, pluginctl, nc are found through PATH.

set -u

ROOT=${ROOT:-}
PROG=dpinger-install
BIN_DIR=$ROOT/usr/local/bin
BIN=$BIN_DIR/dpinger
STOCK=$BIN_DIR/dpinger.stock
VERIFY_TIMEOUT=${DPINGER_VERIFY_TIMEOUT:-30}
PKG_NAME=dpinger

# say, warn, sha256_of, atomic_copy, the state directory, platform_detect
# and the monitor helpers live beside this script.
COMMON=$(dirname "$0")/common.sh
if [ ! -r "$COMMON" ]; then
	echo "$PROG: $COMMON is missing: copy it beside this script" >&2
	exit 2
fi
# shellcheck source=port/pfsense/common.sh disable=SC1091
. "$COMMON"
# The gateway watchdog's install, remove and status, also beside it.
WATCHDOG_INSTALL=$(dirname "$0")/watchdog-install.sh
# shellcheck source=port/pfsense/watchdog-install.sh disable=SC1091
. "$WATCHDOG_INSTALL"

STATE_DIR=$SELFHEAL_STATE
STOCK_SUM=$STATE_DIR/stock.sha256
STOCK_VERSION=$STATE_DIR/stock.version

# What this run changed, so that a failure can undo exactly that.
made_state_dir=no
saved_stock=no
refreshed_stock=no
wrote_version=no
replaced_binary=no
locked_pkg=no
# The gateways monitored before the swap: the set to find again after.
monitors_before=""

usage() {
	echo "usage: $0 [--install] [NEW_BINARY] | --rollback | --status" >&2
	echo "       $0 --mbuf-guard [--force | --rollback | --status]" >&2
	exit 2
}

# The usage line of a dpinger binary (it prints usage and exits 1 on -h;
# 3.3 has no -h but prints usage for an unknown flag all the same).
usage_of() {
	# stderr into the pipe, stdout away: on purpose, in this order.
	# shellcheck disable=SC2069
	"$1" -h 2>&1 >/dev/null
	return 0
}

# True when the binary runs here and prints dpinger's usage with exit 1.
runs_as_dpinger() {
	_out=$("$1" -h 2>&1 >/dev/null)
	_rc=$?
	[ "$_rc" -eq 1 ] || return 1
	case "$_out" in
	"usage: dpinger "*) return 0 ;;
	esac
	return 1
}

# The self-healing dpinger is the one with -X (and -F, -W) in its usage.
is_selfheal() {
	runs_as_dpinger "$1" || return 1
	case "$(usage_of "$1")" in
	*"[-X]"*"[-F fail_count]"*"[-W silence_time]"*) return 0 ;;
	esac
	return 1
}

saved_sum() {
	saved_sum_of "$STOCK_SUM"
}

# The stock package's version when its binary was saved; empty when an
# older installer saved it without one.
saved_version() {
	[ -f "$STOCK_VERSION" ] && head -n 1 "$STOCK_VERSION"
	return 0
}

pkg_locked() {
	[ "$(pkg query '%k' "$PKG_NAME" 2>/dev/null)" = 1 ]
}

# The installed package's version, from the local package database.
pkg_version() {
	pkg query '%v' "$PKG_NAME" 2>/dev/null | head -n 1
}

# The version the repository offers, from the catalogue already on the
# box (-U: no fetch); empty when there is no catalogue.
repo_version() {
	pkg rquery -U '%v' "$PKG_NAME" 2>/dev/null | head -n 1
}

upgrader() {
	if [ "$PLATFORM" = opnsense ]; then
		echo "the firmware update"
	else
		echo "pfSense-upgrade"
	fi
}

# ------------------------------------------------------------------ #
# Gateway monitoring                                                  #
# ------------------------------------------------------------------ #

# pfSense: setup_gateways_monitor() (gwlb.inc) stops every dpinger and
# starts one per monitored gateway, as pfSense does after any gateway
# change; the service playback is the same call through pfSense's service
# layer.  OPNsense: the "monitor" configure hook kills every
# /var/run/dpinger_*.pid and starts the configured monitors again.
# pfSense also drops the ICMP states to each monitor address, so that
# the probes follow the monitor's host route again.
restart_monitoring() {
	if [ "$PLATFORM" = opnsense ]; then
		say "restarting gateway monitoring (pluginctl -c monitor)"
		pluginctl -c monitor >/dev/null
		return
	fi
	say "restarting gateway monitoring (setup_gateways_monitor)"
	_php='require_once("config.inc"); require_once("functions.inc");'
	_php="$_php"' require_once("gwlb.inc"); setup_gateways_monitor();'
	if php -r "$_php" >/dev/null; then
		return 0
	fi
	warn "php setup_gateways_monitor() failed; trying pfSsh.php playback"
	pfSsh.php playback svc restart dpinger >/dev/null
}

# Pid files naming no process: gateways pfSense meant to monitor, whose
# dpinger died or never came up.
say_dead_monitors() {
	for _pidf in "$MONITOR_RUN_DIR"/dpinger_*.pid; do
		[ -e "$_pidf" ] && ! monitor_alive "$_pidf" &&
		    say "not running: $(monitor_gateway "$_pidf")" \
		    "($(basename "$_pidf") names no process)"
	done
	return 0
}

# The gateways monitored now, before anything changes: after the restart
# each of them must run again and answer.
record_monitors() {
	monitors_before=$(monitors_running)
	say_dead_monitors
	if [ -z "$monitors_before" ]; then
		say "no gateway is monitored now (no running dpinger_*.pid" \
		    "in $MONITOR_RUN_DIR): going on, with nothing to verify" \
		    "after the restart"
	else
		say "monitored now: $monitors_before"
	fi
}

# Every gateway of monitors_before must have a pid file naming a live
# process and a status socket answering with a measured line, within
# VERIFY_TIMEOUT seconds.  "0 0" (no deviation, no loss) is pfSense's "not
# ready yet": wait for a measurement, then fail.  A socket without a pid
# file is a leftover that no process owns; it is named, not counted.
verify_monitoring() {
	_deadline=$(($(date +%s) + VERIFY_TIMEOUT))
	while :; do
		_bad=""
		_n=0
		for _gw in $monitors_before; do
			_n=$((_n + 1))
			_pidf=$(monitor_pidfile "$_gw")
			if [ -z "$_pidf" ]; then
				_bad="$_bad $_gw(not started)"
				continue
			fi
			if ! monitor_alive "$_pidf"; then
				_bad="$_bad $_gw(not running)"
				continue
			fi
			_line=$(read_status "${_pidf%.pid}.sock")
			if [ -z "$_line" ]; then
				_bad="$_bad $_gw(no status)"
			elif ! status_line_ok "$_line"; then
				_bad="$_bad $_gw(bad status '$_line')"
			elif ! status_measured "$_line"; then
				_bad="$_bad $_gw(not ready: '$_line')"
			fi
		done
		[ -z "$_bad" ] && break
		if [ "$(date +%s)" -ge "$_deadline" ]; then
			warn "not answering after ${VERIFY_TIMEOUT}s:$_bad"
			return 1
		fi
		sleep 1
	done
	for _sock in "$MONITOR_RUN_DIR"/dpinger_*.sock; do
		[ -e "$_sock" ] && [ ! -e "${_sock%.sock}.pid" ] &&
		    say "ignoring $(basename "$_sock"): no pid file, no process"
	done
	for _gw in $(monitors_running); do
		case " $monitors_before " in
		*" $_gw "*) ;;
		*) say "also running now: $_gw (not monitored before)" ;;
		esac
	done
	say_dead_monitors
	if [ "$_n" -eq 0 ]; then
		say "no gateway to verify"
	else
		say "all $_n gateway monitors answer with a measured status:" \
		    "$monitors_before"
	fi
	return 0
}

# Every monitor's pid file and socket, with its answer, for --status.
show_monitors() {
	for _pidf in "$MONITOR_RUN_DIR"/dpinger_*.pid; do
		[ -e "$_pidf" ] || continue
		monitor_alive "$_pidf" ||
		    say "$(basename "$_pidf"): process not running"
	done
	for _sock in "$MONITOR_RUN_DIR"/dpinger_*.sock; do
		[ -e "$_sock" ] || continue
		_line=$(read_status "$_sock")
		_note=""
		if [ ! -e "${_sock%.sock}.pid" ]; then
			_note=" (no pid file: a leftover)"
		elif [ -n "$_line" ] && ! status_measured "$_line"; then
			_note=" (not ready yet)"
		fi
		say "$(basename "$_sock"): ${_line:-(no answer)}$_note"
	done
	[ -n "$(monitors_running)" ] || say "no gateway monitor is running"
}

# ------------------------------------------------------------------ #
# Stock package upgrades                                              #
# ------------------------------------------------------------------ #

# What pkg says about the stock package against the saved copy.  Locked,
# the package keeps its version through an upgrade, and pfSense-upgrade
# hides pkg's "locked" notice: a newer stock dpinger in the repository is
# the only trace.  Unlocked, the upgrade replaces the binary (ours) with
# the new stock one and the package's version changes.
report_upgrades() {
	[ -f "$STOCK" ] || return 0
	_saved=$(saved_version)
	_now=$(pkg_version)
	_repo=$(repo_version)
	if [ -z "$_saved" ]; then
		say "stock package version of the saved copy: unknown" \
		    "(saved by an older installer)"
	elif [ -n "$_now" ] && [ "$_now" != "$_saved" ]; then
		say "UPGRADED: package $PKG_NAME is $_now now; the saved" \
		    "stock copy is $_saved's"
		if is_selfheal "$BIN"; then
			say "  $BIN is the self-healing one: a --rollback" \
			    "puts back $_saved's binary; run 'pkg install" \
			    "-f $PKG_NAME' after it to get $_now's"
		else
			say "  $BIN is the upgraded stock binary: install" \
			    "again to save it and put the self-healing one back"
		fi
	fi
	if [ -n "$_repo" ] && [ -n "$_now" ] && [ "$_repo" != "$_now" ] &&
	    pkg_locked; then
		say "HELD BACK: the repository has $PKG_NAME $_repo; $_now" \
		    "is installed and locked, so $(upgrader) skipped it" \
		    "without a word.  To take it: '$0 --rollback'," \
		    "'pkg upgrade $PKG_NAME', then install again"
	fi
}

# ------------------------------------------------------------------ #
# Install                                                             #
# ------------------------------------------------------------------ #

# Undo what this run did, newest first, and say what was undone.
undo_run() {
	if [ "$locked_pkg" = yes ]; then
		if pkg unlock -y "$PKG_NAME" >/dev/null; then
			say "undone: pkg lock"
		else
			warn "could not undo the pkg lock: run" \
			    "pkg unlock -y $PKG_NAME"
		fi
	fi
	if [ "$replaced_binary" = yes ]; then
		if restore_original "$STOCK" "$BIN" "$STOCK_SUM"; then
			say "undone: stock binary restored"
		else
			warn "could not restore $BIN from $STOCK:" \
			    "copy it back by hand"
		fi
	fi
	if [ "$wrote_version" = yes ]; then
		rm -f "$STOCK_VERSION"
	fi
	if [ "$refreshed_stock" = yes ]; then
		rm -f "$STOCK" "$STOCK_SUM" "$STOCK_VERSION"
		for _f in "$STOCK" "$STOCK_SUM" "$STOCK_VERSION"; do
			[ -e "$_f.prev" ] && mv -f "$_f.prev" "$_f"
		done
		say "undone: the older saved copy is back"
	fi
	if [ "$saved_stock" = yes ]; then
		rm -f "$STOCK" "$STOCK_SUM" "$STOCK_VERSION"
		say "undone: saved copy removed"
	fi
	if [ "$made_state_dir" = yes ]; then
		state_dir_drop "$STATE_DIR"
	fi
}

preflight() {
	require_root
	platform_detect
	case "$PLATFORM" in
	pfsense) _cmds="pkg php nc" ;;
	opnsense) _cmds="pkg pluginctl nc" ;;
	*)
		warn "this is not pfSense ($ROOT/etc/version or" \
		    "$ROOT/usr/local/sbin/pfSsh.php missing) nor OPNsense" \
		    "($ROOT/usr/local/sbin/opnsense-version missing)"
		exit 1
		;;
	esac
	for _cmd in $_cmds; do
		if ! command -v "$_cmd" >/dev/null 2>&1; then
			warn "$_cmd not found in PATH"
			exit 1
		fi
	done
	if ! sha256_of "$COMMON" >/dev/null 2>&1; then
		warn "neither sha256 nor sha256sum found"
		exit 1
	fi
	say "$PLATFORM_NAME"
}

# a. The binaries, and what OPNsense will say about them.
check_binaries() {
	if [ ! -f "$BIN" ]; then
		warn "no stock binary at $BIN: is the dpinger package" \
		    "installed?"
		exit 1
	fi
	if [ ! -f "$new" ]; then
		warn "new binary $new not found"
		exit 1
	fi
	if ! runs_as_dpinger "$new"; then
		warn "$new does not run here as dpinger (wrong architecture?" \
		    "'$new -h' must print dpinger's usage and exit 1)"
		exit 1
	fi
	if ! is_selfheal "$new"; then
		warn "$new is not the self-healing dpinger" \
		    "(no -X/-F/-W in usage)"
		exit 1
	fi
	new_sum=$(sha256_of "$new")
	if [ "$PLATFORM" = opnsense ]; then
		say "note: OPNsense's health audit (System > Firmware >" \
		    "Status, 'pkg check -sa') will list $BIN as a changed" \
		    "file, and $PKG_NAME as locked, until '$0 --rollback'"
	fi
}

# The stock binary at $BIN goes to $STOCK, its checksum and its package's
# version to the state directory.
write_stock_copy() {
	_ver=$(pkg_version)
	if ! save_original "$BIN" "$STOCK" "$STOCK_SUM" ||
	    ! echo "$_ver" >"$STOCK_VERSION.tmp.$$" ||
	    ! mv -f "$STOCK_VERSION.tmp.$$" "$STOCK_VERSION"; then
		rm -f "$STOCK_VERSION.tmp.$$"
		return 1
	fi
	say "saved the stock binary as $STOCK" \
	    "($PKG_NAME ${_ver:-of unknown version}, sha256 $(saved_sum))"
}

# b. Save the stock binary: once, or again when the package replaced it.
save_stock() {
	state_migrate || exit 1
	if [ ! -f "$STOCK" ]; then
		if is_selfheal "$BIN"; then
			warn "$BIN is already a self-healing dpinger and no" \
			    "stock copy was saved: reinstall the stock" \
			    "package first (pkg install -f dpinger)"
			exit 1
		fi
		state_dir_make "$STATE_DIR" ||
		    fail_install "cannot create $STATE_DIR"
		made_state_dir=$STATE_MADE
		saved_stock=yes
		write_stock_copy ||
		    fail_install "cannot save the stock binary as $STOCK"
		return 0
	fi
	_want=$(saved_sum) || {
		warn "$STOCK_SUM is missing: cannot check $STOCK; refusing"
		exit 1
	}
	if [ "$(sha256_of "$STOCK")" != "$_want" ]; then
		warn "$STOCK does not match $STOCK_SUM: refusing to go on"
		exit 1
	fi
	if is_selfheal "$BIN" || [ "$(sha256_of "$BIN")" = "$_want" ]; then
		say "stock binary already saved as $STOCK"
		record_missing_version
		return 0
	fi
	# Neither ours nor the saved one: the package was upgraded (or
	# reinstalled) while unlocked, and this is its stock binary now.
	if ! runs_as_dpinger "$BIN"; then
		warn "$BIN is neither the saved stock binary nor a dpinger" \
		    "that runs here: refusing (pkg install -f dpinger first)"
		exit 1
	fi
	say "$BIN is a stock dpinger other than the saved copy (package" \
	    "$PKG_NAME $(saved_version) when saved, $(pkg_version) now):" \
	    "the package was upgraded while unlocked; saving it in place" \
	    "of the older copy"
	for _f in "$STOCK" "$STOCK_SUM" "$STOCK_VERSION"; do
		if [ -e "$_f" ] && ! mv -f "$_f" "$_f.prev"; then
			fail_install "cannot set $_f aside"
		fi
	done
	refreshed_stock=yes
	write_stock_copy ||
	    fail_install "cannot save the stock binary as $STOCK"
}

# A copy saved by an older installer has no version.  While the package
# is locked its version cannot have changed since that install, so the
# version pkg reports now is the copy's.
record_missing_version() {
	[ -f "$STOCK_VERSION" ] && return 0
	pkg_locked || return 0
	_ver=$(pkg_version)
	[ -n "$_ver" ] || return 0
	echo "$_ver" >"$STOCK_VERSION" ||
	    fail_install "cannot write $STOCK_VERSION"
	wrote_version=yes
	say "recorded the saved copy's package version, $_ver" \
	    "(the package stayed locked since it was saved)"
}

# c. Install.
install_binary() {
	if [ "$(sha256_of "$BIN")" = "$new_sum" ]; then
		say "$BIN is already the new binary"
		return 0
	fi
	atomic_copy "$new" "$BIN" 555 ||
	    fail_install "cannot install $new as $BIN"
	replaced_binary=yes
	say "installed $new as $BIN"
}

# d. Verify.
verify_binary() {
	if [ "$(sha256_of "$BIN")" != "$new_sum" ] || ! is_selfheal "$BIN"; then
		fail_install "the installed $BIN does not verify"
	fi
	say "verified $BIN (sha256 $new_sum)"
}

# e. Lock the package.
lock_package() {
	if pkg_locked; then
		say "package $PKG_NAME already locked"
		return 0
	fi
	locked_pkg=yes
	if ! pkg lock -y "$PKG_NAME" >/dev/null || ! pkg_locked; then
		fail_install "pkg lock -y $PKG_NAME failed"
	fi
	say "locked package $PKG_NAME against upgrades"
}

# f, g. Restart and verify, when anything changed.
restart_and_verify() {
	if [ "$replaced_binary" = no ] && [ "$locked_pkg" = no ] &&
	    [ "$refreshed_stock" = no ]; then
		say "nothing changed; checking the running monitors only"
		if verify_monitoring; then
			install_siblings || exit 1
			say "already installed"
			finish_install
		fi
		warn "some gateways do not answer; run --status, or" \
		    "'$0 --rollback' to go back to the stock binary"
		exit 1
	fi
	if ! restart_monitoring; then
		warn "restarting gateway monitoring failed"
		rollback_after_failure
	fi
	if ! verify_monitoring; then
		warn "gateway monitoring does not verify with the new binary"
		rollback_after_failure
	fi
	install_siblings || rollback_after_failure
	say "done: the self-healing dpinger monitors every gateway" \
	    "(roll back with '$0 --rollback')"
	finish_install
}

# The pfSense-only siblings that come with the install: the gateway
# watchdog (its cron item goes through pfSense's services.inc).
install_siblings() {
	[ "$PLATFORM" = opnsense ] && return 0
	watchdog_install
}

remove_siblings() {
	[ "$PLATFORM" = opnsense ] && return 0
	watchdog_remove
}

# Success: the older saved copy, if replaced, is no longer needed.
finish_install() {
	rm -f "$STOCK.prev" "$STOCK_SUM.prev" "$STOCK_VERSION.prev"
	exit 0
}

# f or g failed: the stock binary goes back and monitoring restarts.
rollback_after_failure() {
	undo_run
	if restart_monitoring && verify_monitoring; then
		warn "rolled back: the stock dpinger monitors the" \
		    "gateways again"
	else
		warn "rolled back, but monitoring still does not verify:" \
		    "see '$0 --status' and the gateways page"
	fi
	warn "install failed; the box is as it was"
	exit 1
}

do_install() {
	preflight
	check_binaries
	record_monitors
	save_stock
	report_upgrades
	install_binary
	verify_binary
	lock_package
	restart_and_verify
}

# ------------------------------------------------------------------ #
# Rollback and status                                                 #
# ------------------------------------------------------------------ #

# The saved copy and its checksum, checked; exits when there is nothing
# to roll back or the copy cannot be trusted.
check_saved_copy() {
	state_migrate || exit 1
	if [ ! -f "$STOCK" ]; then
		if [ -f "$BIN" ] && is_selfheal "$BIN"; then
			warn "no saved stock binary ($STOCK), but $BIN is" \
			    "the self-healing one: reinstall the stock" \
			    "package with 'pkg unlock -y dpinger;" \
			    "pkg install -f dpinger'"
			exit 1
		fi
		say "nothing to roll back: no saved stock binary," \
		    "the stock dpinger is in place"
		exit 0
	fi
	want=$(saved_sum) || {
		warn "$STOCK_SUM is missing: cannot check $STOCK; refusing." \
		    "If you trust it: cp -p $STOCK $BIN, then" \
		    "'pkg check -s $PKG_NAME' checks it against the package"
		exit 1
	}
	if [ "$(sha256_of "$STOCK")" != "$want" ]; then
		warn "$STOCK does not match its saved checksum: refusing"
		exit 1
	fi
}

restore_binary() {
	if [ -f "$BIN" ] && [ "$(sha256_of "$BIN")" = "$want" ]; then
		say "$BIN is already the stock binary"
	elif restore_original "$STOCK" "$BIN" "$STOCK_SUM"; then
		say "restored the stock binary as $BIN"
	else
		warn "cannot restore $BIN from $STOCK byte for byte"
		exit 1
	fi
	say "verified $BIN (sha256 $want)"
}

unlock_package() {
	pkg_locked || return 0
	pkg unlock -y "$PKG_NAME" >/dev/null || {
		warn "pkg unlock -y $PKG_NAME failed"
		exit 1
	}
	say "unlocked package $PKG_NAME"
}

# The saved copy and its state go once the stock binary monitors again.
restart_and_drop_copy() {
	if ! restart_monitoring || ! verify_monitoring; then
		warn "the stock binary is back, but monitoring does not" \
		    "verify; the saved copy stays in $STOCK"
		exit 1
	fi
	rm -f "$STOCK" "$STOCK_SUM" "$STOCK_VERSION"
	state_dir_drop "$STATE_DIR"
}

do_rollback() {
	preflight
	remove_siblings || exit 1
	check_saved_copy
	record_monitors
	restore_binary
	unlock_package
	restart_and_drop_copy
	say "rolled back: the stock dpinger monitors every gateway"
	exit 0
}

# Which state is read: the old place until install or --rollback moves it.
show_state() {
	if [ ! -f "$STOCK_SUM" ] && [ -f "$SELFHEAL_OLD_STATE/stock.sha256" ]
	then
		STOCK_SUM=$SELFHEAL_OLD_STATE/stock.sha256
		STOCK_VERSION=$SELFHEAL_OLD_STATE/stock.version
		say "state: in $SELFHEAL_OLD_STATE, an older installer's" \
		    "place that a reboot with RAM disks wipes; the next" \
		    "install or --rollback moves it to $SELFHEAL_STATE"
	fi
}

show_binaries() {
	if [ ! -f "$BIN" ]; then
		say "$BIN: missing"
	elif is_selfheal "$BIN"; then
		say "$BIN: self-healing dpinger (sha256 $(sha256_of "$BIN"))"
	else
		say "$BIN: stock dpinger (sha256 $(sha256_of "$BIN"))"
	fi
	if [ ! -f "$STOCK" ]; then
		say "$STOCK: none saved"
	elif [ ! -f "$STOCK_SUM" ]; then
		say "$STOCK: saved stock binary, CHECKSUM LOST ($STOCK_SUM" \
		    "missing)"
	elif [ "$(sha256_of "$STOCK")" = "$(saved_sum)" ]; then
		say "$STOCK: saved stock binary" \
		    "($PKG_NAME $(saved_version)), checksum ok"
	else
		say "$STOCK: saved stock binary, CHECKSUM MISMATCH"
	fi
}

show_package() {
	_pkg=$(echo "$PKG_NAME $(pkg_version)" | sed 's/ $//')
	if pkg_locked; then
		say "package $_pkg: locked"
	else
		say "package $_pkg: not locked"
	fi
}

# The pfSense-only siblings: the gateway watchdog and the mbuf guard.
show_siblings() {
	[ "$PLATFORM" = opnsense ] && return 0
	watchdog_status
	[ -r "$(dirname "$0")/mbuf-guard.sh" ] &&
	    say "$(sh "$(dirname "$0")/mbuf-guard.sh" --status-line)"
	return 0
}

do_status() {
	platform_detect
	say "$PLATFORM_NAME"
	show_state
	show_binaries
	show_package
	report_upgrades
	show_monitors
	show_siblings
	exit 0
}

if [ "${1:-}" = --mbuf-guard ]; then
	shift
	exec sh "$(dirname "$0")/mbuf-guard.sh" "$@"
fi

action=install
new=""
while [ $# -gt 0 ]; do
	case "$1" in
	--install) action=install ;;
	--rollback) action=rollback ;;
	--status) action=status ;;
	-h|--help) usage ;;
	-*) usage ;;
	*)
		[ -z "$new" ] || usage
		new=$1
		;;
	esac
	shift
done
if [ -z "$new" ]; then
	new=$(cd "$(dirname "$0")" && pwd)/dpinger
fi

case "$action" in
install) do_install ;;
rollback) do_rollback ;;
status) do_status ;;
esac
