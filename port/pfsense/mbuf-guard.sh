#!/bin/sh
#
# The pfSense 2.8 mbuf guard: keep netstat and vmstat from reading the
# sysctl kern.malloc_stats, which panics pfSense 2.8.0/2.8.1's FreeBSD
# 15.0-CURRENT kernel, while the mbuf graph and the dashboard's mbuf meter
# keep working.  See mbuf-wrapper.sh for what the wrapper does, README.md
# for the whole story.
#
# usage: mbuf-guard.sh [--install] [--force]
#        mbuf-guard.sh --rollback
#        mbuf-guard.sh --status
# (or dpinger-install.sh --mbuf-guard [...], which runs this script)
#
# --install (the default), each step a no-op when already done:
#   a. preflight: root, pfSense, and an affected system: a FreeBSD
#      15.0-CURRENT kernel and pfSense 2.8.x (--force skips this check
#      only, and says what it skipped);
#   b. save /usr/bin/netstat and /usr/bin/vmstat as netstat.stock and
#      vmstat.stock beside them, with owner, group and mode (netstat is
#      group kmem, mode 2555), and their SHA-256 in the state directory;
#   c. install mbuf-wrapper.sh atomically (mode 555) in their place: the
#      one wrapper acts on the name it is run as;
#   d. keep what a reboot needs in the state directory,
#      /conf/dpinger-selfheal/mbuf-guard (/conf survives the RAM disks of
#      /var and /tmp), and install the boot script
#      /usr/local/etc/rc.d/mbuf-guard.sh;
#   e. verify: the wrapped `netstat -m` prints the cluster line with four
#      numbers, `netstat -rn` still works, `vmstat -m` leaves the malloc
#      part out.
# A failing step undoes what this run did: the box is left as it was.
#
# --rollback restores both originals byte for byte (checked against the
# saved SHA-256; mode, owner and group included), removes the boot script
# and the state.  A binary that is no longer the wrapper (a pfSense-base
# upgrade put a newer stock one) is left as it is.
#
# --boot is what the boot script runs: a pfSense-base upgrade untars the
# stock netstat and vmstat over the wrappers, then reboots; at boot the
# checksums show it, the new stock binaries are saved first, and the
# wrappers go back.  It prints what it did (the boot script sends it to
# syslog).
#
# --status shows what is in place; --status-line prints one line (for
# dpinger-install.sh --status).
#
# For tests: every absolute path is under $ROOT (empty on pfSense), the
# sysctl(8) used is $MBUF_GUARD_SYSCTL (default /sbin/sysctl).

set -u

ROOT=${ROOT:-}
PROG=mbuf-guard
HERE=$(cd "$(dirname "$0")" && pwd)
BIN_DIR=$ROOT/usr/bin
STATE_DIR=$ROOT/conf/dpinger-selfheal/mbuf-guard
BOOT_SCRIPT=$ROOT/usr/local/etc/rc.d/mbuf-guard.sh
VERSION_FILE=$ROOT/etc/version
SYSCTL=${MBUF_GUARD_SYSCTL:-/sbin/sysctl}
TOOLS="netstat vmstat"
# Copied to the state directory, so that the boot script can put the guard
# back without the directory the admin installed from.
STATE_FILES="mbuf-guard.sh common.sh mbuf-wrapper.sh"

# say, warn, fail_install, require_root, sha256_of, atomic_copy,
# save_original and restore_original live beside this script.
COMMON=$HERE/common.sh
if [ ! -r "$COMMON" ]; then
	echo "$PROG: $COMMON is missing: copy it beside this script" >&2
	exit 2
fi
# shellcheck source=port/pfsense/common.sh disable=SC1091
. "$COMMON"

usage() {
	echo "usage: $0 [--install] [--force] | --rollback | --status" >&2
	exit 2
}

bin_of() { echo "$BIN_DIR/$1"; }
stock_of() { echo "$BIN_DIR/$1.stock"; }
sum_of() { echo "$STATE_DIR/$1.sha256"; }
# One wrapper for both tools.
wrapper_src() { echo "$HERE/mbuf-wrapper.sh"; }
wrapper_state() { echo "$STATE_DIR/mbuf-wrapper.sh"; }

# Any version of our wrapper: a line of its header names it.
is_wrapper() {
	[ -f "$1" ] && head -n 8 "$1" 2>/dev/null |
	    grep -q '^# mbuf-guard: wrapper [0-9]*$'
}

