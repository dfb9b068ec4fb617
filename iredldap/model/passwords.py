"""Password hashing and verification in the formats iRedMail stores in LDAP.

``userPassword`` holds ``{SCHEME}value``.  Dovecot verifies mail logins
against it, slapd verifies binds (``{SSHA}``/``{SSHA512}`` only), and
iRedAdmin verifies admin logins in Python.  Everything generated here is
accepted by Dovecot's ``doveadm pw -t`` (the test suite checks that).

Generated formats (:data:`SCHEMES`, default :data:`DEFAULT_SCHEME`):

=============  =============================================================
scheme         stored value
=============  =============================================================
SSHA512        ``{SSHA512}`` base64(sha512(pw + salt) + salt), 8-byte salt
SSHA           ``{SSHA}`` base64(sha1(pw + salt) + salt), 8-byte salt
SHA512         ``{SHA512}`` base64(sha512(pw)), unsalted
BCRYPT         ``{CRYPT}$2b$12$...``; iRedAdmin writes ``{CRYPT}``, not
               ``{BLF-CRYPT}``
SHA512-CRYPT   ``{SHA512-CRYPT}$6$<16-char salt>$...``, the exact form of
               ``doveadm pw -s SHA512-CRYPT`` (implicit 5000 rounds).  Dovecot
               reads ``{CRYPT}$6$...`` too; we keep the explicit name so the
               scheme is visible in the directory.
MD5            ``{CRYPT}$1$...`` (md5-crypt), as iRedAdmin writes it
PLAIN-MD5      ``{PLAIN-MD5}<hex md5>``
PLAIN          ``{PLAIN}<password>``
=============  =============================================================

The password is hashed as UTF-8 and is never stripped or otherwise changed.
It may not be empty (LDAP treats an empty-password bind as anonymous, and an
empty password is never a real credential), and it may not contain NUL:
Dovecot handles passwords as C strings, so such a password could never log
in.  :func:`verify_password` likewise returns ``False`` for an empty password,
whatever is stored.

bcrypt and long passwords: bcrypt only uses the first 72 bytes.  The
``bcrypt`` package 5.x raises ``ValueError`` for longer input instead of
truncating, and libpass passes that through from both ``hash`` and
``verify``.  We make this explicit: :func:`hash_password` rejects a BCRYPT
password longer than 72 UTF-8 bytes with ``ValueError``, and
:func:`verify_password` returns ``False`` for such a password against a bcrypt
hash (Dovecot would truncate and accept it; we prefer not to let two
different passwords match).

:func:`verify_password` never raises for a bad stored value: malformed
values, unknown schemes and schemes we cannot compute (``{CRAM-MD5}``,
``{NTLM}``, DES crypt) return ``False``.  Comparisons are constant-time.

Nothing in this module logs passwords or hashes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from typing import Callable

from passlib.hash import bcrypt as _bcrypt
from passlib.hash import md5_crypt as _md5_crypt
from passlib.hash import sha256_crypt as _sha256_crypt
from passlib.hash import sha512_crypt as _sha512_crypt

__all__ = [
    "BCRYPT_MAX_BYTES",
    "BCRYPT_ROUNDS",
    "DEFAULT_SCHEME",
    "SCHEMES",
    "SHA512_CRYPT_ROUNDS",
    "SSHA_SALT_BYTES",
    "SUPPORTED_HASH_PREFIXES",
    "hash_password",
    "is_supported_hash",
    "scheme_of",
    "verify_password",
]

#: Schemes :func:`hash_password` can generate.
SCHEMES: tuple[str, ...] = (
    "SSHA512",
    "SSHA",
    "SHA512",
    "BCRYPT",
    "SHA512-CRYPT",
    "MD5",
    "PLAIN-MD5",
    "PLAIN",
)
DEFAULT_SCHEME = "SSHA512"

#: Salt length for SSHA/SSHA512, as iRedAdmin, slappasswd and Dovecot use.
SSHA_SALT_BYTES = 8
#: bcrypt cost; 12 is the ``bcrypt.gensalt()`` default iRedAdmin relies on.
BCRYPT_ROUNDS = 12
#: bcrypt ignores (bcrypt>=5: refuses) input beyond this many bytes.
BCRYPT_MAX_BYTES = 72
#: 5000 is the sha512-crypt default and what ``doveadm pw`` generates; with
#: it the ``rounds=`` field is omitted from the hash.
SHA512_CRYPT_ROUNDS = 5000

#: ``{SCHEME}`` prefixes accepted for a pre-hashed ``password_hash``
#: API parameter (iRedAdmin's list plus BLF-CRYPT).
SUPPORTED_HASH_PREFIXES: frozenset[str] = frozenset(
    {
        "PLAIN",
        "CRYPT",
        "MD5",
        "PLAIN-MD5",
        "SHA",
        "SSHA",
        "SHA512",
        "SSHA512",
        "SHA512-CRYPT",
        "BCRYPT",
        "BLF-CRYPT",
        "CRAM-MD5",
        "NTLM",
    }
)

_PREFIX_RE = re.compile(r"\{([A-Za-z0-9._-]+)\}(.*)\Z", re.DOTALL)
_BARE_CRYPT_RE = re.compile(r"\$(1|2[aby]|5|6)\$")
_HEX_RE = re.compile(r"[0-9A-Fa-f]+\Z")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


# ---------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _salted(name: str, pw: bytes) -> bytes:
    salt = os.urandom(SSHA_SALT_BYTES)
    return hashlib.new(name, pw + salt).digest() + salt


def _gen_ssha512(plain: str) -> str:
    return "{SSHA512}" + _b64(_salted("sha512", plain.encode("utf-8")))


def _gen_ssha(plain: str) -> str:
    return "{SSHA}" + _b64(_salted("sha1", plain.encode("utf-8")))


def _gen_sha512(plain: str) -> str:
    return "{SHA512}" + _b64(hashlib.sha512(plain.encode("utf-8")).digest())


def _gen_bcrypt(plain: str) -> str:
    if len(plain.encode("utf-8")) > BCRYPT_MAX_BYTES:
        raise ValueError(
            f"BCRYPT passwords may be at most {BCRYPT_MAX_BYTES} bytes (UTF-8)"
        )
    return "{CRYPT}" + _bcrypt.using(rounds=BCRYPT_ROUNDS, ident="2b").hash(plain)


def _gen_sha512_crypt(plain: str) -> str:
    return "{SHA512-CRYPT}" + _sha512_crypt.using(rounds=SHA512_CRYPT_ROUNDS).hash(
        plain
    )


def _gen_md5(plain: str) -> str:
    return "{CRYPT}" + _md5_crypt.hash(plain)


def _gen_plain_md5(plain: str) -> str:
    return "{PLAIN-MD5}" + hashlib.md5(plain.encode("utf-8")).hexdigest()


def _gen_plain(plain: str) -> str:
    return "{PLAIN}" + plain


_GENERATORS: dict[str, Callable[[str], str]] = {
    "SSHA512": _gen_ssha512,
    "SSHA": _gen_ssha,
    "SHA512": _gen_sha512,
    "BCRYPT": _gen_bcrypt,
    "SHA512-CRYPT": _gen_sha512_crypt,
    "MD5": _gen_md5,
    "PLAIN-MD5": _gen_plain_md5,
    "PLAIN": _gen_plain,
}
assert set(_GENERATORS) == set(SCHEMES)


def hash_password(plain: str, scheme: str = DEFAULT_SCHEME) -> str:
    """Hash ``plain`` and return the ``{SCHEME}...`` value to store.

    ``scheme`` is one of :data:`SCHEMES`, case-insensitive.  Raises
    ``ValueError`` for an unknown scheme, an empty password, a password
    containing NUL, or a
    BCRYPT password longer than 72 UTF-8 bytes; ``TypeError`` when
    ``plain`` is not a ``str``.
    """
    if not isinstance(plain, str):
        raise TypeError("password must be a str")
    if not isinstance(scheme, str):
        raise TypeError("scheme must be a str")
    generator = _GENERATORS.get(scheme.strip().upper())
    if generator is None:
        raise ValueError(
            f"unsupported password scheme {scheme!r}; expected one of "
            + ", ".join(SCHEMES)
        )
    if not plain:
        raise ValueError("password must not be empty")
    if "\x00" in plain:
        raise ValueError("password must not contain NUL characters")
    return generator(plain)


# ---------------------------------------------------------------------------
# verification
# ---------------------------------------------------------------------------


def _decode(value: str, encoding: str | None, raw_len: int | None = None) -> bytes | None:
    """Decode a hash body; ``encoding`` is ``"hex"``, ``"b64"`` or None (auto).

    In auto mode base64 is the default, and a value that is exactly the hex
    form of a ``raw_len``-byte digest is read as hex (Dovecot does the same).
    """
    try:
        if encoding == "hex":
            return bytes.fromhex(value)
        if (
            encoding is None
            and raw_len is not None
            and len(value) == 2 * raw_len
            and _HEX_RE.match(value)
        ):
            return bytes.fromhex(value)
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return None


def _check_digest(algo: str, encoding: str | None):
    def check(pw: bytes, value: str) -> bool:
        size = hashlib.new(algo).digest_size
        raw = _decode(value, encoding, size)
        if raw is None or len(raw) != size:
            return False
        return hmac.compare_digest(hashlib.new(algo, pw).digest(), raw)

    return check


def _check_salted(algo: str, encoding: str | None):
    def check(pw: bytes, value: str) -> bool:
        size = hashlib.new(algo).digest_size
        raw = _decode(value, "hex" if encoding == "hex" else "b64")
        if raw is None or len(raw) <= size:
            return False
        digest, salt = raw[:size], raw[size:]
        return hmac.compare_digest(hashlib.new(algo, pw + salt).digest(), digest)

    return check


def _check_plain_md5(encoding: str | None, default: str):
    """PLAIN-MD5 defaults to hex, LDAP-MD5 to base64; each reads the other."""

    def check(pw: bytes, value: str) -> bool:
        enc = encoding
        if enc is None:
            if len(value) == 32 and _HEX_RE.match(value):
                enc = "hex"
            elif len(value) == 24:
                enc = "b64"
            else:
                enc = default
        raw = _decode(value, enc)
        if raw is None or len(raw) != 16:
            return False
        return hmac.compare_digest(hashlib.md5(pw).digest(), raw)

    return check


def _check_plain(pw: bytes, value: str) -> bool:
    return hmac.compare_digest(pw, value.encode("utf-8"))


def _check_bcrypt(pw: bytes, value: str) -> bool:
    if not value.startswith(("$2a$", "$2b$", "$2y$")):
        return False
    if len(pw) > BCRYPT_MAX_BYTES or b"\x00" in pw:
        return False
    return bool(_bcrypt.verify(pw, value))


def _check_sha512_crypt(pw: bytes, value: str) -> bool:
    return value.startswith("$6$") and bool(_sha512_crypt.verify(pw, value))


def _check_sha256_crypt(pw: bytes, value: str) -> bool:
    return value.startswith("$5$") and bool(_sha256_crypt.verify(pw, value))


def _check_md5_crypt(pw: bytes, value: str) -> bool:
    return value.startswith("$1$") and bool(_md5_crypt.verify(pw, value))


def _check_crypt(pw: bytes, value: str) -> bool:
    """``{CRYPT}``: dispatch on the modular-crypt identifier."""
    if value.startswith("$1$"):
        return _check_md5_crypt(pw, value)
    if value.startswith("$5$"):
        return _check_sha256_crypt(pw, value)
    if value.startswith("$6$"):
        return _check_sha512_crypt(pw, value)
    if value.startswith(("$2a$", "$2b$", "$2y$")):
        return _check_bcrypt(pw, value)
    return False


def _check_md5(encoding: str | None):
    """``{MD5}``: md5-crypt for Dovecot, base64 plain md5 for OpenLDAP."""
    ldap_md5 = _check_plain_md5(encoding, "b64")

    def check(pw: bytes, value: str) -> bool:
        if value.startswith("$1$"):
            return _check_md5_crypt(pw, value)
        return ldap_md5(pw, value)

    return check


# Scheme -> the checker for a hash of that scheme, given the encoding suffix
# (`.b64`, `.hex`) of the scheme name, if any.
_CHECKERS: dict[str, Callable[[str | None], Callable[[bytes, str], bool]]] = {
    **dict.fromkeys(("PLAIN", "CLEARTEXT", "CLEAR"), lambda enc: _check_plain),
    **dict.fromkeys(("SHA", "SHA1"), lambda enc: _check_digest("sha1", enc)),
    "SHA256": lambda enc: _check_digest("sha256", enc),
    "SHA512": lambda enc: _check_digest("sha512", enc),
    "SSHA": lambda enc: _check_salted("sha1", enc),
    "SSHA256": lambda enc: _check_salted("sha256", enc),
    "SSHA512": lambda enc: _check_salted("sha512", enc),
    "SMD5": lambda enc: _check_salted("md5", enc),
    "PLAIN-MD5": lambda enc: _check_plain_md5(enc, "hex"),
    "LDAP-MD5": lambda enc: _check_plain_md5(enc, "b64"),
    "MD5": lambda enc: _check_md5(enc),
    "MD5-CRYPT": lambda enc: _check_md5_crypt,
    "CRYPT": lambda enc: _check_crypt,
    **dict.fromkeys(("BLF-CRYPT", "BCRYPT"), lambda enc: _check_bcrypt),
    "SHA512-CRYPT": lambda enc: _check_sha512_crypt,
    "SHA256-CRYPT": lambda enc: _check_sha256_crypt,
}


def _checker(scheme: str, encoding: str | None) -> Callable[[bytes, str], bool] | None:
    make = _CHECKERS.get(scheme)
    return make(encoding) if make else None


def _as_text(stored: str | bytes) -> str | None:
    if isinstance(stored, (bytes, bytearray, memoryview)):
        try:
            return bytes(stored).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(stored, str):
        return stored
    return None


def _split(stored: str) -> tuple[str, str | None, str] | None:
    """Return ``(SCHEME, encoding, value)``; bare crypt values get ``CRYPT``."""
    m = _PREFIX_RE.match(stored)
    if m is None:
        if _BARE_CRYPT_RE.match(stored):
            return "CRYPT", None, stored
        return None
    name, value = m.group(1).upper(), m.group(2)
    encoding: str | None = None
    if "." in name:
        name, _, suffix = name.partition(".")
        if suffix == "HEX":
            encoding = "hex"
        elif suffix in ("B64", "BASE64"):
            encoding = "b64"
        else:
            return None
    return name, encoding, value


def verify_password(plain: str, stored: str | bytes) -> bool:
    """True when ``plain`` matches the stored ``userPassword`` value.

    Accepts (prefix case-insensitive, ``.hex``/``.b64`` suffixes honoured):
    ``{PLAIN}``/``{CLEARTEXT}``/``{CLEAR}``, ``{SHA}``/``{SHA1}``,
    ``{SHA256}``, ``{SHA512}``, ``{SSHA}``, ``{SSHA256}``, ``{SSHA512}``,
    ``{SMD5}``, ``{PLAIN-MD5}``, ``{LDAP-MD5}``, ``{MD5}`` (``$1$`` md5-crypt,
    otherwise base64 md5), ``{MD5-CRYPT}``, ``{CRYPT}`` with ``$1$``, ``$5$``,
    ``$6$``, ``$2a$``/``$2b$``/``$2y$``, ``{BLF-CRYPT}``/``{BCRYPT}``,
    ``{SHA256-CRYPT}``, ``{SHA512-CRYPT}``, and bare ``$1$``/``$2?$``/``$5$``/
    ``$6$`` values.  Anything else, a malformed value, or an empty
    ``plain`` gives ``False``.
    """
    if not isinstance(plain, str) or not plain:
        return False
    text = _as_text(stored)
    if not text:
        return False
    try:
        parts = _split(text)
        if parts is None:
            return False
        scheme, encoding, value = parts
        check = _checker(scheme, encoding)
        if check is None or not value:
            return False
        return bool(check(plain.encode("utf-8"), value))
    except Exception:  # malformed value, backend refusal: never raise
        return False


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def scheme_of(stored: str | bytes | None) -> str | None:
    """The upper-cased scheme of a stored value (``"SSHA512"``, ``"CRYPT"``...).

    A bare modular-crypt value (``$1$``, ``$2a$``/``$2b$``/``$2y$``, ``$5$``,
    ``$6$``) reports ``"CRYPT"``.  An encoding suffix (``{SHA.hex}``) is
    dropped.  ``None`` when there is no recognisable prefix.
    """
    if stored is None:
        return None
    text = _as_text(stored)
    if text is None:
        return None
    m = _PREFIX_RE.match(text)
    if m is not None:
        return m.group(1).upper().partition(".")[0] or None
    if _BARE_CRYPT_RE.match(text):
        return "CRYPT"
    return None


def is_supported_hash(value: str) -> bool:
    """Whether ``value`` may be stored as-is from a ``password_hash`` parameter.

    True when it is ``{SCHEME}`` with SCHEME (case-insensitive) in
    :data:`SUPPORTED_HASH_PREFIXES`, followed by a body of the form that
    scheme has (digest lengths, base64 or hex, the modular-crypt layout), and
    it holds no control characters.  A malformed body would be an account
    nobody can log in to, or one that a verifier reads differently.
    """
    if not isinstance(value, str) or _CONTROL_RE.search(value):
        return False
    m = _PREFIX_RE.match(value)
    if m is None:
        return False
    scheme, body = m.group(1).upper(), m.group(2)
    return scheme in SUPPORTED_HASH_PREFIXES and bool(body.strip()) and _well_formed(scheme, body)


def _digest_of(size: int, *, salted: bool):
    def check(body: str) -> bool:
        raw = _decode(body, None if not salted else "b64", None if salted else size)
        return raw is not None and (len(raw) > size if salted else len(raw) == size)
    return check


def _parses(*handlers) -> Callable[[str], bool]:
    """A modular-crypt value that one of the passlib handlers can parse."""
    def check(body: str) -> bool:
        for handler in handlers:
            try:
                # A salt without a checksum parses too (a "config string"): no hash.
                if handler.from_string(body).checksum:
                    return True
            except (ValueError, TypeError):
                continue
        return False
    return check


_CRYPT_FORMS = _parses(_md5_crypt, _sha256_crypt, _sha512_crypt, _bcrypt)
_WELL_FORMED: dict[str, Callable[[str], bool]] = {
    "PLAIN": lambda body: True,
    "SHA": _digest_of(20, salted=False),
    "SSHA": _digest_of(20, salted=True),
    "SHA512": _digest_of(64, salted=False),
    "SSHA512": _digest_of(64, salted=True),
    "PLAIN-MD5": lambda body: bool(re.fullmatch(r"[0-9A-Fa-f]{32}", body)) or _digest_of(16, salted=False)(body),
    "MD5": lambda body: _parses(_md5_crypt)(body) or _digest_of(16, salted=False)(body),
    "CRYPT": _CRYPT_FORMS,
    "SHA512-CRYPT": _parses(_sha512_crypt),
    "BCRYPT": _parses(_bcrypt),
    "BLF-CRYPT": _parses(_bcrypt),
    # Dovecot keeps both as hex: HMAC-MD5 context (32 bytes), MD4 (16 bytes).
    "CRAM-MD5": lambda body: bool(re.fullmatch(r"[0-9A-Fa-f]{64}", body)),
    "NTLM": lambda body: bool(re.fullmatch(r"[0-9A-Fa-f]{32}", body)),
}
assert set(_WELL_FORMED) == SUPPORTED_HASH_PREFIXES


def _well_formed(scheme: str, body: str) -> bool:
    return _WELL_FORMED[scheme](body)
