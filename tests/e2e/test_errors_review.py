"""The edge's own error responses, its limits and its access log, as an
nginx or HAProxy operator probes them: Accept negotiation, the request id
in every error, exact limit boundaries, and an access log that stays valid
JSON whatever a client sends."""
import base64
import datetime
import json
import os
import socket
import threading
import time

import pytest

from edge import (Recorder, Scripted, preload_env, raw, read_response, read_until_close,
                  refused_at_the_limit, request, shim, wait_for)
from test_lifecycle_review import unread_by_edge

HOST = b"Host: codex.revelations.studio\r\n"
CHROME = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
          "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CURL = "*/*"


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    from edge import Edge
    e = Edge(tmp_path_factory.mktemp("errors")).start()
    yield e
    e.stop()


def check_error_body(status, hdrs, body, want, code=None):
    """The error's body has the form `want` ("html" or "json") and carries
    the request id the response header names."""
    rid = hdrs["x-request-id"]
    assert rid
    assert int(hdrs["content-length"]) == len(body)
    if want == "html":
        assert hdrs["content-type"] == "text/html; charset=utf-8", hdrs
        assert body.startswith(b"<!doctype html>") and rid.encode() in body, body
        assert str(status).encode() in body
    else:
        assert hdrs["content-type"] == "application/json", hdrs
        j = json.loads(body)
        assert j["status"] == status and j["request_id"] == rid, j
        if code:
            assert j["error"] == code, j


# ---- Accept ----------------------------------------------------------------

@pytest.mark.parametrize("accept,want", [
    ([], "json"),
    (["text/html"], "html"),
    ([CHROME], "html"),
    ([FIREFOX], "html"),
    ([CURL], "json"),
    # media types are case-insensitive (RFC 9110 8.3.1)
    (["TEXT/HTML"], "html"),
    (["Text/Html; charset=utf-8"], "html"),
    # q=0 is "not acceptable" (RFC 9110 12.4.2)
    (["text/html;q=0"], "json"),
    (["text/html; q=0.000, */*"], "json"),
    (["application/json;q=0, text/html"], "html"),
    (["application/json;q=0.5, text/html"], "html"),
    (["application/json, text/html;q=0.5"], "json"),
    # both equally: JSON (API clients often list text/html too)
    (["text/html, application/json"], "json"),
    # a longer name is another type
    (["text/htmlx"], "json"),
    (["application/jsonx, text/html"], "html"),
    # text/* takes HTML and not JSON
    (["text/*"], "html"),
    (["application/*"], "json"),
    (["text/plain"], "json"),
    # one list in several fields (RFC 9110 5.3)
    (["application/json;q=0.1", "text/html"], "html"),
    (["text/html", "application/json"], "json"),
])
def test_error_body_follows_accept_negotiation(edge, accept, want):
    s = edge.connect()
    s.sendall(b"GET /x HTTP/1.1\r\nHost: nope.revelations.studio\r\n" +
              b"".join(b"Accept: " + a.encode() + b"\r\n" for a in accept) + b"\r\n")
    status, hdrs, body, _ = read_response(s)
    s.close()
    assert status == 404
    check_error_body(status, hdrs, body, want, "not_found")


def test_an_error_to_head_has_the_length_and_no_body(edge):
    s = edge.connect()
    for accept in (b"text/html", b"application/json"):
        s.sendall(b"GET /x HTTP/1.1\r\nHost: nope.revelations.studio\r\nAccept: " + accept +
                  b"\r\nX-Request-Id: head-len-1\r\n\r\n")
        _, ghdrs, gbody, _ = read_response(s)
        s.sendall(b"HEAD /x HTTP/1.1\r\nHost: nope.revelations.studio\r\nAccept: " + accept +
                  b"\r\nX-Request-Id: head-len-1\r\n\r\n")
        status, hhdrs, _, rest = read_response(s, head_only=True)
        assert status == 404 and rest == b""
        assert hhdrs["content-length"] == ghdrs["content-length"] == str(len(gbody))
        assert hhdrs["content-type"] == ghdrs["content-type"]
        assert hhdrs["connection"] == "keep-alive"
    # no body came: the connection's next answer starts right there
    assert request(edge, "codex.revelations.studio", "/health", sock=s)[0] == 200
    s.close()


