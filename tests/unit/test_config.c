/* wrangler.toml inheritance and switchboard.toml errors. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "memfs.h"

TestSuite(wrangler, .fini = leak_check);
TestSuite(decl, .fini = leak_check);

static sb_toml_value *parse(const char *text)
{
	sb_toml_value *v = NULL;
	sb_diag d;
	int r = sb_toml_parse(text, strlen(text), "w.toml", &v, &d);
	cr_assert_eq(r, 0, "parse: %s", d.msg);
	return v;
}

static int wload(const char *text, sb_pool *pool, sb_wrangler *w, sb_diag *d)
{
	sb_toml_value *v = parse(text);
	int r = sb_wrangler_load(v, "w.toml", pool, w, d);
	sb_toml_free(v);
	return r;
}

/* The plan's file, as the plan wrote it (multi-line inline tables). */
static const char plan_web[] =
    "name = \"codex-web\"\nmain = \".svelte-kit/cloudflare/_worker.js\"\n"
    "compatibility_date = \"2025-01-01\"\ncompatibility_flags = [\"nodejs_compat\"]\n\n"
    "[assets]\nbinding = \"ASSETS\"\ndirectory = \".svelte-kit/cloudflare\"\n\n"
    "[observability]\nenabled = true\n\n"
    "# Production environment\n[env.production]\nname = \"codex-web-production\"\nvars = {\n"
    "  ENVIRONMENT = \"production\",\n"
    "  AUTH_WORKER_URL = \"https://auth.revelations.studio\",\n"
    "  API_URL = \"https://api.revelations.studio\"\n}\nroutes = [\n"
    "  { pattern = \"codex.revelations.studio/*\", custom_domain = true },\n"
    "  # Future: wildcard for all tenants\n"
    "  # { pattern = \"*.revelations.studio/*\", custom_domain = true }\n]\n\n"
    "[env.staging]\nvars = {\n  ENVIRONMENT = \"staging\"\n}\n";

Test(wrangler, plan_file_and_inheritance)
{
	sb_pool *pool = sb_pool_new(0);
	sb_wrangler w;
	sb_diag d;
	cr_assert_eq(wload(plan_web, pool, &w, &d), 0, "%s", d.msg);
	cr_assert_str_eq(w.top.name, "codex-web");
	cr_assert_eq(w.nenvs, 2);

	const sb_wr_env *p = sb_wrangler_env(&w, "production");
	cr_assert_not_null(p);
	cr_assert_str_eq(p->name, "codex-web-production");
	cr_assert(p->name_declared);
	cr_assert_eq(p->nvars, 3);
	cr_assert_str_eq(sb_wrangler_var(p, "API_URL")->value, "https://api.revelations.studio");
	cr_assert_eq(p->nroutes, 1);
	cr_assert(p->routes[0].custom_domain);
	cr_assert_str_eq(p->routes[0].pattern, "codex.revelations.studio/*");
	/* inherited from the top level */
	cr_assert_str_eq(p->main, ".svelte-kit/cloudflare/_worker.js");
	cr_assert_str_eq(p->compatibility_date, "2025-01-01");
	cr_assert_eq(p->ncompatibility_flags, 1);

	const sb_wr_env *s = sb_wrangler_env(&w, "staging");
	cr_assert_str_eq(s->name, "codex-web-staging"); /* <name>-<env> */
	cr_assert(!s->name_declared);
	cr_assert_eq(s->nvars, 1);
	cr_assert_null(sb_wrangler_var(s, "API_URL")); /* vars are not inherited */
	cr_assert_null(sb_wrangler_env(&w, "dev"));
	sb_pool_free(pool);
}

Test(wrangler, routes_inherited_vars_not)
{
	const char *t = "name = \"w\"\nroute = \"w.example.com/*\"\nworkers_dev = true\n"
			"vars = { A = \"1\", N = 5, J = { k = [1, true] } }\n"
			"[env.qa]\n[env.own]\nroutes = [\"own.example.com/x\"]\n";
	sb_pool *pool = sb_pool_new(0);
	sb_wrangler w;
	sb_diag d;
	cr_assert_eq(wload(t, pool, &w, &d), 0, "%s", d.msg);
	cr_assert_eq(w.top.nvars, 3);
	cr_assert_str_eq(sb_wrangler_var(&w.top, "N")->value, "5");
	cr_assert(!sb_wrangler_var(&w.top, "N")->is_string);
	cr_assert_str_eq(sb_wrangler_var(&w.top, "J")->value, "{\"k\":[1,true]}");
	const sb_wr_env *qa = sb_wrangler_env(&w, "qa");
	cr_assert_str_eq(qa->name, "w-qa");
	cr_assert_eq(qa->nroutes, 1);
	cr_assert(!qa->routes_declared);
	cr_assert_str_eq(qa->routes[0].pattern, "w.example.com/*");
	cr_assert(qa->workers_dev);
	cr_assert_eq(qa->nvars, 0);
	const sb_wr_env *own = sb_wrangler_env(&w, "own");
	cr_assert(own->routes_declared);
	cr_assert_str_eq(own->routes[0].pattern, "own.example.com/x");
	sb_pool_free(pool);
}

