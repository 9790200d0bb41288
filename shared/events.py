"""Domain events: the facts Chorus records. Past-tense names, frozen data.

Each event class carries its wire `type` name and its current `schema_version`.
Stored events are never rewritten; an older schema is upcast when read
(see `shared.upcasting`).
"""

from datetime import datetime
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
    # Set by `chorus import` only: when the thread began in the source (its own date, else
    # its first comment's), so an archive's threads keep their age.
    registered_at: datetime | None = None


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


ModerationMode = Literal["post", "pre", "first_comments"]
FlagReason = Literal["spam", "abuse", "off_topic", "other"]
# Why a comment waits for a moderator (`held_for`), in the order they are checked.
HoldReason = Literal[
    "pre_moderation",  # the thread's or the site's mode is `pre`
    "first_comment",  # mode `first_comments` and none of the author's has been approved
    "user_premod",  # a moderator put the author on pre-moderation
    "suspect_word",
    "too_many_links",
    "flags",  # reader flags reached the threshold (the comment was published)
]


class CommentPosted(DomainEvent):
    """A new comment. `status` is decided on the write side when it is posted: `pending`
    with `held_for` naming why, or `published`. `badges` are the author's as their token
    said when they posted (`staff` for a moderator, admin or staff role)."""

    type_name = "CommentPosted"
    comment_id: str
    parent_id: str | None
    author: Author
    body: str
    status: Literal["published", "pending"] = "published"
    held_for: list[HoldReason] = []
    badges: list[Literal["staff"]] = []
    # Set by `chorus import` only: where the comment came from (`disqus`, `wordpress`,
    # `isso`, `chorus`), when it was written and last edited there, and the likes the
    # source counted without saying who. An imported comment notifies no one, now or on
    # a rebuild.
    imported_from: str | None = None
    posted_at: datetime | None = None
    imported_likes: int = 0
    edited_at: datetime | None = None


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


class CommentFlagged(DomainEvent):
    """A reader reported a comment (one flag per reader per comment). Who flagged is in
    the log for moderators and erasure; no reader-facing answer ever shows it."""

    type_name = "CommentFlagged"
    comment_id: str
    user_id: str
    reason: FlagReason
    note: str = ""


class CommentHeld(DomainEvent):
    """A published comment leaves the page until a moderator decides: appended with the
    flag that brought its open flags to the site's threshold."""

    type_name = "CommentHeld"
    comment_id: str
    held_for: list[HoldReason]


class CommentApproved(DomainEvent):
    """A moderator published a pending or rejected comment; its open flags are cleared."""

    type_name = "CommentApproved"
    comment_id: str
    by: str


class CommentRejected(DomainEvent):
    """A moderator refused a pending or published comment: it is shown to its author only."""

    type_name = "CommentRejected"
    comment_id: str
    by: str
    reason: str = ""


class CommentFeatured(DomainEvent):
    type_name = "CommentFeatured"
    comment_id: str
    by: str


class CommentUnfeatured(DomainEvent):
    type_name = "CommentUnfeatured"
    comment_id: str
    by: str


class ThreadModerationChanged(DomainEvent):
    """The thread's own moderation mode; None follows the site's."""

    type_name = "ThreadModerationChanged"
    mode: ModerationMode | None


class ModerationSettingsChanged(DomainEvent):
    """The site's moderation settings, whole, in the site stream
    (`shared.streams.SITE_MODERATION_STREAM`); they apply from the next comment on."""

    type_name = "ModerationSettingsChanged"
    mode: ModerationMode
    banned_words: list[str]
    suspect_words: list[str]
    max_links: int | None
    flag_threshold: int | None


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
    until: datetime | None = None  # a suspension ends by itself at `until`


class UserUnbanned(DomainEvent):
    """Recorded in the user's stream: the ban is lifted."""

    type_name = "UserUnbanned"
    user_id: str
    by: str


class UserPremodChanged(DomainEvent):
    """Recorded in the user's stream: their comments are held (`on`) or no longer held."""

    type_name = "UserPremodChanged"
    user_id: str
    on: bool
    by: str


class PersonErased(DomainEvent):
    """A person was forgotten (decision 33): their `personal_data` rows and write-side rows
    were deleted in the transaction that appended this. Appended to every thread stream
    they wrote in, were notified in or subscribed to (`comment_ids`: theirs in that
    thread, which the folds turn into deleted placeholders without author or text), and
    to their own stream (`comment_ids`: all of them)."""

    type_name = "PersonErased"
    user_id: str
    comment_ids: list[str] = []


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
        CommentFlagged,
        CommentHeld,
        CommentApproved,
        CommentRejected,
        CommentFeatured,
        CommentUnfeatured,
        ThreadModerationChanged,
        ModerationSettingsChanged,
        ThreadSubscriptionChanged,
        PreferencesChanged,
        NotificationsRead,
        UserBanned,
        UserUnbanned,
        UserPremodChanged,
        PersonErased,
    )
}
