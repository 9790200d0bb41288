"""Bans and notification preferences as they stood at any log position of a fold batch.

`ban_history` and `preference_history` hold one row per change, keyed by the change's log
position. A batch of comments needs, for each comment, its users' rows as of the comment's
position. One query loads what a whole batch can need: for each user, the newest row
before the batch's first comment and every row up to its last; lookups then run in memory.

A ban may be a suspension (`until`): it ends by itself, with no event to mark the end, so
"banned at this position" also needs the moment the comment was recorded, which is just as
fixed in the log as its position (a refold gives the same answer).
"""

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.moderation_tables import ban_history
from shared.notification_tables import preference_history
from shared.timeutil import as_utc

CHUNK = 1000
Preferences = tuple[str, str]  # (notify_on, email_frequency)
Ban = tuple[bool, datetime | None]  # (banned, until: None for good)
T = TypeVar("T")


@dataclass
class _Timeline(Generic[T]):
    """One user's changes of one kind, oldest first."""

    positions: list[int] = field(default_factory=list)
    values: list[T] = field(default_factory=list)

    def add(self, position: int, value: T) -> None:
        self.positions.append(position)
        self.values.append(value)

    def as_of(self, position: int) -> T | None:
        """The value of the newest change before `position`, if any."""
        index = bisect_left(self.positions, position)
        return self.values[index - 1] if index else None


@dataclass
class HistoryAsOf:
    bans: dict[str, _Timeline[Ban]] = field(default_factory=dict)
    preferences: dict[str, _Timeline[Preferences]] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: Connection, users: Iterable[str], first: int, last: int) -> "HistoryAsOf":
        """Everything needed to answer for `users` at any position in `[first, last]`."""
        history = cls()
        wanted = sorted(set(users))
        for chunk in (wanted[i : i + CHUNK] for i in range(0, len(wanted), CHUNK)):
            rows = conn.execute(_HISTORY, {"users": chunk, "first": first, "last": last})
            for row in rows:
                if row.kind == "ban":
                    history.bans.setdefault(row.user_id, _Timeline()).add(
                        row.position, (row.banned, as_utc(row.until))
                    )
                else:
                    history.preferences.setdefault(row.user_id, _Timeline()).add(
                        row.position, (row.notify_on, row.email_frequency)
                    )
        return history

    def banned(self, user: str, position: int, at: datetime) -> bool:
        """Was `user` banned just before `position` in the log, recorded at `at`?

        A suspension over by `at` is no ban (banned means `until` is None or after `at`).
        """
        timeline = self.bans.get(user)
        ban = timeline.as_of(position) if timeline else None
        if ban is None or not ban[0]:
            return False
        until = ban[1]
        return until is None or as_utc(at) < until

    def preferences_of(self, user: str, position: int) -> Preferences | None:
        """`user`'s preferences just before `position`; None if they never set any."""
        timeline = self.preferences.get(user)
        return timeline.as_of(position) if timeline else None


def _rows(
    kind: str,
    history: sa.Table,
    *,
    banned: sa.ColumnElement[Any] | None = None,
    until: sa.ColumnElement[Any] | None = None,
    notify_on: sa.ColumnElement[Any] | None = None,
    email_frequency: sa.ColumnElement[Any] | None = None,
) -> sa.Select[Any]:
    """A history's rows of `users` that can matter in `[first, last]`, in a common shape."""
    first = sa.bindparam("first", type_=sa.BigInteger)
    earlier = history.alias("earlier")
    newest_before_first = (
        sa.select(sa.func.max(earlier.c.position))
        .where(earlier.c.user_id == history.c.user_id, earlier.c.position < first)
        .scalar_subquery()
    )
    return sa.select(
        sa.literal(kind).label("kind"),
        history.c.user_id,
        history.c.position,
        _or_null(banned, sa.Boolean()).label("banned"),
        _or_null(until, sa.DateTime(timezone=True)).label("until"),
        _or_null(notify_on, sa.String()).label("notify_on"),
        _or_null(email_frequency, sa.String()).label("email_frequency"),
    ).where(
        history.c.user_id.in_(sa.bindparam("users", expanding=True)),
        history.c.position < sa.bindparam("last", type_=sa.BigInteger),
        sa.or_(history.c.position >= first, history.c.position == newest_before_first),
    )


def _or_null(column: sa.ColumnElement[Any] | None, type_: Any) -> sa.ColumnElement[Any]:
    return column if column is not None else sa.cast(sa.null(), type_)


# Built once (building and keying it costs more CPU than running it); ordered by position,
# so each timeline is built oldest first.
_HISTORY = sa.union_all(
    _rows("ban", ban_history, banned=ban_history.c.banned, until=ban_history.c.until),
    _rows(
        "preferences",
        preference_history,
        notify_on=preference_history.c.notify_on,
        email_frequency=preference_history.c.email_frequency,
    ),
).order_by("position")
