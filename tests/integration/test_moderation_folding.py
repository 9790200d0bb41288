"""The thread projection under moderation: statuses, holds, flags and features folded from
the log on both databases, counts counting published comments only (decision 29)."""

import random

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.worker.dead_letters import list_dead_letters
from services.worker.folding import fold_thread
from services.worker.rebuild import rebuild_threads
from services.worker.sweep import threads_behind
from shared import events as ev
from shared.projection_tables import LIVE
from shared.store import EventStore, NewEvent
from shared.streams import SITE_MODERATION_STREAM
from tests.moderation_log import ThreadLog, assert_counts_match_statuses
from tests.projections import clean_fold, snapshot


@pytest.fixture
def log(engine: Engine, store: EventStore) -> ThreadLog:
    return ThreadLog(engine, store)


def row(engine: Engine, comment_id: str) -> dict[str, object]:
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(LIVE.comments).where(LIVE.comments.c.comment_id == comment_id)
        )
        return dict(found.one()._mapping)


def comment_count(engine: Engine, thread_id: str = "t1") -> int:
    with engine.connect() as conn:
        query = sa.select(LIVE.threads.c.comment_count).where(LIVE.threads.c.thread_id == thread_id)
        return int(conn.execute(query).scalar_one())


def test_a_held_comment_counts_nowhere_until_approved(engine: Engine, log: ThreadLog) -> None:
    top = log.post("ann")
    held = log.post("bob", top, status="pending", held_for=("first_comment", "suspect_word"))
    log.fold()

    folded = row(engine, held)
    assert (folded["status"], folded["held_for"]) == ("pending", "first_comment,suspect_word")
    assert (row(engine, top)["reply_count"], row(engine, top)["descendant_count"]) == (0, 0)
    assert comment_count(engine) == 1
    assert_counts_match_statuses(engine)

    log.approve(held)
    log.fold()

    assert (row(engine, held)["status"], row(engine, held)["held_for"]) == ("published", None)
    assert row(engine, top)["reply_count"] == 1
    assert comment_count(engine) == 2
    assert_counts_match_statuses(engine)


def test_counts_follow_every_status_change(engine: Engine, log: ThreadLog) -> None:
    top = log.post("ann")
    reply = log.post("bob", top)
    deeper = log.post("cat", reply)
    log.fold()
    assert comment_count(engine) == 3

    steps = [
        (lambda: log.hold(reply, "flags"), 2),
        (lambda: log.reject(reply), 2),
        (lambda: log.approve(reply), 3),
        (lambda: log.reject(deeper), 2),
        (lambda: log.delete(deeper), 2),  # deleting a rejected comment changes no count
        (lambda: log.delete(reply), 1),
        (lambda: log.approve(deeper), 1),  # approving a deleted one shows nothing either
    ]
    for step, expected in steps:
        step()
        log.fold()
        assert comment_count(engine) == expected
        assert_counts_match_statuses(engine)


def test_flags_count_by_reason_and_approval_clears_them(engine: Engine, log: ThreadLog) -> None:
    comment = log.post("ann")
    log.flag(comment, "bob", "spam")
    log.flag(comment, "cat", "abuse")
    log.flag(comment, "dan", "spam")
    log.hold(comment, "flags")
    log.fold()

    folded = row(engine, comment)
    assert (folded["flag_count"], folded["flags"]) == (3, {"spam": 2, "abuse": 1})
    assert (folded["status"], folded["held_for"]) == ("pending", "flags")
    assert comment_count(engine) == 0

    log.approve(comment)
    log.fold()

    folded = row(engine, comment)
    assert (folded["flag_count"], folded["flags"], folded["status"]) == (0, None, "published")
    assert comment_count(engine) == 1


def test_rejection_keeps_flags_and_drops_the_hold_reasons(engine: Engine, log: ThreadLog) -> None:
    comment = log.post("ann", status="pending", held_for=("pre_moderation",))
    log.flag(comment, "bob", "off_topic")
    log.reject(comment)
    log.fold()

    folded = row(engine, comment)
    assert (folded["status"], folded["held_for"]) == ("rejected", None)
    assert folded["flags"] == {"off_topic": 1}


def test_features_and_badges(engine: Engine, log: ThreadLog) -> None:
    staff = log.post("mod", badges=("staff",))
    plain = log.post("ann")
    log.feature(plain)
    log.fold()
    assert (row(engine, staff)["badges"], row(engine, plain)["badges"]) == ("staff", None)
    assert (row(engine, staff)["featured"], row(engine, plain)["featured"]) == (False, True)

    log.feature(plain, on=False)
    log.fold()
    assert row(engine, plain)["featured"] is False


def test_thread_moderation_changes_show_nothing_but_move_the_version(
    engine: Engine, log: ThreadLog
) -> None:
    version = log.append(ev.ThreadModerationChanged(mode="pre"))
    assert log.fold() == version


def test_the_site_stream_is_never_folded_as_a_thread(engine: Engine, store: EventStore) -> None:
    settings = ev.ModerationSettingsChanged(
        mode="pre", banned_words=[], suspect_words=[], max_links=None, flag_threshold=3
    )
    store.append(SITE_MODERATION_STREAM, [NewEvent.of(settings)], 0)

    assert SITE_MODERATION_STREAM not in threads_behind(engine)
    rebuild_threads(engine, store)

    with engine.connect() as conn:
        checkpoints = conn.execute(sa.select(LIVE.checkpoints.c.thread_id)).scalars().all()
    assert SITE_MODERATION_STREAM not in checkpoints
    assert list_dead_letters(engine) == []


def test_random_moderation_folds_like_a_clean_fold_and_a_rebuild(
    engine: Engine, store: EventStore, log: ThreadLog
) -> None:
    rng = random.Random(20261130)
    comments: list[str] = []
    for step in range(150):
        action = rng.random()
        target = rng.choice(comments) if comments else None
        if target is None or action < 0.35:
            parent = rng.choice([None, target])
            status = rng.choice(["published", "published", "pending"])
            held = ("pre_moderation",) if status == "pending" else ()
            comments.append(
                log.post(rng.choice(["ann", "bob", "cat"]), parent, status=status, held_for=held)
            )
        elif action < 0.45:
            log.hold(target, "flags")
        elif action < 0.55:
            log.approve(target)
        elif action < 0.65:
            log.reject(target)
        elif action < 0.75:
            log.flag(target, f"u{step}", rng.choice(["spam", "abuse"]))
        elif action < 0.85:
            log.feature(target, rng.random() < 0.7)
        elif action < 0.9:
            log.delete(target)
        if step % rng.randint(1, 15) == 0:
            fold_thread(engine, store, "t1", batch_size=rng.randint(1, 8))
    log.fold()
    assert_counts_match_statuses(engine)
    incremental = snapshot(engine)

    assert clean_fold(engine, store) == incremental
    rebuild_threads(engine, store)
    assert snapshot(engine) == incremental
    assert list_dead_letters(engine) == []
