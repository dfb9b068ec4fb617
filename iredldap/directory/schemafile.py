"""Read LDAP schema definitions from OpenLDAP schema files.

Two file forms are understood:

* the slapd.conf form (``*.schema``): ``attributetype ( ... )`` and
  ``objectclass ( ... )`` statements, a statement continuing on every
  following line that starts with white space;
* the cn=config form (``*.ldif``): ``olcAttributeTypes:`` and
  ``olcObjectClasses:`` values of an ``olcSchemaConfig`` entry, folded the
  LDIF way and possibly carrying ``{n}`` ordering prefixes.

Each definition is parsed into a small frozen dataclass. ``definition``
keeps the statement text with its white space collapsed, which is the form
ldap3 (and an LDAP server's subschema entry) expects.

Only what the iredldap schema files and the standard OpenLDAP ones use is
supported; ``objectidentifier`` macros and other statements are skipped.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

__all__ = [
    "AttributeTypeDef",
    "ObjectClassDef",
    "SchemaFile",
    "SchemaParseError",
    "load_schema",
    "parse_attribute_type",
    "parse_ldif_schema_text",
    "parse_object_class",
    "parse_schema_text",
]


class SchemaParseError(ValueError):
    """A definition could not be read."""


@dataclass(frozen=True)
class AttributeTypeDef:
    oid: str
    names: tuple[str, ...]
    desc: str | None = None
    sup: str | None = None
    equality: str | None = None
    ordering: str | None = None
    substr: str | None = None
    syntax: str | None = None  # with its length hint, e.g. "1.3.6.1.4.1.1466.115.121.1.26{255}"
    single_value: bool = False
    collective: bool = False
    no_user_modification: bool = False
    obsolete: bool = False
    usage: str | None = None
    definition: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.oid

    @property
    def syntax_oid(self) -> str | None:
        return self.syntax.split("{", 1)[0] if self.syntax else None

    @property
    def syntax_length(self) -> int | None:
        if self.syntax and "{" in self.syntax:
            return int(self.syntax.split("{", 1)[1].rstrip("}"))
        return None


@dataclass(frozen=True)
class ObjectClassDef:
    oid: str
    names: tuple[str, ...]
    desc: str | None = None
    sup: tuple[str, ...] = ()
    kind: str = "STRUCTURAL"  # STRUCTURAL, AUXILIARY or ABSTRACT
    must: tuple[str, ...] = ()
    may: tuple[str, ...] = ()
    obsolete: bool = False
    definition: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.oid


_Def = TypeVar("_Def", AttributeTypeDef, ObjectClassDef)


def _named(definitions: list[_Def], name: str) -> _Def:
    wanted = name.lower()
    for d in definitions:
        if d.oid == name or wanted in (n.lower() for n in d.names):
            return d
    raise KeyError(name)


@dataclass
class SchemaFile:
    attribute_types: list[AttributeTypeDef] = field(default_factory=list)
    object_classes: list[ObjectClassDef] = field(default_factory=list)

    def attribute_type(self, name: str) -> AttributeTypeDef:
        """The attribute type called `name` (any of its names, any case) or with that OID."""
        return _named(self.attribute_types, name)

    def object_class(self, name: str) -> ObjectClassDef:
        return _named(self.object_classes, name)

    def extend(self, other: SchemaFile) -> None:
        self.attribute_types.extend(other.attribute_types)
        self.object_classes.extend(other.object_classes)


# --- tokenizer ---------------------------------------------------------------

# A token is a parenthesis, a quoted string, or a run of anything else that is
# not white space.  "$" separating list members is its own bare token.
_TOKEN = re.compile(r"\s*(?:(\()|(\))|'((?:[^'\\]|\\.)*)'|([^\s()']+))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise SchemaParseError(f"cannot read definition at {text[pos:pos + 40]!r}")
        pos = m.end()
        if m.group(1):
            out.append(("(", "("))
        elif m.group(2):
            out.append((")", ")"))
        elif m.group(3) is not None:
            out.append(("str", m.group(3)))
        else:
            out.append(("word", m.group(4)))
    return out


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise SchemaParseError(f"definition ends too early: {self.text!r}")
        self.i += 1
        return tok

    def expect(self, kind: str) -> str:
        k, v = self.next()
        if k != kind:
            raise SchemaParseError(f"expected {kind!r}, got {v!r} in {self.text!r}")
        return v

    def qdescrs(self) -> tuple[str, ...]:
        """One quoted name, or several inside parentheses."""
        k, v = self.next()
        if k == "str":
            return (v,)
        if k != "(":
            raise SchemaParseError(f"expected a name list, got {v!r}")
        names: list[str] = []
        while (tok := self.next())[0] != ")":
            names.append(tok[1])
        return tuple(names)

    def oids(self) -> tuple[str, ...]:
        """One bare OID/name, or a "$"-separated list inside parentheses."""
        k, v = self.next()
        if k in ("word", "str"):
            return (v,)
        if k != "(":
            raise SchemaParseError(f"expected an OID list, got {v!r}")
        items: list[str] = []
        while (tok := self.next())[0] != ")":
            if tok[1] != "$":
                items.append(tok[1])
        return tuple(items)

    def skip_extension_value(self) -> None:
        # X-... extensions carry a qdstring or a list of them; we keep none.
        k, _ = self.next()
        if k == "(":
            while self.next()[0] != ")":
                pass


def _normalise(text: str) -> str:
    return " ".join(text.split())


# Keywords without a value, and the field each sets to True.
_FLAGS = {"SINGLE-VALUE": "single_value", "COLLECTIVE": "collective",
          "NO-USER-MODIFICATION": "no_user_modification", "OBSOLETE": "obsolete"}


def _parse_description(text: str, what: str, read_keyword) -> tuple[str, tuple[str, ...], dict[str, object]]:
    """The frame both kinds of description share: ``( oid NAME ... DESC ... X-... )``.

    `read_keyword(key, reader, values)` handles the kind's own keywords and
    returns False for a keyword it does not know.
    """
    r = _Reader(text)
    r.expect("(")
    oid = r.expect("word")
    values: dict[str, object] = {}
    names: tuple[str, ...] = ()
    while (tok := r.next())[0] != ")":
        key = tok[1].upper()
        if key == "NAME":
            names = r.qdescrs()
        elif key == "DESC":
            values["desc"] = r.expect("str")
        elif key.startswith("X-"):
            r.skip_extension_value()
        elif not read_keyword(key, r, values):
            raise SchemaParseError(f"unknown keyword {tok[1]!r} in {what} {oid}")
    return oid, names, values


def _attribute_type_keyword(key: str, r: _Reader, values: dict[str, object]) -> bool:
    if key in ("SUP", "EQUALITY", "ORDERING", "SUBSTR", "SYNTAX", "USAGE"):
        values[key.lower()] = r.next()[1]
    elif key in _FLAGS:
        values[_FLAGS[key]] = True
    else:
        return False
    return True


def _object_class_keyword(key: str, r: _Reader, values: dict[str, object]) -> bool:
    if key in ("SUP", "MUST", "MAY"):
        values[key.lower()] = r.oids()
    elif key in ("STRUCTURAL", "AUXILIARY", "ABSTRACT"):
        values["kind"] = key
    elif key == "OBSOLETE":
        values["obsolete"] = True
    else:
        return False
    return True


def parse_attribute_type(text: str) -> AttributeTypeDef:
    """Parse one ``( oid NAME ... )`` attribute type description."""
    oid, names, values = _parse_description(text, "attribute type", _attribute_type_keyword)
    return AttributeTypeDef(oid=oid, names=names, definition=_normalise(text), **values)  # type: ignore[arg-type]


def parse_object_class(text: str) -> ObjectClassDef:
    """Parse one ``( oid NAME ... )`` object class description."""
    oid, names, values = _parse_description(text, "object class", _object_class_keyword)
    return ObjectClassDef(oid=oid, names=names, definition=_normalise(text), **values)  # type: ignore[arg-type]


# --- file forms --------------------------------------------------------------


def parse_schema_text(text: str) -> SchemaFile:
    """Parse the slapd.conf form: attributetype / objectclass statements."""
    statements: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and statements:
            statements[-1] += " " + line.strip()
        else:
            statements.append(line.strip())
    result = SchemaFile()
    for statement in statements:
        keyword, _, rest = re.sub(r"\s", " ", statement, count=1).partition(" ")
        keyword = keyword.lower()
        if keyword == "attributetype":
            result.attribute_types.append(parse_attribute_type(rest))
        elif keyword == "objectclass":
            result.object_classes.append(parse_object_class(rest))
    return result


_ORDER_PREFIX = re.compile(r"^\{\d+\}")


def _ldif_records(text: str) -> list[list[tuple[str, str]]]:
    """Split LDIF into records of (attribute, value) pairs, unfolding lines."""
    records: list[list[tuple[str, str]]] = []
    lines: list[str] = []
    for raw in text.splitlines() + [""]:
        if raw.startswith("#"):
            continue
        if raw.startswith(" ") and lines:
            lines[-1] += raw[1:]  # LDIF folding: drop exactly one leading space
            continue
        if raw.strip():
            lines.append(raw)
            continue
        if lines:
            record: list[tuple[str, str]] = []
            for line in lines:
                attr, sep, value = line.partition(":")
                if not sep:
                    raise SchemaParseError(f"not an LDIF line: {line!r}")
                if value.startswith(":"):
                    value = base64.b64decode(value[1:].strip()).decode("utf-8")
                else:
                    value = value.strip()
                record.append((attr.strip(), value))
            records.append(record)
            lines = []
    return records


def parse_ldif_schema_text(text: str) -> SchemaFile:
    """Parse the cn=config form: olcAttributeTypes / olcObjectClasses values."""
    result = SchemaFile()
    for record in _ldif_records(text):
        for attr, value in record:
            attr = attr.lower()
            if attr == "olcattributetypes":
                result.attribute_types.append(parse_attribute_type(_ORDER_PREFIX.sub("", value)))
            elif attr == "olcobjectclasses":
                result.object_classes.append(parse_object_class(_ORDER_PREFIX.sub("", value)))
    return result


def load_schema(path: str | Path) -> SchemaFile:
    """Parse a ``.schema`` or ``.ldif`` schema file (chosen by its suffix)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".ldif":
        return parse_ldif_schema_text(text)
    return parse_schema_text(text)
