/*
 * demo-service: one program that stands for each of the plan's services
 * (codex-web, stripe-webhook-handler, auth-worker) and is the upstream of the
 * edge's end-to-end tests. One libuv loop, llhttp for HTTP/1.1.
 *
 * demo_service.c  flags, listener, signals, the --sign-* modes
 * demo_http.c     connections, HTTP parsing, the endpoints
 * demo_ws.c       the WebSocket handshake and echo (RFC 6455)
 */
#ifndef SB_DEMO_H
#define SB_DEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>
#include <openssl/evp.h>
#include <uv.h>

#include "common/sb.h"
#include "http/sign.h"

/* What the flags set; read-only once the loop runs. */
struct demo_config {
	const char *name;
	const char *env;
	const char *unhealthy_file; /* NULL: always healthy */
	sb_sign_key *keys;	    /* secrets that verify X-Switchboard-Signature */
	size_t nkeys;
	int64_t tolerance_s;
};
extern struct demo_config demo_cfg;

/* One request header: offsets into demo_conn.raw. */
struct demo_hdr {
	size_t name, nlen, value, vlen;
};

enum demo_job { DEMO_JOB_NONE, DEMO_JOB_SLOW, DEMO_JOB_STREAM, DEMO_JOB_BIG };

struct demo_conn {
	uv_tcp_t tcp;
	uv_timer_t timer; /* /slow and /stream */
	uv_shutdown_t shut;
	int handles; /* open handles; freed when the last one has closed */
	struct demo_conn *prev, *next;

	/* received bytes not yet consumed: [in_off, in_len) of in */
	char *in;
	size_t in_off, in_len, in_cap;
	size_t out_pending; /* bytes handed to uv_write, not yet called back */
	bool reading;
	bool processing; /* inside demo_conn_process (no re-entry) */
	bool ending;	 /* no more input: shutting down after the writes */
	bool closed;	 /* uv_close called */
	bool busy;	 /* a response is being produced asynchronously */

	/* the request being parsed; raw holds the URL, then header bytes */
	llhttp_t parser;
	sb_buf raw;
	size_t url_len;
	struct demo_hdr *hdrs;
	size_t nhdrs, hdrs_cap;
	int hstate;	/* last header callback: 0 none, 1 field, 2 value */
	int err_status; /* status for a request refused while parsing */
	uint64_t body_bytes;
	EVP_MD_CTX *sha;
	char body_sha[SB_SIGN_HEX_LEN + 1];
	bool keep_alive, upgraded, http10, head;

	/* the response in progress */
	enum demo_job job;
	uint64_t job_n, job_i, job_ms;
	bool chunked;

	/* after a WebSocket upgrade */
	bool ws;
	bool ws_fragment; /* inside a fragmented message */
	bool ws_close_sent;
};

/* Accept one connection from the listener and start serving it. */
void demo_conn_accept(uv_stream_t *listener);
/* Close every connection now (shutdown of the process). */
void demo_conn_close_all(void);

/* Queue bytes: owned ones are freed once written, static ones never. */
void demo_conn_write_owned(struct demo_conn *c, char *p, size_t n);
void demo_conn_write_static(struct demo_conn *c, const char *p, size_t n);
/* Flush what is queued, send FIN, then close. */
void demo_conn_end(struct demo_conn *c);
/* Close at once (pending writes are dropped). */
void demo_conn_close(struct demo_conn *c);
/* Consume buffered input (HTTP or WebSocket) as far as the state allows. */
void demo_conn_process(struct demo_conn *c);

/* First value of a request header (any case) and how often it occurs. */
const char *demo_hdr_get(const struct demo_conn *c, const char *name, size_t *vlen, int *count);

/* Answer GET /ws: 0 once "101 Switching Protocols" is queued, otherwise the
 * HTTP status the caller should refuse the request with. */
int demo_ws_upgrade(struct demo_conn *c);
/* Handle one complete frame at in_off: true if it consumed one. */
bool demo_ws_step(struct demo_conn *c);

#endif
