"""What the service talks to: the directory and the SQL databases, and the tree's layout.

Built once per worker from the settings (or by tests, with MOCK_SYNC and
temporary databases) and handed to `iredldap.web.app.create_app` and the CLI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import ldap3

from iredldap.config import Settings
from iredldap.db.amavisd import AmavisdDB
from iredldap.db.engine import make_engine
from iredldap.db.iredadmin import IredadminDB
from iredldap.db.iredapd import IredapdDB
from iredldap.db.journal import JournalTable
from iredldap.directory.connection import Directory
from iredldap.directory.journal import WriteJournal
from iredldap.directory.tree import Tree
from iredldap.errors import IredldapError
from iredldap import mlmmj
from iredldap.mlmmj import ListSpool


@dataclass
class Backends:
    """What the app talks to; tests build their own (MOCK_SYNC, temporary databases)."""

    directory: Directory
    iredadmin: IredadminDB
    # None: made from SQL_AMAVISD_URL / SQL_IREDAPD_URL by create_app.
    amavisd: AmavisdDB | None = None
    iredapd: IredapdDB | None = None
    # The mlmmj side of subscribable lists; None: made from MLMMJ_BACKEND.
    list_spool: ListSpool | None = None

    def list_spool_of(self, settings: Settings) -> ListSpool:
        """The ListSpool given, else the one MLMMJ_BACKEND names."""
        if self.list_spool is None:
            self.list_spool = mlmmj.list_spool_of(settings)
        return self.list_spool

    def policy_databases(self, settings: Settings) -> tuple[AmavisdDB, IredapdDB]:
        """The Amavisd and iRedAPD stores: those given, else made from the
        settings (their engines are made on first use)."""
        return (self.amavisd or AmavisdDB(settings.sql_amavisd_url),
                self.iredapd or IredapdDB(settings.sql_iredapd_url))


def connect(settings: Settings, *, ldap_server: ldap3.Server | None = None,
            ldap_strategy: str = ldap3.SYNC) -> Backends:
    directory = Directory(settings.ldap_uris, settings.ldap_bind_dn, settings.ldap_bind_password,
                          timeout=settings.ldap_timeout, server=ldap_server, strategy=ldap_strategy,
                          retry_interval=settings.ldap_retry_interval, sync_base=settings.ldap_suffix)
    return Backends(directory=directory, iredadmin=IredadminDB(make_engine(settings.sql_iredadmin_url)),
                    amavisd=AmavisdDB(settings.sql_amavisd_url), iredapd=IredapdDB(settings.sql_iredapd_url))


def tree_of(settings: Settings) -> Tree:
    return Tree(settings.ldap_suffix, settings.domains_dn, settings.admins_dn)


def attach_journal(backends: Backends, tree: Tree) -> WriteJournal:
    """Give the directory its write journal (in the iredadmin database)."""
    journal = WriteJournal(JournalTable(backends.iredadmin.database), backends.directory, tree.domains_dn)
    backends.directory.journal = journal
    return journal


def resume_unfinished(journal: WriteJournal) -> None:
    """At a worker's start: finish what requests of dead workers left."""
    try:
        journal.resume_all()
    except IredldapError as err:
        logging.getLogger(__name__).warning("unfinished writes not finished at start: %s", err.code)
