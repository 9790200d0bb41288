"""Comment reads a browser or a CDN can cache: ETags, 304s that cost one lookup, and
Cache-Control that never shares one reader's view with another."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from redis import Redis
from sqlalchemy.engine import Engine

from services.api.app import create_app
from services.api.early_reads import EarlyReads
from services.api.page_memory import PageMemory, Remembered
from services.worker.folding import fold_thread
from shared.fold_progress import FoldProgress, announce
from shared.projection_tables import LIVE
from shared.settings import Settings
from shared.store import EventStore
from tests.integration.conftest import Auth
from tests.statements import count_statements
from tests.waiting import wait_for

Json = dict[str, Any]


class Reads:
    """A thread written through the API and folded like the worker, read back with headers."""

    def __init__(self, client: TestClient, auth: Auth, engine: Engine, store: EventStore) -> None:
        self.client, self.auth, self.engine, self.store = client, auth, engine, store
        self.top = self.post()
        self.reply = self.post(parent=self.top)
        self.fold()

    def post(self, parent: str | None = None, thread: str = "t1") -> str:
        response = self.client.post(
            f"/v1/threads/{thread}/comments",
            json={"body": "hello", "parent_id": parent},
            headers=self.auth("ann"),
        )
        assert response.status_code == 201, response.text
        comment_id: str = response.json()["id"]
        return comment_id

    def fold(self, thread: str = "t1") -> int:
        return fold_thread(self.engine, self.store, thread).version

    def urls(self) -> list[str]:
        return [
            "/v1/threads/t1",
            "/v1/threads/t1/comments",
            f"/v1/comments/{self.top}",
            f"/v1/comments/{self.top}/replies",
        ]

    def get(self, url: str, *, etag: str | None = None, **headers: str) -> Response:
        if etag is not None:
            headers["If-None-Match"] = etag
        response: Response = self.client.get(url, headers=headers)
        assert response.status_code in (200, 304), response.text
        return response


@pytest.fixture
def reads(client: TestClient, auth: Auth, engine: Engine, store: EventStore) -> Reads:
    return Reads(client, auth, engine, store)


def api_engine(client: TestClient) -> Engine:
    engine: Engine = client.app.state.services.engine  # type: ignore[attr-defined]
    return engine


def test_each_read_answers_304_to_its_current_etag_from_the_checkpoint_alone(
    reads: Reads,
) -> None:
    for url in reads.urls():
        first = reads.get(url)
        etag = first.headers["ETag"]
        assert first.status_code == 200

        with count_statements(api_engine(reads.client)) as statements:
            again = reads.get(url, etag=etag)

        assert again.status_code == 304, url
        assert again.content == b""
        assert again.headers["ETag"] == etag
        assert again.headers["Cache-Control"] == first.headers["Cache-Control"]
        assert again.headers["Vary"] == "Authorization, Origin"
        # One primary key lookup of the thread's checkpoint; no comment table is read.
        assert len(statements.seen) == 1, statements.seen
        assert LIVE.checkpoints.name in statements.seen[0]
        assert LIVE.comments.name not in statements.seen[0]
        assert LIVE.threads.name not in statements.seen[0]


def test_a_change_anywhere_in_the_thread_changes_every_etag(reads: Reads) -> None:
    before = {url: reads.get(url).headers["ETag"] for url in reads.urls()}
    reads.post(thread="t2")  # another thread moving changes nothing here
    reads.fold("t2")
    assert all(reads.get(url, etag=tag).status_code == 304 for url, tag in before.items())

    like = reads.client.put(f"/v1/comments/{reads.reply}/like", headers=reads.auth("bob"))
    assert like.status_code == 200
    reads.fold()

    for url, tag in before.items():
        fresh = reads.get(url, etag=tag)
        assert fresh.status_code == 200, url
        assert fresh.headers["ETag"] != tag
    # Written but not folded yet: the answer would not differ, so neither does its ETag.
    current = reads.get(f"/v1/comments/{reads.reply}")
    reads.post()
    assert reads.get(f"/v1/comments/{reads.reply}", etag=current.headers["ETag"]).status_code == 304


def test_etags_differ_by_request_and_viewer_and_never_show_who(reads: Reads) -> None:
    url = "/v1/threads/t1/comments"
    anonymous = reads.get(url).headers["ETag"]
    newest = reads.get(f"{url}?sort=newest").headers["ETag"]
    ann = reads.get(url, **reads.auth("ann")).headers["ETag"]
    bob = reads.get(url, **reads.auth("bob")).headers["ETag"]
    assert len({anonymous, newest, ann, bob}) == 4
    assert "ann" not in ann.lower()
    assert "bob" not in bob.lower()
    # The same reader with a new token is the same viewer.
    assert reads.get(url, etag=ann, **reads.auth("ann", name="Ann Again")).status_code == 304

    # A copy made for someone else, or for nobody, is not this reader's.
    assert reads.get(url, etag=ann, **reads.auth("bob")).status_code == 200
    assert reads.get(url, etag=anonymous, **reads.auth("ann")).status_code == 200
    assert reads.get(url, etag=ann).status_code == 200
    assert reads.get(f"{url}?sort=newest", etag=anonymous).status_code == 200
    # Query parameters in another order are the same request.
    ordered = reads.get(f"{url}?sort=newest&limit=5").headers["ETag"]
    assert reads.get(f"{url}?limit=5&sort=newest", etag=ordered).status_code == 304


def test_anonymous_reads_are_public_and_reads_with_a_token_private(
    settings: Settings, auth: Auth, engine: Engine, store: EventStore
) -> None:
    with TestClient(create_app(settings.model_copy(update={"read_max_age": 17}))) as client:
        reads = Reads(client, auth, engine, store)
        for url in reads.urls():
            anonymous = reads.get(url)
            signed_in = reads.get(url, **auth("ann"))
            # A token that is sent must be valid (decision 26): a 401, stored by no cache.
            invalid = client.get(url, headers={"Authorization": "Bearer not.a.token"})

            public = "public, max-age=17, stale-while-revalidate=30"
            private = "private, max-age=17, stale-while-revalidate=30"
            assert anonymous.headers["Cache-Control"] == public
            assert signed_in.headers["Cache-Control"] == private
            assert invalid.status_code == 401
            assert invalid.headers["Cache-Control"] == "no-store"
            for answer in (anonymous, signed_in):
                assert answer.headers["Vary"] == "Authorization, Origin"


def test_if_none_match_takes_lists_weak_tags_and_a_star(reads: Reads) -> None:
    url = f"/v1/comments/{reads.top}"
    etag = reads.get(url).headers["ETag"]
    thread_id, version, tag = etag.strip('"').rsplit(".", 2)
    stale = f'"{thread_id}.{int(version) - 1}.{tag}"'

    assert reads.get(url, etag=f'"other", {stale} ,{etag}').status_code == 304
    assert reads.get(url, etag=f"W/{etag}").status_code == 304
    assert reads.get(url, etag=f"W/{stale}, W/{etag}").status_code == 304
    assert reads.get(url, etag="*").status_code == 304
    # An ETag edited by hand (a version or a thread it was not made for) is no match.
    assert reads.get(url, etag=stale).status_code == 200
    forged = etag.replace('"t1.', '"t2.')
    assert reads.get(url, etag=forged).status_code == 200
    for junk in ['"', "W/", "t1.3.abc", '"a"b"', ",,,", f'{etag[:-2]}\xe9"', "\xe9t\xe9"]:
        answer = reads.client.get(url, headers={"If-None-Match": junk.encode("latin-1")})
        assert answer.status_code == 200, junk

    missing = reads.client.get("/v1/comments/nothing-here", headers={"If-None-Match": "*"})
    assert missing.status_code == 404


def test_min_version_reads_keep_working_and_their_etag_names_what_they_show(
    reads: Reads,
) -> None:
    url = "/v1/threads/t1/comments"
    first = reads.get(url)
    version = first.json()["version"]
    etag = first.headers["ETag"]

    # A copy at the version asked for, or newer, is current: the ETag ignores min_version.
    reached = reads.get(f"{url}?min_version={version}", etag=etag)
    assert reached.status_code == 304
    assert reached.headers["ETag"] == etag
    assert reads.get(f"{url}?min_version={version - 1}").headers["ETag"] == etag

    reads.post()
    newer = reads.fold()
    fresh = reads.get(f"{url}?min_version={newer}", etag=etag)
    assert fresh.status_code == 200
    assert fresh.json()["version"] == newer
    assert reads.get(url, etag=fresh.headers["ETag"]).status_code == 304

    # A current ETag never stands in for a refusal.
    for bad, code in [("abc", "invalid_input"), (str(newer + 5), "min_version_ahead")]:
        refused = reads.client.get(
            url, params={"min_version": bad}, headers={"If-None-Match": fresh.headers["ETag"]}
        )
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == code


def test_a_read_short_of_min_version_is_304_only_when_it_still_shows_the_clients_copy(
    settings: Settings, auth: Auth, engine: Engine, store: EventStore
) -> None:
    with TestClient(create_app(settings.model_copy(update={"read_wait_seconds": 0}))) as client:
        reads = Reads(client, auth, engine, store)
        url = "/v1/threads/t1/comments"
        copy = reads.get(url)
        written = client.post(
            "/v1/threads/t1/comments", json={"body": "new"}, headers=auth("bob")
        ).json()["version"]

        # Not folded: the wait (none here) ends with the copy the client has.
        unchanged = reads.get(f"{url}?min_version={written}", etag=copy.headers["ETag"])
        assert unchanged.status_code == 304

        reads.fold()
        moved = reads.get(f"{url}?min_version={written}", etag=copy.headers["ETag"])
        assert moved.status_code == 200
        assert moved.json()["version"] == written


def test_errors_are_never_cached(reads: Reads) -> None:
    for url in [
        "/v1/threads/never-written",
        "/v1/comments/nothing-here",
        "/v1/threads/t1/comments?limit=0",
    ]:
        response = reads.client.get(url)
        assert response.status_code in (404, 422)
        assert response.headers["Cache-Control"] == "no-store"
        assert "ETag" not in response.headers


def test_an_announced_version_answers_304s_from_memory_and_a_fold_ends_them_at_once(
    settings: Settings, auth: Auth, engine: Engine, store: EventStore, redis: Redis
) -> None:
    trusting = settings.model_copy(update={"read_version_trust_seconds": 5})
    with TestClient(create_app(trusting)) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        wait_for(services.waits.subscribed.is_set, "the API to hear fold progress")
        reads = Reads(client, auth, engine, store)
        url = "/v1/threads/t1/comments"
        etag = reads.get(url).headers["ETag"]  # the version it shows counts as heard
        with count_statements(api_engine(client)) as then:
            assert reads.get(url, etag=etag).status_code == 304  # from memory
        assert then.seen == []

        reads.post()
        version = reads.fold()
        announce(redis, FoldProgress("t1", version))  # what the worker does after its commit
        wait_for(lambda: services.versions.fresh("t1") == version, "the API to hear the fold")

        assert reads.get(url, etag=etag).status_code == 200  # within the trust window


class RouteSpy:
    """Stands between the early 304 and the routes: counts the requests that got past it."""

    def __init__(self, app: Any) -> None:
        self.app, self.reached = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.reached += 1
        await self.app(scope, receive, send)


def spy_behind_the_early_304(client: TestClient) -> RouteSpy:
    layer: Any = client.app.middleware_stack  # type: ignore[attr-defined]
    while not isinstance(layer, EarlyReads):
        layer = layer.app
    spy = RouteSpy(layer.app)
    layer.app = spy
    return spy


def test_an_anonymous_current_copy_is_answered_before_routing_and_nothing_else_is(
    settings: Settings, auth: Auth, engine: Engine, store: EventStore
) -> None:
    """Decision 32: an anonymous reader's current copy is 304 and its current page is the
    remembered 200, both without the route; a token, another query, a version not reached
    or not heard lately goes on to the route as before."""
    trusting = settings.model_copy(
        update={"read_version_trust_seconds": 60, "cors_origins": ["https://news.example"]}
    )
    with TestClient(create_app(trusting)) as client:
        reads = Reads(client, auth, engine, store)
        spy = spy_behind_the_early_304(client)
        url = "/v1/threads/t1/comments?sort=oldest&limit=5"
        fresh = reads.get(url)
        etag = fresh.headers["ETag"]
        assert reads.get(url, etag=etag).status_code == 304  # the route reads the version
        reached = spy.reached

        early = reads.get(url, etag=etag, Origin="https://news.example")
        assert early.status_code == 304
        assert spy.reached == reached  # answered before routing
        for header in ("ETag", "Cache-Control", "Vary"):
            assert early.headers[header] == fresh.headers[header]
        assert early.headers["Access-Control-Allow-Origin"] == "https://news.example"
        assert "X-Request-Id" in early.headers
        same_query_reordered = "/v1/threads/t1/comments?limit=5&sort=oldest&min_version=1"
        assert reads.get(same_query_reordered, etag=etag).status_code == 304

        remembered = reads.get(url, Origin="https://news.example")  # no copy of its own
        forged = reads.get(url, etag=etag.replace(".", ".9", 1))  # not ours: a full page
        assert spy.reached == reached
        for answer in (remembered, forged):
            assert answer.status_code == 200
            assert answer.content == fresh.content
            for header in ("ETag", "Cache-Control", "Vary", "Content-Type"):
                assert answer.headers[header] == fresh.headers[header]
        assert remembered.headers["Access-Control-Allow-Origin"] == "https://news.example"
        assert remembered.headers["X-Request-Id"] != forged.headers["X-Request-Id"]

        newest = "/v1/threads/t1/comments?sort=newest&limit=5"
        for path, headers in (
            (url, {"If-None-Match": etag, **auth("ann")}),  # a token: the route decides
            (url, auth("ann")),
            (newest, {"If-None-Match": etag}),  # signed for another query, not remembered
            (url + "&min_version=999", {}),  # not reached (422)
            (url, {"If-None-Match": "*"}),
        ):
            before = spy.reached
            client.get(path, headers=headers)
            assert spy.reached == before + 1, (path, headers)

        reads.post()
        version = reads.fold()
        client.app.state.services.versions.saw("t1", version)  # type: ignore[attr-defined]
        before = spy.reached
        moved = reads.get(url, etag=etag)
        assert moved.status_code == 200  # no longer current: read, and remembered
        assert moved.content != fresh.content
        assert reads.get(url).content == moved.content
        assert spy.reached == before + 1


def test_the_page_memory_keeps_within_its_bound_least_recently_used_out() -> None:
    memory = PageMemory(max_bytes=100)
    for name in "abcdefghij":
        memory.keep(name, Remembered("t1", 1, (), b"x" * 10))
    assert memory.recall("a") is not None  # full, and "a" is now the latest used
    memory.keep("k", Remembered("t1", 1, (), b"x" * 10))
    assert memory.recall("b") is None  # the least recently used went
    assert memory.recall("a") is not None
    memory.keep("huge", Remembered("t1", 1, (), b"x" * 11))  # over a tenth of the bound
    assert memory.recall("huge") is None
    assert memory.size == 100
