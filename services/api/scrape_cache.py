"""A reading shared by concurrent callers and kept for a few seconds: single flight.

`/metrics` reads the database and Redis (projection lag, dead letters, the outbox, the
queue). However many scrapers ask, and however often, each API process reads at most once
per `CHORUS_METRICS_CACHE_SECONDS`, and scrapes that arrive while a reading is under way
wait for it and share it instead of starting their own. A reading that raises is shared
with nobody: the next caller reads again.
"""

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

T = TypeVar("T")


@dataclass(frozen=True)
class _Reading(Generic[T]):
    value: T
    fresh_until: float  # on the monotonic clock, counted from when the reading began
    number: int  # readings finished by then, this one included


class SingleFlight(Generic[T]):
    """The latest value of `read()`: at most one reading at a time, reused for `ttl_seconds`."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._changed = threading.Condition()
        self._latest: _Reading[T] | None = None
        self._reading = False
        self._finished = 0  # readings finished, successful or not
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Callers waiting for the reading under way (for tests and debugging)."""
        return self._waiting

    def get(self, read: Callable[[], T]) -> T:
        with self._changed:
            while True:
                latest = self._latest
                if latest is not None and self._clock() < latest.fresh_until:
                    return latest.value
                if not self._reading:
                    break
                before = self._finished
                self._waiting += 1
                try:
                    while self._finished == before:
                        self._changed.wait()
                finally:
                    self._waiting -= 1
                latest = self._latest
                if latest is not None and latest.number > before:
                    return latest.value  # the reading we waited for: shared, even with no ttl
            self._reading = True
        started = self._clock()
        try:
            value = read()
        except BaseException:
            with self._changed:
                self._reading = False
                self._finished += 1
                self._changed.notify_all()
            raise
        with self._changed:
            self._finished += 1
            self._latest = _Reading(value, started + self.ttl_seconds, self._finished)
            self._reading = False
            self._changed.notify_all()
        return value


class CachedCollector:
    """A Prometheus collector that answers with `source`'s families, read through `cache`."""

    def __init__(self, cache: SingleFlight[list[Metric]], source: Collector) -> None:
        self.cache = cache
        self.source = source

    def collect(self) -> Iterable[Metric]:
        return self.cache.get(lambda: list(self.source.collect()))
