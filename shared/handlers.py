"""Command handlers: check a command against the write-side index, append its events.

Each handler runs inside one write transaction (see `shared.command_bus`). It reads
what it needs, decides, appends with the version it read (optimistic check), and
only then updates the index: every write after the append, so that on PostgreSQL
the holder of the append lock never waits for another transaction's row.
"""

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import events as ev
from shared.commands import (
    FOLLOW_SITE,
    ApproveComment,
    BanUser,
    ChangeModerationSettings,
    ChangePreferences,
    ChangeSubscription,
    Command,
    DeleteComment,
    EditComment,
    EraseUser,
    FeatureComment,
    FlagComment,
    LikeComment,
    LockThread,
    MarkNotificationsRead,
    PostComment,
    RegisterThread,
    RejectComment,
    RequestContext,
    SetPremod,
    UnbanUser,
    UnlikeComment,
)
from shared.comment_decisions import CommentDecisions
from shared.erasure_handlers import ErasureHandlers
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.ids import new_id
from shared.moderation_handlers import ModerationHandlers, is_banned
from shared.moderation_log import record_decisions
from shared.moderation_rules import Verdict, judge_edit, judge_post
from shared.moderation_settings import MODES, SettingsHandlers, current_settings
from shared.posting_facts import posting_facts
from shared.results import (
    ChangedComment,
    CommentLikes,
    NewComment,
    Result,
    SavedThread,
    Subscription,
)
from shared.store import STREAMS, EventStore, NewEvent, StoredEvent, StreamAppend
from shared.user_handlers import UserHandlers, check_subscription
from shared.validation import check_thread_id, clean_body, clean_title, clean_url
from shared.write_index import CommentLike, CommentState, ThreadState

THREADS = ThreadState.__table__  # type: ignore[attr-defined]
COMMENTS = CommentState.__table__  # type: ignore[attr-defined]
LIKES = CommentLike.__table__  # type: ignore[attr-defined]

# The deepest a chain of replies may go: comments sit at depths 0 (top level) to
# MAX_DEPTH - 1. A reply costs the fold one row update per ancestor and its stored path
# grows with its depth, so depth bounds the cost of each reply (docs/decisions.md, 18).
MAX_DEPTH = 50


