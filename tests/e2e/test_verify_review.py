"""`switchboard verify` as CI runs it after a deploy: answers that must not
pass (a DNS answer that is not the authority's, for another name), answers
that must not hang it, and what it prints. The edge, the fake edge and the
helpers are test_verify's."""
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from edge import SB, closed_port  # noqa: E402
from test_verify import FakeEdge, edge, lines, listen, sign, verify  # noqa: E402,F401


# ---- a DNS server standing in for Switchboard's ------------------------------

def qname(pkt):
    """(name as text, offset after the question) of a query."""
    o, labels = 12, []
    while pkt[o]:
        labels.append(pkt[o + 1:o + 1 + pkt[o]].decode())
        o += 1 + pkt[o]
    return ".".join(labels), o + 5


def wire_name(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".") if l) + b"\0"


class FakeDNS:
    """UDP on 127.0.0.1: each query is answered by answer(query) (bytes, or
    None for no answer); stray(query) may return datagrams sent first."""

    def __init__(self, answer, stray=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.answer, self.stray = answer, stray
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            try:
                q, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if self.stray:
                threading.Thread(target=self.flood, args=(q, peer), daemon=True).start()
            a = self.answer(q)
            if a:
                self.sock.sendto(a, peer)

    def flood(self, q, peer):
        # datagrams that are not the answer, for as long as the test runs
        while not self.stop.wait(0.3):
            try:
                self.sock.sendto(self.stray(q), peer)
            except OSError:
                return

    def close(self):
        self.stop.set()
        self.t.join(5)
        self.sock.close()


def response(q, aa=True, owner=None, addr="127.0.0.1"):
    """An answer to q: the zone's address for A (owner: the record's name,
    by default the name asked), nothing for AAAA."""
    name, end = qname(q)
    qtype = struct.unpack("!H", q[end - 4:end - 2])[0]
    flags = 0x8000 | (0x0400 if aa else 0)
    rrs = b""
    if qtype == 1:
        rrs = wire_name(owner or name) + struct.pack("!HHIH", 1, 1, 60, 4) + \
            socket.inet_aton(addr)
    return q[:2] + struct.pack("!HHHHH", flags, 1, 1 if rrs else 0, 0, 0) + q[12:end] + rrs


def dns_lines(p):
    return [l for l in p.stdout.splitlines() if l[2:].startswith("dns ")]


def verify_with_dns(e, fake, timeout=120):
    try:
        listen(e, dns_port=fake.port)
        t0 = time.monotonic()
        p = subprocess.run([SB, "verify", "-c", str(e.dir)], capture_output=True, text=True,
                           timeout=timeout)
        return p, time.monotonic() - t0
    finally:
        fake.close()
        listen(e)


def test_the_fake_dns_passes_when_it_answers_as_the_authority(edge):
    """The stand-in itself is right: the checks below fail for what they
    change, not for the stand-in."""
    p, _ = verify_with_dns(edge, FakeDNS(lambda q: response(q)))
    assert p.returncode == 0, p.stdout
    assert len(dns_lines(p)) == 3 and all(l.startswith("\u2713 ") for l in dns_lines(p))


def test_a_non_authoritative_dns_answer_fails(edge):
    """A resolver or a cache at [listen] dns (AA clear) answered with the
    right addresses, possibly stale: verify passed it as Switchboard's."""
    p, _ = verify_with_dns(edge, FakeDNS(lambda q: response(q, aa=False)))
    assert p.returncode == 1, p.stdout
    bad = dns_lines(p)
    assert len(bad) == 3 and all(l.startswith("\u2717 ") and "not authoritative" in l
                                 for l in bad), p.stdout


def test_a_dns_answer_for_another_name_fails(edge):
    """Records owned by another name are not the host's addresses."""
    p, _ = verify_with_dns(edge, FakeDNS(lambda q: response(q, owner="elsewhere.example")))
    assert p.returncode == 1, p.stdout
    bad = dns_lines(p)
    assert len(bad) == 3 and all(l.startswith("\u2717 ") and "A none (expected 127.0.0.1)" in l
                                 for l in bad), p.stdout


def test_a_dns_answer_to_another_question_is_not_taken(edge):
    """An answer with our id but another question (a late answer to an
    earlier query, or a confused server) is not the answer to this one."""
    def other_question(q):
        name, _ = qname(q)
        r = response(q[:12] + wire_name("x" + name) + q[len(wire_name(name)) + 12:])
        return r
    p, took = verify_with_dns(edge, FakeDNS(other_question))
    assert p.returncode == 1, p.stdout
    bad = dns_lines(p)
    assert len(bad) == 3 and all(l.startswith("\u2717 ") and "no DNS answer" in l
                                 and "timed out" in l for l in bad), p.stdout


def test_stray_datagrams_do_not_hold_verify(edge):
    """A server that keeps sending datagrams that are not the answer (here
    another id, every 0.3 s) restarted the 2 s wait at each: verify never
    ended. Now each question waits 2 s per attempt, twice, in all."""
    def stray(q):
        return bytes([q[0] ^ 0xFF, q[1]]) + response(q)[2:]
    p, took = verify_with_dns(edge, FakeDNS(lambda q: None, stray=stray), timeout=90)
    assert p.returncode == 1, p.stdout
    bad = dns_lines(p)
    assert len(bad) == 3 and all("no DNS answer" in l and "timed out" in l for l in bad), p.stdout
    # 3 hosts, the A query of each fails after 2 attempts of 2 s
    assert took < 30, took


# ---- what verify prints ------------------------------------------------------

class HealthUpstream:
    """An upstream whose every answer is 200 with the JSON body held in
    .body (bytes)."""

    def __init__(self, body):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.body = body
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)
            do_POST = do_GET

            def log_message(self, *a):
                pass
        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_port}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def run_bytes(e, *args):
    p = subprocess.run([SB, "verify", "-c", str(e.dir), *args], capture_output=True,
                       timeout=120)
    assert b"Sanitizer" not in p.stderr and b"runtime error" not in p.stderr, p.stderr
    return p


