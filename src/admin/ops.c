/* Changes to the deployed model as store transactions (see ops.h). The CLI
 * and the server's admin API both run them through sb_ops_run, so a change
 * is checked the same way wherever it is made. */
#include "admin/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns/zone.h"
#include "model/model.h"
#include "route/check.h"
#include "route/route.h"

int sb_ops_parse_duration(const char *s, int64_t *secs)
{
	uint64_t v;
	size_t n = strlen(s);
	int64_t mul = 1;
	if (n == 0)
		return SB_EINVAL;
	switch (s[n - 1]) {
	case 's':
		mul = 1;
		n--;
		break;
	case 'm':
		mul = 60;
		n--;
		break;
	case 'h':
		mul = 3600;
		n--;
		break;
	case 'd':
		mul = 86400;
		n--;
		break;
	case 'w':
		mul = 7 * 86400;
		n--;
		break;
	default: return SB_EINVAL; /* a unit is required: is "7" seconds or days? */
	}
	if (n == 0 || sb_parse_u64(s, n, (uint64_t)SB_OPS_TTL_MAX, &v) < 0)
		return SB_EINVAL;
	if ((int64_t)v > SB_OPS_TTL_MAX / mul)
		return SB_EINVAL;
	*secs = (int64_t)v * mul;
	return 0;
}

int sb_ops_current(sb_store *st, sb_live *out, int64_t *version, sb_diag *d)
{
	char *json = NULL;
	int r = sb_store_state_at(st, 0, version, &json, d);
	if (r == 0)
		r = sb_live_parse(json, out, d);
	free(json);
	return r;
}

/* ---- reading the op ------------------------------------------------------ */

