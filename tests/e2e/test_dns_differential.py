"""Differential DNS test (issue: serve DNS): Switchboard against NSD.

For a fixed list of queries, the answers of `switchboard serve --dns` must
equal NSD's when NSD serves the zone that `switchboard zone export` prints for
the same declaration, tenants and serial: same rcode, flags (QR, AA, TC, RD,
RA, AD, CD), opcode, question, EDNS (version, payload, DO) and the same
answer, authority and additional records. A section is compared as a sorted
list of (owner, TTL, class, type, rdata): order-insensitive, but a duplicate
record counts. The only exceptions are the entries of INTENDED below, each
with its reason.

The setup: the example's declaration (tests/e2e/edge.py) with the static
records of STATIC appended as [[zone.record]] tables and an SOA whose TTL
(3600) differs from its MINIMUM (60), so negative TTLs are checked (RFC 2308
3: min of the two). Tenants acme and globex are active, initech is
suspended, nobody is absent, codex is the declaration's static tenant. Every
query runs four ways: UDP without EDNS, UDP with EDNS, UDP with EDNS and RD
clear, TCP with EDNS. The static records include a TXT RRset larger than 512
bytes, so the UDP query without EDNS checks truncation (TC) too.

Names are compared **case-sensitively**, everywhere. Only the question's
spelling is required (0x20 resolvers check that the question comes back as
sent: both servers echo it). The spelling of owner names and of names in
rdata follows from name compression against the question, which neither RFC
1034 nor 4343 fixes; today both servers produce the same bytes (checked by
the mixed-case queries), so the comparison stays strict. If a change in
either server's compression ever breaks only this, it belongs in INTENDED,
not in a fix.

NSD runs with `minimal-responses: yes` (see INTENDED, "nsd-minimal") and
rate limiting off. Besides the zone's data, SPECIAL sends queries about the
protocol (EDNS version and options, DO, CD and AD bits, other classes and
opcodes, AXFR, IXFR) and compares the same way.

Every process is stopped at the end; ports are free ones picked at run
time; readiness is polled, never slept for.
"""
import shutil
import subprocess

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest

from edge import Edge, Proc, SB, free_port, wait_for as _wait_for

ZONE = "revelations.studio."
NSD = shutil.which("nsd")

# Static records added to the declaration: (name, type, ttl or None, data as
# written in switchboard.toml, the same rdata as a master-file line).
BIG = ["big-txt-record-%d-" % i + "x" * 90 for i in range(6)]  # 6 x ~110 bytes: > 512
STATIC = [
    ("@", "MX", None, "10 mail", "10 mail.revelations.studio."),
    ("@", "TXT", None, "v=spf1 include:_spf.example.net -all",
     '"v=spf1 include:_spf.example.net -all"'),
    ("@", "CAA", None, '0 issue "letsencrypt.org"', '0 issue "letsencrypt.org"'),
    ("mail", "A", None, "192.0.2.25", "192.0.2.25"),
    ("mail", "AAAA", None, "2001:db8::25", "2001:db8::25"),
    ("api", "TXT", 60, "routed host with a TXT", '"routed host with a TXT"'),
    ("*.dev", "A", None, "192.0.2.7", "192.0.2.7"),
    ("*.dev", "TXT", None, "from the wildcard", '"from the wildcard"'),
    ("www", "CNAME", None, "alias", "alias.revelations.studio."),
    ("alias", "CNAME", None, "codex", "codex.revelations.studio."),
    ("towild", "CNAME", None, "x.dev", "x.dev.revelations.studio."),
    ("dangling", "CNAME", None, "gone", "gone.revelations.studio."),
    ("ext", "CNAME", None, "target.example.net.", "target.example.net."),
    ("loop1", "CNAME", None, "loop2", "loop2.revelations.studio."),
    ("loop2", "CNAME", None, "loop1", "loop1.revelations.studio."),
    ("x.deep", "TXT", None, "below an empty non-terminal", '"below an empty non-terminal"'),
    ("_sip._tcp", "SRV", None, "10 5 5060 mail", "10 5 5060 mail.revelations.studio."),
] + [("big", "TXT", None, s, '"%s"' % s) for s in BIG]

SOA_TTL, SOA_MINIMUM = 3600, 60

# Routed hosts of the example (edge.SERVICES: production and staging), the
# nameserver, the tenants.
ROUTED = ["codex", "api", "auth", "codex-staging", "api-staging", "auth-staging"]
ACTIVE, SUSPENDED, ABSENT = ["acme", "globex"], ["initech"], ["nobody", "umbrella"]


