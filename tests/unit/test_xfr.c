/* Zone transfers (xfr.h), TSIG (wire.h) and RRL (rrl.h). Messages are read
 * back by a small independent reader, and TSIG MACs are computed here with
 * OpenSSL's HMAC from RFC 8945's definition, so the tests do not trust
 * libknot to check itself. */
#include <arpa/inet.h>
#include <criterion/criterion.h>

#include "dnspkt.h"
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "dns/answer.h"
#include "dns/export.h"
#include "dns/rrl.h"
#include "dns/wire.h"
#include "dns/xfr.h"
#include "dns/zone.h"
#include "memfs.h"

/* ---- the world --------------------------------------------------------- */

static const char world_toml[] = "[[zone]]\n"
				 "name = \"example.com\"\n"
				 "addresses = [\"192.0.2.1\", \"2001:db8::1\"]\n"
				 "nameservers = [\"ns1.example.com\"]\n"
				 "[[zone]]\n"
				 "name = \"example.net\"\n"
				 "addresses = [\"198.51.100.7\"]\n"
				 "nameservers = [\"ns1.example.com\"]\n"
				 "[tenants]\n"
				 "service = \"web\"\n"
				 "[[service]]\n"
				 "name = \"web\"\n"
				 "routes = [\"app.example.com/*\", \"shop.example.net/*\"]\n";

/* 32 bytes of secret, base64 */
#define SECRET "c3dpdGNoYm9hcmQtdGVzdC1zZWNyZXQtMzItYnl0ZSE="
#define SECRET_RAW "switchboard-test-secret-32-byte!"
#define OTHER_SECRET "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0zMmJ5dGU="

static struct world W;

static void setup(void)
{
	W = world_load(world_toml, NULL);
	cr_assert_eq(W.rc, 0, "load: %s", W.diag.msg);
}

static void teardown(void)
{
	world_free(&W);
	memset(&W, 0, sizeof(W));
	leak_check();
}

TestSuite(tsig, .fini = leak_check);
TestSuite(axfr, .init = setup, .fini = teardown);
TestSuite(ixfr, .init = setup, .fini = teardown);
TestSuite(notify, .init = setup, .fini = teardown);
TestSuite(config, .fini = leak_check);
TestSuite(rrl, .fini = leak_check);

/* Zones with tenants t<first>..t<first+n-1> and a static TXT. */
static sb_dns_zones *zones(int first, int n, const char *txt, uint32_t serial)
{
	char(*slugs)[16] = sb_xcalloc((size_t)n + 1, 16);
	const char **t = sb_xcalloc((size_t)n + 1, sizeof(*t));
	for (int i = 0; i < n; i++) {
		snprintf(slugs[i], 16, "t%05d", first + i);
		t[i] = slugs[i];
	}
	sb_dns_builder *b;
	sb_diag d = {0};
	cr_assert_eq(sb_dns_builder_new(W.model, W.rt, NULL, &b, &d), 0, "%s", d.msg);
	if (txt) {
		sb_dns_record_decl rec = {.name = "info",
					  .type = "TXT",
					  .ttl = -1,
					  .data = txt,
					  .file = "t",
					  .line = 1,
					  .col = 1};
		cr_assert_eq(sb_dns_builder_record(b, "example.com", &rec, &d), 0, "%s", d.msg);
	}
	sb_dns_zones *z;
	cr_assert_eq(sb_dns_builder_finish(b, t, (size_t)n, serial, &z, &d), 0, "%s", d.msg);
	free(t);
	free(slugs);
	return z;
}

static sb_dns_key_cfg KEYS[] = {
    {"xfr-key", "hmac-sha256", SECRET, 10, 1},
    {"other-key", NULL, OTHER_SECRET, 11, 1},
};
static sb_dns_peer_cfg ALLOW[] = {
    {"127.0.0.0/8", "xfr-key", 20, 1},
    {"2001:db8::/32", NULL, 21, 1},
};

/* [dns] with both keys and both allow entries, as the loader fills it. */
static sb_dns_cfg config(void)
{
	sb_dns_cfg c = {.keys = KEYS, .nkeys = 2, .allow = ALLOW, .nallow = 2};
	return c;
}

static struct sockaddr_storage addr(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
		a6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, ip, &a6->sin6_addr);
		a6->sin6_port = htons(40000);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
		a4->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &a4->sin_addr);
		a4->sin_port = htons(40000);
	}
	return ss;
}

/* ---- building queries --------------------------------------------------- */

static void p_u48(struct pkt *p, uint64_t v)
{
	p_u16(p, (uint16_t)(v >> 32));
	p_u32(p, (uint32_t)v);
}

static sb_dns_tsig_key *key(const char *name, const char *secret)
{
	sb_dns_tsig_key *k;
	const char *why = NULL;
	cr_assert_eq(sb_dns_tsig_key_new(name, "hmac-sha256", secret, &k, &why), 0, "%s", why);
	return k;
}

/* ---- reading messages (independent of libknot) -------------------------- */

struct rr {
	char name[300];
	uint16_t type, cls;
	uint32_t ttl;
	uint16_t rdlen;
	size_t rd; /* offset of the rdata */
};

struct msg {
	uint8_t b[65536];
	size_t n;
	uint16_t id, flags, counts[4];
	char qname[300];
	uint16_t qtype;
	struct rr rr[8192];
	size_t nrr;
};

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

