"""Page reads over HTTP: latency of thread pages, thread summaries and counts, by thread size.

Builds threads of 10, 1,000 and 10,000 comments straight through the store (about 40%
top-level, the rest replies to random earlier comments, some likes and deletes), folds them
with `fold_thread`, starts the real API (`chorus api`) as a subprocess on a free port and
times requests to it from this process over one keep-alive connection.

    .venv/bin/python bench/page_reads.py            # PostgreSQL, database chorus_bench_reads
    .venv/bin/python bench/page_reads.py --sqlite   # a temporary SQLite file
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from processes import free_port, stop, wait_until_answering

from services.worker.folding import fold_thread
from shared import events as ev
from shared.db import create_db_engine
from shared.ids import new_id
from shared.migrate import upgrade
from shared.store import EventStore, NewEvent

REPO = Path(__file__).resolve().parent.parent
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
PG_DATABASE = "chorus_bench_reads"
REDIS_URL = "redis://127.0.0.1:6379/14"
JWT_SECRET = "chorus-bench-secret-0123456789abcdef0123"
SORTS = ("oldest", "newest", "top")
PAGE_LIMIT = 20
COUNT_THREADS = 100
APPEND_CHUNK = 500
HTTP_TIMEOUT = 30.0
FLAT_PAGE = "page 1, sort=oldest, replies=0 (no nesting)"
HEALTHZ = "GET /healthz (no database)"

PROSE = (
    "My grandfather was there in 1953 and never spoke of it.",
    "Thank you for writing this; it made me call my mother.",
    "I read the whole piece twice and still disagree with the second half.",
    "The numbers in the third paragraph do not match the chart, as far as I can tell.",
    "This is the best thing I have read on the subject in years.",
    "We tried exactly this in our town council and it went nowhere.",
)
MARKDOWN = (
    "A considered reply with *emphasis*, a [link](https://example.com) and `code`.",
    "> quoting the article\n\nI think **this** is the crux of it.",
    "Three points:\n\n1. cost\n2. time\n3. who pays",
)


# --- the database and the log ---------------------------------------------------------


@contextmanager
def fresh_database(use_sqlite: bool, name: str) -> Iterator[str]:
    """A new, empty database URL: a temporary SQLite file, or PostgreSQL `name` (recreated)."""
    if use_sqlite:
        with tempfile.TemporaryDirectory() as scratch:
            yield f"sqlite:///{Path(scratch) / 'bench.db'}"
        return
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def body(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choice(MARKDOWN)
    return "\n\n".join(" ".join(rng.sample(PROSE, 2)) for _ in range(rng.randint(1, 3)))


def thread_events(comments: int, rng: random.Random, title: str) -> list[ev.DomainEvent]:
    """A thread's log: `comments` posts (40% top-level), ~0.6 likes a comment, ~3% deleted."""
    events: list[ev.DomainEvent] = [ev.ThreadRegistered(title=title, url="https://example.com")]
    posted: list[tuple[str, str]] = []  # (comment id, author id)
    deleted: set[str] = set()
    likers = 0

    def alive(pick: Callable[[], int]) -> tuple[str, str] | None:
        for _ in range(5):
            candidate = posted[pick()]
            if candidate[0] not in deleted:
                return candidate
        return None

    for _ in range(comments):
        parent = None
        if posted and rng.random() >= 0.4:
            found = alive(lambda: rng.randrange(len(posted)))
            parent = found[0] if found else None
        comment_id, author = new_id(), f"u{rng.randrange(2000)}"
        events.append(
            ev.CommentPosted(
                comment_id=comment_id,
                parent_id=parent,
                author=ev.Author(id=author, name=f"Reader {author}"),
                body=body(rng),
            )
        )
        posted.append((comment_id, author))
        while rng.random() < 0.375:  # 0.6 likes per comment, favouring older comments
            liked = alive(lambda: int(len(posted) * rng.random() ** 3))
            if liked:
                likers += 1
                events.append(ev.CommentLiked(comment_id=liked[0], user_id=f"liker{likers}"))
        if rng.random() < 0.03:
            victim = alive(lambda: rng.randrange(len(posted)))
            if victim:
                deleted.add(victim[0])
                events.append(ev.CommentDeleted(comment_id=victim[0], deleted_by=victim[1]))
    return events


@dataclass(frozen=True)
class Threads:
    by_size: dict[int, str]
    all_ids: list[str]


