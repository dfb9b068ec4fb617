"""iredldap.model.ldif: RFC 2849 writing and reading, without a directory."""

from __future__ import annotations

import base64
import io

import pytest

from iredldap.model import ldif


def read(text: str | bytes) -> tuple[list[ldif.Record], list[ldif.Problem]]:
    data = text.encode() if isinstance(text, str) else text
    reader = ldif.Reader(io.BytesIO(data))
    records = list(reader)
    return records, reader.problems


@pytest.mark.parametrize("value, encoded", [
    (b"plain value", False),
    (b"", False),
    (b"J\xc3\xbcrgen M\xc3\xbcller", True),  # non-ASCII
    (b" leading space", True),
    (b":leading colon", True),
    (b"<leading angle", True),
    (b"trailing space ", True),
    (b"inner: colon < and > fine", False),
    (b"line\nbreak", True),
    (b"carriage\rreturn", True),
    (b"nul\x00byte", True),
    (bytes(range(256)), True),  # binary
])
def test_base64_exactly_where_needed(value, encoded):
    line = ldif.value_line("description", value)
    assert line.startswith("description:: ") is encoded
    assert line.isascii()
    records, problems = read("dn: cn=x\n" + line + "\n")
    assert problems == []
    assert records[0].values[0].value == value
    # The same through a whole record (its short values are judged inline there).
    record = ldif.entry_text("cn=x", [("description", [value])])
    assert record.splitlines()[1].startswith("description:: ") is encoded
    records, problems = read(record)
    assert problems == [] and records[0].values[0].value == value


def test_long_lines_fold_at_76_columns_and_unfold():
    value = ("x" * 500).encode()
    text = ldif.entry_text("cn=a,dc=example,dc=com", [("description", [value]),
                                                        ("jpegPhoto", [bytes(range(256)) * 3])])
    lines = text.splitlines()
    assert max(len(line) for line in lines) == 76
    assert all(line.startswith(" ") for line in lines[2:8])
    records, problems = read(text)
    assert problems == []
    assert records[0].attrs() == {"description": [value], "jpegPhoto": [bytes(range(256)) * 3]}


def test_non_ascii_dn_is_base64_and_reads_back():
    dn = "cn=Jürgen Müller,ou=Users,domainName=example.com,o=domains,dc=example,dc=com"
    text = ldif.entry_text(dn, [("cn", ["Jürgen Müller".encode()])])
    assert text.startswith("dn:: ")
    records, problems = read(text)
    assert problems == [] and records[0].dn == dn


def test_reads_ldapsearch_style_input():
    # OpenLDAP folds at 78 columns; comments, CRLF and `changetype: add` are fine.
    text = ("version: 1\r\n\r\n# a comment\r\n#  folded comment\r\n"
            "dn: cn=a,dc=example,dc=com\r\nchangetype: add\r\nobjectClass: person\r\n"
            "description: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
            " bbbbbbbbbb\r\ncn:  two spaces of FILL\r\nsn:: " + base64.b64encode(b"S\xc3\xb8n").decode() + "\r\n\r\n\r\n"
            "dn: cn=b,dc=example,dc=com\r\nobjectclass: person\r\nCN: b\r\ncn: B2\r\n")
    records, problems = read(text)
    assert problems == []
    assert [r.dn for r in records] == ["cn=a,dc=example,dc=com", "cn=b,dc=example,dc=com"]
    assert records[0].attrs()["description"] == [b"a" * 60 + b"b" * 10]
    assert records[0].attrs()["cn"] == [b"two spaces of FILL"]
    assert records[0].attrs()["sn"] == ["Søn".encode()]
    assert records[1].attrs() == {"objectclass": [b"person"], "CN": [b"b", b"B2"]}
    assert [r.line for r in records] == [5, 14]


def test_every_problem_is_reported_with_its_line():
    text = ("version: 2\n"
            "\n"
            "dn: cn=a,dc=example,dc=com\n"      # 3
            "objectClass: person\n"
            "description:: not*base64!\n"       # 5
            "no colon here\n"                   # 6
            "\n"
            " continuation after a blank line\n"  # 8
            "\n"
            "cn: a record without dn\n"         # 10
            "\n"
            "dn: cn=b,dc=example,dc=com\n"      # 12
            "changetype: modify\n"              # 13
            "replace: cn\n"
            "\n"
            "dn: cn=c,dc=example,dc=com\n"      # 16
            "jpegPhoto:< file:///etc/passwd\n"  # 17
            "description: caf\xe9\n"            # 18 (Latin-1, not UTF-8)
            "bad attr name: x\n"                # 19
            "\n"
            "dn: cn=d,dc=example,dc=com\n"      # 21
            "cn: cut off in the mid")           # 22
    records, problems = read(text.encode("latin-1"))
    lines = sorted(p.line for p in problems)
    assert lines == [1, 5, 6, 8, 10, 13, 17, 18, 19, 22], problems
    assert [r.dn for r in records] == ["cn=d,dc=example,dc=com"]
    by_line = {p.line: p.message for p in problems}
    assert "base64" in by_line[5]
    assert "ends in the middle of a line" in by_line[22]


def test_our_header_demands_the_end_marker():
    entry = ldif.entry_text("cn=a,dc=example,dc=com", [("cn", [b"a"])])
    whole = ldif.header("domain example.com") + entry + ldif.end_marker(1)
    assert read(whole)[1] == []
    # Cut at a record boundary: syntactically fine, but the marker is missing.
    records, problems = read(ldif.header("domain example.com") + entry)
    assert len(records) == 1 and len(problems) == 1 and "incomplete" in problems[0].message
    # A wrong count (entries lost in between).
    problems = read(ldif.header("x") + entry + ldif.end_marker(2))[1]
    assert "announces 2 entries" in problems[0].message
    # Files from elsewhere need no marker.
    assert read("version: 1\n\n" + entry)[1] == []


def test_header_and_end_marker_are_comments_to_other_readers():
    text = ldif.header("domain example.com", "password hashes: included") + ldif.end_marker(0)
    assert text.startswith("version: 1\n# iredldap LDIF export: domain example.com\n")
    assert all(line.startswith("#") for line in text.splitlines()[1:] if line)
