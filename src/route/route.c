/* Route table and tenant set (see route.h for the rules). */
#include "route/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Hosts are hashed right to left, so that one pass over a host yields the
 * hash of every label suffix ("b.c", "c") on the way to the whole host: the
 * wildcard probes cost no extra hashing.
 */
#define HASH_INIT 0xcbf29ce484222325ULL
#define HASH_STEP(h, c) (((h) ^ (uint8_t)(c)) * 0x100000001b3ULL)

static uint64_t hash_rtl(const char *s, size_t n)
{
	uint64_t h = HASH_INIT;
	while (n--)
		h = HASH_STEP(h, s[n]);
	return h;
}

/* ---- tenants ---------------------------------------------------------- */

/* slot: 32 bits of hash, 32-bit offset+1 of the record in `bytes` (0 = empty).
 * record: [status][len][slug...][NUL] */
struct tslot {
	uint32_t hash;
	uint32_t off;
};

struct sb_tenants {
	struct tslot *slots;
	size_t mask;
	size_t count;
	char *bytes;
	size_t len, cap;
};

static uint32_t slug_hash(const char *s, size_t n)
{
	uint64_t h = HASH_INIT;
	for (size_t i = 0; i < n; i++)
		h = HASH_STEP(h, s[i]);
	return (uint32_t)(h ^ (h >> 32));
}

sb_tenants *sb_tenants_new(size_t expected)
{
	sb_tenants *t = sb_xcalloc(1, sizeof(*t));
	size_t cap = 16;
	while (cap < expected * 2)
		cap *= 2;
	t->slots = sb_xcalloc(cap, sizeof(struct tslot));
	t->mask = cap - 1;
	t->cap = expected * 12 + 64;
	t->bytes = sb_xmalloc(t->cap);
	return t;
}

void sb_tenants_free(sb_tenants *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t->bytes);
	free(t);
}

static struct tslot *tenant_find(const sb_tenants *t, const char *s, size_t n, uint32_t h)
{
	for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
		struct tslot *sl = &t->slots[i];
		if (!sl->off)
			return sl;
		if (sl->hash == h) {
			const char *rec = t->bytes + sl->off - 1;
			if ((uint8_t)rec[1] == n && memcmp(rec + 2, s, n) == 0)
				return sl;
		}
	}
}

static void tenants_grow(sb_tenants *t)
{
	size_t cap = (t->mask + 1) * 2;
	struct tslot *old = t->slots;
	size_t oldcap = t->mask + 1;
	t->slots = sb_xcalloc(cap, sizeof(struct tslot));
	t->mask = cap - 1;
	for (size_t i = 0; i < oldcap; i++) {
		if (!old[i].off)
			continue;
		size_t j = old[i].hash & t->mask;
		while (t->slots[j].off)
			j = (j + 1) & t->mask;
		t->slots[j] = old[i];
	}
	free(old);
}

/*
 * A record: [status | 0x80 when a config follows][n][slug][\0], then for a
 * config [u32 length][config][\0]. Tenants without one (most, in a big
 * registry) pay nothing for the feature.
 */
#define TENANT_HAS_CONFIG 0x80

static size_t rec_size(const char *rec)
{
	size_t n = (uint8_t)rec[1], sz = n + 3;
	if ((uint8_t)rec[0] & TENANT_HAS_CONFIG) {
		uint32_t cl;
		memcpy(&cl, rec + sz, sizeof(cl));
		sz += sizeof(cl) + cl + 1;
	}
	return sz;
}

int sb_tenants_put_config(sb_tenants *t, const char *slug, size_t n, sb_tenant_status st,
			  const char *config, size_t clen)
{
	if (n == 0 || n > SB_SLUG_MAX)
		return SB_ETOOLONG;
	if (clen > UINT32_MAX / 2)
		return SB_ETOOLONG;
	uint32_t h = slug_hash(slug, n);
	struct tslot *sl = tenant_find(t, slug, n, h);
	if (sl->off && !config) {
		char *rec = t->bytes + sl->off - 1;
		rec[0] = (char)(((uint8_t)rec[0] & TENANT_HAS_CONFIG) | (uint8_t)st);
		return 0;
	}
	bool fresh = !sl->off;
	if (fresh && (t->count + 1) * 2 > t->mask + 1) {
		tenants_grow(t);
		sl = tenant_find(t, slug, n, h);
	}
	size_t need = n + 3 + (config ? sizeof(uint32_t) + clen + 1 : 0);
	if (t->len + need > t->cap) {
		while (t->len + need > t->cap)
			t->cap *= 2;
		t->bytes = sb_xrealloc(t->bytes, t->cap);
	}
	if (t->len + 1 > UINT32_MAX)
		sb_oom(); /* 4 GiB of slugs: beyond any sane registry */
	if (!fresh)	  /* a new config: the old record stays as garbage, marked */
		t->bytes[sl->off - 1] = (char)((uint8_t)t->bytes[sl->off - 1] | 0x40);
	char *rec = t->bytes + t->len;
	rec[0] = (char)((uint8_t)st | (config ? TENANT_HAS_CONFIG : 0));
	rec[1] = (char)n;
	memcpy(rec + 2, slug, n);
	rec[2 + n] = '\0';
	if (config) {
		uint32_t cl = (uint32_t)clen;
		memcpy(rec + n + 3, &cl, sizeof(cl));
		memcpy(rec + n + 3 + sizeof(cl), config, clen);
		rec[n + 3 + sizeof(cl) + clen] = '\0';
	}
	sl->hash = h;
	sl->off = (uint32_t)(t->len + 1);
	t->len += need;
	if (fresh)
		t->count++;
	return 0;
}

