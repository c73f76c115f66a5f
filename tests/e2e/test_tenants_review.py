"""The tenant registry as an operator uses it: changes served by a running
edge (through the CLI, and through the store poll alone), bursts of changes,
re-added slugs, and stores the CLI can only read.

Runs $SB_BIN for the CLI and $SB_SERVE_BIN for the server (edge.py).
"""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from edge import CLI, Edge, ROOT, request, run_cli, wait_for  # noqa: E402

ZONE = "revelations.studio"
EXAMPLE = ROOT / "examples" / "revelations"


def check_clean(p):
    """What run_cli checks of every run, for a run it cannot make (as
    another user, or with stdout elsewhere)."""
    assert p.returncode >= 0, f"killed by signal {-p.returncode}: {p.stderr}"
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    e = Edge(tmp_path_factory.mktemp("tenants")).start()
    yield e
    e.stop()


def tenants(edge, *args, check=0):
    return run_cli("tenants", *args, "-c", edge.dir, "--data", edge.data, check=check)


def st(edge, slug):
    return request(edge, f"{slug}.{ZONE}", "/echo")[0]


def served_within(edge, slug, want, bound=1.0):
    """Seconds until slug answers want (asserting it is within bound)."""
    t0 = time.monotonic()
    wait_for(lambda: st(edge, slug) == want, timeout=bound + 4, what=f"{slug} -> {want}")
    took = time.monotonic() - t0
    assert took < bound, f"{slug} answered {want} after {took:.3f} s"
    return took


# ---- live serving ----------------------------------------------------------

def test_a_change_written_by_another_process_is_served_within_a_second(edge):
    """No CLI tells the server (another edge node, or a tool, writes the
    store): the store poll alone serves each change within one second."""
    db = sqlite3.connect(edge.data / "switchboard.db", isolation_level=None, timeout=10)
    try:
        for i in range(5):
            slug = f"polled{i}"
            assert st(edge, slug) == 404
            db.execute("INSERT INTO tenants (slug, status, created_at, updated_at) "
                       "VALUES (?, 'active', 0, 0)", (slug,))
            served_within(edge, slug, 200)
            db.execute("UPDATE tenants SET status = 'suspended' WHERE slug = ?", (slug,))
            served_within(edge, slug, 403)
            db.execute("DELETE FROM tenants WHERE slug = ?", (slug,))
            served_within(edge, slug, 404)
    finally:
        db.close()


def test_a_backup_restored_through_sqlite_s_backup_api_is_served(edge, tmp_path):
    """docs/configuration.md's backup and restore while the server runs:
    SQLite's backup API (sqlite3's .backup and .restore) copies a consistent
    store, and a restore is served at the next poll."""
    tenants(edge, "add", "kept-before")
    backup = tmp_path / "backup.db"
    live = sqlite3.connect(edge.data / "switchboard.db", timeout=10)
    copy = sqlite3.connect(backup)
    try:
        live.backup(copy)
        tenants(edge, "add", "added-after")
        tenants(edge, "suspend", "kept-before")
        assert (st(edge, "added-after"), st(edge, "kept-before")) == (200, 403)
        copy.backup(live)  # the restore
        served_within(edge, "added-after", 404)
        served_within(edge, "kept-before", 200)
    finally:
        copy.close()
        live.close()
    assert "kept-before" in tenants(edge, "list").stdout
    assert "added-after" not in tenants(edge, "list").stdout
    tenants(edge, "remove", "kept-before")


def test_a_removed_tenant_re_added_is_served_with_its_new_record(edge):
    tenants(edge, "add", "again", "--settings", '{"plan": "free"}')
    assert st(edge, "again") == 200
    tenants(edge, "remove", "again")
    assert st(edge, "again") == 404
    tenants(edge, "add", "again", "--name", "Again", "--settings", '{"plan": "pro"}')
    status, _, body = request(edge, f"again.{ZONE}", "/echo")
    assert status == 200, body
    cfg = json.loads(json.loads(body)["headers"]["x-tenant-config"])
    assert cfg == {"display_name": "Again", "settings": {"plan": "pro"}}, cfg
    # suspended, removed, added again: active
    tenants(edge, "suspend", "again")
    assert st(edge, "again") == 403
    tenants(edge, "remove", "again")
    assert st(edge, "again") == 404
    tenants(edge, "add", "again")
    assert st(edge, "again") == 200


