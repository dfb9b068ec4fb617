"""What every responder shares: reading parameters, answering, who is asking."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any, Callable, Iterable

import falcon

from iredldap.config import Settings
from iredldap.db.iredadmin import IredadminDB
from iredldap.db.policy_accounts import PolicyAccounts
from iredldap.db.sessions import Session, SessionStore
from iredldap.directory.admins import Principal
from iredldap.directory.connection import Entry
from iredldap.directory.limits import AdminLimits
from iredldap.errors import InvalidInput, NotAuthorized
from iredldap.model import passwords
from iredldap.model.accounts import PASSWORD_PARAMS
from iredldap.model.listing import Listing, Page, entry_key, select
from iredldap.model.params import KEEP_DAYS_MAX, Operation, ParamSet
from iredldap.model.tenant_view import hide_foreign
from iredldap.web.forms import require_utf8


_EMPTY = object()


def raw_params(req: falcon.Request) -> dict[str, Any]:
    """Query string and body (form-urlencoded or a JSON object), body winning."""
    if "%" in req.query_string:
        require_utf8(req.query_string, "query string")
    merged: dict[str, Any] = dict(req.params)
    if req.content_length or req.get_header("Transfer-Encoding"):
        try:
            body = req.get_media(default_when_empty=_EMPTY)
        except falcon.MediaMalformedError as exc:
            raise InvalidInput(f"the request body is not valid {req.content_type or 'form data'}: "
                               f"{exc.description or ''}".strip(), code="INVALID_REQUEST") from None
        # An empty body is no parameters; a JSON `null` is not an object (a
        # default of None could not tell the two apart).
        if body is _EMPTY:
            body = {}
        if not isinstance(body, dict):
            raise InvalidInput("the request body must be a JSON object or form fields", code="INVALID_REQUEST")
        merged.update(body)
    return merged


def read_params(req: falcon.Request, spec: ParamSet | Operation) -> dict[str, Any]:
    """The request's parameters, checked against what the responder declares
    (its `Operation`, which the API document is built from)."""
    if isinstance(spec, Operation):
        spec = spec.params
    # For the audit log, which shows values only of declared parameters.
    req.context.declared_params = (getattr(req.context, "declared_params", None) or frozenset()) \
        | frozenset(spec.by_name) | frozenset(spec.by_alias)
    return spec.parse(raw_params(req))


def ok(resp: falcon.Response, data: Any = None, *, status: int = 200) -> None:
    resp.status = status
    resp.media = {"_success": True} if data is None else {"_success": True, "_data": data}


def ok_page(resp: falcon.Response, page: Page, data: list) -> None:
    """A listing: `_data` and `_total` (and `_page`, `_page_size`, `_next_cursor` when paged)."""
    resp.status = 200
    resp.media = page.envelope(data)


def principal(req: falcon.Request) -> Principal:
    """The logged-in admin (the auth middleware has checked there is one)."""
    return req.context.principal


def client_ip(req: falcon.Request) -> str:
    return req.context.client_ip


def entry_as_dict(entry, *, hide=("userPassword",)) -> dict[str, list[str]]:
    """An entry the way the LDAP edition's API shows it: attribute → list of strings."""
    hidden = {h.lower() for h in hide}
    return {k: list(v) for k, v in sorted(entry.attrs.items()) if k.lower() not in hidden}


def entry_as_seen(req: falcon.Request, entry) -> dict[str, list[str]]:
    """`entry_as_dict`, for a normal admin without what other tenants wrote
    on the entry (iredldap.model.tenant_view)."""
    data = entry_as_dict(entry)
    if principal(req).is_global:
        return data
    return hide_foreign(data, req.context.access.managed_domains())


# Sort fields of listings -> the attribute sorted by.
SORT_ATTRS = {"mail": "mail", "name": "cn"}

# Without keep_mailbox_days a mailbox is kept "forever" (100 years), as the
# API documents; 0 records it with no removal date at all.
DEFAULT_KEEP_DAYS = KEEP_DAYS_MAX


def restrict_for_normal_admin(who: Principal, spec: ParamSet, values: dict[str, Any],
                              disabled_profiles: list[str]) -> None:
    """Normal admins may not touch limits and switches, nor profiles the global admin hid,
    and some values are narrower for them (`Param.normal_admin_check`)."""
    if who.is_global:
        return
    for name in values:
        param = spec.by_name[name]
        if param.global_only:
            raise NotAuthorized(f"{name}: only global admins may change it", param=name)
        if param.profile and param.profile in disabled_profiles:
            raise NotAuthorized(f"{name}: the '{param.profile}' settings of this domain are locked", param=name)
        if param.normal_admin_check is not None:
            param.normal_admin_check(values[name], name)


