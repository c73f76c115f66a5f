"""Bad declarations, written the way users of nginx, Caddy and Knot get them
wrong: each must be refused by `switchboard check` (exit 1) with the file,
line and column and what is wrong, and nothing that `check` accepts may be
refused later by `serve`. One test per defect found in the review of the
declaration loader; each fails without its fix."""
import os
from pathlib import Path

import pytest

from edge import run_cli

ROOT = Path(__file__).resolve().parents[2]

ZONE = """[[zone]]
name = "example.com"
addresses = ["192.0.2.1"]
nameservers = ["ns1.example.com"]
"""

WEB = ZONE + """
[[service]]
wrangler = "w/wrangler.toml"
upstream.production = "http://127.0.0.1:9101"
"""

WRANGLER = 'name = "web"\nroutes = ["web.example.com/*"]\n'


def write(tmp_path, toml, wrangler=WRANGLER):
    d = tmp_path / "decl"
    (d / "w").mkdir(parents=True, exist_ok=True)
    if isinstance(toml, bytes):
        (d / "switchboard.toml").write_bytes(toml)
    else:
        (d / "switchboard.toml").write_text(toml)
    if isinstance(wrangler, bytes):
        (d / "w" / "wrangler.toml").write_bytes(wrangler)
    else:
        (d / "w" / "wrangler.toml").write_text(wrangler)
    return d


def refused(tmp_path, toml, where, *want, wrangler=WRANGLER):
    """check refuses the declaration with one message at `where` (a path
    relative to the declaration's directory, with line and column) that
    says each of want."""
    d = write(tmp_path, toml, wrangler)
    p = run_cli("check", "-c", d, check=1)
    err = p.stderr
    assert err.count("\n") == 1, err  # the first error, not a cascade
    assert f"{d}/{where}: " in err, err
    for w in want:
        assert w in err, err
    return err


def line_of(text, needle, nth=1):
    """1-based line of the nth line that contains needle."""
    seen = 0
    for i, ln in enumerate(text.splitlines(), 1):
        if needle in ln:
            seen += 1
            if seen == nth:
                return i
    raise AssertionError(f"{needle!r} not in text")


# ---- switchboard.toml -----------------------------------------------------

def test_a_pull_request_listed_twice_is_reported_where_it_is(tmp_path):
    # It was refused as two deployments "web-preview-1" sharing a name, at
    # 1:1 of the service's wrangler.toml, which has no pull request in it.
    toml = WEB + "\n[previews]\nprs = [7, 1, 7]\n"
    n = line_of(toml, "prs =")
    refused(tmp_path, toml, f"switchboard.toml:{n}:14", "pull request 7 is listed twice")


def test_an_empty_command_is_refused_by_check_as_serve_refuses_it(tmp_path):
    # check said ok; serve then logged "processes not updated: web: the
    # command is empty", without a file or line, and ran without it.
    toml = WEB + 'upstream.preview = { command = [""] }\n'
    n = line_of(toml, "upstream.preview")
    refused(tmp_path, toml, f"switchboard.toml:{n}:33", "'command' must name a program")


def test_an_empty_data_dir_is_refused(tmp_path):
    # "" put the store (switchboard.db, the admin socket) into the
    # declaration's own directory without a word.
    refused(tmp_path, 'data_dir = ""\n' + WEB, "switchboard.toml:1:12",
            "'data_dir' is empty")


def test_two_services_pointing_at_one_wrangler_file_are_reported_where_they_are(tmp_path):
    # The message pointed at 1:1 of the wrangler file and said the service
    # was "also in" that same file.
    toml = WEB + '\n[[service]]\nwrangler = "w/wrangler.toml"\n'
    second = line_of(toml, "[[service]]", 2)
    first = line_of(toml, "[[service]]", 1)
    refused(tmp_path, toml, f"switchboard.toml:{second}:1",
            f"this [[service]] points at {tmp_path}/decl/w/wrangler.toml, as the one "
            f"at line {first} does", 'service "web"')


def test_two_services_with_one_name_are_reported_at_the_names(tmp_path):
    toml = WEB + '\n[[service]]\nname = "web"\nroutes = ["other.example.com/*"]\n'
    n = line_of(toml, 'name = "web"')
    refused(tmp_path, toml, f"switchboard.toml:{n}:8",
            f"this name is also given at {tmp_path}/decl/w/wrangler.toml:1:8")


