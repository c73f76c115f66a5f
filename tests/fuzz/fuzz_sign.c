/*
 * Fuzz target: what a service (or the edge) is handed to verify. The input
 * is split at NUL bytes into a signature header, a proof header, and the
 * request's method, host and target; both verifiers run on them, and a
 * signature made over the same fields must verify.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/sign.h"

static const uint8_t secret_a[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t secret_b[7] = "rotated";

/* The next NUL-separated piece of the input. */
static sb_sign_str piece(const char **p, const char *end)
{
	const char *s = *p;
	const char *nul = memchr(s, '\0', (size_t)(end - s));
	const char *e = nul ? nul : end;
	*p = nul ? nul + 1 : end;
	return (sb_sign_str){s, (size_t)(e - s)};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	sb_sign_str sig = piece(&p, end), proof = piece(&p, end);
	sb_sign_fields f;
	memset(&f, 0, sizeof(f));
	f.method = piece(&p, end);
	f.host = piece(&p, end);
	sb_sign_str target = piece(&p, end);
	sb_sign_fields_set_target(&f, target.p, target.n);
	sb_sign_str name = piece(&p, end), value = piece(&p, end);
	sb_sign_fields_set_header(&f, name.p, name.n, value.p, value.n);

	const sb_sign_key keys[] = {{secret_a, sizeof(secret_a)}, {secret_b, sizeof(secret_b)}};
	int64_t now = 1700000000;
	int rc = sb_sign_verify(sig.p, sig.n, &f, keys, 2, now, 300);
	if (rc != 0 && rc != SB_EINVAL && rc != SB_ENOENT && rc != SB_ERANGE)
		abort();

	char hdr[SB_SIGN_HEADER_MAX(2)];
	int n = sb_sign_header(&f, now, keys, 2, hdr, sizeof(hdr));
	if (n >= 0) {
		if ((size_t)n >= sizeof(hdr) ||
		    sb_sign_verify(hdr, (size_t)n, &f, keys + 1, 1, now, 0) != 0)
			abort(); /* what we sign verifies, with either key */
	} else if (n != SB_EINVAL) {
		abort();
	}

	sb_proof_fields pf = {.nonce = value, .deployment = name, .host = f.host, .path = target};
	rc = sb_proof_verify(proof.p, proof.n, &pf, keys, 2);
	if (rc != 0 && rc != SB_EINVAL && rc != SB_ENOENT)
		abort();
	char ph[SB_PROOF_HEADER_LEN];
	n = sb_proof_header(&pf, &keys[0], ph, sizeof(ph));
	if (n >= 0 && sb_proof_verify(ph, (size_t)n, &pf, keys, 2) != 0)
		abort();
	return 0;
}
