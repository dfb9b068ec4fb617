"""The write journal's rows in iRedAdmin's database (tables `write_journal`
and `write_journal_steps`, see `iredldap.db.tables`).

Only storage lives here; what a step means and how an unfinished journal is
finished is `iredldap.directory.journal`.  Steps are JSON text.  Every
method commits before it returns: the journal must be on disk before the
LDAP write it describes is sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import and_, bindparam, delete, insert, select, update

from iredldap.db import tables as t
from iredldap.db.engine import SqlStore, inserted_id

# The journal's writes, which every journaled batch makes several of:
# statements made once, their values bound when they run.
_INSERT_ROW = insert(t.write_journal)
_INSERT_STEP = insert(t.write_journal_steps)
_MARK_DONE = update(t.write_journal).where(t.write_journal.c.id == bindparam("row_id")).values(
    done=bindparam("new_done"), updated=bindparam("new_updated"))
_DELETE_STEPS = delete(t.write_journal_steps).where(t.write_journal_steps.c.journal_id == bindparam("row_id"))
_CLOSE_ROW = update(t.write_journal).where(t.write_journal.c.id == bindparam("row_id")).values(
    state=bindparam("new_state"), note=bindparam("new_note"), updated=bindparam("new_updated"))
# Read by every request, built once (making it costs more than running it).
_UNFINISHED_ROWS = select(t.write_journal).where(t.write_journal.c.state.in_(t.JOURNAL_UNFINISHED)).order_by(t.write_journal.c.id)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


@dataclass
class JournalRow:
    id: int
    kind: str
    targets: list[str]
    resume: str
    state: str
    owner: str
    done: int
    steps: int
    sealed: bool
    created: datetime
    updated: datetime
    note: str


def _row(r) -> JournalRow:
    return JournalRow(id=int(r.id), kind=r.kind, targets=(r.targets or "").split(), resume=r.resume,
                      state=r.state, owner=r.owner, done=int(r.done), steps=int(r.steps), sealed=bool(r.sealed),
                      created=r.created, updated=r.updated, note=r.note or "")


class JournalTable(SqlStore):
    def open(self, *, kind: str, targets: list[str], resume: str, owner: str, steps: list[dict],
             done: int = 0, sealed: bool = False, state: str = "running") -> int:
        """A new row; `planned`: nothing of it has been sent yet."""
        now = _now()
        with self.database.write() as conn:
            result = conn.execute(_INSERT_ROW, {
                "created": now, "updated": now, "kind": kind, "targets": " ".join(targets), "resume": resume,
                "state": state, "owner": owner, "done": done, "steps": len(steps), "sealed": int(sealed),
                "note": ""})
            journal_id = inserted_id(result)
            self._insert_steps(conn, journal_id, 0, steps)
        return journal_id

    @staticmethod
    def _insert_steps(conn, journal_id: int, first: int, steps: list[dict]) -> None:
        rows = [{"journal_id": journal_id, "seq": first + i, "step": json.dumps(s, separators=(",", ":"))}
                for i, s in enumerate(steps)]
        for i in range(0, len(rows), 200):
            conn.execute(_INSERT_STEP, rows[i:i + 200])

    def append(self, journal_id: int, first: int, steps: list[dict], *, sealed: bool = False) -> None:
        """Add steps `first`.. (write-ahead: before they are sent)."""
        with self.database.write() as conn:
            self._insert_steps(conn, journal_id, first, steps)
            conn.execute(update(t.write_journal).where(t.write_journal.c.id == journal_id)
                         .values(steps=first + len(steps), sealed=int(sealed), updated=_now()))

    def truncate(self, journal_id: int, keep: int) -> None:
        """Drop steps `keep`.. (refused by the directory, so never landed)."""
        c = t.write_journal_steps.c
        with self.database.write() as conn:
            conn.execute(delete(t.write_journal_steps).where(and_(c.journal_id == journal_id, c.seq >= keep)))
            conn.execute(update(t.write_journal).where(t.write_journal.c.id == journal_id)
                         .values(steps=keep, updated=_now()))

    def mark_done(self, journal_id: int, done: int) -> None:
        with self.database.write() as conn:
            conn.execute(_MARK_DONE, {"row_id": journal_id, "new_done": done, "new_updated": _now()})

    def set_state(self, journal_id: int, state: str, note: str | None = None) -> None:
        values = {"state": state, "updated": _now()}
        if note is not None:
            values["note"] = note[:1000]
        with self.database.write() as conn:
            conn.execute(update(t.write_journal).where(t.write_journal.c.id == journal_id).values(**values))

    def claim(self, row: JournalRow, owner: str) -> bool:
        """Take over an unfinished row, unless someone else just did."""
        c = t.write_journal.c
        with self.database.write() as conn:
            result = conn.execute(update(t.write_journal)
                                  .where(and_(c.id == row.id, c.state == row.state, c.owner == row.owner))
                                  .values(state="resuming", owner=owner, updated=_now()))
            return result.rowcount == 1

    def close(self, journal_id: int, state: str, note: str = "") -> None:
        """Finished (`done`) or undone: the steps, which hold entry contents, go."""
        with self.database.write() as conn:
            conn.execute(_DELETE_STEPS, {"row_id": journal_id})
            conn.execute(_CLOSE_ROW, {"row_id": journal_id, "new_state": state, "new_note": note[:1000],
                                      "new_updated": _now()})

    def unfinished(self) -> list[JournalRow]:
        with self.database.read_one() as conn:
            return [_row(r) for r in conn.execute(_UNFINISHED_ROWS)]

    def get(self, journal_id: int) -> JournalRow | None:
        with self.database.read() as conn:
            r = conn.execute(select(t.write_journal).where(t.write_journal.c.id == journal_id)).first()
            return _row(r) if r is not None else None

    def steps(self, journal_id: int) -> list[dict]:
        c = t.write_journal_steps.c
        with self.database.read() as conn:
            return [json.loads(r.step) for r in conn.execute(
                select(c.step).where(c.journal_id == journal_id).order_by(c.seq))]
