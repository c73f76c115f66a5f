/*
 * LD_PRELOAD shim for end-to-end tests: a SIGHUP (and a SIGUSR1) raised just
 * before the server sets its first signal handler, as `systemctl reload`
 * or a logrotate script may send one to a server still starting
 * (tests/e2e/test_lifecycle_review.py). Everything else goes to libuv.
 */
#include <dlfcn.h>
#include <signal.h>
#include <uv.h>

typedef int (*signal_start_fn)(uv_signal_t *, uv_signal_cb, int);

int uv_signal_start(uv_signal_t *handle, uv_signal_cb cb, int signum)
{
	static signal_start_fn real;
	static int raised;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "uv_signal_start");
	if (!raised) {
		raised = 1;
		raise(SIGHUP);
		raise(SIGUSR1);
	}
	return real(handle, cb, signum);
}
