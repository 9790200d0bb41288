"""`GET /metrics` on both databases and a real Redis: what an operator's dashboard shows."""

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy.engine import Engine

from services.api.app import create_app
from services.worker import mailer
from services.worker.folding import fold, fold_thread
from services.worker.notification_projector import notification_projection
from services.worker.retention import prune_expired
from shared.nudges import FOLD_QUEUE
from shared.settings import Settings
from shared.store import EventStore
from tests.integration.conftest import JWT_SECRET, LOOPBACK_PEER, Auth
from tests.projections import orphan_reply
from tests.smtp_sink import Inbox, free_port
from tests.waiting import wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
COMMENTS_ROUTE = "/v1/threads/{thread_id}/comments"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Each scrape reads afresh (tests of the cache set their own period)."""
    return settings.model_copy(update={"metrics_cache_seconds": 0})


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def post(client: TestClient, auth: Auth, who: str, thread: str = "t1", **extra: Any) -> str:
    response = client.post(
        f"/v1/threads/{thread}/comments", json={"body": f"{who} says", **extra}, headers=auth(who)
    )
    assert response.status_code == 201
    return str(response.json()["id"])


def explode() -> None:
    raise RuntimeError("a job that fails")


def test_requests_are_timed_under_their_route_template(client: TestClient, auth: Auth) -> None:
    for who in ("ann", "bob", "cy"):
        post(client, auth, who)
    read = client.get("/v1/threads/t1/comments")
    client.get("/no/such/page")
    too_large = client.post(
        "/v1/threads/t1/comments",
        content=b"x" * 70_000,
        headers={**auth("ann"), "Content-Type": "application/json"},
    )
    assert too_large.status_code == 413

    samples = scrape(client)

    count = "chorus_http_request_duration_seconds_count"
    posts = {"method": "POST", "route": COMMENTS_ROUTE}
    assert value(samples, count, **posts, status="201") == 3
    assert value(samples, count, **posts, status="413") == 1
    reads = {"method": "GET", "route": COMMENTS_ROUTE, "status": str(read.status_code)}
    assert value(samples, count, **reads) == 1
    assert value(samples, count, method="GET", route="unmatched", status="404") == 1
    took = value(samples, "chorus_http_request_duration_seconds_sum", **posts, status="201")
    assert took is not None
    assert took > 0
    routes = {dict(labels).get("route") for _, labels in samples}
    assert "/v1/threads/t1/comments" not in routes  # never the raw path


def test_events_appended_are_counted_by_type_once_committed(client: TestClient, auth: Auth) -> None:
    first = post(client, auth, "ann")
    post(client, auth, "bob", parent_id=first)
    for _ in range(2):  # liking twice appends once
        assert client.put(f"/v1/comments/{first}/like", headers=auth("bob")).status_code == 200
    keyed = {**auth("cy"), "Idempotency-Key": "k1"}
    for _ in range(2):  # the replay appends nothing
        client.post("/v1/threads/t1/comments", json={"body": "once"}, headers=keyed)
    refused = client.post("/v1/threads/t1/comments", json={"body": " "}, headers=auth("cy"))
    assert refused.status_code == 422

    samples = scrape(client)

    appended = "chorus_events_appended_total"
    assert value(samples, appended, type="ThreadRegistered") == 1
    assert value(samples, appended, type="CommentPosted") == 3
    assert value(samples, appended, type="CommentLiked") == 1
    # Every write batch took the append lock (docs/scaling.md reads its busy share).
    held = value(samples, "chorus_append_lock_held_seconds_total")
    assert held is not None
    assert held > 0


def test_projection_lag_counts_unfolded_events_until_each_projection_folds(
    client: TestClient, auth: Auth, engine: Engine, store: EventStore
) -> None:
    post(client, auth, "ann", "t1")
    post(client, auth, "bob", "t1")
    post(client, auth, "ann", "t2")
    prefs = {"notify_on": "replies", "email_frequency": "daily"}
    assert client.put("/v1/me/preferences", json=prefs, headers=auth("ann")).status_code == 200

    before = scrape(client)

    # t1: ThreadRegistered + 2 comments, t2: 2 events; the user stream is not a thread's.
    for projection in ("threads", "notifications"):
        assert value(before, "chorus_projection_lag_events", projection=projection) == 5
        assert (value(before, "chorus_projection_lag_seconds", projection=projection) or 0) > 0

    for thread in ("t1", "t2"):
        fold_thread(engine, store, thread)
    between = scrape(client)

    assert value(between, "chorus_projection_lag_events", projection="threads") == 0
    assert value(between, "chorus_projection_lag_seconds", projection="threads") == 0
    assert value(between, "chorus_projection_lag_events", projection="notifications") == 5

    for thread in ("t1", "t2"):
        fold(engine, store, thread, notification_projection())
    after = scrape(client)

    assert value(after, "chorus_projection_lag_events", projection="notifications") == 0
    assert value(after, "chorus_projection_lag_seconds", projection="notifications") == 0


def test_dead_letters_are_counted_per_projection(
    client: TestClient, auth: Auth, engine: Engine, store: EventStore
) -> None:
    post(client, auth, "ann")
    assert value(scrape(client), "chorus_dead_letters", projection="threads") == 0
    orphan = orphan_reply()
    store.append("t1", [orphan], store.stream_version("t1"))

    fold_thread(engine, store, "t1")
    samples = scrape(client)

    assert value(samples, "chorus_dead_letters", projection="threads") == 1
    assert value(samples, "chorus_dead_letters", projection="notifications") == 0


def test_the_outbox_shows_emails_pending_sent_and_failed(
    client: TestClient,
    auth: Auth,
    engine: Engine,
    store: EventStore,
    settings: Settings,
    inbox: Inbox,
) -> None:
    def bob_replies_to(author: str) -> None:
        parent = post(client, lambda who: auth(who, email=f"{who}@example.com"), author)
        post(client, auth, "bob", parent_id=parent)
        fold_thread(engine, store, "t1")
        fold(engine, store, "t1", notification_projection())

    bob_replies_to("ann")
    assert value(scrape(client), "chorus_email_outbox_rows", status="pending") == 1
    mailer.send_due_emails(engine, settings.model_copy(update={"smtp_url": inbox.smtp_url}))
    bob_replies_to("cy")
    unreachable = f"smtp://127.0.0.1:{free_port()}"
    mailer.send_due_emails(
        engine, settings.model_copy(update={"smtp_url": unreachable, "mail_max_attempts": 1})
    )
    samples = scrape(client)

    assert len(inbox.messages) == 1
    rows = {s: value(samples, "chorus_email_outbox_rows", status=s) for s in ("sent", "failed")}
    assert rows == {"sent": 1, "failed": 1}
    for status in ("pending", "sending", "skipped"):
        assert value(samples, "chorus_email_outbox_rows", status=status) == 0


def test_email_totals_survive_pruning(
    client: TestClient,
    auth: Auth,
    engine: Engine,
    store: EventStore,
    settings: Settings,
    inbox: Inbox,
) -> None:
    def reply_to(author: str, email: str | None) -> None:
        parent = post(client, lambda who: auth(who, email=email), author)
        post(client, auth, "bob", parent_id=parent)
        fold_thread(engine, store, "t1")
        fold(engine, store, "t1", notification_projection())

    reply_to("ann", "ann@example.com")
    reply_to("dee", None)  # no address: skipped
    mailer.send_due_emails(engine, settings.model_copy(update={"smtp_url": inbox.smtp_url}))
    reply_to("cy", "cy@example.com")
    unreachable = f"smtp://127.0.0.1:{free_port()}"
    mailer.send_due_emails(
        engine, settings.model_copy(update={"smtp_url": unreachable, "mail_max_attempts": 1})
    )
    reply_to("eve", "eve@example.com")  # still pending: never pruned
    before = scrape(client)

    later = datetime.now(UTC) + timedelta(days=settings.outbox_retention_days, hours=1)
    assert prune_expired(engine, settings, later).outbox_rows == 3
    after = scrape(client)

    totals = "chorus_email_outbox_finished_total"
    for samples in (before, after):
        assert {s: value(samples, totals, status=s) for s in ("sent", "skipped", "failed")} == {
            "sent": 1,
            "skipped": 1,
            "failed": 1,
        }
        assert value(samples, "chorus_email_outbox_rows", status="pending") == 1
    assert value(before, "chorus_email_outbox_rows", status="sent") == 1
    assert value(after, "chorus_email_outbox_rows", status="sent") == 0


def test_concurrent_scrapes_share_one_reading_per_cache_period(
    settings: Settings, auth: Auth
) -> None:
    scrapers = 8
    cached = settings.model_copy(update={"metrics_cache_seconds": 60})
    with TestClient(create_app(cached), client=LOOPBACK_PEER) as client:
        post(client, auth, "ann")
        cache = client.app.state.scraped_state  # type: ignore[attr-defined]
        statements: list[tuple[int, str]] = []  # (thread, statement)
        all_waiting = threading.Event()

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if not all_waiting.is_set():  # hold the first reading until every other scrape waits
                deadline = time.monotonic() + 10
                while cache.waiting < scrapers - 1 and time.monotonic() < deadline:
                    time.sleep(0.005)
                all_waiting.set()
            statements.append((threading.get_ident(), statement))

        engine = client.app.state.services.engine  # type: ignore[attr-defined]
        sa.event.listen(engine, "before_cursor_execute", count)
        results: list[Samples] = []
        threads = [
            threading.Thread(target=lambda: results.append(scrape(client))) for _ in range(scrapers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        read = list(statements)
        again = scrape(client)  # within the period: from the cache
        sa.event.remove(engine, "before_cursor_execute", count)

    assert len(results) == scrapers
    assert read
    assert len({thread for thread, _ in read}) == 1, "one scrape read; the others shared it"
    assert statements == read, "the next scrape in the period reads nothing"
    lag = "chorus_projection_lag_events"
    assert {value(r, lag, projection="threads") for r in [*results, again]} == {2}


def test_queue_depth_and_failed_jobs_are_read_from_redis(
    client: TestClient, auth: Auth, redis: Redis
) -> None:
    post(client, auth, "ann", "t1")
    post(client, auth, "bob", "t1")
    post(client, auth, "ann", "t2")
    # Nudges leave from their own thread after the answer (decision 16): wait for t2's.
    wait_for(lambda: Queue(FOLD_QUEUE, connection=redis).count == 2, "the nudges")

    samples = scrape(client)

    assert value(samples, "chorus_queue_depth", queue=FOLD_QUEUE) == 2  # nudges coalesce
    assert value(samples, "chorus_queue_failed_jobs", queue=FOLD_QUEUE) == 0
    assert value(samples, "chorus_metrics_source_up", source="redis") == 1

    queue = Queue(FOLD_QUEUE, connection=redis)
    queue.empty()
    queue.enqueue(explode)
    SimpleWorker([queue], connection=redis).work(burst=True)
    samples = scrape(client)

    assert value(samples, "chorus_queue_depth", queue=FOLD_QUEUE) == 0
    assert value(samples, "chorus_queue_failed_jobs", queue=FOLD_QUEUE) == 1


def test_metrics_answer_with_redis_down(database_url: str, auth: Auth) -> None:
    settings = Settings(
        database_url=database_url, redis_url="redis://127.0.0.1:1/0", jwt_secret=JWT_SECRET
    )
    with TestClient(create_app(settings), client=LOOPBACK_PEER) as client:
        post(client, auth, "ann")
        samples = scrape(client)

    assert value(samples, "chorus_metrics_source_up", source="redis") == 0
    assert value(samples, "chorus_metrics_source_up", source="database") == 1
    assert not any(name == "chorus_queue_depth" for name, _ in samples)
    assert value(samples, "chorus_events_appended_total", type="CommentPosted") == 1
    assert value(samples, "chorus_projection_lag_events", projection="threads") == 2


@pytest.mark.parametrize(
    "database_url", ["postgresql://chorus@127.0.0.1:1/chorus", "sqlite:////no/such/dir/x.db"]
)
def test_metrics_answer_with_the_database_and_redis_down(database_url: str) -> None:
    settings = Settings(
        database_url=database_url, redis_url="redis://127.0.0.1:1/0", jwt_secret=JWT_SECRET
    )
    with TestClient(create_app(settings), client=LOOPBACK_PEER) as client:
        assert client.get("/healthz").status_code == 200
        samples = scrape(client)

    assert value(samples, "chorus_metrics_source_up", source="database") == 0
    assert value(samples, "chorus_metrics_source_up", source="redis") == 0
    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    assert value(samples, "chorus_http_request_duration_seconds_count", **healthz) == 1
