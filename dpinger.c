/*
 * dpinger, self-healing: a drop-in replacement for dpinger 3.5, the gateway
 * latency and loss monitor of pfSense and OPNsense.
 *
 * Design
 * ------
 * Threads, and what each one owns:
 *
 *   main	Parses the command line, opens everything that may fail
 *		fatally, daemonises, then only waits for signals (sigwait).
 *		TERM/INT: unlink the status socket and pid file, exit.
 *		HUP: ask the send thread to rebind.
 *   send	Owns the send socket, the destination sockaddr and the echo
 *		identifier's lifecycle.  Sends one echo request per send
 *		interval on absolute monotonic deadlines.  It is also the one
 *		place where probe sockets are (re)opened: a rebind opens new
 *		send and receive sockets, keeps the send one, and hands the
 *		receive one to the receive thread, already connected and
 *		filtered for the new identifier.
 *   recv	Owns the receive socket.  Matches echo replies to ring slots.
 *		Takes a new socket from `recv_handoff` when woken through its
 *		pipe, and only then closes the old one.
 *   report	Every report interval, writes the report line to stdout or -o
 *		(SIGPIPE is not blocked: a report pipe whose reader has gone
 *		ends the process, as upstream).
 *   alert	Every alert interval, updates the two alarms and, on an event,
 *		logs and runs -C (and waits for it).
 *		send, report and alert step with next_deadline(): ticks
 *		missed in a stall are skipped, never run in a burst.
 *   usock	Owns the -u listening socket: one line per connection, never
 *		reads, never blocks; re-creates the socket if its file goes.
 *   watch	Owns the routing socket (rtnetlink on Linux, PF_ROUTE on
 *		FreeBSD).  Tracks whether the bind address and its interface
 *		are present and asks the send thread to rebind when they
 *		come back.
 *
 * No thread wakes without work: the kernel drops, before any wake-up,
 * what cannot be ours (see probe_open(): a connected receive socket, type
 * and identifier filters, a send socket that queues nothing), so one
 * instance costs the same however many run beside it.
 *
 * Shared state:
 *   ring	slots[] under ring.lock: written by send (sent) and recv
 *		(answered), read by report, alert and usock.
 *   heal	heal.lock + heal.wake: pending rebind request, set by watch
 *		and main, consumed by send (which waits on heal.wake between
 *		sends, so a request is served at once).
 *   echo_id	atomic: written by send at a rebind (release), read by recv
 *		(acquire).  Replies to a previous identifier are ignored.
 *   last_reply_usec  atomic: written by recv, read by send for the
 *		silence trigger and the back-off reset (relaxed: a timestamp,
 *		nothing is published through it).
 *   cfg	written once before any thread starts, read-only afterwards.
 *
 * Self-healing: see rebind() and watch_thread().  Outputs that callers parse
 * (report line, start-up line, alarm arguments, pid file) are upstream's,
 * byte for byte.
 */

#if defined(__linux__)
#define _GNU_SOURCE
#endif

#include <sys/types.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <net/if.h>
#include <netinet/in.h>
#include <netinet/icmp6.h>
#include <arpa/inet.h>
#include <netdb.h>

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/*
 * A #warning names a feature this platform lacks: loud in every build,
 * but never what stops one under -Werror (gcc calls it -Wcpp, clang
 * -W#warnings).
 */
#if defined(__clang__)
#pragma clang diagnostic warning "-W#warnings"
#elif defined(__GNUC__)
#pragma GCC diagnostic warning "-Wcpp"
#endif

/*
 * The platform ladder: one interface watcher per routing-socket flavour,
 * chosen here and nowhere else.
 */
#if defined(__linux__)
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/filter.h>
#define WATCH_NETLINK	1
#define SOCKET_BPF	1	/* classic BPF on any socket */
#ifndef SOL_RAW
#define SOL_RAW		255
#endif
#define LINUX_ICMP_FILTER 1	/* <linux/icmp.h> clashes with netinet */
#elif defined(__FreeBSD__)
#include <net/if_dl.h>
#include <net/route.h>
#define WATCH_PF_ROUTE	1
#else
#warning "no interface watcher here: only send errors, silence and SIGHUP \
trigger a rebind"
#endif

extern char **environ;

/* ------------------------------------------------------------------ */
/* Configuration                                                      */
/* ------------------------------------------------------------------ */

#define IDENT_MAX	62	/* identifier bytes, without the added space */
#define ALERT_CMD_MAX	65536	/* bytes of -C: `CMD "$@"` is one exec argument */
#define SEQ_SPACE	65536U
#define MAX_SLOTS	65535U
#define SOCKBUF_SIZE	(65535 + 256)
#define IPV4_MAX_DATA	65507
#define IPV6_MAX_DATA	65527
/* Times are milliseconds in 64 bits: any number of seconds that fits 32
 * bits (136 years) is accepted in either unit, and ten times the largest
 * (the default hold) is still exact in microseconds. */
#define TIME_MAX_MSEC	(UINT64_C(0xffffffff) * 1000)
#define ADDR_TEXT_SIZE	(INET6_ADDRSTRLEN + IF_NAMESIZE + 1)

/* A numeric address with an optional %scope.  The scope stays text and is
 * resolved at every bind; text is how every log line and the alert
 * command print the address. */
struct addr_spec {
	int		family;
	union {
		struct in_addr	v4;
		struct in6_addr	v6;
	}		addr;
	char		scope[IF_NAMESIZE];	/* "" when none */
	const char	*arg;			/* the argument itself */
	char		text[ADDR_TEXT_SIZE];	/* getnameinfo's form */
};

struct config {
	bool		foreground;
	bool		rewind_output;
	bool		use_syslog;
	bool		realtime_recv;
	bool		heal;
	uint64_t	send_interval_msec;
	uint64_t	loss_interval_msec;	/* 0 until defaulted */
	uint64_t	time_period_msec;
	uint64_t	report_interval_msec;
	uint64_t	alert_interval_msec;
	uint64_t	latency_alarm_msec;
	unsigned int	loss_alarm_pct;
	uint64_t	hold_interval_msec;	/* 0 until defaulted */
	unsigned int	fail_count;
	uint64_t	silence_msec;
	bool		silence_given;
	size_t		data_len;
	const char	*output_path;
	const char	*alert_cmd;
	const char	*usocket_path;
	const char	*pidfile_path;
	char		identifier[IDENT_MAX + 2];	/* "" or "name " */
	struct addr_spec dest;
	struct addr_spec bind;
	bool		bind_given;
	unsigned int	slot_count;
	unsigned int	seq_limit;
};

static struct config cfg;

/* ------------------------------------------------------------------ */
/* Logging                                                            */
/* ------------------------------------------------------------------ */

static bool log_to_syslog;

static void
logv(int priority, const char *fmt, va_list ap)
{
	char line[1024];
	int len;

	if (log_to_syslog) {
		vsyslog(priority, fmt, ap);
		return;
	}
	/* One write per line, so lines from threads never interleave. */
	len = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	if (len < 0)
		return;
	if ((size_t)len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* A log line is never worth a stalled daemon: if stderr is a pipe
	 * nobody drains, drop the line rather than block whichever thread
	 * logs (main before sigwait, or the sender).  fd 2 is shared with
	 * our parent, so it is not made non-blocking; a writable pipe has
	 * room for a line of this size. */
	if (poll(&(struct pollfd){ .fd = STDERR_FILENO, .events = POLLOUT },
	    1, 0) != 1)
		return;
	(void)!write(STDERR_FILENO, line, (size_t)len);
}

static void __attribute__((format(printf, 1, 2)))
logmsg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logv(LOG_WARNING, fmt, ap);
	va_end(ap);
}

/* As upstream: with -S a fatal error goes to syslog only (LOG_ERR), even
 * before daemonising; the exit status tells the starting command. */
static void __attribute__((format(printf, 1, 2), noreturn))
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logv(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

/* ------------------------------------------------------------------ */
/* Command line                                                       */
/* ------------------------------------------------------------------ */

/* The Makefile passes the contents of VERSION. */
#ifndef DPINGER_VERSION
#define DPINGER_VERSION	"unknown"
#endif
_Static_assert(sizeof(DPINGER_VERSION) > 1, "empty DPINGER_VERSION");

static const char usage_text[] =
    "usage: dpinger [-f] [-R] [-S] [-P] [-X] [-h] [-V] [-B bind_addr]"
    " [-s send_interval] [-l loss_interval] [-t time_period]"
    " [-r report_interval] [-d data_length] [-o output_file]"
    " [-A alert_interval] [-D latency_alarm] [-L loss_alarm]"
    " [-H hold_interval] [-C alert_cmd] [-i identifier] [-u usocket]"
    " [-p pidfile] [-F fail_count] [-W silence_time] dest_addr\n";

/* Leading digits of s; *end is the first other byte.  false when there
 * is no digit at all (an empty string is 0, as upstream).  A value too
 * large for 64 bits is UINT64_MAX: every caller's limit is far below, so
 * it says "too large", never something wrapped around. */
static bool
parse_digits(const char *s, uint64_t *value, const char **end)
{
	uint64_t v = 0;

	if (*s == '\0') {
		*value = 0;
		*end = s;
		return true;
	}
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned int digit = (unsigned int)(*s - '0');

		if (v > (UINT64_MAX - digit) / 10)
			v = UINT64_MAX;
		else
			v = v * 10 + digit;
	}
	*value = v;
	*end = s;
	return true;
}

/* Time: digits, optional 'm' (milliseconds) or 's' (seconds), at most
 * TIME_MAX_MSEC: a larger value is invalid, never wrapped. */
static bool
parse_time_msec(const char *s, uint64_t *msec)
{
	uint64_t v;
	const char *end;

	if (!parse_digits(s, &v, &end))
		return false;
	if (*end == 's') {
		if (v > TIME_MAX_MSEC / 1000)
			return false;
		v *= 1000;
		end++;
	} else if (*end == 'm')
		end++;
	if (*end != '\0' || v > TIME_MAX_MSEC)
		return false;
	*msec = v;
	return true;
}

/* Percent: 0..100, optional trailing '%'. */
static bool
parse_percent(const char *s, unsigned int *pct)
{
	uint64_t v;
	const char *end;

	if (!parse_digits(s, &v, &end))
		return false;
	if (*end == '%')
		end++;
	if (*end != '\0' || v > 100)
		return false;
	*pct = (unsigned int)v;
	return true;
}

/* Length: digits, optional 'b' (bytes) or 'k' (x1024).  Any number is
 * a length: one too large for a packet gets upstream's "data length too
 * large" after parsing, so it is kept (saturated), not refused here. */
static bool
parse_length(const char *s, size_t *len)
{
	uint64_t v;
	const char *end;

	if (!parse_digits(s, &v, &end))
		return false;
	if (*end == 'k') {
		v = v > UINT64_MAX / 1024 ? UINT64_MAX : v * 1024;
		end++;
	} else if (*end == 'b')
		end++;
	if (*end != '\0')
		return false;
	*len = v > SIZE_MAX ? SIZE_MAX : (size_t)v;
	return true;
}

static bool
parse_count(const char *s, unsigned int *count)
{
	uint64_t v;
	const char *end;

	if (!parse_digits(s, &v, &end) || *end != '\0' || v > 100000)
		return false;
	*count = (unsigned int)v;
	return true;
}

/* Interface index of a scope: a number is taken as is, a name is looked
 * up now.  0 when the interface does not exist (yet). */
static unsigned int
scope_index(const char *scope)
{
	uint64_t v;
	const char *end;

	if (scope[0] == '\0')
		return 0;
	if (parse_digits(scope, &v, &end) && *end == '\0' && v <= UINT_MAX)
		return (unsigned int)v;
	return if_nametoindex(scope);
}

/* The sockaddr for a spec, its scope resolved now.  0, or ENXIO when the
 * scope's interface is missing. */
static int
addr_sockaddr(const struct addr_spec *a, struct sockaddr_storage *ss,
    socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_addr = a->addr.v4;
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = a->addr.v6;
		if (a->scope[0] != '\0') {
			sin6->sin6_scope_id = scope_index(a->scope);
			if (sin6->sin6_scope_id == 0)
				return ENXIO;
		}
		*len = sizeof(*sin6);
	}
#if defined(__FreeBSD__) || defined(__APPLE__)
	ss->ss_len = (uint8_t)*len;
#endif
	return 0;
}

/* a->text: getnameinfo's numeric form of the address, with the scope's
 * interface name; a scope whose interface is missing now is shown as
 * given, so the line still names what we wait for. */
static void
addr_format(struct addr_spec *a)
{
	struct addr_spec plain = *a;
	struct sockaddr_storage ss;
	socklen_t len;
	bool resolved = addr_sockaddr(a, &ss, &len) == 0;
	size_t n;

	if (!resolved) {
		plain.scope[0] = '\0';
		(void)addr_sockaddr(&plain, &ss, &len);
	}
	if (getnameinfo((struct sockaddr *)&ss, len, a->text, sizeof(a->text),
	    NULL, 0, NI_NUMERICHOST) != 0) {
		(void)inet_ntop(a->family, &a->addr, a->text, sizeof(a->text));
		resolved = false;
	}
	n = strlen(a->text);
	if (!resolved && a->scope[0] != '\0' && strchr(a->text, '%') == NULL)
		snprintf(a->text + n, sizeof(a->text) - n, "%%%s", a->scope);
}

/*
 * A numeric IPv4 or IPv6 address as getaddrinfo(AI_NUMERICHOST) reads it,
 * so with the C library's shorthands (10.1 is 10.0.0.1), IPv6 with an
 * optional %scope (a name or an index).  The scope is kept as text and
 * resolved at every bind, because an interface destroyed and created again
 * gets a new index; getaddrinfo would refuse a name that does not exist
 * yet.  A link-local address needs one: without it, it can never be
 * reached or bound.
 */