static void read_name(const uint8_t *w, size_t len, size_t *pos, char *out, size_t size)
{
	size_t p = *pos, o = 0;
	bool jumped = false;
	int hops = 0;
	out[0] = '\0';
	for (;;) {
		cr_assert_lt(p, len, "name runs off the message");
		uint8_t l = w[p];
		if ((l & 0xc0) == 0xc0) {
			cr_assert_lt(++hops, 64, "compression loop");
			size_t to = (size_t)(l & 0x3f) << 8 | w[p + 1];
			if (!jumped)
				*pos = p + 2;
			jumped = true;
			p = to;
			continue;
		}
		if (l == 0) {
			if (!jumped)
				*pos = p + 1;
			break;
		}
		for (size_t i = 0; i < l && o + 2 < size; i++) {
			char c = (char)w[p + 1 + i];
			out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		out[o++] = '.';
		out[o] = '\0';
		p += 1 + l;
	}
}

static void parse(struct msg *m)
{
	cr_assert_geq(m->n, 12);
	m->id = rd16(m->b);
	m->flags = rd16(m->b + 2);
	for (int i = 0; i < 4; i++)
		m->counts[i] = rd16(m->b + 4 + 2 * i);
	size_t pos = 12;
	m->qname[0] = '\0';
	if (m->counts[0]) {
		read_name(m->b, m->n, &pos, m->qname, sizeof(m->qname));
		m->qtype = rd16(m->b + pos);
		pos += 4;
	}
	m->nrr = 0;
	size_t total = (size_t)m->counts[1] + m->counts[2] + m->counts[3];
	for (size_t i = 0; i < total; i++) {
		cr_assert_lt(m->nrr, SB_ARRAY_LEN(m->rr));
		struct rr *r = &m->rr[m->nrr++];
		read_name(m->b, m->n, &pos, r->name, sizeof(r->name));
		cr_assert_leq(pos + 10, m->n);
		r->type = rd16(m->b + pos);
		r->cls = rd16(m->b + pos + 2);
		r->ttl = rd32(m->b + pos + 4);
		r->rdlen = rd16(m->b + pos + 8);
		r->rd = pos + 10;
		pos += 10 + r->rdlen;
		cr_assert_leq(pos, m->n, "record runs off the message");
	}
	cr_assert_eq(pos, m->n, "bytes after the last record");
}

static int rcode(const struct msg *m)
{
	return m->flags & 0xf;
}

/* The last record, if it is a TSIG: its error field. -1: no TSIG. */
static int tsig_error(const struct msg *m)
{
	if (!m->nrr || m->rr[m->nrr - 1].type != SB_DNS_TSIG)
		return -1;
	const struct rr *t = &m->rr[m->nrr - 1];
	size_t p = t->rd;
	char alg[300];
	read_name(m->b, m->n, &p, alg, sizeof(alg));
	p += 6 + 2; /* time signed, fudge */
	uint16_t maclen = rd16(m->b + p);
	p += 2 + maclen + 2; /* MAC, original ID */
	return rd16(m->b + p);
}

/* Serial of an SOA record. */
static uint32_t soa_serial(const struct msg *m, const struct rr *r)
{
	size_t p = r->rd;
	char n[300];
	read_name(m->b, m->n, &p, n, sizeof(n));
	read_name(m->b, m->n, &p, n, sizeof(n));
	return rd32(m->b + p);
}

static struct msg M; /* large: static */

/* ---- a transfer from end to end ------------------------------------------ */

/* One answer record of a transfer, as a line "name type [serial]". */
struct xfer {
	char (*lines)[340];
	size_t n, cap;
	size_t messages;
	int rcode;
	bool signed_ok; /* every message carried a TSIG that verifies */
};

static void xfer_free(struct xfer *x)
{
	free(x->lines);
}

static void xfer_add(struct xfer *x, const struct msg *m, const struct rr *r)
{
	if (x->n == x->cap) {
		x->cap = x->cap ? x->cap * 2 : 256;
		x->lines = sb_xrealloc(x->lines, x->cap * sizeof(*x->lines));
	}
	if (r->type == SB_DNS_SOA)
		snprintf(x->lines[x->n++], 340, "%s SOA %u", r->name, soa_serial(m, r));
	else
		snprintf(x->lines[x->n++], 340, "%s %u", r->name, r->type);
}

/*
 * Send q (signed with k when not NULL) from peer over TCP (or UDP), collect
 * every message: the answer records in order, and whether each message
 * verifies as the next of the signed exchange.
 */
static struct xfer transfer(const sb_dns_zones *z, struct pkt q, const sb_dns_tsig_key *k,
			    const char *peer, bool tcp)
{
	struct xfer x = {.signed_ok = k != NULL};
	sb_dns_tsig t = {.key = k};
	if (k)
		cr_assert_eq(sb_dns_tsig_sign_query(&t, q.b, &q.n, sizeof(q.b)), 0);
	struct sockaddr_storage pa = addr(peer);
	sb_dns_xfr_stream *s = NULL;
	size_t len = 0;
	uint8_t *resp = sb_xmalloc(65535);
	int r = sb_dns_xfr_answer(z, q.b, q.n, (struct sockaddr *)&pa, tcp, resp,
				  tcp ? 65535 : 4096, &len, tcp ? &s : NULL);
	cr_assert_eq(r, 0, "answer: %d", r);
	uint16_t id = rd16(q.b);
	char qname[300];
	size_t qpos = 12;
	read_name(q.b, q.n, &qpos, qname, sizeof(qname));
	for (;;) {
		cr_assert_leq(len, tcp ? 65535 : 512);
		memcpy(M.b, resp, len);
		M.n = len;
		parse(&M);
		x.messages++;
		cr_assert_eq(M.id, id);
		cr_assert(M.flags & 0x8000, "QR");
		cr_assert_str_eq(M.qname, qname, "the question in every message");
		x.rcode = rcode(&M);
		if (k) {
			int e = sb_dns_tsig_verify_response(&t, resp, len);
			if (e < 0 || t.error) {
				fprintf(stderr, "message %zu: verify %d error %u\n", x.messages, e,
					t.error);
				x.signed_ok = false;
			}
		}
		for (size_t i = 0; i < M.counts[1]; i++)
			xfer_add(&x, &M, &M.rr[i]);
		if (!s)
			break;
		r = sb_dns_xfr_next(s, resp, 65535, &len);
		cr_assert_geq(r, 0);
		if (r == 0)
			break;
	}
	sb_dns_xfr_stream_free(s);
	free(resp);
	return x;
}

static size_t count_lines(const struct xfer *x, const char *prefix)
{
	size_t n = 0;
	for (size_t i = 0; i < x->n; i++)
		n += strncmp(x->lines[i], prefix, strlen(prefix)) == 0;
	return n;
}

static bool has_line(const struct xfer *x, const char *line)
{
	for (size_t i = 0; i < x->n; i++)
		if (strcmp(x->lines[i], line) == 0)
			return true;
	return false;
}

/* Records of a zone, by its master-file export. */
static size_t export_records(const sb_dns_zones *z, const char *zone)
{
	sb_buf b;
	sb_buf_init(&b);
	cr_assert_eq(sb_dns_export(z, zone, &b), 0);
	size_t n = 0;
	for (const char *l = b.data; l && *l;) {
		const char *e = strchr(l, '\n');
		if (*l != ';' && *l != '$')
			n++;
		l = e ? e + 1 : l + strlen(l);
	}
	sb_buf_free(&b);
	return n;
}

/* ---- TSIG ---------------------------------------------------------------- */

/* HMAC-SHA256 over parts, as RFC 8945 4.3.3 lays them out. */
static void hmac(const uint8_t *secret, size_t slen, const struct pkt *data, uint8_t out[32])
{
	unsigned ol = 32;
	HMAC(EVP_sha256(), secret, (int)slen, data->b, data->n, out, &ol);
}

/* "TSIG variables" (RFC 8945 4.3.3): key name, class ANY, TTL 0, algorithm,
 * time signed, fudge, error, other len, other data. */
static void tsig_vars(struct pkt *p, uint64_t when, uint16_t error)
{
	p_name(p, "xfr-key");
	p_u16(p, 255);
	p_u32(p, 0);
	p_name(p, "hmac-sha256");
	p_u48(p, when);
	p_u16(p, 300);
	p_u16(p, error);
	p_u16(p, 0);
}

/* A query signed here, not by libknot: ARCOUNT+1, then the TSIG record. */
static struct pkt hand_signed(struct pkt q, uint64_t when, const char *keyname, bool tamper)
{
	struct pkt data = q;
	tsig_vars(&data, when, 0);
	uint8_t mac[32];
	hmac((const uint8_t *)SECRET_RAW, 32, &data, mac);
	if (tamper)
		mac[0] ^= 1;
	q.b[11]++; /* ARCOUNT */
	p_name(&q, keyname);
	p_u16(&q, SB_DNS_TSIG);
	p_u16(&q, 255);
	p_u32(&q, 0);
	size_t rdl = q.n;
	p_u16(&q, 0);
	p_name(&q, "hmac-sha256");
	p_u48(&q, when);
	p_u16(&q, 300);
	p_u16(&q, 32);
	memcpy(q.b + q.n, mac, 32);
	q.n += 32;
	p_u16(&q, rd16(q.b)); /* original ID */
	p_u16(&q, 0);
	p_u16(&q, 0);
	q.b[rdl] = (uint8_t)((q.n - rdl - 2) >> 8);
	q.b[rdl + 1] = (uint8_t)(q.n - rdl - 2);
	return q;
}

Test(tsig, keys_are_checked)
{
	sb_dns_tsig_key *k = NULL;
	const char *why = NULL;
	cr_assert_eq(sb_dns_tsig_key_new("xfr-key", NULL, SECRET, &k, &why), 0);
	size_t nl;
	const uint8_t *n = sb_dns_tsig_key_name(k, &nl);
	cr_assert_eq(nl, 9);
	cr_assert_eq(memcmp(n, "\7xfr-key\0", 9), 0);
	sb_dns_tsig_key_free(k);
	cr_assert_eq(sb_dns_tsig_key_new("Xfr-Key.", "HMAC-SHA512", SECRET, &k, &why), 0);
	n = sb_dns_tsig_key_name(k, &nl);
	cr_assert_eq(memcmp(n, "\7xfr-key\0", 9), 0, "lower case");
	sb_dns_tsig_key_free(k);
	cr_assert_eq(sb_dns_tsig_key_new("k", "hmac-md5", SECRET, &k, &why), SB_EINVAL);
	cr_assert(strstr(why, "hmac-sha256"));
	cr_assert_eq(sb_dns_tsig_key_new("k", NULL, "not base64!", &k, &why), SB_EINVAL);
	cr_assert(strstr(why, "base64"));
	cr_assert_eq(sb_dns_tsig_key_new("k", NULL, "c2hvcnQ=", &k, &why), SB_EINVAL);
	cr_assert(strstr(why, "16 bytes"));
	cr_assert_eq(sb_dns_tsig_key_new("", NULL, SECRET, &k, &why), SB_EINVAL);
	cr_assert(k == NULL);
}

Test(tsig, sign_verify_round_trip)
{
	sb_dns_tsig_key *k = key("xfr-key", SECRET), *other = key("other-key", OTHER_SECRET);
	const sb_dns_tsig_key *keys[] = {other, k};
	struct pkt q = pkt_question(0x1234, "example.com", SB_DNS_SOA);
	struct pkt unsigned_q = q;
	sb_dns_tsig c = {.key = k};
	cr_assert_eq(sb_dns_tsig_sign_query(&c, q.b, &q.n, sizeof(q.b)), 0);
	cr_assert_gt(q.n, unsigned_q.n);
	cr_assert_eq(rd16(q.b + 10), 1, "ARCOUNT");

	sb_dns_tsig s;
	uint8_t stripped[4096];
	size_t sl = 0;
	cr_assert_eq(sb_dns_tsig_verify_query(q.b, q.n, keys, 2, &s, stripped, &sl), 0);
	cr_assert_eq(s.error, 0);
	cr_assert(s.key == k);
	cr_assert_eq(sl, unsigned_q.n, "the query without its TSIG");
	cr_assert_eq(memcmp(stripped, unsigned_q.b, sl), 0);

	/* the server answers and signs; the client verifies */
	uint8_t resp[4096];
	memcpy(resp, unsigned_q.b, unsigned_q.n);
	resp[2] |= 0x84;
	size_t rl = unsigned_q.n;
	cr_assert_lt(rl + sb_dns_tsig_room(&s), sizeof(resp));
	cr_assert_eq(sb_dns_tsig_sign_response(&s, resp, &rl, sizeof(resp)), 0);
	cr_assert_eq(sb_dns_tsig_verify_response(&c, resp, rl), 0);
	cr_assert_eq(c.error, 0);

	/* a flipped bit of the response: BADSIG */
	sb_dns_tsig c2 = {.key = k};
	struct pkt q2 = unsigned_q;
	cr_assert_eq(sb_dns_tsig_sign_query(&c2, q2.b, &q2.n, sizeof(q2.b)), 0);
	cr_assert_eq(sb_dns_tsig_verify_query(q2.b, q2.n, keys, 2, &s, stripped, &sl), 0);
	rl = unsigned_q.n;
	memcpy(resp, unsigned_q.b, rl);
	cr_assert_eq(sb_dns_tsig_sign_response(&s, resp, &rl, sizeof(resp)), 0);
	resp[3] ^= 1;
	cr_assert_eq(sb_dns_tsig_verify_response(&c2, resp, rl), 0);
	cr_assert_eq(c2.error, SB_DNS_TSIG_BADSIG);

	/* a query signed with a key the server does not have: BADKEY */
	const sb_dns_tsig_key *only_other[] = {other};
	cr_assert_eq(sb_dns_tsig_verify_query(q.b, q.n, only_other, 1, &s, stripped, &sl), 0);
	cr_assert_eq(s.error, SB_DNS_TSIG_BADKEY);
	cr_assert(s.key == NULL);
	/* and its response: an unsigned TSIG carrying the error */
	rl = unsigned_q.n;
	memcpy(resp, unsigned_q.b, rl);
	cr_assert_eq(sb_dns_tsig_sign_response(&s, resp, &rl, sizeof(resp)), 0);
	memcpy(M.b, resp, rl);
	M.n = rl;
	parse(&M);
	cr_assert_eq(tsig_error(&M), SB_DNS_TSIG_BADKEY);
	cr_assert_str_eq(M.rr[M.nrr - 1].name, "xfr-key.");

	/* unsigned: nothing to verify */
	cr_assert_eq(
	    sb_dns_tsig_verify_query(unsigned_q.b, unsigned_q.n, keys, 2, &s, stripped, &sl),
	    SB_EPARSE);
	sb_dns_tsig_key_free(k);
	sb_dns_tsig_key_free(other);
}

Test(tsig, macs_match_rfc8945_computed_by_hand)
{
	sb_dns_tsig_key *k = key("xfr-key", SECRET);
	const sb_dns_tsig_key *keys[] = {k};
	struct pkt q = pkt_question(0x4242, "example.com", SB_DNS_A);
	uint64_t now = (uint64_t)time(NULL);
	sb_dns_tsig s;
	uint8_t stripped[4096];
	size_t sl;

	struct pkt good = hand_signed(q, now, "xfr-key", false);
	cr_assert_eq(sb_dns_tsig_verify_query(good.b, good.n, keys, 1, &s, stripped, &sl), 0);
	cr_assert_eq(s.error, 0, "a MAC computed from RFC 8945 verifies");

	struct pkt bad = hand_signed(q, now, "xfr-key", true);
	cr_assert_eq(sb_dns_tsig_verify_query(bad.b, bad.n, keys, 1, &s, stripped, &sl), 0);
	cr_assert_eq(s.error, SB_DNS_TSIG_BADSIG);

	struct pkt unknown = hand_signed(q, now, "nobody", false);
	cr_assert_eq(sb_dns_tsig_verify_query(unknown.b, unknown.n, keys, 1, &s, stripped, &sl), 0);
	cr_assert_eq(s.error, SB_DNS_TSIG_BADKEY);

	struct pkt old = hand_signed(q, now - 3600, "xfr-key", false);
	cr_assert_eq(sb_dns_tsig_verify_query(old.b, old.n, keys, 1, &s, stripped, &sl), 0);
	cr_assert_eq(s.error, SB_DNS_TSIG_BADTIME, "an hour off, fudge 300");
	uint8_t resp[4096];
	size_t rl = q.n;
	memcpy(resp, q.b, rl);
	cr_assert_eq(sb_dns_tsig_sign_response(&s, resp, &rl, sizeof(resp)), 0);
	memcpy(M.b, resp, rl);
	M.n = rl;
	parse(&M);
	cr_assert_eq(tsig_error(&M), SB_DNS_TSIG_BADTIME, "BADTIME is signed, with the error");

	/* the response MAC: request MAC, response without TSIG, TSIG variables */
	cr_assert_eq(sb_dns_tsig_verify_query(good.b, good.n, keys, 1, &s, stripped, &sl), 0);
	struct pkt resp0 = q;
	resp0.b[2] |= 0x84;
	rl = resp0.n;
	memcpy(resp, resp0.b, rl);
	cr_assert_eq(sb_dns_tsig_sign_response(&s, resp, &rl, sizeof(resp)), 0);
	memcpy(M.b, resp, rl);
	M.n = rl;
	parse(&M);
	const struct rr *t = &M.rr[M.nrr - 1];
	size_t p = t->rd;
	char alg[300];
	read_name(M.b, M.n, &p, alg, sizeof(alg));
	cr_assert_str_eq(alg, "hmac-sha256.");
	uint64_t when = (uint64_t)rd16(M.b + p) << 32 | rd32(M.b + p + 2);
	cr_assert_eq(rd16(M.b + p + 8), 32, "MAC size");
	const uint8_t *mac = M.b + p + 10;
	struct pkt data = {.n = 0};
	p_u16(&data, 32);
	memcpy(data.b + data.n, good.b + good.n - 38, 32); /* the request MAC */
	data.n += 32;
	memcpy(data.b + data.n, resp0.b, resp0.n);
	data.n += resp0.n;
	tsig_vars(&data, when, 0);
	uint8_t want[32];
	hmac((const uint8_t *)SECRET_RAW, 32, &data, want);
	cr_assert_eq(memcmp(mac, want, 32), 0, "response MAC as RFC 8945 4.3.3 defines it");
	sb_dns_tsig_key_free(k);
}

/* ---- AXFR ------------------------------------------------------------------ */

struct fixture {
	sb_dns_xfr *x;
	sb_dns_zones *z;
	sb_dns_tsig_key *k, *other;
};

static struct fixture attach(int tenants)
{
	struct fixture f = {.x = sb_dns_xfr_new(NULL)};
	f.z = zones(0, tenants, "hello", 100);
	sb_dns_cfg c = config();
	sb_diag d = {0};
	cr_assert_eq(sb_dns_xfr_attach(f.x, &c, "t.toml", NULL, f.z, &d), 0, "%s", d.msg);
	f.k = key("xfr-key", SECRET);
	f.other = key("other-key", OTHER_SECRET);
	return f;
}

static void fixture_free(struct fixture *f)
{
	sb_dns_free(f->z);
	sb_dns_xfr_free(f->x);
	sb_dns_tsig_key_free(f->k);
	sb_dns_tsig_key_free(f->other);
}

Test(axfr, whole_zone_between_two_soas_signed_message_by_message)
{
	struct fixture f = attach(5000); /* several messages */
	struct xfer x =
	    transfer(f.z, pkt_question(7, "example.com", SB_DNS_AXFR), f.k, "127.0.0.1", true);
	cr_assert_eq(x.rcode, 0);
	cr_assert(x.signed_ok, "every message verifies, chained over the previous MAC");
	cr_assert_gt(x.messages, 1, "5000 tenants do not fit one message");
	cr_assert_str_eq(x.lines[0], "example.com. SOA 100");
	cr_assert_str_eq(x.lines[x.n - 1], "example.com. SOA 100");
	cr_assert_eq(count_lines(&x, "example.com. SOA"), 2);
	cr_assert_eq(x.n, export_records(f.z, "example.com") + 1, "every record, SOA twice");
	cr_assert(has_line(&x, "t04999.example.com. 1"));
	cr_assert(has_line(&x, "t04999.example.com. 28"));
	cr_assert(has_line(&x, "info.example.com. 16"));
	cr_assert(has_line(&x, "example.com. 2"));
	cr_assert_eq(count_lines(&x, "shop.example.net"), 0, "one zone only");
	xfer_free(&x);
	fixture_free(&f);
}

Test(axfr, unsigned_from_an_allowed_network_without_key)
{
	struct fixture f = attach(3);
	struct xfer x =
	    transfer(f.z, pkt_question(7, "example.com", SB_DNS_AXFR), NULL, "2001:db8::53", true);
	cr_assert_eq(x.rcode, 0);
	cr_assert_eq(x.messages, 1);
	cr_assert_eq(x.n, export_records(f.z, "example.com") + 1);
	xfer_free(&x);
	struct xfer n =
	    transfer(f.z, pkt_question(7, "example.net", SB_DNS_AXFR), NULL, "2001:db8::53", true);
	cr_assert_eq(n.rcode, 0);
	cr_assert_str_eq(n.lines[0], "example.net. SOA 100");
	xfer_free(&n);
	fixture_free(&f);
}

/* A single response to q from peer: its rcode and TSIG error (-1: none). */
static void single(const sb_dns_zones *z, struct pkt q, const char *peer, bool tcp, int want_rcode,
		   int want_tsig)
{
	struct sockaddr_storage pa = addr(peer);
	sb_dns_xfr_stream *s = NULL;
	size_t len = 0;
	static uint8_t resp[65535];
	int r = sb_dns_xfr_answer(z, q.b, q.n, (struct sockaddr *)&pa, tcp, resp,
				  tcp ? 65535 : 4096, &len, tcp ? &s : NULL);
	cr_assert_eq(r, 0);
	cr_assert(s == NULL, "one message");
	memcpy(M.b, resp, len);
	M.n = len;
	parse(&M);
	cr_assert_eq(rcode(&M), want_rcode, "rcode %d, wanted %d", rcode(&M), want_rcode);
	cr_assert_eq(tsig_error(&M), want_tsig, "TSIG error %d, wanted %d", tsig_error(&M),
		     want_tsig);
}

static struct pkt signed_q(struct pkt q, const sb_dns_tsig_key *k)
{
	sb_dns_tsig t = {.key = k};
	cr_assert_eq(sb_dns_tsig_sign_query(&t, q.b, &q.n, sizeof(q.b)), 0);
	return q;
}

Test(axfr, who_may_transfer)
{
	struct fixture f = attach(3);
	struct pkt q = pkt_question(9, "example.com", SB_DNS_AXFR);
	/* outside the allow list, even with the key */
	single(f.z, signed_q(q, f.k), "192.0.2.9", true, SB_DNS_REFUSED, 0);
	/* inside, without the key the entry requires */
	single(f.z, q, "127.0.0.1", true, SB_DNS_REFUSED, -1);
	/* inside, another known key: refused, signed (the key verified) */
	single(f.z, signed_q(q, f.other), "127.0.0.1", true, SB_DNS_REFUSED, 0);
	/* a key we do not know: NOTAUTH, BADKEY (RFC 8945 5.2.1) */
	sb_dns_tsig_key *stranger = key("stranger", SECRET);
	single(f.z, signed_q(q, stranger), "127.0.0.1", true, SB_DNS_NOTAUTH, SB_DNS_TSIG_BADKEY);
	sb_dns_tsig_key_free(stranger);
	/* our key name with another secret: NOTAUTH, BADSIG */
	sb_dns_tsig_key *forged = key("xfr-key", OTHER_SECRET);
	single(f.z, signed_q(q, forged), "127.0.0.1", true, SB_DNS_NOTAUTH, SB_DNS_TSIG_BADSIG);
	sb_dns_tsig_key_free(forged);
	/* AXFR over UDP: not defined (RFC 5936 4.2) */
	single(f.z, signed_q(q, f.k), "127.0.0.1", false, SB_DNS_NOTIMP, 0);
	/* not a zone apex */
	single(f.z, signed_q(pkt_question(9, "app.example.com", SB_DNS_AXFR), f.k), "127.0.0.1",
	       true, SB_DNS_NOTAUTH, 0);
	single(f.z, signed_q(pkt_question(9, "example.org", SB_DNS_AXFR), f.k), "127.0.0.1", true,
	       SB_DNS_NOTAUTH, 0);
	/* IXFR without the client's SOA */
	single(f.z, signed_q(pkt_question(9, "example.com", SB_DNS_IXFR), f.k), "127.0.0.1", true,
	       SB_DNS_FORMERR, 0);
	/* IPv4-mapped IPv6 is IPv4 */
	single(f.z, signed_q(q, f.k), "::ffff:127.0.0.1", true, SB_DNS_NOERROR, 0);
	fixture_free(&f);
}

Test(axfr, without_configuration_as_before)
{
	sb_dns_zones *z = zones(0, 3, NULL, 5);
	sb_dns_tsig_key *k = key("xfr-key", SECRET);
	single(z, pkt_question(1, "example.com", SB_DNS_AXFR), "127.0.0.1", true, SB_DNS_REFUSED,
	       -1);
	single(z, signed_q(pkt_question(1, "example.com", SB_DNS_A), k), "127.0.0.1", false,
	       SB_DNS_REFUSED, -1);
	/* an empty configuration attaches nothing */
	sb_dns_xfr *x = sb_dns_xfr_new(NULL);
	sb_dns_cfg c = {0};
	sb_diag d = {0};
	cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", NULL, z, &d), 0);
	cr_assert(sb_dns_zones_attachment(z) == NULL);
	cr_assert(sb_dns_xfr_rrl(z) == NULL);
	single(z, pkt_question(1, "example.com", SB_DNS_AXFR), "127.0.0.1", true, SB_DNS_REFUSED,
	       -1);
	sb_dns_xfr_free(x);
	sb_dns_tsig_key_free(k);
	sb_dns_free(z);
}

Test(axfr, signed_ordinary_queries_get_signed_answers)
{
	struct fixture f = attach(3);
	sb_dns_tsig t = {.key = f.k};
	struct pkt q = pkt_question(11, "t00001.example.com", SB_DNS_A);
	cr_assert_eq(sb_dns_tsig_sign_query(&t, q.b, &q.n, sizeof(q.b)), 0);
	struct sockaddr_storage pa = addr("192.0.2.77"); /* anywhere: only transfers are listed */
	uint8_t resp[4096];
	size_t len;
	cr_assert_eq(sb_dns_xfr_answer(f.z, q.b, q.n, (struct sockaddr *)&pa, false, resp,
				       sizeof(resp), &len, NULL),
		     0);
	memcpy(M.b, resp, len);
	M.n = len;
	parse(&M);
	cr_assert_eq(rcode(&M), 0);
	cr_assert(M.flags & 0x0400, "AA");
	cr_assert_eq(M.counts[1], 1);
	cr_assert_eq(M.rr[0].type, SB_DNS_A);
	cr_assert_eq(tsig_error(&M), 0);
	cr_assert_eq(sb_dns_tsig_verify_response(&t, resp, len), 0);
	cr_assert_eq(t.error, 0);
	/* NXDOMAIN is signed too */
	single(f.z, signed_q(pkt_question(12, "nope.example.com", SB_DNS_A), f.k), "192.0.2.77",
	       false, SB_DNS_NXDOMAIN, 0);
	/* unsigned ordinary queries are untouched */
	single(f.z, pkt_question(13, "t00002.example.com", SB_DNS_A), "192.0.2.77", false, 0, -1);
	fixture_free(&f);
}

Test(axfr, a_stream_keeps_its_zones)
{
	struct fixture f = attach(3000);
	struct pkt q = signed_q(pkt_question(7, "example.com", SB_DNS_AXFR), f.k);
	struct sockaddr_storage pa = addr("127.0.0.1");
	sb_dns_xfr_stream *s = NULL;
	size_t len;
	uint8_t *resp = sb_xmalloc(65535);
	cr_assert_eq(
	    sb_dns_xfr_answer(f.z, q.b, q.n, (struct sockaddr *)&pa, true, resp, 65535, &len, &s),
	    0);
	cr_assert(s != NULL);
	sb_dns_free(f.z); /* the snapshot goes; the transfer goes on */
	f.z = NULL;
	int r, n = 1;
	while ((r = sb_dns_xfr_next(s, resp, 65535, &len)) == 1)
		n++;
	cr_assert_eq(r, 0);
	cr_assert_gt(n, 1);
	sb_dns_xfr_stream_free(s); /* the zones go now (LeakSanitizer checks) */
	free(resp);
	fixture_free(&f);
}

/* ---- IXFR ------------------------------------------------------------------- */

struct versions {
	sb_dns_xfr *x;
	sb_dns_zones *v[4];
	sb_dns_tsig_key *k;
};

/* 100: t0..t2 "hello"; 101: + t3; 102: - t0, TXT "bye"; 103: nothing changed
 * but the serial (no diff content). */
static struct versions history(uint32_t keep)
{
	struct versions v = {.x = sb_dns_xfr_new(NULL), .k = key("xfr-key", SECRET)};
	sb_dns_cfg c = config();
	c.ixfr_history = keep;
	sb_diag d = {0};
	v.v[0] = zones(0, 3, "hello", 100);
	v.v[1] = zones(0, 4, "hello", 101);
	v.v[2] = zones(1, 3, "bye", 102);
	cr_assert_eq(sb_dns_xfr_attach(v.x, &c, "t.toml", NULL, v.v[0], &d), 0);
	cr_assert_eq(sb_dns_xfr_attach(v.x, &c, "t.toml", v.v[0], v.v[1], &d), 0);
	cr_assert_eq(sb_dns_xfr_attach(v.x, &c, "t.toml", v.v[1], v.v[2], &d), 0);
	return v;
}

static void versions_free(struct versions *v)
{
	for (int i = 0; i < 4; i++)
		sb_dns_free(v->v[i]);
	sb_dns_xfr_free(v->x);
	sb_dns_tsig_key_free(v->k);
}

Test(ixfr, differences_from_the_clients_serial)
{
	struct versions v = history(0);
	struct xfer x = transfer(v.v[2], pkt_ixfr(3, "example.com", 100), v.k, "127.0.0.1", true);
	cr_assert_eq(x.rcode, 0);
	cr_assert(x.signed_ok);
	const char *want[] = {
	    "example.com. SOA 102", "example.com. SOA 100", /* step 100 -> 101: nothing removed */
	    "example.com. SOA 101", "t00003.example.com. 1", "t00003.example.com. 28",
	    "example.com. SOA 101", /* step 101 -> 102 */
	    "info.example.com. 16", "t00000.example.com. 1", "t00000.example.com. 28",
	    "example.com. SOA 102", "info.example.com. 16",  "example.com. SOA 102",
	};
	cr_assert_eq(x.n, SB_ARRAY_LEN(want), "%zu records", x.n);
	/* within a removed or added section the order is not specified: compare
	 * the SOAs in place and the rest as sets */
	for (size_t i = 0; i < x.n; i++) {
		if (strstr(want[i], " SOA "))
			cr_assert_str_eq(x.lines[i], want[i], "record %zu", i);
		else
			cr_assert(has_line(&x, want[i]), "%s", want[i]);
	}
	xfer_free(&x);

	/* from 101: one step */
	x = transfer(v.v[2], pkt_ixfr(3, "example.com", 101), v.k, "127.0.0.1", true);
	cr_assert_eq(x.n, 8);
	cr_assert_str_eq(x.lines[0], "example.com. SOA 102");
	cr_assert_str_eq(x.lines[1], "example.com. SOA 101");
	cr_assert_str_eq(x.lines[5], "example.com. SOA 102");
	cr_assert_str_eq(x.lines[6], "info.example.com. 16");
	cr_assert_str_eq(x.lines[7], "example.com. SOA 102");
	xfer_free(&x);
	versions_free(&v);
}

Test(ixfr, current_client_gets_our_soa_alone)
{
	struct versions v = history(0);
	for (uint32_t s = 102; s <= 103; s++) { /* current, or ahead of us */
		struct xfer x =
		    transfer(v.v[2], pkt_ixfr(3, "example.com", s), v.k, "127.0.0.1", true);
		cr_assert_eq(x.n, 1);
		cr_assert_str_eq(x.lines[0], "example.com. SOA 102");
		xfer_free(&x);
	}
	/* over UDP: our SOA, whatever the client has (RFC 1995 2) */
	struct xfer u = transfer(v.v[2], pkt_ixfr(3, "example.com", 100), v.k, "127.0.0.1", false);
	cr_assert_eq(u.n, 1);
	cr_assert_str_eq(u.lines[0], "example.com. SOA 102");
	cr_assert(u.signed_ok);
	xfer_free(&u);
	versions_free(&v);
}

Test(ixfr, beyond_the_history_the_whole_zone)
{
	struct versions v = history(1); /* only 101 -> 102 is kept */
	struct xfer x = transfer(v.v[2], pkt_ixfr(3, "example.com", 100), v.k, "127.0.0.1", true);
	cr_assert_str_eq(x.lines[0], "example.com. SOA 102");
	cr_assert_str_eq(x.lines[x.n - 1], "example.com. SOA 102");
	cr_assert_eq(count_lines(&x, "example.com. SOA"), 2, "AXFR-style");
	cr_assert_eq(x.n, export_records(v.v[2], "example.com") + 1);
	xfer_free(&x);
	x = transfer(v.v[2], pkt_ixfr(3, "example.com", 101), v.k, "127.0.0.1", true);
	cr_assert_eq(x.n, 8, "still incremental from 101");
	xfer_free(&x);
	x = transfer(v.v[2], pkt_ixfr(3, "example.com", 42), v.k, "127.0.0.1", true);
	cr_assert_eq(count_lines(&x, "example.com. SOA"), 2, "unknown serial: AXFR-style");
	xfer_free(&x);
	versions_free(&v);
}

Test(ixfr, a_history_lowered_by_a_reload_shrinks)
{
	struct versions v = history(0); /* 100 -> 101 -> 102 kept */
	sb_dns_cfg c = config();
	c.ixfr_history = 1;
	sb_diag d = {0};
	v.v[3] = zones(1, 3, "bye again", 103);
	cr_assert_eq(sb_dns_xfr_attach(v.x, &c, "t.toml", v.v[2], v.v[3], &d), 0);
	/* one step kept now: from 101 the whole zone, from 102 one step */
	struct xfer x = transfer(v.v[3], pkt_ixfr(3, "example.com", 101), v.k, "127.0.0.1", true);
	cr_assert_eq(count_lines(&x, "example.com. SOA"), 2, "AXFR-style");
	xfer_free(&x);
	x = transfer(v.v[3], pkt_ixfr(3, "example.com", 102), v.k, "127.0.0.1", true);
	cr_assert_gt(count_lines(&x, "example.com. SOA"), 2, "incremental");
	xfer_free(&x);
	versions_free(&v);
}

Test(ixfr, an_abandoned_build_leaves_no_trace)
{
	struct versions v = history(0);
	sb_dns_cfg c = config();
	sb_diag d = {0};
	/* a build of 103 that is not published: rewound */
	sb_dns_xfr_mark *m = sb_dns_xfr_mark_take(v.x);
	sb_dns_zones *lost = zones(1, 6, "lost", 103); /* adds t00004..t00006 */
	cr_assert_eq(sb_dns_xfr_attach(v.x, &c, "t.toml", v.v[2], lost, &d), 0);
	sb_dns_xfr_rewind(v.x, m);
	sb_dns_free(lost);
	/* the same serial published afterwards with other content: the step
	 * from 102 is to what was published, not to the abandoned build */
	v.v[3] = zones(1, 3, "kept", 103);
	cr_assert_eq(sb_dns_xfr_attach(v.x, &c, "t.toml", v.v[2], v.v[3], &d), 0);
	struct xfer x = transfer(v.v[3], pkt_ixfr(3, "example.com", 102), v.k, "127.0.0.1", true);
	cr_assert_gt(count_lines(&x, "example.com. SOA"), 2, "incremental from 102");
	cr_assert(has_line(&x, "info.example.com. 16"));
	cr_assert(!has_line(&x, "t00005.example.com. 1"), "a record only the lost build had");
	xfer_free(&x);
	/* and a mark that is kept changes nothing */
	sb_dns_xfr_mark_free(sb_dns_xfr_mark_take(v.x));
	versions_free(&v);
}

Test(ixfr, history_breaks_when_prev_is_not_the_last_build)
{
	struct versions v = history(0);
	sb_dns_cfg c = config();
	sb_diag d = {0};
	/* v[3] built from something else than v[2]: no diff, AXFR-style below */
	v.v[3] = zones(1, 5, "bye", 103);
	cr_assert_eq(sb_dns_xfr_attach(v.x, &c, "t.toml", v.v[0], v.v[3], &d), 0);
	struct xfer x = transfer(v.v[3], pkt_ixfr(3, "example.com", 102), v.k, "127.0.0.1", true);
	cr_assert_eq(count_lines(&x, "example.com. SOA"), 2);
	cr_assert_eq(x.n, export_records(v.v[3], "example.com") + 1);
	xfer_free(&x);
	/* the older zones keep the history they were attached with */
	x = transfer(v.v[2], pkt_ixfr(3, "example.com", 101), v.k, "127.0.0.1", true);
	cr_assert_eq(x.n, 8);
	xfer_free(&x);
	versions_free(&v);
}

/* ---- NOTIFY ----------------------------------------------------------------- */

struct secondary {
	uv_udp_t udp;
	int port;
	int received;
	int answer_from; /* answer the n-th NOTIFY and later ones (1-based); 0: never */
	uint32_t serials[16];
	bool verified[16];
	sb_dns_tsig_key *k;
	char buf[4096];
};

static void sec_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct secondary *s = h->data;
	b->base = s->buf;
	b->len = sizeof(s->buf);
}

