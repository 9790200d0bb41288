"""Isso's SQLite database (`comments.db`): `threads(id, uri, title)` and `comments(tid, id,
parent, created, modified, mode, text, author, email, website, likes, dislikes, voters, …)`.

What the format does, and what we do about it (decision 35):

- Opened read-only (`mode=ro`): importing never changes the tool being left.
- A thread is a page's `uri` (a path such as `/2014/hello-world/`): it is the thread's key,
  identifier and URL; a uri that is not a valid Chorus thread id (slashes) makes the engine
  derive the id from it.
- `text` is markdown already (Isso renders markdown), kept as it is: Chorus renders it
  with raw HTML off, so HTML in it shows as text.
- `mode` 1 is published, 2 waits for a moderator (`pending`), 4 is a deleted comment Isso
  kept because it has replies (deleted placeholder, no body); any other mode refuses the
  file, naming the row.
- `created`/`modified` are Unix seconds (floats): `posted_at` and `edited_at`.
- `likes` are anonymous upvotes (Isso counts them per IP address in a Bloom filter), so they
  become `likes` without likers; dislikes have no Chorus counterpart and are dropped.
- Isso nests one level deep (a reply to a reply is filed under the top comment); `parent`
  is kept as it is.
- Authors have no account in Isso: `import:isso:e-…` from the email, else `n-…` from the
  name, else `import:isso:anonymous` (`authors`).
- A comment whose `tid` names no thread is skipped as a thread of its own ("thread
  missing"); a thread without comments is skipped ("no comments").
- A file that is not SQLite, or lacks a table or column Isso writes, is refused
  (`MalformedFile` naming what is missing).
"""

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from .authors import anonymous_id, author_id
from .model import (
    CommentStatus,
    MalformedFile,
    SkippedThread,
    SourceAuthor,
    SourceComment,
    SourceName,
    SourceThread,
)

_NEEDED: Final = {
    "threads": ("id", "uri", "title"),
    "comments": (
        "tid",
        "id",
        "parent",
        "created",
        "modified",
        "mode",
        "text",
        "author",
        "email",
        "likes",
    ),
}
_STATUS: Final[dict[int, CommentStatus]] = {1: "published", 2: "pending", 4: "published"}


class IssoSource:
    name: SourceName = "isso"

    def __init__(self, path: Path) -> None:
        self.path = path

    def threads(self) -> Iterator[SourceThread | SkippedThread]:
        db = _open(self.path)
        try:
            yield from _read(db)
        except sqlite3.DatabaseError as error:
            raise MalformedFile(str(self.path), f"the database cannot be read: {error}") from None
        finally:
            db.close()


def _open(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise MalformedFile(str(path), "no such file")
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = {
            name: {row[1] for row in db.execute(f"PRAGMA table_info({name})")} for name in _NEEDED
        }
    except sqlite3.DatabaseError as error:
        db.close()
        raise MalformedFile(str(path), f"not an SQLite database ({error})") from None
    for table, columns in _NEEDED.items():
        if not tables[table]:
            db.close()
            raise MalformedFile(f"table {table}", "missing: this is not an Isso database")
        missing = [column for column in columns if column not in tables[table]]
        if missing:
            db.close()
            raise MalformedFile(f"table {table}", f"column {', '.join(missing)} is missing")
    return db


def _time(seconds: object, where: str, what: str) -> datetime:
    if not isinstance(seconds, int | float):
        raise MalformedFile(where, f"{what} {seconds!r} is not a Unix time")
    return datetime.fromtimestamp(seconds, UTC)


def _author(name: str | None, email: str | None) -> SourceAuthor:
    name = (name or "").strip()
    email = (email or "").strip().lower()
    if email:
        return SourceAuthor(author_id("isso", "e", email), name or "Anonymous")
    if name:
        return SourceAuthor(author_id("isso", "n", name), name)
    return SourceAuthor(anonymous_id("isso"), "Anonymous")


def _read(db: sqlite3.Connection) -> Iterator[SourceThread | SkippedThread]:
    threads: dict[int, tuple[str, str | None]] = {
        tid: (uri, title) for tid, uri, title in db.execute("SELECT id, uri, title FROM threads")
    }
    seen: set[int] = set()
    current: int | None = None
    comments: list[SourceComment] = []
    rows = db.execute(
        "SELECT rowid, tid, id, parent, created, modified, mode, text, author, email, likes "
        "FROM comments ORDER BY tid, id"
    )
    for row in rows:
        rowid, tid, comment_id, parent, created, modified, mode, text, name, email, likes = row
        if tid != current:
            if current is not None:
                yield _thread(current, threads, comments)
                seen.add(current)
            current, comments = tid, []
        where = f"row {rowid} of table comments (id {comment_id})"
        if mode not in _STATUS:
            raise MalformedFile(where, f"mode {mode!r} is not one Isso writes (1, 2 or 4)")
        deleted = mode == 4
        comments.append(
            SourceComment(
                key=str(comment_id),
                parent_key=str(parent) if parent is not None else None,
                author=_author(name, email),
                body="" if deleted else (text or "").strip(),
                posted_at=_time(created, where, "created"),
                deleted=deleted,
                likes=max(int(likes or 0), 0),
                status=_STATUS[mode],
                edited_at=_time(modified, where, "modified") if modified is not None else None,
            )
        )
    if current is not None:
        yield _thread(current, threads, comments)
        seen.add(current)
    for tid, (uri, _title) in threads.items():
        if tid not in seen:
            yield SkippedThread(uri or str(tid), "no comments")


def _thread(
    tid: int, threads: dict[int, tuple[str, str | None]], comments: list[SourceComment]
) -> SourceThread | SkippedThread:
    if tid not in threads or not threads[tid][0]:
        return SkippedThread(f"tid {tid}", "thread missing")
    uri, title = threads[tid]
    return SourceThread(
        key=uri,
        identifier=uri,
        url=uri,
        title=(title or "").strip() or None,
        comments=comments,
    )
