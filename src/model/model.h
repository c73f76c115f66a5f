/*
 * The model: services x environments -> deployments, derived from a loaded
 * declaration. Pure: no I/O.
 *
 * For each service there is one production, one staging and, for every pull
 * request number, one preview deployment. Production takes wrangler's
 * [env.production] (or the top level when there is none); staging takes
 * [env.staging] when declared. Hosts a section does not declare follow from
 * the naming rule: the first label of each production host becomes
 * "{label}-staging" and "{label}-preview-{pr}" (templates configurable), and
 * URL vars are rewritten to point at the same environment's hosts.
 *
 * Previews listed in the declaration are materialised; any other PR number
 * is derived on demand with sb_model_preview().
 */
#ifndef SB_MODEL_MODEL_H
#define SB_MODEL_MODEL_H

#include <sys/types.h>

#include "common/sb.h"
#include "config/decl.h"
#include "model/live.h"

#define SB_SLUG_MAX 63

/* A parsed route pattern ("host/path", Cloudflare syntax). */
typedef struct sb_route {
	const char *pattern; /* as written (or as derived) */
	const char *host;    /* lower case, no trailing dot; "*." or "*" prefix kept */
	const char *path;    /* literal part, always starting with '/' */
	bool host_wildcard;  /* host starts with '*' */
	bool host_apex_too;  /* "*example.com": the suffix itself matches too */
	bool path_prefix;    /* path ended with '*' */
	bool custom_domain;
	bool derived;	       /* produced by the naming rule, not written */
	const char *base_host; /* derived: the production host it was made from */
	const char *file;      /* where it was declared */
	int line, col;
} sb_route;

typedef struct sb_var {
	const char *key;
	const char *value;
	bool is_string;
	bool derived; /* filled in by the naming rule */
	const char *file;
	int line, col;
} sb_var;

typedef struct sb_deployment {
	const char *name;
	size_t service; /* index into model->services */
	sb_env env;
	uint32_t pr; /* preview only, else 0 */
	sb_var *vars;
	size_t nvars;
	sb_route *routes;
	size_t nroutes;
	const sb_upstream_decl *upstream; /* NULL when none declared */
	const char *file;
	int line, col;
} sb_deployment;

typedef struct sb_service {
	const char *name;  /* wrangler top-level name */
	const char *label; /* declared label, else first label of a production host, or NULL */
	bool tenant_aware;
	const sb_service_decl *decl;
	size_t deployment[2]; /* production and staging, indexes into deployments */
} sb_service;

/* A naming template split once around its placeholders (see model.c). */
typedef struct sb_tmpl {
	const char *pre, *mid, *post;
	size_t pre_len, mid_len, post_len;
	bool pr_first; /* "{pr}" comes before "{label}" */
	bool has_pr;
} sb_tmpl;

typedef struct sb_model {
	const sb_decl *decl;
	sb_pool *pool;
	sb_service *services;
	size_t nservices;
	sb_deployment *deployments; /* production, staging, then listed previews */
	size_t ndeployments;
	ssize_t tenant_service; /* index, or -1 */
	char **reserved;	/* api, auth, www + declared, lower case */
	size_t *reserved_len;
	size_t nreserved;
	sb_tmpl preview_tmpl, staging_tmpl;
} sb_model;

/*
 * Build the model from a declaration (which must outlive it). Returns 0, or
 * SB_EINVAL with d naming the file and position: an invalid route pattern,
 * an unknown tenant service, an invalid static tenant slug, and so on.
 */
int sb_model_build(const sb_decl *decl, sb_model **out, sb_diag *d);
void sb_model_free(sb_model *m);

/*
 * Build the model from a declaration plus a live state (NULL: none; both
 * must outlive the model): the live previews are materialised like listed
 * ones, each deploy's vars override or add to the deployment's, its routes
 * and custom domains are added and its upstream replaces the declared one,
 * and a deleted deployment keeps its name but serves no route. Production
 * deploys apply before staging and previews are derived from production;
 * deletes apply last, so deleting production does not take staging's
 * derived hosts with it. Names in live that the declaration no longer has
 * are ignored. Returns 0, or SB_EINVAL with d naming the bad route pattern
 * or domain (file "deploy <name>").
 */
int sb_model_build_live(const sb_decl *decl, const sb_live *live, sb_model **out, sb_diag *d);

/* Index of a deployment by name, or -1. */
ssize_t sb_model_deployment(const sb_model *m, const char *name);

