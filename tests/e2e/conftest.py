"""Real processes: `chorus migrate` and `chorus api` (uvicorn) on a free port."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import IO

import httpx
import pytest

from tests.ports import free_port
from tests.processes import STOP_GRACE_SECONDS, kill, stop, stop_all
from tests.waiting import PATIENCE_SECONDS

JWT_SECRET = "e2e-test-secret-0123456789abcdef0123456"
CHORUS = [sys.executable, "-m", "services.cli"]
# A `chorus` command that must end by itself (migrate, token, a burst worker).
COMMAND_TIMEOUT_SECONDS = 300
# Seconds an HTTP client waits for an answer: generous, as a loaded machine answers slowly.
HTTP_TIMEOUT = 30


@pytest.fixture
def chorus_env(database_url: str, redis_url: str) -> dict[str, str]:
    """The environment of a deployed Chorus: a fresh database (both kinds) and a real Redis."""
    return {
        **os.environ,
        "CHORUS_DATABASE_URL": database_url,
        "CHORUS_REDIS_URL": redis_url,
        "CHORUS_JWT_SECRET": JWT_SECRET,
        "CHORUS_RATE_LIMIT_ENABLED": "false",  # the tests post faster than people do
    }


@contextmanager
def running_api(
    env: dict[str, str], port: int | None = None, *, grace: float = STOP_GRACE_SECONDS
) -> Iterator[str]:
    """`chorus api` on `port` until the block ends; then stopped (SIGTERM, SIGKILL after
    `grace` seconds) and reaped, whatever happened in the block."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            [*CHORUS, "api", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_until_healthy(base, process, output)
            yield base
        finally:
            stop(process, group=True, grace=grace)


def _wait_until_healthy(base: str, process: subprocess.Popen[bytes], output: IO[bytes]) -> None:
    if not answers(f"{base}/healthz", process):
        output.seek(0)
        pytest.fail(f"the API did not start:\n{output.read().decode()}")


def answers(url: str, process: subprocess.Popen[bytes], timeout: float = PATIENCE_SECONDS) -> bool:
    """Poll `url` until it answers 200; False if `process` dies or time runs out first."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


def run_chorus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """A `chorus` command that ends by itself; killed and reaped if it does not in time."""
    return subprocess.run(
        [*CHORUS, *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )


@pytest.fixture
def api(chorus_env: dict[str, str]) -> Callable[[], AbstractContextManager[str]]:
    run_chorus(chorus_env, "migrate")
    return lambda: running_api(chorus_env)


class Workers:
    """`chorus worker` processes, each in its own session so a kill takes its scheduler too.

    Every process in `processes` is reaped by `stop_all` (the fixture's teardown): SIGTERM,
    then SIGKILL of its process group once `grace` seconds have passed.
    """

    def __init__(self, env: dict[str, str], grace: float = STOP_GRACE_SECONDS) -> None:
        self.env = env
        self.grace = grace
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, **settings: str) -> subprocess.Popen[bytes]:
        env = {**self.env, **{f"CHORUS_{k.upper()}": v for k, v in settings.items()}}
        process = subprocess.Popen(
            [*CHORUS, "worker"],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def burst(self, **settings: str) -> None:
        env = {**self.env, **{f"CHORUS_{k.upper()}": v for k, v in settings.items()}}
        run_chorus(env, "worker", "--burst")

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker's whole process group, as a crash would; reaped."""
        kill(process, group=True)

    def pause(self, process: subprocess.Popen[bytes]) -> None:
        """SIGSTOP the worker's process group: it holds still (transactions open) until
        killed or resumed, so a test can look at what it has done so far."""
        os.killpg(process.pid, signal.SIGSTOP)

    def resume(self, process: subprocess.Popen[bytes]) -> None:
        os.killpg(process.pid, signal.SIGCONT)

    def stop_all(self) -> None:
        # A paused worker would sleep through SIGTERM: wake every one first.
        for process in self.processes:
            if process.returncode is None:
                with suppress(ProcessLookupError):
                    self.resume(process)
        stop_all(self.processes, group=True, grace=self.grace)


@pytest.fixture
def workers(chorus_env: dict[str, str]) -> Iterator[Workers]:
    run_chorus(chorus_env, "migrate")
    pool = Workers({**chorus_env, "CHORUS_SWEEP_INTERVAL_SECONDS": "1"})
    try:
        yield pool
    finally:
        pool.stop_all()
