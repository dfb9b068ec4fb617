"""Start-up checks shared by `iredldap serve`, gunicorn's master and its workers.

A bad setting, a database driver that is missing, or own tables that cannot
be created stop the service at start with one line naming what is wrong,
instead of a traceback per worker or a 500 on the first request.
"""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

from iredldap.config import Settings
from iredldap.errors import ConfigError, DatabaseUnavailable, IredldapError

log = logging.getLogger(__name__)

#: gunicorn's exit status for "worker failed to boot": the master stops
#: instead of starting the worker again and again.
WORKER_BOOT_ERROR = 3


def prepare_databases(iredadmin) -> list[str]:
    """The service's own tables in the iredadmin database, created where
    missing.  A database that cannot be reached now is not fatal (/readyz
    reports it, and the tables are made on first use)."""
    try:
        created = iredadmin.ensure_own_tables()
    except DatabaseUnavailable as exc:
        log.warning("iredadmin database not reachable at start (%s); its own tables are checked on first use",
                    exc.reason)
        return []
    for name in created:
        log.warning("created table %s in the iredadmin database", name)
    return created


def fail(message: str, status: int = 2) -> NoReturn:
    sys.stderr.write(f"iredldap: {message}\n")
    sys.stderr.flush()
    sys.exit(status)


def settings_or_exit(status: int = 2, path: str | None = None) -> Settings:
    try:
        return Settings.from_sources(path=path)
    except ConfigError as exc:
        fail(f"configuration error: {exc.reason}", status)


def check_or_exit(status: int = 2) -> None:
    """What a worker would do at start, done once up front (gunicorn's
    `on_starting`, `iredldap serve`)."""
    from iredldap.db.engine import make_engine
    from iredldap.db.iredadmin import IredadminDB

    settings = settings_or_exit(status)
    db = IredadminDB(make_engine(settings.sql_iredadmin_url))
    try:
        prepare_databases(db)
    except IredldapError as exc:
        fail(f"{exc.code}: {exc.reason}", status)
    finally:
        db.engine.dispose()
