"""An offline ldap3 server that knows the iRedMail schema.

ldap3's MOCK_SYNC strategy keeps entries in memory on the Server object and
uses the server's schema to check attribute names, object class names,
single-valued attributes and value syntaxes.  (It does not enforce MUST/MAY
lists or structural rules; only a real slapd does.)  ldap3 ships the subschema
of an OpenLDAP 2.4 server with core, cosine, inetorgperson and nis loaded;
this module adds our amavis.schema and iredmail.schema to it.

Usage::

    conn = ldap3.Connection(mock_server(), user=..., password=...,
                            client_strategy=ldap3.MOCK_SYNC)
"""

from __future__ import annotations

import json
import threading
from copy import deepcopy
from functools import cache, lru_cache
from typing import Sequence

import ldap3
from ldap3 import (ALL_ATTRIBUTES, ALL_OPERATIONAL_ATTRIBUTES, MODIFY_ADD, MODIFY_DELETE, MODIFY_INCREMENT,
                   MODIFY_REPLACE, NO_ATTRIBUTES, SEQUENCE_TYPES)
from ldap3.operation.modify import modify_request_to_dict
from ldap3.operation.search import AND, MATCH_APPROX, MATCH_EQUAL, NOT, OR, ROOT
from ldap3.utils.dn import safe_dn
import ldap3.strategy.mockBase as ldap3_mock_base
from ldap3.strategy.mockBase import PagedSearchSet
from ldap3.strategy.mockSync import MockSyncStrategy
from ldap3.utils.ciDict import CaseInsensitiveDict
from ldap3.core.exceptions import LDAPAttributeError, LDAPChangeError, LDAPObjectClassError, LDAPOperationResult
from ldap3.protocol.convert import prepare_for_sending, validate_attribute_value
from ldap3.core.results import DO_NOT_RAISE_EXCEPTIONS, RESULT_CODES, RESULT_NO_SUCH_ATTRIBUTE, RESULT_OPERATIONS_ERROR
from ldap3.utils.config import get_config_parameter
from ldap3.utils.conv import ldap_escape_to_bytes, to_raw, to_unicode
from ldap3.protocol.rfc4512 import DsaInfo, SchemaInfo
from ldap3.protocol.schemas.slapd24 import slapd_2_4_dsa_info, slapd_2_4_schema
from pyasn1.error import PyAsn1Error

from iredldap.directory.decoding import NotDecoded
from iredldap.directory.encoding import SCOPE_NUMBERS, NotLean
from iredldap.directory.schemafile import SchemaFile, load_schema
from iredldap.paths import schema_dir

__all__ = ["lean", "mock_schema", "mock_server", "our_schema"]

_SERVER_ENCODING = "utf-8"    # what ldap3's mock decodes stored values with

# Names from the standard schemas that iRedMail entries rely on.  The bundled
# 2.4 subschema has all of them; checked so a future ldap3 that drops one
# fails loudly here instead of deep inside a test.
REQUIRED_STANDARD = (
    "top", "organization", "organizationalUnit", "dcObject", "person", "inetOrgPerson",
    "shadowAccount", "homeDirectory", "shadowLastChange", "preferredLanguage",
    "employeeNumber", "departmentNumber", "mobile", "memberUid", "gidNumber",
    "mail", "uid", "cn", "sn", "givenName", "userPassword", "member", "uniqueMember",
)

SCHEMA_FILES = ("amavis.schema", "iredmail.schema")

# slapd's stamp on every write, which the bundled 2.4 subschema lacks; known
# here so that searches asking for it (ceilings.py) are accepted.  MOCK_SYNC
# never sets it.
OPERATIONAL = ["( 1.3.6.1.4.1.4203.666.1.7 NAME 'entryCSN' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 "
               "SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )"]


@cache
def our_schema() -> SchemaFile:
    """The definitions of schema/amavis.schema and schema/iredmail.schema."""
    merged = SchemaFile()
    for name in SCHEMA_FILES:
        merged.extend(load_schema(schema_dir() / name))
    return merged


def _merge(existing: list[str], added: list[str]) -> list[str]:
    """Add definitions, replacing any bundled one with the same OID."""
    def oid(definition: str) -> str:
        return definition.strip().lstrip("(").split()[0]

    new_oids = {oid(d) for d in added}
    return [d for d in existing if oid(d) not in new_oids] + added


