"""The notification rule, folded from a realistic newsletter conversation."""

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.worker.folding import fold
from services.worker.notification_projector import notification_projection
from services.worker.rebuild import rebuild_notifications
from shared.command_bus import CommandBus
from shared.commands import (
    Actor,
    ChangePreferences,
    ChangeSubscription,
    PostComment,
    RegisterThread,
    RequestContext,
)
from shared.errors import NotFound
from shared.notification_tables import email_outbox, notifications
from shared.store import EventStore


class Newsletter:
    def __init__(self, engine: Engine, store: EventStore) -> None:
        self.engine, self.store, self.bus = engine, store, CommandBus(engine, store)
        admin = RequestContext(Actor("editor", "Editor", roles=frozenset({"admin"})))
        self.bus.execute(RegisterThread("pows", "South Korea and the POWs"), admin)

    def as_(self, user: str) -> RequestContext:
        return RequestContext(Actor(user, user.title(), email=f"{user}@example.com"))

    def post(self, user: str, parent: str | None = None, body: str = "hi") -> str:
        return self.bus.execute(PostComment("pows", body, parent), self.as_(user)).id

    def fold(self) -> None:
        fold(self.engine, self.store, "pows", notification_projection())

    def notified(self, comment_id: str) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(notifications.c.recipient_id, notifications.c.kind).where(
                    notifications.c.comment_id == comment_id
                )
            )
            return {row.recipient_id: row.kind for row in rows}

    def all_rows(self) -> list[tuple[object, ...]]:
        with self.engine.connect() as conn:
            return sorted(tuple(r) for r in conn.execute(sa.select(notifications)))

    def outbox(self) -> list[tuple[object, ...]]:
        with self.engine.connect() as conn:
            query = sa.select(email_outbox.c.recipient_id, email_outbox.c.comment_id)
            return sorted(tuple(r) for r in conn.execute(query))


def test_watching_an_unknown_thread_is_refused(engine: Engine, store: EventStore) -> None:
    n = Newsletter(engine, store)
    with pytest.raises(NotFound):
        n.bus.execute(ChangeSubscription("no-such-thread", "watching"), n.as_("don"))


def test_the_rule_on_a_newsletter_conversation(engine: Engine, store: EventStore) -> None:
    n = Newsletter(engine, store)
    n.bus.execute(ChangeSubscription("pows", "watching"), n.as_("don"))  # the writer watches
    a1 = n.post("ann", body="What about the POWs who stayed?")
    b1 = n.post("bob", a1)
    a2 = n.post("ann", b1)
    c1 = n.post("cat", a1)
    a3 = n.post("ann", a1, body="(answering myself) I found a source")
    m1 = n.post("cm", c1)  # the community manager answers several people
    m2 = n.post("cm", b1)
    e1 = n.post("eve")
    d1 = n.post("don", e1)  # the writer replies to a reader
    n.fold()

    assert n.notified(a1) == {"don": "thread"}
    assert n.notified(b1) == {"ann": "reply", "don": "thread"}
    assert n.notified(a2) == {"bob": "reply", "don": "thread"}
    assert n.notified(c1) == {"ann": "reply", "bob": "conversation", "don": "thread"}
    assert n.notified(a3) == {"bob": "conversation", "cat": "conversation", "don": "thread"}
    assert n.notified(m1) == {
        "cat": "reply",
        "ann": "conversation",
        "bob": "conversation",
        "don": "thread",
    }
    assert n.notified(m2) == {
        "bob": "reply",
        "ann": "conversation",
        "cat": "conversation",
        "don": "thread",
    }
    assert n.notified(e1) == {"don": "thread"}
    assert n.notified(d1) == {"eve": "reply"}  # never the comment's own author


def test_mutes_and_preferences_as_they_stood_when_the_comment_was_posted(
    engine: Engine, store: EventStore
) -> None:
    n = Newsletter(engine, store)
    f1 = n.post("fay")
    n.bus.execute(ChangeSubscription("pows", "muted"), n.as_("fay"))
    muted_reply = n.post("gus", f1)
    h1 = n.post("hal")
    n.bus.execute(ChangePreferences(notify_on="replies"), n.as_("hal"))
    i1 = n.post("ivy", h1)
    j1 = n.post("jon", i1)
    n.bus.execute(ChangePreferences(notify_on="none", email_frequency="off"), n.as_("ivy"))
    k1 = n.post("kim", i1)
    n.bus.execute(ChangePreferences(notify_on="conversations"), n.as_("ivy"))
    n.fold()

    assert n.notified(muted_reply) == {}
    assert n.notified(i1) == {"hal": "reply"}
    assert n.notified(j1) == {"ivy": "reply"}  # hal wants replies only: no conversation
    # ivy had turned everything off at that moment; jon is in the conversation
    assert n.notified(k1) == {"jon": "conversation"}


def test_each_notification_and_email_intent_exists_once_and_a_rebuild_queues_no_mail(
    engine: Engine, store: EventStore
) -> None:
    n = Newsletter(engine, store)
    top = n.post("ann")
    for user in ("bob", "cat", "dan", "bob"):
        n.post(user, top)
    n.fold()
    n.fold()  # a duplicate job: nothing new
    rows, outbox = n.all_rows(), n.outbox()
    # bob: ann; cat: ann, bob; dan: ann, bob, cat; bob again: ann, cat, dan
    assert len(rows) == len(outbox) == 1 + 2 + 3 + 3

    result = rebuild_notifications(engine, store)

    assert result.threads == 1
    assert n.all_rows() == rows
    assert n.outbox() == outbox  # nothing queued again


def test_a_large_conversation_fans_out_to_every_earlier_participant(
    engine: Engine, store: EventStore
) -> None:
    n = Newsletter(engine, store)
    top = n.post("op")
    for i in range(300):
        n.post(f"reader{i}", top)
    n.fold()

    last = n.post("late", top)
    n.fold()

    notified = n.notified(last)
    assert len(notified) == 301
    assert notified["op"] == "reply"
    assert sum(kind == "conversation" for kind in notified.values()) == 300
