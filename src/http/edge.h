/*
 * The HTTP edge: `switchboard serve`.
 *
 * N serving threads, each with its own libuv loop and SO_REUSEPORT listener,
 * read one immutable snapshot (declaration, model, route table, tenants,
 * secrets). A control thread (the caller's) handles signals, reloads, the
 * tenant registry and active health checks; a change builds a new snapshot
 * and hands it to every serving thread, and requests in flight finish on the
 * snapshot they started with.
 */
#ifndef SB_HTTP_EDGE_H
#define SB_HTTP_EDGE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/sb.h"

typedef struct sb_edge_opts {
	const char *config;	/* switchboard.toml or its directory */
	const char *data_dir;	/* overrides the declaration's data_dir (NULL: keep) */
	const char *listen;	/* overrides [listen] http (NULL: keep); port 0 allowed */
	const char *listen_dns; /* overrides [listen] dns (NULL: keep); port 0 allowed */
	int threads;		/* overrides [http] threads when > 0 */
} sb_edge_opts;

/*
 * Run the edge until SIGTERM, SIGINT or SIGQUIT (graceful: stop accepting, let
 * requests in flight finish up to [http] drain_timeout_ms). SIGHUP reloads the
 * declaration. Prints "switchboard: listening on http://ADDR:PORT" on stderr
 * once every thread listens. Returns 0 after a clean stop, or a negative code
 * with d filled when it could not start (bad declaration, address in use).
 */
int sb_edge_run(const sb_edge_opts *opts, sb_diag *d);

/*
 * Hold (hold true) or release SIGHUP and SIGUSR1 in the calling thread. The
 * CLI holds them first thing, before it reads the declaration: their default
 * action ends a process, and `systemctl reload` or a logrotate script may
 * signal a server still starting. sb_edge_run releases them once its
 * handlers are set, so one that came meanwhile is a reload (a reopen) then.
 * Threads started in between inherit the hold and never take them.
 */
void sb_edge_signals(bool hold);

/*
 * The signing secrets of a deployment, as comma-separated hex (current
 * first, then the one derived from secret.key.previous when it exists), the
 * form a service takes in SWITCHBOARD_SECRETS. Creates the data directory's
 * master key (0600) when there is none yet. Returns 0 or a negative code.
 */
int sb_edge_deployment_secrets(const char *data_dir, const char *deployment, char *out, size_t size,
			       sb_diag *d);

/* Read or create the master key (and the previous one, if any) of a data
 * directory. Returns 0 or a negative code with d filled. */
int sb_edge_load_master(const char *data_dir, uint8_t key[32], uint8_t prev[32], bool *has_prev,
			sb_diag *d);

/* The serial a server on data_dir last published for zone, with the hash
 * of the zone's content it was published for (sb_dns_content_hash), from
 * <data_dir>/dns-serials. Returns 0, or SB_ENOENT when none is recorded
 * (no file, or no line for the zone). */
int sb_edge_published_serial(const char *data_dir, const char *zone, uint32_t *serial,
			     uint64_t *hash);

/* Path of the pid file in a data directory (for `switchboard reload`). */
void sb_edge_pidfile(const char *data_dir, char *buf, size_t size);

#endif
