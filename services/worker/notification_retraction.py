"""Taking back what a published comment notified, once a moderator rejects it.

A rejected comment is shown to its author only, so nobody else should be told of it any
longer: its notifications leave the inboxes, and its emails not handed to the mailer yet
are `skipped` (a finished state: no mailer claims them, retention prunes them). An email
already sent stays `sent`, and one being sent (`sending`) is left to its mailer, which
finds the notification gone when it composes and skips it too, or has sent it already.

Idempotent: a refold or a rebuild meeting the rejection again finds nothing left to take
back, and never queues anything.
"""

from collections.abc import Iterable, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.notification_tables import email_outbox, notifications

CHUNK = 1000
REASON = "the comment was rejected"

_IDS: sa.BindParameter[list[str]] = sa.bindparam("ids", expanding=True)
_RECIPIENTS = sa.select(notifications.c.recipient_id).where(notifications.c.comment_id.in_(_IDS))
_DELETE = notifications.delete().where(notifications.c.comment_id.in_(_IDS))
_SKIP_UNSENT = (
    email_outbox.update()
    .where(email_outbox.c.comment_id.in_(_IDS), email_outbox.c.status == "pending")
    .values(status="skipped", lease_until=None, last_error=REASON)
)


def retract(conn: Connection, comment_ids: Iterable[str]) -> set[str]:
    """Remove the comments' notifications and skip their unsent emails, in the caller's
    transaction; who lost a notification (their unread count changes)."""
    recipients: set[str] = set()
    for chunk in _chunks(sorted(set(comment_ids))):
        params = {"ids": chunk}
        recipients.update(conn.execute(_RECIPIENTS, params).scalars())
        conn.execute(_DELETE, params)
        conn.execute(_SKIP_UNSENT, params)
    return recipients


def _chunks(items: list[str]) -> Iterator[list[str]]:
    return (items[i : i + CHUNK] for i in range(0, len(items), CHUNK))
