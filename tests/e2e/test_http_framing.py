"""`switchboard serve`: message framing at the edges of the protocol, where
one side's idea of where a message ends could differ from the other's, and
clients that stop reading. Each test fails on the defect it is named after.
"""
import json
import signal
import socket
import threading
import time

import pytest

from edge import Scripted, edge_sockets, read_response, read_until_close, wait_for

HOST = "codex.revelations.studio"


def path_of(head):
    return head.split(b" ", 2)[1].decode()


def answer_with_path(conn, head, rest):
    body = f"for {path_of(head)}".encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    return rest


def scripted_edge(fresh, handler, http=None, demos=False, env=None, prefix=()):
    up = Scripted(handler)
    e = fresh(http=http, threads=1, demos=demos, upstreams={("codex-web", "production"): up.url})
    e.procs.append(up)
    e.up = up
    return e.start(env=env, prefix=prefix)


def established(port):
    return sum(1 for st, _ in edge_sockets(port) if st == 1)


# ---- upgrades the upstream refuses ------------------------------------------

def test_bytes_after_a_refused_upgrade_are_the_next_request(fresh):
    e = scripted_edge(fresh, answer_with_path)
    smuggled = (f"GET /admin HTTP/1.1\r\nHost: {HOST}\r\nX-Tenant-Slug: victim\r\n"
                f"X-Switchboard-Deployment: forged\r\n\r\n").encode()
    s = e.connect()
    s.sendall(f"GET /ws HTTP/1.1\r\nHost: {HOST}\r\nConnection: Upgrade\r\n"
              f"Upgrade: websocket\r\n\r\n".encode() + smuggled)
    st1, _, b1, rest = read_response(s)
    st2, _, b2, _ = read_response(s, pending=rest)
    assert (st1, b1, st2, b2) == (200, b"for /ws", 200, b"for /admin")
    # the second request went through routing, stripping and signing
    assert len(e.up.heads) == 2
    admin = e.up.heads[1].lower()
    assert b"victim" not in admin and b"forged" not in admin
    assert b"\r\nx-switchboard-signature: t=" in admin
    # and the upstream connection carries nobody's answer to someone else
    other = e.connect()
    other.sendall(f"GET /victim HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    assert read_response(other)[2] == b"for /victim"
    wait_for(lambda: len(e.access_log()) >= 3, what="three access-log lines")
    assert [(l["path"], l["status"]) for l in e.access_log()] == \
        [("/ws", 200), ("/admin", 200), ("/victim", 200)]


def test_bytes_sent_before_the_101_reach_the_upstream_after_it(fresh):
    received = []
    answered = threading.Event()

    def upgrade_late(conn, head, rest):
        answered.wait(5)  # the client's early bytes are at the edge by now
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                     b"Upgrade: foo\r\n\r\n")
        conn.settimeout(5)
        data = rest
        while b"LATE" not in data:
            b = conn.recv(65536)
            if not b:
                break
            data += b
        received.append(data)
        return None

    e = scripted_edge(fresh, upgrade_late)
    a = e.connect()
    a.sendall(f"GET /t HTTP/1.1\r\nHost: {HOST}\r\nConnection: Upgrade\r\n"
              f"Upgrade: foo\r\n\r\n".encode())
    wait_for(lambda: e.up.heads, what="the upgrade request upstream")
    a.sendall(b"EARLY-")
    time.sleep(0.2)  # the bytes are read by the edge while no 101 has come
    answered.set()
    st, hd, _, rest = read_response(a, head_only=True)
    assert st == 101 and hd["upgrade"] == "foo"
    a.sendall(b"LATE")
    wait_for(lambda: received, what="the upstream's tunnel bytes")
    assert received[0] == b"EARLY-LATE"
    # before the 101 nothing of them went upstream as HTTP
    assert len(e.up.heads) == 1


