"""The peer: Isso, given the same workload as Chorus, over its own HTTP API.

Isso (https://isso-comments.de) is the Python comment server many blogs run. This module
installs it once into its own virtual environment (`bench/.peer/isso-venv`, gitignored),
starts `isso -c CFG run` on a free port of 127.0.0.1 with a fresh SQLite database in a
temporary directory, and drives it from a separate process with aiohttp:

- posts: for each concurrency level, the `workload.plan` comments (30% replies to a random
  earlier comment) go into a fresh thread (`POST /new?uri=/post-<clients>`); a reply waits
  until its parent's id is known. posts/s is accepted posts over the level's wall time;
  latencies are per request (waiting for a parent is not counted).
- read: after the first level, while the database holds that one thread only, `GET
  /?uri=...` (no `limit`, no `nested_limit`: Isso's whole thread in one response, markdown
  rendered) is timed `READS` times over one keep-alive connection, after `READ_WARMUP`.

    .venv/bin/python bench/isso_peer.py --clients 1,16,64   # prints JSON

What was changed from Isso's shipped `isso.cfg` (all else is its default):
`[general] dbpath` (temporary), `host` and `[server] listen` (127.0.0.1:<free port>),
`[guard] enabled = false` (default true: 2 posts a minute and 3 top-level comments per
thread per client address, no reply to one's own comment within `max-age`; the guard is
1-2 unindexed SELECTs a post; Chorus' benchmarks likewise run with
`CHORUS_RATE_LIMIT_ENABLED=false`). Moderation is off (the default), so posts answer 201.
Each post also sends a `title`, so that Isso does not fetch the page to name a new thread.

How Isso 0.14.0 serves, and what that means for the comparison:
- Server: gevent is not a dependency of `pip install isso`, so `isso run` falls back to
  werkzeug's development server, `run_simple(threaded=True)`: one process, a thread per
  connection, HTTP/1.1 keep-alive. Chorus runs uvicorn with `api_workers` processes.
- Writes are serialised: `POST /new` takes one process-wide lock around the insert, and
  every SQL statement opens a new `sqlite3` connection and commits on its own (rollback
  journal, `synchronous=FULL`: an fsync per post). Chorus appends to PostgreSQL (or
  SQLite) with optimistic concurrency per thread.
- Per post Isso also does work Chorus does not do on the request: it renders the markdown
  for its response, and computes a PBKDF2 hash (1,000 iterations of SHA-1) of the author's
  email or address for the identicon. Chorus validates a JWT and renders markdown later,
  in the fold worker; Isso has no authentication at all (anonymous comments, a signed
  cookie is set for editing).
- Isso nests one level only: a reply to a reply is stored under the top-level comment
  (`db/comments.py`), so its response is at most two levels deep; Chorus keeps the tree.
- A read is the whole thread: one query for the top-level comments, then one per
  top-level comment that has replies, each on a new connection, with no index on
  `comments` but the primary key, and markdown rendered for every comment on every read.
  Chorus reads a page of a projection folded ahead of time. Isso's read therefore does
  much more work per request than a Chorus page; it is what Isso's own client fetches.
- Both servers share the 2 cores with the load driver and with each other's neighbours.
"""

import argparse
import asyncio
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from processes import free_port, stop, wait_until_answering
from workload import COMMENTS, REPLY_SHARE, SEED, Planned, plan

ISSO_VERSION = "0.14.0"
VENV = Path(__file__).resolve().parent / ".peer" / "isso-venv"
READS = 20
READ_WARMUP = 2
HTTP_TIMEOUT = 120.0
START_TIMEOUT = 60.0
TITLE = "A post on the benchmark blog"

CONFIG = """\
[general]
dbpath = {dbpath}
host = http://127.0.0.1:{port}/
notify = stdout
[moderation]
enabled = false
[server]
listen = http://127.0.0.1:{port}/
[guard]
enabled = false
"""


# --- Isso, installed and running ---------------------------------------------------------


