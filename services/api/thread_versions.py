"""How far each thread's projection has folded, as this API process last learned it.

A conditional read (`If-None-Match`) needs only the thread's version to answer 304. Read
from the database, that lookup bounds a hot story's 304s at about a fifth of what the
framework serves (bench/README.md, "A hot story"). The fold announces every version it
commits (shared/fold_progress.py) and `FoldWaits` hears each one; recording them here lets
a 304 be answered from memory. A version is trusted for `max_age` seconds after it was
last heard or read: an announcement lost (a Redis blip) can then hold back a change from a
conditional reader for at most that long, as a shared cache's `max-age` already may.
"""

import time
from collections import OrderedDict

MAX_THREADS = 10_000
"""Threads remembered at once, least recently used first out: the hot ones stay."""


class ThreadVersions:
    def __init__(self, max_age: float, *, max_threads: int = MAX_THREADS) -> None:
        self.max_age = max_age
        self.max_threads = max_threads
        self._known: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def saw(self, thread_id: str, version: int) -> None:
        """The projection of `thread_id` is at `version` (or further) as of now."""
        if self.max_age <= 0:
            return
        known = self._known.pop(thread_id, None)
        if known is not None:
            version = max(version, known[0])
        self._known[thread_id] = (version, time.monotonic())
        while len(self._known) > self.max_threads:
            self._known.popitem(last=False)

    def fresh(self, thread_id: str) -> int | None:
        """The version last heard or read, if that was within `max_age`; else None."""
        known = self._known.get(thread_id)
        if known is None or time.monotonic() - known[1] > self.max_age:
            return None
        self._known.move_to_end(thread_id)
        return known[0]
