"""Column types and columns the three databases' table definitions share.

iRedMail creates its tables with MySQL's unsigned integers; PostgreSQL and
SQLite get the nearest type (on SQLite only ``INTEGER PRIMARY KEY``
auto-increments).  Defaults are server defaults, so an INSERT that leaves a
column out never names it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, String, text
from sqlalchemy.dialects import mysql

MYSQL = ("mysql", "mariadb")


def id_type():
    """BIGINT UNSIGNED on MySQL, BIGINT on PostgreSQL, INTEGER on SQLite."""
    return BigInteger().with_variant(mysql.BIGINT(unsigned=True), *MYSQL).with_variant(Integer(), "sqlite")


def text_column(name: str, length: int = 255, **kw) -> Column:
    """VARCHAR NOT NULL DEFAULT '' (iRedMail's usual string column)."""
    kw.setdefault("nullable", False)
    kw.setdefault("server_default", "")
    return Column(name, String(length), **kw)


def number_column(name: str, default: int = 0, kind=None) -> Column:
    """A NOT NULL integer column with a server default; `kind` defaults to BIGINT."""
    return Column(name, kind if kind is not None else BigInteger(), nullable=False, server_default=text(str(default)))


def chunks(items: list, size: int = 500):
    """`items` in slices of `size`: IN (...) lists stay under the servers' limits."""
    for i in range(0, len(items), size):
        yield items[i:i + size]
