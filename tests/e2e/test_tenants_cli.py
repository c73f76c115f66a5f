"""`switchboard tenants` against a copy of the example, so that its store
(<data_dir>/switchboard.db) lives in a temporary directory.

Runs the binary named by $SB_BIN (make check passes the ASan+UBSan build).
"""
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "revelations"
BIN = os.environ.get("SB_BIN", str(ROOT / "build" / "switchboard"))


def check_clean(returncode, stderr):
    # a crash (signal, or a sanitizer report) is never an acceptable answer
    assert returncode >= 0, f"killed by signal {-returncode}: {stderr}"
    assert "Sanitizer" not in stderr and "runtime error" not in stderr, stderr


def sb(*args, check=None):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=60)
    check_clean(p.returncode, p.stderr)
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}, want {check}\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture
def ex(tmp_path):
    dst = tmp_path / "revelations"
    shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns(".switchboard"))
    return dst


def tenants(ex, *args, check=None):
    return sb("tenants", *args, "-c", ex, check=check)


def ok(ex, *args):
    """Run a command that must succeed quietly on stderr; return stdout."""
    p = tenants(ex, *args, check=0)
    assert p.stderr == "", p.stderr
    return p.stdout


def fails(ex, *args, code=1):
    """Run a command that must fail with `code` and print nothing on stdout;
    return stderr."""
    p = tenants(ex, *args, check=code)
    assert p.stdout == "", p.stdout
    return p.stderr


def table(out):
    lines = out.splitlines()
    assert lines[0].split() == ["SLUG", "STATUS", "NAME"]
    return [tuple(line.split(None, 2)) for line in lines[1:]]


# ---- the round trip ------------------------------------------------------

def test_add_list_show_suspend_resume_remove(ex):
    # the example's static tenant is there from the start
    assert ok(ex, "list") == ("SLUG   STATUS     NAME\n"
                              "codex  active     (static)\n")

    assert ok(ex, "add", "acme", "--name", "Acme Inc", "--settings", '{"plan": "pro"}') == \
        "switchboard: tenant 'acme' added\n"
    assert ok(ex, "add", "a-much-longer-slug") == "switchboard: tenant 'a-much-longer-slug' added\n"
    assert ok(ex, "list") == (
        "SLUG                STATUS     NAME\n"
        "a-much-longer-slug  active     -\n"
        "acme                active     Acme Inc\n"
        "codex               active     (static)\n")

    out = ok(ex, "show", "acme")
    assert re.fullmatch(
        r"slug      acme\n"
        r"status    active\n"
        r"name      Acme Inc\n"
        r"static    no\n"
        r'settings  \{"plan":"pro"\}\n'
        r"created   \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n"
        r"updated   \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n", out), out

    assert ok(ex, "suspend", "acme") == "switchboard: tenant 'acme' suspended\n"
    assert ok(ex, "suspend", "acme") == "switchboard: tenant 'acme' is already suspended\n"
    assert ("acme", "suspended", "Acme Inc") in table(ok(ex, "list"))
    assert "status    suspended\n" in ok(ex, "show", "acme")

    assert ok(ex, "resume", "acme") == "switchboard: tenant 'acme' resumed\n"
    assert ok(ex, "resume", "acme") == "switchboard: tenant 'acme' is already active\n"
    assert ("acme", "active", "Acme Inc") in table(ok(ex, "list"))

    assert ok(ex, "remove", "acme") == "switchboard: tenant 'acme' removed\n"
    assert fails(ex, "show", "acme") == "switchboard: tenant 'acme' not found\n"
    assert ok(ex, "remove", "a-much-longer-slug") == \
        "switchboard: tenant 'a-much-longer-slug' removed\n"
    assert ok(ex, "list") == ("SLUG   STATUS     NAME\n"
                              "codex  active     (static)\n")


def test_store_is_in_the_data_dir_in_wal_mode(ex):
    ok(ex, "add", "acme")
    data = ex / ".switchboard"  # data_dir of the example, relative to its file
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    db = sqlite3.connect(data / "switchboard.db")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT slug, status FROM tenants").fetchall() == [("acme", "active")]
    finally:
        db.close()


