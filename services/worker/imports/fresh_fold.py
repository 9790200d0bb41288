"""Folding the threads an import batch creates, in the batch's own transaction.

A thread new to the log has nothing in the projections yet, so its fold reads nothing:
the real projectors (`thread_projectors`, through a `FreshTreeSession`) and the
notification fold's own rules (`fresh_thread_rows`) make its rows in memory, and the
whole batch's rows are written with a few bulk inserts (COPY on PostgreSQL), with the
checkpoints of both projections at the head. The threads are readable when the batch
commits, and nothing is left for the workers. A thread whose events the projectors
refuse is left out, to be folded as usual (and dead-lettered) by the workers or
`FoldHere`.

Folds hold the rebuild's swap lock shared (`lock_folds`), so a `chorus rebuild`
swapping its tables in never loses these rows: it waits, and its catch-up folds them.
"""

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from services.worker.folding import lock_folds
from services.worker.notification_projector import fresh_thread_rows
from services.worker.thread_projectors import apply as apply_to_tree
from services.worker.tree_session import FreshTreeSession
from shared.bulk import insert_rows
from shared.notification_tables import conversation_participants, notification_checkpoints
from shared.notification_tables import notification_comments as notification_comment_rows
from shared.projection_tables import LIVE
from shared.rendering import render_markdown
from shared.store import StoredEvent

log = logging.getLogger(__name__)


Render = Callable[[list[str]], list[str]]
"""Markdown bodies -> their HTML, in order (`shared.rendering.render_markdown` each)."""


def render_each(bodies: list[str]) -> list[str]:
    return [render_markdown(body) for body in bodies]


def fold_fresh(
    conn: Connection, threads: Iterable[list[StoredEvent]], render: Render = render_each
) -> set[str]:
    """Fold each new thread's events (all of them, from version 1); the ids folded.

    The bodies are rendered first, all at once: `render` may spread them over processes
    (rendering is most of a fold's CPU)."""
    threads = list(threads)
    bodies = sorted(
        {e.data["body"] for events in threads for e in events if e.type == "CommentPosted"}
    )
    rendered = dict(zip(bodies, render(bodies), strict=True))
    lock_folds(conn, [])  # the swap lock, shared
    rows: dict[str, list[dict[str, Any]]] = {
        name: [] for name in ("threads", "comments", "participants", "notes", "conversations")
    }
    checkpoints: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    folded: set[str] = set()
    for events in threads:
        thread_id = events[0].stream_id
        try:
            session = FreshTreeSession(LIVE, thread_id, rendered)
            for event in events:
                apply_to_tree(event, session)
            thread, comments, participants = session.rows()
            notes, conversations = fresh_thread_rows(thread_id, events)
        except Exception as exc:  # the usual fold meets it again, and dead-letters it
            log.warning("thread %s is left to the workers' fold: %s", thread_id, exc)
            continue
        rows["threads"].append(thread)
        rows["comments"].extend(comments)
        rows["participants"].extend(participants)
        rows["notes"].extend(notes)
        rows["conversations"].extend(conversations)
        last = events[-1]
        checkpoints.append(
            {
                "thread_id": thread_id,
                "version": last.version,
                "position": last.position,
                "updated_at": now,
            }
        )
        folded.add(thread_id)
    insert_rows(conn, LIVE.threads, rows["threads"])
    insert_rows(conn, LIVE.comments, rows["comments"])
    insert_rows(conn, LIVE.participants, rows["participants"])
    insert_rows(conn, LIVE.checkpoints, checkpoints)
    insert_rows(conn, notification_comment_rows, rows["notes"])
    insert_rows(conn, conversation_participants, rows["conversations"])
    insert_rows(conn, notification_checkpoints, checkpoints)
    return folded
