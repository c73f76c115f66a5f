/* DNS sockets of a serving thread (see serve.h). */
#include "dns/serve.h"

#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/accept.h"
#include "common/sb.h"
#include "dns/rrl.h"
#include "dns/wire.h"
#include "dns/xfr.h"

#define TCP_MAX_MSG 65535
#define TCP_IDLE_MS 10000  /* RFC 7766: idle TCP connections are closed */
#define TCP_IO_MS 2000	   /* a message's bytes, once it has begun, must all arrive */
#define TCP_LINGER_MS 2000 /* an ending connection: to take an answer, or to close */
#define TCP_MAX_CONNS 512
#define TCP_WQ_MAX 65536 /* answers queued for a client before its reading pauses */

struct tcpconn;

struct udp_batch;

struct sb_dns_io {
	uv_poll_t udp; /* readable: a batch of queries (udp_readable) */
	int udp_fd;
	bool udp_pktinfo; /* bound to a wildcard address: answer from the query's */
	struct udp_batch *udpb;
	sb_accept_guard tcp; /* the listener (tcp.l.tcp), paused when accepting fails */
	bool has_udp, has_tcp, stopping;
	const sb_dns_zones *const *zones;
	void (*refresh)(void *arg); /* brings *zones up to date (may be NULL) */
	void *refresh_arg;
	struct tcpconn *conns;
	size_t nconns;
	int open_handles;
	uint8_t tcp_out[2 + TCP_MAX_MSG]; /* an answer is made here, then copied at its size */
};

typedef struct tcpconn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shut; /* an ending connection's FIN, after its answers */
	sb_dns_io *io;
	struct tcpconn *next, *prev;
	struct sockaddr_storage peer;
	sb_dns_xfr_stream *stream; /* a transfer in progress: reading paused */
	uint8_t in[2 + TCP_MAX_MSG];
	size_t in_len;
	size_t queued; /* bytes of answers written and not yet taken by the kernel */
	int handles;
	bool closing, reading;
	bool eof;	    /* the client shut its side: answer what came, then close */
	bool ending;	    /* the server ends it (conn_end): input is discarded */
	bool fin;	    /* ... and its FIN is out: the client's is awaited */
	bool partial;	    /* in holds the start of a message: TCP_IO_MS runs */
	uint64_t active_ms; /* loop time of the accept or of the last answer */
	uint64_t end_by;    /* an ending connection closes by then whatever it takes */
	int probe_outq;	    /* answer bytes in the kernel at the last idle probe (0: none yet) */
} tcpconn;

/* An ending connection's next wait: TCP_LINGER_MS, but never past end_by (a
 * client taking an answer now and then would hold it for ever, and its
 * slot: such a connection is not taken for a new one while it has answers
 * queued). */
static void linger(tcpconn *c, uv_timer_cb cb)
{
	uint64_t now = uv_now(c->timer.loop);
	uint64_t left = c->end_by > now ? c->end_by - now : 0;
	uv_timer_start(&c->timer, cb, left < TCP_LINGER_MS ? left : TCP_LINGER_MS, 0);
}

static void io_handle_closed(uv_handle_t *h)
{
	sb_dns_io *io = h->data;
	if (--io->open_handles == 0 && io->nconns == 0)
		free(io);
}

/* ---- UDP ----------------------------------------------------------------
 *
 * The UDP socket is ours, not a uv_udp_t: libuv makes one recvmsg per
 * datagram and uv_udp_try_send one sendmsg per response. At 100,000+
 * queries/s those system calls, and a wake-up of the client per response,
 * were the part of the cost that was ours to remove (docs/benchmarks.md,
 * DNS); the rest is the kernel's delivery of each datagram. A uv_poll_t
 * says when the socket is readable; then one recvmmsg takes up to UDP_BATCH
 * queries, they are answered one after the other, and one sendmmsg sends
 * the responses, as Knot DNS does.
 */

#define UDP_BATCH 32
/* Any datagram is read whole, as before: 64 KiB per query. The slots are
 * 256 bytes further apart so that their first bytes, the ones parsed, do
 * not all fall into the same cache sets (a 64 KiB stride would). Untouched
 * pages of the slots cost no memory. */
#define UDP_RX_MAX 65536
#define UDP_RX_SLOT (UDP_RX_MAX + 256)
/* More than the largest UDP response (SB_DNS_UDP_MAX), as before. */
#define UDP_TX_SLOT 4096
/* Room for the one control message we ask for (IP_PKTINFO or IPV6_PKTINFO). */
#define UDP_CTRL CMSG_SPACE(sizeof(struct in6_pktinfo))
/* Batches per readable event: other handles of the loop (HTTP) get their
 * turn in between; level-triggered polling brings us back at once. */
