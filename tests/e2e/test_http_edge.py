"""`switchboard serve` end to end: real binary, real demo services, raw sockets."""
import json
import os
import signal
import socket
import subprocess
import threading
import time
import base64
import hashlib

import pytest

from edge import (Edge, Recorder, SB, Scripted, closed_by_peer, closed_port, frozen,
                  listen_local, preload_env, raw, read_response, read_until_close, request,
                  shim, start_demo, wait_for)

import sys
sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    e = Edge(tmp_path_factory.mktemp("edge")).start()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """codex-web production is a Recorder: what reaches it is visible."""
    rec = Recorder()
    e = Edge(tmp_path_factory.mktemp("rec"), upstreams={("codex-web", "production"): rec.url})
    e.procs.append(rec)
    e.rec = rec
    e.start()
    yield e
    e.stop()




def echo(edge, host, path="/echo", **kw):
    status, hdrs, body = request(edge, host, path, **kw)
    assert status == 200, (status, body)
    return json.loads(body), hdrs


# ---- routing -------------------------------------------------------------

def test_routes_reach_their_deployments(edge):
    for host, worker, env in [
        ("codex.revelations.studio", "codex-web", "production"),
        ("api.revelations.studio", "stripe-webhook-handler", "production"),
        ("auth.revelations.studio", "auth-worker", "production"),
        ("codex-staging.revelations.studio", "codex-web", "staging"),
        ("api-staging.revelations.studio", "stripe-webhook-handler", "staging"),
        ("AUTH-staging.Revelations.Studio:8080", "auth-worker", "staging"),
    ]:
        e, _ = echo(edge, host)
        assert (e["worker"], e["environment"]) == (worker, env), host
        assert e["headers"]["x-switchboard-environment"] == env
        assert e["deployment"] == f"{worker}-{env}"
        assert e["signature"] == "valid", e


def test_health_through_the_edge(edge):
    status, _, body = request(edge, "codex.revelations.studio", "/health")
    h = json.loads(body)
    assert status == 200 and h["status"] == "healthy" and h["worker"] == "codex-web"


def test_webhook_endpoint_is_routed(edge):
    payload = b'{"type":"payment_intent.succeeded"}'
    e, _ = echo(edge, "api.revelations.studio", "/webhooks/stripe/payments", method="POST",
                body=payload)
    assert e["worker"] == "stripe-webhook-handler" and e["body_bytes"] == len(payload)


def test_unknown_hosts_get_404_and_are_never_forwarded(recorded):
    edge = recorded
    assert request(edge, "codex.revelations.studio", "/x")[0] == 200
    before = edge.rec.count()
    assert before >= 1
    for host in ["nope.revelations.studio", "example.com", "www.revelations.studio",
                 "a.b.revelations.studio"]:
        status, hdrs, body = request(edge, host, "/x", headers={"Accept": "application/json"})
        assert status == 404, host
        j = json.loads(body)
        assert j["status"] == 404 and j["request_id"] == hdrs["x-request-id"]
    # a preview nobody created (`switchboard preview create`) is not routed
    status, _, body = request(edge, "codex-preview-12.revelations.studio", "/x")
    assert status == 404 and json.loads(body)["status"] == 404
    # and says so (it said "a slug cannot have a preview suffix")
    assert "this preview has not been created" in json.loads(body)["message"], body
    # nothing reached a service
    assert edge.rec.count() == before


def test_error_body_follows_accept(edge):
    status, hdrs, body = request(edge, "nope.revelations.studio", headers={"Accept": "text/html"})
    assert status == 404 and hdrs["content-type"].startswith("text/html")
    assert hdrs["x-request-id"].encode() in body
    status, hdrs, body = request(edge, "nope.revelations.studio", headers={"Accept": "*/*"})
    assert hdrs["content-type"] == "application/json" and json.loads(body)["error"] == "not_found"
    # a client that takes both gets JSON (API clients often list text/html too)
    status, hdrs, body = request(edge, "nope.revelations.studio",
                                 headers={"Accept": "text/html, application/json"})
    assert status == 404 and hdrs["content-type"] == "application/json"
    assert json.loads(body)["request_id"] == hdrs["x-request-id"]


def test_edge_health_endpoint_on_every_host(edge):
    for host in ["codex.revelations.studio", "whatever.example"]:
        status, _, body = request(edge, host, "/.well-known/switchboard/health")
        h = json.loads(body)
        assert status == 200 and h["status"] == "ok" and h["routes"] == 7
        assert h["version"] and h["uptime_s"] >= 0


def test_edge_health_fields_follow_the_server(fresh):
    e = fresh(threads=3).start()

    def health():
        st, _, body = request(e, "codex.revelations.studio", "/.well-known/switchboard/health")
        assert st == 200
        return json.loads(body)
    h0 = health()
    assert h0["threads"] == 3 and h0["routes"] == 7
    assert all(type(h0[k]) is int for k in ("routes", "tenants", "generation", "uptime_s"))
    subprocess.run([SB, "tenants", "add", "healthy", "-c", e.dir, "--data", e.data],
                   check=True, capture_output=True)
    wait_for(lambda: health()["tenants"] == h0["tenants"] + 1, timeout=1.5)
    subprocess.run([SB, "reload", "-c", e.dir], check=True, capture_output=True)
    wait_for(lambda: health()["generation"] > h0["generation"], timeout=2)
    time.sleep(max(0.0, 1.1 - h0["uptime_s"]))
    wait_for(lambda: health()["uptime_s"] >= 1, timeout=2)


def test_unfinished_head_over_the_limit_is_431_at_once(fresh):
    # the limit applies to what has arrived, not only to complete heads: no
    # waiting for the header timeout while the buffer grows
    e = fresh(http={"max_header_bytes": 2048, "header_timeout_ms": 5000}).start()
    s = e.connect()
    s.sendall(b"GET / HTTP/1.1\r\nHost: codex.revelations.studio\r\nX-Big: " + b"a" * 8000)
    out = read_until_close(s, timeout=4)  # under the 5 s header timeout
    assert out.startswith(b"HTTP/1.1 431 "), out[:100]


@pytest.mark.parametrize("fields,status", [(999, 200), (1001, 431)])
def test_a_request_head_has_at_most_1000_fields(edge, fields, status):
    # each field costs the request a struct whatever its size: 4,000 empty
    # ones fitted in the default 16 KiB (Host is one of the 1,000); the
    # edge's own endpoint, as a demo service has a smaller limit of its own
    s = edge.connect()
    s.sendall(b"GET /.well-known/switchboard/health HTTP/1.1\r\n"
              b"Host: codex.revelations.studio\r\n" + b"a:\r\n" * (fields - 1) +
              b"Connection: close\r\n\r\n")
    out = read_until_close(s)
    assert out.startswith(b"HTTP/1.1 %d " % status), out[:100]


# ---- headers ---------------------------------------------------------------

def test_spoofed_headers_never_reach_the_upstream(edge):
    e, _ = echo(edge, "codex.revelations.studio", headers={
        "X-Tenant-Slug": "evil", "X-Tenant-Config": "{}", "X-Switchboard-Deployment": "x",
        "X-Switchboard-Environment": "production-evil", "X-Switchboard-Signature": "t=1,v1=00",
        "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https", "Forwarded": "for=6.6.6.6"})
    h = e["headers"]
    assert h["x-tenant-slug"] == "codex"
    assert "x-tenant-config" not in h
    assert h["x-switchboard-deployment"] == "codex-web-production"
    assert h["x-switchboard-environment"] == "production"
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-host"] == "codex.revelations.studio"
    assert h["x-forwarded-proto"] == "http"
    assert "forwarded" not in h
    assert e["signature"] == "valid"


