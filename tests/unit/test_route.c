/* Route precedence, host normalisation, tenants and the naming rule. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "memfs.h"

static const char precedence_toml[] =
    "[[zone]]\nname = \"example.com\"\n"
    "[[service]]\nname = \"exact\"\nroutes = [\"a.example.com/*\"]\n"
    "[[service]]\nname = \"wild\"\nroutes = [\"*.example.com/*\"]\n"
    "[[service]]\nname = \"deepwild\"\nroutes = [\"*.b.example.com/*\"]\n"
    "[[service]]\nname = \"api\"\nroutes = [\"a.example.com/api/*\"]\n"
    "[[service]]\nname = \"apiv2\"\nroutes = [\"a.example.com/api/v2/*\"]\n"
    "[[service]]\nname = \"apiv2exact\"\nroutes = [\"a.example.com/api/v2\"]\n"
    "[[service]]\nname = \"onlypath\"\nroutes = [\"c.example.com/only/*\"]\n"
    "[[service]]\nname = \"apex\"\nroutes = [\"*example.org/*\"]\n";

static struct world W;

static void setup_prec(void)
{
	W = world_load(precedence_toml, NULL);
	cr_assert_eq(W.rc, 0, "load: %s", W.diag.msg);
}

static void teardown(void)
{
	world_free(&W);
	memset(&W, 0, sizeof(W));
	leak_check();
}

static void expect(const char *hostpath, const char *deployment)
{
	sb_route_match m;
	char buf[128];
	int r = lookup(&W, hostpath, &m);
	cr_assert_eq(r, 0, "%s: not routed (%d: %s)", hostpath, r, m.reason ? m.reason : "");
	cr_assert_str_eq(dep_name(&W, &m, buf, sizeof(buf)), deployment, "%s", hostpath);
}

static void expect_none(const char *hostpath, int code)
{
	sb_route_match m;
	int r = lookup(&W, hostpath, &m);
	cr_assert_eq(r, code, "%s: got %d (%s), want %d", hostpath, r, m.reason ? m.reason : "-",
		     code);
	cr_assert(m.reason != NULL, "%s: no reason given", hostpath);
}

TestSuite(precedence, .init = setup_prec, .fini = teardown);
TestSuite(route, .fini = leak_check);
TestSuite(naming, .fini = leak_check);

Test(precedence, exact_host_beats_wildcard)
{
	expect("a.example.com/", "exact");
	expect("z.example.com/", "wild");
}

Test(precedence, longer_wildcard_suffix_wins)
{
	expect("x.b.example.com/", "deepwild");
	expect("y.x.b.example.com/", "deepwild");
	/* "*.b.example.com" does not match b.example.com itself */
	expect("b.example.com/", "wild");
}

Test(precedence, longer_path_prefix_wins)
{
	expect("a.example.com/api/x", "api");
	expect("a.example.com/api/v2/x", "apiv2");
	expect("a.example.com/apix", "exact");
	expect("a.example.com/api", "exact"); // the prefix "/api/" needs the slash
}

Test(precedence, exact_path_beats_prefix_of_same_length)
{
	expect("a.example.com/api/v2", "apiv2exact");
	/* as in Cloudflare, the query is part of what is matched: an exact
	 * path does not match with one, a prefix does */
	expect("a.example.com/api/v2?x=1", "api");
	expect("a.example.com/api/v2?", "api");
	expect("a.example.com/api/v2/x?y=1", "apiv2");
}

static const char cloudflare_toml[] =
    "[[zone]]\nname = \"example.com\"\n"
    "[[service]]\nname = \"root\"\nroutes = [\"r.example.com\"]\n"
    "[[service]]\nname = \"app\"\n"
    "routes = [{ pattern = \"app.example.com\", custom_domain = true }]\n"
    "[[service]]\nname = \"logger\"\nroutes = [\"app.example.com/*\"]\n"
    "[[service]]\nname = \"dom\"\n"
    "routes = [{ pattern = \"d.example.com/\", custom_domain = true }]\n";

