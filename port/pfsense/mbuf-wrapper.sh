#!/bin/sh
#
# /usr/bin/netstat and /usr/bin/vmstat on pfSense 2.8 with the mbuf guard
# (mbuf-guard.sh installs this one file under both names; it acts on the
# name it is run as).
# mbuf-guard: wrapper 1
#
# Why: on pfSense 2.8.0/2.8.1 (FreeBSD 15.0-CURRENT kernel) reading the
# sysctl kern.malloc_stats can panic the kernel (page fault under
# sysctl_kern_malloc_stats -> sysctl_wire_old_buffer -> vslock).  `netstat
# -m` and `vmstat -m` read it on every call, and pfSense runs them: netstat
# -m every minute (RRD), netstat -mb every 5 s and vmstat -m (dashboard),
# netstat -mb and vmstat -afimsz (Status > Diagnostics).
#
# The arguments are parsed as the tool's getopt(3) parses them, with its
# option string.  Without -m among the options, and in kvm mode (netstat
# -M core, -N system, or a namelist/core given as operands; vmstat -M
# core), where the tool reads kernel memory and no sysctl, the original
# runs with the same arguments, output and exit status (exec).  An m that
# is an option's argument (netstat -I em0) is not -m.
#
# netstat with -m never reaches the original: this script prints netstat
# -m's lines itself, in netstat's order and formats, from the per-zone
# vm.uma.<zone>.* sysctls, whose handlers do not wire the caller's buffer.
# The numbers, against netstat's (zones mbuf, mbuf_packet, mbuf_cluster,
# mbuf_jumbo_page, mbuf_jumbo_9k, mbuf_jumbo_16k):
#   exact: every zone's count in use (stats.current), "max"
#     (limit.max_items), the item sizes, "denied" (stats.fails) and
#     "delayed" (limit.sleeps);
#   approximate: a zone's free items ("cache", hence "total" and the
#     cluster line's "current", which netstat computes as clusters counted
#     minus mbuf_packet's free items) are the zone's bucket cache
#     (domain.N.nitems) plus its keg's free items (keg.domain.N.free_items).
#     The per-CPU bucket caches that netstat also counts are not exposed
#     outside vm.zone_stats, so "cache" can be lower than netstat's by up to
#     a few buckets per CPU (and the cluster "current" higher by as much);
#   left out: the mbuf_tag malloc type's bytes in "bytes allocated to
#     network" (they live in kern.malloc_stats, the sysctl we avoid).
# A difference that would go below zero is printed as 0.  The sendfile
# lines decode kern.ipc.sfstat (little-endian uint64s, as on amd64 and
# arm64).  --libxo output is not reproduced: -m prints text.
#
# vmstat with -m prints one line saying why the malloc statistics are left
# out, then runs the original with every other argument as it was and the
# m taken out of its option word (-afimsz becomes -afisz); when -m was the
# only statistic asked for, the original does not run (vmstat with no
# statistic option would print its periodic summary instead).  The line
# goes to stderr when --libxo output was asked for, to keep it valid.
#
# Environment, for tests (defaults are pfSense's paths):
#   MBUF_GUARD_NETSTAT  the original netstat    (/usr/bin/netstat.stock)
#   MBUF_GUARD_VMSTAT   the original vmstat     (/usr/bin/vmstat.stock)
#   MBUF_GUARD_SYSCTL   the sysctl(8) to read   (/sbin/sysctl)
# Like PATH, they are taken from the caller's environment: the wrapper is
# not setuid or setgid (the saved netstat keeps its setgid kmem bit).
#
# POSIX sh, as FreeBSD's /bin/sh runs it; no GNU-only options.

case ${0##*/} in
netstat*)
	tool=netstat
	orig=${MBUF_GUARD_NETSTAT:-/usr/bin/netstat.stock}
	optstring=46AaBbCcdF:f:ghI:ij:LlM:mN:nOoPp:Qq:RrSTsuWw:xz
	kvmopts=MN
	;;
