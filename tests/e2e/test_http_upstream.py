"""`switchboard serve`: what upstream servers send back. A raw-socket fake
upstream answers each path with bytes of its own making, and the client
side checks that whatever the upstream does, a client sees one well-framed
response per request (or a connection that is visibly cut), never bytes of
another response, and a keep-alive connection that is still in step.
"""
import json
import socket
import struct
import threading
import time

import pytest

from edge import (Edge, Recorder, Scripted, edge_sockets, frozen, listening, read_response,
                  read_until_close, wait_for)
from test_http_framing import HOST, answer_with_path, path_of, scripted_edge

# path -> handler(conn, head, rest) for the module's upstream; other paths
# are answered with "for <path>"
ANSWERS = {}


def dispatch(conn, head, rest):
    return ANSWERS.get(path_of(head), answer_with_path)(conn, head, rest)


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    up = Scripted(dispatch)
    e = Edge(tmp_path_factory.mktemp("up"), threads=1, demos=False,
             upstreams={("codex-web", "production"): up.url}, http={"drain_timeout_ms": 2000})
    e.procs.append(up)
    e.up = up
    e.start()
    yield e
    e.stop()


def answer(path, data, close=False):
    """The upstream answers path with data, then keeps the connection (or
    closes it)."""
    def send(conn, head, rest):
        conn.sendall(data)
        return None if close else rest
    ANSWERS[path] = send
    return path


def reset(conn):
    """Close conn with a reset, not a FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def get(e, path, sock=None, extra=""):
    s = sock or e.connect(timeout=5)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{extra}\r\n".encode())
    return s


def still_in_step(e, s, pending=b""):
    """The client connection s (after the bytes pending) answers its next
    request with that request's own response, and the edge serves others."""
    get(e, "/next", sock=s)
    st, _, body, rest = read_response(s, pending=pending)
    assert (st, body, rest) == (200, b"for /next", b"")
    other = get(e, "/other")
    st, _, body, _ = read_response(other)
    other.close()
    assert (st, body) == (200, b"for /other")


def header_lines(head):
    return [l.lower() for l in head.split(b"\r\n")[1:]]


# ---- responses that have no body, whatever their framing headers say ----------

def test_a_304_with_a_content_length_ends_at_its_head(edge):
    # RFC 9110 8.6: a 304 may carry the Content-Length of the representation
    # it stands for; its message ends at the empty line (RFC 9112 6.3)
    path = answer("/not-modified", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n"
                                    b"ETag: \"v1\"\r\n\r\n")
    s = get(edge, path, extra='If-None-Match: "v1"\r\n')
    s.settimeout(3)
    t0 = time.monotonic()
    st, hd, body, rest = read_response(s)
    assert (st, hd["etag"], body) == (304, '"v1"', b"")
    assert hd["connection"] == "keep-alive"
    still_in_step(edge, s, rest)
    assert time.monotonic() - t0 < 2
    s.close()


@pytest.mark.parametrize("status,framing,body", [
    (204, b"Content-Length: 5", b"HTTP/"),
    (204, b"Transfer-Encoding: chunked", b"5\r\nHTTP/\r\n0\r\n\r\n"),
    (304, b"Content-Length: 5", b"HTTP/"),
    (304, b"Transfer-Encoding: chunked", b"5\r\nHTTP/\r\n0\r\n\r\n"),
], ids=["204-cl", "204-chunked", "304-cl", "304-chunked"])
def test_bytes_after_a_204_or_304_never_reach_the_client(edge, status, framing, body):
    # the bytes an upstream sends after such a head are not a body: relayed
    # after the head, the client would read them as the start of its next
    # response
    path = answer(f"/nobody-{status}-{len(body)}",
                  b"HTTP/1.1 %d X\r\n%s\r\nX-Marker: m\r\n\r\n%s" % (status, framing, body))
    s = get(edge, path)
    s.settimeout(3)
    st, hd, _, rest = read_response(s)
    assert (st, hd["x-marker"], rest) == (status, "m", b"")
    # a 204 never says Content-Length (RFC 9110 8.6); nor does either say
    # chunked when nothing follows
    if status == 204:
        assert "content-length" not in hd
    assert "transfer-encoding" not in hd
    still_in_step(edge, s)
    s.close()


