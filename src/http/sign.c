/*
 * Request signing (see sign.h and docs/signing.md).
 *
 * One emitter writes the canonical string into a buffer, for the tests and
 * docs (sb_sign_canonical) and for the MAC alike, so the same code defines
 * the string and signs it. On the signing path (once per forwarded request)
 * the buffer is on the stack; a string too long for it (a long path or
 * query) is measured by the same pass and emitted again into one of the
 * right size.
 *
 * HMAC-SHA256 is computed from SHA-256 states with the key's pads already
 * absorbed, kept per thread for recent keys: a signature then costs the
 * hash of the message and of one block, with no key schedule and none of
 * the provider dispatch the EVP_MAC interface adds per call (about a
 * quarter of the MAC's time for a request-sized message).
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init/Update/Final: see above */
#include "http/sign.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

const char *const sb_sign_hdr_names[SB_SIGN_NHDRS] = {
    [SB_SIGN_H_REQUEST_ID] = "x-request-id",
    [SB_SIGN_H_TRACEPARENT] = "traceparent",
    [SB_SIGN_H_FORWARDED_FOR] = "x-forwarded-for",
    [SB_SIGN_H_FORWARDED_PROTO] = "x-forwarded-proto",
    [SB_SIGN_H_FORWARDED_HOST] = "x-forwarded-host",
    [SB_SIGN_H_TENANT_SLUG] = "x-tenant-slug",
    [SB_SIGN_H_TENANT_CONFIG] = "x-tenant-config",
    [SB_SIGN_H_ENVIRONMENT] = "x-switchboard-environment",
    [SB_SIGN_H_DEPLOYMENT] = "x-switchboard-deployment",
};

/* The same names with their lengths, for the emitter. */
static const sb_sign_str hdr_names[SB_SIGN_NHDRS] = {
#define N(s)                                                                                       \
	{                                                                                          \
		s, sizeof(s) - 1                                                                   \
	}
    [SB_SIGN_H_REQUEST_ID] = N("x-request-id"),
    [SB_SIGN_H_TRACEPARENT] = N("traceparent"),
    [SB_SIGN_H_FORWARDED_FOR] = N("x-forwarded-for"),
    [SB_SIGN_H_FORWARDED_PROTO] = N("x-forwarded-proto"),
    [SB_SIGN_H_FORWARDED_HOST] = N("x-forwarded-host"),
    [SB_SIGN_H_TENANT_SLUG] = N("x-tenant-slug"),
    [SB_SIGN_H_TENANT_CONFIG] = N("x-tenant-config"),
    [SB_SIGN_H_ENVIRONMENT] = N("x-switchboard-environment"),
    [SB_SIGN_H_DEPLOYMENT] = N("x-switchboard-deployment"),
#undef N
};

static const char derive_prefix[] = "switchboard-deployment-secret:";

/* ---- the canonical string ------------------------------------------------ */

/* Output that counts what does not fit: after a pass, len is the full
 * length whether or not cap held it. */
typedef struct obuf {
	char *p;
	size_t cap, len;
} obuf;

static inline void out_put(obuf *o, const char *s, size_t n)
{
	if (n && o->len <= o->cap && n <= o->cap - o->len)
		memcpy(o->p + o->len, s, n);
	o->len += n;
}

static inline void out_c(obuf *o, char c)
{
	if (o->len < o->cap)
		o->p[o->len] = c;
	o->len++;
}

static void out_line(obuf *o, sb_sign_str s)
{
	out_put(o, s.p, s.n);
	out_c(o, '\n');
}

