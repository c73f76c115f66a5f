/*
 * Inside src/dns/: the zone tables shared by zone.c (building), answer.c
 * (lookups) and export.c (listing), and the record-data parser (rdata.c).
 * Not a public API.
 *
 * A zone is a hash table from owner name to node. Owner names are stored
 * relative to the zone, in lower-case wire format without the origin: the
 * apex is the empty name, "www" is "\3www". Nodes are 16 bytes; a name that
 * only has the zone's addresses (a routed host, a tenant) shares one RRset
 * array, so a tenant costs its node, its name and a hash slot.
 */
#ifndef SB_DNS_INTERNAL_H
#define SB_DNS_INTERNAL_H

#include "dns/wire.h"
#include "dns/zone.h"

enum {
	SB_DNS_NODE_ADDR = 1 << 0,   /* the zone's addresses (routed, tenant or nameserver) */
	SB_DNS_NODE_ROUTED = 1 << 1, /* a route host */
	SB_DNS_NODE_TENANT = 1 << 2, /* a tenant's name */
	SB_DNS_NODE_NS = 1 << 3,     /* a nameserver inside the zone */
	SB_DNS_NODE_STATIC = 1 << 4, /* has static records */
};

struct sb_dns_node {
	uint32_t name;	  /* offset of the relative name in zone->names */
	uint8_t name_len; /* bytes; 0 at the apex */
	uint8_t flags;	  /* SB_DNS_NODE_* */
	uint16_t nrrsets;
	sb_dns_rrset *rrsets; /* sorted by type; may be shared; none: empty non-terminal */
};

struct sb_dns_zone {
	char *name;			 /* text, lower case, no trailing dot */
	uint8_t origin[SB_DNS_NAME_MAX]; /* wire, lower case */
	size_t origin_len;		 /* root label included */
	uint32_t ttl;
	uint32_t soa_minimum;
	sb_dns_rrset *soa;  /* in the apex's RRsets */
	sb_dns_rrset *addr; /* A and/or AAAA, shared by address-only names */
	uint16_t naddr;
	struct sb_dns_node *nodes;
	size_t nnodes, cap;
	uint8_t *names; /* relative names, back to back */
	size_t names_len, names_cap;
	uint32_t *slots; /* node index + 1; 0 empty */
	size_t mask;	 /* slots - 1 (a power of two minus one) */
	size_t ntenants;
	uint64_t hash;	  /* sb_dns_content_hash */
	const void *decl; /* the sb_zone_decl while building, then NULL */
};

struct sb_dns_zones {
	sb_pool *pool;
	struct sb_dns_zone *zones;
	size_t nzones;
};

/* The node with relative name [p, p+n), or NULL. */
const struct sb_dns_node *sb_dns_node_find(const struct sb_dns_zone *z, const uint8_t *p, size_t n);

/* The RRset of type in node, or NULL. */
const sb_dns_rrset *sb_dns_node_rrset(const struct sb_dns_node *nd, uint16_t type);

/* ---- names and record data (rdata.c) ----------------------------------- */

/*
 * Parse a name as written in a declaration into wire format at out (cap
 * bytes): "@" is the origin, a trailing dot makes it absolute, otherwise the
 * origin (wire, root included) is appended. Labels: letters, digits, '-' and
 * '_', 1 to 63 bytes; "*" alone as the first label when allow_wild. Lower
 * cased. Returns the wire length, or SB_EINVAL with why set.
 */
int sb_dns_name_parse(const char *s, size_t n, const uint8_t *origin, size_t origin_len,
		      bool allow_wild, uint8_t *out, size_t cap, const char **why);

/* A wire name (or a relative one: no root label, n bytes) as text without the
 * trailing dot, into buf. Returns buf. */
const char *sb_dns_name_text(const uint8_t *wire, size_t n, char *buf, size_t size);

/* The static types: "A", "AAAA", "CNAME", "MX", "TXT", "CAA", "SRV" (any
 * case). Returns 0 and the type, or SB_EINVAL. */
int sb_dns_static_type(const char *s, uint16_t *type);

/*
 * Parse the data of a static record of type into wire rdata at out (cap
 * bytes, 65535 is always enough). Returns the length, or SB_EINVAL with a
 * message in err.
 */
int sb_dns_rdata_parse(uint16_t type, const char *data, const uint8_t *origin, size_t origin_len,
		       uint8_t *out, size_t cap, char *err, size_t errlen);

#endif
