"""Replies nest at most MAX_DEPTH levels: the cost of each reply is bounded.

The write side (`comment_state.depth`, migration 0005) knows each comment's depth, so the
post handler refuses a deeper reply before it appends anything.
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.worker.folding import fold_thread
from shared.db import create_db_engine
from shared.handlers import MAX_DEPTH
from shared.migrate import alembic_config, upgrade
from shared.store import EventStore
from tests.integration.conftest import Auth


def reply(client: TestClient, auth: Auth, parent: str | None, user: str = "ann") -> dict:
    return client.post(
        "/v1/threads/deep/comments",
        json={"body": "and another thing", "parent_id": parent},
        headers=auth(user),
    ).json()


def test_a_reply_at_the_cap_is_refused_and_one_level_above_is_accepted(
    client: TestClient,
    auth: Auth,
    event_count: Callable[[], int],
    engine: Engine,
    store: EventStore,
) -> None:
    chain = [reply(client, auth, None)["id"]]
    while len(chain) < MAX_DEPTH:  # depths 0 .. MAX_DEPTH - 1
        chain.append(reply(client, auth, chain[-1])["id"])
    before = event_count()

    too_deep = client.post(
        "/v1/threads/deep/comments",
        json={"body": "one level too far", "parent_id": chain[-1]},
        headers=auth("bob"),
    )

    assert too_deep.status_code == 422, too_deep.text
    assert too_deep.json()["error"]["code"] == "too_deep"
    assert str(MAX_DEPTH) in too_deep.json()["error"]["message"]
    assert event_count() == before, "a refused reply appends nothing"

    accepted = client.post(
        "/v1/threads/deep/comments",
        json={"body": "a sibling at the deepest level", "parent_id": chain[-2]},
        headers=auth("bob"),
    )
    assert accepted.status_code == 201, accepted.text
    assert event_count() == before + 1

    fold_thread(engine, store, "deep")
    shown = client.get(f"/v1/comments/{accepted.json()['id']}")
    assert shown.json()["depth"] == MAX_DEPTH - 1


def test_migration_0005_backfills_the_depth_of_existing_comments(unmigrated_url: str) -> None:
    upgrade(unmigrated_url, "0004")
    # Comments as 0001-0004 stored them: a chain deeper than the cap (comments already
    # that deep stay; only new replies are refused), siblings, and two threads.
    parents: dict[str, str | None] = {"a0": None, "b0": None, "b1": "b0", "b2": "b0"}
    for depth in range(1, MAX_DEPTH + 10):
        parents[f"a{depth}"] = f"a{depth - 1}"
    parents["b3"] = "b2"
    parents["t2"] = None
    parents["t2-reply"] = "t2"
    engine = create_db_engine(unmigrated_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO comment_state (comment_id, thread_id, author_id, parent_id,"
                " deleted, like_count) VALUES (:id, :thread, 'ann', :parent, :deleted, 0)"
            ),
            [
                {
                    "id": comment,
                    "thread": "t2" if comment.startswith("t2") else "t1",
                    "parent": parent,
                    "deleted": comment == "b0",
                }
                for comment, parent in reversed(parents.items())  # children before parents
            ],
        )

    upgrade(unmigrated_url)

    with engine.connect() as conn:
        depths = dict(conn.execute(sa.text("SELECT comment_id, depth FROM comment_state")).all())
        indexes = sa.inspect(conn).get_indexes("comment_state")
        tables = sa.inspect(conn).get_table_names()
    engine.dispose()
    expected = {f"a{d}": d for d in range(MAX_DEPTH + 10)}
    expected |= {"b0": 0, "b1": 1, "b2": 1, "b3": 2, "t2": 0, "t2-reply": 1}
    assert depths == expected
    # The backfill's index and table are gone (0009's author index is not the backfill's).
    assert [index["name"] for index in indexes] == ["ix_comment_state_author_id"]
    assert "comment_depth_backfill" not in tables


def test_migration_0005_downgrades_and_upgrades_again(unmigrated_url: str) -> None:
    upgrade(unmigrated_url)
    command.downgrade(alembic_config(unmigrated_url), "0004")
    engine = create_db_engine(unmigrated_url)
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("comment_state")}
    engine.dispose()
    assert "depth" not in columns
    upgrade(unmigrated_url)
