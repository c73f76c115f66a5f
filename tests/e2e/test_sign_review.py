"""X-Switchboard-Signature through the real edge, checked by a verifier
written from docs/signing.md alone (its prose and table, not the C code nor
the doc's own Python snippet), on the exact bytes an upstream receives; and
those same signed requests replayed, tampered, straight to a demo service
(a request that never went through the edge).
"""
import hashlib
import hmac
import json
import os
import re
import socket
import time
from pathlib import Path

import pytest

from edge import Scripted, read_response, read_until_close, run_cli, start_demo

VERIFIER = Path(__file__).resolve().parents[2] / "examples" / "verify-signature.js"
DEPLOYMENT = "codex-web-production"
API_DEPLOYMENT = "stripe-webhook-handler-production"  # api.revelations.studio: no tenant

# docs/signing.md, "The canonical string": the header lines, in order
DOC_SIGNED = ["x-request-id", "traceparent", "x-forwarded-for", "x-forwarded-proto",
              "x-forwarded-host", "x-tenant-slug", "x-tenant-config",
              "x-switchboard-environment", "x-switchboard-deployment"]


class Malformed(Exception):
    pass


def doc_parse_header(value):
    """docs/signing.md, Verifying, step 1."""
    t, sigs = None, []
    for item in value.split(","):
        item = item.strip(" \t")
        key, eq, val = item.partition("=")
        if not eq or not key:
            raise Malformed(item)
        if key == "t":
            if t is not None or not re.fullmatch(r"0|[1-9][0-9]*", val):
                raise Malformed(item)
            t = val
        elif key == "v1":
            if not re.fullmatch(r"[0-9a-fA-F]{64}", val):
                raise Malformed(item)
            sigs.append(bytes.fromhex(val))
    if t is None or not 1 <= len(sigs) <= 16:
        raise Malformed(value)
    return t, sigs


def doc_host(value):
    """The <host> row: lower case, no port; '[...]' keeps up to its ']',
    otherwise the first ':' starts the port. Nothing else changes."""
    h = value.strip(b" \t")
    if h.startswith(b"[") and b"]" in h:
        h = h[:h.index(b"]") + 1]
    else:
        h = h.split(b":", 1)[0]
    return h.lower()  # bytes.lower() is ASCII-only, as the doc says


def doc_canonical(t, method, target, headers):
    """Fifteen lines ending in LF, from what the service received: the raw
    request-target split at its first '?', the Host header, the signed
    headers trimmed of spaces and tabs (absent: empty)."""
    path, _, query = target.partition(b"?")
    lines = [b"switchboard-v1", t.encode(), method, doc_host(headers.get(b"host", b"")),
             path, query]
    lines += [n.encode() + b":" + headers.get(n.encode(), b"").strip(b" \t")
              for n in DOC_SIGNED]
    return b"".join(l + b"\n" for l in lines)


def parse_head(head):
    """Request line and header fields of a head as the upstream got it;
    every field name that occurs more than once is listed in repeated."""
    lines = head.split(b"\r\n")
    method, target, version = lines[0].split(b" ")
    assert version == b"HTTP/1.1", lines[0]
    headers, repeated = {}, set()
    for l in lines[1:]:
        name, _, value = l.partition(b":")
        name = name.lower()
        if name in headers:
            repeated.add(name)
        headers[name] = value.strip(b" \t")
    return method, target, headers, repeated


def doc_verify(head, secrets, now=None, tolerance=300):
    """True when head carries a signature valid under one of secrets (hex)."""
    method, target, headers, repeated = parse_head(head)
    if repeated & {b"host", b"x-switchboard-signature", *(n.encode() for n in DOC_SIGNED)}:
        return False
    t, sigs = doc_parse_header(headers[b"x-switchboard-signature"].decode("latin-1"))
    msg = doc_canonical(t, method, target, headers)
    ok = False
    for s in secrets:
        mac = hmac.new(bytes.fromhex(s), msg, hashlib.sha256).digest()
        for sig in sigs:
            ok |= hmac.compare_digest(mac, sig)
    now = time.time() if now is None else now
    return ok and abs(now - int(t)) <= tolerance


