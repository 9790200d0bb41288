"""Thread registration and the thread's event log."""

from typing import Annotated

from fastapi import APIRouter, Query

from services.api.deps import CurrentUser, ServicesDep, ThreadId, WriteContext
from services.api.openapi import errors
from services.api.schemas import EventPublic, ThreadEventsPublic, ThreadIn, ThreadWritten
from shared.commands import FOLLOW_SITE, RegisterThread
from shared.errors import Forbidden, NotFound
from shared.validation import MAX_SQL_INTEGER

router = APIRouter(
    prefix="/v1/threads", tags=["threads"], responses=errors(400, 401, 403, 404, 409, 413, 422, 503)
)


@router.put("/{thread_id}", response_model=ThreadWritten)
async def register_thread(
    thread_id: ThreadId, payload: ThreadIn, ctx: WriteContext, services: ServicesDep
) -> ThreadWritten:
    """Register a thread or update its title, url, lock and moderation mode (admin only)."""
    moderation = None
    if "moderation" in payload.model_fields_set:
        moderation = payload.moderation or FOLLOW_SITE
    command = RegisterThread(thread_id, payload.title, payload.url, payload.locked, moderation)
    saved = await services.bus.run(command, ctx)
    return ThreadWritten.model_validate(saved, from_attributes=True)


@router.get("/{thread_id}/events", response_model=ThreadEventsPublic)
def thread_events(
    thread_id: ThreadId,
    user: CurrentUser,
    services: ServicesDep,
    after_version: Annotated[int, Query(ge=0, le=MAX_SQL_INTEGER)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ThreadEventsPublic:
    """The thread's event log, oldest first (moderators and admins)."""
    if not user.is_moderator:
        raise Forbidden("only moderators and admins may read a thread's log")
    version = services.store.stream_version(thread_id)
    if version == 0:
        raise NotFound(f"thread {thread_id!r} does not exist")
    events = services.store.read_stream(thread_id, after_version, limit=limit)
    last = events[-1].version if events else after_version
    return ThreadEventsPublic(
        thread_id=thread_id,
        version=version,
        events=[EventPublic.model_validate(e, from_attributes=True) for e in events],
        next_after_version=last if last < version else None,
    )
