"""Engines, and `Database`: the one way the SQL stores reach a database, and
the one place where SQLAlchemy errors become ours.

Every store (`SqlStore` subclasses) gets its connections from its
`Database` (`read()`, `write()`, `write_retrying()`, `ping()`); whatever
SQLAlchemy raises while one is in use -- connecting, a statement, the
commit -- leaves as `DatabaseUnavailable` or `DatabaseError` and is counted
in the metrics.  No store opens a connection of its own
(tests/test_sql_errors.py checks both).

Engine configuration:

* SQLite (file): the parent folder is created, the file is created mode 0600
  (on the first connection), the database runs in WAL mode
  with a busy timeout, and SQLAlchemy emits BEGIN itself (``BEGIN IMMEDIATE``
  for connections marked with ``WRITE_INTENT``) so several gunicorn workers
  can share the file without "database is locked" surprises.
* MySQL/MariaDB and PostgreSQL: pre-ping, recycled connections and a short
  connect timeout, so a server that is down is noticed within seconds.  Every
  connection runs with the session time zone set to UTC: our timestamps are
  naive UTC, and MySQL TIMESTAMP columns then store the right instant.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, CursorResult, Dialect, Engine, make_url
from sqlalchemy.sql import Select

from iredldap.errors import DatabaseError, DatabaseUnavailable, IredldapError
from iredldap.metrics import count_error
from iredldap.private_files import create_private

CONNECT_TIMEOUT = 5          # seconds, server databases
SQLITE_BUSY_TIMEOUT = 10     # seconds a writer waits for the SQLite lock
POOL_RECYCLE = 3600          # seconds; below MySQL's default wait_timeout

# Execution option: the transaction about to begin will write.  On SQLite it
# starts with BEGIN IMMEDIATE (take the write lock up front instead of failing
# when a read transaction upgrades); other databases ignore it.
WRITE_INTENT = "iredldap_write"
# Execution option: the block about to begin reads with one statement.  On
# SQLite no BEGIN is sent: the statement is its own transaction (SQLite's
# autocommit), which is all one statement needs; other databases ignore it.
ONE_STATEMENT = "iredldap_one_statement"


# The drivers installed with the service.  A URL without a driver
# (`mysql://...`, as iRedMail's own settings write them) gets these rather
# than SQLAlchemy's defaults (MySQLdb, psycopg2), which are not installed.
_DEFAULT_DRIVERS = {"mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql",
                    "postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


def database_url(url: str | URL) -> URL:
    """`url` parsed, with our driver where it names none."""
    u = make_url(url)
    if u.drivername in _DEFAULT_DRIVERS:
        u = u.set(drivername=_DEFAULT_DRIVERS[u.drivername])
    return u


def make_engine(url: str | URL) -> Engine:
    """An Engine for `url` configured for this service (see module doc)."""
    u = database_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(u)

    connect_args: dict = {}
    if "connect_timeout" not in u.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    engine = create_engine(
        u,
        pool_pre_ping=True,
        pool_recycle=POOL_RECYCLE,
        connect_args=connect_args,
    )
    if backend in ("mysql", "mariadb"):
        _on_connect(engine, "SET time_zone = '+00:00'")
    elif backend == "postgresql":
        _on_connect(engine, "SET TIME ZONE 'UTC'")
    return engine


def _on_connect(engine: Engine, statement: str) -> None:
    @event.listens_for(engine, "connect")
    def _setup(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        try:
            cur.execute(statement)
        finally:
            cur.close()
        # PostgreSQL: SET is transactional; make it stick.
        dbapi_conn.commit()


def _sqlite_engine(u: URL) -> Engine:
    db = u.database or ""
    if db and db != ":memory:" and not db.startswith("file:"):
        try:
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            # Reported on first use (DatabaseUnavailable), like any other
            # database that cannot be opened.
            pass

    engine = create_engine(u, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})

    if db and db != ":memory:" and not db.startswith("file:"):
        @event.listens_for(engine, "do_connect")
        def _create_private(_dialect, _record, _cargs, _cparams):
            # The database holds sessions, the log and the tokens' hashes:
            # created 0600 before sqlite3 would create it world-readable
            # (its -wal and -shm files take the database's mode).  An existing
            # file keeps its mode.  Then sqlite3 connects as usual.
            try:
                create_private(Path(db).expanduser())
            except OSError:
                pass            # reported by the connect that follows

    @event.listens_for(engine, "connect")
    def _setup(dbapi_conn, _record):
        # Let SQLAlchemy (the "begin" hook below) emit BEGIN, not sqlite3.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT * 1000}")
            if db and db != ":memory:":
                cur.execute("PRAGMA journal_mode = WAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        options = conn.get_execution_options()
        if options.get(WRITE_INTENT):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif not options.get(ONE_STATEMENT):
            conn.exec_driver_sql("BEGIN")

    return engine


def describe_error(exc: BaseException) -> str:
    """One short line about a database error (driver message, first line)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    return text[:300]


