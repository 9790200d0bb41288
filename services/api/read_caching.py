"""Cacheable comment reads: an ETag on every answer, 304 for a client that already has it.

A route opts in by declaring `cache: CachedRead` and, once it has read, calling
`cache.answer(thread_id, version)`. Its answer then carries

- `ETag: "<thread_id>.<version>.<tag>"`, where `tag` is an HMAC (a key of its own, derived
  from CHORUS_JWT_SECRET) over the read generation, the request (path and query, without
  `min_version`), the viewer (a valid token's subject and whether it moderates, or
  nobody) and the thread and its version. Any change to one of them changes the ETag;
  the subject appears only inside the HMAC, never in clear.
- `Cache-Control: public, max-age=N, stale-while-revalidate=30` without a token, `private`
  with one, so no shared cache hands one reader's view to another; `Vary: Authorization,
  Origin`.

A request whose `If-None-Match` holds one of our ETags for this request and viewer is
checked before the route runs: the thread's version is taken from what the process last
heard of the fold (services/api/thread_versions.py, trusted for
`CHORUS_READ_VERSION_TRUST_SECONDS`) or else read (one primary key lookup on its
checkpoint, no comment table) and, if it is the one in the ETag, the answer is 304 at
once. Only a 304 is ever answered from memory: a version that does not match is read.
The thread id in the ETag is what makes this possible for comment URLs, which do
not name their thread; the HMAC vouches that this request was answered from that thread.

`min_version` is left out of the request the ETag covers: the ETag names the version an
answer shows, whatever the request waited for. A client's copy at version 7 answers
`?min_version=5` (304), but not `?min_version=9`, which reads (and waits) as before.
"""

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Header, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams

from services.api import read_queries as rq
from services.api.deps import Reader, ServicesDep

READ_GENERATION = 3
"""Bump it when what a read answers changes while no thread's version moves: a field added
to or reshaped in a read, a rendering change replayed by `chorus rebuild`. Every ETag then
changes with the deploy, so no browser or CDN keeps revalidating the old form as current."""
STALE_WHILE_REVALIDATE = 30
VARY = "Authorization, Origin"
_TAG_BYTES = 16
MAX_TAGS_CHECKED = 32
"""ETags of one `If-None-Match` that are checked (each costs an HMAC); a client keeps one."""
_ENTITY_TAG = re.compile(r'\s*(?:W/)?"([\x21\x23-\x7e]*)"\s*(?:,|$)')
ANONYMOUS = ""
"""The viewer part of an answer made for a request without a token."""


class NotModified(Exception):
    """The client's copy is current: answered 304 with these headers."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("not modified")
        self.headers = headers


async def not_modified_response(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotModified)
    return Response(status_code=304, headers=exc.headers)


class ETagSigner:
    """Makes the ETags of one deployment (one secret)."""

    def __init__(self, secret: str) -> None:
        # A key of its own (domain separation): an ETag's tag is never a cursor's or a token's.
        key = hmac.new(secret.encode(), b"chorus etag v1", hashlib.sha256).digest()
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def etag(self, request: str, viewer: str, thread_id: str, version: int) -> str:
        """The opaque part of the ETag (what goes between the quotes)."""
        mac = self._mac.copy()
        for part in (str(READ_GENERATION), request, viewer, thread_id, str(version)):
            mac.update(part.encode())
            mac.update(b"\x00")  # no part holds a NUL: parts cannot run into each other
        tag = base64.urlsafe_b64encode(mac.digest()[:_TAG_BYTES]).rstrip(b"=").decode()
        return f"{thread_id}.{version}.{tag}"

    def vouched(self, tags: frozenset[str], request: str, viewer: str) -> dict[str, set[int]]:
        """Those of `tags` made by us for this request and viewer: versions by thread."""
        found: dict[str, set[int]] = {}
        for given in sorted(tags)[:MAX_TAGS_CHECKED]:
            parts = given.rsplit(".", 2)
            if len(parts) != 3 or not parts[1].isdigit() or not parts[1].isascii():
                continue
            thread_id, version = parts[0], int(parts[1])
            if hmac.compare_digest(given, self.etag(request, viewer, thread_id, version)):
                found.setdefault(thread_id, set()).add(version)
        return found


@lru_cache(maxsize=4)
def signer(secret: str) -> ETagSigner:
    return ETagSigner(secret)


def client_tags(if_none_match: str) -> frozenset[str]:
    """The opaque parts of an `If-None-Match` (weak or strong: the same comparison)."""
    return frozenset(m.group(1) for m in _ENTITY_TAG.finditer(if_none_match))


def cache_control(visibility: str, max_age: int) -> str:
    """`public` without a token, `private` with one."""
    return f"{visibility}, max-age={max_age}, stale-while-revalidate={STALE_WHILE_REVALIDATE}"


def caching_headers(etag: str, cache_control: str) -> dict[str, str]:
    """The headers of every cacheable read's answer, 304 or not."""
    return {"ETag": f'"{etag}"', "Cache-Control": cache_control, "Vary": VARY}