int sb_tenants_put(sb_tenants *t, const char *slug, size_t n, sb_tenant_status st)
{
	return sb_tenants_put_config(t, slug, n, st, NULL, 0);
}

sb_tenant_status sb_tenants_get(const sb_tenants *t, const char *slug, size_t n,
				const char **stored)
{
	if (!t || n == 0 || n > SB_SLUG_MAX)
		return SB_TENANT_NONE;
	const struct tslot *sl = tenant_find(t, slug, n, slug_hash(slug, n));
	if (!sl->off)
		return SB_TENANT_NONE;
	const char *rec = t->bytes + sl->off - 1;
	if (stored)
		*stored = rec + 2;
	return (sb_tenant_status)((uint8_t)rec[0] & 0x3f);
}

const char *sb_tenants_config(const char *stored, size_t *len)
{
	const char *rec = stored - 2;
	if (!((uint8_t)rec[0] & TENANT_HAS_CONFIG))
		return NULL;
	size_t n = (uint8_t)rec[1];
	uint32_t cl;
	memcpy(&cl, rec + n + 3, sizeof(cl));
	*len = cl;
	return rec + n + 3 + sizeof(cl);
}

size_t sb_tenants_count(const sb_tenants *t)
{
	return t->count;
}

int sb_tenants_each(const sb_tenants *t, sb_tenant_status st,
		    int (*fn)(void *ctx, const char *slug, size_t n), void *ctx)
{
	/* records are laid out one after another: walk them, not the slots */
	for (size_t off = 0; off < t->len;) {
		const char *rec = t->bytes + off;
		size_t n = (uint8_t)rec[1];
		/* 0x40 marks a record replaced by a later one */
		if (!((uint8_t)rec[0] & 0x40) && (sb_tenant_status)((uint8_t)rec[0] & 0x3f) == st) {
			int r = fn(ctx, rec + 2, n);
			if (r)
				return r;
		}
		off += rec_size(rec);
	}
	return 0;
}

size_t sb_tenants_memory(const sb_tenants *t)
{
	return sizeof(*t) + (t->mask + 1) * sizeof(struct tslot) + t->cap;
}

/* ---- compiled table ---------------------------------------------------- */

struct path_ent {
	const char *path;
	size_t len;
	bool prefix;
	const sb_deployment *dep;
	const sb_route *route;
};

struct host_node {
	const char *host; /* exact host, or the suffix of a wildcard */
	size_t len;
	uint64_t hash;
	bool apex_too;	   /* wildcard "*example.com" also matches example.com */
	bool tenant_gated; /* tenant-aware: single label, registered slug */
	struct path_ent *paths;
	size_t npaths, cap;
};

/* The hash sits in the slot so that a probe that misses never touches the
 * node: on a large table every node visit is a cache miss. */
struct hslot {
	uint64_t hash;
	struct host_node *node;
};

struct htab {
	struct hslot *slots;
	size_t mask;
	size_t count;
};

struct sb_route_table {
	const sb_model *m;
	sb_pool *pool;
	struct htab exact; /* exact hosts of every environment */
	struct htab wild;  /* wildcard suffixes */
	/* production routes by the name the preview rule maps a preview host
	 * back to ("codex.rest" for "codex-preview-12.rest"; with a declared
	 * label, "<label>.rest" for hosts of that service) */
	struct htab pbase;
	bool preview_rule;
	sb_route_entry *entries;
	size_t nentries;
};

static void htab_init(struct htab *t, size_t expected)
{
	size_t cap = 16;
	while (cap < expected * 2)
		cap *= 2;
	t->slots = sb_xcalloc(cap, sizeof(*t->slots));
	t->mask = cap - 1;
	t->count = 0;
}

