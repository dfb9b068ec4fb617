"""Attacks on subscribable (mlmmj) lists from outside: a hostile tenant (the
admin of one domain), a careless client, a failing backend.  Every test
asserts the status and that nothing changed that should not: the LDAP tree,
the spool (every file with its content), the requests mlmmjadmin got."""

from __future__ import annotations

import pytest

from .conftest import build_app
from .fake_mlmmjadmin import HEADER
from .support import ApiClient, parallel as run_in_parallel
from .test_mlmmj_lists import ml_app, mlapi, snapshot, spool  # noqa: F401 - fixtures and helpers

PW = "Secr3t#pass"
DOMAINS = "o=domains,dc=example,dc=com"


@pytest.fixture
def tenant(ml_app, settings, factory, mlapi):  # noqa: F811
    factory.normal_admin("tenant@admins.test", "T3nant#secret", domains=["a.test"])
    client = ApiClient(ml_app, settings)
    client.login("tenant@admins.test", "T3nant#secret")
    return client


@pytest.fixture
def world(settings, directory, iredadmin, sqlite_templates, factory, fake_mlmmjadmin, mlmmjadmin_client):
    """The API on the mlmmjadmin backend (the recording fake), a global admin
    and the tenant of a.test."""
    app = build_app(settings, directory, iredadmin, sqlite_templates, list_spool=mlmmjadmin_client)
    factory.global_admin("root@admins.test", "R00t#secret")
    factory.domain("a.test")
    factory.domain("b.test")
    factory.normal_admin("tenant@admins.test", "T3nant#secret", domains=["a.test"])
    root, tenant = ApiClient(app, settings), ApiClient(app, settings)
    root.login("root@admins.test", "R00t#secret")
    tenant.login("tenant@admins.test", "T3nant#secret")
    fake_mlmmjadmin.clear()
    return root, tenant, fake_mlmmjadmin


def state(factory, fake) -> tuple[dict, dict]:
    """LDAP and the fake mlmmjadmin's spool."""
    return snapshot(factory, fake.spool)


def changes(fake) -> list[tuple[str, str]]:
    """The requests sent to mlmmjadmin that change something, each with our token."""
    out = []
    for r in fake.recorded():
        assert r.headers.get(HEADER.lower()) == fake.token, r
        if r.method != "GET":
            out.append((r.method, r.path))
    return out


# -- line breaks mlmmj does not see as such ---------------------------------------------

@pytest.mark.parametrize("backend", ["mock"])
@pytest.mark.parametrize("name, value", [
    ("custom_headers", "X-A: a\u2028Bcc: victim@b.test"),
    ("custom_headers", "X-A: a\u2029nocolon"),
    ("subject_prefix", "[x]\u2028Bcc: victim@b.test"),
    ("footer_text", "bye\u2029Bcc: victim@b.test"),
    ("name", "List\u2028two"),
])
def test_unicode_line_separators_are_refused(tenant, factory, spool, name, value):  # noqa: F811
    """U+2028/U+2029 pass the control-character check but str.splitlines()
    splits on them: a custom header holding one was one line for mlmmj but
    two for our readers, and a change_email (which rewrites customheaders
    from what it read) turned it into a real extra header (`Bcc: ...`) or
    failed half-way.  They are refused now."""
    assert tenant.post("/api/ml/mine@a.test", {"require_confirm": "no"}).status_code == 201
    before = snapshot(factory, spool)
    r = tenant.post("/api/ml/new@a.test", {name: value})
    assert r.status_code == 400 and r.json["_msg"] == "INVALID_PARAMETER", r.text
    r = tenant.put("/api/ml/mine@a.test", {name: value})
    assert r.status_code == 400 and r.json["_msg"] == "INVALID_PARAMETER", r.text
    r = tenant.request("PUT", "/api/ml/mine@a.test", json_body={name: value})
    assert r.status_code == 400 and r.json["_msg"] == "INVALID_PARAMETER", r.text
    assert snapshot(factory, spool) == before


@pytest.mark.parametrize("backend", ["mock"])
def test_a_line_separator_already_in_customheaders_stays_one_line_through_change_email(tenant, factory, spool):  # noqa: F811,E501
    # A list written before the check (or by hand): mlmmj sees one header
    # line; reading and moving the list must not make two of it.
    assert tenant.post("/api/ml/mine@a.test").status_code == 201
    headers = spool.list_dir("mine@a.test") / "control" / "customheaders"
    headers.write_text("X-A: a\u2028Bcc: victim@b.test\n" + headers.read_text())
    shown = tenant.get("/api/ml/mine@a.test").json["_data"]["custom_headers"]
    assert "X-A: a\u2028Bcc: victim@b.test" in shown and "Bcc: victim@b.test" not in shown
    r = tenant.post("/api/ml/mine@a.test/change_email/moved@a.test")
    assert r.status_code == 200, r.text
    lines = (spool.list_dir("moved@a.test") / "control" / "customheaders").read_text().split("\n")
    assert "Bcc: victim@b.test" not in lines and "X-A: a\u2028Bcc: victim@b.test" in lines


