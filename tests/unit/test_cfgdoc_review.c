/* What docs/configuration.md and docs/routing.md say, where the code
 * disagreed with them (review of the two pages against the code). */
#include <criterion/criterion.h>
#include <stdio.h>

#include "memfs.h"
#include "model/live.h"

TestSuite(cfgdoc, .fini = leak_check);

static int parse(const char *pattern, char *err, size_t n)
{
	sb_pool *pool = sb_pool_new(4096);
	sb_route r;
	int rc = sb_route_parse(pattern, pool, &r, err, n);
	sb_pool_free(pool);
	return rc;
}

/* routing.md: the edge refuses a request with a dot segment, a space or a
 * control byte in its target, or %00 (400): a route path with one could
 * never match, and is refused where it is written rather than kept dead. */
Test(cfgdoc, a_route_path_no_request_can_have_is_refused)
{
	static const char *const dead[] = {
	    "a.example.com/ x",	    "a.example.com/a\tb",	"a.example.com/a\x7f",
	    "a.example.com/./x",    "a.example.com/x/.",	"a.example.com/x/..",
	    "a.example.com/x/../y", "a.example.com/x/%2E%2e/y", "a.example.com/x/./*",
	    "a.example.com/%2e/*",  "a.example.com/a%00b",	NULL};
	char err[512];
	for (const char *const *p = dead; *p; p++) {
		err[0] = '\0';
		cr_assert_lt(parse(*p, err, sizeof(err)), 0, "accepted: %s", *p);
		cr_assert(strstr(err, "would never match"), "%s: %s", *p, err);
	}
	/* look-alikes the edge forwards as sent */
	static const char *const live[] = {"a.example.com/x/..*",
					   "a.example.com/...",
					   "a.example.com/.well-known/*",
					   "a.example.com/a..b/*",
					   "a.example.com/x/.y",
					   "a.example.com/%2e%2e%2e",
					   NULL};
	for (const char *const *p = live; *p; p++)
		cr_assert_eq(parse(*p, err, sizeof(err)), 0, "%s: %s", *p, err);
}

static void decl_err(const char *toml, const struct memfile *files, int line, const char *want)
{
	struct world w = world_load(toml, files);
	cr_assert_lt(w.rc, 0, "accepted:\n%s", toml);
	cr_assert(strstr(w.diag.msg, want), "got: %s\nwant: %s", w.diag.msg, want);
	if (line)
		cr_assert_eq(w.diag.line, line, "line %d: %s", w.diag.line, w.diag.msg);
	world_free(&w);
}

#define SVC                                                                                        \
	"[[service]]\nname = \"web\"\nroutes = [\"www.example.com/*\"]\n"                          \
	"upstream.production = \"http://127.0.0.1:9100\"\n"

/* routing.md, naming templates: the labels they make are host names, so a
 * template that starts or ends with '-' is refused (it made
 * "www-.example.com"); a staging template of {label} alone is refused as
 * such, not as a missing separator before a {pr} it may not have. */
Test(cfgdoc, naming_templates_make_host_names)
{
	decl_err("[naming]\nstaging = \"{label}-\"\n" SVC, NULL, 2, "ends with '-'");
	decl_err("[naming]\nstaging = \"-{label}\"\n" SVC, NULL, 2, "starts with '-'");
	decl_err("[naming]\npreview = \"{label}-{pr}-\"\n" SVC, NULL, 2, "ends with '-'");
	decl_err("[naming]\npreview = \"-pr{pr}-{label}\"\n" SVC, NULL, 2, "starts with '-'");
	decl_err("[naming]\nstaging = \"{label}\"\n" SVC, NULL, 2,
		 "would name staging hosts as production's");
	struct world w = world_load("[naming]\nstaging = \"stg-{label}\"\n"
				    "preview = \"pr{pr}-{label}\"\n" SVC,
				    NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	world_free(&w);
}

/* configuration.md: an environment that only looks like ours is an error;
 * wrangler's names are case-sensitive, so [env.Production] is one (it was
 * read and not deployed, its routes never served). */
Test(cfgdoc, an_environment_named_like_ours_in_another_case_is_refused)
{
	static const char *const envs[][2] = {{"Production", "looks like production"},
					      {"PROD", "looks like production"},
					      {"Staging", "looks like staging"},
					      {"STG", "looks like staging"}};
	for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
		char wr[256];
		snprintf(wr, sizeof(wr),
			 "name = \"web\"\nroute = \"www.example.com/*\"\n[env.%s]\n"
			 "route = \"x.example.com/*\"\n",
			 envs[i][0]);
		const struct memfile f[] = {{"/t/wrangler.toml", wr}, {NULL, NULL}};
		decl_err("[[service]]\nwrangler = \"wrangler.toml\"\n", f, 0, envs[i][1]);
	}
	const struct memfile ok[] = {{"/t/wrangler.toml", "name = \"web\"\nroute = "
							  "\"www.example.com/*\"\n[env.dev]\n"},
				     {NULL, NULL}};
	struct world w = world_load("[[service]]\nwrangler = \"wrangler.toml\"\n", ok);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	world_free(&w);
}

