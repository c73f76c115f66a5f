/*
 * Building the derived zones (zone.h). Why it looks like this:
 *
 * - One open-addressing table per zone, keyed by the relative lower-case
 *   wire name, slots holding node indexes (4 bytes). Nodes are 16 bytes and
 *   names are packed back to back, so a million tenants cost tens of
 *   megabytes, not hundreds (docs/dns.md has the figure).
 * - Every name that routing or a tenant gives the zone's addresses shares
 *   one RRset array (zone->addr); only names with static records get their
 *   own.
 * - Ancestors are inserted with every name, as empty nodes: that is what
 *   makes "b.zone" an empty non-terminal when "a.b.zone" exists, and what
 *   the wildcard rules of RFC 4592 need (answer.c).
 * - Collisions are checked as names are added, and the message names both
 *   sides; the derived side is looked up again only when reporting.
 */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/internal.h"

struct static_rec {
	size_t zone;
	uint32_t node;
	uint16_t type;
	const char *owner; /* as written */
	const char *file;
	int line, col;
};

struct sb_dns_builder {
	const sb_model *m;
	const sb_route_table *rt;
	sb_dns_options opt;
	sb_dns_zones *zs;
	bool *tenant_zone; /* per zone: the tenant-aware service serves {slug}.zone */
	struct static_rec *recs;
	size_t nrecs, caprecs;
	bool failed; /* a record was refused: the builder can only be freed */
};

static const uint8_t root_name[1] = {0};

/*
 * How a zone set is allocated: the struct the rest of src/dns/ sees, then a
 * reference count (a transfer streaming from a snapshot that was replaced
 * keeps its zones) and what xfr.c attaches (transfer state). Only this file
 * allocates zone sets, so a sb_dns_zones pointer is always the first member
 * of a box.
 */
struct zones_box {
	struct sb_dns_zones zs;
	atomic_int refs;
	void *ext;
	void (*ext_free)(void *);
};

static struct zones_box *box_of(const sb_dns_zones *zs)
{
	return (struct zones_box *)(void *)zs;
}

/* ---- the table --------------------------------------------------------- */

static uint64_t name_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* The slot holding [p, p+n), or the empty slot where it would go. */
static size_t slot_of(const struct sb_dns_zone *z, const uint8_t *p, size_t n)
{
	size_t i = (size_t)name_hash(p, n) & z->mask;
	for (;;) {
		uint32_t s = z->slots[i];
		if (!s)
			return i;
		const struct sb_dns_node *nd = &z->nodes[s - 1];
		if (nd->name_len == n && memcmp(z->names + nd->name, p, n) == 0)
			return i;
		i = (i + 1) & z->mask;
	}
}

const struct sb_dns_node *sb_dns_node_find(const struct sb_dns_zone *z, const uint8_t *p, size_t n)
{
	uint32_t s = z->slots[slot_of(z, p, n)];
	return s ? &z->nodes[s - 1] : NULL;
}

const sb_dns_rrset *sb_dns_node_rrset(const struct sb_dns_node *nd, uint16_t type)
{
	for (uint16_t i = 0; i < nd->nrrsets; i++)
		if (nd->rrsets[i].type == type)
			return &nd->rrsets[i];
	return NULL;
}

/* Size the table for `expect` names at load <= 1/2. */
static void table_reserve(struct sb_dns_zone *z, size_t expect)
{
	size_t want = 16;
	while (want < expect * 2)
		want *= 2;
	if (z->slots && want <= z->mask + 1)
		return;
	free(z->slots);
	z->slots = sb_xcalloc(want, sizeof(*z->slots));
	z->mask = want - 1;
	for (size_t k = 0; k < z->nnodes; k++) {
		const struct sb_dns_node *nd = &z->nodes[k];
		z->slots[slot_of(z, z->names + nd->name, nd->name_len)] = (uint32_t)k + 1;
	}
	if (expect > z->cap) {
		z->cap = expect;
		z->nodes = sb_xrealloc(z->nodes, z->cap * sizeof(*z->nodes));
	}
}

/* The node of a relative name, added (with its ancestors) when missing. */
static uint32_t node_add(struct sb_dns_zone *z, const uint8_t *p, size_t n)
{
	uint32_t s = z->slots[slot_of(z, p, n)];
	if (s)
		return s - 1;
	if (n > 0)
		node_add(z, p + 1 + p[0], n - 1 - p[0]); /* the parent */
	if ((z->nnodes + 1) * 2 > z->mask + 1)
		table_reserve(z, (z->mask + 1));
	if (z->nnodes == z->cap) {
		z->cap = z->cap ? z->cap * 2 : 64;
		z->nodes = sb_xrealloc(z->nodes, z->cap * sizeof(*z->nodes));
	}
	if (z->names_len + n > z->names_cap) {
		z->names_cap = (z->names_len + n) * 2 + 256;
		z->names = sb_xrealloc(z->names, z->names_cap);
	}
	if (z->names_len + n > UINT32_MAX)
		sb_oom();
	memcpy(z->names + z->names_len, p, n);
	uint32_t k = (uint32_t)z->nnodes++;
	z->nodes[k] = (struct sb_dns_node){.name = (uint32_t)z->names_len, .name_len = (uint8_t)n};
	z->names_len += n;
	z->slots[slot_of(z, p, n)] = k + 1;
	return k;
}

