"""Live changes against a running edge: previews, deploys, deletes,
versions, rollback, the admin API, and crash safety.

The edge runs the example's declaration with demo services for production
and staging and a recording upstream for previews, HTTP and DNS on free
ports, and its admin socket in the temporary data directory. The CLI runs
as the sanitized binary ($SB_BIN), the edge as $SB_SERVE_BIN.
"""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import threading
import time
import urllib.request

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from edge import (Edge, Proc, Recorder, SB, SERVICES, closed_port, preload_env, read_until_close,
                  request, shim, wait_for)

CLI = os.environ.get("SB_BIN", SB)
ZONE = "revelations.studio"
PREVIEW_HOSTS = [f"{label}-preview-123.{ZONE}" for label in ("codex", "api", "auth")]


def sb(edge, *args, check=0, env=None, timeout=60):
    p = subprocess.run([CLI, *map(str, args), "-c", str(edge.dir)], capture_output=True,
                       text=True, timeout=timeout, env={**os.environ, **(env or {})})
    assert p.returncode >= 0, f"killed by signal {-p.returncode}: {p.stderr}"
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}, want {check}\n{p.stdout}\n{p.stderr}"
    return p


def dq(edge, name, rtype="A"):
    m = dns.message.make_query(name, rtype)
    return dns.query.udp(m, "127.0.0.1", port=edge.dns_port, timeout=3)


def status(edge, host, path="/"):
    return request(edge, host, path)[0]


def wait_healthy(e, host, timeout=10):
    """Wait until host's /health answers 200 through the edge (a process
    started by command takes a moment)."""
    wait_for(lambda: status(e, host, "/health") == 200, timeout=timeout,
             what=f"{host}/health")


def recorded_deployments(rec):
    out = []
    with rec.lock:
        for r in rec.received:
            m = re.search(rb"(?im)^x-switchboard-deployment: *(\S+)", r)
            out.append(m.group(1).decode() if m else None)
    return out


def admin_port_of(e):
    """The port the edge's admin API listens on (it picked it: port 0)."""
    line = next(l for l in e.edge.err if "admin API on http://" in l)
    return int(line.rsplit(":", 1)[1])


def admin_edge(tmp_path):
    """recorded_edge with the admin API also on TCP, started: the edge
    (admin_port set) and its bearer token."""
    e = recorded_edge(tmp_path, admin_port=0)
    e.start(dns=True)
    e.admin_port = admin_port_of(e)
    return e, (e.data / "admin.token").read_text()


def recorded_edge(tmp_path, admin_port=None):
    """The example with a recording upstream for every preview (not
    started); with admin_port, the admin API also on TCP there."""
    rec = Recorder()
    ups = {(svc, "preview"): rec.url for svc, _, _ in SERVICES}
    e = Edge(tmp_path, upstreams=ups)
    e.rec = rec
    e.procs.append(rec)
    if admin_port is not None:
        p = e.dir / "switchboard.toml"
        p.write_text(p.read_text().replace(
            'data_dir = "../data"',
            f'data_dir = "../data"\n\n[listen]\nadmin = "127.0.0.1:{admin_port}"', 1))
    return e



@pytest.fixture
def live(tmp_path):
    e = recorded_edge(tmp_path)
    e.start(dns=True)
    yield e
    e.stop()


def test_preview_create_routes_resolves_and_has_consistent_vars(live):
    for h in PREVIEW_HOSTS:
        assert status(live, h) == 404
        assert dq(live, h).rcode() == dns.rcode.NXDOMAIN
    out = json.loads(sb(live, "preview", "create", "--pr", "123", "--ttl", "7d", "--json").stdout)
    # served when the command returns: no wait, no retry
    assert [status(live, h) for h in PREVIEW_HOSTS] == [200, 200, 200]
    for h in PREVIEW_HOSTS:
        r = dq(live, h)
        assert r.rcode() == dns.rcode.NOERROR
        assert [a.address for rr in r.answer for a in rr] == ["127.0.0.1"]
    # each host reached its own preview deployment
    assert recorded_deployments(live.rec)[-3:] == [
        "codex-web-preview-123", "stripe-webhook-handler-preview-123", "auth-worker-preview-123"]
    # every URL var points at the same preview
    deps = {d["name"]: d for d in out["deployments"]}
    assert set(deps) == {f"{s}-preview-123" for s, _, _ in SERVICES}
    urls = [v for d in deps.values() for v in d["vars"].values() if v.startswith("https://")]
    assert urls and all(re.fullmatch(r"https://[a-z]+-preview-123\.revelations\.studio", u)
                        for u in urls), urls
    assert deps["codex-web-preview-123"]["vars"]["AUTH_WORKER_URL"] == \
        "https://auth-preview-123.revelations.studio"
    listed = json.loads(sb(live, "preview", "list", "--json").stdout)
    assert [p["pr"] for p in listed] == [123] and sorted(listed[0]["hosts"]) == sorted(PREVIEW_HOSTS)
    assert listed[0]["expires_at"] - listed[0]["created_at"] == 7 * 86400

    sb(live, "preview", "delete", "--pr", "123")
    for h in PREVIEW_HOSTS:
        assert status(live, h) == 404
        assert dq(live, h).rcode() == dns.rcode.NXDOMAIN
    assert json.loads(sb(live, "preview", "list", "--json").stdout) == []
    err = sb(live, "preview", "delete", "--pr", "123", check=1).stderr
    assert "no live preview 123" in err


