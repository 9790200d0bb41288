"""Being forgotten (decision 33): after an erasure no table holds the person's name, email
or words, the log included; their comments are placeholders, others' replies stay, and a
rebuild gives the same rows.

The proof scans the whole database: PostgreSQL's `pg_dump` of the test database, and
SQLite's file and WAL (after a checkpoint) byte for byte.
"""

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.worker.folding import fold_all, thread_projection
from services.worker.notification_projector import notification_projection
from services.worker.rebuild import rebuild_notifications, rebuild_threads
from services.worker.verify import verify
from shared.notification_tables import (
    conversation_participants,
    email_outbox,
    notification_comments,
    notifications,
    thread_subscriptions,
)
from shared.store import EventStore
from tests.integration.conftest import Auth
from tests.projections import snapshot

ZED = "u-7f3a9"  # an id that says nothing about who they are
NAME = "Zebulon Quagmire"
EMAIL = "zebulon.quagmire@erasure.example"
WORDS = {
    "reply": "Sapphire otters reply at dawn",
    "top": "Marmalade comets are underrated",
    "edited": "Tangerine quasars, on second thought",
    "watcher": "Periwinkle walruses",  # posted in t2 then deleted by Zed
    "note": "Obsidian lynx spam ring",  # the note of Zed's flag
}
NOTIFICATION_TABLES = (
    notifications,
    thread_subscriptions,
    conversation_participants,
    notification_comments,
)


@dataclass
class Site:
    client: TestClient
    auth: Auth
    engine: Engine
    store: EventStore
    ids: dict[str, str]

    def headers(self, user: str, *roles: str) -> dict[str, str]:
        if user == ZED:
            return self.auth(ZED, NAME, email=EMAIL, roles=list(roles))
        return self.auth(user, roles=list(roles), email=f"{user}@example.com")

    def call(self, method: str, path: str, user: str, *roles: str, **body: Any) -> Any:
        response = self.client.request(
            method, path, headers=self.headers(user, *roles), json=body or None
        )
        assert response.status_code in (200, 201, 202), response.text
        return response.json()

    def post(
        self, name: str, user: str, body: str, parent: str | None = None, thread: str = "t1"
    ) -> None:
        path = f"/v1/threads/{thread}/comments"
        self.ids[name] = self.call("POST", path, user, body=body, parent_id=parent)["id"]

    def fold(self) -> None:
        for thread in ("t1", "t2"):
            fold_all(
                self.engine, self.store, thread, [thread_projection(), notification_projection()]
            )

    def page(self, thread: str = "t1") -> list[dict[str, Any]]:
        """Every comment of the thread's first page, replies flattened, in page order."""
        found: list[dict[str, Any]] = []

        def walk(comments: list[dict[str, Any]]) -> None:
            for comment in comments:
                found.append(comment)
                walk(comment["replies"])

        walk(self.client.get(f"/v1/threads/{thread}/comments").json()["comments"])
        return found

    def notification_rows(self) -> dict[str, list[tuple[Any, ...]]]:
        with self.engine.connect() as conn:
            return {
                table.name: sorted(tuple(row) for row in conn.execute(sa.select(table)))
                for table in NOTIFICATION_TABLES
            }


