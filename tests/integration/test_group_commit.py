"""The committer on its own, on both databases: no piece of work can fail another, and
no caller waits forever (decision 17).

A gate (a piece of work that waits for an event on the committer thread) holds the
committer while the pieces under test queue up, so they share the next batch.
"""

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shared.command_bus import CommandBus
from shared.commands import Actor, PostComment, RequestContext
from shared.errors import Busy
from shared.group_commit import GroupCommitter
from shared.store import EventStore
from tests.waiting import wait_for

SCRATCH = sa.table("scratch", sa.column("tag"))


@pytest.fixture
def scratch(engine: Engine) -> Engine:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE scratch (tag VARCHAR(40) PRIMARY KEY)"))
    return engine


def tags_in(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(SCRATCH.c.tag)).scalars())


def insert(tag: str) -> Callable[[Connection], str]:
    def work(conn: Connection) -> str:
        conn.execute(SCRATCH.insert().values(tag=tag))
        return tag

    return work


class Gate:
    """Holds the committer thread until opened."""

    def __init__(self, committer: GroupCommitter, tag: Any = None) -> None:
        self.entered, self.opened = threading.Event(), threading.Event()
        self.done = committer.submit(self._wait, tag=tag)
        assert self.entered.wait(10), "the committer never ran the gate"

    def _wait(self, _conn: Connection) -> None:
        self.entered.set()
        assert self.opened.wait(10)

    def open(self) -> None:
        self.opened.set()
        self.done.result(timeout=10)


@pytest.fixture
def committer(scratch: Engine) -> Iterator[GroupCommitter]:
    committer = GroupCommitter(scratch)
    yield committer
    committer.close()


def test_a_shared_step_failing_for_one_piece_fails_that_piece_alone(scratch: Engine) -> None:
    def before_commit(_conn: Connection, tags: Sequence[Any]) -> None:
        if "bad" in tags:
            raise ValueError("the bad tag cannot be remembered")

    committer = GroupCommitter(scratch, before_commit=before_commit)
    gate = Gate(committer)
    futures = {tag: committer.submit(insert(tag), tag=tag) for tag in ["a", "b", "bad", "c"]}
    gate.open()

    assert {tag: f.result(timeout=10) for tag, f in futures.items() if tag != "bad"} == {
        "a": "a",
        "b": "b",
        "c": "c",
    }
    with pytest.raises(ValueError, match="bad tag"):
        futures["bad"].result(timeout=10)
    assert tags_in(scratch) == {"a", "b", "c"}
    committer.close()


def test_a_person_no_column_can_hold_fails_only_their_own_write(engine: Engine) -> None:
    """The `people` upsert, once per batch, meets an address with a lone surrogate (one the
    token check refuses; here it goes straight to the bus): only that write fails."""
    bus = CommandBus(engine, EventStore(engine))
    gate = Gate(bus.committer, RequestContext(Actor("gate", "Gate")))
    actors = {who: Actor(who, who.title()) for who in ["ann", "bob", "dee"]}
    actors["cy"] = Actor("cy", "Cy", email="cy\ud800@example.com")
    contexts = {who: RequestContext(actor) for who, actor in actors.items()}
    futures: dict[str, Future[Any]] = {
        who: bus.committer.submit(bus._work(PostComment("t1", f"from {who}"), ctx), tag=ctx)
        for who, ctx in contexts.items()
    }
    gate.open()

    posted = {who: f.result(timeout=10)[0].id for who, f in futures.items() if who != "cy"}
    with pytest.raises(UnicodeEncodeError):
        futures["cy"].result(timeout=10)
    logged = {
        e.data["author"]["id"]: e.data["comment_id"]
        for e in EventStore(engine).read_all(0)
        if e.type == "CommentPosted"
    }
    with engine.connect() as conn:
        named = dict(conn.execute(sa.text("SELECT user_id, name FROM people")).all())
    assert logged == posted
    assert set(posted) == {"ann", "bob", "dee"}
    assert named == {"gate": "Gate", "ann": "Ann", "bob": "Bob", "dee": "Dee"}
    bus.close()


