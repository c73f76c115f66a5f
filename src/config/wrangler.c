/* wrangler.toml loader. See wrangler.h for what is read and inherited. */
#include "config/wrangler.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/cfg.h"

/* The keys read, in a wrangler file's top level or [env.NAME] ("env" only at
 * the top). */
// clang-format off
static const char *const read_keys[] = {
    "name", "main", "compatibility_date", "compatibility_flags", "workers_dev", "vars",
    "route", "routes", "env", NULL};

/* Wrangler's keys that Switchboard does not use: accepted without a word. */
static const char *const other_keys[] = {
    "$schema", "account_id", "ai", "alias", "analytics_engine_datasets", "assets", "base_dir",
    "browser", "build", "cloudchamber", "compliance_region", "containers", "d1_databases",
    "data_blobs", "define", "dev", "dispatch_namespaces", "durable_objects",
    "find_additional_modules", "first_party_worker", "hyperdrive", "images", "jsx_factory",
    "jsx_fragment", "keep_names", "keep_vars", "kv_namespaces", "legacy_env", "limits",
    "logpush", "migrations", "minify", "mtls_certificates", "no_bundle", "node_compat",
    "observability", "pipelines", "placement", "preserve_file_names", "preview_urls",
    "python_modules", "queues", "r2_buckets", "ratelimits", "rules", "secrets",
    "secrets_store_secrets", "send_email", "send_metrics", "services", "site",
    "streaming_tail_consumers", "tail_consumers", "text_blobs", "triggers", "tsconfig",
    "unsafe", "upload_source_maps", "usage_model", "vectorize", "version_metadata",
    "vpc_services", "wasm_modules", "worker_loaders", "workflows",
    /* wrangler 1 */
    "type", "webpack_config", "zone_id", "kv-namespaces", NULL};
// clang-format on

const char *const *sb_wrangler_read_keys(void)
{
	return read_keys;
}

const char *const *sb_wrangler_other_keys(void)
{
	return other_keys;
}

/*
 * A key that is neither read nor one of wrangler's is accepted (wrangler
 * grows), unless it is a near miss of a key that is read: "rotues" would
 * otherwise leave the routes out without a word.
 */
static int near_misses(const sb_toml_value *t, bool top, const char *file, sb_diag *d)
{
	for (size_t i = 0; i < sb_toml_table_len(t); i++) {
		const char *k = sb_toml_table_key(t, i, NULL);
		if (!top && strcmp(k, "env") == 0)
			return sb_cfg_error(sb_toml_table_value(t, i), file, d,
					    "an [env.NAME] cannot have environments of its own");
		bool known = false;
		for (const char *const *p = read_keys; !known && *p; p++)
			known = strcmp(k, *p) == 0;
		for (const char *const *p = other_keys; !known && *p; p++)
			known = strcmp(k, *p) == 0;
		if (known)
			continue;
		const char *near = sb_cfg_nearest(k, read_keys);
		if (near)
			return sb_cfg_key_error(t, i, file, d,
						"unknown key '%s' (did you mean '%s'?)", k, near);
	}
	return 0;
}

/*
 * What is wrong with a Worker name, or NULL. The rule is wrangler's
 * (lower-case letters, digits, '-' and '_', not starting with '-'), with
 * the 63-character limit of a DNS label: the name is written into request
 * headers, environment variables and logs, so nothing else may be in it.
 */
static const char *name_problem(const char *s)
{
	size_t n = strlen(s);
	if (n == 0)
		return "is empty";
	if (n > 63)
		return "is longer than 63 characters";
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_'))
			return "may only have lower-case letters, digits, '-' and '_'";
	if (s[0] == '-')
		return "cannot start with '-'";
	return NULL;
}

