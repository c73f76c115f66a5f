/* Tests written in a mutation audit of the DNS server: each one fails
 * against a small change to src/dns/ that the other tests let through (the
 * change is named in each test's comment). Responses are read from their
 * header counts and rcode only, by hand: no libknot on this side. */
#include <arpa/inet.h>
#include <criterion/criterion.h>

#include "dnspkt.h"
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "dns/answer.h"
#include "dns/export.h"
#include "dns/rrl.h"
#include "dns/wire.h"
#include "dns/xfr.h"
#include "dns/zone.h"
#include "memfs.h"

static const char world_toml[] = "[[zone]]\n"
				 "name = \"example.com\"\n"
				 "addresses = [\"192.0.2.1\"]\n"
				 "nameservers = [\"ns1.example.com\"]\n"
				 "[tenants]\n"
				 "service = \"web\"\n"
				 "[[service]]\n"
				 "name = \"web\"\n"
				 "routes = [\"app.example.com/*\"]\n";

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

TestSuite(mutants, .init = setup, .fini = teardown);

/* A static record as [[zone.record]] gives it; ttl -1: the zone's. */
static sb_dns_record_decl rec(const char *name, const char *type, int64_t ttl, const char *data)
{
	return (sb_dns_record_decl){
	    .name = name, .type = type, .ttl = ttl, .data = data, .file = "t", .line = 1, .col = 1};
}

/* Zones with the n records, at serial; NULL when a record is refused (d
 * says why, *rc the code). */
static sb_dns_zones *build(const sb_dns_record_decl *recs, size_t n, uint32_t serial, int *rc,
			   sb_diag *d)
{
	sb_dns_builder *b;
	cr_assert_eq(sb_dns_builder_new(W.model, W.rt, NULL, &b, d), 0, "%s", d->msg);
	for (size_t i = 0; i < n; i++)
		if ((*rc = sb_dns_builder_record(b, "example.com", &recs[i], d)) < 0) {
			sb_dns_builder_free(b);
			return NULL;
		}
	sb_dns_zones *z = NULL;
	*rc = sb_dns_builder_finish(b, NULL, 0, serial, &z, d);
	return z;
}

static sb_dns_zones *build_ok(const sb_dns_record_decl *recs, size_t n, uint32_t serial)
{
	sb_diag d = {0};
	int rc;
	sb_dns_zones *z = build(recs, n, serial, &rc, &d);
	cr_assert_eq(rc, 0, "build: %s", d.msg);
	return z;
}

struct head {
	int rcode;
	unsigned an, ar;
};

static struct head head_of(const uint8_t *r, size_t n)
{
	cr_assert_geq(n, 12, "a response has a header");
	cr_assert(r[2] & 0x80, "QR");
	return (struct head){.rcode = r[3] & 0xf,
			     .an = (unsigned)(r[6] << 8 | r[7]),
			     .ar = (unsigned)(r[10] << 8 | r[11])};
}

static struct head ask(const sb_dns_zones *z, const char *name, uint16_t type)
{
	static uint8_t resp[65535];
	struct pkt q = pkt_question(0x4242, name, type);
	size_t n = 0;
	cr_assert_eq(sb_dns_answer(z, q.b, q.n, resp, sizeof(resp), true, &n), 0);
	return head_of(resp, n);
}

/* The zone as master-file text (the caller frees it). */
static char *export_text(const sb_dns_zones *z)
{
	sb_buf b;
	sb_buf_init(&b);
	cr_assert_eq(sb_dns_export(z, "example.com", &b), 0);
	char *s = sb_xstrndup(b.data, b.len);
	sb_buf_free(&b);
	return s;
}

/* ---- answers ---------------------------------------------------------------- */

/* At most 8 CNAMEs are followed (docs/dns.md), not 7 (mutant: the chain
 * stopped at MAX_CHAIN - 1). */