static struct host_node *htab_get(const struct htab *t, const char *h, size_t n, uint64_t hash)
{
	for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
		const struct hslot *sl = &t->slots[i];
		if (!sl->node)
			return NULL;
		if (sl->hash == hash && sl->node->len == n && memcmp(sl->node->host, h, n) == 0)
			return sl->node;
	}
}

static struct host_node *htab_add(struct htab *t, sb_pool *pool, const char *h)
{
	size_t n = strlen(h);
	uint64_t hash = hash_rtl(h, n);
	struct host_node *nd = htab_get(t, h, n, hash);
	if (nd)
		return nd;
	if ((t->count + 1) * 2 > t->mask + 1) {
		struct hslot *old = t->slots;
		size_t oldcap = t->mask + 1;
		htab_init(t, t->count + 1);
		for (size_t i = 0; i < oldcap; i++) {
			if (!old[i].node)
				continue;
			size_t j = old[i].hash & t->mask;
			while (t->slots[j].node)
				j = (j + 1) & t->mask;
			t->slots[j] = old[i];
			t->count++;
		}
		free(old);
	}
	nd = sb_pool_alloc(pool, sizeof(*nd));
	nd->host = h;
	nd->len = n;
	nd->hash = hash;
	size_t j = hash & t->mask;
	while (t->slots[j].node)
		j = (j + 1) & t->mask;
	t->slots[j] = (struct hslot){hash, nd};
	t->count++;
	return nd;
}

/* Said when hosts the naming rule made collide: where their names come
 * from, and what to change (one service's hosts under one label: their
 * paths, or the label; two services: one of their labels). */
static const char *naming_hint(bool one_service)
{
	return one_service ? "; staging and preview hosts are named by [naming] after the "
			     "production host's first label, or the [[service]]'s 'label': "
			     "under one label, a service's hosts need different paths (or give "
			     "the service another label)"
			   : "; staging and preview hosts are named by [naming] after the "
			     "production host's first label, or the [[service]]'s 'label': "
			     "give one of the services another label";
}

static void path_append(struct host_node *nd, const sb_route *r, const sb_deployment *dep)
{
	if (nd->npaths == nd->cap) {
		nd->cap = nd->cap ? nd->cap * 2 : 2;
		nd->paths = sb_xrealloc(nd->paths, nd->cap * sizeof(*nd->paths));
	}
	nd->paths[nd->npaths++] = (struct path_ent){.path = r->path,
						    .len = strlen(r->path),
						    .prefix = r->path_prefix,
						    .dep = dep,
						    .route = r};
}

/* As in Cloudflare, a route takes precedence over a custom domain on the
 * same host and path (a Worker in front of an app): r replaces e's when e
 * is the custom domain. */
static void route_over_domain(struct path_ent *e, const sb_route *r, const sb_deployment *dep)
{
	if (e->route->custom_domain && !r->custom_domain) {
		e->dep = dep;
		e->route = r;
	}
}

static int add_path(struct host_node *nd, const sb_route *r, const sb_deployment *dep, sb_diag *d)
{
	for (size_t i = 0; i < nd->npaths; i++) {
		struct path_ent *e = &nd->paths[i];
		if (e->prefix == r->path_prefix && strcmp(e->path, r->path) == 0 &&
		    (e->route->host_apex_too == r->host_apex_too)) {
			if (e->dep == dep) {
				if (e->route == r)
					return 0; /* one declaration reached twice */
				char at[SB_WHERE_SIZE];
				const sb_route *x = e->route;
				sb_where(x->file, x->line, x->col, at, sizeof(at));
				/* not written twice: the naming rule made one or both
				 * (a service's two hosts under one label) */
				if (x->base_host && r->base_host)
					return sb_diag_setc(
					    d, SB_EEXIST, r->file, r->line, r->col,
					    "route \"%s\" of %s would be made twice by the naming "
					    "rule: from production host \"%s\" here and \"%s\" "
					    "(%s)%s",
					    r->pattern, dep->name, r->base_host, x->base_host, at,
					    naming_hint(true));
				if (x->base_host || r->base_host)
					return sb_diag_setc(
					    d, SB_EEXIST, r->file, r->line, r->col,
					    "route \"%s\" of %s is also made by the naming rule "
					    "from production host \"%s\" (%s)%s",
					    r->pattern, dep->name,
					    x->base_host ? x->base_host : r->base_host, at,
					    naming_hint(true));
				/* as nginx refuses a duplicate location: the second
				 * line can only be a mistake (a copy meant to be
				 * edited), and would otherwise vanish without a word */
				return sb_diag_setc(
				    d, SB_EEXIST, r->file, r->line, r->col,
				    "route \"%s\" of %s is declared twice (first at "
				    "%s)",
				    r->pattern, dep->name, at);
			}
			if (e->route->custom_domain != r->custom_domain) {
				route_over_domain(e, r, dep);
				return 0;
			}
			char at[SB_WHERE_SIZE];
			return sb_diag_setc(
			    d, SB_EEXIST, r->file, r->line, r->col,
			    "route \"%s\" of %s claims the same host and path as "
			    "\"%s\" of %s (%s)%s",
			    r->pattern, dep->name, e->route->pattern, e->dep->name,
			    sb_where(e->route->file, e->route->line, e->route->col, at, sizeof(at)),
			    r->base_host || e->route->base_host
				? naming_hint(dep->service == e->dep->service)
				: "");
		}
	}
	path_append(nd, r, dep);
	return 0;
}

