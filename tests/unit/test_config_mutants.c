/* Tests written in a mutation audit of the declaration -> model path
 * (src/config/decl.c, wrangler.c, cfg.c, src/model/model.c,
 * src/route/check.c): each one fails against a small change to them that
 * the other tests let through (the change is named in each test's
 * comment). */
#include <criterion/criterion.h>
#include <stdio.h>

#include "config/cfg.h"
#include "memfs.h"

TestSuite(wrangler_mutants, .fini = leak_check);
TestSuite(decl_mutants, .fini = leak_check);
TestSuite(model_mutants, .fini = leak_check);
TestSuite(check_mutants, .fini = leak_check);

/* ---- helpers ----------------------------------------------------------- */

static int wload(const char *text, sb_pool *pool, sb_wrangler *w, sb_diag *d)
{
	sb_toml_value *v = NULL;
	int r = sb_toml_parse(text, strlen(text), "w.toml", &v, d);
	cr_assert_eq(r, 0, "parse: %s", d->msg);
	r = sb_wrangler_load(v, "w.toml", pool, w, d);
	sb_toml_free(v);
	return r;
}

/* A wrangler file that loads. */
static void wrangler_ok(const char *text)
{
	sb_pool *pool = sb_pool_new(0);
	sb_wrangler w;
	sb_diag d = {0};
	cr_assert_eq(wload(text, pool, &w, &d), 0, "refused: %s\n%s", d.msg, text);
	sb_pool_free(pool);
}

/* A wrangler file refused at line:col with needle in the message. */
static void wrangler_err(const char *text, int line, int col, const char *needle)
{
	sb_pool *pool = sb_pool_new(0);
	sb_wrangler w;
	sb_diag d = {0};
	cr_assert_lt(wload(text, pool, &w, &d), 0, "accepted:\n%s", text);
	cr_assert(d.line == line && d.col == col, "at %d:%d, want %d:%d: %s", d.line, d.col, line,
		  col, d.msg);
	cr_assert(strstr(d.msg, needle), "message \"%s\" lacks \"%s\"", d.msg, needle);
	sb_pool_free(pool);
}

/* A declaration that loads (model and route table too); free with
 * world_free. */
static struct world decl_ok(const char *toml, const struct memfile *files)
{
	struct world w = world_load(toml, files);
	cr_assert_eq(w.rc, 0, "refused: %s\n%s", w.diag.msg, toml);
	return w;
}

/* A declaration refused in file at line:col with needle in the message. */
static void decl_err(const char *toml, const struct memfile *files, const char *file, int line,
		     int col, const char *needle)
{
	struct world w = world_load(toml, files);
	cr_assert_lt(w.rc, 0, "accepted:\n%s", toml);
	cr_assert_str_eq(w.diag.file, file, "in %s, want %s: %s", w.diag.file, file, w.diag.msg);
	cr_assert(w.diag.line == line && w.diag.col == col, "at %d:%d, want %d:%d: %s", w.diag.line,
		  w.diag.col, line, col, w.diag.msg);
	cr_assert(strstr(w.diag.msg, needle), "message \"%s\" lacks \"%s\"", w.diag.msg, needle);
	world_free(&w);
}

#define SVC "[[service]]\nname = \"web\"\nroutes = [\"app.ex.com/*\"]\n"
#define ZONE "[[zone]]\nname = \"ex.com\"\n"
#define TOML "/t/switchboard.toml"

/* ---- wrangler.c ---------------------------------------------------------- */

/* A Worker name may have '_' and may not have '.' (mutant: the character
 * class had '.' for '_'). */
Test(wrangler_mutants, a_worker_name_may_have_an_underscore_not_a_dot)
{
	wrangler_ok("name = \"my_worker\"\n");
	wrangler_err("name = \"my.worker\"\n", 1, 8,
		     "may only have lower-case letters, digits, '-' and '_'");
}

/* An empty route is refused where it is written, in an environment that is
 * not deployed too (mutant: the loader's check dropped; the model's parse
 * then caught it only in deployed environments). */