def send_recorded(edge, data, marker):
    """Send data as one request, expect the Recorder's 200 through the edge,
    and return recorded_head(edge, marker)."""
    s = edge.connect()
    s.sendall(data)
    status, _, _, _ = read_response(s)
    s.close()
    assert status == 200
    return recorded_head(edge, marker)


def recorded_head(edge, marker):
    """The head of the one request the Recorder got with marker in it."""
    with edge.rec.lock:
        got = [r for r in edge.rec.received if marker in r]
    assert len(got) == 1, got
    head = got[0].split(b"\r\n\r\n", 1)[0].decode()
    names = [l.split(":", 1)[0].lower() for l in head.split("\r\n")[1:]]
    return head, names


def test_hop_by_hop_request_headers_are_not_forwarded(recorded):
    # the fixed hop-by-hop set and anything a Connection header names (any
    # case, several Connection headers, lists with spaces) stay at the edge
    head, names = send_recorded(recorded, (
        b"GET /hop-marker HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
        b"Connection: X-Secret ,  keep-alive\r\nX-Secret: 1\r\n"
        b"connection: X-OTHER-secret\r\nx-other-secret: 2\r\n"
        b"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
        b"Trailer: X-T\r\nUpgrade-Insecure-Requests: 1\r\nX-Kept: yes\r\n"
        b"X-Secretive: kept\r\n\r\n"
    ), b"/hop-marker")
    for gone in ["connection", "x-secret", "x-other-secret", "keep-alive", "proxy-connection",
                 "te", "trailer"]:
        assert gone not in names, (gone, head)
    # names that only start like a hop-by-hop one are ordinary headers
    for kept in ["x-kept", "x-secretive", "upgrade-insecure-requests"]:
        assert kept in names, (kept, head)
    assert names.count("host") == 1


def test_hop_by_hop_response_headers_are_not_relayed(recorded):
    rec = recorded.rec
    with rec.lock:
        rec.response = (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                        b"Connection: X-Up-Secret, keep-alive\r\nX-Up-Secret: 1\r\n"
                        b"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
                        b"X-Up-Kept: yes\r\nX-Request-Id: from-upstream\r\n\r\nok\n")
    try:
        s = recorded.connect()
        s.sendall(b"GET /resp-hop HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n")
        buf = b""
        while b"ok\n" not in buf.split(b"\r\n\r\n", 1)[-1] or b"\r\n\r\n" not in buf:
            b = s.recv(65536)
            assert b, buf
            buf += b
        s.close()
    finally:
        with rec.lock:
            rec.response = rec.OK
    head = buf.split(b"\r\n\r\n", 1)[0].decode()
    names = [l.split(":", 1)[0].lower() for l in head.split("\r\n")[1:]]
    assert head.startswith("HTTP/1.1 200")
    for gone in ["x-up-secret", "keep-alive", "proxy-connection"]:
        assert gone not in names, (gone, head)
    assert "x-up-kept" in names
    # the upstream's request id goes back as it is, not twice
    assert names.count("x-request-id") == 1 and "X-Request-Id: from-upstream" in head
    # the edge's own Connection header, once
    assert names.count("connection") == 1 and "Connection: keep-alive" in head


def test_upgrade_header_only_with_an_upgrade(recorded):
    # Upgrade is hop-by-hop: without "Connection: upgrade" it stays at the
    # edge; a real upgrade goes up with the edge's own Connection/Upgrade
    # pair, each once
    head, names = send_recorded(recorded, (
        b"GET /h2c-marker HTTP/1.1\r\nHost: codex.revelations.studio\r\nUpgrade: h2c\r\n\r\n"
    ), b"/h2c-marker")
    assert "upgrade" not in names and "connection" not in names, head
    head, names = send_recorded(recorded, (
        b"GET /ws-marker HTTP/1.1\r\nHost: codex.revelations.studio\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    ), b"/ws-marker")
    assert names.count("upgrade") == 1 and names.count("connection") == 1, head
    assert "Upgrade: websocket" in head and "Connection: Upgrade" in head


def test_upstream_head_split_across_reads_is_relayed_intact(recorded):
    # the edge keeps the response's header names and values as pointers into
    # its read buffer while the head is complete in one read, and copies
    # them when it is not: cut inside names, values and the final CRLF
    resp = (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Long-Header-Name: first-value\r\n"
            b"X-Second: " + b"v" * 300 + b"\r\nX-Empty:\r\nX-Third: 3\r\n\r\nok\n")
    cuts = [5, 20, 35, 41, 50, 120, 380, len(resp) - 6, len(resp) - 5, len(resp) - 4]
    pieces = [resp[a:b] for a, b in zip([0] + cuts, cuts + [len(resp)])]
    rec = recorded.rec
    for answer in (pieces, [bytes([x]) for x in resp]):
        with rec.lock:
            rec.response = answer
        try:
            status, hdrs, body = request(recorded, "codex.revelations.studio", "/split-resp")
        finally:
            with rec.lock:
                rec.response = rec.OK
        assert status == 200 and body == b"ok\n"
        assert hdrs["x-long-header-name"] == "first-value"
        assert hdrs["x-second"] == "v" * 300
        assert hdrs["x-empty"] == "" and hdrs["x-third"] == "3"


def test_request_trailers_never_become_headers(recorded):
    # trailer fields of a chunked request are dropped: none of them may reach
    # the upstream as a header (spoofed tenant or deployment, a second
    # framing header, a forged X-Forwarded-For)
    assert request(recorded, "codex.revelations.studio", "/warm-pool")[0] == 200
    head, names = send_recorded(recorded, (
        b"POST /trailer-marker HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n"
        b"X-Switchboard-Deployment: forged\r\nX-Tenant-Slug: evil\r\nContent-Length: 40\r\n"
        b"X-Forwarded-For: 6.6.6.6\r\nX-Trailer-Only: t\r\n\r\n"
    ), b"/trailer-marker")
    for bad in ["forged", "evil", "6.6.6.6", "X-Trailer-Only", "Content-Length"]:
        assert bad not in head, (bad, head)
    assert names.count("x-switchboard-deployment") == 1
    assert names.count("x-tenant-slug") == 1


def test_trailers_with_pipelined_bytes_while_connecting(fresh):
    # a chunked request with a trailer, then more than the 4 KiB first read
    # buffer of pipelined requests, while a fresh upstream connection is
    # still being made: the buffer grows under the waiting request (the
    # ASan build of make check fails on any use of the old buffer)
    rec = Recorder()
    e = fresh(upstreams={("codex-web", "production"): rec.url}, threads=1)
    e.procs.append(rec)
    e.start()
    first = (b"POST /first HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-Trailer-Name: " + b"t" * 200 +
             b"\r\n\r\n")
    second = b"GET /second HTTP/1.1\r\nHost: codex.revelations.studio\r\nX-Pad: " + b"p" * 3900 + b"\r\n\r\n"
    third = b"GET /third HTTP/1.1\r\nHost: codex.revelations.studio\r\nX-Pad: " + b"q" * 6000 + b"\r\n\r\n"
    s = e.connect()
    s.sendall(first + second + third)
    rest = b""  # the three responses may arrive in one read
    for _ in range(3):
        status, _, body, rest = read_response(s, pending=rest)
        assert status == 200 and body == b"ok\n"
    s.close()
    with rec.lock:
        got = [r.split(b"\r\n", 1)[0] for r in rec.received]
    assert got == [b"POST /first HTTP/1.1", b"GET /second HTTP/1.1", b"GET /third HTTP/1.1"], got
    assert not any(b"X-Trailer-Name" in r for r in rec.received)


def test_trusted_proxy_keeps_forwarded_headers(fresh):
    e = fresh(http={"trusted_proxies": ["127.0.0.0/8"]}).start()
    body, _ = echo(e, "codex.revelations.studio", headers={"X-Forwarded-For": "203.0.113.9",
                                                          "X-Forwarded-Proto": "https"})
    assert body["headers"]["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert body["headers"]["x-forwarded-proto"] == "https"
    assert body["signature"] == "valid"
    # a list in two fields is one list: joined in order, none of it lost
    s = e.connect()
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
              b"X-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For: 203.0.113.9\r\n"
              b"Connection: close\r\n\r\n")
    st, _, raw_body, _ = read_response(s)
    s.close()
    body = json.loads(raw_body)
    assert st == 200
    assert body["headers"]["x-forwarded-for"] == "198.51.100.1, 203.0.113.9, 127.0.0.1"
    assert body["signature"] == "valid"


@pytest.mark.parametrize("sent,forwarded", [
    ("https", "https"), ("HTTPS", "https"), (" https ", "https"), ("http", "http"),
    # a chain of proxies: the first is the client's side
    ("https, http", "https"), ("http,https", "http"),
    # not a scheme: the edge's own, not passed on (and signed) as one
    ("", "http"), ("javascript", "http"), ("https x", "http"), ("httpsx", "http"),
])
def test_a_trusted_proxy_s_forwarded_proto_is_a_scheme_or_the_edge_s(fresh_trusted, sent,
                                                                      forwarded):
    s = fresh_trusted.connect()
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
              b"X-Forwarded-Proto: " + sent.encode() + b"\r\nConnection: close\r\n\r\n")
    st, _, raw_body, _ = read_response(s)
    s.close()
    body = json.loads(raw_body)
    assert st == 200
    assert body["headers"]["x-forwarded-proto"] == forwarded, body["headers"]
    assert body["signature"] == "valid"


@pytest.fixture(scope="module")
def fresh_trusted(tmp_path_factory):
    e = Edge(tmp_path_factory.mktemp("trusted"), http={"trusted_proxies": ["127.0.0.0/8"]})
    e.start()
    yield e
    e.stop()


@pytest.mark.parametrize("cidrs,trusted", [
    (["10.0.0.0/8"], False),            # another network: 127.0.0.1 is not trusted
    (["127.0.0.0/9"], True),            # a prefix that ends inside a byte
    (["127.128.0.0/9"], False),         # the other half of 127/8
    (["127.0.0.1/32"], True),
    (["127.0.0.2/31"], False),
    (["::1/128", "127.0.0.0/24"], True),
])
def test_trusted_proxies_match_by_prefix(fresh, cidrs, trusted):
    e = fresh(http={"trusted_proxies": cidrs}).start()
    body, _ = echo(e, "codex.revelations.studio", headers={"X-Forwarded-For": "6.6.6.6",
                                                          "X-Forwarded-Proto": "https"})
    h = body["headers"]
    if trusted:
        assert h["x-forwarded-for"] == "6.6.6.6, 127.0.0.1" and h["x-forwarded-proto"] == "https"
    else:
        assert h["x-forwarded-for"] == "127.0.0.1" and h["x-forwarded-proto"] == "http"
    assert body["signature"] == "valid"


def test_request_id_and_traceparent(edge):
    e, hdrs = echo(edge, "codex.revelations.studio", headers={"X-Request-Id": "abc-123.DEF"})
    assert e["headers"]["x-request-id"] == "abc-123.DEF" == hdrs["x-request-id"]
    e, hdrs = echo(edge, "codex.revelations.studio", headers={"X-Request-Id": "bad id;<>"})
    rid = e["headers"]["x-request-id"]
    assert rid != "bad id;<>" and len(rid) == 32 and rid == hdrs["x-request-id"]
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    e, _ = echo(edge, "codex.revelations.studio", headers={"traceparent": tp})
    assert e["headers"]["traceparent"] == tp
    e, _ = echo(edge, "codex.revelations.studio", headers={"traceparent": "00-000-bad"})
    new = e["headers"]["traceparent"]
    assert new != "00-000-bad" and len(new) == 55 and new.startswith("00-")


def valid_traceparent(tp):
    import re
    m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}", tp)
    return bool(m) and set(m.group(1)) != {"0"} and set(m.group(2)) != {"0"}