Test(mutants, a_cname_chain_is_followed_for_eight_cnames)
{
	static const char *names[] = {"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "app"};
	sb_dns_record_decl recs[9];
	for (int i = 0; i < 9; i++)
		recs[i] = rec(names[i], "CNAME", -1, names[i + 1]);
	sb_dns_zones *z = build_ok(recs, 9, 1);
	/* 7 CNAMEs, then the target's A */
	struct head h = ask(z, "c3.example.com", SB_DNS_A);
	cr_assert_eq(h.rcode, SB_DNS_NOERROR);
	cr_assert_eq(h.an, 8, "c3 .. c9 and app's A: %u records", h.an);
	/* 9 CNAMEs: the first 8, then the resolver goes on */
	h = ask(z, "c1.example.com", SB_DNS_A);
	cr_assert_eq(h.an, 8, "8 CNAMEs: %u records", h.an);
	sb_dns_free(z);
}

/* A target named by two records of the RRset gets its addresses once in
 * the additional section (mutant: targets were not deduplicated). */
Test(mutants, a_target_named_twice_gets_its_addresses_once)
{
	sb_dns_record_decl recs[] = {rec("@", "MX", -1, "10 mail"), rec("@", "MX", -1, "20 mail"),
				     rec("mail", "A", -1, "192.0.2.25")};
	sb_dns_zones *z = build_ok(recs, 3, 1);
	struct head h = ask(z, "example.com", SB_DNS_MX);
	cr_assert_eq(h.an, 2);
	cr_assert_eq(h.ar, 1, "mail's A once: %u additional records", h.ar);
	sb_dns_free(z);
}

/* ---- static records ---------------------------------------------------------- */

/* 2147483647 is the largest TTL (RFC 2181 8), allowed; above it refused
 * (mutant: ttl >= 2147483647 refused). */
Test(mutants, the_largest_ttl_is_allowed)
{
	sb_dns_record_decl r = rec("t", "TXT", 2147483647LL, "max");
	sb_dns_zones *z = build_ok(&r, 1, 1);
	char *s = export_text(z);
	cr_assert(strstr(s, "t\t2147483647\tIN\tTXT"), "%s", s);
	free(s);
	sb_dns_free(z);
}

/* An explicit ttl = 0 is a TTL of 0 (do not cache), not "the zone's"
 * (mutant: ttl <= 0 taken as unset). */
Test(mutants, an_explicit_ttl_of_zero_is_kept)
{
	sb_dns_record_decl r = rec("t", "TXT", 0, "fresh");
	sb_dns_zones *z = build_ok(&r, 1, 1);
	char *s = export_text(z);
	cr_assert(strstr(s, "t\t0\tIN\tTXT"), "%s", s);
	free(s);
	sb_dns_free(z);
}

/* Records of one RRset share one TTL, whichever is lower (mutant: only a
 * second record with a higher TTL was refused). */
Test(mutants, an_rrset_with_two_ttls_is_refused_either_way)
{
	static const int64_t ttls[][2] = {{600, 300}, {300, 600}};
	for (size_t i = 0; i < 2; i++) {
		sb_dns_record_decl recs[] = {rec("t", "TXT", ttls[i][0], "one"),
					     rec("t", "TXT", ttls[i][1], "two")};
		sb_diag d = {0};
		int rc;
		sb_dns_zones *z = build(recs, 2, 1, &rc, &d);
		cr_assert_null(z);
		cr_assert_eq(rc, SB_EINVAL, "ttl %lld then %lld: %d", (long long)ttls[i][0],
			     (long long)ttls[i][1], rc);
		cr_assert(strstr(d.msg, "differs"), "%s", d.msg);
	}
}

/* ---- change detection ---------------------------------------------------------- */

/* A record whose data changes (same name, type, TTL and size) changes the
 * content hash, so the serial moves and secondaries are told (mutant: the
 * hash left the rdata out). A TTL change counts too. */
Test(mutants, the_content_hash_sees_record_data_and_ttl)
{
	sb_dns_record_decl a = rec("t", "TXT", -1, "v=one");
	sb_dns_record_decl b = rec("t", "TXT", -1, "v=two");
	sb_dns_record_decl c = rec("t", "TXT", 60, "v=one");
	sb_dns_zones *za = build_ok(&a, 1, 1), *za2 = build_ok(&a, 1, 2);
	sb_dns_zones *zb = build_ok(&b, 1, 1), *zc = build_ok(&c, 1, 1);
	cr_assert_eq(sb_dns_content_hash(za, 0), sb_dns_content_hash(za2, 0),
		     "the serial is not content");
	cr_assert_neq(sb_dns_content_hash(za, 0), sb_dns_content_hash(zb, 0), "data");
	cr_assert_neq(sb_dns_content_hash(za, 0), sb_dns_content_hash(zc, 0), "ttl");
	sb_dns_free(za);
	sb_dns_free(za2);
	sb_dns_free(zb);
	sb_dns_free(zc);
}

/* ---- transfers -------------------------------------------------------------------- */

static struct sockaddr_storage addr4(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	a4->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &a4->sin_addr);
	a4->sin_port = htons(40000);
	return ss;
}

