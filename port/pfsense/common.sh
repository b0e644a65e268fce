# Shared by the pfSense and OPNsense scripts in this folder
# (dpinger-install.sh and its siblings): messages, checksums, atomic
# copies, saving and restoring an original file, the persistent state
# directory, which firewall this is, and the gateway monitors it runs.
# Sourced, never run.  A script that sources it sets PROG (its name in
# messages) and ROOT (empty on the firewall; a scratch root in tests)
# first.  POSIX sh, as on pfSense; function-local names start with an
# underscore.
# shellcheck shell=sh disable=SC2034

say() {
	echo "$PROG: $*"
}

warn() {
	echo "$PROG: $*" >&2
}

# Fail an install: say why, undo what this run did (undo_run, defined by
# the sourcing script), exit 1.
fail_install() {
	warn "$*"
	undo_run
	warn "install failed; the box is as it was"
	exit 1
}

# Exit unless root; a test root ($ROOT) needs no root.
require_root() {
	if [ -z "${ROOT:-}" ] && [ "$(id -u)" != 0 ]; then
		warn "must run as root"
		exit 1
	fi
}

sha256_of() {
	if command -v sha256 >/dev/null 2>&1; then
		sha256 -q "$1"
	elif command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d ' ' -f 1
	else
		return 1
	fi
}

# Copy $1 over $2 atomically: a temporary file in $2's directory, then a
# rename, so that a reader sees the old file or the new one, never half.
# Mode "keep" copies mode, owner and times too (cp -p): the saved stock
# binary goes back exactly as it was.
atomic_copy() {
	_src=$1
	_dst=$2
	_mode=$3
	_tmp=$(dirname "$_dst")/.$(basename "$_dst").new.$$
	rm -f "$_tmp"
	if [ "$_mode" = keep ]; then
		cp -p "$_src" "$_tmp"
		_rc=$?
	else
		cp "$_src" "$_tmp" && chmod "$_mode" "$_tmp"
		_rc=$?
	fi
	if [ "$_rc" -ne 0 ] || ! mv -f "$_tmp" "$_dst"; then
		rm -f "$_tmp"
		return 1
	fi
	return 0
}

# Owner, group and mode of a file, as `ls -ln` shows them (POSIX, the
# same on FreeBSD and Linux): "-r-xr-sr-x 0 2".
file_attrs() {
	# shellcheck disable=SC2012
	ls -ln "$1" | awk '{ print $1, $3, $4 }'
}

# Save the original file $1 as $2 (best in the same directory: the same
# file system) with its owner, group, mode and times, and its SHA-256 in
# $3 ("SUM  name", as sha256sum writes it).  An existing $2 is replaced:
# the caller decides when a copy is to be kept.  Fails, leaving no
# half-written copy, unless the copy is byte for byte and attribute for
# attribute the original.
save_original() {
	_so_src=$1
	_so_dst=$2
	_so_sumf=$3
	_so_sum=$(sha256_of "$_so_src") || return 1
	atomic_copy "$_so_src" "$_so_dst" keep || return 1
	if ! cmp -s "$_so_src" "$_so_dst" ||
	    [ "$(file_attrs "$_so_src")" != "$(file_attrs "$_so_dst")" ]; then
		rm -f "$_so_dst"
		return 1
	fi
	if ! echo "$_so_sum  $(basename "$_so_dst")" >"$_so_sumf.tmp.$$" ||
	    ! mv -f "$_so_sumf.tmp.$$" "$_so_sumf"; then
		rm -f "$_so_sumf.tmp.$$"
		return 1
	fi
	return 0
}

# The checksum recorded by save_original in $1, or failure.
saved_sum_of() {
	[ -f "$1" ] || return 1
	cut -d ' ' -f 1 "$1"
}

# Put the copy $1 saved by save_original back as $2, byte for byte with
# its owner, group and mode, checked against the checksum in $3 before
# (the copy is intact) and after (the file in place is the original).
restore_original() {
	_ro_saved=$1
	_ro_dst=$2
	_ro_want=$(saved_sum_of "$3") || return 1
	[ "$(sha256_of "$_ro_saved")" = "$_ro_want" ] || return 1
	atomic_copy "$_ro_saved" "$_ro_dst" keep || return 1
	[ "$(sha256_of "$_ro_dst")" = "$_ro_want" ] &&
	    [ "$(file_attrs "$_ro_saved")" = "$(file_attrs "$_ro_dst")" ]
}

# ------------------------------------------------------------------ #
# Persistent state                                                    #
# ------------------------------------------------------------------ #

# pfSense's "Use RAM Disks" mounts /var as tmpfs: whatever is kept under
# /var/db is gone after a reboot.  /conf persists there (and exists on
# OPNsense too, holding config.xml).  Siblings keep their state in
# subdirectories of SELFHEAL_STATE.
SELFHEAL_STATE=${ROOT:-}/conf/dpinger-selfheal
# Where installers before the move kept it.
SELFHEAL_OLD_STATE=${ROOT:-}/var/db/dpinger-selfheal

# Create directory $1 (a subdirectory of SELFHEAL_STATE, or that itself),
# private to root.  STATE_MADE says whether this call created it, so that
# a failed run can take it away again with state_dir_drop.
state_dir_make() {
	STATE_MADE=no
	[ -d "$1" ] && return 0
	(umask 077 && mkdir -p "$1") || return 1
	STATE_MADE=yes
	return 0
}

