"""A publication's own pages call the API from the browser: CORS for the allowed origins,
on every answer a widget may get (refusals included), and for nobody else."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from services.api.app import create_app
from shared.settings import Settings
from tests.integration.conftest import LOOPBACK_PEER, Auth

SITE = "https://news.example.com"
ELSEWHERE = "https://evil.example.net"
REQUESTED_HEADERS = "authorization, content-type, idempotency-key, if-none-match, last-event-id"


def embedding(settings: Settings, **more: object) -> Settings:
    return settings.model_copy(update={"cors_origins": (SITE, "http://localhost:3000"), **more})


@pytest.fixture
def site_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(embedding(settings)), client=LOOPBACK_PEER) as client:
        yield client


def cors_headers(response: Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def preflight(client: TestClient, method: str, url: str, origin: str = SITE) -> Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": REQUESTED_HEADERS,
    }
    response: Response = client.options(url, headers=headers)
    return response


def assert_readable_by_the_site(response: Response) -> None:
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    exposed = {
        h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"etag", "retry-after", "x-request-id"} <= exposed
    assert "origin" in response.headers["Vary"].lower()
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/v1/threads/t1/comments"),
        ("PATCH", "/v1/comments/c1"),
        ("DELETE", "/v1/comments/c1"),
        ("PUT", "/v1/comments/c1/like"),
        ("GET", "/v1/threads/t1/comments"),
        ("POST", "/v1/me/notifications/read"),
    ],
)
def test_the_sites_preflights_are_allowed_without_a_token(
    site_client: TestClient, method: str, url: str
) -> None:
    response = preflight(site_client, method, url)

    assert response.status_code == 204
    assert cors_headers(response) == {
        "access-control-allow-origin": SITE,
        "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE",
        "access-control-allow-headers": (
            "Authorization, Content-Type, Idempotency-Key, If-None-Match, Last-Event-ID"
        ),
        "access-control-max-age": "600",
    }
    assert response.headers["Vary"] == "Origin"
    assert preflight(site_client, method, url, "http://localhost:3000").status_code == 204


def test_no_other_middleware_refuses_a_preflight(settings: Settings) -> None:
    limited = embedding(settings, rate_limit_enabled=True, rate_limit_posts_burst=1)
    with TestClient(create_app(limited), client=LOOPBACK_PEER) as client:
        headers = {"Origin": SITE, "Access-Control-Request-Method": "POST"}
        answers = [
            client.options(
                "/v1/threads/t1/comments", headers={**headers, "Content-Length": "9" * 9}
            ),
            client.options("/v1/threads/t%00/comments", headers=headers),
            *[client.options("/v1/threads/t1/comments", headers=headers) for _ in range(5)],
        ]
    assert [a.status_code for a in answers] == [204] * len(answers)


def test_the_sites_answers_are_readable(site_client: TestClient, auth: Auth) -> None:
    posted = site_client.post(
        "/v1/threads/t1/comments",
        json={"body": "from the widget"},
        headers={"Origin": SITE, "Idempotency-Key": "k1", **auth("ann")},
    )
    read = site_client.get("/v1/threads/t1/comments", headers={"Origin": SITE})

    assert posted.status_code == 201
    assert read.status_code == 200
    for response in (posted, read):
        assert_readable_by_the_site(response)
    assert read.headers["Vary"] == "Authorization, Origin"


def test_refusals_are_readable_by_the_site(settings: Settings, auth: Auth, tmp_path: Path) -> None:
    site = {"Origin": SITE}
    limited = embedding(settings, rate_limit_enabled=True, rate_limit_posts_burst=1)
    with TestClient(create_app(limited), client=LOOPBACK_PEER) as client:
        post = "/v1/threads/t1/comments"
        refusals = {
            413: client.post(post, content=b"x" * (settings.max_request_bytes + 1), headers=site),
            422: client.get("/v1/threads/a%00b/comments", headers=site),
            401: client.post(post, json={"body": "no token"}, headers=site),
            404: client.get("/v1/comments/nothing-here", headers=site),
        }
        ann = {**site, **auth("ann")}
        assert client.post(post, json={"body": "one"}, headers=ann).status_code == 201
        refusals[429] = client.post(post, json={"body": "two"}, headers=ann)
    unreachable = embedding(settings, database_url=f"sqlite:///{tmp_path}/missing/chorus.db")
    with TestClient(create_app(unreachable), client=LOOPBACK_PEER) as client:
        refusals[503] = client.get("/v1/threads/t1", headers=site)

    for status, response in refusals.items():
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"]
        assert_readable_by_the_site(response)
        assert response.headers["Cache-Control"] == "no-store"
    assert int(refusals[429].headers["Retry-After"]) >= 1


def test_other_origins_get_no_cors_headers(site_client: TestClient) -> None:
    for origin in [
        ELSEWHERE,
        "https://news.example.com.evil.net",
        "null",
        "http://news.example.com",
    ]:
        answered = site_client.get("/v1/threads/t1/comments", headers={"Origin": origin})
        refused = preflight(site_client, "POST", "/v1/threads/t1/comments", origin)

        assert answered.status_code == 200
        assert cors_headers(answered) == {}
        assert "origin" in answered.headers["Vary"].lower(), "a CDN must key on the origin"
        assert refused.status_code == 405
        assert cors_headers(refused) == {}


def test_only_v1_is_cross_origin(site_client: TestClient) -> None:
    for url in ["/healthz", "/metrics", "/docs", "/openapi.json", "/v1"]:
        answered = site_client.get(url, headers={"Origin": SITE})
        refused = preflight(site_client, "GET", url)

        assert cors_headers(answered) == {}, url
        assert "Vary" not in answered.headers, url
        assert refused.status_code != 204, url
        assert cors_headers(refused) == {}, url


def test_without_origins_the_api_is_same_origin_only(client: TestClient, auth: Auth) -> None:
    posted = client.post(
        "/v1/threads/t1/comments", json={"body": "x"}, headers={"Origin": SITE, **auth("ann")}
    )
    refused = preflight(client, "POST", "/v1/threads/t1/comments")

    assert posted.status_code == 201
    assert cors_headers(posted) == {}
    assert "Vary" not in posted.headers
    assert refused.status_code == 405
    assert cors_headers(refused) == {}
