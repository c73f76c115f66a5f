"""Zone transfers from `switchboard serve`: AXFR and IXFR with TSIG (kdig), NSD
as a secondary kept current by NOTIFY, and the UDP response rate limit.

The edge runs with [dns] keys, an allow list, a secondary to notify and a
rate limit. NSD (Debian `nsd`) runs as the current user from a generated
configuration in a temporary directory, on a free loopback port. Readiness
is polled, never slept for; NSD is killed at the end.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import pytest

from edge import (Edge, Proc, SB, SERVICES, closed_port, free_port, preload_env, shim,
                  wait_for as _wait_for)

KEY = "xfr-key"
SECRET = "c3dpdGNoYm9hcmQtZTJlLXRyYW5zZmVyLXNlY3JldCE="  # 32 bytes
ZONE = "revelations.studio"
NSD = shutil.which("nsd") or ("/usr/sbin/nsd" if os.path.exists("/usr/sbin/nsd") else None)
KDIG = shutil.which("kdig")
RRL_RATE = 50

def wait_for(pred, timeout=15, what="condition"):
    return _wait_for(pred, timeout, what, (dns.exception.DNSException, OSError))


pytestmark = pytest.mark.skipif(not KDIG, reason="kdig (Debian knot-dnsutils) is not installed")




@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xfr")
    nsd_port = free_port()
    extra = f"""
[dns]
rrl = {{ responses_per_second = {RRL_RATE}, slip = 2 }}

[[dns.key]]
name = "{KEY}"
algorithm = "hmac-sha256"
secret = "{SECRET}"

[[dns.allow_transfer]]
address = "127.0.0.1/32"
key = "{KEY}"

[[dns.notify]]
address = "127.0.0.1:{nsd_port}"
key = "{KEY}"
"""
    # DNS needs no upstream: a closed port keeps the demo services out
    dead = f"http://127.0.0.1:{closed_port()}"
    ups = {(s, env): dead for s, _, _ in SERVICES for env in ("production", "staging")}
    e = Edge(tmp, extra_toml=extra, demos=False, upstreams=ups).start(dns=True)
    e.nsd_port = nsd_port
    e.tmp = tmp
    yield e
    e.stop()


def q(port, name, rtype="A", tcp=False):
    m = dns.message.make_query(name, rtype)
    f = dns.query.tcp if tcp else dns.query.udp
    return f(m, "127.0.0.1", port=port, timeout=2)


def serial(port):
    r = q(port, ZONE, "SOA")
    if r.rcode() != dns.rcode.NOERROR or not r.answer:
        return None
    return r.answer[0][0].serial


def kdig(edge, *args, key=True):
    argv = [KDIG, "@127.0.0.1", "-p", str(edge.dns_port)]
    if key:
        argv += ["-y", f"hmac-sha256:{KEY}:{SECRET}"]
    out = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=20)
    return out.stdout + out.stderr


def records(text):
    """kdig's records as (name, type, rdata) in order, TSIG left out."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        f = line.split()
        if len(f) >= 4 and f[3] != "TSIG":
            out.append((f[0].lower(), f[3], " ".join(f[4:])))
    return out


def soa_serial(rec):
    assert rec[1] == "SOA", rec
    return int(rec[2].split()[2])


def tenants(edge, *args):
    subprocess.run([SB, "tenants", *args, "-c", edge.dir, "--data", edge.data],
                   check=True, capture_output=True)


def edge_log(edge, pattern):
    rx = re.compile(pattern)
    return any(rx.search(l) for l in edge.edge.err)


# ---- AXFR --------------------------------------------------------------------


def test_axfr_with_the_key(setup):
    out = kdig(setup, ZONE, "AXFR")
    recs = records(out)
    assert recs, out
    s = serial(setup.dns_port)
    assert recs[0][1] == "SOA" and soa_serial(recs[0]) == s, out
    assert recs[-1][1] == "SOA" and soa_serial(recs[-1]) == s, out
    assert sum(1 for r in recs if r[1] == "SOA") == 2
    names = {r[0] for r in recs}
    assert {"codex.revelations.studio.", "api-staging.revelations.studio.",
            "ns1.revelations.studio."} <= names
    assert ("revelations.studio.", "NS", "ns1.revelations.studio.") in recs
    assert "TSIG" in out and "NOERROR" in out, out
    assert "failed" not in out.lower(), out  # kdig verified every TSIG
    assert edge_log(setup, rf"AXFR {ZONE} serial {s} to 127\.0\.0\.1 key {KEY}: \d+ records")


