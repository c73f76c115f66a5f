/* The live state (model/live.h), the model built over it, the tenant
 * configs of a tenant set, and ops' duration parser. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "admin/ops.h"
#include "memfs.h"
#include "model/live.h"

TestSuite(live, .fini = leak_check);

#define ZONE "[[zone]]\nname = \"rev.st\"\naddresses = [\"192.0.2.1\"]\n"
#define WEB                                                                                        \
	"name = \"web\"\n[env.production]\nvars = { ENVIRONMENT = \"production\", API_URL = "      \
	"\"https://api.rev.st\" }\nroutes = [\"app.rev.st/*\"]\n"
#define API "name = \"api\"\n[env.production]\nroutes = [\"api.rev.st/*\"]\n"

static const char decl_toml[] = ZONE "[[service]]\nwrangler = \"web.toml\"\n"
				     "upstream.production = \"http://127.0.0.1:1\"\n"
				     "[[service]]\nwrangler = \"api.toml\"\n";
static const struct memfile files[] = {{"/t/web.toml", WEB}, {"/t/api.toml", API}, {NULL, NULL}};

static const sb_deployment *dep(const sb_model *m, const char *name)
{
	ssize_t k = sb_model_deployment(m, name);
	cr_assert(k >= 0, "no deployment %s", name);
	return &m->deployments[k];
}

static const char *var(const sb_deployment *dp, const char *key)
{
	for (size_t i = 0; i < dp->nvars; i++)
		if (strcmp(dp->vars[i].key, key) == 0)
			return dp->vars[i].value;
	return NULL;
}

static bool has_route(const sb_deployment *dp, const char *host)
{
	for (size_t i = 0; i < dp->nroutes; i++)
		if (strcmp(dp->routes[i].host, host) == 0)
			return true;
	return false;
}

Test(live, json_round_trip_is_stable)
{
	sb_live l = {0}, back = {0};
	cr_assert_eq(sb_live_preview_put(&l, 42, 1000, 3600), 1);
	cr_assert_eq(sb_live_preview_put(&l, 7, 1000, 0), 1);
	char *keys[] = {"A", "B"}, *vals[] = {"1", "two words"};
	char *routes[] = {"shop.rev.st/*"}, *argv[] = {"prog", "--flag"};
	sb_live_deploy d = {.name = "web",
			    .var_keys = keys,
			    .var_values = vals,
			    .nvars = 2,
			    .routes = routes,
			    .nroutes = 1,
			    .argv = argv,
			    .argc = 2,
			    .deployed_at = 5};
	sb_live_deploy_put(&l, &d);
	cr_assert_eq(sb_live_delete(&l, "api"), 0);
	cr_assert_eq(sb_live_delete(&l, "api"), SB_EEXIST);
	char *j1 = sb_live_to_json(&l);
	sb_diag diag = {0};
	cr_assert_eq(sb_live_parse(j1, &back, &diag), 0, "%s", diag.msg);
	char *j2 = sb_live_to_json(&back);
	cr_assert_str_eq(j1, j2);
	/* previews are kept sorted; the deploy came through whole */
	cr_assert_eq(back.previews[0].pr, 7);
	cr_assert_eq(back.previews[1].expires_at, 4600);
	const sb_live_deploy *bd = sb_live_deploy_find(&back, "web");
	cr_assert(bd && bd->nvars == 2 && bd->argc == 2 && bd->nroutes == 1);
	cr_assert_str_eq(bd->argv[1], "--flag");
	cr_assert(sb_live_is_deleted(&back, "api"));
	free(j1);
	free(j2);
	sb_live_clear(&l);
	sb_live_clear(&back);
}

Test(live, parse_refuses_foreign_documents)
{
	sb_live l;
	sb_diag d = {0};
	cr_assert_eq(sb_live_parse("[]", &l, &d), SB_EINVAL);
	cr_assert_eq(sb_live_parse("{\"previews\":[{\"pr\":0}]}", &l, &d), SB_EINVAL);
	cr_assert_eq(sb_live_parse("{\"deploys\":[{\"vars\":{}}]}", &l, &d), SB_EINVAL);
	cr_assert_eq(sb_live_parse("{\"deploys\":[{\"name\":\"x\",\"vars\":{\"a\":1}}]}", &l, &d),
		     SB_EINVAL);
	cr_assert_eq(sb_live_parse("{\"previews\":", &l, &d), SB_EINVAL);
	cr_assert_eq(sb_live_parse(NULL, &l, &d), 0);
	cr_assert_eq(l.npreviews + l.ndeploys + l.ndeleted, 0);
}