/* Index of a service by name, or -1. */
ssize_t sb_model_service(const sb_model *m, const char *name);

/*
 * Derive the preview deployment of service `svc` for pull request `pr` into
 * *out, allocating in pool (name, hosts and vars follow the naming rule).
 */
void sb_model_preview(const sb_model *m, size_t svc, uint32_t pr, sb_pool *pool,
		      sb_deployment *out);

/* Parse a route pattern "host[/path]" into r (strings in pool); without a
 * path it matches "/" only, as in Cloudflare. Returns 0 or SB_EINVAL with a
 * message in err (no position; the caller adds it). */
int sb_route_parse(const char *pattern, sb_pool *pool, sb_route *r, char *err, size_t errlen);

/* Make r match every path of its host (a "/" prefix): what a custom domain does,
 * whatever path its pattern was written with. */
void sb_route_whole_host(sb_route *r);

/*
 * Tenant slugs. A slug matches [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?, is one
 * label, is not reserved and does not carry a staging or preview suffix.
 * Returns 0, SB_EBADSLUG (syntax, with the reason in why), or SB_ERESERVED.
 */
int sb_model_slug_check(const sb_model *m, const char *s, size_t n, const char **why);

/*
 * Match a host's first label against the naming rule. For
 * "codex-preview-123" with "{label}-preview-{pr}" stores the label's span
 * ("codex": offset 0, length 5) and the PR number, and returns
 * SB_ENV_PREVIEW; for "codex-staging" returns SB_ENV_STAGING; otherwise
 * SB_ENV_PRODUCTION (the label is the whole input).
 */
sb_env sb_model_name_parse(const sb_model *m, const char *s, size_t n, size_t *label_off,
			   size_t *label_len, uint32_t *pr);

/*
 * Does every production host of service svc that the naming rule renames
 * keep its first label within DNS's 63 bytes in env (and pr)? Else that
 * deployment would have no route there. For SB_ENV_PREVIEW, also: does the
 * preview deployment's name ("NAME-preview-PR") keep within the 63
 * characters of a Worker name? Returns 0, or SB_EINVAL with d naming the
 * route and the label, or the service's name.
 */
int sb_model_label_room(const sb_model *m, size_t svc, sb_env env, uint32_t pr, sb_diag *d);

/*
 * The name the preview rule maps a preview host of production host h of
 * service svc back to: "<label><rest>" for "<label>-preview-<pr><rest>",
 * where <label> is the service's declared label or else h's first label,
 * and <rest> is h without its first label (a zone apex, which has no label
 * of its own, keeps itself: "." + h, and only a declared label names it).
 * Written into buf. Returns its length, or -1 when the rule renames no
 * label of h (a wildcard, a name without a dot, an apex with no declared
 * label), or SB_ETOOLONG.
 */
int sb_model_naming_base(const sb_model *m, size_t svc, const char *h, char *buf, size_t size);

/*
 * Is h (n bytes; a trailing dot is the same name) a declared zone or a name
 * under one (case-insensitive)?
 */
bool sb_model_in_zone(const sb_model *m, const char *h, size_t n);

/*
 * Is name (n bytes, any letter case, a trailing dot allowed) a public
 * suffix: a name in the ICANN section of the public suffix list (com,
 * co.uk, studio), under which anyone may register a domain? Names the list
 * does not know (localhost, internal) and its private section (github.io)
 * are not. Reads no file (libpsl's built-in list).
 */
bool sb_model_public_suffix(const char *name, size_t n);

/*
 * Why the naming rule gives production host h of service svc no staging or
 * preview host: a sentence for the user ("it is a declared zone's apex,
 * which has no label of its own"), or NULL when it gives it some.
 */
const char *sb_model_unrenamed(const sb_model *m, size_t svc, const char *h);

/* Pull request numbers: 1 to SB_PR_MAX, written without leading zeros (so
 * that one PR has one host name). */
#define SB_PR_MAX 999999999u

/* Parse n bytes at s as a pull request number. Returns 0 with *pr, or
 * SB_EINVAL. */
int sb_model_pr_parse(const char *s, size_t n, uint32_t *pr);

/* Host for a label in env: "codex" -> "codex-preview-123" (into buf).
 * Returns the length, or SB_ETOOLONG. */
int sb_model_name_format(const sb_model *m, sb_env env, const char *label, size_t label_len,
			 uint32_t pr, char *buf, size_t size);

#endif
