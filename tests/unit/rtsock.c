/*
 * Unit tests for the routing-message parsers: rtmsg_parse_bsd() fed byte
 * buffers laid out as FreeBSD lays them out (fbsd_layout.h, checked against
 * FreeBSD's headers by `make cross`), rtmsg_parse_netlink() fed messages
 * built with Linux's own structs, and the watcher's decisions on what the
 * BSD parser returns.
 *
 * The fixtures are written byte by byte, and never with dpinger.c's BSD_*
 * offsets: the point is a second, independent statement of the layout.
 * Every PF_ROUTE test runs once per layout model FreeBSD has (LP64
 * little-endian, ILP32 little-endian, LP64 big-endian, ILP32 big-endian),
 * its fixtures written in that model and parsed with dpinger.c told the
 * same.
 */
#define DPINGER_TEST
#include "../../dpinger.c"
#include "unit.h"
#include "fbsd_layout.h"

/* ------------------------------------------------------------------ */
/* FreeBSD message builder                                            */
/* ------------------------------------------------------------------ */

struct fx {
	uint8_t	b[4096];
	size_t	len;
};

/* A layout model, as fbsd_layout.h states it and fbsd_layout_check.c
 * proves it per architecture. */
struct fx_model {
	const char	*name;
	unsigned int	 sa_align;	/* sizeof(long) */
	unsigned int	 rtm_size;	/* sizeof(struct rt_msghdr) */
	bool		 big_endian;
};

static const struct fx_model fx_models[] = {
	{ "LP64 little-endian (amd64, arm64, powerpc64le, riscv64)",
	    FX_LP64_SA_ALIGN,
	    FX_LP64_RTM_SIZE, false },
	{ "ILP32 little-endian (i386, armv7)", FX_ILP32_SA_ALIGN,
	    FX_ILP32_RTM_SIZE, false },
	{ "LP64 big-endian (powerpc64)", FX_LP64_SA_ALIGN, FX_LP64_RTM_SIZE,
	    true },
	/* 32-bit powerpc (FreeBSD 14 only; Zig cannot build for it) */
	{ "ILP32 big-endian (powerpc)", FX_ILP32_SA_ALIGN, FX_ILP32_RTM_SIZE,
	    true },
};

/* The model the fixtures are being written in. */
static const struct fx_model *fxm = &fx_models[0];

static void
put_u8(struct fx *f, size_t off, unsigned int v)
{
	f->b[off] = (uint8_t)v;
}

static void
put_u16(struct fx *f, size_t off, unsigned int v)
{
	f->b[off + (fxm->big_endian ? 1 : 0)] = (uint8_t)v;
	f->b[off + (fxm->big_endian ? 0 : 1)] = (uint8_t)(v >> 8);
}

static void
put_u32(struct fx *f, size_t off, uint32_t v)
{
	put_u16(f, off + (fxm->big_endian ? 2 : 0), v & 0xffff);
	put_u16(f, off + (fxm->big_endian ? 0 : 2), v >> 16);
}

/* SA_SIZE: sa_len rounded up to a long; 0 takes one long. */
static size_t
sa_size(unsigned int sa_len)
{
	if (sa_len == 0)
		return fxm->sa_align;
	return (sa_len + fxm->sa_align - 1) / fxm->sa_align * fxm->sa_align;
}

/* Start a message of type `type` with a zeroed header of `hdrsize`
 * bytes; the offset of its first byte. */
static size_t
msg_begin(struct fx *f, unsigned int type, size_t hdrsize)
{
	size_t start = f->len;

	memset(f->b + start, 0, hdrsize);
	put_u8(f, start + FX_VERSION, FX_RTM_VERSION);
	put_u8(f, start + FX_TYPE, type);
	f->len += hdrsize;
	return start;
}

/* rtm_msglen: everything appended since msg_begin. */
static void
msg_end(struct fx *f, size_t start)
{
	put_u16(f, start + FX_MSGLEN, (unsigned int)(f->len - start));
}

/* Append sa_len bytes of sockaddr (first two bytes sa_len, family) and
 * pad to SA_SIZE; the offset of the sockaddr. */
static size_t
add_sa(struct fx *f, unsigned int sa_len, unsigned int family)
{
	size_t at = f->len, size;

	size = sa_size(sa_len);
	memset(f->b + at, 0, size);
	put_u8(f, at + FX_SA_LEN, sa_len);
	if (sa_len >= 2)
		put_u8(f, at + FX_SA_FAMILY, family);
	f->len += size;
	return at;
}

static void
add_sin(struct fx *f, const char *text)
{
	size_t at = add_sa(f, FX_SIN_SIZE, FX_AF_INET);

	CHECK(inet_pton(AF_INET, text, f->b + at + FX_SIN_ADDR) == 1);
}

static void
add_sin6(struct fx *f, const char *text, uint32_t scope_id)
{
	size_t at = add_sa(f, FX_SIN6_SIZE, FX_AF_INET6);

	CHECK(inet_pton(AF_INET6, text, f->b + at + FX_SIN6_ADDR) == 1);
	put_u32(f, at + FX_SIN6_SCOPE_ID, scope_id);
}

/* The interface's sockaddr_dl as the kernel sends it for RTA_IFP: name,
 * then a 6-byte Ethernet address. */
static void
add_sdl(struct fx *f, unsigned int index, const char *name)
{
	size_t at = add_sa(f, FX_SDL_SIZE, FX_AF_LINK), nlen = strlen(name);

	put_u16(f, at + FX_SDL_INDEX, index);
	put_u8(f, at + FX_SDL_TYPE, 6);		/* IFT_ETHER */
	put_u8(f, at + FX_SDL_NLEN, (unsigned int)nlen);
	put_u8(f, at + FX_SDL_ALEN, 6);
	memcpy(f->b + at + FX_SDL_DATA, name, nlen);
	memcpy(f->b + at + FX_SDL_DATA + nlen, "\x02\x00\x5e\x00\x53\x01", 6);
}

/* A kernel netmask: sa_len trimmed after the last non-zero byte, as
 * FreeBSD sends it (255.255.255.0 has sa_len 7). */
static void
add_netmask4(struct fx *f, unsigned int bytes)
{
	size_t at = add_sa(f, FX_SIN_ADDR + bytes, FX_AF_INET);

	memset(f->b + at + FX_SIN_ADDR, 0xff, bytes);
}

/* RTM_NEWADDR / RTM_DELADDR for an IPv4 address, with what ifconfig's
 * alias makes the kernel send: netmask, interface, address, broadcast. */
static size_t
addr4_msg(struct fx *f, unsigned int type, unsigned int index,
    const char *ifname, const char *addr)
{
	size_t m = msg_begin(f, type, FX_IFAM_SIZE);

	put_u32(f, m + FX_IFAM_ADDRS,
	    FX_RTA_NETMASK | FX_RTA_IFP | FX_RTA_IFA | FX_RTA_BRD);
	put_u32(f, m + FX_IFAM_FLAGS, 0x1);	/* RTF_UP */
	put_u16(f, m + FX_IFAM_INDEX, index);
	put_u32(f, m + FX_IFAM_METRIC, 0);
	add_netmask4(f, 3);
	add_sdl(f, index, ifname);
	add_sin(f, addr);
	add_sin(f, "192.0.2.255");
	msg_end(f, m);
	return m;
}

