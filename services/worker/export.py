"""`chorus export`: every thread (or one) in Chorus's own format, streamed as JSON lines.

The format is `services.worker.imports.chorus_format`'s (which reads it back); why it is
read from where it is read is docs/decisions.md 36. In short: pages are what an export
must reproduce, and the thread projection is what pages are read from, so each comment is
written as the projection holds it: its markdown source, times, status, deletion and like
count. Who liked it is only in the log (and the write index, which may be ahead of the
projection), so the likers are folded from the thread's like events up to the version the
projection has reached: the like count and the likers then describe the same moment, and
`likes` (the likes nobody is named for: an import's) is their difference.

Everything is read in one read-only snapshot (PostgreSQL: REPEATABLE READ, as pg_dump
does; SQLite: one read transaction), so the file is one consistent moment of the site
however long it takes to write, and it writes nothing. Memory holds one page of threads
and one thread's likers; comments are streamed from the database to the file.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.worker.imports.chorus_format import FORMAT, VERSION
from shared.db import read_snapshot
from shared.log_tables import EventRecord, StreamRecord
from shared.projection_tables import LIVE
from shared.timeutil import as_utc

EVENTS: sa.Table = EventRecord.__table__  # type: ignore[attr-defined]
STREAMS: sa.Table = StreamRecord.__table__  # type: ignore[attr-defined]
THREAD_PAGE = 200
COMMENT_BATCH = 500
LIKE_BATCH = 5000

_T, _C, _CP = LIVE.threads, LIVE.comments, LIVE.checkpoints
_THREADS = (
    sa.select(
        _T.c.thread_id,
        _T.c.title,
        _T.c.url,
        _T.c.locked,
        _T.c.created_at,
        _CP.c.version,
        sa.func.coalesce(STREAMS.c.version, 0).label("head"),
    )
    .join(_CP, _CP.c.thread_id == _T.c.thread_id)
    .outerjoin(STREAMS, STREAMS.c.stream_id == _T.c.thread_id)
    .order_by(_T.c.thread_id)
)
_COMMENTS = (
    sa.select(
        _C.c.comment_id,
        _C.c.parent_id,
        _C.c.author_id,
        _C.c.author_name,
        _C.c.body,
        _C.c.created_at,
        _C.c.edited_at,
        _C.c.status,
        _C.c.deleted,
        _C.c.like_count,
    )
    .where(_C.c.thread_id == sa.bindparam("thread_id"))
    # The order the thread's log posted them in: a parent before its replies.
    .order_by(_C.c.seq)
)
_LIKES = (
    sa.select(
        EVENTS.c.version,
        EVENTS.c.type,
        # The two fields, extracted by the database: decoding every event's JSON here
        # took a third of an export's time.
        EVENTS.c.data["comment_id"].as_string().label("comment_id"),
        EVENTS.c.data["user_id"].as_string().label("user_id"),
    )
    .where(
        EVENTS.c.stream_id == sa.bindparam("thread_id"),
        EVENTS.c.version > sa.bindparam("after"),
        EVENTS.c.version <= sa.bindparam("up_to"),
        EVENTS.c.type.in_(["CommentLiked", "CommentUnliked"]),
    )
    .order_by(EVENTS.c.version)
    .limit(LIKE_BATCH)
)


@dataclass(frozen=True, slots=True)
class ExportResult:
    threads: int
    comments: int
    unfolded_threads: int
    """Threads whose log holds events their projection had not folded when the export
    read them: exported as their pages showed them then, without those events."""


class ThreadNotFound(LookupError):
    """`--thread` names a thread with no page (never written to, or not folded yet)."""


def export(
    engine: Engine, out: BinaryIO, *, thread_id: str | None = None, now: datetime | None = None
) -> ExportResult:
    """Write the export to `out` (bytes: UTF-8 JSON lines), one thread or all of them."""
    exported_at = now or datetime.now(UTC)
    threads = comments = unfolded = 0
    with read_snapshot(engine) as conn:
        if thread_id is not None and _thread_page(conn, thread_id=thread_id) == []:
            raise ThreadNotFound(f"thread {thread_id!r} has no page to export")
        _write(out, {"format": FORMAT, "version": VERSION, "exported_at": _iso(exported_at)})
        for thread in _threads(conn, thread_id):
            threads += 1
            unfolded += thread.version < thread.head
            _write(
                out,
                {
                    "type": "thread",
                    "id": thread.thread_id,
                    "title": thread.title,
                    "url": thread.url,
                    "locked": bool(thread.locked),
                    "created_at": _iso(thread.created_at),
                },
            )
            likers = _likers(conn, thread.thread_id, thread.version)
            for comment in _comments(conn, thread.thread_id):
                comments += 1
                _write(out, _comment_line(thread.thread_id, comment, likers))
        _write(out, {"type": "end", "threads": threads, "comments": comments})
    return ExportResult(threads=threads, comments=comments, unfolded_threads=unfolded)


def _comment_line(thread_id: str, row: Any, likers: dict[str, dict[str, None]]) -> dict[str, Any]:
    liked_by = list(likers.get(row.comment_id, ()))
    deleted = bool(row.deleted)
    return {
        "type": "comment",
        "id": row.comment_id,
        "thread_id": thread_id,
        "parent_id": row.parent_id,
        # A deleted comment is a placeholder: its place, times, status and likes stay, its
        # text and its author's name go, as on its page (decision 36).
        "author": {"id": row.author_id, "name": "" if deleted else row.author_name},
        "body": None if deleted else (row.body or ""),
        "created_at": _iso(row.created_at),
        "edited_at": None if row.edited_at is None else _iso(row.edited_at),
        "status": row.status,
        "deleted": deleted,
        "likes": max(0, row.like_count - len(liked_by)),
        "liked_by": liked_by,
    }


def _threads(conn: Connection, thread_id: str | None) -> Iterator[Any]:
    if thread_id is not None:
        yield from _thread_page(conn, thread_id=thread_id)
        return
    after = None
    while True:
        page = _thread_page(conn, after=after)
        yield from page
        if len(page) < THREAD_PAGE:
            return
        after = page[-1].thread_id


def _thread_page(
    conn: Connection, *, after: str | None = None, thread_id: str | None = None
) -> Any:
    query = _THREADS
    if thread_id is not None:
        query = query.where(_T.c.thread_id == thread_id)
    elif after is not None:
        query = query.where(_T.c.thread_id > after)
    return conn.execute(query.limit(THREAD_PAGE)).all()


def _comments(conn: Connection, thread_id: str) -> Iterator[Any]:
    """The thread's comments in its log's order, fetched `COMMENT_BATCH` at a time (a
    server-side cursor on PostgreSQL), so a large thread never sits in memory whole."""
    result = conn.execute(
        _COMMENTS, {"thread_id": thread_id}, execution_options={"yield_per": COMMENT_BATCH}
    )
    yield from result


def _likers(conn: Connection, thread_id: str, up_to: int) -> dict[str, dict[str, None]]:
    """Who likes each comment as of stream version `up_to` (the projection's), in the order
    they liked it: the thread's likes and unlikes replayed."""
    likers: dict[str, dict[str, None]] = {}
    after = 0
    while True:
        params = {"thread_id": thread_id, "after": after, "up_to": up_to}
        rows = conn.execute(_LIKES, params).all()
        for _, kind, comment_id, user_id in rows:
            users = likers.setdefault(comment_id, {})
            if kind == "CommentLiked":
                users[user_id] = None
            else:
                users.pop(user_id, None)
        if len(rows) < LIKE_BATCH:
            return likers
        after = rows[-1].version


def _write(out: BinaryIO, record: dict[str, Any]) -> None:
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    out.write(line.encode("utf-8") + b"\n")


def _iso(moment: datetime) -> str:
    """UTC, to the microsecond, with a `Z`: one spelling for every time in the file."""
    return as_utc(moment).isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"