#define UDP_ROUNDS 8

struct udp_batch {
	struct mmsghdr in[UDP_BATCH], out[UDP_BATCH];
	struct iovec in_iov[UDP_BATCH], out_iov[UDP_BATCH];
	struct sockaddr_storage peer[UDP_BATCH];
	/* the destination address of each query (pktinfo), then the source of
	 * its answer */
	_Alignas(struct cmsghdr) uint8_t ctrl[UDP_BATCH][UDP_CTRL];
	uint8_t resp[UDP_BATCH][UDP_TX_SLOT];
	uint8_t *rx; /* UDP_BATCH slots of UDP_RX_SLOT bytes */
};

static struct udp_batch *udp_batch_new(void)
{
	struct udp_batch *b = sb_xcalloc(1, sizeof(*b));
	b->rx = sb_xmalloc((size_t)UDP_BATCH * UDP_RX_SLOT);
	for (size_t i = 0; i < UDP_BATCH; i++) {
		b->in_iov[i] = (struct iovec){b->rx + i * UDP_RX_SLOT, UDP_RX_MAX};
		b->in[i].msg_hdr.msg_iov = &b->in_iov[i];
		b->in[i].msg_hdr.msg_iovlen = 1;
		b->in[i].msg_hdr.msg_name = &b->peer[i];
	}
	return b;
}

static void udp_batch_free(struct udp_batch *b)
{
	if (b)
		free(b->rx);
	free(b);
}

/* Receive up to UDP_BATCH datagrams: their number, 0 when none is waiting.
 * With pktinfo, each comes with the address it was sent to. */
static int udp_batch_recv(struct udp_batch *b, int fd, bool pktinfo)
{
	for (size_t i = 0; i < UDP_BATCH; i++) {
		b->in[i].msg_hdr.msg_namelen = sizeof(b->peer[i]); /* the kernel overwrites it */
		b->in[i].msg_hdr.msg_control = pktinfo ? b->ctrl[i] : NULL;
		b->in[i].msg_hdr.msg_controllen = pktinfo ? sizeof(b->ctrl[i]) : 0;
		b->in[i].msg_hdr.msg_flags = 0;
	}
	int n;
	do
		n = recvmmsg(fd, b->in, UDP_BATCH, MSG_DONTWAIT, NULL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? 0 : n; /* EAGAIN, or an error the next event reports again */
}

/* Send the first n responses of the batch. A response the kernel cannot
 * take now (EAGAIN: the socket's send buffer is full) is dropped, with the
 * rest of the batch: a busy UDP server drops rather than queues, and the
 * client retries (Knot DNS drops too). A response refused for its own
 * reason (an unreachable address) is skipped, and the others still go. */
static void udp_batch_send(struct udp_batch *b, int fd, int n)
{
	int i = 0;
	while (i < n) {
		int r = sendmmsg(fd, b->out + i, (unsigned)(n - i), MSG_DONTWAIT);
		if (r > 0)
			i += r;
		else if (r < 0 && errno == EINTR)
			continue;
		else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		else
			i++; /* out[i] failed: sendmmsg reports it when it is the first */
	}
}

/*
 * The control message that makes an answer leave from the address its query
 * was sent to (in's pktinfo, rewritten in place), or false when in has
 * none. A socket bound to 0.0.0.0 or :: otherwise answers from the address
 * the routing table picks, and a resolver that asked another address of the
 * host drops the answer as not from the server it asked (RFC 1035 4.2.1:
 * "the same address"), as dig and kdig do.
 */
static bool udp_reply_from(struct msghdr *in, struct msghdr *out)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(in); cm; cm = CMSG_NXTHDR(in, cm)) {
		size_t size;
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
			/* the source is the query's destination; the interface is
			 * left to the routing table, as for any reply */
			struct in_pktinfo *pi = (struct in_pktinfo *)CMSG_DATA(cm);
			pi->ipi_spec_dst = pi->ipi_addr;
			pi->ipi_ifindex = 0;
			size = sizeof(*pi);
		} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
			/* ipi6_addr, the destination, becomes the source (an
			 * IPv4-mapped one too: the kernel takes it for IPv4) */
			size = sizeof(struct in6_pktinfo);
		} else {
			continue;
		}
		out->msg_control = cm;
		out->msg_controllen = CMSG_SPACE(size);
		return true;
	}
	return false;
}