def answer_ok(conn, head, rest):
    """200 "ok", after the body (Content-Length or chunked) is read."""
    m = re.search(rb"\r\ncontent-length: *(\d+)", head.lower())
    chunked = b"\r\ntransfer-encoding: chunked" in head.lower()
    while (len(rest) < int(m.group(1)) if m else
           chunked and not (b"\r\n" + rest).endswith(b"\r\n0\r\n\r\n")):
        b = conn.recv(65536)
        if not b:
            return None
        rest += b
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    return rest[int(m.group(1)):] if m else b"" if chunked else rest


@pytest.fixture
def signing_edge(fresh):
    """An edge whose codex-web production is a recording upstream; the
    master key rotates (secret.key.previous), so every request carries two
    v1; tenant acme is registered with settings."""
    up = Scripted(answer_ok)
    e = fresh(threads=1, demos=False, upstreams={("codex-web", "production"): up.url,
                                                 ("stripe-webhook-handler", "production"): up.url})
    e.procs.append(up)
    e.up = up
    e.current = e.secret(DEPLOYMENT)  # creates the data dir and secret.key
    (e.data / "secret.key.previous").write_text("ab" * 32 + "\n")
    e.secrets = e.secret(DEPLOYMENT).split(",")
    assert len(e.secrets) == 2 and e.secrets[0] == e.current, e.secrets
    e.api_secrets = e.secret(API_DEPLOYMENT).split(",")
    run_cli("tenants", "add", "acme", "--settings", '{"plan":"pro","seats":3}', "-c", e.dir,
            "--data", e.data, check=0)
    return e.start()


def send(e, data):
    s = e.connect()
    s.sendall(data)
    st, _, body, _ = read_response(s)
    s.close()
    return st, body


# (request bytes sent to the edge, what the upstream must see as target)
THROUGH_EDGE = [
    b"GET / HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n",
    b"GET /a/b HTTP/1.1\r\nHost: CODEX.Revelations.STUDIO:8080\r\n\r\n",
    b"GET /dot HTTP/1.1\r\nHost: codex.revelations.studio.\r\n\r\n",
    b"GET /q?a=1&a=2&b&=x&a=1 HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n",
    b"GET /q? HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n",
    b"GET /q?x=?y?z HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n",
    b"GET /a%20b/%2F/c%3Fd?e=%26%3D%0A HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n",
    b"GET /caf\xc3\xa9/\xff\x80?n=\xe2\x82\xac HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n",
    b"GET /p;a=b,c:d HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n",
    b"GET /tenant?x=1 HTTP/1.1\r\nHost: acme.revelations.studio\r\n\r\n",
    b"GET /tenant HTTP/1.1\r\nHost: Acme.Revelations.Studio:80\r\n\r\n",
    b"GET http://codex.revelations.studio/abs?q=1 HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n",
    b"GET http://CODEX.revelations.studio:8080/abs2 HTTP/1.1\r\nHost: codex.revelations.studio:8080\r\n\r\n",
    b"GET http://codex.revelations.studio HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n",
    b"GET http://codex.revelations.studio?only=query HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n",
    b"GET /h10 HTTP/1.0\r\nHost: codex.revelations.studio\r\n\r\n",
    b"GET http://codex.revelations.studio/h10abs HTTP/1.0\r\n\r\n",
    b"DELETE /d HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n",
    b"POST /body HTTP/1.1\r\nHost: codex.revelations.studio\r\nContent-Length: 3\r\n\r\nabc",
    b"PATCH /chunked HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    # what a client sends of the signed headers is replaced or dropped
    b"GET /spoof HTTP/1.1\r\nHost: codex.revelations.studio\r\nX-Tenant-Slug: victim\r\n"
    b"X-Tenant-Config: {}\r\nX-Switchboard-Signature: t=1,v1=" + b"0" * 64 + b"\r\n"
    b"X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\n"
    b"X-Switchboard-Deployment: auth-worker-production\r\n\r\n",
    b"GET /ids HTTP/1.1\r\nHost: codex.revelations.studio\r\nX-Request-Id: my-req.42\r\n"
    b"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n",
    b"GET /webhooks/stripe/payments?x=1 HTTP/1.1\r\nHost: api.revelations.studio\r\n"
    b"X-Tenant-Slug: acme\r\n\r\n",
    b"POST /webhooks/stripe/payments HTTP/1.1\r\nHost: API.revelations.studio:443\r\n"
    b"Content-Length: 2\r\n\r\n{}",
    b"GET /bad-ids HTTP/1.1\r\nHost: codex.revelations.studio\r\nX-Request-Id: a b:c\r\n"
    b"traceparent: junk\r\n\r\n",
]