static const char tenants_toml[] =
    "[[zone]]\nname = \"example.com\"\n"
    "[tenants]\nservice = \"app\"\nstatic = [\"acme\"]\n"
    "[previews]\nprs = [3]\n"
    "[[service]]\nname = \"app\"\nroutes = [\"codex.example.com/*\"]\n";

static int lookup_in(bool rule, const char *host, sb_route_match *m, struct world *w)
{
	sb_route_options opt = {.preview_rule = rule};
	sb_route_table *rt = NULL;
	cr_assert_eq(sb_route_compile(w->model, &opt, &rt, &w->diag), 0, "%s", w->diag.msg);
	int r = sb_route_lookup(rt, w->tenants, host, strlen(host), "/", 1, m);
	sb_route_free(rt);
	return r;
}

/* routing.md, tenants: "acme-preview-12 is never a slug". A preview-shaped
 * name that no service's preview rule gives was answered "this preview
 * has not been created" even when that preview exists (PR 3 listed), by
 * the edge and by resolve alike; an uncreated preview of a real host
 * still says so at the edge. */
Test(cfgdoc, a_preview_shaped_tenant_label_is_not_called_an_uncreated_preview)
{
	struct world w = world_load(tenants_toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	sb_route_match m;
	for (int rule = 0; rule < 2; rule++) {
		cr_assert_lt(lookup_in(rule, "acme-preview-3.example.com", &m, &w), 0);
		cr_assert_str_eq(m.reason, "a slug cannot have a preview suffix", "rule %d", rule);
	}
	/* the edge (no preview rule): codex's preview 4 was not created */
	cr_assert_lt(lookup_in(false, "codex-preview-4.example.com", &m, &w), 0);
	cr_assert(strstr(m.reason, "this preview has not been created"), "%s", m.reason);
	cr_assert_eq(lookup_in(false, "acme.example.com", &m, &w), 0, "%s", m.reason);
	world_free(&w);
}

/* routing.md: "A custom domain (custom_domain = true, or --domain) owns its
 * whole host: its pattern is the bare host, or the host followed by / or
 * slash-star"; a scheme is ignored as in any route. --domain refused all
 * but the bare host. */
/* Build w's model with one live custom domain on service "web". */
static int build_with_domain(const struct world *w, const char *domain, sb_model **m, sb_diag *d)
{
	sb_live l = {0};
	char *domains[] = {(char *)domain};
	sb_live_deploy dep = {.name = "web", .domains = domains, .ndomains = 1};
	sb_live_deploy_put(&l, &dep);
	int r = sb_model_build_live(w->decl, &l, m, d);
	sb_live_clear(&l);
	return r;
}

Test(cfgdoc, a_live_custom_domain_takes_the_forms_of_a_declared_one)
{
	struct world w = world_load("[[zone]]\nname = \"example.com\"\n" SVC, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	static const char *const ok[] = {"y.example.com", "y.example.com/", "y.example.com/*",
					 "https://y.example.com", NULL};
	for (const char *const *p = ok; *p; p++) {
		sb_model *m = NULL;
		sb_diag d = {0};
		cr_assert_eq(build_with_domain(&w, *p, &m, &d), 0, "%s: %s", *p, d.msg);
		const sb_deployment *dp = &m->deployments[m->services[0].deployment[0]];
		bool found = false;
		for (size_t i = 0; i < dp->nroutes; i++)
			found |= dp->routes[i].custom_domain &&
				 strcmp(dp->routes[i].host, "y.example.com") == 0 &&
				 strcmp(dp->routes[i].path, "/") == 0 && dp->routes[i].path_prefix;
		cr_assert(found, "%s: no whole-host custom domain", *p);
		sb_model_free(m);
	}
	static const char *const bad[] = {"y.example.com/x", "y.example.com/x/*", "*.example.com",
					  "*.example.com/*", NULL};
	for (const char *const *p = bad; *p; p++) {
		sb_model *m = NULL;
		sb_diag d = {0};
		cr_assert_lt(build_with_domain(&w, *p, &m, &d), 0, "accepted: %s", *p);
		cr_assert(strstr(d.msg, "must be a whole host"), "%s", d.msg);
	}
	world_free(&w);
}

/* configuration.md, check: a var on a preview host whose production host
 * is routed on other paths only was "not routed (no route matches this
 * host)" for the representative preview, where production and staging
 * say "the host is routed, but no route matches this path". */
Test(cfgdoc, a_preview_host_routed_on_other_paths_says_so)
{
	struct world w = world_load("[[zone]]\nname = \"example.com\"\n[[service]]\nname = "
				    "\"web\"\nroutes = [\"www.example.com/app/*\"]\n",
				    NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	sb_route_match m;
	cr_assert_lt(lookup(&w, "www-preview-1.example.com/a", &m), 0);
	cr_assert_str_eq(m.reason, "the host is routed, but no route matches this path");
	cr_assert_lt(lookup(&w, "www-staging.example.com/a", &m), 0);
	cr_assert_str_eq(m.reason, "the host is routed, but no route matches this path");
	cr_assert_lt(lookup(&w, "zzz-preview-1.example.com/a", &m), 0);
	cr_assert_str_eq(m.reason, "no route matches this host");
	cr_assert_eq(lookup(&w, "www-preview-1.example.com/app/x", &m), 0, "%s", m.reason);
	world_free(&w);
}
