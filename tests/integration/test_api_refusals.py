"""Bad input: each refusal is a clear JSON error and appends nothing."""

import json
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.integration.conftest import Auth


@pytest.fixture
def seeded(client: TestClient, auth: Auth) -> dict[str, str]:
    """Two threads: a comment by ann in t1, one in t2, and a deleted one in t1."""
    ids = {}
    for name, thread in (("ann_t1", "t1"), ("t2", "t2"), ("deleted", "t1")):
        r = client.post(f"/v1/threads/{thread}/comments", json={"body": "x"}, headers=auth("ann"))
        ids[name] = r.json()["id"]
    client.delete(f"/v1/comments/{ids['deleted']}", headers=auth("ann"))
    return ids


def assert_refused(
    response: Response, status: int, code: str | None, before: int, count: Callable[[], int]
) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    assert count() == before, "a refused request must append nothing"


def post_json(
    client: TestClient, url: str, payload: object, headers: dict[str, str], method: str = "POST"
) -> Response:
    """Send `payload` as JSON with non-ASCII escaped, as browsers' JSON.stringify may:
    a lone surrogate goes out as the escape "\\ud800", which a UTF-8 encoder could not send.
    """
    body = json.dumps(payload).encode()
    headers = {**headers, "Content-Type": "application/json"}
    return client.request(method, url, content=body, headers=headers)


def _bad_tokens(auth: Auth) -> dict[str, dict[str, str]]:
    valid = auth("ann")["Authorization"].split()[1]
    header, payload, signature = valid.split(".")
    return {
        "no token": {},
        "not a bearer": {"Authorization": "Basic YW5uOnB3"},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "forged signature": auth("ann", secret="some-other-secret-of-the-right-size"),
        "tampered payload": {"Authorization": f"Bearer {header}.{payload}x.{signature}"},
        "expired": auth("ann", ttl=timedelta(hours=-1)),
        "alg none": {"Authorization": f"Bearer {header}.{payload}."},
    }


@pytest.mark.parametrize(
    "case",
    [
        "no token",
        "not a bearer",
        "garbage",
        "forged signature",
        "tampered payload",
        "expired",
        "alg none",
    ],
)
def test_writes_without_a_valid_token_are_refused(
    client: TestClient, auth: Auth, event_count: Callable[[], int], case: str
) -> None:
    headers = _bad_tokens(auth)[case]
    before = event_count()

    response = client.post("/v1/threads/t1/comments", json={"body": "hi"}, headers=headers)

    assert_refused(response, 401, None, before, event_count)
    assert response.headers["www-authenticate"].startswith("Bearer")
    if case == "expired":
        assert response.json()["error"]["code"] == "token_expired"


@pytest.mark.parametrize(
    "case", ["garbage", "forged signature", "tampered payload", "expired", "alg none"]
)
@pytest.mark.parametrize(
    "path", ["/v1/threads/t1/comments", "/v1/comments/{id}", "/v1/comments/{id}/context"]
)
def test_reads_that_send_a_bad_token_are_refused_not_served_anonymously(
    client: TestClient, auth: Auth, seeded: dict[str, str], case: str, path: str
) -> None:
    """Reads need no token, but one that is sent must hold: a reader whose token expired
    learns it, rather than silently losing what a token adds (liked_by_me, body)."""
    response = client.get(path.format(id=seeded["ann_t1"]), headers=_bad_tokens(auth)[case])

    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("", "body_empty"),
        ("   \n\t  ", "body_empty"),
        ("x" * 10_001, "body_too_long"),
        ("hi\x00there", "invalid_characters"),
        ("a lone \ud800 surrogate", "invalid_characters"),
    ],
)
def test_bad_bodies_are_refused(
    client: TestClient, auth: Auth, event_count: Callable[[], int], body: str, code: str
) -> None:
    before = event_count()
    response = post_json(client, "/v1/threads/t1/comments", {"body": body}, auth("ann"))
    assert_refused(response, 422, code, before, event_count)


