"""Bad or unusual input to the declaration and the CLI: each is refused with
what and where, or handled, and nothing is committed. One test per defect
found in review; each fails without its fix."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from edge import run_cli

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("SB_BIN", str(ROOT / "build" / "switchboard"))

ZONE = """[[zone]]
name = "example.com"
addresses = ["192.0.2.1"]
nameservers = ["ns1.example.com"]
"""


def sb(*args, check=None):
    return run_cli(*args, check=check)


def decl(tmp_path, text):
    d = tmp_path / "decl"
    d.mkdir(exist_ok=True)
    (d / "switchboard.toml").write_text(text)
    return d


def refused(tmp_path, text, *want, line=None):
    """check refuses text, the message naming the file (and line) and
    saying each of want."""
    d = decl(tmp_path, text)
    err = sb("check", "-c", d, check=1).stderr
    where = f"{d}/switchboard.toml:{line}:" if line else f"{d}/switchboard.toml"
    assert where in err, err
    for w in want:
        assert w in err, err
    return err


SERVICE = ZONE + """
[[service]]
name = "web"
routes = ["app.example.com/*"]
"""


def test_zone_export_without_tenants(tmp_path):
    d = decl(tmp_path, SERVICE)
    out = sb("zone", "export", "-c", d, "--data", tmp_path / "data", "example.com",
             "--serial", "1", check=0).stdout
    assert "example.com." in out and "SOA" in out


@pytest.mark.parametrize("url,why", [
    ("http://127.0.0.1:99999", "port must be a number from 1 to 65535"),
    ("http://127.0.0.1:0", "port must be a number from 1 to 65535"),
    ("ftp://127.0.0.1:21", "scheme must be http://"),
    ("http://127.0.0.1:8080/api", "no path"),
    ("http://user@127.0.0.1:8080", "no user"),
])
def test_upstream_urls_are_checked_where_declared(tmp_path, url, why):
    refused(tmp_path, SERVICE + f'upstream.production = "{url}"\n', why, line=9)


def test_a_deploy_with_an_upstream_the_edge_cannot_use_is_not_committed(tmp_path):
    d = decl(tmp_path, SERVICE)
    data = tmp_path / "data"
    sb("deploy", "-c", d, "--data", data, "--name", "web", "--upstream",
       "http://127.0.0.1:8080", check=0)
    for bad, why in [("ftp://x", "scheme must be http://"),
                     ("http://127.0.0.1:70000", "port"),
                     ("http://no-such-host.invalid:8080", "no-such-host.invalid")]:
        err = sb("deploy", "-c", d, "--data", data, "--name", "web", "--upstream", bad,
                 check=1).stderr
        assert why in err, err
    out = sb("versions", "-c", d, "--data", data, "--json", check=0).stdout
    assert len(json.loads(out)) == 1, out
    sb("deploy", "-c", d, "--data", data, "--name", "web", "--upstream", "http://localhost:9",
       check=0)


def test_two_deployments_with_one_name_are_refused(tmp_path):
    err = refused(tmp_path, SERVICE + """
[[service]]
name = "web-staging"
routes = ["other.example.com/*"]
""", 'deployment "web-staging"', "service web, staging", line=10)
    # reported at the later one, naming the earlier one
    assert err.startswith(f"switchboard: {tmp_path}/decl/switchboard.toml:10:1: "
                          'deployment "web-staging" (service web-staging, production)'), err
    assert "switchboard.toml:6:1" in err, err


@pytest.mark.parametrize("n,ok", [(55, True), (56, False)])
def test_the_staging_label_may_have_63_characters_not_64(tmp_path, n, ok):
    text = ZONE + f'\n[[service]]\nname = "web"\nroutes = ["{"a" * n}.example.com/*"]\n'
    if ok:  # 55 + "-staging" = 63
        sb("check", "-c", decl(tmp_path, text), check=0)
    else:
        refused(tmp_path, text, "staging label would be longer than 63", line=8)


def test_a_derived_label_over_63_characters_is_refused(tmp_path):
    label = "a" * 60
    refused(tmp_path, ZONE + f"""
