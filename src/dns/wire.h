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
	SB_DNS_TSIG = 250,
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
	SB_DNS_NOTAUTH = 9,  /* not authoritative for the zone; TSIG: not authorized */
	SB_DNS_BADVERS = 16, /* extended: needs EDNS */
};

/* TSIG errors (RFC 8945 4.3.4): the TSIG record's error field, the response
 * rcode being NOTAUTH. */
enum sb_dns_tsig_error {
	SB_DNS_TSIG_BADSIG = 16,
	SB_DNS_TSIG_BADKEY = 17,
	SB_DNS_TSIG_BADTIME = 18,
	SB_DNS_TSIG_BADTRUNC = 22,
};

enum sb_dns_section {
	SB_DNS_ANSWER = 0,
	SB_DNS_AUTHORITY = 1,
	SB_DNS_ADDITIONAL = 2,
};

#define SB_DNS_CLASS_IN 1
#define SB_DNS_OPCODE_QUERY 0
#define SB_DNS_OPCODE_NOTIFY 4

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

/* A view of n records of rs from record `from` (from + n <= rs->count): same
 * type and TTL, rdata shared. O(from + n). */
void sb_dns_rrset_slice(const sb_dns_rrset *rs, size_t from, size_t n, sb_dns_rrset *out);

/* The records of a and b are the same (type, TTL, rdata). */
bool sb_dns_rrset_equal(const sb_dns_rrset *a, const sb_dns_rrset *b);

/* Record i of rs is also in other (same rdata). */
bool sb_dns_rrset_has(const sb_dns_rrset *other, const sb_dns_rrset *rs, size_t i);

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
	bool tsig;	      /* a TSIG record was present */
	bool ixfr_soa;	      /* IXFR: an SOA of the qname in the authority section */
	uint32_t ixfr_serial; /* its serial: the version the client has */
} sb_dns_query;

/*
 * Parse a query (len bytes at wire, not modified) with libknot's parser.
 * Memory comes from a. Returns SB_DNS_PARSE_RESPONSE for QR=1;
 * SB_DNS_PARSE_DROP for a message shorter than a header, or a question that does not parse (bad
 * label, compression pointer in the question, truncated); SB_DNS_PARSE_FORMERR
 * for QDCOUNT != 1 (has_question false) or a malformed record after the
 * question (two OPT records, OPT outside the additional section or with an
 * owner other than the root, bad
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

/*
 * The same with memory from the heap, for zone transfers: libknot's record
 * arrays grow with every record (a full 64 KiB message allocates some 20 MB
 * on the way), more than an arena holds, but they are kept from one message
 * to the next. Write a message, finish it, then sb_dns_writer_reset for the
 * next one (into the same buf); sb_dns_writer_free at the end.
 */
sb_dns_writer *sb_dns_writer_new_heap(uint8_t *buf, size_t max, const sb_dns_query *q,
				      bool with_question, bool with_opt);

/* Start the next message: header, question and OPT room as when created;
 * rcode and TC cleared, AA kept. */
void sb_dns_writer_reset(sb_dns_writer *w);

/* Free a writer of sb_dns_writer_new_heap (NULL, or an arena writer: nothing). */
void sb_dns_writer_free(sb_dns_writer *w);

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

/*
 * Cut a response (len bytes at resp, as sb_dns_writer_finish left it) down
 * to its header, question and OPT record (if any) with TC=1: what RRL's slip
 * sends. Returns the new length (len unchanged when it does not parse).
 */
size_t sb_dns_wire_truncate(uint8_t *resp, size_t len);

/* ---- TSIG (RFC 8945) --------------------------------------------------- */

#define SB_DNS_TSIG_MAC_MAX 64 /* HMAC-SHA512 */

/* A TSIG key: name, algorithm and secret, ready to sign. */
typedef struct sb_dns_tsig_key sb_dns_tsig_key;

/*
 * A key from its declaration: name (a DNS name, "xfr-key"), algorithm
 * ("hmac-sha224", "hmac-sha256", "hmac-sha384" or "hmac-sha512"; NULL:
 * hmac-sha256) and secret (base64, at least 16 bytes decoded). Returns 0 and
 * the key, or SB_EINVAL with why set.
 */
