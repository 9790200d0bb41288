"""Domain events: the facts Chorus records. Past-tense names, frozen data.

Each event class carries its wire `type` name and its current `schema_version`.
Stored events are never rewritten; an older schema is upcast when read
(see `shared.upcasting`).
"""

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict


class DomainEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type_name: ClassVar[str]
    schema_version: ClassVar[int] = 1


class ThreadRegistered(DomainEvent):
    type_name = "ThreadRegistered"
    title: str | None = None
    url: str | None = None


class ThreadUpdated(DomainEvent):
    type_name = "ThreadUpdated"
    title: str | None = None
    url: str | None = None


class ThreadLocked(DomainEvent):
    type_name = "ThreadLocked"


class ThreadUnlocked(DomainEvent):
    type_name = "ThreadUnlocked"


class Author(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str


class CommentPosted(DomainEvent):
    type_name = "CommentPosted"
    comment_id: str
    parent_id: str | None
    author: Author
    body: str


class CommentEdited(DomainEvent):
    type_name = "CommentEdited"
    comment_id: str
    body: str


class CommentDeleted(DomainEvent):
    type_name = "CommentDeleted"
    comment_id: str
    deleted_by: str
    by_moderator: bool = False


class CommentLiked(DomainEvent):
    type_name = "CommentLiked"
    comment_id: str
    user_id: str


class CommentUnliked(DomainEvent):
    type_name = "CommentUnliked"
    comment_id: str
    user_id: str


class ThreadSubscriptionChanged(DomainEvent):
    """A user's interest in one thread: recorded in the thread's stream, so the
    notification fold sees it in order with the comments."""

    type_name = "ThreadSubscriptionChanged"
    user_id: str
    level: Literal["watching", "default", "muted"]


class PreferencesChanged(DomainEvent):
    """Recorded in the user's own stream (see `shared.streams.user_stream`)."""

    type_name = "PreferencesChanged"
    notify_on: Literal["conversations", "replies", "none"]
    email_frequency: Literal["immediate", "hourly", "daily", "off"]


class NotificationsRead(DomainEvent):
    """Recorded in the user's stream: these notifications (or all up to a position) were read."""

    type_name = "NotificationsRead"
    comment_ids: list[str] = []
    up_to_position: int | None = None


class UserBanned(DomainEvent):
    """Recorded in the banned user's stream: they may no longer post, edit or like."""

    type_name = "UserBanned"
    user_id: str
    reason: str
    by: str


class UserUnbanned(DomainEvent):
    """Recorded in the user's stream: the ban is lifted."""

    type_name = "UserUnbanned"
    user_id: str
    by: str


EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.type_name: cls
    for cls in (
        ThreadRegistered,
        ThreadUpdated,
        ThreadLocked,
        ThreadUnlocked,
        CommentPosted,
        CommentEdited,
        CommentDeleted,
        CommentLiked,
        CommentUnliked,
        ThreadSubscriptionChanged,
        PreferencesChanged,
        NotificationsRead,
        UserBanned,
        UserUnbanned,
    )
}
