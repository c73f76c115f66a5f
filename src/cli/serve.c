/* switchboard serve and switchboard reload. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "admin/api.h"
#include "cli/cli.h"
#include "http/edge.h"

static const char usage_serve[] =
    "usage: switchboard serve -c PATH [--data DIR] [--listen HOST:PORT] [--dns HOST:PORT]\n"
    "                         [--threads N]\n"
    "\n"
    "Run the edge: route HTTP by host to the declared deployments, resolve\n"
    "tenants, sign forwarded requests. SIGHUP (or 'switchboard reload') re-reads\n"
    "the declaration; SIGTERM stops gracefully.\n"
    "  --data DIR          data directory (default: data_dir of the declaration)\n"
    "  --listen HOST:PORT  HTTP address (default: [listen] http); port 0 picks one\n"
    "  --dns HOST:PORT     DNS address, UDP and TCP (default: [listen] dns, if set)\n"
    "  --threads N         serving threads (default: [http] threads, or one per core)\n";

static const char usage_reload[] =
    "usage: switchboard reload -c PATH [--data DIR]\n"
    "\n"
    "Ask the running edge (found through the admin socket in the data directory,\n"
    "which tells its pid) to re-read its declaration. A declaration that fails to\n"
    "load is reported here and the server is not asked (its data_dir is in it);\n"
    "with --data DIR the server is asked anyway, and refuses it: it keeps serving\n"
    "the previous one and logs the error.\n";

int sb_cli_decl_file(const char *path, char *out, size_t size, sb_diag *d)
{
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(out, size, "%s%sswitchboard.toml", path,
			 path[strlen(path) - 1] == '/' ? "" : "/");
	else
		snprintf(out, size, "%s", path);
	if (stat(out, &st) != 0)
		return sb_diag_setc(d, SB_ENOENT, out, 0, 0, "cannot open: %s", strerror(errno));
	return 0;
}

struct sopts {
	const char *config, *data, *listen, *dns;
	int threads;
};

static int parse(int argc, char **argv, struct sopts *o, const char *usage)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
						 {"data", required_argument, NULL, 'd'},
						 {"listen", required_argument, NULL, 'l'},
						 {"dns", required_argument, NULL, 'n'},
						 {"threads", required_argument, NULL, 't'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	memset(o, 0, sizeof(*o));
	o->config = ".";
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "c:d:l:n:t:h", longopts, NULL)) != -1) {
		uint64_t v;
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'd': o->data = optarg; break;
		case 'l': o->listen = optarg; break;
		case 'n': o->dns = optarg; break;
		case 't':
			if (sb_parse_u64(optarg, strlen(optarg), 1024, &v) < 0 || v == 0) {
				fprintf(stderr, "switchboard: --threads: expected 1 to 1024\n");
				return 2;
			}
			o->threads = (int)v;
			break;
		case 'h': fputs(usage, stdout); return 1;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "switchboard: unexpected argument '%s'\n%s", argv[optind], usage);
		return 2;
	}
	return 0;
}

int sb_cli_serve(int argc, char **argv)
{
	struct sopts o;
	int r = parse(argc, argv, &o, usage_serve);
	if (r)
		return r == 1 ? 0 : r;
	char file[4096];
	sb_diag d = {0};
	if (sb_cli_decl_file(o.config, file, sizeof(file), &d) < 0) {
		sb_cli_print_diag(&d);
		return 2;
	}
	sb_edge_opts eo = {.config = file,
			   .data_dir = o.data,
			   .listen = o.listen,
			   .listen_dns = o.dns,
			   .threads = o.threads};
	if (sb_edge_run(&eo, &d) < 0) {
		sb_cli_print_diag(&d);
		return 1;
	}
	return 0;
}

int sb_cli_reload(int argc, char **argv)
{
	struct sopts o;
	int r = parse(argc, argv, &o, usage_reload);
	if (r)
		return r == 1 ? 0 : r;
	sb_loaded l;
	sb_diag d = {0};
	const char *data = o.data;
	if (!data) {
		/* the declaration names the data directory; a broken declaration is
		 * still sent to the server, which refuses it and keeps serving */
		if (sb_cli_load(o.config, NULL, &l, &d) < 0) {
			sb_cli_print_diag(&d);
			fprintf(stderr,
				"switchboard: the declaration does not load, so its data_dir is "
				"unknown and no server was asked; with --data DIR the server is "
				"asked anyway (it refuses the declaration and keeps serving)\n");
			return 2;
		}
	}
	const char *dir = data ? data : l.decl->data_dir;
	char sock[4200];
	sb_admin_socket_path(dir, sock, sizeof(sock));
	uint64_t pid = 0;
	/* the server says which process it is: a pid file can outlive its
	 * server, and its number can belong to another process by now */
	int status = 0;
	char *resp = NULL;
	if (sb_admin_call(sock, NULL, "GET", "/v1/status", NULL, &status, &resp, &d) == 0 &&
	    status == 200) {
		json_error_t je;
		json_t *j = json_loads(resp, 0, &je);
		json_t *jp = json_object_get(j, "pid");
		if (json_is_integer(jp) && json_integer_value(jp) > 1)
			pid = (uint64_t)json_integer_value(jp);
		json_decref(j);
	}
	free(resp);
	if (!data)
		sb_cli_unload(&l);
	if (!pid) {
		fprintf(stderr, "switchboard: no running server answers on %s\n", sock);
		return 1;
	}
	if (kill((pid_t)pid, SIGHUP) < 0) {
		fprintf(stderr, "switchboard: cannot signal the server (pid %llu): %s\n",
			(unsigned long long)pid, strerror(errno));
		return 1;
	}
	printf("switchboard: reload signalled to pid %llu\n", (unsigned long long)pid);
	return 0;
}

