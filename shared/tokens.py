"""Bearer tokens: HS256 JWTs issued by the publication's own login (or `chorus token`)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from shared.commands import Actor
from shared.errors import Unauthorized

ALGORITHM = "HS256"
KNOWN_ROLES = frozenset({"moderator", "admin"})
# A user's own stream is `~user:<id>` in a 200-character column: ids stay within 190.
MAX_ID_LENGTH = 190
MAX_NAME_LENGTH = 100


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
    return _actor(claims)


def _actor(claims: dict[str, Any]) -> Actor:
    sub, name, email, roles = (claims.get(k) for k in ("sub", "name", "email", "roles"))
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_ID_LENGTH or "\x00" in sub:
        raise Unauthorized("the token's `sub` must be a user id string", code="invalid_token")
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise Unauthorized("the token's `name` must be a display name", code="invalid_token")
    if email is not None and (not isinstance(email, str) or "@" not in email):
        raise Unauthorized("the token's `email` is not an address", code="invalid_token")
    if roles is None:
        roles = []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized("the token's `roles` must be a list of strings", code="invalid_token")
    return Actor(
        id=sub,
        name=name.strip()[:MAX_NAME_LENGTH],
        email=email,
        roles=frozenset(roles) & KNOWN_ROLES,
    )
