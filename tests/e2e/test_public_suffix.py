"""Hosts outside every declared zone, judged by the public suffix list.

A production host `customer.com` (a custom domain whose DNS is elsewhere)
got the staging host `customer-staging.com` and preview hosts
`customer-preview-N.com`: other parties' domains, served by the edge to
whoever pointed them at it. A registered domain's apex is now treated as a
zone apex (no derived hosts without a declared label), while
`app.customer.com` still gets `app-staging.customer.com`. And a wildcard
over a public suffix (`*.com/*`), which would take every domain registered
there, is refused where it is written, by `check`, at start and at reload.
"""
import json
import subprocess

import pytest

from edge import SB, Edge, Recorder, request, run_cli

SITE = """
[[service]]
name = "site"
routes = ["customer.com/*", "app.customer.com/*"]
upstream.production = "{up}"
upstream.staging = "{up}"
"""


@pytest.fixture
def site(tmp_path):
    rec = Recorder()
    e = Edge(tmp_path, extra_toml=SITE.format(up=rec.url))
    e.procs.append(rec)
    e.rec = rec
    e.start()
    yield e
    e.stop()


def forwarded_to(e, host):
    """The deployment the edge forwarded a request for host to."""
    n = e.rec.count()
    st, _, body = request(e, host)
    assert st == 200 and e.rec.count() == n + 1, (host, st, body)
    with e.rec.lock:
        head = e.rec.received[-1].split(b"\r\n\r\n", 1)[0].decode().lower()
    return next(l.split(":", 1)[1].strip() for l in head.split("\r\n")
                if l.startswith("x-switchboard-deployment:"))


def test_a_registered_domain_gets_no_staging_host_in_another_domain(site):
    assert forwarded_to(site, "customer.com") == "site"
    assert forwarded_to(site, "app-staging.customer.com") == "site-staging"
    n = site.rec.count()
    for host in ("customer-staging.com", "customer-preview-3.com"):
        st, _, body = request(site, host)
        assert st == 404, (host, st, body)
    assert site.rec.count() == n, "a host of another domain was forwarded"
    # the CLI's listing agrees with what is served
    rows = json.loads(run_cli("routes", "-c", site.dir, "--json", check=0).stdout)
    hosts = {r["host"] for r in rows if r["deployment"].startswith("site")}
    assert hosts == {"customer.com", "app.customer.com", "app-staging.customer.com"}, hosts
    out = run_cli("resolve", "-c", site.dir, "customer-staging.com/", check=None).stdout
    assert "-> site" not in out, out


def test_a_wildcard_over_a_public_suffix_is_refused_and_the_edge_keeps_serving(site):
    toml = site.dir / "switchboard.toml"
    good = toml.read_text()
    toml.write_text(good.replace('"app.customer.com/*"]', '"app.customer.com/*",\n  "*.com/*"]'))
    out = run_cli("check", "-c", site.dir, check=1)
    text = out.stdout + out.stderr
    assert "switchboard.toml:" in text and '"com" is a public suffix' in text, text
    line = next(l for l in text.splitlines() if "public suffix" in l)
    # file:line:col of the pattern as written
    lineno = good.splitlines().index('routes = ["customer.com/*", "app.customer.com/*"]') + 2
    assert f"switchboard.toml:{lineno}:3:" in line, line
    r = subprocess.run([SB, "reload", "-c", site.dir], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "public suffix" in r.stderr, (r.returncode, r.stderr)
    # the old snapshot serves on: the wildcard took nothing
    assert request(site, "customer.com")[0] == 200
    assert request(site, "someone-else.com")[0] == 404


def test_a_server_will_not_start_with_a_wildcard_over_a_public_suffix(tmp_path):
    rec = Recorder()
    e = Edge(tmp_path, demos=False, upstreams={},
             extra_toml=SITE.format(up=rec.url).replace('"app.customer.com/*"]',
                                                         '"*.co.uk/*"]'))
    e.procs.append(rec)
    try:
        p = subprocess.run([SB, "serve", "-c", e.dir, "--listen", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and '"co.uk" is a public suffix' in p.stderr, p.stderr
    finally:
        e.kill_all()


NOTES = """[[zone]]
name = "example.com"
nameservers = ["ns1.example.com"]
addresses = ["192.0.2.1"]

[[service]]
name = "a"
routes = ["xn--caf-dma.example.com/*", "example.com/*", "example.com/x", "customer.com/*",
          "*.customer.com/*", "shop.example.com/x/*", "localhost/*"]
"""


def test_check_notes_the_hosts_that_get_no_staging_or_preview_host(tmp_path):
    """A staging deployment without a host is no surprise: check names each
    production host the rule leaves alone where a label would help, once."""
    (tmp_path / "switchboard.toml").write_text(NOTES)
    p = run_cli("check", "-c", tmp_path, check=0)
    assert p.stdout.startswith("ok: "), p.stdout
    notes = [l for l in p.stderr.splitlines() if l.startswith("switchboard check: note: ")]
    assert len(notes) == 3 and len(p.stderr.splitlines()) == 3, p.stderr
    want = [('switchboard.toml:8:11: host "xn--caf-dma.example.com"', "xn-- form"),
            ('switchboard.toml:8:40: host "example.com"', "declared zone's apex"),
            ('switchboard.toml:8:74: host "customer.com"', "registered domain's apex")]
    for line, (where, why) in zip(notes, want):
        assert where in line and why in line and "gets no staging or preview host" in line, line
        assert "a 'label' in its [[service]] names them" in line, line
    # with [env.staging] routes of its own, only previews are missing
    (tmp_path / "switchboard.toml").write_text(
        NOTES + '[service.env.staging]\nroutes = ["stage.example.com/*"]\n')
    p = run_cli("check", "-c", tmp_path, check=0)
    assert p.stderr.count("gets no preview host") == 3, p.stderr
    assert "staging or preview" not in p.stderr, p.stderr
    # a declared label names them all: no note (paths apart, so that the
    # hosts the label gives do not collide and the declaration loads)
    (tmp_path / "switchboard.toml").write_text(
        NOTES.replace('name = "a"\n', 'name = "a"\nlabel = "www"\n')
        .replace('"xn--caf-dma.example.com/*", "example.com/*", "example.com/x", '
                 '"customer.com/*"',
                 '"xn--caf-dma.example.com/i/*", "example.com/z/*", "customer.com/c/*"'))
    p = run_cli("check", "-c", tmp_path, check=0)
    assert p.stdout.startswith("ok: "), p.stdout
    assert "note:" not in p.stderr, p.stderr
