"""`zone export` prints the serial the edge serves.

It printed the unix time whatever the edge served, so an export never
compared equal to the zone a secondary got from the edge (whose serials are
kept in <data_dir>/dns-serials across restarts and run ahead of the clock
after several changes in one second).
"""
import time

import dns.message
import dns.query
import dns.rdatatype

from edge import run_cli, wait_for

ZONE = "revelations.studio"


def served_serial(e):
    r = dns.query.udp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=e.dns_port,
                      timeout=3)
    return next(rr for rr in r.answer if rr.rdtype == dns.rdatatype.SOA)[0].serial


def exported(e, *extra):
    out = run_cli("zone", "export", "-c", e.dir, *extra, ZONE, check=0).stdout
    soa = next(l for l in out.splitlines() if "\tSOA\t" in l)
    return int(soa.split()[6]), out


def test_the_export_has_the_served_serial(fresh):
    e = fresh()
    before = int(time.time())
    # no edge has published the zone from this data directory: the clock
    assert before <= exported(e)[0] <= int(time.time())
    e.start(dns=True)
    first = served_serial(e)
    assert exported(e)[0] == first
    # changes in one second run the serial ahead of the clock
    for slug in ("acme", "beta", "gamma"):
        run_cli("tenants", "add", slug, "-c", e.dir, check=0)
    wait_for(lambda: f"gamma\t" in exported(e)[1] and served_serial(e) != first,
             what="the tenants to be published")
    wait_for(lambda: exported(e)[0] == served_serial(e), what="export and edge to agree")
    now = served_serial(e)
    # the edge stopped: what it published stays the export's serial
    e.stop()
    assert exported(e)[0] == now
    # a change it has not published: the serial it would give it, after its own
    run_cli("tenants", "add", "delta", "-c", e.dir, check=0)
    nxt = exported(e)[0]
    assert (nxt - now) % 2**32 in range(1, 2**31), (now, nxt)
    # --serial still wins
    assert exported(e, "--serial", "7")[0] == 7
