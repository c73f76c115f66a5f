/* Request signing: the documented example, round trips, tampering, rotation,
 * tolerance and malformed headers. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "http/sign.h"
#include "memfs.h"

#define S(lit) ((sb_sign_str){lit, sizeof(lit) - 1})

/* The worked example of docs/signing.md. */
static const int64_t EX_T = 1700000000;
static const char EX_MASTER[] = "example-master-key";
static const char EX_DEPLOYMENT[] = "codex-web-production";
static const char EX_SECRET_HEX[] =
    "f6c9f8ac2bcd09f8861a5fcdc679046b7f08bb2a4c138bccbd6efc6fe6d70f0a";
static const char EX_V1[] = "4f44d975cebf480de90b35d9f4867667eb70640f61637c854b0e9a04a0a9fb11";
static const char EX_CANONICAL[] =
    "switchboard-v1\n"
    "1700000000\n"
    "POST\n"
    "acme.revelations.studio\n"
    "/api/projects/42\n"
    "include=owner&page=2\n"
    "x-request-id:req-7f3a9c\n"
    "traceparent:00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n"
    "x-forwarded-for:203.0.113.7\n"
    "x-forwarded-proto:https\n"
    "x-forwarded-host:acme.revelations.studio\n"
    "x-tenant-slug:acme\n"
    "x-tenant-config:\n"
    "x-switchboard-environment:production\n"
    "x-switchboard-deployment:codex-web-production\n";

static sb_sign_fields example(void)
{
	static const char target[] = "/api/projects/42?include=owner&page=2";
	sb_sign_fields f;
	memset(&f, 0, sizeof(f));
	f.method = S("POST");
	f.host = S("Acme.Revelations.Studio:8443");
	sb_sign_fields_set_target(&f, target, sizeof(target) - 1);
	f.hdr[SB_SIGN_H_REQUEST_ID] = S("req-7f3a9c");
	f.hdr[SB_SIGN_H_TRACEPARENT] = S("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	f.hdr[SB_SIGN_H_FORWARDED_FOR] = S("203.0.113.7");
	f.hdr[SB_SIGN_H_FORWARDED_PROTO] = S("https");
	f.hdr[SB_SIGN_H_FORWARDED_HOST] = S("acme.revelations.studio");
	f.hdr[SB_SIGN_H_TENANT_SLUG] = S("acme");
	/* x-tenant-config absent: an empty line */
	f.hdr[SB_SIGN_H_ENVIRONMENT] = S("production");
	f.hdr[SB_SIGN_H_DEPLOYMENT] = S("codex-web-production");
	return f;
}

static uint8_t cur_secret[32], old_secret[32];

static void keys_init(void)
{
	sb_sign_derive_secret((const uint8_t *)EX_MASTER, strlen(EX_MASTER), EX_DEPLOYMENT,
			      cur_secret);
	sb_sign_derive_secret((const uint8_t *)"example-previous-master-key", 27, EX_DEPLOYMENT,
			      old_secret);
}

static const sb_sign_key CUR = {cur_secret, 32}, OLD = {old_secret, 32};

TestSuite(sign, .init = keys_init, .fini = leak_check);

Test(sign, worked_example_canonical_string)
{
	sb_sign_fields f = example();
	char buf[1024];
	int n = sb_sign_canonical(&f, EX_T, buf, sizeof(buf));
	cr_assert_eq(n, (int)strlen(EX_CANONICAL));
	cr_assert_str_eq(buf, EX_CANONICAL);
}

Test(sign, worked_example_secret_and_header)
{
	char hex[65], want[128], out[SB_SIGN_HEADER_MAX(2)];
	cr_assert_eq(sb_sign_hex(cur_secret, 32, hex, sizeof(hex)), 64);
	cr_assert_str_eq(hex, EX_SECRET_HEX);

	sb_sign_fields f = example();
	int n = sb_sign_header(&f, EX_T, &CUR, 1, out, sizeof(out));
	snprintf(want, sizeof(want), "t=1700000000,v1=%s", EX_V1);
	cr_assert_eq(n, (int)strlen(want));
	cr_assert_str_eq(out, want);

	uint8_t mac[32];
	cr_assert_eq(sb_sign_mac(&f, EX_T, &CUR, mac), 0);
	cr_assert_eq(sb_sign_hex(mac, 32, hex, sizeof(hex)), 64);
	cr_assert_str_eq(hex, EX_V1);
}

Test(sign, round_trip)
{
	sb_sign_fields f = example();
	char out[SB_SIGN_HEADER_MAX(1)];
	int n = sb_sign_header(&f, 1234, &CUR, 1, out, sizeof(out));
	cr_assert_gt(n, 0);
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, 1234, 300), 0);
	/* a different host spelling of the same host still verifies */
	f.host = S("acme.revelations.studio");
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, 1234, 300), 0);
	/* the wrong key does not */
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &OLD, 1, 1234, 300), SB_ENOENT);
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, NULL, 0, 1234, 300), SB_ENOENT);
}

