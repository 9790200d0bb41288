"""Folding a thread's events into the thread projection, exactly once.

One transaction per batch: lock the thread's fold (concurrent jobs for one thread
queue up; different threads fold in parallel), read the checkpoint, read the
events after it, apply them, write the rows and the new checkpoint, commit. A
redelivered or duplicate job finds the checkpoint already moved and does nothing.

An event that cannot be applied is dead-lettered with its error and skipped, so a
thread never stalls behind it; the batch is replayed event by event (savepoints)
to isolate it.
"""

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.worker.thread_projectors import apply as apply_to_tree
from services.worker.tree_session import TreeSession
from shared.db import insert_ignoring_conflicts, write_transaction
from shared.projection_tables import DEAD_LETTERS, LIVE, ThreadTables
from shared.store import EventStore, StoredEvent

PROJECTION = "threads"
DEFAULT_BATCH = 1000
# Folds hold this shared; `chorus rebuild` takes it exclusively for the swap.
SWAP_LOCK_KEY = 0x43686F72757302

log = logging.getLogger(__name__)


@dataclass
class FoldResult:
    applied: int = 0
    dead_lettered: int = 0
    version: int = 0


Apply = Callable[[Connection, str, list[StoredEvent]], None]


@dataclass(frozen=True)
class Projection:
    """What a fold needs to know of a projection: its name, checkpoints and how to apply."""

    name: str
    checkpoints: sa.Table
    apply: Apply


def thread_projection(tables: ThreadTables = LIVE) -> Projection:
    def apply(conn: Connection, thread_id: str, events: list[StoredEvent]) -> None:
        session = TreeSession(conn, tables, thread_id)
        session.prefetch(events)
        for event in events:
            apply_to_tree(event, session)
        session.flush()

    return Projection(PROJECTION, tables.checkpoints, apply)


def fold_thread(
    engine: Engine,
    store: EventStore,
    thread_id: str,
    *,
    tables: ThreadTables = LIVE,
    batch_size: int = DEFAULT_BATCH,
) -> FoldResult:
    """Bring the thread's projection up to the head of its stream."""
    return fold(engine, store, thread_id, thread_projection(tables), batch_size=batch_size)


def fold(
    engine: Engine,
    store: EventStore,
    stream_id: str,
    projection: Projection,
    *,
    batch_size: int = DEFAULT_BATCH,
) -> FoldResult:
    """Bring one projection of one stream up to the head of the stream."""
    result = FoldResult()
    while True:
        with write_transaction(engine) as conn:
            lock_fold(conn, f"{projection.checkpoints.name}:{stream_id}")
            done = fold_batch(conn, store, stream_id, projection, batch_size, result)
        if done:
            return result


def lock_fold(conn: Connection, name: str) -> None:
    """Serialize folds of one stream into one table set, until the transaction ends."""
    if conn.dialect.name != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE already serializes writers
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock_shared(SWAP_LOCK_KEY)))
    key = sa.func.hashtextextended(sa.literal(f"chorus-fold:{name}"), 0)
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def checkpoint_of(conn: Connection, tables: ThreadTables | sa.Table, stream_id: str) -> int:
    checkpoints = tables.checkpoints if isinstance(tables, ThreadTables) else tables
    version = conn.execute(
        sa.select(checkpoints.c.version).where(checkpoints.c.thread_id == stream_id)
    ).scalar()
    return int(version or 0)


def fold_batch(
    conn: Connection,
    store: EventStore,
    stream_id: str,
    projection: Projection,
    batch_size: int,
    result: FoldResult,
) -> bool:
    """Apply the next batch inside `conn`'s transaction; True when the stream is exhausted."""
    checkpoint = checkpoint_of(conn, projection.checkpoints, stream_id)
    events = store.read_stream(stream_id, after_version=checkpoint, limit=batch_size, conn=conn)
    result.version = checkpoint
    if not events:
        return True
    try:
        with conn.begin_nested():
            projection.apply(conn, stream_id, events)
        result.applied += len(events)
    except Exception:
        # Some event in the batch cannot be applied: replay one by one to isolate it.
        for event in events:
            try:
                with conn.begin_nested():
                    projection.apply(conn, stream_id, [event])
                result.applied += 1
            except Exception as exc:
                _dead_letter(conn, projection.name, event, exc)
                result.dead_lettered += 1
    _save_checkpoint(conn, projection.checkpoints, stream_id, events[-1], first=checkpoint == 0)
    result.version = events[-1].version
    return len(events) < batch_size


def _save_checkpoint(
    conn: Connection, checkpoints: sa.Table, stream_id: str, last: StoredEvent, *, first: bool
) -> None:
    values = {"version": last.version, "position": last.position, "updated_at": datetime.now(UTC)}
    if first:
        conn.execute(checkpoints.insert().values(thread_id=stream_id, **values))
    else:
        conn.execute(
            checkpoints.update().where(checkpoints.c.thread_id == stream_id).values(**values)
        )


def _dead_letter(conn: Connection, projection: str, event: StoredEvent, exc: Exception) -> None:
    log.error("dead-lettering %s v%d of %s: %s", event.type, event.version, event.stream_id, exc)
    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    # A rebuild meets the same poison event again: one dead letter per event is enough.
    insert_ignoring_conflicts(
        conn,
        DEAD_LETTERS,
        {
            "projection": projection,
            "stream_id": event.stream_id,
            "version": event.version,
            "position": event.position,
            "event_id": event.event_id,
            "event_type": event.type,
            "error": error[:4000],
            "failed_at": datetime.now(UTC),
        },
        ["projection", "event_id"],
    )
