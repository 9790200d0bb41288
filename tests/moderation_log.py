"""Moderation events appended straight to a thread's log, for read-side tests: what the
command handlers will append, without depending on them."""

from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.worker.folding import fold_thread
from shared import events as ev
from shared.projection_tables import LIVE
from shared.store import EventStore, NewEvent


class ThreadLog:
    """One thread's stream: append events in order and fold them."""

    def __init__(self, engine: Engine, store: EventStore, thread_id: str = "t1") -> None:
        self.engine, self.store, self.thread_id = engine, store, thread_id
        self.version = 0
        self.posted = 0
        self.append(ev.ThreadRegistered(title="T"))

    def append(self, *events: ev.DomainEvent) -> int:
        new = [NewEvent.of(e, {"actor": {"id": "mod", "name": "Mod"}}) for e in events]
        stored = self.store.append(self.thread_id, new, self.version)
        self.version = stored[-1].version
        return self.version

    def post(
        self,
        author: str,
        parent: str | None = None,
        *,
        status: str = "published",
        held_for: tuple[str, ...] = (),
        badges: tuple[str, ...] = (),
        body: str = "hi",
    ) -> str:
        self.posted += 1
        comment_id = f"{self.thread_id}-c{self.posted}"
        data: dict[str, Any] = {"status": status, "held_for": list(held_for)}
        self.append(
            ev.CommentPosted(
                comment_id=comment_id,
                parent_id=parent,
                author=ev.Author(id=author, name=author.title()),
                body=body,
                badges=list(badges),  # type: ignore[arg-type]
                **data,
            )
        )
        return comment_id

    def hold(self, comment_id: str, *reasons: str) -> int:
        return self.append(ev.CommentHeld(comment_id=comment_id, held_for=list(reasons)))  # type: ignore[arg-type]

    def approve(self, comment_id: str) -> int:
        return self.append(ev.CommentApproved(comment_id=comment_id, by="mod"))

    def reject(self, comment_id: str) -> int:
        return self.append(ev.CommentRejected(comment_id=comment_id, by="mod"))

    def flag(self, comment_id: str, user: str, reason: str = "spam") -> int:
        return self.append(
            ev.CommentFlagged(comment_id=comment_id, user_id=user, reason=reason)  # type: ignore[arg-type]
        )

    def feature(self, comment_id: str, on: bool = True) -> int:
        cls = ev.CommentFeatured if on else ev.CommentUnfeatured
        return self.append(cls(comment_id=comment_id, by="mod"))

    def delete(self, comment_id: str, by: str = "mod") -> int:
        return self.append(ev.CommentDeleted(comment_id=comment_id, deleted_by=by))

    def fold(self) -> int:
        return fold_thread(self.engine, self.store, self.thread_id).version


def assert_counts_match_statuses(engine: Engine, thread_id: str = "t1") -> None:
    """Every count the projection keeps equals a recount of the shown comments (published,
    not deleted) from the rows themselves."""
    c, t = LIVE.comments, LIVE.threads
    with engine.connect() as conn:
        rows = [
            dict(r._mapping) for r in conn.execute(sa.select(c).where(c.c.thread_id == thread_id))
        ]
        thread = conn.execute(sa.select(t).where(t.c.thread_id == thread_id)).one()
        participants = dict(
            conn.execute(
                sa.select(
                    LIVE.participants.c.author_id, LIVE.participants.c.visible_comments
                ).where(LIVE.participants.c.thread_id == thread_id)
            ).all()
        )
    shown = [r for r in rows if r["status"] == "published" and not r["deleted"]]
    replies = Counter(r["parent_id"] for r in shown)
    below = Counter(a for r in shown for a in (r["path"].split("/") if r["path"] else []))
    for row in rows:
        assert row["reply_count"] == replies[row["comment_id"]], row["comment_id"]
        assert row["descendant_count"] == below[row["comment_id"]], row["comment_id"]
    assert thread.comment_count == len(shown)
    assert thread.top_level_count == replies[None]
    authors = Counter(r["author_id"] for r in shown)
    assert thread.participant_count == len(authors)
    assert {a: n for a, n in participants.items() if n} == dict(authors)
