#!/bin/sh
# Generate the ports-tree patch that adds net/dpinger from port/.
#
# usage: sh patches/mkdiff.sh OUTPUT
#
# The diff runs between a stand-in ports tree without net/dpinger (a/) and
# one holding port/'s ports-tree files as net/dpinger (b/), so it applies
# with `patch -p1` at the top of a ports tree.  Output is deterministic: the
# files are listed in byte order (LC_ALL=C) and the timestamps diff puts on
# its --- and +++ lines are removed.  Files of port/ that are not part of a
# ports tree (README.md, pfsense/, linux/) are left out.
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
mkdir -p "$work/a/net" "$work/b/net/dpinger/files"
for f in Makefile pkg-descr pkg-plist distinfo files/dpinger.in; do
	if [ -f "$top/port/$f" ]; then
		cp "$top/port/$f" "$work/b/net/dpinger/$f"
	fi
done

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