# MySQL/MariaDB server error numbers that mean "cannot use the server right
# now" (PyMySQL reports most unmapped server errors, e.g. 1054 unknown column,
# as OperationalError too; those are *not* availability problems).
_MYSQL_UNAVAILABLE = {
    1040,  # too many connections
    1043,  # bad handshake
    1044,  # access denied for user to database
    1045,  # access denied
    1049,  # unknown database
    1053,  # server shutdown in progress
    1129,  # host blocked
    1130,  # host not allowed
    1152, 1153, 1154, 1155, 1156, 1157, 1158, 1159, 1160, 1161,  # network
    1203,  # too many user connections
    1205,  # lock wait timeout
    1213,  # deadlock
    1226,  # user resource limit exceeded
    1317,  # query interrupted
    1836,  # read-only mode
    1927,  # connection killed
    4031,  # disconnected by server (idle timeout)
}

# SQLite reports statement errors as OperationalError as well.
_SQLITE_NOT_AVAILABILITY = ("no such ", "near ", "syntax error", "already exists",
                            "has no column", "table ", "index ")


def _is_unavailable(e: sa_exc.SQLAlchemyError) -> bool:
    if isinstance(e, (sa_exc.TimeoutError, sa_exc.DisconnectionError, sa_exc.InterfaceError)):
        return True
    if not isinstance(e, sa_exc.DBAPIError):
        return False
    if e.connection_invalidated:
        return True
    if not isinstance(e, sa_exc.OperationalError):
        return False
    orig = e.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and type(orig).__module__.startswith(
        ("pymysql", "MySQLdb", "mysql")
    ):
        code = args[0]
        return code >= 2000 or code in _MYSQL_UNAVAILABLE
    if type(orig).__module__.startswith("sqlite3"):
        message = str(orig).lower()
        return not message.startswith(_SQLITE_NOT_AVAILABILITY)
    return True


