"""Real processes: `chorus migrate` and `chorus api` (uvicorn) on a free port."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO

import httpx
import pytest

JWT_SECRET = "e2e-test-secret-0123456789abcdef0123456"
CHORUS = [sys.executable, "-m", "services.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
def running_api(env: dict[str, str], port: int | None = None) -> Iterator[str]:
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            [*CHORUS, "api", "--port", str(port)], env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            _wait_until_healthy(base, process, output)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_until_healthy(base: str, process: subprocess.Popen[bytes], output: IO[bytes]) -> None:
    if not answers(f"{base}/healthz", process, timeout=20):
        output.seek(0)
        pytest.fail(f"the API did not start:\n{output.read().decode()}")


def answers(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> bool:
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


@pytest.fixture
def api(chorus_env: dict[str, str]) -> Callable[[], AbstractContextManager[str]]:
    subprocess.run([*CHORUS, "migrate"], env=chorus_env, check=True, capture_output=True)
    return lambda: running_api(chorus_env)


class Workers:
    """`chorus worker` processes, each in its own session so a kill takes its scheduler too."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
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
        subprocess.run([*CHORUS, "worker", "--burst"], env=env, check=True, capture_output=True)

    def kill(self, process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        os.killpg(process.pid, sig)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def workers(chorus_env: dict[str, str]) -> Iterator[Workers]:
    subprocess.run([*CHORUS, "migrate"], env=chorus_env, check=True, capture_output=True)
    pool = Workers({**chorus_env, "CHORUS_SWEEP_INTERVAL_SECONDS": "1"})
    yield pool
    pool.stop_all()
