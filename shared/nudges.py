"""Nudges: RQ jobs that tell a worker "thread T has new events; catch up".

A nudge carries no data, so losing one costs latency (the periodic sweep finds the
thread) and repeating one costs nothing (folding is idempotent). Nudges coalesce twice:

- per thread: a flag is set with NX before anything else, and whoever folds the thread
  clears it before reading the log, so a burst of comments on one thread costs one nudge;
- across threads, by backlog: a newly nudged thread joins the set of dirty threads, and
  a fold job is queued for it only while fewer than `MAX_QUEUED_FOLDS` fold jobs wait to
  start. Every fold job, once it has folded its own thread, folds the dirty threads it
  pops until the set is empty (`claim_dirty`), so when the workers are behind one job
  folds many threads and RQ's fixed cost per job (~3 ms of CPU) is paid once for them.
  When they keep up, each nudge queues its own job, at once, as before (decision 23).

Every dirty thread is covered: it was added either with a job of its own, or while
`MAX_QUEUED_FOLDS` jobs were waiting to start, each of which drains the set after it
starts. A worker killed after claiming a thread loses only that fold's latency: the
thread's flag is cleared when it is claimed, so the next event or the sweep nudges again.
"""

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

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
DIRTY_KEY = "chorus:fold-dirty"
QUEUED_FOLDS_KEY = "chorus:fold-queued"
# Fold jobs waiting to start, at most, while threads are dirty: 2 keeps two workers busy
# (each started job frees its slot at once, so more workers still each get one).
MAX_QUEUED_FOLDS = 2
# The count of waiting jobs is rebuilt from zero this often, so a count left too high
# (a job lost with its queue) cannot stop nudges for longer.
QUEUED_FOLDS_TTL_SECONDS = 10

# KEYS: the dirty set, the waiting-job count, then one pending flag per thread.
# ARGV: flag ttl, MAX_QUEUED_FOLDS, count ttl, then the thread ids (in KEYS' order).
# Returns the newly dirty threads that get a job of their own (the count is raised for them).
_NUDGE = """
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
local fresh = {}
for i = 3, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('ZADD', KEYS[1], 'NX', ms, ARGV[i + 1])
    fresh[#fresh + 1] = ARGV[i + 1]
  end
end
local waiting = tonumber(redis.call('GET', KEYS[2]) or '0')
local chosen = {}
for i = 1, math.min(#fresh, tonumber(ARGV[2]) - waiting) do chosen[i] = fresh[i] end
if #chosen > 0 then
  redis.call('INCRBY', KEYS[2], #chosen)
  if waiting <= 0 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
end
return chosen
"""

# A fold job starts: it no longer waits, and its own thread is no longer dirty or pending.
# KEYS: the waiting-job count, the dirty set, the thread's flag. ARGV: the thread id.
_START = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
"""

# Take the longest-dirty thread to fold now if it has been dirty for `ARGV[2]` ms, clearing
# its flag (an event from now on nudges again). KEYS: the dirty set. ARGV: the flag key
# prefix, the ms. Returns {thread id}, {"", ms to wait} if it is not due yet, or {} if none.
_CLAIM = """
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #oldest == 0 then return {} end
local now = redis.call('TIME')
local wait = tonumber(oldest[2]) + tonumber(ARGV[2]) - (now[1] * 1000 + math.floor(now[2] / 1000))
if wait > 0 then return {'', wait} end
redis.call('ZREM', KEYS[1], oldest[1])
redis.call('DEL', ARGV[1] .. oldest[1])
return {oldest[1]}
"""

# A job leaving threads dirty (its time was up) hands one of them to a new job, unless
# MAX_QUEUED_FOLDS jobs wait already (they will drain the set).
# KEYS: the dirty set, the waiting-job count. ARGV: MAX_QUEUED_FOLDS, count ttl.
_HAND_ON = """
local waiting = tonumber(redis.call('GET', KEYS[2]) or '0')
if waiting >= tonumber(ARGV[1]) then return nil end
local thread = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
if not thread then return nil end
redis.call('INCR', KEYS[2])
if waiting <= 0 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return thread
"""

log = logging.getLogger(__name__)


PENDING_PREFIX = "chorus:fold-pending:"


def pending_key(thread_id: str) -> str:
    return PENDING_PREFIX + thread_id


def start_fold(redis: Redis, thread_id: str) -> None:
    """What a fold job does first: free its waiting slot, take its thread off the dirty
    set and clear its flag, before it reads the log."""
    redis.eval(_START, 3, QUEUED_FOLDS_KEY, DIRTY_KEY, pending_key(thread_id), thread_id)


@dataclass(frozen=True)
class Claim:
    """What `claim_dirty` found: a thread to fold now, or how long until the next is due."""

    thread_id: str | None = None
    wait_seconds: float = 0.0


def claim_dirty(redis: Redis, coalesce_ms: int) -> Claim | None:
    """The thread dirty the longest, to fold now (its flag cleared) if it has been dirty
    for `coalesce_ms`; else how long until it has; None when no thread is dirty."""
    found = redis.eval(_CLAIM, 1, DIRTY_KEY, PENDING_PREFIX, coalesce_ms)
    if not found:
        return None
    if found[0]:
        return Claim(thread_id=found[0].decode())
    return Claim(wait_seconds=int(found[1]) / 1000)


def hand_on(redis: Redis) -> bool:
    """Queue a fold job for a thread still dirty, unless enough jobs wait already; True if
    one was queued."""
    thread = redis.eval(
        _HAND_ON, 2, DIRTY_KEY, QUEUED_FOLDS_KEY, MAX_QUEUED_FOLDS, QUEUED_FOLDS_TTL_SECONDS
    )
    if not isinstance(thread, bytes):
        return False
    enqueue_fold(Queue(FOLD_QUEUE, connection=redis), thread.decode(), None)
    return True


def enqueue_fold(queue: Queue, thread_id: str, request_id: str | None) -> None:
    queue.enqueue(
        FOLD_JOB,
        thread_id,
        meta={"request_id": request_id},
        result_ttl=0,
        failure_ttl=7 * 24 * 3600,
    )


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
        plus one enqueue per newly dirty thread that gets a job of its own (see the module
        docstring). False if Redis is unreachable."""
        if time.monotonic() < self._paused_until:
            return False
        try:
            ids = list(threads)
            chosen = self.redis.eval(
                _NUDGE,
                2 + len(ids),
                DIRTY_KEY,
                QUEUED_FOLDS_KEY,
                *(pending_key(thread_id) for thread_id in ids),
                PENDING_TTL_SECONDS,
                MAX_QUEUED_FOLDS,
                QUEUED_FOLDS_TTL_SECONDS,
                *ids,
            )
            for raw in chosen:
                thread_id = raw.decode()
                enqueue_fold(self.queue, thread_id, threads[thread_id])
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
