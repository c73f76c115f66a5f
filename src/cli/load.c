/* Declaration -> model -> route table, for every command. The only place in
 * the pipeline that touches the file system. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "admin/ops.h"
#include "dns/xfr.h"
#include "store/store.h"

static int read_file(void *ctx, const char *path, char **data, size_t *len, sb_diag *d)
{
	return sb_file_read(path, data, len, d);
}

int sb_cli_load(const char *path, const char *data_dir, sb_loaded *out, sb_diag *d)
{
	int r;
	char file[4096];
	struct stat st;
	memset(out, 0, sizeof(*out));
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(file, sizeof(file), "%s%sswitchboard.toml", path,
			 path[strlen(path) - 1] == '/' ? "" : "/");
		if (stat(file, &st) != 0)
			return sb_diag_setc(
			    d, SB_ENOENT, path, 0, 0,
			    "directory has no switchboard.toml (pass the file, or a "
			    "directory that holds one)");
	} else {
		snprintf(file, sizeof(file), "%s", path);
	}
	if ((r = sb_decl_load(file, read_file, NULL, &out->decl, d)) < 0)
		goto out;
	/* [dns] keys, allow list and secondaries are checked here, not in the
	 * loader, so that src/config does not depend on src/dns */
	if ((r = sb_dns_xfr_config_check(&out->decl->dns, out->decl->file, d)) < 0)
		goto out;
	/* the live state (previews, deploys, deletes) when a store exists:
	 * commands show what the edge serves; reading never creates a store */
	const char *dir = data_dir ? data_dir : out->decl->data_dir;
	snprintf(file, sizeof(file), "%s/switchboard.db", dir);
	if (stat(file, &st) == 0) {
		sb_store *store = NULL;
		r = sb_store_open_ro(dir, &store, d);
		if (r == 0)
			r = sb_ops_current(store, &out->live, NULL, d);
		else if (r == SB_ENOENT) /* being created: nothing stored yet */
			r = 0;
		sb_store_close(store);
		if (r < 0)
			goto out;
	}
	if ((r = sb_model_build_live(out->decl, &out->live, &out->model, d)) < 0)
		goto out;
	sb_route_options opt = {.preview_rule = true};
	if ((r = sb_route_compile(out->model, &opt, &out->routes, d)) < 0)
		goto out;
	out->tenants = sb_tenants_new(out->decl->nstatic_tenants);
	for (size_t i = 0; i < out->decl->nstatic_tenants; i++) {
		const char *s = out->decl->static_tenants[i];
		sb_tenants_put(out->tenants, s, strlen(s), SB_TENANT_ACTIVE);
	}
out:
	if (r < 0)
		sb_cli_unload(out);
	return r;
}

void sb_cli_unload(sb_loaded *l)
{
	sb_tenants_free(l->tenants);
	sb_route_free(l->routes);
	sb_model_free(l->model);
	sb_decl_free(l->decl);
	sb_live_clear(&l->live);
	memset(l, 0, sizeof(*l));
}

void sb_cli_print_diag(const sb_diag *d)
{
	char buf[2048];
	fprintf(stderr, "switchboard: %s\n", sb_diag_format(d, buf, sizeof(buf)));
}

const char *sb_cli_upstream_text(const sb_upstream_decl *u, char *buf, size_t size)
{
	if (!u)
		return "-";
	if (u->url)
		return u->url;
	size_t o = (size_t)snprintf(buf, size, "command:");
	for (size_t i = 0; i < u->argc && o < size; i++)
		o += (size_t)snprintf(buf + o, size - o, " %s", u->argv[i]);
	return buf;
}

int sb_cli_store_read(const char *dir, bool given, sb_store **st, sb_diag *d)
{
	struct stat sd;
	int r = sb_store_open_ro(dir, st, d);
	if (r == SB_ENOENT && !(given && (stat(dir, &sd) != 0 || !S_ISDIR(sd.st_mode)))) {
		*st = NULL;
		return 0;
	}
	return r;
}