[[service]]
name = "web"
routes = ["{label}.example.com/*"]
""", "staging label would be longer than 63", line=8)


def test_a_preview_label_over_63_characters_is_reported(tmp_path):
    label = "a" * 50
    d = decl(tmp_path, ZONE + f"""
[[service]]
name = "web"
routes = ["{label}.example.com/*"]
""")
    sb("check", "-c", d, check=0)  # staging fits
    p = sb("routes", "-c", d, "--pr", "999999999", check=0)
    assert "preview label for PR 999999999 would be longer than 63" in p.stderr, p.stderr
    err = sb("preview", "create", "-c", d, "--data", tmp_path / "data", "--pr", "999999999",
             check=1).stderr
    assert "longer than 63" in err, err
    assert "-preview-7." in sb("routes", "-c", d, "--pr", "7", check=0).stdout


@pytest.mark.parametrize("n,ok", [(55, True), (56, False)])
def test_a_derived_staging_name_may_have_63_characters_not_64(tmp_path, n, ok):
    """The staging deployment the naming rule makes ("NAME-staging") is held
    to a Worker name's 63 characters, as a declared name is."""
    name = "w" * n
    text = ZONE + f'\n[[service]]\nname = "{name}"\nroutes = ["app.example.com/*"]\n'
    if ok:  # 55 + "-staging" = 63
        out = sb("routes", "-c", decl(tmp_path, text), check=0).stdout
        assert f"{name}-staging" in out, out
    else:
        refused(tmp_path, text, f'service "{name}": its staging deployment\'s name',
                f'"{name}-staging" would be 64 characters, longer than 63',
                "[env.staging]", line=7)


def test_a_preview_name_over_63_characters_is_refused_at_create(tmp_path):
    """A preview's deployment name ("NAME-preview-PR") over 63 characters:
    refused by preview create and by routes --pr, naming the service's name;
    a shorter PR number fits."""
    name = "w" * 50
    d = decl(tmp_path, ZONE + f'\n[[service]]\nname = "{name}"\nroutes = ["app.example.com/*"]\n')
    sb("check", "-c", d, check=0)
    p = sb("routes", "-c", d, "--pr", "12345", check=0)  # 50 + "-preview-12345" = 64
    assert f'"{name}-preview-12345" would be 64 characters' in p.stderr, p.stderr
    err = sb("preview", "create", "-c", d, "--data", tmp_path / "data", "--pr", "12345",
             check=1).stderr
    assert f"{d}/switchboard.toml:7:" in err and "longer than 63" in err, err
    assert json.loads(sb("preview", "list", "-c", d, "--data", tmp_path / "data", "--json",
                         check=0).stdout) == []
    out = sb("preview", "create", "-c", d, "--data", tmp_path / "data", "--pr", "1234",
             "--json", check=0).stdout  # 63: fits
    assert [x["name"] for x in json.loads(out)["deployments"]] == [f"{name}-preview-1234"]


@pytest.mark.parametrize("host", ["-a.example.com", "a-.example.com", "a_b.example.com",
                                  "x.-b.example.com", "*-a.example.com"])
def test_route_hosts_are_host_names(tmp_path, host):
    refused(tmp_path, ZONE + f"""
[[service]]
name = "web"
routes = ["{host}/*"]
""", "route", line=8)


def test_a_route_host_in_unicode_asks_for_punycode(tmp_path):
    refused(tmp_path, ZONE + """
[[service]]
name = "web"
routes = ["bücher.example.com/*"]
""", "xn--", line=8)


@pytest.mark.parametrize("label", ["my_svc", "-web", "web-"])
def test_a_service_label_is_a_host_name_label(tmp_path, label):
    refused(tmp_path, SERVICE + f'label = "{label}"\n', "'label' must be one host name label",
            line=9)


