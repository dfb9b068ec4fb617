"""What one request costs the directory: the request context (who asks, what
it manages) and the entries a responder needs are read once.

Counted on the `Directory` the app was built with, from the moment the
request is sent until its answer: every search (a read of one entry is a
base search), paged search, add, modify and delete.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager

import pytest

from iredldap.model import passwords

PW = "Secr3t#pass"
OPERATIONS = ("search", "paged_search", "add", "modify", "delete")


@contextmanager
def counted(directory, monkeypatch):
    """Count the LDAP operations sent through `directory` inside the block."""
    counts: Counter = Counter()
    with monkeypatch.context() as patch:
        for name in OPERATIONS:
            original = getattr(directory, name)

            def wrapper(*args, _name=name, _original=original, **kwargs):
                counts[_name] += 1
                return _original(*args, **kwargs)
            patch.setattr(directory, name, wrapper)
        yield counts


def cost(counts: Counter) -> dict[str, int]:
    return {name: counts[name] for name in OPERATIONS if counts[name]}


@pytest.fixture
def world(factory):
    factory.domain("a.test", defaultQuota=100)
    factory.user("john@a.test")
    return factory


@pytest.fixture
def normal_admin(world, client):
    # Limits on what it may hand out: the quota change is checked against them.
    world.normal_admin("helper@admins.test", "H3lper#secret", domains=["a.test"],
                       settings=["create_max_quota:10000", "create_max_users:10"])
    client.login("helper@admins.test", "H3lper#secret")
    return client


def test_global_admin_renaming_a_user_costs_one_search_and_one_modify(api, world, directory, monkeypatch):
    with counted(directory, monkeypatch) as counts:
        result = api.put("/api/user/john@a.test", {"name": "John Doe"})
    assert result.status_code == 200, result.text
    assert world.entry(world.tree.user("john@a.test")).get("cn") == ["John Doe"]
    assert cost(counts) == {"search": 1, "modify": 1}


def test_normal_admin_renaming_a_user_costs_two_searches_and_one_modify(normal_admin, world, directory,
                                                                        monkeypatch):
    with counted(directory, monkeypatch) as counts:
        result = normal_admin.put("/api/user/john@a.test", {"name": "John Doe"})
    assert result.status_code == 200, result.text
    assert world.entry(world.tree.user("john@a.test")).get("cn") == ["John Doe"]
    assert cost(counts) == {"search": 2, "modify": 1}


def test_normal_admin_changing_quota_alias_and_password(normal_admin, world, directory, monkeypatch):
    with counted(directory, monkeypatch) as counts:
        result = normal_admin.put("/api/user/john@a.test", {"quota": "200", "addAlias": "johnny@a.test",
                                                            "password": PW})
    assert result.status_code == 200, result.text
    entry = world.entry(world.tree.user("john@a.test"))
    assert entry.get("mailQuota") == [str(200 * 1024 * 1024)]
    assert entry.get("shadowAddress") == ["johnny@a.test"]
    assert any(passwords.verify_password(PW, h) for h in entry.get("userPassword"))
    # The caller with the account and its domain; the domains it manages; the
    # rights of the new alias (an admin's address?); the alias free before the
    # write and still its own after it; the quota handed out over the admin's
    # domains before the write and held after it (a raised quota).
    assert cost(counts) == {"search": 5, "paged_search": 2, "modify": 1}
