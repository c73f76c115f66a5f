"""`switchboard verify` end to end: the real edge with DNS on, demo services,
and fake edges that forge or misroute the deployment proof."""
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from edge import SB, SERVICES, Edge, request, start_demo  # noqa: E402


def listen(e, http_port=None, dns_port="edge", edit=None):
    """Point the declaration's [listen] at the running edge (or elsewhere),
    the declaration as the edge read it, changed by edit. The edge read its
    declaration at start, so this only affects verify; the next call
    without edit restores it."""
    p = e.dir / "switchboard.toml"
    if not hasattr(e, "pristine"):
        e.pristine = p.read_text().split("\n[listen]\n")[0]
    text = e.pristine
    if edit:
        text = edit(text)
    lines = ["", "[listen]", f'http = "127.0.0.1:{http_port or e.port}"']
    if dns_port == "edge":
        dns_port = e.dns_port
    if dns_port:
        lines.append(f'dns = "127.0.0.1:{dns_port}"')
    p.write_text(text + "\n".join(lines) + "\n")


def verify(e, *args):
    p = subprocess.run([SB, "verify", "-c", str(e.dir), *args], capture_output=True, text=True,
                       timeout=120)
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p


def lines(p, mark):
    return [l for l in p.stdout.splitlines() if l.startswith(mark + " ")]


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: queries are refused at once
    return port


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    e = Edge(tmp_path_factory.mktemp("verify")).start(dns=True)
    listen(e)
    yield e
    e.stop()




# ---- a healthy edge passes -------------------------------------------------

def test_healthy_example_passes_every_check(edge):
    p = verify(edge)
    assert p.returncode == 0, p.stdout + p.stderr
    assert not lines(p, "\u2717")
    ok = lines(p, "\u2713")
    for host in ["codex", "api", "auth"]:
        assert any(l.startswith(f"\u2713 dns {host}.revelations.studio: A 127.0.0.1") for l in ok)
    for dep in ["codex-web-production", "stripe-webhook-handler-production",
                "auth-worker-production"]:
        assert any(l.startswith("\u2713 route ") and f"-> {dep}:" in l for l in ok), dep
        assert any(l.startswith("\u2713 health ") and f"({dep})" in l for l in ok), dep
        assert any(l.startswith(f"\u2713 vars {dep}:") for l in ok), dep
    # the tenant wildcard is tested with the static tenant
    assert any("({tenant}.revelations.studio) -> codex-web-production" in l for l in ok)
    assert any(l.startswith("\u2713 webhook stripe https://api.revelations.studio/webhooks/stripe/"
                            "payments -> stripe-webhook-handler-production") for l in ok)
    assert p.stdout.rstrip().endswith(f"verify production: {len(ok)} passed, 0 failed, 0 skipped")


def test_staging_passes(edge):
    p = verify(edge, "--env", "staging")
    assert p.returncode == 0, p.stdout
    assert "route codex-staging.revelations.studio/* -> codex-web-staging" in p.stdout
    assert "production" not in p.stdout.replace("verify production", "")


def test_json_document(edge):
    p = verify(edge, "--json")
    assert p.returncode == 0, p.stdout
    doc = json.loads(p.stdout)
    assert doc["failed"] == 0 and doc["passed"] == len(doc["checks"]) > 10
    for c in doc["checks"]:
        assert set(c) >= {"name", "ok", "detail"}
        assert c["ok"] is True and isinstance(c["detail"], str) and c["name"]
    names = [c["name"] for c in doc["checks"]]
    assert "dns api.revelations.studio" in names
    assert "health auth-worker (auth-worker-production)" in names


# ---- the proof on the edge ------------------------------------------------

