"""Handlers for decisions about people: bans (for good, or until a moment) and
pre-moderation (moderators and admins).

A decision about a person is a fact about them, so it goes to their own stream
(`shared.streams.user_stream`). `banned_users` (now) and `ban_history` (by log position),
or `premod_users`, are updated in the same transaction, with the decision's row in the
audit log's index. A request that would leave things as they are appends nothing:
banning someone banned until the same moment, unbanning someone not banned.

Banned means `until IS NULL OR until > now`: a suspension ends by itself, with no event
and no job; the row stays until the next decision about that person replaces it.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import events as ev
from shared.commands import BanUser, RequestContext, SetPremod, UnbanUser
from shared.errors import Forbidden, InvalidInput
from shared.moderation_log import record_decisions
from shared.moderation_tables import (
    ban_history,
    banned_users,
    premod_users,
    trusted_authors,
)
from shared.results import BanState, PremodState
from shared.store import STREAMS, StoredEvent
from shared.streams import user_stream
from shared.timeutil import as_utc
from shared.tokens import MAX_ID_LENGTH
from shared.user_handlers import Append

MAX_REASON_CHARS = 1000

_NOW = sa.bindparam("now", type_=banned_users.c.until.type)
_IN_FORCE = sa.or_(banned_users.c.until.is_(None), banned_users.c.until > _NOW)
_BANNED = sa.select(banned_users.c.user_id).where(
    banned_users.c.user_id == sa.bindparam("user_id"), _IN_FORCE
)
# What decides whether a comment is held, of the person posting it (`:user_id` at `:now`):
# `shared.posting_facts` reads it with the rest of what posting checks.
AUTHOR_FLAGS = (
    sa.exists().where(banned_users.c.user_id == sa.bindparam("user_id"), _IN_FORCE).label("banned"),
    sa.exists().where(premod_users.c.user_id == sa.bindparam("user_id")).label("premod"),
    sa.exists().where(trusted_authors.c.user_id == sa.bindparam("user_id")).label("trusted"),
)


def is_banned(conn: Connection, user_id: str) -> bool:
    return conn.execute(_BANNED, {"user_id": user_id, "now": datetime.now(UTC)}).first() is not None


def check_reason(reason: str) -> str:
    """A moderator's reason as stored: trimmed, bounded, without NUL."""
    reason = reason.strip()
    if len(reason) > MAX_REASON_CHARS or "\x00" in reason:
        raise InvalidInput(
            f"the reason is at most {MAX_REASON_CHARS} characters, without NUL",
            code="invalid_reason",
        )
    return reason


