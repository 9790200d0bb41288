"""The notification projection: who hears about each newly published comment.

Notifications follow publication (decision 30): a comment notifies when it is published,
at its CommentPosted if it was published at once, else at its CommentApproved, as if it
had been posted at that moment. When comment C by A is published (docs/api.md,
Notifications):
- the author of C's parent gets a `reply` notification (unless that is A);
- every other earlier commenter in C's conversation (the top-level comment C descends
  from and everything under it posted before C) gets a `conversation` notification;
- users watching the thread get a `thread` notification;
- each person at most one per comment, never A; muted threads and the preferences that
  held when C was posted (`preference_history`, looked up by C's log position) apply;
- nobody banned when C was posted hears of it, and a comment whose author was banned
  then notifies nobody (`ban_history`, looked up the same way; a suspension over by
  then is no ban).

A held comment (`pending`) notifies nobody and does not join its conversation yet:
`notification_comments` keeps what its publication will need (parent, author's name,
the excerpt, kept current by edits) with `notified` false. A comment notifies at most
once: one held by flags after it was published and then approved notifies nobody again.
A rejected comment never notifies; rejecting one that already did takes its
notifications out of the inboxes and skips its emails not sent yet
(`notification_retraction`).

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
from services.worker.notification_retraction import retract
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
# The events this projection uses.
_READ = {
    "CommentPosted",
    "CommentEdited",
    "CommentApproved",
    "CommentRejected",
    "ThreadSubscriptionChanged",
    "PersonErased",
}
_TARGETED = (ev.CommentEdited, ev.CommentApproved, ev.CommentRejected)
T = TypeVar("T")


def notification_projection(*, queue_email: bool = True) -> Projection:
    def apply(conn: Connection, thread_id: str, events: list[StoredEvent]) -> Applied:
        return _fold(conn, thread_id, events, queue_email=queue_email)

    return Projection(PROJECTION, notification_checkpoints, apply)


@dataclass
class _Comment:
    """A `notification_comments` row: where the comment sits, and, while it waits for a
    moderator, what its publication will need."""

    comment_id: str
    root_id: str
    author_id: str
    parent_id: str | None = None  # these three only for a comment posted pending
    author_name: str | None = None
    held_excerpt: str | None = None
    notified: bool = True
    new: bool = False  # not in the table yet
    changed: bool = False  # in the table, to be updated

    def row(self, thread_id: str) -> dict[str, Any]:
        return {
            "comment_id": self.comment_id,
            "thread_id": thread_id,
            "root_id": self.root_id,
            "author_id": self.author_id,
            "parent_id": self.parent_id,
            "author_name": self.author_name,
            "held_excerpt": self.held_excerpt,
            "notified": self.notified,
        }


@dataclass
class _Published:
    """A comment published in the batch (posted published, or approved), and who may hear
    of it before bans and preferences."""

    stored: StoredEvent  # the publishing event: its position and time are the comment's
    comment_id: str
    author: ev.Author
    body: str | None  # the body when posted published; None: `held` is the excerpt
    held: str | None
    candidates: dict[str, str]  # recipient -> kind; the first (most specific) reason wins

    def excerpt(self) -> str:
        return excerpt(self.body) if self.body is not None else self.held or ""


@dataclass
class _Conversations:
    """The batch's view of the thread: comments, participants and subscriptions."""

    thread_id: str
    comments: dict[str, _Comment]
    participants: dict[str, dict[str, None]]  # root_id -> insertion-ordered users
    levels: dict[str, str]  # user -> watching | muted (default levels left out)
    published: list[_Published] = field(default_factory=list)
    retracted: set[str] = field(default_factory=set)  # published, then rejected
    new_participants: list[dict[str, str]] = field(default_factory=list)
    new_levels: dict[str, str] = field(default_factory=dict)

    def subscription_changed(self, event: ev.ThreadSubscriptionChanged) -> None:
        self.new_levels[event.user_id] = event.level
        if event.level == "default":
            self.levels.pop(event.user_id, None)
        else:
            self.levels[event.user_id] = event.level

    def comment_posted(self, stored: StoredEvent, event: ev.CommentPosted) -> None:
        parent = self._comment(event.parent_id) if event.parent_id else None
        root_id = parent.root_id if parent else event.comment_id
        comment = _Comment(event.comment_id, root_id, event.author.id, new=True)
        self.comments[event.comment_id] = comment
        if event.imported_from is not None:
            # Imported: known, so that native replies to it notify as to any comment, but it
            # notifies nobody itself, now or on a rebuild, nor when a moderator approves it.
            if event.status == "published":
                self._join(comment.root_id, event.author.id)
            return
        if event.status == "published":
            self._publish(comment, parent, stored, event.author, event.body, None)
            return
        comment.parent_id, comment.author_name = event.parent_id, event.author.name
        comment.held_excerpt, comment.notified = excerpt(event.body), False

    def comment_edited(self, event: ev.CommentEdited) -> None:
        comment = self.comments.get(event.comment_id)
        if comment is not None and not comment.notified:  # what its approval will show
            comment.held_excerpt = excerpt(event.body)
            comment.changed = True

    def comment_approved(self, stored: StoredEvent, event: ev.CommentApproved) -> None:
        comment = self._comment(event.comment_id)
        if comment.notified:
            return  # published before (held by flags since, or rejected): never twice
        parent = self._comment(comment.parent_id) if comment.parent_id else None
        author = ev.Author(id=comment.author_id, name=comment.author_name or comment.author_id)
        self._publish(comment, parent, stored, author, None, comment.held_excerpt)
        comment.held_excerpt = None

    def comment_rejected(self, event: ev.CommentRejected) -> None:
        if self._comment(event.comment_id).notified:
            self.retracted.add(event.comment_id)

    def _publish(
        self,
        comment: _Comment,
        parent: _Comment | None,
        stored: StoredEvent,
        author: ev.Author,
        body: str | None,
        held: str | None,
    ) -> None:
        kinds: dict[str, str] = {}
        if parent is not None and parent.author_id != author.id:
            kinds[parent.author_id] = "reply"
        if parent is not None:
            for user in self.participants.get(comment.root_id, {}):
                kinds.setdefault(user, "conversation")
        for user, level in self.levels.items():
            if level == "watching":
                kinds.setdefault(user, "thread")
        kinds.pop(author.id, None)
        for user, level in self.levels.items():
            if level == "muted":
                kinds.pop(user, None)
        self.published.append(_Published(stored, comment.comment_id, author, body, held, kinds))
        comment.notified, comment.changed = True, True
        self._join(comment.root_id, author.id)

    def _join(self, root_id: str, user_id: str) -> None:
        """The author takes part in the conversation from now on."""
        participants = self.participants.setdefault(root_id, {})
        if user_id not in participants:
            participants[user_id] = None
            self.new_participants.append(
                {"root_id": root_id, "user_id": user_id, "thread_id": self.thread_id}
            )

    def _comment(self, comment_id: str) -> _Comment:
        comment = self.comments.get(comment_id)
        if comment is None:
            raise LookupError(f"comment {comment_id!r} is unknown to the notification fold")
        return comment