def test_edge_adds_the_proof_only_when_asked(edge):
    nonce = "00112233445566778899aabbccddeeff"
    secret = bytes.fromhex(edge.secret("codex-web-production").split(",")[0])
    status, h, body = request(edge, "Codex.Revelations.Studio:8080", "/echo?x=1",
                              headers={"X-Switchboard-Verify": nonce})
    assert status == 200 and h["x-switchboard-deployment"] == "codex-web-production"
    canonical = (f"switchboard-verify-v1\n{nonce}\ncodex-web-production\n"
                 "codex.revelations.studio\n/echo\n").encode()
    want = "v1=" + hmac.new(secret, canonical, hashlib.sha256).hexdigest()
    assert h["x-switchboard-verify-signature"] == want
    # the header itself never reaches the service
    assert "x-switchboard-verify" not in json.loads(body)["headers"]
    # no header, or an unusable nonce: nothing added, nothing computed
    for extra in ({}, {"X-Switchboard-Verify": "short"}, {"X-Switchboard-Verify": "zz" * 10}):
        status, h, _ = request(edge, "codex.revelations.studio", "/echo", headers=extra)
        assert status == 200
        assert "x-switchboard-verify-signature" not in h and "x-switchboard-deployment" not in h
    # the edge's own answers carry no proof: nothing was relayed
    status, h, _ = request(edge, "nope.revelations.studio", "/",
                           headers={"X-Switchboard-Verify": nonce})
    assert status == 404 and "x-switchboard-verify-signature" not in h