@pytest.mark.parametrize("tp", [
    "00-" + "0" * 32 + "-00f067aa0ba902b7-01",                     # all-zero trace id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",     # all-zero parent id
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",     # uppercase
    "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",     # not hex
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     # version ff
])
def test_invalid_traceparent_is_replaced(edge, tp):
    # W3C trace context: such a header is invalid; a new trace starts
    e, _ = echo(edge, "codex.revelations.studio", headers={"traceparent": tp})
    new = e["headers"]["traceparent"]
    assert new != tp and valid_traceparent(new), new


def test_request_id_length_limit(edge):
    # up to 128 characters a sane id is kept; longer ones are replaced
    for n, kept in ((128, True), (129, False), (4000, False)):
        rid = "a" * n
        e, hdrs = echo(edge, "codex.revelations.studio", headers={"X-Request-Id": rid})
        got = e["headers"]["x-request-id"]
        assert (got == rid) == kept and got == hdrs["x-request-id"], (n, got[:40])
        if not kept:
            assert len(got) == 32 and all(c in "0123456789abcdef" for c in got)


def test_signature_fails_when_tampered(edge):
    """The demo service verifies with the C verifier; a wrong secret fails."""
    d = start_demo("codex-web", "production", "00" * 32)
    try:
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Switchboard-Signature: t=1,v1=" +
                  b"ab" * 32 + b"\r\n\r\n")
        status, _, body, _ = read_response(s)
        assert json.loads(body)["signature"] == "invalid"
    finally:
        d.stop(9)


# ---- HTTP/1.1 behaviour ------------------------------------------------------

def test_keepalive_and_pipelining(edge):
    s = edge.connect()
    reqs = b"".join(b"GET /echo?n=%d HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n" % i
                    for i in range(5))
    s.sendall(reqs)
    rest = b""
    for i in range(5):
        # a response may already be buffered from the previous read
        status, hdrs, body, rest = read_pipelined(s, rest)
        assert status == 200 and json.loads(body)["query"] == f"n={i}"
    s.close()


def read_pipelined(s, buf):
    class Sock:
        def __init__(self, s, pre):
            self.s, self.pre = s, pre

        def recv(self, n):
            if self.pre:
                b, self.pre = self.pre, b""
                return b
            return self.s.recv(n)
    return read_response(Sock(s, buf))


def test_chunked_request_and_streamed_response(edge):
    s = edge.connect()
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    status, _, body, _ = read_response(s)
    e = json.loads(body)
    assert status == 200 and e["body_bytes"] == 11
    assert e["body_sha256"] == hashlib.sha256(b"hello world").hexdigest()
    s.sendall(b"GET /stream?chunks=4&ms=20 HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n")
    status, hdrs, body, _ = read_response(s)
    assert status == 200 and body == b"".join(b"chunk %d\n" % i for i in range(4))
    s.close()


def test_large_body_streams_both_ways(edge):
    big = os.urandom(3 << 20)
    e, _ = echo(edge, "codex.revelations.studio", method="PUT", body=big)
    assert e["body_bytes"] == len(big) and e["body_sha256"] == hashlib.sha256(big).hexdigest()
    status, _, body = request(edge, "codex.revelations.studio", f"/big?bytes={5 << 20}")
    assert status == 200 and len(body) == 5 << 20


