/*
 * Route lookup benchmark (issue: core).
 *
 * Loads examples/revelations with 10,000 listed preview PRs, registers
 * 1,000,000 tenants, and times sb_route_lookup over a mixed list of 1,000,000
 * hosts against one lookup in a plain exact-match hash table holding every
 * routable host of the same universe. Targets: <= 3x the plain lookup,
 * <= 150 bytes per tenant, load + compile + 1M tenants < 1 s.
 *
 * Run from the repository root: build/bench/route_bench (or bench/route.sh,
 * or `make bench`). docs/benchmarks.md explains the figures.
 */
#include "common/sb.h"
#include "slugs.h"
#include "config/decl.h"
#include "model/model.h"
#include "route/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DECL_PATH "examples/revelations/switchboard.toml"
#define ZONE_SUFFIX ".revelations.studio"
#define ZONE_SUFFIX_LEN (sizeof(ZONE_SUFFIX) - 1)

#ifndef N_TENANTS /* -DN_TENANTS=1000u: a cache-resident variant, for analysis */
#define N_TENANTS 1000000u
#endif
#define N_PREVIEWS 10000u  /* listed PRs 1..N_PREVIEWS */
#define RULE_PR_MIN 20000u /* unlisted PRs, resolved by the naming rule */
#define RULE_PR_MAX 30000u
#define N_HOSTS 1000000u
#define ROUNDS 11
#define CAT_REPS 11
#define CAT_MAX 100000u	    /* hosts per category in the per-category pass */
#define GUARD_PER_CAT 2000u /* hosts per category checked before timing */
#define SEED 0x5b0a2d5eedULL

/* ---- host categories ---------------------------------------------------- */

enum cat {
	CAT_TENANT = 0,	 /* <registered slug>.revelations.studio */
	CAT_PREVIEW = 1, /* <label>-preview-N, N listed in [previews] */
	CAT_EXAMPLE = 2, /* the example's own production and staging hosts */
	CAT_RULE = 3,	 /* <label>-preview-N, N not listed: naming rule */
	CAT_UNKNOWN = 4, /* <valid but unregistered slug>.revelations.studio */
	CAT_COUNT = 5,
};

static const char *const cat_name[CAT_COUNT] = {"tenant", "listed_preview", "example",
						"rule_preview", "unknown_tenant"};
/* Share of the mixed list, in per mille: 70%, 10%, 5%, 5%, 10%. */
static const unsigned cat_permille[CAT_COUNT] = {700, 100, 50, 50, 100};

/* Service labels (first label of each production host) and their service. */
static const char *const labels[3] = {"codex", "api", "auth"};
static const char *const label_service[3] = {"codex-web", "stripe-webhook-handler", "auth-worker"};

/* The example's hosts: label, environment. */
static const struct {
	const char *host;
	const char *service;
	sb_env env;
} example_hosts[] = {
    {"codex.revelations.studio", "codex-web", SB_ENV_PRODUCTION},
    {"api.revelations.studio", "stripe-webhook-handler", SB_ENV_PRODUCTION},
    {"auth.revelations.studio", "auth-worker", SB_ENV_PRODUCTION},
    {"codex-staging.revelations.studio", "codex-web", SB_ENV_STAGING},
    {"api-staging.revelations.studio", "stripe-webhook-handler", SB_ENV_STAGING},
    {"auth-staging.revelations.studio", "auth-worker", SB_ENV_STAGING},
};
#define N_EXAMPLE SB_ARRAY_LEN(example_hosts)

/* ---- small helpers ------------------------------------------------------ */

static volatile uint64_t sink;

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t rng_state = SEED;

static uint64_t rng_next(void) /* splitmix64 */
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t rng_below(uint32_t n)
{
	return (uint32_t)(rng_next() % n);
}