/* Answer the n queries of the batch into b->out; the number of responses.
 * The zones are read once: the batch is answered synchronously on this
 * thread, so every query sees the snapshot it would have seen alone. */
static int udp_batch_answer(struct udp_batch *b, const sb_dns_zones *z, uint64_t now, int n)
{
	int out = 0;
	for (int i = 0; i < n; i++) {
		struct msghdr *in = &b->in[i].msg_hdr;
		const struct sockaddr *addr = in->msg_name;
		size_t ql = b->in[i].msg_len;
		/* a truncated datagram is not the query that was sent */
		if (ql == 0 || (in->msg_flags & MSG_TRUNC) || in->msg_namelen == 0)
			continue;
		uint8_t *resp = b->resp[out];
		size_t rl = 0;
		if (sb_dns_xfr_answer(z, in->msg_iov->iov_base, ql, addr, false, resp, UDP_TX_SLOT,
				      &rl, NULL) < 0)
			continue; /* garbage and responses are dropped */
		/* RRL (rrl.h), when [dns] rrl is set: over the rate, drop or slip */
		sb_dns_rrl_action act = sb_dns_rrl_check(sb_dns_xfr_rrl(z), addr, now);
		if (act == SB_DNS_RRL_DROP)
			continue;
		if (act == SB_DNS_RRL_SLIP)
			rl = sb_dns_wire_truncate(resp, rl);
		b->out_iov[out] = (struct iovec){resp, rl};
		b->out[out].msg_hdr = (struct msghdr){.msg_name = in->msg_name,
						      .msg_namelen = in->msg_namelen,
						      .msg_iov = &b->out_iov[out],
						      .msg_iovlen = 1};
		if (in->msg_controllen)
			udp_reply_from(in, &b->out[out].msg_hdr);
		out++;
	}
	return out;
}

static void udp_readable(uv_poll_t *p, int status, int events)
{
	sb_dns_io *io = p->data;
	if (status < 0) {
		/* libuv stops a poll handle on POLLERR. A pending socket error
		 * (SO_ERROR reads and clears it) must not end UDP service, as
		 * the next recvmsg of a uv_udp_t would have cleared it. */
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(io->udp_fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (!io->stopping)
			uv_poll_start(p, UV_READABLE, udp_readable);
		return;
	}
	if (!(events & UV_READABLE))
		return;
	struct udp_batch *b = io->udpb;
	for (int round = 0; round < UDP_ROUNDS; round++) {
		int n = udp_batch_recv(b, io->udp_fd, io->udp_pktinfo);
		if (n <= 0)
			return;
		if (io->refresh)
			io->refresh(io->refresh_arg);
		const sb_dns_zones *z = *io->zones;
		if (z) /* without zones, queries are read and dropped */
			udp_batch_send(b, io->udp_fd, udp_batch_answer(b, z, uv_now(p->loop), n));
		/* A short batch emptied the queue: waiting for the next event
		 * costs less than a recvmmsg that finds nothing. */
		if (n < UDP_BATCH)
			return;
	}
}

static void udp_closed(uv_handle_t *h)
{
	sb_dns_io *io = h->data;
	close(io->udp_fd); /* uv_poll_t leaves the socket to us */
	udp_batch_free(io->udpb);
	io->udpb = NULL;
	io_handle_closed(h);
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

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);

/* What an ending connection's client still sends is read and dropped:
 * bytes left unread in the socket would make the close a RST, and a RST
 * throws away the answers the kernel still holds for the client. */
static void conn_drain(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	tcpconn *c = s->data;
	if (n >= 0)
		return;
	uv_read_stop(s);
	c->reading = false;
	if (n != UV_EOF || c->fin)
		conn_close(c);
	else
		c->eof = true; /* closed once the FIN is out (conn_shut) */
}

static void conn_idle(uv_timer_t *t);

static void conn_shut(uv_shutdown_t *req, int status)
{
	tcpconn *c = req->data;
	if (c->closing)
		return; /* cancelled by the close */
	if (status < 0 || c->eof) {
		conn_close(c);
		return;
	}
	c->fin = true;
	linger(c, conn_idle);
}

/*
 * The server ends the connection (a malformed message, a timeout): no more
 * queries are read or answered, the answers queued go out, then a FIN; what
 * the client sends meanwhile and until it closes is discarded, for
 * TCP_LINGER_MS after the FIN at most (RFC 7766 6.2.3 and 6.2.4; HTTP's
 * lingering close; Knot DNS and NSD do the same). uv_close at once would
 * cancel the queued answers, and a close with the client's bytes unread
 * sends a RST that discards those the kernel still holds.
 */
static void conn_end(tcpconn *c)
{
	if (c->closing || c->ending)
		return;
	c->ending = true;
	c->end_by = uv_now(c->timer.loop) + TCP_IDLE_MS;
	sb_dns_xfr_stream_free(c->stream); /* a transfer stops at its message in flight */
	c->stream = NULL;
	c->in_len = 0;
	c->partial = false;
	if (c->reading)
		uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = false;
	if (!c->eof) {
		uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_drain);
		c->reading = true;
	}
	/* libuv sends the FIN once every queued write is done */
	c->shut.data = c;
	if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, conn_shut) < 0) {
		conn_close(c);
		return;
	}
	/* the client takes an answer within TCP_LINGER_MS (tcp_written), and
	 * all of them within TCP_IDLE_MS, or the queued ones are dropped */
	linger(c, conn_idle);
}

