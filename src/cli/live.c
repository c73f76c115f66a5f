/* switchboard deploy, delete, preview, versions, rollback: changes to the
 * deployed model (src/admin/ops.h). A change goes to the running server's
 * admin API, which applies it and answers once it is served; with no
 * server, the CLI applies it to the store itself and the next server start
 * serves it. */
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin/api.h"
#include "admin/ops.h"
#include "cli/cli.h"
#include "store/store.h"

static const char usage_deploy[] =
    "usage: switchboard deploy -c PATH [--env E [--pr N]] [--name NAME]\n"
    "                          [--var KEY:VALUE]... [--route PATTERN]... [--domain HOST]...\n"
    "                          [--upstream URL | -- COMMAND...] [--dry-run] [--json]\n"
    "\n"
    "Deploy a service's deployment with wrangler's flags, applied live:\n"
    "  --env E            production (default), staging, or preview (with --pr N)\n"
    "  --pr N             with --env preview: the preview of pull request N\n"
    "  --name NAME        the service (its wrangler name) or a deployment name;\n"
    "                     may be left out when the declaration has one service\n"
    "  --var KEY:VALUE    a var, on top of (or instead of) the declared ones\n"
    "  --route PATTERN    an extra route (Cloudflare syntax: host/path*)\n"
    "  --domain HOST      an extra custom domain (a whole host)\n"
    "  --upstream URL     where requests go, instead of the declared upstream\n"
    "  -- COMMAND...      or a command Switchboard starts (PORT in its environment)\n"
    "  --dry-run          check and print the result, change nothing\n"
    "Each deploy replaces the deployment's previous deploy. Refused when a route\n"
    "collides or the consistency check fails.\n";

static const char usage_delete[] =
    "usage: switchboard delete -c PATH NAME [--json]\n"
    "\n"
    "Remove one deployment: its routes stop being served and its hosts leave\n"
    "DNS. `switchboard deploy` brings it back.\n";

static const char usage_preview[] =
    "usage: switchboard preview create -c PATH --pr N [--ttl 7d] [--json]\n"
    "       switchboard preview delete -c PATH --pr N [--json]\n"
    "       switchboard preview list   -c PATH [--json]\n"
    "\n"
    "create makes every service's preview deployment for pull request N at once:\n"
    "hosts follow the naming rule ({label}-preview-{pr}), URL vars point at the\n"
    "same preview. Refused when the consistency check fails. Creating it again\n"
    "renews its ttl (a duration: 90s, 30m, 12h, 7d, 2w; default: no expiry).\n"
    "A preview past its ttl is deleted by the running server.\n";

static const char usage_versions[] =
    "usage: switchboard versions -c PATH [--limit N] [--json]\n"
    "\n"
    "Every change, newest first: number, time, what changed, and the command.\n"
    "  --limit N          the N newest only (default: all)\n";

static const char usage_rollback[] =
    "usage: switchboard rollback -c PATH [VERSION] [--json]\n"
    "\n"
    "Restore the deploys, previews and deletions (so the routes, DNS and vars)\n"
    "of VERSION as a new version; without VERSION, the one before the current\n"
    "state. Tenants are data, not deployments: a rollback leaves them alone.\n";

static const char usage_common[] =
    "options of every command:\n"
    "  -c, --config PATH  switchboard.toml or a directory that holds one (default: .)\n"
    "  --data DIR         data directory (default: data_dir of the declaration)\n"
    "  --json             print the result as JSON\n"
    "The server is reached on <data_dir>/admin.sock, or at $SWITCHBOARD_ADMIN_URL\n"
    "with the bearer token in $SWITCHBOARD_ADMIN_TOKEN.\n"
    "Exit status: 0 done; 1 refused (the message says why); 2 usage, load or store\n"
    "error.\n";

enum { O_DATA = 256, O_VAR, O_ROUTE, O_DOMAIN, O_UPSTREAM, O_DRY, O_PR, O_TTL, O_LIMIT, O_JSON };

