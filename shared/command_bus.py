"""Runs a command in one write transaction: idempotency, optimistic retries, the append."""

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shared.commands import Actor, Command, RequestContext
from shared.db import insert_ignoring_conflicts, write_transaction
from shared.errors import Busy, ConcurrencyError, IdempotencyKeyReused
from shared.handlers import Handlers, Response
from shared.notification_tables import people
from shared.store import EventStore, NewEvent, StoredEvent
from shared.write_index import IdempotencyRecord

IDEMPOTENCY = IdempotencyRecord.__table__  # type: ignore[attr-defined]
OnAppended = Callable[[list[StoredEvent]], None]
# The events the current attempt has appended, reported once its transaction commits.
_appended: ContextVar[list[StoredEvent] | None] = ContextVar("appended", default=None)

log = logging.getLogger(__name__)


class CommandBus:
    """Executes commands; `on_appended` (metrics) hears of each commit's events, if any."""

    def __init__(
        self,
        engine: Engine,
        store: EventStore,
        *,
        retries: int = 8,
        max_body_chars: int = 10_000,
        on_appended: OnAppended | None = None,
    ) -> None:
        self.engine = engine
        noted = _NotingStore(store) if on_appended is not None else store
        self.handlers = Handlers(noted, max_body_chars=max_body_chars)
        self.retries = retries
        self.on_appended = on_appended

    def execute(self, command: Command, ctx: RequestContext) -> Response:
        """Handle `command`, retrying transparently when another writer got there first.

        With an idempotency key, the first successful answer is stored in the same
        transaction as the events, and every later call with that key returns it.
        """
        for attempt in range(self.retries):
            try:
                # Optimistic first; after losing a race, lock the thread so the retry wins.
                return self._execute_once(command, ctx, lock=attempt > 0)
            except (ConcurrencyError, sa.exc.IntegrityError):
                # Another writer moved the stream, or claimed the same idempotency
                # key or like, between our read and our write: read again.
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))  # noqa: S311
        raise Busy("too many concurrent writes to this thread; retry shortly")

    def _execute_once(self, command: Command, ctx: RequestContext, *, lock: bool) -> Response:
        appended: list[StoredEvent] = []
        token = _appended.set(appended)
        try:
            response = self._commit_once(command, ctx, lock=lock)
        finally:
            _appended.reset(token)
        if appended and self.on_appended is not None:
            try:
                self.on_appended(appended)
            except Exception:
                # The events are committed: a failing observer must not turn that into an error.
                log.exception("on_appended failed")
        return response

    def _commit_once(self, command: Command, ctx: RequestContext, *, lock: bool) -> Response:
        key = ctx.idempotency_key
        with write_transaction(self.engine) as conn:
            if lock:
                self.handlers.lock_stream_of(conn, command, ctx)
            if key is None:
                response = self.handlers.handle(conn, command, ctx)
                remember_person(conn, ctx.actor)
                return response
            fingerprint = _fingerprint(command)
            earlier = conn.execute(
                sa.select(IDEMPOTENCY.c.fingerprint, IDEMPOTENCY.c.response).where(
                    IDEMPOTENCY.c.user_id == ctx.actor.id, IDEMPOTENCY.c.key == key
                )
            ).first()
            if earlier is not None:
                if earlier.fingerprint != fingerprint:
                    raise IdempotencyKeyReused(
                        "this Idempotency-Key was already used for a different request"
                    )
                replayed: Response = earlier.response
                return replayed
            response = self.handlers.handle(conn, command, ctx)
            remember_person(conn, ctx.actor)
            conn.execute(
                IDEMPOTENCY.insert().values(
                    user_id=ctx.actor.id,
                    key=key,
                    fingerprint=fingerprint,
                    response=response,
                    created_at=datetime.now(UTC),
                )
            )
            return response


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
        stored = self._store.append(stream_id, events, expected_version, conn=conn)
        noted = _appended.get()
        if noted is not None:
            noted.extend(stored)
        return stored


def remember_person(conn: Connection, actor: Actor) -> None:
    """The latest token wins: name and email as the person last presented them."""
    values = {"name": actor.name, "email": actor.email, "updated_at": datetime.now(UTC)}
    if not insert_ignoring_conflicts(conn, people, {"user_id": actor.id, **values}, ["user_id"]):
        conn.execute(
            people.update()
            .where(
                people.c.user_id == actor.id,
                sa.or_(people.c.name != actor.name, people.c.email.is_distinct_from(actor.email)),
            )
            .values(**values)
        )


def _fingerprint(command: Command) -> str:
    payload: dict[str, Any] = {"command": type(command).__name__, **asdict(command)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
