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
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import sqlalchemy as sa

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
JWT_SECRET = "bench-page-reads-secret-0123456789abcdef"
SORTS = ("oldest", "newest", "top")
PAGE_LIMIT = 20
COUNT_THREADS = 100
APPEND_CHUNK = 500
HTTP_TIMEOUT = 30.0

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


def build_threads(database_url: str, sizes: list[int], rng: random.Random) -> dict[int, str]:
    """Write and fold one thread per size plus small ones up to COUNT_THREADS; ids by size."""
    upgrade(database_url)
    engine = create_db_engine(database_url)
    store = EventStore(engine)
    run = new_id()[-6:]
    plan = [(f"reads-{size}-{run}", size) for size in sizes]
    plan += [(f"reads-small{i}-{run}", rng.randrange(0, 6)) for i in range(COUNT_THREADS)]
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
    with engine.connect() as conn:
        top_level = dict(
            conn.execute(sa.text("SELECT thread_id, top_level_count FROM thread_view")).tuples()
        )
    engine.dispose()
    print(
        f"built {len(plan)} threads, {total_events:,} events: "
        f"appended in {written:.1f} s, folded in {folded:.1f} s"
    )
    for thread_id, size in plan[: len(sizes)]:
        print(f"  {thread_id}: {size:,} comments, {top_level[thread_id]:,} top-level shown")
    return {size: thread_id for thread_id, size in plan[: len(sizes)]}


# --- the API process -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
            wait_until_healthy(base, process, output)
            yield base
        finally:
            stop(process)


def wait_until_healthy(base: str, process: "subprocess.Popen[bytes]", output: IO[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            output.seek(0)
            raise RuntimeError(f"the API did not start:\n{output.read().decode()[-4000:]}")
        time.sleep(0.1)


def stop(process: "subprocess.Popen[bytes]") -> None:
    """SIGTERM the API (uvicorn stops its workers), then SIGKILL its process group if need be."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(timeout=5)


# --- measuring -------------------------------------------------------------------------


@dataclass
class Timing:
    label: str
    latencies: list[float]
    errors: int
    mean_bytes: float

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


def timed(
    client: httpx.Client,
    label: str,
    send: Callable[[int], httpx.Response],
    requests: int,
    warmup: int,
) -> Timing:
    """`warmup` untimed calls of `send(i)`, then `requests` timed ones (ms); non-2xx counted."""
    for i in range(warmup):
        send(i)
    latencies, errors, sizes = [], 0, []
    for i in range(requests):
        started = time.perf_counter()
        response = send(i)
        latencies.append((time.perf_counter() - started) * 1000)
        sizes.append(len(response.content))
        if not response.is_success:
            errors += 1
    return Timing(label, latencies, errors, statistics.fmean(sizes))


def page_cursors(client: httpx.Client, thread_id: str, sort: str) -> list[str]:
    """Every page's cursor, after the first, walking the thread once."""
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
    base: str, threads: dict[int, str], requests: int, warmup: int, rng: random.Random
) -> list[tuple[int | None, str, Timing]]:
    rows: list[tuple[int | None, str, Timing]] = []
    with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT) as client:
        for size, thread_id in threads.items():
            path = f"/v1/threads/{thread_id}/comments"
            for sort in SORTS:
                first = {"sort": sort, "limit": PAGE_LIMIT}
                timing = timed(
                    client, "first", lambda _i, p=first: client.get(path, params=p), requests, warmup
                )
                rows.append((size, f"page 1, sort={sort}", timing))
                cursors = page_cursors(client, thread_id, sort)
                if not cursors:
                    continue
                picks = [rng.choice(cursors) for _ in range(requests + warmup)]

                def deep(i: int, s: str = sort, picks: list[str] = picks) -> httpx.Response:
                    return client.get(path, params={"sort": s, "limit": PAGE_LIMIT, "cursor": picks[i]})

                timing = timed(client, "deep", deep, requests, warmup)
                rows.append((size, f"random page of {len(cursors) + 1}, sort={sort}", timing))
            summary = timed(
                client, "thread", lambda _i, t=thread_id: client.get(f"/v1/threads/{t}"), requests, warmup
            )
            rows.append((size, "GET /v1/threads/{id}", summary))
        ids = list(threads.values())
        with_small = {"thread_ids": ids + [f"{ids[0]}-none{i}" for i in range(COUNT_THREADS - len(ids))]}
        small = small_thread_ids(base, client)
        if small:
            with_small = {"thread_ids": (ids + small)[:COUNT_THREADS]}
        counts = timed(
            client, "counts", lambda _i: client.post("/v1/counts", json=with_small), requests, warmup
        )
        rows.append((None, f"POST /v1/counts ({len(with_small['thread_ids'])} ids)", counts))
    return rows