struct lopts {
	const char *config, *data, *env, *name, *upstream, *ttl, *pr, *limit;
	bool dry_run, json, help;
	json_t *vars, *routes, *domains, *command;
	int nargs;
	char **args;
};

static void usage(const char *u, FILE *f)
{
	fputs(u, f);
	fputs("\n", f);
	fputs(usage_common, f);
}

/* Parse the options of a live command, refusing those that do not apply to
 * it (a --dry-run given to preview create would change things all the
 * same): allow is a space-separated list of option names ("command" for
 * "-- COMMAND..."); -c, --data, --json and --help go with every command. */
static int parse(int argc, char **argv, struct lopts *o, const char *u, const char *allow)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
						 {"data", required_argument, NULL, O_DATA},
						 {"env", required_argument, NULL, 'e'},
						 {"name", required_argument, NULL, 'n'},
						 {"var", required_argument, NULL, O_VAR},
						 {"route", required_argument, NULL, O_ROUTE},
						 {"domain", required_argument, NULL, O_DOMAIN},
						 {"upstream", required_argument, NULL, O_UPSTREAM},
						 {"dry-run", no_argument, NULL, O_DRY},
						 {"pr", required_argument, NULL, O_PR},
						 {"ttl", required_argument, NULL, O_TTL},
						 {"limit", required_argument, NULL, O_LIMIT},
						 {"json", no_argument, NULL, O_JSON},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	memset(o, 0, sizeof(*o));
	o->config = ".";
	o->vars = json_object();
	o->routes = json_array();
	o->domains = json_array();
	/* "--" ends the options: what follows is the upstream's command */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			if (!sb_cli_word_in(allow, "command")) {
				fprintf(stderr,
					"%s: a -- COMMAND does not apply to this command (see "
					"--help)\n",
					argv[0]);
				return 2;
			}
			o->command = json_array();
			for (int k = i + 1; k < argc; k++) {
				/* it goes into JSON, whose strings are UTF-8 */
				if (!sb_utf8_valid(argv[k], strlen(argv[k]))) {
					fprintf(stderr,
						"switchboard: the command's argument %d is not "
						"valid UTF-8\n",
						k - i);
					return 2;
				}
				json_array_append_new(
				    o->command, json_stringn_nocheck(argv[k], strlen(argv[k])));
			}
			argc = i;
			break;
		}
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "c:e:n:h", longopts, NULL)) != -1) {
		/* everything goes into JSON, whose strings are UTF-8: say which
		 * option, as a --var among several is otherwise hard to find */
		if (optarg && !sb_utf8_valid(optarg, strlen(optarg))) {
			const char *opt = "an option";
			for (size_t i = 0; longopts[i].name; i++)
				if (longopts[i].val == c)
					opt = longopts[i].name;
			fprintf(stderr, "%s: --%s: the value is not valid UTF-8\n", argv[0], opt);
			return 2;
		}
		static const struct {
			int c;
			const char *name;
		} names[] = {{'e', "env"},	 {'n', "name"},	       {O_VAR, "var"},
			     {O_ROUTE, "route"}, {O_DOMAIN, "domain"}, {O_UPSTREAM, "upstream"},
			     {O_DRY, "dry-run"}, {O_PR, "pr"},	       {O_TTL, "ttl"},
			     {O_LIMIT, "limit"}};
		for (size_t i = 0; i < SB_ARRAY_LEN(names); i++)
			if (names[i].c == c && !sb_cli_word_in(allow, names[i].name)) {
				fprintf(stderr,
					"%s: --%s does not apply to this command (see --help)\n",
					argv[0], names[i].name);
				return 2;
			}
		switch (c) {
		case 'c': o->config = optarg; break;
		case O_DATA: o->data = optarg; break;
		case 'e': o->env = optarg; break;
		case 'n': o->name = optarg; break;
		case O_VAR: {
			const char *colon = strchr(optarg, ':');
			if (!colon || colon == optarg) {
				fprintf(stderr, "switchboard: --var %s: expected KEY:VALUE\n",
					optarg);
				return 2;
			}
			char *key = sb_xstrndup(optarg, (size_t)(colon - optarg));
			json_object_set_new(o->vars, key, json_string(colon + 1));
			free(key);
			break;
		}
		case O_ROUTE: json_array_append_new(o->routes, json_string(optarg)); break;
		case O_DOMAIN: json_array_append_new(o->domains, json_string(optarg)); break;
		case O_UPSTREAM: o->upstream = optarg; break;
		case O_DRY: o->dry_run = true; break;
		case O_PR: o->pr = optarg; break;
		case O_TTL: o->ttl = optarg; break;
		case O_LIMIT: o->limit = optarg; break;
		case O_JSON: o->json = true; break;
		case 'h': o->help = true; return 0;
		default: usage(u, stderr); return 2;
		}
	}
	o->nargs = argc - optind;
	o->args = argv + optind;
	return 0;
}

