/* switchboard tenants: the tenant registry in the store. A change is
 * committed with its version, then the running server is told (POST
 * /v1/sync, sb_cli_notify), so that it is served when the command returns;
 * the server's store poll (sb_store_changed) catches what it was not told. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli/cli.h"
#include "store/store.h"

static const char usage_tenants[] =
    "usage: switchboard tenants COMMAND [SLUG] [OPTIONS]\n"
    "\n"
    "Manage the tenants served at {slug}.<zone> by the tenant-aware service. They\n"
    "are kept in the store (<data_dir>/switchboard.db); a running server picks\n"
    "changes up by itself. Static tenants of the declaration ([tenants] static)\n"
    "are listed too; they can be suspended but not removed. The store is this\n"
    "machine's: with SWITCHBOARD_ADMIN_URL set, tenant commands are refused.\n"
    "\n"
    "commands:\n"
    "  add SLUG [--name NAME] [--settings JSON]   register an active tenant\n"
    "  suspend SLUG                               stop serving a tenant, keep its record\n"
    "  resume SLUG                                serve a suspended tenant again\n"
    "  remove SLUG                                delete a tenant\n"
    "  set SLUG [--name NAME] [--settings JSON]   change a tenant's name or settings\n"
    "  list [--json]                              every tenant (SLUG STATUS NAME)\n"
    "  show SLUG [--json]                         one tenant\n"
    "\n"
    "options of every command:\n"
    "  -c, --config PATH  switchboard.toml or a directory that holds one (default: .)\n"
    "  --data DIR         data directory (default: data_dir of the declaration)\n"
    "\n"
    "Exit status: 0 done; 1 not found, already exists, invalid slug or settings;\n"
    "2 usage, load or store error. Run 'switchboard tenants COMMAND --help' for details.\n";

static const char usage_common[] =
    "  -c, --config PATH  switchboard.toml or a directory that holds one (default: .)\n"
    "  --data DIR         data directory (default: data_dir of the declaration)\n";

enum {
	OPT_NAME = 1 << 0,
	OPT_SETTINGS = 1 << 1,
	OPT_JSON = 1 << 2,
};

struct topts {
	const char *config;
	const char *data;
	const char *name;
	const char *settings;
	bool json;
	bool help;
	unsigned given; /* OPT_* seen */
	const char *slug;
};

struct ctx {
	const struct cmd *cmd;
	struct topts o;
	sb_loaded l;
	sb_store *st;
	char done[160]; /* printed once the change is committed */
};

struct cmd {
	const char *name;
	const char *usage;
	unsigned allowed; /* OPT_* */
	bool slug;	  /* takes one SLUG argument */
	int (*run)(struct ctx *c);
};

/* ---- helpers ----------------------------------------------------------- */

static bool is_static(const sb_decl *decl, const char *slug)
{
	for (size_t i = 0; i < decl->nstatic_tenants; i++)
		if (strcmp(decl->static_tenants[i], slug) == 0)
			return true;
	return false;
}

/* The model's verdict on a slug: 0, or 1 after printing why it is invalid. */
static int slug_invalid(const struct ctx *c, const char *slug)
{
	const char *why = NULL;
	if (sb_model_slug_check(c->l.model, slug, strlen(slug), &why) == 0)
		return 0;
	char buf[SB_CLI_SHOWN_SIZE];
	fprintf(stderr, "switchboard: '%s' is not a valid tenant slug: %s\n",
		sb_cli_shown(slug, buf, sizeof(buf)), why);
	return 1;
}

/*
 * A slug whose host something else answers is refused, though valid: a
 * route's exact host (requests would go to that deployment, never to the
 * tenant) or the name of a static A, AAAA or CNAME record (the DNS build
 * would refuse the tenant's address record there, and with it every later
 * change). Returns 0, or 1 with the reason printed.
 */