@pytest.mark.parametrize("backend", ["mock"])
@pytest.mark.parametrize("params", [
    {"custom_headers": "X-A: 1\r\nBcc: victim@b.test\rX-B: 2"},     # a lone CR
    {"custom_headers": "X-A: 1\n\tfolded"},                          # no colon: not a header line
    {"subject_prefix": "[x]\r\nBcc: victim@b.test"},
    {"subject_prefix": "[x]\nBcc: victim@b.test"},
    {"name": "n\nx"},
    {"remove_headers": "X-A\nBcc"},
    {"extra_addresses": "x@a.test\nevil@b.test"},
    {"owner": "o@a.test\nevil@b.test"},
    {"moderators": "m@a.test\r\nevil@b.test"},
    {"add_subscribers": "s@x.test\nt@x.test"},
    {"footer_text": "bye\x1bxx"},
    {"footer_html": "<p>\x0cx</p>"},
])
def test_newlines_cannot_add_lines_to_control_or_subscriber_files(tenant, factory, spool, params):  # noqa: F811
    assert tenant.post("/api/ml/mine@a.test", {"require_confirm": "no"}).status_code == 201
    before = snapshot(factory, spool)
    r = tenant.put("/api/ml/mine@a.test", {**params, "require_confirm": "no"})
    assert r.status_code == 400, r.text
    assert snapshot(factory, spool) == before


# -- a tenant and the settings of the operator ------------------------------------------------

@pytest.mark.parametrize("backend", ["mock"])
@pytest.mark.parametrize("params", [
    {"relay_host": "evil.example"}, {"smtp_port": "25"}, {"smtp_helo": "evil.example"},
    {"relay_host": ""}, {"smtp_helo": ""},
])
def test_a_tenant_cannot_move_list_mail_past_the_filter(tenant, factory, spool, params):  # noqa: F811
    assert tenant.post("/api/ml/mine@a.test").status_code == 201
    before = snapshot(factory, spool)
    for how in ("form", "json"):
        for method, path in (("PUT", "/api/ml/mine@a.test"), ("POST", "/api/ml/other@a.test")):
            if how == "form":
                r = tenant.request(method, path, params)
            else:
                r = tenant.request(method, path, json_body=params)
            assert r.status_code == 403 and r.json["_msg"] == "NOT_AUTHORIZED", (how, method, r.text)
            assert snapshot(factory, spool) == before


# -- a tenant and the lists of other domains ---------------------------------------------------

@pytest.mark.parametrize("backend", ["mock"])
def test_a_tenant_reaches_no_other_domains_list_by_any_route(ml_app, settings, tenant, mlapi, factory, spool):  # noqa: F811,E501
    assert mlapi.post("/api/ml/sales@b.test", {"subscribers": "s@x.test", "require_confirm": "no"}).status_code == 201
    assert mlapi.post("/api/maillist/old@b.test").status_code == 201
    assert tenant.post("/api/ml/mine@a.test").status_code == 201
    before = snapshot(factory, spool)
    for method, path, params in [
            ("GET", "/api/ml/SALES@B.TEST", None), ("GET", "/api/ml/sales@b.test.", None),
            ("PUT", "/api/ml/Sales@B.test", {"name": "x"}),
            ("POST", "/api/ml/sales@b.test/change_email/taken@a.test", {}),
            ("POST", "/api/ml/mine@a.test/change_email/sales@b.test", {}),
            ("POST", "/api/ml/mine@a.test/change_email/new@B.TEST", {}),
            ("POST", "/api/maillist/sales@b.test/change_email/x@a.test", {}),
            ("DELETE", "/api/maillist/sales@b.test", None), ("PUT", "/api/maillist/sales@b.test", {"name": "x"}),
            ("GET", "/api/maillists/b.test", None), ("GET", "/api/ldif/maillist/sales@b.test", None),
            ("GET", "/api/ldif/ml/SALES@b.test", None), ("GET", "/api/ldif/domain/b.test", None)]:
        r = tenant.request(method, path, params)
        assert r.status_code == 403, (method, path, r.text)
        assert snapshot(factory, spool) == before, (method, path)


