"""Tests written in a mutation audit of the live-change operations
(src/admin/ops.c, src/model/live.c): each one fails against a small change
to them that the other tests let through (the change is named in each
test's comment). The DNS server's are in tests/unit/test_dns_mutants.c."""
import pytest

from test_admin_api import api, bearer, make_edge, admin_port, tcp_edge  # noqa: F401


@pytest.fixture
def edge(tcp_edge):
    """An edge with its admin API on TCP (test_admin_api's)."""
    return tcp_edge


def op(e, **o):
    return api(e, "POST", "/v1/ops", o, token=bearer(e))


def versions(e):
    st, body = api(e, "GET", "/v1/versions", token=bearer(e))
    assert st == 200, body
    return [v["version"] for v in body]


def preview_deployments(e, pr):
    """The deployments GET /v1/previews lists for pr (those with routes)."""
    st, body = api(e, "GET", "/v1/previews", token=bearer(e))
    assert st == 200, body
    return sorted(n for p in body if p["pr"] == pr for n in p["deployments"])


# Pull requests are numbered from 1: pr 0 names none, in every op that takes
# one (mutant: op_pr took 0, and "preview 0" was created).
@pytest.mark.parametrize("o", [
    {"op": "preview-create", "pr": 0},
    {"op": "preview-delete", "pr": 0},
    {"op": "deploy", "name": "codex-web", "env": "preview", "pr": 0, "vars": {"Q": "1"}},
])
def test_pr_zero_is_refused(edge, o):
    st, body = op(edge, **o)
    assert st == 422, (o, st, body)
    assert body["error"].startswith("pr: expected a pull request number (1 to "), body
    assert versions(edge) == []


# An upstream URL is checked where the deploy is made, with the option's
# name (mutant: the check in op_deploy skipped, another layer's message).
def test_a_deploy_upstream_that_is_not_a_url_is_refused_naming_it(edge):
    for up in ("ftp://127.0.0.1:1", "127.0.0.1:8080"):
        st, body = op(edge, op="deploy", name="codex-web", upstream=up)
        assert st == 422, (up, st, body)
        assert body["error"].startswith(f'--upstream "{up}": '), body
    assert versions(edge) == []


# A version number is positive (mutant: a negative one went to the store).
def test_rollback_to_a_negative_version_is_refused(edge):
    st, body = op(edge, op="preview-create", pr=3)
    assert st == 200, body
    st, body = op(edge, op="rollback", version=-1)
    assert (st, body["error"]) == (422, "version: expected a version number"), body
    assert versions(edge) == [1]


# With no change made yet there is nothing to roll back (mutant: the
# rollback "went back to the declaration alone" and recorded a version).
def test_rollback_with_no_change_yet_has_nothing_to_roll_back(edge):
    st, body = op(edge, op="rollback")
    assert st == 404, body
    assert "nothing to roll back" in body["error"], body
    assert versions(edge) == []


# preview-delete forgets the deletes of the preview's deployments too, so
# that the preview created again for the same PR starts afresh with every
# service (mutant: only the deploys were forgotten, and a deployment deleted
# once stayed deleted in every later preview of that PR).
def test_a_preview_created_again_starts_afresh(edge):
    st, body = op(edge, op="preview-create", pr=5)
    assert st == 200, body
    full = preview_deployments(edge, 5)
    assert "codex-web-preview-5" in full, full
    st, body = op(edge, op="delete", name="codex-web-preview-5")
    assert st == 200, body
    assert "codex-web-preview-5" not in preview_deployments(edge, 5)
    st, body = op(edge, op="preview-delete", pr=5)
    assert st == 200, body
    st, body = op(edge, op="preview-create", pr=5)
    assert st == 200, body
    assert preview_deployments(edge, 5) == full


# An expire with no preview past its ttl changes nothing and records no
# version (mutant: every expire was a change, "expired previews" with none).
def test_an_expire_with_nothing_to_expire_changes_nothing(edge):
    st, body = op(edge, op="preview-create", pr=4, ttl=3600)
    assert st == 200, body
    st, body = op(edge, op="expire")
    assert st == 200, body
    assert (body["changed"], body["version"], body["summary"]) == (False, 0, "nothing to do"), body
    assert versions(edge) == [1]


# A dry run reports no change: nothing was recorded (mutant: "changed" said
# what the op would have done).
def test_a_dry_run_reports_no_change(edge):
    st, body = op(edge, op="deploy", name="codex-web", vars={"Q": "1"}, dry_run=True)
    assert st == 200, body
    assert (body["changed"], body["dry_run"], body["version"]) == (False, True, 0), body
    assert versions(edge) == []


# A change is checked against the zone it would publish: a deploy whose
# route lands on a static address record is refused naming both (mutant:
# the zone's build error was ignored by the check, and the change recorded).
def test_a_deploy_route_on_a_static_address_record_is_refused(tmp_path):
    e = make_edge(tmp_path, admin="127.0.0.1:0")
    decl = e.dir / "switchboard.toml"
    decl.write_text(decl.read_text() + '\n[[zone.record]]\nname = "shop"\ntype = "A"\n'
                    'data = "192.0.2.9"\n')
    e.start()
    try:
        e.admin_port = admin_port(e)
        e.token = (e.data / "admin.token").read_text()
        st, body = op(e, op="deploy", name="codex-web",
                      routes=["shop.revelations.studio/*"])
        assert (st, body["code"]) == (409, "already exists"), body
        # the route was declared by the deploy, which has no line: named
        # without a ":0:0"
        assert ('record "shop" A collides with route "shop.revelations.studio/*" of '
                'codex-web-production (deploy codex-web-production), which gives '
                'shop.revelations.studio its addresses') in body["error"], body
        assert versions(e) == []
    finally:
        e.stop()



# 999999999 is the largest pr (docs/admin.md), 1000000000 is refused
# (mutant: the largest refused too).
def test_the_largest_pr_is_allowed(edge):
    st, body = op(edge, op="preview-create", pr=999999999)
    assert st == 200, body
    st, body = op(edge, op="preview-create", pr=1000000000)
    assert st == 422 and body["error"].startswith("pr: expected a pull request number"), body
    assert versions(edge) == [1]


# A deploy gives an upstream URL or a command, not both (mutant: both were
# taken, the command winning silently).
def test_a_deploy_with_an_upstream_and_a_command_is_refused(edge):
    st, body = op(edge, op="deploy", name="codex-web", upstream="http://127.0.0.1:1",
                  command=["sleep", "60"])
    assert (st, body["error"]) == (422, "give an upstream URL or a command, not both"), body
    assert versions(edge) == []


# A deployment named with an env it is not in is refused, not deployed in
# its own env (mutant: the env was ignored for a deployment name).
def test_a_deployment_name_with_another_env_is_refused(edge):
    st, body = op(edge, op="deploy", name="codex-web-production", env="staging",
                  vars={"Q": "1"})
    assert st == 422, body
    assert body["error"] == ("deployment codex-web-production is a production deployment, "
                             "not staging"), body
    assert versions(edge) == []


# Taking something away is always allowed, even when what is left fails the
# consistency check (mutants: delete, or preview-delete, ran the check and
# was refused for what the deletion left).
def test_deletes_are_allowed_whatever_they_leave(edge):
    st, body = op(edge, op="preview-create", pr=8)
    assert st == 200, body
    # URL vars of the other services name codex.revelations.studio
    st, body = op(edge, op="delete", name="codex-web-production")
    assert st == 200, body
    st, body = op(edge, op="preview-delete", pr=8)
    assert st == 200, body
    assert versions(edge) == [3, 2, 1]