def build_threads(
    database_url: str, sizes: list[int], rng: random.Random, *, analyze: bool = True
) -> Threads:
    """Write and fold one thread per size, plus small ones up to COUNT_THREADS in all.

    With `analyze`, PostgreSQL then gathers planner statistics, as autovacuum would have
    on a database in service: without them it estimates one row per thread and may pick
    the (thread, depth, seq) index for `sort=top`, filtering every top-level comment.
    """
    upgrade(database_url)
    engine = create_db_engine(database_url)
    store = EventStore(engine)
    run = new_id()[-6:]
    plan = [(f"reads-{size}-{run}", size) for size in sizes]
    plan += [(f"reads-small{i}-{run}", rng.randrange(6)) for i in range(COUNT_THREADS)]
    plan = plan[:COUNT_THREADS]
    total_events = 0
    started = time.perf_counter()
    for thread_id, size in plan:
        events = [NewEvent.of(e) for e in thread_events(size, rng, f"Post {thread_id}")]
        for start in range(0, len(events), APPEND_CHUNK):
            store.append(thread_id, events[start : start + APPEND_CHUNK], start)
        total_events += len(events)
    written = time.perf_counter() - started
    for thread_id, _ in plan:
        fold_thread(engine, store, thread_id)
    folded = time.perf_counter() - started - written
    if analyze and engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    with engine.connect() as conn:
        query = sa.text("SELECT thread_id, top_level_count FROM thread_view")
        top_level: dict[str, int] = {t: int(n) for t, n in conn.execute(query)}
    engine.dispose()
    print(
        f"{engine.dialect.name}: built {len(plan)} threads, {total_events:,} events: "
        f"appended in {written:.1f} s, folded in {folded:.1f} s"
    )
    for thread_id, size in plan[: len(sizes)]:
        print(f"  {thread_id}: {size:,} comments, {top_level[thread_id]:,} top-level visible")
    return Threads(
        {size: thread_id for thread_id, size in plan[: len(sizes)]}, [t for t, _ in plan]
    )


# --- the API process -------------------------------------------------------------------


