"""How long a group-commit batch holds PostgreSQL's append lock, by batch size.

The append lock orders one PostgreSQL's log (decision 2): every batch of the group
committer takes it before it reads and holds it until its commit has returned (decision
16). Its hold time per batch is the serial part of posting, so it bounds what one log can
take however many cores serve the API; `scale_model.py` turns these figures into the
throughput of 1, 2, 4 and 8 partitions.

Writers are asyncio tasks in one process calling `CommandBus.run`, as the API's request
handlers do (the event loop and the committer thread share a process and its GIL), each
posting to one of many threads so no two contend for a thread. Nothing folds. At each
concurrency level the committer's counters give batches, posts and the seconds the lock
was held; the fit `hold = fixed + per_post * batch size` is over the levels.

    .venv/bin/python bench/append_lock.py                       # 1, 4, 16, 64 writers
    .venv/bin/python bench/append_lock.py --seconds 10 --levels 1,8,32,64,128
    .venv/bin/python bench/append_lock.py --reply-share 0.3     # 30% replies, as run.py posts
"""

import argparse
import asyncio
import json
import random
import resource
import time
from dataclasses import asdict, dataclass

import sqlalchemy as sa

from shared.command_bus import CommandBus
from shared.commands import Actor, PostComment, RegisterThread, RequestContext
from shared.db import create_db_engine
from shared.migrate import upgrade
from shared.store import EventStore

ADMIN = RequestContext(Actor("editor", "Editor", roles=frozenset({"admin"})))
BODY = "A considered reply, with *emphasis* and a [link](https://example.com/a?b=1)."


@dataclass(frozen=True)
class Level:
    writers: int
    posts_per_second: float
    batches: int
    mean_batch: float
    hold_ms_per_batch: float
    lock_busy: float  # share of the wall time the lock was held
    cpu_ms_per_post: float  # this process: writers and committer


async def _write(
    bus: CommandBus, writers: int, threads: list[str], seconds: float, replies: float
) -> int:
    stop = time.monotonic() + seconds
    posted = 0
    # A comment of each thread to reply to: the latest top-level one.
    latest: dict[str, str] = {}

    async def writer(n: int) -> None:
        nonlocal posted
        ctx = RequestContext(Actor(f"writer-{n}", f"Writer {n}", email=f"w{n}@example.com"))
        rng = random.Random(n)
        turn = n
        while time.monotonic() < stop:
            thread = threads[turn % len(threads)]
            parent = latest.get(thread) if rng.random() < replies else None
            new = await bus.run(PostComment(thread, BODY, parent), ctx)
            if parent is None:
                latest[thread] = new.id
            turn += writers
            posted += 1

    await asyncio.gather(*(writer(n) for n in range(writers)))
    return posted


def measure(
    bus: CommandBus, writers: int, threads: list[str], seconds: float, replies: float = 0.0
) -> Level:
    committer = bus.committer
    batches, held = committer.batches, committer.lock_held_seconds
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    posted = asyncio.run(_write(bus, writers, threads, seconds, replies))
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    batches = committer.batches - batches
    held = committer.lock_held_seconds - held
    used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    return Level(
        writers=writers,
        posts_per_second=round(posted / elapsed, 1),
        batches=batches,
        mean_batch=round(posted / batches, 2),
        hold_ms_per_batch=round(held / batches * 1000, 3),
        lock_busy=round(held / elapsed, 3),
        cpu_ms_per_post=round(used / posted * 1000, 3),
    )


def fit(levels: list[Level]) -> tuple[float, float]:
    """Least squares of hold (ms) on batch size, each level weighted by its batches."""
    w = [lv.batches for lv in levels]
    x = [lv.mean_batch for lv in levels]
    y = [lv.hold_ms_per_batch for lv in levels]
    total = sum(w)
    mx = sum(wi * xi for wi, xi in zip(w, x, strict=True)) / total
    my = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / total
    sxx = sum(wi * (xi - mx) ** 2 for wi, xi in zip(w, x, strict=True))
    sxy = sum(wi * (xi - mx) * (yi - my) for wi, xi, yi in zip(w, x, y, strict=True))
    per_post = sxy / sxx if sxx else 0.0
    return my - per_post * mx, per_post


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--database", default="chorus_bench_lock")
    parser.add_argument("--levels", default="1,4,16,64")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=500)
    parser.add_argument(
        "--reply-share", type=float, default=0.0, help="posts that reply to a comment"
    )
    args = parser.parse_args()
    admin = sa.create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {args.database}")
    url = args.admin_url.rsplit("/", 1)[0] + "/" + args.database
    upgrade(url)
    engine = create_db_engine(url)
    bus = CommandBus(engine, EventStore(engine))
    threads = [f"lock-bench-{n}" for n in range(args.threads)]
    for thread in threads:
        bus.execute(RegisterThread(thread, thread), ADMIN)
    measure(bus, 8, threads, 2.0)  # warm: statements prepared, caches filled
    levels = [
        measure(bus, int(w), threads, args.seconds, args.reply_share)
        for w in args.levels.split(",")
    ]
    fixed, per_post = fit(levels)
    print(
        json.dumps(
            {
                "levels": [asdict(lv) for lv in levels],
                "hold_ms_fixed": round(fixed, 3),
                "hold_ms_per_post": round(per_post, 4),
            },
            indent=2,
        )
    )
    bus.close()
    engine.dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")


if __name__ == "__main__":
    main()
