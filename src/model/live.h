/*
 * The live state: what commands changed on top of the declaration. Live
 * previews (per pull request, with an expiry), deploys (a deployment's vars,
 * routes, custom domains and upstream given on the command line, as
 * `wrangler deploy` takes them) and deleted deployments. Each version in the
 * store holds one of these as a JSON document; the model is built from the
 * declaration plus the current one (sb_model_build_live in model.h).
 *
 * Pure: no I/O. Strings are owned by the sb_live (malloc'd).
 */
#ifndef SB_MODEL_LIVE_H
#define SB_MODEL_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/sb.h"

typedef struct sb_live_preview {
	uint32_t pr;
	int64_t created_at; /* unix seconds */
	int64_t expires_at; /* unix seconds; 0: never */
} sb_live_preview;

typedef struct sb_live_deploy {
	char *name; /* the deployment's name */
	char **var_keys, **var_values;
	size_t nvars;
	char **routes; /* route patterns, Cloudflare syntax */
	size_t nroutes;
	char **domains; /* custom domains: whole hosts */
	size_t ndomains;
	char *upstream_url; /* or argv, or neither (the declaration's) */
	char **argv;
	size_t argc;
	int64_t deployed_at;
} sb_live_deploy;

typedef struct sb_live {
	sb_live_preview *previews; /* sorted by pr */
	size_t npreviews;
	sb_live_deploy *deploys; /* sorted by name */
	size_t ndeploys;
	char **deleted; /* deployment names, sorted */
	size_t ndeleted;
} sb_live;

/*
 * Parse a state document (NULL or "" is the empty state) into *out, which
 * the caller clears with sb_live_clear. Returns 0, or SB_EINVAL with d
 * saying what is wrong (the document is the store's, so this means a
 * corrupted or foreign database).
 */
int sb_live_parse(const char *json, sb_live *out, sb_diag *d);

/* The state as a compact JSON document (malloc'd, never NULL). Parsing it
 * gives the same state. */
char *sb_live_to_json(const sb_live *l);

/* Free everything l holds and zero it. */
void sb_live_clear(sb_live *l);

/* A deep copy of src into *dst. */
void sb_live_copy(sb_live *dst, const sb_live *src);

/* The live preview for pr, or NULL. */
const sb_live_preview *sb_live_preview_find(const sb_live *l, uint32_t pr);

/*
 * Add (or renew, keeping created_at) the preview for pr. ttl_s 0: never
 * expires. Returns 1 when added, 0 when renewed.
 */
int sb_live_preview_put(sb_live *l, uint32_t pr, int64_t now, int64_t ttl_s);

/* Remove the preview for pr. Returns 0, or SB_ENOENT. */
int sb_live_preview_remove(sb_live *l, uint32_t pr);

/* Remove previews whose expires_at is not after now; their numbers go to
 * prs (up to max). Returns how many were removed. */
size_t sb_live_expire(sb_live *l, int64_t now, uint32_t *prs, size_t max);

/* The deploy of a deployment name, or NULL. */
const sb_live_deploy *sb_live_deploy_find(const sb_live *l, const char *name);

/* Record a deploy (deep-copied; it replaces the name's previous one) and
 * take the name off the deleted list. */
void sb_live_deploy_put(sb_live *l, const sb_live_deploy *dep);

/* Whether a deployment name is deleted. */
bool sb_live_is_deleted(const sb_live *l, const char *name);

/* Delete a deployment by name: its deploy is dropped and the name listed
 * as deleted. Returns 0, or SB_EEXIST when it already was. */
int sb_live_delete(sb_live *l, const char *name);

/* Forget everything about a name: its deploy and its deletion. */
void sb_live_forget(sb_live *l, const char *name);

/* Free the strings of one deploy (not the struct). */
void sb_live_deploy_clear(sb_live_deploy *dep);

#endif
