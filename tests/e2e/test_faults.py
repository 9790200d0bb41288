"""Faults under load: whatever dies or repeats, the end state equals a clean run.

Real processes throughout: `chorus api`, `chorus worker` (or a worker that runs every job
twice), a real SMTP server, PostgreSQL and Redis. Redis and PostgreSQL are killed only as
private servers of the test's own (tests/e2e/private_services.py), never the shared ones.

"Equals a clean run" (`assert_same_as_a_clean_run`) means: the thread projection equals one
uninterrupted fold of the log; the notifications equal a fresh refold of the log; every
notification has exactly one outbox row, and every row was sent; the emails received are
exactly the notifications' Message-IDs, each once, except for the duplicates the outbox
design allows (decisions.md, "The duplicate bound": one per mailer that died or lost the
database between the SMTP server's acceptance and the mark). Each test states its bound.

Killing a worker mid-fold is covered by tests/e2e/test_workers.py.
"""

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry
from sqlalchemy.engine import Engine

from services.worker.context import open_context
from services.worker.email_messages import notification_message_id, public_host
from services.worker.main import ChorusWorker
from services.worker.rebuild import rebuild_notifications
from services.worker.sweep import threads_behind
from shared.command_bus import CommandBus
from shared.commands import Actor, PostComment, RequestContext
from shared.db import create_db_engine
from shared.notification_tables import email_outbox, notifications
from shared.nudges import FOLD_QUEUE, Nudger
from shared.settings import Settings
from shared.store import EventStore
from tests.conftest import service_unavailable
from tests.e2e.conftest import HTTP_TIMEOUT, JWT_SECRET, Workers, free_port, running_api
from tests.e2e.private_services import (
    PrivatePostgres,
    PrivateRedis,
    postgres_bin,
    private_postgres,
    redis_server_binary,
)
from tests.e2e.private_services import private_redis as run_private_redis
from tests.e2e.test_email_pipeline import bearer, wait_for
from tests.projections import clean_fold, snapshot
from tests.smtp_sink import Inbox, serve
from tests.waiting import PATIENCE_SECONDS

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

USERS = ["ann", "bob", "cat", "dan", "eve", "fay"]  # all with an address: every email is due
THREADS = ["fault-a", "fault-b"]
SETTLE_SECONDS = PATIENCE_SECONDS


# --- the workload ----------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    thread: str
    author: str
    parent: int | None  # index of an earlier post of the same thread


def conversation(n: int, seed: int) -> list[Post]:
    """n posts over THREADS, most of them replies: each reply emails earlier participants."""
    rng = random.Random(seed)
    posts: list[Post] = []
    for i in range(n):
        thread = THREADS[i % len(THREADS)]
        earlier = [j for j, p in enumerate(posts) if p.thread == thread]
        parent = rng.choice(earlier) if earlier and rng.random() < 0.75 else None
        posts.append(Post(thread, rng.choice(USERS), parent))
    return posts


def post(http: httpx.Client, item: Post, ids: list[str], key: str | None = None) -> httpx.Response:
    headers = bearer(item.author, item.author.title())
    if key is not None:
        headers["Idempotency-Key"] = key
    body = {"body": f"{item.author} says {len(ids)}"}
    if item.parent is not None:
        body["parent_id"] = ids[item.parent]
    return http.post(f"/v1/threads/{item.thread}/comments", json=body, headers=headers)


@dataclass
class Writer:
    """Posts a conversation through the API from a thread of its own, as a client would."""

    http: httpx.Client
    plan: list[Post]
    retry_until_created: bool = False  # same Idempotency-Key until 201, after 503 or no answer
    ids: list[str] = field(default_factory=list)
    refusals: list[httpx.Response] = field(default_factory=list)
    transport_errors: int = 0
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> None:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the writer is stuck after {len(self.ids)} posts"
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            for item in self.plan:
                self.ids.append(self._post(item))
        except BaseException as exc:  # reported by join(), in the test's thread
            self.error = exc

    def _post(self, item: Post) -> str:
        key = str(uuid.uuid4())
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            try:
                response = post(self.http, item, self.ids, key)
            except httpx.TransportError:
                if not self.retry_until_created:
                    raise
                self.transport_errors += 1
                continue
            if response.status_code == 201:
                return str(response.json()["id"])
            self.refusals.append(response)
            if not (self.retry_until_created and response.status_code == 503):
                raise AssertionError(f"post refused: {response.status_code} {response.text}")
            if time.monotonic() > deadline:
                raise AssertionError("the API did not recover")
            time.sleep(float(response.headers.get("Retry-After", "1")))


# --- what a clean run gives ------------------------------------------------------------


