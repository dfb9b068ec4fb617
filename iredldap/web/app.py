"""The composition root: settings in, a WSGI app out.

Every route, store and error handler is wired here and nowhere else.
"""

from __future__ import annotations

import falcon

from iredldap.backends import Backends, attach_journal, connect, resume_unfinished, tree_of
from iredldap.config import Settings
from iredldap.db.amavisd import AmavisdDB
from iredldap.db.iredadmin import IredadminDB
from iredldap.db.iredapd import IredapdDB
from iredldap.db.policy_accounts import PolicyAccounts
from iredldap.directory.admins import AdminStore
from iredldap.directory.domains import DomainStore
from iredldap.directory.export import Exporter
from iredldap.directory.groups import AliasStore, ListStore
from iredldap.directory.limits import AdminLimits
from iredldap.directory.users import UserStore
from iredldap.web import authz, openapi
from iredldap.web.responders import admins, change_email, docs, domains, groups, login, policies, users
from iredldap.web import errors
from iredldap.web.responders import health, log as log_resource, tokens as token_resources
from iredldap.web.responders import ldif as ldif_resources
from iredldap.web.responders import check as check_resource
from iredldap.check import Checker
from iredldap.web.journal import SettleJournal
from iredldap.web.bounds import BodyLimit, Methods, json_dumps, json_loads
from iredldap.web.middleware import Authentication, ClientAccess
from iredldap.web.forms import FormOrJsonHandler
from iredldap.web.slashes import MergeSlashes
from iredldap.db.sessions import SessionStore
from iredldap.startup import prepare_databases
from iredldap.web.audit import AuditLog
from iredldap.metrics import RequestMetrics
from iredldap.model import params
from iredldap.db.tokens import TokenStore


