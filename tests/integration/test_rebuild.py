"""Rebuilding from the log yields exactly what incremental folding yields."""

import random
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from services.worker.folding import fold_thread
from services.worker.rebuild import rebuild_threads
from shared.command_bus import CommandBus
from shared.commands import (
    Actor,
    Command,
    DeleteComment,
    EditComment,
    LikeComment,
    PostComment,
    RequestContext,
    UnlikeComment,
)
from shared.errors import ChorusError
from shared.projection_tables import LIVE
from shared.store import EventStore
from tests.projections import snapshot

USERS = [f"user{i}" for i in range(12)]


def random_command(
    rng: random.Random, threads: list[str], posted: list[tuple[str, str, str]]
) -> tuple[Command, str]:
    """A plausible next action: mostly posts and (deeply nested) replies, some edits, likes."""
    roll = rng.random()
    user = rng.choice(USERS)
    if not posted or roll < 0.55:
        thread = rng.choice(threads)
        in_thread = [p for p in posted if p[1] == thread]
        parent = None
        if in_thread and rng.random() < 0.7:
            # Prefer recent comments: conversations go deep.
            parent = in_thread[-rng.randint(1, min(5, len(in_thread)))][0]
        return PostComment(thread, f"comment {len(posted)} by *{user}*", parent), user
    comment_id, _thread, author = rng.choice(posted)
    if roll < 0.65:
        return EditComment(comment_id, f"edited by {author}"), author
    if roll < 0.72:
        return DeleteComment(comment_id), author
    if roll < 0.93:
        return LikeComment(comment_id), user
    return UnlikeComment(comment_id), user


def run(bus: CommandBus, command: Command, user: str, posted: list[tuple[str, str, str]]) -> None:
    ctx = RequestContext(Actor(user, user.title()))
    try:
        if isinstance(command, PostComment):
            posted.append((bus.execute(command, ctx).id, command.thread_id, user))
        else:
            bus.execute(command, ctx)
    except ChorusError:
        return  # e.g. replying to a deleted comment: refused, appends nothing


def test_rebuild_equals_incremental_folding_on_a_5000_event_log(
    engine: Engine, store: EventStore
) -> None:
    rng = random.Random(20261127)
    bus = CommandBus(engine, store)
    threads = [f"post-{i}" for i in range(6)]
    posted: list[tuple[str, str, str]] = []
    total = 0
    while total < 5000:
        for _ in range(250):
            run(bus, *random_command(rng, threads, posted), posted)
        # Fold incrementally, as workers would, at whatever point the log has reached.
        for thread in threads:
            fold_thread(engine, store, thread, batch_size=rng.choice([7, 100, 1000]))
        total = len(store.read_all(limit=100_000))
    incremental = snapshot(engine)
    depth = max(row[4] for row in incremental["comments"])

    progress: list[tuple[int, int]] = []
    result = rebuild_threads(engine, store, lambda done, all_: progress.append((done, all_)))

    assert result.events == total >= 5000
    assert depth >= 10  # deep nesting was exercised
    assert snapshot(engine) == incremental
    assert progress[-1] == (total, total)
    # The swapped-in tables are the live ones: folding goes on as before.
    run(bus, PostComment(threads[0], "after the rebuild"), "user1", posted)
    assert fold_thread(engine, store, threads[0]).applied == 1


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32), steps=st.integers(1, 60), fold_every=st.integers(1, 20))
def test_folding_at_any_points_gives_the_same_projection(
    engine: Engine, store: EventStore, seed: int, steps: int, fold_every: int
) -> None:
    rng = random.Random(seed)
    bus = CommandBus(engine, store)
    thread = f"h-{uuid.uuid4().hex[:10]}"
    posted: list[tuple[str, str, str]] = []
    for step in range(steps):
        run(bus, *random_command(rng, [thread], posted), posted)
        if step % fold_every == 0:
            fold_thread(engine, store, thread, batch_size=rng.randint(1, 10))
    fold_thread(engine, store, thread)
    incremental = snapshot(engine, threads={thread})

    with engine.begin() as conn:  # fold this thread again from nothing, in one go
        for table in (LIVE.comments, LIVE.participants, LIVE.checkpoints, LIVE.threads):
            conn.execute(table.delete().where(table.c.thread_id == thread))
    fold_thread(engine, store, thread)

    assert snapshot(engine, threads={thread}) == incremental
