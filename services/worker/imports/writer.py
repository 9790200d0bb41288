"""Writing planned threads: one transaction for many threads, a few statements in all.

In the transaction: take the append lock once; read the versions of the batch's threads
and, for threads that exist already, which of their events are in the log (those are
not appended again: idempotency comment by comment); append the rest to every stream
at once (`EventStore.append_many`); then write the write-side rows exactly as the
handlers would have left them (`thread_state`, `comment_state`, `comment_likes`,
`moderation_log` for imported decisions), after the append as the handlers do.

Any error fails the whole transaction; the engine then tells which thread it was by
trying again with fewer (`engine.write_isolating`).
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.worker.imports import thread_events as te
from services.worker.imports.fresh_fold import Render, fold_fresh, render_each
from services.worker.imports.plan import ThreadPlan
from shared.bulk import insert_rows
from shared.handlers import COMMENTS, LIKES, THREADS
from shared.log_tables import EventRecord
from shared.moderation_tables import moderation_log
from shared.store import STREAMS, EventStore, NewEvent, StoredEvent, StreamAppend, lock_appends

EVENTS = EventRecord.__table__  # type: ignore[attr-defined]
CHUNK = 1000
T = TypeVar("T")


@dataclass
class ThreadOutcome:
    plan: ThreadPlan
    events: int = 0
    comments_imported: int = 0
    comments_already_there: int = 0
    folded: bool = False  # in the batch's transaction (a new thread): nothing left to fold

    @property
    def already_there(self) -> bool:
        return self.events == 0


@dataclass
class _Rows:
    threads: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    likes: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)  # event ids of decisions, for moderation_log
    changed: list[dict[str, Any]] = field(default_factory=list)  # comments already there


def write_batch(
    conn: Connection,
    store: EventStore,
    source: str,
    plans: Sequence[ThreadPlan],
    *,
    fold: bool = False,
    render: Render = render_each,
) -> list[ThreadOutcome]:
    """Append what is missing of `plans` (distinct thread ids) inside `conn`'s transaction;
    with `fold`, fold the threads it creates too (`fresh_fold`)."""
    lock_appends(conn)
    versions = stream_versions(conn, [p.thread_id for p in plans])
    known = [p for p in plans if versions.get(p.thread_id, 0) > 0]
    present = _present(conn, _candidate_ids(source, known)) if known else set()
    outcomes = []
    appends: list[StreamAppend] = []
    rows = _Rows()
    for plan in plans:
        version = versions.get(plan.thread_id, 0)
        outcome = ThreadOutcome(plan)
        events: list[NewEvent] = []
        if version == 0:
            # A new thread only: an existing one keeps its own title, url and lock.
            events.append(te.registered(source, plan))
            if plan.locked:
                events.append(te.locked(source, plan))
                rows.decisions.append(events[-1].event_id)
            rows.threads.append(_thread_row(plan))
        for planned in plan.comments:
            made = te.comment_events(source, planned)
            new = [e for e in made.events if e.event_id not in present]
            if not new:
                outcome.comments_already_there += 1
                continue
            events.extend(new)
            if made.posted_id in present:
                outcome.comments_already_there += 1
                rows.changed.append(_change(made, new))
            else:
                outcome.comments_imported += 1
                rows.comments.append(_comment_row(plan.thread_id, made))
            rows.likes.extend(
                {"comment_id": planned.comment_id, "user_id": e.data["user_id"]}
                for e in new
                if e.type == "CommentLiked"
            )
            rows.decisions.extend(e.event_id for e in new if e.type == "CommentRejected")
        outcome.events = len(events)
        appends.append(StreamAppend(plan.thread_id, events, version))
        outcomes.append(outcome)
    stored = store.append_many(appends, conn=conn)
    _write_index(conn, rows)
    if fold:
        fresh = {a.stream_id for a in appends if a.expected_version == 0 and a.events}
        by_thread: dict[str, list[StoredEvent]] = {}
        for event in stored:
            if event.stream_id in fresh:
                by_thread.setdefault(event.stream_id, []).append(event)
        folded = fold_fresh(conn, by_thread.values(), render)
        for outcome in outcomes:
            outcome.folded = outcome.plan.thread_id in folded
    return outcomes


def stream_versions(conn: Connection, thread_ids: list[str]) -> dict[str, int]:
    """The version of each of these threads that is in the log (absent: none is)."""
    found: dict[str, int] = {}
    for chunk in _chunks(thread_ids):
        rows = conn.execute(_VERSIONS, {"ids": chunk})
        found.update((row.stream_id, row.version) for row in rows)
    return found


def _candidate_ids(source: str, plans: Iterable[ThreadPlan]) -> list[str]:
    return [
        event.event_id
        for plan in plans
        for planned in plan.comments
        for event in te.comment_events(source, planned).events
    ]


def _present(conn: Connection, event_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(event_ids):
        found.update(conn.execute(_PRESENT, {"ids": chunk}).scalars())
    return found


def _thread_row(plan: ThreadPlan) -> dict[str, Any]:
    return {
        "thread_id": plan.thread_id,
        "title": plan.title,
        "url": plan.url,
        "locked": plan.locked,
        "moderation": None,
    }


def _comment_row(thread_id: str, made: te.CommentEvents) -> dict[str, Any]:
    planned = made.planned
    return {
        "comment_id": planned.comment_id,
        "thread_id": thread_id,
        "author_id": planned.source.author.id,
        "parent_id": planned.parent_id,
        "deleted": planned.source.deleted,
        "like_count": max(0, planned.source.likes) + len(made.liked_by),
        "depth": planned.depth,
        "status": made.status,
        "flag_count": 0,
        "featured": False,
    }


def _change(made: te.CommentEvents, new: list[NewEvent]) -> dict[str, Any]:
    """What the new events of a comment already imported change in its row."""
    types = [e.type for e in new]
    return {
        "b_comment_id": made.planned.comment_id,
        "b_likes": types.count("CommentLiked"),
        "b_rejected": "CommentRejected" in types,
        "b_deleted": "CommentDeleted" in types,
    }


def _write_index(conn: Connection, rows: _Rows) -> None:
    for table, values in ((THREADS, rows.threads), (COMMENTS, rows.comments), (LIKES, rows.likes)):
        insert_rows(conn, table, values)
    for change in rows.changed:
        conn.execute(_CHANGE, change)
    for chunk in _chunks(rows.decisions):
        conn.execute(_LOG_DECISIONS, {"ids": chunk})


_VERSIONS = sa.select(STREAMS.c.stream_id, STREAMS.c.version).where(
    STREAMS.c.stream_id.in_(sa.bindparam("ids", expanding=True))
)
_PRESENT = sa.select(EVENTS.c.event_id).where(
    EVENTS.c.event_id.in_(sa.bindparam("ids", expanding=True))
)
_CHANGE = (
    COMMENTS.update()
    .where(COMMENTS.c.comment_id == sa.bindparam("b_comment_id"))
    .values(
        like_count=COMMENTS.c.like_count + sa.bindparam("b_likes"),
        status=sa.case((sa.bindparam("b_rejected"), "rejected"), else_=COMMENTS.c.status),
        deleted=sa.or_(COMMENTS.c.deleted, sa.bindparam("b_deleted")),
    )
)
_LOG_DECISIONS = moderation_log.insert().from_select(
    ["position", "thread_id"],
    sa.select(EVENTS.c.position, EVENTS.c.stream_id).where(
        EVENTS.c.event_id.in_(sa.bindparam("ids", expanding=True))
    ),
)


def _chunks(items: list[T]) -> Iterator[list[T]]:
    return (items[i : i + CHUNK] for i in range(0, len(items), CHUNK))