Test(route, cloudflare_pattern_semantics, .fini = teardown)
{
	W = world_load(cloudflare_toml, NULL);
	cr_assert_eq(W.rc, 0, "load: %s", W.diag.msg);
	/* a route without a path has the implied path "/": the root only */
	expect("r.example.com/", "root");
	expect_none("r.example.com/x", SB_ENOROUTE);
	expect_none("r.example.com/?q=1", SB_ENOROUTE);
	/* a route beats a custom domain on the same host and path */
	expect("app.example.com/", "logger");
	expect("app.example.com/x", "logger");
	expect("app-staging.example.com/x", "logger-staging"); /* in every environment */
	/* a custom domain owns its whole host, whatever path it is written with */
	expect("d.example.com/deep/x?y=1", "dom");
}

Test(precedence, host_decided_before_path_and_falls_through)
{
	// c.example.com routes only "/only/" paths: others fall to the wildcard
	expect("c.example.com/only/x", "onlypath");
	expect("c.example.com/other", "wild");
}

Test(precedence, apex_wildcard_form)
{
	expect("example.org/", "apex");
	expect("www.example.org/x", "apex");
	expect_none("notexample.org/", SB_ENOROUTE);
}

Test(precedence, case_trailing_dot_and_port_ignored)
{
	expect("A.EXAMPLE.com/api/x", "api");
	expect("a.example.com./api/x", "api");
	expect("a.example.com:8443/api/x", "api");
	expect("A.Example.Com.:80/api/v2", "apiv2exact");
}

Test(precedence, unknown_and_invalid_hosts)
{
	expect_none("example.net/", SB_ENOROUTE);
	expect_none("/", SB_EINVAL);
	expect_none("bad host.example.com/", SB_EINVAL);
	/* empty labels: only one trailing dot is a spelling of the same name */
	expect_none("a.example.com../api/x", SB_EINVAL);
	expect_none(".a.example.com/api/x", SB_EINVAL);
	expect_none("a..example.com/api/x", SB_EINVAL);
}

Test(normalize, lower_case_no_port_no_trailing_dot)
{
	char buf[256];
	cr_assert_eq(sb_route_host_normalize("A.Example.COM.:8443", 19, buf, sizeof(buf)), 13);
	cr_assert_str_eq(buf, "a.example.com");
	cr_assert_eq(sb_route_host_normalize("[::1]:80", 8, buf, sizeof(buf)), 5);
	cr_assert_str_eq(buf, "[::1]");
	cr_assert_eq(sb_route_host_normalize("a.example.com:", 14, buf, sizeof(buf)), 13);
	cr_assert_eq(sb_route_host_normalize("a.example.com:65535", 19, buf, sizeof(buf)), 13);
	/* after the host: nothing, or ':' and a port of at most five digits */
	const char *bad[] = {"",
			     ".",
			     "..",
			     "a..",
			     ".a",
			     "a..b",
			     "a b",
			     "a/b",
			     "a@b",
			     ":80",
			     "a.example.com:@evil.example",
			     "a.example.com:443/evil",
			     "a.example.com:443,evil",
			     "a.example.com:123456",
			     "a.example.com:8o",
			     "[::1]x",
			     "[::1]:8x",
			     "[2001:db8::1:8443"};
	for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++)
		cr_assert_eq(sb_route_host_normalize(bad[i], strlen(bad[i]), buf, sizeof(buf)),
			     SB_EINVAL, "%s", bad[i]);
}

Test(precedence, staging_hosts_follow_the_naming_rule)
{
	expect("a-staging.example.com/api/x", "api-staging");
	expect("c-staging.example.com/only/", "onlypath-staging");
	/* no staging route for that path: the production wildcard still matches */
	expect("c-staging.example.com/other", "wild");
}

Test(route, duplicate_host_and_path_names_both)
{
	const char *toml = "[[service]]\nname = \"one\"\nroutes = [\"dup.example.com/x/*\"]\n"
			   "[[service]]\nname = \"two\"\nroutes = [\"DUP.example.com/x/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, SB_EEXIST);
	cr_assert(strstr(w.diag.msg, "one") && strstr(w.diag.msg, "two"), "%s", w.diag.msg);
	cr_assert_eq(w.diag.line, 6, "line %d", w.diag.line);
	cr_assert(strstr(w.diag.msg, "/t/switchboard.toml:3:"), "%s", w.diag.msg);
	world_free(&w);
}

/* Within one service, as nginx refuses a duplicate location: the same host
 * and path twice (case aside), as a route or a custom domain, is refused at
 * the second, naming the first. */
