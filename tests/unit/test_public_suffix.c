/* Hosts outside every declared zone, judged by the public suffix list:
 * the naming rule never renames a registered domain's apex into another
 * domain (customer.com -> customer-staging.com), and a wildcard never takes
 * a whole public suffix ("*.com"). */
#include <criterion/criterion.h>
#include <stdio.h>

#include "memfs.h"
#include "model/live.h"

TestSuite(public_suffix, .fini = leak_check);

/* The list's ICANN section without its implicit "*" rule, in any letter
 * case, a trailing dot being the same name. */
Test(public_suffix, the_list_says_what_a_public_suffix_is)
{
	cr_assert(sb_model_public_suffix("com", 3));
	cr_assert(sb_model_public_suffix("co.uk", 5));
	cr_assert(sb_model_public_suffix("CO.UK.", 6));
	cr_assert(sb_model_public_suffix("studio", 6));
	cr_assert_not(sb_model_public_suffix("customer.com", 12));
	cr_assert_not(sb_model_public_suffix("revelations.studio", 18));
	/* the private section: a platform's own domain holds its users' */
	cr_assert_not(sb_model_public_suffix("github.io", 9));
	/* unknown to the list: a private network's names */
	cr_assert_not(sb_model_public_suffix("localhost", 9));
	cr_assert_not(sb_model_public_suffix("internal", 8));
	/* n bytes, not the string: "com" of "community" is not "community" */
	cr_assert(sb_model_public_suffix("community", 3));
	cr_assert_not(sb_model_public_suffix("", 0));
	char big[300];
	memset(big, 'a', sizeof(big));
	cr_assert_not(sb_model_public_suffix(big, sizeof(big)));
}

/* customer.com is a domain's apex: its first label is the domain's own
 * name, and renaming it would make another party's domain. So it has no
 * staging or preview hosts, as a declared zone's apex. */
Test(public_suffix, a_registered_domain_outside_the_zones_is_an_apex)
{
	const char *toml = "[[zone]]\nname = \"ex.com\"\n[previews]\nprs = [5]\n"
			   "[[service]]\nname = \"site\"\n"
			   "routes = [\"customer.com/*\", \"shop.customer.co.uk/*\", "
			   "\"customer.co.uk/x/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	cr_assert(routed(&w, "customer.com/"));
	cr_assert_not(routed(&w, "customer-staging.com/"));
	cr_assert_not(routed(&w, "customer-preview-5.com/"));
	cr_assert_not(routed(&w, "customer-staging.co.uk/x/"));
	/* a name under the domain is renamed as before */
	cr_assert(routed(&w, "shop-staging.customer.co.uk/"));
	cr_assert(routed(&w, "shop-preview-5.customer.co.uk/"));
	/* no host it would have made is in the model either */
	const sb_service *s = &w.model->services[0];
	const sb_deployment *st = &w.model->deployments[s->deployment[SB_ENV_STAGING]];
	cr_assert_eq(st->nroutes, 1);
	cr_assert_str_eq(st->routes[0].host, "shop-staging.customer.co.uk");
	/* and the service's label comes from a host the rule renames */
	cr_assert_str_eq(s->label, "shop");
	world_free(&w);
}

/* As a zone apex, a declared label names the domain's staging host. */
Test(public_suffix, a_declared_label_names_the_domains_staging_host)
{
	const char *toml = "[previews]\nprs = [7]\n[[service]]\nname = \"site\"\nlabel = \"www\"\n"
			   "routes = [\"customer.com/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	cr_assert(routed(&w, "www-staging.customer.com/"));
	cr_assert(routed(&w, "www-preview-7.customer.com/"));
	cr_assert_not(routed(&w, "customer-staging.com/"));
	world_free(&w);
}

/* Names the list does not know are renamed as any other (no implicit "*"
 * rule): app.localhost has app-staging.localhost. */
Test(public_suffix, unlisted_top_level_names_are_renamed_as_before)
{
	const char *toml = "[[service]]\nname = \"app\"\n"
			   "routes = [\"app.localhost/*\", \"app.internal/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	cr_assert(routed(&w, "app-staging.localhost/"));
	cr_assert(routed(&w, "app-staging.internal/"));
	world_free(&w);
}

/* Inside a declared zone the declaration is the authority, even over a
 * listed suffix (a lab that serves "co.uk" itself). */