def wait_until_settled(engine: Engine, timeout: float = SETTLE_SECONDS) -> None:
    """Both projections caught up with the log, and no email left pending or in flight."""

    def settled() -> bool:
        if threads_behind(engine):
            return False
        with engine.connect() as conn:
            unsent = conn.execute(
                sa.select(sa.func.count())
                .select_from(email_outbox)
                .where(email_outbox.c.status.in_(["pending", "sending"]))
            ).scalar_one()
        return unsent == 0

    wait_for(settled, "the workers to fold everything and send every email", timeout)


def notification_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(sa.select(notifications)))


def assert_same_as_a_clean_run(
    engine: Engine, inbox: Inbox, public_url: str, *, duplicate_bound: int
) -> None:
    store = EventStore(engine)
    assert snapshot(engine) == clean_fold(engine, store)

    folded = notification_rows(engine)
    rebuild_notifications(engine, store)  # a refold from the log; it queues no email
    assert notification_rows(engine) == folded

    with engine.connect() as conn:
        outbox = list(conn.execute(sa.select(email_outbox)))
    notified = {(row[0], row[1]) for row in folded}  # (recipient_id, comment_id)
    assert len(outbox) == len(notified)
    assert {(r.recipient_id, r.comment_id) for r in outbox} == notified
    assert {r.status for r in outbox} == {"sent"}

    host = public_host(public_url)
    expected = {notification_message_id(user, comment, host) for user, comment in notified}
    received = Counter(inbox.message_ids())
    assert set(received) == expected  # every email delivered, none that should not be
    duplicates = sum(count - 1 for count in received.values())
    assert duplicates <= duplicate_bound, f"{duplicates} duplicate emails: {received}"


def mail_env(inbox: Inbox, port: int) -> dict[str, str]:
    return {
        "CHORUS_SMTP_URL": inbox.smtp_url,
        "CHORUS_PUBLIC_URL": f"http://127.0.0.1:{port}",
        # The shortest lease allowed: rows a dead mailer held are retried 10 s later.
        "CHORUS_MAIL_LEASE_SECONDS": "10",
    }


# --- 1. SIGKILL a worker while it is mailing -------------------------------------------


class SlowInbox(Inbox):
    """An SMTP server that takes `delay` seconds to accept each message."""

    delay = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_inbox() -> Iterator[SlowInbox]:
    handler = SlowInbox()
    for _ in serve(handler):  # serve() yields once, while its server runs
        yield handler


def outbox_statuses(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(conn.execute(sa.select(email_outbox.c.status)).scalars())


@on_postgresql
def test_a_worker_killed_while_mailing_leaves_no_email_unsent(
    chorus_env: dict[str, str], workers: Workers, engine: Engine, slow_inbox: SlowInbox
) -> None:
    """Bound: 1 duplicate, since the one kill may land between the server's 250 and the mark."""
    port = free_port()
    env = {**chorus_env, **mail_env(slow_inbox, port)}
    workers.env.update(env)
    with running_api(env, port) as base, httpx.Client(base_url=base, timeout=HTTP_TIMEOUT) as http:
        ids: list[str] = []
        for item in conversation(40, seed=1):  # no worker yet: fold jobs wait in the queue
            response = post(http, item, ids)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])

        slow_inbox.delay = 0.2
        victim = workers.start()  # folds everything, then one mailer run claims every row
        wait_for(lambda: len(slow_inbox.messages) >= 3, "the first emails")
        workers.kill(victim)  # SIGKILL, mid-batch
        statuses = outbox_statuses(engine)
        assert statuses["sending"] > 0, f"the kill did not land mid-batch: {statuses}"

        slow_inbox.delay = 0.0
        workers.start()  # retries the dead run's rows once their lease expires
        wait_until_settled(engine)

    assert_same_as_a_clean_run(engine, slow_inbox, f"http://127.0.0.1:{port}", duplicate_bound=1)


# --- 2. Restart Redis under load -------------------------------------------------------


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    try:
        redis_server_binary()
    except FileNotFoundError as exc:
        service_unavailable("redis-server (to run a private Redis)", exc)
    with run_private_redis() as server:
        yield server


