"""This machine's ceilings, measured in the same run as Chorus: what no server here can beat.

- `pg_commits_per_s_1`, `pg_commits_per_s_4`: PostgreSQL single-row transactions (INSERT one
  row, COMMIT) per second from 1 and from 4 connections (one thread each; psycopg releases
  the GIL while it waits), into a scratch table of the given database, dropped afterwards.
  Every commit waits for its WAL flush, as each Chorus append does.
- `redis_ops_per_s`: SET/GET round trips per second from one client;
  `redis_pipelined_ops_per_s`: the same commands sent `PIPELINE` at a time.
- `fastapi_noio_posts_per_s`: a FastAPI app with one POST route (a pydantic body in, JSON
  out, a plain `def` run in the thread pool like Chorus' routes) and no I/O, served by
  uvicorn as `chorus api` serves (uvloop, httptools, no access log) with `api_workers`
  processes, driven over HTTP by aiohttp from a separate process with 64 connections.
  Driver and server share the machine's 2 cores, as in the Chorus and Isso runs.

The same app also answers `GET /notes` with 304 to its one ETag (a plain `def` route with
a header parameter, no I/O): bench/hot_story.py drives it with its own readers
(`running_noio`) for the ceiling of Chorus' conditional reads.

Each measurement runs for `seconds` after a short warm-up and counts what completed inside.

    .venv/bin/python bench/ceilings.py --pg-dsn postgresql://postgres@127.0.0.1:5432/postgres \
        --redis-url redis://127.0.0.1:6379/8       # prints JSON
"""

import argparse
import asyncio
import itertools
import json
import multiprocessing
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import psycopg
import redis
from fastapi import FastAPI, Header, Response
from processes import free_port, stop, wait_until_answering
from psycopg import sql
from pydantic import BaseModel

BENCH = Path(__file__).resolve().parent
WARMUP_SECONDS = 1.0
PG_CONNECTIONS = 4
PIPELINE = 100
HTTP_CONNECTIONS = 64
NOIO_ETAG = '"notes.1"'
NOTE = {"text": "My grandfather was there in 1953 (#1)", "author": "reader-1", "parent": 7}
START_TIMEOUT = 30.0


# --- PostgreSQL ----------------------------------------------------------------------------


def libpq_dsn(dsn: str) -> str:
    """Accept SQLAlchemy's `postgresql+psycopg://` URLs as well as libpq's."""
    return dsn.replace("postgresql+psycopg://", "postgresql://", 1)