static bool
parse_addr(const char *s, struct addr_spec *a)
{
	char host[256];
	const char *pct = strchr(s, '%');
	size_t hostlen = pct ? (size_t)(pct - s) : strlen(s);
	struct addrinfo hints, *res;

	memset(a, 0, sizeof(*a));
	a->arg = s;
	if (hostlen == 0 || hostlen >= sizeof(host))
		return false;
	memcpy(host, s, hostlen);
	host[hostlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = pct != NULL ? AF_INET6 : AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return false;
	a->family = res->ai_family;
	if (a->family == AF_INET)
		memcpy(&a->addr.v4, &((struct sockaddr_in *)(void *)
		    res->ai_addr)->sin_addr, sizeof(a->addr.v4));
	else if (a->family == AF_INET6)
		memcpy(&a->addr.v6, &((struct sockaddr_in6 *)(void *)
		    res->ai_addr)->sin6_addr, sizeof(a->addr.v6));
	freeaddrinfo(res);
	if (a->family != AF_INET && a->family != AF_INET6)
		return false;
	if (pct != NULL) {
		size_t len = strlen(pct + 1);

		if (len == 0 || len >= sizeof(a->scope))
			return false;
		memcpy(a->scope, pct + 1, len + 1);
	} else if (a->family == AF_INET6 &&
	    (IN6_IS_ADDR_LINKLOCAL(&a->addr.v6) ||
	    IN6_IS_ADDR_MC_LINKLOCAL(&a->addr.v6)))
		return false;
	addr_format(a);
	return true;
}

/* Sequence numbers wrap at the largest power-of-two multiple of the slot
 * count that fits 16 bits, so that seq % slots is always the slot. */
static unsigned int
seq_limit_for(unsigned int slots)
{
	unsigned int multiple = 1;

	while ((unsigned long)slots * multiple * 2 <= SEQ_SPACE)
		multiple *= 2;
	return slots * multiple;
}

/* A time-valued option: false, with upstream's message in err, when it
 * does not parse (or is 0 where it must be positive). */
static bool
time_option(const char *arg, uint64_t *msec, bool positive,
    const char *what, char *err, size_t errlen)
{
	if (parse_time_msec(arg, msec) && (!positive || *msec > 0))
		return true;
	snprintf(err, errlen, "invalid %s %s", what, arg);
	return false;
}

enum parse_result {
	PARSE_OK,
	PARSE_USAGE,		/* print usage, exit 1 */
	PARSE_ERROR,		/* print the message, exit 1 */
	PARSE_USAGE_ERROR,	/* print usage, then the message, exit 1 */
	PARSE_VERSION,		/* print the version, exit 0 */
};

/*
 * Parse argv into *c.  Pure apart from getopt's own globals (opterr is the
 * caller's: getopt itself reports an unknown option, as upstream's does):
 * on error the message is in err, and c->use_syslog says whether -S came
 * before the error.  Validation follows upstream's order exactly.
 */
static enum parse_result
parse_args(int argc, char *const argv[], struct config *c, char *err,
    size_t errlen)
{
	int ch;
	bool loss_given = false;
	const char *bind_arg = NULL;

	memset(c, 0, sizeof(*c));
	c->send_interval_msec = 500;
	c->time_period_msec = 60000;
	c->report_interval_msec = 1000;
	c->alert_interval_msec = 1000;
	c->fail_count = 3;
	c->heal = true;
	err[0] = '\0';

#if defined(__GLIBC__)
	optind = 0;
#else
	optind = 1;
	optreset = 1;
#endif
	while ((ch = getopt(argc, argv,
	    "fRSPXhVB:s:l:t:r:d:o:A:D:L:H:C:i:u:p:F:W:")) != -1) {
		switch (ch) {
		case 'f':
			c->foreground = true;
			break;
		case 'R':
			c->rewind_output = true;
			break;
		case 'S':
			c->use_syslog = true;
			break;
		case 'P':
			c->realtime_recv = true;
			break;
		case 'X':
			c->heal = false;
			break;
		case 'B':
			bind_arg = optarg;
			c->bind_given = true;
			break;
		case 's':
			if (!time_option(optarg, &c->send_interval_msec, true,
			    "send interval", err, errlen))
				return PARSE_ERROR;
			break;
		case 'l':
			if (!time_option(optarg, &c->loss_interval_msec, true,
			    "loss interval", err, errlen))
				return PARSE_ERROR;
			loss_given = true;
			break;
		case 't':
			if (!time_option(optarg, &c->time_period_msec, true,
			    "averaging time period", err, errlen))
				return PARSE_ERROR;
			break;
		case 'r':
			if (!time_option(optarg, &c->report_interval_msec, false,
			    "report interval", err, errlen))
				return PARSE_ERROR;
			break;
		case 'd':
			if (!parse_length(optarg, &c->data_len)) {
				snprintf(err, errlen,
				    "invalid data length %s", optarg);
				return PARSE_ERROR;
			}
			break;
		case 'o':
			c->output_path = optarg;
			break;
		case 'A':
			if (!time_option(optarg, &c->alert_interval_msec, true,
			    "alert interval", err, errlen))
				return PARSE_ERROR;
			break;
		case 'D':
			if (!time_option(optarg, &c->latency_alarm_msec, false,
			    "latency alarm threshold", err, errlen))
				return PARSE_ERROR;
			break;
		case 'L':
			if (!parse_percent(optarg, &c->loss_alarm_pct)) {
				snprintf(err, errlen,
				    "invalid loss alarm threshold %s", optarg);
				return PARSE_ERROR;
			}
			break;
		case 'H':
			if (!time_option(optarg, &c->hold_interval_msec, false,
			    "alarm hold interval", err, errlen))
				return PARSE_ERROR;
			break;
		case 'C':
			/* Refused here rather than cut short, or failing at
			 * the first alarm. */
			if (strlen(optarg) > ALERT_CMD_MAX) {
				snprintf(err, errlen, "alert command too long"
				    " (max %u bytes)", ALERT_CMD_MAX);
				return PARSE_ERROR;
			}
			c->alert_cmd = optarg;
			break;
		case 'i':
			if (strlen(optarg) > IDENT_MAX) {
				snprintf(err, errlen, "identifier argument too"
				    " large (max %u bytes)", IDENT_MAX + 1);
				return PARSE_ERROR;
			}
			snprintf(c->identifier, sizeof(c->identifier), "%s ",
			    optarg);
			break;
		case 'u':
			c->usocket_path = optarg;
			break;
		case 'p':
			c->pidfile_path = optarg;
			break;
		case 'F':
			if (!parse_count(optarg, &c->fail_count)) {
				snprintf(err, errlen,
				    "invalid send failure count %s", optarg);
				return PARSE_ERROR;
			}
			break;
		case 'W':
			if (!time_option(optarg, &c->silence_msec, false,
			    "silence interval", err, errlen))
				return PARSE_ERROR;
			c->silence_given = true;
			break;
		case 'V':
			return PARSE_VERSION;
		case 'h':
		default:
			return PARSE_USAGE;
		}
	}

	if (argc - optind != 1) {
		snprintf(err, errlen, "incorrect number of parameters");
		return PARSE_USAGE_ERROR;
	}
	if (c->report_interval_msec == 0 && c->latency_alarm_msec == 0 &&
	    c->loss_alarm_pct == 0 && c->usocket_path == NULL) {
		snprintf(err, errlen, "no activity enabled");
		return PARSE_ERROR;
	}
	if (c->time_period_msec <=
	    2 * c->send_interval_msec + c->loss_interval_msec) {
		snprintf(err, errlen, "the time period must be greater than"
		    " twice the send interval plus the loss interval");
		return PARSE_ERROR;
	}
	if (c->time_period_msec / c->send_interval_msec > MAX_SLOTS) {
		snprintf(err, errlen, "the ratio of time period to send"
		    " interval cannot exceed 65535:1");
		return PARSE_ERROR;
	}
	if (!parse_addr(argv[optind], &c->dest)) {
		snprintf(err, errlen, "invalid destination IP address %s",
		    argv[optind]);
		return PARSE_ERROR;
	}
	if (c->bind_given && (!parse_addr(bind_arg, &c->bind) ||
	    c->bind.family != c->dest.family)) {
		snprintf(err, errlen, "invalid bind IP address %s", bind_arg);
		return PARSE_ERROR;
	}
	if (c->dest.family == AF_INET && c->data_len > IPV4_MAX_DATA) {
		snprintf(err, errlen, "data length too large for IPv4 -"
		    " maximum is %u bytes", IPV4_MAX_DATA);
		return PARSE_ERROR;
	}
	if (c->dest.family == AF_INET6 && c->data_len > IPV6_MAX_DATA) {
		snprintf(err, errlen, "data length too large for IPv6 -"
		    " maximum is %u bytes", IPV6_MAX_DATA);
		return PARSE_ERROR;
	}

	/* Defaults that depend on other values, after every check. */
	if (!loss_given)
		c->loss_interval_msec = c->send_interval_msec * 4;
	if (c->hold_interval_msec == 0)
		c->hold_interval_msec = c->alert_interval_msec * 10;
	if (!c->silence_given) {
		c->silence_msec = 10000;
		if (c->loss_interval_msec * 2 > c->silence_msec)
			c->silence_msec = c->loss_interval_msec * 2;
	}
	c->slot_count = (unsigned int)(c->time_period_msec /
	    c->send_interval_msec);
	c->seq_limit = seq_limit_for(c->slot_count);
	return PARSE_OK;
}

/* The start-up line, exactly upstream's shape. */
static void
format_startup(char *buf, size_t len, const struct config *c)
{
	snprintf(buf, len, "send_interval %" PRIu64 "ms  loss_interval %"
	    PRIu64 "ms  time_period %" PRIu64 "ms  report_interval %" PRIu64
	    "ms  data_len %zu  alert_interval %" PRIu64 "ms  latency_alarm %"
	    PRIu64 "ms  loss_alarm %u%%  alarm_hold %" PRIu64 "ms  dest_addr"
	    " %s  bind_addr %s  identifier \"%s\"",
	    c->send_interval_msec, c->loss_interval_msec, c->time_period_msec,
	    c->report_interval_msec, c->data_len, c->alert_interval_msec,
	    c->latency_alarm_msec, c->loss_alarm_pct, c->hold_interval_msec,
	    c->dest.text, c->bind_given ? c->bind.text : "(none)",
	    c->identifier);
}

/* ------------------------------------------------------------------ */
/* Time                                                               */
/* ------------------------------------------------------------------ */

static uint64_t
now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static struct timespec
usec_to_timespec(uint64_t usec)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(usec / 1000000);
	ts.tv_nsec = (long)(usec % 1000000) * 1000;
	return ts;
}

/* Sleep until an absolute monotonic deadline: no drift between ticks. */
static void
sleep_until(uint64_t deadline_usec)
{
	struct timespec ts = usec_to_timespec(deadline_usec);

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	    EINTR)
		;
}

/*
 * The deadline after prev on a grid of one interval: prev + interval, or,
 * when that has passed already (SIGSTOP, a suspended VM, a slow alert
 * command), the first point of the grid still ahead, less than one
 * interval from now.  Missed ticks are skipped, never run in a burst.
 * Every periodic thread (send, report, alert) steps with this.
 */
static uint64_t
next_deadline(uint64_t prev, uint64_t interval)
{
	uint64_t next = prev + interval, now = now_usec();

	if (next <= now)
		next = now + interval - (now - next) % interval;
	return next;
}

/* ------------------------------------------------------------------ */
/* Statistics ring                                                    */
/* ------------------------------------------------------------------ */

struct slot {
	uint64_t	sent_usec;	/* 0: never used */
	uint32_t	latency_usec;
	uint16_t	seq;
	bool		answered;
};

static struct {
	pthread_mutex_t	lock;
	struct slot	*slots;
} ring = { PTHREAD_MUTEX_INITIALIZER, NULL };

struct stats {
	unsigned long	avg_usec;
	unsigned long	stddev_usec;
	unsigned int	loss_pct;
	unsigned int	answered;
	unsigned int	lost;
};

static uint64_t
isqrt64(uint64_t v)
{
	uint64_t lo = 0, hi = 1ULL << 32;

	/* Largest r with r * r <= v. */
	while (lo + 1 < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (mid * mid <= v)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Walk every slot: answered ones add their latency, unanswered ones older
 * than the loss interval are lost, younger ones count as neither. */
static void
stats_compute(const struct slot *slots, size_t n, uint64_t now,
    uint64_t loss_usec, struct stats *st)
{
	uint64_t sum = 0, sum_sq = 0;
	size_t i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < n; i++) {
		const struct slot *s = &slots[i];

		if (s->sent_usec == 0)
			continue;
		if (s->answered) {
			sum += s->latency_usec;
			sum_sq += (uint64_t)s->latency_usec * s->latency_usec;
			st->answered++;
		} else if (now > s->sent_usec &&
		    now - s->sent_usec > loss_usec)
			st->lost++;
	}
	if (st->answered > 0) {
		uint64_t avg = sum / st->answered;
		uint64_t mean_sq = sum_sq / st->answered;

		st->avg_usec = (unsigned long)avg;
		st->stddev_usec = mean_sq > avg * avg ?
		    (unsigned long)isqrt64(mean_sq - avg * avg) : 0;
	}
	if (st->answered + st->lost > 0)
		st->loss_pct = st->lost * 100 / (st->answered + st->lost);
}

static void
stats_now(struct stats *st)
{
	uint64_t now = now_usec();

	pthread_mutex_lock(&ring.lock);
	stats_compute(ring.slots, cfg.slot_count, now,
	    (uint64_t)cfg.loss_interval_msec * 1000, st);
	pthread_mutex_unlock(&ring.lock);
}

/* "[identifier ]avg stddev loss\n" */
static int
format_report(char *buf, size_t len, const char *identifier,
    const struct stats *st)
{
	return snprintf(buf, len, "%s%lu %lu %u\n", identifier, st->avg_usec,
	    st->stddev_usec, st->loss_pct);
}

/* ------------------------------------------------------------------ */
/* ICMP packets                                                       */
/* ------------------------------------------------------------------ */

#define ICMP4_ECHO_REQUEST	8
#define ICMP4_ECHO_REPLY	0
#define ICMP_HEADER_LEN		8

static uint16_t
icmp_checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	while (len > 1) {
		sum += (uint32_t)(p[0] << 8 | p[1]);
		p += 2;
		len -= 2;
	}
	if (len == 1)
		sum += (uint32_t)p[0] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* An echo request in buf (ICMP header + data_len zero bytes); the kernel
 * checksums ICMPv6 itself. */
static size_t
icmp_build_echo(int family, uint8_t *buf, size_t data_len, uint16_t id,
    uint16_t seq)
{
	size_t len = ICMP_HEADER_LEN + data_len;
	uint16_t net_id = htons(id), net_seq = htons(seq), sum;

	memset(buf, 0, len);
	buf[0] = family == AF_INET ? ICMP4_ECHO_REQUEST : ICMP6_ECHO_REQUEST;
	memcpy(buf + 4, &net_id, 2);
	memcpy(buf + 6, &net_seq, 2);
	if (family == AF_INET) {
		sum = icmp_checksum(buf, len);
		memcpy(buf + 2, &sum, 2);
	}
	return len;
}

/* An echo reply as read from a raw socket (IPv4 with its IP header)?
 * 1 with *id and *seq in host order, else 0. */
static int
icmp_parse_reply(int family, const void *buf, size_t len, uint16_t *id,
    uint16_t *seq)
{
	const uint8_t *p = buf;
	uint16_t net_id, net_seq;
	uint8_t want = ICMP6_ECHO_REPLY;

	if (family == AF_INET) {
		size_t ip_len;

		if (len < 20 || (p[0] >> 4) != 4)
			return 0;
		ip_len = (size_t)(p[0] & 0x0f) * 4;
		if (ip_len < 20 || len < ip_len)
			return 0;
		p += ip_len;
		len -= ip_len;
		want = ICMP4_ECHO_REPLY;
	} else if (family != AF_INET6)
		return 0;
	if (len < ICMP_HEADER_LEN || p[0] != want || p[1] != 0)
		return 0;
	memcpy(&net_id, p + 4, 2);
	memcpy(&net_seq, p + 6, 2);
	*id = ntohs(net_id);
	*seq = ntohs(net_seq);
	return 1;
}

/* ------------------------------------------------------------------ */
/* Routing messages: pure parsers                                     */
/* ------------------------------------------------------------------ */

enum ifev_kind {
	IFEV_ADDR_ADD = 1,	/* address added (or updated) */
	IFEV_ADDR_DEL,		/* address removed */
	IFEV_LINK,		/* link flags or state; see link_up */
	IFEV_IF_ARRIVE,		/* interface created */
	IFEV_IF_DEPART,		/* interface destroyed */
	IFEV_OVERFLOW,		/* the kernel dropped messages: resync */
};

struct ifev {
	enum ifev_kind	kind;
	unsigned int	ifindex;
	int		family;		/* AF_INET / AF_INET6 for IFEV_ADDR_* */
	union {
		struct in_addr	v4;
		struct in6_addr	v6;
	}		addr;
	bool		tentative;	/* IPv6 address not bindable yet */
	bool		link_up;	/* IFEV_LINK and IFEV_IF_ARRIVE */
	char		ifname[IF_NAMESIZE];	/* "" when not carried */
};

/* KAME (the BSDs) embeds the scope of a link-local address in its second
 * 16-bit word, in routing messages and, when net.route.deembed_scopeid is
 * 0, in getifaddrs().  The address we compare has none: clear it. */
static void
kame_clear_scope(struct in6_addr *a)
{
	if (a->s6_addr[0] == 0xfe && (a->s6_addr[1] & 0xc0) == 0x80) {
		a->s6_addr[2] = 0;
		a->s6_addr[3] = 0;
	}
}

/* A name from a fixed-size field that may lack its NUL. */
static void
copy_ifname(char dst[IF_NAMESIZE], const uint8_t *src, size_t srclen)
{
	size_t n = 0;

	while (n < srclen && n < IF_NAMESIZE - 1 && src[n] != '\0')
		n++;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * FreeBSD PF_ROUTE layout, as byte offsets (route(4), <net/route.h>,
 * <net/if.h>), the same on every FreeBSD architecture but for what
 * struct bsd_layout says.  The parser is compiled on every OS so that it
 * can be tested and fuzzed anywhere; on FreeBSD the static assertions
 * below tie every offset to the real headers.
 */
#define BSD_RTM_VERSION		5
#define BSD_RTM_NEWADDR		0x0c
#define BSD_RTM_DELADDR		0x0d
#define BSD_RTM_IFINFO		0x0e
#define BSD_RTM_IFANNOUNCE	0x11
#define BSD_IFAN_ARRIVAL	0
#define BSD_IFAN_DEPARTURE	1
#define BSD_RTA_IFP		0x10
#define BSD_RTA_IFA		0x20
#define BSD_RTAX_MAX		8
#define BSD_AF_INET		2
#define BSD_AF_INET6		28
#define BSD_AF_LINK		18
#define BSD_IFF_UP		0x1
#define BSD_LINK_STATE_DOWN	1
/* common prefix */
#define BSD_MSGLEN_OFF		0
#define BSD_VERSION_OFF		2
#define BSD_TYPE_OFF		3
/* struct ifa_msghdr */
#define BSD_IFAM_ADDRS_OFF	4
#define BSD_IFAM_INDEX_OFF	12
#define BSD_IFAM_SIZE		20
/* struct if_msghdr */
#define BSD_IFM_FLAGS_OFF	8
#define BSD_IFM_INDEX_OFF	12
#define BSD_IFM_DATA_OFF	16
#define BSD_IFI_LINK_STATE_OFF	4	/* in struct if_data */
#define BSD_IFM_SIZE		168
/* struct if_announcemsghdr */
#define BSD_IFAN_INDEX_OFF	4
#define BSD_IFAN_NAME_OFF	6
#define BSD_IFAN_WHAT_OFF	22
#define BSD_IFAN_SIZE		24
/* sockaddrs: sa_len, sa_family; padded to SA_SIZE (see bsd_layout) */
#define BSD_SIN_ADDR_OFF	4
#define BSD_SIN_SIZE		16
#define BSD_SIN6_ADDR_OFF	8
#define BSD_SIN6_SCOPE_OFF	24
#define BSD_SIN6_SIZE		28
#define BSD_SDL_NLEN_OFF	5
#define BSD_SDL_DATA_OFF	8
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define BSD_HOST_BIG_ENDIAN	true
#else
#define BSD_HOST_BIG_ENDIAN	false
#endif

#if defined(__FreeBSD__)
_Static_assert(RTM_VERSION == BSD_RTM_VERSION, "RTM_VERSION");
_Static_assert(RTM_NEWADDR == BSD_RTM_NEWADDR, "RTM_NEWADDR");
_Static_assert(RTM_DELADDR == BSD_RTM_DELADDR, "RTM_DELADDR");
_Static_assert(RTM_IFINFO == BSD_RTM_IFINFO, "RTM_IFINFO");
_Static_assert(RTM_IFANNOUNCE == BSD_RTM_IFANNOUNCE, "RTM_IFANNOUNCE");
_Static_assert(IFAN_ARRIVAL == BSD_IFAN_ARRIVAL, "IFAN_ARRIVAL");
_Static_assert(IFAN_DEPARTURE == BSD_IFAN_DEPARTURE, "IFAN_DEPARTURE");
_Static_assert(RTA_IFP == BSD_RTA_IFP && RTA_IFA == BSD_RTA_IFA, "RTA_*");
_Static_assert(RTAX_MAX == BSD_RTAX_MAX, "RTAX_MAX");
_Static_assert(AF_INET == BSD_AF_INET && AF_INET6 == BSD_AF_INET6 &&
    AF_LINK == BSD_AF_LINK, "AF_*");
_Static_assert(IFF_UP == BSD_IFF_UP, "IFF_UP");
_Static_assert(LINK_STATE_DOWN == BSD_LINK_STATE_DOWN, "LINK_STATE_DOWN");
_Static_assert(offsetof(struct rt_msghdr, rtm_msglen) == BSD_MSGLEN_OFF &&
    offsetof(struct rt_msghdr, rtm_version) == BSD_VERSION_OFF &&
    offsetof(struct rt_msghdr, rtm_type) == BSD_TYPE_OFF, "rt_msghdr");
_Static_assert(offsetof(struct ifa_msghdr, ifam_msglen) == BSD_MSGLEN_OFF &&
    offsetof(struct ifa_msghdr, ifam_version) == BSD_VERSION_OFF &&
    offsetof(struct ifa_msghdr, ifam_type) == BSD_TYPE_OFF &&
    offsetof(struct ifa_msghdr, ifam_addrs) == BSD_IFAM_ADDRS_OFF &&
    offsetof(struct ifa_msghdr, ifam_index) == BSD_IFAM_INDEX_OFF &&
    sizeof(struct ifa_msghdr) == BSD_IFAM_SIZE, "ifa_msghdr");
_Static_assert(offsetof(struct if_msghdr, ifm_flags) == BSD_IFM_FLAGS_OFF &&
    offsetof(struct if_msghdr, ifm_index) == BSD_IFM_INDEX_OFF &&
    offsetof(struct if_msghdr, ifm_data) == BSD_IFM_DATA_OFF &&
    offsetof(struct if_data, ifi_link_state) == BSD_IFI_LINK_STATE_OFF &&
    sizeof(struct if_msghdr) == BSD_IFM_SIZE, "if_msghdr");
_Static_assert(
    offsetof(struct if_announcemsghdr, ifan_index) == BSD_IFAN_INDEX_OFF &&
    offsetof(struct if_announcemsghdr, ifan_name) == BSD_IFAN_NAME_OFF &&
    offsetof(struct if_announcemsghdr, ifan_what) == BSD_IFAN_WHAT_OFF &&
    sizeof(struct if_announcemsghdr) == BSD_IFAN_SIZE, "if_announcemsghdr");
_Static_assert(offsetof(struct sockaddr_in, sin_addr) == BSD_SIN_ADDR_OFF &&
    sizeof(struct sockaddr_in) == BSD_SIN_SIZE, "sockaddr_in");
_Static_assert(
    offsetof(struct sockaddr_in6, sin6_addr) == BSD_SIN6_ADDR_OFF &&
    offsetof(struct sockaddr_in6, sin6_scope_id) == BSD_SIN6_SCOPE_OFF &&
    sizeof(struct sockaddr_in6) == BSD_SIN6_SIZE, "sockaddr_in6");
_Static_assert(offsetof(struct sockaddr_dl, sdl_nlen) == BSD_SDL_NLEN_OFF &&
    offsetof(struct sockaddr_dl, sdl_data) == BSD_SDL_DATA_OFF,
    "sockaddr_dl");
/* SA_SIZE() rounds to sizeof(long); the tests cover 4 and 8. */
_Static_assert(sizeof(long) == 4 || sizeof(long) == 8, "SA_SIZE alignment");
_Static_assert((_BYTE_ORDER == _BIG_ENDIAN) == BSD_HOST_BIG_ENDIAN,
    "byte order");
#endif

/*
 * What differs between FreeBSD's architectures, for this parser: SA_SIZE()
 * pads each sockaddr to sizeof(long), 8 bytes on amd64, arm64, powerpc64,
 * powerpc64le and riscv64 but 4 on i386 and armv7, and the header fields
 * are in the host's byte order, big-endian on powerpc64.  The watcher
 * parses with the host's layout; the tests and the fuzzer select each.
 */
struct bsd_layout {
	size_t	sa_align;
	bool	big_endian;
};

static const struct bsd_layout bsd_host = {
	.sa_align = sizeof(long),
	.big_endian = BSD_HOST_BIG_ENDIAN,
};

static uint16_t
bsd_u16(const struct bsd_layout *lay, const uint8_t *p)
{
	return (uint16_t)(lay->big_endian ? p[0] << 8 | p[1] :
	    p[1] << 8 | p[0]);
}

static uint32_t
bsd_u32(const struct bsd_layout *lay, const uint8_t *p)
{
	uint32_t first = bsd_u16(lay, p), second = bsd_u16(lay, p + 2);

	return lay->big_endian ? first << 16 | second : second << 16 | first;
}

/* The local address (RTA_IFA) and interface name (RTA_IFP) that follow an
 * ifa_msghdr.  false when a sockaddr runs past the message. */
static bool
bsd_addr_sockaddrs(const struct bsd_layout *lay, const uint8_t *p,
    size_t off, size_t msglen, uint32_t addrs, struct ifev *ev)
{
	int i;

	for (i = 0; i < BSD_RTAX_MAX; i++) {
		const uint8_t *sa;
		size_t sa_len;

		if ((addrs & (1U << i)) == 0)
			continue;
		if (off >= msglen)
			return false;
		sa = p + off;
		sa_len = sa[0];
		if (sa_len > msglen - off)
			return false;
		/* SA_SIZE: an empty sockaddr still takes a long. */
		off += sa_len == 0 ? lay->sa_align :
		    (sa_len + lay->sa_align - 1) & ~(lay->sa_align - 1);
		if (sa_len < 2)
			continue;
		if ((1U << i) == BSD_RTA_IFA && sa[1] == BSD_AF_INET &&
		    sa_len >= BSD_SIN_ADDR_OFF + 4) {
			ev->family = AF_INET;
			memcpy(&ev->addr.v4, sa + BSD_SIN_ADDR_OFF, 4);
		} else if ((1U << i) == BSD_RTA_IFA && sa[1] == BSD_AF_INET6 &&
		    sa_len >= BSD_SIN6_ADDR_OFF + 16) {
			ev->family = AF_INET6;
			memcpy(&ev->addr.v6, sa + BSD_SIN6_ADDR_OFF, 16);
			/* The index is in the message header. */
			kame_clear_scope(&ev->addr.v6);
		} else if ((1U << i) == BSD_RTA_IFP && sa[1] == BSD_AF_LINK &&
		    sa_len > BSD_SDL_DATA_OFF) {
			size_t nlen = sa[BSD_SDL_NLEN_OFF];

			if (nlen > sa_len - BSD_SDL_DATA_OFF)
				nlen = sa_len - BSD_SDL_DATA_OFF;
			copy_ifname(ev->ifname, sa + BSD_SDL_DATA_OFF, nlen);
		}
	}
	return true;
}

/*
 * Parse FreeBSD routing messages laid out as `lay` says.  Every message is
 * checked for length, version and its type's minimum size before a field
 * is read; route changes (most of the traffic, since FreeBSD cannot filter
 * them in the kernel) are rejected on their type byte.
 */
static size_t
rtmsg_parse_bsd_layout(const struct bsd_layout *lay, const void *buf,
    size_t len, struct ifev *ev, size_t max)
{
	const uint8_t *p = buf;
	size_t n = 0;

	while (len >= 4 && n < max) {
		size_t msglen = bsd_u16(lay, p + BSD_MSGLEN_OFF);
		uint8_t type = p[BSD_TYPE_OFF];
		struct ifev *e = &ev[n];

		if (msglen < 4 || msglen > len)
			break;
		if (p[BSD_VERSION_OFF] != BSD_RTM_VERSION)
			goto next;
		memset(e, 0, sizeof(*e));
		switch (type) {
		case BSD_RTM_NEWADDR:
		case BSD_RTM_DELADDR:
			if (msglen < BSD_IFAM_SIZE)
				goto next;
			e->kind = type == BSD_RTM_NEWADDR ? IFEV_ADDR_ADD :
			    IFEV_ADDR_DEL;
			e->ifindex = bsd_u16(lay, p + BSD_IFAM_INDEX_OFF);
			if (!bsd_addr_sockaddrs(lay, p, BSD_IFAM_SIZE,
			    msglen, bsd_u32(lay, p + BSD_IFAM_ADDRS_OFF), e) ||
			    e->family == 0)
				goto next;
			n++;
			break;
		case BSD_RTM_IFINFO:
			if (msglen < BSD_IFM_SIZE)
				goto next;
			e->kind = IFEV_LINK;
			e->ifindex = bsd_u16(lay, p + BSD_IFM_INDEX_OFF);
			e->link_up = (bsd_u32(lay, p + BSD_IFM_FLAGS_OFF) &
			    BSD_IFF_UP) != 0 &&
			    p[BSD_IFM_DATA_OFF + BSD_IFI_LINK_STATE_OFF] !=
			    BSD_LINK_STATE_DOWN;
			n++;
			break;
		case BSD_RTM_IFANNOUNCE:
			if (msglen < BSD_IFAN_SIZE)
				goto next;
			switch (bsd_u16(lay, p + BSD_IFAN_WHAT_OFF)) {
			case BSD_IFAN_ARRIVAL:
				e->kind = IFEV_IF_ARRIVE;
				break;
			case BSD_IFAN_DEPARTURE:
				e->kind = IFEV_IF_DEPART;
				break;
			default:
				goto next;
			}
			e->ifindex = bsd_u16(lay, p + BSD_IFAN_INDEX_OFF);
			copy_ifname(e->ifname, p + BSD_IFAN_NAME_OFF,
			    BSD_IFAN_WHAT_OFF - BSD_IFAN_NAME_OFF);
			n++;
			break;
		default:
			break;
		}
next:
		p += msglen;
		len -= msglen;
	}
	return n;
}

/* The host's messages: what the PF_ROUTE watcher reads. */
static size_t __attribute__((unused))	/* only the tests use it on Linux */
rtmsg_parse_bsd(const void *buf, size_t len, struct ifev *ev, size_t max)
{
	return rtmsg_parse_bsd_layout(&bsd_host, buf, len, ev, max);
}

#if defined(WATCH_NETLINK)
static uint32_t
get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Walk the rtattrs of one netlink message, bounded by the message. */
static bool
nl_next_attr(const uint8_t *p, size_t end, size_t *off, uint16_t *type,
    const uint8_t **data, size_t *dlen)
{
	struct rtattr rta;

	if (*off + sizeof(rta) > end)
		return false;
	memcpy(&rta, p + *off, sizeof(rta));
	if (rta.rta_len < sizeof(rta) || rta.rta_len > end - *off)
		return false;
	*type = rta.rta_type;
	*data = p + *off + RTA_LENGTH(0);
	*dlen = rta.rta_len - RTA_LENGTH(0);
	*off += RTA_ALIGN(rta.rta_len);
	return true;
}

/* Linux rtnetlink: address and link messages of the groups we join. */
static size_t
rtmsg_parse_netlink(const void *buf, size_t len, struct ifev *ev, size_t max)
{
	const uint8_t *p = buf;
	size_t n = 0;

	while (len >= sizeof(struct nlmsghdr) && n < max) {
		struct nlmsghdr nh;
		struct ifev *e = &ev[n];
		size_t off, end;
		uint16_t type;
		const uint8_t *data;
		size_t dlen;

		memcpy(&nh, p, sizeof(nh));
		if (nh.nlmsg_len < sizeof(nh) || nh.nlmsg_len > len)
			break;
		end = nh.nlmsg_len;
		memset(e, 0, sizeof(*e));
		switch (nh.nlmsg_type) {
		case NLMSG_OVERRUN:
			e->kind = IFEV_OVERFLOW;
			n++;
			break;
		case RTM_NEWADDR:
		case RTM_DELADDR: {
			struct ifaddrmsg ifa;
			const uint8_t *local = NULL, *address = NULL;
			size_t alen;
			uint32_t flags;

			if (end < NLMSG_LENGTH(sizeof(ifa)))
				break;
			memcpy(&ifa, p + NLMSG_HDRLEN, sizeof(ifa));
			if (ifa.ifa_family != AF_INET &&
			    ifa.ifa_family != AF_INET6)
				break;
			alen = ifa.ifa_family == AF_INET ? 4 : 16;
			flags = ifa.ifa_flags;
			off = NLMSG_LENGTH(NLMSG_ALIGN(sizeof(ifa)));
			while (nl_next_attr(p, end, &off, &type, &data,
			    &dlen)) {
				if (type == IFA_LOCAL && dlen >= alen)
					local = data;
				else if (type == IFA_ADDRESS && dlen >= alen)
					address = data;
				else if (type == IFA_FLAGS && dlen >= 4)
					flags = get_u32(data);
			}
			/* IFA_LOCAL is ours; IFA_ADDRESS is the peer on a
			 * point-to-point link, ours otherwise. */
			if (local == NULL)
				local = address;
			if (local == NULL)
				break;
			e->kind = nh.nlmsg_type == RTM_NEWADDR ?
			    IFEV_ADDR_ADD : IFEV_ADDR_DEL;
			e->family = ifa.ifa_family;
			e->ifindex = ifa.ifa_index;
			memcpy(&e->addr, local, alen);
			e->tentative = (flags & (IFA_F_TENTATIVE |
			    IFA_F_DADFAILED)) != 0;
			n++;
			break;
		}
		case RTM_NEWLINK:
		case RTM_DELLINK: {
			struct ifinfomsg ifi;

			if (end < NLMSG_LENGTH(sizeof(ifi)))
				break;
			memcpy(&ifi, p + NLMSG_HDRLEN, sizeof(ifi));
			if (ifi.ifi_index <= 0)
				break;
			e->kind = nh.nlmsg_type == RTM_NEWLINK ? IFEV_LINK :
			    IFEV_IF_DEPART;
			e->ifindex = (unsigned int)ifi.ifi_index;
			e->link_up = (ifi.ifi_flags & IFF_UP) != 0 &&
			    (ifi.ifi_flags & IFF_RUNNING) != 0;
			off = NLMSG_LENGTH(NLMSG_ALIGN(sizeof(ifi)));
			while (nl_next_attr(p, end, &off, &type, &data,
			    &dlen))
				if (type == IFLA_IFNAME)
					copy_ifname(e->ifname, data, dlen);
			n++;
			break;
		}
		default:
			break;
		}
		if (NLMSG_ALIGN(end) >= len)
			break;
		p += NLMSG_ALIGN(end);
		len -= NLMSG_ALIGN(end);
	}
	return n;
}
#endif

/* ------------------------------------------------------------------ */
/* Probe sockets and the rebind path                                  */
/* ------------------------------------------------------------------ */

enum trigger {
	TRIG_NONE,
	TRIG_ADDR_RETURNED,
	TRIG_IF_RETURNED,
	TRIG_LINK_UP,
	TRIG_SEND_ERRORS,
	TRIG_NO_REPLIES,
	TRIG_SIGHUP,
	TRIG_RESYNC,
	TRIG_ADDR_AVAILABLE,
};

static const char *const trigger_names[] = {
	[TRIG_NONE] = "none",
	[TRIG_ADDR_RETURNED] = "address returned",
	[TRIG_IF_RETURNED] = "interface returned",
	[TRIG_LINK_UP] = "link up",
	[TRIG_SEND_ERRORS] = "send errors",
	[TRIG_NO_REPLIES] = "no replies",
	[TRIG_SIGHUP] = "SIGHUP",
	[TRIG_RESYNC] = "resync",
	[TRIG_ADDR_AVAILABLE] = "address available",
};

/* Rebind requests, from the watcher and main to the send thread. */
static struct {
	pthread_mutex_t	lock;
	pthread_cond_t	wake;
	enum trigger	pending;
} heal = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, TRIG_NONE };

static void
request_rebind(enum trigger why)
{
	pthread_mutex_lock(&heal.lock);
	if (heal.pending == TRIG_NONE)
		heal.pending = why;
	pthread_cond_signal(&heal.wake);
	pthread_mutex_unlock(&heal.lock);
}

/* The receive socket's hand-over: the send thread leaves a new socket
 * here (or -1: none usable) and pokes the pipe; the receive thread swaps
 * and closes its old one. */
static struct {
	pthread_mutex_t	lock;
	bool		has_new;
	int		new_fd;
	int		wake_rd;
	int		wake_wr;
} recv_handoff = { PTHREAD_MUTEX_INITIALIZER, false, -1, -1, -1 };

static atomic_uint echo_id;
static _Atomic uint64_t last_reply_usec;
/* Set by the watcher while our interface's link is known to be down:
 * binding then only queues probes in the kernel, whose late replies
 * would pose as huge latencies. */
static atomic_bool watched_link_down;


/* Errors that say "the address or its interface is not there (yet)":
 * not fatal with self-healing, retried every send interval. */
static bool
errno_is_missing(int err)
{
	return err == EADDRNOTAVAIL || err == ENODEV || err == ENXIO ||
	    err == EINVAL;
}

static bool
errno_is_transient(int err)
{
	return err == EINTR || err == EAGAIN || err == EWOULDBLOCK ||
	    err == ENOBUFS;
}

static void
set_icmp_filter(int fd, int family, bool pass_replies)
{
	if (family == AF_INET6) {
		struct icmp6_filter filter;

		ICMP6_FILTER_SETBLOCKALL(&filter);
		if (pass_replies)
			ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
		(void)setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter,
		    sizeof(filter));
	}
#if defined(LINUX_ICMP_FILTER)
	else {
		/* A set bit drops that ICMP type. */
		uint32_t mask = pass_replies ? ~(1U << ICMP4_ECHO_REPLY) :
		    ~0U;

		(void)setsockopt(fd, SOL_RAW, LINUX_ICMP_FILTER, &mask,
		    sizeof(mask));
	}
#endif
}

