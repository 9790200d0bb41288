"""Reads of the thread projection: thread summaries, counts, pages of comments with replies.

Served from the projection tables only; a read never folds events. Every page costs a
bounded number of statements whatever the thread's size: one for the thread header, one
for the listed comments (a keyset range on an index), and one per level of nested replies
(each parent's first replies by the (parent_id, seq) index, UNION ALL'd). On PostgreSQL the
statements of one read share a snapshot (REPEATABLE READ), so the counts, the comments and
their replies all come from the same fold.

A page is bounded in comments too, not only in statements: at most `MAX_PAGE_COMMENTS`,
listed and nested together, the rest reachable through cursors.

A read on behalf of a signed-in reader (`viewer`) costs three statements more, whatever the
page's size: which of its comments the reader likes, and the markdown source of those
they wrote (services/api/viewer_state.py), and where the held comments they may see hang
(services/api/comment_visibility.py, which decides who sees which comment).
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from services.api.comment_visibility import (
    ANONYMOUS,
    ReadViewer,
    Visibility,
    hidden_below,
    listed,
    mark,
    may_read,
)
from services.api.viewer_state import attach_viewer_state
from shared.db import read_snapshot
from shared.errors import NotFound
from shared.log_tables import StreamRecord
from shared.projection_tables import LIVE
from shared.write_index import CommentState

Sort = Literal["oldest", "newest", "top", "featured"]
Key = tuple[int, ...]

REPLY_LEVELS = 3
"""How many levels of replies a listed comment carries below itself."""
MAX_PAGE_COMMENTS = 500
"""Comments one page holds in all: the listed ones and every reply nested below them."""
MAX_PARENTS_PER_LEVEL = 200
"""Parents whose replies one statement fetches; keeps a UNION ALL within SQLite's 500 terms."""

_C = LIVE.comments
_T = LIVE.threads
_CHECKPOINTS = LIVE.checkpoints
_COMMENT_STATE = CommentState.__table__  # type: ignore[attr-defined]
_STREAMS: sa.Table = StreamRecord.__table__  # type: ignore[attr-defined]
_COLUMNS = (
    _C.c.comment_id,
    _C.c.thread_id,
    _C.c.parent_id,
    _C.c.depth,
    _C.c.seq,
    _C.c.author_id,
    _C.c.author_name,
    _C.c.body_html,
    _C.c.created_at,
    _C.c.edited_at,
    _C.c.deleted,
    _C.c.like_count,
    _C.c.reply_count,
    _C.c.descendant_count,
    _C.c.status,
    _C.c.held_for,
    _C.c.featured,
    _C.c.badges,
    _C.c.flags,
)
# Statements are built once with bound parameters: building and compiling SQLAlchemy
# constructs per request would cost more than running them.
_THREAD_ID = sa.bindparam("thread_id", type_=sa.String)
_COMMENT_ID = sa.bindparam("comment_id", type_=sa.String)
_LIMIT = sa.bindparam("limit", type_=sa.Integer)
_AFTER_SEQ = sa.bindparam("after_seq", type_=sa.Integer)
_AFTER_LIKES = sa.bindparam("after_likes", type_=sa.Integer)
Below = Counter[str]
"""Comments below each one that the viewer sees beyond `descendant_count` (hidden_below)."""


@dataclass(slots=True)
class CommentNode:
    comment_id: str
    thread_id: str
    parent_id: str | None
    depth: int
    seq: int
    author_id: str
    author_name: str
    body_html: str | None
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    like_count: int
    reply_count: int
    descendant_count: int
    status: str
    held_for: str | None
    """The reasons it is held, joined by ","; see `reasons` for what the viewer is shown."""
    featured: bool
    badges: str | None
    flags: dict[str, int] | None
    """Open flags by reason; kept for moderators only (comment_visibility.mark)."""
    replies: list["CommentNode"] = field(default_factory=list)
    more_replies_after: int | None = None
    """Replies were cut off: the seq to continue after (0: from the first); None: all shown."""
    liked_by_me: bool | None = None
    """Whether the signed-in reader likes it; None on an anonymous read."""
    body: str | None = None
    """The markdown source, on the signed-in reader's own comments only."""
    shown: bool = True
    """False: a placeholder for this viewer (deleted, or held from them)."""
    reasons: list[str] | None = None
    """Why it is held (empty: it is not), for its author and moderators; else None."""