class Supervisor:
    """Restarts worker processes that exit, as compose.yaml's `restart: unless-stopped` does."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.exit_codes: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> "Supervisor":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        restarted: set[int] = set()
        while not self._stop.wait(0.1):
            for process in list(self.workers.processes):
                code = process.poll()
                if code is not None and process.pid not in restarted:
                    restarted.add(process.pid)
                    self.exit_codes.append(code)
                    self.workers.start()


@on_postgresql
def test_redis_restarted_under_load_loses_nothing_but_queued_nudges(
    chorus_env: dict[str, str],
    workers: Workers,
    engine: Engine,
    inbox: Inbox,
    private_redis: PrivateRedis,
) -> None:
    """Bound: 0 duplicates. No mailer loses its database, and a mailer run touches Redis only
    before it claims (clearing its nudge flag, errors ignored), never between send and mark.

    Workers that exit are restarted (compose.yaml restarts them); that any had to be is
    reported last, after the end state was checked: a worker should ride out a Redis restart.
    """
    port = free_port()
    env = {**chorus_env, **mail_env(inbox, port), "CHORUS_REDIS_URL": private_redis.url}
    workers.env.update(env)
    workers.start()
    workers.start()
    with (
        Supervisor(workers) as supervisor,
        running_api(env, port) as base,
        httpx.Client(base_url=base, timeout=HTTP_TIMEOUT) as http,
    ):
        writer = Writer(http, conversation(60, seed=2))
        writer.start()
        wait_for(lambda: len(writer.ids) >= 15, "the first posts")
        private_redis.kill()  # queued nudges, pending flags, leases and workers' keys: gone
        down_at = len(writer.ids)
        assert down_at <= len(writer.plan) - 5, "the writer was done before Redis went down"
        wait_for(lambda: len(writer.ids) >= down_at + 5, "posts accepted while Redis is down")
        private_redis.start()  # the same port, empty
        writer.join(timeout=SETTLE_SECONDS)
        assert writer.refusals == []  # every post was accepted (201), Redis or not

        wait_until_settled(engine)  # the sweep refolds what the lost nudges would have

    assert_same_as_a_clean_run(engine, inbox, f"http://127.0.0.1:{port}", duplicate_bound=0)
    assert supervisor.exit_codes == [], (
        f"{len(supervisor.exit_codes)} workers exited when Redis restarted (exit codes "
        f"{supervisor.exit_codes}); only a supervisor's restart brought them back"
    )


def run_worker_that_loses_redis_once() -> None:
    """`chorus worker`, but its first maintenance pass meets a lost Redis connection, as
    during a short Redis restart. RQ's work loop catches that itself ("found an unhandled
    exception, quitting") and returns as if it were done, while Redis is back."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from services.worker.main import run_worker

    maintain = ChorusWorker.run_maintenance_tasks
    lost: list[bool] = []

    def maintain_or_lose_redis(self: ChorusWorker) -> None:
        if not lost:
            lost.append(True)
            raise RedisConnectionError("Connection closed by server.")
        maintain(self)

    ChorusWorker.run_maintenance_tasks = maintain_or_lose_redis  # type: ignore[method-assign]
    run_worker(Settings())