@pytest.mark.parametrize("backend", ["mock"])
def test_old_and_new_list_routes_do_not_reach_each_other(mlapi, tenant, factory, spool):  # noqa: F811
    assert tenant.post("/api/ml/sub@a.test", {"subscribers": "s@x.test", "require_confirm": "no"}).status_code == 201
    assert tenant.post("/api/maillist/old@a.test").status_code == 201
    before = snapshot(factory, spool)
    for method, path, params in [
            ("DELETE", "/api/maillist/sub@a.test", None), ("PUT", "/api/maillist/sub@a.test", {"name": "x"}),
            ("POST", "/api/maillist/sub@a.test/change_email/x@a.test", {}),
            ("DELETE", "/api/ml/old@a.test", None), ("PUT", "/api/ml/old@a.test", {"name": "x"}),
            ("POST", "/api/ml/old@a.test/change_email/x@a.test", {}),
            ("POST", "/api/ml/old@a.test/change_email/sub@a.test", {}),
            ("DELETE", "/api/alias/sub@a.test", None), ("DELETE", "/api/user/sub@a.test", None),
            ("GET", "/api/maillist/sub@a.test", None), ("GET", "/api/ml/old@a.test", None),
            ("GET", "/api/ldif/maillist/sub@a.test", None), ("GET", "/api/ldif/ml/old@a.test", None)]:
        r = tenant.request(method, path, params)
        assert r.status_code == 404 and r.json["_msg"] == "NO_SUCH_ACCOUNT", (method, path, r.text)
        assert snapshot(factory, spool) == before, (method, path)
    for method, path in [("POST", "/api/ml/old@a.test"), ("POST", "/api/maillist/sub@a.test"),
                         ("POST", "/api/alias/sub@a.test"), ("POST", "/api/maillist/old@a.test/change_email/sub@a.test"),
                         ("POST", "/api/ml/sub@a.test/change_email/old@a.test")]:
        r = tenant.request(method, path, {})
        assert r.status_code == 409 and r.json["_msg"] == "ALREADY_EXISTS", (method, path, r.text)
        assert snapshot(factory, spool) == before, (method, path)
    assert tenant.get("/api/maillists/a.test", {"email_only": "yes"}).json["_data"] == ["old@a.test"]
    assert tenant.get("/api/mls/a.test", {"email_only": "yes"}).json["_data"] == ["sub@a.test"]


# -- the mlmmjadmin backend: URLs and forms built from input -------------------------------------

def test_list_addresses_with_url_characters_reach_their_own_route(world, factory):
    root, tenant, fake = world
    for mail in ("a#b@a.test", "a&c@a.test", "q-#&x@a.test"):
        r = tenant.post(f"/api/ml/{mail.replace('#', '%23')}", {"require_confirm": "no"})
        assert r.status_code == 201, (mail, r.text)
        assert changes(fake)[-1] == ("POST", f"/api/{mail}")
        assert fake.spool.list_dir(mail).is_dir()
    assert sorted(p.name for p in (fake.spool.spool_dir / "a.test").iterdir()) == ["a#b", "a&c", "q-#&x"]


def test_addresses_mlmmjadmin_cannot_route_are_refused_with_nothing_left(world, factory):
    root, tenant, fake = world
    before = state(factory, fake)
    # Our validators take '?', '%' and "'" in a local part; mlmmjadmin's routes
    # do not (a '?' would end the path and send the rest as a query).
    for mail in ("a%3Fb@a.test", "a%25b@a.test", "it's@a.test"):
        r = tenant.post(f"/api/ml/{mail}", {})
        assert r.status_code == 400 and r.json["_msg"] == "INVALID_MAIL", (mail, r.text)
        assert state(factory, fake) == before, mail
    assert changes(fake) == []


def test_form_values_cannot_add_form_fields(world, factory):
    root, tenant, fake = world
    r = tenant.post("/api/ml/mine@a.test", {"name": "x&relay_host=evil.example&smtp_port=25",
                                            "subject_prefix": "[a]&close_list=yes", "require_confirm": "no"})
    assert r.status_code == 201, r.text
    sent = [x for x in fake.recorded() if x.method == "POST"][0].form
    assert sent["name"] == "x&relay_host=evil.example&smtp_port=25" and "relay_host" not in sent
    control = fake.spool.list_dir("mine@a.test") / "control"
    assert (control / "smtpport").read_text() == "10027\n" and not (control / "relayhost").exists()
    assert not (control / "closedlist").exists()


# -- the mlmmjadmin backend failing half-way --------------------------------------------------

def _refuse(method: str, path_end: str, msg: str = "disk full"):
    def fail(m: str, path: str) -> dict | None:
        return {"_success": False, "_msg": msg} if m == method and path.endswith(path_end) else None
    return fail


