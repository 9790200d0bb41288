"""Live updates in one API process: a feed per thread that has subscribers here.

The process's one fold-progress subscription (services/api/fold_waits.py) tells the hub
that thread T was folded up to V. The hub then reads T's new changes from the log once
(`live_queries.changes`), however many readers follow T here, and offers them to each
reader's queue. Queues are bounded: a reader who cannot keep up is dropped with a reset
rather than slowing anyone else. The slow poll covers lost announcements: it reports the
checkpoints of every followed thread too, and the feed reads only what it has not sent.

A reader's own catch-up (the replay after `Last-Event-ID`) is read for that reader alone,
once, at connect. Unread counts are read once per announcement for the connected readers
it names, in one statement.
"""

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from services.api.live_queries import Change, Changes

log = logging.getLogger(__name__)

# (thread, after, up_to, limit) -> the changes in that range (live_queries.changes).
ReadChanges = Callable[[str, int | None, int | None, int], Changes]
# users -> their unread counts (live_queries.unread_counts).
ReadUnread = Callable[[Sequence[str]], dict[str, int]]


@dataclass(frozen=True)
class Reset:
    """Too much to replay, or a reader who fell behind: reload at `version`, then follow."""

    version: int


@dataclass(frozen=True)
class Unread:
    count: int


Item = Change | Reset | Unread


@dataclass(eq=False)
class Subscriber:
    thread_id: str
    user_id: str | None
    queue: asyncio.Queue[Item]
    unread: int | None = None
    """The last count offered to this reader."""
    dropped: Reset | None = None
    """Set when its queue overflowed: the stream ends with this reset."""

    def offer(self, item: Item) -> bool:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True


@dataclass(eq=False)
class _Feed:
    subscribers: set[Subscriber] = field(default_factory=set)
    version: int | None = None
    """The last version offered to every subscriber (None: no catch-up has ended yet)."""
    wanted: int = 0
    """The furthest version heard of."""
    reading: asyncio.Task[None] | None = None


