"""Input rules shared by every writer of commands."""

import re

from shared.errors import InvalidInput

MAX_THREAD_ID_CHARS = 200
THREAD_ID_PATTERN = rf"^[A-Za-z0-9._:-]{{1,{MAX_THREAD_ID_CHARS}}}$"
_THREAD_ID = re.compile(THREAD_ID_PATTERN)
MAX_TITLE_CHARS = 300
MAX_URL_CHARS = 2000
MAX_SQL_INTEGER = 2**31 - 1
"""The largest value of an SQL INTEGER column (stream versions, seqs, like counts)."""
# NUL: PostgreSQL text cannot hold it. A lone surrogate (what "\ud800" in JSON decodes to)
# cannot be encoded as UTF-8, so no database, log or response can hold it either.
_UNSAFE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def has_unsafe_characters(text: str) -> bool:
    """True if `text` holds a NUL or a lone surrogate: no column or response can carry it."""
    return _UNSAFE_CHARACTERS.search(text) is not None


def check_thread_id(thread_id: str) -> str:
    if not _THREAD_ID.fullmatch(thread_id):
        raise InvalidInput(
            "a thread id is 1-200 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'",
            code="invalid_thread_id",
        )
    return thread_id


def clean_body(body: str, max_chars: int) -> str:
    """The comment body as stored: trimmed, non-empty, bounded, free of NUL."""
    if "\x00" in body:
        raise InvalidInput("the body contains a NUL character", code="invalid_body")
    body = body.strip()
    if not body:
        raise InvalidInput("the body is empty", code="body_empty")
    if len(body) > max_chars:
        raise InvalidInput(
            f"the body has {len(body)} characters; at most {max_chars} are allowed",
            code="body_too_long",
        )
    return body


def clean_title(title: str | None) -> str | None:
    if title is None:
        return None
    if "\x00" in title or len(title) > MAX_TITLE_CHARS:
        raise InvalidInput(
            f"a title is at most {MAX_TITLE_CHARS} characters, without NUL",
            code="invalid_title",
        )
    return title.strip()


def clean_url(url: str | None) -> str | None:
    if url is None:
        return None
    if len(url) > MAX_URL_CHARS or not re.match(r"^https?://[^\s\x00]+$", url):
        raise InvalidInput(
            f"a thread url is an http(s) URL of at most {MAX_URL_CHARS} characters",
            code="invalid_url",
        )
    return url
