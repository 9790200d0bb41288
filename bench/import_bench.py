"""`chorus import` into PostgreSQL: comments/s until readable, and the import's peak RSS.

A synthetic Disqus-like export (or, with `--file`, a real one through the disqus reader)
is imported by a child process (its peak RSS is its own: VmHWM), folding as it goes
(`--fold here`: the importer folds each batch itself; `--fold workers`: it nudges, and
`--workers N` `chorus worker` processes fold). Readable: every thread's fold checkpoints
(threads and notifications) at the head of its stream. The ceiling, in the same run:
PostgreSQL's raw COPY of the same rows (events, comment_state, comment_view) into
copies of those tables with the same indexes.

    .venv/bin/python bench/import_bench.py --comments 100000 --fold here
    .venv/bin/python bench/import_bench.py --comments 1000000 --fold workers --workers 2
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from processes import stop
from stack import JWT_SECRET, REPO, Services, flushed_redis, fresh_database, spawn

BODY = (
    "I read this twice. The part about the *harbour* reminded me of [the old map]"
    "(https://example.com/map), and of my grandfather, who sailed from there in 1953.\n\n"
    "Thank you for writing it."
)


@dataclass
class SyntheticDisqus:
    """`comments` comments in threads of 1 to 60 (about 20), nested as people reply:
    half top-level, the rest to a recent comment; 3% deleted, some likes. Regenerated
    identically on every read, so memory holds one thread at a time."""

    comments: int
    seed: int = 13
    name: str = "disqus"

    def threads(self) -> Iterator[object]:
        from services.worker.imports.model import SourceAuthor, SourceComment, SourceThread

        start = datetime(2012, 1, 1, tzinfo=UTC)
        left, index = self.comments, 0
        while left > 0:
            rng = random.Random(self.seed * 1_000_003 + index)
            size = min(left, rng.randint(1, 39))
            at = start + timedelta(hours=index)
            made: list[SourceComment] = []
            for i in range(size):
                parent = None
                if made and rng.random() < 0.5:
                    parent = made[max(0, len(made) - 1 - int(rng.expovariate(0.5)))].key
                who = rng.randrange(20_000)
                made.append(
                    SourceComment(
                        key=f"{index}-{i}",
                        parent_key=parent,
                        author=SourceAuthor(f"import:disqus:u{who}", f"Reader {who}"),
                        body=BODY,
                        posted_at=at + timedelta(minutes=i),
                        deleted=rng.random() < 0.03,
                        likes=rng.choice((0, 0, 0, 1, 2, 5)),
                    )
                )
            yield SourceThread(
                key=f"t{index}",
                identifier=f"post-{index}",
                url=f"https://blog.example/{index}",
                title=f"Post {index}",
                comments=made,
            )
            left -= size
            index += 1


def child(args: argparse.Namespace) -> None:
    """The import itself, in a process of its own; prints its figures as JSON."""
    from services.worker.imports.engine import Importer
    from services.worker.imports.folds import FoldHere, NudgeFolds, no_folds
    from services.worker.imports.formats import close_source, open_source
    from shared.db import create_db_engine
    from shared.store import EventStore

    engine = create_db_engine(args.database_url, pool_size=2)
    source = open_source("disqus", Path(args.file)) if args.file else SyntheticDisqus(args.comments)
    if args.fold == "here":
        after = FoldHere(engine, EventStore(engine))
    elif args.fold == "workers":
        from redis import Redis

        after = NudgeFolds(Redis.from_url(args.redis_url))
    else:
        after = no_folds
    started = time.perf_counter()
    importer = Importer(
        engine,
        source,  # type: ignore[arg-type]
        after_batch=after,
        batch_comments=args.batch,
        render_processes=args.render_processes,
        fold_new_threads=not args.no_fresh_fold,
    )
    try:
        report = importer.run()
    finally:
        close_source(source)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "comments": report.comments_imported,
                "threads": report.threads_imported,
                "events": report.events_appended,
                "peak_rss_mb": _vm_hwm_mb(),
            }
        )
    )


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def readable(engine: sa.Engine) -> bool:
    """Every thread's checkpoints, in both projections, at the head of its stream."""
    query = sa.text(
        "SELECT count(*) FROM streams s"
        " LEFT JOIN thread_checkpoints t ON t.thread_id = s.stream_id"
        " LEFT JOIN notification_checkpoints n ON n.thread_id = s.stream_id"
        " WHERE s.stream_id NOT LIKE '~%%'"
        " AND (t.version IS DISTINCT FROM s.version OR n.version IS DISTINCT FROM s.version)"
    )
    with engine.connect() as conn:
        return conn.execute(query).scalar() == 0


