"""Reading threads, pages of comments and counts through HTTP, after the worker has folded."""

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.api.app import create_app
from services.worker.folding import fold_thread
from shared.settings import Settings
from shared.store import EventStore
from tests.integration.conftest import Auth

Json = dict[str, Any]


class Thread:
    """Writes through the API, folds like the worker, reads back."""

    def __init__(self, client: TestClient, auth: Auth, engine: Engine, store: EventStore) -> None:
        self.client, self.auth, self.engine, self.store = client, auth, engine, store

    def post(
        self, body: str = "hello", parent: str | None = None, user: str = "ann", thread: str = "t1"
    ) -> str:
        response = self.client.post(
            f"/v1/threads/{thread}/comments",
            json={"body": body, "parent_id": parent},
            headers=self.auth(user),
        )
        assert response.status_code == 201, response.text
        comment_id: str = response.json()["id"]
        return comment_id

    def like(self, comment_id: str, user: str) -> None:
        response = self.client.put(f"/v1/comments/{comment_id}/like", headers=self.auth(user))
        assert response.status_code == 200, response.text

    def delete(self, comment_id: str) -> None:
        moderator = self.auth("mod", roles=["moderator"])
        response = self.client.delete(f"/v1/comments/{comment_id}", headers=moderator)
        assert response.status_code == 200, response.text

    def fold(self, thread: str = "t1") -> int:
        return fold_thread(self.engine, self.store, thread).version

    def get(self, url: str, **params: object) -> Json:
        response = self.client.get(url, params=params)
        assert response.status_code == 200, response.text
        body: Json = response.json()
        return body

    def page(self, thread: str = "t1", **params: object) -> Json:
        return self.get(f"/v1/threads/{thread}/comments", **params)


@pytest.fixture
def t(client: TestClient, auth: Auth, engine: Engine, store: EventStore) -> Thread:
    return Thread(client, auth, engine, store)


def ids(comments: list[Json]) -> list[str]:
    return [c["id"] for c in comments]


def test_a_page_nests_replies_under_their_parents_with_counts(t: Thread) -> None:
    first = t.post("First *post*")
    reply = t.post("A reply", parent=first, user="bob")
    nested = t.post("Deeper", parent=reply)
    second_reply = t.post("Another", parent=first, user="cat")
    later = t.post("Later top-level", user="bob")
    version = t.fold()

    page = t.page()

    assert page["thread_id"] == "t1"
    assert page["version"] == version == 6
    assert page["comment_count"] == 5
    assert page["next_cursor"] is None
    assert ids(page["comments"]) == [first, later]
    top = page["comments"][0]
    assert top["author"] == {"id": "ann", "name": "Ann", "badges": []}
    assert top["body_html"] == "<p>First <em>post</em></p>"
    assert (top["depth"], top["parent_id"], top["deleted"]) == (0, None, False)
    assert (top["reply_count"], top["descendant_count"]) == (2, 3)
    assert top["created_at"].endswith("Z")
    assert top["edited_at"] is None
    assert ids(top["replies"]) == [reply, second_reply]
    child = top["replies"][0]
    assert (child["parent_id"], child["depth"], child["thread_id"]) == (first, 1, "t1")
    assert (child["reply_count"], child["descendant_count"]) == (1, 1)
    assert ids(child["replies"]) == [nested]
    assert child["replies"][0]["replies"] == []
    assert all(c["replies_next_cursor"] is None for c in [top, child, *top["replies"]])


def test_one_comment_reads_with_its_replies_and_an_edit_shows(t: Thread) -> None:
    top = t.post("Original")
    reply = t.post("Reply", parent=top, user="bob")
    edited = t.client.patch(f"/v1/comments/{top}", json={"body": "Edited"}, headers=t.auth("ann"))
    assert edited.status_code == 200
    t.fold()

    comment = t.get(f"/v1/comments/{top}")

    assert comment["body_html"] == "<p>Edited</p>"
    assert comment["edited_at"] is not None
    assert comment["edited_at"] >= comment["created_at"]
    assert ids(comment["replies"]) == [reply]
    assert t.get(f"/v1/comments/{reply}")["parent_id"] == top


