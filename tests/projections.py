"""Comparing projection states: what the tests mean by "identical to a clean fold"."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.worker.folding import fold_thread
from shared.db import write_transaction
from shared.projection_tables import LIVE, ThreadTables, thread_tables
from shared.store import EventStore, NewEvent
from shared.streams import is_thread_stream

Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(
    engine: Engine, tables: ThreadTables = LIVE, threads: set[str] | None = None
) -> Snapshot:
    """Every projection row (checkpoint times aside), sorted: equal snapshots, equal states."""
    result = {}
    with engine.connect() as conn:
        for name, table in zip(
            ("threads", "comments", "participants", "checkpoints"), tables.all(), strict=True
        ):
            columns = [c for c in table.c if c.name != "updated_at"]
            query = sa.select(*columns)
            if threads is not None:
                query = query.where(table.c.thread_id.in_(sorted(threads)))
            result[name] = sorted(tuple(row) for row in conn.execute(query))
    return result


def clean_fold(engine: Engine, store: EventStore) -> Snapshot:
    """The projection one uninterrupted fold of the whole log gives, in scratch tables."""
    scratch = thread_tables(sa.MetaData(), "reference_")
    # write_transaction: SQLite takes the write lock up front, so running workers make it
    # wait instead of failing a read-then-write upgrade.
    with write_transaction(engine) as conn:
        for table in scratch.all():
            table.drop(conn, checkfirst=True)
            table.create(conn)
    with engine.connect() as conn:
        streams = conn.execute(sa.text("SELECT stream_id FROM streams")).scalars()
        threads = [s for s in streams if is_thread_stream(s)]
    for thread_id in threads:
        fold_thread(engine, store, thread_id, tables=scratch)
    state = snapshot(engine, scratch)
    with write_transaction(engine) as conn:
        for table in scratch.all():
            table.drop(conn)
    return state


def orphan_reply(comment_id: str = "orphan") -> NewEvent:
    """A reply to a parent no log holds: an event no projection can apply (a dead letter)."""
    return NewEvent(
        type="CommentPosted",
        data={
            "comment_id": comment_id,
            "parent_id": "no-such-parent",
            "author": {"id": "x", "name": "X"},
            "body": "lost",
        },
    )