/* ---- names ------------------------------------------------------------- */

/* The zone whose origin ends wire (len bytes, root included) at a label
 * boundary, the longest one; *rel gets the length of the relative part. */
static ssize_t zone_of_wire(const sb_dns_zones *zs, const uint8_t *wire, size_t len, size_t *rel)
{
	for (size_t i = 0; i < len; i += 1 + (size_t)wire[i]) {
		for (size_t k = 0; k < zs->nzones; k++) {
			const struct sb_dns_zone *z = &zs->zones[k];
			if (z->origin_len == len - i && memcmp(z->origin, wire + i, len - i) == 0) {
				*rel = i;
				return (ssize_t)k;
			}
		}
		if (wire[i] == 0)
			break;
	}
	return -1;
}

/* A host name as the model writes it (lower case, no trailing dot) in wire
 * format. Returns the length, or a negative code. */
static int host_wire(const char *host, uint8_t *out, size_t cap)
{
	const char *why;
	return sb_dns_name_parse(host, strlen(host), root_name, 1, true, out, cap, &why);
}

/* The DNS names a route host stands for: "*example.com" is both the apex
 * and the wildcard below it. Returns how many (1 or 2). */
static int route_names(const sb_route *r, const char *out[2], char *buf, size_t size)
{
	if (!r->host_apex_too) {
		out[0] = r->host; /* "api.zone" or "*.x.zone" */
		return 1;
	}
	snprintf(buf, size, "*.%s", r->host + 1);
	out[0] = r->host + 1;
	out[1] = buf;
	return 2;
}

static const char *rel_text(const struct sb_dns_zone *z, const struct sb_dns_node *nd, char *buf,
			    size_t size)
{
	char rel[SB_DNS_NAME_MAX];
	sb_dns_name_text(z->names + nd->name, nd->name_len, rel, sizeof(rel));
	snprintf(buf, size, "%s%s%s", rel, nd->name_len ? "." : "", z->name);
	return buf;
}

/* Why a name has the zone's addresses, in words, for collision messages. */
static const char *derived_why(const sb_dns_builder *b, size_t zi, uint32_t k, char *buf,
			       size_t size)
{
	const struct sb_dns_zone *z = &b->zs->zones[zi];
	const struct sb_dns_node *nd = &z->nodes[k];
	const sb_zone_decl *zd = z->decl;
	char name[SB_DNS_NAME_MAX + 64];
	rel_text(z, nd, name, sizeof(name));
	if (nd->flags & SB_DNS_NODE_NS) {
		char at[SB_WHERE_SIZE];
		snprintf(buf, size, "nameserver %s of zone %s (%s)", name, z->name,
			 sb_where(b->m->decl->file, zd->line, zd->col, at, sizeof(at)));
		return buf;
	}
	size_t ne;
	const sb_route_entry *e = sb_route_entries(b->rt, &ne);
	for (size_t i = 0; i < ne; i++) {
		const char *names[2];
		char wb[300];
		int nn = e[i].tenant_gated ? 0 : route_names(e[i].route, names, wb, sizeof(wb));
		for (int j = 0; j < nn; j++)
			if (strcmp(names[j], name) == 0) {
				const sb_route *r = e[i].route;
				char at[SB_WHERE_SIZE];
				snprintf(buf, size, "route \"%s\" of %s (%s)", r->pattern,
					 e[i].deployment->name,
					 sb_where(r->file, r->line, r->col, at, sizeof(at)));
				return buf;
			}
	}
	snprintf(buf, size, "the derived host %s", name);
	return buf;
}

/* The static record of (zone, node, type), or of any type when type is 0. */
static const struct static_rec *static_find(const sb_dns_builder *b, size_t zi, uint32_t k,
					    uint16_t type)
{
	for (size_t i = 0; i < b->nrecs; i++)
		if (b->recs[i].zone == zi && b->recs[i].node == k &&
		    (!type || b->recs[i].type == type))
			return &b->recs[i];
	return NULL;
}

static const char *rec_where(const struct static_rec *r, char *buf, size_t size)
{
	char tb[16];
	sb_dns_type_text(r->type, tb, sizeof(tb));
	char at[SB_WHERE_SIZE];
	snprintf(buf, size, "static %s record \"%s\" (%s)", tb, r->owner,
		 sb_where(r->file, r->line, r->col, at, sizeof(at)));
	return buf;
}

/* ---- builder ----------------------------------------------------------- */

