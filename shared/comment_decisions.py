"""Decisions about one comment: readers' flags, and moderators' approve, reject, feature.

Each runs like every handler (shared.handlers): one statement reads the comment's state
with its thread's stream version, the handler decides, appends with that version, then
keeps `comment_state` (and `comment_flags`, `trusted_authors`) in the same transaction.
Two moderators deciding the same comment at once cannot both win: in one batch the second
reads what the first wrote; across processes the append's optimistic check fails the
second, the bus runs it again, and it reads the decided state and is refused with 409
`already_decided`. Every moderator's decision is indexed for the audit log.
"""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import events as ev
from shared.commands import (
    ApproveComment,
    FeatureComment,
    FlagComment,
    RejectComment,
    RequestContext,
)
from shared.db import insert_ignoring_conflicts
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.moderation_handlers import check_reason, is_banned
from shared.moderation_log import record_decisions
from shared.moderation_settings import current_settings
from shared.moderation_tables import comment_flags, trusted_authors
from shared.results import DecidedComment, FeaturedComment, FlagState
from shared.store import STREAMS, StoredEvent
from shared.user_handlers import Append
from shared.write_index import CommentState

COMMENTS = CommentState.__table__  # type: ignore[attr-defined]
FLAG_REASONS = ("spam", "abuse", "off_topic", "other")
MAX_NOTE_CHARS = 1000

_COMMENT = (
    sa.select(
        COMMENTS,
        STREAMS.c.version,
        sa.exists()
        .where(
            comment_flags.c.comment_id == sa.bindparam("comment_id"),
            comment_flags.c.user_id == sa.bindparam("flagged_by"),
        )
        .label("flagged"),
    )
    .join(STREAMS, STREAMS.c.stream_id == COMMENTS.c.thread_id)
    .where(COMMENTS.c.comment_id == sa.bindparam("comment_id"))
)


def _comment(conn: Connection, comment_id: str, flagged_by: str | None = None) -> Any:
    """The comment's state, its thread's version and (with `flagged_by`) whether that
    reader flagged it, from one snapshot; `NotFound` if there is no such comment."""
    row = conn.execute(_COMMENT, {"comment_id": comment_id, "flagged_by": flagged_by}).first()
    if row is None:
        raise NotFound(f"comment {comment_id!r} does not exist")
    return row


def _not_deleted(comment: Any) -> None:
    if comment.deleted:
        raise Conflict("the comment was deleted", code="comment_deleted")


def _update(conn: Connection, comment_id: str, **values: Any) -> None:
    conn.execute(COMMENTS.update().where(COMMENTS.c.comment_id == comment_id).values(**values))


