"""Reads waiting for a thread's projection to reach a version (`min_version`), woken by the
fold's progress instead of each polling the database; and the process's live updates
(services/api/live_hub.py), told the same news by the same subscription.

One `FoldWaits` per API process, started and stopped by the app's lifespan. Two tasks wake
the waiters and tell the live hub:
- a Redis pub/sub subscriber, for the worker's "thread T is at version V" (see
  shared/fold_progress.py): a waiter hears of its fold at once;
- a slow poll, one statement every `poll_seconds` covering every thread someone waits
  for or follows live, and only while someone does: a lost announcement, a Redis restart
  or no Redis at all delays a wait by at most that long, never past its deadline, and never
  loses it. Every `UNREAD_POLL_EVERY` polls it also has the live readers' unread counts
  read again (one statement), for lost notices of them.
"""

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from services.api.thread_versions import ThreadVersions
from shared.fold_progress import FoldProgress, UnreadChanged, channel, decode

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0
"""Pause before the subscriber tries Redis again after losing it."""
STOP_SECONDS = 5.0
UNREAD_POLL_EVERY = 20
"""Polls between two readings of the live readers' unread counts (10 s at the default)."""

# thread ids -> how far their projection is: one statement however many threads.
Checkpoints = Callable[[list[str]], dict[str, int]]


class FoldListener(Protocol):
    """Who else hears of fold progress (the live hub)."""

    def watched(self) -> Collection[str]:
        """Threads whose checkpoints the slow poll should read."""
        ...

    def folded(self, thread_id: str, version: int) -> None: ...

    def unread_changed(self, user_ids: Collection[str] | None) -> None:
        """These users' unread counts may have moved; None: anyone's."""
        ...


@dataclass
class _Waiter:
    version: int
    heard: int = 0
    """The furthest version heard of while waiting."""
    woken: asyncio.Event = field(default_factory=asyncio.Event)


class FoldWaits:
    def __init__(
        self,
        redis_url: str,
        checkpoints: Checkpoints,
        *,
        poll_seconds: float,
        listener: FoldListener | None = None,
        versions: ThreadVersions | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.versions = versions
        """Told every version heard of, for conditional reads (services/api/thread_versions.py)."""
        self.checkpoints = checkpoints
        self.poll_seconds = poll_seconds
        self.listener = listener
        self.subscribed = asyncio.Event()
        """Set while the subscriber listens (tests and readiness may look)."""
        self._waiters: dict[str, list[_Waiter]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="fold-waits-subscriber"),
            asyncio.create_task(self._poll(), name="fold-waits-poll"),
        ]

    async def stop(self) -> None:
        if not self._tasks:
            return
        for task in self._tasks:
            task.cancel()
        # asyncio.wait, not `await task` under suppress(CancelledError): that would also
        # swallow a cancellation aimed at the caller (the lifespan) and hang its shutdown.
        _, stuck = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
        for task in stuck:
            log.warning("%s did not stop within %g s", task.get_name(), STOP_SECONDS)
        self._tasks = []

    @property
    def waiting(self) -> int:
        """Reads waiting right now, in this process."""
        return sum(len(waiters) for waiters in self._waiters.values())

    async def wait(self, thread_id: str, version: int, timeout: float) -> int:
        """Until the thread's projection is known to have reached `version`, or `timeout`
        seconds; the furthest version heard of meanwhile (0: none). A fold that lands just
        before the call is heard of by the next poll."""
        waiter = _Waiter(version)
        self._waiters.setdefault(thread_id, []).append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter.woken.wait()
        except TimeoutError:
            pass
        finally:
            waiters = self._waiters[thread_id]
            waiters.remove(waiter)
            if not waiters:
                del self._waiters[thread_id]
        return waiter.heard

    def advance(self, thread_id: str, version: int) -> None:
        """The thread's projection has reached `version`: wake whoever waited for it."""
        if self.versions is not None:
            self.versions.saw(thread_id, version)
        for waiter in self._waiters.get(thread_id, ()):
            waiter.heard = max(waiter.heard, version)
            if waiter.version <= version:
                waiter.woken.set()

    async def _listen(self) -> None:
        lost = False
        while True:
            client = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=1.0)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                db = int(client.connection_pool.connection_kwargs.get("db", 0))
                await pubsub.subscribe(channel(db))
                self.subscribed.set()
                if lost:
                    log.info("listening to fold progress again")
                    lost = False
                async for message in pubsub.listen():
                    self._heard(message["data"])
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                if not lost:
                    log.warning("fold progress not heard (%s); waits fall back to polling", exc)
                    lost = True
            finally:
                self.subscribed.clear()
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
                await client.aclose()
            await asyncio.sleep(RECONNECT_SECONDS)

    def _heard(self, payload: bytes) -> None:
        message = decode(payload)
        if isinstance(message, FoldProgress):
            self.advance(message.thread_id, message.version)
            if self.listener is not None:
                self.listener.folded(message.thread_id, message.version)
                if message.notified != ():
                    self.listener.unread_changed(message.notified)
        elif isinstance(message, UnreadChanged) and self.listener is not None:
            self.listener.unread_changed(message.user_ids)

    async def _poll(self) -> None:
        polls = 0
        while True:
            await asyncio.sleep(self.poll_seconds)
            polls += 1
            if self.listener is not None and polls % UNREAD_POLL_EVERY == 0:
                self.listener.unread_changed(None)
            watched = self.listener.watched() if self.listener is not None else ()
            threads = list(self._waiters.keys() | watched)
            if not threads:
                continue
            try:
                reached = await run_in_threadpool(self.checkpoints, threads)
            except SQLAlchemyError as exc:
                log.warning("could not poll fold progress: %s", exc)
                continue
            for thread_id, version in reached.items():
                self.advance(thread_id, version)
                if self.listener is not None:
                    self.listener.folded(thread_id, version)