static int zone_setup(sb_dns_zones *zs, size_t zi, const sb_decl *decl, sb_diag *d)
{
	const sb_zone_decl *zd = &decl->zones[zi];
	struct sb_dns_zone *z = &zs->zones[zi];
	z->decl = zd;
	z->name = sb_pool_strdup(zs->pool, zd->name);
	z->ttl = zd->ttl;
	z->soa_minimum = zd->soa.minimum;
	int n = host_wire(zd->name, z->origin, sizeof(z->origin));
	if (n < 0)
		return sb_diag_set(d, decl->file, zd->line, zd->col,
				   "zone \"%s\" is not a DNS name", zd->name);
	z->origin_len = (size_t)n;
	if (zd->nnameservers == 0)
		return sb_diag_set(d, decl->file, zd->line, zd->col,
				   "zone %s declares no nameservers: DNS needs at least one "
				   "(nameservers = [\"ns1.%s\"])",
				   zd->name, zd->name);
	if (zd->naddresses == 0)
		return sb_diag_set(d, decl->file, zd->line, zd->col,
				   "zone %s declares no addresses: routed hosts and tenants would "
				   "have nothing to resolve to (addresses = [\"192.0.2.1\"])",
				   zd->name);
	sb_dns_rrset a = {.type = SB_DNS_A, .ttl = zd->ttl};
	sb_dns_rrset aaaa = {.type = SB_DNS_AAAA, .ttl = zd->ttl};
	for (size_t i = 0; i < zd->naddresses; i++) {
		uint8_t buf[16];
		if (inet_pton(AF_INET, zd->addresses[i], buf) == 1)
			sb_dns_rrset_add(&a, buf, 4, zs->pool);
		else if (inet_pton(AF_INET6, zd->addresses[i], buf) == 1)
			sb_dns_rrset_add(&aaaa, buf, 16, zs->pool);
		else
			return sb_diag_set(d, decl->file, zd->line, zd->col,
					   "zone %s: \"%s\" is not an IP address", zd->name,
					   zd->addresses[i]);
	}
	z->addr = sb_pool_alloc(zs->pool, 2 * sizeof(*z->addr));
	if (a.count)
		z->addr[z->naddr++] = a;
	if (aaaa.count)
		z->addr[z->naddr++] = aaaa;
	z->names_cap = 256;
	z->names = sb_xmalloc(z->names_cap);
	table_reserve(z, 64);
	node_add(z, root_name, 0); /* the apex: the empty relative name */
	for (size_t i = 0; i < zd->nnameservers; i++) {
		uint8_t w[SB_DNS_NAME_MAX];
		int wl = host_wire(zd->nameservers[i], w, sizeof(w));
		size_t rel;
		if (wl < 0)
			return sb_diag_set(d, decl->file, zd->line, zd->col,
					   "zone %s: nameserver \"%s\" is not a DNS name", zd->name,
					   zd->nameservers[i]);
		if (zone_of_wire(zs, w, (size_t)wl, &rel) == (ssize_t)zi) {
			/* node_add may move z->nodes: index after the call */
			size_t ni = node_add(z, w, rel);
			z->nodes[ni].flags |= SB_DNS_NODE_ADDR | SB_DNS_NODE_NS;
		}
	}
	return 0;
}

static int add_routes(sb_dns_builder *b, sb_diag *d)
{
	size_t ne;
	const sb_route_entry *e = sb_route_entries(b->rt, &ne);
	for (size_t i = 0; i < ne; i++) {
		const sb_route *r = e[i].route;
		if (e[i].tenant_gated) {
			/* "*.zone" of the tenant-aware service: names per tenant */
			uint8_t w[SB_DNS_NAME_MAX];
			int wl = host_wire(r->host + 2, w, sizeof(w));
			size_t rel;
			ssize_t zi = wl < 0 ? -1 : zone_of_wire(b->zs, w, (size_t)wl, &rel);
			if (zi >= 0 && rel == 0)
				b->tenant_zone[zi] = true;
			continue;
		}
		const char *names[2];
		char wb[300];
		int nn = route_names(r, names, wb, sizeof(wb));
		for (int j = 0; j < nn; j++) {
			uint8_t w[SB_DNS_NAME_MAX];
			int wl = host_wire(names[j], w, sizeof(w));
			size_t rel;
			if (wl < 0)
				return sb_diag_set(d, r->file, r->line, r->col,
						   "route \"%s\": \"%s\" is not a DNS name",
						   r->pattern, names[j]);
			ssize_t zi = zone_of_wire(b->zs, w, (size_t)wl, &rel);
			if (zi < 0)
				continue; /* not a zone of ours: its DNS is elsewhere */
			struct sb_dns_zone *z = &b->zs->zones[zi];
			size_t ni = node_add(z, w, rel); /* may move z->nodes */
			z->nodes[ni].flags |= SB_DNS_NODE_ADDR | SB_DNS_NODE_ROUTED;
		}
	}
	return 0;
}

