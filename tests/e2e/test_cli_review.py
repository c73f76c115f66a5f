"""The command line as an operator scripts it: help and usage errors, options
a command does not take, suggestions for a mistyped command, and output that
cannot be written (a full disk, a closed stdout, a reader gone early).

Runs the binary named by $SB_BIN (make check passes the ASan+UBSan build).
"""
import json
import os
import shutil
import signal
import subprocess
import threading

import pytest

from edge import CLI, EXAMPLE, run_cli

COMMANDS = ["check", "routes", "resolve", "tenants", "serve", "reload", "secret", "zone",
            "deploy", "delete", "preview", "versions", "rollback", "verify"]


@pytest.fixture
def ex(tmp_path):
    """A copy of the example without a developer's `make run` state."""
    dst = tmp_path / "revelations"
    shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns(".switchboard"))
    return dst


# ---- help and unknown commands ----------------------------------------------

def test_help_of_an_unknown_command_is_a_usage_error():
    p = run_cli("help", "frobnicate", check=2)
    assert p.stdout == ""
    assert "unknown command 'frobnicate'" in p.stderr


@pytest.mark.parametrize("typed,meant", [("chek", "check"), ("rutes", "routes"),
                                         ("verfy", "verify"), ("tenant", "tenants"),
                                         ("previwe", "preview"), ("rollbak", "rollback"),
                                         ("resolv", "resolve")])
def test_a_mistyped_command_gets_a_suggestion(typed, meant):
    p = run_cli(typed, "-c", EXAMPLE, check=2)
    assert p.stdout == ""
    assert f"unknown command '{typed}'" in p.stderr
    assert f"did you mean '{meant}'?" in p.stderr
    # the same for help
    p = run_cli("help", typed, check=2)
    assert f"did you mean '{meant}'?" in p.stderr


def test_an_unrelated_word_gets_no_suggestion():
    p = run_cli("xyzzy", check=2)
    assert "unknown command 'xyzzy'" in p.stderr
    assert "did you mean" not in p.stderr


@pytest.mark.parametrize("args,meant", [(["preview", "creat"], "create"),
                                        (["preview", "lst"], "list"),
                                        (["zone", "exprot"], "export")])
def test_a_mistyped_subcommand_gets_a_suggestion(args, meant):
    p = run_cli(*args, "-c", EXAMPLE, check=2)
    assert f"did you mean '{meant}'?" in p.stderr, p.stderr


def test_the_main_help_names_every_command_help_and_version_and_exit_status():
    out = run_cli("--help", check=0).stdout
    for c in COMMANDS:
        assert f"\n  {c} " in out, c
    assert "--version" in out
    assert "help COMMAND" in out
    assert "Exit status" in out


@pytest.mark.parametrize("cmd", ["check", "routes", "resolve", "serve", "secret"])
def test_a_command_help_says_what_c_takes_and_the_exit_status(cmd):
    out = run_cli(cmd, "--help", check=0).stdout
    assert "-c, --config PATH" in out
    assert "Exit status:" in out


# ---- options a command does not take ----------------------------------------

@pytest.mark.parametrize("opt,value", [("--listen", "127.0.0.1:1"), ("--dns", "127.0.0.1:1"),
                                       ("--threads", "2")])
def test_reload_refuses_the_options_of_serve(ex, opt, value):
    # a running server keeps its addresses and threads: taken and ignored,
    # they would look applied
    p = run_cli("reload", "-c", ex, opt, value, check=2)
    assert f"switchboard reload: {opt} is an option of serve" in p.stderr, p.stderr


def test_serve_with_a_declaration_that_does_not_load_is_exit_2(tmp_path):
    # exit 2 for a load error, as every command; 1 is a server that could
    # not start (an address in use, another server on the data directory)
    (tmp_path / "switchboard.toml").write_text("[broken\n")
    p = run_cli("serve", "-c", tmp_path, "--listen", "127.0.0.1:0", check=2)
    assert "switchboard.toml:1:8: expected ']'" in p.stderr, p.stderr
    assert not (tmp_path / ".switchboard").exists()


@pytest.mark.parametrize("args", [["check", "--json"], ["check", "--env", "staging"],
                                  ["check", "--pr", "3"],
                                  ["resolve", "--env", "staging", "codex.revelations.studio"],
                                  ["resolve", "--pr", "3", "codex.revelations.studio"]])
def test_an_option_the_command_does_not_take_is_refused(ex, args):
    # ignored, `check --json` would print text to a script that parses JSON,
    # and `resolve --env staging` would answer for production
    p = run_cli(*args, "-c", ex, check=2)
    assert p.stdout == ""
    opt = next(a for a in args if a.startswith("--"))
    assert f"switchboard {args[0]}: {opt} does not apply" in p.stderr, p.stderr


