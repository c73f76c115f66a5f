/*
 * Zone transfers to secondaries: AXFR (RFC 5936) and IXFR (RFC 1995) over
 * TCP, authorized by an allow list of networks and TSIG keys (RFC 8945,
 * HMAC-SHA256 by default), NOTIFY (RFC 1996) to the declared secondaries
 * whenever a zone's serial changes, and the response rate limit of the UDP
 * path (rrl.h), all configured by [dns] (docs/dns.md, "Zone transfers").
 * No libknot here: TSIG goes through wire.h.
 *
 * Two sides, two threads:
 *
 *   - the control thread owns one sb_dns_xfr. Each time it builds zones it
 *     calls sb_dns_xfr_attach(): the configuration is read (keys, allow
 *     list, secondaries), the difference from the previous build is kept as
 *     an immutable diff for IXFR, and everything the serving threads need is
 *     attached to the new zones (sb_dns_zones_attach), so a query never
 *     looks further than the zones it is answered from. NOTIFY messages go
 *     out from the control loop (sb_dns_xfr_start), retried with backoff
 *     until a secondary answers;
 *   - serving threads call sb_dns_xfr_answer() for every query (serve.c). A
 *     transfer over TCP is a stream of messages, each produced when the
 *     previous one was written (sb_dns_xfr_next); the stream holds a
 *     reference to its zones, so a snapshot replaced in the middle of a
 *     transfer is not freed under it.
 *
 * Without configuration (no keys, no allow list, no secondaries, no rate
 * limit), nothing is attached and queries are answered exactly as
 * sb_dns_answer does: TSIG, AXFR and IXFR are REFUSED.
 */
#ifndef SB_DNS_XFR_H
#define SB_DNS_XFR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sb.h"
#include "config/decl.h"
#include "dns/rrl.h"

struct sockaddr;
struct uv_loop_s;
typedef struct sb_dns_zones sb_dns_zones; /* zone.h */

/* ---- configuration ------------------------------------------------------ */

/*
 * What is read: [dns] as the declaration loader fills sb_dns_cfg
 * (config/decl.h; docs/dns.md, "Zone transfers"):
 *
 *   ixfr_history, notify_retries       versions kept for IXFR per zone (0: 16);
 *                                      NOTIFY sends before giving up (0: 5)
 *   rrl = { responses_per_second, slip, ipv4_prefix, ipv6_prefix, table_size }
 *   [[dns.key]] name, algorithm, secret   TSIG keys: hmac-sha256 (default),
 *                                      hmac-sha224/384/512; base64, >= 16 bytes
 *   [[dns.allow_transfer]] address, key   a network ("192.0.2.0/24",
 *                                      "2001:db8::/48", one address) and the key
 *                                      its requests must be signed with (no key:
 *                                      the address is enough, discouraged)
 *   [[dns.notify]] address, key        a secondary ("192.0.2.53:53",
 *                                      "[2001:db8::53]:5300", port 53 when left
 *                                      out) and the key NOTIFY is signed with
 *
 * Strings are read during sb_dns_xfr_attach only (copied). No keys, no allow
 * list, no secondaries and no rate: nothing is attached.
 */

/*
 * Check c as the loader read it: key names unique, algorithms and secrets
 * valid, allow-list addresses and prefixes, secondaries' addresses, key
 * references that exist, the rate limit's prefixes. Returns 0, or SB_EINVAL
 * with d at the entry's line and column in file saying why.
 */
int sb_dns_xfr_config_check(const sb_dns_cfg *c, const char *file, sb_diag *d);

/* ---- the control thread ------------------------------------------------- */

typedef struct sb_dns_xfr sb_dns_xfr;