def test_a_live_change_applies_to_the_declaration_served_not_to_the_file(live):
    # an edit on disk that was never reloaded: the preview made meanwhile is
    # built on the declaration the edge serves, and the edit (codex's
    # production upstream moved to a closed port) is not taken in with it
    decl = live.dir / "switchboard.toml"
    up = live.demos[("codex-web", "production")].url
    text = decl.read_text()
    assert text.count(f'upstream.production = "{up}"') == 1
    decl.write_text(text.replace(f'upstream.production = "{up}"',
                                 f'upstream.production = "http://127.0.0.1:{closed_port()}"'))
    sb(live, "preview", "create", "--pr", "5")
    assert status(live, "codex-preview-5.revelations.studio") == 200
    assert status(live, "codex.revelations.studio", "/health") == 200
    # a reload takes the edit in
    sb(live, "reload")
    wait_for(lambda: status(live, "codex.revelations.studio", "/health") in (502, 503),
             what="the edited upstream served")
    assert status(live, "codex-preview-5.revelations.studio") == 200


def test_versions_and_rollback(live):
    sb(live, "preview", "create", "--pr", "7")
    sb(live, "deploy", "--env", "production", "--name", "auth-worker", "--var", "FEATURE:on",
       "--route", f"shop.{ZONE}/*")
    assert status(live, f"shop.{ZONE}") == 200
    sb(live, "delete", "codex-web-preview-7")
    assert status(live, f"codex-preview-7.{ZONE}") == 404
    assert status(live, f"api-preview-7.{ZONE}") == 200  # the preview's other services stay
    vs = json.loads(sb(live, "versions", "--json").stdout)
    assert [v["version"] for v in vs] == [3, 2, 1]
    assert vs[0]["summary"] == "deleted codex-web-preview-7"
    assert vs[2]["command"].startswith("switchboard preview create")
    # back to version 1: preview 7 whole again, the deploy's route gone
    out = sb(live, "rollback", "1").stdout
    assert "version 4: rolled back to version 1" in out
    assert status(live, f"codex-preview-7.{ZONE}") == 200
    assert status(live, f"shop.{ZONE}") == 404
    assert dq(live, f"shop.{ZONE}").rcode() == dns.rcode.NXDOMAIN
    # without a number: the version before the current state (4 -> 3)
    sb(live, "rollback")
    assert status(live, f"codex-preview-7.{ZONE}") == 404
    assert status(live, f"shop.{ZONE}") == 200
    assert dq(live, f"shop.{ZONE}").rcode() == dns.rcode.NOERROR
    assert "no version 99" in sb(live, "rollback", "99", check=1).stderr


def test_deploy_flags_dry_run_and_refusals(live):
    soa = dq(live, ZONE, "SOA").answer[0][0].serial
    dry = json.loads(sb(live, "deploy", "--name", "auth-worker", "--domain", f"login.{ZONE}",
                        "--dry-run", "--json").stdout)
    # built like the change (DNS included), and nothing of it served
    assert dq(live, ZONE, "SOA").answer[0][0].serial == soa
    assert dq(live, f"login.{ZONE}").rcode() == dns.rcode.NXDOMAIN
    assert dry["dry_run"] and dry["version"] == 0
    assert f"login.{ZONE}/*" in dry["deployments"][0]["routes"] or \
        f"login.{ZONE}" in dry["deployments"][0]["routes"]
    assert status(live, f"login.{ZONE}") == 404  # nothing changed
    assert json.loads(sb(live, "versions", "--json").stdout) == []
    # a dry run is refused where the change would be: an upstream whose
    # name does not resolve, found when the server builds the change
    for dry in (["--dry-run"], []):
        err = sb(live, "deploy", "--name", "codex-web", "--upstream",
                 "http://nosuch.invalid:80", *dry, check=1).stderr
        assert "nosuch.invalid" in err, err
    assert status(live, "codex.revelations.studio", "/health") == 200
    # a host another deployment serves
    err = sb(live, "deploy", "--name", "auth-worker", "--route", f"api.{ZONE}/*", check=1).stderr
    assert "api.revelations.studio" in err
    # a var that points at nothing routed: the consistency check refuses it
    err = sb(live, "deploy", "--name", "codex-web", "--var",
             f"API_URL:https://nowhere.{ZONE}", check=1).stderr
    assert "nowhere.revelations.studio" in err and "consistency" in err
    err = sb(live, "deploy", "--name", "nope", check=1).stderr
    assert "no service or deployment" in err
    err = sb(live, "deploy", "--name", "codex-web", "--domain", f"*.x.{ZONE}", check=1).stderr
    assert "whole host" in err
    assert json.loads(sb(live, "versions", "--json").stdout) == []
    # a deploy that moves an upstream, served at once
    rec2 = Recorder()
    live.procs.append(rec2)
    sb(live, "deploy", "--name", "auth-worker", "--upstream", rec2.url, "--var", "X:1")
    before = rec2.count()
    assert status(live, f"auth.{ZONE}", "/moved") == 200
    assert rec2.count() == before + 1


def test_cli_without_a_server_writes_the_store_and_a_start_serves_it(tmp_path):
    e = recorded_edge(tmp_path)
    try:
        out = sb(e, "preview", "create", "--pr", "55").stdout
        assert "version 1: created preview 55" in out
        e.start(dns=True)
        assert status(e, f"codex-preview-55.{ZONE}") == 200
        assert dq(e, f"auth-preview-55.{ZONE}").rcode() == dns.rcode.NOERROR
    finally:
        e.stop()


