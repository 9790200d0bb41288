"""Fold progress on Redis pub/sub: "thread T's projection is at version V", and "these
readers' unread counts may have changed".

The worker announces a fold after it commits, naming the users the fold notified (opaque
subject ids, nothing else about them); the API announces a reader's mark-read after it
commits. Each API process listens once and wakes the reads waiting for that thread
(`min_version`) and its live subscribers (services/api/live_hub.py). Like a nudge, an
announcement is a signal, never the truth: a lost one (no subscriber, a Redis restart, no
Redis at all) costs latency, because the API also polls the projection, slowly. Pub/sub
ignores Redis database numbers, so the channel is named after the database, keeping
deployments that share a Redis server (on different databases) apart.
"""

import json
import logging
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

MAX_NOTIFIED = 500
"""Users one announcement names; a fold that notified more says "many" (`notified=None`),
and every connected reader's count is read again."""


def channel(db: int) -> str:
    """The channel of a deployment whose Redis database is `db`."""
    return f"chorus:{db}:folded"


@dataclass(frozen=True)
class FoldProgress:
    thread_id: str
    version: int
    notified: tuple[str, ...] | None = ()
    """Users this fold gave new notifications; None: too many to name."""

    def encode(self) -> str:
        message: dict[str, Any] = {"thread_id": self.thread_id, "version": self.version}
        if self.notified is None or len(self.notified) > MAX_NOTIFIED:
            message["notified"] = None
        elif self.notified:
            message["notified"] = list(self.notified)
        return json.dumps(message)

    @classmethod
    def decode(cls, payload: bytes | str) -> "FoldProgress | None":
        """The announcement in `payload`, or None if it is not one (ignored, never fatal)."""
        message = decode(payload)
        return message if isinstance(message, FoldProgress) else None


@dataclass(frozen=True)
class UnreadChanged:
    """These users' unread counts changed outside a fold (they marked notifications read)."""

    user_ids: tuple[str, ...]

    def encode(self) -> str:
        return json.dumps({"unread_changed": list(self.user_ids)})


Announcement = FoldProgress | UnreadChanged


def decode(payload: bytes | str) -> Announcement | None:
    """The announcement in `payload`, or None if it is not one (ignored, never fatal)."""
    try:
        data = json.loads(payload)
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    if "unread_changed" in data:
        users = _user_ids(data["unread_changed"])
        return UnreadChanged(users) if users is not None else None
    thread_id, version = data.get("thread_id"), data.get("version")
    if not isinstance(thread_id, str) or type(version) is not int:
        return None
    named = data.get("notified", [])
    # A malformed list names nobody: the slow unread poll still covers them.
    notified = None if named is None else (_user_ids(named) or ())
    return FoldProgress(thread_id, version, notified)


def _user_ids(value: object) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(user, str) for user in value):
        return None
    return tuple(value)


def announce(redis: Redis, message: Announcement) -> None:
    """Publish `message`; a Redis error is logged, never raised: what it tells is committed."""
    db = int(redis.connection_pool.connection_kwargs.get("db", 0))
    try:
        redis.publish(channel(db), message.encode())
    except RedisError as exc:
        log.warning("could not announce %s: %s", message, exc)
