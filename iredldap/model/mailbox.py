"""Mailbox paths (`homeDirectory`) in iRedMail's hashed layout.

    <storage base>/<domain>/<u>/<s>/<e>/<user>-<YYYY.MM.DD.HH.MM.SS>/

The first three characters of the local part spread mailboxes over folders
('_' stands in for a missing character or for '.' and '~'); the timestamp
makes a re-created address get a fresh folder and lets the cleanup job
recognise paths it may remove.  Whole seconds are not enough for that on
their own: the user store steps a new path's timestamp past the ones in use
(`home_directory_choices`, UserStore._free_home_directory).
"""

from __future__ import annotations

import time
from datetime import datetime

#: How many seconds a new mailbox path may step its timestamp forward to
#: find one no other account (or kept mailbox) uses.
FREE_PATH_STEPS = 10


def home_directory(mail: str, storage_base: str, *, now: float | None = None, timestamp: bool = True) -> str:
    return _path(mail, storage_base, _stamp(time.time() if now is None else now) if timestamp else "")


def home_directory_choices(mail: str, storage_base: str, *, steps: int = FREE_PATH_STEPS) -> list[str]:
    """The path for this second and the `steps - 1` following ones, in that
    order: the first one not in use is the new mailbox's."""
    start = int(time.time())
    return [_path(mail, storage_base, _stamp(start + k)) for k in range(steps)]


def _stamp(secs: float) -> str:
    # Local time, whole seconds, as iRedMail writes it.
    return datetime.fromtimestamp(int(secs)).strftime("-%Y.%m.%d.%H.%M.%S")


def _path(mail: str, storage_base: str, stamp: str) -> str:
    local, _, domain = mail.lower().partition("@")
    chars = [(local[i] if i < len(local) else "_") for i in range(3)]
    chars = ["_" if c in ".~" else c for c in chars]
    return f"{storage_base.rstrip('/')}/{domain}/{chars[0]}/{chars[1]}/{chars[2]}/{local}{stamp}/"


def path_spellings(path: str, storage_base: str) -> dict[str, list[str]]:
    """How an entry may hold `path`: homeDirectory absolute, mailMessageStore
    below the storage base (iRedMail splits /var/vmail + vmail1/...), each
    with or without the final slash."""
    def both(p: str) -> list[str]:
        p = p.rstrip("/")
        return [p, p + "/"]

    base = storage_base.rstrip("/")
    below = path[len(base) + 1:] if path.startswith(base + "/") else ""
    stores = both(below) if below else []
    last = base.rpartition("/")[2]
    if below and last:
        stores += both(f"{last}/{below}")
    return {"homeDirectory": both(path), "mailMessageStore": stores}


def days_since_epoch(now: float | None = None) -> int:
    """`shadowLastChange` counts days since 1970-01-01."""
    return int((time.time() if now is None else now) // 86400)