static void lopts_free(struct lopts *o)
{
	json_decref(o->vars);
	json_decref(o->routes);
	json_decref(o->domains);
	json_decref(o->command);
}

static char *command_line; /* as typed: sb_cli_remember_command_line */

void sb_cli_remember_command_line(int argc, char **argv)
{
	/* before getopt permutes argv; each word quoted for a POSIX shell when
	 * it needs it, so that `versions` shows a command that runs again */
	sb_buf b;
	sb_buf_init(&b);
	sb_buf_adds(&b, "switchboard");
	for (int i = 1; i < argc; i++) {
		const char *w = argv[i];
		sb_buf_addc(&b, ' ');
		bool plain = *w != '\0';
		for (const char *p = w; *p && plain; p++)
			plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
				(*p >= '0' && *p <= '9') || strchr("-_./:=@,+%", *p);
		if (plain) {
			sb_buf_adds(&b, w);
			continue;
		}
		sb_buf_addc(&b, '\'');
		for (const char *p = w; *p; p++)
			if (*p == '\'')
				sb_buf_adds(&b, "'\\''");
			else
				sb_buf_addc(&b, *p);
		sb_buf_addc(&b, '\'');
	}
	free(command_line);
	command_line = sb_buf_steal(&b);
}

char *sb_cli_command_line(int argc, char **argv)
{
	if (command_line)
		return sb_xstrdup(command_line);
	sb_buf b;
	sb_buf_init(&b);
	sb_buf_adds(&b, "switchboard");
	for (int i = 0; i < argc; i++) {
		sb_buf_addc(&b, ' ');
		sb_buf_adds(&b, argv[i]);
	}
	return sb_buf_steal(&b);
}

/* Where the server's admin API is, and its token (NULL for the socket). */
static const char *admin_where(const char *data_dir, char *buf, size_t size, const char **token)
{
	const char *url = getenv("SWITCHBOARD_ADMIN_URL");
	*token = NULL;
	if (url && *url) {
		*token = getenv("SWITCHBOARD_ADMIN_TOKEN");
		return url;
	}
	sb_admin_socket_path(data_dir, buf, size);
	return buf;
}

/* A 401 for a request that carried no token: say where one comes from. */
static void token_hint(int status, const char *token)
{
	if (status == 401 && (!token || !*token))
		fprintf(stderr, "switchboard: SWITCHBOARD_ADMIN_TOKEN is not set: give it the "
				"contents of the server's <data_dir>/admin.token\n");
}

void sb_cli_notify(const char *data_dir)
{
	char sock[4200], *resp = NULL;
	const char *token;
	const char *where = admin_where(data_dir, sock, sizeof(sock), &token);
	int status = 0;
	sb_diag d = {0};
	int r = sb_admin_call(where, token, "POST", "/v1/sync", NULL, &status, &resp, &d);
	if (r == 0 && status != 200)
		fprintf(stderr, "switchboard: warning: the running server did not apply it: %s",
			resp ? resp : "\n");
	else if (r < 0 && r != SB_ENOENT)
		fprintf(stderr,
			"switchboard: warning: the running server was not told (%s); it picks "
			"the change up from the store within a second\n",
			d.msg);
	free(resp);
}

