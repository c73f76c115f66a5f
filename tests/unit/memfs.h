/* Test helper: load declarations from strings instead of files. */
#ifndef SB_TESTS_MEMFS_H
#define SB_TESTS_MEMFS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/decl.h"
#include "model/model.h"
#include "route/check.h"
#include "route/route.h"

/*
 * Criterion runs each test in a worker that leaves through _exit(), so
 * LeakSanitizer would never look: suites call this from .fini instead.
 */
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif
__attribute__((unused)) static void leak_check(void)
{
#ifdef __SANITIZE_ADDRESS__
	if (__lsan_do_recoverable_leak_check())
		abort();
#endif
}

struct memfile {
	const char *path;
	const char *text;
};

__attribute__((unused)) static int memfs_read(void *ctx, const char *path, char **data, size_t *len,
					      sb_diag *d)
{
	for (const struct memfile *f = ctx; f && f->path; f++)
		if (strcmp(f->path, path) == 0) {
			*len = strlen(f->text);
			*data = sb_xstrndup(f->text, *len);
			return 0;
		}
	return sb_diag_setc(d, SB_ENOENT, path, 0, 0, "cannot open: No such file or directory");
}

struct world {
	sb_decl *decl;
	sb_model *model;
	sb_route_table *rt;
	sb_tenants *tenants;
	sb_diag diag;
	int rc;
};

/* Load switchboard.toml text (as /t/switchboard.toml) with extra files. */
__attribute__((unused)) static struct world world_load(const char *toml,
						       const struct memfile *files)
{
	struct world w;
	memset(&w, 0, sizeof(w));
	w.rc = sb_decl_load_text("/t/switchboard.toml", toml, strlen(toml), memfs_read,
				 (void *)files, &w.decl, &w.diag);
	if (w.rc == 0)
		w.rc = sb_model_build(w.decl, &w.model, &w.diag);
	if (w.rc == 0) {
		sb_route_options opt = {.preview_rule = true};
		w.rc = sb_route_compile(w.model, &opt, &w.rt, &w.diag);
	}
	if (w.rc == 0) {
		w.tenants = sb_tenants_new(4);
		for (size_t i = 0; i < w.decl->nstatic_tenants; i++)
			sb_tenants_put(w.tenants, w.decl->static_tenants[i],
				       strlen(w.decl->static_tenants[i]), SB_TENANT_ACTIVE);
	}
	return w;
}

__attribute__((unused)) static void world_free(struct world *w)
{
	sb_tenants_free(w->tenants);
	sb_route_free(w->rt);
	sb_model_free(w->model);
	sb_decl_free(w->decl);
}

/* Load switchboard.toml text and expect it refused with code, the message
 * holding every string of want and none of unwanted (each NULL-terminated;
 * unwanted may be NULL). */
__attribute__((unused)) static void load_refused(const char *toml, int code,
						 const char *const *want,
						 const char *const *unwanted)
{
	struct world w = world_load(toml, NULL);
	cr_assert_eq(w.rc, code, "%d: %s", w.rc, w.diag.msg);
	for (const char *const *p = want; *p; p++)
		cr_assert(strstr(w.diag.msg, *p), "no \"%s\" in: %s", *p, w.diag.msg);
	for (const char *const *p = unwanted; p && *p; p++)
		cr_assert_null(strstr(w.diag.msg, *p), "\"%s\" in: %s", *p, w.diag.msg);
	world_free(&w);
}

/* Look up "host/path" and return the code; *m gets the match. */
__attribute__((unused)) static int lookup(const struct world *w, const char *hostpath,
					  sb_route_match *m)
{
	const char *slash = strchr(hostpath, '/');
	size_t hl = slash ? (size_t)(slash - hostpath) : strlen(hostpath);
	const char *path = slash ? slash : "/";
	return sb_route_lookup(w->rt, w->tenants, hostpath, hl, path, strlen(path), m);
}

/* Is "host/path" routed (to a deployment, or a preview by the rule)? */
__attribute__((unused)) static bool routed(const struct world *w, const char *hostpath)
{
	sb_route_match m;
	return lookup(w, hostpath, &m) == 0;
}

/* Name of the matched deployment (derived previews named by the rule). */
__attribute__((unused)) static const char *dep_name(const struct world *w, const sb_route_match *m,
						    char *buf, size_t n)
{
	if (m->deployment)
		return m->deployment->name;
	snprintf(buf, n, "%s-preview-%u", w->model->services[m->service].name, m->pr);
	return buf;
}

#endif
