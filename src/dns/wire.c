/*
 * The libknot wrapper (see wire.h): the only file that includes libknot.
 *
 * Why libknot: its packet parser is hardened (compression pointers are
 * followed backwards only, OPT/TSIG placement is checked), and its writer
 * compresses names the way Knot DNS does. We keep our own RRset struct and
 * point a knot_rrset_t at it when writing, so answering copies no rdata.
 */
#include "dns/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libknot/libknot.h>

/* Our packed rdata is knot_rdata_t's layout; wire.c is the only place that
 * relies on it. */
_Static_assert(sizeof(knot_rdata_t) == 2, "knot_rdata_t layout changed");

/* ---- memory ------------------------------------------------------------ */

void *sb_dns_arena_alloc(sb_dns_arena *a, size_t n)
{
	size_t off = (a->used + 15) & ~(size_t)15;
	if (off > a->cap || a->cap - off < n)
		return NULL;
	a->used = off + n;
	return a->base + off;
}

static void *arena_mm_alloc(void *ctx, size_t n)
{
	return sb_dns_arena_alloc(ctx, n);
}

static void *heap_mm_alloc(void *ctx, size_t n)
{
	(void)ctx;
	return sb_xmalloc(n ? n : 1);
}

static void *pool_mm_alloc(void *ctx, size_t n)
{
	return sb_pool_alloc(ctx, n);
}

/* Both allocators free everything at once. */
static void mm_nofree(void *p)
{
	(void)p;
}

/* ---- RRsets ------------------------------------------------------------ */

static void rrset_view(knot_rrset_t *rr, knot_dname_t *owner, const sb_dns_rrset *rs, uint32_t ttl)
{
	knot_rrset_init(rr, owner, rs->type, KNOT_CLASS_IN, ttl);
	rr->rrs.count = rs->count;
	rr->rrs.size = rs->size;
	rr->rrs.rdata = (knot_rdata_t *)rs->rdata;
}

int sb_dns_rrset_add(sb_dns_rrset *rs, const uint8_t *rd, uint16_t len, sb_pool *pool)
{
	if (rs->count == UINT16_MAX || (uint64_t)rs->size + knot_rdata_size(len) > UINT32_MAX)
		return SB_ERANGE;
	knot_mm_t mm = {.ctx = pool, .alloc = pool_mm_alloc, .free = mm_nofree};
	knot_rdataset_t set = {
	    .count = rs->count, .size = rs->size, .rdata = (knot_rdata_t *)rs->rdata};
	uint8_t tmp[sizeof(knot_rdata_t) + UINT16_MAX + 1];
	knot_rdata_t *one = (knot_rdata_t *)tmp;
	knot_rdata_init(one, len, rd);
	uint16_t before = set.count;
	if (knot_rdataset_add(&set, one, &mm) != KNOT_EOK)
		return SB_ERANGE;
	rs->count = set.count;
	rs->size = set.size;
	rs->rdata = (const uint8_t *)set.rdata;
	return set.count > before ? 1 : 0;
}

const uint8_t *sb_dns_rrset_rdata(const sb_dns_rrset *rs, size_t i, uint16_t *len)
{
	knot_rdataset_t set = {
	    .count = rs->count, .size = rs->size, .rdata = (knot_rdata_t *)rs->rdata};
	const knot_rdata_t *r = knot_rdataset_at(&set, (uint16_t)i);
	*len = r->len;
	return r->data;
}

void sb_dns_rrset_slice(const sb_dns_rrset *rs, size_t from, size_t n, sb_dns_rrset *out)
{
	knot_rdataset_t set = {
	    .count = rs->count, .size = rs->size, .rdata = (knot_rdata_t *)rs->rdata};
	knot_rdata_t *first = knot_rdataset_at(&set, (uint16_t)from), *r = first;
	size_t size = 0;
	for (size_t i = 0; i < n; i++, r = knot_rdataset_next(r))
		size += knot_rdata_size(r->len);
	*out = (sb_dns_rrset){.type = rs->type,
			      .count = (uint16_t)n,
			      .ttl = rs->ttl,
			      .size = (uint32_t)size,
			      .rdata = (const uint8_t *)first};
}