def fq(label):
    return ZONE if label == "@" else f"{label}.{ZONE}"


# The query list: (name, type). Categories as the issue lists them.
QUERIES = []
for h in ROUTED + ["ns1", "codex"]:  # every routed host (codex is also the static tenant)
    QUERIES += [(fq(h), t) for t in ("A", "AAAA", "TXT", "MX")]
for h in ACTIVE + SUSPENDED + ABSENT:  # tenants present, suspended, absent
    QUERIES += [(fq(h), t) for t in ("A", "AAAA", "TXT")]
QUERIES += [(ZONE, t) for t in ("SOA", "NS", "MX", "TXT", "CAA", "A", "AAAA", "SRV",
                                 "DNSKEY", "TYPE65280", "ANY")]  # apex
QUERIES += [(fq("ns1"), "NS"), (fq("ns1"), "ANY")]  # the NS name and its glue
QUERIES += [(fq("mail"), t) for t in ("A", "AAAA", "MX")]
QUERIES += [(fq("_sip._tcp"), "SRV"), (fq("_tcp"), "SRV"), (fq("_udp"), "SRV")]
QUERIES += [(fq(h), "A") for h in ("nope", "www2", "codex-preview-123", "x.nope", "a.b.c.d",
                                  "codex.codex", "ns2", "acme-staging")]  # NXDOMAIN
QUERIES += [(fq("nope"), t) for t in ("AAAA", "TXT", "ANY")]
QUERIES += [(fq("dev"), "A"), (fq("deep"), "A"), (fq("deep"), "TXT"), (fq("deep"), "ANY"),
            (fq("x.deep"), "TXT"), (fq("x.deep"), "A"), (fq("y.deep"), "A"),
            (fq("a.x.deep"), "TXT")]  # empty non-terminals and around them
QUERIES += [(fq("foo.dev"), t) for t in ("A", "AAAA", "TXT", "MX", "ANY")]  # wildcard
QUERIES += [(fq("a.b.dev"), "A"), (fq("*.dev"), "A"), (fq("*.dev"), "TXT"),
            (fq("x.dev"), "CNAME")]
QUERIES += [(fq("www"), t) for t in ("A", "AAAA", "CNAME", "TXT", "ANY")]  # CNAME chain
QUERIES += [(fq("alias"), "A"), (fq("towild"), "A"), (fq("towild"), "TXT"),
            (fq("dangling"), "A"), (fq("dangling"), "CNAME"), (fq("ext"), "A"),
            (fq("ext"), "CNAME"), (fq("loop1"), "A"), (fq("loop2"), "TXT")]
QUERIES += [(fq("big"), "TXT"), (fq("big"), "ANY"), (fq("big"), "A")]  # > 512 bytes
QUERIES += [(fq("api"), "ANY"), (fq("acme"), "ANY"), (fq("codex"), "ANY")]  # ANY at hosts
QUERIES += [("CoDeX.ReVeLaTiOnS.StUdIo.", "A"), ("ACME.revelations.studio.", "A"),
            ("InItEcH.Revelations.Studio.", "A"), ("WwW.ReVelations.Studio.", "A"),
            ("FoO.DeV.Revelations.Studio.", "A"), ("NoPe.ReVelations.Studio.", "A"),
            ("REVELATIONS.STUDIO.", "MX"), ("Revelations.Studio.", "NS"),
            ("Revelations.Studio.", "SOA"), ("Api.Revelations.Studio.", "TXT"),
            ("Y.DeeP.Revelations.Studio.", "A"), ("DeeP.Revelations.Studio.", "A"),
            ("Revelations.Studio.", "ANY"), ("_SIP._Tcp.Revelations.Studio.", "SRV"),
            ("Dangling.Revelations.Studio.", "A")]  # mixed case
QUERIES += [("example.com.", "A"), ("studio.", "SOA"), (".", "NS"),
            ("revelations.studio.evil.", "A"), ("xrevelations.studio.", "A"),
            ("EXAMPLE.com.", "A")]  # out of zone: REFUSED from both

VARIANTS = [  # (label, tcp, use_edns, rd)
    ("udp", False, False, True),
    ("udp+edns", False, 0, True),
    ("udp+edns-rd", False, 0, False),
    ("tcp+edns", True, 0, True),
]

