"""A stand-in for mlmmjadmin 3.6.3's HTTP API (reference mlmmj.md 3), for
the tests of the `mlmmjadmin` backend.

A WSGI application (wsgiref, one thread, 127.0.0.1 on a free port) that
answers the routes of mlmmjadmin as the reference describes them: its
always-200 JSON envelope and `_msg` values, the token check, HTML 404 for
a URL no route matches and 405 (with `Allow:`) for a method a route does
not take, and its lenient input (unknown names dropped, flags other than
yes/no ignored, invalid addresses dropped, `email_only` counted when merely
present).  The lists live in a real `LocalSpool` under a temporary folder,
so the files it leaves can be compared with the local backend's.

Every request is recorded (`Recorded`: method, path, query, headers, form)
before it is answered.  `stop()` closes the port (a refused connection);
`garbage = True` makes every answer a 200 that is not JSON; `status` set to
e.g. 503 answers that status; `canned` (an envelope) answers every request
of a route with it; `fail(method, path)` may answer one request with an
envelope of its own (a refusal half-way through a sequence).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from iredldap.errors import InvalidInput, NoSuchAccount
from iredldap.mlmmj import SUBSCRIPTION_KINDS
from iredldap.mlmmj.spool import LocalSpool
from iredldap.model import mlmmj_profile as mp
from iredldap.model import validators

HEADER = "X-MLMMJADMIN-API-AUTH-TOKEN"
_ENVIRON_HEADER = "HTTP_" + HEADER.replace("-", "_")
# mlmmjadmin's address pattern in its routes.
_MAIL = r"[\w\-#][\w\-.+=/&#]*@[\w\-.]+\.[a-zA-Z0-9\-]{2,15}"
FILE_NOT_FOUND = "FileNotFoundError(2, 'No such file or directory')"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]

    def token(self) -> str | None:
        return self.headers.get(HEADER.lower())


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def _valid(address: str) -> str | None:
    try:
        return validators.email(address)
    except InvalidInput:
        return None


def _split(value: str) -> list[str]:
    return [item for item in value.replace(" ", "").split(",") if item]


def _lenient(form: dict[str, str]) -> dict[str, str]:
    """What mlmmjadmin keeps of a profile form: known names, yes/no flags,
    valid addresses in the checked lists, a number or nothing as size."""
    kept: dict[str, str] = {}
    for key, value in form.items():
        name = mp.ALIASES.get(key, key)
        param = mp.BY_NAME.get(name)
        if param is None:
            continue
        if param.kind == "boolean" and value not in ("yes", "no"):
            continue
        if param.addresses:
            value = ",".join(a for a in (_valid(i) for i in _split(value)) if a)
        if name == "max_message_size" and not value.strip().isdigit():
            value = ""
        kept[name] = value
    return kept


@dataclass
class FakeMlmmjadmin:
    spool: LocalSpool
    tokens: tuple[str, ...] = ("fake-token-0123456789",)
    requests: list[Recorded] = field(default_factory=list)
    garbage: bool = False
    status: int = 200
    # An envelope given to every matched, authorised request instead of its own answer.
    canned: dict | None = None
    # fail(method, path) -> an envelope answered instead of handling the request
    # (None: handled), for failures half-way through a sequence of requests.
    fail: Callable[[str, str], dict | None] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._routes: list[tuple[re.Pattern, dict[str, Callable[..., Any]]]] = [
            (re.compile(rf"/api/subscriber/(?P<addr>{_MAIL})/subscribed"), {"GET": self.subscribed}),
            (re.compile(rf"/api/subscriber/(?P<addr>{_MAIL})/subscribe"), {"POST": self.subscribe}),
            (re.compile(rf"/api/(?P<mail>{_MAIL})/has_subscriber/(?P<addr>{_MAIL})"), {"GET": self.has_subscriber}),
            (re.compile(rf"/api/(?P<mail>{_MAIL})/subscribers"),
             {"GET": self.get_subscribers, "POST": self.post_subscribers}),
            (re.compile(rf"/api/(?P<mail>{_MAIL})/(?P<role>owners|moderators)"),
             {"GET": self.get_role, "PUT": self.put_role}),
            (re.compile(rf"/api/(?P<mail>{_MAIL})"),
             {"GET": self.get_profile, "POST": self.create, "PUT": self.update, "DELETE": self.delete}),
        ]

    # -- running ----------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def token(self) -> str:
        return self.tokens[0]

    def start(self) -> "FakeMlmmjadmin":
        self._server = make_server("127.0.0.1", 0, self.app, handler_class=_Quiet)
        self.port = self._server.server_address[1]
        # stop() waits for the serving loop to see the request at its next
        # poll: a short interval keeps each test's teardown from waiting for it.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.005},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def recorded(self) -> list[Recorded]:
        with self._lock:
            return list(self.requests)

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- WSGI ----------------------------------------------------------------------

    def app(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).decode("utf-8") if length else ""
        form = dict(parse_qsl(body, keep_blank_values=True))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        with self._lock:
            self.requests.append(Recorded(method, path, query, headers, form))
        if self.garbage:
            return self._send(start_response, "200 OK", "text/html", b"<html>Internal things</html>")
        if self.status != 200:
            return self._send(start_response, f"{self.status} Oops", "text/html", b"oops")
        for pattern, handlers in self._routes:
            match = pattern.fullmatch(path)
            if not match:
                continue
            if method not in handlers:
                return self._send(start_response, "405 Method Not Allowed", "text/html", b"method not allowed",
                                  [("Allow", ", ".join(handlers))])
            failed = self.fail(method, path) if self.fail is not None else None
            answer = self._authorised(environ) or self.canned or failed or self._handle(
                handlers[method], match.groupdict(), {**query, **form})
            return self._send(start_response, "200 OK", "application/json", json.dumps(answer).encode())
        return self._send(start_response, "404 Not Found", "text/html", b"not found")

    @staticmethod
    def _send(start_response, status: str, content_type: str, body: bytes, extra=()):
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra])
        return [body]

    def _authorised(self, environ) -> dict | None:
        token = environ.get(_ENVIRON_HEADER, "")
        if not token:
            return {"_success": False, "_msg": "NO_API_AUTH_TOKEN"}
        if token not in self.tokens:
            return {"_success": False, "_msg": "INVALID_MLMMJADMIN_API_AUTH_TOKEN"}
        return None

    @staticmethod
    def _handle(handler, parts: dict[str, str], form: dict[str, str]) -> dict:
        parts = {k: v.lower() for k, v in parts.items()}
        try:
            data = handler(form=form, **parts)
        except NoSuchAccount:
            return {"_success": False, "_msg": FILE_NOT_FOUND}
        except Exception as exc:     # mlmmjadmin answers repr() of any exception
            return {"_success": False, "_msg": repr(exc)}
        if isinstance(data, dict) and "_success" in data:
            return data
        return {"_success": True} if data is None else {"_success": True, "_data": data}

    # -- profile ------------------------------------------------------------------------

    def get_profile(self, mail: str, form: dict[str, str]):
        if not self.spool.exists(mail):
            return {"_success": False, "_msg": "NO_SUCH_ACCOUNT"}
        profile = self.spool.profile(mail)
        wanted = [k for k in form.get("params", "").lower().replace(" ", "").split(",") if k in profile]
        return {k: profile[k] for k in wanted} if wanted else profile

    def create(self, mail: str, form: dict[str, str]):
        if _valid(mail) is None:
            return {"_success": False, "_msg": "INVALID_EMAIL"}
        if "owner" not in form:       # the create default is keyed on `owner` (reference 3.10)
            form.pop("owners", None)
        self.spool.create(mail, _lenient(form))
        return None

    def update(self, mail: str, form: dict[str, str]):
        kept = _lenient(form)
        if all(mp.BY_NAME[k].kind == "boolean" and v == "no" for k, v in kept.items()) \
                and not self.spool.exists(mail):
            return None       # only deletions: they "succeed" on a missing list
        self.spool.update(mail, kept)
        return None

    def delete(self, mail: str, form: dict[str, str]):
        return self.spool.delete(mail, archive=form.get("archive", "yes") != "no")

    # -- owners and moderators --------------------------------------------------------

    def _control(self, mail: str, role: str) -> Path:
        return self.spool.list_dir(mail) / "control" / ("owner" if role == "owners" else "moderators")

    def get_role(self, mail: str, role: str, form: dict[str, str]):
        if not self.spool.exists(mail):
            return {"_success": False, "_msg": "NO_SUCH_ACCOUNT"}
        path = self._control(mail, role)
        lines = path.read_text().splitlines() if path.exists() else []
        return sorted(line.strip().lower() for line in lines if line.strip())

    def put_role(self, mail: str, role: str, form: dict[str, str]):
        path = self._control(mail, role)
        if role in form:
            values = _split(form[role])
        else:
            current = path.read_text().splitlines() if path.exists() else []
            values = [v for v in current if v] + _split(form.get(f"add_{role}", ""))
            values = [v for v in dict.fromkeys(values) if v not in _split(form.get(f"remove_{role}", ""))]
        path.write_text("\n".join(values) + "\n")
        return None

    # -- subscribers -----------------------------------------------------------------------

    def get_subscribers(self, mail: str, form: dict[str, str]):
        found = self.spool.subscribers(mail)
        if "email_only" in form:
            return sorted(s.mail for s in found)
        return [{"mail": s.mail, "subscription": s.subscription} for s in found]

    def post_subscribers(self, mail: str, form: dict[str, str]):
        kind = form.get("subscription", "normal")
        kind = kind if kind in SUBSCRIPTION_KINDS else "normal"
        adds = [a for a in (_valid(i) for i in _split(form.get("add_subscribers", ""))) if a]
        removes = _split(form.get("remove_subscribers", ""))
        if not self.spool.exists(mail) and (adds or removes):
            raise NoSuchAccount(mail)
        if adds:
            self.spool.add_subscribers(mail, adds, subscription=kind,  # type: ignore[arg-type]
                                       require_confirm=form.get("require_confirm") == "yes")
        if removes:
            self.spool.remove_subscribers(mail, ["ALL"] if removes == ["ALL"]
                                          else [a for a in (_valid(i) for i in removes) if a])
        return None

    def has_subscriber(self, mail: str, addr: str, form: dict[str, str]):
        for s in self.spool.subscribers(mail):
            if s.mail == addr:
                return s.subscription
        return {"_success": False}

    def subscribed(self, addr: str, form: dict[str, str]):
        domain = addr.rpartition("@")[2]
        folders = [self.spool.spool_dir / domain] if form.get("query_all_lists") != "yes" \
            else sorted(p for p in self.spool.spool_dir.iterdir() if p.is_dir())
        found = []
        for folder in folders:
            for listdir in sorted(folder.iterdir()) if folder.is_dir() else ():
                mail = f"{listdir.name}@{folder.name}"
                for s in self.spool.subscribers(mail):
                    if s.mail == addr:
                        found.append({"subscription": s.subscription, "mail": mail})
        return [f["mail"] for f in found] if form.get("email_only") == "yes" else found

    def subscribe(self, addr: str, form: dict[str, str]):
        for mail in _split(form.get("lists", "")):
            self.post_subscribers(mail.lower(), {"add_subscribers": addr,
                                                 "subscription": form.get("subscription", "normal"),
                                                 "require_confirm": "no" if form.get("require_confirm") == "no"
                                                 else "yes"})
        return None
