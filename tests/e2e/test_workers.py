"""Real worker processes fold the log exactly once, whatever happens to jobs and workers."""

import random
from collections.abc import Callable
from subprocess import Popen

from redis import Redis
from rq import Queue
from sqlalchemy.engine import Engine

from services.worker.folding import checkpoint_of
from shared.command_bus import CommandBus
from shared.commands import Actor, DeleteComment, LikeComment, PostComment, RequestContext
from shared.nudges import (
    DIRTY_KEY,
    FOLD_JOB,
    FOLD_QUEUE,
    MAX_QUEUED_FOLDS,
    Nudger,
    claim_dirty,
    pending_key,
)
from shared.projection_tables import LIVE
from shared.store import EventStore
from tests.e2e.conftest import Workers
from tests.projections import clean_fold, snapshot
from tests.waiting import wait_for

THREADS = ["a", "b", "c"]


def write_conversation(
    engine: Engine, store: EventStore, n: int, nudge: Callable[[str], object] | None = None
) -> None:
    """n commands across three threads: nested replies, likes, a few deletes."""
    rng = random.Random(n)
    bus = CommandBus(engine, store)
    posted: dict[str, list[str]] = {t: [] for t in THREADS}
    for i in range(n):
        thread = rng.choice(THREADS)
        ctx = RequestContext(Actor(f"u{i % 7}", f"User {i % 7}"))
        ids = posted[thread]
        if ids and i % 10 == 0:
            bus.execute(LikeComment(rng.choice(ids)), ctx)
        elif ids and i % 23 == 0:
            victim = ids.pop(rng.randrange(len(ids)))
            bus.execute(
                DeleteComment(victim),
                RequestContext(Actor("mod", "M", roles=frozenset({"moderator"}))),
            )
        else:
            parent = rng.choice(ids) if ids and rng.random() < 0.6 else None
            ids.append(bus.execute(PostComment(thread, f"c{i}", parent), ctx).id)
        if nudge:
            nudge(thread)


def caught_up(engine: Engine, store: EventStore) -> bool:
    with engine.connect() as conn:
        return all(checkpoint_of(conn, LIVE, t) == store.stream_version(t) for t in THREADS)


def wait_until_caught_up(engine: Engine, store: EventStore) -> None:
    wait_for(lambda: caught_up(engine, store), "the projection to catch up with the log")


def test_a_burst_worker_folds_every_nudged_thread(
    workers: Workers, engine: Engine, store: EventStore, redis: Redis
) -> None:
    nudger = Nudger(redis)
    write_conversation(engine, store, 300, nudger.nudge)

    workers.burst()

    assert caught_up(engine, store)
    assert snapshot(engine) == clean_fold(engine, store)


def test_duplicate_and_out_of_order_jobs_change_nothing(
    workers: Workers, engine: Engine, store: EventStore, redis: Redis
) -> None:
    write_conversation(engine, store, 200)
    queue = Queue(FOLD_QUEUE, connection=redis)
    jobs = [t for t in THREADS for _ in range(5)]
    random.Random(3).shuffle(jobs)
    for thread in jobs:  # every job delivered five times, in no particular order
        queue.enqueue(FOLD_JOB, thread)

    workers.burst()
    state = snapshot(engine)
    for thread in THREADS:  # and once more after everything was folded
        queue.enqueue(FOLD_JOB, thread)
    workers.burst()

    assert snapshot(engine) == state == clean_fold(engine, store)


def test_continuous_workers_racing_on_the_same_threads_fold_once(
    workers: Workers, engine: Engine, store: EventStore, redis: Redis
) -> None:
    for _ in range(3):
        workers.start()
    queue = Queue(FOLD_QUEUE, connection=redis)

    def nudge_twice(thread: str) -> None:  # every nudge raced by a duplicate
        queue.enqueue(FOLD_JOB, thread)
        queue.enqueue(FOLD_JOB, thread)

    write_conversation(engine, store, 300, nudge_twice)
    wait_until_caught_up(engine, store)

    assert snapshot(engine) == clean_fold(engine, store)


