"""Writing many rows at once: COPY on PostgreSQL, one executemany on SQLite.

For bulk writers only (`chorus import`): COPY takes rows at several times the rate of
even a pipelined executemany, and costs one round trip per table, whatever the count.
Rows are dicts with the same keys; JSON columns take plain dicts and lists.
"""

from collections.abc import Sequence
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy.engine import Connection


def insert_rows(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT `rows` into `table` in the caller's transaction."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), list(rows))
        return
    columns = list(rows[0])
    names = ", ".join(f'"{c}"' for c in columns)
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    try:
        _copy(conn, statement, table, columns, rows)
    except psycopg.errors.IntegrityError as exc:  # as SQLAlchemy would have raised them
        raise sa.exc.IntegrityError(statement, None, exc) from exc
    except psycopg.errors.DataError as exc:
        raise sa.exc.DataError(statement, None, exc) from exc


def _copy(
    conn: Connection,
    statement: str,
    table: sa.Table,
    columns: list[str],
    rows: Sequence[dict[str, Any]],
) -> None:
    json_columns = {c for c in columns if isinstance(table.c[c].type, sa.JSON)}
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(statement) as copy:
        if json_columns:
            for row in rows:
                copy.write_row(
                    [
                        Jsonb(row[c]) if c in json_columns and row[c] is not None else row[c]
                        for c in columns
                    ]
                )
        else:
            for row in rows:
                copy.write_row([row[c] for c in columns])
