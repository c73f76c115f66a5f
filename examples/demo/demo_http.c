/*
 * demo-service connections and endpoints.
 *
 * Every connection owns one input buffer that libuv reads into directly;
 * llhttp parses it in place and the callbacks copy the URL and headers into
 * the request's own buffer, so the input can be compacted between reads.
 *
 * Ordering of pipelined requests: on_message_complete pauses the parser, the
 * request is answered, and only then does parsing resume. An endpoint that
 * answers later (/slow, /stream, /big) marks the connection busy; reading
 * stops until it is done, so responses always leave in request order and
 * the kernel, not this process, holds what the client sends meanwhile.
 *
 * Backpressure: out_pending counts bytes given to uv_write that have not
 * been called back. Above HIGH_WATER no more input is parsed and /big stops
 * producing; below LOW_WATER both resume.
 */
#include "demo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#define READ_CHUNK 65536
#define HIGH_WATER (1u << 20)
#define LOW_WATER (256u << 10)
#define MAX_URL 8192
#define MAX_HEAD (64u << 10)
#define MAX_HEADERS 128
#define CHUNKED_LEN (-1)
#define NO_LEN (-2)

static struct demo_conn *conns;

/* /big serves byte i = alphabet[i % 27]; the block is a multiple of 27. */
static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz\n";
static char big_block[27 * 2427];

/* ---- writing --------------------------------------------------------------- */

struct wreq {
	uv_write_t req;
	struct demo_conn *c;
	char *owned;
	size_t n;
};

static void on_write(uv_write_t *req, int status);

static void write_buf(struct demo_conn *c, const char *p, size_t n, char *owned)
{
	if (c->closed || n == 0) {
		free(owned);
		return;
	}
	struct wreq *w = sb_xmalloc(sizeof(*w));
	w->c = c;
	w->owned = owned;
	w->n = n;
	uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
		free(owned);
		free(w);
		demo_conn_close(c);
		return;
	}
	c->out_pending += n;
}

void demo_conn_write_owned(struct demo_conn *c, char *p, size_t n)
{
	write_buf(c, p, n, p);
}

void demo_conn_write_static(struct demo_conn *c, const char *p, size_t n)
{
	write_buf(c, p, n, NULL);
}

static void write_sbuf(struct demo_conn *c, sb_buf *b)
{
	size_t n = b->len;
	demo_conn_write_owned(c, sb_buf_steal(b), n);
}

static void big_produce(struct demo_conn *c);

static void on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct demo_conn *c = w->c;
	c->out_pending -= w->n;
	free(w->owned);
	free(w);
	if (status < 0) {
		demo_conn_close(c);
		return;
	}
	if (c->closed || c->out_pending >= LOW_WATER)
		return;
	if (c->job == DEMO_JOB_BIG)
		big_produce(c);
	else
		demo_conn_process(c);
}

/* ---- connection life --------------------------------------------------------- */

static void conn_free(struct demo_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	EVP_MD_CTX_free(c->sha);
	sb_buf_free(&c->raw);
	free(c->hdrs);
	free(c->in);
	free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct demo_conn *c = h->data;
	if (--c->handles == 0)
		conn_free(c);
}

void demo_conn_close(struct demo_conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	c->busy = false;
	c->job = DEMO_JOB_NONE;
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	demo_conn_close(req->data);
}

void demo_conn_end(struct demo_conn *c)
{
	if (c->ending || c->closed)
		return;
	c->ending = true;
	c->busy = false;
	uv_timer_stop(&c->timer);
	if (c->reading)
		uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = false;
	c->shut.data = c;
	if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
		demo_conn_close(c);
}

void demo_conn_close_all(void)
{
	for (struct demo_conn *c = conns; c; c = c->next)
		demo_conn_close(c);
}