bool sb_dns_rrset_equal(const sb_dns_rrset *a, const sb_dns_rrset *b)
{
	/* both canonical (sorted, no duplicates): equal sets are equal bytes */
	return a->type == b->type && a->ttl == b->ttl && a->count == b->count &&
	       a->size == b->size &&
	       (a->rdata == b->rdata || memcmp(a->rdata, b->rdata, a->size) == 0);
}

bool sb_dns_rrset_has(const sb_dns_rrset *other, const sb_dns_rrset *rs, size_t i)
{
	knot_rdataset_t set = {
	    .count = rs->count, .size = rs->size, .rdata = (knot_rdata_t *)rs->rdata};
	knot_rdataset_t in = {
	    .count = other->count, .size = other->size, .rdata = (knot_rdata_t *)other->rdata};
	return knot_rdataset_member(&in, knot_rdataset_at(&set, (uint16_t)i));
}

/* ---- queries ----------------------------------------------------------- */

sb_dns_parse sb_dns_wire_parse(const uint8_t *wire, size_t len, sb_dns_arena *a, sb_dns_query *q)
{
	memset(q, 0, sizeof(*q));
	if (len < KNOT_WIRE_HEADER_SIZE || len > UINT16_MAX)
		return SB_DNS_PARSE_DROP;
	if (knot_wire_get_qr(wire))
		return SB_DNS_PARSE_RESPONSE;
	q->id = knot_wire_get_id(wire);
	q->opcode = knot_wire_get_opcode(wire);
	q->rd = knot_wire_get_rd(wire) != 0;
	q->cd = knot_wire_get_cd(wire) != 0;
	if (knot_wire_get_qdcount(wire) != 1)
		return SB_DNS_PARSE_FORMERR;

	knot_mm_t mm = {.ctx = a, .alloc = arena_mm_alloc, .free = mm_nofree};
	/* KNOT_PF_KEEPWIRE: the parser would otherwise strip a TSIG record from
	 * the wire in place; with it, the query buffer is only read. */
	knot_pkt_t *pkt = knot_pkt_new((void *)wire, (uint16_t)len, &mm);
	if (!pkt || knot_pkt_parse_question(pkt) != KNOT_EOK)
		return SB_DNS_PARSE_DROP;
	q->has_question = true;
	q->qname = knot_pkt_wire_qname(pkt);
	q->qname_len = pkt->qname_size;
	memcpy(q->lower, q->qname, q->qname_len);
	knot_dname_to_lower(q->lower);
	q->qtype = knot_pkt_qtype(pkt);
	q->qclass = knot_pkt_qclass(pkt);

	int r = knot_pkt_parse(pkt, KNOT_PF_KEEPWIRE);
	if (r != KNOT_EOK && r != KNOT_ETRAIL)
		return SB_DNS_PARSE_FORMERR;
	/* RFC 6891 6.1.2: the owner of OPT is the root. libknot takes any
	 * name; answering as if it were EDNS would echo a record we do not
	 * understand (BIND and NSD answer FORMERR too). */
	if (pkt->opt_rr && pkt->opt_rr->owner[0] != 0)
		return SB_DNS_PARSE_FORMERR;
	if (pkt->opt_rr) {
		q->edns = true;
		q->edns_version = knot_edns_get_version(pkt->opt_rr);
		q->edns_payload = knot_edns_get_payload(pkt->opt_rr);
		q->edns_do = knot_edns_do(pkt->opt_rr);
	}
	q->tsig = pkt->tsig_rr != NULL;
	if (q->qtype == KNOT_RRTYPE_IXFR) {
		/* RFC 1995 3: the client's version, an SOA in the authority section */
		const knot_pktsection_t *ns = knot_pkt_section(pkt, KNOT_AUTHORITY);
		for (uint16_t i = 0; i < ns->count; i++) {
			const knot_rrset_t *rr = knot_pkt_rr(ns, i);
			if (rr->type == KNOT_RRTYPE_SOA && rr->rrs.count > 0 &&
			    knot_dname_is_case_equal(rr->owner, q->qname)) {
				q->ixfr_soa = true;
				q->ixfr_serial = knot_soa_serial(rr->rrs.rdata);
				break;
			}
		}
	}
	return SB_DNS_PARSE_OK;
}

