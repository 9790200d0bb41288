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
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_COMMENT_ID = re.compile(COMMENT_ID_PATTERN)

ThreadIdFrom = Literal["identifier", "url", "key"]


def event_id(source: str, key: str, what: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"chorus-import:{source}:{key}:{what}"))


def comment_id(source: str, comment: SourceComment) -> str:
    if comment.comment_id is not None and _COMMENT_ID.fullmatch(comment.comment_id):
        return comment.comment_id
    return derived_comment_id(source, comment.key, comment.posted_at)


def derived_comment_id(source: str, key: str, posted_at: datetime) -> str:
    """26 Crockford base32 characters: 10 of milliseconds (as `new_id`), 16 of hash."""
    ms = max(0, int(posted_at.timestamp() * 1000)) & ((1 << 50) - 1)
    digest = int.from_bytes(hashlib.sha256(f"{source}:{key}".encode()).digest()[:10], "big")
    return _base32(ms, 10) + _base32(digest, 16)


def _base32(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


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