/*
 * No query answered for TCP_IDLE_MS. Idle means nothing moves either way:
 * a client still taking answers the kernel holds (pipelined queries answered
 * before it began to read, megabytes of them) is not idle, although no new
 * answer was made meanwhile, its reading paused behind them. Such a client
 * gets TCP_LINGER_MS more each time the kernel's unsent bytes went down.
 */
static void conn_idle(uv_timer_t *t)
{
	tcpconn *c = t->data;
	if (c->ending) {
		conn_close(c);
		return;
	}
	uv_os_fd_t fd;
	int q = 0;
	if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, SIOCOUTQ, &q) == 0 && q > 0 &&
	    (c->probe_outq == 0 || q < c->probe_outq)) {
		c->probe_outq = q;
		uv_timer_start(&c->timer, conn_idle, TCP_LINGER_MS, 0);
		return;
	}
	conn_end(c);
}

typedef struct twrite {
	uv_write_t w;
	tcpconn *c;
	bool stream; /* a message of the transfer in progress */
	size_t len;
	uint8_t data[];
} twrite;

static void conn_process(tcpconn *c);
static void stream_next(tcpconn *c);

static void tcp_written(uv_write_t *w, int status)
{
	twrite *tw = (twrite *)w;
	tcpconn *c = tw->c;
	bool stream = tw->stream;
	bool was_full = c->queued > TCP_WQ_MAX;
	c->queued -= tw->len;
	free(tw);
	if (status < 0)
		conn_close(c);
	else if (c->ending)
		linger(c, conn_idle); /* the client takes them */
	else if (stream && c->stream && !c->closing)
		stream_next(c); /* one message in flight: a transfer streams at the client's pace */
	else if (!c->closing && ((was_full && c->queued <= TCP_WQ_MAX) || (c->eof && !c->queued)))
		conn_process(c); /* the client took its answers: read on (or close) */
}

/* Send a response of rl bytes already at tw->data + 2. Returns 0, or -1 when
 * the connection was closed. */
static int conn_send(tcpconn *c, twrite *tw, size_t rl, bool stream)
{
	tw->data[0] = (uint8_t)(rl >> 8);
	tw->data[1] = (uint8_t)rl;
	tw->c = c;
	tw->stream = stream;
	tw->len = rl + 2;
	uv_buf_t b = uv_buf_init((char *)tw->data, (unsigned)(rl + 2));
	if (uv_write(&tw->w, (uv_stream_t *)&c->tcp, &b, 1, tcp_written) < 0) {
		free(tw);
		conn_close(c);
		return -1;
	}
	c->queued += rl + 2;
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
			conn_end(c);
		else
			conn_process(c);
		return;
	}
	c->probe_outq = 0;
	uv_timer_start(&c->timer, conn_idle, TCP_IDLE_MS, 0);
	conn_send(c, tw, rl, true);
}

/* The idle timer restarts when a query is answered, not when bytes
 * arrive: a client that trickles a message a byte at a time, or sends
 * only a length, would otherwise hold its slot for ever. Once a message
 * has begun, the rest must come within TCP_IO_MS. */
