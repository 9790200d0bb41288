"""Notification fan-out: notifications created per second, and the cost of one comment in a
conversation with many earlier participants.

Writes a conversation of N participants (one top-level comment, N-1 replies by distinct
readers) to the log, sets up its fold state, then times the real fold of one more reply,
which notifies all N earlier participants and queues their emails.

    .venv/bin/python bench/notification_fanout.py --participants 1000 10000
    .venv/bin/python bench/notification_fanout.py --participants 1000 10000 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/chorus_bench_fanout
"""

import argparse
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from services.worker.folding import fold
from services.worker.notification_projector import notification_projection
from shared import events as ev
from shared.db import create_db_engine
from shared.ids import new_id
from shared.migrate import upgrade
from shared.notification_tables import (
    conversation_participants,
    notification_checkpoints,
    notification_comments,
    notifications,
)
from shared.store import EventStore, NewEvent

BODY = "Thank you for writing this; it made me call my mother."


def posted(comment_id: str, parent: str | None, user: str) -> NewEvent:
    author = ev.Author(id=user, name=user.title())
    return NewEvent.of(
        ev.CommentPosted(comment_id=comment_id, parent_id=parent, author=author, body=BODY)
    )


def measure(database_url: str, participants: int) -> None:
    engine = create_db_engine(database_url)
    store = EventStore(engine)
    thread = f"fanout-{participants}-{new_id()}"
    top = new_id()
    batch = [NewEvent.of(ev.ThreadRegistered(title="Fan-out")), posted(top, None, "op")]
    version = 0
    for i in range(participants - 1):
        batch.append(posted(new_id(), top, f"reader{i}"))
        if len(batch) == 1000:
            store.append(thread, batch, version)
            version += len(batch)
            batch = []
    store.append(thread, batch, version)
    version += len(batch)

    # Setting the scene: folding the conversation itself would create N*(N-1)/2
    # notifications (every reply notifies every earlier participant), so its fold state
    # is written directly; only the last reply below goes through the real fold.
    head = store.read_stream(thread, after_version=version - 1)[0]
    users = ["op"] + [f"reader{i}" for i in range(participants - 1)]
    with engine.begin() as conn:
        conn.execute(
            conversation_participants.insert(),
            [{"root_id": top, "user_id": u, "thread_id": thread} for u in users],
        )
        conn.execute(
            notification_comments.insert(),
            [{"comment_id": top, "thread_id": thread, "root_id": top, "author_id": "op"}],
        )
        conn.execute(
            notification_checkpoints.insert().values(
                thread_id=thread,
                version=version,
                position=head.position,
                updated_at=head.recorded_at,
            )
        )
    projection = notification_projection()
    store.append(thread, [posted(new_id(), top, "latecomer")], version)
    started = time.perf_counter()
    fold(engine, store, thread, projection)
    one = time.perf_counter() - started
    with engine.connect() as conn:
        created = conn.execute(
            sa.select(sa.func.count()).where(notifications.c.thread_id == thread)
        ).scalar_one()
    print(
        f"| {engine.dialect.name} | {participants:,} | {created:,} | {one * 1000:,.0f} ms "
        f"| {created / one:,.0f} |"
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--participants", type=int, nargs="+", default=[1000, 10_000])
    args = parser.parse_args()
    print("| database | earlier participants | notifications | fold of one reply | per second |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{Path(scratch) / 'fanout.db'}"
        upgrade(url)
        for participants in args.participants:
            measure(url, participants)


if __name__ == "__main__":
    main()