def test_axfr_without_the_key_is_refused(setup):
    out = kdig(setup, ZONE, "AXFR", key=False)
    assert "REFUSED" in out and not records(out), out
    bad = subprocess.run([KDIG, "@127.0.0.1", "-p", str(setup.dns_port), "-y",
                          f"hmac-sha256:other-key:{SECRET}", ZONE, "AXFR"],
                         capture_output=True, text=True, timeout=20)
    text = bad.stdout + bad.stderr
    assert not records(text) and ("NOTAUTH" in text or "BADKEY" in text), text


def test_queries_pipelined_behind_a_transfer_are_answered_after_it(setup):
    keyring = dns.tsigkeyring.from_text({KEY: SECRET})
    axfr = dns.message.make_query(ZONE, "AXFR")
    axfr.use_tsig(keyring, keyname=KEY, algorithm=dns.tsig.HMAC_SHA256)
    soa = dns.message.make_query(ZONE, "SOA")
    wire = b"".join(len(w).to_bytes(2, "big") + w for w in (axfr.to_wire(), soa.to_wire()))
    with socket.create_connection(("127.0.0.1", setup.dns_port), timeout=5) as s:
        s.sendall(wire)  # one write: the SOA query waits for the transfer
        buf, got = b"", []
        while len(got) < 2:
            while len(buf) < 2 or len(buf) < 2 + int.from_bytes(buf[:2], "big"):
                chunk = s.recv(65536)
                assert chunk, got
                buf += chunk
            n = int.from_bytes(buf[:2], "big")
            # the zone fits one message: signed over the request's MAC, verified here
            got.append(dns.message.from_wire(buf[2:2 + n], keyring=keyring if not got else None,
                                             request_mac=axfr.mac, xfr=not got))
            buf = buf[2 + n:]
    assert got[0].id == axfr.id and got[0].answer[0].rdtype == dns.rdatatype.SOA
    assert got[0].answer[-1].rdtype == dns.rdatatype.SOA  # the whole zone in one message
    assert got[1].id == soa.id and got[1].answer[0].rdtype == dns.rdatatype.SOA


def test_axfr_over_udp_is_not_implemented(setup):
    m = dns.message.make_query(ZONE, "AXFR")
    r = dns.query.udp(m, "127.0.0.1", port=setup.dns_port, timeout=2)
    assert r.rcode() == dns.rcode.NOTIMP


# ---- NSD as a secondary ------------------------------------------------------


@pytest.fixture(scope="module")
def nsd(setup):
    if not NSD:
        pytest.skip("nsd (Debian nsd) is not installed")
    d = setup.tmp / "nsd"
    d.mkdir()
    conf = d / "nsd.conf"
    conf.write_text(f"""server:
	ip-address: 127.0.0.1
	port: {setup.nsd_port}
	do-ip6: no
	zonesdir: "{d}"
	pidfile: "{d}/nsd.pid"
	xfrdfile: "{d}/xfrd.state"
	xfrdir: "{d}"
	zonelistfile: "{d}/zone.list"
	database: ""
	username: ""
	chroot: ""
	logfile: "{d}/nsd.log"
	verbosity: 2
	server-count: 1
	minimal-responses: yes
remote-control:
	control-enable: no
key:
	name: "{KEY}"
	algorithm: hmac-sha256
	secret: "{SECRET}"
zone:
	name: "{ZONE}"
	zonefile: "{ZONE}.zone"
	request-xfr: 127.0.0.1@{setup.dns_port} {KEY}
	allow-notify: 127.0.0.1 {KEY}
""")
    p = Proc([NSD, "-d", "-c", str(conf)])
    p.log = d / "nsd.log"
    try:
        # readiness: NSD answers for the zone once its first transfer is in
        wait_for(lambda: serial(setup.nsd_port) == serial(setup.dns_port), 20,
                 "NSD has the zone")
        yield p
    finally:
        # SIGTERM: NSD's main process takes its server children with it
        # (SIGKILL to it would leave them running)
        p.stop(sig=signal.SIGTERM)


def nsd_log(nsd):
    try:
        return nsd.log.read_text()
    except OSError:
        return ""


def same_answer(a, b):
    """rcode, flags and answer section of two responses, as dnspython sees them."""
    assert a.rcode() == b.rcode(), (a, b)
    assert a.flags == b.flags, (dns.flags.to_text(a.flags), dns.flags.to_text(b.flags))
    assert sorted(a.answer, key=str) == sorted(b.answer, key=str), (a.answer, b.answer)