def test_expect_100_continue(edge):
    s = edge.connect()
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\nContent-Length: 4\r\n"
              b"Expect: 100-continue\r\n\r\n")
    first = s.recv(100)
    assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    s.sendall(b"data")
    rest = first[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
    status, _, body, _ = read_pipelined(s, rest)
    e = json.loads(body)
    assert status == 200 and e["body_bytes"] == 4 and "expect" not in e["headers"]


def test_head_request(edge):
    status, hdrs, body = request(edge, "codex.revelations.studio", "/big?bytes=1000",
                                 method="HEAD")
    assert status == 200 and body == b"" and hdrs.get("content-length") == "1000"
    # the connection stays usable after a HEAD
    s = edge.connect()
    assert request(edge, "codex.revelations.studio", "/health", method="HEAD", sock=s)[0] == 200
    status, _, body = request(edge, "codex.revelations.studio", "/health", sock=s)
    assert status == 200 and json.loads(body)["status"] == "healthy"


def test_absolute_form_target(edge):
    s = edge.connect()
    s.sendall(b"GET http://auth.revelations.studio/echo?q=1 HTTP/1.1\r\n"
              b"Host: auth.revelations.studio\r\n\r\n")
    status, _, body, _ = read_response(s)
    e = json.loads(body)
    assert status == 200 and e["worker"] == "auth-worker" and e["path"] == "/echo"


def test_websocket_echo_through_the_edge(edge):
    s = edge.connect()
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: codex.revelations.studio\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(4096)
        assert b, f"closed before the 101: {buf!r}"
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101")
    # the upstream's Upgrade and Connection are hop-by-hop: the edge's own, once
    names = [l.split(b":", 1)[0].lower() for l in head.split(b"\r\n")[1:]]
    assert names.count(b"upgrade") == 1 and names.count(b"connection") == 1, head
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                           .encode()).digest())
    assert accept in head
    for msg in [b"hello", b"x" * 300, b"third"]:
        mask = os.urandom(4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(msg))
        if len(msg) < 126:
            frame = bytes([0x81, 0x80 | len(msg)]) + mask + payload
        else:
            frame = bytes([0x81, 0x80 | 126]) + len(msg).to_bytes(2, "big") + mask + payload
        s.sendall(frame)
        need = 2 + (2 if len(msg) >= 126 else 0) + len(msg)
        while len(rest) < need:
            b = s.recv(4096)
            assert b, "the tunnel closed"
            rest += b
        off = 4 if len(msg) >= 126 else 2
        assert rest[0] == 0x81 and rest[off:need] == msg
        rest = rest[need:]
    s.close()


# ---- smuggling: 400, connection closed, nothing forwarded -------------------

SMUGGLE = {
    "cl_and_te": b"POST /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\nContent-Length: 4\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate_cl": b"POST /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\nContent-Length: 4\r\n"
                    b"Content-Length: 5\r\n\r\nabcde",
    "invalid_cl": b"POST /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\nContent-Length: 4x\r\n\r\nabcd",
    "negative_cl": b"POST /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\nContent-Length: -1\r\n\r\n",
    "bad_chunk_size": b"POST /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "obs_fold": b"GET /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\nX-A: a\r\n b\r\n\r\n",
    "bare_lf": b"GET /echo HTTP/1.1\nHost: codex.revelations.studio\n\n",
    "bare_lf_in_header": b"GET /echo HTTP/1.1\r\nHost: codex.revelations.studio\nX: y\r\n\r\n",
    "space_before_colon": b"GET /echo HTTP/1.1\r\nHost : codex.revelations.studio\r\n\r\n",
    "two_hosts": b"GET /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
                 b"Host: api.revelations.studio\r\n\r\n",
    "absolute_form_mismatch": b"GET http://api.revelations.studio/echo HTTP/1.1\r\n"
                              b"Host: codex.revelations.studio\r\n\r\n",
    "te_not_chunked": b"POST /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
                      b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "no_host": b"GET /echo HTTP/1.1\r\n\r\n",
    "bare_cr_in_header": b"GET /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\nX: a\rb\r\n\r\n",
    "bare_cr_before_end": b"GET /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\r\n\r\n",
    # found by tests/e2e/test_http_fuzz.py
    "header_name_not_a_token": b"GET /echo HTTP/1.1\r\nGET http: //x/ HTTP/1.1\r\n"
                               b"Host: codex.revelations.studio\r\n\r\n",
    "empty_header_name": b"POST /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
                         b":Content-Length: 5\r\n\r\nhello",
    "empty_line_then_bad_head": b"\r\nPOST /echo HTTP/1.1\r\nHost: codex.revelations.studio"
                                b"\r\n:Content-Length: 5\r\n\r\nhello",
    "tab_in_target": b"GET /public\t/admin HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n",
    "control_byte_in_target": b"GET /a\x01b HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n",
    # found in review: what follows a host's ':' was forwarded, signed, in
    # Host and X-Forwarded-Host
    "host_userinfo_after_colon": b"GET /echo HTTP/1.1\r\n"
                                 b"Host: codex.revelations.studio:@evil.example\r\n\r\n",
    "host_path_after_port": b"GET /echo HTTP/1.1\r\nHost: codex.revelations.studio:443/evil\r\n\r\n",
    "host_list_after_port": b"GET /echo HTTP/1.1\r\n"
                            b"Host: codex.revelations.studio:443,evil.example\r\n\r\n",
    "host_port_too_long": b"GET /echo HTTP/1.1\r\nHost: codex.revelations.studio:123456\r\n\r\n",
    "absolute_form_bad_port": b"GET http://codex.revelations.studio:80x/echo HTTP/1.1\r\n"
                              b"Host: codex.revelations.studio:80x\r\n\r\n",
    "ipv6_host_unclosed": b"GET /echo HTTP/1.1\r\nHost: [2001:db8::1:8443\r\n\r\n",
    # not host names at all: a 400, as for any malformed request (was 404)
    "host_space_before_port": b"GET /echo HTTP/1.1\r\nHost: codex.revelations.studio :80\r\n\r\n",
    "host_empty_label": b"GET /echo HTTP/1.1\r\nHost: codex..revelations.studio\r\n\r\n",
}


def send_in_pieces(edge, data, cuts):
    """Send data cut at the given offsets, each piece in its own segment
    (TCP_NODELAY, and a short pause so that the edge reads them apart:
    nothing observable tells when it has read a piece)."""
    s = edge.connect()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    last = 0
    for cut in list(cuts) + [len(data)]:
        s.sendall(data[last:cut])
        last = cut
        time.sleep(0.005)
    return s


HEAD = b"GET /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\nX-Piece: yes\r\n\r\n"


@pytest.mark.parametrize("cuts", [
    range(1, len(HEAD)),                       # a byte at a time
    [HEAD.index(b"\r\n") + 1],                 # between CR and LF
    [len(HEAD) - 1], [len(HEAD) - 2], [len(HEAD) - 3],  # inside the final CRLF CRLF
    [5, 20, 21, 40],
], ids=["bytewise", "cr_lf", "end-1", "end-2", "end-3", "mixed"])
def test_a_head_split_across_reads_is_parsed(recorded, cuts):
    s = send_in_pieces(recorded, HEAD, cuts)
    status, _, _, _ = read_response(s)
    s.close()
    assert status == 200


