/*
 * raceshim: an LD_PRELOAD library that wins the races an attacker or a
 * second instance could win, at the worst moment, every time.
 *
 * Environment:
 *   DPINGER_RACE_SYMLINK  a path: right after a successful bind() of an
 *			   AF_UNIX socket, the new socket file is replaced
 *			   (rename) by a symlink to this path, as if planted
 *			   between bind and any later chmod of the path.
 *   DPINGER_RACE_FLOCK	   set: flock() fails with EWOULDBLOCK, as when
 *			   another instance took the lock first.
 *
 * Only async-signal-safe calls run inside bind(): dpinger binds the status
 * socket in a child of a threaded process.
 */

#define _GNU_SOURCE

#include <sys/types.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int (*real_bind)(int, const struct sockaddr *, socklen_t);
static int (*real_flock)(int, int);
static const char *symlink_target;
static int flock_fails;

__attribute__((constructor)) static void
raceshim_init(void)
{
	real_bind = (int (*)(int, const struct sockaddr *, socklen_t))
	    dlsym(RTLD_NEXT, "bind");
	real_flock = (int (*)(int, int))dlsym(RTLD_NEXT, "flock");
	symlink_target = getenv("DPINGER_RACE_SYMLINK");
	flock_fails = getenv("DPINGER_RACE_FLOCK") != NULL;
}

int
bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
	char tmp[sizeof(sun->sun_path) + 8];
	int ret = real_bind(fd, sa, len);
	size_t n;

	if (ret != 0 || symlink_target == NULL || sa->sa_family != AF_UNIX)
		return ret;
	n = strnlen(sun->sun_path, sizeof(sun->sun_path));
	if (n == 0 || n + 7 > sizeof(tmp))
		return ret;
	memcpy(tmp, sun->sun_path, n);
	memcpy(tmp + n, ".race", 6);
	(void)unlink(tmp);
	if (symlink(symlink_target, tmp) == 0)
		(void)rename(tmp, sun->sun_path);
	return ret;
}

int
flock(int fd, int op)
{
	if (flock_fails) {
		errno = EWOULDBLOCK;
		return -1;
	}
	return real_flock(fd, op);
}
