"""The `mlmmjadmin` backend: iRedMail's mlmmjadmin HTTP API (v3.6.3,
reference mlmmj.md 3), the way iRedAdmin-Pro uses it.

Routes under the base URL (`MLMMJADMIN_API_BASE_URL`, `.../api`):
`GET|POST|PUT|DELETE /<mail>` (profile; DELETE `?archive=yes|no`),
`GET|POST /<mail>/subscribers` (`add_subscribers`, `remove_subscribers`,
`subscription`, `require_confirm=yes|no`).  Forms are
`application/x-www-form-urlencoded`; GET and DELETE take the query string.
The token goes in the header `MLMMJADMIN_API_AUTH_HEADER`.

mlmmjadmin answers 200 whatever happened, with `{"_success": ..., "_data"
| "_msg": ...}`.  Its `_msg` values become our errors: `NO_SUCH_ACCOUNT` (and
the `FileNotFoundError(...)` a change of a missing list gives) ->
NoSuchAccount, `INVALID_EMAIL` -> InvalidInput, the token and client
checks and anything else -> ListSpoolError.  No answer (connection refused,
timeout), a 5xx, or an answer that is not its JSON envelope ->
ListSpoolUnavailable (its `details["maybe_landed"]` says whether a
change may have been made all the same: a timeout or a cut connection
after a POST/PUT/DELETE went out).  404/405 (no such route: a wrong base
URL) -> ListSpoolError.

Values are checked here before anything is sent (`check_form`, the list
and subscriber addresses), so a value mlmmjadmin would drop without a word
is an InvalidInput instead, as with the local spool.
"""

from __future__ import annotations

import functools
import http.client
import json
import socket
import ssl
import urllib.error
import urllib.request
from typing import Any, Mapping, Sequence
from urllib.parse import quote, urlencode

from iredldap.errors import AlreadyExists, InvalidInput, ListSpoolError, ListSpoolUnavailable, NoSuchAccount
from iredldap.mlmmj import SUBSCRIPTION_KINDS, Subscriber, SubscriptionKind, resubscribe
from iredldap.mlmmj.spool import list_address, subscriber_addresses, subscription_kind
from iredldap.model import json_text
from iredldap.model import mlmmj_profile as mp

DEFAULT_BASE_URL = "http://127.0.0.1:7790/api"
DEFAULT_HEADER = "X-MLMMJADMIN-API-AUTH-TOKEN"
# The `_msg` of mlmmjadmin's access checks (reference 3.2).
AUTH_MESSAGES = ("NOT_AUTHORIZED_API_CLIENT", "NO_API_AUTH_TOKEN", "INVALID_MLMMJADMIN_API_AUTH_TOKEN")
# mlmmjadmin's address pattern of its routes (controllers/urls.py, reference
# 3.3), on the addresses our own validators accept: anything else would be a 404.
_ROUTE_LOCAL = mp.LIST_LOCAL_PART
# Asked by `ping`: a list nobody has (an answer NO_SUCH_ACCOUNT says mlmmjadmin
# is there and takes our token).
PING_ADDRESS = "iredldap-ping@ping.invalid"


