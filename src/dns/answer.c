/*
 * Answering (answer.h). The order of the checks follows what a client can
 * act on: garbage is dropped (answering it would make us a reflector for
 * anything), a malformed query gets FORMERR, an EDNS version we do not speak
 * BADVERS, another opcode NOTIMP, then the name is looked up (RFC 1034 4.3.2
 * without delegations, RFC 4592 for wildcards, RFC 2308 for negative
 * answers, RFC 8482 for ANY).
 *
 * Memory: two fixed arenas on the stack (parser and writer); nothing is
 * allocated per query, so a flood of queries cannot grow the heap.
 */
#include "dns/answer.h"

#include <string.h>

#include "dns/internal.h"

#define MAX_CHAIN 8   /* CNAMEs followed before we stop (loops stop earlier) */
#define MAX_TARGETS 8 /* NS/MX/SRV targets given addresses in the additional section */
#define PARSE_ARENA 8192
#define WRITE_ARENA 12288

/* A lower-case wire name split into labels. */
struct name {
	uint8_t wire[SB_DNS_NAME_MAX];
	size_t len;
	uint8_t off[128]; /* start of each label; off[nlabels] is the root label */
	size_t nlabels;
};

static void name_set(struct name *nm, const uint8_t *wire, size_t len)
{
	memcpy(nm->wire, wire, len);
	nm->len = len;
	nm->nlabels = 0;
	size_t i = 0;
	while (i < len && nm->wire[i] != 0 && nm->nlabels < 127) {
		nm->off[nm->nlabels++] = (uint8_t)i;
		i += 1 + (size_t)nm->wire[i];
	}
	nm->off[nm->nlabels] = (uint8_t)i;
}

/* Size of a wire name in rdata (uncompressed, as the zone stores it). */
static size_t wire_name_len(const uint8_t *p, size_t avail)
{
	size_t i = 0;
	while (i < avail && p[i] != 0)
		i += 1 + (size_t)p[i];
	return i < avail ? i + 1 : 0;
}

/* The longest zone that contains nm; *zl is the index of its first label. */
static const struct sb_dns_zone *zone_for(const sb_dns_zones *zs, const struct name *nm, size_t *zl)
{
	for (size_t i = 0; i <= nm->nlabels; i++) {
		size_t o = nm->off[i];
		for (size_t k = 0; k < zs->nzones; k++) {
			const struct sb_dns_zone *z = &zs->zones[k];
			if (z->origin_len == nm->len - o &&
			    memcmp(z->origin, nm->wire + o, z->origin_len) == 0) {
				*zl = i;
				return z;
			}
		}
	}
	return NULL;
}

/*
 * The node that answers for nm in z: the name itself, or else the wildcard
 * "*.<closest encloser>" (RFC 4592: the closest encloser is the nearest
 * existing ancestor, empty non-terminals included, so a wildcard never
 * covers a name below an existing name other than the wildcard's parent).
 * NULL: the name does not exist (NXDOMAIN).
 */
static const struct sb_dns_node *lookup(const struct sb_dns_zone *z, const struct name *nm,
					size_t zl)
{
	size_t end = nm->off[zl];
	const struct sb_dns_node *nd = sb_dns_node_find(z, nm->wire, end);
	if (nd)
		return nd;
	size_t ce = zl;
	for (size_t i = 1; i < zl; i++)
		if (sb_dns_node_find(z, nm->wire + nm->off[i], end - nm->off[i])) {
			ce = i;
			break;
		}
	uint8_t wild[SB_DNS_NAME_MAX + 2] = {1, '*'};
	size_t n = end - nm->off[ce];
	memcpy(wild + 2, nm->wire + nm->off[ce], n);
	return sb_dns_node_find(z, wild, n + 2);
}

struct ctx {
	const sb_dns_zones *zs;
	const sb_dns_query *q;
	sb_dns_writer *w;
	sb_dns_arena *a;
	bool full; /* a record of the answer or authority did not fit */
};

static void put(struct ctx *c, int section, const uint8_t *owner, const sb_dns_rrset *rs,
		uint32_t ttl)
{
	if (c->full)
		return;
	if (sb_dns_writer_put(c->w, section, owner, rs, ttl) < 0)
		c->full = true;
}

