"""The mlmmj side of subscribable mailing lists: a store, like `directory/`.

A subscribable list is two things (reference mlmmj.md, 1.3): its LDAP entry,
which Postfix and iRedAPD read and the directory store writes, and its mlmmj
list directory (settings in `control/`, subscribers, archive), which mlmmj
reads.  This package writes the second, through one of two backends chosen
by configuration (`MLMMJ_BACKEND`):

* `mlmmjadmin`: iRedMail's mlmmjadmin HTTP API (`iredldap.mlmmj.mlmmjadmin`);
* `local`: the spool on this machine, laid out as mlmmjadmin lays it out
  (`iredldap.mlmmj.spool`).

Both take and give a list's profile in mlmmjadmin's own vocabulary: a form
of parameter names (`only_subscriber_can_post`, `subject_prefix`, ...) to
string values (`yes`/`no` for flags, comma- or newline-joined lists), the
shape mlmmjadmin's POST/PUT take and its GET gives back.  The table of
those parameters is `iredldap.model.mlmmj_profile`.

Errors are the service's own (`iredldap.errors`): `ListSpoolUnavailable`
when the backend cannot be reached (503), `NoSuchAccount` for a list that
has no directory, `InvalidInput` for a value mlmmjadmin refuses,
`ListSpoolError` for any other failure it reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Mapping, Protocol, Sequence

if TYPE_CHECKING:
    from iredldap.config import Settings

SubscriptionKind = Literal["normal", "digest", "nomail"]
SUBSCRIPTION_KINDS: tuple[SubscriptionKind, ...] = ("normal", "nomail", "digest")  # mlmmjadmin's reading order


@dataclass(frozen=True)
class Subscriber:
    mail: str
    subscription: SubscriptionKind


class ListSpool(Protocol):
    """What the web layer needs from the mlmmj side of a list (`mail` is the
    list's primary address, lower case)."""

    def create(self, mail: str, profile: Mapping[str, str]) -> None:
        """Make the list directory with mlmmjadmin's defaults, then `profile`.
        An existing list is not an error (mlmmjadmin's create does not check):
        its subscribers stay, the defaults and `profile` are written again.
        A bad address or parameter value: InvalidInput, nothing written."""

    def update(self, mail: str, profile: Mapping[str, str]) -> None:
        """Write the parameters present in `profile`; others stay.
        NoSuchAccount if the list has no directory."""

    def profile(self, mail: str) -> dict[str, str | list[str]]:
        """All 43 keys as mlmmjadmin's GET gives them; NoSuchAccount if missing."""

    def exists(self, mail: str) -> bool: ...

    def delete(self, mail: str, *, archive: bool) -> str | None:
        """Remove the list; with `archive`, move it aside the way mlmmjadmin
        does and return where it went.  A missing list is not an error."""

    def rename(self, mail: str, new_mail: str) -> None:
        """The list at `mail` becomes `new_mail`: settings, subscribers (and,
        where the backend can, archive) go along.  NoSuchAccount if `mail`
        has no directory, AlreadyExists if `new_mail` has one."""

    def subscribers(self, mail: str) -> list[Subscriber]:
        """In mlmmjadmin's order of versions (normal, nomail, digest); an
        address may be in several.  A missing list has none (mlmmjadmin)."""

    def add_subscribers(self, mail: str, addresses: Sequence[str], *,
                        subscription: SubscriptionKind = "normal", require_confirm: bool = False) -> None:
        """Subscribe directly, or with `require_confirm` have mlmmj ask each
        address to confirm (`mlmmj-sub -C`).  One bad address: InvalidInput,
        none added; NoSuchAccount if the list has no directory."""

    def remove_subscribers(self, mail: str, addresses: Sequence[str]) -> None:
        """`addresses` == ["ALL"] removes every subscriber (mlmmjadmin's rule).
        NoSuchAccount if the list has no directory."""

    def ping(self) -> None:
        """Raise ListSpoolUnavailable if the backend cannot be used now."""


def resubscribe(spool: ListSpool, mail: str, subscribers: Sequence[Subscriber]) -> None:
    """Put `subscribers` on the list at `mail`, each in its own kind, unconfirmed
    (a list made again or moved: they had subscribed already)."""
    for kind in SUBSCRIPTION_KINDS:
        addresses = [s.mail for s in subscribers if s.subscription == kind]
        if addresses:
            spool.add_subscribers(mail, addresses, subscription=kind, require_confirm=False)


def list_spool_of(settings: "Settings") -> ListSpool:
    """The backend the settings choose (`MLMMJ_BACKEND`), for the composition root."""
    if settings.mlmmj_backend == "local":
        from iredldap.mlmmj.spool import LocalSpool

        return LocalSpool(settings.mlmmj_spool_dir, settings.mlmmj_archive_dir, settings.mlmmj_skel_dir)
    from iredldap.mlmmj.mlmmjadmin import MlmmjadminClient

    return MlmmjadminClient(settings.mlmmjadmin_api_base_url, settings.mlmmjadmin_api_auth_token,
                            header=settings.mlmmjadmin_api_auth_header,
                            verify_ssl=settings.mlmmjadmin_api_verify_ssl,
                            timeout=settings.mlmmjadmin_api_timeout)