def ensure_isso() -> Path:
    """`bench/.peer/isso-venv` with Isso `ISSO_VERSION`, created on first use; its `isso`."""
    isso, python = VENV / "bin" / "isso", VENV / "bin" / "python"
    if isso.exists() and installed_version(python) == ISSO_VERSION:
        return isso
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"isso=={ISSO_VERSION}"], check=True
    )
    return isso


def installed_version(python: Path) -> str:
    command = [str(python), "-c", "import importlib.metadata as m; print(m.version('isso'))"]
    found = subprocess.run(command, capture_output=True, text=True, check=False)
    return found.stdout.strip()


@contextmanager
def running_isso(isso: Path) -> Iterator[str]:
    """`isso -c CFG run` on a free port, with a new SQLite database, until the block ends."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="isso-peer-") as scratch:
        config = Path(scratch) / "isso.cfg"
        config.write_text(CONFIG.format(dbpath=Path(scratch) / "comments.db", port=port))
        with (Path(scratch) / "isso.log").open("w+b") as output:
            process = subprocess.Popen(
                [str(isso), "-c", str(config), "run"],
                cwd=scratch,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                wait_until_answering(f"{base}/info", process, output, "Isso", START_TIMEOUT)
                yield base
            finally:
                stop(process)


# --- the load driver (runs in its own process) -------------------------------------------


@dataclass(frozen=True)
class Posted:
    seconds: float
    latencies: list[float]
    """ms, of accepted (201) posts."""
    refused: int


@dataclass(frozen=True)
class Read:
    latencies: list[float]
    comments: int
    """Comments in the last response, replies included."""
    seconds: float = 0.0
    """Wall time of the timed reads, when read concurrently (`read_for`)."""


async def post_workload(base: str, uri: str, planned: list[Planned], clients: int) -> Posted:
    """Post `planned` in order from `clients` concurrent connections; replies await parents."""
    loop = asyncio.get_running_loop()
    ids: list[asyncio.Future[int | None]] = [loop.create_future() for _ in planned]
    latencies: list[float] = []
    refused = 0
    queue = iter(planned)

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal refused
        for comment in queue:
            parent = None if comment.parent is None else await ids[comment.parent]
            body = {"text": comment.body, "author": comment.author, "title": TITLE}
            started = time.perf_counter()
            async with session.post(
                f"{base}/new", params={"uri": uri}, json={**body, "parent": parent}
            ) as response:
                answer = await response.read()
            if response.status == 201:
                latencies.append((time.perf_counter() - started) * 1000)
                ids[comment.index].set_result(int(json.loads(answer)["id"]))
            else:
                refused += 1
                ids[comment.index].set_result(None)  # its replies go top-level instead

    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        return Posted(time.perf_counter() - started, latencies, refused)


async def read_thread(base: str, uri: str, reads: int, warmup: int) -> Read:
    latencies: list[float] = []
    comments = 0
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        for attempt in range(warmup + reads):
            started = time.perf_counter()
            async with session.get(f"{base}/", params={"uri": uri}) as response:
                response.raise_for_status()
                thread = await response.json()
            if attempt >= warmup:
                latencies.append((time.perf_counter() - started) * 1000)
            comments = sum(1 + len(c["replies"]) for c in thread["replies"])
    return Read(latencies, comments)


async def read_for(base: str, uri: str, clients: int, seconds: float) -> Read:
    """The whole thread read by `clients` closed loops until `seconds` have passed (a read
    under way then is finished and counted); one read each first, untimed."""
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=clients)
    latencies: list[float] = []
    comments = 0

    async def client(session: aiohttp.ClientSession, end: float) -> None:
        nonlocal comments
        while time.perf_counter() < end:
            started = time.perf_counter()
            async with session.get(f"{base}/", params={"uri": uri}) as response:
                response.raise_for_status()
                thread = await response.json()
            latencies.append((time.perf_counter() - started) * 1000)
            comments = sum(1 + len(c["replies"]) for c in thread["replies"])

    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(client(session, 0.0) for _ in range(clients)))  # warm-up
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(client(session, started + seconds) for _ in range(clients)))
        return Read(latencies, comments, time.perf_counter() - started)


def drive_posts(base: str, uri: str, planned: list[Planned], clients: int) -> Posted:
    return asyncio.run(post_workload(base, uri, planned, clients))


def drive_reads(base: str, uri: str, reads: int, warmup: int) -> Read:
    return asyncio.run(read_thread(base, uri, reads, warmup))


def drive_read_for(base: str, uri: str, clients: int, seconds: float) -> Read:
    return asyncio.run(read_for(base, uri, clients, seconds))


# --- the run -------------------------------------------------------------------------------


def percentile(latencies: list[float], q: int) -> float:
    if len(latencies) < 2:
        return latencies[0] if latencies else float("nan")
    return statistics.quantiles(latencies, n=100, method="inclusive")[q - 1]


def run(
    clients: list[int],
    comments: int = COMMENTS,
    reply_share: float = REPLY_SHARE,
    seed: int = SEED,
) -> dict[str, Any]:
    """Isso's posts/s and latency per concurrency level, and its full-thread read latency."""
    isso = ensure_isso()
    planned = plan(comments, reply_share, seed)
    posts: dict[str, dict[str, float | int]] = {}
    read: dict[str, float | int] = {}
    spawn = multiprocessing.get_context("spawn")
    with (
        running_isso(isso) as base,
        ProcessPoolExecutor(max_workers=1, mp_context=spawn) as driver,
    ):
        for level in clients:
            uri = f"/post-{level}"
            posted = driver.submit(drive_posts, base, uri, planned, level).result()
            posts[str(level)] = {
                "posts_per_s": len(posted.latencies) / posted.seconds,
                "p50_ms": percentile(posted.latencies, 50),
                "p99_ms": percentile(posted.latencies, 99),
                "accepted": len(posted.latencies),
                "refused": posted.refused,
            }
            if not read:  # the database holds this thread only
                got = driver.submit(drive_reads, base, uri, READS, READ_WARMUP).result()
                read = {
                    "p50_ms": percentile(got.latencies, 50),
                    "p99_ms": percentile(got.latencies, 99),
                    "comments": got.comments,
                }
    return {"version": installed_version(VENV / "bin" / "python"), "posts": posts, "read": read}


