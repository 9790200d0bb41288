"""`chorus verify`: replay the log and report every row that disagrees with it.

Two kinds of tables are derived from the log:
- the write side, kept by the handlers in the same transaction as each append
  (`streams`, `thread_state`, `comment_state`, `comment_likes`, `user_preferences`,
  `preference_history`, `banned_users`, `ban_history`, `notification_reads`,
  `notification_read_marks`, and moderation's `comment_flags`, `premod_users`,
  `trusted_authors`, `moderation_settings`, `moderation_log`): each stream is replayed
  (`expected_write_side`, by the rules of `expected_moderation`) and the tables must
  match the replay exactly;
- the projections, folded by the workers (`thread_view`, `comment_view`,
  `thread_participants`, `thread_checkpoints`; `notifications`, `thread_subscriptions`,
  `conversation_participants`, `notification_comments`, `notification_checkpoints`):
  projections may lag the log, so each thread is folded, by the workers' own code, up to
  the checkpoint its live projection has reached, and must match that fold.

Nothing is written to the database verified. Everything is read in one snapshot
(PostgreSQL: a read-only REPEATABLE READ transaction, as pg_dump does; SQLite: one read
transaction), so concurrent writes and folds cause no false reports. What the log says
is built in a scratch SQLite file in a temporary folder: the expected write side, then
each thread's projection rows, compared and dropped thread by thread. The notification
fold there reads the *expected* preference and ban history, so a notification is checked
against the log, not against write-side tables that may themselves be wrong. Memory holds
one stream's replay and streams rows in key order through each comparison.

Not checked: `people` and `idempotency_keys` (not in the log), `email_outbox` (delivery
state), `dead_letters`.
"""

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from services.worker.expected_write_side import (
    Replay,
    StreamRows,
    ThreadReplay,
    replay_for,
)
from services.worker.folding import checkpoints_of, fold, thread_projection
from services.worker.notification_projector import notification_projection
from services.worker.table_diff import Difference, TableCheck, diff_rows
from shared import moderation_tables, notification_tables
from shared.db import create_db_engine, read_connection, read_snapshot, write_transaction
from shared.moderation_tables import (
    ban_history,
    banned_users,
    comment_flags,
    moderation_log,
    moderation_settings,
    premod_users,
    trusted_authors,
)
from shared.notification_tables import (
    conversation_participants,
    notification_checkpoints,
    notification_comments,
    notification_read_marks,
    notification_reads,
    notifications,
    preference_history,
    thread_subscriptions,
    user_preferences,
)
from shared.projection_tables import DEAD_LETTERS, LIVE, PROJECTION_METADATA
from shared.store import EVENTS, STREAMS, EventStore, StoredEvent
from shared.streams import USER_STREAM_PREFIX, is_thread_stream
from shared.write_index import CommentLike, CommentState, ThreadState

KEEP = 1000  # differences kept for the report; all are counted
PAGE = 500  # stream ids read at a time

WRITE_SIDE = (
    TableCheck(STREAMS, ("stream_id",)),
    TableCheck(ThreadState.__table__, ("thread_id",)),  # type: ignore[attr-defined]
    TableCheck(CommentState.__table__, ("comment_id",)),  # type: ignore[attr-defined]
    TableCheck(CommentLike.__table__, ("comment_id", "user_id")),  # type: ignore[attr-defined]
    TableCheck(user_preferences, ("user_id",)),
    TableCheck(preference_history, ("user_id", "position")),
    TableCheck(banned_users, ("user_id",)),
    TableCheck(ban_history, ("user_id", "position")),
    TableCheck(notification_reads, ("user_id", "comment_id")),
    TableCheck(notification_read_marks, ("user_id",)),
    TableCheck(comment_flags, ("comment_id", "user_id")),
    TableCheck(premod_users, ("user_id",)),
    TableCheck(trusted_authors, ("user_id",)),
    TableCheck(moderation_settings, ("id",)),
    TableCheck(moderation_log, ("position",)),
)
PROJECTIONS = (
    TableCheck(LIVE.threads, ("thread_id",)),
    TableCheck(LIVE.comments, ("comment_id",)),
    TableCheck(LIVE.participants, ("thread_id", "author_id")),
    TableCheck(LIVE.checkpoints, ("thread_id",), ignore=("updated_at",)),
    TableCheck(notifications, ("recipient_id", "comment_id")),
    TableCheck(thread_subscriptions, ("thread_id", "user_id")),
    TableCheck(conversation_participants, ("root_id", "user_id")),
    TableCheck(notification_comments, ("comment_id",)),
    TableCheck(notification_checkpoints, ("thread_id",), ignore=("updated_at",)),
)
_WRITE_TABLES = {check.name: check.table for check in WRITE_SIDE}


@dataclass(frozen=True)
class VerifyReport:
    threads: int
    users: int
    events: int
    unreadable_events: int  # events no handler could have written (the folds dead-letter them)
    total_differences: int
    differences: tuple[Difference, ...]  # the first KEEP of them

    @property
    def ok(self) -> bool:
        return self.total_differences == 0


class _Findings:
    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.kept: list[Difference] = []
        self.total = 0

    def add(self, differences: Iterable[Difference]) -> None:
        for difference in differences:
            self.total += 1
            if len(self.kept) < self.keep:
                self.kept.append(difference)


@dataclass
class _Counts:
    threads: int = 0
    users: int = 0
    events: int = 0
    unreadable: int = 0

    def add(self, rows: StreamRows) -> None:
        self.events += rows.version
        self.unreadable += rows.unreadable