/* ---- reading ----------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct demo_conn *c = h->data;
	if (c->in_cap - c->in_len < READ_CHUNK) {
		c->in_cap = c->in_len + READ_CHUNK;
		c->in = sb_xrealloc(c->in, c->in_cap);
	}
	*buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct demo_conn *c = s->data;
	if (nread == UV_EOF) {
		/* whatever was answered is flushed first; a half request is dropped */
		demo_conn_end(c);
		return;
	}
	if (nread < 0) {
		demo_conn_close(c);
		return;
	}
	c->in_len += (size_t)nread;
	demo_conn_process(c);
}

/* Read exactly when the next input can be consumed. */
static void update_reading(struct demo_conn *c)
{
	if (c->closed || c->ending)
		return;
	/* HTTP input is parsed as it comes; a WebSocket frame may need more */
	bool want = !c->busy && c->out_pending < HIGH_WATER && (c->ws || c->in_off == c->in_len);
	if (want && !c->reading)
		want = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0;
	else if (!want && c->reading)
		uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = want;
}

/* ---- requests: parser callbacks ------------------------------------------------ */

static struct demo_conn *conn_of(llhttp_t *p)
{
	return p->data;
}

static int on_message_begin(llhttp_t *p)
{
	struct demo_conn *c = conn_of(p);
	sb_buf_reset(&c->raw);
	c->url_len = 0;
	c->nhdrs = 0;
	c->hstate = 0;
	c->err_status = 0;
	c->body_bytes = 0;
	c->body_sha[0] = '\0';
	EVP_DigestInit_ex(c->sha, EVP_sha256(), NULL);
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
	struct demo_conn *c = conn_of(p);
	if (c->url_len + n > MAX_URL) {
		c->err_status = 414;
		return HPE_USER;
	}
	sb_buf_add(&c->raw, at, n);
	c->url_len += n;
	return 0;
}

static int head_room(struct demo_conn *c, size_t n)
{
	if (c->raw.len + n > MAX_HEAD) {
		c->err_status = 431;
		return HPE_USER;
	}
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct demo_conn *c = conn_of(p);
	if (head_room(c, n))
		return HPE_USER;
	if (c->hstate != 1) {
		if (c->nhdrs == MAX_HEADERS) {
			c->err_status = 431;
			return HPE_USER;
		}
		if (c->nhdrs == c->hdrs_cap) {
			c->hdrs_cap = c->hdrs_cap ? 2 * c->hdrs_cap : 16;
			c->hdrs = sb_xrealloc(c->hdrs, c->hdrs_cap * sizeof(*c->hdrs));
		}
		c->hdrs[c->nhdrs++] = (struct demo_hdr){c->raw.len, 0, c->raw.len, 0};
		c->hstate = 1;
	}
	sb_buf_add(&c->raw, at, n);
	c->hdrs[c->nhdrs - 1].nlen += n;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct demo_conn *c = conn_of(p);
	if (head_room(c, n))
		return HPE_USER;
	struct demo_hdr *h = &c->hdrs[c->nhdrs - 1];
	if (c->hstate != 2) {
		h->value = c->raw.len;
		c->hstate = 2;
	}
	sb_buf_add(&c->raw, at, n);
	h->vlen += n;
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct demo_conn *c = conn_of(p);
	size_t n;
	const char *expect = demo_hdr_get(c, "expect", &n, NULL);
	c->http10 = p->http_major == 1 && p->http_minor == 0;
	/* the body is read either way; saying so spares the client its wait */
	if (expect && !c->http10 && n == 12 && strncasecmp(expect, "100-continue", 12) == 0) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		demo_conn_write_static(c, cont, sizeof(cont) - 1);
	}
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
	struct demo_conn *c = conn_of(p);
	c->body_bytes += n;
	EVP_DigestUpdate(c->sha, at, n);
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct demo_conn *c = conn_of(p);
	uint8_t md[SB_SIGN_MAC_LEN];
	unsigned mdlen = 0;
	EVP_DigestFinal_ex(c->sha, md, &mdlen);
	sb_sign_hex(md, mdlen, c->body_sha, sizeof(c->body_sha));
	c->keep_alive = llhttp_should_keep_alive(p);
	c->head = p->method == HTTP_HEAD;
	/* an upgrade stops the parser by itself (HPE_PAUSED_UPGRADE) */
	return p->upgrade ? 0 : HPE_PAUSED;
}

