/* Internals shared by the edge's files (edge.c: threads, snapshots, health;
 * proxy.c: client and upstream connections). Not a public interface. */
#ifndef SB_HTTP_INTERNAL_H
#define SB_HTTP_INTERNAL_H

#include <stdatomic.h>
#include <sys/socket.h>
#include <uv.h>

#include "common/accept.h"
#include "config/decl.h"
#include "dns/serve.h"
#include "dns/zone.h"
#include "http/edge.h"
#include "http/sign.h"
#include "model/model.h"
#include "route/route.h"

/* An upstream address. Lives as long as the server (reloads reuse entries by
 * URL), so its health flag survives reloads and serving threads can keep
 * pointers to it. */
typedef struct sb_upstream {
	uint32_t id; /* index for per-thread connection pools (reused once freed) */
	/* Configurations that name it, and connections to it (pooled or not):
	 * at 0 the control thread frees it (upstreams_sweep), so that an edge
	 * whose upstreams change does not keep every address it ever had. Only
	 * the control thread raises it from 0 (a configuration it builds). */
	atomic_int refs;
	char *url;
	char hostport[280]; /* Host header for health checks, and logs */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	atomic_int up; /* 1 up, 0 down (active health checks) */
	bool in_use;   /* referenced by the current snapshot */
	bool checking; /* a health check is in flight */
	int fails;     /* consecutive failed checks */
	int passes;    /* consecutive passed checks */
	bool starting; /* a process started by command: checked often until up */
	/* a process started by command, restarted for a changed command or
	 * environment: until the new one is spawned, /health is still the old
	 * one's, about to exit, and must not mark it up */
	bool awaiting_spawn;
	unsigned restarts; /* such restarts so far: a check begun before one is stale */
} sb_upstream;

/* Per deployment: what a request needs beyond the model. */
typedef struct sb_dep_rt {
	sb_upstream *upstream; /* NULL: no URL upstream (command, or none) */
	uint8_t secret[SB_SIGN_MAC_LEN];
	uint8_t prev_secret[SB_SIGN_MAC_LEN]; /* when the previous master key exists */
	uint64_t max_body;
} sb_dep_rt;

/* Derived from one declaration; shared by snapshots until the next reload. */
typedef struct sb_config {
	atomic_int refs;
	sb_decl *decl;
	sb_model *model;
	sb_route_table *routes;
	sb_dep_rt *deps;	 /* parallel to model->deployments */
	uint8_t master[32];	 /* deployment secrets derive from this */
	uint8_t prev_master[32]; /* previous key during rotation */
	bool has_prev;
	uint64_t generation;
	sb_live live;	 /* the store's live state the model was built with */
	char *live_json; /* the same, as stored, to notice a change */
	struct sb_cfg_proc {
		const char *name;
		const char *const *argv;
		size_t argc;
		char **env; /* "KEY=VALUE", malloc'd */
		size_t nenv;
		uint16_t port;
		size_t pport;	 /* its entry in the control loop's port table */
		sb_upstream *up; /* http://127.0.0.1:port */
	} * procs;		 /* upstreams started by command (src/http/procs.h) */
	size_t nprocs;
	int64_t version; /* the store's version (0: none recorded) */
	/* The declaration's files as read when it was loaded from disk: a live
	 * change (an op, the store, an expiry) builds from these, so that it
	 * never takes in an edit on disk that was not reloaded */
	struct sb_cfg_file {
		char *path;
		char *data;
		size_t len;
	} * files;
	size_t nfiles;
} sb_config;

typedef struct sb_snapshot {
	atomic_int refs;
	sb_config *cfg;
	sb_tenants *tenants;
	sb_dns_zones *dns; /* NULL when DNS is not served */
} sb_snapshot;

void sb_snapshot_ref(sb_snapshot *s);
void sb_snapshot_unref(sb_snapshot *s);

struct sb_pool_list; /* per-thread idle upstream connections */

/* How a log (the access log, stderr) is written. */
enum {
	SB_LOG_FILE,	 /* a regular file: blocking write(), fast and never held up */
	SB_LOG_BLOCKING, /* no non-blocking way to it: blocking write() */
	SB_LOG_NONBLOCK, /* a character device (a tty), opened anew with
			  * O_NONBLOCK: write() says EAGAIN when the reader lags */
	SB_LOG_PIPE,	 /* a pipe or FIFO, the same; and a write of PIPE_BUF bytes
			  * or less is taken whole or refused */
	SB_LOG_SOCKET,	 /* a socket: send(MSG_DONTWAIT) */
};

/* Write n bytes at p to fd, written as mode says (SB_LOG_*), without
 * waiting when mode is one that never waits: write(), or send() with
 * MSG_DONTWAIT for a socket; retried on EINTR. Returns what write()
 * returns. */
ssize_t sb_edge_log_out(int fd, int mode, const char *p, size_t n);

