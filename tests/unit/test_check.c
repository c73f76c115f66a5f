/* The consistency check: URL vars and webhooks must be routed. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "memfs.h"

TestSuite(check, .fini = leak_check);

#define ZONE "[[zone]]\nname = \"rev.st\"\n"
#define WEB                                                                                        \
	"name = \"web\"\n[env.production]\nvars = { ENVIRONMENT = \"production\", API_URL = "      \
	"\"https://api.rev.st\" }\nroutes = [\"app.rev.st/*\"]\n"
#define API_OK                                                                                     \
	"name = \"api\"\n[env.production]\nvars = { WEB_APP_URL = \"https://app.rev.st/home\" "    \
	"}\nroutes = [\"api.rev.st/*\"]\n"

static const char base_toml[] = ZONE "[[service]]\nwrangler = \"web.toml\"\nurl_vars = "
				     "[\"API_URL\"]\n"
				     "[[service]]\nwrangler = \"api.toml\"\n"
				     "[[webhook]]\nprovider = \"stripe\"\nurl = "
				     "\"https://api.rev.st/webhooks/stripe\"\nservice = \"api\"\n";

static size_t run(const char *toml, const struct memfile *files, sb_violation **v)
{
	struct world w = world_load(toml, files);
	cr_assert_eq(w.rc, 0, "load: %s", w.diag.msg);
	*v = NULL;
	size_t n = sb_check_run(w.model, w.rt, w.tenants, 1, v);
	world_free(&w);
	return n;
}

static bool any(const sb_violation *v, size_t n, const char *a, const char *b, const char *c)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(v[i].msg, a) && strstr(v[i].msg, b) && strstr(v[i].msg, c))
			return true;
	return false;
}

static void dump(const sb_violation *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "  %s:%d:%d: %s\n", v[i].file, v[i].line, v[i].col, v[i].msg);
}

Test(check, consistent_declaration_passes_in_every_environment)
{
	const struct memfile f[] = {{"/t/web.toml", WEB}, {"/t/api.toml", API_OK}, {NULL, NULL}};
	sb_violation *v;
	size_t n = run(base_toml, f, &v);
	dump(v, n);
	cr_assert_eq(n, 0);
	free(v);
}

Test(check, var_pointing_at_unrouted_host)
{
	const char *web = "name = \"web\"\n[env.production]\nvars = { API_URL = "
			  "\"https://apii.rev.st\" }\nroutes = [\"app.rev.st/*\"]\n";
	const struct memfile f[] = {{"/t/web.toml", web}, {"/t/api.toml", API_OK}, {NULL, NULL}};
	sb_violation *v;
	size_t n = run(base_toml, f, &v);
	dump(v, n);
	cr_assert_geq(n, 1);
	cr_assert(any(v, n, "API_URL", "web-production", "apii.rev.st"));
	cr_assert_str_eq(v[0].file, "/t/web.toml");
	cr_assert_eq(v[0].line, 3);
	free(v);
}

Test(check, staging_var_pointing_at_production)
{
	const char *web = WEB "[env.staging]\nvars = { API_URL = \"https://api.rev.st\" }\n";
	const struct memfile f[] = {{"/t/web.toml", web}, {"/t/api.toml", API_OK}, {NULL, NULL}};
	sb_violation *v;
	size_t n = run(base_toml, f, &v);
	dump(v, n);
	cr_assert_eq(n, 1);
	cr_assert(any(v, n, "web-staging", "api-production", "not by a staging"));
	free(v);
}

Test(check, derived_staging_and_preview_vars_follow_the_rule)
{
	const struct memfile f[] = {{"/t/web.toml", WEB}, {"/t/api.toml", API_OK}, {NULL, NULL}};
	struct world w = world_load(base_toml, f);
	cr_assert_eq(w.rc, 0);
	sb_pool *pool = sb_pool_new(0);
	sb_deployment pv;
	sb_model_preview(w.model, 0, 77, pool, &pv);
	cr_assert_str_eq(pv.name, "web-preview-77");
	bool seen = false;
	for (size_t i = 0; i < pv.nvars; i++)
		if (strcmp(pv.vars[i].key, "API_URL") == 0) {
			cr_assert_str_eq(pv.vars[i].value, "https://api-preview-77.rev.st");
			seen = true;
		} else {
			cr_assert_str_eq(pv.vars[i].value, "preview");
		}
	cr_assert(seen);
	const sb_deployment *st = &w.model->deployments[w.model->services[1].deployment[1]];
	cr_assert_str_eq(st->name, "api-staging");
	cr_assert_str_eq(st->vars[0].value, "https://app-staging.rev.st/home");
	sb_pool_free(pool);
	world_free(&w);
}

Test(check, webhook_not_routed_or_to_wrong_handler)
{
	const struct memfile f[] = {{"/t/web.toml", WEB}, {"/t/api.toml", API_OK}, {NULL, NULL}};
	sb_violation *v;
	const char *t1 = ZONE "[[service]]\nwrangler = \"web.toml\"\n[[service]]\nwrangler = "
			      "\"api.toml\"\n[[webhook]]\nprovider = \"stripe\"\nurl = "
			      "\"https://hooks.rev.st/webhooks/stripe\"\n";
	size_t n = run(t1, f, &v);
	dump(v, n);
	cr_assert_eq(n, 1);
	cr_assert(any(v, n, "webhook stripe", "hooks.rev.st", "not routed"));
	cr_assert_eq(v[0].line, 7); // the [[webhook]] table
	free(v);

	const char *t2 = ZONE "[[service]]\nwrangler = \"web.toml\"\n[[service]]\nwrangler = "
			      "\"api.toml\"\n[[webhook]]\nprovider = \"stripe\"\nurl = "
			      "\"https://app.rev.st/webhooks/stripe\"\nservice = \"api\"\n";
	n = run(t2, f, &v);
	dump(v, n);
	cr_assert_eq(n, 1);
	cr_assert(any(v, n, "web-production", "not its handler", "api"));
	free(v);

	const char *t3 = ZONE "[[service]]\nwrangler = \"web.toml\"\n[[service]]\nwrangler = "
			      "\"api.toml\"\n[[webhook]]\nprovider = \"gh\"\nurl = "
			      "\"https://elsewhere.io/x\"\n";
	n = run(t3, f, &v);
	dump(v, n);
	cr_assert_eq(n, 1);
	cr_assert(any(v, n, "gh", "elsewhere.io", "not in a declared zone"));
	free(v);
}

Test(check, url_vars_must_be_set_and_be_urls)
{
	const char *web =
	    "name = \"web\"\n[env.production]\nvars = { API_URL = \"api\" }\nroutes = "
	    "[\"app.rev.st/*\"]\n";
	const struct memfile f[] = {{"/t/web.toml", web}, {"/t/api.toml", API_OK}, {NULL, NULL}};
	sb_violation *v;
	size_t n = run(base_toml, f, &v);
	dump(v, n);
	cr_assert(any(v, n, "API_URL", "web-production", "not an URL on a declared zone"));
	free(v);
	const char *web2 = "name = \"web\"\n[env.production]\nroutes = [\"app.rev.st/*\"]\n";
	const struct memfile f2[] = {{"/t/web.toml", web2}, {"/t/api.toml", API_OK}, {NULL, NULL}};
	n = run(base_toml, f2, &v);
	dump(v, n);
	cr_assert(any(v, n, "API_URL", "web-staging", "not set"));
	cr_assert(any(v, n, "API_URL", "web-preview-1", "not set"));
	free(v);
}

Test(check, urls_off_zone_are_not_checked)
{
	const char *web = "name = \"web\"\n[env.production]\nvars = { DOCS = "
			  "\"https://docs.other.org/x\" }\nroutes = [\"app.rev.st/*\"]\n";
	const struct memfile f[] = {{"/t/web.toml", web}, {"/t/api.toml", API_OK}, {NULL, NULL}};
	sb_violation *v;
	const char *t = ZONE "[[service]]\nwrangler = \"web.toml\"\n[[service]]\nwrangler = "
			     "\"api.toml\"\n";
	size_t n = run(t, f, &v);
	dump(v, n);
	cr_assert_eq(n, 0);
	free(v);
}

/* A trailing dot and an upper-case scheme name the same URL as the edge
 * routes it: such a var is checked, not skipped. */
