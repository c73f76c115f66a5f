/* The admin API's HTTP layer (see api.h): a small server on the control
 * loop, one request per connection, and a blocking client for the CLI. */
#include "admin/api.h"

#include "common/accept.h"

#include <errno.h>
#include <fcntl.h>
#include <llhttp.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define HEAD_MAX 16384
#define CONN_MAX 64	      /* open connections per listener; more are refused at once */
#define CONN_TIMEOUT_MS 30000 /* a request must arrive whole within this */
#define HEAD_TIMEOUT_MS 5000  /* over TCP, the head (and its token) within this */
#define LINGER_MS 2000	      /* after an answer, what the client still sends is read and dropped */

struct sb_admin {
	uv_loop_t *loop;
	sb_accept_guard pipe; /* the listeners (pipe.l.pipe, tcp.l.tcp), paused when */
	sb_accept_guard tcp;  /* accepting fails (the open-file limit) */
	bool has_pipe, has_tcp, stopping;
	bool owns_sock; /* the socket file is ours: removed at stop */
	int lock_fd;	/* <sock>.lock, flock'ed for the server's life (-1: none) */
	int handles;
	char sock[108];
	char token[SB_ADMIN_TOKEN_LEN + 1];
	sb_admin_handler handler;
	void *ctx;
	struct aconn *conns;
	int nconns;
	int nconns_tcp; /* of which over TCP: their own budget, so that clients
			   without a token never crowd out the local socket */
};

typedef struct aconn {
	union {
		uv_stream_t s;
		uv_pipe_t pipe;
		uv_tcp_t tcp;
	} h;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	uv_timer_t timer; /* the whole request must arrive in CONN_TIMEOUT_MS */
	sb_admin *a;
	struct aconn *next, **prevp;
	bool tcp, done, auth_ok, in_value, too_big, head_too_big;
	size_t head_size; /* target, names and values so far (HEAD_MAX) */
	int handles;	  /* the stream and the timer, until both are closed */
	llhttp_t parser;
	llhttp_settings_t settings;
	sb_buf url, body, field, value, out;
	size_t head_bytes;
} aconn;

void sb_admin_socket_path(const char *data_dir, char *buf, size_t size)
{
	snprintf(buf, size, "%s/admin.sock", data_dir);
}

/* A token file holds exactly the token, in hex, perhaps with a line end
 * (written by hand or by a secrets tool). Anything else is refused at start:
 * a token read in part, or with a space in it, would never match what a
 * client sends, and every request over TCP would be a 401 with no hint. */
static bool token_ok(const char *buf, ssize_t n)
{
	if (n == SB_ADMIN_TOKEN_LEN + 2 && buf[SB_ADMIN_TOKEN_LEN] == '\r' &&
	    buf[SB_ADMIN_TOKEN_LEN + 1] == '\n')
		n -= 2;
	else if (n == SB_ADMIN_TOKEN_LEN + 1 && buf[SB_ADMIN_TOKEN_LEN] == '\n')
		n--;
	if (n != SB_ADMIN_TOKEN_LEN)
		return false;
	for (ssize_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF", buf[i]) || buf[i] == '\0')
			return false;
	return true;
}

int sb_admin_token(const char *data_dir, bool create, char *tok, sb_diag *d)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/admin.token", data_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		char buf[SB_ADMIN_TOKEN_LEN + 3];
		ssize_t n = 0, k;
		while (n < (ssize_t)sizeof(buf) &&
		       (k = read(fd, buf + n, sizeof(buf) - (size_t)n)) > 0)
			n += k;
		close(fd);
		if (!token_ok(buf, n))
			return sb_diag_setc(d, SB_EIO, path, 0, 0,
					    "expected %d hex characters and nothing else (delete "
					    "it to get a new one)",
					    SB_ADMIN_TOKEN_LEN);
		memcpy(tok, buf, SB_ADMIN_TOKEN_LEN);
		tok[SB_ADMIN_TOKEN_LEN] = '\0';
		return 0;
	}
	if (errno != ENOENT)
		return sb_diag_setc(d, SB_EIO, path, 0, 0, "cannot read: %s", strerror(errno));
	if (!create)
		return sb_diag_setc(d, SB_ENOENT, path, 0, 0, "no admin token");
	uint8_t raw[SB_ADMIN_TOKEN_LEN / 2];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return sb_diag_setc(d, SB_EIO, path, 0, 0, "getrandom failed");
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < sizeof(raw); i++) {
		tok[2 * i] = hex[raw[i] >> 4];
		tok[2 * i + 1] = hex[raw[i] & 15];
	}
	tok[SB_ADMIN_TOKEN_LEN] = '\0';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, tok, SB_ADMIN_TOKEN_LEN) != SB_ADMIN_TOKEN_LEN) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return sb_diag_setc(d, SB_EIO, path, 0, 0, "cannot write: %s", strerror(e));
	}
	close(fd);
	return 0;
}