static void sec_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
		     unsigned flags)
{
	struct secondary *s = h->data;
	if (n <= 0 || !from || s->received >= 16)
		return;
	const sb_dns_tsig_key *keys[] = {s->k};
	sb_dns_tsig t;
	uint8_t q[4096];
	size_t ql = 0;
	cr_assert_eq(sb_dns_tsig_verify_query((uint8_t *)b->base, (size_t)n, keys, 1, &t, q, &ql),
		     0);
	memcpy(M.b, q, ql);
	M.n = ql;
	parse(&M);
	cr_assert_eq((M.flags >> 11) & 0xf, SB_DNS_OPCODE_NOTIFY);
	cr_assert(!(M.flags & 0x8000), "a request");
	cr_assert(M.flags & 0x0400, "AA");
	cr_assert_eq(M.qtype, SB_DNS_SOA);
	cr_assert_eq(M.counts[1], 1);
	/* example.net is answered at once; example.com is the one observed */
	bool com = strcmp(M.qname, "example.com.") == 0;
	if (com) {
		int i = s->received++;
		s->verified[i] = t.error == 0;
		s->serials[i] = soa_serial(&M, &M.rr[0]);
		if (!s->answer_from || s->received < s->answer_from)
			return;
	}
	/* the answer: the question, QR, signed */
	uint8_t resp[4096];
	memcpy(resp, q, 12);
	size_t rl = 12;
	resp[2] |= 0x80;
	resp[6] = resp[7] = resp[8] = resp[9] = resp[10] = resp[11] = 0; /* question only */
	size_t qn = 12;
	while (q[qn])
		qn += 1 + q[qn];
	memcpy(resp + 12, q + 12, qn + 1 + 4 - 12);
	rl = qn + 1 + 4;
	cr_assert_eq(sb_dns_tsig_sign_response(&t, resp, &rl, sizeof(resp)), 0);
	uv_buf_t out = uv_buf_init((char *)resp, (unsigned)rl);
	uv_udp_try_send(h, &out, 1, from);
}