static size_t put_u32(char *out, uint32_t v)
{
	char tmp[12];
	size_t k = 0;
	do {
		tmp[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < k; i++)
		out[i] = tmp[k - 1 - i];
	return k;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(const double *v, size_t n)
{
	double *c = sb_xmalloc(n * sizeof(*c));
	memcpy(c, v, n * sizeof(*c));
	qsort(c, n, sizeof(*c), cmp_double);
	double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
	free(c);
	return m;
}

static double vmin(const double *v, size_t n)
{
	double m = v[0];
	for (size_t i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static double vmax(const double *v, size_t n)
{
	double m = v[0];
	for (size_t i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

/* Resident set size in bytes, from /proc/self/statm. */
static size_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static _Noreturn void die(const char *what, const char *detail)
{
	fprintf(stderr, "route_bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(1);
}

/* ---- tenant slugs ------------------------------------------------------- */

/* made by bench_slug_make (slugs.h) */
struct slugs {
	char *buf; /* NUL-separated */
	uint32_t *off;
	uint8_t *len;
	size_t total;
};

static void slugs_make(struct slugs *s, uint32_t first, uint32_t count)
{
	s->buf = sb_xmalloc((size_t)count * 24);
	s->off = sb_xmalloc((size_t)count * sizeof(*s->off));
	s->len = sb_xmalloc((size_t)count);
	size_t o = 0;
	for (uint32_t i = 0; i < count; i++) {
		size_t n = bench_slug_make(first + i, s->buf + o);
		s->off[i] = (uint32_t)o;
		s->len[i] = (uint8_t)n;
		s->buf[o + n] = '\0';
		o += n + 1;
	}
	s->total = o;
}

/* ---- the host list ------------------------------------------------------ */

struct item {
	uint8_t cat;
	uint8_t label; /* previews: index into labels[]; example: into example_hosts[] */
	uint32_t a;    /* tenant: slug index; previews: PR; unknown: slug counter */
};

struct hostlist {
	char *buf; /* every host, NUL-terminated, back to back */
	uint32_t *off;
	uint8_t *len;
	struct item *items;
	size_t n;
};

static size_t item_host(const struct item *it, const struct slugs *ten, char *out)
{
	size_t n = 0;
	switch (it->cat) {
	case CAT_TENANT:
		memcpy(out, ten->buf + ten->off[it->a], ten->len[it->a]);
		n = ten->len[it->a];
		break;
	case CAT_UNKNOWN: n = bench_slug_make(it->a, out); break;
	case CAT_PREVIEW:
	case CAT_RULE: {
		const char *l = labels[it->label];
		n = strlen(l);
		memcpy(out, l, n);
		memcpy(out + n, "-preview-", 9);
		n += 9;
		n += put_u32(out + n, it->a);
		break;
	}
	case CAT_EXAMPLE: {
		const char *h = example_hosts[it->label].host;
		n = strlen(h);
		memcpy(out, h, n + 1);
		return n;
	}
	}
	memcpy(out + n, ZONE_SUFFIX, ZONE_SUFFIX_LEN + 1);
	return n + ZONE_SUFFIX_LEN;
}

static void hostlist_make(struct hostlist *hl, const struct slugs *ten)
{
	hl->n = N_HOSTS;
	hl->items = sb_xmalloc(hl->n * sizeof(*hl->items));
	size_t k = 0;
	for (int c = 0; c < CAT_COUNT; c++) {
		size_t cnt = (size_t)N_HOSTS * cat_permille[c] / 1000;
		for (size_t i = 0; i < cnt; i++) {
			struct item it = {.cat = (uint8_t)c};
			switch (c) {
			case CAT_TENANT: it.a = rng_below(N_TENANTS); break;
			case CAT_PREVIEW:
				it.label = (uint8_t)rng_below(3);
				it.a = 1 + rng_below(N_PREVIEWS);
				break;
			case CAT_EXAMPLE: it.label = (uint8_t)rng_below(N_EXAMPLE); break;
			case CAT_RULE:
				it.label = (uint8_t)rng_below(3);
				it.a = RULE_PR_MIN + rng_below(RULE_PR_MAX - RULE_PR_MIN + 1);
				break;
			case CAT_UNKNOWN: /* counters past the registered ones */
				it.a = N_TENANTS + rng_below(N_TENANTS);
				break;
			}
			hl->items[k++] = it;
		}
	}
	if (k != hl->n)
		die("category shares do not add up to the host count", NULL);
	for (size_t i = hl->n - 1; i > 0; i--) { /* Fisher-Yates, fixed seed */
		size_t j = rng_below((uint32_t)(i + 1));
		struct item t = hl->items[i];
		hl->items[i] = hl->items[j];
		hl->items[j] = t;
	}
	hl->buf = sb_xmalloc(hl->n * 64);
	hl->off = sb_xmalloc(hl->n * sizeof(*hl->off));
	hl->len = sb_xmalloc(hl->n);
	size_t o = 0;
	for (size_t i = 0; i < hl->n; i++) {
		size_t n = item_host(&hl->items[i], ten, hl->buf + o);
		hl->off[i] = (uint32_t)o;
		hl->len[i] = (uint8_t)n;
		o += n + 1;
	}
}

/* ---- baseline: a plain exact-match hash table ---------------------------- */

struct bslot {
	uint64_t hash;
	const char *key;
	uint32_t len;
	void *value;
};

struct btab {
	struct bslot *slots;
	size_t mask, count;
	char *keys; /* the table's own copy of every key */
	size_t keys_len;
};

static uint64_t fnv1a64(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void btab_put(struct btab *t, const char *key, uint32_t len, void *value)
{
	uint64_t h = fnv1a64(key, len);
	size_t i = h & t->mask;
	while (t->slots[i].key) {
		if (t->slots[i].hash == h && t->slots[i].len == len &&
		    memcmp(t->slots[i].key, key, len) == 0)
			die("baseline: duplicate key", key);
		i = (i + 1) & t->mask;
	}
	t->slots[i] = (struct bslot){.hash = h, .key = key, .len = len, .value = value};
	t->count++;
}

/* One lookup: hash + probe + memcmp. noinline so that both sides pay a call. */
__attribute__((noinline)) static void *btab_get(const struct btab *t, const char *key, uint32_t len)
{
	uint64_t h = fnv1a64(key, len);
	for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
		const struct bslot *sl = &t->slots[i];
		if (!sl->key)
			return NULL;
		if (sl->hash == h && sl->len == len && memcmp(sl->key, key, len) == 0)
			return sl->value;
	}
}

/* Every routable host of the list's universe: all tenant hosts, the listed
 * preview hosts of the three services and the example's hosts. */
static void btab_make(struct btab *t, const struct slugs *ten, char *values)
{
	size_t n = N_TENANTS + 3 * N_PREVIEWS + N_EXAMPLE;
	size_t cap = 16;
	while (cap < n * 2) /* load <= 0.5 */
		cap *= 2;
	t->slots = sb_xcalloc(cap, sizeof(*t->slots));
	t->mask = cap - 1;
	t->count = 0;
	t->keys = sb_xmalloc(n * 64);
	size_t o = 0;
	struct item it = {0};
	for (uint32_t i = 0; i < N_TENANTS; i++) {
		it = (struct item){.cat = CAT_TENANT, .a = i};
		size_t kl = item_host(&it, ten, t->keys + o);
		btab_put(t, t->keys + o, (uint32_t)kl, ten->buf + ten->off[i]);
		o += kl + 1;
	}
	for (uint32_t pr = 1; pr <= N_PREVIEWS; pr++)
		for (uint8_t l = 0; l < 3; l++) {
			it = (struct item){.cat = CAT_PREVIEW, .label = l, .a = pr};
			size_t kl = item_host(&it, ten, t->keys + o);
			btab_put(t, t->keys + o, (uint32_t)kl, values + CAT_PREVIEW);
			o += kl + 1;
		}
	for (uint8_t e = 0; e < N_EXAMPLE; e++) {
		it = (struct item){.cat = CAT_EXAMPLE, .label = e};
		size_t kl = item_host(&it, ten, t->keys + o);
		btab_put(t, t->keys + o, (uint32_t)kl, values + CAT_EXAMPLE);
		o += kl + 1;
	}
	t->keys_len = o;
}

/* ---- loading -------------------------------------------------------------- */

static int read_cb(void *ctx, const char *path, char **data, size_t *len, sb_diag *d)
{
	(void)ctx;
	return sb_file_read(path, data, len, d);
}

struct loaded {
	sb_decl *decl;
	sb_model *model;
	sb_route_table *rt;
	sb_tenants *tenants;
	double t_read, t_decl, t_model, t_compile, t_check, t_put;
	size_t rss_before_tenants, rss_after_tenants;
};

static void fail_diag(const char *step, int r, const sb_diag *d)
{
	char buf[2048];
	fprintf(stderr, "route_bench: %s failed (%s): %s\n", step, sb_strerror(r),
		sb_diag_format(d, buf, sizeof(buf)));
	exit(1);
}

static void load_all(struct loaded *L, const struct slugs *ten)
{
	sb_diag d;
	memset(&d, 0, sizeof(d));
	int r;

	double t0 = now_ns();
	char *text = NULL;
	size_t tlen = 0;
	if ((r = sb_file_read(DECL_PATH, &text, &tlen, &d)) < 0)
		fail_diag("reading " DECL_PATH " (run from the repository root)", r, &d);
	sb_buf b;
	sb_buf_init(&b);
	sb_buf_add(&b, text, tlen);
	sb_buf_adds(&b, "\n[previews]\nprs = [");
	for (uint32_t pr = 1; pr <= N_PREVIEWS; pr++) {
		char num[16];
		size_t nl = put_u32(num, pr);
		if (pr > 1)
			sb_buf_add(&b, ", ", 2);
		sb_buf_add(&b, num, nl);
	}
	sb_buf_adds(&b, "]\n");
	free(text);
	double t1 = now_ns();

	if ((r = sb_decl_load_text(DECL_PATH, b.data, b.len, read_cb, NULL, &L->decl, &d)) < 0)
		fail_diag("sb_decl_load_text", r, &d);
	double t2 = now_ns();
	if ((r = sb_model_build(L->decl, &L->model, &d)) < 0)
		fail_diag("sb_model_build", r, &d);
	double t3 = now_ns();
	sb_route_options opt = {.preview_rule = true};
	if ((r = sb_route_compile(L->model, &opt, &L->rt, &d)) < 0)
		fail_diag("sb_route_compile", r, &d);
	double t4 = now_ns();
	sb_buf_free(&b);

	/* Tenants: validate every slug as a registry load would, then insert. */
	for (uint32_t i = 0; i < N_TENANTS; i++) {
		const char *why = NULL;
		if (sb_model_slug_check(L->model, ten->buf + ten->off[i], ten->len[i], &why) < 0)
			die("generated slug rejected", why);
	}
	double t5 = now_ns();
	L->rss_before_tenants = rss_bytes();
	double t5b = now_ns();
	L->tenants = sb_tenants_new(N_TENANTS + L->decl->nstatic_tenants);
	for (size_t i = 0; i < L->decl->nstatic_tenants; i++) {
		const char *s = L->decl->static_tenants[i];
		sb_tenants_put(L->tenants, s, strlen(s), SB_TENANT_ACTIVE);
	}
	for (uint32_t i = 0; i < N_TENANTS; i++)
		if (sb_tenants_put(L->tenants, ten->buf + ten->off[i], ten->len[i],
				   SB_TENANT_ACTIVE) < 0)
			die("sb_tenants_put failed", ten->buf + ten->off[i]);
	double t6 = now_ns();
	L->rss_after_tenants = rss_bytes();

	L->t_read = t1 - t0;
	L->t_decl = t2 - t1;
	L->t_model = t3 - t2;
	L->t_compile = t4 - t3;
	L->t_check = t5 - t4;
	L->t_put = t6 - t5b;
}

/* ---- correctness guard ---------------------------------------------------- */

static void guard_fail(const char *host, const char *what, int r, const sb_route_match *m)
{
	fprintf(stderr,
		"route_bench: wrong result for %s: %s (got %s, env %s, pr %u, tenant %s, "
		"reason %s)\n",
		host, what, r == 0 ? "routed" : sb_strerror(r), sb_env_name(m->env), m->pr,
		m->tenant ? m->tenant : "-", m->reason ? m->reason : "-");
	exit(1);
}

static void guard(const struct loaded *L, const struct hostlist *hl, const struct btab *bt,
		  const struct slugs *ten)
{
	const sb_model *mo = L->model;
	size_t checked[CAT_COUNT] = {0};
	for (size_t i = 0; i < hl->n; i++) {
		const struct item *it = &hl->items[i];
		if (checked[it->cat] >= GUARD_PER_CAT)
			continue;
		checked[it->cat]++;
		const char *h = hl->buf + hl->off[i];
		sb_route_match m;
		int r = sb_route_lookup(L->rt, L->tenants, h, hl->len[i], "/", 1, &m);
		void *bv = btab_get(bt, h, hl->len[i]);
		const char *svc = r == 0 ? mo->services[m.service].name : "";
		switch (it->cat) {
		case CAT_TENANT: {
			const char *slug = ten->buf + ten->off[it->a];
			if (r != 0 || !m.tenant || strcmp(m.tenant, slug) != 0 ||
			    m.service != (size_t)mo->tenant_service || m.env != SB_ENV_PRODUCTION ||
			    !m.deployment)
				guard_fail(
				    h,
				    "expected the tenant-aware production deployment with the "
				    "tenant set",
				    r, &m);
			if (bv != slug)
				die("baseline missed a tenant host", h);
			break;
		}
		case CAT_UNKNOWN:
			if (r != SB_ENOTENANT)
				guard_fail(h, "expected SB_ENOTENANT", r, &m);
			if (bv)
				die("baseline found an unknown tenant host", h);
			break;
		case CAT_PREVIEW:
		case CAT_RULE: {
			bool listed = it->cat == CAT_PREVIEW;
			if (r != 0 || m.env != SB_ENV_PREVIEW || m.pr != it->a ||
			    strcmp(svc, label_service[it->label]) != 0 || m.derived == listed ||
			    (listed ? !m.deployment || m.deployment->pr != it->a
				    : m.deployment != NULL))
				guard_fail(h,
					   listed
					       ? "expected the listed preview deployment of this PR"
					       : "expected a preview derived by the naming rule",
					   r, &m);
			if (it->label == 0 && (!m.tenant || strcmp(m.tenant, "codex") != 0))
				guard_fail(h, "expected tenant codex on a codex preview", r, &m);
			if (listed != (bv != NULL))
				die(listed ? "baseline missed a listed preview host"
					   : "baseline found an unlisted preview host",
				    h);
			break;
		}
		case CAT_EXAMPLE:
			if (r != 0 || m.env != example_hosts[it->label].env ||
			    strcmp(svc, example_hosts[it->label].service) != 0 || !m.deployment)
				guard_fail(h, "expected the example's deployment", r, &m);
			if (!bv)
				die("baseline missed an example host", h);
			break;
		}
	}
	for (int c = 0; c < CAT_COUNT; c++)
		if (checked[c] == 0)
			die("guard: a category has no hosts", cat_name[c]);
}

/* ---- timed passes ---------------------------------------------------------- */

static double pass_sb(const struct loaded *L, const struct hostlist *hl)
{
	uint64_t acc = 0;
	sb_route_match m;
	double t0 = now_ns();
	for (size_t i = 0; i < hl->n; i++) {
		int r = sb_route_lookup(L->rt, L->tenants, hl->buf + hl->off[i], hl->len[i], "/", 1,
					&m);
		acc += (uint64_t)r + (uintptr_t)m.deployment + (uintptr_t)m.tenant + m.pr;
	}
	double t = now_ns() - t0;
	sink += acc;
	return t / (double)hl->n;
}

static double pass_base(const struct btab *bt, const struct hostlist *hl)
{
	uint64_t acc = 0;
	double t0 = now_ns();
	for (size_t i = 0; i < hl->n; i++)
		acc += (uintptr_t)btab_get(bt, hl->buf + hl->off[i], hl->len[i]);
	double t = now_ns() - t0;
	sink += acc;
	return t / (double)hl->n;
}

/* The first `max` hosts of category c, copied in list order into their own
 * contiguous buffer, so that a per-category pass reads its hosts sequentially
 * as the full pass does. */
static void hostlist_subset(const struct hostlist *hl, int c, size_t max, struct hostlist *out)
{
	memset(out, 0, sizeof(*out));
	out->buf = sb_xmalloc(max * 64);
	out->off = sb_xmalloc(max * sizeof(*out->off));
	out->len = sb_xmalloc(max);
	size_t o = 0;
	for (size_t i = 0; i < hl->n && out->n < max; i++) {
		if (hl->items[i].cat != c)
			continue;
		memcpy(out->buf + o, hl->buf + hl->off[i], (size_t)hl->len[i] + 1);
		out->off[out->n] = (uint32_t)o;
		out->len[out->n++] = hl->len[i];
		o += (size_t)hl->len[i] + 1;
	}
}

/* ---- report ----------------------------------------------------------------- */

#define MAX_FIGURES 64
static struct {
	char name[64];
	double value;
	const char *unit;
} figures[MAX_FIGURES];
static size_t nfigures;

static void figure(const char *name, double value, const char *unit)
{
	if (nfigures == MAX_FIGURES)
		die("too many figures", name);
	snprintf(figures[nfigures].name, sizeof(figures[nfigures].name), "%s", name);
	figures[nfigures].value = value;
	figures[nfigures].unit = unit;
	nfigures++;
}

static const char *verdict(bool ok)
{
	return ok ? "met" : "MISSED";
}

int main(void)
{
	struct slugs ten;
	slugs_make(&ten, 0, N_TENANTS);

	/* 1. Load the example with the previews, compile, register the tenants. */
	struct loaded L;
	memset(&L, 0, sizeof(L));
	load_all(&L, &ten);
	double t_total = L.t_read + L.t_decl + L.t_model + L.t_compile + L.t_check + L.t_put;

	/* 2. Memory. */
	size_t ntenants = sb_tenants_count(L.tenants);
	size_t tmem = sb_tenants_memory(L.tenants);
	size_t rmem = sb_route_memory(L.rt);
	size_t mmem = sb_pool_footprint(L.model->pool);
	double rss_per = (double)(L.rss_after_tenants - L.rss_before_tenants) / (double)ntenants;

	/* 3, 4. The host list and the baseline table. */
	struct hostlist hl;
	hostlist_make(&hl, &ten);
	static char values[CAT_COUNT];
	struct btab bt;
	btab_make(&bt, &ten, values);
	size_t bmem = (bt.mask + 1) * sizeof(struct bslot) + bt.keys_len;

	/* 6. Correctness guard. */
	guard(&L, &hl, &bt, &ten);

	/* 5. Timing: warm up, then ROUNDS rounds alternating which side goes first. */
	pass_sb(&L, &hl);
	pass_base(&bt, &hl);
	double sb_ns[ROUNDS], base_ns[ROUNDS], ratio[ROUNDS];
	for (int r = 0; r < ROUNDS; r++) {
		if (r % 2 == 0) {
			sb_ns[r] = pass_sb(&L, &hl);
			base_ns[r] = pass_base(&bt, &hl);
		} else {
			base_ns[r] = pass_base(&bt, &hl);
			sb_ns[r] = pass_sb(&L, &hl);
		}
		ratio[r] = sb_ns[r] / base_ns[r];
	}
	double sb_med = median(sb_ns, ROUNDS), base_med = median(base_ns, ROUNDS);

	/* Per-category pass: up to CAT_MAX hosts of each category, in list order. */
	double cat_sb[CAT_COUNT], cat_base[CAT_COUNT];
	size_t cat_n[CAT_COUNT];
	for (int c = 0; c < CAT_COUNT; c++) {
		struct hostlist sub;
		hostlist_subset(&hl, c, CAT_MAX, &sub);
		cat_n[c] = sub.n;
		double s[CAT_REPS], bb[CAT_REPS];
		pass_sb(&L, &sub);
		pass_base(&bt, &sub);
		for (int r = 0; r < CAT_REPS; r++) {
			if (r % 2 == 0) {
				s[r] = pass_sb(&L, &sub);
				bb[r] = pass_base(&bt, &sub);
			} else {
				bb[r] = pass_base(&bt, &sub);
				s[r] = pass_sb(&L, &sub);
			}
		}
		cat_sb[c] = median(s, CAT_REPS);
		cat_base[c] = median(bb, CAT_REPS);
		free(sub.buf);
		free(sub.off);
		free(sub.len);
	}

	/* 7. Report. */
	printf("Route lookup benchmark (issue: core)\n");
	printf("  declaration   %s + [previews] prs = [1..%u]\n", DECL_PATH, N_PREVIEWS);
	printf("  deployments   %zu, routes %zu, tenants %zu\n", L.model->ndeployments,
	       sb_route_count(L.rt), ntenants);
	printf("\nLoad (wall clock, CLOCK_MONOTONIC)\n");
	printf("  read + append previews   %9.2f ms\n", L.t_read / 1e6);
	printf("  sb_decl_load_text        %9.2f ms\n", L.t_decl / 1e6);
	printf("  sb_model_build           %9.2f ms\n", L.t_model / 1e6);
	printf("  sb_route_compile         %9.2f ms\n", L.t_compile / 1e6);
	printf("  sb_model_slug_check x 1M %9.2f ms\n", L.t_check / 1e6);
	printf("  sb_tenants_new + put     %9.2f ms\n", L.t_put / 1e6);
	printf("  total                    %9.2f ms   target < 1000 ms: %s\n", t_total / 1e6,
	       verdict(t_total < 1e9));
	printf("\nMemory\n");
	printf("  tenant set               %9zu bytes = %.1f B/tenant   target <= 150: %s\n", tmem,
	       (double)tmem / (double)ntenants, verdict((double)tmem / (double)ntenants <= 150));
	printf(
	    "    (slugs average %.1f bytes; sb_tenants_memory counts slots and the full capacity\n"
	    "     of the slug storage)\n",
	    (double)(ten.total - N_TENANTS) / N_TENANTS);
	printf("  RSS growth, tenants      %9zu bytes = %.1f B/tenant\n",
	       L.rss_after_tenants - L.rss_before_tenants, rss_per);
	printf("  route table              %9zu bytes (%zu routes incl. %u listed preview hosts)\n",
	       rmem, sb_route_count(L.rt), 3 * N_PREVIEWS);
	printf("  model pool               %9zu bytes\n", mmem);
	printf("  baseline table           %9zu bytes = %.1f B/host (slots + keys)\n", bmem,
	       (double)bmem / (double)bt.count);
	printf("\nLookup, %u mixed hosts, %d rounds (ns per lookup)\n", N_HOSTS, ROUNDS);
	printf("                     median      min      max\n");
	printf("  switchboard      %8.1f %8.1f %8.1f\n", sb_med, vmin(sb_ns, ROUNDS),
	       vmax(sb_ns, ROUNDS));
	printf("  baseline hash    %8.1f %8.1f %8.1f\n", base_med, vmin(base_ns, ROUNDS),
	       vmax(base_ns, ROUNDS));
	printf("  ratio per round  %8.2f %8.2f %8.2f\n", median(ratio, ROUNDS), vmin(ratio, ROUNDS),
	       vmax(ratio, ROUNDS));
	printf("  ratio of the medians %.2f   target <= 3: %s\n", sb_med / base_med,
	       verdict(sb_med / base_med <= 3.0));
	printf("\nPer category (median of %d passes over up to %u hosts each, ns per lookup)\n",
	       CAT_REPS, CAT_MAX);
	printf("  %-16s %6s %7s %9s %9s %7s\n", "category", "share", "hosts", "switchbd",
	       "baseline", "ratio");
	for (int c = 0; c < CAT_COUNT; c++)
		printf("  %-16s %5u%% %7zu %9.1f %9.1f %7.2f\n", cat_name[c], cat_permille[c] / 10,
		       cat_n[c], cat_sb[c], cat_base[c], cat_sb[c] / cat_base[c]);

	figure("route.load.read_ms", L.t_read / 1e6, "ms");
	figure("route.load.decl_ms", L.t_decl / 1e6, "ms");
	figure("route.load.model_ms", L.t_model / 1e6, "ms");
	figure("route.load.compile_ms", L.t_compile / 1e6, "ms");
	figure("route.load.slug_check_ms", L.t_check / 1e6, "ms");
	figure("route.load.tenants_put_ms", L.t_put / 1e6, "ms");
	figure("route.load.total_ms", t_total / 1e6, "ms");
	figure("route.mem.tenants_bytes_per_tenant", (double)tmem / (double)ntenants, "B");
	figure("route.mem.tenants_rss_bytes_per_tenant", rss_per, "B");
	figure("route.mem.tenants_bytes", (double)tmem, "B");
	figure("route.mem.table_bytes", (double)rmem, "B");
	figure("route.mem.model_bytes", (double)mmem, "B");
	figure("route.mem.baseline_bytes", (double)bmem, "B");
	figure("route.lookup.switchboard_ns_median", sb_med, "ns");
	figure("route.lookup.switchboard_ns_min", vmin(sb_ns, ROUNDS), "ns");
	figure("route.lookup.switchboard_ns_max", vmax(sb_ns, ROUNDS), "ns");
	figure("route.lookup.baseline_ns_median", base_med, "ns");
	figure("route.lookup.baseline_ns_min", vmin(base_ns, ROUNDS), "ns");
	figure("route.lookup.baseline_ns_max", vmax(base_ns, ROUNDS), "ns");
	figure("route.lookup.ratio", sb_med / base_med, "x");
	figure("route.lookup.ratio_round_median", median(ratio, ROUNDS), "x");
	figure("route.lookup.ratio_min", vmin(ratio, ROUNDS), "x");
	figure("route.lookup.ratio_max", vmax(ratio, ROUNDS), "x");
	for (int c = 0; c < CAT_COUNT; c++) {
		char name[64];
		snprintf(name, sizeof(name), "route.lookup.%s_ns", cat_name[c]);
		figure(name, cat_sb[c], "ns");
		snprintf(name, sizeof(name), "route.lookup.%s_baseline_ns", cat_name[c]);
		figure(name, cat_base[c], "ns");
	}
	printf("\n# machine-readable: name value unit\n");
	for (size_t i = 0; i < nfigures; i++)
		printf("%s %.2f %s\n", figures[i].name, figures[i].value, figures[i].unit);

	free(hl.buf);
	free(hl.off);
	free(hl.len);
	free(hl.items);
	free(bt.slots);
	free(bt.keys);
	sb_tenants_free(L.tenants);
	sb_route_free(L.rt);
	sb_model_free(L.model);
	sb_decl_free(L.decl);
	free(ten.buf);
	free(ten.off);
	free(ten.len);
	return 0;
}
