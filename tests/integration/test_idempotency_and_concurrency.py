"""Retries with an Idempotency-Key append once; many concurrent writers lose nothing."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from services.api.app import create_app
from shared.settings import Settings
from shared.store import EventStore
from tests.integration.conftest import Auth


def test_a_retried_post_returns_the_first_answer_and_appends_nothing(
    client: TestClient, auth: Auth, event_count: Callable[[], int]
) -> None:
    headers = {**auth("ann"), "Idempotency-Key": "post-42"}
    first = client.post("/v1/threads/t1/comments", json={"body": "once"}, headers=headers)
    after_first = event_count()

    again = client.post("/v1/threads/t1/comments", json={"body": "once"}, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert event_count() == after_first


def test_the_key_is_remembered_across_an_api_restart(
    settings: Settings, auth: Auth, event_count: Callable[[], int]
) -> None:
    headers = {**auth("ann"), "Idempotency-Key": "restart-1"}
    with TestClient(create_app(settings)) as first_process:
        first = first_process.post("/v1/threads/t1/comments", json={"body": "x"}, headers=headers)
    before = event_count()

    with TestClient(create_app(settings)) as second_process:
        again = second_process.post("/v1/threads/t1/comments", json={"body": "x"}, headers=headers)

    assert again.json() == first.json()
    assert event_count() == before


def test_keys_belong_to_their_user(client: TestClient, auth: Auth) -> None:
    ann = client.post(
        "/v1/threads/t1/comments",
        json={"body": "x"},
        headers={**auth("ann"), "Idempotency-Key": "k"},
    )
    bob = client.post(
        "/v1/threads/t1/comments",
        json={"body": "x"},
        headers={**auth("bob"), "Idempotency-Key": "k"},
    )
    assert ann.json()["id"] != bob.json()["id"]


def test_reusing_a_key_for_a_different_request_is_refused(
    client: TestClient, auth: Auth, event_count: Callable[[], int]
) -> None:
    headers = {**auth("ann"), "Idempotency-Key": "k"}
    client.post("/v1/threads/t1/comments", json={"body": "first"}, headers=headers)
    before = event_count()

    other = client.post("/v1/threads/t1/comments", json={"body": "second"}, headers=headers)

    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert event_count() == before


def test_an_unprintable_key_is_refused(client: TestClient, auth: Auth) -> None:
    headers = {**auth("ann"), "Idempotency-Key": "has space"}
    response = client.post("/v1/threads/t1/comments", json={"body": "x"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_idempotency_key"


def test_concurrent_retries_with_one_key_append_once(
    client: TestClient, auth: Auth, store: EventStore
) -> None:
    headers = {**auth("ann"), "Idempotency-Key": "stormy"}

    def send(_: int) -> dict:
        response = client.post("/v1/threads/t1/comments", json={"body": "x"}, headers=headers)
        assert response.status_code == 201, response.text
        return response.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(16)))

    assert all(a == answers[0] for a in answers)
    assert [e.type for e in store.read_stream("t1")] == ["ThreadRegistered", "CommentPosted"]


def test_many_concurrent_writers_on_one_thread_all_land_exactly_once(
    client: TestClient, auth: Auth, store: EventStore
) -> None:
    root = client.post("/v1/threads/hot/comments", json={"body": "root"}, headers=auth("op"))
    root_id = root.json()["id"]

    def write(i: int) -> dict:
        response = client.post(
            "/v1/threads/hot/comments",
            json={"body": f"reply {i}", "parent_id": root_id if i % 2 else None},
            headers={**auth(f"user{i % 10}"), "Idempotency-Key": f"k{i}"},
        )
        assert response.status_code == 201, response.text
        return response.json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        created = list(pool.map(write, range(120)))

    events = store.read_stream("hot")
    assert [e.version for e in events] == list(range(1, 123))
    posted_ids = [e.data["comment_id"] for e in events if e.type == "CommentPosted"]
    assert sorted(posted_ids) == sorted([root_id] + [c["id"] for c in created])
    assert len({c["version"] for c in created}) == len(created)


def test_concurrent_likes_by_one_user_count_once(
    client: TestClient, auth: Auth, store: EventStore
) -> None:
    comment = client.post("/v1/threads/t1/comments", json={"body": "x"}, headers=auth("ann"))
    url = f"/v1/comments/{comment.json()['id']}/like"

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: client.put(url, headers=auth("bob")), range(16)))

    assert {a.status_code for a in answers} == {200}
    assert {a.json()["like_count"] for a in answers} == {1}
    assert [e.type for e in store.read_stream("t1")].count("CommentLiked") == 1