@cache
def _schema_json() -> str:
    data = json.loads(slapd_2_4_schema)
    raw = data["raw"]
    ours = our_schema()
    raw["attributeTypes"] = _merge(raw["attributeTypes"], [at.definition for at in ours.attribute_types] + OPERATIONAL)
    raw["objectClasses"] = _merge(raw["objectClasses"], [oc.definition for oc in ours.object_classes])
    return json.dumps(data)


@cache
def mock_schema() -> SchemaInfo:
    """The bundled OpenLDAP 2.4 subschema extended with ours (built once)."""
    schema = SchemaInfo.from_json(_schema_json())
    missing = [n for n in REQUIRED_STANDARD if n not in schema.attribute_types and n not in schema.object_classes]
    if missing:
        raise RuntimeError(f"ldap3's bundled OpenLDAP schema lacks {', '.join(missing)}")
    return schema


@cache
def _dsa_info() -> DsaInfo:
    return DsaInfo.from_json(slapd_2_4_dsa_info)


def mock_server() -> ldap3.Server:
    """A fresh Server for ``Connection(..., client_strategy=ldap3.MOCK_SYNC)``.

    Each call returns a new Server because MOCK_SYNC stores the directory
    data on it; the parsed schema is shared (ldap3 only reads it).
    """
    return ldap3.Server.from_definition("iredldap-mock", _dsa_info(), mock_schema())


# -- a filter evaluation that does less work ------------------------------------
#
# MOCK_SYNC tests every leaf of a filter against every entry under the base,
# and its equality test decodes and lower-cases both sides for each pair; on a
# world of a few dozen entries that was a fifth of the test suite's time.
# This evaluation gives the same answers for the filters slapd answers the
# same way: a leaf is tested only against the entries still in question (an
# AND stops at the first part that leaves none, an OR skips the entries a
# part found), the equality test is ldap3's own with the folded values kept,
# and NOT is the complement within the candidates, as in RFC 4511 -- where
# ldap3's mock takes its child's "unmatched" set, which for a multi-valued
# substring or an AND is not the complement.

@lru_cache(maxsize=1 << 16)
def _folded(value: bytes | str) -> str | None:
    try:
        return to_unicode(value, _SERVER_ENCODING).lower()
    except UnicodeError:
        return None


def _same(wanted: bytes | str, value: bytes | str) -> bool:
    """ldap3's MockBaseStrategy._check_equality, with the folding cached."""
    if wanted == value:
        return True
    if str(wanted).isdigit() and str(value).isdigit() and int(wanted) == int(value):
        return True
    folded = _folded(wanted)
    return folded is not None and folded == _folded(value)


def _values(entry, ci_name: str):
    """The values of an attribute (its name already folded) of a mock entry."""
    if isinstance(entry, CaseInsensitiveDict):
        key = entry._case_insensitive_keymap.get(ci_name)
        return None if key is None else entry._store[key]
    return entry.get(ci_name)


# The Post-Read control (RFC 4527); Directory.increment sends it.
POST_READ = "1.3.6.1.1.13.2"