#if defined(SOCKET_BPF)
/*
 * The receive socket's filter: only echo replies (type and code 0) with
 * our identifier reach it, so other instances' replies and any ping run
 * on the box never wake the receive thread.  An IPv4 raw socket reads
 * from the IP header (X = its length, from the first byte), an IPv6 one
 * from the ICMPv6 header.  A load past the end of a packet drops it.
 * The source and the ring lap are still checked in user space.
 */
#define RECV_FILTER_LEN	9

static size_t
recv_filter_build(int family, uint16_t id, struct sock_filter *prog)
{
	uint32_t reply = family == AF_INET ? ICMP4_ECHO_REPLY :
	    ICMP6_ECHO_REPLY;
	size_t n = 0;

	prog[n++] = family == AF_INET ?
	    (struct sock_filter)BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0) :
	    (struct sock_filter)BPF_STMT(BPF_LDX | BPF_IMM, 0);
	/* 1-6: type, code, identifier; the first mismatch drops (8) */
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_IND, 0);
	prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
	    reply, 0, 5);
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_IND, 1);
	prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
	    0, 0, 3);
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_IND, 4);
	prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
	    id, 0, 1);
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffff);
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
	return n;
}

/* Best effort, like the type filters: without it, user space drops
 * what the filter would have. */
static void
socket_filter_attach(int fd, struct sock_filter *prog, size_t n)
{
	struct sock_fprog fprog = { (unsigned short)n, prog };

	(void)setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog,
	    sizeof(fprog));
}
#endif

/* Called with each new receive socket before the receive thread sees it,
 * and again at start-up once the identifier is known (after the fork):
 * replacing a filter is atomic. */
static void
recv_filter_attach(int fd, uint16_t id)
{
#if defined(SOCKET_BPF)
	struct sock_filter prog[RECV_FILTER_LEN];

	if (fd >= 0)
		socket_filter_attach(fd, prog,
		    recv_filter_build(cfg.dest.family, id, prog));
#else
	(void)fd;
	(void)id;
#endif
}

/*
 * The send socket never reads.  The type filters above drop every ICMP
 * packet for it where the system has them (IPv6 everywhere, IPv4 on
 * Linux); FreeBSD has no IPv4 one, so its receive buffer is too small
 * for any packet (FreeBSD drops what does not fit; Linux rounds it up to
 * its minimum).  Linux also gets a filter that drops everything.  What
 * arrived before all that is read away once.
 */
static void
send_socket_deaf(int fd)
{
	int one = 1, n;
	char byte;

	set_icmp_filter(fd, cfg.dest.family, false);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &one, sizeof(one));
#if defined(SOCKET_BPF)
	{
		struct sock_filter drop =
		    (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);

		socket_filter_attach(fd, &drop, 1);
	}
#endif
	for (n = 0; n < 64 && recv(fd, &byte, 1, MSG_DONTWAIT) >= 0; n++)
		;
}

enum open_stage { STAGE_CREATE, STAGE_BIND_SCOPE, STAGE_BIND,
    STAGE_DEST_SCOPE };

/*
 * Open and bind a send and a receive socket, resolving %scope names now.
 * 0, or an errno with *stage saying what failed.
 */
static int
probe_open(int *send_fd, int *recv_fd, struct sockaddr_storage *dest,
    socklen_t *dest_len, enum open_stage *stage)
{
	int proto = cfg.dest.family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	int fds[2] = { -1, -1 }, bufsize = SOCKBUF_SIZE, on = 1, err, i;
	struct sockaddr_storage bind_sa;
	socklen_t bind_len = 0;

	if (cfg.bind_given) {
		*stage = STAGE_BIND_SCOPE;
		if ((err = addr_sockaddr(&cfg.bind, &bind_sa, &bind_len)) != 0)
			return err;
	}
	*stage = STAGE_DEST_SCOPE;
	if ((err = addr_sockaddr(&cfg.dest, dest, dest_len)) != 0)
		return err;
	for (i = 0; i < 2; i++) {
		*stage = STAGE_CREATE;
		fds[i] = socket(cfg.dest.family, SOCK_RAW | SOCK_CLOEXEC,
		    proto);
		if (fds[i] < 0)
			goto fail;
		*stage = STAGE_BIND;
		if (cfg.bind_given && bind(fds[i], (struct sockaddr *)&bind_sa,
		    bind_len) != 0)
			goto fail;
	}
	(void)setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &bufsize,
	    sizeof(bufsize));
	send_socket_deaf(fds[0]);
	(void)setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &bufsize,
	    sizeof(bufsize));
	set_icmp_filter(fds[1], cfg.dest.family, true);
	(void)setsockopt(fds[1], SOL_SOCKET, SO_TIMESTAMP, &on, sizeof(on));
