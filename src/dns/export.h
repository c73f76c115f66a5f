/*
 * A derived zone as an RFC 1035 master file, for `switchboard zone export`:
 * NSD (nsd-checkzone) and Knot (kzonecheck) load it unchanged, so the zone
 * can be served by a secondary or checked by other tools.
 */
#ifndef SB_DNS_EXPORT_H
#define SB_DNS_EXPORT_H

#include "common/sb.h"
#include "dns/zone.h"

/*
 * Append zone `zone` (its name, any case, trailing dot allowed) of z to out:
 * a comment line, $ORIGIN, $TTL (the zone's ttl), the SOA, then every other
 * record, one per line ("owner<TAB>ttl<TAB>IN<TAB>TYPE<TAB>data"), owners
 * relative to the origin ("@" for the apex) in DNSSEC canonical order (RFC
 * 4034 6.1) and, per owner, by type. Empty non-terminals have no line.
 * Returns 0, or SB_ENOENT when z has no such zone.
 */
int sb_dns_export(const sb_dns_zones *z, const char *zone, sb_buf *out);

#endif
