"""POST /api/login and POST /api/logout."""

from __future__ import annotations

from datetime import timedelta

import falcon

from .. import passwords, validators
from ..config import Settings
from ..db.iredadmin import IredadminDB
from ..directory.admins import AdminStore
from ..errors import InvalidInput, LoginFailed, TooManyAttempts
from ..params import Operation, Param, ParamSet, Secret, Text
from ..sessions import SessionStore
from .common import client_ip, ok, read_params

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

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        ip = client_ip(req)
        # The database's clock, the one that stamps the log rows being counted.
        since = self.db.now() - timedelta(seconds=self.settings.login_failure_window)
        failures = self.db.count_log(ip=ip, event="login", loglevel="error", since=since)
        if failures >= self.settings.login_max_failures:
            resp.set_header("Retry-After", str(self.settings.login_failure_window))
            raise TooManyAttempts(f"too many failed logins from {ip}; try again later")
        values = read_params(req, self.operations["POST"])
        username = values["username"].strip().lower()
        try:
            # Only a valid address is looked up: anything else ("root",
            # "root@") is no admin, and would make a malformed DN.
            address = validators.email(username, param="username")
        except InvalidInput:
            address = ""
        found = self.admins.principal_for(address) if address else None
        stored = found[1].get("userPassword") if found else []
        if not found or not any(passwords.verify_password(values["password"], h) for h in stored):
            self.db.add_log(admin=username, ip=ip, event="login", loglevel="error", msg="[API] Login failed")
            raise LoginFailed("wrong username or password, or not an active admin")
        principal = found[0]
        token = self.sessions.start(admin=principal.mail, dn=principal.dn, ip=ip)
        self.db.add_log(admin=principal.mail, ip=ip, event="login", msg="[API] Login")
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
