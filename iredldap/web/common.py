"""What every responder shares: reading parameters, answering, who is asking."""

from __future__ import annotations

from typing import Any

import falcon

from iredldap.directory.admins import Principal
from iredldap.errors import InvalidInput
from iredldap.model.listing import Page
from iredldap.model.params import Operation, ParamSet
from iredldap.model.tenant_view import hide_foreign


_EMPTY = object()


def raw_params(req: falcon.Request) -> dict[str, Any]:
    """Query string and body (form-urlencoded or a JSON object), body winning."""
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