@contextlib.contextmanager
def translate_db_errors() -> Iterator[None]:
    """Turn SQLAlchemy errors raised inside the block into ours.

    Connection problems -- OperationalError / InterfaceError such as "cannot
    connect", "server has gone away", lock timeouts and deadlocks, plus pool
    timeouts and invalidated connections -- become `DatabaseUnavailable`;
    every other SQLAlchemyError (including the statement errors MySQL and
    SQLite drivers also report as OperationalError, e.g. unknown column)
    becomes `DatabaseError`.  Our own errors and non-database exceptions pass
    through unchanged.  Stores do not use it themselves: `Database` wraps
    every connection it hands out in it.
    """
    try:
        yield
    except IredldapError:
        raise
    except sa_exc.SQLAlchemyError as e:
        if _is_unavailable(e):
            count_error("sql", DatabaseUnavailable.code)
            raise DatabaseUnavailable(f"database unavailable: {describe_error(e)}") from e
        count_error("sql", DatabaseError.code)
        raise DatabaseError(f"database error: {describe_error(e)}") from e


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the one row an INSERT made."""
    key = result.inserted_primary_key
    if key is None:      # only for a statement that is not a one-row INSERT: our bug
        raise TypeError("inserted_id() of a statement that is not a one-row INSERT")
    return int(key[0])


def sqlite_file_missing(url: URL) -> bool:
    """True for the URL of an SQLite file that does not exist (yet)."""
    if url.get_backend_name() != "sqlite":
        return False
    db = url.database or ""
    if not db or db == ":memory:" or db.startswith("file:"):
        return False
    return not Path(db).expanduser().exists()


T = TypeVar("T")


def _is_duplicate_key(e: sa_exc.SQLAlchemyError) -> bool:
    return isinstance(e, sa_exc.IntegrityError)


# MySQL/MariaDB: deadlock victim; PostgreSQL: deadlock_detected and
# serialization_failure.  The server has rolled the whole transaction back,
# so running it again from the start is what both manuals prescribe.
_MYSQL_DEADLOCK = 1213
_POSTGRES_RETRY_STATES = ("40P01", "40001")
DEADLOCK_RETRIES = 8
# Between tries a short random pause that grows with each one, so that the
# transactions that deadlocked do not meet again in the same order.
DEADLOCK_PAUSE_SECONDS = 0.005


def is_deadlock(e: sa_exc.SQLAlchemyError) -> bool:
    orig = getattr(e, "orig", None)
    args = getattr(orig, "args", ())
    if args and args[0] == _MYSQL_DEADLOCK and type(orig).__module__.startswith(("pymysql", "MySQLdb", "mysql")):
        return True
    return getattr(orig, "sqlstate", None) in _POSTGRES_RETRY_STATES


_scope = threading.local()


def open_request_scope() -> None:
    """From now on, in this thread, each `Database` lends one connection to
    all its `read()` and `write()` blocks (one pool checkout, so one
    pre-ping, per request and database) until `close_request_scope()`.

    Every block still ends its own transaction (a read is rolled back, a
    write committed), so nothing is held between blocks and each block sees
    what was committed before it: sessions, tokens and admins are read anew
    by every request.  A block opened while the lent connection is in use
    by another block gets a connection of its own, as without a scope.
    """
    close_request_scope()
    _scope.held = {}


def close_request_scope() -> None:
    held: dict | None = getattr(_scope, "held", None)
    _scope.held = None
    for lent in (held or {}).values():
        try:
            lent.conn.close()
        except Exception:   # noqa: BLE001 - it goes back to the pool (or away) anyway
            pass


class _ReadPlan:
    """A SELECT compiled for one dialect: its SQL, how its parameters are
    sent, how its columns are converted (SQLAlchemy's public type API)."""

    def __init__(self, statement: Select, dialect: Dialect):
        compiled = statement.compile(dialect=dialect)
        self.dialect = dialect
        self.sql = compiled.string
        # The values the statement itself binds (constants, LIMIT); the others come with each read.
        self.defaults = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        self.positions = tuple(compiled.positiontup or ()) if compiled.positional else None
        self.bind_processors = {name: processor for name, bind in compiled.binds.items()
                                if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None}
        self.result_processors = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None)
                                       for column in statement.selected_columns)
        self.keys = tuple(str(column.key) for column in statement.selected_columns)
        self.commits_each_statement = dialect.name == "sqlite"
        self.statement = statement      # (keeps the statement, and so its id, alive)

    def first(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any] | None:
        values = dict(self.defaults, **params)
        for name, processor in self.bind_processors.items():
            values[name] = processor(values[name])
        sent: Any = tuple(values[name] for name in self.positions) if self.positions is not None else values
        dbapi_conn = conn.connection.dbapi_connection
        assert dbapi_conn is not None
        error_class = self.dialect.loaded_dbapi.Error
        cursor = dbapi_conn.cursor()
        try:
            # (Listeners of the engine's statements see this one too; it has no execution context.)
            conn.dispatch.before_cursor_execute(conn, cursor, self.sql, sent, None, False)
            cursor.execute(self.sql, sent)
            row = cursor.fetchone()
            if not self.commits_each_statement:
                dbapi_conn.rollback()
        except error_class as exc:
            lost = self.dialect.is_disconnect(exc, dbapi_conn, cursor)
            if lost:
                conn.invalidate(exc)
            raise sa_exc.DBAPIError.instance(self.sql, sent, exc, error_class, connection_invalidated=lost,
                                             dialect=self.dialect) from exc
        finally:
            try:
                cursor.close()
            except error_class:
                pass
        if row is None:
            return None
        return {key: value if processor is None else processor(value)
                for key, value, processor in zip(self.keys, row, self.result_processors)}


class _Lent:
    def __init__(self, conn: Connection):
        self.conn = conn
        self.busy = False


