/*
 * FreeBSD routing-message layout as the tests' fixtures write it, restated
 * from route(4), <net/route.h>, <net/if.h>, <net/if_dl.h> and <netinet/in.h>
 * independently of the BSD_* offsets in dpinger.c.  The same on every
 * FreeBSD architecture but for three things, given per model below: the
 * size of long (SA_SIZE pads sockaddrs to it), rt_msghdr's size (it holds
 * u_longs) and the byte order.
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

/*
 * What differs between architectures.  SA_SIZE rounds a sockaddr up to
 * sizeof(long), an empty one to one long.
 */
#define FX_LP64_SA_ALIGN	8	/* amd64, arm64, powerpc64[le], riscv64 */
#define FX_LP64_RTM_SIZE	152
#define FX_ILP32_SA_ALIGN	4	/* i386, armv7 */
#define FX_ILP32_RTM_SIZE	92
/* Byte order of every multi-byte header field, sin6_scope_id and
 * sdl_index: the host's.  Big-endian on powerpc64 (not powerpc64le). */

/* Each architecture's model, when compiled for it (fbsd_layout_check.c). */
#if defined(__x86_64__) || defined(__aarch64__) || \
    (defined(__riscv) && __riscv_xlen == 64) || \
    (defined(__powerpc64__) && defined(__LITTLE_ENDIAN__))
#define FX_ARCH_ILP32		0
#define FX_ARCH_BIG_ENDIAN	0
#elif defined(__powerpc64__)
#define FX_ARCH_ILP32		0
#define FX_ARCH_BIG_ENDIAN	1
#elif defined(__i386__) || defined(__arm__)
#define FX_ARCH_ILP32		1
#define FX_ARCH_BIG_ENDIAN	0
#endif

#endif
