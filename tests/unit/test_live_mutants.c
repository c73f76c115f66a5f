/* Tests written in a mutation audit of the live state (model/live.c): each
 * one fails against a small change that the other tests let through (the
 * change is named in each test's comment). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memfs.h"
#include "model/live.h"

TestSuite(live_mutants, .fini = leak_check);

static void put(sb_live *l, const char *name)
{
	sb_live_deploy d = {.name = (char *)name, .deployed_at = 5};
	sb_live_deploy_put(l, &d);
}

/* The same state is the same document whatever order it was made in, so
 * that versions compare (mutants: previews, or deploys, kept in the
 * opposite order, or in the order of their making). */
Test(live_mutants, the_document_of_a_state_does_not_depend_on_its_history)
{
	sb_live a = {0}, b = {0};
	sb_live_preview_put(&a, 3, 100, 0);
	sb_live_preview_put(&a, 9, 100, 0);
	sb_live_preview_put(&a, 5, 100, 0);
	sb_live_preview_put(&b, 9, 100, 0);
	sb_live_preview_put(&b, 5, 100, 0);
	sb_live_preview_put(&b, 3, 100, 0);
	put(&a, "api");
	put(&a, "web");
	put(&a, "auth");
	put(&b, "web");
	put(&b, "auth");
	put(&b, "api");
	cr_assert_eq(sb_live_delete(&a, "x"), 0);
	cr_assert_eq(sb_live_delete(&a, "w"), 0);
	cr_assert_eq(sb_live_delete(&b, "w"), 0);
	cr_assert_eq(sb_live_delete(&b, "x"), 0);
	char *ja = sb_live_to_json(&a), *jb = sb_live_to_json(&b);
	cr_assert_str_eq(ja, jb);
	/* and in order: by pr, by name */
	cr_assert_eq(a.previews[0].pr, 3);
	cr_assert_eq(a.previews[2].pr, 9);
	cr_assert_str_eq(a.deploys[0].name, "api");
	cr_assert_str_eq(a.deploys[2].name, "web");
	/* what a deploy was made with is kept, its time too (mutant: the copy
	 * the state keeps lost deployed_at) */
	cr_assert_eq(a.deploys[1].deployed_at, 5);
	cr_assert(strstr(ja, "\"deployed_at\":5"), "%s", ja);
	free(ja);
	free(jb);
	sb_live_clear(&a);
	sb_live_clear(&b);
}

/* A delete drops the deployment's deploy, as live.h says: the state keeps
 * the name as deleted and nothing of what it was deployed with (mutant: the
 * deploy stayed in the state, and in every later version's document, under
 * the delete). */
Test(live_mutants, a_delete_drops_the_deploy)
{
	sb_live l = {0};
	char *shop[] = {"shop.rev.st/*"};
	sb_live_deploy web = {.name = "web-production", .routes = shop, .nroutes = 1};
	sb_live_deploy_put(&l, &web);
	cr_assert_eq(sb_live_delete(&l, "web-production"), 0);
	cr_assert_null(sb_live_deploy_find(&l, "web-production"));
	cr_assert(sb_live_is_deleted(&l, "web-production"));
	char *j = sb_live_to_json(&l);
	cr_assert_str_eq(j, "{\"deleted\":[\"web-production\"],\"deploys\":[],\"previews\":[]}");
	free(j);
	sb_live_clear(&l);
}