static void secondary_start(uv_loop_t *loop, struct secondary *s)
{
	struct sockaddr_in a;
	uv_ip4_addr("127.0.0.1", 0, &a);
	uv_udp_init(loop, &s->udp);
	s->udp.data = s;
	cr_assert_eq(uv_udp_bind(&s->udp, (struct sockaddr *)&a, 0), 0);
	int len = sizeof(a);
	uv_udp_getsockname(&s->udp, (struct sockaddr *)&a, &len);
	s->port = ntohs(a.sin_port);
	uv_udp_recv_start(&s->udp, sec_alloc, sec_recv);
}

/* Run loop until pred holds or ms pass. */
static void run_until(uv_loop_t *loop, bool (*pred)(const struct secondary *),
		      const struct secondary *s, int ms)
{
	uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000;
	while (!(pred && pred(s)) && uv_hrtime() < end)
		uv_run(loop, UV_RUN_NOWAIT), usleep(2000);
}

static bool got2(const struct secondary *s)
{
	return s->received >= 2;
}

static bool got3(const struct secondary *s)
{
	return s->received >= 3;
}

Test(notify, sent_signed_retried_until_answered, .timeout = 20)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct secondary sec = {.answer_from = 2, .k = key("xfr-key", SECRET)};
	secondary_start(&loop, &sec);
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%d", sec.port);
	sb_dns_peer_cfg nd[] = {{target, "xfr-key", 30, 1}};
	sb_dns_cfg c = config();
	c.notify = nd;
	c.nnotify = 1;
	sb_dns_xfr *x = sb_dns_xfr_new(NULL);
	sb_dns_xfr_set_notify_backoff(x, 50);
	sb_diag d = {0};
	sb_dns_zones *z1 = zones(0, 1, NULL, 500);
	cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", NULL, z1, &d), 0, "%s", d.msg);
	cr_assert_eq(sb_dns_xfr_start(x, &loop), 0);
	/* the first NOTIFY is not answered: a second one comes, 50 ms later */
	run_until(&loop, got2, &sec, 3000);
	cr_assert_eq(sec.received, 2);
	cr_assert_eq(sec.serials[0], 500);
	cr_assert_eq(sec.serials[1], 500);
	cr_assert(sec.verified[0] && sec.verified[1], "signed with the key");
	/* answered: no more */
	run_until(&loop, NULL, &sec, 400);
	cr_assert_eq(sec.received, 2, "answered: no more retries");
	/* a new serial: a new NOTIFY */
	sb_dns_zones *z2 = zones(0, 2, NULL, 501);
	cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", z1, z2, &d), 0);
	run_until(&loop, got3, &sec, 3000);
	cr_assert_eq(sec.received, 3);
	cr_assert_eq(sec.serials[2], 501);
	/* the same serial again (a reload without change): nothing */
	sb_dns_zones *z3 = zones(0, 2, NULL, 501);
	cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", z2, z3, &d), 0);
	run_until(&loop, NULL, &sec, 300);
	cr_assert_eq(sec.received, 3);
	sb_dns_xfr_stop(x);
	uv_close((uv_handle_t *)&sec.udp, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
	sb_dns_xfr_free(x);
	sb_dns_free(z1);
	sb_dns_free(z2);
	sb_dns_free(z3);
	sb_dns_tsig_key_free(sec.k);
}

