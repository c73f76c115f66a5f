/* Tests from a mutation audit of the changes since 867b22e (the preview
 * rule's table, the [[service]] label, the 253-character limit, the
 * tenant-host check, the published DNS serial): each kills a mutant that
 * the earlier tests let live (named in its comment). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "http/edge.h"
#include "memfs.h"

TestSuite(session_mutants, .fini = leak_check);

/* A zone name of exactly len characters (labels of at most 63). */
static void zone_of_len(char *buf, size_t len)
{
	size_t i = 0;
	char c = 'a';
	while (i < len) {
		if (i)
			buf[i++] = '.';
		size_t take = len - i > 63 ? 63 : len - i;
		memset(buf + i, c++, take);
		i += take;
	}
	buf[len] = '\0';
}

static char *toml_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *toml_printf(const char *fmt, ...)
{
	static char buf[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

/* A route on the production host beats a custom domain of another service
 * on the same host and path, and the preview rule's table settles the two
 * the same way: the preview of that host goes where production goes
 * (mutant: add_preview_base keeps the first, the custom domain). */
Test(session_mutants, the_preview_of_a_host_follows_the_route_that_beats_its_custom_domain)
{
	const char *toml = "[[zone]]\nname = \"example.com\"\n"
			   "[[service]]\nname = \"app\"\n"
			   "routes = [{ pattern = \"app.example.com/*\", custom_domain = true }]\n"
			   "[[service]]\nname = \"logger\"\nroutes = [\"app.example.com/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "load: %s", w.diag.msg);
	sb_route_match m;
	cr_assert_eq(lookup(&w, "app.example.com/x", &m), 0, "%s", m.reason);
	cr_assert_str_eq(w.model->services[m.service].name, "logger");
	cr_assert_eq(lookup(&w, "app-preview-3.example.com/x", &m), 0, "%s", m.reason);
	cr_assert_str_eq(w.model->services[m.service].name, "logger");
	cr_assert_eq(m.pr, 3);
	world_free(&w);
}

/* A staging host written out ("nobody-staging.<zone>") on the tenant-aware
 * service is tenant nobody's host, as a derived one is: gated by that
 * tenant (mutant: named_host_tenant keeps the naming suffix, so the label
 * is no slug and the host is served to anyone). */
Test(session_mutants, a_written_staging_host_of_the_tenant_service_is_its_tenants)
{
	const char *toml = "[[zone]]\nname = \"rev.st\"\n"
			   "[tenants]\nservice = \"web\"\nstatic = [\"codex\"]\n"
			   "[[service]]\nname = \"web\"\nroutes = [\"codex.rev.st/*\"]\n"
			   "[service.env.staging]\n"
			   "routes = [\"nobody-staging.rev.st/*\", \"codex-staging.rev.st/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "load: %s", w.diag.msg);
	sb_route_match m;
	cr_assert_eq(lookup(&w, "nobody-staging.rev.st/", &m), SB_ENOTENANT, "%s",
		     m.reason ? m.reason : "");
	cr_assert_eq(lookup(&w, "codex-staging.rev.st/", &m), 0, "%s", m.reason);
	cr_assert_str_eq(m.tenant, "codex");
	cr_assert_eq(m.env, SB_ENV_STAGING);
	world_free(&w);
}

/* The check's tenant-host violation names the tenant of the production host
 * a derived host is made from, not the declared label that names it
 * (mutant: the tenant is read from "shop-staging.rev.st"). */
Test(session_mutants, the_tenant_host_violation_names_the_production_hosts_tenant)
{
	const char *toml = "[[zone]]\nname = \"rev.st\"\n"
			   "[tenants]\nservice = \"web\"\n"
			   "[[service]]\nname = \"web\"\nlabel = \"shop\"\n"
			   "routes = [\"acme.rev.st/*\"]\n";
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "load: %s", w.diag.msg);
	sb_violation *v = NULL;
	size_t n = sb_check_run(w.model, w.rt, w.tenants, 1, &v);
	bool staging = false;
	for (size_t i = 0; i < n; i++) {
		cr_assert_null(strstr(v[i].msg, "tenant 'shop'"), "%s", v[i].msg);
		staging |= strstr(v[i].msg, "\"shop-staging.rev.st/*\"") &&
			   strstr(v[i].msg, "tenant 'acme'") &&
			   strstr(v[i].msg, "switchboard tenants add acme");
	}
	cr_assert(staging, "no violation for the staging host (%zu)", n);
	free(v);
	world_free(&w);
}

/* A preview host longer than 253 characters is no DNS name: the preview
 * of any PR (derived on demand, unchecked by the build) has no route on it;
 * at 253 it has (mutants: derive_host's limit dropped or made 254). */
Test(session_mutants, a_preview_host_over_253_characters_is_not_derived)
{
	char z253[256], z254[256];
	/* "w-preview-7." + zone: 12 characters before it */
	zone_of_len(z253, 253 - 12);
	zone_of_len(z254, 254 - 12);
	cr_assert_eq(strlen(z253), 241);
	cr_assert_eq(strlen(z254), 242);
	char *toml = toml_printf("[[zone]]\nname = \"%s\"\n[[zone]]\nname = \"%s\"\n"
				 "[[service]]\nname = \"a\"\nroutes = [\"w.%s/*\"]\n"
				 "[service.env.staging]\nroutes = [\"s.%s/*\"]\n"
				 "[[service]]\nname = \"b\"\nroutes = [\"w.%s/*\"]\n"
				 "[service.env.staging]\nroutes = [\"s.%s/*\"]\n",
				 z253, z254, z253, z253, z254, z254);
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "load: %s", w.diag.msg);
	sb_pool *pool = sb_pool_new(4096);
	sb_deployment a, b;
	sb_model_preview(w.model, 0, 7, pool, &a);
	sb_model_preview(w.model, 1, 7, pool, &b);
	cr_assert_eq(a.nroutes, 1);
	cr_assert_eq(strlen(a.routes[0].host), 253, "%s", a.routes[0].host);
	cr_assert_eq(b.nroutes, 0, "%s", b.nroutes ? b.routes[0].host : "");
	sb_pool_free(pool);
	world_free(&w);
}