static int slug_taken(const struct ctx *c, const char *slug)
{
	const sb_decl *decl = c->l.decl;
	size_t sl = strlen(slug);
	for (size_t z = 0; z < decl->nzones; z++) {
		const sb_zone_decl *zd = &decl->zones[z];
		char host[600];
		int hl = snprintf(host, sizeof(host), "%s.%s", slug, zd->name);
		if (hl < 0 || (size_t)hl >= sizeof(host))
			continue;
		sb_route_match m;
		if (sb_route_lookup(c->l.routes, NULL, host, (size_t)hl, "/", 1, &m) == 0 &&
		    !m.tenant && m.deployment) {
			fprintf(stderr,
				"switchboard: tenant '%s' cannot be added: %s is routed to %s "
				"(route \"%s\", %s:%d:%d)\n",
				slug, host, m.deployment->name, m.route ? m.route->pattern : "?",
				m.route && m.route->file ? m.route->file : "?",
				m.route ? m.route->line : 0, m.route ? m.route->col : 0);
			return 1;
		}
		for (size_t i = 0; i < zd->nrecords; i++) {
			const sb_record_decl *rec = &zd->records[i];
			const char *t = rec->type ? rec->type : "", *n = rec->name ? rec->name : "";
			if (strcasecmp(t, "A") != 0 && strcasecmp(t, "AAAA") != 0 &&
			    strcasecmp(t, "CNAME") != 0)
				continue;
			size_t nl = strlen(n);
			if (nl && n[nl - 1] == '.')
				nl--; /* absolute: the host itself */
			bool same = (nl == sl && strncasecmp(n, slug, sl) == 0) ||
				    (nl == (size_t)hl && strncasecmp(n, host, nl) == 0);
			if (!same)
				continue;
			fprintf(
			    stderr,
			    "switchboard: tenant '%s' cannot be added: %s has a static %s record "
			    "(%s:%d:%d), and a tenant's host has the edge's addresses\n",
			    slug, host, t, decl->file, rec->line, rec->col);
			return 1;
		}
	}
	return 0;
}

/* Report a store failure for slug; returns the exit status (1 or 2). Not found
 * for an invalid slug is reported as the invalid slug it is. */
static int fail(const struct ctx *c, const char *slug, int r, const sb_diag *d)
{
	char buf[SB_CLI_SHOWN_SIZE];
	if (r == SB_ENOENT && slug_invalid(c, slug))
		return 1;
	if (r == SB_ENOENT || r == SB_EEXIST || d->file[0])
		sb_cli_print_diag(d); /* the message names the slug, or the database */
	else
		fprintf(stderr, "switchboard: tenant '%s': %s\n",
			sb_cli_shown(slug, buf, sizeof(buf)), d->msg);
	/* 1: what was asked cannot be done; 2: the store failed (docs) */
	return r == SB_ENOENT || r == SB_EEXIST || r == SB_EINVAL || r == SB_ETOOLONG ? 1 : 2;
}

/* What a change did, said once it is committed (sb_cli_tenants). */
static void done(struct ctx *c, const char *slug, const char *what)
{
	snprintf(c->done, sizeof(c->done), "switchboard: tenant '%s' %s\n", slug, what);
}

/* Store a record for a static tenant that has none (it is active). */
static int materialise_static(struct ctx *c, const char *slug, sb_diag *d)
{
	int r = sb_store_tenant_add(c->st, slug, NULL, NULL, d);
	return r == SB_EEXIST ? 0 : r;
}

static void time_text(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "%lld", (long long)t);
}

/* One tenant as the list and show commands see it. */
struct row {
	sb_tenant_rec rec; /* strings in the pool */
	bool stored;
	bool is_static;
};

static void row_json(sb_buf *b, const struct row *rw)
{
	const sb_tenant_rec *t = &rw->rec;
	sb_buf_adds(b, "{\"slug\": ");
	sb_buf_add_json_str(b, t->slug, strlen(t->slug));
	sb_buf_addf(b, ", \"status\": \"%s\", \"name\": ",
		    t->status == SB_TENANT_SUSPENDED ? "suspended" : "active");
	if (t->display_name)
		sb_buf_add_json_str(b, t->display_name, strlen(t->display_name));
	else
		sb_buf_adds(b, "null");
	sb_buf_addf(b, ", \"static\": %s, \"stored\": %s, \"settings\": %s",
		    rw->is_static ? "true" : "false", rw->stored ? "true" : "false",
		    t->settings_json);
	if (rw->stored)
		sb_buf_addf(b, ", \"created_at\": %lld, \"updated_at\": %lld}",
			    (long long)t->created_at, (long long)t->updated_at);
	else
		sb_buf_adds(b, ", \"created_at\": null, \"updated_at\": null}");
}