/* The same for IPv6: netmask (a full sockaddr_in6), interface, address. */
static size_t
addr6_msg(struct fx *f, unsigned int type, unsigned int index,
    const char *ifname, const char *addr, uint32_t scope_id)
{
	size_t m = msg_begin(f, type, FX_IFAM_SIZE);

	put_u32(f, m + FX_IFAM_ADDRS,
	    FX_RTA_NETMASK | FX_RTA_IFP | FX_RTA_IFA);
	put_u16(f, m + FX_IFAM_INDEX, index);
	add_sin6(f, "ffff:ffff:ffff:ffff::", 0);
	add_sdl(f, index, ifname);
	add_sin6(f, addr, scope_id);
	msg_end(f, m);
	return m;
}

static size_t
ifinfo_msg(struct fx *f, unsigned int index, uint32_t flags,
    unsigned int link_state)
{
	size_t m = msg_begin(f, FX_RTM_IFINFO, FX_IFM_SIZE);

	put_u32(f, m + FX_IFM_ADDRS, 0);
	put_u32(f, m + FX_IFM_FLAGS, flags);
	put_u16(f, m + FX_IFM_INDEX, index);
	put_u8(f, m + FX_IFM_DATA + FX_IFI_TYPE, 6);
	put_u8(f, m + FX_IFM_DATA + FX_IFI_LINK_STATE, link_state);
	put_u32(f, m + FX_IFM_DATA + FX_IFI_MTU, 1500);
	msg_end(f, m);
	return m;
}

static size_t
announce_msg(struct fx *f, unsigned int index, const char *name,
    unsigned int what)
{
	size_t m = msg_begin(f, FX_RTM_IFANNOUNCE, FX_IFAN_SIZE);

	put_u16(f, m + FX_IFAN_INDEX, index);
	memcpy(f->b + m + FX_IFAN_NAME, name,
	    strlen(name) < FX_IFNAMSIZ ? strlen(name) : FX_IFNAMSIZ);
	put_u16(f, m + FX_IFAN_WHAT, what);
	msg_end(f, m);
	return m;
}

/* A route message (rt_msghdr): destination, gateway, netmask. */
static size_t
route_msg(struct fx *f, unsigned int type, unsigned int index)
{
	size_t m = msg_begin(f, type, fxm->rtm_size);

	put_u16(f, m + FX_RTM_INDEX, index);
	put_u32(f, m + FX_RTM_FLAGS, 0x1 | 0x2);	/* RTF_UP|GATEWAY */
	put_u32(f, m + FX_RTM_ADDRS,
	    FX_RTA_DST | FX_RTA_GATEWAY | FX_RTA_NETMASK);
	put_u32(f, m + FX_RTM_PID, 4242);
	put_u32(f, m + FX_RTM_SEQ, 1);
	add_sin(f, "198.51.100.0");
	add_sin(f, "192.0.2.1");
	add_netmask4(f, 3);
	msg_end(f, m);
	return m;
}

/* The parser, told the model the fixtures are written in. */
static size_t
parse_len(const struct fx *f, size_t len, struct ifev *ev, size_t max)
{
	struct bsd_layout lay = { fxm->sa_align, fxm->big_endian };

	return rtmsg_parse_bsd_layout(&lay, f->b, len, ev, max);
}

static size_t
parse(const struct fx *f, struct ifev *ev, size_t max)
{
	return parse_len(f, f->len, ev, max);
}

static bool
is_v4(const struct ifev *e, const char *text)
{
	struct in_addr a;

	return e->family == AF_INET && inet_pton(AF_INET, text, &a) == 1 &&
	    memcmp(&a, &e->addr.v4, 4) == 0;
}

static bool
is_v6(const struct ifev *e, const char *text)
{
	struct in6_addr a;

	return e->family == AF_INET6 && inet_pton(AF_INET6, text, &a) == 1 &&
	    memcmp(&a, &e->addr.v6, 16) == 0;
}

/* ------------------------------------------------------------------ */
/* FreeBSD PF_ROUTE                                                   */
/* ------------------------------------------------------------------ */

static void
test_bsd_addr4(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[4];

	addr4_msg(&f, FX_RTM_NEWADDR, 3, "vtnet1", "192.0.2.2");
	/* 20 + netmask 8 + sdl 56 + sin 16 + broadcast 16, in every model */
	CHECK_EQ_INT(f.len, 116);
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK_EQ_INT(ev[0].kind, IFEV_ADDR_ADD);
	CHECK_EQ_INT(ev[0].ifindex, 3);
	CHECK(is_v4(&ev[0], "192.0.2.2"));	/* not the broadcast */
	CHECK_EQ_STR(ev[0].ifname, "vtnet1");
	CHECK(!ev[0].tentative);

	f.len = 0;
	addr4_msg(&f, FX_RTM_DELADDR, 3, "vtnet1", "192.0.2.2");
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK_EQ_INT(ev[0].kind, IFEV_ADDR_DEL);
	CHECK_EQ_INT(ev[0].ifindex, 3);
	CHECK(is_v4(&ev[0], "192.0.2.2"));

	/* the interface index is 16 bits, in the model's byte order */
	f.len = 0;
	addr4_msg(&f, FX_RTM_NEWADDR, 0x1234, "lagg0.4093", "198.51.100.7");
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK_EQ_INT(ev[0].ifindex, 0x1234);
	CHECK_EQ_STR(ev[0].ifname, "lagg0.4093");
	CHECK(is_v4(&ev[0], "198.51.100.7"));
}

static void
test_bsd_addr6(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[4];

	addr6_msg(&f, FX_RTM_NEWADDR, 5, "igb0", "2001:db8::2", 0);
	/* 20 + netmask + sdl 56 + sin6: a sockaddr_in6 (28) takes 32
	 * bytes with 8-byte longs, 28 with 4-byte ones */
	CHECK_EQ_INT(f.len, fxm->sa_align == 8 ? 140 : 132);
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK_EQ_INT(ev[0].kind, IFEV_ADDR_ADD);
	CHECK_EQ_INT(ev[0].ifindex, 5);
	CHECK(is_v6(&ev[0], "2001:db8::2"));
	CHECK_EQ_STR(ev[0].ifname, "igb0");

	f.len = 0;
	addr6_msg(&f, FX_RTM_DELADDR, 5, "igb0", "2001:db8::2", 0);
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK_EQ_INT(ev[0].kind, IFEV_ADDR_DEL);
	CHECK(is_v6(&ev[0], "2001:db8::2"));
}

/* KAME: the kernel may carry a link-local address's interface index in
 * its second 16-bit word.  The event's address must not. */
static void
test_bsd_kame_scope(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[4];

	addr6_msg(&f, FX_RTM_NEWADDR, 7, "ipsec1", "fe80:7::2", 7);
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK_EQ_INT(ev[0].ifindex, 7);
	CHECK(is_v6(&ev[0], "fe80::2"));

	/* a large index fills both bytes */
	f.len = 0;
	addr6_msg(&f, FX_RTM_DELADDR, 0x1ff, "ipsec2", "fe80:1ff::1:2", 0);
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK_EQ_INT(ev[0].kind, IFEV_ADDR_DEL);
	CHECK_EQ_INT(ev[0].ifindex, 0x1ff);
	CHECK(is_v6(&ev[0], "fe80::1:2"));

	/* newer kernels send it cleared: unchanged */
	f.len = 0;
	addr6_msg(&f, FX_RTM_NEWADDR, 7, "ipsec1", "fe80::2", 7);
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK(is_v6(&ev[0], "fe80::2"));

	/* only link-local addresses carry it: a global address keeps its
	 * second word, and so does fec0::/10 */
	f.len = 0;
	addr6_msg(&f, FX_RTM_NEWADDR, 7, "ipsec1", "2001:db8:7::2", 0);
	addr6_msg(&f, FX_RTM_NEWADDR, 7, "ipsec1", "fec0:7::2", 0);
	CHECK_EQ_INT(parse(&f, ev, 4), 2);
	CHECK(is_v6(&ev[0], "2001:db8:7::2"));
	CHECK(is_v6(&ev[1], "fec0:7::2"));
}