/* ---- server ---------------------------------------------------------------- */

static void admin_handle_closed(uv_handle_t *h)
{
	sb_admin *a = h->data;
	if (--a->handles == 0 && a->stopping)
		free(a);
}

static void conn_closed(uv_handle_t *h)
{
	aconn *c = h->data;
	sb_admin *a = c->a;
	if (--c->handles > 0)
		return;
	a->nconns--;
	if (c->tcp)
		a->nconns_tcp--;
	sb_buf_free(&c->url);
	sb_buf_free(&c->body);
	sb_buf_free(&c->field);
	sb_buf_free(&c->value);
	sb_buf_free(&c->out);
	free(c);
	admin_handle_closed(&a->pipe.l.handle);
}

static void conn_close(aconn *c)
{
	if (uv_is_closing((uv_handle_t *)&c->h.s))
		return;
	*c->prevp = c->next;
	if (c->next)
		c->next->prevp = c->prevp;
	uv_close((uv_handle_t *)&c->h.s, conn_closed);
	uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void conn_timeout(uv_timer_t *t)
{
	conn_close(t->data);
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);

/* The answer is out and our side of the stream shut: what the client still
 * sends (the rest of a body refused at its head) is read and dropped until
 * it closes, for at most LINGER_MS. Closing at once with bytes unread would
 * make the kernel reset the connection, and a client still sending would
 * see the reset instead of the answer. conn_read drops what comes and
 * closes at the end of the stream. */
static void shut_down(uv_shutdown_t *req, int status)
{
	aconn *c = req->data;
	if (status < 0 || uv_is_closing((uv_handle_t *)&c->h.s) ||
	    uv_read_start(&c->h.s, conn_alloc, conn_read) < 0) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, conn_timeout, LINGER_MS, 0);
}

static void written(uv_write_t *w, int status)
{
	aconn *c = w->data;
	c->sreq.data = c;
	if (status < 0 || uv_is_closing((uv_handle_t *)&c->h.s) ||
	    uv_shutdown(&c->sreq, &c->h.s, shut_down) < 0)
		conn_close(c);
}

static void respond_headers(aconn *c, int status, const char *extra, const char *body, size_t len)
{
	static const char *const reasons[] = {[200] = "OK",
					      [400] = "Bad Request",
					      [401] = "Unauthorized",
					      [404] = "Not Found",
					      [405] = "Method Not Allowed",
					      [409] = "Conflict",
					      [413] = "Payload Too Large",
					      [431] = "Request Header Fields Too Large",
					      [422] = "Unprocessable Entity",
					      [500] = "Internal Server Error",
					      [503] = "Service Unavailable"};
	const char *reason = status > 0 && status < (int)SB_ARRAY_LEN(reasons) && reasons[status]
				 ? reasons[status]
				 : "Status";
	sb_buf_reset(&c->out);
	sb_buf_addf(&c->out,
		    "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		    "%sConnection: close\r\n\r\n",
		    status, reason, len, extra ? extra : "");
	/* the answer to a HEAD has a head only (RFC 9110, 9.3.2) */
	if (c->parser.method != HTTP_HEAD)
		sb_buf_add(&c->out, body, len);
	c->done = true;
	uv_read_stop(&c->h.s);
	uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
	c->wreq.data = c;
	if (uv_write(&c->wreq, &c->h.s, &b, 1, written) < 0)
		conn_close(c);
}

static void respond(aconn *c, int status, const char *body, size_t len)
{
	respond_headers(c, status, NULL, body, len);
}

/* An error of the HTTP layer, in the handler's form: {"error", "code"}
 * (code as sb_strerror names it). msg is ours, never the client's bytes. */
