"""A review of the [[service]] label: what the CLI says when a live change
makes two of a labelled service's hosts one staging host.

With `label = "hooks"` on stripe-webhook-handler, a custom domain deployed
next to its api.revelations.studio would give both the staging host
hooks-staging.revelations.studio: refused, as documented, and said as the
naming rule's doing (the two production hosts, the label), not as a route
"declared twice" that nobody wrote twice.
"""
import json
import os
import subprocess

from edge import Edge, SB, SERVICES

CLI = os.environ.get("SB_BIN", SB)
ZONE = "revelations.studio"
WRANGLER = 'wrangler = "workers/stripe-webhook-handler/wrangler.toml"'


def sb(d, *args, check=0):
    p = subprocess.run([CLI, *map(str, args), "-c", str(d)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode >= 0, f"killed by signal {-p.returncode}: {p.stderr}"
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}, want {check}\n{p.stdout}\n{p.stderr}"
    return p


def labelled(tmp_path):
    e = Edge(tmp_path, demos=False,
             upstreams={(s, env): "http://127.0.0.1:9" for s, _, _ in SERVICES
                        for env in ("production", "staging")})
    toml = e.dir / "switchboard.toml"
    text = toml.read_text()
    assert WRANGLER in text
    toml.write_text(text.replace(WRANGLER, WRANGLER + '\nlabel = "hooks"', 1))
    for f in ("apps/web/wrangler.toml", "workers/auth/wrangler.toml"):
        p = e.dir / f
        p.write_text(p.read_text().replace(f"https://api-staging.{ZONE}",
                                           f"https://hooks-staging.{ZONE}"))
    return e


def test_a_domain_that_the_label_merges_is_refused_as_the_naming_rules_doing(tmp_path):
    e = labelled(tmp_path)
    sb(e.dir, "check")
    for dry in (["--dry-run"], []):
        err = sb(e.dir, "deploy", "--name", "stripe-webhook-handler", "--domain",
                 f"pay.{ZONE}", *dry, check=1).stderr
        assert "declared twice" not in err, err
        assert f'"hooks-staging.{ZONE}/*"' in err and "made twice by the naming rule" in err, err
        assert f'"pay.{ZONE}"' in err and f'"api.{ZONE}"' in err and "'label'" in err, err
    assert json.loads(sb(e.dir, "versions", "--json").stdout) == []
    # a host of its own path is no collision: deployed
    out = json.loads(sb(e.dir, "deploy", "--name", "stripe-webhook-handler", "--route",
                        f"pay.{ZONE}/v2/*", "--json").stdout)
    assert out["version"] == 1, out
    routes = sb(e.dir, "routes", "--env", "staging").stdout
    assert f"hooks-staging.{ZONE}" in routes and "/v2/*" in routes, routes
