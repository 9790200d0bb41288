"""`GET /v1/me/data`: everything Chorus holds about the caller, read in one snapshot.

The words come from `personal_data` (decision 33) joined to the events they belong to:
every comment the person wrote with each edit, and every note they left with a flag, in
log order. The rest from the tables that hold the person's other traces: `people`,
`comment_likes`, `comment_flags`, `notifications`, preferences and subscriptions.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shared.db import read_snapshot
from shared.log_tables import PERSONAL_DATA
from shared.moderation_tables import comment_flags
from shared.notification_tables import notifications, people, thread_subscriptions
from shared.personal_data import merge
from shared.store import EVENTS
from shared.timeutil import as_utc
from shared.user_handlers import current_preferences
from shared.write_index import CommentLike, CommentState

COMMENTS = CommentState.__table__  # type: ignore[attr-defined]
LIKES = CommentLike.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Profile:
    user_id: str
    name: str
    email: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Edit:
    body: str
    at: datetime


@dataclass
class MyComment:
    comment_id: str
    thread_id: str
    parent_id: str | None
    body: str  # as first posted; `edits` hold every later text, oldest first
    posted_at: datetime
    deleted: bool
    status: str
    edits: list[Edit] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MyLike:
    comment_id: str
    thread_id: str


@dataclass(frozen=True, slots=True)
class MyFlag:
    comment_id: str
    thread_id: str
    reason: str
    note: str


@dataclass(frozen=True, slots=True)
class MyNotification:
    comment_id: str
    kind: str
    thread_id: str
    actor_id: str
    actor_name: str
    excerpt: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MySubscription:
    thread_id: str
    level: str


@dataclass(frozen=True, slots=True)
class MyData:
    user_id: str
    profile: Profile | None
    comments: list[MyComment]
    likes: list[MyLike]
    flags: list[MyFlag]
    notifications: list[MyNotification]
    notify_on: str
    email_frequency: str
    subscriptions: list[MySubscription]


def my_data(engine: Engine, user_id: str) -> MyData:
    with read_snapshot(engine) as conn:
        comments, notes = _words(conn, user_id)
        notify_on, frequency = current_preferences(conn, user_id)
        return MyData(
            user_id=user_id,
            profile=_profile(conn, user_id),
            comments=comments,
            likes=[
                MyLike(row.comment_id, row.thread_id)
                for row in conn.execute(_LIKES, {"user_id": user_id})
            ],
            flags=[
                MyFlag(row.comment_id, row.thread_id, row.reason, notes.get(row.comment_id, ""))
                for row in conn.execute(_FLAGS, {"user_id": user_id})
            ],
            notifications=[
                MyNotification(
                    row.comment_id,
                    row.kind,
                    row.thread_id,
                    row.actor_id,
                    row.actor_name,
                    row.excerpt,
                    as_utc(row.created_at),
                )
                for row in conn.execute(_NOTIFICATIONS, {"user_id": user_id})
            ],
            notify_on=notify_on,
            email_frequency=frequency,
            subscriptions=[
                MySubscription(row.thread_id, row.level)
                for row in conn.execute(_SUBSCRIPTIONS, {"user_id": user_id})
            ],
        )


def _profile(conn: Connection, user_id: str) -> Profile | None:
    row = conn.execute(_PROFILE, {"user_id": user_id}).first()
    if row is None:
        return None
    return Profile(row.user_id, row.name, row.email, as_utc(row.updated_at))


def _words(conn: Connection, user_id: str) -> tuple[list[MyComment], dict[str, str]]:
    """Their comments with every edit, and their flag notes by comment, in log order."""
    comments: dict[str, MyComment] = {}
    notes: dict[str, str] = {}
    for row in conn.execute(_WORDS, {"user_id": user_id}):
        data: dict[str, Any] = merge(row.data, row.fields)
        at = as_utc(row.recorded_at)
        if row.type == "CommentPosted":
            comments[data["comment_id"]] = MyComment(
                comment_id=data["comment_id"],
                thread_id=row.stream_id,
                parent_id=data.get("parent_id"),
                body=data.get("body", ""),
                posted_at=at,
                deleted=bool(row.deleted),
                status=row.status or data.get("status", "published"),
            )
        elif row.type == "CommentEdited" and data["comment_id"] in comments:
            comments[data["comment_id"]].edits.append(Edit(data.get("body", ""), at))
        elif row.type == "CommentFlagged":
            notes[data["comment_id"]] = data.get("note", "")
    return list(comments.values()), notes


_PROFILE = sa.select(people).where(people.c.user_id == sa.bindparam("user_id"))
_WORDS = (
    sa.select(
        EVENTS.c.type,
        EVENTS.c.stream_id,
        EVENTS.c.data,
        EVENTS.c.recorded_at,
        PERSONAL_DATA.c.fields,
        COMMENTS.c.deleted,
        COMMENTS.c.status,
    )
    .select_from(PERSONAL_DATA)
    .join(EVENTS, EVENTS.c.event_id == PERSONAL_DATA.c.event_id)
    .outerjoin(COMMENTS, COMMENTS.c.comment_id == EVENTS.c.data["comment_id"].as_string())
    .where(PERSONAL_DATA.c.subject_id == sa.bindparam("user_id"))
    .order_by(EVENTS.c.position)
)
_LIKES = (
    sa.select(LIKES.c.comment_id, COMMENTS.c.thread_id)
    .join(COMMENTS, COMMENTS.c.comment_id == LIKES.c.comment_id)
    .where(LIKES.c.user_id == sa.bindparam("user_id"))
    .order_by(LIKES.c.comment_id)
)
_FLAGS = (
    sa.select(comment_flags.c.comment_id, COMMENTS.c.thread_id, comment_flags.c.reason)
    .join(COMMENTS, COMMENTS.c.comment_id == comment_flags.c.comment_id)
    .where(comment_flags.c.user_id == sa.bindparam("user_id"))
    .order_by(comment_flags.c.position)
)
_NOTIFICATIONS = (
    sa.select(notifications)
    .where(notifications.c.recipient_id == sa.bindparam("user_id"))
    .order_by(notifications.c.position.desc())
)
_SUBSCRIPTIONS = (
    sa.select(thread_subscriptions.c.thread_id, thread_subscriptions.c.level)
    .where(
        thread_subscriptions.c.user_id == sa.bindparam("user_id"),
        thread_subscriptions.c.level != "default",
    )
    .order_by(thread_subscriptions.c.thread_id)
)