def request_key(path: str, query: str) -> str:
    """What an ETag covers of the request: its path and query, without `min_version`."""
    items = sorted((k, v) for k, v in QueryParams(query).multi_items() if k != "min_version")
    return f"{path}?{urlencode(items)}"


def wanted_version(query: str) -> int | None:
    """The query's `min_version` (0 when absent); None when it is not a number, which the
    route will refuse."""
    given = QueryParams(query).get("min_version")
    if given is None:
        return 0
    return int(given) if given.isascii() and given.isdigit() else None


@dataclass(frozen=True)
class ReadCache:
    """What one request needs to label its answer, or to answer 304 when it can."""

    signer: ETagSigner
    request: str
    viewer: str
    cache_control: str
    response: Response
    client_tags: frozenset[str]
    """The opaque parts of the client's `If-None-Match` (weak or strong: same comparison)."""
    any_tag: bool
    """`If-None-Match: *`: the client has some copy, whichever; any answer is 304."""

    def headers(self, etag: str) -> dict[str, str]:
        return caching_headers(etag, self.cache_control)

    def etag(self, thread_id: str, version: int) -> str:
        return self.signer.etag(self.request, self.viewer, thread_id, version)

    def answer(self, thread_id: str, version: int) -> None:
        """Labels the answer with its ETag and caching headers, or ends the request with
        304 if the client already has this answer."""
        etag = self.etag(thread_id, version)
        headers = self.headers(etag)
        if self.any_tag or etag in self.client_tags:
            raise NotModified(headers)
        self.response.headers.update(headers)

    def vouched(self) -> dict[str, set[int]]:
        """The client's tags made by us for this request and viewer: versions by thread."""
        return self.signer.vouched(self.client_tags, self.request, self.viewer)


async def cached_read(
    request: Request,
    response: Response,
    services: ServicesDep,
    viewer: Reader,
    if_none_match: Annotated[
        str | None,
        Header(
            alias="If-None-Match",
            description="ETags of copies the client has (`*`: any): 304 if one is current",
        ),
    ] = None,
) -> ReadCache:
    settings = services.settings
    authorization = request.headers.get("authorization")
    visibility = "public" if authorization is None else "private"
    query = request.scope["query_string"].decode("latin-1")
    cache = ReadCache(
        signer=signer(settings.jwt_secret),
        request=request_key(request.scope["path"], query),
        # The token the route checks (once per request: FastAPI shares the dependency); its
        # subject and role (a moderator reads more) only ever enter the ETag's HMAC.
        viewer=viewer.cache_key,
        cache_control=cache_control(visibility, settings.read_max_age),
        response=response,
        client_tags=client_tags(if_none_match or ""),
        any_tag=(if_none_match or "").strip() == "*",
    )
    vouched = cache.vouched()
    wanted = wanted_version(query)  # None: not a number, which the route will refuse
    if vouched and wanted is not None:
        thread_id, versions = next(iter(vouched.items()))  # one URL is one thread's
        current = services.versions.fresh(thread_id)
        if current is None or current not in versions or current < wanted:
            current = await run_in_threadpool(rq.thread_version, services.engine, thread_id)
            services.versions.saw(thread_id, current)
        if current in versions and current >= wanted:
            raise NotModified(cache.headers(cache.etag(thread_id, current)))
    return cache


CachedRead = Annotated[ReadCache, Depends(cached_read)]