static void
test_bsd_announce(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[4];

	announce_msg(&f, 9, "ipsec1", FX_IFAN_ARRIVAL);
	CHECK_EQ_INT(f.len, 24);
	announce_msg(&f, 7, "ovpnc1", FX_IFAN_DEPARTURE);
	CHECK_EQ_INT(parse(&f, ev, 4), 2);
	CHECK_EQ_INT(ev[0].kind, IFEV_IF_ARRIVE);
	CHECK_EQ_INT(ev[0].ifindex, 9);
	CHECK_EQ_STR(ev[0].ifname, "ipsec1");
	CHECK_EQ_INT(ev[1].kind, IFEV_IF_DEPART);
	CHECK_EQ_INT(ev[1].ifindex, 7);
	CHECK_EQ_STR(ev[1].ifname, "ovpnc1");

	/* a name filling all 16 bytes without a NUL: cut at IF_NAMESIZE-1 */
	f.len = 0;
	announce_msg(&f, 10, "abcdefghijklmnop", FX_IFAN_ARRIVAL);
	CHECK_EQ_INT(f.b[FX_IFAN_WHAT], FX_IFAN_ARRIVAL);
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK_EQ_STR(ev[0].ifname, "abcdefghijklmno");

	/* an unknown `what` is not an event */
	f.len = 0;
	announce_msg(&f, 10, "gif0", 2);
	announce_msg(&f, 11, "gif1", 0x100);
	CHECK_EQ_INT(parse(&f, ev, 4), 0);
}

static void
test_bsd_ifinfo(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[8];

	ifinfo_msg(&f, 4, FX_IFF_UP | FX_IFF_RUNNING, FX_LINK_STATE_UP);
	CHECK_EQ_INT(f.len, 168);
	ifinfo_msg(&f, 4, FX_IFF_UP | FX_IFF_RUNNING, FX_LINK_STATE_DOWN);
	ifinfo_msg(&f, 4, FX_IFF_RUNNING, FX_LINK_STATE_UP);	/* down */
	/* tunnels that never learn a link state report UNKNOWN: up */
	ifinfo_msg(&f, 4, FX_IFF_UP, FX_LINK_STATE_UNKNOWN);
	ifinfo_msg(&f, 0x2345, FX_IFF_UP | 0x8000, FX_LINK_STATE_UP);
	CHECK_EQ_INT(parse(&f, ev, 8), 5);
	CHECK_EQ_INT(ev[0].kind, IFEV_LINK);
	CHECK_EQ_INT(ev[0].ifindex, 4);
	CHECK(ev[0].link_up);
	CHECK_EQ_STR(ev[0].ifname, "");
	CHECK_EQ_INT(ev[1].kind, IFEV_LINK);
	CHECK(!ev[1].link_up);
	CHECK(!ev[2].link_up);
	CHECK(ev[3].link_up);
	CHECK_EQ_INT(ev[4].ifindex, 0x2345);
	CHECK(ev[4].link_up);
}

/* Route changes are most of the traffic and must cost nothing. */
static void
test_bsd_routes_ignored(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[4];
	size_t m;

	route_msg(&f, FX_RTM_ADD, 3);
	CHECK_EQ_INT(f.len, (fxm->sa_align == 8 ? 152 : 92) + 16 + 16 + 8);
	route_msg(&f, FX_RTM_DELETE, 3);
	route_msg(&f, FX_RTM_CHANGE, 3);
	route_msg(&f, FX_RTM_GET, 3);
	CHECK_EQ_INT(parse(&f, ev, 4), 0);
	/* a multicast address message is not ours either */
	m = msg_begin(&f, FX_RTM_NEWMADDR, FX_IFAM_SIZE);
	put_u32(&f, m + FX_IFAM_ADDRS, FX_RTA_IFA);
	add_sin(&f, "224.0.0.1");
	msg_end(&f, m);
	CHECK_EQ_INT(parse(&f, ev, 4), 0);
	/* ... and the walk goes on behind them */
	addr4_msg(&f, FX_RTM_NEWADDR, 3, "vtnet1", "192.0.2.9");
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK(is_v4(&ev[0], "192.0.2.9"));
	/* a route message that happens to be 20 or 168 bytes long is still
	 * rejected on its type */
	f.len = 0;
	m = msg_begin(&f, FX_RTM_ADD, FX_IFAM_SIZE);
	put_u32(&f, m + FX_IFAM_ADDRS, FX_RTA_IFA);
	add_sin(&f, "192.0.2.2");
	msg_end(&f, m);
	CHECK_EQ_INT(parse(&f, ev, 4), 0);
}

/* Messages for other interfaces and addresses parse as what they are. */
static void
test_bsd_other_interfaces(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[8];

	addr4_msg(&f, FX_RTM_NEWADDR, 11, "em0", "198.51.100.1");
	addr6_msg(&f, FX_RTM_DELADDR, 12, "em1", "2001:db8:1::1", 0);
	ifinfo_msg(&f, 13, 0, FX_LINK_STATE_DOWN);
	announce_msg(&f, 14, "tun0", FX_IFAN_DEPARTURE);
	CHECK_EQ_INT(parse(&f, ev, 8), 4);
	CHECK_EQ_INT(ev[0].ifindex, 11);
	CHECK(is_v4(&ev[0], "198.51.100.1"));
	CHECK(!is_v4(&ev[0], "192.0.2.2"));
	CHECK_EQ_INT(ev[1].ifindex, 12);
	CHECK(is_v6(&ev[1], "2001:db8:1::1"));
	CHECK_EQ_INT(ev[2].ifindex, 13);
	CHECK_EQ_INT(ev[3].ifindex, 14);
	CHECK_EQ_STR(ev[3].ifname, "tun0");
}

/* Each type one byte below its minimum is skipped by its msglen; the
 * message after it is still read. */
