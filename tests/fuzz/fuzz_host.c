/*
 * Fuzz target: a Host header and a path as a client sends them, looked up
 * in a route table with exact, wildcard, tenant and preview routes, as the
 * edge does for every request (a service with a declared label among them).
 * A normalised host is lower case, without a port or trailing dot, and
 * normalising it again changes nothing. A preview found by the naming rule
 * is the host the rule gives its production route's host for that PR. The host
 * is also checked as a tenant slug (the xn-- A-label decoder among it): an
 * accepted slug is one label of a-z, 0-9 and '-'.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/decl.h"
#include "model/model.h"
#include "route/route.h"
#include "world.h"

static const char decl_toml[] =
    "[[zone]]\n"
    "name = \"example.com\"\n"
    "addresses = [\"192.0.2.1\"]\n"
    "nameservers = [\"ns1.example.com\"]\n"
    "[tenants]\n"
    "service = \"web\"\n"
    "[previews]\n"
    "prs = [7]\n"
    "[[service]]\n"
    "name = \"web\"\n"
    "routes = [\"app.example.com/*\"]\n"
    "[[service]]\n"
    "name = \"api\"\n"
    "routes = [\"api.example.com/v1/*\", \"api.example.com/exact\", \"*.wild.example.com/*\"]\n"
    "[[service]]\n"
    "name = \"site\"\n"
    "label = \"home\"\n"
    "routes = [\"example.com/*\", \"docs.example.com/guide/*\"]\n";

static sb_decl *decl;
static sb_model *model;
static sb_route_table *rt;
static sb_tenants *tenants;

static void setup(void)
{
	world_load(decl_toml, sizeof(decl_toml) - 1, &decl, &model, &rt);
	tenants = sb_tenants_new(4);
	sb_tenants_put(tenants, "acme", 4, SB_TENANT_ACTIVE);
	sb_tenants_put(tenants, "gone", 4, SB_TENANT_SUSPENDED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!rt)
		setup();
	const char *s = (const char *)data;
	const char *nul = memchr(s, '\0', size);
	size_t hl = nul ? (size_t)(nul - s) : size;
	const char *path = nul ? nul + 1 : "/";
	size_t pl = nul ? size - hl - 1 : 1;

	char buf[300], again[300];
	int n = sb_route_host_normalize(s, hl, buf, sizeof(buf));
	if (n >= 0) {
		if ((size_t)n >= sizeof(buf))
			abort();
		for (int i = 0; i < n; i++)
			if (buf[i] >= 'A' && buf[i] <= 'Z')
				abort();
		if (n > 0 && buf[n - 1] == '.')
			abort();
		int m = sb_route_host_normalize(buf, (size_t)n, again, sizeof(again));
		if (m != n || memcmp(buf, again, (size_t)n) != 0)
			abort();
	}
	sb_route_match m;
	int rc = sb_route_lookup(rt, tenants, s, hl, path, pl, &m);
	if (rc == 0 && m.derived) {
		char base[256], lab[256];
		int bl = sb_model_naming_base(model, m.service, m.route->host, base, sizeof(base));
		const char *dot = bl > 0 ? memchr(base, '.', (size_t)bl) : NULL;
		if (n < 0 || !dot)
			abort();
		int ll = sb_model_name_format(model, SB_ENV_PREVIEW, base, (size_t)(dot - base),
					      m.pr, lab, sizeof(lab));
		size_t rest = (size_t)bl - (size_t)(dot - base);
		if (ll < 0 || (size_t)ll + rest != (size_t)n || memcmp(buf, lab, (size_t)ll) != 0 ||
		    memcmp(buf + ll, dot, rest) != 0)
			abort();
	}
	const char *why;
	if (sb_model_slug_check(model, s, hl, &why) == 0) {
		if (hl == 0 || hl > SB_SLUG_MAX)
			abort();
		for (size_t i = 0; i < hl; i++)
			if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
			      s[i] == '-'))
				abort();
	}
	return 0;
}
