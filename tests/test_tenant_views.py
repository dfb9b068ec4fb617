"""What a normal admin sees of its entries names no other tenant's lists
(iredldap.model.tenant_view), while a global admin sees everything.

Runs on MOCK_SYNC and on slapd.
"""

from __future__ import annotations

import pytest

from .test_tenant_boundaries import world  # noqa: F401 (fixture)


@pytest.fixture
def listed(world, api):
    """plain@own.test and the alias info@own.test are members of a list of other.test."""
    assert api.post("/api/alias/info@own.test", {"members": "plain@own.test"}).status_code == 201
    assert api.post("/api/maillist/secret-project@other.test",
                    {"members": "plain@own.test,info@own.test"}).status_code == 201
    assert api.post("/api/maillist/team@own.test", {"members": "plain@own.test"}).status_code == 201
    return world


@pytest.mark.parametrize("path", ["/api/alias/info@own.test", "/api/aliases/own.test",
                                  "/api/users/own.test", "/api/user/plain@own.test",
                                  "/api/ldif/user/plain@own.test", "/api/ldif/alias/info@own.test",
                                  "/api/ldif/domain/own.test"])
def test_a_normal_admin_sees_its_own_lists_only(listed, path):
    r = listed["tenant"].get(path)
    assert r.status_code == 200, r.text
    assert "secret-project" not in r.text
    if "alias" not in path:
        assert "team@own.test" in r.text      # its own list stays


@pytest.mark.parametrize("path", ["/api/aliases/own.test", "/api/users/own.test",
                                  "/api/ldif/user/plain@own.test", "/api/ldif/domain/own.test"])
def test_a_global_admin_sees_every_list(listed, api, path):
    r = api.get(path)
    assert r.status_code == 200, r.text
    assert "secret-project@other.test" in r.text
