"""Reading threads and comments, from the projection only. No token needed.

Reads that honour `min_version` are `async`: while one waits for the fold it sleeps on
the event loop, holding neither a worker thread nor a database connection, so many
waiting readers cannot starve the thread pool the writes run on. Their database calls
still run in that pool, one at a time. A waiting read costs no statements while it waits:
it is woken by the fold's progress (services/api/fold_waits.py) and then reads once more.
"""

from collections.abc import Callable
from functools import partial
from typing import Annotated, Protocol, TypeVar

import anyio
from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from services.api import read_queries as rq
from services.api.comment_json import REPLIES_SORT, comment_public
from services.api.cursors import MAX_CURSOR_CHARS, replies_listing, thread_listing
from services.api.deps import (
    CommentId,
    Cursors,
    Reader,
    Services,
    ServicesDep,
    ThreadId,
    optional_user,
)
from services.api.openapi import CACHED_READ, errors
from services.api.read_caching import CachedRead
from services.api.read_schemas import (
    CommentContextPublic,
    CommentPublic,
    CountsIn,
    CountsPublic,
    RepliesPagePublic,
    ThreadPagePublic,
    ThreadPublic,
)
from shared.errors import InvalidInput, NotFound
from shared.timeutil import as_utc
from shared.validation import MAX_SQL_INTEGER, MAX_URL_CHARS

router = APIRouter(prefix="/v1", tags=["reads"], responses=errors(400, 404, 413, 422, 503))

# Comment reads take an optional token (for viewer state); one that is sent must be valid.
VIEWER_ERRORS = errors(401)
READ_RESPONSES = {**VIEWER_ERRORS, **CACHED_READ}
MAX_LIMIT = 50

Limit = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_LIMIT,
        description=f"Comments listed per page (with their replies, at most "
        f"{rq.MAX_PAGE_COMMENTS} comments in all)",
    ),
]
RepliesShown = Annotated[
    int, Query(ge=0, le=10, description="Replies nested under each comment, per level")
]
Cursor = Annotated[
    str | None, Query(max_length=MAX_CURSOR_CHARS, description="`next_cursor` of the last page")
]
MinVersion = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_SQL_INTEGER,
        description="Wait (a few seconds at most) until the thread reaches this version; "
        "a version the thread's log has not reached is refused (422 `min_version_ahead`)",
    ),
]


@router.get(
    "/threads/{thread_id}",
    response_model=ThreadPublic,
    tags=["threads"],
    responses=READ_RESPONSES,
    # No viewer state here, but a token that is sent is checked as on the other reads.
    dependencies=[Depends(optional_user)],
)
async def get_thread(
    thread_id: ThreadId, services: ServicesDep, cache: CachedRead, min_version: MinVersion = None
) -> ThreadPublic:
    """A thread's metadata and counts; 404 if nothing was ever written to it."""
    read = partial(rq.thread_summary, services.engine, thread_id)
    thread = await _read_at_least(services, min_version, read)
    cache.answer(thread.thread_id, thread.version)
    return _thread_public(thread)


@router.get(
    "/threads",
    response_model=ThreadPublic,
    tags=["threads"],
    responses=READ_RESPONSES,
    dependencies=[Depends(optional_user)],
)
async def find_thread(
    url: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_URL_CHARS,
            description="The URL the thread was registered (or imported) with",
        ),
    ],
    services: ServicesDep,
    cache: CachedRead,
) -> ThreadPublic:
    """The thread registered with this URL, as `GET /v1/threads/{id}` answers it (the
    earliest, if several are); 404 if none is. Imported threads that had no identifier
    of their own are found this way."""
    thread_id = await run_in_threadpool(rq.thread_with_url, services.engine, url)
    if thread_id is None:
        raise NotFound("no thread is registered with this url")
    thread = await run_in_threadpool(rq.thread_summary, services.engine, thread_id)
    cache.answer(thread.thread_id, thread.version)
    return _thread_public(thread)


def _thread_public(thread: rq.ThreadSummary) -> ThreadPublic:
    return ThreadPublic(
        id=thread.thread_id,
        title=thread.title,
        url=thread.url,
        locked=thread.locked,
        comment_count=thread.comment_count,
        participant_count=thread.participant_count,
        last_comment_at=as_utc(thread.last_comment_at),
        version=thread.version,
    )


@router.post("/counts", response_model=CountsPublic, tags=["threads"])
def comment_counts(payload: CountsIn, services: ServicesDep) -> CountsPublic:
    """Visible comments per thread, for up to 100 threads; unknown threads count 0."""
    return CountsPublic(counts=rq.comment_counts(services.engine, payload.thread_ids))


@router.get(
    "/threads/{thread_id}/comments", response_model=ThreadPagePublic, responses=READ_RESPONSES
)
async def thread_comments(
    thread_id: ThreadId,
    services: ServicesDep,
    cursors: Cursors,
    viewer: Reader,
    cache: CachedRead,
    sort: rq.Sort = "oldest",
    limit: Limit = 20,
    cursor: Cursor = None,
    replies: RepliesShown = 3,
    min_version: MinVersion = None,
) -> ThreadPagePublic:
    """A page of top-level comments, each with its first replies nested.

    A thread nobody has commented on yet is an empty page, not a 404: widgets ask
    before the first comment.
    """
    listing = thread_listing(thread_id)
    arity = 2 if sort in ("top", "featured") else 1
    after = None if cursor is None else cursors.decode(cursor, listing, sort, arity)
    read = partial(rq.thread_page, services.engine, thread_id, sort, after, limit, replies, viewer)
    page = await _read_at_least(services, min_version, read)
    cache.answer(page.thread_id, page.version)
    return ThreadPagePublic(
        thread_id=page.thread_id,
        version=page.version,
        comment_count=page.comment_count,
        comments=[comment_public(node, cursors) for node in page.comments],
        next_cursor=None if page.next_key is None else cursors.encode(listing, sort, page.next_key),
    )


