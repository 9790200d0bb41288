"""What an import did, counted: the final report of `chorus import`."""

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ImportReport:
    source: str
    dry_run: bool = False
    threads_imported: int = 0
    """Threads that got events in this run (new, or new comments in a known thread)."""
    threads_already_there: int = 0
    """Threads whose every event was already in the log: nothing appended."""
    threads_skipped: Counter[str] = field(default_factory=Counter)
    """Reason -> threads refused whole (a reply cycle, the source's own reasons, an
    append the database refused)."""
    skipped_thread_keys: list[tuple[str, str]] = field(default_factory=list)
    """(source key, reason or detail) of the first few skipped threads, to name them."""
    thread_ids_from: Counter[str] = field(default_factory=Counter)
    """identifier | url | key -> threads whose Chorus id was taken from it."""
    comments_imported: int = 0
    comments_already_there: int = 0
    comments_skipped: Counter[str] = field(default_factory=Counter)
    parents_missing: int = 0
    """Replies whose parent is not in the thread: imported as top-level comments."""
    flattened: int = 0
    """Replies nested deeper than Chorus allows: attached at the deepest level allowed."""
    events_appended: int = 0

    MAX_NAMED = 20

    def skip_thread(self, key: str, reason: str, detail: str | None = None) -> None:
        self.threads_skipped[reason] += 1
        if len(self.skipped_thread_keys) < self.MAX_NAMED:
            self.skipped_thread_keys.append((key, detail or reason))

    @property
    def threads_seen(self) -> int:
        skipped = sum(self.threads_skipped.values())
        return self.threads_imported + self.threads_already_there + skipped
