"""The event store contract, run against SQLite and PostgreSQL alike."""

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shared.db import write_transaction
from shared.errors import ConcurrencyError, Conflict
from shared.events import CommentPosted, ThreadRegistered
from shared.store import EventStore, NewEvent
from tests.waiting import PATIENCE_SECONDS, wait_for


def _event(n: int = 0) -> NewEvent:
    return NewEvent(type="ThreadUpdated", data={"title": f"title {n}", "url": None})


def test_append_then_read_stream_returns_events_in_version_order(store: EventStore) -> None:
    stored = store.append("thread-a", [_event(1), _event(2)], expected_version=0)

    assert [e.version for e in stored] == [1, 2]
    read = store.read_stream("thread-a")
    assert [(e.version, e.data["title"]) for e in read] == [(1, "title 1"), (2, "title 2")]
    assert read == stored
    assert store.stream_version("thread-a") == 2
    assert store.read_stream("thread-a", after_version=1) == stored[1:]


def test_stored_events_keep_type_schema_metadata_and_utc_time(store: EventStore) -> None:
    event = NewEvent.of(ThreadRegistered(title="T", url=None), {"actor": {"id": "u1"}})
    store.append("thread-a", [event], expected_version=0)

    (read,) = store.read_stream("thread-a")
    assert read.event_id == event.event_id
    assert read.type == "ThreadRegistered"
    assert read.schema_version == 1
    assert read.metadata == {"actor": {"id": "u1"}}
    assert read.recorded_at.utcoffset() is not None
    assert read.to_domain() == ThreadRegistered(title="T", url=None)


def test_streams_are_independent_and_read_all_orders_by_position(store: EventStore) -> None:
    store.append("a", [_event(1)], 0)
    store.append("b", [_event(2)], 0)
    store.append("a", [_event(3)], 1)

    everything = store.read_all()
    assert [(e.stream_id, e.version) for e in everything] == [("a", 1), ("b", 1), ("a", 2)]
    assert [e.position for e in everything] == sorted(e.position for e in everything)
    assert store.read_all(after_position=everything[0].position, limit=1) == everything[1:2]


@pytest.mark.parametrize("expected", [0, 1, 3])
def test_append_at_the_wrong_version_is_refused_and_appends_nothing(
    store: EventStore, expected: int
) -> None:
    store.append("a", [_event(1), _event(2)], 0)

    with pytest.raises(ConcurrencyError):
        store.append("a", [_event(3)], expected_version=expected)
    assert store.stream_version("a") == 2
    assert len(store.read_all()) == 2


def test_a_new_stream_must_be_expected_at_version_zero(store: EventStore) -> None:
    with pytest.raises(ConcurrencyError):
        store.append("new", [_event()], expected_version=1)
    assert store.read_all() == []


def test_the_same_event_id_is_never_stored_twice(store: EventStore) -> None:
    event = _event()
    store.append("a", [event], 0)

    with pytest.raises(Conflict):
        store.append("b", [event], 0)
    assert len(store.read_all()) == 1
    assert store.stream_version("b") == 0


def test_events_appended_to_an_existing_stream_keep_their_order(store: EventStore) -> None:
    """(PostgreSQL moves an existing stream on and inserts its events in one statement.)"""
    store.append("a", [_event(1)], 0)

    stored = store.append("a", [_event(2), _event(3), _event(4)], 1)

    assert [e.version for e in stored] == [2, 3, 4]
    assert [e.position for e in stored] == sorted({e.position for e in stored})
    assert store.read_stream("a")[1:] == stored
    assert [e.data["title"] for e in store.read_all()] == [f"title {n}" for n in (1, 2, 3, 4)]


def test_an_event_id_stored_before_is_refused_on_an_existing_stream_too(
    store: EventStore,
) -> None:
    event = _event()
    store.append("a", [event], 0)
    store.append("b", [_event(1)], 0)

    with pytest.raises(Conflict):
        store.append("b", [_event(2), event], 1)
    assert store.stream_version("b") == 1  # the stream did not move on either
    assert len(store.read_all()) == 2


def test_a_failed_transaction_appends_nothing(store: EventStore) -> None:
    def append_then_fail() -> None:
        with write_transaction(store.engine) as conn:
            store.append("a", [_event()], 0, conn=conn)
            raise RuntimeError("the caller fails after appending")

    with pytest.raises(RuntimeError):
        append_then_fail()
    assert store.read_all() == []
    assert store.stream_version("a") == 0