# Intended differences: where Switchboard's answer may differ from NSD's, why,
# and how the comparison allows it (an example query of each is checked to
# really differ, so a stale entry shows up).
INTENDED = {
    "any": {
        "reason": "RFC 8482 4.2 lets a server answer ANY with any one RRset of the name. "
                  "Switchboard answers the first RRset by type number (A before NS before "
                  "SOA...; docs/dns.md, Answers); NSD 4.6 answers one RRset in its own order "
                  "(the SOA at the apex). Allowed: for qtype ANY, Switchboard's whole response "
                  "(rcode, flags, every section) must equal NSD's response to the same query "
                  "with the qtype of the RRset Switchboard chose (question aside); answers "
                  "that are equal as they are (NXDOMAIN, NODATA, one RRset) are compared as is.",
        "example": (ZONE, "ANY"),
    },
    "additional-mx-srv": {
        "reason": "Switchboard puts the in-zone addresses of MX and SRV targets in the "
                  "additional section (RFC 1035 3.3.9, RFC 2782: optional additional-section "
                  "processing). NSD with minimal-responses: yes leaves them out (NSD's default "
                  "mode adds them). Allowed: when the answer holds MX or SRV records, "
                  "Switchboard's additional section must be NSD's plus exactly the A and AAAA "
                  "RRsets NSD itself answers for the in-zone targets, owner names compared "
                  "case-insensitively there (Switchboard compresses the owner against the "
                  "question, so it may be spelt unlike the SRV target, which RFC 2782 forbids "
                  "compressing).",
        "example": (ZONE, "MX"),
    },
    "nsd-minimal": {
        "reason": "NSD runs with minimal-responses: yes. In its default mode NSD adds the "
                  "apex NS RRset to the authority section of every positive answer, and its "
                  "glue to the additional section. Nothing requires it (RFC 1034 4.3.2 does "
                  "not); Switchboard never does, nor does Knot by default. No rule: NSD is "
                  "configured to the same policy.",
        "example": None,
    },
    # The following concern the SPECIAL queries (not the zone's data).
    "cd-bit": {
        "reason": "Switchboard copies the CD bit to the response, as RFC 4035 3.1.6 requires "
                  "(\"The name server side MUST copy the setting of the CD bit\"); NSD 4.6 "
                  "clears it for this unsigned zone. Allowed: the flags differ by CD only.",
        "example": "cd",
    },
    "qclass-any": {
        "reason": "Switchboard REFUSES every class but IN (docs/dns.md, Answers); NSD answers "
                  "QCLASS * (255) with the IN data, without AA. Allowed: Switchboard's answer is "
                  "REFUSED, AA clear, no records.",
        "example": "class-any",
    },
    "version-bind": {
        "reason": "NSD answers version.bind CH TXT with its version (hide-version: no, its "
                  "default); Switchboard REFUSES class CH like every class but IN and does not "
                  "disclose a version. Allowed: Switchboard's answer is REFUSED, AA clear, no "
                  "records.",
        "example": "version-bind",
    },
    "error-question": {
        "reason": "NSD answers some errors without the question: NOTIMP for the opcodes it "
                  "does not implement (STATUS, UPDATE), REFUSED for a class it does not know "
                  "(HS). Switchboard always echoes the question (as Knot does; RFC 1035 does "
                  "not say). Allowed: the question sections differ, NSD's being empty.",
        "example": "opcode-status",
    },
    "ede-not-authoritative": {
        "reason": "To a query outside its zones NSD adds an Extended DNS Error (RFC 8914) "
                  "20, Not Authoritative, to its REFUSED when the query has EDNS; Switchboard "
                  "sends no EDNS option (EDE is optional; docs/dns.md: no options). Allowed: "
                  "for out-of-zone queries, NSD's EDNS options may hold EDE 20, nothing else.",
        "example": ("example.com.", "A"),
    },
    "notify": {
        "reason": "NOTIFY (RFC 1996) for a zone NSD is primary for: NSD answers REFUSED with AA "
                  "and no question; Switchboard, with no transfer configured in this "
                  "declaration, answers NOTIMP, AA clear, question kept. Allowed: "
                  "Switchboard's answer is NOTIMP, AA clear, no records.",
        "example": "opcode-notify",
    },
}


