#!/usr/bin/python3
"""Check before timing (bench/dns.sh): every server gives the same answers.

    check.py SAMPLE NAME=PORT [NAME=PORT...]

SAMPLE holds "category name TYPE" lines (bench/dns/queries.py). Each query
is sent over UDP with EDNS to every server on 127.0.0.1; the rcode, the AA
flag and the answer, authority and additional sections (sorted records) must
be the same for all, and the rcode must be the category's (NXDOMAIN for
nxdomain, NOERROR with an empty answer for nodata, NOERROR with an answer
otherwise). Prints one line; exits 1 with the first difference.
"""
import sys

import dns.flags
import dns.message
import dns.query
import dns.rcode


def rrs(section):
    return sorted((rs.name.to_text().lower(), rs.ttl, rs.rdtype, rd.to_text().lower())
                  for rs in section for rd in rs)


def main():
    sample = [l.split() for l in open(sys.argv[1]) if l.strip()]
    servers = [(a.split("=")[0], int(a.split("=")[1])) for a in sys.argv[2:]]
    for cat, name, rtype in sample:
        seen = []
        for sname, port in servers:
            q = dns.message.make_query(name, rtype, use_edns=0)
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=3)
            got = (dns.rcode.to_text(r.rcode()), bool(r.flags & dns.flags.AA), rrs(r.answer),
                   rrs(r.authority), rrs(r.additional))
            want_rc = "NXDOMAIN" if cat == "nxdomain" else "NOERROR"
            if got[0] != want_rc or not got[1] or (cat in ("nxdomain", "nodata")) != (not got[2]):
                sys.exit(f"check.py: {sname}: {name} {rtype} ({cat}): unexpected {got}")
            seen.append((sname, got))
        for sname, got in seen[1:]:
            if got != seen[0][1]:
                sys.exit(f"check.py: {name} {rtype}: {seen[0][0]} answers {seen[0][1]}, "
                         f"{sname} answers {got}")
    print(f"check    {len(sample)} sample queries ({len(sample) // 20} categories x 20): "
          f"{', '.join(s for s, _ in servers)} give the same rcode, AA and sections")


if __name__ == "__main__":
    main()