static void respond_error_h(aconn *c, int status, int code, const char *extra, const char *msg)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "{\"error\":\"%s\",\"code\":\"%s\"}\n", msg,
			 sb_strerror(code));
	respond_headers(c, status, extra, buf,
			(size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void respond_error(aconn *c, int status, int code, const char *msg)
{
	respond_error_h(c, status, code, NULL, msg);
}

/* The head is held in memory until it is complete: at most HEAD_MAX, even
 * before the token is checked. */
static int head_room(aconn *c, size_t n)
{
	if ((c->head_size += n) <= HEAD_MAX)
		return 0;
	c->head_too_big = true;
	return -1;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
	aconn *c = p->data;
	if (head_room(c, n) < 0)
		return -1;
	sb_buf_add(&c->url, at, n);
	return 0;
}

/* Whether a header's name is name (case-insensitive). */
static bool field_is(const aconn *c, const char *name)
{
	size_t n = strlen(name);
	return c->field.len == n && strncasecmp(c->field.data, name, n) == 0;
}

/* "Authorization: Bearer <token>": the scheme in any case (RFC 9110,
 * 11.1), spaces after it and after the token allowed; the token itself
 * compared in constant time. */
static bool bearer_ok(const aconn *c)
{
	const char *v = c->value.data;
	size_t n = c->value.len;
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (!c->a || n < 7 || strncasecmp(v, "Bearer ", 7) != 0)
		return false;
	size_t i = 7;
	while (i < n && v[i] == ' ')
		i++;
	return n - i == SB_ADMIN_TOKEN_LEN &&
	       CRYPTO_memcmp(v + i, c->a->token, SB_ADMIN_TOKEN_LEN) == 0;
}

static void header_done(aconn *c)
{
	if (field_is(c, "authorization") && bearer_ok(c))
		c->auth_ok = true;
	sb_buf_reset(&c->field);
	sb_buf_reset(&c->value);
}

static int on_field(llhttp_t *p, const char *at, size_t n)
{
	aconn *c = p->data;
	if (head_room(c, n) < 0)
		return -1;
	if (c->in_value)
		header_done(c);
	c->in_value = false;
	sb_buf_add(&c->field, at, n);
	return 0;
}

static int on_value(llhttp_t *p, const char *at, size_t n)
{
	aconn *c = p->data;
	if (head_room(c, n) < 0)
		return -1;
	c->in_value = true;
	sb_buf_add(&c->value, at, n);
	return 0;
}

/* The endpoints and their methods (docs/admin.md), so that a known path
 * asked with another method is a 405 that says which one it takes. The
 * handler serves them; a path not listed here goes to the handler, which
 * answers 404 for what it does not know. */
typedef struct endpoint {
	const char *path, *allow;
	const char *param; /* the one query parameter it takes, or NULL */
} endpoint;

static const endpoint endpoints[] = {
    {"/v1/status", "GET", NULL},  {"/v1/ops", "POST", NULL},	    {"/v1/sync", "POST", NULL},
    {"/v1/reload", "POST", NULL}, {"/v1/versions", "GET", "limit"}, {"/v1/previews", "GET", NULL}};

static const endpoint *endpoint_of(const sb_buf *url)
{
	size_t n = strcspn(url->data, "?");
	for (size_t i = 0; i < SB_ARRAY_LEN(endpoints); i++)
		if (strlen(endpoints[i].path) == n && memcmp(url->data, endpoints[i].path, n) == 0)
			return &endpoints[i];
	return NULL;
}

/* A client's bytes quoted in an error of ours: at most 64 of them, and
 * only printable ASCII that needs no escape in a JSON string. */
static void quote_safe(char *dst, size_t size, const char *src, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k + 1 < size && i < 64; i++)
		dst[k++] =
		    src[i] > ' ' && src[i] < 0x7f && src[i] != '"' && src[i] != '\\' ? src[i] : '?';
	dst[k] = '\0';
}

/*
 * The query of a known endpoint, split at '&' into name=value parameters
 * (empty parts skipped): a name the endpoint does not take, or one given
 * twice, is refused by name, never ignored (a misspelt "limt" would list
 * everything). The handler then gets the path alone, or with the one
 * parameter as "?name=value". Returns false when it answered.
 */
static bool query_read(aconn *c, const endpoint *ep, const char *method)
{
	char *q = strchr(c->url.data, '?');
	const char *val = NULL;
	size_t vlen = 0;
	if (!q)
		return true;
	size_t plen = (size_t)(q - c->url.data);
	for (const char *p = q + 1; *p;) {
		size_t n = strcspn(p, "&"), kn = strcspn(p, "=&");
		char name[80], msg[256];
		if (n) {
			quote_safe(name, sizeof(name), p, kn);
			if (ep->param && strlen(ep->param) == kn && memcmp(p, ep->param, kn) == 0) {
				if (val) {
					snprintf(msg, sizeof(msg),
						 "%s %s: query parameter \\\"%s\\\" given twice",
						 method, ep->path, name);
					respond_error(c, 422, SB_EINVAL, msg);
					return false;
				}
				val = p + kn + (kn < n);
				vlen = n - kn - (kn < n);
			} else {
				snprintf(msg, sizeof(msg),
					 "%s %s: unknown query parameter \\\"%s\\\" (it takes %s)",
					 method, ep->path, name, ep->param ? ep->param : "none");
				respond_error(c, 422, SB_EINVAL, msg);
				return false;
			}
		}
		p += n + (p[n] == '&');
	}
	sb_buf norm;
	sb_buf_init(&norm);
	sb_buf_add(&norm, c->url.data, plen);
	if (val)
		sb_buf_addf(&norm, "?%s=%.*s", ep->param, (int)vlen, val);
	sb_buf_free(&c->url);
	c->url = norm;
	return true;
}

static int on_headers_complete(llhttp_t *p)
{
	aconn *c = p->data;
	if (c->field.len)
		header_done(c);
	/* refused before any body is read: no token, no buffering */
	if (c->tcp && !c->auth_ok) {
		/* RFC 9110 11.6.1: a 401 says which scheme it wants */
		respond_error_h(c, 401, SB_EPERM,
				"WWW-Authenticate: Bearer realm=\"switchboard\"\r\n",
				"missing or wrong bearer token");
		return HPE_PAUSED;
	}
	sb_buf_addc(&c->url, '\0'); /* terminated, not counted: on_complete adds it again */
	c->url.len--;
	const endpoint *ep = endpoint_of(&c->url);
	const char *method = llhttp_method_name((llhttp_method_t)p->method);
	if (ep && strcmp(ep->allow, method) != 0) {
		/* the message names the method and path, both ours (a query is not) */
		char extra[64], msg[128];
		snprintf(extra, sizeof(extra), "Allow: %s\r\n", ep->allow);
		snprintf(msg, sizeof(msg), "%s %s: this endpoint takes %s only", method, ep->path,
			 ep->allow);
		respond_error_h(c, 405, SB_EINVAL, extra, msg);
		return HPE_PAUSED;
	}
	if (ep && !query_read(c, ep, method))
		return HPE_PAUSED;
	/* a body that cannot fit is refused before it is read */
	if ((p->flags & F_CONTENT_LENGTH) && p->content_length > SB_ADMIN_BODY_MAX) {
		respond_error(c, 413, SB_ETOOLONG, "request body too large (at most 1 MiB)");
		return HPE_PAUSED;
	}
	if (c->tcp) /* authenticated: the body may take the rest of the time */
		uv_timer_start(&c->timer, conn_timeout, CONN_TIMEOUT_MS, 0);
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
	aconn *c = p->data;
	if (c->body.len + n > SB_ADMIN_BODY_MAX) {
		c->too_big = true;
		return -1;
	}
	sb_buf_add(&c->body, at, n);
	return 0;
}

static int on_complete(llhttp_t *p)
{
	aconn *c = p->data;
	sb_admin *a = c->a;
	int status = 500;
	sb_buf out;
	sb_buf_init(&out);
	sb_buf_addc(&c->url, '\0');
	sb_buf_addc(&c->body, '\0');
	a->handler(a->ctx, llhttp_method_name((llhttp_method_t)p->method), c->url.data,
		   c->body.data, c->body.len - 1, &status, &out);
	respond(c, status, out.data ? out.data : "", out.len);
	sb_buf_free(&out);
	return HPE_PAUSED;
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char slab[65536];
	buf->base = slab;
	buf->len = sizeof(slab);
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	aconn *c = s->data;
	if (n < 0) {
		conn_close(c);
		return;
	}
	if (n == 0 || c->done)
		return;
	c->head_bytes += (size_t)n;
	llhttp_errno_t e = llhttp_execute(&c->parser, buf->base, (size_t)n);
	if (c->done)
		return;
	if (e != HPE_OK && e != HPE_PAUSED)
		respond_error(c,
			      c->too_big	? 413
			      : c->head_too_big ? 431
						: 400,
			      c->too_big || c->head_too_big ? SB_ETOOLONG : SB_EPARSE,
			      c->too_big	? "request body too large (at most 1 MiB)"
			      : c->head_too_big ? "request head too large (at most 16 KiB)"
						: "malformed HTTP request");
	else if (c->head_bytes > HEAD_MAX + SB_ADMIN_BODY_MAX)
		respond_error(c, 413, SB_ETOOLONG, "request too large");
}

static void on_connection(uv_stream_t *server, int status)
{
	sb_admin *a = server->data;
	if (a->stopping)
		return;
	if (status < 0) {
		/* libuv would try again at once for as long as it lasts (the
		 * open-file limit): the control thread would spin, serving
		 * nothing else (nor a stop) */
		sb_accept_guard_failed(server == &a->tcp.l.stream ? &a->tcp : &a->pipe, status);
		return;
	}
	aconn *c = sb_xcalloc(1, sizeof(*c));
	c->a = a;
	c->tcp = server == &a->tcp.l.stream;
	if (c->tcp)
		uv_tcp_init(a->loop, &c->h.tcp);
	else
		uv_pipe_init(a->loop, &c->h.pipe, 0);
	uv_timer_init(a->loop, &c->timer);
	c->h.s.data = c;
	c->timer.data = c;
	c->handles = 2;
	a->handles++;
	a->nconns++;
	if (c->tcp)
		a->nconns_tcp++;
	c->next = a->conns;
	if (a->conns)
		a->conns->prevp = &c->next;
	c->prevp = &a->conns;
	a->conns = c;
	sb_buf_init(&c->url);
	sb_buf_init(&c->body);
	sb_buf_init(&c->field);
	sb_buf_init(&c->value);
	sb_buf_init(&c->out);
	if (uv_accept(server, &c->h.s) < 0) {
		conn_close(c);
		return;
	}
	if ((c->tcp ? a->nconns_tcp : a->nconns - a->nconns_tcp) > CONN_MAX) {
		/* over the cap: accepted only to be closed, so the backlog drains;
		 * the client is told why if the socket takes it at once (nothing is
		 * kept for it: that is what the cap is for) */
		static const char busy[] =
		    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
		    "Content-Length: 92\r\nConnection: close\r\n\r\n"
		    "{\"error\":\"too many open admin API connections (64): try again\","
		    "\"code\":\"input/output error\"}\n";
		uv_buf_t b = uv_buf_init((char *)busy, sizeof(busy) - 1);
		uv_os_fd_t fd;
		if (uv_try_write(&c->h.s, &b, 1) == (int)b.len &&
		    uv_fileno((uv_handle_t *)&c->h.s, &fd) == 0)
			shutdown(fd, SHUT_WR);
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, conn_timeout, c->tcp ? HEAD_TIMEOUT_MS : CONN_TIMEOUT_MS, 0);
	llhttp_settings_init(&c->settings);
	c->settings.on_url = on_url;
	c->settings.on_header_field = on_field;
	c->settings.on_header_value = on_value;
	c->settings.on_headers_complete = on_headers_complete;
	c->settings.on_body = on_body;
	c->settings.on_message_complete = on_complete;
	llhttp_init(&c->parser, HTTP_REQUEST, &c->settings);
	c->parser.data = c;
	uv_read_start(&c->h.s, conn_alloc, conn_read);
}

static int split_hostport(const char *s, char *host, size_t hsz, int *port)
{
	const char *colon = strrchr(s, ':');
	uint64_t p;
	if (!colon || sb_parse_u64(colon + 1, strlen(colon + 1), 65535, &p) < 0)
		return SB_EINVAL;
	const char *h = s;
	size_t hl = (size_t)(colon - s);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= hsz)
		return SB_EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (int)p;
	return 0;
}