/* A staging host of 254 characters is refused at the route, one of 253
 * is made (mutant: label_room's limit made 254, so the route vanishes
 * without a word). */
Test(session_mutants, a_staging_host_over_253_characters_is_refused)
{
	char z[256];
	/* "w-staging." + zone */
	zone_of_len(z, 254 - 10);
	char *toml = toml_printf("[[zone]]\nname = \"%s\"\n[[service]]\nname = \"a\"\n"
				 "routes = [\"w.%s/*\"]\n",
				 z, z);
	struct world w = world_load(toml, NULL);
	cr_assert_lt(w.rc, 0, "loaded");
	cr_assert(strstr(w.diag.msg, "longer than 253 characters") &&
		      strstr(w.diag.msg, "w-staging"),
		  "%s", w.diag.msg);
	world_free(&w);

	zone_of_len(z, 253 - 10);
	toml = toml_printf("[[zone]]\nname = \"%s\"\n[[service]]\nname = \"a\"\n"
			   "routes = [\"w.%s/*\"]\n",
			   z, z);
	w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "load: %s", w.diag.msg);
	sb_route_match m;
	char host[300];
	snprintf(host, sizeof(host), "w-staging.%s/", z);
	cr_assert_eq(lookup(&w, host, &m), 0, "%s", m.reason);
	cr_assert_eq(m.env, SB_ENV_STAGING);
	world_free(&w);
}

/* A naming template that makes a label longer than the 256-byte buffer is
 * still "longer than 63 characters" at the route, not a host the rule
 * renames nothing in (mutant: derived_label returns -1 when
 * sb_model_name_format fails, and the staging routes vanish). */
Test(session_mutants, a_template_longer_than_any_label_is_refused_at_the_route)
{
	char tpl[300] = "{label}-";
	memset(tpl + 8, 's', 260);
	tpl[268] = '\0';
	char *toml = toml_printf("[naming]\nstaging = \"%s\"\n[[zone]]\nname = \"rev.st\"\n"
				 "[[service]]\nname = \"a\"\nroutes = [\"w.rev.st/*\"]\n",
				 tpl);
	struct world w = world_load(toml, NULL);
	cr_assert_lt(w.rc, 0, "loaded");
	cr_assert(strstr(w.diag.msg, "longer than 63 characters") && strstr(w.diag.msg, "w.rev.st"),
		  "%s", w.diag.msg);
	world_free(&w);
}

/* sb_edge_published_serial reads the line of the zone asked for, and says
 * SB_ENOENT for a zone without one (mutants: the last line of any zone; 0
 * for a zone not recorded). */
