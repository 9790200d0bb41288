"""`chorus verify` covers moderation: the write side's moderation state is replayed from
the log by the rules of `expected_moderation`, and the projections' moderation columns are
folded and compared.

Every moderation event is appended straight to the log, and the write-side rows are
written as the handlers write them in the same transaction (shared.comment_decisions,
shared.moderation_handlers, shared.moderation_settings); the verifier is what is under
test.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.worker.folding import fold_all, thread_projection
from services.worker.notification_projector import notification_projection
from services.worker.rebuild import rebuild_notifications, rebuild_threads
from services.worker.table_diff import Difference
from services.worker.verify import verify
from shared import events as ev
from shared.command_bus import CommandBus
from shared.commands import Actor, RegisterThread, RequestContext
from shared.db import insert_ignoring_conflicts
from shared.ids import new_id
from shared.moderation_tables import (
    ban_history,
    banned_users,
    comment_flags,
    moderation_log,
    moderation_settings,
    premod_users,
    trusted_authors,
)
from shared.store import EventStore, NewEvent, StoredEvent
from shared.streams import SITE_MODERATION_STREAM, user_stream
from shared.write_index import CommentState, ThreadState

COMMENTS = CommentState.__table__  # type: ignore[attr-defined]
THREADS = ThreadState.__table__  # type: ignore[attr-defined]
THREAD = "t1"


class Moderated:
    """A site whose moderation events are appended with the rows the handlers keep."""

    def __init__(self, engine: Engine, store: EventStore) -> None:
        self.engine, self.store = engine, store
        admin = RequestContext(Actor("editor", "Editor", roles=frozenset({"admin"})))
        CommandBus(engine, store).execute(RegisterThread(THREAD, "A post"), admin)
        self.ids: dict[str, str] = {}

    def append(
        self,
        stream: str,
        event: ev.DomainEvent,
        write: Callable[[Connection, StoredEvent], None] | None = None,
        *,
        decision: bool = False,
        by: str = "mod",
    ) -> StoredEvent:
        """Append one event and keep the write side in the same transaction."""
        metadata = {"actor": {"id": by, "name": by.title()}}
        with self.engine.begin() as conn:
            version = self.store.stream_version(stream, conn=conn)
            stored = self.store.append(stream, [NewEvent.of(event, metadata)], version, conn=conn)
            stored_event = stored[-1]
            if write is not None:
                write(conn, stored_event)
            if decision:
                thread = None if stream.startswith("~") else stream
                conn.execute(
                    moderation_log.insert().values(position=stored_event.position, thread_id=thread)
                )
        return stored_event

    def update(self, comment: str, **values: Any) -> Callable[[Connection, StoredEvent], None]:
        def write(conn: Connection, _: StoredEvent) -> None:
            c = self.ids[comment]
            conn.execute(COMMENTS.update().where(COMMENTS.c.comment_id == c).values(**values))

        return write

    def post(self, name: str, user: str, *, held: bool = False) -> None:
        comment_id = self.ids[name] = new_id()
        status = "pending" if held else "published"
        event = ev.CommentPosted(
            comment_id=comment_id,
            parent_id=None,
            author=ev.Author(id=user, name=user.title()),
            body=f"{name}, by {user}",
            status=status,
            held_for=["first_comment"] if held else [],
        )

        def write(conn: Connection, _: StoredEvent) -> None:
            conn.execute(
                COMMENTS.insert().values(
                    comment_id=comment_id, thread_id=THREAD, author_id=user, status=status
                )
            )

        self.append(THREAD, event, write, by=user)

    def flag(self, name: str, user: str, flag_count: int, *, holds: bool = False) -> None:
        comment_id = self.ids[name]
        event = ev.CommentFlagged(comment_id=comment_id, user_id=user, reason="spam")

        def write(conn: Connection, stored: StoredEvent) -> None:
            conn.execute(
                comment_flags.insert().values(
                    comment_id=comment_id, user_id=user, reason="spam", position=stored.position
                )
            )
            self.update(name, flag_count=flag_count)(conn, stored)

        self.append(THREAD, event, write, by=user)
        if holds:  # in the handler, the same append; the fold cannot tell
            held = ev.CommentHeld(comment_id=comment_id, held_for=["flags"])
            self.append(THREAD, held, self.update(name, status="pending"))

    def approve(self, name: str, author: str) -> None:
        def write(conn: Connection, stored: StoredEvent) -> None:
            self.update(name, status="published", flag_count=0)(conn, stored)
            insert_ignoring_conflicts(
                conn, trusted_authors, {"user_id": author, "position": stored.position}, ["user_id"]
            )

        event = ev.CommentApproved(comment_id=self.ids[name], by="mod")
        self.append(THREAD, event, write, decision=True)

    def reject(self, name: str) -> None:
        event = ev.CommentRejected(comment_id=self.ids[name], by="mod", reason="no")
        self.append(THREAD, event, self.update(name, status="rejected"), decision=True)

    def feature(self, name: str, featured: bool) -> None:
        comment_id = self.ids[name]
        event: ev.DomainEvent = (
            ev.CommentFeatured(comment_id=comment_id, by="mod")
            if featured
            else ev.CommentUnfeatured(comment_id=comment_id, by="mod")
        )
        self.append(THREAD, event, self.update(name, featured=featured), decision=True)

    def delete_as_moderator(self, name: str) -> None:
        event = ev.CommentDeleted(comment_id=self.ids[name], deleted_by="mod", by_moderator=True)
        self.append(THREAD, event, self.update(name, deleted=True), decision=True)

    def thread_mode(self, mode: str | None) -> None:
        def write(conn: Connection, _: StoredEvent) -> None:
            conn.execute(
                THREADS.update().where(THREADS.c.thread_id == THREAD).values(moderation=mode)
            )

        event = ev.ThreadModerationChanged(mode=mode)  # type: ignore[arg-type]
        self.append(THREAD, event, write, decision=True)

    def settings(self, **values: Any) -> None:
        def write(conn: Connection, _: StoredEvent) -> None:
            if not insert_ignoring_conflicts(
                conn, moderation_settings, {"id": 1, **values}, ["id"]
            ):
                conn.execute(moderation_settings.update().values(**values))

        event = ev.ModerationSettingsChanged(**values)
        self.append(SITE_MODERATION_STREAM, event, write, decision=True, by="admin")

    def suspend(self, user: str, until: datetime) -> None:
        def write(conn: Connection, stored: StoredEvent) -> None:
            at, position = stored.recorded_at, stored.position
            conn.execute(
                banned_users.insert().values(
                    user_id=user, banned_at=at, position=position, until=until
                )
            )
            conn.execute(
                ban_history.insert().values(
                    user_id=user, position=position, banned=True, until=until
                )
            )

        event = ev.UserBanned(user_id=user, reason="cool off", by="mod", until=until)
        self.append(user_stream(user), event, write, decision=True)

    def premod(self, user: str, on: bool) -> None:
        def write(conn: Connection, stored: StoredEvent) -> None:
            if on:
                conn.execute(premod_users.insert().values(user_id=user, position=stored.position))
            else:
                conn.execute(premod_users.delete().where(premod_users.c.user_id == user))

        event = ev.UserPremodChanged(user_id=user, on=on, by="mod")
        self.append(user_stream(user), event, write, decision=True)

    def fold(self) -> None:
        projections = [thread_projection(), notification_projection()]
        fold_all(self.engine, self.store, THREAD, projections)


@pytest.fixture
def site(engine: Engine, store: EventStore) -> Moderated:
    """Every moderation event, each as its handler appends it."""
    m = Moderated(engine, store)
    m.settings(
        mode="first_comments",
        banned_words=["slur"],
        suspect_words=["crypto"],
        max_links=2,
        flag_threshold=2,
    )
    m.thread_mode("pre")
    m.post("first", "ann", held=True)
    m.fold()
    m.approve("first", "ann")
    m.post("hot", "bob")
    m.flag("hot", "cat", 1)
    m.flag("hot", "dan", 2, holds=True)
    m.approve("hot", "bob")
    m.flag("hot", "eve", 1)  # flags since the last approval
    m.reject("hot")
    m.post("waiting", "fay", held=True)
    m.post("gone", "gus")
    m.delete_as_moderator("gone")
    m.feature("first", True)
    m.feature("first", False)
    m.feature("first", True)
    m.thread_mode(None)
    m.suspend("troll", datetime.now(UTC) + timedelta(days=7))
    m.premod("leo", True)
    m.premod("max", True)
    m.premod("max", False)
    m.settings(
        mode="post",
        banned_words=["slur"],
        suspect_words=[],
        max_links=None,
        flag_threshold=3,
    )
    m.fold()
    return m


def test_a_log_with_every_moderation_event_agrees_with_its_tables(site: Moderated) -> None:
    report = verify(site.engine)

    assert report.differences == ()
    assert (report.threads, report.users) == (1, 3)  # troll, leo, max; the site is no user


def test_rebuilt_projections_still_agree_and_the_site_stream_is_no_thread(
    site: Moderated,
) -> None:
    rebuild_threads(site.engine, site.store)
    rebuild_notifications(site.engine, site.store)

    assert verify(site.engine).differences == ()


def execute(site: Moderated, sql: str, **params: Any) -> None:
    with site.engine.begin() as conn:
        assert conn.execute(sa.text(sql), params).rowcount == 1


Corruption = Callable[[Moderated], Difference]


def unreject(site: Moderated) -> Difference:
    hot = site.ids["hot"]
    execute(site, "UPDATE comment_state SET status = 'published' WHERE comment_id = :c", c=hot)
    return Difference(
        "comment_state", f"comment_id={hot}", "different", "status", "'published'", "'rejected'"
    )


def forget_open_flags(site: Moderated) -> Difference:
    hot = site.ids["hot"]
    execute(site, "UPDATE comment_state SET flag_count = 0 WHERE comment_id = :c", c=hot)
    return Difference("comment_state", f"comment_id={hot}", "different", "flag_count", "0", "1")


def unfeature(site: Moderated) -> Difference:
    first = site.ids["first"]
    execute(site, "UPDATE comment_state SET featured = :f WHERE comment_id = :c", c=first, f=False)
    return Difference(
        "comment_state", f"comment_id={first}", "different", "featured", "False", "True"
    )


def premoderate_the_thread(site: Moderated) -> Difference:
    execute(site, "UPDATE thread_state SET moderation = 'pre' WHERE thread_id = :t", t=THREAD)
    return Difference(
        "thread_state", f"thread_id={THREAD}", "different", "moderation", "'pre'", "None"
    )


def lose_a_flag(site: Moderated) -> Difference:
    hot = site.ids["hot"]
    execute(site, "DELETE FROM comment_flags WHERE comment_id = :c AND user_id = 'cat'", c=hot)
    return Difference("comment_flags", f"comment_id={hot}, user_id=cat", "missing")


def release_from_premod(site: Moderated) -> Difference:
    execute(site, "DELETE FROM premod_users WHERE user_id = 'leo'")
    return Difference("premod_users", "user_id=leo", "missing")


def trust_a_stranger(site: Moderated) -> Difference:
    execute(site, "INSERT INTO trusted_authors (user_id, position) VALUES ('fay', 1)")
    return Difference("trusted_authors", "user_id=fay", "extra")


def raise_the_threshold(site: Moderated) -> Difference:
    execute(site, "UPDATE moderation_settings SET flag_threshold = 9 WHERE id = 1")
    return Difference("moderation_settings", "id=1", "different", "flag_threshold", "9", "3")


def hide_a_decision(site: Moderated) -> Difference:
    with site.engine.connect() as conn:
        last = conn.execute(sa.text("SELECT MAX(position) FROM moderation_log")).scalar_one()
    execute(site, "DELETE FROM moderation_log WHERE position = :p", p=last)
    return Difference("moderation_log", f"position={last}", "missing")


def make_a_suspension_endless(site: Moderated) -> Difference:
    execute(site, "UPDATE banned_users SET until = NULL WHERE user_id = 'troll'")
    return Difference("banned_users", "user_id=troll", "different", "until", "None")


def make_a_past_suspension_endless(site: Moderated) -> Difference:
    execute(site, "UPDATE ban_history SET until = NULL WHERE user_id = 'troll'")
    with site.engine.connect() as conn:
        position = conn.execute(
            sa.text("SELECT position FROM ban_history WHERE user_id = 'troll'")
        ).scalar_one()
    key = f"user_id=troll, position={position}"
    return Difference("ban_history", key, "different", "until", "None")


def feature_in_the_view(site: Moderated) -> Difference:
    hot = site.ids["hot"]
    execute(site, "UPDATE comment_view SET featured = :f WHERE comment_id = :c", c=hot, f=True)
    return Difference("comment_view", f"comment_id={hot}", "different", "featured", "True")


def notify_of_a_waiting_comment(site: Moderated) -> Difference:
    waiting = site.ids["waiting"]
    execute(
        site,
        "UPDATE notification_comments SET notified = :n WHERE comment_id = :c",
        c=waiting,
        n=True,
    )
    return Difference(
        "notification_comments", f"comment_id={waiting}", "different", "notified", "True", "False"
    )


def forget_a_waiting_excerpt(site: Moderated) -> Difference:
    waiting = site.ids["waiting"]
    execute(
        site,
        "UPDATE notification_comments SET held_excerpt = NULL WHERE comment_id = :c",
        c=waiting,
    )
    return Difference(
        "notification_comments",
        f"comment_id={waiting}",
        "different",
        "held_excerpt",
        "None",
        "'waiting, by fay'",
    )


@pytest.mark.parametrize(
    "corrupt",
    [
        unreject,
        forget_open_flags,
        unfeature,
        premoderate_the_thread,
        lose_a_flag,
        release_from_premod,
        trust_a_stranger,
        raise_the_threshold,
        hide_a_decision,
        make_a_suspension_endless,
        make_a_past_suspension_endless,
        feature_in_the_view,
        notify_of_a_waiting_comment,
        forget_a_waiting_excerpt,
    ],
)
def test_a_tampered_moderation_row_is_named(site: Moderated, corrupt: Corruption) -> None:
    expected = corrupt(site)

    report = verify(site.engine)

    assert report.total_differences == 1, report.differences
    (found,) = report.differences
    # The expected value of a moment depends on the run: compare what identifies it.
    assert (found.table, found.key, found.problem, found.column, found.found) == (
        expected.table,
        expected.key,
        expected.problem,
        expected.column,
        expected.found,
    )
    if expected.expected is not None:
        assert found.expected == expected.expected
