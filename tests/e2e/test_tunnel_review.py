"""`switchboard serve`: Upgrade (WebSocket) tunnels, probed as nginx and
HAProxy users expect a proxied tunnel to behave: back-pressure both ways,
half-close, resets, timeouts, the drain, bytes around the 101, refused
upgrades, and the headers of both heads. Each test fails on the defect it is
named after (or pins behaviour docs/http.md describes).
"""
import base64
import hashlib
import json
import os
import signal
import socket
import threading
import time

import pytest

from edge import (Scripted, closed_by_peer, edge_sockets, read_response, read_until_close,
                  refused_at_the_limit, request, wait_for)

HOST = "codex.revelations.studio"
SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n"


def tunnel_edge(fresh, handler, http=None, demos=False, threads=1):
    up = Scripted(handler)
    e = fresh(http=http, threads=threads, demos=demos,
              upstreams={("codex-web", "production"): up.url})
    e.procs.append(up)
    e.up = up
    return e.start()


def upgrade_head(path="/t", extra=b""):
    return (f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: Upgrade\r\n"
            f"Upgrade: foo\r\n").encode() + extra + b"\r\n"


def open_tunnel(e, path="/t", extra=b"", after=b"", timeout=10):
    """A client connection upgraded through e: the socket and the bytes that
    came after the 101's head."""
    s = e.connect(timeout=timeout)
    s.sendall(upgrade_head(path, extra) + after)
    st, hd, _, rest = read_response(s, head_only=True)
    assert st == 101, (st, hd)
    return s, rest


def recv_exactly(s, n, have=b""):
    buf = bytearray(have)
    while len(buf) < n:
        b = s.recv(min(1 << 20, n - len(buf)))
        if not b:
            raise EOFError(len(buf))
        buf += b
    return bytes(buf)


def recv_to_eof(s, have=b""):
    buf = bytearray(have)
    while True:
        b = s.recv(1 << 20)
        if not b:
            return bytes(buf)
        buf += b


def read_to_end(conn, rest, ended):
    """A Scripted handler's end: what conn sends up to its EOF appended to
    ended, or "reset"; the connection is then closed."""
    conn.settimeout(10)
    try:
        ended.append(recv_to_eof(conn, rest))
    except ConnectionResetError:
        ended.append("reset")
    return None


def pattern(n, seed=b"tunnel"):
    """n bytes in which any lost, doubled or reordered piece shows."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(seed + i.to_bytes(8, "big")).digest()
        i += 1
    return bytes(out[:n])


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def push_until_stalled(s, data, stall=1.0):
    """Send data until the peer stops taking it for stall seconds; returns
    how much went."""
    s.settimeout(stall)
    sent = 0
    try:
        while sent < len(data):
            sent += s.send(data[sent:sent + 65536])
    except socket.timeout:
        pass
    s.settimeout(30)
    return sent


def tunnel_logs(e):
    return [l for l in e.access_log() if l["status"] == 101]


def the_tunnel_log(e):
    """The one log line of e's tunnel: a request sent after it is the
    barrier, as a second line for the tunnel would be written before the
    barrier's (one serving thread)."""
    wait_for(lambda: tunnel_logs(e), what="the tunnel's log line")
    assert request(e, "barrier.invalid", "/")[0] == 404
    wait_for(lambda: any(l["host"] == "barrier.invalid" for l in e.access_log()),
             what="the barrier's log line")
    [l] = tunnel_logs(e)
    return l


# ---- half-close ---------------------------------------------------------------

def test_client_half_close_reaches_the_upstream_which_can_still_answer(fresh):
    got = []

    def handler(conn, head, rest):
        conn.sendall(SWITCH)
        conn.settimeout(10)
        got.append(recv_to_eof(conn, rest))  # the client's FIN, passed on
        conn.sendall(b"answer after your EOF")
        return None

    e = tunnel_edge(fresh, handler)
    s = e.connect()
    s.sendall(upgrade_head())
    wait_for(lambda: e.up.heads, what="the upgrade upstream")
    s.sendall(b"hello")
    s.shutdown(socket.SHUT_WR)
    got_all = recv_to_eof(s)
    head, _, after = got_all.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert after == b"answer after your EOF"
    assert got == [b"hello"]
    l = the_tunnel_log(e)
    assert (l["bytes_in"], l["bytes_out"]) == (5, len(got_all))


