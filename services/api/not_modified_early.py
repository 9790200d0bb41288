"""The hot story's commonest request, answered before routing: an anonymous reader's
conditional GET of a comment read whose copy is still current.

`read_caching` answers such a request 304 from a dependency, after FastAPI has routed it
and resolved the route's parameters and dependencies: most of the cost of a 304. This
middleware answers the same 304 earlier, under the same proof: the request carries no
token (the anonymous view), its `If-None-Match` holds an ETag our key signed for exactly
this path and query, and the thread's version, as this process last heard it from the
fold within `CHORUS_READ_VERSION_TRUST_SECONDS`, is the ETag's (and reaches `min_version`).
Anything else (a token, `*`, an unknown or stale version, a version heard too long ago)
goes on to the route, which reads and decides as before. The headers are the route's own
(`ReadCache.headers`), and the middlewares outside this one (CORS, request id, metrics)
see the answer like any other.
"""

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.deps import Services
from services.api.read_caching import (
    ANONYMOUS,
    STALE_WHILE_REVALIDATE,
    VARY,
    client_tags,
    request_key,
    signer,
    wanted_version,
)

READ_PREFIXES = ("/v1/threads/", "/v1/comments/")


class EarlyNotModified:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            etag = self._current_copy(scope)
            if etag is not None:
                await _send_not_modified(send, etag, scope)
                return
        await self.app(scope, receive, send)

    def _current_copy(self, scope: Scope) -> str | None:
        """The ETag of the client's copy if it is provably current; else None."""
        path: str = scope["path"]
        if not path.startswith(READ_PREFIXES):
            return None
        headers = Headers(scope=scope)
        given = headers.get("if-none-match")
        if given is None or "authorization" in headers:
            return None
        services: Services | None = getattr(scope["app"].state, "services", None)
        if services is None:
            return None
        query = scope["query_string"].decode("latin-1")
        wanted = wanted_version(query)
        tags = client_tags(given)
        if wanted is None or not tags:
            return None
        sign = signer(services.settings.jwt_secret)
        key = request_key(path, query)
        for thread_id, versions in sign.vouched(tags, key, ANONYMOUS).items():
            current = services.versions.fresh(thread_id)
            if current is not None and current in versions and current >= wanted:
                return sign.etag(key, ANONYMOUS, thread_id, current)
        return None


async def _send_not_modified(send: Send, etag: str, scope: Scope) -> None:
    services: Services = scope["app"].state.services
    cache_control = (
        f"public, max-age={services.settings.read_max_age}, "
        f"stale-while-revalidate={STALE_WHILE_REVALIDATE}"
    )
    headers = [
        (b"etag", f'"{etag}"'.encode()),
        (b"cache-control", cache_control.encode()),
        (b"vary", VARY.encode()),
    ]
    await send({"type": "http.response.start", "status": 304, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