/* ---- responses --------------------------------------------------------- */

struct sb_dns_writer {
	knot_pkt_t *pkt;
	knot_mm_t mm;
	uint8_t *buf;
	const sb_dns_query *q;
	bool question, with_opt;
	knot_rrset_t opt;
	uint16_t opt_size;
	uint16_t rcode;
	bool aa, tc;
	bool heap; /* sb_dns_writer_new_heap: freed by sb_dns_writer_free */
};

/* Header, question and the OPT reservation: the state a response starts in,
 * and goes back to when truncated. */
static void writer_begin(sb_dns_writer *w)
{
	knot_pkt_clear(w->pkt);
	uint8_t *b = w->buf;
	knot_wire_set_id(b, w->q->id);
	knot_wire_set_qr(b);
	knot_wire_set_opcode(b, w->q->opcode);
	if (w->q->rd)
		knot_wire_set_rd(b);
	if (w->q->cd)
		knot_wire_set_cd(b);
	if (w->question &&
	    knot_pkt_put_question(w->pkt, w->q->qname, w->q->qclass, w->q->qtype) != KNOT_EOK) {
		/* no room even for the question: header only, truncated */
		knot_pkt_clear(w->pkt);
		knot_wire_set_id(b, w->q->id);
		knot_wire_set_qr(b);
		knot_wire_set_opcode(b, w->q->opcode);
		w->question = false;
		w->tc = true;
	}
	if (w->with_opt && knot_pkt_reserve(w->pkt, w->opt_size) != KNOT_EOK)
		w->with_opt = false;
}

/* What both constructors share, once w's allocator is set: the packet, the
 * OPT record and the header. False (what it allocated left for w's
 * allocator) only when libknot cannot allocate. */
static bool writer_init(sb_dns_writer *w, uint8_t *buf, size_t max, const sb_dns_query *q,
			bool with_question, bool with_opt)
{
	w->buf = buf;
	w->q = q;
	w->question = with_question && q->has_question;
	w->with_opt = with_opt;
	w->pkt = knot_pkt_new(buf, (uint16_t)(max > UINT16_MAX ? UINT16_MAX : max), &w->mm);
	if (!w->pkt)
		return false;
	if (with_opt) {
		if (knot_edns_init(&w->opt, SB_DNS_UDP_MAX, 0, 0, &w->mm) != KNOT_EOK)
			return false;
		if (q->edns_do)
			knot_edns_set_do(&w->opt);
		w->opt_size = (uint16_t)knot_edns_wire_size(&w->opt);
	}
	writer_begin(w);
	return true;
}

sb_dns_writer *sb_dns_writer_new(sb_dns_arena *a, uint8_t *buf, size_t max, const sb_dns_query *q,
				 bool with_question, bool with_opt)
{
	sb_dns_writer *w = sb_dns_arena_alloc(a, sizeof(*w));
	if (!w || max < KNOT_WIRE_HEADER_SIZE)
		return NULL;
	memset(w, 0, sizeof(*w));
	w->mm = (knot_mm_t){.ctx = a, .alloc = arena_mm_alloc, .free = mm_nofree};
	/* the arena frees what a failure leaves */
	return writer_init(w, buf, max, q, with_question, with_opt) ? w : NULL;
}

sb_dns_writer *sb_dns_writer_new_heap(uint8_t *buf, size_t max, const sb_dns_query *q,
				      bool with_question, bool with_opt)
{
	if (max < KNOT_WIRE_HEADER_SIZE)
		return NULL;
	sb_dns_writer *w = sb_xcalloc(1, sizeof(*w));
	w->mm = (knot_mm_t){.ctx = NULL, .alloc = heap_mm_alloc, .free = free};
	w->heap = true;
	if (!writer_init(w, buf, max, q, with_question, with_opt)) {
		sb_dns_writer_free(w);
		return NULL;
	}
	return w;
}

void sb_dns_writer_reset(sb_dns_writer *w)
{
	writer_begin(w);
	w->tc = false;
	w->rcode = 0;
}

void sb_dns_writer_free(sb_dns_writer *w)
{
	if (!w || !w->heap)
		return;
	knot_rrset_clear(&w->opt, &w->mm);
	knot_pkt_free(w->pkt);
	free(w);
}