def test_a_worker_killed_mid_fold_loses_and_repeats_nothing(
    workers: Workers, engine: Engine, store: EventStore, redis: Redis
) -> None:
    write_conversation(engine, store, 1500)
    for thread in THREADS:
        Queue(FOLD_QUEUE, connection=redis).enqueue(FOLD_JOB, thread)

    victim = workers.start(fold_batch_size="5")  # some 300 commits: a wide window
    wait_for(lambda: paused_after_a_commit(workers, victim, engine), "the first fold commit")
    # Held still, so what it has folded so far cannot change under the assertion.
    assert not caught_up(engine, store), "the worker was done before it could be stopped"
    workers.kill(victim)  # SIGKILL, mid-fold: its open batch rolls back

    workers.start()  # the sweep finds what the dead worker left behind
    wait_until_caught_up(engine, store)

    assert snapshot(engine) == clean_fold(engine, store)


def checkpoint_of_any(engine: Engine, thread: str) -> int:
    with engine.connect() as conn:
        return checkpoint_of(conn, LIVE, thread)


def paused_after_a_commit(workers: Workers, worker: Popen[bytes], engine: Engine) -> bool:
    """Pause `worker`; True (left paused) once it has committed a fold, else resumed."""
    workers.pause(worker)
    if any(checkpoint_of_any(engine, t) for t in THREADS):
        return True
    workers.resume(worker)
    return False


def test_lost_nudges_are_recovered_by_the_sweep(
    workers: Workers, engine: Engine, store: EventStore, redis: Redis
) -> None:
    nudger = Nudger(redis)
    write_conversation(engine, store, 150, nudger.nudge)
    redis.flushdb()  # Redis lost everything: the queued nudges are gone

    workers.start()
    wait_until_caught_up(engine, store)

    assert snapshot(engine) == clean_fold(engine, store)


def test_threads_nudged_while_jobs_wait_are_folded_by_the_jobs_that_run(
    workers: Workers, engine: Engine, store: EventStore, redis: Redis
) -> None:
    bus = CommandBus(engine, store)
    threads = [f"busy-{i}" for i in range(12)]
    for thread in threads:
        bus.execute(PostComment(thread, "x"), RequestContext(Actor("ann", "Ann")))
    Nudger(redis).nudge_many(dict.fromkeys(threads))
    # Only MAX_QUEUED_FOLDS jobs wait; the other threads are dirty, each job's to drain.
    assert len(Queue(FOLD_QUEUE, connection=redis)) == MAX_QUEUED_FOLDS
    assert redis.zcard(DIRTY_KEY) == len(threads)

    workers.burst()

    with engine.connect() as conn:
        folded = [checkpoint_of(conn, LIVE, t) for t in threads]
    assert folded == [store.stream_version(t) for t in threads]
    assert redis.zcard(DIRTY_KEY) == 0
    assert not any(redis.exists(pending_key(t)) for t in threads)
    assert snapshot(engine) == clean_fold(engine, store)


def test_a_thread_claimed_by_a_worker_that_died_is_folded_after_the_sweep(
    workers: Workers, engine: Engine, store: EventStore, redis: Redis
) -> None:
    write_conversation(engine, store, 60)
    nudger = Nudger(redis)
    nudger.nudge_many(dict.fromkeys(THREADS))
    Queue(FOLD_QUEUE, connection=redis).empty()  # the waiting jobs were lost
    claimed = claim_dirty(redis, coalesce_ms=0)  # ... and a worker claimed a thread, then died
    assert claimed is not None
    assert claimed.thread_id in THREADS

    workers.start()  # its sweep nudges every thread behind, the claimed one included
    wait_until_caught_up(engine, store)

    assert snapshot(engine) == clean_fold(engine, store)
