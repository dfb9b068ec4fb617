"""GET /api/ldif/...: what is exported, to whom, and that it streams.

Runs on MOCK_SYNC and on slapd (the `directory` fixture).  `build_world` is
also used by tests/test_ldif_import.py.
"""

from __future__ import annotations

import io
import re

import falcon.testing
import ldap3
import pytest

from iredldap.model import ldif
from iredldap.backends import Backends
from iredldap.web.app import create_app
from iredldap.directory import export
from iredldap.directory.connection import LEVEL, SUBTREE
from iredldap.directory import connection as connection_module
from iredldap.errors import DirectoryUnavailable

from .conftest import make_settings
from .consumers import dovecot_user, postfix
from .support import ApiClient

PW = "Secr3t#pass"
DOMAIN = "ldif.test"
PHOTO = bytes(range(256)) * 4  # binary, and long enough to fold many times

# (map, key) pairs whose answers must survive an export and an import.
LOOKUPS = [
    ("virtual_mailbox_domains", DOMAIN), ("virtual_mailbox_domains", "alias-ldif.test"),
    ("transport_maps_domain", DOMAIN),
    ("virtual_mailbox_maps", "jurgen@ldif.test"), ("virtual_mailbox_maps", "jurgen@alias-ldif.test"),
    ("virtual_mailbox_maps", "anna@ldif.test"),
    ("virtual_alias_maps", "team@ldif.test"), ("virtual_alias_maps", "anna@ldif.test"),
    ("virtual_alias_maps", "j@ldif.test"),
    ("virtual_group_maps", "staff@ldif.test"), ("catchall_maps", "@ldif.test"),
    ("sender_login_maps", "jurgen@ldif.test"), ("sender_login_maps", "j@ldif.test"),
]


def build_world(api, directory, factory) -> None:
    """A domain with everything an export has to carry, made through the API."""
    r = api.post(f"/api/domain/{DOMAIN}", {"name": "LDIF Test", "catchall": "catch@ext.test",
                                           "aliasDomains": "alias-ldif.test"})
    assert r.status_code == 201, r.text
    for mail, name in (("jurgen@ldif.test", "Jürgen Müller"), ("anna@ldif.test", "Anna Ødegård")):
        assert api.post(f"/api/user/{mail}", {"password": PW, "name": name}).status_code == 201
    assert api.put("/api/user/jurgen@ldif.test", {"addAlias": "j@ldif.test"}).status_code == 200
    assert api.put("/api/user/anna@ldif.test", {"forwarding": "x@ext.test"}).status_code == 200
    assert api.post("/api/alias/team@ldif.test", {"members": "jurgen@ldif.test,x@ext.test"}).status_code == 201
    r = api.post("/api/maillist/staff@ldif.test", {"name": "Stäff", "members":
                                                   "jurgen@ldif.test,anna@ldif.test,out@ext.test"})
    assert r.status_code == 201, r.text
    assert api.post("/api/admin/boss@admins.test", {"password": PW}).status_code == 201
    assert api.put(f"/api/domain/admins/{DOMAIN}", {"addAdmin": "boss@admins.test"}).status_code == 200
    # A binary value and one that needs base64 for its leading space.
    directory.modify(factory.tree.user("anna@ldif.test"), {"jpegPhoto": [("MODIFY_REPLACE", [PHOTO])],
                                                            "title": [("MODIFY_REPLACE", [" chief "])]})


def lookups(directory) -> dict:
    found = {f"{table} {key}": sorted(postfix(directory, table, key)) for table, key in LOOKUPS}
    for login in ("jurgen@ldif.test", "anna@ldif.test", "j@ldif.test"):
        found[f"dovecot {login}"] = dovecot_user(directory, login)
    return found


def records(text: bytes) -> list[ldif.Record]:
    reader = ldif.Reader(io.BytesIO(text))
    found = list(reader)
    assert reader.problems == []
    return found


def dns(text: bytes) -> list[str]:
    return [r.dn.lower() for r in records(text)]


@pytest.fixture
def world(api, directory, factory):
    build_world(api, directory, factory)


