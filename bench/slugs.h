/*
 * Tenant slugs for the benchmarks: "<word>-<base36 counter>", distinct for
 * distinct counters, 6 to 13 bytes, never reserved (they contain '-') and
 * never a staging/preview name (the counter part has at most 5 characters).
 * sb_model_slug_check confirms. route_bench.c and seed_tenants.c (which
 * fills the store for bench/http.sh and bench/dns.sh) make the same ones.
 */
#ifndef SB_BENCH_SLUGS_H
#define SB_BENCH_SLUGS_H
#include <stdint.h>
#include <string.h>

static inline uint32_t bench_mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

/* The slug for counter i into out (at least 14 bytes), NUL-terminated;
 * returns its length. */
static inline size_t bench_slug_make(uint32_t i, char *out)
{
	static const char *const words[16] = {
	    "acme",  "blue", "cedar", "delta", "ember",	    "fjord", "grove", "harbor",
	    "indigo", "jade", "kite",  "lumen", "maple", "northwind", "orbit", "pixel"};
	const char *w = words[bench_mix32(i) & 15];
	size_t n = strlen(w);
	memcpy(out, w, n);
	out[n++] = '-';
	char tmp[8];
	size_t k = 0;
	uint32_t v = i;
	do {
		tmp[k++] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
		v /= 36;
	} while (v);
	while (k)
		out[n++] = tmp[--k];
	out[n] = '\0';
	return n;
}

#endif
