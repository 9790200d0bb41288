"""Projectors for the thread projection: plain functions in a registry keyed by event type.

Each takes the stored event (its domain event via `to_domain()`) and the session
holding the thread's rows. Counts (the thread's, a parent's replies, the ancestors'
descendants, participants) are of shown comments: published and not deleted. Every change
of status or deletion goes through `_set_shown`, which moves them by the difference, so a
comment held, rejected, approved or deleted in any order leaves the counts exact.
"""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from services.worker.tree_session import Row, TreeSession
from shared import events as ev
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
            "created_at": event.registered_at or stored.recorded_at,
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
    s.require_thread()
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
        "body_html": s.render(event.body),
        "body": event.body,
        # An imported comment keeps when it was written, and the likes its source counted.
        "created_at": event.posted_at or stored.recorded_at,
        "edited_at": event.edited_at,  # an imported comment's, as its source had it
        "deleted": False,
        "like_count": event.imported_likes,
        "reply_count": 0,
        "descendant_count": 0,
        # Held comments arrive `pending` and count nowhere until approved.
        "status": "pending",
        "held_for": _joined(event.held_for),
        "featured": False,
        "badges": _joined(event.badges),
        "flag_count": 0,
        "flags": None,
    }
    s.add_comment(row)
    _set_status(s, row, event.status)


def comment_edited(event: ev.DomainEvent, stored: StoredEvent, s: TreeSession) -> None:
    assert isinstance(event, ev.CommentEdited)
    row = s.comment(event.comment_id)
    if row["deleted"]:
        return
    row["body_html"] = s.render(event.body)
    row["body"] = event.body
    row["edited_at"] = stored.recorded_at
    s.changed(row)


def comment_deleted(event: ev.DomainEvent, _stored: StoredEvent, s: TreeSession) -> None:
    assert isinstance(event, ev.CommentDeleted)
    row = s.comment(event.comment_id)
    if row["deleted"]:
        return
    was_shown = _shown(row)
    row["deleted"] = True
    row["body_html"] = None
    row["body"] = None
    _recount(s, row, was_shown)


def person_erased(event: ev.DomainEvent, _stored: StoredEvent, s: TreeSession) -> None:
    """Their comments become deleted placeholders without author or text (decision 33);
    counts move as a deletion moves them, and replies by others stay where they are."""
    assert isinstance(event, ev.PersonErased)
    for comment_id in event.comment_ids:
        row = s.comment(comment_id)
        was_shown = _shown(row)
        row["deleted"] = True
        row["author_name"] = ""
        row["body_html"] = None
        row["body"] = None
        _recount(s, row, was_shown)


def comment_flagged(event: ev.DomainEvent, _stored: StoredEvent, s: TreeSession) -> None:
    assert isinstance(event, ev.CommentFlagged)
    row = s.comment(event.comment_id)
    flags = dict(row["flags"] or {})  # a new dict: the row's may be shared with its loader
    flags[event.reason] = flags.get(event.reason, 0) + 1
    row["flags"] = flags
    row["flag_count"] += 1
    s.changed(row)


def comment_held(event: ev.DomainEvent, _stored: StoredEvent, s: TreeSession) -> None:
    assert isinstance(event, ev.CommentHeld)
    row = s.comment(event.comment_id)
    row["held_for"] = _joined(event.held_for)
    _set_status(s, row, "pending")


def comment_approved(event: ev.DomainEvent, _stored: StoredEvent, s: TreeSession) -> None:
    assert isinstance(event, ev.CommentApproved)
    row = s.comment(event.comment_id)
    row["held_for"], row["flag_count"], row["flags"] = None, 0, None
    _set_status(s, row, "published")


def comment_rejected(event: ev.DomainEvent, _stored: StoredEvent, s: TreeSession) -> None:
    assert isinstance(event, ev.CommentRejected)
    row = s.comment(event.comment_id)
    row["held_for"] = None
    _set_status(s, row, "rejected")


def comment_featured(event: ev.DomainEvent, _stored: StoredEvent, s: TreeSession) -> None:
    assert isinstance(event, ev.CommentFeatured | ev.CommentUnfeatured)
    row = s.comment(event.comment_id)
    row["featured"] = isinstance(event, ev.CommentFeatured)
    s.changed(row)


def _shown(row: Row) -> bool:
    """Whether the comment counts: published and not deleted."""
    return row["status"] == "published" and not row["deleted"]


def _set_status(s: TreeSession, row: Row, status: str) -> None:
    was_shown = _shown(row)
    row["status"] = status
    _recount(s, row, was_shown)


def _recount(s: TreeSession, row: Row, was_shown: bool) -> None:
    """Move every count the comment is in by the change of `_shown`, and mark it changed."""
    s.changed(row)
    delta = int(_shown(row)) - int(was_shown)
    if delta == 0:
        return
    thread = s.require_thread()
    if row["parent_id"]:
        parent = s.comment(row["parent_id"])
        parent["reply_count"] += delta
        s.changed(parent)
    else:
        thread["top_level_count"] += delta
    _adjust_descendants(s, row, delta)
    thread["comment_count"] += delta
    if delta > 0:
        last = thread["last_comment_at"]
        if last is None or _utc(last) < _utc(row["created_at"]):
            thread["last_comment_at"] = row["created_at"]
    visible = s.adjust_participant(row["author_id"], delta)
    if (delta > 0 and visible == 1) or (delta < 0 and visible == 0):
        thread["participant_count"] += delta


def _joined(values: Sequence[str]) -> str | None:
    """A list column as the projection stores it: joined by ",", None when empty."""
    return ",".join(values) or None


def _utc(moment: datetime) -> datetime:
    # SQLite hands timestamps back naive (they are stored in UTC).
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
    "CommentFlagged": comment_flagged,
    "CommentHeld": comment_held,
    "CommentApproved": comment_approved,
    "CommentRejected": comment_rejected,
    "CommentFeatured": comment_featured,
    "CommentUnfeatured": comment_featured,
    "ThreadModerationChanged": not_shown,
    "ThreadSubscriptionChanged": not_shown,
    "PersonErased": person_erased,
}


def apply(stored: StoredEvent, session: TreeSession) -> None:
    PROJECTORS[stored.type](stored.to_domain(), stored, session)
