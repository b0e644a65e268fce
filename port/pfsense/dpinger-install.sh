#!/bin/sh
#
# Install the self-healing dpinger on pfSense in place of the stock one,
# and take it out again.
#
# usage: dpinger-install.sh [--install] [NEW_BINARY]
#        dpinger-install.sh --rollback
#        dpinger-install.sh --status
#        dpinger-install.sh --mbuf-guard [--force | --rollback | --status]
#
# --install (the default) does what a person would do by hand, one step at
# a time, each step a no-op when already done:
#   a. preflight: this is pfSense, the stock binary is there, the new one
#      runs here and is the self-healing one;
#   b. save the stock binary beside it, as dpinger.stock, with its SHA-256
#      in /var/db/dpinger-selfheal/stock.sha256 (the first copy is kept);
#   c. install the new binary atomically (temporary file in the same
#      directory, mode 555, rename);
#   d. verify the installed binary;
#   e. pkg lock dpinger, so that pfSense upgrades do not put the stock
#      binary back;
#   f. restart gateway monitoring the pfSense way (setup_gateways_monitor());
#   g. verify that every gateway answers on its status socket.
# A failing step undoes what this run did, so the box is left as it was;
# a failure in f or g restores the stock binary and restarts monitoring
# with it.
#
# --rollback restores the stock binary byte for byte (checked against the
# saved SHA-256), unlocks the package, restarts and verifies monitoring,
# then removes the saved copy.  Run again, it says so and does nothing.
#
# --status shows what is installed, the saved copy, the lock and every
# status socket's answer.
#
# --mbuf-guard (first) runs mbuf-guard.sh from this directory with the
# other arguments: the pfSense 2.8 `netstat -m` panic guard.
#
# For tests: every absolute path is under $ROOT (empty on pfSense), and
# pkg, php, pfSsh.php, nc are found through PATH.

set -u

ROOT=${ROOT:-}
PROG=dpinger-install
BIN_DIR=$ROOT/usr/local/bin
BIN=$BIN_DIR/dpinger
STOCK=$BIN_DIR/dpinger.stock
STATE_DIR=$ROOT/var/db/dpinger-selfheal
STOCK_SUM=$STATE_DIR/stock.sha256
RUN_DIR=$ROOT/var/run
VERSION_FILE=$ROOT/etc/version
PFSSH=$ROOT/usr/local/sbin/pfSsh.php
VERIFY_TIMEOUT=${DPINGER_VERIFY_TIMEOUT:-30}
PKG_NAME=dpinger

# say, warn, sha256_of and atomic_copy live beside this script.
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

# What this run changed, so that a failure can undo exactly that.
made_state_dir=no
saved_stock=no
replaced_binary=no
locked_pkg=no

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
	[ -f "$STOCK_SUM" ] || return 1
	cut -d ' ' -f 1 "$STOCK_SUM"
}

pkg_locked() {
	[ "$(pkg query '%k' "$PKG_NAME" 2>/dev/null)" = 1 ]
}

# ------------------------------------------------------------------ #
# Gateway monitoring                                                  #
# ------------------------------------------------------------------ #

# setup_gateways_monitor() (gwlb.inc) stops every dpinger and starts one
# per monitored gateway, as pfSense does after any gateway change.  The
# service playback is the same call through pfSense's service layer.
restart_monitoring() {
	say "restarting gateway monitoring (setup_gateways_monitor)"
	_php='require_once("config.inc"); require_once("functions.inc");'
	_php="$_php"' require_once("gwlb.inc"); setup_gateways_monitor();'
	if php -r "$_php" >/dev/null; then
		return 0
	fi
	warn "php setup_gateways_monitor() failed; trying pfSsh.php playback"
	pfSsh.php playback svc restart dpinger >/dev/null
}

# One status line from a socket, or nothing.
read_status() {
	if command -v timeout >/dev/null 2>&1; then
		timeout 10 nc -U -w 5 "$1" </dev/null 2>/dev/null | head -n 1
	else
		nc -U -w 5 "$1" </dev/null 2>/dev/null | head -n 1
	fi
}

status_ok() {
	printf '%s\n' "$1" | grep -Eq '^[^ ]* ?[0-9]+ [0-9]+ [0-9]+$'
}

