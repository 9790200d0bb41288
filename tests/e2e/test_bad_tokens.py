"""One reader's token must never fail other readers' writes (issue 10, item 1).

Twelve honest writers post while two others keep posting with tokens whose claims no
column can hold: an address over 320 characters, a NUL, a lone surrogate (PyJWT decodes
a `\\ud800` escape into one). Before decision 17 such a token reached the people upsert
that every group-commit batch shares, and each honest post in its batch failed with a
500 on PostgreSQL. Now the bad tokens are refused (401) for their holder alone, and
every honest post is accepted and in the log exactly once.
"""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from shared.db import create_db_engine
from shared.store import EventStore
from shared.tokens import mint_token
from tests.e2e.conftest import JWT_SECRET

HONEST = 12
POSTS_EACH = 10
BAD_CLAIMS: dict[str, dict[str, str]] = {
    "email over 320 characters": {"email": "a" * 64 + "@" + "b" * 300 + ".example.com"},
    "NUL in email": {"email": "bad\x00@example.com"},
    "lone surrogate in email": {"email": "bad\ud800@example.com"},
    "NUL in name": {"name": "Bad\x00Name"},
    "lone surrogate in sub": {"sub": "bad-\udfff"},
    "control character in sub": {"sub": "bad-\x1b"},
}


def bearer(sub: str, name: str, email: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(JWT_SECRET, sub=sub, name=name, email=email)}"}


def test_bad_tokens_are_refused_alone_and_every_honest_post_lands(api, database_url: str) -> None:
    start = threading.Barrier(HONEST + 2)
    honest_done = threading.Event()

    def honest(n: int) -> list[tuple[str, httpx.Response]]:
        headers = bearer(f"reader-{n}", f"Reader {n}", f"reader{n}@example.com")
        answers = []
        with httpx.Client(base_url=base, timeout=30) as http:
            start.wait(timeout=30)
            for i in range(POSTS_EACH):
                body = f"honest {n}.{i}"
                response = http.post(
                    "/v1/threads/t1/comments", json={"body": body}, headers=headers
                )
                answers.append((body, response))
        return answers

    def bad(n: int) -> list[tuple[str, httpx.Response]]:
        tokens = [
            (kind, bearer(**{"sub": f"bad-{n}", "name": "Bad", **claims}))
            for kind, claims in BAD_CLAIMS.items()
        ]
        answers = []
        with httpx.Client(base_url=base, timeout=30) as http:
            start.wait(timeout=30)
            while not honest_done.is_set() or len(answers) < len(tokens):
                kind, headers = tokens[len(answers) % len(tokens)]
                response = http.post(
                    "/v1/threads/t1/comments", json={"body": f"bad {n}: {kind}"}, headers=headers
                )
                answers.append((kind, response))
        return answers

    with api() as base, ThreadPoolExecutor(HONEST + 2) as pool:
        bad_runs = [pool.submit(bad, n) for n in range(2)]
        honest_runs = [pool.submit(honest, n) for n in range(HONEST)]
        honest_answers = [a for run in honest_runs for a in run.result()]
        honest_done.set()
        bad_answers = [a for run in bad_runs for a in run.result()]

    statuses = Counter(response.status_code for _, response in honest_answers)
    assert statuses == {201: HONEST * POSTS_EACH}, statuses
    for kind, response in bad_answers:
        assert response.status_code == 401, (kind, response.status_code, response.text)
        assert response.json()["error"]["code"] == "invalid_token", kind
    assert {kind for kind, _ in bad_answers} == set(BAD_CLAIMS)

    engine = create_db_engine(database_url)
    try:
        logged = Counter(
            e.data["body"] for e in EventStore(engine).read_all(0) if e.type == "CommentPosted"
        )
    finally:
        engine.dispose()
    assert logged == Counter(body for body, _ in honest_answers)
