"""The live hub on its own (no I/O): one read per announcement whatever the readers, and a
reader who cannot keep up is dropped with a reset while the others go on."""

import asyncio
from collections.abc import Sequence

from services.api.live_hub import LiveHub, Reset, Subscriber
from services.api.live_queries import Change, Changes


class FakeLog:
    """A thread whose projection has folded `folded` changes, all comments."""

    def __init__(self, folded: int) -> None:
        self.folded = folded
        self.reads: list[tuple[int | None, int | None]] = []

    def changes(self, thread: str, after: int | None, up_to: int | None, limit: int) -> Changes:
        self.reads.append((after, up_to))
        bound = self.folded if up_to is None else min(up_to, self.folded)
        if after is None or bound <= after:
            return Changes([], bound, more=False)
        if bound - after > limit:
            return Changes([], bound, more=True)
        return Changes(
            [Change(v, "comment", f"c{v}") for v in range(after + 1, bound + 1)], bound, False
        )

    def unread(self, users: Sequence[str]) -> dict[str, int]:
        return dict.fromkeys(users, 0)


def drained(sub: Subscriber) -> list[object]:
    items = []
    while not sub.queue.empty():
        items.append(sub.queue.get_nowait())
    return items


def test_readers_share_one_read_and_a_full_queue_drops_only_its_reader() -> None:
    async def scenario() -> None:
        log = FakeLog(folded=2)
        hub = LiveHub(log.changes, log.unread, queue_size=3, max_replay=100)
        slow, quick = hub.subscribe("t", None), hub.subscribe("t", None)
        assert await hub.catch_up(slow, 2) == ([], 2)
        assert await hub.catch_up(quick, 2) == ([], 2)
        reads_at_connect = len(log.reads)

        log.folded = 4
        hub.folded("t", 4)
        await asyncio.sleep(0.05)
        assert len(log.reads) == reads_at_connect + 1  # one read, two readers
        assert [c.version for c in drained(quick)] == [3, 4]  # type: ignore[attr-defined]

        log.folded = 6
        hub.folded("t", 6)  # `slow` never drained: 4 changes do not fit in 3
        await asyncio.sleep(0.05)
        assert slow.dropped == Reset(6)
        assert hub.subscribers == 1
        assert [c.version for c in drained(quick)] == [5, 6]  # type: ignore[attr-defined]
        hub.unsubscribe(quick)
        assert list(hub.watched()) == []
        await hub.stop()

    asyncio.run(scenario())


def test_a_reader_catching_up_after_the_feed_moved_misses_nothing() -> None:
    async def scenario() -> None:
        log = FakeLog(folded=2)
        hub = LiveHub(log.changes, log.unread, queue_size=10, max_replay=100)
        first = hub.subscribe("t", None)
        late = hub.subscribe("t", None)
        await hub.catch_up(first, 0)
        log.folded = 3
        hub.folded("t", 3)
        await asyncio.sleep(0.05)
        # `late` subscribed before the feed moved on: 3 is queued for it and read again.
        items, at = await hub.catch_up(late, 0)
        assert [c.version for c in items] == [1, 2, 3]  # type: ignore[union-attr]
        assert at == 3
        assert [c.version for c in drained(late)] == [3]  # type: ignore[attr-defined]
        await hub.stop()

    asyncio.run(scenario())
