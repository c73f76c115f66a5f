/*
 * Request signing (see sign.h and docs/signing.md).
 *
 * The canonical string is never built on the signing path: one emitter walks
 * the fields and hands each piece to a sink, which is either a bounded
 * buffer (sb_sign_canonical, for tests and docs) or the MAC itself. So the
 * same code defines the string and signs it, and signing needs no buffer
 * whatever the length of the path or the headers.
 */
#include "http/sign.h"

#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

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

static const char derive_prefix[] = "switchboard-deployment-secret:";

/* ---- the canonical string ------------------------------------------------ */

typedef int (*sink_fn)(void *ctx, const char *p, size_t n);

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
 * contain ':', so the first one starts the port. */
static sb_sign_str host_only(sb_sign_str h)
{
	h = trim(h);
	if (h.n && h.p[0] == '[') {
		const char *end = memchr(h.p, ']', h.n);
		if (end)
			h.n = (size_t)(end - h.p) + 1;
		return h;
	}
	const char *colon = memchr(h.p, ':', h.n);
	if (colon)
		h.n = (size_t)(colon - h.p);
	return h;
}

static bool has_crlf(sb_sign_str s)
{
	return s.p && (memchr(s.p, '\n', s.n) || memchr(s.p, '\r', s.n));
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

static int put(sink_fn sink, void *ctx, const char *p, size_t n)
{
	return n ? sink(ctx, p, n) : 0;
}

static int put_lower(sink_fn sink, void *ctx, sb_sign_str s)
{
	char chunk[64];
	while (s.n) {
		size_t k = s.n < sizeof(chunk) ? s.n : sizeof(chunk);
		for (size_t i = 0; i < k; i++) {
			char c = s.p[i];
			chunk[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
		}
		int rc = sink(ctx, chunk, k);
		if (rc < 0)
			return rc;
		s.p += k;
		s.n -= k;
	}
	return 0;
}

/* One line: "<s>\n". */
static int put_line(sink_fn sink, void *ctx, sb_sign_str s)
{
	int rc = put(sink, ctx, s.p, s.n);
	return rc < 0 ? rc : sink(ctx, "\n", 1);
}

static int emit_canonical(const sb_sign_fields *f, int64_t t, sink_fn sink, void *ctx)
{
	char num[24];
	int rc;

	if (!fields_ok(f))
		return SB_EINVAL;
	if ((rc = put_line(sink, ctx,
			   (sb_sign_str){SB_SIGN_VERSION, sizeof(SB_SIGN_VERSION) - 1})) < 0)
		return rc;
	if ((rc = put_line(sink, ctx, (sb_sign_str){num, fmt_i64(t, num)})) < 0)
		return rc;
	if ((rc = put_line(sink, ctx, f->method)) < 0)
		return rc;
	if ((rc = put_lower(sink, ctx, host_only(f->host))) < 0 || (rc = sink(ctx, "\n", 1)) < 0)
		return rc;
	if ((rc = put_line(sink, ctx, f->path)) < 0)
		return rc;
	if ((rc = put_line(sink, ctx, f->query)) < 0)
		return rc;
	for (size_t i = 0; i < SB_SIGN_NHDRS; i++) {
		const char *name = sb_sign_hdr_names[i];
		if ((rc = put(sink, ctx, name, strlen(name))) < 0 || (rc = sink(ctx, ":", 1)) < 0 ||
		    (rc = put_line(sink, ctx, trim(f->hdr[i]))) < 0)
			return rc;
	}
	return 0;
}

struct buf_sink {
	char *buf;
	size_t size, len;
};

static int buf_put(void *ctx, const char *p, size_t n)
{
	struct buf_sink *b = ctx;
	if (b->size - b->len <= n)
		return SB_ETOOLONG;
	memcpy(b->buf + b->len, p, n);
	b->len += n;
	return 0;
}

int sb_sign_canonical(const sb_sign_fields *f, int64_t t, char *buf, size_t size)
{
	struct buf_sink b = {buf, size, 0};
	if (size == 0)
		return SB_ETOOLONG;
	int rc = emit_canonical(f, t, buf_put, &b);
	buf[rc < 0 ? 0 : b.len] = '\0';
	if (rc < 0)
		return rc;
	return b.len > INT32_MAX ? SB_ETOOLONG : (int)b.len;
}

/* ---- HMAC-SHA256 --------------------------------------------------------- */

/* The HMAC implementation is fetched once per process, not per request. */
static EVP_MAC *hmac_impl;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void)
{
	hmac_impl = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static EVP_MAC_CTX *mac_new(void)
{
	pthread_once(&hmac_once, hmac_fetch);
	return hmac_impl ? EVP_MAC_CTX_new(hmac_impl) : NULL;
}

static int mac_init(EVP_MAC_CTX *ctx, const uint8_t *key, size_t len)
{
	static const uint8_t empty;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};
	/* a NULL key means "keep the previous key" to OpenSSL */
	return EVP_MAC_init(ctx, key ? key : &empty, key ? len : 0, params) == 1 ? 0 : SB_EIO;
}

static int mac_put(void *ctx, const char *p, size_t n)
{
	return EVP_MAC_update(ctx, (const unsigned char *)p, n) == 1 ? 0 : SB_EIO;
}

static int mac_final(EVP_MAC_CTX *ctx, uint8_t mac[SB_SIGN_MAC_LEN])
{
	size_t n = 0;
	if (EVP_MAC_final(ctx, mac, &n, SB_SIGN_MAC_LEN) != 1 || n != SB_SIGN_MAC_LEN)
		return SB_EIO;
	return 0;
}

/*
 * Signing runs per request with a handful of keys, so each thread keeps an
 * initialised context per recent key: re-initialising with the same key
 * (EVP_MAC_init with a NULL key and no parameters) skips the digest fetch
 * and the key schedule that a fresh context costs.
 */
#define KEY_CACHE 16
static _Thread_local struct keyctx {
	uint8_t key[64];
	size_t len;
	EVP_MAC_CTX *ctx;
} key_cache[KEY_CACHE];
static _Thread_local unsigned key_cache_next;

static EVP_MAC_CTX *cached_ctx(const sb_sign_key *key)
{
	if (key->len > sizeof(key_cache[0].key))
		return NULL;
	for (size_t i = 0; i < KEY_CACHE; i++) {
		struct keyctx *k = &key_cache[i];
		if (k->ctx && k->len == key->len &&
		    CRYPTO_memcmp(k->key, key->secret, key->len) == 0)
			return EVP_MAC_init(k->ctx, NULL, 0, NULL) == 1 ? k->ctx : NULL;
	}
	struct keyctx *k = &key_cache[key_cache_next++ % KEY_CACHE];
	if (!k->ctx && !(k->ctx = mac_new()))
		return NULL;
	if (mac_init(k->ctx, key->secret, key->len) < 0) {
		k->len = 0;
		return NULL;
	}
	memcpy(k->key, key->secret, key->len);
	k->len = key->len;
	return k->ctx;
}

void sb_sign_thread_cleanup(void)
{
	for (size_t i = 0; i < KEY_CACHE; i++) {
		EVP_MAC_CTX_free(key_cache[i].ctx);
		key_cache[i].ctx = NULL;
		key_cache[i].len = 0;
		OPENSSL_cleanse(key_cache[i].key, sizeof(key_cache[i].key));
	}
}

/* MAC of the canonical string under one key, with a caller-owned context. */
static int mac_fields(EVP_MAC_CTX *ctx, const sb_sign_fields *f, int64_t t, const sb_sign_key *key,
		      uint8_t mac[SB_SIGN_MAC_LEN])
{
	int rc = mac_init(ctx, key->secret, key->len);
	if (rc == 0)
		rc = emit_canonical(f, t, mac_put, ctx);
	if (rc == 0)
		rc = mac_final(ctx, mac);
	return rc;
}

int sb_sign_mac(const sb_sign_fields *f, int64_t t, const sb_sign_key *key,
		uint8_t mac[SB_SIGN_MAC_LEN])
{
	EVP_MAC_CTX *ctx = mac_new();
	if (!ctx)
		return SB_EIO;
	int rc = mac_fields(ctx, f, t, key, mac);
	EVP_MAC_CTX_free(ctx);
	return rc;
}

void sb_sign_derive_secret(const uint8_t *master, size_t mlen, const char *deployment,
			   uint8_t out[SB_SIGN_MAC_LEN])
{
	EVP_MAC_CTX *ctx = mac_new();
	int rc = ctx ? mac_init(ctx, master, mlen) : SB_EIO;
	if (rc == 0)
		rc = mac_put(ctx, derive_prefix, sizeof(derive_prefix) - 1);
	if (rc == 0)
		rc = mac_put(ctx, deployment, strlen(deployment));
	if (rc == 0)
		rc = mac_final(ctx, out);
	if (rc < 0)
		memset(out, 0, SB_SIGN_MAC_LEN);
	EVP_MAC_CTX_free(ctx);
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

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sb_sign_unhex(const char *hex, size_t len, uint8_t *out, size_t size)
{
	if (len % 2)
		return SB_EINVAL;
	for (size_t i = 0; i < len; i++)
		if (hexval(hex[i]) < 0)
			return SB_EINVAL;
	if (len / 2 > size || len / 2 > INT32_MAX)
		return SB_ETOOLONG;
	for (size_t i = 0; i < len / 2; i++)
		out[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
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
		   char *out, size_t size)
{
	char num[24];
	size_t nlen = fmt_i64(t, num), len = 0;
	EVP_MAC_CTX *ctx = NULL;
	int rc = 0;

	if (nkeys == 0 || !fields_ok(f)) {
		rc = SB_EINVAL;
		goto out;
	}
	if (nkeys > (size_t)(INT32_MAX - 32) / (4 + SB_SIGN_HEX_LEN) ||
	    size < 2 + nlen + nkeys * (4 + SB_SIGN_HEX_LEN) + 1) {
		rc = SB_ETOOLONG;
		goto out;
	}
	memcpy(out, "t=", 2);
	memcpy(out + 2, num, nlen);
	len = 2 + nlen;
	/* The canonical string is built once, then fed to the MAC in one
	 * update per key: each update goes through the provider layers, and
	 * streaming the thirty-odd pieces separately cost more than the hash
	 * itself. A string too long for the buffer (a long path or query) is
	 * streamed as before. */
	static _Thread_local char canon[4096];
	struct buf_sink cb = {canon, sizeof(canon), 0};
	bool whole = emit_canonical(f, t, buf_put, &cb) == 0;
	for (size_t i = 0; i < nkeys; i++) {
		uint8_t mac[SB_SIGN_MAC_LEN];
		EVP_MAC_CTX *kc = cached_ctx(&keys[i]);
		if (kc) {
			rc = whole ? mac_put(kc, canon, cb.len) : emit_canonical(f, t, mac_put, kc);
			if (rc == 0)
				rc = mac_final(kc, mac);
		} else {
			if (!ctx && !(ctx = mac_new())) {
				rc = SB_EIO;
				goto out;
			}
			rc = mac_fields(ctx, f, t, &keys[i], mac);
		}
		if (rc < 0)
			goto out;
		memcpy(out + len, ",v1=", 4);
		sb_sign_hex(mac, sizeof(mac), out + len + 4, size - len - 4);
		len += 4 + SB_SIGN_HEX_LEN;
	}
	out[len] = '\0';
	rc = (int)len;
out:
	if (rc < 0 && size)
		out[0] = '\0';
	EVP_MAC_CTX_free(ctx);
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
			if (have_t || sb_parse_u64(v, vlen, INT64_MAX, &u) < 0)
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
	EVP_MAC_CTX *ctx = NULL;
	bool matched = false;
	uint64_t diff;
	int rc = parse_header(header, len, &ps);

	if (rc < 0)
		goto out;
	if (tolerance_s < 0 || !fields_ok(f)) {
		rc = SB_EINVAL;
		goto out;
	}
	if (nkeys && !(ctx = mac_new())) {
		rc = SB_EIO;
		goto out;
	}
	for (size_t k = 0; k < nkeys && !matched; k++) {
		uint8_t mac[SB_SIGN_MAC_LEN];
		if ((rc = mac_fields(ctx, f, ps.t, &keys[k], mac)) < 0)
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
	EVP_MAC_CTX_free(ctx);
	return rc;
}

/* ---- the deployment proof ---------------------------------------------- */

bool sb_proof_nonce_ok(const char *s, size_t n)
{
	if (!s || n < SB_PROOF_NONCE_MIN || n > SB_PROOF_NONCE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (hexval(s[i]) < 0)
			return false;
	return true;
}

/* Same emitter for the buffer and the MAC, as for request signatures. */
static int emit_proof(const sb_proof_fields *f, sink_fn sink, void *ctx)
{
	int rc;
	sb_sign_str path = f->path;
	const char *q = path.p ? memchr(path.p, '?', path.n) : NULL;
	if (q)
		path.n = (size_t)(q - path.p);
	if (!sb_proof_nonce_ok(f->nonce.p, f->nonce.n) || has_crlf(f->deployment) ||
	    has_crlf(f->host) || has_crlf(path))
		return SB_EINVAL;
	if ((rc = put_line(sink, ctx,
			   (sb_sign_str){SB_PROOF_VERSION, sizeof(SB_PROOF_VERSION) - 1})) < 0 ||
	    (rc = put_line(sink, ctx, f->nonce)) < 0 ||
	    (rc = put_line(sink, ctx, f->deployment)) < 0)
		return rc;
	if ((rc = put_lower(sink, ctx, host_only(f->host))) < 0 || (rc = sink(ctx, "\n", 1)) < 0)
		return rc;
	return put_line(sink, ctx, path);
}

int sb_proof_canonical(const sb_proof_fields *f, char *buf, size_t size)
{
	struct buf_sink b = {buf, size, 0};
	if (size == 0)
		return SB_ETOOLONG;
	int rc = emit_proof(f, buf_put, &b);
	buf[rc < 0 ? 0 : b.len] = '\0';
	if (rc < 0)
		return rc;
	return b.len > INT32_MAX ? SB_ETOOLONG : (int)b.len;
}

static int proof_mac(const sb_proof_fields *f, const sb_sign_key *key, EVP_MAC_CTX **fresh,
		     uint8_t mac[SB_SIGN_MAC_LEN])
{
	EVP_MAC_CTX *kc = cached_ctx(key);
	int rc;
	if (!kc) {
		if (!*fresh && !(*fresh = mac_new()))
			return SB_EIO;
		kc = *fresh;
		if ((rc = mac_init(kc, key->secret, key->len)) < 0)
			return rc;
	}
	rc = emit_proof(f, mac_put, kc);
	return rc < 0 ? rc : mac_final(kc, mac);
}

int sb_proof_header(const sb_proof_fields *f, const sb_sign_key *key, char *out, size_t size)
{
	uint8_t mac[SB_SIGN_MAC_LEN];
	EVP_MAC_CTX *fresh = NULL;
	int rc;

	if (size < SB_PROOF_HEADER_LEN) {
		rc = SB_ETOOLONG;
		goto out;
	}
	if ((rc = proof_mac(f, key, &fresh, mac)) < 0)
		goto out;
	memcpy(out, "v1=", 3);
	sb_sign_hex(mac, sizeof(mac), out + 3, size - 3);
	rc = 3 + SB_SIGN_HEX_LEN;
out:
	if (rc < 0 && size)
		out[0] = '\0';
	EVP_MAC_CTX_free(fresh);
	return rc;
}

int sb_proof_verify(const char *header, size_t len, const sb_proof_fields *f,
		    const sb_sign_key *keys, size_t nkeys)
{
	uint8_t want[SB_SIGN_MAC_LEN];
	EVP_MAC_CTX *fresh = NULL;
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
		if ((rc = proof_mac(f, &keys[k], &fresh, mac)) < 0)
			goto out;
		/* every key is tried in full, in constant time */
		matched |= CRYPTO_memcmp(mac, want, SB_SIGN_MAC_LEN) == 0;
		OPENSSL_cleanse(mac, sizeof(mac));
	}
	rc = matched ? 0 : SB_ENOENT;
out:
	EVP_MAC_CTX_free(fresh);
	return rc;
}
