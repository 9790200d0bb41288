"""The real Chorus stack for `bench/run.py`: a fresh PostgreSQL database (by default
`chorus_bench_run`), a flushed Redis database (by default 14), `chorus api --workers N` on a
free port and M `chorus worker` processes.

Everything is torn down when the `running_stack` block ends, also on an error or Ctrl-C:
workers and API get SIGTERM (then SIGKILL of their process group), the Redis database is
flushed and the PostgreSQL database dropped.
"""

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import redis
import sqlalchemy as sa
from processes import Process, free_port, stop, wait_until_answering

from shared.migrate import upgrade

REPO = Path(__file__).resolve().parent.parent
# Defaults; `bench/run.py --postgres-url --database --redis-url` choose others, so that two
# runs at once (a test's and yours) do not drop each other's database or flush their Redis.
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE = "chorus_bench_run"
REDIS_URL = "redis://127.0.0.1:6379/14"
JWT_SECRET = "chorus-bench-run-secret-0123456789abcdef"


@dataclass
class Stack:
    """A running stack: where to reach it, and the processes to stop."""

    database_url: str
    redis_url: str
    base_url: str
    api_workers: int
    env: dict[str, str]
    api_pid: int = 0
    workers: list[Process] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def pg_dsn(self) -> str:
        """The database as a libpq URI (psycopg, no SQLAlchemy dialect suffix)."""
        return self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)

    def start_workers(self, count: int) -> None:
        for _ in range(count):
            log = tempfile.TemporaryFile()  # noqa: SIM115  (closed by stop_workers)
            self.logs.append(log)
            self.workers.append(spawn(["worker"], self.env, log))

    def stop_workers(self) -> None:
        for process in self.workers:
            stop(process)
        for log in self.logs:
            log.close()
        self.workers.clear()
        self.logs.clear()


def spawn(args: list[str], env: dict[str, str], log: IO[bytes]) -> Process:
    """`python -m services.cli ARGS` in its own session, so a terminal's Ctrl-C reaches only us
    and we stop it in order."""
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", *args],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@dataclass(frozen=True)
class Services:
    """Where the stack keeps its data: `database` is made (and dropped) on the PostgreSQL
    server that `postgres_url` (an existing database there) reaches; `redis_url` is flushed."""

    postgres_url: str = POSTGRES_URL
    database: str = DATABASE
    redis_url: str = REDIS_URL


@contextmanager
def fresh_database(services: Services) -> Iterator[str]:
    """The database `services.database`, recreated empty and migrated; dropped at the end."""
    name = services.database
    admin = sa.create_engine(services.postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = sa.make_url(services.postgres_url).set(database=name).render_as_string(False)
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def flushed_redis(url: str) -> Iterator[str]:
    """The Redis database `url`, flushed before and after."""
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
        yield url
    finally:
        client.flushdb()
        client.close()


@contextmanager
def running_stack(
    api_workers: int, fold_workers: int, services: Services = Services()
) -> Iterator[Stack]:
    """The whole stack until the block ends; torn down in reverse order whatever happens."""
    with ExitStack() as resources:
        database_url = resources.enter_context(fresh_database(services))
        redis_url = resources.enter_context(flushed_redis(services.redis_url))
        mail_dir = resources.enter_context(tempfile.TemporaryDirectory(prefix="chorus-bench-"))
        env = {
            **os.environ,
            "CHORUS_DATABASE_URL": database_url,
            "CHORUS_REDIS_URL": redis_url,
            "CHORUS_JWT_SECRET": JWT_SECRET,
            "CHORUS_RATE_LIMIT_ENABLED": "false",
            "CHORUS_SMTP_URL": f"file://{mail_dir}",
        }
        port = free_port()
        stack = Stack(database_url, redis_url, f"http://127.0.0.1:{port}", api_workers, env)
        api_log = resources.enter_context(tempfile.TemporaryFile())
        api = spawn(["api", "--port", str(port), "--workers", str(api_workers)], env, api_log)
        resources.callback(stop, api)
        stack.api_pid = api.pid
        resources.callback(stack.stop_workers)
        wait_until_answering(f"{stack.base_url}/healthz", api, api_log, "the API")
        stack.start_workers(fold_workers)
        yield stack
        for process in stack.workers:
            if process.poll() is not None:
                raise RuntimeError(f"a fold worker exited early (status {process.returncode})")
