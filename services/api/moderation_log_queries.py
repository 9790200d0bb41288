"""The audit log: moderators' decisions, newest first, read through `moderation_log`.

`moderation_log` holds the log position of each decision event (and its thread); the
entry itself is the event, read by that position: who decided (the event metadata's
actor id, with the name `people` holds for them now: the log keeps no names, decision
33), what, about whom, why and when. A page is one statement: the index walked backwards
from the cursor, joined to `events` by primary key and to `people` by the actor's id.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.db import read_connection
from shared.moderation_tables import moderation_log
from shared.notification_tables import people
from shared.store import EVENTS
from shared.streams import USER_STREAM_PREFIX
from shared.timeutil import as_utc

# The audit log's name for each decision event (CommentDeleted: by a moderator).
ACTIONS = {
    "CommentApproved": "approve",
    "CommentRejected": "reject",
    "CommentFeatured": "feature",
    "CommentUnfeatured": "unfeature",
    "CommentDeleted": "delete",
    "UserBanned": "ban",
    "UserUnbanned": "unban",
    "ModerationSettingsChanged": "settings",
    "ThreadModerationChanged": "thread_moderation",
    "ThreadLocked": "lock",
    "ThreadUnlocked": "unlock",
}


@dataclass(frozen=True, slots=True)
class Moderator:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # comment | user | thread | site
    id: str | None  # None for the site
    thread_id: str | None = None  # a comment's thread


@dataclass(frozen=True, slots=True)
class Entry:
    action: str
    moderator: Moderator
    target: Target
    reason: str | None
    until: datetime | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    entries: list[Entry]
    next_before: int | None  # the position to continue below; None: the last page


def listing(thread_id: str | None) -> str:
    """What a cursor is for: the whole log, or one thread's decisions."""
    return f"moderation-log:{thread_id or ''}"


def decisions(engine: Engine, *, thread_id: str | None, before: int | None, limit: int) -> Page:
    query = (
        sa.select(
            EVENTS.c.position,
            EVENTS.c.stream_id,
            EVENTS.c.type,
            EVENTS.c.data,
            EVENTS.c.metadata,
            EVENTS.c.recorded_at,
            people.c.name.label("actor_name"),
        )
        .select_from(moderation_log)
        .join(EVENTS, EVENTS.c.position == moderation_log.c.position)
        .outerjoin(people, people.c.user_id == EVENTS.c.metadata["actor"]["id"].as_string())
        .order_by(moderation_log.c.position.desc())
        .limit(limit + 1)
    )
    if thread_id is not None:
        query = query.where(moderation_log.c.thread_id == thread_id)
    if before is not None:
        query = query.where(moderation_log.c.position < before)
    with read_connection(engine) as conn:
        rows = conn.execute(query).all()
    shown = rows[:limit]
    more = len(rows) > limit
    return Page(
        entries=[_entry(row) for row in shown],
        next_before=shown[-1].position if more else None,
    )


def _entry(row: Any) -> Entry:
    data: dict[str, Any] = row.data
    actor: dict[str, Any] = row.metadata.get("actor") or {}
    name = row.actor_name or ""  # an erased moderator has no name left
    if row.type == "UserPremodChanged":
        action = "premod" if data.get("on") else "unpremod"
    else:
        action = ACTIONS.get(row.type, row.type)
    until = data.get("until")
    return Entry(
        action=action,
        moderator=Moderator(id=str(actor.get("id", "")), name=str(name)),
        target=_target(row.stream_id, data),
        reason=data.get("reason") or None,
        until=None if until is None else datetime.fromisoformat(until),
        at=as_utc(row.recorded_at),
    )


def _target(stream_id: str, data: dict[str, Any]) -> Target:
    if "comment_id" in data:
        return Target("comment", data["comment_id"], stream_id)
    if stream_id.startswith(USER_STREAM_PREFIX):
        return Target("user", stream_id.removeprefix(USER_STREAM_PREFIX))
    if stream_id.startswith("~"):
        return Target("site", None)
    return Target("thread", stream_id)