@functools.cache
def _tls_context(verify: bool) -> ssl.SSLContext:
    """One TLS context per process and kind: loading the system's CA
    certificates takes ~20 ms of CPU, which every client (every app a
    worker or a test makes) paid again.  A context is safe to share between
    threads once set up."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx answer stays an HTTPError (see MlmmjadminClient._call)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0913 - urllib's signature
        return None


class MlmmjadminClient:
    """ListSpool over mlmmjadmin's HTTP API (see the module doc)."""

    def __init__(self, base_url: str = DEFAULT_BASE_URL, token: str = "", header: str = DEFAULT_HEADER,
                 verify_ssl: bool = False, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.header = header
        self.timeout = timeout
        self.verify_ssl = verify_ssl
        self._made_opener: urllib.request.OpenerDirector | None = None

    @property
    def _opener(self) -> urllib.request.OpenerDirector:
        # Made at the first request.  No proxy from the environment:
        # mlmmjadmin is a local service.  No redirects: urllib would send the
        # token (and the form) on to wherever the answer points; mlmmjadmin
        # never redirects -- so an http:// API (iRedMail's) never meets TLS
        # and needs no context.
        if self._made_opener is None:
            handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({}), _NoRedirect()]
            if self.base_url.lower().startswith("https:"):
                handlers.append(urllib.request.HTTPSHandler(context=_tls_context(self.verify_ssl)))
            self._made_opener = urllib.request.build_opener(*handlers)
        return self._made_opener

    # -- one request ----------------------------------------------------------------

    def _url(self, mail: str, suffix: str = "") -> str:
        return f"{self.base_url}/{quote(mail, safe='@')}{suffix}"

    def _call(self, method: str, url: str, form: Mapping[str, str] | None = None) -> Any:
        """`_data` of a successful answer; our error for any other."""
        body = None
        headers = {self.header: self.token, "Accept": "application/json"}
        if form is not None and method in ("GET", "DELETE"):
            url += "?" + urlencode(form)
        elif form is not None:
            body = urlencode(form).encode("utf-8")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                raw = answer.read(16 * 1024 * 1024)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code >= 500:
                raise ListSpoolUnavailable(f"mlmmjadmin answered {exc.code} to {method} {url}") from None
            if 300 <= exc.code < 400:
                raise ListSpoolError(f"mlmmjadmin answered {method} {url} with a redirect ({exc.code}), "
                                     "not followed; check MLMMJADMIN_API_BASE_URL", status=exc.code) from None
            raise ListSpoolError(f"mlmmjadmin has no {method} {url} ({exc.code}); check MLMMJADMIN_API_BASE_URL",
                                 status=exc.code) from None
        except (urllib.error.URLError, http.client.HTTPException, socket.timeout, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            # Refused or unresolvable: nothing reached mlmmjadmin.  A timeout or
            # a cut connection: a change may have been made all the same.
            refused = isinstance(reason, (ConnectionRefusedError, socket.gaierror))
            raise ListSpoolUnavailable(f"mlmmjadmin at {self.base_url} cannot be reached: {reason}",
                                       maybe_landed=method != "GET" and not refused) from None
        try:
            envelope = json_text.loads(raw)
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("_success"), bool):
            raise ListSpoolUnavailable(f"mlmmjadmin's answer to {method} {url} is not its JSON envelope")
        if envelope["_success"]:
            return envelope.get("_data")
        raise _error_of(envelope.get("_msg"), method, url)

    def _require(self, mail: str) -> None:
        if not self.exists(mail):
            raise NoSuchAccount(f"mailing list {mail} has no mlmmj directory", mail=mail)

    # -- the ListSpool interface -----------------------------------------------------

    def create(self, mail: str, profile: Mapping[str, str]) -> None:
        address = _route_address(mail)
        self._call("POST", self._url(address), mp.check_form(profile))

    def update(self, mail: str, profile: Mapping[str, str]) -> None:
        address = _listed_address(mail)
        form = mp.check_form(profile)
        # mlmmjadmin reports a missing list only when a file write fails:
        # a form that only removes files (or is empty) would "succeed".
        if all(mp.BY_NAME[k].kind == "boolean" and v == "no" for k, v in form.items()):
            self._require(address)
            if not form:
                return
        self._call("PUT", self._url(address), form)

    def profile(self, mail: str) -> dict[str, str | list[str]]:
        data = self._call("GET", self._url(_listed_address(mail)))
        if not isinstance(data, dict):
            raise ListSpoolUnavailable("mlmmjadmin's profile answer holds no profile")
        return data

    def exists(self, mail: str) -> bool:
        try:
            self._call("GET", self._url(_listed_address(mail)), {"params": "name"})
        except NoSuchAccount:
            return False
        return True

    def delete(self, mail: str, *, archive: bool) -> str | None:
        try:
            _listed_address(mail)
        except NoSuchAccount:
            return None     # a list mlmmjadmin cannot have: nothing to delete
        data = self._call("DELETE", self._url(_listed_address(mail)), {"archive": "yes" if archive else "no"})
        return data if isinstance(data, str) and data else None

    def rename(self, mail: str, new_mail: str) -> None:
        """mlmmjadmin has no rename: the new list is made with the old one's
        profile and subscribers (added without confirmation), then the old
        one is deleted with archive=yes -- its archived posts stay in
        mlmmjadmin's archive directory, they do not move to the new list.
        A failure before the old list is gone removes the new one again."""
        old, new = _listed_address(mail), _route_address(new_mail, "new_mail")
        if old == new:
            return
        profile = self.profile(old)
        if self.exists(new):
            raise AlreadyExists(f"mailing list {new} has an mlmmj directory already", mail=new)
        subscribers = self.subscribers(old)
        self.create(new, mp.form_of_profile(profile))
        try:
            resubscribe(self, new, subscribers)
        except BaseException:
            self._take_back(new)
            raise
        try:
            self.delete(old, archive=True)
        except (ListSpoolError, ListSpoolUnavailable) as failure:
            # Refused, or no answer (it may have been done all the same): if the
            # old list is still there, the new one goes again and nothing moved;
            # if it is gone, the move is done.  Unknown: both stay, reported.
            try:
                still = self.exists(old)
            except (ListSpoolError, ListSpoolUnavailable):
                raise failure from None
            if still:
                self._take_back(new)
                raise

    def _take_back(self, new: str) -> None:
        """Remove a list `rename` made, as far as mlmmjadmin lets us."""
        try:
            self.delete(new, archive=False)
        except (ListSpoolError, ListSpoolUnavailable):
            pass

    def subscribers(self, mail: str) -> list[Subscriber]:
        try:
            _listed_address(mail)
        except NoSuchAccount:
            return []       # as mlmmjadmin answers for a list it does not have
        data = self._call("GET", self._url(_listed_address(mail), "/subscribers"))
        if not isinstance(data, list):
            raise ListSpoolUnavailable("mlmmjadmin's subscriber answer is not a list")
        found = []
        for item in data:
            if not isinstance(item, dict) or not isinstance(item.get("mail"), str):
                raise ListSpoolUnavailable("mlmmjadmin's subscriber answer holds something else than subscribers")
            kind = item.get("subscription")
            found.append(Subscriber(item["mail"], kind if kind in SUBSCRIPTION_KINDS else "normal"))
        return found

    def add_subscribers(self, mail: str, addresses: Sequence[str], *,
                        subscription: SubscriptionKind = "normal", require_confirm: bool = False) -> None:
        kind = subscription_kind(subscription)
        wanted = subscriber_addresses(addresses, "add_subscribers")
        address = _listed_address(mail)
        if not wanted:
            self._require(address)
            return
        self._call("POST", self._url(address, "/subscribers"),
                   {"add_subscribers": ",".join(wanted), "subscription": kind,
                    "require_confirm": "yes" if require_confirm else "no"})

    def remove_subscribers(self, mail: str, addresses: Sequence[str]) -> None:
        remove_all = list(addresses) == ["ALL"]
        unwanted = ["ALL"] if remove_all else subscriber_addresses(addresses, "remove_subscribers")
        address = _listed_address(mail)
        if not unwanted:
            self._require(address)
            return
        self._call("POST", self._url(address, "/subscribers"), {"remove_subscribers": ",".join(unwanted)})

    def ping(self) -> None:
        try:
            self._call("GET", self._url(PING_ADDRESS), {"params": "name"})
        except NoSuchAccount:
            pass


