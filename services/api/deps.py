"""Dependencies routes declare through `Annotated` aliases.

The ones that do no I/O are `async def`: FastAPI runs them on the event loop, where a
sync dependency would cost a trip through the thread pool on every request.
"""

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis import Redis
from sqlalchemy.engine import Engine

from services.api.comment_visibility import ANONYMOUS, ReadViewer
from services.api.cursors import CursorCodec
from services.api.fold_waits import FoldWaits
from services.api.live_hub import LiveHub
from services.api.thread_versions import ThreadVersions
from shared.command_bus import CommandBus
from shared.commands import Actor, RequestContext
from shared.errors import InvalidInput, Unauthorized
from shared.ids import COMMENT_ID_PATTERN, MAX_COMMENT_ID_CHARS
from shared.settings import Settings
from shared.store import EventStore
from shared.tokens import verify_token
from shared.validation import MAX_THREAD_ID_CHARS, THREAD_ID_PATTERN


@dataclass(frozen=True)
class Services:
    """Everything the composition root (the app's lifespan) builds once per process."""

    settings: Settings
    engine: Engine
    redis: Redis
    store: EventStore
    bus: CommandBus
    waits: FoldWaits
    hub: LiveHub
    versions: ThreadVersions


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
_bearer = HTTPBearer(auto_error=False, description="A JWT signed with CHORUS_JWT_SECRET")


async def current_user(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if credentials is None:
        raise Unauthorized("a bearer token is required", code="missing_token")
    settings = services.settings
    return verify_token(
        credentials.credentials, settings.jwt_secret, leeway_seconds=settings.jwt_leeway_seconds
    )


CurrentUser = Annotated[Actor, Depends(current_user)]


async def maybe_user(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor | None:
    """The signed-in reader on a route that needs no token; None when none is sent. A token
    that is sent must be valid (401 otherwise): a reader whose token expired should learn
    it, not silently lose what a token adds."""
    if credentials is None:
        return None
    return await current_user(services, credentials)


MaybeUser = Annotated[Actor | None, Depends(maybe_user)]


async def optional_user(reader: MaybeUser) -> str | None:
    """`maybe_user`'s id: what a read shows the reader of their own (viewer state)."""
    return None if reader is None else reader.id


Viewer = Annotated[str | None, Depends(optional_user)]


async def read_viewer(reader: MaybeUser) -> ReadViewer:
    """Who a comment read is for: what they may see of held comments depends on their role."""
    return ANONYMOUS if reader is None else ReadViewer(reader.id, reader.is_moderator)


Reader = Annotated[ReadViewer, Depends(read_viewer)]
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


async def write_context(
    request: Request,
    user: CurrentUser,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> RequestContext:
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise InvalidInput(
            "Idempotency-Key must be 1-200 printable ASCII characters",
            code="invalid_idempotency_key",
        )
    return RequestContext(
        actor=user,
        request_id=request.scope.get("state", {}).get("request_id"),
        idempotency_key=idempotency_key,
    )


WriteContext = Annotated[RequestContext, Depends(write_context)]
ThreadId = Annotated[
    str,
    Path(
        pattern=THREAD_ID_PATTERN,
        max_length=MAX_THREAD_ID_CHARS,
        description="1-200 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'",
        examples=["post-2026-11-27-south-korea"],
    ),
]
CommentId = Annotated[
    str,
    Path(
        pattern=COMMENT_ID_PATTERN,
        max_length=MAX_COMMENT_ID_CHARS,
        description="A comment id, as the API gave it",
        examples=["01kf3m8q2v9x7c4d5e6f7g8h9j"],
    ),
]


@lru_cache(maxsize=4)
def _codec(secret: str) -> CursorCodec:
    return CursorCodec(secret)


async def cursor_codec(services: ServicesDep) -> CursorCodec:
    """The deployment's cursor signer (a key derived from CHORUS_JWT_SECRET)."""
    return _codec(services.settings.jwt_secret)


Cursors = Annotated[CursorCodec, Depends(cursor_codec)]
