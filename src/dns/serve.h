/*
 * DNS over UDP and TCP on a serving thread's libuv loop.
 *
 * Each serving thread owns one SO_REUSEPORT UDP socket and one TCP listener
 * and answers from the zones of the snapshot it currently holds: the zones
 * are read through a pointer the thread updates when it takes a new snapshot,
 * and every query is answered synchronously, so a query never sees two
 * snapshots.
 *
 * Queries go through sb_dns_xfr_answer (xfr.h): plain sb_dns_answer unless
 * the zones carry transfer state. Over UDP, the zones' rate limiter (rrl.h)
 * drops or truncates responses over the rate. Over TCP, a zone transfer is
 * written one message at a time, the next produced when the previous one is
 * written, with reading paused meanwhile; the transfer holds its own
 * reference to the zones it streams.
 */
#ifndef SB_DNS_SERVE_H
#define SB_DNS_SERVE_H

#include <uv.h>

#include "common/accept.h"
#include "dns/zone.h"

typedef struct sb_dns_io sb_dns_io;

/*
 * Start answering on loop from an already bound UDP socket and a bound (not
 * yet listening) TCP socket; either may be -1. *zones is read on every
 * query (NULL: queries are dropped). Returns 0, or a negative libuv error.
 */
/*
 * Call fn(arg) before each batch of UDP queries and each TCP query is
 * answered, so that *zones is the latest published (the edge's serving
 * thread checks its snapshot sequence: one atomic load). Without it, *zones
 * changes only when the loop runs the owner's wake-up.
 */
void sb_dns_io_set_refresh(sb_dns_io *io, void (*fn)(void *arg), void *arg);

int sb_dns_io_start(uv_loop_t *loop, int udp_fd, int tcp_fd, const sb_dns_zones *const *zones,
		    sb_dns_io **out);

/*
 * Where the TCP listener says it cannot accept (at the open-file limit it
 * stops accepting for a while, accept.h): log (sb_edge_log), as "DNS over
 * TCP connections on thread <thread>". Without it, nothing is said.
 */
void sb_dns_io_set_log(sb_dns_io *io, sb_accept_log_fn log, int thread);

/* Close the sockets and every TCP connection; memory goes in close
 * callbacks. */
void sb_dns_io_stop(sb_dns_io *io);

#endif
