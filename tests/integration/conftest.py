"""An API client on a real database and a real Redis, plus token helpers."""

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.api.app import create_app
from shared.settings import Settings
from shared.tokens import mint_token
from tests.conftest import _admin_engine, _postgres_url, service_unavailable

JWT_SECRET = "integration-test-secret-0123456789abcdef"

Auth = Callable[..., dict[str, str]]


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    """Posting limits are off: tests post faster than people do (test_rate_limits turns
    them on). No thread version is trusted from memory: these tests fold in-process and
    announce nothing, so every read reads (the tests of decisions 27 and 32 turn it on)."""
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        jwt_secret=JWT_SECRET,
        rate_limit_enabled=False,
        read_version_trust_seconds=0,
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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind, not migrated yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'chorus.db'}"
        return
    name = f"chorus_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        service_unavailable("PostgreSQL", exc)
    yield _postgres_url(name)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
