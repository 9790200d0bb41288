"""The event store: append with an optimistic version check, read a stream, read all.

Global order: PostgreSQL appends take a transaction-scoped advisory lock before
they touch any row, so positions are assigned in commit order and a reader that
tails `position > last_seen` never skips an event that commits late. SQLite
writers are serialized by `BEGIN IMMEDIATE`, which gives the same guarantee.
A transaction that takes the lock up front (`lock_appends`, as group commit does)
pays for it once, however many appends it makes. On PostgreSQL a command's append to a
stream that exists is one statement: the version check and the insert together
(decision 40).

Personal data (decision 33): an event's personal fields (`shared.personal_data`) are
blanked in its `events` row and written to `personal_data` in the same transaction, one
statement for the whole append; every read joins them back, so `StoredEvent.data` is the
event as appended until its person is erased, and blank ("") after.
"""

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shared.bulk import insert_rows
from shared.db import insert_ignoring_conflicts, read_connection, write_transaction
from shared.errors import ConcurrencyError, Conflict
from shared.events import DomainEvent
from shared.ids import new_event_id
from shared.log_tables import PERSONAL_DATA, EventRecord, StreamRecord
from shared.personal_data import merge, split
from shared.timeutil import as_utc
from shared.upcasting import to_domain

EVENTS = EventRecord.__table__  # type: ignore[attr-defined]
STREAMS = StreamRecord.__table__  # type: ignore[attr-defined]

# Any fixed 64-bit number: the key of the advisory lock that orders appends.
APPEND_LOCK_KEY = 0x43686F727573
_LOCKED_BY = "chorus_appends_locked_by"
_DEFERRED = "chorus_personal_deferred"
# Built once: constructing a statement costs more than executing a cached one.
_LOCK = sa.select(sa.func.pg_advisory_xact_lock(APPEND_LOCK_KEY))
# The same, with the lock wait and every statement of the transaction bounded (SET LOCAL),
# in one round trip: the CTE's settings apply before the lock is waited for.
_BOUNDED_LOCK = sa.text(
    "WITH bounds AS MATERIALIZED ("
    " SELECT set_config('lock_timeout', :ms, true), set_config('statement_timeout', :ms, true))"
    " SELECT pg_advisory_xact_lock(:key) FROM bounds"
).bindparams(key=APPEND_LOCK_KEY)
_INSERT_EVENTS = EVENTS.insert().returning(EVENTS.c.position, sort_by_parameter_order=True)
_INSERT_PERSONAL = PERSONAL_DATA.insert()
# Every read of the log: the event row with its personal fields, if it has any left.
_WITH_PERSONAL = sa.select(EVENTS, PERSONAL_DATA.c.fields.label("personal")).outerjoin(
    PERSONAL_DATA, PERSONAL_DATA.c.event_id == EVENTS.c.event_id
)
# A stream's compare-and-set: moved to `new` only from the version `expected`.
_ADVANCE_MANY = (
    STREAMS.update()
    .where(
        STREAMS.c.stream_id == sa.bindparam("stream"),
        STREAMS.c.version == sa.bindparam("expected"),
    )
    .values(version=sa.bindparam("new"))
)
_ADVANCE = _ADVANCE_MANY.returning(STREAMS.c.version)

_LAST_POSITION = sa.select(sa.func.max(EVENTS.c.position))
_POSITIONS_AFTER = sa.select(EVENTS.c.event_id, EVENTS.c.position).where(
    EVENTS.c.position > sa.bindparam("before")
)