@pytest.mark.parametrize("routes,why", [
    ("[]", 'has no production route'),
    ('["app.example.org/*"]', 'has no production host in a declared [[zone]] '
                              '(app.example.org is in none)'),
])
def test_a_tenant_service_that_could_serve_no_tenant_is_refused(tmp_path, routes, why):
    # check said ok, and no {slug}.<zone> host was ever served: the
    # implied tenant wildcard is added in the zones of the service's hosts.
    toml = WEB + f"""
[[service]]
name = "app"
routes = {routes}

[tenants]
service = "app"
static = ["acme"]
"""
    n = line_of(toml, 'service = "app"')
    refused(tmp_path, toml, f"switchboard.toml:{n}:11", f'[tenants] service "app" {why}')


def test_a_tenant_service_with_a_host_in_a_declared_zone_is_accepted(tmp_path):
    # its own host web.example.com is tenant web's (docs/routing.md)
    d = write(tmp_path, WEB + '\n[tenants]\nservice = "web"\nstatic = ["acme", "web"]\n')
    run_cli("check", "-c", d, check=0)
    out = run_cli("resolve", "-c", d, "acme.example.com/", check=0).stdout
    assert "web" in out, out


@pytest.mark.parametrize("toml,where,key", [
    ('data_dri = ".sb"\n' + WEB, "1:1", "data_dri"),
    (WEB.replace("upstream.production", "  upstrem.production"), "8:3", "upstrem"),
    (WEB.replace("upstream.production", "upstream.prodution"), "8:10", "prodution"),
    ("[listen]\nhttp = \"127.0.0.1:1\"\n  htp = \"127.0.0.1:2\"\n" + WEB, "3:3", "htp"),
])
def test_an_unknown_key_is_reported_at_the_key(tmp_path, toml, where, key):
    # The column was the value's: 1:12 for `data_dri = ".sb"`.
    refused(tmp_path, toml, f"switchboard.toml:{where}", f"'{key}'")


# ---- wrangler.toml ----------------------------------------------------------

@pytest.mark.parametrize("wrangler,where,why", [
    ('name = "web"\nroutes = ["127.0.0.1/*"]\n', "2:11", "the host is an IP address"),
    ('name = "web"\nroute = "10.0.0.7/api/*"\n', "2:9", "the host is an IP address"),
])
def test_a_route_host_that_is_an_ip_address_is_refused(tmp_path, wrangler, where, why):
    # It was accepted, and the naming rule made staging and preview hosts
    # such as 127-staging.0.0.1 of it.
    refused(tmp_path, WEB, f"w/wrangler.toml:{where}", why, wrangler=wrangler)


def test_route_given_a_list_says_routes(tmp_path):
    refused(tmp_path, WEB, "w/wrangler.toml:2:9", "a list of routes is 'routes = [...]'",
            wrangler='name = "web"\nroute = ["web.example.com/*"]\n')


def test_a_wrangler_key_near_a_read_one_is_reported_at_the_key(tmp_path):
    refused(tmp_path, WEB, "w/wrangler.toml:3:3", "unknown key 'rotues'",
            wrangler='name = "web"\nroute = "web.example.com/*"\n  rotues = []\n')


# ---- the TOML as it is written ------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_file_is_named_as_such(tmp_path, encoding):
    # Windows PowerShell's '>' and Notepad's "Unicode" write UTF-16; it was
    # reported as "invalid UTF-8 byte 0xFF" or a stray control character.
    refused(tmp_path, WEB, "w/wrangler.toml:1:1", "the file is UTF-16, not UTF-8",
            wrangler=WRANGLER.encode(encoding))


def test_a_utf16_switchboard_toml_is_named_as_such(tmp_path):
    refused(tmp_path, WEB.encode("utf-16"), "switchboard.toml:1:1", "UTF-16")


@pytest.mark.parametrize("line,where,text", [
    ('http = 127.0.0.1:8080', "2:13", '"127.0.0.1:8080"'),
    ('http = localhost', "2:8", '"localhost"'),
    ('http = info', "2:11", '"info"'),
    ('http = nginx', "2:8", '"nginx"'),
    ('http = frontend', "2:8", "booleans are 'true' and 'false'; text is written in "
                               'quotes: "frontend"'),
])
def test_an_unquoted_string_is_shown_quoted(tmp_path, line, where, text):
    # nginx and Caddy take bare words; TOML does not, and the message said
    # only "expected a value, found 'l'" or "unexpected '.' after value".
    refused(tmp_path, f"[listen]\n{line}\n" + WEB, f"switchboard.toml:{where}",
            f"text is written in quotes: {text}" if "booleans" not in text else text)