#if defined(SO_TS_CLOCK) && defined(SO_TS_MONOTONIC)
	{
		/* FreeBSD: stamps on our own clock (SCM_MONOTONIC), so that
		 * a wall-clock step cannot skew a round trip. */
		int ts_clock = SO_TS_MONOTONIC;

		(void)setsockopt(fds[1], SOL_SOCKET, SO_TS_CLOCK, &ts_clock,
		    sizeof(ts_clock));
	}
#endif
	/* Connected, the kernel drops other sources before queueing (both
	 * Linux's and FreeBSD's raw input check the peer).  Only with a bind
	 * address: connecting an unbound socket would also pin the source
	 * address the route has now.  Best effort: Linux, and FreeBSD for
	 * IPv6, look up a route to connect; with none yet, the socket stays
	 * unconnected until the next rebind and user space checks the
	 * source, as it always does. */
	if (cfg.bind_given)
		(void)connect(fds[1], (struct sockaddr *)dest, *dest_len);
	*send_fd = fds[0];
	*recv_fd = fds[1];
	return 0;
fail:
	err = errno;
	for (i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return err;
}

/* The largest pid the host hands out: FreeBSD's PID_MAX is 99999; Linux
 * says in /proc (up to 2^22). */
static long
pid_limit(void)
{
	long limit = 99999;
	FILE *f = fopen("/proc/sys/kernel/pid_max", "re");

	if (f != NULL) {
		if (fscanf(f, "%ld", &limit) != 1 || limit < 1 ||
		    limit > (1L << 22))
			limit = 1L << 22;
		fclose(f);
	}
	return limit;
}

/* Whether a live process has a pid whose low 16 bits are id: the
 * identifier another dpinger started with. */
static bool
echo_id_of_live_pid(uint16_t id, long limit)
{
	long pid;

	for (pid = id; pid <= limit; pid += 65536)
		if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
			return true;
	return false;
}

/* A fresh echo identifier: not the current one, and not the pid-derived
 * identifier of any live process, so not any other dpinger's first one.
 * (One that has rebound too picked at random: a clash is 1 in 65535.) */
static uint16_t
fresh_echo_id(uint16_t current)
{
	uint16_t candidate = current;
	long limit = pid_limit();
	int tries;

	for (tries = 0; tries < 64; tries++) {
		if (getentropy(&candidate, sizeof(candidate)) != 0)
			candidate = (uint16_t)(current + 7919U * (tries + 1));
		if (candidate == current || candidate == 0 ||
		    echo_id_of_live_pid(candidate, limit))
			continue;
		break;
	}
	return candidate;
}

/* Whether a getifaddrs() entry holds the bind address. */
static bool
ifaddr_is_bind(const struct sockaddr *sa)
{
	struct in6_addr a6;

	if (sa == NULL || !cfg.bind_given || sa->sa_family != cfg.bind.family)
		return false;
	if (sa->sa_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)(const void *)sa)
		    ->sin_addr, &cfg.bind.addr.v4, 4) == 0;
	memcpy(&a6, &((const struct sockaddr_in6 *)(const void *)sa)
	    ->sin6_addr, sizeof(a6));
	kame_clear_scope(&a6);
	return memcmp(&a6, &cfg.bind.addr.v6, sizeof(a6)) == 0;
}

/* The interface carrying the bind address, for log lines. */
static void
bind_ifname(char name[IF_NAMESIZE])
{
	struct ifaddrs *list, *ifa;

	snprintf(name, IF_NAMESIZE, "(any)");
	if (!cfg.bind_given && cfg.dest.scope[0] == '\0')
		return;
	if (cfg.bind.scope[0] != '\0' || !cfg.bind_given) {
		const char *scope = cfg.bind_given ? cfg.bind.scope :
		    cfg.dest.scope;
		unsigned int index = scope_index(scope);

		if (index == 0 || if_indextoname(index, name) == NULL)
			snprintf(name, IF_NAMESIZE, "%s", scope);
		return;
	}
	if (getifaddrs(&list) != 0)
		return;
	for (ifa = list; ifa != NULL; ifa = ifa->ifa_next)
		if (ifaddr_is_bind(ifa->ifa_addr)) {
			snprintf(name, IF_NAMESIZE, "%s", ifa->ifa_name);
			break;
		}
	freeifaddrs(list);
}

/* Hand a receive socket (or -1) to the receive thread. */
static void
recv_handoff_give(int fd)
{
	char byte = 1;

	pthread_mutex_lock(&recv_handoff.lock);
	if (recv_handoff.has_new && recv_handoff.new_fd >= 0)
		close(recv_handoff.new_fd);	/* never taken: ours */
	recv_handoff.new_fd = fd;
	recv_handoff.has_new = true;
	pthread_mutex_unlock(&recv_handoff.lock);
	(void)!write(recv_handoff.wake_wr, &byte, 1);
}

/* Everything the send thread owns. */
static struct {
	int			fd;		/* -1: waiting for the address */
	struct sockaddr_storage	dest;
	socklen_t		dest_len;
	uint16_t		id;
	bool			waiting_logged;
	int			last_failure;	/* errno last logged, or 0 */
	uint64_t		last_bind_usec;
	uint64_t		last_retry_usec;
	enum trigger		retry_why;	/* what the waiting retry fulfils */
} sender = { .fd = -1, .retry_why = TRIG_ADDR_AVAILABLE };

/*
 * Reopen both probe sockets.  true when new ones are in place.  When the
 * address is missing, the old sockets (stale by definition) are dropped
 * and the send thread retries every send interval.
 */
static bool
rebind(enum trigger why)
{
	int send_fd, recv_fd, err;
	enum open_stage stage;
	char ifname[IF_NAMESIZE];

	err = probe_open(&send_fd, &recv_fd, &sender.dest, &sender.dest_len,
	    &stage);
	if (err != 0) {
		/* Each distinct failure is logged once, not every retry. */
		bool first = err != sender.last_failure;

		sender.last_failure = err;
		if (stage == STAGE_CREATE) {
			/* Keep what we have: stale beats nothing. */
			if (first)
				logmsg("%s%s: cannot create send socket: %s",
				    cfg.identifier, cfg.dest.text,
				    strerror(err));
			return false;
		}
		if (!errno_is_missing(err) && stage == STAGE_BIND) {
			if (first)
				logmsg("%s%s: cannot bind send socket: %s",
				    cfg.identifier, cfg.dest.text,
				    strerror(err));
		} else if (!cfg.heal) {
			/* -X: no waiting mode; keep what we have. */
			if (first)
				logmsg("%s%s: cannot rebind: %s",
				    cfg.identifier, cfg.dest.text,
				    strerror(err));
			return false;
		} else if (!sender.waiting_logged)
			logmsg("%s%s: waiting for %s address %s: %s",
			    cfg.identifier, cfg.dest.text,
			    stage == STAGE_DEST_SCOPE ? "destination" : "bind",
			    stage == STAGE_DEST_SCOPE ? cfg.dest.text :
			    cfg.bind.text, strerror(err));
		sender.waiting_logged = true;
		if (sender.fd >= 0) {
			close(sender.fd);
			sender.fd = -1;
			recv_handoff_give(-1);
		}
		return false;
	}
	sender.last_failure = 0;
	sender.retry_why = TRIG_ADDR_AVAILABLE;
	if (sender.fd >= 0)
		close(sender.fd);
	sender.fd = send_fd;
	sender.id = fresh_echo_id(sender.id);
	recv_filter_attach(recv_fd, sender.id);
	recv_handoff_give(recv_fd);
	atomic_store_explicit(&echo_id, sender.id, memory_order_release);
	sender.waiting_logged = false;
	sender.last_bind_usec = now_usec();
	bind_ifname(ifname);
	logmsg("%s%s: rebind (%s) on %s: echo id %u", cfg.identifier,
	    cfg.dest.text, trigger_names[why], ifname, sender.id);
	return true;
}

/* ------------------------------------------------------------------ */
/* Send thread                                                        */
/* ------------------------------------------------------------------ */

#define BACKOFF_FIRST_USEC	2000000ULL
#define BACKOFF_CAP_USEC	120000000ULL
#define REPEAT_LOG_USEC		60000000ULL
#define WAITING_BACKSTOP_USEC	5000000ULL

/* Log the first error of a run with upstream's text, then a count at most
 * once a minute, instead of one line per probe. */
struct error_log {
	const char	*what;		/* "sendto error", "recvfrom error" */
	bool		with_errno;	/* false: the text says it all */
	int		last_err;
	unsigned long	repeats;
	uint64_t	last_log_usec;
};

static void
error_log_flush(struct error_log *el)
{
	if (el->repeats > 0 && el->with_errno)
		logmsg("%s%s: %s: %d repeated %lu times", cfg.identifier,
		    cfg.dest.text, el->what, el->last_err, el->repeats);
	else if (el->repeats > 0)
		logmsg("%s%s: %s, repeated %lu times", cfg.identifier,
		    cfg.dest.text, el->what, el->repeats);
	el->repeats = 0;
}

static void
error_log_note(struct error_log *el, int err, uint64_t now)
{
	if (err != el->last_err) {
		error_log_flush(el);
		el->last_err = err;
		el->last_log_usec = now;
		if (el->with_errno)
			logmsg("%s%s: %s: %d", cfg.identifier, cfg.dest.text,
			    el->what, err);
		else
			logmsg("%s%s: %s", cfg.identifier, cfg.dest.text,
			    el->what);
		return;
	}
	el->repeats++;
	if (now - el->last_log_usec >= REPEAT_LOG_USEC) {
		error_log_flush(el);
		el->last_log_usec = now;
	}
}

static void
error_log_ok(struct error_log *el)
{
	error_log_flush(el);
	el->last_err = 0;
}

/* Automatic rebinds (send errors, silence) back off while the fault
 * persists; any reply resets the back-off. */
struct auto_heal {
	unsigned int	consecutive_failures;
	uint64_t	backoff_usec;
	uint64_t	next_allowed_usec;
	uint64_t	quiet_since_usec;	/* last reply or bind */
	unsigned int	quiet_sends;		/* sends since then */
};

static bool
auto_heal_allowed(struct auto_heal *ah, uint64_t now)
{
	if (!cfg.heal || now < ah->next_allowed_usec)
		return false;
	ah->backoff_usec = ah->backoff_usec == 0 ? BACKOFF_FIRST_USEC :
	    ah->backoff_usec * 2;
	if (ah->backoff_usec > BACKOFF_CAP_USEC)
		ah->backoff_usec = BACKOFF_CAP_USEC;
	ah->next_allowed_usec = now + ah->backoff_usec;
	return true;
}

static void
auto_heal_rebound(struct auto_heal *ah, uint64_t now)
{
	ah->consecutive_failures = 0;
	ah->quiet_since_usec = now;
	ah->quiet_sends = 0;
}

static void *
send_thread(void *arg)
{
	uint8_t *packet = malloc(ICMP_HEADER_LEN + cfg.data_len);
	uint64_t next = now_usec(), interval = cfg.send_interval_msec * 1000ULL;
	struct error_log errors = { "sendto error", true, 0, 0, 0 };
	struct auto_heal ah = { 0, 0, 0, 0, 0 };
	unsigned int seq = 0;

	(void)arg;
	if (packet == NULL)
		fatal("out of memory");
	ah.quiet_since_usec = next;
	for (;;) {
		struct timespec deadline = usec_to_timespec(next);
		enum trigger why;
		uint64_t now, reply;
		size_t len;
		ssize_t rc;
		struct slot *slot;

		/* Sleep until the next send, serving rebind requests. */
		pthread_mutex_lock(&heal.lock);
		while (heal.pending == TRIG_NONE &&
		    pthread_cond_timedwait(&heal.wake, &heal.lock,
		    &deadline) != ETIMEDOUT)
			;
		why = heal.pending;
		heal.pending = TRIG_NONE;
		pthread_mutex_unlock(&heal.lock);
		if (why != TRIG_NONE) {
			/* Linux announces a new IPv4 address before its local
			 * route exists, so a bind at once can still fail: the
			 * waiting retry then completes this request, and its
			 * line names the trigger that asked for it. */
			if (rebind(why))
				auto_heal_rebound(&ah, now_usec());
			else if (sender.fd < 0)
				sender.retry_why = why;
			continue;
		}

		now = now_usec();
		reply = atomic_load_explicit(&last_reply_usec,
		    memory_order_relaxed);
		if (reply > ah.quiet_since_usec) {
			ah.quiet_since_usec = reply;
			ah.quiet_sends = 0;
			ah.backoff_usec = 0;
			ah.next_allowed_usec = 0;
		}
		/* Waiting for the address: retry every send interval, or
		 * every few seconds while the watcher says the link is down
		 * (a backstop should it have missed the link coming up). */
		if (sender.fd < 0 && (!atomic_load_explicit(&watched_link_down,
		    memory_order_relaxed) || now - sender.last_retry_usec >=
		    WAITING_BACKSTOP_USEC)) {
			sender.last_retry_usec = now;
			if (rebind(sender.retry_why))
				auto_heal_rebound(&ah, now);
		}
		else if (sender.fd >= 0 && cfg.silence_msec > 0 &&
		    ah.quiet_sends >= 2 && now - ah.quiet_since_usec >=
		    cfg.silence_msec * 1000ULL && auto_heal_allowed(&ah, now) &&
		    rebind(TRIG_NO_REPLIES))
			auto_heal_rebound(&ah, now);

		len = icmp_build_echo(cfg.dest.family, packet, cfg.data_len,
		    sender.id, (uint16_t)seq);
		pthread_mutex_lock(&ring.lock);
		slot = &ring.slots[seq % cfg.slot_count];
		slot->seq = (uint16_t)seq;
		slot->answered = false;
		slot->latency_usec = 0;
		slot->sent_usec = now_usec();
		pthread_mutex_unlock(&ring.lock);
		seq = (seq + 1) % cfg.seq_limit;

		/* While waiting for the address, the probe counts as lost. */
		if (sender.fd >= 0) {
			rc = sendto(sender.fd, packet, len, 0,
			    (struct sockaddr *)&sender.dest, sender.dest_len);
			if (rc >= 0) {
				error_log_ok(&errors);
				ah.consecutive_failures = 0;
				ah.quiet_sends++;
			} else {
				int err = errno;

				error_log_note(&errors, err, now);
				if (!errno_is_transient(err) &&
				    ++ah.consecutive_failures >=
				    cfg.fail_count && cfg.fail_count > 0 &&
				    auto_heal_allowed(&ah, now) &&
				    rebind(TRIG_SEND_ERRORS))
					auto_heal_rebound(&ah, now);
			}
		}

		next = next_deadline(next, interval);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Receive thread                                                     */
/* ------------------------------------------------------------------ */

static bool
same_addr(const struct sockaddr_storage *from)
{
	if (from->ss_family != cfg.dest.family)
		return false;
	if (from->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)(const void *)from)
		    ->sin_addr, &cfg.dest.addr.v4, 4) == 0;
	return memcmp(&((const struct sockaddr_in6 *)(const void *)from)
	    ->sin6_addr, &cfg.dest.addr.v6, 16) == 0;
}