static void
test_bsd_truncated(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[4];
	size_t m;

	m = msg_begin(&f, FX_RTM_NEWADDR, FX_IFAM_SIZE - 1);
	msg_end(&f, m);
	m = msg_begin(&f, FX_RTM_DELADDR, FX_IFAM_SIZE - 1);
	msg_end(&f, m);
	m = msg_begin(&f, FX_RTM_IFINFO, FX_IFM_SIZE - 1);
	put_u32(&f, m + FX_IFM_FLAGS, FX_IFF_UP);
	put_u16(&f, m + FX_IFM_INDEX, 4);
	msg_end(&f, m);
	m = msg_begin(&f, FX_RTM_IFANNOUNCE, FX_IFAN_SIZE - 1);
	put_u16(&f, m + FX_IFAN_INDEX, 4);
	memcpy(f.b + m + FX_IFAN_NAME, "em0", 3);
	msg_end(&f, m);
	CHECK_EQ_INT(parse(&f, ev, 4), 0);
	announce_msg(&f, 4, "em0", FX_IFAN_ARRIVAL);
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK_EQ_INT(ev[0].kind, IFEV_IF_ARRIVE);
	CHECK_EQ_STR(ev[0].ifname, "em0");

	/* exactly the header, no sockaddrs although RTA_IFA is set */
	f.len = 0;
	m = msg_begin(&f, FX_RTM_NEWADDR, FX_IFAM_SIZE);
	put_u32(&f, m + FX_IFAM_ADDRS, FX_RTA_IFA);
	msg_end(&f, m);
	CHECK_EQ_INT(parse(&f, ev, 4), 0);

	/* the address sockaddr runs past rtm_msglen (the bytes are there in
	 * the buffer, but belong to no message) */
	f.len = 0;
	m = addr4_msg(&f, FX_RTM_NEWADDR, 3, "vtnet1", "192.0.2.2");
	put_u16(&f, m + FX_MSGLEN, 20 + 8 + 56 + 8);
	f.len = m + 20 + 8 + 56 + 8;
	CHECK_EQ_INT(parse(&f, ev, 4), 0);
	/* sa_len claims more than the message holds */
	f.len = 0;
	m = msg_begin(&f, FX_RTM_NEWADDR, FX_IFAM_SIZE);
	put_u32(&f, m + FX_IFAM_ADDRS, FX_RTA_IFA);
	add_sin(&f, "192.0.2.2");
	put_u8(&f, m + FX_IFAM_SIZE + FX_SA_LEN, 200);
	msg_end(&f, m);
	CHECK_EQ_INT(parse(&f, ev, 4), 0);
	/* an address sockaddr too short for its family's address */
	f.len = 0;
	m = msg_begin(&f, FX_RTM_NEWADDR, FX_IFAM_SIZE);
	put_u32(&f, m + FX_IFAM_ADDRS, FX_RTA_IFA);
	add_sa(&f, FX_SIN_ADDR + 3, FX_AF_INET);
	msg_end(&f, m);
	m = msg_begin(&f, FX_RTM_NEWADDR, FX_IFAM_SIZE);
	put_u32(&f, m + FX_IFAM_ADDRS, FX_RTA_IFA);
	add_sa(&f, FX_SIN6_ADDR + 15, FX_AF_INET6);
	msg_end(&f, m);
	CHECK_EQ_INT(parse(&f, ev, 4), 0);
	/* no RTA_IFA at all: no address, no event */
	f.len = 0;
	m = msg_begin(&f, FX_RTM_NEWADDR, FX_IFAM_SIZE);
	put_u32(&f, m + FX_IFAM_ADDRS, FX_RTA_IFP);
	add_sdl(&f, 3, "vtnet1");
	msg_end(&f, m);
	CHECK_EQ_INT(parse(&f, ev, 4), 0);
	/* a sockaddr_dl whose sdl_nlen exceeds its sa_len: name is cut */
	f.len = 0;
	m = msg_begin(&f, FX_RTM_NEWADDR, FX_IFAM_SIZE);
	put_u32(&f, m + FX_IFAM_ADDRS, FX_RTA_IFP | FX_RTA_IFA);
	add_sa(&f, FX_SDL_DATA + 4, FX_AF_LINK);
	memcpy(f.b + m + FX_IFAM_SIZE + FX_SDL_DATA, "em12", 4);
	put_u8(&f, m + FX_IFAM_SIZE + FX_SDL_NLEN, 40);
	add_sin(&f, "192.0.2.2");
	msg_end(&f, m);
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK_EQ_STR(ev[0].ifname, "em12");
	CHECK(is_v4(&ev[0], "192.0.2.2"));
	/* an RTA_IFP that is not a sockaddr_dl, or one with no room for a
	 * name: the address counts, the name stays empty */
	f.len = 0;
	m = msg_begin(&f, FX_RTM_NEWADDR, FX_IFAM_SIZE);
	put_u32(&f, m + FX_IFAM_ADDRS, FX_RTA_IFP | FX_RTA_IFA);
	add_sin(&f, "192.0.2.7");
	add_sin(&f, "192.0.2.2");
	msg_end(&f, m);
	m = msg_begin(&f, FX_RTM_NEWADDR, FX_IFAM_SIZE);
	put_u32(&f, m + FX_IFAM_ADDRS, FX_RTA_IFP | FX_RTA_IFA);
	add_sa(&f, FX_SDL_DATA, FX_AF_LINK);
	put_u8(&f, m + FX_IFAM_SIZE + FX_SDL_NLEN, 4);
	add_sin(&f, "192.0.2.2");
	msg_end(&f, m);
	CHECK_EQ_INT(parse(&f, ev, 4), 2);
	CHECK(is_v4(&ev[0], "192.0.2.2"));
	CHECK_EQ_STR(ev[0].ifname, "");
	CHECK(is_v4(&ev[1], "192.0.2.2"));
	CHECK_EQ_STR(ev[1].ifname, "");
	/* an RTA_IFA of another family (a sockaddr_dl) is no address */
	f.len = 0;
	m = msg_begin(&f, FX_RTM_NEWADDR, FX_IFAM_SIZE);
	put_u32(&f, m + FX_IFAM_ADDRS, FX_RTA_IFA);
	add_sdl(&f, 3, "vtnet1");
	msg_end(&f, m);
	CHECK_EQ_INT(parse(&f, ev, 4), 0);
}

static void
test_bsd_version(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[4];
	size_t m;

	m = addr4_msg(&f, FX_RTM_NEWADDR, 3, "vtnet1", "192.0.2.2");
	put_u8(&f, m + FX_VERSION, 4);
	m = ifinfo_msg(&f, 3, FX_IFF_UP, FX_LINK_STATE_UP);
	put_u8(&f, m + FX_VERSION, 6);
	CHECK_EQ_INT(parse(&f, ev, 4), 0);
	/* skipped by length, not the end of the read */
	announce_msg(&f, 3, "vtnet1", FX_IFAN_DEPARTURE);
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK_EQ_INT(ev[0].kind, IFEV_IF_DEPART);
}

/* rtm_msglen is the only framing: when it cannot be trusted, stop. */
static void
test_bsd_bad_msglen(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[4];
	size_t m;

	/* longer than the read: the first message still counts, the
	 * second is dropped whole */
	announce_msg(&f, 3, "em0", FX_IFAN_ARRIVAL);
	m = addr4_msg(&f, FX_RTM_NEWADDR, 3, "em0", "192.0.2.2");
	CHECK_EQ_INT(parse(&f, ev, 4), 2);
	f.len--;
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK_EQ_INT(ev[0].kind, IFEV_IF_ARRIVE);
	put_u16(&f, m + FX_MSGLEN, 0xffff);
	f.len++;
	CHECK_EQ_INT(parse(&f, ev, 4), 1);

	/* msglen below 4 would never advance: the read ends there */
	f.len = 0;
	m = msg_begin(&f, FX_RTM_IFANNOUNCE, 4);
	put_u16(&f, m + FX_MSGLEN, 0);
	announce_msg(&f, 3, "em0", FX_IFAN_ARRIVAL);
	CHECK_EQ_INT(parse(&f, ev, 4), 0);
	put_u16(&f, m + FX_MSGLEN, 3);
	CHECK_EQ_INT(parse(&f, ev, 4), 0);
	put_u16(&f, m + FX_MSGLEN, 4);	/* a bare prefix: skipped */
	CHECK_EQ_INT(parse(&f, ev, 4), 1);

	/* fewer than 4 bytes left, and empty reads */
	CHECK_EQ_INT(parse_len(&f, 3, ev, 4), 0);
	CHECK_EQ_INT(parse_len(&f, 0, ev, 4), 0);
	f.len = 0;
	announce_msg(&f, 3, "em0", FX_IFAN_ARRIVAL);
	CHECK_EQ_INT(parse_len(&f, f.len + 3, ev, 4), 1);
}