def test_work_past_its_deadline_is_answered_busy_and_never_runs(
    committer: GroupCommitter, scratch: Engine
) -> None:
    gate = Gate(committer)
    submitted = time.monotonic()
    late = committer.submit(insert("late"), timeout=0.05)
    in_time = committer.submit(insert("in-time"), timeout=30)
    wait_for(lambda: time.monotonic() > submitted + 0.05, "the deadline to pass")
    gate.open()

    with pytest.raises(Busy):
        late.result(timeout=10)
    assert in_time.result(timeout=10) == "in-time"
    assert tags_in(scratch) == {"in-time"}


def test_a_full_queue_refuses_at_once(scratch: Engine) -> None:
    committer = GroupCommitter(scratch, max_waiting=2)
    gate = Gate(committer)
    waiting = [committer.submit(insert(tag)) for tag in ["a", "b"]]
    with pytest.raises(Busy):
        committer.submit(insert("c"))
    gate.open()

    assert [f.result(timeout=10) for f in waiting] == ["a", "b"]
    assert tags_in(scratch) == {"a", "b"}
    committer.close()


def test_work_whose_caller_gave_up_before_its_batch_never_runs(
    committer: GroupCommitter, scratch: Engine
) -> None:
    gate = Gate(committer)
    abandoned = committer.submit(insert("abandoned"))
    assert abandoned.cancel()  # what asyncio does with the future of a request gone away
    kept = committer.submit(insert("kept"))
    gate.open()

    assert kept.result(timeout=10) == "kept"
    assert committer.run(insert("after")) == "after"
    assert tags_in(scratch) == {"kept", "after"}


def test_a_dead_committer_thread_is_replaced_and_what_it_held_is_answered(
    committer: GroupCommitter, scratch: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert committer.run(insert("before")) == "before"
    first = committer.thread
    run = committer._run
    failures = iter([RuntimeError("the committer broke")])

    def broken(batch: list[Any]) -> None:
        fault = next(failures, None)
        if fault is not None:
            raise fault
        run(batch)

    monkeypatch.setattr(committer, "_run", broken)
    held = committer.submit(insert("held"))

    with pytest.raises(RuntimeError, match="the committer broke"):
        held.result(timeout=10)
    wait_for(lambda: first is not None and not first.is_alive(), "the broken thread to end")
    assert committer.run(insert("after"), timeout=10) == "after"
    assert committer.thread is not first
    assert tags_in(scratch) == {"before", "after"}


def test_awaiting_callers_each_hear_their_own_answer_with_one_wake_up_per_batch(
    committer: GroupCommitter,
) -> None:
    async def callers() -> tuple[list[Any], int]:
        loop = asyncio.get_running_loop()
        wake_ups = 0
        handing_over = loop.call_soon_threadsafe

        def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal wake_ups
            wake_ups += 1
            return handing_over(*args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        gate = await asyncio.to_thread(Gate, committer)
        calls = [
            asyncio.ensure_future(committer.run_async(insert(tag), tag=tag))
            for tag in ["a", "b", "c"]
        ]
        refused = asyncio.ensure_future(committer.run_async(insert("a"), tag="again"))
        await asyncio.to_thread(wait_for, lambda: committer._queue.qsize() == 4, "4 queued")
        await asyncio.to_thread(gate.open)
        answers = await asyncio.gather(*calls, refused, return_exceptions=True)
        return answers, wake_ups

    answers, wake_ups = asyncio.run(callers())

    # "a" twice in one batch: the second insert breaks the key (tried again, as a lost race
    # would be, then given up), and only its caller hears of it.
    assert answers[:3] == ["a", "b", "c"]
    assert isinstance(answers[3], Busy)
    # The four shared one batch: the loop was woken for them once (plus asyncio.to_thread's).
    assert wake_ups - 3 == 1


def test_batches_count_the_pieces_they_answer_and_the_time_they_held_the_lock(
    committer: GroupCommitter,
) -> None:
    gate = Gate(committer)  # its batch holds the lock from here until it is opened
    held_at_least = time.perf_counter()
    futures = [committer.submit(insert(f"t{n}")) for n in range(5)]
    assert committer.lock_held_seconds == 0  # counted when the transaction ends
    held_at_least = time.perf_counter() - held_at_least
    gate.open()
    for future in futures:
        future.result(timeout=10)
    # The gate's batch, then one batch for the five that queued behind it.
    assert (committer.batches, committer.pieces) == (2, 6)
    assert committer.lock_held_seconds > held_at_least
