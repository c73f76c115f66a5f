"""Tests written in a mutation audit of issue 3 (serve HTTP): each one
fails against a small change to the edge that the other tests let through
(the change is named in each test's comment)."""
import json
import time

import pytest

from edge import Recorder, closed_port, raw, request, wait_for
from test_http_framing import scripted_edge
from test_lifecycle_review import about, script_edge

HOST = "codex.revelations.studio"


def recorder_edge(fresh, **http):
    """An edge whose codex-web production upstream is a Recorder (e.rec)."""
    rec = Recorder()
    e = fresh(http=http, upstreams={("codex-web", "production"): rec.url})
    e.procs.append(rec)
    e.rec = rec
    return e.start()


def forwarded_head(e, marker, extra):
    """Send a GET with the marker in its path and the extra header lines;
    the head the upstream received, as lower-cased field names and values."""
    st, _, _ = request(e, HOST, f"/{marker}", headers=extra)
    assert st == 200
    with e.rec.lock:
        got = [r for r in e.rec.received if marker.encode() in r.split(b"\r\n", 1)[0]]
    assert len(got) == 1, got
    lines = got[0].split(b"\r\n\r\n", 1)[0].decode().split("\r\n")[1:]
    return [(k.strip().lower(), v.strip()) for k, v in (l.split(":", 1) for l in lines)]


# X-Forwarded-Host, -For and -Proto are the edge's own; the rest of the
# X-Forwarded-* family says where a request came from too, and is only a
# trusted proxy's to say (mutant: HK_XF_OTHER forwarded from any client).
OTHER_FORWARDING = {"X-Forwarded-Port": "443", "X-Forwarded-Prefix": "/admin",
                    "X-Forwarded-Server": "evil.example", "X-Forwarded-Ssl": "on"}


@pytest.mark.parametrize("trusted", [False, True])
def test_other_x_forwarded_fields_come_only_from_a_trusted_proxy(fresh, trusted):
    e = recorder_edge(fresh, **({"trusted_proxies": ["127.0.0.0/8"]} if trusted else {}))
    fields = dict(forwarded_head(e, "xf-other", OTHER_FORWARDING))
    for name, value in OTHER_FORWARDING.items():
        if trusted:
            assert fields.get(name.lower()) == value, fields
        else:
            assert name.lower() not in fields, fields


# An absolute-form target whose authority is a prefix of Host, or Host a
# prefix of it, is a disagreement (mutant: Host compared over the target's
# length only, so "Host: <authority>.evil.example" reached the upstream).
@pytest.mark.parametrize("target,host", [
    (f"http://{HOST}/echo", f"{HOST}.evil.example"),
    (f"http://{HOST}/echo", f"{HOST}x"),
    (f"http://{HOST}.evil.example/echo", HOST),
])
def test_a_host_that_only_starts_like_the_absolute_target_is_a_400(fresh, target, host):
    e = recorder_edge(fresh)
    out = raw(e, f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]
    assert b"Host disagrees with the absolute-form target" in out, out
    # a request sent after it is the barrier: when it has arrived, the
    # refused one would have too
    assert request(e, HOST, "/after")[0] == 200
    wait_for(lambda: e.rec.count() >= 1, what="the request sent after")
    assert [h.split(b" ")[1] for h in e.rec.received] == [b"/after"], e.rec.received


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
FAIL = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"


# health_passes successes in a row mark an upstream up again, not one more
# (mutant: passes > health_passes; the other tests only wait for a recovery
# made of endless successes, which any count reaches).
@pytest.mark.parametrize("passes", [1, 2])
def test_exactly_health_passes_successes_in_a_row_bring_an_upstream_back(fresh, passes):
    # three failures take it down, then never more successes in a row than
    # health_passes before a failure
    pattern = [OK] * passes + [FAIL]
    e = script_edge(fresh, lambda n: FAIL if n <= 3 else pattern[(n - 4) % len(pattern)],
                    health_fails=1, health_passes=passes)
    wait_for(lambda: about(e, "is down"), what="the upstream marked down")
    wait_for(lambda: e.up.checks >= 3 + 4 * len(pattern), timeout=10,
             what="four rounds of the pattern")
    assert about(e, "is up"), e.edge.err[-10:]


