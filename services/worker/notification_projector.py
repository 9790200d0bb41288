"""The notification projection: who hears about each new comment.

When comment C by A is folded (API.md, Notifications):
- the author of C's parent gets a `reply` notification (unless that is A);
- every other earlier commenter in C's conversation (the top-level comment C descends
  from and everything under it posted before C) gets a `conversation` notification;
- users watching the thread get a `thread` notification;
- each person at most one per comment, never A; muted threads and the preferences that
  held when C was posted (`preference_history`, looked up by C's log position) apply;
- nobody banned when C was posted hears of it, and a comment whose author was banned
  then notifies nobody (`ban_history`, looked up the same way).

Everything read here is derived from the log in order, so a refold or a rebuild yields the
same rows. Email intents go to `email_outbox`, unique per (recipient, comment): a refold
cannot queue an email twice, and a rebuild queues none at all.
"""

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.worker.folding import Projection
from shared import events as ev
from shared.db import insert_ignoring_conflicts
from shared.moderation_tables import ban_history
from shared.notification_tables import (
    DEFAULT_EMAIL_FREQUENCY,
    DEFAULT_NOTIFY_ON,
    conversation_participants,
    email_outbox,
    notification_checkpoints,
    notification_comments,
    notifications,
    preference_history,
    thread_subscriptions,
)
from shared.store import StoredEvent

PROJECTION = "notifications"
EXCERPT_CHARS = 200
CHUNK = 1000
KINDS_FOR = {
    "conversations": {"reply", "conversation", "thread"},
    "replies": {"reply", "thread"},
    "none": set(),
}


def notification_projection(*, queue_email: bool = True) -> Projection:
    def apply(conn: Connection, thread_id: str, events: list[StoredEvent]) -> None:
        for event in events:
            if event.type == "CommentPosted":
                _comment_posted(conn, thread_id, event, queue_email=queue_email)
            elif event.type == "ThreadSubscriptionChanged":
                _subscription_changed(conn, thread_id, event)

    return Projection(PROJECTION, notification_checkpoints, apply)


def _subscription_changed(conn: Connection, thread_id: str, stored: StoredEvent) -> None:
    event = stored.to_domain()
    assert isinstance(event, ev.ThreadSubscriptionChanged)
    key = {"thread_id": thread_id, "user_id": event.user_id}
    if not insert_ignoring_conflicts(
        conn, thread_subscriptions, {**key, "level": event.level}, ["thread_id", "user_id"]
    ):
        conn.execute(
            thread_subscriptions.update()
            .where(
                thread_subscriptions.c.thread_id == thread_id,
                thread_subscriptions.c.user_id == event.user_id,
            )
            .values(level=event.level)
        )


def _comment_posted(
    conn: Connection, thread_id: str, stored: StoredEvent, *, queue_email: bool
) -> None:
    event = stored.to_domain()
    assert isinstance(event, ev.CommentPosted)
    author = event.author.id
    parent = _comment(conn, event.parent_id) if event.parent_id else None
    root_id = parent["root_id"] if parent else event.comment_id
    conn.execute(
        notification_comments.insert().values(
            comment_id=event.comment_id, thread_id=thread_id, root_id=root_id, author_id=author
        )
    )

    kinds: dict[str, str] = {}  # recipient -> kind; the first (most specific) reason wins
    if parent is not None and parent["author_id"] != author:
        kinds[parent["author_id"]] = "reply"
    if parent is not None:
        for user in _participants(conn, root_id):
            kinds.setdefault(user, "conversation")
    levels = _subscriptions(conn, thread_id)
    for user, level in levels.items():
        if level == "watching":
            kinds.setdefault(user, "thread")
    kinds.pop(author, None)
    for user, level in levels.items():
        if level == "muted":
            kinds.pop(user, None)
    banned = _banned_as_of(conn, [author, *kinds], stored.position)
    if author in banned:  # accepted in a race with the ban: it notifies nobody
        kinds.clear()
    for user in banned:
        kinds.pop(user, None)

    preferences = _preferences_as_of(conn, list(kinds), stored.position)
    rows = []
    outbox = []
    for user, kind in kinds.items():
        notify_on, frequency = preferences.get(user, (DEFAULT_NOTIFY_ON, DEFAULT_EMAIL_FREQUENCY))
        if kind not in KINDS_FOR[notify_on]:
            continue
        rows.append(
            {
                "recipient_id": user,
                "comment_id": event.comment_id,
                "kind": kind,
                "thread_id": thread_id,
                "actor_id": author,
                "actor_name": event.author.name,
                "excerpt": excerpt(event.body),
                "position": stored.position,
                "created_at": stored.recorded_at,
            }
        )
        if queue_email and frequency != "off":
            outbox.append(_outbox_row(user, event.comment_id, frequency, stored.recorded_at))
    for chunk in _chunks(rows):
        conn.execute(notifications.insert(), chunk)
    for chunk in _chunks(outbox):
        conn.execute(email_outbox.insert(), chunk)
    insert_ignoring_conflicts(
        conn,
        conversation_participants,
        {"root_id": root_id, "user_id": author, "thread_id": thread_id},
        ["root_id", "user_id"],
    )