static void expect_wrangler_error(const char *text, int line, const char *needle)
{
	sb_pool *pool = sb_pool_new(0);
	sb_wrangler w;
	sb_diag d = {0};
	cr_assert_lt(wload(text, pool, &w, &d), 0, "accepted: %s", text);
	cr_assert_eq(d.line, line, "line %d, want %d: %s", d.line, line, d.msg);
	cr_assert(d.col > 0);
	cr_assert(strstr(d.msg, needle), "message \"%s\" lacks \"%s\"", d.msg, needle);
	sb_pool_free(pool);
}

Test(wrangler, errors)
{
	expect_wrangler_error("name = \"w\"\nroutes = [{ pattern = \"*.ex.com/*\", custom_domain = "
			      "true }]\n",
			      2, "use a route instead");
	expect_wrangler_error("name = \"w\"\nroutes = [{ pattern = \"*.ex.com/*\", custom_domain = "
			      "true }]\n",
			      2, "Wildcard operators (*) are not allowed in Custom Domains");
	expect_wrangler_error("name = \"w\"\nroute = { pattern = \"ex.com/api/*\", custom_domain = "
			      "true }\n",
			      2, "Paths are not allowed");
	expect_wrangler_error("name = \"w\"\nroute = \"a/*\"\nroutes = [\"b/*\"]\n", 3,
			      "both 'route' and 'routes'");
	expect_wrangler_error("main = \"x.js\"\n", 1, "missing top-level 'name'");
	expect_wrangler_error("name = 5\n", 1, "'name' must be a string");
	expect_wrangler_error("name = \"w\"\nvars = [1]\n", 2, "'vars' must be a table");
	expect_wrangler_error("name = \"w\"\nroutes = [{ custom_domain = true }]\n", 2,
			      "missing 'pattern'");
	expect_wrangler_error("name = \"w\"\n[env]\nprod = 1\n", 3, "'env.prod' must be a table");
}

Test(wrangler, unknown_keys_are_ignored)
{
	const char *t = "name = \"w\"\nkv_namespaces = [{ binding = \"K\", id = \"x\" }]\n"
			"[durable_objects]\nbindings = []\n[env.production.d1]\nx = 1\n";
	sb_pool *pool = sb_pool_new(0);
	sb_wrangler w;
	sb_diag d;
	cr_assert_eq(wload(t, pool, &w, &d), 0, "%s", d.msg);
	sb_pool_free(pool);
}

/* ---- switchboard.toml -------------------------------------------------- */

static void expect_decl_error(const char *toml, const struct memfile *files, int line,
			      const char *needle)
{
	struct world w = world_load(toml, files);
	cr_assert_lt(w.rc, 0, "accepted:\n%s", toml);
	char buf[2048];
	sb_diag_format(&w.diag, buf, sizeof(buf));
	cr_assert_eq(w.diag.line, line, "line %d, want %d: %s", w.diag.line, line, buf);
	cr_assert(strstr(buf, needle), "message \"%s\" lacks \"%s\"", buf, needle);
	world_free(&w);
}

static const struct memfile files[] = {
    {"/t/w.toml", "name = \"web\"\n[env.production]\nroutes = [\"web.ex.com/*\"]\n"},
    {"/t/bad.toml", "name = \"web\"\nroutes = [\n"},
    {NULL, NULL}};