typedef struct sb_worker {
	struct sb_edge *edge;
	int id;
	uv_loop_t loop;
	sb_accept_guard listener; /* listener.l.tcp: paused when accepting fails */
	uv_async_t wake;
	uv_thread_t thread;
	sb_snapshot *snap;	 /* this thread's reference */
	const sb_dns_zones *dns; /* snap->dns, read by the DNS sockets */
	sb_dns_io *dnsio;
	uint64_t snap_seq;
	bool stopping;
	bool listener_closed;	     /* at the stop: its close asked for */
	bool exited;		     /* its loop is closed: wake it no more (edge->snap_lock) */
	size_t nconns;		     /* client connections open on this thread */
	void *conns;		     /* list of client connections (proxy.c) */
	void *idle_head, *idle_tail; /* those waiting for a request (proxy.c) */
	uint64_t refused;	     /* at max_connections, since the last warning */
	uint64_t refused_warned_at;  /* loop time that warning was logged (0: never) */
	uint64_t lack_unsaid;	     /* upstream connects failed for want of a descriptor, unsaid */
	uint64_t lack_said_at;	     /* uv_now of the last such warning (0: never) */
	struct sb_pool_list *pools;
	size_t npools;
	uint64_t rng[2];
	sb_buf logq;		/* access-log lines not yet written */
	uv_prepare_t log_flush; /* writes logq before the loop waits */
	bool log_flush_on;	/* log_flush initialised */
	/* A log whose reader is not keeping up (SB_LOG_NONBLOCK, SB_LOG_PIPE, SB_LOG_SOCKET):
	 * logq is the backlog, written again by log_retry, not by log_flush */
	uv_timer_t log_retry;	 /* while a backlog or an unreported drop exists */
	bool log_blocked;	 /* the reader refused the last write */
	bool log_long;		 /* logq may hold a line over PIPE_BUF bytes */
	uint64_t log_dropped;	 /* lines dropped, not yet reported */
	uint64_t log_lost;	 /* lines a failed write lost, not yet reported */
	int log_lost_err;	 /* the errno of the last such write */
	int64_t log_reported_ms; /* sb_edge_mono_ms() of the last report */
	sb_buf scratch;		 /* request and response heads are built here */
	/* output held until the end of the loop's I/O pass (proxy.c, hold) */
	uv_check_t held_flush;
	struct sb_held *held;
	size_t nheld, held_cap;
} sb_worker;

typedef struct sb_edge {
	sb_edge_opts opts;
	char config_path[4096];
	char data_dir[4096];
	struct sockaddr_storage listen_addr;
	socklen_t listen_len;
	char listen_text[128];

	int nworkers;
	sb_worker *workers;

	/* The published snapshot. Workers take a reference under snap_lock when
	 * woken after a publish: a reload-time lock, never on the request path. */
	uv_mutex_t snap_lock;
	sb_snapshot *current;
	atomic_uint_fast64_t seq;
	atomic_bool stopping;
	atomic_bool force_close; /* drain deadline passed */
	atomic_long nconns;	 /* all threads */

	sb_upstream **ups; /* registry, changed by the control thread only */
	size_t nups, capups;
	uint32_t *free_ids; /* pool indexes of freed upstreams, to reuse */
	size_t nfree_ids;
	uint32_t next_id;

	int access_fd;		/* -1: off */
	char access_path[4096]; /* the file, "-" or "off" (as at start: a reload reopens it) */
	int access_mode;	/* SB_LOG_*: how access_fd is written */
	/* SB_LOG_NONBLOCK, SB_LOG_PIPE, SB_LOG_SOCKET: a tty or a stream socket may take part
	 * of any line, a pipe part of one over PIPE_BUF bytes; the thread that
	 * wrote it (access_owner) must end it before another thread writes. A
	 * flush that may cut a line holds access_lock alone (write-locked); a
	 * flush to a pipe of lines of PIPE_BUF bytes or less, each written whole
	 * or refused, holds it shared (read-locked): such threads never take
	 * turns. Taken once per flush, never per request. */
	pthread_rwlock_t access_lock;
	int access_owner; /* worker id, or -1 (changed write-locked) */

	bool dns_on;
	struct sockaddr_storage dns_addr;
	socklen_t dns_len;
	char dns_text[128];
	char admin_text[128]; /* [listen] admin as started ("" when none) */
	struct dns_serial {
		char *zone;
		uint64_t hash;
		uint32_t serial;
	} * serials; /* per zone: what the last build held, for SOA serials */
	size_t nserials;
	int64_t started_ms; /* sb_edge_mono_ms() at start, for the uptime */
	uint64_t generation;
	void *store; /* sb_store*, control thread only */
	void *ctl;   /* the control loop (edge.c) */
} sb_edge;

/* ---- proxy.c ---------------------------------------------------------- */

/* Accept callback for a worker's listener. */
void sb_proxy_on_connection(uv_stream_t *server, int status);
/* Take the published snapshot if it changed (one atomic load otherwise):
 * called at the start of every request and DNS batch. */
void sb_proxy_worker_refresh(sb_worker *w);
/* Wake-up in a worker: take the new snapshot, or begin stopping. */
void sb_proxy_worker_wake(sb_worker *w);
/* Close every connection of the worker now (end of the drain period). */
void sb_proxy_worker_close_all(sb_worker *w);
/* Set up the worker's access-log queue (written before its loop waits for
 * events) and the flush of held output (after each I/O pass); call once,
 * before the worker's thread starts. */
void sb_proxy_worker_start(sb_worker *w);
/* Write the worker's queued access-log lines, free its upstream pools
 * (thread exit). */
void sb_proxy_worker_free(sb_worker *w);

/* Wall clock in milliseconds. */
int64_t sb_edge_now_ms(void);
/* Monotonic clock in milliseconds: for durations, which a step of the wall
 * clock (NTP, an operator) must not change. */
int64_t sb_edge_mono_ms(void);
/* Log a diagnostic line on stderr: "switchboard: LEVEL: msg". */
void sb_edge_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write one line (its newline included) to stderr in one write, without
 * waiting for a reader that does not keep up: a line it cannot take is
 * dropped and counted, and the count goes out before the next line that is
 * written. Any thread. */
void sb_edge_diag_write(const char *line, size_t n);

#endif
