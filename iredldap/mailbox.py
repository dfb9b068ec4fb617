"""Mailbox paths (`homeDirectory`) in iRedMail's hashed layout.

    <storage base>/<domain>/<u>/<s>/<e>/<user>-<YYYY.MM.DD.HH.MM.SS>/

The first three characters of the local part spread mailboxes over folders
('_' stands in for a missing character or for '.' and '~'); the timestamp
makes a re-created address get a fresh folder and lets the cleanup job
recognise paths it may remove.
"""

from __future__ import annotations

import time


def home_directory(mail: str, storage_base: str, *, now: float | None = None, timestamp: bool = True) -> str:
    local, _, domain = mail.lower().partition("@")
    chars = [(local[i] if i < len(local) else "_") for i in range(3)]
    chars = ["_" if c in ".~" else c for c in chars]
    stamp = time.strftime("-%Y.%m.%d.%H.%M.%S", time.localtime(now)) if timestamp else ""
    return f"{storage_base.rstrip('/')}/{domain}/{chars[0]}/{chars[1]}/{chars[2]}/{local}{stamp}/"


def days_since_epoch(now: float | None = None) -> int:
    """`shadowLastChange` counts days since 1970-01-01."""
    return int((time.time() if now is None else now) // 86400)