@pytest.mark.parametrize("name", ["", "a.b", "Has Space", "under_score"])
def test_reserved_names_are_labels(tmp_path, name):
    refused(tmp_path, SERVICE + f"""
[tenants]
service = "web"
reserved = ["ok", "{name}"]
""", "a reserved name is one host name label", line=12)


def test_a_bad_static_tenant_is_reported_where_it_is(tmp_path):
    refused(tmp_path, SERVICE + """
[tenants]
service = "web"
static = [
  "ok",
  "Bad_Slug",
]
""", 'static tenant "Bad_Slug"', line=14)


def test_a_typo_in_an_inline_service_is_reported(tmp_path):
    refused(tmp_path, SERVICE + 'upstrem.production = "http://127.0.0.1:9100"\n',
            "unknown key 'upstrem' in an inline [[service]] (did you mean 'upstream'?)",
            line=9)
    # keys a wrangler.toml has and we do not use are fine
    d = decl(tmp_path, SERVICE + 'compatibility_date = "2024-01-01"\nkv_namespaces = []\n')
    sb("check", "-c", d, check=0)


def test_a_var_name_that_cannot_be_an_environment_variable_is_refused(tmp_path):
    refused(tmp_path, SERVICE + 'vars = { "" = "x" }\n', "var name \"\" cannot be", line=9)
    refused(tmp_path, SERVICE + 'vars = { "A=B" = "x" }\n', "var name \"A=B\" cannot be", line=9)


def test_check_refuses_what_serve_would_refuse(tmp_path):
    # a static record that does not parse stops the edge's DNS: check says so
    refused(tmp_path, ZONE + """[[zone.record]]
name = "a"
type = "A"
data = "999.1.1.1"
""" + SERVICE[len(ZONE):], 'is not an IPv4 address', line=8)  # at its data


@pytest.mark.parametrize("addr", ["127.0.0.1:99999", "nonsense", "", "localhost:80",
                                  "[::1:80"])
def test_listen_addresses_are_checked_where_declared(tmp_path, addr):
    refused(tmp_path, SERVICE + f'\n[listen]\nhttp = "{addr}"\n',
            "[listen] http: expected an IP address and port", line=11)


def test_commands_that_only_read_create_nothing(tmp_path):
    import shutil
    d = tmp_path / "decl"
    shutil.copytree(ROOT / "examples" / "revelations", d,
                    ignore=shutil.ignore_patterns(".switchboard"))
    for args in (["tenants", "list"], ["tenants", "show", "codex"], ["versions"],
                 ["preview", "list"], ["check"], ["routes"]):
        sb(*args, "-c", d, check=0)
    assert not (d / ".switchboard").exists()
    assert "tenant 'nope' not found" in sb("tenants", "show", "-c", d, "nope", check=1).stderr
    # a --data that does not exist is a mistake, not an empty registry
    missing = tmp_path / "typo" / "data"
    for args in (["tenants", "list"], ["versions"], ["preview", "list"]):
        err = sb(*args, "-c", d, "--data", missing, check=2).stderr
        assert "no such data directory" in err, err
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("kind", ["device", "fifo", "directory"])
def test_a_wrangler_path_that_is_not_a_file_is_refused(tmp_path, kind):
    target = {"device": "/dev/zero", "fifo": str(tmp_path / "pipe"),
              "directory": str(tmp_path)}[kind]
    if kind == "fifo":
        os.mkfifo(target)
    err = refused(tmp_path, ZONE + f'\n[[service]]\nwrangler = "{target}"\n', line=7)
    assert ("is a directory" if kind == "directory" else "not a regular file") in err, err


@pytest.mark.parametrize("pr", ["01", "0", "1000000000", "-1", "x"])
def test_pull_request_numbers_are_checked_alike(tmp_path, pr):
    d = decl(tmp_path, SERVICE)
    data = tmp_path / "data"
    for args in (["routes", "--pr", pr], ["preview", "create", "--pr", pr, "--data", data],
                 ["verify", "--pr", pr]):
        err = sb(*args, "-c", d, check=2).stderr
        assert "is not a pull request number (1 to 999999999, no leading zeros)" in err, err
    assert not data.exists()