/* The first message of the answer to q from peer over TCP. */
static struct head xfr_ask(const sb_dns_zones *z, struct pkt q, const char *peer)
{
	static uint8_t resp[65535];
	struct sockaddr_storage pa = addr4(peer);
	sb_dns_xfr_stream *s = NULL;
	size_t n = 0;
	cr_assert_eq(sb_dns_xfr_answer(z, q.b, q.n, (struct sockaddr *)&pa, true, resp,
				       sizeof(resp), &n, &s),
		     0);
	sb_dns_xfr_stream_free(s);
	return head_of(resp, n);
}

/* Zones at serial with [dns] allow_transfer = address (no key) attached. */
static sb_dns_zones *xfr_zones(sb_dns_xfr *x, const char *address, uint32_t serial)
{
	sb_dns_record_decl r = rec("t", "TXT", -1, "x");
	sb_dns_zones *z = build_ok(&r, 1, serial);
	sb_dns_peer_cfg allow = {address, NULL, 3, 1};
	sb_dns_cfg c = {.allow = &allow, .nallow = 1};
	sb_diag d = {0};
	cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", NULL, z, &d), 0, "%s", d.msg);
	return z;
}

/* An allow_transfer network whose prefix is not a whole number of bytes
 * admits its addresses only (mutant: the bits after the last whole byte
 * were not compared, so 127.0.0.0/25 admitted 127.0.0.200). */
Test(mutants, a_transfer_network_of_25_bits_admits_its_half_only)
{
	sb_dns_xfr *x = sb_dns_xfr_new(NULL);
	sb_dns_zones *z = xfr_zones(x, "127.0.0.128/25", 7);
	struct pkt q = pkt_question(0x4242, "example.com", SB_DNS_AXFR);
	cr_assert_eq(xfr_ask(z, q, "127.0.0.1").rcode, SB_DNS_REFUSED);
	cr_assert_eq(xfr_ask(z, q, "127.0.0.127").rcode, SB_DNS_REFUSED);
	struct head h = xfr_ask(z, q, "127.0.0.200");
	cr_assert_eq(h.rcode, SB_DNS_NOERROR);
	cr_assert_gt(h.an, 1, "the zone");
	sb_dns_free(z);
	sb_dns_xfr_free(x);
}

/* Serials compare in RFC 1982 arithmetic in IXFR too (mutant: compared as
 * plain integers): a client whose serial is "after" ours across the wrap is
 * ahead and gets our SOA alone; one "before" ours across the wrap is behind
 * and gets the zone. */
Test(mutants, ixfr_compares_serials_across_the_wrap)
{
	sb_dns_xfr *x = sb_dns_xfr_new(NULL);
	sb_dns_zones *z = xfr_zones(x, "127.0.0.1", 5);
	/* 0x80000010 is 2^31 - 11 behind 5 */
	struct head h = xfr_ask(z, pkt_ixfr(0x4242, "example.com", 0x80000010u), "127.0.0.1");
	cr_assert_eq(h.rcode, SB_DNS_NOERROR);
	cr_assert_gt(h.an, 1, "behind: the zone, not our SOA alone (%u records)", h.an);
	sb_dns_free(z);
	sb_dns_xfr_free(x);

	x = sb_dns_xfr_new(NULL);
	z = xfr_zones(x, "127.0.0.1", 0xfffffff0u);
	/* 5 is 21 after 0xfffffff0 */
	h = xfr_ask(z, pkt_ixfr(0x4242, "example.com", 5), "127.0.0.1");
	cr_assert_eq(h.rcode, SB_DNS_NOERROR);
	cr_assert_eq(h.an, 1, "ahead: our SOA alone (%u records)", h.an);
	sb_dns_free(z);
	sb_dns_xfr_free(x);
}

