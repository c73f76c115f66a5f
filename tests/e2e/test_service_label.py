"""A [[service]]'s `label` names its staging and preview hosts.

The example with `label = "hooks"` on stripe-webhook-handler: its staging
host is hooks-staging.revelations.studio and PR N's hooks-preview-N, in
HTTP, DNS, the CLI's listings and the URL vars the other services get;
api-staging and api-preview-N are no longer its hosts. The example's
wrangler files write their staging URLs out, so `switchboard check` names
the two that still say api-staging, and passes once they are changed.
"""
import json
import os
import subprocess

import dns.message
import dns.query
import dns.rcode
import pytest

from edge import Edge, Recorder, SB, SERVICES, request

CLI = os.environ.get("SB_BIN", SB)
ZONE = "revelations.studio"
WRANGLER = 'wrangler = "workers/stripe-webhook-handler/wrangler.toml"'
STAGING_VARS = ["apps/web/wrangler.toml", "workers/auth/wrangler.toml"]


def sb(d, *args, check=0):
    p = subprocess.run([CLI, *map(str, args), "-c", str(d)], capture_output=True, text=True,
                       timeout=60)
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}, want {check}\n{p.stdout}\n{p.stderr}"
    return p


def add_label(d):
    toml = d / "switchboard.toml"
    text = toml.read_text()
    assert WRANGLER in text
    toml.write_text(text.replace(WRANGLER, WRANGLER + '\nlabel = "hooks"', 1))


def fix_staging_vars(d):
    for f in STAGING_VARS:
        p = d / f
        text = p.read_text()
        assert f"https://api-staging.{ZONE}" in text
        p.write_text(text.replace(f"https://api-staging.{ZONE}", f"https://hooks-staging.{ZONE}"))


def dq(e, name):
    return dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=e.dns_port,
                         timeout=3)


@pytest.fixture
def labelled(tmp_path):
    rec = Recorder()
    e = Edge(tmp_path, upstreams={(svc, "preview"): rec.url for svc, _, _ in SERVICES})
    e.procs.append(rec)
    e.rec = rec
    add_label(e.dir)
    fix_staging_vars(e.dir)
    e.start(dns=True)
    yield e
    e.stop()


def test_check_names_the_written_urls_a_label_moves(tmp_path):
    e = Edge(tmp_path, demos=False,
             upstreams={(s, env): "http://127.0.0.1:9" for s, _, _ in SERVICES
                        for env in ("production", "staging")})
    sb(e.dir, "check")
    add_label(e.dir)
    out = sb(e.dir, "check", check=1)
    bad = [l for l in (out.stdout + out.stderr).splitlines() if "api-staging" in l]
    assert len(bad) == 2, out
    assert all("var API_URL" in l and "is not routed" in l for l in bad), bad
    assert {l.split(":", 1)[0].rsplit("/", 3)[-2] for l in bad} == {"web", "auth"}, bad
    fix_staging_vars(e.dir)
    sb(e.dir, "check")


def test_the_label_names_staging_and_preview_hosts(labelled):
    e = labelled
    status, _, body = request(e, f"hooks-staging.{ZONE}", "/echo")
    assert status == 200, body
    j = json.loads(body)
    assert (j["worker"], j["environment"]) == ("stripe-webhook-handler", "staging")
    # the host's own first label names nothing in staging any more
    status, _, body = request(e, f"api-staging.{ZONE}", "/echo")
    assert status == 404, body
    assert dq(e, f"hooks-staging.{ZONE}").rcode() == dns.rcode.NOERROR
    assert dq(e, f"api-staging.{ZONE}").rcode() == dns.rcode.NXDOMAIN

    routes = sb(e.dir, "routes").stdout
    assert f"hooks-staging.{ZONE}" in routes and f"api-staging.{ZONE}" not in routes, routes
    assert f"hooks-preview-5.{ZONE}" in sb(e.dir, "routes", "--pr", "5").stdout
    res = sb(e.dir, "resolve", f"hooks-preview-5.{ZONE}/webhooks/stripe/payments", check=1)
    assert "preview 5 has not been created" in res.stdout + res.stderr, res
    assert "stripe-webhook-handler" in res.stdout, res.stdout


def test_a_created_preview_is_served_at_the_labelled_host(labelled):
    e = labelled
    assert request(e, f"hooks-preview-5.{ZONE}", "/x")[0] == 404
    out = json.loads(sb(e.dir, "preview", "create", "--pr", "5", "--json").stdout)
    deps = {d["name"]: d for d in out["deployments"]}
    assert deps["codex-web-preview-5"]["vars"]["API_URL"] == f"https://hooks-preview-5.{ZONE}"
    assert deps["auth-worker-preview-5"]["vars"]["API_URL"] == f"https://hooks-preview-5.{ZONE}"
    status, hdrs, body = request(e, f"hooks-preview-5.{ZONE}", "/webhooks/stripe/payments")
    assert status == 200, body
    with e.rec.lock:
        last = e.rec.received[-1]
    assert b"x-switchboard-deployment: stripe-webhook-handler-preview-5" in last.lower(), last
    assert request(e, f"api-preview-5.{ZONE}", "/x")[0] == 404
    r = dq(e, f"hooks-preview-5.{ZONE}")
    assert r.rcode() == dns.rcode.NOERROR
    assert [a.address for rr in r.answer for a in rr] == ["127.0.0.1"]
    assert dq(e, f"api-preview-5.{ZONE}").rcode() == dns.rcode.NXDOMAIN
    hosts = json.loads(sb(e.dir, "preview", "list", "--json").stdout)[0]["hosts"]
    assert f"hooks-preview-5.{ZONE}" in hosts and f"api-preview-5.{ZONE}" not in hosts, hosts