class _LeanMockSync(MockSyncStrategy):
    def post_send_single_response(self, payload):
        """A modify sent with the Post-Read control (RFC 4527) gets the changed
        attributes' new values back, as slapd sends them."""
        responses = super().post_send_single_response(payload)
        _, message_type, request, controls = payload
        result = self.connection.result
        if message_type == "modifyRequest" and result and result.get("result") == 0 \
                and any(c[0] == POST_READ for c in controls or ()):
            changed = modify_request_to_dict(request)
            entry = self.connection.server.dit.get(safe_dn(changed["entry"])) or {}
            names = {str(c["attribute"]["type"]).lower() for c in changed["changes"]}
            values = {name: [to_unicode(v) for v in vs] for name, vs in entry.items() if name.lower() in names}
            result["controls"] = {POST_READ: {"description": "", "criticality": False,
                                              "value": {"result": values}}}
        return responses

    def mock_modify(self, request_message, controls):
        """As slapd: a modify deleting a value the entry does not have fails
        as a whole with noSuchAttribute (ldap3's mock answers
        operationsError, or goes on and answers what a later change of the
        same request breaks).  Compare-and-swap of a value
        (quota_total.py) relies on it."""
        request = modify_request_to_dict(request_message)
        entry = self.connection.server.dit.get(safe_dn(request["entry"]))
        if entry is not None:
            written: set[str] = set()
            for change in request["changes"]:
                name = str(change["attribute"]["type"]).lower()
                values = change["attribute"]["value"]
                if change["operation"] == 1 and values and name not in written:
                    present = _values(entry, CaseInsensitiveDict._ci_key(name)) or []
                    if not all(any(_same(to_raw(v), have) for have in present) for v in values):
                        return {"resultCode": RESULT_NO_SUCH_ATTRIBUTE, "matchedDN": "", "referral": None,
                                "diagnosticMessage": "modify/delete: a value to delete does not exist"}
                written.add(name)
        return super().mock_modify(request_message, controls)

    def lean_search(self, base: str, filterstr: str, scope: str | int, attrs: Sequence[str], size_limit: int,
                    paged_size: int | None, paged_cookie: bytes | None) -> None:
        """As `Connection.search` with these arguments, without the request
        ldap3 builds only to take apart again (a pyasn1 message, turned back
        into a dictionary and the filter back into a string), and without the
        decoded copy of every value that `Directory` never reads (its
        `attributes`; `raw_attributes` are as ldap3 makes them).  The checks
        stay ldap3's: attribute names against the schema, the filter parsed
        and its values validated by `_execute_search`, the answer selected by
        it, a paged search cut into pages by ldap3's own `PagedSearchSet`.
        A connection that is not open is left to ldap3 (NotLean)."""
        conn = self.connection
        if not conn.listening or conn.lazy or scope not in SCOPE_NUMBERS or ":=" in filterstr:
            # (ldap3 refuses an extensible match before the mock sees it, with another error)
            raise NotLean("closed, lazy, an unknown scope or an extensible match")
        base = safe_dn(base) if base else base
        asked = list(attrs) or [NO_ATTRIBUTES]
        with conn.connection_lock:
            # (ldap3's search leaves last_error as it was: it sets it only below)
            if conn.check_names:
                _check_attribute_names(conn, asked)
            conn.request = {"type": "searchRequest", "base": base, "scope": SCOPE_NUMBERS[scope],
                            "dereferenceAlias": 3, "sizeLimit": size_limit, "timeLimit": 0, "typesOnly": False,
                            "filter": filterstr, "attributes": asked, "controls": None}
            if paged_size is None:
                found, done = self._execute_search(dict(conn.request, attributes=list(asked)))
            else:
                found, done = self._next_page(dict(conn.request, attributes=list(asked)), paged_size, paged_cookie)
            response = []
            for entry in found:
                raw = {a["type"]: list(a["vals"]) for a in entry["attributes"]}
                if conn.empty_attributes:
                    present = {name.lower() for name in raw}
                    for name in asked:
                        if name.lower() not in present and name not in _NOT_NAMES:
                            raw[name] = []
                            present.add(name.lower())
                response.append({"type": "searchResEntry", "dn": to_unicode(entry["object"], from_server=True),
                                 "raw_attributes": raw, "attributes": NotDecoded()})
            code = done["resultCode"]
            conn.response = response
            conn._entries = []      # (as ldap3's search: `entries` are made again of this answer)
            conn.result = {"result": code, "description": RESULT_CODES.get(code, "unknown"),
                           "dn": done["matchedDN"], "message": done["diagnosticMessage"],
                           "referrals": None, "type": "searchResDone"}
            if "controls" in done:
                conn.result["controls"] = {oid: value for oid, value in done["controls"]}
            if conn.raise_exceptions and code not in DO_NOT_RAISE_EXCEPTIONS:
                raise LDAPOperationResult(result=code, description=conn.result["description"],
                                          dn=done["matchedDN"], message=done["diagnosticMessage"],
                                          response_type="searchResDone")
            if not response and code != 0 and not conn.last_error:     # (as ldap3's search, a failure not raised)
                conn.last_error = conn.result["description"]

    # -- writes without the pyasn1 round trip ---------------------------------------
    #
    # ldap3 builds a pyasn1 request for every add and modify, which its mock
    # turns straight back into a dictionary (`add_request_to_dict`,
    # `modify_request_to_dict`) before it writes: a tenth of the test suite's
    # time.  These take the arguments Connection.add/modify/delete take,
    # make ldap3's own checks of them (names against the schema, the change
    # list's shape, every value by `validate_attribute_value`, with ldap3's
    # errors), and hand the mock a request of plain lists in the shape those
    # functions read -- so the mock's own add, modify and delete (and ours,
    # `mock_modify` and the Post-Read control above) do the writing, with
    # the results and exceptions they give.  What these do not take (a
    # closed, lazy, read-only or metered connection, one without a schema)
    # is left to ldap3 (NotLean).

    def _lean_writable(self, *, writes: bool = True) -> ldap3.Connection:
        conn = self.connection
        if not conn.listening or conn.lazy or conn.usage or (writes and conn.read_only):
            raise NotLean("closed, lazy, read-only or metered")
        if not (conn.server and conn.server.schema and conn.server.schema.attribute_types):
            # (ldap3's add and modify differ on a schema without attribute types; ours has them)
            raise NotLean("no schema with attribute types")
        return conn

    def lean_add(self, dn: str, object_class, attributes: dict | None, controls=None) -> bool:
        """As `Connection.add(dn, object_class, attributes, controls)`."""
        conn = self._lean_writable(writes=False)     # (ldap3 adds on a read-only connection too)
        schema = conn.server.schema
        # In ldap3's order: last_error cleared, the attributes deep-copied
        # (what does not copy raises), then the DN checked.
        conn.last_error = None
        attributes = deepcopy(attributes)
        if conn.check_names:
            dn = safe_dn(dn)
        with conn.connection_lock:
            given = list(object_class) if isinstance(object_class, SEQUENCE_TYPES) else \
                ([] if object_class is None else [object_class])
            class_key = ""
            listed: list = []
            if attributes:
                for name in attributes:     # (what is not a dictionary of names fails here, as in ldap3)
                    if name.lower() == "objectclass":
                        class_key = name
                        listed = attributes[name]
                        listed = list(listed) if isinstance(listed, SEQUENCE_TYPES) else [listed]
                        break
            else:
                attributes = {}
            class_key = class_key or "objectClass"
            classes: list = []
            for name in given + [to_unicode(c) for c in listed]:
                if name not in classes:
                    classes.append(name)
            attributes[class_key] = classes
            if not classes:
                conn.last_error = "objectClass attribute is mandatory"
                raise LDAPObjectClassError(conn.last_error)
            if conn.check_names:
                excluded = {v.lower() for v in get_config_parameter("CLASSES_EXCLUDED_FROM_CHECK")}
                for name in classes:
                    if name.lower() not in excluded and name not in schema.object_classes:
                        conn.last_error = "invalid object class " + str(name)
                        raise LDAPObjectClassError(conn.last_error)
                _check_attribute_names(conn, list(attributes))
            request = {"entry": dn, "attributes": [
                {"type": name, "vals": self._sent_values(conn, name, values)} for name, values in attributes.items()]}
            return self._lean_send(conn, "addRequest", request, controls)

    def lean_modify(self, dn: str, changes: dict, controls=None) -> bool:
        """As `Connection.modify(dn, changes, controls)`."""
        conn = self._lean_writable()
        if not isinstance(changes, dict) or not changes:
            raise NotLean("not a change list ldap3 takes")     # ldap3 says why
        conn.last_error = None      # (before the DN is checked, as ldap3 does)
        if conn.check_names:
            dn = safe_dn(dn)
        with conn.connection_lock:
            listed: dict[str, list] = {}
            for name, change in changes.items():
                if conn.check_names:
                    _check_attribute_names(conn, [name])
                if isinstance(change, SEQUENCE_TYPES) and change[0] in _CHANGE_OPERATIONS:
                    if len(change) != 2:
                        conn.last_error = "malformed change"
                        raise LDAPChangeError(conn.last_error)
                    listed[name] = [change]
                else:
                    for one in change:
                        if len(one) != 2 or one[0] not in _CHANGE_OPERATIONS:
                            conn.last_error = "invalid change list"
                            raise LDAPChangeError(conn.last_error)
                    listed[name] = change
            request = {"object": dn, "changes": [
                {"operation": _CHANGE_CODES[operation],
                 "modification": {"type": name, "vals": self._sent_values(conn, name, values)}}
                for name, change in listed.items() for operation, values in change]}
            return self._lean_send(conn, "modifyRequest", request, controls)

    def lean_delete(self, dn: str, controls=None) -> bool:
        """As `Connection.delete(dn, controls)`."""
        conn = self._lean_writable()
        conn.last_error = None      # (before the DN is checked, as ldap3 does)
        if conn.check_names:
            dn = safe_dn(dn)
        with conn.connection_lock:
            # (`delete_request_to_dict` reads a request by str(); the DN is one)
            return self._lean_send(conn, "delRequest", dn, controls)

    @staticmethod
    def _sent_values(conn: ldap3.Connection, name: str, values) -> list[_SentValue]:
        return [_SentValue(prepare_for_sending(validate_attribute_value(
            conn.server.schema, name, value, conn.auto_encode, conn.server.custom_validator, check_names=conn.check_names)))
            for value in (values if isinstance(values, SEQUENCE_TYPES) else [values])]

    @staticmethod
    def _lean_send(conn: ldap3.Connection, kind: str, request, controls) -> bool:
        conn.post_send_single_response(conn.send(kind, request, controls))
        conn._entries = []
        done = conn.result["type"] == _RESPONSE_OF[kind] and conn.result["result"] == 0
        if not done and conn.result["result"] != 0 and not conn.last_error:
            conn.last_error = conn.result["description"]
        return conn._prepare_return_value(done)

    def _next_page(self, request: dict, size: int, cookie: bytes | None) -> tuple[list, dict]:
        """A page of a simple paged search (RFC 2696), as ldap3's mock_search
        answers one: the whole answer selected when the first page is asked
        for, kept with a cookie until its last page is sent."""
        if not cookie:
            found, done = self._execute_search(request)
            if done["resultCode"] != 0:
                return [], done
            pages = PagedSearchSet(found, size, False)
            found, done = pages.next()
            if not pages.done:
                self._paged_sets.append(pages)
            return found, done
        for pages in self._paged_sets:
            if pages.cookie == cookie:
                found, done = pages.next()
                if pages.done:
                    self._paged_sets.remove(pages)
                return found, done
        return [], {"resultCode": RESULT_OPERATIONS_ERROR, "matchedDN": "",
                    "diagnosticMessage": "Invalid cookie in simple paged search", "referral": None}

    def evaluate_filter_node(self, node, candidates):
        try:
            return self._matching(node, list(candidates))
        finally:
            # The tree may be kept for the next search (_parse_filter_once):
            # as parse_filter made it, not holding this one's matches.
            _forget_matches(node)

    def _matching(self, node, candidates: list[str]) -> set[str]:
        tag = node.tag
        if tag == ROOT:
            return self._matching(node.elements[0], candidates)
        if tag == AND:
            left = candidates
            # The same intersection in any order; an object class is shared
            # by most entries and has the most values, so it goes last.
            for element in sorted(node.elements, key=_object_class_last):
                if not left:
                    break
                passed = self._matching(element, left)
                left = [c for c in left if c in passed]
            return set(left)
        if tag == OR:
            found: set[str] = set()
            rest = candidates
            for element in node.elements:
                if not rest:
                    break
                hit = self._matching(element, rest)
                found |= hit
                rest = [c for c in rest if c not in hit]
            return found
        if tag == NOT:
            hit = self._matching(node.elements[0], candidates)
            return {c for c in candidates if c not in hit}
        if tag == MATCH_EQUAL or tag == MATCH_APPROX:
            return self._equal(node, candidates)
        # Presence, substrings, ordering: ldap3's own test of one leaf.
        MockSyncStrategy.evaluate_filter_node(self, node, candidates)
        return set(node.matched)

    def _equal(self, node, candidates: list[str]) -> set[str]:
        name, value = node.assertion["attr"], node.assertion["value"]
        ci_name = CaseInsensitiveDict._ci_key(name)
        # ldap3 compares the escaped assertion and the schema-prepared one.
        wanted = (ldap_escape_to_bytes(value), self._prepare_value(name, value))
        dit = self.connection.server.dit
        store = dit._store if isinstance(dit, CaseInsensitiveDict) else {}
        # Both are bytes (ldap3 makes them so, or raises): `_same` of bytes
        # is equality of the values or of their folded forms -- its rule for
        # digits takes `str(value)`, never digits for bytes -- so two set
        # lookups per value do what a comparison with each wanted did.
        exact = set(wanted)
        folded = {f for f in map(_folded, wanted) if f is not None}
        found = set()
        for candidate in candidates:
            entry = store.get(candidate)
            values = _values(dit[candidate] if entry is None else entry, ci_name)
            if values and any(v in exact or _folded(v) in folded for v in values):
                found.add(candidate)
        node.matched = found
        return found