def test_upstream_half_close_reaches_the_client_which_can_still_send(fresh):
    got = []

    def handler(conn, head, rest):
        conn.sendall(SWITCH + b"bye")
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(10)
        got.append(recv_to_eof(conn, rest))
        return None

    e = tunnel_edge(fresh, handler)
    s, rest = open_tunnel(e)
    assert recv_to_eof(s, rest) == b"bye"  # the upstream's FIN, passed on
    s.sendall(b"still talking")
    s.shutdown(socket.SHUT_WR)
    wait_for(lambda: got, what="the upstream's EOF")
    assert got == [b"still talking"]
    assert closed_by_peer(s, 5)
    l = the_tunnel_log(e)
    assert l["bytes_in"] == len(b"still talking")


# ---- nothing lost, nothing reordered, memory bounded ----------------------------

def test_a_client_that_sends_a_lot_then_closes_loses_nothing(fresh):
    data = pattern(16 << 20)
    go = threading.Event()
    got = []

    def handler(conn, head, rest):
        conn.sendall(SWITCH)
        go.wait(20)  # not reading: the edge has to hold back
        conn.settimeout(20)
        got.append(recv_to_eof(conn, rest))
        conn.sendall(b"done")
        return None

    e = tunnel_edge(fresh, handler)
    s, rest = open_tunnel(e)
    rss0 = rss_kb(e.edge.p.pid)
    sent = push_until_stalled(s, data)
    assert sent < len(data), "the edge took 16 MB while its upstream read nothing"
    # the edge stopped reading the client: its memory did not grow with it
    assert rss_kb(e.edge.p.pid) - rss0 < 8 * 1024
    go.set()
    s.sendall(data[sent:])
    s.shutdown(socket.SHUT_WR)
    assert recv_to_eof(s, rest) == b"done"
    assert len(got[0]) == len(data) and got[0] == data


def test_an_upstream_that_sends_a_lot_then_closes_loses_nothing(fresh):
    data = pattern(16 << 20, b"down")
    finished = []

    def handler(conn, head, rest):
        conn.sendall(SWITCH)
        conn.sendall(data)  # blocks while the client does not read
        finished.append(True)
        return None  # closed at once, all of it sent

    e = tunnel_edge(fresh, handler)
    s, rest = open_tunnel(e)
    rss0 = rss_kb(e.edge.p.pid)
    time.sleep(1.5)  # the client reads nothing: the upstream is held back
    assert not finished, "the edge took 16 MB for a client that read nothing"
    assert rss_kb(e.edge.p.pid) - rss0 < 8 * 1024
    # then slowly, so that bytes are still queued at the edge when the
    # upstream's FIN comes
    got = bytearray(rest)
    while True:
        b = s.recv(16384)
        if not b:
            break
        got += b
        if len(got) > len(data) - (4 << 20):
            time.sleep(0.001)
    assert finished
    assert len(got) == len(data) and got == data


# ---- resets and deaths ----------------------------------------------------------

def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def test_a_client_reset_closes_the_upstream(fresh):
    ended = []

    def handler(conn, head, rest):
        conn.sendall(SWITCH)
        return read_to_end(conn, rest, ended)

    e = tunnel_edge(fresh, handler)
    s, _ = open_tunnel(e)
    s.sendall(b"x")
    wait_for(lambda: e.up.heads, what="the upgrade upstream")
    reset(s)
    wait_for(lambda: ended, what="the upstream side closed")
    wait_for(lambda: tunnel_logs(e), what="the tunnel's log line")


def test_an_upstream_reset_closes_the_client(fresh):
    def handler(conn, head, rest):
        conn.sendall(SWITCH + b"partial")
        time.sleep(0.2)
        reset(conn)
        return None

    e = tunnel_edge(fresh, handler)
    s, rest = open_tunnel(e)
    s.settimeout(5)
    got = rest
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            got += b
    except ConnectionResetError:
        pass
    assert got == b"partial"
    wait_for(lambda: tunnel_logs(e), what="the tunnel's log line")


def test_an_upstream_that_dies_mid_tunnel_closes_the_client(fresh):
    # the upstream process ends: its kernel closes the socket (a FIN). The
    # client sees the end, and once it writes into the dead tunnel the
    # connection is closed, not left open
    def handler(conn, head, rest):
        conn.sendall(SWITCH + b"last words")
        return None  # closed

    e = tunnel_edge(fresh, handler)
    s, rest = open_tunnel(e)
    assert recv_to_eof(s, rest) == b"last words"
    s.settimeout(5)
    with pytest.raises((BrokenPipeError, ConnectionResetError)):
        for _ in range(50):
            s.sendall(b"anyone there?")
            time.sleep(0.05)
    wait_for(lambda: tunnel_logs(e), what="the tunnel's log line")
    wait_for(lambda: not [1 for st, _ in edge_sockets(e.port) if st == 1],
             what="the client connection closed at the edge")