/* A diff is made only from the zones last attached: a prev that is another
 * build with the same serial (never published) is not a base for IXFR, and
 * a client at that serial gets the whole zone (mutant: any prev whose serial
 * matched the history was diffed, and the client got the differences from
 * zones it never had). */
Test(mutants, ixfr_diffs_only_from_the_zones_last_attached)
{
	sb_dns_xfr *x = sb_dns_xfr_new(NULL);
	sb_dns_peer_cfg allow = {"127.0.0.1", NULL, 3, 1};
	sb_dns_cfg c = {.allow = &allow, .nallow = 1};
	sb_dns_record_decl one = rec("t", "TXT", -1, "one"), two = rec("t", "TXT", -1, "two"),
			   three = rec("t", "TXT", -1, "three");
	sb_dns_record_decl other[] = {rec("t", "TXT", -1, "a"), rec("t", "TXT", -1, "b"),
				      rec("t", "TXT", -1, "c")};
	sb_dns_zones *v1 = build_ok(&one, 1, 101), *v2 = build_ok(&two, 1, 102);
	sb_dns_zones *w = build_ok(other, 3, 102), *v3 = build_ok(&three, 1, 103);
	sb_diag d = {0};
	cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", NULL, v1, &d), 0, "%s", d.msg);
	cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", v1, v2, &d), 0, "%s", d.msg);
	cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", w, v3, &d), 0, "%s", d.msg);
	struct head axfr =
	    xfr_ask(v3, pkt_question(0x4242, "example.com", SB_DNS_AXFR), "127.0.0.1");
	struct head ixfr = xfr_ask(v3, pkt_ixfr(0x4242, "example.com", 102), "127.0.0.1");
	cr_assert_eq(ixfr.rcode, SB_DNS_NOERROR);
	cr_assert_eq(ixfr.an, axfr.an, "the whole zone: %u records, the zone has %u", ixfr.an,
		     axfr.an);
	/* and from the zones last attached, the differences */
	sb_dns_zones *v4 = build_ok(&one, 1, 104);
	cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", v3, v4, &d), 0, "%s", d.msg);
	ixfr = xfr_ask(v4, pkt_ixfr(0x4242, "example.com", 103), "127.0.0.1");
	cr_assert_eq(ixfr.an, 6, "SOA 104, SOA 103, TXT three, SOA 104, TXT one, SOA 104: %u",
		     ixfr.an);
	sb_dns_free(v1);
	sb_dns_free(v2);
	sb_dns_free(w);
	sb_dns_free(v3);
	sb_dns_free(v4);
	sb_dns_xfr_free(x);
}

/* IXFR from 101 to 102 on zones attached in turn: the number of records of
 * its first message. */
static unsigned ixfr_step(sb_dns_zones *v1, sb_dns_zones *v2)
{
	sb_dns_xfr *x = sb_dns_xfr_new(NULL);
	sb_dns_peer_cfg allow = {"127.0.0.1", NULL, 3, 1};
	sb_dns_cfg c = {.allow = &allow, .nallow = 1};
	sb_diag d = {0};
	cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", NULL, v1, &d), 0, "%s", d.msg);
	cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", v1, v2, &d), 0, "%s", d.msg);
	struct head h = xfr_ask(v2, pkt_ixfr(0x4242, "example.com", 101), "127.0.0.1");
	cr_assert_eq(h.rcode, SB_DNS_NOERROR);
	sb_dns_xfr_free(x);
	return h.an;
}

/* An RRset whose TTL alone changed is removed and added again in the IXFR
 * step (mutant: only records that differ were, and the secondary kept the
 * old TTL). */
