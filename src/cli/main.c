/* switchboard: the command line. Exit status: 0 success; 1 the check failed
 * (a load error included, for check), the request is not routed, or a
 * change was refused; 2 usage or load error, or output that could not be
 * written. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cli.h"
#include "dns/zone.h"
#include "http/procs.h"
#include "route/check.h"

static const char usage_main[] =
    "usage: switchboard COMMAND [OPTIONS]\n"
    "\n"
    "One declaration (switchboard.toml plus the services' wrangler.toml files)\n"
    "becomes routes, tenants and the URLs services use to call each other.\n"
    "\n"
    "commands:\n"
    "  check    -c PATH [--data DIR]            check that every URL var and webhook is routed\n"
    "  routes   -c PATH [--env E] [--pr N] [--json]  print the derived route table\n"
    "  resolve  -c PATH HOST[/PATH] [--json]    show where a request goes, and why\n"
    "  serve    -c PATH [--data DIR] [--listen HOST:PORT] [--dns HOST:PORT] [--threads N]\n"
    "                                           run the edge\n"
    "  reload   -c PATH                         make the running edge re-read the declaration\n"
    "  tenants  add|suspend|resume|remove|set|list|show ...  the tenant registry\n"
    "  secret   -c PATH DEPLOYMENT              a deployment's signing secret(s)\n"
    "  deploy   -c PATH [--env E] [--name N] [--var K:V]... [--route P]...  deploy live\n"
    "  delete   -c PATH NAME                    remove one deployment\n"
    "  preview  create|delete|list -c PATH [--pr N] [--ttl 7d]  per-PR previews\n"
    "  versions -c PATH                         every change, newest first\n"
    "  rollback -c PATH [VERSION]               restore an earlier version\n"
    "  zone     export -c PATH ZONE [--serial N]  print a zone as the edge serves it\n"
    "  verify   -c PATH [--env E] [--pr N] [--json]  check DNS, routes, health, webhooks\n"
    "                                           and vars against the running edge\n"
    "  help COMMAND                             a command's options (as COMMAND --help)\n"
    "  --version                                print the version\n"
    "\n"
    "PATH is a switchboard.toml or a directory that holds one (default: .).\n"
    "Run 'switchboard COMMAND --help' for all of a command's options (--data DIR,\n"
    "the store's directory, among them) and its exit status.\n"
    "Exit status: 0 done; 1 the command's negative answer (check failed, not\n"
    "routed, change refused, ...); 2 usage or load error (check: 1, the check\n"
    "fails), or output that could not be written. Data goes to stdout, errors to\n"
    "stderr.\n";

static const char usage_check[] =
    "usage: switchboard check -c PATH [--data DIR]\n"
    "\n"
    "Load the declaration and check it: every var whose value is an URL on a\n"
    "declared zone must point at a host that a route serves in the same\n"
    "environment, every url_vars entry must be such an URL, and every webhook\n"
    "endpoint must be routed to its handler. Each violation is printed with its\n"
    "file, line and column, the var, the deployment and the host. A note on\n"
    "stderr names each production host that gets no staging or preview host\n"
    "(a zone's or a domain's apex, an xn-- label) unless a 'label' is declared.\n"
    "  -c, --config PATH  switchboard.toml or a directory that holds one (default: .)\n"
    "  --data DIR         the store whose live state (deploys, previews) is checked\n"
    "                     (default: the declaration's data_dir)\n"
    "Exit status: 0 consistent, 1 violations or a load error, 2 usage error.\n";

static const char usage_routes[] =
    "usage: switchboard routes -c PATH [--env ENV] [--pr N] [--json] [--data DIR]\n"
    "\n"
    "Print the route table: host, path, deployment, environment, upstream.\n"
    "  -c, --config PATH  switchboard.toml or a directory that holds one (default: .)\n"
    "  --env ENV          production, staging or preview (default: production and\n"
    "                     staging)\n"
    "  --pr N             the preview of pull request N (implies --env preview)\n"
    "  --json             one JSON array of route objects: host, path, pattern,\n"
    "                     deployment, service, environment, pr, tenant_host, upstream\n"
    "  --data DIR         the store whose live state (deploys, previews) is shown\n"
    "                     (default: the declaration's data_dir)\n"
    "Exit status: 0 printed, 2 usage or load error.\n";

static const char usage_resolve[] =
    "usage: switchboard resolve -c PATH HOST[/PATH] [--json] [--data DIR]\n"
    "\n"
    "Show which deployment and tenant a request for HOST/PATH reaches and which\n"
    "pattern won, or why it is not routed, as a server on the same data directory\n"
    "answers (its tenant registry included). HOST may carry a scheme and a port.\n"
    "  -c, --config PATH  switchboard.toml or a directory that holds one (default: .)\n"
    "  --json             one object: routed, deployment, service, environment, pr,\n"
    "                     tenant, pattern, upstream (null when unused) and reason\n"
    "  --data DIR         the store whose live state and tenants are read (default:\n"
    "                     data_dir)\n"
    "Exit status: 0 routed, 1 not routed, 2 usage or load error.\n";

struct opts {
	const char *config;
	const char *data;
	const char *env;
	const char *pr;
	bool json;
	bool help;
	int nargs;
	char **args;
};

/* Parse the options of check, routes or resolve: those in allow ("env pr
 * json data", space-separated; -c and --help go with every command). One
 * that the command does not take is refused, not ignored: `check --json`
 * would print text to a script that parses JSON. Returns 0, 1 after --help
 * (printed), or 2 after a usage error (printed). */
