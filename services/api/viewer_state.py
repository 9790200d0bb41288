"""What a comment read adds for a signed-in reader: `liked_by_me` and their own `body`.

Two statements per read whatever its size, never one per comment: the reader's likes among
the read's comment ids, and the markdown source of the comments among them the reader
wrote. They run on the read's own connection, inside its snapshot.

Likes come from the write side's `comment_likes`, which is committed with the like itself:
`liked_by_me` is true as soon as the like is answered, even while `like_count`, folded by
the worker, trails it by a moment. The source comes from the projection, beside the HTML
it was rendered to, so `body` and `body_html` always match.
"""

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.projection_tables import LIVE
from shared.write_index import CommentLike

if TYPE_CHECKING:
    from services.api.read_queries import CommentNode

_LIKES: sa.Table = CommentLike.__table__  # type: ignore[attr-defined]
_C = LIVE.comments
_VIEWER = sa.bindparam("viewer", type_=sa.String)
_IDS = sa.bindparam("ids", type_=sa.String, expanding=True)
_LIKED = sa.select(_LIKES.c.comment_id).where(
    _LIKES.c.user_id == _VIEWER, _LIKES.c.comment_id.in_(_IDS)
)
_SOURCES = sa.select(_C.c.comment_id, _C.c.body).where(
    _C.c.comment_id.in_(_IDS), _C.c.author_id == _VIEWER
)


def attach_viewer_state(
    conn: Connection, listed: Iterable["CommentNode"], viewer: str | None
) -> None:
    """Set `liked_by_me` on every comment of the read (nested replies too) and `body` on
    the viewer's own; an anonymous read (`viewer` None) leaves both None."""
    if viewer is None:
        return
    nodes = list(_walk(listed))
    if not nodes:
        return
    params = {"viewer": viewer, "ids": [node.comment_id for node in nodes]}
    liked = set(conn.scalars(_LIKED, params))
    own = [node.comment_id for node in nodes if node.author_id == viewer and not node.deleted]
    sources: dict[str, str | None] = {}
    if own:
        rows = conn.execute(_SOURCES, {"viewer": viewer, "ids": own})
        sources = {row.comment_id: row.body for row in rows}
    for node in nodes:
        node.liked_by_me = node.comment_id in liked
        node.body = sources.get(node.comment_id)


def _walk(nodes: Iterable["CommentNode"]) -> Iterator["CommentNode"]:
    for node in nodes:
        yield node
        yield from _walk(node.replies)