static llhttp_settings_t settings;

const char *demo_hdr_get(const struct demo_conn *c, const char *name, size_t *vlen, int *count)
{
	const char *first = NULL;
	size_t nlen = strlen(name);
	int k = 0;
	for (size_t i = 0; i < c->nhdrs; i++) {
		const struct demo_hdr *h = &c->hdrs[i];
		if (h->nlen != nlen || strncasecmp(c->raw.data + h->name, name, nlen) != 0)
			continue;
		if (k++ == 0) {
			first = c->raw.data + h->value;
			*vlen = h->vlen;
		}
	}
	if (count)
		*count = k;
	return first;
}

/* ---- responses ------------------------------------------------------------------- */

static const char *reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 418: return "I'm a teapot";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

/* Status line and headers into b. len: bytes, CHUNKED_LEN or NO_LEN. */
static void head_into(struct demo_conn *c, sb_buf *b, int status, const char *ctype, int64_t len,
		      const char *extra)
{
	sb_buf_addf(b, "HTTP/1.1 %d %s\r\nServer: switchboard-demo\r\nX-Demo-Worker: %s\r\n",
		    status, reason(status), demo_cfg.name);
	if (ctype)
		sb_buf_addf(b, "Content-Type: %s\r\n", ctype);
	if (len >= 0)
		sb_buf_addf(b, "Content-Length: %" PRId64 "\r\n", len);
	else if (len == CHUNKED_LEN)
		sb_buf_adds(b, "Transfer-Encoding: chunked\r\n");
	if (extra)
		sb_buf_adds(b, extra);
	sb_buf_adds(b,
		    c->keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
}

static void respond(struct demo_conn *c, int status, const char *ctype, const char *body, size_t n)
{
	sb_buf b;
	sb_buf_init(&b);
	bool bodiless = status == 204 || status == 304;
	head_into(c, &b, status, bodiless ? NULL : ctype, bodiless ? NO_LEN : (int64_t)n, NULL);
	if (!c->head && !bodiless)
		sb_buf_add(&b, body, n);
	write_sbuf(c, &b);
}

/* Answer with j (consumed) as compact JSON plus a newline. */
static void respond_json(struct demo_conn *c, int status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		sb_oom();
	sb_buf body;
	sb_buf_init(&body);
	sb_buf_adds(&body, s);
	sb_buf_addc(&body, '\n');
	free(s);
	respond(c, status, "application/json", body.data, body.len);
	sb_buf_free(&body);
}

static void respond_error(struct demo_conn *c, int status, const char *msg)
{
	respond_json(
	    c, status,
	    json_pack("{s:s,s:s}", "error", msg ? msg : reason(status), "worker", demo_cfg.name));
}

/* A JSON string from bytes: UTF-8 as is, anything else read as Latin-1. */
static json_t *jstr(const char *p, size_t n)
{
	json_t *j = json_stringn(p ? p : "", n);
	if (j)
		return j;
	sb_buf b;
	sb_buf_init(&b);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch < 0x80) {
			sb_buf_addc(&b, (char)ch);
		} else {
			sb_buf_addc(&b, (char)(0xc0 | ch >> 6));
			sb_buf_addc(&b, (char)(0x80 | (ch & 0x3f)));
		}
	}
	j = json_stringn(b.data ? b.data : "", b.len);
	sb_buf_free(&b);
	return j;
}