static const char *op_str(json_t *op, const char *key)
{
	json_t *v = json_object_get(op, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int op_strv(json_t *op, const char *key, char ***out, size_t *n, sb_diag *d)
{
	json_t *a = json_object_get(op, key);
	*out = NULL;
	*n = 0;
	if (!a || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return sb_diag_set(d, "", 0, 0, "%s: expected a list of strings", key);
	size_t len = json_array_size(a);
	char **v = sb_xcalloc(len + 1, sizeof(char *));
	*out = v;
	for (size_t i = 0; i < len; i++) {
		json_t *s = json_array_get(a, i);
		if (!json_is_string(s))
			return sb_diag_set(d, "", 0, 0, "%s: expected a list of strings", key);
		v[i] = sb_xstrdup(json_string_value(s));
		*n = i + 1;
	}
	return 0;
}

/*
 * The keys an op may have, and their types: a key that is misspelt, or a
 * value of another type ("dry_run": "true", "env": ["preview"]), would
 * otherwise be taken as absent, and the op would run as a real change, or
 * on production.
 */
static const char *const common_keys[] = {"op", "cmdline", "dry_run", NULL};
static const struct {
	const char *op;
	const char *keys[9];
} op_keys[] = {
    {"deploy", {"env", "name", "pr", "vars", "routes", "domains", "upstream", "command", NULL}},
    {"delete", {"name", NULL}},
    {"preview-create", {"pr", "ttl", NULL}},
    {"preview-delete", {"pr", NULL}},
    {"rollback", {"version", NULL}},
    {"expire", {NULL}},
};

static bool key_in(const char *const *keys, const char *key)
{
	for (size_t i = 0; keys[i]; i++)
		if (strcmp(keys[i], key) == 0)
			return true;
	return false;
}

static int op_check(json_t *op, const char *kind, sb_diag *d)
{
	const char *const *keys = NULL;
	for (size_t i = 0; i < SB_ARRAY_LEN(op_keys); i++)
		if (strcmp(op_keys[i].op, kind) == 0)
			keys = op_keys[i].keys;
	if (!keys)
		return sb_diag_set(d, "", 0, 0,
				   "unknown op \"%s\" (expected deploy, delete, preview-create, "
				   "preview-delete, rollback or expire)",
				   kind);
	const char *key;
	json_t *v;
	json_object_foreach(op, key, v)
	{
		if (!key_in(common_keys, key) && !key_in(keys, key))
			return sb_diag_set(d, "", 0, 0, "op %s: unknown key \"%s\"", kind, key);
		bool str = strcmp(key, "cmdline") == 0 || strcmp(key, "env") == 0 ||
			   strcmp(key, "name") == 0 || strcmp(key, "upstream") == 0;
		if (str && !json_is_string(v))
			return sb_diag_set(d, "", 0, 0, "op %s: %s: expected a string", kind, key);
		if (strcmp(key, "dry_run") == 0 && !json_is_boolean(v))
			return sb_diag_set(d, "", 0, 0, "op %s: dry_run: expected true or false",
					   kind);
	}
	return 0;
}

static int op_pr(json_t *op, uint32_t *pr, sb_diag *d)
{
	json_t *v = json_object_get(op, "pr");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > (json_int_t)SB_PR_MAX)
		return sb_diag_set(d, "", 0, 0, "pr: expected a pull request number (1 to %u)",
				   SB_PR_MAX);
	*pr = (uint32_t)json_integer_value(v);
	return 0;
}

/* ---- checking a state ---------------------------------------------------- */

typedef struct built {
	sb_model *model;
	sb_route_table *routes;
} built;

static void built_free(built *b)
{
	sb_route_free(b->routes);
	sb_model_free(b->model);
	memset(b, 0, sizeof(*b));
}

/* Model and route table for decl + live, and the checks every change must
 * pass: no two deployments on one host and path, the consistency check,
 * and a DNS zone that builds (static records against the new hosts). */
static int check_state(sb_store *st, const sb_decl *decl, const sb_live *live, bool consistency,
		       built *out, sb_diag *d)
{
	int r;
	sb_tenants *tenants = NULL;
	sb_dns_zones *z = NULL;
	sb_violation *v = NULL;
	/* the naming rule stays on here, as in `switchboard check`: the sample
	 * preview stands for every future one */
	sb_route_options ro = {.preview_rule = true};
	memset(out, 0, sizeof(*out));
	if ((r = sb_model_build_live(decl, live, &out->model, d)) < 0 ||
	    (r = sb_route_compile(out->model, &ro, &out->routes, d)) < 0)
		goto out;
	if ((r = sb_dns_build_decl(decl, out->model, out->routes, NULL, 0, 1, &z, d)) < 0)
		goto out;
	if (consistency) {
		/* URL vars may name a tenant's host: registered tenants count */
		if ((r = sb_store_tenants_load(st, decl, &tenants, d)) < 0)
			goto out;
		size_t n = sb_check_run(out->model, out->routes, tenants, 1, &v);
		if (n) {
			/* not "run `switchboard check`": it checks what is
			 * recorded, and this change is not, so it says ok */
			r = sb_diag_setc(d, SB_EINVAL, v[0].file, v[0].line, v[0].col,
					 n == 1 ? "%s"
						: "%s (and %zu more problem%s of the consistency "
						  "check with this change)",
					 v[0].msg, n - 1, n == 2 ? "" : "s");
			goto out;
		}
	}
out:
	free(v);
	sb_tenants_free(tenants);
	sb_dns_free(z);
	if (r < 0)
		built_free(out);
	return r;
}

/* ---- describing the result ----------------------------------------------- */

static json_t *describe(const sb_model *m, const sb_deployment *dp)
{
	json_t *o = json_object(), *hosts = json_array(), *vars = json_object();
	char ub[1024];
	json_object_set_new(o, "name", json_string(dp->name));
	json_object_set_new(o, "service", json_string(m->services[dp->service].name));
	json_object_set_new(o, "environment", json_string(sb_env_name(dp->env)));
	json_object_set_new(o, "pr", json_integer(dp->pr));
	const char *ut = NULL;
	if (dp->upstream && dp->upstream->url) {
		ut = dp->upstream->url;
	} else if (dp->upstream && dp->upstream->argv) {
		size_t o2 = (size_t)snprintf(ub, sizeof(ub), "command:");
		for (size_t i = 0; i < dp->upstream->argc && o2 < sizeof(ub); i++)
			o2 += (size_t)snprintf(ub + o2, sizeof(ub) - o2, " %s",
					       dp->upstream->argv[i]);
		ut = ub;
	}
	json_object_set_new(o, "upstream", ut ? json_string(ut) : json_null());
	for (size_t i = 0; i < dp->nroutes; i++)
		json_array_append_new(hosts, json_string(dp->routes[i].pattern));
	json_object_set_new(o, "routes", hosts);
	for (size_t i = 0; i < dp->nvars; i++)
		json_object_set_new(vars, dp->vars[i].key, json_string(dp->vars[i].value));
	json_object_set_new(o, "vars", vars);
	return o;
}

static void describe_pr(json_t *arr, const sb_model *m, uint32_t pr)
{
	for (size_t i = 0; i < m->ndeployments; i++)
		if (m->deployments[i].env == SB_ENV_PREVIEW && m->deployments[i].pr == pr)
			json_array_append_new(arr, describe(m, &m->deployments[i]));
}

/* ---- the ops --------------------------------------------------------------- */

/* The deployment a deploy names: a service (wrangler's name) in env, or a
 * deployment name. */
static int deploy_target(const sb_model *m, const char *name, const char *env_s, uint32_t pr,
			 const char **out, sb_diag *d)
{
	sb_env env = SB_ENV_PRODUCTION;
	if (env_s && sb_env_parse(env_s, &env) < 0)
		return sb_diag_set(d, "", 0, 0, "--env %s: expected production, staging or preview",
				   env_s);
	if (!name) {
		if (m->nservices != 1) {
			char list[512];
			size_t o = 0;
			list[0] = '\0';
			for (size_t i = 0; i < m->nservices && o < sizeof(list); i++)
				o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
						      i ? ", " : "", m->services[i].name);
			return sb_diag_set(
			    d, "", 0, 0,
			    "--name is required: the declaration has %zu services (%s)",
			    m->nservices, list);
		}
		name = m->services[0].name;
	}
	ssize_t s = sb_model_service(m, name);
	for (size_t i = 0; s >= 0 && i < m->ndeployments; i++) {
		const sb_deployment *dp = &m->deployments[i];
		if (dp->service == (size_t)s && dp->env == env &&
		    (env != SB_ENV_PREVIEW || dp->pr == pr)) {
			*out = dp->name;
			return 0;
		}
	}
	if (s >= 0 && env == SB_ENV_PREVIEW && pr == 0)
		return sb_diag_set(d, "", 0, 0, "a preview deploy needs its pr (which preview)");
	if (s >= 0 && env == SB_ENV_PREVIEW)
		return sb_diag_setc(d, SB_ENOENT, "", 0, 0,
				    "service %s has no live preview %u: run `switchboard preview "
				    "create --pr %u` first",
				    name, pr, pr);
	ssize_t k = sb_model_deployment(m, name);
	if (k < 0)
		return sb_diag_setc(d, SB_ENOENT, "", 0, 0,
				    "--name %s: no service or deployment of that name (see "
				    "`switchboard routes`)",
				    name);
	if (env_s && m->deployments[k].env != env)
		return sb_diag_set(d, "", 0, 0, "deployment %s is a %s deployment, not %s", name,
				   sb_env_name(m->deployments[k].env), env_s);
	*out = m->deployments[k].name;
	return 0;
}

static int op_deploy(const sb_decl *decl, json_t *op, sb_live *live, char *summary, size_t ssz,
		     char **touched, sb_diag *d)
{
	int r;
	built cur = {0};
	sb_live_deploy dep = {0};
	const char *target = NULL;
	uint32_t pr = 0;
	if (json_object_get(op, "pr") && (r = op_pr(op, &pr, d)) < 0)
		return r;
	/* a pr names a preview: without env "preview" the deploy would go to
	 * production (or staging) with the pr ignored */
	if (pr && (!op_str(op, "env") || strcmp(op_str(op, "env"), "preview") != 0))
		return sb_diag_set(
		    d, "", 0, 0,
		    "pr: only a preview deploy (env \"preview\") names a pull request");
	if ((r = sb_model_build_live(decl, live, &cur.model, d)) < 0)
		goto out;
	if ((r = deploy_target(cur.model, op_str(op, "name"), op_str(op, "env"), pr, &target, d)) <
	    0)
		goto out;
	dep.name = sb_xstrdup(target);
	dep.deployed_at = (int64_t)time(NULL);
	json_t *vars = json_object_get(op, "vars");
	if (vars && !json_is_object(vars)) {
		r = sb_diag_set(d, "", 0, 0, "vars: expected an object");
		goto out;
	}
	size_t nv = json_object_size(vars), k = 0;
	dep.var_keys = sb_xcalloc(nv + 1, sizeof(char *));
	dep.var_values = sb_xcalloc(nv + 1, sizeof(char *));
	const char *key;
	json_t *val;
	json_object_foreach(vars, key, val)
	{
		if (!json_is_string(val)) {
			r = sb_diag_set(d, "", 0, 0, "vars: %s is not a string", key);
			goto out;
		}
		if (!sb_var_key_ok(key)) {
			r = sb_diag_set(
			    d, "", 0, 0,
			    "vars: \"%s\" cannot be an environment variable name (empty, "
			    "'=' or a control character)",
			    key);
			goto out;
		}
		dep.var_keys[k] = sb_xstrdup(key);
		dep.var_values[k] = sb_xstrdup(json_string_value(val));
		dep.nvars = ++k;
	}
	if ((r = op_strv(op, "routes", &dep.routes, &dep.nroutes, d)) < 0 ||
	    (r = op_strv(op, "domains", &dep.domains, &dep.ndomains, d)) < 0 ||
	    (r = op_strv(op, "command", &dep.argv, &dep.argc, d)) < 0)
		goto out;
	/* as in the declaration: a command names a program; an empty list is
	 * not taken as no command (the declared upstream would stay) */
	json_t *cmd = json_object_get(op, "command");
	if (cmd && !json_is_null(cmd) && (!dep.argc || !dep.argv[0][0])) {
		r = sb_diag_set(d, "", 0, 0,
				"command: expected the program to start and its arguments, the "
				"program not empty");
		goto out;
	}
	const char *up = op_str(op, "upstream");
	if (up && dep.argc) {
		r = sb_diag_set(d, "", 0, 0, "give an upstream URL or a command, not both");
		goto out;
	}
	if (up) {
		const char *why;
		if (sb_url_check_upstream(up, &why) < 0) {
			r = sb_diag_set(d, "", 0, 0, "--upstream \"%s\": %s", up, why);
			goto out;
		}
		dep.upstream_url = sb_xstrdup(up);
	}
	sb_live_deploy_put(live, &dep);
	snprintf(summary, ssz, "deployed %s (%zu var%s, %zu route%s, %zu domain%s%s)", target,
		 dep.nvars, dep.nvars == 1 ? "" : "s", dep.nroutes, dep.nroutes == 1 ? "" : "s",
		 dep.ndomains, dep.ndomains == 1 ? "" : "s",
		 up	    ? ", upstream set"
		 : dep.argc ? ", command set"
			    : "");
	*touched = sb_xstrdup(target);
out:
	sb_live_deploy_clear(&dep);
	built_free(&cur);
	return r;
}

static int op_delete(const sb_decl *decl, json_t *op, sb_live *live, char *summary, size_t ssz,
		     sb_diag *d)
{
	const char *name = op_str(op, "name");
	if (!name)
		return sb_diag_set(d, "", 0, 0, "delete: expected a deployment name");
	sb_model *m = NULL;
	int r = sb_model_build_live(decl, live, &m, d);
	if (r < 0)
		return r;
	ssize_t k = sb_model_deployment(m, name);
	if (k < 0) {
		r = sb_diag_setc(d, SB_ENOENT, "", 0, 0,
				 "no deployment %s (see `switchboard routes` or `switchboard "
				 "preview list`)",
				 name);
	} else {
		/* a preview's other services stay: only this one goes */
		r = sb_live_delete(live, name);
	}
	if (r == SB_EEXIST)
		sb_diag_setc(d, SB_EEXIST, "", 0, 0, "deployment %s is already deleted", name);
	else if (r == 0)
		snprintf(summary, ssz, "deleted %s", name);
	sb_model_free(m);
	return r;
}

/* The newest version before the current state's that carries a state. */
struct prev_ctx {
	int seen;
	int64_t want;
};

static int find_prev(void *ctx, const sb_version_rec *v)
{
	struct prev_ctx *p = ctx;
	if (!v->has_state)
		return 0;
	if (++p->seen == 2) {
		p->want = v->id;
		return 1;
	}
	return 0;
}

static int op_rollback(sb_store *st, json_t *op, sb_live *live, char *summary, size_t ssz,
		       sb_diag *d)
{
	json_t *v = json_object_get(op, "version");
	int64_t want = json_is_integer(v) ? json_integer_value(v) : 0;
	int r;
	if (v && !json_is_null(v) && (!json_is_integer(v) || want < 0))
		return sb_diag_set(d, "", 0, 0, "version: expected a version number");
	if (want == 0) {
		struct prev_ctx p = {0, 0};
		if ((r = sb_store_version_list(st, 0, find_prev, &p, d)) < 0)
			return r;
		if (p.seen == 0)
			return sb_diag_setc(d, SB_ENOENT, "", 0, 0,
					    "nothing to roll back: no version changed deployments");
		if (!p.want) {
			/* one change so far: before it, the declaration alone */
			sb_live_clear(live);
			snprintf(summary, ssz, "rolled back to the declaration alone");
			return 0;
		}
		want = p.want;
	}
	char *json = NULL;
	int64_t got;
	if ((r = sb_store_state_at(st, want, &got, &json, d)) < 0)
		return r;
	sb_live old;
	r = sb_live_parse(json, &old, d);
	free(json);
	if (r < 0)
		return r;
	sb_live_clear(live);
	*live = old;
	snprintf(summary, ssz, "rolled back to version %lld", (long long)want);
	return 0;
}

int sb_ops_run(sb_store *st, const sb_decl *decl, json_t *op, sb_ops_prepare_fn prepare, void *ctx,
	       json_t **result, sb_diag *d)
{
	int r;
	sb_live live = {0};
	built b = {0};
	char summary[512] = "";
	char *touched = NULL, *state = NULL;
	int64_t version = 0, cur_version = 0;
	uint32_t pr = 0;
	bool changed = true, consistency = true;
	json_t *deps = json_array();
	*result = NULL;
	const char *kind = op_str(op, "op");
	const char *command = op_str(op, "cmdline");
	bool dry_run = json_is_true(json_object_get(op, "dry_run"));
	if (!kind) {
		r = sb_diag_set(d, "", 0, 0, "not an op: expected {\"op\": ...}");
		goto out;
	}
	if ((r = op_check(op, kind, d)) < 0)
		goto out;
	if ((r = sb_store_begin(st, d)) < 0)
		goto out;
	if ((r = sb_ops_current(st, &live, &cur_version, d)) < 0)
		goto out;
	if (strcmp(kind, "deploy") == 0) {
		r = op_deploy(decl, op, &live, summary, sizeof(summary), &touched, d);
	} else if (strcmp(kind, "delete") == 0) {
		r = op_delete(decl, op, &live, summary, sizeof(summary), d);
		consistency = false; /* taking something away is always allowed */
	} else if (strcmp(kind, "preview-create") == 0) {
		json_t *ttl = json_object_get(op, "ttl");
		if ((r = op_pr(op, &pr, d)) < 0)
			goto out;
		if (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < 0 ||
			    json_integer_value(ttl) > SB_OPS_TTL_MAX)) {
			r = sb_diag_set(d, "", 0, 0,
					"ttl: expected seconds, at most %lld (0: never expires)",
					(long long)SB_OPS_TTL_MAX);
			goto out;
		}
		bool added = sb_live_preview_put(&live, pr, (int64_t)time(NULL),
						 ttl ? json_integer_value(ttl) : 0) == 1;
		snprintf(summary, sizeof(summary), "%s preview %u", added ? "created" : "renewed",
			 pr);
	} else if (strcmp(kind, "preview-delete") == 0) {
		if ((r = op_pr(op, &pr, d)) < 0)
			goto out;
		if ((r = sb_live_preview_remove(&live, pr)) < 0) {
			sb_diag_setc(d, r, "", 0, 0,
				     "no live preview %u (see `switchboard preview list`)", pr);
			goto out;
		}
		/* deploys and deletes of its deployments go with it, so that a
		 * preview created again for the same PR starts afresh */
		char suffix[32];
		int sl = snprintf(suffix, sizeof(suffix), "-preview-%u", pr);
		for (size_t pass = 0; pass < 2; pass++) {
			size_t n = pass ? live.ndeleted : live.ndeploys;
			for (size_t i = n; i-- > 0;) {
				const char *nm = pass ? live.deleted[i] : live.deploys[i].name;
				size_t nl = strlen(nm);
				if (nl > (size_t)sl && strcmp(nm + nl - (size_t)sl, suffix) == 0) {
					char *c = sb_xstrdup(nm);
					sb_live_forget(&live, c);
					free(c);
				}
			}
		}
		snprintf(summary, sizeof(summary), "deleted preview %u", pr);
		consistency = false;
		pr = 0;
	} else if (strcmp(kind, "rollback") == 0) {
		r = op_rollback(st, op, &live, summary, sizeof(summary), d);
	} else if (strcmp(kind, "expire") == 0) {
		uint32_t gone[64];
		size_t n = sb_live_expire(&live, (int64_t)time(NULL), gone, SB_ARRAY_LEN(gone));
		changed = n > 0;
		size_t o = (size_t)snprintf(summary, sizeof(summary), "expired preview%s",
					    n == 1 ? "" : "s");
		for (size_t i = 0; i < n && i < SB_ARRAY_LEN(gone) && o < sizeof(summary); i++)
			o += (size_t)snprintf(summary + o, sizeof(summary) - o, " %u", gone[i]);
		consistency = false;
	} else {
		r = sb_diag_set(d, "", 0, 0, "unknown op \"%s\"", kind);
	}
	if (r < 0 || !changed)
		goto out;
	if ((r = check_state(st, decl, &live, consistency, &b, d)) < 0)
		goto out;
	if (pr)
		describe_pr(deps, b.model, pr);
	if (touched) {
		ssize_t k = sb_model_deployment(b.model, touched);
		if (k >= 0)
			json_array_append_new(deps, describe(b.model, &b.model->deployments[k]));
	}
	/* a dry run is built too (upstream addresses resolved, DNS): it
	 * passes only where the change would, and then commits nothing */
	if (prepare && (r = prepare(ctx, &live, d)) < 0)
		goto out;
	if (dry_run)
		goto out;
	state = sb_live_to_json(&live);
	if ((r = sb_store_version_add(st, command ? command : kind, summary, state, &version, d)) <
	    0)
		goto out;
	r = sb_store_commit(st, d);
	if (r < 0)
		version = 0;
out:
	sb_store_rollback(st);
	if (r == 0) {
		*result =
		    json_pack("{s:I,s:b,s:s,s:b,s:O}", "version", (json_int_t)version, "changed",
			      changed && !dry_run, "summary", changed ? summary : "nothing to do",
			      "dry_run", dry_run, "deployments", deps);
	}
	json_decref(deps);
	free(state);
	free(touched);
	built_free(&b);
	sb_live_clear(&live);
	return r;
}