static int parse_opts(int argc, char **argv, struct opts *o, const char *usage, const char *allow)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
						 {"env", required_argument, NULL, 'e'},
						 {"pr", required_argument, NULL, 'p'},
						 {"json", no_argument, NULL, 'j'},
						 {"help", no_argument, NULL, 'h'},
						 {"data", required_argument, NULL, 'd'},
						 {NULL, 0, NULL, 0}};
	memset(o, 0, sizeof(*o));
	o->config = ".";
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "c:e:p:jhd:", longopts, NULL)) != -1) {
		const char *name = NULL;
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'd': o->data = optarg, name = "data"; break;
		case 'e': o->env = optarg, name = "env"; break;
		case 'p': o->pr = optarg, name = "pr"; break;
		case 'j': o->json = true, name = "json"; break;
		case 'h': o->help = true; break;
		default: fputs(usage, stderr); return 2;
		}
		if (name && !sb_cli_word_in(allow, name)) {
			fprintf(stderr, "%s: --%s does not apply to this command (see --help)\n",
				argv[0], name);
			return 2;
		}
	}
	if (o->help) {
		fputs(usage, stdout);
		return 1;
	}
	o->nargs = argc - optind;
	o->args = argv + optind;
	return 0;
}

static int load_or_fail(const struct opts *o, sb_loaded *l, int status)
{
	sb_diag d = {0};
	if (sb_cli_load(o->config, o->data, l, &d) < 0) {
		sb_cli_print_diag(&d);
		return status;
	}
	return 0;
}

/* ---- check ------------------------------------------------------------- */

/* A production host the naming rule gives no staging or preview host, when
 * a declared label would give it some (an apex, an encoded label): said on
 * stderr, once per host, so that a staging deployment without a host is
 * not a surprise. Wildcards and one-label hosts are never renamed, as
 * docs/routing.md says, and get no note. */
static void check_notes(const sb_model *m)
{
	for (size_t s = 0; s < m->nservices; s++) {
		const sb_deployment *prod = &m->deployments[m->services[s].deployment[0]];
		const sb_deployment *stg = &m->deployments[m->services[s].deployment[1]];
		bool staging_own = false; /* [env.staging] declares its routes */
		for (size_t i = 0; i < stg->nroutes; i++)
			staging_own |= !stg->routes[i].derived;
		for (size_t i = 0; i < prod->nroutes; i++) {
			const sb_route *r = &prod->routes[i];
			bool seen = false;
			for (size_t j = 0; j < i && !seen; j++)
				seen = strcmp(prod->routes[j].host, r->host) == 0;
			const char *why = r->host_wildcard || !strchr(r->host, '.') || seen
					      ? NULL
					      : sb_model_unrenamed(m, s, r->host);
			if (why)
				fprintf(stderr,
					"switchboard check: note: %s:%d:%d: host \"%s\" of %s gets "
					"no %s host: %s; a 'label' in its [[service]] names them\n",
					r->file, r->line, r->col, r->host, prod->name,
					staging_own ? "preview" : "staging or preview", why);
		}
	}
}