class Database:
    """One database as the stores use it: an Engine, or a URL whose Engine
    (`make_engine`) is made on first use -- an app wired with a database it
    never uses does not touch it, and an SQLite file is not created by merely
    configuring it.  Connections are only had through the context managers
    below, which translate every SQLAlchemy error raised inside them.
    Inside a request scope (`open_request_scope`) they share one connection."""

    def __init__(self, source: Engine | URL | str):
        self._lock = threading.Lock()
        self._plans: dict[int, _ReadPlan] = {}      # first_row's, by statement
        if isinstance(source, Engine):
            self._engine: Engine | None = source
            self.url = source.url
        else:
            self._engine = None
            self.url = database_url(source)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = make_engine(self.url)
        return self._engine

    def missing(self) -> bool:
        """An SQLite database that was never created: it holds no rows."""
        return sqlite_file_missing(self.url)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Connection]:
        """The request's lent connection if it is free, else a connection of the pool's."""
        held: dict | None = getattr(_scope, "held", None)
        lent = held.get(self) if held is not None else None
        if held is not None and (lent is None or lent.conn.closed or lent.conn.invalidated):
            lent = held[self] = _Lent(self.engine.connect())
        if lent is None or lent.busy:
            with self.engine.connect() as conn:
                yield conn
            return
        lent.busy = True
        conn = lent.conn
        try:
            yield conn
        except BaseException:
            # Whatever state it is left in, it is not lent again.
            assert held is not None
            held.pop(self, None)
            try:
                conn.close()
            except Exception:   # noqa: BLE001 - the original error matters
                pass
            raise
        finally:
            lent.busy = False
        if conn.in_transaction():
            conn.rollback()

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection (autobegun transaction, rolled back at the end)."""
        with translate_db_errors(), self._connect() as conn:
            yield conn

    @contextlib.contextmanager
    def read_one(self) -> Iterator[Connection]:
        """As `read()`, for a block of one statement (a single SELECT): on
        SQLite without a BEGIN of its own (see ONE_STATEMENT), which saves a
        round of the driver on the reads every request makes.  What the
        statement reads is what is committed when it runs, as in `read()`."""
        with translate_db_errors(), self._connect() as conn:
            conn.execution_options(**{ONE_STATEMENT: True})
            try:
                yield conn
            finally:
                conn.execution_options(**{ONE_STATEMENT: False})

    def first_row(self, statement: Select, params: dict[str, Any]) -> dict[str, Any] | None:
        """The first row of `statement` ({column key: value}; None: it has
        none), for the one-statement reads every request makes (the caller's
        session, a user's mailbox facts).

        SQLAlchemy builds the statement and compiles it once for this
        database's dialect; each read runs the compiled SQL on the DBAPI
        cursor of the request's connection (`_connect`) and converts the
        values as SQLAlchemy's result would.  Core's execution of a statement
        (its execution context, events and result objects, the rollback that
        ends a block) costs a threaded worker several times what the database
        does for such a read.  What is read is what is committed when it
        runs, as with `read_one()`: SQLite's connections commit each statement
        (see `_sqlite_engine`); elsewhere the read's implicit transaction is
        rolled back at once.  A driver's error leaves as the SQLAlchemy error
        Core would raise (a lost connection invalidated), so
        `translate_db_errors` treats it the same.
        """
        with translate_db_errors(), self._connect() as conn:
            plan = self._plans.get(id(statement))
            if plan is None:
                plan = self._plans[id(statement)] = _ReadPlan(statement, conn.dialect)
            return plan.first(conn, params)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection inside a transaction that will write: committed when
        the block ends, rolled back when it raises."""
        with translate_db_errors(), self._transaction() as conn:
            yield conn

    def write_retrying(self, work: Callable[[Connection], T], *,
                       retry_if: Callable[[sa_exc.SQLAlchemyError], bool] = _is_duplicate_key) -> T:
        """`work` in a write transaction; once more in a new one when the
        first failed with an error `retry_if` accepts (by default: a
        concurrent writer inserted the same unique key first), and again
        (up to DEADLOCK_RETRIES times, after a short random pause) when the
        server chose it as a deadlock victim.  `work` must be a whole
        transaction: it may run more than once."""
        with translate_db_errors():
            retried, deadlocks = False, 0
            while True:
                try:
                    with self._transaction() as conn:
                        return work(conn)
                except sa_exc.SQLAlchemyError as e:
                    if is_deadlock(e) and deadlocks < DEADLOCK_RETRIES:
                        deadlocks += 1
                        time.sleep(random.uniform(0, DEADLOCK_PAUSE_SECONDS * deadlocks))
                    elif not retried and retry_if(e):
                        retried = True
                    else:
                        raise

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self._connect() as conn:
            conn.execution_options(**{WRITE_INTENT: True})
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.execution_options(**{WRITE_INTENT: False})

    def ping(self) -> bool:
        """True, or DatabaseUnavailable whatever went wrong."""
        try:
            with self.read() as conn:
                conn.execute(text("SELECT 1"))
        except DatabaseError as e:
            # Whatever keeps `SELECT 1` from answering makes the database unusable.
            raise DatabaseUnavailable(f"database unavailable: {describe_error(e.__cause__ or e)}") from e
        return True


class SqlStore:
    """Base of the SQL stores: their `database`, through which alone they
    reach it."""

    def __init__(self, source: Database | Engine | URL | str):
        """`source`: a Database, an Engine, or a URL whose Engine is made on first use."""
        self.database = source if isinstance(source, Database) else Database(source)

    @property
    def engine(self) -> Engine:
        return self.database.engine

    def ping(self) -> bool:
        """True, or DatabaseUnavailable whatever went wrong (readiness)."""
        return self.database.ping()


__all__ = ["make_engine", "database_url", "describe_error", "sqlite_file_missing", "inserted_id", "Database",
           "SqlStore", "WRITE_INTENT", "open_request_scope", "close_request_scope"]