/* Whether s can be quoted in a message as it is (printable ASCII). */
static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* Render a non-string var value as JSON (wrangler allows JSON-typed vars). */
static void render_json(sb_buf *b, const sb_toml_value *v)
{
	switch (sb_toml_type_of(v)) {
	case SB_TOML_STRING: {
		size_t n;
		const char *s = sb_toml_string(v, &n);
		sb_buf_add_json_str(b, s, n);
		break;
	}
	case SB_TOML_INTEGER: sb_buf_addf(b, "%lld", (long long)sb_toml_int(v)); break;
	case SB_TOML_FLOAT: sb_buf_addf(b, "%.17g", sb_toml_float(v)); break;
	case SB_TOML_BOOL: sb_buf_adds(b, sb_toml_bool(v) ? "true" : "false"); break;
	case SB_TOML_ARRAY:
		sb_buf_addc(b, '[');
		for (size_t i = 0; i < sb_toml_array_len(v); i++) {
			if (i)
				sb_buf_addc(b, ',');
			render_json(b, sb_toml_array_at(v, i));
		}
		sb_buf_addc(b, ']');
		break;
	case SB_TOML_TABLE:
		sb_buf_addc(b, '{');
		for (size_t i = 0; i < sb_toml_table_len(v); i++) {
			size_t kl;
			const char *k = sb_toml_table_key(v, i, &kl);
			if (i)
				sb_buf_addc(b, ',');
			sb_buf_add_json_str(b, k, kl);
			sb_buf_addc(b, ':');
			render_json(b, sb_toml_table_value(v, i));
		}
		sb_buf_addc(b, '}');
		break;
	default: {
		const char *s = sb_toml_datetime(v);
		sb_buf_add_json_str(b, s, strlen(s));
	}
	}
}

static int load_vars(const sb_toml_value *sec, const char *file, sb_pool *pool, sb_wr_env *e,
		     sb_diag *d)
{
	const sb_toml_value *vars;
	int r = sb_cfg_table(sec, "vars", file, &vars, d);
	if (r < 0 || !vars)
		return r;
	e->nvars = sb_toml_table_len(vars);
	e->vars = sb_pool_alloc(pool, (e->nvars + 1) * sizeof(*e->vars));
	for (size_t i = 0; i < e->nvars; i++) {
		const sb_toml_value *v = sb_toml_table_value(vars, i);
		sb_wr_var *out = &e->vars[i];
		size_t kl;
		const char *key = sb_toml_table_key(vars, i, &kl);
		if (memchr(key, '\0', kl))
			return sb_cfg_error(v, file, d,
					    "a var name must not contain a NUL character");
		out->key = sb_pool_strndup(pool, key, kl);
		out->line = sb_toml_line(v);
		out->col = sb_toml_col(v);
		if (!sb_var_key_ok(out->key))
			return sb_cfg_error(
			    v, file, d,
			    "var name \"%s\" cannot be an environment variable (empty, "
			    "'=' or a control character)",
			    out->key);
		if (sb_toml_type_of(v) == SB_TOML_STRING) {
			size_t n;
			const char *s = sb_toml_string(v, &n);
			if (memchr(s, '\0', n))
				return sb_cfg_error(v, file, d,
						    "var \"%s\" must not contain a NUL character",
						    out->key);
			out->value = sb_pool_strndup(pool, s, n);
			out->is_string = true;
		} else {
			sb_buf b;
			sb_buf_init(&b);
			render_json(&b, v);
			out->value = sb_pool_strndup(pool, b.data, b.len);
			sb_buf_free(&b);
		}
	}
	return 0;
}

/* Whether a pattern's host is zone or under it ("*." and "*" prefixes
 * looked through), as Cloudflare requires of a route with a zone_name. */
static bool in_zone(const char *pattern, const char *zone)
{
	const char *h = pattern + sb_http_scheme_len(pattern);
	size_t hl = strcspn(h, "/");
	if (hl && h[0] == '*') {
		h++, hl--;
		if (hl && h[0] == '.')
			h++, hl--;
	}
	if (hl && h[hl - 1] == '.')
		hl--;
	size_t zl = strlen(zone);
	if (zl && zone[zl - 1] == '.')
		zl--;
	if (zl == 0 || hl < zl || strncasecmp(h + hl - zl, zone, zl) != 0)
		return false;
	return hl == zl || h[hl - zl - 1] == '.';
}

