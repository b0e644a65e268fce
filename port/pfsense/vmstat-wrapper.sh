#!/bin/sh
#
# /usr/bin/vmstat on pfSense 2.8 with the mbuf guard (mbuf-guard.sh).
# mbuf-guard: vmstat wrapper 1
#
# Why: vmstat -m reads the sysctl kern.malloc_stats, whose handler can
# panic pfSense 2.8's FreeBSD 15.0-CURRENT kernel (see netstat-wrapper.sh).
# pfSense runs it from the dashboard (kmemusage.sh: `vmstat -m`) and from
# Status > Diagnostics (`vmstat -afimsz`).
#
# What it does: the arguments are parsed as vmstat's getopt(3) parses them.
# Without -m, or with -M core (kvm mode: no sysctl is read), the original
# runs with the same arguments, output and exit status (exec).  With -m,
# this script prints one line saying why the malloc statistics are left
# out, then runs the original with every other argument as it was and the
# m taken out of its option word (-afimsz becomes -afisz); when -m was the
# only statistic asked for, the original does not run at all (vmstat with
# no statistic option would print its periodic summary instead).  The
# line goes to stderr when --libxo output was asked for, to keep it valid.
# kern.malloc_stats is never read.
#
# Environment, for tests (default is pfSense's path):
#   MBUF_GUARD_VMSTAT  the original vmstat  (/usr/bin/vmstat.stock)
#
# POSIX sh, as FreeBSD's /bin/sh runs it; no GNU-only options.

orig=${MBUF_GUARD_VMSTAT:-/usr/bin/vmstat.stock}
optstring=ac:fhHiM:mN:n:oPp:sw:z

# ------------------------------------------------------------------ #
# Parse like getopt(3), and build the argument list without -m         #
# ------------------------------------------------------------------ #

# keep: the new argument list, as words for eval: "${i}" for an argument
# kept as it was, "$w_i" for an option word with its m taken out.
keep=""
mflag=no
kvm=no
libxo=no
others=no
error=""
needarg=""
libxo_next=no
in_opts=yes
i=0
for a do
	i=$((i + 1))
	if [ "$libxo_next" = yes ]; then
		libxo_next=no
		keep="$keep \"\${$i}\""
		continue
	fi
	case $a in
	--libxo)
		libxo=yes
		libxo_next=yes
		keep="$keep \"\${$i}\""
		continue
		;;
	--libxo[=:]*)
		libxo=yes
		keep="$keep \"\${$i}\""
		continue
		;;
	esac
	if [ -n "$needarg" ]; then
		[ "$needarg" = M ] && kvm=yes
		needarg=""
		keep="$keep \"\${$i}\""
		continue
	fi
	if [ "$in_opts" = yes ] && [ -z "$error" ]; then
		case $a in
		--)
			in_opts=no
			keep="$keep \"\${$i}\""
			continue
			;;
		-?*)
			rest=${a#-}
			word="-"
			while [ -n "$rest" ]; do
				c=${rest%"${rest#?}"}
				rest=${rest#?}
				case $c in
				:)
					error="illegal option -- $c"
					break
					;;
				esac
				case $optstring in
				*"$c:"*)
					if [ -z "$rest" ]; then
						needarg=$c
					elif [ "$c" = M ]; then
						kvm=yes
					fi
					word="$word$c$rest"
					rest=""
					;;
				*"$c"*)
					case $c in
					m)
						mflag=yes
						continue
						;;
					f|i|o|s|z)
						others=yes
						;;
					esac
					word="$word$c"
					;;
				*)
					error="illegal option -- $c"
					break
					;;
				esac
			done
			if [ "$word" = "$a" ]; then
				keep="$keep \"\${$i}\""
			elif [ "$word" != "-" ]; then
				eval "w_$i=\$word"
				keep="$keep \"\$w_$i\""
			fi
			continue
			;;
		esac
		in_opts=no
	fi
	keep="$keep \"\${$i}\""
done
if [ -n "$needarg" ] && [ -z "$error" ]; then
	error="option requires an argument -- $needarg"
fi

if [ "$mflag" = no ] || [ "$kvm" = yes ]; then
	exec "$orig" "$@"
fi
if [ -n "$error" ]; then
	echo "vmstat: $error" >&2
	echo "usage: vmstat [-afHhimoPsz] [-M core [-N system]] [-c count]" \
	    "[-n devs]" >&2
	echo "              [-p type,if,pass] [-w wait] [disks]" \
	    "[wait [count]]" >&2
	exit 1
fi

note="vmstat: malloc statistics (-m) left out: reading kern.malloc_stats"
note="$note can panic this kernel (pfSense 2.8 mbuf guard)"
if [ "$libxo" = yes ]; then
	echo "$note" >&2
else
	echo "$note"
fi
[ "$others" = yes ] || exit 0
eval "set -- $keep"
exec "$orig" "$@"
