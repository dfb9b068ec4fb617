"""The composition root: settings in, a WSGI app out.

Every route, store and error handler is wired here and nowhere else.  The
route table (`ROUTES`) says for each URI template which responder answers
it and who may call each of its methods (`authz.Rule`); `RULES`, the access
table the middleware applies, is derived from it, and `create_app` refuses
a responder method that has no rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Mapping

import falcon

from iredldap.backends import Backends, attach_journal, connect, resume_unfinished, tree_of
from iredldap.config import Settings
from iredldap.db.policy_accounts import PolicyAccounts
from iredldap.directory.admins import AdminStore
from iredldap.directory.domains import DomainStore
from iredldap.directory.export import Exporter
from iredldap.directory.groups import group_store
from iredldap.directory.mlmmj_lists import SubscribableListStore
from iredldap.directory.limits import AdminLimits
from iredldap.directory.users import UserStore
from iredldap.web import openapi
from iredldap.web.authz import Rule
from iredldap.web.responders import admins, change_email, docs, domains, groups, login, mlmmj_lists, policies, users
from iredldap.web import errors
from iredldap.web.responders import health, log as log_resource, tokens as token_resources
from iredldap.web.responders import ldif as ldif_resources
from iredldap.web.responders import check as check_resource
from iredldap.check import Checker
from iredldap.web.common import PasswordCheck
from iredldap.model import json_text
from iredldap.web.bounds import BodyLimit, Methods, json_dumps
from iredldap.web.middleware import Authentication, ClientAccess, DirectoryRequest, RequestScope
from iredldap.web.forms import FormOrJsonHandler
from iredldap.web.slashes import MergeSlashes
from iredldap.db.sessions import SessionStore
from iredldap.startup import prepare_databases
from iredldap.web.audit import AuditLog
from iredldap.metrics import RequestMetrics
from iredldap.model import params
from iredldap.model.accounts import ACCOUNT_TYPES, GROUP_TYPES, MLMMJ_LIST, AccountType
from iredldap.db.tokens import TokenStore


class MissingAccessRule(Exception):
    """A responder method without an access rule in the route table."""


@dataclass(frozen=True)
class Route:
    """A URI template: the responder answering it (made from the stores
    create_app wires, its `wired` namespace) and who may call each of its
    HTTP methods."""

    template: str
    responder: Callable[[Any], Any]
    rules: Mapping[str, Rule]
    # falcon's add_route suffix: the responders are on_<method>_<suffix>.
    suffix: str = ""


def route(template: str, responder: Callable[[Any], Any], *, suffix: str = "", **rules: Rule) -> Route:
    return Route(template, responder, rules, suffix)


P, L, G, D, M, C = Rule.PUBLIC, Rule.LOGGED_IN, Rule.GLOBAL, Rule.DOMAIN, Rule.MAIL_DOMAIN, Rule.CREATE_DOMAIN
DC = Rule.DOMAIN_CHANGE
A, U, W, X = Rule.ACCOUNT, Rule.MAIL_ACCOUNT, Rule.ACCOUNT_CHANGE, Rule.DELETE_DOMAIN


def _ldif(account: AccountType, rule: Rule) -> Route:
    return route(account.ldif_route, lambda w: ldif_resources.LdifExport(w.exporter, account, w.settings), GET=rule)


# Who may export each type's entries as LDIF; list-like types as their other routes.
_LDIF_RULES = {"domain": D, "catchall": D, "user": M, "admin": G, MLMMJ_LIST.name: M,
               **{t.name: M for t in GROUP_TYPES}}


def _subscribable_routes() -> tuple[Route, ...]:
    """The routes of subscribable (mlmmj) lists: the same access as the old
    lists' (_group_routes); subscribers may be anywhere."""
    urls = MLMMJ_LIST.routes
    return (
        route(urls.item, lambda w: mlmmj_lists.SubscribableListItem(w.mlmmj_lists, limits=w.limits,
                                                                    policies=w.policy_accounts),
              GET=M, POST=U, PUT=U, DELETE=U),
        route(urls.change_email, lambda w: change_email.ChangeEmail(
            w.mlmmj_lists, MLMMJ_LIST.label, w.domains, w.iredadmin, w.policy_accounts), POST=U),
        route(urls.collection, lambda w: mlmmj_lists.SubscribableListCollection(w.mlmmj_lists, w.domains), GET=D),
    )