def test_crlf_and_a_bom_are_read_like_lf(tmp_path):
    """Files saved on Windows (CRLF, a UTF-8 BOM) load, and an error in one
    has the same line and column as in the LF file."""
    toml = WEB.replace("\n", "\r\n").encode()
    d = write(tmp_path, b"\xef\xbb\xbf" + toml, b"\xef\xbb\xbf" + WRANGLER.replace(
        "\n", "\r\n").encode())
    run_cli("check", "-c", d, check=0)
    refused(tmp_path, b"\xef\xbb\xbf" + ("data_dri = 1\r\n" + WEB).encode(),
            "switchboard.toml:1:1", "did you mean 'data_dir'")


def test_relative_paths_are_resolved_against_the_declarations_path_as_given(tmp_path):
    """A symlinked switchboard.toml reads its wrangler files beside the link,
    not beside its target (docs/configuration.md), and the message names
    the path that was tried."""
    real = write(tmp_path, WEB)
    link_dir = tmp_path / "etc"
    link_dir.mkdir()
    os.symlink(real / "switchboard.toml", link_dir / "switchboard.toml")
    err = run_cli("check", "-c", link_dir, check=1).stderr
    assert f'cannot read wrangler file "{link_dir}/w/wrangler.toml"' in err, err
    os.symlink(real / "w", link_dir / "w")
    run_cli("check", "-c", link_dir, check=0)


def test_a_relative_access_log_is_the_declarations_not_the_working_directorys(tmp_path):
    """docs/configuration.md: relative paths in switchboard.toml are relative
    to its directory. access_log was opened relative to the working
    directory of `serve` (/ under a service manager)."""
    from edge import Edge
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    e = Edge(tmp_path, http={"access_log": "logs.jsonl"}, demos=False)
    try:
        e.start(wait_healthy=False,
                prefix=("sh", "-c", 'cd "$0" && exec "$@"', str(elsewhere)))
        assert (e.dir / "logs.jsonl").is_file()
        assert not (elsewhere / "logs.jsonl").exists()
    finally:
        e.stop()


def test_an_empty_access_log_is_refused(tmp_path):
    refused(tmp_path, '[http]\naccess_log = ""\n' + WEB, "switchboard.toml:2:14",
            "'access_log' is empty")


@pytest.mark.parametrize("old,value,col", [
    ('name = "example.com"', 'name = "bücher.example"', 8),
    ('nameservers = ["ns1.example.com"]', 'nameservers = ["ns1.bücher.example"]', 16),
])
def test_an_international_zone_name_asks_for_punycode(tmp_path, old, value, col):
    # Route hosts said so; a zone name or a nameserver only "is not a DNS
    # name", though it is one, in Unicode.
    toml = WEB.replace(old, value, 1)
    n = line_of(toml, value)
    refused(tmp_path, toml, f"switchboard.toml:{n}:{col}", "xn-- (punycode) form")


RECORD = ZONE + """
[[zone.record]]
name = "{name}"
type = "{type}"
data = "{data}"
""" + WEB[len(ZONE):]


@pytest.mark.parametrize("name,type_,data,field,want", [
    ("mail", "MXX", "10 mail", "type", 'type "MXX" is not supported'),
    ("mail", "MX", "ten mail", "data", "MX preference must be a number"),
    ("mail.other.org.", "MX", "10 mail", "name", "the name is not in zone example.com"),
    ("@", "CNAME", "app", "type", "the zone apex cannot be a CNAME"),
])
def test_a_bad_zone_record_is_reported_at_its_field(tmp_path, name, type_, data, field, want):
    # at the field that is wrong, not at the [[zone.record]] line above it
    toml = RECORD.format(name=name, type=type_, data=data)
    value = {"name": name, "type": type_, "data": data}[field]
    line = line_of(toml, f'{field} = "{value}"')
    refused(tmp_path, toml, f"switchboard.toml:{line}:8", want)
