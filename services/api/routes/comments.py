"""Posting, editing, deleting and liking comments."""

from fastapi import APIRouter

from services.api.deps import CommentId, ServicesDep, ThreadId, WriteContext
from services.api.openapi import errors
from services.api.rate_limit import EditingLimit, LikingLimit, PostingLimit
from services.api.schemas import (
    CommentCreated,
    CommentEditIn,
    CommentIn,
    CommentWritten,
    LikeState,
)
from shared.commands import (
    DeleteComment,
    EditComment,
    LikeComment,
    PostComment,
    UnlikeComment,
)

router = APIRouter(
    prefix="/v1", tags=["comments"], responses=errors(400, 401, 403, 404, 409, 413, 422, 429, 503)
)


@router.post(
    "/threads/{thread_id}/comments",
    status_code=201,
    response_model=CommentCreated,
    dependencies=[PostingLimit],
)
def post_comment(
    thread_id: ThreadId, payload: CommentIn, ctx: WriteContext, services: ServicesDep
) -> CommentCreated:
    """Post a comment, or a reply when `parent_id` is given. Honours `Idempotency-Key`."""
    command = PostComment(thread_id, payload.body, payload.parent_id)
    return CommentCreated(**services.bus.execute(command, ctx))


@router.patch("/comments/{comment_id}", response_model=CommentWritten, dependencies=[EditingLimit])
def edit_comment(
    comment_id: CommentId, payload: CommentEditIn, ctx: WriteContext, services: ServicesDep
) -> CommentWritten:
    """Replace a comment's body (its author only)."""
    return CommentWritten(**services.bus.execute(EditComment(comment_id, payload.body), ctx))


@router.delete("/comments/{comment_id}", response_model=CommentWritten)
def delete_comment(
    comment_id: CommentId, ctx: WriteContext, services: ServicesDep
) -> CommentWritten:
    """Soft-delete a comment (its author, a moderator or an admin)."""
    return CommentWritten(**services.bus.execute(DeleteComment(comment_id), ctx))


@router.put("/comments/{comment_id}/like", response_model=LikeState, dependencies=[LikingLimit])
def like_comment(comment_id: CommentId, ctx: WriteContext, services: ServicesDep) -> LikeState:
    """Like a comment; liking twice counts once."""
    return LikeState(**services.bus.execute(LikeComment(comment_id), ctx))


@router.delete("/comments/{comment_id}/like", response_model=LikeState, dependencies=[LikingLimit])
def unlike_comment(comment_id: CommentId, ctx: WriteContext, services: ServicesDep) -> LikeState:
    """Take a like back; unliking what was never liked changes nothing."""
    return LikeState(**services.bus.execute(UnlikeComment(comment_id), ctx))
