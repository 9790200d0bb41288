"""What a command answers: one small frozen type per kind of answer.

Handlers return these; routes shape them into response models; an idempotent replay
stores them as versioned records (`shared.replays`). Field names are part of the stored
record: rename one only with a decoder for the old name.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SavedThread:
    """A thread registered, updated, locked or unlocked."""

    id: str
    title: str | None
    url: str | None
    locked: bool
    version: int
    moderation: str | None = None  # the thread's own mode; None: the site's


@dataclass(frozen=True, slots=True)
class NewComment:
    id: str
    thread_id: str
    parent_id: str | None
    version: int
    position: int
    status: str = "published"  # or pending, waiting for a moderator
    held_for: tuple[str, ...] = ()  # why it waits (shared.events.HoldReason)

    def __post_init__(self) -> None:
        object.__setattr__(self, "held_for", tuple(self.held_for))  # a replay carries a list


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
    # When a suspension ends (ISO 8601, UTC); None: for good, or not banned. A string, so
    # the result is a JSON replay record as it is.
    until: str | None = None


@dataclass(frozen=True, slots=True)
class PremodState:
    user_id: str
    premod: bool


@dataclass(frozen=True, slots=True)
class ModerationSettings:
    """The site's moderation settings (defaults when none were ever set)."""

    mode: str = "post"  # post | pre | first_comments
    banned_words: tuple[str, ...] = field(default=())
    suspect_words: tuple[str, ...] = field(default=())
    max_links: int | None = None  # None: no limit
    flag_threshold: int | None = 3  # None: flags never hold a comment

    def __post_init__(self) -> None:
        # A replayed record (JSON) carries lists: word lists are tuples, so they hash
        # (the compiled patterns are cached by list).
        object.__setattr__(self, "banned_words", tuple(self.banned_words))
        object.__setattr__(self, "suspect_words", tuple(self.suspect_words))


@dataclass(frozen=True, slots=True)
class FlagState:
    """A reader's flag on a comment (a repeat answers the same, appending nothing)."""

    id: str
    thread_id: str
    flag_count: int


@dataclass(frozen=True, slots=True)
class DecidedComment:
    """A comment approved or rejected by a moderator."""

    id: str
    thread_id: str
    status: str
    version: int


@dataclass(frozen=True, slots=True)
class FeaturedComment:
    id: str
    thread_id: str
    featured: bool
    version: int


@dataclass(frozen=True, slots=True)
class ErasedPerson:
    """A person forgotten: how many threads heard of it and how many comments it blanked
    (erasing again answers the same with nothing left to do: zeros)."""

    user_id: str
    threads: int
    comments: int


Result = (
    SavedThread
    | NewComment
    | ChangedComment
    | CommentLikes
    | Subscription
    | Preferences
    | NotificationsMarked
    | BanState
    | PremodState
    | ModerationSettings
    | FlagState
    | DecidedComment
    | FeaturedComment
    | ErasedPerson
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
    PremodState,
    ModerationSettings,
    FlagState,
    DecidedComment,
    FeaturedComment,
    ErasedPerson,
)