def test_the_options_a_command_takes_still_work(ex):
    staging = run_cli("routes", "-c", ex, "--env", "staging", "--json", check=0).stdout
    assert "staging" in staging and "production" not in json.dumps(json.loads(staging)), staging
    assert "-preview-4" in run_cli("routes", "-c", ex, "--pr", "4", check=0).stdout
    j = json.loads(run_cli("resolve", "-c", ex, "--json", "codex.revelations.studio",
                           check=0).stdout)
    assert j["routed"] is True, j
    run_cli("check", "-c", ex, "--data", ex / "nowhere", check=0)


@pytest.mark.parametrize("args", [["check", "--bogus"], ["routes", "-x"], ["resolve", "--json=1"],
                                  ["zone", "export", "--bogus"], ["verify", "--bogus"],
                                  ["versions", "--bogus"], ["preview", "list", "--bogus"],
                                  ["serve", "--bogus"]])
def test_an_option_error_names_the_command(args):
    p = run_cli(*args, check=2)
    first = p.stderr.splitlines()[0]
    cmd = " ".join(a for a in args if not a.startswith("-"))
    assert first.startswith(f"switchboard {cmd}: "), first


def test_preview_create_without_pr_says_it_is_required(ex):
    p = run_cli("preview", "create", "-c", ex, check=2)
    assert "--pr N" in p.stderr and "(missing)" not in p.stderr, p.stderr


# ---- output that cannot be written -------------------------------------------

READERS = [["routes"], ["routes", "--json"], ["check"], ["resolve", "codex.revelations.studio"],
           ["zone", "export", "revelations.studio"], ["versions"], ["preview", "list"],
           ["tenants", "list"]]


def run_with_stdout(args, stdout, preexec=None):
    p = subprocess.run([CLI, *map(str, args)], stdout=stdout, stderr=subprocess.PIPE,
                       text=True, timeout=60, preexec_fn=preexec)
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p


@pytest.mark.parametrize("args", READERS + [["--help"], ["--version"], ["check", "--help"]])
def test_output_to_a_full_disk_fails(ex, args):
    with open("/dev/full", "w") as full:
        p = run_with_stdout([*args, *(["-c", ex] if args[0][0] != "-" and "--help" not in args
                                      else [])], full)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "switchboard: cannot write the output: No space left on device" in p.stderr


@pytest.mark.parametrize("args", READERS + [["--help"]])
def test_output_to_a_closed_stdout_fails(ex, args):
    p = run_with_stdout([*args, *(["-c", ex] if args[0][0] != "-" else [])], None,
                        preexec=lambda: os.close(1))
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "switchboard: cannot write the output: Bad file descriptor" in p.stderr


def test_a_closed_stdout_is_never_a_file_the_server_opens(ex, tmp_path):
    # with fd 1 closed, the next file opened took its number: the data
    # directory's lock file, where the access log then went
    data = tmp_path / "data"
    p = subprocess.Popen([CLI, "serve", "-c", ex, "--data", data, "--listen", "127.0.0.1:0",
                          "--dns", "127.0.0.1:0", "--threads", "1"],
                         stdout=None, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: os.close(1))
    # stderr is read by a thread (the pipe never fills, a silent hang is a
    # timeout, not a test that never ends)
    lines, ready = [], threading.Event()

    def drain():
        for line in p.stderr:
            lines.append(line)
            if "listening on http://" in line:
                ready.set()
        ready.set()
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert ready.wait(30) and p.poll() is None, f"the edge did not start: {lines[-20:]}"
        target = os.readlink(f"/proc/{p.pid}/fd/1")
        assert target == "/dev/null", target
        with open(f"/proc/{p.pid}/fdinfo/1") as f:  # read-only: writes fail
            flags = next(int(v, 8) for k, v in (ln.split(":") for ln in f) if k == "flags")
        assert flags & os.O_ACCMODE == os.O_RDONLY, oct(flags)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        reader.join(10)
    # it stops cleanly, with no sanitizer report
    assert p.returncode == 0, "".join(lines[-20:])
    assert not [l for l in lines if "Sanitizer" in l or "runtime error" in l], "".join(lines)