/* The pid of the server answering on the socket at path (SO_PEERCRED: what
 * an operator needs to find it, as nginx names the pid of the one already
 * running), or 0 when none answers. */
static long server_pid(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ucred cred;
	socklen_t len = sizeof(cred);
	long pid = 0;
	if (strlen(path) >= sizeof(sa.sun_path))
		return 0;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		pid = cred.pid;
	close(fd);
	return pid;
}

/* "another server already serves": with its pid when it answers. */
static int already_served(sb_diag *d, const char *where, const char *sock)
{
	long pid = server_pid(sock);
	if (pid > 0)
		return sb_diag_setc(d, SB_EEXIST, where, 0, 0,
				    "another switchboard server already serves this data directory "
				    "(pid %ld)",
				    pid);
	return sb_diag_setc(d, SB_EEXIST, where, 0, 0,
			    "another switchboard server already serves this data directory");
}

int sb_admin_lock(const char *data_dir, int *fd, sb_diag *d)
{
	char lock[4200];
	sb_admin_socket_path(data_dir, lock, sizeof(lock) - 8);
	size_t n = strlen(lock);
	memcpy(lock + n, ".lock", 6);
	*fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		return sb_diag_setc(d, SB_EIO, lock, 0, 0, "cannot open: %s", strerror(errno));
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		close(*fd);
		*fd = -1;
		if (err == EWOULDBLOCK) {
			lock[n] = '\0'; /* the socket's path */
			return already_served(d, data_dir, lock);
		}
		return sb_diag_setc(d, SB_EIO, lock, 0, 0, "cannot lock: %s", strerror(err));
	}
	return 0;
}

