"""Who may read `/metrics`: the bearer of CHORUS_METRICS_TOKEN, else private peers only.

The app on a real database and Redis, in-process, with the peer address each request
comes from set as uvicorn would set it (tests/e2e/test_proxy.py covers X-Forwarded-For
and the proxy in front).
"""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from shared.settings import Settings
from tests.integration.conftest import Auth

METRICS_TOKEN = "scrape-token-0123456789abcdef"
PRIVATE_PEERS = ["127.0.0.1", "10.1.2.3", "172.18.0.5", "192.168.1.9", "::1", "fd00::7"]
# 8.8.8.8 and friends: real public addresses (the documentation ranges count as private).
PUBLIC_PEERS = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"]


def peers(settings: Settings, addresses: list[str]) -> Iterator[tuple[str, TestClient]]:
    app = create_app(settings)
    for address in addresses:
        with TestClient(app, client=(address, 50000)) as client:
            yield address, client


def test_without_a_token_only_private_peers_may_scrape(settings: Settings) -> None:
    answers = {address: c.get("/metrics") for address, c in peers(settings, PRIVATE_PEERS)}
    refusals = {address: c.get("/metrics") for address, c in peers(settings, PUBLIC_PEERS)}

    assert {a: r.status_code for a, r in answers.items()} == dict.fromkeys(PRIVATE_PEERS, 200)
    assert all("chorus_http_request_duration_seconds" in r.text for r in answers.values())
    assert {a: r.status_code for a, r in refusals.items()} == dict.fromkeys(PUBLIC_PEERS, 403)
    error = refusals["8.8.8.8"].json()["error"]
    assert error["code"] == "metrics_not_public"
    assert "CHORUS_METRICS_TOKEN" in error["message"]
    assert "chorus_" not in refusals["8.8.8.8"].text


def test_a_peer_with_no_address_is_refused(settings: Settings) -> None:
    # Starlette's test client names its peer "testclient": not an address we can place.
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 403


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token-0123456789abcdef",
        f"Bearer {METRICS_TOKEN}x",
        f"Bearer {METRICS_TOKEN[:-1]}",
        f"Basic {METRICS_TOKEN}",
        METRICS_TOKEN,
        "Bearer ",
        "Bearer \u00e9t\u00e9".encode("latin-1"),  # not ASCII: still a plain 401
    ],
)
def test_with_a_token_every_other_request_gets_401(
    settings: Settings, authorization: str | bytes | None
) -> None:
    settings = settings.model_copy(update={"metrics_token": METRICS_TOKEN})
    headers = {"Authorization": authorization} if authorization is not None else {}
    # Even from loopback: once a token is set, the address earns nothing.
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as client:
        response = client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_metrics_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "chorus_" not in response.text


def test_with_a_token_its_bearer_scrapes_from_anywhere(settings: Settings, auth: Auth) -> None:
    settings = settings.model_copy(update={"metrics_token": METRICS_TOKEN})
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    answers = {
        address: c.get("/metrics", headers=bearer)
        for address, c in peers(settings, ["8.8.8.8", "10.0.0.2"])
    }

    assert {a: r.status_code for a, r in answers.items()} == {"8.8.8.8": 200, "10.0.0.2": 200}
    assert "chorus_metrics_source_up" in answers["8.8.8.8"].text


def test_the_rest_of_the_api_is_not_affected(settings: Settings, auth: Auth) -> None:
    settings = settings.model_copy(update={"metrics_token": METRICS_TOKEN})
    with TestClient(create_app(settings), client=("8.8.8.8", 50000)) as client:
        health = client.get("/healthz")
        posted = client.post("/v1/threads/t1/comments", json={"body": "hi"}, headers=auth("ann"))

    assert health.status_code == 200
    assert posted.status_code == 201
