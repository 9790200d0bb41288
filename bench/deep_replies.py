"""What one reply costs the fold at the bottom of a chain of replies, by depth.

Each reply updates the descendant count of every ancestor and stores its ancestor path, so
the cost of a reply grows with its depth (and a chain's stored paths with the square of
it). The post handler caps the depth (`shared.handlers.MAX_DEPTH`); this measures a reply
at the cap against one at the bottom of the deep chains the API accepted before.

The chain is appended straight through the store (the handler would refuse the deep one),
folded, then replies are posted one at a time at the deepest level and each is folded by
what the fold job runs (both projections, one transaction), timed with `perf_counter`.

    .venv/bin/python bench/deep_replies.py                      # temporary SQLite file
    .venv/bin/python bench/deep_replies.py \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/chorus_bench_deep
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from services.worker.folding import fold_all, thread_projection
from services.worker.notification_projector import notification_projection
from shared import events as ev
from shared.db import create_db_engine
from shared.handlers import MAX_DEPTH
from shared.ids import new_id
from shared.migrate import upgrade
from shared.projection_tables import LIVE
from shared.store import EventStore, NewEvent

BODY = "Not quite: the second paragraph says otherwise."


def posted(comment_id: str, parent: str | None, depth: int) -> NewEvent:
    author = ev.Author(id=f"u{depth % 2}", name="Reader")  # two people answering each other
    return NewEvent.of(
        ev.CommentPosted(comment_id=comment_id, parent_id=parent, author=author, body=BODY)
    )


def fold(engine: sa.Engine, store: EventStore, thread: str) -> None:
    fold_all(engine, store, thread, [thread_projection(), notification_projection()])


def measure(engine: sa.Engine, store: EventStore, depth: int, replies: int) -> dict[str, float]:
    """Build a chain of comments at depths 0 .. `depth` - 2, then time `replies` replies to
    its deepest comment: each sits at depth `depth` - 1 (the deepest the cap allows when
    `depth` is MAX_DEPTH) and has `depth` - 1 ancestors to update."""
    thread = f"deep-{depth}-{new_id()}"
    chain: list[str] = []
    pending = [NewEvent.of(ev.ThreadRegistered(title=f"{depth} deep"))]
    version = 0
    for level in range(depth - 1):
        comment_id = new_id()
        pending.append(posted(comment_id, chain[-1] if chain else None, level))
        chain.append(comment_id)
        if len(pending) >= 500:
            version = store.append(thread, pending, version)[-1].version
            pending = []
    if pending:
        store.append(thread, pending, version)
    fold(engine, store, thread)

    timings = []
    for _ in range(replies):
        version = store.stream_version(thread)
        store.append(thread, [posted(new_id(), chain[-1], depth - 1)], version)
        started = time.perf_counter()
        fold(engine, store, thread)
        timings.append(time.perf_counter() - started)

    with engine.connect() as conn:
        path_bytes = conn.execute(
            sa.select(sa.func.sum(sa.func.length(LIVE.comments.c.path))).where(
                LIVE.comments.c.thread_id == thread
            )
        ).scalar_one()
    return {
        "median_ms": statistics.median(timings) * 1000,
        "p90_ms": sorted(timings)[int(len(timings) * 0.9)] * 1000,
        "path_kb": path_bytes / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a database to migrate and use (default: SQLite)")
    parser.add_argument("--depths", default=f"2,{MAX_DEPTH},500,2000")
    parser.add_argument("--replies", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{Path(scratch) / 'deep.db'}"
        upgrade(url)
        engine = create_db_engine(url)
        store = EventStore(engine)
        print(f"{engine.dialect.name}: one reply folded (both projections) at depth d - 1")
        print(f"{'d':>6} {'median ms':>10} {'p90 ms':>8} {'paths KB':>10}")
        for depth in (int(d) for d in args.depths.split(",")):
            figures = measure(engine, store, depth, args.replies)
            print(
                f"{depth:>6} {figures['median_ms']:>10.1f} {figures['p90_ms']:>8.1f}"
                f" {figures['path_kb']:>10.0f}"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
