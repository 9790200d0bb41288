"""`chorus dev` on a machine with nothing but Python: embedded Redis, SQLite, API, worker."""

import email
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from email import policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import psutil
import pytest

from shared.jwt_secret import PUBLIC_SECRETS
from shared.tokens import mint_token
from tests.e2e.conftest import CHORUS, PATIENCE_SECONDS, answers, free_port
from tests.processes import stop

StartDev = Callable[[int, Path, dict[str, str]], subprocess.Popen[bytes]]


@pytest.fixture
def chorus_dev() -> Iterator[StartDev]:
    """Starts `chorus dev`. The tests stop it themselves; should one fail first, it and
    whatever it started are stopped here, and it is reaped either way."""
    started: list[subprocess.Popen[bytes]] = []

    def start(port: int, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        dev = subprocess.Popen(
            [*CHORUS, "dev", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(dev)
        return dev

    yield start
    for dev in started:
        children = []
        if dev.poll() is None:  # not reaped yet, so its pid is still its own
            with suppress(psutil.NoSuchProcess):
                children = psutil.Process(dev.pid).children(recursive=True)
        stop(dev)
        for child in children:  # what it left behind; psutil checks the pid was not reused
            with suppress(psutil.NoSuchProcess):
                child.kill()


def test_chorus_dev_serves_folds_and_stops_cleanly(tmp_path: Path, chorus_dev: StartDev) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    env["PATH"] = str(Path(sys.executable).parent)  # no redis-server on PATH: use the embedded one
    dev = chorus_dev(port, tmp_path, env)
    base = f"http://127.0.0.1:{port}"
    try:
        assert answers(f"{base}/readyz", dev), "chorus dev did not become ready"
        children = psutil.Process(dev.pid).children(recursive=True)
        # The README's quick start: `chorus token` in the same folder, with no secret set.
        minted = subprocess.run(
            [*CHORUS, "token", "--sub", "ann", "--name", "Ann"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        token = minted.stdout.strip()
        forged = [
            httpx.post(
                f"{base}/v1/threads/first-post/comments",
                json={"body": "I am an admin now"},
                headers={"Authorization": f"Bearer {mint_token(key, sub='eve', name='Eve')}"},
            ).status_code
            for key in sorted(PUBLIC_SECRETS)
        ]

        posted = httpx.post(
            f"{base}/v1/threads/first-post/comments",
            json={"body": "Hello *world*"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        page = httpx.get(
            f"{base}/v1/threads/first-post/comments",
            params={"min_version": posted["version"]},
            timeout=10,
        ).json()
        # What a newcomer meets next: the address itself, and an email about a reply.
        home = httpx.get(f"{base}/")
        key = (tmp_path / ".chorus" / "jwt-secret").read_text().strip()
        ann = mint_token(key, sub="ann", name="Ann", email="ann@example.com")
        httpx.post(
            f"{base}/v1/threads/first-post/comments",
            json={"body": "Hi"},
            headers={"Authorization": f"Bearer {ann}"},
        ).raise_for_status()
        reply = httpx.post(
            f"{base}/v1/threads/first-post/comments",
            json={"body": "Hello *Ann*", "parent_id": posted["id"]},
            headers={"Authorization": f"Bearer {mint_token(key, sub='bob', name='Bob')}"},
        ).json()
        mail = first_email(tmp_path / ".chorus" / "mail", dev)
        link = f"{base}/c/{reply['id']}"
        permalink = httpx.get(link, timeout=10)
    finally:
        dev.send_signal(signal.SIGTERM)
        code = dev.wait(timeout=30)

    assert "signing with the key of `chorus dev` in .chorus/jwt-secret" in minted.stderr
    assert forged == [401] * len(PUBLIC_SECRETS)  # no published key signs for this server
    key_file = tmp_path / ".chorus" / "jwt-secret"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert page["version"] >= posted["version"]
    assert [c["body_html"] for c in page["comments"]] == ["<p>Hello <em>world</em></p>"]
    assert home.status_code == 200
    assert home.headers["content-type"].startswith("text/html")
    assert 'href="/demo/"' in home.text
    assert 'href="/docs"' in home.text
    assert link in mail, "email links lead to this server's port, to a page a person can read"
    assert "Hello Ann" in mail, "the excerpt is the words, not the markdown"
    assert permalink.status_code == 200
    assert permalink.headers["content-type"].startswith("text/html")
    assert "<p>Hello <em>world</em></p>" in permalink.text  # the comment replied to
    assert "<p>Hello <em>Ann</em></p>" in permalink.text
    assert (tmp_path / "chorus.db").exists()
    assert code == 0
    assert len(children) >= 3  # redis, worker, api (and their own helpers)
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left running: {[p.cmdline() for p in alive]}"


def first_email(directory: Path, dev: subprocess.Popen[bytes]) -> str:
    """The text of the first email `chorus dev` wrote to its mail folder."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while dev.poll() is None and time.monotonic() < deadline:
        written = sorted(directory.glob("*.eml")) if directory.is_dir() else []
        if written:
            message = email.message_from_bytes(written[0].read_bytes(), policy=policy.default)
            assert isinstance(message, EmailMessage)
            text = message.get_body(("plain",))
            assert text is not None
            return str(text.get_content())
        time.sleep(0.1)
    raise AssertionError("chorus dev wrote no email")


def test_ctrl_c_stops_everything_with_the_redis_server_on_path(
    tmp_path: Path, chorus_dev: StartDev
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    dev = chorus_dev(port, tmp_path, env)
    assert answers(f"http://127.0.0.1:{port}/healthz", dev), "chorus dev did not start"
    children = psutil.Process(dev.pid).children(recursive=True)

    dev.send_signal(signal.SIGINT)

    assert dev.wait(timeout=30) == 0
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
