/*
 * The route table: host + path -> deployment, and host -> tenant,
 * environment and pull request. Pure: no I/O, no locks; a compiled table is
 * immutable and may be read by any number of threads.
 *
 * Precedence (docs/routing.md):
 *   1. an exact host beats a wildcard host;
 *   2. a longer wildcard suffix beats a shorter one;
 *   3. host specificity is decided before path: among the patterns whose
 *      host matches, the most specific host that has a matching path wins;
 *   4. then a longer path beats a shorter one (an exact path beats a prefix
 *      of the same length).
 * Hosts match case-insensitively; a trailing dot and a port are ignored.
 *
 * Lookup cost is O(labels): one hash probe for the exact host, one for the
 * preview naming rule, and one per label suffix for wildcards, all from hashes
 * computed in a single right-to-left pass over the host.
 */
#ifndef SB_ROUTE_ROUTE_H
#define SB_ROUTE_ROUTE_H

#include "common/sb.h"
#include "model/model.h"

/* ---- tenants ---------------------------------------------------------- */

typedef enum sb_tenant_status {
	SB_TENANT_NONE = 0,
	SB_TENANT_ACTIVE = 1,
	SB_TENANT_SUSPENDED = 2,
} sb_tenant_status;

/* A set of tenant slugs with their status (opaque). Compact: one 8-byte slot
 * per tenant at load <= 1/2 plus the slug bytes. Not thread-safe for writes;
 * readers may share a set that is no longer written. */
typedef struct sb_tenants sb_tenants;

sb_tenants *sb_tenants_new(size_t expected);
void sb_tenants_free(sb_tenants *t);
/* Add or update a slug. Returns 0, or SB_ETOOLONG (> 63 bytes). The slug's
 * syntax is the caller's to check (sb_model_slug_check). */
int sb_tenants_put(sb_tenants *t, const char *slug, size_t n, sb_tenant_status st);
/* Add or replace a slug with a config: the tenant's settings as one line of
 * JSON (clen bytes, no CR or LF), sent to the tenant-aware service as
 * X-Tenant-Config. config NULL is sb_tenants_put. Same return codes. */
int sb_tenants_put_config(sb_tenants *t, const char *slug, size_t n, sb_tenant_status st,
			  const char *config, size_t clen);
/* The config of a tenant, given the stored slug that sb_tenants_get (or a
 * route match) returned, and its length; NULL when it has none. */
const char *sb_tenants_config(const char *stored, size_t *len);
/* Status of a slug and, when found, its stored NUL-terminated copy. */
sb_tenant_status sb_tenants_get(const sb_tenants *t, const char *slug, size_t n,
				const char **stored);
size_t sb_tenants_count(const sb_tenants *t);
/* Call fn for every slug with the given status (in no particular order);
 * stops and returns fn's value when it is not 0. */
int sb_tenants_each(const sb_tenants *t, sb_tenant_status st,
		    int (*fn)(void *ctx, const char *slug, size_t n), void *ctx);
/* Bytes held by the set (slots and slug storage). */
size_t sb_tenants_memory(const sb_tenants *t);

/* ---- route table ------------------------------------------------------ */

typedef struct sb_route_table sb_route_table;

/* One listed route (for `switchboard routes`). */
typedef struct sb_route_entry {
	const sb_route *route;
	const sb_deployment *deployment;
	bool tenant_gated; /* serves {slug}.<zone> for registered tenants only */
	bool implied;	   /* added for the tenant-aware service, not written */
} sb_route_entry;

typedef struct sb_route_options {
	/* Resolve "<label>-preview-<pr>" hosts of any PR by the naming rule
	 * (true for a declaration; the live edge lists its previews). */
	bool preview_rule;
} sb_route_options;

/*
 * Compile the routes of every deployment of the model (which must outlive
 * the table). Adds the wildcard "*.<zone>" (every path) for the tenant-aware service in the zones
 * of its production hosts. Returns 0, or SB_EEXIST when two deployments claim the same host and
 * path (d names both and where they were declared), or SB_EINVAL.
 */
int sb_route_compile(const sb_model *m, const sb_route_options *opt, sb_route_table **out,
		     sb_diag *d);
void sb_route_free(sb_route_table *rt);

/* All routes, sorted by environment, host, then path. */
const sb_route_entry *sb_route_entries(const sb_route_table *rt, size_t *n);
size_t sb_route_count(const sb_route_table *rt);
/* Bytes held by the compiled table (not counting the model or tenants). */
size_t sb_route_memory(const sb_route_table *rt);

typedef struct sb_route_match {
	const sb_deployment *deployment; /* NULL for a preview derived by rule */
	size_t service;
	sb_env env;
	uint32_t pr;
	const sb_route *route; /* the winning pattern; for a rule-derived preview,
				  the production route it was derived from */
	bool derived;	       /* preview resolved by the naming rule */
	const char *tenant;    /* slug (stored in the tenant set), or NULL */
	const char *reason;    /* why not routed (static text), or NULL */
} sb_route_match;

/*
 * Look up a request. host may carry a port and a trailing dot and any case;
 * path is the request target's path and query: a pattern with an exact path
 * matches only when there is no '?' (Cloudflare matches the whole URL), a
 * prefix pattern whatever follows. tenants may be NULL (no tenant
 * registered).
 * Returns 0 when routed, else SB_EINVAL (the host is not a host name:
 * sb_route_host_normalize refuses it), SB_ENOROUTE (no pattern matches),
 * SB_ENOTENANT (tenant-aware host, slug not registered), SB_ESUSPENDED
 * (registered but suspended; deployment and tenant are still filled in),
 * SB_EBADSLUG or SB_ERESERVED (the label cannot be a tenant); m->reason says
 * why in words.
 */
int sb_route_lookup(const sb_route_table *rt, const sb_tenants *tenants, const char *host,
		    size_t host_len, const char *path, size_t path_len, sb_route_match *m);

/* Check what follows the host in a Host value (RFC 9110 7.2: uri-host
 * [":" port], port = *DIGIT): nothing, or ':' and at most five digits.
 * Returns the length of the host part (an IPv6 literal with its brackets),
 * or SB_EINVAL (anything else after it, or a '[' without ']'). */
int sb_route_host_port_ok(const char *host, size_t n);

/* Normalise a Host value into buf (lower case, no port, no trailing dot).
 * Returns the length, or SB_EINVAL (empty, too long, bad characters, an
 * empty label: a leading dot, "..", or more than one trailing dot; a port
 * that sb_route_host_port_ok() refuses). */
int sb_route_host_normalize(const char *host, size_t n, char *buf, size_t size);

#endif