Test(sign, every_field_is_covered)
{
	sb_sign_fields f = example();
	char out[SB_SIGN_HEADER_MAX(1)];
	int n = sb_sign_header(&f, EX_T, &CUR, 1, out, sizeof(out));
	cr_assert_gt(n, 0);

	sb_sign_str *fields[4 + SB_SIGN_NHDRS] = {&f.method, &f.host, &f.path, &f.query};
	for (size_t i = 0; i < SB_SIGN_NHDRS; i++)
		fields[4 + i] = &f.hdr[i];
	for (size_t i = 0; i < SB_ARRAY_LEN(fields); i++) {
		sb_sign_str saved = *fields[i];
		*fields[i] = S("tampered");
		cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, EX_T, 300), SB_ENOENT,
			     "field %zu not covered", i);
		/* dropping a field that was set changes the string too */
		*fields[i] = (sb_sign_str){NULL, 0};
		cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, EX_T, 300),
			     saved.n ? SB_ENOENT : 0, "field %zu emptied", i);
		*fields[i] = saved;
		cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, EX_T, 300), 0);
	}
	/* moving bytes from the path to the query changes the string */
	f.path = S("/api/projects/42?include=owner&page=2");
	f.query = (sb_sign_str){NULL, 0};
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, EX_T, 300), SB_ENOENT);
}

Test(sign, timestamp_is_covered)
{
	sb_sign_fields f = example();
	char out[128];
	int n = sb_sign_header(&f, EX_T, &CUR, 1, out, sizeof(out));
	cr_assert_gt(n, 0);
	out[11] = '1'; /* t=1700000001 with the old v1 */
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, EX_T, 300), SB_ENOENT);
}

Test(sign, header_values_are_trimmed_and_names_case_insensitive)
{
	sb_sign_fields f = example(), g = example();
	cr_assert_eq(sb_sign_fields_set_header(&g, "X-Request-ID", 12, " \treq-7f3a9c ", 13),
		     SB_SIGN_H_REQUEST_ID);
	cr_assert_eq(sb_sign_fields_set_header(&g, "Content-Type", 12, "x", 1), SB_ENOENT);
	cr_assert_eq(sb_sign_fields_set_header(&g, "x-request-i", 11, "x", 1), SB_ENOENT);
	cr_assert_eq(sb_sign_fields_set_header(&g, "x-request-idx", 13, "x", 1), SB_ENOENT);
	uint8_t a[32], b[32];
	cr_assert_eq(sb_sign_mac(&f, EX_T, &CUR, a), 0);
	cr_assert_eq(sb_sign_mac(&g, EX_T, &CUR, b), 0);
	cr_assert_eq(memcmp(a, b, 32), 0);
}