def _fold(
    conn: Connection, thread_id: str, events: list[StoredEvent], *, queue_email: bool
) -> Applied:
    """Apply a batch of one thread's events: how many emails are due now, and who was
    notified (or lost a notification: their unread count changes too).

    A `PersonErased` splits the batch: what came before it is written first, then the
    erasure is applied to the rows (`_forget`), then the rest is folded."""
    due, heard = 0, set[str]()
    start = 0
    for index, stored in enumerate(events):
        if stored.type != "PersonErased":
            continue
        before = _fold_run(conn, thread_id, events[start:index], queue_email=queue_email)
        erased = stored.to_domain()
        assert isinstance(erased, ev.PersonErased)
        due += before.emails_due
        heard |= before.notified | _forget(conn, thread_id, erased)
        start = index + 1
    rest = _fold_run(conn, thread_id, events[start:], queue_email=queue_email)
    return Applied(due + rest.emails_due, frozenset(heard | rest.notified))


def _forget(conn: Connection, thread_id: str, event: ev.PersonErased) -> set[str]:
    """A person erased (decision 33), in this thread: notifications to them and their place
    in conversations and subscriptions go; notifications about their comments keep no
    name or excerpt; their held comments keep nothing and will never notify. Returns whose
    inbox changed."""
    user, n, c = event.user_id, notifications, notification_comments
    changed = {user}
    conn.execute(n.delete().where(n.c.thread_id == thread_id, n.c.recipient_id == user))
    # Mail to them the fold queued after the erasure's own transaction deleted their rows.
    conn.execute(
        email_outbox.delete().where(
            email_outbox.c.recipient_id == user,
            email_outbox.c.comment_id.in_(
                sa.select(c.c.comment_id).where(c.c.thread_id == thread_id)
            ),
        )
    )
    for table in (conversation_participants, thread_subscriptions):
        conn.execute(table.delete().where(table.c.thread_id == thread_id, table.c.user_id == user))
    for chunk in _chunks(event.comment_ids):
        about = n.c.comment_id.in_(chunk)
        changed |= {
            row.recipient_id
            for row in conn.execute(
                n.update()
                .where(about)
                .values(actor_name="", excerpt="")
                .returning(n.c.recipient_id)
            )
        }
        conn.execute(
            c.update()
            .where(c.c.comment_id.in_(chunk))
            .values(author_name=None, held_excerpt=None, notified=True)
        )
    return changed


