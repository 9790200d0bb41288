"""Folding a thread's events into its projections, exactly once.

One transaction per batch: lock the thread's folds (concurrent jobs for one thread
queue up; different threads fold in parallel), read the checkpoints, read the
events after them once, apply them to each projection, write the rows and the new
checkpoints, commit. A redelivered or duplicate job finds the checkpoints already
moved and does nothing.

An event that cannot be applied is dead-lettered with its error and skipped, so a
thread never stalls behind it; the batch is replayed event by event (savepoints)
to isolate it. Only the event's own errors dead-letter it (`fold_errors`): a database
error fails the fold, the transaction rolls back with the checkpoint, and the next
nudge or the sweep folds the thread again.
"""

import functools
import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.worker.fold_errors import is_event_error
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
    emails_due: int = 0  # emails queued for sending now (the mail nudge waits for these)
    # Users given new notifications (their unread counts change: live updates announce it).
    # Frozen, so the copy of a rolled-back attempt shares nothing with the result.
    notified: frozenset[str] = frozenset()

    def add(self, applied: "Applied") -> None:
        self.emails_due += applied.emails_due
        if applied.notified:
            self.notified = self.notified | applied.notified


@dataclass(frozen=True)
class Applied:
    """What applying a batch to a projection did besides writing its rows."""

    emails_due: int = 0
    notified: frozenset[str] = frozenset()


NOTHING_ELSE = Applied()

# Applies events to a projection inside the caller's transaction.
Apply = Callable[[Connection, str, list[StoredEvent]], Applied]


@dataclass(frozen=True)
class Projection:
    """What a fold needs to know of a projection: its name, checkpoints and how to apply."""

    name: str
    checkpoints: sa.Table
    apply: Apply


def thread_projection(tables: ThreadTables = LIVE) -> Projection:
    def apply(conn: Connection, thread_id: str, events: list[StoredEvent]) -> Applied:
        session = TreeSession(conn, tables, thread_id)
        session.prefetch(events)
        for event in events:
            apply_to_tree(event, session)
        session.flush()
        return NOTHING_ELSE

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
    return fold_all(engine, store, stream_id, [projection], batch_size=batch_size)[0]


def fold_all(
    engine: Engine,
    store: EventStore,
    stream_id: str,
    projections: Sequence[Projection],
    *,
    batch_size: int = DEFAULT_BATCH,
) -> list[FoldResult]:
    """Bring several projections of one stream up to its head, sharing each transaction.

    The events are read once per batch for all of them; each keeps its own checkpoint.
    A batch is first applied without savepoints (four statements fewer, for a fold job
    of a comment or two a fifth of its statements); only if one of its events cannot be
    applied is the transaction rolled back and the batch applied again with savepoints,
    which isolate that event for its dead letter.
    """
    results = [FoldResult() for _ in projections]
    careful = False
    while True:
        attempt = [replace(result) for result in results]  # a rolled-back try counts nothing
        try:
            with write_transaction(engine) as conn:
                lock_folds(conn, [f"{p.checkpoints.name}:{stream_id}" for p in projections])
                done = fold_batches(
                    conn, store, stream_id, projections, batch_size, attempt, careful=careful
                )
        except Exception as exc:
            if careful or not is_event_error(exc):
                raise  # the database's fault (fold_errors), or the careful pass's own
            careful = True
            continue
        results, careful = attempt, False
        if done:
            return results


def lock_fold(conn: Connection, name: str) -> None:
    """Serialize folds of one stream into one table set, until the transaction ends."""
    lock_folds(conn, [name])


def lock_folds(conn: Connection, names: Sequence[str]) -> None:
    """`lock_fold` for several table sets in one round trip, always in the order given."""
    if conn.dialect.name != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE already serializes writers
    conn.execute(_lock_statement(len(names)), {f"name{i}": n for i, n in enumerate(names)})


@functools.cache
def _lock_statement(count: int) -> sa.Select[Any]:
    # Statements are built once: building and keying them costs more CPU than running them.
    # PostgreSQL evaluates a target list left to right: the swap lock is taken first.
    return sa.select(
        sa.func.pg_advisory_xact_lock_shared(SWAP_LOCK_KEY),
        *(
            sa.func.pg_advisory_xact_lock(
                sa.func.hashtextextended(
                    sa.literal("chorus-fold:") + sa.bindparam(f"name{i}", type_=sa.String), 0
                )
            )
            for i in range(count)
        ),
    )