@pytest.mark.parametrize("data", [
    b"GET /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\nX: a\rb\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: codex.revelations.studio\nX: y\r\n\r\n",
], ids=["bare_cr", "bare_lf"])
def test_smuggling_split_across_reads_is_rejected(recorded, data):
    # the bad byte arrives in a read of its own, after a read ending in CR
    at = data.index(b"\r", data.index(b"X")) if b"X: a" in data else data.index(b"\nX")
    before = recorded.rec.count()
    out = read_until_close(send_in_pieces(recorded, data, [at, at + 1]))
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]
    assert recorded.rec.count() == before


@pytest.mark.parametrize("case", sorted(SMUGGLE))
def test_smuggling_is_rejected(recorded, case):
    edge = recorded
    before = edge.rec.count()
    logs_before = len(edge.access_log())
    out = raw(edge, SMUGGLE[case])
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]
    assert b"Connection: close" in out
    # the edge closed the connection (raw() returns on EOF) and exactly one
    # response was sent
    assert out.count(b"HTTP/1.1") == 1
    # the recorder saw nothing: no byte of the request was forwarded
    time.sleep(0.05)
    assert edge.rec.count() == before, edge.rec.received[before:]
    log = edge_wait_log(edge, logs_before)
    assert log["status"] == 400


@pytest.mark.parametrize("host", ["codex.revelations.studio:", "codex.revelations.studio:8443",
                                  "CODEX.revelations.studio.:1"])
def test_a_host_with_a_port_or_an_empty_one_is_served(edge, host):
    # RFC 9110 7.2: uri-host [ ":" port ], port = *DIGIT
    out = raw(edge, b"GET /echo HTTP/1.1\r\nHost: " + host.encode() +
              b"\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 "), out[:200]
    j = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert j["signature"] == "valid", j


def edge_wait_log(edge, n, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = edge.access_log()
        if len(logs) > n:
            return logs[-1]
        time.sleep(0.01)
    raise AssertionError("no access log line")


# ---- limits ------------------------------------------------------------------

def test_declared_body_over_the_limit_is_refused_before_forwarding(fresh):
    # a Content-Length over the route's limit gets 413 from the head alone:
    # no upstream connection, nothing forwarded, and no 100 Continue
    rec = Recorder()
    e = fresh(http={"max_body_bytes": 1000}, upstreams={("codex-web", "production"): rec.url})
    e.procs.append(rec)
    e.start()
    before = rec.count()
    s = e.connect()
    s.sendall(b"POST /limit-marker HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
              b"Content-Length: 1001\r\nExpect: 100-continue\r\n\r\n")
    status, _, body, _ = read_response(s)
    s.close()
    assert status == 413 and json.loads(body)["error"] == "body_too_large"
    s = e.connect()
    s.sendall(b"POST /limit-marker HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
              b"Content-Length: 5000\r\n\r\n")  # the body is never sent
    out = s.recv(65536)
    s.close()
    assert out.startswith(b"HTTP/1.1 413 "), out[:100]
    assert b"100 Continue" not in out
    # within the limit the same request goes through (the check is the limit's)
    assert request(e, "codex.revelations.studio", "/limit-ok", method="POST",
                   body=b"x" * 1000)[0] == 200
    time.sleep(0.05)
    with rec.lock:
        got = rec.received[before:]
    assert not [r for r in got if b"/limit-marker" in r], got
    assert len([r for r in got if b"/limit-ok" in r]) == 1


def test_refused_body_still_gets_its_413(fresh):
    # the client sends its whole body at once; the edge refuses it from the
    # head and closes, and its response must survive: it sends FIN and reads
    # what is still coming instead of closing with bytes unread (a reset)
    e = fresh(http={"max_body_bytes": 1000}).start()
    for _ in range(5):
        s = e.connect()
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
                  b"Content-Length: 200000\r\n\r\n" + b"x" * 200000)
        out = read_until_close(s, timeout=4)
        assert out.startswith(b"HTTP/1.1 413 "), out[:80]
        assert out.count(b"HTTP/1.1") == 1


def test_lingering_close_is_bounded(fresh):
    # a client that goes on sending after the edge's last response is cut
    # off after LINGER_MS (2 s), not served forever
    e = fresh(http={"max_body_bytes": 1000}).start()
    s = e.connect()
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
              b"Content-Length: 100000000\r\n\r\n")
    s.settimeout(5)
    head = s.recv(65536)
    assert head.startswith(b"HTTP/1.1 413 ")
    t0 = time.monotonic()
    # the edge closes (a reset once it stops reading); a timeout is a failure
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        while time.monotonic() - t0 < 8:
            s.sendall(b"x" * 4096)
            time.sleep(0.01)
    assert 1.5 < time.monotonic() - t0 < 6
    s.close()