int sb_cli_check(int argc, char **argv)
{
	struct opts o;
	int r = parse_opts(argc, argv, &o, usage_check, "data");
	if (r)
		return r == 1 ? 0 : r;
	if (o.nargs) {
		sb_cli_unexpected("switchboard check", o.args[0], usage_check);
		return 2;
	}
	sb_loaded l;
	if ((r = load_or_fail(&o, &l, 1)))
		return r;
	/* the zones the edge would serve: a static record that does not parse,
	 * or a zone without addresses, stops `serve`, so it fails the check */
	if (l.decl->nzones) {
		sb_diag zd = {0};
		sb_dns_zones *z = NULL;
		int zr = sb_dns_build_decl(l.decl, l.model, l.routes,
					   (const char *const *)l.decl->static_tenants,
					   l.decl->nstatic_tenants, 1, &z, &zd);
		sb_dns_free(z);
		if (zr < 0) {
			sb_cli_print_diag(&zd);
			sb_cli_unload(&l);
			return 1;
		}
	}
	check_notes(l.model);
	sb_violation *v = NULL;
	size_t n = sb_check_run(l.model, l.routes, l.tenants, 1, &v);
	for (size_t i = 0; i < n; i++)
		printf("%s:%d:%d: %s\n", v[i].file, v[i].line, v[i].col, v[i].msg);
	size_t nvars = 0;
	for (size_t i = 0; i < l.model->ndeployments; i++)
		nvars += l.model->deployments[i].nvars;
	if (n)
		printf("check failed: %zu violation%s\n", n, n == 1 ? "" : "s");
	else
		printf("ok: %zu service%s, %zu deployment%s, %zu route%s, %zu var%s, %zu "
		       "webhook%s checked\n",
		       l.model->nservices, l.model->nservices == 1 ? "" : "s",
		       l.model->ndeployments, l.model->ndeployments == 1 ? "" : "s",
		       sb_route_count(l.routes), sb_route_count(l.routes) == 1 ? "" : "s", nvars,
		       nvars == 1 ? "" : "s", l.decl->nwebhooks, l.decl->nwebhooks == 1 ? "" : "s");
	free(v);
	sb_cli_unload(&l);
	return n ? 1 : 0;
}

/* ---- routes ------------------------------------------------------------ */

struct row {
	char host[300];
	char path[300];
	const char *deployment;
	const char *env;
	uint32_t pr;
	const char *pattern;
	const char *service;
	char upstream[512];
	bool tenant;
	bool custom_domain;
	const char *shadowed_by; /* a custom domain a route on its host and path beats */
};

/* The deployment whose route beats custom domain ro on its own host and
 * path (as in Cloudflare, docs/routing.md), or NULL. */
static const char *shadowed_by(const sb_route_table *rt, const sb_route *ro)
{
	if (!rt || !ro->custom_domain || ro->host_wildcard)
		return NULL;
	sb_route_match m;
	int r =
	    sb_route_lookup(rt, NULL, ro->host, strlen(ro->host), ro->path, strlen(ro->path), &m);
	if ((r < 0 && r != SB_ENOTENANT && r != SB_ESUSPENDED) || !m.route || m.route == ro ||
	    m.route->custom_domain || strcmp(m.route->host, ro->host) != 0 ||
	    strcmp(m.route->path, ro->path) != 0 || m.route->path_prefix != ro->path_prefix)
		return NULL;
	return m.deployment ? m.deployment->name : NULL;
}

static void row_from(struct row *rw, const sb_model *m, const sb_route_table *rt,
		     const sb_route *ro, const sb_deployment *dp, bool tenant)
{
	memset(rw, 0, sizeof(*rw));
	if (tenant)
		snprintf(rw->host, sizeof(rw->host), "{tenant}.%s", ro->host + 2);
	else
		snprintf(rw->host, sizeof(rw->host), "%s", ro->host);
	snprintf(rw->path, sizeof(rw->path), "%s%s", ro->path, ro->path_prefix ? "*" : "");
	rw->deployment = dp->name;
	rw->env = sb_env_name(dp->env);
	rw->pr = dp->pr;
	rw->pattern = ro->pattern;
	rw->service = m->services[dp->service].name;
	rw->tenant = tenant;
	rw->custom_domain = ro->custom_domain;
	rw->shadowed_by = shadowed_by(rt, ro);
	char buf[512];
	snprintf(rw->upstream, sizeof(rw->upstream), "%s",
		 sb_cli_upstream_text(dp->upstream, buf, sizeof(buf)));
}

