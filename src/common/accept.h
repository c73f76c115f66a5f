/*
 * A listener that stops accepting for a while when accepting fails.
 *
 * libuv's accept loop calls the connection callback with the error (EMFILE,
 * ENFILE, ENOBUFS...) and tries again at once, for as long as the error
 * lasts: at the open-file limit, the loop's thread spins there at 100% CPU
 * and serves nothing else of its loop (its connections, whose closes would
 * free descriptors, a stop). As nginx does, a guarded listener stops
 * accepting for SB_ACCEPT_PAUSE_MS instead: its handle is closed (which
 * ends libuv's loop) while a second descriptor of the socket (spare) keeps
 * it open, with its listen queue (and its place in an SO_REUSEPORT group),
 * so that new connections wait; then the handle is made again from spare.
 * Said through log at most once a second per listener.
 *
 * The guard holds the listener's handle (a uv_tcp_t or a uv_pipe_t, the
 * first member: the connection callback's server is &g->l.stream, and its
 * data the owner's), and closes it with its own timer and spare. Used by
 * the edge's HTTP listeners (one per serving thread), DNS over TCP and the
 * admin API.
 */
#ifndef SB_COMMON_ACCEPT_H
#define SB_COMMON_ACCEPT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define SB_ACCEPT_PAUSE_MS 100

/* Where warnings go: sb_edge_log's signature ("warning", ...). */
typedef void (*sb_accept_log_fn)(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

typedef struct sb_accept_guard {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} l;		  /* the listener: first, so that its address is the guard's */
	uv_timer_t timer; /* the pause */
	uv_handle_type type;
	void *data;	     /* the listener's data, the owner's */
	uv_connection_cb cb; /* the owner's connection callback */
	int backlog;
	int spare;		/* another descriptor of the socket, -1: none */
	const char *pipe_fname; /* a pipe's path (libuv's), kept while it is closed */
	enum { SB_ACCEPT_OPEN, SB_ACCEPT_CLOSING, SB_ACCEPT_CLOSED } state;
	bool stopping;
	int closing; /* handles left to close at the stop */
	uv_close_cb done;
	uint64_t failed;    /* accepts failed since the last warning */
	uint64_t warned_at; /* uv_now of that warning (0: never) */
	sb_accept_log_fn log;
	char what[160]; /* "DNS over TCP connections on thread 0": what cannot be accepted */
} sb_accept_guard;

/*
 * After uv_tcp_init / uv_pipe_init of g->l, with its data set: the guard
 * takes the handle as it is. Once initialized, the guard is closed with
 * sb_accept_guard_close, whatever else happened.
 */
void sb_accept_guard_init(sb_accept_guard *g, uv_loop_t *loop);

/* Say through log (NULL: nothing is said) that what cannot be accepted. */
void sb_accept_guard_set_log(sb_accept_guard *g, sb_accept_log_fn log, const char *what);

/* uv_listen on the (opened or bound) handle, and take the spare
 * descriptor. Returns 0 or a negative libuv error. */
int sb_accept_guard_listen(sb_accept_guard *g, int backlog, uv_connection_cb cb);

/* From the connection callback, when status < 0: pause accepting, say so
 * (at most once a second). */
void sb_accept_guard_failed(sb_accept_guard *g, int status);

/* Close the listener (when open), the timer and spare; done(&g->l.handle),
 * whose data is the owner's, once they are closed: g may go then. */
void sb_accept_guard_close(sb_accept_guard *g, uv_close_cb done);

#endif
