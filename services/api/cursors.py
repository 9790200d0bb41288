"""Opaque page cursors: where a page ended, signed so clients cannot forge or mix them up.

A cursor is `base64url(JSON) "." base64url(tag)`. The JSON carries the sort and the last
key shown; the tag is an HMAC over the listing the cursor belongs to (a thread and sort,
or one comment's replies) and the JSON. So a cursor edited by hand, cut short, or
replayed against another thread, sort or comment fails the check and the request is
refused, instead of silently paging from a wrong place. The listing itself is not
carried: the request names it, which keeps cursors short.
"""

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from shared.errors import InvalidInput
from shared.validation import MAX_SQL_INTEGER

MAX_CURSOR_CHARS = 512
_TAG_BYTES = 16


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"


def thread_listing(thread_id: str) -> str:
    return f"thread:{thread_id}"


def replies_listing(comment_id: str) -> str:
    return f"replies:{comment_id}"


class CursorCodec:
    """Encodes and checks cursors with a key derived from the deployment's secret."""

    def __init__(self, secret: str) -> None:
        # A key of its own (domain separation), so a cursor tag is never a token signature.
        key = hmac.new(secret.encode(), b"chorus cursor v1", hashlib.sha256).digest()
        # Keyed once and copied per tag: a big page signs a cursor for every cut-off comment.
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def encode(self, listing: str, sort: str, key: tuple[int, ...]) -> str:
        payload = json.dumps({"sort": sort, "after": list(key)}, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._tag(listing, payload))}"

    def decode(self, token: str, listing: str, sort: str, arity: int) -> tuple[int, ...]:
        """The key a cursor carries; `InvalidCursor` unless it is intact and for this listing."""
        payload = self._verified_payload(token, listing)
        try:
            data: Any = json.loads(payload)
        except ValueError:
            raise InvalidCursor("the cursor is malformed") from None
        if not isinstance(data, dict) or set(data) != {"sort", "after"}:
            raise InvalidCursor("the cursor is malformed")
        if data["sort"] != sort:
            raise InvalidCursor(f"the cursor belongs to sort {data['sort']!r}, not {sort!r}")
        after = data["after"]
        if not isinstance(after, list) or len(after) != arity or not all(map(_is_key, after)):
            raise InvalidCursor("the cursor is malformed")
        return tuple(after)

    def _verified_payload(self, token: str, listing: str) -> bytes:
        if len(token) > MAX_CURSOR_CHARS or token.count(".") != 1:
            raise InvalidCursor("the cursor is malformed")
        body, tag = token.split(".")
        payload, given = _unb64(body), _unb64(tag)
        if not hmac.compare_digest(given, self._tag(listing, payload)):
            raise InvalidCursor("the cursor was altered or belongs to another listing")
        return payload

    def _tag(self, listing: str, payload: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(listing.encode() + b"\x00" + payload)
        return mac.digest()[:_TAG_BYTES]


def _is_key(value: object) -> bool:
    # bool is an int subclass; `true` is no seq.
    # Keys are stream versions and like counts: SQL INTEGER columns.
    return type(value) is int and 0 <= value <= MAX_SQL_INTEGER


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        padded = text + "=" * (-len(text) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCursor("the cursor is malformed") from None
