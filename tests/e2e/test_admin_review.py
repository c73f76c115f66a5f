"""The admin API probed as a user of HAProxy's runtime API or Caddy's admin
API would: methods and paths, query strings, ops a script might send that
the CLI never does, and the client's view of the URL it is given. Each test
here came with a fix; test_admin_api.py and test_live.py hold the rest.
"""
import json
import socket
import subprocess
import threading

import pytest

from edge import request
from test_admin_api import CLI, ask, cli, make_edge, unix

ZONE = "revelations.studio"


@pytest.fixture
def edge(tmp_path):
    e = make_edge(tmp_path)
    e.start()
    yield e
    e.stop()


def get(e, target, method="GET", body=b""):
    """One request on the Unix socket: (status, headers, parsed body)."""
    st, h, raw = ask(unix(e), b"%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                     % (method.encode(), target.encode(), len(body), body))
    return st, h, json.loads(raw) if raw else None


def op(e, o):
    return get(e, "/v1/ops", "POST", json.dumps(o).encode())


def served(e):
    """What the edge serves: its version and generation (a new snapshot
    is a new generation)."""
    s = e.status()
    return s["version"], s["generation"]


def test_reload_asked_with_another_method_is_405_with_allow(edge):
    """/v1/reload was missing from the endpoints the HTTP layer knows, so
    GET /v1/reload was a 404 "no endpoint", as if reload did not exist."""
    for method in ("GET", "PUT", "DELETE"):
        st, h, body = get(edge, "/v1/reload", method)
        assert (st, h.get("allow")) == (405, "POST"), (method, st, h, body)
        assert body == {"error": f"{method} /v1/reload: this endpoint takes POST only",
                        "code": "invalid input"}, body
    st, _, body = get(edge, "/v1/reload", "POST")
    assert st == 200 and body["generation"] == 2, body


def test_a_query_is_read_by_its_parameters(edge):
    """GET /v1/status?x=1 was a 404 "no endpoint" while POST /v1/status?x=1
    was a 405 for that endpoint; /v1/versions?limit=1&x=1 said that limit
    "1&x=1" is not a number. A query is now split into its parameters: an
    unknown one is refused by name, on every endpoint, and an empty query
    is none."""
    for pr in (1, 2, 3):
        assert op(edge, {"op": "preview-create", "pr": pr})[0] == 200
    for target, name, takes in (("/v1/status?x=1", "x", "none"),
                                ("/v1/previews?limit=1", "limit", "none"),
                                ("/v1/versions?x=1", "x", "limit"),
                                ("/v1/versions?limit=1&x=1", "x", "limit"),
                                ("/v1/versions?limt=1", "limt", "limit")):
        st, _, body = get(edge, target)
        path = target.split("?")[0]
        assert (st, body) == (422, {
            "error": f'GET {path}: unknown query parameter "{name}" (it takes {takes})',
            "code": "invalid input"}), (target, st, body)
    st, _, body = get(edge, "/v1/versions?limit=1&limit=2")
    assert (st, body["error"]) == (422, 'GET /v1/versions: query parameter "limit" given '
                                        'twice'), body
    # a name that is not ours is still a JSON string
    st, _, body = get(edge, '/v1/status?"\\\xff=1'.encode("latin-1").decode("utf-8", "replace"))
    assert st == 422 and "unknown query parameter" in body["error"], body
    st, _, body = get(edge, "/v1/versions?limit=abc")
    assert (st, body["error"]) == (422, 'limit "abc" is not a number'), body
    # what works: no query, an empty one, limit alone or among empty parts
    for target, n in (("/v1/versions", 3), ("/v1/versions?", 3), ("/v1/versions?limit=2", 2),
                      ("/v1/versions?&limit=1&", 1)):
        st, _, body = get(edge, target)
        assert st == 200 and [v["version"] for v in body] == [3, 2, 1][:n], (target, body)
    for target in ("/v1/status?", "/v1/previews?"):
        assert get(edge, target)[0] == 200, target
    # the method is still checked first, and a path nobody serves is a 404
    assert get(edge, "/v1/status?x=1", "POST")[0] == 405
    assert get(edge, "/v1/nothing?x=1")[0] == 404
    assert served(edge) == (3, 4)


def test_a_deploy_command_names_a_program(edge):
    """"command": [""] was recorded and published: the edge then routed
    codex-web to a process that could not start (503), and every command
    upstream stopped being updated ("processes not updated: the command is
    empty"). "command": [] was taken as no command at all. Both are refused
    now, before anything changes, as the declaration refuses them."""
    assert request(edge, f"codex.{ZONE}", "/echo")[0] == 200
    before = served(edge)
    for command in ([""], [], ["", "x"]):
        st, _, body = op(edge, {"op": "deploy", "name": "codex-web", "command": command})
        assert (st, body) == (422, {
            "error": "command: expected the program to start and its arguments, the "
                     "program not empty", "code": "invalid input"}), (command, st, body)
    # the CLI's `-- ""` (cli() puts -c last, which would join the command)
    p = subprocess.run([CLI, "deploy", "-c", str(edge.dir), "--name", "codex-web", "--", ""],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "command: expected the program to start" in p.stderr, p.stderr
    assert served(edge) == before
    assert request(edge, f"codex.{ZONE}", "/echo")[0] == 200
    assert cli(edge, "versions", "--json").stdout.strip() == "[]"
    assert not any("processes not updated" in l for l in edge.edge.err)


def test_the_client_refuses_an_admin_url_with_a_path(edge):
    """SWITCHBOARD_ADMIN_URL=https://ci.example.com/switchboard lost its
    path: the CLI sent POST /v1/ops, with the bearer token, to the root of
    that host, whatever serves it there. An URL with a path (other than /)
    is now refused before anything is sent."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(5)
    port = srv.getsockname()[1]
    got = []

    def accept():
        try:
            c, _ = srv.accept()
        except OSError:
            return
        c.settimeout(5)
        try:
            got.append(c.recv(65536))
            c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}")
        except OSError:
            pass
        c.close()
    t = threading.Thread(target=accept)
    t.start()
    try:
        env = {"SWITCHBOARD_ADMIN_URL": f"http://127.0.0.1:{port}/switchboard",
               "SWITCHBOARD_ADMIN_TOKEN": "a" * 64}
        p = cli(edge, "preview", "create", "--pr", "5", env=env, check=2)
        assert "without a path" in p.stderr, p.stderr
    finally:
        srv.close()
        t.join()
    assert got == [], got  # nothing, the token least of all, left for that host
    # a bare trailing slash is no path
    env["SWITCHBOARD_ADMIN_URL"] = f"http://127.0.0.1:{port}/"
    p = cli(edge, "preview", "create", "--pr", "5", env=env, check=2)
    assert "cannot connect" in p.stderr, p.stderr
    assert served(edge)[0] == 0


def test_an_upstream_that_does_not_resolve_is_blamed_on_the_deploy(edge):
    """A deploy's upstream that the edge cannot resolve was refused as
    "<dir>/switchboard.toml: upstream ...": the file had nothing to do with
    it, and nothing in the op said where to look. It is named as the
    deploy's now, as a deploy's route that does not parse is."""
    before = served(edge)
    for dry in (False, True):
        st, _, body = op(edge, {"op": "deploy", "name": "codex-web", "dry_run": dry,
                                "upstream": "http://nonexistent.invalid:80"})
        assert st == 422 and body["error"].startswith(
            'deploy codex-web-production: upstream "http://nonexistent.invalid:80": '), body
        assert "switchboard.toml" not in body["error"], body
    assert served(edge) == before
    assert request(edge, f"codex.{ZONE}", "/echo")[0] == 200