def test_upstream_cannot_inject_a_proof(fresh, tmp_path):
    """A service that sends proof headers itself: only the edge's reach the client."""
    class Forger(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("X-Switchboard-Deployment", "auth-worker-production")
            self.send_header("X-Switchboard-Verify-Signature", "v1=" + "ab" * 32)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Forger)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        e = fresh(upstreams={("codex-web", "production"): f"http://127.0.0.1:{srv.server_port}"})
        e.start(dns=True)
        listen(e)
        s = e.connect()
        s.sendall(b"GET / HTTP/1.1\r\nHost: codex.revelations.studio\r\nConnection: close\r\n"
                  b"X-Switchboard-Verify: 0123456789abcdef\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        head = data.split(b"\r\n\r\n")[0].decode().lower()
        assert head.count("x-switchboard-deployment:") == 1
        assert head.count("x-switchboard-verify-signature:") == 1
        assert "x-switchboard-deployment: codex-web-production" in head
        p = verify(e)
        # the proof is the edge's, so every route passes; this upstream's
        # /health says "ok" in plain text, which is not healthy JSON
        assert p.returncode == 1, p.stdout
        assert lines(p, "\u2717") == ["\u2717 health codex-web (codex-web-production): "
                                      "codex.revelations.studio/health: unhealthy: HTTP 200, "
                                      "body is not a JSON object"], p.stdout
        assert len([l for l in lines(p, "\u2713") if l.startswith("\u2713 route ")]) == 4
    finally:
        srv.shutdown()
        srv.server_close()


# ---- failures ---------------------------------------------------------------

def test_upstream_down_fails_its_health_check(fresh):
    e = fresh().start(dns=True)
    listen(e)
    e.demos[("auth-worker", "production")].stop(sig=9)
    p = verify(e)
    assert p.returncode == 1, p.stdout
    bad = lines(p, "\u2717")
    assert any(l.startswith("\u2717 health auth-worker (auth-worker-production): "
                            "auth.revelations.studio/health") for l in bad), p.stdout
    assert any(l.startswith("\u2717 route auth.revelations.studio/* -> auth-worker-production")
               and "no deployment proof" in l and re.search(r"HTTP 50[23]", l) for l in bad)
    # the others are unaffected
    assert any(l.startswith("\u2713 health codex-web (codex-web-production)")
               for l in lines(p, "\u2713"))
    assert re.search(r"verify production: \d+ passed, 2 failed, 0 skipped", p.stdout)


def test_wrong_data_dir_fails_the_proof(edge, tmp_path):
    other = tmp_path / "other"
    subprocess.run([SB, "secret", "-c", str(edge.dir), "--data", str(other),
                    "codex-web-production"], check=True, capture_output=True)
    p = verify(edge, "--data", str(other))
    assert p.returncode == 1, p.stdout
    bad = lines(p, "\u2717")
    assert len([l for l in bad if l.startswith("\u2717 route ")]) == 4
    assert all("does not verify" in l for l in bad if l.startswith("\u2717 route "))
    assert any(l.startswith("\u2717 webhook stripe") for l in bad)
    assert any(l.startswith("\u2717 health ") for l in bad)
    # DNS and vars do not depend on the secret
    assert any(l.startswith("\u2713 dns ") for l in lines(p, "\u2713"))
    assert any(l.startswith("\u2713 vars ") for l in lines(p, "\u2713"))


def test_data_dir_without_a_key_is_a_load_error(edge, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    p = verify(edge, "--data", str(empty))
    assert p.returncode == 2 and "no secret.key" in p.stderr
    assert not (empty / "secret.key").exists()  # verify creates nothing


class FakeEdge:
    """An HTTP server standing in for the edge: answers every request with
    the headers proof(nonce, host, path) returns."""

    def __init__(self, proof):
        class H(BaseHTTPRequestHandler):
            def handle_one(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                nonce = self.headers.get("X-Switchboard-Verify", "")
                host = self.headers["Host"]
                self.send_response(200)
                for k, v in proof(nonce, host, self.path).items():
                    self.send_header(k, v)
                body = b'{"status":"healthy"}'
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = handle_one

            def log_message(self, *a):
                pass
        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def sign(secret_hex, nonce, dep, host, path):
    c = f"switchboard-verify-v1\n{nonce}\n{dep}\n{host}\n{path.split('?')[0]}\n".encode()
    return "v1=" + hmac.new(bytes.fromhex(secret_hex), c, hashlib.sha256).hexdigest()


def test_forged_or_absent_proof_fails(edge):
    routed = {"codex.revelations.studio": "codex-web-production",
              "api.revelations.studio": "stripe-webhook-handler-production",
              "auth.revelations.studio": "auth-worker-production"}
    fakes = {
        # right deployment names, signatures made up
        "forged": lambda n, h, p: {"X-Switchboard-Deployment": routed[h],
                                   "X-Switchboard-Verify-Signature": "v1=" + "7" * 64},
        # a plain web server: no proof at all
        "absent": lambda n, h, p: {},
    }
    for kind, fn in fakes.items():
        fake = FakeEdge(fn)
        try:
            listen(edge, http_port=fake.port)
            p = verify(edge)
        finally:
            fake.close()
            listen(edge)
        assert p.returncode == 1, (kind, p.stdout)
        bad = lines(p, "\u2717")
        routes = [l for l in bad if l.startswith("\u2717 route ")]
        assert len(routes) == 4, (kind, p.stdout)
        assert all(("does not verify" if kind == "forged" else "no deployment proof") in l
                   for l in routes), p.stdout
        assert any(l.startswith("\u2717 health ") for l in bad)
        assert any(l.startswith("\u2717 webhook stripe") for l in bad)


def test_route_to_the_wrong_deployment_fails(edge):
    """A correctly signed proof, but of another deployment: misrouted."""
    secret = edge.secret("auth-worker-production").split(",")[0]
    fake = FakeEdge(lambda n, h, p: {
        "X-Switchboard-Deployment": "auth-worker-production",
        "X-Switchboard-Verify-Signature": sign(secret, n, "auth-worker-production", h, p)})
    try:
        listen(edge, http_port=fake.port)
        p = verify(edge)
    finally:
        fake.close()
        listen(edge)
    assert p.returncode == 1
    assert "\u2713 route auth.revelations.studio/* -> auth-worker-production" in p.stdout
    assert ("\u2717 route api.revelations.studio/* -> stripe-webhook-handler-production: reached "
            "auth-worker-production, not stripe-webhook-handler-production") in p.stdout
    assert re.search(r"\u2717 webhook stripe \S+ -> stripe-webhook-handler-production: reached "
                     r"auth-worker-production", p.stdout)


def test_dns_off_fails(edge):
    try:
        listen(edge, dns_port=free_udp_port())
        p = verify(edge)
        assert p.returncode == 1
        bad = [l for l in lines(p, "\u2717") if l.startswith("\u2717 dns ")]
        assert len(bad) == 3 and all("no DNS answer" in l for l in bad), p.stdout
        listen(edge, dns_port=None)  # no [listen] dns at all
        p = verify(edge)
        assert p.returncode == 1
        bad = [l for l in lines(p, "\u2717") if l.startswith("\u2717 dns ")]
        assert len(bad) == 3 and all("no [listen] dns" in l for l in bad), p.stdout
        # everything else still passes
        assert len(lines(p, "\u2717")) == 3
    finally:
        listen(edge)


def test_dns_answering_other_addresses_fails(edge):
    try:
        # verify now expects 127.0.0.2 and ::1; the edge still serves 127.0.0.1 only
        listen(edge, edit=lambda t: t.replace('addresses = ["127.0.0.1"]',
                                               'addresses = ["127.0.0.2", "::1"]'))
        p = verify(edge)
    finally:
        listen(edge)
    assert p.returncode == 1
    bad = [l for l in lines(p, "\u2717") if l.startswith("\u2717 dns ")]
    assert len(bad) == 3, p.stdout
    assert all("A 127.0.0.1 (expected 127.0.0.2); AAAA none (expected ::1)" in l for l in bad)


def no_static(t):
    return t.replace('static = ["codex"]', "static = []")


def test_tenant_wildcard_without_a_tenant_is_skipped(edge):
    try:
        listen(edge, edit=no_static)
        p = verify(edge, "--json")
    finally:
        listen(edge)
    doc = json.loads(p.stdout)
    tenant = [c for c in doc["checks"] if "{tenant}" in c["name"]]
    assert len(tenant) == 1 and tenant[0]["ok"] is None and tenant[0]["skipped"] is True
    assert "no registered tenant" in tenant[0]["detail"]
    # codex.revelations.studio is the tenant-aware service's host too: without
    # the tenant it is not routed, which the vars check reports (check.c)
    assert p.returncode == 1 and doc["failed"] > 0
    assert doc["skipped"] == len([c for c in doc["checks"] if c["skipped"]])
    assert any(c["name"] == "vars auth-worker-production" and c["ok"] is False
               and "not routed" in c["detail"] for c in doc["checks"])


def test_stored_tenants_are_used(fresh):
    """Tenants registered with `switchboard tenants add` count as the edge's."""
    e = fresh().start(dns=True)
    listen(e, edit=no_static)
    for slug in ("codex", "acme"):
        subprocess.run([SB, "tenants", "add", slug, "-c", str(e.dir)], check=True,
                       capture_output=True)
    # the edge polls its registry: wait until it serves the new tenant
    deadline = time.monotonic() + 10
    while request(e, "acme.revelations.studio", "/health")[0] != 200:
        assert time.monotonic() < deadline, "the edge never served the stored tenant"
        time.sleep(0.05)
    p = verify(e)
    assert p.returncode == 0, p.stdout
    assert re.search(r"\u2713 route (acme|codex)\.revelations\.studio/\* "
                     r"\(\{tenant\}\.revelations\.studio\) -> codex-web-production", p.stdout)
    assert "0 skipped" in p.stdout


def test_a_suspended_tenant_on_a_route_host_is_said_so(fresh):
    """codex.revelations.studio/* is a route of its own, not the {tenant}
    wildcard: with codex suspended, its skip said the tenant standing for
    {tenant} was suspended."""
    e = fresh().start(dns=True)
    listen(e)
    for args in (("add", "acme"), ("suspend", "codex")):
        subprocess.run([SB, "tenants", *args, "-c", str(e.dir)], check=True,
                       capture_output=True)
    doc = json.loads(verify(e, "--json").stdout)
    codex = [c for c in doc["checks"] if c["name"].startswith("route codex.revelations.studio/*")]
    assert len(codex) == 1 and codex[0]["skipped"], codex
    assert codex[0]["detail"] == "its host's tenant is suspended (the edge answers 403)", codex
    wild = [c for c in doc["checks"] if "({tenant}" in c["name"]]
    assert wild and wild[0]["ok"] is True, wild  # acme stands for {tenant}


def test_preview_declared_live(fresh):
    pr = 7
    ups = {}
    e = fresh(extra_toml=f"\n[previews]\nprs = [{pr}]\n")
    for svc, _, _ in SERVICES:
        d = start_demo(svc, "preview", e.secret(f"{svc}-preview-{pr}"))
        e.procs.append(d)
        ups[(svc, "preview")] = d.url
    ups.update({k: d.url for k, d in e.demos.items()})
    e.write_decl(ups, {"health_interval_ms": 200, "health_timeout_ms": 500},
                 f"\n[previews]\nprs = [{pr}]\n")
    e.start(dns=True)
    listen(e)
    p = verify(e, "--env", "preview", "--pr", str(pr))
    assert p.returncode == 0, p.stdout + p.stderr
    for label, svc in [("codex", "codex-web"), ("api", "stripe-webhook-handler"),
                       ("auth", "auth-worker")]:
        host = f"{label}-preview-{pr}.revelations.studio"
        assert f"\u2713 dns {host}: A 127.0.0.1" in p.stdout
        assert f"\u2713 route {host}/* -> {svc}-preview-{pr}" in p.stdout
        assert f"\u2713 health {svc} ({svc}-preview-{pr})" in p.stdout
        assert f"\u2713 vars {svc}-preview-{pr}" in p.stdout
    # another PR is routed by the naming rule to the same upstreams, but its
    # deployments differ: the proof names those, and verify agrees
    p = verify(e, "--env", "preview", "--pr", "8")
    assert "route codex-preview-8.revelations.studio/* -> codex-web-preview-8" in p.stdout


@pytest.mark.parametrize("args", [["--env", "preview"], ["--env", "staging", "--pr", "3"],
                                  ["--env", "qa"], ["--pr", "0"], ["extra"]])
def test_usage_errors(edge, args):
    p = verify(edge, *args)
    assert p.returncode == 2 and p.stdout == "", (args, p.stdout, p.stderr)


def test_preview_created_live(fresh):
    """verify --pr follows `switchboard preview create` and `delete`: it
    fails before the preview exists, passes once created, fails again once
    deleted (hosts gone from DNS and routing)."""
    pr = 123
    e = fresh()
    ups = {k: d.url for k, d in e.demos.items()}
    for svc, _, _ in SERVICES:
        d = start_demo(svc, "preview", e.secret(f"{svc}-preview-{pr}"))
        e.procs.append(d)
        ups[(svc, "preview")] = d.url
    e.write_decl(ups, {"health_interval_ms": 200, "health_timeout_ms": 500})
    e.start(dns=True)
    listen(e)
    p = verify(e, "--env", "preview", "--pr", str(pr))
    assert p.returncode == 1 and "\u2717 dns codex-preview-123.revelations.studio" in p.stdout
    subprocess.run([SB, "preview", "create", "-c", str(e.dir), "--pr", str(pr)], check=True,
                   capture_output=True)
    p = verify(e, "--env", "preview", "--pr", str(pr))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "\u2713 route codex-preview-123.revelations.studio/* -> codex-web-preview-123" in p.stdout
    subprocess.run([SB, "preview", "delete", "-c", str(e.dir), "--pr", str(pr)], check=True,
                   capture_output=True)
    p = verify(e, "--env", "preview", "--pr", str(pr))
    assert p.returncode == 1 and "\u2717 dns codex-preview-123.revelations.studio" in p.stdout


def test_a_webhook_url_with_a_trailing_dot_and_a_query_verifies(edge):
    """The edge signs the host as it routes it (no trailing dot) and the
    target as sent (its query included): verify used to compare its proof
    with the host as written, a false alarm, and dropped the query."""
    extra = ('\n[[webhook]]\nprovider = "billing"\n'
             'url = "https://api.revelations.studio./webhooks/billing?account=acct_1"\n'
             'service = "stripe-webhook-handler"\n')
    try:
        listen(edge, edit=lambda t: t + extra)
        p = verify(edge)
    finally:
        listen(edge)
    assert p.returncode == 0, p.stdout
    assert ("\u2713 webhook billing https://api.revelations.studio./webhooks/billing?account=acct_1"
            " -> stripe-webhook-handler-production") in p.stdout, p.stdout


def test_an_upstream_that_is_another_service_fails_its_health_check(fresh):
    """The proof shows where the edge sent the request, not which process
    answered: auth-worker's upstream pointing at codex-web's process used to
    pass every check. The plan's /health names its worker and environment."""
    e = fresh()
    ups = {k: v.url for k, v in e.demos.items()}
    ups[("auth-worker", "production")] = e.demos[("codex-web", "production")].url
    ups[("codex-web", "staging")] = e.demos[("codex-web", "production")].url
    e.write_decl(ups, {"health_interval_ms": 200, "health_timeout_ms": 500})
    e.start(dns=True)
    listen(e)
    p = verify(e)
    assert p.returncode == 1, p.stdout
    assert ('\u2717 health auth-worker (auth-worker-production): auth.revelations.studio/health: '
            'unhealthy: HTTP 200, answered by worker "codex-web", not auth-worker') in p.stdout, \
        p.stdout
    assert "\u2713 health codex-web (codex-web-production)" in p.stdout
    p = verify(e, "--env", "staging")
    assert p.returncode == 1, p.stdout
    assert 'answered by environment "production", not staging' in p.stdout, p.stdout


def test_an_edge_that_trickles_its_answer_is_timed_out(edge):
    """The 5 s are for the whole answer: an edge that sends a byte every
    second used to hold verify for ever (each read had its own 5 s)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=trickle, args=(c,), daemon=True).start()

    def trickle(c):
        with c:
            try:
                head = c.recv(65536)
                if b"GET /health" not in head or b"Host: auth." not in head:
                    return  # closed at once: only auth's /health is slow
                c.sendall(b"HTTP/1.1 200 OK\r\n")
                while not stop.wait(1):
                    c.sendall(b"X")
            except OSError:
                pass
    threading.Thread(target=serve, daemon=True).start()
    try:
        listen(edge, http_port=srv.getsockname()[1])
        t0 = time.monotonic()
        p = subprocess.run([SB, "verify", "-c", str(edge.dir)], capture_output=True, text=True,
                           timeout=60)
        took = time.monotonic() - t0
    finally:
        stop.set()
        srv.close()
        listen(edge)
    assert p.returncode == 1, p.stdout
    assert re.search(r"health auth-worker \(auth-worker-production\): auth\.revelations\.studio/"
                     r"health: no answer from the edge at \S+: timed out", p.stdout), p.stdout
    # one request of 5 s at most, however long the edge trickles
    assert took < 20, took


def test_data_option_is_where_the_live_state_is_read(fresh, tmp_path):
    """verify --data DIR read keys and tenants from DIR but deployments and
    previews from the declaration's data_dir: a deployment deleted in DIR
    was still expected, and failed."""
    e = fresh()
    other = tmp_path / "other-data"
    # the declaration's secrets are the ones the demo services know
    shutil.copytree(e.data, other)
    subprocess.run([SB, "delete", "auth-worker-staging", "-c", str(e.dir), "--data", str(other)],
                   check=True, capture_output=True, text=True)
    e.start(dns=True, args=("--data", other))
    listen(e)
    p = verify(e, "--data", str(other), "--env", "staging")
    assert "\u2713 route api-staging.revelations.studio/*" in p.stdout, p.stdout
    # the deleted deployment is not expected on the edge (its DNS, route and
    # health used to fail); what still points at it is reported, rightly
    for l in lines(p, "\u2717"):
        assert l.startswith("\u2717 vars ") and "auth-staging" in l, l


def test_a_webhook_routed_to_another_environment_fails(edge):
    """A staging endpoint that production serves: verify said "not routed:
    ?" (and a preview one was skipped); it is routed, to the wrong place."""
    extra = ('\n[[webhook]]\nprovider = "billing"\nenvironment = "staging"\n'
             'url = "https://api.revelations.studio/webhooks/billing"\n')
    try:
        listen(edge, edit=lambda t: t + extra)
        p = verify(edge, "--env", "staging")
        c = subprocess.run([SB, "check", "-c", str(edge.dir)], capture_output=True, text=True)
    finally:
        listen(edge)
    assert p.returncode == 1, p.stdout
    assert ("\u2717 webhook billing https://api.revelations.studio/webhooks/billing: reaches "
            "stripe-webhook-handler-production (production), not a staging deployment"
            ) in p.stdout, p.stdout
    assert "reaches stripe-webhook-handler-production (production), not a staging deployment" \
        in c.stdout + c.stderr, c.stdout + c.stderr