Test(public_suffix, a_declared_zone_decides_over_the_list)
{
	const char *toml =
	    "[[zone]]\nname = \"co.uk\"\n"
	    "[[service]]\nname = \"site\"\nroutes = [\"shop.co.uk/*\", \"*.co.uk/w/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	cr_assert(routed(&w, "shop-staging.co.uk/"));
	cr_assert(routed(&w, "anything.co.uk/w/x"));
	world_free(&w);
}

/* A URL var naming the domain's apex is left as it is in staging: there is
 * no staging host to point it at, and customer-staging.com is not ours. */
Test(public_suffix, a_url_var_on_the_apex_is_not_renamed_into_another_domain)
{
	const char *toml = "[[service]]\nname = \"site\"\nroutes = [\"customer.com/*\"]\n"
			   "[[service]]\nname = \"api\"\nroutes = [\"api.ex.org/*\"]\n"
			   "[service.vars]\nSITE = \"https://customer.com/a\"\n"
			   "SHOP = \"https://api.ex.org/\"\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	const sb_deployment *st =
	    &w.model->deployments[w.model->services[1].deployment[SB_ENV_STAGING]];
	const char *site = NULL, *shop = NULL;
	for (size_t i = 0; i < st->nvars; i++) {
		if (strcmp(st->vars[i].key, "SITE") == 0)
			site = st->vars[i].value;
		if (strcmp(st->vars[i].key, "SHOP") == 0)
			shop = st->vars[i].value;
	}
	cr_assert_str_eq(site, "https://customer.com/a");
	cr_assert_str_eq(shop, "https://api-staging.ex.org/");
	world_free(&w);
}

/* "*.com", "*com" and "*.co.uk" take every domain registered under the
 * suffix: refused at the route, naming the suffix. */
Test(public_suffix, a_wildcard_over_a_public_suffix_is_refused_where_written)
{
	const char *bad[] = {"*.com/*", "*com/*", "*.co.uk/x/*", "https://*.CO.UK./*", NULL};
	const char *suffix[] = {"\"com\"", "\"com\"", "\"co.uk\"", "\"co.uk\"", NULL};
	for (size_t i = 0; bad[i]; i++) {
		char toml[256];
		snprintf(toml, sizeof(toml),
			 "[[zone]]\nname = \"ex.com\"\n[[service]]\nname = \"s\"\n"
			 "routes = [\"a.ex.com/*\", \"%s\"]\n",
			 bad[i]);
		struct world w = world_load(toml, NULL);
		cr_assert_eq(w.rc, SB_EINVAL, "%s accepted", bad[i]);
		cr_assert(strstr(w.diag.msg, suffix[i]) &&
			      strstr(w.diag.msg, "is a public suffix") &&
			      strstr(w.diag.msg, "a wildcard names one domain"),
			  "%s: %s", bad[i], w.diag.msg);
		cr_assert_eq(w.diag.line, 5, "%s", bad[i]);
		cr_assert_eq(w.diag.col, 25, "%s", bad[i]);
		world_free(&w);
	}
}

/* One domain's wildcard, a private platform's, and a private network's
 * names are routes as before. */
Test(public_suffix, a_wildcard_over_one_domain_is_accepted)
{
	const char *toml = "[[service]]\nname = \"s\"\n"
			   "routes = [\"*.customer.com/*\", \"*customer.co.uk/*\", "
			   "\"*.example.github.io/*\", \"*.github.io/g/*\", \"*.localhost/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	cr_assert(routed(&w, "a.customer.com/"));
	cr_assert(routed(&w, "customer.co.uk/"));
	cr_assert(routed(&w, "me.github.io/g/x"));
	cr_assert(routed(&w, "x.localhost/"));
	world_free(&w);
}

/* A deploy's route (the admin API, switchboard deploy) is held to the same
 * rule, at the deploy. */
Test(public_suffix, a_live_wildcard_over_a_public_suffix_is_refused)
{
	const char *toml = "[[service]]\nname = \"api\"\nroutes = [\"api.ex.com/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	sb_live l = {0};
	char *routes[] = {"*.com/*"};
	sb_live_deploy dep = {.name = "api-staging", .routes = routes, .nroutes = 1};
	sb_live_deploy_put(&l, &dep);
	sb_model *m = NULL;
	sb_diag d = {0};
	cr_assert_eq(sb_model_build_live(w.decl, &l, &m, &d), SB_EINVAL, "accepted");
	cr_assert(strstr(d.msg, "\"com\" is a public suffix"), "%s", d.msg);
	sb_model_free(m);
	sb_live_clear(&l);
	world_free(&w);
}