int sb_dns_builder_new(const sb_model *m, const sb_route_table *rt, const sb_dns_options *opt,
		       sb_dns_builder **out, sb_diag *d)
{
	int r = 0;
	const sb_decl *decl = m->decl;
	sb_dns_builder *b = sb_xcalloc(1, sizeof(*b));
	b->m = m;
	b->rt = rt;
	if (opt)
		b->opt = *opt;
	struct zones_box *box = sb_xcalloc(1, sizeof(*box));
	atomic_init(&box->refs, 1);
	b->zs = &box->zs;
	b->zs->pool = sb_pool_new(0);
	b->zs->nzones = decl->nzones;
	b->zs->zones = sb_xcalloc(decl->nzones + 1, sizeof(*b->zs->zones));
	b->tenant_zone = sb_xcalloc(decl->nzones + 1, sizeof(bool));
	for (size_t i = 0; i < decl->nzones; i++)
		if ((r = zone_setup(b->zs, i, decl, d)) < 0)
			goto out;
	r = add_routes(b, d);
out:
	if (r < 0) {
		sb_dns_builder_free(b);
		b = NULL;
	}
	*out = b;
	return r;
}

void sb_dns_builder_free(sb_dns_builder *b)
{
	if (!b)
		return;
	sb_dns_free(b->zs);
	free(b->tenant_zone);
	free(b->recs);
	free(b);
}

/* Insert rs into node k's own RRsets (sorted by type). */
static sb_dns_rrset *node_put_rrset(sb_dns_zones *zs, struct sb_dns_node *nd,
				    const sb_dns_rrset *rs)
{
	sb_dns_rrset *a = sb_pool_alloc(zs->pool, (nd->nrrsets + 1u) * sizeof(*a));
	size_t o = 0, i = 0;
	for (; i < nd->nrrsets && nd->rrsets[i].type < rs->type; i++)
		a[o++] = nd->rrsets[i];
	sb_dns_rrset *at = &a[o];
	a[o++] = *rs;
	for (; i < nd->nrrsets; i++)
		a[o++] = nd->rrsets[i];
	nd->rrsets = a;
	nd->nrrsets++;
	return at;
}

static bool addr_type(uint16_t t)
{
	return t == SB_DNS_A || t == SB_DNS_AAAA || t == SB_DNS_CNAME;
}

/* Add a parsed static record to node k of zone zi, checking collisions. */
static int record_put(sb_dns_builder *b, size_t zi, uint32_t k, uint16_t type, uint32_t ttl,
		      const uint8_t *rd, uint16_t rl, const sb_dns_record_decl *rec,
		      const char *file, sb_diag *d)
{
	struct sb_dns_zone *z = &b->zs->zones[zi];
	struct sb_dns_node *nd = &z->nodes[k];
	const char *owner = rec->name ? rec->name : "", *tname = rec->type ? rec->type : "";
	char w1[1200], w2[SB_DNS_NAME_MAX + 64];
	if (addr_type(type) && (nd->flags & SB_DNS_NODE_ADDR))
		return sb_diag_setc(d, SB_EEXIST, file, rec->line, rec->col,
				    "record \"%s\" %s collides with %s, which gives %s its "
				    "addresses",
				    owner, tname, derived_why(b, zi, k, w1, sizeof(w1)),
				    rel_text(z, nd, w2, sizeof(w2)));
	const struct static_rec *other = NULL;
	if (type == SB_DNS_CNAME) {
		/* another CNAME is not "other records": it gets its own message
		 * below, or is the same record again */
		for (uint16_t i = 0; i < nd->nrrsets && !other; i++)
			if (nd->rrsets[i].type != SB_DNS_CNAME)
				other = static_find(b, zi, k, nd->rrsets[i].type);
	} else if (sb_dns_node_rrset(nd, SB_DNS_CNAME)) {
		other = static_find(b, zi, k, SB_DNS_CNAME);
	}
	if (other)
		return sb_diag_setc(d, SB_EEXIST, file, rec->line, rec->col,
				    "record \"%s\" %s collides with %s: a CNAME cannot share its "
				    "name with other records",
				    owner, tname, rec_where(other, w1, sizeof(w1)));

	sb_dns_rrset *rs = (sb_dns_rrset *)sb_dns_node_rrset(nd, type);
	if (rs && rs->ttl != ttl)
		return sb_diag_set(d, file, rec->line, rec->col,
				   "record \"%s\" %s: ttl %u differs from the %s's ttl %u (records "
				   "of one name and type share one ttl, RFC 2181 5.2)",
				   owner, tname, ttl,
				   rec_where(static_find(b, zi, k, type), w1, sizeof(w1)), rs->ttl);
	if (!rs) {
		sb_dns_rrset empty = {.type = type, .ttl = ttl};
		rs = node_put_rrset(b->zs, nd, &empty);
		if (b->nrecs == b->caprecs) {
			b->caprecs = b->caprecs ? b->caprecs * 2 : 16;
			b->recs = sb_xrealloc(b->recs, b->caprecs * sizeof(*b->recs));
		}
		b->recs[b->nrecs++] = (struct static_rec){
		    .zone = zi,
		    .node = k,
		    .type = type,
		    .owner = sb_pool_strdup(b->zs->pool, owner),
		    .file = sb_pool_strdup(b->zs->pool, file),
		    .line = rec->line,
		    .col = rec->col,
		};
	}
	if (type == SB_DNS_CNAME && rs->count > 0) {
		uint16_t ol;
		const uint8_t *od = sb_dns_rrset_rdata(rs, 0, &ol);
		if (ol != rl || memcmp(od, rd, ol) != 0)
			return sb_diag_setc(d, SB_EEXIST, file, rec->line, rec->col,
					    "record \"%s\" CNAME collides with %s: a name has one "
					    "CNAME",
					    owner,
					    rec_where(static_find(b, zi, k, type), w1, sizeof(w1)));
	}
	if (sb_dns_rrset_add(rs, rd, (uint16_t)rl, b->zs->pool) < 0)
		return sb_diag_set(d, file, rec->line, rec->col,
				   "record \"%s\" %s: too many records", owner, tname);
	nd->flags |= SB_DNS_NODE_STATIC;
	return 0;
}

