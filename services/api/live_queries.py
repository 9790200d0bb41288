"""Reads behind live updates: a thread's changes from the log, as far as the projection has
folded them, and several readers' unread counts in one statement.

The changes come from the event store (`events`), never from Redis: a reader who
reconnects, or whose API process restarted, is replayed exactly what it missed. They are
bounded by the thread projection's checkpoint, so nothing is announced before a page read
can show it.

Live readers are the public (decision 29): a comment is announced when it is published,
as posted or when a moderator approves it, and one that leaves the page (held by flags,
rejected) is announced as a deletion. A comment arriving held, or a reader's flag, is
announced as `queue` with no comment id: the moderators' widgets refetch their queue at
once, and a reader learns nothing but that the queue moved.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.db import read_snapshot
from shared.notification_tables import notification_read_marks, notification_reads, notifications
from shared.projection_tables import LIVE
from shared.store import EVENTS

CHANGE_TYPES: dict[str, str | None] = {
    "CommentPosted": "comment",  # when published (`_change`)
    "CommentEdited": "edit",
    "CommentDeleted": "delete",
    "CommentLiked": "like",
    "CommentUnliked": "like",
    "CommentApproved": "comment",
    "CommentHeld": "delete",
    "CommentRejected": "delete",
    "CommentFeatured": "edit",
    "CommentUnfeatured": "edit",
    "CommentFlagged": "queue",
}
"""What each event of a thread's stream is to a live reader (None: nothing, it is not
announced); any other event is "thread"."""
MAX_USERS_PER_READ = 500


@dataclass(frozen=True)
class Change:
    version: int
    type: str
    comment_id: str | None


@dataclass(frozen=True)
class Changes:
    changes: list[Change]
    """Every change in (after, bound], in order; empty when `more`."""
    bound: int
    """min(up_to, the projection's version): how far this read reaches."""
    more: bool
    """The range held more than `limit` changes (none are returned)."""


def changes(
    engine: Engine, thread_id: str, after: int | None, up_to: int | None, limit: int
) -> Changes:
    """The thread's changes after version `after`, up to `up_to` and no further than the
    projection has folded; `after=None` reads only how far that is. Two statements in one
    snapshot, the second a range on the (stream_id, version) key that never reads bodies."""
    with read_snapshot(engine) as conn:
        folded = int(conn.execute(_FOLDED, {"thread_id": thread_id}).scalar() or 0)
        bound = folded if up_to is None else min(up_to, folded)
        if after is None or bound <= after:
            return Changes([], bound, more=False)
        params = {"thread_id": thread_id, "after": after, "bound": bound, "limit": limit + 1}
        rows = conn.execute(_CHANGES, params).all()
    if len(rows) > limit:
        return Changes([], bound, more=True)
    announced = (_change(row) for row in rows)
    return Changes([change for change in announced if change is not None], bound, more=False)


def _change(row: Any) -> Change | None:
    kind = CHANGE_TYPES.get(row.type, "thread")
    if kind is None:
        return None  # nothing the public sees changed
    if row.type == "CommentPosted" and row.status == "pending":
        kind = "queue"
    comment_id = row.comment_id if kind not in ("thread", "queue") else None
    return Change(row.version, kind, comment_id)


def unread_counts(engine: Engine, user_ids: Sequence[str]) -> dict[str, int]:
    """Each user's unread notifications (users with none: 0), a statement per 500 users."""
    counts = dict.fromkeys(user_ids, 0)
    with read_snapshot(engine) as conn:
        for start in range(0, len(user_ids), MAX_USERS_PER_READ):
            chunk = list(user_ids[start : start + MAX_USERS_PER_READ])
            for row in conn.execute(_UNREAD_COUNTS, {"user_ids": chunk}):
                counts[row.recipient_id] = int(row.unread)
    return counts


_C = LIVE.checkpoints
_N, _R, _M = notifications, notification_reads, notification_read_marks
_FOLDED = sa.select(_C.c.version).where(_C.c.thread_id == sa.bindparam("thread_id"))
_CHANGES = (
    sa.select(
        EVENTS.c.version,
        EVENTS.c.type,
        EVENTS.c.data["comment_id"].as_string().label("comment_id"),
        EVENTS.c.data["status"].as_string().label("status"),  # CommentPosted's
    )
    .where(
        EVENTS.c.stream_id == sa.bindparam("thread_id"),
        EVENTS.c.version > sa.bindparam("after"),
        EVENTS.c.version <= sa.bindparam("bound"),
    )
    .order_by(EVENTS.c.version)
    .limit(sa.bindparam("limit"))
)
# The unread count of inbox_queries, for several users: past each one's mark, not marked
# one by one.
_UNREAD_COUNTS = (
    sa.select(_N.c.recipient_id, sa.func.count().label("unread"))
    .select_from(_N.outerjoin(_M, _M.c.user_id == _N.c.recipient_id))
    .where(
        _N.c.recipient_id.in_(sa.bindparam("user_ids", expanding=True)),
        _N.c.position > sa.func.coalesce(_M.c.up_to_position, 0),
        ~sa.exists().where(_R.c.user_id == _N.c.recipient_id, _R.c.comment_id == _N.c.comment_id),
    )
    .group_by(_N.c.recipient_id)
)