@pytest.mark.parametrize(
    "statement",
    ["UPDATE events SET type = 'Forged'", "DELETE FROM events"],
)
def test_the_database_refuses_to_change_or_remove_events(store: EventStore, statement: str) -> None:
    store.append("a", [_event()], 0)

    with pytest.raises(sa.exc.DatabaseError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.text(statement))
    assert [e.type for e in store.read_all()] == ["ThreadUpdated"]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgres_refuses_truncate(store: EventStore) -> None:
    store.append("a", [_event()], 0)

    with pytest.raises(sa.exc.DatabaseError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE events"))
    assert len(store.read_all()) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_append_lock_is_taken_again_by_each_transaction_of_one_connection(
    store: EventStore,
) -> None:
    taken: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "pg_advisory_xact_lock" in statement:
            taken.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", note)
    with store.engine.connect() as conn:
        with conn.begin():
            store.append("a", [_event(1)], 0, conn=conn)
            store.append("b", [_event(2)], 0, conn=conn)
        with conn.begin():
            store.append("a", [_event(3)], 1, conn=conn)
    assert len(taken) == 2  # once per transaction, however many appends it makes


def _append_with_retries(store: EventStore, stream: str, n: int, conflicts: list[int]) -> None:
    for i in range(n):
        while True:
            version = store.stream_version(stream)
            try:
                store.append(stream, [_event(i)], version)
                break
            except ConcurrencyError:
                conflicts.append(1)


def test_concurrent_writers_to_one_stream_get_gapless_versions(store: EventStore) -> None:
    writers, per_writer = 8, 25
    conflicts: list[int] = []
    threads = [
        threading.Thread(target=_append_with_retries, args=(store, "hot", per_writer, conflicts))
        for _ in range(writers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    events = store.read_stream("hot")
    assert [e.version for e in events] == list(range(1, writers * per_writer + 1))
    assert len({e.event_id for e in events}) == len(events)
    assert len({e.position for e in events}) == len(events)
    assert store.stream_version("hot") == writers * per_writer


def test_a_tailing_reader_sees_every_event_once_in_position_order(store: EventStore) -> None:
    writers, per_writer = 8, 25
    done = threading.Event()
    seen: list[int] = []

    def tail() -> None:
        last = 0
        while True:
            finished = done.is_set()
            batch = store.read_all(after_position=last, limit=50)
            seen.extend(e.position for e in batch)
            last = batch[-1].position if batch else last
            if finished and not batch:
                return

    reader = threading.Thread(target=tail)
    reader.start()
    threads = [
        threading.Thread(target=_append_with_retries, args=(store, f"s{w % 3}", per_writer, []))
        for w in range(writers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()

    committed = [e.position for e in store.read_all(limit=10_000)]
    assert len(committed) == writers * per_writer
    assert seen == committed  # nothing skipped, nothing twice, in order


class StatementsInFlight:
    """What each thread has sent to the database and not yet had answered."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.by_thread: dict[int, str] = {}

    def __enter__(self) -> "StatementsInFlight":
        sa.event.listen(self.engine, "before_cursor_execute", self._sent)
        sa.event.listen(self.engine, "after_cursor_execute", self._answered)
        return self

    def __exit__(self, *_exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._sent)
        sa.event.remove(self.engine, "after_cursor_execute", self._answered)

    def _sent(self, _conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        self.by_thread[threading.get_ident()] = statement

    def _answered(self, *_args: Any) -> None:
        self.by_thread.pop(threading.get_ident(), None)


def waits_for_the_write_lock(engine: Engine, in_flight: StatementsInFlight, writer: int) -> bool:
    """Whether the `writer` thread is held up by a lock another transaction holds."""
    if engine.dialect.name == "postgresql":  # the server says so
        waiting = sa.text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        with engine.connect() as conn:
            return bool(conn.execute(waiting).scalar_one())
    # SQLite has one write lock: a BEGIN IMMEDIATE sent while it is held waits for it.
    return in_flight.by_thread.get(writer, "").startswith("BEGIN IMMEDIATE")


def test_an_uncommitted_append_holds_back_every_later_position(store: EventStore) -> None:
    """The sequence-gap trap: a later position must not become visible first."""
    finished = threading.Event()

    def second_writer() -> None:
        store.append("b", [_event(2)], 0)
        finished.set()

    with StatementsInFlight(store.engine) as in_flight:
        with write_transaction(store.engine) as conn:
            (first,) = store.append("a", [_event(1)], 0, conn=conn)
            writer = threading.Thread(target=second_writer)
            writer.start()
            assert writer.ident is not None
            # Until the second append has either finished (wrongly) or is waiting for us.
            wait_for(
                lambda: (
                    finished.is_set()
                    or waits_for_the_write_lock(store.engine, in_flight, writer.ident)
                ),
                "the second append to wait for the open one",
            )
            assert store.read_all() == []  # nothing after the open append is visible
            assert not finished.is_set()
        writer.join(timeout=PATIENCE_SECONDS)

    positions = [(e.stream_id, e.position) for e in store.read_all()]
    assert positions[0] == ("a", first.position)
    assert [s for s, _ in positions] == ["a", "b"]
    assert positions[1][1] > first.position


def test_domain_events_round_trip_through_the_store(store: EventStore) -> None:
    posted = CommentPosted.model_validate(
        {"comment_id": "c1", "parent_id": None, "author": {"id": "u", "name": "U"}, "body": "hi"}
    )
    store.append("a", [NewEvent.of(posted)], 0)
    assert store.read_stream("a")[0].to_domain() == posted
