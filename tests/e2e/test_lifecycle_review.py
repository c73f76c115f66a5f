"""The edge's life: its own health endpoint, active upstream health checks,
reload (SIGHUP and `switchboard reload`) and stop (SIGTERM, SIGINT)."""
import base64
import json
import os
import signal
import time

import pytest

from edge import (LocalUpstream, closed_by_peer, listening, preload_env, read_response,
                  read_until_close, request, run_cli, shim, wait_for)
from test_http_edge import held_upstream, with_unhealthy_codex

HOST = "codex.revelations.studio"


class HealthScript(LocalUpstream):
    """An upstream whose /health answers health_answer (bytes, None to
    accept and never answer, or a function of the check's number giving
    either); every other request gets a 200. checks counts the /health
    requests received."""

    def __init__(self, health_answer):
        self.health_answer = health_answer
        self.checks = 0
        self.held = []
        super().__init__()

    def _serve(self, conn):
        buf = b""
        try:
            while True:
                head, buf = self._read_head(conn, buf)
                if head is None:
                    return
                if head.startswith(b"GET /health "):
                    self.checks += 1
                    answer = self.health_answer
                    if callable(answer):
                        answer = answer(self.checks)
                    if answer is None:
                        self.held.append(conn)  # kept open, never answered
                        return
                    conn.sendall(answer)
                    return  # the check asked for Connection: close
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        except OSError:
            return
        finally:
            if conn not in self.held:
                conn.close()


def script_edge(fresh, answer, **http):
    # a check's answer comes at once: a timeout long enough that a loaded
    # machine never turns an answer into a failure by its lateness
    up = HealthScript(answer)
    e = fresh(http={"health_interval_ms": 100, "health_timeout_ms": 5000, **http},
              upstreams={("codex-web", "production"): up.url})
    e.procs.append(up)
    e.up = up
    return e.start()


def about(e, what):
    """The edge's log lines saying the scripted upstream is `what` ("is
    down", "is up"); a demo service that a loaded machine made late for its
    own check says so about itself, not about this one."""
    return [l for l in e.edge.err if f"upstream {e.up.url} {what}" in l]


# ---- active health checks ----------------------------------------------------

@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 301 Moved Permanently\r\nLocation: /health/\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 302 Found\r\nLocation: /login\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
])
def test_a_redirect_or_any_2xx_from_health_is_healthy(fresh, answer):
    # as HAProxy's httpchk, nginx's health_check and Kubernetes' probes:
    # a server that redirects /health runs
    e = script_edge(fresh, answer)
    wait_for(lambda: e.up.checks >= 3, what="three checks")
    assert request(e, HOST, "/echo")[0] == 200
    assert not about(e, "is down"), e.edge.err[-5:]


