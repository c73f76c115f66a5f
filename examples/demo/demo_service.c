/*
 * demo-service: flags, the listener, signals and the --sign-* modes.
 *
 * The listener prints "listening on HOST:PORT" (the address actually bound,
 * so --listen 127.0.0.1:0 tells the tests which port to use) and flushes it
 * before the loop starts. SIGINT/SIGTERM close every handle so the loop ends
 * and the process exits 0.
 */
#include "demo.h"

#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

struct demo_config demo_cfg;

static uv_tcp_t listener;
static uv_signal_t sigint, sigterm;

static const char usage[] =
    "usage: demo-service [--name NAME] [--listen HOST:PORT] [--env ENVIRONMENT]\n"
    "                    [--secret HEX]... [--tolerance SECONDS] [--unhealthy-file PATH]\n"
    "       demo-service --sign-example   print the docs/signing.md example, signed\n"
    "       demo-service --sign-request   sign the JSON request read from stdin\n"
    "Defaults: --listen 127.0.0.1:$PORT (8787 without PORT), --env $ENVIRONMENT or\n"
    "production, secrets also from SWITCHBOARD_SECRETS (comma-separated hex).\n";

/* ---- flags ------------------------------------------------------------------ */

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "demo-service: %s%s%s\n", what, arg ? ": " : "", arg ? arg : "");
	exit(2);
}

static void add_secret(const char *hex, size_t n)
{
	uint8_t *s = sb_xmalloc(n / 2 + 1);
	if (n == 0 || sb_sign_unhex(hex, n, s, n / 2) < 0) {
		free(s);
		char *copy = sb_xstrndup(hex, n);
		fprintf(stderr, "demo-service: secret is not hex: %s\n", copy);
		free(copy);
		exit(2);
	}
	demo_cfg.keys = sb_xrealloc(demo_cfg.keys, (demo_cfg.nkeys + 1) * sizeof(sb_sign_key));
	demo_cfg.keys[demo_cfg.nkeys++] = (sb_sign_key){s, n / 2};
}

static void add_env_secrets(const char *list)
{
	while (list && *list) {
		const char *comma = strchr(list, ',');
		const char *a = list, *b = comma ? comma : list + strlen(list);
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (b > a)
			add_secret(a, (size_t)(b - a));
		list = comma ? comma + 1 : NULL;
	}
}

static void free_secrets(void)
{
	for (size_t i = 0; i < demo_cfg.nkeys; i++)
		free((void *)demo_cfg.keys[i].secret);
	free(demo_cfg.keys);
	demo_cfg.keys = NULL;
	demo_cfg.nkeys = 0;
}

