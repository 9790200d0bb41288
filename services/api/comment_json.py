"""A comment as JSON (`CommentPublic`), as the read's viewer may see it: shared by the
thread reads and the moderation queue."""

from services.api import read_queries as rq
from services.api.cursors import CursorCodec, replies_listing
from services.api.read_schemas import AuthorPublic, CommentPublic
from shared.timeutil import as_utc

REPLIES_SORT = "oldest"


def comment_public(node: rq.CommentNode, cursors: CursorCodec) -> CommentPublic:
    """A comment as the read's viewer may see it (`comment_visibility.mark` decided): a
    placeholder (no author, no body) when deleted or held from them."""
    more = node.more_replies_after
    listing = replies_listing(node.comment_id)
    author = AuthorPublic(
        id=node.author_id,
        name=node.author_name,
        badges=node.badges.split(",") if node.badges else [],
    )
    return CommentPublic(
        id=node.comment_id,
        thread_id=node.thread_id,
        parent_id=node.parent_id,
        author=author if node.shown else None,
        body_html=node.body_html if node.shown else None,
        created_at=as_utc(node.created_at),
        edited_at=as_utc(node.edited_at),
        deleted=node.deleted,
        like_count=node.like_count,
        reply_count=node.reply_count,
        descendant_count=node.descendant_count,
        depth=node.depth,
        replies=[comment_public(reply, cursors) for reply in node.replies],
        replies_next_cursor=None
        if more is None
        else cursors.encode(listing, REPLIES_SORT, (more,)),
        liked_by_me=node.liked_by_me,
        body=node.body,
        status=node.status,
        featured=node.featured,
        held_for=node.reasons,
        flags=node.flags,
    )
