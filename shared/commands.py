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
    DecidedComment,
    ErasedPerson,
    FeaturedComment,
    FlagState,
    ModerationSettings,
    NewComment,
    NotificationsMarked,
    Preferences,
    PremodState,
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

    @property
    def is_staff(self) -> bool:
        """Acting for the publication: their comments carry the `staff` badge and are
        never held."""
        return bool(self.roles & {"moderator", "admin", "staff"})


@dataclass(frozen=True, slots=True)
class RequestContext:
    actor: Actor
    request_id: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class RegisterThread(Answers[SavedThread]):
    """Create or update a thread. Fields left as None keep their current value.

    `moderation` is the thread's own mode (post | pre | first_comments), or
    `FOLLOW_SITE` to follow the site's again: None already means "unchanged"."""

    thread_id: str
    title: str | None = None
    url: str | None = None
    locked: bool | None = None
    moderation: str | None = None


FOLLOW_SITE = "site"


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
    until: str | None = None  # ISO 8601: a suspension that ends by itself; None: for good


@dataclass(frozen=True, slots=True)
class SetPremod(Answers[PremodState]):
    """Put a user's comments on hold (`on`), or let them publish again."""

    user_id: str
    on: bool = True


@dataclass(frozen=True, slots=True)
class ChangeModerationSettings(Answers[ModerationSettings]):
    """Replace the settings named in `given`; the others keep their value (a field's
    None may mean "no limit", so None cannot also mean "unchanged")."""

    given: tuple[str, ...]
    mode: str | None = None
    banned_words: tuple[str, ...] = ()
    suspect_words: tuple[str, ...] = ()
    max_links: int | None = None
    flag_threshold: int | None = None


@dataclass(frozen=True, slots=True)
class FlagComment(Answers[FlagState]):
    comment_id: str
    reason: str  # spam | abuse | off_topic | other
    note: str = ""


@dataclass(frozen=True, slots=True)
class ApproveComment(Answers[DecidedComment]):
    comment_id: str


@dataclass(frozen=True, slots=True)
class RejectComment(Answers[DecidedComment]):
    comment_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class FeatureComment(Answers[FeaturedComment]):
    comment_id: str
    featured: bool = True


@dataclass(frozen=True, slots=True)
class UnbanUser(Answers[BanState]):
    user_id: str


@dataclass(frozen=True, slots=True)
class EraseUser(Answers[ErasedPerson]):
    """Forget a person (decision 33): the person themselves, or an admin."""

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
    | SetPremod
    | ChangeModerationSettings
    | FlagComment
    | ApproveComment
    | RejectComment
    | FeatureComment
    | EraseUser
)
