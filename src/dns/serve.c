/* DNS sockets of a serving thread (see serve.h). */
#include "dns/serve.h"

#include <stdlib.h>
#include <string.h>

#include "common/sb.h"
#include "dns/rrl.h"
#include "dns/wire.h"
#include "dns/xfr.h"

#define TCP_MAX_MSG 65535
#define TCP_IDLE_MS 10000 /* RFC 7766: idle TCP connections are closed */
#define TCP_MAX_CONNS 512

struct tcpconn;

struct sb_dns_io {
	uv_udp_t udp;
	uv_tcp_t tcp;
	bool has_udp, has_tcp, stopping;
	const sb_dns_zones *const *zones;
	struct tcpconn *conns;
	size_t nconns;
	int open_handles;
};

typedef struct tcpconn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	sb_dns_io *io;
	struct tcpconn *next, *prev;
	struct sockaddr_storage peer;
	sb_dns_xfr_stream *stream; /* a transfer in progress: reading paused */
	uint8_t in[2 + TCP_MAX_MSG];
	size_t in_len;
	int handles;
	bool closing, reading;
} tcpconn;

static void io_handle_closed(uv_handle_t *h)
{
	sb_dns_io *io = h->data;
	if (--io->open_handles == 0 && io->nconns == 0)
		free(io);
}

/* ---- UDP ---------------------------------------------------------------- */

static void udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static _Thread_local char slab[65536];
	buf->base = slab;
	buf->len = sizeof(slab);
}

static void udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr,
		     unsigned flags)
{
	sb_dns_io *io = h->data;
	const sb_dns_zones *z = *io->zones;
	if (n <= 0 || !addr || !z || (flags & UV_UDP_PARTIAL))
		return;
	uint8_t resp[4096];
	size_t rl = 0;
	if (sb_dns_xfr_answer(z, (const uint8_t *)buf->base, (size_t)n, addr, false, resp,
			      sizeof(resp), &rl, NULL) < 0)
		return; /* garbage and responses are dropped */
	/* RRL (rrl.h), when [dns] rrl is set: over the rate, drop or slip */
	sb_dns_rrl_action act = sb_dns_rrl_check(sb_dns_xfr_rrl(z), addr, uv_now(h->loop));
	if (act == SB_DNS_RRL_DROP)
		return;
	if (act == SB_DNS_RRL_SLIP)
		rl = sb_dns_wire_truncate(resp, rl);
	uv_buf_t out = uv_buf_init((char *)resp, (unsigned)rl);
	/* a full socket buffer drops the answer, as a busy UDP server must */
	uv_udp_try_send(h, &out, 1, addr);
}

/* ---- TCP ---------------------------------------------------------------- */

static void conn_closed(uv_handle_t *h)
{
	tcpconn *c = h->data;
	if (--c->handles > 0)
		return;
	sb_dns_io *io = c->io;
	sb_dns_xfr_stream_free(c->stream);
	if (c->prev)
		c->prev->next = c->next;
	else
		io->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	io->nconns--;
	free(c);
	if (io->stopping && io->nconns == 0 && io->open_handles == 0)
		free(io);
}

static void conn_close(tcpconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->timer, conn_closed);
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void conn_idle(uv_timer_t *t)
{
	conn_close(t->data);
}

typedef struct twrite {
	uv_write_t w;
	tcpconn *c;
	bool stream; /* a message of the transfer in progress */
	uint8_t data[];
} twrite;

static void conn_process(tcpconn *c);
static void stream_next(tcpconn *c);

static void tcp_written(uv_write_t *w, int status)
{
	twrite *tw = (twrite *)w;
	tcpconn *c = tw->c;
	bool stream = tw->stream;
	free(tw);
	if (status < 0)
		conn_close(c);
	else if (stream && c->stream && !c->closing)
		stream_next(c); /* one message in flight: a transfer streams at the client's pace */
}

/* Send a response of rl bytes already at tw->data + 2. Returns 0, or -1 when
 * the connection was closed. */
static int conn_send(tcpconn *c, twrite *tw, size_t rl, bool stream)
{
	tw->data[0] = (uint8_t)(rl >> 8);
	tw->data[1] = (uint8_t)rl;
	tw->c = c;
	tw->stream = stream;
	uv_buf_t b = uv_buf_init((char *)tw->data, (unsigned)(rl + 2));
	if (uv_write(&tw->w, (uv_stream_t *)&c->tcp, &b, 1, tcp_written) < 0) {
		free(tw);
		conn_close(c);
		return -1;
	}
	return 0;
}

/* The next message of the transfer in progress; at its end, the queries
 * that were pipelined behind it. */