@pytest.mark.parametrize("answer,why", [
    (b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", "/health answered 500"),
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "/health answered 404"),
    (b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n", "did not answer with an HTTP/1.x status line"),
    (b"HTTP/1.1 2x0 OK\r\n\r\n", "did not answer with an HTTP/1.x status line"),
])
def test_a_failing_health_marks_down_once_with_its_reason(fresh, answer, why):
    e = script_edge(fresh, answer)
    wait_for(lambda: request(e, HOST, "/echo")[0] == 503, timeout=10)
    n = e.up.checks
    wait_for(lambda: e.up.checks >= n + 3, what="three more checks")
    down = about(e, "is down")
    # one line per transition, not one per failed check
    assert len(down) == 1 and why in down[0], down


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
FAIL = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"


def test_health_fails_and_passes_need_checks_in_a_row(fresh):
    script = {"pattern": [FAIL, FAIL, OK]}  # never three failures in a row
    e = script_edge(fresh, lambda n: script["pattern"][n % len(script["pattern"])],
                    health_fails=3, health_passes=2)
    wait_for(lambda: e.up.checks >= 10, what="ten checks")
    assert not about(e, "is down"), e.edge.err[-5:]
    assert request(e, HOST, "/echo")[0] == 200
    script["pattern"] = [FAIL]
    wait_for(lambda: request(e, HOST, "/echo")[0] == 503, timeout=10)
    down = about(e, "is down")
    assert len(down) == 1 and "(3 checks in a row)" in down[0], down
    script["pattern"] = [OK, FAIL]  # never two passes in a row
    n = e.up.checks
    wait_for(lambda: e.up.checks >= n + 8, what="eight more checks")
    assert request(e, HOST, "/echo")[0] == 503
    assert not about(e, "is up")
    script["pattern"] = [OK]
    wait_for(lambda: request(e, HOST, "/echo")[0] == 200, timeout=10)
    assert len(about(e, "is up")) == 1


@pytest.mark.parametrize("key,value,msg", [
    ("health_fails", 0, "'health_fails' must be between 1 and 100, not 0"),
    ("health_passes", 101, "'health_passes' must be between 1 and 100, not 101"),
    ("health_fails", "3", "'health_fails' must be an integer, not a string"),
])
def test_health_counts_are_checked(fresh, key, value, msg):
    e = fresh(http={key: value})
    p = run_cli("check", "-c", e.dir, check=1)
    assert "switchboard.toml:" in p.stderr and msg in p.stderr, p.stderr


def test_stop_does_not_wait_for_a_health_check_in_flight(fresh):
    # an upstream that accepts /health and never answers: the check waits
    # for health_timeout_ms, and the stop must not wait with it
    e = script_edge(fresh, None, health_timeout_ms=60000)
    wait_for(lambda: e.up.held, what="a check in flight")
    t0 = time.monotonic()
    e.edge.p.send_signal(signal.SIGTERM)
    assert e.edge.wait(timeout=70) == 0
    # the check would hold it 60 s; an ASan exit on a loaded machine takes
    # a few
    assert time.monotonic() - t0 < 20, "the exit waited for the health check"


def codex_marked_down(fresh, tmp_path):
    """A started edge whose codex-web production demo fails its health
    checks for good (its flag stays), once it is marked down; checks every
    100 ms with a timeout no loaded machine reaches (auth's demo must stay
    up). Returns the edge, the demo and the upstreams, for write_decl."""
    flag = tmp_path / "unhealthy"
    flag.write_text("x")
    e, d, ups = with_unhealthy_codex(fresh, flag)
    e.write_decl(ups, {"health_interval_ms": 100, "health_timeout_ms": 5000})
    e.start()
    wait_for(lambda: request(e, HOST, "/echo")[0] == 503, timeout=10)
    return e, d, ups


def test_checks_turned_off_by_reload_bring_down_upstreams_back(fresh, tmp_path):
    e, d, ups = codex_marked_down(fresh, tmp_path)
    # with checks off, nothing would mark it up again: 503 for good. Its
    # /health still fails (the flag stays): only the reload can mark it
    # up, and no passing check can come first and say "is up" instead
    e.write_decl(ups, {"health_interval_ms": 0})
    e.edge.p.send_signal(signal.SIGHUP)
    e.edge.wait_line(lambda l: "reloaded" in l)
    assert request(e, HOST, "/echo")[0] == 200
    assert any(f"upstream {d.url} is up: health checks are off" in l for l in e.edge.err)


def test_health_state_is_kept_across_a_reload(fresh, tmp_path):
    e, d, ups = codex_marked_down(fresh, tmp_path)
    # the next check is 10 minutes away: what the reload left is what serves
    e.write_decl(ups, {"health_interval_ms": 600000, "health_timeout_ms": 5000})
    e.edge.p.send_signal(signal.SIGHUP)
    e.edge.wait_line(lambda l: "reloaded" in l)
    assert request(e, HOST, "/echo")[0] == 503  # still down, not reset to up
    assert request(e, "auth.revelations.studio", "/echo")[0] == 200


# ---- the edge's own endpoint ---------------------------------------------------

def test_own_health_endpoint_is_not_shadowed_by_a_route(fresh):
    # a declared route for every path of a host does not take the endpoint
    e = fresh(extra_toml='\n[[service]]\nname = "shadow"\nroutes = ["shadow.revelations.studio/*"]\n'
                         'upstream.production = "http://127.0.0.1:1"\n').start()
    for host in ["shadow.revelations.studio", "unknown.example"]:
        for path in ["/.well-known/switchboard/health", "/.well-known/switchboard/health?x=1"]:
            st, hdrs, body = request(e, host, path)
            h = json.loads(body)
            assert st == 200 and h["status"] == "ok" and h["routes"] == 9, (host, path, body)
            assert hdrs["content-type"] == "application/json"
        st, hdrs, body = request(e, host, "/.well-known/switchboard/health", method="HEAD")
        assert st == 200 and body == b"" and int(hdrs["content-length"]) > 0
        # an unknown endpoint under the prefix is the edge's 404, not the route's
        st, _, body = request(e, host, "/.well-known/switchboard/nope")
        assert st == 404 and json.loads(body)["message"] == "no such Switchboard endpoint"


# ---- reload ----------------------------------------------------------------------

UNRESOLVABLE = ('\n[[service]]\nname = "extra"\nroutes = ["extra.revelations.studio/*"]\n'
                'upstream.production = "http://no-such-host.invalid:80"\n')


def test_reload_cli_reports_what_the_server_did(fresh):
    e = fresh().start()
    toml = e.dir / "switchboard.toml"
    good = toml.read_text()
    gen = e.status()["generation"]
    # a declaration the CLI reads fine but the server refuses (its upstream
    # does not resolve): the CLI used to say "signalled" and exit 0
    toml.write_text(good + UNRESOLVABLE)
    p = run_cli("reload", "-c", e.dir, check=1)
    assert "reload refused" in p.stderr and "switchboard.toml:" in p.stderr, p.stderr
    assert "no-such-host.invalid" in p.stderr, p.stderr
    assert e.status()["generation"] == gen
    assert request(e, HOST, "/echo")[0] == 200
    # a good one: exit 0, and what is served now
    toml.write_text(good.replace('health_interval_ms = 200', 'health_interval_ms = 300'))
    p = run_cli("reload", "-c", e.dir, check=0)
    assert "reloaded" in p.stdout and "7 routes" in p.stdout, p.stdout
    assert e.status()["generation"] == gen + 1
    # what takes a restart is said by the CLI too
    toml.write_text(good.replace("[http]", '[listen]\ndns = "127.0.0.1:2"\n\n[http]', 1))
    p = run_cli("reload", "-c", e.dir, check=0)
    assert "[listen] dns changed: it takes effect at the next start" in p.stderr, p.stderr


def test_reload_cli_without_a_server(fresh):
    e = fresh()  # never started
    e.data.mkdir(exist_ok=True)
    p = run_cli("reload", "-c", e.dir, check=1)
    assert "no running server answers" in p.stderr
    # a pid file left by a server that died names no server (pid 1 here)
    (e.data / "switchboard.pid").write_text("1\n")
    p = run_cli("reload", "-c", e.dir, check=1)
    assert "no running server answers" in p.stderr
    # a server that was killed left its socket file: nobody answers on it
    e.start()
    e.edge.p.kill()
    e.edge.wait()
    assert (e.data / "admin.sock").exists()
    p = run_cli("reload", "-c", e.dir, check=1)
    assert "no running server answers" in p.stderr
    e.procs.remove(e.edge)
    e.edge = None  # killed on purpose: not a failed stop
    # a broken declaration: said here, nobody asked
    (e.dir / "switchboard.toml").write_text("[broken\n")
    p = run_cli("reload", "-c", e.dir, check=2)
    assert "switchboard.toml:1:" in p.stderr


def test_sighup_burst_leaves_the_last_declaration_served(fresh):
    e = fresh().start()
    toml = e.dir / "switchboard.toml"
    good = toml.read_text()
    gen = e.status()["generation"]
    toml.write_text(good + '\n[[service]]\nname = "docs"\nroutes = ["docs.revelations.studio/*"]\n'
                    f'upstream.production = "{e.demos[("codex-web", "production")].url}"\n')
    for _ in range(5):
        e.edge.p.send_signal(signal.SIGHUP)
    # signals may coalesce; every reload that ran read the same file
    wait_for(lambda: e.status()["generation"] > gen)
    assert request(e, "docs.revelations.studio", "/echo")[0] == 200
    assert not any("reload failed" in l for l in e.edge.err)


# ---- stop -------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_ends_the_drain_at_once(fresh, sig):
    e = held_upstream(fresh, http={"drain_timeout_ms": 60000})
    s = e.connect()
    s.sendall(f"GET /slow HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    wait_for(lambda: e.up.heads, what="the request at the upstream")
    e.edge.p.send_signal(sig)
    e.edge.wait_line(lambda l: "stopping: no new connections" in l)
    t0 = time.monotonic()
    e.edge.p.send_signal(sig)
    assert e.edge.wait(timeout=70) == 0
    # the drain would last 60 s
    assert time.monotonic() - t0 < 20, "the second signal did not end the drain"
    name = "SIGINT" if sig == signal.SIGINT else "SIGTERM"
    assert any(f"second {name}: closing 1 connections" in l for l in e.edge.err), e.edge.err[-5:]
    assert closed_by_peer(s)
    e.release.set()


def test_sigterm_serves_a_request_whose_head_is_arriving(fresh):
    e = fresh().start()
    s = e.connect()
    s.sendall(f"GET /echo HTTP/1.1\r\nHost: {HOST[:5]}".encode())
    # the edge has read the first part before the stop
    wait_for(lambda: unread_by_edge(e, s) == 0, what="the first part read")
    e.edge.p.send_signal(signal.SIGTERM)
    e.edge.wait_line(lambda l: "stopping: no new connections" in l)
    s.sendall(f"{HOST[5:]}\r\n\r\n".encode())
    st, hdrs, body, _ = read_response(s)
    assert st == 200 and hdrs["connection"] == "close", (st, hdrs)
    assert closed_by_peer(s)
    assert e.edge.wait(timeout=10) == 0


def unread_by_edge(e, s):
    """Bytes of s's connection waiting in the edge's receive queue (from
    /proc/net/tcp), None while the edge's socket is not listed."""
    client_port = s.getsockname()[1]
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fl = line.split()
            if (int(fl[1].split(":")[1], 16) == e.port and
                    int(fl[2].split(":")[1], 16) == client_port):
                return int(fl[4].split(":")[1], 16)
    return None


def ws_open(e):
    s = e.connect()
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(4096)
        assert b, buf
        buf += b
    assert buf.startswith(b"HTTP/1.1 101"), buf
    return s


def ws_echo(s, msg):
    mask = os.urandom(4)
    s.sendall(bytes([0x81, 0x80 | len(msg)]) + mask +
              bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
    got = b""
    while len(got) < 2 + len(msg):
        b = s.recv(4096)
        assert b, "the tunnel closed"
        got += b
    return got[2:]


def test_sigterm_drains_every_kind_of_request_then_cuts_at_the_deadline(fresh):
    e = fresh(http={"drain_timeout_ms": 3000}).start()
    stream = e.connect()  # a slow streaming response: 8 chunks, 100 ms apart
    stream.sendall(f"GET /stream?chunks=8&ms=100 HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    upload = e.connect()  # a body still being uploaded
    upload.sendall(f"POST /echo HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 10\r\n\r\nab".encode())
    tunnel = ws_open(e)
    idle = e.connect()  # kept alive, between requests
    assert request(e, HOST, "/health", sock=idle)[0] == 200
    endless = e.connect()  # longer than the drain: cut at its deadline
    endless.sendall(f"GET /stream?chunks=1000&ms=100 HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    wait_for(lambda: e.status()["connections"] == 5)
    t0 = time.monotonic()
    e.edge.p.send_signal(signal.SIGTERM)
    e.edge.wait_line(lambda l: "stopping: no new connections, 5 open" in l)
    assert closed_by_peer(idle, 10)
    # each serving thread closes its own listener when it is woken: the
    # log line comes first
    wait_for(lambda: not listening(e.port), what="every listener closed")
    with pytest.raises(OSError):
        e.connect(timeout=1)
    upload.sendall(b"cdefghij")
    st, hdrs, body, _ = read_response(upload)
    assert st == 200 and hdrs["connection"] == "close"
    assert json.loads(body)["body_bytes"] == 10
    st, _, body, _ = read_response(stream)
    assert st == 200 and body.count(b"\n") == 8
    assert ws_echo(tunnel, b"still there") == b"still there"
    cut = read_until_close(endless, timeout=10, resets=True)
    assert cut.startswith(b"HTTP/1.1 200") and not cut.endswith(b"0\r\n\r\n")
    assert closed_by_peer(tunnel, 5)
    assert e.edge.wait(timeout=10) == 0
    # cut at the 3 s deadline: the endless stream would run 100 s
    assert 2.5 < time.monotonic() - t0 < 20
    assert any("drain deadline: closing 2 connections" in l for l in e.edge.err), e.edge.err[-5:]


CLOCK_STEP = shim("clock_step.so")


@pytest.mark.skipif(not os.path.exists(CLOCK_STEP),
                    reason="build/shim/clock_step.so: make e2e builds it")
def test_uptime_ignores_a_step_of_the_wall_clock(fresh, tmp_path):
    # NTP or an operator steps the wall clock an hour back: the uptime is
    # how long the edge has run, not a negative number
    step = tmp_path / "step"
    step.write_text("0")
    e = fresh().start(env=preload_env(CLOCK_STEP, SB_CLOCK_STEP_FILE=str(step)))

    def uptime():
        st, _, body = request(e, HOST, "/.well-known/switchboard/health")
        assert st == 200
        return json.loads(body)["uptime_s"]
    t0 = time.monotonic()
    assert 0 <= uptime() <= 60
    step.write_text("-3600")
    assert 0 <= uptime() <= 60 + time.monotonic() - t0
    step.write_text("86400")  # and a day forward
    assert 0 <= uptime() <= 60 + time.monotonic() - t0