static void io_limit(tcpconn *c)
{
	if (!c->closing && c->in_len && !c->partial) {
		c->partial = true;
		uint64_t left = uv_timer_get_due_in(&c->timer);
		if (left > TCP_IO_MS)
			uv_timer_start(&c->timer, conn_idle, TCP_IO_MS, 0);
	}
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
	if (n == UV_EOF) {
		/* A client may shut down its sending side once its queries are
		 * sent, and read the answers: closing now would drop those still
		 * queued (uv_close cancels pending writes). */
		c->eof = true;
		uv_read_stop(s);
		c->reading = false;
		conn_process(c);
		return;
	}
	if (n < 0) {
		conn_close(c);
		return;
	}
	c->in_len += (size_t)n;
	conn_process(c);
	/* reading paused (the client does not take its answers): the wait is
	 * ours, and the limit starts when reading resumes (conn_process) */
	if (c->reading)
		io_limit(c);
}

/* Answer the complete queries in the buffer: several length-prefixed
 * queries may arrive in one read (pipelining). A zone transfer stops reading
 * until its last message is written (stream_next). */
static void conn_process(tcpconn *c)
{
	/* bytes of c->in answered: moved out once, after the loop. Moving the
	 * rest after each query cost a 64 KiB read of small pipelined queries
	 * some 2,000 moves of up to 64 KiB (quadratic in the read). */
	size_t done = 0;
	/* a client that does not take its answers is not read from: its
	 * pipelined queries wait in the socket, not in our memory */
	while (!c->closing && !c->stream && c->in_len - done >= 2 && c->queued <= TCP_WQ_MAX) {
		const uint8_t *msg = c->in + done;
		size_t ml = (size_t)msg[0] << 8 | msg[1];
		if (c->in_len - done < 2 + ml)
			break;
		if (c->io->refresh)
			c->io->refresh(c->io->refresh_arg);
		const sb_dns_zones *z = *c->io->zones;
		uint8_t *out = c->io->tcp_out;
		size_t rl = 0;
		sb_dns_xfr_stream *st = NULL;
		if (!z || sb_dns_xfr_answer(z, msg + 2, ml, (const struct sockaddr *)&c->peer, true,
					    out + 2, TCP_MAX_MSG, &rl, &st) < 0) {
			conn_end(c); /* a malformed query ends the stream */
			return;
		}
		done += 2 + ml;
		c->partial = false;
		c->active_ms = uv_now(c->tcp.loop);
		c->probe_outq = 0;
		uv_timer_start(&c->timer, conn_idle, TCP_IDLE_MS, 0);
		twrite *tw = sb_xmalloc(sizeof(*tw) + 2 + rl);
		memcpy(tw->data + 2, out + 2, rl);
		if (conn_send(c, tw, rl, st != NULL) < 0) {
			sb_dns_xfr_stream_free(st);
			return;
		}
		c->stream = st;
	}
	if (done) {
		memmove(c->in, c->in + done, c->in_len - done);
		c->in_len -= done;
	}
	if (c->closing || c->ending)
		return;
	if (c->eof) {
		/* nothing more comes: close once every answer has been taken
		 * by the kernel (a message cut short by the EOF is not one) */
		size_t ml = c->in_len >= 2 ? ((size_t)c->in[0] << 8 | c->in[1]) : 0;
		bool more = c->in_len >= 2 && c->in_len >= 2 + ml;
		if (!c->stream && !c->queued && !more)
			conn_close(c);
		return;
	}
	bool full = c->queued > TCP_WQ_MAX;
	if ((c->stream || full) && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	} else if (!c->stream && !full && !c->reading) {
		uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
		c->reading = true;
		io_limit(c); /* a message begun before the pause: its time runs from now */
	}
}

/* Bytes (or an EOF) wait in c's socket, not read yet: a query that arrived
 * is not dropped by taking the connection. */
static bool pending(tcpconn *c)
{
	uv_os_fd_t fd;
	char b;
	return uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 &&
	       !(recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
		 (errno == EAGAIN || errno == EWOULDBLOCK));
}

/*
 * At TCP_MAX_CONNS, the connection that has waited longest for a query
 * without anything under way (no message begun, no transfer, no answer
 * queued) is closed to make room, as RFC 7766 6.2.3 lets a server under
 * pressure do: clients that hold connections open by sending a query now
 * and then cannot keep others out. Returns false when none is idle.
 */