def test_a_client_gone_before_the_101_is_passed_on_after_it(fresh):
    ended = []
    release = threading.Event()

    def handler(conn, head, rest):
        release.wait(10)
        conn.sendall(SWITCH)
        return read_to_end(conn, rest, ended)

    e = tunnel_edge(fresh, handler)
    s = e.connect()
    s.sendall(upgrade_head() + b"early")
    wait_for(lambda: e.up.heads, what="the upgrade upstream")
    s.close()
    release.set()
    wait_for(lambda: ended, what="the upstream side closed")
    # the bytes it sent before its FIN, then the FIN, as from a live client
    assert ended == [b"early"]
    l = the_tunnel_log(e)
    assert (l["status"], l["bytes_in"]) == (101, 5)


def test_a_client_reset_before_the_101_closes_the_upstream_connection(fresh):
    ended = []

    def handler(conn, head, rest):
        return read_to_end(conn, rest, ended)

    e = tunnel_edge(fresh, handler)
    s = e.connect()
    s.sendall(upgrade_head() + b"early")
    wait_for(lambda: e.up.heads, what="the upgrade upstream")
    reset(s)
    wait_for(lambda: ended, what="the upstream connection closed")
    assert ended[0] in (b"", "reset")  # the held bytes never went up
    wait_for(lambda: e.access_log(), what="the request's log line")
    assert e.access_log()[0]["status"] == 0


# ---- timeouts and the drain -------------------------------------------------------

def test_an_idle_tunnel_is_closed_after_the_response_timeout(fresh):
    # as nginx closes a proxied WebSocket on proxy_read_timeout: a tunnel
    # silent both ways for response_timeout_ms ends; one with traffic does not
    def handler(conn, head, rest):
        conn.sendall(SWITCH)
        conn.settimeout(30)
        try:
            buf = rest
            while True:
                b = conn.recv(4096)
                if not b:
                    return None
                conn.sendall(b)  # echo
        except OSError:
            return None

    e = tunnel_edge(fresh, handler, http={"response_timeout_ms": 1000})
    busy, _ = open_tunnel(e)
    idle, _ = open_tunnel(e)
    t0 = time.monotonic()
    for i in range(12):  # 2.4 s of traffic, every 200 ms
        busy.sendall(b"ping%d" % i)
        assert recv_exactly(busy, len(b"ping%d" % i)) == b"ping%d" % i
        time.sleep(0.2)
    assert closed_by_peer(idle, 0.1)  # long closed by now
    busy.sendall(b"still")
    assert recv_exactly(busy, 5) == b"still"
    assert time.monotonic() - t0 > 2
    wait_for(lambda: len(tunnel_logs(e)) == 1, what="the idle tunnel's log line")


def test_a_half_closed_tunnel_is_not_kept_forever(fresh):
    # the client's FIN went on, the upstream neither answers nor closes:
    # the response timeout ends it
    def handler(conn, head, rest):
        conn.sendall(SWITCH)
        time.sleep(20)
        return None

    e = tunnel_edge(fresh, handler, http={"response_timeout_ms": 1000})
    s, _ = open_tunnel(e)
    s.shutdown(socket.SHUT_WR)
    assert closed_by_peer(s, 8)


def test_sigterm_closes_tunnels_at_the_drain_deadline(fresh):
    def handler(conn, head, rest):
        conn.sendall(SWITCH)
        conn.settimeout(30)
        try:
            while True:
                b = conn.recv(4096)
                if not b:
                    return None
                conn.sendall(b)
        except OSError:
            return None

    e = tunnel_edge(fresh, handler, http={"drain_timeout_ms": 1500})
    a, _ = open_tunnel(e)
    b, _ = open_tunnel(e)
    b.shutdown(socket.SHUT_WR)  # a half-closed one too
    t0 = time.monotonic()
    e.edge.p.send_signal(signal.SIGTERM)
    a.sendall(b"during the drain")
    assert recv_exactly(a, 16) == b"during the drain"
    assert closed_by_peer(a, 10) and closed_by_peer(b, 10)
    assert e.edge.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 8
    assert len(tunnel_logs(e)) == 2


# ---- bytes around the 101 ------------------------------------------------------------