# ---- errors made before the head is parsed ----------------------------------

def test_errors_before_the_head_is_parsed_follow_accept_and_keep_the_client_id(fresh):
    # a browser whose cookies grew past the limit gets its 431 as HTML, and
    # a client's own request id comes back on a 431, a 400 or a 408 as on
    # any other answer (it was replaced by a random one)
    # (a header timeout no loaded machine reaches before the edge reads
    # the cases sent whole; the 408 case waits it out)
    e = fresh(http={"max_header_bytes": 2048, "header_timeout_ms": 1500}).start()
    lines = (b"GET / HTTP/1.1\r\n" + HOST + b"Accept: " + FIREFOX.encode() + b"\r\n"
             b"X-Request-Id: early-1\r\n")
    cases = [
        (lines + b"Cookie: " + b"c" * 4000 + b"\r\n\r\n", 431),
        (lines + b"X-Bad: a\nb\r\n\r\n", 400),  # a bare LF
        (lines + b"X-Half: ", 408),  # never finished
    ]
    for data, status in cases:
        s = e.connect()
        s.sendall(data)
        st, hdrs, body, _ = read_response(s)
        s.close()
        assert st == status
        assert hdrs["x-request-id"] == "early-1", (status, hdrs)
        check_error_body(st, hdrs, body, "html")
    s = e.connect()
    s.sendall(b"GET / HTTP/1.1\r\n" + HOST + b"Accept: application/json\r\n"
              b"X-Request-Id: early-2\r\nCookie: " + b"c" * 4000 + b"\r\n\r\n")
    st, hdrs, body, _ = read_response(s)
    s.close()
    assert st == 431 and hdrs["x-request-id"] == "early-2"
    check_error_body(st, hdrs, body, "json", "headers_too_large")
    # a request id that is not a sane token is not echoed
    s = e.connect()
    s.sendall(b"GET / HTTP/1.1\r\n" + HOST + b"X-Request-Id: <script>\r\nCookie: " +
              b"c" * 4000 + b"\r\n\r\n")
    st, hdrs, body, _ = read_response(s)
    s.close()
    assert st == 431 and len(hdrs["x-request-id"]) == 32 and b"<script>" not in body
    # the access log names the host of the refused request, and its id
    logs = wait_log(e, lambda l: l["request_id"] == "early-2")
    assert logs["status"] == 431 and logs["host"] == "codex.revelations.studio"


