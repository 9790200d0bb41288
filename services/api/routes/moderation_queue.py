"""The moderation queue (moderators and admins): what waits for a decision, oldest first."""

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.api.comment_json import comment_public
from services.api.comment_visibility import ReadViewer
from services.api.cursors import MAX_CURSOR_CHARS, CursorCodec
from services.api.deps import CurrentUser, Cursors, ServicesDep
from services.api.openapi import errors
from services.api.queue_queries import Queue, QueueItem, queue_page
from services.api.read_schemas import CommentPublic
from shared.errors import Forbidden
from shared.validation import MAX_THREAD_ID_CHARS, THREAD_ID_PATTERN

router = APIRouter(
    prefix="/v1/moderation", tags=["moderation"], responses=errors(400, 401, 403, 422, 503)
)
MAX_LIMIT = 100
QUEUE_SORT = "position"


class QueueCommentPublic(CommentPublic):
    parent: CommentPublic | None = Field(
        description="The comment it answers, without its replies; null for a top-level one"
    )


class QueueCounts(BaseModel):
    pending: int = Field(description="Held for a moderator (not by reader flags)")
    reported: int = Field(description="With open reader flags, not rejected")
    rejected: int


class QueuePagePublic(BaseModel):
    comments: list[QueueCommentPublic]
    counts: QueueCounts = Field(description="Each queue's size, following `thread_id`")
    next_cursor: str | None


@router.get("/queue", response_model=QueuePagePublic)
def moderation_queue(
    user: CurrentUser,
    services: ServicesDep,
    cursors: Cursors,
    queue: Queue = "pending",
    thread_id: Annotated[
        str | None,
        Query(
            pattern=THREAD_ID_PATTERN,
            max_length=MAX_THREAD_ID_CHARS,
            description="Only this thread's comments (and counts)",
        ),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
) -> QueuePagePublic:
    """Held (`pending`), `reported` or `rejected` comments, oldest first, each with its
    status, why it is held, its flags by reason and its parent."""
    if not user.is_moderator:
        raise Forbidden("only moderators and admins may read the moderation queue")
    listing = _listing(queue, thread_id)
    after = None if cursor is None else cursors.decode(cursor, listing, QUEUE_SORT, 1)[0]
    moderator = ReadViewer(user.id, moderator=True)
    page = queue_page(services.engine, moderator, queue, thread_id, after, limit)
    return QueuePagePublic(
        comments=[_item(item, cursors) for item in page.items],
        counts=QueueCounts(**page.counts),
        next_cursor=None
        if page.next_key is None
        else cursors.encode(listing, QUEUE_SORT, (page.next_key,)),
    )


def _listing(queue: Queue, thread_id: str | None) -> str:
    """A cursor belongs to one queue and one filter: replayed elsewhere, it is refused."""
    return f"queue:{queue}:{thread_id or ''}"


def _item(item: QueueItem, cursors: CursorCodec) -> QueueCommentPublic:
    parent = None if item.parent is None else comment_public(item.parent, cursors)
    return QueueCommentPublic(**dict(comment_public(item.comment, cursors)), parent=parent)
