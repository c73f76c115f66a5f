"""What a reload says takes effect only at the next start.

A reload keeps the data directory and the listening addresses the process
started with, and warns when the declaration asks for others. It used to
compare the new declaration with the previous one, so it warned about
`[listen] http` or `dns` for a server started with `--listen` or `--dns`
(which no declaration changes), and warned again when a value was put back
to the one in effect.
"""
from edge import free_port, run_cli

WARN = "changed: it takes effect at the next start"


def reload_warnings(e):
    p = run_cli("reload", "-c", e.dir, check=0)
    return [l for l in p.stderr.splitlines() if WARN in l]


def with_listen(e, text):
    toml = e.dir / "switchboard.toml"
    base = toml.read_text().split("\n[listen]\n", 1)[0]
    toml.write_text(base + ("\n[listen]\n" + text if text else ""))


def test_options_of_serve_are_not_changed_by_a_reload(fresh):
    e = fresh().start(dns=True)  # --listen 127.0.0.1:0 --dns 127.0.0.1:0
    with_listen(e, f'http = "127.0.0.1:{free_port()}"\ndns = "127.0.0.1:{free_port()}"\n')
    assert reload_warnings(e) == []


def test_a_value_put_back_is_not_a_change(fresh):
    e = fresh().start()
    admin = f'admin = "127.0.0.1:{free_port()}"\n'
    with_listen(e, admin)
    got = reload_warnings(e)
    assert len(got) == 1 and "[listen] admin changed" in got[0], got
    # still not in effect: said again
    assert len(reload_warnings(e)) == 1
    # back to what the server started with (no admin port): nothing to say
    with_listen(e, "")
    assert reload_warnings(e) == []
    # the declaration's own dns, with no --dns: a change, as before
    with_listen(e, f'dns = "127.0.0.1:{free_port()}"\n')
    got = reload_warnings(e)
    assert len(got) == 1 and "[listen] dns changed" in got[0], got