Test(mutants, ixfr_carries_a_ttl_change)
{
	sb_dns_record_decl a = rec("t", "TXT", 300, "same"), b = rec("t", "TXT", 600, "same");
	sb_dns_zones *v1 = build_ok(&a, 1, 101), *v2 = build_ok(&b, 1, 102);
	unsigned n = ixfr_step(v1, v2);
	cr_assert_eq(n, 6, "SOA 102, SOA 101, TXT ttl 300, SOA 102, TXT ttl 600, SOA 102: %u", n);
	sb_dns_free(v1);
	sb_dns_free(v2);
}

/* When the zone's addresses change, every name that has them changes: the
 * IXFR step carries them (mutant: names sharing the zone's addresses were
 * passed over as unchanged whatever the addresses were). */
Test(mutants, ixfr_carries_a_change_of_the_zones_addresses)
{
	static const char moved_toml[] = "[[zone]]\n"
					 "name = \"example.com\"\n"
					 "addresses = [\"192.0.2.2\"]\n"
					 "nameservers = [\"ns1.example.com\"]\n"
					 "[tenants]\n"
					 "service = \"web\"\n"
					 "[[service]]\n"
					 "name = \"web\"\n"
					 "routes = [\"app.example.com/*\"]\n";
	sb_dns_record_decl r = rec("t", "TXT", -1, "x");
	sb_dns_zones *v1 = build_ok(&r, 1, 101);
	struct world moved = world_load(moved_toml, NULL);
	cr_assert_eq(moved.rc, 0, "%s", moved.diag.msg);
	sb_dns_builder *b;
	sb_diag d = {0};
	sb_dns_zones *v2 = NULL;
	cr_assert_eq(sb_dns_builder_new(moved.model, moved.rt, NULL, &b, &d), 0, "%s", d.msg);
	cr_assert_eq(sb_dns_builder_record(b, "example.com", &r, &d), 0, "%s", d.msg);
	cr_assert_eq(sb_dns_builder_finish(b, NULL, 0, 102, &v2, &d), 0, "%s", d.msg);
	unsigned n = ixfr_step(v1, v2);
	/* SOA 102, SOA 101, the A .1 of the 3 names with the zone's addresses
	 * (app, app-staging, ns1), SOA 102, their A .2, SOA 102 */
	cr_assert_eq(n, 10, "%u records", n);
	sb_dns_free(v1);
	sb_dns_free(v2);
	world_free(&moved);
}

/* ---- NOTIFY ---------------------------------------------------------------------- */

/* A fake secondary: a plain UDP socket on 127.0.0.1. */
static int udp_socket(int *port)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t len = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	return fd;
}

enum answer_kind { ANSWER_NONE, ANSWER_WRONG_ID, ANSWER_FROM_ELSEWHERE };

/* Run the loop for ms, counting the NOTIFYs that reach fd and answering
 * each as kind says (from the socket other for ANSWER_FROM_ELSEWHERE). */
static int notifies(uv_loop_t *loop, int fd, int other, enum answer_kind kind, int ms)
{
	int n = 0;
	uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000;
	while (uv_hrtime() < end) {
		uv_run(loop, UV_RUN_NOWAIT);
		uint8_t b[4096];
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t r = recvfrom(fd, b, sizeof(b), 0, (struct sockaddr *)&from, &fl);
		if (r < 12) {
			usleep(2000);
			continue;
		}
		cr_assert_eq((b[2] >> 3) & 0xf, SB_DNS_OPCODE_NOTIFY);
		cr_assert(!(b[2] & 0x80), "a request");
		n++;
		b[2] |= 0x80; /* the request back as its NOERROR answer */
		if (kind == ANSWER_WRONG_ID)
			b[1] ^= 1;
		if (kind != ANSWER_NONE)
			sendto(kind == ANSWER_FROM_ELSEWHERE ? other : fd, b, (size_t)r, 0,
			       (struct sockaddr *)&from, fl);
	}
	return n;
}

static void loop_end(uv_loop_t *loop, sb_dns_xfr *x)
{
	sb_dns_xfr_stop(x);
	uv_run(loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(loop), 0);
}

/* An answer is the secondary's only if it has the NOTIFY's ID and comes
 * from the secondary's address: any other leaves the retries running
 * (mutants: the ID, or the address, not compared; one forged answer then
 * ended the retries). */
