"""A hot story's commonest requests, answered before routing: an anonymous reader's
conditional GET of a comment read whose copy is still current (304), and an anonymous
GET of a page this process answered at the thread's current version (200, from memory).

`read_caching` answers a current copy 304 from a dependency, after FastAPI has routed the
request and resolved the route's parameters and dependencies: most of the cost of a 304.
This middleware answers the same 304 earlier, under the same proof: the request carries
no token (the anonymous view), its `If-None-Match` holds an ETag our key signed for exactly
this path and query, and the thread's version, as this process last heard it from the fold
within `CHORUS_READ_VERSION_TRUST_SECONDS`, is the ETag's (and reaches `min_version`).

On the same proof it hands out a page it answered before (`PageMemory`): the route's 200
for this request, whose ETag names the version the thread is still at. A hot thread's
page is then read from the database once per version per process, however many readers
ask.

Anything else (a token, `*`, an unknown or stale version, a version heard too long ago)
goes on to the route, which reads and decides as before. The headers are the route's own,
and the middlewares outside this one (CORS, request id, metrics) see these answers like
any other.
"""

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.deps import Services
from services.api.page_memory import PageMemory, Remembered
from services.api.read_caching import (
    ANONYMOUS,
    cache_control,
    caching_headers,
    client_tags,
    request_key,
    signer,
    wanted_version,
)

READ_PREFIXES = ("/v1/threads/", "/v1/comments/")


class EarlyReads:
    def __init__(self, app: ASGIApp, memory: PageMemory | None = None) -> None:
        self.app = app
        self.memory = memory or PageMemory()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = _anonymous_read(scope)
        if request is None:
            await self.app(scope, receive, send)
            return
        services, key, wanted, headers = request
        given = headers.get("if-none-match")
        if given is not None and given.strip() == "*":
            await self.app(scope, receive, send)  # any copy will do: the route decides
            return
        sign = signer(services.settings.jwt_secret)
        for thread_id, versions in sign.vouched(client_tags(given or ""), key, ANONYMOUS).items():
            current = services.versions.fresh(thread_id)
            if current is not None and current in versions and current >= wanted:
                etag = sign.etag(key, ANONYMOUS, thread_id, current)
                await _not_modified(send, etag, services)
                return
        remembered = self.memory.recall(key)
        if remembered is not None and _current(remembered, services, wanted):
            await _replay(send, remembered)
            return
        await self.app(scope, receive, _Remembering(send, self.memory, key, services))


def _anonymous_read(scope: Scope) -> tuple[Services, str, int, Headers] | None:
    """What an anonymous GET of a comment read needs here; None for any other request."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return None
    path: str = scope["path"]
    if not path.startswith(READ_PREFIXES):
        return None
    headers = Headers(scope=scope)
    if "authorization" in headers:
        return None
    services: Services | None = getattr(scope["app"].state, "services", None)
    query = scope["query_string"].decode("latin-1")
    wanted = wanted_version(query)
    if services is None or wanted is None:
        return None
    return services, request_key(path, query), wanted, headers


def _current(remembered: Remembered, services: Services, wanted: int) -> bool:
    fresh = services.versions.fresh(remembered.thread_id)
    return fresh == remembered.version and fresh >= wanted


class _Remembering:
    """Passes the route's answer on, and keeps an anonymous 200 that names its version.

    The version it names is the thread's as the read found it, now: it counts as heard
    (`ThreadVersions.saw`), as a version read for a 304 does, so the readers of the next
    moment are answered from memory without waiting for the fold to announce anything."""

    def __init__(self, send: Send, memory: PageMemory, key: str, services: Services) -> None:
        self.send, self.memory, self.key, self.services = send, memory, key, services
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.version: tuple[str, int] | None = None
        self.body: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 200:
            self.headers = list(message.get("headers", []))
            self.version = _named_version(self.headers)
        elif message["type"] == "http.response.body" and self.version is not None:
            self.body.append(message.get("body", b""))
            if not message.get("more_body", False) and self.headers is not None:
                thread_id, version = self.version
                answer = Remembered(thread_id, version, tuple(self.headers), b"".join(self.body))
                self.memory.keep(self.key, answer)
                self.services.versions.saw(thread_id, version)
        await self.send(message)


def _named_version(headers: list[tuple[bytes, bytes]]) -> tuple[str, int] | None:
    """The thread and version our ETag names (`"<thread>.<version>.<tag>"`), if any."""
    for name, value in headers:
        if name.lower() == b"etag":
            parts = value.decode("latin-1").strip('"').rsplit(".", 2)
            if len(parts) == 3 and parts[1].isascii() and parts[1].isdigit():
                return parts[0], int(parts[1])
    return None


async def _replay(send: Send, remembered: Remembered) -> None:
    # A list of its own: the middlewares outside add their headers to it.
    headers = list(remembered.headers)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": remembered.body})


async def _not_modified(send: Send, etag: str, services: Services) -> None:
    public = cache_control("public", services.settings.read_max_age)
    headers = [(k.lower().encode(), v.encode()) for k, v in caching_headers(etag, public).items()]
    await send({"type": "http.response.start", "status": 304, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
