"""What a command answers: one small frozen type per kind of answer.

Handlers return these; routes shape them into response models; an idempotent replay
stores them as versioned records (`shared.replays`). Field names are part of the stored
record: rename one only with a decoder for the old name.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SavedThread:
    """A thread registered, updated, locked or unlocked."""

    id: str
    title: str | None
    url: str | None
    locked: bool
    version: int


@dataclass(frozen=True, slots=True)
class NewComment:
    id: str
    thread_id: str
    parent_id: str | None
    version: int
    position: int


@dataclass(frozen=True, slots=True)
class ChangedComment:
    """A comment edited or deleted (deleting twice answers the first deletion's version)."""

    id: str
    thread_id: str
    version: int


@dataclass(frozen=True, slots=True)
class CommentLikes:
    id: str
    thread_id: str
    like_count: int
    version: int


@dataclass(frozen=True, slots=True)
class Subscription:
    thread_id: str
    level: str
    version: int


@dataclass(frozen=True, slots=True)
class Preferences:
    notify_on: str
    email_frequency: str


@dataclass(frozen=True, slots=True)
class NotificationsMarked:
    """Read marks recorded; what is left unread is for the route to count."""


@dataclass(frozen=True, slots=True)
class BanState:
    user_id: str
    banned: bool


Result = (
    SavedThread
    | NewComment
    | ChangedComment
    | CommentLikes
    | Subscription
    | Preferences
    | NotificationsMarked
    | BanState
)
RESULT_TYPES: tuple[type[Result], ...] = (
    SavedThread,
    NewComment,
    ChangedComment,
    CommentLikes,
    Subscription,
    Preferences,
    NotificationsMarked,
    BanState,
)