class Handlers:
    def __init__(self, store: EventStore, *, max_body_chars: int = 10_000) -> None:
        self.store = store
        self.max_body_chars = max_body_chars
        self.users = UserHandlers(self._append)
        self.moderation = ModerationHandlers(self._append)
        self.settings = SettingsHandlers(self._append)
        self.decisions = CommentDecisions(self._append)
        self.erasure = ErasureHandlers(self._append_many)
        self._by_type: dict[type[Any], Callable[[Connection, Any, RequestContext], Result]] = {
            RegisterThread: self.register_thread,
            LockThread: self.lock_thread,
            PostComment: self.post_comment,
            EditComment: self.edit_comment,
            DeleteComment: self.delete_comment,
            LikeComment: self.like_comment,
            UnlikeComment: self.unlike_comment,
            ChangeSubscription: self.change_subscription,
            ChangePreferences: self.users.change_preferences,
            MarkNotificationsRead: self.users.mark_read,
            BanUser: self.moderation.ban,
            UnbanUser: self.moderation.unban,
            SetPremod: self.moderation.set_premod,
            ChangeModerationSettings: self.settings.change,
            FlagComment: self.decisions.flag,
            ApproveComment: self.decisions.approve,
            RejectComment: self.decisions.reject,
            FeatureComment: self.decisions.feature,
            EraseUser: self.erasure.erase,
        }

    def handle(self, conn: Connection, command: Command, ctx: RequestContext) -> Result:
        return self._by_type[type(command)](conn, command, ctx)

    def change_subscription(
        self, conn: Connection, cmd: ChangeSubscription, ctx: RequestContext
    ) -> Subscription:
        check_subscription(cmd)
        thread = _thread(conn, cmd.thread_id)
        if thread is None:
            # Unlike posting, watching must not create threads: that would let anyone
            # mint thread pages by subscribing.
            raise NotFound(f"thread {cmd.thread_id!r} does not exist")
        changed = ev.ThreadSubscriptionChanged(user_id=ctx.actor.id, level=cmd.level)
        stored = self._append(conn, ctx, cmd.thread_id, thread.version, changed)
        return Subscription(thread_id=cmd.thread_id, level=cmd.level, version=stored[-1].version)

    def _append(
        self,
        conn: Connection,
        ctx: RequestContext,
        thread_id: str,
        expected_version: int,
        *events: ev.DomainEvent,
    ) -> list[StoredEvent]:
        new = [NewEvent.of(event, _metadata(ctx)) for event in events]
        return self.store.append(thread_id, new, expected_version, conn=conn)

    def _append_many(
        self,
        conn: Connection,
        ctx: RequestContext,
        appends: Sequence[tuple[str, int, Sequence[ev.DomainEvent]]],
    ) -> list[StoredEvent]:
        """Many streams' appends in a few statements: (stream, expected version, events)."""
        metadata = _metadata(ctx)
        return self.store.append_many(
            [
                StreamAppend(stream, [NewEvent.of(event, metadata) for event in events], version)
                for stream, version, events in appends
            ],
            conn=conn,
        )

    def register_thread(
        self, conn: Connection, cmd: RegisterThread, ctx: RequestContext
    ) -> SavedThread:
        if not ctx.actor.is_admin:
            raise Forbidden("only an admin may register or update a thread")
        return self._save_thread(conn, cmd, ctx)

    def lock_thread(self, conn: Connection, cmd: LockThread, ctx: RequestContext) -> SavedThread:
        if not ctx.actor.is_moderator:
            raise Forbidden("only a moderator or an admin may lock or unlock a thread")
        return self._save_thread(conn, RegisterThread(cmd.thread_id, locked=cmd.locked), ctx)

    def _save_thread(
        self, conn: Connection, cmd: RegisterThread, ctx: RequestContext
    ) -> SavedThread:
        check_thread_id(cmd.thread_id)
        cmd_title, cmd_url = clean_title(cmd.title), clean_url(cmd.url)
        if cmd.moderation is not None and cmd.moderation not in (*MODES, FOLLOW_SITE):
            raise InvalidInput(
                f"moderation is one of {MODES}, or null for the site's", code="invalid_moderation"
            )
        current = _thread(conn, cmd.thread_id)
        version = current.version if current else 0
        title = cmd_title if cmd_title is not None else (current.title if current else None)
        url = cmd_url if cmd_url is not None else (current.url if current else None)
        locked = cmd.locked if cmd.locked is not None else bool(current and current.locked)
        was_moderation = current.moderation if current else None
        moderation = (
            was_moderation
            if cmd.moderation is None
            else None
            if cmd.moderation == FOLLOW_SITE
            else cmd.moderation
        )

        changes: list[ev.DomainEvent] = []
        decisions: list[ev.DomainEvent] = []  # what moderators decided: the audit log's
        if current is None:
            changes.append(ev.ThreadRegistered(title=title, url=url))
        elif (title, url) != (current.title, current.url):
            changes.append(ev.ThreadUpdated(title=title, url=url))
        if locked != bool(current and current.locked):
            decisions.append(ev.ThreadLocked() if locked else ev.ThreadUnlocked())
        if moderation != was_moderation:
            decisions.append(ev.ThreadModerationChanged(mode=moderation))
        if changes or decisions:
            stored = self._append(conn, ctx, cmd.thread_id, version, *changes, *decisions)
            record_decisions(conn, stored[len(changes) :])
            version = stored[-1].version
            values = {"title": title, "url": url, "locked": locked, "moderation": moderation}
            if current is None:
                conn.execute(THREADS.insert().values(thread_id=cmd.thread_id, **values))
            else:
                conn.execute(
                    THREADS.update().where(THREADS.c.thread_id == cmd.thread_id).values(**values)
                )
        return SavedThread(
            id=cmd.thread_id,
            title=title,
            url=url,
            locked=locked,
            version=version,
            moderation=moderation,
        )

    def post_comment(self, conn: Connection, cmd: PostComment, ctx: RequestContext) -> NewComment:
        """Post a comment, published or held for a moderator as the site's rules decide
        (shared.moderation_rules); a banned word refuses it."""
        check_thread_id(cmd.thread_id)
        facts = posting_facts(
            conn,
            ctx.actor.id,
            staff=ctx.actor.is_staff,
            thread_id=cmd.thread_id,
            parent_id=cmd.parent_id,
        )
        if facts.banned:
            raise _banned()
        body = clean_body(cmd.body, self.max_body_chars)
        thread = facts.thread
        version = thread.version if thread else 0
        if thread is not None and thread.locked:
            raise Conflict(
                "this thread is locked: it accepts no new comments", code="thread_locked"
            )
        depth = 0
        if cmd.parent_id is not None:
            parent = facts.parent
            if parent is None or parent.thread_id != cmd.thread_id:
                raise InvalidInput(
                    f"parent comment {cmd.parent_id!r} does not exist in this thread",
                    code="parent_not_found",
                )
            if parent.deleted:
                raise Conflict("the parent comment was deleted", code="parent_deleted")
            if parent.status != "published":
                raise Conflict("the parent comment is not published", code="parent_not_published")
            depth = parent.depth + 1
        if depth >= MAX_DEPTH:
            raise InvalidInput(
                f"replies nest at most {MAX_DEPTH} levels deep; reply to an earlier comment",
                code="too_deep",
            )

        verdict = judge_post(
            current_settings(conn), thread.moderation if thread else None, facts.author, body
        )
        _refuse_banned_word(verdict)

        comment_id = new_id()
        posted = ev.CommentPosted(
            comment_id=comment_id,
            parent_id=cmd.parent_id,
            author=ev.Author(id=ctx.actor.id, name=ctx.actor.name),
            body=body,
            status=verdict.status,
            held_for=list(verdict.held_for),
            badges=["staff"] if facts.author.staff else [],
        )
        new_events: list[ev.DomainEvent] = [posted] if thread else [ev.ThreadRegistered(), posted]
        stored = self._append(conn, ctx, cmd.thread_id, version, *new_events)
        if thread is None:
            conn.execute(_INSERT_THREAD, {"thread_id": cmd.thread_id, "locked": False})
        conn.execute(
            _INSERT_COMMENT,
            {
                "comment_id": comment_id,
                "thread_id": cmd.thread_id,
                "author_id": ctx.actor.id,
                "parent_id": cmd.parent_id,
                "depth": depth,
                "status": verdict.status,
            },
        )
        return NewComment(
            id=comment_id,
            thread_id=cmd.thread_id,
            parent_id=cmd.parent_id,
            version=stored[-1].version,
            position=stored[-1].position,
            status=verdict.status,
            held_for=verdict.held_for,
        )

    def edit_comment(
        self, conn: Connection, cmd: EditComment, ctx: RequestContext
    ) -> ChangedComment:
        _refuse_if_banned(conn, ctx)
        body = clean_body(cmd.body, self.max_body_chars)
        comment = _existing_comment(conn, cmd.comment_id)
        if comment.author_id != ctx.actor.id:
            raise Forbidden("only the author may edit a comment")
        if comment.deleted:
            raise Conflict("a deleted comment cannot be edited", code="comment_deleted")
        if comment.locked:
            raise Conflict(
                "this thread is locked: its comments cannot be edited", code="thread_locked"
            )
        verdict = judge_edit(current_settings(conn), ctx.actor.is_staff, body)
        _refuse_banned_word(verdict)
        changes: list[ev.DomainEvent] = [ev.CommentEdited(comment_id=cmd.comment_id, body=body)]
        held = comment.status == "published" and bool(verdict.held_for)
        if held:  # the new text would have been held: it leaves the page until decided
            changes.append(
                ev.CommentHeld(comment_id=cmd.comment_id, held_for=list(verdict.held_for))
            )
        stored = self._append(conn, ctx, comment.thread_id, comment.version, *changes)
        if held:
            conn.execute(
                COMMENTS.update()
                .where(COMMENTS.c.comment_id == cmd.comment_id)
                .values(status="pending")
            )
        return ChangedComment(cmd.comment_id, comment.thread_id, stored[-1].version)

    def delete_comment(
        self, conn: Connection, cmd: DeleteComment, ctx: RequestContext
    ) -> ChangedComment:
        comment = _existing_comment(conn, cmd.comment_id)
        by_author = comment.author_id == ctx.actor.id
        if not (by_author or ctx.actor.is_moderator):
            raise Forbidden("only the author, a moderator or an admin may delete a comment")
        if comment.deleted:  # deleting twice is the same as deleting once
            return ChangedComment(cmd.comment_id, comment.thread_id, comment.version)
        deleted = ev.CommentDeleted(
            comment_id=cmd.comment_id, deleted_by=ctx.actor.id, by_moderator=not by_author
        )
        stored = self._append(conn, ctx, comment.thread_id, comment.version, deleted)
        if not by_author:
            record_decisions(conn, stored)
        conn.execute(
            COMMENTS.update().where(COMMENTS.c.comment_id == cmd.comment_id).values(deleted=True)
        )
        return ChangedComment(cmd.comment_id, comment.thread_id, stored[-1].version)

    def like_comment(self, conn: Connection, cmd: LikeComment, ctx: RequestContext) -> CommentLikes:
        return self._set_like(conn, cmd.comment_id, ctx, liked=True)

    def unlike_comment(
        self, conn: Connection, cmd: UnlikeComment, ctx: RequestContext
    ) -> CommentLikes:
        return self._set_like(conn, cmd.comment_id, ctx, liked=False)

    def _set_like(
        self, conn: Connection, comment_id: str, ctx: RequestContext, *, liked: bool
    ) -> CommentLikes:
        if liked:
            _refuse_if_banned(conn, ctx)
        comment = _existing_comment(conn, comment_id, liked_by=ctx.actor.id)
        if liked and comment.deleted:
            raise Conflict("a deleted comment cannot be liked", code="comment_deleted")
        like_row = LIKES.c.comment_id == comment_id, LIKES.c.user_id == ctx.actor.id
        if comment.liked == liked:  # liking twice counts once
            return CommentLikes(comment_id, comment.thread_id, comment.like_count, comment.version)

        event: ev.DomainEvent
        if liked:
            event = ev.CommentLiked(comment_id=comment_id, user_id=ctx.actor.id)
        else:
            event = ev.CommentUnliked(comment_id=comment_id, user_id=ctx.actor.id)
        stored = self._append(conn, ctx, comment.thread_id, comment.version, event)
        if liked:
            conn.execute(LIKES.insert().values(comment_id=comment_id, user_id=ctx.actor.id))
        else:
            conn.execute(LIKES.delete().where(*like_row))
        like_count = comment.like_count + (1 if liked else -1)
        conn.execute(
            COMMENTS.update()
            .where(COMMENTS.c.comment_id == comment_id)
            .values(like_count=like_count)
        )
        return CommentLikes(comment_id, comment.thread_id, like_count, stored[-1].version)