Test(mutants, a_notify_answer_must_match_id_and_address, .timeout = 20)
{
	for (int kind = ANSWER_WRONG_ID; kind <= ANSWER_FROM_ELSEWHERE; kind++) {
		int port, oport;
		int fd = udp_socket(&port), other = udp_socket(&oport);
		char target[64];
		snprintf(target, sizeof(target), "127.0.0.1:%d", port);
		sb_dns_peer_cfg nd = {target, NULL, 4, 1};
		sb_dns_cfg c = {.notify = &nd, .nnotify = 1, .notify_retries = 3};
		uv_loop_t loop;
		uv_loop_init(&loop);
		sb_dns_xfr *x = sb_dns_xfr_new(NULL);
		sb_dns_xfr_set_notify_backoff(x, 20);
		sb_dns_record_decl r = rec("t", "TXT", -1, "x");
		sb_dns_zones *z = build_ok(&r, 1, 7);
		sb_diag d = {0};
		cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", NULL, z, &d), 0, "%s", d.msg);
		cr_assert_eq(sb_dns_xfr_start(x, &loop), 0);
		int n = notifies(&loop, fd, other, (enum answer_kind)kind, 1000);
		cr_assert_eq(n, 3, "%s: %d NOTIFYs, wanted all 3 tries",
			     kind == ANSWER_WRONG_ID ? "wrong ID" : "other address", n);
		loop_end(&loop, x);
		sb_dns_xfr_free(x);
		sb_dns_free(z);
		close(fd);
		close(other);
	}
}

/* A secondary added by a reload is notified of the zones as they are,
 * although no serial moved (docs/dns.md: "again after the keys or the
 * secondaries change"; mutant: only a changed serial queued a NOTIFY). */
Test(mutants, a_secondary_added_by_a_reload_is_notified, .timeout = 20)
{
	int port;
	int fd = udp_socket(&port);
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	sb_dns_peer_cfg allow = {"127.0.0.1", NULL, 3, 1};
	sb_dns_peer_cfg nd = {target, NULL, 4, 1};
	sb_dns_cfg before = {.allow = &allow, .nallow = 1};
	sb_dns_cfg after = {.allow = &allow, .nallow = 1, .notify = &nd, .nnotify = 1};
	uv_loop_t loop;
	uv_loop_init(&loop);
	sb_dns_xfr *x = sb_dns_xfr_new(NULL);
	sb_dns_record_decl r = rec("t", "TXT", -1, "x");
	sb_dns_zones *z1 = build_ok(&r, 1, 7), *z2 = build_ok(&r, 1, 7);
	sb_diag d = {0};
	cr_assert_eq(sb_dns_xfr_attach(x, &before, "t.toml", NULL, z1, &d), 0, "%s", d.msg);
	cr_assert_eq(sb_dns_xfr_start(x, &loop), 0);
	cr_assert_eq(notifies(&loop, fd, -1, ANSWER_NONE, 200), 0, "no secondary yet");
	cr_assert_eq(sb_dns_xfr_attach(x, &after, "t.toml", z1, z2, &d), 0, "%s", d.msg);
	cr_assert_geq(notifies(&loop, fd, -1, ANSWER_NONE, 500), 1, "the new secondary is told");
	loop_end(&loop, x);
	sb_dns_xfr_free(x);
	sb_dns_free(z1);
	sb_dns_free(z2);
	close(fd);
}

/* Requeued for a newer serial, a NOTIFY gets its retries afresh (mutant:
 * the tries of the serial it replaced were carried over, so the new serial
 * was sent fewer times). */