def test_create_whose_subscribers_fail_leaves_nothing(world, factory):
    root, tenant, fake = world
    (fake.spool.spool_dir / "a.test").mkdir()     # (mlmmjadmin leaves the domain's folder)
    before = state(factory, fake)
    fake.fail = _refuse("POST", "/subscribers")
    r = tenant.post("/api/ml/new@a.test", {"name": "N", "subscribers": "s@x.test", "require_confirm": "no"})
    assert r.status_code == 502 and r.json["_success"] is False, r.text
    assert state(factory, fake) == before
    assert changes(fake) == [("POST", "/api/new@a.test"), ("POST", "/api/new@a.test/subscribers"),
                             ("DELETE", "/api/new@a.test")]


def test_update_whose_subscribers_fail_puts_the_profile_back(world, factory):
    root, tenant, fake = world
    assert tenant.post("/api/ml/news@a.test", {"name": "Before", "subject_prefix": "[b]"}).status_code == 201
    before = state(factory, fake)
    fake.fail = _refuse("POST", "/subscribers")
    r = tenant.put("/api/ml/news@a.test", {"name": "After", "subject_prefix": "[a]", "close_list": "yes",
                                           "add_subscribers": "s@x.test", "require_confirm": "no"})
    assert r.status_code == 502, r.text
    assert state(factory, fake) == before


def test_delete_that_mlmmjadmin_refuses_changes_nothing(world, factory):
    root, tenant, fake = world
    assert tenant.post("/api/ml/news@a.test", {"subscribers": "s@x.test", "require_confirm": "no"}).status_code == 201
    before = state(factory, fake)
    fake.fail = _refuse("DELETE", "/news@a.test")
    r = tenant.delete("/api/ml/news@a.test")
    assert r.status_code == 502, r.text
    assert state(factory, fake) == before


@pytest.mark.parametrize("step", [("POST", "/moved@a.test"), ("POST", "/moved@a.test/subscribers"),
                                  ("DELETE", "/news@a.test")])
def test_change_email_failing_at_any_step_leaves_the_list_where_it_was(world, factory, step):
    root, tenant, fake = world
    assert tenant.post("/api/ml/news@a.test", {"name": "N", "subscribers": "s@x.test",
                                               "require_confirm": "no"}).status_code == 201
    before = state(factory, fake)
    fake.fail = _refuse(*step)
    r = tenant.post("/api/ml/news@a.test/change_email/moved@a.test")
    assert r.status_code == 502, r.text
    assert state(factory, fake) == before


@pytest.mark.parametrize("how", ["stopped", "garbage"])
def test_mlmmjadmin_away_or_talking_nonsense_is_503_never_500(world, factory, how):
    root, tenant, fake = world
    assert tenant.post("/api/ml/news@a.test").status_code == 201
    before = state(factory, fake)
    if how == "stopped":
        fake.stop()
    else:
        fake.garbage = True
    for method, path, params in [("POST", "/api/ml/new@a.test", {}), ("PUT", "/api/ml/news@a.test", {"name": "x"}),
                                 ("DELETE", "/api/ml/news@a.test", None), ("GET", "/api/ml/news@a.test", None),
                                 ("GET", "/api/mls/a.test", None),
                                 ("POST", "/api/ml/news@a.test/change_email/moved@a.test", {})]:
        r = tenant.request(method, path, params)
        if method == "GET" and r.status_code == 200:
            continue        # the entry without its profile is a fine answer too
        assert r.status_code == 503 and r.json["_msg"] == "MLMMJ_UNAVAILABLE", (method, path, r.text)
        assert state(factory, fake) == before, (method, path)


# -- the local spool failing --------------------------------------------------------------------

def _disk_full_for(monkeypatch, spool, names: set[str]):  # noqa: F811
    """Writes (through temporary files) of control files named in `names` fail
    with ENOSPC, as on a full disk (as root a read-only folder is no test)."""
    import errno
    import os
    from iredldap.mlmmj.spool import LocalSpool
    real = LocalSpool._write

    def write(self, path, content, tmp_dir):
        if path.name in names:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(self, path, content, tmp_dir)
    monkeypatch.setattr(LocalSpool, "_write", write)