int sb_admin_start(uv_loop_t *loop, const char *data_dir, const char *tcp, bool held_lock,
		   sb_admin_handler handler, void *ctx, sb_admin **out, sb_diag *d)
{
	int r = 0, e;
	sb_admin *a = sb_xcalloc(1, sizeof(*a));
	a->loop = loop;
	a->handler = handler;
	a->ctx = ctx;
	a->lock_fd = -1;
	*out = NULL;
	char path[4096];
	sb_admin_socket_path(data_dir, path, sizeof(path));
	if (strlen(path) >= sizeof(a->sock)) {
		r = sb_diag_setc(d, SB_ETOOLONG, path, 0, 0,
				 "admin socket path longer than %zu bytes: use a shorter data_dir",
				 sizeof(a->sock) - 1);
		goto out;
	}
	memcpy(a->sock, path, strlen(path) + 1); /* length checked above */
	uv_pipe_init(loop, &a->pipe.l.pipe, 0);
	a->pipe.l.pipe.data = a;
	sb_accept_guard_init(&a->pipe, loop);
	a->has_pipe = true;
	a->handles++;
	/* One server per data directory: a lock held for the server's life,
	 * taken before the socket is touched, so that a second server (even
	 * one starting at the same moment) leaves the first one's socket be. */
	if (!held_lock && (r = sb_admin_lock(data_dir, &a->lock_fd, d)) < 0)
		goto out;
	if (sb_admin_call(a->sock, NULL, "GET", "/v1/status", NULL, &e, NULL, NULL) == 0) {
		r = already_served(d, a->sock, a->sock);
		goto out;
	}
	/* a socket file left by a server that died: nobody answers on it */
	unlink(a->sock);
	mode_t old = umask(0177); /* the socket is created 0600 */
	e = uv_pipe_bind(&a->pipe.l.pipe, a->sock);
	umask(old);
	a->owns_sock = e == 0;
	if (e == 0)
		e = sb_accept_guard_listen(&a->pipe, 16, on_connection);
	if (e < 0) {
		r = sb_diag_setc(d, SB_EIO, a->sock, 0, 0, "cannot listen: %s", uv_strerror(e));
		goto out;
	}
	chmod(a->sock, 0600);
	if (tcp) {
		char host[256];
		int port;
		struct sockaddr_storage ss;
		if ((r = sb_admin_token(data_dir, true, a->token, d)) < 0)
			goto out;
		if (split_hostport(tcp, host, sizeof(host), &port) < 0 ||
		    (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
		     uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)) {
			r = sb_diag_set(d, tcp, 0, 0,
					"[admin] listen: expected an IP address and port");
			goto out;
		}
		uv_tcp_init(loop, &a->tcp.l.tcp);
		a->tcp.l.tcp.data = a;
		sb_accept_guard_init(&a->tcp, loop);
		a->has_tcp = true;
		a->handles++;
		if ((e = uv_tcp_bind(&a->tcp.l.tcp, (struct sockaddr *)&ss, 0)) < 0 ||
		    (e = sb_accept_guard_listen(&a->tcp, 16, on_connection)) < 0) {
			r = sb_diag_setc(d, SB_EIO, tcp, 0, 0, "admin API cannot listen: %s",
					 uv_strerror(e));
			goto out;
		}
	}
	*out = a;
out:
	if (r < 0)
		sb_admin_stop(a);
	return r;
}