Test(sign, host_normalisation)
{
	sb_sign_fields f;
	char buf[512];
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"Example.COM", "example.com"},
	    {"example.com:8080", "example.com"},
	    {"[::1]:8443", "[::1]"},
	    {"[::1]", "[::1]"},
	    /* no ']': the first ':' starts the port, as in the documented
	     * Python and JavaScript verifiers */
	    {"[2001:db8::1:8443", "[2001"},
	    {" a.example.com ", "a.example.com"},
	    {"", ""},
	};
	for (size_t i = 0; i < SB_ARRAY_LEN(cases); i++) {
		memset(&f, 0, sizeof(f));
		f.method = S("GET");
		f.host = (sb_sign_str){cases[i].in, strlen(cases[i].in)};
		cr_assert_gt(sb_sign_canonical(&f, 0, buf, sizeof(buf)), 0);
		char *line = strchr(strchr(strchr(buf, '\n') + 1, '\n') + 1, '\n') + 1;
		size_t len = strlen(cases[i].out);
		cr_assert(strncmp(line, cases[i].out, len) == 0 && line[len] == '\n', "%s -> %.20s",
			  cases[i].in, line);
	}
}

Test(sign, rotation_two_keys)
{
	sb_sign_fields f = example();
	sb_sign_key both[2] = {CUR, OLD};
	char out[SB_SIGN_HEADER_MAX(2)];
	int n = sb_sign_header(&f, EX_T, both, 2, out, sizeof(out));
	cr_assert_eq(n, 2 + 10 + 2 * 68);
	cr_assert_eq(strncmp(out + 12, ",v1=", 4), 0);
	cr_assert_eq(strncmp(out + 16, EX_V1, 64), 0, "current key first");
	cr_assert_eq(strncmp(out + 80, ",v1=", 4), 0);

	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, EX_T, 300), 0, "new key only");
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &OLD, 1, EX_T, 300), 0, "old key only");
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, both, 2, EX_T, 300), 0);
	sb_sign_key other_keys[1] = {{(const uint8_t *)"another secret", 14}};
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, other_keys, 1, EX_T, 300), SB_ENOENT);

	/* a verifier that knows both, facing an edge that knows only the old */
	n = sb_sign_header(&f, EX_T, &OLD, 1, out, sizeof(out));
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, both, 2, EX_T, 300), 0);
}

Test(sign, tolerance)
{
	sb_sign_fields f = example();
	char out[SB_SIGN_HEADER_MAX(1)];
	int n = sb_sign_header(&f, EX_T, &CUR, 1, out, sizeof(out));
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, EX_T + 300, 300), 0);
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, EX_T - 300, 300), 0);
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, EX_T + 301, 300), SB_ERANGE);
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, EX_T - 301, 300), SB_ERANGE);
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, EX_T, 0), 0);
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, INT64_MIN, 300), SB_ERANGE);
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, INT64_MAX, 300), SB_ERANGE);
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &CUR, 1, EX_T, -1), SB_EINVAL);
	/* a forged signature is "no match", not "stale" */
	cr_assert_eq(sb_sign_verify(out, (size_t)n, &f, &OLD, 1, EX_T + 301, 300), SB_ENOENT);
}

static void expect_malformed(const char *h)
{
	sb_sign_fields f = example();
	cr_assert_eq(sb_sign_verify(h, strlen(h), &f, &CUR, 1, EX_T, 300), SB_EINVAL, "[%s]", h);
}