static bool evict_idle(sb_dns_io *io, const tcpconn *newcomer)
{
	/* the oldest idle one, passing over (a few times at most) one whose
	 * next query is already in its socket */
	const tcpconn *passed[4];
	size_t npassed = 0;
	for (;;) {
		tcpconn *oldest = NULL;
		for (tcpconn *c = io->conns; c; c = c->next) {
			/* one the server is ending is the first to go: what it
			 * still reads is dropped anyway, and one with answers
			 * queued for a client that takes them slowly would
			 * otherwise keep its slot until end_by */
			if (c->ending && !c->closing && c != newcomer) {
				conn_close(c);
				return true;
			}
			bool skip =
			    c == newcomer || c->closing || c->in_len || c->stream || c->queued;
			for (size_t i = 0; i < npassed && !skip; i++)
				skip = passed[i] == c;
			if (!skip && (!oldest || c->active_ms <= oldest->active_ms))
				oldest = c;
		}
		if (!oldest)
			return false;
		if (!pending(oldest)) {
			conn_close(oldest);
			return true;
		}
		if (npassed == SB_ARRAY_LEN(passed))
			return false;
		passed[npassed++] = oldest;
	}
}

static void tcp_accept(uv_stream_t *server, int status)
{
	sb_dns_io *io = server->data;
	if (io->stopping)
		return;
	if (status < 0) {
		/* libuv would try again at once for as long as it lasts (the
		 * open-file limit): the thread would spin, serving nothing */
		sb_accept_guard_failed(&io->tcp, status);
		return;
	}
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
	c->active_ms = uv_now(server->loop);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		conn_close(c);
		return;
	}
	if (io->nconns > TCP_MAX_CONNS && !evict_idle(io, c)) {
		conn_close(c);
		return;
	}
	/* answers go out as they are made: with Nagle, pipelined answers wait
	 * for the client's delayed ACK (40 ms a round) */
	uv_tcp_nodelay(&c->tcp, 1);
	int plen = sizeof(c->peer);
	uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &plen);
	uv_timer_start(&c->timer, conn_idle, TCP_IDLE_MS, 0);
	uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
	c->reading = true;
}

/* Ask for each query's destination address when fd is bound to a wildcard
 * address (udp_reply_from); a socket bound to one address answers from it
 * anyway, and saves the control message. */
static bool udp_pktinfo_on(int fd)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	int one = 1;
	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return false;
	if (a.ss_family == AF_INET) {
		const struct sockaddr_in *a4 = (const struct sockaddr_in *)&a;
		return a4->sin_addr.s_addr == htonl(INADDR_ANY) &&
		       setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) == 0;
	}
	if (a.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&a;
		/* on a dual-stack socket, IPv4 queries come as IPv4-mapped */
		return IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr) &&
		       setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) == 0;
	}
	return false;
}

void sb_dns_io_set_log(sb_dns_io *io, sb_accept_log_fn log, int thread)
{
	char what[64];
	snprintf(what, sizeof(what), "DNS over TCP connections on thread %d", thread);
	if (io->has_tcp)
		sb_accept_guard_set_log(&io->tcp, log, what);
}

void sb_dns_io_set_refresh(sb_dns_io *io, void (*fn)(void *arg), void *arg)
{
	io->refresh = fn;
	io->refresh_arg = arg;
}

int sb_dns_io_start(uv_loop_t *loop, int udp_fd, int tcp_fd, const sb_dns_zones *const *zones,
		    sb_dns_io **out)
{
	int r;
	sb_dns_io *io = sb_xcalloc(1, sizeof(*io));
	io->zones = zones;
	if (udp_fd >= 0) {
		/* the socket is ours once the poll handle exists */
		if ((r = uv_poll_init(loop, &io->udp, udp_fd)) < 0)
			goto fail;
		io->udp.data = io;
		io->udp_fd = udp_fd;
		io->udpb = udp_batch_new();
		io->udp_pktinfo = udp_pktinfo_on(udp_fd);
		io->has_udp = true;
		io->open_handles++;
		if ((r = uv_poll_start(&io->udp, UV_READABLE, udp_readable)) < 0)
			goto fail;
	}
	if (tcp_fd >= 0) {
		uv_tcp_init(loop, &io->tcp.l.tcp);
		io->tcp.l.tcp.data = io;
		sb_accept_guard_init(&io->tcp, loop);
		io->has_tcp = true;
		io->open_handles++;
		if ((r = uv_tcp_open(&io->tcp.l.tcp, tcp_fd)) < 0 ||
		    (r = sb_accept_guard_listen(&io->tcp, 1024, tcp_accept)) < 0)
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
		uv_close((uv_handle_t *)&io->udp, udp_closed);
	if (io->has_tcp)
		sb_accept_guard_close(&io->tcp, io_handle_closed);
	if (!any && io->nconns == 0)
		free(io);
}
