"""`chorus rebuild`: replay the whole log into fresh projection tables and swap them in.

Readers keep reading the live tables while the fresh set is folded beside them.
The swap takes the exclusive swap lock (live folds hold it shared), folds the
last events that arrived meanwhile, and renames the tables in one transaction, so
readers see either the old set or the new one, never a gap.
"""

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.worker.folding import (
    SWAP_LOCK_KEY,
    FoldResult,
    fold_batch,
    fold_thread,
    lock_fold,
    thread_projection,
)
from services.worker.notification_projector import notification_projection
from shared.db import read_connection, write_transaction
from shared.log_tables import StreamRecord
from shared.notification_tables import (
    conversation_participants,
    notification_checkpoints,
    notification_comments,
    notifications,
    thread_subscriptions,
)
from shared.projection_tables import LIVE, ThreadTables, thread_tables
from shared.store import EventStore
from shared.streams import NOT_A_THREAD_PREFIX

STREAMS = StreamRecord.__table__  # type: ignore[attr-defined]
SHADOW_PREFIX = "rebuild_"
RETIRED_PREFIX = "retired_"

NOTIFICATION_PROJECTION_TABLES = (
    notifications,
    thread_subscriptions,
    conversation_participants,
    notification_comments,
    notification_checkpoints,
)

Progress = Callable[[int, int], None]  # (events folded so far, events in the log)


@dataclass
class RebuildResult:
    threads: int
    events: int
    dead_lettered: int


def rebuild_threads(
    engine: Engine, store: EventStore, progress: Progress | None = None, batch_size: int = 1000
) -> RebuildResult:
    shadow = thread_tables(sa.MetaData(), SHADOW_PREFIX)
    _create_fresh(engine, shadow)
    heads = _stream_heads(engine)
    total = sum(heads.values())
    folded = dead = 0
    for thread_id in heads:
        result = fold_thread(engine, store, thread_id, tables=shadow, batch_size=batch_size)
        folded += result.applied + result.dead_lettered
        dead += result.dead_lettered
        if progress:
            progress(folded, total)
    # A second pass outside the lock keeps the locked catch-up below short.
    for thread_id in _stream_heads(engine):
        fold_thread(engine, store, thread_id, tables=shadow, batch_size=batch_size)
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SWAP_LOCK_KEY)))
        projection = thread_projection(shadow)
        for thread_id in _stream_heads(engine, conn):
            result = FoldResult()
            while not fold_batch(conn, store, thread_id, projection, batch_size, result):
                pass
        _swap(conn, shadow)
    if progress:
        progress(total, total)
    return RebuildResult(threads=len(heads), events=folded, dead_lettered=dead)


def _create_fresh(engine: Engine, tables: ThreadTables) -> None:
    with write_transaction(engine) as conn:
        for table in reversed(tables.all()):
            table.drop(conn, checkfirst=True)  # leftovers of an interrupted rebuild
        for table in tables.all():
            table.create(conn)


def _stream_heads(engine: Engine, conn: Connection | None = None) -> dict[str, int]:
    query = (
        sa.select(STREAMS.c.stream_id, STREAMS.c.version)
        # Users' and the site's streams (`~...`) have no thread.
        .where(~STREAMS.c.stream_id.startswith(NOT_A_THREAD_PREFIX))
        .order_by(STREAMS.c.stream_id)
    )
    if conn is not None:
        return {row.stream_id: row.version for row in conn.execute(query)}
    with read_connection(engine) as own:
        return {row.stream_id: row.version for row in own.execute(query)}


def _swap(conn: Connection, shadow: ThreadTables) -> None:
    postgres = conn.dialect.name == "postgresql"
    for live, fresh in zip(LIVE.all(), shadow.all(), strict=True):
        conn.exec_driver_sql(f'ALTER TABLE "{live.name}" RENAME TO "{RETIRED_PREFIX}{live.name}"')
        conn.exec_driver_sql(f'ALTER TABLE "{fresh.name}" RENAME TO "{live.name}"')
        conn.exec_driver_sql(f'DROP TABLE "{RETIRED_PREFIX}{live.name}"')
        # Give the fresh indexes their canonical names (SQLite cannot rename an index).
        for fresh_index, live_index in zip(
            sorted(fresh.indexes, key=lambda i: str(i.name)),
            sorted(live.indexes, key=lambda i: str(i.name)),
            strict=True,
        ):
            if postgres:
                conn.exec_driver_sql(
                    f'ALTER INDEX "{fresh_index.name}" RENAME TO "{live_index.name}"'
                )
            else:
                conn.exec_driver_sql(f'DROP INDEX "{fresh_index.name}"')
                live_index.create(conn)
        if postgres:
            _rename_constraints(conn, live.name, fresh.name)


def _rename_constraints(conn: Connection, table: str, fresh_table: str) -> None:
    """PostgreSQL names primary keys after their table: keep the canonical names."""
    conn.exec_driver_sql(f'ALTER INDEX IF EXISTS "{fresh_table}_pkey" RENAME TO "{table}_pkey"')


def rebuild_notifications(
    engine: Engine, store: EventStore, progress: Progress | None = None, batch_size: int = 1000
) -> RebuildResult:
    """Refold every thread's notifications from the log, one thread per transaction.

    Readers see a thread's old rows or its new ones, never neither. No email is queued:
    the outbox is delivery state, and a rebuild only reproduces what was already decided.
    """
    heads = _stream_heads(engine)
    total = sum(heads.values())
    folded = dead = 0
    projection = notification_projection(queue_email=False)
    for thread_id in heads:
        result = FoldResult()
        with write_transaction(engine) as conn:
            lock_fold(conn, f"{projection.checkpoints.name}:{thread_id}")
            for table in NOTIFICATION_PROJECTION_TABLES:
                conn.execute(table.delete().where(table.c.thread_id == thread_id))
            while not fold_batch(conn, store, thread_id, projection, batch_size, result):
                pass
        folded += result.applied + result.dead_lettered
        dead += result.dead_lettered
        if progress:
            progress(folded, total)
    return RebuildResult(threads=len(heads), events=folded, dead_lettered=dead)