Test(live, previews_renew_remove_and_expire)
{
	sb_live l = {0};
	sb_live_preview_put(&l, 1, 100, 10);
	sb_live_preview_put(&l, 2, 100, 0);
	sb_live_preview_put(&l, 3, 100, 50);
	cr_assert_eq(sb_live_preview_put(&l, 1, 200, 10), 0); /* renewed */
	cr_assert_eq(sb_live_preview_find(&l, 1)->created_at, 100);
	cr_assert_eq(sb_live_preview_find(&l, 1)->expires_at, 210);
	uint32_t gone[4];
	cr_assert_eq(sb_live_expire(&l, 150, gone, 4), 1);
	cr_assert_eq(gone[0], 3);
	cr_assert_eq(sb_live_expire(&l, 210, gone, 4), 1);
	cr_assert_eq(gone[0], 1);
	cr_assert_eq(l.npreviews, 1); /* 2 never expires */
	cr_assert_eq(sb_live_preview_remove(&l, 2), 0);
	cr_assert_eq(sb_live_preview_remove(&l, 2), SB_ENOENT);
	sb_live_clear(&l);
}

Test(live, model_overlays_deploys_previews_and_deletes)
{
	struct world w = world_load(decl_toml, files);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	sb_live l = {0};
	sb_live_preview_put(&l, 9, 1, 0);
	char *keys[] = {"API_URL", "NEW"}, *vals[] = {"https://api.rev.st/v2", "x"};
	char *routes[] = {"shop.rev.st/*"}, *domains[] = {"www.shop.example"};
	sb_live_deploy d = {.name = "web-production",
			    .var_keys = keys,
			    .var_values = vals,
			    .nvars = 2,
			    .routes = routes,
			    .nroutes = 1,
			    .domains = domains,
			    .ndomains = 1,
			    .upstream_url = "http://127.0.0.1:2"};
	sb_live_deploy_put(&l, &d);
	sb_live_delete(&l, "api-staging");
	sb_model *m = NULL;
	sb_diag diag = {0};
	cr_assert_eq(sb_model_build_live(w.decl, &l, &m, &diag), 0, "%s", diag.msg);
	const sb_deployment *web = dep(m, "web-production");
	cr_assert_str_eq(var(web, "API_URL"), "https://api.rev.st/v2"); /* overridden */
	cr_assert_str_eq(var(web, "NEW"), "x");				/* added */
	cr_assert_str_eq(var(web, "ENVIRONMENT"), "production");	/* kept */
	cr_assert(has_route(web, "app.rev.st") && has_route(web, "shop.rev.st") &&
		  has_route(web, "www.shop.example"));
	cr_assert_str_eq(web->upstream->url, "http://127.0.0.1:2");
	/* staging and the preview derive from production as deployed */
	cr_assert(has_route(dep(m, "web-staging"), "shop-staging.rev.st"));
	const sb_deployment *pv = dep(m, "web-preview-9");
	cr_assert(has_route(pv, "app-preview-9.rev.st"));
	cr_assert_eq(pv->env, SB_ENV_PREVIEW);
	cr_assert_eq(pv->pr, 9);
	cr_assert(has_route(dep(m, "api-preview-9"), "api-preview-9.rev.st"));
	/* deleted: kept by name, serves nothing */
	cr_assert_eq(dep(m, "api-staging")->nroutes, 0);
	cr_assert_null(dep(m, "api-staging")->upstream);
	cr_assert(dep(m, "api-production")->nroutes > 0);
	sb_model_free(m);

	/* a custom domain must be a whole host */
	char *bad[] = {"*.shop.example"};
	sb_live_deploy d2 = {.name = "api-production", .domains = bad, .ndomains = 1};
	sb_live_deploy_put(&l, &d2);
	cr_assert_eq(sb_model_build_live(w.decl, &l, &m, &diag), SB_EINVAL);
	cr_assert(strstr(diag.msg, "whole host"), "%s", diag.msg);
	cr_assert_str_eq(diag.file, "deploy api-production");
	cr_assert_null(m);
	sb_live_clear(&l);
	world_free(&w);
}

