"""The one door to the LDAP server.

`Directory` owns the ldap3 connections (one per thread, since gunicorn may
run threaded workers), translates every ldap3 failure into our own
exceptions in `_translated()`, and offers the handful of operations the
stores need.  `Batch` groups several writes so that a failure part-way undoes
the writes already made: OpenLDAP has no multi-entry transactions that ldap3
can use, so atomicity is by compensation.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import ldap3
from ldap3.core import exceptions as lx

from iredldap.config import split_ldap_uris
from iredldap.errors import (AlreadyExists, DirectoryError, DirectoryUnavailable, InvalidInput, IredldapError,
                      NoSuchAccount, ValueAlreadyPresent, ValueMissing)
from iredldap.metrics import count_error, count_failover
from iredldap.directory.decoding import lean_reads, search as send_search
from iredldap.directory.encoding import NotLean
from iredldap.directory.mock import POST_READ, lean

if TYPE_CHECKING:      # the journal module imports this one
    from iredldap.directory.journal import WriteJournal

log = logging.getLogger(__name__)

BASE, LEVEL, SUBTREE = ldap3.BASE, ldap3.LEVEL, ldap3.SUBTREE
ADD, DELETE, REPLACE = ldap3.MODIFY_ADD, ldap3.MODIFY_DELETE, ldap3.MODIFY_REPLACE
# Increment (RFC 4525): the server changes the number atomically.
INCREMENT = ldap3.MODIFY_INCREMENT

# Attribute values are lists of str; `Changes` is ldap3's modify format
# {attr: [(operation, [values])]}.
Attrs = dict[str, list[str]]
Changes = dict[str, list[tuple[str, list[str]]]]

_UNAVAILABLE = (lx.LDAPSocketOpenError, lx.LDAPSocketReceiveError, lx.LDAPSocketSendError,
                lx.LDAPSessionTerminatedByServerError, lx.LDAPCommunicationError,
                lx.LDAPStartTLSError, lx.LDAPBusyResult, lx.LDAPUnavailableResult)
# Sent, but no answer: the operation may have been carried out.
_NO_ANSWER = (lx.LDAPSocketReceiveError, lx.LDAPSessionTerminatedByServerError, lx.LDAPResponseTimeoutError)
# ldap3 decodes what the socket gave it without guarding against a message cut
# off by a dying server: the decoder then fails with a plain KeyError or
# IndexError (seen: KeyError (1, 0) while binding to a slapd being stopped).
_DECODER_FAILURES = (KeyError, IndexError, ValueError, TypeError)
_LDAP3_DIRS = tuple(os.path.dirname(m.__file__) + os.sep for m in (ldap3,))
_BAD_VALUE = (lx.LDAPInvalidAttributeSyntaxResult, lx.LDAPConstraintViolationResult,
              lx.LDAPInvalidDNSyntaxResult, lx.LDAPInvalidDnError)


def _context_csns(conn: ldap3.Connection, base: str) -> dict[str, str]:
    """serverID -> the newest change CSN a server has of `base` (its contextCSN)."""
    conn.search(base, "(objectClass=*)", search_scope=BASE, attributes=["contextCSN"])
    csns: dict[str, str] = {}
    for r in conn.response:
        for value in r.get("raw_attributes", {}).get("contextCSN", []):
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
            parts = text.split("#")
            if len(parts) == 4:
                csns[parts[2]] = max(csns.get(parts[2], ""), text)
    return csns


def _close_quietly(conn: ldap3.Connection) -> None:
    """Give back the socket of a connection that failed to bind."""
    try:
        conn.unbind()
    except Exception:   # noqa: BLE001 - it is broken already; only the socket matters
        pass


def _raised_inside_ldap3(exc: BaseException) -> bool:
    """True when the innermost frame of `exc` is ldap3's own code (its decoder)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename.startswith(_LDAP3_DIRS)


@dataclass
class Entry:
    dn: str
    attrs: Attrs

    def first(self, attr: str, default: str = "") -> str:
        values = self.get(attr)
        return values[0] if values else default

    def get(self, attr: str) -> list[str]:
        """Values of an attribute, whatever the case of its name."""
        values = self.attrs.get(attr)
        if values is not None:      # (as a rule the server spells it as we do)
            return values
        wanted = attr.lower()
        for name, values in self.attrs.items():
            if name.lower() == wanted:
                return values
        return []

    def has_value(self, attr: str, value: str) -> bool:
        return value.lower() in (v.lower() for v in self.get(attr))


def _as_text(values) -> list[str]:
    if not isinstance(values, (list, tuple)):
        values = [values]
    try:
        # (A server's values are all bytes: one decode each, no test.)
        return [v.decode("utf-8", "replace") for v in values]
    except AttributeError:
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]


