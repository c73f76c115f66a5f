/*
 * LD_PRELOAD shim for end-to-end tests: every successful bind() of an
 * IPv4 or IPv6 socket is reported on stderr as "bind-log: port N", so that
 * a test can tell which ports a process took, however briefly
 * (tests/e2e/test_live.py: a second server on a data directory binds
 * nothing). Everything else goes to the real bind().
 */
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	static bind_fn real;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "bind");
	int r = real(fd, sa, len);
	if (r == 0 && sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)) {
		unsigned port =
		    ntohs(sa->sa_family == AF_INET ? ((const struct sockaddr_in *)sa)->sin_port
						   : ((const struct sockaddr_in6 *)sa)->sin6_port);
		char line[48];
		int n = snprintf(line, sizeof(line), "bind-log: port %u\n", port);
		if (n > 0 && write(2, line, (size_t)n) < 0)
			return r;
	}
	return r;
}