static int load_route(const sb_toml_value *v, const char *file, sb_pool *pool, sb_wr_route *out,
		      sb_diag *d)
{
	int r = 0;
	out->line = sb_toml_line(v);
	out->col = sb_toml_col(v);
	if (sb_toml_type_of(v) == SB_TOML_STRING) {
		size_t n;
		const char *p = sb_toml_string(v, &n);
		if (memchr(p, '\0', n))
			return sb_cfg_error(v, file, d, "a route must not contain a NUL character");
		out->pattern = sb_pool_strndup(pool, p, n);
	} else if (sb_toml_type_of(v) == SB_TOML_TABLE) {
		static const char *const route_keys[] = {"pattern", "zone_name", "zone_id",
							 "custom_domain", NULL};
		char *pattern = NULL, *zn = NULL, *zi = NULL;
		if ((r = sb_cfg_known_keys(v, route_keys, "a route", file, d)) < 0 ||
		    (r = sb_cfg_string_req(v, "pattern", "the route's host/path pattern", pool,
					   file, &pattern, d)) < 0 ||
		    (r = sb_cfg_string(v, "zone_name", pool, file, &zn, d)) < 0 ||
		    (r = sb_cfg_string(v, "zone_id", pool, file, &zi, d)) < 0 ||
		    (r = sb_cfg_bool(v, "custom_domain", file, &out->custom_domain, d)) < 0)
			return r;
		out->pattern = pattern;
		out->zone_name = zn;
		out->zone_id = zi;
	} else {
		return sb_cfg_error(
		    v, file, d,
		    "a route must be a string or a table { pattern = \"host/path\", "
		    "custom_domain = true|false, zone_name = \"...\" }");
	}
	if (!out->pattern[0])
		return sb_cfg_error(v, file, d, "route pattern is empty");
	if (out->zone_name && !in_zone(out->pattern, out->zone_name))
		return sb_cfg_error(
		    v, file, d,
		    "route \"%s\" is not in its zone_name \"%s\" (Cloudflare refuses "
		    "a route outside its zone)",
		    out->pattern, out->zone_name);
	if (out->custom_domain) {
		/* a scheme is allowed and ignored, as in any route (docs/routing.md) */
		const char *h = out->pattern + sb_http_scheme_len(out->pattern);
		const char *slash = strchr(h, '/');
		size_t hl = slash ? (size_t)(slash - h) : strlen(h);
		if (memchr(h, '*', hl))
			return sb_cfg_error(
			    v, file, d,
			    "custom domain \"%s\": Wildcard operators (*) are not allowed in "
			    "Custom "
			    "Domains; use a route instead (custom_domain = false, or a plain "
			    "pattern string)",
			    out->pattern);
		/* wrangler accepts a bare host; the plan writes the host plus "slash star", which
		 * means the same thing for a custom domain (it owns the whole host). */
		if (slash && strcmp(slash, "/*") != 0 && strcmp(slash, "/") != 0)
			return sb_cfg_error(
			    v, file, d,
			    "custom domain \"%s\": Paths are not allowed in Custom "
			    "Domains (only \"/\" or \"/*\"); use a route for a path",
			    out->pattern);
	}
	return 0;
}

static int load_routes(const sb_toml_value *sec, const char *file, sb_pool *pool, sb_wr_env *e,
		       sb_diag *d)
{
	const sb_toml_value *route = sb_toml_table_get(sec, "route");
	const sb_toml_value *routes = sb_toml_table_get(sec, "routes");
	if (route && routes)
		return sb_cfg_error(routes, file, d,
				    "both 'route' and 'routes' are set; use one of them");
	if (route) {
		if (sb_toml_type_of(route) == SB_TOML_ARRAY)
			return sb_cfg_error(route, file, d,
					    "'route' is one route (a string or a table); a list of "
					    "routes is 'routes = [...]'");
		e->routes = sb_pool_alloc(pool, sizeof(*e->routes));
		e->nroutes = 1;
		e->routes_declared = true;
		return load_route(route, file, pool, &e->routes[0], d);
	}
	if (!routes)
		return 0;
	if (sb_toml_type_of(routes) != SB_TOML_ARRAY)
		return sb_cfg_error(
		    routes, file, d,
		    "'routes' must be an array of routes (routes = [\"host/path\"]; "
		    "one route may also be 'route = ...')");
	e->nroutes = sb_toml_array_len(routes);
	e->routes = sb_pool_alloc(pool, (e->nroutes + 1) * sizeof(*e->routes));
	e->routes_declared = true;
	for (size_t i = 0; i < e->nroutes; i++) {
		int r = load_route(sb_toml_array_at(routes, i), file, pool, &e->routes[i], d);
		if (r < 0)
			return r;
	}
	return 0;
}