def test_counts_are_read_for_many_threads_at_once(t: Thread) -> None:
    t.post(thread="t1")
    t.post(thread="t1")
    gone = t.post(thread="t2")
    t.post(thread="t2")
    t.delete(gone)
    t.fold("t1")
    t.fold("t2")

    response = t.client.post("/v1/counts", json={"thread_ids": ["t1", "t2", "nobody"]})

    assert response.status_code == 200
    assert response.json() == {"counts": {"t1": 2, "t2": 1, "nobody": 0}}


@pytest.mark.parametrize(
    "thread_ids", [[], [f"t{i}" for i in range(101)], ["a b"], ["x" * 201], "t1"]
)
def test_counts_refuse_more_than_100_threads_or_invalid_ids(t: Thread, thread_ids: object) -> None:
    response = t.client.post("/v1/counts", json={"thread_ids": thread_ids})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


def test_a_thread_reads_with_its_metadata_counts_and_version(t: Thread) -> None:
    url = "https://news.example/p/1"
    admin = t.auth("root", roles=["admin"])
    registered = t.client.put("/v1/threads/t1", json={"title": "One", "url": url}, headers=admin)
    assert registered.status_code == 200
    t.post(user="ann")
    t.post(user="bob")
    version = t.fold()

    thread = t.get("/v1/threads/t1")

    assert thread["last_comment_at"].endswith("Z")
    assert thread == {
        "id": "t1",
        "title": "One",
        "url": url,
        "locked": False,
        "comment_count": 2,
        "participant_count": 2,
        "last_comment_at": thread["last_comment_at"],
        "version": version,
    }


def test_a_thread_that_never_existed_is_404_and_an_unfolded_one_is_empty(t: Thread) -> None:
    missing = t.client.get("/v1/threads/never")
    t.post(thread="fresh")

    unfolded = t.get("/v1/threads/fresh")

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert unfolded == {
        "id": "fresh",
        "title": None,
        "url": None,
        "locked": False,
        "comment_count": 0,
        "participant_count": 0,
        "last_comment_at": None,
        "version": 0,
    }
    assert t.page("never") == {
        "thread_id": "never",
        "version": 0,
        "comment_count": 0,
        "comments": [],
        "next_cursor": None,
    }


def all_pages(t: Thread, **params: object) -> Iterator[Json]:
    cursor = None
    while True:
        page = t.page(**params, **({"cursor": cursor} if cursor else {}))
        yield page
        cursor = page["next_cursor"]
        if cursor is None:
            return


def test_paging_visits_every_top_level_comment_once_in_each_order(t: Thread) -> None:
    posted = [t.post(f"comment {i}", user=f"u{i % 5}") for i in range(47)]
    likes = {comment_id: (i * 7) % 4 for i, comment_id in enumerate(posted)}
    for comment_id, count in likes.items():
        for liker in range(count):
            t.like(comment_id, f"fan{liker}")
    t.post("a reply is not a top-level comment", parent=posted[3])
    t.fold()
    expected = {
        "oldest": posted,
        "newest": posted[::-1],
        "top": sorted(posted, key=lambda c: -likes[c]),  # stable: oldest first among equals
    }

    for sort, order in expected.items():
        pages = list(all_pages(t, sort=sort, limit=10))

        assert [len(p["comments"]) for p in pages] == [10, 10, 10, 10, 7], sort
        assert [c for p in pages for c in ids(p["comments"])] == order, sort
        if sort == "top":
            shown = [c["like_count"] for p in pages for c in p["comments"]]
            assert shown == sorted(shown, reverse=True)


