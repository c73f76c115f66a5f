"""Tests from a mutation audit of the changes since 867b22e: each kills a
mutant that the earlier tests let live (named in its docstring)."""
import json
import time

from edge import run_cli

ZONE = "revelations.studio"
WARN = "changed: it takes effect at the next start"


def soa_serial(d, *extra):
    out = run_cli("zone", "export", "-c", d, *extra, ZONE, check=0).stdout
    soa = next(l for l in out.splitlines() if "\tSOA\t" in l)
    return int(soa.split()[6])


def test_zone_export_reads_the_serials_of_the_data_directory_it_is_given(fresh, tmp_path):
    """zone export --data DIR follows the serial recorded in DIR, not in the
    declaration's data_dir (mutant: the declaration's data_dir always)."""
    e = fresh()
    other = tmp_path / "other-data"
    other.mkdir()
    ahead = int(time.time()) + 10**6  # ahead of the clock: the next is ahead + 1
    (other / "dns-serials").write_text(f"# zone serial hash\n{ZONE} {ahead} 0\n")
    assert soa_serial(e.dir, "--data", other) == ahead + 1
    # the declaration's data_dir has none: the clock
    assert soa_serial(e.dir) <= int(time.time())


def test_a_data_dir_set_by_serve_is_not_changed_by_a_reload(fresh):
    """serve --data DIR keeps DIR whatever data_dir the declaration says: a
    reload does not warn that data_dir changed (mutant: the warning without
    regard to --data)."""
    e = fresh()
    e.start(args=("--data", e.data))
    toml = e.dir / "switchboard.toml"
    text = toml.read_text()
    assert 'data_dir = "../data"' in text
    toml.write_text(text.replace('data_dir = "../data"', 'data_dir = "../elsewhere"', 1))
    p = run_cli("reload", "-c", e.dir, "--data", e.data, check=0)
    assert p.returncode == 0, p.stderr
    assert [l for l in p.stderr.splitlines() if WARN in l] == [], p.stderr


def routes_json(d):
    return {r["deployment"]: r for r in json.loads(run_cli("routes", "-c", d, "--json",
                                                           check=0).stdout)}


def test_a_route_of_the_root_alone_does_not_take_a_custom_domain(tmp_path):
    """A route without a path ("/" only) on a custom domain's host takes the
    root, not the domain's whole host: the domain is not marked as taken
    (mutant: shadowed_by without comparing exact and prefix paths)."""
    (tmp_path / "switchboard.toml").write_text(
        '[[zone]]\nname = "ex.com"\n'
        '[[service]]\nname = "app"\nroutes = [{ pattern = "app.ex.com", custom_domain = true }]\n'
        '[[service]]\nname = "root"\nroutes = ["app.ex.com"]\n')
    out = run_cli("routes", "-c", tmp_path, check=0).stdout
    assert "takes it" not in out, out
    assert routes_json(tmp_path)["app"]["shadowed_by"] is None
    # resolve agrees: the root is root's, the rest the domain's
    assert run_cli("resolve", "-c", tmp_path, "app.ex.com/",
                   check=0).stdout.startswith("app.ex.com/ -> root\n")
    assert run_cli("resolve", "-c", tmp_path, "app.ex.com/x",
                   check=0).stdout.startswith("app.ex.com/x -> app\n")


def test_a_custom_domain_taken_by_the_tenant_services_route_is_marked(tmp_path):
    """The route that takes a custom domain may be the tenant-aware
    service's, on a tenant not registered (the lookup says SB_ENOTENANT, yet
    the route is the one that takes the host): still marked (mutant: any
    negative answer counts as no route)."""
    (tmp_path / "switchboard.toml").write_text(
        '[[zone]]\nname = "ex.com"\n[tenants]\nservice = "web"\n'
        '[[service]]\nname = "site"\nroutes = [{ pattern = "codex.ex.com", custom_domain = true }]\n'
        '[[service]]\nname = "web"\nroutes = ["codex.ex.com/*"]\n')
    j = routes_json(tmp_path)
    assert j["site"]["shadowed_by"] == "web", j["site"]
    assert j["web"]["shadowed_by"] is None


def test_a_five_letter_typo_two_edits_away_is_suggested():
    """Two edits in a word of five letters is a typo ("cjekk" of "check");
    the limit is five, not more (mutant: 6)."""
    p = run_cli("cjekk", check=2)
    assert "did you mean 'check'" in p.stderr, p.stderr


def test_check_counts_one_service_and_one_var_in_the_singular(tmp_path):
    """check's summary says "1 service" and "1 var", not "1 services"
    (mutants: the plural whatever the count)."""
    (tmp_path / "switchboard.toml").write_text(
        '[[zone]]\nname = "ex.com"\nnameservers = ["ns1.ex.com"]\naddresses = ["192.0.2.1"]\n'
        '[[service]]\nname = "app"\nroutes = ["app.ex.com/*"]\n'
        '[service.env.production]\nvars = { A = "x" }\n'
        '[service.env.staging]\nroutes = ["s.ex.com/*"]\n')
    out = run_cli("check", "-c", tmp_path, check=0).stdout
    assert out == "ok: 1 service, 2 deployments, 2 routes, 1 var, 0 webhooks checked\n", out


def test_a_bad_serial_is_shown_escaped():
    """An escape sequence in --serial is shown as \\x1b, not sent to the
    terminal (mutant: the argument printed raw)."""
    p = run_cli("zone", "export", "--serial", "1\x1b[2J", "x", check=2)
    assert "\x1b" not in p.stderr and '"1\\x1b[2J" is not a number' in p.stderr, p.stderr
