"""The notification projection: who hears about each new comment.

When comment C by A is folded (docs/api.md, Notifications):
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

A batch is folded in three steps, with a few statements per batch rather than per comment:
load what the batch's comments need (the thread's subscriptions, the parents and
conversations they reply to); work out each comment's candidates in log order, keeping
comments, participants and subscriptions of the batch in memory; then load the users'
ban and preference history once (`HistoryAsOf`), decide, and write every row in bulk.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from services.worker.folding import Applied, Projection
from services.worker.history_as_of import HistoryAsOf
from shared import events as ev
from shared.notification_tables import (
    DEFAULT_EMAIL_FREQUENCY,
    DEFAULT_NOTIFY_ON,
    conversation_participants,
    email_outbox,
    notification_checkpoints,
    notification_comments,
    notifications,
    thread_subscriptions,
)
from shared.rendering import plain_text
from shared.store import StoredEvent

PROJECTION = "notifications"
EXCERPT_CHARS = 200
CHUNK = 1000
KINDS_FOR = {
    "conversations": {"reply", "conversation", "thread"},
    "replies": {"reply", "thread"},
    "none": set(),
}
DEFAULTS = (DEFAULT_NOTIFY_ON, DEFAULT_EMAIL_FREQUENCY)
_READ = {"CommentPosted", "ThreadSubscriptionChanged"}  # the events this projection uses
T = TypeVar("T")


def notification_projection(*, queue_email: bool = True) -> Projection:
    def apply(conn: Connection, thread_id: str, events: list[StoredEvent]) -> Applied:
        return _fold(conn, thread_id, events, queue_email=queue_email)

    return Projection(PROJECTION, notification_checkpoints, apply)


@dataclass
class _Posted:
    """A comment of the batch, and who may hear of it before bans and preferences."""

    stored: StoredEvent
    event: ev.CommentPosted
    root_id: str
    candidates: dict[str, str]  # recipient -> kind; the first (most specific) reason wins


@dataclass
class _Conversations:
    """The batch's view of the thread: comments, participants and subscriptions."""

    thread_id: str
    comments: dict[str, dict[str, Any]]  # comment_id -> {root_id, author_id}
    participants: dict[str, dict[str, None]]  # root_id -> insertion-ordered users
    levels: dict[str, str]  # user -> watching | muted (default levels left out)
    posted: list[_Posted] = field(default_factory=list)
    new_participants: list[dict[str, str]] = field(default_factory=list)
    new_levels: dict[str, str] = field(default_factory=dict)

    def subscription_changed(self, event: ev.ThreadSubscriptionChanged) -> None:
        self.new_levels[event.user_id] = event.level
        if event.level == "default":
            self.levels.pop(event.user_id, None)
        else:
            self.levels[event.user_id] = event.level

    def comment_posted(self, stored: StoredEvent, event: ev.CommentPosted) -> None:
        author = event.author.id
        parent = self._comment(event.parent_id) if event.parent_id else None
        root_id = parent["root_id"] if parent else event.comment_id
        self.comments[event.comment_id] = {"root_id": root_id, "author_id": author}

        kinds: dict[str, str] = {}
        if parent is not None and parent["author_id"] != author:
            kinds[parent["author_id"]] = "reply"
        if parent is not None:
            for user in self.participants.get(root_id, {}):
                kinds.setdefault(user, "conversation")
        for user, level in self.levels.items():
            if level == "watching":
                kinds.setdefault(user, "thread")
        kinds.pop(author, None)
        for user, level in self.levels.items():
            if level == "muted":
                kinds.pop(user, None)
        self.posted.append(_Posted(stored, event, root_id, kinds))

        participants = self.participants.setdefault(root_id, {})
        if author not in participants:
            participants[author] = None
            self.new_participants.append(
                {"root_id": root_id, "user_id": author, "thread_id": self.thread_id}
            )

    def _comment(self, comment_id: str) -> dict[str, Any]:
        comment = self.comments.get(comment_id)
        if comment is None:
            raise LookupError(f"parent comment {comment_id!r} is unknown to the notification fold")
        return comment


def _fold(
    conn: Connection, thread_id: str, events: list[StoredEvent], *, queue_email: bool
) -> Applied:
    """Apply a batch of one thread's events: how many emails are due now, and who was
    notified."""
    domain = [(stored, stored.to_domain()) for stored in events if stored.type in _READ]
    state = _load(conn, thread_id, [e for _, e in domain if isinstance(e, ev.CommentPosted)])
    for stored, event in domain:
        if isinstance(event, ev.CommentPosted):
            state.comment_posted(stored, event)
        elif isinstance(event, ev.ThreadSubscriptionChanged):
            state.subscription_changed(event)

    rows: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    if state.posted:
        users = {u for p in state.posted for u in (p.event.author.id, *p.candidates)}
        first, last = state.posted[0].stored.position, state.posted[-1].stored.position
        history = HistoryAsOf.load(conn, users, first, last)
        for posted in state.posted:
            _decide(posted, thread_id, history, rows, outbox if queue_email else None)
    _write(conn, state, rows, outbox)
    due = sum(1 for row in outbox if row["frequency"] == "immediate")
    return Applied(due, frozenset(row["recipient_id"] for row in rows))


