"""Write limits: never in a person's way, a wall for a script; Redis down lets posts in."""

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from redis import Redis
from starlette.requests import Request

from services.api.app import create_app
from services.api.rate_limit import client_ip
from shared.settings import Settings
from tests.integration.conftest import Auth

pytestmark = pytest.mark.redis


def limited(settings: Settings, **limits: Any) -> Settings:
    return settings.model_copy(update={"rate_limit_enabled": True, **limits})


def serve(settings: Settings, ip: str = "192.0.2.10") -> TestClient:
    return TestClient(create_app(settings), client=(ip, 50000))


@pytest.fixture
def limited_client(settings: Settings) -> Iterator[TestClient]:
    """The API with the default limits switched on."""
    with serve(limited(settings)) as client:
        yield client


def post(client: TestClient, auth: Auth, user: str, parent: str | None = None) -> Response:
    body = {"body": f"a thought from {user}", "parent_id": parent}
    response: Response = client.post("/v1/threads/t1/comments", json=body, headers=auth(user))
    return response


def assert_rate_limited(
    response: Response, before: int, count: Callable[[], int], *, at_most: int
) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    assert response.json()["error"]["message"]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= at_most
    assert count() == before, "a refused post must append nothing"


def test_a_person_posting_five_replies_in_a_minute_is_never_refused(
    limited_client: TestClient, auth: Auth
) -> None:
    top = post(limited_client, auth, "bob").json()["id"]

    replies = [post(limited_client, auth, "ann", top) for _ in range(5)]

    assert [r.status_code for r in replies] == [201] * 5


def test_a_burst_beyond_the_limit_is_refused_with_retry_after_and_appends_nothing(
    limited_client: TestClient, auth: Auth, event_count: Callable[[], int]
) -> None:
    assert all(post(limited_client, auth, "bot").status_code == 201 for _ in range(5))
    before = event_count()

    for _ in range(5):
        assert_rate_limited(post(limited_client, auth, "bot"), before, event_count, at_most=10)
    assert post(limited_client, auth, "ann").status_code == 201  # others are not held back


def test_the_hourly_limit_counts_the_whole_hour(
    settings: Settings, auth: Auth, event_count: Callable[[], int]
) -> None:
    hourly = limited(settings, rate_limit_posts_burst=100, rate_limit_posts_per_hour=4)
    with serve(hourly) as client:
        assert all(post(client, auth, "bot").status_code == 201 for _ in range(4))
        before = event_count()
        refused = post(client, auth, "bot")

    assert_rate_limited(refused, before, event_count, at_most=3600)
    assert int(refused.headers["Retry-After"]) > 3500


def test_the_per_ip_limit_counts_every_user_behind_one_address(
    settings: Settings, auth: Auth, event_count: Callable[[], int]
) -> None:
    per_ip = limited(settings, rate_limit_posts_per_minute_per_ip=3)
    with serve(per_ip, ip="198.51.100.7") as office, serve(per_ip, ip="203.0.113.9") as home:
        colleagues = [post(office, auth, user) for user in ("ann", "bob", "cat")]
        before = event_count()
        assert_rate_limited(post(office, auth, "dan"), before, event_count, at_most=60)
        elsewhere = post(home, auth, "dan")

    assert [r.status_code for r in colleagues] == [201, 201, 201]
    assert elsewhere.status_code == 201


def test_edits_have_their_own_looser_limit(
    settings: Settings, auth: Auth, event_count: Callable[[], int]
) -> None:
    with serve(limited(settings, rate_limit_edits_per_minute=3)) as client:
        comment = post(client, auth, "ann").json()["id"]
        edits = [
            client.patch(f"/v1/comments/{comment}", json={"body": f"v{i}"}, headers=auth("ann"))
            for i in range(3)
        ]
        before = event_count()
        refused = client.patch(f"/v1/comments/{comment}", json={"body": "v4"}, headers=auth("ann"))
        assert_rate_limited(refused, before, event_count, at_most=60)
        posted = post(client, auth, "ann")

    assert [r.status_code for r in edits] == [200, 200, 200]
    assert posted.status_code == 201


# The other writes, each limited per user per minute. Call `n` of each asks for a change
# from call n - 1, so every request let through appends an event.
Write = Callable[[TestClient, Auth, str, int], Response]
LEVELS = ("watching", "muted", "default")
NOTIFY_ON = ("replies", "none", "conversations")


