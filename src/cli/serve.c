/* switchboard serve and switchboard reload. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
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
    "the declaration; SIGTERM (SIGINT, SIGQUIT) stops gracefully, a second one at\n"
    "once.\n"
    "  -c, --config PATH   switchboard.toml or a directory that holds one (default: .)\n"
    "  --data DIR          data directory (default: data_dir of the declaration)\n"
    "  --listen HOST:PORT  HTTP address (default: [listen] http); port 0 picks one;\n"
    "                      one address: [::]:PORT takes IPv4 and IPv6 both\n"
    "  --dns HOST:PORT     DNS address, UDP and TCP (default: [listen] dns, if set)\n"
    "  --threads N         serving threads (default: [http] threads, or one per core)\n"
    "Exit status: 0 stopped by a signal after draining; 1 it could not start (an\n"
    "address in use, another server on the data directory, ...); 2 usage error or\n"
    "a declaration that does not load.\n";

static const char usage_reload[] =
    "usage: switchboard reload -c PATH [--data DIR]\n"
    "\n"
    "Ask the running edge (through the admin socket in the data directory, or at\n"
    "$SWITCHBOARD_ADMIN_URL with the bearer token in $SWITCHBOARD_ADMIN_TOKEN) to\n"
    "re-read its declaration, as SIGHUP does, and report the outcome: exit 0 when\n"
    "it serves the new declaration, 1 when it refused it (it keeps serving the\n"
    "previous one; the error is printed) or no server runs. A declaration that\n"
    "fails to load here is reported and the server is not asked (its data_dir is\n"
    "in it): exit 2; with --data DIR, or SWITCHBOARD_ADMIN_URL, the server is\n"
    "asked anyway. Exit 2 too for a token the server does not take.\n";

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

static int parse(int argc, char **argv, struct sopts *o, const char *usage, bool serving)
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
		case 'l':
		case 'n':
			if (serving && (c == 'l' ? o->listen : o->dns)) {
				/* the last one would be taken, and the others left
				 * unserved without a word */
				char a[SB_CLI_SHOWN_SIZE], b[SB_CLI_SHOWN_SIZE];
				fprintf(
				    stderr,
				    "switchboard serve: --%s given twice (%s, then %s): the edge "
				    "listens on one %s address; \"[::]:PORT\" takes IPv4 and "
				    "IPv6 both\n",
				    c == 'l' ? "listen" : "dns",
				    sb_cli_shown(c == 'l' ? o->listen : o->dns, a, sizeof(a)),
				    sb_cli_shown(optarg, b, sizeof(b)), c == 'l' ? "HTTP" : "DNS");
				return 2;
			}
			*(c == 'l' ? &o->listen : &o->dns) = optarg;
			break;
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
		/* [listen]'s rule, checked here so that a bad value is a usage
		 * error naming the option, not a failed start blamed on
		 * switchboard.toml after the data directory was made */
		if (serving && (c == 'l' || c == 'n') && !sb_decl_listen_ok(optarg)) {
			char shown[SB_CLI_SHOWN_SIZE];
			fprintf(stderr,
				"switchboard serve: --%s %s: expected an IP address and port "
				"(\"127.0.0.1:8080\", \"[::1]:53\"; port 0 picks a free one)\n",
				c == 'l' ? "listen" : "dns",
				sb_cli_shown(optarg, shown, sizeof(shown)));
			return 2;
		}
		if (!serving && (c == 'l' || c == 'n' || c == 't')) {
			/* reload asks the running server, which keeps the addresses
			 * and threads it was started with: taken silently, they would
			 * look applied */
			fprintf(stderr,
				"switchboard reload: --%s is an option of serve: a running "
				"server keeps its addresses and threads until it is restarted\n%s",
				c == 'l'   ? "listen"
				: c == 'n' ? "dns"
					   : "threads",
				usage);
			return 2;
		}
	}
	if (optind < argc) {
		sb_cli_unexpected(serving ? "switchboard serve" : "switchboard reload",
				  argv[optind], usage);
		return 2;
	}
	return 0;
}

