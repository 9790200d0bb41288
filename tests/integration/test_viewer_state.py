"""What a signed-in reader sees on comment reads: `liked_by_me`, their own `body`, and the
context of a deep reply; the markdown source survives migration, edits and deletes."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from shared import events as ev
from shared.db import create_db_engine
from shared.handlers import MAX_DEPTH
from shared.migrate import upgrade
from shared.store import EventStore
from tests.integration.conftest import Auth
from tests.integration.test_api_reads import Thread
from tests.old_log import append_as_before_0009

Json = dict[str, Any]


@pytest.fixture
def t(client: TestClient, auth: Auth, engine: Engine, store: EventStore) -> Thread:
    return Thread(client, auth, engine, store)


def walk(comments: list[Json]) -> Iterator[Json]:
    for comment in comments:
        yield comment
        yield from walk(comment["replies"])


def by_id(comments: list[Json]) -> dict[str, Json]:
    return {c["id"]: c for c in walk(comments)}


def read(t: Thread, url: str, user: str | None = None, **params: object) -> Json:
    headers = t.auth(user) if user else {}
    response = t.client.get(url, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def test_a_signed_in_reader_sees_what_they_like_and_the_source_of_their_own_comments(
    t: Thread,
) -> None:
    mine = t.post("My **first** take", user="ann")
    theirs = t.post("Bob's _view_", user="bob")
    my_reply = t.post("I reply\n\n- with a list", parent=theirs, user="ann")
    t.like(theirs, "ann")
    t.like(mine, "bob")
    t.fold()

    comments = by_id(read(t, "/v1/threads/t1/comments", "ann")["comments"])

    assert comments[mine]["liked_by_me"] is False
    assert comments[mine]["body"] == "My **first** take"
    assert comments[theirs]["liked_by_me"] is True
    assert comments[theirs]["body"] is None, "only the author is shown the source"
    assert comments[my_reply]["body"] == "I reply\n\n- with a list"
    assert comments[my_reply]["liked_by_me"] is False
    bobs = by_id(read(t, "/v1/threads/t1/comments", "bob")["comments"])
    assert bobs[mine]["liked_by_me"] is True
    assert bobs[mine]["body"] is None
    assert bobs[theirs]["body"] == "Bob's _view_"


def test_anonymous_reads_carry_null_viewer_state(t: Thread) -> None:
    first = t.post("hello", user="ann")
    t.post("reply", parent=first, user="bob")
    t.like(first, "bob")
    t.fold()

    reads = [
        read(t, "/v1/threads/t1/comments")["comments"],
        read(t, f"/v1/comments/{first}/replies")["replies"],
        [read(t, f"/v1/comments/{first}")],
        [read(t, f"/v1/comments/{first}/context")["comment"]],
    ]

    for comments in reads:
        for comment in walk(comments):
            assert comment["liked_by_me"] is None
            assert comment["body"] is None


def test_every_comment_read_carries_viewer_state(t: Thread) -> None:
    top = t.post("top", user="bob")
    reply = t.post("mine *below*", parent=top, user="ann")
    nested = t.post("bob again", parent=reply, user="bob")
    t.like(nested, "ann")
    t.fold()

    replies = by_id(read(t, f"/v1/comments/{top}/replies", "ann")["replies"])
    single = by_id([read(t, f"/v1/comments/{reply}", "ann")])
    context = read(t, f"/v1/comments/{nested}/context", "ann")

    for shown in (replies, single):
        assert shown[reply]["body"] == "mine *below*"
        assert shown[nested]["liked_by_me"] is True
        assert shown[nested]["body"] is None
    assert context["comment"]["liked_by_me"] is True
    assert [a["body"] for a in context["ancestors"]] == [None, "mine *below*"]
    assert [a["liked_by_me"] for a in context["ancestors"]] == [False, False]


def test_liked_by_me_follows_the_like_at_once_and_body_follows_edits_and_deletes(
    t: Thread,
) -> None:
    mine = t.post("draft", user="ann")
    t.fold()
    t.like(mine, "ann")  # not folded yet: the count trails, the reader's own like does not
    edit = t.client.patch(
        f"/v1/comments/{mine}", json={"body": "final *words*"}, headers=t.auth("ann")
    )
    assert edit.status_code == 200, edit.text
    before_fold = read(t, f"/v1/comments/{mine}", "ann")
    assert before_fold["liked_by_me"] is True
    assert before_fold["like_count"] == 0
    assert before_fold["body"] == "draft", "body and body_html come from the same fold"

    t.fold()
    edited = read(t, f"/v1/comments/{mine}", "ann")
    assert edited["body"] == "final *words*"
    assert "<em>words</em>" in edited["body_html"]

    t.post("keeps it shown", parent=mine, user="bob")
    t.client.delete(f"/v1/comments/{mine}", headers=t.auth("ann"))
    t.fold()
    deleted = read(t, f"/v1/comments/{mine}", "ann")
    assert deleted["deleted"] is True
    assert deleted["body"] is None


@contextmanager
def statements(client: TestClient) -> Iterator[list[str]]:
    engine: Engine = client.app.state.services.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def test_viewer_state_costs_the_same_statements_for_one_comment_or_many(t: Thread) -> None:
    only = t.post("one", user="ann", thread="small")
    t.like(only, "ann")
    t.fold("small")
    for i in range(30):
        top = t.post(f"top {i}", user="ann" if i % 2 else "bob", thread="big")
        reply = t.post(f"reply {i}", parent=top, user="ann", thread="big")
        t.like(reply, "ann")
    t.fold("big")

    with statements(t.client) as small:
        read(t, "/v1/threads/small/comments", "ann")
    with statements(t.client) as big:
        page = read(t, "/v1/threads/big/comments", "ann", limit=30)
    with statements(t.client) as anonymous:
        read(t, "/v1/threads/big/comments", limit=30)

    assert len(page["comments"]) == 30
    assert sum(c["liked_by_me"] for c in walk(page["comments"])) == 30
    assert len(big) == len(small) + 1, "one more level of replies, nothing per comment"
    assert len(anonymous) == len(big) - 3, "likes, sources, own held comments: one each"


def test_the_context_of_a_deep_reply_lists_its_ancestors_root_first(t: Thread) -> None:
    chain = [t.post("root", user="bob")]
    for depth in range(1, MAX_DEPTH):
        chain.append(t.post(f"depth {depth}", parent=chain[-1], user="ann"))
    sibling = t.post("a sibling of depth 2", parent=chain[1], user="cat")
    version = t.fold()
    deepest = chain[-1]

    context = read(t, f"/v1/comments/{deepest}/context", min_version=version)

    assert context["thread_id"] == "t1"
    assert context["version"] == version
    assert context["comment"]["id"] == deepest
    assert context["comment"]["depth"] == MAX_DEPTH - 1
    ancestors = context["ancestors"]
    assert [a["id"] for a in ancestors] == chain[:-1]
    assert [a["depth"] for a in ancestors] == list(range(MAX_DEPTH - 1))
    assert all(a["replies"] == [] for a in ancestors)
    # Each ancestor's cursor reaches its replies, siblings of the path included.
    cursor = ancestors[1]["replies_next_cursor"]
    listed = read(t, f"/v1/comments/{chain[1]}/replies", cursor=cursor, replies=0)
    assert [r["id"] for r in listed["replies"]] == [chain[2], sibling]


def test_the_context_of_a_top_level_comment_has_no_ancestors_and_shows_replies(
    t: Thread,
) -> None:
    top = t.post("top")
    reply = t.post("reply", parent=top, user="bob")
    t.fold()

    context = read(t, f"/v1/comments/{top}/context")

    assert context["ancestors"] == []
    assert [r["id"] for r in context["comment"]["replies"]] == [reply]


def test_the_context_waits_for_min_version(t: Thread) -> None:
    top = t.post("top")
    t.fold()
    response = t.client.post(
        "/v1/threads/t1/comments", json={"body": "late", "parent_id": top}, headers=t.auth("bob")
    )
    version = response.json()["version"]

    ahead = t.client.get(f"/v1/comments/{top}/context", params={"min_version": version + 5})
    assert ahead.status_code == 422
    assert ahead.json()["error"]["code"] == "min_version_ahead"
    t.fold()
    caught_up = read(t, f"/v1/comments/{response.json()['id']}/context", min_version=version)
    assert caught_up["version"] == version
    assert [a["id"] for a in caught_up["ancestors"]] == [top]


def test_migration_0007_fills_the_source_of_existing_comments_from_the_log(
    unmigrated_url: str,
) -> None:
    upgrade(unmigrated_url, "0006")
    engine = create_db_engine(unmigrated_url)
    ann = ev.Author(id="ann", name="Ann")
    logged = [
        ev.CommentPosted(comment_id="c1", parent_id=None, author=ann, body="first *draft*"),
        ev.CommentPosted(comment_id="c2", parent_id=None, author=ann, body="kept as is"),
        ev.CommentEdited(comment_id="c1", body="second **take**"),
        ev.CommentPosted(comment_id="c3", parent_id=None, author=ann, body="then deleted"),
        ev.CommentPosted(comment_id="c4", parent_id=None, author=ann, body="not folded yet"),
    ]
    append_as_before_0009(engine, "t1", logged)  # the store of today needs 0009's table
    now = datetime.now(UTC)
    folded = [("c1", 1, False), ("c2", 2, False), ("c3", 4, True)]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO comment_view (comment_id, thread_id, parent_id, root_id, depth,"
                " path, seq, position, author_id, author_name, body_html, created_at,"
                " edited_at, deleted, like_count, reply_count, descendant_count) VALUES"
                " (:id, 't1', NULL, :id, 0, '', :seq, :seq, 'ann', 'Ann', '<p>x</p>', :now,"
                " NULL, :deleted, 0, 0, 0)"
            ),
            [{"id": c, "seq": seq, "deleted": d, "now": now} for c, seq, d in folded],
        )

    upgrade(unmigrated_url)

    with engine.connect() as conn:
        bodies = dict(conn.execute(sa.text("SELECT comment_id, body FROM comment_view")).all())
    engine.dispose()
    assert bodies == {"c1": "second **take**", "c2": "kept as is", "c3": None}


def test_anonymous_and_signed_in_reads_of_the_same_page_agree_but_for_viewer_state(
    t: Thread,
) -> None:
    first = t.post("one")
    t.post("two", parent=first, user="bob")
    t.fold()

    anonymous = read(t, "/v1/threads/t1/comments")
    signed_in = read(t, "/v1/threads/t1/comments", "cat")

    assert without_viewer_state(anonymous) == without_viewer_state(signed_in)


def without_viewer_state(value: Any) -> Any:
    if isinstance(value, list):
        return [without_viewer_state(v) for v in value]
    if isinstance(value, dict):
        return {k: without_viewer_state(v) for k, v in value.items() if k not in VIEWER_STATE}
    return value


VIEWER_STATE = {"liked_by_me", "body"}