static const char usage_secret[] =
    "usage: switchboard secret -c PATH [--data DIR] DEPLOYMENT\n"
    "\n"
    "Print the signing secret(s) of a deployment as comma-separated hex, the form\n"
    "services read from SWITCHBOARD_SECRETS to verify X-Switchboard-Signature.\n"
    "Creates the data directory's master key when there is none yet.\n";

int sb_cli_secret(int argc, char **argv)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
						 {"data", required_argument, NULL, 'd'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	const char *config = ".", *data = NULL;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "c:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'd': data = optarg; break;
		case 'h': fputs(usage_secret, stdout); return 0;
		default: fputs(usage_secret, stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		fputs(usage_secret, stderr);
		return 2;
	}
	sb_loaded l;
	sb_diag d = {0};
	if (sb_cli_load(config, data, &l, &d) < 0) {
		sb_cli_print_diag(&d);
		return 2;
	}
	/* a name of the declaration (with the store's deploys), or a preview's
	 * by the rule (one may be asked for before the preview is created): a
	 * typo would otherwise print a secret no deployment is signed with */
	const char *name = argv[optind];
	bool known = sb_model_deployment(l.model, name) >= 0;
	for (size_t i = 0; !known && i < l.model->nservices; i++) {
		const char *sn = l.model->services[i].name;
		size_t sl = strlen(sn);
		uint32_t pr;
		known = strncmp(name, sn, sl) == 0 && strncmp(name + sl, "-preview-", 9) == 0 &&
			sb_model_pr_parse(name + sl + 9, strlen(name + sl + 9), &pr) == 0;
	}
	if (!known) {
		fprintf(stderr,
			"switchboard: no deployment named '%s' in %s (see switchboard routes; a "
			"preview's is <service>-preview-<pr>)\n",
			name, l.decl->file);
		sb_cli_unload(&l);
		return 1;
	}
	char out[256];
	int r =
	    sb_edge_deployment_secrets(data ? data : l.decl->data_dir, name, out, sizeof(out), &d);
	sb_cli_unload(&l);
	if (r < 0) {
		sb_cli_print_diag(&d);
		return 1;
	}
	printf("%s\n", out);
	return 0;
}