def create_app(settings: Settings, backends: Backends | None = None) -> falcon.App:
    backends = backends or connect(settings)
    # Our own tables (api_tokens ...) beside iRedAdmin's, made where missing.
    prepare_databases(backends.iredadmin)
    tree = tree_of(settings)
    journal = attach_journal(backends, tree)
    domain_store = DomainStore(backends.directory, tree, default_transport=settings.default_mta_transport)
    admin_store = AdminStore(backends.directory, tree)
    user_store = UserStore(backends.directory, tree, settings, kept_maildirs=backends.iredadmin.kept_maildirs)
    alias_store = AliasStore(backends.directory, tree)
    list_store = ListStore(backends.directory, tree)
    admin_limits = AdminLimits(domain_store, user_store)
    api_tokens = TokenStore(backends.iredadmin, settings.secret_key)
    sessions = SessionStore(backends.iredadmin, settings.secret_key, settings.session_timeout)
    # Engines of these are made on first use (see iredldap.db.live.EngineSource).
    amavisd = backends.amavisd or AmavisdDB(settings.sql_amavisd_url)
    iredapd = backends.iredapd or IredapdDB(settings.sql_iredapd_url)
    policy_accounts = PolicyAccounts(amavisd, iredapd)

    # The bound of every list parameter (iredldap.model.params), from MAX_LIST_ITEMS.
    params.set_max_list_items(settings.max_list_items)
    audit_log = AuditLog(backends.iredadmin, settings.url_prefix)
    app = falcon.App(middleware=[
        MergeSlashes(),  # first: everything after it sees the canonical path
        RequestMetrics(settings.url_prefix),
        Methods(),
        BodyLimit(settings.max_request_body),
        ClientAccess(settings),
        audit_log,
        Authentication(settings, sessions, admin_store, domain_store, api_tokens, rules=authz.RULES),
        SettleJournal(journal),
    ])
    # Clients send `catchall=` to mean "none": keep blank values everywhere.
    app.req_options.keep_blank_qs_values = True
    app.req_options.auto_parse_qs_csv = False
    # (a JSON object labelled as a form, as `curl -d` sends it, is read as JSON)
    app.req_options.media_handlers[falcon.MEDIA_URLENCODED] = FormOrJsonHandler(keep_blank=True, csv=False)
    app.req_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(loads=json_loads)
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(dumps=json_dumps)
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)

    domain_item = domains.DomainItem(domain_store, admin_store, backends.iredadmin, policies=policy_accounts,
                                     limits=admin_limits)
    user_item = users.UserItem(user_store, domain_store, backends.iredadmin, settings, limits=admin_limits,
                               policies=policy_accounts, sessions=sessions)
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
        ("/api/user/{mail}/change_email/{new_mail}",
         change_email.ChangeEmail(user_store, "user", domain_store, backends.iredadmin, policy_accounts), {}),
        ("/api/users/{domain}", users.UserCollection(user_store, settings, backends.iredadmin, sessions=sessions), {}),
        ("/api/verify_password/user/{mail}", users.UserPasswordCheck(user_store), {}),
        # Aliases and mailing lists
        ("/api/alias/{mail}", groups.GroupItem(alias_store, domain_store, backends.iredadmin,
                                               check_admin_limit=admin_limits.check_aliases,
                                               admin_ceilings=admin_limits.alias_ceilings,
                                               policies=policy_accounts), {}),
        ("/api/alias/{mail}/change_email/{new_mail}",
         change_email.ChangeEmail(alias_store, "alias", domain_store, backends.iredadmin, policy_accounts), {}),
        ("/api/aliases/{domain}", groups.GroupCollection(alias_store, domain_store), {}),
        ("/api/maillist/{mail}", groups.GroupItem(list_store, domain_store, backends.iredadmin,
                                                  check_admin_limit=admin_limits.check_lists,
                                                  admin_ceilings=admin_limits.list_ceilings,
                                                  policies=policy_accounts), {}),
        ("/api/maillist/{mail}/change_email/{new_mail}",
         change_email.ChangeEmail(list_store, "mailing list", domain_store, backends.iredadmin, policy_accounts),
         {}),
        ("/api/maillists/{domain}", groups.GroupCollection(list_store, domain_store), {}),
        # Admins
        ("/api/admins", admins.AdminCollection(admin_store, domain_store), {}),
        ("/api/admin/{mail}",
         admins.AdminItem(admin_store, domain_store, user_store, backends.iredadmin, settings,
                          sessions=sessions), {}),
        ("/api/verify_password/admin/{mail}", admins.AdminPasswordCheck(admin_store), {}),
        # Spam policy, throttling, greylisting, white/blacklists (SQL)
        *policies.routes(amavisd, iredapd, policies.Accounts(domain_store, backends.directory, tree)),
        # LDIF export
        *ldif_resources.routes(Exporter(backends.directory, tree), settings),
        # API tokens and the activity log (global admins)
        ("/api/tokens", token_resources.TokenCollection(api_tokens, admin_store), {}),
        ("/api/token/{token_id}", token_resources.TokenItem(api_tokens), {}),
        ("/api/log", log_resource.Log(backends.iredadmin), {}),
        ("/api/check", check_resource.Check(Checker(backends.directory, tree, iredadmin=backends.iredadmin,
                                                    journal=journal, policies=policy_accounts)), {}),
        # Health and metrics (outside /api)
        ("/healthz", health.Liveness(), {}),
        ("/readyz", health.Readiness({
            "directory": health.directory_check(backends.directory, settings.ldap_suffix),
            "iredadmin": backends.iredadmin.ping,
            "amavisd": health.foreign_db_check(amavisd),
            "iredapd": health.foreign_db_check(iredapd),
        }), {}),
        ("/metrics", health.Metrics(settings), {}),
    ]
    # The API's description, built from the routes above and their declarations.
    routes += docs.routes(settings.url_prefix, lambda: openapi.build(
        routes, url_prefix=settings.url_prefix, cookie_name=settings.session_cookie_name))
    for template, resource, options in routes:
        app.add_route(settings.url_prefix + template, resource, **options)
    # Secret parameters are known from the endpoints' declarations.
    audit_log.learn([resource for _, resource, _ in routes])
    resume_unfinished(journal)
    return app