Test(route, duplicate_route_in_one_service_is_refused)
{
	const char *lists[] = {"[\"dup.example.com/x/*\", \"DUP.example.com/x/*\"]",
			       "[{ pattern = \"dup.example.com/*\" },\n"
			       "  { pattern = \"dup.example.com/*\", custom_domain = true }]"};
	for (size_t i = 0; i < SB_ARRAY_LEN(lists); i++) {
		char toml[256];
		snprintf(toml, sizeof(toml), "[[service]]\nname = \"one\"\nroutes = %s\n",
			 lists[i]);
		struct world w = world_load(toml, NULL);
		cr_assert_eq(w.rc, SB_EEXIST, "%s accepted", lists[i]);
		cr_assert(strstr(w.diag.msg, "declared twice") && strstr(w.diag.msg, "one"), "%s",
			  w.diag.msg);
		cr_assert(strstr(w.diag.msg, "/t/switchboard.toml:3:11"), "%s", w.diag.msg);
		cr_assert_eq(w.diag.line, i ? 4 : 3, "line %d", w.diag.line);
		world_free(&w);
	}
}

Test(route, bad_patterns_are_load_errors_with_position)
{
	const char *bad[] = {"a.*.example.com/*", "a.example.com/x*y", "/x", "a..b/*",
			     "a.example.com:80/*"};
	for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++) {
		char toml[256];
		snprintf(toml, sizeof(toml), "[[service]]\nname = \"s\"\nroutes = [\"%s\"]\n",
			 bad[i]);
		struct world w = world_load(toml, NULL);
		cr_assert_eq(w.rc, SB_EINVAL, "%s accepted", bad[i]);
		cr_assert_eq(w.diag.line, 3, "%s: line %d", bad[i], w.diag.line);
		cr_assert_eq(w.diag.col, 11, "%s: col %d", bad[i], w.diag.col);
		world_free(&w);
	}
}

/* ---- tenants ----------------------------------------------------------- */

static const char tenant_toml[] =
    "[[zone]]\nname = \"revelations.studio\"\n"
    "[tenants]\nservice = \"codex-web\"\nreserved = [\"ns1\"]\nstatic = [\"codex\", \"acme\"]\n"
    "[[service]]\nname = \"codex-web\"\n[service.env.production]\nname = "
    "\"codex-web-production\"\nroutes = [{ pattern = \"codex.revelations.studio/*\", "
    "custom_domain = true }]\n"
    "[[service]]\nname = \"api\"\n[service.env.production]\nroutes = "
    "[\"api.revelations.studio/*\"]\n";

TestSuite(tenants, .init = NULL, .fini = teardown);

static void setup_tenants(void)
{
	W = world_load(tenant_toml, NULL);
	cr_assert_eq(W.rc, 0, "load: %s", W.diag.msg);
}

Test(tenants, preview_host_resolves_tenant_env_and_pr, .init = setup_tenants)
{
	sb_route_match m;
	cr_assert_eq(lookup(&W, "codex-preview-123.revelations.studio/", &m), 0, "%s", m.reason);
	cr_assert_str_eq(m.tenant, "codex");
	cr_assert_eq(m.env, SB_ENV_PREVIEW);
	cr_assert_eq(m.pr, 123);
	cr_assert_str_eq(W.model->services[m.service].name, "codex-web");
	cr_assert(m.derived);
}

Test(tenants, registered_slug_routes_to_tenant_service, .init = setup_tenants)
{
	sb_route_match m;
	cr_assert_eq(lookup(&W, "Acme.revelations.studio/x", &m), 0, "%s", m.reason);
	cr_assert_str_eq(m.tenant, "acme");
	cr_assert_str_eq(m.deployment->name, "codex-web-production");
	cr_assert_eq(lookup(&W, "codex.revelations.studio/", &m), 0);
	cr_assert_str_eq(m.tenant, "codex");
	cr_assert(!m.route->host_wildcard, "explicit host should win");
}