def test_doc_verifier_accepts_what_the_edge_forwards(signing_edge):
    """Every forwarded request verifies under each of the two secrets the
    edge signs with (current first), by the doc's rules alone; one flipped
    byte anywhere in what is signed makes it fail."""
    e = signing_edge
    for i, data in enumerate(THROUGH_EDGE):
        before = len(e.up.heads)
        st, body = send(e, data)
        assert st == 200 and body == b"ok", (data, st, body)
        assert len(e.up.heads) == before + 1, data
        head = e.up.heads[-1]
        _, _, headers, repeated = parse_head(head)
        assert not repeated & {b"host", b"x-switchboard-signature"}, head
        t, sigs = doc_parse_header(headers[b"x-switchboard-signature"].decode())
        assert len(sigs) == 2, head
        assert abs(time.time() - int(t)) < 30
        secrets = e.secrets if headers[b"x-switchboard-deployment"] == DEPLOYMENT.encode() \
            else e.api_secrets
        for s in secrets:
            assert doc_verify(head, [s]), (data, head)
        assert not doc_verify(head, ["cd" * 32]), head
        # the current secret signs the first v1, the previous one the second
        _, target, _, _ = parse_head(head)
        msg = doc_canonical(t, head.split(b" ", 1)[0], target, headers)
        assert sigs == [hmac.new(bytes.fromhex(s), msg, hashlib.sha256).digest()
                        for s in secrets]
    deployments = {parse_head(h)[2][b"x-switchboard-deployment"] for h in e.up.heads}
    assert deployments == {DEPLOYMENT.encode(), API_DEPLOYMENT.encode()}


def forwarded(e, data):
    """The head the upstream received for data, which the edge forwarded
    (200) as the one request since the last."""
    n = len(e.up.heads)
    assert send(e, data) == (200, b"ok"), data
    assert len(e.up.heads) == n + 1, data
    return e.up.heads[-1]


def test_signed_tenant_headers_are_the_registry_s(signing_edge):
    e = signing_edge
    head = forwarded(e, b"GET /t HTTP/1.1\r\nHost: acme.revelations.studio\r\n"
                        b"X-Tenant-Slug: evil\r\n\r\n")
    _, _, h, _ = parse_head(head)
    assert h[b"x-tenant-slug"] == b"acme"
    assert json.loads(h[b"x-tenant-config"])["settings"] == {"plan": "pro", "seats": 3}
    assert doc_verify(head, e.secrets[:1])
    # codex is a static tenant, with no settings
    head = forwarded(e, b"GET /t HTTP/1.1\r\nHost: codex.revelations.studio\r\n"
                        b"X-Tenant-Slug: evil\r\n\r\n")
    _, _, h, _ = parse_head(head)
    assert h[b"x-tenant-slug"] == b"codex" and b"x-tenant-config" not in h
    assert doc_verify(head, e.secrets[:1])
    # api is no tenant's
    head = forwarded(e, b"GET /webhooks/stripe/payments HTTP/1.1\r\n"
                        b"Host: api.revelations.studio\r\n"
                        b"X-Tenant-Slug: evil\r\nX-Tenant-Config: {}\r\n\r\n")
    _, _, h, _ = parse_head(head)
    assert b"x-tenant-slug" not in h and b"x-tenant-config" not in h
    assert h[b"x-switchboard-deployment"] == API_DEPLOYMENT.encode()
    assert doc_verify(head, e.api_secrets[:1])