Test(sign, malformed_headers)
{
	char good[128], buf[512];
	snprintf(good, sizeof(good), "t=1700000000,v1=%s", EX_V1);
	sb_sign_fields f = example();
	cr_assert_eq(sb_sign_verify(good, strlen(good), &f, &CUR, 1, EX_T, 300), 0);
	/* tolerated: spaces around items, unknown keys, upper-case hex */
	snprintf(buf, sizeof(buf), " t=1700000000 ,\tv0=zz, v1=%s ", EX_V1);
	cr_assert_eq(sb_sign_verify(buf, strlen(buf), &f, &CUR, 1, EX_T, 300), 0);
	snprintf(buf, sizeof(buf), "v1=%s,t=1700000000", EX_V1);
	cr_assert_eq(sb_sign_verify(buf, strlen(buf), &f, &CUR, 1, EX_T, 300), 0);
	for (char *p = buf; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 32);
	cr_assert_eq(sb_sign_verify(buf, strlen(buf), &f, &CUR, 1, EX_T, 300), 0);

	cr_assert_eq(sb_sign_verify(NULL, 0, &f, &CUR, 1, EX_T, 300), SB_EINVAL);
	expect_malformed("");
	expect_malformed(" ");
	expect_malformed(",");
	expect_malformed("t=1700000000");
	snprintf(buf, sizeof(buf), "v1=%s", EX_V1);
	expect_malformed(buf); /* missing t */
	snprintf(buf, sizeof(buf), "t=,v1=%s", EX_V1);
	expect_malformed(buf);
	snprintf(buf, sizeof(buf), "t=-5,v1=%s", EX_V1);
	expect_malformed(buf);
	snprintf(buf, sizeof(buf), "t=17e8,v1=%s", EX_V1);
	expect_malformed(buf);
	snprintf(buf, sizeof(buf), "t=99999999999999999999,v1=%s", EX_V1);
	expect_malformed(buf);
	snprintf(buf, sizeof(buf), "t=1,t=1700000000,v1=%s", EX_V1);
	expect_malformed(buf); /* two t */
	snprintf(buf, sizeof(buf), "t=01700000000,v1=%s", EX_V1);
	expect_malformed(buf); /* t is signed as written: one spelling only */
	snprintf(buf, sizeof(buf), "t=00,v1=%s", EX_V1);
	expect_malformed(buf);
	snprintf(buf, sizeof(buf), "t=1700000000,v1=%.63s", EX_V1);
	expect_malformed(buf); /* short */
	snprintf(buf, sizeof(buf), "t=1700000000,v1=%s0", EX_V1);
	expect_malformed(buf); /* long */
	snprintf(buf, sizeof(buf), "t=1700000000,v1=%.63sg", EX_V1);
	expect_malformed(buf); /* bad hex */
	snprintf(buf, sizeof(buf), "t=1700000000,v1=%s,", EX_V1);
	expect_malformed(buf); /* trailing comma */
	snprintf(buf, sizeof(buf), "t=1700000000,,v1=%s", EX_V1);
	expect_malformed(buf);
	snprintf(buf, sizeof(buf), "t=1700000000,=x,v1=%s", EX_V1);
	expect_malformed(buf);
	snprintf(buf, sizeof(buf), "t=1700000000;v1=%s", EX_V1);
	expect_malformed(buf);
	expect_malformed("t=1700000000,v1=");
	expect_malformed("garbage");
	expect_malformed("t");
	expect_malformed("=");

	/* too many signatures */
	size_t len = (size_t)snprintf(buf, sizeof(buf), "t=1700000000");
	static char many[SB_SIGN_HEADER_MAX(SB_SIGN_MAX_SIGNATURES + 1)];
	memcpy(many, buf, len);
	for (int i = 0; i <= SB_SIGN_MAX_SIGNATURES; i++)
		len += (size_t)snprintf(many + len, sizeof(many) - len, ",v1=%s", EX_V1);
	cr_assert_eq(sb_sign_verify(many, len, &f, &CUR, 1, EX_T, 300), SB_EINVAL);
	/* exactly the maximum is fine */
	cr_assert_eq(sb_sign_verify(many, len - 68, &f, &CUR, 1, EX_T, 300), 0);

	/* the length bounds the parse: no reading past it, embedded NUL is just a byte */
	cr_assert_eq(sb_sign_verify(good, 20, &f, &CUR, 1, EX_T, 300), SB_EINVAL);
	char nul[128];
	memcpy(nul, good, sizeof(good));
	nul[5] = '\0';
	cr_assert_eq(sb_sign_verify(nul, strlen(good), &f, &CUR, 1, EX_T, 300), SB_EINVAL);
}

Test(sign, crlf_in_a_field_is_refused)
{
	sb_sign_fields f = example();
	char buf[1024], out[SB_SIGN_HEADER_MAX(1)];
	f.hdr[SB_SIGN_H_TENANT_SLUG] = S("acme\nx-tenant-config:evil");
	cr_assert_eq(sb_sign_canonical(&f, EX_T, buf, sizeof(buf)), SB_EINVAL);
	cr_assert_eq(sb_sign_header(&f, EX_T, &CUR, 1, out, sizeof(out)), SB_EINVAL);
	f = example();
	f.path = S("/a\r");
	uint8_t mac[32];
	cr_assert_eq(sb_sign_mac(&f, EX_T, &CUR, mac), SB_EINVAL);
}