def client_for(directory, iredadmin, tmp_path, login, **settings) -> ApiClient:
    """A client of an app with other settings on the same directory."""
    s = make_settings(tmp_path, **settings)
    client = ApiClient(create_app(s, Backends(directory=directory, iredadmin=iredadmin)), s)
    client.login(*login)
    return client


# -- what is exported ---------------------------------------------------------------------

def test_domain_export_is_ldif_parents_first_without_operational_attributes(api, world, factory):
    r = api.get(f"/api/ldif/domain/{DOMAIN}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/ldif"
    assert r.headers["content-disposition"] == 'attachment; filename="domain-ldif.test.ldif"'
    text = r.content
    assert text.startswith(b"version: 1\n# iredldap LDIF export: domain ldif.test\n")
    assert text.endswith(b"# end of iredldap export: 11 entries\n")
    assert max(len(line) for line in text.splitlines()) <= 76
    found = records(text)
    got = [rec.dn.lower() for rec in found]
    tree = factory.tree
    expected = [tree.domain(DOMAIN)] + [tree.container(DOMAIN, ou) for ou in ("Users", "Groups", "Aliases",
                                                                               "Externals")]
    assert got[0] == expected[0].lower()
    assert sorted(got[1:5]) == sorted(dn.lower() for dn in expected[1:])  # in the server's order
    assert sorted(got[5:]) == sorted(dn.lower() for dn in (
        tree.catchall(DOMAIN), tree.user("jurgen@ldif.test"), tree.user("anna@ldif.test"),
        tree.alias("team@ldif.test"), tree.maillist("staff@ldif.test"), tree.externals("staff@ldif.test")))
    # Parents first: every entry's parent is the export's root or came before it.
    for i, dn in enumerate(got[1:], 1):
        assert dn.split(",", 1)[1] in got[:i]
    # Everything in the directory is there, value for value, and nothing else.
    for rec in found:
        entry = factory.entry(rec.dn)
        want = {k.lower(): [v.encode() for v in vs] for k, vs in entry.attrs.items() if k.lower() != "jpegphoto"}
        have = {k.lower(): vs for k, vs in rec.attrs().items() if k.lower() != "jpegphoto"}
        assert have == want, rec.dn
        assert rec.values[0].name == "objectClass"
    anna = next(rec for rec in found if rec.dn.startswith("mail=anna@"))
    assert anna.attrs()["jpegPhoto"] == [PHOTO]
    assert anna.attrs()["title"] == [b" chief "]
    assert anna.attrs()["cn"] == ["Anna Ødegård".encode()]
    assert b"cn:: " + __import__("base64").b64encode("Anna Ødegård".encode()) in text
    for marker in (b"entryUUID", b"entryCSN", b"createTimestamp", b"hasSubordinates", b"structuralObjectClass"):
        assert marker.lower() not in text.lower()


@pytest.mark.parametrize("kind, name, expected", [
    ("catchall", DOMAIN, lambda t: [t.catchall(DOMAIN)]),
    ("user", "jurgen@ldif.test", lambda t: [t.user("jurgen@ldif.test")]),
    ("alias", "team@ldif.test", lambda t: [t.alias("team@ldif.test")]),
    ("maillist", "staff@ldif.test", lambda t: [t.maillist("staff@ldif.test"), t.externals("staff@ldif.test")]),
    ("admin", "boss@admins.test", lambda t: [t.admin("boss@admins.test")]),
])
def test_each_kind_exports_its_entries(api, world, factory, kind, name, expected):
    r = api.get(f"/api/ldif/{kind}/{name}")
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == f'attachment; filename="{kind}-{name}.ldif"'
    assert dns(r.content) == [dn.lower() for dn in expected(factory.tree)]


def test_a_mail_user_admin_is_exported_as_its_user_entry(api, world, factory):
    assert api.put(f"/api/domain/admins/{DOMAIN}", {"addAdmin": "anna@ldif.test"}).status_code == 200
    r = api.get("/api/ldif/admin/anna@ldif.test")
    assert dns(r.content) == [factory.tree.user("anna@ldif.test").lower()]
    assert api.get("/api/ldif/admin/jurgen@ldif.test").status_code == 404


# -- who gets what ---------------------------------------------------------------------

def test_password_hashes_follow_the_setting(api, world, factory, directory, iredadmin, tmp_path):
    factory.normal_admin("own@admins.test", "0wn#Admin1", domains=[DOMAIN])
    normal = ("own@admins.test", "0wn#Admin1")
    glob = ("root@admins.test", "R00t#secret")

    def hashes(client) -> int:
        r = client.get(f"/api/ldif/domain/{DOMAIN}")
        assert r.status_code == 200, r.text
        return sum(1 for rec in records(r.content) if "userPassword" in rec.attrs())

    assert hashes(api) == 2  # the default, global-admins: a global admin's backup can be restored
    assert b"# password hashes: included" in api.get(f"/api/ldif/domain/{DOMAIN}").content
    assert hashes(client_for(directory, iredadmin, tmp_path, normal)) == 0
    assert hashes(client_for(directory, iredadmin, tmp_path, normal, ldif_export_passwords="always")) == 2
    never = client_for(directory, iredadmin, tmp_path, glob, ldif_export_passwords="never")
    assert hashes(never) == 0
    assert b"# password hashes: left out" in never.get(f"/api/ldif/domain/{DOMAIN}").content


def test_refusals_keep_the_json_envelope(api, world, factory, app, settings):
    factory.domain("other.test")
    factory.normal_admin("own@admins.test", "0wn#Admin1", domains=[DOMAIN])
    normal = ApiClient(app, settings)
    normal.login("own@admins.test", "0wn#Admin1")
    cases = [
        (normal, "/api/ldif/domain/other.test", 403, "NOT_AUTHORIZED"),
        (normal, "/api/ldif/domain/missing.test", 403, "NOT_AUTHORIZED"),
        (normal, "/api/ldif/admin/boss@admins.test", 403, "NOT_AUTHORIZED"),
        (normal, "/api/ldif/user/x@other.test", 403, "NOT_AUTHORIZED"),
        (api, "/api/ldif/domain/missing.test", 404, "NO_SUCH_DOMAIN"),
        (api, "/api/ldif/catchall/other.test", 404, "NO_SUCH_ACCOUNT"),
        (api, "/api/ldif/user/nobody@ldif.test", 404, "NO_SUCH_ACCOUNT"),
        (api, "/api/ldif/alias/staff@ldif.test", 404, "NO_SUCH_ACCOUNT"),  # a list is not an alias
        (api, "/api/ldif/maillist/not-an-address", 400, "INVALID_MAIL"),
        (api, "/api/ldif/domain/bad_domain!", 400, "INVALID_DOMAIN_NAME"),
        (api, f"/api/ldif/domain/{DOMAIN}?bogus=1", 400, "UNKNOWN_PARAMETERS"),
        (ApiClient(app, settings), f"/api/ldif/domain/{DOMAIN}", 401, "LOGIN_REQUIRED"),
    ]
    for client, path, status, code in cases:
        path, _, query = path.partition("?")
        r = client.get(path, dict([query.split("=")]) if query else None)
        assert (r.status_code, r.headers["content-type"]) == (status, "application/json"), (path, r.text)
        assert r.json["_success"] is False and r.json["_msg"] == code, (path, r.json)
    # The normal admin's own domain, though, and its accounts.
    assert normal.get(f"/api/ldif/domain/{DOMAIN}").status_code == 200
    assert normal.get("/api/ldif/user/jurgen@ldif.test").status_code == 200


# -- streaming ---------------------------------------------------------------------------

class FailingAfter:
    """Wraps Directory.paged_search: the directory goes away after handing out `n` entries."""

    def __init__(self, directory, n: int):
        self.original = directory.paged_search
        self.left = n

    def __call__(self, base, *args, scope=None, **kwargs):
        for entry in self.original(base, *args, scope=scope, **kwargs):
            if scope == LEVEL and entry.dn.lower() == base.lower():
                continue  # MOCK_SYNC's extra
            if self.left == 0:
                raise DirectoryUnavailable("the directory is unreachable: LDAPSocketReceiveError")
            self.left -= 1
            yield entry


class ServerReads:
    """Counts what the connections receive from the server: searches and
    entries (a page each, when paged).  Counted where every search of the
    directory is sent, on both backends (iredldap.directory.decoding.search)."""

    def __init__(self, monkeypatch):
        self.searches = 0
        self.entries = 0
        original = connection_module.send_search

        def search(conn, *args, **kwargs):
            result = original(conn, *args, **kwargs)
            self.searches += 1
            self.entries += sum(1 for r in conn.response or [] if r.get("type") == "searchResEntry")
            return result
        monkeypatch.setattr(connection_module, "send_search", search)


def n_entries(text: bytes) -> int:
    return len(re.findall(rb"(?m)^dn::? ", text))


def wsgi_get(app, client: ApiClient, path: str):
    """Call the WSGI app directly, to consume the body chunk by chunk."""
    status = {}
    environ = falcon.testing.create_environ(
        path=path, headers={"Cookie": f"{client.settings.session_cookie_name}={client.cookie}"})
    body = app(environ, lambda s, headers, exc_info=None: status.update(status=s, headers=dict(headers)))
    return status, iter(body)


def test_the_first_bytes_leave_before_the_last_entry_is_read(api, world, app, directory, factory, backend,
                                                              monkeypatch):
    for i in range(12):
        assert api.post(f"/api/user/u{i}@ldif.test", {"password": PW}).status_code == 201
    total = len(directory.search(factory.tree.domain(DOMAIN), "(objectClass=*)", scope=SUBTREE))
    assert total == 23
    monkeypatch.setattr(export, "PAGE_SIZE", 3)
    monkeypatch.setattr(export, "CHUNK_SIZE", 1)
    reads = ServerReads(monkeypatch)
    status, body = wsgi_get(app, api, f"/api/ldif/domain/{DOMAIN}")
    assert status["status"].startswith("200")
    searches, fetched = reads.searches, reads.entries  # login and existence checks
    first = next(body)
    assert first.startswith(b"version: 1\n") and n_entries(first) == 1
    assert (reads.searches - searches, reads.entries - fetched) == (1, 1)  # the domain entry alone
    # Then never more than a page ahead of what has been sent (MOCK_SYNC adds
    # the base entry to each one-level search, which the export skips).
    sent = 1
    for chunk in body:
        sent += n_entries(chunk)
        slack = 3 + (reads.searches - searches if backend == "mock" else 0)
        assert reads.entries - fetched - sent <= slack
    assert sent == total
    assert reads.searches - searches >= 1 + 5 + 5  # base, one level each, ou=Users page by page


def test_a_failure_mid_stream_leaves_a_file_import_refuses(api, world, app, directory, monkeypatch):
    monkeypatch.setattr(export, "CHUNK_SIZE", 1)
    monkeypatch.setattr(directory, "paged_search", FailingAfter(directory, 4))
    status, body = wsgi_get(app, api, f"/api/ldif/domain/{DOMAIN}")
    received = []
    with pytest.raises(DirectoryUnavailable):  # a WSGI server then cuts the connection
        for chunk in body:
            received.append(chunk)
    text = b"".join(received)
    assert status["status"].startswith("200") and n_entries(text) == 4
    assert b"# ERROR: the export stopped after 4 entries (DIRECTORY_UNAVAILABLE" in text
    reader = ldif.Reader(io.BytesIO(text))
    assert len(list(reader)) == 4
    assert [p.message for p in reader.problems] == [
        "the end marker of the export is missing: the file is incomplete"]


def test_the_password_setting_is_checked_at_start_up(tmp_path):
    from iredldap.errors import ConfigError
    with pytest.raises(ConfigError, match="LDIF_EXPORT_PASSWORDS: expected one of global-admins, always, never"):
        make_settings(tmp_path, ldif_export_passwords="sometimes")
    assert make_settings(tmp_path).ldif_export_passwords == "global-admins"