/* The SOA for a negative answer, TTL min(SOA TTL, MINIMUM) (RFC 2308 3). */
static void negative(struct ctx *c, const struct sb_dns_zone *z)
{
	uint32_t ttl = z->soa->ttl < z->soa_minimum ? z->soa->ttl : z->soa_minimum;
	put(c, SB_DNS_AUTHORITY, z->origin, z->soa, ttl);
}

/* Addresses of in-zone NS, MX and SRV targets (glue for NS), when they fit. */
static void additional(struct ctx *c, const sb_dns_rrset *rs)
{
	size_t skip = rs->type == SB_DNS_NS ? 0 : rs->type == SB_DNS_MX ? 2 : 6;
	if (rs->type != SB_DNS_NS && rs->type != SB_DNS_MX && rs->type != SB_DNS_SRV)
		return;
	const uint8_t *seen[MAX_TARGETS];
	size_t nseen = 0;
	for (size_t i = 0; i < rs->count && nseen < MAX_TARGETS; i++) {
		uint16_t len;
		const uint8_t *rd = sb_dns_rrset_rdata(rs, i, &len);
		if (len <= skip)
			continue;
		const uint8_t *t = rd + skip;
		size_t tl = wire_name_len(t, len - skip);
		bool dup = tl <= 1;
		for (size_t k = 0; k < nseen && !dup; k++)
			dup = memcmp(seen[k], t, tl) == 0;
		if (dup)
			continue;
		seen[nseen++] = t;
		struct name nm;
		size_t zl;
		name_set(&nm, t, tl);
		const struct sb_dns_zone *z = zone_for(c->zs, &nm, &zl);
		const struct sb_dns_node *nd = z ? sb_dns_node_find(z, nm.wire, nm.off[zl]) : NULL;
		for (int k = 0; nd && k < 2; k++) {
			const sb_dns_rrset *as = sb_dns_node_rrset(nd, k ? SB_DNS_AAAA : SB_DNS_A);
			/* the additional section may be cut short without TC (RFC 2181 9) */
			if (as && sb_dns_writer_put(c->w, SB_DNS_ADDITIONAL, t, as, as->ttl) < 0)
				return;
		}
	}
}

/* The answer for an in-zone name: follows CNAMEs, returns the rcode. */
static uint16_t resolve(struct ctx *c, const struct sb_dns_zone *z, struct name *nm, size_t zl)
{
	const uint16_t qtype = c->q->qtype;
	const uint8_t *owner = NULL; /* the qname, in the question's case */
	uint8_t visited[MAX_CHAIN][SB_DNS_NAME_MAX];
	size_t visited_len[MAX_CHAIN];
	size_t nvisited = 0;
	for (;;) {
		const struct sb_dns_node *nd = lookup(z, nm, zl);
		if (!nd) {
			negative(c, z);
			return SB_DNS_NXDOMAIN;
		}
		const sb_dns_rrset *cname = sb_dns_node_rrset(nd, SB_DNS_CNAME);
		/* ANY matches the CNAME itself: no restart (RFC 1034 4.3.2 3a) */
		if (cname && qtype != SB_DNS_CNAME && qtype != SB_DNS_ANY) {
			put(c, SB_DNS_ANSWER, owner, cname, cname->ttl);
			uint16_t len;
			const uint8_t *t = sb_dns_rrset_rdata(cname, 0, &len);
			size_t tl = wire_name_len(t, len);
			memcpy(visited[nvisited], nm->wire, nm->len);
			visited_len[nvisited++] = nm->len;
			bool loop = nvisited == MAX_CHAIN || tl == 0;
			for (size_t k = 0; k < nvisited && !loop; k++) /* only names as long */
				loop = visited_len[k] == tl && memcmp(visited[k], t, tl) == 0;
			if (loop)
				return SB_DNS_NOERROR; /* the chain so far (RFC 1034 3.6.2) */
			name_set(nm, t, tl);
			z = zone_for(c->zs, nm, &zl);
			if (!z)
				return SB_DNS_NOERROR; /* leaves our zones: the resolver goes on */
			owner = sb_dns_arena_alloc(c->a, tl);
			if (!owner)
				return SB_DNS_NOERROR;
			memcpy((uint8_t *)owner, t, tl);
			continue;
		}
		/* RFC 8482: ANY gets one RRset, the first by type (CNAME if any). */
		const sb_dns_rrset *rs = qtype == SB_DNS_ANY ? (nd->nrrsets ? &nd->rrsets[0] : NULL)
							     : sb_dns_node_rrset(nd, qtype);
		if (!rs) {
			negative(c, z); /* NODATA: the name exists, the type does not */
			return SB_DNS_NOERROR;
		}
		put(c, SB_DNS_ANSWER, owner, rs, rs->ttl);
		if (!c->full)
			additional(c, rs);
		return SB_DNS_NOERROR;
	}
}

