"""Ids for imported threads, comments and events, derived from the source alone.

Deterministic, so that importing the same file again (or what is left of it after an
interruption) meets the same ids and appends nothing twice (docs/decisions.md, 34):

- a comment keeps the Chorus id its source gives (the `chorus` format), else gets one
  in `new_id()`'s shape whose time part is when it was written, so imported and native
  ids sort alike, and whose rest is a hash of `source:key`;
- an event's id is a UUID 5 of `chorus-import:<source>:<key>:<what>`: the event store's
  unique `event_id` is what makes an import idempotent, comment by comment;
- a thread keeps the publication's identifier if Chorus accepts it as a thread id, else
  one derived from its URL (what `GET /v1/threads?url=` finds it by), else from its key.
"""

import base64
import hashlib
import re
import uuid
from datetime import datetime
from typing import Literal

from services.worker.imports.model import SourceComment, SourceThread
from shared.errors import InvalidInput
from shared.ids import COMMENT_ID_PATTERN
from shared.validation import check_thread_id

# Fixed forever: changing it would make every import of an old file append again.
NAMESPACE = uuid.UUID("6c1b1d3e-3c5a-5b8e-9f0e-2f6b8c0d4a17")
_NAMESPACE_BYTES = NAMESPACE.bytes
_TO_CROCKFORD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789abcdefghjkmnpqrstvwxyz"
)
_COMMENT_ID = re.compile(COMMENT_ID_PATTERN)

ThreadIdFrom = Literal["identifier", "url", "key"]


def event_id(source: str, key: str, what: str) -> str:
    """`str(uuid.uuid5(NAMESPACE, name))`, without building a UUID object (a million of
    them cost seconds); a unit test holds the two equal."""
    name = f"chorus-import:{source}:{key}:{what}".encode()
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def comment_id(source: str, comment: SourceComment) -> str:
    if comment.comment_id is not None and _COMMENT_ID.fullmatch(comment.comment_id):
        return comment.comment_id
    return derived_comment_id(source, comment.key, comment.posted_at)


def derived_comment_id(source: str, key: str, posted_at: datetime) -> str:
    """26 Crockford base32 characters: 10 of milliseconds (as `new_id`), 16 of hash."""
    ms = max(0, int(posted_at.timestamp() * 1000)) & ((1 << 50) - 1)
    digest = hashlib.sha256(f"{source}:{key}".encode()).digest()[:10]
    value = ms << 80 | int.from_bytes(digest, "big")
    # 160 bits base32-encoded are 32 characters; the value is in the last 26.
    encoded = base64.b32encode(value.to_bytes(20, "big"))[-26:]
    return encoded.translate(_TO_CROCKFORD).decode()


def thread_id(source: str, thread: SourceThread) -> tuple[str, ThreadIdFrom]:
    """The thread's Chorus id and what it was taken from (the report counts them)."""
    if thread.identifier:
        try:
            return check_thread_id(thread.identifier), "identifier"
        except InvalidInput:
            pass
    if thread.url:
        return url_thread_id(thread.url), "url"
    return f"import-{source}-{_hex(thread.key)}", "key"


def url_thread_id(url: str) -> str:
    return f"url-{_hex(url)}"


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]
