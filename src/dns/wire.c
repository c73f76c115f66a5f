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
#include <string.h>

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
	if (pkt->opt_rr) {
		q->edns = true;
		q->edns_version = knot_edns_get_version(pkt->opt_rr);
		q->edns_payload = knot_edns_get_payload(pkt->opt_rr);
		q->edns_do = knot_edns_do(pkt->opt_rr);
	}
	q->tsig = pkt->tsig_rr != NULL;
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

sb_dns_writer *sb_dns_writer_new(sb_dns_arena *a, uint8_t *buf, size_t max, const sb_dns_query *q,
				 bool with_question, bool with_opt)
{
	sb_dns_writer *w = sb_dns_arena_alloc(a, sizeof(*w));
	if (!w || max < KNOT_WIRE_HEADER_SIZE)
		return NULL;
	memset(w, 0, sizeof(*w));
	w->mm = (knot_mm_t){.ctx = a, .alloc = arena_mm_alloc, .free = mm_nofree};
	w->buf = buf;
	w->q = q;
	w->question = with_question && q->has_question;
	w->with_opt = with_opt;
	w->pkt = knot_pkt_new(buf, (uint16_t)(max > UINT16_MAX ? UINT16_MAX : max), &w->mm);
	if (!w->pkt)
		return NULL;
	if (with_opt) {
		if (knot_edns_init(&w->opt, SB_DNS_UDP_MAX, 0, 0, &w->mm) != KNOT_EOK)
			return NULL;
		if (q->edns_do)
			knot_edns_set_do(&w->opt);
		w->opt_size = (uint16_t)knot_edns_wire_size(&w->opt);
	}
	writer_begin(w);
	return w;
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
