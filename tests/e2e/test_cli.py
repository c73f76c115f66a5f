"""The switchboard CLI on the example and on broken copies of it.

Runs the binary named by $SB_BIN (make check passes the ASan+UBSan build), so
a memory error anywhere in the readers and loaders fails these tests too.
"""
import atexit
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from edge import run_cli

ROOT = Path(__file__).resolve().parents[2]
# A copy without the example's data directory: a developer's `make run`
# state (tenants, live previews) must not change what these tests see.
_EXAMPLE_SRC = ROOT / "examples" / "revelations"
_EXAMPLE_TMP = tempfile.mkdtemp(prefix="sb-cli-example.")
atexit.register(shutil.rmtree, _EXAMPLE_TMP, True)
EXAMPLE = Path(_EXAMPLE_TMP) / "revelations"
shutil.copytree(_EXAMPLE_SRC, EXAMPLE, ignore=shutil.ignore_patterns(".switchboard"))
BIN = os.environ.get("SB_BIN", str(ROOT / "build" / "switchboard"))


def sb(*args, check=None):
    return run_cli(*args, check=check)


def table(out):
    """Rows of the human routes table as (host, path, deployment, env)."""
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["HOST", "PATH", "DEPLOYMENT", "ENVIRONMENT"]
    return [tuple(line.split()[:4]) for line in lines[1:]]


@pytest.fixture
def example_copy(tmp_path):
    dst = tmp_path / "revelations"
    shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns(".switchboard"))
    return dst


# ---- routes -------------------------------------------------------------

def test_routes_production_and_staging_is_the_plans_host_table():
    rows = table(sb("routes", "-c", EXAMPLE, check=0).stdout)
    assert rows == [
        ("api.revelations.studio", "/*", "stripe-webhook-handler-production", "production"),
        ("auth.revelations.studio", "/*", "auth-worker-production", "production"),
        ("codex.revelations.studio", "/*", "codex-web-production", "production"),
        ("{tenant}.revelations.studio", "/*", "codex-web-production", "production"),
        ("api-staging.revelations.studio", "/*", "stripe-webhook-handler-staging", "staging"),
        ("auth-staging.revelations.studio", "/*", "auth-worker-staging", "staging"),
        ("codex-staging.revelations.studio", "/*", "codex-web-staging", "staging"),
    ]


def test_routes_preview_123():
    out = sb("routes", "-c", EXAMPLE, "--env", "preview", "--pr", "123", check=0).stdout
    assert table(out) == [
        ("codex-preview-123.revelations.studio", "/*", "codex-web-preview-123", "preview"),
        ("api-preview-123.revelations.studio", "/*", "stripe-webhook-handler-preview-123", "preview"),
        ("auth-preview-123.revelations.studio", "/*", "auth-worker-preview-123", "preview"),
    ]
    # --pr alone implies the preview environment
    assert sb("routes", "-c", EXAMPLE, "--pr", "123", check=0).stdout == out


def test_routes_filter_and_upstreams():
    rows = table(sb("routes", "-c", EXAMPLE / "switchboard.toml", "--env", "staging", check=0).stdout)
    assert {r[3] for r in rows} == {"staging"} and len(rows) == 3
    out = sb("routes", "-c", EXAMPLE, "--env", "production", check=0).stdout
    assert "http://127.0.0.1:9111" in out.splitlines()[1]


def test_routes_json():
    data = json.loads(sb("routes", "-c", EXAMPLE, "--json", check=0).stdout)
    assert len(data) == 7
    api = next(r for r in data if r["host"] == "api.revelations.studio")
    assert api == {
        "host": "api.revelations.studio", "path": "/*", "pattern": "api.revelations.studio/*",
        "deployment": "stripe-webhook-handler-production", "service": "stripe-webhook-handler",
        "environment": "production", "pr": None, "tenant_host": False,
        "custom_domain": True, "shadowed_by": None, "upstream": "http://127.0.0.1:9111",
    }
    prev = json.loads(sb("routes", "-c", EXAMPLE, "--pr", "9", "--json", check=0).stdout)
    assert {r["pr"] for r in prev} == {9}


def test_routes_rejects_bad_options():
    p = sb("routes", "-c", EXAMPLE, "--env", "prod", check=2)
    assert "unknown environment 'prod'" in p.stderr
    p = sb("routes", "-c", EXAMPLE, "--pr", "abc", check=2)
    assert "not a pull request number" in p.stderr
    sb("routes", "-c", EXAMPLE, "--env", "staging", "--pr", "3", check=2)


# ---- resolve ------------------------------------------------------------

def resolve(target, code):
    return json.loads(sb("resolve", "-c", EXAMPLE, target, "--json", check=code).stdout)


