"""The thread projection, folded from real logs on both databases."""

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.worker.dead_letters import list_dead_letters
from services.worker.folding import checkpoint_of, fold_thread
from shared.command_bus import CommandBus
from shared.commands import (
    Actor,
    DeleteComment,
    EditComment,
    LikeComment,
    PostComment,
    RegisterThread,
    RequestContext,
    UnlikeComment,
)
from shared.projection_tables import LIVE
from shared.store import EventStore
from tests.projections import orphan_reply


def as_(user: str, *roles: str) -> RequestContext:
    return RequestContext(Actor(user, user.title(), roles=frozenset(roles)))


@pytest.fixture
def bus(engine: Engine, store: EventStore) -> CommandBus:
    return CommandBus(engine, store)


def comments(engine: Engine, thread_id: str = "t1") -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(LIVE.comments).where(LIVE.comments.c.thread_id == thread_id))
        return {r.comment_id: dict(r._mapping) for r in rows}


def thread(engine: Engine, thread_id: str = "t1") -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(sa.select(LIVE.threads).where(LIVE.threads.c.thread_id == thread_id))
        return dict(row.one()._mapping)


def post(bus: CommandBus, user: str, parent: str | None = None, body: str = "hi") -> str:
    return bus.execute(PostComment("t1", body, parent), as_(user)).id


def test_posting_builds_the_tree_with_depths_paths_and_counts(
    bus: CommandBus, engine: Engine, store: EventStore
) -> None:
    top = post(bus, "ann", body="**Top**")
    reply = post(bus, "bob", top)
    deeper = post(bus, "ann", reply)
    second = post(bus, "cat")

    result = fold_thread(engine, store, "t1")

    rows = comments(engine)
    assert result.applied == 5
    assert result.version == 5
    assert (rows[top]["depth"], rows[reply]["depth"], rows[deeper]["depth"]) == (0, 1, 2)
    assert rows[deeper]["path"] == f"{top}/{reply}"
    assert rows[deeper]["root_id"] == top
    assert (rows[top]["reply_count"], rows[top]["descendant_count"]) == (1, 2)
    assert (rows[reply]["reply_count"], rows[reply]["descendant_count"]) == (1, 1)
    assert rows[top]["body_html"] == "<p><strong>Top</strong></p>"
    assert rows[second]["seq"] > rows[deeper]["seq"]
    summary = thread(engine)
    assert (summary["comment_count"], summary["top_level_count"]) == (4, 2)
    assert summary["participant_count"] == 3
    assert summary["last_comment_at"] == rows[second]["created_at"]


def test_edits_render_the_new_body_and_mark_the_time(
    bus: CommandBus, engine: Engine, store: EventStore
) -> None:
    top = post(bus, "ann")
    bus.execute(EditComment(top, "_changed_"), as_("ann"))
    fold_thread(engine, store, "t1")

    row = comments(engine)[top]
    assert row["body_html"] == "<p><em>changed</em></p>"
    assert row["edited_at"] is not None


def test_deletes_take_comments_out_of_every_count(
    bus: CommandBus, engine: Engine, store: EventStore
) -> None:
    top = post(bus, "ann")
    reply = post(bus, "bob", top)
    deeper = post(bus, "cat", reply)
    fold_thread(engine, store, "t1")
    bus.execute(DeleteComment(reply), as_("bob"))
    bus.execute(DeleteComment(deeper), as_("mod", "moderator"))

    fold_thread(engine, store, "t1")

    rows = comments(engine)
    assert rows[reply]["deleted"]
    assert rows[reply]["body_html"] is None
    assert (rows[top]["reply_count"], rows[top]["descendant_count"]) == (0, 0)
    assert (rows[reply]["reply_count"], rows[reply]["descendant_count"]) == (0, 0)
    summary = thread(engine)
    assert (summary["comment_count"], summary["participant_count"]) == (1, 1)


def test_likes_and_unlikes_are_counted(bus: CommandBus, engine: Engine, store: EventStore) -> None:
    top = post(bus, "ann")
    for user in ("bob", "cat", "dan"):
        bus.execute(LikeComment(top), as_(user))
    bus.execute(UnlikeComment(top), as_("cat"))

    fold_thread(engine, store, "t1")

    assert comments(engine)[top]["like_count"] == 2


def test_thread_metadata_and_lock_are_projected(
    bus: CommandBus, engine: Engine, store: EventStore
) -> None:
    admin = as_("root", "admin")
    bus.execute(RegisterThread("t1", "Title", "https://x.example/p"), admin)
    bus.execute(RegisterThread("t1", title="New title", locked=True), admin)

    fold_thread(engine, store, "t1")

    summary = thread(engine)
    assert (summary["title"], summary["url"], summary["locked"]) == (
        "New title",
        "https://x.example/p",
        True,
    )


def test_folding_again_applies_nothing_and_changes_nothing(
    bus: CommandBus, engine: Engine, store: EventStore
) -> None:
    top = post(bus, "ann")
    post(bus, "bob", top)
    fold_thread(engine, store, "t1")
    before = comments(engine), thread(engine)

    again = fold_thread(engine, store, "t1")

    assert again.applied == 0
    assert (comments(engine), thread(engine)) == before


def test_small_batches_fold_to_the_same_state_as_one_big_batch(
    bus: CommandBus, engine: Engine, store: EventStore
) -> None:
    ids = [post(bus, "ann")]
    for i in range(30):
        ids.append(post(bus, f"u{i % 4}", ids[i // 2]))
    bus.execute(DeleteComment(ids[3]), as_("u2"))

    result = fold_thread(engine, store, "t1", batch_size=4)

    assert result.version == store.stream_version("t1")
    by_batches = comments(engine)
    with engine.begin() as conn:  # a throwaway refold in one batch, in a fresh table set
        conn.execute(LIVE.comments.delete())
        conn.execute(LIVE.threads.delete())
        conn.execute(LIVE.participants.delete())
        conn.execute(LIVE.checkpoints.delete())
    fold_thread(engine, store, "t1", batch_size=1000)
    assert comments(engine) == by_batches


def test_an_event_that_cannot_be_applied_is_dead_lettered_and_the_thread_goes_on(
    bus: CommandBus, engine: Engine, store: EventStore
) -> None:
    top = post(bus, "ann")
    version = store.stream_version("t1")
    orphan = orphan_reply()
    store.append("t1", [orphan], version)
    later = post(bus, "bob", top)

    result = fold_thread(engine, store, "t1")

    # Tried without savepoints first, then again with them: the counts are of the second.
    assert (result.applied, result.dead_lettered) == (3, 1)
    assert result.version == store.stream_version("t1")
    assert set(comments(engine)) == {top, later}
    (letter,) = list_dead_letters(engine)
    assert (letter.stream_id, letter.version, letter.event_type) == ("t1", 3, "CommentPosted")
    assert "no-such-parent" in letter.error
    with engine.connect() as conn:
        assert checkpoint_of(conn, LIVE, "t1") == store.stream_version("t1")