Test(tenants, unregistered_suspended_reserved_and_suffixed_slugs, .init = setup_tenants)
{
	sb_route_match m;
	cr_assert_eq(lookup(&W, "nobody.revelations.studio/", &m), SB_ENOTENANT);
	cr_assert(strstr(m.reason, "registered"), "%s", m.reason);
	cr_assert_eq(lookup(&W, "www.revelations.studio/", &m), SB_ERESERVED);
	cr_assert_eq(lookup(&W, "ns1.revelations.studio/", &m), SB_ERESERVED);
	cr_assert_eq(lookup(&W, "acme-staging.revelations.studio/", &m), SB_EBADSLUG);
	cr_assert(strstr(m.reason, "staging"), "%s", m.reason);
	cr_assert_eq(lookup(&W, "a.b.revelations.studio/", &m), SB_EBADSLUG);
	cr_assert(strstr(m.reason, "single label"), "%s", m.reason);
	/* api is a routed host, never a tenant */
	cr_assert_eq(lookup(&W, "api.revelations.studio/", &m), 0);
	cr_assert_null(m.tenant);

	sb_tenants_put(W.tenants, "acme", 4, SB_TENANT_SUSPENDED);
	cr_assert_eq(lookup(&W, "acme.revelations.studio/", &m), SB_ESUSPENDED);
	cr_assert_str_eq(m.tenant, "acme");
	cr_assert_str_eq(m.deployment->name, "codex-web-production");
	sb_tenants_put(W.tenants, "codex", 5, SB_TENANT_SUSPENDED);
	cr_assert_eq(lookup(&W, "codex.revelations.studio/", &m), SB_ESUSPENDED);
	cr_assert_eq(lookup(&W, "codex-preview-9.revelations.studio/", &m), SB_ESUSPENDED);
}

Test(tenants, slug_syntax, .init = setup_tenants)
{
	const char *ok[] = {
	    "a",    "acme",   "a-b",
	    "0abc", "x1-2-3", "a23456789012345678901234567890123456789012345678901234567890123"};
	const char *bad[] = {"",
			     "-a",
			     "a-",
			     "A",
			     "a.b",
			     "a_b",
			     "api",
			     "ns1",
			     "www",
			     "auth",
			     "acme-staging",
			     "acme-preview-12",
			     "a234567890123456789012345678901234567890123456789012345678901234"};
	const char *why;
	for (size_t i = 0; i < SB_ARRAY_LEN(ok); i++)
		cr_assert_eq(sb_model_slug_check(W.model, ok[i], strlen(ok[i]), &why), 0, "%s: %s",
			     ok[i], why);
	for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++)
		cr_assert_lt(sb_model_slug_check(W.model, bad[i], strlen(bad[i]), &why), 0,
			     "'%s' accepted", bad[i]);
}

/* RFC 3492's samples are real A-labels; the rest only look like them. */
Test(tenants, xn_slugs_must_be_real_a_labels, .init = setup_tenants)
{
	const char *ok[] = {"xn--bcher-kva",
			    "xn--mnchen-3ya",
			    "xn--ihqwcrb4cv8a8dqg056pqjye",
			    "xn--egbpdaj6bu4bxfgehfvwxn",
			    "xn--3b-ww4c5e180e575a65lsy2b",
			    "xn--55qx5d"};
	const char *bad[] = {"xn--zz",		/* a digit run cut short */
			     "xn--abc",		/* C1 controls, U+0080-0082 */
			     "xn--99999999999", /* past U+10FFFF */
			     "xn--a-0000000000000000000000000000000000000000000000000000000",
			     "ab--cd",	      /* RFC 5891 4.2.3.1: reserved */
			     "xn--bcher-kv"}; /* cut short */
	const char *why;
	for (size_t i = 0; i < SB_ARRAY_LEN(ok); i++)
		cr_assert_eq(sb_model_slug_check(W.model, ok[i], strlen(ok[i]), &why), 0, "%s: %s",
			     ok[i], why);
	for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++) {
		cr_assert_eq(sb_model_slug_check(W.model, bad[i], strlen(bad[i]), &why),
			     SB_EBADSLUG, "'%s' accepted", bad[i]);
		cr_assert(strstr(why, "xn--"), "%s: %s", bad[i], why);
	}
}

Test(tenants, leading_zero_pr_is_not_a_preview, .init = setup_tenants)
{
	sb_route_match m;
	cr_assert_eq(lookup(&W, "codex-preview-0123.revelations.studio/", &m), SB_ENOTENANT);
	cr_assert_eq(lookup(&W, "api-preview-5.revelations.studio/", &m), 0);
	cr_assert_eq(m.pr, 5);
	cr_assert_null(m.tenant);
}

static int count_cb(void *ctx, const char *slug, size_t n)
{
	cr_assert_eq(strlen(slug), n);
	(*(size_t *)ctx)++;
	return 0;
}