KEYS = {"routed", "deployment", "service", "environment", "pr", "tenant", "pattern"}


def test_resolve_preview_host_of_any_pr(example_copy):
    # named by the rule, served once created: resolve says what the edge does
    r = resolve("codex-preview-123.revelations.studio", 1)
    assert r["routed"] is False and "preview 123 has not been created" in r["reason"]
    sb("preview", "create", "-c", example_copy, "--pr", "123", check=0)
    r = json.loads(sb("resolve", "-c", example_copy, "codex-preview-123.revelations.studio",
                      "--json", check=0).stdout)
    assert KEYS <= set(r)
    assert r["routed"] is True
    assert r["deployment"] == "codex-web-preview-123"
    assert r["service"] == "codex-web"
    assert r["environment"] == "preview"
    assert r["pr"] == 123
    assert r["tenant"] == "codex"
    assert r["pattern"] == "codex-preview-123.revelations.studio/*"


@pytest.mark.parametrize("target,deployment,env,tenant", [
    ("codex.revelations.studio", "codex-web-production", "production", "codex"),
    ("https://api.revelations.studio/webhooks/stripe/payments", "stripe-webhook-handler-production", "production", None),
    ("AUTH.revelations.studio.:443/health", "auth-worker-production", "production", None),
    ("codex-staging.revelations.studio", "codex-web-staging", "staging", "codex"),
    ("api-staging.revelations.studio/", "stripe-webhook-handler-staging", "staging", None),
    # read as check and verify read URLs: scheme in any case, a query
    # without a path, a fragment that is never sent
    ("HTTPS://api.revelations.studio/x", "stripe-webhook-handler-production", "production", None),
    ("api.revelations.studio?q=1", "stripe-webhook-handler-production", "production", None),
    ("https://auth.revelations.studio/a?b=1#frag", "auth-worker-production", "production", None),
])
def test_resolve_routed(target, deployment, env, tenant):
    r = resolve(target, 0)
    assert (r["deployment"], r["environment"], r["tenant"]) == (deployment, env, tenant)


def test_resolve_reads_a_url_as_a_client_sends_it():
    # dot segments resolved (RFC 3986 5.2.4, as curl and browsers do; the
    # edge refuses a path that still has them), the query as written, no
    # fragment
    out = sb("resolve", "-c", EXAMPLE, "https://api.revelations.studio/a/../b/./c?x=/../y#f",
             check=0).stdout
    assert out.splitlines()[0] == \
        "api.revelations.studio/b/c?x=/../y -> stripe-webhook-handler-production"


@pytest.mark.parametrize("target,why", [
    ("acme.revelations.studio", "no tenant is registered"),
    ("www.revelations.studio", "reserved"),
    ("ns1.revelations.studio", "reserved"),
    ("acme-staging.revelations.studio", "staging suffix"),
    ("a.b.revelations.studio", "single label"),
    ("example.com", "no route matches this host"),
])
def test_resolve_not_routed_says_why(target, why):
    r = resolve(target, 1)
    assert r["routed"] is False
    assert r["deployment"] is None and r["pr"] is None and r["pattern"] is None
    assert why in r["reason"]
    human = sb("resolve", "-c", EXAMPLE, target, check=1).stdout
    assert "not routed" in human and why in human


def test_resolve_human_output(example_copy):
    sb("preview", "create", "-c", example_copy, "--pr", "5", check=0)
    out = sb("resolve", "-c", example_copy, "codex-preview-5.revelations.studio/x",
             check=0).stdout
    assert out.splitlines()[0] == "codex-preview-5.revelations.studio/x -> codex-web-preview-5"
    assert re.search(r"tenant\s+codex", out) and re.search(r"pr\s+5", out)
    out = sb("resolve", "-c", example_copy, "auth-preview-77.revelations.studio/x",
             check=1).stdout
    assert "not routed: preview 77 has not been created" in out, out
    assert re.search(r"service\s+auth-worker", out) and re.search(r"pr\s+77", out)


# ---- check --------------------------------------------------------------

def test_check_passes_on_the_example():
    out = sb("check", "-c", EXAMPLE, check=0).stdout
    assert out.startswith("ok:")


def test_check_fails_when_a_var_points_at_an_unrouted_host(example_copy):
    f = example_copy / "workers" / "auth" / "wrangler.toml"
    f.write_text(f.read_text().replace("https://api-staging.revelations.studio",
                                       "https://api-stage.revelations.studio"))
    p = sb("check", "-c", example_copy, check=1)
    line = next(l for l in p.stdout.splitlines() if "api-stage." in l)
    assert "auth-worker-staging" in line and "API_URL" in line
    assert re.match(re.escape(str(f)) + r":\d+:\d+: ", line), line
    assert "1 violation" in p.stdout