def test_a_request_line_over_the_limit_is_414(fresh):
    e = fresh(http={"max_header_bytes": 2048}).start()
    out = raw(e, b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", timeout=10)
    assert out.startswith(b"HTTP/1.1 414 URI Too Long\r\n"), out[:100]
    head, body = out.split(b"\r\n\r\n", 1)
    assert json.loads(body)["error"] == "uri_too_long"
    assert b"\r\nConnection: close\r\n" in head + b"\r\n"
    # unfinished too: no waiting for the rest of a line already too long
    s = e.connect()
    s.sendall(b"GET /" + b"a" * 3000)
    assert read_until_close(s, timeout=10).startswith(b"HTTP/1.1 414 ")
    # a short request line in a head over the limit is the fields' fault
    out = raw(e, b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 3000 + b"\r\n\r\n",
              timeout=10)
    assert out.startswith(b"HTTP/1.1 431 "), out[:100]


# ---- limits ---------------------------------------------------------------

def head_of(size, path=b"/.well-known/switchboard/health"):
    """A request head of exactly size bytes."""
    base = b"GET " + path + b" HTTP/1.1\r\n" + HOST + b"X-Pad: \r\n\r\n"
    pad = size - len(base)
    assert pad >= 0
    return base.replace(b"X-Pad: ", b"X-Pad: " + b"p" * pad)


def test_header_bytes_boundary(fresh):
    e = fresh(http={"max_header_bytes": 2048}).start()
    for size, status in [(2047, 200), (2048, 200), (2049, 431)]:
        h = head_of(size)
        assert len(h) == size
        s = e.connect()
        s.sendall(h)
        st, _, _, _ = read_response(s)
        s.close()
        assert st == status, size


def test_body_bytes_boundary_and_what_the_upstream_sees(fresh):
    rec = Recorder()
    e = fresh(http={"max_body_bytes": 1000}, upstreams={("codex-web", "production"): rec.url})
    e.procs.append(rec)
    e.start()

    def chunked(n, marker):
        # two chunks, so that the limit is crossed inside the stream
        a = n // 2
        return (b"POST /" + marker + b" HTTP/1.1\r\n" + HOST +
                b"Transfer-Encoding: chunked\r\n\r\n" +
                b"%x\r\n" % a + b"x" * a + b"\r\n" + b"%x\r\n" % (n - a) + b"y" * (n - a) +
                b"\r\n0\r\n\r\n")

    def length(n, marker):
        return (b"POST /" + marker + b" HTTP/1.1\r\n" + HOST + b"Content-Length: %d\r\n\r\n" % n +
                b"x" * n)
    for make in (chunked, length):
        for n, status in [(999, 200), (1000, 200), (1001, 413)]:
            marker = b"%s-%d" % (make.__name__.encode(), n)
            s = e.connect()
            s.sendall(make(n, marker))
            st, hdrs, body, _ = read_response(s)
            s.close()
            assert st == status, (make.__name__, n, body)
            if status == 413:
                check_error_body(st, hdrs, body, "json", "body_too_large")
                assert hdrs["connection"] == "close"
    # a request within the limit, last: what was forwarded is complete, and
    # a body over the limit the edge already held never went upstream
    assert request(e, "codex.revelations.studio", "/last", method="POST", body=b"z")[0] == 200
    # what the edge sent upstream is all in: nothing unread at the
    # recorder, and every connection the edge closed seen to its end (a
    # request cut off is recorded then)
    wait_for(lambda: upstream_settled(rec.port), what="the upstream's connections settled")
    with rec.lock:
        got = list(rec.received)
    for make in (chunked, length):
        for n in (999, 1000):
            marker = b"%s-%d" % (make.__name__.encode(), n)
            mine = [r for r in got if b"/" + marker + b" " in r]
            assert len(mine) == 1, marker
            body = mine[0].split(b"\r\n\r\n", 1)[1]
            assert body.count(b"x") + body.count(b"y") == n, (marker, body[-40:])
        over = b"/%s-1001 " % make.__name__.encode()
        assert not [r for r in got if over in r], (over, got)


def upstream_settled(port):
    """No connection to the local upstream on port holds bytes it has not
    read, nor waits for it to see a close (CLOSE_WAIT) (/proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fl = line.split()
            if int(fl[1].split(":")[1], 16) != port or fl[2] == "00000000:0000":
                continue
            if fl[3] == "08" or int(fl[4].split(":")[1], 16):
                return False
    return True


def test_a_trickled_head_is_cut_at_the_deadline(fresh):
    # one byte at a time does not restart the header timeout
    e = fresh(http={"header_timeout_ms": 700}).start()
    s = e.connect()
    s.settimeout(0.05)
    data = b"GET / HTTP/1.1\r\n" + HOST + b"X-Slow: " + b"s" * 200
    t0 = time.monotonic()
    got = b""
    for b in data:
        try:
            s.send(bytes([b]))
        except OSError:
            break
        try:
            got += s.recv(4096)
        except socket.timeout:
            pass
        if got:
            break
    elapsed = time.monotonic() - t0
    s.settimeout(3)
    while b"\r\n\r\n" not in got:
        more = s.recv(4096)
        if not more:
            break
        got += more
    s.close()
    assert got.startswith(b"HTTP/1.1 408 "), got[:60]
    # restarted by each byte, it would never come: the trickle lasts more
    # than 10 s (a byte every 50 ms at best)
    assert 0.6 < elapsed < 5.0, elapsed


def test_max_connections_refusal_is_reported(fresh):
    # a connection refused at the limit is closed (nginx does the same);
    # the operator learns why from a warning on stderr
    e = fresh(http={"max_connections": 2}, threads=1).start()
    socks = [e.connect() for _ in range(2)]
    for s in socks:
        s.sendall(b"GET /health HTTP/1.1\r\n")  # busy: never taken
    # both taken by the edge before the third comes
    wait_for(lambda: all(unread_by_edge(e, s) == 0 for s in socks), what="both heads read")
    assert e.status()["connections"] == 2
    refused_at_the_limit(e)
    line = e.edge.wait_line(lambda l: "max_connections" in l)
    assert "warning" in line and "max_connections (2) reached" in line, line
    # the two it holds are still served
    for s in socks:
        s.sendall(b"Host: codex.revelations.studio\r\n\r\n")
        assert read_response(s)[0] == 200
        s.close()


# ---- access log -----------------------------------------------------------

def wait_log(e, pred, timeout=10):
    """The first access log line (on the edge's stdout) pred is true of."""
    return wait_for(lambda: next((l for l in e.access_log() if pred(l)), None), timeout,
                    what="the access log line")


def test_access_log_is_valid_json_whatever_the_path_holds(fresh, tmp_path):
    # bytes that are not UTF-8 in a path are forwarded as sent; in the log
    # they are U+FFFD, so that every line parses as JSON (RFC 8259: UTF-8)
    path = tmp_path / "access.log"
    e = fresh(http={"access_log": str(path)}).start()
    paths = [b"/caf\xc3\xa9", b"/\xff\xfe", b"/a\xc3", b"/\xc0\xaf", b"/\xed\xa0\x80",
             b"/\xf4\x90\x80\x80", b"/q\"\\'x", b"/\xe2\x82", b"/\xf0\x9f\x98\x80"]
    for i, p in enumerate(paths):
        s = e.connect()
        s.sendall(b"GET " + p + b" HTTP/1.1\r\n" + HOST + b"X-Request-Id: utf8-%d\r\n\r\n" % i)
        st, _, _, _ = read_response(s)
        s.close()
        assert st == 200, p
    lines = wait_for(lambda: [ls for ls in [path.read_bytes().splitlines()]
                              if sum(b'"utf8-' in l for l in ls) == len(paths)],
                     timeout=10, what="every request logged")[0]
    got = {}
    for l in lines:
        j = json.loads(l.decode("utf-8"))  # strict: invalid UTF-8 fails here
        got[j["request_id"]] = j["path"]
    want = [p.decode("utf-8", errors="replace") for p in paths]
    # Python replaces a maximal invalid subpart with one U+FFFD, the edge
    # each invalid byte: compare with the replacement characters collapsed
    import re

    def squash(x):
        return re.sub("\ufffd+", "\ufffd", x)
    assert [squash(got[f"utf8-{i}"]) for i in range(len(paths))] == [squash(w) for w in want]
    assert got["utf8-0"] == "/café" and got["utf8-8"] == "/\U0001F600"


def test_access_log_counts_the_bytes_each_way(fresh):
    # bytes_out is what the client received (head and body), bytes_in the
    # body it sent; for a WebSocket, every byte through the tunnel
    e = fresh().start()
    s = e.connect()
    body = b"b" * 1234
    s.sendall(b"POST /echo HTTP/1.1\r\n" + HOST + b"X-Request-Id: count-1\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    got = read_until_close(s)
    l = wait_log(e, lambda l: l["request_id"] == "count-1")
    assert (l["bytes_in"], l["bytes_out"]) == (len(body), len(got))
    got = raw(e, b"GET /x HTTP/1.1\r\nHost: nope.example\r\nX-Request-Id: count-2\r\n"
                 b"Connection: close\r\n\r\n")
    l = wait_log(e, lambda l: l["request_id"] == "count-2")
    assert (l["status"], l["bytes_in"], l["bytes_out"]) == (404, 0, len(got))

    s = e.connect()
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET /ws HTTP/1.1\r\n" + HOST + b"X-Request-Id: count-ws\r\n"
              b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
              b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    received = b""
    s.settimeout(5)
    while b"\r\n\r\n" not in received:
        received += s.recv(4096)
    assert received.startswith(b"HTTP/1.1 101 ")
    sent = 0
    for size in (10, 100, 1000):
        payload = b"w" * size
        mask = b"\x01\x02\x03\x04"
        lenb = bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + size.to_bytes(2, "big")
        frame = bytes([0x82]) + lenb + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        s.sendall(frame)
        sent += len(frame)
        want = len(received) + 2 + (0 if size < 126 else 2) + size  # the echo, unmasked
        while len(received) < want:
            received += s.recv(65536)
    s.close()
    l = wait_log(e, lambda l: l["request_id"] == "count-ws")
    assert l["status"] == 101
    assert (l["bytes_in"], l["bytes_out"]) == (sent, len(received))


@pytest.mark.parametrize("head,status", [
    (b"POST /x HTTP/1.1\r\nHost: nope.revelations.studio\r\n", 404),
    (b"POST /x HTTP/2.0\r\n" + HOST, 505),
    (b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n", 405),
    (b"POST /a/../b HTTP/1.1\r\n" + HOST, 400),
    (b"POST /echo HTTP/1.1\r\n" + HOST + b"X-Big: " + b"b" * 3000 + b"\r\n", 431),
    (b"POST /echo HTTP/1.1\r\n" + HOST, 413),
], ids=["404", "505", "405", "400", "431", "413"])
def test_an_error_with_body_bytes_unread_reaches_the_client_whole(fresh, head, status):
    # the edge answers and closes while the client is still sending a body
    # it never reads: the answer must not be lost to a reset
    e = fresh(http={"max_header_bytes": 2048, "max_body_bytes": 1000}).start()
    body = b"u" * 300000
    s = e.connect()
    s.sendall(head + b"Accept: text/html\r\nX-Request-Id: unread-%d\r\n"
              b"Content-Length: %d\r\n\r\n" % (status, len(body)))
    try:
        s.sendall(body)
    except OSError:
        pass  # the edge may have stopped reading: what it sent still counts
    st, hdrs, rbody, _ = read_response(s)
    s.close()
    assert st == status and hdrs["connection"] == "close"
    assert hdrs["x-request-id"] == f"unread-{status}"
    if status == 405:  # RFC 9110 15.5.6: a 405 lists what is allowed
        assert hdrs["allow"] == "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    check_error_body(st, hdrs, rbody, "html")


def test_access_log_times_a_request_from_its_first_byte(fresh):
    # as nginx's $request_time: a head that takes its time to arrive shows in
    # duration_ms, and a 408 is logged with the time it was given
    # the pause is what is measured; the timeout is far enough past it
    # that a loaded machine does not make the first request a 408
    e = fresh(http={"header_timeout_ms": 1500}).start()
    s = e.connect()
    t0 = time.time()
    s.sendall(b"GET /health HTTP/1.1\r\n" + HOST + b"X-Request-Id: slow-head-1\r\n")
    time.sleep(0.6)
    s.sendall(b"\r\n")
    assert read_response(s)[0] == 200
    s.sendall(b"GET /health HTTP/1.1\r\n" + HOST + b"X-Request-Id: slow-head-2\r\n")
    assert read_response(s)[0] == 408
    s.close()
    l1 = wait_log(e, lambda l: l["request_id"] == "slow-head-1")
    l2 = wait_log(e, lambda l: l["request_id"] == "slow-head-2")
    # (the loop's clock is read once a pass, in whole milliseconds)
    assert 580 <= l1["duration_ms"] < 1500, l1
    assert 1480 <= l2["duration_ms"] < 5000 and l2["status"] == 408, l2
    start = datetime.datetime.strptime(l1["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    # its first byte, not the end of its head 0.6 s later
    assert -0.05 < start - t0 < 0.4, (start, t0)


CLOCK_STEP = shim("clock_step.so")


@pytest.mark.skipif(not os.path.exists(CLOCK_STEP),
                    reason="build/shim/clock_step.so: make e2e builds it")
def test_access_log_duration_ignores_a_step_of_the_wall_clock(fresh, tmp_path):
    # NTP or an operator steps the wall clock while a request waits for its
    # upstream: its duration is how long it took, not a negative number (a
    # step back) or an hour (a step forward); its time is when it began
    step = tmp_path / "step"
    step.write_text("0")
    answer = threading.Event()

    def held(conn, head, rest):
        answer.wait(10)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        return rest

    up = Scripted(held)
    e = fresh(threads=1, demos=False,
              upstreams={("codex-web", "production"): up.url})
    e.procs.append(up)
    e.start(env=preload_env(CLOCK_STEP, SB_CLOCK_STEP_FILE=str(step)))
    for n, shift in enumerate(("-3600", "3600")):
        step.write_text("0")
        s = e.connect()
        t0 = time.time()
        s.sendall(b"GET /held HTTP/1.1\r\n" + HOST + b"X-Request-Id: stepped-%d\r\n\r\n" % n)
        wait_for(lambda: len(up.heads) == n + 1, what="the request upstream")
        step.write_text(shift)
        answer.set()
        assert read_response(s)[0] == 200
        answer.clear()
        s.close()
        line = wait_log(e, lambda l: l["request_id"] == f"stepped-{n}")
        assert 0 <= line["duration_ms"] < 5000, (shift, line)
        start = datetime.datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        assert abs(start - t0) < 1, (shift, start, t0)


@pytest.mark.parametrize("method,body", [("POST", b"x=1"), ("OPTIONS", b""), ("DELETE", b"")])
def test_the_health_endpoint_refuses_other_methods_with_405_and_allow(edge, method, body):
    # RFC 9110 15.5.6: a 405 lists what the resource takes; it used to be a
    # 404, as if the endpoint were not there
    s = edge.connect()
    extra = b"Content-Length: %d\r\n" % len(body) if body else b""
    s.sendall(method.encode() + b" /.well-known/switchboard/health HTTP/1.1\r\n" + HOST +
              b"Accept: text/html\r\n" + extra + b"\r\n" + body)
    st, hdrs, out, _ = read_response(s)
    s.close()
    assert st == 405, (st, out)
    assert hdrs["allow"] == "GET, HEAD", hdrs
    check_error_body(st, hdrs, out, "html")
    assert b"the health endpoint answers GET and HEAD" in out
    # GET and HEAD still answer, on the same connection
    s = edge.connect()
    s.sendall(b"HEAD /.well-known/switchboard/health HTTP/1.1\r\n" + HOST + b"\r\n"
              b"GET /.well-known/switchboard/health HTTP/1.1\r\n" + HOST + b"\r\n")
    st, hdrs, out, rest = read_response(s, head_only=True)
    assert st == 200 and "allow" not in hdrs and out == b""
    st, hdrs, out, _ = read_response(s, pending=rest)
    s.close()
    assert st == 200 and json.loads(out)["status"] == "ok"


def crlf_until_closed(s, every=0.1, limit=10.0):
    """Send an empty line every `every` seconds until the edge closes the
    connection; how long it stayed open (limit: it did not close)."""
    s.settimeout(every)
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            s.sendall(b"\r\n")
            if s.recv(4096) == b"":
                break
        except socket.timeout:
            continue
        except OSError:
            break
    return time.monotonic() - t0


def test_empty_lines_do_not_hold_a_connection_open(fresh):
    # RFC 9112 2.2 has the edge ignore empty lines before a request line;
    # they do not begin a request, so they restart neither the header
    # timeout of a new connection nor the idle timeout of a kept-alive one
    e = fresh(http={"header_timeout_ms": 600, "idle_timeout_ms": 800}).start()
    s = e.connect()
    held = crlf_until_closed(s)
    s.close()
    # (restarted by each CRLF, it would stay open the whole 10 s)
    assert held < 5.0, f"a new connection sending CRLFs was open for {held:.1f} s"
    s = e.connect()
    s.sendall(b"GET /health HTTP/1.1\r\n" + HOST + b"\r\n")
    assert read_response(s)[0] == 200
    held = crlf_until_closed(s)
    s.close()
    assert held < 5.0, f"a kept-alive connection sending CRLFs was open for {held:.1f} s"
    # and empty lines before a request still do no harm
    s = e.connect()
    s.sendall(b"\r\n\r\n")
    # read apart from the request (and at once after them: the header
    # timeout runs from the connect)
    wait_for(lambda: unread_by_edge(e, s) == 0, what="the empty lines read")
    s.sendall(b"\r\nGET /health HTTP/1.1\r\n" + HOST + b"\r\n")
    assert read_response(s)[0] == 200
    s.close()