def lock_appends(conn: Connection, *, within: float | None = None) -> None:
    """Hold the append lock until `conn`'s transaction ends (PostgreSQL; SQLite needs none).

    Taken before any row lock, always: the one lock order every appender follows. With
    `within` (seconds), neither the wait for it nor any later statement of the transaction
    may take longer: past that, PostgreSQL cancels it and the transaction fails whole.
    """
    if conn.dialect.name != "postgresql":
        return
    # Marked per transaction, not per connection: a connection that commits and begins
    # again must take the lock again.
    transaction = conn.get_transaction()
    if transaction is not None and conn.info.get(_LOCKED_BY) is transaction:
        return
    if within is None:
        conn.execute(_LOCK)
    else:
        conn.execute(_BOUNDED_LOCK, {"ms": f"{max(1, math.ceil(within * 1000))}ms"})
    conn.info[_LOCKED_BY] = conn.get_transaction()


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: str
    data: dict[str, Any]
    schema_version: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)
    event_id: str = field(default_factory=new_event_id)

    @classmethod
    def of(cls, event: DomainEvent, metadata: dict[str, Any] | None = None) -> "NewEvent":
        return cls(
            type=event.type_name,
            data=event.model_dump(mode="json"),
            schema_version=event.schema_version,
            metadata=metadata or {},
        )


@dataclass(frozen=True, slots=True)
class StoredEvent:
    position: int
    stream_id: str
    version: int
    event_id: str
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime

    def to_domain(self) -> DomainEvent:
        return to_domain(self.type, self.schema_version, self.data)


class EventStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int,
        *,
        conn: Connection | None = None,
    ) -> list[StoredEvent]:
        """Append `events` after `expected_version` (0: the stream must not exist yet).

        Raises `ConcurrencyError` when the stream is elsewhere; with `conn`, the
        append joins the caller's transaction, which must then be rolled back.
        """
        if not events:
            return []
        if conn is None:
            with write_transaction(self.engine) as own:
                return self._append(own, stream_id, events, expected_version)
        return self._append(conn, stream_id, events, expected_version)

    def _append(
        self, conn: Connection, stream_id: str, events: Sequence[NewEvent], expected: int
    ) -> list[StoredEvent]:
        lock_appends(conn)
        rows = _rows(stream_id, events, expected, datetime.now(UTC))
        if expected > 0 and len(rows) <= _FUSED_MAX and conn.dialect.name == "postgresql":
            return _advance_and_insert(conn, stream_id, expected, rows)
        self._advance_stream(conn, stream_id, expected, expected + len(events))
        return _insert(conn, rows)

    def append_many(
        self, appends: Sequence["StreamAppend"], *, conn: Connection
    ) -> list[StoredEvent]:
        """Several streams' appends in the caller's transaction, for bulk writers (an
        import): every stream's optimistic check in two statements (the new streams
        inserted, the others moved on from the version expected), then one statement for
        all the events and one for their personal data (COPY on PostgreSQL). Positions are
        read back once: under the append lock every position past the last one is theirs.
        Raises as `append` does; the caller rolls back."""
        appends = [each for each in appends if each.events]
        if not appends:
            return []
        lock_appends(conn)
        before = conn.execute(_LAST_POSITION).scalar() or 0
        fresh = [
            {"stream_id": each.stream_id, "version": len(each.events)}
            for each in appends
            if each.expected_version == 0
        ]
        moved = [
            {
                "stream": each.stream_id,
                "expected": each.expected_version,
                "new": each.expected_version + len(each.events),
            }
            for each in appends
            if each.expected_version > 0
        ]
        try:
            insert_rows(conn, STREAMS, fresh)
        except sa.exc.IntegrityError as exc:
            raise ConcurrencyError("a stream appended to as new exists already") from exc
        if moved and conn.execute(_ADVANCE_MANY, moved).rowcount != len(moved):
            raise ConcurrencyError("a stream is not at the version it was read at")
        recorded_at = datetime.now(UTC)
        rows = [
            row
            for each in appends
            for row in _rows(each.stream_id, each.events, each.expected_version, recorded_at)
        ]
        logged, personal = split_personal(rows)
        try:
            insert_rows(conn, EVENTS, logged)
        except sa.exc.IntegrityError as exc:
            raise Conflict("an event with this event_id is already stored") from exc
        deferred = _deferred(conn)
        if deferred is None:
            insert_rows(conn, PERSONAL_DATA, personal)
        else:
            deferred.extend(personal)
        found = conn.execute(_POSITIONS_AFTER, {"before": before})
        positions: dict[str, int] = {row.event_id: row.position for row in found}
        # The caller's events as they were appended: their personal fields included.
        return [StoredEvent(position=positions[row["event_id"]], **row) for row in rows]

    def _advance_stream(self, conn: Connection, stream_id: str, expected: int, new: int) -> None:
        if expected == 0:
            advanced = insert_ignoring_conflicts(
                conn, STREAMS, {"stream_id": stream_id, "version": new}, ["stream_id"]
            )
        else:
            params = {"stream": stream_id, "expected": expected, "new": new}
            advanced = conn.execute(_ADVANCE, params).first() is not None
        if not advanced:
            raise ConcurrencyError(f"stream {stream_id!r} is not at version {expected}")

    def stream_version(self, stream_id: str, *, conn: Connection | None = None) -> int:
        query = sa.select(STREAMS.c.version).where(STREAMS.c.stream_id == stream_id)
        if conn is not None:
            return conn.execute(query).scalar() or 0
        with read_connection(self.engine) as own:
            return own.execute(query).scalar() or 0

    def read_stream(
        self,
        stream_id: str,
        after_version: int = 0,
        limit: int | None = None,
        *,
        conn: Connection | None = None,
    ) -> list[StoredEvent]:
        query = (
            _WITH_PERSONAL.where(EVENTS.c.stream_id == stream_id, EVENTS.c.version > after_version)
            .order_by(EVENTS.c.version)
            .limit(limit)
        )
        if conn is not None:
            return [_stored(row._mapping) for row in conn.execute(query)]
        return self._fetch(query)

    def read_all(self, after_position: int = 0, limit: int = 1000) -> list[StoredEvent]:
        query = (
            _WITH_PERSONAL.where(EVENTS.c.position > after_position)
            .order_by(EVENTS.c.position)
            .limit(limit)
        )
        return self._fetch(query)

    def _fetch(self, query: sa.Select[Any]) -> list[StoredEvent]:
        with read_connection(self.engine) as conn:
            return [_stored(row._mapping) for row in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class StreamAppend:
    """One stream's part of `append_many`."""

    stream_id: str
    events: Sequence[NewEvent]
    expected_version: int


def _rows(
    stream_id: str, events: Sequence[NewEvent], expected: int, recorded_at: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "stream_id": stream_id,
            "version": expected + offset,
            "event_id": event.event_id,
            "type": event.type,
            "schema_version": event.schema_version,
            "data": event.data,
            "metadata": event.metadata,
            "recorded_at": recorded_at,
        }
        for offset, event in enumerate(events, start=1)
    ]


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> list[StoredEvent]:
    """Insert event rows (their personal fields split out) and return them as stored."""
    if not rows:
        return []
    logged, personal = split_personal(rows)
    try:
        result = conn.execute(_INSERT_EVENTS, logged)
    except sa.exc.IntegrityError as exc:
        raise Conflict("an event with this event_id is already stored") from exc
    positions = list(result.scalars())
    _write_personal(conn, personal)
    # The caller's events as they were appended: their personal fields included.
    return [
        StoredEvent(position=position, **row) for position, row in zip(positions, rows, strict=True)
    ]