def test_check_fails_when_a_var_crosses_environments(example_copy):
    f = example_copy / "apps" / "web" / "wrangler.toml"
    f.write_text(f.read_text().replace('AUTH_WORKER_URL = "https://auth-staging.revelations.studio"',
                                       'AUTH_WORKER_URL = "https://auth.revelations.studio"'))
    p = sb("check", "-c", example_copy, check=1)
    assert "codex-web-staging: var AUTH_WORKER_URL" in p.stdout
    assert "auth-worker-production (production), not by a staging deployment" in p.stdout


def test_check_fails_when_the_webhook_is_not_routed(example_copy):
    f = example_copy / "switchboard.toml"
    f.write_text(f.read_text().replace("https://api.revelations.studio/webhooks",
                                       "https://hooks.revelations.studio/webhooks"))
    p = sb("check", "-c", example_copy, check=1)
    assert "webhook stripe" in p.stdout and "hooks.revelations.studio" in p.stdout
    assert "not routed" in p.stdout


def test_check_fails_when_the_webhook_reaches_another_service(example_copy):
    f = example_copy / "switchboard.toml"
    f.write_text(f.read_text().replace("https://api.revelations.studio/webhooks",
                                       "https://auth.revelations.studio/webhooks"))
    p = sb("check", "-c", example_copy, check=1)
    assert "not its handler stripe-webhook-handler" in p.stdout


# ---- bad input: a clear message with a position, never a crash ----------

POS = r"switchboard: [^:\n]+:\d+:\d+: "


@pytest.mark.parametrize("name,code", [
    ("codex-web-production", 0),
    ("auth-worker-staging", 0),
    ("codex-web-preview-123", 0),  # a preview's, before it is created
    ("codex-web", 1),  # a service, not a deployment
    ("codex-web-prod", 1),
    ("codex-web-preview-0123", 1),
    ("nosuch-preview-5", 1),
])
def test_secret_only_for_a_deployment_name(example_copy, tmp_path, name, code):
    # a typo printed a secret no deployment is signed with
    p = sb("secret", "-c", example_copy, "--data", tmp_path / "data", name, check=code)
    if code == 0:
        assert re.fullmatch(r"[0-9a-f]{64}\n", p.stdout), p.stdout
    else:
        assert p.stdout == ""
        assert f"no deployment named '{name}'" in p.stderr, p.stderr


def test_malformed_toml(example_copy):
    f = example_copy / "switchboard.toml"
    f.write_text(f.read_text() + "\n[tenants\n")
    for cmd in (["check"], ["routes"], ["resolve", "codex.revelations.studio"]):
        p = sb(*cmd, "-c", example_copy)
        assert p.returncode in (1, 2)
        assert re.search(POS, p.stderr), p.stderr
        assert str(f) in p.stderr


def test_malformed_wrangler(example_copy):
    f = example_copy / "apps" / "web" / "wrangler.toml"
    f.write_text(f.read_text().replace('ENVIRONMENT = "production",', 'ENVIRONMENT = production,'))
    p = sb("routes", "-c", example_copy, check=2)
    assert re.search(re.escape(str(f)) + r":\d+:\d+: ", p.stderr), p.stderr


def test_duplicate_routes(example_copy):
    f = example_copy / "workers" / "auth" / "wrangler.toml"
    f.write_text(f.read_text().replace('"auth.revelations.studio/*"', '"api.revelations.studio/*"'))
    p = sb("check", "-c", example_copy, check=1)
    assert re.search(POS, p.stderr)
    assert "auth-worker-production" in p.stderr and "stripe-webhook-handler-production" in p.stderr


def test_invalid_static_slug(example_copy):
    f = example_copy / "switchboard.toml"
    f.write_text(f.read_text().replace('static   = ["codex"]', 'static   = ["codex", "Not_A_Slug"]'))
    p = sb("check", "-c", example_copy, check=1)
    assert re.search(POS, p.stderr) and "Not_A_Slug" in p.stderr


def test_unknown_environment(example_copy):
    f = example_copy / "switchboard.toml"
    f.write_text(f.read_text().replace("upstream.staging ", "upstream.stage ", 1))
    p = sb("check", "-c", example_copy, check=1)
    assert re.search(POS, p.stderr) and "unknown environment 'stage'" in p.stderr