def _forget_matches(root) -> None:
    """Take the marks an evaluation left (`matched`, `unmatched`) off every node of a filter tree."""
    nodes = [root]
    while nodes:
        node = nodes.pop()
        marks = vars(node)
        marks.pop("matched", None)
        marks.pop("unmatched", None)
        nodes.extend(node.elements)


class _SentValue(bytes):
    """A value of a request handed to the mock without pyasn1: what ldap3's
    readers of a request take from a pyasn1 value, which is its UTF-8 text by
    str() (a PyAsn1Error if it has none: they take the bytes then) and its
    bytes by bytes()."""

    __slots__ = ()

    def __str__(self) -> str:
        try:
            return self.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PyAsn1Error(f"not UTF-8: {exc}") from exc


_CHANGE_CODES = {MODIFY_ADD: 0, MODIFY_DELETE: 1, MODIFY_REPLACE: 2, MODIFY_INCREMENT: 3, 0: 0, 1: 1, 2: 2, 3: 3}
_CHANGE_OPERATIONS = tuple(_CHANGE_CODES)   # (tested by equality, as ldap3 does: a change may be any object)
_RESPONSE_OF = {"addRequest": "addResponse", "modifyRequest": "modifyResponse", "delRequest": "delResponse"}


def _object_class_last(node) -> bool:
    return node.tag == MATCH_EQUAL and CaseInsensitiveDict._ci_key(node.assertion["attr"]) == "objectclass"


