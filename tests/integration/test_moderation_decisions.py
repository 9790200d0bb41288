"""Moderators' decisions about comments and people, readers' flags, and the audit log."""

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.engine import Engine

from shared.store import EventStore
from tests.integration.conftest import Auth
from tests.integration.moderation_site import Site, refused
from tests.waiting import wait_for


@pytest.fixture
def site(client: TestClient, auth: Auth, engine: Engine, store: EventStore) -> Site:
    return Site(client, auth, engine, store)


def test_readers_flag_once_each_and_the_threshold_holds_the_comment(
    site: Site, event_count: Callable[[], int]
) -> None:
    comment = site.posted("ann")["id"]

    assert site.flag(comment, "bob").json() == {"id": comment, "flag_count": 1}
    before = event_count()
    assert site.flag(comment, "bob", "abuse").json() == {"id": comment, "flag_count": 1}
    assert event_count() == before  # one flag per reader
    assert (
        site.flag(comment, "cat", "off_topic", note="not about the piece").json()["flag_count"] == 2
    )
    assert site.status(comment) == "published"

    assert site.flag(comment, "dan", "other").json()["flag_count"] == 3

    assert site.types()[-2:] == ["CommentFlagged", "CommentHeld"]
    held = site.store.read_stream("t1")[-1]
    assert held.data == {"comment_id": comment, "held_for": ["flags"]}
    assert site.status(comment) == "pending"
    flags = site.store.read_stream("t1")[-2].data
    assert flags == {"comment_id": comment, "user_id": "dan", "reason": "other", "note": ""}
    # A fourth flag counts, and holds nothing more.
    assert site.flag(comment, "eve").json()["flag_count"] == 4
    assert site.types()[-1] == "CommentFlagged"


def test_no_threshold_means_flags_never_hold(site: Site) -> None:
    site.settings(flag_threshold=None)
    comment = site.posted("ann")["id"]
    for reader in ("bob", "cat", "dan", "eve"):
        site.flag(comment, reader)
    assert site.status(comment) == "published"
    assert "CommentHeld" not in site.types()


def test_a_flag_is_refused_for_your_own_deleted_or_rejected_comments(
    site: Site, event_count: Callable[[], int]
) -> None:
    own = site.posted("ann")["id"]
    deleted = site.posted("ann")["id"]
    site.call("DELETE", f"/v1/comments/{deleted}", "ann")
    rejected = site.posted("ann")["id"]
    site.decide(rejected, "reject")
    site.call("PUT", "/v1/users/troll/ban", "mod", {})
    before = event_count()

    assert refused(site.flag(own, "ann"), 403, "own_comment")
    assert refused(site.flag(deleted, "bob"), 409, "comment_deleted")
    assert refused(site.flag(rejected, "bob"), 409, "comment_rejected")
    assert refused(site.flag(own, "troll"), 403, "banned")
    assert refused(site.flag("nope", "bob"), 404, "not_found")
    assert site.client.post(f"/v1/comments/{own}/flags", json={"reason": "spam"}).status_code == 401
    assert event_count() == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"reason": "boring"}, "invalid_input"),
        ({}, "invalid_input"),
        ({"reason": "spam", "note": "x" * 1001}, "invalid_input"),
        ({"reason": "spam", "note": "a\x00b"}, "invalid_characters"),
        ({"reason": "spam", "note": "\ud800"}, "invalid_characters"),
    ],
)
def test_bad_flags_are_refused_and_append_nothing(
    site: Site, event_count: Callable[[], int], body: dict[str, Any], code: str
) -> None:
    comment = site.posted("ann")["id"]
    before = event_count()
    assert refused(site.call("POST", f"/v1/comments/{comment}/flags", "bob", body), 422, code)
    assert event_count() == before


def test_moderators_approve_held_comments_and_trust_their_authors(
    site: Site, store: EventStore
) -> None:
    site.settings(mode="pre")
    held = site.posted("ann")["id"]

    approved = site.decide(held, "approve").json()

    assert approved == {"id": held, "status": "published", "version": approved["version"]}
    assert site.types()[-1] == "CommentApproved"
    assert store.read_stream("t1")[-1].data == {"comment_id": held, "by": "mod"}
    assert site.status(held) == "published"
    assert site.one("SELECT COUNT(*) FROM trusted_authors WHERE user_id = 'ann'") == 1
    assert refused(site.decide(held, "approve"), 409, "already_decided")


def test_approving_a_reported_comment_clears_its_flags(site: Site) -> None:
    comment = site.posted("ann")["id"]
    site.flag(comment, "bob")
    assert site.decide(comment, "approve").json()["status"] == "published"  # flags cleared
    assert site.one("SELECT flag_count FROM comment_state") == 0

    for reader in ("cat", "dan", "eve"):
        site.flag(comment, reader)
    assert site.status(comment) == "pending"  # held by flags again
    assert site.decide(comment, "approve").json()["status"] == "published"
    assert site.flag(comment, "bob").json()["flag_count"] == 0  # bob flagged it already