def test_bytes_in_the_segment_of_the_upgrade_and_of_the_101_arrive_in_order(fresh):
    got = []

    def handler(conn, head, rest):
        time.sleep(0.2)  # the client's early bytes wait at the edge
        conn.sendall(SWITCH + b"FIRST")  # one segment with the head
        conn.settimeout(10)
        data = rest
        while len(data) < len(b"EARLY-LATE"):
            data += conn.recv(4096)
        got.append(data)
        conn.sendall(b"-SECOND")
        return None

    e = tunnel_edge(fresh, handler)
    s, rest = open_tunnel(e, after=b"EARLY-")  # one write with the head
    s.sendall(b"LATE")
    assert recv_to_eof(s, rest) == b"FIRST-SECOND"
    assert got == [b"EARLY-LATE"]
    assert len(e.up.heads) == 1


# ---- refused upgrades --------------------------------------------------------------

@pytest.mark.parametrize("status", [200, 400, 426])
def test_a_refused_upgrade_is_a_plain_response(fresh, status):
    def handler(conn, head, rest):
        body = b"no switch"
        extra = b"Upgrade: websocket\r\nConnection: Upgrade\r\n" if status == 426 else b""
        conn.sendall(b"HTTP/1.1 %d X\r\n%sContent-Length: %d\r\n\r\n" % (status, extra, len(body))
                     + body)
        return rest

    e = tunnel_edge(fresh, handler)
    s = e.connect()
    s.sendall(upgrade_head())
    st, hd, body, rest = read_response(s)
    assert (st, body) == (status, b"no switch")
    assert "upgrade" not in hd and hd["connection"] == "keep-alive"
    # the connection goes on as HTTP
    s.sendall(f"GET /next HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    assert read_response(s, pending=rest)[:3:2] == (status, b"no switch")
    assert len(e.up.heads) == 2


# ---- heads --------------------------------------------------------------------------

def test_upgrade_headers_pass_and_hop_by_hop_ones_do_not(fresh):
    heads = []

    def handler(conn, head, rest):
        heads.append(head)
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nconnection: keep-alive, UPGRADE, X-Hop\r\n"
                     b"upgrade: WebSocket\r\nX-Hop: up\r\nKeep-Alive: timeout=5\r\n"
                     b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                     b"Sec-WebSocket-Protocol: chat\r\n\r\n")
        conn.settimeout(10)
        data = rest
        while not data.endswith(b"!"):
            data += conn.recv(4096)
        conn.sendall(data)
        return None

    e = tunnel_edge(fresh, handler)
    s = e.connect()
    s.sendall(f"GET /chat HTTP/1.1\r\nHost: {HOST}\r\nconnection: keep-alive, UPGRADE, X-Hop\r\n"
              f"UPGRADE: WebSocket\r\nX-Hop: down\r\nTE: trailers\r\nKeep-Alive: 5\r\n"
              f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
              f"Sec-WebSocket-Protocol: chat, superchat\r\n"
              f"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n".encode())
    st, hd, _, rest = read_response(s, head_only=True)
    assert st == 101
    assert hd["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert hd["sec-websocket-protocol"] == "chat"
    assert hd["upgrade"] == "WebSocket" and hd["connection"] == "Upgrade"
    assert "x-hop" not in hd and "keep-alive" not in hd
    s.sendall(b"tunnel!")
    assert recv_exactly(s, 7, rest) == b"tunnel!"
    up = heads[0].decode().lower().split("\r\n")
    names = [l.split(":", 1)[0] for l in up[1:]]
    assert "sec-websocket-key: dghlihnhbxbszsbub25jzq==" in up
    assert "sec-websocket-version: 13" in up
    assert "sec-websocket-protocol: chat, superchat" in up
    assert "sec-websocket-extensions: permessage-deflate" in up
    assert "upgrade: websocket" in up and "connection: upgrade" in up
    assert names.count("connection") == 1 and names.count("upgrade") == 1
    assert "x-hop" not in names and "te" not in names and "keep-alive" not in names


def test_an_http10_upgrade_is_not_switched(fresh):
    # RFC 9110 7.8: a server ignores Upgrade in an HTTP/1.0 request; the
    # edge forwards it as the plain request it is
    heads = []

    def handler(conn, head, rest):
        heads.append(head)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return rest

    e = tunnel_edge(fresh, handler)
    s = e.connect()
    s.sendall(f"GET /old HTTP/1.0\r\nHost: {HOST}\r\nConnection: Upgrade\r\n"
              f"Upgrade: websocket\r\n\r\n".encode())
    got = read_until_close(s)
    assert got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"ok")
    low = heads[0].lower()
    assert b"\r\nupgrade:" not in low and b"\r\nconnection:" not in low


