"""`switchboard routes` tells a custom domain a route beats from that route.

A route and a custom domain on the same host and path printed as two
identical rows (and --json had no custom_domain field), though only the
route is served (docs/routing.md: as in Cloudflare, a route takes precedence
over a custom domain on the same host).
"""
import json

from edge import run_cli

TOML = ('[[zone]]\nname = "ex.com"\n'
        '[[service]]\nname = "app"\nroutes = [{ pattern = "app.ex.com/*", custom_domain = true }]\n'
        '[[service]]\nname = "log"\nroutes = ["app.ex.com/*"]\n')


def test_a_custom_domain_a_route_beats_is_marked(tmp_path):
    (tmp_path / "switchboard.toml").write_text(TOML)
    out = run_cli("routes", "-c", tmp_path, check=0).stdout.splitlines()
    rows = {l.split()[2]: l for l in out[1:]}
    assert rows["app"].endswith("(custom domain: the route of log takes it)"), out
    assert rows["app-staging"].endswith("(custom domain: the route of log-staging takes it)")
    assert "custom domain" not in rows["log"] and "custom domain" not in rows["log-staging"]
    j = {r["deployment"]: r for r in json.loads(run_cli("routes", "-c", tmp_path, "--json",
                                                        check=0).stdout)}
    assert (j["app"]["custom_domain"], j["app"]["shadowed_by"]) == (True, "log")
    assert (j["log"]["custom_domain"], j["log"]["shadowed_by"]) == (False, None)
    # and what resolve says agrees
    assert run_cli("resolve", "-c", tmp_path, "app.ex.com/x",
                   check=0).stdout.startswith("app.ex.com/x -> log\n")


def test_a_custom_domain_alone_is_not_marked(tmp_path):
    (tmp_path / "switchboard.toml").write_text(TOML.split("[[service]]\nname = \"log\"")[0])
    out = run_cli("routes", "-c", tmp_path, check=0).stdout
    assert "takes it" not in out, out
    [app] = [r for r in json.loads(run_cli("routes", "-c", tmp_path, "--json", check=0).stdout)
             if r["deployment"] == "app"]
    assert (app["custom_domain"], app["shadowed_by"]) == (True, None)