/* SA_SIZE: a sockaddr with sa_len 0 still takes one long. */
static void
test_bsd_zero_sockaddr(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[4];
	size_t m;

	m = msg_begin(&f, FX_RTM_NEWADDR, FX_IFAM_SIZE);
	put_u32(&f, m + FX_IFAM_ADDRS,
	    FX_RTA_DST | FX_RTA_NETMASK | FX_RTA_IFP | FX_RTA_IFA);
	add_sa(&f, 0, 0);
	add_sa(&f, 0, 0);
	add_sdl(&f, 3, "vtnet1");
	add_sin(&f, "192.0.2.2");
	msg_end(&f, m);
	CHECK_EQ_INT(f.len, 20 + 2 * fxm->sa_align + 56 + 16);
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK(is_v4(&ev[0], "192.0.2.2"));
	CHECK_EQ_STR(ev[0].ifname, "vtnet1");
	/* a zero-length RTA_IFA is no address */
	f.len = 0;
	m = msg_begin(&f, FX_RTM_DELADDR, FX_IFAM_SIZE);
	put_u32(&f, m + FX_IFAM_ADDRS, FX_RTA_IFA | FX_RTA_BRD);
	add_sa(&f, 0, 0);
	add_sin(&f, "192.0.2.255");
	msg_end(&f, m);
	CHECK_EQ_INT(parse(&f, ev, 4), 0);
	/* sa_len 1: no family byte; skipped as one long */
	f.len = 0;
	m = msg_begin(&f, FX_RTM_NEWADDR, FX_IFAM_SIZE);
	put_u32(&f, m + FX_IFAM_ADDRS, FX_RTA_NETMASK | FX_RTA_IFA);
	add_sa(&f, 1, 0);
	add_sin6(&f, "2001:db8::5", 0);
	msg_end(&f, m);
	CHECK_EQ_INT(parse(&f, ev, 4), 1);
	CHECK(is_v6(&ev[0], "2001:db8::5"));
}

/* One read, many messages, as after a burst; `max` bounds the events. */
static void
test_bsd_many(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[8];
	size_t i;

	announce_msg(&f, 9, "ipsec1", FX_IFAN_ARRIVAL);
	route_msg(&f, FX_RTM_ADD, 9);
	ifinfo_msg(&f, 9, FX_IFF_UP | FX_IFF_RUNNING, FX_LINK_STATE_UP);
	addr6_msg(&f, FX_RTM_NEWADDR, 9, "ipsec1", "fe80:9::2", 9);
	route_msg(&f, FX_RTM_DELETE, 9);
	addr4_msg(&f, FX_RTM_DELADDR, 9, "ipsec1", "192.0.2.2");
	CHECK_EQ_INT(parse(&f, ev, 8), 4);
	CHECK_EQ_INT(ev[0].kind, IFEV_IF_ARRIVE);
	CHECK_EQ_INT(ev[1].kind, IFEV_LINK);
	CHECK_EQ_INT(ev[2].kind, IFEV_ADDR_ADD);
	CHECK(is_v6(&ev[2], "fe80::2"));
	CHECK_EQ_INT(ev[3].kind, IFEV_ADDR_DEL);
	CHECK(is_v4(&ev[3], "192.0.2.2"));
	for (i = 0; i < 4; i++)
		CHECK_EQ_INT(ev[i].ifindex, 9);

	/* max smaller than the events: the first max, nothing written
	 * behind them */
	memset(ev, 0xa5, sizeof(ev));
	CHECK_EQ_INT(parse(&f, ev, 2), 2);
	CHECK_EQ_INT(ev[0].kind, IFEV_IF_ARRIVE);
	CHECK_EQ_INT(ev[1].kind, IFEV_LINK);
	CHECK_EQ_INT(((uint8_t *)&ev[2])[0], 0xa5);
	CHECK_EQ_INT(parse(&f, ev, 0), 0);
	CHECK_EQ_INT(((uint8_t *)&ev[0])[0], IFEV_IF_ARRIVE);
}

/* ------------------------------------------------------------------ */
/* The watcher fed by the BSD parser                                  */
/* ------------------------------------------------------------------ */

/* What watch_thread does with one read: the last trigger wins. */
static enum trigger
feed(struct watch_state *ws, const struct fx *f)
{
	struct ifev ev[16];
	enum trigger why = TRIG_NONE, t;
	size_t n, i;

	n = parse(f, ev, 16);
	for (i = 0; i < n; i++)
		if ((t = watch_apply(ws, &ev[i])) != TRIG_NONE)
			why = t;
	return why;
}

static void
test_bsd_watch(void)
{
	unsigned int lo = if_nametoindex("lo");
	struct watch_state ws = { true, 40000, true, TRIG_NONE };
	struct fx f = { .len = 0 };
	char err[256], text[64];

	CHECK(lo != 0);
	CHECK_EQ_INT(parse_args(4, (char *[]){ "dpinger", "-B", "192.0.2.2",
	    "192.0.2.1", NULL }, &cfg, err, sizeof(err)), PARSE_OK);

	/* the pfSense case: ipsec1 destroyed (address gone with it) */
	announce_msg(&f, 40000, "ipsec1", FX_IFAN_DEPARTURE);
	CHECK_EQ_INT(feed(&ws, &f), TRIG_NONE);
	CHECK(!ws.addr_present && !ws.link_up);
	/* others come and go: nothing */
	f.len = 0;
	announce_msg(&f, 40001, "ipsec2", FX_IFAN_ARRIVAL);
	ifinfo_msg(&f, 40001, FX_IFF_UP | FX_IFF_RUNNING, FX_LINK_STATE_UP);
	addr4_msg(&f, FX_RTM_NEWADDR, 40001, "ipsec2", "192.0.2.3");
	addr4_msg(&f, FX_RTM_NEWADDR, 40001, "ipsec2", "198.51.100.2");
	addr6_msg(&f, FX_RTM_NEWADDR, 40001, "ipsec2", "2001:db8::c000:202",
	    0);
	route_msg(&f, FX_RTM_ADD, 40001);
	CHECK_EQ_INT(feed(&ws, &f), TRIG_NONE);
	CHECK(!ws.addr_present);
	/* ipsec1 back with a new index: the address waits for the link
	 * (index 40002 does not exist here, so it reads as down) */
	f.len = 0;
	announce_msg(&f, 40002, "ipsec1", FX_IFAN_ARRIVAL);
	addr4_msg(&f, FX_RTM_NEWADDR, 40002, "ipsec1", "192.0.2.2");
	CHECK_EQ_INT(feed(&ws, &f), TRIG_NONE);
	CHECK(ws.addr_present);
	CHECK_EQ_INT(ws.ifindex, 40002);
	/* another interface's link coming up does not release it */
	f.len = 0;
	ifinfo_msg(&f, 40001, FX_IFF_UP | FX_IFF_RUNNING, FX_LINK_STATE_UP);
	CHECK_EQ_INT(feed(&ws, &f), TRIG_NONE);
	/* ours does, and the address is the reason given */
	f.len = 0;
	ifinfo_msg(&f, 40002, FX_IFF_UP | FX_IFF_RUNNING, FX_LINK_STATE_UP);
	CHECK_EQ_INT(feed(&ws, &f), TRIG_ADDR_RETURNED);
	/* the same message again, and a refresh of the address: nothing */
	addr4_msg(&f, FX_RTM_NEWADDR, 40002, "ipsec1", "192.0.2.2");
	CHECK_EQ_INT(feed(&ws, &f), TRIG_NONE);
	/* deleted and added back in one read: one trigger */
	f.len = 0;
	addr4_msg(&f, FX_RTM_DELADDR, 40002, "ipsec1", "192.0.2.2");
	addr4_msg(&f, FX_RTM_NEWADDR, 40002, "ipsec1", "192.0.2.2");
	CHECK_EQ_INT(feed(&ws, &f), TRIG_ADDR_RETURNED);
	/* another interface losing the same address leaves ours alone: no
	 * trigger, and the next refresh on ours is still just a refresh */
	f.len = 0;
	addr4_msg(&f, FX_RTM_DELADDR, 40001, "ipsec2", "192.0.2.2");
	CHECK_EQ_INT(feed(&ws, &f), TRIG_NONE);
	CHECK(ws.addr_present);
	CHECK_EQ_INT(ws.ifindex, 40002);
	f.len = 0;
	addr4_msg(&f, FX_RTM_NEWADDR, 40002, "ipsec1", "192.0.2.2");
	CHECK_EQ_INT(feed(&ws, &f), TRIG_NONE);

	/* IPv6 link-local with a scope: only the KAME-cleared address
	 * matches -B fe80::2%lo */
	CHECK_EQ_INT(parse_args(4, (char *[]){ "dpinger", "-B", "fe80::2%lo",
	    "fe80::1%lo", NULL }, &cfg, err, sizeof(err)), PARSE_OK);
	ws = (struct watch_state){ false, 0, false, TRIG_NONE };
	f.len = 0;
	addr6_msg(&f, FX_RTM_NEWADDR, lo, "lo", "fe80::3", lo);
	addr6_msg(&f, FX_RTM_NEWADDR, lo + 1000, "lo9", "fe80::2", 0);
	CHECK_EQ_INT(feed(&ws, &f), TRIG_NONE);
	f.len = 0;
	snprintf(text, sizeof(text), "fe80:%x::2", lo);
	addr6_msg(&f, FX_RTM_NEWADDR, lo, "lo", text, lo);
	/* the KAME word carries lo's index, big-endian */
	CHECK_EQ_INT(f.b[FX_IFAM_SIZE + sa_size(FX_SIN6_SIZE) + 56 +
	    FX_SIN6_ADDR + 3], lo & 0xff);
	CHECK_EQ_INT(feed(&ws, &f), TRIG_ADDR_RETURNED);
	CHECK_EQ_INT(ws.ifindex, lo);
	memset(&cfg, 0, sizeof(cfg));
}

