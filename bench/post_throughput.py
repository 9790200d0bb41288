"""Posting throughput over HTTP: comments/s the API sustains at 1, 16 and 64 concurrent clients.

Starts the real API (`chorus api --workers N`) on a fresh database and drives
`POST /v1/threads/{id}/comments` from this process (one OS thread per client, each with its
own httpx.Client and keep-alive connection) across 20 threads, 30% of posts replying to an
earlier comment of the same thread. Each concurrency level runs a warm-up, then a fixed
measuring window; only requests that complete inside the window count. No fold worker
runs: this is the write path alone (the API still sends its nudges to Redis).

    .venv/bin/python bench/post_throughput.py            # PostgreSQL, database chorus_bench_posts
    .venv/bin/python bench/post_throughput.py --sqlite   # a temporary SQLite file
"""

import argparse
import random
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from page_reads import JWT_SECRET, cpu_ticks, fresh_database, running_api

from shared.ids import new_id
from shared.migrate import upgrade
from shared.tokens import mint_token

PG_DATABASE = "chorus_bench_posts"
THREADS = 20
USERS = 500
REPLY_SHARE = 0.3
MARKDOWN_SHARE = 0.3
HTTP_TIMEOUT = 30.0

PROSE = (
    "My grandfather was there in 1953 and never spoke of it.",
    "Thank you for writing this; it made me call my mother.",
    "I read the whole piece twice and still disagree with the second half.",
    "The numbers in the third paragraph do not match the chart, as far as I can tell.",
    "We tried exactly this in our town council and it went nowhere.",
)
MARKDOWN = (
    "A considered reply with *emphasis*, a [link](https://example.com) and `code`.",
    "> quoting the article\n\nI think **this** is the crux of it.",
)


@dataclass
class Level:
    """What one concurrency level saw."""

    clients: int
    window: float
    latencies: list[float] = field(default_factory=list)
    """ms, of 201s completed inside the window."""
    refused: Counter[str] = field(default_factory=Counter)
    """Non-201 answers (and transport errors) over warm-up and window, by status."""
    client_cpu: float = 0.0
    machine_busy: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: str, latency: float | None = None) -> None:
        with self.lock:
            if latency is not None:
                self.latencies.append(latency)
            if status != "201":
                self.refused[status] += 1

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.window


class Poster:
    """Picks what to post next: a random thread, a reply to one of its comments 30% of the time."""

    def __init__(self, run: str, rng: random.Random) -> None:
        self.rng = rng
        self.lock = threading.Lock()
        self.threads = {f"posts-{i}-{run}": list[str]() for i in range(THREADS)}
        self.thread_ids = list(self.threads)
        self.headers = [
            {"Authorization": f"Bearer {token}"}
            for token in (
                mint_token(JWT_SECRET, sub=f"u{i}", name=f"Reader {i}", ttl=timedelta(hours=1))
                for i in range(USERS)
            )
        ]

    def next(self) -> tuple[str, dict[str, str | None], dict[str, str]]:
        with self.lock:
            thread_id = self.rng.choice(self.thread_ids)
            earlier = self.threads[thread_id]
            reply = earlier and self.rng.random() < REPLY_SHARE
            parent = self.rng.choice(earlier) if reply else None
            if self.rng.random() < MARKDOWN_SHARE:
                body = self.rng.choice(MARKDOWN)
            else:
                body = " ".join(self.rng.sample(PROSE, 3))
            return thread_id, {"body": body, "parent_id": parent}, self.rng.choice(self.headers)

    def posted(self, thread_id: str, comment_id: str) -> None:
        with self.lock:
            self.threads[thread_id].append(comment_id)


def client_loop(base: str, poster: Poster, level: Level, window: tuple[float, float]) -> None:
    """One client: its own keep-alive connection, posting back to back until the window ends."""
    start, end = window
    with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT) as client:
        while time.perf_counter() < end:
            thread_id, payload, headers = poster.next()
            started = time.perf_counter()
            try:
                response = client.post(
                    f"/v1/threads/{thread_id}/comments", json=payload, headers=headers
                )
            except httpx.HTTPError as exc:
                level.record(type(exc).__name__)
                continue
            finished = time.perf_counter()
            if response.status_code != 201:
                level.record(str(response.status_code))
                continue
            poster.posted(thread_id, response.json()["id"])
            if start <= started and finished <= end:
                level.record("201", (finished - started) * 1000)


def drive(base: str, poster: Poster, clients: int, warmup: float, seconds: float) -> Level:
    level = Level(clients, seconds)
    now = time.perf_counter()
    window = (now + warmup, now + warmup + seconds)
    loops = [
        threading.Thread(target=client_loop, args=(base, poster, level, window), daemon=True)
        for _ in range(clients)
    ]
    for loop in loops:
        loop.start()
    time.sleep(max(0.0, window[0] - time.perf_counter()))
    cpu_before, ticks_before = time.process_time(), cpu_ticks()
    time.sleep(max(0.0, window[1] - time.perf_counter()))
    cpu_after, ticks_after = time.process_time(), cpu_ticks()
    for loop in loops:
        loop.join(timeout=HTTP_TIMEOUT + 5)
    level.client_cpu = (cpu_after - cpu_before) / seconds
    busy, total = (after - before for after, before in zip(ticks_after, ticks_before, strict=True))
    level.machine_busy = busy / total if total else 0.0
    return level


def table(levels: list[Level]) -> str:
    lines = [
        "| clients | posts/s | p50 ms | p99 ms | mean ms | posts timed | non-201 "
        "| client CPU (of 1 core) | machine CPU busy |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for level in levels:
        lat = level.latencies
        p99 = statistics.quantiles(lat, n=100, method="inclusive")[98] if len(lat) > 1 else 0.0
        refused = ", ".join(f"{n}x {status}" for status, n in level.refused.items()) or "0"
        lines.append(
            f"| {level.clients} | {level.rate:,.0f} | {statistics.median(lat):.1f} | {p99:.1f} "
            f"| {statistics.fmean(lat):.1f} | {len(lat):,} | {refused} "
            f"| {level.client_cpu:.0%} | {level.machine_busy:.0%} |"
        )
    return "\n".join(lines)


def run(
    use_sqlite: bool, workers: int, concurrency: list[int], warmup: float, seconds: float
) -> None:
    poster = Poster(new_id()[-6:], random.Random(11))
    levels: list[Level] = []
    with fresh_database(use_sqlite, PG_DATABASE) as database_url:
        upgrade(database_url)
        with running_api(database_url, workers) as base:
            for clients in concurrency:
                level = drive(base, poster, clients, warmup, seconds)
                print(f"  {clients} clients: {level.rate:,.0f} posts/s", flush=True)
                levels.append(level)
    dialect = "SQLite" if use_sqlite else "PostgreSQL"
    posted = sum(len(ids) for ids in poster.threads.values())
    print(
        f"\n{dialect}, {workers} API process(es); {warmup:g} s warm-up then {seconds:g} s "
        f"measured per level; {posted:,} comments posted in {THREADS} threads in all\n"
    )
    print(table(levels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file")
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn processes")
    parser.add_argument(
        "--concurrency", default="1,16,64", help="concurrent clients per level, comma-separated"
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds measured per level")
    args = parser.parse_args()
    concurrency = [int(c) for c in args.concurrency.split(",")]
    run(args.sqlite, args.api_workers, concurrency, args.warmup, args.seconds)


if __name__ == "__main__":
    main()