def _route_address(mail: str, param: str = "mail") -> str:
    """A list address our validators accept and mlmmjadmin's routes match."""
    address, local, domain = list_address(mail, param)
    if not _ROUTE_LOCAL.fullmatch(local) or not 2 <= len(domain.rpartition(".")[2]) <= 15:
        raise InvalidInput(f"{param}: mlmmjadmin does not take the list address {address!r}",
                           code="INVALID_MAIL", param=param)
    return address


def _listed_address(mail: str) -> str:
    """The address of a list that is to exist already: one mlmmjadmin's routes
    cannot match (an entry made by an import, or before the address rule)
    is a list it cannot have -- NoSuchAccount, not a bad request, so that
    the entry can still be shown, listed and deleted.  An address that is
    no address (a path escape ...) stays InvalidInput."""
    list_address(mail)
    try:
        return _route_address(mail)
    except InvalidInput:
        raise NoSuchAccount(f"mailing list {mail!r}: mlmmjadmin cannot have a list at this address",
                            mail=mail) from None


def _error_of(message: Any, method: str, url: str) -> Exception:
    text = message if isinstance(message, str) else ""
    where = f"mlmmjadmin refused {method} {url}"
    if text == "NO_SUCH_ACCOUNT" or text.startswith("FileNotFoundError("):
        return NoSuchAccount(f"{where}: the list has no mlmmj directory ({text})", mlmmjadmin_msg=text)
    if text == "INVALID_EMAIL":
        return InvalidInput(f"{where}: invalid email address", code="INVALID_MAIL", mlmmjadmin_msg=text)
    if text in AUTH_MESSAGES:
        return ListSpoolError(f"{where}: {text} (check MLMMJADMIN_API_AUTH_TOKEN / MLMMJADMIN_API_AUTH_HEADER "
                              "and mlmmjadmin's api_auth_tokens)", mlmmjadmin_msg=text)
    return ListSpoolError(f"{where}: {text or 'no reason given'}", mlmmjadmin_msg=text)