def test_replies_are_bounded_and_the_rest_are_reachable_by_cursor(t: Thread) -> None:
    busy = t.post("Busy")
    replies = [t.post(f"reply {i}", parent=busy, user=f"u{i % 3}") for i in range(25)]
    t.fold()

    top = t.page()["comments"][0]
    fetched: list[str] = []
    cursor = top["replies_next_cursor"]
    while cursor is not None:
        page = t.get(f"/v1/comments/{busy}/replies", cursor=cursor, limit=10)
        assert (page["comment_id"], page["thread_id"]) == (busy, "t1")
        fetched += ids(page["replies"])
        cursor = page["next_cursor"]
    from_start = [
        c for p in [t.get(f"/v1/comments/{busy}/replies", limit=50)] for c in ids(p["replies"])
    ]

    assert top["reply_count"] == 25
    assert ids(top["replies"]) == replies[:3]
    assert fetched == replies[3:]
    assert from_start == replies
    assert ids(t.page(replies=10)["comments"][0]["replies"]) == replies[:10]
    assert t.page(replies=0)["comments"][0]["replies"] == []


def test_nesting_stops_three_levels_down_with_a_cursor_to_go_deeper(t: Thread) -> None:
    chain = [t.post("level 0")]
    for level in range(1, 6):
        chain.append(t.post(f"level {level}", parent=chain[-1]))
    t.fold()

    level = t.page()["comments"][0]
    shown = [level["id"]]
    while level["replies"]:
        assert level["replies_next_cursor"] is None
        level = level["replies"][0]
        shown.append(level["id"])
    deeper = t.get(f"/v1/comments/{level['id']}/replies", cursor=level["replies_next_cursor"])

    assert shown == chain[:4]
    assert level["depth"] == 3
    assert level["descendant_count"] == 2
    assert ids(deeper["replies"]) == [chain[4]]
    assert ids(deeper["replies"][0]["replies"]) == [chain[5]]
    assert deeper["next_cursor"] is None


def test_deleted_comments_show_as_placeholders_only_while_they_have_replies(t: Thread) -> None:
    kept = t.post("I will be deleted but answered")
    answer = t.post("An answer", parent=kept, user="bob")
    dropped_reply = t.post("Deleted, unanswered", parent=kept, user="bob")
    dropped = t.post("Deleted, never answered")
    middle = t.post("Middle", parent=answer)
    t.post("Below a deleted middle", parent=middle, user="cat")
    for comment_id in (kept, dropped_reply, dropped, middle):
        t.delete(comment_id)
    t.fold()

    page = t.page()
    placeholder = page["comments"][0]
    deleted_middle = placeholder["replies"][0]["replies"][0]

    assert ids(page["comments"]) == [kept]
    assert page["comment_count"] == 2
    assert placeholder["deleted"] is True
    assert placeholder["author"] is None
    assert placeholder["body_html"] is None
    assert (placeholder["reply_count"], placeholder["descendant_count"]) == (1, 2)
    assert ids(placeholder["replies"]) == [answer]
    assert deleted_middle["id"] == middle
    assert (deleted_middle["deleted"], deleted_middle["body_html"]) == (True, None)
    assert len(deleted_middle["replies"]) == 1
    alone = t.get(f"/v1/comments/{dropped}")
    assert (alone["deleted"], alone["author"], alone["body_html"]) == (True, None, None)


def test_body_html_is_sanitised(t: Thread) -> None:
    t.post("<script>alert(1)</script>")
    t.post("[x](javascript:alert(1)) and <a href='javascript:alert(2)' onclick='x()'>y</a>")
    t.post('<img src=x onerror="alert(3)">')
    t.fold()

    bodies = [c["body_html"] for c in t.page()["comments"]]

    assert len(bodies) == 3
    for html in bodies:
        assert "<script" not in html
        assert "<img" not in html
        assert "<a href='javascript" not in html
        assert not re.search(r"<a[^>]*href\s*=\s*[\"']?\s*javascript:", html, re.IGNORECASE)
        assert not re.search(r"<[^>]+\son\w+\s*=", html, re.IGNORECASE)


