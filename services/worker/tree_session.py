"""An in-memory unit of work over one thread's projection rows.

Projectors change plain dicts; `flush` writes what changed in a few bulk
statements. Folding a batch of events this way costs a handful of round trips
instead of several per event.
"""

import functools
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared.projection_tables import ThreadTables
from shared.rendering import render_markdown
from shared.store import StoredEvent

Row = dict[str, Any]
_COMMENT_MUTABLE = (
    "author_name",  # blanked when its author is erased (decision 33)
    "body_html",
    "body",
    "edited_at",
    "deleted",
    "like_count",
    "reply_count",
    "descendant_count",
    "status",
    "held_for",
    "featured",
    "flag_count",
    "flags",
)
_THREAD_MUTABLE = (
    "title",
    "url",
    "locked",
    "comment_count",
    "top_level_count",
    "participant_count",
    "last_comment_at",
)


@dataclass(frozen=True)
class _Statements:
    """A table set's statements, built once: building and keying them costs more CPU than
    running them does for the few rows of a typical batch."""

    load_thread: sa.Select[Any]
    load_comments: sa.Select[Any]
    load_participants: sa.Select[Any]
    update_thread: sa.Update
    update_comment: sa.Update
    update_participant: sa.Update


@functools.lru_cache(maxsize=8)
def _statements(t: ThreadTables) -> _Statements:
    thread_id = sa.bindparam("thread_id", type_=sa.String)
    return _Statements(
        load_thread=sa.select(t.threads).where(t.threads.c.thread_id == thread_id),
        load_comments=sa.select(t.comments).where(
            t.comments.c.comment_id.in_(sa.bindparam("ids", expanding=True))
        ),
        load_participants=sa.select(
            t.participants.c.author_id, t.participants.c.visible_comments
        ).where(
            t.participants.c.thread_id == thread_id,
            t.participants.c.author_id.in_(sa.bindparam("ids", expanding=True)),
        ),
        update_thread=t.threads.update()
        .where(t.threads.c.thread_id == sa.bindparam("b_thread_id"))
        .values({c: sa.bindparam(f"b_{c}") for c in _THREAD_MUTABLE}),
        update_comment=t.comments.update()
        .where(t.comments.c.comment_id == sa.bindparam("b_comment_id"))
        .values({c: sa.bindparam(f"b_{c}") for c in _COMMENT_MUTABLE}),
        update_participant=t.participants.update()
        .where(
            t.participants.c.thread_id == sa.bindparam("b_thread_id"),
            t.participants.c.author_id == sa.bindparam("b_author_id"),
        )
        .values(visible_comments=sa.bindparam("b_visible_comments")),
    )


class MissingRow(LookupError):
    """An event refers to a row the projection does not have."""