def test_a_redis_error_the_work_loop_swallows_does_not_end_the_worker(
    workers: Workers, engine: Engine, store: EventStore, redis: Redis
) -> None:
    command = "from tests.e2e.test_faults import run_worker_that_loses_redis_once as run; run()"
    worker = subprocess.Popen(
        [sys.executable, "-c", command],
        env=workers.env,
        start_new_session=True,  # Workers.stop_all ends its whole process group
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers.processes.append(worker)
    bus = CommandBus(engine, store)
    try:
        bus.execute(PostComment("t1", "after the blip"), RequestContext(Actor("ann", "Ann")))
    finally:
        bus.close()
    Nudger(redis).nudge("t1")

    folded = lambda: not threads_behind(engine)  # noqa: E731
    wait_for(lambda: folded() or worker.poll() is not None, "the worker to fold or to exit")

    assert worker.poll() is None, f"the worker exited ({worker.returncode}) after a Redis blip"
    assert folded()


# --- 3. Restart PostgreSQL under load --------------------------------------------------


@pytest.fixture
def private_database() -> Iterator[tuple[PrivatePostgres, str]]:
    try:
        postgres_bin()
    except RuntimeError as exc:
        service_unavailable("PostgreSQL's server binaries (to run a private cluster)", exc)
    with private_postgres() as server:
        yield server, server.create_database("chorus")


def test_postgresql_restarted_under_load_answers_503_then_recovers(
    redis_url: str, inbox: Inbox, private_database: tuple[PrivatePostgres, str]
) -> None:
    """Bound: 2 duplicates (one per worker): a crash may land between a mailer's send and
    its mark. Every post is retried with its Idempotency-Key until 201: exactly once."""
    server, database_url = private_database
    port = free_port()
    env = {
        **os.environ,
        "CHORUS_DATABASE_URL": database_url,
        "CHORUS_REDIS_URL": redis_url,
        "CHORUS_JWT_SECRET": JWT_SECRET,
        "CHORUS_RATE_LIMIT_ENABLED": "false",
        "CHORUS_SWEEP_INTERVAL_SECONDS": "1",
        **mail_env(inbox, port),
    }
    engine = create_db_engine(database_url)
    workers = Workers(env)
    try:
        workers.start()
        workers.start()
        with (
            running_api(env, port) as base,
            httpx.Client(base_url=base, timeout=HTTP_TIMEOUT) as http,
        ):
            writer = Writer(http, conversation(60, seed=3), retry_until_created=True)
            writer.start()
            wait_for(lambda: len(writer.ids) >= 15, "the first posts")
            server.crash()
            # A retry, Retry-After seconds after the first refusal, meets the database down too.
            wait_for(lambda: len(writer.refusals) >= 2, "refusals while the database is down")
            server.start()  # the API is not restarted: its pool reconnects by itself
            writer.join(timeout=SETTLE_SECONDS)
            after = post(http, Post(THREADS[0], "ann", None), writer.ids)

        refusal = writer.refusals[0]
        assert refusal.status_code == 503
        assert refusal.json()["error"]["code"] == "database_unavailable"
        assert refusal.json()["error"]["message"]
        assert int(refusal.headers["Retry-After"]) >= 1
        assert {r.status_code for r in writer.refusals} == {503}
        assert after.status_code == 201, after.text
        assert all(p.poll() is None for p in workers.processes)  # jobs failed, workers lived

        posted = posted_comment_ids(engine)
        assert len(writer.ids) == len(set(writer.ids)) == 60
        assert Counter(posted) == Counter([*writer.ids, after.json()["id"]])  # each once

        wait_until_settled(engine)
        assert_same_as_a_clean_run(engine, inbox, f"http://127.0.0.1:{port}", duplicate_bound=2)
    finally:
        workers.stop_all()
        engine.dispose()


def posted_comment_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT data FROM events WHERE type = 'CommentPosted'"))
        return [str(data["comment_id"]) for (data,) in rows]


# --- 4. Every job delivered twice ------------------------------------------------------


class DuplicatingWorker(ChorusWorker):
    """Delivers every job twice: before running a job it queues a copy of it (the copy is
    not copied again), which this or another worker runs later or at the same time."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        if not job.meta.get("copy") and job.func_name is not None:
            queue.enqueue(
                job.func_name,
                args=job.args,
                kwargs=job.kwargs,
                meta={**job.meta, "copy": True},
                result_ttl=0,
                failure_ttl=24 * 3600,
            )
        super().execute_job(job, queue)


def run_duplicating_worker() -> None:
    """`chorus worker`'s setup (services/worker/main.py) with DuplicatingWorker."""
    settings = Settings()
    ctx = open_context(settings)
    try:
        worker = DuplicatingWorker(
            [Queue(FOLD_QUEUE, connection=ctx.redis)],
            connection=ctx.redis,
            worker_ttl=settings.sweep_interval_seconds + 15,
        )
        worker.sweep_interval = settings.sweep_interval_seconds
        worker.maintenance_interval = settings.sweep_interval_seconds
        worker.work(with_scheduler=True, logging_level="WARNING")
    finally:
        ctx.close()


def start_duplicating_worker(workers: Workers) -> None:
    command = "from tests.e2e.test_faults import run_duplicating_worker; run_duplicating_worker()"
    process = subprocess.Popen(
        [sys.executable, "-c", command],
        env=workers.env,
        start_new_session=True,  # Workers.stop_all ends its whole process group
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers.processes.append(process)


def queue_drained(redis: Redis) -> bool:
    queue = Queue(FOLD_QUEUE, connection=redis)
    return queue.count == 0 and StartedJobRegistry(queue=queue).count == 0


@on_postgresql
def test_every_job_delivered_twice_sends_every_email_once(
    chorus_env: dict[str, str], workers: Workers, engine: Engine, inbox: Inbox, redis: Redis
) -> None:
    """Bound: 0 duplicates. Nothing dies: a duplicated fold finds its checkpoint moved, a
    duplicated mailer run finds the rows claimed (SKIP LOCKED) or sent."""
    port = free_port()
    env = {**chorus_env, **mail_env(inbox, port)}
    workers.env.update(env)
    start_duplicating_worker(workers)
    start_duplicating_worker(workers)
    with running_api(env, port) as base, httpx.Client(base_url=base, timeout=HTTP_TIMEOUT) as http:
        writer = Writer(http, conversation(50, seed=4))
        writer.start()
        writer.join(timeout=SETTLE_SECONDS)
        wait_until_settled(engine)
        wait_for(lambda: queue_drained(redis), "the copies of the last jobs to run")
        assert all(p.poll() is None for p in workers.processes)

    assert_same_as_a_clean_run(engine, inbox, f"http://127.0.0.1:{port}", duplicate_bound=0)