@pytest.fixture
def site(client: TestClient, auth: Auth, engine: Engine, store: EventStore) -> Site:
    """Zed wrote, replied, edited, liked, flagged with a note, watched a thread, was
    notified and has mail waiting; others replied to Zed."""
    s = Site(client, auth, engine, store, {})
    s.call("PUT", "/v1/threads/t1", "root", "admin", title="A post")
    s.call("PUT", "/v1/threads/t2", "root", "admin", title="Another post")
    s.call("PUT", "/v1/threads/t2/subscription", ZED, level="watching")
    s.post("ann-top", "ann", "Ann opens the thread")
    s.post("zed-reply", ZED, WORDS["reply"], s.ids["ann-top"])
    s.post("bob-on-zed", "bob", "Bob answers the reply", s.ids["zed-reply"])
    s.post("zed-top", ZED, WORDS["top"])
    s.call("PATCH", f"/v1/comments/{s.ids['zed-top']}", ZED, body=WORDS["edited"])
    s.post("ann-on-zed", "ann", "Ann answers the top comment", s.ids["zed-top"])
    s.post("zed-gone", ZED, WORDS["watcher"], thread="t2")
    s.call("DELETE", f"/v1/comments/{s.ids['zed-gone']}", ZED)
    s.post("cat-t2", "cat", "Cat writes in the other thread", thread="t2")
    s.call("PUT", f"/v1/comments/{s.ids['ann-top']}/like", ZED)
    s.call(
        "POST", f"/v1/comments/{s.ids['bob-on-zed']}/flags", ZED, reason="spam", note=WORDS["note"]
    )
    s.fold()
    s.call("POST", "/v1/me/notifications/read", ZED, ids=[s.ids["ann-on-zed"]])
    return s


def texts() -> list[str]:
    return [NAME, EMAIL, *WORDS.values()]


def found_in_database(
    engine: Engine, database_url: str, strings: list[str] | None = None
) -> list[str]:
    """Which of the person's strings (`texts()` unless given) the whole database holds."""
    if engine.dialect.name == "postgresql":
        url = sa.make_url(database_url).set(drivername="postgresql")
        dump = subprocess.run(
            ["pg_dump", "--no-owner", url.render_as_string(hide_password=False)],
            check=True,
            capture_output=True,
        ).stdout
        haystacks = [dump]
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        path = Path(str(engine.url.database))
        wal = path.with_name(path.name + "-wal")
        haystacks = [path.read_bytes(), wal.read_bytes() if wal.exists() else b""]
    wanted = texts() if strings is None else strings
    return [text for text in wanted if any(text.encode() in h for h in haystacks)]


def test_my_data_holds_everything_about_me(site: Site) -> None:
    response = site.client.get("/v1/me/data", headers=site.headers(ZED))
    assert response.headers["cache-control"] == "no-store"
    data = response.json()

    assert data["user_id"] == ZED
    assert (data["profile"]["name"], data["profile"]["email"]) == (NAME, EMAIL)
    comments = {c["id"]: c for c in data["comments"]}
    assert set(comments) == {site.ids[n] for n in ("zed-reply", "zed-top", "zed-gone")}
    top = comments[site.ids["zed-top"]]
    assert top["body"] == WORDS["top"]
    assert [e["body"] for e in top["edits"]] == [WORDS["edited"]]
    assert comments[site.ids["zed-gone"]]["deleted"] is True
    assert comments[site.ids["zed-reply"]]["parent_id"] == site.ids["ann-top"]
    assert data["likes"] == [{"comment_id": site.ids["ann-top"], "thread_id": "t1"}]
    assert data["flags"] == [
        {
            "comment_id": site.ids["bob-on-zed"],
            "thread_id": "t1",
            "reason": "spam",
            "note": WORDS["note"],
        }
    ]
    heard = {(n["comment_id"], n["kind"]) for n in data["notifications"]}
    assert heard == {
        (site.ids["bob-on-zed"], "reply"),
        (site.ids["ann-on-zed"], "reply"),
        (site.ids["cat-t2"], "thread"),
    }
    assert data["preferences"] == {"notify_on": "conversations", "email_frequency": "immediate"}
    assert data["subscriptions"] == [{"thread_id": "t2", "level": "watching"}]


def test_my_data_needs_a_token(site: Site) -> None:
    assert site.client.get("/v1/me/data").status_code == 401