/* Longest path first; at equal length an exact path before a prefix. */
static int path_cmp(const void *a, const void *b)
{
	const struct path_ent *x = a, *y = b;
	if (x->len != y->len)
		return x->len > y->len ? -1 : 1;
	if (x->prefix != y->prefix)
		return x->prefix ? 1 : -1;
	return strcmp(x->path, y->path);
}

static int entry_cmp(const void *a, const void *b)
{
	const sb_route_entry *x = a, *y = b;
	if (x->deployment->env != y->deployment->env)
		return (int)x->deployment->env - (int)y->deployment->env;
	if (x->deployment->pr != y->deployment->pr)
		return x->deployment->pr < y->deployment->pr ? -1 : 1;
	if (x->route->host_wildcard != y->route->host_wildcard)
		return x->route->host_wildcard ? 1 : -1;
	int c = strcmp(x->route->host, y->route->host);
	if (c)
		return c;
	return strcmp(x->route->path, y->route->path);
}

static void sort_node_paths(struct htab *t)
{
	for (size_t i = 0; i <= t->mask; i++)
		if (t->slots[i].node)
			qsort(t->slots[i].node->paths, t->slots[i].node->npaths,
			      sizeof(struct path_ent), path_cmp);
}

static int add_route(sb_route_table *rt, const sb_route *r, const sb_deployment *dep,
		     bool tenant_gated, sb_diag *d)
{
	struct host_node *nd;
	if (r->host_wildcard) {
		const char *suffix = r->host + (r->host_apex_too ? 1 : 2);
		nd = htab_add(&rt->wild, rt->pool, suffix);
		if (r->host_apex_too)
			nd->apex_too = true;
		if (tenant_gated)
			nd->tenant_gated = true;
	} else {
		nd = htab_add(&rt->exact, rt->pool, r->host);
	}
	return add_path(nd, r, dep, d);
}

/* Do path patterns a and b (each exact, or a prefix when its flag is set)
 * match some path in common? */
static bool paths_overlap(const char *a, bool a_prefix, const char *b, bool b_prefix)
{
	size_t al = strlen(a), bl = strlen(b);
	if (a_prefix && bl >= al && memcmp(a, b, al) == 0)
		return true;
	if (b_prefix && al >= bl && memcmp(a, b, bl) == 0)
		return true;
	return al == bl && memcmp(a, b, al) == 0;
}

/*
 * Production route r of dep under the name the preview rule maps its
 * preview hosts back to (key). Two routes of one host and path are settled
 * as in the exact table (a route beats a custom domain). Two hosts that the
 * rule would give the same staging and preview hosts are an error when
 * they have the same path, or, for two services, paths that overlap: on the
 * one derived host the longer path would take requests that production
 * gives the other service.
 */
static int add_preview_base(sb_route_table *rt, const char *key, const sb_route *r,
			    const sb_deployment *dep, sb_diag *d)
{
	struct host_node *nd = htab_add(&rt->pbase, rt->pool, key);
	for (size_t i = 0; i < nd->npaths; i++) {
		struct path_ent *e = &nd->paths[i];
		bool same = e->prefix == r->path_prefix && strcmp(e->path, r->path) == 0 &&
			    e->route->host_apex_too == r->host_apex_too;
		if (!same && e->dep->service != dep->service && strcmp(e->route->host, r->host) &&
		    paths_overlap(e->path, e->prefix, r->path, r->path_prefix)) {
			/* two hosts, one staging and preview host: a request that
			 * production gives one service would go to the other */
			char at[SB_WHERE_SIZE];
			return sb_diag_setc(
			    d, SB_EEXIST, r->file, r->line, r->col,
			    "route \"%s\" of %s and \"%s\" of %s (%s) are on different hosts "
			    "in production but would share their staging and preview hosts "
			    "(named after \"%s\"), where their paths overlap and the longer "
			    "would take requests production gives the other%s",
			    r->pattern, dep->name, e->route->pattern, e->dep->name,
			    sb_where(e->route->file, e->route->line, e->route->col, at, sizeof(at)),
			    key, naming_hint(false));
		}
		if (!same)
			continue;
		if (strcmp(e->route->host, r->host) == 0) {
			/* settled as in the exact table */
			route_over_domain(e, r, dep);
			return 0;
		}
		char at[SB_WHERE_SIZE];
		return sb_diag_setc(
		    d, SB_EEXIST, r->file, r->line, r->col,
		    "route \"%s\" of %s and \"%s\" of %s (%s) would have the same "
		    "preview hosts (named after \"%s\")%s",
		    r->pattern, dep->name, e->route->pattern, e->dep->name,
		    sb_where(e->route->file, e->route->line, e->route->col, at, sizeof(at)), key,
		    naming_hint(dep->service == e->dep->service));
	}
	path_append(nd, r, dep);
	return 0;
}

