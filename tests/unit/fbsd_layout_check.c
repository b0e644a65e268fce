/*
 * Compiled only for FreeBSD (make cross): proves that the fixture layout in
 * fbsd_layout.h, which tests/unit/rtsock.c writes by hand, is the layout of
 * FreeBSD's own headers on this target, down to which model (size of long,
 * byte order) the target has.  Any difference fails the build.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <net/if.h>
#include <net/if_dl.h>
#include <net/route.h>
#include <netinet/in.h>

#include <stddef.h>

#include "fbsd_layout.h"

#if !defined(__FreeBSD__)
#error "this check is for FreeBSD targets only"
#endif
#if !defined(FX_ARCH_ILP32)
#error "an architecture fbsd_layout.h does not describe: add its model"
#endif

#define SAME(a, b)	_Static_assert((a) == (b), #a " != " #b)

SAME(RTM_VERSION, FX_RTM_VERSION);
SAME(RTM_ADD, FX_RTM_ADD);
SAME(RTM_DELETE, FX_RTM_DELETE);
SAME(RTM_CHANGE, FX_RTM_CHANGE);
SAME(RTM_GET, FX_RTM_GET);
SAME(RTM_NEWADDR, FX_RTM_NEWADDR);
SAME(RTM_DELADDR, FX_RTM_DELADDR);
SAME(RTM_IFINFO, FX_RTM_IFINFO);
SAME(RTM_NEWMADDR, FX_RTM_NEWMADDR);
SAME(RTM_IFANNOUNCE, FX_RTM_IFANNOUNCE);
SAME(IFAN_ARRIVAL, FX_IFAN_ARRIVAL);
SAME(IFAN_DEPARTURE, FX_IFAN_DEPARTURE);
SAME(RTA_DST, FX_RTA_DST);
SAME(RTA_GATEWAY, FX_RTA_GATEWAY);
SAME(RTA_NETMASK, FX_RTA_NETMASK);
SAME(RTA_IFP, FX_RTA_IFP);
SAME(RTA_IFA, FX_RTA_IFA);
SAME(RTA_BRD, FX_RTA_BRD);
SAME(AF_INET, FX_AF_INET);
SAME(AF_LINK, FX_AF_LINK);
SAME(AF_INET6, FX_AF_INET6);
SAME(IFF_UP, FX_IFF_UP);
SAME(IFF_RUNNING, FX_IFF_RUNNING);
SAME(LINK_STATE_UNKNOWN, FX_LINK_STATE_UNKNOWN);
SAME(LINK_STATE_DOWN, FX_LINK_STATE_DOWN);
SAME(LINK_STATE_UP, FX_LINK_STATE_UP);
SAME(IFNAMSIZ, FX_IFNAMSIZ);

SAME(offsetof(struct rt_msghdr, rtm_msglen), FX_MSGLEN);
SAME(offsetof(struct rt_msghdr, rtm_version), FX_VERSION);
SAME(offsetof(struct rt_msghdr, rtm_type), FX_TYPE);
SAME(offsetof(struct rt_msghdr, rtm_index), FX_RTM_INDEX);
SAME(offsetof(struct rt_msghdr, rtm_flags), FX_RTM_FLAGS);
SAME(offsetof(struct rt_msghdr, rtm_addrs), FX_RTM_ADDRS);
SAME(offsetof(struct rt_msghdr, rtm_pid), FX_RTM_PID);
SAME(offsetof(struct rt_msghdr, rtm_seq), FX_RTM_SEQ);
SAME(sizeof(struct rt_msghdr),
    FX_ARCH_ILP32 ? FX_ILP32_RTM_SIZE : FX_LP64_RTM_SIZE);

SAME(offsetof(struct ifa_msghdr, ifam_msglen), FX_MSGLEN);
SAME(offsetof(struct ifa_msghdr, ifam_version), FX_VERSION);
SAME(offsetof(struct ifa_msghdr, ifam_type), FX_TYPE);
SAME(offsetof(struct ifa_msghdr, ifam_addrs), FX_IFAM_ADDRS);
SAME(offsetof(struct ifa_msghdr, ifam_flags), FX_IFAM_FLAGS);
SAME(offsetof(struct ifa_msghdr, ifam_index), FX_IFAM_INDEX);
SAME(offsetof(struct ifa_msghdr, ifam_metric), FX_IFAM_METRIC);
SAME(sizeof(struct ifa_msghdr), FX_IFAM_SIZE);

SAME(offsetof(struct if_msghdr, ifm_msglen), FX_MSGLEN);
SAME(offsetof(struct if_msghdr, ifm_version), FX_VERSION);
SAME(offsetof(struct if_msghdr, ifm_type), FX_TYPE);
SAME(offsetof(struct if_msghdr, ifm_addrs), FX_IFM_ADDRS);
SAME(offsetof(struct if_msghdr, ifm_flags), FX_IFM_FLAGS);
SAME(offsetof(struct if_msghdr, ifm_index), FX_IFM_INDEX);
SAME(offsetof(struct if_msghdr, ifm_data), FX_IFM_DATA);
SAME(sizeof(struct if_msghdr), FX_IFM_SIZE);
SAME(offsetof(struct if_data, ifi_type), FX_IFI_TYPE);
SAME(offsetof(struct if_data, ifi_link_state), FX_IFI_LINK_STATE);
SAME(offsetof(struct if_data, ifi_mtu), FX_IFI_MTU);
SAME(sizeof(struct if_data), FX_IFI_SIZE);

SAME(offsetof(struct if_announcemsghdr, ifan_msglen), FX_MSGLEN);
SAME(offsetof(struct if_announcemsghdr, ifan_version), FX_VERSION);
SAME(offsetof(struct if_announcemsghdr, ifan_type), FX_TYPE);
SAME(offsetof(struct if_announcemsghdr, ifan_index), FX_IFAN_INDEX);
SAME(offsetof(struct if_announcemsghdr, ifan_name), FX_IFAN_NAME);
SAME(offsetof(struct if_announcemsghdr, ifan_what), FX_IFAN_WHAT);
SAME(sizeof(struct if_announcemsghdr), FX_IFAN_SIZE);
SAME(sizeof(((struct if_announcemsghdr *)0)->ifan_name), FX_IFNAMSIZ);

SAME(offsetof(struct sockaddr, sa_len), FX_SA_LEN);
SAME(offsetof(struct sockaddr, sa_family), FX_SA_FAMILY);
/* SA_SIZE() rounds sa_len up to a multiple of sizeof(long), 0 to one long
 * (it is not a constant expression, so its argument is checked here). */
