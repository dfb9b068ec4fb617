"""The mlmmj half of the parameters of `/api/ml/<mail>` (iRedAdmin-Pro's
"Subscribable Mailing List"), declared once.

Pro's parameter names are mlmmjadmin's (reference mlmmj.md, 6), so each one
here is handed to the list spool (`iredldap.mlmmj.ListSpool`) under its
mlmmjadmin name, in mlmmjadmin's vocabulary: `yes`/`no` for flags,
comma-joined lists, newline-joined `custom_headers`.  The parameters that
also live in the LDAP entry (`name`, `owner`, `moderators`,
`max_message_size`) are the account type's fields (model/accounts.py
`MLMMJ_LIST`); `MIRRORED` says which of them go to mlmmj as well.

Where Pro's behaviour is not public, this service decides:

* `is_newsletter` is mlmmjadmin's `enable_newsletter_subscription` flag;
  `newsletter_description` is the entry's `description`;
* a given `accessPolicy` without either posting flag sets mlmmj's posting
  flags to match (`membersonly` -> subscribers only, `moderatorsonly` ->
  moderators only, any other policy -> neither), since iRedAPD leaves those
  two policies to mlmmj (mlmmj.md 1.4);
* `require_confirm` defaults to `yes`, as Pro documents (mlmmjadmin's own
  subscribers route defaults to no);
* `keep_archive` (DELETE) defaults to `yes`, as mlmmjadmin's `archive`.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from iredldap.errors import InvalidInput
from iredldap.model.params import Boolean, CheckedList, Choice, Converted, EmailList, Integer, Param, RawText

YES_NO = {True: "yes", False: "no"}

# Pro (and mlmmjadmin) flags: API parameter -> what it switches.
_FLAGS = (
    ("close_list", "No subscription or unsubscription by mail"),
    ("only_moderator_can_post", "Only moderators may post (From: header)"),
    ("only_subscriber_can_post", "Only subscribers may post (From: header); mlmmj's default: yes"),
    ("disable_subscription", "No new subscriptions (unsubscribing still works)"),
    ("disable_subscription_confirm", "Subscribe without asking the subscriber to confirm (handle with care)"),
    ("disable_digest_subscription", "No subscriptions to the digest version"),
    ("disable_digest_text", "Digests without the text part summing up threads"),
    ("disable_nomail_subscription", "No subscriptions to the nomail version"),
    ("moderated", "Posts are moderated (by `moderators`, else the owners)"),
    ("moderate_non_subscriber_post", "Moderate, instead of refusing, posts of those not allowed to post"),
    ("disable_retrieving_old_posts", "No old posts by mail to <list>+get-N@ (mlmmj's default: yes)"),
    ("only_subscriber_can_get_old_posts", "Only subscribers may get old posts (default: yes)"),
    ("disable_retrieving_subscribers", "Owners may not get the subscribers by mail to <list>+list@"),
    ("disable_send_copy_to_sender", "Senders get no copy of their own posts"),
    ("notify_owner_when_sub_unsub", "Tell the owners of every (un)subscription"),
    ("notify_sender_when_moderated", "Tell the sender when a post is held for moderation"),
    ("disable_archive", "Do not archive posts"),
    ("moderate_subscription", "Subscriptions are moderated (by `subscription_moderators`, else the owners)"),
    # mlmmjadmin's, not in Pro's table
    ("if_mod_send_only_mod_moderate", "Moderation requests go to the moderators only (default: yes)"),
    ("tocc", "The list address may be in To: or Cc: (default: yes)"),
    ("reply_to_sender", "Replies go to the sender"),
    ("disable_notify_subscription_moderated", "No mail telling a subscriber the request is moderated"),
    ("disable_notify_when_missing_listaddress", "No refusal notice when the list address is not in To:/Cc:"),
    ("disable_notify_when_access_denied", "No refusal notice when access rules deny a post"),
    ("disable_notify_when_subscriber_only", "No refusal notice to non-subscribers"),
    ("disable_notify_when_moderator_only", "No refusal notice to non-moderators"),
    ("disable_notify_when_exceeding_max_mail_size", "No refusal notice for too large posts"),
)


def _header_lines(value: str, *, param: str) -> str:
    lines = [line.strip() for line in value.split("\n") if line.strip()]
    for line in lines:
        name, sep, _ = line.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9-]{1,76}", name.strip()):
            raise InvalidInput(f"{param}: {line[:40]!r} is not a `Header: value` line", param=param)
    return "\n".join(lines)


def _header_name(value: str, *, param: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9-]{1,76}:?", value):
        raise InvalidInput(f"{param}: {value[:40]!r} is not a header name", param=param)
    return value


def _host(value: str, *, param: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9.:-]{1,255}", value):
        raise InvalidInput(f"{param}: {value[:40]!r} is not a host name or address", param=param)
    return value


class _HeaderLines(RawText):
    def parse(self, raw: Any, name: str) -> str:
        return _header_lines(super().parse(raw, name), param=name)


# Parameters that only mlmmj keeps (the spool's control files).
PROFILE: tuple[Param, ...] = (
    *(Param(name, Boolean(), summary) for name, summary in _FLAGS),
    Param("is_newsletter", Boolean(), "A newsletter: subscribing and unsubscribing from a web site"),
    Param("extra_addresses", EmailList(), "More addresses of the list (mlmmj's listaddress)"),
    Param("subscription_moderators", EmailList(),
          "Who moderates subscriptions (sets moderate_subscription=yes; empty: the owners)"),
    Param("subject_prefix", RawText(128), "Prefix of the Subject: of posts, spaces kept (empty: none)"),
    Param("custom_headers", _HeaderLines(4096, lines=True),
          "Headers added to every post, one `Header: value` per line (empty: only mlmmjadmin's defaults)"),
    Param("remove_headers", CheckedList(check=_header_name, description="comma-separated header names"),
          "Headers removed from every post, comma-separated (a trailing : optional)"),
    Param("footer_text", RawText(16384, lines=True), "Footer appended to every post (plain text)"),
    Param("footer_html", RawText(16384, lines=True), "Footer appended to every post (HTML)"),
    # Where mlmmj sends: the operator's choice, not a tenant's.
    Param("relay_host", Converted(check=_host, description="host or IP"),
          "SMTP server mlmmj sends through (empty: 127.0.0.1)", global_only=True),
    Param("smtp_port", Integer(minimum=1, maximum=65535), "Its port (iRedMail: 10027)", global_only=True),
    Param("smtp_helo", Converted(check=_host, description="host name"), "HELO name mlmmj uses",
          global_only=True),
)

# API parameter -> mlmmjadmin parameter, where they differ.
SPOOL_NAMES = {"is_newsletter": "enable_newsletter_subscription"}
# Fields of the LDAP entry that mlmmj keeps too (the same names in mlmmjadmin).
MIRRORED = ("name", "owner", "moderators", "max_message_size")
_POSTING = ("only_subscriber_can_post", "only_moderator_can_post")

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

_OWN = {p.name for p in PROFILE}


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return YES_NO[value]
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def spool_form(values: Mapping[str, Any]) -> dict[str, str]:
    """The mlmmjadmin form for the profile parameters in `values` (parsed)."""
    form = {SPOOL_NAMES.get(name, name): _form_value(value) for name, value in values.items()
            if name in _OWN or name in MIRRORED}
    if "max_message_size" in form and form["max_message_size"] == "0":
        form["max_message_size"] = ""
    policy = values.get("accessPolicy")
    if policy and not any(p in values for p in _POSTING):
        form["only_subscriber_can_post"] = YES_NO[policy == "membersonly"]
        form["only_moderator_can_post"] = YES_NO[policy == "moderatorsonly"]
    return form


def shown_profile(profile: Mapping[str, Any]) -> dict[str, Any]:
    """mlmmjadmin's GET profile, with Pro's names added where they differ."""
    out = dict(profile)
    for ours, theirs in SPOOL_NAMES.items():
        if theirs in out:
            out[ours] = out[theirs]
    return out