vmstat*)
	tool=vmstat
	orig=${MBUF_GUARD_VMSTAT:-/usr/bin/vmstat.stock}
	optstring=ac:fhHiM:mN:n:oPp:sw:z
	kvmopts=M
	;;
*)
	echo "mbuf-guard: run this wrapper as netstat or vmstat," \
	    "not as ${0##*/}" >&2
	exit 2
	;;
esac
sysctl=${MBUF_GUARD_SYSCTL:-/sbin/sysctl}

# ------------------------------------------------------------------ #
# Parse like getopt(3)                                                #
# ------------------------------------------------------------------ #

# getopt stops at the first operand, at "--" or "-" alone, and at the first
# error; a letter that takes an argument takes the rest of its word, or
# the next word whatever it looks like.  libxo's xo_parse_args() removes
# --libxo, --libxo=X, --libxo:X and "--libxo X" first, wherever they are.
# keep: the arguments without -m, as words for eval: "${i}" for one kept
# as it was, "$w_i" for an option word with its m taken out.
keep=""
mflag=no
kvm=no
libxo=no
stats=no
error=""
needarg=""
libxo_next=no
in_opts=yes
operands=0
first_operand=""
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
		case $kvmopts in
		*"$needarg"*) kvm=yes ;;
		esac
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
					else
						case $kvmopts in
						*"$c"*) kvm=yes ;;
						esac
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
						stats=yes
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
	operands=$((operands + 1))
	[ "$operands" -gt 1 ] || first_operand=$a
done
if [ -n "$needarg" ] && [ -z "$error" ]; then
	error="option requires an argument -- $needarg"
fi

# netstat's operands (BACKWARD_COMPATIBILITY): a first one starting with a
# digit is an interval, which must be positive; anything else names a
# kernel and a core: kvm mode.  vmstat's are disks, interval and count.
if [ "$tool" = netstat ] && [ "$operands" -gt 0 ] && [ -z "$error" ]; then
	case $first_operand in
	[0-9]*)
		digits=${first_operand%%[!0-9]*}
		case $digits in
		*[1-9]*) ;;
		*) error="interval must be positive" ;;
		esac
		[ "$operands" -eq 1 ] || kvm=yes
		;;
	*)
		kvm=yes
		;;
	esac
fi

if [ "$mflag" = no ] || [ "$kvm" = yes ] || [ "$stats" = yes ]; then
	if [ ! -x "$orig" ]; then
		echo "$tool: the original $tool ($orig) is missing; see" \
		    "mbuf-guard.sh --status" >&2
		exit 127
	fi
fi
if [ "$mflag" = no ] || [ "$kvm" = yes ]; then
	exec "$orig" "$@"
fi
if [ -n "$error" ]; then
	echo "$tool: $error" >&2
	if [ "$tool" = netstat ]; then
		echo "usage: netstat -m [-M core] [-N system]" >&2
	else
		echo "usage: vmstat [-afHhimoPsz] [-M core [-N system]]" \
		    "[-c count] [-n devs]" >&2
		echo "              [-p type,if,pass] [-w wait] [disks]" \
		    "[wait [count]]" >&2
	fi
	exit 1
fi

# ------------------------------------------------------------------ #
# vmstat -m: left out                                                 #
# ------------------------------------------------------------------ #

if [ "$tool" = vmstat ]; then
	note="vmstat: malloc statistics (-m) left out: reading"
	note="$note kern.malloc_stats can panic this kernel (pfSense 2.8"
	note="$note mbuf guard)"
	if [ "$libxo" = yes ]; then
		echo "$note" >&2
	else
		echo "$note"
	fi
	[ "$stats" = yes ] || exit 0
	eval "set -- $keep"
	exec "$orig" "$@"
fi

# ------------------------------------------------------------------ #
# netstat -m from vm.uma.*                                            #
# ------------------------------------------------------------------ #

# pfSense's PHP and rc scripts may run us with a short PATH; grep and awk
# must still be found (appended, so that a caller's own come first).
PATH=${PATH:+$PATH:}/bin:/usr/bin
zones="mbuf mbuf_packet mbuf_cluster mbuf_jumbo_page mbuf_jumbo_9k"
zones="$zones mbuf_jumbo_16k"