# ---- replayed straight to a demo service ----------------------------------------

def demo_ask(d, head, body=b""):
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    s.sendall(head + b"\r\n\r\n" + body)
    st, _, rbody, _ = read_response(s)
    s.close()
    assert st == 200, rbody
    return json.loads(rbody)


def edit(head, name, value):
    """head with header name's value replaced (value None: the field
    removed; name absent: the field added)."""
    lines = head.split(b"\r\n")
    out, found = [lines[0]], False
    for l in lines[1:]:
        if l.split(b":", 1)[0].lower() == name.lower():
            found = True
            if value is not None:
                out.append(name + b": " + value)
        else:
            out.append(l)
    if not found and value is not None:
        out.append(name + b": " + value)
    return b"\r\n".join(out)


def retarget(head, target=None, method=None):
    line, rest = head.split(b"\r\n", 1)
    m, tg, v = line.split(b" ")
    return b" ".join([method or m, target or tg, v]) + b"\r\n" + rest


@pytest.fixture
def replay(signing_edge):
    """A signed head the edge forwarded for a tenant request with a query,
    and a demo service that knows the deployment's secrets."""
    e = signing_edge
    head = forwarded(e, b"GET /api/x?a=1&b=2 HTTP/1.1\r\nHost: acme.revelations.studio\r\n"
                        b"X-Request-Id: r-1\r\n\r\n")
    d = start_demo("codex-web", "production", e.secrets[0])
    e.procs.append(d)
    assert demo_ask(d, head)["signature"] == "valid"
    return head, d


SIGNED_VALUES = {
    b"X-Request-Id": b"r-2",
    b"traceparent": b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
    b"X-Forwarded-For": b"203.0.113.9",
    b"X-Forwarded-Proto": b"https",
    b"X-Forwarded-Host": b"other.revelations.studio",
    b"X-Tenant-Slug": b"victim",
    b"X-Tenant-Config": b'{"plan":"enterprise","seats":3}',
    b"X-Switchboard-Environment": b"staging",
    b"X-Switchboard-Deployment": b"auth-worker-production",
}


@pytest.mark.parametrize("name", list(SIGNED_VALUES))
def test_demo_rejects_each_signed_header_changed(replay, name):
    head, d = replay
    for value in (SIGNED_VALUES[name], None, b""):
        j = demo_ask(d, edit(head, name, value))
        assert j["signature"] == "invalid", (name, value, j)
    # sent twice, the second copy equal to the first: which one was signed?
    _, _, h, _ = parse_head(head)
    orig = h.get(name.lower())
    if orig is not None:
        j = demo_ask(d, head + b"\r\n" + name + b": " + orig)
        assert j["signature"] == "invalid", (name, j)


@pytest.mark.parametrize("change", [
    lambda h: retarget(h, method=b"POST"),
    lambda h: retarget(h, target=b"/api/y?a=1&b=2"),
    lambda h: retarget(h, target=b"/api/x?a=1&b=3"),
    lambda h: retarget(h, target=b"/api/x"),
    lambda h: retarget(h, target=b"/api/x?a=1&b=2&c=3"),
    lambda h: retarget(h, target=b"/api/x%3Fa=1&b=2"),
    lambda h: edit(h, b"Host", b"codex.revelations.studio"),
    lambda h: edit(h, b"X-Switchboard-Signature", b"t=1,v1=" + b"0" * 64),
    # absolute-form: a server takes the host from the target (RFC 9112
    # 3.2.2), and the edge never sends one; the signed path is "/api/x"
    lambda h: retarget(h, target=b"http://evil.example/api/x?a=1&b=2"),
    lambda h: retarget(h, target=b"http://acme.revelations.studio/api/x?a=1&b=2"),
], ids=["method", "path", "query", "query-dropped", "query-added", "query-into-path", "host",
        "signature", "absolute-form-other-host", "absolute-form-same-host"])
