#!/usr/bin/python3
"""Query file for the DNS benchmark (bench/dns.sh; issue: serve DNS).

    queries.py ZONEFILE TENANT_HOSTS COUNT OUT SAMPLE_OUT

ZONEFILE is `switchboard zone export` of the benchmark's zone, TENANT_HOSTS
the hosts bench/seed_tenants wrote (one "<slug>.<zone>" a line). Writes
COUNT queries, "name TYPE" one a line as dnsperf reads them, shuffled with a
fixed seed, in this mix:

  30%  A     of a registered tenant host, picked uniformly among all of them
  15%  A     of a routed host of the declaration or the nameserver
  15%  AAAA  of a routed host (positive: the zone's addresses include ::1)
  10%  SOA   at the apex
  10%  NS    at the apex (glue in the additional section)
  10%  A     of an unregistered slug: NXDOMAIN
  10%  MX or TXT of a routed host: NODATA

and SAMPLE_OUT: "category name TYPE" lines, 20 of each category, that
bench/dns/check.py asks every server before the timing. Prints the mix.
"""
import random
import sys

MIX = [("tenant_a", 30), ("host_a", 15), ("host_aaaa", 15), ("soa", 10), ("ns", 10),
       ("nxdomain", 10), ("nodata", 10)]


def main():
    zonefile, tenants_file, count, out, sample_out = sys.argv[1:]
    count = int(count)
    origin = None
    owners = set()
    for line in open(zonefile):
        if line.startswith("$ORIGIN"):
            origin = line.split()[1]
        elif line and not line.startswith((";", "$", "\t", " ")):
            owners.add(line.split("\t", 1)[0])
    assert origin and origin.endswith("."), "no $ORIGIN in " + zonefile
    tenants = [l.strip() + "." for l in open(tenants_file) if l.strip()]
    tenant_labels = {t[: -len(origin) - 1] for t in tenants}
    hosts = sorted(o + "." + origin for o in owners if o != "@" and o not in tenant_labels)
    assert hosts and tenants, "no routed hosts or no tenants"
    rng = random.Random(20261127)

    def make(cat):
        if cat == "tenant_a":
            return rng.choice(tenants), "A"
        if cat == "host_a":
            return rng.choice(hosts), "A"
        if cat == "host_aaaa":
            return rng.choice(hosts), "AAAA"
        if cat == "soa":
            return origin, "SOA"
        if cat == "ns":
            return origin, "NS"
        if cat == "nxdomain":
            return "nosuch-%x.%s" % (rng.getrandbits(32), origin), "A"
        return rng.choice(hosts), rng.choice(["MX", "TXT"])

    cats = []
    for cat, pct in MIX:
        cats += [cat] * (count * pct // 100)
    while len(cats) < count:
        cats.append(MIX[0][0])
    rng.shuffle(cats)
    with open(out, "w") as f:
        for cat in cats:
            f.write("%s %s\n" % make(cat))
    with open(sample_out, "w") as f:
        for cat, _ in MIX:
            for _ in range(20):
                f.write("%s %s %s\n" % ((cat,) + make(cat)))
    print("queries  %d in %s: %s; %d tenant hosts, %d routed hosts (%s)" % (
        count, out, ", ".join("%d%% %s" % (p, c) for c, p in MIX), len(tenants), len(hosts),
        " ".join(h[: -len(origin) - 1] for h in hosts)))


if __name__ == "__main__":
    main()
