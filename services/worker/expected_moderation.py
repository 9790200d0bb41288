"""The moderation state as the log says it must be: the rules `chorus verify` replays.

Each rule derives a write-side table from the events alone, as the handlers keep it
(shared.comment_decisions, shared.moderation_handlers, shared.moderation_settings):

- `comment_state.status`: the CommentPosted's `status`; CommentHeld makes it `pending`,
  CommentApproved `published`, CommentRejected `rejected`.
- `comment_state.flag_count`: the CommentFlagged since the last CommentApproved (an
  approval clears the open flags; a rejection keeps them). `featured`: the last of
  CommentFeatured / CommentUnfeatured.
- `comment_flags`: one row per CommentFlagged (its reader, reason, position), kept
  through approvals: a reader flags a comment once, ever.
- `trusted_authors`: the author of every approved comment, at the position of the first
  approval of one of their comments, over all threads (`merge_trusted`).
- `thread_state.moderation`: the last ThreadModerationChanged's mode (None: the site's).
- `premod_users`: the last UserPremodChanged, when `on`, at its position.
- `banned_users.until` and `ban_history.until`: the UserBanned's `until` (None: for good).
- `moderation_settings`: the last ModerationSettingsChanged of the site's stream (id 1;
  no row before the first change: the defaults).
- `moderation_log`: the position of every decision event (`DECISIONS`, and a
  CommentDeleted by a moderator) with its thread, None for a user's or the site's stream.

The replays that use these rules are in `expected_write_side`.
"""

from typing import Any

from shared import events as ev
from shared.store import StoredEvent
from shared.streams import is_thread_stream

Row = dict[str, Any]
SETTINGS_ROW = 1

DECISIONS = (
    ev.CommentApproved,
    ev.CommentRejected,
    ev.CommentFeatured,
    ev.CommentUnfeatured,
    ev.ThreadLocked,
    ev.ThreadUnlocked,
    ev.ThreadModerationChanged,
    ev.UserBanned,
    ev.UserUnbanned,
    ev.UserPremodChanged,
    ev.ModerationSettingsChanged,
)


def is_decision(event: ev.DomainEvent) -> bool:
    """A moderator's decision: what the audit log lists."""
    if isinstance(event, ev.CommentDeleted):
        return event.by_moderator
    return isinstance(event, DECISIONS)


def log_row(stored: StoredEvent) -> Row:
    thread = stored.stream_id if is_thread_stream(stored.stream_id) else None
    return {"position": stored.position, "thread_id": thread}


CommentDecision = (
    ev.CommentFlagged
    | ev.CommentHeld
    | ev.CommentApproved
    | ev.CommentRejected
    | ev.CommentFeatured
    | ev.CommentUnfeatured
)
COMMENT_DECISIONS = (
    ev.CommentFlagged,
    ev.CommentHeld,
    ev.CommentApproved,
    ev.CommentRejected,
    ev.CommentFeatured,
    ev.CommentUnfeatured,
)


def decide_comment(comment: Row, event: CommentDecision) -> None:
    """Apply a moderation event to a `comment_state` row."""
    if isinstance(event, ev.CommentFlagged):
        comment["flag_count"] += 1
    elif isinstance(event, ev.CommentHeld):
        comment["status"] = "pending"
    elif isinstance(event, ev.CommentApproved):
        comment["status"], comment["flag_count"] = "published", 0
    elif isinstance(event, ev.CommentRejected):
        comment["status"] = "rejected"
    elif isinstance(event, ev.CommentFeatured | ev.CommentUnfeatured):
        comment["featured"] = isinstance(event, ev.CommentFeatured)


def settings_row(event: ev.ModerationSettingsChanged) -> Row:
    return {
        "id": SETTINGS_ROW,
        "mode": event.mode,
        "banned_words": event.banned_words,
        "suspect_words": event.suspect_words,
        "max_links": event.max_links,
        "flag_threshold": event.flag_threshold,
    }