Test(tenants, set_grows_and_updates)
{
	sb_tenants *t = sb_tenants_new(1);
	char s[32];
	for (int i = 0; i < 5000; i++) {
		int n = snprintf(s, sizeof(s), "t%d", i);
		cr_assert_eq(sb_tenants_put(t, s, (size_t)n, SB_TENANT_ACTIVE), 0);
	}
	cr_assert_eq(sb_tenants_count(t), 5000);
	cr_assert_eq(sb_tenants_get(t, "t4999", 5, NULL), SB_TENANT_ACTIVE);
	cr_assert_eq(sb_tenants_get(t, "t5000", 5, NULL), SB_TENANT_NONE);
	sb_tenants_put(t, "t7", 2, SB_TENANT_SUSPENDED);
	cr_assert_eq(sb_tenants_get(t, "t7", 2, NULL), SB_TENANT_SUSPENDED);
	cr_assert_eq(sb_tenants_count(t), 5000);
	struct {
		size_t active, suspended;
	} cnt = {0, 0};
	sb_tenants_each(t, SB_TENANT_ACTIVE, count_cb, &cnt.active);
	sb_tenants_each(t, SB_TENANT_SUSPENDED, count_cb, &cnt.suspended);
	cr_assert_eq(cnt.active, 4999);
	cr_assert_eq(cnt.suspended, 1);
	char big[70];
	memset(big, 'a', sizeof(big));
	cr_assert_eq(sb_tenants_put(t, big, 64, SB_TENANT_ACTIVE), SB_ETOOLONG);
	sb_tenants_free(t);
}

Test(naming, custom_templates)
{
	const char *toml = "[[zone]]\nname = \"ex.com\"\n"
			   "[naming]\npreview = \"pr{pr}-{label}\"\nstaging = \"stg-{label}\"\n"
			   "[[service]]\nname = \"web\"\nroutes = [\"app.ex.com/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	sb_route_match m;
	cr_assert_eq(lookup(&w, "pr42-app.ex.com/", &m), 0, "%s", m.reason);
	cr_assert_eq(m.env, SB_ENV_PREVIEW);
	cr_assert_eq(m.pr, 42);
	cr_assert_eq(lookup(&w, "stg-app.ex.com/", &m), 0, "%s", m.reason);
	cr_assert_eq(m.env, SB_ENV_STAGING);
	cr_assert_eq(lookup(&w, "app-preview-1.ex.com/", &m), SB_ENOROUTE);
	char buf[64];
	cr_assert_eq(sb_model_name_format(w.model, SB_ENV_PREVIEW, "app", 3, 7, buf, sizeof(buf)),
		     7);
	cr_assert_str_eq(buf, "pr7-app");
	world_free(&w);
}

Test(naming, bad_templates_rejected)
{
	const char *bad[] = {"preview = \"{label}\"", "preview = \"{label}{pr}\"",
			     "staging = \"{label}-{pr}\"", "preview = \"{label}_pr{pr}\"",
			     "staging = \"fixed\""};
	for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++) {
		char toml[256];
		snprintf(toml, sizeof(toml), "[naming]\n%s\n", bad[i]);
		struct world w = world_load(toml, NULL);
		cr_assert_eq(w.rc, SB_EINVAL, "%s accepted", bad[i]);
		cr_assert_eq(w.diag.line, 2);
		world_free(&w);
	}
}

/* ---- a service's declared label ---------------------------------------- */

/* "api" serves api.ex.com and the apex; its label "hooks" names both hosts'
 * staging and preview hosts. "web" keeps its own first label, and its URL
 * var naming api's host follows api's label. */
static const char label_toml[] =
    "[[zone]]\nname = \"ex.com\"\n"
    "[[service]]\nname = \"api\"\nlabel = \"hooks\"\n"
    "routes = [\"api.ex.com/*\", \"ex.com/site/*\", \"*.any.ex.com/*\"]\n"
    "[[service]]\nname = \"web\"\nroutes = [\"app.ex.com/*\", \"ex.com/*\"]\n"
    "vars = { API_URL = \"https://api.ex.com/v1\", SITE = \"https://ex.com/site/a\", "
    "HOME = \"https://ex.com/\" }\n";

static void setup_label(void)
{
	W = world_load(label_toml, NULL);
	cr_assert_eq(W.rc, 0, "load: %s", W.diag.msg);
}

TestSuite(label, .init = setup_label, .fini = teardown);