static void print_rows(const struct row *rows, size_t n, bool json)
{
	if (json) {
		sb_buf b;
		sb_buf_init(&b);
		sb_buf_addc(&b, '[');
		for (size_t i = 0; i < n; i++) {
			const struct row *r = &rows[i];
			sb_buf_adds(&b, i ? ",\n {" : "\n {");
			sb_buf_adds(&b, "\"host\": ");
			sb_buf_add_json_str(&b, r->host, strlen(r->host));
			sb_buf_adds(&b, ", \"path\": ");
			sb_buf_add_json_str(&b, r->path, strlen(r->path));
			sb_buf_adds(&b, ", \"pattern\": ");
			sb_buf_add_json_str(&b, r->pattern, strlen(r->pattern));
			sb_buf_adds(&b, ", \"deployment\": ");
			sb_buf_add_json_str(&b, r->deployment, strlen(r->deployment));
			sb_buf_adds(&b, ", \"service\": ");
			sb_buf_add_json_str(&b, r->service, strlen(r->service));
			sb_buf_adds(&b, ", \"environment\": ");
			sb_buf_add_json_str(&b, r->env, strlen(r->env));
			if (r->pr)
				sb_buf_addf(&b, ", \"pr\": %u", r->pr);
			else
				sb_buf_adds(&b, ", \"pr\": null");
			sb_buf_addf(&b, ", \"tenant_host\": %s", r->tenant ? "true" : "false");
			sb_buf_addf(&b, ", \"custom_domain\": %s",
				    r->custom_domain ? "true" : "false");
			sb_buf_adds(&b, ", \"shadowed_by\": ");
			if (r->shadowed_by)
				sb_buf_add_json_str(&b, r->shadowed_by, strlen(r->shadowed_by));
			else
				sb_buf_adds(&b, "null");
			sb_buf_adds(&b, ", \"upstream\": ");
			if (strcmp(r->upstream, "-") == 0)
				sb_buf_adds(&b, "null");
			else
				sb_buf_add_json_str(&b, r->upstream, strlen(r->upstream));
			sb_buf_addc(&b, '}');
		}
		sb_buf_adds(&b, n ? "\n]\n" : "]\n");
		fputs(b.data, stdout);
		sb_buf_free(&b);
		return;
	}
	size_t wh = 4, wp = 4, wd = 10, we = 11;
	for (size_t i = 0; i < n; i++) {
		if (strlen(rows[i].host) > wh)
			wh = strlen(rows[i].host);
		if (strlen(rows[i].path) > wp)
			wp = strlen(rows[i].path);
		if (strlen(rows[i].deployment) > wd)
			wd = strlen(rows[i].deployment);
	}
	printf("%-*s  %-*s  %-*s  %-*s  %s\n", (int)wh, "HOST", (int)wp, "PATH", (int)wd,
	       "DEPLOYMENT", (int)we, "ENVIRONMENT", "UPSTREAM");
	for (size_t i = 0; i < n; i++) {
		printf("%-*s  %-*s  %-*s  %-*s  %s", (int)wh, rows[i].host, (int)wp, rows[i].path,
		       (int)wd, rows[i].deployment, (int)we, rows[i].env, rows[i].upstream);
		if (rows[i].shadowed_by)
			printf("  (custom domain: the route of %s takes it)", rows[i].shadowed_by);
		putchar('\n');
	}
}

int sb_cli_parse_pr(const char *s, uint32_t *pr)
{
	if (sb_model_pr_parse(s, strlen(s), pr) < 0) {
		char shown[SB_CLI_SHOWN_SIZE];
		fprintf(stderr,
			"switchboard: --pr: \"%s\" is not a pull request number (1 to 999999999, "
			"no leading zeros)\n",
			sb_cli_shown(s, shown, sizeof(shown)));
		return 2;
	}
	return 0;
}

