"""`chorus worker`: an RQ worker for all Chorus queues, with RQ's scheduler."""

import logging
import time
from types import FrameType

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, SimpleWorker

from services.worker.context import open_context
from shared.jwt_secret import require_secret
from shared.logging_setup import configure_logging
from shared.nudges import (
    FOLD_QUEUE,
    enqueue_mail_if_due,
    enqueue_prune_if_due,
    enqueue_sweep_if_due,
)
from shared.settings import Settings


class ChorusWorker(SimpleWorker):
    """SimpleWorker: jobs run in-process (no fork per job), so one job can fold a burst.

    Its maintenance pass also queues the periodic sweep (one per interval across all
    workers), a mailer run (at most one every few seconds across all workers: digests
    and retries fall due with no other nudge) and a retention run (one every few minutes
    across all workers). That needs nothing in Redis to survive:
    after a flush, a crash or a killed scheduler, the next maintenance pass of any worker
    queues it again.
    """

    sweep_interval = 10
    stopping = False

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True  # a shutdown was asked for: don't come back after Redis errors
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        enqueue_sweep_if_due(self.connection, self.sweep_interval)
        enqueue_mail_if_due(self.connection)
        enqueue_prune_if_due(self.connection)


# How long a worker waits before it tries Redis again after losing it.
RECONNECT_PAUSE_SECONDS = 1.0

log = logging.getLogger(__name__)


def run_worker(settings: Settings, *, burst: bool = False) -> bool:
    """Work until stopped; a lost Redis is waited out, not a reason to exit.

    RQ's work loop ends on any Redis error outside its blocking dequeue (heartbeats,
    state updates), so a Redis restart would otherwise take every worker down with it.
    It raises the error when its teardown fails too (Redis still down), but when Redis is
    already back it logs "found an unhandled exception, quitting" and returns as if done:
    so only a burst run or a requested stop ends the worker, however the loop ended.
    What was queued is gone with that Redis; the sweep finds the threads it was about.
    """
    require_secret(settings.jwt_secret)  # it signs every email's unsubscribe link
    configure_logging(logging.INFO)  # JSON lines; a job's lines carry its request id
    ctx = open_context(settings)
    try:
        while True:
            worker: ChorusWorker | None = None
            try:
                worker = _new_worker(settings, ctx.redis)
                worked = bool(
                    worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
                )
                if burst or worker.stopping:
                    return worked
                log.warning(
                    "the work loop ended unasked; starting again in %.0f s",
                    RECONNECT_PAUSE_SECONDS,
                )
            except (RedisConnectionError, RedisTimeoutError) as exc:
                if burst or (worker is not None and worker.stopping):
                    raise
                log.warning(
                    "lost Redis (%s); starting again in %.0f s", exc, RECONNECT_PAUSE_SECONDS
                )
            time.sleep(RECONNECT_PAUSE_SECONDS)
    finally:
        ctx.close()


def _new_worker(settings: Settings, redis: Redis) -> ChorusWorker:
    queue = Queue(FOLD_QUEUE, connection=redis)
    # The idle wait (worker_ttl - 15 s) bounds how often maintenance, and so the sweep, runs.
    worker = ChorusWorker(
        [queue], connection=redis, worker_ttl=settings.sweep_interval_seconds + 15
    )
    worker.sweep_interval = settings.sweep_interval_seconds
    worker.maintenance_interval = settings.sweep_interval_seconds
    return worker
