"""An API client on a real database and a real Redis, plus token helpers."""

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from shared.settings import Settings
from shared.tokens import mint_token

JWT_SECRET = "integration-test-secret-0123456789abcdef"

Auth = Callable[..., dict[str, str]]


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    """Posting limits are off: tests post faster than people do (test_rate_limits turns
    them on)."""
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        jwt_secret=JWT_SECRET,
        rate_limit_enabled=False,
    )


# The peer address of in-process requests: a process on this machine, like the tests'
# real servers (TestClient's own "testclient" is no address, and /metrics refuses it).
LOOPBACK_PEER = ("127.0.0.1", 50000)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), client=LOOPBACK_PEER) as client:
        yield client


@pytest.fixture
def auth() -> Auth:
    """`auth("ann", roles=["admin"])` -> headers carrying a valid token for that user."""

    def headers(
        sub: str,
        name: str | None = None,
        *,
        roles: list[str] | None = None,
        email: str | None = None,
        ttl: timedelta = timedelta(hours=1),
        secret: str = JWT_SECRET,
    ) -> dict[str, str]:
        token = mint_token(
            secret, sub=sub, name=name or sub.title(), email=email, roles=roles, ttl=ttl
        )
        return {"Authorization": f"Bearer {token}"}

    return headers
