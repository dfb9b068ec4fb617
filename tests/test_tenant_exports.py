"""LDIF exports of a normal admin with LDIF_EXPORT_PASSWORDS = always: the
hashes of accounts above it stay out (an offline guess at a global admin's
password would be a way up); its own users' hashes are there."""

from __future__ import annotations

import pytest

from .conftest import make_settings
from .test_tenant_boundaries import world  # noqa: F401 (fixture)


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, ldif_export_passwords="always")


def records(text: str) -> dict[str, str]:
    """dn (lower case) -> its record, from an LDIF export."""
    out = {}
    text = text.replace("\n ", "")  # unfold (RFC 2849 continuation lines)
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith("#")]
        if lines and lines[0].lower().startswith("dn: "):
            out[lines[0][4:].lower()] = "\n".join(lines)
    return out


def user_dn(mail: str) -> str:
    return f"mail={mail},ou=users,domainname={mail.partition('@')[2]},o=domains,dc=example,dc=com"


def test_a_domain_export_leaves_out_the_hashes_of_accounts_above(world):
    r = world["tenant"].get("/api/ldif/domain/own.test")
    assert r.status_code == 200, r.text
    found = records(r.text)
    for mail in ("boss@own.test", "coadmin@own.test", "stale@own.test"):
        assert "userPassword" not in found[user_dn(mail)], mail
    for mail in ("peer@own.test", "plain@own.test"):
        assert "userPassword:" in found[user_dn(mail)], mail
    # The global admin's own export of the same domain has every hash.
    full = records(world["global"].get("/api/ldif/domain/own.test").text)
    assert all("userPassword:" in full[user_dn(m)] for m in ("boss@own.test", "plain@own.test"))


def test_a_user_export_of_an_account_above_has_no_hash(world):
    above = records(world["tenant"].get("/api/ldif/user/boss@own.test").text)
    assert "userPassword" not in above[user_dn("boss@own.test")]
    own = records(world["tenant"].get("/api/ldif/user/plain@own.test").text)
    assert "userPassword:" in own[user_dn("plain@own.test")]