def test_data_option_overrides_the_data_dir(ex, tmp_path):
    other = tmp_path / "elsewhere" / "data"
    ok(ex, "add", "acme", "--data", other)
    assert (other / "switchboard.db").exists()
    assert [r[0] for r in table(ok(ex, "list", "--data", other))] == ["acme", "codex"]
    assert [r[0] for r in table(ok(ex, "list"))] == ["codex"]


def test_set_changes_name_and_settings(ex):
    ok(ex, "add", "acme", "--name", "Acme", "--settings", '{"plan": "free"}')
    assert ok(ex, "set", "acme", "--settings", '{"plan": "pro", "seats": 5}') == \
        "switchboard: tenant 'acme' updated\n"
    t = json.loads(ok(ex, "show", "acme", "--json"))
    assert t["name"] == "Acme" and t["settings"] == {"plan": "pro", "seats": 5}
    ok(ex, "set", "acme", "--name", "Acme Corp")
    t = json.loads(ok(ex, "show", "acme", "--json"))
    assert t["name"] == "Acme Corp" and t["settings"] == {"plan": "pro", "seats": 5}
    ok(ex, "set", "acme", "--name", "")
    assert json.loads(ok(ex, "show", "acme", "--json"))["name"] is None
    assert fails(ex, "set", "nope", "--name", "N") == "switchboard: tenant 'nope' not found\n"


# ---- JSON ---------------------------------------------------------------

def test_json_output_parses(ex):
    assert json.loads(ok(ex, "list", "--json")) == [
        {"slug": "codex", "status": "active", "name": None, "static": True, "stored": False,
         "settings": {}, "created_at": None, "updated_at": None}]
    ok(ex, "add", "acme", "--name", 'Acme "Q" Inc', "--settings", '{"plan": "pro", "n": [1, 2]}')
    ok(ex, "suspend", "acme")
    data = json.loads(ok(ex, "list", "--json"))
    assert [t["slug"] for t in data] == ["acme", "codex"]
    acme = data[0]
    assert acme["status"] == "suspended" and acme["name"] == 'Acme "Q" Inc'
    assert acme["settings"] == {"plan": "pro", "n": [1, 2]}
    assert acme["static"] is False and acme["stored"] is True
    assert isinstance(acme["created_at"], int) and acme["updated_at"] >= acme["created_at"]
    assert json.loads(ok(ex, "show", "acme", "--json")) == acme
    assert json.loads(ok(ex, "show", "codex", "--json")) == data[1]


# ---- static tenants -----------------------------------------------------

def test_static_tenant_can_be_suspended_not_removed(ex):
    err = fails(ex, "remove", "codex")
    assert err.startswith("switchboard: tenant 'codex' is a static tenant of ")
    assert "cannot be removed" in err
    assert fails(ex, "add", "codex").startswith("switchboard: tenant 'codex' already exists")

    assert ok(ex, "suspend", "codex") == "switchboard: tenant 'codex' suspended\n"
    assert table(ok(ex, "list")) == [("codex", "suspended", "(static)")]
    assert "cannot be removed" in fails(ex, "remove", "codex")
    assert ok(ex, "resume", "codex") == "switchboard: tenant 'codex' resumed\n"
    assert ok(ex, "resume", "codex") == "switchboard: tenant 'codex' is already active\n"

    ok(ex, "set", "codex", "--name", "Codex")
    assert table(ok(ex, "list")) == [("codex", "active", "Codex (static)")]
    out = ok(ex, "show", "codex")
    assert "name      Codex\n" in out and "static    yes (" in out


# ---- errors -------------------------------------------------------------

@pytest.mark.parametrize("slug,why", [
    ("api", "the label is reserved (api, auth and www always are)"),
    ("www", "the label is reserved (api, auth and www always are)"),
    ("ns1", "the label is reserved ([tenants] reserved)"),  # the example's declaration
    ("Acme", "a slug has only a-z, 0-9 and '-'"),
    ("a.b", "a slug is a single label (no '.')"),
    ("-acme", "a slug cannot start or end with '-'"),
    ("codex-staging", "a slug cannot have a staging suffix"),
    ("codex-preview-12", "a slug cannot have a preview suffix"),
    ("x" * 64, "a slug is 1 to 63 characters"),
    ("xn--zz", "an xn-- label must be punycode of an international name"),
    ("ab--cd", "a label with '--' in its third and fourth places is reserved for "
               "international names (xn--)"),
])
def test_add_invalid_slug(ex, slug, why):
    p = sb("tenants", "add", "-c", ex, "--", slug, check=1)  # "--": "-acme" is no option
    assert p.stdout == ""
    assert p.stderr == f"switchboard: '{slug}' is not a valid tenant slug: {why}\n"
    assert table(ok(ex, "list")) == [("codex", "active", "(static)")]