CEILING_TABLES = ("events", "comment_state", "comment_view")


def ceiling(database_url: str) -> dict[str, float]:
    """Raw COPY of the rows the import and its fold wrote, into copies of their tables."""
    import psycopg

    dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    figures: dict[str, float] = {}
    with psycopg.connect(dsn) as conn:
        total = 0.0
        for table in CEILING_TABLES:
            with tempfile.TemporaryFile() as dump:
                with conn.cursor().copy(f"COPY {table} TO STDOUT") as copy:
                    for chunk in copy:
                        dump.write(chunk)
                dump.seek(0)
                conn.execute(f"CREATE TABLE ceiling_{table} (LIKE {table} INCLUDING ALL)")
                conn.commit()
                started = time.perf_counter()
                with conn.cursor().copy(f"COPY ceiling_{table} FROM STDIN") as copy:
                    while data := dump.read(1 << 20):
                        copy.write(data)
                conn.commit()
                seconds = time.perf_counter() - started
                figures[f"copy_{table}_seconds"] = round(seconds, 2)
                total += seconds
                conn.execute(f"DROP TABLE ceiling_{table}")
                conn.commit()
        figures["copy_all_seconds"] = round(total, 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=100_000)
    parser.add_argument("--file", help="a Disqus export to import instead of synthetic threads")
    parser.add_argument("--fold", choices=("here", "workers", "none"), default="here")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument(
        "--no-fresh-fold", action="store_true", help="leave new threads to --fold as well"
    )
    parser.add_argument("--render-processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--postgres-url", default=Services.postgres_url)
    parser.add_argument("--database", default="chorus_bench_import")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--profile", help="write the import process's cProfile here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    services = Services(args.postgres_url, args.database, args.redis_url)
    with fresh_database(services) as url, flushed_redis(args.redis_url):
        env = {
            **os.environ,
            "CHORUS_DATABASE_URL": url,
            "CHORUS_REDIS_URL": args.redis_url,
            "CHORUS_JWT_SECRET": JWT_SECRET,
            "CHORUS_SMTP_URL": f"file://{tempfile.mkdtemp(prefix='chorus-bench-')}",
        }
        workers = []
        logs = []
        if args.fold == "workers":
            for _ in range(args.workers):
                logs.append(tempfile.TemporaryFile())  # noqa: SIM115
                workers.append(spawn(["worker"], env, logs[-1]))
        try:
            profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
            command = [sys.executable, *profile, __file__, "--child", "--database-url", url]
            command += ["--fold", args.fold, "--comments", str(args.comments)]
            command += ["--batch", str(args.batch), "--redis-url", args.redis_url]
            command += ["--render-processes", str(args.render_processes)]
            if args.no_fresh_fold:
                command.append("--no-fresh-fold")
            if args.file:
                command += ["--file", args.file]
            started = time.perf_counter()
            cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, check=False)
            cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if done.returncode != 0:
                sys.exit(done.stderr.decode()[-3000:])
            figures = json.loads(done.stdout.decode().strip().splitlines()[-1])
            engine = sa.create_engine(url)
            while args.fold != "none" and not readable(engine):
                time.sleep(0.2)
            until_readable = time.perf_counter() - started
            engine.dispose()
        finally:
            for worker in workers:
                stop(worker)
            for log in logs:
                log.close()
        figures["until_readable_seconds"] = round(until_readable, 2)
        figures["comments_per_second_until_readable"] = round(figures["comments"] / until_readable)
        figures["import_seconds"] = round(figures.pop("seconds"), 2)
        # The import process and the processes it waited for (rendering, the reader's
        # conversion): CPU per comment, PostgreSQL's own not included.
        cpu = sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("ru_utime", "ru_stime"))
        figures["import_cpu_us_per_comment"] = round(cpu / max(1, figures["comments"]) * 1e6)
        figures.update(ceiling(url))
        figures["ceiling_comments_per_second"] = round(
            figures["comments"] / figures["copy_all_seconds"]
        )
        figures["fold"] = args.fold + (" (no fresh fold)" if args.no_fresh_fold else "")
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