@pytest.mark.parametrize("backend", ["mock"])
@pytest.mark.parametrize("failing, method, url, params", [
    ({"prefix"}, "PUT", "/api/ml/news@a.test", {"name": "M", "close_list": "yes", "subject_prefix": "[x]"}),
    ({"prefix"}, "POST", "/api/ml/new@a.test", {"subject_prefix": "[x]"}),
    ({"listaddress"}, "POST", "/api/ml/news@a.test/change_email/moved@a.test", {}),
    ({"customheaders"}, "POST", "/api/ml/news@a.test/change_email/moved@a.test", {}),
])
def test_a_full_disk_half_way_leaves_both_halves_as_they_were(monkeypatch, tenant, factory, spool,  # noqa: F811
                                                              failing, method, url, params):
    assert tenant.post("/api/ml/news@a.test", {"name": "N", "subscribers": "s@x.test", "custom_headers": "X-A: 1",
                                               "require_confirm": "no"}).status_code == 201
    before = snapshot(factory, spool)
    _disk_full_for(monkeypatch, spool, failing)
    r = tenant.request(method, url, params)
    assert r.status_code == 503 and r.json["_msg"] == "MLMMJ_UNAVAILABLE", r.text
    assert snapshot(factory, spool) == before


# -- input the URL decoder sees first --------------------------------------------------------

@pytest.mark.parametrize("backend", ["mock"])
@pytest.mark.parametrize("path", [
    "/api/ml/a%2Fb@a.test", "/api/ml/..%2F..%2Fetc@a.test", "/api/ml/%2E%2E@a.test", "/api/ml/a%00b@a.test",
    "/api/ml/a%5Cb@a.test", "/api/ml/.hidden@a.test", "/api/ml/x@a.test%2F..%2Fb.test", "/api/ml/x@..",
    "/api/ml/x@a.test/change_email/y%2F..@a.test", "/api/ml/x@a.test/change_email/..@a.test",
])
def test_escaping_the_spool_by_the_address(tenant, factory, spool, path):  # noqa: F811
    assert tenant.post("/api/ml/x@a.test").status_code == 201
    before = snapshot(factory, spool)
    outside = sorted(p.name for p in spool.spool_dir.parent.iterdir())
    for method in ("POST", "PUT", "DELETE"):
        r = tenant.request(method, path, {} if method != "DELETE" else None)
        assert 400 <= r.status_code < 500 and r.json["_success"] is False, (method, r.status_code, r.text)
        assert snapshot(factory, spool) == before, method
        assert sorted(p.name for p in spool.spool_dir.parent.iterdir()) == outside


def test_escaping_mlmmjadmins_routes_by_the_address(world, factory):
    root, tenant, fake = world
    assert tenant.post("/api/ml/x@a.test").status_code == 201
    before = state(factory, fake)
    fake.clear()
    for path in ("/api/ml/a%2Fsubscribers@a.test", "/api/ml/subscriber%2Fx@a.test", "/api/ml/a%3Fb=c@a.test",
                 "/api/ml/a%23b%2F..@a.test", "/api/ml/x@a.test%3Farchive=no"):
        for method in ("POST", "PUT", "DELETE"):
            r = tenant.request(method, path, {} if method != "DELETE" else None)
            assert 400 <= r.status_code < 500, (method, path, r.text)
            assert state(factory, fake) == before, (method, path)
    assert changes(fake) == []


# -- limits in parallel ------------------------------------------------------------------------

def _parallel(app, settings, calls, login) -> list[int]:
    """`calls` (method, path, params) started together, each with its own session (bounded waits)."""
    return run_in_parallel(app, settings, calls, login)


@pytest.mark.slapd
@pytest.mark.parametrize("backend", ["slapd"])
def test_parallel_creates_of_both_kinds_stop_at_the_domains_limit(ml_app, settings, mlapi, factory, spool):  # noqa: F811,E501
    assert mlapi.put("/api/domain/a.test", {"numberOfLists": "3"}).status_code == 200
    assert mlapi.post("/api/maillist/old@a.test").status_code == 201
    calls = [("POST", f"/api/ml/n{i}@a.test", {}) for i in range(3)] + \
            [("POST", f"/api/maillist/o{i}@a.test", {}) for i in range(2)] + \
            [("POST", "/api/ml/same@a.test", {}), ("POST", "/api/maillist/same@a.test", {})]
    statuses = _parallel(ml_app, settings, calls, ("root@admins.test", "R00t#secret"))
    assert set(statuses) <= {201, 403, 409}, statuses
    mls = mlapi.get("/api/mls/a.test", {"email_only": "yes"}).json["_data"]
    old = mlapi.get("/api/maillists/a.test", {"email_only": "yes"}).json["_data"]
    assert len(mls) + len(old) == 3 and statuses.count(201) == 2, (statuses, mls, old)
    assert sorted(set(mls) & set(old)) == []
    counter = factory.entry(f"domainName=a.test,{DOMAINS}").first("domainCurrentListNumber")
    assert counter in (None, "3")
    # The spool holds exactly the subscribable lists that have an entry.
    on_disk = sorted(f"{p.name}@a.test" for p in (spool.spool_dir / "a.test").iterdir()) \
        if (spool.spool_dir / "a.test").exists() else []
    assert on_disk == sorted(mls)