def test_moderators_reject_pending_or_published_comments_once(
    site: Site, event_count: Callable[[], int]
) -> None:
    published = site.posted("ann")["id"]

    rejected = site.decide(published, "reject", reason="off topic")

    assert rejected.json()["status"] == "rejected"
    assert site.store.read_stream("t1")[-1].data == {
        "comment_id": published,
        "by": "mod",
        "reason": "off topic",
    }
    before = event_count()
    assert refused(site.decide(published, "reject"), 409, "already_decided")
    assert event_count() == before
    assert site.decide(published, "approve", by="admin").json()["status"] == "published"


def test_readers_cannot_decide_and_bad_reasons_append_nothing(
    site: Site, event_count: Callable[[], int]
) -> None:
    comment = site.posted("ann")["id"]
    deleted = site.posted("ann")["id"]
    site.call("DELETE", f"/v1/comments/{deleted}", "ann")
    before = event_count()

    for action in ("approve", "reject"):
        assert refused(site.decide(comment, action, by="bob"), 403, "forbidden")
        assert refused(site.decide(comment, action, by="editor"), 403, "forbidden")  # staff
        assert refused(site.decide(deleted, action), 409, "comment_deleted")
        assert refused(site.decide("missing", action), 404, "not_found")
    for method in ("PUT", "DELETE"):
        feature = f"/v1/comments/{comment}/feature"
        assert refused(site.call(method, feature, "bob"), 403, "forbidden")
    assert refused(site.decide(comment, "reject", reason="x" * 1001), 422, "invalid_input")
    assert refused(site.decide(comment, "reject", reason="a\x00"), 422, "invalid_characters")
    assert refused(site.decide(comment, "reject", reason="\udfff"), 422, "invalid_characters")
    assert event_count() == before


def test_featuring_is_idempotent(site: Site, event_count: Callable[[], int]) -> None:
    comment = site.posted("ann")["id"]
    url = f"/v1/comments/{comment}/feature"

    featured = site.call("PUT", url, "mod").json()
    assert featured == {"id": comment, "featured": True, "version": featured["version"]}
    before = event_count()
    assert site.call("PUT", url, "admin").json() == featured
    assert event_count() == before

    assert site.call("DELETE", url, "mod").json()["featured"] is False
    assert site.call("DELETE", url, "mod").json()["featured"] is False
    assert site.types()[-2:] == ["CommentFeatured", "CommentUnfeatured"]
    site.call("DELETE", f"/v1/comments/{comment}", "ann")
    assert refused(site.call("PUT", url, "mod"), 409, "comment_deleted")


def test_two_moderators_deciding_at_once_one_wins_and_one_is_told(site: Site) -> None:
    site.settings(mode="pre")
    for _ in range(3):
        held = site.posted("ann")["id"]
        answers = _at_once(site, held, ("mod", "mod2"))
        assert sorted(a.status_code for a in answers) == [200, 409]
        assert [a.json()["error"]["code"] for a in answers if a.status_code == 409] == [
            "already_decided"
        ]
    approvals = site.types().count("CommentApproved")
    assert approvals == 3  # exactly one decision event per comment