# -- each filter parsed once per thread ---------------------------------------------
#
# MOCK_SYNC parses the filter of every search (ldap3's parse_filter, which
# also validates its values against the schema): a tenth of a test's search
# time, for the same few filters again and again.  The parsed tree depends
# only on the filter, the schema, the validator and the name check, so it is
# kept -- per thread, because the evaluation marks the tree's nodes with what
# they matched (our evaluate_filter_node takes the marks off again, so a kept
# tree holds no entries and no old mark can count).
# A filter that does not parse is not kept: it raises every time.

_parsed_filters = threading.local()
_PARSED_FILTERS_KEPT = 2048


def _parse_filter_once(search_filter, schema=None, auto_escape=None, auto_encode=None, validator=None,
                       check_names=None):
    try:
        key = (search_filter, id(schema), auto_escape, auto_encode, validator, check_names)
        hash(key)
    except TypeError:
        return _ldap3_parse_filter(search_filter, schema, auto_escape, auto_encode, validator, check_names)
    kept = getattr(_parsed_filters, "trees", None)
    if kept is None:
        kept = _parsed_filters.trees = {}
    found = kept.get(key)
    if found is not None and found[0] is schema:
        return found[1]
    tree = _ldap3_parse_filter(search_filter, schema, auto_escape, auto_encode, validator, check_names)
    if len(kept) >= _PARSED_FILTERS_KEPT:
        kept.clear()
    kept[key] = (schema, tree)
    return tree


