"""Moderation: banning users and locking threads (moderators and admins)."""

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import ServicesDep, ThreadId, WriteContext
from services.api.inputs import InputModel
from services.api.openapi import errors
from shared.commands import BanUser, LockThread, UnbanUser

router = APIRouter(
    prefix="/v1", tags=["moderation"], responses=errors(400, 401, 403, 404, 409, 413, 422, 503)
)

UserId = Annotated[str, Path(min_length=1, max_length=200, description="The token's `sub`")]


class BanIn(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "spam"}]})

    reason: str = Field(default="", max_length=1000, examples=["spam"])


class BanState(BaseModel):
    user_id: str
    banned: bool


class ThreadLockState(BaseModel):
    id: str
    locked: bool
    version: int


@router.put("/users/{user_id}/ban", response_model=BanState)
async def ban_user(
    user_id: UserId, payload: BanIn, ctx: WriteContext, services: ServicesDep
) -> BanState:
    """Ban a user: they can no longer post, edit or like. Banning twice changes nothing."""
    banned = await services.bus.run(BanUser(user_id, payload.reason), ctx)
    return BanState.model_validate(banned, from_attributes=True)


@router.delete("/users/{user_id}/ban", response_model=BanState)
async def unban_user(user_id: UserId, ctx: WriteContext, services: ServicesDep) -> BanState:
    """Lift a user's ban."""
    unbanned = await services.bus.run(UnbanUser(user_id), ctx)
    return BanState.model_validate(unbanned, from_attributes=True)


@router.put("/threads/{thread_id}/lock", response_model=ThreadLockState)
async def lock_thread(
    thread_id: ThreadId, ctx: WriteContext, services: ServicesDep
) -> ThreadLockState:
    """Lock a thread: it accepts no new comments or edits."""
    return await _set_lock(services, thread_id, ctx, locked=True)


@router.delete("/threads/{thread_id}/lock", response_model=ThreadLockState)
async def unlock_thread(
    thread_id: ThreadId, ctx: WriteContext, services: ServicesDep
) -> ThreadLockState:
    """Unlock a thread."""
    return await _set_lock(services, thread_id, ctx, locked=False)


async def _set_lock(
    services: ServicesDep, thread_id: str, ctx: WriteContext, *, locked: bool
) -> ThreadLockState:
    saved = await services.bus.run(LockThread(thread_id, locked), ctx)
    return ThreadLockState(id=saved.id, locked=saved.locked, version=saved.version)
