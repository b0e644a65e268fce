# Shared by the pfSense scripts in this folder (dpinger-install.sh and its
# siblings): messages, checksums and atomic copies.  Sourced, never run.
# A script that sources it sets PROG (its name in messages) first.  POSIX
# sh, as on pfSense; function-local names start with an underscore.

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