def like_or_unlike(client: TestClient, auth: Auth, comment: str, n: int) -> Response:
    method = client.put if n % 2 == 0 else client.delete
    response: Response = method(f"/v1/comments/{comment}/like", headers=auth("ann"))
    return response


def change_subscription(client: TestClient, auth: Auth, _comment: str, n: int) -> Response:
    level = {"level": LEVELS[n % 3]}
    response: Response = client.put("/v1/threads/t1/subscription", json=level, headers=auth("ann"))
    return response


def change_preferences(client: TestClient, auth: Auth, _comment: str, n: int) -> Response:
    prefs = {"notify_on": NOTIFY_ON[n % 3]}
    response: Response = client.put("/v1/me/preferences", json=prefs, headers=auth("ann"))
    return response


def mark_read(client: TestClient, auth: Auth, comment: str, _n: int) -> Response:
    ids = {"ids": [comment]}
    response: Response = client.post("/v1/me/notifications/read", json=ids, headers=auth("ann"))
    return response


@pytest.mark.parametrize(
    ("setting", "write"),
    [
        ("rate_limit_likes_per_minute", like_or_unlike),
        ("rate_limit_subscriptions_per_minute", change_subscription),
        ("rate_limit_preferences_per_minute", change_preferences),
        ("rate_limit_mark_read_per_minute", mark_read),
    ],
)
def test_likes_subscriptions_preferences_and_read_marks_are_limited_per_user(
    settings: Settings, auth: Auth, event_count: Callable[[], int], setting: str, write: Write
) -> None:
    with serve(limited(settings, **{setting: 3})) as client:
        comment = post(client, auth, "bob").json()["id"]
        allowed = []
        for n in range(3):
            before = event_count()
            allowed.append(write(client, auth, comment, n))
            assert event_count() == before + 1, "each allowed request appends"
        before = event_count()
        assert_rate_limited(write(client, auth, comment, 3), before, event_count, at_most=60)
        posted = post(client, auth, "ann")  # her other limits are untouched
        others = client.put(f"/v1/comments/{comment}/like", headers=auth("cat"))

    assert [r.status_code for r in allowed] == [200] * 3
    assert posted.status_code == 201
    assert others.status_code == 200  # one person's limit holds nobody else back


def test_a_person_liking_and_unliking_forty_times_is_never_refused(
    limited_client: TestClient, auth: Auth
) -> None:
    comment = post(limited_client, auth, "bob").json()["id"]

    clicks = [like_or_unlike(limited_client, auth, comment, n) for n in range(40)]

    assert [r.status_code for r in clicks] == [200] * 40


def test_with_limits_disabled_nobody_is_refused(settings: Settings, auth: Auth) -> None:
    off = settings.model_copy(update={"rate_limit_enabled": False, "rate_limit_posts_burst": 1})
    with serve(off) as client:
        responses = [post(client, auth, "importer") for _ in range(12)]

    assert [r.status_code for r in responses] == [201] * 12


def test_with_redis_down_posting_still_works(
    settings: Settings, auth: Auth, caplog: pytest.LogCaptureFixture
) -> None:
    down = limited(settings, redis_url="redis://127.0.0.1:1/0", rate_limit_posts_burst=1)
    with caplog.at_level(logging.WARNING), serve(down) as client:
        responses = [post(client, auth, "ann") for _ in range(3)]

    assert [r.status_code for r in responses] == [201] * 3
    assert any("rate limits not applied" in r.getMessage() for r in caplog.records)


def test_limit_keys_expire_with_their_window(
    limited_client: TestClient, auth: Auth, redis: Redis
) -> None:
    post(limited_client, auth, "ann")

    keys = redis.keys("chorus:rate:*")
    assert len(keys) == 4  # ann: 10 s, 1 min, 1 h; her address: 1 min
    assert all(0 < redis.pttl(key) <= 3_600_000 for key in keys)


@pytest.mark.parametrize(
    ("peer", "counted_as"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("testclient", "testclient"),
    ],
)
def test_clients_are_counted_per_address_and_ipv6_per_64(peer: str, counted_as: str) -> None:
    scope = {"type": "http", "client": (peer, 1234), "headers": []}
    assert client_ip(Request(scope)) == counted_as
