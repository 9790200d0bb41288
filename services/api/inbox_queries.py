"""Reads of one user's inbox, preferences and subscriptions.

A notification is read when the user marked it (`notification_reads`) or marked
everything up to a log position at or past it (`notification_read_marks`: one row per
user). Notifications are served from the notification projection; what was read comes
from the write side, so a mark shows at once, before any fold.

A page costs two statements in one snapshot (the page, the unread count), both ranges
on the (recipient_id, position) index. Position is unique per recipient (one
notification per comment, one comment per log position), so it alone is the keyset.
"""

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shared.db import read_connection, read_snapshot
from shared.notification_tables import (
    notification_read_marks,
    notification_reads,
    notifications,
    thread_subscriptions,
)
from shared.timeutil import as_utc
from shared.user_handlers import current_preferences

DEFAULT_LEVEL = "default"

_N = notifications
_R = notification_reads
_M = notification_read_marks
_S = thread_subscriptions
_USER_ID = sa.bindparam("user_id", type_=sa.String)
_THREAD_ID = sa.bindparam("thread_id", type_=sa.String)
_BEFORE = sa.bindparam("before", type_=sa.BigInteger)
_LIMIT = sa.bindparam("limit", type_=sa.Integer)
_MARKED_UP_TO = sa.select(_M.c.up_to_position).where(_M.c.user_id == _USER_ID).scalar_subquery()
_READ_ONE_BY_ONE = sa.exists().where(_R.c.user_id == _USER_ID, _R.c.comment_id == _N.c.comment_id)
# Unread: past the user's mark (a range on the index) and not marked one by one.
_UNREAD_COUNT = (
    sa.select(sa.func.count())
    .select_from(_N)
    .where(
        _N.c.recipient_id == _USER_ID,
        _N.c.position > sa.func.coalesce(_MARKED_UP_TO, 0),
        ~_READ_ONE_BY_ONE,
    )
)
_SUBSCRIPTION = sa.select(_S.c.level).where(_S.c.thread_id == _THREAD_ID, _S.c.user_id == _USER_ID)


@dataclass(frozen=True)
class NotificationRecord:
    comment_id: str
    kind: str
    thread_id: str
    actor_id: str
    actor_name: str
    excerpt: str
    position: int
    created_at: datetime
    read_at: datetime | None


@dataclass(frozen=True)
class InboxPage:
    notifications: list[NotificationRecord]
    unread_count: int
    next_position: int | None
    """Continue with notifications before this position; None: this was the last page."""


def inbox_page(
    engine: Engine, user_id: str, *, unread_only: bool, before: int | None, limit: int
) -> InboxPage:
    """Up to `limit` of the user's notifications, newest first, before position `before`."""
    params: dict[str, object] = {"user_id": user_id, "limit": limit + 1}
    if before is not None:
        params["before"] = before
    with read_snapshot(engine) as conn:
        rows = conn.execute(_page_statement(unread_only, before is not None), params).all()
        unread = _unread_count(conn, user_id)
    shown = [
        NotificationRecord(
            comment_id=row.comment_id,
            kind=row.kind,
            thread_id=row.thread_id,
            actor_id=row.actor_id,
            actor_name=row.actor_name,
            excerpt=row.excerpt,
            position=row.position,
            created_at=as_utc(row.created_at),
            read_at=as_utc(row.read_at),
        )
        for row in rows[:limit]
    ]
    more = len(rows) > limit
    return InboxPage(shown, unread, shown[-1].position if more else None)


def unread_count(engine: Engine, user_id: str) -> int:
    with read_connection(engine) as conn:
        return _unread_count(conn, user_id)


def preferences(engine: Engine, user_id: str) -> tuple[str, str]:
    """(notify_on, email_frequency), the defaults until the user changes them."""
    with read_connection(engine) as conn:
        return current_preferences(conn, user_id)


def subscription_level(engine: Engine, thread_id: str, user_id: str) -> str:
    """The user's level for the thread as folded so far (`default` until one is folded)."""
    with read_connection(engine) as conn:
        level = conn.execute(_SUBSCRIPTION, {"thread_id": thread_id, "user_id": user_id}).scalar()
    return str(level) if level is not None else DEFAULT_LEVEL


def _unread_count(conn: Connection, user_id: str) -> int:
    return int(conn.execute(_UNREAD_COUNT, {"user_id": user_id}).scalar_one())


@cache
def _page_statement(unread_only: bool, paged: bool) -> sa.Select[Any]:
    """Built once per variant: compiling per request would cost more than running it."""
    marked = _N.c.position <= _M.c.up_to_position
    read_at = sa.func.coalesce(_R.c.read_at, sa.case((marked, _M.c.read_at)))
    statement = (
        sa.select(
            _N.c.comment_id,
            _N.c.kind,
            _N.c.thread_id,
            _N.c.actor_id,
            _N.c.actor_name,
            _N.c.excerpt,
            _N.c.position,
            _N.c.created_at,
            read_at.label("read_at"),
        )
        .select_from(
            _N.outerjoin(
                _R, sa.and_(_R.c.user_id == _N.c.recipient_id, _R.c.comment_id == _N.c.comment_id)
            ).outerjoin(_M, _M.c.user_id == _N.c.recipient_id)
        )
        .where(_N.c.recipient_id == _USER_ID)
        .order_by(_N.c.position.desc())
        .limit(_LIMIT)
    )
    if paged:
        statement = statement.where(_N.c.position < _BEFORE)
    if unread_only:
        statement = statement.where(
            _R.c.user_id.is_(None),
            sa.or_(_M.c.up_to_position.is_(None), _N.c.position > _M.c.up_to_position),
        )
    return statement
