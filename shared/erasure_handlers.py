"""Erasure: forgetting a person (decision 33).

One transaction: a `PersonErased` event in every thread stream the person wrote in, was
notified in or subscribed to, and one in their own stream; their `personal_data` rows
(the log's part: their names, comment texts, edits and flag notes) and the write-side
rows that hold their name, email or choices deleted; their comments marked deleted in the
write-side index (nobody may reply to, like or edit them any more). The folds do the rest
from the events: deleted placeholders without author or text, notifications without
excerpt, the person out of every conversation and subscription list. The log's rows stay
as they are (blank where the words were): it remains append-only.

A person's token is not revoked by this: a later request with it records them again, as
a newcomer with nothing of the past.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import events as ev
from shared.commands import EraseUser, RequestContext
from shared.errors import Forbidden, InvalidInput
from shared.log_tables import PERSONAL_DATA
from shared.notification_tables import (
    conversation_participants,
    email_outbox,
    notification_read_marks,
    notification_reads,
    notifications,
    people,
    preference_history,
    thread_subscriptions,
    user_preferences,
)
from shared.results import ErasedPerson
from shared.store import STREAMS, StoredEvent, flush_personal
from shared.streams import user_stream
from shared.write_index import CommentState, IdempotencyRecord

# (conn, ctx, [(stream, expected version, events)]): many streams in a few statements.
AppendMany = Callable[
    [Connection, RequestContext, Sequence[tuple[str, int, Sequence[ev.DomainEvent]]]],
    list[StoredEvent],
]
COMMENTS = CommentState.__table__  # type: ignore[attr-defined]
IDEMPOTENCY = IdempotencyRecord.__table__  # type: ignore[attr-defined]
MAX_USER_ID = 200
# conn.info key: the people erased in the running transaction (see `erased_in`).
_ERASED = "chorus_erased_people"
# Rows keyed by the person that hold their name, email, choices or answers to them.
_OWN_ROWS: tuple[tuple[sa.Table, str], ...] = (
    (PERSONAL_DATA, "subject_id"),
    (people, "user_id"),
    (user_preferences, "user_id"),
    (preference_history, "user_id"),
    (notification_reads, "user_id"),
    (notification_read_marks, "user_id"),
    (IDEMPOTENCY, "user_id"),
    (email_outbox, "recipient_id"),
)


def erased_in(conn: Connection) -> frozenset[str]:
    """The people erased in `conn`'s running transaction: the batch's `remember_people`
    must not record them again (the erasure's own requester among them)."""
    held = conn.info.get(_ERASED)
    if held is None or held[0] is not conn.get_transaction():
        return frozenset()
    return frozenset(held[1])


class ErasureHandlers:
    def __init__(self, append_many: AppendMany) -> None:
        self._append_many = append_many

    def erase(self, conn: Connection, cmd: EraseUser, ctx: RequestContext) -> ErasedPerson:
        user = cmd.user_id
        if user != ctx.actor.id and not ctx.actor.is_admin:
            raise Forbidden("only the person themselves or an admin may erase a person")
        if not 0 < len(user) <= MAX_USER_ID or "\x00" in user:
            raise InvalidInput("not a valid user id", code="invalid_user_id")
        flush_personal(conn)  # what this batch wrote before is deleted with the rest
        by_thread, undeleted = _comments_by_thread(conn, user)
        heard = _threads_heard(conn, user)
        _note_erased(conn, user)  # even with nothing left: this request must not record them
        if not heard and not undeleted and not _anything_kept(conn, user):
            return ErasedPerson(user_id=user, threads=0, comments=0)  # nothing left to forget
        threads = sorted(set(by_thread) | heard)

        # One bulk append for every stream: a person in thousands of threads must not
        # hold the append lock for a statement per thread (1 ms a thread, measured).
        stream = user_stream(user)
        versions = _versions(conn, [*threads, stream])
        mine = sorted(c for ids in by_thread.values() for c in ids)
        appends: list[tuple[str, int, Sequence[ev.DomainEvent]]] = [
            (
                thread_id,
                versions.get(thread_id, 0),
                [ev.PersonErased(user_id=user, comment_ids=sorted(by_thread.get(thread_id, [])))],
            )
            for thread_id in threads
        ]
        appends.append(
            (stream, versions.get(stream, 0), [ev.PersonErased(user_id=user, comment_ids=mine)])
        )
        self._append_many(conn, ctx, appends)

        for table, column in _OWN_ROWS:
            conn.execute(table.delete().where(table.c[column] == user))
        conn.execute(
            COMMENTS.update()
            .where(COMMENTS.c.author_id == user, COMMENTS.c.deleted.is_(False))
            .values(deleted=True)
        )
        if mine:  # mail to others quoting their words is not sent
            outbox = email_outbox
            conn.execute(
                outbox.update()
                .where(outbox.c.comment_id.in_(mine), outbox.c.status == "pending")
                .values(status="skipped", last_error="the comment's author was erased")
            )
        return ErasedPerson(user_id=user, threads=len(threads), comments=len(mine))


def _comments_by_thread(conn: Connection, user: str) -> tuple[dict[str, list[str]], int]:
    """Every comment the person wrote, by thread (deleted ones too: their placeholders
    still name them), and how many are not deleted yet."""
    found: dict[str, list[str]] = defaultdict(list)
    undeleted = 0
    c = COMMENTS.c
    rows = conn.execute(sa.select(c.thread_id, c.comment_id, c.deleted).where(c.author_id == user))
    for row in rows:
        found[row.thread_id].append(row.comment_id)
        undeleted += not row.deleted
    return found, undeleted


def _threads_heard(conn: Connection, user: str) -> set[str]:
    """Threads whose projection holds the person: notified, subscribed, in a conversation.

    (A subscription or a notification the fold has not reached yet when the erasure commits
    is not seen here: decision 33 says why that window is accepted.)"""
    n, s, p = notifications, thread_subscriptions, conversation_participants
    query = sa.union(
        sa.select(n.c.thread_id).where(n.c.recipient_id == user),
        sa.select(s.c.thread_id).where(s.c.user_id == user),
        sa.select(p.c.thread_id).where(p.c.user_id == user),
    )
    return {row[0] for row in conn.execute(query)}


def _anything_kept(conn: Connection, user: str) -> bool:
    """Whether any row keyed by the person is left (erasing again has nothing to do)."""
    checks = [sa.exists().where(table.c[column] == user) for table, column in _OWN_ROWS]
    return bool(conn.execute(sa.select(sa.or_(*checks))).scalar())


def _versions(conn: Connection, streams: list[str]) -> dict[str, int]:
    query = sa.select(STREAMS.c.stream_id, STREAMS.c.version).where(
        STREAMS.c.stream_id.in_(streams)
    )
    return {row.stream_id: row.version for row in conn.execute(query)}


def _note_erased(conn: Connection, user: str) -> None:
    transaction = conn.get_transaction()
    held = conn.info.get(_ERASED)
    if held is None or held[0] is not transaction:
        people_erased: set[str] = set()
        held = (transaction, people_erased)
        conn.info[_ERASED] = held
    held[1].add(user)
