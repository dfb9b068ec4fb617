"""POST /api/login and POST /api/logout."""

from __future__ import annotations

import contextlib

import falcon

from iredldap.model import passwords, validators
from iredldap.config import Settings
from iredldap.db.iredadmin import IredadminDB
from iredldap.directory.admins import AdminStore
from iredldap.db.login_throttle import ATTEMPT_MSG, LoginThrottle, ThrottleRules
from iredldap.errors import InvalidInput, LoginFailed, TooManyAttempts
from iredldap.model.params import Operation, Param, ParamSet, Secret, Text
from iredldap.db.sessions import SessionStore
from iredldap.web.common import client_ip, ok, read_params

LOGIN_PARAMS = ParamSet((
    Param("username", Text(320, allow_empty=False), "Admin's full email address", required=True),
    Param("password", Secret(), "Admin's password", required=True),
))


class Login:
    operations = {"POST": Operation("Log in: sets the session cookie", LOGIN_PARAMS)}

    def __init__(self, settings: Settings, admins: AdminStore, sessions: SessionStore, db: IredadminDB):
        self.settings = settings
        self.admins = admins
        self.sessions = sessions
        self.db = db
        self.throttle = LoginThrottle(db, ThrottleRules(
            max_failures=settings.login_max_failures,
            max_failures_per_address=settings.login_max_failures_per_address,
            window=settings.login_failure_window,
            backoff_start=settings.login_backoff_start,
            known_address_days=settings.login_known_address_days,
        ))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        ip = client_ip(req)
        values = read_params(req, self.operations["POST"])
        username = values["username"].strip().lower()
        try:
            # Only a valid address is looked up: anything else ("root",
            # "root@") is no admin, and would make a malformed DN.
            address = validators.email(username, param="username")
        except InvalidInput:
            address = ""
        # The account as counted: one spelling per account (Unicode and
        # punycode domain names alike), whatever the guesser types.
        account = address or username
        # Written before anything is checked (an attempt in progress), so
        # that attempts arriving at the same time count each other; made a
        # failure or a success, or removed, below.
        attempt = self.db.add_log(admin=account, ip=ip, event="login", loglevel="error", msg=ATTEMPT_MSG)
        try:
            wait = self.throttle.wait(account, ip, attempt_id=attempt)
            if wait:
                # Not checked, not counted (the row goes, below): the lock
                # stays as it was, and the answer tells nothing of the password.
                resp.set_header("Retry-After", str(wait))
                raise TooManyAttempts(f"too many failed logins for this account or from {ip}; "
                                      f"try again in {wait} seconds")
            found = self.admins.principal_for(address) if address else None
            stored = found[1].get("userPassword") if found else []
            if not found or not any(passwords.verify_password(values["password"], h) for h in stored):
                raise LoginFailed("wrong username or password, or not an active admin")
            principal = found[0]
            token = self.sessions.start(admin=principal.mail, dn=principal.dn, ip=ip)
        except LoginFailed:
            # The row stays: a failure.
            self.db.update_log(attempt, admin=account, loglevel="error", msg="[API] Login failed")
            raise
        except BaseException:
            # Throttled, or the directory or database down: no failed login.
            with contextlib.suppress(Exception):
                self.db.delete_log(attempt)
            raise
        self.db.update_log(attempt, admin=principal.mail, loglevel="info", msg="[API] Login")
        resp.set_cookie(self.settings.session_cookie_name, token, path="/", http_only=True,
                        secure=self.settings.session_cookie_secure, same_site="Strict")
        ok(resp)


class Logout:
    # Reads no parameters (whatever is sent is ignored, as it always was).
    operations = {"POST": Operation("Log out: ends the session and clears the cookie")}

    def __init__(self, settings: Settings, sessions: SessionStore):
        self.settings = settings
        self.sessions = sessions

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        # Logout needs no valid session (an expired cookie is still cleared),
        # so the access layer has not looked the session up: do it here.
        token = req.cookies.get(self.settings.session_cookie_name)
        session = self.sessions.resolve(token) if token else None
        if session is not None:
            self.sessions.end(session)
        resp.unset_cookie(self.settings.session_cookie_name, path="/")
        ok(resp)