def test_a_burst_of_concurrent_changes_all_land_and_are_served(edge):
    """Sixteen CLIs at once, each adding a tenant then suspending, resuming
    or removing it, while requests keep coming: every command succeeds and
    the server ends up serving exactly the final registry."""
    n = 16
    slugs = [f"burst{i}" for i in range(n)]
    final = {}
    stop = threading.Event()
    errors = []

    def traffic():
        while not stop.is_set():
            try:
                s = request(edge, f"codex.{ZONE}", "/health")[0]
                if s != 200:
                    errors.append(s)
            except Exception as e:  # reported below
                errors.append(e)

    def one(i):
        try:
            slug = slugs[i]
            tenants(edge, "add", slug, "--settings", json.dumps({"i": i}))
            if i % 3 == 0:
                tenants(edge, "suspend", slug)
                final[slug] = 403
            elif i % 3 == 1:
                tenants(edge, "remove", slug)
                final[slug] = 404
            else:
                tenants(edge, "suspend", slug)
                tenants(edge, "resume", slug)
                final[slug] = 200
        except Exception as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=traffic)
    t.start()
    try:
        ws = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for w in ws:
            w.start()
        for w in ws:
            w.join()
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    got = {s: st(edge, s) for s in slugs}
    assert got == final, got
    listed = {r["slug"]: r["status"] for r in json.loads(tenants(edge, "list", "--json").stdout)}
    for s in slugs:
        want = {403: "suspended", 404: None, 200: "active"}[final[s]]
        assert listed.get(s) == want, (s, listed.get(s))


# ---- stores the CLI cannot write ---------------------------------------------

def is_root():
    return os.geteuid() == 0


@pytest.fixture
def ex(tmp_path):
    dst = tmp_path / "decl"
    shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns(".switchboard"))
    return dst


def t(ex, data, *args, check=0, user=None, binary=CLI):
    argv = ["tenants", *args, "-c", ex, "--data", data]
    if user is None:
        return run_cli(*argv, check=check)
    p = subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                        binary, *map(str, argv)], capture_output=True, text=True, timeout=60)
    check_clean(p)
    assert p.returncode == check, f"exit {p.returncode}, want {check}\n{p.stdout}\n{p.stderr}"
    return p


def slugs(out):
    return [line.split()[0] for line in out.splitlines()[1:]]


@pytest.fixture
def read_only_mount(tmp_path):
    """A directory bind-mounted on itself (root only), unmounted at the end
    whatever the test did; yields it and a function that makes it
    read-only."""
    if not is_root() or not shutil.which("mount"):
        pytest.skip("needs root to mount")
    d = tmp_path / "ro"
    d.mkdir()
    p = subprocess.run(["mount", "--bind", d, d], capture_output=True, text=True)
    if p.returncode != 0:  # root without CAP_SYS_ADMIN (a container)
        pytest.skip(f"mount --bind is not permitted here: {p.stderr.strip()}")
    try:
        yield d, lambda: subprocess.run(["mount", "-o", "remount,ro,bind", d, d], check=True)
    finally:
        subprocess.run(["umount", d], check=True)


def test_a_store_on_a_read_only_file_system_is_listed_and_a_change_says_why_not(
        ex, read_only_mount):
    """A store on a read-only file system (a mounted backup, a read-only
    path of the service unit) failed every read: 'PRAGMA user_version:
    unable to open database file', exit 2; a change said the same."""
    d, freeze = read_only_mount
    data = d / "data"
    t(ex, data, "add", "acme", "--name", "Acme")
    t(ex, data, "add", "beta")
    assert sorted(os.listdir(data)) == ["switchboard.db"]  # closed cleanly
    freeze()
    assert slugs(t(ex, data, "list").stdout) == ["acme", "beta", "codex"]
    assert json.loads(t(ex, data, "show", "acme", "--json").stdout)["name"] == "Acme"
    err = t(ex, data, "add", "gamma", check=2).stderr
    assert err == (f"switchboard: {data}/switchboard.db: cannot write the database: "
                   "Read-only file system\n"), err
    assert t(ex, data, "remove", "acme", check=2).stderr == err.replace("gamma", "acme")
    # no store there yet: the reason is the file system, not a missing file
    assert t(ex, d, "add", "gamma", check=2).stderr == (
        f"switchboard: {d}/switchboard.db: cannot create the database: "
        "Read-only file system\n")


