"""Our exceptions → HTTP responses, in one table.

Every failure leaves as `{"_success": false, "_msg": CODE, "reason": ...}`
with an honest status.  Falcon's own errors (unknown route, wrong method,
malformed body) get the same envelope.
"""

from __future__ import annotations

import logging

import falcon

from iredldap import errors as e

log = logging.getLogger(__name__)

STATUS: dict[type[e.IredldapError], int] = {
    e.InvalidInput: 400,
    e.RequestTooLarge: 413,
    e.LoginRequired: 401,
    e.LoginFailed: 401,
    e.NotAuthorized: 403,
    e.LimitExceeded: 403,
    e.NoSuchAccount: 404,
    e.NotFound: 404,
    e.AlreadyExists: 409,
    e.Conflict: 409,
    e.TooManyAttempts: 429,
    e.DirectoryUnavailable: 503,
    e.DatabaseUnavailable: 503,
    e.ListSpoolUnavailable: 503,
    # mlmmjadmin answered, but with a failure we have no better status for.
    e.ListSpoolError: 502,
    e.DirectoryError: 500,
    e.DatabaseError: 500,
    e.IredldapError: 500,
}


def status_of(exc: e.IredldapError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def envelope(code: str, reason: str, **extra) -> dict:
    body = {"_success": False, "_msg": code, "reason": reason}
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def _public_details(exc: e.IredldapError) -> dict:
    # Only names of parameters go back to the client; never values.
    return {k: v for k, v in exc.details.items() if k in ("param", "params")}


def handle_ours(req: falcon.Request, resp: falcon.Response, exc: e.IredldapError, params) -> None:
    status = status_of(exc)
    if status >= 500:
        log.error("%s %s failed: %s: %s", req.method, req.path, exc.code, exc.reason)
    resp.status = status
    resp.media = envelope(exc.code, exc.reason or exc.code, **_public_details(exc))
    if isinstance(exc, e.LoginRequired):
        # Cookie sessions have no standard challenge; Bearer tokens do.
        resp.set_header("WWW-Authenticate", 'Bearer realm="iredldap"')


_FALCON_CODES = {
    400: "INVALID_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def handle_http(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError, params) -> None:
    code = int(exc.status_code)
    resp.status = code
    if exc.headers:
        resp.set_headers(exc.headers)
    reason = exc.description or exc.title or ""
    resp.media = envelope(_FALCON_CODES.get(code, f"HTTP_{code}"), reason)


def handle_unexpected(req: falcon.Request, resp: falcon.Response, exc: Exception, params) -> None:
    log.exception("unexpected error in %s %s", req.method, req.path)
    resp.status = 500
    resp.media = envelope("INTERNAL_ERROR", "unexpected server error; see the service log")


def install(app: falcon.App) -> None:
    # Falcon picks the most specific handler, whatever the order of adding.
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http)
    app.add_error_handler(e.IredldapError, handle_ours)