void sb_dns_writer_set_aa(sb_dns_writer *w, bool aa)
{
	w->aa = aa;
}

void sb_dns_writer_set_rcode(sb_dns_writer *w, uint16_t rcode)
{
	w->rcode = rcode;
}

int sb_dns_writer_put(sb_dns_writer *w, int section, const uint8_t *owner, const sb_dns_rrset *rs,
		      uint32_t ttl)
{
	static const knot_section_t sections[] = {KNOT_ANSWER, KNOT_AUTHORITY, KNOT_ADDITIONAL};
	if (section < 0 || section > 2 || knot_pkt_begin(w->pkt, sections[section]) != KNOT_EOK)
		return SB_EINVAL;
	if (!owner && !w->question)
		return SB_EINVAL;
	knot_rrset_t rr;
	rrset_view(&rr, (knot_dname_t *)(owner ? owner : w->q->qname), rs, ttl);
	/* KNOT_PF_NOTRUNC: whether a record that does not fit truncates the
	 * response is the caller's decision (sb_dns_writer_truncate). */
	int r = knot_pkt_put(w->pkt, owner ? KNOT_COMPR_HINT_NONE : KNOT_COMPR_HINT_QNAME, &rr,
			     KNOT_PF_NOTRUNC);
	if (r == KNOT_EOK)
		return 0;
	return r == KNOT_ESPACE ? SB_ERANGE : SB_EINVAL;
}

void sb_dns_writer_truncate(sb_dns_writer *w)
{
	writer_begin(w);
	w->tc = true;
}

size_t sb_dns_writer_finish(sb_dns_writer *w)
{
	uint8_t *b = w->buf;
	if (w->with_opt) {
		knot_pkt_reclaim(w->pkt, w->opt_size);
		knot_edns_set_ext_rcode(&w->opt, (uint8_t)KNOT_EDNS_RCODE_HI(w->rcode));
		if (knot_pkt_begin(w->pkt, KNOT_ADDITIONAL) == KNOT_EOK)
			knot_pkt_put(w->pkt, KNOT_COMPR_HINT_NONE, &w->opt, KNOT_PF_NOTRUNC);
	}
	knot_wire_set_rcode(b, (short)KNOT_EDNS_RCODE_LO(w->rcode));
	if (w->aa)
		knot_wire_set_aa(b);
	else
		knot_wire_clear_aa(b);
	if (w->tc)
		knot_wire_set_tc(b);
	else
		knot_wire_clear_tc(b);
	knot_wire_clear_ra(b);
	return w->pkt->size;
}

/* The OPT record of a response we wrote (len bytes at resp, its records
 * after byte `at`): its offset and size, or false when it has none. */
static bool find_opt(const uint8_t *resp, size_t len, size_t at, size_t *opt_at, size_t *opt_len)
{
	size_t n = (size_t)knot_wire_get_ancount(resp) + knot_wire_get_nscount(resp) +
		   knot_wire_get_arcount(resp);
	for (size_t i = 0; i < n; i++) {
		int nl = knot_dname_wire_check(resp + at, resp + len, resp);
		if (nl <= 0 || len - at < (size_t)nl + 10)
			return false;
		const uint8_t *h = resp + at + nl;
		size_t size = (size_t)nl + 10 + knot_wire_read_u16(h + 8);
		if (size > len - at)
			return false;
		if (knot_wire_read_u16(h) == KNOT_RRTYPE_OPT) {
			*opt_at = at;
			*opt_len = size;
			return true;
		}
		at += size;
	}
	return false;
}

size_t sb_dns_wire_truncate(uint8_t *resp, size_t len)
{
	if (len < KNOT_WIRE_HEADER_SIZE)
		return len;
	size_t end = KNOT_WIRE_HEADER_SIZE;
	if (knot_wire_get_qdcount(resp) == 1) {
		int n = knot_dname_wire_check(resp + end, resp + len, NULL);
		if (n <= 0 || end + (size_t)n + 4 > len)
			return len;
		end += (size_t)n + 4;
	} else {
		knot_wire_set_qdcount(resp, 0);
	}
	/* The OPT record stays: a response to a query with one carries one
	 * (RFC 6891 7), and its extended rcode and DO bit still apply. Its
	 * owner is the root, one byte, so it never points into what is cut. */
	size_t opt_at, opt_len;
	bool opt = find_opt(resp, len, end, &opt_at, &opt_len);
	if (opt) {
		memmove(resp + end, resp + opt_at, opt_len);
		end += opt_len;
	}
	knot_wire_set_ancount(resp, 0);
	knot_wire_set_nscount(resp, 0);
	knot_wire_set_arcount(resp, opt ? 1 : 0);
	knot_wire_set_tc(resp);
	return end;
}

