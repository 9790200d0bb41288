"""Live updates of a thread, as Server-Sent Events (services/api/live_stream.py)."""

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from services.api.deps import MaybeUser, ServicesDep, ThreadId
from services.api.live_stream import EventStreamResponse, events
from services.api.openapi import errors
from shared.validation import MAX_SQL_INTEGER

router = APIRouter(prefix="/v1", tags=["threads"], responses=errors(400, 401, 404, 422, 503))

Since = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_SQL_INTEGER,
        description="Replay every change after this thread version first (a page's "
        "`version`); `Last-Event-ID`, when sent, wins",
    ),
]
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        pattern=r"^[0-9]{1,10}$",
        max_length=10,
        description="The `id` of the last event received: what EventSource sends when it "
        "reconnects",
    ),
]


@router.get(
    "/threads/{thread_id}/live",
    response_class=Response,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream"}},
)
async def live(
    thread_id: ThreadId,
    services: ServicesDep,
    user: MaybeUser,
    since: Since = None,
    last_event_id: LastEventId = None,
) -> Response:
    """Each change the fold applies to the thread, as it lands: `comment`, `edit`,
    `delete`, `like` or `thread`, with the thread version as the event id; with a token,
    the reader's unread count too."""
    start = int(last_event_id) if last_event_id is not None else since
    if start is not None and start > MAX_SQL_INTEGER:
        start = MAX_SQL_INTEGER  # beyond any version: answered with a reset
    hub, settings = services.hub, services.settings
    sub = hub.subscribe(thread_id, user.id if user is not None else None)
    stream = events(
        hub,
        sub,
        start,
        keep_alive_seconds=settings.live_keep_alive_seconds,
        retry_ms=settings.live_retry_ms,
    )
    return EventStreamResponse(stream, on_close=lambda: hub.unsubscribe(sub))