def test_101_to_a_request_without_upgrade_is_a_502(fresh):
    def switch(conn, head, rest):
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                     b"Upgrade: foo\r\n\r\nraw bytes")
        return None

    e = scripted_edge(fresh, switch)
    s = e.connect()
    s.sendall(f"GET /plain HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    st, _, body, _ = read_response(s)
    assert st == 502 and b"raw bytes" not in body


@pytest.mark.parametrize("shape", ["fields", "one value"])
def test_an_endless_response_head_is_a_502(fresh, shape):
    def endless(conn, head, rest):
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + (b"X-A: " if shape == "one value" else b""))
        line = b"X-Filler: " + b"f" * 1000 + b"\r\n" if shape == "fields" else b"a" * 1024
        try:
            while True:  # without end, until the edge hangs up
                conn.sendall(line * 64)
        except OSError:
            pass
        return None

    e = scripted_edge(fresh, endless)
    s = e.connect(timeout=5)
    s.sendall(f"GET /big-head HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    st, _, body, _ = read_response(s)
    assert st == 502 and json.loads(body)["error"] == "bad_gateway"


@pytest.mark.parametrize("fields,status", [(1000, 200), (1001, 502), (20000, 502)])
def test_a_response_head_has_at_most_1000_fields(fresh, fields, status):
    # each field costs the edge a struct whatever its size: 20,000 one-byte
    # fields (80 KB as sent) fitted under a limit that counted only names
    # and values
    def many(conn, head, rest):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + b"a:\r\n" * (fields - 1) +
                     b"\r\nok")
        return rest

    e = scripted_edge(fresh, many)
    s = e.connect(timeout=5)
    s.sendall(f"GET /many HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    st, hs, body, _ = read_response(s)
    assert st == status
    if status == 200:
        assert body == b"ok"
    else:
        assert "more than 1000 fields" in json.loads(body)["message"], body


def test_the_head_limit_counts_each_response_head_apart(fresh):
    # an interim 100 and the final head, each under 64 KiB, together over it
    def big_1xx(conn, head, rest):
        pad = b"X-Pad: " + b"p" * 40000 + b"\r\n"
        conn.sendall(b"HTTP/1.1 100 Continue\r\n" + pad + b"\r\n" +
                     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + pad + b"\r\nok")
        return rest

    e = scripted_edge(fresh, big_1xx)
    s = e.connect()
    s.sendall(f"GET /x HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    st, _, body, _ = read_response(s)
    assert (st, body) == (200, b"ok")


# ---- bodies the edge does not read ------------------------------------------

def test_a_body_sent_to_the_health_endpoint_is_never_a_request(fresh):
    e = scripted_edge(fresh, answer_with_path)
    inner = f"GET /smuggled HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    for method in ("GET", "POST"):
        out = read_until_close(_send(e, f"{method} /.well-known/switchboard/health HTTP/1.1\r\n"
                                        f"Host: {HOST}\r\nContent-Length: {len(inner)}\r\n\r\n"
                                        .encode() + inner))
        assert out.count(b"HTTP/1.1 ") == 1, out
        assert b"\r\nConnection: close\r\n" in out, out
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner)
    out = read_until_close(_send(e, f"GET /.well-known/switchboard/health HTTP/1.1\r\nHost: {HOST}"
                                    f"\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + chunked))
    assert out.count(b"HTTP/1.1 ") == 1, out
    assert e.up.heads == []


def _send(e, data):
    s = e.connect()
    s.sendall(data)
    return s


def test_a_stalled_request_body_is_a_408(fresh):
    def read_body(conn, head, rest):
        while len(rest) < 100:  # all of it, which never comes
            b = conn.recv(65536)
            if not b:
                return None
            rest += b
        return answer_with_path(conn, head, rest[100:])

    e = scripted_edge(fresh, read_body, http={"response_timeout_ms": 500})
    s = e.connect()
    s.sendall(f"POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 100\r\n\r\n"
              f"0123456789".encode())
    st, _, body, _ = read_response(s)
    assert st == 408, body
    assert json.loads(body)["error"] == "request_timeout"


# ---- responses that end when the upstream closes ------------------------------

def test_a_close_delimited_response_keeps_the_client_connection(fresh):
    def close_delimited(conn, head, rest):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" +
                     f"until close {path_of(head)}".encode())
        return None

    e = scripted_edge(fresh, close_delimited)
    s = e.connect()
    s.sendall(f"GET /a HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    st, hd, body, rest = read_response(s)
    assert (st, body) == (200, b"until close /a")
    assert hd["transfer-encoding"] == "chunked" and hd["connection"] == "keep-alive"
    s.sendall(f"GET /b HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    assert read_response(s, pending=rest)[:3:2] == (200, b"until close /b")
    wait_for(lambda: len(e.access_log()) >= 2, what="both access-log lines")
    assert [(l["path"], l["status"]) for l in e.access_log()] == [("/a", 200), ("/b", 200)]


# ---- forwarded addresses ----------------------------------------------------

def test_a_long_forwarded_for_from_a_trusted_proxy_is_kept_whole(fresh):
    e = scripted_edge(fresh, answer_with_path, http={"trusted_proxies": ["127.0.0.1/32"]})
    chain = ", ".join(f"10.0.{i // 256}.{i % 256}" for i in range(120)) + ", 203.0.113.50"
    assert len(chain) > 1000
    s = e.connect()
    s.sendall(f"GET /x HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-For: {chain}\r\n\r\n".encode())
    assert read_response(s)[0] == 200
    xff = [l for l in e.up.heads[0].split(b"\r\n") if l.lower().startswith(b"x-forwarded-for:")]
    assert xff == [b"X-Forwarded-For: " + chain.encode() + b", 127.0.0.1"]


# ---- the signature and the Host as sent ------------------------------------

@pytest.mark.parametrize("host", [HOST + ".", HOST.upper() + ".:8080", HOST + ":80"])
def test_signature_verifies_for_every_spelling_of_the_host(fresh, host):
    e = fresh(threads=1).start()
    s = e.connect()
    s.sendall(f"GET /echo HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    st, _, body, _ = read_response(s)
    assert st == 200, body
    assert json.loads(body)["signature"] == "valid", body


# ---- clients that stop reading --------------------------------------------------

def rss_kib(pid):
    return int(open(f"/proc/{pid}/status").read().split("VmRSS:")[1].split()[0])


def test_pipelined_answers_to_a_client_that_does_not_read_are_bounded(fresh):
    # ASan's quarantine would keep every freed request pool resident
    e = scripted_edge(fresh, answer_with_path, env={"ASAN_OPTIONS": "quarantine_size_mb=1"})
    one = b"GET / HTTP/1.1\r\nHost: unknown.example\r\n\r\n"  # a 404 the edge makes
    n = 200000
    before = rss_kib(e.edge.p.pid)
    s = e.connect(timeout=60)
    sender = threading.Thread(target=s.sendall, args=(one * n,))
    sender.start()
    # the client reads nothing for a while (no readiness to wait for: an edge
    # busy with a read full of requests looks, from outside, like one that
    # stopped reading)
    time.sleep(1)
    grown = rss_kib(e.edge.p.pid) - before
    got = 0
    buf = b""
    while got < n:
        b = s.recv(1 << 20)
        assert b, f"closed after {got} of {n} answers"
        buf += b
        got += buf.count(b"HTTP/1.1 404 ")
        buf = buf[buf.rfind(b"HTTP/1.1 404 ") + 1:] if b"HTTP/1.1 404 " in buf else buf[-16:]
    sender.join()
    assert got == n
    # the answers (about 60 MB) wait in the sockets, not in the edge's memory
    assert grown < 32 * 1024, f"the edge grew by {grown} KiB"


def test_answers_made_inside_one_read_take_no_stack_per_request(fresh):
    # a read full of requests the edge answers itself is handled in a loop:
    # with a 256 KiB stack, one frame per request would overflow it
    e = scripted_edge(fresh, answer_with_path, prefix=("sh", "-c", 'ulimit -s 256; exec "$@"',
                                                       "sh"))
    one = b"GET / HTTP/1.1\r\nHost: unknown.example\r\n\r\n"
    n = 65536 // len(one)
    s = e.connect()
    s.sendall(one * n)
    got, buf = 0, b""
    while got < n:
        b = s.recv(1 << 20)
        assert b, f"closed after {got} of {n} answers"
        buf += b
        got += buf.count(b"HTTP/1.1 404 ")
        buf = buf[buf.rfind(b"HTTP/1.1 404 ") + 1:] if b"HTTP/1.1 404 " in buf else buf[-16:]
    assert e.edge.p.poll() is None


def thirty_two_k(conn, head, rest):
    # one upstream read each: the edge finishes every answer, however much
    # of the ones before is still queued for the client
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 32768\r\n\r\n" + b"y" * 32768)
    return rest


def requests_without_reading(e, then_close=False):
    """Requests for 32 KiB answers, each sent when the one before is
    answered, from a client that reads nothing (a small receive buffer),
    until the kernel takes no more of the answers: the last one waits in
    the edge. then_close: one more, with Connection: close. Returns the
    socket and the number of requests."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", e.port))
    queued, i, full = 0, 0, False
    while not full or then_close:
        close = ""
        if full:
            close, then_close = "Connection: close\r\n", False
        s.sendall(f"GET /{i} HTTP/1.1\r\nHost: {HOST}\r\n{close}\r\n".encode())
        wait_for(lambda: len(e.access_log()) > i, what=f"request {i} answered")
        i += 1
        now = sum(q for _, q in edge_sockets(e.port))
        full = full or (i > 4 and now - queued < 32768)
        queued = now
        assert i < 400, "the socket never filled"
    return s, i


def test_a_closing_connection_whose_client_stops_reading_is_dropped(fresh):
    e = scripted_edge(fresh, thirty_two_k, http={"response_timeout_ms": 500})
    s, _ = requests_without_reading(e, then_close=True)
    # answers queued and the last one says close: not waited for forever
    wait_for(lambda: established(e.port) == 0, timeout=5,
             what="the edge to drop a client that reads nothing")
    s.close()


def test_stop_sends_the_answers_already_made_before_closing(fresh):
    e = scripted_edge(fresh, thirty_two_k)
    s, n = requests_without_reading(e)
    e.edge.p.send_signal(signal.SIGTERM)
    e.edge.wait_line(lambda l: "stopping: no new connections" in l)
    # every answer arrives whole, then the connection ends
    s.settimeout(10)
    pending, got = b"", 0
    while True:
        try:
            st, _, body, pending = read_response(s, pending=pending)
        except EOFError as cut:
            assert len(cut.args[0]) == 0, f"answer {got + 1} cut off"
            break
        assert st == 200 and len(body) == 32768
        got += 1
    assert got == n
    assert e.edge.wait(10) == 0


def test_a_close_delimited_response_reaches_a_slow_client_whole(fresh):
    size = 100000

    def answer(conn, head, rest):
        if path_of(head) != "/close":
            return thirty_two_k(conn, head, rest)
        conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n" + b"z" * size)
        return None

    e = scripted_edge(fresh, answer)
    s, n = requests_without_reading(e)
    # the answer ends when the upstream closes, while what came before it
    # still waits in the edge for the client
    s.sendall(f"GET /close HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    wait_for(lambda: len(e.access_log()) > n, what="the close-delimited answer")
    s.settimeout(10)
    pending = b""
    for i in range(n):
        st, _, body, pending = read_response(s, pending=pending)
        assert st == 200 and len(body) == 32768
    st, hd, body, pending = read_response(s, pending=pending)
    assert st == 200 and hd["transfer-encoding"] == "chunked" and body == b"z" * size
    assert e.access_log()[-1]["status"] == 200


# ---- stop ----------------------------------------------------------------------

@pytest.mark.parametrize("hup", [False, True])
def test_stop_past_the_deadline_with_idle_threads_exits_cleanly(fresh, hup):
    # threads with no connection exit at once; the deadline (and a reload
    # during the drain) must not wake them after their loops are closed
    def hang(conn, head, rest):
        time.sleep(30)
        return None

    up = Scripted(hang)
    e = fresh(threads=4, demos=False, upstreams={("codex-web", "production"): up.url},
              http={"drain_timeout_ms": 1000})
    e.procs.append(up)
    e.start()
    s = e.connect()
    s.sendall(f"GET /slow HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    wait_for(lambda: up.heads, what="the request upstream")
    e.edge.p.send_signal(signal.SIGTERM)
    e.edge.wait_line(lambda l: "stopping: no new connections" in l)
    if hup:
        e.edge.p.send_signal(signal.SIGHUP)
        e.edge.wait_line(lambda l: "reloaded" in l)
    assert e.edge.wait(10) == 0, e.edge.err[-5:]