Test(notify, gives_up_after_the_retries, .timeout = 20)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct secondary sec = {.answer_from = 0, .k = key("xfr-key", SECRET)};
	secondary_start(&loop, &sec);
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%d", sec.port);
	sb_dns_peer_cfg nd[] = {{target, "xfr-key", 30, 1}};
	sb_dns_cfg c = config();
	c.notify = nd;
	c.nnotify = 1;
	c.notify_retries = 3;
	sb_dns_xfr *x = sb_dns_xfr_new(NULL);
	sb_dns_xfr_set_notify_backoff(x, 20);
	sb_diag d = {0};
	sb_dns_zones *z = zones(0, 1, NULL, 7);
	cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", NULL, z, &d), 0);
	cr_assert_eq(sb_dns_xfr_start(x, &loop), 0);
	run_until(&loop, NULL, &sec, 1000); /* 100 + 20 + 40 + 80 ms */
	cr_assert_eq(sec.received, 3, "3 tries, then it gives up");
	sb_dns_xfr_stop(x);
	uv_close((uv_handle_t *)&sec.udp, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
	sb_dns_xfr_free(x);
	sb_dns_free(z);
	sb_dns_tsig_key_free(sec.k);
}

/* ---- configuration ---------------------------------------------------------- */

static void expect_config_error(sb_dns_cfg c, int line, const char *part)
{
	sb_diag d = {0};
	cr_assert_eq(sb_dns_xfr_config_check(&c, "t.toml", &d), SB_EINVAL, "expected: %s", part);
	cr_assert_eq(d.line, line, "%s", d.msg);
	cr_assert_str_eq(d.file, "t.toml");
	cr_assert(strstr(d.msg, part), "\"%s\" not in \"%s\"", part, d.msg);
}

