/*
 * DNS wire format: the one door to libknot.
 *
 * wire.c is the only file of Switchboard that includes libknot headers. The
 * rest of src/dns/ sees plain structs: RRsets with packed rdata, a parsed
 * query, and a response writer. When libknot's API changes, only wire.c
 * changes.
 *
 * Names are in wire format (length-prefixed labels). Everything here is
 * internal to src/dns/ (not a public API of Switchboard).
 */
#ifndef SB_DNS_WIRE_H
#define SB_DNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sb.h"

#define SB_DNS_NAME_MAX 255 /* a wire name, root label included */
#define SB_DNS_UDP_MAX 1232 /* our EDNS UDP payload (DNS flag day 2020) */
#define SB_DNS_UDP_MIN 512  /* without EDNS, or a smaller advertised payload */
#define SB_DNS_ARENA 16384  /* per-query scratch memory (sb_dns_answer's stack) */

enum sb_dns_type {
	SB_DNS_A = 1,
	SB_DNS_NS = 2,
	SB_DNS_CNAME = 5,
	SB_DNS_SOA = 6,
	SB_DNS_MX = 15,
	SB_DNS_TXT = 16,
	SB_DNS_AAAA = 28,
	SB_DNS_SRV = 33,
	SB_DNS_OPT = 41,
	SB_DNS_IXFR = 251,
	SB_DNS_AXFR = 252,
	SB_DNS_ANY = 255,
	SB_DNS_CAA = 257,
};

enum sb_dns_rcode {
	SB_DNS_NOERROR = 0,
	SB_DNS_FORMERR = 1,
	SB_DNS_SERVFAIL = 2,
	SB_DNS_NXDOMAIN = 3,
	SB_DNS_NOTIMP = 4,
	SB_DNS_REFUSED = 5,
	SB_DNS_BADVERS = 16, /* extended: needs EDNS */
};

enum sb_dns_section {
	SB_DNS_ANSWER = 0,
	SB_DNS_AUTHORITY = 1,
	SB_DNS_ADDITIONAL = 2,
};

#define SB_DNS_CLASS_IN 1
#define SB_DNS_OPCODE_QUERY 0

/*
 * An RRset as a zone stores it: class IN, no owner (the node has it). The
 * rdata of its records are packed by sb_dns_rrset_add (layout private to
 * wire.c), in canonical order without duplicates.
 */
typedef struct sb_dns_rrset {
	uint16_t type;
	uint16_t count; /* records */
	uint32_t ttl;
	uint32_t size;	      /* bytes at rdata */
	const uint8_t *rdata; /* packed records */
} sb_dns_rrset;

/*
 * Add one record (rdata of len bytes) to rs. Storage comes from pool (the old
 * storage stays in the pool until it is freed). Returns 1 when added, 0 when
 * the record was already there, SB_ERANGE when the RRset would exceed 65535
 * records or 4 GiB.
 */
int sb_dns_rrset_add(sb_dns_rrset *rs, const uint8_t *rd, uint16_t len, sb_pool *pool);

/* Record i (< rs->count) of rs: its rdata, length in *len. O(i). */
const uint8_t *sb_dns_rrset_rdata(const sb_dns_rrset *rs, size_t i, uint16_t *len);

/* Scratch memory for one query: a bump allocator over a caller's buffer. */
typedef struct sb_dns_arena {
	uint8_t *base;
	size_t used, cap;
} sb_dns_arena;

/* n bytes, 16-aligned, or NULL when the arena is exhausted. */
void *sb_dns_arena_alloc(sb_dns_arena *a, size_t n);

/* ---- queries ----------------------------------------------------------- */

typedef enum sb_dns_parse {
	SB_DNS_PARSE_OK = 0,
	SB_DNS_PARSE_DROP = 1,	   /* no usable header or question */
	SB_DNS_PARSE_RESPONSE = 3, /* QR=1: a response, never answered */
	SB_DNS_PARSE_FORMERR = 2,  /* answer FORMERR (question echoed if has_question) */
} sb_dns_parse;

/* A query as sb_dns_wire_parse read it. */
typedef struct sb_dns_query {
	uint16_t id;
	uint8_t opcode;
	bool rd, cd;
	bool has_question;
	const uint8_t *qname;		/* in the query (original case) */
	size_t qname_len;		/* bytes, root label included */
	uint8_t lower[SB_DNS_NAME_MAX]; /* the qname in lower case */
	uint16_t qtype, qclass;
	bool edns; /* an OPT record was present */
	uint8_t edns_version;
	uint16_t edns_payload;
	bool edns_do;
	bool tsig; /* a TSIG record was present */
} sb_dns_query;

/*
 * Parse a query (len bytes at wire, not modified) with libknot's parser.
 * Memory comes from a. Returns SB_DNS_PARSE_RESPONSE for QR=1;
 * SB_DNS_PARSE_DROP for a message shorter than a header, or a question that does not parse (bad
 * label, compression pointer in the question, truncated); SB_DNS_PARSE_FORMERR
 * for QDCOUNT != 1 (has_question false) or a malformed record after the
 * question (two OPT records, OPT outside the additional section, bad
 * compression pointers: only pointers to earlier bytes are followed, so
 * loops are impossible); SB_DNS_PARSE_OK otherwise.
 */
sb_dns_parse sb_dns_wire_parse(const uint8_t *wire, size_t len, sb_dns_arena *a, sb_dns_query *q);

/* ---- responses --------------------------------------------------------- */

typedef struct sb_dns_writer sb_dns_writer;

/*
 * Start a response to q in buf (max bytes, at least 12): ID, QR=1, opcode,
 * RD and CD copied; the question (in q's original case) when with_question;
 * room reserved for an OPT record when with_opt (payload SB_DNS_UDP_MAX,
 * version 0, DO copied). Returns NULL when the arena is exhausted.
 */
sb_dns_writer *sb_dns_writer_new(sb_dns_arena *a, uint8_t *buf, size_t max, const sb_dns_query *q,
				 bool with_question, bool with_opt);

void sb_dns_writer_set_aa(sb_dns_writer *w, bool aa);
/* A 12-bit response code: the low 4 bits go to the header, the rest to OPT. */
void sb_dns_writer_set_rcode(sb_dns_writer *w, uint16_t rcode);

/*
 * Append rs to section (sections in order: answer, authority, additional)
 * with the given TTL. owner is a lower-case wire name, or NULL for the qname
 * (written as a pointer to the question, so in its original case). names in
 * rdata are compressed where RFC 3597 allows. Returns 0, or SB_ERANGE when it
 * does not fit (nothing of it is written), SB_EINVAL for a section out of
 * order.
 */
int sb_dns_writer_put(sb_dns_writer *w, int section, const uint8_t *owner, const sb_dns_rrset *rs,
		      uint32_t ttl);

/* Drop every record written so far and set TC=1 (header, question, OPT). */
void sb_dns_writer_truncate(sb_dns_writer *w);

/* Write the OPT record (if any) and flags. Returns the response length. */
size_t sb_dns_writer_finish(sb_dns_writer *w);

/* ---- text -------------------------------------------------------------- */

/* Presentation form of record i of rs (RFC 1035 master file syntax, names
 * absolute). Returns the length, or SB_ERANGE when buf is too small. */
int sb_dns_rdata_text(const sb_dns_rrset *rs, size_t i, char *buf, size_t size);

/* Mnemonic of a type ("MX", or "TYPE65280"). Returns buf. */
const char *sb_dns_type_text(uint16_t type, char *buf, size_t size);

#endif