class TreeSession:
    def __init__(self, conn: Connection, tables: ThreadTables, thread_id: str) -> None:
        self.conn = conn
        self.t = tables
        self.sql = _statements(tables)
        self.thread_id = thread_id
        self.thread: Row | None = None
        self._thread_is_new = False
        self._comments: dict[str, Row] = {}
        self._new_comments: dict[str, None] = {}  # insertion-ordered set
        self._dirty_comments: set[str] = set()
        self._participants: dict[str, int] = {}
        self._participants_known: set[str] = set()
        self._dirty_participants: set[str] = set()
        self._load_thread()

    # -- loading ---------------------------------------------------------------

    def _load_thread(self) -> None:
        row = self.conn.execute(self.sql.load_thread, {"thread_id": self.thread_id}).first()
        self.thread = dict(row._mapping) if row else None

    def prefetch(self, events: list[StoredEvent]) -> None:
        """Load every comment the batch touches, and their ancestors, in two queries."""
        wanted = set()
        for event in events:
            data = event.data
            if event.type == "CommentPosted":
                if data.get("parent_id"):
                    wanted.add(data["parent_id"])
            elif "comment_id" in data:
                wanted.add(data["comment_id"])
            elif event.type == "PersonErased":
                wanted.update(data.get("comment_ids", ()))
        self._load_comments(wanted)
        ancestors = {a for row in self._comments.values() for a in _path(row)}
        self._load_comments(ancestors)
        authors = {e.data["author"]["id"] for e in events if e.type == "CommentPosted"}
        authors |= {self._comments[c]["author_id"] for c in wanted if c in self._comments}
        self._load_participants(authors)

    def _load_comments(self, ids: set[str]) -> None:
        missing = sorted(ids - self._comments.keys())
        for chunk in (missing[i : i + 500] for i in range(0, len(missing), 500)):
            for row in self.conn.execute(self.sql.load_comments, {"ids": chunk}):
                self._comments[row.comment_id] = dict(row._mapping)

    def _load_participants(self, authors: set[str]) -> None:
        missing = sorted(authors - self._participants.keys())
        for chunk in (missing[i : i + 500] for i in range(0, len(missing), 500)):
            rows = self.conn.execute(
                self.sql.load_participants, {"thread_id": self.thread_id, "ids": chunk}
            )
            for author_id, count in rows:
                self._participants[author_id] = count
                self._participants_known.add(author_id)
            for author_id in chunk:
                self._participants.setdefault(author_id, 0)

    # -- what projectors use -----------------------------------------------------

    def render(self, body: str) -> str:
        """The body's HTML (a session may have it rendered already)."""
        return render_markdown(body)

    def create_thread(self, row: Row) -> None:
        self.thread = row
        self._thread_is_new = True

    def require_thread(self) -> Row:
        if self.thread is None:
            raise MissingRow(f"thread {self.thread_id!r} was never registered")
        return self.thread

    def comment(self, comment_id: str) -> Row:
        if comment_id not in self._comments:
            self._load_comments({comment_id})
        row = self._comments.get(comment_id)
        if row is None or row["thread_id"] != self.thread_id:
            raise MissingRow(f"comment {comment_id!r} is not in thread {self.thread_id!r}")
        return row

    def ancestors(self, row: Row) -> list[Row]:
        return [self.comment(a) for a in _path(row)]

    def add_comment(self, row: Row) -> None:
        if row["comment_id"] in self._comments:
            raise ValueError(f"comment {row['comment_id']!r} is already projected")
        self._comments[row["comment_id"]] = row
        self._new_comments[row["comment_id"]] = None

    def changed(self, row: Row) -> None:
        if row["comment_id"] not in self._new_comments:
            self._dirty_comments.add(row["comment_id"])

    def adjust_participant(self, author_id: str, delta: int) -> int:
        """Change an author's visible-comment count; returns the new count."""
        if author_id not in self._participants:
            self._load_participants({author_id})
        self._participants[author_id] += delta
        self._dirty_participants.add(author_id)
        return self._participants[author_id]

    # -- writing -----------------------------------------------------------------

    def flush(self) -> None:
        conn, t = self.conn, self.t
        if self.thread is not None:
            if self._thread_is_new:
                conn.execute(t.threads.insert(), [self.thread])
            else:
                conn.execute(
                    self.sql.update_thread, _bound(self.thread, ("thread_id", *_THREAD_MUTABLE))
                )
        if self._new_comments:
            conn.execute(t.comments.insert(), [self._comments[c] for c in self._new_comments])
        if self._dirty_comments:
            conn.execute(
                self.sql.update_comment,
                [
                    _bound(self._comments[c], ("comment_id", *_COMMENT_MUTABLE))
                    for c in sorted(self._dirty_comments)
                ],
            )
        self._flush_participants()

    def _flush_participants(self) -> None:
        participants = self.t.participants
        new = [a for a in self._dirty_participants if a not in self._participants_known]
        old = [a for a in self._dirty_participants if a in self._participants_known]
        rows = [
            {"thread_id": self.thread_id, "author_id": a, "visible_comments": self._participants[a]}
            for a in sorted(new)
        ]
        if rows:
            self.conn.execute(participants.insert(), rows)
        if old:
            self.conn.execute(
                self.sql.update_participant,
                [
                    {
                        "b_thread_id": self.thread_id,
                        "b_author_id": a,
                        "b_visible_comments": self._participants[a],
                    }
                    for a in sorted(old)
                ],
            )


def _path(row: Row) -> list[str]:
    path: str = row["path"]
    return path.split("/") if path else []


def _bound(row: Row, columns: tuple[str, ...]) -> Row:
    return {f"b_{c}": row[c] for c in columns}


class FreshTreeSession(TreeSession):
    """The session of a thread the projection has nothing of yet (new to the log):
    nothing to load, and its rows are handed back (`rows`) for a bulk write rather than
    flushed. `chorus import` folds the threads it creates this way, many per statement."""

    def __init__(self, tables: ThreadTables, thread_id: str, rendered: dict[str, str]) -> None:
        super().__init__(cast(Connection, None), tables, thread_id)
        self._rendered = rendered

    def render(self, body: str) -> str:
        found = self._rendered.get(body)
        return found if found is not None else render_markdown(body)

    def _load_thread(self) -> None:
        self.thread = None

    def _load_comments(self, ids: set[str]) -> None:
        pass

    def _load_participants(self, authors: set[str]) -> None:
        for author_id in authors:
            self._participants.setdefault(author_id, 0)

    def rows(self) -> tuple[Row, list[Row], list[Row]]:
        """The thread's row, its comments' and its participants' (with a visible comment)."""
        thread = self.require_thread()
        comments = [self._comments[c] for c in self._new_comments]
        participants = [
            {"thread_id": self.thread_id, "author_id": a, "visible_comments": n}
            for a, n in sorted(self._participants.items())
            if a in self._dirty_participants
        ]
        return thread, comments, participants
