"""Files holding secrets (bind passwords, SECRET_KEY, password hashes, the
databases) are created readable by their owner only.

The mode is given when the file is created, never set afterwards: a file
written first and chmod-ed next is readable by everyone in between.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# For processes we start that create such files (slapd, slapadd).
PRIVATE_UMASK = 0o077


def create_private(path: str | Path) -> bool:
    """Create `path` empty with mode 0600 unless it exists; True if created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def write_private(path: str | Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only.

    A new file is created 0600; an existing one is made 0600 before the new
    text goes in (what it held before was exposed already, the new secret is not).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        os.ftruncate(fd, 0)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            fd = -1
            out.write(text)
    finally:
        if fd >= 0:
            os.close(fd)


def open_private(path: str | Path, mode: str = "wb"):
    """open() for writing a new or truncated file created 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    except OSError:
        os.close(fd)
        raise
    return os.fdopen(fd, mode)


def make_private_dir(path: str | Path) -> None:
    """mkdir -p; the folders it creates are 0700 (existing ones are left alone)."""
    path = Path(path)
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            pass
