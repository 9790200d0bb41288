"""Signed unsubscribe tokens: the link in every email that turns a person's emails off.

A token is `base64url(user_id) "." base64url(HMAC-SHA256(secret, PURPOSE + user_id))`,
unpadded. The purpose tag means a signature made here is worth nothing anywhere else the
same secret signs. Tokens do not expire: the link in a year-old email must still work,
and all it can do is stop emails.
"""

import base64
import binascii
import hashlib
import hmac
import re

from shared.errors import NotFound

PURPOSE = b"chorus/unsubscribe/v1\x00"
# A 200-character user id of 4-byte characters, base64'd, plus the signature.
MAX_TOKEN_CHARS = 1200
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def make_token(secret: str, user_id: str) -> str:
    body = _b64(user_id.encode())
    signature = hmac.new(secret.encode(), PURPOSE + user_id.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def read_token(secret: str, token: str) -> str:
    """The user id a token was made for; `NotFound` for anything tampered or malformed."""
    body, _, signature = token.partition(".")
    if len(token) > MAX_TOKEN_CHARS or not (
        _BASE64URL.fullmatch(body) and _BASE64URL.fullmatch(signature)
    ):
        raise _invalid()
    try:
        user_id = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _invalid() from exc
    # Comparing whole tokens also refuses non-canonical encodings of a valid one.
    if not user_id or not hmac.compare_digest(make_token(secret, user_id), token):
        raise _invalid()
    return user_id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _invalid() -> NotFound:
    return NotFound("this unsubscribe link is not valid", code="invalid_unsubscribe_token")