# Why this system is not affected, or nothing when it is.
not_affected_because() {
	_ostype=$("$SYSCTL" -n kern.ostype 2>/dev/null)
	_osrel=$("$SYSCTL" -n kern.osrelease 2>/dev/null)
	_ver=$(head -n 1 "$VERSION_FILE" 2>/dev/null)
	_why=""
	case "$_ostype $_osrel" in
	"FreeBSD 15.0-CURRENT"*) ;;
	*) _why="the kernel is '$_ostype $_osrel', not FreeBSD 15.0-CURRENT" ;;
	esac
	case "$_ver" in
	2.8.*) ;;
	*) _why="${_why:+$_why; }pfSense '$_ver' is not 2.8.x" ;;
	esac
	echo "$_why"
}

# Run the installed wrapper of $1 against the saved original.
run_wrapped() {
	_t=$1
	shift
	MBUF_GUARD_NETSTAT=$(stock_of netstat) \
	    MBUF_GUARD_VMSTAT=$(stock_of vmstat) \
	    MBUF_GUARD_SYSCTL=$SYSCTL "$(bin_of "$_t")" "$@"
}

# The checks of step e; says what fails.
verify_guard() {
	_ok=yes
	_line=$(run_wrapped netstat -m 2>/dev/null |
	    grep 'mbuf clusters in use')
	# Four numbers, as pfSense's RRD and dashboard split them.
	_n='[0-9][0-9]*'
	if printf '%s\n' "$_line" | grep -q "^$_n/$_n/$_n/$_n mbuf clusters in \
use (current/cache/total/max)\$"; then
		say "verified: netstat -m: $_line"
	else
		warn "netstat -m through the wrapper gives no cluster line"
		_ok=no
	fi
	if run_wrapped netstat -rn >/dev/null 2>&1; then
		say "verified: netstat -rn works through the wrapper"
	else
		warn "netstat -rn fails through the wrapper"
		_ok=no
	fi
	if run_wrapped vmstat -m 2>/dev/null | grep -q 'left out'; then
		say "verified: vmstat -m leaves the malloc statistics out"
	else
		warn "vmstat -m through the wrapper does not say it leaves" \
		    "the malloc statistics out"
		_ok=no
	fi
	[ "$_ok" = yes ]
}

# ------------------------------------------------------------------ #
# Install                                                             #
# ------------------------------------------------------------------ #

# What this run changed, so that a failure can undo exactly that.
made_state_dir=no
made_boot=no
saved_tools=""
replaced_tools=""

# True when the word $1 is in the list $2.
in_list() {
	case " $2 " in
	*" $1 "*) return 0 ;;
	esac
	return 1
}

undo_run() {
	for _t in $TOOLS; do
		if in_list "$_t" "$replaced_tools"; then
			if restore_original "$(stock_of "$_t")" \
			    "$(bin_of "$_t")" "$(sum_of "$_t")"; then
				say "undone: $(bin_of "$_t") restored"
			else
				warn "could not restore $(bin_of "$_t") from" \
				    "$(stock_of "$_t"): copy it back by hand"
				continue
			fi
		fi
		if in_list "$_t" "$saved_tools"; then
			rm -f "$(stock_of "$_t")" "$(sum_of "$_t")"
			say "undone: saved copy of $_t removed"
		fi
	done
	if [ "$made_boot" = yes ]; then
		rm -f "$BOOT_SCRIPT"
		say "undone: boot script removed"
	fi
	if [ "$made_state_dir" = yes ]; then
		for _f in $STATE_FILES forced; do
			rm -f "$STATE_DIR/$_f"
		done
		rmdir "$STATE_DIR" 2>/dev/null
		rmdir "$(dirname "$STATE_DIR")" 2>/dev/null
	fi
}

preflight() {
	require_root
	if [ ! -f "$VERSION_FILE" ]; then
		warn "this is not pfSense ($VERSION_FILE missing)"
		exit 1
	fi
	if ! sha256_of "$VERSION_FILE" >/dev/null 2>&1; then
		warn "neither sha256 nor sha256sum found"
		exit 1
	fi
	for _t in $TOOLS; do
		if [ ! -r "$(wrapper_src "$_t")" ]; then
			warn "$(wrapper_src "$_t") is missing: copy it beside" \
			    "this script"
			exit 1
		fi
		if [ ! -f "$(bin_of "$_t")" ]; then
			warn "$(bin_of "$_t") is missing"
			exit 1
		fi
	done
}