def _at_once(site: Site, comment: str, moderators: tuple[str, ...]) -> list[Response]:
    """Each moderator approves `comment` from a thread of their own, released together."""
    barrier = threading.Barrier(len(moderators))
    answers: list[Response] = []

    def decide(moderator: str) -> None:
        barrier.wait(30)
        answers.append(site.decide(comment, "approve", by=moderator))

    threads = [threading.Thread(target=decide, args=(m,)) for m in moderators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_a_suspension_ends_by_itself(site: Site, event_count: Callable[[], int]) -> None:
    until = datetime.now(UTC) + timedelta(seconds=2)

    banned = site.call("PUT", "/v1/users/troll/ban", "mod", {"until": until.isoformat()})

    assert banned.json()["banned"] is True
    assert datetime.fromisoformat(banned.json()["until"]) == until
    assert refused(site.post("troll"), 403, "banned")
    assert site.one("SELECT until FROM ban_history WHERE user_id = 'troll'") is not None
    [event] = site.store.read_stream("~user:troll")
    assert datetime.fromisoformat(event.data["until"]) == until

    wait_for(lambda: site.post("troll").status_code == 201, "the suspension to end")
    assert datetime.now(UTC) >= until
    before = event_count()
    assert site.call("DELETE", "/v1/users/troll/ban", "mod").json()["banned"] is False
    assert event_count() == before  # a lapsed suspension needs no unban


def test_a_ban_is_extended_or_made_permanent_and_the_same_ban_appends_nothing(
    site: Site, event_count: Callable[[], int]
) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    later = soon + timedelta(days=1)
    ban = "/v1/users/troll/ban"

    site.call("PUT", ban, "mod", {"until": soon.isoformat()})
    before = event_count()
    assert site.call("PUT", ban, "mod", {"until": soon.isoformat()}).status_code == 200
    assert event_count() == before

    extended = site.call("PUT", ban, "mod", {"until": later.isoformat()}).json()
    assert datetime.fromisoformat(extended["until"]) == later
    permanent = site.call("PUT", ban, "mod", {}).json()
    assert permanent == {"user_id": "troll", "banned": True, "until": None}
    assert [e.data["until"] is None for e in site.store.read_stream("~user:troll")] == [
        False,
        False,
        True,
    ]
    assert site.one("SELECT COUNT(*) FROM ban_history WHERE until IS NULL") == 1
    assert site.one("SELECT COUNT(*) FROM banned_users WHERE until IS NULL") == 1


@pytest.mark.parametrize(
    "until",
    [
        "2000-01-01T00:00:00Z",
        "2999-01-01T00:00:00",
        "tomorrow",
        "2999-13-01T00:00:00Z",
        "9999-12-31T23:00:00-05:00",
    ],
)
def test_a_ban_until_the_past_or_without_a_zone_is_refused(
    site: Site, event_count: Callable[[], int], until: str
) -> None:
    response = site.call("PUT", "/v1/users/troll/ban", "mod", {"until": until})
    assert response.status_code == 422
    assert response.json()["error"]["code"] in ("invalid_until", "invalid_input")
    assert event_count() == 0


def test_the_audit_log_lists_every_decision_newest_first(site: Site) -> None:
    comment = site.posted("ann")["id"]
    mine = site.posted("bob")["id"]
    site.settings(flag_threshold=5)
    site.call("PUT", "/v1/threads/t1", "admin", {"moderation": "pre"})
    site.call("PUT", "/v1/threads/t1/lock", "mod")
    site.call("DELETE", "/v1/threads/t1/lock", "mod")
    site.decide(comment, "reject", reason="rude")
    site.decide(comment, "approve")
    site.call("PUT", f"/v1/comments/{comment}/feature", "mod")
    site.call("DELETE", f"/v1/comments/{comment}/feature", "mod")
    site.call("PUT", "/v1/users/troll/ban", "mod", {"reason": "spam", "until": "2999-01-01T00:00Z"})
    site.call("DELETE", "/v1/users/troll/ban", "admin")
    site.call("PUT", "/v1/users/troll/premod", "mod")
    site.call("DELETE", "/v1/users/troll/premod", "mod")
    site.call("DELETE", f"/v1/comments/{mine}", "bob")  # the author's own: no decision
    site.call("DELETE", f"/v1/comments/{comment}", "mod")
    site.flag(mine, "cat")  # a reader's flag: no decision either

    entries = site.call("GET", "/v1/moderation/log?limit=100", "mod").json()["entries"]

    assert [e["action"] for e in entries] == [
        "delete",
        "unpremod",
        "premod",
        "unban",
        "ban",
        "unfeature",
        "feature",
        "approve",
        "reject",
        "unlock",
        "lock",
        "thread_moderation",
        "settings",
    ]
    delete, _, _, unban, ban, *_, reject, _, _, thread_mode, settings = entries
    assert delete["target"] == {"kind": "comment", "id": comment, "thread_id": "t1"}
    assert delete["moderator"] == {"id": "mod", "name": "Mod"}
    assert unban["moderator"] == {"id": "admin", "name": "Admin"}
    assert ban["target"] == {"kind": "user", "id": "troll", "thread_id": None}
    assert (ban["reason"], ban["until"]) == ("spam", "2999-01-01T00:00:00Z")
    assert reject["reason"] == "rude"
    assert thread_mode["target"] == {"kind": "thread", "id": "t1", "thread_id": None}
    assert settings["target"] == {"kind": "site", "id": None, "thread_id": None}
    assert all(e["at"] for e in entries)


def test_the_audit_log_pages_and_filters_by_thread_for_moderators_only(site: Site) -> None:
    comments = [site.posted("ann")["id"] for _ in range(5)]
    for comment in comments:
        site.call("PUT", f"/v1/comments/{comment}/feature", "mod")
    site.call("PUT", "/v1/users/troll/ban", "mod", {})
    site.post("bob", thread="t2")
    site.call("PUT", "/v1/threads/t2/lock", "mod")

    seen: list[str] = []
    url = "/v1/moderation/log?thread_id=t1&limit=2"
    pages = 0
    while url:
        page = site.call("GET", url, "mod").json()
        seen += [e["target"]["id"] for e in page["entries"]]
        pages += 1
        cursor = page["next_cursor"]
        url = f"/v1/moderation/log?thread_id=t1&limit=2&cursor={cursor}" if cursor else ""
    assert seen == comments[::-1]
    assert pages == 3

    everything = site.call("GET", "/v1/moderation/log", "admin").json()["entries"]
    assert [e["action"] for e in everything][:2] == ["lock", "ban"]

    first = site.call("GET", "/v1/moderation/log?thread_id=t1&limit=2", "mod").json()
    other = f"/v1/moderation/log?thread_id=t2&cursor={first['next_cursor']}"
    assert refused(site.call("GET", other, "mod"), 422, "invalid_cursor")
    assert refused(site.call("GET", "/v1/moderation/log", "ann"), 403, "forbidden")
    assert refused(site.call("GET", "/v1/moderation/log?limit=101", "mod"), 422, "invalid_input")
