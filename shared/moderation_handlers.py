"""Handlers for bans: a moderator or an admin bans and unbans users.

A ban is a fact about the banned person, so it goes to their own stream
(`shared.streams.user_stream`); `banned_users` (now) and `ban_history` (by log position)
are updated in the same transaction. Banning twice or unbanning someone who is not
banned changes nothing and appends nothing.
"""

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import events as ev
from shared.commands import BanUser, RequestContext, UnbanUser
from shared.errors import Forbidden, InvalidInput
from shared.moderation_tables import ban_history, banned_users
from shared.results import BanState
from shared.store import STREAMS, StoredEvent
from shared.streams import user_stream
from shared.tokens import MAX_ID_LENGTH
from shared.user_handlers import Append

MAX_REASON_CHARS = 1000


_BANNED = sa.select(banned_users.c.user_id).where(banned_users.c.user_id == sa.bindparam("user_id"))


def is_banned(conn: Connection, user_id: str) -> bool:
    return conn.execute(_BANNED, {"user_id": user_id}).first() is not None


class ModerationHandlers:
    def __init__(self, append: Append) -> None:
        self._append = append

    def ban(self, conn: Connection, cmd: BanUser, ctx: RequestContext) -> BanState:
        _check_moderator(ctx)
        _check_user_id(cmd.user_id)
        if cmd.user_id == ctx.actor.id:
            raise InvalidInput("you cannot ban yourself", code="cannot_ban_yourself")
        reason = cmd.reason.strip()
        if len(reason) > MAX_REASON_CHARS or "\x00" in reason:
            raise InvalidInput(
                f"the reason is at most {MAX_REASON_CHARS} characters", code="invalid_reason"
            )
        version, banned = _user_state(conn, cmd.user_id)
        if not banned:
            event = ev.UserBanned(user_id=cmd.user_id, reason=reason, by=ctx.actor.id)
            stored = self._append_to(conn, ctx, cmd.user_id, version, event)
            conn.execute(
                banned_users.insert().values(
                    user_id=cmd.user_id, banned_at=stored.recorded_at, position=stored.position
                )
            )
            _record_history(conn, cmd.user_id, stored, banned=True)
        return BanState(user_id=cmd.user_id, banned=True)

    def unban(self, conn: Connection, cmd: UnbanUser, ctx: RequestContext) -> BanState:
        _check_moderator(ctx)
        _check_user_id(cmd.user_id)
        version, banned = _user_state(conn, cmd.user_id)
        if banned:
            event = ev.UserUnbanned(user_id=cmd.user_id, by=ctx.actor.id)
            stored = self._append_to(conn, ctx, cmd.user_id, version, event)
            conn.execute(banned_users.delete().where(banned_users.c.user_id == cmd.user_id))
            _record_history(conn, cmd.user_id, stored, banned=False)
        return BanState(user_id=cmd.user_id, banned=False)

    def _append_to(
        self,
        conn: Connection,
        ctx: RequestContext,
        user_id: str,
        version: int,
        event: ev.DomainEvent,
    ) -> StoredEvent:
        return self._append(conn, ctx, user_stream(user_id), version, event)[-1]


def _record_history(conn: Connection, user_id: str, stored: StoredEvent, *, banned: bool) -> None:
    conn.execute(
        ban_history.insert().values(user_id=user_id, position=stored.position, banned=banned)
    )


def _user_state(conn: Connection, user_id: str) -> tuple[int, bool]:
    """The user's stream version and whether they are banned, from one snapshot."""
    version = sa.select(STREAMS.c.version).where(STREAMS.c.stream_id == user_stream(user_id))
    banned = sa.exists().where(banned_users.c.user_id == user_id)
    row = conn.execute(
        sa.select(version.scalar_subquery().label("version"), banned.label("banned"))
    ).one()
    return row.version or 0, bool(row.banned)


def _check_moderator(ctx: RequestContext) -> None:
    if not ctx.actor.is_moderator:
        raise Forbidden("only a moderator or an admin may ban or unban a user")


def _check_user_id(user_id: str) -> None:
    if not 0 < len(user_id) <= MAX_ID_LENGTH or "\x00" in user_id:
        raise InvalidInput("not a valid user id", code="invalid_user_id")
