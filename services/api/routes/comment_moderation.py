"""Decisions about one comment: readers flag it; moderators approve, reject, feature."""

from typing import Annotated, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import CommentId, ServicesDep, WriteContext
from services.api.inputs import InputModel
from services.api.openapi import errors
from shared.commands import ApproveComment, FeatureComment, FlagComment, RejectComment

router = APIRouter(
    prefix="/v1/comments",
    tags=["moderation"],
    responses=errors(400, 401, 403, 404, 409, 413, 422, 503),
)


class FlagIn(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "spam", "note": ""}]})

    reason: Literal["spam", "abuse", "off_topic", "other"]
    note: str = Field(default="", max_length=1000, description="For the moderators")


class FlagState(BaseModel):
    id: str
    flag_count: int = Field(description="Open flags on the comment (since its last approval)")


class RejectIn(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "off topic"}]})

    reason: str = Field(default="", max_length=1000)


class Decided(BaseModel):
    id: str
    status: Literal["published", "rejected"]
    version: int


class FeatureState(BaseModel):
    id: str
    featured: bool
    version: int


@router.post("/{comment_id}/flags", response_model=FlagState)
async def flag_comment(
    comment_id: CommentId, payload: FlagIn, ctx: WriteContext, services: ServicesDep
) -> FlagState:
    """Report a comment to the moderators (one flag per reader; a repeat changes nothing)."""
    flagged = await services.bus.run(FlagComment(comment_id, payload.reason, payload.note), ctx)
    return FlagState(id=flagged.id, flag_count=flagged.flag_count)


@router.post("/{comment_id}/approve", response_model=Decided)
async def approve_comment(
    comment_id: CommentId, ctx: WriteContext, services: ServicesDep
) -> Decided:
    """Publish a held or rejected comment, or clear a published one's flags (moderators)."""
    decided = await services.bus.run(ApproveComment(comment_id), ctx)
    return Decided.model_validate(decided, from_attributes=True)


@router.post("/{comment_id}/reject", response_model=Decided)
async def reject_comment(
    comment_id: CommentId,
    ctx: WriteContext,
    services: ServicesDep,
    payload: Annotated[
        RejectIn | None,
        Body(openapi_examples={"reason": {"value": {"reason": "off topic"}}}),
    ] = None,
) -> Decided:
    """Refuse a comment: only its author still sees it (moderators)."""
    reason = "" if payload is None else payload.reason
    decided = await services.bus.run(RejectComment(comment_id, reason), ctx)
    return Decided.model_validate(decided, from_attributes=True)


@router.put("/{comment_id}/feature", response_model=FeatureState)
async def feature_comment(
    comment_id: CommentId, ctx: WriteContext, services: ServicesDep
) -> FeatureState:
    """Feature a comment: it comes first with `sort=featured` (moderators). Twice is once."""
    return await _feature(services, comment_id, ctx, featured=True)


@router.delete("/{comment_id}/feature", response_model=FeatureState)
async def unfeature_comment(
    comment_id: CommentId, ctx: WriteContext, services: ServicesDep
) -> FeatureState:
    """Stop featuring a comment (moderators)."""
    return await _feature(services, comment_id, ctx, featured=False)


async def _feature(
    services: ServicesDep, comment_id: str, ctx: WriteContext, *, featured: bool
) -> FeatureState:
    changed = await services.bus.run(FeatureComment(comment_id, featured), ctx)
    return FeatureState.model_validate(changed, from_attributes=True)