# -- tokens limited to a domain, or to reading ----------------------------------------------------

@pytest.mark.parametrize("backend", ["mock"])
def test_a_token_limited_to_a_domain_or_to_reading_reaches_no_further(ml_app, settings, mlapi, factory, spool):  # noqa: F811,E501
    from .support import BearerClient
    assert mlapi.post("/api/ml/sales@b.test", {"subscribers": "s@x.test", "require_confirm": "no"}).status_code == 201
    assert mlapi.post("/api/ml/mine@a.test").status_code == 201
    limited = mlapi.post("/api/tokens", {"name": "a only", "domains": "a.test"}).json["_data"]["token"]
    reader = mlapi.post("/api/tokens", {"name": "reader", "read_only": "yes"}).json["_data"]["token"]
    a_only, read_only = BearerClient(ml_app, settings, limited), BearerClient(ml_app, settings, reader)
    before = snapshot(factory, spool)
    for method, path, params in [
            ("GET", "/api/ml/sales@b.test", None), ("GET", "/api/mls/b.test", None),
            ("POST", "/api/ml/new@b.test", {}), ("PUT", "/api/ml/sales@b.test", {"add_subscribers": "me@a.test",
                                                                                  "require_confirm": "no"}),
            ("DELETE", "/api/ml/sales@b.test", None), ("GET", "/api/ldif/ml/sales@b.test", None),
            ("POST", "/api/ml/sales@b.test/change_email/sales@a.test", {}),
            ("POST", "/api/ml/mine@a.test/change_email/mine@b.test", {})]:
        r = a_only.request(method, path, params)
        assert r.status_code == 403, (method, path, r.text)
        assert snapshot(factory, spool) == before, (method, path)
    for method, path, params in [("POST", "/api/ml/new@a.test", {}), ("PUT", "/api/ml/mine@a.test", {"name": "x"}),
                                 ("DELETE", "/api/ml/mine@a.test", None),
                                 ("POST", "/api/ml/mine@a.test/change_email/moved@a.test", {})]:
        r = read_only.request(method, path, params)
        assert r.status_code == 403, (method, path, r.text)
        assert snapshot(factory, spool) == before, (method, path)
    assert a_only.get("/api/ml/mine@a.test").status_code == 200


def test_a_domain_delete_failing_at_its_second_list_leaves_the_domain_whole(world, factory, iredadmin):
    """Deleting a domain archives its lists first; the second archive is
    refused: the first list was gone from mlmmj while its entry, the domain
    and the recorded deletion of its mailboxes (which a cron job acts on)
    stayed.  Now the first list is made again and the rows taken back."""
    from .test_domains import _deleted_rows
    root, tenant, fake = world
    factory.user("u1@b.test")
    for m in ("l1", "l2", "l3"):
        assert root.post(f"/api/ml/{m}@b.test", {"name": m.upper(), "subject_prefix": f"[{m}]",
                                                 "subscribers": f"s{m}@x.test,t@x.test", "subscription": "digest",
                                                 "require_confirm": "no"}).status_code == 201
    ldap_before, spool_before = state(factory, fake)
    deletes: list[str] = []

    def second(method: str, path: str) -> dict | None:
        if method == "DELETE" and "?" not in path:
            deletes.append(path)
            if len(deletes) == 2:
                return {"_success": False, "_msg": "disk full"}
        return None
    fake.fail = second
    r = root.delete("/api/domain/b.test/keep_mailbox_days/1")
    assert r.status_code == 502 and r.json["_msg"] == "MLMMJ_ERROR", r.text
    ldap_after, spool_after = state(factory, fake)
    assert ldap_after == ldap_before
    # The list archived before the refusal is back (its posts stay in the archive).
    assert {k: v for k, v in spool_after.items() if not k.startswith("archive/")} == spool_before
    assert _deleted_rows(iredadmin) == []