Test(label, names_the_staging_and_preview_hosts)
{
	expect("hooks-staging.ex.com/x", "api-staging");
	expect("app-staging.ex.com/x", "web-staging");
	sb_route_match m;
	cr_assert_eq(lookup(&W, "hooks-preview-7.ex.com/x", &m), 0, "%s", m.reason);
	cr_assert_eq(m.env, SB_ENV_PREVIEW);
	cr_assert_eq(m.pr, 7);
	cr_assert_str_eq(W.model->services[m.service].name, "api");
	cr_assert_str_eq(m.route->host, "api.ex.com");
	cr_assert_eq(lookup(&W, "app-preview-7.ex.com/x", &m), 0, "%s", m.reason);
	cr_assert_str_eq(W.model->services[m.service].name, "web");
	/* the host's own first label no longer names api's other environments */
	expect_none("api-staging.ex.com/x", SB_ENOROUTE);
	expect_none("api-preview-7.ex.com/x", SB_ENOROUTE);
}

/* A zone apex has no label of its own: only a declared label names its
 * staging and preview hosts, and the path decides between the services. */
Test(label, gives_the_apex_staging_and_preview_hosts)
{
	expect("hooks-staging.ex.com/site/a", "api-staging");
	sb_route_match m;
	cr_assert_eq(lookup(&W, "hooks-preview-3.ex.com/site/a", &m), 0, "%s", m.reason);
	cr_assert_str_eq(W.model->services[m.service].name, "api");
	cr_assert_str_eq(m.route->host, "ex.com");
	/* web's apex route has no label: no staging or preview host */
	const sb_deployment *st = &W.model->deployments[W.model->services[1].deployment[1]];
	cr_assert_eq(st->nroutes, 1);
	cr_assert_str_eq(st->routes[0].host, "app-staging.ex.com");
	cr_assert_str_eq(st->routes[0].base_host, "app.ex.com");
	/* a wildcard is never renamed */
	const sb_deployment *ast = &W.model->deployments[W.model->services[0].deployment[1]];
	cr_assert_eq(ast->nroutes, 2);
	cr_assert_str_eq(ast->routes[1].host, "hooks-staging.ex.com");
	cr_assert_str_eq(ast->routes[1].base_host, "ex.com");
	cr_assert_str_eq(ast->routes[1].pattern, "hooks-staging.ex.com/site/*");
}

Test(label, url_vars_follow_the_named_services_label)
{
	const sb_deployment *st = &W.model->deployments[W.model->services[1].deployment[1]];
	const char *want[][2] = {{"API_URL", "https://hooks-staging.ex.com/v1"},
				 {"SITE", "https://hooks-staging.ex.com/site/a"},
				 {"HOME", "https://ex.com/"}};
	for (size_t k = 0; k < SB_ARRAY_LEN(want); k++) {
		bool seen = false;
		for (size_t i = 0; i < st->nvars; i++)
			if (strcmp(st->vars[i].key, want[k][0]) == 0) {
				cr_assert_str_eq(st->vars[i].value, want[k][1]);
				seen = true;
			}
		cr_assert(seen, "%s not set", want[k][0]);
	}
	sb_pool *pool = sb_pool_new(0);
	sb_deployment pv;
	sb_model_preview(W.model, 1, 12, pool, &pv);
	for (size_t i = 0; i < pv.nvars; i++)
		if (strcmp(pv.vars[i].key, "API_URL") == 0)
			cr_assert_str_eq(pv.vars[i].value, "https://hooks-preview-12.ex.com/v1");
	sb_model_preview(W.model, 0, 12, pool, &pv);
	cr_assert_eq(pv.nroutes, 2);
	cr_assert_str_eq(pv.routes[0].host, "hooks-preview-12.ex.com");
	cr_assert_str_eq(pv.routes[1].host, "hooks-preview-12.ex.com");
	sb_pool_free(pool);
	/* and the consistency check agrees with where they land: only HOME,
	 * on the apex that has no label, stays on production */
	sb_violation *v = NULL;
	size_t n = sb_check_run(W.model, W.rt, W.tenants, 1, &v);
	size_t home = 0;
	for (size_t i = 0; i < n; i++) {
		bool is_home = strstr(v[i].msg, "var HOME") != NULL;
		home += is_home;
		if (!is_home)
			cr_log_error("%s", v[i].msg);
	}
	free(v);
	cr_assert_eq(n, 2);
	cr_assert_eq(home, 2);
}

