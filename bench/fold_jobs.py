"""CPU per event of the fold job (both projections) when each job covers 1-3 new events.

Sets up threads with watchers, muted users, preference changes and bans (so the history
tables hold rows), then repeatedly posts 1-3 comments to one thread and runs the real job
body `services.worker.jobs.fold_thread`, timing it with `time.process_time`.

    .venv/bin/python bench/fold_jobs.py --jobs 400 --repeats 3            # PostgreSQL
    .venv/bin/python bench/fold_jobs.py --jobs 400 --repeats 3 --sqlite
"""

import argparse
import cProfile
import os
import random
import statistics
import time

import sqlalchemy as sa
from redis import Redis

from services.worker import context, jobs
from shared.command_bus import CommandBus
from shared.commands import (
    Actor,
    BanUser,
    ChangePreferences,
    ChangeSubscription,
    PostComment,
    RegisterThread,
    RequestContext,
)
from shared.migrate import upgrade
from shared.settings import Settings

PROFILE = cProfile.Profile() if os.environ.get("CHORUS_BENCH_PROFILE") else None
ADMIN = RequestContext(Actor("editor", "Editor", roles=frozenset({"admin", "moderator"})))


def as_(user: str) -> RequestContext:
    return RequestContext(Actor(user, user.title(), email=f"{user}@example.com"))


def run(url: str, redis_url: str, n_jobs: int, seed: int) -> tuple[float, int, int]:
    rng = random.Random(seed)
    upgrade(url)
    settings = Settings(database_url=url, redis_url=redis_url, rate_limit_enabled=False)
    ctx = context.open_context(settings)
    bus = CommandBus(ctx.engine, ctx.store)
    users = [f"u{i}" for i in range(300)]
    threads = [f"t{i}" for i in range(40)]
    for t in threads:
        bus.execute(RegisterThread(t, f"Post {t}"), ADMIN)
        for u in rng.sample(users, 4):
            bus.execute(ChangeSubscription(t, "watching"), as_(u))
        bus.execute(ChangeSubscription(t, rng.choice(["muted", "default"])), as_(rng.choice(users)))
    for u in rng.sample(users, 60):
        bus.execute(
            ChangePreferences(
                notify_on=rng.choice(["conversations", "replies", "none"]),
                email_frequency=rng.choice(["immediate", "hourly", "daily", "off"]),
            ),
            as_(u),
        )
    for u in rng.sample(users, 5):
        bus.execute(BanUser(u, "spam"), ADMIN)
    banned = set()
    with ctx.engine.connect() as conn:
        banned = set(conn.execute(sa.text("SELECT user_id FROM banned_users")).scalars())
    posters = [u for u in users if u not in banned]
    comments: dict[str, list[str]] = {t: [] for t in threads}
    # warm up: a few comments per thread, folded
    for t in threads:
        for _ in range(5):
            parent = rng.choice(comments[t]) if comments[t] and rng.random() < 0.6 else None
            cid = bus.execute(PostComment(t, "hello *there*", parent), as_(rng.choice(posters)))
            comments[t].append(cid.id)
        jobs.fold_thread(t)
    cpu = 0.0
    events = 0
    for _ in range(n_jobs):
        t = rng.choice(threads)
        for _ in range(rng.choice([1, 1, 2, 3])):
            parent = rng.choice(comments[t][-20:]) if rng.random() < 0.7 else None
            cid = bus.execute(
                PostComment(
                    t, "A considered reply with *emphasis* and a [link](https://e.com)", parent
                ),
                as_(rng.choice(posters)),
            )
            comments[t].append(cid.id)
        started = time.process_time()
        if PROFILE is not None:
            PROFILE.enable()
        result = jobs.fold_thread(t)
        if PROFILE is not None:
            PROFILE.disable()
        cpu += time.process_time() - started
        events += result["applied"]
    with ctx.engine.connect() as conn:
        notes = conn.execute(sa.text("SELECT count(*) FROM notifications")).scalar_one()
    ctx.close()
    return cpu, events, notes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    admin = sa.create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    per_event = []
    for attempt in range(args.repeats):
        if args.sqlite:
            import tempfile

            url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
        else:
            name = f"chorus_h5_bench_{attempt}"
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
            url = args.admin_url.rsplit("/", 1)[0] + "/" + name
        cpu, events, notes = run(url, args.redis_url, args.jobs, seed=attempt)
        per_event.append(cpu / events * 1000)
        print(
            f"run {attempt}: {events} events in {args.jobs} jobs, {notes} notifications, "
            f"CPU {cpu:.2f} s = {cpu / events * 1000:.3f} ms/event "
            f"({events / cpu:,.0f} events per CPU-second)"
        )
        if not args.sqlite:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        Redis.from_url(args.redis_url).flushdb()
    if PROFILE is not None:
        PROFILE.dump_stats(os.environ["CHORUS_BENCH_PROFILE"])
    print(
        f"median {statistics.median(per_event):.3f} ms CPU/event "
        f"(min {min(per_event):.3f}, max {max(per_event):.3f})"
    )


if __name__ == "__main__":
    main()
