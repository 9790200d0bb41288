"""Personal data beside the log (decision 33): the store splits it out at append and merges
it back on every read; migration 0009 moves what older releases wrote into the log."""

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shared.command_bus import CommandBus
from shared.commands import Actor, EraseUser, PostComment, RequestContext
from shared.db import create_db_engine, write_transaction
from shared.errors import ConcurrencyError
from shared.log_tables import PERSONAL_DATA
from shared.migrate import upgrade
from shared.notification_tables import people
from shared.store import EventStore, NewEvent, StreamAppend
from tests.waiting import wait_for

ANN = {"id": "u-1", "name": "Ann Example"}


def posted(comment_id: str = "c1", body: str = "Hello there") -> NewEvent:
    data = {"comment_id": comment_id, "parent_id": None, "author": ANN, "body": body}
    return NewEvent(type="CommentPosted", data=data, metadata={"actor": {"id": "u-1"}})


def raw_log(engine: Engine) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT type, data, metadata FROM events ORDER BY position"))
        return [(t, _json(d), _json(m)) for t, d, m in rows]


def personal_rows(engine: Engine) -> dict[str, tuple[str, dict[str, Any]]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(PERSONAL_DATA))
        return {r.event_id: (r.subject_id, _json(r.fields)) for r in rows}


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


def test_the_log_row_keeps_blanks_and_reads_give_the_event_whole(
    store: EventStore, engine: Engine
) -> None:
    flagged = NewEvent(
        type="CommentFlagged",
        data={"comment_id": "c1", "user_id": "u-2", "reason": "spam", "note": "Looks like spam"},
    )
    quiet_flag = NewEvent(
        type="CommentFlagged",
        data={"comment_id": "c1", "user_id": "u-3", "reason": "spam", "note": ""},
    )
    edited = NewEvent(
        type="CommentEdited",
        data={"comment_id": "c1", "body": "Hello again"},
        metadata={"actor": {"id": "u-1"}},
    )
    appended = store.append("t1", [posted(), flagged, quiet_flag, edited], 0)

    assert appended[0].data["body"] == "Hello there"  # the caller's events, whole
    assert store.read_stream("t1") == appended
    assert store.read_all() == appended
    log = raw_log(engine)
    assert log[0][1]["author"] == {"id": "u-1", "name": ""}
    assert log[0][1]["body"] == ""
    assert log[1][1]["note"] == ""
    assert log[3][1]["body"] == ""
    assert personal_rows(engine) == {
        appended[0].event_id: ("u-1", {"author.name": "Ann Example", "body": "Hello there"}),
        appended[1].event_id: ("u-2", {"note": "Looks like spam"}),
        appended[3].event_id: ("u-1", {"body": "Hello again"}),
    }  # a flag without a note keeps nothing


def test_a_failed_append_leaves_no_personal_row(store: EventStore, engine: Engine) -> None:
    def append_then_fail() -> None:
        with write_transaction(engine) as conn:
            store.append("t1", [posted()], 0, conn=conn)
            raise RuntimeError("the caller fails after appending")

    with pytest.raises(RuntimeError):
        append_then_fail()
    assert personal_rows(engine) == {}


def test_once_the_personal_row_is_gone_reads_are_blank(store: EventStore, engine: Engine) -> None:
    store.append("t1", [posted()], 0)
    with write_transaction(engine) as conn:
        conn.execute(PERSONAL_DATA.delete().where(PERSONAL_DATA.c.subject_id == "u-1"))

    (event,) = store.read_stream("t1")
    assert (event.data["author"], event.data["body"]) == ({"id": "u-1", "name": ""}, "")
    assert event.to_domain().model_dump()["body"] == ""


def test_a_bulk_append_splits_too_and_checks_every_stream(
    store: EventStore, engine: Engine
) -> None:
    store.append("t2", [NewEvent(type="ThreadRegistered", data={"title": None, "url": None})], 0)
    with write_transaction(engine) as conn:
        stored = store.append_many(
            [
                StreamAppend("t1", [posted("c1", "First words")], 0),
                StreamAppend("t2", [posted("c2", "Second words")], 1),
            ],
            conn=conn,
        )

    assert [(e.stream_id, e.version, e.data["body"]) for e in stored] == [
        ("t1", 1, "First words"),
        ("t2", 2, "Second words"),
    ]
    assert store.read_all() == [store.read_stream("t2")[0], *stored]
    assert all(data["body"] == "" for kind, data, _ in raw_log(engine) if kind == "CommentPosted")
    assert len(personal_rows(engine)) == 2
    with pytest.raises(ConcurrencyError), write_transaction(engine) as conn:
        store.append_many([StreamAppend("t1", [posted("c3")], 0)], conn=conn)


