"""Bearer tokens: HS256 JWTs issued by the publication's own login (or `chorus token`).

Every claim is checked here, at the boundary: what a token says is stored (the `people`
row, event metadata) in transactions that other people's writes share, so a claim that
a database would refuse must never get past this point (decision 17).
"""

import functools
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from email_validator import EmailNotValidError, validate_email

from shared.commands import Actor
from shared.errors import Unauthorized

ALGORITHM = "HS256"
KNOWN_ROLES = frozenset({"moderator", "admin", "staff"})
# A user's own stream is `~user:<id>` in a 200-character column: ids stay within 190.
MAX_ID_LENGTH = 190
MAX_NAME_LENGTH = 100
MAX_EMAIL_LENGTH = 320  # RFC 3696 (errata): 64 + "@" + 255; the `people.email` column
MAX_ROLES = 20
MAX_ROLE_LENGTH = 64


def mint_token(
    secret: str,
    *,
    sub: str,
    name: str,
    email: str | None = None,
    roles: list[str] | None = None,
    ttl: timedelta = timedelta(days=30),
) -> str:
    claims: dict[str, Any] = {"sub": sub, "name": name, "exp": datetime.now(UTC) + ttl}
    if email:
        claims["email"] = email
    if roles:
        claims["roles"] = roles
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token: str, secret: str, *, leeway_seconds: int = 30) -> Actor:
    """The actor a token speaks for; `Unauthorized` for anything forged, expired or malformed."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            leeway=leeway_seconds,
            options={"require": ["sub", "exp"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the token has expired", code="token_expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"the token is not valid: {exc}", code="invalid_token") from exc
    return Actor(
        id=_user_id(claims.get("sub")),
        name=_display_name(claims.get("name")),
        email=_email(claims.get("email")),
        roles=_roles(claims.get("roles")),
    )


def _refuse(claim: str, problem: str) -> Unauthorized:
    return Unauthorized(f"the token's `{claim}` claim {problem}", code="invalid_token")


def has_unstorable_characters(text: str) -> bool:
    """Control characters (NUL among them) or lone surrogates, which PyJWT's JSON decoding
    makes of `\\ud800` escapes: no database column or email header should receive them."""
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


def _user_id(sub: object) -> str:
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_ID_LENGTH:
        raise _refuse("sub", f"must be a user id of 1-{MAX_ID_LENGTH} characters")
    if has_unstorable_characters(sub):
        raise _refuse("sub", "holds control characters or lone surrogates")
    return sub


def _display_name(name: object) -> str:
    """Trimmed, and cut to MAX_NAME_LENGTH: a display name is the login's to choose, and a
    long one should not lock its owner out; characters no column can hold are refused."""
    if not isinstance(name, str) or not name.strip():
        raise _refuse("name", "must be a display name")
    if has_unstorable_characters(name):
        raise _refuse("name", "holds control characters or lone surrogates")
    return name.strip()[:MAX_NAME_LENGTH].rstrip()


def _email(email: object) -> str | None:
    if email is None or email == "":  # no address: notifications stay in the app
        return None
    if not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH:
        raise _refuse("email", f"must be an address of at most {MAX_EMAIL_LENGTH} characters")
    if has_unstorable_characters(email):
        raise _refuse("email", "holds control characters or lone surrogates")
    normalized, problem = _normalized_email(email)
    if normalized is None or len(normalized) > MAX_EMAIL_LENGTH:
        raise _refuse("email", f"is not a valid email address: {problem or 'too long'}")
    return normalized


@functools.lru_cache(maxsize=4096)
def _normalized_email(email: str) -> tuple[str | None, str]:
    """The address as email-validator normalizes it, or None and why it is not one.

    Cached: the same people present the same token on every request."""
    try:
        return validate_email(email, check_deliverability=False).normalized, ""
    except EmailNotValidError as exc:
        return None, str(exc)


def _roles(roles: object) -> frozenset[str]:
    if roles is None:
        return frozenset()
    if (
        not isinstance(roles, list)
        or len(roles) > MAX_ROLES
        or not all(isinstance(r, str) and len(r) <= MAX_ROLE_LENGTH for r in roles)
    ):
        raise _refuse("roles", f"must be a list of at most {MAX_ROLES} short strings")
    return frozenset(roles) & KNOWN_ROLES  # anything else grants nothing
