"""A commit stalled behind the append lock (held by another connection, as a long
migration or a stuck writer would): liveness still answers at once, every write answers
503 `busy` with Retry-After within the write timeout, and none of them is committed
later (decision 17).

More writers than the server's thread pool has threads (40), so a write that held a
pool thread while it waited would starve `/healthz`.
"""

import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import sqlalchemy as sa

from shared.db import create_db_engine, write_transaction
from shared.store import EventStore, lock_appends
from shared.tokens import mint_token
from tests.e2e.conftest import CHORUS, JWT_SECRET, running_api

WRITE_TIMEOUT = 1.0
# Generous for a loaded two-core machine; before decision 17 writes waited for ever.
ANSWER_WITHIN = WRITE_TIMEOUT + 3
WRITERS = 50
HEALTHZ_WITHIN = 1.0


@contextmanager
def append_lock_held(database_url: str) -> Iterator[None]:
    """The append lock, held by a transaction of another process: on PostgreSQL the
    advisory lock (`shared.store.APPEND_LOCK_KEY`), on SQLite the write lock."""
    engine = create_db_engine(database_url)
    try:
        with write_transaction(engine) as conn:
            lock_appends(conn)
            yield
    finally:
        engine.dispose()


def bodies_in_log(engine: sa.Engine) -> list[str]:
    return [e.data["body"] for e in EventStore(engine).read_all(0) if e.type == "CommentPosted"]


def test_a_stalled_commit_answers_busy_in_time_and_liveness_never_waits(
    chorus_env: dict[str, str], database_url: str
) -> None:
    env = {**chorus_env, "CHORUS_WRITE_TIMEOUT_SECONDS": str(WRITE_TIMEOUT)}
    subprocess.run([*CHORUS, "migrate"], env=env, check=True, capture_output=True)
    token = mint_token(JWT_SECRET, sub="ann", name="Ann")
    headers = {"Authorization": f"Bearer {token}"}
    engine = create_db_engine(database_url)

    def post(http: httpx.Client, body: str) -> tuple[httpx.Response, float]:
        began = time.monotonic()
        response = http.post("/v1/threads/t1/comments", json={"body": body}, headers=headers)
        return response, time.monotonic() - began

    with (
        running_api(env) as base,
        httpx.Client(base_url=base, timeout=ANSWER_WITHIN + 5) as http,
        ThreadPoolExecutor(WRITERS) as pool,
    ):
        assert post(http, "before the stall")[0].status_code == 201
        with append_lock_held(database_url):
            stalled: list[Future[tuple[httpx.Response, float]]] = [
                pool.submit(post, http, f"stalled {n}") for n in range(WRITERS)
            ]
            probes = []
            while not all(f.done() for f in stalled):
                began = time.monotonic()
                alive = httpx.get(f"{base}/healthz", timeout=ANSWER_WITHIN)
                probes.append((alive.status_code, time.monotonic() - began))
                time.sleep(0.05)  # pacing only: a probe every 50 ms
            answers = [f.result(timeout=ANSWER_WITHIN) for f in stalled]
        after = post(http, "after the stall")[0]

    try:
        refused = [(r.status_code, r.json()["error"]["code"]) for r, _ in answers]
        assert refused == [(503, "busy")] * WRITERS
        assert all(int(r.headers["Retry-After"]) >= 1 for r, _ in answers)
        slowest = max(seconds for _, seconds in answers)
        assert slowest < ANSWER_WITHIN, f"a write waited {slowest:.2f} s"
        assert len(probes) >= 3
        assert all(status == 200 for status, _ in probes)
        slowest_probe = max(seconds for _, seconds in probes)
        assert slowest_probe < HEALTHZ_WITHIN, f"/healthz took {slowest_probe:.2f} s"
        # Told "busy", none of them was committed after all; the next write goes through.
        assert after.status_code == 201
        assert bodies_in_log(engine) == ["before the stall", "after the stall"]
    finally:
        engine.dispose()
