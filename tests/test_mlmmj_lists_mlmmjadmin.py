"""/api/ml and /api/mls with the `mlmmjadmin` backend, against the recording
fake mlmmjadmin (tests/fake_mlmmjadmin.py, 127.0.0.1): the exact requests
each endpoint sends (route, token header, form fields), what lands in the
fake's spool, and our statuses when mlmmjadmin is away or refuses -- with
LDAP unchanged.  MOCK_SYNC and a real slapd.
"""

from __future__ import annotations

import pytest

from iredldap.directory.connection import SUBTREE

from .conftest import build_app
from .fake_mlmmjadmin import HEADER
from .support import ApiClient, assert_error

DOMAINS = "o=domains,dc=example,dc=com"


@pytest.fixture
def world(settings, directory, iredadmin, sqlite_templates, factory, fake_mlmmjadmin, mlmmjadmin_client):
    app = build_app(settings, directory, iredadmin, sqlite_templates, list_spool=mlmmjadmin_client)
    factory.global_admin("root@admins.test", "R00t#secret")
    factory.domain("a.test")
    client = ApiClient(app, settings)
    client.login("root@admins.test", "R00t#secret")
    fake_mlmmjadmin.clear()
    return client, fake_mlmmjadmin


def ldap(factory) -> dict:
    return {e.dn.lower(): {k.lower(): sorted(v) for k, v in e.attrs.items()
                           if k.lower() not in ("modifytimestamp", "entrycsn")}
            for e in factory.search("dc=example,dc=com", "(objectClass=*)", scope=SUBTREE)}


def writes(fake) -> list[tuple[str, str, dict]]:
    """The requests that change something (not the GETs), each checked for the token."""
    out = []
    for r in fake.recorded():
        assert r.headers.get(HEADER.lower()) == fake.token, r
        if r.method != "GET":
            out.append((r.method, r.path, {**r.query, **r.form}))
    return out


def test_create_sends_the_profile_and_the_subscribers(world, factory):
    api, fake = world
    r = api.post("/api/ml/sales@a.test", {
        "name": "Sales", "owner": "boss@a.test", "moderators": "mod@a.test", "max_message_size": "2048",
        "accessPolicy": "moderatorsonly", "is_newsletter": "yes", "subject_prefix": "[s] ", "close_list": "yes",
        "custom_headers": "X-A: 1", "subscribers": "a@x.test,b@y.test", "subscription": "digest",
        "require_confirm": "no"})
    assert r.status_code == 201, r.text
    assert writes(fake) == [
        ("POST", "/api/sales@a.test", {
            "name": "Sales", "owner": "boss@a.test", "moderators": "mod@a.test", "max_message_size": "2048",
            "enable_newsletter_subscription": "yes", "subject_prefix": "[s] ", "close_list": "yes",
            "custom_headers": "X-A: 1", "only_subscriber_can_post": "no", "only_moderator_can_post": "yes"}),
        ("POST", "/api/sales@a.test/subscribers", {"add_subscribers": "a@x.test,b@y.test",
                                                   "subscription": "digest", "require_confirm": "no"}),
    ]
    assert factory.entry(f"mail=sales@a.test,ou=Groups,domainName=a.test,{DOMAINS}").get("mtaTransport") == [
        "mlmmj:a.test/sales"]
    d = fake.spool.list_dir("sales@a.test")
    assert (d / "control" / "modonlypost").exists() and (d / "digesters.d" / "a").read_text() == "a@x.test\n"


def test_update_get_and_delete_requests(world, factory):
    api, fake = world
    assert api.post("/api/ml/sales@a.test").status_code == 201
    fake.clear()
    r = api.put("/api/ml/sales@a.test", {"name": "New", "disable_archive": "yes", "add_subscribers": "c@x.test",
                                         "require_confirm": "no", "remove_subscribers": "d@x.test"})
    assert r.status_code == 200, r.text
    assert writes(fake) == [
        ("PUT", "/api/sales@a.test", {"name": "New", "disable_archive": "yes"}),
        ("POST", "/api/sales@a.test/subscribers", {"add_subscribers": "c@x.test", "subscription": "normal",
                                                   "require_confirm": "no"}),
        ("POST", "/api/sales@a.test/subscribers", {"remove_subscribers": "d@x.test"}),
    ]
    # Pro's default: a subscription asks for confirmation.
    fake.clear()
    assert api.put("/api/ml/sales@a.test", {"add_subscribers": "e@x.test"}).status_code in (200, 502)
    assert writes(fake)[0][2]["require_confirm"] == "yes"
    fake.clear()
    data = api.get("/api/ml/sales@a.test", {"with_subscribers": "yes"}).json["_data"]
    assert data["name"] == "New" and data["disable_archive"] == "yes" and data["cn"] == ["New"]
    assert {"mail": "c@x.test", "subscription": "normal"} in data["subscribers"]
    assert [(r.method, r.path) for r in fake.recorded()] == [("GET", "/api/sales@a.test"),
                                                             ("GET", "/api/sales@a.test/subscribers")]
    fake.clear()
    assert api.delete("/api/ml/sales@a.test").status_code == 200
    assert writes(fake) == [("DELETE", "/api/sales@a.test", {"archive": "yes"})]
    assert api.post("/api/ml/two@a.test").status_code == 201
    fake.clear()
    assert api.delete("/api/ml/two@a.test", {"keep_archive": "no"}).status_code == 200
    assert writes(fake) == [("DELETE", "/api/two@a.test", {"archive": "no"})]
    assert not fake.spool.list_dir("two@a.test").exists()