def verify(engine: Engine, *, keep: int = KEEP, batch_size: int = 1000) -> VerifyReport:
    """Compare every write-side and projection row with the log; see the module's doc."""
    findings, counts = _Findings(keep), _Counts()
    store = EventStore(engine)
    with (
        tempfile.TemporaryDirectory(prefix="chorus-verify-") as folder,
        read_snapshot(engine) as log,
    ):
        scratch = _scratch_database(Path(folder))
        try:
            # Users (and the site) first: every thread's notification fold reads the
            # users' history.
            for stream_id in _streams(log, threads=False):
                replay = replay_for(stream_id)
                if replay is None:
                    continue  # no handler writes there: nothing on the write side to expect
                rows = _replay(store, log, replay, batch_size)
                _write_expected(scratch, rows)
                counts.users += stream_id.startswith(USER_STREAM_PREFIX)
                counts.add(rows)
            for stream_id in _streams(log, threads=True):
                rows = _replay(store, log, ThreadReplay(stream_id), batch_size)
                _write_expected(scratch, rows)
                counts.threads += 1
                counts.add(rows)
                findings.add(_thread_projections(store, log, scratch, stream_id, batch_size))
            for check in WRITE_SIDE:
                with read_connection(scratch) as expected:
                    findings.add(diff_rows(check, check.rows(log), check.rows(expected)))
            findings.add(_rows_of_no_thread(log))
        finally:
            scratch.dispose()
    return VerifyReport(
        threads=counts.threads,
        users=counts.users,
        events=counts.events,
        unreadable_events=counts.unreadable,
        total_differences=findings.total,
        differences=tuple(findings.kept),
    )


def _scratch_database(folder: Path) -> Engine:
    scratch = create_db_engine(f"sqlite:///{folder / 'expected.db'}")
    with write_transaction(scratch) as conn:
        for metadata in (
            SQLModel.metadata,
            PROJECTION_METADATA,
            notification_tables.METADATA,
            moderation_tables.METADATA,
        ):
            metadata.create_all(conn)
    return scratch


def _streams(log: Connection, *, threads: bool) -> Iterator[str]:
    """Every stream with events (the log's own list, not `streams`, which is verified)."""
    after = ""
    while True:
        page = (
            log.execute(
                sa.select(EVENTS.c.stream_id)
                .where(EVENTS.c.stream_id > after)
                .group_by(EVENTS.c.stream_id)
                .order_by(EVENTS.c.stream_id)
                .limit(PAGE)
            )
            .scalars()
            .all()
        )
        yield from (stream for stream in page if is_thread_stream(stream) == threads)
        if len(page) < PAGE:
            return
        after = page[-1]


def _replay(store: EventStore, log: Connection, replay: Replay, batch_size: int) -> StreamRows:
    after = 0
    while True:
        events = store.read_stream(replay.result.stream_id, after, batch_size, conn=log)
        for event in events:
            replay.apply(event)
        if len(events) < batch_size:
            return replay.finish()
        after = events[-1].version


def _write_expected(scratch: Engine, rows: StreamRows) -> None:
    with write_transaction(scratch) as conn:
        for name, table_rows in rows.rows().items():
            if table_rows:
                conn.execute(_INSERT_EXPECTED.get(name, _WRITE_TABLES[name].insert()), table_rows)


# An author trusted in several threads is trusted from their first approval anywhere
# (the scratch database is SQLite, whose two-argument min() is the smaller value).
_TRUSTED = sqlite_insert(trusted_authors)
_INSERT_EXPECTED = {
    trusted_authors.name: _TRUSTED.on_conflict_do_update(
        index_elements=["user_id"],
        set_={"position": sa.func.min(trusted_authors.c.position, _TRUSTED.excluded.position)},
    )
}


class _LogUpTo(EventStore):
    """The snapshot's log, cut at a version: what a fold reads to reach a live checkpoint."""

    def __init__(self, store: EventStore, log: Connection, up_to: int) -> None:
        super().__init__(store.engine)
        self._store, self._log, self._up_to = store, log, up_to

    def read_stream(
        self,
        stream_id: str,
        after_version: int = 0,
        limit: int | None = None,
        *,
        conn: Connection | None = None,
    ) -> list[StoredEvent]:
        room = self._up_to - after_version
        if room <= 0:
            return []
        limit = room if limit is None else min(limit, room)
        return self._store.read_stream(stream_id, after_version, limit, conn=self._log)


def _thread_projections(
    store: EventStore, log: Connection, scratch: Engine, thread_id: str, batch_size: int
) -> Iterator[Difference]:
    """Fold the thread as far as its live projections have got, then compare."""
    tree_at, inbox_at = checkpoints_of(log, [LIVE.checkpoints, notification_checkpoints], thread_id)
    projections = (
        (thread_projection(), tree_at),
        (notification_projection(queue_email=False), inbox_at),
    )
    for projection, up_to in projections:
        fold(scratch, _LogUpTo(store, log, up_to), thread_id, projection, batch_size=batch_size)
    with read_connection(scratch) as expected:
        for check in PROJECTIONS:
            in_thread = check.table.c.thread_id == thread_id
            yield from diff_rows(check, check.rows(log, in_thread), check.rows(expected, in_thread))
    with write_transaction(scratch) as conn:  # keep the scratch file small
        for check in PROJECTIONS:
            conn.execute(check.table.delete())
        conn.execute(DEAD_LETTERS.delete())


def _rows_of_no_thread(log: Connection) -> Iterator[Difference]:
    """Projection rows of threads the log has never heard of."""
    for check in PROJECTIONS:
        thread_id = check.table.c.thread_id
        unknown = sa.or_(~sa.exists().where(EVENTS.c.stream_id == thread_id), thread_id.like("~%"))
        yield from diff_rows(check, check.rows(log, unknown), [])
