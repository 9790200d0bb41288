"""Fold progress on Redis pub/sub: "thread T's projection is at version V".

The worker announces it after a fold commits; each API process listens and wakes the reads
waiting for that thread (`min_version`). Like a nudge, an announcement is a signal, never
the truth: a lost one (no subscriber, a Redis restart, no Redis at all) costs latency,
because waiting reads also poll the projection, slowly. Pub/sub ignores Redis database
numbers, so the channel is named after the database, keeping deployments that share a
Redis server (on different databases) apart.
"""

import json
import logging
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def channel(db: int) -> str:
    """The channel of a deployment whose Redis database is `db`."""
    return f"chorus:{db}:folded"


@dataclass(frozen=True)
class FoldProgress:
    thread_id: str
    version: int

    def encode(self) -> str:
        return json.dumps({"thread_id": self.thread_id, "version": self.version})

    @classmethod
    def decode(cls, payload: bytes | str) -> "FoldProgress | None":
        """The announcement in `payload`, or None if it is not one (ignored, never fatal)."""
        try:
            data = json.loads(payload)
            thread_id, version = data["thread_id"], data["version"]
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(thread_id, str) or type(version) is not int:
            return None
        return cls(thread_id, version)


def announce(redis: Redis, progress: FoldProgress) -> None:
    """Publish `progress`; a Redis error is logged, never raised: the fold has committed."""
    db = int(redis.connection_pool.connection_kwargs.get("db", 0))
    try:
        redis.publish(channel(db), progress.encode())
    except RedisError as exc:
        thread_id, version = progress.thread_id, progress.version
        log.warning("could not announce thread %s at version %d: %s", thread_id, version, exc)
