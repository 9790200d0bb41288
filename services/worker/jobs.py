"""RQ jobs: small module-level functions, enqueued by dotted path (see shared.nudges)."""

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import ParamSpec, TypeVar

from redis.exceptions import RedisError
from rq import get_current_job

from services.worker import folding, mailer, retention
from services.worker.context import current
from services.worker.notification_projector import notification_projection
from services.worker.sweep import threads_behind
from shared.fold_progress import FoldProgress, announce
from shared.nudges import (
    MAIL_PENDING_KEY,
    claim_dirty,
    enqueue_prune,
    hand_on,
    nudge_mail,
    start_fold,
)
from shared.request_context import bound_request_id

log = logging.getLogger(__name__)
# How long one fold job goes on folding other dirty threads after its own.
DRAIN_SECONDS = 1.0
P = ParamSpec("P")
R = TypeVar("R")


def logs_request_id(job: Callable[P, R]) -> Callable[P, R]:
    """The job's log lines carry the id of the request that queued it (from the job's meta)."""

    @functools.wraps(job)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        current_job = get_current_job()
        meta = current_job.meta if current_job is not None else {}
        with bound_request_id(meta.get("request_id")):
            return job(*args, **kwargs)

    return run


@logs_request_id
def fold_thread(thread_id: str) -> dict[str, int]:
    """Fold everything pending for one thread into every projection of threads, then the
    threads other nudges left dirty meanwhile (shared.nudges), for up to DRAIN_SECONDS."""
    ctx = current()
    try:
        start_fold(ctx.redis, thread_id)  # before reading the log: new events nudge again
    except RedisError as exc:
        log.warning("could not clear the nudge flag of %s: %s", thread_id, exc)
    try:
        tree, inbox = fold_one(thread_id)
    finally:
        # Even after a failed fold: the dirty threads may be counting on this job.
        drained = drain_dirty(time.monotonic() + DRAIN_SECONDS)
    return {
        "applied": tree.applied,
        "dead_lettered": tree.dead_lettered + inbox.dead_lettered,
        "version": tree.version,
        "notifications_version": inbox.version,
        "other_threads": drained,
    }


def drain_dirty(deadline: float) -> int:
    """Fold dirty threads until none is left or `deadline` passes; how many were folded.

    What is still dirty then (or after a failed fold) is handed to a new job unless
    enough wait, so one job never holds the queue's FIFO turn for long: mail jobs and the
    folds queued behind it come next."""
    ctx = current()
    folded = 0
    try:
        while (left := deadline - time.monotonic()) > 0:
            claim = claim_dirty(ctx.redis, ctx.settings.fold_coalesce_ms)
            if claim is None:
                return folded
            if claim.thread_id is None:
                time.sleep(min(claim.wait_seconds, left))  # let its events gather
                continue
            with bound_request_id(None):  # not the request that queued this job
                fold_one(claim.thread_id)
            folded += 1
    except RedisError as exc:
        log.warning("could not drain the dirty threads (Redis: %s); the sweep will", exc)
        return folded
    finally:
        try:
            hand_on(ctx.redis)
        except RedisError as exc:
            log.warning("could not hand on the dirty threads (Redis: %s)", exc)
    return folded


def fold_one(thread_id: str) -> tuple[folding.FoldResult, folding.FoldResult]:
    """One thread's fold into both projections, then its announcements."""
    ctx = current()
    # Both projections fold in the same transactions, from one read of the log.
    tree, inbox = folding.fold_all(
        ctx.engine,
        ctx.store,
        thread_id,
        [folding.thread_projection(), notification_projection()],
        batch_size=ctx.settings.fold_batch_size,
    )
    if tree.applied or tree.dead_lettered or inbox.notified:
        # Committed: wake the reads waiting for this thread (`min_version`) and its live
        # subscribers in every API, and tell them whose unread count moved.
        notified = tuple(sorted(inbox.notified))
        announce(ctx.redis, FoldProgress(thread_id, tree.version, notified))
    if inbox.emails_due:
        nudge_mail(ctx.redis)  # send them now; digests wait for the periodic mail run
    if tree.applied or inbox.applied:
        log.info(
            "folded thread %s up to version %d",
            thread_id,
            tree.version,
            extra={"thread_id": thread_id, "applied": tree.applied, "notified": inbox.applied},
        )
    return tree, inbox


def sweep() -> int:
    """Nudge every thread whose projection is behind its log."""
    ctx = current()
    behind = threads_behind(ctx.engine)
    for thread_id in behind:
        ctx.nudger.nudge(thread_id)
    if behind:
        log.info("sweep: %d threads were behind their log", len(behind))
    return len(behind)


@logs_request_id
def send_due_emails() -> dict[str, int]:
    """Send the emails that are due (one run of the mailer; see services.worker.mailer)."""
    ctx = current()
    try:
        # Cleared before claiming: rows queued from now on nudge again.
        ctx.redis.delete(MAIL_PENDING_KEY)
    except RedisError as exc:
        log.warning("could not clear the mail nudge flag: %s", exc)
    summary = mailer.send_due_emails(ctx.engine, ctx.settings)
    if summary.claimed >= ctx.settings.mail_batch_size or summary.released:
        nudge_mail(ctx.redis)  # more is due: let the next run (on any worker) take it
    return asdict(summary)


def prune() -> dict[str, int | bool]:
    """Delete expired idempotency keys and finished outbox rows (services.worker.retention)."""
    ctx = current()
    summary = retention.prune_expired(ctx.engine, ctx.settings)
    if summary.idempotency_keys or summary.outbox_rows:
        log.info(
            "pruned %d idempotency keys and %d outbox rows",
            summary.idempotency_keys,
            summary.outbox_rows,
        )
    if summary.more:
        try:
            enqueue_prune(ctx.redis)  # the rest next, behind the folds queued meanwhile
        except RedisError as exc:
            log.warning("could not queue the next retention run (Redis: %s)", exc)
    return asdict(summary)