@pytest.mark.parametrize("args", READERS)
def test_a_reader_gone_early_makes_no_noise(ex, args):
    # `switchboard routes | head -1`: the pipe's read end is closed. With
    # SIGPIPE at its default the command ends by it, silently, as cat does;
    # with SIGPIPE ignored (as some supervisors leave it) it sees EPIPE and
    # says so once, exit 2: never a 0 that says all was written.
    for ignore in (False, True):
        r, w = os.pipe()
        os.close(r)

        def pre(ignore=ignore):
            signal.signal(signal.SIGPIPE, signal.SIG_IGN if ignore else signal.SIG_DFL)

        p = subprocess.run([CLI, *map(str, args), "-c", ex], stdout=w, stderr=subprocess.PIPE,
                           text=True, timeout=60, preexec_fn=pre, restore_signals=False)
        os.close(w)
        if ignore:
            assert p.returncode == 2, p.returncode
            assert p.stderr == "switchboard: cannot write the output: Broken pipe\n", p.stderr
        else:
            assert p.returncode == -signal.SIGPIPE, p.returncode
            assert p.stderr == "", p.stderr


# ---- -c: a file or a directory ------------------------------------------------

def test_c_takes_the_file_or_its_directory_and_says_which_is_missing(ex, tmp_path):
    a = run_cli("routes", "-c", ex, check=0).stdout
    assert run_cli("routes", "-c", ex / "switchboard.toml", check=0).stdout == a
    p = run_cli("routes", "-c", tmp_path, check=2)
    assert "directory has no switchboard.toml" in p.stderr
    p = run_cli("routes", "-c", tmp_path / "nope.toml", check=2)
    assert "nope.toml: cannot open" in p.stderr
    # without -c: the current directory
    p = subprocess.run([CLI, "routes"], cwd=ex, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout == a


def test_a_dry_run_creates_no_data_directory(ex):
    p = run_cli("deploy", "-c", ex, "--name", "codex-web", "--dry-run", "--json", check=0)
    assert '"dry_run": true' in p.stdout
    assert not (ex / ".switchboard").exists()


HOSTILE = "\x1b[2J\nrm -rf"


@pytest.mark.parametrize("args", [
    [HOSTILE],                                   # an unknown command
    ["tenants", HOSTILE],                        # an unknown subcommand
    ["preview", HOSTILE],
    ["zone", HOSTILE],
    ["check", "-c", "{ex}", HOSTILE],            # an unexpected argument
    ["routes", "-c", "{ex}", HOSTILE],
    ["routes", "-c", "{ex}", "--env", HOSTILE],  # an unknown environment
    ["deploy", "-c", "{ex}", HOSTILE],
    ["versions", "-c", "{ex}", HOSTILE],         # (it took any argument silently)
    ["versions", "-c", "{ex}", "--limit", HOSTILE],
    ["rollback", "-c", "{ex}", HOSTILE],         # not a version number
    ["serve", "-c", "{ex}", HOSTILE],
    ["reload", "-c", "{ex}", HOSTILE],
    ["verify", "-c", "{ex}", HOSTILE],
    ["zone", "export", "-c", "{ex}", HOSTILE],   # not a zone
])
def test_an_argument_echoed_in_an_error_is_printable(ex, args):
    # a newline would split the message, an escape sequence would run in the
    # operator's terminal: such bytes are shown as \xNN
    p = run_cli(*[str(ex) if a == "{ex}" else a for a in args])
    assert p.returncode in (1, 2), p
    assert "\x1b" not in p.stderr, p.stderr
    assert "\\x1b[2J\\x0arm -rf" in p.stderr, p.stderr


def test_a_mistyped_tenants_command_gets_a_suggestion(ex):
    p = run_cli("tenants", "ad", "acme", "-c", ex, check=2)
    assert "switchboard tenants: unknown command 'ad' (did you mean 'add'?)" in p.stderr, p.stderr


def test_resolve_answers_as_the_edge_with_the_tenant_registry(ex, tmp_path):
    # resolve reads the registry as a server on the same data directory does
    data = tmp_path / "data"
    data.mkdir()  # no store yet: the static tenants only
    host = "acme.revelations.studio"

    def resolve(check):
        p = run_cli("resolve", "-c", ex, "--data", data, host, "--json", check=check)
        return json.loads(p.stdout)

    j = resolve(1)
    assert j["routed"] is False and "no tenant is registered with this slug" in j["reason"], j
    run_cli("tenants", "add", "acme", "-c", ex, "--data", data, check=0)
    j = resolve(0)
    assert j["routed"] is True and j["tenant"] == "acme", j
    assert j["deployment"] == "codex-web-production", j
    run_cli("tenants", "suspend", "acme", "-c", ex, "--data", data, check=0)
    j = resolve(1)
    assert j["routed"] is False and "suspended" in j["reason"], j
    run_cli("tenants", "remove", "acme", "-c", ex, "--data", data, check=0)
    assert resolve(1)["routed"] is False
