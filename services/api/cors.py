"""Cross-origin access to `/v1` for the publications' own sites (`CHORUS_CORS_ORIGINS`).

Outside every middleware that can refuse a request, so a 413, a 422 or a 429 reaches the
widget with its CORS headers (without them the browser hides the answer, status and all,
from the page), and a preflight is answered before any of them could refuse it: it has no
body, no token and no effect. Written out rather than Starlette's `CORSMiddleware`, which
gives an origin it refuses CORS headers all the same (a 400 preflight with the allowed
methods, `Access-Control-Expose-Headers` on every answer) and says `Vary: Origin` only to
the origins it allows, while a CDN must learn from every `/v1` answer that it varies by
origin. Other paths (health, metrics, the demo page) are not for other sites' scripts.
"""

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/v1/"
ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-None-Match, Last-Event-ID"
# What a widget reads from an answer: revalidation, when to retry, what to quote in a bug
# report. (No route answers with `Location`: a new comment's id is in the body.)
EXPOSED_HEADERS = "ETag, Retry-After, X-Request-ID"
PREFLIGHT_MAX_AGE = 600
"""Seconds a browser may reuse a preflight's answer (Chromium caps it at 7200, Firefox at
86400): one preflight per route and page view or so, not one per request."""


def add_vary(headers: MutableHeaders, *names: str) -> None:
    """Adds `names` to the `Vary` header, each once whatever its case."""
    present = [v.strip() for v in headers.get("vary", "").split(",") if v.strip()]
    known = {v.lower() for v in present}
    present += [name for name in names if name.lower() not in known]
    headers["vary"] = ", ".join(present)


class CorsMiddleware:
    """Lets the configured origins call `/v1` from a browser; nothing for anyone else."""

    def __init__(self, app: ASGIApp, *, origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = frozenset(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.origins or scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin", "")
        allowed = origin in self.origins
        if allowed and scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(send, origin)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                answer = MutableHeaders(scope=message)
                add_vary(answer, "Origin")
                if allowed:
                    answer["access-control-allow-origin"] = origin
                    answer["access-control-expose-headers"] = EXPOSED_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, send: Send, origin: str) -> None:
        headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
            (b"access-control-max-age", str(PREFLIGHT_MAX_AGE).encode()),
            (b"vary", b"Origin"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