def test_preview_ttl_expires(live):
    # 3 s: served before it expires even when the sanitized CLI is slow to
    # exit on a loaded machine (with 1 s it was once gone at the first ask)
    sb(live, "preview", "create", "--pr", "9", "--ttl", "3s")
    assert status(live, f"codex-preview-9.{ZONE}") == 200
    wait_for(lambda: status(live, f"codex-preview-9.{ZONE}") == 404, timeout=15,
             what="preview 9 to expire")
    assert dq(live, f"codex-preview-9.{ZONE}").rcode() == dns.rcode.NXDOMAIN
    vs = json.loads(sb(live, "versions", "--json").stdout)
    assert vs[0]["summary"] == "expired preview 9"


@pytest.mark.skipif(not os.path.exists(shim("clock_step.so")),
                    reason="build/shim/clock_step.so: make e2e builds it")
def test_a_preview_expires_after_a_step_of_the_wall_clock(tmp_path):
    # the wall clock steps an hour back (NTP, an operator): expiry checks go
    # on once a second, they are not paused until the old time comes back
    step = tmp_path / "step"
    step.write_text("0")
    e = recorded_edge(tmp_path)
    env = preload_env(shim("clock_step.so"), SB_CLOCK_STEP_FILE=str(step))
    e.start(env=env)
    try:
        host = f"codex-preview-9.{ZONE}"
        # the store is polled every 200 ms: one poll on the old time (the
        # one-a-second pacing of expiry checks starts there); nothing to see
        time.sleep(0.5)
        step.write_text("-3600")
        # the CLI on the same clock, as a command on the same machine is
        sb(e, "preview", "create", "--pr", "9", "--ttl", "3s", env=env)
        assert status(e, host) == 200
        wait_for(lambda: status(e, host) == 404, timeout=15, what="preview 9 to expire")
    finally:
        e.stop()


def test_a_preview_expires_while_the_file_on_disk_does_not_load(live):
    # expiry builds on the declaration served: a file being edited (here
    # one that does not parse) does not hold it up for a minute
    sb(live, "preview", "create", "--pr", "9", "--ttl", "3s")
    assert status(live, f"codex-preview-9.{ZONE}") == 200
    (live.dir / "switchboard.toml").write_text("[broken\n")
    wait_for(lambda: status(live, f"codex-preview-9.{ZONE}") == 404, timeout=15,
             what="preview 9 to expire")
    assert not [l for l in live.edge.err if "expiry failed" in l]


def test_tenant_changes_are_versions_and_served_on_return(live):
    sb(live, "tenants", "add", "acme", "--settings", '{"plan":"pro"}')
    assert status(live, f"acme.{ZONE}") == 200
    assert dq(live, f"acme.{ZONE}").rcode() == dns.rcode.NOERROR
    sb(live, "tenants", "suspend", "acme")
    assert status(live, f"acme.{ZONE}") == 403
    vs = json.loads(sb(live, "versions", "--json").stdout)
    assert [v["summary"] for v in vs] == ["tenant acme: suspend", "tenant acme: add"]
    assert not vs[0]["deploys"]


def test_served_when_the_command_returns(live):
    """Over 20 creates, the first request after the command returns is
    already routed: the server publishes before it answers the command, so
    there is nothing to wait for (and no timing to measure)."""
    for pr in range(200, 220):
        sb(live, "preview", "create", "--pr", pr)
        assert status(live, f"codex-preview-{pr}.{ZONE}") == 200, pr


def admin(edge, method, path, token=None, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{edge.admin_port}{path}", method=method,
                                 data=body.encode() if body else None)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_admin_api_over_tcp_needs_the_token(tmp_path):
    e, token = admin_edge(tmp_path)
    port = e.admin_port
    try:
        assert oct((e.data / "admin.token").stat().st_mode & 0o777) == "0o600"
        assert oct((e.data / "admin.sock").stat().st_mode & 0o777) == "0o600"
        op = json.dumps({"op": "preview-create", "pr": 31})
        for bad in (None, "", "x" * 64, token[:-1] + ("0" if token[-1] != "0" else "1")):
            st, body = admin(e, "POST", "/v1/ops", bad, op)
            assert st == 401 and "token" in body["error"], (bad, st, body)
        assert status(e, f"codex-preview-31.{ZONE}") == 404
        st, body = admin(e, "POST", "/v1/ops", token, op)
        assert st == 200 and body["version"] == 1
        assert status(e, f"codex-preview-31.{ZONE}") == 200
        # the CLI through TCP, as CI uses it
        env = {"SWITCHBOARD_ADMIN_URL": f"http://127.0.0.1:{port}",
               "SWITCHBOARD_ADMIN_TOKEN": token}
        sb(e, "preview", "delete", "--pr", "31", env=env)
        assert status(e, f"codex-preview-31.{ZONE}") == 404
        env["SWITCHBOARD_ADMIN_TOKEN"] = "0" * 64
        err = sb(e, "preview", "create", "--pr", "32", env=env, check=2).stderr
        assert "token" in err
        st, body = admin(e, "GET", "/v1/status", token)
        assert st == 200 and body["version"] == 2
        # a ttl past any clock is refused, and changes nothing
        huge = json.dumps({"op": "preview-create", "pr": 33, "ttl": 2**63 - 1})
        st, body = admin(e, "POST", "/v1/ops", token, huge)
        assert st == 422 and "ttl" in body["error"], (st, body)
        st, body = admin(e, "GET", "/v1/status", token)
        assert st == 200 and body["version"] == 2
        assert status(e, f"codex-preview-33.{ZONE}") == 404
    finally:
        e.stop()


