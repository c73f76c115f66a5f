/* A listener that stops accepting for a while when accepting fails (see
 * accept.h). */
#include "common/accept.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

/* The soft open-file limit, or 0 when there is none. */
static unsigned long long nofile_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	return (unsigned long long)rl.rlim_cur;
}

static sb_accept_guard *guard_of(uv_handle_t *h)
{
	return (sb_accept_guard *)(void *)h; /* l is the first member */
}

/* One of the guard's handles closed at the stop. */
static void stop_step(sb_accept_guard *g)
{
	if (--g->closing > 0)
		return;
	/* the pipe's path, taken from a handle closed for a pause: libuv
	 * would have freed it at its close (uv__free: free, as the edge
	 * replaces no allocator) */
	free((void *)g->pipe_fname);
	g->pipe_fname = NULL;
	g->done(&g->l.handle);
}

static void listener_closed(uv_handle_t *h)
{
	sb_accept_guard *g = guard_of(h);
	g->state = SB_ACCEPT_CLOSED;
	if (g->stopping)
		stop_step(g);
}

static void timer_closed(uv_handle_t *h)
{
	stop_step(h->data);
}

static void listener_close(sb_accept_guard *g)
{
	if (g->type == UV_NAMED_PIPE && !g->stopping) {
		/* closing a bound pipe removes its file: the socket lives on in
		 * spare, and so must its path */
		g->pipe_fname = g->l.pipe.pipe_fname;
		g->l.pipe.pipe_fname = NULL;
	}
	g->state = SB_ACCEPT_CLOSING;
	uv_close(&g->l.handle, listener_closed);
}

void sb_accept_guard_init(sb_accept_guard *g, uv_loop_t *loop)
{
	g->type = g->l.handle.type;
	g->data = g->l.handle.data;
	g->spare = -1;
	g->pipe_fname = NULL;
	g->state = SB_ACCEPT_OPEN;
	g->stopping = false;
	g->failed = g->warned_at = 0;
	uv_timer_init(loop, &g->timer);
	g->timer.data = g;
	uv_unref((uv_handle_t *)&g->timer); /* never keeps the loop alive */
}

void sb_accept_guard_set_log(sb_accept_guard *g, sb_accept_log_fn log, const char *what)
{
	g->log = log;
	snprintf(g->what, sizeof(g->what), "%s", what);
}

int sb_accept_guard_listen(sb_accept_guard *g, int backlog, uv_connection_cb cb)
{
	uv_os_fd_t fd;
	int r;
	g->backlog = backlog;
	g->cb = cb;
	if ((r = uv_listen(&g->l.stream, backlog, cb)) < 0 ||
	    (r = uv_fileno(&g->l.handle, &fd)) < 0)
		return r;
	if ((g->spare = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return uv_translate_sys_error(errno);
	return 0;
}

static void accept_resume(uv_timer_t *t)
{
	sb_accept_guard *g = t->data;
	int fd = -1, r;
	if (g->stopping)
		return;
	if (g->state != SB_ACCEPT_CLOSED || (fd = fcntl(g->spare, F_DUPFD_CLOEXEC, 0)) < 0) {
		/* still no descriptor (or the close still to come): wait again */
		uv_timer_start(&g->timer, accept_resume, SB_ACCEPT_PAUSE_MS, 0);
		return;
	}
	uv_loop_t *loop = g->timer.loop;
	if (g->type == UV_NAMED_PIPE) {
		uv_pipe_init(loop, &g->l.pipe, 0);
		g->l.pipe.pipe_fname = g->pipe_fname; /* closed at the end with it */
		g->pipe_fname = NULL;
		r = uv_pipe_open(&g->l.pipe, fd);
	} else {
		uv_tcp_init(loop, &g->l.tcp);
		r = uv_tcp_open(&g->l.tcp, fd);
	}
	g->l.handle.data = g->data;
	g->state = SB_ACCEPT_OPEN;
	if (r < 0)
		close(fd);
	else if ((r = uv_listen(&g->l.stream, g->backlog, g->cb)) < 0 && g->log)
		g->log("error", "cannot listen again for %s: %s; trying again", g->what,
		       uv_strerror(r));
	if (r < 0) {
		listener_close(g);
		uv_timer_start(&g->timer, accept_resume, SB_ACCEPT_PAUSE_MS, 0);
	}
}

void sb_accept_guard_failed(sb_accept_guard *g, int status)
{
	uint64_t now = uv_now(g->timer.loop);
	g->failed++;
	if (g->log && (!g->warned_at || now - g->warned_at >= 1000)) {
		char limit[96] = "";
		unsigned long long n = nofile_limit();
		if (status == UV_EMFILE && n)
			snprintf(limit, sizeof(limit), " (the open-file limit, ulimit -n, is %llu)",
				 n);
		g->log("warning",
		       "cannot accept %s: %s%s; new connections wait in the listen queue, "
		       "accepting again every %d ms; %llu failed accept(s) since the last such "
		       "warning",
		       g->what, uv_strerror(status), limit, SB_ACCEPT_PAUSE_MS,
		       (unsigned long long)g->failed);
		g->failed = 0;
		g->warned_at = now ? now : 1;
	}
	if (g->state != SB_ACCEPT_OPEN || g->stopping || g->spare < 0)
		return;
	/* closing the handle ends libuv's accept loop (it runs while the
	 * listener has a descriptor); the socket lives on in spare */
	listener_close(g);
	uv_timer_start(&g->timer, accept_resume, SB_ACCEPT_PAUSE_MS, 0);
}

void sb_accept_guard_close(sb_accept_guard *g, uv_close_cb done)
{
	if (g->stopping)
		return;
	g->stopping = true;
	g->done = done;
	g->closing = 1 + (g->state != SB_ACCEPT_CLOSED);
	if (g->state == SB_ACCEPT_OPEN) {
		g->state = SB_ACCEPT_CLOSING;
		uv_close(&g->l.handle, listener_closed);
	} /* else closed, or its close callback still to come */
	uv_close((uv_handle_t *)&g->timer, timer_closed);
	if (g->spare >= 0)
		close(g->spare);
	g->spare = -1;
}
