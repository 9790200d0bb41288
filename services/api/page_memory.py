"""Anonymous answers kept in memory, by request and thread version: a hot story's readers
without a copy of their own get the page the last of them was given, while it is current.

An entry is what a read route answered an anonymous request with (200, our ETag naming
the thread and version the answer shows): its body and the headers the route set. It is
handed out again only for the same request (`read_caching.request_key`: path and sorted
query, `min_version` aside) while the thread's version that this process heard from the
fold is still the entry's, the same proof a 304 from memory rests on (decision 27): what a
read would answer now is what was answered then. Bounded in bytes, least recently used
first out; a body larger than a tenth of the bound is never kept.
"""

from collections import OrderedDict
from dataclasses import dataclass

DEFAULT_MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Remembered:
    thread_id: str
    version: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


class PageMemory:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Remembered] = OrderedDict()
        self._bytes = 0

    def recall(self, request: str) -> Remembered | None:
        found = self._entries.get(request)
        if found is not None:
            self._entries.move_to_end(request)
        return found

    def keep(self, request: str, answer: Remembered) -> None:
        if len(answer.body) > self.max_bytes // 10:
            return
        self.forget(request)
        self._entries[request] = answer
        self._bytes += len(answer.body)
        while self._bytes > self.max_bytes:
            _, oldest = self._entries.popitem(last=False)
            self._bytes -= len(oldest.body)

    def forget(self, request: str) -> None:
        gone = self._entries.pop(request, None)
        if gone is not None:
            self._bytes -= len(gone.body)

    @property
    def size(self) -> int:
        """Bytes of bodies held."""
        return self._bytes