/* Receive latency: the kernel's arrival stamp when there is one, so a
 * late-scheduled thread does not add to the round trip.  A monotonic
 * stamp (FreeBSD's SO_TS_MONOTONIC) is on our own clock; a wall-clock
 * one (Linux) says how long the reply sat in the queue. */
static uint64_t
arrival_usec(struct msghdr *msg)
{
	uint64_t now = now_usec();
	struct cmsghdr *cm;

	for (cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
		struct timeval tv;
		struct timespec rt;
		int64_t queued;

#if defined(SCM_MONOTONIC)
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_MONOTONIC &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(rt))) {
			uint64_t stamp;

			memcpy(&rt, CMSG_DATA(cm), sizeof(rt));
			stamp = (uint64_t)rt.tv_sec * 1000000 +
			    (uint64_t)rt.tv_nsec / 1000;
			if (stamp <= now && now - stamp < 1000000)
				now = stamp;
			break;
		}
#endif
		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_TIMESTAMP ||
		    cm->cmsg_len < CMSG_LEN(sizeof(tv)))
			continue;
		memcpy(&tv, CMSG_DATA(cm), sizeof(tv));
		clock_gettime(CLOCK_REALTIME, &rt);
		queued = ((int64_t)rt.tv_sec - tv.tv_sec) * 1000000 +
		    (rt.tv_nsec / 1000 - tv.tv_usec);
		if (queued > 0 && (uint64_t)queued < 1000000 &&
		    (uint64_t)queued < now)
			now -= (uint64_t)queued;
		break;
	}
	return now;
}

static void
handle_reply(uint16_t seq, uint64_t arrived, struct error_log *duplicates)
{
	struct slot *slot;
	bool duplicate = false;

	if (seq >= cfg.seq_limit)
		return;
	pthread_mutex_lock(&ring.lock);
	slot = &ring.slots[seq % cfg.slot_count];
	/* Only the lap this slot holds: a late reply from an earlier lap
	 * of the ring is not this probe's. */
	if (slot->sent_usec != 0 && slot->seq == seq) {
		if (slot->answered)
			duplicate = true;
		else {
			slot->answered = true;
			slot->latency_usec = arrived > slot->sent_usec ?
			    (uint32_t)(arrived - slot->sent_usec) : 0;
		}
	}
	pthread_mutex_unlock(&ring.lock);
	if (duplicate)
		error_log_note(duplicates, 1, arrived);
	else
		atomic_store_explicit(&last_reply_usec, arrived,
		    memory_order_relaxed);
}