/* ---- TSIG -------------------------------------------------------------- */

struct sb_dns_tsig_key {
	knot_tsig_key_t k;
	uint8_t name[SB_DNS_NAME_MAX]; /* lower case */
	size_t name_len;
};

int sb_dns_tsig_key_new(const char *name, const char *algorithm, const char *secret_b64,
			sb_dns_tsig_key **out, const char **why)
{
	static const char *const algs[] = {"hmac-sha224", "hmac-sha256", "hmac-sha384",
					   "hmac-sha512", NULL};
	*out = NULL;
	const char *alg = algorithm ? algorithm : "hmac-sha256";
	bool known = false;
	for (size_t i = 0; algs[i] && !known; i++)
		known = strcasecmp(alg, algs[i]) == 0;
	if (!known) {
		*why = "the algorithm is one of hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512";
		return SB_EINVAL;
	}
	uint8_t wire[KNOT_DNAME_MAXLEN];
	if (!name || !*name || !knot_dname_from_str(wire, name, sizeof(wire)) ||
	    knot_dname_size(wire) <= 1) {
		*why = "the key name is not a DNS name";
		return SB_EINVAL;
	}
	sb_dns_tsig_key *k = sb_xcalloc(1, sizeof(*k));
	if (!secret_b64 || knot_tsig_key_init(&k->k, alg, name, secret_b64) != KNOT_EOK) {
		free(k);
		*why = "the secret is not base64";
		return SB_EINVAL;
	}
	if (k->k.secret.size < 16) {
		sb_dns_tsig_key_free(k);
		*why =
		    "the secret is shorter than 16 bytes (generate one: openssl rand -base64 32)";
		return SB_EINVAL;
	}
	knot_dname_to_lower(k->k.name);
	k->name_len = knot_dname_size(k->k.name);
	memcpy(k->name, k->k.name, k->name_len);
	*out = k;
	return 0;
}

void sb_dns_tsig_key_free(sb_dns_tsig_key *k)
{
	if (!k)
		return;
	knot_tsig_key_deinit(&k->k);
	free(k);
}

const uint8_t *sb_dns_tsig_key_name(const sb_dns_tsig_key *k, size_t *len)
{
	*len = k->name_len;
	return k->name;
}

/* KNOT_TSIG_E* to the error a response carries. */
static uint16_t tsig_error_of(int r)
{
	switch (r) {
	case KNOT_EOK: return 0;
	case KNOT_TSIG_EBADKEY: return SB_DNS_TSIG_BADKEY;
	case KNOT_TSIG_EBADTIME: return SB_DNS_TSIG_BADTIME;
	case KNOT_TSIG_EBADTRUNC: return SB_DNS_TSIG_BADTRUNC;
	default: return SB_DNS_TSIG_BADSIG;
	}
}

/*
 * Parse a signed message copied to buf (len bytes) without KNOT_PF_KEEPWIRE:
 * libknot strips the TSIG record (size and ARCOUNT), which is the form the
 * MAC covers. Returns the packet (memory from a), or NULL.
 */
static knot_pkt_t *parse_signed(uint8_t *buf, size_t len, sb_dns_arena *a)
{
	knot_mm_t mm = {.ctx = a, .alloc = arena_mm_alloc, .free = mm_nofree};
	if (len < KNOT_WIRE_HEADER_SIZE || len > UINT16_MAX)
		return NULL;
	knot_pkt_t *pkt = knot_pkt_new(buf, (uint16_t)len, &mm);
	if (!pkt)
		return NULL;
	int r = knot_pkt_parse(pkt, 0);
	if (r != KNOT_EOK && r != KNOT_ETRAIL)
		return NULL;
	return pkt;
}

