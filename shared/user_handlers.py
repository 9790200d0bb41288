"""Handlers for a user's own settings: preferences, thread subscriptions, read marks.

Preferences and read marks go to the user's stream; a subscription goes to the thread's
stream, so the notification fold meets it in order with the comments.
"""

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import events as ev
from shared.commands import (
    ChangePreferences,
    ChangeSubscription,
    MarkNotificationsRead,
    RequestContext,
)
from shared.db import insert_ignoring_conflicts
from shared.errors import InvalidInput
from shared.notification_tables import (
    DEFAULT_EMAIL_FREQUENCY,
    DEFAULT_NOTIFY_ON,
    notification_read_marks,
    notification_reads,
    notifications,
    preference_history,
    user_preferences,
)
from shared.results import NotificationsMarked, Preferences
from shared.store import STREAMS, StoredEvent
from shared.streams import user_stream
from shared.validation import check_thread_id

LEVELS = ("watching", "default", "muted")
NOTIFY_ON = ("conversations", "replies", "none")
FREQUENCIES = ("immediate", "hourly", "daily", "off")
MAX_READ_IDS = 500


def current_preferences(conn: Connection, user_id: str) -> tuple[str, str]:
    row = conn.execute(
        sa.select(user_preferences.c.notify_on, user_preferences.c.email_frequency).where(
            user_preferences.c.user_id == user_id
        )
    ).first()
    return (
        (row.notify_on, row.email_frequency)
        if row
        else (DEFAULT_NOTIFY_ON, DEFAULT_EMAIL_FREQUENCY)
    )


Append = Callable[..., list[StoredEvent]]  # (conn, ctx, stream, expected, *events)


class UserHandlers:
    def __init__(self, append: Append) -> None:
        self._append = append

    def change_preferences(
        self, conn: Connection, cmd: ChangePreferences, ctx: RequestContext
    ) -> Preferences:
        notify_on, frequency = current_preferences(conn, ctx.actor.id)
        new_notify = cmd.notify_on if cmd.notify_on is not None else notify_on
        new_frequency = cmd.email_frequency if cmd.email_frequency is not None else frequency
        if new_notify not in NOTIFY_ON or new_frequency not in FREQUENCIES:
            raise InvalidInput(
                f"notify_on is one of {NOTIFY_ON}; email_frequency one of {FREQUENCIES}",
                code="invalid_preferences",
            )
        if (new_notify, new_frequency) != (notify_on, frequency):
            stored = self._append_user(
                conn,
                ctx,
                ev.PreferencesChanged(notify_on=new_notify, email_frequency=new_frequency),
            )
            values = {"notify_on": new_notify, "email_frequency": new_frequency}
            if not insert_ignoring_conflicts(
                conn, user_preferences, {"user_id": ctx.actor.id, **values}, ["user_id"]
            ):
                conn.execute(
                    user_preferences.update()
                    .where(user_preferences.c.user_id == ctx.actor.id)
                    .values(**values)
                )
            conn.execute(
                preference_history.insert().values(
                    user_id=ctx.actor.id, position=stored.position, **values
                )
            )
        return Preferences(notify_on=new_notify, email_frequency=new_frequency)

    def mark_read(
        self, conn: Connection, cmd: MarkNotificationsRead, ctx: RequestContext
    ) -> NotificationsMarked:
        user_id = ctx.actor.id
        if len(cmd.comment_ids) > MAX_READ_IDS:
            raise InvalidInput(f"at most {MAX_READ_IDS} ids at once", code="too_many_ids")
        up_to: int | None = None
        if cmd.everything:
            up_to = conn.execute(
                sa.select(sa.func.max(notifications.c.position)).where(
                    notifications.c.recipient_id == user_id
                )
            ).scalar()
        ids = sorted(set(cmd.comment_ids))
        if up_to is None and not ids:
            return NotificationsMarked()
        stored = self._append_user(
            conn, ctx, ev.NotificationsRead(comment_ids=ids, up_to_position=up_to)
        )
        read_at = stored.recorded_at
        for comment_id in ids:
            insert_ignoring_conflicts(
                conn,
                notification_reads,
                {"user_id": user_id, "comment_id": comment_id, "read_at": read_at},
                ["user_id", "comment_id"],
            )
        if up_to is not None:
            marks = notification_read_marks
            if not insert_ignoring_conflicts(
                conn,
                marks,
                {"user_id": user_id, "up_to_position": up_to, "read_at": read_at},
                ["user_id"],
            ):
                conn.execute(
                    marks.update()
                    .where(marks.c.user_id == user_id, marks.c.up_to_position < up_to)
                    .values(up_to_position=up_to, read_at=read_at)
                )
        return NotificationsMarked()

    def _append_user(
        self, conn: Connection, ctx: RequestContext, event: ev.DomainEvent
    ) -> StoredEvent:
        stream = user_stream(ctx.actor.id)
        version = conn.execute(
            sa.select(STREAMS.c.version).where(STREAMS.c.stream_id == stream)
        ).scalar()
        return self._append(conn, ctx, stream, version or 0, event)[-1]


def check_subscription(cmd: ChangeSubscription) -> None:
    check_thread_id(cmd.thread_id)
    if cmd.level not in LEVELS:
        raise InvalidInput(f"level is one of {LEVELS}", code="invalid_level")
