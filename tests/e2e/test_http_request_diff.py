"""`switchboard serve`, the client side, side by side with nginx: crafted
requests sent to the edge and to an nginx (Debian nginx-light) in front of a
recording upstream, compared by status, by whether anything was forwarded
and by the bytes forwarded. Where nginx refuses to forward, the edge must
too; the other tests here pin each defect the comparison found (each fails
without its fix), and that the signature covers exactly what the upstream
receives, for requests at the edges of what is accepted.
"""
import hashlib
import hmac
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from edge import Framed, listen_local, read_until_close, wait_for

HOST = "codex.revelations.studio"
H = HOST.encode()
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream up {{ server 127.0.0.1:{up}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_request_buffering off;
        }}
    }}
}}
"""


class Nginx:
    """nginx on a port the kernel picked, with a temporary prefix, in front of
    upstream_port; stop() kills it."""

    def __init__(self, tmp, upstream_port):
        self.dir = tmp
        os.chmod(tmp, 0o755)  # its workers may run as nobody
        # the port is taken from a socket that nginx replaces: bound,
        # closed, then nginx binds it (a race only with another bind)
        s, _ = listen_local()
        self.port = s.getsockname()[1]
        s.close()
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(d=tmp, up=upstream_port, port=self.port))
        self.p = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"),
                                   "-e", str(tmp / "error.log")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def ready():
            assert self.p.poll() is None, (tmp / "error.log").read_text()
            with socket.socket() as c:
                return c.connect_ex(("127.0.0.1", self.port)) == 0
        try:
            wait_for(ready, timeout=10, what="nginx listening")
        except BaseException:
            self.stop()
            raise

    def stop(self, sig=None):
        # SIGTERM: the master stops its worker, then exits (a SIGKILLed
        # master leaves its worker running)
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
        self.p.wait()


def send(port, data, timeout=2.0):
    """Send data on a fresh connection, half-close, and return what comes
    back until the peer closes (or timeout passes without a byte)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    try:
        return read_until_close(s, timeout)
    except ConnectionResetError:
        return b""


