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

import threading
from dataclasses import dataclass

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import URL, Engine

from iredldap.db.engine import Database, SqlStore


@dataclass(frozen=True)
class LiveTable:
    name: str
    columns: frozenset[str]
    # Column -> maximum length (characters, or bytes for binary columns).
    lengths: dict[str, int]

    def has(self, column: str) -> bool:
        return column in self.columns


class LiveSchema:
    def __init__(self, database: Database):
        self.database = database
        self._known: dict[str, LiveTable] = {}
        self._lock = threading.Lock()

    def table(self, name: str) -> LiveTable | None:
        """The live table, or None if the database has no such table."""
        found = self._known.get(name)
        if found is not None:
            return found
        if self.database.missing():
            return None
        with self._lock:
            with self.database.read() as conn:
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


class ForeignDatabase(SqlStore):
    """Base of the stores for databases an iRedMail server owns (Amavisd, iRedAPD)."""

    def __init__(self, source: Database | Engine | URL | str):
        """`source`: an Engine, or a URL whose Engine is made on first use."""
        super().__init__(source)
        self.live = LiveSchema(self.database)


__all__ = ["ForeignDatabase", "LiveSchema", "LiveTable"]
