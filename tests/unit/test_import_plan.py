"""The import engine's pure parts: ids, the plan of a thread, the events' data."""

import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.worker.imports import ids
from services.worker.imports import thread_events as te
from services.worker.imports.plan import PlanRefused, plan_thread
from shared import events as ev
from shared.handlers import MAX_DEPTH
from shared.ids import new_id
from shared.store import NewEvent
from tests.import_sources import START, chain, comment, thread


def test_replies_come_after_their_parents_oldest_first() -> None:
    plan = plan_thread(
        "disqus",
        thread(
            "t",
            [
                comment("c", "b", minute=1),  # a reply dated before its parent
                comment("b", "a", minute=5),
                comment("a", minute=3),
                comment("z", minute=0),
            ],
        ),
    )
    assert [p.source.key for p in plan.comments] == ["z", "a", "b", "c"]
    assert [p.depth for p in plan.comments] == [0, 0, 1, 2]


def test_missing_parents_go_to_the_top_level_and_deep_replies_are_attached_higher() -> None:
    plan = plan_thread("disqus", thread("t", [*chain("d", MAX_DEPTH + 2), comment("o", "gone")]))
    assert plan.parents_missing == 1
    assert plan.flattened == 2
    assert max(p.depth for p in plan.comments) == MAX_DEPTH - 1
    deepest = [p for p in plan.comments if p.depth == MAX_DEPTH - 1]
    assert len({p.parent_id for p in deepest}) == 1


def test_a_reply_cycle_refuses_the_thread() -> None:
    with pytest.raises(PlanRefused, match="reply cycle"):
        plan_thread("disqus", thread("t", [comment("a"), comment("b", "c"), comment("c", "b")]))


def test_duplicate_keys_are_skipped() -> None:
    plan = plan_thread("disqus", thread("t", [comment("a"), comment("a", minute=2)]))
    assert len(plan.comments) == 1
    assert [s.reason for s in plan.skipped] == ["duplicate key"]


def test_event_ids_are_uuid5s_and_comment_ids_crockford_base32() -> None:
    for key in ("1", "post:7", "ünïcode"):
        expected = uuid.uuid5(ids.NAMESPACE, f"chorus-import:disqus:{key}:posted")
        assert ids.event_id("disqus", key, "posted") == str(expected)
    moment = datetime(2016, 5, 4, 3, 2, 1, 123000, tzinfo=UTC)
    value = int(moment.timestamp() * 1000) << 80 | int.from_bytes(
        hashlib.sha256(b"disqus:9").digest()[:10], "big"
    )
    digits = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        digits.append("0123456789abcdefghjkmnpqrstvwxyz"[digit])
    assert ids.derived_comment_id("disqus", "9", moment) == "".join(reversed(digits))


def test_derived_ids_are_stable_and_shaped_like_native_ones() -> None:
    made = ids.derived_comment_id("disqus", "42", START)
    assert made == ids.derived_comment_id("disqus", "42", START)
    assert made != ids.derived_comment_id("wordpress", "42", START)
    assert len(made) == len(new_id()) == 26
    later = ids.derived_comment_id("disqus", "1", START + timedelta(milliseconds=1))
    assert made[:10] < later[:10]
    assert ids.thread_id("disqus", thread("k", [], identifier="a b")) == (
        ids.url_thread_id("https://blog.example/k"),
        "url",
    )


def test_the_events_data_is_what_the_models_would_write() -> None:
    source = comment(
        "1",
        likes=3,
        liked_by=("u1", "u1", "u2"),
        status="rejected",
        deleted=True,
        body="secret",
    )
    planned = plan_thread("isso", thread("t", [source])).comments[0]
    made = te.comment_events("isso", planned)
    posted = ev.CommentPosted(
        comment_id=planned.comment_id,
        parent_id=None,
        author=ev.Author(id="import:disqus:ann", name="Ann"),
        body="",
        status="pending",
        imported_from="isso",
        posted_at=source.posted_at,
        imported_likes=3,
    )
    expected = [
        NewEvent.of(posted),
        NewEvent.of(ev.CommentLiked(comment_id=planned.comment_id, user_id="u1")),
        NewEvent.of(ev.CommentLiked(comment_id=planned.comment_id, user_id="u2")),
        NewEvent.of(ev.CommentRejected(comment_id=planned.comment_id, by="import:isso")),
        NewEvent.of(ev.CommentDeleted(comment_id=planned.comment_id, deleted_by="import:isso")),
    ]
    assert [(e.type, e.data) for e in made.events] == [(e.type, e.data) for e in expected]
    # Another offset is written in UTC, as the same moment.
    elsewhere = source.posted_at.astimezone(timezone(timedelta(hours=2)))
    assert te.json_time(elsewhere) == te.json_time(source.posted_at)
    assert ev.CommentPosted.model_validate(made.events[0].data).posted_at == source.posted_at
    assert (
        te.json_time(datetime(2020, 1, 1, tzinfo=UTC))
        == NewEvent.of(
            ev.CommentPosted(
                comment_id="x",
                parent_id=None,
                author=ev.Author(id="a", name="a"),
                body="b",
                posted_at=datetime(2020, 1, 1, tzinfo=UTC),
            )
        ).data["posted_at"]
    )


def test_a_thread_began_at_its_own_date_or_its_oldest_comment_whichever_is_earlier() -> None:
    day = 24 * 60
    comments = [comment("1", minute=2 * day), comment("2")]
    assert plan_thread("disqus", thread("t", comments)).created_at == START
    month_before = START - timedelta(days=30)
    assert plan_thread("disqus", thread("t", comments, created_at=month_before)).created_at == (
        month_before
    )
    # A source may date a thread when it first saw it, after its older comments.
    seen_later = START + timedelta(days=30)
    assert plan_thread("disqus", thread("t", comments, created_at=seen_later)).created_at == START
    naive = datetime(2011, 5, 1)  # a source without a zone means UTC
    assert plan_thread("disqus", thread("t", [], created_at=naive)).created_at == datetime(
        2011, 5, 1, tzinfo=UTC
    )
    assert plan_thread("disqus", thread("t", [])).created_at is None


def test_the_registered_event_is_what_the_model_would_write() -> None:
    plan = plan_thread("disqus", thread("t", [comment("1")]))
    made = te.registered("disqus", plan)
    expected = NewEvent.of(ev.ThreadRegistered(title=plan.title, url=plan.url, registered_at=START))
    assert (made.type, made.data) == (expected.type, expected.data)
