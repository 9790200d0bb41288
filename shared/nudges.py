"""Nudges: RQ jobs that tell a worker "thread T has new events; catch up".

A nudge carries no data, so losing one costs latency (the periodic sweep finds the
thread) and repeating one costs nothing (folding is idempotent). Nudges coalesce:
a per-thread flag is set with NX before enqueueing, and the fold job clears it
before it reads the log, so a burst of comments on one thread queues one job.
"""

import logging
import threading
import time
from collections.abc import Mapping

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

FOLD_QUEUE = "chorus-fold"
FOLD_JOB = "services.worker.jobs.fold_thread"
SWEEP_JOB = "services.worker.jobs.sweep"
SWEEP_LEASE_KEY = "chorus:sweep-lease"
# Mail jobs share the fold queue: FIFO, so mail never starves behind a busy fold queue.
MAIL_JOB = "services.worker.jobs.send_due_emails"
MAIL_PENDING_KEY = "chorus:mail-pending"
MAIL_LEASE_KEY = "chorus:mail-lease"
MAIL_INTERVAL_SECONDS = 5
# Retention runs (services/worker/retention.py): cheap when nothing has expired.
PRUNE_JOB = "services.worker.jobs.prune"
PRUNE_LEASE_KEY = "chorus:prune-lease"
PRUNE_INTERVAL_SECONDS = 300
# A flag outliving a lost job only delays the next nudge by this long.
PENDING_TTL_SECONDS = 30

log = logging.getLogger(__name__)


def pending_key(thread_id: str) -> str:
    return f"chorus:fold-pending:{thread_id}"


class Nudger:
    """Enqueues fold jobs; never lets a Redis outage fail the write that caused them."""

    def __init__(self, redis: Redis, *, pause_after_failure: float = 2.0) -> None:
        self.redis = redis
        self.queue = Queue(FOLD_QUEUE, connection=redis)
        self.pause_after_failure = pause_after_failure
        self._paused_until = 0.0

    def nudge(self, thread_id: str, *, request_id: str | None = None) -> bool:
        """True if a job is queued (now or already); False if Redis could not be reached."""
        return self.nudge_many({thread_id: request_id})

    def nudge_many(self, threads: Mapping[str, str | None]) -> bool:
        """Nudge each thread (id -> the request id its job should carry) in one round trip,
        plus one enqueue per thread that had no job pending. False if Redis is unreachable."""
        if time.monotonic() < self._paused_until:
            return False
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for thread_id in threads:
                    pipe.set(pending_key(thread_id), "1", nx=True, ex=PENDING_TTL_SECONDS)
                flags = pipe.execute()
            for (thread_id, request_id), newly_pending in zip(threads.items(), flags, strict=True):
                if newly_pending:
                    self.queue.enqueue(
                        FOLD_JOB,
                        thread_id,
                        meta={"request_id": request_id},
                        result_ttl=0,
                        failure_ttl=7 * 24 * 3600,
                    )
        except RedisError as exc:
            # The events are committed; the sweep will fold them. Don't hammer a dead Redis.
            self._paused_until = time.monotonic() + self.pause_after_failure
            named = ", ".join(list(threads)[:10]) + (", ..." if len(threads) > 10 else "")
            log.warning(
                "could not nudge thread(s) %s (Redis: %s); the sweep will catch up", named, exc
            )
            return False
        return True


class NudgeThread:
    """Sends nudges from a thread of its own, so that the committer answers its callers and
    starts the next batch without waiting on Redis (decision 16).

    What arrives while a send is under way is merged, one entry per thread (the first
    request id wins), and sent next. A nudge lost here (a crash, a Redis outage) costs
    only latency: the workers' periodic sweep finds the thread.
    """

    def __init__(self, nudger: Nudger) -> None:
        self.nudger = nudger
        self._pending: dict[str, str | None] = {}
        self._changed = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def add(self, threads: Mapping[str, str | None]) -> None:
        with self._changed:
            if self._closed:
                return
            for thread_id, request_id in threads.items():
                self._pending.setdefault(thread_id, request_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._send, name="nudge", daemon=True)
                self._thread.start()
            self._changed.notify()

    def close(self) -> None:
        """Send what is pending, then stop."""
        with self._changed:
            self._closed = True
            thread = self._thread
            self._changed.notify()
        if thread is not None:
            thread.join(timeout=5)

    def _send(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._closed:
                    self._changed.wait()
                if not self._pending:
                    return
                threads, self._pending = self._pending, {}
            try:
                self.nudger.nudge_many(threads)
            except Exception:
                log.exception("nudging failed; the sweep will find these threads")


def enqueue_sweep_if_due(redis: Redis, interval_seconds: int) -> bool:
    """Queue a sweep unless one was queued in the last `interval_seconds` (by any worker)."""
    if not redis.set(SWEEP_LEASE_KEY, "1", nx=True, ex=interval_seconds):
        return False
    Queue(FOLD_QUEUE, connection=redis).enqueue(SWEEP_JOB, result_ttl=0, failure_ttl=24 * 3600)
    return True


def nudge_mail(redis: Redis) -> bool:
    """Queue one mailer run unless one is already queued; never raises on a Redis outage.

    The fold calls this after writing immediate outbox rows; the mail job clears the flag
    before it claims, so rows written during a run queue the next one.
    """
    try:
        if redis.set(MAIL_PENDING_KEY, "1", nx=True, ex=PENDING_TTL_SECONDS):
            Queue(FOLD_QUEUE, connection=redis).enqueue(
                MAIL_JOB, result_ttl=0, failure_ttl=24 * 3600
            )
    except RedisError as exc:
        # The rows are in the outbox; the workers' periodic mail run will send them.
        log.warning("could not queue a mailer run (Redis: %s)", exc)
        return False
    return True


def enqueue_mail_if_due(redis: Redis, interval_seconds: int = MAIL_INTERVAL_SECONDS) -> bool:
    """Queue a mailer run unless one was queued in the last `interval_seconds` (by any worker).

    This is what sends digests when they fall due and retries after backoffs: nothing
    else nudges the mailer then.
    """
    if not redis.set(MAIL_LEASE_KEY, "1", nx=True, ex=interval_seconds):
        return False
    return nudge_mail(redis)


def enqueue_prune_if_due(redis: Redis, interval_seconds: int = PRUNE_INTERVAL_SECONDS) -> bool:
    """Queue a retention run unless one was queued in the last `interval_seconds` (by any
    worker), like the sweep: any live worker's maintenance pass re-arms it."""
    if not redis.set(PRUNE_LEASE_KEY, "1", nx=True, ex=interval_seconds):
        return False
    enqueue_prune(redis)
    return True


def enqueue_prune(redis: Redis) -> None:
    Queue(FOLD_QUEUE, connection=redis).enqueue(PRUNE_JOB, result_ttl=0, failure_ttl=24 * 3600)
