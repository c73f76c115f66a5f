"""`resolve` on the preview host of a PR whose name would not fit DNS.

A 52-character label gets a 64-character preview label for a three-digit
PR: `preview create` refuses it, yet `resolve` said "preview 123 has not
been created ... (switchboard preview create --pr 123)", sending the user
to a command that fails. It now says why that preview cannot be created;
a PR whose label fits still gets the hint.
"""
from edge import run_cli

LABEL = "a" * 52
DECL = f'[[service]]\nname = "s"\nroutes = ["{LABEL}.example.com/*"]\n'


def test_resolve_says_a_preview_that_cannot_fit_cannot_be_created(tmp_path):
    (tmp_path / "switchboard.toml").write_text(DECL)
    data = tmp_path / "data"
    data.mkdir()
    out = run_cli("resolve", "-c", tmp_path, "--data", data,
                  f"{LABEL}-preview-123.example.com/", check=1).stdout
    first = out.splitlines()[0]
    assert "preview 123 cannot be created" in first, out
    assert "would be longer than 63 characters" in first, out
    assert "preview create" not in first, out
    # and the command it no longer suggests does refuse it
    p = run_cli("preview", "create", "-c", tmp_path, "--data", data, "--pr", "123", check=1)
    assert "would be longer than 63 characters" in p.stderr, p.stderr
    # two digits fit: the hint stays
    out = run_cli("resolve", "-c", tmp_path, "--data", data,
                  f"{LABEL}-preview-12.example.com/", check=1).stdout
    assert "preview 12 has not been created" in out and "preview create --pr 12" in out, out
