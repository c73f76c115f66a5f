"""What falls between the day's changes: the wait for the next request
after empty lines, health counts across checks turned off and on, a
trusted proxy's scheme sent in several fields."""
import json
import os
import signal
import socket
import time

import pytest

from edge import (listen_local, preload_env, read_response, refused_at_the_limit, request, run_cli,
                  shim, wait_for)
from test_lifecycle_review import about, script_edge, unread_by_edge

HOST = "codex.revelations.studio"
FAIL = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"


# ---- the wait for a request -------------------------------------------------

def test_a_crlf_after_a_request_leaves_the_idle_timeout_whole(fresh):
    # Some clients send a CRLF after a request (RFC 9112 2.2 lets a server
    # skip it). Skipped at the end of the response, it restored a wait that
    # had begun when the connection opened, long over by then: the
    # keep-alive connection was closed within a millisecond, not after
    # idle_timeout_ms.
    e = fresh(http={"header_timeout_ms": 300, "idle_timeout_ms": 20000}).start()
    s = e.connect()
    s.sendall(f"GET /echo HTTP/1.1\r\nHost: {HOST}\r\n\r\n\r\n".encode())
    st, _, _, rest = read_response(s)
    assert st == 200 and rest == b""
    # longer than the header timeout, far shorter than the idle one
    assert not closed_by_peer_within(s, 1.0), "the idle connection was closed"
    s.sendall(f"GET /echo HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    assert read_response(s)[0] == 200
    s.close()


def closed_by_peer_within(s, seconds):
    """True when the peer closes s within seconds; False when s is still
    open then (nothing received)."""
    s.settimeout(seconds)
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


# ---- health checks ------------------------------------------------------------

def test_checks_turned_off_and_on_count_failures_in_a_row_afresh(fresh):
    # health_fails = 3: three failures in a row mark the upstream down. With
    # checks off it is marked up; when a reload turns them on again, the
    # failures counted before do not carry over: a single one took it out.
    e = script_edge(fresh, FAIL, health_fails=3)
    toml = e.dir / "switchboard.toml"
    on = toml.read_text()
    wait_for(lambda: about(e, "is down"), what="the upstream down", timeout=10)
    n = e.up.checks
    wait_for(lambda: e.up.checks >= n + 3, what="more failed checks")
    toml.write_text(on.replace("health_interval_ms = 100", "health_interval_ms = 0"))
    e.edge.p.send_signal(signal.SIGHUP)
    e.edge.wait_line(lambda l: f"upstream {e.up.url} is up: health checks are off" in l)
    assert request(e, HOST, "/echo")[0] == 200
    toml.write_text(on)
    n = e.up.checks
    e.edge.p.send_signal(signal.SIGHUP)
    line = e.edge.wait_line(lambda l: f"upstream {e.up.url} is down" in l)
    assert "(3 checks in a row)" in line, line
    assert e.up.checks >= n + 3


# ---- X-Forwarded-Proto -------------------------------------------------------

def test_a_trusted_proxy_s_scheme_in_two_fields_is_the_first(fresh):
    # a list sent in several fields is one list (RFC 9110 5.3), and its
    # first element is the client's side: the first field's, not the last's
    e = fresh(http={"trusted_proxies": ["127.0.0.0/8"]}).start()
    for fields, want in [(["https", "http"], "https"), (["http", "https"], "http"),
                         (["https, http", "http"], "https")]:
        s = e.connect()
        s.sendall(f"GET /echo HTTP/1.1\r\nHost: {HOST}\r\n".encode() +
                  b"".join(f"X-Forwarded-Proto: {f}\r\n".encode() for f in fields) +
                  b"Connection: close\r\n\r\n")
        st, _, raw_body, _ = read_response(s)
        s.close()
        body = json.loads(raw_body)
        assert st == 200
        assert body["headers"]["x-forwarded-proto"] == want, (fields, body["headers"])
        assert body["signature"] == "valid"


# ---- max_connections ----------------------------------------------------------

CLOCK_STEP = shim("clock_step.so")




@pytest.mark.skipif(not os.path.exists(CLOCK_STEP),
                    reason="build/shim/clock_step.so: make e2e builds it")
def test_refusals_are_reported_after_a_step_of_the_wall_clock(fresh, tmp_path):
    # the warning is limited to one a second on the wall clock: stepped an
    # hour back (NTP, an operator), refusals went unreported for an hour
    step = tmp_path / "step"
    step.write_text("0")
    e = fresh(http={"max_connections": 1}, threads=1).start(
        env=preload_env(CLOCK_STEP, SB_CLOCK_STEP_FILE=str(step)))
    busy = e.connect()
    busy.sendall(b"GET /health HTTP/1.1\r\n")  # a head arriving: not idle, never taken
    wait_for(lambda: unread_by_edge(e, busy) == 0, what="the head read")
    refused_at_the_limit(e)
    e.edge.wait_line(lambda l: "max_connections (1) reached" in l)
    step.write_text("-3600")
    time.sleep(1.1)  # past the once-a-second limit
    refused_at_the_limit(e)
    line = e.edge.wait_line(lambda l: "max_connections (1) reached" in l)
    assert "refused 1 connection(s)" in line, line
    busy.close()


# ---- health checks cancelled in the middle of a connect ---------------------------

def syn_sent_to(port):
    """Connections to 127.0.0.1:port still in SYN-SENT (from /proc/net/tcp)."""
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fl = line.split()
            if int(fl[2].split(":")[1], 16) == port and fl[3] == "02":
                n += 1
    return n


def test_checks_cancelled_while_connecting_by_reload_and_stop(fresh):
    # An upstream whose accept queue is full: the edge's check stays in its
    # connect. A reload through the admin API that turns checks off, and a
    # stop, cancel such checks (libuv calls the connect back with
    # ECANCELED before the handle is freed): nothing may touch a freed
    # check, and the stop does not wait for health_timeout_ms.
    srv, url = listen_local(0)
    fillers = [socket.socket() for _ in range(3)]
    for f in fillers:
        f.setblocking(False)
        f.connect_ex(srv.getsockname())
    port = srv.getsockname()[1]
    try:
        e = fresh(http={"health_interval_ms": 100, "health_timeout_ms": 60000},
                  upstreams={("codex-web", "production"): url})
        toml = e.dir / "switchboard.toml"
        on = toml.read_text()
        wait_for(lambda: syn_sent_to(port) >= 1, what="the queue full")
        base = syn_sent_to(port)  # the fillers the queue has no room for
        e.start()
        wait_for(lambda: syn_sent_to(port) > base, what="a check connecting")
        toml.write_text(on.replace("health_interval_ms = 100", "health_interval_ms = 0"))
        p = run_cli("reload", "-c", e.dir, check=0)
        assert "reloaded" in p.stdout, p.stderr
        toml.write_text(on)
        run_cli("reload", "-c", e.dir, check=0)
        wait_for(lambda: syn_sent_to(port) > base, what="a check connecting again")
        t0 = time.monotonic()
        e.edge.p.send_signal(signal.SIGTERM)
        assert e.edge.wait(timeout=70) == 0
        # the connect would be held for health_timeout_ms, 60 s
        assert time.monotonic() - t0 < 20, "the stop waited for a check's connect"
        bad = [l for l in e.edge.err if "Sanitizer" in l or "runtime error" in l]
        assert not bad, "\n".join(e.edge.err[-40:])
    finally:
        for f in fillers:
            f.close()
        srv.close()