class ModerationHandlers:
    def __init__(self, append: Append) -> None:
        self._append = append

    def ban(self, conn: Connection, cmd: BanUser, ctx: RequestContext) -> BanState:
        _check_moderator(ctx)
        _check_user_id(cmd.user_id)
        if cmd.user_id == ctx.actor.id:
            raise InvalidInput("you cannot ban yourself", code="cannot_ban_yourself")
        reason = check_reason(cmd.reason)
        now = datetime.now(UTC)
        until = _until(cmd.until, now)
        version, ban = _user_state(conn, cmd.user_id)
        if ban is not None and ban.in_force(now) and ban.until == until:
            return _ban_state(cmd.user_id, until)  # the same ban: nothing to append
        event = ev.UserBanned(user_id=cmd.user_id, reason=reason, by=ctx.actor.id, until=until)
        stored = self._append_to(conn, ctx, cmd.user_id, version, event)
        values = {"banned_at": stored.recorded_at, "position": stored.position, "until": until}
        if ban is None:
            conn.execute(banned_users.insert().values(user_id=cmd.user_id, **values))
        else:  # a new ban over an old one (lapsed, or another `until`)
            conn.execute(
                banned_users.update().where(banned_users.c.user_id == cmd.user_id).values(values)
            )
        _record_history(conn, cmd.user_id, stored, banned=True, until=until)
        return _ban_state(cmd.user_id, until)

    def unban(self, conn: Connection, cmd: UnbanUser, ctx: RequestContext) -> BanState:
        _check_moderator(ctx)
        _check_user_id(cmd.user_id)
        version, ban = _user_state(conn, cmd.user_id)
        if ban is not None and ban.in_force(datetime.now(UTC)):
            event = ev.UserUnbanned(user_id=cmd.user_id, by=ctx.actor.id)
            stored = self._append_to(conn, ctx, cmd.user_id, version, event)
            conn.execute(banned_users.delete().where(banned_users.c.user_id == cmd.user_id))
            _record_history(conn, cmd.user_id, stored, banned=False, until=None)
        return BanState(user_id=cmd.user_id, banned=False)

    def set_premod(self, conn: Connection, cmd: SetPremod, ctx: RequestContext) -> PremodState:
        if not ctx.actor.is_moderator:
            raise Forbidden("only a moderator or an admin may put a user on pre-moderation")
        _check_user_id(cmd.user_id)
        row = conn.execute(
            sa.select(
                sa.select(STREAMS.c.version)
                .where(STREAMS.c.stream_id == user_stream(cmd.user_id))
                .scalar_subquery()
                .label("version"),
                sa.exists().where(premod_users.c.user_id == cmd.user_id).label("premod"),
            )
        ).one()
        if bool(row.premod) != cmd.on:
            event = ev.UserPremodChanged(user_id=cmd.user_id, on=cmd.on, by=ctx.actor.id)
            stored = self._append_to(conn, ctx, cmd.user_id, row.version or 0, event)
            if cmd.on:
                conn.execute(
                    premod_users.insert().values(user_id=cmd.user_id, position=stored.position)
                )
            else:
                conn.execute(premod_users.delete().where(premod_users.c.user_id == cmd.user_id))
        return PremodState(user_id=cmd.user_id, premod=cmd.on)

    def _append_to(
        self,
        conn: Connection,
        ctx: RequestContext,
        user_id: str,
        version: int,
        event: ev.DomainEvent,
    ) -> StoredEvent:
        stored = self._append(conn, ctx, user_stream(user_id), version, event)
        record_decisions(conn, stored)
        return stored[-1]


def _until(given: str | None, now: datetime) -> datetime | None:
    if given is None:
        return None
    try:
        until = datetime.fromisoformat(given)
    except ValueError:
        raise InvalidInput("until is an ISO 8601 moment", code="invalid_until") from None
    if until.tzinfo is None:
        raise InvalidInput("until must say its time zone (e.g. Z)", code="invalid_until")
    try:
        until = until.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last moment Python knows
        raise InvalidInput("until is too far ahead", code="invalid_until") from None
    if until <= now:
        raise InvalidInput("until must be in the future", code="invalid_until")
    return until


def _ban_state(user_id: str, until: datetime | None) -> BanState:
    return BanState(
        user_id=user_id, banned=True, until=None if until is None else until.isoformat()
    )


def _record_history(
    conn: Connection, user_id: str, stored: StoredEvent, *, banned: bool, until: datetime | None
) -> None:
    conn.execute(
        ban_history.insert().values(
            user_id=user_id, position=stored.position, banned=banned, until=until
        )
    )


@dataclass(frozen=True, slots=True)
class _Ban:
    """A `banned_users` row: in force, or a suspension that has lapsed."""

    until: datetime | None

    def in_force(self, now: datetime) -> bool:
        return self.until is None or self.until > now


def _user_state(conn: Connection, user_id: str) -> tuple[int, _Ban | None]:
    """The user's stream version and their `banned_users` row, from one snapshot."""
    version = sa.select(STREAMS.c.version).where(STREAMS.c.stream_id == user_stream(user_id))
    mine = banned_users.c.user_id == user_id
    row = conn.execute(
        sa.select(
            version.scalar_subquery().label("version"),
            sa.exists().where(mine).label("has_row"),
            sa.select(banned_users.c.until).where(mine).scalar_subquery().label("until"),
        )
    ).one()
    return row.version or 0, _Ban(as_utc(row.until)) if row.has_row else None


def _check_moderator(ctx: RequestContext) -> None:
    if not ctx.actor.is_moderator:
        raise Forbidden("only a moderator or an admin may ban or unban a user")


def _check_user_id(user_id: str) -> None:
    if not 0 < len(user_id) <= MAX_ID_LENGTH or "\x00" in user_id:
        raise InvalidInput("not a valid user id", code="invalid_user_id")