Test(wrangler_mutants, an_empty_route_is_refused_in_any_environment)
{
	wrangler_err("name = \"w\"\n[env.dev]\nroutes = [\"\"]\n", 3, 11, "route pattern is empty");
}

/* An [env.X] that sets compatibility_flags = [] has none (mutant: an empty
 * list was taken as "not set" and the top level's inherited). */
Test(wrangler_mutants, an_empty_compatibility_flags_list_is_not_inherited_over)
{
	sb_pool *pool = sb_pool_new(0);
	sb_wrangler w;
	sb_diag d = {0};
	cr_assert_eq(wload("name = \"w\"\ncompatibility_flags = [\"nodejs_compat\"]\n"
			   "[env.production]\ncompatibility_flags = []\n[env.staging]\n",
			   pool, &w, &d),
		     0, "%s", d.msg);
	cr_assert_eq(sb_wrangler_env(&w, "production")->ncompatibility_flags, 0);
	cr_assert_eq(sb_wrangler_env(&w, "staging")->ncompatibility_flags, 1);
	sb_pool_free(pool);
}

/* A bad Worker name is reported at the name, not at its section (mutant:
 * the section's position); the top-level name is always checked, even when
 * [env.production] names the deployment (mutant: not checked). */
Test(wrangler_mutants, a_bad_worker_name_is_reported_at_the_name)
{
	wrangler_err("main = \"x.js\"\nname = \"Web\"\n", 2, 8, "Worker name \"Web\"");
	wrangler_err("[env.production]\nname = \"web\"\n", 1, 1, "missing top-level 'name'");
	wrangler_err("name = \"Web\"\n[env.production]\nname = \"web\"\n", 1, 8,
		     "Worker name \"Web\" may only have lower-case letters");
}

/* "Did you mean" for a key within two edits of a key that is read
 * (mutant: within one), and only then: a key three edits away, or one
 * the suggestion would replace whole, is one of wrangler's many others
 * (mutants: within three; a one-letter key "fixed" to "env"). */
Test(wrangler_mutants, a_near_miss_is_within_two_edits_of_a_read_key)
{
	wrangler_err("name = \"w\"\nroots = [\"a.ex.com/*\"]\n", 2, 1,
		     "unknown key 'roots' (did you mean 'route");
	wrangler_ok("name = \"w\"\nmy_vars = 1\n");
	wrangler_ok("name = \"w\"\ne = 1\n");
}

/* ---- cfg.c ----------------------------------------------------------------- */

/* An integer's bounds are inclusive (mutant: the maximum was refused). */
Test(decl_mutants, an_integer_at_its_maximum_is_accepted)
{
	struct world w = decl_ok(ZONE "ttl = 2147483647\n" SVC, NULL);
	cr_assert_eq(w.decl->zones[0].ttl, 2147483647u);
	world_free(&w);
	decl_err(ZONE "ttl = 2147483648\n" SVC, NULL, TOML, 3, 7,
		 "'ttl' must be between 0 and 2147483647, not 2147483648");
}

/* A NUL character in a string or a list item is refused, not cut short
 * (mutants: both checks dropped, "co\0dex" read as "co"). */
Test(decl_mutants, a_nul_in_a_string_or_a_list_item_is_refused)
{
	decl_err(SVC "label = \"co\\u0000dex\"\n", NULL, TOML, 4, 9,
		 "'label' must not contain a NUL character");
	decl_err(SVC "url_vars = [\"API_URL\", \"A\\u0000B\"]\n", NULL, TOML, 4, 24,
		 "'url_vars' item 2 contains a NUL character");
}

/* List items are counted from 1 in messages (mutant: from 0). */
Test(decl_mutants, a_list_item_of_the_wrong_type_is_counted_from_one)
{
	decl_err(ZONE "addresses = [\"192.0.2.1\", 5]\n" SVC, NULL, TOML, 3, 27,
		 "'addresses' must be an array of strings; item 2 is an integer");
}

/* ---- decl.c ---------------------------------------------------------------- */

/* A zone name: at most 253 characters, labels of at most 63 (mutants: 254
 * and 64 accepted). */
