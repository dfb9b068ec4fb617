"""The service's own error vocabulary.

Stores and validators raise these; they know nothing about HTTP.  The web
layer maps each class to a status code in exactly one table
(`iredldap.web.errors`).  Every error carries an iRedAdmin-style code
(the `_msg` of the JSON envelope) and a human-readable reason.
"""

from __future__ import annotations


class IredldapError(Exception):
    """Base class.  `code` is what clients see in `_msg`."""

    code = "INTERNAL_ERROR"

    def __init__(self, reason: str = "", *, code: str | None = None, **details):
        super().__init__(reason or self.code)
        self.reason = reason
        if code:
            self.code = code
        self.details = details


# -- bad input (400) -------------------------------------------------------

class InvalidInput(IredldapError):
    """A parameter (or a part of the URL) has a value we cannot accept."""

    code = "INVALID_PARAMETER"


class UnknownParameters(InvalidInput):
    code = "UNKNOWN_PARAMETERS"


class ConflictingParameters(InvalidInput):
    code = "CONFLICTING_PARAMETERS"


class MissingParameter(InvalidInput):
    code = "MISSING_PARAMETER"


class RequestTooLarge(IredldapError):
    """The request body is over MAX_REQUEST_BODY; refused unread."""

    code = "REQUEST_TOO_LARGE"


# -- who you are and what you may do ----------------------------------------

class LoginRequired(IredldapError):
    code = "LOGIN_REQUIRED"


class LoginFailed(IredldapError):
    code = "INVALID_CREDENTIALS"


class NotAuthorized(IredldapError):
    code = "NOT_AUTHORIZED"


class LimitExceeded(IredldapError):
    """A domain or admin limit (numberOfUsers, maxDomains, ...) is reached."""

    code = "EXCEEDED_LIMIT"


class TooManyAttempts(IredldapError):
    code = "TOO_MANY_LOGIN_FAILURES"


# -- state of the directory -------------------------------------------------

class NoSuchAccount(IredldapError):
    code = "NO_SUCH_ACCOUNT"


class AlreadyExists(IredldapError):
    code = "ALREADY_EXISTS"


class Conflict(IredldapError):
    """The request clashes with the current state (not a duplicate name)."""

    code = "CONFLICT"


class ValueAlreadyPresent(Conflict):
    """An attribute value to add is there already (someone else was quicker)."""

    code = "ALREADY_EXISTS"


class ValueMissing(Conflict):
    """An attribute value to delete is not there (someone else was quicker)."""

    code = "NO_SUCH_VALUE"


class NotFound(IredldapError):
    """A URL that does not exist (or an API that is switched off)."""

    code = "NOT_FOUND"


# -- backends ---------------------------------------------------------------

class DirectoryUnavailable(IredldapError):
    code = "DIRECTORY_UNAVAILABLE"
    # True when a request went out and no answer came back (a timeout, a
    # connection cut while waiting): a write may have landed all the same.
    maybe_landed = False


class DatabaseUnavailable(IredldapError):
    code = "DATABASE_UNAVAILABLE"


class DirectoryError(IredldapError):
    """An LDAP failure that is nobody's input error: a bug or a broken server."""

    code = "DIRECTORY_ERROR"


class DatabaseError(IredldapError):
    code = "DATABASE_ERROR"


class ConfigError(IredldapError):
    """A setting is missing or wrong; start-up stops with one line naming it."""

    code = "CONFIG_ERROR"


class ListSpoolUnavailable(IredldapError):
    """The mlmmj side of subscribable lists (mlmmjadmin or the local spool)
    cannot be used now."""

    code = "MLMMJ_UNAVAILABLE"


class ListSpoolError(IredldapError):
    """mlmmjadmin (or the spool) refused or failed an operation."""

    code = "MLMMJ_ERROR"