Test(config, errors_name_the_entry)
{
	sb_diag d = {0};
	sb_dns_cfg ok = config();
	cr_assert_eq(sb_dns_xfr_config_check(&ok, "t.toml", &d), 0, "%s", d.msg);

	sb_dns_key_cfg dup[] = {KEYS[0], {"XFR-KEY.", NULL, SECRET, 12, 3}};
	sb_dns_cfg c = {.keys = dup, .nkeys = 2};
	expect_config_error(c, 12, "declared twice");
	sb_dns_key_cfg bad[] = {{"k", "hmac-sha256", "!!!", 13, 1}};
	c = (sb_dns_cfg){.keys = bad, .nkeys = 1};
	expect_config_error(c, 13, "base64");
	sb_dns_peer_cfg a1[] = {{"10.0.0.0/33", NULL, 14, 1}};
	c = (sb_dns_cfg){.allow = a1, .nallow = 1};
	expect_config_error(c, 14, "prefix length");
	sb_dns_peer_cfg a2[] = {{"localhost", NULL, 15, 1}};
	c.allow = a2;
	expect_config_error(c, 15, "not an address");
	sb_dns_peer_cfg a3[] = {{"127.0.0.1", "nokey", 16, 1}};
	c.allow = a3;
	expect_config_error(c, 16, "is not a [[dns.key]]");
	sb_dns_peer_cfg n1[] = {{"127.0.0.1:99999", NULL, 17, 1}};
	c = (sb_dns_cfg){.notify = n1, .nnotify = 1};
	expect_config_error(c, 17, "address:port");
	sb_dns_peer_cfg n2[] = {{"[::1]:53", "nokey", 18, 1}};
	c.notify = n2;
	expect_config_error(c, 18, "is not a [[dns.key]]");
	c = (sb_dns_cfg){.rrl_rps = 5, .rrl_ipv4_prefix = 40, .rrl_line = 19};
	expect_config_error(c, 19, "ipv4_prefix");
	sb_dns_peer_cfg n3[] = {{"192.0.2.1", NULL, 1, 1},
				{"2001:db8::1", NULL, 2, 1},
				{"[2001:db8::1]:5300", NULL, 3, 1}};
	c = (sb_dns_cfg){.notify = n3, .nnotify = 3};
	cr_assert_eq(sb_dns_xfr_config_check(&c, "t.toml", &d), 0, "%s", d.msg);
}