def test_wildcard_custom_domain(example_copy):
    f = example_copy / "apps" / "web" / "wrangler.toml"
    f.write_text(f.read_text().replace('  # { pattern = "*.revelations.studio/*", custom_domain = true }',
                                       '  { pattern = "*.revelations.studio/*", custom_domain = true }'))
    p = sb("check", "-c", example_copy, check=1)
    assert "Wildcard operators (*) are not allowed in Custom Domains" in p.stderr
    assert "use a route instead" in p.stderr
    assert re.search(re.escape(str(f)) + r":\d+:\d+: ", p.stderr)


def test_tenant_wildcard_as_a_route_is_fine(example_copy):
    """The plan's future wildcard, written as a route: tenants stay gated."""
    f = example_copy / "apps" / "web" / "wrangler.toml"
    f.write_text(f.read_text().replace('  # { pattern = "*.revelations.studio/*", custom_domain = true }',
                                       '  { pattern = "*.revelations.studio/*" }'))
    sb("check", "-c", example_copy, check=0)
    assert resolve_in(example_copy, "codex-staging.revelations.studio")["routed"]
    r = json.loads(sb("resolve", "-c", example_copy, "zzz.revelations.studio", "--json", check=1).stdout)
    assert "no tenant is registered" in r["reason"]


def resolve_in(path, target):
    return json.loads(sb("resolve", "-c", path, target, "--json", check=0).stdout)


def test_missing_files(tmp_path, example_copy):
    p = sb("check", "-c", tmp_path / "nope.toml", check=1)
    assert "nope.toml" in p.stderr and "cannot open" in p.stderr
    p = sb("routes", "-c", tmp_path, check=2)
    assert "no switchboard.toml" in p.stderr
    (example_copy / "workers" / "auth" / "wrangler.toml").unlink()
    p = sb("check", "-c", example_copy, check=1)
    assert re.search(POS, p.stderr) and "workers/auth/wrangler.toml" in p.stderr


def test_garbage_input_never_crashes(tmp_path):
    junk = [b"\x00\xff\xfe", b"[[zone]]\nname = 1", b"a = [" * 5000, b"x = \"\xc0\xaf\"",
            b"[service]\nwrangler = 3", b"= 1", b"[[service]]\nname = \"x\"\nroutes = [{}]"]
    for i, data in enumerate(junk):
        f = tmp_path / f"j{i}.toml"
        f.write_bytes(data)
        p = sb("check", "-c", f)
        assert p.returncode == 1, (data[:40], p.stderr)
        assert re.search(r"switchboard: [^\n]+: ", p.stderr)


# ---- help ---------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["check", "routes", "resolve"])
def test_help(cmd):
    out = sb(cmd, "--help", check=0).stdout
    assert out.startswith(f"usage: switchboard {cmd}")
    assert sb("help", cmd, check=0).stdout == out


def test_usage_errors():
    assert "usage:" in sb("--help", check=0).stdout
    assert "unknown command" in sb("frobnicate", check=2).stderr
    sb("resolve", "-c", EXAMPLE, check=2)
    sb("check", "-c", EXAMPLE, "extra", check=2)


def test_check_rejects_a_transfer_key_that_does_not_exist(example_copy):
    """[dns] is checked by every command that loads the declaration, with
    the line and column of the entry at fault."""
    decl = example_copy / "switchboard.toml"
    text = decl.read_text()
    decl.write_text(text + '\n[[dns.allow_transfer]]\naddress = "127.0.0.1/32"\n'
                    'key = "nosuchkey"\n')
    line = len(text.splitlines()) + 2  # the [[dns.allow_transfer]] entry
    p = sb("check", "-c", example_copy, check=1)
    assert re.search(rf"switchboard\.toml:{line}:\d+: .*nosuchkey", p.stderr), p.stderr
    decl.write_text(text)
    sb("check", "-c", example_copy, check=0)


def test_data_option_of_routes_resolve_and_check(example_copy, tmp_path):
    """--data DIR: the store whose live state is shown; these commands had
    no --data and read the declaration's data_dir only."""
    other = tmp_path / "other"
    sb("delete", "auth-worker-staging", "-c", example_copy, "--data", other, check=0)
    with_other = sb("routes", "-c", example_copy, "--data", other, "--json", check=0).stdout
    assert "auth-worker-staging" not in with_other
    assert "auth-worker-staging" in sb("routes", "-c", example_copy, "--json", check=0).stdout
    r = json.loads(sb("resolve", "-c", example_copy, "--data", other, "--json",
                      "auth-staging.revelations.studio", check=1).stdout)
    assert r["routed"] is False
    # staging's vars still name the deleted deployment's host: reported
    out = sb("check", "-c", example_copy, "--data", other, check=1)
    assert "auth-staging.revelations.studio" in out.stdout + out.stderr
    sb("check", "-c", example_copy, check=0)