def test_an_international_slug_in_its_xn_form_is_a_slug(ex):
    assert ok(ex, "add", "xn--mnchen-3ya") == "switchboard: tenant 'xn--mnchen-3ya' added\n"


def test_duplicate_and_unknown(ex):
    ok(ex, "add", "acme")
    assert fails(ex, "add", "acme") == "switchboard: tenant 'acme' already exists\n"
    for cmd in ("suspend", "resume", "remove", "show"):
        assert fails(ex, cmd, "nope") == "switchboard: tenant 'nope' not found\n", cmd
    # an unknown slug that could never exist says why
    assert fails(ex, "show", "API") == \
        "switchboard: 'API' is not a valid tenant slug: a slug has only a-z, 0-9 and '-'\n"


@pytest.mark.parametrize("settings,needle", [
    ("[1, 2]", "the settings must be a JSON object ({...}), not an array"),
    ("42", "not a number"),
    ('{"plan": }', "the settings are not valid JSON: line 1, column 10"),
    ('{"a": 1, "a": 2}', "duplicate object key"),
    # valid JSON, but no reader of the settings could hold it (RFC 8259 6)
    ('{"big": 1e400}', "the settings have a number out of range of a double: line 1, column 13"),
    # deeper than SQLite's json_valid() goes used to fail at the database
    ('{"a": ' + "[" * 64 + "]" * 64 + "}", "the settings nest deeper than 64 levels"),
])
def test_invalid_settings(ex, settings, needle):
    err = fails(ex, "add", "acme", "--settings", settings)
    assert err.startswith("switchboard: tenant 'acme': "), err
    assert needle in err, err
    assert fails(ex, "show", "acme") == "switchboard: tenant 'acme' not found\n"


@pytest.mark.parametrize("args", [
    [],
    ["bogus"],
    ["add"],
    ["add", "a", "b"],
    ["list", "extra"],
    ["list", "--name", "x"],
    ["suspend", "acme", "--settings", "{}"],
    ["set", "acme"],
    ["add", "acme", "--frobnicate"],
    ["add", "acme", "--name"],
    ["add", "-x"],
])
def test_usage_errors(ex, args):
    p = sb("tenants", *args, "-c", ex) if args else sb("tenants")
    assert p.returncode == 2, p
    assert "usage: switchboard tenants" in p.stderr
    assert p.stdout == ""


def test_load_error_is_exit_2(ex, tmp_path):
    p = sb("tenants", "list", "-c", tmp_path / "nowhere", check=2)
    assert p.stderr.startswith("switchboard: ")
    (ex / "switchboard.toml").write_text("data_dir = 5\n")
    assert sb("tenants", "add", "acme", "-c", ex, check=2).stderr.startswith("switchboard: ")


def test_help(ex):
    out = sb("tenants", "--help", check=0).stdout
    assert out.startswith("usage: switchboard tenants COMMAND")
    for cmd in ("add", "suspend", "resume", "remove", "set", "list", "show"):
        assert f"  {cmd} " in out
        p = sb("tenants", cmd, "--help", check=0)
        assert p.stdout.startswith(f"usage: switchboard tenants {cmd}")
        assert "--data DIR" in p.stdout


# ---- concurrency --------------------------------------------------------

