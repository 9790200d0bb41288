"""Idempotent replays are stored as versioned records that later releases still answer,
including the plain response dicts stored before records were versioned (decision 17)."""

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from shared.write_index import IdempotencyRecord
from tests.integration.conftest import Auth

KEYS = IdempotencyRecord.__table__  # type: ignore[attr-defined]


def fingerprint(command: str, **fields: Any) -> str:
    """As every release has computed it: changing it would orphan every stored key."""
    payload = json.dumps({"command": command, **fields}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def store_replay(engine: Engine, user: str, key: str, print_: str, response: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            KEYS.insert().values(
                user_id=user,
                key=key,
                fingerprint=print_,
                response=response,
                created_at=datetime.now(UTC),
            )
        )


def stored_response(engine: Engine, user: str, key: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(KEYS.c.response).where(KEYS.c.user_id == user, KEYS.c.key == key)
        ).scalar_one()


def test_a_keyed_answer_is_stored_as_a_versioned_record(
    client: TestClient, auth: Auth, engine: Engine
) -> None:
    headers = {**auth("ann"), "Idempotency-Key": "k1"}
    posted = client.post("/v1/threads/t1/comments", json={"body": "hi"}, headers=headers).json()

    assert stored_response(engine, "ann", "k1") == {"v": 1, "kind": "NewComment", "data": posted}


def test_replays_stored_before_records_were_versioned_answer_as_they_did(
    client: TestClient, auth: Auth, engine: Engine, event_count: Callable[[], int]
) -> None:
    """Rows as the previous release wrote them: the response dict itself."""
    legacy_post = {
        "id": "01legacycomment",
        "thread_id": "t1",
        "parent_id": None,
        "version": 2,
        "position": 2,
    }
    store_replay(
        engine,
        "ann",
        "old-post",
        fingerprint("PostComment", thread_id="t1", body="said before", parent_id=None),
        legacy_post,
    )
    legacy_like = {"id": "01legacycomment", "thread_id": "t1", "like_count": 3, "version": 7}
    store_replay(
        engine,
        "ann",
        "old-like",
        fingerprint("LikeComment", comment_id="01legacycomment"),
        legacy_like,
    )
    legacy_preferences = {"notify_on": "replies", "email_frequency": "daily"}
    store_replay(
        engine,
        "ann",
        "old-prefs",
        fingerprint("ChangePreferences", notify_on="replies", email_frequency="daily"),
        legacy_preferences,
    )
    store_replay(
        engine,
        "ann",
        "old-read",
        fingerprint("MarkNotificationsRead", comment_ids=["n1"], everything=False),
        {},
    )

    def keyed(key: str) -> dict[str, str]:
        return {**auth("ann"), "Idempotency-Key": key}

    post = client.post(
        "/v1/threads/t1/comments", json={"body": "said before"}, headers=keyed("old-post")
    )
    like = client.put("/v1/comments/01legacycomment/like", headers=keyed("old-like"))
    prefs = client.put(
        "/v1/me/preferences",
        json={"notify_on": "replies", "email_frequency": "daily"},
        headers=keyed("old-prefs"),
    )
    read = client.post("/v1/me/notifications/read", json={"ids": ["n1"]}, headers=keyed("old-read"))

    # Fields added since take their defaults: every comment posted then was published.
    published = {**legacy_post, "status": "published", "held_for": []}
    assert (post.status_code, post.json()) == (201, published)
    assert (like.status_code, like.json()) == (200, legacy_like)
    assert (prefs.status_code, prefs.json()) == (200, legacy_preferences)
    assert (read.status_code, read.json()) == (200, {"unread_count": 0})
    assert event_count() == 0  # replays append nothing