def test_a_pull_request_number_is_shown_escaped(tmp_path):
    # a newline would split the message, an escape sequence would run in
    # the terminal: shown as \xNN like every other argument
    d = decl(tmp_path, SERVICE)
    for args in (["routes", "--pr", "4\n\x1b[31m"],
                 ["preview", "create", "--pr", "4\n\x1b[31m", "--data", tmp_path / "data"]):
        err = sb(*args, "-c", d, check=2).stderr
        assert '"4\\x0a\\x1b[31m" is not a pull request number' in err, err
        assert "\x1b" not in err and err.count("\n") == 1, err


def test_a_deploy_command_that_is_not_utf8_is_refused(tmp_path):
    # the op goes as JSON, whose strings are UTF-8: the CLI says which
    # argument, instead of sending an empty body the API cannot read
    d = decl(tmp_path, SERVICE)
    data = tmp_path / "data"
    err = sb("deploy", "-c", d, "--data", data, "--name", "web", "--", "demo", "--x",
             "caf\udce9", check=2).stderr  # a lone 0xe9 byte, by surrogateescape
    assert "switchboard: the command's argument 3 is not valid UTF-8" in err, err
    assert "request body" not in err, err
    assert not data.exists()
    sb("deploy", "-c", d, "--data", data, "--name", "web", "--", "demo", "--x", "caf\u00e9",
       check=0)


def test_a_ttl_needs_its_unit(tmp_path):
    d = decl(tmp_path, SERVICE)
    err = sb("preview", "create", "-c", d, "--data", tmp_path / "data", "--pr", "3", "--ttl",
             "7", check=2).stderr
    assert "--ttl 7: expected a duration such as 7d" in err, err


@pytest.mark.parametrize("arg", ["0", "abc"])
def test_rollback_to_a_version_that_cannot_exist(tmp_path, arg):
    d = decl(tmp_path, SERVICE)
    err = sb("rollback", "-c", d, "--data", tmp_path / "data", arg, check=2).stderr
    assert f'"{arg}" is not a version number' in err, err


def test_messages_say_what_is_wrong(tmp_path):
    refused(tmp_path, ZONE + '\n[[service]]\nname = "web"\nroutes = ["ftp://a.example.com/*"]\n',
            "scheme, when it has one, is http:// or https://", line=8)
    d = decl(tmp_path, SERVICE + """
[[webhook]]
provider = "stripe"
url = "https://app.example.com/hook"
service = "nosuch"
""")
    out = sb("check", "-c", d, check=1).stdout
    assert 'its service "nosuch" is not a declared service' in out, out
    err = sb("deploy", "-c", d, "--data", tmp_path / "data", "--env", "preview", check=2).stderr
    assert "--env preview needs --pr N" in err, err
    assert "zone     export" in sb("--help", check=0).stdout


def test_a_custom_domain_may_carry_a_scheme(tmp_path):
    d = decl(tmp_path, ZONE + """
[[service]]
name = "web"
routes = [{ pattern = "https://app.example.com", custom_domain = true }]
""")
    sb("check", "-c", d, check=0)
    assert "app.example.com" in sb("routes", "-c", d, check=0).stdout


def test_reload_never_signals_a_process_that_is_not_the_server(tmp_path):
    d = decl(tmp_path, SERVICE)
    data = tmp_path / "data"
    data.mkdir()
    # a pid file left by a server that is gone; its number now another process's
    other = subprocess.Popen(["sleep", "30"])
    try:
        (data / "switchboard.pid").write_text(f"{other.pid}\n")
        err = sb("reload", "-c", d, "--data", data, check=1).stderr
        assert "no running server answers" in err, err
        assert other.poll() is None, "the other process got SIGHUP"
    finally:
        other.kill()
        other.wait()


