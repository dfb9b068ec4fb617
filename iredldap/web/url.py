"""The parts of a request's URL ({domain}, {mail}, {days} ...), parsed once
from their declaration (iredldap.model.params.URL_PARAMS).

The authentication middleware parses them before anything else looks at
them; the access check, a token's domain limit and the responders (which
receive the parsed values as their arguments) use the result.  A part that
does not parse keeps its error, raised where the value is first needed: a
caller who may not use the endpoint at all still gets its 401 or 403.
"""

from __future__ import annotations

from typing import Any, Mapping

from iredldap.errors import InvalidInput
from iredldap.model.params import URL_PARAMS
from iredldap.model.policy_addresses import Account


class UrlParts:
    def __init__(self, raw: Mapping[str, Any]):
        self.raw = dict(raw)
        self.values: dict[str, Any] = {}
        self.errors: dict[str, InvalidInput] = {}
        for name, value in self.raw.items():
            param = URL_PARAMS.get(name)
            if param is None:
                self.values[name] = value
                continue
            try:
                self.values[name] = param.kind.parse(value, name)
            except InvalidInput as exc:
                self.errors[name] = exc

    def __contains__(self, name: str) -> bool:
        return name in self.raw

    def __getitem__(self, name: str) -> Any:
        """The parsed value; raises its InvalidInput if it did not parse."""
        if name in self.errors:
            raise self.errors[name]
        return self.values[name]

    def valid(self, name: str) -> Any:
        """The parsed value of `name`; None when the URL has no such part or it did not parse."""
        return None if name in self.errors else self.values.get(name)

    def require_valid(self) -> None:
        """Raise the error of the first part (in URL order) that did not parse."""
        for name in self.raw:
            if name in self.errors:
                raise self.errors[name]

    def domain_of(self, name: str) -> str | None:
        """The domain that the part `name` names (None: `global`), also when
        it did not parse: then read from it as it is, so that a domain
        limit refuses it (403) as surely as a valid name outside it."""
        if name in self.errors:
            raw = str(self.raw[name]).strip().lower()
            if name == "account" and raw == "global":
                return None
            return raw.rpartition("@")[2]
        value = self.values[name]
        if isinstance(value, Account):
            if value.kind == "global":
                return None
            value = value.name
        return str(value).rpartition("@")[2]