def _advance_and_insert(
    conn: Connection, stream_id: str, expected: int, rows: list[dict[str, Any]]
) -> list[StoredEvent]:
    """PostgreSQL: move an existing stream on from `expected` and insert its events in one
    statement, one round trip under the append lock where `_advance_stream` and `_insert`
    take two. The insert selects its rows only if the update found the stream where
    expected: no row back is a lost race."""
    logged, personal = split_personal(rows)
    params: dict[str, Any] = {
        "stream": stream_id,
        "expected": expected,
        "new": expected + len(rows),
    }
    for n, row in enumerate(logged):
        params.update({f"{column}_{n}": row[column] for column in _EVENT_COLUMNS})
    try:
        found = conn.execute(_advance_and_insert_statement(len(rows)), params).all()
    except sa.exc.IntegrityError as exc:
        raise Conflict("an event with this event_id is already stored") from exc
    if not found:
        raise ConcurrencyError(f"stream {stream_id!r} is not at version {expected}")
    positions: dict[str, int] = {row.event_id: row.position for row in found}
    _write_personal(conn, personal)
    return [StoredEvent(position=positions[row["event_id"]], **row) for row in rows]


# Appends of up to this many events (a command's: one to three) take the one statement;
# its text grows with the count, and is built once for each.
_FUSED_MAX = 8
_EVENT_COLUMNS = (
    "stream_id",
    "version",
    "event_id",
    "type",
    "schema_version",
    "data",
    "metadata",
    "recorded_at",
)
_ADVANCED = _ADVANCE_MANY.returning(STREAMS.c.stream_id).cte("advanced")