/* ---- add, suspend, resume, remove, set -------------------------------- */

static int cmd_add(struct ctx *c)
{
	const char *slug = c->o.slug;
	sb_diag d = {0};
	if (slug_invalid(c, slug) || slug_taken(c, slug))
		return 1;
	if (is_static(c->l.decl, slug)) {
		fprintf(stderr,
			"switchboard: tenant '%s' already exists: it is a static tenant of %s "
			"(use 'switchboard tenants set' to name it)\n",
			slug, c->l.decl->file);
		return 1;
	}
	int r = sb_store_tenant_add(c->st, slug, c->o.name, c->o.settings, &d);
	if (r < 0)
		return fail(c, slug, r, &d);
	done(c, slug, "added");
	if (!c->l.decl->tenant_service)
		fprintf(stderr,
			"switchboard: warning: %s names no tenant-aware service ([tenants] "
			"service), so tenants are not served\n",
			c->l.decl->file);
	return 0;
}

static int set_status(struct ctx *c, sb_tenant_status want)
{
	const char *slug = c->o.slug;
	const char *word = want == SB_TENANT_SUSPENDED ? "suspended" : "active";
	sb_diag d = {0};
	sb_tenant_rec rec;
	int r = sb_store_tenant_get(c->st, slug, &rec, &d);
	sb_tenant_status was = rec.status;
	sb_store_tenant_rec_clear(&rec);
	if (r == SB_ENOENT && is_static(c->l.decl, slug)) {
		was = SB_TENANT_ACTIVE;
		if (want != was)
			r = materialise_static(c, slug, &d);
		else
			r = 0;
	}
	if (r < 0)
		return fail(c, slug, r, &d);
	if (was == want) {
		printf("switchboard: tenant '%s' is already %s\n", slug, word);
		return 0;
	}
	if ((r = sb_store_tenant_set_status(c->st, slug, want, &d)) < 0)
		return fail(c, slug, r, &d);
	done(c, slug, want == SB_TENANT_SUSPENDED ? "suspended" : "resumed");
	return 0;
}

static int cmd_suspend(struct ctx *c)
{
	return set_status(c, SB_TENANT_SUSPENDED);
}

static int cmd_resume(struct ctx *c)
{
	return set_status(c, SB_TENANT_ACTIVE);
}

static int cmd_remove(struct ctx *c)
{
	const char *slug = c->o.slug;
	sb_diag d = {0};
	if (is_static(c->l.decl, slug)) {
		fprintf(stderr,
			"switchboard: tenant '%s' is a static tenant of %s and cannot be removed: "
			"delete it from [tenants] static there, or suspend it\n",
			slug, c->l.decl->file);
		return 1;
	}
	int r = sb_store_tenant_remove(c->st, slug, &d);
	if (r < 0)
		return fail(c, slug, r, &d);
	done(c, slug, "removed");
	return 0;
}

static int cmd_set(struct ctx *c)
{
	const char *slug = c->o.slug;
	sb_diag d = {0};
	int r = sb_store_tenant_update(c->st, slug, c->o.name, c->o.settings, &d);
	if (r == SB_ENOENT && is_static(c->l.decl, slug)) {
		/* a static tenant gets a record; a concurrent one is updated */
		r = sb_store_tenant_add(c->st, slug, c->o.name, c->o.settings, &d);
		if (r == SB_EEXIST)
			r = sb_store_tenant_update(c->st, slug, c->o.name, c->o.settings, &d);
	}
	if (r < 0)
		return fail(c, slug, r, &d);
	done(c, slug, "updated");
	return 0;
}

/* ---- list, show -------------------------------------------------------- */

struct rows {
	struct row *v;
	size_t n, cap;
	sb_pool *pool;
};

