"""What one `GET /metrics` costs the database, with a large outbox and many threads.

Fills a fresh database with `--rows` outbox rows (all but 1% sent, and all but 1% of those
older than the outbox retention) and `--threads` thread streams (1% of them behind their
projections), then scrapes the in-process API: sequential scrapes (statements and time
each), and `--concurrent` scrapes at once (statements in all, wall time). With
`--prune` it then runs the retention job and measures again.

    .venv/bin/python bench/scrape_cost.py                      # PostgreSQL
    .venv/bin/python bench/scrape_cost.py --sqlite --prune
    .venv/bin/python bench/scrape_cost.py --cache-seconds 0     # every scrape reads

Uses the database `chorus_bench_scrape` (created afresh, dropped at the end) and the Redis named by
`CHORUS_BENCH_REDIS_URL` (default database 14, as `make bench`).
"""

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.api.app import create_app
from shared.db import create_db_engine
from shared.migrate import upgrade
from shared.notification_tables import email_outbox, notification_checkpoints
from shared.projection_tables import LIVE
from shared.settings import Settings

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE = "chorus_bench_scrape"
REDIS_URL = os.environ.get("CHORUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
CHUNK = 10_000


def fresh_database(sqlite: bool, folder: str) -> str:
    if sqlite:
        return f"sqlite:///{folder}/scrape.db"
    drop_database()
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()
    return str(sa.make_url(ADMIN_URL).set(database=DATABASE).render_as_string(False))


def drop_database() -> None:
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
    admin.dispose()


def chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def fill(url: str, rows: int, threads: int, retention_days: int) -> None:
    engine = create_db_engine(url)
    now = datetime.now(UTC)
    old = now - timedelta(days=retention_days + 1)

    def outbox() -> Iterator[dict[str, Any]]:
        for n in range(rows):
            status = "pending" if n % 100 == 0 else "sent"
            due = now - timedelta(minutes=5) if n % 100 == 1 or status == "pending" else old
            yield {
                "recipient_id": f"user-{n % 5000}",
                "comment_id": f"c-{n}",
                "frequency": "immediate",
                "status": status,
                "due_at": due,
                "attempts": 1,
                "sent_at": due if status == "sent" else None,
                "created_at": due,
            }

    def streams() -> Iterator[dict[str, Any]]:
        for n in range(threads):
            yield {"stream_id": f"thread-{n}", "version": 3}

    def checkpoints() -> Iterator[dict[str, Any]]:
        for n in range(threads):
            version = 2 if n % 100 == 0 else 3  # 1% of threads one event behind
            yield {"thread_id": f"thread-{n}", "version": version, "position": n, "updated_at": now}

    def behind_events() -> Iterator[dict[str, Any]]:
        for n in range(0, threads, 100):
            yield {
                "stream_id": f"thread-{n}",
                "version": 3,
                "event_id": str(uuid.uuid4()),
                "type": "CommentPosted",
                "schema_version": 1,
                "data": {},
                "metadata": {},
                "recorded_at": now - timedelta(seconds=30),
            }

    streams_table = sa.table("streams", sa.column("stream_id"), sa.column("version"))
    events_table = sa.Table("events", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        for batch in chunks(outbox()):
            conn.execute(email_outbox.insert(), batch)
        for batch in chunks(streams()):
            conn.execute(streams_table.insert(), batch)
        for table in (LIVE.checkpoints, notification_checkpoints):
            for batch in chunks(checkpoints()):
                conn.execute(table.insert(), batch)
        for batch in chunks(behind_events()):
            conn.execute(events_table.insert(), batch)
    if url.startswith("postgresql"):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def measure(client: TestClient, label: str, sequential: int, concurrent: int) -> None:
    engine = client.app.state.services.engine  # type: ignore[attr-defined]
    statements = 0
    lock = threading.Lock()

    def count(*_: Any) -> None:
        nonlocal statements
        with lock:
            statements += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        timings, counts = [], []
        for _ in range(sequential):
            before, started = statements, time.perf_counter()
            assert client.get("/metrics").status_code == 200
            timings.append(time.perf_counter() - started)
            counts.append(statements - before)
        before = statements
        barrier = threading.Barrier(concurrent)

        def scrape() -> None:
            barrier.wait()
            assert client.get("/metrics").status_code == 200

        workers = [threading.Thread(target=scrape) for _ in range(concurrent)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        wall = time.perf_counter() - started
        together = statements - before
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    print(
        f"{label}: {sequential} scrapes one after another: statements {counts}, "
        f"median {statistics.median(timings) * 1000:.1f} ms (max {max(timings) * 1000:.1f}); "
        f"{concurrent} at once: {together} statements, {wall * 1000:.1f} ms wall"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=20_000)
    parser.add_argument("--sequential", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--prune", action="store_true", help="then prune and measure again")
    parser.add_argument(
        "--cache-seconds", type=float, default=None, help="CHORUS_METRICS_CACHE_SECONDS"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = fresh_database(args.sqlite, folder)
        upgrade(url)
        settings = Settings(
            database_url=url,
            redis_url=REDIS_URL,
            jwt_secret="bench-scrape-secret-0123456789abcdef",
            rate_limit_enabled=False,
        )
        if args.cache_seconds is not None:
            settings = settings.model_copy(update={"metrics_cache_seconds": args.cache_seconds})
        started = time.perf_counter()
        fill(url, args.rows, args.threads, settings.outbox_retention_days)
        kind = "sqlite" if args.sqlite else "postgresql"
        print(
            f"{kind}: {args.rows} outbox rows, {args.threads} threads in "
            f"{time.perf_counter() - started:.1f} s"
        )
        with TestClient(create_app(settings)) as client:
            measure(client, f"{args.rows} rows", args.sequential, args.concurrent)
        if args.prune:
            from services.worker.retention import prune_expired

            engine = create_db_engine(url)
            started = time.perf_counter()
            summary = prune_expired(engine, settings, max_chunks=10_000)
            print(f"pruned {summary.outbox_rows} rows in {time.perf_counter() - started:.1f} s")
            if not args.sqlite:
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.exec_driver_sql("VACUUM ANALYZE")
            engine.dispose()
            with TestClient(create_app(settings)) as client:
                measure(client, "after pruning", args.sequential, args.concurrent)
        if not args.sqlite:
            drop_database()


if __name__ == "__main__":
    main()