def test_migration_0009_moves_older_events_out_and_keeps_the_log_append_only(
    unmigrated_url: str,
) -> None:
    upgrade(unmigrated_url, "0008")
    engine = create_db_engine(unmigrated_url)
    now = datetime.now(UTC)
    older = [
        ("e1", "ThreadRegistered", {"title": "T", "url": None}),
        ("e2", "CommentPosted", {**posted().data, "status": "published"}),
        ("e3", "CommentEdited", {"comment_id": "c1", "body": "Edited words"}),
        ("e4", "CommentFlagged", {"comment_id": "c1", "user_id": "u-2", "reason": "spam"}),
    ]
    metadata = {"actor": {"id": "u-1", "name": "Ann Example"}, "request_id": "r1"}
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO streams (stream_id, version) VALUES ('t1', 4)"))
        for version, (event_id, kind, data) in enumerate(older, start=1):
            conn.execute(
                sa.text(
                    "INSERT INTO events (stream_id, version, event_id, type, schema_version,"
                    " data, metadata, recorded_at)"
                    " VALUES ('t1', :v, :id, :type, 1, :data, :metadata, :at)"
                ).bindparams(
                    sa.bindparam("data", type_=sa.JSON), sa.bindparam("metadata", type_=sa.JSON)
                ),
                {
                    "v": version,
                    "id": event_id,
                    "type": kind,
                    "data": data,
                    "metadata": metadata,
                    "at": now,
                },
            )
    engine.dispose()

    upgrade(unmigrated_url)

    engine = create_db_engine(unmigrated_url)
    try:
        log = raw_log(engine)
        assert all(m["actor"] == {"id": "u-1"} for _, _, m in log)
        assert log[1][1]["author"]["name"] == log[1][1]["body"] == log[2][1]["body"] == ""
        assert personal_rows(engine) == {
            "e2": ("u-1", {"author.name": "Ann Example", "body": "Hello there"}),
            "e3": ("u-1", {"body": "Edited words"}),
        }
        read = EventStore(engine).read_stream("t1")
        assert read[1].data["body"] == "Hello there"
        assert read[1].data["author"]["name"] == "Ann Example"
        assert read[2].data["body"] == "Edited words"
        # The triggers are back, as they were.
        for statement in ("UPDATE events SET type = 'x'", "DELETE FROM events"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(sa.text(statement))
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                states = conn.execute(
                    sa.text(
                        "SELECT tgname, tgenabled FROM pg_trigger"
                        " WHERE tgrelid = 'events'::regclass ORDER BY tgname"
                    )
                ).all()
            assert [tuple(s) for s in states] == [
                ("events_no_truncate", "O"),
                ("events_no_update_delete", "O"),
            ]
    finally:
        engine.dispose()


class Gate:
    """Holds the bus's committer until opened, so the commands queued meanwhile share a batch."""

    def __init__(self, bus: CommandBus, ctx: RequestContext) -> None:
        self.entered, self.opened = threading.Event(), threading.Event()
        self.done = bus.committer.submit(self._wait, tag=ctx)
        assert self.entered.wait(10), "the committer never ran the gate"

    def _wait(self, _conn: Connection) -> None:
        self.entered.set()
        assert self.opened.wait(10)

    def open(self) -> None:
        self.opened.set()
        self.done.result(timeout=10)


def as_(user: str) -> RequestContext:
    return RequestContext(Actor(user, f"{user.title()} Example"))


def test_a_batch_writes_its_personal_rows_in_one_statement(
    engine: Engine, store: EventStore
) -> None:
    bus = CommandBus(engine, store)
    try:
        bus.execute(PostComment("t1", "first"), as_("ann"))
        inserts: list[str] = []

        def count(*args: Any) -> None:
            if args[2].lstrip().upper().startswith("INSERT INTO PERSONAL_DATA"):
                inserts.append(args[2])

        sa.event.listen(engine, "before_cursor_execute", count)
        gate = Gate(bus, as_("ann"))
        queued = [
            bus.committer.submit(bus._work(PostComment("t1", f"words of {u}"), as_(u)), tag=as_(u))
            for u in ("bob", "cat", "dan", "eve")
        ]
        wait_for(lambda: bus.committer._queue.qsize() == 4, "4 queued")
        gate.open()
        for future in queued:
            future.result(timeout=10)
        sa.event.remove(engine, "before_cursor_execute", count)

        assert len(inserts) == 1
        bodies = {e.data["author"]["id"]: e.data["body"] for e in store.read_stream("t1")[1:]}
        assert bodies == {
            "ann": "first",
            **{u: f"words of {u}" for u in ("bob", "cat", "dan", "eve")},
        }
    finally:
        bus.close()


def test_an_erasure_deletes_what_its_own_batch_wrote_before_it(
    engine: Engine, store: EventStore
) -> None:
    bus = CommandBus(engine, store)
    try:
        gate = Gate(bus, as_("ann"))
        posted = bus.committer.submit(
            bus._work(PostComment("t1", "soon forgotten"), as_("zed")), tag=as_("zed")
        )
        erased = bus.committer.submit(bus._work(EraseUser("zed"), as_("zed")), tag=as_("zed"))
        wait_for(lambda: bus.committer._queue.qsize() == 2, "2 queued")
        gate.open()
        posted.result(timeout=10)
        assert erased.result(timeout=10)[0].comments == 1

        assert personal_rows(engine) == {}
        with engine.connect() as conn:
            assert conn.execute(sa.select(people).where(people.c.user_id == "zed")).all() == []
    finally:
        bus.close()