# `_node` builds a CommentNode from a row by position.
assert [c.name for c in _COLUMNS] == list(CommentNode.__dataclass_fields__)[: len(_COLUMNS)]


@dataclass(frozen=True)
class ThreadSummary:
    thread_id: str
    version: int
    head: int
    """The version of the thread's log (what `version` may reach); 0 if nothing is logged."""
    title: str | None
    url: str | None
    locked: bool
    comment_count: int
    participant_count: int
    last_comment_at: datetime | None


@dataclass(frozen=True)
class ThreadPage:
    thread_id: str
    version: int
    head: int
    comment_count: int
    comments: list[CommentNode]
    next_key: Key | None


@dataclass(frozen=True)
class CommentContext:
    thread_id: str
    version: int
    head: int
    ancestors: list[CommentNode]
    comment: CommentNode


@dataclass(frozen=True)
class RepliesPage:
    comment_id: str
    thread_id: str
    version: int
    head: int
    replies: list[CommentNode]
    next_key: Key | None


@dataclass(frozen=True)
class CommentRead:
    thread_id: str
    version: int
    head: int
    comment: CommentNode


def thread_summary(engine: Engine, thread_id: str) -> ThreadSummary:
    with read_snapshot(engine) as conn:
        row = conn.execute(_THREAD_SUMMARY, {"thread_id": thread_id}).one()
    if row.thread_id is None:
        if not row.head:
            raise NotFound(f"thread {thread_id!r} does not exist")
        # Written but not folded yet: it exists, the projection just has nothing to say.
        return ThreadSummary(thread_id, row.version, row.head, None, None, False, 0, 0, None)
    return ThreadSummary(
        thread_id,
        row.version,
        row.head,
        row.title,
        row.url,
        row.locked,
        row.comment_count,
        row.participant_count,
        row.last_comment_at,
    )


def thread_with_url(engine: Engine, url: str) -> str | None:
    """The id of the thread registered with `url` (the earliest, if several are), as far
    as the projection has folded; None if none is."""
    with read_snapshot(engine) as conn:
        found: str | None = conn.execute(_THREAD_WITH_URL, {"url": url}).scalar()
    return found


def comment_counts(engine: Engine, thread_ids: Sequence[str]) -> dict[str, int]:
    """Visible comments per thread, unknown threads 0, in one statement."""
    with read_snapshot(engine) as conn:
        rows = conn.execute(_COUNTS, {"thread_ids": list(thread_ids)})
        found = {row.thread_id: row.comment_count for row in rows}
    return {thread_id: int(found.get(thread_id, 0)) for thread_id in thread_ids}


MAX_THREADS_PER_CHECKPOINT_READ = 500
"""Threads one statement of `checkpoints` asks about (SQLite binds at most 32,766 values)."""


def checkpoints(engine: Engine, thread_ids: Sequence[str]) -> dict[str, int]:
    """How far the projection has folded each thread (threads not folded at all: absent)."""
    found: dict[str, int] = {}
    with read_snapshot(engine) as conn:
        for start in range(0, len(thread_ids), MAX_THREADS_PER_CHECKPOINT_READ):
            chunk = list(thread_ids[start : start + MAX_THREADS_PER_CHECKPOINT_READ])
            rows = conn.execute(_CHECKPOINTS_OF, {"thread_ids": chunk})
            found.update({row.thread_id: row.version for row in rows})
    return found


def thread_page(
    engine: Engine,
    thread_id: str,
    sort: Sort,
    after: Key | None,
    limit: int,
    per_parent: int,
    viewer: ReadViewer = ANONYMOUS,
) -> ThreadPage:
    """One page of the thread's top-level comments, each with its first replies nested."""
    params: dict[str, Any] = {"thread_id": thread_id, "limit": limit + 1, **viewer.params()}
    if after is not None:
        params["after_seq"] = after[-1]
        if sort == "top":
            params["after_likes"] = after[0]
    # Featured pages: which part of the listing the cursor is in picks the statement.
    after_featured = after[0] if sort == "featured" and after is not None else None
    statement = _top_level_statement(sort, after is not None, viewer.visibility, after_featured)
    with read_snapshot(engine) as conn:
        version, comment_count, head = conn.execute(_PAGE_HEADER, params).one()
        rows = conn.execute(statement, params).all()
        comments = [_node(row) for row in rows[:limit]]
        below = hidden_below(conn, thread_id, viewer)
        _attach_replies(conn, comments, per_parent, viewer, below)
        attach_viewer_state(conn, comments, viewer.id)
    mark(comments, viewer)
    next_key = _sort_key(comments[-1], sort) if len(rows) > limit else None
    return ThreadPage(thread_id, version, head, int(comment_count or 0), comments, next_key)


