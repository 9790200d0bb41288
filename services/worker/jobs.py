"""RQ jobs: small module-level functions, enqueued by dotted path (see shared.nudges)."""

import logging
from dataclasses import asdict

from redis.exceptions import RedisError

from services.worker import folding, mailer
from services.worker.context import current
from services.worker.notification_projector import notification_projection
from services.worker.sweep import threads_behind
from shared.nudges import MAIL_PENDING_KEY, nudge_mail, pending_key

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
    if inbox.applied:
        nudge_mail(ctx.redis)  # immediate emails may have been queued: send them now
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