/* Two services whose hosts the rule would give one name: refused, saying
 * where the names come from. In staging the exact table sees it; with
 * staging routes of their own, the preview rule's table does. */
Test(route, a_label_that_collides_is_refused)
{
	const char *toml =
	    "[[zone]]\nname = \"ex.com\"\n"
	    "[[service]]\nname = \"site\"\nlabel = \"codex\"\nroutes = [\"ex.com/*\"]\n"
	    "[[service]]\nname = \"web\"\nroutes = [\"codex.ex.com/*\"]\n";
	load_refused(toml, SB_EEXIST, (const char *[]){"codex-staging.ex.com/*", "'label'", NULL},
		     NULL);

	toml = "[[zone]]\nname = \"ex.com\"\n"
	       "[[service]]\nname = \"site\"\nlabel = \"codex\"\nroutes = [\"ex.com/*\"]\n"
	       "[service.env.staging]\nroutes = [\"s1.ex.com/*\"]\n"
	       "[[service]]\nname = \"web\"\nroutes = [\"codex.ex.com/*\"]\n"
	       "[service.env.staging]\nroutes = [\"s2.ex.com/*\"]\n";
	load_refused(toml, SB_EEXIST,
		     (const char *[]){"same preview hosts", "\"codex.ex.com/*\" of web",
				      "\"ex.com/*\" of site", NULL},
		     NULL);

	/* one service, two hosts, one label: the same path twice is refused */
	toml = "[[zone]]\nname = \"ex.com\"\n"
	       "[[service]]\nname = \"api\"\nlabel = \"hooks\"\n"
	       "routes = [\"a.ex.com/*\", \"b.ex.com/x/*\", \"c.ex.com/*\"]\n";
	load_refused(toml, SB_EEXIST, (const char *[]){"hooks-staging.ex.com/*", NULL}, NULL);
}

/* The label's staging and preview names must fit in 63 bytes: said at the
 * label, in switchboard.toml. */
Test(route, a_label_too_long_for_its_names_is_refused_at_the_label)
{
	char toml[512];
	char lab[64];
	memset(lab, 'a', 60);
	lab[60] = '\0';
	snprintf(toml, sizeof(toml),
		 "[[zone]]\nname = \"ex.com\"\n"
		 "[[service]]\nname = \"api\"\nlabel = \"%s\"\nroutes = [\"api.ex.com/*\"]\n",
		 lab);
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, SB_EINVAL, "%d: %s", w.rc, w.diag.msg);
	cr_assert_eq(w.diag.line, 5);
	cr_assert_eq(w.diag.col, 9);
	cr_assert(strstr(w.diag.msg, "staging label") && strstr(w.diag.msg, "shorten the label"),
		  "%s", w.diag.msg);
	world_free(&w);
}

/* The tenant-aware service's hosts carry the tenant of the production host
 * they were made from, whatever label names them; its apex carries none. */
Test(tenants, a_labelled_tenant_host_keeps_its_tenant)
{
	const char *toml =
	    "[[zone]]\nname = \"ex.com\"\n[tenants]\nservice = \"web\"\nstatic = [\"codex\"]\n"
	    "[[service]]\nname = \"web\"\nlabel = \"app\"\n"
	    "routes = [\"codex.ex.com/*\", \"ex.com/about/*\"]\n";
	W = world_load(toml, NULL);
	cr_assert_eq(W.rc, 0, "load: %s", W.diag.msg);
	sb_route_match m;
	const char *hosts[] = {"codex.ex.com/", "app-staging.ex.com/", "app-preview-9.ex.com/"};
	for (size_t i = 0; i < SB_ARRAY_LEN(hosts); i++) {
		cr_assert_eq(lookup(&W, hosts[i], &m), 0, "%s: %s", hosts[i], m.reason);
		cr_assert_str_eq(m.tenant, "codex", "%s", hosts[i]);
	}
	sb_tenants_put(W.tenants, "codex", 5, SB_TENANT_SUSPENDED);
	for (size_t i = 0; i < SB_ARRAY_LEN(hosts); i++)
		cr_assert_eq(lookup(&W, hosts[i], &m), SB_ESUSPENDED, "%s", hosts[i]);
	/* the apex and its derived hosts are no tenant's: "ex" is not asked */
	const char *apex[] = {"ex.com/about/", "app-staging.ex.com/about/x",
			      "app-preview-9.ex.com/about/x"};
	for (size_t i = 0; i < SB_ARRAY_LEN(apex); i++) {
		cr_assert_eq(lookup(&W, apex[i], &m), 0, "%s: %s", apex[i], m.reason);
		cr_assert_null(m.tenant, "%s", apex[i]);
	}
}

