"""The composition root: settings in, a WSGI app out.

Every route, store and error handler is wired here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

import falcon
import ldap3

from .config import Settings
from .db.engine import make_engine
from .db.iredadmin import IredadminDB
from .directory.admins import AdminStore
from .directory.connection import Directory
from .directory.domains import DomainStore
from .directory.tree import Tree
from .directory.users import UserStore
from .resources import domains, errors, login, users
from .resources.middleware import Authentication, ClientAccess
from .sessions import SessionStore


@dataclass
class Backends:
    """What the app talks to; tests build their own (MOCK_SYNC, temporary databases)."""

    directory: Directory
    iredadmin: IredadminDB


def connect(settings: Settings, *, ldap_server: ldap3.Server | None = None,
            ldap_strategy: str = ldap3.SYNC) -> Backends:
    directory = Directory(settings.ldap_uri, settings.ldap_bind_dn, settings.ldap_bind_password,
                          timeout=settings.ldap_timeout, server=ldap_server, strategy=ldap_strategy)
    return Backends(directory=directory, iredadmin=IredadminDB(make_engine(settings.sql_iredadmin_url)))


def tree_of(settings: Settings) -> Tree:
    return Tree(settings.ldap_suffix, settings.domains_dn, settings.admins_dn)


def create_app(settings: Settings, backends: Backends | None = None) -> falcon.App:
    backends = backends or connect(settings)
    tree = tree_of(settings)
    domain_store = DomainStore(backends.directory, tree, default_transport=settings.default_mta_transport)
    admin_store = AdminStore(backends.directory, tree)
    user_store = UserStore(backends.directory, tree, settings)
    sessions = SessionStore(backends.iredadmin, settings.secret_key, settings.session_timeout)

    app = falcon.App(middleware=[
        ClientAccess(settings),
        Authentication(settings, sessions, admin_store, domain_store),
    ])
    # Clients send `catchall=` to mean "none": keep blank values everywhere.
    app.req_options.keep_blank_qs_values = True
    app.req_options.auto_parse_qs_csv = False
    app.req_options.media_handlers[falcon.MEDIA_URLENCODED] = falcon.media.URLEncodedFormHandler(
        keep_blank=True, csv=False)
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)

    domain_item = domains.DomainItem(domain_store, admin_store, backends.iredadmin)
    user_item = users.UserItem(user_store, domain_store, backends.iredadmin, settings)
    routes = [
        ("/api/login", login.Login(settings, admin_store, sessions, backends.iredadmin), {}),
        ("/api/logout", login.Logout(settings, sessions), {}),
        ("/api/domains", domains.DomainCollection(domain_store), {}),
        ("/api/domain/{domain}", domain_item, {}),
        ("/api/domain/{domain}/keep_mailbox_days/{days}", domain_item, {"suffix": "keep"}),
        ("/api/domain/admins/{domain}", domains.DomainAdmins(domain_store, admin_store), {}),
        ("/api/domain/services/{domain}", domains.DomainServices(domain_store), {}),
        ("/api/user/{mail}", user_item, {}),
        ("/api/user/{mail}/keep_mailbox_days/{days}", user_item, {"suffix": "keep"}),
        ("/api/user/{mail}/change_email/{new_mail}", users.UserRename(user_store, domain_store, backends.iredadmin), {}),
        ("/api/users/{domain}", users.UserCollection(user_store, settings, backends.iredadmin), {}),
        ("/api/verify_password/user/{mail}", users.UserPasswordCheck(user_store), {}),
    ]
    for template, resource, options in routes:
        app.add_route(settings.url_prefix + template, resource, **options)
    return app