@dataclass
class ServerState:
    """What this process knows of one directory server (shared by its threads)."""
    uri: str
    server: ldap3.Server
    up: bool | None = None          # None: not tried yet
    since: float = 0.0              # monotonic time of the last change of `up`
    retry_at: float = 0.0           # a down server is tried again from then on
    reason: str = ""                # why it is down
    behind: bool = False            # up, but had not caught up with the server in use


@dataclass
class _RequestScope:
    """The server one request (one thread) uses; see `Directory.begin_request`."""
    index: int | None = None        # the server of its first operation
    wrote: bool = False             # a write was sent to it


class Directory:
    """Connections and operations.  `server` lets tests use MOCK_SYNC.

    Several servers (`uri` a list, or a string of URIs separated by spaces
    or commas, as LDAP_URI) are used in the order given: every thread's
    connection goes to the first one that answers.  The policy:

    * A server that fails (cannot be reached, cuts a connection, refuses our
      bind) is marked down in this process; connections then go to the next
      listed one.  A down server is tried again `retry_interval` seconds
      later (by one thread; the others keep using the server they have), and
      when every server is down all are tried at once, so a single server
      that comes back is used at the next request.
    * Within one request (`begin_request()`, called by the web layer for each
      HTTP request, i.e. per thread) every operation goes to the server of
      its first operation: the request reads what it wrote.  If that server
      fails before the request wrote anything, the request goes on with the
      next server; once it wrote, it does not move (its batch could not be
      undone on a server that has not replicated its writes yet): its
      operations fail with DirectoryUnavailable and the write journal
      finishes the batch later, as with a single server.
    * Between requests a thread whose connection went to a later server goes
      back to an earlier one as soon as that one is known to be up again or
      its retry is due (the first listed is preferred).  With `sync_base`
      (the suffix; set by the service) it goes back only once the earlier
      server has caught up: its contextCSN of `sync_base` is, for every
      serverID, at least the one of the server in use; one that has not is
      asked again after `retry_interval`.  Across requests the replication
      decides what is seen: a request after a switch may, for the
      replication's delay, not see a write made just before on the other
      server.
    * Outside requests (the CLI, start-up) each operation may move to another
      server when its server fails.

    `servers()` tells each server's state (for /readyz) and `probe()` asks
    each of them; each move of a connection to another server is counted in
    iredldap_ldap_failovers_total.
    """

    def __init__(self, uri: str | Sequence[str], bind_dn: str, password: str, *, timeout: int = 10,
                 server: ldap3.Server | None = None, strategy: str = ldap3.SYNC,
                 retry_interval: float = 10.0, sync_base: str = ""):
        self.uris = split_ldap_uris(uri) if isinstance(uri, str) else tuple(uri)
        if not self.uris:
            raise ValueError("no directory server given")
        self.uri = " ".join(self.uris)
        self.bind_dn = bind_dn
        self._password = password
        self._timeout = timeout
        self.retry_interval = retry_interval
        self.sync_base = sync_base
        self._own_server = server is None
        if server is not None:
            self._states = [ServerState(self.uris[0], server)]
        else:
            self._states = [ServerState(u, self._new_server(u)) for u in self.uris]
        self._lock = threading.Lock()
        self._strategy = strategy
        self._local = threading.local()
        # The write journal (iredldap.directory.journal.WriteJournal), set by
        # the composition root; without it batches only compensate.
        self.journal: WriteJournal | None = None

    # -- connections --------------------------------------------------------

    @property
    def _server(self) -> ldap3.Server:
        """The first server (the only one of a MOCK_SYNC directory)."""
        return self._states[0].server

    def _new_server(self, uri: str) -> ldap3.Server:
        return ldap3.Server(uri, get_info=ldap3.NONE, connect_timeout=self._timeout)

    def begin_request(self) -> None:
        """A new request starts on this thread: it will use one server (see the
        class's doc); a connection left on a later server by an earlier
        request moves back to an earlier one that is up or due for a retry."""
        self._local.scope = _RequestScope()
        index = getattr(self._local, "index", None)
        conn = getattr(self._local, "conn", None)
        if not index or conn is None or conn.closed:
            return
        for earlier in self._earlier_usable(index):
            try:
                other = self._bound(earlier)
            except DirectoryUnavailable:     # marked down; this thread keeps its connection
                self._local.conn, self._local.moving_from = conn, None
                continue
            if self.sync_base and not self._caught_up(other, conn):
                self._behind(earlier)
                _close_quietly(other)
                continue
            with self._lock:
                self._states[earlier].behind = False
            self._local.conn, self._local.index = other, earlier
            count_failover(self._states[index].uri, self._states[earlier].uri)
            _close_quietly(conn)
            return
        self._local.index = index

    def _earlier_usable(self, index: int) -> list[int]:
        """Servers listed before `index` that are up (and not behind), or due
        for a retry (claimed by this thread)."""
        return self._usable(range(index))[0]

    def _usable(self, indexes: range) -> tuple[list[int], list[int]]:
        """Of `indexes`: those up (and not behind), untried or due for a retry,
        and the others.  A due retry is claimed by this thread: the others
        skip that server until the next interval."""
        now = time.monotonic()
        usable, others = [], []
        with self._lock:
            for i in indexes:
                state = self._states[i]
                if state.up is not False and not state.behind:
                    usable.append(i)
                elif now >= state.retry_at:
                    state.retry_at = now + self.retry_interval
                    usable.append(i)
                else:
                    others.append(i)
        return usable, others

    def _behind(self, index: int) -> None:
        state = self._states[index]
        with self._lock:
            if not state.behind:
                log.warning("directory server %s answers but has not caught up yet", state.uri)
            state.behind = True
            state.retry_at = time.monotonic() + self.retry_interval

    def _caught_up(self, candidate: ldap3.Connection, current: ldap3.Connection) -> bool:
        """Whether `candidate` has every change `current` has (contextCSN of
        sync_base, per serverID); False when either cannot tell."""
        try:
            wanted, have = _context_csns(current, self.sync_base), _context_csns(candidate, self.sync_base)
        except (lx.LDAPException, *_DECODER_FAILURES):
            return False
        return all(have.get(sid, "") >= csn for sid, csn in wanted.items())

    def _mark(self, index: int, up: bool, reason: str = "") -> None:
        state = self._states[index]
        now = time.monotonic()
        with self._lock:
            if state.up is not up:
                state.since = now
                if not up:
                    log.warning("directory server %s is down: %s", state.uri, reason)
                elif state.up is False:
                    log.warning("directory server %s answers again", state.uri)
            state.up = up
            state.reason = reason if not up else ""
            if not up:
                state.behind = False
                state.retry_at = now + self.retry_interval
                if self._own_server:
                    # ldap3 also marks a server address unusable for a few
                    # seconds; a new Server object lets a retry go out at once.
                    state.server = self._new_server(state.uri)

    def _order(self) -> list[int]:
        """Servers to try, in order: the usable ones as listed, then (last
        resort) the others, the soonest due first."""
        usable, others = self._usable(range(len(self._states)))
        return usable + sorted(others, key=lambda i: self._states[i].retry_at)

    def _forget_connection(self, reason: str = "it failed") -> None:
        """Drop this thread's connection after a failure of its server, and
        mark that server down."""
        self._local.conn = None
        index = getattr(self._local, "index", None)
        if index is not None:
            self._mark(index, False, reason)
            self._local.moving_from = index

    def _connection(self, *, write: bool = False) -> ldap3.Connection:
        scope: _RequestScope | None = getattr(self._local, "scope", None)
        conn = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed:
            if scope is not None:
                if scope.index is None:
                    scope.index = self._local.index
                scope.wrote = scope.wrote or write
            return conn
        if scope is not None and scope.wrote and scope.index is not None:
            # Read-your-writes: this request's writes are on that server alone,
            # so it may connect again to that one only.
            order = [scope.index]
        else:
            order = self._order()
        error: DirectoryUnavailable | None = None
        for index in order:
            try:
                conn = self._bound(index)
            except DirectoryUnavailable as exc:
                error = exc
                continue
            moved_from = getattr(self._local, "moving_from", None)
            if moved_from is not None and moved_from != index:
                count_failover(self._states[moved_from].uri, self._states[index].uri)
            self._local.moving_from = None
            self._local.conn = conn
            if scope is not None:
                scope.index = index
                scope.wrote = scope.wrote or write
            return conn
        assert error is not None
        raise error

    def _bound(self, index: int) -> ldap3.Connection:
        """A connection bound to server `index`; marks the server up or down."""
        self._local.index = index
        conn = self._new_connection(self._states[index].server)
        if self._strategy == ldap3.MOCK_SYNC:
            lean(conn)
        lean_reads(conn)   # (a SYNC connection's search results: decoding.py)
        try:
            with self._translated():
                conn.bind()
        except DirectoryUnavailable as exc:   # marked down by _forget_connection
            _close_quietly(conn)
            exc.reason = f"{self._states[index].uri}: {exc.reason}" if len(self._states) > 1 else exc.reason
            raise
        self._mark(index, True)
        return conn

    def _new_connection(self, server: ldap3.Server) -> ldap3.Connection:
        """Not bound yet."""
        return ldap3.Connection(server, user=self.bind_dn, password=self._password,
                                client_strategy=self._strategy, raise_exceptions=True,
                                receive_timeout=self._timeout, auto_referrals=False)

    def servers(self) -> list[ServerState]:
        """Copies of the servers' states, in the order listed."""
        with self._lock:
            return [ServerState(s.uri, s.server, s.up, s.since, s.retry_at, s.reason, s.behind)
                    for s in self._states]

    def probe(self, base: str) -> dict[str, str]:
        """Ask every server (a fresh connection, bound as us, a base search on
        `base`): uri -> "ok" or "unavailable: <why>".  A server that answers
        is marked up (and so used again), one that does not is marked down."""
        report: dict[str, str] = {}
        for index, state in enumerate(self._states):
            conn = self._new_connection(state.server)
            try:
                with self._translating_probe():
                    conn.bind()
                    conn.search(base, "(objectClass=*)", search_scope=BASE, attributes=["1.1"])
            except DirectoryUnavailable as exc:
                self._mark(index, False, exc.reason)
                report[state.uri] = f"unavailable: {exc.reason}"
            except IredldapError as exc:
                self._mark(index, True)
                report[state.uri] = f"unavailable: {exc.reason or exc.code}"
            else:
                self._mark(index, True)
                report[state.uri] = "ok"
            finally:
                _close_quietly(conn)
        return report

    @contextmanager
    def _translating_probe(self) -> Iterator[None]:
        """As `_translated`, without touching this thread's connection."""
        saved = (getattr(self._local, "conn", None), getattr(self._local, "index", None),
                 getattr(self._local, "moving_from", None))
        self._local.index = None
        try:
            with self._translated():
                yield
        finally:
            self._local.conn, self._local.index, self._local.moving_from = saved

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                conn.unbind()
            except lx.LDAPException:
                pass
            self._local.conn = None

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """The single place where ldap3 exceptions become ours (and are counted)."""
        try:
            with self._translating():
                yield
        except IredldapError as exc:
            count_error("ldap", exc.code)
            raise

    @contextmanager
    def _translating(self) -> Iterator[None]:
        try:
            yield
        except lx.LDAPNoSuchObjectResult as exc:
            raise NoSuchAccount("no such entry in the directory", dn=str(exc)) from None
        except lx.LDAPEntryAlreadyExistsResult:
            raise AlreadyExists("an entry with this name already exists") from None
        except lx.LDAPAttributeOrValueExistsResult:
            raise ValueAlreadyPresent("a value to add is already there") from None
        except lx.LDAPNoSuchAttributeResult:
            raise ValueMissing("a value to delete is not there") from None
        except _BAD_VALUE as exc:
            raise InvalidInput(f"the directory refused a value: {getattr(exc, 'message', '') or exc}") from None
        except lx.LDAPInvalidCredentialsResult:
            self._forget_connection("it refuses our bind")
            raise DirectoryUnavailable("the service cannot bind to the directory (LDAP_BIND_DN/LDAP_BIND_PASSWORD)") from None
        except _UNAVAILABLE as exc:
            self._forget_connection(exc.__class__.__name__)
            error = DirectoryUnavailable(f"the directory is unreachable: {exc.__class__.__name__}")
            error.maybe_landed = isinstance(exc, _NO_ANSWER)
            raise error from None
        except lx.LDAPOperationResult as exc:
            raise DirectoryError(f"directory error: {exc.description or ''} {exc.message or ''}".strip(),
                                 ldap_result=exc.result) from None
        except lx.LDAPException as exc:
            self._forget_connection(exc.__class__.__name__)
            error = DirectoryUnavailable(f"directory failure: {exc}")
            error.maybe_landed = isinstance(exc, _NO_ANSWER)
            raise error from None
        except _DECODER_FAILURES as exc:
            if not _raised_inside_ldap3(exc):
                raise
            self._forget_connection("a cut-off answer")
            error = DirectoryUnavailable(f"the directory's answer was cut off: {exc.__class__.__name__}")
            error.maybe_landed = True   # the request went out; only the answer is lost
            raise error from None

    # -- reading ------------------------------------------------------------

    def search(self, base: str, filterstr: str, *, scope=SUBTREE, attrs=("*",),
               size_limit: int = 0) -> list[Entry]:
        reused = getattr(self._local, "conn", None) is not None
        try:
            return self._search_once(base, filterstr, scope, attrs, size_limit)
        except DirectoryUnavailable:
            # A connection kept from an earlier request may have been cut (slapd
            # restarted, idle timeout): a read is safe to try once more.
            if not reused:
                raise
            return self._search_once(base, filterstr, scope, attrs, size_limit)

    def _search_once(self, base, filterstr, scope, attrs, size_limit) -> list[Entry]:
        conn = self._connection()
        with self._translated():
            try:
                send_search(conn, base, filterstr, scope=scope, attrs=attrs, size_limit=size_limit)
            except lx.LDAPNoSuchObjectResult:
                return []
            return [Entry(r["dn"], {k: _as_text(v) for k, v in r["raw_attributes"].items()})
                    for r in conn.response if r.get("type") == "searchResEntry"]

    def paged_search(self, base: str, filterstr: str, *, scope=SUBTREE, attrs=("*",),
                     page_size: int = 500, raw: bool = False) -> Iterator[Entry]:
        """Yield entries page by page so memory does not grow with the result.

        `raw=True` keeps the values as the server sent them (bytes), for
        binary attributes and the LDIF export.
        """
        reused = getattr(self._local, "conn", None) is not None
        conn = self._connection()
        cookie = None
        while True:
            with self._translated():
                try:
                    try:
                        send_search(conn, base, filterstr, scope=scope, attrs=attrs, paged_size=page_size,
                                    paged_cookie=cookie)
                    except _UNAVAILABLE:
                        # As in search(): a kept connection may have been cut; the
                        # first page is safe to ask again on a new one.
                        if cookie is not None or not reused:
                            raise
                        self._forget_connection()
                        conn = self._connection()
                        send_search(conn, base, filterstr, scope=scope, attrs=attrs, paged_size=page_size,
                                    paged_cookie=cookie)
                except lx.LDAPNoSuchObjectResult:
                    return
                # The page's values are taken as decoded (bytes for `raw`), not copied.
                page = [Entry(r["dn"], r["raw_attributes"] if raw else
                              {k: _as_text(v) for k, v in r["raw_attributes"].items()})
                        for r in conn.response if r.get("type") == "searchResEntry"]
                controls = conn.result.get("controls", {})
                cookie = controls.get("1.2.840.113556.1.4.319", {}).get("value", {}).get("cookie")
            yield from page
            if not cookie:
                return

    def get(self, dn: str, attrs=("*",), filterstr: str = "(objectClass=*)") -> Entry | None:
        found = self.search(dn, filterstr, scope=BASE, attrs=attrs)
        return found[0] if found else None

    def exists(self, dn: str) -> bool:
        return self.get(dn, attrs=("1.1",)) is not None

    # -- writing ------------------------------------------------------------

    def add(self, dn: str, attrs: Attrs) -> None:
        conn = self._connection(write=True)
        clean = {k: v for k, v in attrs.items() if v not in ([], None, "")}
        object_class = clean.pop("objectClass")
        with self._translated():
            _write(conn, "add", dn, object_class, clean)

    def modify(self, dn: str, changes: Changes) -> None:
        if not changes:
            return
        conn = self._connection(write=True)
        with self._translated():
            _write(conn, "modify", dn, changes)

    def increment(self, dn: str, attr: str, delta: int) -> int | None:
        """Move an INTEGER attribute by `delta` atomically (RFC 4525) and return
        the value this very increment made (the Post-Read control, RFC 4527:
        of racing increments each sees its own, so they can be ranked); read
        back after the write when the server sends no post-read value
        (ldap3's MOCK_SYNC), None if the entry has none then."""
        conn = self._connection(write=True)
        with self._translated():
            _write(conn, "modify", dn, {attr: [(INCREMENT, [str(delta)])]},
                   controls=[(POST_READ, False, _attribute_selection([attr]))])
            post = (conn.result.get("controls") or {}).get(POST_READ, {}).get("value") or {}
        for name, values in (post.get("result") or {}).items():
            if name.lower() == attr.lower() and values:
                return as_int(values[0])
        entry = self.get(dn, attrs=(attr,))
        return as_int(entry.first(attr)) if entry is not None and entry.get(attr) else None

    def delete(self, dn: str) -> None:
        conn = self._connection(write=True)
        with self._translated():
            _write(conn, "delete", dn)

    def subtree(self, dn: str) -> list[Entry]:
        """The entry and everything below it, parents before children."""
        entries = self.search(dn, "(objectClass=*)", scope=SUBTREE, attrs=("*",))
        return sorted(entries, key=lambda e: _depth(e.dn))

    def batch(self, *, kind: str | None = None, targets: tuple[str, ...] | list[str] = (),
              resume: str = "back") -> "Batch":
        """A `Batch`; with `kind` (create, delete, rename, update) it is journaled
        when the directory has a journal: `targets` ("domain:<name>",
        "mail:<address>") say which requests finish it if it is left
        unfinished, `resume` how ("forward" or "back")."""
        entry = self.journal.begin(kind, targets, resume) if kind and self.journal is not None else None
        return Batch(self, entry)

    def ping(self) -> None:
        """Raise DirectoryUnavailable unless the server answers a base search."""
        self.search("", "(objectClass=*)", scope=BASE, attrs=("1.1",))


