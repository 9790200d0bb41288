"""The moderation queues (decision 29): held, reported and rejected comments, oldest first.

- `pending`: held for a moderator, but not by reader flags (those are `reported`);
- `reported`: with open flags and not rejected (held by them or still published);
- `rejected`: rejected.

None includes deleted comments. A page is three statements whatever its size: the page (a
keyset range on position), the comments' parents (by primary key), and the three queues'
counts in one statement, each following the same thread filter. Pending and rejected
ranges use the (status, position) index; reported the (flag_count, position) one.
"""

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.api.comment_visibility import ReadViewer, mark
from services.api.read_queries import COMMENT_COLUMNS, CommentNode, node_of
from shared.db import read_snapshot
from shared.projection_tables import LIVE

Queue = Literal["pending", "reported", "rejected"]
QUEUES: tuple[Queue, ...] = ("pending", "reported", "rejected")

_C = LIVE.comments
_THREAD_ID = sa.bindparam("thread_id", type_=sa.String)


@dataclass(frozen=True)
class QueueItem:
    comment: CommentNode
    parent: CommentNode | None


@dataclass(frozen=True)
class QueuePage:
    items: list[QueueItem]
    counts: dict[Queue, int]
    next_key: int | None
    """The position to continue after; None: the queue ends here."""


def queue_page(
    engine: Engine,
    moderator: ReadViewer,
    queue: Queue,
    thread_id: str | None,
    after: int | None,
    limit: int,
) -> QueuePage:
    """A page of one queue (all threads, or one), with every queue's count."""
    filtered = thread_id is not None
    params: dict[str, Any] = {"thread_id": thread_id, "after": after or 0, "limit": limit + 1}
    with read_snapshot(engine) as conn:
        rows = conn.execute(_page_statement(queue, filtered), params).all()
        comments = [node_of(row[: len(COMMENT_COLUMNS)]) for row in rows[:limit]]
        parent_ids = sorted({c.parent_id for c in comments if c.parent_id is not None})
        parents: dict[str, CommentNode] = {}
        if parent_ids:
            found = conn.execute(_PARENTS, {"ids": parent_ids})
            parents = {node.comment_id: node for node in map(node_of, found)}
        counts = conn.execute(_counts_statement(filtered), params).one()
    mark([*comments, *parents.values()], moderator)
    items = [QueueItem(c, parents.get(c.parent_id or "")) for c in comments]
    next_key = rows[limit - 1].position if len(rows) > limit else None
    return QueuePage(items, dict(zip(QUEUES, map(int, counts), strict=True)), next_key)


def _in_queue(queue: Queue) -> sa.ColumnElement[bool]:
    not_deleted = _C.c.deleted.is_(False)
    if queue == "pending":
        by_flags = sa.func.coalesce(_C.c.held_for, "").contains("flags")
        return sa.and_(_C.c.status == "pending", sa.not_(by_flags), not_deleted)
    if queue == "reported":
        return sa.and_(_C.c.flag_count > 0, _C.c.status != "rejected", not_deleted)
    return sa.and_(_C.c.status == "rejected", not_deleted)


def _where(queue: Queue, filtered: bool) -> list[sa.ColumnElement[bool]]:
    where = [_in_queue(queue)]
    if filtered:
        where.append(_C.c.thread_id == _THREAD_ID)
    return where


@cache
def _page_statement(queue: Queue, filtered: bool) -> sa.Select[Any]:
    return (
        sa.select(*COMMENT_COLUMNS, _C.c.position)
        .where(*_where(queue, filtered), _C.c.position > sa.bindparam("after"))
        .order_by(_C.c.position)
        .limit(sa.bindparam("limit"))
    )


@cache
def _counts_statement(filtered: bool) -> sa.Select[Any]:
    return sa.select(
        *(
            sa.select(sa.func.count()).where(*_where(queue, filtered)).scalar_subquery()
            for queue in QUEUES
        )
    )


_PARENTS = sa.select(*COMMENT_COLUMNS).where(
    _C.c.comment_id.in_(sa.bindparam("ids", expanding=True))
)