@contextmanager
def running_api(database_url: str, workers: int, **settings: str) -> Iterator[str]:
    """`chorus api` on a free port of 127.0.0.1 until the block ends (also on error)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CHORUS_DATABASE_URL": database_url,
        "CHORUS_REDIS_URL": REDIS_URL,
        "CHORUS_RATE_LIMIT_ENABLED": "false",
        "CHORUS_JWT_SECRET": JWT_SECRET,
        **settings,
    }
    command = [sys.executable, "-m", "services.cli", "api", "--port", str(port)]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_answering(f"{base}/healthz", process, output, "the API")
            yield base
        finally:
            stop(process)


# --- measuring -------------------------------------------------------------------------


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat: shows outside load."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


@dataclass
class Timing:
    latencies: list[float]
    errors: int
    mean_bytes: float
    mean_comments: float | None
    """Comments in a page, nested replies included; None for other responses."""

    def p(self, q: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies)


NO_TIMING = Timing([], 0, 0.0, 0.0)
"""A row with nothing to measure (a thread with a single page has no deeper page)."""


Key = tuple[str, str]
"""(thread size, request label): one row of the table."""
Timings = dict[Key, Timing]
Row = tuple[str, str, Timing]


def timed(client: httpx.Client, batches: dict[Key, list[httpx.Request]], warmup: int) -> Timings:
    """Send the batches round-robin (so drift in machine speed hits each alike): the first
    `warmup` requests of each untimed, the rest timed in ms; non-2xx responses counted."""
    rounds = list(zip(*batches.values(), strict=True))
    for requests in rounds[:warmup]:
        for request in requests:
            client.send(request)
    seen: dict[Key, list[httpx.Response]] = {key: [] for key in batches}
    latencies: dict[Key, list[float]] = {key: [] for key in batches}
    for requests in rounds[warmup:]:
        for key, request in zip(batches, requests, strict=True):
            started = time.perf_counter()
            response = client.send(request)
            latencies[key].append((time.perf_counter() - started) * 1000)
            seen[key].append(response)
    timings: Timings = {}
    for key, responses in seen.items():
        pages = [r.json().get("comments") for r in responses]
        shown = [count_comments(page) for page in pages if page is not None]
        timings[key] = Timing(
            latencies[key],
            sum(not r.is_success for r in responses),
            statistics.fmean(len(r.content) for r in responses),
            statistics.fmean(shown) if shown else None,
        )
    return timings


def count_comments(comments: list[dict[str, Any]]) -> int:
    return sum(1 + count_comments(c["replies"]) for c in comments)


def page_cursors(client: httpx.Client, thread_id: str, sort: str) -> list[str]:
    """The cursor of every page after the first, walking the thread once."""
    cursors: list[str] = []
    params: dict[str, Any] = {"sort": sort, "limit": PAGE_LIMIT}
    while True:
        response = client.get(f"/v1/threads/{thread_id}/comments", params=params)
        response.raise_for_status()
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return cursors
        cursors.append(cursor)
        params["cursor"] = cursor


def measure(
    client: httpx.Client, threads: Threads, requests: int, warmup: int, rng: random.Random
) -> list[Row]:
    """Time each kind of request on every thread size, the sizes interleaved."""
    n = warmup + requests

    def same(method: str, url: str, **kwargs: Any) -> list[httpx.Request]:
        return [client.build_request(method, url, **kwargs)] * n

    def path(thread_id: str) -> str:
        return f"/v1/threads/{thread_id}/comments"

    sizes = {f"{size:,}": thread_id for size, thread_id in threads.by_size.items()}
    results: Timings = timed(client, {("-", HEALTHZ): same("GET", "/healthz")}, warmup)
    for sort in SORTS:
        first: dict[str, str | int] = {"sort": sort, "limit": PAGE_LIMIT}
        label = f"page 1, sort={sort}"
        batches = {(size, label): same("GET", path(t), params=first) for size, t in sizes.items()}
        results |= timed(client, batches, warmup)
        deep: dict[Key, list[httpx.Request]] = {}
        for size, thread_id in sizes.items():
            cursors = page_cursors(client, thread_id, sort)
            label = f"random page of 2-{len(cursors) + 1}, sort={sort}"
            if not cursors:
                results[size, f"a deeper page, sort={sort}"] = NO_TIMING
                continue
            deep[size, label] = [
                client.build_request(
                    "GET", path(thread_id), params={**first, "cursor": rng.choice(cursors)}
                )
                for _ in range(n)
            ]
        results |= timed(client, deep, warmup)
    flat = {"sort": "oldest", "limit": PAGE_LIMIT, "replies": 0}
    batches = {(size, FLAT_PAGE): same("GET", path(t), params=flat) for size, t in sizes.items()}
    results |= timed(client, batches, warmup)
    batches = {
        (size, "GET /v1/threads/{id}"): same("GET", f"/v1/threads/{t}") for size, t in sizes.items()
    }
    results |= timed(client, batches, warmup)
    ids = threads.all_ids[:COUNT_THREADS]
    counts = ("-", f"POST /v1/counts, {len(ids)} ids")
    results |= timed(client, {counts: same("POST", "/v1/counts", json={"thread_ids": ids})}, warmup)
    # Per size in the order measured (sorted() is stable); rows not about one thread size first.
    rank = {size: i for i, size in enumerate(["-", *sizes])}
    return [
        (size, label, results[size, label])
        for size, label in sorted(results, key=lambda k: rank[k[0]])
    ]


def table(rows: list[Row]) -> str:
    lines = [
        "| thread size | request | p50 ms | p99 ms | mean ms | body KiB | comments in body "
        "| non-2xx |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size, label, t in rows:
        if t is NO_TIMING:
            lines.append(f"| {size} | {label} | - | - | - | - | - | - |")
            continue
        shown = "-" if t.mean_comments is None else f"{t.mean_comments:.0f}"
        lines.append(
            f"| {size} | {label} | {t.p50:.2f} | {t.p(99):.2f} | {t.mean:.2f} "
            f"| {t.mean_bytes / 1024:.1f} | {shown} | {t.errors} |"
        )
    return "\n".join(lines)


def ratios(rows: list[Row], sizes: list[int]) -> list[str]:
    """p50 of the largest thread's first page over the smallest's (target: within 2x)."""
    if len(sizes) < 2:
        return []
    small, large = f"{min(sizes):,}", f"{max(sizes):,}"
    p50 = {(size, label): t.p50 for size, label, t in rows if t is not NO_TIMING}
    labels = [f"page 1, sort={sort}" for sort in SORTS]
    labels.append(FLAT_PAGE)
    return [
        f"{label}: p50({large}) / p50({small}) = {p50[large, label] / p50[small, label]:.2f}"
        for label in labels
    ]


def run(
    use_sqlite: bool, sizes: list[int], requests: int, warmup: int, workers: int, analyze: bool
) -> None:
    rng = random.Random(7)
    with fresh_database(use_sqlite, PG_DATABASE) as database_url:
        threads = build_threads(database_url, sizes, rng, analyze=analyze)
        with (
            running_api(database_url, workers) as base,
            httpx.Client(base_url=base, timeout=HTTP_TIMEOUT) as client,
        ):
            started, ticks = time.perf_counter(), cpu_ticks()
            rows = measure(client, threads, requests, warmup, rng)
            elapsed = time.perf_counter() - started
            busy, total = (b - a for a, b in zip(ticks, cpu_ticks(), strict=True))
    dialect = "SQLite" if use_sqlite else "PostgreSQL"
    if not use_sqlite:
        dialect += " (ANALYZEd after loading)" if analyze else " (not ANALYZEd after loading)"
    print(
        f"\n{dialect}, {workers} API process(es), one keep-alive client; "
        f"{requests} timed requests after {warmup} warm-up each; {elapsed:.0f} s of requests, "
        f"machine CPU {busy / total:.0%} busy meanwhile ({os.cpu_count()} cores)\n"
    )
    print(table(rows))
    print()
    for line in ratios(rows, sizes):
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file")
    parser.add_argument(
        "--sizes", default="10,1000,10000", help="comments per thread, comma-separated"
    )
    parser.add_argument("--requests", type=int, default=300, help="timed requests per row")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per row")
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn processes")
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="PostgreSQL: skip ANALYZE after loading (planner statistics left to autovacuum)",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    run(args.sqlite, sizes, args.requests, args.warmup, args.api_workers, not args.no_analyze)


if __name__ == "__main__":
    main()
