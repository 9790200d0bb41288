"""Runs commands: idempotency, the handler, the append; many requests share one commit."""

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from shared import replays
from shared.commands import Actor, Answers, Command, RequestContext
from shared.erasure_handlers import erased_in
from shared.errors import IdempotencyKeyReused
from shared.group_commit import GroupCommitter
from shared.handlers import Handlers
from shared.notification_tables import people
from shared.nudges import Nudger, NudgeThread
from shared.results import Result
from shared.store import (
    EventStore,
    NewEvent,
    StoredEvent,
    StreamAppend,
    defer_personal,
    flush_personal,
)
from shared.streams import is_thread_stream
from shared.write_index import IdempotencyRecord

IDEMPOTENCY = IdempotencyRecord.__table__  # type: ignore[attr-defined]
OnAppended = Callable[[list[StoredEvent]], None]
# What one command leaves: its answer, and the events it appended.
Outcome = tuple[Result, list[StoredEvent]]
R = TypeVar("R", bound=Result)
_EARLIER = sa.select(IDEMPOTENCY.c.fingerprint, IDEMPOTENCY.c.response).where(
    IDEMPOTENCY.c.user_id == sa.bindparam("user_id"), IDEMPOTENCY.c.key == sa.bindparam("key")
)
# The events the command being run has appended, reported once its batch commits.
_appended: ContextVar[list[StoredEvent] | None] = ContextVar("appended", default=None)

log = logging.getLogger(__name__)


class CommandBus:
    """Executes commands; `on_appended` (metrics) hears of each command's committed events,
    `on_lock_held` (metrics) of each batch's time under the append lock, and `nudger`,
    from a thread of its own, of the threads whose streams moved.

    `write_timeout` (seconds) bounds how long a command may wait to be committed: past it,
    it is answered `Busy` and nothing of it is committed. With `max_waiting` commands
    queued, more are refused with `Busy` at once.
    """

    def __init__(
        self,
        engine: Engine,
        store: EventStore,
        *,
        retries: int = 8,
        max_body_chars: int = 10_000,
        max_batch: int = 64,
        write_timeout: float | None = None,
        max_waiting: int | None = None,
        on_appended: OnAppended | None = None,
        on_lock_held: Callable[[float], None] | None = None,
        nudger: Nudger | None = None,
    ) -> None:
        self.engine = engine
        self.write_timeout = write_timeout
        self.nudges = NudgeThread(nudger) if nudger is not None else None
        self.handlers = Handlers(_NotingStore(store), max_body_chars=max_body_chars)
        self.committer = GroupCommitter(
            engine,
            max_batch=max_batch,
            item_retries=retries,
            max_waiting=max_waiting,
            before_commit=self._before_commit,
            after_commit=self._nudge,
            on_lock_held=on_lock_held,
        )
        self.on_appended = on_appended

    @staticmethod
    def _before_commit(conn: Connection, contexts: Sequence[RequestContext]) -> None:
        """The batch's shared step: its personal rows in one statement, then its people."""
        flush_personal(conn)
        remember_people(conn, [c.actor for c in contexts])

    def execute(self, command: Answers[R], ctx: RequestContext) -> R:
        """Handle `command` in the next shared transaction; answer once it is committed.

        With an idempotency key, the first successful answer is stored in the same
        transaction as the events, and every later call with that key returns it.
        """
        outcome = self.committer.run(self._work(command, ctx), tag=ctx, timeout=self.write_timeout)
        return cast(R, self._finish(outcome))

    async def run(self, command: Answers[R], ctx: RequestContext) -> R:
        """`execute`, awaited: no thread waits for the commit."""
        outcome = await self.committer.run_async(
            self._work(command, ctx), tag=ctx, timeout=self.write_timeout
        )
        return cast(R, self._finish(outcome))

    def close(self) -> None:
        self.committer.close()
        if self.nudges is not None:
            self.nudges.close()

    def _work(self, command: Answers[R], ctx: RequestContext) -> Callable[[Connection], Outcome]:
        """The committer's piece of work for `command`: handle it inside the batch."""
        known = cast(Command, command)
        return lambda conn: self._run(conn, known, ctx)

    def _finish(self, outcome: Outcome) -> Result:
        result, appended = outcome
        if appended and self.on_appended is not None:
            try:
                self.on_appended(appended)
            except Exception:
                # The events are committed: a failing observer must not turn that into an error.
                log.exception("on_appended failed")
        return result

    def _nudge(self, done: Sequence[tuple[RequestContext, Outcome]]) -> None:
        """Hand the threads this batch moved to the nudge thread: once per thread."""
        if self.nudges is None:
            return
        moved: dict[str, str | None] = {}
        for ctx, (_result, appended) in done:
            for event in appended:
                if is_thread_stream(event.stream_id):
                    moved.setdefault(event.stream_id, ctx.request_id)
        if moved:
            self.nudges.add(moved)

    def _run(self, conn: Connection, command: Command, ctx: RequestContext) -> Outcome:
        defer_personal(conn)  # written once for the batch, in `_before_commit`
        appended: list[StoredEvent] = []
        token = _appended.set(appended)
        try:
            return self._handle(conn, command, ctx), appended
        finally:
            _appended.reset(token)

    def _handle(self, conn: Connection, command: Command, ctx: RequestContext) -> Result:
        key = ctx.idempotency_key
        if key is None:
            return self.handlers.handle(conn, command, ctx)
        fingerprint = _fingerprint(command)
        earlier = conn.execute(_EARLIER, {"user_id": ctx.actor.id, "key": key}).first()
        if earlier is not None:
            if earlier.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was already used for a different request"
                )
            return replays.decode(earlier.response, command)
        result = self.handlers.handle(conn, command, ctx)
        conn.execute(
            IDEMPOTENCY.insert().values(
                user_id=ctx.actor.id,
                key=key,
                fingerprint=fingerprint,
                response=replays.encode(result),
                created_at=datetime.now(UTC),
            )
        )
        return result


