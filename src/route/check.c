/* Consistency check (see check.h). */
#include "route/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct vlist {
	sb_violation *v;
	size_t n;
};

static sb_violation *add(struct vlist *l, const char *file, int line, int col)
{
	l->v = sb_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	sb_violation *v = &l->v[l->n++];
	snprintf(v->file, sizeof(v->file), "%s", file ? file : "");
	v->line = line;
	v->col = col;
	v->msg[0] = '\0';
	return v;
}

static const char *env_label(sb_env e, uint32_t pr, char *buf, size_t size)
{
	if (e == SB_ENV_PREVIEW)
		snprintf(buf, size, "preview %u", pr);
	else
		snprintf(buf, size, "%s", sb_env_name(e));
	return buf;
}

/* Where a request to this URL lands, in words, for the messages. */
static void describe(const sb_model *m, const sb_route_match *rm, char *buf, size_t size)
{
	char e[32];
	const char *name = rm->deployment ? rm->deployment->name : m->services[rm->service].name;
	snprintf(buf, size, "%s (%s)", name, env_label(rm->env, rm->pr, e, sizeof(e)));
}

static void check_deployment(const sb_model *m, const sb_route_table *rt, const sb_tenants *tenants,
			     const sb_deployment *dp, struct vlist *l)
{
	const sb_service *svc = &m->services[dp->service];
	char want[32], got[160];
	env_label(dp->env, dp->pr, want, sizeof(want));
	for (size_t i = 0; i < dp->nvars; i++) {
		const sb_var *v = &dp->vars[i];
		sb_url u;
		bool is_url =
		    v->is_string && sb_url_split(v->value, &u) == 0 && sb_http_scheme_len(v->value);
		bool declared = false;
		for (size_t k = 0; k < svc->decl->nurl_vars; k++)
			declared |= strcmp(svc->decl->url_vars[k], v->key) == 0;
		if (!is_url || !sb_model_in_zone(m, u.host, u.host_len)) {
			if (declared)
				snprintf(add(l, v->file, v->line, v->col)->msg, sizeof(l->v->msg),
					 "%s: var %s = \"%s\" is listed in url_vars but is not an "
					 "URL on a declared zone",
					 dp->name, v->key, v->value);
			continue;
		}
		sb_route_match rm;
		char tb[2048];
		size_t tl;
		const char *target = sb_url_target(&u, tb, sizeof(tb), &tl);
		int r = sb_route_lookup(rt, tenants, u.host, u.host_len, target, tl, &rm);
		sb_violation *bad = NULL;
		if (r < 0 && r != SB_ESUSPENDED) {
			bad = add(l, v->file, v->line, v->col);
			snprintf(bad->msg, sizeof(bad->msg),
				 "%s: var %s = \"%s\": host %.*s is not routed (%s); nothing in "
				 "%s serves it",
				 dp->name, v->key, v->value, (int)u.host_len, u.host, rm.reason,
				 want);
		} else if (rm.env != dp->env || rm.pr != dp->pr) {
			describe(m, &rm, got, sizeof(got));
			bad = add(l, v->file, v->line, v->col);
			snprintf(bad->msg, sizeof(bad->msg),
				 "%s: var %s = \"%s\": host %.*s is served by %s, not by a %s "
				 "deployment",
				 dp->name, v->key, v->value, (int)u.host_len, u.host, got, want);
		}
	}
	/* A host of the tenant-aware service that a route names carries the
	 * tenant of its first label (docs/routing.md): without that tenant
	 * registered the route is there, in DNS too, and answers 404. */
	for (size_t i = 0;
	     m->tenant_service >= 0 && dp->service == (size_t)m->tenant_service && i < dp->nroutes;
	     i++) {
		const sb_route *ro = &dp->routes[i];
		sb_route_match rm;
		if (ro->host_wildcard ||
		    sb_route_lookup(rt, tenants, ro->host, strlen(ro->host), ro->path,
				    strlen(ro->path), &rm) != SB_ENOTENANT)
			continue;
		const char *h = ro->base_host ? ro->base_host : ro->host;
		size_t lo, ll;
		uint32_t pr;
		sb_model_name_parse(m, h, strcspn(h, "."), &lo, &ll, &pr);
		snprintf(add(l, ro->file, ro->line, ro->col)->msg, sizeof(l->v->msg),
			 "%s: route \"%s\" of the tenant-aware service is the host of tenant "
			 "'%.*s', which is not registered: it answers 404 until it is "
			 "(switchboard tenants add %.*s)",
			 dp->name, ro->pattern, (int)ll, h + lo, (int)ll, h + lo);
	}
	for (size_t k = 0; k < svc->decl->nurl_vars; k++) {
		bool set = false;
		for (size_t i = 0; i < dp->nvars && !set; i++)
			set = strcmp(dp->vars[i].key, svc->decl->url_vars[k]) == 0;
		const int *pos = svc->decl->url_var_pos; /* the entry, in switchboard.toml */
		if (!set)
			snprintf(add(l, pos ? m->decl->file : dp->file, pos ? pos[2 * k] : dp->line,
				     pos ? pos[2 * k + 1] : dp->col)
				     ->msg,
				 sizeof(l->v->msg), "%s: var %s is listed in url_vars but not set",
				 dp->name, svc->decl->url_vars[k]);
	}
}