def test_what_an_upstream_says_cannot_forge_a_line(fresh):
    """A /health naming a worker with a newline in it printed that newline:
    the upstream wrote a line of its own into verify's output, here a ✓ for
    a check that failed; a name cut at its 60th byte was invalid UTF-8,
    which made the --json document unreadable."""
    forged = "x\n\u2713 health auth-worker (auth-worker-production): fine\x1b[2K"
    up = HealthUpstream(json.dumps({"status": "healthy", "worker": forged}).encode())
    try:
        e = fresh(upstreams={("auth-worker", "production"): up.url}).start(dns=True)
        listen(e)
        p = run_bytes(e)
        out = p.stdout.decode("utf-8")
        assert p.returncode == 1, out
        assert not [l for l in out.splitlines() if l.startswith("\u2713 health auth-worker")], out
        bad = [l for l in out.splitlines() if l.startswith("\u2717 health auth-worker")]
        assert len(bad) == 1 and 'answered by worker "x\\x0a\u2713 health' in bad[0], out
        assert "\x1b" not in out and "\\x1b" in bad[0], out
        # a worker name whose 60th byte is inside a character
        up.body = json.dumps({"status": "healthy", "worker": "a" + "\u00e9" * 40}).encode()
        p = run_bytes(e, "--json")
        doc = json.loads(p.stdout.decode("utf-8"))  # strict UTF-8, strict JSON
        c = [c for c in doc["checks"] if c["name"].startswith("health auth-worker")]
        assert len(c) == 1 and c[0]["ok"] is False and "answered by worker" in c[0]["detail"]
        p = run_bytes(e)
        p.stdout.decode("utf-8")
        assert p.returncode == 1
    finally:
        up.close()


# ---- bad input -----------------------------------------------------------------

def test_a_tenant_registry_that_cannot_be_read_is_a_load_error(fresh):
    """Pinned: verify never goes on without the registry's tenants (a
    suspended static tenant would look active, a registered one missing):
    its verdict would be on another tenant set than the edge's."""
    e = fresh(demos=False)
    e.secret("codex-web-production")  # makes the data directory and its key
    listen(e, http_port=closed_port(), dns_port=None)
    db = e.data / "switchboard.db"
    db.write_bytes(b"this is not an SQLite database" * 100)
    for args in ((), ("--json",)):
        p = verify(e, *args)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert p.stdout == "", p.stdout
        assert "switchboard.db: cannot read the database: file is not a database" in p.stderr, \
            p.stderr
    assert db.read_bytes() == b"this is not an SQLite database" * 100  # left as it was


@pytest.mark.parametrize("what", ["missing", "dir", "short"])
def test_a_data_dir_verify_cannot_use_says_what_and_where(fresh, tmp_path, what):
    e = fresh(demos=False)
    listen(e, http_port=closed_port(), dns_port=None)
    data = tmp_path / "d"
    if what != "missing":
        data.mkdir()
        if what == "dir":
            (data / "secret.key").mkdir()
        else:
            (data / "secret.key").write_text("abc\n")
    p = verify(e, "--data", str(data))
    assert p.returncode == 2 and p.stdout == "", (p.stdout, p.stderr)
    assert str(data) in p.stderr and "secret.key" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    if what == "missing":
        assert not data.exists()  # verify creates nothing


@pytest.mark.parametrize("args", [["--env", "qa\n\u2713 x\x1b[2K"], ["--pr", "1\x1b[2K"],
                                  ["--env", "staging\x1b", "--pr", "2"]])
