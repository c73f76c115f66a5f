/*
 * The derived DNS zones: what Switchboard answers for, built from the model,
 * the route table, the tenants and the static records of the declaration.
 * Pure: no I/O. A built sb_dns_zones is immutable (except its serial, until
 * it is shared) and may be read by any number of threads. docs/dns.md.
 *
 * For every declared zone:
 *   - SOA at the apex: MNAME (soa.mname, default the first nameserver), RNAME,
 *     the serial passed in, refresh/retry/expire/minimum, TTL from the
 *     declaration;
 *   - NS from the nameservers; a nameserver inside the zone gets the zone's
 *     addresses (glue, and authoritative data at that name);
 *   - A/AAAA (the zone's addresses) for every host any route serves in any
 *     environment (production, staging, listed previews; never previews of
 *     any PR by the naming rule, nor the tenant wildcard); an explicit route
 *     host "*.x.zone" is the DNS wildcard "*.x.zone", "*x.zone" is "x.zone"
 *     and "*.x.zone";
 *   - A/AAAA for "{slug}.{zone}" of every tenant slug the caller passes (the
 *     active ones), in the zones where the tenant-aware service serves;
 *   - static records (sb_dns_builder_record).
 * Names that exist only as ancestors of others ("b.zone" for "a.b.zone") are
 * empty non-terminals: they exist (NODATA), they have no records.
 */
#ifndef SB_DNS_ZONE_H
#define SB_DNS_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/sb.h"
#include "model/model.h"
#include "route/route.h"

typedef struct sb_dns_zones sb_dns_zones;
typedef struct sb_dns_builder sb_dns_builder;

typedef struct sb_dns_options {
	/* Answer every name one label under a tenant zone with a DNS wildcard
	 * "*.{zone}" instead of one record per registered tenant: constant
	 * memory, but unknown and suspended slugs resolve too (the edge still
	 * refuses them). Default false. */
	bool tenant_wildcard;
} sb_dns_options;

/*
 * A static record as declared (docs/dns.md):
 *   [[zone.record]]
 *   name = "@"            # "@" the apex; "www" relative; "www.example.com."
 *                         # absolute (inside the zone); "*.dev" a wildcard
 *   type = "MX"           # A, AAAA, CNAME, MX, TXT, CAA or SRV
 *   ttl  = 300            # optional, default the zone's ttl
 *   data = "10 mail.example.com."
 * Names in data follow master-file rules: a trailing dot makes them
 * absolute, otherwise they are relative to the zone, "@" is the zone.
 */
typedef struct sb_dns_record_decl {
	const char *name;
	const char *type;
	int64_t ttl; /* < 0: the zone's ttl */
	const char *data;
	const char *file; /* where it was declared, for messages (may be NULL) */
	int line, col;
	/* where each field's value is, for a message about that field (0: at
	 * line, col) */
	int name_line, name_col, type_line, type_col, data_line, data_col;
} sb_dns_record_decl;

/*
 * Start building from a model and its route table (both must outlive the
 * builder, not the zones): SOA, NS, glue and routed hosts of every declared
 * zone. opt may be NULL (defaults). Returns 0 and a builder, or SB_EINVAL
 * with d naming the zone when a zone declares no nameservers or no addresses.
 */
int sb_dns_builder_new(const sb_model *m, const sb_route_table *rt, const sb_dns_options *opt,
		       sb_dns_builder **out, sb_diag *d);

/*
 * Add a static record to the zone named zone. Returns 0, or SB_EINVAL with d
 * at rec's file, line and column saying why: unknown zone, bad owner name
 * (outside the zone, bad label), unsupported type, rdata that does not parse
 * for its type, a TTL above 2147483647, a TTL different from the other
 * records of the same RRset, or SB_EEXIST for a collision, naming both
 * sides: an A, AAAA or CNAME at a name that routing or a nameserver already
 * gives addresses, a CNAME beside other records (RFC 1034 3.6.2) or at the
 * apex. TXT, MX, CAA and SRV may sit beside routed addresses (apex MX, CAA).
 * A record refused after its name was looked at (bad data, collision, ttl)
 * leaves the builder unusable: free it; sb_dns_builder_finish refuses it.
 */
int sb_dns_builder_record(sb_dns_builder *b, const char *zone, const sb_dns_record_decl *rec,
			  sb_diag *d);

