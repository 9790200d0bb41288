from datetime import timedelta

import jwt
import pytest

from shared.errors import Unauthorized
from shared.tokens import mint_token, verify_token

SECRET = "unit-test-secret-0123456789abcdef0123"


def test_a_minted_token_verifies_to_its_actor() -> None:
    token = mint_token(
        SECRET, sub="u1", name=" Ann ", email="ann@example.com", roles=["moderator", "wizard"]
    )
    actor = verify_token(token, SECRET)
    assert (actor.id, actor.name, actor.email) == ("u1", "Ann", "ann@example.com")
    assert actor.roles == frozenset({"moderator"})  # unknown roles grant nothing
    assert actor.is_moderator
    assert not actor.is_admin


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"name": "Ann", "exp": 9999999999}, "invalid_token"),  # no sub
        ({"sub": "u1", "name": "Ann"}, "invalid_token"),  # no exp
        ({"sub": "u1", "exp": 9999999999}, "invalid_token"),  # no name
        ({"sub": "u1", "name": "  ", "exp": 9999999999}, "invalid_token"),
        ({"sub": 7, "name": "Ann", "exp": 9999999999}, "invalid_token"),
        ({"sub": "u1", "name": "Ann", "exp": 9999999999, "roles": "admin"}, "invalid_token"),
        ({"sub": "u1", "name": "Ann", "exp": 1}, "token_expired"),
    ],
)
def test_tokens_missing_or_bending_a_claim_are_refused(claims: dict, code: str) -> None:
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized) as refused:
        verify_token(token, SECRET)
    assert refused.value.code == code


def test_a_token_signed_with_another_key_or_algorithm_is_refused() -> None:
    forged = mint_token("another-secret-0123456789abcdef012345", sub="u1", name="Ann")
    with pytest.raises(Unauthorized):
        verify_token(forged, SECRET)
    unsigned = jwt.encode({"sub": "u1", "name": "Ann", "exp": 9999999999}, None, algorithm="none")
    with pytest.raises(Unauthorized):
        verify_token(unsigned, SECRET)


def test_clock_skew_within_the_leeway_is_tolerated() -> None:
    token = mint_token(SECRET, sub="u1", name="Ann", ttl=timedelta(seconds=-5))
    assert verify_token(token, SECRET, leeway_seconds=30).id == "u1"
    with pytest.raises(Unauthorized):
        verify_token(token, SECRET, leeway_seconds=0)


def test_user_ids_fit_the_user_stream_column() -> None:
    from shared.streams import user_stream

    longest = "u" * 190
    assert verify_token(mint_token(SECRET, sub=longest, name="L"), SECRET).id == longest
    assert len(user_stream(longest)) <= 200
    with pytest.raises(Unauthorized):
        verify_token(mint_token(SECRET, sub="u" * 191, name="L"), SECRET)