/* ------------------------------------------------------------------ */
/* Layout models                                                      */
/* ------------------------------------------------------------------ */

/* One read with a message of each kind, at an index whose two bytes
 * differ: what parses right in one model only. */
static void
mixed_read(struct fx *f)
{
	f->len = 0;
	announce_msg(f, 0x102, "ipsec1", FX_IFAN_ARRIVAL);
	ifinfo_msg(f, 0x102, FX_IFF_UP | FX_IFF_RUNNING, FX_LINK_STATE_UP);
	addr6_msg(f, FX_RTM_NEWADDR, 0x102, "ipsec1", "2001:db8::2", 0);
	addr4_msg(f, FX_RTM_NEWADDR, 0x102, "ipsec1", "192.0.2.2");
}

static bool
mixed_read_parsed(const struct ifev *ev, size_t n)
{
	size_t i;

	if (n != 4 || ev[0].kind != IFEV_IF_ARRIVE || !ev[1].link_up ||
	    !is_v6(&ev[2], "2001:db8::2") || !is_v4(&ev[3], "192.0.2.2") ||
	    strcmp(ev[2].ifname, "ipsec1") != 0)
		return false;
	for (i = 0; i < n; i++)
		if (ev[i].ifindex != 0x102)
			return false;
	return true;
}

/* Each model's fixtures parse right with that model's layout only: the
 * layouts differ where it matters, and the parser follows the one it is
 * given. */
static void
test_bsd_models_differ(void)
{
	struct fx f;
	struct ifev ev[8];
	size_t i, j;

	for (i = 0; i < sizeof(fx_models) / sizeof(fx_models[0]); i++) {
		fxm = &fx_models[i];
		mixed_read(&f);
		for (j = 0; j < sizeof(fx_models) / sizeof(fx_models[0]);
		    j++) {
			struct bsd_layout lay = { fx_models[j].sa_align,
			    fx_models[j].big_endian };
			size_t n = rtmsg_parse_bsd_layout(&lay, f.b, f.len, ev,
			    8);

			CHECK(mixed_read_parsed(ev, n) == (i == j));
		}
	}
	fxm = &fx_models[0];
}

/* rtmsg_parse_bsd(), what the watcher calls, parses the host's model. */
static void
test_bsd_host_model(void)
{
	const uint16_t one = 1;
	bool big = *(const uint8_t *)&one == 0;
	struct fx f;
	struct ifev ev[8];
	size_t i;

	fxm = NULL;
	for (i = 0; i < sizeof(fx_models) / sizeof(fx_models[0]); i++)
		if (fx_models[i].sa_align == sizeof(long) &&
		    fx_models[i].big_endian == big)
			fxm = &fx_models[i];
	CHECK(fxm != NULL);
	if (fxm == NULL)
		fxm = &fx_models[0];
	mixed_read(&f);
	CHECK(mixed_read_parsed(ev, rtmsg_parse_bsd(f.b, f.len, ev, 8)));
	fxm = &fx_models[0];
}

/* Every PF_ROUTE test, once per model. */
static void
test_bsd_every_model(void)
{
	void (*tests[])(void) = { test_bsd_addr4, test_bsd_addr6,
	    test_bsd_kame_scope, test_bsd_announce, test_bsd_ifinfo,
	    test_bsd_routes_ignored, test_bsd_other_interfaces,
	    test_bsd_truncated, test_bsd_version, test_bsd_bad_msglen,
	    test_bsd_zero_sockaddr, test_bsd_many, test_bsd_watch };
	size_t i, t;

	for (i = 0; i < sizeof(fx_models) / sizeof(fx_models[0]); i++) {
		unsigned int failed = unit_failed;

		fxm = &fx_models[i];
		for (t = 0; t < sizeof(tests) / sizeof(tests[0]); t++)
			tests[t]();
		if (unit_failed != failed)
			fprintf(stderr, "(the failures above: model %s)\n",
			    fxm->name);
	}
	fxm = &fx_models[0];
}

/* ------------------------------------------------------------------ */
/* Linux rtnetlink                                                    */
/* ------------------------------------------------------------------ */

#if defined(WATCH_NETLINK)
static size_t
nl_begin(struct fx *f, uint16_t type, const void *body, size_t blen)
{
	struct nlmsghdr nh;
	size_t start = f->len;

	memset(&nh, 0, sizeof(nh));
	nh.nlmsg_type = type;
	nh.nlmsg_seq = 1;
	memcpy(f->b + start, &nh, sizeof(nh));
	memset(f->b + start + NLMSG_HDRLEN, 0, NLMSG_ALIGN(blen));
	if (blen > 0)
		memcpy(f->b + start + NLMSG_HDRLEN, body, blen);
	f->len += NLMSG_HDRLEN + NLMSG_ALIGN(blen);
	return start;
}