def test_concurrent_adds_all_land(ex, tmp_path):
    """Eight processes at once, on a store none of them has created yet
    (ten times, each on a new data directory: one read the schema version
    and the tables apart, and a store created between the two reads looked
    like another program's, about one time in five), then on that store."""
    for store in range(10):
        data = ex / ".switchboard" if store == 0 else tmp_path / f"data{store}"
        for rnd in range(2 if store == 0 else 1):
            slugs = [f"t{rnd}-{i}" for i in range(8)]
            procs = [subprocess.Popen([BIN, "tenants", "add", s, "-c", str(ex), "--data", data],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for s in slugs]
            for s, p in zip(slugs, procs):
                out, err = p.communicate(timeout=120)
                check_clean(p.returncode, err)
                assert "locked" not in err and "busy" not in err, err
                assert p.returncode == 0, err
                assert out == f"switchboard: tenant '{s}' added\n"
    listed = [r[0] for r in table(ok(ex, "list"))]
    assert listed == sorted([f"t{r}-{i}" for r in range(2) for i in range(8)] + ["codex"])


def test_a_slug_whose_host_something_else_answers_is_refused(ex):
    """A static CNAME named like the slug used to be accepted, and every
    later change then failed at the edge (its DNS build refused the zone);
    a slug that is another service's host was accepted and never served."""
    toml = ex / "switchboard.toml"
    text = toml.read_text().replace(
        'soa = { rname = "hostmaster.revelations.studio", minimum = 300 }',
        'soa = { rname = "hostmaster.revelations.studio", minimum = 300 }\n'
        'record = [{ name = "status", type = "CNAME", data = "status.example.net." },\n'
        '          { name = "mail.revelations.studio.", type = "A", data = "192.0.2.25" },\n'
        '          { name = "txtonly", type = "TXT", data = "\\"v=1\\"" }]')
    text += ('\n[[service]]\nname = "blog"\nroutes = ["blog.revelations.studio/*"]\n'
             'upstream.production = "http://127.0.0.1:9131"\n'
             'upstream.staging = "http://127.0.0.1:9132"\n')
    toml.write_text(text)
    sb("check", "-c", ex, check=0)
    err = fails(ex, "add", "status")
    assert "status.revelations.studio has a static CNAME record" in err, err
    assert f"{toml}:17:" in err, err
    assert "has a static A record" in fails(ex, "add", "mail")
    err = fails(ex, "add", "blog")
    assert "blog.revelations.studio is routed to blog" in err, err
    # a TXT record does not take the name's addresses
    ok(ex, "add", "txtonly")
    assert [r[0] for r in table(ok(ex, "list"))] == ["codex", "txtonly"]


@pytest.mark.parametrize("tbl", ["versions", "tenants"])
def test_a_store_that_fails_the_change_says_nothing_done_and_exits_2(ex, tbl):
    """'added' used to be printed before the commit, and a store failure
    while adding exited 1, the code for a refused request."""
    ok(ex, "add", "first")
    db = sqlite3.connect(ex / ".switchboard" / "switchboard.db")
    db.execute(f"CREATE TRIGGER fail_{tbl} BEFORE INSERT ON {tbl} "
               "BEGIN SELECT RAISE(FAIL, 'the disk is on fire'); END")
    db.commit()
    db.close()
    err = fails(ex, "add", "second", code=2)
    assert "the disk is on fire" in err, err
    assert [r[0] for r in table(ok(ex, "list"))] == ["codex", "first"]


def test_a_control_character_in_a_display_name_is_refused(ex):
    for name in ["a\tb", "a\x7fb", "a\u0085b", "a\u009fb"]:
        err = fails(ex, "add", "acme", "--name", name)
        assert "the display name has a control character" in err, (name, err)
    ok(ex, "add", "acme", "--name", "Z\u00fcrich \u00a0Inc")  # U+00A0 is not a control


def test_a_static_tenant_listed_twice_is_reported_where_it_is(ex):
    toml = ex / "switchboard.toml"
    toml.write_text(toml.read_text().replace('static   = ["codex"]',
                                             'static   = ["codex", "acme", "codex"]'))
    err = sb("check", "-c", ex, check=1).stderr
    assert f"{toml}:21:" in err and 'static tenant "codex" is listed twice' in err, err


@pytest.mark.parametrize("version", [0, -1])
def test_another_programs_database_is_not_migrated_into(ex, version):
    """A switchboard.db that Switchboard did not make (tables and no schema
    version of ours) was read as empty, and a change migrated into it."""
    (ex / ".switchboard").mkdir()
    path = ex / ".switchboard" / "switchboard.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE inventory (item TEXT)")
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()
    for args in (["list"], ["add", "acme"]):
        err = fails(ex, *args, code=2)
        assert "it is not a Switchboard store" in err and str(path) in err, err
    db = sqlite3.connect(path)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    db.close()
    assert tables == ["inventory"], tables
