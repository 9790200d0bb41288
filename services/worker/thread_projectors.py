"""Projectors for the thread projection: plain functions in a registry keyed by event type.

Each takes the stored event (its domain event via `to_domain()`) and the session
holding the thread's rows. Counts are of visible (not deleted) comments.
"""

from collections.abc import Callable

from services.worker.tree_session import Row, TreeSession
from shared import events as ev
from shared.rendering import render_markdown
from shared.store import StoredEvent

Projector = Callable[[ev.DomainEvent, StoredEvent, TreeSession], None]


def thread_registered(event: ev.DomainEvent, stored: StoredEvent, s: TreeSession) -> None:
    assert isinstance(event, ev.ThreadRegistered)
    s.create_thread(
        {
            "thread_id": stored.stream_id,
            "title": event.title,
            "url": event.url,
            "locked": False,
            "comment_count": 0,
            "top_level_count": 0,
            "participant_count": 0,
            "last_comment_at": None,
            "created_at": stored.recorded_at,
        }
    )


def thread_updated(event: ev.DomainEvent, _stored: StoredEvent, s: TreeSession) -> None:
    assert isinstance(event, ev.ThreadUpdated)
    thread = s.require_thread()
    thread["title"], thread["url"] = event.title, event.url


def thread_locked(_event: ev.DomainEvent, _stored: StoredEvent, s: TreeSession) -> None:
    s.require_thread()["locked"] = True


def thread_unlocked(_event: ev.DomainEvent, _stored: StoredEvent, s: TreeSession) -> None:
    s.require_thread()["locked"] = False


def comment_posted(event: ev.DomainEvent, stored: StoredEvent, s: TreeSession) -> None:
    assert isinstance(event, ev.CommentPosted)
    thread = s.require_thread()
    parent = s.comment(event.parent_id) if event.parent_id else None
    row: Row = {
        "comment_id": event.comment_id,
        "thread_id": stored.stream_id,
        "parent_id": event.parent_id,
        "root_id": parent["root_id"] if parent else event.comment_id,
        "depth": parent["depth"] + 1 if parent else 0,
        "path": _child_path(parent),
        "seq": stored.version,
        "position": stored.position,
        "author_id": event.author.id,
        "author_name": event.author.name,
        "body_html": render_markdown(event.body),
        "body": event.body,
        "created_at": stored.recorded_at,
        "edited_at": None,
        "deleted": False,
        "like_count": 0,
        "reply_count": 0,
        "descendant_count": 0,
    }
    s.add_comment(row)
    if parent is not None:
        parent["reply_count"] += 1
        s.changed(parent)
    _adjust_descendants(s, row, +1)
    thread["comment_count"] += 1
    if parent is None:
        thread["top_level_count"] += 1
    thread["last_comment_at"] = stored.recorded_at
    if s.adjust_participant(event.author.id, +1) == 1:
        thread["participant_count"] += 1


def comment_edited(event: ev.DomainEvent, stored: StoredEvent, s: TreeSession) -> None:
    assert isinstance(event, ev.CommentEdited)
    row = s.comment(event.comment_id)
    if row["deleted"]:
        return
    row["body_html"] = render_markdown(event.body)
    row["body"] = event.body
    row["edited_at"] = stored.recorded_at
    s.changed(row)


def comment_deleted(event: ev.DomainEvent, _stored: StoredEvent, s: TreeSession) -> None:
    assert isinstance(event, ev.CommentDeleted)
    row = s.comment(event.comment_id)
    if row["deleted"]:
        return
    thread = s.require_thread()
    row["deleted"] = True
    row["body_html"] = None
    row["body"] = None
    s.changed(row)
    if row["parent_id"]:
        parent = s.comment(row["parent_id"])
        parent["reply_count"] -= 1
        s.changed(parent)
    else:
        thread["top_level_count"] -= 1
    _adjust_descendants(s, row, -1)
    thread["comment_count"] -= 1
    if s.adjust_participant(row["author_id"], -1) == 0:
        thread["participant_count"] -= 1


def comment_liked(event: ev.DomainEvent, _stored: StoredEvent, s: TreeSession) -> None:
    assert isinstance(event, ev.CommentLiked)
    _adjust_likes(s, event.comment_id, +1)


def comment_unliked(event: ev.DomainEvent, _stored: StoredEvent, s: TreeSession) -> None:
    assert isinstance(event, ev.CommentUnliked)
    _adjust_likes(s, event.comment_id, -1)


def _adjust_likes(s: TreeSession, comment_id: str, delta: int) -> None:
    row = s.comment(comment_id)
    row["like_count"] = max(0, row["like_count"] + delta)
    s.changed(row)


def _adjust_descendants(s: TreeSession, row: Row, delta: int) -> None:
    for ancestor in s.ancestors(row):
        ancestor["descendant_count"] += delta
        s.changed(ancestor)


def _child_path(parent: Row | None) -> str:
    if parent is None:
        return ""
    return f"{parent['path']}/{parent['comment_id']}" if parent["path"] else parent["comment_id"]


def not_shown(_event: ev.DomainEvent, _stored: StoredEvent, _s: TreeSession) -> None:
    """Events in a thread's stream that change nothing a thread page shows."""


PROJECTORS: dict[str, Projector] = {
    "ThreadRegistered": thread_registered,
    "ThreadUpdated": thread_updated,
    "ThreadLocked": thread_locked,
    "ThreadUnlocked": thread_unlocked,
    "CommentPosted": comment_posted,
    "CommentEdited": comment_edited,
    "CommentDeleted": comment_deleted,
    "CommentLiked": comment_liked,
    "CommentUnliked": comment_unliked,
    "ThreadSubscriptionChanged": not_shown,
}


def apply(stored: StoredEvent, session: TreeSession) -> None:
    PROJECTORS[stored.type](stored.to_domain(), stored, session)