def test_bad_options_are_echoed_printable(edge, args):
    p = verify(edge, *args)
    assert p.returncode == 2 and p.stdout == "", (p.stdout, p.stderr)
    assert "\x1b" not in p.stderr and "\\x1b" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


# ---- false alarms ----------------------------------------------------------------

def test_health_environment_is_the_deployments_environment_var(fresh):
    """The plan's /health answers environment: c.env.ENVIRONMENT. A
    deployment whose wrangler.toml says ENVIRONMENT = "prod" is healthy when
    its process says "prod": verify wanted the word "production" and failed
    it. Another environment's process still fails."""
    up = HealthUpstream(json.dumps({"status": "healthy", "worker": "codex-web",
                                    "environment": "prod"}).encode())
    try:
        e = fresh(upstreams={("codex-web", "production"): up.url})
        wr = e.dir / "apps/web/wrangler.toml"
        wr.write_text(wr.read_text().replace('ENVIRONMENT = "production"',
                                             'ENVIRONMENT = "prod"'))
        e.start(dns=True)
        listen(e)
        p = verify(e)
        assert p.returncode == 0, p.stdout
        assert ("\u2713 health codex-web (codex-web-production): codex.revelations.studio/health: "
                "HTTP 200, status \"healthy\", worker codex-web (prod)") in p.stdout, p.stdout
        # the staging process answering for production is still caught
        up.body = json.dumps({"status": "healthy", "worker": "codex-web",
                              "environment": "staging"}).encode()
        p = verify(e)
        assert p.returncode == 1, p.stdout
        assert ('answered by environment "staging", not prod (production)') in p.stdout, p.stdout
    finally:
        up.close()


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no ::1 on this machine")
def test_an_edge_listening_on_ipv6_only_passes(fresh):
    e = fresh()
    e.start(args=("--listen", "[::1]:0", "--dns", "[::1]:0"))
    line = next(l for l in e.edge.err if "dns on udp+tcp [::1]:" in l)
    e.dns_port = int(line.split("dns on udp+tcp [::1]:", 1)[1].split(",")[0])
    text = (e.dir / "switchboard.toml").read_text()
    (e.dir / "switchboard.toml").write_text(
        text + f'\n[listen]\nhttp = "[::1]:{e.port}"\ndns = "[::1]:{e.dns_port}"\n')
    p = verify(e)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "\u2713 dns api.revelations.studio: A 127.0.0.1; AAAA none" in p.stdout
    # the wildcard address stands for this machine: [::] is reached at ::1
    (e.dir / "switchboard.toml").write_text(
        text + f'\n[listen]\nhttp = "[::]:{e.port}"\ndns = "[::]:{e.dns_port}"\n')
    p = verify(e)
    assert p.returncode == 0, p.stdout + p.stderr


def test_a_webhook_caught_by_another_services_route_fails(edge):
    """Pinned: an endpoint on codex's host, whose catch-all route sends it to
    codex-web, is not the handler's, whatever codex-web answers."""
    extra = ('\n[[webhook]]\nprovider = "billing"\n'
             'url = "https://codex.revelations.studio/api/webhooks/billing"\n'
             'service = "stripe-webhook-handler"\n')
    try:
        listen(edge, edit=lambda t: t + extra)
        p = verify(edge)
    finally:
        listen(edge)
    assert p.returncode == 1, p.stdout + p.stderr
    assert ("\u2717 webhook billing https://codex.revelations.studio/api/webhooks/billing -> "
            "stripe-webhook-handler-production: reached codex-web-production, not "
            "stripe-webhook-handler-production") in p.stdout, p.stdout


def test_a_zone_with_many_addresses_verifies(tmp_path):
    """24 IPv6 addresses do not fit a 512-byte answer: without EDNS the
    answer came truncated and every AAAA check failed on a healthy edge.
    verify asks with EDNS (the edge answers up to 1232 bytes)."""
    from edge import Edge
    addrs = ["127.0.0.1"] + [f"2001:db8::{i:x}" for i in range(1, 25)]
    e = Edge(tmp_path)
    toml = e.dir / "switchboard.toml"
    text = toml.read_text()
    assert 'addresses = ["127.0.0.1"]' in text
    toml.write_text(text.replace('addresses = ["127.0.0.1"]', "addresses = " + json.dumps(addrs)))
    e.start(dns=True)
    try:
        listen(e)
        p = verify(e)
        dns = [l for l in p.stdout.splitlines() if l[2:].startswith("dns ")]
        assert dns and all(l.startswith("\u2713 ") for l in dns), p.stdout
        assert all("AAAA " + " ".join(addrs[1:]) in l for l in dns), dns
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        e.stop()
