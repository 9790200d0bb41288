"""Posting, editing, deleting and liking comments.

Write routes are `async`: they await the committer (`CommandBus.run`) on the event loop,
so a slow commit holds no thread of the pool, and the wait is bounded (decision 17).
"""

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
async def post_comment(
    thread_id: ThreadId, payload: CommentIn, ctx: WriteContext, services: ServicesDep
) -> CommentCreated:
    """Post a comment, or a reply when `parent_id` is given. Honours `Idempotency-Key`."""
    posted = await services.bus.run(PostComment(thread_id, payload.body, payload.parent_id), ctx)
    return CommentCreated.model_validate(posted, from_attributes=True)


@router.patch("/comments/{comment_id}", response_model=CommentWritten, dependencies=[EditingLimit])
async def edit_comment(
    comment_id: CommentId, payload: CommentEditIn, ctx: WriteContext, services: ServicesDep
) -> CommentWritten:
    """Replace a comment's body (its author only)."""
    edited = await services.bus.run(EditComment(comment_id, payload.body), ctx)
    return CommentWritten.model_validate(edited, from_attributes=True)


@router.delete("/comments/{comment_id}", response_model=CommentWritten)
async def delete_comment(
    comment_id: CommentId, ctx: WriteContext, services: ServicesDep
) -> CommentWritten:
    """Soft-delete a comment (its author, a moderator or an admin)."""
    deleted = await services.bus.run(DeleteComment(comment_id), ctx)
    return CommentWritten.model_validate(deleted, from_attributes=True)


@router.put("/comments/{comment_id}/like", response_model=LikeState, dependencies=[LikingLimit])
async def like_comment(
    comment_id: CommentId, ctx: WriteContext, services: ServicesDep
) -> LikeState:
    """Like a comment; liking twice counts once."""
    likes = await services.bus.run(LikeComment(comment_id), ctx)
    return LikeState.model_validate(likes, from_attributes=True)


@router.delete("/comments/{comment_id}/like", response_model=LikeState, dependencies=[LikingLimit])
async def unlike_comment(
    comment_id: CommentId, ctx: WriteContext, services: ServicesDep
) -> LikeState:
    """Take a like back; unliking what was never liked changes nothing."""
    likes = await services.bus.run(UnlikeComment(comment_id), ctx)
    return LikeState.model_validate(likes, from_attributes=True)