/* The position of a record's field for a message about it: the field's
 * value, else the record's table. Two arguments: line, col. */
#define FIELD_AT(rec, f)                                                                           \
	((rec)->f##_line ? (rec)->f##_line : (rec)->line),                                         \
	    ((rec)->f##_line ? (rec)->f##_col : (rec)->col)

int sb_dns_builder_record(sb_dns_builder *b, const char *zone, const sb_dns_record_decl *rec,
			  sb_diag *d)
{
	const char *file = rec->file ? rec->file : b->m->decl->file;
	const char *owner = rec->name ? rec->name : "";
	const char *tname = rec->type ? rec->type : "";
	ssize_t zi = zone ? sb_dns_zone_find(b->zs, zone) : -1;
	if (zi < 0)
		return sb_diag_set(d, file, rec->line, rec->col,
				   "record \"%s\": \"%s\" is not a declared zone", owner,
				   zone ? zone : "(none)");
	struct sb_dns_zone *z = &b->zs->zones[zi];
	uint16_t type;
	if (sb_dns_static_type(tname, &type) < 0)
		return sb_diag_set(d, file, FIELD_AT(rec, type),
				   "record \"%s\": type \"%s\" is not supported for static records "
				   "(A, AAAA, CNAME, MX, TXT, CAA, SRV)",
				   owner, tname);
	uint8_t w[SB_DNS_NAME_MAX];
	const char *why;
	int wl = sb_dns_name_parse(owner, strlen(owner), z->origin, z->origin_len, true, w,
				   sizeof(w), &why);
	if (wl < 0)
		return sb_diag_set(d, file, FIELD_AT(rec, name), "record \"%s\" %s: %s", owner,
				   tname, why);
	size_t rel;
	if (zone_of_wire(b->zs, w, (size_t)wl, &rel) != zi)
		return sb_diag_set(
		    d, file, FIELD_AT(rec, name),
		    "record \"%s\" %s: the name is not in zone %s (write it relative "
		    "to the zone, or absolute with a trailing dot)",
		    owner, tname, z->name);
	if (rec->ttl > 2147483647)
		return sb_diag_set(d, file, rec->line, rec->col,
				   "record \"%s\" %s: ttl %lld is above 2147483647", owner, tname,
				   (long long)rec->ttl);
	uint32_t ttl = rec->ttl < 0 ? z->ttl : (uint32_t)rec->ttl;
	if (type == SB_DNS_CNAME && rel == 0)
		return sb_diag_setc(d, SB_EEXIST, file, FIELD_AT(rec, type),
				    "record \"%s\" CNAME: the zone apex cannot be a CNAME (it has "
				    "SOA and NS records)",
				    owner);
	uint8_t *rd = sb_xmalloc(65536);
	char err[300];
	int r = 0;
	int rl = sb_dns_rdata_parse(type, rec->data ? rec->data : "", z->origin, z->origin_len, rd,
				    65536, err, sizeof(err));
	if (rl < 0) {
		r = sb_diag_set(d, file, FIELD_AT(rec, data), "record \"%s\" %s: %s", owner, tname,
				err);
		goto out;
	}
	r = record_put(b, (size_t)zi, node_add(z, w, rel), type, ttl, rd, (uint16_t)rl, rec, file,
		       d);
out:
	free(rd);
	if (r < 0)
		b->failed = true;
	return r;
}

/* ---- finishing --------------------------------------------------------- */

/* A tenant's name (or the tenant wildcard) k in zone zi gets the addresses,
 * unless a static A, AAAA or CNAME sits there. */
static int tenant_mark(sb_dns_builder *b, size_t zi, uint32_t k, const char *slug, sb_diag *d)
{
	struct sb_dns_zone *z = &b->zs->zones[zi];
	struct sb_dns_node *nd = &z->nodes[k];
	if (nd->flags & SB_DNS_NODE_STATIC) {
		for (uint16_t i = 0; i < nd->nrrsets; i++) {
			if (!addr_type(nd->rrsets[i].type))
				continue;
			const struct static_rec *r = static_find(b, zi, k, nd->rrsets[i].type);
			char w[1200], w2[SB_DNS_NAME_MAX + 64], who[100];
			rec_where(r, w, sizeof(w));
			if (slug)
				snprintf(who, sizeof(who), "tenant '%s'", slug);
			else
				snprintf(who, sizeof(who), "the tenant wildcard");
			return sb_diag_setc(d, SB_EEXIST, r->file, r->line, r->col,
					    "%s collides with %s, which gives %s the zone's "
					    "addresses",
					    w, who, rel_text(z, nd, w2, sizeof(w2)));
		}
	}
	if (!(nd->flags & SB_DNS_NODE_TENANT))
		z->ntenants++;
	nd->flags |= SB_DNS_NODE_ADDR | SB_DNS_NODE_TENANT;
	return 0;
}

static int add_tenants(sb_dns_builder *b, const char *const *tenants, size_t ntenants, sb_diag *d)
{
	for (size_t zi = 0; zi < b->zs->nzones; zi++) {
		if (!b->tenant_zone[zi])
			continue;
		struct sb_dns_zone *z = &b->zs->zones[zi];
		int r;
		if (b->opt.tenant_wildcard) {
			static const uint8_t star[2] = {1, '*'};
			if ((r = tenant_mark(b, zi, node_add(z, star, 2), NULL, d)) < 0)
				return r;
			continue;
		}
		table_reserve(z, z->nnodes + ntenants);
		for (size_t i = 0; i < ntenants; i++) {
			const char *s = tenants[i];
			size_t n = strlen(s);
			const char *why;
			if (sb_model_slug_check(b->m, s, n, &why) != 0)
				continue; /* routing refuses it too */
			uint8_t w[1 + SB_SLUG_MAX];
			w[0] = (uint8_t)n;
			memcpy(w + 1, s, n);
			if ((r = tenant_mark(b, zi, node_add(z, w, n + 1), s, d)) < 0)
				return r;
		}
	}
	return 0;
}

static int rrset_type_cmp(const void *a, const void *b)
{
	const sb_dns_rrset *x = a, *y = b;
	return (int)x->type - (int)y->type;
}

/* SOA and NS at the apex; the serial is written later (zone_set_serial). */
static int apex_records(sb_dns_zones *zs, struct sb_dns_zone *z, const char *file, sb_diag *d)
{
	const sb_zone_decl *zd = z->decl;
	uint8_t rd[SB_DNS_NAME_MAX * 2 + 20];
	const char *mname = zd->soa.mname ? zd->soa.mname : zd->nameservers[0];
	const char *rname = zd->soa.rname ? zd->soa.rname : "hostmaster";
	int n = host_wire(mname, rd, sizeof(rd));
	int n2 = n < 0 ? n : host_wire(rname, rd + n, sizeof(rd) - (size_t)n);
	if (n < 0 || n2 < 0)
		return sb_diag_set(d, file, zd->line, zd->col,
				   "zone %s: SOA mname \"%s\" or rname \"%s\" is not a DNS name",
				   zd->name, mname, rname);
	size_t o = (size_t)n + (size_t)n2;
	uint32_t v[5] = {0, zd->soa.refresh, zd->soa.retry, zd->soa.expire, zd->soa.minimum};
	for (int i = 0; i < 5; i++) {
		rd[o++] = (uint8_t)(v[i] >> 24);
		rd[o++] = (uint8_t)(v[i] >> 16);
		rd[o++] = (uint8_t)(v[i] >> 8);
		rd[o++] = (uint8_t)v[i];
	}
	sb_dns_rrset soa = {.type = SB_DNS_SOA, .ttl = zd->soa.ttl};
	sb_dns_rrset_add(&soa, rd, (uint16_t)o, zs->pool);
	sb_dns_rrset ns = {.type = SB_DNS_NS, .ttl = zd->ttl};
	for (size_t i = 0; i < zd->nnameservers; i++) {
		int wl = host_wire(zd->nameservers[i], rd, sizeof(rd));
		if (wl > 0)
			sb_dns_rrset_add(&ns, rd, (uint16_t)wl, zs->pool);
	}
	struct sb_dns_node *apex = &z->nodes[0];
	node_put_rrset(zs, apex, &ns);
	node_put_rrset(zs, apex, &soa);
	return 0;
}

/* Names with the zone's addresses share z->addr, or get a merged copy when
 * they have records of their own. */
static void attach_addresses(sb_dns_zones *zs, struct sb_dns_zone *z)
{
	for (size_t k = 0; k < z->nnodes; k++) {
		struct sb_dns_node *nd = &z->nodes[k];
		if (!(nd->flags & SB_DNS_NODE_ADDR))
			continue;
		if (nd->nrrsets == 0) {
			nd->rrsets = z->addr;
			nd->nrrsets = z->naddr;
			continue;
		}
		sb_dns_rrset *a = sb_pool_alloc(zs->pool, (nd->nrrsets + z->naddr) * sizeof(*a));
		memcpy(a, nd->rrsets, nd->nrrsets * sizeof(*a));
		memcpy(a + nd->nrrsets, z->addr, z->naddr * sizeof(*a));
		size_t cnt = nd->nrrsets + z->naddr;
		qsort(a, cnt, sizeof(*a), rrset_type_cmp);
		nd->rrsets = a;
		nd->nrrsets = (uint16_t)cnt;
	}
	z->soa = (sb_dns_rrset *)sb_dns_node_rrset(&z->nodes[0], SB_DNS_SOA);
}

static uint64_t rrsets_hash(const sb_dns_rrset *rs, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < n; i++) {
		uint8_t head[10] = {(uint8_t)(rs[i].type >> 8),	 (uint8_t)rs[i].type,
				    (uint8_t)(rs[i].ttl >> 24),	 (uint8_t)(rs[i].ttl >> 16),
				    (uint8_t)(rs[i].ttl >> 8),	 (uint8_t)rs[i].ttl,
				    (uint8_t)(rs[i].count >> 8), (uint8_t)rs[i].count};
		h = sb_hash_mix64(h ^ name_hash(head, sizeof(head)));
		h = sb_hash_mix64(h ^ name_hash(rs[i].rdata, rs[i].size));
	}
	return h;
}

/* Order-independent: a sum over names. The SOA's serial is still 0 here. */
static uint64_t zone_hash(const struct sb_dns_zone *z)
{
	uint64_t shared = rrsets_hash(z->addr, z->naddr);
	uint64_t sum = name_hash(z->origin, z->origin_len);
	for (size_t k = 0; k < z->nnodes; k++) {
		const struct sb_dns_node *nd = &z->nodes[k];
		if (!nd->nrrsets)
			continue;
		uint64_t hs = nd->rrsets == z->addr ? shared : rrsets_hash(nd->rrsets, nd->nrrsets);
		sum += sb_hash_mix64(name_hash(z->names + nd->name, nd->name_len) ^ hs);
	}
	return sum;
}

int sb_dns_builder_finish(sb_dns_builder *b, const char *const *tenants, size_t ntenants,
			  uint32_t serial, sb_dns_zones **out, sb_diag *d)
{
	int r;
	*out = NULL;
	if (b->failed) {
		r = sb_diag_set(d, b->m->decl->file, 0, 0, "the zones have refused records");
		goto out;
	}
	if ((r = add_tenants(b, tenants, ntenants, d)) < 0)
		goto out;
	sb_dns_zones *zs = b->zs;
	for (size_t i = 0; i < zs->nzones; i++) {
		struct sb_dns_zone *z = &zs->zones[i];
		if ((r = apex_records(zs, z, b->m->decl->file, d)) < 0)
			goto out;
		attach_addresses(zs, z);
		z->hash = zone_hash(z);
		sb_dns_zone_set_serial(zs, i, serial);
		/* trim the growth slack: the zones live as long as a snapshot */
		if (z->nnodes < z->cap) {
			z->cap = z->nnodes;
			z->nodes = sb_xrealloc(z->nodes, z->cap * sizeof(*z->nodes));
		}
		if (z->names_len < z->names_cap) {
			z->names_cap = z->names_len ? z->names_len : 1;
			z->names = sb_xrealloc(z->names, z->names_cap);
		}
		z->decl = NULL;
	}
	*out = zs;
	b->zs = NULL;
out:
	sb_dns_builder_free(b);
	return r;
}

int sb_dns_build(const sb_model *m, const sb_route_table *rt, const char *const *tenants,
		 size_t ntenants, uint32_t serial, sb_dns_zones **out, sb_diag *d)
{
	sb_dns_builder *b;
	*out = NULL;
	int r = sb_dns_builder_new(m, rt, NULL, &b, d);
	if (r < 0)
		return r;
	return sb_dns_builder_finish(b, tenants, ntenants, serial, out, d);
}

int sb_dns_build_decl(const sb_decl *decl, const sb_model *m, const sb_route_table *rt,
		      const char *const *tenants, size_t ntenants, uint32_t serial,
		      sb_dns_zones **out, sb_diag *d)
{
	sb_dns_builder *b = NULL;
	sb_dns_options opt = {.tenant_wildcard = decl->dns_tenant_wildcard};
	*out = NULL;
	int r = sb_dns_builder_new(m, rt, &opt, &b, d);
	if (r < 0)
		return r;
	for (size_t z = 0; z < decl->nzones; z++) {
		const sb_zone_decl *zd = &decl->zones[z];
		for (size_t i = 0; i < zd->nrecords; i++) {
			const sb_record_decl *rd = &zd->records[i];
			sb_dns_record_decl rec = {.name = rd->name,
						  .type = rd->type,
						  .ttl = rd->ttl,
						  .data = rd->data,
						  .file = decl->file,
						  .line = rd->line,
						  .col = rd->col,
						  .name_line = rd->name_line,
						  .name_col = rd->name_col,
						  .type_line = rd->type_line,
						  .type_col = rd->type_col,
						  .data_line = rd->data_line,
						  .data_col = rd->data_col};
			if ((r = sb_dns_builder_record(b, zd->name, &rec, d)) < 0) {
				sb_dns_builder_free(b);
				return r;
			}
		}
	}
	return sb_dns_builder_finish(b, tenants, ntenants, serial, out, d);
}

void sb_dns_free(sb_dns_zones *zs)
{
	if (!zs)
		return;
	struct zones_box *box = box_of(zs);
	if (atomic_fetch_sub(&box->refs, 1) != 1)
		return;
	if (box->ext_free)
		box->ext_free(box->ext);
	for (size_t i = 0; i < zs->nzones; i++) {
		free(zs->zones[i].nodes);
		free(zs->zones[i].names);
		free(zs->zones[i].slots);
	}
	free(zs->zones);
	sb_pool_free(zs->pool);
	free(box);
}

sb_dns_zones *sb_dns_zones_ref(const sb_dns_zones *zs)
{
	atomic_fetch_add(&box_of(zs)->refs, 1);
	return (sb_dns_zones *)zs;
}

void sb_dns_zones_attach(sb_dns_zones *zs, void *ext, void (*ext_free)(void *))
{
	struct zones_box *box = box_of(zs);
	if (box->ext_free)
		box->ext_free(box->ext);
	box->ext = ext;
	box->ext_free = ext_free;
}

void *sb_dns_zones_attachment(const sb_dns_zones *zs)
{
	return box_of(zs)->ext;
}

/* ---- accessors --------------------------------------------------------- */

size_t sb_dns_zone_count(const sb_dns_zones *zs)
{
	return zs->nzones;
}

ssize_t sb_dns_zone_find(const sb_dns_zones *zs, const char *name)
{
	size_t n = strlen(name);
	if (n && name[n - 1] == '.')
		n--;
	for (size_t i = 0; i < zs->nzones; i++)
		if (strlen(zs->zones[i].name) == n && strncasecmp(zs->zones[i].name, name, n) == 0)
			return (ssize_t)i;
	return -1;
}

const char *sb_dns_zone_name(const sb_dns_zones *zs, size_t i)
{
	return zs->zones[i].name;
}

uint32_t sb_dns_zone_serial(const sb_dns_zones *zs, size_t i)
{
	uint16_t len;
	const uint8_t *p = sb_dns_rrset_rdata(zs->zones[i].soa, 0, &len) + len - 20;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void sb_dns_zone_set_serial(sb_dns_zones *zs, size_t i, uint32_t serial)
{
	uint16_t len;
	/* the zones are not shared yet: their SOA rdata is ours to write */
	uint8_t *p = (uint8_t *)sb_dns_rrset_rdata(zs->zones[i].soa, 0, &len) + len - 20;
	p[0] = (uint8_t)(serial >> 24);
	p[1] = (uint8_t)(serial >> 16);
	p[2] = (uint8_t)(serial >> 8);
	p[3] = (uint8_t)serial;
}

uint64_t sb_dns_content_hash(const sb_dns_zones *zs, size_t i)
{
	return zs->zones[i].hash;
}

bool sb_dns_serial_gt(uint32_t a, uint32_t b)
{
	return a != b && (uint32_t)(a - b) < 0x80000000u;
}

uint32_t sb_dns_serial_next(uint32_t old, uint32_t now)
{
	return sb_dns_serial_gt(now, old) ? now : old + 1;
}

static size_t zone_bytes(const struct sb_dns_zone *z)
{
	return z->cap * sizeof(*z->nodes) + z->names_cap + (z->mask + 1) * sizeof(*z->slots);
}

void sb_dns_zone_stats(const sb_dns_zones *zs, size_t i, sb_dns_stats *st)
{
	const struct sb_dns_zone *z = &zs->zones[i];
	memset(st, 0, sizeof(*st));
	st->names = z->nnodes;
	st->tenants = z->ntenants;
	for (size_t k = 0; k < z->nnodes; k++)
		st->rrsets += z->nodes[k].nrrsets;
	st->bytes = zone_bytes(z);
}

size_t sb_dns_memory(const sb_dns_zones *zs)
{
	size_t n =
	    sizeof(*zs) + (zs->nzones + 1) * sizeof(*zs->zones) + sb_pool_footprint(zs->pool);
	for (size_t i = 0; i < zs->nzones; i++)
		n += zone_bytes(&zs->zones[i]);
	return n;
}
