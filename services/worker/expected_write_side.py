"""The write side as the log says it must be: one stream's events replayed into rows.

The handlers keep these tables in the same transaction as each append (shared.handlers,
shared.user_handlers, shared.moderation_handlers); this replays a stream the same way, so
`chorus verify` can compare. A thread's stream gives `thread_state`, `comment_state` and
`comment_likes`; a user's stream gives `user_preferences`, `preference_history`,
`banned_users`, `ban_history`, `premod_users`, `notification_reads` and
`notification_read_marks`; the site's moderation stream gives `moderation_settings`; every
stream gives its `streams` row and its `moderation_log` rows, and the threads' give
`comment_flags` and `trusted_authors`. The moderation rules are `expected_moderation`'s.
Only one stream is held in memory at a time; `trusted_authors` spans threads, so the
caller merges its rows (`merge_trusted`).
"""

from dataclasses import dataclass, field
from typing import Any

import pydantic

from services.worker.expected_moderation import (
    COMMENT_DECISIONS,
    CommentDecision,
    decide_comment,
    is_decision,
    log_row,
    settings_row,
)
from shared import events as ev
from shared.store import StoredEvent
from shared.streams import SITE_MODERATION_STREAM, USER_STREAM_PREFIX, is_thread_stream

Row = dict[str, Any]


@dataclass
class StreamRows:
    """What one stream's events say the write-side tables hold for it, by table name."""

    stream_id: str
    version: int = 0
    tables: dict[str, list[Row]] = field(default_factory=dict)
    unreadable: int = 0  # events that do not validate: no handler could have appended them

    def rows(self) -> dict[str, list[Row]]:
        return {"streams": [{"stream_id": self.stream_id, "version": self.version}], **self.tables}


class ThreadReplay:
    """Replays a thread's stream as the post, edit, delete, like and thread handlers write."""

    def __init__(self, thread_id: str) -> None:
        self.result = StreamRows(thread_id)
        self.thread: Row | None = None
        self.comments: dict[str, Row] = {}
        self.likes: set[tuple[str, str]] = set()
        self.flags: list[Row] = []
        self.trusted: dict[str, Row] = {}
        self.log: list[Row] = []

    def apply(self, stored: StoredEvent) -> None:
        self.result.version = stored.version
        event = domain(stored, self.result)
        if event is not None and is_decision(event):
            self.log.append(log_row(stored))
        if isinstance(event, ev.ThreadRegistered):
            self.thread = {
                "thread_id": stored.stream_id,
                "title": event.title,
                "url": event.url,
                "locked": False,
                "moderation": None,
            }
        elif isinstance(event, ev.ThreadUpdated) and self.thread is not None:
            self.thread["title"], self.thread["url"] = event.title, event.url
        elif isinstance(event, ev.ThreadLocked | ev.ThreadUnlocked) and self.thread is not None:
            self.thread["locked"] = isinstance(event, ev.ThreadLocked)
        elif isinstance(event, ev.ThreadModerationChanged) and self.thread is not None:
            self.thread["moderation"] = event.mode
        elif isinstance(event, ev.CommentPosted):
            parent = self.comments.get(event.parent_id) if event.parent_id else None
            self.comments[event.comment_id] = {
                "comment_id": event.comment_id,
                "thread_id": stored.stream_id,
                "author_id": event.author.id,
                "parent_id": event.parent_id,
                "deleted": False,
                # What the import counted without saying who, and then each like.
                "like_count": event.imported_likes,
                "depth": parent["depth"] + 1 if parent else 0,
                "status": event.status,
                "flag_count": 0,
                "featured": False,
            }
        elif isinstance(event, ev.CommentDeleted) and event.comment_id in self.comments:
            self.comments[event.comment_id]["deleted"] = True
        elif isinstance(event, ev.PersonErased):  # their comments are deleted placeholders
            for comment_id in event.comment_ids:
                if comment_id in self.comments:
                    self.comments[comment_id]["deleted"] = True
        elif isinstance(event, ev.CommentLiked | ev.CommentUnliked):
            self._like(event.comment_id, event.user_id, isinstance(event, ev.CommentLiked))
        elif isinstance(event, COMMENT_DECISIONS) and event.comment_id in self.comments:
            self._decide(stored, event)

    def _decide(self, stored: StoredEvent, event: CommentDecision) -> None:
        comment = self.comments[event.comment_id]
        decide_comment(comment, event)
        if isinstance(event, ev.CommentFlagged):
            self.flags.append(
                {
                    "comment_id": event.comment_id,
                    "user_id": event.user_id,
                    "reason": event.reason,
                    "position": stored.position,
                }
            )
        elif isinstance(event, ev.CommentApproved):
            author = comment["author_id"]
            self.trusted.setdefault(author, {"user_id": author, "position": stored.position})

    def _like(self, comment_id: str, user_id: str, liked: bool) -> None:
        if comment_id not in self.comments:
            return
        self.comments[comment_id]["like_count"] += 1 if liked else -1
        if liked:
            self.likes.add((comment_id, user_id))
        else:
            self.likes.discard((comment_id, user_id))

    def finish(self) -> StreamRows:
        self.result.tables = {
            "thread_state": [self.thread] if self.thread else [],
            "comment_state": list(self.comments.values()),
            "comment_likes": [{"comment_id": c, "user_id": u} for c, u in sorted(self.likes)],
            "comment_flags": self.flags,
            "trusted_authors": list(self.trusted.values()),
            "moderation_log": self.log,
        }
        return self.result


