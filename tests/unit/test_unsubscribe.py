"""Unsubscribe tokens: they name one user, and nothing forged or altered is accepted."""

import base64
import hashlib
import hmac
import re

import pytest

from shared.errors import NotFound
from shared.unsubscribe import MAX_TOKEN_CHARS, make_token, read_token

SECRET = "unit-test-secret"


@pytest.mark.parametrize("user_id", ["ann", "user:42", "Zoë 😀", "x" * 200])
def test_a_token_reads_back_as_its_user(user_id: str) -> None:
    token = make_token(SECRET, user_id)
    assert read_token(SECRET, token) == user_id
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)  # safe in a URL as is
    assert len(token) <= MAX_TOKEN_CHARS


def test_tokens_are_stable_and_per_user() -> None:
    assert make_token(SECRET, "ann") == make_token(SECRET, "ann")
    assert make_token(SECRET, "ann") != make_token(SECRET, "bob")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _refused(token: str) -> None:
    with pytest.raises(NotFound) as refused:
        read_token(SECRET, token)
    assert refused.value.code == "invalid_unsubscribe_token"


def test_another_users_id_under_a_valid_signature_is_refused() -> None:
    signature = make_token(SECRET, "ann").split(".")[1]
    _refused(f"{_b64(b'bob')}.{signature}")


def test_a_token_signed_with_another_secret_is_refused() -> None:
    _refused(make_token("another-secret", "ann"))


def test_a_signature_without_the_purpose_tag_is_refused() -> None:
    # An HMAC of the bare user id (as another feature might sign it) is not a token.
    bare = hmac.new(SECRET.encode(), b"ann", hashlib.sha256).digest()
    _refused(f"{_b64(b'ann')}.{_b64(bare)}")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "no-dot",
        ".",
        "YW5u.",
        ".c2ln",
        "YW5u.c2ln.extra",
        "YW5u.c2ln\n",
        "!!!!.c2ln",
        "Zm9v\u00e9.c2ln",
        "_w.c2ln",  # not UTF-8 once decoded
        "a" * (MAX_TOKEN_CHARS + 1),
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    _refused(token)


def test_a_flipped_character_anywhere_is_refused() -> None:
    token = make_token(SECRET, "ann")
    for i, ch in enumerate(token):
        if ch == ".":
            continue
        flipped = token[:i] + ("A" if ch != "A" else "B") + token[i + 1 :]
        _refused(flipped)