# ---- limits and reloads -------------------------------------------------------------

def echo_handler(conn, head, rest):
    conn.sendall(SWITCH)
    conn.settimeout(30)
    try:
        if rest:
            conn.sendall(rest)
        while True:
            b = conn.recv(4096)
            if not b:
                return None
            conn.sendall(b)
    except OSError:
        return None


def test_tunnels_count_toward_max_connections(fresh):
    e = tunnel_edge(fresh, echo_handler, http={"max_connections": 2})
    a, _ = open_tunnel(e)
    b, _ = open_tunnel(e)
    refused_at_the_limit(e)  # a tunnel is never taken for an idle connection
    for s in (a, b):
        s.sendall(b"alive")
        assert recv_exactly(s, 5) == b"alive"
    a.close()
    wait_for(lambda: tunnel_logs(e), what="the first tunnel closed")
    c, _ = open_tunnel(e)  # its place is free again
    c.sendall(b"third")
    assert recv_exactly(c, 5) == b"third"


def test_a_tunnel_outlives_a_reload_on_its_snapshot(fresh):
    # a reload that moves the deployment to another upstream leaves an open
    # tunnel where it is; new requests go to the new upstream
    def other(conn, head, rest):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnew")
        return rest

    e = tunnel_edge(fresh, echo_handler)
    s, _ = open_tunnel(e)
    new = Scripted(other)
    e.procs.append(new)
    e.write_decl({("codex-web", "production"): new.url},
                 {"health_interval_ms": 200, "health_timeout_ms": 500})
    e.edge.p.send_signal(signal.SIGHUP)
    e.edge.wait_line(lambda l: "reloaded " in l)
    wait_for(lambda: request(e, HOST, "/after")[2] == b"new", what="the new upstream served")
    s.sendall(b"same tunnel")
    assert recv_exactly(s, 11) == b"same tunnel"
    s.close()
    wait_for(lambda: tunnel_logs(e), what="the tunnel's log line")
    [l] = tunnel_logs(e)
    assert l["upstream"] == e.up.url and l["bytes_in"] == 11


@pytest.mark.parametrize("connection,upgrade", [
    ("keep-alive, Upgrade", "websocket"),
    ("UPGRADE", "WebSocket"),
    ("upgrade , keep-alive", "websocket"),
])
def test_connection_token_lists_and_case_upgrade(fresh, connection, upgrade):
    e = tunnel_edge(fresh, echo_handler)
    s = e.connect()
    s.sendall(f"GET /t HTTP/1.1\r\nHost: {HOST}\r\nConnection: {connection}\r\n"
              f"Upgrade: {upgrade}\r\n\r\n".encode())
    st, hd, _, rest = read_response(s, head_only=True)
    assert st == 101
    s.sendall(b"x")
    assert recv_exactly(s, 1, rest) == b"x"
    assert f"\r\nUpgrade: {upgrade}".encode() in e.up.heads[0]


def test_an_upgrade_without_the_connection_option_is_plain(fresh):
    # "Upgrade" not named in Connection: no upgrade (RFC 9110 7.8), and a
    # 101 to it is a 502
    e = tunnel_edge(fresh, echo_handler)
    s = e.connect()
    s.sendall(f"GET /t HTTP/1.1\r\nHost: {HOST}\r\nConnection: keep-alive\r\n"
              f"Upgrade: websocket\r\n\r\n".encode())
    st, _, _, _ = read_response(s)
    assert st == 502
    assert b"\r\nUpgrade:" not in e.up.heads[0]


@pytest.mark.parametrize("answer", ["101", "200"])
def test_an_upgrade_on_head(fresh, answer):
    # HEAD may ask for an upgrade as GET does; refused, its answer has no
    # body whatever its Content-Length says, and the connection goes on
    def handler(conn, head, rest):
        if answer == "101":
            return echo_handler(conn, head, rest)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        return rest

    e = tunnel_edge(fresh, handler)
    s = e.connect()
    s.sendall(upgrade_head().replace(b"GET ", b"HEAD ", 1))
    st, hd, _, rest = read_response(s, head_only=True)
    if answer == "101":
        assert st == 101
        s.sendall(b"data")
        assert recv_exactly(s, 4, rest) == b"data"
        return
    assert st == 200 and hd["content-length"] == "5" and rest == b""
    s.sendall(f"HEAD /again HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    st2, _, _, rest = read_response(s, head_only=True)
    assert st2 == 200 and rest == b""