static void print_result(json_t *res, bool json)
{
	if (json) {
		char *s = json_dumps(res, JSON_INDENT(2));
		if (s)
			puts(s);
		free(s);
		return;
	}
	json_int_t v = json_integer_value(json_object_get(res, "version"));
	const char *summary = json_string_value(json_object_get(res, "summary"));
	if (json_is_true(json_object_get(res, "dry_run")))
		printf("dry run: %s (nothing changed)\n", summary);
	else if (v)
		printf("version %lld: %s\n", (long long)v, summary);
	else
		printf("%s\n", summary);
	json_t *deps = json_object_get(res, "deployments"), *dp;
	size_t i;
	json_array_foreach(deps, i, dp)
	{
		const char *up = json_string_value(json_object_get(dp, "upstream"));
		printf("  %s (%s)  upstream %s\n", json_string_value(json_object_get(dp, "name")),
		       json_string_value(json_object_get(dp, "environment")), up ? up : "-");
		json_t *routes = json_object_get(dp, "routes"), *rt;
		size_t k;
		json_array_foreach(routes, k, rt) printf("    route %s\n", json_string_value(rt));
		const char *key;
		json_t *val;
		json_object_foreach(json_object_get(dp, "vars"), key, val)
		    printf("    var   %s = %s\n", key, json_string_value(val));
	}
}

/* Without a server, what the server would check before publishing: every
 * deployment's upstream URL resolves (a committed one that does not would
 * stop the next `serve` from starting). */
static int cli_prepare(void *ctx, const sb_live *next, sb_diag *d)
{
	for (size_t i = 0; i < next->ndeploys; i++) {
		const char *url = next->deploys[i].upstream_url, *why;
		struct sockaddr_storage addr;
		size_t alen;
		if (url && sb_url_resolve(url, &addr, &alen, &why) < 0)
			return sb_diag_set(d, "", 0, 0, "deployment %s: upstream \"%s\": %s",
					   next->deploys[i].name, url, why);
	}
	return 0;
}

/* A dry run with no server and nothing stored yet runs on an empty store in
 * a directory of its own, removed afterwards: --dry-run changes nothing, so
 * it creates no data directory either. Returns the directory (in buf), or
 * dir itself when its store exists or the run is not dry. */