def statuses(out):
    return [int(m) for m in re.findall(rb"(?:^|\n)HTTP/1\.[01] (\d{3}) ", out)]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The edge (codex-web production is a Framed) and nginx in front of
    another Framed."""
    from edge import Edge
    erec, nrec = Framed(), Framed()
    e = Edge(tmp_path_factory.mktemp("diff"), threads=1, demos=False,
             upstreams={("codex-web", "production"): erec.url},
             http={"header_timeout_ms": 1000, "response_timeout_ms": 2000})
    e.procs.append(erec)
    e.procs.append(nrec)
    e.rec = erec
    e.start()
    n = None
    if NGINX:
        try:
            n = Nginx(tmp_path_factory.mktemp("nginx"), nrec.port)
        except BaseException:
            e.stop()
            raise
        n.rec = nrec
    yield e, n
    try:
        if n:
            n.stop()
    finally:
        e.stop()


def forwarded_through(e, data, timeout=2.0):
    """(statuses, bytes each upstream connection got) for data sent to e."""
    e.rec.take()
    out = send(e.port, data, timeout)
    time.sleep(0.05)  # what was forwarded, if anything, is in by now
    return statuses(out), e.rec.take(), out


def req(line, *headers, body=b""):
    return line + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


HOSTH = b"Host: " + H

# requests nginx never forwards: the edge must not either
REFUSED_BY_NGINX = {
    "connect_path": req(b"CONNECT /a HTTP/1.1", HOSTH),
    "connect_authority": req(b"CONNECT " + H + b":443 HTTP/1.1", HOSTH + b":443"),
    "connect_with_a_body": req(b"CONNECT /a HTTP/1.1", HOSTH, b"Content-Length: 40",
                               body=b"GET /smuggled HTTP/1.1\r\nHost: " + H + b"\r\n\r\n"),
    "http_2_0": req(b"GET /a HTTP/2.0", HOSTH),
    "http_0_9_version": req(b"GET /a HTTP/0.9", HOSTH),
    "http_1_0_chunked": req(b"POST /a HTTP/1.0", HOSTH, b"Connection: keep-alive",
                            b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\n\r\n"),
    "absolute_form_without_host": req(b"GET http://" + H + b":8080/a HTTP/1.1"),
    "dot_dot_above_root": req(b"GET /../a HTTP/1.1", HOSTH),
    "encoded_dot_dot": req(b"GET /%2e%2e/x HTTP/1.1", HOSTH),
    "encoded_nul_in_path": req(b"GET /a%00b HTTP/1.1", HOSTH),
    "userinfo": req(b"GET http://u:p@" + H + b"/a HTTP/1.1", HOSTH),
    "plus_content_length": req(b"POST /a HTTP/1.1", HOSTH, b"Content-Length: +5", body=b"hello"),
    "content_length_list": req(b"POST /a HTTP/1.1", HOSTH, b"Content-Length: 5, 5",
                               body=b"hello"),
    "chunked_with_parameter": req(b"POST /a HTTP/1.1", HOSTH, b"Transfer-Encoding: chunked;q=1",
                                  body=b"5\r\nhello\r\n0\r\n\r\n"),
    "chunked_twice": req(b"POST /a HTTP/1.1", HOSTH, b"Transfer-Encoding: chunked, chunked",
                         body=b"5\r\nhello\r\n0\r\n\r\n"),
    "identity": req(b"POST /a HTTP/1.1", HOSTH, b"Transfer-Encoding: identity", body=b"hello"),
    "chunk_size_with_space_before": req(b"POST /a HTTP/1.1", HOSTH, b"Transfer-Encoding: chunked",
                                        body=b" 5\r\nhello\r\n0\r\n\r\n"),
    "nul_in_value": req(b"GET /a HTTP/1.1", HOSTH, b"X-A: a\x00b"),
    "empty_header_name": req(b"GET /a HTTP/1.1", HOSTH, b": x"),
    "space_in_header_name": req(b"GET /a HTTP/1.1", HOSTH, b"X Y: x"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_BY_NGINX))
def test_what_nginx_refuses_is_never_forwarded(pair, case):
    e, n = pair
    data = REFUSED_BY_NGINX[case]
    if n:  # the premise: nginx refuses it (its answer, nothing upstream)
        n.rec.take()
        nst = statuses(send(n.port, data))
        time.sleep(0.05)
        assert n.rec.take() == [] and nst and nst[0] >= 400, (case, nst)
    st, fwd, out = forwarded_through(e, data)
    assert fwd == [], (case, fwd)
    assert st and st[0] >= 400 and len(st) == 1, (case, out[:300])
    assert b"Connection: close" in out


# ---- the defects, one by one ---------------------------------------------------

def test_connect_is_a_405_and_what_follows_it_is_never_a_request(pair):
    # llhttp ends a CONNECT at its head: it went upstream as an "upgrade"
    # with an empty Upgrade and a Content-Length whose body never came, and
    # the client waited until the upstream's timeout
    e, _ = pair
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: " + H + b"\r\n\r\n"
    st, fwd, out = forwarded_through(e, req(b"CONNECT /a HTTP/1.1", HOSTH,
                                            b"Content-Length: %d" % len(smuggled),
                                            body=smuggled))
    assert st == [405] and fwd == [], out[:300]


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/0.9"])
def test_a_request_line_in_another_major_version_is_a_505(pair, version):
    # llhttp reads any HTTP/d.d: "HTTP/2.0" went upstream as HTTP/1.1
    e, _ = pair
    st, fwd, out = forwarded_through(e, req(b"GET /v HTTP/" + version[5:], HOSTH))
    assert st == [505] and fwd == [], out[:300]


def test_transfer_encoding_in_http_1_0_is_a_400(pair):
    # RFC 9112 6.1: faulty framing; a 1.0 hop in front reads no body there
    e, _ = pair
    st, fwd, out = forwarded_through(e, req(
        b"POST /a HTTP/1.0", HOSTH, b"Connection: keep-alive", b"Transfer-Encoding: chunked",
        body=b"5\r\nhello\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: " + H + b"\r\n\r\n"))
    assert st == [400] and fwd == [], out[:300]


def test_absolute_form_needs_a_host_in_http_1_1_only(pair):
    e, _ = pair
    st, fwd, _ = forwarded_through(e, req(b"GET http://" + H + b"/a HTTP/1.1"))
    assert st == [400] and fwd == []
    st, fwd, _ = forwarded_through(e, req(b"GET http://" + H + b"/a HTTP/1.0"))
    assert st == [200] and len(fwd) == 1
    assert fwd[0].startswith(b"GET /a HTTP/1.1\r\nHost: " + H + b"\r\n")


# Paths a service resolves to another one than routing matched
DOT_PATHS = [b"/a/../b", b"/a/./b", b"/..", b"/.", b"/a/..", b"/a/%2e%2e/b", b"/a/%2E./b",
             b"/a/.%2e/b", b"/a/%2e/b", b"/a\\..\\b", b"/a/..\\b", b"/a/..;/b", b"/a/..?x=1",
             b"/a/.?x", b"/.well-known/../x",
             # separators a service that decodes first reads as such
             b"/api/..%2Fadmin", b"/a/%2e%2e%2fb", b"/a%2F..%2Fb", b"/a%5c..%5Cb", b"/a%2f."]
# look-alikes that are ordinary paths, and dots in a query
PLAIN_PATHS = [b"/a..b", b"/.well", b"/a/.hidden", b"/a/...", b"/a/..b", b"/a/b..",
               b"/a?x=/../y", b"/a?x=.", b"/%2ea", b"/a/.%2", b"/a//b", b"/a%2Fb",
               b"/a%2F.b", b"/a%2"]


@pytest.mark.parametrize("path", DOT_PATHS)
def test_a_dot_segment_in_the_path_is_a_400(pair, path):
    # routing matches the path as sent, a service resolves it: with routes
    # for /api/* and /*, "/api/../admin" reached api's /admin, signed
    e, _ = pair
    st, fwd, out = forwarded_through(e, req(b"GET " + path + b" HTTP/1.1", HOSTH))
    assert st == [400] and fwd == [], out[:300]
    assert b"dot segment" in out
    st, fwd, out = forwarded_through(e, req(b"GET http://" + H + path + b" HTTP/1.1", HOSTH))
    assert st == [400] and fwd == [], out[:300]


@pytest.mark.parametrize("path", PLAIN_PATHS)
def test_paths_with_dots_that_are_not_segments_are_forwarded_as_sent(pair, path):
    e, _ = pair
    st, fwd, out = forwarded_through(e, req(b"GET " + path + b" HTTP/1.1", HOSTH,
                                            b"Connection: close"))
    assert st == [200], out[:300]
    assert fwd[0].startswith(b"GET " + path + b" HTTP/1.1\r\n"), fwd


@pytest.mark.parametrize("target", [b"/a#frag", b"/a#/../b", b"/a?x#y", b"http://" + H + b"/a#f"])
def test_a_fragment_in_the_target_is_a_400(pair, target):
    # a service reads the path up to '#', routing read all of it
    e, _ = pair
    st, fwd, out = forwarded_through(e, req(b"GET " + target + b" HTTP/1.1", HOSTH))
    assert st == [400] and fwd == [], out[:300]


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_an_upgrade_with_a_body_is_forwarded_as_a_plain_request(pair, framing):
    # the head went upstream with the body's length and never the body: the
    # upstream waited for it, and the client for an answer
    e, _ = pair
    if framing == "length":
        head = [b"Content-Length: 5"]
        body = b"hello"
    else:
        head = [b"Transfer-Encoding: chunked"]
        body = b"5\r\nhello\r\n0\r\n\r\n"
    data = req(b"POST /up HTTP/1.1", HOSTH, b"Upgrade: foo", b"Connection: Upgrade", *head,
               body=body) + req(b"GET /next HTTP/1.1", HOSTH, b"Connection: close")
    st, fwd, out = forwarded_through(e, data, timeout=4)
    assert st == [200, 200], out[:400]
    got = b"".join(fwd)
    first = got.split(b"\r\n\r\n", 1)
    assert b"\r\nUpgrade:" not in first[0] and b"\r\nConnection:" not in first[0], first[0]
    assert first[1].startswith(body), got
    assert b"GET /next HTTP/1.1\r\n" in got


def test_chunk_extensions_are_bounded(pair):
    # extensions are dropped and counted toward no other limit: one endless
    # extension held the upstream connection as long as the client sent
    e, _ = pair
    head = req(b"POST /ext HTTP/1.1", HOSTH, b"Transfer-Encoding: chunked")
    # within the bound: served, the extensions gone
    st, fwd, _ = forwarded_through(e, head + b"5;a=" + b"b" * 8000 + b"\r\nhello\r\n0;x=y\r\n\r\n")
    assert st == [200] and len(fwd) == 1
    assert fwd[0].endswith(b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), fwd[0][-100:]
    # over it: a 400, and the upstream's request is cut off before the
    # chunk (the edge's first reads are small: the head may have gone up)
    st, fwd, out = forwarded_through(e, head + b"5;a=" + b"b" * 20000 + b"\r\nhello\r\n0\r\n\r\n")
    assert st == [400] and b"chunk extensions" in out, out[:300]
    assert b"hello" not in b"".join(fwd)
    # bare ";" (llhttp reports each as an empty name) count too
    st, fwd, out = forwarded_through(e, head + b"5" + b";" * 20000 + b"a\r\nhello\r\n0\r\n\r\n")
    assert st == [400] and b"chunk extensions and trailers" in out, out[:300]
    assert b"hello" not in b"".join(fwd)
    # and so do trailer fields, dropped as well
    st, fwd, _ = forwarded_through(e, head + b"5\r\nhello\r\n0\r\nX-T: " + b"a" * 8000 +
                                   b"\r\n\r\n")
    assert st == [200] and fwd[0].endswith(b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    st, fwd, out = forwarded_through(e, head + b"5\r\nhello\r\n0\r\n" +
                                     b"X-T: " + b"a" * 1000 + b"\r\n" * 1 +
                                     b"".join(b"X-%d: %s\r\n" % (k, b"b" * 1000)
                                              for k in range(20)) + b"\r\n")
    assert st == [400] and b"chunk extensions and trailers" in out, out[:300]
    # over it in small extensions of many chunks
    many = b"".join(b"1;" + b"e" * 1000 + b"\r\nx\r\n" for _ in range(20)) + b"0\r\n\r\n"
    st, fwd, out = forwarded_through(e, head + many)
    assert st == [400] and b"chunk extensions" in out, out[:300]
    assert not b"".join(fwd).endswith(b"0\r\n\r\n")
    # endless, streamed: the edge ends it at the bound
    s = e.connect()
    s.sendall(head + b"5;a=")
    sent = 0
    s.settimeout(5)
    try:
        while sent < 4 << 20:
            s.sendall(b"b" * 4096)
            sent += 4096
    except OSError:
        pass  # the edge closed: what it answered is in the socket
    out = read_until_close(s, resets=True)
    assert sent < 4 << 20 or out.startswith(b"HTTP/1.1 400 "), (sent, out[:200])


def test_a_chunked_body_split_at_every_byte_then_a_pipelined_request(pair):
    e, _ = pair
    body = b"5;ext=1\r\nhello\r\n3\r\n, w\r\n0\r\nX-Trailer: t\r\n\r\n"
    data = req(b"POST /split HTTP/1.1", HOSTH, b"Transfer-Encoding: chunked", body=body) + \
        req(b"GET /after HTTP/1.1", HOSTH, b"Connection: close")
    e.rec.take()
    s = e.connect()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    at = data.index(b"\r\n\r\n") + 4
    s.sendall(data[:at])
    for i in range(at, len(data)):
        s.sendall(data[i:i + 1])
        time.sleep(0.002)
    out = read_until_close(s)
    assert statuses(out) == [200, 200], out[:400]
    # this connection's two requests: a cut-off request of the test before
    # may be recorded late, when its upstream connection ends
    got = b"".join(x for x in e.rec.take()
                   if x.startswith((b"POST /split ", b"GET /after ")))
    head, rest = got.split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST /split HTTP/1.1\r\n")
    # the body as the upstream reads it: the data, no extension, no trailer
    data_out, pos = b"", 0
    while True:
        eol = rest.index(b"\r\n", pos)
        size = int(rest[pos:eol], 16)
        if size == 0:
            pos = eol + 4
            break
        data_out += rest[eol + 2:eol + 2 + size]
        pos = eol + 4 + size
    assert data_out == b"hello, w"
    assert rest[pos:].startswith(b"GET /after HTTP/1.1\r\n"), rest[pos:pos + 100]
    assert b"X-Trailer" not in got and b"ext=" not in got


# ---- what is signed is what is forwarded -------------------------------------

SIGNED = ["x-request-id", "traceparent", "x-forwarded-for", "x-forwarded-proto",
          "x-forwarded-host", "x-tenant-slug", "x-tenant-config",
          "x-switchboard-environment", "x-switchboard-deployment"]


def verify_forwarded(head, secret_hex):
    """Check the forwarded head's signature as a service would, from the
    bytes it received (docs/signing.md), and that every signed header and
    Host occurs once."""
    lines = head.split(b"\r\n")
    method, target, version = lines[0].split(b" ")
    assert version == b"HTTP/1.1"
    fields = {}
    for l in lines[1:]:
        name, _, value = l.partition(b":")
        fields.setdefault(name.lower().decode(), []).append(value.strip(b" \t"))
    for n in ["host", "x-switchboard-signature"] + SIGNED:
        assert len(fields.get(n, [b""])) == 1, (n, head)
    h = fields["host"][0].decode("latin-1")
    h = h[:h.index("]") + 1] if h.startswith("[") and "]" in h else h.split(":")[0]
    path, _, query = target.partition(b"?")
    sig = dict(kv.split(b"=", 1) for kv in fields["x-switchboard-signature"][0].split(b","))
    canon = [b"switchboard-v1", sig[b"t"], method, h.lower().encode("latin-1"), path, query]
    canon += [n.encode() + b":" + fields.get(n, [b""])[0] for n in SIGNED]
    mac = hmac.new(bytes.fromhex(secret_hex), b"".join(l + b"\n" for l in canon),
                   hashlib.sha256).hexdigest()
    assert hmac.compare_digest(mac, sig[b"v1"].decode()), head


ODD_BUT_SERVED = {
    "absolute_form_host_case_and_port": req(b"GET HTTP://CODEX.Revelations.Studio:8080/p?q=1 "
                                            b"HTTP/1.1", b"Host: codex.revelations.studio:8080"),
    "absolute_form_without_path": req(b"GET http://" + H + b"?only=query HTTP/1.1", HOSTH),
    "host_named_in_connection": req(b"GET /c HTTP/1.1", b"Host: CODEX.revelations.studio.:80",
                                    b"Connection: Host, X-Forwarded-Host, X-Request-Id"),
    "signed_headers_named_in_connection": req(
        b"GET /c HTTP/1.1", HOSTH, b"X-Request-Id: mine-1",
        b"Connection: X-Request-Id, traceparent, X-Switchboard-Signature"),
    "request_id_and_traceparent_with_spaces": req(
        b"GET /s HTTP/1.1", HOSTH, b"X-Request-Id:   spaced-id  ",
        b"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 "),
    "odd_path_and_query": req(b"GET //x/%2F/%01/\xc3\xa9;p=1?a=%20&b=?&c=/../ HTTP/1.1", HOSTH),
    "obs_text_header": req(b"GET /o HTTP/1.1", HOSTH, b"X-Obs: \xff\xfe"),
    "http_1_0_with_host": req(b"GET /ten?x HTTP/1.0", HOSTH),
    "duplicate_signed_headers_from_the_client": req(
        b"GET /d HTTP/1.1", HOSTH, b"X-Switchboard-Signature: t=1,v1=00",
        b"X-Switchboard-Signature: t=2,v1=11", b"X-Forwarded-For: 6.6.6.6",
        b"X-Forwarded-For: 7.7.7.7", b"X-Tenant-Slug: evil", b"x-tenant-config: {}"),
    "upgrade_without_connection": req(b"GET /u HTTP/1.1", HOSTH, b"Upgrade: h2c"),
}


@pytest.mark.parametrize("case", sorted(ODD_BUT_SERVED))
def test_the_signature_covers_exactly_what_the_upstream_receives(pair, case):
    e, _ = pair
    secret = e.secret("codex-web-production").split(",")[0]
    st, fwd, out = forwarded_through(e, ODD_BUT_SERVED[case])
    assert st == [200], out[:300]
    assert len(fwd) == 1
    verify_forwarded(fwd[0].split(b"\r\n\r\n", 1)[0], secret)
