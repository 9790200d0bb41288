"""Disqus's XML export (`<disqus>`: categories, then every `<thread>`, then every `<post>`).

What the format does, and what we do about it (decision 35):

- Posts are not grouped by thread and a forum's export can hold millions of them, so they
  stream into a temporary SQLite file (`staging.StagingFile`) and are read back a thread at
  a time: memory stays flat. The file is read once per source; reading the threads again
  (the engine checks the file whole before it imports) reads the staging file.
- A thread's `<id>` is the publication's identifier, often empty (`<id/>`): then
  `identifier` is None and the engine derives the thread's id from `<link>`.
- `<isDeleted>` threads are skipped ("thread deleted"); threads without posts are skipped
  ("no comments"); posts whose `<thread dsq:id>` names no thread in the file are skipped
  as a thread of their own ("thread missing").
- `<isSpam>` posts are skipped ("spam"); `<isDeleted>` posts stay as deleted placeholders
  (no body), so their replies keep their place; a post with an empty message is skipped
  ("empty").
- `<parent dsq:id>` may name a post that is not in the file (or was skipped): the key is
  kept and the engine makes the reply top level.
- Bodies are HTML, converted to markdown (`html_markdown`).
- Authors: `import:disqus:u-…` from the username (not for `<isAnonymous>` guests), else
  `e-…` from the email, else `n-…` from the name (`authors`): hashes, never the values.
- Refused whole (`MalformedFile`, naming line and element): XML that is not well-formed,
  a post or thread without `dsq:id`, a post without `<thread>`, a date that does not
  parse, a post or thread id that repeats.
"""

import os
import sqlite3
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from types import TracebackType
from typing import Final

from .authors import anonymous_id, author_id
from .html_markdown import html_to_markdown
from .model import (
    MalformedFile,
    SkippedComment,
    SkippedThread,
    SourceAuthor,
    SourceComment,
    SourceName,
    SourceThread,
)
from .staging import StagingFile
from .xml_records import Record, read_records

_RECORDS: Final = frozenset({("disqus", "thread"), ("disqus", "post")})
_BATCH: Final = 2000
_POOL_FROM_BYTES: Final = 16 << 20

_SCHEMA: Final = (
    """CREATE TABLE threads (
        seq INTEGER PRIMARY KEY, key TEXT NOT NULL, identifier TEXT, url TEXT, title TEXT,
        created_at TEXT, closed INTEGER NOT NULL, deleted INTEGER NOT NULL,
        line INTEGER NOT NULL)""",
    """CREATE TABLE posts (
        seq INTEGER PRIMARY KEY, key TEXT NOT NULL, thread_key TEXT NOT NULL,
        parent_key TEXT, author_id TEXT NOT NULL, author_name TEXT NOT NULL,
        body TEXT NOT NULL, posted_at TEXT NOT NULL, skip TEXT, deleted INTEGER NOT NULL,
        line INTEGER NOT NULL)""",
)