@functools.cache
def _advance_and_insert_statement(count: int) -> sa.Insert:
    """`WITH advanced AS (UPDATE streams ...) INSERT INTO events SELECT ... WHERE EXISTS
    (advanced)` for `count` events, built once per count."""
    found = sa.exists(sa.select(_ADVANCED.c.stream_id))
    selects = [
        sa.select(
            *(sa.bindparam(f"{c}_{n}", type_=EVENTS.c[c].type) for c in _EVENT_COLUMNS)
        ).where(found)
        for n in range(count)
    ]
    source = selects[0] if count == 1 else sa.union_all(*selects)
    statement: sa.Insert = (
        EVENTS.insert()
        .from_select(list(_EVENT_COLUMNS), source)
        .returning(EVENTS.c.event_id, EVENTS.c.position)
    )
    return statement


def _write_personal(conn: Connection, personal: list[dict[str, Any]]) -> None:
    deferred = _deferred(conn)
    if deferred is None:
        insert_personal(conn, personal)
    else:
        deferred.extend(personal)


def split_personal(
    rows: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Event rows as the log keeps them (personal fields blank), and their `personal_data`
    rows. For any appender that inserts event rows itself (a bulk import): the log must
    never hold what this leaves out."""
    logged: list[dict[str, Any]] = []
    personal: list[dict[str, Any]] = []
    for row in rows:
        parts = split(row["type"], row["data"], row["metadata"])
        if parts.subject_id is None:
            logged.append(row)
            continue
        logged.append({**row, "data": parts.data})
        personal.append(
            {"event_id": row["event_id"], "subject_id": parts.subject_id, "fields": parts.fields}
        )
    return logged, personal


def insert_personal(conn: Connection, personal: Sequence[dict[str, Any]]) -> None:
    """Write `split_personal`'s rows: one statement, in the caller's transaction."""
    if personal:
        conn.execute(_INSERT_PERSONAL, list(personal))


def defer_personal(conn: Connection) -> None:
    """Collect the personal rows of `conn`'s running transaction instead of inserting them
    at each append, until `flush_personal`: a group commit's batch then writes them in one
    statement rather than one per command. Whoever defers must flush before committing,
    and before anything in the transaction reads or deletes `personal_data`."""
    held = conn.info.get(_DEFERRED)
    if held is None or held[0] is not conn.get_transaction():
        conn.info[_DEFERRED] = (conn.get_transaction(), [])


def flush_personal(conn: Connection) -> None:
    """Insert what `defer_personal` collected so far (the transaction keeps deferring)."""
    deferred = _deferred(conn)
    if deferred:
        insert_personal(conn, deferred)
        deferred.clear()


def _deferred(conn: Connection) -> list[dict[str, Any]] | None:
    held = conn.info.get(_DEFERRED)
    if held is None or held[0] is not conn.get_transaction():
        return None  # not deferring, or deferred by a transaction that has ended
    rows: list[dict[str, Any]] = held[1]
    return rows


def with_personal(data: dict[str, Any], personal: dict[str, Any] | None) -> dict[str, Any]:
    """An event row's data with its `personal_data` fields (a LEFT JOIN's, or None) put back:
    for the few queries that read `events` themselves rather than through the store."""
    return merge(data, personal)


def _stored(row: Any) -> StoredEvent:
    recorded_at = as_utc(row["recorded_at"])
    return StoredEvent(
        position=row["position"],
        stream_id=row["stream_id"],
        version=row["version"],
        event_id=row["event_id"],
        type=row["type"],
        schema_version=row["schema_version"],
        data=merge(row["data"], row["personal"]),
        metadata=row["metadata"],
        recorded_at=recorded_at,
    )
