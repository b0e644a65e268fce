#!/bin/sh
# The demo (`make demo`): watch dpinger heal, in two throwaway network
# namespaces joined by a veth pair, "fw" (dpinger) and "gw" (the gateway).
#
#   1. ./dpinger starts with an IPv6 link-local bind address and a status
#      socket: -B fe80::2%<if> fe80::1%<if>;
#   2. the interface is destroyed and created again with the same name and
#      addresses, as pfSense's IPsec reload does to a VTI (upstream dpinger
#      then reports "0 0 100" forever);
#   3. dpinger logs its rebind and the status returns to loss 0, with no
#      restart.
#
# Ends with PASS (exit 0) or FAIL (exit 1).  Root, Linux, iproute2.
set -u
cd "$(dirname "$0")/.." || exit 1

ns_fw="dpdemo$$fw"
ns_gw="dpdemo$$gw"
if_fw="dd$$f"
if_gw="dd$$g"
tmp=
pid=

fail() {
	echo "FAIL: $*"
	if [ -n "$tmp" ] && [ -s "$tmp/log" ]; then
		echo "--- dpinger's log:"
		cat "$tmp/log"
	fi
	exit 1
}

cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	ip netns del "$ns_fw" 2>/dev/null
	ip netns del "$ns_gw" 2>/dev/null
	[ -n "$tmp" ] && rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

[ "$(id -u)" = 0 ] || fail "the demo needs root (network namespaces)"
command -v ip >/dev/null 2>&1 || fail "ip not found (apt-get install iproute2)"
[ -x ./dpinger ] || fail "./dpinger not built (make dpinger)"
tmp=$(mktemp -d /tmp/dpinger-demo.XXXXXX) || fail "mktemp"
sock="$tmp/status"

# One line from the status socket: "avg_us stddev_us loss_pct".
status() {
	perl -MIO::Socket::UNIX -e '
	    my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or exit 1;
	    my $line = <$s>; defined $line or exit 1; print $line;' \
	    "$sock" 2>/dev/null
}

# poll SECONDS COMMAND...: run COMMAND every 0.2 s until it succeeds.
poll() {
	tries=$(($1 * 5))
	shift
	while [ "$tries" -gt 0 ]; do
		"$@" && return 0
		sleep 0.2
		tries=$((tries - 1))
	done
	return 1
}

loss_is_zero() {
	line=$(status) || return 1
	# shellcheck disable=SC2086 # split into its three numbers
	set -- $line
	[ "$#" = 3 ] && [ "$1" -gt 0 ] && [ "$3" = 0 ]
}

loss_is_up() {
	line=$(status) || return 1
	# shellcheck disable=SC2086 # split into its three numbers
	set -- $line
	[ "$#" = 3 ] && [ "$3" -gt 0 ]
}

carrier() {
	ip -n "$ns_fw" link show dev "$if_fw" 2>/dev/null | grep -q 'state UP' &&
	ip -n "$ns_gw" link show dev "$if_gw" 2>/dev/null | grep -q 'state UP'
}

# Loss 0, and the slow first probes after the re-creation (see below)
# out of the window again.
recovered() {
	line=$(status) || return 1
	# shellcheck disable=SC2086 # split into its three numbers
	set -- $line
	[ "$#" = 3 ] && [ "$1" -gt 0 ] && [ "$1" -lt 10000 ] && [ "$3" = 0 ]
}

rebind_logged() {
	grep -q ': rebind (' "$tmp/log"
}

show_status() {
	line=$(status) || line="(no answer)"
	echo "  status: $line"
}

# The veth pair and its addresses: what an IPsec reload re-creates.
make_link() {
	ip link add "$if_fw" netns "$ns_fw" type veth \
	    peer name "$if_gw" netns "$ns_gw" || return 1
	ip netns exec "$ns_fw" sysctl -qw \
	    "net.ipv6.conf.$if_fw.addr_gen_mode=1" &&
	ip netns exec "$ns_gw" sysctl -qw \
	    "net.ipv6.conf.$if_gw.addr_gen_mode=1" &&
	ip -n "$ns_fw" -6 addr add fe80::2/64 dev "$if_fw" nodad &&
	ip -n "$ns_gw" -6 addr add fe80::1/64 dev "$if_gw" nodad &&
	ip -n "$ns_fw" link set "$if_fw" up &&
	ip -n "$ns_gw" link set "$if_gw" up
}

echo "== namespaces $ns_fw (dpinger) and $ns_gw (gateway), veth $if_fw"
ip netns add "$ns_fw" || fail "ip netns add"
ip netns add "$ns_gw" || fail "ip netns add"
ip -n "$ns_fw" link set lo up
ip -n "$ns_gw" link set lo up
make_link || fail "cannot create the veth pair"
poll 5 carrier || fail "the veth pair does not come up"

echo "== starting: dpinger -f -s 250m -l 1s -t 5s -r 0 -u $sock" \
    "-B fe80::2%$if_fw fe80::1%$if_fw"
ip netns exec "$ns_fw" ./dpinger -f -s 250m -l 1s -t 5s -r 0 -u "$sock" \
    -B "fe80::2%$if_fw" "fe80::1%$if_fw" 2>"$tmp/log" &
pid=$!
poll 15 loss_is_zero || fail "no replies from the gateway"
echo "   status lines: average latency (us), its deviation (us), loss (%)"
show_status

echo "== destroying and re-creating $if_fw (what an IPsec reload does)"
ip -n "$ns_fw" link del "$if_fw" || fail "ip link del"
poll 5 loss_is_up || fail "no loss reported while the interface is gone"
show_status
make_link || fail "cannot re-create the veth pair"
poll 10 rebind_logged || fail "no rebind logged"
echo "== dpinger's log:"
sed 's/^/  /' "$tmp/log"

echo "== waiting for the status to recover: loss back to 0 once the lost"
echo "   probes have left the 5 s window.  The first probes after the"
echo "   re-creation wait about a second in the kernel's IPv6 neighbour"
echo "   discovery (the veth's far end is not ready at once), which shows as"
echo "   latency until they leave the window too."
tries=100
while [ "$tries" -gt 0 ]; do
	if recovered; then
		show_status
		break
	fi
	# One line a second is enough to watch.
	[ $((tries % 5)) = 0 ] && show_status
	sleep 0.2
	tries=$((tries - 1))
done
loss_is_zero || fail "loss did not return to 0"
recovered || fail "latency did not return to normal"
kill -0 "$pid" 2>/dev/null || fail "dpinger is gone"
echo "PASS: dpinger rebound by itself after the interface was re-created," \
    "and its status is back to normal with loss 0 (same process, pid $pid)"
exit 0
