/* A review of the [[service]] label (commit 3229ab9): what a collision of
 * derived hosts says, and which service a URL var follows. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "memfs.h"
#include "model/live.h"

TestSuite(label_review, .fini = leak_check);

/* The apex and www of one site under label "www": both would be
 * www-staging.ex.com for every path. Refused, as documented, but not as a route
 * "declared twice" (nobody wrote it twice): the message names the two
 * production hosts and says the names come from the naming rule and the
 * label (mutant: the exact table's duplicate message, as before). */
Test(label_review, one_services_two_hosts_under_one_label_are_said_to_be_made_twice)
{
	const char *toml = "[[zone]]\nname = \"ex.com\"\n"
			   "[[service]]\nname = \"site\"\nlabel = \"www\"\n"
			   "routes = [\"ex.com/*\", \"www.ex.com/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, SB_EEXIST, "%d: %s", w.rc, w.diag.msg);
	cr_assert_null(strstr(w.diag.msg, "declared twice"), "%s", w.diag.msg);
	cr_assert(strstr(w.diag.msg, "\"www-staging.ex.com/*\" of site-staging would be made "
				     "twice by the naming rule") &&
		      strstr(w.diag.msg, "\"www.ex.com\"") && strstr(w.diag.msg, "\"ex.com\"") &&
		      strstr(w.diag.msg, "'label'") &&
		      strstr(w.diag.msg, "a service's hosts need different paths"),
		  "%s", w.diag.msg);
	/* at the second production route, naming the first */
	cr_assert_eq(w.diag.line, 6);
	cr_assert_eq(w.diag.col, 23);
	cr_assert(strstr(w.diag.msg, "switchboard.toml:6:11"), "%s", w.diag.msg);
	world_free(&w);
}

/* With staging routes of its own, the preview rule's table finds it: the
 * hint is for one service, not "give one of the services another label"
 * (mutant: the two-services hint). */
Test(label_review, one_services_same_preview_hosts_get_the_one_service_hint)
{
	const char *toml = "[[zone]]\nname = \"ex.com\"\n"
			   "[[service]]\nname = \"site\"\nlabel = \"www\"\n"
			   "routes = [\"ex.com/*\", \"www.ex.com/*\"]\n"
			   "[service.env.staging]\nroutes = [\"s.ex.com/*\"]\n";
	load_refused(
	    toml, SB_EEXIST,
	    (const char *[]){"same preview hosts", "a service's hosts need different paths", NULL},
	    (const char *[]){"one of the services", NULL});
}

/* Two services: the two-services hint, as before. */
Test(label_review, two_services_same_staging_host_get_the_two_services_hint)
{
	const char *toml = "[[zone]]\nname = \"ex.com\"\n"
			   "[[service]]\nname = \"a\"\nlabel = \"x\"\nroutes = [\"a.ex.com/*\"]\n"
			   "[[service]]\nname = \"b\"\nlabel = \"x\"\nroutes = [\"b.ex.com/*\"]\n";
	load_refused(toml, SB_EEXIST,
		     (const char *[]){"claims the same host and path",
				      "give one of the services another label", NULL},
		     NULL);
}

/* A live route on a staging host the rule already makes for the same
 * deployment: said as such, naming the production host it is made from
 * (mutant: "declared twice (first at" the production route). */
Test(label_review, a_live_route_on_a_derived_host_names_where_the_host_comes_from)
{
	const char *toml = "[[zone]]\nname = \"ex.com\"\n"
			   "[[service]]\nname = \"api\"\nlabel = \"hooks\"\n"
			   "routes = [\"api.ex.com/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	sb_live l = {0};
	char *routes[] = {"hooks-staging.ex.com/*"};
	sb_live_deploy dep = {.name = "api-staging", .routes = routes, .nroutes = 1};
	sb_live_deploy_put(&l, &dep);
	sb_model *m = NULL;
	sb_route_table *rt = NULL;
	sb_diag d = {0};
	cr_assert_eq(sb_model_build_live(w.decl, &l, &m, &d), 0, "%s", d.msg);
	cr_assert_eq(sb_route_compile(m, NULL, &rt, &d), SB_EEXIST, "accepted");
	cr_assert(strstr(d.msg, "is also made by the naming rule from production host "
				"\"api.ex.com\"") &&
		      strstr(d.msg, "'label'"),
		  "%s", d.msg);
	cr_assert_null(strstr(d.msg, "declared twice"), "%s", d.msg);
	sb_route_free(rt);
	sb_model_free(m);
	sb_live_clear(&l);
	world_free(&w);
}

/* The tenant-aware service's implied {slug}.<zone> wildcard is no host the
 * naming rule made: a collision with it says nothing of labels (mutant:
 * the hint keyed on `derived`, which the implied route is too). */
Test(label_review, the_tenant_wildcard_collision_says_nothing_of_labels)
{
	const char *toml = "[[zone]]\nname = \"ex.com\"\n[tenants]\nservice = \"web\"\n"
			   "[[service]]\nname = \"web\"\nroutes = [\"codex.ex.com/*\"]\n"
			   "[[service]]\nname = \"other\"\nroutes = [\"*.ex.com/*\"]\n";
	load_refused(toml, SB_EEXIST, (const char *[]){"claims the same host and path", NULL},
		     (const char *[]){"label", NULL});
}

/* A deployment name clash is not solved by a label (which names hosts):
 * the message does not send one there (mutant: "or set its label"). */
Test(label_review, a_deployment_name_clash_is_not_sent_to_the_label)
{
	const char *toml = "[[zone]]\nname = \"ex.com\"\n"
			   "[[service]]\nname = \"foo\"\nroutes = [\"foo.ex.com/*\"]\n"
			   "[[service]]\nname = \"foo-staging\"\nroutes = [\"bar.ex.com/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_lt(w.rc, 0, "accepted");
	cr_assert(strstr(w.diag.msg, "has the name of another") &&
		      strstr(w.diag.msg, "rename one of them"),
		  "%s", w.diag.msg);
	cr_assert_null(strstr(w.diag.msg, "set its label"), "%s", w.diag.msg);
	world_free(&w);
}

/* A URL var naming the apex, where one service has the exact path "/a"
 * and another (listed first) the prefix "/a*": the edge serves "/a" with
 * the exact route, so the var follows that service's label (mutant: the
 * first service at one path length won). */
Test(label_review, a_url_var_follows_the_exact_path_as_the_router_does)
{
	const char *toml =
	    "[[zone]]\nname = \"ex.com\"\n"
	    "[[service]]\nname = \"pre\"\nlabel = \"pre\"\nroutes = [\"ex.com/a*\"]\n"
	    "[[service]]\nname = \"ex\"\nlabel = \"exa\"\nroutes = [\"ex.com/a\"]\n"
	    "[[service]]\nname = \"web\"\nroutes = [\"app.ex.com/*\"]\n"
	    "vars = { U = \"https://ex.com/a\" }\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	sb_route_match m;
	cr_assert_eq(lookup(&w, "ex.com/a", &m), 0, "%s", m.reason);
	cr_assert_str_eq(w.model->services[m.service].name, "ex");
	const sb_deployment *st = &w.model->deployments[w.model->services[2].deployment[1]];
	cr_assert_eq(st->nvars, 1);
	cr_assert_str_eq(st->vars[0].value, "https://exa-staging.ex.com/a");
	cr_assert_eq(lookup(&w, "exa-staging.ex.com/a", &m), 0, "%s", m.reason);
	cr_assert_str_eq(w.model->services[m.service].name, "ex");
	world_free(&w);
}
