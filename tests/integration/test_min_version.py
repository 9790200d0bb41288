"""`min_version`: refused at once beyond the log's head; otherwise a read waits for the fold
without polling the database per waiter, woken by the worker's announcement, or by one
shared slow poll when Redis pub/sub is not there."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy.engine import Engine

from services.api.app import create_app
from services.api.deps import Services
from services.worker.context import open_context
from services.worker.folding import fold_thread
from shared.nudges import FOLD_QUEUE
from shared.settings import Settings
from shared.store import EventStore
from tests.integration.conftest import Auth
from tests.statements import count_statements
from tests.waiting import wait_for


def _services(client: TestClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return services


def post(client: TestClient, auth: Auth, thread: str = "t1", parent: str | None = None) -> Any:
    response = client.post(
        f"/v1/threads/{thread}/comments",
        json={"body": "hello", "parent_id": parent},
        headers=auth("ann"),
    )
    assert response.status_code == 201, response.text
    return response.json()


@contextmanager
def in_background(*requests: Callable[[], Response]) -> Iterator[list[Response]]:
    """Run each request on its own thread; the list fills in as they answer."""
    answers: list[Response] = []
    threads = [threading.Thread(target=lambda r=r: answers.append(r())) for r in requests]
    for thread in threads:
        thread.start()
    try:
        yield answers
    finally:
        for thread in threads:
            thread.join(timeout=30)


def test_a_min_version_beyond_the_log_is_refused_at_once(
    client: TestClient, auth: Auth, event_count: Callable[[], int]
) -> None:
    top = post(client, auth)
    reply = post(client, auth, parent=top["id"])
    fold_thread(_services(client).engine, _services(client).store, "t1")
    head = reply["version"]
    before = event_count()

    started = time.monotonic()
    answers = [
        client.get("/v1/threads/t1", params={"min_version": head + 1}),
        client.get("/v1/threads/t1/comments", params={"min_version": 2**31 - 1}),
        client.get(f"/v1/comments/{top['id']}/replies", params={"min_version": head + 1}),
        client.get("/v1/threads/nobody/comments", params={"min_version": 1}),
    ]
    elapsed = time.monotonic() - started

    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "min_version_ahead"
    assert elapsed < _services(client).settings.read_wait_seconds
    assert event_count() == before
    assert client.get("/v1/threads/t1", params={"min_version": head}).status_code == 200


def test_a_waiting_read_is_answered_as_soon_as_a_real_worker_has_folded(
    settings: Settings, auth: Auth, redis: Redis
) -> None:
    # The slow poll is out of the picture: only the worker's announcement can wake the read.
    patient = settings.model_copy(update={"read_wait_seconds": 30, "read_wait_poll_seconds": 10})
    with TestClient(create_app(patient)) as client:
        waits = _services(client).waits
        wait_for(waits.subscribed.is_set, "the subscriber to listen")
        written = post(client, auth)  # queues the fold job; nothing folds it yet
        url, params = "/v1/threads/t1/comments", {"min_version": written["version"]}

        with in_background(lambda: client.get(url, params=params)) as answers:
            wait_for(lambda: waits.waiting == 1, "one waiting read")
            context = open_context(patient)
            try:
                queue = Queue(FOLD_QUEUE, connection=redis)
                SimpleWorker([queue], connection=redis).work(burst=True)
            finally:
                context.close()
            folded = time.monotonic()
            wait_for(lambda: len(answers) == 1, "the read to be answered")
            answered = time.monotonic()

    assert answers[0].status_code == 200
    page = answers[0].json()
    assert page["version"] >= written["version"]
    assert [c["id"] for c in page["comments"]] == [written["id"]]
    assert answered - folded < 3, "woken by the announcement, not by the 10 s poll"


def test_many_waiting_reads_cost_a_bounded_number_of_statements(
    settings: Settings, auth: Auth
) -> None:
    waiting = 40
    brief = settings.model_copy(update={"read_wait_seconds": 1.5, "read_wait_poll_seconds": 0.5})
    with TestClient(create_app(brief)) as client:
        services = _services(client)
        written = post(client, auth)  # not folded: every read below waits its full 1.5 s
        statements = count_statements(services.engine)
        url, params = "/v1/threads/t1", {"min_version": written["version"]}

        with (
            statements,
            in_background(*[lambda: client.get(url, params=params)] * waiting) as answers,
        ):
            wait_for(lambda: len(answers) == waiting, "every read to be answered")

    assert {a.status_code for a in answers} == {200}
    assert {a.json()["version"] for a in answers} == {0}
    # One read each, and a few shared polls; polling each waiter every 50 ms, as before,
    # made it about 40 * 30.
    assert len(statements.seen) <= waiting + 10, len(statements.seen)


def test_waits_end_by_the_shared_poll_when_redis_is_unavailable(
    settings: Settings, auth: Auth, engine: Engine, store: EventStore
) -> None:
    no_redis = settings.model_copy(
        update={
            "redis_url": "redis://127.0.0.1:1/0",
            "read_wait_seconds": 30,
            "read_wait_poll_seconds": 0.2,
        }
    )
    with TestClient(create_app(no_redis)) as client:
        waits = _services(client).waits
        written = post(client, auth)
        url, params = "/v1/threads/t1/comments", {"min_version": written["version"]}

        with in_background(lambda: client.get(url, params=params)) as answers:
            wait_for(lambda: waits.waiting == 1, "one waiting read")
            fold_thread(engine, store, "t1")  # folded, and nobody can announce it
            folded = time.monotonic()
            wait_for(lambda: len(answers) == 1, "the read to be answered")
            answered = time.monotonic()
        subscribed = waits.subscribed.is_set()

    assert not subscribed
    assert answers[0].status_code == 200
    assert answers[0].json()["version"] >= written["version"]
    assert answered - folded < 5, "the shared poll, not the 30 s deadline, ended the wait"


def test_a_comment_not_folded_yet_is_waited_for_not_404(
    settings: Settings, auth: Auth, redis: Redis
) -> None:
    """What the widget does after posting: read the new comment (and its context) by id
    with the version the write answered, before any worker has folded it."""
    patient = settings.model_copy(update={"read_wait_seconds": 30, "read_wait_poll_seconds": 10})
    with TestClient(create_app(patient)) as client:
        waits = _services(client).waits
        wait_for(waits.subscribed.is_set, "the subscriber to listen")
        written = post(client, auth)
        assert client.get(f"/v1/comments/{written['id']}").status_code == 404  # not folded
        params = {"min_version": written["version"]}
        reads = [
            lambda: client.get(f"/v1/comments/{written['id']}", params=params),
            lambda: client.get(f"/v1/comments/{written['id']}/context", params=params),
        ]
        with in_background(*reads) as answers:
            wait_for(lambda: waits.waiting == 2, "two waiting reads")
            context = open_context(patient)
            try:
                SimpleWorker([Queue(FOLD_QUEUE, connection=redis)], connection=redis).work(
                    burst=True
                )
            finally:
                context.close()
            wait_for(lambda: len(answers) == 2, "both reads to be answered")
        # An id nobody wrote is still a 404 at once, min_version or not.
        nobody = client.get("/v1/comments/nobody", params=params)

    assert sorted(a.status_code for a in answers) == [200, 200]
    found = [a.json() for a in answers]
    assert {f.get("id") or f["comment"]["id"] for f in found} == {written["id"]}
    assert nobody.status_code == 404