static void stream_next(tcpconn *c)
{
	twrite *tw = sb_xmalloc(sizeof(*tw) + 2 + TCP_MAX_MSG);
	size_t rl = 0;
	int r = sb_dns_xfr_next(c->stream, tw->data + 2, TCP_MAX_MSG, &rl);
	if (r <= 0) {
		free(tw);
		sb_dns_xfr_stream_free(c->stream);
		c->stream = NULL;
		if (r < 0)
			conn_close(c);
		else
			conn_process(c);
		return;
	}
	uv_timer_start(&c->timer, conn_idle, TCP_IDLE_MS, 0);
	conn_send(c, tw, rl, true);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	tcpconn *c = h->data;
	buf->base = (char *)c->in + c->in_len;
	buf->len = sizeof(c->in) - c->in_len;
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	tcpconn *c = s->data;
	if (n < 0) {
		conn_close(c);
		return;
	}
	c->in_len += (size_t)n;
	uv_timer_start(&c->timer, conn_idle, TCP_IDLE_MS, 0);
	conn_process(c);
}

/* Answer the complete queries in the buffer: several length-prefixed
 * queries may arrive in one read (pipelining). A zone transfer stops reading
 * until its last message is written (stream_next). */
static void conn_process(tcpconn *c)
{
	while (!c->closing && !c->stream && c->in_len >= 2) {
		size_t ml = (size_t)c->in[0] << 8 | c->in[1];
		if (c->in_len < 2 + ml)
			break;
		const sb_dns_zones *z = *c->io->zones;
		twrite *tw = sb_xmalloc(sizeof(*tw) + 2 + TCP_MAX_MSG);
		size_t rl = 0;
		sb_dns_xfr_stream *st = NULL;
		if (!z || sb_dns_xfr_answer(z, c->in + 2, ml, (const struct sockaddr *)&c->peer,
					    true, tw->data + 2, TCP_MAX_MSG, &rl, &st) < 0) {
			free(tw);
			conn_close(c); /* a malformed query ends the stream */
			return;
		}
		memmove(c->in, c->in + 2 + ml, c->in_len - 2 - ml);
		c->in_len -= 2 + ml;
		if (conn_send(c, tw, rl, st != NULL) < 0) {
			sb_dns_xfr_stream_free(st);
			return;
		}
		c->stream = st;
	}
	if (c->closing)
		return;
	if (c->stream && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	} else if (!c->stream && !c->reading) {
		uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
		c->reading = true;
	}
}

static void tcp_accept(uv_stream_t *server, int status)
{
	sb_dns_io *io = server->data;
	if (status < 0 || io->stopping)
		return;
	tcpconn *c = sb_xcalloc(1, sizeof(*c));
	c->io = io;
	c->handles = 2;
	uv_tcp_init(server->loop, &c->tcp);
	uv_timer_init(server->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->next = io->conns;
	if (c->next)
		c->next->prev = c;
	io->conns = c;
	io->nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || io->nconns > TCP_MAX_CONNS) {
		conn_close(c);
		return;
	}
	int plen = sizeof(c->peer);
	uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &plen);
	uv_timer_start(&c->timer, conn_idle, TCP_IDLE_MS, 0);
	uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
	c->reading = true;
}

int sb_dns_io_start(uv_loop_t *loop, int udp_fd, int tcp_fd, const sb_dns_zones *const *zones,
		    sb_dns_io **out)
{
	int r;
	sb_dns_io *io = sb_xcalloc(1, sizeof(*io));
	io->zones = zones;
	if (udp_fd >= 0) {
		uv_udp_init(loop, &io->udp);
		io->udp.data = io;
		io->has_udp = true;
		io->open_handles++;
		if ((r = uv_udp_open(&io->udp, udp_fd)) < 0 ||
		    (r = uv_udp_recv_start(&io->udp, udp_alloc, udp_recv)) < 0)
			goto fail;
	}
	if (tcp_fd >= 0) {
		uv_tcp_init(loop, &io->tcp);
		io->tcp.data = io;
		io->has_tcp = true;
		io->open_handles++;
		if ((r = uv_tcp_open(&io->tcp, tcp_fd)) < 0 ||
		    (r = uv_listen((uv_stream_t *)&io->tcp, 1024, tcp_accept)) < 0)
			goto fail;
	}
	*out = io;
	return 0;
fail:
	sb_dns_io_stop(io);
	*out = NULL;
	return r;
}

void sb_dns_io_stop(sb_dns_io *io)
{
	if (!io || io->stopping)
		return;
	io->stopping = true;
	for (tcpconn *c = io->conns, *n; c; c = n) {
		n = c->next;
		conn_close(c);
	}
	bool any = io->has_udp || io->has_tcp;
	if (io->has_udp)
		uv_close((uv_handle_t *)&io->udp, io_handle_closed);
	if (io->has_tcp)
		uv_close((uv_handle_t *)&io->tcp, io_handle_closed);
	if (!any && io->nconns == 0)
		free(io);
}