def replies_page(
    engine: Engine,
    comment_id: str,
    after: int,
    limit: int,
    per_parent: int,
    viewer: ReadViewer = ANONYMOUS,
) -> RepliesPage:
    """One page of a comment's direct replies, oldest first, each with its first replies."""
    params = {"comment_id": comment_id, "after_seq": after, "limit": limit + 1, **viewer.params()}
    with read_snapshot(engine) as conn:
        parent = conn.execute(_REPLIED_COMMENT, params).first()
        if parent is None:
            raise NotFound(f"comment {comment_id!r} does not exist")
        thread_id, version, head = parent.thread_id, parent.version, parent.head
        below = hidden_below(conn, thread_id, viewer)
        _require_readable(viewer, parent, below)
        rows = conn.execute(_replies_statement(viewer.visibility), params).all()
        replies = [_node(row) for row in rows[:limit]]
        _attach_replies(conn, replies, per_parent, viewer, below)
        attach_viewer_state(conn, replies, viewer.id)
    mark(replies, viewer)
    next_key = (replies[-1].seq,) if len(rows) > limit else None
    return RepliesPage(comment_id, thread_id, version, head, replies, next_key)


def comment(
    engine: Engine, comment_id: str, per_parent: int, viewer: ReadViewer = ANONYMOUS
) -> CommentRead:
    """One comment (a placeholder if deleted) with its first replies nested; one held from
    the viewer is not found unless replies they can see hang below it."""
    with read_snapshot(engine) as conn:
        row = conn.execute(_COMMENT, {"comment_id": comment_id}).first()
        if row is None:
            raise NotFound(f"comment {comment_id!r} does not exist")
        *columns, version, head = row
        node = _node(columns)
        below = hidden_below(conn, node.thread_id, viewer)
        _require_readable(viewer, node, below)
        _attach_replies(conn, [node], per_parent, viewer, below)
        attach_viewer_state(conn, [node], viewer.id)
    mark([node], viewer)
    return CommentRead(node.thread_id, version, head, node)


def thread_version(engine: Engine, thread_id: str) -> int:
    """How far the projection has folded the thread (0: not at all), in one primary key
    lookup: all that answering a conditional read with 304 costs."""
    with engine.connect() as conn:
        return int(conn.execute(_THREAD_VERSION, {"thread_id": thread_id}).scalar_one())


