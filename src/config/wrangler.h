/*
 * wrangler.toml loader: the keys Switchboard needs from a Cloudflare Workers
 * configuration, with wrangler's environment inheritance applied.
 *
 * Read: name, main, compatibility_date, compatibility_flags, workers_dev,
 * vars, route/routes, and [env.NAME] sections with the same keys. Every other
 * key is accepted and ignored (wrangler has many).
 *
 * Inheritance (docs/configuration.md, "wrangler.toml"): an environment
 * inherits main, compatibility_date, compatibility_flags, workers_dev and
 * route/routes from the top level when it does not set them; its name
 * defaults to "<top-level name>-<env>"; vars are never inherited.
 */
#ifndef SB_CONFIG_WRANGLER_H
#define SB_CONFIG_WRANGLER_H

#include "common/sb.h"
#include "config/toml.h"

typedef struct sb_wr_route {
	const char *pattern; /* as written: host, then an optional path ending in a star */
	const char *zone_name;
	const char *zone_id;
	bool custom_domain;
	int line, col;
} sb_wr_route;

typedef struct sb_wr_var {
	const char *key;
	const char *value; /* a string's text, or the TOML value rendered as JSON */
	bool is_string;
	int line, col;
} sb_wr_var;

typedef struct sb_wr_env {
	const char *env;  /* NULL for the top level */
	const char *name; /* effective Worker name */
	bool name_declared;
	const char *main;
	const char *compatibility_date;
	char **compatibility_flags;
	size_t ncompatibility_flags;
	bool workers_dev;
	sb_wr_var *vars;
	size_t nvars;
	sb_wr_route *routes;
	size_t nroutes;
	bool routes_declared;	 /* set in this section, not inherited */
	int line, col;		 /* where the section starts */
	int name_line, name_col; /* where 'name' is, when declared */
} sb_wr_env;

typedef struct sb_wrangler {
	const char *file;
	sb_wr_env top;
	sb_wr_env *envs;
	size_t nenvs;
} sb_wrangler;

/*
 * Check the Worker name of environment e of w (wrangler's rule: lower-case
 * letters, digits, '-' and '_', not starting with '-', at most 63
 * characters). The top level's is checked by sb_wrangler_load; an
 * [env.NAME]'s only where it is used (an environment Switchboard does not
 * serve may have any name). Returns 0, or SB_EINVAL with d set at the name,
 * or at the section for a name derived from the top level's.
 */
int sb_wrangler_name_check(const sb_wrangler *w, const sb_wr_env *e, sb_diag *d);

/* NULL-terminated lists: the wrangler keys Switchboard reads, and the other
 * keys of wrangler's it accepts and ignores. */
const char *const *sb_wrangler_read_keys(void);
const char *const *sb_wrangler_other_keys(void);

/*
 * Load a wrangler configuration from a parsed TOML table (the whole
 * wrangler.toml, or an inline service table of switchboard.toml). `file`
 * names the source in diagnostics. Everything is allocated in pool.
 * Returns 0, or SB_EINVAL with d set ("file:line:col: what was expected").
 * A route with custom_domain = true whose host contains '*' is rejected, as
 * wrangler rejects it, with a message that says to use a route instead. A
 * key that is neither read nor wrangler's is ignored unless it is within two
 * edits of one that is read ("rotues"): that is an error that names it.
 */
int sb_wrangler_load(const sb_toml_value *doc, const char *file, sb_pool *pool, sb_wrangler *out,
		     sb_diag *d);

/* The effective section for env (NULL: top level), or NULL if not declared. */
const sb_wr_env *sb_wrangler_env(const sb_wrangler *w, const char *env);

/* Value of a var in a section, or NULL. */
const sb_wr_var *sb_wrangler_var(const sb_wr_env *e, const char *key);

#endif
