"""RQ jobs: small module-level functions, enqueued by dotted path (see shared.nudges)."""

import logging

from redis.exceptions import RedisError

from services.worker import folding
from services.worker.context import current
from services.worker.notification_projector import notification_projection
from services.worker.sweep import threads_behind
from shared.nudges import pending_key

log = logging.getLogger(__name__)


def fold_thread(thread_id: str) -> dict[str, int]:
    """Fold everything pending for one thread into every projection of threads."""
    ctx = current()
    try:
        # Cleared before reading the log: an event committed from now on nudges again.
        ctx.redis.delete(pending_key(thread_id))
    except RedisError as exc:
        log.warning("could not clear the nudge flag of %s: %s", thread_id, exc)
    batch = ctx.settings.fold_batch_size
    tree = folding.fold_thread(ctx.engine, ctx.store, thread_id, batch_size=batch)
    inbox = folding.fold(
        ctx.engine, ctx.store, thread_id, notification_projection(), batch_size=batch
    )
    return {
        "applied": tree.applied,
        "dead_lettered": tree.dead_lettered + inbox.dead_lettered,
        "version": tree.version,
        "notifications_version": inbox.version,
    }


def sweep() -> int:
    """Nudge every thread whose projection is behind its log."""
    ctx = current()
    behind = threads_behind(ctx.engine)
    for thread_id in behind:
        ctx.nudger.nudge(thread_id)
    if behind:
        log.info("sweep: %d threads were behind their log", len(behind))
    return len(behind)