int sb_dns_tsig_verify_query(const uint8_t *wire, size_t len, const sb_dns_tsig_key *const *keys,
			     size_t nkeys, sb_dns_tsig *t, uint8_t *out, size_t *out_len)
{
	_Alignas(16) uint8_t mem[8192];
	sb_dns_arena a = {mem, 0, sizeof(mem)};
	memset(t, 0, sizeof(*t));
	if (len < KNOT_WIRE_HEADER_SIZE || len > UINT16_MAX)
		return SB_EPARSE;
	memcpy(out, wire, len);
	knot_pkt_t *pkt = parse_signed(out, len, &a);
	if (!pkt || !pkt->tsig_rr)
		return SB_EPARSE;
	const knot_rrset_t *ts = pkt->tsig_rr;
	*out_len = pkt->size;
	t->req_key_len = knot_dname_size(ts->owner);
	memcpy(t->req_key, ts->owner, t->req_key_len);
	knot_dname_to_lower(t->req_key);
	const knot_dname_t *alg = knot_tsig_rdata_alg_name(ts);
	t->req_alg_len = knot_dname_size(alg);
	memcpy(t->req_alg, alg, t->req_alg_len);
	knot_dname_to_lower(t->req_alg);
	t->time_signed = knot_tsig_rdata_time_signed(ts);
	for (size_t i = 0; i < nkeys && !t->key; i++)
		if (keys[i]->name_len == t->req_key_len &&
		    memcmp(keys[i]->name, t->req_key, t->req_key_len) == 0 &&
		    knot_tsig_rdata_alg(ts) == keys[i]->k.algorithm)
			t->key = keys[i];
	if (!t->key) {
		t->error = SB_DNS_TSIG_BADKEY;
		return 0;
	}
	size_t ml = knot_tsig_rdata_mac_length(ts);
	if (ml > sizeof(t->mac)) {
		t->error = SB_DNS_TSIG_BADSIG;
		return 0;
	}
	t->error = tsig_error_of(knot_tsig_server_check(ts, pkt->wire, pkt->size, &t->key->k));
	if (t->error == 0 || t->error == SB_DNS_TSIG_BADTIME) {
		/* the response is signed over the request's MAC */
		memcpy(t->mac, knot_tsig_rdata_mac(ts), ml);
		t->mac_len = ml;
	}
	return 0;
}

/* An unsigned error response's TSIG: no MAC (RFC 8945 5.3.2). */
static bool tsig_unsigned(const sb_dns_tsig *t)
{
	return t->error && t->error != SB_DNS_TSIG_BADTIME;
}

size_t sb_dns_tsig_room(const sb_dns_tsig *t)
{
	if (tsig_unsigned(t))
		return t->req_key_len + t->req_alg_len + 10 + KNOT_TSIG_VARIABLES_LENGTH;
	return t->key ? knot_tsig_wire_maxsize(&t->key->k) : 0;
}

int sb_dns_tsig_sign_response(sb_dns_tsig *t, uint8_t *msg, size_t *len, size_t cap)
{
	int r;
	if (tsig_unsigned(t)) {
		knot_rrset_t rr;
		knot_rrset_init(&rr, t->req_key, KNOT_RRTYPE_TSIG, KNOT_CLASS_ANY, 0);
		if (knot_tsig_create_rdata(&rr, t->req_alg, 0, t->error) != KNOT_EOK)
			return SB_ERANGE;
		knot_tsig_rdata_set_time_signed(&rr, t->time_signed);
		knot_tsig_rdata_set_fudge(&rr, 300); /* the usual fudge, as libknot signs */
		knot_tsig_rdata_set_orig_id(&rr, knot_wire_get_id(msg));
		knot_tsig_rdata_set_other_data(&rr, 0, NULL);
		r = knot_tsig_append(msg, len, cap, &rr);
		knot_rdataset_clear(&rr.rrs, NULL);
		return r == KNOT_EOK ? 0 : SB_ERANGE;
	}
	if (!t->key)
		return 0;
	size_t ml = sizeof(t->mac);
	if (t->count == 0)
		r = knot_tsig_sign(msg, len, cap, t->mac, t->mac_len, t->mac, &ml, &t->key->k,
				   t->error, t->time_signed);
	else
		r = knot_tsig_sign_next(msg, len, cap, t->mac, t->mac_len, t->mac, &ml, &t->key->k,
					msg, *len);
	if (r != KNOT_EOK)
		return SB_ERANGE;
	t->mac_len = ml;
	t->count++;
	return 0;
}