int sb_cli_routes(int argc, char **argv)
{
	struct opts o;
	int r = parse_opts(argc, argv, &o, usage_routes, "env pr json data");
	if (r)
		return r == 1 ? 0 : r;
	if (o.nargs) {
		sb_cli_unexpected("switchboard routes", o.args[0], usage_routes);
		return 2;
	}
	sb_env env = SB_ENV_PRODUCTION;
	bool all = o.env == NULL && o.pr == NULL;
	if (o.env && sb_env_parse(o.env, &env) < 0) {
		char shown[SB_CLI_SHOWN_SIZE];
		fprintf(stderr,
			"switchboard routes: unknown environment '%s' (expected production, "
			"staging or preview)\n",
			sb_cli_shown(o.env, shown, sizeof(shown)));
		return 2;
	}
	uint32_t pr = 0;
	if (o.pr) {
		if ((r = sb_cli_parse_pr(o.pr, &pr)))
			return r;
		if (o.env && env != SB_ENV_PREVIEW) {
			fprintf(stderr,
				"switchboard routes: --pr goes with --env preview, not %s\n",
				o.env);
			return 2;
		}
		env = SB_ENV_PREVIEW;
	}
	sb_loaded l;
	if ((r = load_or_fail(&o, &l, 2)))
		return r;
	size_t ne;
	const sb_route_entry *e = sb_route_entries(l.routes, &ne);
	struct row *rows = sb_xcalloc(ne + 64, sizeof(*rows));
	size_t n = 0, cap = ne + 64;
	sb_pool *pool = sb_pool_new(0);
	bool pr_listed = false;
	for (size_t i = 0; i < ne; i++) {
		const sb_deployment *dp = e[i].deployment;
		bool want = all ? dp->env != SB_ENV_PREVIEW
				: dp->env == env && (env != SB_ENV_PREVIEW || !pr || dp->pr == pr);
		pr_listed |= dp->env == SB_ENV_PREVIEW && dp->pr == pr;
		if (want)
			row_from(&rows[n++], l.model, l.routes, e[i].route, dp, e[i].tenant_gated);
	}
	if (env == SB_ENV_PREVIEW && !all && pr && !pr_listed) {
		/* any PR: derive its preview deployments by the naming rule */
		for (size_t s = 0; s < l.model->nservices; s++) {
			sb_deployment *dp = sb_pool_alloc(pool, sizeof(*dp));
			sb_diag ld = {0};
			if (sb_model_label_room(l.model, s, SB_ENV_PREVIEW, pr, &ld) < 0)
				fprintf(stderr, "switchboard routes: warning: %s:%d:%d: %s\n",
					ld.file, ld.line, ld.col, ld.msg);
			sb_model_preview(l.model, s, pr, pool, dp);
			for (size_t j = 0; j < dp->nroutes; j++) {
				if (n == cap) {
					cap *= 2;
					rows = sb_xrealloc(rows, cap * sizeof(*rows));
				}
				row_from(&rows[n++], l.model, NULL, &dp->routes[j], dp, false);
			}
		}
	} else if (env == SB_ENV_PREVIEW && !all && !pr && n == 0) {
		fprintf(stderr, "switchboard routes: no previews are listed in the declaration; "
				"pass --pr N to see the preview of pull request N\n");
	}
	print_rows(rows, n, o.json);
	free(rows);
	sb_pool_free(pool);
	sb_cli_unload(&l);
	return 0;
}

/* ---- resolve ----------------------------------------------------------- */

static void json_field(sb_buf *b, const char *key, const char *val, bool last)
{
	sb_buf_addf(b, "\"%s\": ", key);
	if (val)
		sb_buf_add_json_str(b, val, strlen(val));
	else
		sb_buf_adds(b, "null");
	if (!last)
		sb_buf_adds(b, ", ");
}

