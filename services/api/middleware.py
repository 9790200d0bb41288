"""ASGI middleware: request ids, a byte limit enforced before any parsing, and no NUL
or lone surrogate in a path or query string."""

import json
import re
import uuid
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.request_context import request_id_var
from shared.validation import has_unsafe_characters

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


class RequestIdMiddleware:
    """Takes a caller's `X-Request-ID` (or makes one), echoes it, and logs with it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuses request bodies over `max_bytes` with 413, by header or while streaming."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        too_large = False
        answered = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # The app may turn our exception into its own error (FastAPI answers 400):
            # whatever it says once the limit is crossed is replaced by the 413.
            nonlocal answered
            if too_large:
                if message["type"] == "http.response.start" and not answered:
                    await self._refuse(send)
                answered = True
                return
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            if not answered:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = f"the request body is over {self.max_bytes} bytes"
        await _send_json(send, 413, "body_too_large", message, close=True)


class UnsafeTextMiddleware:
    """Refuses (422 `invalid_characters`) a request whose path or query holds a NUL or a
    lone surrogate once percent-decoded: the rule `InputModel` applies to bodies.

    Before routing, so no route, parameter type or unmatched path can let one through to
    a database (PostgreSQL refuses NUL in text) or a log.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_unsafe_text(scope):
            await _send_json(
                send,
                422,
                "invalid_characters",
                "the path or query contains a NUL character or a lone surrogate",
            )
            return
        await self.app(scope, receive, send)


def _has_unsafe_text(scope: Scope) -> bool:
    if has_unsafe_characters(scope["path"]):
        return True
    query = scope.get("query_string", b"").decode("latin-1")
    # What Starlette's QueryParams will decode: the same function, the same errors policy.
    pairs = parse_qsl(query, keep_blank_values=True)
    return any(has_unsafe_characters(key + value) for key, value in pairs)


async def _send_json(
    send: Send, status: int, code: str, message: str, *, close: bool = False
) -> None:
    error = {"error": {"code": code, "message": message}}
    body = json.dumps(error, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