# Every gateway pfSense started has a pid file and a status socket with
# the same stem (/var/run/dpinger_GW~SRC~MONITOR.pid and .sock): the
# process must be alive and the socket must answer with a status line,
# within VERIFY_TIMEOUT seconds.  A socket without a pid file is a left-
# over that no process owns; it is reported, not counted.
verify_monitoring() {
	_deadline=$(($(date +%s) + VERIFY_TIMEOUT))
	while :; do
		_total=0
		_bad=""
		for _pidf in "$RUN_DIR"/dpinger_*.pid; do
			[ -e "$_pidf" ] || continue
			_total=$((_total + 1))
			_gw=$(basename "$_pidf" .pid)
			_pid=$(cat "$_pidf" 2>/dev/null)
			case "$_pid" in
			""|*[!0-9]*)
				_bad="$_bad $_gw(bad pid file)"
				continue
				;;
			esac
			if ! kill -0 "$_pid" 2>/dev/null; then
				_bad="$_bad $_gw(not running)"
				continue
			fi
			_line=$(read_status "${_pidf%.pid}.sock")
			status_ok "$_line" || _bad="$_bad $_gw(no status)"
		done
		if [ "$_total" -gt 0 ] && [ -z "$_bad" ]; then
			break
		fi
		if [ "$(date +%s)" -ge "$_deadline" ]; then
			if [ "$_total" -eq 0 ]; then
				warn "no gateway monitor (dpinger_*.pid) in" \
				    "$RUN_DIR after ${VERIFY_TIMEOUT}s"
			else
				warn "not answering after ${VERIFY_TIMEOUT}s:$_bad"
			fi
			return 1
		fi
		sleep 1
	done
	for _sock in "$RUN_DIR"/dpinger_*.sock; do
		[ -e "$_sock" ] && [ ! -e "${_sock%.sock}.pid" ] &&
		    say "ignoring $(basename "$_sock"): no pid file, no process"
	done
	say "all $_total gateway monitors answer on their status sockets"
	return 0
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
			warn "could not undo the pkg lock: run pkg unlock -y $PKG_NAME"
		fi
	fi
	if [ "$replaced_binary" = yes ]; then
		if atomic_copy "$STOCK" "$BIN" keep &&
		    [ "$(sha256_of "$BIN")" = "$(saved_sum)" ]; then
			say "undone: stock binary restored"
		else
			warn "could not restore $BIN from $STOCK: copy it back by hand"
		fi
	fi
	if [ "$saved_stock" = yes ]; then
		rm -f "$STOCK" "$STOCK_SUM"
		say "undone: saved copy removed"
	fi
	if [ "$made_state_dir" = yes ]; then
		rmdir "$STATE_DIR" 2>/dev/null
	fi
}

fail_install() {
	warn "$*"
	undo_run
	warn "install failed; the box is as it was"
	exit 1
}

