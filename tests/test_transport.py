"""Routing changes reach existing mailboxes (issue #12, item 4).

Postfix asks `transport_maps_user` first and `transport_maps_domain` only
when the user has no mtaTransport.  New users get none (as iRedAdmin makes
them), and copies of the domain's transport held by existing users (written
by older versions or other tools) go when the domain's transport or backup-MX
setting changes.  Checked with the real filters of iRedMail's Postfix maps.
"""

from __future__ import annotations

import pytest

from .consumers import postfix

PW = "Secr3t#pass"


def effective_transport(directory, mail: str) -> str | None:
    """What Postfix routes `mail` by: the user's map, else the domain's."""
    found = postfix(directory, "transport_maps_user", mail)
    if found:
        return found[0]
    found = postfix(directory, "transport_maps_domain", mail.rpartition("@")[2])
    return found[0] if found else None


@pytest.fixture
def users(api, factory, directory):
    assert api.post("/api/domain/t.test", {"name": "T"}).status_code == 201
    assert api.post("/api/user/new@t.test", {"password": PW}).status_code == 201
    # As an older version (or a bulk tool) wrote them: a copy of the domain's transport ...
    factory.user("copied@t.test", mtaTransport=["dovecot"])
    # ... and a user routed elsewhere on purpose.
    factory.user("own@t.test", mtaTransport=["smtp:[archive.test]:25"])
    return ("new@t.test", "copied@t.test", "own@t.test")


def test_new_user_follows_the_domain(api, factory, directory, users):
    entry = factory.entry(factory.tree.user("new@t.test"))
    assert entry.get("mtaTransport") == []
    assert effective_transport(directory, "new@t.test") == "dovecot"


def test_domain_transport_change_reaches_existing_users(api, factory, directory, users):
    assert [effective_transport(directory, m) for m in users] == ["dovecot", "dovecot", "smtp:[archive.test]:25"]
    r = api.put("/api/domain/t.test", {"transport": "lmtp:unix:private/dovecot-lmtp"})
    assert r.status_code == 200, r.text
    assert [effective_transport(directory, m) for m in users] == \
        ["lmtp:unix:private/dovecot-lmtp", "lmtp:unix:private/dovecot-lmtp", "smtp:[archive.test]:25"]
    assert factory.entry(factory.tree.user("copied@t.test")).get("mtaTransport") == []
    assert factory.entry(factory.tree.user("own@t.test")).get("mtaTransport") == ["smtp:[archive.test]:25"]


def test_backup_mx_change_reaches_existing_users(api, factory, directory, users):
    r = api.put("/api/domain/t.test", {"is_backupmx": "yes", "primarymx": "mx1.t.test"})
    assert r.status_code == 200, r.text
    assert effective_transport(directory, "new@t.test") == "relay:[mx1.t.test]:25"
    assert effective_transport(directory, "copied@t.test") == "relay:[mx1.t.test]:25"
    assert postfix(directory, "relay_domains", "t.test") == ["t.test"]
    # And back: the users follow the domain's transport again.
    r = api.put("/api/domain/t.test", {"is_backupmx": "no"})
    assert r.status_code == 200, r.text
    assert effective_transport(directory, "copied@t.test") == "dovecot"
    assert effective_transport(directory, "own@t.test") == "smtp:[archive.test]:25"


def test_other_domains_are_not_touched(api, factory, directory, users):
    assert api.post("/api/domain/u.test").status_code == 201
    factory.user("copy@u.test", mtaTransport=["dovecot"])
    assert api.put("/api/domain/t.test", {"transport": "lmtp:x"}).status_code == 200
    assert factory.entry(factory.tree.user("copy@u.test")).get("mtaTransport") == ["dovecot"]


def test_user_moved_to_another_domain_follows_it(api, factory, directory, users):
    assert api.post("/api/domain/v.test", {"transport": "lmtp:v"}).status_code == 201
    r = api.post("/api/user/copied@t.test/change_email/copied@v.test")
    assert r.status_code == 200, r.text
    assert effective_transport(directory, "copied@v.test") == "lmtp:v"