# Step b and c for one tool.
install_tool() {
	_t=$1
	_bin=$(bin_of "$_t")
	_stock=$(stock_of "$_t")
	_sumf=$(sum_of "$_t")
	_wsum=$(sha256_of "$(wrapper_src "$_t")")
	if [ "$(sha256_of "$_bin")" = "$_wsum" ]; then
		[ -f "$_stock" ] ||
		    fail_install "$_bin is the wrapper but no original is" \
		    "saved as $_stock: reinstall pfSense-base's $_t first"
		say "$_bin is already the wrapper"
		return 0
	fi
	if is_wrapper "$_bin"; then
		# Another version of the wrapper: the original is saved.
		if [ ! -f "$_stock" ] || [ ! -f "$_sumf" ]; then
			fail_install "$_bin is a wrapper but no original is" \
			    "saved"
		fi
	else
		# The stock binary (after an upgrade, a newer one than a copy
		# saved before): save it, replacing an older copy.
		if [ -f "$_stock" ] && [ -f "$_sumf" ] &&
		    [ "$(sha256_of "$_stock")" = "$(saved_sum_of "$_sumf")" ] &&
		    cmp -s "$_bin" "$_stock"; then
			say "original $_t already saved as $_stock"
		else
			saved_tools="$saved_tools $_t"
			save_original "$_bin" "$_stock" "$_sumf" ||
			    fail_install "cannot save $_bin as $_stock"
			say "saved $_bin as $_stock ($(file_attrs "$_stock")," \
			    "sha256 $(saved_sum_of "$_sumf"))"
		fi
	fi
	replaced_tools="$replaced_tools $_t"
	atomic_copy "$(wrapper_src "$_t")" "$_bin" 555 ||
	    fail_install "cannot install the $_t wrapper as $_bin"
	say "installed the $_t wrapper as $_bin"
}

do_install() {
	force=$1
	preflight
	say "pfSense $(head -n 1 "$VERSION_FILE")"
	why=$(not_affected_because)
	if [ -n "$why" ]; then
		if [ "$force" = no ]; then
			warn "not installing: this system is not affected" \
			    "($why); the guard is for pfSense 2.8 on FreeBSD" \
			    "15.0-CURRENT; --force installs it anyway"
			exit 1
		fi
		say "--force: installing although $why"
	fi

	if [ ! -d "$STATE_DIR" ]; then
		mkdir -p "$STATE_DIR" || fail_install "cannot create $STATE_DIR"
		made_state_dir=yes
	fi

	# b, c.
	for t in $TOOLS; do
		install_tool "$t"
	done

	# d.
	for f in $STATE_FILES; do
		if ! cmp -s "$HERE/$f" "$STATE_DIR/$f"; then
			atomic_copy "$HERE/$f" "$STATE_DIR/$f" 444 ||
			    fail_install "cannot copy $f to $STATE_DIR"
		fi
	done
	if [ "$force" = yes ]; then
		: >"$STATE_DIR/forced" || fail_install "cannot write $STATE_DIR"
	fi
	if ! cmp -s "$HERE/mbuf-guard-boot.sh" "$BOOT_SCRIPT"; then
		# An older boot script is replaced, not removed, by an undo.
		[ -f "$BOOT_SCRIPT" ] || made_boot=yes
		if ! mkdir -p "$(dirname "$BOOT_SCRIPT")" ||
		    ! atomic_copy "$HERE/mbuf-guard-boot.sh" "$BOOT_SCRIPT" 555
		then
			fail_install "cannot install $BOOT_SCRIPT"
		fi
		say "installed the boot script $BOOT_SCRIPT"
	fi
	say "state kept in $STATE_DIR"

	# e.
	verify_guard || fail_install "the guard does not verify"
	say "done: netstat -m and vmstat -m no longer read" \
	    "kern.malloc_stats (roll back with '$0 --rollback')"
	exit 0
}

# ------------------------------------------------------------------ #
# Boot: put the guard back after an upgrade                           #
# ------------------------------------------------------------------ #

do_boot() {
	if [ ! -d "$STATE_DIR" ]; then
		say "not installed ($STATE_DIR missing): nothing to do"
		exit 0
	fi
	why=$(not_affected_because)
	rc=0
	changed=no
	for t in $TOOLS; do
		bin=$(bin_of "$t")
		stock=$(stock_of "$t")
		sumf=$(sum_of "$t")
		wrapper=$(wrapper_state "$t")
		[ -f "$sumf" ] || continue
		if [ -f "$bin" ] &&
		    [ "$(sha256_of "$bin")" = "$(sha256_of "$wrapper")" ]; then
			_want=$(saved_sum_of "$sumf")
			if [ "$(sha256_of "$stock")" != "$_want" ]; then
				warn "$stock does not match its checksum"
				rc=1
			fi
			continue
		fi
		if [ -n "$why" ] && [ ! -f "$STATE_DIR/forced" ]; then
			say "$bin was replaced, and this system is no longer" \
			    "affected ($why): leaving it; run mbuf-guard.sh" \
			    "--rollback to clean up"
			continue
		fi
		if [ -f "$bin" ] && ! is_wrapper "$bin"; then
			# An upgrade's new stock binary: save it first.
			if ! save_original "$bin" "$stock" "$sumf"; then
				warn "cannot save the new $bin as $stock;" \
				    "leaving the stock $t in place"
				rc=1
				continue
			fi
			say "$bin was replaced (pfSense upgrade?): saved the" \
			    "new one as $stock (sha256 $(saved_sum_of "$sumf"))"
		fi
		if ! atomic_copy "$wrapper" "$bin" 555; then
			warn "cannot put the $t wrapper back as $bin"
			rc=1
			continue
		fi
		say "put the $t wrapper back as $bin"
		changed=yes
	done
	if [ "$changed" = yes ]; then
		verify_guard || rc=1
	else
		[ "$rc" -ne 0 ] || say "guard in place: netstat and vmstat" \
		    "are the wrappers"
	fi
	exit "$rc"
}