def _refused_no_records(sb, nsd, rcode=dns.rcode.REFUSED):
    bad = []
    if sb.rcode() != rcode or sb.flags & dns.flags.AA or sb.answer or sb.authority:
        bad.append(f"switchboard: {dns.rcode.to_text(sb.rcode())} "
                   f"{dns.flags.to_text(sb.flags)} {sb.answer} {sb.authority}")
    return bad


def _allow(key, sb, nsd, diffs):
    """What is left of diffs once the SPECIAL entry key allows its difference."""
    if key == "cd-bit":
        rest = [d for d in diffs if not d.startswith("flags:")]
        if sb.flags != nsd.flags | dns.flags.CD:
            rest.append(f"flags: switchboard {dns.flags.to_text(sb.flags)} / nsd "
                        f"{dns.flags.to_text(nsd.flags)}: not CD alone")
        return rest
    if key in ("qclass-any", "version-bind"):
        return _refused_no_records(sb, nsd)
    if key == "notify":
        return _refused_no_records(sb, nsd, dns.rcode.NOTIMP)
    if key == "error-question":
        rest = [d for d in diffs if not d.startswith("question:")]
        if nsd.question or len(sb.question) != 1:
            rest.append(f"question: switchboard {sb.question} / nsd {nsd.question}")
        return rest
    raise KeyError(key)


def _q(name, rtype, **kw):
    opcode = kw.pop("opcode", None)
    flags = kw.pop("flags", 0)
    ednsver = kw.pop("edns_version", None)
    m = dns.message.make_query(name, rtype, **kw)
    if opcode is not None:
        m.set_opcode(opcode)
    if ednsver is not None:
        m.use_edns(ednsver)
    m.flags |= flags
    return m


# Queries that are not about the zone's data: (label, message maker, tcp,
# INTENDED key or None for a strict comparison).
SPECIAL = [
    ("edns-version-1", lambda: _q(ZONE, "SOA", edns_version=1), False, None),  # BADVERS
    ("do-bit", lambda: _q(fq("codex"), "A", use_edns=0, want_dnssec=True), False, None),
    ("payload-512", lambda: _q(fq("codex"), "A", use_edns=0, payload=512), False, None),
    ("payload-512-big", lambda: _q(fq("big"), "TXT", use_edns=0, payload=512), False, None),
    ("payload-4096-big", lambda: _q(fq("big"), "TXT", use_edns=0, payload=4096), False, None),
    ("edns-cookie", lambda: _q(fq("codex"), "A", use_edns=0,
                               options=[dns.edns.GenericOption(10, b"01234567")]), False, None),
    ("edns-nsid", lambda: _q(fq("codex"), "A", use_edns=0,
                             options=[dns.edns.GenericOption(3, b"")]), False, None),
    ("ad-bit", lambda: _q(fq("codex"), "A", flags=dns.flags.AD), False, None),
    ("axfr-tcp", lambda: _q(ZONE, "AXFR"), True, None),
    ("ixfr-udp", lambda: _q(ZONE, "IXFR"), False, None),
    ("class-ch", lambda: _q(ZONE, "SOA", rdclass="CH"), False, None),
    ("class-hs", lambda: _q(fq("codex"), "A", rdclass="HS"), False, "error-question"),
    ("cd", lambda: _q(fq("codex"), "A", flags=dns.flags.CD), False, "cd-bit"),
    ("class-any", lambda: _q(ZONE, "SOA", rdclass="ANY"), False, "qclass-any"),
    ("version-bind", lambda: _q("version.bind.", "TXT", rdclass="CH"), False, "version-bind"),
    ("opcode-status", lambda: _q(ZONE, "SOA", opcode=dns.opcode.STATUS), False,
     "error-question"),
    ("opcode-update", lambda: _q(ZONE, "SOA", opcode=dns.opcode.UPDATE), False,
     "error-question"),
    ("opcode-notify", lambda: _q(ZONE, "SOA", opcode=dns.opcode.NOTIFY, flags=dns.flags.AA),
     False, "notify"),
]




def wait_for(pred, timeout=10, what="condition"):
    return _wait_for(pred, timeout, what, (dns.exception.Timeout, OSError))


def ask(port, name, rtype, tcp=False, use_edns=0, rd=True, timeout=3):
    m = dns.message.make_query(name, rtype, use_edns=use_edns)
    if not rd:
        m.flags &= ~dns.flags.RD
    f = dns.query.tcp if tcp else dns.query.udp
    return f(m, "127.0.0.1", port=port, timeout=timeout)



