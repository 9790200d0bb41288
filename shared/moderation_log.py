"""The audit log's index: one `moderation_log` row per moderator's decision event.

The decisions themselves are events (with who, when and why in them); this only records
where they sit in the log, and the thread each is about, in the same transaction as the
append. The audit log reads those positions joined to `events`, newest first, without
scanning the log for the few event types that are decisions.
"""

from collections.abc import Iterable

from sqlalchemy.engine import Connection

from shared.moderation_tables import moderation_log
from shared.store import StoredEvent
from shared.streams import is_thread_stream

_INSERT = moderation_log.insert()


def record_decisions(conn: Connection, decisions: Iterable[StoredEvent]) -> None:
    """Index `decisions` (each one a decision event just appended)."""
    rows = [
        {
            "position": stored.position,
            "thread_id": stored.stream_id if is_thread_stream(stored.stream_id) else None,
        }
        for stored in decisions
    ]
    if rows:
        conn.execute(_INSERT, rows)
