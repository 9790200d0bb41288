"""After each append the API queues one coalesced fold job; without Redis it still appends.

Nudges are sent from a thread of their own once the callers are answered (decision 16), so
a 201 does not mean the job is queued yet: the tests wait until it is.
"""

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue

from services.api.app import create_app
from shared.nudges import (
    DIRTY_KEY,
    FOLD_JOB,
    FOLD_QUEUE,
    MAX_QUEUED_FOLDS,
    QUEUED_FOLDS_KEY,
    QUEUED_FOLDS_TTL_SECONDS,
    Nudger,
    claim_dirty,
    hand_on,
    pending_key,
    start_fold,
)
from shared.settings import Settings
from tests.integration.conftest import JWT_SECRET, Auth
from tests.waiting import wait_for


def queued(redis: Redis) -> list[tuple[str, ...]]:
    return sorted(job.args for job in Queue(FOLD_QUEUE, connection=redis).get_jobs())


def test_a_post_queues_a_fold_job_for_its_thread(
    client: TestClient, auth: Auth, redis: Redis
) -> None:
    response = client.post("/v1/threads/t1/comments", json={"body": "x"}, headers=auth("ann"))

    wait_for(lambda: queued(redis) == [("t1",)], "the fold job")
    jobs = Queue(FOLD_QUEUE, connection=redis).get_jobs()
    assert len(jobs) == 1
    assert jobs[0].func_name == FOLD_JOB
    assert jobs[0].args == ("t1",)
    assert jobs[0].meta["request_id"] == response.headers["x-request-id"]


def test_a_burst_on_one_thread_queues_one_job_per_thread(
    client: TestClient, auth: Auth, redis: Redis
) -> None:
    for _ in range(20):
        client.post("/v1/threads/t1/comments", json={"body": "x"}, headers=auth("ann"))
    client.post("/v1/threads/t2/comments", json={"body": "x"}, headers=auth("ann"))

    # Once t2's job is queued, every t1 nudge was sent before it (one thread, in order).
    wait_for(lambda: ("t2",) in queued(redis), "t2's fold job")
    assert queued(redis) == [("t1",), ("t2",)]


def test_a_new_job_is_queued_once_the_worker_has_claimed_the_last_one(
    client: TestClient, auth: Auth, redis: Redis
) -> None:
    client.post("/v1/threads/t1/comments", json={"body": "x"}, headers=auth("ann"))
    wait_for(lambda: queued(redis) == [("t1",)], "the first fold job")
    redis.delete(pending_key("t1"))  # what the fold job does before reading the log

    client.post("/v1/threads/t1/comments", json={"body": "y"}, headers=auth("ann"))

    wait_for(lambda: queued(redis) == [("t1",), ("t1",)], "a second fold job")


def test_with_redis_down_the_append_succeeds_and_a_warning_is_logged(
    database_url: str,
    auth: Auth,
    event_count: Callable[[], int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(
        database_url=database_url, redis_url="redis://127.0.0.1:1/0", jwt_secret=JWT_SECRET
    )
    with caplog.at_level(logging.WARNING), TestClient(create_app(settings)) as client:
        response = client.post("/v1/threads/t1/comments", json={"body": "x"}, headers=auth("a"))
        again = client.post("/v1/threads/t1/comments", json={"body": "y"}, headers=auth("a"))

    assert response.status_code == again.status_code == 201
    assert event_count() == 3
    assert any("could not nudge thread(s) t1 " in r.getMessage() for r in caplog.records)


def test_readiness_reports_redis_down(database_url: str) -> None:
    settings = Settings(
        database_url=database_url, redis_url="redis://127.0.0.1:1/0", jwt_secret=JWT_SECRET
    )
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        alive = client.get("/healthz")
    assert alive.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "ok", "redis": "unreachable"}


def test_readiness_is_ok_with_both_up(client: TestClient) -> None:
    assert client.get("/readyz").json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok"},
    }


def test_one_batch_nudges_each_thread_once_with_its_first_request_id(redis: Redis) -> None:
    nudger = Nudger(redis)
    redis.set(pending_key("busy"), "1")  # a job for it is already queued

    assert nudger.nudge_many({"t1": "r1", "t2": "r2", "busy": "r3"})

    jobs = Queue(FOLD_QUEUE, connection=redis).get_jobs()
    assert sorted((job.args, job.meta["request_id"]) for job in jobs) == [
        (("t1",), "r1"),
        (("t2",), "r2"),
    ]


def test_past_the_waiting_jobs_a_nudge_only_marks_its_thread_dirty(redis: Redis) -> None:
    nudger = Nudger(redis)
    threads = {f"t{i}": f"r{i}" for i in range(5)}

    assert nudger.nudge_many(threads)

    jobs = Queue(FOLD_QUEUE, connection=redis).get_jobs()
    assert [job.args for job in jobs] == [("t0",), ("t1",)]
    assert len(jobs) == MAX_QUEUED_FOLDS
    assert sorted(m.decode() for m in redis.zrange(DIRTY_KEY, 0, -1)) == sorted(threads)
    # The count of waiting jobs cannot outlive a lost queue for long.
    assert 0 < int(redis.ttl(QUEUED_FOLDS_KEY)) <= QUEUED_FOLDS_TTL_SECONDS


def test_a_started_job_frees_its_slot_so_the_next_nudge_queues_a_job(redis: Redis) -> None:
    nudger = Nudger(redis)
    nudger.nudge_many({"t0": None, "t1": None})
    start_fold(redis, "t0")  # a worker took t0's job: t0 is no longer dirty or pending

    nudger.nudge_many({"t2": None, "t0": None})

    assert [job.args for job in Queue(FOLD_QUEUE, connection=redis).get_jobs()] == [
        ("t0",),
        ("t1",),
        ("t2",),
    ]


def test_a_dirty_thread_is_claimed_once_its_events_had_time_to_gather(redis: Redis) -> None:
    nudger = Nudger(redis)
    nudger.nudge_many({"t0": None, "t1": None, "late": None})
    start_fold(redis, "t0")
    start_fold(redis, "t1")

    waiting = claim_dirty(redis, coalesce_ms=60_000)
    assert waiting is not None
    assert waiting.thread_id is None
    assert 50 < waiting.wait_seconds <= 60
    assert redis.exists(pending_key("late"))  # still coalescing its nudges

    now = claim_dirty(redis, coalesce_ms=0)
    assert now is not None
    assert now.thread_id == "late"
    assert not redis.exists(pending_key("late"))  # its next event nudges again
    assert claim_dirty(redis, coalesce_ms=0) is None


def test_a_job_out_of_time_hands_a_dirty_thread_to_a_new_job(redis: Redis) -> None:
    nudger = Nudger(redis)
    nudger.nudge_many({"t0": None, "t1": None, "left": None})
    assert not hand_on(redis)  # two jobs wait already: they will drain "left"
    start_fold(redis, "t0")
    start_fold(redis, "t1")

    assert hand_on(redis)
    queued = [job.args for job in Queue(FOLD_QUEUE, connection=redis).get_jobs()]
    assert queued[-1] == ("left",)