class UserReplay:
    """Replays a user's stream as the preference, read-mark and ban handlers write."""

    def __init__(self, stream_id: str) -> None:
        self.result = StreamRows(stream_id)
        self.user_id = stream_id.removeprefix(USER_STREAM_PREFIX)
        self.preferences: Row | None = None
        self.preference_history: list[Row] = []
        self.ban: Row | None = None
        self.ban_history: list[Row] = []
        self.reads: dict[str, Row] = {}
        self.mark: Row | None = None
        self.premod: Row | None = None
        self.log: list[Row] = []

    def apply(self, stored: StoredEvent) -> None:
        self.result.version = stored.version
        event = domain(stored, self.result)
        user = self.user_id
        if event is not None and is_decision(event):
            self.log.append(log_row(stored))
        if isinstance(event, ev.PreferencesChanged):
            values = {"notify_on": event.notify_on, "email_frequency": event.email_frequency}
            self.preferences = {"user_id": user, **values}
            self.preference_history.append({"user_id": user, "position": stored.position, **values})
        elif isinstance(event, ev.UserBanned | ev.UserUnbanned):
            until = event.until if isinstance(event, ev.UserBanned) else None
            banned = isinstance(event, ev.UserBanned)
            self.ban_history.append(
                {"user_id": user, "position": stored.position, "banned": banned, "until": until}
            )
            self.ban = (
                {
                    "user_id": user,
                    "banned_at": stored.recorded_at,
                    "position": stored.position,
                    "until": until,
                }
                if banned
                else None
            )
        elif isinstance(event, ev.UserPremodChanged):
            self.premod = {"user_id": user, "position": stored.position} if event.on else None
        elif isinstance(event, ev.PersonErased):  # their choices and read marks are deleted
            self.preferences, self.preference_history = None, []
            self.reads, self.mark = {}, None
        elif isinstance(event, ev.NotificationsRead):
            for comment_id in event.comment_ids:  # the first read is the one kept
                self.reads.setdefault(
                    comment_id,
                    {"user_id": user, "comment_id": comment_id, "read_at": stored.recorded_at},
                )
            up_to = event.up_to_position
            if up_to is not None and (self.mark is None or self.mark["up_to_position"] < up_to):
                self.mark = {
                    "user_id": user,
                    "up_to_position": up_to,
                    "read_at": stored.recorded_at,
                }

    def finish(self) -> StreamRows:
        self.result.tables = {
            "user_preferences": [self.preferences] if self.preferences else [],
            "preference_history": self.preference_history,
            "banned_users": [self.ban] if self.ban else [],
            "ban_history": self.ban_history,
            "notification_reads": list(self.reads.values()),
            "notification_read_marks": [self.mark] if self.mark else [],
            "premod_users": [self.premod] if self.premod else [],
            "moderation_log": self.log,
        }
        return self.result


class SiteReplay:
    """Replays the site's moderation stream as the settings handler writes."""

    def __init__(self, stream_id: str) -> None:
        self.result = StreamRows(stream_id)
        self.settings: Row | None = None
        self.log: list[Row] = []

    def apply(self, stored: StoredEvent) -> None:
        self.result.version = stored.version
        event = domain(stored, self.result)
        if event is not None and is_decision(event):
            self.log.append(log_row(stored))
        if isinstance(event, ev.ModerationSettingsChanged):
            self.settings = settings_row(event)

    def finish(self) -> StreamRows:
        self.result.tables = {
            "moderation_settings": [self.settings] if self.settings else [],
            "moderation_log": self.log,
        }
        return self.result


Replay = ThreadReplay | UserReplay | SiteReplay


def replay_for(stream_id: str) -> Replay | None:
    """The replay of a stream's kind; None for a stream no handler writes to."""
    if is_thread_stream(stream_id):
        return ThreadReplay(stream_id)
    if stream_id.startswith(USER_STREAM_PREFIX):
        return UserReplay(stream_id)
    if stream_id == SITE_MODERATION_STREAM:
        return SiteReplay(stream_id)
    return None


def domain(stored: StoredEvent, result: StreamRows) -> ev.DomainEvent | None:
    try:
        return stored.to_domain()
    except (KeyError, pydantic.ValidationError):
        result.unreadable += 1
        return None
