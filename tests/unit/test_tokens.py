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


def _claims(**overrides: object) -> dict[str, object]:
    return {"sub": "u1", "name": "Ann", "exp": 9999999999, **overrides}


@pytest.mark.parametrize(
    ("claims", "claim"),
    [
        (_claims(sub="u\x001"), "sub"),
        (_claims(sub="u\ud8001"), "sub"),  # a lone surrogate, as PyJWT decodes "\ud800"
        (_claims(sub="u\n1"), "sub"),
        (_claims(sub=""), "sub"),
        (_claims(name="Ann\x00"), "name"),
        (_claims(name="Ann\udfff"), "name"),
        (_claims(name="Ann\x1b[31m"), "name"),
        (_claims(name=["Ann"]), "name"),
        (_claims(email="a" * 310 + "@example.com"), "email"),  # 322 characters
        (_claims(email="ann\x00@example.com"), "email"),
        (_claims(email="ann\ud800@example.com"), "email"),
        (_claims(email="not an address"), "email"),
        (_claims(email="ann@localhost"), "email"),
        (_claims(email=["ann@example.com"]), "email"),
        (_claims(roles=["moderator", 7]), "roles"),
        (_claims(roles=["x"] * 21), "roles"),
        (_claims(roles=["m" * 65]), "roles"),
    ],
)
def test_a_claim_no_column_could_hold_is_refused_naming_the_claim(
    claims: dict[str, object], claim: str
) -> None:
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized) as refused:
        verify_token(token, SECRET)
    assert refused.value.code == "invalid_token"
    assert f"`{claim}`" in refused.value.message


def test_emails_are_stored_normalized_and_an_empty_one_means_none() -> None:
    def email_of(email: object) -> str | None:
        token = jwt.encode(_claims(email=email), SECRET, algorithm="HS256")
        return verify_token(token, SECRET).email

    assert email_of("Ann@Example.COM") == "Ann@example.com"
    assert email_of("ann@münchen.de") == "ann@münchen.de"
    assert email_of("") is None
    assert email_of(None) is None
    long = "a" * 64 + "@" + ".".join(["b" * 63] * 2) + ".example.org"
    assert email_of(long) == long


def test_long_display_names_are_cut_to_the_limit() -> None:
    token = jwt.encode(_claims(name="  " + "N" * 300 + "  "), SECRET, algorithm="HS256")
    assert verify_token(token, SECRET).name == "N" * 100