static struct row *rows_add(struct rows *rs)
{
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 16;
		rs->v = sb_xrealloc(rs->v, rs->cap * sizeof(*rs->v));
	}
	struct row *rw = &rs->v[rs->n++];
	memset(rw, 0, sizeof(*rw));
	return rw;
}

static int collect_row(void *ctx, const sb_tenant_rec *rec)
{
	struct rows *rs = ctx;
	struct row *rw = rows_add(rs);
	rw->rec = *rec;
	rw->rec.display_name =
	    rec->display_name ? sb_pool_strdup(rs->pool, rec->display_name) : NULL;
	rw->rec.settings_json = sb_pool_strdup(rs->pool, rec->settings_json);
	rw->stored = true;
	return 0;
}

static int row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct row *)a)->rec.slug, ((const struct row *)b)->rec.slug);
}

/* Stored tenants plus the declaration's static ones, ordered by slug. */
static int gather(struct ctx *c, struct rows *rs, sb_diag *d)
{
	int r = c->st ? sb_store_tenant_list(c->st, collect_row, rs, d) : 0;
	if (r < 0)
		return r;
	size_t nstored = rs->n;
	const sb_decl *decl = c->l.decl;
	for (size_t i = 0; i < decl->nstatic_tenants; i++) {
		const char *s = decl->static_tenants[i];
		struct row *found = NULL;
		for (size_t j = 0; j < nstored && !found; j++)
			if (strcmp(rs->v[j].rec.slug, s) == 0)
				found = &rs->v[j];
		if (found) {
			found->is_static = true;
			continue;
		}
		struct row *rw = rows_add(rs);
		snprintf(rw->rec.slug, sizeof(rw->rec.slug), "%s", s);
		rw->rec.status = SB_TENANT_ACTIVE;
		rw->rec.settings_json = "{}";
		rw->is_static = true;
	}
	if (rs->n)
		qsort(rs->v, rs->n, sizeof(*rs->v), row_cmp);
	return 0;
}

static const char *name_text(const struct row *rw, char *buf, size_t size)
{
	const char *name = rw->rec.display_name;
	if (!rw->is_static)
		return name ? name : "-";
	if (!name)
		return "(static)";
	snprintf(buf, size, "%s (static)", name);
	return buf;
}

static int cmd_list(struct ctx *c)
{
	sb_diag d = {0};
	struct rows rs = {.pool = sb_pool_new(0)};
	int r = gather(c, &rs, &d);
	if (r < 0) {
		sb_cli_print_diag(&d);
		r = 2; /* the store failed (docs) */
		goto out;
	}
	if (c->o.json) {
		sb_buf b;
		sb_buf_init(&b);
		sb_buf_addc(&b, '[');
		for (size_t i = 0; i < rs.n; i++) {
			sb_buf_adds(&b, i ? ",\n " : "\n ");
			row_json(&b, &rs.v[i]);
		}
		sb_buf_adds(&b, rs.n ? "\n]\n" : "]\n");
		fputs(b.data, stdout);
		sb_buf_free(&b);
	} else {
		int ws = 4;
		for (size_t i = 0; i < rs.n; i++)
			if ((int)strlen(rs.v[i].rec.slug) > ws)
				ws = (int)strlen(rs.v[i].rec.slug);
		printf("%-*s  %-9s  %s\n", ws, "SLUG", "STATUS", "NAME");
		char buf[512];
		for (size_t i = 0; i < rs.n; i++)
			printf("%-*s  %-9s  %s\n", ws, rs.v[i].rec.slug,
			       rs.v[i].rec.status == SB_TENANT_SUSPENDED ? "suspended" : "active",
			       name_text(&rs.v[i], buf, sizeof(buf)));
	}
	r = 0;
out:
	free(rs.v);
	sb_pool_free(rs.pool);
	return r;
}

