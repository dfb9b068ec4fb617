"""The LDIF templates each account type is created from (`ldif_templates/`).

A template is one LDIF entry with `$placeholders`.  Values put into the `dn:`
line are escaped as RDN values; values elsewhere are used as they are, and
may not contain line breaks.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache, cached_property

from ldap3.utils.dn import escape_rdn

from iredldap.paths import templates_dir


@dataclass(frozen=True)
class Template:
    name: str
    dn: str
    lines: tuple[tuple[str, str], ...]

    @property
    def object_classes(self) -> tuple[str, ...]:
        return tuple(v for k, v in self.lines if k.lower() == "objectclass")

    @property
    def rdn_attr(self) -> str:
        return self.dn.split("=", 1)[0]

    @cached_property
    def key(self) -> str:
        """The placeholder that names the entry: the one in its RDN value
        (`mail` for `mail=$mail,...`, `domain` for `mail=@$domain,...`)."""
        rdn_value = self.dn.split(",", 1)[0].split("=", 1)[1]
        return next(named or braced for _, named, braced, _ in string.Template.pattern.findall(rdn_value))

    @cached_property
    def parent(self) -> str:
        """The `dn:` line without its RDN: the container formula."""
        return self.dn.split(",", 1)[1]

    @property
    def container(self) -> str:
        """The `ou` the entries live in below their domain ("" when not in one)."""
        first = self.parent.split(",", 1)[0]
        return first[3:] if first.lower().startswith("ou=") else ""

    def placeholders(self) -> set[str]:
        found = set()
        for text in [self.dn, *(v for _, v in self.lines)]:
            for _, named, braced, _ in string.Template.pattern.findall(text):
                found.add(named or braced)
        return found

    def render(self, **values: str) -> tuple[str, dict[str, list[str]]]:
        """Return (dn, attributes) with the placeholders filled in."""
        for key, value in values.items():
            if "\n" in str(value) or "\r" in str(value):
                raise ValueError(f"template value {key} contains a line break")
        dn_values = {k: escape_rdn(str(v)) if not k.endswith("_dn") else str(v) for k, v in values.items()}
        dn = string.Template(self.dn).substitute(dn_values)
        attrs: dict[str, list[str]] = {}
        for key, raw in self.lines:
            value = string.Template(raw).substitute(values)
            if value != "":
                attrs.setdefault(key, []).append(value)
        return dn, attrs


def _parse(name: str, text: str) -> Template:
    logical: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if line.startswith(" ") and logical:
            logical[-1] += line[1:]
        elif line.strip():
            logical.append(line)
    pairs = []
    for line in logical:
        key, sep, value = line.partition(":")
        if not sep or value.startswith(":") or value.startswith("<"):
            raise ValueError(f"template {name}: only plain `attr: value` lines are supported: {line!r}")
        pairs.append((key.strip(), value.strip()))
    if not pairs or pairs[0][0].lower() != "dn":
        raise ValueError(f"template {name}: must start with a dn: line")
    return Template(name, pairs[0][1], tuple(pairs[1:]))


@cache
def load(name: str) -> Template:
    path = templates_dir() / f"{name}.ldif"
    return _parse(name, path.read_text(encoding="utf-8"))