def _load(conn: Connection, thread_id: str, posts: list[ev.CommentPosted]) -> _Conversations:
    """The rows the batch reads: subscriptions, earlier parents and their conversations."""
    in_batch = {e.comment_id for e in posts}
    parents = _comments(conn, sorted({e.parent_id for e in posts if e.parent_id} - in_batch))
    participants = _participants(conn, sorted({c["root_id"] for c in parents.values()}))
    levels = _subscriptions(conn, thread_id) if posts else {}
    return _Conversations(thread_id, parents, participants, levels)


def _comments(conn: Connection, comment_ids: list[str]) -> dict[str, dict[str, Any]]:
    comments = {}
    for chunk in _chunks(comment_ids):
        for row in conn.execute(_COMMENTS, {"ids": chunk}):
            comments[row.comment_id] = {"root_id": row.root_id, "author_id": row.author_id}
    return comments


def _participants(conn: Connection, root_ids: list[str]) -> dict[str, dict[str, None]]:
    participants: dict[str, dict[str, None]] = {}
    for chunk in _chunks(root_ids):
        for row in conn.execute(_PARTICIPANTS, {"ids": chunk}):
            participants.setdefault(row.root_id, {})[row.user_id] = None
    return participants


def _subscriptions(conn: Connection, thread_id: str) -> dict[str, str]:
    return {row.user_id: row.level for row in conn.execute(_SUBSCRIPTIONS, {"id": thread_id})}


# Built once: building and keying statements costs more CPU than a small batch's rows.
_COMMENTS = sa.select(
    notification_comments.c.comment_id,
    notification_comments.c.root_id,
    notification_comments.c.author_id,
).where(notification_comments.c.comment_id.in_(sa.bindparam("ids", expanding=True)))
_PARTICIPANTS = sa.select(
    conversation_participants.c.root_id, conversation_participants.c.user_id
).where(conversation_participants.c.root_id.in_(sa.bindparam("ids", expanding=True)))
_SUBSCRIPTIONS = sa.select(thread_subscriptions.c.user_id, thread_subscriptions.c.level).where(
    thread_subscriptions.c.thread_id == sa.bindparam("id", type_=sa.String),
    thread_subscriptions.c.level != "default",
)
_INSERT_COMMENTS = notification_comments.insert()
_INSERT_NOTIFICATIONS = notifications.insert()
_INSERT_OUTBOX = email_outbox.insert()


def _decide(
    posted: _Posted,
    thread_id: str,
    history: HistoryAsOf,
    rows: list[dict[str, Any]],
    outbox: list[dict[str, Any]] | None,
) -> None:
    """Apply bans and preferences as of the comment's position; add its rows."""
    event, stored = posted.event, posted.stored
    author = event.author.id
    if history.banned(author, stored.position):
        return  # accepted in a race with the ban: it notifies nobody
    summary = excerpt(event.body)
    for user, kind in posted.candidates.items():
        if history.banned(user, stored.position):
            continue
        notify_on, frequency = history.preferences_of(user, stored.position) or DEFAULTS
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
                "excerpt": summary,
                "position": stored.position,
                "created_at": stored.recorded_at,
            }
        )
        if outbox is not None and frequency != "off":
            outbox.append(_outbox_row(user, event.comment_id, frequency, stored.recorded_at))


def _write(
    conn: Connection,
    state: _Conversations,
    rows: list[dict[str, Any]],
    outbox: list[dict[str, Any]],
) -> None:
    if state.posted:
        conn.execute(
            _INSERT_COMMENTS,
            [
                {
                    "comment_id": p.event.comment_id,
                    "thread_id": state.thread_id,
                    "root_id": p.root_id,
                    "author_id": p.event.author.id,
                }
                for p in state.posted
            ],
        )
    for chunk in _chunks(rows):
        conn.execute(_INSERT_NOTIFICATIONS, chunk)
    for chunk in _chunks(outbox):
        conn.execute(_INSERT_OUTBOX, chunk)
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    for chunk in _chunks(state.new_participants):
        conn.execute(
            insert(conversation_participants).on_conflict_do_nothing(
                index_elements=["root_id", "user_id"]
            ),
            chunk,
        )
    if state.new_levels:
        upsert = insert(thread_subscriptions)
        conn.execute(
            upsert.on_conflict_do_update(
                index_elements=["thread_id", "user_id"], set_={"level": upsert.excluded.level}
            ),
            [
                {"thread_id": state.thread_id, "user_id": user, "level": level}
                for user, level in state.new_levels.items()
            ],
        )


def excerpt(body: str) -> str:
    """Plain text: an inbox or an email shows the words, not the markdown around them."""
    return plain_text(body, EXCERPT_CHARS)


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


def _chunks(items: list[T]) -> Iterable[list[T]]:
    return (items[i : i + CHUNK] for i in range(0, len(items), CHUNK))
