"""A URL's scheme is case-insensitive (RFC 3986 3.1), wherever one is read.

`HTTPS://app.example.com/*` as a route was refused ("a route's scheme ... is
http:// or https://"), a custom domain `Https://b.example.com` was said to
have a path, a webhook `url = "HTTPS://..."` was "not an http(s) URL", and
SWITCHBOARD_ADMIN_URL=HTTP://host:port was taken for a Unix socket path.
Every one now reads the scheme in any letter case, as `resolve`, `check`'s
URL vars and a deploy's custom domain already did.
"""
import json

from edge import run_cli
from test_admin_api import cli, tcp_edge  # noqa: F401 (a fixture)

DECL = """[[zone]]
name = "example.com"
nameservers = ["ns1.example.com"]
addresses = ["192.0.2.1"]

[[service]]
name = "a"
routes = ["HTTPS://App.example.com/*", { pattern = "Https://b.example.com", custom_domain = true },
          { pattern = "HTTP://c.example.com/x/*", zone_name = "example.com" }]

[[webhook]]
provider = "stripe"
url = "HTTPS://app.example.com/hooks"
service = "a"
"""


def test_routes_custom_domains_and_webhooks_take_a_scheme_in_any_case(tmp_path):
    (tmp_path / "switchboard.toml").write_text(DECL)
    out = run_cli("check", "-c", tmp_path, check=0).stdout
    assert "1 webhook" in out, out
    rows = json.loads(run_cli("routes", "-c", tmp_path, "--json", check=0).stdout)
    got = {(r["host"], r["path"], r["deployment"]) for r in rows}
    assert {("app.example.com", "/*", "a"), ("b.example.com", "/*", "a"),
            ("c.example.com", "/x/*", "a"), ("app-staging.example.com", "/*", "a-staging"),
            ("b-staging.example.com", "/*", "a-staging")} <= got, got
    assert run_cli("resolve", "-c", tmp_path, "HTTPS://b.example.com/q",
                   check=0).stdout.startswith("b.example.com/q -> a\n")


def test_other_schemes_are_still_refused_in_any_case(tmp_path):
    (tmp_path / "switchboard.toml").write_text(
        DECL.replace("HTTPS://App.example.com/*", "FTP://app.example.com/*"))
    p = run_cli("check", "-c", tmp_path, check=1)
    assert "a route's scheme, when it has one, is http:// or https://" in p.stderr, p.stderr
    (tmp_path / "switchboard.toml").write_text(
        DECL.replace("HTTPS://app.example.com/hooks", "Ftp://app.example.com/hooks"))
    p = run_cli("check", "-c", tmp_path, check=1)
    assert "webhook 'url' must be an http(s) URL" in p.stderr, p.stderr


def test_the_admin_url_takes_its_scheme_in_any_case(tcp_edge):  # noqa: F811
    env = {"SWITCHBOARD_ADMIN_URL": f"HTTP://127.0.0.1:{tcp_edge.admin_port}",
           "SWITCHBOARD_ADMIN_TOKEN": tcp_edge.token}
    cli(tcp_edge, "preview", "create", "--pr", "6", env=env)
    assert tcp_edge.status()["version"] == 1