static void
nl_attr(struct fx *f, uint16_t type, const void *data, size_t dlen)
{
	struct rtattr rta;

	rta.rta_len = (unsigned short)RTA_LENGTH(dlen);
	rta.rta_type = type;
	memset(f->b + f->len, 0, RTA_SPACE(dlen));
	memcpy(f->b + f->len, &rta, sizeof(rta));
	memcpy(f->b + f->len + RTA_LENGTH(0), data, dlen);
	f->len += RTA_SPACE(dlen);
}

static void
nl_end(struct fx *f, size_t start)
{
	uint32_t len = (uint32_t)(f->len - start);

	memcpy(f->b + start + offsetof(struct nlmsghdr, nlmsg_len), &len,
	    sizeof(len));
}

static size_t
nl_addr(struct fx *f, uint16_t type, int family, unsigned int index,
    uint8_t flags, const char *local, const char *address)
{
	struct ifaddrmsg ifa;
	uint8_t a[16];
	size_t m;

	memset(&ifa, 0, sizeof(ifa));
	ifa.ifa_family = (uint8_t)family;
	ifa.ifa_prefixlen = family == AF_INET ? 24 : 64;
	ifa.ifa_flags = flags;
	ifa.ifa_index = index;
	m = nl_begin(f, type, &ifa, sizeof(ifa));
	if (address != NULL) {
		CHECK(inet_pton(family, address, a) == 1);
		nl_attr(f, IFA_ADDRESS, a, family == AF_INET ? 4 : 16);
	}
	if (local != NULL) {
		CHECK(inet_pton(family, local, a) == 1);
		nl_attr(f, IFA_LOCAL, a, family == AF_INET ? 4 : 16);
	}
	nl_attr(f, IFA_LABEL, "veth0", 6);
	nl_end(f, m);
	return m;
}

static size_t
nl_link(struct fx *f, uint16_t type, int index, unsigned int flags,
    const char *name)
{
	struct ifinfomsg ifi;
	uint32_t mtu = 1500;
	size_t m;

	memset(&ifi, 0, sizeof(ifi));
	ifi.ifi_family = AF_UNSPEC;
	ifi.ifi_index = index;
	ifi.ifi_flags = flags;
	ifi.ifi_change = 0xffffffff;
	m = nl_begin(f, type, &ifi, sizeof(ifi));
	nl_attr(f, IFLA_MTU, &mtu, sizeof(mtu));
	if (name != NULL)
		nl_attr(f, IFLA_IFNAME, name, strlen(name) + 1);
	nl_end(f, m);
	return m;
}

static size_t
nlparse(const struct fx *f, struct ifev *ev, size_t max)
{
	return rtmsg_parse_netlink(f->b, f->len, ev, max);
}

static void
test_nl_addr(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[8];

	/* IPv4: IFA_LOCAL is ours even when IFA_ADDRESS (the peer) comes
	 * first */
	nl_addr(&f, RTM_NEWADDR, AF_INET, 3, 0, "192.0.2.2", "192.0.2.1");
	nl_addr(&f, RTM_DELADDR, AF_INET, 3, 0, "192.0.2.2", "192.0.2.2");
	/* IPv6: only IFA_ADDRESS */
	nl_addr(&f, RTM_NEWADDR, AF_INET6, 4, IFA_F_PERMANENT, NULL,
	    "2001:db8::2");
	nl_addr(&f, RTM_DELADDR, AF_INET6, 4, 0, NULL, "fe80::2");
	CHECK_EQ_INT(nlparse(&f, ev, 8), 4);
	CHECK_EQ_INT(ev[0].kind, IFEV_ADDR_ADD);
	CHECK_EQ_INT(ev[0].ifindex, 3);
	CHECK(is_v4(&ev[0], "192.0.2.2"));
	CHECK_EQ_INT(ev[1].kind, IFEV_ADDR_DEL);
	CHECK(is_v4(&ev[1], "192.0.2.2"));
	CHECK_EQ_INT(ev[2].kind, IFEV_ADDR_ADD);
	CHECK_EQ_INT(ev[2].ifindex, 4);
	CHECK(is_v6(&ev[2], "2001:db8::2"));
	CHECK(!ev[2].tentative);
	CHECK_EQ_INT(ev[3].kind, IFEV_ADDR_DEL);
	CHECK(is_v6(&ev[3], "fe80::2"));

	/* no address attribute, or another family: nothing */
	f.len = 0;
	nl_addr(&f, RTM_NEWADDR, AF_INET, 3, 0, NULL, NULL);
	nl_addr(&f, RTM_NEWADDR, AF_PACKET, 3, 0, NULL, NULL);
	CHECK_EQ_INT(nlparse(&f, ev, 8), 0);
}

static void
test_nl_tentative(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[8];
	uint32_t flags;
	size_t m;

	/* the 8-bit ifa_flags */
	nl_addr(&f, RTM_NEWADDR, AF_INET6, 4, IFA_F_TENTATIVE, NULL,
	    "2001:db8::2");
	nl_addr(&f, RTM_NEWADDR, AF_INET6, 4, IFA_F_DADFAILED, NULL,
	    "2001:db8::2");
	nl_addr(&f, RTM_NEWADDR, AF_INET6, 4, IFA_F_OPTIMISTIC, NULL,
	    "2001:db8::2");
	CHECK_EQ_INT(nlparse(&f, ev, 8), 3);
	CHECK(ev[0].tentative);
	CHECK(ev[1].tentative);
	CHECK(!ev[2].tentative);

	/* IFA_FLAGS supersedes ifa_flags */
	f.len = 0;
	m = nl_addr(&f, RTM_NEWADDR, AF_INET6, 4, 0, NULL, "2001:db8::2");
	flags = IFA_F_TENTATIVE | IFA_F_MANAGETEMPADDR;
	nl_attr(&f, IFA_FLAGS, &flags, sizeof(flags));
	nl_end(&f, m);
	m = nl_addr(&f, RTM_NEWADDR, AF_INET6, 4, IFA_F_TENTATIVE, NULL,
	    "2001:db8::2");
	flags = IFA_F_PERMANENT;
	nl_attr(&f, IFA_FLAGS, &flags, sizeof(flags));
	nl_end(&f, m);
	/* a short IFA_FLAGS is not read */
	m = nl_addr(&f, RTM_NEWADDR, AF_INET6, 4, IFA_F_TENTATIVE, NULL,
	    "2001:db8::2");
	nl_attr(&f, IFA_FLAGS, &flags, 2);
	nl_end(&f, m);
	CHECK_EQ_INT(nlparse(&f, ev, 8), 3);
	CHECK(ev[0].tentative);
	CHECK(!ev[1].tentative);
	CHECK(ev[2].tentative);
}

static void
test_nl_link(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[8];

	nl_link(&f, RTM_NEWLINK, 5, IFF_UP | IFF_RUNNING, "veth0");
	nl_link(&f, RTM_NEWLINK, 5, IFF_UP, "veth0");	/* no carrier */
	nl_link(&f, RTM_NEWLINK, 5, IFF_RUNNING, NULL);
	nl_link(&f, RTM_DELLINK, 5, 0, "veth0");
	nl_link(&f, RTM_NEWLINK, 0, IFF_UP | IFF_RUNNING, "bad");
	nl_link(&f, RTM_NEWLINK, -1, IFF_UP | IFF_RUNNING, "bad");
	nl_link(&f, RTM_NEWLINK, 6, IFF_UP | IFF_RUNNING,
	    "a-name-much-longer-than-ifnamsiz");
	CHECK_EQ_INT(nlparse(&f, ev, 8), 5);
	CHECK_EQ_INT(ev[0].kind, IFEV_LINK);
	CHECK_EQ_INT(ev[0].ifindex, 5);
	CHECK(ev[0].link_up);
	CHECK_EQ_STR(ev[0].ifname, "veth0");
	CHECK_EQ_INT(ev[1].kind, IFEV_LINK);
	CHECK(!ev[1].link_up);
	CHECK(!ev[2].link_up);
	CHECK_EQ_STR(ev[2].ifname, "");
	CHECK_EQ_INT(ev[3].kind, IFEV_IF_DEPART);
	CHECK_EQ_INT(ev[3].ifindex, 5);
	CHECK_EQ_STR(ev[3].ifname, "veth0");
	CHECK_EQ_INT(ev[4].ifindex, 6);
	CHECK_EQ_STR(ev[4].ifname, "a-name-much-lon");
}

