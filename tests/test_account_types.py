"""The registry of account types (iredldap.model.accounts.ACCOUNT_TYPES).

Every filter, DN, counter, limit and route of a type is derived from its
declaration, so the declarations themselves are checked here: each type's
filter selects its own entries and nothing else (rendered from the
templates into the directory, and in memory), the declared names exist
where they are used, and every route of every type is mounted and has an
access rule.
"""

from __future__ import annotations

import re

import pytest

from iredldap.backends import tree_of
from iredldap.directory.connection import SUBTREE
from iredldap.directory.tree import CONTAINERS
from iredldap.model import accounts
from iredldap.model.accounts import ACCOUNT_TYPES, ADDRESS_TYPES, GROUP_TYPES, MAILLIST, MLMMJ_LIST, USER
from iredldap.model.templates import load
from iredldap.web.app import RULES

DOMAIN = "types.test"
METHODS = ("GET", "POST", "PUT", "DELETE")


def _values(template_name: str, name: str, tree) -> dict[str, str]:
    """A value for every placeholder of a template: the entry `name` of `DOMAIN`."""
    known = {"mail": name, "list": name, "domain": DOMAIN, "domains_dn": tree.domains_dn,
             "admins_dn": tree.admins_dn, "local_part": name.partition("@")[0], "name": name.partition("@")[0],
             "home_directory": f"/var/vmail/{name}/", "shadow_last_change": "20000", "transport": "dovecot",
             "mlid": "0b8a5c1e-3d2b-4c59-9a51-7b0e6f1d2c3a"}
    template = load(template_name)
    missing = template.placeholders() - set(known)
    assert not missing, f"give the placeholders {missing} of {template_name}.ldif a value here"
    return {k: known[k] for k in template.placeholders()}


def _sample_name(account) -> str:
    return DOMAIN if account.url_part == "domain" else f"{account.name}@{DOMAIN}"


@pytest.fixture
def rendered(directory, settings):
    """One entry of every type (and of every members template) in one domain;
    the subscribable (mlmmj) list shares objectClass mailList with the
    mailing lists."""
    tree = tree_of(settings)
    entries: dict[str, tuple[str, dict]] = {}
    for account in ACCOUNT_TYPES:
        name = _sample_name(account)
        dn, attrs = account.template.render(**_values(account.template_name, name, tree))
        assert dn.lower() == tree.dn(account, name).lower(), f"{account.name}: the store's DN is not the template's"
        entries[account.name] = (dn, attrs)
        if account is accounts.DOMAIN:
            for ou in CONTAINERS:
                entries[f"ou={ou}"] = load("container").render(ou=ou, domain=DOMAIN, domains_dn=tree.domains_dn)
    for account in GROUP_TYPES:
        if account.members_template:
            name = _sample_name(account)
            entries[account.members_template] = load(account.members_template).render(
                **_values(account.members_template, name, tree))
    # The order entries are added in: parents first.
    order = ["domain", *(f"ou={ou}" for ou in CONTAINERS)]
    for key in order + [k for k in entries if k not in order]:
        directory.add(*entries[key])
    return tree, entries


def test_each_types_filter_selects_exactly_its_own_entry(directory, rendered):
    tree, entries = rendered
    for account in ACCOUNT_TYPES:
        found = {e.dn.lower() for e in directory.search(tree.suffix, account.filter(), scope=SUBTREE, attrs=("1.1",))}
        assert found == {entries[account.name][0].lower()}, account.name
        # A narrower filter still holds to the type.
        extra = account.filter("(objectClass=*)")
        assert {e.dn.lower() for e in directory.search(tree.suffix, extra, scope=SUBTREE, attrs=("1.1",))} == found


def test_each_type_matches_exactly_its_own_entry_in_memory(rendered):
    _, entries = rendered
    for account in ACCOUNT_TYPES:
        matched = {key for key, (_, attrs) in entries.items() if account.matches(attrs)}
        assert matched == {account.name}, account.name


def test_the_mailing_lists_filter_leaves_out_subscribable_lists(directory, rendered):
    tree, entries = rendered
    lists = directory.search(tree.container(DOMAIN, MAILLIST.container), MAILLIST.filter(), scope=SUBTREE,
                             attrs=("mail",))
    assert [e.first("mail") for e in lists] == [f"maillist@{DOMAIN}"]
    assert not MAILLIST.matches(entries["ml"][1])
    assert MLMMJ_LIST.matches(entries["ml"][1]) and not MLMMJ_LIST.matches(entries["maillist"][1])


def test_both_kinds_of_list_share_one_counter_and_limit():
    assert accounts.sharing(MAILLIST) == accounts.sharing(MLMMJ_LIST) == (MAILLIST, MLMMJ_LIST)
    assert MAILLIST.counter == MLMMJ_LIST.counter and MAILLIST.admin_limit == MLMMJ_LIST.admin_limit
    from iredldap.directory.journal import COUNTERS
    _, types, flt = COUNTERS["domainCurrentListNumber"]
    assert types == (MAILLIST, MLMMJ_LIST) and flt == f"(|{MAILLIST.filter()}{MLMMJ_LIST.filter()})"


def test_filter_values_are_escaped():
    flt = USER.filter("(mail=%s)", "a*)(objectClass=*")
    assert flt == r"(&(objectClass=mailUser)(!(mail=@*))(mail=a\2a\29\28objectClass=\2a))"


def test_declarations_name_what_exists():
    domain_template = accounts.DOMAIN.template
    domain_settings = {f.setting for f in accounts.DOMAIN.fields if f.setting}
    names = [t.name for t in ACCOUNT_TYPES]
    assert len(names) == len(set(names))
    for account in ACCOUNT_TYPES:
        assert account.label and account.plural and account.export_summary, account.name
        assert account.object_class in account.object_classes, account.name
        assert account.template.key in ("mail", "domain"), account.name
        if account.below_domain:
            assert account.container in CONTAINERS, account.name
        if account.counter:
            assert (account.counter, "0") in domain_template.lines, account.name
        if account.domain_limit:
            assert account.domain_limit in domain_settings, account.name
        if account.admin_limit:
            assert account.admin_limit in accounts.ADMIN_SETTINGS, account.name
    assert {t.name for t in ADDRESS_TYPES} == {"catchall", "user", "maillist", "ml", "alias"}
    for account in GROUP_TYPES:
        assert account.routes.item and account.routes.collection and account.routes.change_email, account.name


def _routes(account) -> list[str]:
    routes = account.routes
    return [r for r in (routes.item, routes.collection, routes.change_email, account.ldif_route) if r]


SAMPLES = {"mail": "someone@own.test", "new_mail": "renamed@own.test", "domain": "own.test"}


@pytest.mark.parametrize("backend", ["mock"])
@pytest.mark.parametrize("account", ACCOUNT_TYPES, ids=lambda t: t.name)
def test_every_route_of_every_type_is_mounted_with_an_access_rule(app, settings, account):
    for template in _routes(account):
        path = settings.url_prefix + re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], template)
        found = app._router.find(path)
        assert found is not None, f"{template} is not mounted"
        resource, _, _, mounted = found
        assert mounted == settings.url_prefix + template
        methods = [m for m in METHODS if hasattr(resource, f"on_{m.lower()}")]
        assert methods, template
        for method in methods:
            assert (template, method) in RULES, f"{method} {template} has no access rule"
