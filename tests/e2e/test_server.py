"""The API as deployed: a uvicorn process, a migrated database, a real Redis."""

import http.client
import json
import subprocess
from urllib.parse import urlsplit

import httpx
from redis import Redis
from rq import Queue

from shared.nudges import FOLD_QUEUE
from tests.e2e.conftest import CHORUS, JWT_SECRET
from tests.waiting import wait_for


def _token(env: dict[str, str], *args: str) -> dict[str, str]:
    token = subprocess.run(
        [*CHORUS, "token", *args], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    return {"Authorization": f"Bearer {token}"}


def test_a_conversation_over_http_lands_in_the_log(api, chorus_env, redis: Redis) -> None:
    ann = _token(chorus_env, "--sub", "ann", "--name", "Ann")
    bob = _token(chorus_env, "--sub", "bob", "--name", "Bob")
    mod = _token(chorus_env, "--sub", "mod", "--name", "Mod", "--role", "moderator")
    with api() as base, httpx.Client(base_url=base, timeout=10) as http:
        top = http.post("/v1/threads/p1/comments", json={"body": "Top"}, headers=ann).json()
        reply = http.post(
            "/v1/threads/p1/comments", json={"body": "Re", "parent_id": top["id"]}, headers=bob
        )
        liked = http.put(f"/v1/comments/{top['id']}/like", headers=bob)
        log = http.get("/v1/threads/p1/events", headers=mod).json()

    assert reply.status_code == 201
    assert liked.json()["like_count"] == 1
    assert [e["type"] for e in log["events"]] == [
        "ThreadRegistered",
        "CommentPosted",
        "CommentPosted",
        "CommentLiked",
    ]
    # Nudges leave after the answers (decision 16); coalesced, they queue one job.
    wait_for(lambda: Queue(FOLD_QUEUE, connection=redis).count == 1, "one fold job")


def test_idempotency_survives_a_restart_of_the_api_process(api, chorus_env) -> None:
    headers = {**_token(chorus_env, "--sub", "ann", "--name", "Ann"), "Idempotency-Key": "r1"}
    with api() as base:
        first = httpx.post(f"{base}/v1/threads/p1/comments", json={"body": "x"}, headers=headers)
    with api() as base:
        again = httpx.post(f"{base}/v1/threads/p1/comments", json={"body": "x"}, headers=headers)
        mod = _token(chorus_env, "--sub", "m", "--name", "M", "--role", "admin")
        log = httpx.get(f"{base}/v1/threads/p1/events", headers=mod).json()

    assert again.json() == first.json()
    assert log["version"] == 2


def test_an_oversized_streamed_body_is_refused_by_the_real_server(api, chorus_env) -> None:
    headers = {
        **_token(chorus_env, "--sub", "ann", "--name", "Ann"),
        "Content-Type": "application/json",
    }

    def chunks():
        yield b'{"body": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    with api() as base:
        refused = httpx.post(f"{base}/v1/threads/p1/comments", content=chunks(), headers=headers)
        missing = httpx.get(f"{base}/v1/threads/p1/events", headers=headers)

    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "body_too_large"
    assert missing.status_code == 403


def test_the_token_command_signs_with_the_configured_secret(chorus_env) -> None:
    import jwt

    token = _token(chorus_env, "--sub", "u", "--name", "U", "--email", "u@x.org")
    claims = jwt.decode(token["Authorization"].split()[1], JWT_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["name"], claims["email"]) == ("u", "U", "u@x.org")


def test_bad_input_is_refused_and_the_connection_stays_usable(api, chorus_env) -> None:
    """On PostgreSQL these were 500s whose connection uvicorn then dropped."""
    ann = _token(chorus_env, "--sub", "ann", "--name", "Ann", "--role", "admin")
    as_json = {**ann, "Content-Type": "application/json"}
    bad = [
        ("GET", "/v1/comments/%00", None, {}),
        ("GET", "/v1/comments/%00/replies", None, {}),
        ("PUT", "/v1/comments/%00/like", None, ann),
        ("POST", "/v1/threads/p1/comments", '{"body": "x", "parent_id": "a\\u0000"}', as_json),
        ("POST", "/v1/threads/p1/comments", '{"body": "lone \\ud800"}', as_json),
        ("POST", "/v1/me/notifications/read", json.dumps({"ids": ["a" * 41]}), as_json),
        ("POST", "/v1/me/notifications/read", '{"ids": ["a\\u0000"]}', as_json),
        ("GET", f"/v1/threads/p1/events?after_version={2**64}", None, ann),
        ("GET", f"/v1/threads/p1/events?after_version={2**31}", None, ann),
    ]
    with api() as base:
        url = urlsplit(base)
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
        try:
            conn.request("POST", "/v1/threads/p1/comments", '{"body": "first"}', as_json)
            first = conn.getresponse()
            assert (first.status, bool(first.read())) == (201, True)
            socket = conn.sock
            answers = []
            for method, path, body, headers in bad:
                conn.request(method, path, body, headers)
                response = conn.getresponse()
                answers.append((path, response.status, json.loads(response.read())["error"]))
            conn.request("GET", "/v1/threads/p1/events", headers=ann)
            log = conn.getresponse()
            events = json.loads(log.read())["events"]
            same_connection = conn.sock is socket
        finally:
            conn.close()

    assert [(path, status) for path, status, _ in answers] == [(p, 422) for _, p, _, _ in bad]
    assert all(error["code"] in ("invalid_characters", "invalid_input") for *_, error in answers)
    assert log.status == 200
    assert same_connection, "every refusal kept the keep-alive connection"
    assert [e["type"] for e in events] == ["ThreadRegistered", "CommentPosted"]
