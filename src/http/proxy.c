/*
 * The request path: client connections, strict HTTP/1.1 parsing, routing,
 * header rewriting and signing, upstream connection pools, streaming in both
 * directions with back-pressure, WebSocket tunnels, and the access log.
 *
 * Everything here runs on one serving thread and reads that thread's
 * snapshot reference; nothing reads a file, the database, or takes a lock.
 * Each request allocates from its own pool, freed when it ends.
 */
#include "http/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <sys/socket.h>
#include <limits.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define HIGH_WATER (256 * 1024) /* queued bytes before the other side pauses */
#define READ_CHUNK 65536
#define RESP_HEAD_MAX 65536 /* an upstream's response head, as sent (about) */
/* Fields in one response head: HAProxy allows 101 (tune.http.maxhdr); each
 * costs the request's pool a struct whatever its size, so the byte limit
 * alone let 16,000 empty fields take a megabyte */
#define RESP_FIELDS_MAX 1000
#define RESP_1XX_MAX 32	    /* interim responses before the final one */
#define REQ_FIELDS_MAX 1000 /* fields in a request head (431 beyond) */
#define TRACEPARENT_LEN 55  /* "00-" 32 hex "-" 16 hex "-" 2 hex */
/* Chunk extensions and trailer fields of one request body: the edge drops
 * them, but llhttp reads them, and they count toward no limit
 * (max_body_bytes counts the data): without a bound an endless extension or
 * trailer section held an upstream connection for as long as the client
 * kept sending. Node allows 16 KiB too. Each piece is counted with a byte
 * for its separator, so that bare ";" are counted too. */
#define CHUNK_EXT_MAX 16384
#define CHUNK_EXT_WHY "chunk extensions and trailers over 16 KiB"

typedef struct client client;
typedef struct upconn upconn;

/* What a header is to the edge, found once per message by classify(). */
typedef enum {
	HK_OTHER,
	HK_HOST,
	HK_CONTENT_LENGTH,
	HK_CONNECTION, /* hop-by-hop from here to HK_UPGRADE */
	HK_TRANSFER_ENCODING,
	HK_KEEP_ALIVE,
	HK_PROXY_CONNECTION,
	HK_TE,
	HK_TRAILER,
	HK_UPGRADE,
	HK_EXPECT,
	HK_REQUEST_ID,
	HK_TRACEPARENT,
	HK_ACCEPT,
	HK_FORWARDED, /* Forwarded */
	HK_XFF,	      /* X-Forwarded-For */
	HK_XFP,	      /* X-Forwarded-Proto */
	HK_XFH,	      /* X-Forwarded-Host */
	HK_XF_OTHER,  /* any other X-Forwarded-* */
	HK_SB_VERIFY, /* X-Switchboard-Verify (a proof request) */
	HK_SB_PROOF,  /* X-Switchboard-Verify-Signature, X-Switchboard-Deployment */
	HK_SB_OTHER,  /* any other X-Switchboard-* */
	HK_TENANT,    /* X-Tenant-* */
} hkind;

typedef struct hdr {
	char *name;
	size_t nlen;
	char *value;
	size_t vlen;
	uint8_t kind;	 /* hkind */
	bool conn_named; /* named in a Connection header: hop-by-hop too */
} hdr;

typedef enum {
	C_HEAD,	   /* reading a request head */
	C_WAIT_UP, /* head parsed, waiting for an upstream connection */
	C_BODY,	   /* forwarding the request body */
	C_RESP,	   /* request sent, relaying the response */
	C_TUNNEL,  /* upgraded: raw bytes both ways */
	C_LINGER,  /* last response sent and FIN too; what still arrives is discarded */
	C_CLOSING,
} cstate;

typedef struct req {
	sb_pool *pool;
	sb_snapshot *snap;
	hdr *hdrs;
	size_t nhdrs, caphdrs;
	char *method;
	char *url;
	size_t url_len;
	const char *host; /* routing host (Host header or absolute-form authority) */
	size_t host_len;
	const char *path; /* origin-form path + query as sent upstream */
	size_t path_len;
	int nhost, ncl, nte;
	bool has_cl, chunked, expect_continue, upgrade, is_head, idempotent;
	uint64_t content_length;
	uint64_t body_in; /* body bytes received */
	size_t ext_bytes; /* chunk-extension bytes received (CHUNK_EXT_MAX) */
	bool body_done, head_parsed;
	/* routing */
	sb_route_match m;
	const char *dep_name;
	const char *env_name;
	sb_upstream *up;
	uint64_t max_body;
	const uint8_t *secret, *prev_secret;
	/* X-Switchboard-Verify nonce (switchboard verify), or NULL: the
	 * response then carries the deployment proof (docs/verify.md) */
	const char *verify_nonce;
	size_t verify_len;
	char request_id[130];
	size_t request_id_len, method_len;
	char traceparent[64]; /* TRACEPARENT_LEN characters and a NUL */
	/* response */
	int status;
	uint64_t bytes_out;
	const char *allow;     /* a 405's Allow field (RFC 9110 15.5.6) */
	int64_t start_ms;      /* wall clock: the log's time, the signature's */
	int64_t start_mono_ms; /* monotonic: the log's duration, whatever the wall clock does */
	uint64_t head_wait_ms; /* from the head's first byte to start_ms (the log's) */
	bool resp_started, resp_chunked, resp_done, resp_no_body, resp_close, resp_1xx;
	bool resp_eof; /* the client's response ends when its connection closes */
	/* the upstream connection ends after this response: its Connection
	 * says close, or its framing was faulty (HTTP/1.0 and chunked) */
	bool resp_conn_close;
	/* why a response head was refused, for the 502's message: llhttp puts
	 * "User callback error" in place of a reason a callback sets */
	const char *resp_err;
	int n1xx; /* interim responses so far */
	bool retried;
	hdr *rhdrs;
	size_t nrhdrs, caprhdrs;
	size_t rhead_bytes; /* of the response head so far (RESP_HEAD_MAX) */
	bool validating;    /* dry run over buffered body bytes */
	/* the request's chunk_crlf: bytes still to be checked, and the end of
	 * the bytes the parser is given; req_execute's pause after a chunk
	 * size line, and the last byte it was given */
	int crlf_due;
	const char *in_end;
	bool chunk_pause;
	char last_byte;
	int up_write_err;    /* sending the body upstream failed (<0; see on_req_body) */
	bool last_was_value; /* header callback state */
	bool rlast_was_value;
} req;

struct client {
	uv_tcp_t tcp;
	int fd; /* the socket, for send() (see stream_write) */
	uv_timer_t timer;
	uint64_t deadline; /* loop time the timeout is for (0: none); see client_deadline */
	sb_worker *w;
	client *next, *prev;
	client *inext, *iprev; /* the worker's idle list (see idle_enter) */
	bool idle_listed;
	llhttp_t parser;
	char peer[64];
	bool trusted;
	char *in;
	size_t in_len, in_cap, scan; /* scan: how far the head has been checked */
	size_t read_room;	     /* free bytes a read is given (see client_alloc) */
	cstate state;
	bool reading, keepalive, closing, counted;
	bool in_input;	     /* client_input is on the stack (see finish_request) */
	int handles;	     /* open handles; freed when both closed */
	size_t wq;	     /* bytes queued for writing */
	sb_buf ob;	     /* response bytes gathered during one upstream read */
	bool gather;	     /* cwrite appends to ob instead of writing */
	bool ob_held;	     /* ob is held output, counted in wq (see hold) */
	bool eof;	     /* the client closed its side after sending its request */
	bool eof_framed;     /* the last response ends with the connection */
	size_t linger_left;  /* C_LINGER: bytes still to be discarded */
	uint64_t head_at;    /* loop time the current head began to arrive (0: none yet) */
	uint64_t wait_until; /* loop time the wait for a request ends (see wait_deadline) */
	req *r;
	upconn *u;

	/* a tunnel's half-closes (tunnel_shut): a FIN from the client, from the
	 * upstream, and each passed on to the other side */
	bool tun_c_eof, tun_u_eof, tun_u_shut, tun_c_shut;
};

struct upconn {
	uv_tcp_t tcp;
	int fd; /* the socket once connected, else -1 (see stream_write) */
	uv_connect_t creq;
	uv_timer_t timer;
	sb_worker *w;
	sb_upstream *up;
	client *c; /* attached client; NULL while idle in the pool */
	llhttp_t parser;
	upconn *next, *prev; /* pool list */
	bool connected, reused, closing, reading, idle, got_bytes;
	bool ob_held; /* ob is held output, counted in wq (see hold) */
	/* the response's chunk_crlf: bytes still to be checked, and the end
	 * of the bytes the parser is given */
	int crlf_due;
	const char *rd_end;
	/* line ends llhttp (built loose) does not check (see resp_line_end):
	 * why the parser paused, where the head being read began in this
	 * read (NULL: at its start), whether a head is being read, a CR in
	 * it not followed yet, and the last byte of the read before */
	enum { UP_RUN, UP_HEAD_END, UP_CHUNK_SIZE } pause;
	const char *head_from;
	bool in_head, cr_pending;
	char last_byte;
	int handles;
	size_t wq;
	sb_buf ob;
	uint64_t idle_since; /* loop time it went back to the pool */
};

struct sb_pool_list {
	upconn *head;
};

/* a connection with held output (see hold) */
struct sb_held {
	void *owner;
	bool to_client;
};

static void client_close(client *c);
static void tunnel_shut(client *c);
static void client_input(client *c);
static void up_close(upconn *u);
static void up_release(upconn *u, bool reusable);
static void up_failed(upconn *u, const char *what, int uverr);
static void start_upstream(client *c);
static void send_error(client *c, int status, const char *code, const char *msg);
static void finish_request(client *c);
static bool token_span(const char *p, size_t n);
static bool body_pending(const req *r);

/* ---- small helpers ----------------------------------------------------- */

static uint64_t rng_next(sb_worker *w)
{
	/* xorshift128+: fast ids, seeded from getrandom per thread */
	uint64_t s1 = w->rng[0];
	const uint64_t s0 = w->rng[1];
	w->rng[0] = s0;
	s1 ^= s1 << 23;
	w->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return w->rng[1] + s0;
}

/* nhex random lower-case hex digits (an even number) and a NUL: eight
 * random bytes per step, hex-encoded as the signature is. */
static void hex_random(sb_worker *w, char *out, size_t nhex)
{
	for (size_t i = 0; i < nhex; i += 16) {
		uint64_t v = rng_next(w);
		size_t nbytes = nhex - i < 16 ? (nhex - i) / 2 : 8;
		sb_sign_hex((const uint8_t *)&v, nbytes, out + i, 17);
	}
	out[nhex] = '\0';
}

static bool has_prefix_ci(const char *s, size_t n, const char *p)
{
	size_t pn = strlen(p);
	return n >= pn && strncasecmp(s, p, pn) == 0;
}

static const hdr *find_kind(const hdr *h, size_t n, hkind kind)
{
	for (size_t i = 0; i < n; i++)
		if (h[i].kind == kind)
			return &h[i];
	return NULL;
}

/* Case-insensitive equality of name[0..n) with a lower-case literal of the
 * same length. */
static bool eq_lower(const char *name, const char *lower, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (c != lower[i])
			return false;
	}
	return true;
}

#define IS(lit) (n == sizeof(lit) - 1 && eq_lower(name, lit, n))
#define HAS_PREFIX(lit) (n >= sizeof(lit) - 1 && eq_lower(name, lit, sizeof(lit) - 1))

/* The kind of a header by its name: one pass per header, by length first,
 * where the head used to be searched name by name. */
static hkind classify(const char *name, size_t n)
{
	if (n && (name[0] == 'x' || name[0] == 'X')) {
		if (HAS_PREFIX("x-switchboard-")) {
			if (IS("x-switchboard-verify"))
				return HK_SB_VERIFY;
			if (IS("x-switchboard-verify-signature") || IS("x-switchboard-deployment"))
				return HK_SB_PROOF;
			return HK_SB_OTHER;
		}
		if (HAS_PREFIX("x-tenant-"))
			return HK_TENANT;
		if (HAS_PREFIX("x-forwarded-")) {
			if (IS("x-forwarded-for"))
				return HK_XFF;
			if (IS("x-forwarded-proto"))
				return HK_XFP;
			if (IS("x-forwarded-host"))
				return HK_XFH;
			return HK_XF_OTHER;
		}
		return IS("x-request-id") ? HK_REQUEST_ID : HK_OTHER;
	}
	switch (n) {
	case 2: return IS("te") ? HK_TE : HK_OTHER;
	case 4: return IS("host") ? HK_HOST : HK_OTHER;
	case 6: return IS("expect") ? HK_EXPECT : IS("accept") ? HK_ACCEPT : HK_OTHER;
	case 7: return IS("upgrade") ? HK_UPGRADE : IS("trailer") ? HK_TRAILER : HK_OTHER;
	case 9: return IS("forwarded") ? HK_FORWARDED : HK_OTHER;
	case 10:
		return IS("connection")	  ? HK_CONNECTION
		       : IS("keep-alive") ? HK_KEEP_ALIVE
					  : HK_OTHER;
	case 11: return IS("traceparent") ? HK_TRACEPARENT : HK_OTHER;
	case 14: return IS("content-length") ? HK_CONTENT_LENGTH : HK_OTHER;
	case 16: return IS("proxy-connection") ? HK_PROXY_CONNECTION : HK_OTHER;
	case 17: return IS("transfer-encoding") ? HK_TRANSFER_ENCODING : HK_OTHER;
	default: return HK_OTHER;
	}
}

#undef IS
#undef HAS_PREFIX

static const char *reason_phrase(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
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
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Status";
	}
}

/* "Name: value\r\n", without printf: head building runs per request. */
/* "Name: value\r\n" in one reservation: heads are built from a dozen of
 * these per request. */
static void hdr_line(sb_buf *b, const char *name, size_t nlen, const char *v, size_t vlen)
{
	char *p = sb_buf_put(b, nlen + vlen + 4);
	memcpy(p, name, nlen);
	p[nlen] = ':';
	p[nlen + 1] = ' ';
	memcpy(p + nlen + 2, v, vlen);
	p[nlen + 2 + vlen] = '\r';
	p[nlen + 3 + vlen] = '\n';
}

#define HDR(b, lit, v, vlen) hdr_line((b), lit, sizeof(lit) - 1, (v), (vlen))

static size_t fmt_u64(uint64_t v, char *out)
{
	char tmp[24];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
	return n;
}

static const sb_http_decl *limits(const client *c)
{
	return &c->w->snap->cfg->decl->http;
}

/* Is the peer one of the declared trusted proxies (CIDR list)? */
static bool peer_trusted(const sb_http_decl *h, const struct sockaddr_storage *peer)
{
	for (size_t i = 0; i < h->ntrusted_proxies; i++) {
		const char *cidr = h->trusted_proxies[i];
		const char *slash = strchr(cidr, '/');
		char a[64];
		snprintf(a, sizeof(a), "%.*s", slash ? (int)(slash - cidr) : (int)strlen(cidr),
			 cidr);
		unsigned char net[16];
		const unsigned char *addr;
		size_t alen;
		if (peer->ss_family == AF_INET) {
			if (inet_pton(AF_INET, a, net) != 1)
				continue;
			addr = (const unsigned char *)&((const struct sockaddr_in *)peer)->sin_addr;
			alen = 4;
		} else {
			if (inet_pton(AF_INET6, a, net) != 1)
				continue;
			addr =
			    (const unsigned char *)&((const struct sockaddr_in6 *)peer)->sin6_addr;
			alen = 16;
		}
		uint64_t bits = alen * 8;
		if (slash)
			sb_parse_u64(slash + 1, strlen(slash + 1), alen * 8, &bits);
		bool match = true;
		for (size_t b = 0; b < bits && match; b++) {
			unsigned mask = 0x80u >> (b & 7);
			match = (addr[b / 8] & mask) == (net[b / 8] & mask);
		}
		if (match)
			return true;
	}
	return false;
}

static uint32_t limits_up_idle(const upconn *u);

/* ---- writing with back-pressure ----------------------------------------- */

typedef struct wreq {
	uv_write_t w;
	void *owner;
	bool to_client;
	size_t len;
	char data[];
} wreq;

static void on_client_drained(client *c);
static void on_up_drained(upconn *u);

static void write_done(uv_write_t *w, int status)
{
	wreq *q = (wreq *)w;
	if (q->to_client) {
		client *c = q->owner;
		c->wq -= q->len;
		if (c->wq == 0)
			on_client_drained(c);
	} else {
		upconn *u = q->owner;
		u->wq -= q->len;
		if (u->wq == 0)
			on_up_drained(u);
	}
	free(q);
}

/*
 * Write now if the socket takes it, else queue a copy. Returns <0 on error.
 * fd is the connected socket (-1 while connecting): with nothing queued the
 * bytes go out with send() here, which costs the kernel less than the
 * write() uv_try_write() makes (no VFS layer), on two writes per request.
 * libuv's queue for the stream is empty whenever *wq is 0, as every write
 * to it goes through here.
 */
static int stream_write(uv_stream_t *s, int fd, void *owner, bool to_client, size_t *wq,
			const char *data, size_t len)
{
	if (len == 0)
		return 0;
	if (*wq == 0 && fd >= 0 && s->write_queue_size == 0) {
		ssize_t n;
		do
			n = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n == (ssize_t)len)
			return 0;
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			return -errno;
		}
	}
	wreq *q = sb_xmalloc(sizeof(*q) + len);
	memcpy(q->data, data, len);
	q->owner = owner;
	q->to_client = to_client;
	q->len = len;
	*wq += len;
	uv_buf_t b = uv_buf_init(q->data, (unsigned)len);
	int r = uv_write(&q->w, s, &b, 1, write_done);
	if (r < 0) {
		*wq -= len;
		free(q);
	}
	return r;
}

