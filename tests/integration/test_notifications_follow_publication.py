"""Notifications follow publication (decision 30): a held comment notifies when approved,
as if posted then; never twice; never when rejected, and a rejection takes back what a
published comment had notified.

The moderation events are appended straight to the log, as the handlers would append
them; the fold is what is under test.
"""

import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.worker.folding import fold
from services.worker.notification_projector import notification_projection
from services.worker.rebuild import rebuild_notifications
from shared import events as ev
from shared.command_bus import CommandBus
from shared.commands import (
    Actor,
    ChangePreferences,
    ChangeSubscription,
    RegisterThread,
    RequestContext,
)
from shared.ids import new_id
from shared.moderation_tables import ban_history, banned_users
from shared.notification_tables import email_outbox, notification_comments, notifications
from shared.store import EventStore, NewEvent, StoredEvent
from shared.streams import user_stream

THREAD = "t1"


class Desk:
    """A thread whose comments and decisions are appended as the handlers append them."""

    def __init__(self, engine: Engine, store: EventStore) -> None:
        self.engine, self.store, self.bus = engine, store, CommandBus(engine, store)
        self.bus.execute(RegisterThread(THREAD, "A post"), self.as_("editor", "admin"))

    def as_(self, user: str, *roles: str) -> RequestContext:
        return RequestContext(Actor(user, user.title(), f"{user}@example.com", frozenset(roles)))

    def append(self, stream: str, event: ev.DomainEvent, by: str = "mod") -> StoredEvent:
        metadata = {"actor": {"id": by, "name": by.title()}}
        version = self.store.stream_version(stream)
        return self.store.append(stream, [NewEvent.of(event, metadata)], version)[-1]

    def post(
        self, user: str, parent: str | None = None, body: str = "hi", *, held: bool = False
    ) -> str:
        comment_id = new_id()
        author = ev.Author(id=user, name=user.title())
        event = ev.CommentPosted(
            comment_id=comment_id,
            parent_id=parent,
            author=author,
            body=body,
            status="pending" if held else "published",
            held_for=["pre_moderation"] if held else [],
        )
        self.append(THREAD, event, by=user)
        return comment_id

    def edit(self, comment_id: str, user: str, body: str) -> None:
        self.append(THREAD, ev.CommentEdited(comment_id=comment_id, body=body), by=user)

    def approve(self, comment_id: str) -> StoredEvent:
        return self.append(THREAD, ev.CommentApproved(comment_id=comment_id, by="mod"))

    def reject(self, comment_id: str) -> None:
        self.append(THREAD, ev.CommentRejected(comment_id=comment_id, by="mod", reason="no"))

    def hold_for_flags(self, comment_id: str, *flaggers: str) -> None:
        for user in flaggers:
            flag = ev.CommentFlagged(comment_id=comment_id, user_id=user, reason="spam")
            self.append(THREAD, flag, by=user)
        self.append(THREAD, ev.CommentHeld(comment_id=comment_id, held_for=["flags"]))

    def prefer(self, user: str, notify_on: str, email_frequency: str = "immediate") -> None:
        command = ChangePreferences(notify_on=notify_on, email_frequency=email_frequency)
        self.bus.execute(command, self.as_(user))

    def watch(self, user: str) -> None:
        self.bus.execute(ChangeSubscription(THREAD, "watching"), self.as_(user))

    def suspend(self, user: str, until: datetime) -> None:
        """As the ban handler writes a suspension: the event, `banned_users`, `ban_history`."""
        stored = self.append(
            user_stream(user), ev.UserBanned(user_id=user, reason="cool off", by="mod", until=until)
        )
        with self.engine.begin() as conn:
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

    def fold(self) -> None:
        fold(self.engine, self.store, THREAD, notification_projection())

    def notified(self, comment_id: str) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(notifications.c.recipient_id, notifications.c.kind).where(
                    notifications.c.comment_id == comment_id
                )
            )
            return {row.recipient_id: row.kind for row in rows}

    def notification(self, recipient: str, comment_id: str) -> sa.Row[tuple[object, ...]]:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(notifications).where(
                    notifications.c.recipient_id == recipient,
                    notifications.c.comment_id == comment_id,
                )
            ).one()

    def outbox(self) -> dict[tuple[str, str], str]:
        """(recipient, comment) -> the email's status."""
        with self.engine.connect() as conn:
            query = sa.select(
                email_outbox.c.recipient_id, email_outbox.c.comment_id, email_outbox.c.status
            )
            return {(r.recipient_id, r.comment_id): r.status for r in conn.execute(query)}

    def mark_sent(self, recipient: str, comment_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                email_outbox.update()
                .where(
                    email_outbox.c.recipient_id == recipient,
                    email_outbox.c.comment_id == comment_id,
                )
                .values(status="sent", sent_at=datetime.now(UTC))
            )

    def tables(self) -> list[list[tuple[object, ...]]]:
        with self.engine.connect() as conn:
            return [
                sorted(tuple(r) for r in conn.execute(sa.select(table)))
                for table in (notifications, notification_comments)
            ]


