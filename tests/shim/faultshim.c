/*
 * faultshim: an LD_PRELOAD library that makes raw sockets go stale, the way
 * they do when the interface under their bind address is destroyed and
 * created again while the address stays (IPsec VTI reload, PPPoE redial).
 *
 * Environment:
 *   DPINGER_FAULT_FILE   the fault is armed while this file exists.  Its
 *			  modification time is the fault epoch: sockets
 *			  created before it are stale, sockets created after
 *			  it work.  Touching the file again starts a new
 *			  epoch.  Unset: the shim does nothing.
 *   DPINGER_FAULT_ERRNO  the errno of a failed send (default EHOSTUNREACH).
 *   DPINGER_FAULT_MODE   "fail" (default): stale sockets' sends fail;
 *			  "drop": stale sockets' sends succeed but nothing
 *			  leaves ("sends succeed, nothing comes back");
 *			  "all": every IPv4/IPv6 socket's sends fail, old or
 *			  new (a real, persistent outage).
 *
 * File times come from the kernel's coarse clock, which may lag the real
 * time by a tick: a socket opened within a few milliseconds before the
 * file may count as new.  Sockets opened after it never count as old.
 *
 * Only AF_INET and AF_INET6 sockets from socket() are tracked, so that
 * status-socket clients, syslog and netlink are never touched.  The file
 * is looked at on every send: one stat(2), cheap at probe rates.
 */

#define _GNU_SOURCE

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRACKED	1024

enum mode { MODE_FAIL, MODE_DROP, MODE_ALL };

/* fd -> creation time (ns since the epoch, CLOCK_REALTIME, comparable
 * with a file's mtime); 0: not one of ours. */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t created_ns[MAX_TRACKED];

static int (*real_socket)(int, int, int);
static int (*real_close)(int);
static ssize_t (*real_sendto)(int, const void *, size_t, int,
    const struct sockaddr *, socklen_t);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static const char *fault_file;
static int fault_errno = EHOSTUNREACH;
static enum mode fault_mode = MODE_FAIL;

static void
init(void)
{
	const char *s;

	real_socket = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
	real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
	real_sendto = (ssize_t (*)(int, const void *, size_t, int,
	    const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "sendto");
	real_send = (ssize_t (*)(int, const void *, size_t, int))
	    dlsym(RTLD_NEXT, "send");
	real_sendmsg = (ssize_t (*)(int, const struct msghdr *, int))
	    dlsym(RTLD_NEXT, "sendmsg");
	fault_file = getenv("DPINGER_FAULT_FILE");
	if (fault_file != NULL && fault_file[0] == '\0')
		fault_file = NULL;
	if ((s = getenv("DPINGER_FAULT_ERRNO")) != NULL && atoi(s) > 0)
		fault_errno = atoi(s);
	if ((s = getenv("DPINGER_FAULT_MODE")) != NULL) {
		if (strcmp(s, "drop") == 0)
			fault_mode = MODE_DROP;
		else if (strcmp(s, "all") == 0)
			fault_mode = MODE_ALL;
	}
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* What to do with a send on fd: 0 send, 1 fail, 2 drop. */
static int
verdict(int fd)
{
	struct stat sb;
	int64_t born, epoch;

	pthread_once(&init_once, init);
	if (fault_file == NULL || fd < 0 || fd >= MAX_TRACKED)
		return 0;
	pthread_mutex_lock(&table_lock);
	born = created_ns[fd];
	pthread_mutex_unlock(&table_lock);
	if (born == 0 || stat(fault_file, &sb) != 0)
		return 0;
	if (fault_mode == MODE_ALL)
		return 1;
	epoch = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
	if (born >= epoch)
		return 0;
	return fault_mode == MODE_DROP ? 2 : 1;
}

int
socket(int domain, int type, int protocol)
{
	int fd;

	pthread_once(&init_once, init);
	fd = real_socket(domain, type, protocol);
	if (fd >= 0 && fd < MAX_TRACKED) {
		int64_t born = domain == AF_INET || domain == AF_INET6 ?
		    now_ns() : 0;

		pthread_mutex_lock(&table_lock);
		created_ns[fd] = born;
		pthread_mutex_unlock(&table_lock);
	}
	return fd;
}

int
close(int fd)
{
	pthread_once(&init_once, init);
	if (fd >= 0 && fd < MAX_TRACKED) {
		pthread_mutex_lock(&table_lock);
		created_ns[fd] = 0;
		pthread_mutex_unlock(&table_lock);
	}
	return real_close(fd);
}

/* A faulted send: true with *rc set when fd's send must not reach the
 * kernel (fail with the fault's errno, or pretend len bytes left). */
static bool
faulted(int fd, size_t len, ssize_t *rc)
{
	switch (verdict(fd)) {
	case 1:
		errno = fault_errno;
		*rc = -1;
		return true;
	case 2:
		*rc = (ssize_t)len;
		return true;
	}
	return false;
}

ssize_t
sendto(int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *to, socklen_t tolen)
{
	ssize_t rc;

	if (faulted(fd, len, &rc))
		return rc;
	return real_sendto(fd, buf, len, flags, to, tolen);
}

ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	ssize_t rc;

	if (faulted(fd, len, &rc))
		return rc;
	return real_send(fd, buf, len, flags);
}

ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	size_t i, len = 0;
	ssize_t rc;

	for (i = 0; i < (size_t)msg->msg_iovlen; i++)
		len += msg->msg_iov[i].iov_len;
	if (faulted(fd, len, &rc))
		return rc;
	return real_sendmsg(fd, msg, flags);
}
