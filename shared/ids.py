"""Opaque identifiers: time-ordered (ULID layout) so that B-tree inserts stay local."""

import os
import time
import uuid

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"

MAX_COMMENT_ID_CHARS = 40
"""The width of every comment_id column."""
COMMENT_ID_PATTERN = rf"^[A-Za-z0-9_-]{{1,{MAX_COMMENT_ID_CHARS}}}$"
"""What a comment id may look like wherever one comes in (a path, a body).

Every `new_id()` matches; the alphabet is a little wider than what we generate, so an id
that merely does not exist is a 404 (or `parent_not_found`), not a malformed request.
What it keeps out is what hurt: NUL, surrogates, anything a column cannot hold."""


def new_id() -> str:
    """26 lowercase Crockford base32 characters: 48 bits of milliseconds, 80 random bits."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


def new_event_id() -> str:
    return str(uuid.uuid4())