def test_mlmmjadmin_unreachable_is_503_and_ldap_unchanged(world, factory):
    api, fake = world
    assert api.post("/api/ml/kept@a.test").status_code == 201
    before = ldap(factory)
    fake.stop()
    for method, path, params in [("POST", "/api/ml/new@a.test", {"name": "x"}),
                                 ("PUT", "/api/ml/kept@a.test", {"name": "changed"}),
                                 ("DELETE", "/api/ml/kept@a.test", None),
                                 ("POST", "/api/ml/kept@a.test/change_email/moved@a.test", {}),
                                 ("DELETE", "/api/domain/a.test", None)]:
        r = api.request(method, path, params)
        assert r.status_code == 503, (method, path, r.text)
        assert ldap(factory) == before, (method, path)
    assert api.get("/api/mls/a.test", {"email_only": "yes"}).json["_data"] == ["kept@a.test"]


def test_mlmmjadmin_refusing_is_502_and_nothing_written(world, factory):
    api, fake = world
    before = ldap(factory)
    # Its answer to everything: an error envelope (HTTP 200, as mlmmjadmin does).
    fake.canned = {"_success": False, "_msg": "SKEL_DIR_NOT_EXIST"}
    r = api.post("/api/ml/new@a.test", {"name": "x"})
    assert r.status_code == 502 and r.json["_success"] is False, r.text
    assert ldap(factory) == before
    fake.canned = None
    assert not fake.spool.list_dir("new@a.test").exists()


def test_change_email_rebuilds_the_list_at_mlmmjadmin(world, factory):
    api, fake = world
    assert api.post("/api/ml/old@a.test", {"name": "Old", "subscribers": "s@x.test",
                                           "require_confirm": "no"}).status_code == 201
    fake.clear()
    assert api.post("/api/ml/old@a.test/change_email/new@a.test").status_code == 200
    steps = [(m, p) for m, p, _ in writes(fake)]
    assert steps[0] == ("POST", "/api/new@a.test") and steps[-1] == ("DELETE", "/api/old@a.test")
    assert (fake.spool.list_dir("new@a.test") / "subscribers.d" / "s").read_text() == "s@x.test\n"
    assert factory.entry(f"mail=new@a.test,ou=Groups,domainName=a.test,{DOMAINS}").get("mtaTransport") == [
        "mlmmj:a.test/new"]
    assert_error(api.get("/api/ml/old@a.test"), 404, "NO_SUCH_ACCOUNT")


# -- every profile parameter of /api/ml, as mlmmjadmin receives it ------------------------

def _profile_cases():
    from iredldap.model.accounts import MLMMJ_LIST
    from iredldap.model.mlmmj_profile import BY_NAME
    from iredldap.model.subscribable import MIRRORED, PROFILE, SPOOL_NAMES

    from .test_mlmmj_spool import SAMPLES
    # The API lower-cases and checks addresses (mlmmjadmin keeps owners as
    # given) and trims the display name (the entry's cn too).
    answers = {"owner": ["boss@example.com", "second@example.com"], "name": "Sales team"}
    for param in PROFILE + tuple(MLMMJ_LIST.field(n).param for n in MIRRORED):
        theirs = SPOOL_NAMES.get(param.name, param.name)
        if BY_NAME[theirs].kind == "boolean":
            yield param.name, theirs, "yes", "yes"
        else:
            value, answer, _ = SAMPLES[theirs]
            yield param.name, theirs, value, answers.get(theirs, answer)


PROFILE_CASES = list(_profile_cases())


@pytest.mark.parametrize("backend", ["mock"])
@pytest.mark.parametrize("ours,theirs,value,answer", PROFILE_CASES, ids=[c[0] for c in PROFILE_CASES])
def test_every_profile_parameter_reaches_mlmmjadmin(world, factory, ours, theirs, value, answer):
    api, fake = world
    factory.domain("example.com")     # the samples' list is sales@example.com
    assert api.post("/api/ml/sales@example.com").status_code == 201
    fake.clear()
    r = api.put("/api/ml/sales@example.com", {ours: value})
    assert r.status_code == 200, r.text
    [(method, path, form)] = writes(fake)
    assert (method, path, list(form)) == ("PUT", "/api/sales@example.com", [theirs])
    data = api.get("/api/ml/sales@example.com").json["_data"]
    assert data[theirs] == answer and data[ours] == answer
