"""Live updates across real processes: `chorus api` restarted between posts, `chorus
worker` folding and announcing. A reader who reconnects loses nothing and sees nothing
twice, because the replay comes from the log, not from the API process or Redis."""

import httpx
import pytest

from shared.tokens import mint_token
from tests.e2e.conftest import HTTP_TIMEOUT, JWT_SECRET, Workers, run_chorus, running_api
from tests.live_client import LiveReader


def bearer(sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(JWT_SECRET, sub=sub, name=sub.title())}"}


@pytest.fixture
def live_env(chorus_env: dict[str, str]) -> dict[str, str]:
    run_chorus(chorus_env, "migrate")
    return {**chorus_env, "CHORUS_LIVE_KEEP_ALIVE_SECONDS": "0.2"}


def post(base: str, who: str) -> dict[str, str | int]:
    answer = httpx.post(
        f"{base}/v1/threads/t1/comments",
        json={"body": f"from {who}"},
        headers=bearer(who),
        timeout=HTTP_TIMEOUT,
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, str | int] = answer.json()
    return body


def test_a_reader_loses_nothing_across_an_api_restart(
    live_env: dict[str, str], workers: Workers
) -> None:
    workers.start()
    with running_api(live_env) as base:
        reader = LiveReader(f"{base}/v1/threads/t1/live").start()
        reader.wait_until_live()
        first = post(base, "ann")
        reader.wait_for_versions(int(first["version"]))
        reader.close()
    seen = reader.changes()
    last_seen = seen[-1].id

    with running_api(live_env) as base:  # a new process, nobody listening meanwhile
        missed = [post(base, who) for who in ("bob", "cat", "dan")]
    with running_api(live_env) as base:
        again = LiveReader(f"{base}/v1/threads/t1/live", {"Last-Event-ID": str(last_seen)})
        again.start().wait_for_versions(*(int(m["version"]) for m in missed))
        later = post(base, "eve")  # and live again after the replay
        again.wait_for_versions(int(later["version"]))
        again.close()

    assert [e.data.get("comment_id") for e in seen] == [None, first["id"]]
    replayed = again.changes()
    assert [e.data["comment_id"] for e in replayed] == [m["id"] for m in [*missed, later]]
    assert [int(e.id or 0) for e in replayed] == list(range(int(last_seen or 0) + 1, 7))
