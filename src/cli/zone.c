/* switchboard zone export: the derived DNS zone as a master file. The
 * tenants come from the store as the server would see them, so the file is
 * what Switchboard answers; reading never creates the store. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "dns/export.h"
#include "dns/zone.h"
#include "http/edge.h"
#include "store/store.h"

static const char usage_zone[] =
    "usage: switchboard zone export -c PATH [--data DIR] [--serial N] ZONE\n"
    "\n"
    "Print the DNS zone Switchboard derives for ZONE as an RFC 1035 master file\n"
    "that NSD and Knot load unchanged: SOA, NS and glue, the zone's addresses for\n"
    "every routed host and every active tenant, and the static records.\n"
    "  -c, --config PATH  switchboard.toml or a directory that holds one (default: .)\n"
    "  --data DIR         data directory of the tenant store (default: data_dir of\n"
    "                     the declaration); without a store, static tenants only\n"
    "  --serial N         SOA serial, 0 to 4294967295 (default: the serial the edge\n"
    "                     on DIR serves for this content, or would give it next;\n"
    "                     the unix time when it has published none)\n"
    "Exit status: 0 printed; 1 no such zone; 2 usage or load error.\n";

enum { OPT_DATA = 256, OPT_SERIAL };

struct tenant {
	char *slug;
	int order; /* 0 static, 1 stored: the stored status wins */
	sb_tenant_status status;
};

struct tenants {
	struct tenant *v;
	size_t n, cap;
};

static void tenant_push(struct tenants *t, const char *slug, int order, sb_tenant_status st)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->v = sb_xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	t->v[t->n++] = (struct tenant){sb_xstrdup(slug), order, st};
}

static int collect(void *ctx, const sb_tenant_rec *rec)
{
	tenant_push(ctx, rec->slug, 1, rec->status);
	return 0;
}

static int tenant_cmp(const void *a, const void *b)
{
	const struct tenant *x = a, *y = b;
	int c = strcmp(x->slug, y->slug);
	return c ? c : x->order - y->order;
}

/* Static tenants, then stored ones when the store exists. */
static int load_tenants(const sb_decl *decl, const char *dir, struct tenants *t, sb_diag *d)
{
	for (size_t i = 0; i < decl->nstatic_tenants; i++)
		tenant_push(t, decl->static_tenants[i], 0, SB_TENANT_ACTIVE);
	char db[4096];
	struct stat st;
	snprintf(db, sizeof(db), "%s/switchboard.db", dir);
	if (stat(db, &st) != 0)
		return 0;
	sb_store *s = NULL;
	int r = sb_store_open_ro(dir, &s, d);
	if (r == 0)
		r = sb_store_tenant_list(s, collect, t, d);
	sb_store_close(s);
	return r < 0 ? r : 0;
}

static int zone_export(const char *config, const char *data, uint32_t serial, bool have_serial,
		       const char *zone)
{
	int status = 2;
	sb_diag d = {0};
	sb_loaded l;
	struct tenants t = {0};
	const char **active = NULL;
	sb_dns_zones *z = NULL;
	sb_buf out;
	sb_buf_init(&out);
	if (sb_cli_load(config, data, &l, &d) < 0) {
		sb_cli_print_diag(&d);
		return 2;
	}
	if (load_tenants(l.decl, data ? data : l.decl->data_dir, &t, &d) < 0) {
		sb_cli_print_diag(&d);
		goto out;
	}
	if (t.n) /* qsort wants a non-NULL array even for none */
		qsort(t.v, t.n, sizeof(*t.v), tenant_cmp);
	active = sb_xcalloc(t.n + 1, sizeof(*active));
	size_t na = 0;
	for (size_t i = 0; i < t.n; i++) {
		bool last = i + 1 == t.n || strcmp(t.v[i].slug, t.v[i + 1].slug) != 0;
		if (last && t.v[i].status == SB_TENANT_ACTIVE)
			active[na++] = t.v[i].slug;
	}
	if (sb_dns_build_decl(l.decl, l.model, l.routes, active, na, serial, &z, &d) < 0) {
		sb_cli_print_diag(&d);
		goto out;
	}
	/* without --serial, the edge's own: what it published for this
	 * content, else what it would publish next (edge.c, dns_build) */
	for (size_t i = 0; !have_serial && i < sb_dns_zone_count(z); i++) {
		uint32_t old;
		uint64_t h;
		if (sb_edge_published_serial(data ? data : l.decl->data_dir, sb_dns_zone_name(z, i),
					     &old, &h) < 0)
			continue;
		sb_dns_zone_set_serial(
		    z, i, h == sb_dns_content_hash(z, i) ? old : sb_dns_serial_next(old, serial));
	}
	if (sb_dns_export(z, zone, &out) < 0) {
		char shown[SB_CLI_SHOWN_SIZE];
		fprintf(stderr, "switchboard zone export: '%s' is not a zone of %s (zones:",
			sb_cli_shown(zone, shown, sizeof(shown)), l.decl->file);
		for (size_t i = 0; i < sb_dns_zone_count(z); i++)
			fprintf(stderr, " %s", sb_dns_zone_name(z, i));
		fprintf(stderr, "%s)\n", sb_dns_zone_count(z) ? "" : " none");
		status = 1;
		goto out;
	}
	/* a write that fails is reported by main, as for every command */
	fwrite(out.data, 1, out.len, stdout);
	status = 0;
out:
	sb_buf_free(&out);
	sb_dns_free(z);
	free(active);
	for (size_t i = 0; i < t.n; i++)
		free(t.v[i].slug);
	free(t.v);
	sb_cli_unload(&l);
	return status;
}

int sb_cli_zone(int argc, char **argv)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
						 {"data", required_argument, NULL, OPT_DATA},
						 {"serial", required_argument, NULL, OPT_SERIAL},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_zone, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "export") != 0) {
		static const char *const subs[] = {"export"};
		sb_cli_unknown(argv[0], argv[1], subs, SB_ARRAY_LEN(subs));
		fprintf(stderr, "\n%s", usage_zone);
		return 2;
	}
	const char *config = ".", *data = NULL;
	uint32_t serial = (uint32_t)time(NULL);
	bool have_serial = false;
	argv[1] = "switchboard zone export"; /* getopt's messages name it */
	argc--;
	argv++;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		uint64_t v;
		switch (c) {
		case 'c': config = optarg; break;
		case OPT_DATA: data = optarg; break;
		case OPT_SERIAL:
			if (sb_parse_u64(optarg, strlen(optarg), UINT32_MAX, &v) < 0) {
				char shown[SB_CLI_SHOWN_SIZE];
				fprintf(stderr,
					"switchboard zone export: --serial: \"%s\" is not a number "
					"from 0 to 4294967295\n",
					sb_cli_shown(optarg, shown, sizeof(shown)));
				return 2;
			}
			serial = (uint32_t)v;
			have_serial = true;
			break;
		case 'h': fputs(usage_zone, stdout); return 0;
		default: fputs(usage_zone, stderr); return 2;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "switchboard zone export: expected one ZONE\n%s", usage_zone);
		return 2;
	}
	return zone_export(config, data, serial, have_serial, argv[optind]);
}