Test(sign, buffer_too_small)
{
	sb_sign_fields f = example();
	char buf[1024];
	size_t need = strlen(EX_CANONICAL) + 1;
	cr_assert_eq(sb_sign_canonical(&f, EX_T, buf, need), (int)need - 1);
	cr_assert_eq(sb_sign_canonical(&f, EX_T, buf, need - 1), SB_ETOOLONG);
	cr_assert_eq(buf[0], '\0');
	cr_assert_eq(sb_sign_canonical(&f, EX_T, buf, 1), SB_ETOOLONG);
	cr_assert_eq(sb_sign_canonical(&f, EX_T, buf, 0), SB_ETOOLONG);

	sb_sign_key both[2] = {CUR, OLD};
	size_t hneed = 2 + 10 + 2 * 68 + 1;
	cr_assert_eq(sb_sign_header(&f, EX_T, both, 2, buf, hneed), (int)hneed - 1);
	cr_assert_eq(sb_sign_header(&f, EX_T, both, 2, buf, hneed - 1), SB_ETOOLONG);
	cr_assert_eq(sb_sign_header(&f, EX_T, both, 2, buf, 3), SB_ETOOLONG);
	cr_assert_eq(sb_sign_header(&f, EX_T, both, 0, buf, sizeof(buf)), SB_EINVAL);
	cr_assert(hneed <= SB_SIGN_HEADER_MAX(2));
	/* the macro covers the longest time */
	cr_assert_gt(sb_sign_header(&f, INT64_MIN, both, 2, buf, SB_SIGN_HEADER_MAX(2)), 0);

	char hex[5];
	uint8_t bytes[2] = {0xab, 0x01};
	cr_assert_eq(sb_sign_hex(bytes, 2, hex, 5), 4);
	cr_assert_str_eq(hex, "ab01");
	cr_assert_eq(sb_sign_hex(bytes, 2, hex, 4), SB_ETOOLONG);
}

Test(sign, hex_decoding)
{
	uint8_t out[4];
	cr_assert_eq(sb_sign_unhex("00fF7a", 6, out, sizeof(out)), 3);
	cr_assert_eq(out[0], 0x00);
	cr_assert_eq(out[1], 0xff);
	cr_assert_eq(out[2], 0x7a);
	cr_assert_eq(sb_sign_unhex("", 0, out, sizeof(out)), 0);
	cr_assert_eq(sb_sign_unhex("abc", 3, out, sizeof(out)), SB_EINVAL);
	cr_assert_eq(sb_sign_unhex("zz", 2, out, sizeof(out)), SB_EINVAL);
	cr_assert_eq(sb_sign_unhex("0x", 2, out, sizeof(out)), SB_EINVAL);
	cr_assert_eq(sb_sign_unhex("0011223344", 10, out, sizeof(out)), SB_ETOOLONG);
}

Test(sign, derive_differs_per_deployment)
{
	uint8_t a[32], b[32], c[32];
	sb_sign_derive_secret((const uint8_t *)"m", 1, "codex-web-production", a);
	sb_sign_derive_secret((const uint8_t *)"m", 1, "codex-web-staging", b);
	sb_sign_derive_secret((const uint8_t *)"n", 1, "codex-web-production", c);
	cr_assert_neq(memcmp(a, b, 32), 0);
	cr_assert_neq(memcmp(a, c, 32), 0);
}

