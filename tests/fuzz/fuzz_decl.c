/*
 * Fuzz target: a whole declaration, from text to what the edge serves.
 * The input is switchboard.toml, then a NUL byte, then the text every
 * wrangler.toml it names reads as. A declaration that loads is built into a
 * model, a route table, the consistency check's report and the DNS zones,
 * and looked up; one that does not must say where (file and line).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/decl.h"
#include "dns/zone.h"
#include "model/model.h"
#include "route/check.h"
#include "route/route.h"

struct input {
	const char *wrangler;
	size_t len;
};

static int read_wrangler(void *ctx, const char *path, char **data, size_t *len, sb_diag *d)
{
	const struct input *in = ctx;
	*data = sb_xmalloc(in->len + 1);
	memcpy(*data, in->wrangler, in->len);
	(*data)[in->len] = '\0';
	*len = in->len;
	return 0;
}

static const char *const hosts[] = {
    "example.com",
    "acme.example.com",
    "api.example.com:8080",
    "WWW.Example.COM.",
    "web-preview-7.example.com",
    "x.y.z",
    "",
    "a..b",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(text, '\0', size);
	size_t tlen = nul ? (size_t)(nul - text) : size;
	struct input in = {nul ? nul + 1 : "", nul ? size - tlen - 1 : 0};

	sb_decl *decl = NULL;
	sb_model *model = NULL;
	sb_route_table *rt = NULL;
	sb_tenants *tenants = NULL;
	sb_dns_zones *zones = NULL;
	sb_diag d = {0};

	if (sb_decl_load_text("/f/switchboard.toml", text, tlen, read_wrangler, &in, &decl, &d) <
	    0) {
		if (decl || !d.file[0])
			abort(); /* a refused declaration says which file */
		goto out;
	}
	if (sb_model_build(decl, &model, &d) < 0)
		goto out;
	sb_route_options opt = {.preview_rule = true};
	if (sb_route_compile(model, &opt, &rt, &d) < 0)
		goto out;
	tenants = sb_tenants_new(4);
	const char *slugs[] = {"acme", "beta"};
	sb_tenants_put(tenants, "acme", 4, SB_TENANT_ACTIVE);
	sb_tenants_put(tenants, "beta", 4, SB_TENANT_SUSPENDED);
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		sb_route_match m;
		sb_route_lookup(rt, tenants, hosts[i], strlen(hosts[i]), "/x?y", 4, &m);
	}
	sb_violation *v = NULL;
	sb_check_run(model, rt, tenants, 9999, &v);
	free(v);
	if (sb_dns_build_decl(decl, model, rt, slugs, 1, 1, &zones, &d) < 0)
		goto out;
out:
	sb_dns_free(zones);
	sb_tenants_free(tenants);
	sb_route_free(rt);
	sb_model_free(model);
	sb_decl_free(decl);
	return 0;
}