def test_demo_rejects_the_request_line_or_host_changed(replay, change):
    head, d = replay
    j = demo_ask(d, change(head))
    assert j["signature"] == "invalid", j


def test_demo_says_stale_in_both_directions(fresh):
    """A service-side check of the tolerance: t an hour old and an hour
    ahead are "value out of range", t within it is valid."""
    secret = "11" * 32
    d = start_demo("codex-web", "production", secret)
    try:
        for delta, want in ((-3600, "value out of range"), (3600, "value out of range"),
                            (0, None)):
            t = str(int(time.time()) + delta)
            headers = {b"host": b"codex.revelations.studio", b"x-request-id": b"r"}
            msg = doc_canonical(t, b"GET", b"/x", headers)
            v1 = hmac.new(bytes.fromhex(secret), msg, hashlib.sha256).hexdigest()
            head = (b"GET /x HTTP/1.1\r\nHost: codex.revelations.studio\r\nX-Request-Id: r\r\n"
                    b"X-Switchboard-Signature: t=" + t.encode() + b",v1=" + v1.encode())
            j = demo_ask(d, head)
            assert j.get("signature_error") == want, (delta, j)
            assert j["signature"] == ("valid" if want is None else "invalid")
    finally:
        d.stop(sig=9)


# ---- the JavaScript verifier and the C one, on the same bytes ---------------------

NODE_SERVER = """
const http = require('node:http');
const { verifyRequest } = require(process.argv[1]);
const secrets = process.env.SECRETS.split(',');
const srv = http.createServer((req, res) => {
  res.end(String(verifyRequest(req, secrets, 300)));
});
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
"""


def unframed(head):
    """head without its body framing (not signed): sent with no body."""
    for name in (b"Content-Length", b"Transfer-Encoding"):
        head = edit(head, name, None)
    return head


def mutations(head):
    """head, then variants of it changed on the way (each must fail)."""
    _, _, h, _ = parse_head(head)
    yield "as forwarded", head, True
    for name, value in SIGNED_VALUES.items():
        yield f"{name.decode()} changed", edit(head, name, value), False
        if name.lower() in h:
            yield f"{name.decode()} removed", edit(head, name, None), h[name.lower()] == b""
            yield f"{name.decode()} twice", head + b"\r\n" + name + b": " + h[name.lower()], False
    line = head.split(b"\r\n", 1)[0]
    method, target, _ = line.split(b" ")
    path, q, query = target.partition(b"?")
    yield "method", retarget(head, method=b"PUT" if method != b"PUT" else b"GET"), False
    yield "path", retarget(head, target=path + b"x" + q + query), False
    yield "query", retarget(head, target=path + b"?" + query + b"&z=1"), False
    yield "absolute-form", retarget(head, target=b"http://" + h[b"host"] + target), False
    yield "host", edit(head, b"Host", b"other.revelations.studio"), False
    yield "signature twice", head + b"\r\nX-Switchboard-Signature: " + \
        h[b"x-switchboard-signature"], False