def records_toml():
    out = []
    for name, rtype, ttl, data, _ in STATIC:
        out += ["[[zone.record]]", f'name = "{name}"', f'type = "{rtype}"']
        if ttl is not None:
            out.append(f"ttl = {ttl}")
        out.append("data = '%s'" % data)
        out.append("")
    return "\n".join(out)


def static_lines():
    return [f"{'@' if n == '@' else n}\t{ttl or 300}\tIN\t{t}\t{rdata}"
            for n, t, ttl, _, rdata in STATIC]


class Servers:
    def __init__(self, tmp):
        self.tmp = tmp
        self.edge = Edge(tmp, demos=False, extra_toml="\n" + records_toml())
        decl = self.edge.dir / "switchboard.toml"
        text = decl.read_text()
        ns = 'nameservers = ["ns1.revelations.studio"]'
        assert text.count(ns) == 1, "edge.py's [[zone]] changed: update this test"
        decl.write_text(text.replace(
            ns, ns + f"\nsoa = {{ ttl = {SOA_TTL}, minimum = {SOA_MINIMUM} }}"))
        self.nsd = None

    def tenants(self, *args):
        subprocess.run([SB, "tenants", *args, "-c", self.edge.dir, "--data", self.edge.data],
                       check=True, capture_output=True)

    def start(self):
        e = self.edge.start(dns=True)
        self.sb_port = e.dns_port
        for slug in ACTIVE + SUSPENDED:
            self.tenants("add", slug)
        for slug in SUSPENDED:
            self.tenants("suspend", slug)

        def settled():
            ok = all(ask(self.sb_port, fq(s), "A").rcode() == dns.rcode.NOERROR for s in ACTIVE)
            return ok and all(ask(self.sb_port, fq(s), "A").rcode() == dns.rcode.NXDOMAIN
                              for s in SUSPENDED)
        wait_for(settled, what="the edge serves the registered tenants")
        self.serial = ask(self.sb_port, ZONE, "SOA").answer[0][0].serial

        out = subprocess.run([SB, "zone", "export", "-c", e.dir, "--data", e.data,
                              "--serial", str(self.serial), "revelations.studio"],
                             capture_output=True, text=True, check=True)
        self.export = out.stdout
        exported = dns.zone.from_text(self.export, origin=ZONE, relativize=False,
                                      check_origin=True)
        missing = []
        for line in static_lines():
            one = dns.zone.from_text(f"$ORIGIN {ZONE}\n@ 300 IN SOA a. b. 1 1 1 1 1\n"
                                     f"@ 300 IN NS a.\n{line}\n", origin=ZONE,
                                     relativize=False, check_origin=False)
            for name, ttl, rd in one.iterate_rdatas():
                if rd.rdtype in (dns.rdatatype.SOA, dns.rdatatype.NS):
                    continue
                rs = exported.get_rdataset(name, rd.rdtype)
                if rs is None or rd not in rs:
                    missing.append(line)
        self.missing_static = missing
        self.zonefile = self.export
        self.zone = dns.zone.from_text(self.zonefile, origin=ZONE, relativize=False)

        d = self.tmp / "nsd"
        d.mkdir()
        (d / "zone").write_text(self.zonefile)
        # the port is picked, then bound by nsd: something else may take it
        # in between, so a start that fails is tried again on another one
        for attempt in range(5):
            self.nsd_port = free_port()
            (d / "nsd.conf").write_text(f"""server:
  ip-address: 127.0.0.1
  port: {self.nsd_port}
  server-count: 1
  zonesdir: "{d}"
  pidfile: "{d}/nsd.pid"
  database: ""
  username: ""
  xfrdfile: "{d}/xfrd.state"
  xfrdir: "{d}"
  zonelistfile: "{d}/zone.list"
  minimal-responses: yes
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  verbosity: 1
remote-control:
  control-enable: no
zone:
  name: revelations.studio
  zonefile: zone
""")
            self.nsd = Proc([NSD, "-d", "-c", str(d / "nsd.conf")])

            def nsd_up():
                if self.nsd.p.poll() is not None:
                    raise RuntimeError(f"nsd exited {self.nsd.p.returncode}: {self.nsd.err[-20:]}")
                r = ask(self.nsd_port, ZONE, "SOA", timeout=0.5)
                return r.rcode() == dns.rcode.NOERROR and r.answer[0][0].serial == self.serial
            try:
                wait_for(nsd_up, what=f"nsd answers the SOA on port {self.nsd_port}")
                return self
            except RuntimeError:
                self.nsd.stop()
                if attempt == 4 or not any("in use" in l for l in self.nsd.err):
                    raise

    def stop(self):
        if self.nsd is not None:
            self.nsd.stop()
        self.edge.stop()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    if NSD is None:
        pytest.skip("nsd is not installed (Debian package nsd)")
    s = Servers(tmp_path_factory.mktemp("dnsdiff"))
    try:
        s.start()
        yield s
    finally:
        s.stop()