def test_a_url_var_that_is_not_set_is_reported_where_it_is_listed(tmp_path):
    d = decl(tmp_path, SERVICE + 'url_vars = [\n  "NOPE",\n]\n')
    out = sb("check", "-c", d, check=1).stdout
    assert f"{d}/switchboard.toml:10:3: web: var NOPE is listed in url_vars" in out, out


@pytest.mark.parametrize("cidr,ok", [("10.0.0.0/8", True), ("10.0.0.1/8", False),
                                     ("192.168.1.128/25", True), ("192.168.1.129/25", False),
                                     ("::1", True), ("2001:db8::1/32", False),
                                     ("2001:db8::/32", True), ("0.0.0.0/0", True)])
def test_trusted_proxy_prefixes_have_no_address_bits_past_them(tmp_path, cidr, ok):
    text = SERVICE + f'\n[http]\ntrusted_proxies = ["{cidr}"]\n'
    if ok:
        sb("check", "-c", decl(tmp_path, text), check=0)
    else:
        refused(tmp_path, text, "has address bits set past its", line=11)


def test_an_unknown_environment_is_a_usage_error(tmp_path):
    d = decl(tmp_path, SERVICE)
    err = sb("deploy", "-c", d, "--data", tmp_path / "data", "--env", "dev", check=2).stderr
    assert "--env dev: expected production, staging or preview" in err, err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("args,opt", [
    (["preview", "create", "--pr", "5", "--dry-run"], "--dry-run"),
    (["preview", "delete", "--pr", "5", "--ttl", "1d"], "--ttl"),
    (["delete", "web-production", "--var", "A:b"], "--var"),
    (["versions", "--pr", "3"], "--pr"),
    (["rollback", "--upstream", "http://127.0.0.1:1"], "--upstream"),
])
def test_an_option_that_does_not_apply_is_refused_before_anything_changes(tmp_path, args, opt):
    d = decl(tmp_path, SERVICE)
    err = sb(*args, "-c", d, "--data", tmp_path / "data", check=2).stderr
    assert f"{opt} does not apply to this command" in err, err
    assert not (tmp_path / "data").exists()


