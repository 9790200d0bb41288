"""Retention on both databases: expired keys and finished outbox rows go, nothing else does."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue
from sqlalchemy.engine import Engine

from services.worker import context, jobs, mailer
from services.worker.folding import fold_thread
from services.worker.rebuild import rebuild_notifications
from services.worker.retention import prune_expired
from shared.notification_tables import email_outbox
from shared.nudges import FOLD_QUEUE, PRUNE_JOB, enqueue_prune_if_due
from shared.retention_tables import email_outbox_pruned
from shared.settings import Settings
from shared.store import EventStore
from shared.write_index import IdempotencyRecord
from tests.integration.conftest import Auth
from tests.smtp_sink import Inbox

KEYS = IdempotencyRecord.__table__  # type: ignore[attr-defined]
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
STATUSES = ("pending", "sending", "sent", "skipped", "failed")


def keys(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(KEYS.c.key)).scalars())


def age_key(engine: Engine, key: str, hours: float) -> None:
    """Make an idempotency key look `hours` old (the key table is not append-only)."""
    with engine.begin() as conn:
        conn.execute(
            KEYS.update()
            .where(KEYS.c.key == key)
            .values(created_at=datetime.now(UTC) - timedelta(hours=hours))
        )


def outbox_statuses(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(email_outbox.c.comment_id, email_outbox.c.status))
        return {row.comment_id: row.status for row in rows}


def pruned(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(email_outbox_pruned))
        return {row.status: row.pruned_rows for row in rows}


def insert_outbox(engine: Engine, comment_id: str, status: str, due_at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            email_outbox.insert().values(
                recipient_id="ann",
                comment_id=comment_id,
                frequency="immediate",
                status=status,
                due_at=due_at,
                lease_until=due_at + timedelta(minutes=5) if status == "sending" else None,
                attempts=1,
                sent_at=due_at if status == "sent" else None,
                created_at=due_at,
            )
        )


def post_keyed(client: TestClient, auth: Auth, key: str, body: str) -> Any:
    headers = {**auth("ann"), "Idempotency-Key": key}
    response = client.post("/v1/threads/t1/comments", json={"body": body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_expired_idempotency_keys_are_pruned_and_a_live_key_still_replays(
    client: TestClient,
    auth: Auth,
    engine: Engine,
    settings: Settings,
    event_count: Callable[[], int],
) -> None:
    old = post_keyed(client, auth, "k-old", "posted yesterday")
    fresh = post_keyed(client, auth, "k-fresh", "posted an hour before the limit")
    age_key(engine, "k-old", settings.idempotency_retention_hours + 1)
    age_key(engine, "k-fresh", settings.idempotency_retention_hours - 1)

    summary = prune_expired(engine, settings)

    assert (summary.idempotency_keys, summary.more) == (1, False)
    assert keys(engine) == {"k-fresh"}
    before = event_count()
    assert post_keyed(client, auth, "k-fresh", "posted an hour before the limit") == fresh
    assert event_count() == before, "a replay appends nothing"
    # Past its retention a key is new again: the same request runs as a new one.
    again = post_keyed(client, auth, "k-old", "posted yesterday")
    assert again["id"] != old["id"]


def test_only_finished_outbox_rows_past_retention_are_pruned_and_counted(
    engine: Engine, settings: Settings
) -> None:
    retention = timedelta(days=settings.outbox_retention_days)
    for status in STATUSES:
        insert_outbox(engine, f"old-{status}", status, NOW - retention - timedelta(minutes=1))
        insert_outbox(engine, f"new-{status}", status, NOW - retention + timedelta(minutes=1))

    summary = prune_expired(engine, settings, NOW)

    assert summary.outbox_rows == 3
    left = outbox_statuses(engine)
    assert sorted(left) == sorted(
        ["old-pending", "old-sending", *(f"new-{status}" for status in STATUSES)]
    )
    assert pruned(engine) == {"sent": 1, "skipped": 1, "failed": 1}
    prune_expired(engine, settings, NOW + retention)  # the rest of the finished rows
    assert pruned(engine) == {"sent": 2, "skipped": 2, "failed": 2}
    assert set(outbox_statuses(engine).values()) == {"pending", "sending"}


def test_a_run_deletes_in_chunks_and_says_when_it_stopped_at_its_bound(
    engine: Engine, settings: Settings
) -> None:
    for n in range(5):
        insert_outbox(engine, f"c{n}", "sent", NOW - timedelta(days=30))

    first = prune_expired(engine, settings, NOW, chunk=2, max_chunks=2)
    second = prune_expired(engine, settings, NOW, chunk=2, max_chunks=2)

    assert (first.outbox_rows, first.more) == (4, True)
    assert (second.outbox_rows, second.more) == (1, False)
    assert outbox_statuses(engine) == {}
    assert pruned(engine) == {"sent": 5}


@pytest.fixture
def worker_context(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(context, "_current", None)
    ctx = context.open_context(settings)
    yield
    ctx.close()


@pytest.mark.usefixtures("worker_context")
def test_a_pruned_sent_row_is_never_queued_or_sent_again(
    client: TestClient,
    auth: Auth,
    engine: Engine,
    store: EventStore,
    settings: Settings,
    inbox: Inbox,
) -> None:
    with_mail = settings.model_copy(update={"smtp_url": inbox.smtp_url})
    parent = client.post(
        "/v1/threads/t1/comments", json={"body": "hi"}, headers=auth("ann", email="a@example.com")
    ).json()["id"]
    reply = {"body": "hello Ann", "parent_id": parent}
    assert (
        client.post("/v1/threads/t1/comments", json=reply, headers=auth("bob")).status_code == 201
    )
    jobs.fold_thread("t1")
    assert mailer.send_due_emails(engine, with_mail).emails_sent == 1
    later = datetime.now(UTC) + timedelta(days=settings.outbox_retention_days, hours=1)
    assert prune_expired(engine, settings, later).outbox_rows == 1

    jobs.fold_thread("t1")  # a redelivered fold job
    fold_thread(engine, store, "t1")
    rebuild_notifications(engine, store)  # the notifications refolded from the log
    summary = mailer.send_due_emails(engine, with_mail, later)

    assert outbox_statuses(engine) == {}
    assert summary.claimed == 0
    assert len(inbox.messages) == 1
    assert pruned(engine) == {"sent": 1}


@pytest.mark.usefixtures("worker_context")
def test_retention_runs_are_queued_once_per_interval_and_run_as_a_job(
    engine: Engine, settings: Settings, redis: Redis
) -> None:
    insert_outbox(engine, "c1", "failed", datetime.now(UTC) - timedelta(days=30))

    assert enqueue_prune_if_due(redis, 60)
    assert not enqueue_prune_if_due(redis, 60)  # another worker's pass within the interval
    queued = [job.func_name for job in Queue(FOLD_QUEUE, connection=redis).get_jobs()]
    result = jobs.prune()

    assert queued == [PRUNE_JOB]
    assert result == {"idempotency_keys": 0, "outbox_rows": 1, "more": False}
    assert pruned(engine) == {"failed": 1}