int sb_dns_tsig_key_new(const char *name, const char *algorithm, const char *secret_b64,
			sb_dns_tsig_key **out, const char **why);
void sb_dns_tsig_key_free(sb_dns_tsig_key *k);

/* The key's name, lower-case wire format; its length in *len. */
const uint8_t *sb_dns_tsig_key_name(const sb_dns_tsig_key *k, size_t *len);

/*
 * One signed exchange, from either side: the request and its response, or
 * the request and every message of a transfer (RFC 8945 5.3.1: each message
 * is signed over the previous MAC). Zero it and set key to start; the
 * functions below keep the rest.
 */
typedef struct sb_dns_tsig {
	const sb_dns_tsig_key *key;	  /* NULL: nothing to sign (or an unknown key) */
	uint16_t error;			  /* the TSIG error to answer with, 0 when verified */
	uint8_t mac[SB_DNS_TSIG_MAC_MAX]; /* the exchange's last MAC */
	size_t mac_len;
	uint64_t time_signed; /* the request's time signed, then the last message's */
	unsigned count;	      /* responses signed or verified so far */
	/* the request's key and algorithm names as received (error responses
	 * carry them, even for a key we do not know) */
	uint8_t req_key[SB_DNS_NAME_MAX], req_alg[SB_DNS_NAME_MAX];
	size_t req_key_len, req_alg_len;
} sb_dns_tsig;

/*
 * Server side: verify the TSIG record of a query (len bytes at wire) with
 * the key of the same name and algorithm among keys. The query without its
 * TSIG record (ARCOUNT one less), what is to be answered, is copied to out
 * (at least len bytes), its length in *out_len.
 *
 * Returns 0 with t filled: t->key the key (NULL when no key matches) and
 * t->error 0 when the MAC is right and the time within the fudge, else
 * SB_DNS_TSIG_BADKEY, BADSIG or BADTIME: answer NOTAUTH with
 * sb_dns_tsig_sign_response. Returns SB_EPARSE when the query does not parse
 * or has no TSIG record.
 */
int sb_dns_tsig_verify_query(const uint8_t *wire, size_t len, const sb_dns_tsig_key *const *keys,
			     size_t nkeys, sb_dns_tsig *t, uint8_t *out, size_t *out_len);

/* Bytes the TSIG record of the next response of t may take (0 when there is
 * nothing to sign): leave them free when writing the response. */
size_t sb_dns_tsig_room(const sb_dns_tsig *t);

/*
 * Server side: append the TSIG record to a response (len bytes at msg, cap
 * bytes of room): the first one signed over the request's MAC, the next ones
 * of a transfer over the previous response's MAC. With t->error BADKEY or
 * BADSIG, an unsigned record carrying the error (RFC 8945 5.3.2); BADTIME:
 * signed, with our time. Nothing when t has no key and no error. Returns 0,
 * or SB_ERANGE when it does not fit.
 */
int sb_dns_tsig_sign_response(sb_dns_tsig *t, uint8_t *msg, size_t *len, size_t cap);

/*
 * Client side (NOTIFY to secondaries, tests): sign a request with t->key
 * (its MAC is kept in t for the response). Returns 0 or SB_ERANGE.
 */
int sb_dns_tsig_sign_query(sb_dns_tsig *t, uint8_t *msg, size_t *len, size_t cap);

/*
 * Client side: verify the next response (len bytes at msg) of the exchange
 * t signed. Returns 0 with t->error 0 (verified; t now holds its MAC for the
 * next message) or the TSIG error: the one the response carries (BADKEY,
 * BADSIG, BADTIME from the server), BADSIG for a bad MAC or a missing TSIG
 * record, BADKEY for another key. SB_EPARSE when it does not parse.
 */
int sb_dns_tsig_verify_response(sb_dns_tsig *t, const uint8_t *msg, size_t len);

/* ---- text -------------------------------------------------------------- */

/* Presentation form of record i of rs (RFC 1035 master file syntax, names
 * absolute). Returns the length, or SB_ERANGE when buf is too small. */
int sb_dns_rdata_text(const sb_dns_rrset *rs, size_t i, char *buf, size_t size);

/* Mnemonic of a type ("MX", or "TYPE65280"). Returns buf. */
const char *sb_dns_type_text(uint16_t type, char *buf, size_t size);

#endif