# The names first (no handler runs for a name), then only the leaves we
# need, in one call.
nodes=""
names=""
for z in $zones; do
	nodes="$nodes vm.uma.$z"
	names="$names vm.uma.$z.size vm.uma.$z.limit.max_items"
	names="$names vm.uma.$z.limit.sleeps vm.uma.$z.stats.current"
	names="$names vm.uma.$z.stats.fails"
done
# shellcheck disable=SC2086
domains=$("$sysctl" -N $nodes 2>/dev/null |
    grep -E '\.(keg\.)?domain\.[0-9]+\.(nitems|free_items)$')
# shellcheck disable=SC2086
values=$("$sysctl" -ie $names $domains kern.ipc.nsfbufs \
    kern.ipc.nsfbufsused kern.ipc.nsfbufspeak 2>/dev/null)
sfstat=$("$sysctl" -nx kern.ipc.sfstat 2>/dev/null)

printf '%s\n' "$values" | awk -F= -v zones="$zones" -v sfstat="$sfstat" '
function clamp(x) { return x < 0 ? 0 : x }
function n(x) { return sprintf("%.0f", x) }
# One little-endian uint64 of the hex dump, field i (from 0).
function u64(hex, i,    j, k, v, d) {
	v = 0
	for (j = 7; j >= 0; j--) {
		for (k = 1; k <= 2; k++) {
			d = index("0123456789abcdef",
			    tolower(substr(hex, 16 * i + 2 * j + k, 1)))
			v = v * 16 + (d > 0 ? d - 1 : 0)
		}
	}
	return v
}
{
	name = $1
	val = substr($0, length(name) + 2)
	if (name ~ /^kern\.ipc\./) {
		sf[substr(name, 10)] = val
		next
	}
	split(name, p, ".")
	z = p[3]
	leaf = substr(name, length("vm.uma." z ".") + 1)
	if (leaf == "size" || leaf == "stats.current")
		seen[z, leaf] = 1
	if (leaf == "size") size[z] = val
	else if (leaf == "limit.max_items") max[z] = val
	else if (leaf == "limit.sleeps") sleeps[z] = val
	else if (leaf == "stats.current") cnt[z] = val
	else if (leaf == "stats.fails") fails[z] = val
	else free[z] += val
}
END {
	nz = split(zones, zl, " ")
	for (i = 1; i <= nz; i++) {
		if (!seen[zl[i], "size"] || !seen[zl[i], "stats.current"]) {
			printf("netstat: zone %s not found under vm.uma\n", \
			    zl[i]) > "/dev/stderr"
			exit 1
		}
	}
	mc = cnt["mbuf"]; mf = free["mbuf"]; ms = size["mbuf"]
	pc = cnt["mbuf_packet"]; pf = free["mbuf_packet"]
	ps = size["mbuf_packet"]
	cc = cnt["mbuf_cluster"]; cf = free["mbuf_cluster"]
	cs = size["mbuf_cluster"]
	jc = cnt["mbuf_jumbo_page"]; jf = free["mbuf_jumbo_page"]
	js = size["mbuf_jumbo_page"]
	c9 = cnt["mbuf_jumbo_9k"]; f9 = free["mbuf_jumbo_9k"]
	s9 = size["mbuf_jumbo_9k"]
	c16 = cnt["mbuf_jumbo_16k"]; f16 = free["mbuf_jumbo_16k"]
	s16 = size["mbuf_jumbo_16k"]
	jk = int(js / 1024)

	printf("%s/%s/%s mbufs in use (current/cache/total)\n",
	    n(mc + pc), n(mf + pf), n(mc + pc + mf + pf))
	printf("%s/%s/%s/%s mbuf clusters in use " \
	    "(current/cache/total/max)\n",
	    n(clamp(cc - pf)), n(cf + pf), n(cc + cf), n(max["mbuf_cluster"]))
	printf("%s/%s mbuf+clusters out of packet secondary zone in use " \
	    "(current/cache)\n", n(pc), n(pf))
	printf("%s/%s/%s/%s %sk (page size) jumbo clusters in use " \
	    "(current/cache/total/max)\n",
	    n(jc), n(jf), n(jc + jf), n(max["mbuf_jumbo_page"]), n(jk))
	printf("%s/%s/%s/%s 9k jumbo clusters in use " \
	    "(current/cache/total/max)\n",
	    n(c9), n(f9), n(c9 + f9), n(max["mbuf_jumbo_9k"]))
	printf("%s/%s/%s/%s 16k jumbo clusters in use " \
	    "(current/cache/total/max)\n",
	    n(c16), n(f16), n(c16 + f16), n(max["mbuf_jumbo_16k"]))
	inuse = mc * ms + pc * ps + pc * cs + clamp(cc - pc - pf) * cs + \
	    jc * js + c9 * s9 + c16 * s16
	incache = mf * ms + pf * ms + pf * cs + cf * cs + jf * js + \
	    f9 * s9 + f16 * s16
	printf("%sK/%sK/%sK bytes allocated to network " \
	    "(current/cache/total)\n", n(int(inuse / 1024)),
	    n(int(incache / 1024)), n(int((inuse + incache) / 1024)))
	printf("%s/%s/%s requests for mbufs denied " \
	    "(mbufs/clusters/mbuf+clusters)\n", n(fails["mbuf"]),
	    n(fails["mbuf_cluster"]), n(fails["mbuf_packet"]))
	printf("%s/%s/%s requests for mbufs delayed " \
	    "(mbufs/clusters/mbuf+clusters)\n", n(sleeps["mbuf"]),
	    n(sleeps["mbuf_cluster"]), n(sleeps["mbuf_packet"]))
	printf("%s/%s/%s requests for jumbo clusters delayed " \
	    "(%sk/9k/16k)\n", n(sleeps["mbuf_jumbo_page"]),
	    n(sleeps["mbuf_jumbo_9k"]), n(sleeps["mbuf_jumbo_16k"]), n(jk))
	printf("%s/%s/%s requests for jumbo clusters denied " \
	    "(%sk/9k/16k)\n", n(fails["mbuf_jumbo_page"]),
	    n(fails["mbuf_jumbo_9k"]), n(fails["mbuf_jumbo_16k"]), n(jk))
	if (("nsfbufs" in sf) && ("nsfbufsused" in sf) && \
	    ("nsfbufspeak" in sf))
		printf("%d/%d/%d sfbufs in use (current/peak/max)\n",
		    sf["nsfbufsused"], sf["nsfbufspeak"], sf["nsfbufs"])
	# struct sfstat: syscalls, noiocnt, iocnt, pages_read, pages_valid,
	# rhpages_requested, rhpages_read, busy, allocfail, allocwait,
	# pages_bogus.
	hex = sfstat
	sub(/.*Dump:0x/, "", hex)
	if (length(hex) < 16 * 11)
		exit 0
	printf("%s sendfile syscalls\n", n(u64(hex, 0)))
	printf("%s sendfile syscalls completed without I/O request\n",
	    n(u64(hex, 1)))
	printf("%s requests for I/O initiated by sendfile\n", n(u64(hex, 2)))
	printf("%s pages read by sendfile as part of a request\n",
	    n(u64(hex, 3)))
	printf("%s pages were valid at time of a sendfile request\n",
	    n(u64(hex, 4)))
	printf("%s pages were valid and substituted to bogus page\n",
	    n(u64(hex, 10)))
	printf("%s pages were requested for read ahead by applications\n",
	    n(u64(hex, 5)))
	printf("%s pages were read ahead by sendfile\n", n(u64(hex, 6)))
	printf("%s times sendfile encountered an already busy page\n",
	    n(u64(hex, 7)))
	printf("%s requests for sfbufs denied\n", n(u64(hex, 8)))
	printf("%s requests for sfbufs delayed\n", n(u64(hex, 9)))
}'
