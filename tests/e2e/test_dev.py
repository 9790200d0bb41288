"""`chorus dev` on a machine with nothing but Python: embedded Redis, SQLite, API, worker."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psutil

from shared.settings import DEV_JWT_SECRET
from shared.tokens import mint_token
from tests.e2e.conftest import CHORUS, HTTP_TIMEOUT, answers
from tests.ports import free_port
from tests.processes import stop
from tests.waiting import PATIENCE_SECONDS


@contextmanager
def chorus_dev(port: int, cwd: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`chorus dev` until the block ends. The test stops it itself; should that fail, it and
    whatever it started are stopped here, and it is reaped."""
    dev = subprocess.Popen(
        [*CHORUS, "dev", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children: list[psutil.Process] = []
    try:
        if answers(f"http://127.0.0.1:{port}/healthz", dev):
            children = psutil.Process(dev.pid).children(recursive=True)
        yield dev
    finally:
        stop(dev)
        for child in children:  # anything `chorus dev` left behind
            with suppress(psutil.NoSuchProcess):
                child.kill()  # psutil checks first that the pid was not reused
        psutil.wait_procs(children, timeout=PATIENCE_SECONDS)


def test_chorus_dev_serves_folds_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    env["PATH"] = str(Path(sys.executable).parent)  # no redis-server on PATH: use the embedded one
    base = f"http://127.0.0.1:{port}"
    with chorus_dev(port, tmp_path, env) as dev:
        try:
            assert answers(f"{base}/readyz", dev), "chorus dev did not become ready"
            children = psutil.Process(dev.pid).children(recursive=True)
            token = mint_token(DEV_JWT_SECRET, sub="ann", name="Ann")

            posted = httpx.post(
                f"{base}/v1/threads/first-post/comments",
                json={"body": "Hello *world*"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=HTTP_TIMEOUT,
            ).json()
            page = httpx.get(
                f"{base}/v1/threads/first-post/comments",
                params={"min_version": posted["version"]},
                timeout=HTTP_TIMEOUT,
            ).json()
        finally:
            dev.send_signal(signal.SIGTERM)
            code = dev.wait(timeout=PATIENCE_SECONDS)

    assert page["version"] >= posted["version"]
    assert [c["body_html"] for c in page["comments"]] == ["<p>Hello <em>world</em></p>"]
    assert (tmp_path / "chorus.db").exists()
    assert code == 0
    assert len(children) >= 3  # redis, worker, api (and their own helpers)
    _, alive = psutil.wait_procs(children, timeout=PATIENCE_SECONDS)
    assert alive == [], f"left running: {[p.cmdline() for p in alive]}"


def test_ctrl_c_stops_everything_with_the_redis_server_on_path(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    with chorus_dev(port, tmp_path, env) as dev:
        assert answers(f"http://127.0.0.1:{port}/healthz", dev), "chorus dev did not start"
        children = psutil.Process(dev.pid).children(recursive=True)

        dev.send_signal(signal.SIGINT)

        assert dev.wait(timeout=PATIENCE_SECONDS) == 0
        _, alive = psutil.wait_procs(children, timeout=PATIENCE_SECONDS)
        assert alive == []