static int cmd_show(struct ctx *c)
{
	const char *slug = c->o.slug;
	sb_diag d = {0};
	struct row rw;
	memset(&rw, 0, sizeof(rw));
	int r = c->st ? sb_store_tenant_get(c->st, slug, &rw.rec, &d)
		      : sb_diag_setc(&d, SB_ENOENT, "", 0, 0, "tenant '%s' not found", slug);
	rw.stored = r == 0;
	rw.is_static = is_static(c->l.decl, slug);
	if (r == SB_ENOENT && rw.is_static) {
		snprintf(rw.rec.slug, sizeof(rw.rec.slug), "%s", slug);
		rw.rec.status = SB_TENANT_ACTIVE;
		rw.rec.settings_json = sb_xstrdup("{}");
		r = 0;
	}
	if (r < 0)
		return fail(c, slug, r, &d);
	if (c->o.json) {
		sb_buf b;
		sb_buf_init(&b);
		row_json(&b, &rw);
		sb_buf_addc(&b, '\n');
		fputs(b.data, stdout);
		sb_buf_free(&b);
	} else {
		char created[64] = "-", updated[64] = "-";
		if (rw.stored) {
			time_text(rw.rec.created_at, created, sizeof(created));
			time_text(rw.rec.updated_at, updated, sizeof(updated));
		}
		printf("slug      %s\n", rw.rec.slug);
		printf("status    %s\n",
		       rw.rec.status == SB_TENANT_SUSPENDED ? "suspended" : "active");
		printf("name      %s\n", rw.rec.display_name ? rw.rec.display_name : "-");
		if (rw.is_static)
			printf("static    yes (%s)\n", c->l.decl->file);
		else
			printf("static    no\n");
		printf("settings  %s\n", rw.rec.settings_json);
		printf("created   %s\n", created);
		printf("updated   %s\n", updated);
	}
	sb_store_tenant_rec_clear(&rw.rec);
	return 0;
}

/* ---- dispatch ---------------------------------------------------------- */

static const char usage_add[] =
    "usage: switchboard tenants add SLUG [--name NAME] [--settings JSON] [-c PATH] "
    "[--data DIR]\n"
    "\n"
    "Register a tenant, active: {SLUG}.<zone> is then served by the tenant-aware\n"
    "service. SLUG is one DNS label: a-z, 0-9 and '-' inside, at most 63 bytes, not\n"
    "a reserved label, without a staging or preview suffix.\n"
    "\n"
    "options:\n"
    "  --name NAME        display name\n"
    "  --settings JSON    a JSON object of tenant settings (default {})\n";

static const char usage_suspend[] =
    "usage: switchboard tenants suspend SLUG [-c PATH] [--data DIR]\n"
    "\n"
    "Stop serving a tenant and keep its record. A static tenant of the declaration\n"
    "is suspended by storing a suspended record for it.\n"
    "\n"
    "options:\n";

static const char usage_resume[] = "usage: switchboard tenants resume SLUG [-c PATH] [--data DIR]\n"
				   "\n"
				   "Serve a suspended tenant again.\n"
				   "\n"
				   "options:\n";

static const char usage_remove[] =
    "usage: switchboard tenants remove SLUG [-c PATH] [--data DIR]\n"
    "\n"
    "Delete a tenant's record. Static tenants of the declaration cannot be removed\n"
    "(delete them from [tenants] static, or suspend them).\n"
    "\n"
    "options:\n";

static const char usage_set[] =
    "usage: switchboard tenants set SLUG [--name NAME] [--settings JSON] [-c PATH] "
    "[--data DIR]\n"
    "\n"
    "Change a tenant's display name (\"\" removes it) or replace its settings.\n"
    "A static tenant of the declaration gets a stored record.\n"
    "\n"
    "options:\n"
    "  --name NAME        display name\n"
    "  --settings JSON    a JSON object of tenant settings\n";

static const char usage_list[] =
    "usage: switchboard tenants list [--json] [-c PATH] [--data DIR]\n"
    "\n"
    "Print every tenant, stored and static, ordered by slug: SLUG STATUS NAME;\n"
    "static tenants are marked \"(static)\".\n"
    "\n"
    "options:\n"
    "  --json             one JSON array of objects: slug, status, name, static,\n"
    "                     stored, settings, created_at, updated_at (unix seconds,\n"
    "                     null when not stored)\n";