Test(sign, cached_contexts_give_the_same_signatures)
{
	/* sb_sign_header keeps an initialised context per key and thread; many
	 * signatures over changing keys and fields must still match a fresh
	 * computation every time */
	char want[128], out[SB_SIGN_HEADER_MAX(2)];
	snprintf(want, sizeof(want), "t=1700000000,v1=%s", EX_V1);
	uint8_t other[32];
	memset(other, 7, sizeof(other));
	sb_sign_key keys[] = {CUR, {other, sizeof(other)}};
	for (int round = 0; round < 40; round++) {
		sb_sign_fields f = example();
		cr_assert_gt(sb_sign_header(&f, EX_T, &CUR, 1, out, sizeof(out)), 0);
		cr_assert_str_eq(out, want, "round %d", round);
		f.method = (sb_sign_str){"POST", 4};
		int64_t t = EX_T + round;
		cr_assert_gt(sb_sign_header(&f, t, keys, 2, out, sizeof(out)), 0);
		cr_assert_eq(sb_sign_verify(out, strlen(out), &f, &keys[1], 1, t, 5), 0);
		uint8_t mac[32];
		char hex[65];
		cr_assert_eq(sb_sign_mac(&f, t, &keys[0], mac), 0);
		sb_sign_hex(mac, 32, hex, sizeof(hex));
		cr_assert(strstr(out, hex) != NULL, "round %d", round);
	}
	sb_sign_thread_cleanup();
}

/* HMAC-SHA256 by OpenSSL's one-shot interface, as an independent reference. */
static void ref_hmac(const uint8_t *key, size_t klen, const char *msg, size_t mlen, uint8_t out[32])
{
	size_t n = 0;
	static const uint8_t empty;
	cr_assert_not_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, klen ? key : &empty, klen,
				     (const unsigned char *)msg, mlen, out, 32, &n));
	cr_assert_eq(n, 32);
}

Test(sign, mac_matches_a_reference_hmac_for_any_key_and_length)
{
	/* keys shorter than, equal to and longer than the 64-byte block (a
	 * longer key is hashed first); canonical strings short, around the
	 * 2 KiB stack buffer and far beyond it; more keys than the per-thread
	 * cache holds, so entries are evicted and prepared again */
	static const size_t klens[] = {0, 1, 32, 63, 64, 65, 131, 200};
	static const size_t plens[] = {1, 1700, 2047, 2048, 2200, 9000};
	static char path[9001], canon[12000];
	uint8_t key[200];
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 3);
	for (size_t pi = 0; pi < SB_ARRAY_LEN(plens); pi++) {
		memset(path, 'p', plens[pi]);
		path[0] = '/';
		sb_sign_fields f = example();
		f.path = (sb_sign_str){path, plens[pi]};
		int cl = sb_sign_canonical(&f, EX_T, canon, sizeof(canon));
		cr_assert_gt(cl, 0);
		for (size_t ki = 0; ki < SB_ARRAY_LEN(klens); ki++)
			for (uint8_t variant = 0; variant < 3; variant++) {
				key[0] = (uint8_t)(variant * 31); /* 24 distinct keys per path */
				sb_sign_key k = {key, klens[ki]};
				uint8_t want[32], got[32];
				ref_hmac(key, klens[ki], canon, (size_t)cl, want);
				cr_assert_eq(sb_sign_mac(&f, EX_T, &k, got), 0);
				cr_assert_arr_eq(got, want, 32, "path %zu key %zu", plens[pi],
						 klens[ki]);
				char hdr[SB_SIGN_HEADER_MAX(1)], hex[65];
				cr_assert_gt(sb_sign_header(&f, EX_T, &k, 1, hdr, sizeof(hdr)), 0);
				sb_sign_hex(want, 32, hex, sizeof(hex));
				cr_assert(strstr(hdr, hex) != NULL, "path %zu key %zu", plens[pi],
					  klens[ki]);
				cr_assert_eq(sb_sign_verify(hdr, strlen(hdr), &f, &k, 1, EX_T, 0),
					     0);
			}
	}
	/* the derived secret is the same HMAC of prefix and name */
	static const char prefixed[] = "switchboard-deployment-secret:codex-web-production";
	for (size_t ki = 0; ki < SB_ARRAY_LEN(klens); ki++) {
		uint8_t want[32], got[32];
		ref_hmac(key, klens[ki], prefixed, sizeof(prefixed) - 1, want);
		sb_sign_derive_secret(key, klens[ki], "codex-web-production", got);
		cr_assert_arr_eq(got, want, 32, "key %zu", klens[ki]);
	}
	sb_sign_thread_cleanup();
}