/* Where diagnostics go: sb_edge_log's signature ("info", "warning"...). */
typedef void (*sb_dns_log_fn)(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A transfer service with nothing attached yet; log may be NULL. */
sb_dns_xfr *sb_dns_xfr_new(sb_dns_log_fn log);

/*
 * After building next (serials set, before publishing it): read c, the
 * declaration's [dns] (file: the declaration, for messages; c NULL or
 * empty: detach everything), keep the difference from prev (the zones
 * currently published, or NULL) for IXFR when prev is what the last call
 * attached, attach the serving state to next, and queue a NOTIFY to every
 * secondary for each zone whose serial changed (every zone on the first
 * call, and after the secondaries or keys changed). Returns 0, or SB_EINVAL
 * with d filled when c does not check (sb_dns_xfr_config_check): next is
 * then left as it was, and so is x.
 */
int sb_dns_xfr_attach(sb_dns_xfr *x, const sb_dns_cfg *c, const char *file,
		      const sb_dns_zones *prev, sb_dns_zones *next, sb_diag *d);

/*
 * A build may be abandoned after its attach (a change that fails to
 * commit): sb_dns_xfr_mark() before the attach records the transfer state
 * (history, serials, pending NOTIFY, policy), sb_dns_xfr_rewind() puts it
 * back as it was, so that no NOTIFY goes out and no history names a serial
 * that was never published; sb_dns_xfr_mark_free() keeps what was done.
 * Both consume the mark; NULL is fine for either.
 */
typedef struct sb_dns_xfr_mark sb_dns_xfr_mark;
sb_dns_xfr_mark *sb_dns_xfr_mark_take(sb_dns_xfr *x);
void sb_dns_xfr_rewind(sb_dns_xfr *x, sb_dns_xfr_mark *m);
void sb_dns_xfr_mark_free(sb_dns_xfr_mark *m);

/*
 * Send NOTIFY from loop (the control loop): queued ones go out now, later
 * ones as sb_dns_xfr_attach queues them. Returns 0 or a libuv error.
 */
int sb_dns_xfr_start(sb_dns_xfr *x, struct uv_loop_s *loop);

/* Close the loop handles (pending NOTIFYs are abandoned); the loop can then
 * end. */
void sb_dns_xfr_stop(sb_dns_xfr *x);

/* Free x: never started, or stopped and its loop run to the end. The zones
 * keep what is attached to them. NULL is fine. */
void sb_dns_xfr_free(sb_dns_xfr *x);

/* Test hook: the first NOTIFY retry after ms instead of 1000 (then doubled);
 * the first send stays SB_DNS_NOTIFY_DELAY_MS after the change. */
void sb_dns_xfr_set_notify_backoff(sb_dns_xfr *x, uint32_t ms);

/* A NOTIFY goes out this long after the zones change, so that every serving
 * thread has taken the new snapshot when the secondary asks. */
#define SB_DNS_NOTIFY_DELAY_MS 100

/* ---- serving threads ---------------------------------------------------- */

typedef struct sb_dns_xfr_stream sb_dns_xfr_stream;

/*
 * Answer one query received from peer over UDP or TCP, the entry point of
 * serve.c. Zones without transfer state: sb_dns_answer. Otherwise ordinary
 * queries are answered by sb_dns_answer too, and xfr.c takes:
 *
 *   - a TSIG record: verified with the key of that name (BADKEY, BADSIG,
 *     BADTIME: NOTAUTH with the TSIG error, RFC 8945 5.2); the response is
 *     signed;
 *   - AXFR over UDP: NOTIMP (RFC 5936 4.2 defines none);
 *   - AXFR or IXFR from outside the allow list, or without its key: REFUSED;
 *     a name that is not one of our zone apexes: NOTAUTH; IXFR without the
 *     client's SOA: FORMERR;
 *   - IXFR over UDP: our SOA alone (RFC 1995 2: "use TCP" when it is newer);
 *   - over TCP: AXFR, the zone between two SOAs (RFC 5936); IXFR from the
 *     client's serial (RFC 1995): our SOA alone when the client is current,
 *     the differences when the kept history reaches its serial, otherwise
 *     the whole zone, AXFR-style.
 *
 * resp has cap bytes (65535 over TCP). Returns 0 with the first (or only)
 * message in resp, *resp_len set; a negative code: send nothing (as
 * sb_dns_answer). When stream is not NULL and more messages follow, *stream
 * is set: call sb_dns_xfr_next after each message is written, then
 * sb_dns_xfr_stream_free. Over UDP pass NULL.
 */
int sb_dns_xfr_answer(const sb_dns_zones *z, const uint8_t *query, size_t qlen,
		      const struct sockaddr *peer, bool tcp, uint8_t *resp, size_t cap,
		      size_t *resp_len, sb_dns_xfr_stream **stream);

/*
 * The next message of a transfer into resp (cap bytes, up to 65535 used).
 * Returns 1 with a message (*resp_len), 0 when the transfer is complete
 * (nothing written), or a negative code when it cannot go on (SB_ERANGE: a
 * record larger than a message): close the connection.
 */
int sb_dns_xfr_next(sb_dns_xfr_stream *s, uint8_t *resp, size_t cap, size_t *resp_len);

/* End a transfer, complete or not (logged), releasing its zones. NULL is fine. */
void sb_dns_xfr_stream_free(sb_dns_xfr_stream *s);

/* The UDP response rate limiter of z, or NULL (off). */
sb_dns_rrl *sb_dns_xfr_rrl(const sb_dns_zones *z);

#endif