static void *
recv_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	size_t bufsize = SOCKBUF_SIZE;
	uint8_t *buf = malloc(bufsize);
	struct error_log errors = { "recvfrom error", true, 0, 0, 0 };
	struct error_log runts = { "received packet too small for IP header",
	    false, 0, 0, 0 };
	struct error_log duplicates = { "duplicate echo reply received",
	    false, 0, 0, 0 };

	if (buf == NULL)
		fatal("out of memory");
	for (;;) {
		struct pollfd pfd[2];
		struct sockaddr_storage from;
		union {
			struct cmsghdr	align;
			/* one stamp, and FreeBSD's SCM_TIME_INFO */
			uint8_t		space[2 * CMSG_SPACE(
			    sizeof(struct timespec))];
		} control;
		struct iovec iov = { buf, bufsize };
		struct msghdr msg;
		ssize_t n;
		uint16_t id, seq;

		pfd[0].fd = recv_handoff.wake_rd;
		pfd[0].events = POLLIN;
		pfd[1].fd = fd;
		pfd[1].events = POLLIN;
		if (poll(pfd, fd >= 0 ? 2 : 1, -1) < 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			char drain[16];

			(void)!read(recv_handoff.wake_rd, drain,
			    sizeof(drain));
			pthread_mutex_lock(&recv_handoff.lock);
			if (recv_handoff.has_new) {
				if (fd >= 0)
					close(fd);
				fd = recv_handoff.new_fd;
				recv_handoff.has_new = false;
				recv_handoff.new_fd = -1;
			}
			pthread_mutex_unlock(&recv_handoff.lock);
			continue;
		}
		if (fd < 0 || (pfd[1].revents & (POLLIN | POLLERR)) == 0)
			continue;

		memset(&msg, 0, sizeof(msg));
		msg.msg_name = &from;
		msg.msg_namelen = sizeof(from);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = &control;
		msg.msg_controllen = sizeof(control);
		n = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (n < 0) {
			if (!errno_is_transient(errno))
				error_log_note(&errors, errno, now_usec());
			continue;
		}
		if (cfg.dest.family == AF_INET && n < 20) {
			error_log_note(&runts, 1, now_usec());
			continue;
		}
		if (!icmp_parse_reply(cfg.dest.family, buf, (size_t)n, &id,
		    &seq) || !same_addr(&from) ||
		    id != atomic_load_explicit(&echo_id, memory_order_acquire))
			continue;
		handle_reply(seq, arrival_usec(&msg), &duplicates);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Report thread                                                      */
/* ------------------------------------------------------------------ */

static int report_fd = STDOUT_FILENO;

static void
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

/*
 * SIGPIPE is left alone (not blocked): as upstream, when stdout is a pipe
 * whose reader has gone (`dpinger -f addr | head -1`), the next line ends
 * the process.
 */
static void *
report_thread(void *arg)
{
	uint64_t interval = cfg.report_interval_msec * 1000ULL;
	uint64_t next = now_usec() + interval;

	(void)arg;
	for (;; next = next_deadline(next, interval)) {
		struct stats st;
		char line[128];
		int len;

		sleep_until(next);
		stats_now(&st);
		len = format_report(line, sizeof(line), cfg.identifier, &st);
		if (len <= 0 || (size_t)len >= sizeof(line))
			continue;
		/* With -R the file always holds exactly the last line; a
		 * pipe or terminal just gets the line. */
		if (cfg.rewind_output &&
		    lseek(report_fd, 0, SEEK_SET) == 0) {
			write_all(report_fd, line, (size_t)len);
			(void)!ftruncate(report_fd, len);
		} else
			write_all(report_fd, line, (size_t)len);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Alert thread                                                       */
/* ------------------------------------------------------------------ */

/*
 * Two independent alarms, latency (-D) and loss (-L), as upstream.  Each
 * counter is the number of good checks left before that alarm clears: an
 * alarm is raised while its counter is above 0.
 */
struct alarm_state {
	uint64_t	latency_hold;
	uint64_t	loss_hold;
};

/* N = ceil(hold / alert interval), at least 1.  64-bit: a hold of years
 * over a 1 ms interval passes 2^32 checks. */
static uint64_t
alarm_hold_checks(const struct config *c)
{
	uint64_t n = (c->hold_interval_msec + c->alert_interval_msec - 1) /
	    c->alert_interval_msec;

	return n > 0 ? n : 1;
}

/*
 * One alarm, one check; true on an event.  A bad check sets the counter
 * to N (an event if it was 0: raised); a good one counts down, and the Nth
 * good check in a row clears the alarm (an event).
 */
static bool
alarm_step(bool bad, uint64_t *hold, uint64_t n)
{
	bool raised;

	if (bad) {
		raised = *hold == 0;
		*hold = n;
		return raised;
	}
	if (*hold == 0)
		return false;
	return --*hold == 0;
}

/*
 * One check of both alarms (a threshold of 0 is never evaluated).  True
 * when either had an event: then *flag is 1 if either alarm is still
 * raised.  So a raise while the other alarm is on, and a clear while the
 * other stays on, are events with flag 1, each one call of -C.
 */
static bool
alarm_update(struct alarm_state *as, const struct stats *st,
    const struct config *c, bool *flag)
{
	uint64_t n = alarm_hold_checks(c);
	bool latency_event, loss_event;

	latency_event = alarm_step(c->latency_alarm_msec > 0 &&
	    st->avg_usec > c->latency_alarm_msec * 1000UL, &as->latency_hold,
	    n);
	loss_event = alarm_step(c->loss_alarm_pct > 0 &&
	    st->loss_pct > c->loss_alarm_pct, &as->loss_hold, n);
	*flag = as->latency_hold > 0 || as->loss_hold > 0;
	return latency_event || loss_event;
}

static char *alert_script;	/* `CMD "$@"`, built at start-up */

/* Run the alert command as `sh -c 'CMD "$@"'` with upstream's words as
 * arguments, and wait for it, as upstream's system() does, in the
 * directory we were started in (as upstream, we never chdir).  An empty
 * identifier (-i "") is no argument at all: upstream's shell drops it
 * too.  The child gets default signal handling and an empty mask. */
static void
run_alert_command(bool alarm, const struct stats *st)
{
	char ident[IDENT_MAX + 1], flag[2];
	char avg[24], sd[24], loss[8];
	char *argv[12];
	int argc = 0, status;
	size_t identlen = strlen(cfg.identifier);
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	pid_t pid;

	snprintf(flag, sizeof(flag), "%d", alarm ? 1 : 0);
	snprintf(avg, sizeof(avg), "%lu", st->avg_usec);
	snprintf(sd, sizeof(sd), "%lu", st->stddev_usec);
	snprintf(loss, sizeof(loss), "%u", st->loss_pct);
	argv[argc++] = "sh";
	argv[argc++] = "-c";
	argv[argc++] = alert_script;
	argv[argc++] = "sh";
	if (identlen > 1) {
		memcpy(ident, cfg.identifier, identlen - 1);
		ident[identlen - 1] = '\0';
		argv[argc++] = ident;
	}
	argv[argc++] = (char *)cfg.dest.text;
	argv[argc++] = flag;
	argv[argc++] = avg;
	argv[argc++] = sd;
	argv[argc++] = loss;
	argv[argc] = NULL;

	sigemptyset(&none);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGTERM);
	sigaddset(&defaults, SIGINT);
	sigaddset(&defaults, SIGHUP);
	sigaddset(&defaults, SIGPIPE);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawnattr_setflags(&attr,
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	status = posix_spawn(&pid, "/bin/sh", NULL, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	if (status != 0) {
		logmsg("%s%s: cannot run alert command: %s", cfg.identifier,
		    cfg.dest.text, strerror(status));
		return;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/*
 * A stall or a slow alert command skips checks rather than running them
 * back to back: a hold is counted in time, not used up in a burst.
 */
static void *
alert_thread(void *arg)
{
	uint64_t interval = cfg.alert_interval_msec * 1000ULL;
	uint64_t next = now_usec() + interval;
	struct alarm_state as = { 0, 0 };

	(void)arg;
	for (;; next = next_deadline(next, interval)) {
		struct stats st;
		bool alarm;

		sleep_until(next);
		stats_now(&st);
		if (!alarm_update(&as, &st, &cfg, &alarm))
			continue;
		logmsg("%s%s: %s latency %luus stddev %luus loss %u%%",
		    cfg.identifier, cfg.dest.text, alarm ? "Alarm" : "Clear",
		    st.avg_usec, st.stddev_usec, st.loss_pct);
		if (cfg.alert_cmd != NULL)
			run_alert_command(alarm, &st);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Status socket thread                                               */
/* ------------------------------------------------------------------ */

static struct {
	pthread_mutex_t	lock;		/* held while the path changes */
	int		fd;
	char		path[PATH_MAX];	/* absolute, as given at start */
} usock = { PTHREAD_MUTEX_INITIALIZER, -1, "" };

/*
 * Bind fd to sun with upstream's mode 0666, and never a chmod by path: a
 * symlink (or a hard link) put in place of the new socket file between
 * bind and chmod would hand its target's mode to whoever planted it.  The
 * file is born with the mode: 0777 less the umask, on Linux and FreeBSD
 * alike (fchmod on an unbound socket does not set it on both).  The umask
 * belongs to the whole process, and other threads create files and spawn
 * the alert command, so a child process sets it and binds our socket, the
 * one it shares.  umask, bind and _exit are async-signal-safe: all a child
 * of a threaded process may call.  errno travels in the exit status.
 */
static int
usock_bind(int fd, const struct sockaddr_un *sun)
{
	pid_t pid;
	int status;

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		(void)umask(0111);
		_exit(bind(fd, (const struct sockaddr *)sun,
		    sizeof(*sun)) == 0 ? 0 : errno & 0xff);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(status)) {
		errno = EINTR;
		return -1;
	}
	errno = WEXITSTATUS(status);
	return errno == 0 ? 0 : -1;
}

/* Listening socket at path: unlink what is there (a symlink is removed,
 * not followed), bind with mode 0666, listen. */
static int
usock_open(const char *path)
{
	struct sockaddr_un sun;
	int fd, flags;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	(void)unlink(path);
	if (usock_bind(fd, &sun) != 0 || listen(fd, 5) != 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	/* accept() must never wait for a client that went away. */
	flags = fcntl(fd, F_GETFL);
	(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	return fd;
}

/* Client sockets are close-on-exec from birth: one accepted while the
 * alert command is being spawned must not live on in it, or the reader
 * waits for EOF as long as the command runs. */
static int
accept_cloexec(int fd)
{
#if defined(SOCK_CLOEXEC)
	return accept4(fd, NULL, NULL, SOCK_CLOEXEC);
#else
#warning "no accept4: a status client may leak into an alert command"
	return accept(fd, NULL, NULL);
#endif
}

/* Someone removed our file: put it back, or no one can read us again.
 * A file that is there but not ours (a newer instance's, or a symlink,
 * which is not followed) is left alone. */
static void
usock_check_path(void)
{
	struct stat sb;
	int fd;

	pthread_mutex_lock(&usock.lock);
	if (lstat(usock.path, &sb) != 0 && errno == ENOENT) {
		fd = usock_open(usock.path);
		if (fd >= 0) {
			close(usock.fd);
			usock.fd = fd;
			logmsg("%s%s: status socket %s re-created",
			    cfg.identifier, cfg.dest.text, usock.path);
		}
	}
	pthread_mutex_unlock(&usock.lock);
}

static void
usock_answer(int client)
{
	struct stats st;
	char line[128];
	int len;

	stats_now(&st);
	len = format_report(line, sizeof(line), cfg.identifier, &st);
	/* A fresh socket buffer takes one short line: this never blocks,
	 * and a stuck client costs nothing. */
	if (len > 0 && (size_t)len < sizeof(line))
		(void)!send(client, line, (size_t)len,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
	close(client);
}

/* accept() found no descriptor (EMFILE, ENFILE) or no memory: the client
 * stays queued and poll() says so again at once.  Wait instead, 100 ms
 * doubling to a second, so a full descriptor table never spins a core;
 * log the first failure and the recovery, not each retry. */
#define USOCK_BACKOFF_MIN_MSEC	100
#define USOCK_BACKOFF_MAX_MSEC	1000

static bool
accept_starved(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM;
}

static void *
usock_thread(void *arg)
{
	uint64_t next_check = now_usec() + 1000000;
	int backoff_msec = 0;
	unsigned long starved = 0;

	(void)arg;
	for (;;) {
		struct pollfd pfd = { usock.fd, POLLIN, 0 };
		int client;

		if (poll(&pfd, 1, 1000) > 0) {
			while ((client = accept_cloexec(usock.fd)) >= 0) {
				usock_answer(client);
				if (starved > 0)
					logmsg("%s%s: status socket answers"
					    " again after %lu failed accepts",
					    cfg.identifier, cfg.dest.text,
					    starved);
				starved = 0;
				backoff_msec = 0;
			}
			if (accept_starved(errno)) {
				if (starved++ == 0)
					logmsg("%s%s: status socket: accept:"
					    " %s", cfg.identifier,
					    cfg.dest.text, strerror(errno));
				backoff_msec = backoff_msec == 0 ?
				    USOCK_BACKOFF_MIN_MSEC : backoff_msec * 2;
				if (backoff_msec > USOCK_BACKOFF_MAX_MSEC)
					backoff_msec = USOCK_BACKOFF_MAX_MSEC;
				(void)poll(NULL, 0, backoff_msec);
			}
		}
		if (now_usec() >= next_check) {
			usock_check_path();
			next_check = now_usec() + 1000000;
		}
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Interface watcher                                                  */
/* ------------------------------------------------------------------ */

/*
 * What the watcher knows about the bind address (or, without -B, the
 * destination's scope interface).  Owned by the watch thread.
 */
struct watch_state {
	bool		addr_present;
	unsigned int	ifindex;	/* interface carrying it, 0: unknown */
	bool		link_up;
	enum trigger	deferred;	/* waits for the link to come up */
};

/* The interface name we follow: the scope of -B, else of the
 * destination; "" when the bind address has no scope. */
static const char *
watched_scope(void)
{
	return cfg.bind_given ? cfg.bind.scope : cfg.dest.scope;
}

static bool
addr_is_ours(int family, const void *addr, unsigned int ifindex)
{
	const char *scope = cfg.bind.scope;

	if (!cfg.bind_given || family != cfg.bind.family)
		return false;
	if (memcmp(addr, &cfg.bind.addr, family == AF_INET ? 4 : 16) != 0)
		return false;
	return scope[0] == '\0' || scope_index(scope) == ifindex;
}

/* Whether an interface is up and running, asked when an address shows
 * up on an interface the watcher has not followed so far. */
static bool
iface_running(unsigned int ifindex)
{
	char name[IF_NAMESIZE];
	struct ifaddrs *list, *ifa;
	bool running = false;

	if (if_indextoname(ifindex, name) == NULL || getifaddrs(&list) != 0)
		return false;
	for (ifa = list; ifa != NULL; ifa = ifa->ifa_next)
		if (strcmp(ifa->ifa_name, name) == 0) {
			running = (ifa->ifa_flags & IFF_UP) &&
			    (ifa->ifa_flags & IFF_RUNNING);
			break;
		}
	freeifaddrs(list);
	return running;
}

/* A trigger fires only once a rebind can work: the link is up and the
 * bind address (if any) is there.  Until then the most telling one
 * waits. */
static enum trigger
watch_ready(struct watch_state *ws, enum trigger why)
{
	if (why != TRIG_NONE && (ws->deferred == TRIG_NONE ||
	    ws->deferred == TRIG_LINK_UP || why == TRIG_ADDR_RETURNED))
		ws->deferred = why;
	atomic_store_explicit(&watched_link_down,
	    ws->ifindex != 0 && !ws->link_up, memory_order_relaxed);
	if (!ws->link_up || (cfg.bind_given && !ws->addr_present))
		return TRIG_NONE;
	why = ws->deferred;
	ws->deferred = TRIG_NONE;
	return why;
}

/*
 * Apply one event; the trigger for a rebind, or TRIG_NONE.  Events for
 * other addresses and interfaces end here in a few comparisons.
 */
static enum trigger __attribute__((unused))	/* no watcher: tests only */
watch_apply(struct watch_state *ws, const struct ifev *ev)
{
	const char *scope = watched_scope();

	switch (ev->kind) {
	case IFEV_ADDR_ADD:
		if (!addr_is_ours(ev->family, &ev->addr, ev->ifindex) ||
		    ev->tentative)
			return TRIG_NONE;
		if (ws->addr_present && ws->ifindex == ev->ifindex)
			return TRIG_NONE;	/* a refresh, nothing new */
		if (ws->ifindex != ev->ifindex)
			ws->link_up = iface_running(ev->ifindex);
		ws->addr_present = true;
		ws->ifindex = ev->ifindex;
		return watch_ready(ws, TRIG_ADDR_RETURNED);
	case IFEV_ADDR_DEL:
		/* Once we know where the address lives, only its removal
		 * there counts (the same IPv4 address may sit on another
		 * interface too, e.g. a CARP alias). */
		if (cfg.bind_given && ev->family == cfg.bind.family &&
		    memcmp(&ev->addr, &cfg.bind.addr,
		    ev->family == AF_INET ? 4 : 16) == 0 &&
		    (ws->ifindex != 0 ? ev->ifindex == ws->ifindex :
		    addr_is_ours(ev->family, &ev->addr, ev->ifindex)))
			ws->addr_present = false;
		return TRIG_NONE;
	case IFEV_IF_DEPART:
		if (ev->ifindex == ws->ifindex && ws->ifindex != 0) {
			ws->addr_present = false;
			ws->link_up = false;
			atomic_store_explicit(&watched_link_down, true,
			    memory_order_relaxed);
		}
		return TRIG_NONE;
	case IFEV_IF_ARRIVE:
	case IFEV_LINK:
		if (scope[0] != '\0' && ev->ifname[0] != '\0' &&
		    strcmp(ev->ifname, scope) == 0 &&
		    ev->ifindex != ws->ifindex) {
			/* Our interface, created again: new index. */
			ws->ifindex = ev->ifindex;
			ws->link_up = ev->link_up;
			if (cfg.bind_given)
				ws->addr_present = false;
			return watch_ready(ws, TRIG_IF_RETURNED);
		}
		if (ev->kind == IFEV_LINK && ev->ifindex == ws->ifindex &&
		    ws->ifindex != 0) {
			bool was_up = ws->link_up;

			ws->link_up = ev->link_up;
			return watch_ready(ws, !was_up && ev->link_up ?
			    TRIG_LINK_UP : TRIG_NONE);
		}
		return TRIG_NONE;
	case IFEV_OVERFLOW:
		return TRIG_RESYNC;
	}
	return TRIG_NONE;
}

/* Re-read the interfaces (start-up, and after the kernel dropped
 * messages).  A trigger when the address is back or moved. */
static enum trigger __attribute__((unused))	/* no watcher: tests only */
watch_resync(struct watch_state *ws)
{
	struct ifaddrs *list, *ifa;
	struct watch_state old = *ws;
	const char *scope = watched_scope();

	if (getifaddrs(&list) != 0)
		return TRIG_NONE;
	ws->addr_present = false;
	if (scope[0] != '\0') {
		ws->ifindex = scope_index(scope);
		ws->link_up = false;
	}
	for (ifa = list; ifa != NULL; ifa = ifa->ifa_next) {
		unsigned int index = if_nametoindex(ifa->ifa_name);

		if (index == ws->ifindex && index != 0)
			ws->link_up = (ifa->ifa_flags & IFF_UP) &&
			    (ifa->ifa_flags & IFF_RUNNING);
		if (ifaddr_is_bind(ifa->ifa_addr) &&
		    addr_is_ours(cfg.bind.family, &cfg.bind.addr, index)) {
			ws->addr_present = true;
			ws->ifindex = index;
			ws->link_up = (ifa->ifa_flags & IFF_UP) &&
			    (ifa->ifa_flags & IFF_RUNNING);
		}
	}
	freeifaddrs(list);
	return watch_ready(ws, (ws->addr_present && (!old.addr_present ||
	    old.ifindex != ws->ifindex)) || (!cfg.bind_given &&
	    ws->ifindex != 0 && ws->ifindex != old.ifindex) ?
	    TRIG_RESYNC : TRIG_NONE);
}

#define WATCH_BUF_SIZE	16384
#define WATCH_MAX_EVENTS 256
#define WATCH_RCVBUF	(1 << 20)

#if defined(WATCH_NETLINK) || defined(WATCH_PF_ROUTE)
/* Room for a burst (an IPsec reload re-creates dozens of interfaces at
 * once) on either platform's routing socket: what does not fit is an
 * overflow, and costs a resync. */
static void
watch_rcvbuf(int fd)
{
	int size = WATCH_RCVBUF;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}
#endif

#if defined(WATCH_NETLINK)
/*
 * A socket filter that drops, in the kernel, address messages about
 * addresses other than the bind address: the rest of a busy box's
 * address churn then never wakes the watcher.  It reads the attributes
 * where Linux writes them (IPv4: IFA_ADDRESS, IFA_LOCAL; IPv6: IFA_LOCAL,
 * IFA_ADDRESS with a peer, else IFA_ADDRESS alone) and passes every
 * message laid out otherwise, so an unexpected layout costs a wake-up,
 * never an event.  Classic BPF loads are big-endian: host-order fields
 * are compared with byte-swapped constants.
 */
#define WATCH_FILTER_MAX	40

static unsigned char
bpf_skip(size_t from, size_t to)
{
	return (unsigned char)(to - from - 1);
}

/* Compare the address at off with want, word by word, from prog[n]:
 * all equal jumps to match, the first difference to differ. */
static size_t
bpf_match_addr(struct sock_filter *prog, size_t n, size_t off,
    const uint32_t *want, size_t words, size_t match, size_t differ)
{
	size_t i;

	for (i = 0; i < words; i++) {
		prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W |
		    BPF_ABS, off + 4 * i);
		prog[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ |
		    BPF_K, want[i], i + 1 == words ? bpf_skip(n, match) : 0,
		    bpf_skip(n, differ));
		n++;
	}
	return n;
}

static size_t
watch_filter_build(int family, const void *addr, struct sock_filter *prog)
{
	const uint8_t *bytes = addr;
	size_t words = family == AF_INET ? 1 : 4, alen = words * 4, i, n = 0;
	size_t attr1 = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	size_t attr2 = attr1 + RTA_ALIGN(RTA_LENGTH(alen));
	size_t second = 8 + 2 * words, drop = second + 5 + 2 * words;
	size_t accept = drop + 1;
	uint32_t want[4];

	for (i = 0; i < words; i++)
		want[i] = (uint32_t)bytes[4 * i] << 24 |
		    (uint32_t)bytes[4 * i + 1] << 16 |
		    (uint32_t)bytes[4 * i + 2] << 8 | bytes[4 * i + 3];
	/* 0-2: anything but an address message passes */
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS,
	    offsetof(struct nlmsghdr, nlmsg_type));
	prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
	    htons(RTM_NEWADDR), 1, 0);
	prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
	    htons(RTM_DELADDR), 0, bpf_skip(2, accept));
	/* 3-7: the first attribute is an address of our size, or pass */
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS,
	    attr1 + offsetof(struct rtattr, rta_type));
	prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
	    htons(IFA_ADDRESS), 1, 0);
	prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
	    htons(IFA_LOCAL), 0, bpf_skip(5, accept));
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS,
	    attr1 + offsetof(struct rtattr, rta_len));
	prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
	    htons(RTA_LENGTH(alen)), 0, bpf_skip(7, accept));
	/* 8..: ours passes; otherwise look at the second attribute */
	n = bpf_match_addr(prog, n, attr1 + RTA_LENGTH(0), want, words,
	    accept, second);
	/* second..: an address attribute that is ours passes; no second
	 * address attribute means the first was the only one: drop */
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS,
	    attr2 + offsetof(struct rtattr, rta_type));
	prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
	    htons(IFA_ADDRESS), 1, 0);
	prog[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
	    htons(IFA_LOCAL), 0, bpf_skip(n, drop));
	n++;
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS,
	    attr2 + offsetof(struct rtattr, rta_len));
	prog[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
	    htons(RTA_LENGTH(alen)), 0, bpf_skip(n, drop));
	n++;
	n = bpf_match_addr(prog, n, attr2 + RTA_LENGTH(0), want, words,
	    accept, drop);
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
	prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffff);
	return n;
}

/* Best effort: without the filter the watcher only wakes more often. */
static void
watch_filter_attach(int fd)
{
	struct sock_filter prog[WATCH_FILTER_MAX];
	struct sock_fprog fprog;

	if (!cfg.bind_given)
		return;
	fprog.len = (unsigned short)watch_filter_build(cfg.bind.family,
	    &cfg.bind.addr, prog);
	fprog.filter = prog;
	(void)setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog,
	    sizeof(fprog));
}