Test(sign, cr_or_lf_is_found_at_every_offset)
{
	/* the check reads eight bytes at a time: a CR or LF in any position of a
	 * word or of the tail, and bytes near them (\v, \f, \x0e, \x8a), are
	 * told apart */
	char v[40], buf[2048], out[SB_SIGN_HEADER_MAX(1)];
	for (size_t len = 1; len < sizeof(v); len++)
		for (size_t at = 0; at < len; at++) {
			static const char bad[] = {'\r', '\n'};
			static const char near[] = {'\v',	'\f',	    '\x0e',
						    (char)0x8a, (char)0x8d, '\t'};
			for (size_t b = 0; b < sizeof(near); b++) {
				memset(v, 'a', len);
				v[at] = near[b];
				sb_sign_fields f = example();
				f.hdr[SB_SIGN_H_TENANT_SLUG] = (sb_sign_str){v, len};
				cr_assert_gt(sb_sign_canonical(&f, EX_T, buf, sizeof(buf)), 0,
					     "len %zu at %zu byte %d", len, at, near[b]);
			}
			for (size_t b = 0; b < sizeof(bad); b++) {
				memset(v, 'a', len);
				v[at] = bad[b];
				sb_sign_fields f = example();
				f.hdr[SB_SIGN_H_TENANT_SLUG] = (sb_sign_str){v, len};
				cr_assert_eq(sb_sign_canonical(&f, EX_T, buf, sizeof(buf)),
					     SB_EINVAL, "len %zu at %zu", len, at);
				f = example();
				f.query = (sb_sign_str){v, len};
				cr_assert_eq(sb_sign_header(&f, EX_T, &CUR, 1, out, sizeof(out)),
					     SB_EINVAL, "len %zu at %zu", len, at);
			}
		}
}

/* ---- the deployment proof (switchboard verify; docs/verify.md) ---------- */

static const char PR_NONCE[] = "0123456789abcdef0123456789abcdef";
static const char PR_CANONICAL[] = "switchboard-verify-v1\n"
				   "0123456789abcdef0123456789abcdef\n"
				   "codex-web-production\n"
				   "codex.revelations.studio\n"
				   "/health\n";
static const char PR_V1[] = "v1=8b3a2ff01e53c4a08b1ce1be83792d24e89314fee867af95740448816c02d084";

static sb_proof_fields proof_example(void)
{
	sb_proof_fields f = {
	    .nonce = S(PR_NONCE),
	    .deployment = S("codex-web-production"),
	    .host = S("Codex.Revelations.Studio:8443"),
	    .path = S("/health?probe=1"),
	};
	return f;
}

Test(sign, proof_known_answer)
{
	sb_proof_fields f = proof_example();
	char buf[512], out[SB_PROOF_HEADER_LEN];
	cr_assert_eq(sb_proof_canonical(&f, buf, sizeof(buf)), (int)strlen(PR_CANONICAL));
	cr_assert_str_eq(buf, PR_CANONICAL);
	cr_assert_eq(sb_proof_header(&f, &CUR, out, sizeof(out)), (int)strlen(PR_V1));
	cr_assert_str_eq(out, PR_V1);
	cr_assert_eq(sb_proof_verify(out, strlen(out), &f, &CUR, 1), 0);
	/* surrounding whitespace is allowed; the previous secret may come too */
	char spaced[128];
	snprintf(spaced, sizeof(spaced), " \t%s ", PR_V1);
	sb_sign_key both[2] = {OLD, CUR};
	cr_assert_eq(sb_proof_verify(spaced, strlen(spaced), &f, both, 2), 0);
}

