"""A page is bounded in comments in all, and cursors reach every comment exactly once."""

from collections import Counter
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.api.read_queries import MAX_PAGE_COMMENTS
from shared.store import EventStore
from tests.integration.conftest import Auth
from tests.integration.test_api_reads import Json, Thread

MAXIMAL = {"limit": 50, "replies": 10}


@pytest.fixture
def t(client: TestClient, auth: Auth, engine: Engine, store: EventStore) -> Thread:
    return Thread(client, auth, engine, store)


def flatten(comments: list[Json]) -> Iterator[Json]:
    for comment in comments:
        yield comment
        yield from flatten(comment["replies"])


def grow_a_big_thread(t: Thread) -> set[str]:
    """55 top-level comments with 11 replies each; some replies with 12 of their own and
    a chain below; placeholders and deleted leaves. Returns the ids a reader may see."""
    visible: set[str] = set()
    deleted_leaves: set[str] = set()
    for i in range(55):
        top = t.post(f"top {i}")
        replies = [t.post(f"reply {i}.{j}", parent=top, user="bob") for j in range(11)]
        visible |= {top, *replies}
        if i < 8:
            wide = [t.post(f"wide {i}.{k}", parent=replies[0], user="cat") for k in range(12)]
            chain = [wide[0]]
            for depth in range(5):
                chain.append(t.post(f"deep {i}.{depth}", parent=chain[-1]))
            visible |= {*wide, *chain}
        if i < 5:
            deleted_leaves.add(replies[5])
        if i in (1, 2):
            t.delete(replies[0])  # has replies: stays as a placeholder
        if i == 3:
            t.delete(top)
    for leaf in deleted_leaves:
        t.delete(leaf)
    t.fold()
    return visible - deleted_leaves


def walk(t: Thread) -> tuple[list[str], list[int]]:
    """Every comment reachable from the first page through every cursor, and the size (in
    comments) of each answer."""
    seen: list[str] = []
    sizes: list[int] = []
    pending: list[tuple[str, dict[str, object]]] = [("/v1/threads/t1/comments", MAXIMAL)]
    while pending:
        url, params = pending.pop()
        answer = t.get(url, **params)
        listed = answer["comments"] if "comments" in answer else answer["replies"]
        comments = list(flatten(listed))
        sizes.append(len(comments))
        seen += [c["id"] for c in comments]
        if answer["next_cursor"]:
            pending.append((url, {**MAXIMAL, "cursor": answer["next_cursor"]}))
        for comment in comments:
            if comment["replies_next_cursor"]:
                more = {**MAXIMAL, "cursor": comment["replies_next_cursor"]}
                pending.append((f"/v1/comments/{comment['id']}/replies", more))
    return seen, sizes


def test_a_page_holds_at_most_500_comments_and_cursors_reach_each_once(t: Thread) -> None:
    visible = grow_a_big_thread(t)

    first = t.page(**MAXIMAL)
    seen, sizes = walk(t)

    assert len(first["comments"]) == 50
    assert len(list(flatten(first["comments"]))) == MAX_PAGE_COMMENTS  # the budget binds
    assert max(sizes) <= MAX_PAGE_COMMENTS
    assert [i for i, n in Counter(seen).items() if n > 1] == []
    assert set(seen) == visible


def test_one_comment_and_its_replies_listing_are_bounded_too(t: Thread) -> None:
    top = t.post("top")
    replies = [t.post(f"r{i}", parent=top) for i in range(50)]
    for reply in replies:
        for k in range(10):
            t.post(f"{reply} {k}", parent=reply, user="bob")
    t.fold()

    one = t.get(f"/v1/comments/{top}", replies=10)
    listing = t.get(f"/v1/comments/{top}/replies", **MAXIMAL)

    assert len(list(flatten([one]))) <= MAX_PAGE_COMMENTS
    assert len(list(flatten(listing["replies"]))) == MAX_PAGE_COMMENTS  # 50 + 45 * 10
    cut = [c for c in listing["replies"] if c["replies_next_cursor"] and not c["replies"]]
    assert len(cut) == 5


@pytest.mark.parametrize("params", [{"limit": 51}, {"replies": 11}])
def test_pages_over_the_limits_are_refused(t: Thread, params: dict[str, int]) -> None:
    for url in ("/v1/threads/t1/comments", "/v1/comments/abc/replies"):
        response = t.client.get(url, params=params)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_input"
