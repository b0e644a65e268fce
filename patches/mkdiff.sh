#!/bin/sh
# Generate the ports-tree patch that adds net/dpinger-selfheal from port/.
#
# usage: sh patches/mkdiff.sh OUTPUT
#
# The diff runs from a stand-in ports tree (a/, patches/stand-in: net/Makefile
# around dpinger, and the stock net/dpinger) to the same tree with port/'s
# ports-tree files as net/dpinger-selfheal and its SUBDIR line in
# net/Makefile, right after dpinger's (b/).  It creates files only under
# net/dpinger-selfheal/ and changes one line of net/Makefile, so it applies
# with `patch -p1` or `git apply` at the top of a current ports tree, beside
# the stock net/dpinger.  Output is deterministic: files in byte order
# (LC_ALL=C), the timestamps diff puts on its --- and +++ lines removed.
# Files of port/ that are not part of a ports tree (README.md, pfsense/,
# linux/) are left out.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: sh patches/mkdiff.sh OUTPUT" >&2
	exit 2
fi
out=$1
top=$(cd "$(dirname "$0")/.." && pwd)
LC_ALL=C
TZ=UTC
export LC_ALL TZ

work=$(mktemp -d "${TMPDIR:-/tmp}/mkdiff.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cp -R "$top/patches/stand-in" "$work/a"
rm -f "$work/a/README"
cp -R "$work/a" "$work/b"
mkdir -p "$work/b/net/dpinger-selfheal/files"
for f in Makefile pkg-descr distinfo files/dpinger.in; do
	if [ -f "$top/port/$f" ]; then
		cp "$top/port/$f" "$work/b/net/dpinger-selfheal/$f"
	fi
done
awk -v after="    SUBDIR += dpinger" -v line="    SUBDIR += dpinger-selfheal" '
	{ print }
	$0 == after { print line; n++ }
	END { exit n == 1 ? 0 : 1 }' "$work/a/net/Makefile" \
    >"$work/b/net/Makefile" || {
	echo "mkdiff.sh: no single 'SUBDIR += dpinger' line in the stand-in" >&2
	exit 1
}

# diff exits 1 when the trees differ, which is the point; 2 is trouble.
status=0
(cd "$work" && diff -ruN a b) >"$work/raw" || status=$?
if [ "$status" -gt 1 ]; then
	echo "mkdiff.sh: diff failed (status $status)" >&2
	exit 1
fi
sed -e 's/^\(--- [^	]*\)	.*$/\1/' -e 's/^\(+++ [^	]*\)	.*$/\1/' \
    "$work/raw" >"$work/patch"
mkdir -p "$(dirname "$out")"
mv "$work/patch" "$out"