def test_a_body_of_exactly_the_limit_after_trimming_is_accepted(
    client: TestClient, auth: Auth
) -> None:
    body = "  " + "x" * 10_000 + "  "
    response = client.post("/v1/threads/t1/comments", json={"body": body}, headers=auth("ann"))
    assert response.status_code == 201


def test_a_request_over_the_byte_limit_is_refused_before_parsing(
    client: TestClient, auth: Auth, event_count: Callable[[], int]
) -> None:
    before = event_count()
    huge = b'{"body": "' + b"x" * (70 * 1024) + b'"}'
    headers = {**auth("ann"), "Content-Type": "application/json"}

    response = client.post("/v1/threads/t1/comments", content=huge, headers=headers)
    assert_refused(response, 413, "body_too_large", before, event_count)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        yield huge[:1000]
        yield huge[1000:]

    streamed = client.post("/v1/threads/t1/comments", content=chunks(), headers=headers)
    assert_refused(streamed, 413, "body_too_large", before, event_count)


@pytest.mark.parametrize(
    "raw", [b"{not json", b'{"body": "unterminated', b"", b"[1, 2", b"\xff\xfe"]
)
def test_malformed_json_is_refused(
    client: TestClient, auth: Auth, event_count: Callable[[], int], raw: bytes
) -> None:
    before = event_count()
    headers = {**auth("ann"), "Content-Type": "application/json"}
    response = client.post("/v1/threads/t1/comments", content=raw, headers=headers)
    assert response.status_code in (400, 422)
    assert_refused(response, response.status_code, None, before, event_count)


@pytest.mark.parametrize(
    "payload", [{"body": 5}, {"text": "hi"}, ["hi"], {"body": "hi", "parent_id": 7}]
)
def test_wrongly_shaped_json_is_refused(
    client: TestClient, auth: Auth, event_count: Callable[[], int], payload: object
) -> None:
    before = event_count()
    response = client.post("/v1/threads/t1/comments", json=payload, headers=auth("ann"))
    assert_refused(response, 422, "invalid_input", before, event_count)


@pytest.mark.parametrize(
    ("parent", "status", "code"),
    [
        ("does-not-exist", 422, "parent_not_found"),
        ("t2", 422, "parent_not_found"),
        ("deleted", 409, "parent_deleted"),
    ],
)
def test_replies_need_a_live_parent_in_the_same_thread(
    client: TestClient,
    auth: Auth,
    event_count: Callable[[], int],
    seeded: dict[str, str],
    parent: str,
    status: int,
    code: str,
) -> None:
    before = event_count()
    parent_id = seeded.get(parent, parent)
    response = client.post(
        "/v1/threads/t1/comments", json={"body": "re", "parent_id": parent_id}, headers=auth("bob")
    )
    assert_refused(response, status, code, before, event_count)


@pytest.mark.parametrize("thread_id", ["has space", "slash%2Fed", "a" * 201, "émoji", "semi;colon"])
def test_invalid_thread_ids_are_refused(
    client: TestClient, auth: Auth, event_count: Callable[[], int], thread_id: str
) -> None:
    before = event_count()
    response = client.post(
        f"/v1/threads/{thread_id}/comments", json={"body": "hi"}, headers=auth("ann")
    )
    assert response.status_code in (404, 422)
    assert_refused(response, response.status_code, None, before, event_count)


def test_valid_thread_id_characters_are_accepted(client: TestClient, auth: Auth) -> None:
    thread_id = "news.example.com:2026/11".replace("/", "-") + "_A-z.0"
    response = client.post(
        f"/v1/threads/{thread_id}/comments", json={"body": "hi"}, headers=auth("ann")
    )
    assert response.status_code == 201


def test_only_the_author_edits(
    client: TestClient, auth: Auth, event_count: Callable[[], int], seeded: dict[str, str]
) -> None:
    before = event_count()
    url = f"/v1/comments/{seeded['ann_t1']}"
    for intruder in (auth("bob"), auth("mod", roles=["moderator"]), auth("boss", roles=["admin"])):
        response = client.patch(url, json={"body": "mine now"}, headers=intruder)
        assert_refused(response, 403, "forbidden", before, event_count)