int sb_cli_resolve(int argc, char **argv)
{
	struct opts o;
	int r = parse_opts(argc, argv, &o, usage_resolve, "json data");
	if (r)
		return r == 1 ? 0 : r;
	if (o.nargs != 1) {
		fprintf(stderr, "switchboard resolve: expected one HOST[/PATH]\n%s", usage_resolve);
		return 2;
	}
	/* HOST[/PATH][?QUERY], or an URL: the host ends where a path or a query
	 * begins, and the path is what a client sends (dot segments resolved,
	 * query included, no fragment), as check and verify read URLs */
	const char *target = o.args[0] + sb_http_scheme_len(o.args[0]);
	size_t hl = strcspn(target, "/?#");
	char pbuf[2048];
	size_t rl;
	sb_url u = {.path = target + hl, .path_len = strlen(target + hl)};
	const char *path = sb_url_target(&u, pbuf, sizeof(pbuf), &rl);

	sb_loaded l;
	if ((r = load_or_fail(&o, &l, 2)))
		return r;
	/* the tenant registry too, when there is a store: resolve answers what
	 * the edge serving this data directory answers (a stored tenant is
	 * routed, a suspended one is not) */
	{
		sb_diag d = {0};
		sb_store *st = NULL;
		sb_tenants *t = NULL;
		const char *dir = o.data ? o.data : l.decl->data_dir;
		if (sb_cli_store_read(dir, o.data != NULL, &st, &d) < 0 ||
		    (st && sb_store_tenants_load(st, l.decl, &t, &d) < 0)) {
			sb_cli_print_diag(&d);
			sb_store_close(st);
			sb_cli_unload(&l);
			return 2;
		}
		sb_store_close(st);
		if (t) {
			sb_tenants_free(l.tenants);
			l.tenants = t;
		}
	}
	sb_route_match m;
	int lr = sb_route_lookup(l.routes, l.tenants, target, hl, path, rl, &m);
	bool routed = lr == 0;
	bool known = lr == 0 || lr == SB_ESUSPENDED;
	/* the naming rule names any PR's preview, but the edge serves only the
	 * listed and created ones: say so, as the edge would answer 404 */
	char unmade[sizeof(((sb_diag *)0)->msg) + 64];
	if (routed && !m.deployment && m.env == SB_ENV_PREVIEW) {
		routed = false;
		sb_diag ld = {0};
		/* a preview whose host would not fit DNS cannot be created:
		 * do not send the user to a command that will refuse it */
		if (sb_model_label_room(l.model, m.service, SB_ENV_PREVIEW, m.pr, &ld) < 0)
			snprintf(unmade, sizeof(unmade), "preview %u cannot be created: %s", m.pr,
				 ld.msg);
		else
			snprintf(unmade, sizeof(unmade),
				 "preview %u has not been created: the edge serves created and "
				 "listed previews only (switchboard preview create --pr %u)",
				 m.pr, m.pr);
		m.reason = unmade;
	}

	sb_pool *pool = sb_pool_new(0);
	const char *dep = NULL, *svc = NULL, *pattern = NULL, *upstream = NULL;
	char prbuf[16], upbuf[512];
	if (known) {
		const sb_deployment *dp = m.deployment;
		if (!dp) {
			/* preview by the naming rule: materialise it to name it */
			sb_deployment *pd = sb_pool_alloc(pool, sizeof(*pd));
			sb_model_preview(l.model, m.service, m.pr, pool, pd);
			dp = pd;
			char hb[256];
			int hn = sb_route_host_normalize(target, hl, hb, sizeof(hb));
			for (size_t i = 0; hn > 0 && i < pd->nroutes; i++)
				if (strcmp(pd->routes[i].host, hb) == 0 &&
				    strcmp(pd->routes[i].path, m.route->path) == 0 &&
				    pd->routes[i].path_prefix == m.route->path_prefix)
					pattern = pd->routes[i].pattern;
		} else {
			pattern = m.route->pattern;
		}
		dep = dp->name;
		svc = l.model->services[m.service].name;
		upstream = sb_cli_upstream_text(dp->upstream, upbuf, sizeof(upbuf));
		if (strcmp(upstream, "-") == 0)
			upstream = NULL;
	}
	snprintf(prbuf, sizeof(prbuf), "%u", m.pr);
	/* name the label the tenant rules refused */
	char reason[1024];
	if (!routed && m.reason != unmade) {
		char low[64], label[SB_CLI_SHOWN_SIZE];
		size_t ll = strcspn(target, ".:/");
		for (size_t i = 0; i < ll && i < sizeof(low) - 1; i++)
			low[i] = (char)(target[i] >= 'A' && target[i] <= 'Z' ? target[i] + 32
									     : target[i]);
		low[ll < sizeof(low) - 1 ? ll : sizeof(low) - 1] = '\0';
		sb_cli_shown(low, label, sizeof(label));
		if (lr == SB_ENOTENANT)
			snprintf(reason, sizeof(reason),
				 "'%s': no tenant is registered with this slug (switchboard "
				 "tenants add %s)",
				 label, label);
		else if (lr == SB_ESUSPENDED || lr == SB_ERESERVED ||
			 (lr == SB_EBADSLUG && ll < hl))
			snprintf(reason, sizeof(reason), "'%s': %s", label, m.reason);
		else
			snprintf(reason, sizeof(reason), "%s", m.reason);
		m.reason = reason;
	}
	char hostpath[1024];
	snprintf(hostpath, sizeof(hostpath), "%.*s%.*s", (int)hl, target, (int)rl, path);
	if (o.json) {
		sb_buf b;
		sb_buf_init(&b);
		sb_buf_addf(&b, "{\"routed\": %s, ", routed ? "true" : "false");
		json_field(&b, "deployment", dep, false);
		json_field(&b, "service", svc, false);
		json_field(&b, "environment", known ? sb_env_name(m.env) : NULL, false);
		if (known && m.pr)
			sb_buf_addf(&b, "\"pr\": %u, ", m.pr);
		else
			sb_buf_adds(&b, "\"pr\": null, ");
		json_field(&b, "tenant", m.tenant, false);
		json_field(&b, "pattern", pattern, false);
		json_field(&b, "upstream", upstream, false);
		json_field(&b, "reason", routed ? NULL : m.reason, true);
		sb_buf_adds(&b, "}\n");
		fputs(b.data, stdout);
		sb_buf_free(&b);
	} else {
		if (routed)
			printf("%s -> %s\n", hostpath, dep);
		else
			printf("%s: not routed: %s\n", hostpath, m.reason);
		if (known) {
			printf("  service      %s\n", svc);
			printf("  environment  %s\n", sb_env_name(m.env));
			printf("  pr           %s\n", m.pr ? prbuf : "-");
			printf("  tenant       %s\n", m.tenant ? m.tenant : "-");
			printf("  pattern      %s%s\n", pattern ? pattern : "-",
			       m.derived ? "  (preview naming rule)" : "");
			printf("  upstream     %s\n", upstream ? upstream : "-");
		}
	}
	sb_pool_free(pool);
	sb_cli_unload(&l);
	return routed ? 0 : 1;
}