# ---- comparison ------------------------------------------------------------

def rrs(section):
    """A section as a sorted list of (owner, ttl, class, type, rdata), case as sent."""
    out = []
    for rrset in section:
        for rd in rrset:
            out.append((rrset.name.to_text(), rrset.ttl, dns.rdataclass.to_text(rrset.rdclass),
                        dns.rdatatype.to_text(rrset.rdtype), rd.to_text()))
    return sorted(out)


def header(r):
    edns = None if r.edns < 0 else (r.edns, r.payload, r.ednsflags, [o.to_text() for o in r.options])
    return {"rcode": dns.rcode.to_text(r.rcode()), "opcode": r.opcode(),
            "flags": dns.flags.to_text(r.flags), "edns": edns,
            "question": [(q.name.to_text(), q.rdclass, q.rdtype) for q in r.question]}


def compare(sb, nsd, skip_question=False, fold_additional=False):
    """The differences between two responses, as readable lines."""
    diffs = []
    hs, hn = header(sb), header(nsd)
    for k in hs:
        if k == "question" and skip_question:
            continue
        if hs[k] != hn[k]:
            diffs.append(f"{k}: switchboard {hs[k]} / nsd {hn[k]}")
    for sec in ("answer", "authority", "additional"):
        a, b = rrs(getattr(sb, sec)), rrs(getattr(nsd, sec))
        if fold_additional and sec == "additional":
            a = sorted((r[0].lower(),) + r[1:] for r in a)
            b = sorted((r[0].lower(),) + r[1:] for r in b)
        if a != b:
            diffs.append(f"{sec}: switchboard {a} / nsd {b}")
    return diffs


def in_zone(name):
    return name.is_subdomain(dns.name.from_text(ZONE))


def expected_additional(servers, sb, nsd, variant):
    """INTENDED["additional-mx-srv"]: NSD's additional section plus the
    addresses NSD answers for the in-zone MX/SRV targets of the answer."""
    _, tcp, edns, rd = variant
    extra = []
    for rrset in sb.answer:
        if rrset.rdtype not in (dns.rdatatype.MX, dns.rdatatype.SRV):
            continue
        for rd_ in rrset:
            t = rd_.exchange if rrset.rdtype == dns.rdatatype.MX else rd_.target
            if t == dns.name.root or not in_zone(t):
                continue
            for at in ("A", "AAAA"):
                r = ask(servers.nsd_port, t.to_text(), at, tcp, edns, rd)
                extra += [rs for rs in r.answer if rs.rdtype == dns.rdatatype.from_text(at)
                          and rs.name == t]
    return extra


def check(servers, name, rtype, variant):
    """Differences left after applying INTENDED; and the entries that applied."""
    _, tcp, edns, rd = variant
    sb = ask(servers.sb_port, name, rtype, tcp, edns, rd)
    nsd = ask(servers.nsd_port, name, rtype, tcp, edns, rd)
    used = []
    if name != sb.question[0].name.to_text() or name != nsd.question[0].name.to_text():
        return [f"question case: sent {name}, switchboard {sb.question[0].name}, "
                f"nsd {nsd.question[0].name}"], used
    diffs = compare(sb, nsd)
    if diffs and nsd.rcode() == dns.rcode.REFUSED and not in_zone(dns.name.from_text(name)):
        opts = [o for o in nsd.options if not (o.otype == dns.edns.EDE and o.code == 20)]
        if len(opts) != len(nsd.options):
            used.append("ede-not-authoritative")
            nsd.use_edns(nsd.edns, nsd.ednsflags, nsd.payload, options=opts)
            diffs = compare(sb, nsd)
    if diffs and rtype == "ANY" and len(sb.answer) == 1 and len(nsd.answer) == 1:
        used.append("any")
        chosen = dns.rdatatype.to_text(sb.answer[0].rdtype)
        nsd = ask(servers.nsd_port, name, chosen, tcp, edns, rd)
        diffs = compare(sb, nsd, skip_question=True)
    if diffs and any(rs.rdtype in (dns.rdatatype.MX, dns.rdatatype.SRV) for rs in sb.answer):
        extra = expected_additional(servers, sb, nsd, variant)
        if extra:
            used.append("additional-mx-srv")
            nsd.additional = list(nsd.additional) + extra
            diffs = compare(sb, nsd, skip_question=rtype == "ANY", fold_additional=True)
    return diffs, used