/* ---- listings (versions, previews) ------------------------------------- */

static int version_json(void *ctx, const sb_version_rec *v)
{
	json_array_append_new(ctx, json_pack("{s:I,s:I,s:s,s:s,s:b}", "version", (json_int_t)v->id,
					     "created_at", (json_int_t)v->created_at, "command",
					     v->command, "summary", v->summary, "deploys",
					     v->has_state));
	return 0;
}

json_t *sb_ops_versions_json(sb_store *st, int64_t limit, sb_diag *d)
{
	json_t *arr = json_array();
	if (st && sb_store_version_list(st, limit, version_json, arr, d) < 0) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

json_t *sb_ops_previews_json(const sb_live *live, const sb_model *m)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < live->npreviews; i++) {
		const sb_live_preview *p = &live->previews[i];
		json_t *hosts = json_array(), *deps = json_array();
		for (size_t k = 0; k < m->ndeployments; k++) {
			const sb_deployment *dp = &m->deployments[k];
			if (dp->env != SB_ENV_PREVIEW || dp->pr != p->pr || !dp->nroutes)
				continue;
			json_array_append_new(deps, json_string(dp->name));
			for (size_t j = 0; j < dp->nroutes; j++)
				json_array_append_new(hosts, json_string(dp->routes[j].host));
		}
		json_array_append_new(
		    arr, json_pack("{s:I,s:I,s:o,s:o,s:o}", "pr", (json_int_t)p->pr, "created_at",
				   (json_int_t)p->created_at, "expires_at",
				   p->expires_at ? json_integer(p->expires_at) : json_null(),
				   "deployments", deps, "hosts", hosts));
	}
	return arr;
}