Test(decl_mutants, a_zone_name_is_at_most_253_characters_with_labels_of_63)
{
	char l63[64], name[300], toml[600];
	memset(l63, 'a', 63);
	l63[63] = '\0';
	/* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
	snprintf(name, sizeof(name), "%s.%s.%s.%.61s", l63, l63, l63, l63);
	snprintf(toml, sizeof(toml), "[[zone]]\nname = \"%s\"\n" SVC, name);
	struct world w = decl_ok(toml, NULL);
	world_free(&w);
	snprintf(name, sizeof(name), "%s.%s.%s.%.62s", l63, l63, l63, l63);
	snprintf(toml, sizeof(toml), "[[zone]]\nname = \"%s\"\n" SVC, name);
	decl_err(toml, NULL, TOML, 2, 8, "zone 'name' must be a DNS name");
	snprintf(toml, sizeof(toml), "[[zone]]\nname = \"%sa.com\"\n" SVC, l63);
	decl_err(toml, NULL, TOML, 2, 8, "zone 'name' must be a DNS name");
}

/* [zone.soa] mname is the one given (mutant: the first nameserver kept). */
Test(decl_mutants, a_declared_soa_mname_is_used)
{
	struct world w = decl_ok(ZONE "nameservers = [\"ns1.ex.com\"]\n"
				      "soa = { mname = \"NS9.ex.com.\" }\n" SVC,
				 NULL);
	cr_assert_str_eq(w.decl->zones[0].soa.mname, "ns9.ex.com");
	world_free(&w);
}

/* An upstream is an URL or a command, not both (mutant: both accepted). */
Test(decl_mutants, an_upstream_with_url_and_command_is_refused)
{
	decl_err(SVC "upstream.production = { url = \"http://127.0.0.1:1\", command = [\"x\"] }\n",
		 NULL, TOML, 4, 23, "an upstream has either 'url' or 'command', not both");
}

/* A service label is one label (mutant: "co.dex", a DNS name, accepted). */
Test(decl_mutants, a_service_label_with_a_dot_is_refused)
{
	decl_err(SVC "label = \"co.dex\"\n", NULL, TOML, 4, 9,
		 "'label' must be one host name label");
}

/* An environment that only looks like staging is reported, [env.preprod]
 * too (mutant: "preprod" left out of the look-alikes); with the real one
 * present a look-alike is just another environment (mutant: reported). */
Test(decl_mutants, look_alike_environments)
{
	const struct memfile pre[] = {
	    {"/t/w.toml", "name = \"web\"\nroutes = [\"app.ex.com/*\"]\n[env.preprod]\n"},
	    {NULL, NULL}};
	decl_err("[[service]]\nwrangler = \"w.toml\"\n", pre, "/t/w.toml", 3, 1,
		 "[env.preprod] looks like staging");
	const struct memfile both[] = {
	    {"/t/w.toml", "name = \"web\"\n[env.production]\nroutes = [\"app.ex.com/*\"]\n"
			  "[env.prod]\nroutes = [\"old.ex.com/*\"]\n[env.staging]\n[env.stage]\n"},
	    {NULL, NULL}};
	struct world w = decl_ok("[[service]]\nwrangler = \"w.toml\"\n", both);
	const sb_deployment *prod = &w.model->deployments[w.model->services[0].deployment[0]];
	cr_assert_eq(prod->nroutes, 1);
	cr_assert_str_eq(prod->routes[0].host, "app.ex.com");
	world_free(&w);
}

/* A webhook URL is http(s) (mutant: "ftp://..." accepted at load). */
Test(decl_mutants, a_webhook_url_that_is_not_http_is_refused)
{
	decl_err(SVC "[[webhook]]\nprovider = \"s\"\nurl = \"ftp://app.ex.com/hook\"\n", NULL, TOML,
		 6, 7, "webhook 'url' must be an http(s) URL, not \"ftp://app.ex.com/hook\"");
}

/* A naming template has {label} exactly once, and a separator between
 * {pr} and {label} in either order (mutants: twice accepted; "{pr}{label}"
 * accepted). */
Test(decl_mutants, naming_templates)
{
	decl_err("[naming]\nstaging = \"{label}-{label}\"\n" SVC, NULL, TOML, 2, 11,
		 "must contain {label} once");
	decl_err("[naming]\npreview = \"pr{pr}{label}\"\n" SVC, NULL, TOML, 2, 11,
		 "needs a separator between {label} and {pr}");
}

/* A zone declared twice is refused at the second, naming the first's line
 * (mutants: accepted; the second's line given as the first's). */
Test(decl_mutants, a_zone_declared_twice_is_refused)
{
	decl_err(ZONE "\n" ZONE SVC, NULL, TOML, 4, 1,
		 "zone \"ex.com\" is declared twice (first at line 1)");
}

/* Static tenants need the tenant-aware service (mutant: accepted without). */
Test(decl_mutants, static_tenants_without_a_service_are_refused)
{
	decl_err(ZONE "[tenants]\nstatic = [\"acme\"]\n" SVC, NULL, TOML, 3, 1,
		 "'static' tenants need 'service'");
}

/* A pull request number is at most 999999999 (mutant: 1000000000). */
Test(decl_mutants, a_pull_request_number_is_at_most_999999999)
{
	struct world w = decl_ok(ZONE "[previews]\nprs = [999999999]\n" SVC, NULL);
	cr_assert_eq(w.decl->preview_prs[0], 999999999u);
	cr_assert_geq(sb_model_deployment(w.model, "web-preview-999999999"), 0);
	world_free(&w);
	decl_err(ZONE "[previews]\nprs = [1, 1000000000]\n" SVC, NULL, TOML, 4, 11,
		 "a pull request number is an integer from 1 to 999999999");
}

/* An inline [[service]] takes 'environments' too (mutant: it was left out
 * of the keys an inline service may have). */
Test(decl_mutants, an_inline_service_may_name_its_environments)
{
	struct world w =
	    decl_ok("[[service]]\nname = \"web\"\nenvironments = { production = \"prod\" "
		    "}\n[service.env.prod]\nroutes = [\"app.ex.com/*\"]\n",
		    NULL);
	const sb_deployment *prod = &w.model->deployments[w.model->services[0].deployment[0]];
	cr_assert_str_eq(prod->name, "web-prod");
	cr_assert_eq(prod->nroutes, 1);
	world_free(&w);
}

/* ---- model.c --------------------------------------------------------------- */

/* A name the preview template gives an empty label is no preview name
 * (mutant: "x-p5" parsed as the preview of label "" with the template
 * "x{label}-p{pr}", and refused as a slug). */
Test(model_mutants, an_empty_label_is_no_preview_name)
{
	struct world w = decl_ok("[naming]\npreview = \"x{label}-p{pr}\"\n" SVC, NULL);
	size_t lo, ll;
	uint32_t pr;
	cr_assert_eq(sb_model_name_parse(w.model, "x-p5", 4, &lo, &ll, &pr), SB_ENV_PRODUCTION);
	cr_assert_eq(sb_model_name_parse(w.model, "xa-p5", 5, &lo, &ll, &pr), SB_ENV_PREVIEW);
	cr_assert(lo == 1 && ll == 1 && pr == 5);
	const char *why = NULL;
	cr_assert_eq(sb_model_slug_check(w.model, "x-p5", 4, &why), 0, "%s", why);
	world_free(&w);
}

/* A preview host whose label would pass 63 characters is not derived
 * (mutant: a 64-character label kept), for a PR that is not listed (a
 * listed one is refused at load). */
Test(model_mutants, a_preview_host_label_stays_within_63_characters)
{
	char lab[51], toml[400];
	memset(lab, 'a', 50);
	lab[50] = '\0';
	snprintf(toml, sizeof(toml),
		 ZONE "[[service]]\nname = \"web\"\nroutes = [\"%s.ex.com/*\"]\n", lab);
	struct world w = decl_ok(toml, NULL);
	sb_pool *pool = sb_pool_new(0);
	sb_deployment dp;
	sb_model_preview(w.model, 0, 1234, pool, &dp); /* 50 + 9 + 4 = 63 */
	cr_assert_eq(dp.nroutes, 1);
	sb_model_preview(w.model, 0, 12345, pool, &dp); /* 64 */
	cr_assert_eq(dp.nroutes, 0);
	sb_pool_free(pool);
	world_free(&w);
}

/* A URL var's host is compared and renamed lower-cased: an upper-case
 * zone apex stays as it is, another host gets its staging name (mutant:
 * not lower-cased, "EX.com" taken for a label and renamed "EX-staging.com"). */
Test(model_mutants, a_url_var_host_in_upper_case_is_derived_as_lower_case)
{
	const struct memfile f[] = {
	    {"/t/w.toml", "name = \"web\"\nroutes = [\"ex.com/*\", \"app.ex.com/*\"]\n"
			  "vars = { A = \"https://EX.com/x\", B = \"https://APP.ex.com/y\" }\n"},
	    {NULL, NULL}};
	struct world w = decl_ok(ZONE "[[service]]\nwrangler = \"w.toml\"\n", f);
	const sb_deployment *st = &w.model->deployments[w.model->services[0].deployment[1]];
	cr_assert_eq(st->nvars, 2);
	cr_assert_str_eq(st->vars[0].value, "https://EX.com/x");
	cr_assert_str_eq(st->vars[1].value, "https://app-staging.ex.com/y");
	world_free(&w);
}

/* [env.staging] without routes inherits the top level's in wrangler, but
 * staging takes hosts by the naming rule, not production's (mutant: the
 * inherited routes used, which claim production's hosts). */
Test(model_mutants, staging_does_not_take_inherited_routes)
{
	const struct memfile f[] = {{"/t/w.toml",
				     "name = \"web\"\nroutes = [\"app.ex.com/*\"]\n[env.staging]\n"
				     "vars = { ENVIRONMENT = \"staging\" }\n"},
				    {NULL, NULL}};
	struct world w = decl_ok(ZONE "[[service]]\nwrangler = \"w.toml\"\n", f);
	const sb_deployment *st = &w.model->deployments[w.model->services[0].deployment[1]];
	cr_assert_str_eq(st->name, "web-staging");
	cr_assert_eq(st->nroutes, 1);
	cr_assert_str_eq(st->routes[0].host, "app-staging.ex.com");
	cr_assert_eq(st->nvars, 1);
	world_free(&w);
}

/* The tenant-aware service's host must be in a declared zone, at a label
 * boundary (mutant: "app.notex.com" taken to be in "ex.com"). */
Test(model_mutants, a_tenant_service_host_is_in_a_zone_at_a_label_boundary)
{
	decl_err(ZONE "[tenants]\nservice = \"web\"\n[[service]]\nname = \"web\"\n"
		      "routes = [\"app.notex.com/*\"]\n",
		 NULL, TOML, 4, 11, "has no production host in a declared [[zone]]");
}

/* A route host is at most 253 characters (mutant: 254 accepted). */
Test(model_mutants, a_route_host_is_at_most_253_characters)
{
	char l63[64], host[300], toml[700];
	memset(l63, 'a', 63);
	l63[63] = '\0';
	/* "a." and three labels of 63 are 194 characters */
	snprintf(host, sizeof(host), "a.%s.%s.%s.%.59s", l63, l63, l63, l63); /* 253 */
	/* with staging routes of its own: a staging host the naming rule made
	 * of it would be longer than 253 (refused, test_route.c) */
	snprintf(toml, sizeof(toml),
		 "[[service]]\nname = \"web\"\nroutes = [\"%s/*\"]\n"
		 "[service.env.staging]\nroutes = [\"s.ex.com/*\"]\n",
		 host);
	struct world w = decl_ok(toml, NULL);
	world_free(&w);
	snprintf(host, sizeof(host), "a.%s.%s.%s.%.60s", l63, l63, l63, l63); /* 254 */
	snprintf(toml, sizeof(toml), "[[service]]\nname = \"web\"\nroutes = [\"%s/*\"]\n", host);
	decl_err(toml, NULL, TOML, 3, 11, "host is longer than 253 characters");
}

/* A listed preview whose host label would pass 63 characters is refused
 * at load, naming the route (mutant: not checked, the host left out
 * without a word). */
Test(model_mutants, a_listed_preview_must_keep_its_label_within_63_characters)
{
	char lab[51], toml[400];
	memset(lab, 'a', 50);
	lab[50] = '\0';
	snprintf(toml, sizeof(toml),
		 ZONE "[previews]\nprs = [12345]\n[[service]]\nname = \"web\"\n"
		      "routes = [\"%s.ex.com/*\"]\n",
		 lab);
	decl_err(toml, NULL, TOML, 7, 11,
		 "its preview label for PR 12345 would be longer than 63 characters");
}

/* A deployment named as another is reported at the later one's own
 * declaration: an [env.staging] at its section (mutant: staging took
 * production's position, so the collision was named at the top of the
 * file, or in the other file). */
Test(model_mutants, a_staging_name_collision_is_reported_at_env_staging)
{
	const struct memfile f[] = {
	    {"/t/a.toml", "name = \"a\"\nroutes = [\"a.ex.com/*\"]\n"},
	    {"/t/b.toml", "name = \"b\"\nroutes = [\"b.ex.com/*\"]\n[env.staging]\nname = \"a\"\n"},
	    {NULL, NULL}};
	decl_err(ZONE "[[service]]\nwrangler = \"a.toml\"\n[[service]]\nwrangler = \"b.toml\"\n", f,
		 "/t/b.toml", 3, 1,
		 "deployment \"a\" (service b, staging) has the name of another");
}

/* A live custom domain is a whole host: a path is refused (mutant: only
 * '*' refused, "app2.ex.com/x" taken as the whole host). */
Test(model_mutants, a_live_custom_domain_with_a_path_is_refused)
{
	struct world w = decl_ok(ZONE SVC, NULL);
	sb_live l = {0};
	char *domains[] = {"app2.ex.com/x"};
	sb_live_deploy dep = {.name = "web", .domains = domains, .ndomains = 1};
	sb_live_deploy_put(&l, &dep);
	sb_model *m = NULL;
	sb_diag d = {0};
	cr_assert_lt(sb_model_build_live(w.decl, &l, &m, &d), 0, "accepted");
	cr_assert(strstr(d.msg, "custom domain \"app2.ex.com/x\" must be a whole host"), "%s",
		  d.msg);
	cr_assert_str_eq(d.file, "deploy web");
	sb_live_clear(&l);
	world_free(&w);
}

/* ---- check.c --------------------------------------------------------------- */

static size_t check(const char *toml, const struct memfile *files, sb_violation **v)
{
	struct world w = decl_ok(toml, files);
	*v = NULL;
	size_t n = sb_check_run(w.model, w.rt, w.tenants, 1, v);
	world_free(&w);
	return n;
}

/* A URL on a name that only ends like a zone ("notex.com" for ex.com) is
 * not on it, and not checked (mutant: the suffix matched within a label). */
Test(check_mutants, a_url_off_zone_at_a_label_boundary_is_not_checked)
{
	const struct memfile f[] = {{"/t/w.toml", "name = \"web\"\nroutes = [\"app.ex.com/*\"]\n"
						  "vars = { A = \"https://api.notex.com/x\" }\n"},
				    {NULL, NULL}};
	sb_violation *v;
	size_t n = check(ZONE "[[service]]\nwrangler = \"w.toml\"\n", f, &v);
	cr_assert_eq(n, 0, "%s", n ? v[0].msg : "");
	free(v);
}

/* Only http(s) URLs are checked (mutant: any scheme sb_url_split takes,
 * "ftp://files.ex.com/x" reported as not routed). */
Test(check_mutants, a_url_of_another_scheme_is_not_checked)
{
	const struct memfile f[] = {{"/t/w.toml", "name = \"web\"\nroutes = [\"app.ex.com/*\"]\n"
						  "vars = { A = \"ftp://files.ex.com/x\" }\n"},
				    {NULL, NULL}};
	sb_violation *v;
	size_t n = check(ZONE "[[service]]\nwrangler = \"w.toml\"\n", f, &v);
	cr_assert_eq(n, 0, "%s", n ? v[0].msg : "");
	free(v);
}

/* The first violation whose message has needle, or NULL. */
static const char *any_msg(const sb_violation *v, size_t n, const char *needle)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(v[i].msg, needle))
			return v[i].msg;
	return NULL;
}