class LiveHub:
    def __init__(
        self,
        read_changes: ReadChanges,
        read_unread: ReadUnread,
        *,
        queue_size: int,
        max_replay: int,
    ) -> None:
        self._read_changes = read_changes
        self._unread_counts = read_unread
        self.queue_size = queue_size
        self.max_replay = max_replay
        self._feeds: dict[str, _Feed] = {}
        self._readers: dict[str, set[Subscriber]] = {}
        self._unread_due: set[str] = set()
        self._unread_task: asyncio.Task[None] | None = None
        self.feed_reads = 0
        """Shared reads of new changes (one per announcement per thread, not per reader)."""
        self.unread_reads = 0

    @property
    def subscribers(self) -> int:
        return sum(len(feed.subscribers) for feed in self._feeds.values())

    @property
    def signed_in(self) -> int:
        """Readers whose unread counts this process follows."""
        return sum(len(readers) for readers in self._readers.values())

    def watched(self) -> Collection[str]:
        """The threads someone follows here (the slow poll reads their checkpoints)."""
        return self._feeds.keys()

    def subscribe(self, thread_id: str, user_id: str | None) -> Subscriber:
        """Follow a thread from now on; what arrives meanwhile waits in the queue."""
        sub = Subscriber(thread_id, user_id, asyncio.Queue(self.queue_size))
        self._feeds.setdefault(thread_id, _Feed()).subscribers.add(sub)
        if user_id is not None:
            self._readers.setdefault(user_id, set()).add(sub)
            self.unread_changed([user_id])  # its first count, in order with later ones
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Forget `sub` (again: a no-op); a thread nobody follows any more stops its feed."""
        feed = self._feeds.get(sub.thread_id)
        if feed is not None and sub in feed.subscribers:
            feed.subscribers.discard(sub)
            if not feed.subscribers:
                del self._feeds[sub.thread_id]
                if feed.reading is not None:
                    feed.reading.cancel()
        if sub.user_id is not None and sub in self._readers.get(sub.user_id, ()):
            readers = self._readers[sub.user_id]
            readers.discard(sub)
            if not readers:
                del self._readers[sub.user_id]

    async def catch_up(self, sub: Subscriber, since: int | None) -> tuple[list[Item], int]:
        """What `sub` missed after `since` (None: nothing, it starts now), read for it alone,
        and the version it then stands at. A reset when that is more than `max_replay`
        changes, or when `since` is beyond what was ever folded."""
        read = await run_in_threadpool(
            self._read_changes, sub.thread_id, since, None, self.max_replay
        )
        if since is None:
            at = read.bound
        elif read.more or since > read.bound:
            return [Reset(read.bound)], read.bound
        else:
            at = max(since, read.bound)
        items: list[Item] = list(read.changes)
        feed = self._feeds.get(sub.thread_id)
        if feed is None or sub.dropped is not None:
            return items, at  # dropped meanwhile: the stream ends with its reset
        # The feed began at another reader's catch-up, further on: read the gap too.
        while feed.version is not None and feed.version > at:
            gap = await run_in_threadpool(
                self._read_changes, sub.thread_id, at, feed.version, self.max_replay
            )
            if gap.more:
                return [Reset(gap.bound)], gap.bound
            items.extend(gap.changes)
            at = max(at, gap.bound)
        if feed.version is None:
            feed.version = at
            self._follow(sub.thread_id, feed)
        return items, at

    def folded(self, thread_id: str, version: int) -> None:
        """The thread's projection is at `version`: read and offer what the feed lacks."""
        feed = self._feeds.get(thread_id)
        if feed is None:
            return
        feed.wanted = max(feed.wanted, version)
        self._follow(thread_id, feed)

    def _follow(self, thread_id: str, feed: _Feed) -> None:
        behind = feed.version is not None and feed.wanted > feed.version
        if behind and (feed.reading is None or feed.reading.done()):
            feed.reading = asyncio.create_task(self._read(thread_id, feed), name="live-feed")

    async def _read(self, thread_id: str, feed: _Feed) -> None:
        while feed.version is not None and feed.wanted > feed.version and feed.subscribers:
            after = feed.version
            try:
                read = await run_in_threadpool(
                    self._read_changes, thread_id, after, feed.wanted, self.max_replay
                )
            except SQLAlchemyError as exc:
                log.warning("could not read the changes of thread %s: %s", thread_id, exc)
                return  # the next announcement or poll tries again
            self.feed_reads += 1
            if read.bound <= after:
                return  # announced further than the projection shows (a rebuild's swap)
            items: list[Item] = [Reset(read.bound)] if read.more else list(read.changes)
            for sub in list(feed.subscribers):
                for item in items:
                    if not sub.offer(item):
                        self._drop(sub, Reset(read.bound))
                        break
            feed.version = read.bound

    def _drop(self, sub: Subscriber, reset: Reset) -> None:
        log.info("dropping a live reader of %s whose queue is full", sub.thread_id)
        sub.dropped = reset
        self.unsubscribe(sub)

    def unread_changed(self, user_ids: Collection[str] | None) -> None:
        """These users' unread counts may have moved (None: anyone's): read again the counts
        of those connected here, in one statement, and offer the ones that changed."""
        named = self._readers.keys() if user_ids is None else user_ids
        self._unread_due.update(user for user in named if user in self._readers)
        if self._unread_due and (self._unread_task is None or self._unread_task.done()):
            self._unread_task = asyncio.create_task(self._reread_unread(), name="live-unread")

    async def _reread_unread(self) -> None:
        while self._unread_due:
            users = sorted(self._unread_due)
            self._unread_due.clear()
            try:
                counts = await run_in_threadpool(self._unread_counts, users)
            except SQLAlchemyError as exc:
                log.warning("could not read unread counts: %s", exc)
                return  # the slow poll reads them again
            self.unread_reads += 1
            for user, count in counts.items():
                for sub in list(self._readers.get(user, ())):
                    if sub.unread != count:
                        sub.unread = count
                        if not sub.offer(Unread(count)):
                            self._drop(sub, Reset(self._feed_version(sub.thread_id)))

    def _feed_version(self, thread_id: str) -> int:
        feed = self._feeds.get(thread_id)
        if feed is None or feed.version is None:
            return 0
        return feed.version

    async def stop(self) -> None:
        tasks = [feed.reading for feed in self._feeds.values() if feed.reading is not None]
        if self._unread_task is not None:
            tasks.append(self._unread_task)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