def test_only_the_author_or_a_moderator_deletes(
    client: TestClient, auth: Auth, event_count: Callable[[], int], seeded: dict[str, str]
) -> None:
    before = event_count()
    response = client.delete(f"/v1/comments/{seeded['ann_t1']}", headers=auth("bob"))
    assert_refused(response, 403, "forbidden", before, event_count)


def test_deleted_comments_cannot_be_edited_or_liked(
    client: TestClient, auth: Auth, event_count: Callable[[], int], seeded: dict[str, str]
) -> None:
    before = event_count()
    url = f"/v1/comments/{seeded['deleted']}"
    edit = client.patch(url, json={"body": "back"}, headers=auth("ann"))
    like = client.put(f"{url}/like", headers=auth("bob"))
    assert_refused(edit, 409, "comment_deleted", before, event_count)
    assert_refused(like, 409, "comment_deleted", before, event_count)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/v1/comments/nope"),
        ("DELETE", "/v1/comments/nope"),
        ("PUT", "/v1/comments/nope/like"),
        ("DELETE", "/v1/comments/nope/like"),
        ("GET", "/v1/comments/nope/context"),
    ],
)
def test_unknown_comments_are_404(
    client: TestClient, auth: Auth, event_count: Callable[[], int], method: str, path: str
) -> None:
    before = event_count()
    response = client.request(method, path, json={"body": "x"}, headers=auth("ann"))
    assert_refused(response, 404, "not_found", before, event_count)


def test_only_admins_register_threads(
    client: TestClient, auth: Auth, event_count: Callable[[], int]
) -> None:
    before = event_count()
    for user in (auth("ann"), auth("mod", roles=["moderator"])):
        response = client.put("/v1/threads/t9", json={"title": "Mine"}, headers=user)
        assert_refused(response, 403, "forbidden", before, event_count)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"url": "javascript:alert(1)"}, "invalid_url"),
        ({"url": "https://example.com/" + "a" * 2000}, "invalid_url"),
        ({"title": "t" * 301}, "invalid_title"),
        ({"title": "nul\x00"}, "invalid_characters"),
        ({"locked": "maybe"}, "invalid_input"),
    ],
)
def test_bad_thread_metadata_is_refused(
    client: TestClient, auth: Auth, event_count: Callable[[], int], payload: dict, code: str
) -> None:
    before = event_count()
    response = client.put("/v1/threads/t9", json=payload, headers=auth("root", roles=["admin"]))
    assert_refused(response, 422, code, before, event_count)


def test_unknown_routes_and_methods_answer_in_the_error_shape(client: TestClient) -> None:
    missing = client.get("/v1/nothing-here")
    wrong_method = client.post("/v1/comments/abc")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


