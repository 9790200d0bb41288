"""Reads under moderation (decision 29): who sees held and rejected comments, counts of
published ones, placeholders, `sort=featured`, cache separation and the queues, on both
databases. The moderation events are appended to the log directly (tests/moderation_log.py)."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from shared.store import EventStore
from tests.integration.conftest import Auth
from tests.moderation_log import ThreadLog, assert_counts_match_statuses

Json = dict[str, Any]
MOD = "mod"


@pytest.fixture
def log(engine: Engine, store: EventStore) -> ThreadLog:
    return ThreadLog(engine, store)


def walk(comments: list[Json]) -> Iterator[Json]:
    for comment in comments:
        yield comment
        yield from walk(comment["replies"])


class Reader:
    def __init__(self, client: TestClient, auth: Auth) -> None:
        self.client, self.auth = client, auth

    def headers(self, user: str | None) -> dict[str, str]:
        if user is None:
            return {}
        return self.auth(user, roles=["moderator"] if user == MOD else None)

    def get(self, url: str, user: str | None = None, status: int = 200, **params: Any) -> Json:
        response = self.client.get(url, params=params, headers=self.headers(user))
        assert response.status_code == status, response.text
        body: Json = response.json()
        return body

    def thread(self, user: str | None = None, **params: Any) -> dict[str, Json]:
        page = self.get("/v1/threads/t1/comments", user, **params)
        return {c["id"]: c for c in walk(page["comments"])}


@pytest.fixture
def r(client: TestClient, auth: Auth) -> Reader:
    return Reader(client, auth)


@pytest.fixture
def tree(log: ThreadLog) -> dict[str, str]:
    """A thread with one comment of each kind."""
    top = log.post("ann")
    held = log.post("bob", top, status="pending", held_for=("first_comment",))
    rejected = log.post("cat")
    log.reject(rejected)
    reported = log.post("dan")
    answer = log.post("ann", reported)
    log.flag(reported, "eve", "spam")
    log.flag(reported, "fay", "abuse")
    log.hold(reported, "flags")
    staff = log.post("sam", badges=("staff",))
    log.fold()
    return {
        "top": top,
        "held": held,
        "rejected": rejected,
        "reported": reported,
        "answer": answer,
        "staff": staff,
    }


@pytest.mark.parametrize("user", [None, "eve"])
def test_others_see_published_comments_and_placeholders_only(
    r: Reader, tree: dict[str, str], user: str | None
) -> None:
    shown = r.thread(user)

    assert set(shown) == {tree["top"], tree["reported"], tree["answer"], tree["staff"]}
    placeholder = shown[tree["reported"]]
    assert (placeholder["author"], placeholder["body_html"]) == (None, None)
    assert (placeholder["status"], placeholder["deleted"]) == ("pending", False)
    assert [c["id"] for c in placeholder["replies"]] == [tree["answer"]]
    assert all(c["held_for"] is None and c["flags"] is None for c in shown.values())
    assert shown[tree["top"]]["replies"] == []
    assert shown[tree["top"]]["reply_count"] == 0
    assert shown[tree["staff"]]["author"]["badges"] == ["staff"]
    assert shown[tree["top"]]["author"]["badges"] == []


def test_authors_see_their_own_held_and_rejected_comments_with_why(
    r: Reader, tree: dict[str, str]
) -> None:
    bobs = r.thread("bob")
    held = bobs[tree["held"]]
    assert [c["id"] for c in bobs[tree["top"]]["replies"]] == [tree["held"]]
    assert (held["status"], held["held_for"], held["flags"]) == ("pending", ["first_comment"], None)
    assert held["author"] == {"id": "bob", "name": "Bob", "badges": []}
    assert tree["rejected"] not in bobs

    cats = r.thread("cat")
    assert (cats[tree["rejected"]]["status"], cats[tree["rejected"]]["held_for"]) == (
        "rejected",
        [],
    )
    assert tree["held"] not in cats
    dans = r.thread("dan")
    assert dans[tree["reported"]]["body_html"] == "<p>hi</p>"
    assert dans[tree["reported"]]["held_for"] == ["flags"]


def test_moderators_see_everything_with_status_reasons_and_flags(
    r: Reader, tree: dict[str, str]
) -> None:
    shown = r.thread(MOD)

    assert set(shown) == set(tree.values())
    reported = shown[tree["reported"]]
    assert reported["flags"] == {"spam": 1, "abuse": 1}
    assert reported["held_for"] == ["flags"]
    assert reported["author"]["id"] == "dan"
    assert shown[tree["held"]]["held_for"] == ["first_comment"]
    assert shown[tree["rejected"]]["status"] == "rejected"
    assert shown[tree["top"]]["flags"] == {}


def test_a_held_comment_named_by_id_is_found_only_by_its_author_and_moderators(
    r: Reader, tree: dict[str, str]
) -> None:
    held = tree["held"]
    for path in (f"/v1/comments/{held}", f"/v1/comments/{held}/context"):
        r.get(path, status=404)
        r.get(path, "eve", status=404)
        r.get(path, "bob")
        r.get(path, MOD)
    r.get(f"/v1/comments/{held}/replies", status=404)
    assert r.get(f"/v1/comments/{held}/replies", "bob")["replies"] == []
    assert r.get(f"/v1/comments/{held}", "bob")["status"] == "pending"
    context = r.get(f"/v1/comments/{held}/context", "bob")
    assert [a["id"] for a in context["ancestors"]] == [tree["top"]]
    r.get(f"/v1/comments/{tree['rejected']}", status=404)
    assert r.get(f"/v1/comments/{tree['rejected']}", "cat")["status"] == "rejected"

    # Held, but with a published reply: a placeholder, as a deleted comment would be.
    placeholder = r.get(f"/v1/comments/{tree['reported']}")
    assert (placeholder["author"], placeholder["body_html"]) == (None, None)
    replies = r.get(f"/v1/comments/{tree['reported']}/replies")["replies"]
    assert [c["id"] for c in replies] == [tree["answer"]]
    context = r.get(f"/v1/comments/{tree['answer']}/context")
    assert context["ancestors"][0]["author"] is None


def test_counts_count_published_comments_through_every_change(
    r: Reader, engine: Engine, log: ThreadLog, client: TestClient
) -> None:
    def counts() -> tuple[int, int, int]:
        thread = r.get("/v1/threads/t1")["comment_count"]
        page = r.get("/v1/threads/t1/comments")["comment_count"]
        many = client.post("/v1/counts", json={"thread_ids": ["t1"]}).json()["counts"]["t1"]
        return thread, page, many

    top = log.post("ann")
    held = log.post("bob", top, status="pending", held_for=("pre_moderation",))
    log.fold()
    assert counts() == (1, 1, 1)
    steps = [
        (lambda: log.approve(held), 2),
        (lambda: log.hold(held, "flags"), 1),
        (lambda: log.reject(held), 1),
        (lambda: log.approve(held), 2),
        (lambda: log.reject(top), 1),
        (lambda: log.delete(top), 1),
        (lambda: log.delete(held), 0),
    ]
    for step, expected in steps:
        step()
        log.fold()
        assert counts() == (expected,) * 3
        assert_counts_match_statuses(engine)


def test_featured_comments_come_first_then_oldest_across_pages(r: Reader, log: ThreadLog) -> None:
    ids = [log.post("ann", body=f"c{i}") for i in range(7)]
    for featured in (ids[5], ids[2], ids[6]):
        log.feature(featured)
    log.feature(ids[6], on=False)
    log.fold()

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"sort": "featured", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = r.get("/v1/threads/t1/comments", **params)
        seen.extend(c["id"] for c in page["comments"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == [ids[2], ids[5], ids[0], ids[1], ids[3], ids[4], ids[6]]
    first = r.get("/v1/threads/t1/comments", sort="featured", limit=2)["comments"]
    assert [c["featured"] for c in first] == [True, True]
    oldest = r.get("/v1/threads/t1/comments", sort="oldest", limit=2)
    r.get("/v1/threads/t1/comments", sort="featured", cursor=oldest["next_cursor"], status=422)


def test_pages_for_different_viewers_never_share_a_cache_entry(
    r: Reader, tree: dict[str, str], client: TestClient, auth: Auth
) -> None:
    url = "/v1/threads/t1/comments"
    answers = {}
    for user in (None, "eve", "bob", MOD):
        response = client.get(url, headers=r.headers(user))
        answers[user] = response
        private = user is not None
        assert response.headers["Cache-Control"].startswith("private" if private else "public")
        assert "Authorization" in response.headers["Vary"]
    assert len({a.headers["ETag"] for a in answers.values()}) == 4
    assert tree["held"] not in answers[None].text
    # The same person without the moderator role reads another page: no 304 for them.
    as_reader = client.get(
        url, headers={**auth(MOD), "If-None-Match": answers[MOD].headers["ETag"]}
    )
    assert as_reader.status_code == 200
    assert tree["held"] not in as_reader.text
    again = client.get(
        url, headers={**r.headers(MOD), "If-None-Match": answers[MOD].headers["ETag"]}
    )
    assert again.status_code == 304
    stolen = client.get(url, headers={"If-None-Match": answers["bob"].headers["ETag"]})
    assert stolen.status_code == 200
    assert tree["held"] not in stolen.text


def test_the_queues_list_oldest_first_with_parents_flags_and_counts(
    r: Reader, tree: dict[str, str], engine: Engine, store: EventStore
) -> None:
    other = ThreadLog(engine, store, "t2")
    elsewhere = other.post("zed", status="pending", held_for=("suspect_word",))
    published_but_flagged = other.post("zed")
    other.flag(published_but_flagged, "ann", "off_topic")
    other.fold()

    pending = r.get("/v1/moderation/queue", MOD)
    assert [c["id"] for c in pending["comments"]] == [tree["held"], elsewhere]
    assert pending["counts"] == {"pending": 2, "reported": 2, "rejected": 1}
    first = pending["comments"][0]
    assert (first["status"], first["held_for"]) == ("pending", ["first_comment"])
    assert first["parent"]["id"] == tree["top"]
    assert first["parent"]["replies"] == []
    assert pending["comments"][1]["parent"] is None

    reported = r.get("/v1/moderation/queue", MOD, queue="reported")
    assert [c["id"] for c in reported["comments"]] == [tree["reported"], published_but_flagged]
    assert reported["comments"][0]["flags"] == {"spam": 1, "abuse": 1}
    assert reported["comments"][1]["status"] == "published"
    rejected = r.get("/v1/moderation/queue", MOD, queue="rejected")
    assert [c["id"] for c in rejected["comments"]] == [tree["rejected"]]

    only_t2 = r.get("/v1/moderation/queue", MOD, thread_id="t2")
    assert [c["id"] for c in only_t2["comments"]] == [elsewhere]
    assert only_t2["counts"] == {"pending": 1, "reported": 1, "rejected": 0}


def test_the_queue_pages_with_cursors_bound_to_their_queue(r: Reader, log: ThreadLog) -> None:
    held = [log.post(f"u{i}", status="pending", held_for=("pre_moderation",)) for i in range(5)]
    log.fold()

    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = r.get("/v1/moderation/queue", MOD, **params)
        seen.extend(c["id"] for c in page["comments"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == held

    first = r.get("/v1/moderation/queue", MOD, limit=2)
    r.get("/v1/moderation/queue", MOD, queue="rejected", cursor=first["next_cursor"], status=422)
    r.get("/v1/moderation/queue", MOD, thread_id="t2", cursor=first["next_cursor"], status=422)


def test_the_queue_is_for_moderators_only(r: Reader, client: TestClient) -> None:
    assert client.get("/v1/moderation/queue").status_code == 401
    r.get("/v1/moderation/queue", "eve", status=403)
    r.get("/v1/moderation/queue", MOD, queue="everything", status=422)


@pytest.mark.parametrize("sort", ["oldest", "newest", "top", "featured"])
def test_every_sort_and_listing_follows_the_same_visibility(
    r: Reader, tree: dict[str, str], sort: str
) -> None:
    expected = {
        None: {tree["top"], tree["reported"], tree["answer"], tree["staff"]},
        "bob": {tree["top"], tree["held"], tree["reported"], tree["answer"], tree["staff"]},
        MOD: set(tree.values()),
    }
    for user, ids in expected.items():
        assert set(r.thread(user, sort=sort, limit=1, replies=2)) <= ids
        pages, cursor = [], None
        while True:
            params: dict[str, Any] = {"sort": sort, "limit": 1}
            if cursor:
                params["cursor"] = cursor
            page = r.get("/v1/threads/t1/comments", user, **params)
            pages.extend(walk(page["comments"]))
            if not (cursor := page["next_cursor"]):
                break
        assert {c["id"] for c in pages} == ids, user
        replies = r.get(f"/v1/comments/{tree['top']}/replies", user)["replies"]
        assert [c["id"] for c in replies] == ([tree["held"]] if user else [])
