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