static void
test_nl_control(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[8];
	struct nlmsgerr err;
	size_t m;

	memset(&err, 0, sizeof(err));
	m = nl_begin(&f, NLMSG_OVERRUN, NULL, 0);
	nl_end(&f, m);
	m = nl_begin(&f, NLMSG_ERROR, &err, sizeof(err));
	nl_end(&f, m);
	m = nl_begin(&f, NLMSG_DONE, &err.error, sizeof(err.error));
	nl_end(&f, m);
	m = nl_begin(&f, NLMSG_NOOP, NULL, 0);
	nl_end(&f, m);
	/* route messages are not in our groups, but are ignored anyway */
	m = nl_begin(&f, RTM_NEWROUTE, &err.error, sizeof(err.error));
	nl_end(&f, m);
	nl_addr(&f, RTM_NEWADDR, AF_INET, 3, 0, "192.0.2.2", NULL);
	CHECK_EQ_INT(nlparse(&f, ev, 8), 2);
	CHECK_EQ_INT(ev[0].kind, IFEV_OVERFLOW);
	CHECK_EQ_INT(ev[1].kind, IFEV_ADDR_ADD);
}

static void
test_nl_truncated(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[8];
	const size_t attrs = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct ifaddrmsg));
	struct rtattr rta;
	struct ifaddrmsg ifa;
	size_t m;

	/* an attribute claiming more than the message: the walk stops, and
	 * the address behind it is not seen */
	m = nl_addr(&f, RTM_NEWADDR, AF_INET, 3, 0, NULL, "192.0.2.2");
	memcpy(&rta, f.b + m + attrs, sizeof(rta));
	CHECK_EQ_INT(rta.rta_type, IFA_ADDRESS);
	rta.rta_len = 200;
	memcpy(f.b + m + attrs, &rta, sizeof(rta));
	/* rta_len below the attribute header */
	m = nl_addr(&f, RTM_NEWADDR, AF_INET, 3, 0, NULL, "192.0.2.2");
	rta.rta_len = 3;
	memcpy(f.b + m + attrs, &rta, sizeof(rta));
	/* IPv6 address attributes of 4 bytes */
	m = nl_begin(&f, RTM_NEWADDR, &(struct ifaddrmsg){
	    .ifa_family = AF_INET6, .ifa_index = 3 }, sizeof(ifa));
	nl_attr(&f, IFA_ADDRESS, "\x20\x01\x0d\xb8", 4);
	nl_attr(&f, IFA_LOCAL, "\x20\x01\x0d\xb8", 4);
	nl_end(&f, m);
	/* an ifaddrmsg cut short */
	m = nl_begin(&f, RTM_NEWADDR, &(struct ifaddrmsg){
	    .ifa_family = AF_INET, .ifa_index = 3 }, 4);
	nl_end(&f, m);
	/* an ifinfomsg cut short */
	m = nl_begin(&f, RTM_NEWLINK, &(struct ifinfomsg){ .ifi_index = 3,
	    .ifi_flags = IFF_UP | IFF_RUNNING }, 8);
	nl_end(&f, m);
	CHECK_EQ_INT(nlparse(&f, ev, 8), 0);
	/* the last attribute cut by nlmsg_len */
	m = nl_addr(&f, RTM_NEWADDR, AF_INET, 3, 0, "192.0.2.2", NULL);
	nl_end(&f, m);
	CHECK_EQ_INT(nlparse(&f, ev, 8), 1);
	f.len -= 12 + 4;	/* IFA_LABEL, and half of IFA_LOCAL */
	nl_end(&f, m);
	CHECK_EQ_INT(nlparse(&f, ev, 8), 0);
}

static void
test_nl_bad_len(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[8];
	uint32_t len;
	size_t m;

	nl_link(&f, RTM_NEWLINK, 5, IFF_UP | IFF_RUNNING, "veth0");
	m = nl_addr(&f, RTM_NEWADDR, AF_INET, 3, 0, "192.0.2.2", NULL);
	nl_link(&f, RTM_NEWLINK, 6, IFF_UP | IFF_RUNNING, "veth1");
	CHECK_EQ_INT(nlparse(&f, ev, 8), 3);
	/* nlmsg_len below the header, zero, or past the read: stop there */
	len = sizeof(struct nlmsghdr) - 1;
	memcpy(f.b + m, &len, 4);
	CHECK_EQ_INT(nlparse(&f, ev, 8), 1);
	len = 0;
	memcpy(f.b + m, &len, 4);
	CHECK_EQ_INT(nlparse(&f, ev, 8), 1);
	len = (uint32_t)f.len + 1;
	memcpy(f.b + m, &len, 4);
	CHECK_EQ_INT(nlparse(&f, ev, 8), 1);
	len = 0xffffffff;
	memcpy(f.b + m, &len, 4);
	CHECK_EQ_INT(nlparse(&f, ev, 8), 1);
	/* a read shorter than a header */
	CHECK_EQ_INT(rtmsg_parse_netlink(f.b, sizeof(struct nlmsghdr) - 1,
	    ev, 8), 0);
	/* an unaligned nlmsg_len still frames by NLMSG_ALIGN */
	f.len = 0;
	m = nl_begin(&f, NLMSG_NOOP, "abc", 3);
	len = NLMSG_HDRLEN + 3;
	memcpy(f.b + m, &len, 4);
	nl_link(&f, RTM_NEWLINK, 7, IFF_UP | IFF_RUNNING, "veth2");
	CHECK_EQ_INT(nlparse(&f, ev, 8), 1);
	CHECK_EQ_INT(ev[0].ifindex, 7);
}

static void
test_nl_many(void)
{
	struct fx f = { .len = 0 };
	struct ifev ev[8];
	int i;

	for (i = 1; i <= 6; i++)
		nl_link(&f, RTM_NEWLINK, i, IFF_UP | IFF_RUNNING, "veth0");
	CHECK_EQ_INT(nlparse(&f, ev, 8), 6);
	for (i = 0; i < 6; i++)
		CHECK_EQ_INT(ev[i].ifindex, i + 1);
	memset(ev, 0x5a, sizeof(ev));
	CHECK_EQ_INT(nlparse(&f, ev, 3), 3);
	CHECK_EQ_INT(ev[2].ifindex, 3);
	CHECK_EQ_INT(((uint8_t *)&ev[3])[0], 0x5a);
}
#endif

#if defined(WATCH_NETLINK)
#define NETLINK_TESTS	, test_nl_addr, test_nl_tentative, test_nl_link, \
    test_nl_control, test_nl_truncated, test_nl_bad_len, test_nl_many
#else
#define NETLINK_TESTS
#endif

UNIT_MAIN(test_bsd_every_model, test_bsd_models_differ, test_bsd_host_model
    NETLINK_TESTS)