static int
watch_open(void)
{
	struct sockaddr_nl snl;
	int fd;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -1;
	/* Links, and addresses of our family when there is a bind
	 * address: route churn and the other family's address churn (a
	 * dual-stack gateway's other monitor) never wake us. */
	memset(&snl, 0, sizeof(snl));
	snl.nl_family = AF_NETLINK;
	snl.nl_groups = RTMGRP_LINK;
	if (cfg.bind_given)
		snl.nl_groups |= cfg.bind.family == AF_INET ?
		    RTMGRP_IPV4_IFADDR : RTMGRP_IPV6_IFADDR;
	watch_rcvbuf(fd);
	watch_filter_attach(fd);
	if (bind(fd, (struct sockaddr *)&snl, sizeof(snl)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}
#define rtmsg_parse	rtmsg_parse_netlink

#elif defined(WATCH_PF_ROUTE)
static int
watch_open(void)
{
	int fd, on = 1;

	/* Family 0: interface arrival and link messages are AF_UNSPEC and
	 * never reach a socket opened for AF_INET or AF_INET6. */
	fd = socket(PF_ROUTE, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	watch_rcvbuf(fd);
#if defined(SO_RERROR)
	/* Report dropped messages as ENOBUFS instead of losing them. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RERROR, &on, sizeof(on));
#else
#warning "no SO_RERROR: lost routing messages go unnoticed until a resync"
	(void)on;
#endif
#if defined(ROUTE_MSGFILTER)
	{
		unsigned int filter = ROUTE_FILTER(RTM_NEWADDR) |
		    ROUTE_FILTER(RTM_DELADDR) | ROUTE_FILTER(RTM_IFINFO) |
		    ROUTE_FILTER(RTM_IFANNOUNCE);

		(void)setsockopt(fd, PF_ROUTE, ROUTE_MSGFILTER, &filter,
		    sizeof(filter));
	}
#endif
	return fd;
}
#define rtmsg_parse	rtmsg_parse_bsd
#endif

#if defined(WATCH_NETLINK) || defined(WATCH_PF_ROUTE)
#define HAVE_WATCHER	1

static void *
watch_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t *buf = malloc(WATCH_BUF_SIZE);
	struct ifev *events = calloc(WATCH_MAX_EVENTS, sizeof(*events));
	struct watch_state ws = { false, 0, false, TRIG_NONE };

	if (buf == NULL || events == NULL)
		fatal("out of memory");
	(void)watch_resync(&ws);
	for (;;) {
		ssize_t n = recv(fd, buf, WATCH_BUF_SIZE, 0);
		size_t count, i;
		enum trigger why = TRIG_NONE;

		if (n < 0) {
			if (errno == ENOBUFS) {
				enum trigger t = watch_resync(&ws);

				if (t != TRIG_NONE)
					request_rebind(t);
			} else if (errno != EINTR && errno != EAGAIN) {
				/* Not expected; do not spin on it. */
				logmsg("%s%s: routing socket: %s",
				    cfg.identifier, cfg.dest.text,
				    strerror(errno));
				sleep(1);
			}
			continue;
		}
		count = rtmsg_parse(buf, (size_t)n, events, WATCH_MAX_EVENTS);
		for (i = 0; i < count; i++) {
			enum trigger t = watch_apply(&ws, &events[i]);

			if (t == TRIG_RESYNC)
				t = watch_resync(&ws);
			if (t != TRIG_NONE)
				why = t;
		}
		/* One rebind for a burst of messages: the last word wins. */
		if (why != TRIG_NONE)
			request_rebind(why);
	}
	return NULL;
}
#endif

/* ------------------------------------------------------------------ */
/* Start-up                                                           */
/* ------------------------------------------------------------------ */

/*
 * The pid file: created exclusively; an existing one is locked and reused
 * only if the process it names is gone.  The lock keeps a second instance
 * starting at the same moment out until our pid is written: one that took
 * it between our create and our lock found the file empty and goes on, so
 * losing it is fatal here too.  A symlink at the path is never followed
 * (O_EXCL does not follow it either): whatever it points at is not ours
 * to truncate.
 */
static int
pidfile_open(const char *path)
{
	char text[32];
	ssize_t n;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (fd >= 0) {
		if (flock(fd, LOCK_EX | LOCK_NB) != 0)
			fatal("pid file %s is in use by another process",
			    path);
		return fd;
	}
	if (errno != EEXIST)
		fatal("cannot create pid file %s: %s", path, strerror(errno));
	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		fatal("cannot open pid file %s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0)
		fatal("pid file %s is in use by another process", path);
	n = read(fd, text, sizeof(text) - 1);
	if (n > 0) {
		uint64_t pid;
		const char *end;

		text[n] = '\0';
		if (parse_digits(text, &pid, &end) && pid > 0 &&
		    pid <= INT_MAX && (*end == '\n' || *end == '\0') &&
		    (kill((pid_t)pid, 0) == 0 || errno == EPERM))
			fatal("pid file %s is in use by process %" PRIu64,
			    path, pid);
	}
	if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
		fatal("cannot truncate pid file %s: %s", path,
		    strerror(errno));
	return fd;
}

static void
pidfile_write(int fd)
{
	char text[32];
	int len = snprintf(text, sizeof(text), "%u\n", (unsigned int)getpid());

	if (pwrite(fd, text, (size_t)len, 0) != len)
		logmsg("cannot write pid file %s: %s", cfg.pidfile_path,
		    strerror(errno));
	close(fd);
}

/* An absolute version of a path: the files are re-created and removed
 * where they were given, whatever the cwd is by then. */
static void
absolute_path(const char *path, char *out, size_t outlen)
{
	char cwd[PATH_MAX];

	int n = -1;

	if (path[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL)
		n = snprintf(out, outlen, "%s/%s", cwd, path);
	if (n < 0 || (size_t)n >= outlen)
		snprintf(out, outlen, "%s", path);
}

#if !defined(DPINGER_TEST)
static char pidfile_abs[PATH_MAX];
#endif

static void
daemonise(void)
{
	pid_t pid;
	int null_fd;

	pid = fork();
	if (pid < 0)
		fatal("cannot background: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		fatal("cannot background: %s", strerror(errno));
	/* No chdir("/"), as upstream: the alert command runs in the
	 * directory we were started in, so `-C ./alert.sh` works.  stdout
	 * and stderr stay: `dpinger -r 60s addr >> file` reports through
	 * the inherited stdout. */
	null_fd = open("/dev/null", O_RDONLY);
	if (null_fd >= 0) {
		(void)dup2(null_fd, STDIN_FILENO);
		if (null_fd != STDIN_FILENO)
			close(null_fd);
	}
}

static void
start_thread(void *(*fn)(void *), void *arg, const char *what,
    bool realtime)
{
	pthread_attr_t attr;
	pthread_t tid;
	int err;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (realtime) {
		struct sched_param param;

		param.sched_priority = sched_get_priority_min(SCHED_RR);
		if (pthread_attr_setinheritsched(&attr,
		    PTHREAD_EXPLICIT_SCHED) != 0 ||
		    pthread_attr_setschedpolicy(&attr, SCHED_RR) != 0 ||
		    pthread_attr_setschedparam(&attr, &param) != 0)
			logmsg("cannot set SCHED_RR for the %s thread", what);
	}
	err = pthread_create(&tid, &attr, fn, arg);
	if (err != 0 && realtime) {
		logmsg("cannot start the %s thread with SCHED_RR: %s", what,
		    strerror(err));
		pthread_attr_setinheritsched(&attr, PTHREAD_INHERIT_SCHED);
		err = pthread_create(&tid, &attr, fn, arg);
	}
	if (err != 0)
		fatal("cannot start the %s thread: %s", what, strerror(err));
	pthread_attr_destroy(&attr);
}

#if !defined(DPINGER_TEST)
/* Started with fd 0, 1 or 2 closed, the first socket would take its
 * place: daemonising would then put /dev/null over the send socket, or
 * log lines would go into a raw socket.  Fill the gaps first. */
static void
keep_std_fds_open(void)
{
	for (;;) {
		int fd = open("/dev/null", O_RDWR);

		if (fd < 0)
			return;
		if (fd > STDERR_FILENO) {
			close(fd);
			return;
		}
	}
}

int
main(int argc, char *argv[])
{
	char err[256], line[1024];
	int send_fd = -1, recv_fd = -1, pidfile_fd = -1;
#if defined(HAVE_WATCHER)
	int watch_fd = -1;
#endif
	int pipefd[2], sig, openerr;
	enum parse_result result;
	enum open_stage stage;
	sigset_t sigs;
	pthread_condattr_t condattr;

	keep_std_fds_open();
	/* getopt reports an unknown option itself, on stderr, then usage;
	 * an error found once -S is parsed goes to syslog only. */
	result = parse_args(argc, argv, &cfg, err, sizeof(err));
	if (cfg.use_syslog) {
		openlog("dpinger", LOG_PID, LOG_DAEMON);
		log_to_syslog = true;
	}
	switch (result) {
	case PARSE_OK:
		break;
	case PARSE_USAGE:
		fputs(usage_text, stderr);
		return 1;
	case PARSE_USAGE_ERROR:
		fputs(usage_text, stderr);
		fatal("%s", err);
	case PARSE_ERROR:
		fatal("%s", err);
	case PARSE_VERSION:
		printf("dpinger-selfheal %s\n", DPINGER_VERSION);
		return 0;
	}
	if (cfg.alert_cmd != NULL) {
		size_t len = strlen(cfg.alert_cmd) + sizeof(" \"$@\"");

		alert_script = malloc(len);
		if (alert_script == NULL)
			fatal("out of memory");
		snprintf(alert_script, len, "%s \"$@\"", cfg.alert_cmd);
	}

	/* Every signal we wait for is blocked before any thread exists, so
	 * that only main's sigwait() sees it.  SIGPIPE is not among them:
	 * a report pipe whose reader is gone ends us, as upstream; sockets
	 * that may lose their peer are written with MSG_NOSIGNAL. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	/* 1. Probe sockets.  A missing bind address is not fatal when
	 * healing: the send thread binds as soon as it appears. */
	openerr = probe_open(&send_fd, &recv_fd, &sender.dest,
	    &sender.dest_len, &stage);
	if (openerr != 0) {
		if (stage == STAGE_CREATE)
			fatal("cannot create send socket: %s",
			    strerror(openerr));
		if (!cfg.heal || !errno_is_missing(openerr)) {
			if (stage == STAGE_DEST_SCOPE)
				fatal("invalid destination IP address %s",
				    cfg.dest.arg);
			fatal("cannot bind send socket: %s",
			    strerror(openerr));
		}
		/* Fails now if we lack the privilege: better at start. */
		send_fd = socket(cfg.dest.family, SOCK_RAW | SOCK_CLOEXEC,
		    cfg.dest.family == AF_INET ? IPPROTO_ICMP :
		    IPPROTO_ICMPV6);
		if (send_fd < 0)
			fatal("cannot create send socket: %s",
			    strerror(errno));
		close(send_fd);
		send_fd = -1;
	}

	/* 2. Upstream's privilege drop: a no-op as root, which is how
	 * pfSense runs us.  Rebinding needs raw sockets, so a setuid start
	 * heals only while it may still open them. */
	if (setgid(getgid()) != 0 || setuid(getuid()) != 0)
		fatal("cannot drop privileges: %s", strerror(errno));

	/* 3. Pid file, 4. report file and status socket. */
	if (cfg.pidfile_path != NULL) {
		pidfile_fd = pidfile_open(cfg.pidfile_path);
		absolute_path(cfg.pidfile_path, pidfile_abs,
		    sizeof(pidfile_abs));
	}
	if (cfg.output_path != NULL) {
		report_fd = open(cfg.output_path,
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (report_fd < 0)
			fatal("cannot open/create report file %s: %s",
			    cfg.output_path, strerror(errno));
	}
	if (cfg.usocket_path != NULL) {
		struct sockaddr_un sun;

		if (strlen(cfg.usocket_path) >= sizeof(sun.sun_path))
			fatal("socket name too large");
		usock.fd = usock_open(cfg.usocket_path);
		if (usock.fd < 0)
			fatal("cannot bind unix domain socket %s: %s",
			    cfg.usocket_path, strerror(errno));
		absolute_path(cfg.usocket_path, usock.path,
		    sizeof(usock.path));
	}
#if defined(HAVE_WATCHER)
	if (cfg.heal && (cfg.bind_given || cfg.dest.scope[0] != '\0')) {
		watch_fd = watch_open();
		if (watch_fd < 0)
			logmsg("cannot open routing socket: %s; healing on"
			    " send errors only", strerror(errno));
	}
#endif

	/* 5. Background. */
	if (!cfg.foreground)
		daemonise();
	if (pidfile_fd >= 0)
		pidfile_write(pidfile_fd);

	/* 6. The parameters, upstream's line. */
	format_startup(line, sizeof(line), &cfg);
	logmsg("%s", line);

	/* 7. Upstream's echo identifier: the low 16 bits of our pid. */
	sender.id = (uint16_t)(getpid() & 0xffff);
	atomic_store_explicit(&echo_id, sender.id, memory_order_release);
	recv_filter_attach(recv_fd, sender.id);
	sender.fd = send_fd;
	sender.last_bind_usec = now_usec();
	if (send_fd < 0) {
		logmsg("%s%s: waiting for %s address %s: %s", cfg.identifier,
		    cfg.dest.text,
		    stage == STAGE_DEST_SCOPE ? "destination" : "bind",
		    stage == STAGE_DEST_SCOPE ? cfg.dest.text : cfg.bind.text,
		    strerror(openerr));
		sender.waiting_logged = true;
	}

	ring.slots = calloc(cfg.slot_count, sizeof(*ring.slots));
	if (ring.slots == NULL)
		fatal("out of memory");
	if (pipe(pipefd) != 0)
		fatal("cannot create pipe: %s", strerror(errno));
	(void)fcntl(pipefd[0], F_SETFD, FD_CLOEXEC);
	(void)fcntl(pipefd[1], F_SETFD, FD_CLOEXEC);
	(void)fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	(void)fcntl(pipefd[1], F_SETFL, O_NONBLOCK);
	recv_handoff.wake_rd = pipefd[0];
	recv_handoff.wake_wr = pipefd[1];
	/* Send deadlines are monotonic, and so is the wait between them. */
	pthread_condattr_init(&condattr);
	pthread_condattr_setclock(&condattr, CLOCK_MONOTONIC);
	pthread_cond_init(&heal.wake, &condattr);
	pthread_condattr_destroy(&condattr);

	start_thread(recv_thread, (void *)(intptr_t)recv_fd, "receive",
	    cfg.realtime_recv);
	start_thread(send_thread, NULL, "send", false);
	if (cfg.report_interval_msec > 0)
		start_thread(report_thread, NULL, "report", false);
	if (cfg.latency_alarm_msec > 0 || cfg.loss_alarm_pct > 0)
		start_thread(alert_thread, NULL, "alert", false);
	if (usock.fd >= 0)
		start_thread(usock_thread, NULL, "status socket", false);
#if defined(HAVE_WATCHER)
	if (watch_fd >= 0)
		start_thread(watch_thread, (void *)(intptr_t)watch_fd,
		    "interface watch", false);
#endif

	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			request_rebind(TRIG_SIGHUP);
			continue;
		}
		break;
	}
	pthread_mutex_lock(&usock.lock);
	if (cfg.usocket_path != NULL)
		(void)unlink(usock.path);
	if (cfg.pidfile_path != NULL)
		(void)unlink(pidfile_abs);
	logmsg("exiting on signal %d", sig);
	/* Other threads may be mid-write or waiting for the alert command:
	 * leave without running atexit handlers under them. */
	_exit(0);
}
#endif
