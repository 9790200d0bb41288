"""One reader's Server-Sent Events stream: framing, catch-up, then live until it goes.

Events carry `id: <thread version>` only for changes and resets, so `Last-Event-ID` (which
EventSource sends when it reconnects) is always the last change the reader was given.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.api.live_hub import Item, LiveHub, Reset, Subscriber
from services.api.live_queries import Change

log = logging.getLogger(__name__)
KEEP_ALIVE = ": keep-alive\n\n"


def frame(item: Item) -> str:
    data: dict[str, Any]
    if isinstance(item, Change):
        data = {"type": item.type, "version": item.version}
        if item.comment_id is not None:
            data["comment_id"] = item.comment_id
        return f"id: {item.version}\ndata: {json.dumps(data)}\n\n"
    if isinstance(item, Reset):
        data = {"type": "reset", "version": item.version}
        return f"id: {item.version}\ndata: {json.dumps(data)}\n\n"
    return f"data: {json.dumps({'type': 'unread', 'count': item.count})}\n\n"


async def events(
    hub: LiveHub,
    sub: Subscriber,
    since: int | None,
    *,
    keep_alive_seconds: float,
    retry_ms: int,
) -> AsyncIterator[str]:
    """`retry:` advice, what the reader missed after `since`, then each change as the fold
    applies it, a keep-alive comment when nothing was sent for `keep_alive_seconds`. A reset
    ends the stream: the reader reloads at its version and reconnects from there."""
    try:
        yield f"retry: {retry_ms}\n\n"
        try:
            missed, sent = await hub.catch_up(sub, since)
        except SQLAlchemyError as exc:
            log.warning("could not catch a live reader of %s up: %s", sub.thread_id, exc)
            return  # the reader reconnects after `retry` and is replayed from its place
        for item in missed:
            yield frame(item)
            if isinstance(item, Reset):
                return
        while sub.dropped is None:
            try:
                async with asyncio.timeout(keep_alive_seconds):
                    item = await sub.queue.get()
            except TimeoutError:
                yield KEEP_ALIVE
                continue
            if isinstance(item, Change):
                if item.version <= sent:
                    continue  # the catch-up had it already
                sent = item.version
            yield frame(item)
            if isinstance(item, Reset):
                return
        yield frame(sub.dropped)
    finally:
        hub.unsubscribe(sub)


class EventStreamResponse(StreamingResponse):
    """A `text/event-stream` response that runs `on_close` however it ends: finished,
    the client gone (Starlette cancels the stream), or the server stopping. Without it, a
    stream cancelled before its first chunk would never run its generator's `finally`."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], None]) -> None:
        super().__init__(
            content,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self._on_close = on_close
        self._content = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()
            aclose = getattr(self._content, "aclose", None)
            if aclose is not None:
                await aclose()