# The health endpoint's uptime is in seconds (mutant: milliseconds; a check
# for "at most 60" right after the start let it through when the edge
# answered within 60 ms of starting).
def test_health_uptime_is_in_seconds(fresh):
    e = fresh()
    t0 = time.monotonic()
    e.start()
    time.sleep(1.2)

    def uptime():
        st, _, body = request(e, HOST, "/.well-known/switchboard/health")
        assert st == 200
        return json.loads(body)["uptime_s"]
    up = uptime()
    assert 1 <= up <= time.monotonic() - t0 + 1, up


# Each error the edge makes is logged with the status the client got
# (mutant: a 502 logged as a 504; test_access_log_line checks a 200 only).
def test_access_log_status_is_the_status_of_each_error_sent(fresh):
    dead = f"http://127.0.0.1:{closed_port()}"  # refuses: 502 (no checks: never 503)
    e = fresh(http={"response_timeout_ms": 300, "health_interval_ms": 0},
              upstreams={("auth-worker", "production"): dead}).start()
    cases = [("auth.revelations.studio", "/echo", 502), (HOST, "/slow?ms=3000", 504),
             ("nowhere.example", "/", 404), (HOST, "/echo", 200)]
    for i, (host, path, want) in enumerate(cases):
        st, hdrs, _ = request(e, host, path, headers={"X-Request-Id": f"status-{i}"})
        assert st == want, (host, path, st)
        assert hdrs["x-request-id"] == f"status-{i}"

    def logged():
        by_id = {l["request_id"]: l for l in e.access_log()}
        return by_id if all(f"status-{i}" in by_id for i in range(len(cases))) else None
    by_id = wait_for(logged, what="a log line for each request")
    for i, (host, path, want) in enumerate(cases):
        assert by_id[f"status-{i}"]["status"] == want, by_id[f"status-{i}"]


# A request is retried only when no byte of the response had come (mutant:
# a GET whose pooled connection sent part of a head and closed was sent
# again, so the upstream processed it twice).
def test_no_retry_once_part_of_the_response_arrived(fresh):
    def handler(conn, head, rest):
        if len(e.up.heads) == 2:  # the second, on the pooled connection
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")
            return None
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return rest
    e = scripted_edge(fresh, handler)
    assert request(e, HOST, "/first")[0] == 200
    st, _, body = request(e, HOST, "/second")
    assert st == 502, (st, body)
    # a request sent after it is the barrier: a retry would have come first
    assert request(e, HOST, "/third")[0] == 200
    wait_for(lambda: len(e.up.heads) >= 3, what="the request sent after")
    assert [h.split(b" ")[1] for h in e.up.heads] == [b"/first", b"/second", b"/third"]


# [[service]] max_body_bytes is that service's limit (mutant: [http]'s for
# every service; no test declared one).
def test_a_service_s_own_body_limit(fresh):
    e = fresh(http={"max_body_bytes": 1000})
    toml = e.dir / "switchboard.toml"
    text = toml.read_text()
    line = 'wrangler = "apps/web/wrangler.toml"\n'
    assert text.count(line) == 1
    toml.write_text(text.replace(line, line + "max_body_bytes = 100\n"))
    e.start()
    assert request(e, HOST, "/echo", method="POST", body=b"x" * 100)[0] == 200
    st, _, body = request(e, HOST, "/echo", method="POST", body=b"x" * 101)
    assert st == 413 and json.loads(body)["error"] == "body_too_large"
    # another service keeps [http]'s
    assert request(e, "auth.revelations.studio", "/echo", method="POST", body=b"x" * 1000)[0] == 200
    assert request(e, "auth.revelations.studio", "/echo", method="POST", body=b"x" * 1001)[0] == 413


# X-Forwarded-Host is the request's Host, once, whoever the client is
# (mutant: a trusted proxy's kept beside the edge's, so the upstream got two
# that disagree, the first unsigned).
@pytest.mark.parametrize("trusted", [False, True])
def test_one_x_forwarded_host_the_request_s(fresh, trusted):
    e = recorder_edge(fresh, **({"trusted_proxies": ["127.0.0.0/8"]} if trusted else {}))
    fields = forwarded_head(e, "xfh", {"X-Forwarded-Host": "evil.example"})
    assert [v for k, v in fields if k == "x-forwarded-host"] == [HOST], fields
