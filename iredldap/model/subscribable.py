"""The API side of `/api/ml/<mail>` (iRedAdmin-Pro's "Subscribable Mailing
List"): which parameters go to mlmmj, and in what words.

Pro's parameter names are mlmmjadmin's (reference mlmmj.md 6), declared
once in `iredldap.model.mlmmj_profile`.  The ones that also live in the
LDAP entry (`name`, `owner`, `moderators`, `max_message_size`) are the
account type's fields (model/accounts.py `MLMMJ_LIST`), which write the
entry; `spool_form` hands them to mlmmj as well (`MIRRORED`).

Where Pro's behaviour is not public, this service decides:

* `is_newsletter` is mlmmjadmin's `enable_newsletter_subscription` flag
  (either name is accepted); `newsletter_description` is the entry's
  `description`;
* a given `accessPolicy` without either posting flag sets mlmmj's posting
  flags to match (`membersonly` -> subscribers only, `moderatorsonly` ->
  moderators only, any other policy -> neither), since iRedAPD leaves those
  two policies to mlmmj (mlmmj.md 1.4);
* `require_confirm` defaults to `yes`, as Pro documents (mlmmjadmin's own
  subscribers route defaults to no);
* `keep_archive` (DELETE) defaults to `yes`, as mlmmjadmin's `archive`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from iredldap.model import mlmmj_profile as mp
from iredldap.model.params import Boolean, Choice, EmailList, Param

YES_NO = {True: "yes", False: "no"}

# Fields of the LDAP entry that mlmmj keeps too (the same names in mlmmjadmin).
MIRRORED = ("name", "owner", "moderators", "max_message_size")
# API parameter -> mlmmjadmin parameter, where they differ.
SPOOL_NAMES = {"is_newsletter": "enable_newsletter_subscription"}
_POSTING = ("only_subscriber_can_post", "only_moderator_can_post")


def _as_api(param: Param) -> Param:
    for ours, theirs in SPOOL_NAMES.items():
        if param.name == theirs:
            return replace(param, name=ours, aliases=(theirs, *param.aliases),
                           summary=param.summary + " (a newsletter)")
    return param


# The parameters only mlmmj keeps (control/ files), as the API declares them.
PROFILE: tuple[Param, ...] = tuple(_as_api(p) for p in mp.PROFILE_API_PARAMS if p.name not in MIRRORED)

SUBSCRIPTION = Choice(("normal", "digest", "nomail"))
_CONFIRM = Param("require_confirm", Boolean(),
                 "Ask each new subscriber to confirm by mail (default: yes, as Pro documents)")
_SUBSCRIPTION = Param("subscription", SUBSCRIPTION, "Which version they get: normal, digest, nomail (default normal)")
CREATE_SUBSCRIBERS = (Param("subscribers", EmailList(), "Subscribe these addresses (any domain)"),
                      _CONFIRM, _SUBSCRIPTION)
UPDATE_SUBSCRIBERS = (Param("add_subscribers", EmailList(), "Subscribe these addresses (any domain)"),
                      _CONFIRM, _SUBSCRIPTION,
                      Param("remove_subscribers", EmailList(), "Unsubscribe these addresses (from every version)"))
KEEP_ARCHIVE = Param("keep_archive", Boolean(),
                     "Keep the list's directory (posts, settings, subscribers) in the archive (default: yes)")

_SPOOL_SIDE = {p.name for p in PROFILE} | set(MIRRORED)


def spool_form(values: Mapping[str, Any]) -> dict[str, str]:
    """The mlmmjadmin form for the parsed request `values` (the parameters
    mlmmj keeps; others left out), checked as both spool backends check it."""
    picked = {SPOOL_NAMES.get(name, name): value for name, value in values.items() if name in _SPOOL_SIDE}
    # The LDAP fields hand on comma-joined text, mlmmj wants the same.
    form = mp.form_of({k: (v.split(",") if k in ("owner", "moderators") and isinstance(v, str) and v else v)
                       for k, v in picked.items()})
    if form.get("max_message_size") == "0":
        form["max_message_size"] = ""
    policy = values.get("accessPolicy")
    if policy and not any(p in values for p in _POSTING):
        form["only_subscriber_can_post"] = YES_NO[policy == "membersonly"]
        form["only_moderator_can_post"] = YES_NO[policy == "moderatorsonly"]
    return mp.check_form(form)


def shown_profile(profile: Mapping[str, Any]) -> dict[str, Any]:
    """mlmmjadmin's GET profile, with Pro's names added where they differ."""
    out = dict(profile)
    for ours, theirs in SPOOL_NAMES.items():
        if theirs in out:
            out[ours] = out[theirs]
    return out