int sb_dns_tsig_sign_query(sb_dns_tsig *t, uint8_t *msg, size_t *len, size_t cap)
{
	size_t ml = sizeof(t->mac);
	t->count = 0;
	t->error = 0;
	t->time_signed = 0;
	if (!t->key ||
	    knot_tsig_sign(msg, len, cap, NULL, 0, t->mac, &ml, &t->key->k, 0, 0) != KNOT_EOK)
		return SB_ERANGE;
	t->mac_len = ml;
	return 0;
}

int sb_dns_tsig_verify_response(sb_dns_tsig *t, const uint8_t *msg, size_t len)
{
	if (len < KNOT_WIRE_HEADER_SIZE || len > UINT16_MAX || !t->key)
		return SB_EPARSE;
	/* a transfer message holds thousands of records: libknot's record
	 * arrays outgrow a stack arena, so this one is on the heap */
	size_t cap = 16384 + len * 64;
	sb_dns_arena a = {sb_xmalloc(cap), 0, cap};
	uint8_t *buf = sb_xmalloc(len);
	memcpy(buf, msg, len);
	int rc = 0;
	knot_pkt_t *pkt = parse_signed(buf, len, &a);
	if (!pkt) {
		rc = SB_EPARSE;
		goto out;
	}
	const knot_rrset_t *ts = pkt->tsig_rr;
	if (!ts) {
		t->error = SB_DNS_TSIG_BADSIG; /* a signed request gets a signed response */
		goto out;
	}
	if ((t->error = knot_tsig_rdata_error(ts)) != 0)
		goto out;
	if (!knot_dname_is_case_equal(ts->owner, t->key->k.name) ||
	    knot_tsig_rdata_alg(ts) != t->key->k.algorithm) {
		t->error = SB_DNS_TSIG_BADKEY;
		goto out;
	}
	int r = t->count == 0 ? knot_tsig_client_check(ts, pkt->wire, pkt->size, t->mac, t->mac_len,
						       &t->key->k, 0)
			      : knot_tsig_client_check_next(ts, pkt->wire, pkt->size, t->mac,
							    t->mac_len, &t->key->k, t->time_signed);
	if ((t->error = tsig_error_of(r)) != 0)
		goto out;
	size_t ml = knot_tsig_rdata_mac_length(ts);
	if (ml > sizeof(t->mac)) {
		t->error = SB_DNS_TSIG_BADSIG;
		goto out;
	}
	memcpy(t->mac, knot_tsig_rdata_mac(ts), ml);
	t->mac_len = ml;
	t->time_signed = knot_tsig_rdata_time_signed(ts);
	t->count++;
out:
	free(buf);
	free(a.base);
	return rc;
}

/* ---- text -------------------------------------------------------------- */

int sb_dns_rdata_text(const sb_dns_rrset *rs, size_t i, char *buf, size_t size)
{
	/* Explicit fields rather than KNOT_DUMP_STYLE_DEFAULT: one record per
	 * line (no wrapping), numbers as numbers, as NSD and Knot load them. */
	static const knot_dump_style_t style = {
	    .wrap = false,
	    .show_class = true,
	    .show_ttl = true,
	    .verbose = false,
	    .original_ttl = false,
	    .empty_ttl = false,
	    .human_ttl = false,
	    .human_timestamp = false,
	    .generic = false,
	    .hide_crypto = false,
	    .ascii_to_idn = NULL,
	};
	knot_rrset_t rr;
	rrset_view(&rr, (knot_dname_t *)"", rs, rs->ttl);
	int n = knot_rrset_txt_dump_data(&rr, i, buf, size, &style);
	if (n < 0)
		return SB_ERANGE;
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = '\0'; /* the dumper leaves a separator after some types */
	return n;
}

const char *sb_dns_type_text(uint16_t type, char *buf, size_t size)
{
	if (knot_rrtype_to_string(type, buf, size) < 0)
		snprintf(buf, size, "TYPE%u", type);
	return buf;
}
