/*
 * Changes to the deployed model: deploy, delete, preview create/delete,
 * rollback and preview expiry. One change is one JSON document (an "op"),
 * so that the CLI can run it itself when no server runs, or send it to the
 * running server's admin API (admin/api.h), which runs the same function.
 *
 * A change is all or nothing: in one store transaction the current live
 * state (model/live.h) is read, the op applied to it, the result checked
 * (model, routes, consistency, DNS), an optional prepare callback lets the
 * server build the snapshot it will publish, and the new version is
 * committed. Anything that fails before the commit leaves the store as it
 * was.
 *
 * Ops (JSON objects, "op" names the kind; "cmdline" is the command line,
 * recorded with the version):
 *   {"op":"deploy", "env":"production", "name":"codex-web",
 *    "vars":{"K":"V"}, "routes":["host/path*"], "domains":["host"],
 *    "upstream":"http://..." | "command":["prog","arg"], "dry_run":false}
 *   {"op":"delete", "name":"codex-web-preview-7"}
 *   {"op":"preview-create", "pr":123, "ttl":604800}   (ttl seconds, 0 never)
 *   {"op":"preview-delete", "pr":123}
 *   {"op":"rollback", "version":12}                   (0 or absent: the one
 *                                                      before the current state)
 *   {"op":"expire"}                                   (remove expired previews)
 */
#ifndef SB_ADMIN_OPS_H
#define SB_ADMIN_OPS_H

#include <jansson.h>

#include "common/sb.h"
#include "config/decl.h"
#include "model/live.h"
#include "store/store.h"

/*
 * Called inside the transaction with the state the op produced, after the
 * checks passed: build what will be published. Return 0 to commit, or a
 * negative code (with d filled) to roll back. A dry run calls it too and
 * then commits nothing: the caller publishes only when the result's
 * version is not 0.
 */
typedef int (*sb_ops_prepare_fn)(void *ctx, const sb_live *next, sb_diag *d);

/*
 * Run op against the store with the declaration decl. On success *result
 * receives a JSON object (the caller json_decref's it):
 *   {"version": N (0 for a dry run or nothing to do), "changed": bool,
 *    "summary": "...", "dry_run": bool,
 *    "deployments": [{"name", "service", "environment", "pr", "upstream",
 *                     "hosts": [...], "vars": {...}}]}   (those the op touched)
 * Returns 0, or SB_EINVAL (bad op, unknown service or deployment, a route
 * or domain that does not parse, a consistency violation: d says which),
 * SB_ENOENT (no such preview, deployment or version), SB_EEXIST (two
 * deployments claim a host, already deleted), SB_EIO (store), or what
 * prepare returned.
 */
int sb_ops_run(sb_store *st, const sb_decl *decl, json_t *op, sb_ops_prepare_fn prepare, void *ctx,
	       json_t **result, sb_diag *d);

/*
 * The current live state and version from the store (for a server starting
 * or polling). Returns 0, or SB_EIO / SB_EINVAL (a state that does not
 * parse).
 */
int sb_ops_current(sb_store *st, sb_live *out, int64_t *version, sb_diag *d);

/*
 * What `switchboard versions --json` and GET /v1/versions show: the newest
 * first, at most limit (0: all), each {"version", "created_at", "command",
 * "summary", "deploys"}. Returns the array (json_decref it), or NULL with d
 * set (SB_EIO).
 */
json_t *sb_ops_versions_json(sb_store *st, int64_t limit, sb_diag *d);

/*
 * What `switchboard preview list --json` and GET /v1/previews show: each
 * created preview of live, {"pr", "created_at", "expires_at" (or null),
 * "deployments": [...], "hosts": [...]}, the hosts and deployments from m
 * (a model built with live). Never fails.
 */
struct sb_model;
json_t *sb_ops_previews_json(const sb_live *live, const struct sb_model *m);

/* The longest preview ttl: about 100 years. */
#define SB_OPS_TTL_MAX ((int64_t)100 * 366 * 86400)

/* Parse a duration: "90s", "30m", "12h", "7d" or "2w" (the unit is
 * required), at most SB_OPS_TTL_MAX. Returns 0 and *secs, or SB_EINVAL. */
int sb_ops_parse_duration(const char *s, int64_t *secs);

#endif