def thread_of_written_comment(engine: Engine, comment_id: str) -> str | None:
    """The thread of a comment the log holds, folded or not (the write side's index)."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(_COMMENT_STATE.c.thread_id).where(_COMMENT_STATE.c.comment_id == comment_id)
        ).scalar()
    return None if found is None else str(found)


def comment_context(
    engine: Engine, comment_id: str, per_parent: int, viewer: ReadViewer = ANONYMOUS
) -> CommentContext:
    """A comment with its first replies, and its ancestors root first without theirs: what
    a link to a deep reply shows. Two statements and the replies' levels: the comment's
    `path` names its ancestors (fewer than the nesting cap), fetched by primary key."""
    with read_snapshot(engine) as conn:
        row = conn.execute(_CONTEXT, {"comment_id": comment_id}).first()
        if row is None:
            raise NotFound(f"comment {comment_id!r} does not exist")
        node = _node(row[: len(_COLUMNS)])
        path, version, head = row[len(_COLUMNS) :]
        below = hidden_below(conn, node.thread_id, viewer)
        _require_readable(viewer, node, below)
        ancestors: list[CommentNode] = []
        if path:
            rows = conn.execute(_ANCESTORS, {"ids": path.split("/")})
            ancestors = [_node(r) for r in rows]
        for ancestor in ancestors:
            # Their replies are left out: each has a cursor to them, as a cut page has.
            ancestor.more_replies_after = 0 if _planned(ancestor, below) > 0 else None
        _attach_replies(conn, [node], per_parent, viewer, below)
        attach_viewer_state(conn, [*ancestors, node], viewer.id)
    mark([*ancestors, node], viewer)
    return CommentContext(node.thread_id, version, head, ancestors, node)


def _require_readable(viewer: ReadViewer, found: Any, below: Below) -> None:
    """404 for a comment named by id that is held from this viewer (comment_visibility)."""
    planned = found.descendant_count + below[found.comment_id]
    if not may_read(viewer, found.author_id, found.status, found.deleted, planned):
        raise NotFound(f"comment {found.comment_id!r} does not exist")


def _planned(node: CommentNode, below: Below) -> int:
    """An upper bound of the direct replies the viewer sees below `node`, placeholders
    included: the published comments below it and the held ones the viewer sees."""
    return node.descendant_count + below[node.comment_id]


def _attach_replies(
    conn: Connection,
    listed: list[CommentNode],
    per_parent: int,
    viewer: ReadViewer = ANONYMOUS,
    below: Below | None = None,
) -> None:
    """Nest up to `per_parent` replies per comment, REPLY_LEVELS deep: one statement a level,
    and no more than `MAX_PAGE_COMMENTS` comments in the page with the listed ones.

    The budget is spent level by level, parents in page order: each parent is planned
    min(per_parent, `_planned`) replies (its visible direct replies, placeholders
    included, never exceed its descendant_count and the held ones the viewer sees below
    it), as far as the budget goes; what a level
    planned but did not find goes to the next. A comment with visible descendants whose
    replies are not all shown (more than its share, the depth limit, the per-level parent
    cap, or an exhausted budget) gets `more_replies_after`, from which the replies listing
    continues.
    """
    below = below or Counter()
    budget = MAX_PAGE_COMMENTS - len(listed)
    frontier = listed
    for _level in range(REPLY_LEVELS):
        # `_planned` > 0 exactly when some direct reply is visible (shown or placeholder).
        parents = [node for node in frontier if _planned(node, below) > 0]
        if not parents:
            return
        shares: dict[str, int] = {}
        for node in parents:
            share = min(per_parent, _planned(node, below), budget)
            if share == 0 or len(shares) == MAX_PARENTS_PER_LEVEL:
                node.more_replies_after = 0
                continue
            shares[node.comment_id] = share
            budget -= share
        children: dict[str, list[CommentNode]] = {comment_id: [] for comment_id in shares}
        if shares:
            # One more than the share: whether more exist decides the cursor.
            limits = {cid: share + 1 for cid, share in shares.items()}
            for row in _children(conn, limits, viewer):
                children[row.parent_id].append(_node(row))
        frontier = []
        for node in parents:
            share = shares.get(node.comment_id, 0)
            if share == 0:
                continue
            replies = sorted(children[node.comment_id], key=lambda n: n.seq)
            node.replies = replies[:share]
            budget += share - len(node.replies)
            if len(replies) > share:
                node.more_replies_after = node.replies[-1].seq
            frontier.extend(node.replies)
    for node in frontier:
        if _planned(node, below) > 0:
            node.more_replies_after = 0


def _node(row: Sequence[Any]) -> CommentNode:
    """Every statement that lists comments selects exactly `_COLUMNS`, in CommentNode's order."""
    return CommentNode(*row)


# For other reads of comments (the moderation queue): what to select, and the node of a row.
COMMENT_COLUMNS = _COLUMNS
node_of = _node


def _sort_key(node: CommentNode, sort: Sort) -> Key:
    if sort == "top":
        return (node.like_count, node.seq)
    if sort == "featured":
        return (int(node.featured), node.seq)
    return (node.seq,)


