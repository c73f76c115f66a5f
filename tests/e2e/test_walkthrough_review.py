"""A new user's walk through README.md and docs/admin.md, docs/http.md: what
the pages say, run as written, does what they say.

Each test reads the sentence or example it checks from the page (so an edit
that makes the page wrong fails here) and runs the CLI, on a copy of the
example with a temporary data directory, or against a real edge on free
ports.
"""
import os
import re
import shutil
from pathlib import Path

from edge import Edge, closed_port, run_cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "revelations"
ZONE = "revelations.studio"


def doc(page):
    """docs/<page> with its line breaks as spaces, to find a sentence that
    the page wraps anywhere."""
    return " ".join((ROOT / "docs" / page).read_text().split())


def env(**extra):
    """The caller's environment without an admin URL or token of its own."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_ADMIN_")}
    return {**e, **extra}


def sb(*args, check=0, **extra):
    return run_cli(*args, check=check, env=env(**extra))


def decl(tmp_path):
    """The example, copied, with a data directory of its own (no server)."""
    d = tmp_path / "decl"
    shutil.copytree(EXAMPLE, d, ignore=shutil.ignore_patterns(".switchboard"))
    return d, tmp_path / "data"


def test_an_option_value_that_is_not_utf8_is_refused_naming_the_option(tmp_path):
    """docs/admin.md: an option value that is not UTF-8 "is refused, exit 2,
    naming it"; the message said "an option's value", whichever of several
    --var it was."""
    assert "one that is not is refused, exit 2, naming it" in doc("admin.md")
    d, data = decl(tmp_path)
    bad = os.fsdecode(b"\xff")
    p = run_cli("deploy", "-c", d, "--data", data, "--name", "codex-web", "--var", "A:ok",
                "--var", "B:" + bad, "--dry-run", check=2, env=env())
    assert "--var" in p.stderr and "UTF-8" in p.stderr, p.stderr
    p = run_cli("deploy", "-c", d, "--data", data, "--name", bad, "--dry-run", check=2, env=env())
    assert "--name" in p.stderr, p.stderr
    p = run_cli("preview", "create", "-c", d, "--data", data, "--pr", "1", "--ttl", "1" + bad,
                check=2, env=env())
    assert "--ttl" in p.stderr, p.stderr
    assert not data.exists()


def test_the_documented_ttl_range_is_taken_in_seconds_too(tmp_path):
    """docs/admin.md: --ttl "takes the same range as a duration with its
    unit" as the API's ttl, 0 to 3,162,240,000 seconds; the seconds were
    read up to 2^31 - 1, so the documented largest ttl written in seconds
    was refused ("expected a duration such as 7d"), while 36600d passed."""
    page = doc("admin.md")
    m = re.search(r"`ttl` is in seconds, 0 \(no expiry\) to ([0-9,]+)", page)
    assert m and "`--ttl` takes the same range as a duration with its unit" in page
    top = int(m.group(1).replace(",", ""))
    d, data = decl(tmp_path)
    out = sb("preview", "create", "-c", d, "--data", data, "--pr", "7", "--ttl", f"{top}s",
             "--json").stdout
    assert '"created preview 7"' in out, out
    listed = sb("preview", "list", "-c", d, "--data", data, "--json").stdout
    assert re.search(r'"expires_at": \d+', listed), listed
    for bad in (f"{top + 1}s", f"{top // 86400 + 1}d", "7"):
        p = sb("preview", "create", "-c", d, "--data", data, "--pr", "8", "--ttl", bad, check=2)
        # what is wrong, and the range: not "a duration such as 7d" for 36601d
        assert f"--ttl {bad}:" in p.stderr and f"{top}s" in p.stderr, p.stderr
    assert "preview 8" not in sb("versions", "-c", d, "--data", data).stdout


def test_tenant_commands_are_refused_rather_than_miss_the_server_at_the_admin_url(tmp_path):
    """docs/admin.md: with SWITCHBOARD_ADMIN_URL set the tenant commands are
    refused. They used to write a store of the machine they ran on (a CI
    runner's, created for the occasion), tell the server at the URL to sync
    its own store, and print "tenant 'acme' added", exit 0: a tenant the
    edge never served."""
    page = doc("admin.md")
    assert "while `SWITCHBOARD_ADMIN_URL` is set they are refused (exit 2)" in page
    d, data = decl(tmp_path)
    url = f"http://127.0.0.1:{closed_port()}"
    for args in (["add", "acme"], ["list"], ["show", "codex"], ["suspend", "codex"]):
        p = sb("tenants", *args, "-c", d, "--data", data, check=2,
               SWITCHBOARD_ADMIN_URL=url, SWITCHBOARD_ADMIN_TOKEN="0" * 64)
        assert "SWITCHBOARD_ADMIN_URL" in p.stderr and url in p.stderr, p.stderr
        assert p.stdout == "", p.stdout
    assert not data.exists(), "a store was written all the same"
    # without it, the same command works on the store, as before
    sb("tenants", "add", "acme", "-c", d, "--data", data)
    assert "acme" in sb("tenants", "list", "-c", d, "--data", data).stdout


def test_reload_goes_through_the_admin_url_as_the_changes_do(tmp_path):
    """docs/admin.md lists reload among what the CLI sends to
    SWITCHBOARD_ADMIN_URL; reload used to ask only the admin socket of the
    local declaration's data_dir, and said no server runs."""
    assert "for the changes, for `reload`, and for `versions`" in doc("admin.md")
    assert "when `SWITCHBOARD_ADMIN_URL` is set, at that URL" in doc("http.md")
    e = Edge(tmp_path, demos=False, extra_toml='\n[listen]\nadmin = "127.0.0.1:0"\n')
    try:
        e.start()
        line = next(l for l in e.edge.err if "admin API on http://" in l)
        url = "http://127.0.0.1:" + line.rsplit(":", 1)[1]
        token = (e.data / "admin.token").read_text()
        # a CI runner's checkout: its data_dir holds no server's socket
        elsewhere = tmp_path / "elsewhere"
        shutil.copytree(e.dir, elsewhere)
        toml = elsewhere / "switchboard.toml"
        toml.write_text(toml.read_text().replace('data_dir = "../data"',
                                                 f'data_dir = "{tmp_path / "none"}"'))
        generation = e.status()["generation"]
        p = sb("reload", "-c", elsewhere, SWITCHBOARD_ADMIN_URL=url,
               SWITCHBOARD_ADMIN_TOKEN=token + "\n")
        assert f"reloaded {e.dir / 'switchboard.toml'}" in p.stdout, p.stdout + p.stderr
        assert e.status()["generation"] > generation
        # a token the server does not take: said, and a usage error
        p = sb("reload", "-c", elsewhere, check=2, SWITCHBOARD_ADMIN_URL=url,
               SWITCHBOARD_ADMIN_TOKEN="0" * 64)
        assert "401" in p.stderr and "token" in p.stderr, p.stderr
        p = sb("reload", "-c", elsewhere, check=2, SWITCHBOARD_ADMIN_URL=url)
        assert "SWITCHBOARD_ADMIN_TOKEN is not set" in p.stderr, p.stderr
        # an URL with a path is refused before anything is sent
        p = sb("reload", "-c", elsewhere, check=2, SWITCHBOARD_ADMIN_URL=url + "/v1",
               SWITCHBOARD_ADMIN_TOKEN=token)
        assert "without a path" in p.stderr, p.stderr
        # without the URL: the socket of the checkout's data_dir, no server
        p = sb("reload", "-c", elsewhere, check=1)
        assert "no running server answers on" in p.stderr, p.stderr
    finally:
        e.stop()


def test_a_route_deployed_to_the_tenant_service_is_a_tenant_host(tmp_path):
    """docs/admin.md's `--route shop.example.com/*`: on a service that is
    not the tenant-aware one it gives the staging and preview hosts the page
    names; on codex-web (the example's tenant service) the host is routed
    while tenant `shop` is registered, so the deploy is refused until it
    is, as the page says (a user deploying it there found it listed by
    `routes` and answered 404)."""
    page = doc("admin.md")
    m = re.search(r"a production `--route (\S+)/\*` also gives staging `(\S+)` and previews "
                  r"`(\S+)-N\.(\S+)`", page)
    assert m, "docs/admin.md: the --route example moved"
    host, staging, preview = m.group(1), m.group(2), f"{m.group(3)}-7.{m.group(4)}"
    slug = host.split(".")[0]
    assert f"`{host}` is routed only while tenant `{slug}` is registered, so the deploy is " \
        "refused until it is" in page
    d, data = decl(tmp_path)
    sb("deploy", "-c", d, "--data", data, "--name", "auth-worker", "--route", f"{host}/*")
    sb("preview", "create", "-c", d, "--data", data, "--pr", "7")
    for h, dep in ((host, "auth-worker-production"), (staging, "auth-worker-staging"),
                   (preview, "auth-worker-preview-7")):
        out = sb("resolve", "-c", d, "--data", data, h).stdout
        assert out.startswith(f"{h}/ -> {dep}\n"), out
    data = tmp_path / "data2"  # the declaration alone again
    p = sb("deploy", "-c", d, "--data", data, "--name", "codex-web", "--route", f"{host}/*",
           check=1)
    assert f"host of tenant '{slug}', which is not registered" in p.stderr, p.stderr
    assert f"tenants add {slug}" in p.stderr, p.stderr
    assert f"{host}  " not in sb("routes", "-c", d, "--data", data).stdout
    sb("tenants", "add", slug, "-c", d, "--data", data)
    sb("deploy", "-c", d, "--data", data, "--name", "codex-web", "--route", f"{host}/*")
    out = sb("resolve", "-c", d, "--data", data, host).stdout
    assert out.startswith(f"{host}/ -> codex-web-production\n"), out
    # and a later removal leaves a route that `check` names
    sb("tenants", "remove", slug, "-c", d, "--data", data)
    p = sb("check", "-c", d, "--data", data, check=1)
    assert f'route "{host}/*" of the tenant-aware service' in p.stdout + p.stderr, p


def test_a_bad_listen_option_of_serve_is_a_usage_error_that_names_it(tmp_path):
    """serve --help: --listen and --dns take HOST:PORT, and "2 usage error".
    A bad value was found only once the edge started: exit 1 ("could not
    start"), blamed on switchboard.toml ("decl/switchboard.toml: listen
    address "localhost:0" ..."), after the data directory, its key and
    store had been made."""
    usage = sb("serve", "--help").stdout
    assert "--listen HOST:PORT" in usage and "2 usage error" in " ".join(usage.split())
    d, data = decl(tmp_path)
    for opt, value in (("--listen", "localhost:0"), ("--listen", "127.0.0.1:65536"),
                       ("--dns", "bad"), ("--dns", "[::1]"), ("--listen", "::1:0")):
        p = sb("serve", "-c", d, "--data", data, opt, value, check=2)
        assert f"{opt} {value}: expected an IP address and port" in p.stderr, p.stderr
        assert "switchboard.toml" not in p.stderr, p.stderr
    assert not data.exists(), "the data directory was made before the option was checked"


def test_the_exit_status_of_a_declaration_that_does_not_load_is_as_documented(tmp_path):
    """README.md and `switchboard --help` gave "2 a usage or load error" for
    every command, while `check` exits 1 on one (as `check --help` says and
    test_cli.py pins: it fails the check). The exception is now said where
    the rule is."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    m = re.search(r"Exit status: 0 done, 1 a negative answer \([^)]*\), 2 a usage or load "
                  r"error \(but `check` exits (\d) on a declaration that does not load", readme)
    assert m, "README.md: the exit status sentence moved"
    top = " ".join(sb("--help").stdout.split())
    assert re.search(r"2 usage or load error \(check: 1\b", top), top
    assert "1 violations or a load error" in " ".join(sb("check", "--help").stdout.split())
    d, _ = decl(tmp_path)
    toml = d / "switchboard.toml"
    toml.write_text(toml.read_text() + "\nbogus = \n")
    p = sb("check", "-c", d, check=int(m.group(1)))
    assert "switchboard.toml:" in p.stderr, p.stderr
    for cmd in (["routes"], ["resolve", f"codex.{ZONE}"], ["zone", "export", ZONE]):
        p = sb(*cmd, "-c", d, check=2)
        assert "switchboard.toml:" in p.stderr, p.stderr


def test_a_refused_deploy_does_not_send_the_user_to_a_check_that_passes(tmp_path):
    """docs/admin.md: "a deploy whose `--var API_URL:https://nowhere.example.com`
    points at nothing is refused". The refusal ended with "run `switchboard
    check`", which checks what is recorded (not the refused change) and
    answered "ok"."""
    page = doc("admin.md")
    m = re.search(r"a deploy whose `(--var \S+)` points at nothing is refused", page)
    assert m, "docs/admin.md: the refused --var example moved"
    opt, value = m.group(1).split(" ", 1)
    d, data = decl(tmp_path)
    for extra in (["--dry-run"], []):
        p = sb("deploy", "-c", d, "--data", data, "--name", "codex-web", opt, value, *extra,
               check=1)
        assert "API_URL" in p.stderr and "nowhere.example.com" in p.stderr, p.stderr
        if "switchboard check" in p.stderr:
            out = sb("check", "-c", d, "--data", data, check=None)
            assert out.returncode == 1, "the hint leads to a check that passes:\n" + p.stderr
    assert "nowhere" not in sb("versions", "-c", d, "--data", data).stdout


def test_verify_reaches_an_edge_started_on_ports_it_picked(tmp_path):
    """`switchboard serve --listen 127.0.0.1:0 --dns 127.0.0.1:0` prints the
    ports it got; verify read only [listen] of the declaration, so such an
    edge could not be verified (it asked 127.0.0.1:8080, whatever answers
    there). docs/verify.md now gives --listen and --dns, as serve has."""
    page = (ROOT / "docs" / "verify.md").read_text()
    synopsis = page.split("```sh\n", 1)[1].split("\n```", 1)[0]
    assert "[--listen HOST:PORT] [--dns HOST:PORT]" in synopsis, synopsis
    assert "is verified with `--listen 127.0.0.1:PORT`" in " ".join(page.split())
    e = Edge(tmp_path)
    try:
        e.start(dns=True)
        args = ["verify", "-c", e.dir, "--data", e.data]
        p = sb(*args, "--listen", f"127.0.0.1:{e.port}", "--dns", f"127.0.0.1:{e.dns_port}")
        assert p.stdout.splitlines()[-1].startswith("verify production: "), p.stdout
        assert " 0 failed" in p.stdout and "✓ dns codex." in p.stdout, p.stdout
        # port 0 is what serve was given, not where it listens
        p = sb(*args, "--listen", "127.0.0.1:0", check=2)
        assert "--listen 127.0.0.1:0: port 0" in p.stderr, p.stderr
        p = sb(*args, "--listen", f"127.0.0.1:{e.port}", "--dns", "bad", check=2)
        assert "--dns bad: expected an IP address and port" in p.stderr, p.stderr
        # without --dns, this declaration names no DNS address: the checks say so
        p = sb(*args, "--listen", f"127.0.0.1:{e.port}", check=1)
        assert "[listen] dns" in p.stdout, p.stdout
    finally:
        e.stop()


# ---- small things of the CLI's output ----------------------------------------

def test_check_counts_in_words_that_agree_with_the_number(tmp_path):
    # "1 webhooks checked"
    d, _ = decl(tmp_path)
    out = sb("check", "-c", d).stdout
    assert re.fullmatch(r"ok: 3 services, \d+ deployments, \d+ routes, \d+ vars, "
                        r"1 webhook checked\n", out), out


def test_versions_keeps_its_columns_with_a_long_summary(tmp_path):
    d, data = decl(tmp_path)
    sb("deploy", "-c", d, "--data", data, "--name", "auth-worker",
       "--var", "A_RATHER_LONG_VARIABLE_NAME:" + "v" * 40, "--var", "B:1")
    sb("deploy", "-c", d, "--data", data, "--name", "auth-worker", "--var", "C:2")
    lines = sb("versions", "-c", d, "--data", data).stdout.splitlines()
    assert len(lines) == 3, lines
    col = lines[0].index("COMMAND")
    # every row's command starts under the heading
    for l in lines[1:]:
        assert l[col:].startswith("switchboard deploy"), (lines[0], l)
        assert l[col - 1] == " "


def test_versions_limit_is_one_or_more(tmp_path):
    # --limit 0 listed everything, which no page said
    d, data = decl(tmp_path)
    p = sb("versions", "-c", d, "--data", data, "--limit", "0", check=2)
    assert "--limit 0: expected a number of 1 or more" in p.stderr, p.stderr


def test_a_short_unrelated_word_gets_no_suggestion():
    # "nope" is two edits from "zone", half of it: no typo
    p = sb("nope", check=2)
    assert "unknown command 'nope'" in p.stderr and "did you mean" not in p.stderr, p.stderr
    assert "did you mean 'zone'" in sb("zon", check=2).stderr
