/* Tests from a mutation audit of the public-suffix, URL-scheme, xn-- label,
 * preview-room and check-note changes (385c5ce, 594f004, d36c546, cded98a,
 * 1802026): each kills a mutant that the earlier tests let live (named in
 * its comment). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "memfs.h"

TestSuite(session12_mutants, .fini = leak_check);

/* mutant: sb_http_scheme_len takes "https:/" (7 characters) for "https://" */
Test(session12_mutants, https_with_one_slash_is_no_scheme)
{
	cr_assert_eq(sb_http_scheme_len("https:/a.example.com"), 0);
	cr_assert_eq(sb_http_scheme_len("HTTPS:/"), 0);
}

/* mutant: sb_route_parse refuses "://" in the path of a route that has an
 * http(s) scheme (the "other scheme" check without !sl) */
Test(session12_mutants, a_scheme_route_may_have_a_url_in_its_path)
{
	const char *toml = "[[service]]\nname = \"a\"\n"
			   "routes = [\"HTTPS://a.example.com/go/http://x/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	cr_assert(routed(&w, "a.example.com/go/http://x/y"));
	world_free(&w);
}

/* mutant: a webhook url must be https:// (sb_http_scheme_len(url) != 8) */
Test(session12_mutants, a_webhook_url_may_be_plain_http)
{
	const char *toml =
	    "[[zone]]\nname = \"example.com\"\n"
	    "[[service]]\nname = \"a\"\nroutes = [\"a.example.com/*\"]\n"
	    "[[webhook]]\nprovider = \"stripe\"\nurl = \"Http://a.example.com/hook\"\n"
	    "service = \"a\"\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	cr_assert_eq(w.decl->nwebhooks, 1);
	cr_assert_str_eq(w.decl->webhooks[0].url, "Http://a.example.com/hook");
	world_free(&w);
}

/* mutant: sb_model_public_suffix lower-cases 'A' to 'Y' but not 'Z'
 * (name[i] < 'Z') */
Test(session12_mutants, a_public_suffix_with_a_capital_z)
{
	cr_assert(sb_model_public_suffix("BIZ", 3));
	cr_assert(sb_model_public_suffix("CO.NZ.", 6));
}

/* mutant: sb_model_public_suffix gives up on names of 64 characters or
 * more (n >= 64 for n >= sizeof(buf)): under the list's explicit rule
 * "*.ck", any one label is a public suffix, up to the 253 of a DNS name */
Test(session12_mutants, a_long_name_under_a_wildcard_rule_is_a_public_suffix)
{
	char name[260];
	memset(name, 'a', 250);
	memcpy(name + 250, ".ck", 4);
	cr_assert_eq(strlen(name), 253);
	cr_assert(sb_model_public_suffix(name, 253));
	cr_assert(sb_model_public_suffix(name + 180, 73));
	cr_assert(sb_model_public_suffix("x.ck", 4));
	cr_assert_not(sb_model_public_suffix("www.ck", 6)); /* the list's exception */
}

/* mutant: naming_why takes "xn-" (3 characters) for the xn-- prefix: a
 * first label "xn-a" is an ASCII label, renamed as any other */
Test(session12_mutants, a_first_label_with_one_hyphen_after_xn_is_renamed)
{
	const char *toml = "[[zone]]\nname = \"ex.com\"\n[previews]\nprs = [4]\n"
			   "[[service]]\nname = \"a\"\nroutes = [\"xn-a.ex.com/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	cr_assert(routed(&w, "xn-a-staging.ex.com/"));
	cr_assert(routed(&w, "xn-a-preview-4.ex.com/"));
	cr_assert_null(sb_model_unrenamed(w.model, 0, "xn-a.ex.com"));
	world_free(&w);
}

/* mutants: naming_why says "" for a wildcard host, and "" for a host of
 * one label, instead of a sentence (sb_model_unrenamed's contract) */
Test(session12_mutants, unrenamed_says_why_for_a_wildcard_and_one_label)
{
	const char *toml =
	    "[[service]]\nname = \"a\"\nroutes = [\"*.ex.com/*\", \"localhost/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	const char *why = sb_model_unrenamed(w.model, 0, "*.ex.com");
	cr_assert(why && strstr(why, "wildcard"), "%s", why ? why : "(null)");
	why = sb_model_unrenamed(w.model, 0, "localhost");
	cr_assert(why && strstr(why, "one label"), "%s", why ? why : "(null)");
	world_free(&w);
}

/* mutant: sb_model_unrenamed ignores the service's declared label (passes
 * NULL): a labelled service's apex and xn-- hosts do get derived hosts */
Test(session12_mutants, unrenamed_is_null_when_a_label_names_the_hosts)
{
	const char *toml =
	    "[[zone]]\nname = \"ex.com\"\n"
	    "[[service]]\nname = \"a\"\nlabel = \"www\"\n"
	    "routes = [\"xn--caf-dma.ex.com/*\", \"customer.com/c/*\", \"ex.com/e/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	cr_assert(routed(&w, "www-staging.ex.com/"));
	cr_assert(routed(&w, "www-staging.customer.com/c/"));
	cr_assert_null(sb_model_unrenamed(w.model, 0, "xn--caf-dma.ex.com"));
	cr_assert_null(sb_model_unrenamed(w.model, 0, "customer.com"));
	cr_assert_null(sb_model_unrenamed(w.model, 0, "ex.com"));
	world_free(&w);
}

/* mutant: the registered-domain reason loses "(the public suffix list)",
 * which says where the apex comes from; a zone's apex does not say it */
Test(session12_mutants, unrenamed_names_the_public_suffix_list_for_a_domain_apex)
{
	const char *toml =
	    "[[zone]]\nname = \"ex.com\"\n"
	    "[[service]]\nname = \"a\"\nroutes = [\"customer.co.uk/*\", \"ex.com/e/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	const char *why = sb_model_unrenamed(w.model, 0, "customer.co.uk");
	cr_assert(why && strstr(why, "registered domain's apex (the public suffix list)"), "%s",
		  why ? why : "(null)");
	why = sb_model_unrenamed(w.model, 0, "ex.com");
	cr_assert(why && strstr(why, "declared zone's apex") && !strstr(why, "public suffix"), "%s",
		  why ? why : "(null)");
	world_free(&w);
}
