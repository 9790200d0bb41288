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
def ban_user(user_id: UserId, payload: BanIn, ctx: WriteContext, services: ServicesDep) -> BanState:
    """Ban a user: they can no longer post, edit or like. Banning twice changes nothing."""
    return BanState(**services.bus.execute(BanUser(user_id, payload.reason), ctx))


@router.delete("/users/{user_id}/ban", response_model=BanState)
def unban_user(user_id: UserId, ctx: WriteContext, services: ServicesDep) -> BanState:
    """Lift a user's ban."""
    return BanState(**services.bus.execute(UnbanUser(user_id), ctx))


@router.put("/threads/{thread_id}/lock", response_model=ThreadLockState)
def lock_thread(thread_id: ThreadId, ctx: WriteContext, services: ServicesDep) -> ThreadLockState:
    """Lock a thread: it accepts no new comments or edits."""
    return _set_lock(services, thread_id, ctx, locked=True)


@router.delete("/threads/{thread_id}/lock", response_model=ThreadLockState)
def unlock_thread(thread_id: ThreadId, ctx: WriteContext, services: ServicesDep) -> ThreadLockState:
    """Unlock a thread."""
    return _set_lock(services, thread_id, ctx, locked=False)


def _set_lock(
    services: ServicesDep, thread_id: str, ctx: WriteContext, *, locked: bool
) -> ThreadLockState:
    result = services.bus.execute(LockThread(thread_id, locked), ctx)
    return ThreadLockState(id=result["id"], locked=result["locked"], version=result["version"])
