"""Fixtures for real databases (SQLite and PostgreSQL) and a real Redis.

Each test session is isolated from any other running on the machine: every PostgreSQL
database it makes has a unique name, and its Redis is a redis-server of its own on a free
port (unless CHORUS_TEST_REDIS_URL names one). PostgreSQL and Redis tests skip, saying why,
when the server does not answer or no redis-server can be found; with
CHORUS_TEST_REQUIRE_SERVICES=1 (as in CI) they fail instead.
"""

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import hypothesis
import pytest
import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import Engine

from shared.db import create_db_engine
from shared.migrate import upgrade
from shared.store import EventStore
from tests.e2e.private_services import private_redis

if TYPE_CHECKING:
    from tests.smtp_sink import Inbox

POSTGRES_ADMIN_URL = os.environ.get(
    "CHORUS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# A Redis database the session may flush before each test; unset: a private redis-server.
CONFIGURED_REDIS_URL = os.environ.get("CHORUS_TEST_REDIS_URL")
REQUIRE_SERVICES = os.environ.get("CHORUS_TEST_REQUIRE_SERVICES") == "1"

# Property tests judge results, not speed: an example may take long on a loaded machine.
hypothesis.settings.register_profile(
    "chorus", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile("chorus")


def service_unavailable(what: str, exc: Exception) -> None:
    message = f"{what} is not reachable ({type(exc).__name__}); skipping tests that need it"
    if REQUIRE_SERVICES:
        pytest.fail(message.replace("skipping", "CHORUS_TEST_REQUIRE_SERVICES=1 forbids skipping"))
    pytest.skip(message)


def _admin_engine() -> Engine:
    return sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def _postgres_url(database: str) -> str:
    return str(sa.make_url(POSTGRES_ADMIN_URL).set(database=database).render_as_string(False))


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated database that each test's database is copied from."""
    name = f"chorus_template_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        service_unavailable("PostgreSQL", exc)
    upgrade(_postgres_url(name))
    yield name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "chorus.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database of each kind: every test runs on both."""
    if request.param == "sqlite":
        path = tmp_path / "chorus.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template")
    name = f"chorus_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield _postgres_url(name)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> EventStore:
    return EventStore(engine)


@pytest.fixture
def event_count(engine: Engine) -> Callable[[], int]:
    """How many events the whole log holds: tests compare it before and after a refusal."""

    def count() -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT COUNT(*) FROM events")).scalar_one())

    return count


@pytest.fixture(scope="session")
def session_redis_url() -> Iterator[str]:
    """This session's Redis: CHORUS_TEST_REDIS_URL if set, else a redis-server of its own on
    a free port, stopped (and reaped) when the session ends. Two sessions side by side then
    never flush each other's data."""
    if CONFIGURED_REDIS_URL:
        yield CONFIGURED_REDIS_URL
        return
    with ExitStack() as stack:
        try:
            server = stack.enter_context(private_redis())
        except (FileNotFoundError, RuntimeError) as exc:
            service_unavailable("redis-server (for this session's own Redis)", exc)
        yield server.url


@pytest.fixture
def redis_url(session_redis_url: str) -> Iterator[str]:
    """A real Redis database reserved for tests, emptied before each test."""
    client = Redis.from_url(session_redis_url, socket_connect_timeout=1)
    try:
        client.flushdb()
    except RedisError as exc:
        client.close()
        service_unavailable("Redis", exc)
    yield session_redis_url
    client.flushdb()
    client.close()


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def inbox() -> Iterator["Inbox"]:
    from tests.smtp_sink import Inbox, serve

    yield from serve(Inbox())