Test(mutants, a_newer_serial_gets_every_try, .timeout = 20)
{
	int port;
	int fd = udp_socket(&port);
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	sb_dns_peer_cfg nd = {target, NULL, 4, 1};
	sb_dns_cfg c = {.notify = &nd, .nnotify = 1, .notify_retries = 3};
	uv_loop_t loop;
	uv_loop_init(&loop);
	sb_dns_xfr *x = sb_dns_xfr_new(NULL);
	sb_dns_xfr_set_notify_backoff(x, 20);
	sb_dns_record_decl r1 = rec("t", "TXT", -1, "one"), r2 = rec("t", "TXT", -1, "two");
	sb_dns_zones *z1 = build_ok(&r1, 1, 7), *z2 = build_ok(&r2, 1, 8);
	sb_diag d = {0};
	cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", NULL, z1, &d), 0, "%s", d.msg);
	cr_assert_eq(sb_dns_xfr_start(x, &loop), 0);
	/* the first try of serial 7, unanswered; then serial 8 replaces it */
	int n = 0;
	for (int i = 0; i < 100 && !n; i++)
		n = notifies(&loop, fd, -1, ANSWER_NONE, 10);
	cr_assert_eq(n, 1, "the first NOTIFY");
	cr_assert_eq(sb_dns_xfr_attach(x, &c, "t.toml", z1, z2, &d), 0, "%s", d.msg);
	n = notifies(&loop, fd, -1, ANSWER_NONE, 1000);
	cr_assert_eq(n, 3, "serial 8: all 3 tries (%d)", n);
	loop_end(&loop, x);
	sb_dns_xfr_free(x);
	sb_dns_free(z1);
	sb_dns_free(z2);
	close(fd);
}

/* ---- RRL ----------------------------------------------------------------------------- */

static sb_dns_rrl_action rrl_check(sb_dns_rrl *r, const char *ip)
{
	struct sockaddr_storage a = addr4(ip);
	return sb_dns_rrl_check(r, (struct sockaddr *)&a, 1000);
}

/* A network prefix that is not a whole number of bytes: /23 puts 192.0.2.x
 * and 192.0.3.x in one bucket, 192.0.4.x in another (mutant: the mask of
 * the partial byte was one bit short, so /23 counted as /24). */
Test(mutants, rrl_networks_of_23_bits)
{
	sb_dns_rrl_config c = {.responses_per_second = 2, .slip = 0, .ipv4_prefix = 23};
	sb_dns_rrl *r = sb_dns_rrl_new(&c);
	cr_assert_eq(rrl_check(r, "192.0.2.1"), SB_DNS_RRL_SEND);
	cr_assert_eq(rrl_check(r, "192.0.2.2"), SB_DNS_RRL_SEND);
	cr_assert_eq(rrl_check(r, "192.0.3.1"), SB_DNS_RRL_DROP, "the same /23");
	cr_assert_eq(rrl_check(r, "192.0.4.1"), SB_DNS_RRL_SEND, "the next /23");
	sb_dns_rrl_free(r);
}

/* A full set evicts its least recently used network, so a network that is
 * being limited keeps its debt while it goes on (mutant: the most recently
 * used was evicted, and a flooding network got a full bucket back each time
 * a new one arrived). */
Test(mutants, rrl_evicts_the_least_recently_used)
{
	sb_dns_rrl_config c = {.responses_per_second = 1, .slip = 0, .table_size = 4};
	sb_dns_rrl *r = sb_dns_rrl_new(&c); /* one set of 4 */
	static const char *nets[] = {"192.0.1.1", "192.0.2.1", "192.0.3.1", "192.0.4.1"};
	for (int i = 0; i < 4; i++) {
		struct sockaddr_storage a = addr4(nets[i]);
		cr_assert_eq(sb_dns_rrl_check(r, (struct sockaddr *)&a, 1000 + (uint64_t)i),
			     SB_DNS_RRL_SEND);
	}
	/* the first network goes on, over its rate: used last now */
	struct sockaddr_storage first = addr4(nets[0]), fifth = addr4("192.0.5.1");
	cr_assert_eq(sb_dns_rrl_check(r, (struct sockaddr *)&first, 1010), SB_DNS_RRL_DROP);
	/* a fifth network takes the place of the second, the least recent */
	cr_assert_eq(sb_dns_rrl_check(r, (struct sockaddr *)&fifth, 1011), SB_DNS_RRL_SEND);
	cr_assert_eq(sb_dns_rrl_check(r, (struct sockaddr *)&first, 1011), SB_DNS_RRL_DROP,
		     "the limited network kept its debt");
	sb_dns_rrl_free(r);
}