static void iso_now(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

/* ---- endpoints ------------------------------------------------------------------- */

struct target {
	const char *path, *query;
	size_t plen, qlen;
};

static bool path_is(const struct target *t, const char *s)
{
	return t->plen == strlen(s) && memcmp(t->path, s, t->plen) == 0;
}

/* Value of a decimal query parameter: def when absent, SB_E* when invalid. */
static int query_u64(const struct target *t, const char *key, uint64_t max, uint64_t def,
		     uint64_t *out)
{
	size_t klen = strlen(key);
	const char *p = t->query, *end = t->query + t->qlen;
	*out = def;
	while (p && p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		if ((size_t)(stop - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=')
			return sb_parse_u64(p + klen + 1, (size_t)(stop - p - (ptrdiff_t)klen - 1),
					    max, out);
		p = amp ? amp + 1 : end;
	}
	return 0;
}

static void ep_health(struct demo_conn *c)
{
	struct stat st;
	char ts[40];
	bool sick = demo_cfg.unhealthy_file && stat(demo_cfg.unhealthy_file, &st) == 0;
	iso_now(ts, sizeof(ts));
	respond_json(c, sick ? 503 : 200,
		     json_pack("{s:s,s:s,s:s,s:s}", "status", sick ? "unhealthy" : "healthy",
			       "worker", demo_cfg.name, "environment", demo_cfg.env, "timestamp",
			       ts));
}

static void ep_status(struct demo_conn *c, const struct target *t)
{
	uint64_t code;
	if (sb_parse_u64(t->path + 8, t->plen - 8, 599, &code) < 0 || code < 200) {
		respond_error(c, 400, "status must be 200..599");
		return;
	}
	respond_json(c, (int)code,
		     json_pack("{s:i,s:s}", "status", (int)code, "worker", demo_cfg.name));
}

static void job_done(struct demo_conn *c);

static void on_slow(uv_timer_t *t)
{
	struct demo_conn *c = t->data;
	respond_json(
	    c, 200,
	    json_pack("{s:s,s:I}", "worker", demo_cfg.name, "slept_ms", (json_int_t)c->job_ms));
	job_done(c);
}

static void ep_slow(struct demo_conn *c, const struct target *t)
{
	uint64_t ms;
	if (query_u64(t, "ms", 3600000, 1000, &ms) < 0) {
		respond_error(c, 400, "ms must be 0..3600000");
		return;
	}
	c->busy = true;
	c->job = DEMO_JOB_SLOW;
	c->job_ms = ms;
	uv_timer_start(&c->timer, on_slow, ms, 0);
	/* said on stderr: a test knows the request is here, in flight */
	fprintf(stderr, "demo-service %s: /slow for %llu ms\n", demo_cfg.name,
		(unsigned long long)ms);
}

static void stream_chunk(struct demo_conn *c, const char *p, size_t n)
{
	sb_buf b;
	sb_buf_init(&b);
	if (c->chunked)
		sb_buf_addf(&b, "%zx\r\n", n);
	sb_buf_add(&b, p, n);
	if (c->chunked)
		sb_buf_adds(&b, "\r\n");
	write_sbuf(c, &b);
}

static void on_stream(uv_timer_t *t)
{
	struct demo_conn *c = t->data;
	char line[48];
	int n = snprintf(line, sizeof(line), "chunk %" PRIu64 "\n", c->job_i);
	stream_chunk(c, line, (size_t)n);
	if (++c->job_i < c->job_n) {
		uv_timer_start(&c->timer, on_stream, c->job_ms, 0);
		return;
	}
	if (c->chunked)
		demo_conn_write_static(c, "0\r\n\r\n", 5);
	job_done(c);
}

static void ep_stream(struct demo_conn *c, const struct target *t)
{
	uint64_t n, ms;
	if (query_u64(t, "chunks", 1000000, 5, &n) < 0 ||
	    query_u64(t, "ms", 3600000, 100, &ms) < 0) {
		respond_error(c, 400, "chunks must be 0..1000000, ms 0..3600000");
		return;
	}
	sb_buf b;
	sb_buf_init(&b);
	/* HTTP/1.0 has no chunked coding: the end of the body is the close */
	c->chunked = !c->http10;
	if (!c->chunked)
		c->keep_alive = false;
	head_into(c, &b, 200, "text/plain", c->chunked ? CHUNKED_LEN : NO_LEN, NULL);
	write_sbuf(c, &b);
	if (c->head)
		return;
	if (n == 0) {
		if (c->chunked)
			demo_conn_write_static(c, "0\r\n\r\n", 5);
		return;
	}
	c->busy = true;
	c->job = DEMO_JOB_STREAM;
	c->job_n = n;
	c->job_i = 0;
	c->job_ms = ms;
	uv_timer_start(&c->timer, on_stream, 0, 0);
}

static void big_produce(struct demo_conn *c)
{
	/* out_pending bounds the work per loop turn even when writes finish at once */
	while (c->job_n > 0 && c->out_pending < HIGH_WATER && !c->closed) {
		size_t n = c->job_n < sizeof(big_block) ? (size_t)c->job_n : sizeof(big_block);
		demo_conn_write_static(c, big_block, n);
		c->job_n -= n;
	}
	if (c->job_n == 0 && c->job == DEMO_JOB_BIG)
		job_done(c);
}

static void ep_big(struct demo_conn *c, const struct target *t)
{
	uint64_t n;
	if (query_u64(t, "bytes", (uint64_t)1 << 40, 1 << 20, &n) < 0) {
		respond_error(c, 400, "bytes must be 0..2^40");
		return;
	}
	sb_buf b;
	sb_buf_init(&b);
	head_into(c, &b, 200, "application/octet-stream", (int64_t)n, NULL);
	write_sbuf(c, &b);
	if (c->head || n == 0)
		return;
	c->busy = true;
	c->job = DEMO_JOB_BIG;
	c->job_n = n;
	big_produce(c);
}

static void ep_crash(struct demo_conn *c)
{
	sb_buf b;
	sb_buf_init(&b);
	head_into(c, &b, 200, "text/plain", 100000, NULL);
	if (!c->head)
		sb_buf_adds(&b, "0123456789");
	write_sbuf(c, &b);
	/* FIN right after the 10 bytes: the promised 99990 never come */
	demo_conn_end(c);
}

/* "valid", "invalid", "missing" or "unchecked"; *err: why it is invalid. */
static const char *signature_status(struct demo_conn *c, int *err)
{
	sb_sign_fields f;
	bool seen[SB_SIGN_NHDRS] = {false};
	size_t hlen = 0, slen = 0;
	int hcount, scount;

	*err = 0;
	if (demo_cfg.nkeys == 0)
		return "unchecked";
	const char *sig = demo_hdr_get(c, SB_SIGN_HEADER_NAME, &slen, &scount);
	if (!sig)
		return "missing";
	memset(&f, 0, sizeof(f));
	const char *method = llhttp_method_name(c->parser.method);
	f.method = (sb_sign_str){method, strlen(method)};
	const char *host = demo_hdr_get(c, "host", &hlen, &hcount);
	f.host = (sb_sign_str){host, hlen};
	/* the request-target as it arrived: the edge signs the origin-form it
	 * sends, so an absolute-form one (whose host a server must take over
	 * Host, RFC 9112 3.2.2) did not come from it as signed */
	sb_sign_fields_set_target(&f, c->raw.data ? c->raw.data : "", c->url_len);
	/* a signed header or the signature twice: which one was signed? */
	bool dup = scount > 1 || hcount > 1;
	for (size_t i = 0; i < c->nhdrs; i++) {
		const struct demo_hdr *h = &c->hdrs[i];
		int k = sb_sign_fields_set_header(&f, c->raw.data + h->name, h->nlen,
						  c->raw.data + h->value, h->vlen);
		if (k >= 0) {
			dup |= seen[k];
			seen[k] = true;
		}
	}
	if (dup) {
		*err = SB_EEXIST;
		return "invalid";
	}
	*err = sb_sign_verify(sig, slen, &f, demo_cfg.keys, demo_cfg.nkeys, (int64_t)time(NULL),
			      demo_cfg.tolerance_s);
	return *err == 0 ? "valid" : "invalid";
}

static json_t *header_or_null(struct demo_conn *c, const char *name)
{
	size_t n = 0;
	const char *v = demo_hdr_get(c, name, &n, NULL);
	return v ? jstr(v, n) : json_null();
}

static void ep_echo(struct demo_conn *c, const struct target *t)
{
	json_t *hdrs = json_object();
	sb_buf name;
	sb_buf_init(&name);
	for (size_t i = 0; i < c->nhdrs; i++) {
		const struct demo_hdr *h = &c->hdrs[i];
		sb_buf_reset(&name);
		for (size_t k = 0; k < h->nlen; k++) {
			char ch = c->raw.data[h->name + k];
			sb_buf_addc(&name, (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch);
		}
		json_t *v = jstr(c->raw.data + h->value, h->vlen);
		json_t *old = json_object_getn(hdrs, name.data, name.len);
		if (old) { /* repeated header: joined as one list, as Node does */
			sb_buf joined;
			sb_buf_init(&joined);
			sb_buf_add(&joined, json_string_value(old), json_string_length(old));
			sb_buf_adds(&joined, ", ");
			sb_buf_add(&joined, json_string_value(v), json_string_length(v));
			json_decref(v);
			v = json_stringn(joined.data, joined.len);
			sb_buf_free(&joined);
		}
		json_object_setn_new(hdrs, name.data, name.len, v);
	}
	sb_buf_free(&name);

	int err;
	const char *sig = signature_status(c, &err);
	const char *method = llhttp_method_name(c->parser.method);
	json_t *j = json_object();
	json_object_set_new(j, "worker", json_string(demo_cfg.name));
	json_object_set_new(j, "environment", json_string(demo_cfg.env));
	json_object_set_new(j, "method", json_string(method));
	json_object_set_new(j, "path", jstr(t->path, t->plen));
	json_object_set_new(j, "query", jstr(t->query, t->qlen));
	json_object_set_new(j, "headers", hdrs);
	json_object_set_new(j, "body_bytes", json_integer((json_int_t)c->body_bytes));
	json_object_set_new(j, "body_sha256", json_string(c->body_sha));
	json_object_set_new(j, "tenant", header_or_null(c, "x-tenant-slug"));
	json_object_set_new(j, "deployment", header_or_null(c, "x-switchboard-deployment"));
	json_object_set_new(j, "signature", json_string(sig));
	if (err)
		json_object_set_new(j, "signature_error", json_string(sb_strerror(err)));
	respond_json(c, 200, j);
}

static void dispatch(struct demo_conn *c)
{
	struct target t = {c->raw.data ? c->raw.data : "", NULL, c->url_len, 0};
	const char *q = memchr(t.path, '?', t.plen);
	if (q) {
		t.query = q + 1;
		t.qlen = t.plen - (size_t)(q + 1 - t.path);
		t.plen = (size_t)(q - t.path);
	} else {
		t.query = t.path + t.plen;
	}
	/* absolute-form "http://host/p" (what proxies may send): keep "/p" */
	const char *sep = t.plen > 8 ? memmem(t.path, t.plen, "://", 3) : NULL;
	if (sep && (size_t)(sep - t.path) <= 5 && strncasecmp(t.path, "http", 4) == 0) {
		const char *slash = memchr(sep + 3, '/', t.plen - (size_t)(sep + 3 - t.path));
		t.plen = slash ? t.plen - (size_t)(slash - t.path) : 1;
		t.path = slash ? slash : "/";
	}
	if (c->upgraded && !path_is(&t, "/ws"))
		c->keep_alive = false; /* what follows is not HTTP */

	if (c->parser.method == HTTP_CONNECT) {
		c->keep_alive = false;
		respond_error(c, 405, "CONNECT is not supported");
	} else if (path_is(&t, "/ws")) {
		int status = demo_ws_upgrade(c);
		if (status) {
			c->keep_alive = c->keep_alive && !c->upgraded;
			respond_error(c, status, "expected a WebSocket handshake (version 13)");
		}
	} else if (path_is(&t, "/health")) {
		ep_health(c);
	} else if (path_is(&t, "/slow")) {
		ep_slow(c, &t);
	} else if (path_is(&t, "/stream")) {
		ep_stream(c, &t);
	} else if (path_is(&t, "/crash")) {
		ep_crash(c);
	} else if (path_is(&t, "/big")) {
		ep_big(c, &t);
	} else if (t.plen > 8 && memcmp(t.path, "/status/", 8) == 0) {
		ep_status(c, &t);
	} else {
		ep_echo(c, &t);
	}
}

/* After a response is complete: next request, or the end of the connection. */
static void request_finish(struct demo_conn *c)
{
	if (c->ws || c->closed || c->ending)
		return;
	if (!c->keep_alive)
		demo_conn_end(c);
}

static void job_done(struct demo_conn *c)
{
	c->busy = false;
	c->job = DEMO_JOB_NONE;
	request_finish(c);
	demo_conn_process(c);
}

/* A request llhttp refused: answer and close. */
static void bad_request(struct demo_conn *c, llhttp_errno_t e)
{
	int status = c->err_status ? c->err_status : 400;
	c->keep_alive = false;
	c->head = false;
	respond_error(c, status,
		      e == HPE_USER ? reason(status) : llhttp_get_error_reason(&c->parser));
	demo_conn_end(c);
}

/* Parse from in_off; true if a request was answered (more may follow). */
static bool http_step(struct demo_conn *c)
{
	const char *p = c->in + c->in_off;
	llhttp_errno_t e = llhttp_execute(&c->parser, p, c->in_len - c->in_off);
	if (e == HPE_OK) {
		c->in_off = c->in_len;
		return false;
	}
	if (e != HPE_PAUSED && e != HPE_PAUSED_UPGRADE) {
		bad_request(c, e);
		return false;
	}
	c->in_off = (size_t)(llhttp_get_error_pos(&c->parser) - c->in);
	if (e == HPE_PAUSED)
		llhttp_resume(&c->parser);
	else
		c->upgraded = true;
	dispatch(c);
	if (!c->busy)
		request_finish(c);
	return true;
}

void demo_conn_process(struct demo_conn *c)
{
	if (c->processing)
		return;
	c->processing = true;
	while (!c->closed && !c->ending && !c->busy && c->in_off < c->in_len &&
	       c->out_pending < HIGH_WATER) {
		if (!(c->ws ? demo_ws_step(c) : http_step(c)))
			break;
		if (c->upgraded && !c->ws)
			break; /* refused upgrade: the connection is ending */
	}
	c->processing = false;
	if (c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	update_reading(c);
}

static void on_settings_init(void)
{
	llhttp_settings_init(&settings);
	settings.on_message_begin = on_message_begin;
	settings.on_url = on_url;
	settings.on_header_field = on_header_field;
	settings.on_header_value = on_header_value;
	settings.on_headers_complete = on_headers_complete;
	settings.on_body = on_body;
	settings.on_message_complete = on_message_complete;
	for (size_t i = 0; i < sizeof(big_block); i++)
		big_block[i] = alphabet[i % 27];
}

void demo_conn_accept(uv_stream_t *listener)
{
	static bool ready;
	if (!ready) {
		on_settings_init();
		ready = true;
	}
	struct demo_conn *c = sb_xcalloc(1, sizeof(*c));
	sb_buf_init(&c->raw);
	c->sha = EVP_MD_CTX_new();
	if (!c->sha)
		sb_oom();
	uv_tcp_init(listener->loop, &c->tcp);
	uv_timer_init(listener->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	c->next = conns;
	if (conns)
		conns->prev = c;
	conns = c;
	llhttp_init(&c->parser, HTTP_REQUEST, &settings);
	c->parser.data = c;
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
		demo_conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	update_reading(c);
}
