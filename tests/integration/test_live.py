"""Live updates (`GET /v1/threads/{id}/live`): a real uvicorn serving the app on a thread,
a real worker's fold jobs, real PostgreSQL or SQLite and Redis; readers are httpx streams."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from rq import Queue, SimpleWorker

from services.api.app import create_app
from services.api.deps import Services
from services.worker.context import open_context
from services.worker.folding import fold_thread
from shared.nudges import FOLD_QUEUE
from shared.settings import Settings
from shared.store import EventStore
from tests.integration.conftest import Auth
from tests.integration.test_min_version import count_statements
from tests.live_client import LiveReader
from tests.moderation_log import ThreadLog
from tests.ports import free_port
from tests.waiting import wait_for


class LiveApi:
    def __init__(self, base: str, app: FastAPI, settings: Settings) -> None:
        self.base, self.app, self.settings = base, app, settings
        self.http = httpx.Client(base_url=base, timeout=30)

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    def reader(
        self, thread: str = "t1", headers: dict[str, str] | None = None, **params: int
    ) -> LiveReader:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        url = f"{self.base}/v1/threads/{thread}/live" + (f"?{query}" if query else "")
        return LiveReader(url, headers or {}).start()

    def post(self, headers: dict[str, str], parent: str | None = None, thread: str = "t1") -> Any:
        answer = self.http.post(
            f"/v1/threads/{thread}/comments",
            json={"body": "hello", "parent_id": parent},
            headers=headers,
        )
        assert answer.status_code == 201, answer.text
        return answer.json()

    def fold(self) -> None:
        """Run the queued fold jobs with a real worker: they fold, then announce."""
        context = open_context(self.settings)
        try:
            redis = context.redis
            SimpleWorker([Queue(FOLD_QUEUE, connection=redis)], connection=redis).work(burst=True)
        finally:
            context.close()


@contextmanager
def serving(settings: Settings) -> Iterator[LiveApi]:
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(
        app, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, "uvicorn to start")
        api = LiveApi(f"http://127.0.0.1:{port}", app, settings)
        wait_for(api.services.waits.subscribed.is_set, "the fold-progress subscriber")
        yield api
        api.http.close()
    finally:
        server.should_exit = True
        thread.join(timeout=60)


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"live_keep_alive_seconds": 0.2, "read_wait_poll_seconds": 0.2}
    )


@pytest.fixture
def api(live_settings: Settings) -> Iterator[LiveApi]:
    with serving(live_settings) as api:
        yield api


def test_a_posted_comment_arrives_with_its_version_as_id(api: LiveApi, auth: Auth) -> None:
    reader = api.reader()
    reader.wait_until_live()
    assert reader.status == 200
    assert reader.content_type.startswith("text/event-stream")
    assert reader.retry == [api.settings.live_retry_ms]

    written = api.post(auth("ann"))
    api.fold()
    reader.wait_for_versions(written["version"])
    reader.close()

    # The first post registers the thread (version 1), then posts the comment.
    assert [(e.id, e.data) for e in reader.changes()] == [
        ("1", {"type": "thread", "version": 1}),
        ("2", {"type": "comment", "comment_id": written["id"], "version": 2}),
    ]


def test_a_reconnect_replays_exactly_what_was_missed_in_order(api: LiveApi, auth: Auth) -> None:
    first = api.post(auth("ann"))
    api.fold()
    reader = api.reader(since=0)
    reader.wait_for_versions(first["version"])
    reader.close()
    seen = int(reader.changes()[-1].id or 0)

    reply = api.post(auth("bob"), parent=first["id"])
    comment_url = f"/v1/comments/{first['id']}"
    assert api.http.patch(comment_url, json={"body": "edited"}, headers=auth("ann")).is_success
    assert api.http.put(f"{comment_url}/like", headers=auth("bob")).is_success
    assert api.http.delete(f"{comment_url}/like", headers=auth("bob")).is_success
    assert api.http.delete(f"/v1/comments/{reply['id']}", headers=auth("bob")).is_success
    api.fold()

    # EventSource sends Last-Event-ID; the URL's `since` is older and loses to it.
    again = api.reader(since=0, headers={"Last-Event-ID": str(seen)})
    again.wait_for_versions(seen + 5)
    again.wait_until_live()
    again.close()

    assert [e.data for e in again.changes()] == [
        {"type": "comment", "comment_id": reply["id"], "version": seen + 1},
        {"type": "edit", "comment_id": first["id"], "version": seen + 2},
        {"type": "like", "comment_id": first["id"], "version": seen + 3},
        {"type": "like", "comment_id": first["id"], "version": seen + 4},
        {"type": "delete", "comment_id": reply["id"], "version": seen + 5},
    ]
    assert [e.id for e in again.changes()] == [str(seen + n) for n in range(1, 6)]


def test_two_readers_on_one_process_cost_one_read_per_announcement(
    api: LiveApi, auth: Auth
) -> None:
    api.post(auth("ann"))
    api.fold()
    readers = [api.reader(since=0), api.reader(since=0)]
    for reader in readers:
        reader.wait_for_versions(1, 2)
        reader.wait_until_live()
    hub = api.services.hub
    reads_before = hub.feed_reads

    with count_statements(api.services.engine) as statements:
        written = api.post(auth("bob"))
        api.fold()
        for reader in readers:
            reader.wait_for_versions(written["version"])
    for reader in readers:
        reader.close()

    log_reads = [s for s in statements.seen if "FROM events" in s and "comment_id" in s]
    assert hub.feed_reads - reads_before == 1
    assert len(log_reads) == 1, log_reads
    for reader in readers:
        assert [int(e.id or 0) for e in reader.changes()] == [1, 2, written["version"]]


def test_the_unread_count_arrives_and_follows_replies_and_marks(api: LiveApi, auth: Auth) -> None:
    mine = api.post(auth("bob"))
    api.fold()
    reader = api.reader(headers=auth("bob"))
    wait_for(lambda: reader.unread() == [0], "bob's first unread count")

    reply = api.post(auth("ann"), parent=mine["id"])
    api.fold()
    wait_for(lambda: reader.unread() == [0, 1], "the count after ann's reply")
    reader.wait_for_versions(reply["version"])

    marked = api.http.post("/v1/me/notifications/read", json={"all": True}, headers=auth("bob"))
    assert marked.status_code == 200, marked.text
    wait_for(lambda: reader.unread() == [0, 1, 0], "the count after bob marked all read")
    reader.close()
    # Someone else's stream never carries it.
    anonymous = api.reader(since=0)
    anonymous.wait_for_versions(reply["version"])
    anonymous.wait_until_live()
    anonymous.close()
    assert anonymous.unread() == []


def test_keep_alives_arrive_while_nothing_happens(api: LiveApi) -> None:
    reader = api.reader()
    wait_for(lambda: reader.comments.count("keep-alive") >= 3, "three keep-alives")
    reader.close()
    assert reader.events == []


def test_hanging_up_leaves_nothing_behind_in_the_hub(api: LiveApi, auth: Auth) -> None:
    hub = api.services.hub
    readers = [api.reader("t1"), api.reader("t1"), api.reader("t2", headers=auth("bob"))]
    for reader in readers:
        reader.wait_until_live()
    assert hub.subscribers == 3
    assert sorted(hub.watched()) == ["t1", "t2"]
    assert hub.signed_in == 1

    for reader in readers:
        reader.close()

    wait_for(lambda: hub.subscribers == 0, "the hub to forget every reader")
    assert list(hub.watched()) == []
    assert hub.signed_in == 0


def test_a_reader_far_behind_is_told_to_reload(live_settings: Settings, auth: Auth) -> None:
    with serving(live_settings.model_copy(update={"live_max_replay": 3})) as api:
        for _ in range(4):
            api.post(auth("ann"))
        api.fold()
        reader = api.reader(since=0)
        wait_for(reader.ended.is_set, "the stream to end after its reset")

    assert [(e.id, e.data) for e in reader.events] == [("5", {"type": "reset", "version": 5})]


def test_the_slow_poll_covers_an_announcement_never_heard(api: LiveApi, auth: Auth) -> None:
    reader = api.reader()
    reader.wait_until_live()
    written = api.post(auth("ann"))
    # Folded where nobody announces it: the API's slow poll must find it.
    fold_thread(api.services.engine, api.services.store, "t1")
    reader.wait_for_versions(written["version"])
    reader.close()


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/v1/threads/bad%20id/live", {}, 422),
        ("/v1/threads/t1/live?since=-1", {}, 422),
        ("/v1/threads/t1/live", {"Last-Event-ID": "nope"}, 422),
        ("/v1/threads/t1/live", {"Authorization": "Bearer not-a-token"}, 401),
    ],
)
def test_bad_requests_are_refused_before_streaming(
    api: LiveApi, path: str, headers: dict[str, str], status: int
) -> None:
    answer = api.http.get(path, headers=headers)
    assert answer.status_code == status, answer.text
    assert api.services.hub.subscribers == 0


def test_only_published_comments_are_announced_an_approval_announces_one(
    api: LiveApi,
) -> None:
    """Decision 29: the public hears of a held comment when it is approved, never before;
    one that leaves the page (held by flags, rejected) is a deletion; a held arrival or a
    flag moves the moderators' queue, announced without a comment id."""
    log = ThreadLog(api.services.engine, EventStore(api.services.engine))
    reader = api.reader(since=0)
    shown = log.post("ann")
    held = log.post("bob", status="pending", held_for=("pre_moderation",))
    flagged = log.flag(shown, "cat")
    approved = log.approve(held)
    hidden = log.hold(shown, "flags")
    rejected = log.reject(held)
    featured = log.feature(shown)
    log.fold()  # no announcement: the slow poll finds the checkpoint moved
    reader.wait_for_versions(featured)
    reader.close()

    assert [e.data for e in reader.changes()] == [
        {"type": "thread", "version": 1},
        {"type": "comment", "comment_id": shown, "version": 2},
        {"type": "queue", "version": 3},
        {"type": "queue", "version": flagged},
        {"type": "comment", "comment_id": held, "version": approved},
        {"type": "delete", "comment_id": shown, "version": hidden},
        {"type": "delete", "comment_id": held, "version": rejected},
        {"type": "edit", "comment_id": shown, "version": featured},
    ]