def test_a_held_comment_notifies_nobody_until_approved_then_as_if_posted_then(
    engine: Engine, store: EventStore
) -> None:
    d = Desk(engine, store)
    d.watch("don")
    top = d.post("ann", body="The election")
    d.post("bob", top)  # bob is in ann's conversation
    d.fold()
    held = d.post("cat", top, body="first words", held=True)
    d.fold()

    assert d.notified(held) == {}
    assert [comment for _, comment in d.outbox() if comment == held] == []
    later = d.post("eve", top)  # cat is not in the conversation yet
    d.fold()
    assert "cat" not in d.notified(later)

    d.edit(held, "cat", "*second* words")  # the approval shows the words as they are then
    d.prefer("bob", "replies")  # preferences as of the approval, not of the post
    d.prefer("ann", "conversations", "daily")
    d.watch("fay")  # candidates as of the approval too
    approval = d.approve(held)
    d.fold()

    assert d.notified(held) == {
        "ann": "reply",
        "eve": "conversation",
        "don": "thread",
        "fay": "thread",
    }
    row = d.notification("ann", held)
    assert (row.position, row.excerpt, row.actor_name) == (
        approval.position,
        "second words",
        "Cat",
    )
    assert row.created_at.replace(tzinfo=UTC) == approval.recorded_at.astimezone(UTC)
    outbox = d.outbox()
    assert {user for user, comment in outbox if comment == held} == {"ann", "eve", "don", "fay"}
    with engine.connect() as conn:
        frequency = conn.execute(
            sa.select(email_outbox.c.frequency).where(
                email_outbox.c.recipient_id == "ann", email_outbox.c.comment_id == held
            )
        ).scalar_one()
    assert frequency == "daily"
    # Published now: cat joined the conversation at the approval.
    after = d.post("gus", top)
    d.fold()
    assert d.notified(after)["cat"] == "conversation"


def test_a_comment_posted_and_approved_in_one_batch_notifies_once(
    engine: Engine, store: EventStore
) -> None:
    d = Desk(engine, store)
    top = d.post("ann")
    held = d.post("bob", top, held=True)
    d.approve(held)
    d.approve(held)  # a second approval (after a rejection, say) changes nothing
    d.fold()

    assert d.notified(held) == {"ann": "reply"}
    assert list(d.outbox()) == [("ann", held)]


def test_a_rejected_comment_never_notifies(engine: Engine, store: EventStore) -> None:
    d = Desk(engine, store)
    d.watch("don")
    top = d.post("ann")
    d.fold()
    held = d.post("bob", top, held=True)
    d.fold()
    d.reject(held)
    d.fold()

    assert d.notified(held) == {}
    assert [comment for _, comment in d.outbox()] == [top]  # don heard of ann's only


def test_rejecting_a_published_comment_takes_back_its_notifications_and_unsent_emails(
    engine: Engine, store: EventStore
) -> None:
    d = Desk(engine, store)
    d.watch("don")
    d.prefer("cat", "conversations", "daily")
    top = d.post("ann")
    d.post("cat", top)
    d.fold()
    spam = d.post("bob", top, body="buy now")
    d.fold()
    assert d.notified(spam) == {"ann": "reply", "cat": "conversation", "don": "thread"}
    d.mark_sent("ann", spam)  # the mailer was quick for ann

    d.reject(spam)
    d.fold()

    assert d.notified(spam) == {}
    outbox = d.outbox()
    assert {user: outbox[user, spam] for user in ("ann", "cat", "don")} == {
        "ann": "sent",  # a sent email stays sent
        "cat": "skipped",
        "don": "skipped",
    }
    assert outbox["don", top] == "pending"  # other emails are untouched


def test_a_comment_held_by_flags_after_it_was_published_never_notifies_twice(
    engine: Engine, store: EventStore
) -> None:
    d = Desk(engine, store)
    top = d.post("ann")
    d.fold()
    hot = d.post("bob", top, body="a hot take")
    d.fold()
    assert d.notified(hot) == {"ann": "reply"}
    before = d.outbox()

    d.hold_for_flags(hot, "jon", "kim")
    d.fold()
    d.approve(hot)
    d.fold()

    assert d.notified(hot) == {"ann": "reply"}
    assert d.outbox() == before


def test_a_refold_and_a_rebuild_give_the_same_rows_and_queue_no_email(
    engine: Engine, store: EventStore
) -> None:
    d = Desk(engine, store)
    d.watch("don")
    top = d.post("ann")
    held = d.post("bob", top, held=True)
    d.fold()
    d.prefer("ann", "replies")
    d.approve(held)
    rejected = d.post("cat", top, held=True)
    d.edit(rejected, "cat", "still no")
    d.reject(rejected)
    spam = d.post("eve", top)
    d.fold()
    d.reject(spam)
    still_held = d.post("fay", top, held=True)
    d.edit(still_held, "fay", "edited while waiting")
    d.fold()
    d.fold()  # a duplicate job: nothing new
    live, outbox = d.tables(), d.outbox()

    rebuild_notifications(engine, store)

    assert d.tables() == live
    assert d.outbox() == outbox
    with engine.connect() as conn:
        waiting = conn.execute(
            sa.select(notification_comments).where(notification_comments.c.comment_id == still_held)
        ).one()
    assert (waiting.notified, waiting.parent_id, waiting.author_name, waiting.held_excerpt) == (
        False,
        top,
        "Fay",
        "edited while waiting",
    )


def test_a_suspension_silences_only_what_was_posted_before_it_ended(
    engine: Engine, store: EventStore
) -> None:
    d = Desk(engine, store)
    top = d.post("ann")
    d.fold()
    until = datetime.now(UTC) + timedelta(seconds=1)
    d.suspend("max", until)
    d.suspend("ann", until)  # ann hears nothing while suspended

    during = d.post("max", top)
    d.fold()
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.05)
    after = d.post("max", top)
    d.fold()

    posted = {
        e.data["comment_id"]: e.recorded_at for e in store.read_stream(THREAD) if e.data.get("body")
    }
    assert posted[during] < until <= posted[after]  # the timing the test relies on held
    assert d.notified(during) == {}
    assert d.notified(after) == {"ann": "reply"}