static void out_lower_line(obuf *o, sb_sign_str s)
{
	for (size_t i = 0; i < s.n; i++) {
		char c = s.p[i];
		out_c(o, (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c);
	}
	out_c(o, '\n');
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static sb_sign_str trim(sb_sign_str s)
{
	if (!s.p)
		return (sb_sign_str){"", 0};
	while (s.n && is_ows(s.p[0])) {
		s.p++;
		s.n--;
	}
	while (s.n && is_ows(s.p[s.n - 1]))
		s.n--;
	return s;
}

/* "Host:Port" -> "Host"; "[v6]:port" -> "[v6]". Host names and IPv4 never
 * contain ':', so the first one starts the port; so it does in a '[' without
 * its ']', as in the documented Python and JavaScript verifiers. */
static sb_sign_str host_only(sb_sign_str h)
{
	h = trim(h);
	const char *end = h.n && h.p[0] == '[' ? memchr(h.p, ']', h.n) : NULL;
	if (end) {
		h.n = (size_t)(end - h.p) + 1;
		return h;
	}
	const char *colon = memchr(h.p, ':', h.n);
	if (colon)
		h.n = (size_t)(colon - h.p);
	return h;
}

/* CR or LF anywhere in s? Eight bytes at a time: the fields are checked on
 * every signature, and two memchr calls per field cost more than the rest
 * of the canonical string. */
static bool has_crlf(sb_sign_str s)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	const uint64_t lf = ones * '\n', cr = ones * '\r';
	size_t i = 0;
	if (!s.p)
		return false;
	for (; i + 8 <= s.n; i += 8) {
		uint64_t v, a, b;
		memcpy(&v, s.p + i, 8);
		a = v ^ lf;
		b = v ^ cr;
		if ((((a - ones) & ~a) | ((b - ones) & ~b)) & highs)
			return true;
	}
	for (; i < s.n; i++)
		if (s.p[i] == '\n' || s.p[i] == '\r')
			return true;
	return false;
}

static bool fields_ok(const sb_sign_fields *f)
{
	if (has_crlf(f->method) || has_crlf(f->host) || has_crlf(f->path) || has_crlf(f->query))
		return false;
	for (size_t i = 0; i < SB_SIGN_NHDRS; i++)
		if (has_crlf(f->hdr[i]))
			return false;
	return true;
}

/* Decimal text of v into buf (at least 21 bytes); returns the length. */
static size_t fmt_i64(int64_t v, char *buf)
{
	char tmp[24];
	size_t n = 0, len = 0;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		buf[len++] = '-';
	while (n)
		buf[len++] = tmp[--n];
	return len;
}

/* The time as decimal text; the last one is kept per thread, since
 * requests signed within the same second share it. */
typedef struct tnum {
	char s[24];
	size_t n;
} tnum;

static const tnum *time_text(int64_t t)
{
	static _Thread_local tnum last;
	static _Thread_local int64_t last_t;
	if (!last.n || last_t != t) {
		last.n = fmt_i64(t, last.s);
		last_t = t;
	}
	return &last;
}

/* Fields already checked (fields_ok). */
static void emit_canonical(const sb_sign_fields *f, const tnum *t, obuf *o)
{
	out_line(o, (sb_sign_str){SB_SIGN_VERSION, sizeof(SB_SIGN_VERSION) - 1});
	out_line(o, (sb_sign_str){t->s, t->n});
	out_line(o, f->method);
	out_lower_line(o, host_only(f->host));
	out_line(o, f->path);
	out_line(o, f->query);
	for (size_t i = 0; i < SB_SIGN_NHDRS; i++) {
		out_put(o, hdr_names[i].p, hdr_names[i].n);
		out_c(o, ':');
		out_line(o, trim(f->hdr[i]));
	}
}

int sb_sign_canonical(const sb_sign_fields *f, int64_t t, char *buf, size_t size)
{
	if (size == 0)
		return SB_ETOOLONG;
	buf[0] = '\0';
	if (!fields_ok(f))
		return SB_EINVAL;
	obuf o = {buf, size - 1, 0};
	emit_canonical(f, time_text(t), &o);
	if (o.len > o.cap || o.len > INT32_MAX) {
		buf[0] = '\0';
		return SB_ETOOLONG;
	}
	buf[o.len] = '\0';
	return (int)o.len;
}

/* ---- HMAC-SHA256 --------------------------------------------------------- */

/* A key with its pads absorbed (RFC 2104): the inner and outer states. */
typedef struct hmac_key {
	SHA256_CTX inner, outer;
} hmac_key;

static int hmac_prepare(hmac_key *hk, const uint8_t *key, size_t len)
{
	uint8_t k[SHA256_CBLOCK], ipad[SHA256_CBLOCK], opad[SHA256_CBLOCK];
	int ok = 1;
	memset(k, 0, sizeof(k));
	if (len > sizeof(k)) {
		SHA256_CTX c;
		ok &= SHA256_Init(&c) & SHA256_Update(&c, key, len) & SHA256_Final(k, &c);
		OPENSSL_cleanse(&c, sizeof(c));
	} else if (len) {
		memcpy(k, key, len);
	}
	for (size_t i = 0; i < sizeof(k); i++) {
		ipad[i] = k[i] ^ 0x36;
		opad[i] = k[i] ^ 0x5c;
	}
	ok &= SHA256_Init(&hk->inner) & SHA256_Update(&hk->inner, ipad, sizeof(ipad));
	ok &= SHA256_Init(&hk->outer) & SHA256_Update(&hk->outer, opad, sizeof(opad));
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(ipad, sizeof(ipad));
	OPENSSL_cleanse(opad, sizeof(opad));
	return ok == 1 ? 0 : SB_EIO;
}

/* HMAC of the pieces msg[0..n) under a prepared key. */
static int hmac_run(const hmac_key *hk, const sb_sign_str *msg, size_t n,
		    uint8_t mac[SB_SIGN_MAC_LEN])
{
	SHA256_CTX c = hk->inner;
	uint8_t ih[SHA256_DIGEST_LENGTH];
	int ok = 1;
	for (size_t i = 0; i < n; i++)
		if (msg[i].n)
			ok &= SHA256_Update(&c, msg[i].p, msg[i].n);
	ok &= SHA256_Final(ih, &c);
	c = hk->outer;
	ok &= SHA256_Update(&c, ih, sizeof(ih)) & SHA256_Final(mac, &c);
	OPENSSL_cleanse(ih, sizeof(ih));
	OPENSSL_cleanse(&c, sizeof(c));
	return ok == 1 ? 0 : SB_EIO;
}

/*
 * Signing runs per request with a handful of keys, so each thread keeps the
 * prepared states of its recent keys (compared in constant time).
 */
#define KEY_CACHE 16
static _Thread_local struct keyctx {
	uint8_t key[64];
	size_t len;
	bool used;
	hmac_key hk;
} key_cache[KEY_CACHE];
static _Thread_local unsigned key_cache_next;

/* The prepared key: from the cache, or prepared into *tmp (a key too long
 * to cache). NULL if the crypto library failed. */
static const hmac_key *key_get(const sb_sign_key *key, hmac_key *tmp)
{
	if (key->len > sizeof(key_cache[0].key))
		return hmac_prepare(tmp, key->secret, key->len) == 0 ? tmp : NULL;
	for (size_t i = 0; i < KEY_CACHE; i++) {
		struct keyctx *k = &key_cache[i];
		if (k->used && k->len == key->len &&
		    CRYPTO_memcmp(k->key, key->secret, key->len) == 0)
			return &k->hk;
	}
	struct keyctx *k = &key_cache[key_cache_next++ % KEY_CACHE];
	k->used = false;
	if (hmac_prepare(&k->hk, key->secret, key->len) < 0)
		return NULL;
	if (key->len)
		memcpy(k->key, key->secret, key->len);
	k->len = key->len;
	k->used = true;
	return &k->hk;
}

static int hmac_key_bytes(const sb_sign_key *key, const sb_sign_str *msg, size_t n,
			  uint8_t mac[SB_SIGN_MAC_LEN])
{
	hmac_key tmp;
	const hmac_key *hk = key_get(key, &tmp);
	int rc = hk ? hmac_run(hk, msg, n, mac) : SB_EIO;
	OPENSSL_cleanse(&tmp, sizeof(tmp));
	return rc;
}

void sb_sign_thread_cleanup(void)
{
	OPENSSL_cleanse(key_cache, sizeof(key_cache));
	memset(key_cache, 0, sizeof(key_cache));
}

/*
 * The canonical string for fields already checked, in stack (a buffer of
 * CANON_STACK bytes) or, when longer, in a heap copy returned in *heap for
 * the caller to free.
 */
#define CANON_STACK 2048
static sb_sign_str canonical_in(const sb_sign_fields *f, const tnum *t, char *stack, char **heap)
{
	obuf o = {stack, CANON_STACK, 0};
	*heap = NULL;
	emit_canonical(f, t, &o);
	if (o.len > CANON_STACK) {
		*heap = sb_xmalloc(o.len);
		o = (obuf){*heap, o.len, 0};
		emit_canonical(f, t, &o);
	}
	return (sb_sign_str){o.p, o.len};
}

int sb_sign_mac(const sb_sign_fields *f, int64_t t, const sb_sign_key *key,
		uint8_t mac[SB_SIGN_MAC_LEN])
{
	char stack[CANON_STACK], *heap;
	if (!fields_ok(f))
		return SB_EINVAL;
	sb_sign_str m = canonical_in(f, time_text(t), stack, &heap);
	int rc = hmac_key_bytes(key, &m, 1, mac);
	free(heap);
	return rc;
}

void sb_sign_derive_secret(const uint8_t *master, size_t mlen, const char *deployment,
			   uint8_t out_[SB_SIGN_MAC_LEN])
{
	hmac_key hk;
	sb_sign_str m[2] = {{derive_prefix, sizeof(derive_prefix) - 1},
			    {deployment, strlen(deployment)}};
	if (hmac_prepare(&hk, master, mlen) < 0 || hmac_run(&hk, m, 2, out_) < 0)
		memset(out_, 0, SB_SIGN_MAC_LEN);
	OPENSSL_cleanse(&hk, sizeof(hk));
}

/* ---- hex ----------------------------------------------------------------- */

int sb_sign_hex(const uint8_t *in, size_t n, char *out, size_t size)
{
	static const char digits[] = "0123456789abcdef";
	if (n > (SIZE_MAX - 1) / 2 || size < 2 * n + 1 || 2 * n > INT32_MAX)
		return SB_ETOOLONG;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
	return (int)(2 * n);
}

int sb_sign_unhex(const char *hex, size_t len, uint8_t *out, size_t size)
{
	if (len % 2)
		return SB_EINVAL;
	for (size_t i = 0; i < len; i++)
		if (sb_hexval(hex[i]) < 0)
			return SB_EINVAL;
	if (len / 2 > size || len / 2 > INT32_MAX)
		return SB_ETOOLONG;
	for (size_t i = 0; i < len / 2; i++)
		out[i] = (uint8_t)(sb_hexval(hex[2 * i]) << 4 | sb_hexval(hex[2 * i + 1]));
	return (int)(len / 2);
}

/* ---- fields -------------------------------------------------------------- */

void sb_sign_fields_set_target(sb_sign_fields *f, const char *target, size_t len)
{
	const char *q = memchr(target, '?', len);
	size_t plen = q ? (size_t)(q - target) : len;
	f->path = (sb_sign_str){target, plen};
	f->query = q ? (sb_sign_str){q + 1, len - plen - 1} : (sb_sign_str){NULL, 0};
}

static bool name_eq(const char *name, size_t nlen, const char *lower)
{
	size_t i = 0;
	for (; i < nlen && lower[i]; i++) {
		char c = name[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (c != lower[i])
			return false;
	}
	return i == nlen && lower[i] == '\0';
}

int sb_sign_fields_set_header(sb_sign_fields *f, const char *name, size_t nlen, const char *value,
			      size_t vlen)
{
	for (int i = 0; i < SB_SIGN_NHDRS; i++)
		if (name_eq(name, nlen, sb_sign_hdr_names[i])) {
			f->hdr[i] = (sb_sign_str){value, vlen};
			return i;
		}
	return SB_ENOENT;
}

/* ---- header -------------------------------------------------------------- */

int sb_sign_header(const sb_sign_fields *f, int64_t t, const sb_sign_key *keys, size_t nkeys,
		   char *out_, size_t size)
{
	const tnum *tn = time_text(t);
	char stack[CANON_STACK], *heap = NULL;
	size_t len = 0;
	int rc = 0;

	if (nkeys == 0 || !fields_ok(f)) {
		rc = SB_EINVAL;
		goto out;
	}
	if (nkeys > (size_t)(INT32_MAX - 32) / (4 + SB_SIGN_HEX_LEN) ||
	    size < 2 + tn->n + nkeys * (4 + SB_SIGN_HEX_LEN) + 1) {
		rc = SB_ETOOLONG;
		goto out;
	}
	memcpy(out_, "t=", 2);
	memcpy(out_ + 2, tn->s, tn->n);
	len = 2 + tn->n;
	/* built once, then MACed under each key in one update */
	sb_sign_str m = canonical_in(f, tn, stack, &heap);
	for (size_t i = 0; i < nkeys; i++) {
		uint8_t mac[SB_SIGN_MAC_LEN];
		if ((rc = hmac_key_bytes(&keys[i], &m, 1, mac)) < 0)
			goto out;
		memcpy(out_ + len, ",v1=", 4);
		sb_sign_hex(mac, sizeof(mac), out_ + len + 4, size - len - 4);
		len += 4 + SB_SIGN_HEX_LEN;
	}
	out_[len] = '\0';
	rc = (int)len;
out:
	if (rc < 0 && size)
		out_[0] = '\0';
	free(heap);
	return rc;
}

struct parsed {
	int64_t t;
	size_t nsig;
	uint8_t sig[SB_SIGN_MAX_SIGNATURES][SB_SIGN_MAC_LEN];
};

/* Parse "t=..,v1=..,v1=.." strictly enough that nothing odd gets through. */
static int parse_header(const char *h, size_t len, struct parsed *ps)
{
	bool have_t = false;
	const char *p = h, *end = h + len;

	ps->nsig = 0;
	if (!h || len == 0)
		return SB_EINVAL;
	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		sb_sign_str item = trim((sb_sign_str){p, (size_t)((comma ? comma : end) - p)});
		const char *eq = memchr(item.p, '=', item.n);
		if (!eq || eq == item.p)
			return SB_EINVAL;
		size_t klen = (size_t)(eq - item.p), vlen = item.n - klen - 1;
		const char *v = eq + 1;
		if (klen == 1 && item.p[0] == 't') {
			uint64_t u;
			/* no leading zero: the canonical string has t's digits as the
			 * edge wrote them, so one spelling only */
			if (have_t || (vlen > 1 && v[0] == '0') ||
			    sb_parse_u64(v, vlen, INT64_MAX, &u) < 0)
				return SB_EINVAL;
			ps->t = (int64_t)u;
			have_t = true;
		} else if (klen == 2 && item.p[0] == 'v' && item.p[1] == '1') {
			if (ps->nsig == SB_SIGN_MAX_SIGNATURES || vlen != SB_SIGN_HEX_LEN ||
			    sb_sign_unhex(v, vlen, ps->sig[ps->nsig], SB_SIGN_MAC_LEN) !=
				SB_SIGN_MAC_LEN)
				return SB_EINVAL;
			ps->nsig++;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	return have_t && ps->nsig ? 0 : SB_EINVAL;
}

int sb_sign_verify(const char *header, size_t len, const sb_sign_fields *f, const sb_sign_key *keys,
		   size_t nkeys, int64_t now, int64_t tolerance_s)
{
	struct parsed ps;
	char stack[CANON_STACK], *heap = NULL;
	bool matched = false;
	uint64_t diff;
	int rc = parse_header(header, len, &ps);

	if (rc < 0)
		goto out;
	if (tolerance_s < 0 || !fields_ok(f)) {
		rc = SB_EINVAL;
		goto out;
	}
	sb_sign_str m = canonical_in(f, time_text(ps.t), stack, &heap);
	for (size_t k = 0; k < nkeys && !matched; k++) {
		uint8_t mac[SB_SIGN_MAC_LEN];
		if ((rc = hmac_key_bytes(&keys[k], &m, 1, mac)) < 0)
			goto out;
		/* every candidate is compared in full, in constant time */
		for (size_t s = 0; s < ps.nsig; s++)
			matched |= CRYPTO_memcmp(mac, ps.sig[s], SB_SIGN_MAC_LEN) == 0;
		OPENSSL_cleanse(mac, sizeof(mac));
	}
	if (!matched) {
		rc = SB_ENOENT;
		goto out;
	}
	/* difference in unsigned arithmetic: exact for any two int64 values */
	diff = ps.t > now ? (uint64_t)ps.t - (uint64_t)now : (uint64_t)now - (uint64_t)ps.t;
	rc = diff > (uint64_t)tolerance_s ? SB_ERANGE : 0;
out:
	free(heap);
	return rc;
}

/* ---- the deployment proof ---------------------------------------------- */

bool sb_proof_nonce_ok(const char *s, size_t n)
{
	if (!s || n < SB_PROOF_NONCE_MIN || n > SB_PROOF_NONCE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (sb_hexval(s[i]) < 0)
			return false;
	return true;
}

static sb_sign_str proof_path(const sb_proof_fields *f)
{
	sb_sign_str path = f->path;
	const char *q = path.p ? memchr(path.p, '?', path.n) : NULL;
	if (q)
		path.n = (size_t)(q - path.p);
	return path;
}

static bool proof_ok(const sb_proof_fields *f)
{
	return sb_proof_nonce_ok(f->nonce.p, f->nonce.n) && !has_crlf(f->deployment) &&
	       !has_crlf(f->host) && !has_crlf(proof_path(f));
}

/* Same emitter for the buffer and the MAC, as for request signatures;
 * fields already checked (proof_ok). */
static void emit_proof(const sb_proof_fields *f, obuf *o)
{
	out_line(o, (sb_sign_str){SB_PROOF_VERSION, sizeof(SB_PROOF_VERSION) - 1});
	out_line(o, f->nonce);
	out_line(o, f->deployment);
	out_lower_line(o, host_only(f->host));
	out_line(o, proof_path(f));
}

int sb_proof_canonical(const sb_proof_fields *f, char *buf, size_t size)
{
	if (size == 0)
		return SB_ETOOLONG;
	buf[0] = '\0';
	if (!proof_ok(f))
		return SB_EINVAL;
	obuf o = {buf, size - 1, 0};
	emit_proof(f, &o);
	if (o.len > o.cap || o.len > INT32_MAX) {
		buf[0] = '\0';
		return SB_ETOOLONG;
	}
	buf[o.len] = '\0';
	return (int)o.len;
}

static int proof_mac(const sb_proof_fields *f, const sb_sign_key *key, uint8_t mac[SB_SIGN_MAC_LEN])
{
	char stack[CANON_STACK], *heap = NULL;
	if (!proof_ok(f))
		return SB_EINVAL;
	obuf o = {stack, sizeof(stack), 0};
	emit_proof(f, &o);
	if (o.len > sizeof(stack)) {
		heap = sb_xmalloc(o.len);
		o = (obuf){heap, o.len, 0};
		emit_proof(f, &o);
	}
	sb_sign_str m = {o.p, o.len};
	int rc = hmac_key_bytes(key, &m, 1, mac);
	free(heap);
	return rc;
}

int sb_proof_header(const sb_proof_fields *f, const sb_sign_key *key, char *out_, size_t size)
{
	uint8_t mac[SB_SIGN_MAC_LEN];
	int rc;

	if (size < SB_PROOF_HEADER_LEN) {
		rc = SB_ETOOLONG;
		goto out;
	}
	if ((rc = proof_mac(f, key, mac)) < 0)
		goto out;
	memcpy(out_, "v1=", 3);
	sb_sign_hex(mac, sizeof(mac), out_ + 3, size - 3);
	rc = 3 + SB_SIGN_HEX_LEN;
out:
	if (rc < 0 && size)
		out_[0] = '\0';
	return rc;
}

int sb_proof_verify(const char *header, size_t len, const sb_proof_fields *f,
		    const sb_sign_key *keys, size_t nkeys)
{
	uint8_t want[SB_SIGN_MAC_LEN];
	bool matched = false;
	int rc = 0;
	sb_sign_str h = trim((sb_sign_str){header, header ? len : 0});

	if (h.n != 3 + SB_SIGN_HEX_LEN || memcmp(h.p, "v1=", 3) != 0 ||
	    sb_sign_unhex(h.p + 3, SB_SIGN_HEX_LEN, want, sizeof(want)) != SB_SIGN_MAC_LEN) {
		rc = SB_EINVAL;
		goto out;
	}
	for (size_t k = 0; k < nkeys; k++) {
		uint8_t mac[SB_SIGN_MAC_LEN];
		if ((rc = proof_mac(f, &keys[k], mac)) < 0)
			goto out;
		/* every key is tried in full, in constant time */
		matched |= CRYPTO_memcmp(mac, want, SB_SIGN_MAC_LEN) == 0;
		OPENSSL_cleanse(mac, sizeof(mac));
	}
	rc = matched ? 0 : SB_ENOENT;
out:
	return rc;
}