Test(config, a_bad_configuration_leaves_the_zones_alone)
{
	W = world_load(world_toml, NULL);
	cr_assert_eq(W.rc, 0);
	sb_dns_xfr *x = sb_dns_xfr_new(NULL);
	sb_dns_zones *z = zones(0, 1, NULL, 1);
	sb_dns_peer_cfg a[] = {{"nope", NULL, 14, 1}};
	sb_dns_cfg c = {.allow = a, .nallow = 1};
	sb_diag d = {0};
	cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", NULL, z, &d), SB_EINVAL);
	cr_assert(sb_dns_zones_attachment(z) == NULL);
	sb_dns_xfr_free(x);
	sb_dns_free(z);
	world_free(&W);
	memset(&W, 0, sizeof(W));
}

/* ---- RRL --------------------------------------------------------------------- */

static sb_dns_rrl_action check(sb_dns_rrl *r, const char *ip, uint64_t ms)
{
	struct sockaddr_storage a = addr(ip);
	return sb_dns_rrl_check(r, (struct sockaddr *)&a, ms);
}

Test(rrl, a_bucket_per_network_refilled_at_the_rate)
{
	sb_dns_rrl_config c = {.responses_per_second = 10, .slip = 2};
	sb_dns_rrl *r = sb_dns_rrl_new(&c);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(check(r, "192.0.2.1", 1000), SB_DNS_RRL_SEND, "burst %d", i);
	/* over: drop, slip, drop, slip... */
	cr_assert_eq(check(r, "192.0.2.200", 1000), SB_DNS_RRL_DROP, "same /24");
	cr_assert_eq(check(r, "192.0.2.7", 1000), SB_DNS_RRL_SLIP);
	cr_assert_eq(check(r, "192.0.2.7", 1000), SB_DNS_RRL_DROP);
	cr_assert_eq(check(r, "192.0.2.7", 1000), SB_DNS_RRL_SLIP);
	/* another network is not affected */
	cr_assert_eq(check(r, "192.0.3.1", 1000), SB_DNS_RRL_SEND);
	cr_assert_eq(check(r, "::ffff:192.0.3.1", 1000), SB_DNS_RRL_SEND, "mapped: the same /24");
	/* 100 ms later: one more response */
	cr_assert_eq(check(r, "192.0.2.1", 1100), SB_DNS_RRL_SEND);
	cr_assert_neq(check(r, "192.0.2.1", 1100), SB_DNS_RRL_SEND);
	/* a clock slightly behind on another thread never refills */
	cr_assert_neq(check(r, "192.0.2.1", 1050), SB_DNS_RRL_SEND);
	/* a second later: full again, not more */
	for (int i = 0; i < 10; i++)
		cr_assert_eq(check(r, "192.0.2.1", 5000), SB_DNS_RRL_SEND);
	cr_assert_neq(check(r, "192.0.2.1", 5000), SB_DNS_RRL_SEND);
	sb_dns_rrl_free(r);
}