def _fold_run(
    conn: Connection, thread_id: str, events: list[StoredEvent], *, queue_email: bool
) -> Applied:
    """Fold events without an erasure among them."""
    if not events:
        return Applied()
    domain = [(stored, stored.to_domain()) for stored in events if stored.type in _READ]
    state = _load(conn, thread_id, [e for _, e in domain])
    for stored, event in domain:
        if isinstance(event, ev.CommentPosted):
            state.comment_posted(stored, event)
        elif isinstance(event, ev.CommentEdited):
            state.comment_edited(event)
        elif isinstance(event, ev.CommentApproved):
            state.comment_approved(stored, event)
        elif isinstance(event, ev.CommentRejected):
            state.comment_rejected(event)
        elif isinstance(event, ev.ThreadSubscriptionChanged):
            state.subscription_changed(event)

    rows: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    if state.published:
        users = {u for p in state.published for u in (p.author.id, *p.candidates)}
        first, last = state.published[0].stored.position, state.published[-1].stored.position
        history = HistoryAsOf.load(conn, users, first, last)
        for published in state.published:
            _decide(published, thread_id, history, rows, outbox if queue_email else None)
    if state.retracted:  # what the batch itself notified of them is simply not written
        rows = [row for row in rows if row["comment_id"] not in state.retracted]
        outbox = [row for row in outbox if row["comment_id"] not in state.retracted]
    _write(conn, state, rows, outbox)
    retracted_from = retract(conn, sorted(state.retracted)) if state.retracted else set()
    due = sum(1 for row in outbox if row["frequency"] == "immediate")
    return Applied(due, frozenset({row["recipient_id"] for row in rows} | retracted_from))