Test(decl, errors_name_file_line_and_what)
{
	expect_decl_error("data_dir = \"x\"\nlisten_on = 1\n", NULL, 2,
			  "/t/switchboard.toml:2:1: unknown key 'listen_on'");
	expect_decl_error("[[service]]\nwrangler = \"missing.toml\"\n", NULL, 2,
			  "cannot read wrangler file \"/t/missing.toml\"");
	expect_decl_error("[[service]]\nwrangler = \"bad.toml\"\n", files, 3, "/t/bad.toml:3:");
	expect_decl_error("[[service]]\nwrangler = \"w.toml\"\nupstream.prod = \"http://x:1\"\n",
			  files, 3, "unknown environment 'prod'");
	expect_decl_error("[[service]]\nwrangler = \"w.toml\"\nupstream.production = \"x:1\"\n",
			  files, 3, "http://host:port");
	expect_decl_error("[[service]]\nwrangler = \"w.toml\"\nroutes = []\n", files, 3,
			  "names, vars and routes belong in that file");
	expect_decl_error("[[zone]]\nname = \"bad_zone..com\"\n", NULL, 2, "must be a DNS name");
	expect_decl_error("[[zone]]\nname = \"ex.com\"\naddresses = [\"1.2.3.4\", \"999.1.1.1\"]\n",
			  NULL, 3, "not an IPv4 or IPv6 address");
	expect_decl_error("[tenants]\nservice = \"nope\"\n", NULL, 2,
			  "\"nope\" is not a declared service");
	expect_decl_error("[tenants]\nservice = \"web\"\nstatic = [\"Bad_Slug\"]\n"
			  "[[zone]]\nname = \"ex.com\"\n[[service]]\nwrangler = \"w.toml\"\n",
			  files, 3, "static tenant \"Bad_Slug\" is not a valid slug");
	expect_decl_error("[tenants]\nservice = \"web\"\nstatic = [\"api\"]\n"
			  "[[zone]]\nname = \"ex.com\"\n[[service]]\nwrangler = \"w.toml\"\n",
			  files, 3, "reserved");
	expect_decl_error("[[webhook]]\nprovider = \"stripe\"\n", NULL, 1, "missing 'url'");
	expect_decl_error("[[webhook]]\nprovider = \"s\"\nurl = \"https://a.b/\"\nenvironment = "
			  "\"dev\"\n",
			  NULL, 4, "unknown environment 'dev'");
	expect_decl_error("[previews]\nprs = [0]\n", NULL, 2, "pull request number");
	expect_decl_error(
	    "[[service]]\nwrangler = \"w.toml\"\n[[service]]\nwrangler = "
	    "\"w.toml\"\n",
	    files, 3,
	    "/t/switchboard.toml:3:1: this [[service]] points at /t/w.toml, as the one at "
	    "line 1 does");
	expect_decl_error("a = \"x\"\na = \"y\"\n", NULL, 2, "/t/switchboard.toml:2:");
	/* an empty file (one a reload caught mid-write) serves nothing */
	expect_decl_error("", NULL, 1, "the declaration has no [[service]]: nothing to serve");
	expect_decl_error("[[zone]]\nname = \"ex.com\"\n", NULL, 1, "has no [[service]]");
}

Test(decl, inline_service_and_defaults)
{
	const char *toml = "[[zone]]\nname = \"Ex.COM.\"\naddresses = [\"::1\"]\n"
			   "[[service]]\nname = \"site\"\nroutes = [\"ex.com/*\"]\n"
			   "upstream.production = { command = [\"site\", \"--port\", \"1\"] }\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	cr_assert_str_eq(w.decl->zones[0].name, "ex.com");
	cr_assert_str_eq(w.decl->data_dir, "/t/.switchboard");
	cr_assert_str_eq(w.decl->preview_format, "{label}-preview-{pr}");
	cr_assert_eq(w.decl->services[0].upstream[SB_ENV_PRODUCTION].argc, 3);
	cr_assert_eq(w.decl->zones[0].soa.minimum, 300);
	/* the apex has no label of its own: no staging or preview hosts */
	cr_assert_null(w.model->services[0].label);
	cr_assert_eq(w.model->deployments[w.model->services[0].deployment[1]].nroutes, 0);
	world_free(&w);
}

Test(decl, dns_section)
{
	const char *toml = "[dns]\ntenant_records = \"wildcard\"\nixfr_history = 8\n"
			   "rrl = { responses_per_second = 20, slip = 3 }\n"
			   "[[dns.key]]\nname = \"k\"\nsecret = \"c2VjcmV0c2VjcmV0c2VjcmV0\"\n"
			   "[[dns.allow_transfer]]\naddress = \"127.0.0.1/32\"\nkey = \"k\"\n"
			   "[[dns.notify]]\naddress = \"127.0.0.1:5300\"\n"
			   "[[service]]\nname = \"web\"\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	const sb_dns_cfg *c = &w.decl->dns;
	cr_assert(c->tenant_wildcard && w.decl->dns_tenant_wildcard);
	cr_assert_eq(c->ixfr_history, 8);
	cr_assert_eq(c->rrl_rps, 20);
	cr_assert_eq(c->rrl_slip, 3);
	cr_assert_eq(c->rrl_ipv4_prefix, 24);
	cr_assert_eq(c->nkeys, 1);
	cr_assert_str_eq(c->keys[0].name, "k");
	cr_assert_null(c->keys[0].algorithm);
	cr_assert_eq(c->nallow, 1);
	cr_assert_str_eq(c->allow[0].key, "k");
	cr_assert_eq(c->nnotify, 1);
	cr_assert_null(c->notify[0].key);
	world_free(&w);
	expect_decl_error("[dns]\ntenant_records = \"some\"\n", NULL, 2, "\"each\"");
	expect_decl_error("[dns]\nrrl = { rate = 1 }\n", NULL, 2, "unknown key 'rate'");
	expect_decl_error("[[dns.notify]]\nkey = \"k\"\n", NULL, 1, "missing 'address'");
	expect_decl_error("[[zone]]\nname = \"ex.com\"\n[[zone.record]]\nname = \"@\"\ntype = "
			  "\"MX\"\n",
			  NULL, 3, "missing 'data'");
}