SAME(sizeof(long), FX_ARCH_ILP32 ? FX_ILP32_SA_ALIGN : FX_LP64_SA_ALIGN);
SAME(_BYTE_ORDER == _BIG_ENDIAN, FX_ARCH_BIG_ENDIAN);
SAME(offsetof(struct sockaddr_in, sin_addr), FX_SIN_ADDR);
SAME(sizeof(struct sockaddr_in), FX_SIN_SIZE);
SAME(offsetof(struct sockaddr_in6, sin6_addr), FX_SIN6_ADDR);
SAME(offsetof(struct sockaddr_in6, sin6_scope_id), FX_SIN6_SCOPE_ID);
SAME(sizeof(struct sockaddr_in6), FX_SIN6_SIZE);
SAME(offsetof(struct sockaddr_dl, sdl_index), FX_SDL_INDEX);
SAME(offsetof(struct sockaddr_dl, sdl_type), FX_SDL_TYPE);
SAME(offsetof(struct sockaddr_dl, sdl_nlen), FX_SDL_NLEN);
SAME(offsetof(struct sockaddr_dl, sdl_alen), FX_SDL_ALEN);
SAME(offsetof(struct sockaddr_dl, sdl_data), FX_SDL_DATA);
SAME(sizeof(struct sockaddr_dl), FX_SDL_SIZE);
