"""Moderators ban users and lock threads; bans silence notifications as of when they held."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.engine import Engine

from services.worker.folding import fold
from services.worker.notification_projector import notification_projection
from shared import events as ev
from shared.store import EventStore, NewEvent
from shared.streams import user_stream
from tests.integration.conftest import Auth


class Site:
    """People acting through the API; folds notifications like the worker does."""

    def __init__(self, client: TestClient, auth: Auth, engine: Engine, store: EventStore) -> None:
        self.client, self.auth, self.engine, self.store = client, auth, engine, store

    def as_(self, user: str) -> dict[str, str]:
        roles = ["moderator"] if user == "mod" else ["admin"] if user == "admin" else None
        return self.auth(user, roles=roles)

    def post(self, user: str, parent: str | None = None, thread: str = "t1") -> Response:
        body = {"body": f"words from {user}", "parent_id": parent}
        url = f"/v1/threads/{thread}/comments"
        response: Response = self.client.post(url, json=body, headers=self.as_(user))
        return response

    def posted(self, user: str, parent: str | None = None) -> str:
        response = self.post(user, parent)
        assert response.status_code == 201, response.text
        comment_id: str = response.json()["id"]
        return comment_id

    def ban(self, user: str, by: str = "mod", reason: str = "spam") -> Response:
        payload = {"reason": reason}
        response: Response = self.client.put(
            f"/v1/users/{user}/ban", json=payload, headers=self.as_(by)
        )
        return response

    def unban(self, user: str, by: str = "mod") -> Response:
        response: Response = self.client.delete(f"/v1/users/{user}/ban", headers=self.as_(by))
        return response

    def lock(self, method: str, by: str = "mod", thread: str = "t1") -> Response:
        url = f"/v1/threads/{thread}/lock"
        response: Response = self.client.request(method, url, headers=self.as_(by))
        return response

    def inbox(self, user: str) -> dict[str, str]:
        fold(self.engine, self.store, "t1", notification_projection())
        response = self.client.get("/v1/me/notifications", headers=self.as_(user))
        return {n["comment_id"]: n["kind"] for n in response.json()["notifications"]}


@pytest.fixture
def site(client: TestClient, auth: Auth, engine: Engine, store: EventStore) -> Site:
    return Site(client, auth, engine, store)


def refused(response: Response, status: int, code: str) -> bool:
    return response.status_code == status and response.json()["error"]["code"] == code


def test_moderators_and_admins_ban_and_plain_users_cannot(
    site: Site, event_count: Callable[[], int]
) -> None:
    before = event_count()
    assert refused(site.ban("troll", by="ann"), 403, "forbidden")
    assert refused(site.unban("troll", by="ann"), 403, "forbidden")
    assert event_count() == before

    assert site.ban("troll").json() == {"user_id": "troll", "banned": True, "until": None}
    assert site.ban("troll", by="admin").json() == {
        "user_id": "troll",
        "banned": True,
        "until": None,
    }
    assert event_count() == before + 1  # banning twice is banning once


def test_a_moderator_cannot_ban_themselves_or_give_an_endless_reason(site: Site) -> None:
    assert refused(site.ban("mod"), 422, "cannot_ban_yourself")
    assert site.ban("troll", reason="x" * 1001).status_code == 422


def test_a_banned_user_cannot_post_edit_or_like_and_nothing_is_appended(
    site: Site, event_count: Callable[[], int]
) -> None:
    theirs = site.posted("troll")
    anns = site.posted("ann")
    site.ban("troll")
    before = event_count()

    headers = site.as_("troll")
    assert refused(site.post("troll"), 403, "banned")
    assert refused(site.post("troll", parent=anns), 403, "banned")
    edit = site.client.patch(f"/v1/comments/{theirs}", json={"body": "x"}, headers=headers)
    assert refused(edit, 403, "banned")
    assert refused(site.client.put(f"/v1/comments/{anns}/like", headers=headers), 403, "banned")
    assert event_count() == before

    # They may still take back what they wrote: deleting is not taking part.
    assert site.client.delete(f"/v1/comments/{theirs}", headers=headers).status_code == 200


def test_unbanning_lets_them_take_part_again(site: Site, event_count: Callable[[], int]) -> None:
    site.ban("troll")
    assert site.unban("troll").json() == {"user_id": "troll", "banned": False, "until": None}
    before = event_count()
    assert site.unban("troll").json() == {"user_id": "troll", "banned": False, "until": None}
    assert event_count() == before  # unbanning someone not banned changes nothing

    assert site.post("troll").status_code == 201


def test_bans_are_events_in_the_banned_users_own_stream(site: Site, store: EventStore) -> None:
    site.ban("troll", reason="posting links to a scam")
    site.unban("troll", by="admin")

    events = store.read_stream(user_stream("troll"), 0)

    assert [(e.type, e.data) for e in events] == [
        (
            "UserBanned",
            {
                "user_id": "troll",
                "reason": "posting links to a scam",
                "by": "mod",
                "until": None,
            },
        ),
        ("UserUnbanned", {"user_id": "troll", "by": "admin"}),
    ]
    assert [e.metadata["actor"]["id"] for e in events] == ["mod", "admin"]
    assert store.stream_version(user_stream("mod")) == 0  # nothing lands on the moderator


def test_a_banned_recipient_hears_nothing_of_comments_posted_while_banned(site: Site) -> None:
    top = site.posted("bob")
    before_ban = site.posted("ann", top)
    site.ban("bob")
    during = [site.posted("cat", top), site.posted("ann", top)]
    site.unban("bob")
    after_unban = site.posted("dan", top)

    # Folded only now, after the unban: what counts is whether bob was banned when each
    # comment was posted.
    assert site.inbox("bob") == {before_ban: "reply", after_unban: "reply"}
    assert site.inbox("ann")[during[0]] == "conversation"  # others still hear


def test_a_comment_accepted_in_a_race_with_its_authors_ban_notifies_nobody(
    site: Site, store: EventStore
) -> None:
    top = site.posted("ann")
    site.ban("troll")
    # The post read "not banned" just before the ban committed, and committed after it.
    raced = ev.CommentPosted(
        comment_id="raced", parent_id=top, author=ev.Author(id="troll", name="Troll"), body="hi"
    )
    store.append("t1", [NewEvent.of(raced)], store.stream_version("t1"))
    site.unban("troll")
    later = site.posted("troll", top)

    assert site.inbox("ann") == {later: "reply"}


def test_moderators_lock_and_unlock_threads(site: Site, event_count: Callable[[], int]) -> None:
    site.posted("ann")

    locked = site.lock("PUT").json()
    assert locked == {"id": "t1", "locked": True, "version": locked["version"]}
    assert refused(site.post("ann"), 409, "thread_locked")
    assert site.lock("PUT").json() == locked  # locking twice appends nothing

    unlocked = site.lock("DELETE", by="admin").json()
    assert unlocked == {"id": "t1", "locked": False, "version": locked["version"] + 1}
    assert site.post("ann").status_code == 201

    log = site.client.get("/v1/threads/t1/events", headers=site.as_("mod")).json()
    assert [e["type"] for e in log["events"]][-3:] == [
        "ThreadLocked",
        "ThreadUnlocked",
        "CommentPosted",
    ]


def test_plain_users_cannot_lock_and_moderators_cannot_edit_thread_metadata(
    site: Site, event_count: Callable[[], int]
) -> None:
    site.posted("ann")
    before = event_count()

    assert refused(site.lock("PUT", by="ann"), 403, "forbidden")
    assert refused(site.lock("DELETE", by="ann"), 403, "forbidden")
    metadata: dict[str, Any] = {"title": "Renamed", "locked": True}
    assert refused(
        site.client.put("/v1/threads/t1", json=metadata, headers=site.as_("mod")), 403, "forbidden"
    )
    assert event_count() == before