int sb_cli_serve(int argc, char **argv)
{
	sb_edge_signals(true); /* released by sb_edge_run once it handles them */
	struct sopts o;
	int r = parse(argc, argv, &o, usage_serve, true);
	if (r)
		return r == 1 ? 0 : r;
	char file[4096];
	sb_diag d = {0};
	if (sb_cli_decl_file(o.config, file, sizeof(file), &d) < 0) {
		sb_cli_print_diag(&d);
		return 2;
	}
	/* a declaration that does not load is exit 2, as for every command
	 * (check, routes, ...); the server reads it again itself */
	{
		sb_loaded l;
		if (sb_cli_load(file, o.data, &l, &d) < 0) {
			sb_cli_print_diag(&d);
			return 2;
		}
		sb_cli_unload(&l);
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
	int r = parse(argc, argv, &o, usage_reload, false);
	if (r)
		return r == 1 ? 0 : r;
	sb_loaded l;
	sb_diag d = {0};
	const char *data = o.data;
	/* as the changes do, through the TCP admin API when it is given (CI):
	 * the server re-reads its own declaration, so this one is not needed */
	const char *url = getenv("SWITCHBOARD_ADMIN_URL"), *token = NULL;
	if (url && *url)
		token = getenv("SWITCHBOARD_ADMIN_TOKEN");
	else
		url = NULL;
	if (!data && !url) {
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
	char sock[4200];
	if (url) {
		snprintf(sock, sizeof(sock), "%s", url);
	} else {
		sb_admin_socket_path(data ? data : l.decl->data_dir, sock, sizeof(sock));
		if (!data)
			sb_cli_unload(&l);
	}
	/* through the admin socket, not a signal to a pid: the server that owns
	 * the data directory answers (a pid file can outlive its server, and
	 * its number belong to another process by now), and says whether it
	 * took the declaration */
	int status = 0;
	char *resp = NULL;
	r = sb_admin_call(sock, token, "POST", "/v1/reload", NULL, &status, &resp, &d);
	if (r == SB_ENOENT) {
		fprintf(stderr, "switchboard: no running server answers on %s\n", sock);
		free(resp);
		return 1;
	}
	if (r < 0) {
		sb_cli_print_diag(&d);
		free(resp);
		/* a SWITCHBOARD_ADMIN_URL or token refused before anything was
		 * sent is a usage error; a server that cannot be reached, 1 */
		return r == SB_EINVAL ? 2 : 1;
	}
	json_error_t je;
	json_t *j = resp ? json_loads(resp, 0, &je) : NULL;
	int rc = 1;
	if (status == 200) {
		json_t *w;
		size_t i;
		json_array_foreach(json_object_get(j, "warnings"), i, w)
		    fprintf(stderr, "switchboard: warning: %s\n", json_string_value(w));
		printf("switchboard: reloaded %s: %lld routes (generation %lld)\n",
		       json_string_value(json_object_get(j, "declaration")),
		       (long long)json_integer_value(json_object_get(j, "routes")),
		       (long long)json_integer_value(json_object_get(j, "generation")));
		rc = 0;
	} else if (status == 401) {
		/* not a refused declaration: nothing was reloaded */
		const char *err = json_string_value(json_object_get(j, "error"));
		fprintf(stderr, "switchboard: %s: HTTP 401: %s\n", sock,
			err ? err : "unauthorized");
		if (!token || !*token)
			fprintf(stderr,
				"switchboard: SWITCHBOARD_ADMIN_TOKEN is not set: give it the "
				"contents of the server's <data_dir>/admin.token\n");
		rc = 2;
	} else {
		const char *err = json_string_value(json_object_get(j, "error"));
		fprintf(stderr,
			"switchboard: reload refused, the server still serves the previous "
			"declaration: %s\n",
			err ? err : (resp ? resp : "no answer"));
	}
	json_decref(j);
	free(resp);
	return rc;
}

static const char usage_secret[] =
    "usage: switchboard secret -c PATH [--data DIR] DEPLOYMENT\n"
    "\n"
    "Print the signing secret(s) of a deployment as comma-separated hex, the form\n"
    "services read from SWITCHBOARD_SECRETS to verify X-Switchboard-Signature.\n"
    "Creates the data directory's master key when there is none yet.\n"
    "  -c, --config PATH  switchboard.toml or a directory that holds one (default: .)\n"
    "  --data DIR         data directory (default: data_dir of the declaration)\n"
    "Exit status: 0 printed; 1 no such deployment, or the key cannot be read or\n"
    "created; 2 usage or load error, or output that could not be written.\n";

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