def test_js_and_c_verifiers_agree_on_what_the_edge_forwards(signing_edge, tmp_path):
    """Node's verifyRequest behind a real Node http server and the demo
    service's sb_sign_verify get the same bytes: every request the edge
    forwarded (tenant absent, queries, non-ASCII paths, rotation) and the
    same tampered; both say what the doc verifier says."""
    import shutil
    import subprocess
    node = shutil.which("node")
    assert node, "node is not on PATH"
    e = signing_edge
    for data in THROUGH_EDGE:
        assert send(e, data)[0] == 200, data
    secrets = e.secrets + e.api_secrets
    demo = start_demo("codex-web", "production", ",".join(secrets))
    e.procs.append(demo)
    proc = subprocess.Popen([node, "-e", NODE_SERVER, str(VERIFIER)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "SECRETS": ",".join(secrets)})
    try:
        port = int(proc.stdout.readline())

        def js(head):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(head + b"\r\nConnection: close\r\n\r\n")
            out = read_until_close(s, timeout=10)
            if out.startswith(b"HTTP/1.1 400 ") and not head.split(b" ")[1].isascii():
                # Node's server refuses such a target before any code of
                # ours runs; verify() gets the fields as Node gives strings
                # (one character per byte), as another framework would
                method, target, h, repeated = parse_head(head)
                path, _, query = target.partition(b"?")
                fields = {"method": method, "host": h.get(b"host", b""), "path": path,
                          "query": query, "headers": {k.decode(): v for k, v in h.items()}}
                fields = json.loads(json.dumps(fields, default=lambda b: b.decode("latin1")))
                p = subprocess.run(
                    [node, "-e", "const { verify } = require(process.argv[1]);"
                     "const c = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
                     "console.log(String(verify(c.f, c.s, 300)))", str(VERIFIER)],
                    input=json.dumps({"f": fields, "s": secrets}), capture_output=True,
                    text=True, timeout=30)
                assert p.returncode == 0, p.stderr
                return p.stdout.strip() == "true" and not repeated
            assert out.startswith(b"HTTP/1.1 200 "), (head, out[:200])
            return out.split(b"\r\n\r\n", 1)[1] == b"true"

        checked = 0
        for head in e.up.heads:
            for what, variant, want in mutations(unframed(head)):
                got = (doc_verify(variant, secrets), js(variant),
                       demo_ask(demo, variant)["signature"] == "valid")
                assert got == (want, want, want), (what, variant, got)
                checked += 1
        assert checked > 20 * len(THROUGH_EDGE)
    finally:
        proc.kill()
        proc.wait()


