"""A user's notifications, preferences and subscriptions through HTTP, after the fold."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.worker.folding import fold
from services.worker.notification_projector import notification_projection
from shared.store import EventStore
from tests.integration.conftest import Auth

Json = dict[str, Any]


class Inbox:
    """Writes through the API as various people, folds like the worker, reads back."""

    def __init__(self, client: TestClient, auth: Auth, engine: Engine, store: EventStore) -> None:
        self.client, self.auth, self.engine, self.store = client, auth, engine, store

    def headers(self, user: str) -> dict[str, str]:
        return self.auth(user, email=f"{user}@example.com")

    def post(
        self, user: str, body: str = "hello", parent: str | None = None, thread: str = "t1"
    ) -> str:
        response = self.client.post(
            f"/v1/threads/{thread}/comments",
            json={"body": body, "parent_id": parent},
            headers=self.headers(user),
        )
        assert response.status_code == 201, response.text
        comment_id: str = response.json()["id"]
        return comment_id

    def fold(self, *threads: str) -> None:
        for thread in threads or ("t1",):
            fold(self.engine, self.store, thread, notification_projection())

    def call(self, method: str, url: str, user: str, status: int = 200, **kwargs: Any) -> Json:
        response = self.client.request(method, url, headers=self.headers(user), **kwargs)
        assert response.status_code == status, response.text
        body: Json = response.json()
        return body

    def notifications(self, user: str, **params: object) -> Json:
        return self.call("GET", "/v1/me/notifications", user, params=params)

    def mark(self, user: str, status: int = 200, **payload: object) -> Json:
        return self.call("POST", "/v1/me/notifications/read", user, status, json=payload)

    def subscribe(self, user: str, level: str, thread: str = "t1") -> Json:
        url = f"/v1/threads/{thread}/subscription"
        return self.call("PUT", url, user, json={"level": level})

    def prefer(self, user: str, status: int = 200, **payload: object) -> Json:
        return self.call("PUT", "/v1/me/preferences", user, status, json=payload)


@pytest.fixture
def inbox(client: TestClient, auth: Auth, engine: Engine, store: EventStore) -> Inbox:
    return Inbox(client, auth, engine, store)


def ids(page: Json) -> list[str]:
    return [n["id"] for n in page["notifications"]]


def test_a_reply_tells_the_parent_author_who_replied_and_what(inbox: Inbox) -> None:
    question = inbox.post("ann", "Why did the talks stall?")
    answer = inbox.post("bob", "Because   neither side\nwould move first.", parent=question)
    inbox.fold()

    page = inbox.notifications("ann")
    assert page["unread_count"] == 1
    assert page["next_cursor"] is None
    [note] = page["notifications"]
    assert note["id"] == note["comment_id"] == answer
    assert note["kind"] == "reply"
    assert note["thread_id"] == "t1"
    assert note["actor"] == {"id": "bob", "name": "Bob"}
    assert note["excerpt"] == "Because neither side would move first."
    assert note["read_at"] is None
    assert datetime.fromisoformat(note["created_at"]).utcoffset() is not None
    # Nobody is told about their own comments.
    assert inbox.notifications("bob") == {
        "notifications": [],
        "unread_count": 0,
        "next_cursor": None,
    }


def test_an_excerpt_is_the_words_of_the_reply_not_its_markdown(inbox: Inbox) -> None:
    question = inbox.post("ann", "Why?")
    inbox.post("bob", "**Because** of [this report](https://example.com/r) and `tariffs`", question)
    inbox.post("cat", "> Because\n\n" + "very " * 100 + "much so", question)
    inbox.fold()

    excerpts = [n["excerpt"] for n in inbox.notifications("ann")["notifications"]]

    assert excerpts[1] == "Because of this report and tariffs"
    assert excerpts[0].startswith("Because very very")
    assert excerpts[0].endswith("…")
    assert len(excerpts[0]) == 200


def test_earlier_commenters_hear_of_later_replies_newest_first(inbox: Inbox) -> None:
    top = inbox.post("ann", "Top")
    bob_reply = inbox.post("bob", "Reply", parent=top)
    cat_reply = inbox.post("cat", "Reply to Bob", parent=bob_reply)
    inbox.fold()

    ann = inbox.notifications("ann")
    assert [(n["id"], n["kind"]) for n in ann["notifications"]] == [
        (cat_reply, "conversation"),
        (bob_reply, "reply"),
    ]
    assert [(n["id"], n["kind"]) for n in inbox.notifications("bob")["notifications"]] == [
        (cat_reply, "reply")
    ]


def test_pages_visit_every_notification_once_newest_first(inbox: Inbox) -> None:
    top = inbox.post("ann", "Top")
    replies = [inbox.post(user, f"reply {i}", parent=top) for i, user in enumerate("bcdbcdb")]
    inbox.fold()

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        page = inbox.notifications("ann", **params)
        assert page["unread_count"] == 7
        seen += ids(page)
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == replies[::-1]


def test_a_cursor_only_works_for_its_own_user_and_filter(inbox: Inbox) -> None:
    top = inbox.post("ann", "Top")
    for user in ("bob", "cat", "dan"):
        inbox.post(user, "reply", parent=top)
    inbox.fold()
    cursor = inbox.notifications("ann", limit=1)["next_cursor"]
    url = "/v1/me/notifications"

    for user, params in [
        ("bob", {"cursor": cursor}),
        ("ann", {"cursor": cursor, "unread_only": True}),
        ("ann", {"cursor": cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")}),
    ]:
        refused = inbox.call("GET", url, user, 422, params={"limit": 1, **params})
        assert refused["error"]["code"] == "invalid_cursor"
    inbox.call("GET", url, "ann", 422, params={"limit": 0})
    inbox.call("GET", url, "ann", 422, params={"limit": 101})


def test_marking_some_read_sets_read_at_and_lowers_the_unread_count(inbox: Inbox) -> None:
    top = inbox.post("ann", "Top")
    replies = [inbox.post(user, "reply", parent=top) for user in ("bob", "cat", "dan", "eve")]
    inbox.fold()

    assert inbox.mark("ann", ids=replies[:2]) == {"unread_count": 2}

    by_id = {n["id"]: n for n in inbox.notifications("ann")["notifications"]}
    assert all(by_id[i]["read_at"] is not None for i in replies[:2])
    assert all(by_id[i]["read_at"] is None for i in replies[2:])
    assert datetime.fromisoformat(by_id[replies[0]]["read_at"]).utcoffset() is not None
    unread = inbox.notifications("ann", unread_only=True)
    assert ids(unread) == replies[:1:-1]
    assert unread["unread_count"] == 2
    # Marking again is harmless.
    assert inbox.mark("ann", ids=replies[:1]) == {"unread_count": 2}


def test_marking_all_read_covers_what_came_before_but_not_after(inbox: Inbox) -> None:
    top = inbox.post("ann", "Top")
    earlier = [inbox.post(user, "reply", parent=top) for user in ("bob", "cat")]
    inbox.fold()

    assert inbox.mark("ann", all=True) == {"unread_count": 0}
    assert inbox.notifications("ann", unread_only=True)["notifications"] == []

    later = inbox.post("dan", "late reply", parent=top)
    inbox.fold()
    page = inbox.notifications("ann")
    assert page["unread_count"] == 1
    assert [(n["id"], n["read_at"] is None) for n in page["notifications"]] == [
        (later, True),
        (earlier[1], False),
        (earlier[0], False),
    ]
    assert ids(inbox.notifications("ann", unread_only=True)) == [later]


def test_a_mark_needs_ids_or_all_and_appends_nothing_otherwise(
    inbox: Inbox, event_count: Callable[[], int]
) -> None:
    inbox.post("bob", "reply", parent=inbox.post("ann", "Top"))
    inbox.fold()
    before = event_count()

    payloads: list[Json] = [{}, {"all": False}, {"ids": []}, {"ids": ["c"] * 501}]
    for payload in payloads:
        refused = inbox.mark("ann", 422, **payload)
        assert refused["error"]["code"] == "invalid_input"
    assert event_count() == before
    assert inbox.notifications("ann")["unread_count"] == 1


def test_nobody_sees_or_reads_another_users_notifications(inbox: Inbox) -> None:
    ann_top = inbox.post("ann", "Ann's")
    bob_top = inbox.post("bob", "Bob's")
    to_ann = inbox.post("cat", "to Ann", parent=ann_top)
    to_bob = inbox.post("cat", "to Bob", parent=bob_top)
    inbox.fold()

    assert ids(inbox.notifications("ann")) == [to_ann]
    assert ids(inbox.notifications("bob")) == [to_bob]
    assert inbox.notifications("cat")["notifications"] == []

    # Bob marking Ann's notification, or all of his own, leaves Ann's untouched.
    assert inbox.mark("bob", ids=[to_ann]) == {"unread_count": 1}
    assert inbox.mark("bob", all=True) == {"unread_count": 0}
    assert inbox.notifications("ann")["notifications"][0]["read_at"] is None
    assert inbox.notifications("ann", unread_only=True)["unread_count"] == 1


def test_preferences_start_at_the_defaults_and_change_one_at_a_time(inbox: Inbox) -> None:
    defaults = {"notify_on": "conversations", "email_frequency": "immediate"}
    assert inbox.call("GET", "/v1/me/preferences", "ann") == defaults

    assert inbox.prefer("ann", notify_on="replies") == {**defaults, "notify_on": "replies"}
    expected = {"notify_on": "replies", "email_frequency": "daily"}
    assert inbox.prefer("ann", email_frequency="daily") == expected
    assert inbox.call("GET", "/v1/me/preferences", "ann") == expected
    assert inbox.call("GET", "/v1/me/preferences", "bob") == defaults


def test_bad_settings_are_refused_and_append_nothing(
    inbox: Inbox, event_count: Callable[[], int]
) -> None:
    inbox.post("ann", "Top")
    before = event_count()

    for payload in ({"notify_on": "sometimes"}, {"email_frequency": "weekly"}):
        refused = inbox.prefer("ann", 422, **payload)
        assert refused["error"]["code"] == "invalid_input"
    url = "/v1/threads/t1/subscription"
    for body in ({"level": "loud"}, {}):
        refused = inbox.call("PUT", url, "ann", 422, json=body)
        assert refused["error"]["code"] == "invalid_input"
    assert event_count() == before
    assert inbox.call("GET", "/v1/me/preferences", "ann")["notify_on"] == "conversations"


def test_notify_on_none_silences_replies_posted_while_it_held(inbox: Inbox) -> None:
    top = inbox.post("ann", "Top")
    before = inbox.post("bob", "before", parent=top)
    inbox.prefer("ann", notify_on="none")
    silenced = inbox.post("bob", "while silenced", parent=top)
    inbox.prefer("ann", notify_on="conversations")
    after = inbox.post("bob", "after", parent=top)
    # Folded only now: each comment still meets the preferences of its own moment.
    inbox.fold()

    assert ids(inbox.notifications("ann")) == [after, before]
    assert silenced not in ids(inbox.notifications("ann"))


def test_a_muted_thread_sends_nothing(inbox: Inbox) -> None:
    muted_top = inbox.post("ann", "Top", thread="t1")
    other_top = inbox.post("ann", "Top", thread="t2")
    written = inbox.subscribe("ann", "muted", thread="t1")
    assert written["thread_id"] == "t1"
    assert written["level"] == "muted"
    assert written["version"] > 1
    inbox.post("bob", "reply", parent=muted_top, thread="t1")
    heard = inbox.post("bob", "reply", parent=other_top, thread="t2")
    inbox.fold("t1", "t2")

    assert ids(inbox.notifications("ann")) == [heard]
    assert inbox.call("GET", "/v1/threads/t1/subscription", "ann") == {
        "thread_id": "t1",
        "level": "muted",
    }


def test_watching_a_thread_brings_other_peoples_top_level_comments(inbox: Inbox) -> None:
    inbox.post("ann", "First")
    assert inbox.call("GET", "/v1/threads/t1/subscription", "cat")["level"] == "default"
    inbox.subscribe("cat", "watching")
    new = inbox.post("ann", "Second")
    inbox.post("cat", "Cat's own")
    inbox.fold()

    [note] = inbox.notifications("cat")["notifications"]
    assert (note["id"], note["kind"], note["actor"]["id"]) == (new, "thread", "ann")
    assert inbox.call("GET", "/v1/threads/t1/subscription", "cat") == {
        "thread_id": "t1",
        "level": "watching",
    }
    assert inbox.call("GET", "/v1/threads/t1/subscription", "ann")["level"] == "default"


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/v1/me/notifications", None),
        ("POST", "/v1/me/notifications/read", {"all": True}),
        ("GET", "/v1/me/preferences", None),
        ("PUT", "/v1/me/preferences", {"notify_on": "none"}),
        ("GET", "/v1/threads/t1/subscription", None),
        ("PUT", "/v1/threads/t1/subscription", {"level": "muted"}),
    ],
)
def test_every_personal_endpoint_needs_a_token(
    client: TestClient, method: str, url: str, body: Json | None
) -> None:
    response = client.request(method, url, json=body)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "missing_token"