Test(rrl, ipv6_by_56_and_slip_settings)
{
	sb_dns_rrl_config c = {.responses_per_second = 1, .slip = 0};
	sb_dns_rrl *r = sb_dns_rrl_new(&c);
	cr_assert_eq(check(r, "2001:db8:0:100::1", 0), SB_DNS_RRL_SEND);
	cr_assert_eq(check(r, "2001:db8:0:1ff::2", 0), SB_DNS_RRL_DROP, "same /56, slip 0: drop");
	cr_assert_eq(check(r, "2001:db8:0:1ff::2", 0), SB_DNS_RRL_DROP);
	cr_assert_eq(check(r, "2001:db8:0:200::1", 0), SB_DNS_RRL_SEND, "another /56");
	sb_dns_rrl_free(r);
	c.slip = 1;
	r = sb_dns_rrl_new(&c);
	cr_assert_eq(check(r, "198.51.100.1", 0), SB_DNS_RRL_SEND);
	cr_assert_eq(check(r, "198.51.100.1", 0), SB_DNS_RRL_SLIP, "slip 1: every one truncated");
	cr_assert_eq(check(r, "198.51.100.1", 0), SB_DNS_RRL_SLIP);
	sb_dns_rrl_free(r);
	cr_assert(sb_dns_rrl_new(&(sb_dns_rrl_config){0}) == NULL, "rate 0: off");
	cr_assert_eq(sb_dns_rrl_check(NULL, NULL, 0), SB_DNS_RRL_SEND);
}

Test(rrl, a_small_table_evicts_and_never_grows)
{
	sb_dns_rrl_config c = {.responses_per_second = 1, .slip = 0, .table_size = 8};
	sb_dns_rrl *r = sb_dns_rrl_new(&c);
	char ip[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		cr_assert_eq(check(r, ip, (uint64_t)i), SB_DNS_RRL_SEND,
			     "a new network starts full");
	}
	sb_dns_rrl_free(r);
}

/* The set a /24 took before sets were chosen by a keyed hash (the default
 * table: 16384 sets of 4). */
static size_t unkeyed_set(uint32_t net)
{
	uint64_t k0 = (uint64_t)(net & 0xffffff00u) << 32;
	return (size_t)sb_hash_mix64(k0 ^ sb_hash_mix64(0 ^ 4)) & 16383;
}

Test(rrl, networks_chosen_to_share_a_set_do_not_evict_the_victim)
{
	/* a spoofer computes five /24s that land in the victim's 4-way set
	 * and, after each burst of the victim's, sends a query from each: the
	 * fourth evicts the victim's bucket, which would then start full
	 * again, so every response to the victim would be sent */
	uint32_t victim = 0xc0000200u; /* 192.0.2.0/24 */
	uint32_t evict[5];
	size_t found = 0;
	for (uint32_t net = 0x0a000000u; found < 5; net += 0x100)
		if (net != victim && unkeyed_set(net) == unkeyed_set(victim))
			evict[found++] = net;
	sb_dns_rrl_config c = {.responses_per_second = 20, .slip = 0};
	sb_dns_rrl *r = sb_dns_rrl_new(&c);
	int sent = 0;
	char ip[32];
	for (int i = 0; i < 400; i++) {
		uint64_t ms = 1000 + (uint64_t)i * 5; /* 400 queries over 2 s */
		if (check(r, "192.0.2.1", ms) == SB_DNS_RRL_SEND)
			sent++;
		if (i % 10 == 9)
			for (size_t k = 0; k < 5; k++) {
				snprintf(ip, sizeof(ip), "%u.%u.%u.1", evict[k] >> 24,
					 evict[k] >> 16 & 255, evict[k] >> 8 & 255);
				check(r, ip, ms + 1 + k);
			}
	}
	/* a second's burst and two seconds of refill: 60 at most */
	cr_assert_leq(sent, 60, "%d of 400 sent", sent);
	sb_dns_rrl_free(r);
}

Test(rrl, slip_truncates_to_the_question)
{
	struct pkt q = pkt_question(5, "example.com", SB_DNS_A);
	uint8_t resp[512];
	memcpy(resp, q.b, q.n);
	size_t n = q.n;
	resp[2] |= 0x84;
	resp[7] = 1; /* an answer record */
	memcpy(resp + n, "\xc0\x0c\0\1\0\1\0\0\1\0\0\4\1\2\3\4", 16);
	n += 16;
	size_t t = sb_dns_wire_truncate(resp, n);
	cr_assert_eq(t, q.n);
	memcpy(M.b, resp, t);
	M.n = t;
	parse(&M);
	cr_assert(M.flags & 0x0200, "TC");
	cr_assert_eq(M.counts[1], 0);
	cr_assert_str_eq(M.qname, "example.com.");
}