/*
 * Held output. The response gathered from an upstream read and a request
 * head for an upstream are not written at once but at the end of the
 * loop's pass over the events it was woken for (a check handle), all of
 * them together. Written at once, the first write woke the reader (wrk or
 * the upstream, sharing the other core on a small machine), which then
 * took part of a batch and slept again; held, each reader is woken once per
 * pass and finds the whole batch: with one serving thread, p99 1.12-1.19
 * ms became 0.96-1.03 ms in bench/http_split.py (docs/benchmarks.md). It
 * delays nothing: the loop does not wait for events before the check
 * phase. Held bytes count in wq, so what waits for a connection's output
 * to drain (a close after the response, back-pressure) waits for them as
 * for a queued write; and as with a queued write, an error at the flush is
 * left to the connection's read side to find.
 */
static void hold(sb_worker *w, void *owner, bool to_client)
{
	if (w->nheld == w->held_cap) {
		w->held_cap = w->held_cap ? 2 * w->held_cap : 64;
		w->held = sb_xrealloc(w->held, w->held_cap * sizeof(*w->held));
	}
	w->held[w->nheld++] = (struct sb_held){.owner = owner, .to_client = to_client};
}

/* Can output to this stream be held? Only what would be written at once:
 * nothing queued or held before it, connected, not closing. */
static bool holdable(uv_stream_t *s, int fd, size_t wq, bool closing)
{
	return wq == 0 && fd >= 0 && s->write_queue_size == 0 && !closing &&
	       !uv_is_closing((uv_handle_t *)s);
}

/* Write what is held for this connection (true), or nothing (false). */
static bool write_held(bool to_client, void *owner)
{
	client *c = to_client ? owner : NULL;
	upconn *u = to_client ? NULL : owner;
	bool *held = to_client ? &c->ob_held : &u->ob_held;
	if (!*held)
		return false;
	*held = false;
	sb_buf *ob = to_client ? &c->ob : &u->ob;
	size_t *wq = to_client ? &c->wq : &u->wq;
	uv_stream_t *s = to_client ? (uv_stream_t *)&c->tcp : (uv_stream_t *)&u->tcp;
	int fd = to_client ? c->fd : u->fd;
	*wq -= ob->len;
	/* a closed stream's descriptor may already be another connection's */
	if (fd >= 0 && !uv_is_closing((uv_handle_t *)s))
		(void)stream_write(s, fd, owner, to_client, wq, ob->data, ob->len);
	sb_buf_reset(ob);
	return true;
}

static void release_held(bool to_client, void *owner)
{
	if (!write_held(to_client, owner))
		return;
	if (to_client && ((client *)owner)->wq == 0)
		on_client_drained(owner);
	else if (!to_client && ((upconn *)owner)->wq == 0)
		on_up_drained(owner);
}

static void on_held_flush(uv_check_t *h)
{
	sb_worker *w = h->data;
	/* a drain may start the next request, whose output joins the list */
	for (size_t i = 0; i < w->nheld; i++)
		release_held(w->held[i].to_client, w->held[i].owner);
	w->nheld = 0;
}

static int cflush(client *c)
{
	if (!c->ob.len)
		return 0;
	int r = c->closing ? -1
			   : stream_write((uv_stream_t *)&c->tcp, c->fd, c, true, &c->wq,
					  c->ob.data, c->ob.len);
	sb_buf_reset(&c->ob);
	return r;
}

/* While an upstream read is processed, a response head and the body that
 * came with it are gathered and go out in one write: one syscall and one
 * segment where there would be several. */
static int cwrite(client *c, const char *data, size_t len)
{
	if (c->closing)
		return -1;
	if (c->r)
		c->r->bytes_out += len;
	if (c->ob_held) { /* after what is held */
		sb_buf_add(&c->ob, data, len);
		c->wq += len;
		return 0;
	}
	if (c->gather) {
		sb_buf_add(&c->ob, data, len);
		return c->ob.len >= HIGH_WATER ? cflush(c) : 0;
	}
	return stream_write((uv_stream_t *)&c->tcp, c->fd, c, true, &c->wq, data, len);
}

/* The response gathered during an upstream read: held (see hold) when it
 * would be written at once, else written. */
static void cflush_held(client *c)
{
	if (!c->ob.len || c->ob_held)
		return;
	if (!holdable((uv_stream_t *)&c->tcp, c->fd, c->wq, c->closing)) {
		cflush(c);
		return;
	}
	c->ob_held = true;
	c->wq += c->ob.len;
	hold(c->w, c, true);
}

static int uwrite(upconn *u, const char *data, size_t len)
{
	if (u->closing)
		return -1;
	if (u->ob_held) { /* after what is held */
		sb_buf_add(&u->ob, data, len);
		u->wq += len;
		return 0;
	}
	return stream_write((uv_stream_t *)&u->tcp, u->fd, u, false, &u->wq, data, len);
}

/* A body piece, chunk-encoded when the message is chunked on that side. */
static int write_body(int (*wr)(void *, const char *, size_t), void *o, bool chunked,
		      const char *data, size_t len)
{
	if (!chunked)
		return wr(o, data, len);
	char head[24];
	int n = snprintf(head, sizeof(head), "%zx\r\n", len);
	int r = wr(o, head, (size_t)n);
	if (r == 0)
		r = wr(o, data, len);
	if (r == 0)
		r = wr(o, "\r\n", 2);
	return r;
}

static int cwrite_v(void *o, const char *d, size_t n)
{
	return cwrite(o, d, n);
}

static int uwrite_v(void *o, const char *d, size_t n)
{
	return uwrite(o, d, n);
}

/* The worker's last handles: its loop ends once they are closed. */
static void worker_release(sb_worker *w)
{
	if (uv_is_closing((uv_handle_t *)&w->wake))
		return;
	uv_close((uv_handle_t *)&w->wake, NULL);
	uv_close((uv_handle_t *)&w->held_flush, NULL);
	if (w->log_flush_on) {
		uv_close((uv_handle_t *)&w->log_flush, NULL);
		uv_close((uv_handle_t *)&w->log_retry, NULL);
	}
}

/* ---- access log ------------------------------------------------------- */

/* The length of the well-formed UTF-8 sequence at p (RFC 3629 table 3: no
 * overlong form, no surrogate, nothing past U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		lo = c == 0xe0 ? 0xa0 : 0x80; /* overlong */
		hi = c == 0xed ? 0x9f : 0xbf; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		lo = c == 0xf0 ? 0x90 : 0x80; /* overlong */
		hi = c == 0xf4 ? 0x8f : 0xbf; /* past U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/*
 * A JSON string from bytes that need not be UTF-8: a path is forwarded as
 * sent, and written as it came a byte such as 0xFF made the whole line
 * invalid JSON (RFC 8259 8.1), which log shippers reject or drop. Each byte
 * that does not start a well-formed sequence is written as U+FFFD, as Go's
 * encoding/json (Caddy's logs) does; the rest is escaped as
 * sb_buf_add_json_str escapes.
 */
static void json_str(sb_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	sb_buf_addc(b, '"');
	for (size_t i = 0; i < n;) {
		size_t run = i;
		while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' &&
		       p[run] != '\\')
			run++;
		sb_buf_add(b, s + i, run - i);
		if ((i = run) == n)
			break;
		unsigned char c = p[i];
		size_t sl;
		if (c >= 0x80) {
			if ((sl = utf8_seq(p + i, n - i)))
				sb_buf_add(b, s + i, sl);
			else
				sb_buf_add(b, "\\ufffd", 6);
			i += sl ? sl : 1;
			continue;
		}
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			sb_buf_add(b, e, 2);
		} else {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			sb_buf_add(b, e, 6);
		}
		i++;
	}
	sb_buf_addc(b, '"');
}

/* key is the literal `,"name":` */
static void json_kv(sb_buf *b, const char *key, const char *v, size_t n)
{
	sb_buf_adds(b, key);
	if (v)
		json_str(b, v, n);
	else
		sb_buf_add(b, "null", 4);
}

static void json_u64(sb_buf *b, const char *key, uint64_t v)
{
	char num[24];
	sb_buf_adds(b, key);
	sb_buf_add(b, num, fmt_u64(v, num));
}

static void json_i64(sb_buf *b, const char *key, int64_t v)
{
	if (v >= 0) {
		json_u64(b, key, (uint64_t)v);
		return;
	}
	char num[24];
	sb_buf_adds(b, key);
	sb_buf_addc(b, '-');
	sb_buf_add(b, num, fmt_u64(-(uint64_t)v, num));
}

/* Access-log lines are queued per thread and written before the loop waits
 * for events (the log_flush prepare handle), or once LOG_QUEUE_MAX bytes are
 * queued: one write() for the requests a loop iteration finished instead of
 * one per request (1.3 us of the 16 us a logged request took, by
 * bench/http_split.py --access-log). A line is thus written before its
 * thread next sleeps, and at the latest when the thread exits. */
#define LOG_QUEUE_MAX 65536

/* A pipe, tty or socket (SB_LOG_NONBLOCK, SB_LOG_PIPE, SB_LOG_SOCKET) whose reader does
 * not keep up refuses a write (EAGAIN) instead of stopping the thread: what
 * it did not take stays queued, a backlog written again every
 * LOG_RETRY_MS (new requests or not) until the reader has taken it. Up to
 * LOG_BACKLOG_MAX bytes per thread, a few thousand lines (some seconds of
 * a busy thread's log, or a reader's hiccup), so memory stays bounded
 * however long the reader stalls; lines past it are dropped, counted and
 * reported on stderr, at most once a LOG_REPORT_MS per thread. */
#define LOG_BACKLOG_MAX (1u << 20)
#define LOG_RETRY_MS 20
#define LOG_REPORT_MS 1000

/* Blocking writes of p[0..n): 0, or the errno of the write that failed
 * (*done: the bytes written before it). */
static int log_write(int fd, const char *p, size_t n, size_t *done)
{
	*done = 0;
	while (*done < n) {
		ssize_t wr = write(fd, p + *done, n - *done);
		if (wr < 0 && errno == EINTR)
			continue;
		if (wr <= 0)
			return wr < 0 ? errno : EIO;
		*done += (size_t)wr;
	}
	return 0;
}

static size_t count_lines(const char *p, size_t n)
{
	size_t k = 0;
	for (const char *end = p + n; (p = memchr(p, '\n', (size_t)(end - p))); p++)
		k++;
	return k;
}

static void on_log_retry(uv_timer_t *t);

static void log_retry_arm(sb_worker *w)
{
	uv_timer_t *t = &w->log_retry;
	if (!uv_is_active((uv_handle_t *)t) && !uv_is_closing((uv_handle_t *)t))
		uv_timer_start(t, on_log_retry, LOG_RETRY_MS, LOG_RETRY_MS);
}

/* A write failed for good (disk full, a file-size limit, a pipe whose
 * reader is gone): the lines in p[0..n) are lost, the one cut short among
 * them. Counted and reported on stderr as the drops are (nginx alerts when
 * its access-log write fails); the timer makes the report without waiting
 * for another request. */
static void log_lost(sb_worker *w, const char *p, size_t n, int err)
{
	w->log_lost += count_lines(p, n);
	w->log_lost_err = err;
	log_retry_arm(w);
}

/* The queue to a log that may refuse it (SB_LOG_NONBLOCK, SB_LOG_PIPE, SB_LOG_SOCKET):
 * what is written leaves the queue, what the reader refuses stays. */
static void log_flush_nowait(sb_worker *w)
{
	sb_edge *e = w->edge;
	const char *start = w->logq.data, *p = start, *end = p + w->logq.len;
	bool full = false;
	/* A pipe takes a write of PIPE_BUF bytes or less whole or not at all
	 * (pipe(7)): threads with only such lines to write need not take
	 * turns, they share the lock. A tty or a socket may take part of any
	 * line, a pipe part of a longer one (and let another thread's write
	 * in before its rest): the lock alone, once per flush. */
	bool turns = e->access_mode != SB_LOG_PIPE || w->log_long;
	if (turns)
		pthread_rwlock_wrlock(&e->access_lock);
	else
		pthread_rwlock_rdlock(&e->access_lock);
	/* another thread's line went out in part: the rest of it first */
	if (e->access_owner >= 0 && e->access_owner != w->id)
		full = true;
	while (!full && p < end) {
		/* whole lines, PIPE_BUF at most: a pipe takes all or nothing */
		size_t n = sb_line_chunk(p, (size_t)(end - p), PIPE_BUF);
		ssize_t wr = sb_edge_log_out(e->access_fd, e->access_mode, p, n);
		if (wr < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			full = true;
		} else if (wr <= 0) {
			log_lost(w, p, (size_t)(end - p), wr < 0 ? errno : EIO);
			p = end;
			if (turns)
				e->access_owner = -1;
		} else {
			p += wr;
			/* a line cut short is ended before any other thread writes */
			if (turns)
				e->access_owner = p[-1] == '\n' ? -1 : w->id;
		}
	}
	pthread_rwlock_unlock(&e->access_lock);
	size_t done = (size_t)(p - start);
	if (done == w->logq.len) {
		sb_buf_reset(&w->logq);
		w->log_long = false;
	} else if (done) {
		memmove(w->logq.data, p, w->logq.len - done);
		w->logq.len -= done;
		w->logq.data[w->logq.len] = '\0';
	}
	w->log_blocked = full;
	if (full)
		log_retry_arm(w);
}

static void log_flush(sb_worker *w)
{
	sb_edge *e = w->edge;
	if (e->access_mode >= SB_LOG_NONBLOCK) {
		log_flush_nowait(w);
		return;
	}
	const char *p = w->logq.data, *end = p + w->logq.len;
	while (p < end) {
		size_t n = (size_t)(end - p);
		/* other threads write to the same pipe, which keeps a write
		 * whole only up to PIPE_BUF bytes: whole lines, PIPE_BUF at most */
		if (e->access_mode != SB_LOG_FILE)
			n = sb_line_chunk(p, n, PIPE_BUF);
		size_t done;
		int err = log_write(e->access_fd, p, n, &done);
		if (err) {
			log_lost(w, p + done, (size_t)(end - p) - done, err);
			break;
		}
		p += n;
	}
	sb_buf_reset(&w->logq);
	w->log_long = false;
}

/* The lines dropped and lost since the last report, on stderr; at most
 * once a LOG_REPORT_MS but when forced (the thread's end). */
static void log_report(sb_worker *w, bool force)
{
	int64_t now = sb_edge_mono_ms();
	if ((!w->log_dropped && !w->log_lost) ||
	    (!force && now - w->log_reported_ms < LOG_REPORT_MS))
		return;
	if (w->log_dropped)
		sb_edge_log("warning",
			    "access log: the reader is not keeping up: %" PRIu64 " lines dropped",
			    w->log_dropped);
	if (w->log_lost) {
		char why[128];
		sb_edge_log("error", "access log: write failed (%s): %" PRIu64 " lines lost",
			    strerror_r(w->log_lost_err, why, sizeof(why)), w->log_lost);
	}
	w->log_dropped = w->log_lost = 0;
	w->log_reported_ms = now;
}

static void on_log_retry(uv_timer_t *t)
{
	sb_worker *w = t->data;
	if (w->logq.len)
		log_flush(w);
	log_report(w, false);
	if (!w->logq.len && !w->log_dropped && !w->log_lost)
		uv_timer_stop(t);
}

static void on_log_flush(uv_prepare_t *h)
{
	sb_worker *w = h->data;
	/* a backlog waits for log_retry: no write a pass the reader refuses */
	if (w->logq.len && !w->log_blocked)
		log_flush(w);
}

void sb_proxy_worker_start(sb_worker *w)
{
	uv_check_init(&w->loop, &w->held_flush);
	w->held_flush.data = w;
	uv_check_start(&w->held_flush, on_held_flush);
	uv_unref((uv_handle_t *)&w->held_flush); /* it never keeps the loop alive */
	sb_buf_init(&w->logq);
	if (w->edge->access_fd < 0)
		return;
	uv_prepare_init(&w->loop, &w->log_flush);
	w->log_flush.data = w;
	uv_prepare_start(&w->log_flush, on_log_flush);
	uv_unref((uv_handle_t *)&w->log_flush); /* it never keeps the loop alive */
	uv_timer_init(&w->loop, &w->log_retry);
	w->log_retry.data = w; /* started by log_retry_arm */
	uv_unref((uv_handle_t *)&w->log_retry);
	w->log_flush_on = true;
}

/* The thread's end: the backlog's last try, and what it could not write
 * counted with the rest in a last report. */
static void log_final(sb_worker *w)
{
	if (w->logq.len)
		log_flush(w);
	if (w->logq.len) {
		w->log_dropped += count_lines(w->logq.data, w->logq.len);
		sb_edge *e = w->edge;
		pthread_rwlock_wrlock(&e->access_lock);
		if (e->access_owner == w->id)
			e->access_owner = -1; /* its line stays cut short */
		pthread_rwlock_unlock(&e->access_lock);
		sb_buf_reset(&w->logq);
		w->log_long = false;
	}
	log_report(w, true);
}