@router.get(
    "/comments/{comment_id}/replies", response_model=RepliesPagePublic, responses=READ_RESPONSES
)
async def comment_replies(
    comment_id: CommentId,
    services: ServicesDep,
    cursors: Cursors,
    viewer: Reader,
    cache: CachedRead,
    limit: Limit = 20,
    cursor: Cursor = None,
    replies: RepliesShown = 3,
    min_version: MinVersion = None,
) -> RepliesPagePublic:
    """A page of a comment's direct replies, oldest first, each with its first replies."""
    listing = replies_listing(comment_id)
    after = 0 if cursor is None else cursors.decode(cursor, listing, REPLIES_SORT, 1)[0]
    read = partial(rq.replies_page, services.engine, comment_id, after, limit, replies, viewer)
    page = await _read_at_least(services, min_version, read)
    cache.answer(page.thread_id, page.version)
    return RepliesPagePublic(
        comment_id=page.comment_id,
        thread_id=page.thread_id,
        version=page.version,
        replies=[comment_public(node, cursors) for node in page.replies],
        next_cursor=(
            None if page.next_key is None else cursors.encode(listing, REPLIES_SORT, page.next_key)
        ),
    )


@router.get("/comments/{comment_id}", response_model=CommentPublic, responses=READ_RESPONSES)
async def getcomment_public(
    comment_id: CommentId,
    services: ServicesDep,
    cursors: Cursors,
    viewer: Reader,
    cache: CachedRead,
    replies: RepliesShown = 3,
    min_version: MinVersion = None,
) -> CommentPublic:
    """One comment with its first replies; a deleted one as a placeholder. With
    `min_version`, a comment just written waits for its fold like the other reads."""
    read = partial(rq.comment, services.engine, comment_id, replies, viewer)
    found = await _read_writtencomment_public(services, comment_id, min_version, read)
    cache.answer(found.thread_id, found.version)
    return comment_public(found.comment, cursors)


@router.get(
    "/comments/{comment_id}/context", response_model=CommentContextPublic, responses=READ_RESPONSES
)
async def comment_context(
    comment_id: CommentId,
    services: ServicesDep,
    cursors: Cursors,
    viewer: Reader,
    cache: CachedRead,
    replies: RepliesShown = 3,
    min_version: MinVersion = None,
) -> CommentContextPublic:
    """A comment with its first replies, and its ancestors (root first, without their
    replies, each with a cursor to them): what a link to a deep reply needs."""
    read = partial(rq.comment_context, services.engine, comment_id, replies, viewer)
    context = await _read_writtencomment_public(services, comment_id, min_version, read)
    cache.answer(context.thread_id, context.version)
    return CommentContextPublic(
        thread_id=context.thread_id,
        version=context.version,
        ancestors=[comment_public(node, cursors) for node in context.ancestors],
        comment=comment_public(context.comment, cursors),
    )


class _Versioned(Protocol):
    @property
    def thread_id(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def head(self) -> int: ...


V = TypeVar("V", bound=_Versioned)


async def _read_at_least(services: Services, min_version: int | None, read: Callable[[], V]) -> V:
    """Run `read`; if it saw the thread short of `min_version`, wait for the fold and rerun.

    A `min_version` beyond the head of the thread's log (read in the same statement) is
    refused at once: no fold will bring it. Otherwise the wait is bounded by
    `read_wait_seconds`; when it runs out the answer is whatever the projection has, and
    its `version` says so.
    """
    result = await run_in_threadpool(read)
    if min_version is None or result.version >= min_version:
        return result
    if min_version > result.head:
        raise InvalidInput(
            f"min_version {min_version} is beyond the thread's last version ({result.head})",
            code="min_version_ahead",
        )
    deadline = anyio.current_time() + services.settings.read_wait_seconds
    while result.version < min_version:
        remaining = deadline - anyio.current_time()
        if remaining <= 0:
            break
        heard = await services.waits.wait(result.thread_id, min_version, remaining)
        if heard <= result.version:
            break  # timed out, and the projection did not move as far as anyone heard
        # Reached, or at least moved (then the deadline has passed): show how far.
        result = await run_in_threadpool(read)
    return result


async def _read_writtencomment_public(
    services: Services, comment_id: str, min_version: int | None, read: Callable[[], V]
) -> V:
    """`_read_at_least` for a read that names a comment: one the log holds but the fold has
    not reached yet is waited for on its thread (the write side knows which), not a 404."""
    try:
        return await _read_at_least(services, min_version, read)
    except NotFound:
        if min_version is None:
            raise
    thread_id = await run_in_threadpool(rq.thread_of_written_comment, services.engine, comment_id)
    if thread_id is None:
        raise NotFound(f"comment {comment_id!r} does not exist")
    await services.waits.wait(thread_id, min_version, services.settings.read_wait_seconds)
    return await _read_at_least(services, min_version, read)
