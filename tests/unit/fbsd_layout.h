/*
 * FreeBSD routing-message layout as the tests' fixtures write it, restated
 * from route(4), <net/route.h>, <net/if.h>, <net/if_dl.h> and <netinet/in.h>
 * independently of the BSD_* offsets in dpinger.c.  Same on amd64 and
 * arm64 (LP64, little-endian).
 *
 * tests/unit/fbsd_layout_check.c compiles these numbers against FreeBSD's
 * own headers (make cross, with Zig's bundled FreeBSD sysroot), so the
 * fixtures are proven to be FreeBSD's layout, not assumed to be.
 */
#ifndef FBSD_LAYOUT_H
#define FBSD_LAYOUT_H

#define FX_RTM_VERSION		5
#define FX_RTM_ADD		1
#define FX_RTM_DELETE		2
#define FX_RTM_CHANGE		3
#define FX_RTM_GET		4
#define FX_RTM_NEWADDR		12
#define FX_RTM_DELADDR		13
#define FX_RTM_IFINFO		14
#define FX_RTM_NEWMADDR		15
#define FX_RTM_IFANNOUNCE	17
#define FX_IFAN_ARRIVAL		0
#define FX_IFAN_DEPARTURE	1

/* rtm_addrs / ifam_addrs bits; sockaddrs follow in ascending bit order */
#define FX_RTA_DST		0x01
#define FX_RTA_GATEWAY		0x02
#define FX_RTA_NETMASK		0x04
#define FX_RTA_IFP		0x10
#define FX_RTA_IFA		0x20
#define FX_RTA_BRD		0x80

#define FX_AF_INET		2
#define FX_AF_LINK		18
#define FX_AF_INET6		28
#define FX_IFF_UP		0x1
#define FX_IFF_RUNNING		0x40
#define FX_LINK_STATE_UNKNOWN	0
#define FX_LINK_STATE_DOWN	1
#define FX_LINK_STATE_UP	2
#define FX_IFNAMSIZ		16

/* u_short rtm_msglen, u_char rtm_version, u_char rtm_type: every type */
#define FX_MSGLEN		0
#define FX_VERSION		2
#define FX_TYPE			3

/* struct rt_msghdr */
#define FX_RTM_INDEX		4
#define FX_RTM_FLAGS		8
#define FX_RTM_ADDRS		12
#define FX_RTM_PID		16
#define FX_RTM_SEQ		20
#define FX_RTM_SIZE		152

/* struct ifa_msghdr (RTM_NEWADDR, RTM_DELADDR) */
#define FX_IFAM_ADDRS		4
#define FX_IFAM_FLAGS		8
#define FX_IFAM_INDEX		12
#define FX_IFAM_METRIC		16
#define FX_IFAM_SIZE		20

/* struct if_msghdr (RTM_IFINFO) with its struct if_data */
#define FX_IFM_ADDRS		4
#define FX_IFM_FLAGS		8
#define FX_IFM_INDEX		12
#define FX_IFM_DATA		16
#define FX_IFM_SIZE		168
#define FX_IFI_TYPE		0
#define FX_IFI_LINK_STATE	4
#define FX_IFI_MTU		8
#define FX_IFI_SIZE		152

/* struct if_announcemsghdr (RTM_IFANNOUNCE) */
#define FX_IFAN_INDEX		4
#define FX_IFAN_NAME		6
#define FX_IFAN_WHAT		22
#define FX_IFAN_SIZE		24

/* sockaddrs: u_char sa_len, sa_family_t sa_family, then the address */
#define FX_SA_LEN		0
#define FX_SA_FAMILY		1
#define FX_SA_ALIGN		8	/* SA_SIZE rounds to sizeof(long) */
#define FX_SIN_ADDR		4
#define FX_SIN_SIZE		16
#define FX_SIN6_ADDR		8
#define FX_SIN6_SCOPE_ID	24
#define FX_SIN6_SIZE		28
#define FX_SDL_INDEX		2
#define FX_SDL_TYPE		4
#define FX_SDL_NLEN		5
#define FX_SDL_ALEN		6
#define FX_SDL_DATA		8
#define FX_SDL_SIZE		54

#endif
