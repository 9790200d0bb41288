"""Moderation of people and the site: bans, pre-moderation, thread locks, the site's
settings and the audit log (moderators and admins)."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from services.api import moderation_log_queries as log_queries
from services.api.cursors import MAX_CURSOR_CHARS
from services.api.deps import CurrentUser, Cursors, ServicesDep, ThreadId, WriteContext
from services.api.inputs import InputModel
from services.api.openapi import errors
from shared.commands import BanUser, ChangeModerationSettings, LockThread, SetPremod, UnbanUser
from shared.db import read_connection
from shared.errors import Forbidden
from shared.moderation_settings import read_settings
from shared.results import ModerationSettings
from shared.validation import MAX_THREAD_ID_CHARS, THREAD_ID_PATTERN

router = APIRouter(
    prefix="/v1", tags=["moderation"], responses=errors(400, 401, 403, 404, 409, 413, 422, 503)
)

UserId = Annotated[str, Path(min_length=1, max_length=200, description="The token's `sub`")]
Mode = Literal["post", "pre", "first_comments"]


class BanIn(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "spam", "until": "2026-12-01T00:00:00Z"}]}
    )

    reason: str = Field(default="", max_length=1000, examples=["spam"])
    until: datetime | None = Field(
        default=None, description="A suspension that ends by itself (in the future, with zone)"
    )


class BanState(BaseModel):
    user_id: str
    banned: bool
    until: datetime | None = Field(description="When a suspension ends; null: for good")


class PremodState(BaseModel):
    user_id: str
    premod: bool


class ThreadLockState(BaseModel):
    id: str
    locked: bool
    version: int


class SettingsIn(InputModel):
    """Fields given replace the current ones; fields omitted keep them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"mode": "first_comments", "suspect_words": ["casino"], "max_links": 2}]
        }
    )

    mode: Mode = "post"
    banned_words: list[str] = Field(default=[], description="Refused outright (422)")
    suspect_words: list[str] = Field(default=[], description="Held for a moderator")
    max_links: int | None = Field(default=None, description="More links are held; null: no limit")
    flag_threshold: int | None = Field(
        default=None, description="Flags that hold a published comment; null: never"
    )


class SettingsPublic(BaseModel):
    mode: Mode
    banned_words: list[str]
    suspect_words: list[str]
    max_links: int | None
    flag_threshold: int | None


class LogModerator(BaseModel):
    id: str
    name: str


class LogTarget(BaseModel):
    kind: Literal["comment", "user", "thread", "site"]
    id: str | None
    thread_id: str | None = None


class LogEntry(BaseModel):
    action: str
    moderator: LogModerator
    target: LogTarget
    reason: str | None
    until: datetime | None
    at: datetime


class LogPage(BaseModel):
    entries: list[LogEntry]
    next_cursor: str | None


@router.put("/users/{user_id}/ban", response_model=BanState)
async def ban_user(
    user_id: UserId, payload: BanIn, ctx: WriteContext, services: ServicesDep
) -> BanState:
    """Ban a user (until `until`, or for good): they can no longer post, edit, like or
    flag. Banning again with another `until` replaces the ban; the same ban changes nothing."""
    until = None if payload.until is None else payload.until.isoformat()
    banned = await services.bus.run(BanUser(user_id, payload.reason, until), ctx)
    return BanState.model_validate(banned, from_attributes=True)


@router.delete("/users/{user_id}/ban", response_model=BanState)
async def unban_user(user_id: UserId, ctx: WriteContext, services: ServicesDep) -> BanState:
    """Lift a user's ban."""
    unbanned = await services.bus.run(UnbanUser(user_id), ctx)
    return BanState.model_validate(unbanned, from_attributes=True)


@router.put("/users/{user_id}/premod", response_model=PremodState)
async def premod_user(user_id: UserId, ctx: WriteContext, services: ServicesDep) -> PremodState:
    """Hold every comment of this user for a moderator. Twice is once."""
    state = await services.bus.run(SetPremod(user_id, on=True), ctx)
    return PremodState.model_validate(state, from_attributes=True)


@router.delete("/users/{user_id}/premod", response_model=PremodState)
async def unpremod_user(user_id: UserId, ctx: WriteContext, services: ServicesDep) -> PremodState:
    """Let this user's comments publish again (as the site's rules say)."""
    state = await services.bus.run(SetPremod(user_id, on=False), ctx)
    return PremodState.model_validate(state, from_attributes=True)


@router.get("/moderation/settings", response_model=SettingsPublic)
def get_settings(user: CurrentUser, services: ServicesDep) -> SettingsPublic:
    """The site's moderation settings (moderators and admins)."""
    if not user.is_moderator:
        raise Forbidden("only moderators and admins may read the moderation settings")
    with read_connection(services.engine) as conn:
        return _settings(read_settings(conn))


@router.put("/moderation/settings", response_model=SettingsPublic)
async def put_settings(
    payload: SettingsIn, ctx: WriteContext, services: ServicesDep
) -> SettingsPublic:
    """Change the site's moderation settings (admins): from the next comment on."""
    given = tuple(sorted(payload.model_fields_set))
    command = ChangeModerationSettings(
        given=given,
        mode=payload.mode,
        banned_words=tuple(payload.banned_words),
        suspect_words=tuple(payload.suspect_words),
        max_links=payload.max_links,
        flag_threshold=payload.flag_threshold,
    )
    return _settings(await services.bus.run(command, ctx))


def _settings(settings: ModerationSettings) -> SettingsPublic:
    return SettingsPublic.model_validate(settings, from_attributes=True)


@router.get("/moderation/log", response_model=LogPage)
async def moderation_log(
    user: CurrentUser,
    services: ServicesDep,
    cursors: Cursors,
    thread_id: Annotated[
        str | None,
        Query(
            pattern=THREAD_ID_PATTERN, max_length=MAX_THREAD_ID_CHARS, description="One thread's"
        ),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> LogPage:
    """Every moderator's decision, newest first (moderators and admins)."""
    if not user.is_moderator:
        raise Forbidden("only moderators and admins may read the moderation log")
    listing = log_queries.listing(thread_id)
    before = None if cursor is None else cursors.decode(cursor, listing, "newest", 1)[0]
    page = await run_in_threadpool(
        log_queries.decisions, services.engine, thread_id=thread_id, before=before, limit=limit
    )
    return LogPage(
        entries=[LogEntry.model_validate(e, from_attributes=True) for e in page.entries],
        next_cursor=(
            None
            if page.next_before is None
            else cursors.encode(listing, "newest", (page.next_before,))
        ),
    )


@router.put("/threads/{thread_id}/lock", response_model=ThreadLockState)
async def lock_thread(
    thread_id: ThreadId, ctx: WriteContext, services: ServicesDep
) -> ThreadLockState:
    """Lock a thread: it accepts no new comments or edits."""
    return await _set_lock(services, thread_id, ctx, locked=True)


@router.delete("/threads/{thread_id}/lock", response_model=ThreadLockState)
async def unlock_thread(
    thread_id: ThreadId, ctx: WriteContext, services: ServicesDep
) -> ThreadLockState:
    """Unlock a thread."""
    return await _set_lock(services, thread_id, ctx, locked=False)


async def _set_lock(
    services: ServicesDep, thread_id: str, ctx: WriteContext, *, locked: bool
) -> ThreadLockState:
    saved = await services.bus.run(LockThread(thread_id, locked), ctx)
    return ThreadLockState(id=saved.id, locked=saved.locked, version=saved.version)