static void access_log(client *c)
{
	req *r = c->r;
	sb_edge *e = c->w->edge;
	if (e->access_fd < 0)
		return;
	sb_buf *b = &c->w->logq;
	size_t start = b->len;
	if (start >= LOG_BACKLOG_MAX) { /* only a backlog grows so far */
		c->w->log_dropped++;
		log_retry_arm(c->w); /* running: it reports the drop */
		return;
	}
	/* the request began with the first byte of its head, as nginx's
	 * $request_time counts: a head sent slowly (a 408 above all) shows */
	int64_t t0 = r->start_ms - (int64_t)r->head_wait_ms;
	/* the date and time change once a second: formatted then, per thread */
	static _Thread_local int64_t ts_sec = -1;
	static _Thread_local char ts[32];
	int64_t sec = t0 / 1000;
	if (sec != ts_sec) {
		time_t t = (time_t)sec;
		struct tm tm;
		gmtime_r(&t, &tm);
		if (!strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm))
			ts[0] = '\0';
		ts_sec = sec;
	}
	int ms = (int)(t0 % 1000);
	char frac[6] = {
	    '.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10), 'Z',
	    '"'};
	sb_buf_add(b, "{\"time\":\"", 9);
	sb_buf_adds(b, ts);
	sb_buf_add(b, frac, sizeof(frac));
	json_kv(b, ",\"request_id\":", r->request_id, strlen(r->request_id));
	json_kv(b, ",\"client\":", c->peer, strlen(c->peer));
	json_kv(b, ",\"host\":", r->host, r->host ? r->host_len : 0);
	json_kv(b, ",\"method\":", r->method, r->method ? r->method_len : 0);
	json_kv(b, ",\"path\":", r->path ? r->path : r->url,
		r->path	 ? r->path_len
		: r->url ? r->url_len
			 : 0);
	json_i64(b, ",\"status\":", r->status);
	json_u64(b, ",\"bytes_in\":", r->body_in);
	json_u64(b, ",\"bytes_out\":", r->bytes_out);
	json_kv(b, ",\"deployment\":", r->dep_name, r->dep_name ? strlen(r->dep_name) : 0);
	json_kv(b, ",\"environment\":", r->env_name, r->env_name ? strlen(r->env_name) : 0);
	json_kv(b, ",\"upstream\":", r->up ? r->up->url : NULL, r->up ? strlen(r->up->url) : 0);
	json_kv(b, ",\"tenant\":", r->m.tenant, r->m.tenant ? strlen(r->m.tenant) : 0);
	/* on the monotonic clock: a step of the wall clock (NTP, an operator)
	 * in the middle of a request would log a negative or an hour-long one */
	json_i64(b, ",\"duration_ms\":",
		 sb_edge_mono_ms() - r->start_mono_ms + (int64_t)r->head_wait_ms);
	sb_buf_add(b, "}\n", 2);
	if (b->len - start > PIPE_BUF)
		c->w->log_long = true; /* a pipe may take part of it (log_flush_nowait) */
	if (b->len >= LOG_QUEUE_MAX && !c->w->log_blocked)
		log_flush(c->w);
}

/* ---- requests ----------------------------------------------------------- */

static req *req_new(client *c)
{
	/* A request that starts after a publish uses it even if this thread
	 * has not run its wake-up yet: one atomic load, and the lock only once
	 * per change. So a change is served when the command that made it
	 * returns. */
	sb_proxy_worker_refresh(c->w);
	sb_pool *pool = sb_pool_new(8192);
	req *r = sb_pool_alloc(pool, sizeof(*r));
	r->pool = pool;
	r->snap = c->w->snap;
	sb_snapshot_ref(r->snap);
	r->start_ms = sb_edge_now_ms();
	r->start_mono_ms = sb_edge_mono_ms();
	if (c->head_at) {
		uint64_t now = uv_now(&c->w->loop);
		r->head_wait_ms = now > c->head_at ? now - c->head_at : 0;
	}
	return r;
}

static void req_free(req *r)
{
	if (!r)
		return;
	sb_snapshot_unref(r->snap);
	sb_pool_free(r->pool);
}

/*
 * Append a span to *s (length *n): the span itself when *s is empty, *s
 * grown in place when the span continues it (a message parsed in one
 * buffer), else a copy of both in the pool (a head split across reads).
 */
static void span_add(sb_pool *p, char **s, size_t *n, const char *at, size_t len)
{
	if (!*s || (*n == 0 && len)) {
		*s = (char *)at;
		*n = len;
		return;
	}
	if (*s + *n == at) {
		*n += len;
		return;
	}
	char *nv = sb_pool_alloc(p, *n + len + 1);
	memcpy(nv, *s, *n);
	memcpy(nv + *n, at, len);
	nv[*n + len] = '\0';
	*s = nv;
	*n += len;
}

/* Header spans point into the bytes parsed (see span_add). */
static void add_hdr(sb_pool *p, hdr **arr, size_t *n, size_t *cap, bool *last_value, const char *at,
		    size_t len, bool is_value)
{
	if (!is_value && (!*last_value && *n > 0)) {
		/* continuation of a field name split across reads */
		hdr *h = &(*arr)[*n - 1];
		span_add(p, &h->name, &h->nlen, at, len);
		return;
	}
	if (!is_value) {
		if (*n == *cap) {
			size_t ncap = *cap ? *cap * 2 : 16;
			hdr *na = sb_pool_alloc(p, ncap * sizeof(hdr));
			if (*n)
				memcpy(na, *arr, *n * sizeof(hdr));
			*arr = na;
			*cap = ncap;
		}
		hdr *h = &(*arr)[(*n)++];
		h->name = (char *)at;
		h->nlen = len;
		h->value = (char *)at + len; /* empty until a value span comes */
		h->vlen = 0;
		*last_value = false;
		return;
	}
	hdr *h = &(*arr)[*n - 1];
	span_add(p, &h->value, &h->vlen, at, len);
	*last_value = true;
}

/* Response header spans that still point into the read buffer, which the
 * next read overwrites, are copied into the request's pool. */
static void pin_hdrs(sb_pool *p, hdr *hs, size_t n, const char *base, size_t len)
{
	for (size_t i = 0; i < n; i++) {
		hdr *h = &hs[i];
		if (h->name >= base && h->name < base + len)
			h->name = sb_pool_strndup(p, h->name, h->nlen);
		if (h->value >= base && h->value <= base + len)
			h->value = sb_pool_strndup(p, h->value, h->vlen);
	}
}

/*
 * The CRLF that ends a chunk's data, checked from p up to end; *due counts
 * its bytes not checked yet (2 when the data has just ended), what is left
 * for the next read. llhttp 8 (built loose) skips those two bytes without
 * looking at them: a chunk longer than its size ("5" CRLF "helloXX0" CRLF
 * CRLF) made a message end where a strict parser finds no end (nginx
 * refuses it), in a request as in a response. False on any other byte.
 */
static bool chunk_crlf(int *due, const char *p, const char *end)
{
	for (; *due && p < end; (*due)--)
		if (*p++ != "\r\n"[2 - *due])
			return false;
	return true;
}

/* llhttp callbacks, request side */

static int on_method(llhttp_t *p, const char *at, size_t len)
{
	client *c = p->data;
	req *r = c->r;
	span_add(r->pool, &r->method, &r->method_len, at, len);
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	client *c = p->data;
	req *r = c->r;
	span_add(r->pool, &r->url, &r->url_len, at, len);
	return 0;
}

/*
 * Header callbacks after the head are a chunked body's trailer fields: they
 * are dropped (RFC 9110 6.5.1 lets a proxy discard them). Kept, they would
 * land in the header list after it was classified, pointing into the read
 * buffer rather than the head's copy, and go upstream as headers.
 */
static int on_req_field(llhttp_t *p, const char *at, size_t len)
{
	client *c = p->data;
	req *r = c->r;
	if (r->head_parsed) /* a trailer: dropped, counted */
		return (r->ext_bytes += len + 1) > CHUNK_EXT_MAX ? HPE_USER : 0;
	add_hdr(r->pool, &r->hdrs, &r->nhdrs, &r->caphdrs, &r->last_was_value, at, len, false);
	return 0;
}

static int on_req_value(llhttp_t *p, const char *at, size_t len)
{
	client *c = p->data;
	req *r = c->r;
	if (r->head_parsed)
		return (r->ext_bytes += len + 1) > CHUNK_EXT_MAX ? HPE_USER : 0;
	add_hdr(r->pool, &r->hdrs, &r->nhdrs, &r->caphdrs, &r->last_was_value, at, len, true);
	return 0;
}

static int on_req_headers_complete(llhttp_t *p)
{
	client *c = p->data;
	req *r = c->r;
	/* The spans point into the pool's copy of the head, which the parser
	 * has now passed: each ends with a NUL there for the C-string uses
	 * (method comparisons, logs). */
	if (r->method)
		r->method[r->method_len] = '\0';
	if (r->url)
		r->url[r->url_len] = '\0';
	for (size_t i = 0; i < r->nhdrs; i++) {
		r->hdrs[i].name[r->hdrs[i].nlen] = '\0';
		r->hdrs[i].value[r->hdrs[i].vlen] = '\0';
	}
	r->head_parsed = true;
	r->has_cl = (p->flags & F_CONTENT_LENGTH) != 0;
	r->chunked = (p->flags & F_CHUNKED) != 0;
	r->content_length = r->has_cl ? p->content_length : 0;
	/* an upgrade with a body is forwarded as the plain request it also is
	 * (Upgrade is hop-by-hop): the edge sent its head with the body's
	 * length and never the body, which waited to be read as the next
	 * request while the upstream waited for it. llhttp reads the body
	 * before it stops for the upgrade; CONNECT is refused (handle_head). */
	r->upgrade = p->upgrade != 0 && !r->chunked && r->content_length == 0;
	/* RFC 9110 7.8: Upgrade in an HTTP/1.0 request is ignored (it went
	 * upstream as an HTTP/1.1 upgrade, which the service would switch) */
	if (p->http_major == 1 && p->http_minor == 0)
		r->upgrade = false;
	return 0;
}

/* Chunk extensions are dropped (the body goes upstream re-chunked), only
 * counted: see CHUNK_EXT_MAX. */
static int on_req_chunk_ext(llhttp_t *p, const char *at, size_t len)
{
	client *c = p->data;
	req *r = c->r;
	(void)at;
	if ((r->ext_bytes += len + 1) > CHUNK_EXT_MAX)
		return HPE_USER;
	return 0;
}

static int on_req_body(llhttp_t *p, const char *at, size_t len)
{
	client *c = p->data;
	req *r = c->r;
	r->body_in += len;
	if ((p->flags & F_CHUNKED) && p->content_length == 0) {
		/* the chunk's data is complete: its CRLF follows, checked before
		 * the data goes upstream */
		r->crlf_due = 2;
		if (!chunk_crlf(&r->crlf_due, at + len, r->in_end))
			return HPE_USER;
	}
	if (r->validating) /* counted too: see handle_head */
		return r->body_in > r->max_body ? HPE_USER : 0;
	if (r->body_in > r->max_body)
		return HPE_USER; /* checked by the caller: 413 */
	if (c->u) {
		/* the upstream closed or reset its connection, its read side
		 * not told yet: the caller makes that the upstream's failure */
		int wr = write_body(uwrite_v, c->u, r->chunked, at, len);
		if (wr < 0) {
			r->up_write_err = wr;
			return HPE_USER;
		}
	}
	return 0;
}

static int on_req_complete(llhttp_t *p)
{
	client *c = p->data;
	req *r = c->r;
	if (r->validating)
		return HPE_PAUSED;
	r->body_done = true;
	/* a chunked body's last chunk goes upstream once its end is checked
	 * (client_input_run). Stop here: the next pipelined request waits for
	 * this response */
	return HPE_PAUSED;
}

static int on_req_chunk_header(llhttp_t *p)
{
	((client *)p->data)->r->chunk_pause = true;
	return HPE_PAUSED;
}

/*
 * llhttp_execute over n bytes of a request body at p, with the line ends
 * llhttp 8 (built loose) does not check: it takes a CR and any byte after
 * it for the end of a chunk size line ("5\rXhello") or of the trailer
 * section ("0\r\n\rX"), where nginx answers 400, so that a proxy in front
 * that reads them its own way would not agree on where the body ends. The
 * parser pauses after each chunk size line, and at the message's end, for
 * the byte taken as the LF; the CRLF after a chunk's data is chunk_crlf's.
 * Returns as llhttp_execute does, HPE_USER for a line end refused.
 */
static llhttp_errno_t req_execute(llhttp_t *parser, req *r, const char *p, size_t n)
{
	const char *base = p, *end = p + n;
	llhttp_errno_t err;
	r->in_end = end;
	if (r->crlf_due && !chunk_crlf(&r->crlf_due, p, end))
		return HPE_USER;
	for (;;) {
		err = llhttp_execute(parser, p, (size_t)(end - p));
		if (err != HPE_PAUSED || !r->chunk_pause)
			break;
		r->chunk_pause = false;
		p = llhttp_get_error_pos(parser);
		if ((p > base ? p[-1] : r->last_byte) != '\n')
			return HPE_USER;
		llhttp_resume(parser);
	}
	if (err == HPE_PAUSED && (parser->flags & F_CHUNKED)) {
		const char *pos = llhttp_get_error_pos(parser);
		if ((pos > base ? pos[-1] : r->last_byte) != '\n') {
			r->body_done = false;
			err = HPE_USER;
		}
	}
	if (n)
		r->last_byte = end[-1];
	return err;
}

/* llhttp callbacks, response side */

/* Response trailers (after the final head) are dropped too: the body is
 * relayed with its own framing, and a chunked one ends with an empty trailer
 * section. */
static int on_resp_field(llhttp_t *p, const char *at, size_t len)
{
	upconn *u = p->data;
	req *r = u->c->r;
	if (r->resp_started)
		return 0;
	/* a new field (not the rest of a name split across reads) is counted
	 * with its ": " and CRLF, so that the limit is on the head as sent */
	bool fresh = r->rlast_was_value || r->nrhdrs == 0;
	if (fresh && r->nrhdrs >= RESP_FIELDS_MAX) {
		r->resp_err = "a response head with more than 1000 fields";
		return -1;
	}
	if ((r->rhead_bytes += len + (fresh ? 4 : 0)) > RESP_HEAD_MAX) {
		/* a broken upstream does not take the edge's memory: 502 */
		r->resp_err = "a response head over 64 KiB";
		return -1;
	}
	add_hdr(r->pool, &r->rhdrs, &r->nrhdrs, &r->caprhdrs, &r->rlast_was_value, at, len, false);
	return 0;
}

static int on_resp_value(llhttp_t *p, const char *at, size_t len)
{
	upconn *u = p->data;
	req *r = u->c->r;
	if (r->resp_started)
		return 0;
	if ((r->rhead_bytes += len) > RESP_HEAD_MAX) {
		r->resp_err = "a response head over 64 KiB";
		return -1;
	}
	add_hdr(r->pool, &r->rhdrs, &r->nrhdrs, &r->caprhdrs, &r->rlast_was_value, at, len, true);
	return 0;
}

static bool hop_by_hop(const hdr *h)
{
	return (h->kind >= HK_CONNECTION && h->kind <= HK_UPGRADE) || h->conn_named;
}

/* "close" as a word of a field value, words being split at commas and
 * white space (CR and LF included: what a folded line leaves). */
/* Optional whitespace around list elements and parameters (RFC 9110 5.6.3). */
static bool ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

/*
 * The next element of the list in v[*k..n), elements ending at sep (',' in
 * a field's list, ';' between parameters): [*s, *e) without the whitespace
 * around it, possibly empty (RFC 9110 5.6.1: skipped by the caller); *k
 * goes past its separator. False when nothing is left.
 */
static bool list_next(const char *v, size_t n, size_t *k, char sep, size_t *s, size_t *e)
{
	size_t i = *k;
	if (i >= n)
		return false;
	while (i < n && ows(v[i]))
		i++;
	*s = i;
	while (i < n && v[i] != sep)
		i++;
	*k = i + 1;
	while (i > *s && ows(v[i - 1]))
		i--;
	*e = i;
	return true;
}

static bool has_close_word(const char *v, size_t n)
{
	for (size_t k = 0; k < n;) {
		while (k < n &&
		       (v[k] == ',' || v[k] == ' ' || v[k] == '\t' || v[k] == '\r' || v[k] == '\n'))
			k++;
		size_t ts = k;
		while (k < n && !(v[k] == ',' || v[k] == ' ' || v[k] == '\t' || v[k] == '\r' ||
				  v[k] == '\n'))
			k++;
		if (k - ts == 5 && strncasecmp(v + ts, "close", 5) == 0)
			return true;
	}
	return false;
}

/*
 * Classify a message's headers, and mark those a Connection header names
 * (hop-by-hop too, RFC 9110 7.6.1). Runs once per head, when it is complete.
 * Returns whether a Connection field has the word close.
 */
static bool classify_all(hdr *hs, size_t n)
{
	bool has_conn = false, close = false;
	for (size_t i = 0; i < n; i++) {
		hs[i].kind = (uint8_t)classify(hs[i].name, hs[i].nlen);
		hs[i].conn_named = false;
		has_conn |= hs[i].kind == HK_CONNECTION;
	}
	if (!has_conn)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (hs[i].kind != HK_CONNECTION)
			continue;
		close |= has_close_word(hs[i].value, hs[i].vlen);
		const char *v = hs[i].value;
		size_t k = 0, ts, te;
		while (list_next(v, hs[i].vlen, &k, ',', &ts, &te)) {
			for (size_t j = 0; te > ts && j < n; j++)
				if (hs[j].nlen == te - ts &&
				    strncasecmp(hs[j].name, v + ts, te - ts) == 0)
					hs[j].conn_named = true;
		}
	}
	return close;
}

/* The deployment proof for switchboard verify: which deployment this
 * response comes from, signed with that deployment's secret over the
 * client's nonce, host and path. Only on requests that asked for it. */
static void add_proof(req *r, sb_buf *b)
{
	char host[256], sig[SB_PROOF_HEADER_LEN];
	int hn = sb_route_host_normalize(r->host, r->host_len, host, sizeof(host));
	if (hn < 0 || !r->secret)
		return;
	sb_proof_fields f = {
	    .nonce = {r->verify_nonce, r->verify_len},
	    .deployment = {r->dep_name, strlen(r->dep_name)},
	    .host = {host, (size_t)hn},
	    .path = {r->path, r->path_len},
	};
	sb_sign_key key = {r->secret, SB_SIGN_MAC_LEN};
	int sl = sb_proof_header(&f, &key, sig, sizeof(sig));
	if (sl < 0)
		return;
	HDR(b, SB_PROOF_DEPLOYMENT_HEADER, r->dep_name, strlen(r->dep_name));
	HDR(b, SB_PROOF_HEADER, sig, (size_t)sl);
}

/*
 * A response body in a transfer coding other than chunked, which is the
 * only one the edge decodes: relayed, it would reach the client as the
 * content, its coding gone with the hop-by-hop Transfer-Encoding field. The
 * upstream was never offered another (TE is not forwarded, RFC 9112 7.4),
 * so such a response is a 502, as nginx makes it. Chunked twice is refused
 * too (RFC 9112 7: chunked is applied once), and so is a folded value,
 * which llhttp does not read as chunked.
 */