def test_header_parsing_agrees_between_c_js_and_the_doc():
    """Signature headers built from valid, odd and malformed items (spaces
    and tabs around them, unknown keys, an item that is only '=', a second
    t, upper-case hex, keys with a space...), in random orders: the demo's
    sb_sign_verify, the JavaScript verify and the doc verifier say the
    same of each (the JavaScript one took " = " for an unknown key)."""
    import random
    import subprocess
    secret = "11" * 32
    d = start_demo("codex-web", "production", secret)
    try:
        t = str(int(time.time()))
        base = b"GET /x HTTP/1.1\r\nHost: a.example.com\r\nX-Request-Id: r\r\n"
        msg = doc_canonical(t, b"GET", b"/x", {b"host": b"a.example.com", b"x-request-id": b"r"})
        v1 = hmac.new(bytes.fromhex(secret), msg, hashlib.sha256).hexdigest()
        pieces = [f"t={t}", f"v1={v1}", f"v1={v1.upper()}", f"v1={'ab' * 32}", "v0=zz", "t=1",
                  f"t=0{t}", "", " ", "=", " = ", "x", "v1", f"T={t}", f"V1={v1}", f"v1 ={v1}",
                  f"v1= {v1}", f"t ={t}", f"t= {t}", "a=b=c", f"v1={v1}=", f"t=+{t}",
                  "v2=" + "0" * 64, f"v1={v1[:-1]}", f"t={t}0"]
        rnd = random.Random(7)
        cases = []
        for _ in range(400):
            items = [rnd.choice(pieces) for _ in range(rnd.randint(1, 5))]
            if rnd.random() < 0.7:
                items.insert(rnd.randint(0, len(items)), f"t={t}")
                items.insert(rnd.randint(0, len(items)), f"v1={v1}")
            h = ",".join(rnd.choice(["", " ", "\t"]) + it + rnd.choice(["", " ", "\t"])
                         for it in items)
            cases.append(h.strip(" \t"))  # as a server hands a field value

        def doc(h):
            try:
                return doc_verify(base + b"X-Switchboard-Signature: " + h.encode(), [secret])
            except Malformed:
                return False
        js_in = [{"request": {"method": "GET", "host": "a.example.com", "path": "/x", "query": "",
                              "headers": {"x-request-id": "r", "x-switchboard-signature": h}},
                  "secrets": [secret], "tolerance": 300, "now": int(t)} for h in cases]
        p = subprocess.run(["node", "-e", """
const { verify } = require(process.argv[1]);
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(cases.map((c) => verify(c.request, c.secrets, c.tolerance, c.now))));
""", str(VERIFIER)], input=json.dumps(js_in), capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        js = json.loads(p.stdout)
        got = [(demo_ask(d, base + b"X-Switchboard-Signature: " + h.encode())["signature"] ==
                "valid", j, doc(h)) for h, j in zip(cases, js)]
        differ = [(h, g) for h, g in zip(cases, got) if len(set(g)) != 1]
        assert not differ, differ[:5]
        # both answers occur, plenty of each
        assert 30 < sum(g[0] for g in got) < 370
    finally:
        d.stop(sig=9)


def doc_python_snippet():
    """The Python verifier docs/signing.md shows, run as written."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "signing.md").read_text()
    code = re.search(r"\nPython:\n\n```python\n(.*?)```", doc, re.S).group(1)
    ns = {}
    exec(code, ns)
    return ns["canonical"]


def test_doc_python_snippet_builds_the_doc_s_string(signing_edge):
    """On every request the edge forwarded, and on hosts a forger may send
    straight to a service (bytes outside ASCII, which the doc keeps as they
    are: ASCII lower case only), the doc's snippet gives the doc's string.
    Python's str.lower() lowered 'À' and made 'µ' a character latin-1
    cannot encode (the snippet raised)."""
    canonical = doc_python_snippet()
    e = signing_edge
    for data in THROUGH_EDGE:
        assert send(e, data)[0] == 200
    heads = [unframed(h) for h in e.up.heads]
    heads += [edit(heads[0], b"Host", h) for h in
              (b"\xc0.Example.COM", b"\xb5x.example.com:80", b"[\xc9::1]:8", b"K\xe2\x84\xaa")]
    for head in heads:
        method, target, h, _ = parse_head(head)
        t, _ = doc_parse_header(h[b"x-switchboard-signature"].decode())
        path, _, query = target.partition(b"?")
        s = lambda b: b.decode("latin-1")  # noqa: E731 (how a WSGI server hands bytes)
        got = canonical(t, s(method), s(h[b"host"]), s(path), s(query),
                        {s(k): s(v) for k, v in h.items()})
        assert got == doc_canonical(t, method, target, h), head


def test_rotation_as_docs_signing_md_tells_it(fresh):
    """The operator's rotation, step by step (docs/signing.md, Secrets and
    rotation), with a service that knows only the old secret, one that
    knows only the new, and one that knows neither."""
    up = Scripted(answer_ok)
    e = fresh(threads=1, demos=False, upstreams={("codex-web", "production"): up.url})
    e.procs.append(up)
    e.up = up
    old = e.secret(DEPLOYMENT)
    e.start()

    def signed():
        head = forwarded(e, b"GET /r HTTP/1.1\r\nHost: codex.revelations.studio\r\n\r\n")
        return head, len(doc_parse_header(
            parse_head(head)[2][b"x-switchboard-signature"].decode())[1])

    def reload():
        n = len([l for l in e.edge.err if "reloaded" in l])
        run_cli("reload", "-c", e.dir, check=0)
        e.edge.wait_line(lambda l: "reloaded" in l and
                         len([x for x in e.edge.err if "reloaded" in x]) > n)

    head, n = signed()
    assert n == 1 and doc_verify(head, [old])
    # 1. the current key becomes the previous one; a new one is made
    (e.data / "secret.key").rename(e.data / "secret.key.previous")
    new, prev = e.secret(DEPLOYMENT).split(",")
    assert prev == old and new != old
    reload()
    head, n = signed()
    assert n == 2
    assert doc_verify(head, [old]) and doc_verify(head, [new])
    assert not doc_verify(head, ["cd" * 32])
    # 2. services have moved to the new secret: the previous one goes
    (e.data / "secret.key.previous").unlink()
    assert e.secret(DEPLOYMENT) == new
    reload()
    head, n = signed()
    assert n == 1 and doc_verify(head, [new]) and not doc_verify(head, [old])
