/*
 * Zone export (export.h). Owners are sorted in canonical order so that two
 * exports of the same content are byte-identical (diffable), whatever order
 * routes and tenants were added in; record data is printed by libknot's
 * dumper (through wire.c), the same text Knot itself writes.
 */
#include "dns/export.h"

#include <stdlib.h>
#include <string.h>

#include "dns/internal.h"

/* Label starts of a relative name, right to left order is off[n-1] .. off[0]. */
static size_t labels(const uint8_t *p, size_t n, size_t off[128])
{
	size_t k = 0;
	for (size_t i = 0; i < n && k < 128; i += 1 + (size_t)p[i])
		off[k++] = i;
	return k;
}

/* RFC 4034 6.1: compare label by label from the right, as octet strings
 * (names are lower case already); a name sorts after its ancestors. */
static int canonical_cmp(const void *a, const void *b, void *ctx)
{
	const struct sb_dns_zone *z = ctx;
	const struct sb_dns_node *x = &z->nodes[*(const uint32_t *)a];
	const struct sb_dns_node *y = &z->nodes[*(const uint32_t *)b];
	const uint8_t *px = z->names + x->name, *py = z->names + y->name;
	size_t ox[128], oy[128];
	size_t nx = labels(px, x->name_len, ox), ny = labels(py, y->name_len, oy);
	while (nx && ny) {
		const uint8_t *lx = px + ox[--nx], *ly = py + oy[--ny];
		size_t l = lx[0] < ly[0] ? lx[0] : ly[0];
		int c = memcmp(lx + 1, ly + 1, l);
		if (c)
			return c;
		if (lx[0] != ly[0])
			return lx[0] < ly[0] ? -1 : 1;
	}
	return nx ? 1 : ny ? -1 : 0;
}

static void put_rrset(sb_buf *out, const char *owner, const sb_dns_rrset *rs, char *text,
		      size_t size)
{
	char tb[32];
	sb_dns_type_text(rs->type, tb, sizeof(tb));
	for (size_t i = 0; i < rs->count; i++) {
		if (sb_dns_rdata_text(rs, i, text, size) < 0)
			continue; /* cannot happen with a 256 KiB buffer and 64 KiB rdata */
		sb_buf_addf(out, "%s\t%u\tIN\t%s\t%s\n", owner, rs->ttl, tb, text);
	}
}

int sb_dns_export(const sb_dns_zones *zs, const char *zone, sb_buf *out)
{
	ssize_t zi = sb_dns_zone_find(zs, zone);
	if (zi < 0)
		return SB_ENOENT;
	const struct sb_dns_zone *z = &zs->zones[zi];
	size_t ntext = 4 * 65536; /* \DDD escapes: 4 bytes per rdata byte at most */
	char *text = sb_xmalloc(ntext);
	uint32_t *order = sb_xmalloc((z->nnodes + 1) * sizeof(*order));
	size_t n = 0;
	for (size_t k = 1; k < z->nnodes; k++) /* node 0 is the apex */
		if (z->nodes[k].nrrsets)
			order[n++] = (uint32_t)k;
	qsort_r(order, n, sizeof(*order), canonical_cmp, (void *)z);

	sb_buf_addf(out, "; %s: derived by Switchboard %s; serial %u\n", z->name, SB_VERSION,
		    sb_dns_zone_serial(zs, (size_t)zi));
	sb_buf_addf(out, "$ORIGIN %s.\n$TTL %u\n", z->name, z->ttl);
	const struct sb_dns_node *apex = &z->nodes[0];
	put_rrset(out, "@", z->soa, text, ntext);
	for (uint16_t i = 0; i < apex->nrrsets; i++)
		if (apex->rrsets[i].type != SB_DNS_SOA)
			put_rrset(out, "@", &apex->rrsets[i], text, ntext);
	char owner[SB_DNS_NAME_MAX * 2];
	for (size_t i = 0; i < n; i++) {
		const struct sb_dns_node *nd = &z->nodes[order[i]];
		sb_dns_name_text(z->names + nd->name, nd->name_len, owner, sizeof(owner));
		for (uint16_t j = 0; j < nd->nrrsets; j++)
			put_rrset(out, owner, &nd->rrsets[j], text, ntext);
	}
	free(order);
	free(text);
	return 0;
}
