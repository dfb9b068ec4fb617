"""LDIF import: check the whole file, then add the entries parents first.

`Importer.check(path)` reads the file once and collects every problem with
its line number; it writes nothing:

* LDIF syntax, base64, a cut-off file (see iredldap.model.ldif);
* DNs that do not parse or appear twice;
* object classes and attribute types the schema does not know, required
  attributes missing, several values of a single-valued attribute, the
  naming value (the RDN) missing from the entry, and values that cannot
  have the attribute's syntax (boolean, integer, IA5, UTF-8 text, DN);
* each entry's parent must be in the file or already in the directory.

The schema is the server's own (its subschema entry, cn=Subschema on
OpenLDAP), so what is checked is what that server will accept; a server that
publishes none is checked against ldap3's copy of OpenLDAP's standard schema
plus our schema files.

`Importer.run(path, plan)` then reads the file again and adds the entries:
in file order when the file lists parents first (our exports do), otherwise
depth by depth.  An entry that exists is skipped (reported) or, with
`replace`, made equal to the file's version.  Each add is one LDAP
operation, so an interrupted run leaves whole entries behind and running
the same import again finishes the rest.

Operational attributes in the file (slapcat writes them) are left out: the
server sets them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from string import hexdigits
from typing import Callable, Iterator

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

from iredldap.model import ldif
from iredldap.errors import AlreadyExists, InvalidInput, IredldapError
from iredldap.paths import schema_dir
from iredldap.directory.journal import COUNTERS, Applier, domain_of_dn
from iredldap.directory.connection import BASE, REPLACE, Directory
from iredldap.directory.schemafile import (
    AttributeTypeDef,
    ObjectClassDef,
    SchemaFile,
    SchemaParseError,
    load_schema,
    parse_attribute_type,
    parse_object_class,
)
from iredldap.directory.tree import Tree

# -- the schema -----------------------------------------------------------------------

_BOOLEAN = "1.3.6.1.4.1.1466.115.121.1.7"
_DN = "1.3.6.1.4.1.1466.115.121.1.12"
_DIRECTORY_STRING = "1.3.6.1.4.1.1466.115.121.1.15"
_IA5 = "1.3.6.1.4.1.1466.115.121.1.26"
_INTEGER = "1.3.6.1.4.1.1466.115.121.1.27"
_INTEGER_RE = re.compile(rb"-?[0-9]+")

OUR_SCHEMA_FILES = ("amavis.schema", "iredmail.schema")
EXTENSIBLE_OBJECT = "1.3.6.1.4.1.1466.101.120.111"


class KnownSchema:
    """Attribute types and object classes by every name and OID (lower case)."""

    def __init__(self, definitions: SchemaFile, source: str):
        self.source = source
        self._attrs: dict[str, AttributeTypeDef] = {}
        self._classes: dict[str, ObjectClassDef] = {}
        for at in definitions.attribute_types:  # later definitions win
            for key in (at.oid, *at.names):
                self._attrs[key.lower()] = at
        for oc in definitions.object_classes:
            for key in (oc.oid, *oc.names):
                self._classes[key.lower()] = oc
        self._required: dict[str, frozenset[str]] = {}
        self._allowed: dict[str, frozenset[str] | None] = {}

    # -- where it comes from

    @classmethod
    def of_directory(cls, directory: Directory) -> KnownSchema:
        try:
            root = directory.get("", attrs=("subschemaSubentry",))
            dn = root.first("subschemaSubentry") if root else ""
            entry = directory.get(dn, attrs=("attributeTypes", "objectClasses")) if dn else None
        except IredldapError:
            entry = None
        if entry is None or not entry.get("attributeTypes") or not entry.get("objectClasses"):
            return cls.bundled()
        return cls(_parse_all(entry.get("attributeTypes"), entry.get("objectClasses")),
                   f"the server's schema ({dn})")

    @classmethod
    def bundled(cls) -> KnownSchema:
        from ldap3.protocol.schemas.slapd24 import slapd_2_4_schema

        raw = json.loads(slapd_2_4_schema)["raw"]
        definitions = _parse_all(raw["attributeTypes"], raw["objectClasses"])
        for name in OUR_SCHEMA_FILES:
            definitions.extend(load_schema(schema_dir() / name))
        return cls(definitions, "OpenLDAP's standard schema (as bundled with ldap3) and "
                                + ", ".join(OUR_SCHEMA_FILES))

    # -- questions

    def attribute(self, name: str) -> AttributeTypeDef | None:
        return self._attrs.get(name.partition(";")[0].lower())

    def object_class(self, name: str) -> ObjectClassDef | None:
        return self._classes.get(name.lower())

    def key(self, name: str) -> str:
        """One spelling for all names of an attribute type (its OID), options kept."""
        base, sep, options = name.partition(";")
        at = self.attribute(base)
        return (at.oid if at else base.lower()) + (sep + options.lower() if sep else "")

    @staticmethod
    def operational(at: AttributeTypeDef) -> bool:
        return at.no_user_modification or (at.usage or "userApplications") != "userApplications"

    def syntax(self, at: AttributeTypeDef) -> str | None:
        for _ in range(10):  # follow SUP; schemas are shallow
            if at.syntax_oid or not at.sup:
                return at.syntax_oid
            sup = self.attribute(at.sup)
            if sup is None:
                return None
            at = sup
        return None

    def _lineage(self, oc: ObjectClassDef) -> list[ObjectClassDef]:
        """The class and all its superclasses."""
        out: list[ObjectClassDef] = []
        seen: set[str] = set()
        todo = [oc]
        while todo:
            current = todo.pop()
            if current.oid in seen:
                continue
            seen.add(current.oid)
            out.append(current)
            todo.extend(sup for name in current.sup if (sup := self.object_class(name)) is not None)
        return out

    def required(self, oc: ObjectClassDef) -> frozenset[str]:
        """Keys of the MUST attributes of a class and its superclasses."""
        if oc.oid not in self._required:
            self._required[oc.oid] = frozenset(self.key(n) for c in self._lineage(oc) for n in c.must)
        return self._required[oc.oid]

    def allowed(self, oc: ObjectClassDef) -> frozenset[str] | None:
        """Keys of the MUST and MAY attributes of a class and its superclasses; None: any (extensibleObject)."""
        if oc.oid not in self._allowed:
            lineage = self._lineage(oc)
            self._allowed[oc.oid] = None if any(c.oid == EXTENSIBLE_OBJECT for c in lineage) else \
                frozenset(self.key(n) for c in lineage for n in (*c.must, *c.may))
        return self._allowed[oc.oid]

    def supertypes(self, at: AttributeTypeDef) -> list[str]:
        """Keys of the attribute type and its supertypes (a class allowing `name` allows `cn`)."""
        out = [at.oid]
        for _ in range(10):
            if not at.sup or (sup := self.attribute(at.sup)) is None or sup.oid in out:
                break
            out.append(sup.oid)
            at = sup
        return out


def _parse_all(attribute_types, object_classes) -> SchemaFile:
    out = SchemaFile()
    for text in attribute_types:
        try:
            out.attribute_types.append(parse_attribute_type(text))
        except SchemaParseError:
            pass  # a definition we cannot read is one we cannot check against
    for text in object_classes:
        try:
            out.object_classes.append(parse_object_class(text))
        except SchemaParseError:
            pass
    return out


# -- DNs -------------------------------------------------------------------------------

def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out = bytearray()
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            pair = value[i + 1:i + 3]
            if len(pair) == 2 and all(c in hexdigits for c in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            char = value[i + 1]
            i += 1
        out += char.encode("utf-8")
        i += 1
    return out.decode("utf-8", "replace")


@dataclass(frozen=True)
class ParsedDn:
    key: str  # normalised: attribute keys and values in lower case, unescaped
    rdn: tuple[tuple[str, str], ...]  # (attribute as written, value unescaped) of the first RDN
    depth: int

    @property
    def parent_key(self) -> str:
        return self.key.partition(",")[2]


def parse(dn: str, schema: KnownSchema) -> ParsedDn:
    """Raise InvalidInput for a DN that does not parse."""
    try:
        parts = parse_dn(dn)
    except LDAPInvalidDnError as exc:
        raise InvalidInput(f"not a valid DN ({exc}): {dn!r}") from None
    rdns: list[str] = []
    current: list[str] = []
    first: list[tuple[str, str]] = []
    for attr, value, sep in parts:
        plain = _unescape(value.strip())
        if not rdns:
            first.append((attr.strip(), plain))
        current.append(f"{schema.key(attr.strip())}={plain.lower()}")
        if sep != "+":
            rdns.append("+".join(sorted(current)))
            current = []
    return ParsedDn(key=",".join(rdns), rdn=tuple(first), depth=len(rdns))


# -- checking ----------------------------------------------------------------------------

# Neither of these is an IredldapError: they never reach the web API (whose
# error vocabulary those are), only the `iredldap import` command.

class LdifRejected(Exception):
    """The file has problems; nothing was written."""

    def __init__(self, problems: list[ldif.Problem]):
        super().__init__(f"{len(problems)} problem(s) in the file; nothing was written")
        self.problems = problems


@dataclass
class ImportPlan:
    path: Path
    total: int
    depths: list[int]
    parents_first: bool
    schema_source: str
    operational_left_out: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    added: int = 0
    skipped: int = 0
    replaced: int = 0
    unchanged: int = 0


class ImportFailed(Exception):
    """The directory refused an entry; what came before it is written."""

    def __init__(self, record: ldif.Record, cause: IredldapError):
        super().__init__(f"line {record.line}: {record.dn}: {cause.code}: {cause.reason}")
        self.record = record
        self.cause = cause


# (action, record): action is added, skipped, replaced or unchanged.
OnRecord = Callable[[str, ldif.Record], None]


def _valid_syntax(syntax: str | None, value: bytes) -> str | None:
    """Why `value` cannot have `syntax`, or None."""
    if syntax == _BOOLEAN:
        return None if value in (b"TRUE", b"FALSE") else "must be TRUE or FALSE"
    if syntax == _INTEGER:
        return None if _INTEGER_RE.fullmatch(value) else "must be a whole number"
    if syntax == _IA5:
        return None if value.isascii() else "must be ASCII (IA5String)"
    if syntax in (_DIRECTORY_STRING, _DN):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return "must be UTF-8 text"
        if syntax == _DIRECTORY_STRING and not text:
            return "must not be empty"
        if syntax == _DN and text:  # the empty DN (the root) is a DN
            try:
                parse_dn(text)
            except LDAPInvalidDnError:
                return "must be a DN"
    return None


class Importer:
    def __init__(self, directory: Directory, tree: Tree, schema: KnownSchema | None = None):
        self.dir = directory
        self.tree = tree
        self.schema = schema or KnownSchema.of_directory(directory)

    # -- pass 1 ------------------------------------------------------------------------

    def check(self, path: str | Path) -> ImportPlan:
        """Read the whole file; raise LdifRejected listing every problem, or return the plan."""
        path = Path(path)
        problems: list[ldif.Problem] = []
        seen: dict[str, int] = {}  # DN key → line
        waiting: dict[str, tuple[str, list[int]]] = {}  # parent key → (parent DN, lines of its children)
        depths: set[int] = set()
        operational: set[str] = set()
        suffix_key = parse(self.tree.suffix, self.schema).key
        with open(path, "rb") as fh:
            reader = ldif.Reader(fh)
            for record in reader:
                try:
                    dn = parse(record.dn, self.schema)
                except InvalidInput as exc:
                    problems.append(ldif.Problem(record.line, exc.reason))
                    continue
                if dn.key in seen:
                    problems.append(ldif.Problem(record.line, f"{record.dn} is in the file twice "
                                                              f"(first on line {seen[dn.key]})"))
                    continue
                seen[dn.key] = record.line
                depths.add(dn.depth)
                problems.extend(self._check_entry(record, dn, operational))
                if dn.key != suffix_key and dn.parent_key not in seen:
                    waiting.setdefault(dn.parent_key, (_parent_text(record.dn), []))[1].append(record.line)
        problems.extend(reader.problems)
        parents_first = True
        for key, (parent_dn, lines) in waiting.items():
            if key in seen:
                parents_first = False  # the parent comes later in the file
                continue
            if not key or not self.dir.exists(parent_dn):
                problems.extend(ldif.Problem(line, f"the parent entry {parent_dn or '(none)'} is neither in the "
                                                   "file nor in the directory") for line in lines)
        if not seen and not problems:
            problems.append(ldif.Problem(max(reader.last_line, 1), "the file holds no entries"))
        if problems:
            raise LdifRejected(sorted(problems, key=lambda p: p.line))
        return ImportPlan(path=path, total=len(seen), depths=sorted(depths), parents_first=parents_first,
                          schema_source=self.schema.source, operational_left_out=sorted(operational))

    def _check_entry(self, record: ldif.Record, dn: ParsedDn, operational: set[str]) -> list[ldif.Problem]:
        schema = self.schema
        problems: list[ldif.Problem] = []
        present: dict[str, list[ldif.Value]] = {}
        classes: list[ObjectClassDef] = []
        unknown: set[str] = set()
        for value in record.values:
            name = value.name
            at = schema.attribute(name)
            if at is None:
                if name.lower() not in unknown:
                    unknown.add(name.lower())
                    problems.append(ldif.Problem(value.line, f"attribute type {name} is not in the schema"))
                continue
            if schema.operational(at):
                operational.add(at.name)
                continue
            present.setdefault(schema.key(name), []).append(value)
            if at.oid == "2.5.4.0":  # objectClass
                oc = schema.object_class(value.value.decode("utf-8", "replace").strip())
                if oc is None:
                    problems.append(ldif.Problem(value.line, f"object class {_text(value.value)} "
                                                             "is not in the schema"))
                else:
                    classes.append(oc)
                continue
            why = _valid_syntax(schema.syntax(at), value.value)
            if why:
                problems.append(ldif.Problem(value.line, f"{name}: {_text(value.value)} {why}"))
        if not any(schema.key(v.name) == schema.key("objectClass") for v in record.values):
            problems.append(ldif.Problem(record.line, f"{record.dn} has no objectClass"))
        for values in present.values():
            at = schema.attribute(values[0].name)
            if at is not None and at.single_value and len(values) > 1:
                problems.append(ldif.Problem(values[1].line, f"{values[0].name} takes a single value"))
        allowed_sets = [found for oc in classes if (found := schema.allowed(oc)) is not None]
        # Only when every class is known: an unknown one may allow anything.
        if classes and len(classes) == len(present.get(schema.key("objectClass"), [])) \
                and len(allowed_sets) == len(classes):
            allowed: set[str] = set().union(*allowed_sets)
            for values in present.values():
                at = schema.attribute(values[0].name)
                if at is not None and not any(k in allowed for k in schema.supertypes(at)):
                    problems.append(ldif.Problem(values[0].line, f"{values[0].name} is not allowed by the "
                                                                 "entry's object classes"))
        missing = sorted({name for oc in classes for name in schema.required(oc)} - set(present))
        if missing:
            names = ", ".join(self._name(key) for key in missing)
            problems.append(ldif.Problem(record.line, f"{record.dn} lacks required attribute(s): {names}"))
        for attr, rdn_value in dn.rdn:
            if not any(v.value.decode("utf-8", "replace").lower() == rdn_value.lower()
                       for v in present.get(schema.key(attr), [])):
                problems.append(ldif.Problem(record.line, f"{record.dn}: the value {attr}={rdn_value} of its name "
                                                          "is not among its attributes"))
        return problems

    def _name(self, key: str) -> str:
        at = self.schema.attribute(key)
        return at.name if at else key

    # -- pass 2 ------------------------------------------------------------------------

    def records(self, plan: ImportPlan) -> Iterator[ldif.Record]:
        """The file's records in the order to write them."""
        passes: list[int | None] = [None] if plan.parents_first else list(plan.depths)
        for depth in passes:
            with open(plan.path, "rb") as fh:
                for record in ldif.Reader(fh):
                    if depth is None or parse(record.dn, self.schema).depth == depth:
                        yield record

    def run(self, plan: ImportPlan, *, replace: bool = False, result: ImportResult | None = None,
            on_record: OnRecord | None = None) -> ImportResult:
        """Write the checked file.  Raises ImportFailed at the first entry the directory refuses."""
        result = result if result is not None else ImportResult()
        touched: set[str] = set()
        for record in self.records(plan):
            action = self._write(record, replace)
            setattr(result, action, getattr(result, action) + 1)
            if action != "skipped":
                domain = domain_of_dn(record.dn, self.tree.domains_dn)
                if domain:
                    touched.add(domain)
            if on_record is not None:
                on_record(action, record)
        # The file's counters are those of its source, and skipped entries
        # were never counted: as iRedAdmin does when it lists a domain, set
        # the counters of every domain written to the real count, and its
        # quota total (quota_total.py), if it has one, to the real sum.
        applier = Applier(self.dir)
        for domain in sorted(touched):
            applier.recount(self.tree.domain(domain), COUNTERS)
        return result

    def _attrs(self, record: ldif.Record) -> dict[str, list]:
        out: dict[str, list] = {}
        spelling: dict[str, str] = {}
        for value in record.values:
            at = self.schema.attribute(value.name)
            if at is not None and self.schema.operational(at):
                continue
            key = self.schema.key(value.name)
            if at is not None and at.oid == "2.5.4.0":
                out.setdefault("objectClass", []).append(value.value.decode("utf-8").strip())
                continue
            name = spelling.setdefault(key, value.name)
            out.setdefault(name, []).append(value.value)
        return out

    def _write(self, record: ldif.Record, replace: bool) -> str:
        attrs = self._attrs(record)
        try:
            try:
                self.dir.add(record.dn, attrs)
                return "added"
            except AlreadyExists:
                if not replace:
                    return "skipped"
            changes = self._changes(record.dn, attrs)
            if not changes:
                return "unchanged"
            self.dir.modify(record.dn, changes)
            return "replaced"
        except IredldapError as exc:
            raise ImportFailed(record, exc) from None

    def _changes(self, dn: str, attrs: dict[str, list]) -> dict:
        """The modification that makes the entry `dn` hold exactly `attrs`.

        A file without password hashes (an export made without them) keeps the
        entry's userPassword rather than removing it.
        """
        existing = next(iter(self.dir.paged_search(dn, "(objectClass=*)", scope=BASE, raw=True)), None)
        have = {} if existing is None else {self.schema.key(k): (k, list(v)) for k, v in existing.attrs.items()
                                            if v and not self._is_operational(k)}
        want = {self.schema.key(k): (k, [x.encode("utf-8") if isinstance(x, str) else x for x in v])
                for k, v in attrs.items()}
        changes = {}
        for key in have.keys() | want.keys():
            if key not in want and key == self.schema.key("userPassword"):
                continue
            name, values = want.get(key) or (have[key][0], [])
            if have.get(key, ("", []))[1] != values:
                changes[name] = [(REPLACE, values)]
        return changes

    def _is_operational(self, name: str) -> bool:
        at = self.schema.attribute(name)
        return at is not None and self.schema.operational(at) or name.lower() == "hassubordinates"


def _parent_text(dn: str) -> str:
    """The DN of the parent, as written (the first unescaped comma ends the RDN)."""
    escaped = False
    for i, char in enumerate(dn):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            return dn[i + 1:].strip()
    return ""


def _text(value: bytes) -> str:
    text = value.decode("utf-8", "replace")
    return repr(text if len(text) <= 40 else text[:40] + "...")
