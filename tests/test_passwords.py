"""Tests for iredldap.model.passwords.

Interop checks run the real tools:

* Dovecot: ``doveadm -c /dev/null pw -t '<hash>' -p '<plain>'``.  ``-c
  /dev/null`` makes ``doveadm pw`` independent of /etc/dovecot (Debian's
  dovecot 2.3 needs no settings for ``pw``; without ``-c`` a missing or
  unreadable dovecot.conf makes it exit 75, the same code as a mismatch).
  Success: exit 0 and "(verified)" on stdout.  Mismatch: exit 75 and
  "Password mismatch" on stderr.  Needs ``apt-get install dovecot-core``.
* OpenLDAP: ``slappasswd`` from the slapd package; ``{SSHA512}`` needs
  ``-o module-load=pw-sha2``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess

import pytest
from passlib.hash import bcrypt as pl_bcrypt
from passlib.hash import md5_crypt as pl_md5_crypt
from passlib.hash import sha256_crypt as pl_sha256_crypt
from passlib.hash import sha512_crypt as pl_sha512_crypt

from iredldap.model import passwords
from iredldap.model.passwords import (
    DEFAULT_SCHEME,
    SCHEMES,
    hash_password,
    is_supported_hash,
    scheme_of,
    verify_password,
)

PW = "Ver1fy-Me!"
UNICODE_PW = "pä$$ wörd €1"


@pytest.fixture
def fast_bcrypt(monkeypatch):
    """Cost 4 instead of 12 so bcrypt round trips stay fast."""
    monkeypatch.setattr(passwords, "BCRYPT_ROUNDS", 4)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------


def test_schemes_and_default():
    assert SCHEMES == (
        "SSHA512",
        "SSHA",
        "SHA512",
        "BCRYPT",
        "SHA512-CRYPT",
        "MD5",
        "PLAIN-MD5",
        "PLAIN",
    )
    assert DEFAULT_SCHEME == "SSHA512"
    assert hash_password(PW).startswith("{SSHA512}")


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("plain", [PW, UNICODE_PW, " ", "x"])
def test_round_trip(scheme, plain, fast_bcrypt):
    stored = hash_password(plain, scheme)
    assert verify_password(plain, stored)
    assert verify_password(plain, stored.encode("utf-8"))  # LDAP gives bytes
    assert not verify_password(plain + "x", stored)
    assert not verify_password("wrong", stored)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_scheme_name_case_insensitive(scheme, fast_bcrypt):
    assert verify_password(PW, hash_password(PW, scheme.lower()))


def test_ssha512_format():
    stored = hash_password(PW, "SSHA512")
    assert stored.startswith("{SSHA512}")
    raw = base64.b64decode(stored[len("{SSHA512}"):], validate=True)
    assert len(raw) == 64 + 8
    digest, salt = raw[:64], raw[64:]
    assert hashlib.sha512(PW.encode() + salt).digest() == digest
    assert hash_password(PW, "SSHA512") != stored  # random salt


def test_ssha_format():
    stored = hash_password(PW, "SSHA")
    assert stored.startswith("{SSHA}")
    raw = base64.b64decode(stored[len("{SSHA}"):], validate=True)
    assert len(raw) == 20 + 8
    assert hashlib.sha1(PW.encode() + raw[20:]).digest() == raw[:20]


def test_sha512_format():
    assert hash_password(PW, "SHA512") == "{SHA512}" + b64(
        hashlib.sha512(PW.encode()).digest()
    )


def test_bcrypt_format_default_cost():
    stored = hash_password(PW, "BCRYPT")  # real default cost, once
    assert stored.startswith("{CRYPT}$2b$12$")
    assert len(stored) == len("{CRYPT}") + 60
    assert verify_password(PW, stored)


def test_sha512_crypt_format():
    stored = hash_password(PW, "SHA512-CRYPT")
    assert stored.startswith("{SHA512-CRYPT}$6$")
    body = stored[len("{SHA512-CRYPT}"):]
    assert "rounds=" not in body  # implicit 5000, like doveadm pw
    _, ident, salt, checksum = body.split("$")
    assert ident == "6" and len(salt) == 16 and len(checksum) == 86
    assert pl_sha512_crypt.verify(PW, body)


def test_md5_format():
    stored = hash_password(PW, "MD5")
    assert stored.startswith("{CRYPT}$1$")
    assert pl_md5_crypt.verify(PW, stored[len("{CRYPT}"):])


def test_plain_md5_and_plain_format():
    assert hash_password(PW, "PLAIN-MD5") == "{PLAIN-MD5}" + hashlib.md5(
        PW.encode()
    ).hexdigest()
    assert hash_password(PW, "PLAIN") == "{PLAIN}" + PW
    assert hash_password(UNICODE_PW, "PLAIN") == "{PLAIN}" + UNICODE_PW


def test_utf8_is_hashed():
    assert hash_password(UNICODE_PW, "SHA512") == "{SHA512}" + b64(
        hashlib.sha512(UNICODE_PW.encode("utf-8")).digest()
    )


@pytest.mark.parametrize("scheme", ["", "SHA256", "BLF-CRYPT", "CRYPT", "NTLM", "{SSHA}", "foo"])
def test_unknown_scheme_raises(scheme):
    with pytest.raises(ValueError):
        hash_password(PW, scheme)


def test_non_str_password_raises():
    with pytest.raises(TypeError):
        hash_password(b"secret")  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_nul_and_empty_rejected(scheme):
    with pytest.raises(ValueError):
        hash_password("a\x00b", scheme)
    with pytest.raises(ValueError):
        hash_password("", scheme)


@pytest.mark.parametrize(
    "stored",
    [
        "{PLAIN}",
        "{PLAIN-MD5}" + hashlib.md5(b"").hexdigest(),
        "{SHA512}" + b64(hashlib.sha512(b"").digest()),
        "{SSHA}" + b64(hashlib.sha1(b"salt").digest() + b"salt"),
        # (a fixed salt: the same test id in every process, as pytest-xdist needs)
        "{CRYPT}" + pl_md5_crypt.using(salt="saltsalt").hash(""),
    ],
)
def test_empty_password_never_verifies(stored):
    assert verify_password("", stored) is False


def test_bcrypt_length_limit(fast_bcrypt):
    ok = "a" * 72
    stored = hash_password(ok, "BCRYPT")
    assert verify_password(ok, stored)
    # 73 bytes: bcrypt>=5 refuses instead of truncating; we reject/deny.
    with pytest.raises(ValueError, match="72 bytes"):
        hash_password("a" * 73, "BCRYPT")
    with pytest.raises(ValueError):
        hash_password("é" * 37, "BCRYPT")  # 37 chars, 74 bytes
    assert not verify_password("a" * 73, stored)
    assert not verify_password("a" * 100, stored)
    # other schemes have no length limit
    long_pw = "x" * 500
    assert verify_password(long_pw, hash_password(long_pw, "SSHA512"))
    assert verify_password(long_pw, hash_password(long_pw, "SHA512-CRYPT"))


# ---------------------------------------------------------------------------
# verification: independently built vectors
# ---------------------------------------------------------------------------


def _independent_vectors(pw: str) -> list[str]:
    p = pw.encode("utf-8")
    salt8, salt4 = bytes(range(1, 9)), b"\xfe\x00\x10\x7f"
    md5_c = pl_md5_crypt.using(salt="abcdefgh").hash(pw)
    sha512_c = pl_sha512_crypt.using(salt="0123456789abcdef", rounds=5000).hash(pw)
    sha512_c_r = pl_sha512_crypt.using(salt="saltsalt", rounds=10000).hash(pw)
    sha256_c = pl_sha256_crypt.using(salt="0123456789abcdef", rounds=5000).hash(pw)
    bc = {i: pl_bcrypt.using(rounds=4, ident=i).hash(pw) for i in ("2a", "2b", "2y")}
    return [
        "{SSHA512}" + b64(hashlib.sha512(p + salt8).digest() + salt8),
        "{SSHA512}" + b64(hashlib.sha512(p + salt4).digest() + salt4),
        "{SSHA256}" + b64(hashlib.sha256(p + salt8).digest() + salt8),
        "{SSHA}" + b64(hashlib.sha1(p + salt8).digest() + salt8),
        "{SSHA}" + b64(hashlib.sha1(p + salt4).digest() + salt4),
        "{SMD5}" + b64(hashlib.md5(p + salt4).digest() + salt4),
        "{SHA}" + b64(hashlib.sha1(p).digest()),
        "{SHA1}" + b64(hashlib.sha1(p).digest()),
        "{SHA}" + hashlib.sha1(p).hexdigest(),
        "{SHA256}" + b64(hashlib.sha256(p).digest()),
        "{SHA512}" + b64(hashlib.sha512(p).digest()),
        "{SHA512}" + hashlib.sha512(p).hexdigest(),
        "{SHA512.HEX}" + hashlib.sha512(p).hexdigest(),
        "{SSHA.HEX}" + (hashlib.sha1(p + salt4).digest() + salt4).hex(),
        "{PLAIN-MD5}" + hashlib.md5(p).hexdigest(),
        "{PLAIN-MD5}" + hashlib.md5(p).hexdigest().upper(),
        "{PLAIN-MD5}" + b64(hashlib.md5(p).digest()),
        "{LDAP-MD5}" + b64(hashlib.md5(p).digest()),
        "{MD5}" + b64(hashlib.md5(p).digest()),  # OpenLDAP {MD5}
        "{MD5}" + md5_c,  # Dovecot {MD5} = md5-crypt
        "{MD5-CRYPT}" + md5_c,
        "{CRYPT}" + md5_c,
        md5_c,
        "{CRYPT}" + sha512_c,
        "{CRYPT}" + sha512_c_r,
        "{SHA512-CRYPT}" + sha512_c,
        "{SHA512-CRYPT}" + sha512_c_r,
        sha512_c,
        "{CRYPT}" + sha256_c,
        "{SHA256-CRYPT}" + sha256_c,
        sha256_c,
        *("{CRYPT}" + h for h in bc.values()),
        *("{BLF-CRYPT}" + h for h in bc.values()),
        *bc.values(),
        "{PLAIN}" + pw,
        "{CLEARTEXT}" + pw,
        "{CLEAR}" + pw,
    ]


@pytest.mark.parametrize("pw", [PW, UNICODE_PW])
def test_independent_vectors(pw):
    for stored in _independent_vectors(pw):
        assert verify_password(pw, stored), stored
        assert verify_password(pw, stored.encode("utf-8")), stored
        assert not verify_password(pw + "!", stored), stored
        assert not verify_password(pw[:-1], stored), stored
        assert not verify_password("", stored), stored
    assert len(_independent_vectors(pw)) == 43  # guard against silent list edits


# Literal vectors for PW = "Ver1fy-Me!", produced once by Dovecot 2.3.19
# (`doveadm pw -s <scheme>`) and OpenLDAP 2.5 (`slappasswd -h <scheme>`).
LITERAL_VECTORS = [
    # doveadm (4-byte salts for the salted SHA family)
    "{SSHA512}0+rOYivzabtvgiZ7fjJxWwfrF/pfWHsavA4Wcl0GSb3bbbNu+mYNLS9x8wWeKVXfaVmzOW36/nSI97a0NohuS1hyHx4=",
    "{SSHA}CXxCvnwZe4zElIKS0hH2KPmNKycrA9FM",
    "{SHA}aievQBiBJ1Aa8AahJhjv8AQXjCU=",
    "{SHA256}8qYnEVmO8dmYgkpe+/19DjV1jyxcEL/qZmuHov0eWps=",
    "{SSHA256}Wnz9IcW/w85Z6FVdBCgGsxHNsZ7Y7bOv/FleGmNhMcrdVPph",
    "{SHA512}bTXJjMej3Qp9wYqfRqhsKY0k/XC+IUEdmiYKbWzZ0ZMtQG7039AgwcUxYCECyXbKUrwlp8My/PFc5UkeFWMfrg==",
    "{SMD5}WK2+ewDETbsthvc0eb2i/hRYxFg=",
    "{PLAIN-MD5}298a773a18d41bd681a5342f79c1a6fe",
    "{LDAP-MD5}KYp3OhjUG9aBpTQvecGm/g==",
    "{MD5}$1$v/CspFTs$2XsTfn1Dh/vZatn6/Opo70",
    "{MD5-CRYPT}$1$pDw4Aw.9$P0Xj.LWpw1nLf1ozR0K971",
    "{SHA256-CRYPT}$5$/UjyHV9s0Bu/Moqw$aFkgss7m91J0qhhn5lAOzVRS3HF7TTUvgZmbGNATEF2",
    "{SHA512-CRYPT}$6$U87x8izi20z.SgvJ$n/QN.wPV57MF8L6e97HNRLLjfGiBJWJ56ambZUJHlq5VG3r2ETs.amz8MZpb6zxIjekt44.ZbP/lh1bMxCPxx0",
    "{BLF-CRYPT}$2y$05$teKJfxxVSfQ2GshsrK1oIe.rlVCqqWgjasKBzn11eGyNx7CqSNIlK",
    "{CLEARTEXT}Ver1fy-Me!",
    # slappasswd (8-byte salts)
    "{SSHA}VuNwM7Xs0TW//p6EekjYwUqScxixUWL3",
    "{SSHA512}rr4Ru9Y3CBlwgkRe90aidMA4SLIYwiKxKd/3RUgdZlWTsWBUn8yXupiMFG0tfLaeEbL5Ia6TLJPgp7donGkKi/zVq71ZZ31N",
    "{MD5}KYp3OhjUG9aBpTQvecGm/g==",
    "{SMD5}4FCjTdleDFdJ5pOa+B2Lhw4Z4Ic=",
    "{CRYPT}$6$qyzSb3YzYWsHLr9L$3ePv45B.HfF4Jh1p0LTDFUUPPfEm.ZPPG7SUJzhNGRnpUG.u5gwFcmBeijZ4tFkbovrx8Qk8HT8aKTGOW5GWg0",
    "{CRYPT}$1$35NHOJ4x$85hYeaOgYlFukd1w/IzRc1",
]


@pytest.mark.parametrize("stored", LITERAL_VECTORS)
def test_literal_vectors(stored):
    assert verify_password(PW, stored)
    assert not verify_password(PW.lower(), stored)
    assert not verify_password(PW + " ", stored)


@pytest.mark.parametrize(
    "stored",
    [
        "{SSHA}VuNwM7Xs0TW//p6EekjYwUqScxixUWL3",
        "{CRYPT}$6$qyzSb3YzYWsHLr9L$3ePv45B.HfF4Jh1p0LTDFUUPPfEm.ZPPG7SUJzhNGRnpUG.u5gwFcmBeijZ4tFkbovrx8Qk8HT8aKTGOW5GWg0",
        "{BLF-CRYPT}$2y$05$teKJfxxVSfQ2GshsrK1oIe.rlVCqqWgjasKBzn11eGyNx7CqSNIlK",
        "{PLAIN-MD5}298a773a18d41bd681a5342f79c1a6fe",
        "{CLEARTEXT}Ver1fy-Me!",
    ],
)
def test_prefix_case_insensitive(stored):
    end = stored.index("}") + 1
    prefix, body = stored[:end], stored[end:]
    for variant in (prefix.lower(), prefix.title(), prefix.swapcase()):
        assert verify_password(PW, variant + body), variant


@pytest.mark.parametrize(
    "stored",
    [
        "",
        b"",
        "{SSHA512}",
        "{SSHA}",
        "{SSHA}!!!not base64!!!",
        "{SSHA}" + b64(b"x" * 20),  # digest only, no salt
        "{SSHA}" + b64(b"short"),
        "{SSHA512}" + b64(b"x" * 64),
        "{SSHA512}" + b64(hashlib.sha512(PW.encode()).digest())[:-4],
        "{SHA}" + b64(b"x" * 19),
        "{SHA}abc",
        "{SHA512}" + "zz" * 64,
        "{SHA512.FOO}" + b64(hashlib.sha512(PW.encode()).digest()),
        "{PLAIN-MD5}xyz",
        "{PLAIN-MD5}" + "g" * 32,
        "{MD5}",
        "{MD5}$1$",
        "{MD5}notbase64",
        "{CRYPT}",
        "{CRYPT}*",
        "{CRYPT}!",
        "{CRYPT}$1$abc",
        "{CRYPT}$6$rounds=100$abcdefgh$" + "a" * 86,
        "{CRYPT}$6$saltsalt$tooshort",
        "{CRYPT}$2b$05$abc",
        "{CRYPT}$2x$05$teKJfxxVSfQ2GshsrK1oIe.rlVCqqWgjasKBzn11eGyNx7CqSNIlK",
        "{CRYPT}$2b$99$teKJfxxVSfQ2GshsrK1oIe.rlVCqqWgjasKBzn11eGyNx7CqSNIlK",
        "{CRYPT}$7$abc",
        "{CRYPT}gC/RaL.9bl9.Y3Dw9yh9IMzs",  # DES-style crypt: not supported
        "{BLF-CRYPT}$6$U87x8izi20z.SgvJ$n/QN.wPV57MF8L6e97HNRLLjfGiBJWJ56ambZUJHlq5VG3r2ETs.amz8MZpb6zxIjekt44.ZbP/lh1bMxCPxx0",
        "{SHA512-CRYPT}$1$35NHOJ4x$85hYeaOgYlFukd1w/IzRc1",
        "{SHA512-CRYPT}",
        "{UNKNOWN}Ver1fy-Me!",
        "{CRAM-MD5}" + "0" * 64,  # accepted as password_hash, not verifiable
        "{NTLM}" + "0" * 32,
        "{PLAIN",
        "PLAIN}Ver1fy-Me!",
        "Ver1fy-Me!",  # no prefix is not cleartext
        "$9$whatever",
        b"\xff\xfe{PLAIN}x",
        None,
        12345,
    ],
)
def test_malformed_is_false(stored):
    assert verify_password(PW, stored) is False


def test_non_str_plain_is_false():
    assert verify_password(b"Ver1fy-Me!", "{PLAIN}Ver1fy-Me!") is False  # type: ignore[arg-type]
    assert verify_password(None, "{PLAIN}Ver1fy-Me!") is False  # type: ignore[arg-type]


def test_nul_in_plain_against_bcrypt_is_false():
    stored = "{CRYPT}" + pl_bcrypt.using(rounds=4).hash("ab")
    assert verify_password("ab\x00cd", stored) is False


def test_plain_is_exact():
    assert verify_password("a b", "{PLAIN}a b")
    assert not verify_password("a b ", "{PLAIN}a b")
    assert not verify_password("A B", "{PLAIN}a b")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("{SSHA512}abc", "SSHA512"),
        ("{ssha}abc", "SSHA"),
        (b"{Crypt}$2b$12$x", "CRYPT"),
        ("{SHA512-CRYPT}$6$x", "SHA512-CRYPT"),
        ("{SHA.hex}abcd", "SHA"),
        ("$2b$12$abc", "CRYPT"),
        ("$1$abc$def", "CRYPT"),
        ("$6$abc$def", "CRYPT"),
        ("plaintext", None),
        ("", None),
        (None, None),
        (b"\xff", None),
    ],
)
def test_scheme_of(value, expected):
    assert scheme_of(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "{PLAIN}secret",
        "{plain}secret",
        "{CRYPT}$2b$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW",
        "{crypt}$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1",
        "{MD5}$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1",
        "{PLAIN-MD5}5ebe2294ecd0e0f08eab7690d2a6ee69",
        "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
        "{SSHA}1G904nLkTkGWjKNnQuB/hpWXC/hzYWx0c2FsdA==",
        "{SHA512}vSsar3708Jvp9Szi2NWZZ02Bqp1qRCFpbcTZPdBhnWgs5WtNZKnvCXdhztmeD2cmW192CF5bDufKRpayrW/isg==",
        "{SSHA512}aCu7JRc+kLsuEmFs1zTY+AiP7DSGnjjG+dH28Dp+E5usqoAixeTPihKqZmkWal4mUfp63tqvCAkFV1LKTDFH6XNhbHRzYWx0",
        "{Sha512-Crypt}$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.",
        "{BCRYPT}$2b$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW",
        "{BLF-CRYPT}$2y$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a",
        "{CRAM-MD5}" + "ab" * 32,
        "{NTLM}" + "0c" * 16,
    ],
)
def test_is_supported_hash_true(value):
    assert is_supported_hash(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "secret",
        "{SSHA}",
        "{SSHA}   ",
        "{SHA256}abc",
        "{SSHA256}abc",
        "{SHA256-CRYPT}$5$abc",
        "{CLEARTEXT}secret",
        "{ARGON2ID}abc",
        "{UNKNOWN}abc",
        "SSHA}abc",
        "{SSHA abc",
        " {SSHA}abc",
        "{SSHA}abc\n",
        "{PLAIN}a\x00b",
        "$2b$12$abc",
        b"{SSHA}abc",
        None,
        # The right prefix, but not the form of that scheme (issue #10).
        "{CRYPT}$2b$12$abc",
        "{crypt}$1$abc$def",
        "{CRYPT}$6$salt",
        "{CRYPT}garbage",
        "{SHA}abc=",
        "{SSHA}abc=",
        "{SHA512}abc=",
        "{SSHA512}abc=",
        "{SSHA512}not base64!",
        "{Sha512-Crypt}$6$abc$def",
        "{BCRYPT}$2b$12$abc",
        "{PLAIN-MD5}zz",
        "{CRAM-MD5}abcdef",
        "{NTLM}abcdef",
    ],
)
def test_is_supported_hash_false(value):
    assert not is_supported_hash(value)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_generated_hashes_are_supported_hash_values(scheme, fast_bcrypt):
    assert is_supported_hash(hash_password(PW, scheme))


# ---------------------------------------------------------------------------
# interop: Dovecot
# ---------------------------------------------------------------------------


def _doveadm() -> str:
    path = shutil.which("doveadm") or (
        "/usr/bin/doveadm" if os.access("/usr/bin/doveadm", os.X_OK) else None
    )
    if path is None:
        pytest.fail(
            "doveadm not found: the Dovecot interop tests need Dovecot. "
            "Install it with: DEBIAN_FRONTEND=noninteractive apt-get install -y dovecot-core"
        )
    return path


def _doveadm_test(stored: str, plain: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_doveadm(), "-c", "/dev/null", "pw", "-t", stored, "-p", plain],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("plain", [PW, UNICODE_PW])
def test_dovecot_accepts_our_hashes(scheme, plain):
    stored = hash_password(plain, scheme)  # real bcrypt cost here
    ok = _doveadm_test(stored, plain)
    assert ok.returncode == 0 and "(verified)" in ok.stdout, (
        f"doveadm rejected {scheme}: rc={ok.returncode} stderr={ok.stderr.strip()!r}"
    )
    bad = _doveadm_test(stored, plain + "x")
    assert bad.returncode != 0
    assert "mismatch" in bad.stderr.lower(), bad.stderr


@pytest.mark.parametrize("scheme", ["SSHA512", "SSHA", "SHA512-CRYPT", "MD5-CRYPT", "PLAIN-MD5"])
def test_we_accept_dovecot_hashes(scheme):
    out = subprocess.run(
        [_doveadm(), "-c", "/dev/null", "pw", "-s", scheme, "-p", UNICODE_PW],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert out.upper().startswith("{" + scheme + "}")
    assert verify_password(UNICODE_PW, out)
    assert not verify_password(PW, out)


# ---------------------------------------------------------------------------
# interop: OpenLDAP slappasswd
# ---------------------------------------------------------------------------


def _slappasswd() -> str:
    path = shutil.which("slappasswd") or "/usr/sbin/slappasswd"
    if not os.access(path, os.X_OK):
        pytest.fail("slappasswd not found: install the slapd package")
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["-h", "{SSHA}"],
        ["-o", "module-load=pw-sha2", "-h", "{SSHA512}"],
        ["-h", "{SHA}"],
        ["-h", "{SMD5}"],
        ["-h", "{MD5}"],
        ["-h", "{CRYPT}", "-c", "$6$%.16s"],
        ["-h", "{CRYPT}", "-c", "$1$%.8s"],
    ],
)
@pytest.mark.parametrize("plain", [PW, UNICODE_PW])
def test_slappasswd_hashes_verify(args, plain):
    out = subprocess.run(
        [_slappasswd(), *args, "-s", plain],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert out.startswith("{"), out
    assert verify_password(plain, out)
    assert not verify_password(plain + "x", out)