/* Two services' hosts under one derived name with overlapping paths: the
 * longer path would take, on the staging and preview host, requests that
 * production gives the other service. Refused; paths that cannot meet are
 * not. */
Test(route, overlapping_paths_of_two_services_under_one_label_are_refused)
{
	const char *pairs[][3] = {
	    {"ex.com/x/*", "codex.ex.com/*", "overlap"},
	    {"ex.com/x", "codex.ex.com/*", "overlap"},
	    {"ex.com/*", "codex.ex.com/api/v1", "overlap"},
	    {"ex.com/x/*", "codex.ex.com/api/*", NULL},
	    {"ex.com/x", "codex.ex.com/x/*", NULL},
	};
	for (size_t i = 0; i < SB_ARRAY_LEN(pairs); i++) {
		char toml[512];
		snprintf(toml, sizeof(toml),
			 "[[zone]]\nname = \"ex.com\"\n"
			 "[[service]]\nname = \"site\"\nlabel = \"codex\"\nroutes = [\"%s\"]\n"
			 "[[service]]\nname = \"web\"\nroutes = [\"%s\"]\n",
			 pairs[i][0], pairs[i][1]);
		struct world w = world_load(toml, NULL);
		if (!pairs[i][2]) {
			cr_assert_eq(w.rc, 0, "%s + %s: %s", pairs[i][0], pairs[i][1], w.diag.msg);
		} else {
			cr_assert_eq(w.rc, SB_EEXIST, "%s + %s: %d", pairs[i][0], pairs[i][1],
				     w.rc);
			cr_assert(strstr(w.diag.msg, pairs[i][2]) &&
				      strstr(w.diag.msg, "of site") &&
				      strstr(w.diag.msg, "of web") &&
				      strstr(w.diag.msg, "after \"codex.ex.com\""),
				  "%s", w.diag.msg);
			cr_assert_eq(w.diag.line, 9, "line %d: %s", w.diag.line, w.diag.msg);
		}
		world_free(&w);
	}
}

/* A derived host is a DNS name too: at most 253 characters in all, not
 * only 63 in its first label (a 250-character host whose staging host
 * would be 258 was accepted, and that host could never be routed). */
#define LONG_LABELS "bcdefghijklmnopqrstuvwxyzbcdefghijklmnopqrstuvwxyzbcdefghijklm"

Test(route, a_derived_host_longer_than_253_is_refused)
{
	char host[256], toml[512];
	snprintf(host, sizeof(host), "x.%.60s.%.60s.%.60s.%.58s.ex.com", LONG_LABELS, LONG_LABELS,
		 LONG_LABELS, LONG_LABELS);
	cr_assert_eq(strlen(host), 250);
	snprintf(toml, sizeof(toml),
		 "[[zone]]\nname = \"ex.com\"\n[[service]]\nname = \"w\"\nroutes = [\"%s/*\"]\n",
		 host);
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, SB_EINVAL, "%d: %s", w.rc, w.diag.msg);
	cr_assert(strstr(w.diag.msg, "\"x-staging\"") && strstr(w.diag.msg, "253"), "%s",
		  w.diag.msg);
	cr_assert_eq(w.diag.line, 5);
	world_free(&w);
	/* 245 characters: its staging host (253) fits */
	snprintf(host, sizeof(host), "x.%.60s.%.60s.%.60s.%.53s.ex.com", LONG_LABELS, LONG_LABELS,
		 LONG_LABELS, LONG_LABELS);
	snprintf(toml, sizeof(toml),
		 "[[zone]]\nname = \"ex.com\"\n[[service]]\nname = \"w\"\nroutes = [\"%s/*\"]\n",
		 host);
	w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	sb_route_match m;
	char hp[300];
	snprintf(hp, sizeof(hp), "x-staging.%s/", host + 2);
	cr_assert_eq(strlen(hp), 254);
	cr_assert_eq(lookup(&w, hp, &m), 0, "%s", m.reason);
	cr_assert_eq(m.env, SB_ENV_STAGING);
	world_free(&w);
}
