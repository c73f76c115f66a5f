/*
 * Response rate limiting (rrl.h). A fixed table of buckets, 4-way set
 * associative: a network finds its bucket in its set, or takes the least
 * recently used one there (a new bucket starts full, so an evicted network
 * loses nothing but its debt). Sets are guarded by striped mutexes: a check
 * is a few arithmetic operations under an uncontended lock. The table never
 * grows, whatever the number of sources: a flood of spoofed networks evicts
 * itself. The set is chosen by a hash keyed with a random seed per table:
 * with a known hash, a spoofer could compute networks that share a victim's
 * set and, interleaving a few queries from them, evict the victim's bucket
 * (which then starts full) as often as it liked.
 */
#include "dns/rrl.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "common/sb.h"

#define WAYS 4
#define LOCKS 64
#define MILLI 1000 /* tokens are thousandths of a response */

struct bucket {
	uint64_t k0, k1; /* the network: its masked address */
	uint64_t last_ms;
	int64_t tokens;	  /* thousandths of a response */
	uint32_t limited; /* responses over the rate, for slip */
	uint8_t family;	  /* 4 or 6 */
	bool used;
};

struct sb_dns_rrl {
	sb_dns_rrl_config c;
	struct bucket *b;
	size_t nsets; /* a power of two */
	uint64_t seed[2];
	pthread_mutex_t locks[LOCKS];
};

int sb_dns_rrl_config_check(const sb_dns_rrl_config *c, const char **why)
{
	if (c->ipv4_prefix > 32) {
		*why = "rrl ipv4_prefix is at most 32";
		return SB_EINVAL;
	}
	if (c->ipv6_prefix > 128) {
		*why = "rrl ipv6_prefix is at most 128";
		return SB_EINVAL;
	}
	if (c->responses_per_second > 1000000) {
		*why = "rrl responses_per_second is at most 1000000";
		return SB_EINVAL;
	}
	return 0;
}

sb_dns_rrl *sb_dns_rrl_new(const sb_dns_rrl_config *c)
{
	const char *why;
	if (!c || c->responses_per_second == 0 || sb_dns_rrl_config_check(c, &why) < 0)
		return NULL;
	sb_dns_rrl *r = sb_xcalloc(1, sizeof(*r));
	r->c = *c;
	if (!r->c.ipv4_prefix)
		r->c.ipv4_prefix = 24;
	if (!r->c.ipv6_prefix)
		r->c.ipv6_prefix = 56;
	size_t want = c->table_size ? c->table_size : 65536;
	size_t n = WAYS;
	while (n < want && n < ((size_t)1 << 30))
		n *= 2;
	r->nsets = n / WAYS;
	r->b = sb_xcalloc(n, sizeof(*r->b));
	if (getrandom(r->seed, sizeof(r->seed), 0) != (ssize_t)sizeof(r->seed)) {
		/* no entropy yet (early boot): worse than random, better than none */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		r->seed[0] = sb_hash_mix64((uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)r);
		r->seed[1] = sb_hash_mix64((uint64_t)ts.tv_sec ^ r->seed[0]);
	}
	for (int i = 0; i < LOCKS; i++)
		pthread_mutex_init(&r->locks[i], NULL);
	return r;
}

void sb_dns_rrl_free(sb_dns_rrl *r)
{
	if (!r)
		return;
	for (int i = 0; i < LOCKS; i++)
		pthread_mutex_destroy(&r->locks[i]);
	free(r->b);
	free(r);
}

/* The first `bits` bits of n bytes at p, big-endian, into two words. */
static void masked(const uint8_t *p, size_t n, uint32_t bits, uint64_t *k0, uint64_t *k1)
{
	uint8_t a[16] = {0};
	memcpy(a, p, n);
	for (size_t i = 0; i < 16; i++) {
		size_t lo = i * 8;
		if (bits <= lo)
			a[i] = 0;
		else if (bits < lo + 8)
			a[i] &= (uint8_t)(0xff00u >> (bits - lo));
	}
	*k0 = *k1 = 0;
	for (int i = 0; i < 8; i++) {
		*k0 = *k0 << 8 | a[i];
		*k1 = *k1 << 8 | a[8 + i];
	}
}

sb_dns_rrl_action sb_dns_rrl_check(sb_dns_rrl *r, const struct sockaddr *addr, uint64_t now_ms)
{
	if (!r || !addr)
		return SB_DNS_RRL_SEND;
	uint64_t k0, k1;
	uint8_t fam = 4;
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *a4 = (const struct sockaddr_in *)addr;
		masked((const uint8_t *)&a4->sin_addr, 4, r->c.ipv4_prefix, &k0, &k1);
	} else if (addr->sa_family == AF_INET6) {
		const uint8_t *p = ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
		if (memcmp(p, v4mapped, 12) == 0) {
			masked(p + 12, 4, r->c.ipv4_prefix, &k0, &k1);
		} else {
			masked(p, 16, r->c.ipv6_prefix, &k0, &k1);
			fam = 6;
		}
	} else {
		return SB_DNS_RRL_SEND;
	}
	uint64_t h = sb_hash_mix64(k0 ^ r->seed[0] ^ sb_hash_mix64(k1 ^ fam ^ r->seed[1]));
	size_t set = (size_t)h & (r->nsets - 1);
	pthread_mutex_t *lock = &r->locks[set & (LOCKS - 1)];
	const int64_t cap = (int64_t)r->c.responses_per_second * MILLI;
	sb_dns_rrl_action act = SB_DNS_RRL_SEND;

	pthread_mutex_lock(lock);
	struct bucket *s = &r->b[set * WAYS], *b = NULL, *victim = &s[0];
	for (int i = 0; i < WAYS && !b; i++) {
		if (s[i].used && s[i].k0 == k0 && s[i].k1 == k1 && s[i].family == fam)
			b = &s[i];
		else if (!s[i].used || (victim->used && s[i].last_ms < victim->last_ms))
			victim = &s[i];
	}
	if (!b) {
		b = victim;
		*b = (struct bucket){.k0 = k0,
				     .k1 = k1,
				     .last_ms = now_ms,
				     .tokens = cap,
				     .family = fam,
				     .used = true};
	}
	/* clocks of different threads may disagree by a little: never refill backwards */
	if (now_ms > b->last_ms) {
		uint64_t dt = now_ms - b->last_ms;
		int64_t add = dt > 1000 ? cap : (int64_t)dt * (int64_t)r->c.responses_per_second;
		b->tokens = b->tokens + add > cap ? cap : b->tokens + add;
		b->last_ms = now_ms;
	}
	if (b->tokens >= MILLI) {
		b->tokens -= MILLI;
	} else {
		b->limited++;
		act = r->c.slip && b->limited % r->c.slip == 0 ? SB_DNS_RRL_SLIP : SB_DNS_RRL_DROP;
	}
	pthread_mutex_unlock(lock);
	return act;
}