# Remove directory $1 and SELFHEAL_STATE above it, each only when empty.
state_dir_drop() {
	rmdir "$1" 2>/dev/null
	rmdir "$SELFHEAL_STATE" 2>/dev/null
	return 0
}

# State left in /var/db by an older installer moves to SELFHEAL_STATE,
# entry by entry; an entry already present there stops the move (nothing
# is overwritten).  Quiet when there is nothing to move.
state_migrate() {
	[ -d "$SELFHEAL_OLD_STATE" ] || return 0
	state_dir_make "$SELFHEAL_STATE" || {
		warn "cannot create $SELFHEAL_STATE"
		return 1
	}
	for _f in "$SELFHEAL_OLD_STATE"/*; do
		[ -e "$_f" ] || continue
		_n=$(basename "$_f")
		if [ -e "$SELFHEAL_STATE/$_n" ]; then
			warn "both $_f and $SELFHEAL_STATE/$_n exist: keep" \
			    "the right one in $SELFHEAL_STATE, remove the other"
			return 1
		fi
		mv "$_f" "$SELFHEAL_STATE/$_n" || {
			warn "cannot move $_f to $SELFHEAL_STATE"
			return 1
		}
	done
	rmdir "$SELFHEAL_OLD_STATE" 2>/dev/null
	say "moved the saved state from $SELFHEAL_OLD_STATE to" \
	    "$SELFHEAL_STATE (/var does not survive a reboot with RAM disks)"
	return 0
}

# ------------------------------------------------------------------ #
# Which firewall                                                      #
# ------------------------------------------------------------------ #

# PLATFORM becomes pfsense, opnsense or empty; PLATFORM_NAME names it,
# with its version, for messages.
platform_detect() {
	PLATFORM=""
	PLATFORM_NAME="neither pfSense nor OPNsense"
	if [ -x "$ROOT/usr/local/sbin/opnsense-version" ]; then
		PLATFORM=opnsense
		PLATFORM_NAME=$("$ROOT/usr/local/sbin/opnsense-version" \
		    2>/dev/null) || PLATFORM_NAME=""
		[ -n "$PLATFORM_NAME" ] || PLATFORM_NAME=OPNsense
	elif [ -f "$ROOT/etc/version" ] &&
	    [ -f "$ROOT/usr/local/sbin/pfSsh.php" ]; then
		PLATFORM=pfsense
		PLATFORM_NAME="pfSense $(head -n 1 "$ROOT/etc/version")"
	fi
}

# ------------------------------------------------------------------ #
# Gateway monitors                                                    #
# ------------------------------------------------------------------ #

# One dpinger per monitored gateway, each with a pid file and a status
# socket of the same stem in /var/run: pfSense names them
# dpinger_<GW>~<src>~<monitor>.pid/.sock, OPNsense dpinger_<GW>.pid/.sock.
# Gateway names hold no '~' on either, so the gateway is the stem up to
# the first '~'.
MONITOR_RUN_DIR=${ROOT:-}/var/run

monitor_gateway() {
	_g=$(basename "$1")
	_g=${_g#dpinger_}
	_g=${_g%.pid}
	_g=${_g%.sock}
	echo "${_g%%~*}"
}

# True when pid file $1 names a live process.
monitor_alive() {
	_pid=$(cat "$1" 2>/dev/null)
	case "$_pid" in
	""|*[!0-9]*) return 1 ;;
	esac
	kill -0 "$_pid" 2>/dev/null
}

# The pid file of gateway $1: the one whose process lives, else the first
# found, else nothing.  (pfSense may leave an old one behind when the
# source address changed.)
monitor_pidfile() {
	_first=""
	for _p in "$MONITOR_RUN_DIR/dpinger_$1.pid" \
	    "$MONITOR_RUN_DIR/dpinger_$1~"*.pid; do
		[ -f "$_p" ] || continue
		if monitor_alive "$_p"; then
			echo "$_p"
			return 0
		fi
		[ -n "$_first" ] || _first=$_p
	done
	[ -n "$_first" ] && echo "$_first"
	return 0
}

# The gateways whose monitor runs now (a pid file naming a live process),
# sorted, on one line.
monitors_running() {
	for _p in "$MONITOR_RUN_DIR"/dpinger_*.pid; do
		[ -f "$_p" ] && monitor_alive "$_p" && monitor_gateway "$_p"
	done | sort -u | tr '\n' ' ' | sed 's/ $//'
}

# The first line status socket $1 writes within $2 seconds (default 5),
# or nothing.  timeout(1), where there is one, also bounds the connect.
read_status() {
	_rs_wait=${2:-5}
	if command -v timeout >/dev/null 2>&1; then
		timeout $((_rs_wait + 1)) nc -U -w "$_rs_wait" "$1" \
		    </dev/null 2>/dev/null | head -n 1
	else
		nc -U -w "$_rs_wait" "$1" </dev/null 2>/dev/null | head -n 1
	fi
}

# True for a status line: identifier, average and deviation in
# microseconds, loss in percent.
status_line_ok() {
	printf '%s\n' "$1" | grep -Eq '^[^ ]* ?[0-9]+ [0-9]+ [0-9]+$'
}

# True for a measured status line.  pfSense and OPNsense read a deviation
# of 0 with a loss of 0 as "no result yet" and leave the gateway out
# (pfSense retries for 3 s); 100 % loss is a measurement (the gateway is
# down, the monitor works).
status_measured() {
	status_line_ok "$1" || return 1
	case "$1" in
	*" 0 0") return 1 ;;
	esac
	return 0
}