def test_limits(fresh):
    e = fresh(http={"max_header_bytes": 2048, "max_body_bytes": 1000, "header_timeout_ms": 300,
                    "idle_timeout_ms": 400}).start()
    out = raw(e, b"GET / HTTP/1.1\r\nHost: codex.revelations.studio\r\nX-Big: " + b"a" * 4000 +
              b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431 ")
    status, _, body = request(e, "codex.revelations.studio", "/echo", method="POST", body=b"x" * 1001)
    assert status == 413 and json.loads(body)["error"] == "body_too_large"
    out = raw(e, b"POST /echo HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n" + b"3e8\r\n" + b"y" * 1000 + b"\r\n"
                 b"10\r\n" + b"z" * 16 + b"\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413 "), out[:100]
    # slowloris: an unfinished head gets 408 after the header timeout
    s = e.connect()
    s.sendall(b"GET / HTTP/1.1\r\nHost: codex.revelations.studio\r\n")
    t0 = time.monotonic()
    data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 408 ") and 0.2 < time.monotonic() - t0 < 3
    # an idle keep-alive connection is closed after the idle timeout
    s = e.connect()
    request(e, "codex.revelations.studio", "/health", sock=s)
    t0 = time.monotonic()
    assert s.recv(100) == b"" and time.monotonic() - t0 < 3


def test_max_connections_idle_make_room(fresh):
    # at max_connections a new connection takes the place of the one idle
    # the longest: here a connection that never sent anything, then the
    # keep-alive connection whose response is the oldest
    e = fresh(http={"max_connections": 3}, threads=1).start()
    silent = e.connect()
    socks = [e.connect() for _ in range(2)]
    for s in socks:
        assert request(e, "codex.revelations.studio", "/health", sock=s)[0] == 200
    newer = e.connect()
    assert request(e, "codex.revelations.studio", "/health", sock=newer)[0] == 200
    assert closed_by_peer(silent)
    newest = e.connect()
    assert request(e, "codex.revelations.studio", "/health", sock=newest)[0] == 200
    assert closed_by_peer(socks[0])
    # the others were left alone and still serve
    for s in (socks[1], newer):
        assert request(e, "codex.revelations.studio", "/health", sock=s)[0] == 200
    for s in (socks[1], newer, newest):
        s.close()


def test_a_connection_that_sent_crlf_after_its_request_is_idle(fresh):
    # some clients end each request with an extra CRLF: the connection then
    # waits for the next one like any other, and was never taken
    e = fresh(http={"max_connections": 2}, threads=1).start()
    socks = [e.connect() for _ in range(2)]
    for s in socks:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n\r\n")
        assert read_response(s)[0] == 200
    third = e.connect()
    assert request(e, "codex.revelations.studio", "/health", sock=third)[0] == 200
    assert closed_by_peer(socks[0])
    for s in (socks[1], third):
        s.close()


def test_an_idle_connection_whose_request_waits_unread_is_not_taken(fresh):
    # The edge is stopped while a new connection arrives and then a request
    # on the longest-idle connection: epoll reports them in that order, so
    # the accept comes first and finds the request still in the socket.
    # That connection is not idle any more; the next one is taken instead.
    e = fresh(http={"max_connections": 2}, threads=1).start()
    oldest, other = e.connect(), e.connect()
    for s in (oldest, other):
        assert request(e, "codex.revelations.studio", "/health", sock=s)[0] == 200
    with frozen(e, idle_first=True):
        newest = e.connect()  # queued by the kernel: the handshake needs no process
        oldest.sendall(b"GET /health HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n")
    assert read_response(oldest)[0] == 200
    assert closed_by_peer(other)
    assert request(e, "codex.revelations.studio", "/health", sock=newest)[0] == 200
    for s in (oldest, newest):
        s.close()


def test_max_connections_busy_refuses(fresh):
    # connections in the middle of a request are never taken: with all of
    # them busy, a new connection is closed at once
    e = fresh(http={"max_connections": 3}, threads=1).start()
    socks = [e.connect() for _ in range(3)]
    for s in socks:
        s.sendall(b"GET /health HTTP/1.1\r\n")  # a head begun
    # the three heads are being read before the extra connection arrives
    wait_for(lambda: e.status()["connections"] == 3, what="three connections")
    extra = e.connect()
    assert closed_by_peer(extra)
    for s in socks:  # their requests complete
        s.sendall(b"Host: codex.revelations.studio\r\n\r\n")
        assert read_response(s)[0] == 200
    socks[0].close()
    # a slot is free again once a connection goes
    wait_for(lambda: try_health(e))
    for s in socks[1:]:
        s.close()


def try_health(e):
    try:
        return request(e, "codex.revelations.studio", "/health")[0] == 200
    except (OSError, EOFError):
        return False


# ---- upstream failures ---------------------------------------------------------

def test_upstream_killed_mid_response(edge):
    s = edge.connect()
    s.sendall(b"GET /crash HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    # the head went out, then the client sees the connection cut short
    assert data.startswith(b"HTTP/1.1 200 ")
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"Content-Length: 100000" in head and len(body) < 100000
    # and the edge keeps serving
    assert request(edge, "codex.revelations.studio", "/health")[0] == 200


def with_unhealthy_codex(fresh, flag):
    """An edge (not started) whose codex-web production is a demo that fails
    its health check while flag exists; returns it, its demo and the
    upstreams, for write_decl."""
    e = fresh(demos=True)
    d = start_demo("codex-web", "production", e.secret("codex-web-production"),
                   extra=("--unhealthy-file", str(flag)))
    e.procs.append(d)
    ups = {k: v.url for k, v in e.demos.items()}
    ups[("codex-web", "production")] = d.url
    return e, d, ups


def test_upstream_down_502_503_and_recovery(fresh, tmp_path):
    flag = tmp_path / "unhealthy"
    e, d, ups = with_unhealthy_codex(fresh, flag)
    dead = f"http://127.0.0.1:{closed_port()}"  # nothing listens
    ups[("auth-worker", "production")] = dead
    e.write_decl(ups, {"health_interval_ms": 100, "health_timeout_ms": 300,
                       "connect_timeout_ms": 1000})
    e.start()
    # connection refused: 503 once health checks mark it down, 502 before
    st, _, _ = request(e, "auth.revelations.studio", "/echo")
    assert st in (502, 503)
    wait_for(lambda: request(e, "auth.revelations.studio", "/echo")[0] == 503)
    # the log line is read by a background thread: wait for it, do not race it
    wait_for(lambda: any(f"upstream {dead} is down" in l for l in e.edge.err))
    assert request(e, "codex.revelations.studio", "/echo")[0] == 200
    flag.write_text("x")
    wait_for(lambda: request(e, "codex.revelations.studio", "/echo")[0] == 503)
    flag.unlink()
    wait_for(lambda: request(e, "codex.revelations.studio", "/echo")[0] == 200)
    wait_for(lambda: any(f"upstream {d.url} is up" in l for l in e.edge.err))


class Unaccepting:
    """An upstream whose accept queue is full and never served: the kernel
    drops further SYNs, so a connect to it never completes."""

    def __init__(self):
        self.srv, self.url = listen_local(0)
        self.fill = []
        for _ in range(16):
            c = socket.socket()
            c.settimeout(0.3)
            self.fill.append(c)
            try:
                c.connect(self.srv.getsockname())
            except (socket.timeout, BlockingIOError):
                return  # full
        raise AssertionError("the accept queue never filled")

    def stop(self, sig=None):
        for c in self.fill:
            c.close()
        self.srv.close()


def test_upstream_connect_timeout_504(fresh):
    up = Unaccepting()
    e = fresh(http={"connect_timeout_ms": 300, "health_interval_ms": 0},
              upstreams={("codex-web", "production"): up.url})
    e.procs.append(up)
    e.start()
    t0 = time.monotonic()
    st, _, body = request(e, "codex.revelations.studio", "/echo")
    assert st == 504 and json.loads(body)["error"] == "upstream_timeout", (st, body)
    assert 0.25 < time.monotonic() - t0 < 3


def test_upstream_timeout_504(fresh):
    e = fresh(http={"response_timeout_ms": 300}).start()
    st, _, body = request(e, "codex.revelations.studio", "/slow?ms=2000")
    assert st == 504 and json.loads(body)["error"] == "upstream_timeout"
    assert request(e, "codex.revelations.studio", "/slow?ms=10")[0] == 200



# ---- tenants -----------------------------------------------------------------

def test_tenant_added_and_suspended_while_running(edge):
    def tenants(*args):
        subprocess.run([SB, "tenants", *args, "-c", edge.dir, "--data", edge.data],
                       check=True, capture_output=True)
    assert request(edge, "acme.revelations.studio", "/echo")[0] == 404
    tenants("add", "acme", "--name", "Acme")
    # served within one second of the command returning (the bound)
    t0 = time.monotonic()
    wait_for(lambda: request(edge, "acme.revelations.studio", "/echo")[0] == 200, timeout=3)
    assert time.monotonic() - t0 < 1
    e, _ = echo(edge, "acme.revelations.studio")
    assert e["tenant"] == "acme" and e["deployment"] == "codex-web-production"
    tenants("suspend", "acme")
    wait_for(lambda: request(edge, "acme.revelations.studio", "/echo")[0] == 403, timeout=1.5)
    st, _, body = request(edge, "acme.revelations.studio", "/echo")
    assert json.loads(body)["error"] == "tenant_suspended"
    tenants("resume", "acme")
    wait_for(lambda: request(edge, "acme.revelations.studio", "/echo")[0] == 200, timeout=1.5)
    tenants("remove", "acme")
    wait_for(lambda: request(edge, "acme.revelations.studio", "/echo")[0] == 404, timeout=1.5)


# ---- logs --------------------------------------------------------------------

def test_access_log_line(edge):
    n = len(edge.access_log())
    echo(edge, "codex.revelations.studio", "/echo?x=1", method="POST", body=b"12345",
         headers={"X-Request-Id": "log-test-1"})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [l for l in edge.access_log()[n:] if l["request_id"] == "log-test-1"]
        if lines:
            break
        time.sleep(0.01)
    l = lines[0]
    assert l["host"] == "codex.revelations.studio" and l["method"] == "POST"
    assert l["path"] == "/echo?x=1" and l["status"] == 200 and l["bytes_in"] == 5
    assert l["bytes_out"] > 0 and l["deployment"] == "codex-web-production"
    assert l["tenant"] == "codex" and l["upstream"].startswith("http://127.0.0.1:")
    assert l["duration_ms"] >= 0 and l["time"].endswith("Z")
    # RFC 3339 UTC with milliseconds, the request's start (within a few seconds of now)
    import datetime
    import re
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", l["time"]), l["time"]
    t = datetime.datetime.strptime(l["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    assert abs(t.timestamp() - time.time()) < 10
    assert all(type(l[k]) is int for k in ("status", "bytes_in", "bytes_out", "duration_ms"))


def log_load(edge, conns, per_conn, path="/echo", prefix="q"):
    """per_conn keep-alive requests on each of conns parallel connections,
    each with its own X-Request-Id; returns the ids."""
    errors = []

    def one(k):
        try:
            s = edge.connect()
            for i in range(per_conn):
                rid = f"{prefix}-{k}-{i}"
                st, _, _ = request(edge, "codex.revelations.studio", path, sock=s,
                                   headers={"X-Request-Id": rid})
                assert st == 200, st
            s.close()
        except Exception as e:  # reported below
            errors.append(e)
    ts = [threading.Thread(target=one, args=(k,)) for k in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    return {f"{prefix}-{k}-{i}" for k in range(conns) for i in range(per_conn)}


def test_access_log_file_has_every_line_without_further_traffic(fresh, tmp_path):
    # lines are queued per thread and written before the thread waits for
    # events: after the last response, with no more traffic, every line is
    # in the file (well before the queue's 64 KiB would force a write)
    path = tmp_path / "access.log"
    e = fresh(http={"access_log": str(path)}).start()
    want = log_load(e, conns=6, per_conn=40)
    deadline = time.monotonic() + 1.0
    got = []
    while time.monotonic() < deadline:
        got = [json.loads(l) for l in path.read_text().splitlines()]
        if {l["request_id"] for l in got} >= want:
            break
        time.sleep(0.01)
    ids = [l["request_id"] for l in got if l["request_id"].startswith("q-")]
    assert sorted(ids) == sorted(want)  # each exactly once
    assert all(l["status"] == 200 and l["host"] == "codex.revelations.studio" for l in got)


def test_access_log_lines_stay_whole_on_a_pipe(fresh):
    # stdout is a pipe here, written by two threads at once: lines go out in
    # writes of whole lines of PIPE_BUF (4096) bytes at most, so long lines
    # from both threads never interleave
    e = fresh().start()
    long_path = "/echo?" + "p" * 3000
    want = log_load(e, conns=8, per_conn=25, path=long_path, prefix="w")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        raw_lines = [l for l in e.edge.out if '"request_id":"w-' in l]
        if len(raw_lines) >= len(want):
            break
        time.sleep(0.01)
    lines = [json.loads(l) for l in raw_lines]  # a cut or mixed line fails here
    assert sorted(l["request_id"] for l in lines) == sorted(want)
    assert all(l["path"] == long_path for l in lines)


def test_access_log_lines_are_written_at_stop(fresh, tmp_path):
    path = tmp_path / "access.log"
    e = fresh(http={"access_log": str(path)}).start()
    want = log_load(e, conns=4, per_conn=30, prefix="s")
    e.edge.p.send_signal(signal.SIGTERM)
    assert e.edge.wait(10) == 0
    ids = [json.loads(l)["request_id"] for l in path.read_text().splitlines()]
    assert sorted(i for i in ids if i.startswith("s-")) == sorted(want)


def wait_log_ids(path, prefix, want, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            got = {json.loads(l)["request_id"] for l in path.read_text().splitlines()}
            if {i for i in got if i.startswith(prefix)} >= want:
                return
        time.sleep(0.01)
    raise AssertionError(f"{path}: not every {prefix} line")


def log_ids(path):
    return {json.loads(l)["request_id"] for l in path.read_text().splitlines()}


def test_access_log_reopened_after_rotation(fresh, tmp_path):
    # logrotate moves the file, then SIGUSR1 (or a reload) makes the edge
    # write to a new file at the declared path; a path it cannot open
    # leaves it writing to the old file
    path = tmp_path / "access.log"
    e = fresh(http={"access_log": str(path)}).start()
    wait_log_ids(path, "r1-", log_load(e, conns=3, per_conn=5, prefix="r1"))
    path.rename(tmp_path / "access.log.1")
    e.edge.p.send_signal(signal.SIGUSR1)
    e.edge.wait_line(lambda l: "reopened access log" in l)
    r2 = log_load(e, conns=3, per_conn=5, prefix="r2")
    wait_log_ids(path, "r2-", r2)
    assert not [i for i in log_ids(path) if i.startswith("r1-")]
    assert not [i for i in log_ids(tmp_path / "access.log.1") if i.startswith("r2-")]
    # a reload reopens it too
    path.rename(tmp_path / "access.log.2")
    subprocess.run([SB, "reload", "-c", e.dir], check=True, capture_output=True)
    e.edge.wait_line(lambda l: "reopened access log" in l)
    wait_log_ids(path, "r3-", log_load(e, conns=2, per_conn=5, prefix="r3"))
    # the path cannot be opened (a directory now): the old file goes on
    path.rename(tmp_path / "access.log.3")
    path.mkdir()
    e.edge.p.send_signal(signal.SIGUSR1)
    line = e.edge.wait_line(lambda l: "cannot reopen access log" in l)
    assert str(path) in line and "still writing to the old file" in line
    wait_log_ids(tmp_path / "access.log.3", "r4-", log_load(e, conns=2, per_conn=5, prefix="r4"))
    # and the server still serves and stops cleanly (fixture)
    assert request(e, "codex.revelations.studio", "/echo")[0] == 200


def test_access_log_setting_changed_by_reload_is_reported(fresh, tmp_path):
    path = tmp_path / "access.log"
    e = fresh(http={"access_log": str(path)}).start()
    toml = e.dir / "switchboard.toml"
    toml.write_text(toml.read_text().replace(str(path), str(tmp_path / "other.log")))
    e.edge.p.send_signal(signal.SIGHUP)
    line = e.edge.wait_line(lambda l: "access_log changed" in l)
    assert "other.log" in line and "next start" in line
    wait_log_ids(path, "c1-", log_load(e, conns=1, per_conn=3, prefix="c1"))


def test_access_log_line_of_a_request_in_flight_at_stop(fresh, tmp_path):
    # the request ends during the drain; its line is written before exit
    path = tmp_path / "access.log"
    e = held_upstream(fresh, http={"access_log": str(path)})
    s = e.connect()
    s.sendall(b"GET /slow HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
              b"X-Request-Id: inflight-1\r\n\r\n")
    wait_for(lambda: e.up.heads, what="the request at the upstream")
    e.edge.p.send_signal(signal.SIGTERM)
    e.edge.wait_line(lambda l: "stopping: no new connections" in l)
    e.release.set()
    status, _, _, _ = read_response(s)
    s.close()
    assert status == 200
    assert e.edge.wait(10) == 0
    assert "inflight-1" in log_ids(path)


# ---- reload and stop ---------------------------------------------------------

def test_reload_swaps_and_bad_declaration_keeps_serving(fresh):
    e = fresh().start()
    toml = e.dir / "switchboard.toml"
    good = toml.read_text()
    toml.write_text(good + "\n[[service]]\nname = \"docs\"\nroutes = [\"docs.revelations.studio/*\"]\n"
                    f"upstream.production = \"{e.demos[('codex-web', 'production')].url}\"\n")
    assert request(e, "docs.revelations.studio", "/echo")[0] == 404
    out = subprocess.run([SB, "reload", "-c", e.dir], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: request(e, "docs.revelations.studio", "/echo")[0] == 200)
    toml.write_text(good + "\n[broken\n")
    e.edge.p.send_signal(signal.SIGHUP)
    e.edge.wait_line(lambda l: "reload failed" in l)
    assert any("switchboard.toml:" in l and "reload failed" in l for l in e.edge.err)
    assert request(e, "docs.revelations.studio", "/echo")[0] == 200
    # an empty file (one read between its truncation and its writing) is
    # refused too: served, it would have dropped every route
    toml.write_text("")
    e.edge.p.send_signal(signal.SIGHUP)
    e.edge.wait_line(lambda l: "reload failed" in l and "no [[service]]" in l)
    assert request(e, "docs.revelations.studio", "/echo")[0] == 200
    assert request(e, "codex.revelations.studio", "/health")[0] == 200


def test_reload_under_traffic_has_no_failed_request(fresh):
    e = fresh().start()
    stop = threading.Event()
    results = []

    def load():
        s = e.connect()
        while not stop.is_set():
            try:
                st, _, _ = request(e, "codex.revelations.studio", "/echo", sock=s)
            except Exception as ex:  # noqa: BLE001 - any failure counts
                results.append(repr(ex))
                s = e.connect()
                continue
            results.append(st)
    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    reloads = 0
    deadline = time.monotonic() + 20
    while (reloads < 10 or len(results) < 300) and time.monotonic() < deadline:
        e.edge.p.send_signal(signal.SIGHUP)
        e.edge.wait_line(lambda l: "reloaded" in l)
        reloads += 1
    stop.set()
    for t in threads:
        t.join()
    assert reloads >= 10 and len(results) >= 300
    assert all(r == 200 for r in results), [r for r in results if r != 200][:5]


def held_upstream(fresh, **kw):
    """An edge whose codex-web production answers a request only when the
    test sets edge.release: a request is in flight for as long as needed."""
    release = threading.Event()

    def answer(conn, head, rest):
        release.wait(10)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return rest
    up = Scripted(answer)
    e = fresh(upstreams={("codex-web", "production"): up.url}, **kw)
    e.procs.append(up)
    e.up, e.release = up, release
    return e.start()


def stop_in_flight(e, sig):
    """Send sig to the edge of held_upstream while a request is held at the
    upstream; once the edge says it stops, release it: the response the
    client got (status, headers, body)."""
    got = {}

    def slow():
        got["r"] = request(e, "codex.revelations.studio", "/slow")
    t = threading.Thread(target=slow)
    t.start()
    wait_for(lambda: e.up.heads, what="the request at the upstream")
    e.edge.p.send_signal(sig)
    e.edge.wait_line(lambda l: "stopping: no new connections" in l)
    e.release.set()
    t.join()
    return got["r"]


def test_sigterm_lets_requests_in_flight_finish(fresh):
    e = held_upstream(fresh)
    assert stop_in_flight(e, signal.SIGTERM)[0] == 200
    assert e.edge.wait(timeout=10) == 0
    with pytest.raises(OSError):
        e.connect(timeout=1)


def test_host_with_trailing_whitespace(edge):
    out = raw(edge, b"GET /echo HTTP/1.1\r\nHost: codex.revelations.studio \t\r\n"
                    b"Connection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 "), out[:120]


def test_half_close_after_request_still_gets_the_response(edge):
    s = edge.connect()
    s.sendall(b"GET /slow?ms=100 HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    assert data.startswith(b"HTTP/1.1 200 ") and data.count(b"HTTP/1.1") == 1


def test_response_head_and_body_arrive_together(edge):
    """One upstream read becomes one write: the head and a small body come
    in a single segment (the benchmark's syscall count depends on it)."""
    s = edge.connect()
    s.sendall(b"GET /health HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n")
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 ") and first.rstrip().endswith(b"}"), first


class OneShotKeepAlive(Scripted):
    """An upstream that answers the first request of each connection with a
    keep-alive response, then closes when a second request arrives on it
    without answering: the stale pooled connection every proxy meets."""

    def __init__(self):
        self.answered = set()  # connections that had their one answer
        super().__init__(self.once)

    def once(self, conn, head, rest):
        if conn in self.answered:
            return None  # close without answering
        self.answered.add(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return rest

    @property
    def requests(self):
        return [h.split(b"\r\n")[0] for h in self.heads]


def test_retry_only_idempotent_requests_without_body(fresh):
    up = OneShotKeepAlive()
    e = fresh(upstreams={("codex-web", "production"): up.url})
    e.procs.append(up)
    e.start()
    s = e.connect()
    # first request opens a connection that goes back to the pool
    assert request(e, "codex.revelations.studio", "/a", sock=s)[0] == 200
    # a GET on the stale pooled connection is retried on a fresh one
    assert request(e, "codex.revelations.studio", "/b", sock=s)[0] == 200
    assert up.requests.count(b"GET /b HTTP/1.1") == 2
    # a POST with a body is never retried: 502
    assert request(e, "codex.revelations.studio", "/c", method="POST", body=b"x", sock=s)[0] == 502
    assert up.requests.count(b"POST /c HTTP/1.1") == 1


def test_no_retry_for_a_post_without_body_or_a_put_with_one(fresh):
    # each of the two conditions on its own keeps a request from a retry:
    # a POST is not idempotent even without a body; a PUT is, but its body
    # was streamed and is gone
    up = OneShotKeepAlive()
    e = fresh(upstreams={("codex-web", "production"): up.url}, threads=1)
    e.procs.append(up)
    e.start()
    for path, method, body in (("/p", "POST", None), ("/q", "POST", b""), ("/u", "PUT", b"x")):
        s = e.connect()
        # a fresh upstream connection answers and goes back to the pool...
        assert request(e, "codex.revelations.studio", path + "-first", sock=s)[0] == 200
        # ...where the next request finds it closed
        assert request(e, "codex.revelations.studio", path, method=method, body=body,
                       sock=s)[0] == 502, path
        s.close()
        assert up.requests.count(f"{method} {path} HTTP/1.1".encode()) == 1, (path, up.requests)


def test_reload_applies_the_health_interval_and_warns_about_what_needs_a_restart(fresh,
                                                                               tmp_path):
    flag = tmp_path / "unhealthy"
    e, d, ups = with_unhealthy_codex(fresh, flag)
    e.write_decl(ups, {"health_interval_ms": 600000, "health_timeout_ms": 300})
    e.start()
    wait_for(lambda: request(e, "codex.revelations.studio", "/echo")[0] == 200)
    e.write_decl(ups, {"health_interval_ms": 100, "health_timeout_ms": 300})
    toml = e.dir / "switchboard.toml"
    toml.write_text(toml.read_text().replace(
        '[http]', '[listen]\ndns = "127.0.0.1:2"\n\n[http]', 1))
    e.edge.p.send_signal(signal.SIGHUP)
    e.edge.wait_line(lambda l: "reloaded" in l)
    # the one setting that changed, and only it
    changed = [l for l in e.edge.err if "changed: it takes effect at the next start" in l]
    assert len(changed) == 1 and "[listen] dns changed" in changed[0], changed
    # checks now run every 100 ms, not every 10 minutes
    flag.write_text("x")
    wait_for(lambda: request(e, "codex.revelations.studio", "/echo")[0] == 503, timeout=3)


@pytest.mark.skipif(not os.path.exists(shim("early_hup.so")),
                    reason="build/shim/early_hup.so: make e2e builds it")
def test_a_sighup_while_the_server_starts_is_a_reload_not_its_end(fresh):
    # `systemctl reload` or a logrotate script may signal a server still
    # starting: before its handlers were set, SIGHUP's default action
    # ended it (and SIGUSR1's)
    e = fresh().start(env=preload_env(shim("early_hup.so")))
    e.edge.wait_line(lambda l: "reloaded " in l)
    assert e.edge.p.poll() is None
    assert request(e, "codex.revelations.studio", "/health")[0] == 200
