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