class CommentDecisions:
    def __init__(self, append: Append) -> None:
        self._append = append

    def flag(self, conn: Connection, cmd: FlagComment, ctx: RequestContext) -> FlagState:
        """A reader's report. The flag that brings a published comment's open flags to
        the site's threshold holds it, in the same append."""
        if cmd.reason not in FLAG_REASONS:
            raise InvalidInput(f"reason is one of {FLAG_REASONS}", code="invalid_reason")
        note = cmd.note.strip()
        if len(note) > MAX_NOTE_CHARS or "\x00" in note:
            raise InvalidInput(
                f"the note is at most {MAX_NOTE_CHARS} characters, without NUL",
                code="invalid_note",
            )
        if is_banned(conn, ctx.actor.id):
            raise Forbidden("you are banned from taking part in the comments", code="banned")
        comment = _comment(conn, cmd.comment_id, flagged_by=ctx.actor.id)
        if comment.author_id == ctx.actor.id:
            raise Forbidden("you cannot flag your own comment", code="own_comment")
        _not_deleted(comment)
        if comment.status == "rejected":
            raise Conflict("the comment was already rejected", code="comment_rejected")
        if comment.flagged:  # one flag per reader: a repeat changes nothing
            return FlagState(cmd.comment_id, comment.thread_id, comment.flag_count)

        flag_count = comment.flag_count + 1
        changes: list[ev.DomainEvent] = [
            ev.CommentFlagged(
                comment_id=cmd.comment_id,
                user_id=ctx.actor.id,
                reason=cmd.reason,  # checked above
                note=note,
            )
        ]
        threshold = current_settings(conn).flag_threshold
        status = comment.status
        if status == "published" and threshold is not None and flag_count >= threshold:
            changes.append(ev.CommentHeld(comment_id=cmd.comment_id, held_for=["flags"]))
            status = "pending"
        stored = self._append(conn, ctx, comment.thread_id, comment.version, *changes)
        conn.execute(
            comment_flags.insert().values(
                comment_id=cmd.comment_id,
                user_id=ctx.actor.id,
                reason=cmd.reason,
                position=stored[0].position,
            )
        )
        _update(conn, cmd.comment_id, flag_count=flag_count, status=status)
        return FlagState(cmd.comment_id, comment.thread_id, flag_count)

    def approve(self, conn: Connection, cmd: ApproveComment, ctx: RequestContext) -> DecidedComment:
        """Publish a held or rejected comment, or clear a published one's flags; its
        author is trusted from then on (mode `first_comments` no longer holds them)."""
        _check_moderator(ctx)
        comment = _comment(conn, cmd.comment_id)
        _not_deleted(comment)
        if comment.status == "published" and comment.flag_count == 0:
            raise Conflict("the comment is already published", code="already_decided")
        approved = ev.CommentApproved(comment_id=cmd.comment_id, by=ctx.actor.id)
        stored = self._decide(conn, ctx, comment, approved)
        _update(conn, cmd.comment_id, status="published", flag_count=0)
        insert_ignoring_conflicts(
            conn,
            trusted_authors,
            {"user_id": comment.author_id, "position": stored.position},
            ["user_id"],
        )
        return DecidedComment(cmd.comment_id, comment.thread_id, "published", stored.version)

    def reject(self, conn: Connection, cmd: RejectComment, ctx: RequestContext) -> DecidedComment:
        _check_moderator(ctx)
        reason = check_reason(cmd.reason)
        comment = _comment(conn, cmd.comment_id)
        _not_deleted(comment)
        if comment.status == "rejected":
            raise Conflict("the comment is already rejected", code="already_decided")
        rejected = ev.CommentRejected(comment_id=cmd.comment_id, by=ctx.actor.id, reason=reason)
        stored = self._decide(conn, ctx, comment, rejected)
        _update(conn, cmd.comment_id, status="rejected")
        return DecidedComment(cmd.comment_id, comment.thread_id, "rejected", stored.version)

    def feature(
        self, conn: Connection, cmd: FeatureComment, ctx: RequestContext
    ) -> FeaturedComment:
        _check_moderator(ctx)
        comment = _comment(conn, cmd.comment_id)
        _not_deleted(comment)
        version = comment.version
        if comment.featured != cmd.featured:  # featuring twice is featuring once
            event: ev.DomainEvent = (
                ev.CommentFeatured(comment_id=cmd.comment_id, by=ctx.actor.id)
                if cmd.featured
                else ev.CommentUnfeatured(comment_id=cmd.comment_id, by=ctx.actor.id)
            )
            version = self._decide(conn, ctx, comment, event).version
            _update(conn, cmd.comment_id, featured=cmd.featured)
        return FeaturedComment(cmd.comment_id, comment.thread_id, cmd.featured, version)

    def _decide(
        self, conn: Connection, ctx: RequestContext, comment: Any, event: ev.DomainEvent
    ) -> StoredEvent:
        stored = self._append(conn, ctx, comment.thread_id, comment.version, event)
        record_decisions(conn, stored)
        return stored[-1]


def _check_moderator(ctx: RequestContext) -> None:
    if not ctx.actor.is_moderator:
        raise Forbidden("only a moderator or an admin may decide about a comment")