/* A var or a webhook on the host of a suspended tenant is routed (the edge
 * answers 403 while it is suspended): not a violation (mutants: the
 * suspended lookup reported as "not routed", for vars and for webhooks). */
Test(check_mutants, a_suspended_tenants_host_is_routed)
{
	const struct memfile f[] = {{"/t/w.toml", "name = \"web\"\nroutes = [\"app.ex.com/*\"]\n"
						  "vars = { T = \"https://acme.ex.com/x\" }\n"},
				    {NULL, NULL}};
	struct world w = decl_ok(ZONE "[tenants]\nservice = \"web\"\n[[service]]\nwrangler = "
				      "\"w.toml\"\n[[webhook]]\nprovider = \"p\"\nurl = "
				      "\"https://acme.ex.com/hook\"\n",
				 f);
	sb_tenants *t = sb_tenants_new(4);
	sb_tenants_put(t, "acme", 4, SB_TENANT_SUSPENDED);
	/* production's var and the webhook (staging and previews name a
	 * production host, which is a violation of theirs whatever the tenant) */
	sb_violation *v = NULL;
	size_t n = sb_check_run(w.model, w.rt, t, 1, &v);
	cr_assert_not(any_msg(v, n, "web: var T"), "%s", any_msg(v, n, "web: var T"));
	cr_assert_not(any_msg(v, n, "webhook p"), "%s", any_msg(v, n, "webhook p"));
	free(v);
	/* an unknown slug is not routed: the same check fails there */
	v = NULL;
	n = sb_check_run(w.model, w.rt, w.tenants, 1, &v);
	cr_assert(any_msg(v, n,
			  "web: var T = \"https://acme.ex.com/x\": host acme.ex.com is not "
			  "routed"));
	cr_assert(any_msg(v, n, "webhook p: \"https://acme.ex.com/hook\" is not routed"));
	free(v);
	sb_tenants_free(t);
	world_free(&w);
}

