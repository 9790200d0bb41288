"""Who sees which comment: moderation's rules on the read side (decision 29).

A comment is shown in full to everyone when it is published and not deleted. One that is
pending or rejected is shown in full only to its author (with its `status` and why it is
held) and to moderators (with its flags too). To anyone else it is a placeholder while
replies they can see hang below it, as a deleted comment is, and otherwise absent: a
named read of it (`GET /v1/comments/{id}`, its context or replies) is then a 404.

The rules come in three strengths (`Visibility`), one set of statements each: what the
public lists (`public`), the public's plus the viewer's own comments (`author`), every
comment that is not deleted (`moderator`). The counts the projection keeps are the
public's (published comments); a signed-in read learns where its extra comments hang
with one statement more (`hidden_below`), so nesting replies stays bounded and exact.
"""

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.projection_tables import LIVE

if TYPE_CHECKING:
    from services.api.read_queries import CommentNode

Visibility = Literal["public", "author", "moderator"]
MAX_HIDDEN_PLANNED = 1000
"""Hidden comments of a thread (oldest first) whose place one signed-in read plans replies
for; a moderator finds any beyond them in the queue, an author by their id."""
PUBLISHED = "published"
HELD = ("pending", "rejected")

_C = LIVE.comments
VIEWER_PARAM = sa.bindparam("viewer", type_=sa.String)


@dataclass(frozen=True)
class ReadViewer:
    """The reader a comment read is for: nobody, a signed-in reader, or a moderator."""

    id: str | None = None
    moderator: bool = False

    @property
    def visibility(self) -> Visibility:
        if self.moderator:
            return "moderator"
        return "public" if self.id is None else "author"

    @property
    def cache_key(self) -> str:
        """Who the answer was made for, for its ETag: the same person reads differently as
        a moderator, so the role is part of it."""
        if self.id is None:
            return ""
        return ("moderator:" if self.moderator else "user:") + self.id

    def params(self) -> dict[str, Any]:
        """The bound parameters `listed(self.visibility)` needs."""
        return {"viewer": self.id} if self.visibility == "author" else {}

    def sees_in_full(self, author_id: str, status: str, deleted: bool) -> bool:
        return not deleted and (status == PUBLISHED or self.moderator or author_id == self.id)

    def sees_why(self, author_id: str) -> bool:
        """Whether `held_for` is shown: to the author and to moderators."""
        return self.moderator or (self.id is not None and author_id == self.id)


ANONYMOUS: ReadViewer = ReadViewer()


@cache
def listed(visibility: Visibility) -> sa.ColumnElement[bool]:
    """Which rows a listing (a page, replies) includes, placeholders too, for `visibility`."""
    with_replies = _C.c.descendant_count > 0
    if visibility == "moderator":
        return sa.or_(_C.c.deleted.is_(False), with_replies)
    public = sa.or_(sa.and_(_C.c.deleted.is_(False), _C.c.status == PUBLISHED), with_replies)
    if visibility == "public":
        return public
    return sa.or_(public, sa.and_(_C.c.author_id == VIEWER_PARAM, _C.c.deleted.is_(False)))


def may_read(viewer: ReadViewer, author_id: str, status: str, deleted: bool, below: int) -> bool:
    """Whether a comment named by id is found: a deleted one is (a placeholder), a hidden
    one only by who sees it or while replies show below it."""
    return deleted or below > 0 or viewer.sees_in_full(author_id, status, deleted)


def hidden_below(conn: Connection, thread_id: str, viewer: ReadViewer) -> Counter[str]:
    """For each comment, how many comments below it this viewer sees beyond the published
    ones (`descendant_count`): their own held ones, or a moderator's every held one."""
    if viewer.visibility == "public":
        return Counter()
    params = {"thread_id": thread_id, **viewer.params()}
    paths = conn.scalars(_hidden_statement(viewer.visibility), params)
    return Counter(a for path in paths if path for a in path.split("/"))


@cache
def _hidden_statement(visibility: Visibility) -> sa.Select[Any]:
    query = sa.select(_C.c.path).where(
        _C.c.thread_id == sa.bindparam("thread_id", type_=sa.String),
        _C.c.status.in_(HELD),  # a range of the (status, position) index each
        _C.c.deleted.is_(False),
    )
    if visibility == "author":
        query = query.where(_C.c.author_id == VIEWER_PARAM)
    return query.order_by(_C.c.position).limit(MAX_HIDDEN_PLANNED)


def mark(nodes: Iterable["CommentNode"], viewer: ReadViewer) -> None:
    """Set what each comment of a read (nested replies too) shows this viewer: in full or
    as a placeholder, why it is held (author, moderators) and its flags (moderators)."""
    for node in _walk(nodes):
        node.shown = viewer.sees_in_full(node.author_id, node.status, node.deleted)
        if node.shown and viewer.sees_why(node.author_id):
            node.reasons = node.held_for.split(",") if node.held_for else []
        if not (node.shown and viewer.moderator):
            node.flags = None
        elif node.flags is None:
            node.flags = {}


def _walk(nodes: Iterable["CommentNode"]) -> Iterator["CommentNode"]:
    for node in nodes:
        yield node
        yield from _walk(node.replies)