def fresh_thread_rows(
    thread_id: str, events: list[StoredEvent]
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The `notification_comments` and `conversation_participants` rows of a thread new to
    the log whose events notify nobody (imported: `chorus import` folds them in bulk).
    Raises `ValueError` if any event would notify someone: such a thread folds as usual."""
    state = _Conversations(thread_id, {}, {}, {})
    for stored in events:
        if stored.type not in _READ:
            continue
        event = stored.to_domain()
        if isinstance(event, ev.CommentPosted) and event.imported_from is not None:
            state.comment_posted(stored, event)
        elif isinstance(event, ev.CommentRejected):
            state.comment_rejected(event)
        else:
            raise ValueError(f"{stored.type} is not an imported comment's")
    if state.published:
        raise ValueError("an event of the thread notifies")
    return [c.row(thread_id) for c in state.comments.values()], state.new_participants


def _load(conn: Connection, thread_id: str, events: list[ev.DomainEvent]) -> _Conversations:
    """The rows the batch reads: subscriptions, the comments it decides on or edits,
    earlier parents and their conversations."""
    posts = [e for e in events if isinstance(e, ev.CommentPosted)]
    in_batch = {e.comment_id for e in posts}
    targets = {e.comment_id for e in events if isinstance(e, _TARGETED)}
    wanted = {e.parent_id for e in posts if e.parent_id} | targets
    comments = _comments(conn, sorted(wanted - in_batch))
    # An approved comment's parent: known only once the comment's own row is read.
    parents = {p for c in targets if c in comments and (p := comments[c].parent_id)}
    comments.update(_comments(conn, sorted(parents - comments.keys() - in_batch)))
    roots = {c.root_id for c in comments.values()}
    participants = _participants(conn, sorted(roots))
    publishes = bool(posts) or any(isinstance(e, ev.CommentApproved) for e in events)
    levels = _subscriptions(conn, thread_id) if publishes else {}
    return _Conversations(thread_id, comments, participants, levels)


def _comments(conn: Connection, comment_ids: list[str]) -> dict[str, _Comment]:
    comments = {}
    for chunk in _chunks(comment_ids):
        for row in conn.execute(_COMMENTS, {"ids": chunk}):
            comments[row.comment_id] = _Comment(
                row.comment_id,
                row.root_id,
                row.author_id,
                row.parent_id,
                row.author_name,
                row.held_excerpt,
                bool(row.notified),
            )
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
_C = notification_comments.c
_COMMENTS = sa.select(
    _C.comment_id,
    _C.root_id,
    _C.author_id,
    _C.parent_id,
    _C.author_name,
    _C.held_excerpt,
    _C.notified,
).where(_C.comment_id.in_(sa.bindparam("ids", expanding=True)))
_PARTICIPANTS = sa.select(
    conversation_participants.c.root_id, conversation_participants.c.user_id
).where(conversation_participants.c.root_id.in_(sa.bindparam("ids", expanding=True)))
_SUBSCRIPTIONS = sa.select(thread_subscriptions.c.user_id, thread_subscriptions.c.level).where(
    thread_subscriptions.c.thread_id == sa.bindparam("id", type_=sa.String),
    thread_subscriptions.c.level != "default",
)
_INSERT_COMMENTS = notification_comments.insert()
_UPDATE_COMMENTS = (
    notification_comments.update()
    .where(_C.comment_id == sa.bindparam("b_comment_id"))
    .values(notified=sa.bindparam("b_notified"), held_excerpt=sa.bindparam("b_held_excerpt"))
)
_INSERT_NOTIFICATIONS = notifications.insert()
_INSERT_OUTBOX = email_outbox.insert()


def _decide(
    published: _Published,
    thread_id: str,
    history: HistoryAsOf,
    rows: list[dict[str, Any]],
    outbox: list[dict[str, Any]] | None,
) -> None:
    """Apply bans and preferences as of the publication's position; add its rows."""
    stored, author = published.stored, published.author
    at = stored.recorded_at
    if history.banned(author.id, stored.position, at):
        return  # accepted in a race with the ban: it notifies nobody
    summary: str | None = None
    for user, kind in published.candidates.items():
        if history.banned(user, stored.position, at):
            continue
        notify_on, frequency = history.preferences_of(user, stored.position) or DEFAULTS
        if kind not in KINDS_FOR[notify_on]:
            continue
        if summary is None:
            summary = published.excerpt()
        rows.append(
            {
                "recipient_id": user,
                "comment_id": published.comment_id,
                "kind": kind,
                "thread_id": thread_id,
                "actor_id": author.id,
                "actor_name": author.name,
                "excerpt": summary,
                "position": stored.position,
                "created_at": at,
            }
        )
        if outbox is not None and frequency != "off":
            outbox.append(_outbox_row(user, published.comment_id, frequency, at))


def _write(
    conn: Connection,
    state: _Conversations,
    rows: list[dict[str, Any]],
    outbox: list[dict[str, Any]],
) -> None:
    new = [c.row(state.thread_id) for c in state.comments.values() if c.new]
    for chunk in _chunks(new):
        conn.execute(_INSERT_COMMENTS, chunk)
    changed = [
        {"b_comment_id": c.comment_id, "b_notified": c.notified, "b_held_excerpt": c.held_excerpt}
        for c in state.comments.values()
        if c.changed and not c.new
    ]
    if changed:
        conn.execute(_UPDATE_COMMENTS, changed)
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