def read_rate(
    comments: int, clients: int, seconds: float, reply_share: float = REPLY_SHARE
) -> dict[str, Any]:
    """The hot story on Isso: one thread of `comments` (the shared plan, posted by 64
    clients), then read whole by `clients` concurrent readers for `seconds`."""
    isso = ensure_isso()
    planned = plan(comments, reply_share, SEED)
    spawn = multiprocessing.get_context("spawn")
    with (
        running_isso(isso) as base,
        ProcessPoolExecutor(max_workers=1, mp_context=spawn) as driver,
    ):
        posted = driver.submit(drive_posts, base, "/hot", planned, 64).result()
        got = driver.submit(drive_read_for, base, "/hot", clients, seconds).result()
    return {
        "version": installed_version(VENV / "bin" / "python"),
        "posted": len(posted.latencies),
        "comments": got.comments,
        "clients": clients,
        "reads": len(got.latencies),
        "reads_per_s": len(got.latencies) / got.seconds,
        "p50_ms": percentile(got.latencies, 50),
        "p99_ms": percentile(got.latencies, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,16,64", help="concurrency levels, e.g. 1,16,64")
    parser.add_argument("--comments", type=int, default=COMMENTS)
    parser.add_argument("--reply-share", type=float, default=REPLY_SHARE)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    levels = [int(level) for level in args.clients.split(",")]
    print(json.dumps(run(levels, args.comments, args.reply_share, args.seed), indent=2))


if __name__ == "__main__":
    main()
