"""Comparing a table's rows with the rows it should hold, both streamed in key order.

Both sides are read ordered by the table's key, bytewise (PostgreSQL: `COLLATE "C"`;
SQLite compares text bytewise already), which is also the order Python compares strings
in, so one merge pass finds every missing, extra and different row in bounded memory.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.timeutil import as_utc

Problem = Literal["missing", "extra", "different"]
STREAM_CHUNK = 1000


@dataclass(frozen=True)
class Difference:
    """A row that disagrees with the log: missing, extra, or different in one column."""

    table: str
    key: str  # "column=value, ..." of the row's key
    problem: Problem
    column: str | None = None
    found: str | None = None  # repr() of the value the table holds
    expected: str | None = None  # repr() of the value the log gives


@dataclass(frozen=True)
class TableCheck:
    """How to compare one table: its key, and columns that are not derived from the log."""

    table: sa.Table
    key: tuple[str, ...]
    ignore: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def columns(self) -> list[str]:
        return [c.name for c in self.table.c if c.name not in (*self.key, *self.ignore)]

    def rows(self, conn: Connection, where: sa.ColumnElement[bool] | None = None) -> Iterator[Any]:
        """The table's rows (those matching `where`), in bytewise key order, streamed."""
        query = sa.select(*(self.table.c[c] for c in (*self.key, *self.columns)))
        if where is not None:
            query = query.where(where)
        query = query.order_by(*(_bytewise(self.table.c[c], conn) for c in self.key))
        yield from conn.execution_options(yield_per=STREAM_CHUNK).execute(query)


def _bytewise(column: sa.Column[Any], conn: Connection) -> sa.ColumnElement[Any]:
    if conn.dialect.name == "postgresql" and isinstance(column.type, sa.String):
        return column.collate("C")
    return column


def diff_rows(
    check: TableCheck, found: Iterable[Any], expected: Iterable[Any]
) -> Iterator[Difference]:
    """Merge two key-ordered row streams of `check`'s table into their differences."""
    width = len(check.key)
    found_rows, expected_rows = iter(found), iter(expected)
    have, want = next(found_rows, None), next(expected_rows, None)
    while have is not None or want is not None:
        have_key = tuple(have[:width]) if have is not None else None
        want_key = tuple(want[:width]) if want is not None else None
        if have_key is not None and (want_key is None or have_key < want_key):
            yield Difference(check.name, _key(check, have_key), "extra")
            have = next(found_rows, None)
        elif want_key is not None and (have_key is None or want_key < have_key):
            yield Difference(check.name, _key(check, want_key), "missing")
            want = next(expected_rows, None)
        else:
            yield from _compare(check, have, want)
            have, want = next(found_rows, None), next(expected_rows, None)


def _compare(check: TableCheck, have: Any, want: Any) -> Iterator[Difference]:
    """The columns in which two rows with the same key differ."""
    width = len(check.key)
    key = _key(check, tuple(have[:width]))
    for offset, column in enumerate(check.columns, start=width):
        is_, should = _normal(have[offset]), _normal(want[offset])
        if is_ != should:
            yield Difference(check.name, key, "different", column, repr(is_), repr(should))


def _key(check: TableCheck, values: tuple[Any, ...]) -> str:
    return ", ".join(f"{name}={value}" for name, value in zip(check.key, values, strict=True))


def _normal(value: Any) -> Any:
    # SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones in its zone.
    return as_utc(value) if isinstance(value, datetime) else value