Test(live, forget_clears_a_preview_deployments_history)
{
	sb_live l = {0};
	sb_live_deploy d = {.name = "web-preview-3"};
	sb_live_deploy_put(&l, &d);
	sb_live_delete(&l, "api-preview-3");
	sb_live_forget(&l, "web-preview-3");
	sb_live_forget(&l, "api-preview-3");
	cr_assert_eq(l.ndeploys + l.ndeleted, 0);
	/* deploying a deleted name brings it back */
	sb_live_delete(&l, "web");
	sb_live_deploy_put(&l, &(sb_live_deploy){.name = "web"});
	cr_assert(!sb_live_is_deleted(&l, "web"));
	sb_live_clear(&l);
}

static int count_cb(void *ctx, const char *s, size_t sl)
{
	(*(int *)ctx)++;
	return 0;
}

Test(live, tenant_configs_ride_along_without_cost_for_others)
{
	sb_tenants *t = sb_tenants_new(4);
	const char *cfg = "{\"settings\":{\"plan\":\"pro\"}}";
	cr_assert_eq(sb_tenants_put(t, "plain", 5, SB_TENANT_ACTIVE), 0);
	size_t before = sb_tenants_memory(t);
	cr_assert_eq(sb_tenants_put_config(t, "acme", 4, SB_TENANT_ACTIVE, cfg, strlen(cfg)), 0);
	const char *stored = NULL;
	size_t len = 0;
	cr_assert_eq(sb_tenants_get(t, "plain", 5, &stored), SB_TENANT_ACTIVE);
	cr_assert_null(sb_tenants_config(stored, &len));
	cr_assert_eq(sb_tenants_get(t, "acme", 4, &stored), SB_TENANT_ACTIVE);
	const char *got = sb_tenants_config(stored, &len);
	cr_assert(got && len == strlen(cfg) && memcmp(got, cfg, len) == 0);
	/* status changes keep the config; a new config replaces it */
	sb_tenants_put(t, "acme", 4, SB_TENANT_SUSPENDED);
	cr_assert_eq(sb_tenants_get(t, "acme", 4, &stored), SB_TENANT_SUSPENDED);
	cr_assert_not_null(sb_tenants_config(stored, &len));
	sb_tenants_put_config(t, "acme", 4, SB_TENANT_ACTIVE, "{}", 2);
	cr_assert_eq(sb_tenants_get(t, "acme", 4, &stored), SB_TENANT_ACTIVE);
	got = sb_tenants_config(stored, &len);
	cr_assert(got && len == 2 && memcmp(got, "{}", 2) == 0);
	cr_assert_eq(sb_tenants_count(t), 2);
	/* the walk sees each tenant once, replaced records skipped */
	int n = 0;
	cr_assert_eq(sb_tenants_each(t, SB_TENANT_ACTIVE, count_cb, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert(before > 0);
	sb_tenants_free(t);
}

Test(live, durations)
{
	int64_t s;
	cr_assert_eq(sb_ops_parse_duration("7d", &s), 0);
	cr_assert_eq(s, 7 * 86400);
	cr_assert_eq(sb_ops_parse_duration("90s", &s), 0);
	cr_assert_eq(s, 90);
	cr_assert_eq(sb_ops_parse_duration("2w", &s), 0);
	cr_assert_eq(s, 14 * 86400);
	cr_assert_eq(sb_ops_parse_duration("45s", &s), 0);
	cr_assert_eq(s, 45);
	cr_assert_eq(sb_ops_parse_duration("45", &s), SB_EINVAL, "a unit is required");
	cr_assert_eq(sb_ops_parse_duration("", &s), SB_EINVAL);
	cr_assert_eq(sb_ops_parse_duration("d", &s), SB_EINVAL);
	cr_assert_eq(sb_ops_parse_duration("-1h", &s), SB_EINVAL);
	cr_assert_eq(sb_ops_parse_duration("3y", &s), SB_EINVAL);
	/* at most about 100 years, in any unit */
	cr_assert_eq(sb_ops_parse_duration("5200w", &s), 0);
	cr_assert_eq(sb_ops_parse_duration("5300w", &s), SB_EINVAL);
	cr_assert_eq(sb_ops_parse_duration("2147483647w", &s), SB_EINVAL);
}

Test(live, a_ttl_past_the_clock_never_expires)
{
	sb_live l = {0};
	sb_live_preview_put(&l, 5, 1795771822, INT64_MAX);
	cr_assert_eq(sb_live_preview_find(&l, 5)->expires_at, 0);
	uint32_t gone[1];
	cr_assert_eq(sb_live_expire(&l, INT64_MAX, gone, 1), 0);
	sb_live_clear(&l);
}