_ldap3_parse_filter = ldap3_mock_base.parse_filter
if getattr(_ldap3_parse_filter, "__module__", "") == "ldap3.operation.search":
    ldap3_mock_base.parse_filter = _parse_filter_once


_NOT_NAMES = (ALL_ATTRIBUTES, ALL_OPERATIONAL_ATTRIBUTES, NO_ATTRIBUTES)


def _check_attribute_names(conn: ldap3.Connection, names: list[str]) -> None:
    """ldap3's check of attribute names (those a search asks for, an add or modify writes)."""
    excluded = {v.lower() for v in get_config_parameter("ATTRIBUTES_EXCLUDED_FROM_CHECK")}
    schema = conn.server.schema
    for name in names:
        bare = name.split(";")[0]
        if bare.lower() not in excluded and bare not in schema.attribute_types:
            conn.last_error = "invalid attribute type " + bare
            raise LDAPAttributeError(conn.last_error)


def lean(connection: ldap3.Connection) -> ldap3.Connection:
    """Give a MOCK_SYNC connection the leaner filter evaluation and search path."""
    if type(connection.strategy) is MockSyncStrategy:
        connection.strategy.__class__ = _LeanMockSync
        # (the connection bound the strategy's method when it was made)
        connection.post_send_single_response = connection.strategy.post_send_single_response
    return connection