def _group_routes(account: AccountType) -> tuple[Route, ...]:
    """The routes of an alias-like type (accounts.GROUP_TYPES): the domain of
    `{mail}` must be the admin's, and every write checks the address as
    MAIL_ACCOUNT does.  Such an account holds no admin rights itself, but it
    may sit at the address of an admin above the caller (a standalone admin
    has no mailbox; an operator's alias there takes its mail): whoever could
    change its members, rename or delete it would take that mail."""
    urls = account.routes
    return (
        route(urls.item, lambda w: groups.GroupItem(w.groups[account.name], w.domains, w.iredadmin, limits=w.limits,
                                                    policies=w.policy_accounts),
              GET=M, POST=U, PUT=U, DELETE=U),
        route(urls.change_email, lambda w: change_email.ChangeEmail(
            w.groups[account.name], account.label, w.domains, w.iredadmin, w.policy_accounts), POST=U),
        route(urls.collection, lambda w: groups.GroupCollection(w.groups[account.name], w.domains), GET=D),
    )


ROUTES: tuple[Route, ...] = (
    route("/api/login", lambda w: login.Login(w.settings, w.admins, w.sessions, w.iredadmin), POST=P),
    # Public so that an expired cookie can still be cleared.
    route("/api/logout", lambda w: login.Logout(w.settings, w.sessions), POST=P),
    # Domains
    route("/api/domains", lambda w: domains.DomainCollection(w.domains), GET=L),
    route("/api/domain/{domain}", lambda w: w.domain_item, GET=D, POST=C, PUT=D, DELETE=X),
    route("/api/domain/{domain}/keep_mailbox_days/{days}", lambda w: w.domain_item, suffix="keep", DELETE=X),
    route("/api/domain/admins/{domain}", lambda w: domains.DomainAdmins(w.domains, w.admins), GET=D, PUT=D),
    route("/api/domain/services/{domain}", lambda w: domains.DomainServices(w.domains), GET=D, PUT=G),
    # Mail users
    route("/api/user/{mail}", lambda w: w.user_item, GET=M, POST=U, PUT=U, DELETE=U),
    route("/api/user/{mail}/keep_mailbox_days/{days}", lambda w: w.user_item, suffix="keep", DELETE=U),
    route("/api/user/{mail}/change_email/{new_mail}",
          lambda w: change_email.ChangeEmail(w.users, "user", w.domains, w.iredadmin, w.policy_accounts,
                                             sessions=w.sessions), POST=U),
    route("/api/users/{domain}",
          lambda w: users.UserCollection(w.users, w.settings, w.iredadmin, sessions=w.sessions), GET=D, PUT=D),
    route("/api/verify_password/user/{mail}", lambda w: PasswordCheck(
        "a mail user's", lambda mail: w.users.get(mail, attrs=("userPassword",))), POST=G),
    # Aliases and mailing lists, at the routes their types declare
    *(r for account in GROUP_TYPES for r in _group_routes(account)),
    # Subscribable (mlmmj) lists
    *_subscribable_routes(),
    # Admins
    route("/api/admins", lambda w: admins.AdminCollection(w.admins, w.domains), GET=G),
    route("/api/admin/{mail}",
          lambda w: admins.AdminItem(w.admins, w.domains, w.users, w.iredadmin, w.settings, sessions=w.sessions),
          GET=G, POST=G, PUT=G, DELETE=G),
    route("/api/verify_password/admin/{mail}", lambda w: PasswordCheck("an admin's", w.admins.require), POST=G),
    # Spam policy, throttling, greylisting, white/blacklists (SQL)
    route("/api/spampolicy/global", lambda w: policies.SpamPolicy(w.amavisd, w.policy_targets, "global"),
          GET=G, PUT=G, DELETE=G),
    route("/api/spampolicy/domain/{domain}", lambda w: policies.SpamPolicy(w.amavisd, w.policy_targets, "domain"),
          GET=D, PUT=DC, DELETE=DC),
    route("/api/spampolicy/user/{mail}", lambda w: policies.SpamPolicy(w.amavisd, w.policy_targets, "user"),
          GET=M, PUT=U, DELETE=U),
    route("/api/throttle/{account}/{direction}", lambda w: policies.Throttle(w.iredapd, w.policy_targets),
          GET=A, POST=W, DELETE=W),
    route("/api/greylisting/all", lambda w: policies.GreylistingAll(w.iredapd), GET=G),
    route("/api/greylisting/whitelist_spf_domains", lambda w: policies.GreylistingSpfDomains(w.iredapd),
          GET=G, POST=G),
    route("/api/greylisting/{account}", lambda w: policies.Greylisting(w.iredapd, w.policy_targets),
          GET=A, POST=W, DELETE=W),
    route("/api/greylisting/{account}/whitelists",
          lambda w: policies.GreylistingWhitelists(w.iredapd, w.policy_targets), GET=A, POST=W),
    route("/api/wblist/{direction}/{listname}/{account}", lambda w: policies.WBList(w.amavisd, w.policy_targets),
          GET=A, POST=W, PUT=W, DELETE=W),
    # LDIF export
    *(_ldif(account, _LDIF_RULES[account.name]) for account in ACCOUNT_TYPES),
    # API tokens and the activity log (global admins)
    route("/api/tokens", lambda w: token_resources.TokenCollection(w.tokens, w.admins), GET=G, POST=G),
    route("/api/token/{token_id}", lambda w: token_resources.TokenItem(w.tokens), GET=G, DELETE=G),
    route("/api/log", lambda w: log_resource.Log(w.iredadmin), GET=G),
    route("/api/check", lambda w: check_resource.Check(w.checker), GET=G),
    # Health and metrics (outside /api)
    route("/healthz", lambda w: health.Liveness(), GET=P),
    route("/readyz", lambda w: health.Readiness(w.readiness), GET=P),
    route("/metrics", lambda w: health.Metrics(w.settings), GET=P),
    # The API document and its docs page: they describe the API (what the
    # source and iRedAdmin-Pro's published API tell anyway), no account data.
    route("/api", lambda w: w.docs.index, GET=P),
    route("/api/openapi.json", lambda w: w.docs.document, GET=P),
    route("/api/docs", lambda w: w.docs.page, GET=P),
    route("/api/docs/{name}", lambda w: w.docs.asset, GET=P),
)

