"""The JavaScript verifier (examples/verify-signature.js) against the C signer.

The C side signs through build/demo-service --sign-example and --sign-request
($SB_DEMO names another binary); node runs the verifier. Node is part of our
machines' set-up, so its absence fails these tests instead of skipping them.
"""
import hashlib
import hmac
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edge import read_until_close

ROOT = Path(__file__).resolve().parents[2]
DEMO = os.environ.get("SB_DEMO", str(ROOT / "build" / "demo-service"))
VERIFIER = ROOT / "examples" / "verify-signature.js"

# Reads [{request, secrets, tolerance, now}, ...] on stdin, prints [bool, ...].
JS_BATCH = """
const { verify } = require(process.argv[1]);
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map((c) => verify(c.request, c.secrets, c.tolerance, c.now));
  console.log(JSON.stringify(out));
});
"""


@pytest.fixture(scope="module")
def node():
    path = shutil.which("node")
    if not path:
        pytest.fail("node is not on PATH: the JavaScript verifier cannot be tested. "
                    "Install Node.js >= 16 (Debian: apt-get install nodejs).")
    return path


def js_verify(node, cases):
    p = subprocess.run([node, "-e", JS_BATCH, str(VERIFIER)], input=json.dumps(cases),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def c_sign(request):
    p = subprocess.run([DEMO, "--sign-request"], input=json.dumps(request), capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def as_js_request(signed, header=None, **changes):
    """What a Node service sees: header values with the signature added."""
    headers = dict(signed["headers"])
    headers["x-switchboard-signature"] = header or signed["header"]
    req = {k: signed[k] for k in ("method", "host", "path", "query")}
    req.update(changes)
    req["headers"] = {**headers, **changes.pop("headers", {})}
    return req


def test_js_self_test(node):
    p = subprocess.run([node, str(VERIFIER), "--self-test"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ok" in p.stdout


def test_js_verifies_the_c_worked_example(node):
    p = subprocess.run([DEMO, "--sign-example"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    ex = json.loads(p.stdout)
    cur, old = ex["secrets"]
    t = ex["t"]
    req = as_js_request(ex)
    cases = [
        (req, [cur], t, True),
        (req, [old], t, True),  # rotation: a service that still knows only the old key
        (req, [old, cur], t + 300, True),
        (req, [cur], t + 301, False),  # stale
        (req, [cur], t - 301, False),  # from the future
        (req, ["00" * 32], t, False),
        (as_js_request(ex, method="GET"), [cur], t, False),
        (as_js_request(ex, host="evil.revelations.studio"), [cur], t, False),
        (as_js_request(ex, path="/api/projects/43"), [cur], t, False),
        (as_js_request(ex, query=""), [cur], t, False),
        (as_js_request(ex, headers={"x-tenant-config": "{}"}), [cur], t, False),
        (as_js_request(ex, headers={"x-tenant-slug": "other"}), [cur], t, False),
        (as_js_request(ex, header=ex["header"].replace("t=1700000000", "t=1700000001")),
         [cur], t, False),
        (as_js_request(ex, header="v1=" + "0" * 64), [cur], t, False),
        (as_js_request(ex, header=ex["header"] + ",v1=zz"), [cur], t, False),
    ]
    got = js_verify(node, [{"request": r, "secrets": s, "tolerance": 300, "now": now}
                           for r, s, now, _ in cases])
    assert got == [want for *_, want in cases]


REQUESTS = [
    # IPv6 literal with a port, no query, some headers absent
    {"method": "GET", "host": "[2001:DB8::1]:8443", "path": "/", "query": "",
     "headers": {"x-request-id": "a"}},
    # no header at all, upper-case host, odd but legal path and query bytes
    {"method": "DELETE", "host": "API.Revelations.Studio", "path": "/a/%2F/b;c=d",
     "query": "x=%20&y=&z", "headers": {}},
    # every signed header, values with surrounding spaces (trimmed by both)
    {"method": "PATCH", "host": "acme.revelations.studio", "path": "/p", "query": "q=1",
     "headers": {"x-request-id": " r ", "traceparent": "00-aa-bb-01",
                 "x-forwarded-for": "203.0.113.7, 10.0.0.1", "x-forwarded-proto": "https",
                 "x-forwarded-host": "acme.revelations.studio", "x-tenant-slug": "acme",
                 "x-tenant-config": '{"plan":"pro","name":"Acm\u00e9"}',
                 "x-switchboard-environment": "preview",
                 "x-switchboard-deployment": "codex-web-preview-123"}},
    # a long path
    {"method": "POST", "host": "auth.revelations.studio", "path": "/" + "x" * 9000,
     "query": "", "headers": {"x-tenant-slug": "t"}},
    # a '[' without its ']': both cut at the first ':' (they used to differ)
    {"method": "GET", "host": "[2001:db8::1:8443", "path": "/", "query": "", "headers": {}},
]


@pytest.mark.parametrize("request_", REQUESTS,
                         ids=["ipv6", "bare", "all-headers", "long-path", "ipv6-unclosed"])
def test_js_verifies_c_signed_requests(node, request_):
    secrets = ["11" * 32, "2f" * 16]
    signed = c_sign({"secrets": secrets, "t": 1800000000, **request_})
    assert signed["header"].count("v1=") == 2
    # Node hands a service each byte as one character (latin1): model that
    headers = {k: v.encode().decode("latin1") for k, v in signed["headers"].items()}
    req = as_js_request({**signed, "headers": headers})
    cases = [{"request": req, "secrets": [s], "tolerance": 60, "now": 1800000000}
             for s in secrets]
    cases.append({"request": as_js_request(signed, method="PUT"), "secrets": secrets,
                  "tolerance": 60, "now": 1800000000})
    assert js_verify(node, cases) == [True, True, False]


def test_js_refuses_what_c_refuses(node):
    """Where the two verifiers used to disagree, or the JS one accepted a
    forgery: a t spelled with a leading zero, secrets that are not hex (an
    empty key would let anyone sign), a repeated signature header."""
    p = subprocess.run([DEMO, "--sign-example"], capture_output=True, text=True, timeout=30)
    ex = json.loads(p.stdout)
    cur = ex["secrets"][0]
    t = ex["t"]
    v1 = ex["header"].split(",")[1]
    # what anyone can compute when the verifier ends up with an empty key
    canon = c_sign({**{k: ex[k] for k in ("method", "host", "path", "query", "headers")},
                    "secrets": [cur], "t": t})["canonical"]
    empty_key = hmac.new(b"", canon.encode("latin1"), hashlib.sha256).hexdigest()
    forged = as_js_request(ex, header=f"t={t},v1={empty_key}")
    cases = [
        (as_js_request(ex, header=f"t=0{t},{v1}"), [cur], False),
        (as_js_request(ex), [cur, ""], True),  # a trailing comma in SWITCHBOARD_SECRETS
        (as_js_request(ex), [""], False),
        (forged, [cur, ""], False),
        (forged, [""], False),
    ]
    got = js_verify(node, [{"request": r, "secrets": s, "tolerance": 300, "now": t}
                           for r, s, _ in cases])
    assert got == [w for *_, w in cases]
    # a secret that is not hex is a configuration error, said at once
    script = ("const { verify } = require(process.argv[1]);"
              "try { verify({headers: {}}, ['0x11']); console.log('accepted'); }"
              "catch (e) { console.log(e.name); }")
    out = subprocess.run([node, "-e", script, str(VERIFIER)], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "TypeError", out.stdout + out.stderr


def test_js_verify_request_refuses_a_repeated_header(node, tmp_path):
    """A real Node http server behind verifyRequest: Node joins repeated
    headers, so two X-Switchboard-Signature lines (t= in one, v1= in the
    other) used to verify as one."""
    p = subprocess.run([DEMO, "--sign-example"], capture_output=True, text=True, timeout=30)
    ex = json.loads(p.stdout)
    t_item, v1_item = ex["header"].split(",", 1)
    server = f"""
const http = require('node:http');
const {{ verifyRequest }} = require({json.dumps(str(VERIFIER))});
const srv = http.createServer((req, res) => {{
  res.end(String(verifyRequest(req, [{json.dumps(ex["secrets"][0])}], 300, {ex["t"]})));
}});
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
"""
    proc = subprocess.Popen([node, "-e", server], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        import socket
        target = ex["path"] + ("?" + ex["query"] if ex["query"] else "")
        base = f"{ex['method']} {target} HTTP/1.1\r\nHost: {ex['host']}\r\n"
        base += "".join(f"{k}: {v}\r\n" for k, v in ex["headers"].items())

        def ask(sig_lines):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall((base + "".join(f"X-Switchboard-Signature: {l}\r\n" for l in sig_lines) +
                       "Content-Length: 0\r\nConnection: close\r\n\r\n").encode())
            return read_until_close(s, timeout=10).split(b"\r\n\r\n", 1)[1].decode()
        assert ask([ex["header"]]) == "true"
        assert ask([t_item, v1_item]) == "false"
    finally:
        proc.kill()
        proc.wait()


def test_js_clock_is_whole_seconds_like_c(node):
    """The default now is the current second, as the C verifier's time(NULL):
    half a second past the window's last second, both still accept (the
    JavaScript one said false while the C one said valid)."""
    p = subprocess.run([DEMO, "--sign-example"], capture_output=True, text=True, timeout=30)
    ex = json.loads(p.stdout)
    req = as_js_request(ex)
    script = """
const { verify } = require(process.argv[1]);
const [req, secret, t] = JSON.parse(process.argv[2]);
const at = (ms) => { Date.now = () => ms; return verify(req, [secret], 300); };
console.log(JSON.stringify([at((t + 300) * 1000 + 500), at((t + 301) * 1000),
  at((t - 300) * 1000), at((t - 301) * 1000 + 500)]));
"""
    out = subprocess.run([node, "-e", script, str(VERIFIER),
                          json.dumps([req, ex["secrets"][0], ex["t"]])],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [True, False, True, False]
