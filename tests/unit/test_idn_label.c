/* An international first label (xn--, its encoded form) is never appended
 * to by the naming rule: xn--caf-dma-staging would not decode, and browsers
 * refuse such a name. Such a host gets derived hosts only from a declared
 * label, as a zone apex; a declared label is never an xn-- label. */
#include <criterion/criterion.h>

#include "memfs.h"

TestSuite(idn_label, .fini = leak_check);

Test(idn_label, an_encoded_first_label_gets_no_derived_host)
{
	const char *toml = "[[zone]]\nname = \"ex.com\"\n[previews]\nprs = [4]\n"
			   "[[service]]\nname = \"a\"\n"
			   "routes = [\"xn--caf-dma.ex.com/*\", \"XN--bcher-kva.ex.com/b/*\", "
			   "\"shop.ex.com/x/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	cr_assert(routed(&w, "xn--caf-dma.ex.com/"));
	cr_assert_not(routed(&w, "xn--caf-dma-staging.ex.com/"));
	cr_assert_not(routed(&w, "xn--caf-dma-preview-4.ex.com/"));
	cr_assert_not(routed(&w, "xn--bcher-kva-staging.ex.com/b/"));
	cr_assert(routed(&w, "shop-staging.ex.com/x/"));
	cr_assert(routed(&w, "shop-preview-4.ex.com/x/"));
	/* the service's label comes from a host the rule renames */
	cr_assert_str_eq(w.model->services[0].label, "shop");
	world_free(&w);
}

/* A declared ASCII label names them, as for an apex. */
Test(idn_label, a_declared_label_names_its_derived_hosts)
{
	const char *toml = "[[zone]]\nname = \"ex.com\"\n[previews]\nprs = [4]\n"
			   "[[service]]\nname = \"a\"\nlabel = \"cafe\"\n"
			   "routes = [\"xn--caf-dma.ex.com/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "%s", w.diag.msg);
	cr_assert(routed(&w, "cafe-staging.ex.com/"));
	cr_assert(routed(&w, "cafe-preview-4.ex.com/"));
	world_free(&w);
}

/* A declared label that is itself encoded is refused where written; a
 * label with "xn" elsewhere, or one hyphen, is an ASCII label as any. */
Test(idn_label, a_declared_encoded_label_is_refused)
{
	const char *bad[] = {"xn--caf-dma", "XN--caf-dma", NULL};
	for (size_t i = 0; bad[i]; i++) {
		char toml[256];
		snprintf(toml, sizeof(toml),
			 "[[service]]\nname = \"a\"\nlabel = \"%s\"\nroutes = [\"a.ex.com/*\"]\n",
			 bad[i]);
		struct world w = world_load(toml, NULL);
		cr_assert_eq(w.rc, SB_EINVAL, "%s accepted", bad[i]);
		cr_assert(strstr(w.diag.msg, "is an encoded international label (xn--)") &&
			      strstr(w.diag.msg, "choose an ASCII label"),
			  "%s", w.diag.msg);
		cr_assert_eq(w.diag.line, 3);
		cr_assert_eq(w.diag.col, 9);
		world_free(&w);
	}
	const char *good[] = {"xn-caf", "axn--b", "xnxx", NULL};
	for (size_t i = 0; good[i]; i++) {
		char toml[256];
		snprintf(toml, sizeof(toml),
			 "[[service]]\nname = \"a\"\nlabel = \"%s\"\nroutes = [\"a.ex.com/*\"]\n",
			 good[i]);
		struct world w = world_load(toml, NULL);
		cr_assert_eq(w.rc, 0, "%s: %s", good[i], w.diag.msg);
		world_free(&w);
	}
}