/*
 * Add the tenants (active slugs; the caller leaves out suspended ones) and
 * finish with the given SOA serial for every zone. Slugs the model refuses
 * (sb_model_slug_check: syntax, reserved, staging or preview suffix) are
 * skipped, as routing would refuse them. The builder is consumed (freed)
 * whatever the result. Returns 0 and the zones, or SB_EEXIST when a tenant's
 * name carries a static A, AAAA or CNAME (d names the record and the tenant),
 * or SB_EINVAL after a refused record or for an SOA name that does not parse.
 */
int sb_dns_builder_finish(sb_dns_builder *b, const char *const *tenants, size_t ntenants,
			  uint32_t serial, sb_dns_zones **out, sb_diag *d);

/* Free a builder that will not be finished (NULL is fine). */
void sb_dns_builder_free(sb_dns_builder *b);

/* new + finish without static records or options. Same return codes. */
int sb_dns_build(const sb_model *m, const sb_route_table *rt, const char *const *tenants,
		 size_t ntenants, uint32_t serial, sb_dns_zones **out, sb_diag *d);

/*
 * The zones of a declaration as the edge serves them: new with the
 * declaration's [dns] options, every [[zone.record]], then finish with the
 * given active tenant slugs and serial. Both the server and `zone export`
 * use it, so the exported file is what is served. Same return codes as
 * new, record and finish.
 */
int sb_dns_build_decl(const sb_decl *decl, const sb_model *m, const sb_route_table *rt,
		      const char *const *tenants, size_t ntenants, uint32_t serial,
		      sb_dns_zones **out, sb_diag *d);

/* Drop a reference to z (the builder gives one): the last frees it, and
 * what is attached to it. NULL is fine. */
void sb_dns_free(sb_dns_zones *z);

/*
 * Take another reference to z (released with sb_dns_free), from any thread:
 * a zone transfer keeps the zones it streams while the snapshot that held
 * them is replaced. Returns z.
 */
sb_dns_zones *sb_dns_zones_ref(const sb_dns_zones *z);

/*
 * Attach ext to z, freed by ext_free(ext) with z (a previous attachment is
 * freed first). Only before z is shared: xfr.c attaches the transfer state
 * of a build (history, keys, allow list) there. sb_dns_zones_attachment
 * returns it, or NULL.
 */
void sb_dns_zones_attach(sb_dns_zones *z, void *ext, void (*ext_free)(void *));
void *sb_dns_zones_attachment(const sb_dns_zones *z);

/* Number of zones, in declaration order; index of a zone by name (any case,
 * trailing dot allowed), or -1; a zone's name (lower case, no trailing dot). */
size_t sb_dns_zone_count(const sb_dns_zones *z);
ssize_t sb_dns_zone_find(const sb_dns_zones *z, const char *name);
const char *sb_dns_zone_name(const sb_dns_zones *z, size_t i);

/* A zone's SOA serial, and setting it (only before the zones are shared:
 * the caller advances it when sb_dns_content_hash changes). */
uint32_t sb_dns_zone_serial(const sb_dns_zones *z, size_t i);
void sb_dns_zone_set_serial(sb_dns_zones *z, size_t i, uint32_t serial);

/*
 * A 64-bit digest of zone i's content, serial excluded, independent of the
 * order in which routes, tenants and records were added: equal content,
 * equal hash. Compare it with the previous build's to know whether the
 * serial must advance.
 */
uint64_t sb_dns_content_hash(const sb_dns_zones *z, size_t i);

/*
 * The next serial after old, RFC 1982: now (e.g. unix time) when it is
 * greater than old in serial arithmetic, otherwise old + 1 (wrapping). So
 * the serial tracks the clock and still always increases.
 */
uint32_t sb_dns_serial_next(uint32_t old, uint32_t now);

/* a > b in RFC 1982 serial number arithmetic (false when a == b or when
 * the comparison is undefined, a - b == 2^31). */
bool sb_dns_serial_gt(uint32_t a, uint32_t b);

typedef struct sb_dns_stats {
	size_t names;	/* owner names, empty non-terminals included */
	size_t rrsets;	/* RRsets, shared address RRsets counted per name */
	size_t tenants; /* names added for tenants */
	size_t bytes;	/* memory held by this zone's tables */
} sb_dns_stats;

void sb_dns_zone_stats(const sb_dns_zones *z, size_t i, sb_dns_stats *st);

/* Bytes held by all zones (tables, names, rdata, the pool). */
size_t sb_dns_memory(const sb_dns_zones *z);

#endif