def _metadata(ctx: RequestContext) -> dict[str, Any]:
    # Only the actor's id: names live in `people`, which erasure can delete (decision 33).
    return {
        "actor": {"id": ctx.actor.id},
        "request_id": ctx.request_id,
        "idempotency_key": ctx.idempotency_key,
    }


def _refuse_if_banned(conn: Connection, ctx: RequestContext) -> None:
    """A banned user may not post, edit or like (they may still delete and unlike)."""
    if is_banned(conn, ctx.actor.id):
        raise _banned()


def _banned() -> Forbidden:
    return Forbidden("you are banned from taking part in the comments", code="banned")


def _refuse_banned_word(verdict: Verdict) -> None:
    if verdict.banned_word is not None:
        raise InvalidInput(
            f"the comment contains a word this site does not accept: {verdict.banned_word!r}",
            code="banned_word",
        )


# Each read below is one statement, so the state it returns is consistent with the
# stream version it returns; the append's optimistic check then covers both.


# Built once: constructing a statement costs more than executing a cached one (bench/README).
_THREAD = (
    sa.select(THREADS, STREAMS.c.version)
    .join(STREAMS, STREAMS.c.stream_id == THREADS.c.thread_id)
    .where(THREADS.c.thread_id == sa.bindparam("thread_id"))
)
_COMMENT = (
    sa.select(
        COMMENTS,
        THREADS.c.locked,
        STREAMS.c.version,
        sa.exists()
        .where(
            LIKES.c.comment_id == sa.bindparam("comment_id"),
            LIKES.c.user_id == sa.bindparam("liked_by"),
        )
        .label("liked"),
    )
    .join(THREADS, THREADS.c.thread_id == COMMENTS.c.thread_id)
    .join(STREAMS, STREAMS.c.stream_id == COMMENTS.c.thread_id)
    .where(COMMENTS.c.comment_id == sa.bindparam("comment_id"))
)
_INSERT_THREAD = THREADS.insert()
_INSERT_COMMENT = COMMENTS.insert()


def _thread(conn: Connection, thread_id: str) -> Any:
    """The thread's state and stream version, or None if it has never existed."""
    return conn.execute(_THREAD, {"thread_id": thread_id}).first()


def _comment(conn: Connection, comment_id: str, liked_by: str | None = None) -> Any:
    """The comment's state with its thread's `locked` flag and stream version, and
    (with `liked_by`) whether that user likes it, all from one snapshot."""
    return conn.execute(_COMMENT, {"comment_id": comment_id, "liked_by": liked_by}).first()


def _existing_comment(conn: Connection, comment_id: str, liked_by: str | None = None) -> Any:
    comment = _comment(conn, comment_id, liked_by)
    if comment is None:
        raise NotFound(f"comment {comment_id!r} does not exist")
    return comment