def test_commands_that_only_read_work_on_a_store_the_user_cannot_write(tmp_path):
    import shutil
    import tempfile
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root to make a store another user can read but not write")
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run([*as_nobody, BIN, "--help"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("the binary is not reachable for another user here")
    top = Path(tempfile.mkdtemp(dir="/tmp", prefix="sb-ro."))
    try:
        top.chmod(0o755)
        d = top / "decl"
        shutil.copytree(ROOT / "examples" / "revelations", d,
                        ignore=shutil.ignore_patterns(".switchboard"))
        data = top / "data"
        toml = d / "switchboard.toml"
        toml.write_text(toml.read_text().replace('data_dir = ".switchboard"',
                                                 f'data_dir = "{data}"', 1))
        sb("tenants", "add", "acme", "-c", d, check=0)
        for p in [data, *data.iterdir()]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        before = {p.name: p.stat().st_mtime_ns for p in data.iterdir()}
        for args in (["check"], ["routes"], ["versions"], ["preview", "list"],
                     ["tenants", "list"]):
            p = subprocess.run([*as_nobody, BIN, *args, "-c", d],
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, (args, p.stderr)
            if args == ["tenants", "list"]:
                assert "acme" in p.stdout
        assert {p.name: p.stat().st_mtime_ns for p in data.iterdir()} == before
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_versions_show_the_command_as_typed_and_quoted(tmp_path):
    d = decl(tmp_path, SERVICE)
    data = tmp_path / "data"
    sb("tenants", "add", "acme", "--name", "Ácme 'Inc'", "-c", d, "--data", data,
       "--settings", '{"plan": "pro"}', check=0)
    v = json.loads(sb("versions", "-c", d, "--data", data, "--json", check=0).stdout)
    cmd = v[0]["command"]
    assert cmd == (f"switchboard tenants add acme --name 'Ácme '\\''Inc'\\''' -c {d} "
                   f"--data {data} --settings '{{\"plan\": \"pro\"}}'"), cmd
    # and a shell splits it back into the words that were typed
    out = subprocess.run(["sh", "-c", "set -- " + cmd[len("switchboard "):] +
                          '; for w; do printf "[%s]" "$w"; done'],
                         capture_output=True, text=True).stdout
    assert out == ("[tenants][add][acme][--name][Ácme 'Inc'][-c]"
                   f"[{d}][--data][{data}][--settings][{{\"plan\": \"pro\"}}]"), out


def wrangler_refused(tmp_path, wrangler, *want, line=None):
    """check refuses a service whose wrangler.toml is `wrangler`, naming
    that file (and line) and saying each of want."""
    d = decl(tmp_path, ZONE + '\n[[service]]\nwrangler = "wrangler.toml"\n')
    (d / "wrangler.toml").write_bytes(wrangler.encode())
    err = sb("check", "-c", d, check=1).stderr
    where = f"{d}/wrangler.toml:{line}:" if line else f"{d}/wrangler.toml"
    assert where in err, err
    for w in want:
        assert w in err, err
    return err


@pytest.mark.parametrize("name,why", [
    ('"w\\r\\nX-Injected: yes"', "may only have lower-case letters, digits, '-' and '_'"),
    ('"../my worker"', "may only have lower-case letters"),
    ('"Upper"', "may only have lower-case letters"),
    ('"-lead"', "cannot start with '-'"),
    ('"' + "a" * 64 + '"', "longer than 63 characters"),
    ('""', "is empty"),
])
def test_worker_names_follow_wranglers_rule(tmp_path, name, why):
    # the name goes into request headers, environment variables and logs:
    # a CR LF in it used to reach the upstream as a header of its own
    err = wrangler_refused(tmp_path, f'name = {name}\nroute = "w.example.com/*"\n', why,
                           line=1)
    assert "X-Injected" not in err  # control characters are not echoed


def test_an_env_name_that_makes_a_bad_worker_name_is_refused_where_used(tmp_path):
    d = decl(tmp_path, ZONE + '\n[[service]]\nwrangler = "wrangler.toml"\n'
                              'environments = { staging = "Stag ing" }\n')
    (d / "wrangler.toml").write_text('name = "w"\nroute = "w.example.com/*"\n'
                                     '[env."Stag ing"]\nroute = "s.example.com/*"\n')
    err = sb("check", "-c", d, check=1).stderr
    assert f"{d}/wrangler.toml:3:" in err and "[env.Stag ing]" in err, err
    assert "give it a 'name'" in err, err


def test_environments_not_served_may_have_any_worker_name(tmp_path):
    # wrangler checks a name when that environment is deployed; Switchboard
    # deploys production and staging only: "NAME-development" would be 67
    # characters, "NAME-staging" is 63
    d = decl(tmp_path, ZONE + '\n[[service]]\nwrangler = "wrangler.toml"\n')
    (d / "wrangler.toml").write_text(
        f'name = "{"w" * 55}"\nroute = "w.example.com/*"\n[env.Preview]\nvars = {{}}\n'
        '[env.development]\nvars = {}\n[env.local]\nname = "My Local Worker"\n')
    sb("check", "-c", d, check=0)


@pytest.mark.parametrize("text,why", [
    ('name = "w"\nroute = "w.example.com/api\\u0000/*"\n', "route must not contain a NUL"),
    ('name = "w"\nroute = "w.example.com/*"\n[vars]\n"API\\u0000_OLD" = "x"\n',
     "var name must not contain a NUL"),
    ('name = "w"\nroute = "w.example.com/*"\n[vars]\nAPI = "a\\u0000b"\n',
     'var "API" must not contain a NUL'),
])
def test_nul_characters_are_refused_not_cut_short(tmp_path, text, why):
    wrangler_refused(tmp_path, text, why)


@pytest.mark.parametrize("pattern,zone,ok", [
    ("shop.other.org/*", "example.com", False),
    ("notexample.com/*", "example.com", False),
    ("w.example.com/*", "example.com", True),
    ("example.com/*", "example.com.", True),
    ("*.example.com/*", "EXAMPLE.com", True),
    ("*example.com/*", "example.com", True),
    ("https://w.example.com/x", "example.com", True),
])
def test_a_route_is_in_its_zone_name(tmp_path, pattern, zone, ok):
    text = f'name = "w"\nroutes = [{{ pattern = "{pattern}", zone_name = "{zone}" }}]\n'
    if ok:
        d = decl(tmp_path, ZONE + '\n[[service]]\nwrangler = "wrangler.toml"\n')
        (d / "wrangler.toml").write_text(text)
        sb("check", "-c", d, check=0)
    else:
        wrangler_refused(tmp_path, text, f'route "{pattern}" is not in its zone_name', line=2)


def test_wrangler_jsonc_is_read_like_wrangler_toml(tmp_path):
    """wrangler.json and wrangler.jsonc (the default for new projects) give
    the routes the same file in TOML gives."""
    toml = ('name = "w"\nroutes = [{ pattern = "w.example.com/*", zone_name = "example.com" },'
            ' "example.com/api/*"]\n[vars]\nAPI_URL = "https://w.example.com"\n'
            '[env.staging]\nname = "w-stage"\nroutes = ["stage.example.com/*"]\n')
    jsonc = ('// comments and trailing commas, as wrangler allows\n{\n'
             '  "$schema": "node_modules/wrangler/config-schema.json",\n'
             '  "name": "w", /* the Worker */\n'
             '  "routes": [{ "pattern": "w.example.com/*", "zone_name": "example.com" },\n'
             '             "example.com/api/*",],\n'
             '  "vars": { "API_URL": "https://w.example.com" },\n'
             '  "env": { "staging": { "name": "w-stage", "routes": ["stage.example.com/*"] } },\n'
             '}\n')
    outs = []
    for fname, text in (("wrangler.toml", toml), ("wrangler.jsonc", jsonc),
                        ("wrangler.json", jsonc.split("\n", 1)[1].replace("/* the Worker */", "")
                         .replace(",]", "]").replace("},\n}", "}\n}"))):
        d = tmp_path / fname.replace(".", "-")
        d.mkdir()
        (d / "switchboard.toml").write_text(ZONE + f'\n[[service]]\nwrangler = "{fname}"\n')
        (d / fname).write_text(text)
        sb("check", "-c", d, check=0)
        outs.append(sb("routes", "-c", d, check=0).stdout)
    assert outs[0] == outs[1] == outs[2], outs
    assert "stage.example.com" in outs[0] and "w-stage" in outs[0]


def test_a_wrangler_jsonc_error_says_where(tmp_path):
    d = decl(tmp_path, ZONE + '\n[[service]]\nwrangler = "wrangler.jsonc"\n')
    (d / "wrangler.jsonc").write_text('{\n  "name": "w",\n  "vars": { "X": null }\n}\n')
    err = sb("check", "-c", d, check=1).stderr
    assert f"{d}/wrangler.jsonc:3:18: null is not supported" in err, err


@pytest.mark.parametrize("text,line,why", [
    ('name = "w"\nroute = "w.example.com/*"\n[env.staging]\nrotues = ["s.example.com/*"]\n', 4,
     "unknown key 'rotues' (did you mean 'routes'?)"),
    ('name = "w"\nroute = "w.example.com/*"\nvar = 1\n', 3, "unknown key 'var' (did you mean 'vars'?)"),
    ('name = "w"\nroutes = [{ pattern = "w.example.com/*", custom_domains = true }]\n', 2,
     "unknown key 'custom_domains' in a route (did you mean 'custom_domain'?)"),
    ('name = "w"\nroute = "w.example.com/*"\nupstream.production = "http://127.0.0.1:1"\n', 3,
     "'upstream' is Switchboard's: it belongs in the [[service]] of switchboard.toml"),
    ('name = "w"\nroute = "w.example.com/*"\n[env.staging.env.x]\nname = "q"\n', 3,
     "cannot have environments of its own"),
])
def test_a_near_miss_in_a_wrangler_file_is_reported(tmp_path, text, line, why):
    # wrangler only warns of unknown keys; a misspelt key that Switchboard
    # reads would change the routing without a word
    wrangler_refused(tmp_path, text, why, line=line)


def test_other_wrangler_keys_are_accepted(tmp_path):
    d = decl(tmp_path, ZONE + '\n[[service]]\nwrangler = "wrangler.toml"\n')
    (d / "wrangler.toml").write_text(
        'name = "w"\nroute = "w.example.com/*"\npreview_urls = true\ntsconfig = "t.json"\n'
        'a_key_wrangler_may_add_one_day = 1\n[[kv_namespaces]]\nbinding = "K"\nid = "x"\n')
    sb("check", "-c", d, check=0)


def test_every_wrangler_key_the_docs_list_is_accepted_inline(tmp_path):
    text = (ROOT / "docs" / "configuration.md").read_text()
    listed = text.split("<!-- wrangler-other-keys -->", 2)[1]
    keys = [k.strip().strip("`") for k in listed.replace("\n", " ").split(",") if k.strip()]
    assert len(keys) > 50, keys
    body = "".join(f'"{k}" = 1\n' for k in keys)
    d = decl(tmp_path, ZONE + '\n[[service]]\nname = "w"\nroutes = ["w.example.com/*"]\n' + body)
    sb("check", "-c", d, check=0)


WRANGLER_ALIASES = ('name = "w"\nroute = "dev.example.com/*"\n[env.prod]\nname = "w-prod"\n'
                    'route = "w.example.com/*"\n[env.stage]\nroute = "stage.example.com/*"\n')


def with_environments(tmp_path, environments):
    d = decl(tmp_path, ZONE + '\n[[service]]\nwrangler = "wrangler.toml"\n' + environments)
    (d / "wrangler.toml").write_text(WRANGLER_ALIASES)
    return d


def test_environments_that_only_look_like_ours_are_an_error(tmp_path):
    # production used to be the top level (the dev routes here) and [env.prod]
    # ignored, without a word
    d = with_environments(tmp_path, "")
    err = sb("check", "-c", d, check=1).stderr
    assert f"{d}/wrangler.toml:3:1: [env.prod] looks like production" in err, err
    assert 'environments = { production = "prod" }' in err, err


@pytest.mark.parametrize("environments,want", [
    ('environments = { production = "prod", staging = "stage" }',
     {("w.example.com", "w-prod"), ("stage.example.com", "w-stage")}),
    ('environments = { production = "prod", staging = "" }',
     {("w.example.com", "w-prod"), ("w-staging.example.com", "w-staging")}),
    ('environments = { production = "", staging = "stage" }',
     {("dev.example.com", "w"), ("stage.example.com", "w-stage")}),
])
def test_environments_say_which_wrangler_environment_is_which(tmp_path, environments, want):
    d = with_environments(tmp_path, environments + "\n")
    out = sb("routes", "-c", d, check=0).stdout
    got = {tuple(l.split()[0::2][:2]) for l in out.splitlines()[1:]}
    assert got == want, out


@pytest.mark.parametrize("environments,why", [
    ('environments = { production = "prodx" }', "has no [env.prodx]"),
    ('environments = { preview = "prod" }', "unknown environment 'preview' in 'environments'"),
    ('environments = { production = 1 }', "'production'"),
])
def test_bad_environments_are_reported_where_they_are(tmp_path, environments, why):
    d = with_environments(tmp_path, environments + "\n")
    err = sb("check", "-c", d, check=1).stderr
    assert f"{d}/switchboard.toml:8:" in err and why in err, err