def _version_of(thread_id: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    """The thread's checkpoint as a scalar expression (0 when nothing is folded yet)."""
    folded = (
        sa.select(_CHECKPOINTS.c.version)
        .where(_CHECKPOINTS.c.thread_id == thread_id)
        .scalar_subquery()
    )
    return sa.func.coalesce(folded, 0)


def _head_of(thread_id: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    """The version of the thread's log (0 when nothing is logged): a primary key lookup in
    the log's `streams`, in the same statement as the page, so refusing a `min_version`
    beyond it costs no round trip."""
    logged = sa.select(_STREAMS.c.version).where(_STREAMS.c.stream_id == thread_id)
    return sa.func.coalesce(logged.scalar_subquery(), 0)


@cache
def _top_level_statement(
    sort: Sort, paged: bool, visibility: Visibility, after_featured: int | None = None
) -> sa.Select[Any]:
    top_level = (_C.c.thread_id == _THREAD_ID, _C.c.depth == 0, listed(visibility))
    if sort == "top":
        return _most_liked_first(top_level, paged)
    if sort == "featured":
        return _featured_first(top_level, after_featured)
    query = sa.select(*_COLUMNS).where(*top_level)
    if sort == "oldest":
        if paged:
            query = query.where(_C.c.seq > _AFTER_SEQ)
        return query.order_by(_C.c.seq).limit(_LIMIT)
    if paged:
        query = query.where(_C.c.seq < _AFTER_SEQ)
    return query.order_by(_C.c.seq.desc()).limit(_LIMIT)


def _most_liked_first(top_level: tuple[sa.ColumnElement[bool], ...], paged: bool) -> sa.Select[Any]:
    """Most liked first, oldest first among equals, in index ranges only.

    The index (thread_id, depth, like_count, seq) runs one direction; "likes descending,
    seq ascending" runs both, so a plain ORDER BY would sort a whole group of equally
    liked comments (often most of a big thread, at 0 likes) to pick a page from it.
    Instead: `edge` = the like count at which the page ends at the latest (found by a
    backward scan of `limit` entries); the page is then taken from the rest of the
    cursor's group, every comment with more likes than `edge` (fewer than `limit`), and
    the first of those with exactly `edge`.
    """
    likes, seq = _C.c.like_count, _C.c.seq
    parts: list[sa.Select[Any]] = []
    below = list(top_level)
    if paged:
        parts.append(_oldest_first(*top_level, likes == _AFTER_LIKES, seq > _AFTER_SEQ))
        below.append(likes < _AFTER_LIKES)
    ahead = sa.select(likes).where(*below).order_by(likes.desc(), seq.desc()).limit(_LIMIT)
    edge = sa.select(sa.func.min(ahead.subquery().c.like_count)).scalar_subquery()
    parts.append(sa.select(*_COLUMNS).where(*below, likes > edge))
    # Not `*below`: given `likes < after_likes` too, SQLite scans that range, not the group.
    parts.append(_oldest_first(*top_level, likes == edge))
    union = sa.union_all(*(sa.select(part.subquery()) for part in parts)).subquery()
    return sa.select(union).order_by(union.c.like_count.desc(), union.c.seq).limit(_LIMIT)


def _featured_first(
    top_level: tuple[sa.ColumnElement[bool], ...], after_featured: int | None
) -> sa.Select[Any]:
    """Featured comments first, then the rest, each oldest first: two ranges of the
    (thread_id, depth, seq) index, the first of them skipped once the cursor has left it.

    Featured comments are few and not indexed as such: the featured range filters the
    thread's top level for them, a cost that grows with the thread's top-level comments.
    """
    featured, seq = _C.c.featured, _C.c.seq
    parts: list[sa.Select[Any]] = []
    if after_featured != 0:  # on the first page, or still among the featured ones
        paged = (seq > _AFTER_SEQ,) if after_featured == 1 else ()
        parts.append(_oldest_first(*top_level, featured.is_(True), *paged))
    rest = (seq > _AFTER_SEQ,) if after_featured == 0 else ()
    parts.append(_oldest_first(*top_level, featured.is_(False), *rest))
    if len(parts) == 1:
        return parts[0]
    union = sa.union_all(*(sa.select(part.subquery()) for part in parts)).subquery()
    return sa.select(union).order_by(union.c.featured.desc(), union.c.seq).limit(_LIMIT)


def _oldest_first(*where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return sa.select(*_COLUMNS).where(*where).order_by(_C.c.seq).limit(_LIMIT)


def _children(conn: Connection, limits: dict[str, int], viewer: ReadViewer) -> sa.CursorResult[Any]:
    """Each parent's first `limits[parent]` visible replies: an index range on
    (parent_id, seq) each."""
    visibility = viewer.visibility
    if conn.dialect.name == "postgresql":
        arrays = {"parents": list(limits), "limits": list(limits.values()), **viewer.params()}
        return conn.execute(_children_lateral(visibility), arrays)
    params: dict[str, Any] = viewer.params()
    for i, (parent_id, limit) in enumerate(limits.items()):
        params[f"parent_{i}"], params[f"limit_{i}"] = parent_id, limit
    return conn.execute(_children_statement(len(limits), visibility), params)


@cache
def _children_lateral(visibility: Visibility) -> sa.Select[Any]:
    """PostgreSQL: one short statement for any number of parents (a LATERAL limited scan
    per parent, each with its own limit), where the UNION ALL form below grows to ~75 KB
    of SQL for 200 parents."""
    parents = (
        sa.func.unnest(
            sa.bindparam("parents", type_=postgresql.ARRAY(sa.String)),
            sa.bindparam("limits", type_=postgresql.ARRAY(sa.Integer)),
        )
        .table_valued("id", "share")
        .render_derived()
    )
    replies = (
        sa.select(*_COLUMNS)
        .where(_C.c.parent_id == parents.c.id, listed(visibility))
        .order_by(_C.c.seq)
        .limit(parents.c.share)
        .lateral()
    )
    return sa.select(replies).select_from(parents.join(replies, sa.true()))


@lru_cache(maxsize=3 * MAX_PARENTS_PER_LEVEL)
def _children_statement(parents: int, visibility: Visibility) -> sa.Select[Any]:
    """Each parent's first visible replies (its `limit_i`: one more than shown, to see if
    more exist).

    One limited SELECT per parent, each an index range on (parent_id, seq), UNION ALL'd;
    SQLite accepts LIMIT inside a compound only in a subquery, so every part is wrapped.
    """
    parts = [
        sa.select(
            sa.select(*_COLUMNS)
            .where(
                _C.c.parent_id == sa.bindparam(f"parent_{i}", type_=sa.String),
                listed(visibility),
            )
            .order_by(_C.c.seq)
            .limit(sa.bindparam(f"limit_{i}", type_=sa.Integer))
            .subquery()
        )
        for i in range(parents)
    ]
    if parents == 1:
        return parts[0]
    union = sa.union_all(*parts).subquery()
    return sa.select(union)


_THREAD_SUMMARY = (
    sa.select(
        _version_of(_THREAD_ID).label("version"),
        _head_of(_THREAD_ID).label("head"),
        _T,
    )
    # One row whether or not the projection has the thread: the join fills it in if so.
    .select_from(sa.select(sa.literal_column("1").label("one")).subquery("one_row"))
    .outerjoin(_T, _T.c.thread_id == _THREAD_ID)
)
_THREAD_WITH_URL = (
    sa.select(_T.c.thread_id)
    .where(_T.c.url == sa.bindparam("url", type_=sa.String))
    .order_by(_T.c.created_at, _T.c.thread_id)
    .limit(1)
)
_COUNTS = sa.select(_T.c.thread_id, _T.c.comment_count).where(
    _T.c.thread_id.in_(sa.bindparam("thread_ids", expanding=True))
)
_CHECKPOINTS_OF = sa.select(_CHECKPOINTS.c.thread_id, _CHECKPOINTS.c.version).where(
    _CHECKPOINTS.c.thread_id.in_(sa.bindparam("thread_ids", expanding=True))
)
_PAGE_HEADER = sa.select(
    _version_of(_THREAD_ID),
    sa.select(_T.c.comment_count).where(_T.c.thread_id == _THREAD_ID).scalar_subquery(),
    _head_of(_THREAD_ID),
)
_THREAD_VERSION = sa.select(_version_of(_THREAD_ID))
# The comment with its thread's version and log head, from the same snapshot as the
# comment itself: the ETag must never name a version newer than what the answer shows.
_COMMENT = sa.select(*_COLUMNS, _version_of(_C.c.thread_id), _head_of(_C.c.thread_id)).where(
    _C.c.comment_id == _COMMENT_ID
)
_REPLIED_COMMENT = sa.select(
    _C.c.comment_id,
    _C.c.thread_id,
    _C.c.author_id,
    _C.c.status,
    _C.c.deleted,
    _C.c.descendant_count,
    _version_of(_C.c.thread_id).label("version"),
    _head_of(_C.c.thread_id).label("head"),
).where(_C.c.comment_id == _COMMENT_ID)


@cache
def _replies_statement(visibility: Visibility) -> sa.Select[Any]:
    return _oldest_first(_C.c.parent_id == _COMMENT_ID, _C.c.seq > _AFTER_SEQ, listed(visibility))


_CONTEXT = sa.select(
    *_COLUMNS, _C.c.path, _version_of(_C.c.thread_id), _head_of(_C.c.thread_id)
).where(_C.c.comment_id == _COMMENT_ID)
_ANCESTORS = (
    sa.select(*_COLUMNS)
    .where(_C.c.comment_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(_C.c.depth)
)