Test(sign, proof_tampering_fails)
{
	sb_proof_fields good = proof_example();
	char out[SB_PROOF_HEADER_LEN];
	cr_assert_eq(sb_proof_header(&good, &CUR, out, sizeof(out)), 67);

	/* another deployment, host, path or nonce: no match */
	sb_proof_fields f = good;
	f.deployment = S("codex-web-staging");
	cr_assert_eq(sb_proof_verify(out, strlen(out), &f, &CUR, 1), SB_ENOENT);
	f = good;
	f.host = S("acme.revelations.studio");
	cr_assert_eq(sb_proof_verify(out, strlen(out), &f, &CUR, 1), SB_ENOENT);
	f = good;
	f.path = S("/healthz");
	cr_assert_eq(sb_proof_verify(out, strlen(out), &f, &CUR, 1), SB_ENOENT);
	f = good;
	f.nonce = S("0123456789abcdef0123456789abcdee");
	cr_assert_eq(sb_proof_verify(out, strlen(out), &f, &CUR, 1), SB_ENOENT);
	/* another secret (another master key, or the wrong data directory) */
	cr_assert_eq(sb_proof_verify(out, strlen(out), &good, &OLD, 1), SB_ENOENT);
	cr_assert_eq(sb_proof_verify(out, strlen(out), &good, &CUR, 0), SB_ENOENT);
	/* one flipped hex digit */
	char bad[SB_PROOF_HEADER_LEN];
	memcpy(bad, out, sizeof(bad));
	bad[10] = bad[10] == '0' ? '1' : '0';
	cr_assert_eq(sb_proof_verify(bad, strlen(bad), &good, &CUR, 1), SB_ENOENT);
	/* malformed values */
	const char *malformed[] = {
	    "",
	    "v1=",
	    "v2="
	    "8b3a2ff01e53c4a08b1ce1be83792d24e89314fee867af95740448816c02d084",
	    "v1=8b3a2ff01e53c4a08b1ce1be83792d24e89314fee867af95740448816c02d08",
	    "v1=zz3a2ff01e53c4a08b1ce1be83792d24e89314fee867af95740448816c02d084",
	    "t=1,v1=8b3a2ff01e53c4a08b1ce1be83792d24e89314fee867af95740448816c02d084"};
	for (size_t i = 0; i < sizeof(malformed) / sizeof(*malformed); i++)
		cr_assert_eq(sb_proof_verify(malformed[i], strlen(malformed[i]), &good, &CUR, 1),
			     SB_EINVAL, "%s", malformed[i]);
	cr_assert_eq(sb_proof_verify(NULL, 0, &good, &CUR, 1), SB_EINVAL);
}

Test(sign, proof_nonce_rules)
{
	cr_assert(sb_proof_nonce_ok("0123456789ABCDEF", 16));
	cr_assert(sb_proof_nonce_ok(PR_NONCE, strlen(PR_NONCE)));
	cr_assert_not(sb_proof_nonce_ok("0123456789abcde", 15));
	char long_nonce[66];
	memset(long_nonce, 'a', 65);
	long_nonce[65] = '\0';
	cr_assert(sb_proof_nonce_ok(long_nonce, 64));
	cr_assert_not(sb_proof_nonce_ok(long_nonce, 65));
	cr_assert_not(sb_proof_nonce_ok("0123456789abcdeg", 16));
	cr_assert_not(sb_proof_nonce_ok("0123456789abcde\n", 16));
	cr_assert_not(sb_proof_nonce_ok(NULL, 0));

	/* an unusable nonce or CR/LF in a field: refused, nothing signed */
	sb_proof_fields f = proof_example();
	char out[SB_PROOF_HEADER_LEN], buf[256];
	f.nonce = S("short");
	cr_assert_eq(sb_proof_header(&f, &CUR, out, sizeof(out)), SB_EINVAL);
	cr_assert_str_eq(out, "");
	f = proof_example();
	f.deployment = S("codex-web-production\nx");
	cr_assert_eq(sb_proof_canonical(&f, buf, sizeof(buf)), SB_EINVAL);
	cr_assert_eq(sb_proof_header(&f, &CUR, out, sizeof(out)), SB_EINVAL);
	f = proof_example();
	cr_assert_eq(sb_proof_header(&f, &CUR, out, SB_PROOF_HEADER_LEN - 1), SB_ETOOLONG);
	cr_assert_eq(sb_proof_canonical(&f, buf, 20), SB_ETOOLONG);
}