static const char usage_show[] =
    "usage: switchboard tenants show SLUG [--json] [-c PATH] [--data DIR]\n"
    "\n"
    "Print one tenant: status, display name, settings, times.\n"
    "\n"
    "options:\n"
    "  --json             one JSON object, as in 'tenants list --json'\n";

static const struct cmd cmds[] = {
    {"add", usage_add, OPT_NAME | OPT_SETTINGS, true, cmd_add},
    {"suspend", usage_suspend, 0, true, cmd_suspend},
    {"resume", usage_resume, 0, true, cmd_resume},
    {"remove", usage_remove, 0, true, cmd_remove},
    {"set", usage_set, OPT_NAME | OPT_SETTINGS, true, cmd_set},
    {"list", usage_list, OPT_JSON, false, cmd_list},
    {"show", usage_show, OPT_JSON, true, cmd_show},
};

enum { LONG_DATA = 256, LONG_NAME, LONG_SETTINGS, LONG_JSON };

static const char *opt_name(unsigned bit)
{
	return bit == OPT_NAME ? "--name" : bit == OPT_SETTINGS ? "--settings" : "--json";
}

static void print_usage(const struct cmd *cmd, FILE *f)
{
	fputs(cmd->usage, f);
	fputs(usage_common, f);
}

__attribute__((format(printf, 2, 3))) static int usage_error(const struct cmd *cmd, const char *fmt,
							     ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "switchboard tenants %s: ", cmd->name);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	print_usage(cmd, stderr);
	return 2;
}

/* The option getopt_long just refused, printable. */
static const char *opt_text(char **argv, char *buf)
{
	if (optopt > 0 && optopt < 256) {
		char o[3] = {'-', (char)optopt, '\0'};
		return sb_cli_shown(o, buf, SB_CLI_SHOWN_SIZE);
	}
	return sb_cli_shown(argv[optind - 1], buf, SB_CLI_SHOWN_SIZE);
}

static int parse(const struct cmd *cmd, int argc, char **argv, struct topts *o)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"data", required_argument, NULL, LONG_DATA},
	    {"name", required_argument, NULL, LONG_NAME},
	    {"settings", required_argument, NULL, LONG_SETTINGS},
	    {"json", no_argument, NULL, LONG_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	char buf[SB_CLI_SHOWN_SIZE];
	memset(o, 0, sizeof(*o));
	o->config = ".";
	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->config = optarg; break;
		case 'h': o->help = true; break;
		case LONG_DATA: o->data = optarg; break;
		case LONG_NAME:
			o->name = optarg;
			o->given |= OPT_NAME;
			break;
		case LONG_SETTINGS:
			o->settings = optarg;
			o->given |= OPT_SETTINGS;
			break;
		case LONG_JSON:
			o->json = true;
			o->given |= OPT_JSON;
			break;
		case ':': return usage_error(cmd, "option '%s' needs a value", opt_text(argv, buf));
		default: return usage_error(cmd, "unknown option '%s'", opt_text(argv, buf));
		}
	}
	if (o->help)
		return 0;
	for (unsigned bit = OPT_NAME; bit <= OPT_JSON; bit <<= 1)
		if ((o->given & bit) && !(cmd->allowed & bit))
			return usage_error(cmd, "%s does not apply here", opt_name(bit));
	int nargs = argc - optind;
	if (cmd->slug && nargs == 0)
		return usage_error(cmd, "expected a SLUG");
	if (nargs > (cmd->slug ? 1 : 0))
		return usage_error(
		    cmd, "unexpected argument '%s'",
		    sb_cli_shown(argv[optind + (cmd->slug ? 1 : 0)], buf, sizeof(buf)));
	if (cmd->slug)
		o->slug = argv[optind];
	if (cmd->run == cmd_set && !o->name && !o->settings)
		return usage_error(cmd, "nothing to set: give --name and/or --settings");
	return 0;
}

