"""docs/configuration.md and docs/routing.md against what Switchboard does.

The examples are taken from the pages as written (so an edit that breaks
one fails here) and run through the CLI and, where the page speaks of
serving, a real edge. Each test names the sentence it holds the code to.
"""
import http.client
import os
import re
import subprocess
from pathlib import Path

from edge import SB, Proc

ROOT = Path(__file__).resolve().parents[2]
CLI = os.environ.get("SB_BIN", SB)
SERVE = os.environ.get("SB_SERVE_BIN", SB)


def sb(*args, check=0):
    p = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=60)
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    assert p.returncode == check, f"exit {p.returncode}, want {check}\n{p.stdout}\n{p.stderr}"
    return p


def write(d, name, text):
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(text)
    return d


def table(page, header):
    """The rows (cells without backticks) of the markdown table of
    docs/<page> whose header line starts with `header`."""
    lines = (ROOT / "docs" / page).read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(header))
    rows = []
    for l in lines[start + 2:]:
        if not l.startswith("|"):
            break
        rows.append([c.strip().strip("`") for c in l.strip("|").split("|")])
    assert rows, f"docs/{page}: empty table {header!r}"
    return rows


def test_the_precedence_examples_of_the_routing_page_resolve_as_it_says(tmp_path):
    """routing.md, Precedence: each request of the example table goes
    where the page says, with the routes of the table above it."""
    routes = table("routing.md", "| route | deployment |")
    toml = "".join(
        f'[[service]]\nname = "{dep}"\nroutes = ["{route}"]\n'
        f'upstream.production = "http://127.0.0.1:9100"\n' for route, dep in routes)
    d = write(tmp_path / "d", "switchboard.toml", toml)
    for request, wins, why in table("routing.md", "| request | wins | why |"):
        p = sb("resolve", "-c", d, request, check=1 if wins == "—" else 0)
        if wins == "—":
            assert "not routed" in p.stdout + p.stderr, (request, p.stdout, p.stderr)
        else:
            assert p.stdout.startswith(f"{request} -> {wins}\n"), (request, why, p.stdout)


ZONE = '[[zone]]\nname = "example.com"\naddresses = ["127.0.0.1"]\nnameservers = ["ns1.example.com"]\n'


def test_one_wrangler_file_under_two_spellings_is_reported_at_the_second_table(tmp_path):
    """configuration.md: "two [[service]] tables naming one wrangler file
    are reported at the second table". Written "w.toml" and "./w.toml"
    (or through a link), it was reported in the wrangler file, at a name
    said to be "also given at" that very place."""
    d = tmp_path / "d"
    write(d, "w.toml", 'name = "w"\nroutes = ["w.example.com/*"]\n')
    (d / "sub").mkdir()
    (d / "sub" / "w.toml").symlink_to("../w.toml")
    for second in ["./w.toml", "sub/w.toml"]:
        write(d, "switchboard.toml",
              ZONE + '[[service]]\nwrangler = "w.toml"\n'
              f'[[service]]\nwrangler = "{second}"\n')
        err = sb("check", "-c", d / "switchboard.toml", check=1).stderr
        assert re.search(r"switchboard\.toml:7:1: this \[\[service\]\] points at \S*w\.toml, "
                         r"as the one at line 5 does", err), (second, err)


def test_the_naming_templates_make_host_names(tmp_path):
    """routing.md, naming templates: a template that starts or ends with
    '-' made hosts such as www-.example.com, served and published."""
    svc = ('[[service]]\nname = "web"\nroutes = ["www.example.com/*"]\n'
           'upstream.production = "http://127.0.0.1:9100"\n')
    for tpl, what in [('staging = "{label}-"', "ends with '-'"),
                      ('preview = "-{label}-{pr}"', "starts with '-'")]:
        d = write(tmp_path / "d", "switchboard.toml", ZONE + f"[naming]\n{tpl}\n" + svc)
        err = sb("routes", "-c", d, check=2).stderr
        assert f"switchboard.toml:6:11: naming template" in err and what in err, err


def test_a_route_path_that_no_request_can_carry_is_refused_at_its_place(tmp_path):
    """routing.md: the edge refuses a path with a dot segment (400); a route
    whose path has one, or a space, was kept and never matched."""
    for pattern in ["www.example.com/a/../b/*", "www.example.com/my page", "www.example.com/./x"]:
        d = write(tmp_path / "d", "switchboard.toml",
                  ZONE + f'[[service]]\nname = "web"\nroutes = ["{pattern}"]\n')
        err = sb("check", "-c", d, check=1).stderr
        assert "switchboard.toml:7:11:" in err and "would never match" in err, (pattern, err)


def test_a_production_environment_in_another_case_is_said_to_look_like_ours(tmp_path):
    """configuration.md: an environment that only looks like ours is an
    error; [env.Production] was read, not deployed, and its routes never
    served without a word."""
    d = tmp_path / "d"
    write(d, "wrangler.toml", 'name = "web"\nroute = "top.example.com/*"\n'
          '[env.Production]\nroute = "www.example.com/*"\n')
    write(d, "switchboard.toml", ZONE + '[[service]]\nwrangler = "wrangler.toml"\n')
    err = sb("routes", "-c", d, check=2).stderr
    assert "wrangler.toml:3:1: [env.Production] looks like production" in err, err
    assert 'environments = { production = "Production" }' in err, err


def get(port, host, path="/"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Host": host})
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def test_the_edge_does_not_call_a_preview_shaped_slug_an_uncreated_preview(tmp_path):
    """routing.md, Tenants: "acme-preview-12 ... are never slugs". With
    preview 3 listed, acme-preview-3 (no service has an acme. host) got a
    404 saying "this preview has not been created", and so did resolve;
    codex-preview-4, a preview of a real host nobody created, still says
    so."""
    d = write(tmp_path / "d", "switchboard.toml", ZONE +
              '[tenants]\nservice = "app"\nstatic = ["acme"]\n[previews]\nprs = [3]\n'
              '[[service]]\nname = "app"\nroutes = ["codex.example.com/*"]\n'
              'upstream.production = "http://127.0.0.1:9"\n')
    p = sb("resolve", "-c", d, "acme-preview-3.example.com/", check=1)
    assert "a slug cannot have a preview suffix" in p.stdout + p.stderr, p.stdout + p.stderr
    data = tmp_path / "data"
    data.mkdir()
    e = Proc([SERVE, "serve", "-c", str(d), "--listen", "127.0.0.1:0", "--dns", "127.0.0.1:0",
              "--data", str(data)])
    try:
        line = e.wait_line(lambda l: "listening on http://" in l)
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)", line).group(1))
        status, body = get(port, "acme-preview-3.example.com")
        assert status == 404 and "a slug cannot have a preview suffix" in body, (status, body)
        status, body = get(port, "codex-preview-4.example.com")
        assert status == 404 and "this preview has not been created" in body, (status, body)
    finally:
        assert e.stop() == 0, e.err[-20:]
    assert not any("Sanitizer" in l or "runtime error" in l for l in e.err), e.err[-20:]
