/*
 * Tenant seeder for the HTTP benchmark (bench/http.sh; issue: serve HTTP).
 *
 *   build/bench/seed_tenants DECL DATA_DIR COUNT HOSTS_OUT
 *
 * Registers COUNT tenants in the store at DATA_DIR (sb_store_tenant_add, one
 * call per tenant: store.h has no batch or transaction call) and writes their
 * hosts, "<slug>.<zone>", one a line, to HOSTS_OUT. DECL is the switchboard.toml
 * (or its directory) the server will load: each slug is checked with
 * sb_model_slug_check against it first, so the store holds only tenants the
 * router accepts. Slugs are bench/slugs.h's ("harbor-2n9c"), the same as
 * route_bench.c's, counters 0 .. COUNT-1, deterministic.
 *
 * Prints "seeded COUNT tenants in MS ms" on stdout; exits non-zero on any
 * failure (an existing slug is a failure: seed a fresh data directory).
 */
#include "common/sb.h"
#include "slugs.h"
#include "config/decl.h"
#include "model/model.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int read_cb(void *ctx, const char *path, char **data, size_t *len, sb_diag *d)
{
	(void)ctx;
	return sb_file_read(path, data, len, d);
}

static _Noreturn void fail(const char *what, const sb_diag *d)
{
	char buf[2048];
	fprintf(stderr, "seed_tenants: %s: %s\n", what,
		d ? sb_diag_format(d, buf, sizeof(buf)) : "failed");
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: seed_tenants DECL DATA_DIR COUNT HOSTS_OUT\n");
		return 2;
	}
	const char *decl_arg = argv[1], *data = argv[2], *out = argv[4];
	char *end = NULL;
	unsigned long count = strtoul(argv[3], &end, 10);
	if (!end || *end || count > 10000000ul) {
		fprintf(stderr, "seed_tenants: COUNT must be 0 .. 10000000\n");
		return 2;
	}
	char path[4096];
	struct stat sbuf;
	if (stat(decl_arg, &sbuf) == 0 && S_ISDIR(sbuf.st_mode))
		snprintf(path, sizeof(path), "%s/switchboard.toml", decl_arg);
	else
		snprintf(path, sizeof(path), "%s", decl_arg);

	sb_diag d;
	memset(&d, 0, sizeof(d));
	sb_decl *decl = NULL;
	sb_model *model = NULL;
	sb_store *st = NULL;
	if (sb_decl_load(path, read_cb, NULL, &decl, &d) < 0)
		fail("loading the declaration", &d);
	if (sb_model_build(decl, &model, &d) < 0)
		fail("building the model", &d);
	if (decl->nzones < 1) {
		fprintf(stderr, "seed_tenants: the declaration has no zone\n");
		return 1;
	}
	const char *zone = decl->zones[0].name;
	if (sb_store_open(data, &st, &d) < 0)
		fail("opening the store", &d);
	FILE *f = fopen(out, "w");
	if (!f) {
		perror(out);
		return 1;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char slug[64];
	for (uint32_t i = 0; i < count; i++) {
		size_t n = bench_slug_make(i, slug);
		const char *why = NULL;
		if (sb_model_slug_check(model, slug, n, &why) < 0) {
			fprintf(stderr, "seed_tenants: slug '%s' rejected: %s\n", slug, why);
			return 1;
		}
		if (sb_store_tenant_add(st, slug, NULL, NULL, &d) < 0)
			fail(slug, &d);
		fprintf(f, "%s.%s\n", slug, zone);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (fclose(f) != 0) {
		perror(out);
		return 1;
	}
	sb_store_close(st);
	sb_model_free(model);
	sb_decl_free(decl);
	printf("seeded %lu tenants in %.0f ms\n", count,
	       (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return 0;
}