/* ---- main -------------------------------------------------------------- */

bool sb_cli_word_in(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

const char *sb_cli_suggest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t bd = SIZE_MAX, wl = strlen(word);
	bool tie = false;
	for (size_t i = 0; i < n; i++) {
		size_t d = sb_edit_distance(word, names[i]);
		if (d < bd)
			best = names[i], bd = d, tie = false;
		else if (d == bd)
			tie = true;
	}
	/* at most 2 edits, and fewer than the word has letters ("xy" is no
	 * typo of "rollback"); 2 only in a word of 5 letters or more (half of
	 * "nope" changed is "zone": no typo); then a word that starts exactly
	 * one name */
	if (best && !tie && (bd == 1 || (bd == 2 && wl >= 5)) && bd < wl)
		return best;
	const char *prefix = NULL;
	for (size_t i = 0; wl >= 2 && i < n; i++)
		if (strncmp(names[i], word, wl) == 0) {
			if (prefix)
				return NULL;
			prefix = names[i];
		}
	return prefix;
}

const char *sb_cli_shown(const char *arg, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i = 0;
	for (; arg[i] && i < SB_CLI_SHOWN_MAX && o + 8 < size; i++) {
		unsigned char ch = (unsigned char)arg[i];
		if (ch == '\\' || ch < 0x20 || ch >= 0x7f) {
			buf[o++] = '\\';
			if (ch == '\\') {
				buf[o++] = '\\';
				continue;
			}
			buf[o++] = 'x';
			buf[o++] = hex[ch >> 4];
			buf[o++] = hex[ch & 15];
		} else {
			buf[o++] = (char)ch;
		}
	}
	if (arg[i])
		for (int k = 0; k < 3 && o + 1 < size; k++)
			buf[o++] = '.';
	buf[o] = '\0';
	return buf;
}

