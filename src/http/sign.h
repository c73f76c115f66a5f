/*
 * Request signing: the edge proves to a service that a request came through
 * it, unaltered, and recently.
 *
 * Every forwarded request carries
 *
 *   X-Switchboard-Signature: t=<unix seconds>,v1=<64 hex>[,v1=<64 hex>...]
 *
 * with one v1 per active secret of the deployment (current first, then the
 * previous ones while a rotation is under way). v1 is the lower-case hex of
 * HMAC-SHA256(secret, canonical string); docs/signing.md defines the
 * canonical string and works one example through.
 *
 * The signing path (once per forwarded request) builds the canonical string
 * on the stack and allocates only for a string longer than 2 KiB (a long
 * path or query). All functions are thread-safe.
 */
#ifndef SB_HTTP_SIGN_H
#define SB_HTTP_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sb.h"

/* The header name, and the first line of every canonical string. */
#define SB_SIGN_HEADER_NAME "X-Switchboard-Signature"
#define SB_SIGN_VERSION "switchboard-v1"

/* Raw size of one signature (HMAC-SHA256) and of its hex form. */
#define SB_SIGN_MAC_LEN 32
#define SB_SIGN_HEX_LEN 64

/* A verifier looks at no more than this many v1 entries (more: SB_EINVAL). */
#define SB_SIGN_MAX_SIGNATURES 16

/* Bytes sb_sign_header() needs for nkeys keys, NUL included:
 * "t=" + at most 20 characters of time + nkeys * ",v1=<64 hex>" + NUL. */
#define SB_SIGN_HEADER_MAX(nkeys) (2 + 20 + (size_t)(nkeys) * (4 + SB_SIGN_HEX_LEN) + 1)

/* The signed headers, in canonical order. */
enum sb_sign_hdr {
	SB_SIGN_H_REQUEST_ID,	   /* x-request-id */
	SB_SIGN_H_TRACEPARENT,	   /* traceparent */
	SB_SIGN_H_FORWARDED_FOR,   /* x-forwarded-for */
	SB_SIGN_H_FORWARDED_PROTO, /* x-forwarded-proto */
	SB_SIGN_H_FORWARDED_HOST,  /* x-forwarded-host */
	SB_SIGN_H_TENANT_SLUG,	   /* x-tenant-slug */
	SB_SIGN_H_TENANT_CONFIG,   /* x-tenant-config */
	SB_SIGN_H_ENVIRONMENT,	   /* x-switchboard-environment */
	SB_SIGN_H_DEPLOYMENT,	   /* x-switchboard-deployment */
	SB_SIGN_NHDRS
};

/* Lower-case names of the signed headers, indexed by enum sb_sign_hdr. */
extern const char *const sb_sign_hdr_names[SB_SIGN_NHDRS];

/* A span of bytes that the fields point into; {NULL, 0} is empty. */
typedef struct sb_sign_str {
	const char *p;
	size_t n;
} sb_sign_str;

/*
 * What a signature covers. Only pointers: the caller keeps the bytes alive.
 * method is as sent ("GET"); host may still carry a port and upper case
 * (the canonical form lower-cases it and drops the port); path is the path
 * sent upstream without the query; query is without the '?'. An absent
 * header is an empty span. Header values are trimmed of surrounding spaces
 * and tabs in the canonical string. No field may contain CR or LF.
 */
typedef struct sb_sign_fields {
	sb_sign_str method;
	sb_sign_str host;
	sb_sign_str path;
	sb_sign_str query;
	sb_sign_str hdr[SB_SIGN_NHDRS];
} sb_sign_fields;

/* One secret (raw bytes, any length; deployments use 32). */
typedef struct sb_sign_key {
	const uint8_t *secret;
	size_t len;
} sb_sign_key;

/*
 * Set path and query from a request-target "/p/a/t/h?query" (split at the
 * first '?'; no '?' gives an empty query). Spans point into target.
 */
void sb_sign_fields_set_target(sb_sign_fields *f, const char *target, size_t len);

/*
 * If name (any case) is one of the signed headers, point its field at value
 * and return its enum sb_sign_hdr index; otherwise return SB_ENOENT and
 * change nothing. Lets a parser fill the fields as headers go by.
 */
int sb_sign_fields_set_header(sb_sign_fields *f, const char *name, size_t nlen, const char *value,
			      size_t vlen);

/*
 * Write the canonical string for time t into buf (NUL-terminated).
 * Returns its length (without the NUL), SB_ETOOLONG if buf is too small
 * (size must exceed the length by one), or SB_EINVAL if a field contains CR
 * or LF (it would make the string ambiguous).
 */
int sb_sign_canonical(const sb_sign_fields *f, int64_t t, char *buf, size_t size);

/*
 * HMAC-SHA256(key, canonical string) into mac. Returns 0, SB_EINVAL (a field
 * contains CR or LF) or SB_EIO (the crypto library failed).
 */
int sb_sign_mac(const sb_sign_fields *f, int64_t t, const sb_sign_key *key,
		uint8_t mac[SB_SIGN_MAC_LEN]);

/*
 * Write the header value "t=<t>,v1=<hex>[,v1=<hex>...]" (one v1 per key, in
 * the keys' order, NUL-terminated) into out; SB_SIGN_HEADER_MAX(nkeys) bytes
 * always suffice. Returns its length, SB_ETOOLONG if out is too small,
 * SB_EINVAL if there is no key or a field contains CR or LF, SB_EIO if the
 * crypto library failed.
 */
