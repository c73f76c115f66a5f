/* The DNS core: derived zones, answers to raw wire queries, static records,
 * export. Queries are built byte by byte here and responses parsed by a small
 * independent reader, so the tests do not trust libknot to check itself. */
#include <arpa/inet.h>
#include <criterion/criterion.h>

#include "dnspkt.h"
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "dns/answer.h"
#include "dns/export.h"
#include "dns/zone.h"
#include "memfs.h"

/* ---- the world --------------------------------------------------------- */

static const char world_toml[] =
    "[[zone]]\n"
    "name = \"example.com\"\n"
    "addresses = [\"192.0.2.1\", \"2001:db8::1\"]\n"
    "nameservers = [\"ns1.example.com\", \"ns.other.net\"]\n"
    "soa = { rname = \"hostmaster.example.com\", minimum = 60, ttl = 3600 }\n"
    "[[zone]]\n"
    "name = \"example.net\"\n"
    "addresses = [\"198.51.100.7\"]\n"
    "nameservers = [\"ns1.example.com\"]\n"
    "[tenants]\n"
    "service = \"web\"\n"
    "static = [\"acme\"]\n"
    "[previews]\n"
    "prs = [7]\n"
    "[[service]]\n"
    "name = \"web\"\n"
    "routes = [\"app.example.com/*\"]\n"
    "[[service]]\n"
    "name = \"api\"\n"
    "routes = [\"api.example.com/*\", \"x.deep.example.com/*\", \"*.wild.example.com/*\",\n"
    "          \"shop.example.net/*\", \"elsewhere.org/*\", \"*apex.example.net/*\"]\n";

/* Static records of the world, as [[zone.record]] tables would give them. */
static const sb_dns_record_decl world_records[] = {
    {.name = "@",
     .type = "MX",
     .ttl = -1,
     .data = "10 mail",
     .file = "t.toml",
     .line = 1,
     .col = 1},
    {.name = "mail",
     .type = "A",
     .ttl = -1,
     .data = "192.0.2.25",
     .file = "t.toml",
     .line = 2,
     .col = 1},
    {.name = "@",
     .type = "TXT",
     .ttl = 600,
     .data = "v=spf1 mx -all",
     .file = "t.toml",
     .line = 3,
     .col = 1},
    {.name = "@",
     .type = "CAA",
     .ttl = -1,
     .data = "0 issue \"letsencrypt.org\"",
     .file = "t.toml",
     .line = 4,
     .col = 1},
    {.name = "_sip._tcp",
     .type = "SRV",
     .ttl = -1,
     .data = "10 5 5060 sip",
     .file = "t.toml",
     .line = 5,
     .col = 1},
    {.name = "sip",
     .type = "AAAA",
     .ttl = -1,
     .data = "2001:db8::5",
     .file = "t.toml",
     .line = 6,
     .col = 1},
    {.name = "www",
     .type = "CNAME",
     .ttl = -1,
     .data = "app",
     .file = "t.toml",
     .line = 7,
     .col = 1},
    {.name = "alias",
     .type = "cname",
     .ttl = -1,
     .data = "www.example.com.",
     .file = "t.toml",
     .line = 8,
     .col = 1},
    {.name = "loop1",
     .type = "CNAME",
     .ttl = -1,
     .data = "loop2",
     .file = "t.toml",
     .line = 9,
     .col = 1},
    {.name = "loop2",
     .type = "CNAME",
     .ttl = -1,
     .data = "loop1",
     .file = "t.toml",
     .line = 10,
     .col = 1},
    {.name = "out",
     .type = "CNAME",
     .ttl = -1,
     .data = "target.elsewhere.org.",
     .file = "t.toml",
     .line = 11,
     .col = 1},
    {.name = "dangling",
     .type = "CNAME",
     .ttl = -1,
     .data = "nothere",
     .file = "t.toml",
     .line = 12,
     .col = 1},
    {.name = "*.dev",
     .type = "TXT",
     .ttl = -1,
     .data = "\"wild\" \"card\"",
     .file = "t.toml",
     .line = 13,
     .col = 1},
    {.name = "a.b.c",
     .type = "TXT",
     .ttl = -1,
     .data = "deep",
     .file = "t.toml",
     .line = 14,
     .col = 1},
    {.name = "exists.wild",
     .type = "TXT",
     .ttl = -1,
     .data = "here",
     .file = "t.toml",
     .line = 15,
     .col = 1},
    {.name = "mixed",
     .type = "TXT",
     .ttl = -1,
     .data = "\"a\\\"b\\\\c\\255\"",
     .file = "t.toml",
     .line = 16,
     .col = 1},
};

static const char *const world_tenants[] = {"acme", "beta", "api", "x-staging", "Bad!"};

static struct world W;
static sb_dns_zones *Z;

static sb_dns_zones *build(const sb_dns_options *opt, const char *const *tenants, size_t n,
			   uint32_t serial, sb_diag *d, int *rc)
{
	sb_dns_builder *b;
	sb_dns_zones *z = NULL;
	*rc = sb_dns_builder_new(W.model, W.rt, opt, &b, d);
	if (*rc < 0)
		return NULL;
	for (size_t i = 0; i < SB_ARRAY_LEN(world_records); i++) {
		*rc = sb_dns_builder_record(b, "example.com", &world_records[i], d);
		if (*rc < 0) {
			sb_dns_builder_free(b);
			return NULL;
		}
	}
	*rc = sb_dns_builder_finish(b, tenants, n, serial, &z, d);
	return z;
}

static void setup(void)
{
	W = world_load(world_toml, NULL);
	cr_assert_eq(W.rc, 0, "load: %s", W.diag.msg);
	sb_diag d = {0};
	int rc;
	Z = build(NULL, world_tenants, SB_ARRAY_LEN(world_tenants), 2024010101, &d, &rc);
	cr_assert_eq(rc, 0, "build: %s:%d: %s", d.file, d.line, d.msg);
}

static void teardown(void)
{
	sb_dns_free(Z);
	Z = NULL;
	world_free(&W);
	memset(&W, 0, sizeof(W));
	leak_check();
}

static void setup_world_only(void)
{
	W = world_load(world_toml, NULL);
	cr_assert_eq(W.rc, 0, "load: %s", W.diag.msg);
}

TestSuite(answer, .init = setup, .fini = teardown);
TestSuite(edns, .init = setup, .fini = teardown);
TestSuite(wire, .init = setup, .fini = teardown);
TestSuite(zone, .init = setup, .fini = teardown);
TestSuite(records, .init = setup_world_only, .fini = teardown);
TestSuite(serial, .fini = leak_check);
TestSuite(memory, .init = setup_world_only, .fini = teardown);

/* ---- queries, byte by byte ---------------------------------------------- */

enum {
	T_A = 1,
	T_NS = 2,
	T_CNAME = 5,
	T_SOA = 6,
	T_MX = 15,
	T_TXT = 16,
	T_AAAA = 28,
	T_SRV = 33,
	T_OPT = 41,
	T_AXFR = 252,
	T_ANY = 255,
	T_CAA = 257
};

static void p_header(struct pkt *p, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an,
		     uint16_t ns, uint16_t ar)
{
	p->n = 0;
	p_u16(p, id);
	p_u16(p, flags);
	p_u16(p, qd);
	p_u16(p, an);
	p_u16(p, ns);
	p_u16(p, ar);
}

#define F_RD 0x0100

static struct pkt query_cls(const char *name, uint16_t type, uint16_t cls)
{
	struct pkt p;
	p_header(&p, 0xbeef, F_RD, 1, 0, 0, 0);
	p_name(&p, name);
	p_u16(&p, type);
	p_u16(&p, cls);
	return p;
}

static struct pkt query(const char *name, uint16_t type)
{
	return query_cls(name, type, 1);
}

static void add_arcount(struct pkt *p)
{
	uint16_t ar = (uint16_t)(p->b[10] << 8 | p->b[11]);
	ar++;
	p->b[10] = (uint8_t)(ar >> 8);
	p->b[11] = (uint8_t)ar;
}

