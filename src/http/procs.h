/*
 * Upstreams started by command (docs/http.md, "Upstreams started by command").
 *
 * A deployment may give its upstream as a command instead of an URL. This
 * module keeps one child process per such deployment: it starts the command
 * with PORT and the deployment's vars in its environment, restarts it with
 * exponential backoff when it exits, restarts it when its command, vars or
 * working directory change, and stops it (SIGTERM to its process group,
 * SIGKILL after a grace period) when the deployment goes away or the edge
 * stops. It manages processes only: routing to a process once its /health
 * answers is the edge's active health checker's job (the edge registers
 * http://127.0.0.1:PORT as an upstream that starts marked down).
 *
 * Everything runs on one libuv loop (the edge's control loop) and one
 * thread: no threads, no sleeps. A child's process group ends with the edge
 * even when the edge is killed (SIGKILL, a crash): a watchdog started by
 * sb_procs_exec_child stops it as a stop would. Children are spawned detached (their own
 * process group, so stopping one kills whatever it started), with stdin on
 * /dev/null and stdout and stderr both on a pipe whose lines are written to
 * the edge's stderr as "NAME[PID]: LINE" (control bytes as \xNN), so that
 * they never mix with the access log on stdout nor pass for the edge's own. When the command's own
 * process exits (crash, or after SIGTERM), whatever is left in its process group is killed at once,
 * so that nothing outlives it or keeps its port.
 */
#ifndef SB_HTTP_PROCS_H
#define SB_HTTP_PROCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/sb.h"

typedef struct sb_procs sb_procs;

/* Where the module's lines go: level is "info", "warning" or "error"; the
 * message has no trailing newline. sb_edge_log() has this type. */
typedef void (*sb_procs_log_fn)(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Tuning; a zero field takes the default shown. */
typedef struct sb_procs_opts {
	sb_procs_log_fn log;	 /* NULL: say nothing */
	uint32_t backoff_min_ms; /* first restart delay: 100 */
	uint32_t backoff_max_ms; /* the delay doubles up to this: 30000 */
	uint32_t stable_ms;	 /* a process up this long restarts after backoff_min: 10000 */
	uint32_t grace_ms;	 /* SIGTERM, then SIGKILL after this: 5000 */
	/* called when a process exits without being asked to (it will be
	 * restarted): the edge stops routing to it until it answers again */
	void (*on_exit)(void *ctx, const char *name);
	/* called when a process of name has been spawned (its pid runs) */
	void (*on_spawn)(void *ctx, const char *name);
	void *ctx;
} sb_procs_opts;

/* One command to keep running. Everything is copied by sb_procs_set(). */
typedef struct sb_proc_spec {
	const char *name;	 /* the key, usually the deployment's name; not empty */
	const char *const *argv; /* argc >= 1 strings; argv[0] is looked up in PATH */
	size_t argc;
	const char *const *env; /* "KEY=VALUE" set on top of the edge's own environment */
	size_t nenv;
	const char *cwd; /* working directory, NULL: the edge's */
	uint16_t port;	 /* for a name not managed yet: this port (0: pick a free one);
			    a managed name keeps the port it has */
} sb_proc_spec;

/* What a name is doing now (sb_procs_info). */
typedef struct sb_proc_info {
	int pid;		/* the running process (a process group leader), 0: none */
	uint16_t port;		/* its PORT, fixed for the name's life */
	unsigned starts;	/* successful spawns so far */
	unsigned failures;	/* exits nobody asked for, and spawns that failed */
	uint32_t next_delay_ms; /* backoff before the next restart after a failure */
} sb_proc_info;

/*
 * A process manager on loop. opts may be NULL (defaults, silent). Never
 * fails (allocation failure aborts).
 */
sb_procs *sb_procs_new(uv_loop_t *loop, const sb_procs_opts *opts);

/*
 * Make the set of managed commands equal specs[0..n):
 * - a new name gets a free TCP port on 127.0.0.1, kept for the name's whole
 *   life, and is started now;
 * - a name whose argv, env or cwd changed is stopped (SIGTERM, SIGKILL after
 *   the grace period) and started again with the new spec as soon as it has
 *   exited, on the same port; an unchanged name is left alone;
 * - a name not listed is stopped and forgotten.
 * The environment of a child is the edge's own, then spec->env (a var of
 * the same name replaces the inherited one), then PORT (which always wins).
 * When ports is not NULL, ports[i] receives the port of specs[i].
 *
 * A command that cannot be spawned (no such executable, bad cwd) is not an
 * error here: it is logged and retried with backoff like a process that
 * exited.
 *
 * Returns 0; or, with d filled (d may be NULL) and nothing changed:
 * SB_EINVAL for an empty or duplicate name, argc 0, an env entry without
 * '=' or after sb_procs_stop(); SB_EIO when no port could be reserved.
 */
int sb_procs_set(sb_procs *p, const sb_proc_spec *specs, size_t n, uint16_t *ports, sb_diag *d);

/* The port of a managed name; 0 when the name is not (or no longer) managed. */
uint16_t sb_procs_port(const sb_procs *p, const char *name);

/* Fill *out for a managed name. Returns 0, or SB_ENOENT (out untouched). */
int sb_procs_info(const sb_procs *p, const char *name, sb_proc_info *out);

/*
 * Stop everything (shutdown): every process group gets SIGTERM, and SIGKILL
 * after the grace period. done(arg) is called exactly once, from the loop
 * (never from within this call), once every child has exited and every
 * handle of the module is closed. Later calls to sb_procs_set() fail with
 * SB_EINVAL. Calling stop a second time does nothing (done is not called
 * again).
 */
void sb_procs_stop(sb_procs *p, void (*done)(void *arg), void *arg);

/*
 * The child side of a spawn, for main(): argv is
 * {"switchboard", "__exec", PARENT_PID, FILE, ARGV...}. Starts a watchdog
 * (forked twice, so never our child) that, should the parent end first,
 * sends SIGTERM to this process's group, and SIGKILL 5 s later to what is
 * left; then execs FILE with ARGV. Without pidfd_open it asks the kernel to
 * send SIGTERM to this process alone when the parent's spawning thread ends
 * (PR_SET_PDEATHSIG); a parent that is PID 1 needs neither. Returns only on failure: 1 when the
 * parent is already gone, 2 for bad arguments, 127 when the exec failed (said on stderr).
 */
int sb_procs_exec_child(int argc, char **argv);

/* Free the manager. Only after stop's done has been called, or when no
 * name was ever set; anything else aborts (handles would still be live). */
void sb_procs_free(sb_procs *p);

#endif
