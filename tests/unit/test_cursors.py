import base64
import json

import pytest

from services.api.cursors import CursorCodec, InvalidCursor, replies_listing, thread_listing

SECRET = "unit-test-secret"
T1 = thread_listing("t1")


def test_a_cursor_round_trips_its_key() -> None:
    codec = CursorCodec(SECRET)

    token = codec.encode(T1, "top", (3, 17))

    assert codec.decode(token, T1, "top", 2) == (3, 17)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_a_cursor_is_base64url_json_naming_its_sort_and_last_key() -> None:
    token = CursorCodec(SECRET).encode(T1, "oldest", (42,))
    body = token.split(".")[0]

    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))

    assert payload == {"sort": "oldest", "after": [42]}


def _forge(token: str, payload: dict[str, object]) -> str:
    """The same tag on another payload: what a client editing the JSON would send."""
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{body}.{token.split('.')[1]}"


def test_a_cursor_with_an_edited_key_is_refused() -> None:
    codec = CursorCodec(SECRET)
    token = codec.encode(T1, "oldest", (42,))

    with pytest.raises(InvalidCursor, match="altered"):
        codec.decode(_forge(token, {"sort": "oldest", "after": [1]}), T1, "oldest", 1)


@pytest.mark.parametrize("position", [0, 5, -3])
def test_a_cursor_with_any_character_changed_is_refused(position: int) -> None:
    codec = CursorCodec(SECRET)
    token = codec.encode(T1, "newest", (42,))
    flipped = "A" if token[position] != "A" else "B"
    tampered = token[:position] + flipped + token[position:][1:]

    with pytest.raises(InvalidCursor):
        codec.decode(tampered, T1, "newest", 1)


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b.c", "!!!.???", "x" * 600, "eyJzb3J0Ijoib2xkZXN0In0.", "é.é"]
)
def test_malformed_cursors_are_refused(token: str) -> None:
    with pytest.raises(InvalidCursor):
        CursorCodec(SECRET).decode(token, T1, "oldest", 1)


def test_a_cursor_only_works_for_the_listing_and_sort_it_came_from() -> None:
    codec = CursorCodec(SECRET)
    token = codec.encode(T1, "oldest", (42,))

    with pytest.raises(InvalidCursor, match="sort 'oldest'"):
        codec.decode(token, T1, "newest", 1)
    with pytest.raises(InvalidCursor):
        codec.decode(token, thread_listing("t2"), "oldest", 1)
    with pytest.raises(InvalidCursor):
        codec.decode(token, replies_listing("t1"), "oldest", 1)


def test_a_cursor_signed_with_another_secret_is_refused() -> None:
    token = CursorCodec("another-secret").encode(T1, "oldest", (42,))

    with pytest.raises(InvalidCursor):
        CursorCodec(SECRET).decode(token, T1, "oldest", 1)


@pytest.mark.parametrize("key", [(1,), (1, 2, 3), (-1, 2), (2**31, 1)])
def test_a_cursor_whose_key_does_not_fit_the_sort_is_refused(key: tuple[int, ...]) -> None:
    codec = CursorCodec(SECRET)
    token = codec.encode(T1, "top", key)

    with pytest.raises(InvalidCursor, match="malformed"):
        codec.decode(token, T1, "top", 2)