static int add_preview_bases(sb_route_table *rt, sb_diag *d)
{
	const sb_model *m = rt->m;
	for (size_t s = 0; s < m->nservices; s++) {
		const sb_deployment *prod = &m->deployments[m->services[s].deployment[0]];
		for (size_t j = 0; j < prod->nroutes; j++) {
			char key[256];
			int kn = sb_model_naming_base(m, s, prod->routes[j].host, key, sizeof(key));
			if (kn < 0)
				continue; /* nothing the rule renames (or too long to) */
			int r = add_preview_base(rt, sb_pool_strndup(rt->pool, key, (size_t)kn),
						 &prod->routes[j], prod, d);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* The declared zone that name is in (itself or a subdomain), longest first. */
static const sb_zone_decl *zone_of(const sb_model *m, const char *name)
{
	size_t hl = strlen(name);
	const sb_zone_decl *best = NULL;
	for (size_t z = 0; z < m->decl->nzones; z++) {
		const sb_zone_decl *zd = &m->decl->zones[z];
		size_t zl = strlen(zd->name);
		if (hl < zl || strcmp(name + hl - zl, zd->name) != 0 ||
		    (hl > zl && name[hl - zl - 1] != '.'))
			continue;
		if (!best || zl > strlen(best->name))
			best = zd;
	}
	return best;
}

/* "*.<zone>" exactly: the shape of a tenant wildcard. */
static bool is_zone_wildcard(const sb_model *m, const sb_route *ro)
{
	if (!ro->host_wildcard || ro->host_apex_too)
		return false;
	const sb_zone_decl *z = zone_of(m, ro->host + 2);
	return z && strcmp(z->name, ro->host + 2) == 0;
}

int sb_route_compile(const sb_model *m, const sb_route_options *opt, sb_route_table **out,
		     sb_diag *d)
{
	int r = 0;
	sb_route_table *rt = sb_xcalloc(1, sizeof(*rt));
	rt->m = m;
	rt->pool = sb_pool_new(0);
	rt->preview_rule = opt ? opt->preview_rule : true;
	size_t total = 0;
	for (size_t i = 0; i < m->ndeployments; i++)
		total += m->deployments[i].nroutes;
	htab_init(&rt->exact, total);
	htab_init(&rt->wild, 8);
	size_t nprod = 0; /* the preview rule's table holds production routes only */
	for (size_t i = 0; i < m->nservices; i++)
		nprod += m->deployments[m->services[i].deployment[0]].nroutes;
	htab_init(&rt->pbase, nprod);
	rt->entries = sb_xcalloc(total + m->decl->nzones + 1, sizeof(sb_route_entry));

	ssize_t ts = m->tenant_service;
	for (size_t i = 0; i < m->ndeployments; i++) {
		const sb_deployment *dep = &m->deployments[i];
		bool tenant_dep =
		    ts >= 0 && dep->service == (size_t)ts && dep->env == SB_ENV_PRODUCTION;
		for (size_t j = 0; j < dep->nroutes; j++) {
			const sb_route *ro = &dep->routes[j];
			bool gated = tenant_dep && is_zone_wildcard(m, ro);
			if ((r = add_route(rt, ro, dep, gated, d)) < 0)
				goto out;
			rt->entries[rt->nentries++] =
			    (sb_route_entry){.route = ro, .deployment = dep, .tenant_gated = gated};
		}
	}

	/* The tenant-aware service serves {slug}.<zone> in the zones of its
	 * production hosts: one implied wildcard per zone, gated by the registry. */
	if (ts >= 0) {
		const sb_deployment *prod = &m->deployments[m->services[ts].deployment[0]];
		for (size_t z = 0; z < m->decl->nzones; z++) {
			const sb_zone_decl *zd = &m->decl->zones[z];
			bool used = false;
			for (size_t j = 0; j < prod->nroutes && !used; j++) {
				const sb_route *pr_ = &prod->routes[j];
				used = zone_of(m, pr_->host + (pr_->host_wildcard ? 2 : 0)) == zd;
			}
			if (!used)
				continue;
			struct host_node *nd = htab_get(&rt->wild, zd->name, strlen(zd->name),
							hash_rtl(zd->name, strlen(zd->name)));
			if (nd) {
				bool mine = false;
				for (size_t k = 0; k < nd->npaths; k++)
					mine |= nd->paths[k].dep == prod;
				if (mine)
					continue; /* declared explicitly */
			}
			sb_route *ro = sb_pool_alloc(rt->pool, sizeof(*ro));
			char err[256];
			sb_route_parse(sb_pool_printf(rt->pool, "*.%s/*", zd->name), rt->pool, ro,
				       err, sizeof(err));
			ro->derived = true;
			ro->file = m->decl->file;
			ro->line = m->decl->tenant_service_line;
			ro->col = m->decl->tenant_service_col;
			if ((r = add_route(rt, ro, prod, true, d)) < 0)
				goto out;
			rt->entries[rt->nentries++] = (sb_route_entry){
			    .route = ro, .deployment = prod, .tenant_gated = true, .implied = true};
		}
	}
	if ((r = add_preview_bases(rt, d)) < 0)
		goto out;
	sort_node_paths(&rt->exact);
	sort_node_paths(&rt->wild);
	sort_node_paths(&rt->pbase);
	qsort(rt->entries, rt->nentries, sizeof(*rt->entries), entry_cmp);
out:
	if (r < 0) {
		sb_route_free(rt);
		rt = NULL;
	}
	*out = rt;
	return r;
}

static void htab_free(struct htab *t)
{
	if (!t->slots)
		return;
	for (size_t i = 0; i <= t->mask; i++)
		if (t->slots[i].node)
			free(t->slots[i].node->paths);
	free(t->slots);
}

void sb_route_free(sb_route_table *rt)
{
	if (!rt)
		return;
	htab_free(&rt->exact);
	htab_free(&rt->wild);
	htab_free(&rt->pbase);
	free(rt->entries);
	sb_pool_free(rt->pool);
	free(rt);
}

const sb_route_entry *sb_route_entries(const sb_route_table *rt, size_t *n)
{
	*n = rt->nentries;
	return rt->entries;
}

size_t sb_route_count(const sb_route_table *rt)
{
	return rt->nentries;
}

size_t sb_route_memory(const sb_route_table *rt)
{
	size_t b = sizeof(*rt) + sb_pool_footprint(rt->pool);
	b += (rt->exact.mask + 1 + rt->wild.mask + 1 + rt->pbase.mask + 1) * sizeof(struct hslot);
	b += rt->nentries * sizeof(sb_route_entry);
	const struct htab *tabs[] = {&rt->exact, &rt->wild, &rt->pbase};
	for (size_t k = 0; k < SB_ARRAY_LEN(tabs); k++)
		for (size_t i = 0; i <= tabs[k]->mask; i++)
			if (tabs[k]->slots[i].node)
				b += tabs[k]->slots[i].node->cap * sizeof(struct path_ent);
	return b;
}

/* ---- lookup ------------------------------------------------------------ */

int sb_route_host_port_ok(const char *host, size_t n)
{
	const char *end = host + n, *p;
	if (n && host[0] == '[') {
		p = memchr(host, ']', n);
		if (!p)
			return SB_EINVAL;
		p++;
	} else {
		p = memchr(host, ':', n);
		if (!p)
			return (int)n;
	}
	size_t hl = (size_t)(p - host);
	if (p == end)
		return (int)hl;
	if (*p != ':' || end - p - 1 > 5)
		return SB_EINVAL;
	for (p++; p < end; p++)
		if (*p < '0' || *p > '9')
			return SB_EINVAL;
	return (int)hl;
}

int sb_route_host_normalize(const char *host, size_t n, char *buf, size_t size)
{
	/* strip the port: "host:8080"; an IPv6 literal keeps its brackets */
	int hl = sb_route_host_port_ok(host, n);
	if (hl < 0)
		return SB_EINVAL;
	n = (size_t)hl;
	if (n && host[n - 1] == '.')
		n--;
	if (n == 0 || n >= size || n > 253)
		return SB_EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)host[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		else if (c <= ' ' || c == '/' || c == '\\' || c == '@' || c >= 0x7f)
			return SB_EINVAL;
		/* no empty label: "..", a leading dot, or a second trailing one
		 * ("a.b.." would otherwise keep a dot after the one stripped) */
		else if (c == '.' && (i == 0 || i == n - 1 || host[i - 1] == '.'))
			return SB_EINVAL;
		buf[i] = (char)c;
	}
	buf[n] = '\0';
	return (int)n;
}

/* As Cloudflare, a pattern is matched against the path and the query: a
 * prefix ('*') takes any query, an exact path only a request without one
 * ("/images/cat.png" does not match "/images/cat.png?foo=bar"). */
static const struct path_ent *match_path(const struct host_node *nd, const char *path, size_t pl,
					 bool query)
{
	for (size_t i = 0; i < nd->npaths; i++) {
		const struct path_ent *e = &nd->paths[i];
		if (e->prefix ? (pl >= e->len && memcmp(path, e->path, e->len) == 0)
			      : (!query && pl == e->len && memcmp(path, e->path, pl) == 0))
			return e;
	}
	return NULL;
}

/*
 * The production route that the preview rule maps host h (n bytes, first
 * label label_len bytes, lsuf the hash of the suffix after it) back to:
 * "<label>-preview-<pr>.rest" to "<label>.rest", with *pr; or NULL when h
 * is no preview's name or no route of that host matches the path
 * (*host_known: the rule gives the host routes, none of them for path).
 */
static const struct path_ent *preview_base(const sb_route_table *rt, const char *h, size_t n,
					   size_t label_len, uint64_t lsuf, const char *path,
					   size_t path_len, bool query, uint32_t *pr,
					   bool *host_known)
{
	size_t lo, ll;
	if (sb_model_name_parse(rt->m, h, label_len, &lo, &ll, pr) != SB_ENV_PREVIEW)
		return NULL;
	uint64_t bh = HASH_STEP(lsuf, '.');
	for (size_t i = lo + ll; i-- > lo;)
		bh = HASH_STEP(bh, h[i]);
	char base[256];
	size_t rest = n - label_len;
	memcpy(base, h + lo, ll);
	memcpy(base + ll, h + label_len, rest);
	const struct host_node *bn = htab_get(&rt->pbase, base, ll + rest, bh);
	*host_known = bn != NULL;
	return bn ? match_path(bn, path, path_len, query) : NULL;
}

static void set_match(sb_route_match *m, const struct path_ent *e)
{
	m->deployment = e->dep;
	m->service = e->dep->service;
	m->env = e->dep->env;
	m->pr = e->dep->pr;
	m->route = e->route;
}

/*
 * Tenant gate for a matched host whose service is tenant-aware: the label
 * (first label, without a naming suffix) must be a registered, active slug.
 * Returns 0 (tenant set or label cannot be a tenant and the route is
 * explicit), or a negative code with m->reason.
 */
static int tenant_gate(const sb_route_table *rt, const sb_tenants *tenants, const char *label,
		       size_t n, bool wildcard, bool preview_named, sb_route_match *m)
{
	const char *why = NULL;
	int r = sb_model_slug_check(rt->m, label, n, &why);
	if (r < 0) {
		if (!wildcard)
			return 0; /* an explicit host that is not a tenant name */
		/* a preview's name (the rule names any PR's) that nobody created:
		 * said as such, not as a slug that may not end so; a name that no
		 * service's preview rule gives ("acme-preview-3" beside no
		 * "acme." host) is just that: no slug ends so */
		if (r != SB_ERESERVED && preview_named)
			why = "this preview has not been created: the edge serves created and "
			      "listed previews only (switchboard preview create)";
		m->reason = r == SB_ERESERVED ? "the label is reserved and never a tenant" : why;
		return r;
	}
	const char *stored = NULL;
	sb_tenant_status st = sb_tenants_get(tenants, label, n, &stored);
	if (st == SB_TENANT_ACTIVE) {
		m->tenant = stored;
		return 0;
	}
	if (st == SB_TENANT_SUSPENDED) {
		m->tenant = stored;
		m->reason = "the tenant is suspended";
		return SB_ESUSPENDED;
	}
	m->reason = "no tenant is registered with this slug";
	return SB_ENOTENANT;
}

/*
 * Tenant gate for a host of the tenant-aware service that a route names
 * (host: as written in production, or the production host a staging or
 * preview host was derived from): its first label without a naming suffix,
 * so that "codex.rest", "codex-staging.rest" and, with a declared label,
 * "web-preview-3.rest" made from "codex.rest" are all tenant codex. A zone
 * apex is no tenant's host.
 */
static int named_host_tenant(const sb_route_table *rt, const sb_tenants *tenants, const char *host,
			     sb_route_match *m)
{
	const char *dot = strchr(host, '.');
	if (!dot)
		return 0;
	for (size_t z = 0; z < rt->m->decl->nzones; z++)
		if (strcmp(rt->m->decl->zones[z].name, host) == 0)
			return 0;
	size_t lo, ll;
	uint32_t pr;
	sb_model_name_parse(rt->m, host, (size_t)(dot - host), &lo, &ll, &pr);
	return tenant_gate(rt, tenants, host + lo, ll, false, false, m);
}

int sb_route_lookup(const sb_route_table *rt, const sb_tenants *tenants, const char *host,
		    size_t host_len, const char *path, size_t path_len, sb_route_match *m)
{
	char h[256];
	uint64_t sufh[128]; /* hash of the suffix starting at sufo[k] */
	uint16_t sufo[128];
	size_t nsuf = 0;
	memset(m, 0, sizeof(*m));
	int hn = sb_route_host_normalize(host, host_len, h, sizeof(h));
	if (hn < 0) {
		m->reason = "the host is not a valid host name";
		return SB_EINVAL;
	}
	size_t n = (size_t)hn;
	const char *q = memchr(path, '?', path_len);
	bool query = q != NULL;
	if (q)
		path_len = (size_t)(q - path);
	if (path_len == 0) {
		path = "/";
		path_len = 1;
	}

	uint64_t hash = HASH_INIT;
	for (size_t i = n; i-- > 0;) {
		hash = HASH_STEP(hash, h[i]);
		if (i > 0 && h[i - 1] == '.' && nsuf < SB_ARRAY_LEN(sufh)) {
			sufh[nsuf] = hash;
			sufo[nsuf++] = (uint16_t)i;
		}
	}
	/* sufo[] runs from the shortest suffix to the longest; the first label
	 * ends at sufo[nsuf-1]-1 */
	size_t label_len = nsuf ? (size_t)sufo[nsuf - 1] - 1 : n;
	ssize_t ts = rt->m->tenant_service;
	int gate = SB_ENOROUTE;
	const char *gate_reason = NULL;

	/* 1. exact host */
	const struct host_node *nd = htab_get(&rt->exact, h, n, hash);
	if (nd) {
		const struct path_ent *e = match_path(nd, path, path_len, query);
		if (e) {
			set_match(m, e);
			if (ts < 0 || m->service != (size_t)ts)
				return 0;
			return named_host_tenant(rt, tenants,
						 e->route->base_host ? e->route->base_host : h, m);
		}
		gate_reason = "the host is routed, but no route matches this path";
	}

	/* 2. a preview of any PR, by the naming rule: "<label>-preview-<pr>.rest"
	 *    is served like the production host named "<label>.rest" for the
	 *    rule (itself, or the host of a service that declares that label) */
	if (rt->preview_rule && nsuf) {
		uint32_t pr;
		bool known = false;
		const struct path_ent *e = preview_base(rt, h, n, label_len, sufh[nsuf - 1], path,
							path_len, query, &pr, &known);
		if (!e && known)
			gate_reason = "the host is routed, but no route matches this path";
		if (e) {
			m->deployment = NULL;
			m->derived = true;
			m->service = e->dep->service;
			m->env = SB_ENV_PREVIEW;
			m->pr = pr;
			m->route = e->route;
			if (ts < 0 || m->service != (size_t)ts)
				return 0;
			return named_host_tenant(rt, tenants, e->route->host, m);
		}
	}

	/* 3. wildcards, longest suffix first; "*example.com" also matches the
	 *    apex itself, which is the longest suffix of all */
	for (size_t k = nsuf + 1; k-- > 0;) {
		const char *suf = k == nsuf ? h : h + sufo[k];
		size_t sl = k == nsuf ? n : n - sufo[k];
		nd = htab_get(&rt->wild, suf, sl, k == nsuf ? hash : sufh[k]);
		if (!nd || (k == nsuf && !nd->apex_too))
			continue;
		const struct path_ent *e = match_path(nd, path, path_len, query);
		if (!e)
			continue;
		if (nd->tenant_gated && e->dep->service == (size_t)ts) {
			sb_route_match tm = *m;
			int r;
			if (k != nsuf - 1) {
				tm.reason = "a tenant host is a single label under the zone";
				r = SB_EBADSLUG;
			} else {
				uint32_t pr;
				bool known;
				bool named = !rt->preview_rule && nsuf &&
					     preview_base(rt, h, n, label_len, sufh[nsuf - 1], path,
							  path_len, query, &pr, &known);
				r = tenant_gate(rt, tenants, h, label_len, true, named, &tm);
			}
			if (r == 0 || r == SB_ESUSPENDED) {
				*m = tm;
				set_match(m, e);
				return r;
			}
			if (gate == SB_ENOROUTE) {
				gate = r;
				gate_reason = tm.reason;
			}
			continue;
		}
		set_match(m, e);
		return 0;
	}
	m->reason = gate_reason ? gate_reason : "no route matches this host";
	return gate;
}