int sb_cli_tenants(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_tenants, stderr);
		return 2;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
		fputs(usage_tenants, stdout);
		return 0;
	}
	const struct cmd *cmd = NULL;
	for (size_t i = 0; i < SB_ARRAY_LEN(cmds) && !cmd; i++)
		if (strcmp(cmds[i].name, sub) == 0)
			cmd = &cmds[i];
	if (!cmd) {
		const char *names[SB_ARRAY_LEN(cmds)];
		for (size_t i = 0; i < SB_ARRAY_LEN(cmds); i++)
			names[i] = cmds[i].name;
		sb_cli_unknown("switchboard tenants", sub, names, SB_ARRAY_LEN(names));
		fprintf(stderr, "\n%s", usage_tenants);
		return 2;
	}
	struct ctx c;
	memset(&c, 0, sizeof(c));
	c.cmd = cmd;
	int r = parse(cmd, argc - 1, argv + 1, &c.o);
	if (r)
		return r;
	if (c.o.help) {
		print_usage(cmd, stdout);
		return 0;
	}
	const char *url = getenv("SWITCHBOARD_ADMIN_URL");
	if (url && *url) {
		/* the admin API has no tenant endpoint: a tenant command works on
		 * the store of this machine, which a server reached by URL does not
		 * read (a CI runner's store is its own), so it would report a
		 * change, or a listing, the edge never sees */
		char buf[SB_CLI_SHOWN_SIZE];
		fprintf(stderr,
			"switchboard tenants %s: SWITCHBOARD_ADMIN_URL is set (%s), but tenant "
			"commands do not go through the admin API: they read and write the "
			"store (<data_dir>/switchboard.db) of this machine. Run them on the "
			"edge's host, with SWITCHBOARD_ADMIN_URL unset\n",
			cmd->name, sb_cli_shown(url, buf, sizeof(buf)));
		return 2;
	}
	if (c.o.settings) {
		/* before anything is loaded: the reason names jansson's position */
		sb_diag d = {0};
		if (sb_store_settings_check(c.o.settings, NULL, &d) < 0) {
			char buf[SB_CLI_SHOWN_SIZE];
			fprintf(stderr, "switchboard: tenant '%s': %s\n",
				sb_cli_shown(c.o.slug, buf, sizeof(buf)), d.msg);
			return 1;
		}
	}
	sb_diag d = {0};
	if (sb_cli_load(c.o.config, c.o.data, &c.l, &d) < 0) {
		sb_cli_print_diag(&d);
		return 2;
	}
	const char *dir = c.o.data ? c.o.data : c.l.decl->data_dir;
	bool writes = strcmp(cmd->name, "list") != 0 && strcmp(cmd->name, "show") != 0;
	/* reading creates nothing: no store yet means no stored tenant */
	int sr = writes ? sb_store_open(dir, &c.st, &d)
			: sb_cli_store_read(dir, c.o.data != NULL, &c.st, &d);
	if (sr < 0) {
		sb_cli_print_diag(&d);
		r = 2;
		goto out;
	}
	/* a change and its version commit together; then the running server
	 * is told, so that the change is served when this command returns */
	if (writes && sb_store_begin(c.st, &d) < 0) {
		sb_cli_print_diag(&d);
		r = 2;
		goto out;
	}
	r = cmd->run(&c);
	if (!writes && r == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
		/* a listing redirected to a full disk is a failure, not an
		 * empty file and exit 0 */
		fprintf(stderr, "switchboard: cannot write the output: %s\n", strerror(errno));
		r = 2;
	}
	if (writes && r == 0) {
		char *line = sb_cli_command_line(argc, argv);
		char summary[160];
		snprintf(summary, sizeof(summary), "tenant %s: %s", c.o.slug ? c.o.slug : "",
			 cmd->name);
		if (sb_store_version_add(c.st, line, summary, NULL, NULL, &d) < 0 ||
		    sb_store_commit(c.st, &d) < 0) {
			sb_cli_print_diag(&d);
			r = 2;
		} else {
			fputs(c.done, stdout);
		}
		free(line);
	}
	if (writes) {
		sb_store_rollback(c.st);
		if (r == 0)
			sb_cli_notify(dir);
	}
out:
	sb_store_close(c.st);
	sb_cli_unload(&c.l);
	return r;
}
