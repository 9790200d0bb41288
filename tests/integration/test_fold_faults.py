"""A database error while a fold isolates a poison event must fail the fold, not the event.

The poison event makes the batch fail, so the fold replays it event by event; a real
database error is then injected into one statement of that replay. Nothing may be
dead-lettered for it, no checkpoint may move, and the next fold must apply every valid
event exactly once.
"""

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.worker.dead_letters import list_dead_letters
from services.worker.folding import FoldResult, checkpoints_of, fold_all, thread_projection
from services.worker.notification_projector import notification_projection
from services.worker.rebuild import rebuild_notifications
from services.worker.sweep import threads_behind
from shared.command_bus import CommandBus
from shared.commands import (
    Actor,
    ChangeSubscription,
    LikeComment,
    PostComment,
    RequestContext,
)
from shared.notification_tables import notification_checkpoints, notifications
from shared.projection_tables import LIVE
from shared.store import EventStore, NewEvent
from tests.conftest import POSTGRES_ADMIN_URL
from tests.projections import clean_fold, orphan_reply, snapshot

Fault = Callable[[Connection], None]


def as_(user: str) -> RequestContext:
    return RequestContext(Actor(user, user.title()))


def deadlock(conn: Connection) -> None:
    """The driver reports the error the database would: SQLAlchemy wraps it as usual."""
    if conn.dialect.name == "postgresql":
        raise psycopg.errors.DeadlockDetected("deadlock detected")
    raise sqlite3.OperationalError("database is locked")


def connection_lost(conn: Connection) -> None:
    """PostgreSQL: another session terminates this one's backend. SQLite: the file handle
    is closed under SQLAlchemy. Either way the statement about to run meets a dead line."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    if conn.dialect.name != "postgresql":
        dbapi.close()
        return
    pid = dbapi.info.backend_pid  # type: ignore[attr-defined]
    admin = sa.create_engine(POSTGRES_ADMIN_URL, poolclass=sa.NullPool)
    with admin.connect() as other:
        assert other.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    admin.dispose()


THREAD_ROWS = ("thread_view", "comment_view", "thread_participants")
NOTIFICATION_ROWS = ("thread_subscriptions", "notification_comments", "notifications")


@dataclass
class Injection:
    replaying: bool = False
    writes: int = 0
    fired: bool = False


@contextmanager
def fault_in_replay(
    engine: Engine, *, tables: tuple[str, ...], write: int, fault: Fault
) -> Iterator[Injection]:
    """Run `fault` just before the `write`-th INSERT or UPDATE of `tables` once a batch has
    failed (a ROLLBACK TO SAVEPOINT): its events are being replayed one by one."""
    seen = Injection()

    def before(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split()
        if words[:3] == ["ROLLBACK", "TO", "SAVEPOINT"]:
            seen.replaying = True
        target = words[2] if words[:2] == ["INSERT", "INTO"] else words[1]
        writes = words[0] in ("INSERT", "UPDATE") and target in tables
        if seen.replaying and writes and not seen.fired:
            seen.writes += 1
            if seen.writes == write:
                seen.fired = True
                fault(conn)

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def fold_both(engine: Engine, store: EventStore) -> list[FoldResult]:
    """What the fold job does: both projections, in the same transactions."""
    return fold_all(engine, store, "t1", [thread_projection(), notification_projection()])


def checkpoints(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return checkpoints_of(conn, [LIVE.checkpoints, notification_checkpoints], "t1")


def notification_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(sa.select(notifications)))


@pytest.mark.parametrize("fault", [deadlock, connection_lost])
@pytest.mark.parametrize(
    "tables", [THREAD_ROWS, NOTIFICATION_ROWS], ids=["thread-replay", "notification-replay"]
)
def test_a_database_error_in_the_replay_fails_the_fold_and_loses_no_event(
    engine: Engine, store: EventStore, tables: tuple[str, ...], fault: Fault
) -> None:
    bus = CommandBus(engine, store)
    try:
        top = bus.execute(PostComment("t1", "first"), as_("ann")).id
        reply = bus.execute(PostComment("t1", "second", top), as_("bob")).id
        fold_both(engine, store)
        kept = checkpoints(engine)
        poison = orphan_reply()
        store.append("t1", [poison], store.stream_version("t1"))
        bus.execute(ChangeSubscription("t1", "watching"), as_("dan"))
        bus.execute(PostComment("t1", "third", reply), as_("cat"))
        bus.execute(LikeComment(top), as_("dan"))
        bus.execute(PostComment("t1", "fourth", top), as_("eve"))
    finally:
        bus.close()
    valid_after_poison = store.stream_version("t1") - kept[0] - 1

    expected = sa.exc.OperationalError if fault is deadlock else sa.exc.DBAPIError
    with (
        fault_in_replay(engine, tables=tables, write=3, fault=fault) as injected,
        pytest.raises(expected) as raised,
    ):
        fold_both(engine, store)

    assert raised.value.connection_invalidated == (fault is connection_lost)

    assert injected.fired
    assert list_dead_letters(engine) == []
    assert checkpoints(engine) == kept
    assert "t1" in threads_behind(engine)  # so the sweep nudges it again

    tree, inbox = fold_both(engine, store)

    assert (tree.dead_lettered, inbox.dead_lettered) == (1, 1)  # the poison, and only it
    assert (tree.applied, inbox.applied) == (valid_after_poison, valid_after_poison)
    assert checkpoints(engine) == [store.stream_version("t1")] * 2
    assert snapshot(engine) == clean_fold(engine, store)
    folded = notification_rows(engine)
    assert {(row[0], row[2]) for row in folded} >= {("ann", "reply"), ("dan", "thread")}
    rebuild_notifications(engine, store)
    assert notification_rows(engine) == folded


@pytest.mark.parametrize(
    "data",
    [
        {"comment_id": "odd", "parent_id": 5, "author": {"id": "x", "name": "X"}, "body": "?"},
        {"comment_id": "odd", "parent_id": None, "author": {"id": 7, "name": "X"}, "body": "?"},
    ],
    ids=["parent-id-a-number", "author-id-a-number"],
)
def test_malformed_event_data_is_the_events_fault_not_the_databases(
    engine: Engine, store: EventStore, data: dict[str, Any]
) -> None:
    """Raw data of the wrong type must fail validation, not a statement (which would read
    as a database error and stall the thread on every retry)."""
    bus = CommandBus(engine, store)
    try:
        top = bus.execute(PostComment("t1", "first"), as_("ann")).id
        store.append("t1", [NewEvent(type="CommentPosted", data=data)], 2)
        bus.execute(PostComment("t1", "second", top), as_("bob"))
    finally:
        bus.close()

    tree, inbox = fold_both(engine, store)

    assert (tree.dead_lettered, inbox.dead_lettered) == (1, 1)
    assert checkpoints(engine) == [4, 4]
    assert snapshot(engine) == clean_fold(engine, store)