static bool resp_coding_unsupported(const hdr *hs, size_t n)
{
	int nte = 0;
	bool chunked = false;
	for (size_t i = 0; i < n; i++) {
		if (hs[i].kind != HK_TRANSFER_ENCODING)
			continue;
		size_t vn = hs[i].vlen;
		while (vn && (hs[i].value[vn - 1] == ' ' || hs[i].value[vn - 1] == '\t'))
			vn--;
		nte++;
		chunked = vn == 7 && strncasecmp(hs[i].value, "chunked", 7) == 0;
	}
	return nte > 1 || (nte == 1 && !chunked);
}

/* A 103 Early Hints head to the client, its hop-by-hop fields left out. */
static void relay_early_hints(client *c, req *r)
{
	classify_all(r->rhdrs, r->nrhdrs);
	sb_buf *b = &c->w->scratch;
	sb_buf_reset(b);
	sb_buf_adds(b, "HTTP/1.1 103 Early Hints\r\n");
	for (size_t i = 0; i < r->nrhdrs; i++)
		if (!hop_by_hop(&r->rhdrs[i]) && r->rhdrs[i].kind != HK_CONTENT_LENGTH)
			hdr_line(b, r->rhdrs[i].name, r->rhdrs[i].nlen, r->rhdrs[i].value,
				 r->rhdrs[i].vlen);
	sb_buf_add(b, "\r\n", 2);
	cwrite(c, b->data, b->len);
}

/*
 * The response head is complete: relay it with the edge's framing. The
 * return value tells whether a body follows (1: none), -1 a head that is
 * refused (r->resp_err says why). Called by resp_line_end.
 */
static int resp_head(upconn *u)
{
	llhttp_t *p = &u->parser;
	client *c = u->c;
	req *r = c->r;
	int status = p->status_code;
	/* llhttp reads any HTTP/d.d status line; an upstream asked in HTTP/1.1
	 * that answers in another major version is not speaking it: a 502 */
	if (p->http_major != 1) {
		r->resp_err = "a response in an HTTP version other than 1.x";
		return -1;
	}
	/* llhttp reads any number up to 999 (leading zeros, "20", "000"):
	 * the edge writes the status line itself, and a status outside the
	 * classes HTTP defines (RFC 9110 15) is not passed on */
	if (status < 100 || status > 599) {
		r->resp_err = "a response status outside 100-599";
		return -1;
	}
	/* llhttp (loose) takes names with a space, a trailing space or none
	 * at all (" X: v", "X A: v", ": v"), which would reach the client as
	 * they came (RFC 9112 5.1: a proxy removes whitespace before the
	 * colon, or refuses): a 502, as nginx makes it */
	for (size_t i = 0; i < r->nrhdrs; i++)
		if (r->rhdrs[i].nlen == 0 || !token_span(r->rhdrs[i].name, r->rhdrs[i].nlen)) {
			r->resp_err = "a response field name that is not a token";
			return -1;
		}
	if (status >= 100 && status < 200 && status != 101) {
		/* interim responses: we answered Expect ourselves; others are
		 * dropped, but for 103 Early Hints (RFC 8297), which an HTTP/1.1
		 * client gets as sent, less the hop-by-hop fields (a 1xx to an
		 * HTTP/1.0 client is not allowed: RFC 9110 15.2). A 1xx ends at
		 * its empty line whatever its fields say (RFC 9112 6.3); llhttp 8
		 * would read a body by its framing, out of the final response */
		/* each costs the request's pool its fields: a bound, as the
		 * final head has */
		bool over = ++r->n1xx > RESP_1XX_MAX;
		if (!over && status == 103 && c->parser.http_minor >= 1)
			relay_early_hints(c, r);
		r->nrhdrs = 0;
		r->rhead_bytes = 0;
		r->resp_1xx = true;
		if (over) {
			r->resp_err = "more than 32 interim (1xx) responses";
			return -1;
		}
		return 1;
	}
	r->resp_1xx = false;
	if (status == 101 && !r->upgrade) {
		/* switching protocols nobody asked for: a 502 */
		r->resp_err = "a 101 to a request that asked for no upgrade";
		return -1;
	}
	bool upgrade = status == 101 && r->upgrade;
	bool no_body = r->is_head || status == 204 || status == 304 || upgrade;
	/* llhttp finds "close" in a Connection field only where the field is
	 * not folded: "keep-alive" CRLF " close" would keep a connection the
	 * upstream is closing. Any "close" word in one ends its reuse. */
	r->resp_conn_close = classify_all(r->rhdrs, r->nrhdrs);
	/* RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty
	 * framing; the connection is closed after it (a 1.0 server that does
	 * not know chunked ends its body with the connection) */
	if (p->http_minor == 0 && (p->flags & F_TRANSFER_ENCODING))
		r->resp_conn_close = true;
	/* a 101 names the protocol it switches to (RFC 9110 7.8): the edge
	 * does not make one up */
	if (upgrade && !find_kind(r->rhdrs, r->nrhdrs, HK_UPGRADE)) {
		r->resp_err = "a 101 without Upgrade";
		return -1;
	}
	if (!no_body && resp_coding_unsupported(r->rhdrs, r->nrhdrs)) {
		r->resp_err = "a transfer coding other than chunked";
		return -1;
	}
	r->status = status;
	r->resp_started = true;
	r->resp_no_body = no_body;
	bool up_cl = (p->flags & F_CONTENT_LENGTH) != 0;
	r->resp_chunked = !r->resp_no_body && !up_cl;
	if (r->resp_chunked && (!c->keepalive || c->parser.http_minor == 0))
		r->resp_chunked = false; /* close-delimited to a closing or 1.0 client */
	if (!c->keepalive || atomic_load(&c->w->edge->stopping))
		r->resp_close = true;

	sb_buf *b = &c->w->scratch;
	sb_buf_reset(b);
	{
		char num[24];
		const char *rp = reason_phrase(status);
		sb_buf_add(b, "HTTP/1.1 ", 9);
		sb_buf_add(b, num, fmt_u64((uint64_t)status, num));
		sb_buf_addc(b, ' ');
		sb_buf_add(b, rp, strlen(rp));
		sb_buf_add(b, "\r\n", 2);
	}
	bool has_rid = false;
	for (size_t i = 0; i < r->nrhdrs; i++) {
		hdr *h = &r->rhdrs[i];
		if (hop_by_hop(h))
			continue;
		if (h->kind == HK_CONTENT_LENGTH)
			continue; /* the edge's own, below */
		if (r->verify_nonce && h->kind == HK_SB_PROOF)
			continue; /* only the edge's own proof goes back */
		has_rid |= h->kind == HK_REQUEST_ID;
		hdr_line(b, h->name, h->nlen, h->value, h->vlen);
	}
	if (!has_rid)
		HDR(b, "X-Request-Id", r->request_id, r->request_id_len);
	if (r->verify_nonce)
		add_proof(r, b);
	/* The body's length, as llhttp read it, written by the edge: the
	 * upstream's field may be named in its Connection header, and dropped
	 * with the hop-by-hop fields it would leave the client a body without
	 * an end on a kept-alive connection. A 304 or the answer to a HEAD
	 * keeps it (the length a GET would get); a 204 never has one (RFC 9110
	 * 8.6), nor does a 101. */
	if (up_cl && status != 204 && !upgrade) {
		char num[24];
		HDR(b, "Content-Length", num, fmt_u64(p->content_length, num));
	}
	if (upgrade) {
		const hdr *uh = find_kind(r->rhdrs, r->nrhdrs, HK_UPGRADE);
		sb_buf_addf(b, "Connection: Upgrade\r\nUpgrade: %.*s\r\n", (int)uh->vlen,
			    uh->value);
	} else {
		if (r->resp_chunked)
			sb_buf_adds(b, "Transfer-Encoding: chunked\r\n");
		r->resp_eof = !up_cl && !r->resp_chunked && !r->resp_no_body;
		if (r->resp_eof)
			r->resp_close = true;
		sb_buf_adds(b,
			    r->resp_close ? "Connection: close\r\n" : "Connection: keep-alive\r\n");
	}
	sb_buf_add(b, "\r\n", 2);
	cwrite(c, b->data, b->len);
	r->nrhdrs = 0; /* done with (trailers are not collected) */
	/* The answer to a HEAD, a 204 and a 304 end at their empty line
	 * whatever their Content-Length or Transfer-Encoding say (RFC 9112
	 * 6.3): llhttp 8 would otherwise wait for that body, or relay the next
	 * response's bytes as one the client does not expect. */
	return r->resp_no_body ? 1 : 0;
}

/* The parser pauses where a head ends and after each chunk size line,
 * so that resp_line_end can look at the bytes it took as line ends. */
static int on_resp_headers_complete(llhttp_t *p)
{
	((upconn *)p->data)->pause = UP_HEAD_END;
	return HPE_PAUSED;
}

static int on_resp_chunk_header(llhttp_t *p)
{
	((upconn *)p->data)->pause = UP_CHUNK_SIZE;
	return HPE_PAUSED;
}

/* Is every CR in [p, end) followed by an LF (u->cr_pending: the CR that
 * ended the bytes before)? */
static bool cr_then_lf(upconn *u, const char *p, const char *end)
{
	if (u->cr_pending && p < end) {
		if (*p++ != '\n')
			return false;
		u->cr_pending = false;
	}
	while (p < end) {
		const char *cr = memchr(p, '\r', (size_t)(end - p));
		if (!cr)
			break;
		if (cr + 1 == end) {
			u->cr_pending = true;
			break;
		}
		if (cr[1] != '\n')
			return false;
		p = cr + 2;
	}
	return true;
}

/*
 * The parser paused at a line end of its own (a head's, a chunk size
 * line's): llhttp 8, built loose, takes a CR and any byte after it as one
 * ("HTTP/1.1 200 OK\rX", "\r\n\rXhello", "5\rXhello"), where a strict
 * parser (nginx) refuses the message, so that the two would not agree on
 * where it ends. Every CR of a head is followed by an LF, and the byte
 * before a chunk's data is one; base is the start of this read. Then the
 * head is relayed (resp_head). HPE_USER, with r->resp_err, when refused.
 */
static llhttp_errno_t resp_line_end(upconn *u, const char *base)
{
	req *r = u->c->r;
	const char *pos = llhttp_get_error_pos(&u->parser);
	int why = u->pause;
	u->pause = UP_RUN;
	if (why == UP_CHUNK_SIZE) {
		if ((pos > base ? pos[-1] : u->last_byte) != '\n') {
			r->resp_err = "a chunk size line not ended by CRLF";
			return HPE_USER;
		}
		return HPE_OK;
	}
	if (!cr_then_lf(u, u->head_from ? u->head_from : base, pos)) {
		r->resp_err = "a CR not followed by LF in a response head";
		return HPE_USER;
	}
	int hc = resp_head(u);
	if (hc < 0)
		return HPE_USER;
	if (hc == 1)
		u->parser.flags |= F_SKIPBODY; /* as llhttp does when told 1 */
	/* after an interim response, the next head begins here */
	u->in_head = r->resp_1xx;
	u->head_from = pos;
	return HPE_OK;
}

static int on_resp_body(llhttp_t *p, const char *at, size_t len)
{
	upconn *u = p->data;
	client *c = u->c;
	req *r = c->r;
	if (r->resp_1xx)
		return 0;
	write_body(cwrite_v, c, r->resp_chunked, at, len);
	if ((p->flags & F_CHUNKED) && p->content_length == 0) {
		/* the chunk's data is complete: its CRLF follows */
		u->crlf_due = 2;
		if (!chunk_crlf(&u->crlf_due, at + len, u->rd_end)) {
			r->resp_err = "a chunk whose data is not followed by CRLF";
			return HPE_USER;
		}
	}
	return 0;
}

static int on_resp_complete(llhttp_t *p)
{
	upconn *u = p->data;
	req *r = u->c->r;
	if (r->resp_1xx)
		return 0; /* the real response follows */
	if (r->status == 101 && r->upgrade)
		return 0; /* llhttp then stops with HPE_PAUSED_UPGRADE: a tunnel */
	/* a chunked body's last chunk goes out once its end is checked (see
	 * up_read_cb); a close-delimited body relayed chunked ends here */
	if (r->resp_chunked && !(p->flags & F_CHUNKED))
		cwrite(u->c, "0\r\n\r\n", 5);
	r->resp_done = true;
	return HPE_PAUSED;
}

/* Constant from the start: serving threads accept their first connections
 * at the same time, and settings filled in by the first of them would be
 * written while another already parses with them. */
static const llhttp_settings_t req_settings = {
    .on_method = on_method,
    .on_url = on_url,
    .on_header_field = on_req_field,
    .on_header_value = on_req_value,
    .on_headers_complete = on_req_headers_complete,
    .on_body = on_req_body,
    .on_message_complete = on_req_complete,
    .on_chunk_extension_name = on_req_chunk_ext,
    .on_chunk_extension_value = on_req_chunk_ext,
    .on_chunk_header = on_req_chunk_header,
};
static const llhttp_settings_t resp_settings = {
    .on_header_field = on_resp_field,
    .on_header_value = on_resp_value,
    .on_headers_complete = on_resp_headers_complete,
    .on_body = on_resp_body,
    .on_message_complete = on_resp_complete,
    .on_chunk_header = on_resp_chunk_header,
};

/* ---- errors -------------------------------------------------------------- */

static bool sane_token(const char *s, size_t n, size_t max);

/*
 * The weight (0 to 1000) an Accept list gives a media type, by the most
 * specific of its ranges that matches (RFC 9110 12.5.1): text/html before
 * text/(any) before (any)/(any). Names compare without regard to case; a range
 * with a malformed q is skipped. *spec is raised to the best match's
 * specificity (0 none, 1 to 3), so that fields can be combined.
 */
static void accept_weight(const char *v, size_t n, const char *type, const char *sub, int *spec,
			  unsigned *q)
{
	size_t tl = strlen(type), sl = strlen(sub);
	size_t k = 0, es, ee;
	while (list_next(v, n, &k, ',', &es, &ee)) {
		const char *semi = memchr(v + es, ';', ee - es);
		size_t me = semi ? (size_t)(semi - v) : ee;
		while (me > es && ows(v[me - 1]))
			me--;
		const char *slash = memchr(v + es, '/', me - es);
		if (!slash)
			continue;
		size_t rt = (size_t)(slash - (v + es)), rs = me - es - rt - 1;
		const char *rsub = slash + 1;
		int sp;
		if (rt == 1 && v[es] == '*' && rs == 1 && *rsub == '*')
			sp = 1;
		else if (rt == tl && strncasecmp(v + es, type, tl) == 0 && rs == 1 && *rsub == '*')
			sp = 2;
		else if (rt == tl && strncasecmp(v + es, type, tl) == 0 && rs == sl &&
			 strncasecmp(rsub, sub, sl) == 0)
			sp = 3;
		else
			continue;
		/* parameters: only q matters; q = 0 means "not acceptable" */
		unsigned w = 1000;
		bool bad = false;
		size_t p = me, ps, pe;
		while (!bad && list_next(v, ee, &p, ';', &ps, &pe)) {
			if (pe - ps < 2 || (v[ps] | 32) != 'q' || v[ps + 1] != '=')
				continue;
			/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
			const char *d = v + ps + 2;
			size_t dl = pe - ps - 2;
			bad = dl == 0 || (d[0] != '0' && d[0] != '1') || (dl > 1 && d[1] != '.') ||
			      dl > 5;
			w = bad ? 0 : (unsigned)(d[0] - '0') * 1000;
			for (size_t i = 2, scale = 100; !bad && i < dl; i++, scale /= 10) {
				bad = d[i] < '0' || d[i] > '9' || (d[0] == '1' && d[i] != '0');
				w += bad ? 0 : (unsigned)(d[i] - '0') * (unsigned)scale;
			}
		}
		if (bad)
			continue;
		if (sp > *spec || (sp == *spec && w > *q)) {
			*spec = sp;
			*q = w;
		}
	}
}

/*
 * HTML for a client that prefers text/html to application/json (a browser
 * lists text/html first, and any type at q=0.8); JSON when it prefers JSON,
 * weighs both the same (API clients often list text/html too, curl accepts
 * any type alike) or sent no Accept. Every Accept field counts, as one list (RFC 9110 5.3).
 */
static bool wants_html(const hdr *hs, size_t n)
{
	int hs_spec = 0, js_spec = 0;
	unsigned hq = 0, jq = 0;
	for (size_t i = 0; i < n; i++) {
		if (classify(hs[i].name, hs[i].nlen) != HK_ACCEPT)
			continue;
		accept_weight(hs[i].value, hs[i].vlen, "text", "html", &hs_spec, &hq);
		accept_weight(hs[i].value, hs[i].vlen, "application", "json", &js_spec, &jq);
	}
	return hq > jq;
}

/* msg as HTML text: a reason may quote what the client sent (a host, a
 * slug), which must stay text in a browser */
static void html_str(sb_buf *b, const char *msg)
{
	for (const char *p = msg; *p; p++) {
		switch (*p) {
		case '<': sb_buf_adds(b, "&lt;"); break;
		case '>': sb_buf_adds(b, "&gt;"); break;
		case '&': sb_buf_adds(b, "&amp;"); break;
		case '"': sb_buf_adds(b, "&quot;"); break;
		case '\'': sb_buf_adds(b, "&#39;"); break;
		default: sb_buf_addc(b, *p);
		}
	}
}