@pytest.mark.parametrize("interim", [
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
    b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n",
    # a 1xx ends at its empty line whatever it says (RFC 9112 6.3)
    b"HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n",
    b"HTTP/1.1 150 Odd\r\nTransfer-Encoding: chunked\r\n\r\n",
], ids=["100", "103", "102-twice", "100-cl", "150-chunked"])
def test_interim_responses_before_the_final_one(edge, interim):
    path = answer(f"/interim-{len(interim)}", interim + b"HTTP/1.1 200 OK\r\n"
                                                       b"Content-Length: 5\r\n\r\nfinal")
    s = get(edge, path)
    s.settimeout(3)
    st, hd, body, rest = read_response(s)
    if interim.startswith(b"HTTP/1.1 103 "):
        # Early Hints reach an HTTP/1.1 client as sent (RFC 8297)
        assert (st, hd["link"]) == (103, "</style.css>; rel=preload"), hd
        st, hd, body, rest = read_response(s, pending=rest)
    assert (st, body, rest) == (200, b"final", b"")
    # the interim heads' fields are not merged into the final one
    assert "link" not in hd
    still_in_step(edge, s)
    s.close()


@pytest.mark.parametrize("n,status", [(32, 200), (33, 502), (20000, 502)])
def test_at_most_32_interim_responses(edge, n, status):
    # each costs the request's memory its fields, as a final head does
    hint = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    path = answer(f"/many-1xx-{n}", hint * n + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
                  b"final", close=True)
    s = get(edge, path)
    s.settimeout(5)
    hints, rest = 0, b""
    while True:
        st, _, body, rest = read_response(s, pending=rest)
        if st != 103:
            break
        hints += 1
    assert (st, hints) == (status, min(n, 32)), body
    if status == 502:
        assert "more than 32 interim (1xx) responses" in json.loads(body)["message"]
    still_in_step(edge, s, pending=rest)
    s.close()