Test(check, urls_spelled_otherwise_are_checked)
{
	const char *web = "name = \"web\"\n[env.production]\nvars = { A = "
			  "\"https://nothere.rev.st./x\", B = \"HTTPS://nothere2.rev.st/\", C = "
			  "\"https://api.rev.st./fine\" }\nroutes = [\"app.rev.st/*\"]\n";
	const struct memfile f[] = {{"/t/web.toml", web}, {"/t/api.toml", API_OK}, {NULL, NULL}};
	sb_violation *v;
	size_t n = run(base_toml, f, &v);
	dump(v, n);
	cr_assert(any(v, n, "var A", "nothere.rev.st.", "is not routed"));
	cr_assert(any(v, n, "var B", "nothere2.rev.st", "is not routed"));
	cr_assert_not(any(v, n, "var C", "", ""));
	free(v);
}

/* A webhook URL with a query: an exact route does not match it (Cloudflare
 * matches the whole URL), so the provider's request goes elsewhere. */
Test(check, a_webhook_query_is_part_of_what_is_routed)
{
	static const char toml[] =
	    ZONE "[[service]]\nwrangler = \"api.toml\"\n"
		 "[[service]]\nname = \"stripe\"\nroutes = [\"api.rev.st/webhooks/stripe\"]\n"
		 "[[webhook]]\nprovider = \"stripe\"\nurl = "
		 "\"https://api.rev.st/webhooks/stripe?account=acct_1\"\nservice = \"stripe\"\n"
		 "[[webhook]]\nprovider = \"other\"\nurl = "
		 "\"https://api.rev.st./webhooks/stripe\"\nservice = \"stripe\"\n";
	const struct memfile f[] = {{"/t/api.toml", API_OK}, {NULL, NULL}};
	sb_violation *v;
	size_t n = run(toml, f, &v);
	dump(v, n);
	size_t hooks = 0;
	for (size_t i = 0; i < n; i++)
		hooks += strncmp(v[i].msg, "webhook ", 8) == 0;
	cr_assert_eq(hooks, 1); /* the trailing-dot one is routed to its handler */
	cr_assert(any(v, n, "webhook stripe", "reaches api-production", "acct_1"));
	free(v);
}

