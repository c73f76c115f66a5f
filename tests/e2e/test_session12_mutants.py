"""Tests from a mutation audit of the public-suffix, URL-scheme, xn-- label,
preview-room and check-note changes (385c5ce, 594f004, d36c546, cded98a,
1802026): each kills a mutant that the earlier tests let live (named in its
docstring)."""
from edge import closed_port, run_cli

LABEL = "a" * 52


def test_resolve_gives_the_whole_reason_a_preview_cannot_be_created(tmp_path):
    """The reason a preview cannot be created is said whole, to its last
    word (mutant: resolve's message in the old 200-byte buffer, which cut
    it)."""
    (tmp_path / "switchboard.toml").write_text(
        f'[[service]]\nname = "s"\nroutes = ["{LABEL}.example.com/*"]\n')
    data = tmp_path / "data"
    data.mkdir()
    out = run_cli("resolve", "-c", tmp_path, "--data", data,
                  f"{LABEL}-preview-123.example.com/", check=1).stdout
    first = out.splitlines()[0]
    assert first.endswith("set a shorter one with 'label' in the service's [[service]]"), out


def test_check_gives_no_note_when_a_label_names_the_derived_hosts(tmp_path):
    """A labelled service's xn-- host, zone apex and registered domain's apex
    get staging hosts from the label: check notes none of them (mutant:
    sb_model_unrenamed without the service's label)."""
    (tmp_path / "switchboard.toml").write_text(
        '[[zone]]\nname = "example.com"\nnameservers = ["ns1.example.com"]\n'
        'addresses = ["192.0.2.1"]\n\n'
        '[[service]]\nname = "a"\nlabel = "www"\n'
        'routes = ["xn--caf-dma.example.com/*", "example.com/e/*", "customer.com/c/*"]\n')
    p = run_cli("check", "-c", tmp_path, check=0)
    assert p.stdout.startswith("ok: "), p.stdout
    assert p.stderr == "", p.stderr


def test_verify_counts_only_http_urls_among_the_vars(tmp_path):
    """verify's vars line counts the string vars that are http(s) URLs, not
    every string var (mutant: urls += is_string)."""
    port = closed_port()
    (tmp_path / "switchboard.toml").write_text(
        '[[zone]]\nname = "example.com"\nnameservers = ["ns1.example.com"]\n'
        'addresses = ["127.0.0.1"]\n\n'
        f'[listen]\nhttp = "127.0.0.1:{port}"\ndns = "127.0.0.1:{port}"\n\n'
        '[[service]]\nname = "a"\nroutes = ["a.example.com/*"]\n'
        '[service.vars]\nSELF = "HTTPS://a.example.com/"\nMODE = "plain"\n'
        'OTHER = "ftp://a.example.com/"\nCOUNT = 3\n')
    data = tmp_path / "data"
    run_cli("secret", "-c", tmp_path, "--data", data, "a", check=0)
    p = run_cli("verify", "-c", tmp_path, "--data", data, check=1)
    assert "\u2713 vars a: 1 URL var, each on a host of the same environment\n" in p.stdout, \
        p.stdout