def test_nsd_receives_the_zone_by_axfr_with_tsig(setup, nsd):
    s = serial(setup.dns_port)
    assert serial(setup.nsd_port) == s
    # the first transfer: the whole zone (NSD had none), signed with the key
    assert edge_log(setup, rf"(AXFR|IXFR \(whole zone\)) {ZONE} serial {s} to 127\.0\.0\.1 "
                    rf"key {KEY}"), setup.edge.err[-20:]
    for host in ["codex", "api", "auth-staging", "ns1", "nope"]:
        same_answer(q(setup.nsd_port, f"{host}.{ZONE}"), q(setup.dns_port, f"{host}.{ZONE}"))


def test_nsd_is_notified_and_follows_a_tenant(setup, nsd):
    before = serial(setup.dns_port)
    name = f"newtenant.{ZONE}"
    assert q(setup.nsd_port, name).rcode() == dns.rcode.NXDOMAIN
    tenants(setup, "add", "newtenant")
    after = wait_for(lambda: serial(setup.dns_port) != before and serial(setup.dns_port), 10,
                     "the edge's serial advances")
    # NOTIFY (signed) reaches NSD, which transfers again, incrementally
    wait_for(lambda: edge_log(setup, rf"NOTIFY {ZONE} serial {after}: 127\.0\.0\.1:"
                              rf"{setup.nsd_port} acknowledged"), 15, "NOTIFY acknowledged")
    wait_for(lambda: serial(setup.nsd_port) == after, 15, "NSD has the new serial")
    assert edge_log(setup, rf"IXFR {ZONE} serial {after} to 127\.0\.0\.1 key {KEY}: \d+ records"), \
        setup.edge.err[-20:]
    # NSD answers exactly as Switchboard does
    for tcp in (False, True):
        ours, theirs = q(setup.dns_port, name, tcp=tcp), q(setup.nsd_port, name, tcp=tcp)
        assert ours.rcode() == dns.rcode.NOERROR
        same_answer(theirs, ours)
        assert [r.address for rr in theirs.answer for r in rr] == ["127.0.0.1"]
    same_answer(q(setup.nsd_port, name, "AAAA"), q(setup.dns_port, name, "AAAA"))
    # and follows a removal
    tenants(setup, "remove", "newtenant")
    wait_for(lambda: q(setup.nsd_port, name).rcode() == dns.rcode.NXDOMAIN, 15,
             "NSD drops the tenant")
    same_answer(q(setup.nsd_port, name), q(setup.dns_port, name))


# ---- IXFR ----------------------------------------------------------------------


def test_ixfr_after_a_tenant_change(setup):
    old = serial(setup.dns_port)
    tenants(setup, "add", "ixfrtenant")
    new = wait_for(lambda: serial(setup.dns_port) != old and serial(setup.dns_port), 10,
                   "the serial advances")
    out = kdig(setup, ZONE, f"IXFR={old}")
    recs = records(out)
    assert recs, out
    assert soa_serial(recs[0]) == new and soa_serial(recs[-1]) == new, out
    assert soa_serial(recs[1]) == old, f"incremental: the old SOA second\n{out}"
    assert (f"ixfrtenant.{ZONE}.", "A", "127.0.0.1") in recs, out
    full = records(kdig(setup, ZONE, "AXFR"))
    assert len(recs) < len(full), "an increment, not the zone"
    # a serial the history does not reach: the whole zone, AXFR-style
    out = kdig(setup, ZONE, "IXFR=1")
    recs = records(out)
    assert soa_serial(recs[0]) == new and soa_serial(recs[-1]) == new
    assert sum(1 for r in recs if r[1] == "SOA") == 2
    assert sorted(recs) == sorted(full), out
    # current: our SOA alone
    recs = records(kdig(setup, ZONE, f"IXFR={new}"))
    assert len(recs) == 1 and soa_serial(recs[0]) == new
    tenants(setup, "remove", "ixfrtenant")


# ---- RRL -------------------------------------------------------------------------