static void check_webhook(const sb_model *m, const sb_route_table *rt, const sb_tenants *tenants,
			  const sb_webhook_decl *w, struct vlist *l)
{
	const char *file = m->decl->file;
	sb_url u;
	if (sb_url_split(w->url, &u) < 0) {
		snprintf(add(l, file, w->line, w->col)->msg, sizeof(l->v->msg),
			 "webhook %s: \"%s\" is not an URL", w->provider, w->url);
		return;
	}
	if (!sb_model_in_zone(m, u.host, u.host_len)) {
		snprintf(add(l, file, w->line, w->col)->msg, sizeof(l->v->msg),
			 "webhook %s: host %.*s of \"%s\" is not in a declared zone, so nothing "
			 "here can serve it",
			 w->provider, (int)u.host_len, u.host, w->url);
		return;
	}
	sb_route_match rm;
	char got[160], want[32];
	/* a webhook names an environment, not a pull request */
	snprintf(want, sizeof(want), "%s", sb_env_name(w->env));
	char tb[2048];
	size_t tl;
	/* with its query: a path without '*' matches only a request without one */
	const char *target = sb_url_target(&u, tb, sizeof(tb), &tl);
	int r = sb_route_lookup(rt, tenants, u.host, u.host_len, target, tl, &rm);
	if (r < 0 && r != SB_ESUSPENDED) {
		snprintf(add(l, file, w->line, w->col)->msg, sizeof(l->v->msg),
			 "webhook %s: \"%s\" is not routed: host %.*s: %s", w->provider, w->url,
			 (int)u.host_len, u.host, rm.reason);
		return;
	}
	describe(m, &rm, got, sizeof(got));
	if (rm.env != w->env)
		snprintf(add(l, file, w->line, w->col)->msg, sizeof(l->v->msg),
			 "webhook %s: \"%s\" reaches %s, not a %s deployment", w->provider, w->url,
			 got, want);
	else if (w->service && sb_model_service(m, w->service) < 0)
		snprintf(
		    add(l, file, w->line, w->col)->msg, sizeof(l->v->msg),
		    "webhook %s: its service \"%s\" is not a declared service (a wrangler.toml "
		    "'name')",
		    w->provider, w->service);
	else if (w->service && strcmp(m->services[rm.service].name, w->service) != 0)
		snprintf(add(l, file, w->line, w->col)->msg, sizeof(l->v->msg),
			 "webhook %s: \"%s\" reaches %s, not its handler %s", w->provider, w->url,
			 got, w->service);
}

size_t sb_check_run(const sb_model *m, const sb_route_table *rt, const sb_tenants *tenants,
		    uint32_t sample_pr, sb_violation **out)
{
	struct vlist l = {*out, 0};
	for (size_t i = 0; i < m->ndeployments; i++)
		check_deployment(m, rt, tenants, &m->deployments[i], &l);
	bool listed = false;
	for (size_t i = 0; i < m->decl->npreview_prs; i++)
		listed |= m->decl->preview_prs[i] == sample_pr;
	if (!listed) {
		sb_pool *pool = sb_pool_new(0);
		for (size_t s = 0; s < m->nservices; s++) {
			sb_deployment dp;
			sb_model_preview(m, s, sample_pr, pool, &dp);
			check_deployment(m, rt, tenants, &dp, &l);
		}
		/* messages are copied into l, so the pool can go */
		sb_pool_free(pool);
	}
	for (size_t i = 0; i < m->decl->nwebhooks; i++)
		check_webhook(m, rt, tenants, &m->decl->webhooks[i], &l);
	*out = l.v;
	return l.n;
}
