"""Database engines for PostgreSQL and the embedded SQLite default."""

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.expression import Executable

_WRITE_OPTION = "chorus_write"
SQLITE_BUSY_TIMEOUT_MS = 30_000

# Runs one statement (with its parameters) as a transaction of its own, committed when
# the call returns.
Write = Callable[[Executable, Mapping[str, Any]], None]


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_db_engine(url: str, *, pool_size: int = 10) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return sa.create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800
    )


def _sqlite_engine(url: str) -> Engine:
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # Deleted rows are overwritten, not left in free pages: an erased person's words
        # must not stay readable in the file (decision 33).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front: no deadlocking lock upgrades, and
        # commit order equals position order.
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def insert_ignoring_conflicts(
    conn: Connection, table: sa.Table, values: dict[str, Any], index_elements: list[str]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True if the row was written."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=index_elements)
        .returning(*table.primary_key.columns)
    )
    # RETURNING tells reliably whether a row was written (rowcount does not, for upserts).
    return conn.execute(statement).first() is not None


@contextmanager
def write_transaction(engine: Engine, *, lock_wait: float | None = None) -> Iterator[Connection]:
    """A transaction that will append: committed on success, rolled back on error.

    `lock_wait` (seconds) bounds SQLite's wait for the write lock, which `BEGIN IMMEDIATE`
    takes (on PostgreSQL, `shared.store.lock_appends` bounds the append lock's).
    """
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        bounded = lock_wait is not None and conn.dialect.name == "sqlite"
        if bounded:
            assert lock_wait is not None
            _set_busy_timeout(conn, max(1, round(lock_wait * 1000)))
        try:
            with conn.begin():
                yield conn
        finally:
            if bounded:
                _set_busy_timeout(conn, SQLITE_BUSY_TIMEOUT_MS)


@contextmanager
def statement_writer(engine: Engine) -> Iterator[Write]:
    """One connection held for many single-statement writes, each committed on its own
    before the call returns (for a loop of small commits that each must be durable).

    PostgreSQL runs each statement in autocommit: a lone statement is a transaction of its
    own, so one round trip where a `write_transaction` makes five (checkout ping, BEGIN,
    the statement, COMMIT, the pool's reset). SQLite, whose commits cost no round trip,
    wraps each in `BEGIN IMMEDIATE` ... COMMIT as `write_transaction` does (its autocommit
    would bypass the engine's BEGIN IMMEDIATE).
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT")

            def write(statement: Executable, parameters: Mapping[str, Any]) -> None:
                conn.execute(statement, parameters)

        else:
            conn.execution_options(**{_WRITE_OPTION: True})

            def write(statement: Executable, parameters: Mapping[str, Any]) -> None:
                with conn.begin():
                    conn.execute(statement, parameters)

        yield write


def _set_busy_timeout(conn: Connection, milliseconds: int) -> None:
    # On the driver's connection: through SQLAlchemy the PRAGMA would begin the transaction.
    conn.connection.driver_connection.execute(f"PRAGMA busy_timeout={int(milliseconds)}")  # type: ignore[union-attr]


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction whose statements all see the same committed state: a
    page's several statements, or every table as `chorus verify` and `chorus export` read.

    SQLite's deferred BEGIN already pins a WAL snapshot at the first read; PostgreSQL's
    default READ COMMITTED would let a fold land between two statements."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn
