"""LDIF (RFC 2849): writing entries and reading them back.

Only the content form is handled (entries, as `ldapsearch -LLL`, `slapcat`
and our export write them); change records other than `changetype: add`
are refused by the reader.  No LDAP library is involved: values are bytes
in, bytes out.

Writing:
    * a value is written as base64 (`attr:: ...`) when it is not a SAFE-STRING:
      empty-safe, but anything that starts with a space, a colon or `<`, ends
      with a space, or holds a NUL, CR, LF or any byte above 127 (non-ASCII
      text, binary data);
    * lines are folded at 76 columns: a longer line continues on the next
      one after a single space;
    * our files start with `version: 1` and a comment naming what was exported
      (HEADER) and end with a comment giving the number of entries
      (`end_marker`), so a cut-off download is recognised.

Reading:
    `Reader(lines)` takes the file's lines as bytes (an open binary file) and
    yields `Record`s; every problem found on the way is collected in
    `reader.problems` with its line number, and reading goes on with the next
    record, so one pass reports all of them.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

LINE_WIDTH = 76
HEADER = "# iredldap LDIF export"
END = "# end of iredldap export:"

_UNSAFE = re.compile(rb"[\x00\r\n\x80-\xff]")
_ATTR_DESC = re.compile(r"(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)(?:;[A-Za-z0-9-]+)*")


# -- writing --------------------------------------------------------------------

def needs_base64(value: bytes) -> bool:
    """Whether `value` cannot be written as it is (RFC 2849 SAFE-STRING, and no trailing space)."""
    if not value:
        return False
    return value[:1] in (b" ", b":", b"<") or value[-1:] == b" " or _UNSAFE.search(value) is not None


def fold(line: str) -> str:
    """One logical line (ASCII), folded at LINE_WIDTH columns, with its newline."""
    if len(line) <= LINE_WIDTH:
        return line + "\n"
    parts = [line[:LINE_WIDTH]]
    step = LINE_WIDTH - 1  # continuation lines start with a space
    parts.extend(" " + line[i:i + step] for i in range(LINE_WIDTH, len(line), step))
    return "\n".join(parts) + "\n"


def value_line(name: str, value: bytes) -> str:
    if needs_base64(value):
        return fold(f"{name}:: {base64.b64encode(value).decode('ascii')}")
    return fold(f"{name}: {value.decode('ascii')}")


# What `bytes.translate` deletes from a value that is all SAFE-CHAR (RFC 2849).
_SAFE_CHARS = bytes(c for c in range(1, 0x80) if c not in (0x0A, 0x0D))


def entry_text(dn: str, attrs: Iterable[tuple[str, Iterable[bytes]]]) -> str:
    """One record, with the blank line that ends it."""
    out = [value_line("dn", dn.encode("utf-8"))]
    for name, values in attrs:
        room = LINE_WIDTH - 2 - len(name)
        for value in values:
            # The common case inline (this runs for every value of a large
            # export): short, and a SAFE-STRING (needs_base64, in C mostly).
            if not value or (len(value) <= room and not value.translate(None, _SAFE_CHARS)
                             and value[0] not in b" :<" and value[-1] != 0x20):
                out.append(f"{name}: {value.decode('ascii')}\n")
            else:
                out.append(value_line(name, value))
    out.append("\n")
    return "".join(out)


def comment(text: str) -> str:
    return fold("# " + text.encode("ascii", "backslashreplace").decode("ascii").replace("\n", " "))


def header(*lines: str) -> str:
    """`version: 1` and our header comment (first line: what was exported)."""
    first, *rest = lines or ("",)
    return "version: 1\n" + fold(f"{HEADER}: {first}") + "".join(comment(line) for line in rest) + "\n"


def end_marker(count: int) -> str:
    return f"{END} {count} entries\n"


# -- reading --------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class Value:
    name: str  # attribute description as written (type and options)
    value: bytes
    line: int


@dataclass
class Record:
    dn: str
    line: int  # of the dn: line
    values: list[Value] = field(default_factory=list)

    def attrs(self) -> dict[str, list[bytes]]:
        """Values by attribute description, names merged case-insensitively (first spelling kept)."""
        out: dict[str, list[bytes]] = {}
        spelling: dict[str, str] = {}
        for v in self.values:
            name = spelling.setdefault(v.name.lower(), v.name)
            out.setdefault(name, []).append(v.value)
        return out


class Reader:
    """Records of an LDIF file, problems collected on the way (see the module doc)."""

    def __init__(self, lines: Iterable[bytes]):
        self._lines = lines
        self.problems: list[Problem] = []
        self.version_seen = False
        self.ours = False  # the file starts with our header
        self.end_count: int | None = None  # from our end marker
        self.records_seen = 0  # records in the file, readable or not
        self.last_line = 0

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(line, message))

    # Physical lines → logical lines (unfolded), each with the number of its first line.
    def _logical(self) -> Iterator[tuple[int, bytes | None]]:
        """(line number, content); None content marks a record separator (blank line)."""
        current: bytearray | None = None
        start = 0
        is_comment = False
        lineno = 0
        for lineno, raw in enumerate(self._lines, 1):
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            else:
                self.problem(lineno, "the file ends in the middle of a line (cut off?)")
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if raw.startswith(b" "):
                if current is None:
                    if not is_comment:
                        self.problem(lineno, "a continuation line (starting with a space) follows no line")
                elif not is_comment:
                    current += raw[1:]
                continue
            if current is not None:
                yield start, bytes(current)
            current, is_comment = None, False
            if not raw:
                yield lineno, None
            elif raw.startswith(b"#"):
                is_comment = True
                self._comment(lineno, raw)
            else:
                current, start = bytearray(raw), lineno
        if current is not None:
            yield start, bytes(current)
        self.last_line = lineno
        yield lineno + 1, None

    def _comment(self, lineno: int, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        if text.startswith(HEADER) and not self.records_seen and lineno <= 3:
            self.ours = True
        elif text.startswith(END):
            try:
                self.end_count = int(text[len(END):].split()[0])
            except (ValueError, IndexError):
                self.problem(lineno, "unreadable end marker")

    def __iter__(self) -> Iterator[Record]:
        lines: list[tuple[int, bytes]] = []
        first = True
        for lineno, content in self._logical():
            if content is not None:
                if first and not lines and content.lower().startswith(b"version:"):
                    first = False
                    self._version(lineno, content)
                    continue
                first = False
                lines.append((lineno, content))
                continue
            if lines:
                self.records_seen += 1
                record = self._record(lines)
                lines = []
                if record is not None:
                    yield record
        if self.ours:
            if self.end_count is None:
                self.problem(self.last_line, "the end marker of the export is missing: the file is incomplete")
            elif self.end_count != self.records_seen:
                self.problem(self.last_line, f"the end marker announces {self.end_count} entries, "
                                             f"the file has {self.records_seen}")

    def _version(self, lineno: int, content: bytes) -> None:
        self.version_seen = True
        if content.split(b":", 1)[1].strip() != b"1":
            self.problem(lineno, "only LDIF version 1 is understood")

    def _split(self, lineno: int, content: bytes) -> tuple[str, bytes] | None:
        """`name: value` → (name, value bytes), decoding base64; None after reporting a problem."""
        name_b, sep, rest = content.partition(b":")
        if not sep:
            self.problem(lineno, f"not an LDIF line (no colon): {_show(content)}")
            return None
        try:
            name = name_b.decode("ascii")
        except UnicodeDecodeError:
            name = ""
        if not _ATTR_DESC.fullmatch(name):
            self.problem(lineno, f"not an attribute name: {_show(name_b)}")
            return None
        if rest.startswith(b":"):
            text = rest[1:].strip(b" ")
            try:
                return name, base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                self.problem(lineno, f"{name}: the base64 value is not valid base64")
                return None
        if rest.startswith(b"<"):
            self.problem(lineno, f"{name}: values read from a URL (:<) are not supported")
            return None
        value = rest.lstrip(b" ")
        if value[:1] in (b":", b"<"):
            self.problem(lineno, f"{name}: a plain value may not start with {value[:1].decode()!r}")
            return None
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            self.problem(lineno, f"{name}: the value is not UTF-8 text (binary values must be base64)")
            return None
        return name, value

    def _record(self, lines: list[tuple[int, bytes]]) -> Record | None:
        lineno, content = lines[0]
        split = self._split(lineno, content)
        if split is None:
            return None
        name, value = split
        if name.lower() != "dn":
            self.problem(lineno, f"a record must start with dn:, not {name}:")
            return None
        try:
            dn = value.decode("utf-8")
        except UnicodeDecodeError:
            self.problem(lineno, "the DN is not UTF-8 text")
            return None
        record = Record(dn=dn, line=lineno)
        ok = True
        for i, (lineno, content) in enumerate(lines[1:]):
            lower = content.lower()
            if lower.startswith(b"control:"):
                self.problem(lineno, "controls are not supported")
                ok = False
                continue
            if lower.startswith(b"changetype:"):
                kind = content.split(b":", 1)[1].strip().lower()
                if i != 0 or kind != b"add":
                    self.problem(lineno, f"only entries can be imported, not changetype: {_show(kind)}")
                    ok = False
                    break
                continue
            split = self._split(lineno, content)
            if split is None:
                ok = False
                continue
            record.values.append(Value(split[0], split[1], lineno))
        if ok and not record.values:
            self.problem(record.line, f"the entry {dn!r} has no attributes")
            ok = False
        return record if ok else None


def _show(raw: bytes) -> str:
    text = repr(raw[:60])[2:-1]
    return text + ("..." if len(raw) > 60 else "")