# ---- tests -----------------------------------------------------------------

def test_export_serial_is_the_served_one(servers):
    soa = [l for l in servers.export.splitlines() if "\tSOA\t" in l]
    assert len(soa) == 1 and f" {servers.serial} " in soa[0], soa
    assert ask(servers.sb_port, ZONE, "SOA").answer[0][0].serial == servers.serial


def test_export_has_the_static_records(servers):
    """Every [[zone.record]] that the server answers is in the exported
    file that NSD loads."""
    assert static_lines(), "the declaration under test has no static records"
    assert not servers.missing_static, servers.missing_static


def test_queries_cover_every_name_of_the_zone(servers):
    """Every owner name of the served zone (every routed host, tenant, static
    record and the nameserver) is asked for at least one type, and so is the
    parent of each: the empty non-terminals."""
    asked = {dns.name.from_text(n) for n, _ in QUERIES}
    apex = dns.name.from_text(ZONE)
    names = set(servers.zone.nodes)
    for n in list(names):
        while n != apex:
            n = n.parent()
            names.add(n)
    missing = sorted(n.to_text() for n in names - asked)
    assert not missing, f"names of the zone never queried: {missing}"
    for slug in ACTIVE + ROUTED:
        assert dns.name.from_text(fq(slug)) in servers.zone.nodes, slug
    for slug in SUSPENDED + ABSENT:
        assert dns.name.from_text(fq(slug)) not in servers.zone.nodes, slug


@pytest.mark.parametrize("name,rtype", QUERIES, ids=[f"{n}{t}" for n, t in QUERIES])
def test_same_answer_as_nsd(servers, name, rtype):
    problems = []
    for v in VARIANTS:
        diffs, _ = check(servers, name, rtype, v)
        problems += [f"{name} {rtype} over {v[0]}: {d}" for d in diffs]
    assert not problems, "\n".join(problems)


def send(port, m, tcp):
    f = dns.query.tcp if tcp else dns.query.udp
    return f(m, "127.0.0.1", port=port, timeout=3)


@pytest.mark.parametrize("label,make,tcp,key", SPECIAL, ids=[s[0] for s in SPECIAL])
def test_special_queries(servers, label, make, tcp, key):
    m = make()
    sb, nsd = send(servers.sb_port, m, tcp), send(servers.nsd_port, m, tcp)
    diffs = compare(sb, nsd)
    if key is not None:
        assert diffs, f"{label}: no longer differs from NSD: drop {key} from INTENDED"
        diffs = _allow(key, sb, nsd, diffs)
    assert not diffs, f"{label}: " + "\n".join(diffs)


@pytest.mark.parametrize("key", [k for k, v in INTENDED.items()
                                 if isinstance(v["example"], tuple)])
def test_intended_differences_are_real(servers, key):
    """Each listed difference of the zone's data shows on its example (the
    list is not stale) and is fully explained by its rule."""
    name, rtype = INTENDED[key]["example"]
    v = VARIANTS[1]
    sb = ask(servers.sb_port, name, rtype, v[1], v[2], v[3])
    nsd = ask(servers.nsd_port, name, rtype, v[1], v[2], v[3])
    assert compare(sb, nsd), f"{key}: {name} {rtype} no longer differs: drop it from INTENDED"
    diffs, used = check(servers, name, rtype, v)
    assert not diffs and key in used, (diffs, used)


def test_truncation_without_edns(servers):
    """The > 512-byte TXT RRset: TC with an empty answer over UDP without
    EDNS from both (compared above); whole over TCP and over EDNS."""
    r = ask(servers.sb_port, fq("big"), "TXT", use_edns=False)
    assert r.flags & dns.flags.TC and not r.answer
    for tcp, edns in ((True, False), (False, 0)):
        r = ask(servers.sb_port, fq("big"), "TXT", tcp, edns)
        assert not r.flags & dns.flags.TC and len(r.answer[0]) == len(BIG)