Test(session_mutants, the_published_serial_is_the_zones_own)
{
	char dir[] = "/tmp/sb-serials-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/dns-serials", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("# zone serial hash\na.example 2026010101 1f\nb.example 2026020202 2e\n", f);
	fclose(f);
	uint32_t serial = 0;
	uint64_t h = 0;
	cr_assert_eq(sb_edge_published_serial(dir, "a.example", &serial, &h), 0);
	cr_assert_eq(serial, 2026010101u);
	cr_assert_eq(h, 0x1f);
	cr_assert_eq(sb_edge_published_serial(dir, "b.example", &serial, &h), 0);
	cr_assert_eq(serial, 2026020202u);
	cr_assert_eq(h, 0x2e);
	cr_assert_eq(sb_edge_published_serial(dir, "c.example", &serial, &h), SB_ENOENT);
	unlink(path);
	rmdir(dir);
}

/* An upstream's host is at most 253 characters, as any DNS name, and an
 * IPv6 address in [] at most 47 (mutants: 254 passes; 48 passes). */
Test(session_mutants, an_upstream_host_is_at_most_253_characters)
{
	char z[256], url[300];
	const char *why = NULL;
	zone_of_len(z, 253);
	snprintf(url, sizeof(url), "http://%s:8080", z);
	cr_assert_eq(sb_url_check_upstream(url, &why), 0, "%s", why ? why : "");
	zone_of_len(z, 254);
	snprintf(url, sizeof(url), "http://%s:8080", z);
	why = NULL;
	cr_assert_eq(sb_url_check_upstream(url, &why), SB_EINVAL);
	cr_assert(why && strstr(why, "the host must be a name"), "%s", why ? why : "(none)");
	/* an IPv6 address in [] is at most 47 characters with them (mutant: 48) */
	char v6[64] = "[";
	memset(v6 + 1, '0', 45);
	v6[46] = ']';
	v6[47] = '\0';
	snprintf(url, sizeof(url), "http://%s:8080", v6);
	why = NULL;
	cr_assert_eq(sb_url_check_upstream(url, &why), 0, "%s: %s", url, why ? why : "");
	memset(v6 + 1, '0', 46);
	v6[47] = ']';
	v6[48] = '\0';
	snprintf(url, sizeof(url), "http://%s:8080", v6);
	cr_assert_eq(sb_url_check_upstream(url, &why), SB_EINVAL, "%s", url);
}

/* Two services whose hosts the naming rule makes one staging host, on
 * overlapping paths, get the two-services hint (mutant: the one-service
 * hint, "a service's hosts need different paths"). */
Test(session_mutants, overlapping_paths_of_two_services_under_one_label_get_the_two_services_hint)
{
	const char *toml =
	    "[[zone]]\nname = \"ex.com\"\n"
	    "[[service]]\nname = \"a\"\nlabel = \"x\"\nroutes = [\"a.ex.com/api/*\"]\n"
	    "[[service]]\nname = \"b\"\nlabel = \"x\"\nroutes = [\"b.ex.com/*\"]\n";
	load_refused(toml, SB_EEXIST,
		     (const char *[]){"where their paths overlap",
				      "give one of the services another label", NULL},
		     (const char *[]){"a service's hosts need different paths", NULL});
}

/* The name the preview rule maps a host back to is refused when it does not
 * fit 255 characters, not cut: two apexes of 252 characters that differ in
 * their last one, each the host of a service labelled "web", are two names
 * of 256 ("web." and the apex), neither of which a preview host can have;
 * cut to 255 they would be one, and the two services refused as sharing
 * their preview hosts (mutant: sb_model_naming_base takes 256). */
Test(session_mutants, preview_names_too_long_to_hold_are_not_cut_into_one)
{
	char z1[256], z2[256];
	zone_of_len(z1, 252);
	memcpy(z2, z1, sizeof(z1));
	z2[251] = 'x';
	char *toml = toml_printf("[[zone]]\nname = \"%s\"\n[[zone]]\nname = \"%s\"\n"
				 "[[zone]]\nname = \"ex.com\"\n"
				 "[[service]]\nname = \"a\"\nlabel = \"web\"\nroutes = [\"%s/*\"]\n"
				 "[service.env.staging]\nroutes = [\"a.ex.com/*\"]\n"
				 "[[service]]\nname = \"b\"\nlabel = \"web\"\nroutes = [\"%s/*\"]\n"
				 "[service.env.staging]\nroutes = [\"b.ex.com/*\"]\n",
				 z1, z2, z1, z2);
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, 0, "load: %s", w.diag.msg);
	sb_route_match m;
	char host[300];
	snprintf(host, sizeof(host), "%s/x", z2);
	cr_assert_eq(lookup(&w, host, &m), 0, "%s", m.reason);
	cr_assert_str_eq(w.model->services[m.service].name, "b");
	world_free(&w);
}