def checkpoint_of(conn: Connection, tables: ThreadTables | sa.Table, stream_id: str) -> int:
    checkpoints = tables.checkpoints if isinstance(tables, ThreadTables) else tables
    return checkpoints_of(conn, [checkpoints], stream_id)[0]


def checkpoints_of(conn: Connection, tables: Sequence[sa.Table], stream_id: str) -> list[int]:
    """The versions each checkpoint table holds for the stream (0: none), in one query."""
    versions = conn.execute(_checkpoints_statement(tuple(tables)), {"stream_id": stream_id}).one()
    return [int(version or 0) for version in versions]


@functools.lru_cache(maxsize=32)
def _checkpoints_statement(tables: tuple[sa.Table, ...]) -> sa.Select[Any]:
    stream_id = sa.bindparam("stream_id", type_=sa.String)
    return sa.select(
        *(
            sa.select(t.c.version).where(t.c.thread_id == stream_id).scalar_subquery()
            for t in tables
        )
    )


def fold_batch(
    conn: Connection,
    store: EventStore,
    stream_id: str,
    projection: Projection,
    batch_size: int,
    result: FoldResult,
) -> bool:
    """Apply the next batch inside `conn`'s transaction; True when the stream is exhausted."""
    return fold_batches(conn, store, stream_id, [projection], batch_size, [result])


def fold_batches(
    conn: Connection,
    store: EventStore,
    stream_id: str,
    projections: Sequence[Projection],
    batch_size: int,
    results: Sequence[FoldResult],
    *,
    careful: bool = True,
) -> bool:
    """`fold_batch` for several projections, reading the events once; True when exhausted.

    `careful`: each projection's batch in a savepoint, replayed event by event to
    dead-letter what cannot be applied. Without it an event's error propagates, and the
    caller must roll the transaction back (as `fold_all` does) and try again carefully.
    """
    checkpoints = checkpoints_of(conn, [p.checkpoints for p in projections], stream_id)
    events = store.read_stream(
        stream_id, after_version=min(checkpoints), limit=batch_size, conn=conn
    )
    for projection, checkpoint, result in zip(projections, checkpoints, results, strict=True):
        result.version = checkpoint
        behind = [e for e in events if e.version > checkpoint]
        if behind:
            if careful:
                _apply_batch(conn, stream_id, projection, behind, result)
            else:
                result.add(projection.apply(conn, stream_id, behind))
                result.applied += len(behind)
            first = checkpoint == 0
            _save_checkpoint(conn, projection.checkpoints, stream_id, behind[-1], first=first)
            result.version = behind[-1].version
    return len(events) < batch_size


def _apply_batch(
    conn: Connection,
    stream_id: str,
    projection: Projection,
    events: list[StoredEvent],
    result: FoldResult,
) -> None:
    try:
        with conn.begin_nested():
            result.add(projection.apply(conn, stream_id, events))
        result.applied += len(events)
        return
    except Exception as exc:
        if not is_event_error(exc):
            raise  # the database's fault: fail the fold, keep the checkpoint (fold_errors)
    # Some event in the batch cannot be applied: replay one by one to isolate it.
    for event in events:
        try:
            with conn.begin_nested():
                result.add(projection.apply(conn, stream_id, [event]))
            result.applied += 1
        except Exception as exc:
            if not is_event_error(exc):
                raise
            _dead_letter(conn, projection.name, event, exc)
            result.dead_lettered += 1


def _save_checkpoint(
    conn: Connection, checkpoints: sa.Table, stream_id: str, last: StoredEvent, *, first: bool
) -> None:
    values = {
        "b_thread_id": stream_id,
        "b_version": last.version,
        "b_position": last.position,
        "b_updated_at": datetime.now(UTC),
    }
    conn.execute(_checkpoint_statements(checkpoints)[0 if first else 1], values)


@functools.lru_cache(maxsize=32)
def _checkpoint_statements(checkpoints: sa.Table) -> tuple[sa.Insert, sa.Update]:
    """Insert and update of one stream's checkpoint, with `b_`-prefixed parameters."""
    values: dict[str, Any] = {
        c: sa.bindparam(f"b_{c}") for c in ("version", "position", "updated_at")
    }
    insert = checkpoints.insert().values(thread_id=sa.bindparam("b_thread_id"), **values)
    update = (
        checkpoints.update()
        .where(checkpoints.c.thread_id == sa.bindparam("b_thread_id"))
        .values(**values)
    )
    return insert, update


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