def test_early_hints_only_to_an_http11_client_and_without_hop_by_hop_fields(edge):
    path = answer("/hints", b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n"
                  b"Connection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\n"
                  b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    s = get(edge, path)
    s.settimeout(3)
    st, hd, _, rest = read_response(s)
    assert st == 103 and hd["link"] == "</a.css>; rel=preload"
    assert not {"connection", "x-hop", "keep-alive"} & set(hd), hd
    assert read_response(s, pending=rest)[:3:2] == (200, b"ok")
    s.close()
    # a 1xx to an HTTP/1.0 client is not allowed (RFC 9110 15.2)
    s = edge.connect(timeout=3)
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
    out = read_until_close(s)
    assert out.startswith(b"HTTP/1.1 200 ") and b" 103 " not in out, out[:200]


@pytest.mark.parametrize("framing,body", [
    (b"Content-Length: 100000", b""),
    (b"Transfer-Encoding: chunked", b""),
])
def test_a_head_response_does_not_wait_for_a_body(edge, framing, body):
    path = answer("/head-" + framing.split(b":")[0].decode(),
                  b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n\r\n" + body)
    s = edge.connect(timeout=3)
    s.sendall(f"HEAD {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    st, hd, _, rest = read_response(s, head_only=True)
    assert (st, rest) == (200, b"")
    if b"100000" in framing:  # the length of what a GET would get
        assert hd["content-length"] == "100000"
    assert "transfer-encoding" not in hd
    still_in_step(edge, s)
    s.close()


# ---- framing headers ------------------------------------------------------------

def test_a_content_length_named_in_connection_still_frames_the_response(edge):
    # the Content-Length is the response's framing on both hops: dropping it
    # as a field Connection names would leave the client a body without end
    path = answer("/conn-cl", b"HTTP/1.1 200 OK\r\nConnection: Content-Length, X-Hop\r\n"
                              b"X-Hop: 1\r\nContent-Length: 2\r\n\r\nok")
    s = get(edge, path)
    s.settimeout(3)
    st, hd, body, rest = read_response(s)
    assert (st, body, hd.get("content-length")) == (200, b"ok", "2")
    assert "x-hop" not in hd and hd["connection"] == "keep-alive"
    still_in_step(edge, s, rest)
    s.close()


@pytest.mark.parametrize("te", [
    b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: chunked, gzip",
    b"Transfer-Encoding: gzip",
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
    b"Transfer-Encoding: gzip\r\n ,chunked",
], ids=["gzip-chunked", "chunked-gzip", "gzip", "chunked-twice", "folded"])
def test_a_transfer_coding_other_than_chunked_is_a_502(edge, te):
    # the edge decodes chunked only: a body that still carries another
    # coding would reach the client as content, its coding dropped with the
    # hop-by-hop Transfer-Encoding (nginx answers 502 too)
    path = answer("/te-" + te.decode().replace(" ", "").replace("\r\n", "|"),
                  b"HTTP/1.1 200 OK\r\n" + te + b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n", close=True)
    st, _, body, _ = read_response(get(edge, path))
    assert st == 502 and json.loads(body)["error"] == "bad_gateway"
    # the message says so (llhttp's own reason is "User callback error")
    assert "a transfer coding other than chunked" in json.loads(body)["message"], body


BAD_HEADS = {
    "cl-and-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil",
    "te-and-cl": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                 b"0\r\n\r\nevil!",
    "cl-twice": b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nevil",
    "cl-differ": b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nevil",
    "cl-list": b"HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\n\r\nevil",
    "cl-sign": b"HTTP/1.1 200 OK\r\nContent-Length: +4\r\n\r\nevil",
    "bare-lf": b"HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 4\r\n\r\nevil",
    "bare-lf-all": b"HTTP/1.1 200 OK\nContent-Length: 4\n\nevil",
    "bare-cr": b"HTTP/1.1 200 OK\r\nX-A: a\rContent-Length: 4\r\n\r\nevil",
    "space-before-colon": b"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n"
                          b"Content-Length: 4\r\n\r\nevil",
    "fold-first-line": b"HTTP/1.1 200 OK\r\n Transfer-Encoding: chunked\r\n"
                       b"Content-Length: 4\r\n\r\nevil",
    "cl-folded": b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n 0\r\n\r\nevil",
    "nul": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 4\r\n\r\nevil",
    "status-word": b"HTTP/1.1 OK 200\r\nContent-Length: 4\r\n\r\nevil",
    "http-2.0": b"HTTP/2.0 200 OK\r\nContent-Length: 4\r\n\r\nevil",
    "http-0.9": b"HTTP/0.9 200 OK\r\nContent-Length: 4\r\n\r\nevil",
}


@pytest.mark.parametrize("case", sorted(BAD_HEADS))
def test_an_ambiguous_response_head_is_a_502(edge, case):
    # framing that two parsers could read two ways, or a head that is not
    # HTTP/1.1: nothing of it reaches the client, which keeps its connection
    path = answer(f"/bad-{case}", BAD_HEADS[case], close=True)
    s = get(edge, path)
    s.settimeout(3)
    st, hd, body, rest = read_response(s)
    assert st == 502 and json.loads(body)["error"] == "bad_gateway", body
    assert b"evil" not in body and rest == b""
    # the message says what was wrong, never llhttp's "User callback error"
    msg = json.loads(body)["message"]
    assert "callback" not in msg, msg
    if case.startswith("http-"):
        assert "an HTTP version other than 1.x" in msg, msg
    still_in_step(edge, s)
    s.close()


@pytest.mark.parametrize("chunk", [b"zz", b"fffffffffffffffff", b"3 x", b"-3", b"3\n"],
                         ids=["letters", "overflow", "junk", "negative", "bare-lf"])
def test_an_invalid_chunk_size_cuts_the_client_connection(edge, chunk):
    # the head went out: the client must see its response cut, never an end
    path = answer("/chunk-" + chunk.hex(), b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                           b"\r\n2\r\nok\r\n" + chunk + b"\r\nabc\r\n0\r\n\r\n")
    out = read_until_close(get(edge, path), timeout=3)
    head, body = out.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 ") and b"transfer-encoding: chunked" in \
        header_lines(head)
    assert body == b"2\r\nok\r\n", body


def test_obs_fold_in_a_response_field_reaches_the_client_as_a_space(edge):
    # RFC 9112 5.2: a proxy either refuses the message or replaces each
    # obs-fold with a space before forwarding it
    path = answer("/fold", b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\n\tc\r\n"
                           b"Content-Length: 2\r\n\r\nok")
    s = get(edge, path)
    s.settimeout(3)
    st, hd, body, rest = read_response(s)
    assert (st, body, hd["x-folded"]) == (200, b"ok", "a b\tc")
    still_in_step(edge, s, rest)
    s.close()


def test_a_second_response_in_the_same_read_is_never_relayed(edge):
    # bytes after a complete response are nobody's answer: the upstream
    # connection that carried them is not used again
    path = answer("/two", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                          b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged")
    s = get(edge, path)
    s.settimeout(3)
    st, _, body, rest = read_response(s)
    assert (st, body, rest) == (200, b"ok", b"")
    still_in_step(edge, s)
    s.close()


# ---- close-delimited bodies and cut responses ----------------------------------

def until_close_then_cut(conn, head, rest):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial")
    time.sleep(0.2)  # the edge has relayed the head and the first bytes
    reset(conn)
    return None


@pytest.mark.parametrize("version,extra", [("1.0", ""), ("1.1", "Connection: close\r\n")],
                         ids=["http10", "connection-close"])
def test_a_close_delimited_response_cut_by_the_upstream_is_reset(edge, version, extra):
    # to a client the response is delimited by the close of its connection,
    # so a FIN would make the cut body look complete: the edge resets it
    ANSWERS["/cut-close-delimited"] = until_close_then_cut
    s = edge.connect(timeout=3)
    s.sendall(f"GET /cut-close-delimited HTTP/{version}\r\nHost: {HOST}\r\n{extra}\r\n".encode())
    data = b""
    with pytest.raises(ConnectionResetError):
        while True:
            b = s.recv(65536)
            assert b, f"the cut response ended like a whole one: {data!r}"
            data += b
    s.close()


def test_a_close_delimited_response_to_an_http10_client_ends_with_the_close(edge):
    path = answer("/eof-10", b"HTTP/1.1 200 OK\r\n\r\nall of it", close=True)
    s = edge.connect(timeout=3)
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
    out = read_until_close(s, timeout=3)
    head, body = out.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"all of it"
    assert b"connection: close" in header_lines(head)
    assert not any(l.startswith(b"transfer-encoding") for l in header_lines(head))


@pytest.mark.parametrize("framing", ["chunked", "close-delimited"])
def test_a_response_reset_mid_body_leaves_the_keep_alive_client_a_cut_chunked_body(edge,
                                                                                    framing):
    def cut(conn, head, rest):
        te = b"Transfer-Encoding: chunked\r\n" if framing == "chunked" else b""
        body = b"7\r\npartial\r\n" if framing == "chunked" else b"partial"
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + te + b"\r\n" + body)
        time.sleep(0.2)
        reset(conn)
        return None

    ANSWERS["/cut-" + framing] = cut
    out = read_until_close(get(edge, "/cut-" + framing), timeout=3)
    head, body = out.split(b"\r\n\r\n", 1)
    assert b"transfer-encoding: chunked" in header_lines(head)
    assert body == b"7\r\npartial\r\n", body  # no last chunk: visibly cut


# ---- upstreams that fail before answering ----------------------------------------

def test_a_fresh_connection_closed_before_any_byte_is_a_502_without_retry(edge):
    # on a connection just made nothing suggests a stale one: no second try
    # (it could run the request twice)
    path = answer("/close-at-once", b"", close=True)
    before = sum(1 for h in edge.up.heads if path.encode() in h)
    st, _, body, _ = read_response(get(edge, path))
    assert st == 502 and json.loads(body)["error"] == "bad_gateway"
    assert sum(1 for h in edge.up.heads if path.encode() in h) == before + 1


def test_a_partial_head_then_silence_is_a_504(fresh):
    def stall(conn, head, rest):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")
        time.sleep(5)
        return None

    e = scripted_edge(fresh, stall, http={"response_timeout_ms": 300})
    t0 = time.monotonic()
    st, _, body, _ = read_response(get(e, "/stall"))
    assert st == 504 and json.loads(body)["error"] == "upstream_timeout"
    assert time.monotonic() - t0 < 3


# ---- hop-by-hop fields and the upstream pool ---------------------------------------

def test_connection_close_from_the_upstream_stays_on_its_hop(edge):
    path = answer("/up-close", b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n"
                               b"\r\nok", close=True)
    s = get(edge, path)
    s.settimeout(3)
    buf = b""
    while not buf.endswith(b"\r\n\r\nok"):
        b = s.recv(65536)
        assert b, buf
        buf += b
    lines = header_lines(buf.split(b"\r\n\r\n", 1)[0])
    assert [l for l in lines if l.startswith(b"connection:")] == [b"connection: keep-alive"]
    still_in_step(edge, s)
    s.close()


def test_a_chunked_response_is_relayed_with_one_transfer_encoding(edge):
    path = answer("/chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                              b"Trailer: X-T\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n")
    s = get(edge, path)
    s.settimeout(3)
    buf = b""
    while b"0\r\n\r\n" not in buf:
        b = s.recv(65536)
        assert b, buf
        buf += b
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = header_lines(head)
    assert lines.count(b"transfer-encoding: chunked") == 1
    assert not any(l.startswith(b"trailer") for l in lines)
    assert body == b"3\r\nabc\r\n0\r\n\r\n"  # the trailer section is dropped
    still_in_step(edge, s)
    s.close()


def fin_wait(port):
    """Sockets on port (the upstream's side) that closed while the peer
    (the edge) has not yet."""
    return [st for st, _ in edge_sockets(port) if st == 5]  # FIN_WAIT2


def test_a_pooled_connection_the_upstream_closed_while_idle_is_not_used(fresh):
    closed = threading.Event()

    def answer_then_close(conn, head, rest):
        body = f"for {path_of(head)}".encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        if path_of(head) == "/first":
            time.sleep(0.1)  # idle in the edge's pool by now
            closed.set()
            return None
        return rest

    e = scripted_edge(fresh, answer_then_close)
    s = e.connect()
    assert read_response(get(e, "/first", sock=s))[:3:2] == (200, b"for /first")
    closed.wait(5)
    # the edge saw the close of the idle connection and closed its side
    wait_for(lambda: not fin_wait(e.up.port), what="the edge to close the idle connection")
    # so even a POST, which is never retried, goes out on a fresh connection
    s.sendall(f"POST /second HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 1\r\n\r\nx".encode())
    assert read_response(s)[:3:2] == (200, b"for /second")
    assert [h.split(b" ")[1] for h in e.up.heads] == [b"/first", b"/second"]


def test_a_folded_connection_close_from_the_upstream_is_not_kept(fresh):
    # "keep-alive" folded with "close" (obs-fold): llhttp does not see the
    # close, and a connection kept in the pool would take the next request
    # to an upstream that no longer reads it
    done = threading.Event()

    def folded_then_deaf(conn, head, rest):
        if path_of(head) == "/folded":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                         b"Connection: keep-alive\r\n close\r\n\r\nok")
            done.wait(10)  # open, but never reads again
            return None
        return answer_with_path(conn, head, rest)

    e = scripted_edge(fresh, folded_then_deaf, http={"health_interval_ms": 0})
    try:
        s = e.connect(timeout=3)
        assert read_response(get(e, "/folded", sock=s))[:3:2] == (200, b"ok")
        assert read_response(get(e, "/after", sock=s))[:3:2] == (200, b"for /after")
    finally:
        done.set()


def tcp_states(local, remote):
    """The states of the sockets from local port to remote port."""
    out = []
    for line in open("/proc/net/tcp").readlines()[1:]:
        f = line.split()
        if (int(f[1].split(":")[1], 16), int(f[2].split(":")[1], 16)) == (local, remote):
            out.append(int(f[3], 16))
    return out


def rx_queued(port):
    """Bytes waiting to be read in the sockets whose local port is port."""
    total = 0
    for line in open("/proc/net/tcp").readlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and f[2] != "00000000:0000":
            total += int(f[4].split(":")[1], 16)
    return total


def test_a_post_does_not_take_a_pooled_connection_whose_close_came_with_it(fresh):
    # the upstream answers and closes the connection at once (its keep-alive
    # ran out), and the edge reads the answer before the close: the POST
    # pipelined behind it, which is never retried, must not go out on that
    # connection
    release = threading.Event()

    def answer_then_close(conn, head, rest):
        if path_of(head) == "/first":
            release.wait(10)
            answer_with_path(conn, head, rest)
            return None
        return answer_with_path(conn, head, rest)

    e = scripted_edge(fresh, answer_then_close, http={"health_interval_ms": 0})
    s = e.connect()
    s.sendall(f"GET /first HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
              f"POST /second HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 1\r\n\r\nx".encode())
    wait_for(lambda: e.up.heads, what="the first request upstream")
    with frozen(e):
        release.set()
        # the answer and the FIN wait in the edge's socket (its kernel
        # acknowledged the FIN)
        wait_for(lambda: fin_wait(e.up.port), what="the upstream's close acknowledged")
    st, _, body, rest = read_response(s)
    assert (st, body) == (200, b"for /first")
    st, _, body, _ = read_response(s, pending=rest)
    assert (st, body) == (200, b"for /second"), body
    assert [h.split(b" ")[1] for h in e.up.heads] == [b"/first", b"/second"]


def test_an_upstream_gone_while_the_request_body_streams_is_a_502(fresh):
    # the body's next piece and the upstream's reset come in one pass of the
    # edge's loop, the body first: writing it upstream fails, which is the
    # upstream's failure (502), not a malformed request (400)
    got_head, release = threading.Event(), threading.Event()
    edge_end = []

    def reset_after_head(conn, head, rest):
        edge_end.append(conn.getpeername()[1])
        got_head.set()
        release.wait(10)
        reset(conn)
        return None

    e = scripted_edge(fresh, reset_after_head, http={"health_interval_ms": 0})
    s = e.connect()
    s.sendall(f"POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 10\r\n\r\n01234"
              .encode())
    assert got_head.wait(5)
    with frozen(e):
        s.sendall(b"56789")
        wait_for(lambda: rx_queued(e.port), what="the body in the edge's socket")
        release.set()
        # the edge's end of the connection took the reset: a closed
        # socket is no longer listed
        wait_for(lambda: not tcp_states(edge_end[0], e.up.port), what="the upstream's reset")
    st, hd, body, _ = read_response(s)
    assert st == 502 and json.loads(body)["error"] == "bad_gateway", body
    assert hd["connection"] == "close"
    wait_for(lambda: e.access_log(), what="the access-log line")
    assert e.access_log()[-1]["status"] == 502


def test_a_close_delimited_response_that_stalls_is_reset_at_the_timeout(fresh):
    def stall(conn, head, rest):
        conn.sendall(b"HTTP/1.1 200 OK\r\n\r\npartial")
        time.sleep(5)
        return None

    e = scripted_edge(fresh, stall, http={"response_timeout_ms": 300})
    s = e.connect(timeout=5)
    s.sendall(f"GET /stall HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
    data = b""
    with pytest.raises(ConnectionResetError):
        while True:
            b = s.recv(65536)
            assert b, f"the stalled response ended like a whole one: {data!r}"
            data += b
    assert data.endswith(b"\r\n\r\npartial")


def queues(local, remote):
    """(send queue, receive queue) in bytes of the socket from local port
    to remote port, as the kernel holds them."""
    for line in open("/proc/net/tcp").readlines()[1:]:
        f = line.split()
        if (int(f[1].split(":")[1], 16), int(f[2].split(":")[1], 16)) == (local, remote):
            tx, rx = f[4].split(":")
            return int(tx, 16), int(rx, 16)
    return 0, 0


def steady(f, rounds=4, pause=0.05, limit=10.0):
    """f()'s value once it has not changed over a few polls, or the last
    value before it fell to 0 (the edge gave up on the connection first,
    which a loaded machine can make happen before the queues stop growing)."""
    last, same = None, 0
    deadline = time.monotonic() + limit
    while same < rounds:
        v = f()
        if not v and last:
            return last
        same = same + 1 if v == last and v else 0
        last = v
        assert time.monotonic() < deadline, f"no steady value in {limit} s (last {last})"
        time.sleep(pause)
    return last


def test_a_close_delimited_response_still_queued_when_the_client_is_too_slow_is_reset(fresh):
    # The upstream sent the whole body and closed, but the client reads
    # nothing: the edge holds part of the response in its own queue when the
    # response timeout ends the connection. A FIN would make what the client
    # got look like the whole body; the connection is reset instead.
    # How much the kernels take depends on the machine, so it is measured
    # first, with a response the edge can never finish; the real one is then
    # sized to leave about 128 KiB in the edge's queue (it stops reading an
    # upstream at 256 KiB).
    size = [64 << 20]

    def body(conn, head, rest):
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * size[0])
        except OSError:
            pass
        return None

    e = scripted_edge(fresh, body, http={"response_timeout_ms": 400})

    def ask():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", e.port))
        s.sendall(f"GET /big HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        return s

    probe = ask()
    me = probe.getsockname()[1]
    # what the kernels hold between the edge and this client once it is full
    held = steady(lambda: sum(queues(e.port, me)) + sum(queues(me, e.port)))
    probe.close()
    size[0] = held + (128 << 10)
    s = ask()
    s.settimeout(10)
    got = b""
    # not read until the edge's side is gone (a FIN would leave it waiting
    # in FIN_WAIT1 behind the bytes the client has not taken)
    mine = s.getsockname()[1]
    wait_for(lambda: not tcp_states(e.port, mine), what="the edge's socket reset")
    with pytest.raises(ConnectionResetError):
        while True:
            b = s.recv(1 << 20)
            assert b, f"{len(got)} of {size[0]} bytes, then a FIN: it looks whole"
            got += b


def test_a_retry_on_a_fresh_connection_is_under_the_connect_timeout(fresh):
    # The pooled connection fails before any byte (retried), and the new
    # connection's connect hangs: the upstream's accept queue is full, so
    # its SYNs are dropped. The retry is bounded by connect_timeout_ms, not
    # by what was left of the response timeout the first attempt was under.
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []

    def serve():
        conn, _ = lsock.accept()  # the edge's first connection, then no more
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            while True:  # the next request: closed without a byte
                b = conn.recv(65536)
                if not b or b"\r\n\r\n" in b:
                    return

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    e = fresh(http={"health_interval_ms": 0, "connect_timeout_ms": 300,
                    "response_timeout_ms": 8000}, threads=1, demos=False,
              upstreams={("codex-web", "production"): f"http://127.0.0.1:{port}"}).start()
    try:
        s = e.connect(timeout=10)
        assert read_response(get(e, "/first", sock=s))[:3:2] == (200, b"ok")
        # the accept queue full: a connect to it now hangs (a handshake
        # that completes here would be one of ours)
        while True:
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", port))
            fillers.append(f)
            try:
                wait_for(lambda: tcp_states(f.getsockname()[1], port) == [1], timeout=0.5)
            except AssertionError:
                break  # SYN_SENT: the queue is full
        t0 = time.monotonic()
        st, _, body, _ = read_response(get(e, "/second", sock=s))
        took = time.monotonic() - t0
        assert st == 504, body
        assert took < 3, f"the retry waited {took:.1f} s"
    finally:
        for f in fillers:
            f.close()
        lsock.close()


def test_a_stopped_test_upstream_listens_no_more():
    """The harness: a LocalUpstream's stop ends its listening socket even
    while its accept thread waits in accept(); a close alone left it
    listening (and taking connections) for the rest of the session."""
    up = Recorder()
    assert listening(up.port)
    up.stop()
    wait_for(lambda: not listening(up.port), timeout=5, what="the socket closed")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", up.port), timeout=2)