def rules_of(routes: Iterable[Route]) -> dict[tuple[str, str], Rule]:
    return {(r.template, method): rule for r in routes for method, rule in r.rules.items()}


#: (URI template, HTTP method) -> who may call it: the access table the
#: authentication middleware applies (iredldap.web.authz); a request to a
#: route missing from it is refused.
RULES = rules_of(ROUTES)


def check_rules(routes: Iterable[tuple[Route, Any]]) -> None:
    """Refuse (MissingAccessRule) a route whose responder answers a method
    that has no access rule, or that has a rule for a method it does not answer."""
    for declared, resource in routes:
        for method in falcon.COMBINED_METHODS:
            name = f"on_{method.lower()}" + (f"_{declared.suffix}" if declared.suffix else "")
            answers = callable(getattr(resource, name, None))
            if answers and method not in declared.rules:
                raise MissingAccessRule(f"{method} {declared.template}: {type(resource).__name__}.{name} "
                                        f"has no access rule")
            if method in declared.rules and not answers:
                raise MissingAccessRule(f"{method} {declared.template}: a rule but no responder "
                                        f"{type(resource).__name__}.{name}")


def create_app(settings: Settings, backends: Backends | None = None, *,
               routes: Iterable[Route] = ROUTES) -> falcon.App:
    backends = backends or connect(settings)
    routes = tuple(routes)
    # The module's RULES itself for the standard table (what the middleware and tests read).
    rules = RULES if routes == ROUTES else rules_of(routes)
    # Our own tables (api_tokens ...) beside iRedAdmin's, made where missing.
    prepare_databases(backends.iredadmin)
    tree = tree_of(settings)
    journal = attach_journal(backends, tree)
    domain_store = DomainStore(backends.directory, tree, default_transport=settings.default_mta_transport)
    admin_store = AdminStore(backends.directory, tree)
    user_store = UserStore(backends.directory, tree, settings, kept_maildirs=backends.iredadmin.kept_maildirs)
    admin_limits = AdminLimits(domain_store, user_store)
    # The mlmmj half of subscribable lists (MLMMJ_BACKEND: mlmmjadmin or the local spool).
    list_spool = backends.list_spool_of(settings)
    mlmmj_store = SubscribableListStore(backends.directory, tree, list_spool,
                                        transport_name=settings.mlmmj_mta_transport_name)
    api_tokens = TokenStore(backends.iredadmin, settings.secret_key)
    sessions = SessionStore(backends.iredadmin, settings.secret_key, settings.session_timeout)
    # Engines of these are made on first use (see iredldap.db.engine.Database).
    amavisd, iredapd = backends.policy_databases(settings)
    policy_accounts = PolicyAccounts(amavisd, iredapd)

    # The bound of every list parameter (iredldap.model.params), from MAX_LIST_ITEMS.
    params.set_max_list_items(settings.max_list_items)
    audit_log = AuditLog(backends.iredadmin, settings.url_prefix, rules=rules)
    # (mypy joins these classes to `object` instead of matching each to
    # falcon's middleware protocols, which they all satisfy)
    app = falcon.App(middleware=[  # type: ignore[arg-type]
        MergeSlashes(),  # first: everything after it sees the canonical path
        RequestScope(),  # one SQL connection per database, given back after the audit row
        RequestMetrics(settings.url_prefix),
        DirectoryRequest(backends.directory),
        Methods(),
        BodyLimit(settings.max_request_body),
        ClientAccess(settings),
        audit_log,
        Authentication(settings, sessions, admin_store, domain_store, api_tokens, rules=rules, journal=journal),
    ])
    # Clients send `catchall=` to mean "none": keep blank values everywhere.
    app.req_options.keep_blank_qs_values = True
    app.req_options.auto_parse_qs_csv = False
    # (a JSON object labelled as a form, as `curl -d` sends it, is read as JSON)
    app.req_options.media_handlers[falcon.MEDIA_URLENCODED] = FormOrJsonHandler(keep_blank=True, csv=False)
    app.req_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(loads=json_text.loads)
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(dumps=json_dumps)
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)

    # What the responders are made of (`Route.responder`).
    wired = SimpleNamespace(
        settings=settings, iredadmin=backends.iredadmin, amavisd=amavisd, iredapd=iredapd,
        domains=domain_store, admins=admin_store, users=user_store, limits=admin_limits,
        # Aliases and mailing lists: one store per declared type (model/accounts.py).
        groups={account.name: group_store(backends.directory, tree, account) for account in GROUP_TYPES},
        mlmmj_lists=mlmmj_store,
        sessions=sessions, tokens=api_tokens, policy_accounts=policy_accounts,
        policy_targets=policies.Accounts(domain_store, backends.directory, tree),
        exporter=Exporter(backends.directory, tree),
        checker=Checker(backends.directory, tree, iredadmin=backends.iredadmin, journal=journal,
                        policies=policy_accounts, spool=list_spool),
        readiness={
            "directory": health.directory_check(backends.directory, settings.ldap_suffix),
            "iredadmin": backends.iredadmin.ping,
            "amavisd": health.foreign_db_check(amavisd),
            "iredapd": health.foreign_db_check(iredapd),
            # Reported, but not failing readiness: without mlmmj only the
            # subscribable lists answer 503.
            "mlmmj": health.reported_only(list_spool.ping),
        },
        # The API's description, built from the routes and their declarations.
        docs=docs.Responders(settings.url_prefix, lambda: openapi.build(
            added, url_prefix=settings.url_prefix, cookie_name=settings.session_cookie_name, rules=rules)),
    )
    # Responders answering more than one URI template.
    wired.domain_item = domains.DomainItem(domain_store, admin_store, backends.iredadmin, policies=policy_accounts,
                                           limits=admin_limits, sessions=sessions, mlmmj_lists=mlmmj_store)
    wired.user_item = users.UserItem(user_store, domain_store, backends.iredadmin, settings, limits=admin_limits,
                                     policies=policy_accounts, sessions=sessions)
    built = [(declared, declared.responder(wired)) for declared in routes]
    check_rules(built)
    added = [(declared.template, resource, {"suffix": declared.suffix} if declared.suffix else {})
             for declared, resource in built]
    for template, resource, options in added:
        app.add_route(settings.url_prefix + template, resource, **options)
    # Secret parameters are known from the endpoints' declarations.
    audit_log.learn([resource for _, resource, _ in added])
    resume_unfinished(journal)
    return app