static const char *dry_run_dir(const char *dir, const json_t *op, char *buf, size_t size)
{
	char db[4200];
	struct stat st;
	snprintf(db, sizeof(db), "%s/switchboard.db", dir);
	if (!json_is_true(json_object_get(op, "dry_run")) || stat(db, &st) == 0)
		return dir;
	const char *tmp = getenv("TMPDIR");
	snprintf(buf, size, "%s/switchboard-dry-run.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	return mkdtemp(buf) ? buf : dir;
}

static void remove_dir(const char *dir)
{
	DIR *dh = opendir(dir);
	struct dirent *e;
	char path[4200 + 260];
	while (dh && (e = readdir(dh)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	if (dh)
		closedir(dh);
	rmdir(dir);
}

/* Run an op: through the server when one runs, else on the store. */
static int submit(const char *config, const char *data, json_t *op, bool json)
{
	int rc = 2, status = 0;
	sb_diag d = {0};
	sb_loaded l;
	sb_store *st = NULL;
	json_t *res = NULL;
	char *resp = NULL, sock[4200], dry_dir[4200] = "";
	if (sb_cli_load(config, data, &l, &d) < 0) {
		sb_cli_print_diag(&d);
		return 2;
	}
	const char *dir = data ? data : l.decl->data_dir;
	const char *token;
	const char *where = admin_where(dir, sock, sizeof(sock), &token);
	char *body = json_dumps(op, JSON_COMPACT);
	int r = sb_admin_call(where, token, "POST", "/v1/ops", body, &status, &resp, &d);
	free(body);
	if (r == 0) {
		json_error_t err;
		res = json_loads(resp, 0, &err);
		if (status != 200) {
			const char *msg = json_string_value(json_object_get(res, "error"));
			fprintf(stderr, "switchboard: %s\n", msg ? msg : resp);
			token_hint(status, token);
			/* a store the server could not write (500) is no refusal:
			 * 2, as when the CLI writes the store itself */
			rc = status == 401 || status >= 500 ? 2 : 1;
			goto out;
		}
	} else if (r == SB_ENOENT && where == sock) {
		/* no server: the store directly */
		memset(&d, 0, sizeof(d));
		char tmp[4200];
		const char *sdir = dry_run_dir(dir, op, tmp, sizeof(tmp));
		if (sdir == tmp)
			snprintf(dry_dir, sizeof(dry_dir), "%s", tmp);
		if (sb_store_open(sdir, &st, &d) < 0 ||
		    (r = sb_ops_run(st, l.decl, op, cli_prepare, NULL, &res, &d)) < 0) {
			sb_cli_print_diag(&d);
			rc = r == SB_EIO ? 2 : 1;
			goto out;
		}
	} else {
		sb_cli_print_diag(&d);
		goto out;
	}
	print_result(res, json);
	rc = 0;
out:
	json_decref(res);
	free(resp);
	sb_store_close(st);
	if (*dry_dir)
		remove_dir(dry_dir);
	sb_cli_unload(&l);
	return rc;
}

int sb_cli_deploy(int argc, char **argv)
{
	struct lopts o;
	int r = parse(argc, argv, &o, usage_deploy,
		      "env name var route domain upstream dry-run pr command");
	json_t *op = NULL;
	if (r || o.help) {
		if (o.help)
			usage(usage_deploy, stdout);
		goto out;
	}
	if (o.nargs) {
		sb_cli_unexpected("switchboard deploy", o.args[0], NULL);
		r = 2;
		goto out;
	}
	char *cmd = sb_cli_command_line(argc, argv);
	op = json_pack("{s:s,s:s,s:O,s:O,s:O,s:b}", "op", "deploy", "cmdline", cmd, "vars", o.vars,
		       "routes", o.routes, "domains", o.domains, "dry_run", o.dry_run);
	free(cmd);
	sb_env env_check;
	if (o.env && sb_env_parse(o.env, &env_check) < 0) {
		fprintf(stderr,
			"switchboard deploy: --env %s: expected production, staging or preview\n",
			o.env);
		r = 2;
		goto out;
	}
	if (o.env)
		json_object_set_new(op, "env", json_string(o.env));
	if (o.name)
		json_object_set_new(op, "name", json_string(o.name));
	if (o.pr) {
		uint32_t pr;
		if ((r = sb_cli_parse_pr(o.pr, &pr)))
			goto out;
		/* without --env preview the deploy would go to production */
		if (!o.env || strcmp(o.env, "preview") != 0) {
			fprintf(stderr, "switchboard deploy: --pr N goes with --env preview\n");
			r = 2;
			goto out;
		}
		json_object_set_new(op, "pr", json_integer(pr));
	} else if (o.env && strcmp(o.env, "preview") == 0) {
		fprintf(stderr, "switchboard deploy: --env preview needs --pr N (which preview)\n");
		r = 2;
		goto out;
	}
	if (o.upstream && o.command) {
		fprintf(stderr,
			"switchboard deploy: give --upstream URL or -- COMMAND, not both\n");
		r = 2;
		goto out;
	}
	if (o.upstream)
		json_object_set_new(op, "upstream", json_string(o.upstream));
	if (o.command)
		json_object_set(op, "command", o.command);
	r = submit(o.config, o.data, op, o.json);
out:
	json_decref(op);
	lopts_free(&o);
	return r;
}

int sb_cli_delete(int argc, char **argv)
{
	struct lopts o;
	int r = parse(argc, argv, &o, usage_delete, "");
	if (r || o.help) {
		if (o.help)
			usage(usage_delete, stdout);
		lopts_free(&o);
		return r;
	}
	if (o.nargs != 1) {
		fprintf(stderr, "switchboard delete: expected one deployment NAME\n");
		lopts_free(&o);
		return 2;
	}
	char *cmd = sb_cli_command_line(argc, argv);
	json_t *op = json_pack("{s:s,s:s,s:s}", "op", "delete", "cmdline", cmd, "name", o.args[0]);
	free(cmd);
	r = submit(o.config, o.data, op, o.json);
	json_decref(op);
	lopts_free(&o);
	return r;
}

/* ---- preview list ---------------------------------------------------------- */

/*
 * A listing the server answers (GET target), for a CLI that reaches it at
 * SWITCHBOARD_ADMIN_URL and cannot read its store. Returns the JSON array,
 * or NULL with the reason printed.
 */
static json_t *remote_list(const char *url, const char *token, const char *target)
{
	sb_diag d = {0};
	char *resp = NULL;
	int status = 0;
	json_t *arr = NULL;
	if (sb_admin_call(url, token, "GET", target, NULL, &status, &resp, &d) < 0) {
		sb_cli_print_diag(&d);
		return NULL;
	}
	json_t *j = json_loads(resp ? resp : "", 0, NULL);
	if (status == 200 && json_is_array(j)) {
		arr = j;
	} else {
		const char *msg = json_string_value(json_object_get(j, "error"));
		fprintf(stderr, "switchboard: %s: HTTP %d: %s\n", url, status,
			msg ? msg : (resp ? resp : ""));
		token_hint(status, token);
		json_decref(j);
	}
	free(resp);
	return arr;
}

/* A listing as --json prints it (true), or nothing when json is false. */
static bool print_json(json_t *arr, bool json)
{
	if (json) {
		char *s = json_dumps(arr, JSON_INDENT(2));
		puts(s ? s : "[]");
		free(s);
	}
	return json;
}

static void print_previews(json_t *arr, bool json)
{
	if (print_json(arr, json))
		return;
	printf("%-8s %-20s %-20s %s\n", "PR", "CREATED", "EXPIRES", "HOSTS");
	size_t i;
	json_t *p;
	json_array_foreach(arr, i, p)
	{
		char cb[32], eb[32] = "never";
		time_t ct = (time_t)json_integer_value(json_object_get(p, "created_at"));
		strftime(cb, sizeof(cb), "%Y-%m-%dT%H:%M:%SZ", gmtime(&ct));
		json_t *ex = json_object_get(p, "expires_at");
		if (json_is_integer(ex)) {
			time_t et = (time_t)json_integer_value(ex);
			strftime(eb, sizeof(eb), "%Y-%m-%dT%H:%M:%SZ", gmtime(&et));
		}
		printf("%-8lld %-20s %-20s",
		       (long long)json_integer_value(json_object_get(p, "pr")), cb, eb);
		size_t k;
		json_t *h;
		json_array_foreach(json_object_get(p, "hosts"), k, h)
		    printf(" %s", json_string_value(h));
		printf("\n");
	}
}

static int preview_list(const struct lopts *o)
{
	const char *url = getenv("SWITCHBOARD_ADMIN_URL");
	if (url && *url) {
		json_t *arr = remote_list(url, getenv("SWITCHBOARD_ADMIN_TOKEN"), "/v1/previews");
		if (!arr)
			return 2;
		print_previews(arr, o->json);
		json_decref(arr);
		return 0;
	}
	sb_diag d = {0};
	sb_loaded l;
	sb_store *st = NULL;
	sb_live live = {0};
	sb_model *m = NULL;
	int rc = 2;
	if (sb_cli_load(o->config, o->data, &l, &d) < 0) {
		sb_cli_print_diag(&d);
		return 2;
	}
	if (sb_cli_store_read(o->data ? o->data : l.decl->data_dir, o->data, &st, &d) < 0 ||
	    (st && sb_ops_current(st, &live, NULL, &d) < 0) ||
	    sb_model_build_live(l.decl, &live, &m, &d) < 0) {
		sb_cli_print_diag(&d);
		goto out;
	}
	json_t *arr = sb_ops_previews_json(&live, m);
	print_previews(arr, o->json);
	json_decref(arr);
	rc = 0;
out:
	sb_model_free(m);
	sb_live_clear(&live);
	sb_store_close(st);
	sb_cli_unload(&l);
	return rc;
}

int sb_cli_preview(int argc, char **argv)
{
	static const char *const subs[] = {"create", "delete", "list"};
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(usage_preview, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *sub = argv[1];
	/* the command before its options: "creat --pr 3" is a typo of create,
	 * not an option that does not apply */
	if (!sb_cli_word_in("create delete list", sub)) {
		sb_cli_unknown(argv[0], sub, subs, SB_ARRAY_LEN(subs));
		fputc('\n', stderr);
		usage(usage_preview, stderr);
		return 2;
	}
	char prog[64];
	snprintf(prog, sizeof(prog), "switchboard preview %s", sub);
	argv[1] = prog; /* getopt's messages name it */
	struct lopts o;
	int r = parse(argc - 1, argv + 1, &o, usage_preview,
		      strcmp(sub, "create") == 0   ? "pr ttl"
		      : strcmp(sub, "delete") == 0 ? "pr"
						   : "");
	json_t *op = NULL;
	uint32_t pr = 0;
	if (r || o.help) {
		if (o.help)
			usage(usage_preview, stdout);
		goto out;
	}
	if (o.nargs) {
		sb_cli_unexpected(prog, o.args[0], NULL);
		r = 2;
		goto out;
	}
	if (strcmp(sub, "list") == 0) {
		r = preview_list(&o);
		goto out;
	}
	if (!o.pr) {
		fprintf(stderr, "%s: --pr N is required (the pull request)\n", prog);
		r = 2;
		goto out;
	}
	if ((r = sb_cli_parse_pr(o.pr, &pr)))
		goto out;
	char *cmd = sb_cli_command_line(argc, argv);
	op = json_pack("{s:s,s:s,s:I}", "op",
		       strcmp(sub, "create") == 0 ? "preview-create" : "preview-delete", "cmdline",
		       cmd, "pr", (json_int_t)pr);
	free(cmd);
	if (o.ttl) {
		int64_t secs;
		if (sb_ops_parse_duration(o.ttl, &secs) < 0) {
			char shown[96];
			/* parse() lets --ttl through for create only */
			fprintf(stderr,
				"%s: --ttl %s: expected a duration such as 7d, 12h, 30m, 90s "
				"or 2w (the unit is required), from 0s (no expiry) to %llds "
				"(%lldd, about 100 years)\n",
				prog, sb_cli_shown(o.ttl, shown, sizeof(shown)),
				(long long)SB_OPS_TTL_MAX, (long long)(SB_OPS_TTL_MAX / 86400));
			r = 2;
			goto out;
		}
		json_object_set_new(op, "ttl", json_integer(secs));
	}
	r = submit(o.config, o.data, op, o.json);
out:
	json_decref(op);
	lopts_free(&o);
	return r;
}

/* ---- versions, rollback ------------------------------------------------------ */

static void print_versions(json_t *arr, bool json)
{
	if (print_json(arr, json))
		return;
	/* the CHANGE column as wide as its longest summary, so COMMAND lines up */
	size_t i, w = strlen("CHANGE");
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		const char *sm = json_string_value(json_object_get(v, "summary"));
		size_t sl = sm ? strlen(sm) : 0;
		if (sl > w)
			w = sl;
	}
	printf("%-8s %-20s %-*s %s\n", "VERSION", "TIME", (int)w, "CHANGE", "COMMAND");
	json_array_foreach(arr, i, v)
	{
		char tb[32];
		time_t t = (time_t)json_integer_value(json_object_get(v, "created_at"));
		strftime(tb, sizeof(tb), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
		const char *sm = json_string_value(json_object_get(v, "summary"));
		const char *cmd = json_string_value(json_object_get(v, "command"));
		printf("%-8lld %-20s %-*s %s\n",
		       (long long)json_integer_value(json_object_get(v, "version")), tb, (int)w,
		       sm ? sm : "", cmd ? cmd : "");
	}
}

int sb_cli_versions(int argc, char **argv)
{
	struct lopts o;
	int r = parse(argc, argv, &o, usage_versions, "limit");
	sb_loaded l = {0};
	sb_store *st = NULL;
	sb_diag d = {0};
	json_t *arr = NULL;
	uint64_t limit = 0;
	if (r || o.help) {
		if (o.help)
			usage(usage_versions, stdout);
		goto out;
	}
	if (o.nargs) {
		sb_cli_unexpected("switchboard versions", o.args[0], NULL);
		r = 2;
		goto out;
	}
	if (o.limit && (sb_parse_u64(o.limit, strlen(o.limit), INT32_MAX, &limit) < 0 || !limit)) {
		char shown[SB_CLI_SHOWN_SIZE];
		fprintf(stderr,
			"switchboard versions: --limit %s: expected a number of 1 or more\n",
			sb_cli_shown(o.limit, shown, sizeof(shown)));
		r = 2;
		goto out;
	}
	r = 2;
	const char *url = getenv("SWITCHBOARD_ADMIN_URL");
	if (url && *url) {
		char target[64];
		snprintf(target, sizeof(target), "/v1/versions?limit=%llu",
			 (unsigned long long)limit);
		if (!(arr = remote_list(url, getenv("SWITCHBOARD_ADMIN_TOKEN"), target)))
			goto out;
	} else {
		if (sb_cli_load(o.config, o.data, &l, &d) < 0) {
			sb_cli_print_diag(&d);
			goto out;
		}
		if (sb_cli_store_read(o.data ? o.data : l.decl->data_dir, o.data, &st, &d) < 0 ||
		    !(arr = sb_ops_versions_json(st, (int64_t)limit, &d))) {
			sb_cli_print_diag(&d);
			goto out;
		}
	}
	print_versions(arr, o.json);
	r = 0;
out:
	json_decref(arr);
	sb_store_close(st);
	sb_cli_unload(&l);
	lopts_free(&o);
	return r;
}

int sb_cli_rollback(int argc, char **argv)
{
	struct lopts o;
	int r = parse(argc, argv, &o, usage_rollback, "");
	json_t *op = NULL;
	uint64_t v = 0;
	if (r || o.help) {
		if (o.help)
			usage(usage_rollback, stdout);
		goto out;
	}
	if (o.nargs > 1) {
		fprintf(stderr, "switchboard rollback: expected at most one VERSION number\n");
		r = 2;
		goto out;
	}
	/* 0 in the op means "the one before": a VERSION given is 1 or more */
	if (o.nargs == 1 &&
	    (sb_parse_u64(o.args[0], strlen(o.args[0]), INT64_MAX, &v) < 0 || v == 0)) {
		char shown[SB_CLI_SHOWN_SIZE];
		fprintf(stderr,
			"switchboard rollback: \"%s\" is not a version number (see `switchboard "
			"versions`)\n",
			sb_cli_shown(o.args[0], shown, sizeof(shown)));
		r = 2;
		goto out;
	}
	char *cmd = sb_cli_command_line(argc, argv);
	op = json_pack("{s:s,s:s,s:I}", "op", "rollback", "cmdline", cmd, "version", (json_int_t)v);
	free(cmd);
	r = submit(o.config, o.data, op, o.json);
out:
	json_decref(op);
	lopts_free(&o);
	return r;
}