int sb_admin_tcp_address(const sb_admin *a, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char ip[64];
	if (!a || !a->has_tcp ||
	    uv_tcp_getsockname(&a->tcp.l.tcp, (struct sockaddr *)&ss, &len) < 0)
		return SB_ENOENT;
	if (ss.ss_family == AF_INET6) {
		uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip,
			 (unsigned)ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	} else {
		uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip,
			 (unsigned)ntohs(((struct sockaddr_in *)&ss)->sin_port));
	}
	return 0;
}

void sb_admin_stop(sb_admin *a)
{
	if (!a || a->stopping)
		return;
	a->stopping = true;
	while (a->conns)
		conn_close(a->conns);
	if (a->has_pipe) {
		sb_accept_guard_close(&a->pipe, admin_handle_closed);
		if (a->owns_sock)
			unlink(a->sock);
	}
	if (a->lock_fd >= 0) {
		close(a->lock_fd); /* the lock goes with it */
		a->lock_fd = -1;
	}
	if (a->has_tcp)
		sb_accept_guard_close(&a->tcp, admin_handle_closed);
	if (!a->has_pipe && !a->has_tcp && a->handles == 0)
		free(a);
}

void sb_admin_set_log(sb_admin *a, sb_accept_log_fn log)
{
	if (!a)
		return;
	char what[200];
	snprintf(what, sizeof(what), "admin API connections on %s", a->sock);
	sb_accept_guard_set_log(&a->pipe, log, what);
	if (a->has_tcp) {
		char at[128];
		if (sb_admin_tcp_address(a, at, sizeof(at)) < 0)
			snprintf(at, sizeof(at), "TCP");
		snprintf(what, sizeof(what), "admin API connections on %s", at);
		sb_accept_guard_set_log(&a->tcp, log, what);
	}
}