def test_after_an_erasure_the_database_holds_nothing_of_them(site: Site, database_url: str) -> None:
    assert found_in_database(site.engine, database_url) == texts()  # the scan does find them
    with site.engine.connect() as conn:
        to_zed = conn.execute(
            sa.select(sa.func.count()).where(email_outbox.c.recipient_id == ZED)
        ).scalar()
    assert to_zed  # mail was waiting for them

    erased = site.call("DELETE", "/v1/me", ZED)
    site.fold()

    assert erased == {"user_id": ZED, "status": "accepted", "threads": 2, "comments": 3}
    assert found_in_database(site.engine, database_url) == []
    page = {c["id"]: c for c in site.page()}
    for name in ("zed-reply", "zed-top"):  # placeholders, for their replies stay
        assert page[site.ids[name]]["deleted"] is True
        assert page[site.ids[name]]["author"] is None
        assert page[site.ids[name]]["body_html"] is None
    assert page[site.ids["bob-on-zed"]]["author"]["name"] == "Bob"
    assert "Bob answers the reply" in page[site.ids["bob-on-zed"]]["body_html"]
    assert "Ann answers the top comment" in page[site.ids["ann-on-zed"]]["body_html"]
    thread = site.client.get("/v1/threads/t1").json()
    assert (thread["comment_count"], thread["participant_count"]) == (3, 2)

    # The log reads back blank where their words were; its triggers are untouched.
    posted = [
        e
        for e in site.store.read_stream("t1")
        if e.type == "CommentPosted" and e.data["author"]["id"] == ZED
    ]
    assert [(e.data["body"], e.data["author"]["name"]) for e in posted] == [("", ""), ("", "")]

    # Ann's inbox keeps the notification of Zed's reply, without name or words.
    inbox = site.call("GET", "/v1/me/notifications", "ann")["notifications"]
    about_zed = [n for n in inbox if n["comment_id"] == site.ids["zed-reply"]]
    assert len(about_zed) == 1
    assert about_zed[0]["excerpt"] is None
    assert about_zed[0]["actor"]["name"] is None
    with site.engine.connect() as conn:
        assert not conn.execute(
            sa.select(notifications).where(notifications.c.recipient_id == ZED)
        ).all()
        assert not conn.execute(
            sa.select(email_outbox).where(email_outbox.c.recipient_id == ZED)
        ).all()
        waiting_about_zed = conn.execute(
            sa.select(email_outbox.c.status).where(
                email_outbox.c.comment_id == site.ids["zed-reply"]
            )
        ).scalars()
        assert set(waiting_about_zed) <= {"skipped"}

    assert verify(site.engine).differences == ()

    threads, rows = snapshot(site.engine), site.notification_rows()
    rebuild_threads(site.engine, site.store)
    rebuild_notifications(site.engine, site.store)
    assert snapshot(site.engine) == threads
    assert site.notification_rows() == rows
    assert found_in_database(site.engine, database_url) == []


def test_erasing_twice_is_harmless(site: Site) -> None:
    site.call("DELETE", "/v1/me", ZED)
    site.fold()
    before = snapshot(site.engine)

    again = site.call("DELETE", "/v1/me", ZED)
    site.fold()

    assert again == {"user_id": ZED, "status": "accepted", "threads": 0, "comments": 0}
    assert snapshot(site.engine) == before
    assert site.call("GET", "/v1/me/data", ZED)["profile"] is None


def test_an_admin_may_erase_anyone_and_nobody_else_may(site: Site) -> None:
    path = f"/v1/users/{ZED}/erase"
    assert site.client.post(path).status_code == 401
    refused = site.client.post(path, headers=site.headers("ann"))
    assert refused.status_code == 403, refused.text
    assert site.client.post(path, headers=site.headers("mod", "moderator")).status_code == 403
    assert site.client.delete("/v1/me").status_code == 401

    erased = site.client.post(path, headers=site.headers("root", "admin"))
    site.fold()

    assert erased.status_code == 202, erased.text
    assert erased.json()["comments"] == 3
    assert site.call("GET", "/v1/me/data", ZED)["comments"] == []
