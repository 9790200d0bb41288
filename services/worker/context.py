"""The worker process's composition root: built once in `chorus worker`, used by jobs."""

from dataclasses import dataclass

from redis import Redis
from sqlalchemy.engine import Engine

from shared.db import create_db_engine
from shared.nudges import Nudger
from shared.settings import Settings
from shared.store import EventStore


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    engine: Engine
    store: EventStore
    redis: Redis
    nudger: Nudger

    def close(self) -> None:
        self.redis.close()
        self.engine.dispose()


_current: WorkerContext | None = None


def open_context(settings: Settings) -> WorkerContext:
    global _current  # one context per process, by design
    engine = create_db_engine(settings.database_url, pool_size=2)
    redis = Redis.from_url(settings.redis_url)
    _current = WorkerContext(settings, engine, EventStore(engine), redis, Nudger(redis))
    return _current


def current() -> WorkerContext:
    if _current is None:
        raise RuntimeError("no worker context: jobs run inside `chorus worker`")
    return _current