def _write(conn: ldap3.Connection, operation: str, *args, **kwargs) -> object:
    """`conn.<operation>(...)` (add, modify, delete): by the strategy's
    `lean_<operation>` where it has one (the MOCK_SYNC of directory/mock.py)
    and it takes the write, by ldap3's Connection otherwise."""
    lean_write = getattr(conn.strategy, "lean_" + operation, None)
    if lean_write is not None:
        try:
            return lean_write(*args, **kwargs)
        except NotLean:
            pass
    return getattr(conn, operation)(*args, **kwargs)


def _ber_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _attribute_selection(attrs: list[str]) -> bytes:
    """The value of a Pre-/Post-Read request control: SEQUENCE OF LDAPString."""
    items = b"".join(b"\x04" + _ber_length(len(a.encode())) + a.encode() for a in attrs)
    return b"\x30" + _ber_length(len(items)) + items


def as_int(value) -> int | None:
    """An LDAP integer value (text or bytes) as an int; None if it is none."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _depth(dn: str) -> int:
    return len(ldap3.utils.dn.parse_dn(dn))


class Batch:
    """Writes that stand or fall together.

    Each write runs at once and records how to undo it.  Used as a context
    manager: an exception inside the block undoes the recorded writes in
    reverse order and re-raises.  Undo failures are logged (never the values,
    which may hold password hashes) and do not hide the original error.

    With a journal entry (`Directory.batch(kind=...)` on a directory that has
    a `journal`, see `iredldap.directory.journal`) every write is recorded
    in the journal before it is sent and marked done after it lands.  The
    `plan_*` methods queue writes without sending them; `record()` writes the
    queued plan to the journal, and the queue is sent, in order, before the
    next direct write or when the block ends.  That is how a delete records
    every entry it will remove before removing the first.  If the directory
    goes away part-way, a `forward` journal is left open as it is (the next
    request finishes it) and a `back` one is undone as far as the directory
    allows, the rest being left to the journal.
    """

    def __init__(self, directory: Directory, journal=None):
        self.directory = directory
        self._undo: list[tuple[str, Callable[[], object]]] = []
        self._journal = journal
        # Planned writes: (journal step, send, undo description, undo).
        self._queue: list[tuple[dict, Callable[[], object], str, Callable[[], object] | None]] = []
        self._recorded = 0   # how many of the queue are in the journal
        self._on_rollback: list[Callable[[], None]] = []

    def __enter__(self) -> "Batch":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.run(final=True)
                if self._journal is not None:
                    self._journal.finish()
            except BaseException as err:
                self._failed(err)
                raise
            return
        self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        journal = self._journal
        if journal is not None and journal.id is not None and isinstance(exc, DirectoryUnavailable) \
                and journal.resume == "forward":
            journal.leave_open(exc.reason)   # the client asked for it: it will be finished
            return
        complete = self.rollback()
        if journal is None:
            return
        if complete and journal.written > journal.done and isinstance(exc, DirectoryUnavailable):
            # The step without an answer may still land: the journal undoes it later.
            complete = False
        if complete:
            try:
                journal.undone()
            except IredldapError as err:
                log.error("journal %s: cannot close it: %s", journal.id, err.code)
        else:
            journal.leave_open(getattr(exc, "reason", exc.__class__.__name__))

    def on_rollback(self, undo: Callable[[], None]) -> None:
        """Also run `undo` if the batch is undone (e.g. SQL rows written for it)."""
        self._on_rollback.append(undo)

    def rollback(self) -> bool:
        """Undo what was written; False if the directory went away meanwhile."""
        complete = True
        while self._undo:
            what, undo = self._undo.pop()
            try:
                undo()
            except DirectoryUnavailable:
                if self._journal is not None and self._journal.id is not None:
                    # The journal has the rest; a flood of failing undos helps nobody.
                    log.error("rollback stopped, the directory is unreachable; the journal finishes it")
                    self._undo.clear()
                    complete = False
                    break
                log.error("rollback step failed (%s): DirectoryUnavailable", what)
                complete = False
            except Exception as err:  # noqa: BLE001 - keep undoing the rest
                log.error("rollback step failed (%s): %s", what, err.__class__.__name__)
                complete = False
        self._queue.clear()
        while self._on_rollback:
            undo = self._on_rollback.pop()
            try:
                undo()
            except Exception as err:  # noqa: BLE001
                log.error("rollback step failed (database): %s", err.__class__.__name__)
        return complete

    # -- sending ------------------------------------------------------------

    def _send(self, step: dict, send: Callable[[], object], what: str, undo: Callable[[], object] | None) -> None:
        if self._journal is not None:
            self._journal.before(step)
        try:
            send()
        except DirectoryUnavailable as error:
            # No answer (a timeout, a cut connection): it may have landed.
            # Ask the directory before giving up; if it cannot tell, the
            # journal keeps the step as maybe-landed.  A write outside a
            # journal is asked about only when it was sent and unanswered
            # (an unreachable server got nothing), so the answer and the
            # audit row say what really happened.
            if (self._journal is None and not error.maybe_landed) or not self._landed_after_all(step):
                raise
            log.warning("no answer to %s %s, but it landed", step["op"], step["dn"])
        except IredldapError:
            if self._journal is not None:
                self._journal.rejected()  # refused, so it did not land
            raise
        if undo is not None:
            self._undo.append((what, undo))
        if self._journal is not None:
            self._journal.landed()

    def _landed_after_all(self, step: dict) -> bool:
        """Asked on a fresh connection, a few times: a server that was stuck
        may carry out the unanswered write only a moment after it answers
        again, so a first "not there" is not yet the truth."""
        from iredldap.directory.journal import Applier
        for attempt in range(4):
            try:
                if Applier(self.directory).landed(step) is True:
                    return True
            except DirectoryUnavailable:
                pass
            if attempt < 3:
                time.sleep(0.5)
        return False

    def record(self, *, final: bool = False, sending: bool = False) -> None:
        """Write the queued plan to the journal (before anything of it is sent;
        `sending`: the first step is sent right after)."""
        if self._journal is not None and self._recorded < len(self._queue):
            self._journal.plan([q[0] for q in self._queue[self._recorded:]], sealed=final, sending=sending)
        self._recorded = len(self._queue)

    def run(self, *, final: bool = False) -> None:
        """Send the queued writes, in order."""
        if not self._queue:
            return
        self.record(final=final, sending=True)
        while self._queue:
            step, send, what, undo = self._queue.pop(0)
            self._recorded -= 1
            self._send(step, send, what, undo)

    # -- planned writes -------------------------------------------------------

    def plan_add(self, dn: str, attrs: Attrs) -> None:
        from iredldap.directory.journal import add_step
        self._queue.append((add_step(dn, attrs), lambda: self.directory.add(dn, attrs), f"delete {dn}",
                            lambda: self.directory.delete(dn)))

    def plan_modify(self, dn: str, changes: Changes, *, before: Entry | None = None) -> None:
        from iredldap.directory.journal import modify_step
        if not changes:
            return
        replaced = [a for a, ops in changes.items() if any(op == REPLACE for op, _ in ops)]
        if replaced and before is None:
            before = self.directory.get(dn, attrs=replaced)
        undo = _inverse(changes, before)
        self._queue.append((modify_step(dn, changes, undo), lambda: self.directory.modify(dn, changes),
                            f"modify {dn}", lambda: self.directory.modify(dn, undo)))

    def queued_deletes(self) -> set[str]:
        """DNs (lower-cased) this batch has queued for deletion."""
        return {q[0]["dn"].lower() for q in self._queue if q[0]["op"] == "delete"}

    def plan_counter(self, dn: str, attr: str, delta: int, *, recount: Callable[[], int],
                     before: Entry | None, seen: list[int] | None = None) -> None:
        """Queue moving a counter by `delta`: an increment when `before` (the
        entry as read) has the counter, else the real count, taken when sent.
        A resumed journal sets every counter it touched to the real count, so
        the step is journaled as an increment only to say which counter.

        `seen`: gets the value the increment made (`Directory.increment`)
        once it is sent; nothing when the counter was set to a count."""
        from iredldap.directory.journal import modify_step
        step = modify_step(dn, {attr: [(INCREMENT, [str(delta)])]}, {attr: [(INCREMENT, [str(-delta)])]})
        if before is not None and before.get(attr):
            undo: Changes = {attr: [(INCREMENT, [str(-delta)])]}

            def send() -> None:
                value = self.directory.increment(dn, attr, delta)
                if seen is not None and value is not None:
                    seen.append(value)
            self._queue.append((step, send, f"modify {dn}", lambda: self.directory.modify(dn, undo)))
            return
        previous = before.get(attr) if before is not None else []
        self._queue.append((step, lambda: self.directory.modify(dn, {attr: [(REPLACE, [str(recount())])]}),
                            f"modify {dn}", lambda: self.directory.modify(dn, {attr: [(REPLACE, previous)]})))

    def plan_total(self, dn: str, attr: str, delta: int, *, send: Callable[[], object],
                   undo: Callable[[], object]) -> None:
        """Queue moving a total that is no INTEGER (slapd cannot increment it):
        `send` moves it by `delta`, `undo` back (quota_total.py).  Journaled
        as a counter is, as an increment that is never replayed: a resumed
        journal sets the total to the real sum instead."""
        from iredldap.directory.journal import modify_step
        step = modify_step(dn, {attr: [(INCREMENT, [str(delta)])]}, {attr: [(INCREMENT, [str(-delta)])]})
        self._queue.append((step, send, f"modify {dn}", undo))

    def plan_delete(self, dn: str, *, snapshot: Entry | None = None) -> None:
        from iredldap.directory.journal import delete_step
        snapshot = snapshot or self.directory.get(dn)
        undo = (lambda: self.directory.add(dn, without_operational(snapshot))) if snapshot is not None else None
        self._queue.append((delete_step(dn, snapshot), lambda: self.directory.delete(dn), f"re-add {dn}", undo))

    # -- direct writes ------------------------------------------------------

    def add(self, dn: str, attrs: Attrs) -> None:
        self.run()
        self.plan_add(dn, attrs)
        self.run()

    def modify(self, dn: str, changes: Changes, *, before: Entry | None = None) -> None:
        """Apply `changes`; `before` (the entry as read) lets REPLACE be undone without a read."""
        if not changes:
            return
        self.run()
        self.plan_modify(dn, changes, before=before)
        self.run()

    def add_values(self, dn: str, attr: str, values: list[str]) -> list[str]:
        """Add the values not yet there; returns those actually added.

        Safe against a concurrent request adding the same value: the values
        are read, the missing ones added, and on a clash read again.
        """
        def missing(entry: Entry) -> list[str]:
            return [v for v in values if not entry.has_value(attr, v)]
        return self._change_values(dn, attr, ADD, missing, ValueAlreadyPresent, must_exist=True)

    def delete_values(self, dn: str, attr: str, values: list[str]) -> list[str]:
        """Delete the values that are there; returns those actually deleted."""
        def present(entry: Entry) -> list[str]:
            wanted = {x.lower() for x in values}
            return [v for v in entry.get(attr) if v.lower() in wanted]
        return self._change_values(dn, attr, DELETE, present, ValueMissing, must_exist=False)

    def _change_values(self, dn: str, attr: str, operation: str, pick: Callable[[Entry], list[str]],
                       clash: type[IredldapError], *, must_exist: bool) -> list[str]:
        """Read the values, send the `pick`ed ones with `operation`; on a clash with a
        concurrent request (`clash` raised), read again, three times at the most."""
        self.run()
        for _ in range(3):
            entry = self.directory.get(dn, attrs=(attr,))
            if entry is None:
                if must_exist:
                    raise NoSuchAccount(f"{dn} does not exist")
                return []
            picked = pick(entry)
            if not picked:
                return []
            try:
                self.modify(dn, {attr: [(operation, picked)]})
                return picked
            except clash:
                continue
        raise clash(f"{attr} of {dn} keeps changing; try again")

    def delete(self, dn: str, *, snapshot: Entry | None = None) -> None:
        self.run()
        self.plan_delete(dn, snapshot=snapshot)
        self.run()

    def delete_subtree(self, dn: str) -> list[Entry]:
        """Delete an entry and all below it, deepest first; returns what was removed."""
        entries = self.plan_delete_subtree(dn)
        self.run()
        return entries

    def plan_delete_subtree(self, dn: str) -> list[Entry]:
        """Queue the deletion of an entry and all below it, deepest first; returns the entries."""
        entries = self.directory.subtree(dn)
        for entry in reversed(entries):
            self.plan_delete(entry.dn, snapshot=entry)
        return entries


def _inverse(changes: Changes, before: Entry | None) -> Changes:
    undo: Changes = {}
    for attr, ops in changes.items():
        for op, values in ops:
            if op == ADD:
                undo.setdefault(attr, []).append((DELETE, values))
            elif op == DELETE:
                if values:
                    undo.setdefault(attr, []).append((ADD, values))
                else:
                    undo.setdefault(attr, []).append((REPLACE, before.get(attr) if before else []))
            elif op == INCREMENT:
                # Undone by the opposite increment: a REPLACE with the value read
                # before would wipe out the increments of concurrent requests.
                undo.setdefault(attr, []).append((INCREMENT, [str(-int(v)) for v in values]))
            else:
                undo.setdefault(attr, []).append((REPLACE, before.get(attr) if before else []))
    # Undo in reverse order of the original operations on each attribute.
    return {attr: list(reversed(ops)) for attr, ops in undo.items()}


_OPERATIONAL = {"entryuuid", "entrycsn", "createtimestamp", "modifytimestamp", "creatorsname",
                "modifiersname", "structuralobjectclass", "entrydn", "subschemasubentry",
                "hassubordinates", "numsubordinates"}


def without_operational(entry: Entry) -> Attrs:
    return {k: v for k, v in entry.attrs.items() if k.lower() not in _OPERATIONAL}


_without_operational = without_operational