def test_udp_responses_are_rate_limited_per_network(setup):
    """A burst from one /24 well over the rate: about a second's worth is
    answered, every other response over it is truncated (slip 2), the rest
    dropped; TCP is not limited."""
    time.sleep(1.1)  # a full bucket, whatever the tests before did
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    n = RRL_RATE * 6
    for i in range(n):
        m = dns.message.make_query(f"codex.{ZONE}", "A", id=i)
        s.sendto(m.to_wire(), ("127.0.0.1", setup.dns_port))
    full = tc = 0
    s.settimeout(0.5)
    try:
        while True:
            r = dns.message.from_wire(s.recv(4096))
            if r.flags & dns.flags.TC:
                assert not r.answer
                tc += 1
            else:
                full += 1
    except socket.timeout:
        pass
    s.close()
    assert RRL_RATE * 0.8 <= full <= RRL_RATE * 2, (full, tc)
    assert tc > 0 and full + tc < n, (full, tc)
    # TCP is never limited
    assert q(setup.dns_port, f"codex.{ZONE}", tcp=True).rcode() == dns.rcode.NOERROR


# ---- a change that fails at its commit -----------------------------------------

SHIM = shim("commit_fail.so")


class Secondary:
    """A UDP NOTIFY listener standing for a secondary: it answers each NOTIFY
    (so the edge stops resending) and records the serial it announced."""

    def __init__(self):
        import threading
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.serials = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            m = dns.message.from_wire(data)
            with self.lock:
                self.serials += [rr.serial for rrs in m.answer for rr in rrs
                                 if rrs.rdtype == dns.rdatatype.SOA]
            r = dns.message.make_response(m)
            self.sock.sendto(r.to_wire(), peer)

    def seen(self):
        with self.lock:
            return list(self.serials)

    def close(self):
        self.sock.close()


@pytest.mark.skipif(not os.path.exists(SHIM), reason="build/shim/commit_fail.so: make e2e builds it")
def test_a_change_that_fails_at_its_commit_announces_nothing(tmp_path):
    """The change's zones are built and its NOTIFY queued before the store
    commits; a failed commit used to leave that NOTIFY (for a serial never
    published) and the transfer history in place, and the retry was then
    never announced (until the rewind: sb_dns_xfr_rewind)."""
    sec = Secondary()
    flag = tmp_path / "fail-commit"
    dead = f"http://127.0.0.1:{closed_port()}"
    ups = {(s, env): dead for s, _, _ in SERVICES for env in ("production", "staging")}
    e = Edge(tmp_path, demos=False, upstreams=ups,
             extra_toml=f'[[dns.notify]]\naddress = "127.0.0.1:{sec.port}"\n'
                        '[[dns.allow_transfer]]\naddress = "127.0.0.1/32"\n')
    e.start(dns=True, env=preload_env(SHIM, SB_TEST_COMMIT_FAIL=str(flag)))
    try:
        cli = lambda *a, check: subprocess.run(
            [SB, "preview", "create", "-c", e.dir, "--data", e.data, *map(str, a)],
            capture_output=True, text=True, timeout=30).returncode == check
        s0 = serial(e.dns_port)
        assert cli("--pr", 1, check=0)
        s1 = serial(e.dns_port)
        wait_for(lambda: s1 in sec.seen(), what=f"NOTIFY for serial {s1}")
        history = kdig_ixfr(e, s0)
        assert history[0] == history[-1] and soa_serial(history[0]) == s1, history
        assert any("codex-preview-1" in r[0] for r in history), history

        flag.touch()
        assert cli("--pr", 2, check=2)  # a store error: the commit failed
        assert serial(e.dns_port) == s1
        assert kdig_ixfr(e, s0) == history  # nothing of it in the history
        flag.unlink()

        # the next change is another one: what the failed one built must not
        # show in its difference (a secondary at s1 would be sent PR 2)
        assert cli("--pr", 3, check=0)
        s2 = serial(e.dns_port)
        assert s2 != s1
        step = kdig_ixfr(e, s1)
        names = {r[0] for r in step}
        assert any("codex-preview-3" in n for n in names), step
        assert not any("codex-preview-2" in n for n in names), step
        # the change is announced, and nothing was ever announced that the
        # zone did not publish
        wait_for(lambda: s2 in sec.seen(), what=f"NOTIFY for serial {s2}")
        assert set(sec.seen()) <= {s1, s2}, (sec.seen(), s1, s2)
        assert not q(e.dns_port, f"codex-preview-2.{ZONE}").answer
    finally:
        e.stop()
        sec.close()


def kdig_ixfr(edge, since):
    """The records of an IXFR from serial `since`."""
    return records(kdig(edge, f"IXFR={since}", ZONE, key=False))