void sb_cli_unexpected(const char *what, const char *arg, const char *usage)
{
	char buf[SB_CLI_SHOWN_SIZE];
	fprintf(stderr, "%s: unexpected argument '%s'\n%s", what,
		sb_cli_shown(arg, buf, sizeof(buf)), usage ? usage : "");
}

void sb_cli_unknown(const char *what, const char *word, const char *const *names, size_t n)
{
	const char *s = sb_cli_suggest(word, names, n);
	char buf[SB_CLI_SHOWN_SIZE];
	fprintf(stderr, "%s: unknown command '%s'", what, sb_cli_shown(word, buf, sizeof(buf)));
	if (s)
		fprintf(stderr, " (did you mean '%s'?)", s);
	fputs("\n", stderr);
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
} commands[] = {
    {"check", sb_cli_check},	   {"routes", sb_cli_routes},	{"resolve", sb_cli_resolve},
    {"tenants", sb_cli_tenants},   {"serve", sb_cli_serve},	{"reload", sb_cli_reload},
    {"secret", sb_cli_secret},	   {"zone", sb_cli_zone},	{"deploy", sb_cli_deploy},
    {"delete", sb_cli_delete},	   {"preview", sb_cli_preview}, {"versions", sb_cli_versions},
    {"rollback", sb_cli_rollback}, {"verify", sb_cli_verify}};

static int command_index(const char *name)
{
	for (size_t i = 0; i < SB_ARRAY_LEN(commands); i++)
		if (strcmp(name, commands[i].name) == 0)
			return (int)i;
	return -1;
}

static int unknown_command(const char *word)
{
	const char *names[SB_ARRAY_LEN(commands) + 1];
	for (size_t i = 0; i < SB_ARRAY_LEN(commands); i++)
		names[i] = commands[i].name;
	names[SB_ARRAY_LEN(commands)] = "help";
	sb_cli_unknown("switchboard", word, names, SB_ARRAY_LEN(names));
	fputs("Run 'switchboard --help' for the list of commands.\n", stderr);
	return 2;
}

/* A descriptor 0, 1 or 2 that the caller closed would be the next file
 * opened (the data directory's lock file, a socket), and output meant for
 * stdout, the access log among it, would go into that file. /dev/null,
 * read-only, takes the place: writes to it fail, so a closed stdout is
 * still reported, and no file of ours ever gets the number. */
static void std_fds_hold(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int n = open("/dev/null", O_RDONLY);
			if (n >= 0 && n != fd)
				close(n);
		}
}

/* Output that could not be written (a full disk, a closed stdout, a reader
 * gone with SIGPIPE ignored) fails a command that succeeded: a script must
 * not take a truncated listing for the whole one. A command that failed
 * already keeps its status (and may have said so itself). */
static int output_status(int rc)
{
	errno = 0;
	bool failed = fflush(stdout) != 0;
	int err = errno;
	if (rc || (!failed && !ferror(stdout)))
		return rc;
	if (err)
		fprintf(stderr, "switchboard: cannot write the output: %s\n", strerror(err));
	else
		fputs("switchboard: cannot write the output\n", stderr);
	return 2;
}

static int run(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_main, stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		if (argc > 2 && strcmp(cmd, "help") == 0) {
			int k = command_index(argv[2]);
			if (k < 0)
				return unknown_command(argv[2]);
			char prog[64];
			snprintf(prog, sizeof(prog), "switchboard %s", argv[2]);
			char *hv[] = {prog, "--help", NULL};
			return commands[k].fn(2, hv);
		}
		fputs(usage_main, stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("switchboard %s\n", SB_VERSION);
		return 0;
	}
	int k = command_index(cmd);
	if (k < 0)
		return unknown_command(cmd);
	/* getopt names the program by argv[0] in its messages:
	 * "switchboard check: unrecognized option '--bogus'" */
	char prog[64];
	snprintf(prog, sizeof(prog), "switchboard %s", cmd);
	argv[1] = prog;
	return commands[k].fn(argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
	std_fds_hold();
	sb_cli_remember_command_line(argc, argv);
	if (argc > 1 && strcmp(argv[1], "__exec") == 0) /* serve starting a command
							   (src/http/procs.c) */
		return sb_procs_exec_child(argc, argv);
	return output_status(run(argc, argv));
}