/* An OPT record in the additional section. */
static void p_opt(struct pkt *p, uint16_t payload, uint8_t version, bool dobit)
{
	p_u8(p, 0); /* root owner */
	p_u16(p, T_OPT);
	p_u16(p, payload);
	p_u8(p, 0); /* extended rcode */
	p_u8(p, version);
	p_u16(p, dobit ? 0x8000 : 0);
	p_u16(p, 0); /* no options */
	add_arcount(p);
}

/* ---- responses, read independently --------------------------------------- */

struct rr {
	int section; /* 0 answer, 1 authority, 2 additional */
	char owner[300];
	uint16_t type, cls;
	uint32_t ttl;
	size_t rdoff;
	uint16_t rdlen;
};

struct resp {
	const uint8_t *w;
	size_t len;
	uint16_t id;
	bool qr, aa, tc, rd, ra;
	int opcode, rcode;
	uint16_t qd, an, ns, ar;
	char qname[300];
	uint16_t qtype, qclass;
	struct rr rr[64];
	size_t nrr;
	uint8_t resp[65536];
};

/* A name at *pos (pointers followed, at most 64 jumps), as text, case kept. */
static void read_name(const uint8_t *w, size_t len, size_t *pos, char *out, size_t size)
{
	size_t p = *pos, o = 0;
	bool jumped = false;
	int jumps = 0;
	out[0] = '\0';
	for (;;) {
		cr_assert_lt(p, len, "name runs past the message");
		uint8_t l = w[p];
		if ((l & 0xc0) == 0xc0) {
			cr_assert_lt(p + 1, len);
			size_t to = (size_t)(l & 0x3f) << 8 | w[p + 1];
			cr_assert_lt(to, p, "compression pointer must point backwards");
			cr_assert_lt(++jumps, 64);
			if (!jumped)
				*pos = p + 2;
			jumped = true;
			p = to;
			continue;
		}
		cr_assert_eq(l & 0xc0, 0, "bad label type");
		if (l == 0) {
			if (!jumped)
				*pos = p + 1;
			break;
		}
		cr_assert_leq(p + 1 + l, len);
		if (o && o + 1 < size)
			out[o++] = '.';
		for (size_t k = 0; k < l && o + 1 < size; k++)
			out[o++] = (char)w[p + 1 + k];
		p += 1 + (size_t)l;
	}
	out[o] = '\0';
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

static void parse_resp(struct resp *r, size_t len)
{
	const uint8_t *w = r->resp;
	r->w = w;
	r->len = len;
	cr_assert_geq(len, 12, "response shorter than a header");
	r->id = rd16(w);
	r->qr = w[2] & 0x80;
	r->opcode = (w[2] >> 3) & 0xf;
	r->aa = w[2] & 0x04;
	r->tc = w[2] & 0x02;
	r->rd = w[2] & 0x01;
	r->ra = w[3] & 0x80;
	r->rcode = w[3] & 0xf;
	r->qd = rd16(w + 4);
	r->an = rd16(w + 6);
	r->ns = rd16(w + 8);
	r->ar = rd16(w + 10);
	size_t pos = 12;
	if (r->qd) {
		cr_assert_eq(r->qd, 1);
		read_name(w, len, &pos, r->qname, sizeof(r->qname));
		r->qtype = rd16(w + pos);
		r->qclass = rd16(w + pos + 2);
		pos += 4;
	}
	r->nrr = 0;
	size_t total = (size_t)r->an + r->ns + r->ar;
	cr_assert_leq(total, SB_ARRAY_LEN(r->rr));
	for (size_t i = 0; i < total; i++) {
		struct rr *x = &r->rr[r->nrr++];
		x->section = i < r->an ? 0 : i < (size_t)r->an + r->ns ? 1 : 2;
		read_name(w, len, &pos, x->owner, sizeof(x->owner));
		cr_assert_leq(pos + 10, len);
		x->type = rd16(w + pos);
		x->cls = rd16(w + pos + 2);
		x->ttl = rd32(w + pos + 4);
		x->rdlen = rd16(w + pos + 8);
		x->rdoff = pos + 10;
		pos += 10 + x->rdlen;
		cr_assert_leq(pos, len, "record data runs past the message");
	}
	cr_assert_eq(pos, len, "trailing bytes after the last record");
}

/* Send p, expect a response (rc 0), parse it into r. */
static void send_q(const struct pkt *p, bool tcp, size_t cap, struct resp *r)
{
	size_t n = 0;
	int rc = sb_dns_answer(Z, p->b, p->n, r->resp, cap, tcp, &n);
	cr_assert_eq(rc, 0, "sb_dns_answer: %d", rc);
	cr_assert_leq(n, cap);
	parse_resp(r, n);
}

static struct resp R; /* large: static */

static struct resp *ask(const char *name, uint16_t type)
{
	struct pkt p = query(name, type);
	send_q(&p, false, sizeof(R.resp), &R);
	return &R;
}

static size_t count(const struct resp *r, int section, uint16_t type)
{
	size_t n = 0;
	for (size_t i = 0; i < r->nrr; i++)
		n += r->rr[i].section == section && r->rr[i].type == type;
	return n;
}

static const struct rr *find(const struct resp *r, int section, uint16_t type, size_t nth)
{
	for (size_t i = 0; i < r->nrr; i++)
		if (r->rr[i].section == section && r->rr[i].type == type && nth-- == 0)
			return &r->rr[i];
	return NULL;
}

static const char *addr_text(const struct resp *r, const struct rr *x, char *buf)
{
	inet_ntop(x->type == T_A ? AF_INET : AF_INET6, r->w + x->rdoff, buf, 64);
	return buf;
}

/* Name in rdata at offset skip. */
static const char *rdata_name(const struct resp *r, const struct rr *x, size_t skip, char *buf)
{
	size_t pos = x->rdoff + skip;
	read_name(r->w, r->len, &pos, buf, 300);
	return buf;
}

static void expect_addr(const char *name, uint16_t type, const char *addr)
{
	struct resp *r = ask(name, type);
	char b[64];
	cr_assert_eq(r->rcode, 0, "%s: rcode %d", name, r->rcode);
	cr_assert(r->aa, "%s: AA", name);
	cr_assert_eq(r->an, 1, "%s: %u answers", name, r->an);
	const struct rr *x = find(r, 0, type, 0);
	cr_assert(x, "%s: no answer of type %u", name, type);
	cr_assert_str_eq(x->owner, name);
	cr_assert_str_eq(addr_text(r, x, b), addr);
}

/* NXDOMAIN or NODATA: no answer, the zone's SOA in the authority section
 * with TTL min(SOA TTL 3600, MINIMUM 60). */
static void expect_negative(const char *name, uint16_t type, int rcode)
{
	struct resp *r = ask(name, type);
	cr_assert_eq(r->rcode, rcode, "%s: rcode %d, want %d", name, r->rcode, rcode);
	cr_assert(r->aa, "%s: AA", name);
	cr_assert_eq(r->an, 0, "%s: %u answers", name, r->an);
	cr_assert_eq(r->ns, 1, "%s: authority", name);
	const struct rr *soa = find(r, 1, T_SOA, 0);
	cr_assert(soa, "%s: no SOA in authority", name);
	cr_assert_str_eq(soa->owner, "example.com");
	cr_assert_eq(soa->ttl, 60, "%s: SOA TTL %u (RFC 2308: min(3600, 60))", name, soa->ttl);
}

/* ---- answers ------------------------------------------------------------ */

Test(answer, routed_hosts_get_the_zone_addresses)
{
	expect_addr("app.example.com", T_A, "192.0.2.1");
	expect_addr("app.example.com", T_AAAA, "2001:db8::1");
	expect_addr("api.example.com", T_A, "192.0.2.1");
	expect_addr("x.deep.example.com", T_A, "192.0.2.1");
	/* every environment: staging by the naming rule, listed preview 7 */
	expect_addr("app-staging.example.com", T_A, "192.0.2.1");
	expect_addr("api-staging.example.com", T_A, "192.0.2.1");
	expect_addr("app-preview-7.example.com", T_A, "192.0.2.1");
	expect_addr("shop.example.net", T_A, "198.51.100.7");
	/* "*apex.example.net" is the name itself and the wildcard below it */
	expect_addr("apex.example.net", T_A, "198.51.100.7");
	expect_addr("a.b.apex.example.net", T_A, "198.51.100.7");
	/* the TTL is the zone's */
	struct resp *r = ask("app.example.com", T_A);
	cr_assert_eq(r->rr[0].ttl, 300);
	cr_assert_eq(r->rr[0].cls, 1);
}

Test(answer, previews_by_rule_are_not_in_dns)
{
	expect_negative("app-preview-8.example.com", T_A, 3);
	expect_negative("api-preview-123.example.com", T_A, 3);
}

Test(answer, header_flags_id_rd_aa_ra)
{
	struct resp *r = ask("app.example.com", T_A);
	cr_assert_eq(r->id, 0xbeef);
	cr_assert(r->qr);
	cr_assert(r->aa);
	cr_assert(r->rd, "RD is copied");
	cr_assert(!r->ra, "RA is 0: not a resolver");
	cr_assert(!r->tc);
	cr_assert_eq(r->opcode, 0);
	struct pkt p = query("app.example.com", T_A);
	p.b[2] &= (uint8_t)~0x01; /* RD=0 */
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert(!R.rd, "RD=0 stays 0");
}

Test(answer, question_case_is_preserved)
{
	struct resp *r = ask("ApP.ExAmPlE.CoM", T_A);
	cr_assert_eq(r->rcode, 0);
	cr_assert_str_eq(r->qname, "ApP.ExAmPlE.CoM");
	cr_assert_eq(r->an, 1);
	cr_assert_str_eq(r->rr[0].owner, "ApP.ExAmPlE.CoM", "answer owner points at the question");
	/* same for a wildcard answer and a tenant */
	r = ask("FoO.WiLd.example.COM", T_A);
	cr_assert_str_eq(r->rr[0].owner, "FoO.WiLd.example.COM");
	r = ask("ACME.example.com", T_A);
	cr_assert_str_eq(r->qname, "ACME.example.com");
	cr_assert_eq(r->an, 1);
}

Test(answer, tenants_active_only)
{
	expect_addr("acme.example.com", T_A, "192.0.2.1"); /* static tenant */
	expect_addr("beta.example.com", T_AAAA, "2001:db8::1");
	/* unknown or suspended (the caller passes active slugs only) */
	expect_negative("gone.example.com", T_A, 3);
	expect_negative("zzz.example.com", T_A, 3);
	/* slugs routing refuses are skipped: staging suffix, bad syntax */
	expect_negative("x-staging.example.com", T_A, 3);
	/* tenants live in the tenant service's zones only */
	struct resp *r = ask("acme.example.net", T_A);
	cr_assert_eq(r->rcode, 3);
	/* one label only */
	expect_negative("a.acme.example.com", T_A, 3);
}

Test(answer, nodata_has_the_soa)
{
	expect_negative("app.example.com", T_MX, 0);
	expect_negative("app.example.com", T_TXT, 0);
	expect_negative("mail.example.com", T_AAAA, 0);
	/* a type we know nothing about: NODATA for an existing name */
	expect_negative("app.example.com", 65280, 0);
	expect_negative("nope.example.com", 65280, 3);
	/* SOA at a name that is not the apex */
	expect_negative("app.example.com", T_SOA, 0);
}

Test(answer, empty_non_terminals_are_nodata)
{
	/* "a.b.c" exists: "b.c" and "c" exist without records */
	expect_negative("b.c.example.com", T_A, 0);
	expect_negative("c.example.com", T_TXT, 0);
	expect_negative("x.b.c.example.com", T_A, 3);
	struct resp *r = ask("a.b.c.example.com", T_TXT);
	cr_assert_eq(r->an, 1);
	/* "deep" is an ENT of the route host x.deep */
	expect_negative("deep.example.com", T_A, 0);
	expect_negative("y.deep.example.com", T_A, 3);
}

Test(answer, wildcards_rfc4592)
{
	/* *.wild (a route host) matches any name below wild that does not exist */
	expect_addr("foo.wild.example.com", T_A, "192.0.2.1");
	expect_addr("a.b.wild.example.com", T_A, "192.0.2.1");
	/* the wildcard's parent is an empty non-terminal */
	expect_negative("wild.example.com", T_A, 0);
	/* an existing name is not covered, nor is a name below it: its closest
	 * encloser is exists.wild, which has no wildcard child */
	expect_negative("exists.wild.example.com", T_A, 0);
	expect_negative("sub.exists.wild.example.com", T_A, 3);
	/* a static wildcard: TXT synthesised, other types NODATA */
	struct resp *r = ask("x.dev.example.com", T_TXT);
	cr_assert_eq(r->rcode, 0);
	cr_assert_eq(r->an, 1);
	cr_assert_str_eq(r->rr[0].owner, "x.dev.example.com");
	cr_assert_eq(r->rr[0].rdlen, 10); /* "wild" "card" */
	expect_negative("x.dev.example.com", T_A, 0);
	/* asking for the wildcard itself */
	r = ask("*.wild.example.com", T_A);
	cr_assert_eq(r->an, 1);
	cr_assert_str_eq(r->rr[0].owner, "*.wild.example.com");
	/* no wildcard at the apex: unknown names are NXDOMAIN */
	expect_negative("nowhere.example.com", T_A, 3);
}

Test(answer, cname_chains)
{
	char b[300], a[64];
	/* alias -> www -> app (A) */
	struct resp *r = ask("alias.example.com", T_A);
	cr_assert_eq(r->rcode, 0);
	cr_assert(r->aa);
	cr_assert_eq(r->an, 3);
	cr_assert_eq(r->rr[0].type, T_CNAME);
	cr_assert_str_eq(r->rr[0].owner, "alias.example.com");
	cr_assert_str_eq(rdata_name(r, &r->rr[0], 0, b), "www.example.com");
	cr_assert_eq(r->rr[1].type, T_CNAME);
	cr_assert_str_eq(r->rr[1].owner, "www.example.com");
	cr_assert_eq(r->rr[2].type, T_A);
	cr_assert_str_eq(r->rr[2].owner, "app.example.com");
	cr_assert_str_eq(addr_text(r, &r->rr[2], a), "192.0.2.1");
	/* asking for the CNAME itself does not follow it */
	r = ask("www.example.com", T_CNAME);
	cr_assert_eq(r->an, 1);
	/* ANY at a CNAME: the CNAME */
	r = ask("www.example.com", T_ANY);
	cr_assert_eq(r->an, 1);
	cr_assert_eq(r->rr[0].type, T_CNAME);
	/* a chain to a name outside our zones: the CNAME, NOERROR */
	r = ask("out.example.com", T_A);
	cr_assert_eq(r->rcode, 0);
	cr_assert_eq(r->an, 1);
	cr_assert_eq(r->ns, 0);
	/* a chain to a name that does not exist: NXDOMAIN (RFC 6604) with the SOA */
	r = ask("dangling.example.com", T_A);
	cr_assert_eq(r->rcode, 3);
	cr_assert_eq(r->an, 1);
	cr_assert(find(r, 1, T_SOA, 0));
	/* to an existing name without the type: NODATA after the CNAME */
	r = ask("www.example.com", T_MX);
	cr_assert_eq(r->rcode, 0);
	cr_assert_eq(r->an, 1);
	cr_assert(find(r, 1, T_SOA, 0));
}

Test(answer, cname_loops_stop)
{
	struct resp *r = ask("loop1.example.com", T_A);
	cr_assert_eq(r->rcode, 0);
	cr_assert_eq(r->an, 2, "loop1 -> loop2 -> (loop1 again): %u records", r->an);
	cr_assert_eq(count(r, 0, T_CNAME), 2);
}

Test(answer, outside_our_zones_is_refused)
{
	struct resp *r = ask("example.org", T_A);
	cr_assert_eq(r->rcode, 5);
	cr_assert(!r->aa);
	cr_assert_eq(r->an + r->ns + r->ar, 0);
	cr_assert_str_eq(r->qname, "example.org");
	r = ask(".", T_NS);
	cr_assert_eq(r->rcode, 5);
	r = ask("com", T_NS);
	cr_assert_eq(r->rcode, 5);
	/* a route host outside every zone is not ours to answer */
	r = ask("elsewhere.org", T_A);
	cr_assert_eq(r->rcode, 5);
	/* a suffix that is not at a label boundary */
	r = ask("notexample.com", T_A);
	cr_assert_eq(r->rcode, 5);
}

Test(answer, class_other_than_in_is_refused)
{
	struct pkt p = query_cls("app.example.com", T_A, 3); /* CH */
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert_eq(R.rcode, 5);
	cr_assert(!R.aa);
	p = query_cls("app.example.com", T_A, 255); /* ANY class */
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert_eq(R.rcode, 5);
}

Test(answer, apex_soa_ns_and_glue)
{
	char b[300], a[64];
	struct resp *r = ask("example.com", T_SOA);
	cr_assert_eq(r->rcode, 0);
	cr_assert_eq(r->an, 1);
	const struct rr *soa = &r->rr[0];
	cr_assert_eq(soa->ttl, 3600);
	size_t pos = soa->rdoff;
	read_name(r->w, r->len, &pos, b, sizeof(b));
	cr_assert_str_eq(b, "ns1.example.com", "MNAME: the first nameserver");
	read_name(r->w, r->len, &pos, b, sizeof(b));
	cr_assert_str_eq(b, "hostmaster.example.com");
	cr_assert_eq(rd32(r->w + pos), 2024010101, "serial");
	cr_assert_eq(rd32(r->w + pos + 4), 3600, "refresh");
	cr_assert_eq(rd32(r->w + pos + 8), 600, "retry");
	cr_assert_eq(rd32(r->w + pos + 12), 1209600, "expire");
	cr_assert_eq(rd32(r->w + pos + 16), 60, "minimum");

	r = ask("example.com", T_NS);
	cr_assert_eq(r->rcode, 0);
	cr_assert_eq(count(r, 0, T_NS), 2);
	/* glue for the in-zone nameserver only */
	cr_assert_eq(r->ar, 2);
	const struct rr *g = find(r, 2, T_A, 0);
	cr_assert(g);
	cr_assert_str_eq(g->owner, "ns1.example.com");
	cr_assert_str_eq(addr_text(r, g, a), "192.0.2.1");
	cr_assert(find(r, 2, T_AAAA, 0));
	/* the nameserver's name answers too */
	expect_addr("ns1.example.com", T_A, "192.0.2.1");
	/* a second zone has its own apex */
	r = ask("example.net", T_SOA);
	cr_assert_eq(r->rcode, 0);
	cr_assert_eq(r->an, 1);
}

Test(answer, static_records)
{
	char b[300], a[64];
	struct resp *r = ask("example.com", T_MX);
	cr_assert_eq(r->an, 1);
	cr_assert_eq(rd16(r->w + r->rr[0].rdoff), 10);
	cr_assert_str_eq(rdata_name(r, &r->rr[0], 2, b), "mail.example.com");
	/* the exchange's address in the additional section */
	const struct rr *x = find(r, 2, T_A, 0);
	cr_assert(x);
	cr_assert_str_eq(addr_text(r, x, a), "192.0.2.25");

	r = ask("example.com", T_TXT);
	cr_assert_eq(r->an, 1);
	cr_assert_eq(r->rr[0].ttl, 600);
	cr_assert_eq(r->rr[0].rdlen, 15);
	cr_assert_eq(memcmp(r->w + r->rr[0].rdoff, "\x0ev=spf1 mx -all", 15), 0);

	r = ask("example.com", T_CAA);
	cr_assert_eq(r->an, 1);
	cr_assert_eq(memcmp(r->w + r->rr[0].rdoff, "\0\5issueletsencrypt.org", 22), 0);

	r = ask("_sip._tcp.example.com", T_SRV);
	cr_assert_eq(r->an, 1);
	const uint8_t *s = r->w + r->rr[0].rdoff;
	cr_assert_eq(rd16(s), 10);
	cr_assert_eq(rd16(s + 2), 5);
	cr_assert_eq(rd16(s + 4), 5060);
	cr_assert_str_eq(rdata_name(r, &r->rr[0], 6, b), "sip.example.com");
	x = find(r, 2, T_AAAA, 0);
	cr_assert(x, "SRV target's address in additional");
	cr_assert_str_eq(addr_text(r, x, a), "2001:db8::5");

	r = ask("mixed.example.com", T_TXT);
	cr_assert_eq(r->rr[0].rdlen, 7);
	cr_assert_eq(memcmp(r->w + r->rr[0].rdoff, "\6a\"b\\c\xff", 7), 0);
}

Test(answer, any_gets_one_rrset_rfc8482)
{
	struct resp *r = ask("app.example.com", T_ANY);
	cr_assert_eq(r->rcode, 0);
	cr_assert_eq(r->an, 1, "one RRset, not all of them");
	cr_assert_eq(r->rr[0].type, T_A, "the first by type");
	r = ask("example.com", T_ANY);
	cr_assert_eq(r->an, 2, "the two NS records: one RRset");
	cr_assert_eq(count(r, 0, T_NS), 2);
	/* ANY at an empty non-terminal or unknown name */
	expect_negative("c.example.com", T_ANY, 0);
	expect_negative("nope.example.com", T_ANY, 3);
}

Test(answer, zone_transfers_are_refused_for_now)
{
	struct resp *r = ask("example.com", T_AXFR);
	cr_assert_eq(r->rcode, 5);
	r = ask("example.com", 251);
	cr_assert_eq(r->rcode, 5);
}

/* ---- malformed input ----------------------------------------------------- */

Test(wire, qdcount_not_one_is_formerr)
{
	struct pkt p;
	p_header(&p, 7, 0, 0, 0, 0, 0);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert_eq(R.rcode, 1);
	cr_assert_eq(R.qd, 0);
	cr_assert_eq(R.id, 7);
	p = query("app.example.com", T_A);
	p.b[5] = 2; /* QDCOUNT 2, one question present */
	p_name(&p, "api.example.com");
	p_u16(&p, T_A);
	p_u16(&p, 1);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert_eq(R.rcode, 1);
	cr_assert_eq(R.an + R.ns + R.ar, 0);
}

Test(wire, unknown_opcode_is_notimp)
{
	for (int op = 1; op < 16; op++) {
		struct pkt p = query("app.example.com", T_A);
		p.b[2] = (uint8_t)((p.b[2] & 0x87) | op << 3);
		send_q(&p, false, sizeof(R.resp), &R);
		cr_assert_eq(R.rcode, 4, "opcode %d: rcode %d", op, R.rcode);
		cr_assert_eq(R.opcode, op, "opcode copied");
		cr_assert_eq(R.an, 0);
	}
}

Test(wire, responses_and_garbage_are_dropped)
{
	size_t n = 99;
	uint8_t out[512];
	struct pkt p = query("app.example.com", T_A);
	p.b[2] |= 0x80; /* QR=1 */
	cr_assert_eq(sb_dns_answer(Z, p.b, p.n, out, sizeof(out), false, &n), SB_EINVAL);
	static const uint8_t junk[5] = {1, 2, 3, 4, 5};
	cr_assert_lt(sb_dns_answer(Z, junk, sizeof(junk), out, sizeof(out), false, &n), 0);
	/* question cut short */
	p = query("app.example.com", T_A);
	cr_assert_eq(sb_dns_answer(Z, p.b, p.n - 3, out, sizeof(out), false, &n), SB_EPARSE);
	/* a label running past the end */
	p_header(&p, 1, 0, 1, 0, 0, 0);
	p_u8(&p, 40);
	p_u8(&p, 'a');
	cr_assert_eq(sb_dns_answer(Z, p.b, p.n, out, sizeof(out), false, &n), SB_EPARSE);
	/* a bad label type (0x40) */
	p_header(&p, 1, 0, 1, 0, 0, 0);
	p_u8(&p, 0x41);
	p_u8(&p, 'a');
	p_u8(&p, 0);
	p_u16(&p, 1);
	p_u16(&p, 1);
	cr_assert_eq(sb_dns_answer(Z, p.b, p.n, out, sizeof(out), false, &n), SB_EPARSE);
	/* tiny output buffer */
	p = query("app.example.com", T_A);
	cr_assert_eq(sb_dns_answer(Z, p.b, p.n, out, 11, false, &n), SB_ERANGE);
	cr_assert_eq(n, 99, "nothing written on a drop");
}

Test(wire, compression_pointers)
{
	size_t n;
	uint8_t out[512];
	/* a pointer in the question: to itself (a loop) */
	struct pkt p;
	p_header(&p, 1, 0, 1, 0, 0, 0);
	p_u8(&p, 0xc0);
	p_u8(&p, 12);
	p_u16(&p, T_A);
	p_u16(&p, 1);
	cr_assert_eq(sb_dns_answer(Z, p.b, p.n, out, sizeof(out), false, &n), SB_EPARSE);
	/* forward, past the end */
	p.b[13] = 200;
	cr_assert_eq(sb_dns_answer(Z, p.b, p.n, out, sizeof(out), false, &n), SB_EPARSE);

	/* in a record after the question: a pointer back to the qname is fine */
	p = query("app.example.com", T_A);
	p_u8(&p, 0xc0);
	p_u8(&p, 12);
	p_u16(&p, T_A);
	p_u16(&p, 1);
	p_u32(&p, 0);
	p_u16(&p, 4);
	p_u32(&p, 0x7f000001);
	add_arcount(&p);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert_eq(R.rcode, 0);
	cr_assert_eq(R.an, 1);

	/* a pointer to itself in a record: rejected, FORMERR (the question was fine) */
	p = query("app.example.com", T_A);
	size_t at = p.n;
	p_u8(&p, 0xc0 | (uint8_t)(at >> 8));
	p_u8(&p, (uint8_t)at);
	p_u16(&p, T_A);
	p_u16(&p, 1);
	p_u32(&p, 0);
	p_u16(&p, 0);
	add_arcount(&p);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert_eq(R.rcode, 1);
	cr_assert_str_eq(R.qname, "app.example.com");

	/* two pointers pointing at each other: one of them points forward */
	p = query("app.example.com", T_A);
	at = p.n;
	p_u8(&p, 1);
	p_u8(&p, 'x');
	p_u8(&p, 0xc0);
	p_u8(&p, (uint8_t)(at + 6));
	p_u16(&p, T_A);
	p_u16(&p, 1);
	p_u32(&p, 0);
	p_u16(&p, 0);
	p_u8(&p, 0xc0);
	p_u8(&p, (uint8_t)at);
	p_u16(&p, T_A);
	p_u16(&p, 1);
	p_u32(&p, 0);
	p_u16(&p, 0);
	p.b[11] = 2;
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert_eq(R.rcode, 1);
}

Test(wire, query_buffer_is_not_modified)
{
	/* a TSIG record: libknot would strip it in place without KEEPWIRE */
	struct pkt p = query("app.example.com", T_A);
	p_name(&p, "key.example.com");
	p_u16(&p, 250); /* TSIG */
	p_u16(&p, 255);
	p_u32(&p, 0);
	size_t rdlen_at = p.n;
	p_u16(&p, 0);
	size_t start = p.n;
	p_name(&p, "hmac-sha256");
	p_u16(&p, 0);
	p_u32(&p, (uint32_t)time(NULL)); /* time: 48 bits */
	p_u16(&p, 300);			 /* fudge */
	p_u16(&p, 32);			 /* MAC size */
	memset(p.b + p.n, 0xaa, 32);
	p.n += 32;
	p_u16(&p, 0xbeef); /* original id */
	p_u16(&p, 0);	   /* error */
	p_u16(&p, 0);	   /* other len */
	uint16_t rdlen = (uint16_t)(p.n - start);
	p.b[rdlen_at] = (uint8_t)(rdlen >> 8);
	p.b[rdlen_at + 1] = (uint8_t)rdlen;
	add_arcount(&p);
	struct pkt copy = p;
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert_eq(memcmp(copy.b, p.b, p.n), 0, "the query was written to");
	cr_assert_eq(R.rcode, 5, "TSIG is not supported yet: REFUSED");
}

/* ---- EDNS ---------------------------------------------------------------- */

static const struct rr *opt_of(const struct resp *r)
{
	const struct rr *o = find(r, 2, T_OPT, 0);
	cr_assert(o, "no OPT in the response");
	cr_assert_str_eq(o->owner, "");
	return o;
}

Test(edns, opt_is_echoed)
{
	struct pkt p = query("app.example.com", T_A);
	p_opt(&p, 4096, 0, false);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert_eq(R.rcode, 0);
	cr_assert_eq(R.an, 1);
	const struct rr *o = opt_of(&R);
	cr_assert_eq(o->cls, 1232, "our payload");
	cr_assert_eq(o->ttl, 0, "ext rcode 0, version 0, DO clear");
	/* DO is copied */
	p = query("app.example.com", T_A);
	p_opt(&p, 1232, 0, true);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert_eq(opt_of(&R)->ttl, 0x8000);
	/* no OPT, no OPT */
	ask("app.example.com", T_A);
	cr_assert_eq(R.ar, 0);
	/* negative answers and REFUSED carry it too */
	p = query("nope.example.com", T_A);
	p_opt(&p, 1232, 0, false);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert_eq(R.rcode, 3);
	opt_of(&R);
	p = query("example.org", T_A);
	p_opt(&p, 1232, 0, false);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert_eq(R.rcode, 5);
	opt_of(&R);
}

Test(edns, version_above_zero_is_badvers)
{
	struct pkt p = query("app.example.com", T_A);
	p_opt(&p, 1232, 1, false);
	send_q(&p, false, sizeof(R.resp), &R);
	const struct rr *o = opt_of(&R);
	cr_assert_eq(R.rcode, 0, "BADVERS is 16: header part 0");
	cr_assert_eq(o->ttl >> 24, 1, "extended rcode 1 (16 >> 4)");
	cr_assert_eq((o->ttl >> 16) & 0xff, 0, "we speak version 0");
	cr_assert_eq(R.an, 0);
}

Test(edns, two_opt_records_are_formerr)
{
	struct pkt p = query("app.example.com", T_A);
	p_opt(&p, 1232, 0, false);
	p_opt(&p, 1232, 0, false);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert_eq(R.rcode, 1);
	cr_assert_eq(R.ar, 0, "no OPT in a FORMERR for a bad OPT");
	/* OPT in the answer section of a query */
	p = query("app.example.com", T_A);
	p_opt(&p, 1232, 0, false);
	p.b[11] = 0;
	p.b[7] = 1; /* ANCOUNT 1 */
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert_eq(R.rcode, 1);
}

/* A zone with a large RRset: "big" has 12 TXT records of 100 bytes. */
static sb_dns_zones *big_zone(int records)
{
	sb_dns_builder *b;
	sb_diag d = {0};
	cr_assert_eq(sb_dns_builder_new(W.model, W.rt, NULL, &b, &d), 0);
	for (int i = 0; i < records; i++) {
		char data[128];
		snprintf(data, sizeof(data), "%02d%098d", i, 0);
		sb_dns_record_decl rec = {.name = "big",
					  .type = "TXT",
					  .ttl = -1,
					  .data = data,
					  .file = "t",
					  .line = i + 1,
					  .col = 1};
		cr_assert_eq(sb_dns_builder_record(b, "example.com", &rec, &d), 0, "%s", d.msg);
	}
	sb_dns_zones *z;
	cr_assert_eq(sb_dns_builder_finish(b, NULL, 0, 1, &z, &d), 0, "%s", d.msg);
	return z;
}

Test(edns, udp_size_and_truncation)
{
	sb_dns_free(Z);
	Z = big_zone(12); /* ~1.3 KB of answer */
	/* no EDNS over UDP: 512 bytes, TC=1 with the question only */
	struct pkt p = query("big.example.com", T_TXT);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert(R.tc);
	cr_assert(R.aa);
	cr_assert_eq(R.rcode, 0);
	cr_assert_eq(R.qd, 1);
	cr_assert_eq(R.an + R.ns + R.ar, 0);
	cr_assert_leq(R.len, 512);
	/* EDNS 4096: capped at 1232, still too big */
	p_opt(&p, 4096, 0, false);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert(R.tc);
	cr_assert_eq(R.an, 0);
	cr_assert_eq(R.ar, 1, "the OPT stays");
	/* TCP: everything */
	p = query("big.example.com", T_TXT);
	send_q(&p, true, sizeof(R.resp), &R);
	cr_assert(!R.tc);
	cr_assert_eq(R.an, 12);
	cr_assert_gt(R.len, 1232);
	/* a smaller RRset: too big for 512, fits in 1232 */
	sb_dns_free(Z);
	Z = big_zone(6);
	p = query("big.example.com", T_TXT);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert(R.tc);
	p_opt(&p, 1232, 0, false);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert(!R.tc);
	cr_assert_eq(R.an, 6);
	cr_assert_leq(R.len, 1232);
	/* a client payload below 512 counts as 512 */
	p = query("big.example.com", T_TXT);
	p_opt(&p, 100, 0, false);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert(R.tc);
	cr_assert_leq(R.len, 512);
	/* the caller's buffer limits too */
	p = query("big.example.com", T_TXT);
	send_q(&p, true, 300, &R);
	cr_assert(R.tc);
}

Test(edns, ns_and_soa_answer_normally)
{
	struct pkt p = query("example.com", T_NS);
	p_opt(&p, 1232, 0, false);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert(!R.tc);
	cr_assert_eq(R.an, 2);
	cr_assert_eq(count(&R, 2, T_A) + count(&R, 2, T_AAAA), 2, "glue in additional");
	opt_of(&R);
	cr_assert_eq(R.rr[R.nrr - 1].type, T_OPT, "OPT last");
	p = query("example.com", T_SOA);
	p_opt(&p, 1232, 0, false);
	send_q(&p, false, sizeof(R.resp), &R);
	cr_assert_eq(R.an, 1);
}

/* ---- the zone ------------------------------------------------------------ */

Test(zone, lookup_and_stats)
{
	cr_assert_eq(sb_dns_zone_count(Z), 2);
	cr_assert_eq(sb_dns_zone_find(Z, "EXAMPLE.com."), 0);
	cr_assert_eq(sb_dns_zone_find(Z, "example.net"), 1);
	cr_assert_eq(sb_dns_zone_find(Z, "example.org"), -1);
	cr_assert_str_eq(sb_dns_zone_name(Z, 1), "example.net");
	cr_assert_eq(sb_dns_zone_serial(Z, 0), 2024010101);
	sb_dns_stats st;
	sb_dns_zone_stats(Z, 0, &st);
	cr_assert_eq(st.tenants, 2, "acme and beta (api, x-staging and Bad! skipped)");
	cr_assert_gt(st.names, 20);
	cr_assert_gt(sb_dns_memory(Z), st.bytes);
}

Test(zone, content_hash_and_serial)
{
	uint64_t h = sb_dns_content_hash(Z, 0);
	sb_dns_zone_set_serial(Z, 0, 7);
	cr_assert_eq(sb_dns_zone_serial(Z, 0), 7);
	cr_assert_eq(sb_dns_content_hash(Z, 0), h, "the serial is not content");
	struct resp *r = ask("example.com", T_SOA);
	size_t pos = r->rr[0].rdoff;
	char b[300];
	read_name(r->w, r->len, &pos, b, sizeof(b));
	read_name(r->w, r->len, &pos, b, sizeof(b));
	cr_assert_eq(rd32(r->w + pos), 7);

	/* same content in another order, another serial: same hash */
	static const char *const reordered[] = {"Bad!", "beta", "x-staging", "acme", "api"};
	sb_diag d = {0};
	int rc;
	sb_dns_zones *z2 = build(NULL, reordered, 5, 99, &d, &rc);
	cr_assert_eq(rc, 0, "%s", d.msg);
	cr_assert_eq(sb_dns_content_hash(z2, 0), h);
	cr_assert_eq(sb_dns_content_hash(z2, 1), sb_dns_content_hash(Z, 1));
	sb_dns_free(z2);
	/* one more tenant: another hash; the other zone is unchanged */
	static const char *const more[] = {"acme", "beta", "gamma"};
	z2 = build(NULL, more, 3, 1, &d, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_neq(sb_dns_content_hash(z2, 0), h);
	cr_assert_eq(sb_dns_content_hash(z2, 1), sb_dns_content_hash(Z, 1));
	sb_dns_free(z2);
}

Test(zone, tenant_wildcard_option)
{
	sb_dns_options opt = {.tenant_wildcard = true};
	sb_diag d = {0};
	int rc;
	sb_dns_free(Z);
	Z = build(&opt, NULL, 0, 1, &d, &rc);
	cr_assert_eq(rc, 0, "%s", d.msg);
	expect_addr("anyone.example.com", T_A, "192.0.2.1");
	expect_addr("app.example.com", T_A, "192.0.2.1");
	/* still NODATA/NXDOMAIN rules below: a.b is covered by *.example.com too */
	expect_addr("a.b.example.com", T_A, "192.0.2.1");
	/* but not below an existing name */
	expect_negative("x.c.example.com", T_A, 3);
}

Test(zone, export_text)
{
	sb_buf b;
	sb_buf_init(&b);
	cr_assert_eq(sb_dns_export(Z, "example.org", &b), SB_ENOENT);
	cr_assert_eq(sb_dns_export(Z, "example.net.", &b), 0);
	cr_assert_str_eq(
	    b.data, "; example.net: derived by Switchboard " SB_VERSION "; serial 2024010101\n"
		    "$ORIGIN example.net.\n"
		    "$TTL 300\n"
		    "@\t300\tIN\tSOA\tns1.example.com. hostmaster.example.net. 2024010101 3600 "
		    "600 1209600 300\n"
		    "@\t300\tIN\tNS\tns1.example.com.\n"
		    "apex\t300\tIN\tA\t198.51.100.7\n"
		    "*.apex\t300\tIN\tA\t198.51.100.7\n"
		    "shop\t300\tIN\tA\t198.51.100.7\n"
		    "shop-preview-7\t300\tIN\tA\t198.51.100.7\n"
		    "shop-staging\t300\tIN\tA\t198.51.100.7\n");
	sb_buf_reset(&b);
	cr_assert_eq(sb_dns_export(Z, "example.com", &b), 0);
	static const char want[] =
	    "; example.com: derived by Switchboard " SB_VERSION "; serial 2024010101\n"
	    "$ORIGIN example.com.\n"
	    "$TTL 300\n"
	    "@\t3600\tIN\tSOA\tns1.example.com. hostmaster.example.com. 2024010101 3600 600 "
	    "1209600 60\n"
	    "@\t300\tIN\tNS\tns.other.net.\n"
	    "@\t300\tIN\tNS\tns1.example.com.\n"
	    "@\t300\tIN\tMX\t10 mail.example.com.\n"
	    "@\t600\tIN\tTXT\t\"v=spf1 mx -all\"\n"
	    "@\t300\tIN\tCAA\t0 issue \"letsencrypt.org\"\n"
	    "_sip._tcp\t300\tIN\tSRV\t10 5 5060 sip.example.com.\n"
	    "acme\t300\tIN\tA\t192.0.2.1\n"
	    "acme\t300\tIN\tAAAA\t2001:db8::1\n"
	    "alias\t300\tIN\tCNAME\twww.example.com.\n"
	    "api\t300\tIN\tA\t192.0.2.1\n"
	    "api\t300\tIN\tAAAA\t2001:db8::1\n"
	    "api-preview-7\t300\tIN\tA\t192.0.2.1\n"
	    "api-preview-7\t300\tIN\tAAAA\t2001:db8::1\n"
	    "api-staging\t300\tIN\tA\t192.0.2.1\n"
	    "api-staging\t300\tIN\tAAAA\t2001:db8::1\n"
	    "app\t300\tIN\tA\t192.0.2.1\n"
	    "app\t300\tIN\tAAAA\t2001:db8::1\n"
	    "app-preview-7\t300\tIN\tA\t192.0.2.1\n"
	    "app-preview-7\t300\tIN\tAAAA\t2001:db8::1\n"
	    "app-staging\t300\tIN\tA\t192.0.2.1\n"
	    "app-staging\t300\tIN\tAAAA\t2001:db8::1\n"
	    "beta\t300\tIN\tA\t192.0.2.1\n"
	    "beta\t300\tIN\tAAAA\t2001:db8::1\n"
	    "a.b.c\t300\tIN\tTXT\t\"deep\"\n"
	    "dangling\t300\tIN\tCNAME\tnothere.example.com.\n"
	    "x.deep\t300\tIN\tA\t192.0.2.1\n"
	    "x.deep\t300\tIN\tAAAA\t2001:db8::1\n"
	    "x-preview-7.deep\t300\tIN\tA\t192.0.2.1\n"
	    "x-preview-7.deep\t300\tIN\tAAAA\t2001:db8::1\n"
	    "x-staging.deep\t300\tIN\tA\t192.0.2.1\n"
	    "x-staging.deep\t300\tIN\tAAAA\t2001:db8::1\n"
	    "*.dev\t300\tIN\tTXT\t\"wild\" \"card\"\n"
	    "loop1\t300\tIN\tCNAME\tloop2.example.com.\n"
	    "loop2\t300\tIN\tCNAME\tloop1.example.com.\n"
	    "mail\t300\tIN\tA\t192.0.2.25\n"
	    "mixed\t300\tIN\tTXT\t\"a\\\"b\\\\c\\255\"\n"
	    "ns1\t300\tIN\tA\t192.0.2.1\n"
	    "ns1\t300\tIN\tAAAA\t2001:db8::1\n"
	    "out\t300\tIN\tCNAME\ttarget.elsewhere.org.\n"
	    "sip\t300\tIN\tAAAA\t2001:db8::5\n"
	    "*.wild\t300\tIN\tA\t192.0.2.1\n"
	    "*.wild\t300\tIN\tAAAA\t2001:db8::1\n"
	    "exists.wild\t300\tIN\tTXT\t\"here\"\n"
	    "www\t300\tIN\tCNAME\tapp.example.com.\n";
	cr_assert_str_eq(b.data, want);

	/* NSD and Knot load it unchanged (when installed) */
	char path[] = "/tmp/sb-dns-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, b.data, b.len), (ssize_t)b.len);
	close(fd);
	char cmd[512];
	if (system("command -v nsd-checkzone >/dev/null 2>&1") == 0) {
		snprintf(cmd, sizeof(cmd), "nsd-checkzone example.com %s >/dev/null", path);
		cr_expect_eq(system(cmd), 0, "nsd-checkzone refused the export");
	}
	if (system("command -v kzonecheck >/dev/null 2>&1") == 0) {
		snprintf(cmd, sizeof(cmd), "kzonecheck -o example.com %s >/dev/null", path);
		cr_expect_eq(system(cmd), 0, "kzonecheck refused the export");
	}
	unlink(path);
	sb_buf_free(&b);
}

/* ---- static records: errors ---------------------------------------------- */

/* Add one record to a fresh builder; returns the code, d the message. */
static int try_record(const char *name, const char *type, int64_t ttl, const char *data, sb_diag *d)
{
	sb_dns_builder *b;
	cr_assert_eq(sb_dns_builder_new(W.model, W.rt, NULL, &b, d), 0);
	sb_dns_record_decl rec = {.name = name,
				  .type = type,
				  .ttl = ttl,
				  .data = data,
				  .file = "sw.toml",
				  .line = 42,
				  .col = 3};
	int r = sb_dns_builder_record(b, "example.com", &rec, d);
	sb_dns_builder_free(b);
	return r;
}

static void expect_error(const char *name, const char *type, const char *data, int code,
			 const char *needle)
{
	sb_diag d = {0};
	int r = try_record(name, type, -1, data, &d);
	cr_assert_eq(r, code, "%s %s \"%s\": got %d (%s)", name, type, data, r, d.msg);
	if (code == 0)
		return;
	cr_assert(strstr(d.msg, needle), "%s %s \"%s\": message \"%s\" lacks \"%s\"", name, type,
		  data, d.msg, needle);
	cr_assert_str_eq(d.file, "sw.toml");
	cr_assert_eq(d.line, 42);
	cr_assert_eq(d.col, 3);
}

Test(records, data_errors)
{
	expect_error("x", "NS", "ns.example.com.", SB_EINVAL, "not supported");
	expect_error("x", "A", "192.0.2.300", SB_EINVAL, "not an IPv4 address");
	expect_error("x", "A", "2001:db8::1", SB_EINVAL, "not an IPv4 address");
	expect_error("x", "AAAA", "192.0.2.1", SB_EINVAL, "not an IPv6 address");
	expect_error("x", "A", "192.0.2.1 192.0.2.2", SB_EINVAL, "unexpected");
	expect_error("x", "MX", "10", SB_EINVAL, "missing mail exchange");
	expect_error("x", "MX", "70000 mail", SB_EINVAL, "MX preference");
	expect_error("x", "MX", "10 bad..name", SB_EINVAL, "empty label");
	expect_error("x", "SRV", "1 2 65536 sip", SB_EINVAL, "SRV port");
	expect_error("x", "SRV", "1 2 3", SB_EINVAL, "missing SRV target");
	expect_error("x", "TXT", "\"open", SB_EINVAL, "unterminated");
	expect_error("x", "TXT", "", SB_EINVAL, "empty");
	expect_error("x", "TXT", "\"a\"b", SB_EINVAL, "after a closing quote");
	expect_error("x", "CAA", "0 is-sue \"x\"", SB_EINVAL, "letters and digits");
	expect_error("x", "CAA", "256 issue \"x\"", SB_EINVAL, "CAA flags");
	expect_error("x", "CNAME", "a b", SB_EINVAL, "unexpected");
	expect_error("x.other.org.", "A", "192.0.2.1", SB_EINVAL, "not in zone example.com");
	expect_error("a.*", "A", "192.0.2.1", SB_EINVAL, "first label");
	expect_error("sp ace", "A", "192.0.2.1", SB_EINVAL, "letters, digits");
	expect_error("", "A", "192.0.2.1", SB_EINVAL, "empty");
	sb_diag d = {0};
	cr_assert_eq(try_record("x", "A", 2147483648LL, "192.0.2.1", &d), SB_EINVAL);
	cr_assert(strstr(d.msg, "ttl"));
	/* a TXT string over 255 bytes: plain text is split, quoted is refused */
	char longtxt[700];
	memset(longtxt, 'a', 600);
	longtxt[600] = '\0';
	cr_assert_eq(try_record("x", "TXT", -1, longtxt, &d), 0);
	longtxt[0] = '"';
	longtxt[599] = '"';
	cr_assert_eq(try_record("x", "TXT", -1, longtxt, &d), SB_EINVAL);
	cr_assert(strstr(d.msg, "255"));
	/* an unknown zone */
	sb_dns_builder *b;
	cr_assert_eq(sb_dns_builder_new(W.model, W.rt, NULL, &b, &d), 0);
	sb_dns_record_decl rec = {.name = "x",
				  .type = "A",
				  .ttl = -1,
				  .data = "192.0.2.1",
				  .file = "sw.toml",
				  .line = 1,
				  .col = 1};
	cr_assert_eq(sb_dns_builder_record(b, "example.org", &rec, &d), SB_EINVAL);
	cr_assert(strstr(d.msg, "not a declared zone"));
	sb_dns_builder_free(b);
}

Test(records, collisions_name_both_sides)
{
	/* a routed host: the route's pattern and deployment are named */
	expect_error("app", "A", "192.0.2.9", SB_EEXIST, "app.example.com/*");
	expect_error("app", "CNAME", "elsewhere.org.", SB_EEXIST, "of web (/t/switchboard.toml");
	expect_error("api-staging", "AAAA", "2001:db8::9", SB_EEXIST, "api-staging");
	expect_error("foo.wild", "TXT", "ok", 0, ""); /* below a wildcard: a new name */
	expect_error("*.wild", "A", "192.0.2.9", SB_EEXIST, "*.wild.example.com/*");
	expect_error("ns1", "A", "192.0.2.9", SB_EEXIST, "nameserver ns1.example.com");
	expect_error("@", "CNAME", "app", SB_EEXIST, "apex");
	/* TXT, MX, CAA may sit beside routed addresses */
	expect_error("app", "TXT", "verification=1", 0, "");
	expect_error("app", "MX", "0 .", 0, "");

	/* between static records */
	sb_dns_builder *b;
	sb_diag d = {0};
	cr_assert_eq(sb_dns_builder_new(W.model, W.rt, NULL, &b, &d), 0);
	sb_dns_record_decl txt = {.name = "mail",
				  .type = "TXT",
				  .ttl = -1,
				  .data = "hello",
				  .file = "a.toml",
				  .line = 1,
				  .col = 1};
	sb_dns_record_decl cname = {.name = "mail",
				    .type = "CNAME",
				    .ttl = -1,
				    .data = "app",
				    .file = "b.toml",
				    .line = 2,
				    .col = 1};
	cr_assert_eq(sb_dns_builder_record(b, "example.com", &txt, &d), 0);
	cr_assert_eq(sb_dns_builder_record(b, "example.com", &cname, &d), SB_EEXIST);
	cr_assert(strstr(d.msg, "TXT record \"mail\" (a.toml:1:1)"), "%s", d.msg);
	cr_assert_str_eq(d.file, "b.toml");
	sb_dns_builder_free(b);

	cr_assert_eq(sb_dns_builder_new(W.model, W.rt, NULL, &b, &d), 0);
	cname.name = "m2";
	txt.name = "m2";
	cr_assert_eq(sb_dns_builder_record(b, "example.com", &cname, &d), 0);
	cr_assert_eq(sb_dns_builder_record(b, "example.com", &txt, &d), SB_EEXIST);
	cr_assert(strstr(d.msg, "CNAME record \"m2\" (b.toml:2:1)"), "%s", d.msg);
	/* a second CNAME target */
	sb_dns_record_decl c2 = {.name = "m2",
				 .type = "CNAME",
				 .ttl = -1,
				 .data = "api",
				 .file = "c.toml",
				 .line = 3,
				 .col = 1};
	cr_assert_eq(sb_dns_builder_record(b, "example.com", &c2, &d), SB_EEXIST);
	cr_assert(strstr(d.msg, "record \"m2\" CNAME collides with static CNAME record \"m2\" "
				"(b.toml:2:1): a name has one CNAME"),
		  "%s", d.msg);
	cr_assert_str_eq(d.file, "c.toml");
	/* a refused record leaves the builder unusable */
	sb_dns_zones *z = NULL;
	cr_assert_lt(sb_dns_builder_finish(b, NULL, 0, 1, &z, &d), 0);
	cr_assert_null(z);

	/* TTLs of one RRset */
	cr_assert_eq(sb_dns_builder_new(W.model, W.rt, NULL, &b, &d), 0);
	sb_dns_record_decl a1 = {.name = "mx",
				 .type = "A",
				 .ttl = 60,
				 .data = "192.0.2.1",
				 .file = "a.toml",
				 .line = 1,
				 .col = 1};
	sb_dns_record_decl a2 = {.name = "mx",
				 .type = "A",
				 .ttl = 120,
				 .data = "192.0.2.2",
				 .file = "a.toml",
				 .line = 2,
				 .col = 1};
	cr_assert_eq(sb_dns_builder_record(b, "example.com", &a1, &d), 0);
	cr_assert_eq(sb_dns_builder_record(b, "example.com", &a2, &d), SB_EINVAL);
	cr_assert(strstr(d.msg, "ttl 120 differs"), "%s", d.msg);
	sb_dns_builder_free(b);
}

Test(records, tenant_collides_with_static_address)
{
	sb_dns_builder *b;
	sb_diag d = {0};
	cr_assert_eq(sb_dns_builder_new(W.model, W.rt, NULL, &b, &d), 0);
	sb_dns_record_decl rec = {.name = "beta",
				  .type = "A",
				  .ttl = -1,
				  .data = "192.0.2.99",
				  .file = "x.toml",
				  .line = 5,
				  .col = 2};
	sb_dns_record_decl txt = {.name = "acme",
				  .type = "TXT",
				  .ttl = -1,
				  .data = "a tenant may have TXT",
				  .file = "x.toml",
				  .line = 6,
				  .col = 2};
	cr_assert_eq(sb_dns_builder_record(b, "example.com", &rec, &d), 0);
	cr_assert_eq(sb_dns_builder_record(b, "example.com", &txt, &d), 0);
	static const char *const t[] = {"acme", "beta"};
	sb_dns_zones *z = NULL;
	cr_assert_eq(sb_dns_builder_finish(b, t, 2, 1, &z, &d), SB_EEXIST);
	cr_assert_null(z);
	cr_assert(strstr(d.msg, "tenant 'beta'"), "%s", d.msg);
	cr_assert(strstr(d.msg, "static A record \"beta\""), "%s", d.msg);
	cr_assert_str_eq(d.file, "x.toml");
	cr_assert_eq(d.line, 5);
}

Test(records, zones_need_nameservers_and_addresses)
{
	struct world w2 =
	    world_load("[[zone]]\nname = \"example.com\"\naddresses = [\"192.0.2.1\"]\n"
		       "[[service]]\nname = \"web\"\n",
		       NULL);
	cr_assert_eq(w2.rc, 0);
	sb_dns_zones *z = NULL;
	sb_diag d = {0};
	cr_assert_eq(sb_dns_build(w2.model, w2.rt, NULL, 0, 1, &z, &d), SB_EINVAL);
	cr_assert(strstr(d.msg, "no nameservers"), "%s", d.msg);
	cr_assert_eq(d.line, 1);
	world_free(&w2);
	w2 = world_load("[[zone]]\nname = \"example.com\"\nnameservers = [\"ns.example.net\"]\n"
			"[[service]]\nname = \"web\"\n",
			NULL);
	cr_assert_eq(w2.rc, 0);
	cr_assert_eq(sb_dns_build(w2.model, w2.rt, NULL, 0, 1, &z, &d), SB_EINVAL);
	cr_assert(strstr(d.msg, "no addresses"), "%s", d.msg);
	world_free(&w2);
}

/* ---- serials -------------------------------------------------------------- */

Test(serial, rfc1982)
{
	cr_assert(sb_dns_serial_gt(2, 1));
	cr_assert(!sb_dns_serial_gt(1, 2));
	cr_assert(!sb_dns_serial_gt(5, 5));
	cr_assert(sb_dns_serial_gt(5, 0xfffffff0u), "wraps");
	cr_assert(!sb_dns_serial_gt(0x80000000u, 0), "undefined at 2^31");
	cr_assert_eq(sb_dns_serial_next(100, 1700000000), 1700000000, "tracks the clock");
	cr_assert_eq(sb_dns_serial_next(1700000000, 1700000000), 1700000001, "always increases");
	cr_assert_eq(sb_dns_serial_next(1700000005, 1700000000), 1700000006, "clock behind");
	cr_assert_eq(sb_dns_serial_next(0xffffffffu, 0xffffffffu), 0, "wraps to 0");
	cr_assert_eq(sb_dns_serial_next(0xfffffff0u, 5), 5, "5 is after 0xfffffff0");
}

/* ---- a million tenants --------------------------------------------------- */

Test(memory, one_million_tenants, .timeout = 120)
{
	enum { N = 1000000 };
	char *slugs = sb_xmalloc((size_t)N * 16);
	const char **t = sb_xmalloc((size_t)N * sizeof(*t));
	for (unsigned i = 0; i < N; i++) {
		/* "tenant-0000042": 14 bytes, a typical slug length */
		snprintf(slugs + (size_t)i * 16, 16, "tenant-%07u", i % 10000000u);
		t[i] = slugs + (size_t)i * 16;
	}
	sb_diag d = {0};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(sb_dns_build(W.model, W.rt, t, N, 1, &Z, &d), 0, "%s", d.msg);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	sb_dns_stats st;
	sb_dns_zone_stats(Z, 0, &st);
	cr_assert_eq(st.tenants, N);
	size_t total = sb_dns_memory(Z);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	printf("dns: zone with %d tenants (slugs of 14 bytes): %zu bytes (%.1f MiB, %.1f bytes "
	       "per tenant), zone tables %zu bytes, built in %.0f ms\n",
	       N, total, (double)total / 1048576.0, (double)total / N, st.bytes, ms);
	fflush(stdout);
	cr_assert_lt(total, (size_t)N * 64, "more than 64 bytes per tenant");
	expect_addr("tenant-0999999.example.com", T_A, "192.0.2.1");
	expect_addr("tenant-0000000.example.com", T_AAAA, "2001:db8::1");
	expect_negative("tenant-1000000.example.com", T_A, 3);
	free(t);
	free(slugs);
}
