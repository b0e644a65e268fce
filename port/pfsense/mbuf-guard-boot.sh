#!/bin/sh
#
# /usr/local/etc/rc.d/mbuf-guard.sh, installed by mbuf-guard.sh: pfSense
# runs the *.sh scripts of this directory at boot.  A pfSense-base upgrade
# untars the stock netstat and vmstat over the mbuf guard's wrappers and
# reboots; this puts the guard back (the new stock binaries are saved
# first) and logs what it did to syslog (tag mbuf-guard).  The work is
# done by the copy of mbuf-guard.sh kept in /conf, which survives both the
# upgrade and the RAM disks.  For tests, every path is under $ROOT.

ROOT=${ROOT:-}
# Whatever PATH the boot gives us, the base tools must be found.
PATH=${PATH:+$PATH:}/sbin:/bin:/usr/sbin:/usr/bin
export PATH
GUARD=$ROOT/conf/dpinger-selfheal/mbuf-guard/mbuf-guard.sh

case "${1:-start}" in
start) ;;
*) exit 0 ;;
esac
if [ ! -r "$GUARD" ]; then
	logger -t mbuf-guard "$GUARD missing: the guard cannot be checked"
	exit 0
fi
ROOT=$ROOT sh "$GUARD" --boot 2>&1 | logger -t mbuf-guard
exit 0