static void send_error(client *c, int status, const char *code, const char *msg)
{
	req *r = c->r;
	if (!r) {
		r = c->r = req_new(c);
		r->request_id[0] = '\0';
	}
	if (!r->request_id[0]) {
		/* refused before handle_head took the client's id (a parse error,
		 * see raw_head_fields): the client's, if sane, as on any answer */
		const hdr *rid = NULL;
		for (size_t i = 0; r->hdrs && i < r->nhdrs && !rid; i++)
			if (classify(r->hdrs[i].name, r->hdrs[i].nlen) == HK_REQUEST_ID)
				rid = &r->hdrs[i];
		size_t rl = rid ? rid->vlen : 0;
		while (rl && ows(rid->value[rl - 1]))
			rl--;
		if (rid && sane_token(rid->value, rl, 128)) {
			memcpy(r->request_id, rid->value, rl);
			r->request_id[rl] = '\0';
			r->request_id_len = rl;
		} else {
			hex_random(c->w, r->request_id, 32);
			r->request_id_len = 32;
		}
	}
	r->status = status;
	/* the head may not have been classified yet (a parse error) */
	bool html = wants_html(r->hdrs, r->hdrs ? r->nhdrs : 0);
	sb_buf body, head;
	sb_buf_init(&body);
	sb_buf_init(&head);
	if (html) {
		sb_buf_addf(&body, "<!doctype html><title>%d %s</title><h1>%d %s</h1><p>", status,
			    reason_phrase(status), status, reason_phrase(status));
		html_str(&body, msg);
		sb_buf_addf(&body, "</p><p><small>request id %s</small></p>\n", r->request_id);
	} else {
		sb_buf_addf(&body, "{\"error\":\"%s\",\"status\":%d,\"message\":", code, status);
		json_str(&body, msg, strlen(msg));
		sb_buf_addf(&body, ",\"request_id\":\"%s\"}\n", r->request_id);
	}
	/* a body we did not read, or a broken stream, ends the connection */
	if (status == 400 || status == 408 || status == 413 || status == 414 || status == 431 ||
	    body_pending(r) || !r->head_parsed)
		c->keepalive = false;
	if (atomic_load(&c->w->edge->stopping))
		c->keepalive = false;
	sb_buf_addf(&head,
		    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		    "X-Request-Id: %s\r\nCache-Control: no-store\r\n",
		    status, reason_phrase(status),
		    html ? "text/html; charset=utf-8" : "application/json", body.len,
		    r->request_id);
	if (status == 405 && r->allow)
		sb_buf_addf(&head, "Allow: %s\r\n", r->allow);
	sb_buf_addf(&head, "Connection: %s\r\n\r\n", c->keepalive ? "keep-alive" : "close");
	cwrite(c, head.data, head.len);
	if (!r->is_head)
		cwrite(c, body.data, body.len);
	sb_buf_free(&body);
	sb_buf_free(&head);
	r->resp_done = true;
	r->resp_started = true;
	finish_request(c);
}

/*
 * The fields that shape the answer to a head the edge refuses before it is
 * parsed (over the limit, malformed, too slow): Accept and X-Request-Id, as
 * for any other error (a browser whose cookies outgrew the limit gets its
 * 431 as HTML), and Host for the access log. Complete lines of the raw
 * bytes only, copied into the request's pool.
 */
static void raw_head_fields(req *r, const char *b, size_t n)
{
	const char *lf = memchr(b, '\n', n);
	size_t i = lf ? (size_t)(lf - b) + 1 : n; /* past the request line */
	while (i < n && (lf = memchr(b + i, '\n', n - i))) {
		size_t next = (size_t)(lf - b) + 1, e = next - 1;
		if (e > i && b[e - 1] == '\r')
			e--;
		if (e == i)
			break; /* the empty line */
		const char *colon = memchr(b + i, ':', e - i);
		size_t nl = colon ? (size_t)(colon - (b + i)) : 0;
		hkind k = colon ? classify(b + i, nl) : HK_OTHER;
		if (k == HK_ACCEPT || k == HK_REQUEST_ID || (k == HK_HOST && !r->host)) {
			size_t vs = i + nl + 1, ve = e;
			while (vs < ve && ows(b[vs]))
				vs++;
			while (ve > vs && ows(b[ve - 1]))
				ve--;
			char *name = sb_pool_strndup(r->pool, b + i, nl);
			char *value = sb_pool_strndup(r->pool, b + vs, ve - vs);
			add_hdr(r->pool, &r->hdrs, &r->nhdrs, &r->caphdrs, &r->last_was_value, name,
				nl, false);
			add_hdr(r->pool, &r->hdrs, &r->nhdrs, &r->caphdrs, &r->last_was_value,
				value, ve - vs, true);
			if (k == HK_HOST) {
				r->host = value;
				r->host_len = ve - vs;
			}
		}
		i = next;
	}
}

/* An error for the head in c->in, refused before it was parsed. */
static void send_head_error(client *c, int status, const char *code, const char *msg)
{
	if (!c->r)
		c->r = req_new(c);
	raw_head_fields(c->r, c->in, c->in_len);
	c->in_len = 0;
	send_error(c, status, code, msg);
}

/* ---- client connection lifecycle --------------------------------------- */

/*
 * Connections waiting for a request, fresh or kept alive after a response,
 * are on their worker's idle list, the most recently idle first. When
 * max_connections is reached, a new connection takes the place of the
 * longest-idle one (evict_idle) instead of being refused while idle clients
 * hold every slot; nginx reuses its idle connections the same way. An idle
 * keep-alive connection may be closed at any time (RFC 9112, 9.8): clients
 * open a new one.
 */
static void idle_leave(client *c)
{
	if (!c->idle_listed)
		return;
	sb_worker *w = c->w;
	if (c->iprev)
		c->iprev->inext = c->inext;
	else
		w->idle_head = c->inext;
	if (c->inext)
		c->inext->iprev = c->iprev;
	else
		w->idle_tail = c->iprev;
	c->inext = c->iprev = NULL;
	c->idle_listed = false;
}

static void idle_enter(client *c)
{
	sb_worker *w = c->w;
	idle_leave(c);
	c->inext = w->idle_head;
	if (c->inext)
		c->inext->iprev = c;
	else
		w->idle_tail = c;
	w->idle_head = c;
	c->idle_listed = true;
}

/* Looked at from the oldest end: connections whose last response is still
 * being sent are passed over, up to this many. */
#define EVICT_SCAN 32

/* Close this worker's longest-idle connection. Returns false when none is
 * idle. */
static bool evict_idle(sb_worker *w)
{
	client *c = w->idle_tail;
	for (int i = 0; c && i < EVICT_SCAN; i++, c = c->iprev) {
		char b;
		/* nothing waits in the socket either: a request that arrived but
		 * is not read yet is not lost (nor an EOF to read) */
		if (c->state == C_HEAD && !c->closing && !c->r && c->in_len == 0 && c->wq == 0 &&
		    c->fd >= 0 && recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK)) {
			client_close(c);
			return true;
		}
	}
	return false;
}

static void client_freed(uv_handle_t *h)
{
	client *c = h->data;
	if (--c->handles > 0)
		return;
	sb_worker *w = c->w;
	if (c->counted) {
		atomic_fetch_sub(&w->edge->nconns, 1);
		w->nconns--;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	req_free(c->r);
	sb_buf_free(&c->ob);
	free(c->in);
	free(c);
	if (w->stopping && w->nconns == 0 && w->listener_closed)
		worker_release(w);
}

static void client_close(client *c)
{
	if (c->state == C_CLOSING)
		return;
	write_held(true, c); /* out before the close, as if never held */
	c->state = C_CLOSING;
	c->closing = true;
	idle_leave(c);
	if (c->r && c->r->method && !c->r->resp_done)
		access_log(c); /* cut short, or a tunnel that ended */
	if (c->u) {
		upconn *u = c->u;
		c->u = NULL;
		u->c = NULL;
		up_close(u);
	}
	c->fd = -1; /* libuv closes it: the number may be reused at once */
	uv_close((uv_handle_t *)&c->timer, client_freed);
	uv_close((uv_handle_t *)&c->tcp, client_freed);
}

/*
 * Close a connection whose response is cut short: the upstream failed or
 * stalled in the middle of it, or the drain deadline passed. A length or a
 * chunked framing shows the client the cut; a response that ends with the
 * connection (to an HTTP/1.0 client, or one that sent Connection: close)
 * would look whole after a FIN, so that connection is reset instead
 * (SO_LINGER 0 makes the close send an RST).
 */
static void client_cut(client *c)
{
	/* the response is cut while it is relayed, or after the upstream sent
	 * all of it but bytes of it are still queued for the client */
	write_held(true, c); /* out before the cut, as if never held */
	bool cut = c->r ? c->r->resp_eof && !c->r->resp_done : c->eof_framed && c->wq > 0;
	if (cut && c->fd >= 0) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	client_close(c);
}

/*
 * The end of a connection the edge closes after its last response (an
 * error such as 413 or 431, Connection: close, a stop). The client may still
 * be sending: a body the edge refused, the rest of a head over the limit.
 * Closing a socket with unread bytes makes the kernel send a reset, which
 * can destroy the response in the client's receive queue before it is read.
 * So, as nginx's lingering close does: send FIN once the response is out,
 * read and discard until the client closes, for LINGER_MS and LINGER_MAX
 * bytes at most, then close.
 */
#define LINGER_MS 2000
#define LINGER_MAX (1024 * 1024)

static void client_deadline(client *c, uint64_t ms);
static void client_read_start(client *c);

static void client_finish(client *c)
{
	if (c->eof || c->fd < 0 || c->state == C_CLOSING || c->state == C_LINGER ||
	    shutdown(c->fd, SHUT_WR) < 0) {
		client_close(c);
		return;
	}
	idle_leave(c);
	c->state = C_LINGER;
	c->linger_left = LINGER_MAX;
	c->in_len = 0;
	client_deadline(c, LINGER_MS);
	client_read_start(c);
}

static void on_client_drained(client *c)
{
	if (c->state == C_CLOSING || c->state == C_LINGER)
		return;
	if (c->closing) {
		client_finish(c);
		return;
	}
	if (c->state == C_HEAD) {
		/* pipelined requests paused by client_input_run's back-pressure */
		if (c->in_len)
			client_input(c);
		else
			client_read_start(c);
		return;
	}
	if (c->state == C_TUNNEL && c->tun_u_eof) {
		tunnel_shut(c); /* the upstream's FIN follows what it sent */
		return;
	}
	/* the upstream may go on sending */
	if (c->u && !c->u->reading && !c->u->closing && c->state != C_CLOSING) {
		extern void sb_proxy_up_resume(upconn * u);
		sb_proxy_up_resume(c->u);
	}
}

static void client_timeout(uv_timer_t *t)
{
	client *c = t->data;
	if (c->state == C_LINGER || c->closing) {
		/* lingering done, or the last response not taken in time (reset
		 * if its end is the connection's, so that it does not look whole) */
		client_cut(c);
		return;
	}
	if (c->state == C_TUNNEL) {
		client_close(c); /* silent both ways (logged as the tunnel's end) */
		return;
	}
	if (c->state == C_HEAD && c->in_len > 0) {
		send_head_error(c, 408, "request_timeout",
				"the request head did not arrive in time");
		return;
	}
	if (c->state == C_HEAD) {
		client_close(c); /* idle keep-alive connection */
		return;
	}
	if (c->state == C_WAIT_UP) {
		if (c->u) {
			upconn *u = c->u;
			c->u = NULL;
			u->c = NULL;
			up_close(u);
		}
		send_error(c, 504, "upstream_timeout",
			   "the upstream did not accept the connection in time");
		return;
	}
	if (c->state == C_BODY && c->r && !c->r->resp_started) {
		/* the client stopped sending the body it announced */
		if (c->u) {
			upconn *u = c->u;
			c->u = NULL;
			u->c = NULL;
			up_close(u);
		}
		send_error(c, 408, "request_timeout", "the request body did not arrive in time");
		return;
	}
	if (c->state == C_RESP || c->state == C_BODY) {
		if (c->r && !c->r->resp_started) {
			if (c->u) {
				upconn *u = c->u;
				c->u = NULL;
				u->c = NULL;
				up_close(u);
			}
			send_error(c, 504, "upstream_timeout",
				   "the upstream did not answer in time");
		} else {
			client_cut(c);
		}
	}
}

/*
 * The client's one timer, re-armed lazily: a deadline that moves later is
 * only recorded, and the timer, when it fires early, re-arms itself for
 * the rest; clearing it costs nothing. Restarting a libuv timer for each
 * phase of each request (head, upstream, response, keep-alive) cost two
 * heap operations a phase on the request path.
 */
static void client_timer(uv_timer_t *t)
{
	client *c = t->data;
	if (!c->deadline)
		return;
	uint64_t now = uv_now(t->loop);
	if (now < c->deadline) {
		uv_timer_start(t, client_timer, c->deadline - now, 0);
		return;
	}
	c->deadline = 0;
	client_timeout(t);
}

static void client_deadline(client *c, uint64_t ms)
{
	if (!ms) {
		c->deadline = 0;
		return;
	}
	c->deadline = uv_now(c->timer.loop) + ms;
	if (!uv_is_active((uv_handle_t *)&c->timer) || uv_timer_get_due_in(&c->timer) > ms)
		uv_timer_start(&c->timer, client_timer, ms, 0);
}

/*
 * Waiting for a request: for ms from now (a new connection: the header
 * timeout; after a response: the idle timeout), or, with ms 0, for what is
 * left of that wait. Empty lines before a request are ignored (RFC 9112
 * 2.2) and do not begin one: a client that sent a CRLF every few seconds
 * restarted the header timeout with each and held its connection for good.
 */
static void wait_deadline(client *c, uint64_t ms)
{
	uint64_t now = uv_now(c->timer.loop);
	if (ms)
		c->wait_until = now + ms;
	client_deadline(c, c->wait_until > now ? c->wait_until - now : 1);
}

/*
 * The client's buffer starts at 4 KiB (a request head is usually a few
 * hundred bytes; resident memory is about the same either way, as untouched
 * pages cost nothing, but the heap stays compact) and grows when a read
 * fills the room it was given, up to READ_CHUNK of room, so a streamed body
 * is still read in large pieces.
 */
static void client_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	client *c = h->data;
	size_t want = c->read_room ? c->read_room : 2048;
	if (c->in_cap - c->in_len < want) {
		size_t ncap = c->in_cap ? c->in_cap : 4096;
		while (ncap - c->in_len < want)
			ncap *= 2;
		c->in = sb_xrealloc(c->in, ncap);
		c->in_cap = ncap;
	}
	buf->base = c->in + c->in_len;
	buf->len = c->in_cap - c->in_len;
}

static void client_read_stop(client *c)
{
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
}

static void client_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void client_read_start(client *c)
{
	if (!c->reading && c->state != C_CLOSING) {
		uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read_cb);
		c->reading = true;
	}
}

static void consume(client *c, size_t n)
{
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
	c->scan = 0;
}

static void client_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	client *c = s->data;
	if (n == UV_EOF && c->state == C_TUNNEL) {
		client_read_stop(c);
		c->tun_c_eof = true;
		tunnel_shut(c);
		return;
	}
	if (n < 0) {
		if (n == UV_EOF && (c->state == C_WAIT_UP || c->state == C_RESP)) {
			/* a half-close after the request: answer it, then close */
			c->eof = true;
			client_read_stop(c);
			return;
		}
		/* the client went away: whatever it was doing ends here */
		client_close(c);
		return;
	}
	if (n == 0)
		return;
	if (c->state == C_LINGER) {
		c->in_len = 0; /* discarded */
		if ((size_t)n >= c->linger_left)
			client_close(c);
		else
			c->linger_left -= (size_t)n;
		return;
	}
	if ((size_t)n == buf->len && c->read_room < READ_CHUNK)
		c->read_room = c->read_room ? c->read_room * 2 : 4096;
	if (c->state == C_TUNNEL) {
		if (c->r) /* logged when the tunnel ends, both ways counted */
			c->r->body_in += (size_t)n;
		c->in_len = 0;
		if (!c->u || uwrite(c->u, c->in, (size_t)n) < 0) {
			client_close(c);
			return;
		}
		client_deadline(c, limits(c)->response_timeout_ms);
		if (c->u->wq > HIGH_WATER)
			client_read_stop(c);
		return;
	}
	if (c->state == C_HEAD && c->in_len == 0) {
		idle_leave(c);
		c->head_at = uv_now(s->loop);
		client_deadline(c, limits(c)->header_timeout_ms);
	} else if (c->state == C_BODY)
		client_deadline(c, limits(c)->response_timeout_ms);
	c->in_len += (size_t)n;
	if (c->state == C_WAIT_UP || c->state == C_RESP) {
		/* pipelined bytes wait for this response; reading goes on (no
		 * epoll_ctl per request) until the buffer holds a full head's worth */
		if (c->in_len > limits(c)->max_header_bytes + READ_CHUNK)
			client_read_stop(c);
		return;
	}
	client_input(c);
}

/* ---- the request head -------------------------------------------------- */

/* Are the n bytes at p all tchar (RFC 9110 5.6.2)? */
static bool token_span(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if ((c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z'))
			continue;
		switch (c) {
		case '!':
		case '#':
		case '$':
		case '%':
		case '&':
		case '\'':
		case '*':
		case '+':
		case '-':
		case '.':
		case '^':
		case '_':
		case '`':
		case '|':
		case '~': continue;
		default: return false;
		}
	}
	return true;
}

/*
 * Find the end of the head and check the request-smuggling cases llhttp
 * would otherwise tolerate or that we want to refuse before parsing: a bare
 * LF or CR, obs-fold, whitespace before a colon. Returns the head length,
 * 0 when incomplete, or -1 with *why set.
 */
static ssize_t head_scan(client *c, const char **why)
{
	const char *b = c->in;
	size_t n = c->in_len;
	size_t i = c->scan; /* the start of a line not yet complete */
	size_t len = 0;
	/* line by line with memchr: every LF must close a CRLF, and a CR may
	 * only stand right before an LF (or last, its LF not read yet) */
	while (i < n) {
		const char *lf = memchr(b + i, '\n', n - i);
		size_t end = lf ? (size_t)(lf - b) : n;
		const char *cr = memchr(b + i, '\r', end - i);
		if (cr && (size_t)(cr - b) != end - 1) {
			*why = "bare CR in the request head";
			return -1;
		}
		if (!lf)
			break;
		if (end == 0 || b[end - 1] != '\r') {
			*why = "bare LF in the request head";
			return -1;
		}
		if (end >= 3 && b[end - 2] == '\n' && b[end - 3] == '\r') {
			len = end + 1;
			break;
		}
		i = end + 1;
	}
	if (!len) {
		/* resume at the last byte: the line's start would make a line
		 * trickled in byte by byte cost O(length^2); every check looks
		 * back by absolute index, so the decisions are the same */
		c->scan = i < n ? n - 1 : i;
		if (n > limits(c)->max_header_bytes)
			return -2;
		return 0;
	}
	if (len > limits(c)->max_header_bytes)
		return -2;
	/* check each header line (the request line is the first) */
	size_t ls = 0, fields = 0;
	bool first = true;
	while (ls < len) {
		const char *cr = memchr(b + ls, '\r', len - ls);
		size_t le = cr ? (size_t)(cr - b) : len;
		if (le == ls) /* the empty line */
			break;
		if (!first) {
			if (b[ls] == ' ' || b[ls] == '\t') {
				*why = "obs-fold (a header line starting with whitespace)";
				return -1;
			}
			const char *colon = memchr(b + ls, ':', le - ls);
			if (!colon) {
				*why = "a header line without a colon";
				return -1;
			}
			if (colon > b + ls && (colon[-1] == ' ' || colon[-1] == '\t')) {
				*why = "whitespace between a header name and its colon";
				return -1;
			}
			/* a field name is a token (RFC 9110 5.1): "GET http: //x"
			 * would otherwise go upstream as a header named "GET http" */
			if (colon == b + ls || !token_span(b + ls, (size_t)(colon - (b + ls)))) {
				*why = "a header name that is not a token";
				return -1;
			}
			/* each field costs the request a struct whatever its size:
			 * 4,000 empty ones fitted in 16 KiB (HAProxy allows 101) */
			if (++fields > REQ_FIELDS_MAX)
				return -2;
		}
		first = false;
		ls = le + 2;
	}
	return (ssize_t)len;
}

static bool sane_token(const char *s, size_t n, size_t max)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' ||
		      ch == ':' || ch == '+' || ch == '='))
			return false;
	}
	return true;
}

