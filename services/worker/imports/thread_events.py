"""The events that say one planned thread happened, each with its derived id.

The data dicts are built directly rather than through the pydantic models: an import
makes a million of them, and they must equal `NewEvent.of(model)`'s (a unit test holds
them to it). Per comment, in this order: CommentPosted; a CommentLiked per user who
liked it; CommentRejected if the source rejected it (posted `pending` first, as a held
comment is); CommentDeleted if it was deleted, whose text is never imported (the
CommentPosted of a deleted comment has an empty body).
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.worker.imports import ids
from services.worker.imports.model import SourceComment
from services.worker.imports.plan import MAX_NAME_CHARS, PlannedComment, ThreadPlan, clean_text
from shared.store import NewEvent


@dataclass(frozen=True, slots=True)
class CommentEvents:
    """A comment's events, and what its write-side row will say once they are appended."""

    planned: PlannedComment
    events: list[NewEvent]
    posted_id: str  # the CommentPosted's event id: present means the comment is there
    status: str
    liked_by: tuple[str, ...]


def actor(source: str) -> str:
    return f"import:{source}"


def metadata(source: str) -> dict[str, Any]:
    return {"actor": {"id": actor(source)}, "import": source}


def registered(source: str, plan: ThreadPlan) -> NewEvent:
    return NewEvent(
        type="ThreadRegistered",
        data={
            "title": plan.title,
            "url": plan.url,
            "registered_at": None if plan.created_at is None else json_time(plan.created_at),
        },
        metadata=metadata(source),
        event_id=ids.event_id(source, f"thread:{plan.key}", "registered"),
    )


def locked(source: str, plan: ThreadPlan) -> NewEvent:
    return NewEvent(
        type="ThreadLocked",
        data={},
        metadata=metadata(source),
        event_id=ids.event_id(source, f"thread:{plan.key}", "locked"),
    )


def posted_body(comment: SourceComment) -> str:
    """The body its CommentPosted carries: a deleted comment's text is never imported."""
    return "" if comment.deleted else clean_text(comment.body)


def comment_events(source: str, planned: PlannedComment) -> CommentEvents:
    c = planned.source
    meta = metadata(source)
    key = f"comment:{c.key}"
    liked_by = tuple(dict.fromkeys(c.liked_by))
    status = c.status
    posted = NewEvent(
        type="CommentPosted",
        data={
            "comment_id": planned.comment_id,
            "parent_id": planned.parent_id,
            "author": {"id": c.author.id, "name": clean_text(c.author.name)[:MAX_NAME_CHARS]},
            "body": posted_body(c),
            "status": "published" if status == "published" else "pending",
            "held_for": [],
            "badges": [],
            "imported_from": source,
            "posted_at": json_time(c.posted_at),
            "imported_likes": max(0, c.likes),
            "edited_at": None if c.edited_at is None else json_time(c.edited_at),
        },
        metadata=meta,
        event_id=ids.event_id(source, key, "posted"),
    )
    events = [posted]
    events.extend(
        NewEvent(
            type="CommentLiked",
            data={"comment_id": planned.comment_id, "user_id": user},
            metadata=meta,
            event_id=ids.event_id(source, key, f"liked:{user}"),
        )
        for user in liked_by
    )
    if status == "rejected":
        events.append(
            NewEvent(
                type="CommentRejected",
                data={"comment_id": planned.comment_id, "by": actor(source), "reason": ""},
                metadata=meta,
                event_id=ids.event_id(source, key, "rejected"),
            )
        )
    if c.deleted:
        events.append(
            NewEvent(
                type="CommentDeleted",
                data={
                    "comment_id": planned.comment_id,
                    "deleted_by": actor(source),
                    "by_moderator": False,
                },
                metadata=meta,
                event_id=ids.event_id(source, key, "deleted"),
            )
        )
    return CommentEvents(planned, events, posted.event_id, status, liked_by)


def json_time(moment: datetime) -> str:
    """As pydantic writes a datetime in JSON mode (UTC as `Z`)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"