static int load_section(const sb_toml_value *sec, bool top, const char *file, sb_pool *pool,
			sb_wr_env *e, sb_diag *d)
{
	int r;
	char *name = NULL, *main_ = NULL, *cdate = NULL;
	if ((r = near_misses(sec, top, file, d)) < 0 ||
	    (r = sb_cfg_string(sec, "name", pool, file, &name, d)) < 0 ||
	    (r = sb_cfg_string(sec, "main", pool, file, &main_, d)) < 0 ||
	    (r = sb_cfg_string(sec, "compatibility_date", pool, file, &cdate, d)) < 0 ||
	    (r = sb_cfg_strings(sec, "compatibility_flags", pool, file, &e->compatibility_flags,
				&e->ncompatibility_flags, d)) < 0 ||
	    (r = sb_cfg_bool(sec, "workers_dev", file, &e->workers_dev, d)) < 0 ||
	    (r = load_vars(sec, file, pool, e, d)) < 0 ||
	    (r = load_routes(sec, file, pool, e, d)) < 0)
		return r;
	e->name = name;
	e->name_declared = name != NULL;
	e->main = main_;
	e->compatibility_date = cdate;
	e->line = sb_toml_line(sec);
	e->col = sb_toml_col(sec);
	if (name) {
		const sb_toml_value *nv = sb_toml_table_get(sec, "name");
		e->name_line = sb_toml_line(nv);
		e->name_col = sb_toml_col(nv);
	}
	return 0;
}

int sb_wrangler_name_check(const sb_wrangler *w, const sb_wr_env *e, sb_diag *d)
{
	const char *why = name_problem(e->name);
	if (!why)
		return 0;
	bool show = printable(e->name);
	if (e->name_declared)
		return sb_diag_setc(d, SB_EINVAL, w->file, e->name_line, e->name_col,
				    "Worker name%s%s%s %s", show ? " \"" : "", show ? e->name : "",
				    show ? "\"" : "", why);
	return sb_diag_setc(d, SB_EINVAL, w->file, e->line, e->col,
			    "the Worker name [env.%s] gets from the top-level one%s%s%s %s; give "
			    "it a 'name'",
			    e->env && printable(e->env) ? e->env : "?", show ? ", \"" : "",
			    show ? e->name : "", show ? "\"," : "", why);
}

int sb_wrangler_load(const sb_toml_value *doc, const char *file, sb_pool *pool, sb_wrangler *out,
		     sb_diag *d)
{
	int r;
	memset(out, 0, sizeof(*out));
	out->file = sb_pool_strdup(pool, file);
	if ((r = load_section(doc, true, file, pool, &out->top, d)) < 0)
		return r;
	if (!out->top.name)
		return sb_cfg_error(doc, file, d, "missing top-level 'name' (the Worker's name)");
	/* the service's own name: always used (previews derive from it) */
	if ((r = sb_wrangler_name_check(out, &out->top, d)) < 0)
		return r;

	const sb_toml_value *envs;
	if ((r = sb_cfg_table(doc, "env", file, &envs, d)) < 0)
		return r;
	if (!envs)
		return 0;
	out->nenvs = sb_toml_table_len(envs);
	out->envs = sb_pool_alloc(pool, (out->nenvs + 1) * sizeof(*out->envs));
	for (size_t i = 0; i < out->nenvs; i++) {
		const char *ename = sb_toml_table_key(envs, i, NULL);
		const sb_toml_value *sec = sb_toml_table_value(envs, i);
		sb_wr_env *e = &out->envs[i];
		if (sb_toml_type_of(sec) != SB_TOML_TABLE)
			return sb_cfg_error(sec, file, d, "'env.%s' must be a table", ename);
		if ((r = load_section(sec, false, file, pool, e, d)) < 0)
			return r;
		e->env = sb_pool_strdup(pool, ename);
		/* Inheritable keys, as wrangler documents them. */
		if (!e->name)
			e->name = sb_pool_printf(pool, "%s-%s", out->top.name, ename);
		if (!e->main)
			e->main = out->top.main;
		if (!e->compatibility_date)
			e->compatibility_date = out->top.compatibility_date;
		if (!sb_toml_table_get(sec, "compatibility_flags")) {
			e->compatibility_flags = out->top.compatibility_flags;
			e->ncompatibility_flags = out->top.ncompatibility_flags;
		}
		if (!sb_toml_table_get(sec, "workers_dev"))
			e->workers_dev = out->top.workers_dev;
		if (!e->routes_declared) {
			e->routes = out->top.routes;
			e->nroutes = out->top.nroutes;
		}
		/* vars: not inherited. */
	}
	return 0;
}

const sb_wr_env *sb_wrangler_env(const sb_wrangler *w, const char *env)
{
	if (!env)
		return &w->top;
	for (size_t i = 0; i < w->nenvs; i++)
		if (strcmp(w->envs[i].env, env) == 0)
			return &w->envs[i];
	return NULL;
}

const sb_wr_var *sb_wrangler_var(const sb_wr_env *e, const char *key)
{
	for (size_t i = 0; i < e->nvars; i++)
		if (strcmp(e->vars[i].key, key) == 0)
			return &e->vars[i];
	return NULL;
}
