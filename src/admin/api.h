/*
 * The admin API: HTTP/1.1 + JSON for the CLI and for CI, served by the
 * edge's control thread on a Unix socket in the data directory (mode 0600:
 * the file system is the access control) and, when the declaration's
 * [admin] listen names an address, on TCP, where every request must carry
 * "Authorization: Bearer <token>" (the token in <data_dir>/admin.token,
 * compared in constant time). One request per connection; bodies up to
 * SB_ADMIN_BODY_MAX bytes. The endpoints themselves (docs/admin.md) are the
 * handler's: this module only speaks HTTP.
 *
 * The client half (sb_admin_call) is what the CLI uses.
 */
#ifndef SB_ADMIN_API_H
#define SB_ADMIN_API_H

#include <uv.h>

#include "common/accept.h"
#include "common/sb.h"

#define SB_ADMIN_BODY_MAX (1024 * 1024)
#define SB_ADMIN_TOKEN_LEN 64 /* hex characters */

typedef struct sb_admin sb_admin;

/*
 * Handle one request: method ("GET", "POST", "DELETE"), target (path and
 * query), the body (NUL-terminated, possibly empty). Fill *status and the
 * JSON body in out. Runs on the loop's thread; may take its time (the
 * loop waits), which is what makes a change applied when the answer leaves.
 */
typedef void (*sb_admin_handler)(void *ctx, const char *method, const char *target,
				 const char *body, size_t body_len, int *status, sb_buf *out);

/*
 * Take the data directory's server lock (<data_dir>/admin.sock.lock, an
 * flock held while *fd is open): one server per data directory. A server
 * takes it before it binds anything or writes into the directory, so that
 * a second one started by mistake disturbs nothing of the first. Returns 0
 * and *fd, SB_EEXIST when another server holds it, or SB_EIO (d says why).
 */
int sb_admin_lock(const char *data_dir, int *fd, sb_diag *d);

/*
 * Listen on <data_dir>/admin.sock (a stale socket file is replaced) and,
 * when tcp is not NULL ("host:port"), on TCP with the token of
 * <data_dir>/admin.token (created with a random token when missing).
 * held_lock is true when the caller holds the lock (sb_admin_lock) for as
 * long as it serves; else it is taken here, until the stop. Returns 0 and
 * *out, or SB_EIO / SB_EINVAL with d saying which address failed and why,
 * SB_EEXIST when another server holds the lock or answers on the socket,
 * or SB_ETOOLONG when the socket's path does not fit a Unix socket address;
 * nothing is left listening then.
 */
int sb_admin_start(uv_loop_t *loop, const char *data_dir, const char *tcp, bool held_lock,
		   sb_admin_handler handler, void *ctx, sb_admin **out, sb_diag *d);

/* The address the TCP listener is bound to ("127.0.0.1:9000", "[::1]:9000";
 * the port the system picked for port 0), into buf. Returns 0, or SB_ENOENT
 * when there is no TCP listener. */
int sb_admin_tcp_address(const sb_admin *a, char *buf, size_t size);

/* Where a listener says it cannot accept (at the open-file limit it stops
 * accepting for a while, accept.h): log (sb_edge_log). Without it, nothing
 * is said. NULL a is fine. */
void sb_admin_set_log(sb_admin *a, sb_accept_log_fn log);

/* Stop listening and close open connections; the socket file is removed.
 * The sb_admin is freed once its handles are closed (run the loop). NULL
 * is fine. */
void sb_admin_stop(sb_admin *a);

/* Path of the socket for a data directory, into buf. */
void sb_admin_socket_path(const char *data_dir, char *buf, size_t size);

/*
 * Read (creating when create is true and it is missing) the admin token of
 * a data directory into tok (SB_ADMIN_TOKEN_LEN + 1 bytes). Returns 0,
 * SB_ENOENT (missing, not created) or SB_EIO.
 */
int sb_admin_token(const char *data_dir, bool create, char *tok, sb_diag *d);

/*
 * Client: send one request and read the answer. where is a socket path or
 * "http://host:port" (then token, if not NULL, is sent as a bearer token).
 * body may be NULL. *resp receives the body (malloc'd, NUL-terminated).
 * Returns 0 and *status, SB_ENOENT when nothing listens there (no server
 * runs: the caller may work on the store directly), or SB_EIO (connected,
 * then failed; d says how).
 */
int sb_admin_call(const char *where, const char *token, const char *method, const char *target,
		  const char *body, int *status, char **resp, sb_diag *d);

#endif
