"""What the tables of a database we do not own really look like.

The Amavisd and iRedAPD databases belong to an iRedMail server: we read and
write their tables as they are and never alter them.  Their shape differs
between versions and engines (``throttle.max_rcpts`` exists since iRedAPD
5.0; ``greylisting.sender`` is VARCHAR(100) on MySQL and VARCHAR(255) on
PostgreSQL), so the stores ask `LiveSchema` before writing.

Tables that exist are inspected once and remembered; a missing table is
asked about again next time (``iredldap init-sql`` may create it meanwhile).
An SQLite file that does not exist has no tables -- and is not created by
asking.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, Engine

from iredldap.db.engine import WRITE_INTENT, database_url, describe_error, make_engine
from iredldap.errors import DatabaseUnavailable


@dataclass(frozen=True)
class LiveTable:
    name: str
    columns: frozenset[str]
    # Column -> maximum length (characters, or bytes for binary columns).
    lengths: dict[str, int]

    def has(self, column: str) -> bool:
        return column in self.columns


def sqlite_file_missing(url: URL) -> bool:
    """True for the URL of an SQLite file that does not exist (yet)."""
    if url.get_backend_name() != "sqlite":
        return False
    db = url.database or ""
    if not db or db == ":memory:" or db.startswith("file:"):
        return False
    return not Path(db).expanduser().exists()


class EngineSource:
    """An Engine, or a URL whose Engine (`make_engine`) is made on first use:
    an app wired with a database it never uses does not touch it (and an
    SQLite file is not created by merely configuring it)."""

    def __init__(self, source: Engine | URL | str):
        self._lock = threading.Lock()
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


class LiveSchema:
    def __init__(self, source: EngineSource):
        self.source = source
        self._known: dict[str, LiveTable] = {}
        self._lock = threading.Lock()

    def table(self, name: str) -> LiveTable | None:
        """The live table, or None if the database has no such table."""
        found = self._known.get(name)
        if found is not None:
            return found
        if self.source.missing():
            return None
        with self._lock:
            with self.source.engine.connect() as conn:
                insp = sa_inspect(conn)
                if not insp.has_table(name):
                    return None
                columns = insp.get_columns(name)
        lengths = {}
        for col in columns:
            length = getattr(col["type"], "length", None)
            if isinstance(length, int) and length > 0:
                lengths[col["name"]] = length
        found = LiveTable(name, frozenset(c["name"] for c in columns), lengths)
        self._known[name] = found
        return found

    def forget(self) -> None:
        with self._lock:
            self._known.clear()


__all__ = ["EngineSource", "LiveSchema", "LiveTable", "sqlite_file_missing"]


class ForeignDatabase:
    """Base of the stores for databases an iRedMail server owns (Amavisd, iRedAPD)."""

    def __init__(self, engine: Engine | str):
        """`engine`: an Engine, or a URL whose Engine is made on first use."""
        self.source = EngineSource(engine)
        self.live = LiveSchema(self.source)

    @property
    def engine(self) -> Engine:
        return self.source.engine

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(**{WRITE_INTENT: True})
            with conn.begin():
                yield conn

    def _retrying(self, work: Callable[[Connection], Any]) -> Any:
        """Run `work` in a write transaction; once more if a concurrent
        writer inserted the same unique key first."""
        for attempt in (1, 2):
            try:
                with self.write() as conn:
                    return work(conn)
            except sa_exc.IntegrityError:
                if attempt == 2:
                    raise

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except sa_exc.SQLAlchemyError as e:
            raise DatabaseUnavailable(f"database unavailable: {describe_error(e)}") from e
        return True
