"""What posting a comment checks, read in one statement.

The author (banned now, on pre-moderation, trusted), the thread (its stream version, lock
and moderation mode) and the parent comment: three reads that were a round trip each.
Posting runs inside the group committer's batch, under the append lock, so every round
trip saved here is saved from the serial part of posting (docs/scaling.md).
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.moderation_handlers import AUTHOR_FLAGS
from shared.moderation_rules import AuthorFacts
from shared.store import STREAMS
from shared.write_index import CommentState, ThreadState

_THREADS = ThreadState.__table__  # type: ignore[attr-defined]
_PARENT = CommentState.__table__.alias("parent")  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ThreadFacts:
    version: int
    locked: bool
    moderation: str | None  # the thread's own mode; None: the site's


@dataclass(frozen=True, slots=True)
class ParentFacts:
    thread_id: str
    deleted: bool
    status: str
    depth: int


@dataclass(frozen=True, slots=True)
class PostingFacts:
    banned: bool
    author: AuthorFacts
    thread: ThreadFacts | None  # None: the thread has never existed
    parent: ParentFacts | None  # None: no parent asked for, or none by that id


_AUTHOR = sa.select(*AUTHOR_FLAGS).subquery("author")
_POSTING = sa.select(
    _AUTHOR,
    STREAMS.c.version.label("thread_version"),
    _THREADS.c.locked.label("thread_locked"),
    _THREADS.c.moderation.label("thread_moderation"),
    _PARENT.c.thread_id.label("parent_thread_id"),
    _PARENT.c.deleted.label("parent_deleted"),
    _PARENT.c.status.label("parent_status"),
    _PARENT.c.depth.label("parent_depth"),
).select_from(
    _AUTHOR.outerjoin(_THREADS, _THREADS.c.thread_id == sa.bindparam("thread_id"))
    .outerjoin(STREAMS, STREAMS.c.stream_id == _THREADS.c.thread_id)
    .outerjoin(_PARENT, _PARENT.c.comment_id == sa.bindparam("parent_id"))
)


def posting_facts(
    conn: Connection, user_id: str, *, staff: bool, thread_id: str, parent_id: str | None
) -> PostingFacts:
    """All of it from one snapshot, in one round trip."""
    row = conn.execute(
        _POSTING,
        {
            "user_id": user_id,
            "now": datetime.now(UTC),
            "thread_id": thread_id,
            "parent_id": parent_id,
        },
    ).one()
    return PostingFacts(
        banned=bool(row.banned),
        author=AuthorFacts(staff=staff, premod=bool(row.premod), trusted=bool(row.trusted)),
        thread=None
        if row.thread_version is None
        else ThreadFacts(row.thread_version, bool(row.thread_locked), row.thread_moderation),
        parent=None
        if row.parent_thread_id is None
        else ParentFacts(
            row.parent_thread_id, bool(row.parent_deleted), row.parent_status, row.parent_depth
        ),
    )