/* A production URL var spelled with a trailing dot is derived for a
 * preview like any other: left as it was, the preview called production. */
Test(check, a_trailing_dot_url_var_is_derived_for_previews)
{
	const char *web = "name = \"web\"\n[env.production]\nvars = { API_URL = "
			  "\"https://api.rev.st./v1\" }\nroutes = [\"app.rev.st/*\"]\n";
	const struct memfile f[] = {{"/t/web.toml", web}, {"/t/api.toml", API_OK}, {NULL, NULL}};
	struct world w = world_load(base_toml, f);
	cr_assert_eq(w.rc, 0, "load: %s", w.diag.msg);
	sb_deployment dp;
	sb_pool *pool = sb_pool_new(0);
	sb_model_preview(w.model, 0, 5, pool, &dp);
	const char *got = NULL;
	for (size_t i = 0; i < dp.nvars; i++)
		if (strcmp(dp.vars[i].key, "API_URL") == 0)
			got = dp.vars[i].value;
	cr_assert_str_eq(got, "https://api-preview-5.rev.st./v1");
	sb_pool_free(pool);
	world_free(&w);
}

/* An explicit host of the tenant-aware service is its first label's
 * tenant's: with that tenant unregistered the route is listed, in DNS, and
 * answers 404. The check says so, at the route, in every environment the
 * host reaches; a registered or suspended tenant, and the apex, pass. */
Test(check, an_explicit_tenant_host_without_its_tenant_is_a_violation)
{
	const char *toml =
	    ZONE "[tenants]\nservice = \"web\"\nstatic = [\"codex\"]\n"
		 "[[service]]\nname = \"web\"\n"
		 "routes = [\"codex.rev.st/*\", \"shop.rev.st/*\", \"rev.st/about\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "load: %s", w.diag.msg);
	sb_violation *v = NULL;
	size_t n = sb_check_run(w.model, w.rt, w.tenants, 1, &v);
	char got[4096] = "";
	for (size_t i = 0; i < n; i++) {
		size_t gl = strlen(got);
		snprintf(got + gl, sizeof(got) - gl, "%s:%d:%d: %s\n", v[i].file, v[i].line,
			 v[i].col, v[i].msg);
	}
	/* production, staging and the sample preview */
	bool ok = n == 3 && strstr(got, "web: route \"shop.rev.st/*\"") &&
		  strstr(got, "web-staging: route \"shop-staging.rev.st/*\"") &&
		  strstr(got, "web-preview-1: route \"shop-preview-1.rev.st/*\"") &&
		  strstr(got, "host of tenant 'shop', which is not registered") &&
		  strstr(got, "tenants add shop") && strstr(got, "/t/switchboard.toml:8:29:") &&
		  !strstr(got, "codex");
	free(v);
	cr_assert(ok, "%s", got);
	sb_tenants_put(w.tenants, "shop", 4, SB_TENANT_SUSPENDED);
	v = NULL;
	n = sb_check_run(w.model, w.rt, w.tenants, 1, &v);
	free(v);
	cr_assert_eq(n, 0);
	world_free(&w);
}