def parse_datetime(value: str, where: str, what: str) -> datetime:
    """An ISO 8601 time (Disqus writes `2011-03-07T20:46:25Z`); one without a zone is UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedFile(where, f"{what} {value!r} is not a date and time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _flag(value: str) -> bool:
    return value.strip().lower() == "true"


class DisqusSource:
    """`threads()` reads the export; `close()` (or `with`) deletes the staging file."""

    name: SourceName = "disqus"

    def __init__(
        self, path: Path, staging_dir: Path | None = None, workers: int | None = None
    ) -> None:
        """`workers`: processes that convert bodies; by default one per CPU (at most 4)
        for a file over 16 MB, none (this process) for a smaller one."""
        self.path = path
        self._staging_dir = staging_dir
        if workers is None:
            large = path.is_file() and path.stat().st_size > _POOL_FROM_BYTES
            workers = min(os.cpu_count() or 1, 4) if large else 1
        self._workers = workers
        self._staging: StagingFile | None = None

    def __enter__(self) -> "DisqusSource":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._staging is not None:
            self._staging.close()
            self._staging = None

    def threads(self) -> Iterator[SourceThread | SkippedThread]:
        if self._staging is None:
            staging = StagingFile(self._staging_dir)
            try:
                _stage(self.path, staging.db, self._workers)
            except BaseException:
                staging.close()
                raise
            self._staging = staging
        yield from _read(self._staging.db)


# --- the file -> the staging tables ---------------------------------------------------------


def _check_root(namespace: str, local: str) -> None:
    if local != "disqus":
        raise MalformedFile("line 1", f"the root element is <{local}>, not <disqus>")


def _stage(path: Path, db: sqlite3.Connection, workers: int) -> None:
    for statement in _SCHEMA:
        db.execute(statement)
    db.execute("BEGIN")
    with _Bodies(db, workers) as bodies:
        threads: list[tuple[object, ...]] = []
        for record in read_records(path, _RECORDS, check_root=_check_root):
            if record.tag == "post":
                bodies.add(*_post_row(record))
            else:
                threads.append(_thread_row(record))
                if len(threads) >= _BATCH:
                    db.executemany("INSERT INTO threads VALUES (NULL,?,?,?,?,?,?,?,?)", threads)
                    threads = []
        db.executemany("INSERT INTO threads VALUES (NULL,?,?,?,?,?,?,?,?)", threads)
    db.execute("CREATE INDEX threads_by_key ON threads (key)")
    db.execute("CREATE INDEX posts_by_key ON posts (key)")
    _refuse_repeats(db, "threads", "<thread dsq:id={key!r}>")
    _refuse_repeats(db, "posts", "<post dsq:id={key!r}>")
    db.execute("CREATE INDEX posts_by_thread ON posts (thread_key, seq)")
    db.execute("COMMIT")


def convert_all(messages: list[str | None]) -> list[str]:
    """Bodies of a batch of posts (None: spam or deleted, no body); in a worker process."""
    return [html_to_markdown(message) if message is not None else "" for message in messages]


class _Bodies:
    """Posts on their way into the staging table, their HTML converted in batches: in this
    process for a small file, else in worker processes while this one goes on reading the
    XML (the conversion is most of the cost). Batches are written in file order, and at
    most two per worker are in flight, so memory stays bounded."""

    def __init__(self, db: sqlite3.Connection, workers: int) -> None:
        self._db = db
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        if workers > 1:
            self._pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
        self._rows: list[list[object]] = []
        self._messages: list[str | None] = []
        self._in_flight: deque[tuple[Future[list[str]], list[list[object]]]] = deque()

    def __enter__(self) -> "_Bodies":
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self._send()
                while self._in_flight:
                    self._write_oldest()
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)

    def add(self, row: list[object], message: str | None) -> None:
        self._rows.append(row)
        self._messages.append(message)
        if len(self._rows) >= _BATCH:
            self._send()

    def _send(self) -> None:
        if not self._rows:
            return
        rows, messages = self._rows, self._messages
        self._rows, self._messages = [], []
        if self._pool is None:
            self._write(rows, convert_all(messages))
            return
        self._in_flight.append((self._pool.submit(convert_all, messages), rows))
        while len(self._in_flight) > 2 * self._workers:
            self._write_oldest()

    def _write_oldest(self) -> None:
        future, rows = self._in_flight.popleft()
        self._write(rows, future.result())

    def _write(self, rows: list[list[object]], bodies: list[str]) -> None:
        for row, body in zip(rows, bodies, strict=True):
            row[_BODY] = body
            if row[_SKIP] is None and not row[_DELETED] and not body:
                row[_SKIP] = "empty"
        self._db.executemany("INSERT INTO posts VALUES (NULL,?,?,?,?,?,?,?,?,?,?)", rows)


def _refuse_repeats(db: sqlite3.Connection, table: str, element: str) -> None:
    row = db.execute(
        f"SELECT key, min(line), max(line) FROM {table} GROUP BY key HAVING count(*) > 1 "  # noqa: S608
        "ORDER BY max(line) LIMIT 1"
    ).fetchone()
    if row is not None:
        key, first, again = row
        raise MalformedFile(
            f"line {again} ({element.format(key=key)})", f"the id repeats line {first}'s"
        )


def _dsq_id(record: Record) -> str:
    key = record.attrs.get("id", "").strip()
    if not key:
        raise MalformedFile(record.where, f"<{record.tag}> has no dsq:id")
    return key


def _thread_row(record: Record) -> tuple[object, ...]:
    key = _dsq_id(record)
    created = record.text("createdAt")
    where = f"line {record.line} (<thread dsq:id={key!r}>)"
    created_at = parse_datetime(created, where, "<createdAt>").isoformat() if created else None
    return (
        key,
        record.text("id") or None,
        record.text("link") or None,
        record.text("title") or None,
        created_at,
        _flag(record.text("isClosed")),
        _flag(record.text("isDeleted")),
        record.line,
    )


# Where a post row holds its body, skip reason and deleted flag (see _SCHEMA, less seq).
_BODY, _SKIP, _DELETED = 5, 7, 8


def _post_row(record: Record) -> tuple[list[object], str | None]:
    """The post's row (its body filled in once converted) and its HTML message, None when
    it has no body to convert (spam, deleted)."""
    key = _dsq_id(record)
    where = f"line {record.line} (<post dsq:id={key!r}>)"
    thread_key = record.attributes.get("thread", {}).get("id", "").strip()
    if not thread_key:
        raise MalformedFile(where, "<thread dsq:id> is missing")
    created = record.text("createdAt")
    if not created:
        raise MalformedFile(where, "<createdAt> is missing")
    posted_at = parse_datetime(created, where, "<createdAt>")
    parent_key = record.attributes.get("parent", {}).get("id", "").strip() or None
    deleted = _flag(record.text("isDeleted"))
    spam = _flag(record.text("isSpam"))
    author = _author(record)
    row: list[object] = [
        key,
        thread_key,
        parent_key,
        author.id,
        author.name,
        "",
        posted_at.isoformat(),
        "spam" if spam else None,
        deleted,
        record.line,
    ]
    return row, None if spam or deleted else record.text("message")


def _author(record: Record) -> SourceAuthor:
    name = record.text("author/name")
    username = record.text("author/username")
    email = record.text("author/email").lower()
    anonymous = _flag(record.text("author/isAnonymous"))
    if username and not anonymous:
        return SourceAuthor(author_id("disqus", "u", username), name or username)
    if email:
        return SourceAuthor(author_id("disqus", "e", email), name or "Anonymous")
    if name:
        return SourceAuthor(author_id("disqus", "n", name), name)
    return SourceAuthor(anonymous_id("disqus"), "Anonymous")


# --- the staging tables -> threads ----------------------------------------------------------


def _read(db: sqlite3.Connection) -> Iterator[SourceThread | SkippedThread]:
    threads = db.execute(
        "SELECT key, identifier, url, title, created_at, closed, deleted FROM threads ORDER BY seq"
    )
    for key, identifier, url, title, created_at, closed, deleted in threads:
        if deleted:
            yield SkippedThread(key, "thread deleted")
            continue
        comments: list[SourceComment] = []
        skipped: list[SkippedComment] = []
        for row in db.execute(
            "SELECT key, parent_key, author_id, author_name, body, posted_at, skip, deleted "
            "FROM posts WHERE thread_key = ? ORDER BY seq",
            (key,),
        ):
            post_key, parent_key, a_id, a_name, body, posted_at, skip, post_deleted = row
            if skip is not None:
                skipped.append(SkippedComment(post_key, skip))
                continue
            comments.append(
                SourceComment(
                    key=post_key,
                    parent_key=parent_key,
                    author=SourceAuthor(a_id, a_name),
                    body=body,
                    posted_at=datetime.fromisoformat(posted_at),
                    deleted=bool(post_deleted),
                )
            )
        if not comments and not skipped:
            yield SkippedThread(key, "no comments")
            continue
        yield SourceThread(
            key=key,
            identifier=identifier,
            url=url,
            title=title,
            comments=comments,
            skipped=skipped,
            created_at=datetime.fromisoformat(created_at) if created_at else None,
            locked=bool(closed),
        )
    orphans = db.execute(
        "SELECT DISTINCT thread_key FROM posts "
        "WHERE thread_key NOT IN (SELECT key FROM threads) ORDER BY thread_key"
    )
    for (thread_key,) in orphans:
        yield SkippedThread(thread_key, "thread missing")
