/*
 * Authoritative answers from derived zones (zone.h). Pure: a query's bytes in,
 * a response's bytes out; no sockets, no allocation per query (a fixed
 * scratch arena on the stack), safe to call from any number of threads on
 * zones that are no longer written. docs/dns.md lists the behaviours.
 */
#ifndef SB_DNS_ANSWER_H
#define SB_DNS_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/zone.h"

/*
 * Answer one query (qlen bytes at query, not modified) into resp (cap bytes;
 * 65535 covers any response, 1232 any UDP one). tcp says which transport the
 * query came on: over UDP the response is limited to the client's EDNS
 * payload, at most 1232 bytes (512 without EDNS), and an answer that does not
 * fit is replaced by a truncated one (TC=1, the question only) so the client
 * retries over TCP.
 *
 * Returns 0 with *resp_len set: send the response. Returns a negative code:
 * send nothing. SB_EPARSE: not a DNS query that can be answered (shorter
 * than a header, a question that does not parse); SB_EINVAL: a response
 * (QR=1), or z or a buffer is NULL; SB_ERANGE: cap is below 12 bytes.
 */
int sb_dns_answer(const sb_dns_zones *z, const uint8_t *query, size_t qlen, uint8_t *resp,
		  size_t cap, bool tcp, size_t *resp_len);

/* sb_dns_answer_ex flags. */
#define SB_DNS_ANSWER_DEFER 1u /* hand signed queries, AXFR and IXFR back to the caller */
#define SB_DNS_DEFERRED 1      /* what sb_dns_answer_ex returns for them (resp untouched) */

/*
 * sb_dns_answer with flags. With SB_DNS_ANSWER_DEFER, a well-formed query
 * that carries a TSIG record or asks for AXFR or IXFR is not answered:
 * returns SB_DNS_DEFERRED, for xfr.c (xfr.h) to verify, authorize and
 * answer. Without it, such queries are REFUSED (no transfer is configured).
 * Otherwise the same as sb_dns_answer.
 */
int sb_dns_answer_ex(const sb_dns_zones *z, const uint8_t *query, size_t qlen, uint8_t *resp,
		     size_t cap, bool tcp, unsigned flags, size_t *resp_len);

#endif