def test_a_read_only_store_never_hides_changes_in_its_log(ex, read_only_mount):
    """A write-ahead log with committed changes that cannot be read (no
    -shm, and none can be made) is an error, never a listing without them."""
    d, freeze = read_only_mount
    data = d / "data"
    t(ex, data, "add", "base")
    code = ("import os, signal, sqlite3, sys\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('PRAGMA wal_autocheckpoint = 0')\n"
            "db.execute(\"INSERT INTO tenants (slug, status, created_at, updated_at) "
            "VALUES ('inlog', 'active', 0, 0)\")\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([sys.executable, "-c", code, data / "switchboard.db"])
    (data / "switchboard.db-shm").unlink()
    assert (data / "switchboard.db-wal").stat().st_size > 0
    freeze()
    p = t(ex, data, "list", check=None)
    if p.returncode == 0:
        assert "inlog" in slugs(p.stdout), p.stdout
    else:
        assert p.returncode == 2 and p.stdout == "", p
        assert f"{data}/switchboard.db-wal" in p.stderr, p.stderr


def test_a_change_to_a_store_of_another_user_says_why_not():
    """It said 'cannot prepare a statement: attempt to write a readonly
    database'; reading it works."""
    if not is_root() or not shutil.which("setpriv"):
        pytest.skip("needs root to run as another user")
    import tempfile
    with tempfile.TemporaryDirectory(dir="/tmp") as top:
        top = Path(top)
        os.chmod(top, 0o755)  # pytest's own directories are 0700
        ex = top / "decl"
        shutil.copytree(EXAMPLE, ex, ignore=shutil.ignore_patterns(".switchboard"))
        # nobody runs a copy: the checkout may be where nobody cannot go
        # (a CI clone under /root)
        cli_copy = top / "switchboard"
        shutil.copy2(CLI, cli_copy)
        data = top / "data"
        t(ex, data, "add", "acme")
        os.chmod(data, 0o755)
        os.chmod(data / "switchboard.db", 0o644)
        subprocess.run(["chmod", "-R", "a+rX", ex], check=True)
        nobody = 65534
        assert slugs(t(ex, data, "list", user=nobody, binary=cli_copy).stdout) == [
            "acme", "codex"]
        err = t(ex, data, "add", "beta", check=2, user=nobody, binary=cli_copy).stderr
        assert err == (f"switchboard: {data}/switchboard.db: cannot write the database: "
                       "Permission denied\n"), err
        assert slugs(t(ex, data, "list").stdout) == ["acme", "codex"]


# ---- what the CLI prints back ------------------------------------------------

@pytest.mark.parametrize("slug", [b"a\nb", b"\x1b[2J\x1b[31mred", b"ab\xff", b"x" * 5000,
                                  b"a\rb", b"caf\xc3\xa9"])
@pytest.mark.parametrize("args", [["add"], ["remove"], ["suspend"], ["show"],
                                  ["set", "--name", "N"], ["add", "--settings", "[]"]])
def test_a_bad_slug_is_echoed_on_one_printable_line(ex, slug, args):
    """A slug was echoed as typed: a newline split the error in two lines,
    a terminal escape ran in the operator's terminal, 5000 bytes came back
    whole."""
    argv = [os.fsencode(CLI), b"tenants", args[0].encode(), *[a.encode() for a in args[1:]],
            b"-c", os.fsencode(ex), b"--", slug]
    p = subprocess.run(argv, capture_output=True, timeout=60)
    err = p.stderr.decode("ascii")  # nothing but ASCII
    assert p.returncode == 1 and p.stdout == b"", (p.returncode, p.stdout, err)
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert all(0x20 <= ord(c) < 0x7f for c in err[:-1]), err
    assert len(err) < 300, err
    assert "is not a valid tenant slug" in err or "the settings must be" in err, err


def test_an_unknown_argument_is_echoed_printable(ex):
    p = subprocess.run([os.fsencode(CLI), b"tenants", b"list", b"-c", os.fsencode(ex),
                        b"\x1b]0;pwned\x07"], capture_output=True, timeout=60)
    assert p.returncode == 2
    first = p.stderr.decode("ascii").splitlines()[0]
    assert first == "switchboard tenants list: unexpected argument '\\x1b]0;pwned\\x07'", first


@pytest.mark.parametrize("args", [["list"], ["list", "--json"], ["show", "codex"],
                                  ["show", "codex", "--json"]])
def test_a_listing_that_cannot_be_written_fails(ex, args):
    """`tenants list --json > tenants.json` on a full disk exited 0 with
    the file empty."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        p = subprocess.run([CLI, "tenants", *args, "-c", ex], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    check_clean(p)
    assert p.returncode == 2, p
    assert p.stderr == "switchboard: cannot write the output: No space left on device\n", p.stderr


def test_a_damaged_store_is_a_store_error_for_every_command(ex, tmp_path):
    """list exited 1 (the code for a tenant not found) on a damaged store;
    every other command exited 2, as documented for a store error."""
    data = tmp_path / "data"
    t(ex, data, "add", "acme")
    db = sqlite3.connect(data / "switchboard.db")
    page = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'tenants'").fetchone()[0]
    size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    assert sorted(os.listdir(data)) == ["switchboard.db"]
    with open(data / "switchboard.db", "r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\xde\xad" * 50)
    for args in (["list"], ["list", "--json"], ["show", "acme"], ["add", "beta"],
                 ["remove", "acme"], ["suspend", "acme"]):
        p = t(ex, data, *args, check=2)
        assert p.stdout == "" and "malformed" in p.stderr, (args, p.stderr)
        assert p.stderr.startswith(f"switchboard: {data}/switchboard.db: "), p.stderr