/* A preview's var naming another PR's host is a violation of that
 * preview (mutant: only the environment compared, not the PR). */
Test(check_mutants, a_preview_var_at_another_prs_host_is_a_violation)
{
	const struct memfile f[] = {{"/t/w.toml",
				     "name = \"web\"\nroutes = [\"app.ex.com/*\"]\n"
				     "vars = { OTHER = \"https://app-preview-5.ex.com/\" }\n"},
				    {NULL, NULL}};
	sb_violation *v;
	size_t n = check(ZONE "[[service]]\nwrangler = \"w.toml\"\n", f, &v);
	bool found = false;
	for (size_t i = 0; i < n; i++)
		found |= strstr(v[i].msg, "web-preview-1: var OTHER") &&
			 strstr(v[i].msg, "(preview 5), not by a preview 1 deployment");
	cr_assert(found, "no violation for web-preview-1 (of %zu)", n);
	free(v);
}

/* A webhook must reach its environment (mutant: any environment taken). */
Test(check_mutants, a_webhook_reaching_another_environment_is_a_violation)
{
	sb_violation *v;
	size_t n = check(ZONE SVC "[[webhook]]\nprovider = \"p\"\nurl = \"https://app.ex.com/h\"\n"
				  "environment = \"staging\"\n",
			 NULL, &v);
	cr_assert_eq(n, 1, "%zu", n);
	cr_assert(strstr(v[0].msg, "webhook p: \"https://app.ex.com/h\" reaches web (production), "
				   "not a staging deployment"),
		  "%s", v[0].msg);
	cr_assert_eq(v[0].line, 6);
	free(v);
}