@pytest.mark.parametrize("backend", ["mock"])
def test_a_domain_delete_the_database_refuses_brings_the_lists_back(monkeypatch, mlapi, factory, spool, iredadmin):  # noqa: F811,E501
    from iredldap.errors import DatabaseUnavailable

    from .test_domains import _deleted_rows
    factory.user("u1@b.test")
    assert mlapi.post("/api/ml/l1@b.test", {"name": "L1", "subscribers": "s@x.test",
                                            "require_confirm": "no"}).status_code == 201
    ldap_before, spool_before = snapshot(factory, spool)

    def down(*args, **kwargs):
        raise DatabaseUnavailable("the iredadmin database is down")
    monkeypatch.setattr(iredadmin, "delete_used_quota", down)
    r = mlapi.delete("/api/domain/b.test/keep_mailbox_days/1")
    assert r.status_code == 503, r.text
    ldap_after, spool_after = snapshot(factory, spool)
    assert ldap_after == ldap_before
    assert {k: v for k, v in spool_after.items() if not k.startswith("archive/")} == spool_before
    assert _deleted_rows(iredadmin) == []


# -- addresses a shell, a glob or mlmmjadmin would trip over -------------------------------------

@pytest.mark.parametrize("backend", ["mock"])
@pytest.mark.parametrize("local", ["*", "a?b", "`id`", "$x", "{a}", "a|b", "it's", "a%b", "!x", "^x", "~x"])
def test_a_list_address_must_fit_mlmmjadmins_pattern_with_either_backend(tenant, factory, spool, local):  # noqa: F811,E501
    """Our address rule (iRedAdmin's) takes these in a local part; mlmmjadmin's
    routes do not, so iRedMail could never manage such a list, and its
    directory `<spool>/a.test/*` is a glob to any script using it unquoted.
    The local spool took them (201); now both backends refuse them, before
    anything is written."""
    assert tenant.post("/api/ml/mine@a.test").status_code == 201
    before = snapshot(factory, spool)
    quoted = local.replace("%", "%25").replace("?", "%3F").replace("`", "%60")
    r = tenant.post(f"/api/ml/{quoted}@a.test")
    assert r.status_code == 400 and r.json["_msg"] == "INVALID_MAIL", r.text
    r = tenant.post(f"/api/ml/mine@a.test/change_email/{quoted}@a.test")
    assert r.status_code == 400 and r.json["_msg"] == "INVALID_MAIL", r.text
    assert snapshot(factory, spool) == before


# -- a careless client: every parameter, every JSON shape ------------------------------------------

@pytest.mark.parametrize("backend", ["mock"])
@pytest.mark.parametrize("method", ["post", "put"])   # two items: xdist may run them side by side
def test_no_json_shape_of_any_parameter_is_a_500(mlapi, factory, spool, method):  # noqa: F811
    assert mlapi.post("/api/ml/mine@a.test").status_code == 201
    ops = mlapi.get("/api/openapi.json").json
    for path in ("/api/ml/{mail}",):
        op = ops["paths"][path][method]
        body = op.get("requestBody", {}).get("content", {})
        schema = next(iter(body.values()))["schema"] if body else {"properties": {}}
        names = sorted(schema.get("properties", {}))
        assert len(names) > 45 and "subject_prefix" in names and "footer_html" in names, names
        assert ("add_subscribers" if method == "put" else "subscribers") in names
        # What a refusal must leave as it found; taken anew only after a
        # request that was accepted (and so may have changed things).
        before = snapshot(factory, spool)
        for name in names:
            for value in (None, [], ["a", "b"], {}, 1.5, -1, True, "x" * 30000, "\ud800", "a\u2028b", "é" * 300):
                target = "/api/ml/new@a.test" if method == "post" else "/api/ml/mine@a.test"
                r = mlapi.request(method.upper(), target, json_body={name: value, "require_confirm": False})
                assert r.status_code < 500, (method, name, value, r.text)
                if r.status_code >= 400:
                    assert snapshot(factory, spool) == before, (method, name, value)
                    continue
                if method == "post":
                    assert mlapi.delete("/api/ml/new@a.test", {"keep_archive": "no"}).status_code == 200
                before = snapshot(factory, spool)


@pytest.mark.parametrize("backend", ["mock"])
def test_a_list_cannot_take_an_address_another_account_holds_as_a_shadow(tenant, mlapi, factory, spool):  # noqa: F811
    factory.user("bob@a.test", shadowAddress=["sales@alias-a.test", "held@a.test"])
    factory.user("carl@a.test", shadowAddress=["moved@alias-a.test"])
    assert tenant.post("/api/ml/free@a.test").status_code == 201
    before = snapshot(factory, spool)
    # sales@a.test's own shadow in the alias domain, held@a.test itself, moved@a.test's shadow.
    for path in ("/api/ml/sales@a.test", "/api/ml/held@a.test", "/api/ml/free@a.test/change_email/moved@a.test"):
        r = tenant.post(path)
        assert r.status_code == 409 and r.json["_msg"] == "ALREADY_EXISTS", (path, r.text)
        assert snapshot(factory, spool) == before, path


# -- the token stays with mlmmjadmin ----------------------------------------------------------------