preflight() {
	if [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
		warn "must run as root"
		exit 1
	fi
	if [ ! -f "$VERSION_FILE" ] || [ ! -f "$PFSSH" ]; then
		warn "this is not pfSense ($VERSION_FILE or $PFSSH missing)"
		exit 1
	fi
	for _cmd in pkg php nc; do
		if ! command -v "$_cmd" >/dev/null 2>&1; then
			warn "$_cmd not found in PATH"
			exit 1
		fi
	done
	if ! sha256_of "$VERSION_FILE" >/dev/null 2>&1; then
		warn "neither sha256 nor sha256sum found"
		exit 1
	fi
}

do_install() {
	new=$1
	preflight
	say "pfSense $(head -n 1 "$VERSION_FILE")"

	# a. The binaries.
	if [ ! -f "$BIN" ]; then
		warn "no stock binary at $BIN: is the dpinger package installed?"
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
		warn "$new is not the self-healing dpinger (no -X/-F/-W in usage)"
		exit 1
	fi
	new_sum=$(sha256_of "$new")

	# b. Save the stock binary, once.
	if [ -f "$STOCK" ]; then
		if [ "$(sha256_of "$STOCK")" != "$(saved_sum)" ]; then
			warn "$STOCK does not match $STOCK_SUM: refusing to go on"
			exit 1
		fi
		say "stock binary already saved as $STOCK"
	else
		if is_selfheal "$BIN"; then
			warn "$BIN is already a self-healing dpinger and no stock" \
			    "copy was saved: reinstall the stock package first" \
			    "(pkg install -f dpinger)"
			exit 1
		fi
		if [ ! -d "$STATE_DIR" ]; then
			mkdir -p "$STATE_DIR" ||
			    fail_install "cannot create $STATE_DIR"
			made_state_dir=yes
		fi
		saved_stock=yes
		_sum=$(sha256_of "$BIN")
		if ! cp -p "$BIN" "$STOCK.tmp.$$" ||
		    ! mv -f "$STOCK.tmp.$$" "$STOCK" ||
		    ! cmp -s "$BIN" "$STOCK" ||
		    ! echo "$_sum  dpinger.stock" >"$STOCK_SUM.tmp.$$" ||
		    ! mv -f "$STOCK_SUM.tmp.$$" "$STOCK_SUM"; then
			rm -f "$STOCK.tmp.$$" "$STOCK_SUM.tmp.$$"
			fail_install "cannot save the stock binary as $STOCK"
		fi
		say "saved the stock binary as $STOCK (sha256 $_sum)"
	fi

	# c. Install.
	if [ "$(sha256_of "$BIN")" = "$new_sum" ]; then
		say "$BIN is already the new binary"
	else
		atomic_copy "$new" "$BIN" 555 ||
		    fail_install "cannot install $new as $BIN"
		replaced_binary=yes
		say "installed $new as $BIN"
	fi

	# d. Verify.
	if [ "$(sha256_of "$BIN")" != "$new_sum" ] || ! is_selfheal "$BIN"; then
		fail_install "the installed $BIN does not verify"
	fi
	say "verified $BIN (sha256 $new_sum)"

	# e. Lock the package.
	if pkg_locked; then
		say "package $PKG_NAME already locked"
	else
		locked_pkg=yes
		if ! pkg lock -y "$PKG_NAME" >/dev/null || ! pkg_locked; then
			fail_install "pkg lock -y $PKG_NAME failed"
		fi
		say "locked package $PKG_NAME against upgrades"
	fi

	# f, g. Restart and verify, when anything changed.
	if [ "$replaced_binary" = no ] && [ "$locked_pkg" = no ]; then
		say "nothing changed; checking the running monitors only"
		if verify_monitoring; then
			watchdog_install || exit 1
			say "already installed"
			exit 0
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
	watchdog_install || rollback_after_failure
	say "done: the self-healing dpinger monitors every gateway" \
	    "(roll back with '$0 --rollback')"
	exit 0
}

# f or g failed: the stock binary goes back and monitoring restarts.
rollback_after_failure() {
	undo_run
	if restart_monitoring && verify_monitoring; then
		warn "rolled back: the stock dpinger monitors the gateways again"
	else
		warn "rolled back, but monitoring still does not verify:" \
		    "check System > Routing > Gateways"
	fi
	warn "install failed; the box is as it was"
	exit 1
}

# ------------------------------------------------------------------ #
# Rollback and status                                                 #
# ------------------------------------------------------------------ #

do_rollback() {
	preflight
	watchdog_remove || exit 1
	if [ ! -f "$STOCK" ]; then
		if [ -f "$BIN" ] && is_selfheal "$BIN"; then
			warn "no saved stock binary ($STOCK), but $BIN is the" \
			    "self-healing one: reinstall the stock package with" \
			    "'pkg unlock -y dpinger; pkg install -f dpinger'"
			exit 1
		fi
		say "nothing to roll back: no saved stock binary," \
		    "the stock dpinger is in place"
		exit 0
	fi
	want=$(saved_sum) || {
		warn "$STOCK_SUM is missing: cannot check $STOCK; refusing"
		exit 1
	}
	if [ "$(sha256_of "$STOCK")" != "$want" ]; then
		warn "$STOCK does not match its saved checksum: refusing"
		exit 1
	fi
	if [ -f "$BIN" ] && [ "$(sha256_of "$BIN")" = "$want" ]; then
		say "$BIN is already the stock binary"
	else
		atomic_copy "$STOCK" "$BIN" keep || {
			warn "cannot restore $BIN from $STOCK; nothing changed"
			exit 1
		}
		say "restored the stock binary as $BIN"
	fi
	if [ "$(sha256_of "$BIN")" != "$want" ]; then
		warn "restored $BIN does not match the saved checksum"
		exit 1
	fi
	say "verified $BIN (sha256 $want)"
	if pkg_locked; then
		pkg unlock -y "$PKG_NAME" >/dev/null || {
			warn "pkg unlock -y $PKG_NAME failed"
			exit 1
		}
		say "unlocked package $PKG_NAME"
	fi
	if ! restart_monitoring || ! verify_monitoring; then
		warn "the stock binary is back, but monitoring does not" \
		    "verify; the saved copy stays in $STOCK"
		exit 1
	fi
	rm -f "$STOCK" "$STOCK_SUM"
	rmdir "$STATE_DIR" 2>/dev/null
	say "rolled back: the stock dpinger monitors every gateway"
	exit 0
}

do_status() {
	[ -f "$VERSION_FILE" ] && say "pfSense $(head -n 1 "$VERSION_FILE")"
	if [ ! -f "$BIN" ]; then
		say "$BIN: missing"
	elif is_selfheal "$BIN"; then
		say "$BIN: self-healing dpinger (sha256 $(sha256_of "$BIN"))"
	else
		say "$BIN: stock dpinger (sha256 $(sha256_of "$BIN"))"
	fi
	if [ -f "$STOCK" ]; then
		if [ "$(sha256_of "$STOCK")" = "$(saved_sum)" ]; then
			say "$STOCK: saved stock binary, checksum ok"
		else
			say "$STOCK: saved stock binary, CHECKSUM MISMATCH"
		fi
	else
		say "$STOCK: none saved"
	fi
	if pkg_locked; then
		say "package $PKG_NAME: locked"
	else
		say "package $PKG_NAME: not locked"
	fi
	for _sock in "$RUN_DIR"/dpinger_*.sock; do
		[ -e "$_sock" ] || continue
		_line=$(read_status "$_sock")
		say "$(basename "$_sock"): ${_line:-(no answer)}"
	done
	watchdog_status
	[ -r "$(dirname "$0")/mbuf-guard.sh" ] &&
	    say "$(sh "$(dirname "$0")/mbuf-guard.sh" --status-line)"
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
install) do_install "$new" ;;
rollback) do_rollback ;;
status) do_status ;;
esac