NUL, SURROGATE, TOO_LONG_ID = "a\x00b", "\ud800", "a" * 41
# (method, url, JSON body or None, who): each holds a string no column can take, an id
# longer than the columns, or an integer beyond the INTEGER columns it is compared with.
UNSAFE_REQUESTS = {
    "NUL comment id": ("GET", "/v1/comments/%00", None, None),
    "NUL comment id, replies": ("GET", "/v1/comments/a%00/replies", None, None),
    "NUL comment id, like": ("PUT", "/v1/comments/%00/like", None, "ann"),
    "NUL comment id, unlike": ("DELETE", "/v1/comments/%00/like", None, "ann"),
    "NUL comment id, edit": ("PATCH", "/v1/comments/%00", {"body": "x"}, "ann"),
    "NUL comment id, delete": ("DELETE", "/v1/comments/%00", None, "ann"),
    "long comment id": ("GET", f"/v1/comments/{TOO_LONG_ID}", None, None),
    "long comment id, like": ("PUT", f"/v1/comments/{TOO_LONG_ID}/like", None, "ann"),
    "NUL comment id, context": ("GET", "/v1/comments/a%00/context", None, None),
    "long comment id, context": ("GET", f"/v1/comments/{TOO_LONG_ID}/context", None, None),
    "malformed comment id, context": ("GET", "/v1/comments/a.b/context", None, None),
    "UTF-8 surrogate in a path": ("GET", "/v1/comments/%ED%A0%80", None, None),
    "NUL parent": ("POST", "/v1/threads/t1/comments", {"body": "x", "parent_id": NUL}, "ann"),
    "surrogate parent": (
        "POST",
        "/v1/threads/t1/comments",
        {"body": "x", "parent_id": SURROGATE},
        "ann",
    ),
    "long parent": (
        "POST",
        "/v1/threads/t1/comments",
        {"body": "x", "parent_id": TOO_LONG_ID},
        "ann",
    ),
    "surrogate body": ("POST", "/v1/threads/t1/comments", {"body": f"x{SURROGATE}"}, "ann"),
    "surrogate edit": ("PATCH", "/v1/comments/abc", {"body": SURROGATE}, "ann"),
    "surrogate key": ("POST", "/v1/threads/t1/comments", {"body": "x", SURROGATE: 1}, "ann"),
    "surrogate title": ("PUT", "/v1/threads/t1", {"title": SURROGATE}, "admin"),
    "NUL url": ("PUT", "/v1/threads/t1", {"url": f"https://x.org/{NUL}"}, "admin"),
    "surrogate reason": ("PUT", "/v1/users/bob/ban", {"reason": SURROGATE}, "admin"),
    "NUL user id": ("PUT", "/v1/users/%00/ban", {"reason": "x"}, "admin"),
    "long read id": ("POST", "/v1/me/notifications/read", {"ids": [TOO_LONG_ID]}, "ann"),
    "NUL read id": ("POST", "/v1/me/notifications/read", {"ids": [NUL]}, "ann"),
    "surrogate read id": ("POST", "/v1/me/notifications/read", {"ids": [SURROGATE]}, "ann"),
    "surrogate preference": ("PUT", "/v1/me/preferences", {"notify_on": SURROGATE}, "ann"),
    "surrogate level": ("PUT", "/v1/threads/t1/subscription", {"level": SURROGATE}, "ann"),
    "surrogate count": ("POST", "/v1/counts", {"thread_ids": [SURROGATE]}, None),
    "NUL cursor": ("GET", "/v1/threads/t1/comments?cursor=%00", None, None),
    "NUL sort": ("GET", "/v1/threads/t1/comments?sort=%00", None, None),
    "NUL query name": ("GET", "/v1/threads/t1?%00=1", None, None),
    "after_version over 64 bits": (
        "GET",
        f"/v1/threads/t1/events?after_version={2**64}",
        None,
        "admin",
    ),
    "after_version over INTEGER": (
        "GET",
        f"/v1/threads/t1/events?after_version={2**31}",
        None,
        "admin",
    ),
    "min_version over INTEGER": ("GET", f"/v1/threads/t1?min_version={2**31}", None, None),
}


@pytest.mark.parametrize("case", list(UNSAFE_REQUESTS))
def test_text_no_column_can_hold_and_out_of_range_numbers_are_refused(
    client: TestClient,
    auth: Auth,
    event_count: Callable[[], int],
    seeded: dict[str, str],
    case: str,
) -> None:
    method, url, payload, who = UNSAFE_REQUESTS[case]
    headers = {} if who is None else auth(who, roles=["admin"] if who == "admin" else None)
    before = event_count()

    if payload is None:
        response = client.request(method, url, headers=headers)
    else:
        response = post_json(client, url, payload, headers, method=method)

    assert_refused(response, 422, None, before, event_count)
    assert response.json()["error"]["code"] in ("invalid_characters", "invalid_input")
    assert client.get("/v1/threads/t1").status_code == 200, "the API still answers"