/* ---- client ---------------------------------------------------------------- */

static int client_connect(const char *where, char *tls_host, size_t tls_size, sb_diag *d)
{
	int fd;
	size_t sl = sb_http_scheme_len(where);
	bool tls = sl == 8;
	if (tls_host)
		tls_host[0] = '\0';
	if (sl) {
		char host[256], port[8];
		int p;
		const char *hp = where + sl;
		size_t hl = strcspn(hp, "/?#");
		char tmp[300];
		if (hl >= sizeof(tmp))
			return sb_diag_setc(d, SB_EINVAL, where, 0, 0, "address too long");
		/* requests go to /v1/... of HOST:PORT: a path would be dropped, and
		 * the token sent to whatever that host serves at its root */
		if (hp[hl] && strcmp(hp + hl, "/") != 0)
			return sb_diag_setc(
			    d, SB_EINVAL, where, 0, 0,
			    "expected http://HOST:PORT or https://HOST:PORT for the "
			    "admin API, without a path");
		memcpy(tmp, hp, hl);
		tmp[hl] = '\0';
		if (split_hostport(tmp, host, sizeof(host), &p) < 0)
			return sb_diag_setc(
			    d, SB_EINVAL, where, 0, 0,
			    "expected http://HOST:PORT or https://HOST:PORT for the "
			    "admin API");
		if (tls && tls_host)
			snprintf(tls_host, tls_size, "%s", host);
		snprintf(port, sizeof(port), "%d", p);
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
		if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
			return sb_diag_setc(d, SB_EIO, where, 0, 0, "cannot resolve %s", host);
		fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int ok = fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0;
		int e = errno;
		freeaddrinfo(res);
		if (!ok) {
			if (fd >= 0)
				close(fd);
			return sb_diag_setc(d, SB_EIO, where, 0, 0, "cannot connect: %s",
					    strerror(e));
		}
		return fd;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(where) >= sizeof(sa.sun_path)) /* no server can listen there */
		return sb_diag_setc(d, SB_ENOENT, where, 0, 0, "socket path too long");
	memcpy(sa.sun_path, where, strlen(where) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sb_diag_setc(d, SB_EIO, where, 0, 0, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		/* no socket, or nobody behind it: no server runs */
		if (e == ENOENT || e == ECONNREFUSED)
			return sb_diag_setc(d, SB_ENOENT, where, 0, 0, "no server listens");
		return sb_diag_setc(d, SB_EIO, where, 0, 0, "cannot connect: %s", strerror(e));
	}
	return fd;
}

/* One connection's byte stream: plain, or TLS for https:// (an admin API
 * behind a TLS-terminating proxy, reached from CI). */
typedef struct stream {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
} stream;

static int stream_tls(stream *s, const char *host, const char *where, sb_diag *d)
{
	s->ctx = SSL_CTX_new(TLS_client_method());
	if (!s->ctx || SSL_CTX_set_default_verify_paths(s->ctx) != 1)
		return sb_diag_setc(d, SB_EIO, where, 0, 0, "TLS: cannot load the CA certificates");
	SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
	/* proxies often close without close_notify; a cut answer is still
	 * caught, by its Content-Length */
	SSL_CTX_set_options(s->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	s->ssl = SSL_new(s->ctx);
	if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1 ||
	    SSL_set_tlsext_host_name(s->ssl, host) != 1 || SSL_set1_host(s->ssl, host) != 1 ||
	    SSL_connect(s->ssl) != 1) {
		char err[256] = "handshake failed";
		unsigned long e = ERR_get_error();
		if (e)
			ERR_error_string_n(e, err, sizeof(err));
		long v = s->ssl ? SSL_get_verify_result(s->ssl) : X509_V_OK;
		return sb_diag_setc(d, SB_EIO, where, 0, 0, "TLS: %s%s%s", err,
				    v != X509_V_OK ? ": " : "",
				    v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
	}
	return 0;
}

static ssize_t stream_send(stream *s, const char *p, size_t n)
{
	if (s->ssl) {
		int w = SSL_write(s->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
		return w > 0 ? w : -1;
	}
	return send(s->fd, p, n, MSG_NOSIGNAL);
}

static ssize_t stream_recv(stream *s, char *p, size_t n)
{
	if (s->ssl) {
		int r = SSL_read(s->ssl, p, (int)n);
		if (r > 0)
			return r;
		int e = SSL_get_error(s->ssl, r);
		/* a peer that closes without close_notify still ends the answer */
		return e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ? 0 : -1;
	}
	return recv(s->fd, p, n, 0);
}

static void stream_close(stream *s)
{
	if (s->ssl) {
		SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
	}
	SSL_CTX_free(s->ctx);
	if (s->fd >= 0)
		close(s->fd);
}

int sb_admin_call(const char *where, const char *token, const char *method, const char *target,
		  const char *body, int *status, char **resp, sb_diag *d)
{
	int r = 0;
	sb_buf req, in;
	char tls_host[256];
	stream s = {.fd = -1};
	sb_buf_init(&req);
	sb_buf_init(&in);
	if (resp)
		*resp = NULL;
	s.fd = client_connect(where, tls_host, sizeof(tls_host), d);
	if (s.fd < 0)
		return s.fd;
	/* a change may take a while on a big registry, but not forever */
	struct timeval tv = {.tv_sec = 120};
	setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (tls_host[0] && (r = stream_tls(&s, tls_host, where, d)) < 0)
		goto out;
	size_t blen = body ? strlen(body) : 0;
	sb_buf_addf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target,
		    tls_host[0] ? tls_host : "switchboard");
	if (token) {
		/* a token from a secret store often ends with a line end; any
		 * other space or control character would break the header (or add
		 * one of its own) */
		size_t tl = strlen(token);
		while (tl && strchr(" \t\r\n", token[tl - 1]))
			tl--;
		for (size_t i = 0; i < tl; i++)
			if ((unsigned char)token[i] <= ' ' || token[i] == 0x7f) {
				r = sb_diag_setc(d, SB_EINVAL, where, 0, 0,
						 "the bearer token has a space or a control "
						 "character in it (at byte %zu)",
						 i + 1);
				goto out;
			}
		sb_buf_addf(&req, "Authorization: Bearer %.*s\r\n", (int)tl, token);
	}
	sb_buf_addf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", blen);
	if (blen)
		sb_buf_add(&req, body, blen);
	for (size_t off = 0; off < req.len;) {
		ssize_t n = stream_send(&s, req.data + off, req.len - off);
		if (n <= 0) {
			r = sb_diag_setc(d, SB_EIO, where, 0, 0, "cannot send: %s",
					 strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	char buf[16384];
	for (;;) {
		ssize_t n = stream_recv(&s, buf, sizeof(buf));
		if (n < 0) {
			r = sb_diag_setc(d, SB_EIO, where, 0, 0, "no answer: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		sb_buf_add(&in, buf, (size_t)n);
	}
	sb_buf_addc(&in, '\0');
	const char *sp = memchr(in.data, ' ', in.len);
	const char *hend = strstr(in.data, "\r\n\r\n");
	uint64_t st;
	if (!sp || !hend || sb_parse_u64(sp + 1, 3, 999, &st) < 0) {
		r = sb_diag_setc(d, SB_EIO, where, 0, 0, "not an HTTP answer");
		goto out;
	}
	const char *cl = strcasestr(in.data, "\r\ncontent-length:");
	uint64_t want;
	if (cl && cl < hend) {
		cl += 17;
		while (*cl == ' ')
			cl++;
		if (sb_parse_u64(cl, strspn(cl, "0123456789"), UINT32_MAX, &want) == 0 &&
		    (size_t)(in.data + in.len - 1 - (hend + 4)) < want) {
			r = sb_diag_setc(d, SB_EIO, where, 0, 0, "the answer was cut short");
			goto out;
		}
	}
	*status = (int)st;
	if (resp)
		*resp = sb_xstrdup(hend + 4);
out:
	stream_close(&s);
	sb_buf_free(&req);
	sb_buf_free(&in);
	return r;
}