def test_concurrent_deploys_do_not_corrupt_the_store(live):
    n = 8
    procs = []
    for i in range(n):
        procs.append(subprocess.Popen(
            [CLI, "deploy", "-c", str(live.dir), "--name", "codex-web", "--var", f"N:{i}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        procs.append(subprocess.Popen(
            [CLI, "preview", "create", "-c", str(live.dir), "--pr", str(300 + i)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    vs = json.loads(sb(live, "versions", "--json").stdout)
    assert sorted(v["version"] for v in vs) == list(range(1, 2 * n + 1))
    assert sorted(p["pr"] for p in json.loads(sb(live, "preview", "list", "--json").stdout)) == \
        list(range(300, 300 + n))
    db = sqlite3.connect(live.data / "switchboard.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # every version's state is whole JSON, and the last deploy is the one served
    states = [json.loads(s) for (s,) in db.execute("SELECT state FROM versions WHERE state IS NOT NULL")]
    assert len(states) == 2 * n
    db.close()
    for pr in range(300, 300 + n):
        assert status(live, f"codex-preview-{pr}.{ZONE}") == 200, "\n".join(live.edge.err[-5:])


def test_killed_between_commit_and_swap_restarts_on_the_committed_version(tmp_path):
    e = recorded_edge(tmp_path)
    e.start(dns=True, env={"SWITCHBOARD_TEST_KILL_AFTER_COMMIT": "1"})
    try:
        p = sb(e, "preview", "create", "--pr", "77", check=None)
        assert p.returncode != 0  # the server died before answering
        assert e.edge.wait(timeout=10) == -9
        e.procs.remove(e.edge)
        vs = json.loads(sb(e, "versions", "--json").stdout)
        assert [v["summary"] for v in vs] == ["created preview 77"]
        e.start(dns=True)
        assert status(e, f"codex-preview-77.{ZONE}") == 200
        assert dq(e, f"codex-preview-77.{ZONE}").rcode() == dns.rcode.NOERROR
    finally:
        e.stop()


def test_changes_under_load_give_zero_errors(live):
    """wrk hammers production while previews come and go, a deploy moves a
    var and tenants change: no request fails, no connection drops."""
    wrk = Proc(["wrk", "-t2", "-c32", "-d6s", "-H", f"Host: codex.{ZONE}",
                f"http://127.0.0.1:{live.port}/health"])
    live.procs.append(wrk)
    t_end = time.monotonic() + 4.5
    i = 0
    while time.monotonic() < t_end:
        sb(live, "preview", "create", "--pr", 500 + i)
        sb(live, "deploy", "--name", "codex-web", "--var", f"ROUND:{i}")
        sb(live, "tenants", "add", f"t{i}")
        sb(live, "preview", "delete", "--pr", 500 + i)
        i += 1
    assert wrk.wait(timeout=30) == 0
    out = "\n".join(wrk.out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    assert total > 1000, out
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    assert i >= 3


def test_tenant_config_reaches_the_service_signed(tmp_path):
    """A tenant's display name and settings reach the tenant-aware service in
    X-Tenant-Config, covered by the signature (the demo service verifies it
    with the deployment's secret); a tenant without settings gets none."""
    e = Edge(tmp_path)
    e.start()
    try:
        settings = {"plan": "pro", "features": {"beta": True}, "theme": {"accent": "#ff0066"}}
        sb(e, "tenants", "add", "acme", "--name", "Acme Zürich", "--settings",
           json.dumps(settings))
        sb(e, "tenants", "add", "bare")
        st, _, body = request(e, f"acme.{ZONE}", "/echo")
        j = json.loads(body)
        assert st == 200 and j["signature"] == "valid", j
        cfg = j["headers"]["x-tenant-config"]
        assert cfg.isascii() and "\n" not in cfg
        assert json.loads(cfg) == {"display_name": "Acme Zürich", "settings": settings}
        assert j["headers"]["x-tenant-slug"] == "acme"
        st, _, body = request(e, f"bare.{ZONE}", "/echo")
        j = json.loads(body)
        assert st == 200 and j["signature"] == "valid"
        assert "x-tenant-config" not in j["headers"]
        # a client cannot inject one
        st, _, body = request(e, f"bare.{ZONE}", "/echo",
                              headers={"X-Tenant-Config": '{"plan":"enterprise"}'})
        assert "x-tenant-config" not in json.loads(body)["headers"]
        # a settings change is served when the command returns
        sb(e, "tenants", "set", "acme", "--settings", '{"plan":"free"}')
        j = json.loads(request(e, f"acme.{ZONE}", "/echo")[2])
        assert json.loads(j["headers"]["x-tenant-config"])["settings"] == {"plan": "free"}
        assert j["signature"] == "valid"
        # settings are kept as written, numbers and escapes included (they
        # were re-serialised: 0.1 became 0.10000000000000001, 1e2 100.0, and
        # big integers and \u0000 were refused); non-ASCII is escaped
        written = ('{"a": 0.1, "b": 1e2, "d": -0, "e": 12345678901234567890,'
                   ' "x": "\\u0000", "u": "\u00e9\U0001F600"}')
        sb(e, "tenants", "set", "acme", "--settings", written)
        j = json.loads(request(e, f"acme.{ZONE}", "/echo")[2])
        cfg = j["headers"]["x-tenant-config"]
        assert cfg == ('{"display_name":"Acme Z\\u00FCrich","settings":{"a":0.1,"b":1e2,"d":-0,'
                       '"e":12345678901234567890,"x":"\\u0000","u":"\\u00E9\\uD83D\\uDE00"}}'), cfg
        assert j["signature"] == "valid"
        shown = json.loads(sb(e, "tenants", "show", "acme", "--json").stdout)
        assert json.loads(written) == shown["settings"]
        # settings written into the store by other means keep their
        # whitespace: the header drops it between tokens, never in strings
        import sqlite3
        db = sqlite3.connect(e.data / "switchboard.db")
        db.execute("UPDATE tenants SET settings = ? WHERE slug = 'acme'",
                   ('{\n\t"a" : 1,\r\n "b": "x y\\t"\n}',))
        db.commit()
        db.close()

        def config():
            j = json.loads(request(e, f"acme.{ZONE}", "/echo")[2])
            return j["headers"].get("x-tenant-config"), j["signature"]
        wait_for(lambda: '"a":1' in (config()[0] or ""), what="the edited settings")
        cfg, sig = config()
        assert cfg == '{"display_name":"Acme Z\\u00FCrich","settings":{"a":1,"b":"x y\\t"}}', cfg
        assert json.loads(cfg)["settings"] == {"a": 1, "b": "x y\t"} and sig == "valid"
    finally:
        e.stop()


def test_preview_upstreams_started_by_command(tmp_path):
    """upstream.preview = { command = [...] }: `preview create` starts one
    process per service with PORT, its vars and its signing secret; it is
    routed once /health answers; it is restarted when it dies; `preview
    delete` stops it; stopping the edge leaves no process behind."""
    from edge import DEMO
    # each takes a moment to start listening, as real services do; the
    # never-created file in this test's directory marks this test's processes
    mark = tmp_path / "never-unhealthy"
    ups = {(svc, "preview"): ["/bin/sh", "-c", f'sleep 0.3; exec "$0" --name {svc} --env preview '
                              f'--unhealthy-file {mark}', DEMO] for svc, _, _ in SERVICES}
    e = Edge(tmp_path, upstreams=ups)
    e.start(dns=True)
    pids = lambda: set(int(p) for p in subprocess.run(
        ["pgrep", "-f", f"^{DEMO} --name .* --env preview --unhealthy-file {mark}$"],
        capture_output=True, text=True).stdout.split())
    try:
        assert not pids()
        sb(e, "preview", "create", "--pr", "42")
        host = f"codex-preview-42.{ZONE}"
        wait_healthy(e, host)
        st, _, body = request(e, host, "/echo")
        j = json.loads(body)
        assert j["deployment"] == "codex-web-preview-42" and j["worker"] == "codex-web"
        assert j["signature"] == "valid", j  # the process got its secret
        # the other two may still be in their "sleep 0.3" before the exec
        wait_for(lambda: len(pids()) == 3, timeout=10, what="three preview processes")
        started = [l for l in e.edge.err if "codex-web-preview-42: started pid" in l]
        assert len(started) == 1 and "on port " in started[0]
        # below the ephemeral range: an outgoing connection cannot take the
        # port as its source while the process restarts
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral = int(f.read().split()[0])
        port = int(re.search(r"on port (\d+)", started[0]).group(1))
        assert 10000 <= port < ephemeral, port
        # a deploy that changes its environment restarts it, and it is not
        # routed to until it answers again: 503 meanwhile, never a 502
        sb(e, "deploy", "--env", "preview", "--pr", "42", "--name", "codex-web",
           "--var", "RESTARTED:yes")
        seen = []
        deadline = time.monotonic() + 10
        while True:
            seen.append(status(e, host, "/health"))
            if seen[-1] == 200 and len([l for l in e.edge.err
                                        if "codex-web-preview-42: started pid" in l]) == 2:
                break
            assert time.monotonic() < deadline, (seen[-5:], e.edge.err[-10:])
            time.sleep(0.01)
        assert 502 not in seen, seen
        started = [l for l in e.edge.err if "codex-web-preview-42: started pid" in l][1:]
        # it dies: restarted, routed again
        pid = int(re.search(r"started pid (\d+)", started[0]).group(1))
        os.kill(pid, 9)
        deadline = time.monotonic() + 10
        while not [l for l in e.edge.err if "codex-web-preview-42: started pid" in l][2:]:
            assert time.monotonic() < deadline, e.edge.err[-10:]
            time.sleep(0.05)
        while status(e, host, "/health") != 200:
            assert time.monotonic() < deadline, e.edge.err[-10:]
            time.sleep(0.05)
        sb(e, "preview", "delete", "--pr", "42")
        assert status(e, host) == 404
        wait_for(lambda: not pids(), timeout=10, what="the preview processes to stop")
        sb(e, "preview", "create", "--pr", "43")
    finally:
        e.stop()
    wait_for(lambda: not pids(), timeout=10, what="no process left after the edge stopped")


DRAINING_UPSTREAM = """
import os, select, signal, socket, time
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(os.environ["PORT"])))
srv.listen(64)
stop_at = None
def term(*_):
    global stop_at
    stop_at = time.monotonic() + 0.5
signal.signal(signal.SIGTERM, term)
# a graceful stop: still answering (its /health too) for 0.5 s after
# SIGTERM, then the port closed, then the exit 0.5 s later
while stop_at is None or time.monotonic() < stop_at:
    if not select.select([srv], [], [], 0.05)[0]:
        continue
    c, _ = srv.accept()
    c.settimeout(2)
    try:
        data = b""
        while b"\\r\\n\\r\\n" not in data:
            b = c.recv(4096)
            if not b:
                break
            data += b
        c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\nok\\n")
    except OSError:
        pass
    c.close()
srv.close()
time.sleep(0.5)
"""


def test_a_restarted_process_that_drains_is_not_routed_to_until_the_new_one_answers(tmp_path):
    """A deploy that changes a command upstream's environment restarts it.
    A process that drains on SIGTERM still answers /health for a while:
    that answer marked the upstream up, and requests went to its port when
    it closed, and until the new process listened (502s). Only the new
    process's /health now marks it up: 503 meanwhile, never a 502."""
    ups = {(svc, "preview"): ["/usr/bin/python3", "-c", DRAINING_UPSTREAM]
           for svc, _, _ in SERVICES}
    e = Edge(tmp_path, upstreams=ups)
    e.start()
    try:
        sb(e, "preview", "create", "--pr", "42")
        host = f"codex-preview-42.{ZONE}"
        wait_healthy(e, host)
        started = lambda: len([l for l in e.edge.err if "codex-web-preview-42: started pid" in l])
        sb(e, "deploy", "--env", "preview", "--pr", "42", "--name", "codex-web",
           "--var", "RESTARTED:yes")
        seen = []
        deadline = time.monotonic() + 15
        while not (seen and seen[-1] == 200 and started() == 2):
            seen.append(status(e, host, "/health"))
            assert time.monotonic() < deadline, (seen[-5:], e.edge.err[-10:])
            time.sleep(0.01)
        assert 502 not in seen, (seen, e.edge.err[-10:])
        assert 503 in seen, seen  # the old process's drain was not routed to
    finally:
        e.stop()


def test_admin_api_through_a_tls_proxy(tmp_path):
    """CI reaches the admin API as https:// through a TLS-terminating proxy:
    the CLI verifies the certificate (a self-signed one is refused unless
    trusted through SSL_CERT_FILE) and sends the bearer token inside TLS."""
    import socket
    import ssl
    e = recorded_edge(tmp_path, admin_port=0)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    tls_port = lst.getsockname()[1]

    def pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            try:
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def serve():
        while True:
            try:
                c, _ = lst.accept()
            except OSError:
                return
            try:
                t = ctx.wrap_socket(c, server_side=True)
            except (OSError, ssl.SSLError):
                c.close()
                continue
            u = socket.create_connection(("127.0.0.1", port))
            threading.Thread(target=pump, args=(t, u), daemon=True).start()
            threading.Thread(target=pump, args=(u, t), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    e.start()
    port = admin_port_of(e)
    try:
        token = (e.data / "admin.token").read_text()
        env = {"SWITCHBOARD_ADMIN_URL": f"https://localhost:{tls_port}",
               "SWITCHBOARD_ADMIN_TOKEN": token}
        err = sb(e, "preview", "create", "--pr", "61", env=env, check=2).stderr
        assert "TLS" in err and "certificate" in err, err  # not trusted: nothing sent
        assert status(e, f"codex-preview-61.{ZONE}") == 404
        env["SSL_CERT_FILE"] = str(cert)
        out = sb(e, "preview", "create", "--pr", "61", env=env).stdout
        assert "version 1: created preview 61" in out
        env["SWITCHBOARD_ADMIN_TOKEN"] = "f" * 64
        assert "token" in sb(e, "preview", "delete", "--pr", "61", env=env, check=2).stderr
    finally:
        lst.close()
        e.stop()


def test_data_dir_too_long_for_a_socket_falls_back_to_the_store(tmp_path):
    """A data directory whose admin.sock path does not fit a Unix socket
    address: the server runs without the admin API (and says so), the CLI
    writes the store itself, and the server's store poll serves it."""
    e = recorded_edge(tmp_path)
    long_data = tmp_path / ("d" * 100)
    p = e.dir / "switchboard.toml"
    p.write_text(p.read_text().replace('data_dir = "../data"', f'data_dir = "{long_data}"', 1))
    e.data = long_data
    e.start(dns=True)
    try:
        assert any("no admin API" in l and "admin socket path longer" in l for l in e.edge.err)
        sb(e, "preview", "create", "--pr", "8")
        deadline = time.monotonic() + 2
        while status(e, f"codex-preview-8.{ZONE}") != 200:
            assert time.monotonic() < deadline, "not served from the store poll"
            time.sleep(0.02)
    finally:
        e.stop()


def test_admin_api_refuses_early_and_survives_bad_input(tmp_path):
    """Without the token the answer is 401 as soon as the head arrives (the
    body is never read); a body over 1 MiB gets 413; text that is not UTF-8
    or an op of 800 non-ASCII characters gets an error, not a crash; a
    display name that is not UTF-8 is refused by the CLI."""
    import socket
    e = recorded_edge(tmp_path, admin_port=0)
    e.start(dns=True)
    port = admin_port_of(e)
    try:
        def ask(data, sock_path=None):
            if sock_path:
                s = socket.socket(socket.AF_UNIX)
                s.connect(str(sock_path))
            else:
                s = socket.create_connection(("127.0.0.1", port))
            s.sendall(data)
            out = read_until_close(s, 10)
            return int(out.split(b" ", 2)[1]), out.split(b"\r\n\r\n", 1)[1]
        # head only, a promised 1 MiB body that never comes: answered anyway
        st, body = ask(b"POST /v1/ops HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        assert st == 401 and b"token" in body
        sock = e.data / "admin.sock"
        big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
        st, _ = ask(b"POST /v1/ops HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(big)
                    + big, sock)
        assert st == 413
        for payload in (b'{"op":"\xff\xfe"}', json.dumps({"op": "\u00e9" * 800}).encode()):
            st, body = ask(b"POST /v1/ops HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                           % len(payload) + payload, sock)
            assert st == 422, body
            json.loads(body)  # a JSON error, valid UTF-8
        assert e.edge.p.poll() is None
        p = subprocess.run([CLI, "tenants", "add", "ecole", "--name", b"\xe9cole", "-c", str(e.dir)],
                           capture_output=True)
        assert p.returncode == 1 and b"UTF-8" in p.stderr
        assert status(e, f"codex.{ZONE}") == 200
    finally:
        e.stop()


def test_rollback_of_the_only_change_returns_to_the_declaration(live):
    sb(live, "preview", "create", "--pr", "3")
    assert status(live, f"codex-preview-3.{ZONE}") == 200
    assert "rolled back to the declaration alone" in sb(live, "rollback").stdout
    assert status(live, f"codex-preview-3.{ZONE}") == 404
    vs = json.loads(sb(live, "versions", "--json").stdout)
    assert [v["version"] for v in vs] == [2, 1]


BIND_LOG = shim("bind_log.so")


@pytest.mark.skipif(not os.path.exists(BIND_LOG), reason="build/shim/bind_log.so: make e2e builds it")
def test_a_second_server_on_the_data_directory_leaves_the_first_alone(tmp_path):
    e = recorded_edge(tmp_path)
    e.start(dns=True)
    try:
        # on the first one's ports: its SO_REUSEPORT sockets would share
        # them, and take some of its queries and connections, until it
        # found out; it finds out before it binds anything
        second = subprocess.run(
            [SB, "serve", "-c", str(e.dir), "--listen", f"127.0.0.1:{e.port}", "--dns",
             f"127.0.0.1:{e.dns_port}", "--threads", "1"], capture_output=True, text=True,
            timeout=30, env={**os.environ, **preload_env(BIND_LOG)})
        assert second.returncode == 1, second.stderr
        assert "another switchboard server already serves this data directory" in second.stderr
        # named, so that the operator finds it
        assert f"(pid {e.edge.p.pid})" in second.stderr, second.stderr
        assert "bind-log:" not in second.stderr, second.stderr
        # the first server still owns its socket: a change goes through it and
        # is served when the command returns
        assert (e.data / "admin.sock").exists()
        out = sb(e, "preview", "create", "--pr", "5").stdout
        assert "created preview 5" in out
        assert status(e, f"codex-preview-5.{ZONE}") == 200
    finally:
        e.stop()


def test_var_names_that_cannot_be_environment_variables_are_refused(tmp_path):
    e, token = admin_edge(tmp_path)
    try:
        for key in ("", "A=B", "NL\nX"):
            op = json.dumps({"op": "deploy", "name": "codex-web", "vars": {key: "x"}})
            st, body = admin(e, "POST", "/v1/ops", token, op)
            assert st == 422 and "environment variable" in body["error"], (key, st, body)
        st, body = admin(e, "GET", "/v1/status", token)
        assert st == 200 and body["version"] == 0
    finally:
        e.stop()


def test_command_upstreams_end_with_a_killed_edge(tmp_path):
    """An edge killed with SIGKILL cannot stop its processes: the kernel
    ends them instead (PR_SET_PDEATHSIG), so none lives on holding its
    port."""
    from edge import DEMO
    mark = tmp_path / "never-unhealthy"
    ups = {(svc, "preview"): [DEMO, "--name", svc, "--env", "preview", "--unhealthy-file",
                              str(mark)] for svc, _, _ in SERVICES}
    e = Edge(tmp_path, upstreams=ups)
    e.start()
    pids = lambda: set(int(p) for p in subprocess.run(
        ["pgrep", "-f", f"^{DEMO} --name .* --env preview --unhealthy-file {mark}$"],
        capture_output=True, text=True).stdout.split())
    try:
        sb(e, "preview", "create", "--pr", "7")
        wait_healthy(e, f"codex-preview-7.{ZONE}")
        assert len(pids()) == 3
        e.edge.p.kill()
        e.edge.wait(timeout=10)
        wait_for(lambda: not pids(), timeout=10, what="the preview processes to end")
    finally:
        e.kill_all()
        for p in pids():
            os.kill(p, 9)


def test_a_stop_lets_requests_to_command_upstreams_finish(tmp_path):
    from edge import DEMO, read_response
    ups = {(svc, "preview"): [DEMO, "--name", svc, "--env", "preview"]
           for svc, _, _ in SERVICES}
    e = Edge(tmp_path, upstreams=ups, threads=1, http={"drain_timeout_ms": 10000})
    e.start()
    try:
        sb(e, "preview", "create", "--pr", "42")
        host = f"codex-preview-42.{ZONE}"
        wait_healthy(e, host)
        s = e.connect()
        s.sendall(f"GET /slow?ms=1500 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        # the process's stderr is the edge's: it says when the request is there
        e.edge.wait_line(lambda l: "demo-service codex-web: /slow for 1500 ms" in l)
        e.edge.p.send_signal(15)
        e.edge.wait_line(lambda l: "stopping: no new connections" in l)
        assert read_response(s)[0] == 200
        assert e.edge.wait(15) == 0
        assert any("every process started by command has exited" in l for l in e.edge.err)
    finally:
        e.stop()


def test_admin_clients_without_a_token_neither_crowd_out_the_socket_nor_take_memory(tmp_path):
    import socket
    e, _ = admin_edge(tmp_path)
    port = e.admin_port
    held = []
    try:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(70)]
        # the local socket has its own budget: a change still goes through it
        assert "created preview 6" in sb(e, "preview", "create", "--pr", "6").stdout
        # a head over 16 KiB is refused as it arrives, token or not
        for c in held:
            c.close()
        held = []

        def big_head():
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            try:
                s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20000 +
                          b"\r\n\r\n")
                out = read_until_close(s)
            except OSError:
                return b""
            # a 503 (or a reset): still over the budget, the edge has not
            # seen the closes yet
            return b"" if out.startswith(b"HTTP/1.1 503 ") else out
        assert wait_for(big_head, what="an answer").startswith(b"HTTP/1.1 431 ")
        # the target counts too
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_until_close(s).startswith(b"HTTP/1.1 431 ")
        # a head that never ends is not waited for past 5 s
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        assert read_until_close(s, timeout=20) == b""
        assert 4 < time.monotonic() - t0 < 10
    finally:
        for c in held:
            c.close()
        e.stop()


def test_a_command_upstream_that_dies_is_503_until_it_answers_again(tmp_path):
    from edge import DEMO
    # the restarted process takes a moment to listen, as real services do
    ups = {(svc, "preview"): ["/bin/sh", "-c", f'sleep 0.3; exec "$0" --name {svc} --env preview',
                              DEMO] for svc, _, _ in SERVICES}
    e = Edge(tmp_path, upstreams=ups, threads=1)
    e.start()
    try:
        sb(e, "preview", "create", "--pr", "8")
        host = f"codex-preview-8.{ZONE}"
        wait_healthy(e, host)
        started = [l for l in e.edge.err if "codex-web-preview-8: started pid" in l]
        os.kill(int(re.search(r"started pid (\d+)", started[0]).group(1)), 9)
        e.edge.wait_line(lambda l: "codex-web-preview-8: pid" in l and "killed by signal" in l)
        seen = []
        deadline = time.monotonic() + 10
        while not seen or seen[-1] != 200:
            seen.append(status(e, host, "/health"))
            assert time.monotonic() < deadline, (seen[-5:], e.edge.err[-10:])
            time.sleep(0.02)
        assert 502 not in seen and 503 in seen, seen
    finally:
        e.stop()


def test_a_registry_that_cannot_be_read_keeps_the_tenants_served(live):
    """A failed read of the tenant registry used to drop every stored tenant
    (static ones only were served); like any other store change that cannot
    be applied, it now leaves the tenants being served as they were."""
    import sqlite3
    host = f"keep1.{ZONE}"
    sb(live, "tenants", "add", "keep1")
    assert status(live, host, "/health") == 200
    db = sqlite3.connect(live.data / "switchboard.db")
    try:
        db.execute("ALTER TABLE tenants RENAME TO tenants_x")
        db.commit()
        wait_for(lambda: any("tenant registry" in l for l in live.edge.err),
                 what="the failed read to be logged")
        assert status(live, host, "/health") == 200
        assert dq(live, host).answer  # and DNS with it
        db.execute("ALTER TABLE tenants_x RENAME TO tenants")
        db.commit()
    finally:
        db.close()
    sb(live, "tenants", "add", "keep2")
    assert status(live, f"keep2.{ZONE}", "/health") == 200
    assert status(live, host, "/health") == 200


def test_listings_go_through_the_admin_url(tmp_path):
    """versions and preview list read the server's store through
    SWITCHBOARD_ADMIN_URL when it is set, as the changes do; they used to
    read a local store (empty on a CI runner) and print nothing, exit 0."""
    e, token = admin_edge(tmp_path)
    try:
        env = {"SWITCHBOARD_ADMIN_URL": f"http://127.0.0.1:{e.admin_port}",
               "SWITCHBOARD_ADMIN_TOKEN": token}
        sb(e, "preview", "create", "--pr", "41", "--ttl", "1d", env=env)
        # a declaration whose data_dir has no store: only the server knows
        elsewhere = tmp_path / "elsewhere"
        shutil.copytree(e.dir, elsewhere)
        toml = elsewhere / "switchboard.toml"
        toml.write_text(toml.read_text().replace('data_dir = "../data"',
                                                 f'data_dir = "{tmp_path / "empty"}"'))
        run = lambda *a, **kw: subprocess.run([CLI, *a, "-c", str(elsewhere)],
                                              capture_output=True, text=True, **kw)
        vs = json.loads(run("versions", "--json", env={**os.environ, **env}).stdout)
        assert [v["summary"] for v in vs] == ["created preview 41"], vs
        assert json.loads(run("versions", "--json", "--limit", "1",
                              env={**os.environ, **env}).stdout) == vs
        ps = json.loads(run("preview", "list", "--json", env={**os.environ, **env}).stdout)
        assert [p["pr"] for p in ps] == [41] and ps[0]["expires_at"], ps
        assert f"codex-preview-41.{ZONE}" in ps[0]["hosts"], ps
        out = run("preview", "list", env={**os.environ, **env}).stdout
        assert out.splitlines()[1].split()[0] == "41", out
        # a wrong token is said, not an empty table
        bad = run("versions", env={**os.environ, **env, "SWITCHBOARD_ADMIN_TOKEN": "0" * 64})
        assert bad.returncode == 2 and "token" in bad.stderr and bad.stdout == "", bad
    finally:
        e.stop()