class PasswordHashing:
    """Turns the password parameters into the value stored in userPassword."""

    def __init__(self, settings: Settings):
        self.scheme = settings.default_password_scheme

    def stored_value(self, values: dict[str, Any], policy) -> str | None:
        if "password" in values:
            policy.check(values["password"])
            try:
                return passwords.hash_password(values["password"], self.scheme)
            except ValueError as exc:
                raise InvalidInput(f"password: {exc}", param="password") from None
        if "password_hash" in values:
            value = values["password_hash"]
            if not passwords.is_supported_hash(value):
                raise InvalidInput("password_hash: expected {SCHEME}hash with a scheme Dovecot knows",
                                   code="INVALID_PASSWORD_SCHEME", param="password_hash")
            # Dovecot has no {BCRYPT} scheme; bcrypt hashes are {CRYPT}$2b$...
            if value[:8].upper() == "{BCRYPT}":
                value = "{CRYPT}" + value[8:]
            return value
        return None


# -- a password changed: who logged in with the old one is out ---------------------

def _own_session(req: falcon.Request, admin: str) -> Session | None:
    """The request's session when it is `admin`'s own (changing one's own
    password keeps one logged in); None under an API token or another admin."""
    session = getattr(req.context, "session", None)
    return session if session is not None and session.admin.lower() == admin.lower() else None


def end_access_of(db: IredadminDB, sessions: SessionStore | None, mail: str) -> None:
    """The account at `mail` goes (deleted, renamed, no longer an admin): its API
    tokens and sessions end with it, so a later owner of the address inherits neither."""
    db.revoke_tokens_of([mail])
    if sessions is not None:
        sessions.end_all_of(mail)


def end_sessions_of(sessions: SessionStore | None, req: falcon.Request, admin: str) -> None:
    """`admin`'s password changed: end its sessions, but the request's own."""
    if sessions is not None:
        sessions.end_all_of(admin, keep=_own_session(req, admin))


def end_sessions_in(sessions: SessionStore | None, req: falcon.Request, domain: str, domain_dn: str, *,
                    skip: frozenset[str] = frozenset()) -> None:
    """Every mail user of `domain` but those in `skip` got a new password:
    end the sessions of those that are admins, but the request's own."""
    if sessions is None:
        return
    own = getattr(req.context, "session", None)
    keep = own if own is not None and own.admin.lower().endswith("@" + domain.lower()) else None
    sessions.end_all_in(domain, domain_dn, keep=keep, skip=skip)


def answer_addresses(req: falcon.Request, resp: falcon.Response, values: dict[str, Any],
                     scan: Callable[..., Iterable[Entry]]) -> None:
    """Answer a listing of a domain's addresses (users, aliases, lists):
    `scan(disabled_only=, search=, attrs=)` reads them; `email_only` gives just the addresses."""
    listing = Listing.of(values, "mail")
    emails_only = values.get("email_only", False)
    entries = scan(disabled_only=values.get("disabled_only", False), search=listing.search,
                   attrs=("mail", "cn") if emails_only else ("*",))
    page = select(entries, entry_key(listing.sort, SORT_ATTRS, "mail"), listing)
    if emails_only:
        ok_page(resp, page, [e.first("mail").lower() for e in page.items])
    else:
        ok_page(resp, page, [entry_as_seen(req, e) for e in page.items])


class PasswordCheck:
    """POST /api/verify_password/{user,admin}/<mail>: 200 when the password
    matches one of the account's userPassword values, 400 PW_MISMATCH if not."""

    def __init__(self, whose: str, read: Callable[[str], Entry]):
        # `read(mail)`: the account's entry with userPassword (NoSuchAccount if there is none).
        self.read = read
        self.operations = {"POST": Operation(f"Check {whose} password (400 PW_MISMATCH when wrong)",
                                             PASSWORD_PARAMS)}

    def on_post(self, req: falcon.Request, resp: falcon.Response, mail: str) -> None:
        values = read_params(req, self.operations["POST"])
        entry = self.read(mail)
        if not any(passwords.verify_password(values["password"], h) for h in entry.get("userPassword")):
            raise InvalidInput("password: does not match", code="PW_MISMATCH", param="password")
        ok(resp)


@dataclass(eq=False)
class ListItemBase:
    """What the item responders of list-like accounts (aliases, both kinds of
    mailing list) share: the store of their type, the parameter sets its
    declaration gives, and a create held to the creating admin's limit."""

    store: Any
    _: KW_ONLY
    # The creating admin's own limit (maxAliases or maxLists), across its domains.
    limits: AdminLimits
    policies: PolicyAccounts | None = None

    def __post_init__(self) -> None:
        self.account = self.store.account
        self.create_params = self.account.create_params()
        self.update_params = self.account.update_params()
        self.delete_params = self.account.delete_params()

    def create_within_limits(self, who: Principal, mail: str, values: dict[str, Any]) -> None:
        self.limits.check(who, self.account)
        # The same limit, held again after the write against parallel creates.
        self.store.create(mail, values, limits=self.limits.ceilings(who, self.account))