def test_a_redirect_does_not_take_the_token_elsewhere():
    """urllib follows redirects and sends the token header along: whatever
    answers on mlmmjadmin's port could send it (and the form) to any URL."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from iredldap.errors import ListSpoolError, ListSpoolUnavailable
    from iredldap.mlmmj.mlmmjadmin import MlmmjadminClient

    seen: list[dict] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the base class's name
            seen.append(dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"_success": true, "_data": {}}')
        do_POST = do_PUT = do_DELETE = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    class Redirecting(Elsewhere):
        def do_GET(self):  # noqa: N802
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{other.server_address[1]}/steal")
            self.send_header("Content-Length", "0")
            self.end_headers()
        do_POST = do_PUT = do_DELETE = do_GET  # noqa: N815

    other = HTTPServer(("127.0.0.1", 0), Elsewhere)
    first = HTTPServer(("127.0.0.1", 0), Redirecting)
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
               for s in (other, first)]
    for t in threads:
        t.start()
    try:
        client = MlmmjadminClient(f"http://127.0.0.1:{first.server_address[1]}/api", "secret-token", timeout=5)
        for call in (lambda: client.profile("x@a.test"), lambda: client.create("x@a.test", {"name": "n"}),
                     lambda: client.delete("x@a.test", archive=False)):
            with pytest.raises((ListSpoolError, ListSpoolUnavailable)):
                call()
        assert seen == []
    finally:
        for s in (other, first):
            s.shutdown()
            s.server_close()
        for t in threads:
            t.join(5)


@pytest.mark.slapd
@pytest.mark.parametrize("backend", ["slapd"])
def test_parallel_creates_of_both_kinds_stop_at_the_admins_max_lists(ml_app, settings, mlapi, factory, spool):  # noqa: F811,E501
    factory.normal_admin("boss@admins.test", "B0ss#secret", domains=["a.test"], settings=["create_max_lists:2"])
    calls = [("POST", f"/api/ml/n{i}@a.test", {}) for i in range(3)] + \
            [("POST", f"/api/maillist/o{i}@a.test", {}) for i in range(2)]
    statuses = _parallel(ml_app, settings, calls, ("boss@admins.test", "B0ss#secret"))
    assert set(statuses) <= {201, 403} and statuses.count(201) == 2, statuses
    mls = mlapi.get("/api/mls/a.test", {"email_only": "yes"}).json["_data"]
    old = mlapi.get("/api/maillists/a.test", {"email_only": "yes"}).json["_data"]
    assert len(mls) + len(old) == 2, (mls, old)
    on_disk = sorted(f"{p.name}@a.test" for p in (spool.spool_dir / "a.test").iterdir()) \
        if (spool.spool_dir / "a.test").exists() else []
    assert on_disk == sorted(mls)


def test_an_entry_mlmmjadmin_cannot_route_is_a_list_without_directory_not_a_400(world, factory):
    """An mlmmj entry whose address mlmmjadmin's routes do not match (an
    LDIF import, a list made by the local backend before the address rule):
    it made the whole domain's listing a 400, and the entry could not be
    shown or deleted.  Now it is a list mlmmjadmin does not have."""
    root, tenant, fake = world
    assert tenant.post("/api/ml/fine@a.test").status_code == 201
    dn = f"mail=it's@a.test,ou=Groups,domainName=a.test,{DOMAINS}"
    factory.dir.add(dn, {"objectClass": ["mailList"], "mail": ["it's@a.test"], "accountStatus": ["active"],
                         "enabledService": ["mail", "deliver", "mlmmj"], "mtaTransport": ["mlmmj:a.test/it's"]})
    fake.clear()
    r = tenant.get("/api/mls/a.test")
    assert r.status_code == 200, r.text
    shown = {item["mail"][0]: item for item in r.json["_data"]}
    assert sorted(shown) == ["fine@a.test", "it's@a.test"]
    assert "close_list" in shown["fine@a.test"] and "close_list" not in shown["it's@a.test"]
    r = tenant.get("/api/ml/it's@a.test", {"with_subscribers": "yes"})
    assert r.status_code == 200 and r.json["_data"]["subscribers"] == [], r.text
    r = tenant.put("/api/ml/it's@a.test", {"name": "x"})
    assert r.status_code == 404 and r.json["_msg"] == "NO_SUCH_ACCOUNT", r.text
    assert factory.entry(dn) is not None and factory.entry(dn).get("cn") == []
    r = tenant.delete("/api/ml/it's@a.test")
    assert r.status_code == 200, r.text
    assert factory.entry(dn) is None
    assert [x.path for x in fake.recorded() if "it" in x.path] == []
