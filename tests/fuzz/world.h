/* Fuzz targets' fixed world: a declaration from text, built into a model
 * and a route table once, kept for the process's life. */
#ifndef SB_TESTS_FUZZ_WORLD_H
#define SB_TESTS_FUZZ_WORLD_H

#include <stdlib.h>

#include "config/decl.h"
#include "model/model.h"
#include "route/route.h"

static int no_files(void *ctx, const char *path, char **data, size_t *len, sb_diag *d)
{
	return sb_diag_setc(d, SB_ENOENT, path, 0, 0, "no file");
}

/* Load text as /f/switchboard.toml (no wrangler files) and compile it;
 * aborts if it does not load, as the target would test nothing. */
static void world_load(const char *text, size_t len, sb_decl **decl, sb_model **model,
		       sb_route_table **rt)
{
	sb_diag d = {0};
	sb_route_options opt = {.preview_rule = true};
	if (sb_decl_load_text("/f/switchboard.toml", text, len, no_files, NULL, decl, &d) < 0 ||
	    sb_model_build(*decl, model, &d) < 0 || sb_route_compile(*model, &opt, rt, &d) < 0)
		abort();
}

#endif