class _NotingStore(EventStore):
    """The store as the bus's handlers see it: each append is also noted for the attempt."""

    def __init__(self, store: EventStore) -> None:
        super().__init__(store.engine)
        self._store = store

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int,
        *,
        conn: Connection | None = None,
    ) -> list[StoredEvent]:
        return _noted(self._store.append(stream_id, events, expected_version, conn=conn))

    def append_many(
        self, appends: Sequence[StreamAppend], *, conn: Connection
    ) -> list[StoredEvent]:
        return _noted(self._store.append_many(appends, conn=conn))


def _noted(stored: list[StoredEvent]) -> list[StoredEvent]:
    noted = _appended.get()
    if noted is not None:
        noted.extend(stored)
    return stored


def remember_people(conn: Connection, actors: Sequence[Actor]) -> None:
    """The latest token wins: name and email as each person last presented them.

    Once per batch: insert, or update only when something changed (no row churn for
    the common case of a known person writing again). Not the people this batch erased.
    """
    erased = erased_in(conn)
    latest = {actor.id: actor for actor in actors if actor.id not in erased}
    if not latest:
        return
    now = datetime.now(UTC)
    rows = [
        {"user_id": a.id, "name": a.name, "email": a.email, "updated_at": now}
        for a in latest.values()
    ]
    conn.execute(_upsert_person(conn.dialect.name), rows)


@functools.cache
def _upsert_person(dialect: str) -> sa.Insert:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(people)
    return statement.on_conflict_do_update(
        index_elements=["user_id"],
        set_={
            "name": statement.excluded.name,
            "email": statement.excluded.email,
            "updated_at": statement.excluded.updated_at,
        },
        where=sa.or_(
            people.c.name != statement.excluded.name,
            people.c.email.is_distinct_from(statement.excluded.email),
        ),
    )


def _fingerprint(command: Command) -> str:
    payload: dict[str, Any] = {"command": type(command).__name__, **asdict(command)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