/* A response with no records: rcode, question and OPT as given. */
static int reply(sb_dns_writer *w, uint16_t rcode, bool aa, size_t *resp_len)
{
	sb_dns_writer_set_rcode(w, rcode);
	sb_dns_writer_set_aa(w, aa);
	*resp_len = sb_dns_writer_finish(w);
	return 0;
}

int sb_dns_answer(const sb_dns_zones *zs, const uint8_t *query, size_t qlen, uint8_t *resp,
		  size_t cap, bool tcp, size_t *resp_len)
{
	return sb_dns_answer_ex(zs, query, qlen, resp, cap, tcp, 0, resp_len);
}

int sb_dns_answer_ex(const sb_dns_zones *zs, const uint8_t *query, size_t qlen, uint8_t *resp,
		     size_t cap, bool tcp, unsigned flags, size_t *resp_len)
{
	if (!zs || !query || !resp || !resp_len)
		return SB_EINVAL;
	if (cap < 12)
		return SB_ERANGE;
	_Alignas(16) uint8_t pmem[PARSE_ARENA];
	_Alignas(16) uint8_t wmem[WRITE_ARENA];
	sb_dns_arena pa = {pmem, 0, sizeof(pmem)};
	sb_dns_arena wa = {wmem, 0, sizeof(wmem)};
	sb_dns_query q;
	sb_dns_parse p = sb_dns_wire_parse(query, qlen, &pa, &q);
	if (p == SB_DNS_PARSE_DROP)
		return SB_EPARSE;
	if (p == SB_DNS_PARSE_RESPONSE)
		return SB_EINVAL;

	size_t max = SB_DNS_UDP_MIN;
	if (tcp)
		max = UINT16_MAX;
	else if (q.edns && q.edns_payload > SB_DNS_UDP_MIN)
		max = q.edns_payload < SB_DNS_UDP_MAX ? q.edns_payload : SB_DNS_UDP_MAX;
	if (max > cap)
		max = cap;
	bool ok = p == SB_DNS_PARSE_OK;
	sb_dns_writer *w = sb_dns_writer_new(&wa, resp, max, &q, true, ok && q.edns);
	if (!w)
		return SB_EPARSE;
	if (!ok)
		return reply(w, SB_DNS_FORMERR, false, resp_len);
	/* signed queries and transfers are xfr.c's when it serves these zones */
	if ((flags & SB_DNS_ANSWER_DEFER) &&
	    (q.tsig || q.qtype == SB_DNS_AXFR || q.qtype == SB_DNS_IXFR))
		return SB_DNS_DEFERRED;
	if (q.edns && q.edns_version > 0)
		return reply(w, SB_DNS_BADVERS, false, resp_len);
	if (q.opcode != SB_DNS_OPCODE_QUERY)
		return reply(w, SB_DNS_NOTIMP, false, resp_len);
	/* Without xfr.c (no transfer configuration), TSIG, AXFR and IXFR are
	 * refused. */
	if (q.tsig || q.qclass != SB_DNS_CLASS_IN || q.qtype == SB_DNS_AXFR ||
	    q.qtype == SB_DNS_IXFR)
		return reply(w, SB_DNS_REFUSED, false, resp_len);

	struct name nm;
	size_t zl;
	name_set(&nm, q.lower, q.qname_len);
	const struct sb_dns_zone *z = zone_for(zs, &nm, &zl);
	if (!z)
		return reply(w, SB_DNS_REFUSED, false, resp_len);

	struct ctx c = {.zs = zs, .q = &q, .w = w, .a = &wa};
	uint16_t rcode = resolve(&c, z, &nm, zl);
	if (c.full)
		sb_dns_writer_truncate(w); /* question only, TC=1: retry over TCP */
	return reply(w, rcode, true, resp_len);
}