def test_min_version_already_reached_answers_at_once(t: Thread) -> None:
    t.post()
    version = t.fold()

    started = time.monotonic()
    page = t.page(min_version=version)
    thread = t.get("/v1/threads/t1", min_version=version)

    assert time.monotonic() - started < 2.5  # well under the 5 s a wait would take
    assert page["version"] == thread["version"] == version


def test_min_version_not_reached_answers_after_a_bounded_wait(
    settings: Settings, t: Thread
) -> None:
    t.post()
    folded = t.fold()
    new = t.post("not folded")
    impatient = settings.model_copy(update={"read_wait_seconds": 0.3})

    with TestClient(create_app(impatient)) as client:
        started = time.monotonic()
        page = client.get("/v1/threads/t1/comments", params={"min_version": folded + 1})
        waited = time.monotonic() - started
        thread = client.get("/v1/threads/t1", params={"min_version": folded + 1})

    assert page.status_code == thread.status_code == 200
    assert 0.3 <= waited < 4.5  # its own bound, not the default 5 s
    assert page.json()["version"] == thread.json()["version"] == folded
    assert new not in ids(page.json()["comments"])


def test_min_version_waits_for_the_fold_that_brings_it(t: Thread) -> None:
    first = t.post()
    t.fold()
    reply = t.client.post(
        "/v1/threads/t1/comments",
        json={"body": "just now", "parent_id": first},
        headers=t.auth("bob"),
    ).json()
    folder = threading.Timer(0.2, t.fold)
    folder.start()
    try:
        started = time.monotonic()
        page = t.page(min_version=reply["version"])
        waited = time.monotonic() - started
    finally:
        folder.join()

    assert waited >= 0.15  # it waited for the fold (how soon it woke depends on the machine)
    assert page["version"] >= reply["version"]
    assert ids(page["comments"][0]["replies"]) == [reply["id"]]


def test_invalid_cursors_and_parameters_are_refused(t: Thread) -> None:
    parent = t.post()
    t.post(parent=parent)
    for _ in range(3):
        t.post()
    t.fold()
    oldest_cursor = t.page(limit=1)["next_cursor"]
    replies_cursor = t.page(replies=0)["comments"][0]["replies_next_cursor"]
    tampered = oldest_cursor[:-2] + ("AA" if oldest_cursor[-2:] != "AA" else "BB")

    refused = [
        ("/v1/threads/t1/comments", {"cursor": "not-a-cursor"}),
        ("/v1/threads/t1/comments", {"cursor": tampered}),
        ("/v1/threads/t1/comments", {"cursor": oldest_cursor, "sort": "newest"}),
        ("/v1/threads/t2/comments", {"cursor": oldest_cursor}),
        ("/v1/threads/t1/comments", {"cursor": replies_cursor}),
        (f"/v1/comments/{parent}/replies", {"cursor": oldest_cursor}),
    ]
    for url, params in refused:
        response = t.client.get(url, params=params)
        assert response.status_code == 422, (url, params)
        assert response.json()["error"]["code"] == "invalid_cursor", (url, params)
    for params in [{"sort": "best"}, {"limit": 0}, {"limit": 51}, {"replies": 11}]:
        response = t.client.get("/v1/threads/t1/comments", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]["code"] == "invalid_input"


def test_unknown_comments_are_404(t: Thread) -> None:
    for url in ["/v1/comments/c_nope", "/v1/comments/c_nope/replies"]:
        response = t.client.get(url)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def _statements_per_page(t: Thread) -> int:
    engine: Engine = t.client.app.state.services.engine  # type: ignore[attr-defined]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        t.page(limit=50, replies=10)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return len([s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))])


def test_a_page_costs_the_same_few_statements_however_big_the_thread(t: Thread) -> None:
    def grow(tops: int) -> None:
        for i in range(tops):
            parent = t.post(f"top {i}")
            for _ in range(2):
                parent = t.post("reply", parent=parent)
            t.post("deepest", parent=parent)
        t.fold()

    grow(2)
    small = _statements_per_page(t)
    grow(30)
    big = _statements_per_page(t)

    # One for the thread, one for the top-level comments, one per level of replies.
    assert small == big == 5