/* "--flag VALUE" or "--flag=VALUE": the value, or NULL if argv[*i] is not flag. */
static const char *flag_value(int argc, char **argv, int *i, const char *flag)
{
	size_t n = strlen(flag);
	if (strncmp(argv[*i], flag, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0')
		return NULL;
	if (*i + 1 >= argc)
		die("missing value for", flag);
	return argv[++*i];
}

/* HOST:PORT, [V6]:PORT or :PORT into a socket address. */
static void parse_listen(const char *spec, struct sockaddr_storage *ss)
{
	const char *colon = strrchr(spec, ':');
	uint64_t port;
	if (!colon || sb_parse_u64(colon + 1, strlen(colon + 1), 65535, &port) < 0)
		die("--listen wants HOST:PORT", spec);
	const char *h = spec;
	size_t hlen = (size_t)(colon - spec);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	char *host = hlen ? sb_xstrndup(h, hlen) : sb_xstrdup("0.0.0.0");
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
	int rc = getaddrinfo(host, NULL, &hints, &ai);
	free(host);
	if (rc != 0 || !ai)
		die("cannot resolve --listen host", spec);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

/* ---- signing modes -------------------------------------------------------------- */

/* The worked example of docs/signing.md. */
static const char *const ex_headers[][2] = {
    {"x-request-id", "req-7f3a9c"},
    {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    {"x-forwarded-for", "203.0.113.7"},
    {"x-forwarded-proto", "https"},
    {"x-forwarded-host", "acme.revelations.studio"},
    {"x-tenant-slug", "acme"},
    {"x-switchboard-environment", "production"},
    {"x-switchboard-deployment", "codex-web-production"},
};

static json_t *example_request(void)
{
	uint8_t cur[SB_SIGN_MAC_LEN], old[SB_SIGN_MAC_LEN];
	char hex[2][SB_SIGN_HEX_LEN + 1];
	sb_sign_derive_secret((const uint8_t *)"example-master-key", 18, "codex-web-production",
			      cur);
	sb_sign_derive_secret((const uint8_t *)"example-previous-master-key", 27,
			      "codex-web-production", old);
	sb_sign_hex(cur, sizeof(cur), hex[0], sizeof(hex[0]));
	sb_sign_hex(old, sizeof(old), hex[1], sizeof(hex[1]));
	json_t *hdrs = json_object();
	for (size_t i = 0; i < SB_ARRAY_LEN(ex_headers); i++)
		json_object_set_new(hdrs, ex_headers[i][0], json_string(ex_headers[i][1]));
	return json_pack("{s:[s,s],s:I,s:s,s:s,s:s,s:s,s:o}", "secrets", hex[0], hex[1], "t",
			 (json_int_t)1700000000, "method", "POST", "host",
			 "Acme.Revelations.Studio:8443", "path", "/api/projects/42", "query",
			 "include=owner&page=2", "headers", hdrs);
}

static sb_sign_str jspan(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_string(v))
		return (sb_sign_str){NULL, 0};
	return (sb_sign_str){json_string_value(v), json_string_length(v)};
}

/*
 * Sign a request given as JSON {secrets:[hex], t, method, host, path, query,
 * headers:{name: value}}; print it back with "canonical" and "header" added.
 */
static int sign_json(json_t *req)
{
	sb_sign_fields f;
	json_t *secrets = json_object_get(req, "secrets"), *hdrs = json_object_get(req, "headers");
	json_t *t = json_object_get(req, "t");
	size_t i;
	json_t *v;
	const char *name;
	int rc = 2;

	if (!json_is_array(secrets) || !json_is_integer(t)) {
		fprintf(stderr,
			"demo-service: want {\"secrets\": [hex, ...], \"t\": seconds, ...}\n");
		goto out;
	}
	json_array_foreach(secrets, i, v)
	{
		if (!json_is_string(v))
			die("a secret is not a string", NULL);
		add_secret(json_string_value(v), json_string_length(v));
	}
	memset(&f, 0, sizeof(f));
	f.method = jspan(req, "method");
	f.host = jspan(req, "host");
	f.path = jspan(req, "path");
	f.query = jspan(req, "query");
	json_object_foreach(hdrs, name, v)
	{
		if (json_is_string(v))
			sb_sign_fields_set_header(&f, name, strlen(name), json_string_value(v),
						  json_string_length(v));
	}
	int64_t ts = (int64_t)json_integer_value(t);
	char canon[65536], header[SB_SIGN_HEADER_MAX(64)];
	int n = sb_sign_canonical(&f, ts, canon, sizeof(canon));
	int h = n < 0
		    ? n
		    : sb_sign_header(&f, ts, demo_cfg.keys, demo_cfg.nkeys, header, sizeof(header));
	if (h < 0) {
		fprintf(stderr, "demo-service: cannot sign: %s\n", sb_strerror(h));
		goto out;
	}
	json_object_set_new(req, "canonical", json_stringn(canon, (size_t)n));
	json_object_set_new(req, "header", json_stringn(header, (size_t)h));
	char *s = json_dumps(req, JSON_INDENT(2));
	if (!s)
		sb_oom();
	puts(s);
	free(s);
	rc = 0;
out:
	free_secrets();
	json_decref(req);
	return rc;
}

static int sign_stdin(void)
{
	json_error_t err;
	json_t *req = json_loadf(stdin, 0, &err);
	if (!req || !json_is_object(req)) {
		fprintf(stderr, "demo-service: stdin:%d:%d: %s\n", err.line, err.column, err.text);
		json_decref(req);
		return 2;
	}
	return sign_json(req);
}

/* ---- serving ------------------------------------------------------------------------ */

static void on_connection(uv_stream_t *server, int status)
{
	if (status < 0) {
		fprintf(stderr, "demo-service: accept: %s\n", uv_strerror(status));
		return;
	}
	demo_conn_accept(server);
}

static void on_signal(uv_signal_t *s, int signum)
{
	uv_close((uv_handle_t *)&listener, NULL);
	uv_close((uv_handle_t *)&sigint, NULL);
	uv_close((uv_handle_t *)&sigterm, NULL);
	demo_conn_close_all();
}

static int serve(const char *listen_spec)
{
	struct sockaddr_storage ss;
	char host[INET6_ADDRSTRLEN];
	int len = sizeof(ss), rc;
	uv_loop_t *loop = uv_default_loop();

	parse_listen(listen_spec, &ss);
	uv_tcp_init(loop, &listener);
	if ((rc = uv_tcp_bind(&listener, (struct sockaddr *)&ss, 0)) < 0 ||
	    (rc = uv_listen((uv_stream_t *)&listener, 511, on_connection)) < 0 ||
	    (rc = uv_tcp_getsockname(&listener, (struct sockaddr *)&ss, &len)) < 0) {
		fprintf(stderr, "demo-service: cannot listen on %s: %s\n", listen_spec,
			uv_strerror(rc));
		return 1;
	}
	int port;
	if (ss.ss_family == AF_INET6) {
		uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		printf("listening on [%s]:%d\n", host, port);
	} else {
		uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		printf("listening on %s:%d\n", host, port);
	}
	fflush(stdout);

	uv_signal_init(loop, &sigint);
	uv_signal_init(loop, &sigterm);
	uv_signal_start(&sigint, on_signal, SIGINT);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return 0;
}

int main(int argc, char **argv)
{
	char listen_buf[64];
	const char *listen_spec = NULL, *v, *tol = NULL;
	const char *port = getenv("PORT"), *env = getenv("ENVIRONMENT");
	enum { SERVE, SIGN_EXAMPLE, SIGN_REQUEST } mode = SERVE;
	int rc;

	demo_cfg.name = "demo-service";
	demo_cfg.env = env && *env ? env : "production";
	demo_cfg.tolerance_s = 300;
	for (int i = 1; i < argc; i++) {
		if ((v = flag_value(argc, argv, &i, "--name")))
			demo_cfg.name = v;
		else if ((v = flag_value(argc, argv, &i, "--listen")))
			listen_spec = v;
		else if ((v = flag_value(argc, argv, &i, "--env")))
			demo_cfg.env = v;
		else if ((v = flag_value(argc, argv, &i, "--secret")))
			add_secret(v, strlen(v));
		else if ((v = flag_value(argc, argv, &i, "--tolerance")))
			tol = v;
		else if ((v = flag_value(argc, argv, &i, "--unhealthy-file")))
			demo_cfg.unhealthy_file = v;
		else if (strcmp(argv[i], "--sign-example") == 0)
			mode = SIGN_EXAMPLE;
		else if (strcmp(argv[i], "--sign-request") == 0)
			mode = SIGN_REQUEST;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		} else {
			fputs(usage, stderr);
			die("unknown argument", argv[i]);
		}
	}
	if (mode == SIGN_EXAMPLE) {
		free_secrets();
		return sign_json(example_request());
	}
	if (mode == SIGN_REQUEST) {
		free_secrets();
		return sign_stdin();
	}
	add_env_secrets(getenv("SWITCHBOARD_SECRETS"));
	if (tol) {
		uint64_t t;
		if (sb_parse_u64(tol, strlen(tol), INT32_MAX, &t) < 0)
			die("--tolerance wants seconds", tol);
		demo_cfg.tolerance_s = (int64_t)t;
	}
	if (!listen_spec) {
		uint64_t p = 8787;
		if (port && *port && sb_parse_u64(port, strlen(port), 65535, &p) < 0)
			die("PORT is not a port number", port);
		snprintf(listen_buf, sizeof(listen_buf), "127.0.0.1:%u", (unsigned)p);
		listen_spec = listen_buf;
	}
	signal(SIGPIPE, SIG_IGN);
	rc = serve(listen_spec);
	free_secrets();
	return rc;
}
