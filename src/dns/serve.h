/*
 * DNS over UDP and TCP on a serving thread's libuv loop.
 *
 * Each serving thread owns one SO_REUSEPORT UDP socket and one TCP listener
 * and answers from the zones of the snapshot it currently holds: the zones
 * are read through a pointer the thread updates when it takes a new snapshot,
 * and every query is answered synchronously, so a query never sees two
 * snapshots.
 */
#ifndef SB_DNS_SERVE_H
#define SB_DNS_SERVE_H

#include <uv.h>

#include "dns/zone.h"

typedef struct sb_dns_io sb_dns_io;

/*
 * Start answering on loop from an already bound UDP socket and a bound (not
 * yet listening) TCP socket; either may be -1. *zones is read on every
 * query (NULL: queries are dropped). Returns 0, or a negative libuv error.
 */
int sb_dns_io_start(uv_loop_t *loop, int udp_fd, int tcp_fd, const sb_dns_zones *const *zones,
		    sb_dns_io **out);

/* Close the sockets and every TCP connection; memory goes in close
 * callbacks. */
void sb_dns_io_stop(sb_dns_io *io);

#endif