static bool valid_traceparent(const char *v, size_t n)
{
	/* 00-<32 hex>-<16 hex>-<2 hex>, ids not all zero */
	if (n != 55 || v[0] != '0' || v[1] != '0' || v[2] != '-' || v[35] != '-' || v[52] != '-')
		return false;
	bool tz = true, sz = true;
	for (size_t i = 0; i < n; i++) {
		if (i == 2 || i == 35 || i == 52)
			continue;
		char ch = v[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return false;
		if (i >= 3 && i < 35 && ch != '0')
			tz = false;
		if (i >= 36 && i < 52 && ch != '0')
			sz = false;
	}
	return !tz && !sz;
}

static bool method_idempotent(const char *m)
{
	return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS") ||
	       !strcmp(m, "PUT") || !strcmp(m, "DELETE") || !strcmp(m, "TRACE");
}

/* A body the head announced that has not been read: the edge answers such
 * a request itself only by closing the connection afterwards, or the body
 * would be parsed as the next request. */
static bool body_pending(const req *r)
{
	return r->head_parsed && !r->body_done && (r->has_cl || r->chunked);
}

/*
 * X-Forwarded-Proto as forwarded: a trusted proxy's scheme, from the first
 * element of its list (the client's side of a chain of proxies), when it
 * is http or https; else the edge's own. Services build redirects and
 * cookies' Secure flag from it: an empty value or "javascript" from a
 * misconfigured proxy is not passed on, signed, as a scheme.
 */
static const char *trusted_proto(const hdr *xfp)
{
	if (!xfp)
		return "http";
	size_t k = 0, s = 0, e = 0;
	list_next(xfp->value, xfp->vlen, &k, ',', &s, &e);
	/* "https x", "httpsx": not a scheme */
	return e - s == 5 && strncasecmp(xfp->value + s, "https", 5) == 0 ? "https" : "http";
}

/* The edge's own endpoints under /.well-known/switchboard/. */
static bool own_endpoint(client *c)
{
	req *r = c->r;
	static const char prefix[] = "/.well-known/switchboard/";
	if (r->path_len < sizeof(prefix) - 1 || memcmp(r->path, prefix, sizeof(prefix) - 1) != 0)
		return false;
	const char *rest = r->path + sizeof(prefix) - 1;
	size_t rl = r->path_len - (sizeof(prefix) - 1);
	const char *q = memchr(rest, '?', rl);
	if (q)
		rl = (size_t)(q - rest);
	bool health = rl == 6 && memcmp(rest, "health", 6) == 0;
	if (health && strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
		r->allow = "GET, HEAD";
		send_error(c, 405, "method_not_allowed",
			   "the health endpoint answers GET and HEAD");
		return true;
	}
	if (health) {
		sb_edge *e = c->w->edge;
		sb_snapshot *s = r->snap;
		char body[512];
		int bn =
		    snprintf(body, sizeof(body),
			     "{\"status\":\"ok\",\"version\":\"%s\",\"routes\":%zu,"
			     "\"tenants\":%zu,\"generation\":%llu,\"uptime_s\":%lld,"
			     "\"threads\":%d}\n",
			     SB_VERSION, sb_route_count(s->cfg->routes),
			     sb_tenants_count(s->tenants), (unsigned long long)s->cfg->generation,
			     (long long)((sb_edge_mono_ms() - e->started_ms) / 1000), e->nworkers);
		char head[512];
		if (atomic_load(&e->stopping) || body_pending(r))
			c->keepalive = false;
		int hn =
		    snprintf(head, sizeof(head),
			     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			     "Content-Length: %d\r\nCache-Control: no-store\r\nX-Request-Id: %s\r\n"
			     "Connection: %s\r\n\r\n",
			     bn, r->request_id, c->keepalive ? "keep-alive" : "close");
		r->status = 200;
		cwrite(c, head, (size_t)hn);
		if (!r->is_head)
			cwrite(c, body, (size_t)bn);
		r->resp_done = r->resp_started = true;
		finish_request(c);
		return true;
	}
	send_error(c, 404, "not_found", "no such Switchboard endpoint");
	return true;
}

/* The length of a dot at p ("." or "%2e"), or 0. */
static size_t dot_at(const char *p, size_t n)
{
	if (n >= 1 && p[0] == '.')
		return 1;
	if (n >= 3 && p[0] == '%' && p[1] == '2' && (p[2] | 32) == 'e')
		return 3;
	return 0;
}

/*
 * Does a path segment that starts at p read as "." or ".." to a service?
 * Routing matches the path as sent, while services resolve dot segments:
 * with a route for the /api/ prefix of a host (deployment api) and one for
 * the rest of it, "/api/../admin" went to api, signed, and api served its
 * own /admin, a path the declaration routes elsewhere. Read as services
 * read them: "%2e" is a dot (WHATWG URL), a backslash a slash, and ";" ends
 * a segment (Tomcat's "..;/"). Clients resolve dot segments before sending
 * (RFC 3986 5.2; browsers, curl without --path-as-is): a legal request
 * never needs one.
 */
/* The length of a segment separator at p: "/", "\\", or one encoded
 * ("%2F", "%5C": a service that decodes before it resolves reads them as
 * separators too), else 0. */
static size_t sep_at(const char *p, size_t n)
{
	if (n >= 1 && (p[0] == '/' || p[0] == '\\'))
		return 1;
	if (n >= 3 && p[0] == '%' &&
	    ((p[1] == '2' && (p[2] | 32) == 'f') || (p[1] == '5' && (p[2] | 32) == 'c')))
		return 3;
	return 0;
}

static bool dot_segment(const char *p, size_t n)
{
	size_t d = dot_at(p, n);
	if (!d)
		return false;
	d += dot_at(p + d, n - d);
	return d == n || sep_at(p + d, n - d) || p[d] == '?' || p[d] == ';';
}

/* Host and path from the head; the smuggling rules about Host. */
static int resolve_target(client *c, const char **why)
{
	req *r = c->r;
	const hdr *hh = NULL;
	for (size_t i = 0; i < r->nhdrs; i++) {
		hdr *h = &r->hdrs[i];
		switch ((hkind)h->kind) {
		case HK_HOST:
			r->nhost++;
			hh = h;
			break;
		case HK_CONTENT_LENGTH: r->ncl++; break;
		case HK_TRANSFER_ENCODING:
			r->nte++;
			if (!(h->vlen == 7 && strncasecmp(h->value, "chunked", 7) == 0)) {
				*why = "unsupported Transfer-Encoding";
				return -1;
			}
			break;
		case HK_EXPECT:
			if (h->vlen == 12 && strncasecmp(h->value, "100-continue", 12) == 0)
				r->expect_continue = true;
			break;
		case HK_SB_VERIFY:
			/* noted while the headers are scanned anyway; an unusable
			 * value is ignored (the header is stripped either way) */
			if (sb_proof_nonce_ok(h->value, h->vlen)) {
				r->verify_nonce = h->value;
				r->verify_len = h->vlen;
			}
			break;
		default: break;
		}
	}
	if (r->nhost > 1) {
		*why = "several Host headers";
		return -1;
	}
	if (r->ncl > 1) {
		*why = "several Content-Length headers";
		return -1;
	}
	if (r->nte > 1 || (r->nte && r->ncl)) {
		*why = "both Content-Length and Transfer-Encoding";
		return -1;
	}
	/* RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
	 * framing; a 1.0 hop in front of the edge delimits it otherwise (nginx:
	 * 400 too) */
	if (r->nte && c->parser.http_minor == 0) {
		*why = "Transfer-Encoding in an HTTP/1.0 request";
		return -1;
	}
	size_t ps = r->url_len; /* where the path starts in the target */
	if (r->url_len && r->url[0] == '/') {
		r->path = r->url;
		r->path_len = r->url_len;
		ps = 0;
		if (!hh) {
			*why = "no Host header";
			return -1;
		}
		r->host = hh->value;
		r->host_len = hh->vlen;
	} else if (has_prefix_ci(r->url, r->url_len, "http://") ||
		   has_prefix_ci(r->url, r->url_len, "https://")) {
		const char *a = strstr(r->url, "://") + 3;
		const char *end = r->url + r->url_len;
		const char *slash = memchr(a, '/', (size_t)(end - a));
		const char *qm = memchr(a, '?', (size_t)(end - a));
		if (qm && (!slash || qm < slash))
			slash = qm;
		size_t al = (size_t)((slash ? slash : end) - a);
		if (al == 0 || memchr(a, '@', al)) {
			*why = "bad authority in an absolute-form target";
			return -1;
		}
		if (hh && (hh->vlen != al || strncasecmp(hh->value, a, al) != 0)) {
			*why = "Host disagrees with the absolute-form target";
			return -1;
		}
		/* RFC 9112 3.2: an HTTP/1.1 request without Host is a 400, whatever
		 * its target */
		if (!hh && c->parser.http_minor != 0) {
			*why = "no Host header";
			return -1;
		}
		r->host = a;
		r->host_len = al;
		if (slash && *slash == '/') {
			r->path = slash;
			r->path_len = (size_t)(end - slash);
			ps = (size_t)(slash - r->url);
		} else {
			/* "http://host?x" or "http://host": path "/" (plus the query) */
			size_t ql = slash ? (size_t)(end - slash) : 0;
			char *p = sb_pool_alloc(r->pool, ql + 2);
			p[0] = '/';
			if (ql)
				memcpy(p + 1, slash, ql);
			r->path = p;
			r->path_len = ql + 1;
		}
	} else {
		*why = "a request target must be a path or an absolute http(s) URL";
		return -1;
	}
	/* the target, in one pass: no whitespace or control byte (llhttp lets a
	 * tab through, and an upstream that splits the request line on any
	 * whitespace, as RFC 9112 3 allows, would see another target than the
	 * one routed), no fragment, no dot segment in the path (dot_segment) */
	bool query = false;
	for (size_t i = 0; i < r->url_len; i++) {
		unsigned char ch = (unsigned char)r->url[i];
		if (ch <= 0x20 || ch == 0x7f) {
			*why = "whitespace or a control byte in the request target";
			return -1;
		}
		/* a fragment is the client's own (RFC 9110 4.2.4); a service reads
		 * the path up to it, routing read all of it */
		if (ch == '#') {
			*why = "a fragment (#) in the request target";
			return -1;
		}
		query |= ch == '?';
		size_t sl;
		if (i >= ps && !query && (ch == '/' || ch == '\\' || ch == '%') &&
		    (sl = sep_at(r->url + i, r->url_len - i)) &&
		    dot_segment(r->url + i + sl, r->url_len - i - sl)) {
			*why = "a dot segment (. or ..) in the request path";
			return -1;
		}
		/* a NUL a service decodes ends its path early in C, or at a
		 * file system call, while routing read all of it (nginx: 400) */
		if (ch == '%' && !query && i >= ps && i + 2 < r->url_len && r->url[i + 1] == '0' &&
		    r->url[i + 2] == '0') {
			*why = "an encoded NUL (%00) in the request path";
			return -1;
		}
	}
	/* routing and the signature look at the host part only: anything after
	 * it but a port would reach the service, signed, in Host and
	 * X-Forwarded-Host ("a.example.com:@evil.example") */
	if (sb_route_host_port_ok(r->host, r->host_len) < 0) {
		*why = "bad Host: a host may only be followed by ':' and a port number";
		return -1;
	}
	return 0;
}

/* Build the request head we send upstream. */
static void build_upstream_head(client *c, sb_buf *b)
{
	req *r = c->r;
	sb_snapshot *s = r->snap;
	const hdr *xfp = NULL;
	size_t xff_len = 0; /* a trusted proxy's X-Forwarded-For, joined */
	const hdr *tp = find_kind(r->hdrs, r->nhdrs, HK_TRACEPARENT);
	if (tp && valid_traceparent(tp->value, tp->vlen)) {
		memcpy(r->traceparent, tp->value, tp->vlen);
		r->traceparent[tp->vlen] = '\0';
	} else {
		/* 00-<trace id>-<span id>-01 */
		char *t = r->traceparent;
		memcpy(t, "00-", 3);
		hex_random(c->w, t + 3, 32);
		t[35] = '-';
		hex_random(c->w, t + 36, 16);
		memcpy(t + 52, "-01", 4);
	}
	{
		char *p = sb_buf_put(b, r->method_len + 1 + r->path_len + 11);
		memcpy(p, r->method, r->method_len);
		p += r->method_len;
		*p++ = ' ';
		memcpy(p, r->path, r->path_len);
		memcpy(p + r->path_len, " HTTP/1.1\r\n", 11);
	}
	bool has_host = false;
	for (size_t i = 0; i < r->nhdrs; i++) {
		const hdr *h = &r->hdrs[i];
		if (hop_by_hop(h))
			continue;
		switch ((hkind)h->kind) {
		case HK_EXPECT:
		case HK_REQUEST_ID:
		case HK_TRACEPARENT:
		case HK_CONTENT_LENGTH:
		case HK_SB_VERIFY:
		case HK_SB_PROOF:
		case HK_SB_OTHER:
		case HK_TENANT: continue; /* ours to set */
		case HK_XFF:
			xff_len += c->trusted && h->vlen ? h->vlen + 2 : 0; /* joined below */
			continue;
		case HK_XFP:
			/* fields are one list: its first element is in the first */
			if (c->trusted && !xfp)
				xfp = h;
			continue;
		case HK_XFH: continue;
		case HK_FORWARDED:
		case HK_XF_OTHER:
			if (!c->trusted)
				continue;
			break;
		case HK_HOST: has_host = true; break;
		default: break;
		}
		hdr_line(b, h->name, h->nlen, h->value, h->vlen);
	}
	if (!has_host)
		sb_buf_addf(b, "Host: %.*s\r\n", (int)r->host_len, r->host);

	/* the headers we add, which the signature covers */
	/* the list as a trusted proxy sent it, whole (a cut one would let the
	 * client choose the address at its end), then the peer */
	const char *fwd_for = c->peer;
	if (xff_len) {
		/* a list sent in several fields is one list (RFC 9110 5.3):
		 * joined in order, none of it lost, in one copy */
		size_t pl = strlen(c->peer), o = 0;
		char *j = sb_pool_alloc(r->pool, xff_len + pl + 1);
		for (size_t i = 0; i < r->nhdrs; i++) {
			const hdr *h = &r->hdrs[i];
			if (h->kind != HK_XFF || !h->vlen || hop_by_hop(h))
				continue;
			memcpy(j + o, h->value, h->vlen);
			memcpy(j + o + h->vlen, ", ", 2);
			o += h->vlen + 2;
		}
		memcpy(j + o, c->peer, pl + 1);
		fwd_for = j;
	}
	const char *proto = trusted_proto(xfp);
	const char *tenant = r->m.tenant;

	sb_sign_fields f;
	memset(&f, 0, sizeof(f));
	f.method = (sb_sign_str){r->method, r->method_len};
	/* the Host as forwarded: the canonical form lower-cases it and drops
	 * the port, as a verifier does with the Host it receives; normalising
	 * it here (a trailing dot dropped) would sign another string */
	f.host = (sb_sign_str){r->host, r->host_len};
	sb_sign_fields_set_target(&f, r->path, r->path_len);
	f.hdr[SB_SIGN_H_REQUEST_ID] = (sb_sign_str){r->request_id, r->request_id_len};
	f.hdr[SB_SIGN_H_TRACEPARENT] = (sb_sign_str){r->traceparent, TRACEPARENT_LEN};
	f.hdr[SB_SIGN_H_FORWARDED_FOR] = (sb_sign_str){fwd_for, strlen(fwd_for)};
	f.hdr[SB_SIGN_H_FORWARDED_PROTO] = (sb_sign_str){proto, strlen(proto)};
	f.hdr[SB_SIGN_H_FORWARDED_HOST] = (sb_sign_str){r->host, r->host_len};
	size_t tcfg_len = 0;
	const char *tcfg = tenant ? sb_tenants_config(tenant, &tcfg_len) : NULL;
	if (tenant)
		f.hdr[SB_SIGN_H_TENANT_SLUG] = (sb_sign_str){tenant, strlen(tenant)};
	if (tcfg)
		f.hdr[SB_SIGN_H_TENANT_CONFIG] = (sb_sign_str){tcfg, tcfg_len};
	f.hdr[SB_SIGN_H_ENVIRONMENT] = (sb_sign_str){r->env_name, strlen(r->env_name)};
	f.hdr[SB_SIGN_H_DEPLOYMENT] = (sb_sign_str){r->dep_name, strlen(r->dep_name)};
	sb_sign_key keys[2] = {{r->secret, SB_SIGN_MAC_LEN}, {r->prev_secret, SB_SIGN_MAC_LEN}};
	char sig[SB_SIGN_HEADER_MAX(2)];
	/* signed as of the request's arrival (a retry re-signs with the same time) */
	int sl = sb_sign_header(&f, (int64_t)(r->start_ms / 1000), keys, r->prev_secret ? 2 : 1,
				sig, sizeof(sig));

	HDR(b, "X-Forwarded-For", fwd_for, strlen(fwd_for));
	HDR(b, "X-Forwarded-Proto", proto, strlen(proto));
	HDR(b, "X-Forwarded-Host", r->host, r->host_len);
	HDR(b, "X-Request-Id", r->request_id, r->request_id_len);
	HDR(b, "traceparent", r->traceparent, TRACEPARENT_LEN);
	if (tenant)
		HDR(b, "X-Tenant-Slug", tenant, strlen(tenant));
	if (tcfg)
		HDR(b, "X-Tenant-Config", tcfg, tcfg_len);
	HDR(b, "X-Switchboard-Environment", r->env_name, strlen(r->env_name));
	HDR(b, "X-Switchboard-Deployment", r->dep_name, strlen(r->dep_name));
	if (sl > 0)
		HDR(b, "X-Switchboard-Signature", sig, (size_t)sl);
	if (r->has_cl) {
		char num[24];
		HDR(b, "Content-Length", num, fmt_u64(r->content_length, num));
	} else if (r->chunked) {
		sb_buf_adds(b, "Transfer-Encoding: chunked\r\n");
	}
	if (r->upgrade) {
		const hdr *uh = find_kind(r->hdrs, r->nhdrs, HK_UPGRADE);
		sb_buf_addf(b, "Connection: Upgrade\r\nUpgrade: %.*s\r\n", uh ? (int)uh->vlen : 0,
			    uh ? uh->value : "");
	}
	/* no "Connection: keep-alive": it is HTTP/1.1's default (RFC 9112 9.3) */
	sb_buf_add(b, "\r\n", 2);
	(void)s;
}

/* A complete head is in c->in[0..len): parse, route, and forward. */
static void handle_head(client *c, size_t len)
{
	req *r = c->r;
	const char *why = NULL;
	client_deadline(c, 0);
	llhttp_init(&c->parser, HTTP_REQUEST, &req_settings);
	c->parser.data = c;
	r->max_body = UINT64_MAX;
	/* parsed from a copy in the request's pool, so that the method, target
	 * and headers can point into it for the whole request */
	char *head = sb_pool_strndup(r->pool, c->in, len);
	llhttp_errno_t err = llhttp_execute(&c->parser, head, len);
	if (err != HPE_OK && err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE) {
		consume(c, len);
		char msg[200];
		snprintf(msg, sizeof(msg), "malformed request: %s",
			 llhttp_get_error_reason(&c->parser));
		send_error(c, 400, "bad_request", msg);
		return;
	}
	consume(c, len);
	if (!r->head_parsed || !r->method) {
		send_error(c, 400, "bad_request", "malformed request head");
		return;
	}
	/* field values exclude trailing whitespace (RFC 9110 5.5); llhttp keeps it */
	for (size_t i = 0; i < r->nhdrs; i++)
		while (r->hdrs[i].vlen && (r->hdrs[i].value[r->hdrs[i].vlen - 1] == ' ' ||
					   r->hdrs[i].value[r->hdrs[i].vlen - 1] == '\t'))
			r->hdrs[i].value[--r->hdrs[i].vlen] = '\0';
	classify_all(r->hdrs, r->nhdrs);
	/* the client's request id is kept when it is a sane token */
	const hdr *rid = find_kind(r->hdrs, r->nhdrs, HK_REQUEST_ID);
	if (rid && sane_token(rid->value, rid->vlen, 128)) {
		memcpy(r->request_id, rid->value, rid->vlen);
		r->request_id[rid->vlen] = '\0';
		r->request_id_len = rid->vlen;
	} else {
		hex_random(c->w, r->request_id, 32);
		r->request_id_len = 32;
	}
	r->is_head = strcmp(r->method, "HEAD") == 0;
	r->idempotent = method_idempotent(r->method);
	c->keepalive = llhttp_should_keep_alive(&c->parser) != 0;
	/* llhttp reads any HTTP/d.d request line ("HTTP/2.0", "HTTP/0.9"):
	 * only 1.x is forwarded (as 1.1), as nginx has it */
	if (c->parser.http_major != 1) {
		c->keepalive = false;
		send_error(c, 505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1");
		return;
	}
	/* CONNECT asks for a tunnel to its authority, which the edge does not
	 * make; llhttp ends the message at its head whatever its framing says,
	 * and it went upstream as an upgrade with an empty Upgrade and a
	 * Content-Length whose body never followed. What follows it is not
	 * HTTP: the connection closes (nginx: 405 or 400). */
	if (c->parser.method == HTTP_CONNECT) {
		c->keepalive = false;
		/* a 405 must list what is allowed (RFC 9110 15.5.6): every
		 * standard method but CONNECT goes to the services */
		c->r->allow = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
		send_error(c, 405, "method_not_allowed", "CONNECT is not supported");
		return;
	}
	if (resolve_target(c, &why) < 0) {
		send_error(c, 400, "bad_request", why);
		return;
	}
	if (own_endpoint(c))
		return;

	sb_snapshot *s = r->snap;
	int lr = sb_route_lookup(s->cfg->routes, s->tenants, r->host, r->host_len, r->path,
				 r->path_len, &r->m);
	if (lr == SB_ESUSPENDED) {
		send_error(c, 403, "tenant_suspended", "this tenant is suspended");
		return;
	}
	if (lr == SB_EINVAL) { /* "a.example.com :80", "a..b": not a host name */
		send_error(c, 400, "bad_request", r->m.reason);
		return;
	}
	if (lr < 0) {
		send_error(c, 404, "not_found", r->m.reason ? r->m.reason : "not routed");
		return;
	}
	if (!r->m.deployment) {
		/* the edge compiles its routes without the naming rule (created
		 * and listed previews only), so every match has a deployment */
		send_error(c, 404, "not_found", "not routed");
		return;
	}
	const sb_model *m = s->cfg->model;
	r->env_name = sb_env_name(r->m.env);
	{
		size_t idx = (size_t)(r->m.deployment - m->deployments);
		sb_dep_rt *rt = &s->cfg->deps[idx];
		r->dep_name = r->m.deployment->name;
		r->up = rt->upstream;
		r->max_body = rt->max_body;
		r->secret = rt->secret;
		r->prev_secret = s->cfg->has_prev ? rt->prev_secret : NULL;
	}
	if (!r->up) {
		send_error(c, 502, "no_upstream", "this deployment has no running upstream");
		return;
	}
	if (!atomic_load(&r->up->up)) {
		send_error(c, 503, "upstream_down", "every upstream of this deployment is down");
		return;
	}
	if (r->has_cl && r->content_length > r->max_body) {
		send_error(c, 413, "body_too_large", "the request body exceeds the limit");
		return;
	}
	if (r->chunked && c->in_len) {
		/* Check the chunk framing we already hold before anything goes
		 * upstream, on a copy of the parser: a bad chunk size then gets a
		 * 400, and a body already over the limit a 413, with nothing
		 * forwarded. Bytes that arrive later are checked as they stream;
		 * the upstream then sees a cut-off request. */
		llhttp_t dry = c->parser;
		r->validating = true;
		llhttp_errno_t e2 = req_execute(&dry, r, c->in, c->in_len);
		r->validating = false;
		r->chunk_pause = false;
		r->last_byte = 0;
		bool long_ext = r->ext_bytes > CHUNK_EXT_MAX;
		bool too_big = r->body_in > r->max_body;
		if (e2 == HPE_OK || e2 == HPE_PAUSED) {
			r->ext_bytes = 0; /* counted again as the body streams */
			r->body_in = 0;
			r->crlf_due = 0;
		} else {
			c->in_len = 0;
			if (too_big)
				send_error(c, 413, "body_too_large",
					   "the request body exceeds the limit");
			else
				send_error(c, 400, "bad_request",
					   long_ext ? CHUNK_EXT_WHY : "malformed chunked body");
			return;
		}
	}
	if (r->expect_continue && (r->has_cl || r->chunked) && !r->body_done)
		cwrite(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	c->state = C_WAIT_UP;
	client_deadline(c, limits(c)->connect_timeout_ms);
	start_upstream(c);
}

static void client_input_run(client *c)
{
	while (c->state == C_HEAD && c->in_len > 0 && !c->closing) {
		const char *why = NULL;
		if (c->wq > HIGH_WATER) {
			/* pipelined requests the edge answers itself (404s, health)
			 * while the client reads nothing: wait for it to drain
			 * (on_client_drained) instead of queueing without bound */
			client_read_stop(c);
			return;
		}
		/* empty lines before a request line are ignored (RFC 9112 2.2),
		 * here, so that the head's checks start at its request line */
		size_t skip = 0;
		while (skip + 1 < c->in_len && c->in[skip] == '\r' && c->in[skip + 1] == '\n')
			skip += 2;
		if (skip) {
			consume(c, skip);
			continue;
		}
		ssize_t hl = head_scan(c, &why);
		if (hl == 0) {
			client_read_start(c);
			return;
		}
		if (!c->r)
			c->r = req_new(c);
		if (hl == -2) {
			/* a request line that alone passes the limit is the target's
			 * fault: 414, as nginx answers */
			size_t max = limits(c)->max_header_bytes;
			const char *lf = memchr(c->in, '\n', c->in_len < max ? c->in_len : max);
			if (!lf)
				send_head_error(c, 414, "uri_too_long",
						"the request target is too long");
			else
				send_head_error(c, 431, "headers_too_large",
						"the request head is too large");
			return;
		}
		if (hl < 0) {
			send_head_error(c, 400, "bad_request", why);
			return;
		}
		handle_head(c, (size_t)hl);
	}
	if (c->state == C_BODY && c->in_len > 0) {
		req *cr = c->r;
		llhttp_errno_t err = req_execute(&c->parser, cr, c->in, c->in_len);
		if (err == HPE_PAUSED && cr->body_done && cr->chunked && c->u)
			uwrite(c->u, "0\r\n\r\n", 5); /* its end checked */
		size_t used = c->in_len;
		if (err == HPE_PAUSED) {
			used = (size_t)(llhttp_get_error_pos(&c->parser) - c->in);
			llhttp_resume(&c->parser);
		} else if (err == HPE_PAUSED_UPGRADE) {
			used = (size_t)(llhttp_get_error_pos(&c->parser) - c->in);
		} else if (err != HPE_OK) {
			c->in_len = 0;
			req *r = c->r;
			if (r->up_write_err && c->u) {
				/* not the client's fault: a 502 (or a cut response),
				 * where it was a 400 "malformed request body" */
				up_failed(c->u, "cannot send the request body",
					  r->up_write_err == -1 ? 0 : r->up_write_err);
				return;
			}
			bool too_big = r->body_in > r->max_body;
			bool long_ext = r->ext_bytes > CHUNK_EXT_MAX;
			if (c->u) {
				upconn *u = c->u;
				c->u = NULL;
				u->c = NULL;
				up_close(u);
			}
			if (!r->resp_started)
				send_error(c, too_big ? 413 : 400,
					   too_big ? "body_too_large" : "bad_request",
					   too_big    ? "the request body exceeds the limit"
					   : long_ext ? CHUNK_EXT_WHY
						      : "malformed request body");
			else
				client_close(c);
			return;
		}
		consume(c, used);
		if (c->r->body_done) {
			c->state = C_RESP;
		} else if (c->u && c->u->wq > HIGH_WATER) {
			client_read_stop(c);
		} else {
			client_read_start(c);
		}
	}
	if (c->state == C_HEAD && c->in_len == 0 && !c->closing) {
		/* waiting for a request again, after empty lines that followed the
		 * last one (some clients send a CRLF after each request) */
		if (!c->r && !c->idle_listed)
			idle_enter(c);
		if (!c->r) {
			c->head_at = 0;
			wait_deadline(c, 0);
		}
		client_read_start(c);
	}
}

/*
 * Parse what the client sent. Requests the edge answers itself finish
 * inside this call; finish_request then leaves the next pipelined head to
 * the loop here instead of calling back in, so a read full of such requests
 * costs one stack frame, not one per request.
 */
static void client_input(client *c)
{
	bool nested = c->in_input;
	c->in_input = true;
	client_input_run(c);
	if (!nested)
		c->in_input = false;
}

/* The request head is written: move on to the body. */
static void request_sent_head(client *c)
{
	req *r = c->r;
	client_deadline(c, limits(c)->response_timeout_ms);
	if (r->upgrade) {
		/* bytes the client sent after the head wait for the answer: they
		 * are the new protocol's after a 101 (tunnel_start sends them), and
		 * the next request after anything else */
		c->state = C_RESP;
		r->body_done = true;
		return;
	}
	if (r->body_done) {
		c->state = C_RESP;
		return;
	}
	c->state = C_BODY;
	client_input(c);
	if (c->state == C_BODY)
		client_read_start(c);
}

static void finish_request(client *c)
{
	req *r = c->r;
	if (!r)
		return;
	access_log(c);
	c->eof_framed = r->resp_eof;
	req_free(r);
	c->r = NULL;
	client_deadline(c, 0);
	if (c->state == C_CLOSING)
		return;
	if (!c->keepalive || atomic_load(&c->w->edge->stopping) || (c->eof && !c->in_len)) {
		c->state = C_HEAD;
		c->closing = true;
		client_read_stop(c);
		if (c->wq == 0)
			client_finish(c);
		else /* a client that stops reading is not waited for forever */
			client_deadline(c, limits(c)->response_timeout_ms);
		return;
	}
	c->state = C_HEAD;
	c->scan = 0;
	/* The wait for the next request begins now: the idle timeout, also
	 * when what is buffered turns out to be empty lines (wait_deadline(c,
	 * 0) then restores this wait, not one begun with the connection). A
	 * pipelined head waiting in the buffer begins now too. */
	uint64_t now = uv_now(&c->w->loop);
	c->wait_until = now + limits(c)->idle_timeout_ms;
	c->head_at = c->in_len ? now : 0;
	client_deadline(c, c->in_len ? limits(c)->header_timeout_ms : limits(c)->idle_timeout_ms);
	if (!c->in_len) {
		idle_enter(c);
		client_read_start(c);
	} else if (!c->in_input)
		client_input(c);
}

/* ---- upstream connections ------------------------------------------------ */

static void up_freed(uv_handle_t *h)
{
	upconn *u = h->data;
	if (--u->handles == 0) {
		/* the last touch of u->up: the control thread may free it at 0 */
		atomic_fetch_sub(&u->up->refs, 1);
		sb_buf_free(&u->ob);
		free(u);
	}
}

static void pool_remove(upconn *u)
{
	if (!u->idle)
		return;
	sb_worker *w = u->w;
	struct sb_pool_list *pl = &w->pools[u->up->id];
	if (u->prev)
		u->prev->next = u->next;
	else
		pl->head = u->next;
	if (u->next)
		u->next->prev = u->prev;
	u->next = u->prev = NULL;
	u->idle = false;
}

static void up_close(upconn *u)
{
	if (u->closing)
		return;
	write_held(false, u); /* out before the close, as if never held */
	pool_remove(u);
	u->closing = true;
	u->fd = -1; /* libuv closes it: the number may be reused at once */
	uv_close((uv_handle_t *)&u->timer, up_freed);
	uv_close((uv_handle_t *)&u->tcp, up_freed);
}

void sb_proxy_up_resume(upconn *u);

static void up_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void up_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static _Thread_local char slab[READ_CHUNK];
	buf->base = slab;
	buf->len = sizeof(slab);
}

void sb_proxy_up_resume(upconn *u)
{
	if (!u->reading && !u->closing) {
		uv_read_start((uv_stream_t *)&u->tcp, up_alloc, up_read_cb);
		u->reading = true;
	}
}

static void on_up_drained(upconn *u)
{
	client *c = u->c;
	if (!c || c->state == C_CLOSING)
		return;
	if (c->state == C_TUNNEL && c->tun_c_eof)
		tunnel_shut(c); /* the client's FIN follows what it sent */
	else if (c->state == C_BODY || c->state == C_TUNNEL)
		client_read_start(c);
}

static uint32_t limits_up_idle(const upconn *u)
{
	return u->w->snap->cfg->decl->http.upstream_idle_ms;
}

/* Idle in the pool too long: closed. The timer is armed when a
 * connection first goes idle and left running while it is in use, so that
 * taking a connection from the pool and putting it back costs no timer
 * operation; when it fires it looks at how long the connection has been
 * idle, and re-arms for the rest. */
static void idle_timeout(uv_timer_t *t)
{
	upconn *u = t->data;
	uint64_t limit = limits_up_idle(u), now = uv_now(t->loop);
	if (!u->idle) {
		uv_timer_start(t, idle_timeout, limit, 0);
		return;
	}
	if (now - u->idle_since < limit) {
		uv_timer_start(t, idle_timeout, limit - (now - u->idle_since), 0);
		return;
	}
	up_close(u);
}

static void up_release(upconn *u, bool reusable)
{
	client *c = u->c;
	if (c)
		c->u = NULL;
	u->c = NULL;
	if (!reusable || u->closing || atomic_load(&u->w->edge->stopping)) {
		up_close(u);
		return;
	}
	/* keep reading while idle: an EOF then closes it at once */
	struct sb_pool_list *pl = &u->w->pools[u->up->id];
	u->next = pl->head;
	u->prev = NULL;
	if (pl->head)
		pl->head->prev = u;
	pl->head = u;
	u->idle = true;
	u->idle_since = uv_now(u->timer.loop);
	sb_proxy_up_resume(u);
	if (!uv_is_active((uv_handle_t *)&u->timer))
		uv_timer_start(&u->timer, idle_timeout, limits_up_idle(u), 0);
}

/* May a request go again on a fresh connection when its upstream
 * connection failed before any answer? Idempotent, and nothing of it
 * streamed that cannot be sent again (a body, a tunnel's bytes). */
static bool retry_safe(const req *r)
{
	return r->idempotent && !r->has_cl && !r->chunked && !r->upgrade;
}

/*
 * The edge's own lack of a descriptor (the open-file limit) fails every
 * request that needs a new upstream connection: said at most once a second
 * per thread, with the count of those not said, as the access log's lost
 * lines are (log_lost), rather than a line per request, which flooded
 * stderr. Returns whether this failure is said; more ends its line.
 */
static bool lack_say(sb_worker *w, int uverr, char *more, size_t size)
{
	more[0] = '\0';
	if (uverr != UV_EMFILE && uverr != UV_ENFILE && uverr != UV_ENOBUFS && uverr != UV_ENOMEM)
		return true;
	uint64_t now = uv_now(&w->loop);
	if (w->lack_said_at && now - w->lack_said_at < 1000) {
		w->lack_unsaid++;
		return false;
	}
	snprintf(more, size,
		 "; said at most once a second: %" PRIu64
		 " more such failure(s) since the last such warning",
		 w->lack_unsaid);
	w->lack_unsaid = 0;
	w->lack_said_at = now ? now : 1;
	return true;
}

static void up_failed(upconn *u, const char *what, int uverr)
{
	client *c = u->c;
	u->c = NULL;
	up_close(u);
	if (!c)
		return;
	c->u = NULL;
	req *r = c->r;
	if (!r || c->state == C_CLOSING)
		return;
	if (r->resp_started) {
		/* part of the response went out: the client must see it cut */
		client_cut(c);
		return;
	}
	/* retry once on a fresh connection when nothing could have been
	 * processed: an idempotent request without a body on a reused one */
	if (u->reused && !u->got_bytes && !r->retried && retry_safe(r)) {
		r->retried = true;
		c->state = C_WAIT_UP;
		/* a new connection: its connect timeout, not what is left of
		 * the response timeout the failed one was under */
		client_deadline(c, limits(c)->connect_timeout_ms);
		start_upstream(c);
		return;
	}
	char msg[200];
	snprintf(msg, sizeof(msg), "the upstream failed: %s%s%s", what, uverr ? ": " : "",
		 uverr ? uv_strerror(uverr) : "");
	char more[128];
	if (lack_say(c->w, uverr, more, sizeof(more)))
		sb_edge_log("warning", "%s %.*s%.*s: upstream %s: %s%s", r->method,
			    (int)r->host_len, r->host, (int)r->path_len, r->path,
			    r->up ? r->up->url : "?", msg, more);
	if (r->body_done || (!r->has_cl && !r->chunked))
		send_error(c, 502, "bad_gateway", msg);
	else {
		c->keepalive = false;
		send_error(c, 502, "bad_gateway", msg);
	}
}

/*
 * A tunnel's half-close, as HAProxy's tunnel mode has it: a FIN from one
 * side goes on to the other (shutdown) once everything that came before it
 * has been written there, and that other side may go on sending. The tunnel
 * ends when both FINs have been passed on. Closing at the first FIN, as the
 * edge did, dropped the bytes still queued for the other side and cut off
 * an answer sent after a client's EOF.
 */
static void tunnel_shut(client *c)
{
	upconn *u = c->u;
	if (!u || u->closing) {
		client_close(c);
		return;
	}
	if (c->tun_c_eof && !c->tun_u_shut && u->wq == 0) {
		if (shutdown(u->fd, SHUT_WR) < 0) {
			client_close(c);
			return;
		}
		c->tun_u_shut = true;
	}
	if (c->tun_u_eof && !c->tun_c_shut && c->wq == 0) {
		if (shutdown(c->fd, SHUT_WR) < 0) {
			client_close(c);
			return;
		}
		c->tun_c_shut = true;
	}
	if (c->tun_u_shut && c->tun_c_shut)
		client_close(c); /* both ways done: logged once, here */
}

static void tunnel_start(client *c, upconn *u, const char *rest, size_t n)
{
	c->state = C_TUNNEL;
	/* no byte either way for this long ends it, as nginx's
	 * proxy_read_timeout ends a proxied WebSocket */
	client_deadline(c, limits(c)->response_timeout_ms);
	if (n && cwrite(c, rest, n) < 0) {
		client_close(c);
		return;
	}
	if (c->in_len) { /* what the client sent before the 101 came */
		if (c->r)
			c->r->body_in += c->in_len;
		if (uwrite(u, c->in, c->in_len) < 0) {
			client_close(c);
			return;
		}
	}
	c->in_len = 0;
	if (c->eof) { /* its FIN came before the 101: passed on after them */
		c->tun_c_eof = true;
		tunnel_shut(c);
		return;
	}
	client_read_start(c);
}

static void up_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	upconn *u = s->data;
	client *c = u->c;
	if (!c) {
		/* idle in the pool: EOF or stray bytes both end it */
		up_close(u);
		return;
	}
	if (c->state == C_TUNNEL) {
		if (n == 0)
			return;
		if (n == UV_EOF) {
			uv_read_stop(s);
			u->reading = false;
			c->tun_u_eof = true;
			tunnel_shut(c);
			return;
		}
		if (n < 0 || cwrite(c, buf->base, (size_t)n) < 0) {
			client_close(c);
			return;
		}
		client_deadline(c, limits(c)->response_timeout_ms);
		if (c->wq > HIGH_WATER) {
			uv_read_stop(s);
			u->reading = false;
		}
		return;
	}
	if (n < 0) {
		if (n == UV_EOF && c->r && c->r->resp_started) {
			/* close-delimited body ends here */
			llhttp_errno_t fe = llhttp_finish(&u->parser);
			/* on_resp_complete pauses: that is llhttp_finish's answer */
			if ((fe == HPE_OK || fe == HPE_PAUSED) && c->r->resp_done) {
				up_release(u, false);
				finish_request(c);
				return;
			}
		}
		up_failed(u, n == UV_EOF ? "connection closed" : "read error",
			  n == UV_EOF ? 0 : (int)n);
		return;
	}
	if (n == 0)
		return;
	if (u->ob_held && !u->got_bytes) {
		/* The request's head is still held (see hold): nothing of it
		 * went out, so these bytes answer no request of ours. The
		 * connection came from the pool in this pass of the loop, and
		 * what its upstream sent after its last response (a second
		 * answer, a late body) arrived in the same pass: read as this
		 * request's answer, it reached the wrong client. The head is
		 * dropped unsent, and the request goes on a fresh connection
		 * when it can (up_failed). */
		u->wq -= u->ob.len;
		sb_buf_reset(&u->ob);
		u->ob_held = false;
		up_failed(u, "bytes before the request was sent", 0);
		return;
	}
	u->got_bytes = true;
	client_deadline(c, 0);
	if (u->crlf_due && !chunk_crlf(&u->crlf_due, buf->base, buf->base + n)) {
		c->r->resp_err = "a chunk whose data is not followed by CRLF";
		up_failed(u, c->r->resp_err, 0);
		return;
	}
	req *r = c->r;
	u->rd_end = buf->base + n;
	c->gather = true;
	const char *from = buf->base;
	llhttp_errno_t err;
	for (;;) {
		err = llhttp_execute(&u->parser, from, (size_t)(u->rd_end - from));
		if (err != HPE_PAUSED || u->pause == UP_RUN)
			break;
		from = llhttp_get_error_pos(&u->parser);
		if ((err = resp_line_end(u, buf->base)) != HPE_OK)
			break;
		llhttp_resume(&u->parser);
	}
	if (err == HPE_OK && u->in_head &&
	    !cr_then_lf(u, u->head_from ? u->head_from : buf->base, u->rd_end)) {
		r->resp_err = "a CR not followed by LF in a response head";
		err = HPE_USER;
	}
	u->head_from = NULL; /* a head still being read goes on at the next read */
	if (err == HPE_PAUSED && r->resp_done && (u->parser.flags & F_CHUNKED) &&
	    !(u->parser.flags & F_SKIPBODY)) {
		/* the line end after the last chunk (and its trailers) */
		const char *pos = llhttp_get_error_pos(&u->parser);
		if ((pos > buf->base ? pos[-1] : u->last_byte) != '\n') {
			r->resp_err = "a chunked body not ended by CRLF";
			r->resp_done = false;
			err = HPE_USER;
		} else if (r->resp_chunked) {
			cwrite(c, "0\r\n\r\n", 5);
		}
	}
	u->last_byte = buf->base[n - 1];
	c->gather = false;
	cflush_held(c);
	if (err == HPE_PAUSED_UPGRADE && r->status == 101) {
		size_t used = (size_t)(llhttp_get_error_pos(&u->parser) - buf->base);
		tunnel_start(c, u, buf->base + used, (size_t)n - used);
		return;
	}
	if (err == HPE_PAUSED && r->resp_done) {
		size_t used = (size_t)(llhttp_get_error_pos(&u->parser) - buf->base);
		/* an upgrade the upstream refused: not reused, whatever state the
		 * request left it in */
		bool reusable = used == (size_t)n && llhttp_should_keep_alive(&u->parser) &&
				!r->resp_conn_close && r->body_done && !r->upgrade;
		up_release(u, reusable);
		if (r->resp_close || !r->body_done)
			c->keepalive = false;
		finish_request(c);
		return;
	}
	if (err != HPE_OK) {
		up_failed(u, r->resp_err ? r->resp_err : llhttp_get_error_reason(&u->parser), 0);
		return;
	}
	if (r->nrhdrs)
		pin_hdrs(r->pool, r->rhdrs, r->nrhdrs, buf->base, (size_t)n);
	if (c->wq > HIGH_WATER) {
		uv_read_stop(s);
		u->reading = false;
	}
	client_deadline(c, limits(c)->response_timeout_ms);
}

/* Attach u to c's request and send the head. */
static void up_begin(client *c, upconn *u)
{
	req *r = c->r;
	c->u = u;
	u->c = c;
	u->got_bytes = false;
	u->crlf_due = 0;
	u->pause = UP_RUN;
	u->head_from = NULL;
	u->in_head = true;
	u->cr_pending = false;
	llhttp_init(&u->parser, HTTP_RESPONSE, &resp_settings);
	u->parser.data = u;
	/* the idle timer keeps running: idle_timeout sees u->idle false */
	sb_buf *b = &c->w->scratch;
	sb_buf_reset(b);
	build_upstream_head(c, b);
	int w = 0;
	if (holdable((uv_stream_t *)&u->tcp, u->fd, u->wq, u->closing)) {
		sb_buf_add(&u->ob, b->data, b->len);
		u->ob_held = true;
		u->wq += b->len;
		hold(c->w, u, false);
	} else {
		w = uwrite(u, b->data, b->len);
	}
	if (w < 0) {
		up_failed(u, "write failed", w);
		return;
	}
	sb_proxy_up_resume(u);
	request_sent_head(c);
	(void)r;
}

static void up_connected(uv_connect_t *cr, int status)
{
	upconn *u = cr->data;
	if (u->closing)
		return;
	if (status < 0) {
		up_failed(u, "cannot connect", status);
		return;
	}
	u->connected = true;
	uv_os_fd_t fd;
	if (uv_fileno((uv_handle_t *)&u->tcp, &fd) == 0)
		u->fd = fd;
	client *c = u->c;
	if (!c) {
		up_close(u);
		return;
	}
	up_begin(c, u);
}

/* Has the upstream closed (or sent stray bytes on) this idle pooled
 * connection? Looked at without reading. */
static bool pooled_closed(const upconn *u)
{
	char b;
	ssize_t n;
	if (u->fd < 0)
		return true;
	do
		n = recv(u->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

static void start_upstream(client *c)
{
	req *r = c->r;
	sb_worker *w = c->w;
	sb_upstream *up = r->up;
	if (up->id >= w->npools) {
		size_t n = up->id + 16;
		w->pools = sb_xrealloc(w->pools, n * sizeof(*w->pools));
		memset(w->pools + w->npools, 0, (n - w->npools) * sizeof(*w->pools));
		w->npools = n;
	}
	upconn *u = r->retried ? NULL : w->pools[up->id].head;
	/* A request that cannot be retried does not take a pooled connection
	 * whose upstream closed it (its keep-alive timeout) in the same pass of
	 * the loop, the close not read yet: it would fail there for good. One
	 * recv() per such request; one that can be retried just is. */
	while (u && !retry_safe(r) && pooled_closed(u)) {
		up_close(u);
		u = w->pools[up->id].head;
	}
	if (u) {
		pool_remove(u);
		u->reused = true;
		up_begin(c, u);
		return;
	}
	u = sb_xcalloc(1, sizeof(*u));
	u->fd = -1;
	u->w = w;
	u->up = up;
	atomic_fetch_add(&up->refs, 1); /* the request's snapshot holds one already */
	u->c = c;
	c->u = u;
	u->handles = 2;
	uv_tcp_init(&w->loop, &u->tcp);
	uv_timer_init(&w->loop, &u->timer);
	u->tcp.data = u->timer.data = u->creq.data = u;
	uv_tcp_nodelay(&u->tcp, 1);
	int rc =
	    uv_tcp_connect(&u->creq, &u->tcp, (const struct sockaddr *)&up->addr, up_connected);
	if (rc < 0)
		up_failed(u, "cannot connect", rc);
}

/* ---- accepting and worker control --------------------------------------- */

void sb_proxy_on_connection(uv_stream_t *server, int status)
{
	sb_worker *w = server->data;
	if (status < 0 || w->stopping)
		return;
	client *c = sb_xcalloc(1, sizeof(*c));
	c->fd = -1;
	c->w = w;
	uv_tcp_init(&w->loop, &c->tcp);
	uv_timer_init(&w->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	c->next = w->conns;
	if (c->next)
		c->next->prev = c;
	w->conns = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		client_close(c);
		return;
	}
	c->counted = true;
	w->nconns++;
	long total = atomic_fetch_add(&w->edge->nconns, 1) + 1;
	uint32_t maxc = limits(c)->max_connections;
	if (total > (long)maxc && !evict_idle(w)) {
		client_close(c); /* over the limit, nothing idle here: refuse at once */
		/* the operator is told, as nginx's "worker_connections are not
		 * enough", at most once a second per thread under a flood; on the
		 * loop's monotonic clock, which a step of the wall clock back does
		 * not silence */
		uint64_t now = uv_now(&w->loop);
		w->refused++;
		if (!w->refused_warned_at || now - w->refused_warned_at >= 1000) {
			sb_edge_log("warning",
				    "max_connections (%u) reached and no connection idle on "
				    "thread %d: refused %llu connection(s) since the last such "
				    "warning",
				    maxc, w->id, (unsigned long long)w->refused);
			w->refused = 0;
			w->refused_warned_at = now;
		}
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_os_fd_t fd;
	if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
		c->fd = fd;
	struct sockaddr_storage peer;
	int plen = sizeof(peer);
	c->peer[0] = '\0';
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &plen) == 0) {
		if (peer.ss_family == AF_INET)
			uv_ip4_name((struct sockaddr_in *)&peer, c->peer, sizeof(c->peer));
		else
			uv_ip6_name((struct sockaddr_in6 *)&peer, c->peer, sizeof(c->peer));
		c->trusted = peer_trusted(limits(c), &peer);
	}
	c->state = C_HEAD;
	c->keepalive = true;
	wait_deadline(c, limits(c)->header_timeout_ms);
	idle_enter(c);
	client_read_start(c);
}

void sb_proxy_worker_refresh(sb_worker *w)
{
	sb_edge *e = w->edge;
	uint64_t seq = atomic_load(&e->seq);
	if (seq != w->snap_seq) {
		uv_mutex_lock(&e->snap_lock);
		sb_snapshot *s = e->current;
		sb_snapshot_ref(s);
		uv_mutex_unlock(&e->snap_lock);
		sb_snapshot *old = w->snap;
		w->snap = s;
		w->dns = s->dns;
		w->snap_seq = seq;
		sb_snapshot_unref(old);
	}
}

static void listener_stopped(uv_handle_t *h)
{
	(void)h; /* its handles are closed: the loop ends without them */
}

void sb_proxy_worker_wake(sb_worker *w)
{
	sb_edge *e = w->edge;
	sb_proxy_worker_refresh(w);
	if (atomic_load(&e->stopping) && !w->stopping) {
		w->stopping = true;
		if (!w->listener_closed) {
			/* the socket too (the guard's spare): it takes no more
			 * connections into a queue nobody would accept */
			sb_accept_guard_close(&w->listener, listener_stopped);
			w->listener_closed = true;
		}
		sb_dns_io_stop(w->dnsio);
		w->dnsio = NULL;
		/* idle connections go now; busy ones after their response */
		for (client *c = w->conns, *n; c; c = n) {
			n = c->next;
			if (c->state == C_HEAD && c->in_len == 0 && !c->r && c->wq == 0) {
				client_close(c);
			} else if (c->state == C_HEAD && c->in_len == 0 && !c->r && !c->closing) {
				/* between requests, the last response still queued: it
				 * goes out first (on_client_drained), then the close. A
				 * head partly received is a request in flight: it is
				 * served, then the connection closes (finish_request) */
				c->closing = true;
				client_read_stop(c);
				if (c->wq == 0)
					client_finish(c);
				else
					client_deadline(c, limits(c)->response_timeout_ms);
			} else {
				c->keepalive = false;
			}
		}
		/* pooled upstream connections are not needed any more */
		for (size_t i = 0; i < w->npools; i++)
			while (w->pools[i].head)
				up_close(w->pools[i].head);
	}
	if (atomic_load(&e->force_close))
		sb_proxy_worker_close_all(w);
	if (w->stopping && w->nconns == 0)
		worker_release(w);
}

void sb_proxy_worker_close_all(sb_worker *w)
{
	for (client *c = w->conns, *n; c; c = n) {
		n = c->next;
		client_cut(c);
	}
}

void sb_proxy_worker_free(sb_worker *w)
{
	log_final(w); /* the lines of the last iteration, the backlog */
	sb_sign_thread_cleanup();
	free(w->held);
	w->held = NULL;
	w->nheld = w->held_cap = 0;
	free(w->pools);
	w->pools = NULL;
	w->npools = 0;
}
