"""The declarations the docs show load, and mean what the docs say.

Each test takes a ```toml block from a docs page as it is written (so an
edit to the page that breaks it fails here), puts it beside the example's
wrangler files and runs the CLI on it.
"""
import base64
import os
import shutil
import subprocess
from pathlib import Path

from edge import SB

ROOT = Path(__file__).resolve().parents[2]
CLI = os.environ.get("SB_BIN", SB)
EXAMPLE = ROOT / "examples" / "revelations"


def toml_block(page, after):
    """The first ```toml block of docs/<page> after the line `after`."""
    text = (ROOT / "docs" / page).read_text()
    assert after in text, f"docs/{page} has no {after!r}"
    rest = text.split(after, 1)[1]
    assert "```toml\n" in rest, f"docs/{page}: no toml block after {after!r}"
    return rest.split("```toml\n", 1)[1].split("\n```", 1)[0] + "\n"


def sb(*args, check=0):
    p = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=60)
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    assert p.returncode == check, f"exit {p.returncode}, want {check}\n{p.stdout}\n{p.stderr}"
    return p


def decl(tmp_path, toml):
    d = tmp_path / "decl"
    shutil.copytree(EXAMPLE, d, ignore=shutil.ignore_patterns(".switchboard"))
    (d / "switchboard.toml").write_text(toml)
    return d


def test_the_configuration_reference_declaration_loads(tmp_path):
    d = decl(tmp_path, toml_block("configuration.md", "## switchboard.toml"))
    out = sb("routes", "-c", d).stdout
    rows = {tuple(l.split()[:3]) for l in out.splitlines()[1:]}
    assert rows == {
        ("codex.revelations.studio", "/*", "codex-web-production"),
        ("revelations.studio", "/*", "marketing"),
        ("{tenant}.revelations.studio", "/*", "codex-web-production"),
        ("codex-staging.revelations.studio", "/*", "codex-web-staging"),
    }, out
    # its declared label names codex-web's previews; the apex of the
    # inline service, without a label, has none
    out = sb("routes", "-c", d, "--pr", "7").stdout
    assert [l.split()[0] for l in out.splitlines()[1:]] == ["codex-preview-7.revelations.studio"]
    # the zone it declares: the record it adds, the SOA it spells out
    z = sb("zone", "export", "-c", d, "revelations.studio").stdout
    assert "@\t300\tIN\tMX\t10 mail.example.net." in z, z
    soa = next(l for l in z.splitlines() if "\tSOA\t" in l)
    f = soa.split()
    assert f[4:6] == ["ns1.revelations.studio.", "hostmaster.revelations.studio."], soa
    assert f[7:] == ["3600", "600", "1209600", "300"], soa


def test_the_static_records_of_the_dns_page_are_served(tmp_path):
    block = toml_block("dns.md", "## Static records")
    d = decl(tmp_path, block + '\n[[service]]\nname = "web"\nroutes = ["www.revelations.studio/*"]\n'
             'upstream.production = "http://127.0.0.1:9101"\n')
    z = sb("zone", "export", "-c", d, "revelations.studio").stdout
    lines = [l.split("\t") for l in z.splitlines() if l and not l.startswith(";")]
    got = {(f[0], f[3], f[4]) for f in lines if len(f) == 5}
    for want in [("@", "MX", "10 mail.example.net."),
                 ("@", "TXT", '"v=spf1 include:_spf.example.net -all"'),
                 ("@", "CAA", '0 issue "letsencrypt.org"'),
                 ("_sip._tcp", "SRV", "10 5 5060 sip.revelations.studio."),
                 ("status", "CNAME", "revelations.statuspage.io."),
                 ("www", "A", "203.0.113.10")]:
        assert want in got, (want, z)
    txt = next(f for f in lines if len(f) == 5 and f[3] == "TXT")
    assert txt[1] == "3600", txt


def test_the_transfer_settings_of_the_dns_page_load(tmp_path):
    block = toml_block("dns.md", "The edge's UDP answers can also be rate limited (RRL).")
    assert 'secret = "base64..."' in block
    secret = base64.b64encode(b"k" * 32).decode()
    block = block.replace('secret = "base64..."', f'secret = "{secret}"')
    d = decl(tmp_path, '[[zone]]\nname = "revelations.studio"\naddresses = ["127.0.0.1"]\n'
             'nameservers = ["ns1.revelations.studio"]\n\n[[service]]\nname = "web"\n'
             'routes = ["www.revelations.studio/*"]\n\n' + block)
    sb("routes", "-c", d)
    # and the placeholder, as written, is refused where it stands
    d2 = decl(tmp_path / "raw", '[[zone]]\nname = "revelations.studio"\n'
              'addresses = ["127.0.0.1"]\nnameservers = ["ns1.revelations.studio"]\n\n'
              '[[service]]\nname = "web"\nroutes = ["www.revelations.studio/*"]\n\n'
              + toml_block("dns.md", "The edge's UDP answers can also be rate limited (RRL)."))
    err = sb("routes", "-c", d2, check=2).stderr
    assert "switchboard.toml:" in err and "secret" in err, err
