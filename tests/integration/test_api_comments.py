"""Posting, editing, deleting and liking through HTTP, and what lands in the log."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from shared.store import EventStore
from tests.integration.conftest import Auth


def post(client: TestClient, headers: dict[str, str], thread: str = "t1", **body: object) -> dict:
    response = client.post(
        f"/v1/threads/{thread}/comments", json={"body": "hello", **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_posting_to_a_new_thread_registers_it_and_records_the_comment(
    client: TestClient, auth: Auth, store: EventStore
) -> None:
    response = client.post(
        "/v1/threads/post-1/comments", json={"body": "  First!  "}, headers=auth("ann", "Ann")
    )

    assert response.status_code == 201
    created = response.json()
    assert created["thread_id"] == "post-1"
    assert created["parent_id"] is None
    assert created["version"] == 2
    events = store.read_stream("post-1")
    assert [e.type for e in events] == ["ThreadRegistered", "CommentPosted"]
    posted = events[1]
    assert created["position"] == posted.position
    assert posted.data == {
        "comment_id": created["id"],
        "parent_id": None,
        "author": {"id": "ann", "name": "Ann"},
        "body": "First!",
        "status": "published",
        "held_for": [],
        "badges": [],
        "imported_from": None,
        "posted_at": None,
        "imported_likes": 0,
        "edited_at": None,
    }
    assert posted.metadata["actor"] == {"id": "ann"}  # names live in `people` (decision 33)
    assert posted.metadata["request_id"] == response.headers["x-request-id"]


def test_a_reply_names_its_parent_and_advances_the_thread_version(
    client: TestClient, auth: Auth, store: EventStore
) -> None:
    top = post(client, auth("ann"))
    reply = post(client, auth("bob"), parent_id=top["id"], body="Agreed")

    assert reply["parent_id"] == top["id"]
    assert reply["version"] == top["version"] + 1
    assert store.read_stream("t1")[-1].data["parent_id"] == top["id"]


def test_the_author_edits_their_comment(client: TestClient, auth: Auth, store: EventStore) -> None:
    created = post(client, auth("ann"))

    response = client.patch(
        f"/v1/comments/{created['id']}", json={"body": "Edited"}, headers=auth("ann")
    )

    assert response.status_code == 200
    assert response.json() == {"id": created["id"], "thread_id": "t1", "version": 3}
    last = store.read_stream("t1")[-1]
    assert (last.type, last.data["body"]) == ("CommentEdited", "Edited")


@pytest.mark.parametrize("deleter_roles", [None, ["moderator"], ["admin"]])
def test_the_author_a_moderator_or_an_admin_deletes_softly(
    client: TestClient, auth: Auth, store: EventStore, deleter_roles: list[str] | None
) -> None:
    created = post(client, auth("ann"))
    deleter = auth("ann") if deleter_roles is None else auth("mod", roles=deleter_roles)

    response = client.delete(f"/v1/comments/{created['id']}", headers=deleter)

    assert response.status_code == 200
    assert response.json()["version"] == 3
    deleted = store.read_stream("t1")[-1]
    assert deleted.type == "CommentDeleted"
    assert deleted.data["by_moderator"] is (deleter_roles is not None)


def test_deleting_twice_appends_once(
    client: TestClient, auth: Auth, event_count: Callable[[], int]
) -> None:
    created = post(client, auth("ann"))
    first = client.delete(f"/v1/comments/{created['id']}", headers=auth("ann"))
    before = event_count()

    again = client.delete(f"/v1/comments/{created['id']}", headers=auth("ann"))

    assert again.status_code == 200
    assert again.json() == first.json()
    assert event_count() == before


def test_liking_twice_counts_once_and_unliking_takes_it_back(
    client: TestClient, auth: Auth, store: EventStore
) -> None:
    created = post(client, auth("ann"))
    url = f"/v1/comments/{created['id']}/like"

    first = client.put(url, headers=auth("bob"))
    second = client.put(url, headers=auth("bob"))
    other = client.put(url, headers=auth("cat"))
    unliked = client.delete(url, headers=auth("bob"))
    unliked_again = client.delete(url, headers=auth("bob"))

    assert [r.status_code for r in (first, second, other, unliked, unliked_again)] == [200] * 5
    assert first.json()["like_count"] == 1
    assert second.json() == first.json()
    assert other.json()["like_count"] == 2
    assert unliked.json()["like_count"] == 1
    assert unliked_again.json() == unliked.json()
    types = [e.type for e in store.read_stream("t1")]
    assert types.count("CommentLiked") == 2
    assert types.count("CommentUnliked") == 1


def test_an_admin_registers_updates_and_locks_a_thread(
    client: TestClient, auth: Auth, store: EventStore, event_count: Callable[[], int]
) -> None:
    admin = auth("root", roles=["admin"])
    url = "https://news.example/p/pows"

    created = client.put("/v1/threads/pows", json={"title": "POWs", "url": url}, headers=admin)
    same = client.put("/v1/threads/pows", json={"title": "POWs", "url": url}, headers=admin)
    after_same = event_count()
    locked = client.put("/v1/threads/pows", json={"locked": True}, headers=admin)
    retitled = client.put("/v1/threads/pows", json={"title": "The POWs"}, headers=admin)

    assert created.json() == {
        "id": "pows",
        "title": "POWs",
        "url": url,
        "locked": False,
        "version": 1,
        "moderation": None,
    }
    assert same.json() == created.json()
    assert after_same == 1
    assert locked.json()["locked"] is True
    assert retitled.json() == {
        "id": "pows",
        "title": "The POWs",
        "url": url,
        "locked": True,
        "version": 3,
        "moderation": None,
    }
    assert [e.type for e in store.read_stream("pows")] == [
        "ThreadRegistered",
        "ThreadLocked",
        "ThreadUpdated",
    ]


def test_a_locked_thread_refuses_comments_and_edits_but_allows_deletes(
    client: TestClient, auth: Auth, event_count: Callable[[], int]
) -> None:
    created = post(client, auth("ann"))
    client.put("/v1/threads/t1", json={"locked": True}, headers=auth("root", roles=["admin"]))
    before = event_count()

    new = client.post("/v1/threads/t1/comments", json={"body": "late"}, headers=auth("bob"))
    edit = client.patch(f"/v1/comments/{created['id']}", json={"body": "x"}, headers=auth("ann"))

    assert (new.status_code, new.json()["error"]["code"]) == (409, "thread_locked")
    assert (edit.status_code, edit.json()["error"]["code"]) == (409, "thread_locked")
    assert event_count() == before
    assert client.delete(f"/v1/comments/{created['id']}", headers=auth("ann")).status_code == 200


def test_the_events_endpoint_shows_moderators_the_log_in_pages(
    client: TestClient, auth: Auth
) -> None:
    for _ in range(3):
        post(client, auth("ann"))
    mod = auth("mod", roles=["moderator"])

    first = client.get("/v1/threads/t1/events?limit=2", headers=mod).json()
    rest = client.get(
        f"/v1/threads/t1/events?after_version={first['next_after_version']}", headers=mod
    ).json()

    assert first["version"] == 4
    assert [e["version"] for e in first["events"]] == [1, 2]
    assert [e["version"] for e in rest["events"]] == [3, 4]
    assert rest["next_after_version"] is None
    assert rest["events"][0]["type"] == "CommentPosted"
    assert rest["events"][0]["metadata"]["actor"]["id"] == "ann"


def test_the_events_endpoint_is_for_moderators_only(client: TestClient, auth: Auth) -> None:
    post(client, auth("ann"))

    assert client.get("/v1/threads/t1/events", headers=auth("ann")).status_code == 403
    assert client.get("/v1/threads/t1/events").status_code == 401
    missing = client.get("/v1/threads/nope/events", headers=auth("m", roles=["admin"]))
    assert missing.status_code == 404