def excerpt(body: str) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1].rstrip() + "…"


def due_at(frequency: str, posted_at: datetime) -> datetime:
    """Immediate mail is due at once; digests at the end of the hour or day (UTC)."""
    moment = posted_at.astimezone(UTC)
    if frequency == "hourly":
        return moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if frequency == "daily":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return moment


def _outbox_row(user: str, comment_id: str, frequency: str, posted_at: datetime) -> dict[str, Any]:
    return {
        "recipient_id": user,
        "comment_id": comment_id,
        "frequency": frequency,
        "status": "pending",
        "due_at": due_at(frequency, posted_at),
        "attempts": 0,
        "created_at": datetime.now(UTC),
    }


def _comment(conn: Connection, comment_id: str) -> dict[str, Any]:
    row = conn.execute(
        sa.select(notification_comments).where(notification_comments.c.comment_id == comment_id)
    ).first()
    if row is None:
        raise LookupError(f"parent comment {comment_id!r} is unknown to the notification fold")
    return dict(row._mapping)


def _participants(conn: Connection, root_id: str) -> list[str]:
    query = sa.select(conversation_participants.c.user_id).where(
        conversation_participants.c.root_id == root_id
    )
    return list(conn.execute(query).scalars())


def _subscriptions(conn: Connection, thread_id: str) -> dict[str, str]:
    query = sa.select(thread_subscriptions.c.user_id, thread_subscriptions.c.level).where(
        thread_subscriptions.c.thread_id == thread_id,
        thread_subscriptions.c.level != "default",
    )
    return {row.user_id: row.level for row in conn.execute(query)}


def _preferences_as_of(
    conn: Connection, users: list[str], position: int
) -> dict[str, tuple[str, str]]:
    """Each user's preferences as they stood just before `position` in the log."""
    return {
        row.user_id: (row.notify_on, row.email_frequency)
        for row in _latest_before(conn, preference_history, users, position)
    }


def _banned_as_of(conn: Connection, users: list[str], position: int) -> set[str]:
    """The users who were banned just before `position` in the log."""
    return {row.user_id for row in _latest_before(conn, ban_history, users, position) if row.banned}


def _latest_before(
    conn: Connection, history: sa.Table, users: list[str], position: int
) -> Iterator[Any]:
    """Each user's newest row of a `(user_id, position, ...)` history before `position`."""
    for chunk in (users[i : i + CHUNK] for i in range(0, len(users), CHUNK)):
        latest = (
            sa.select(history.c.user_id, sa.func.max(history.c.position).label("position"))
            .where(history.c.user_id.in_(chunk), history.c.position < position)
            .group_by(history.c.user_id)
            .subquery()
        )
        yield from conn.execute(
            sa.select(history).join(
                latest,
                sa.and_(
                    history.c.user_id == latest.c.user_id,
                    history.c.position == latest.c.position,
                ),
            )
        )


def _chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    return (rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK))
