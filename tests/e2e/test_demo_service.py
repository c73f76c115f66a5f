"""build/demo-service, the stand-in for the plan's services and the upstream of
the edge's end-to-end tests: endpoints, keep-alive and pipelining, signatures,
WebSocket.

Runs the binary named by $SB_DEMO (default build/demo-service). Each server
listens on port 0 and says where on stdout; the fixtures read that line, so no
test waits on a timer to know the server is up.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = os.environ.get("SB_DEMO", str(ROOT / "build" / "demo-service"))

SECRET = hashlib.sha256(b"current").hexdigest()
OLD_SECRET = hashlib.sha256(b"previous").hexdigest()
SIGNED = ["x-request-id", "traceparent", "x-forwarded-for", "x-forwarded-proto",
          "x-forwarded-host", "x-tenant-slug", "x-tenant-config",
          "x-switchboard-environment", "x-switchboard-deployment"]


class Server:
    def __init__(self, *args, env=None):
        self.proc = subprocess.Popen([DEMO, "--listen", "127.0.0.1:0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, **(env or {})})
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline().decode() if ready else ""
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        if not m:
            self.proc.kill()
            raise AssertionError(f"no 'listening on' line: {line!r} {self.proc.stderr.read()!r}")
        self.port = int(m.group(1))

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def sock(self, timeout=10):
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("demo-service did not exit on SIGTERM")
        err = self.proc.stderr.read().decode(errors="replace")
        self.proc.stdout.close()
        self.proc.stderr.close()
        assert rc == 0, f"exit {rc}: {err}"
        assert "Sanitizer" not in err and "runtime error" not in err, err


@pytest.fixture(scope="module")
def unhealthy_path(tmp_path_factory):
    return tmp_path_factory.mktemp("demo") / "unhealthy"


@pytest.fixture(scope="module")
def demo(request, unhealthy_path):
    srv = Server("--name", "codex-web", "--env", "staging", "--secret", SECRET,
                 "--unhealthy-file", str(unhealthy_path),
                 env={"SWITCHBOARD_SECRETS": f" {OLD_SECRET} ,"})
    request.addfinalizer(srv.stop)
    return srv


@pytest.fixture(scope="module")
def plain(request):
    """No secret: signatures are "unchecked"; name and environment from defaults."""
    env = {"ENVIRONMENT": "preview", "SWITCHBOARD_SECRETS": ""}
    srv = Server(env=env)
    request.addfinalizer(srv.stop)
    return srv


def get(srv, path, method="GET", headers=None, body=None):
    c = srv.conn()
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()


def get_json(srv, path, **kw):
    status, headers, body = get(srv, path, **kw)
    assert headers["content-type"] == "application/json"
    return status, json.loads(body)


def recv_until_close(s):
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            return out
        out += b


def read_response(f):
    """One response from a socket file: (status, headers, body) for Content-Length bodies."""
    status = int(f.readline().split()[1])
    headers = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        k, v = line.decode().split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = f.read(int(headers.get("content-length", 0)))
    return status, headers, body


# ---- /health ------------------------------------------------------------------

def test_health_has_the_plans_shape(demo):
    status, j = get_json(demo, "/health")
    assert status == 200
    assert list(j) == ["status", "worker", "environment", "timestamp"]
    assert j["status"] == "healthy" and j["worker"] == "codex-web"
    assert j["environment"] == "staging"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", j["timestamp"])


def test_health_follows_the_unhealthy_file(demo, unhealthy_path):
    unhealthy_path.write_text("")
    try:
        status, j = get_json(demo, "/health")
        assert status == 503 and j["status"] == "unhealthy" and j["worker"] == "codex-web"
    finally:
        unhealthy_path.unlink()
    assert get_json(demo, "/health")[0] == 200


def test_defaults_from_the_environment(plain):
    status, j = get_json(plain, "/health")
    assert j["worker"] == "demo-service" and j["environment"] == "preview"


# ---- echo ---------------------------------------------------------------------

def test_echo_with_content_length_body(demo):
    body = os.urandom(300000)
    status, j = get_json(demo, "/api/things?a=1&b=two", method="POST", body=body,
                         headers={"X-Tenant-Slug": "acme", "X-Custom": "Value",
                                  "X-Switchboard-Deployment": "codex-web-staging"})
    assert status == 200
    assert j["worker"] == "codex-web" and j["environment"] == "staging"
    assert j["method"] == "POST" and j["path"] == "/api/things" and j["query"] == "a=1&b=two"
    assert j["body_bytes"] == len(body)
    assert j["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert j["headers"]["x-custom"] == "Value"
    assert j["headers"]["content-length"] == str(len(body))
    assert j["tenant"] == "acme" and j["deployment"] == "codex-web-staging"


def test_echo_with_chunked_body(demo):
    parts = [b"first part,", os.urandom(70000), b"", b"last"]
    c = demo.conn()
    c.request("PUT", "/upload", body=iter(parts), encode_chunked=True,
              headers={"Transfer-Encoding": "chunked"})
    r = c.getresponse()
    j = json.loads(r.read())
    c.close()
    whole = b"".join(parts)
    assert r.status == 200
    assert j["headers"]["transfer-encoding"] == "chunked"
    assert j["body_bytes"] == len(whole)
    assert j["body_sha256"] == hashlib.sha256(whole).hexdigest()


def test_echo_without_body_and_null_fields(plain):
    status, j = get_json(plain, "/")
    assert j["path"] == "/" and j["query"] == "" and j["body_bytes"] == 0
    assert j["body_sha256"] == hashlib.sha256(b"").hexdigest()
    assert j["tenant"] is None and j["deployment"] is None
    assert j["signature"] == "unchecked"


def test_repeated_headers_are_joined(demo):
    s = demo.sock()
    s.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nConnection: close\r\n\r\n")
    f = s.makefile("rb")
    status, headers, body = read_response(f)
    s.close()
    assert json.loads(body)["headers"]["x-a"] == "1, 2"


def test_expect_100_continue(demo):
    s = demo.sock()
    s.sendall(b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    f = s.makefile("rb")
    assert f.readline() == b"HTTP/1.1 100 Continue\r\n" and f.readline() == b"\r\n"
    s.sendall(b"hello")
    status, headers, body = read_response(f)
    s.close()
    assert status == 200 and json.loads(body)["body_bytes"] == 5


# ---- signatures -----------------------------------------------------------------

def canonical(t, method, host, path, query, headers):
    """The canonical string of docs/signing.md, written again in Python."""
    h = host.strip(" \t")
    h = h[:h.index("]") + 1] if h.startswith("[") and "]" in h else h.split(":")[0]
    hdrs = {k.lower(): v for k, v in headers.items()}
    lines = ["switchboard-v1", str(t), method, h.lower(), path, query]
    lines += [f"{name}:{hdrs.get(name, '').strip(' ' + chr(9))}" for name in SIGNED]
    return "".join(line + "\n" for line in lines)


def sign(secrets, t, method, host, path, query, headers):
    c = canonical(t, method, host, path, query, headers).encode()
    v1 = [hmac.new(bytes.fromhex(s), c, hashlib.sha256).hexdigest() for s in secrets]
    return f"t={t}," + ",".join(f"v1={v}" for v in v1)


def signed_request(srv, secrets, t=None, tamper=None, method="POST", path="/hook",
                   query="id=7"):
    host = f"api.revelations.studio:{srv.port}"
    headers = {"Host": host, "X-Request-Id": "r-1", "X-Forwarded-For": "198.51.100.2",
               "X-Forwarded-Proto": "https", "X-Tenant-Slug": "acme",
               "X-Switchboard-Environment": "staging",
               "X-Switchboard-Deployment": "stripe-webhook-handler-staging"}
    t = int(time.time()) if t is None else t
    headers["X-Switchboard-Signature"] = sign(secrets, t, method, host, path, query, headers)
    if tamper:
        tamper(headers)
        path = headers.pop("_path", path)
    return get_json(srv, f"{path}?{query}", method=method, headers=headers, body=b"{}")[1]


def test_signature_valid(demo):
    j = signed_request(demo, [SECRET])
    assert j["signature"] == "valid", j
    assert j["deployment"] == "stripe-webhook-handler-staging"


def test_signature_rotation_either_key(demo):
    # the service knows both (flag + SWITCHBOARD_SECRETS); the edge may sign with
    # the new one, the old one, or both, in either order
    assert signed_request(demo, [OLD_SECRET])["signature"] == "valid"
    assert signed_request(demo, [SECRET, OLD_SECRET])["signature"] == "valid"
    assert signed_request(demo, [hashlib.sha256(b"x").hexdigest(), OLD_SECRET])[
        "signature"] == "valid"


@pytest.mark.parametrize("tamper", [
    lambda h: h.update({"X-Tenant-Slug": "evil"}),
    lambda h: h.update({"X-Request-Id": "r-2"}),
    lambda h: h.update({"X-Switchboard-Deployment": "codex-web-production"}),
    lambda h: h.update({"X-Tenant-Config": "{}"}),
    lambda h: h.update({"Host": "auth.revelations.studio"}),
    lambda h: h.update({"_path": "/other"}),
    lambda h: h.update({"X-Switchboard-Signature": h["X-Switchboard-Signature"][:-1] + "0"
                        if not h["X-Switchboard-Signature"].endswith("0")
                        else h["X-Switchboard-Signature"][:-1] + "1"}),
], ids=["tenant", "request-id", "deployment", "added-header", "host", "path", "sig-bit"])
def test_signature_invalid_when_tampered(demo, tamper):
    j = signed_request(demo, [SECRET], tamper=tamper)
    assert j["signature"] == "invalid" and j["signature_error"] == "not found", j


def test_signature_invalid_with_unknown_key_stale_or_malformed(demo):
    j = signed_request(demo, [hashlib.sha256(b"other").hexdigest()])
    assert j["signature"] == "invalid"
    j = signed_request(demo, [SECRET], t=int(time.time()) - 3600)
    assert j["signature"] == "invalid" and j["signature_error"] == "value out of range"
    j = signed_request(demo, [SECRET], tamper=lambda h: h.update(
        {"X-Switchboard-Signature": "t=1,v1=zz"}))
    assert j["signature"] == "invalid" and j["signature_error"] == "invalid input"


def test_signature_missing_and_unchecked(demo, plain):
    assert get_json(demo, "/hook")[1]["signature"] == "missing"
    assert get_json(plain, "/hook", headers={"X-Switchboard-Signature": "t=1,v1=00"})[1][
        "signature"] == "unchecked"


def test_sign_example_matches_python():
    p = subprocess.run([DEMO, "--sign-example"], capture_output=True, text=True, timeout=30,
                       check=True)
    ex = json.loads(p.stdout)
    assert ex["canonical"] == canonical(ex["t"], ex["method"], ex["host"], ex["path"],
                                        ex["query"], ex["headers"])
    assert ex["header"] == sign(ex["secrets"], ex["t"], ex["method"], ex["host"], ex["path"],
                                ex["query"], ex["headers"])
    assert ex["header"].startswith(
        "t=1700000000,v1=4f44d975cebf480de90b35d9f4867667eb70640f61637c854b0e9a04a0a9fb11,v1=")


# ---- /ws ----------------------------------------------------------------------------

class WS:
    def __init__(self, srv):
        self.s = srv.sock()
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                        f"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.f = self.s.makefile("rb")
        assert self.f.readline() == b"HTTP/1.1 101 Switching Protocols\r\n"
        headers = {}
        while (line := self.f.readline()) != b"\r\n":
            k, v = line.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        want = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        assert headers["sec-websocket-accept"] == want
        assert headers["upgrade"].lower() == "websocket"

    def send(self, op, payload, fin=True, mask=True):
        b0 = (0x80 if fin else 0) | op
        n = len(payload)
        m = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, m | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, m | 126, n)
        else:
            head = struct.pack("!BBQ", b0, m | 127, n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            head += key
        self.s.sendall(head + payload)

    def recv(self):
        b0, b1 = self.f.read(2)
        assert not b1 & 0x80, "server frames are not masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.f.read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.f.read(8))[0]
        return b0 & 0x80 != 0, b0 & 0x0F, self.f.read(n)


def test_ws_echo_text_binary_ping_close(demo):
    ws = WS(demo)
    ws.send(1, "héllo".encode())
    assert ws.recv() == (True, 1, "héllo".encode())
    big = os.urandom(70000)  # 64-bit length
    ws.send(2, big)
    assert ws.recv() == (True, 2, big)
    mid = os.urandom(300)  # 16-bit length
    ws.send(2, mid)
    assert ws.recv() == (True, 2, mid)
    ws.send(9, b"are you there")
    assert ws.recv() == (True, 10, b"are you there")
    ws.send(1, b"frag-", fin=False)
    ws.send(0, b"ment")
    assert ws.recv() == (False, 1, b"frag-")
    assert ws.recv() == (True, 0, b"ment")
    ws.send(8, struct.pack("!H", 1000) + b"bye")
    assert ws.recv() == (True, 8, struct.pack("!H", 1000))
    assert ws.f.read() == b""  # then the server closes
    ws.s.close()


def test_ws_unmasked_frame_is_a_protocol_error(demo):
    ws = WS(demo)
    ws.send(1, b"x", mask=False)
    assert ws.recv() == (True, 8, struct.pack("!H", 1002))
    ws.s.close()


def test_ws_without_upgrade_is_refused(demo):
    status, headers, body = get(demo, "/ws")
    assert status == 426


# ---- /slow, /stream, /big, /crash, /status -------------------------------------

def test_slow_waits_without_blocking_others(demo):
    c = demo.conn()
    start = time.monotonic()
    c.request("GET", "/slow?ms=1500")
    # the loop is free meanwhile: another connection is answered long before
    # the slow one (a margin a loaded machine does not eat)
    assert get(demo, "/health")[0] == 200
    assert time.monotonic() - start < 1.0
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read())["slept_ms"] == 1500
    assert time.monotonic() - start >= 1.5
    c.close()
    assert get(demo, "/slow?ms=abc")[0] == 400


def test_stream_is_chunked_and_paced(demo):
    s = demo.sock()
    start = time.monotonic()
    s.sendall(b"GET /stream?chunks=4&ms=50 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    raw = recv_until_close(s)
    s.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"".join(b"8\r\nchunk %d\n\r\n" % i for i in range(4)) + b"0\r\n\r\n"
    assert time.monotonic() - start >= 0.15
    status, headers, data = get(demo, "/stream?chunks=3&ms=0")
    assert data == b"chunk 0\nchunk 1\nchunk 2\n"


def test_big(demo):
    status, headers, body = get(demo, "/big?bytes=3000000")
    assert status == 200 and int(headers["content-length"]) == 3000000 == len(body)
    alphabet = b"abcdefghijklmnopqrstuvwxyz\n"
    assert body == (alphabet * (3000000 // 27 + 1))[:3000000]


def test_crash_dies_mid_response(demo):
    s = demo.sock()
    s.sendall(b"GET /crash HTTP/1.1\r\nHost: x\r\n\r\n")
    raw = recv_until_close(s)
    s.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Content-Length: 100000" in head and body == b"0123456789"
    c = demo.conn()
    c.request("GET", "/crash")
    with pytest.raises(http.client.IncompleteRead):
        c.getresponse().read()
    c.close()


@pytest.mark.parametrize("code", [200, 201, 302, 404, 418, 500, 503])
def test_status(demo, code):
    status, headers, body = get(demo, f"/status/{code}")
    assert status == code and json.loads(body)["status"] == code


def test_status_without_body_and_out_of_range(demo):
    status, headers, body = get(demo, "/status/204")
    assert status == 204 and body == b"" and "content-length" not in headers
    for bad in ("/status/99", "/status/600", "/status/abc", "/status/2000"):
        assert get(demo, bad)[0] == 400, bad


# ---- HTTP mechanics ---------------------------------------------------------------

def test_head_has_length_but_no_body(demo):
    c = demo.conn()
    for path in ("/health", "/anything", "/big?bytes=12345", "/status/404"):
        c.request("HEAD", path)
        r = c.getresponse()
        assert r.read() == b""
        assert int(r.getheader("Content-Length")) > 0, path
    c.request("GET", "/status/201")  # the connection is still in step
    r = c.getresponse()
    assert r.status == 201 and json.loads(r.read())["status"] == 201
    c.close()


def test_keep_alive_two_requests_one_connection(demo):
    s = demo.sock()
    f = s.makefile("rb")
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = read_response(f)
    assert status == 200 and headers["connection"] == "keep-alive"
    s.sendall(b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    status, headers, body = read_response(f)
    assert status == 200 and json.loads(body)["path"] == "/second"
    s.sendall(b"GET /third HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers, body = read_response(f)
    assert headers["connection"] == "close" and f.read() == b""
    s.close()


def test_pipelined_requests_answer_in_order(demo):
    s = demo.sock()
    f = s.makefile("rb")
    s.sendall(b"GET /slow?ms=100 HTTP/1.1\r\nHost: x\r\n\r\n"
              b"POST /one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"3\r\nabc\r\n0\r\n\r\n"
              b"GET /big?bytes=5 HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
    assert json.loads(read_response(f)[2])["slept_ms"] == 100
    one = json.loads(read_response(f)[2])
    assert one["path"] == "/one" and one["body_bytes"] == 3
    assert read_response(f)[2] == b"abcde"
    assert json.loads(read_response(f)[2])["path"] == "/two"
    s.close()


def test_http10_without_keep_alive_closes(demo):
    s = demo.sock()
    s.sendall(b"GET /stream?chunks=2&ms=0 HTTP/1.0\r\n\r\n")
    raw = recv_until_close(s)
    s.close()
    assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"\r\n\r\nchunk 0\nchunk 1\n")
    assert b"chunked" not in raw


@pytest.mark.parametrize("junk", [
    b"BLAH / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello
])
def test_malformed_request_gets_400_and_close(demo, junk):
    s = demo.sock()
    s.sendall(junk)
    raw = recv_until_close(s)
    s.close()
    assert re.match(rb"HTTP/1\.1 4(00|14) ", raw), raw[:100]
    assert b"Connection: close" in raw
    assert get(demo, "/health")[0] == 200  # and the server lives on


def test_many_concurrent_connections(demo):
    socks = [demo.sock() for _ in range(50)]
    for i, s in enumerate(socks):
        s.sendall(b"GET /slow?ms=50&i=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % i)
    start = time.monotonic()
    for s in socks:
        raw = recv_until_close(s)
        s.close()
        assert raw.startswith(b"HTTP/1.1 200")
    assert time.monotonic() - start < 2  # in parallel, not 50 x 50 ms in a row


def test_client_vanishing_mid_response_is_harmless(demo):
    for path in (b"/big?bytes=50000000", b"/slow?ms=50", b"/stream?chunks=100&ms=1"):
        s = demo.sock()
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # RST
    assert get(demo, "/health")[0] == 200
