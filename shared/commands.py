"""Commands: what a user asks Chorus to do. Imperative names; a handler may refuse them.

Each command names the type its handler answers with (`Answers[NewComment]`), so the bus
returns that type and a stored replay knows what it decodes to.
"""

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shared.results import (
    BanState,
    ChangedComment,
    CommentLikes,
    NewComment,
    NotificationsMarked,
    Preferences,
    SavedThread,
    Subscription,
)

R_co = TypeVar("R_co", covariant=True)


class Answers(Generic[R_co]):
    """Marks a command with the result type its handler answers with."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting, as their token says."""

    id: str
    name: str
    email: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_moderator(self) -> bool:
        return bool(self.roles & {"moderator", "admin"})

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


@dataclass(frozen=True, slots=True)
class RequestContext:
    actor: Actor
    request_id: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class RegisterThread(Answers[SavedThread]):
    """Create or update a thread. Fields left as None keep their current value."""

    thread_id: str
    title: str | None = None
    url: str | None = None
    locked: bool | None = None


@dataclass(frozen=True, slots=True)
class PostComment(Answers[NewComment]):
    thread_id: str
    body: str
    parent_id: str | None = None


@dataclass(frozen=True, slots=True)
class EditComment(Answers[ChangedComment]):
    comment_id: str
    body: str


@dataclass(frozen=True, slots=True)
class DeleteComment(Answers[ChangedComment]):
    comment_id: str


@dataclass(frozen=True, slots=True)
class LikeComment(Answers[CommentLikes]):
    comment_id: str


@dataclass(frozen=True, slots=True)
class UnlikeComment(Answers[CommentLikes]):
    comment_id: str


@dataclass(frozen=True, slots=True)
class ChangeSubscription(Answers[Subscription]):
    thread_id: str
    level: str  # watching | default | muted


@dataclass(frozen=True, slots=True)
class ChangePreferences(Answers[Preferences]):
    """Fields left as None keep their current value."""

    notify_on: str | None = None
    email_frequency: str | None = None


@dataclass(frozen=True, slots=True)
class MarkNotificationsRead(Answers[NotificationsMarked]):
    comment_ids: tuple[str, ...] = ()
    everything: bool = False


@dataclass(frozen=True, slots=True)
class LockThread(Answers[SavedThread]):
    """Lock (or unlock) a thread: the moderators' half of `RegisterThread`."""

    thread_id: str
    locked: bool = True


@dataclass(frozen=True, slots=True)
class BanUser(Answers[BanState]):
    user_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class UnbanUser(Answers[BanState]):
    user_id: str


Command = (
    RegisterThread
    | LockThread
    | PostComment
    | EditComment
    | DeleteComment
    | LikeComment
    | UnlikeComment
    | ChangeSubscription
    | ChangePreferences
    | MarkNotificationsRead
    | BanUser
    | UnbanUser
)