int sb_sign_header(const sb_sign_fields *f, int64_t t, const sb_sign_key *keys, size_t nkeys,
		   char *out, size_t size);

/*
 * Check a header value against the fields. The header is a comma-separated
 * list of key=value items (spaces and tabs around items allowed): exactly
 * one t (decimal seconds), one to SB_SIGN_MAX_SIGNATURES v1 (64 hex digits),
 * other keys ignored (room for later versions). Signatures are compared in
 * constant time. Returns:
 *   0           a v1 matches one of the keys and |now - t| <= tolerance_s;
 *   SB_EINVAL   malformed header (or negative tolerance, or a field with
 *               CR or LF);
 *   SB_ENOENT   well formed but no v1 matches any key (or nkeys is 0);
 *   SB_ERANGE   authentic, but t is outside the tolerance (stale or replayed);
 *   SB_EIO      the crypto library failed.
 */
int sb_sign_verify(const char *header, size_t len, const sb_sign_fields *f, const sb_sign_key *keys,
		   size_t nkeys, int64_t now, int64_t tolerance_s);

/*
 * A deployment's signing secret from the master key:
 * out = HMAC-SHA256(master, "switchboard-deployment-secret:" + deployment).
 * The crypto library failing is not expected here: out is zeroed then.
 */
void sb_sign_derive_secret(const uint8_t *master, size_t mlen, const char *deployment,
			   uint8_t out[SB_SIGN_MAC_LEN]);

/*
 * Lower-case hex of n bytes into out, NUL-terminated. Returns 2n, or
 * SB_ETOOLONG if size < 2n + 1.
 */
int sb_sign_hex(const uint8_t *in, size_t n, char *out, size_t size);

/*
 * Decode hex (either case, even length) into out. Returns the number of
 * bytes, SB_EINVAL (odd length or a non-hex character) or SB_ETOOLONG (more
 * than size bytes).
 */
int sb_sign_unhex(const char *hex, size_t len, uint8_t *out, size_t size);

/* ---- the deployment proof (switchboard verify) --------------------------
 *
 * A request carrying "X-Switchboard-Verify: <nonce>" (16 to 64 hex digits)
 * gets, on the response the edge relays from the upstream,
 *
 *   X-Switchboard-Deployment: <deployment name>
 *   X-Switchboard-Verify-Signature: v1=<64 hex>
 *
 * v1 is the lower-case hex of HMAC-SHA256(deployment secret, proof string),
 * the proof string being five lines, each ending in '\n':
 *
 *   switchboard-verify-v1
 *   <nonce, as sent>
 *   <deployment name>
 *   <host: lower case, no port>
 *   <path as sent upstream, without the query>
 *
 * The deployment secret is the one requests are signed with, so only the
 * edge (and the deployment itself) can make the proof, and a proof names
 * the deployment the edge actually routed (host, path) to. docs/verify.md.
 */
#define SB_PROOF_REQUEST_HEADER "X-Switchboard-Verify"
#define SB_PROOF_HEADER "X-Switchboard-Verify-Signature"
#define SB_PROOF_DEPLOYMENT_HEADER "X-Switchboard-Deployment"
#define SB_PROOF_VERSION "switchboard-verify-v1"
#define SB_PROOF_NONCE_MIN 16
#define SB_PROOF_NONCE_MAX 64
/* Bytes of the header value "v1=<64 hex>" with its NUL. */
#define SB_PROOF_HEADER_LEN (3 + SB_SIGN_HEX_LEN + 1)

/* What a proof covers; spans as in sb_sign_fields. path may still carry a
 * query (cut at the first '?'); host may carry a port and upper case. */
typedef struct sb_proof_fields {
	sb_sign_str nonce;
	sb_sign_str deployment;
	sb_sign_str host;
	sb_sign_str path;
} sb_proof_fields;

/* Is n bytes at s a usable nonce: SB_PROOF_NONCE_MIN to SB_PROOF_NONCE_MAX
 * hex digits (either case)? The edge ignores any other value. */
bool sb_proof_nonce_ok(const char *s, size_t n);

/*
 * Write the proof string into buf (NUL-terminated). Returns its length,
 * SB_ETOOLONG if buf is too small, or SB_EINVAL if the nonce is not usable
 * or a field contains CR or LF.
 */
int sb_proof_canonical(const sb_proof_fields *f, char *buf, size_t size);

/*
 * Write the header value "v1=<hex>" (NUL-terminated) for one key into out
 * (SB_PROOF_HEADER_LEN bytes suffice). Returns its length, SB_ETOOLONG,
 * SB_EINVAL (unusable nonce, CR or LF in a field) or SB_EIO (crypto
 * library failed). Uses the calling thread's cached context for the key.
 */
int sb_proof_header(const sb_proof_fields *f, const sb_sign_key *key, char *out, size_t size);

/*
 * Check a proof header value ("v1=<64 hex>", surrounding spaces and tabs
 * allowed) against the fields, comparing in constant time with each key.
 * Returns 0 when it matches one key, SB_EINVAL when malformed (or the
 * fields are unusable), SB_ENOENT when no key gives it (forged, another
 * deployment, or another master secret), SB_EIO if the crypto library
 * failed.
 */
int sb_proof_verify(const char *header, size_t len, const sb_proof_fields *f,
		    const sb_sign_key *keys, size_t nkeys);

/* Free the calling thread's cached signing contexts (call before a thread
 * that signed exits). */
void sb_sign_thread_cleanup(void);

#endif