# ------------------------------------------------------------------ #
# Rollback and status                                                 #
# ------------------------------------------------------------------ #

do_rollback() {
	require_root
	found=no
	for t in $TOOLS; do
		bin=$(bin_of "$t")
		stock=$(stock_of "$t")
		sumf=$(sum_of "$t")
		if [ ! -f "$stock" ] && [ ! -f "$sumf" ]; then
			if is_wrapper "$bin"; then
				warn "$bin is the wrapper but no original is" \
				    "saved: reinstall pfSense-base's $t" \
				    "(pfSense-upgrade -f, or copy it from" \
				    "another 2.8 box)"
				exit 1
			fi
			continue
		fi
		found=yes
		if [ ! -f "$stock" ] || [ ! -f "$sumf" ]; then
			warn "$stock or $sumf is missing: cannot check the" \
			    "saved $t; refusing"
			exit 1
		fi
		if is_wrapper "$bin"; then
			if ! restore_original "$stock" "$bin" "$sumf"; then
				warn "cannot restore $bin from $stock (or it" \
				    "does not match its checksum); nothing" \
				    "removed"
				exit 1
			fi
			say "restored $bin ($(file_attrs "$bin")," \
			    "sha256 $(saved_sum_of "$sumf"))"
		else
			say "$bin is not the wrapper (a pfSense upgrade put" \
			    "a stock one back): leaving it"
		fi
		rm -f "$stock" "$sumf"
	done
	rm -f "$BOOT_SCRIPT"
	for f in $STATE_FILES forced; do
		rm -f "$STATE_DIR/$f"
	done
	rmdir "$STATE_DIR" 2>/dev/null
	rmdir "$(dirname "$STATE_DIR")" 2>/dev/null
	if [ "$found" = no ]; then
		say "nothing to roll back: the guard is not installed"
	else
		say "rolled back: the stock netstat and vmstat are in place"
	fi
	exit 0
}

# One line: installed or not, and the cluster line when installed.
status_line() {
	if is_wrapper "$(bin_of netstat)"; then
		_line=$(run_wrapped netstat -m 2>/dev/null |
		    grep 'mbuf clusters in use')
		echo "mbuf guard: installed (netstat -m: ${_line:-NO OUTPUT})"
	elif [ -f "$(sum_of netstat)" ]; then
		echo "mbuf guard: saved, but netstat is not the wrapper" \
		    "(upgraded, not rebooted yet?)"
	else
		echo "mbuf guard: not installed"
	fi
}

do_status() {
	[ -f "$VERSION_FILE" ] && say "pfSense $(head -n 1 "$VERSION_FILE")"
	why=$(not_affected_because)
	say "affected system: ${why:+no: }${why:-yes}"
	for t in $TOOLS; do
		bin=$(bin_of "$t")
		stock=$(stock_of "$t")
		sumf=$(sum_of "$t")
		if is_wrapper "$bin"; then
			say "$bin: the guard's wrapper"
		elif [ -f "$bin" ]; then
			say "$bin: stock ($(file_attrs "$bin"))"
		else
			say "$bin: missing"
		fi
		if [ ! -f "$stock" ]; then
			say "$stock: none saved"
		elif [ "$(sha256_of "$stock")" = "$(saved_sum_of "$sumf")" ]
		then
			say "$stock: saved original, checksum ok" \
			    "($(file_attrs "$stock"))"
		else
			say "$stock: saved original, CHECKSUM MISMATCH"
		fi
	done
	if [ -f "$BOOT_SCRIPT" ]; then
		say "$BOOT_SCRIPT: present"
	else
		say "$BOOT_SCRIPT: none"
	fi
	say "$(status_line)"
	exit 0
}

action=install
force=no
while [ $# -gt 0 ]; do
	case "$1" in
	--install) action=install ;;
	--force) force=yes ;;
	--rollback) action=rollback ;;
	--status) action=status ;;
	--status-line) action=status-line ;;
	--boot) action=boot ;;
	*) usage ;;
	esac
	shift
done

case "$action" in
install) do_install "$force" ;;
rollback) do_rollback ;;
status) do_status ;;
status-line) status_line ;;
boot) do_boot ;;
esac
