"""DNS answered by `switchboard serve`, derived from routes and tenants."""
import subprocess

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from edge import Edge, SB, wait_for


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    e = Edge(tmp_path_factory.mktemp("dns")).start(dns=True)
    yield e
    e.stop()


def q(edge, name, rtype="A", tcp=False, **kw):
    m = dns.message.make_query(name, rtype, **kw)
    f = dns.query.tcp if tcp else dns.query.udp
    return f(m, "127.0.0.1", port=edge.dns_port, timeout=3)


def addrs(resp):
    return sorted(r.address for rr in resp.answer for r in rr if rr.rdtype == dns.rdatatype.A)


@pytest.mark.parametrize("host", [
    "codex.revelations.studio", "api.revelations.studio", "auth.revelations.studio",
    "codex-staging.revelations.studio", "api-staging.revelations.studio",
    "auth-staging.revelations.studio", "ns1.revelations.studio"])
def test_routed_hosts_resolve_to_the_edge(edge, host):
    for tcp in (False, True):
        r = q(edge, host, tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR and addrs(r) == ["127.0.0.1"]
        assert r.flags & dns.flags.AA and not r.flags & dns.flags.RA


def test_unrouted_names_are_nxdomain_with_soa(edge):
    for host in ["nope.revelations.studio", "www.revelations.studio",
                 "codex-preview-123.revelations.studio"]:
        r = q(edge, host)
        assert r.rcode() == dns.rcode.NXDOMAIN, host
        soa = r.authority[0]
        assert soa.rdtype == dns.rdatatype.SOA and soa.ttl == 300


def test_outside_the_zone_is_refused(edge):
    r = q(edge, "example.com")
    assert r.rcode() == dns.rcode.REFUSED and not r.flags & dns.flags.AA


def test_case_is_preserved(edge):
    r = q(edge, "CoDeX.ReVelations.Studio")
    assert r.question[0].name.to_text() == "CoDeX.ReVelations.Studio."
    assert addrs(r) == ["127.0.0.1"]


def serial(edge):
    return q(edge, "revelations.studio", "SOA").answer[0][0].serial



def test_tenants_appear_and_disappear_with_the_registry(edge):
    def tenants(*args):
        subprocess.run([SB, "tenants", *args, "-c", edge.dir, "--data", edge.data],
                       check=True, capture_output=True)
    s0 = serial(edge)
    assert q(edge, "globex.revelations.studio").rcode() == dns.rcode.NXDOMAIN
    tenants("add", "globex")
    wait_for(lambda: addrs(q(edge, "globex.revelations.studio")) == ["127.0.0.1"])
    s1 = serial(edge)
    assert (s1 - s0) % 2**32 < 2**31 and s1 != s0  # RFC 1982: advanced
    tenants("suspend", "globex")
    wait_for(lambda: q(edge, "globex.revelations.studio").rcode() == dns.rcode.NXDOMAIN)
    assert serial(edge) != s1
    tenants("resume", "globex")
    wait_for(lambda: q(edge, "globex.revelations.studio").rcode() == dns.rcode.NOERROR)
    tenants("remove", "globex")
    wait_for(lambda: q(edge, "globex.revelations.studio").rcode() == dns.rcode.NXDOMAIN)


def test_serial_is_stable_without_changes(edge):
    s = serial(edge)
    edge.edge.p.send_signal(1)  # SIGHUP: same declaration, same zone
    edge.edge.wait_line(lambda l: "reloaded" in l)
    assert serial(edge) == s


def test_dns_and_http_agree(edge):
    """Every host the route table serves resolves; nothing else in the zone does."""
    from edge import request
    for host in ["codex.revelations.studio", "api-staging.revelations.studio",
                 "nope.revelations.studio"]:
        http = request(edge, host, "/health")[0]
        rc = q(edge, host).rcode()
        assert (http == 200) == (rc == dns.rcode.NOERROR), host
