"""Folding throughput: events/s one worker folds, on PostgreSQL and SQLite.

Writes a log straight through the store (posts, nested replies, likes, edits, deletes on a
few threads), then times `fold_thread` over all of it in fresh projection tables.

    .venv/bin/python bench/fold_throughput.py --events 20000
    .venv/bin/python bench/fold_throughput.py --events 20000 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/chorus_bench
"""

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from services.worker.folding import fold_thread
from shared import events as ev
from shared.db import create_db_engine
from shared.ids import new_id
from shared.migrate import upgrade
from shared.projection_tables import thread_tables
from shared.store import EventStore, NewEvent

MARKDOWN_BODY = "A considered reply with *emphasis*, a [link](https://example.com) and `code`."
PROSE_BODY = (
    "My grandfather was there in 1953 and never spoke of it.\n\n"
    "Thank you for writing this; it made me call my mother."
)


def write_log(
    store: EventStore, threads: int, events: int, rng: random.Random, markdown_share: float
) -> None:
    """Append `events` events across `threads` streams, in chunks of 500 per append."""
    per_thread = events // threads
    for t in range(threads):
        stream = f"bench-{t}-{new_id()}"
        comments: list[str] = []
        pending: list[NewEvent] = [NewEvent.of(ev.ThreadRegistered(title=f"Post {t}"))]
        version = 0
        for _ in range(per_thread - 1):
            roll = rng.random()
            if comments and roll < 0.15:
                event: ev.DomainEvent = ev.CommentLiked(
                    comment_id=rng.choice(comments), user_id=new_id()
                )
            elif comments and roll < 0.2:
                event = ev.CommentEdited(comment_id=rng.choice(comments), body=PROSE_BODY + " Edit")
            else:
                parent = rng.choice(comments[-50:]) if comments and roll < 0.7 else None
                comment_id = new_id()
                comments.append(comment_id)
                author = ev.Author(id=f"u{rng.randrange(500)}", name="Reader")
                body = MARKDOWN_BODY if rng.random() < markdown_share else PROSE_BODY
                event = ev.CommentPosted(
                    comment_id=comment_id, parent_id=parent, author=author, body=body
                )
            pending.append(NewEvent.of(event))
            if len(pending) == 500:
                store.append(stream, pending, version)
                version += len(pending)
                pending = []
        store.append(stream, pending, version)


def run(database_url: str, events: int, threads: int, repeats: int, markdown_share: float) -> None:
    upgrade(database_url)
    engine = create_db_engine(database_url)
    store = EventStore(engine)
    with engine.connect() as conn:
        before = set(conn.execute(sa.text("SELECT stream_id FROM streams")).scalars())
    write_log(store, threads, events, random.Random(1), markdown_share)
    with engine.connect() as conn:
        streams = sorted(
            set(conn.execute(sa.text("SELECT stream_id FROM streams")).scalars()) - before
        )
    rates = []
    for attempt in range(repeats):
        tables = thread_tables(sa.MetaData(), f"bench{attempt}_")
        with engine.begin() as conn:
            for table in tables.all():
                table.drop(conn, checkfirst=True)
                table.create(conn)
        started = time.perf_counter()
        folded = sum(fold_thread(engine, store, s, tables=tables).applied for s in streams)
        elapsed = time.perf_counter() - started
        rates.append(folded / elapsed)
        with engine.begin() as conn:
            for table in tables.all():
                table.drop(conn)
    print(
        f"{engine.dialect.name}: folded {folded} events in {len(streams)} threads "
        f"({markdown_share:.0%} of comments with markdown); "
        f"median {statistics.median(rates):,.0f} events/s over {repeats} runs "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f})"
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--markdown-share", type=float, default=0.3, help="share of comments using markdown"
    )
    args = parser.parse_args()
    options = (args.events, args.threads, args.repeats, args.markdown_share)
    if args.database_url:
        run(args.database_url, *options)
        return
    with tempfile.TemporaryDirectory() as scratch:
        run(f"sqlite:///{Path(scratch) / 'bench.db'}", *options)


if __name__ == "__main__":
    main()
