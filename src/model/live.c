/* The live state and its JSON form (see live.h). Kept sorted, so that the
 * document of a state is always the same bytes and versions compare. */
#include "model/live.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static char **strv_copy(char *const *v, size_t n)
{
	char **out = sb_xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		out[i] = sb_xstrdup(v[i]);
	return out;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void sb_live_deploy_clear(sb_live_deploy *dep)
{
	free(dep->name);
	strv_free(dep->var_keys, dep->nvars);
	strv_free(dep->var_values, dep->nvars);
	strv_free(dep->routes, dep->nroutes);
	strv_free(dep->domains, dep->ndomains);
	free(dep->upstream_url);
	strv_free(dep->argv, dep->argc);
	memset(dep, 0, sizeof(*dep));
}

static void deploy_copy(sb_live_deploy *dst, const sb_live_deploy *src)
{
	*dst = (sb_live_deploy){
	    .name = sb_xstrdup(src->name),
	    .var_keys = strv_copy(src->var_keys, src->nvars),
	    .var_values = strv_copy(src->var_values, src->nvars),
	    .nvars = src->nvars,
	    .routes = strv_copy(src->routes, src->nroutes),
	    .nroutes = src->nroutes,
	    .domains = strv_copy(src->domains, src->ndomains),
	    .ndomains = src->ndomains,
	    .upstream_url = src->upstream_url ? sb_xstrdup(src->upstream_url) : NULL,
	    .argv = src->argc ? strv_copy(src->argv, src->argc) : NULL,
	    .argc = src->argc,
	    .deployed_at = src->deployed_at,
	};
}

void sb_live_clear(sb_live *l)
{
	free(l->previews);
	for (size_t i = 0; i < l->ndeploys; i++)
		sb_live_deploy_clear(&l->deploys[i]);
	free(l->deploys);
	strv_free(l->deleted, l->ndeleted);
	memset(l, 0, sizeof(*l));
}

void sb_live_copy(sb_live *dst, const sb_live *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->previews = sb_xcalloc(src->npreviews + 1, sizeof(*dst->previews));
	if (src->npreviews)
		memcpy(dst->previews, src->previews, src->npreviews * sizeof(*dst->previews));
	dst->npreviews = src->npreviews;
	dst->deploys = sb_xcalloc(src->ndeploys + 1, sizeof(*dst->deploys));
	for (size_t i = 0; i < src->ndeploys; i++)
		deploy_copy(&dst->deploys[i], &src->deploys[i]);
	dst->ndeploys = src->ndeploys;
	dst->deleted = strv_copy(src->deleted, src->ndeleted);
	dst->ndeleted = src->ndeleted;
}

/* ---- previews ---------------------------------------------------------- */

const sb_live_preview *sb_live_preview_find(const sb_live *l, uint32_t pr)
{
	for (size_t i = 0; i < l->npreviews; i++)
		if (l->previews[i].pr == pr)
			return &l->previews[i];
	return NULL;
}

int sb_live_preview_put(sb_live *l, uint32_t pr, int64_t now, int64_t ttl_s)
{
	/* saturating: a ttl beyond the clock's range never expires */
	int64_t exp = 0;
	if (ttl_s > 0 && __builtin_add_overflow(now, ttl_s, &exp))
		exp = 0;
	for (size_t i = 0; i < l->npreviews; i++)
		if (l->previews[i].pr == pr) {
			l->previews[i].expires_at = exp;
			return 0;
		}
	size_t at = 0;
	while (at < l->npreviews && l->previews[at].pr < pr)
		at++;
	l->previews = sb_xrealloc(l->previews, (l->npreviews + 1) * sizeof(*l->previews));
	memmove(&l->previews[at + 1], &l->previews[at], (l->npreviews - at) * sizeof(*l->previews));
	l->previews[at] = (sb_live_preview){pr, now, exp};
	l->npreviews++;
	return 1;
}

int sb_live_preview_remove(sb_live *l, uint32_t pr)
{
	for (size_t i = 0; i < l->npreviews; i++)
		if (l->previews[i].pr == pr) {
			memmove(&l->previews[i], &l->previews[i + 1],
				(l->npreviews - i - 1) * sizeof(*l->previews));
			l->npreviews--;
			return 0;
		}
	return SB_ENOENT;
}

size_t sb_live_expire(sb_live *l, int64_t now, uint32_t *prs, size_t max)
{
	size_t n = 0, k = 0;
	for (size_t i = 0; i < l->npreviews; i++) {
		const sb_live_preview *p = &l->previews[i];
		if (p->expires_at && p->expires_at <= now) {
			if (n < max)
				prs[n] = p->pr;
			n++;
		} else {
			l->previews[k++] = *p;
		}
	}
	l->npreviews = k;
	return n;
}

/* ---- deploys and deletes ------------------------------------------------ */

const sb_live_deploy *sb_live_deploy_find(const sb_live *l, const char *name)
{
	for (size_t i = 0; i < l->ndeploys; i++)
		if (strcmp(l->deploys[i].name, name) == 0)
			return &l->deploys[i];
	return NULL;
}

bool sb_live_is_deleted(const sb_live *l, const char *name)
{
	for (size_t i = 0; i < l->ndeleted; i++)
		if (strcmp(l->deleted[i], name) == 0)
			return true;
	return false;
}

static void undelete(sb_live *l, const char *name)
{
	for (size_t i = 0; i < l->ndeleted; i++)
		if (strcmp(l->deleted[i], name) == 0) {
			free(l->deleted[i]);
			memmove(&l->deleted[i], &l->deleted[i + 1],
				(l->ndeleted - i - 1) * sizeof(char *));
			l->ndeleted--;
			return;
		}
}

static void drop_deploy(sb_live *l, const char *name)
{
	for (size_t i = 0; i < l->ndeploys; i++)
		if (strcmp(l->deploys[i].name, name) == 0) {
			sb_live_deploy_clear(&l->deploys[i]);
			memmove(&l->deploys[i], &l->deploys[i + 1],
				(l->ndeploys - i - 1) * sizeof(*l->deploys));
			l->ndeploys--;
			return;
		}
}

void sb_live_deploy_put(sb_live *l, const sb_live_deploy *dep)
{
	drop_deploy(l, dep->name);
	undelete(l, dep->name);
	size_t at = 0;
	while (at < l->ndeploys && strcmp(l->deploys[at].name, dep->name) < 0)
		at++;
	l->deploys = sb_xrealloc(l->deploys, (l->ndeploys + 1) * sizeof(*l->deploys));
	memmove(&l->deploys[at + 1], &l->deploys[at], (l->ndeploys - at) * sizeof(*l->deploys));
	deploy_copy(&l->deploys[at], dep);
	l->ndeploys++;
}

void sb_live_forget(sb_live *l, const char *name)
{
	drop_deploy(l, name);
	undelete(l, name);
}

int sb_live_delete(sb_live *l, const char *name)
{
	if (sb_live_is_deleted(l, name))
		return SB_EEXIST;
	drop_deploy(l, name);
	size_t at = 0;
	while (at < l->ndeleted && strcmp(l->deleted[at], name) < 0)
		at++;
	l->deleted = sb_xrealloc(l->deleted, (l->ndeleted + 2) * sizeof(char *));
	memmove(&l->deleted[at + 1], &l->deleted[at], (l->ndeleted - at) * sizeof(char *));
	l->deleted[at] = sb_xstrdup(name);
	l->ndeleted++;
	return 0;
}

/* ---- JSON -------------------------------------------------------------- */

static json_t *strv_json(char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

char *sb_live_to_json(const sb_live *l)
{
	json_t *root = json_object(), *pv = json_array(), *dv = json_array();
	for (size_t i = 0; i < l->npreviews; i++) {
		const sb_live_preview *p = &l->previews[i];
		json_array_append_new(pv, json_pack("{s:I,s:I,s:I}", "pr", (json_int_t)p->pr,
						    "created_at", (json_int_t)p->created_at,
						    "expires_at", (json_int_t)p->expires_at));
	}
	for (size_t i = 0; i < l->ndeploys; i++) {
		const sb_live_deploy *dp = &l->deploys[i];
		json_t *o = json_object(), *vars = json_object();
		json_object_set_new(o, "name", json_string(dp->name));
		for (size_t k = 0; k < dp->nvars; k++)
			json_object_set_new(vars, dp->var_keys[k], json_string(dp->var_values[k]));
		json_object_set_new(o, "vars", vars);
		json_object_set_new(o, "routes", strv_json(dp->routes, dp->nroutes));
		json_object_set_new(o, "domains", strv_json(dp->domains, dp->ndomains));
		if (dp->upstream_url)
			json_object_set_new(o, "upstream", json_string(dp->upstream_url));
		if (dp->argc)
			json_object_set_new(o, "command", strv_json(dp->argv, dp->argc));
		json_object_set_new(o, "deployed_at", json_integer(dp->deployed_at));
		json_array_append_new(dv, o);
	}
	json_object_set_new(root, "previews", pv);
	json_object_set_new(root, "deploys", dv);
	json_object_set_new(root, "deleted", strv_json(l->deleted, l->ndeleted));
	char *s = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	if (!s)
		sb_oom();
	/* jansson allocates with malloc by default, so free() releases it */
	return s;
}

static int bad(sb_diag *d, const char *what)
{
	return sb_diag_setc(d, SB_EINVAL, "", 0, 0, "live state: %s", what);
}

static int strv_parse(json_t *a, char ***out, size_t *n, sb_diag *d, const char *what)
{
	*out = NULL;
	*n = 0;
	if (!a)
		return 0;
	if (!json_is_array(a))
		return bad(d, what);
	size_t len = json_array_size(a);
	char **v = sb_xcalloc(len + 1, sizeof(char *));
	for (size_t i = 0; i < len; i++) {
		json_t *s = json_array_get(a, i);
		if (!json_is_string(s)) {
			strv_free(v, i);
			return bad(d, what);
		}
		v[i] = sb_xstrdup(json_string_value(s));
	}
	*out = v;
	*n = len;
	return 0;
}

static int deploy_parse(json_t *o, sb_live_deploy *dp, sb_diag *d)
{
	int r;
	json_t *name = json_object_get(o, "name"), *vars = json_object_get(o, "vars");
	if (!json_is_string(name))
		return bad(d, "a deploy without a name");
	dp->name = sb_xstrdup(json_string_value(name));
	dp->deployed_at = json_integer_value(json_object_get(o, "deployed_at"));
	if (vars) {
		if (!json_is_object(vars))
			return bad(d, "deploy vars are not an object");
		size_t n = json_object_size(vars), k = 0;
		dp->var_keys = sb_xcalloc(n + 1, sizeof(char *));
		dp->var_values = sb_xcalloc(n + 1, sizeof(char *));
		const char *key;
		json_t *v;
		json_object_foreach(vars, key, v)
		{
			if (!json_is_string(v))
				return bad(d, "a deploy var is not a string");
			dp->var_keys[k] = sb_xstrdup(key);
			dp->var_values[k] = sb_xstrdup(json_string_value(v));
			dp->nvars = ++k;
		}
	}
	if ((r = strv_parse(json_object_get(o, "routes"), &dp->routes, &dp->nroutes, d,
			    "deploy routes")) < 0 ||
	    (r = strv_parse(json_object_get(o, "domains"), &dp->domains, &dp->ndomains, d,
			    "deploy domains")) < 0 ||
	    (r = strv_parse(json_object_get(o, "command"), &dp->argv, &dp->argc, d,
			    "deploy command")) < 0)
		return r;
	json_t *up = json_object_get(o, "upstream");
	if (up && !json_is_string(up))
		return bad(d, "deploy upstream is not a string");
	if (up)
		dp->upstream_url = sb_xstrdup(json_string_value(up));
	return 0;
}

int sb_live_parse(const char *json, sb_live *out, sb_diag *d)
{
	int r = 0;
	memset(out, 0, sizeof(*out));
	if (!json || !*json)
		return 0;
	json_error_t err;
	json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &err), *a;
	if (!root || !json_is_object(root)) {
		r = root ? bad(d, "not an object")
			 : sb_diag_setc(d, SB_EINVAL, "", 0, 0, "live state: %s at %d:%d", err.text,
					err.line, err.column);
		goto out;
	}
	if ((a = json_object_get(root, "previews"))) {
		if (!json_is_array(a)) {
			r = bad(d, "previews is not an array");
			goto out;
		}
		size_t n = json_array_size(a);
		out->previews = sb_xcalloc(n + 1, sizeof(*out->previews));
		for (size_t i = 0; i < n; i++) {
			json_t *p = json_array_get(a, i), *pr = json_object_get(p, "pr");
			if (!json_is_integer(pr) || json_integer_value(pr) < 1 ||
			    json_integer_value(pr) > UINT32_MAX) {
				r = bad(d, "a preview without a valid pr");
				goto out;
			}
			out->previews[i] =
			    (sb_live_preview){(uint32_t)json_integer_value(pr),
					      json_integer_value(json_object_get(p, "created_at")),
					      json_integer_value(json_object_get(p, "expires_at"))};
			out->npreviews = i + 1;
		}
	}
	if ((a = json_object_get(root, "deploys"))) {
		if (!json_is_array(a)) {
			r = bad(d, "deploys is not an array");
			goto out;
		}
		size_t n = json_array_size(a);
		out->deploys = sb_xcalloc(n + 1, sizeof(*out->deploys));
		for (size_t i = 0; i < n; i++) {
			out->ndeploys = i + 1;
			if ((r = deploy_parse(json_array_get(a, i), &out->deploys[i], d)) < 0)
				goto out;
		}
	}
	r = strv_parse(json_object_get(root, "deleted"), &out->deleted, &out->ndeleted, d,
		       "deleted is not a list of names");
out:
	json_decref(root);
	if (r < 0)
		sb_live_clear(out);
	return r;
}