def pg_commits_per_s(dsn: str, table: str, connections: int, seconds: float) -> float:
    """Single-row INSERT + COMMIT transactions per second from `connections` threads."""
    counts = [0] * connections
    ready = threading.Barrier(connections + 1, timeout=30)
    start = threading.Event()
    timing: dict[str, float] = {}

    def commit_loop(slot: int) -> None:
        with psycopg.connect(dsn) as conn:
            insert = sql.SQL("INSERT INTO {} (payload) VALUES (%s)").format(sql.Identifier(table))
            ready.wait()
            start.wait()
            while time.perf_counter() < timing["end"]:
                conn.execute(insert, ("a comment-sized payload, about sixty characters long",))
                conn.commit()
                if time.perf_counter() >= timing["counting"]:
                    counts[slot] += 1

    threads = [threading.Thread(target=commit_loop, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    ready.wait()
    now = time.perf_counter()
    timing["counting"] = now + WARMUP_SECONDS
    timing["end"] = timing["counting"] + seconds
    start.set()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


def pg_ceilings(dsn: str, seconds: float) -> dict[str, float]:
    dsn = libpq_dsn(dsn)
    table = f"bench_ceiling_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        create = "CREATE TABLE {} (id bigserial PRIMARY KEY, payload text NOT NULL)"
        conn.execute(sql.SQL(create).format(sql.Identifier(table)))
    try:
        return {
            "pg_commits_per_s_1": pg_commits_per_s(dsn, table, 1, seconds),
            "pg_commits_per_s_4": pg_commits_per_s(dsn, table, PG_CONNECTIONS, seconds),
        }
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


# --- Redis -----------------------------------------------------------------------------------


def redis_ceilings(url: str, seconds: float) -> dict[str, float]:
    """SET/GET ops/s from one client: each a round trip, then `PIPELINE` per round trip."""
    client = redis.Redis.from_url(url)
    key = f"bench:ceilings:{secrets.token_hex(4)}"
    try:

        def round_trip() -> int:
            client.set(key, "a comment-sized value")
            client.get(key)
            return 2

        def pipelined() -> int:
            pipe = client.pipeline(transaction=False)
            for _ in range(PIPELINE // 2):
                pipe.set(key, "a comment-sized value")
                pipe.get(key)
            pipe.execute()
            return PIPELINE

        return {
            "redis_ops_per_s": ops_per_s(round_trip, seconds),
            "redis_pipelined_ops_per_s": ops_per_s(pipelined, seconds),
        }
    finally:
        client.delete(key)
        client.close()


def ops_per_s(step: Callable[[], int], seconds: float) -> float:
    deadline = time.perf_counter() + WARMUP_SECONDS
    while time.perf_counter() < deadline:
        step()
    ops = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        ops += step()
    return ops / (time.perf_counter() - started)


# --- FastAPI with no I/O -------------------------------------------------------------------


class NoteIn(BaseModel):
    text: str
    author: str
    parent: int | None = None


class NotePublic(BaseModel):
    id: int
    text: str
    author: str
    parent: int | None


def noio_app() -> FastAPI:
    """One POST route that validates its body and answers, and one GET route that answers
    304 to its ETag, touching nothing else."""
    app = FastAPI()
    ids = itertools.count(1)

    @app.post("/notes", status_code=201)
    def post_note(note: NoteIn) -> NotePublic:
        return NotePublic(id=next(ids), text=note.text, author=note.author, parent=note.parent)

    @app.get("/notes", response_model=None)
    def get_notes(
        if_none_match: str | None = Header(default=None, alias="If-None-Match"),
    ) -> Response | list[NotePublic]:
        if if_none_match == NOIO_ETAG:
            return Response(status_code=304, headers={"ETag": NOIO_ETAG})
        body = json.dumps([NotePublic(id=1, **NOTE).model_dump()])
        return Response(body, media_type="application/json", headers={"ETag": NOIO_ETAG})

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def post_for(base: str, connections: int, seconds: float) -> tuple[int, int]:
    """(201s, other answers) completed in `seconds` after warm-up, from `connections` loops."""
    counting = time.perf_counter() + WARMUP_SECONDS
    end = counting + seconds
    created = other = 0

    async def loop(session: aiohttp.ClientSession) -> None:
        nonlocal created, other
        while time.perf_counter() < end:
            async with session.post(f"{base}/notes", json=NOTE) as response:
                await response.read()
            if time.perf_counter() >= counting:
                if response.status == 201:
                    created += 1
                else:
                    other += 1

    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(loop(session) for _ in range(connections)))
    return created, other


def drive_posts(base: str, connections: int, seconds: float) -> tuple[int, int]:
    return asyncio.run(post_for(base, connections, seconds))


@contextmanager
def running_noio(api_workers: int) -> Iterator[str]:
    """The no-I/O app under uvicorn as `chorus api` serves it, until the block ends."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        *(sys.executable, "-m", "uvicorn", "ceilings:noio_app", "--factory"),
        *("--app-dir", str(BENCH), "--host", "127.0.0.1", "--port", str(port)),
        *("--workers", str(api_workers), "--no-access-log", "--log-level", "warning"),
    ]
    with tempfile.TemporaryFile() as output:
        server = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_until_answering(f"{base}/healthz", server, output, "uvicorn", START_TIMEOUT)
            time.sleep(0.5)  # the other workers finish importing
            yield base
        finally:
            stop(server)


def fastapi_ceiling(api_workers: int, seconds: float) -> dict[str, float]:
    spawn = multiprocessing.get_context("spawn")
    with (
        running_noio(api_workers) as base,
        ProcessPoolExecutor(max_workers=1, mp_context=spawn) as driver,
    ):
        created, other = driver.submit(drive_posts, base, HTTP_CONNECTIONS, seconds).result()
    if other:
        raise RuntimeError(f"the no-I/O app answered {other} requests with other than 201")
    return {"fastapi_noio_posts_per_s": created / seconds}


# --- all of them -----------------------------------------------------------------------------


def measure(
    pg_dsn: str, redis_url: str, seconds: float = 5.0, api_workers: int = 2
) -> dict[str, float]:
    """Each ceiling in turn (never two at once, so they do not compete for the cores)."""
    return {
        **pg_ceilings(pg_dsn, seconds),
        **redis_ceilings(redis_url, seconds),
        **fastapi_ceiling(api_workers, seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--api-workers", type=int, default=2)
    args = parser.parse_args()
    figures = measure(args.pg_dsn, args.redis_url, args.seconds, args.api_workers)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
