"""What a 304 costs next to the full read it replaces (decision 24).

Builds a thread of 1,000 comments (page_reads.py's mix), starts the real API (`chorus api`,
one process) and, over one keep-alive connection, times the first page of the thread
(`sort=oldest`, 20 top-level comments with 3 replies each level) and the one comment read,
each REQUESTS times in full and REQUESTS times with `If-None-Match` carrying the current
ETag (answered 304), interleaved so that outside load falls on both alike.

    .venv/bin/python bench/conditional_reads.py            # PostgreSQL
    .venv/bin/python bench/conditional_reads.py --sqlite   # a temporary SQLite file
"""

import argparse
import random
import statistics
import time

import httpx
from page_reads import build_threads, fresh_database, running_api

REQUESTS = 300
WARMUP = 30
SIZE = 1_000


def timed(client: httpx.Client, url: str, headers: dict[str, str], status: int) -> float:
    started = time.perf_counter()
    response = client.get(url, headers=headers)
    elapsed = time.perf_counter() - started
    assert response.status_code == status, (url, response.status_code)
    return elapsed


def measure(client: httpx.Client, url: str) -> tuple[list[float], list[float], int]:
    first = client.get(url)
    etag = {"If-None-Match": first.headers["ETag"]}
    for _ in range(WARMUP):
        timed(client, url, {}, 200)
        timed(client, url, etag, 304)
    full, conditional = [], []
    for _ in range(REQUESTS):
        full.append(timed(client, url, {}, 200))
        conditional.append(timed(client, url, etag, 304))
    return full, conditional, len(first.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file")
    args = parser.parse_args()
    with fresh_database(args.sqlite, "chorus_bench_conditional") as url:
        threads = build_threads(url, [SIZE], random.Random(24))
        thread_id = threads.by_size[SIZE]
        with running_api(url, 1) as base, httpx.Client(base_url=base, timeout=30) as client:
            page = client.get(f"/v1/threads/{thread_id}/comments").json()
            comment_id = page["comments"][0]["id"]
            print("| read | bytes | full p50 / mean (ms) | 304 p50 / mean (ms) | full / 304 |")
            print("|---|---|---|---|---|")
            for label, path in [
                ("first page", f"/v1/threads/{thread_id}/comments"),
                ("one comment", f"/v1/comments/{comment_id}"),
            ]:
                full, conditional, size = measure(client, path)
                ms = [1000 * statistics.median(full), 1000 * statistics.fmean(full)]
                ms += [1000 * statistics.median(conditional), 1000 * statistics.fmean(conditional)]
                print(
                    f"| {label} | {size:,} | {ms[0]:.2f} / {ms[1]:.2f} | {ms[2]:.2f} / {ms[3]:.2f} "
                    f"| {ms[1] / ms[3]:.1f}x |"
                )
            # The floor: a request that touches no database at all.
            floor = [timed(client, "/healthz", {}, 200) for _ in range(REQUESTS)]
            print(f"| /healthz (no database) | | {1000 * statistics.median(floor):.2f} | | |")


if __name__ == "__main__":
    main()
