"""The site's moderation settings: checked, changed as events, and read once per batch.

`ModerationSettingsChanged` (the whole settings) goes to the site's own stream,
`SITE_MODERATION_STREAM`, and the `moderation_settings` row (id 1; absent: the defaults)
is kept in the same transaction. Every post needs the settings, and a batch of the group
commit holds up to 64 posts: `current_settings` reads them once per transaction and
remembers them on the connection, and a change made in that transaction replaces what is
remembered. On PostgreSQL the batch holds the append lock before it reads, so nothing
else can change them meanwhile; a retried batch is a new transaction and reads again.
"""

import unicodedata
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shared import events as ev
from shared.commands import ChangeModerationSettings, RequestContext
from shared.db import insert_ignoring_conflicts
from shared.errors import Forbidden, InvalidInput
from shared.moderation_log import record_decisions
from shared.moderation_rules import normalize
from shared.moderation_tables import moderation_settings
from shared.results import ModerationSettings
from shared.store import STREAMS
from shared.streams import SITE_MODERATION_STREAM
from shared.user_handlers import Append

MODES = ("post", "pre", "first_comments")
MAX_WORD_CHARS = 64
MAX_WORDS = 1000
MAX_LINKS = 1000
MAX_FLAG_THRESHOLD = 1_000_000
FIELDS = ("mode", "banned_words", "suspect_words", "max_links", "flag_threshold")
_MEMO = "chorus_moderation_settings"
_ROW = 1
_READ = sa.select(moderation_settings).where(moderation_settings.c.id == _ROW)
_SITE_VERSION = sa.select(STREAMS.c.version).where(STREAMS.c.stream_id == SITE_MODERATION_STREAM)


def read_settings(conn: Connection) -> ModerationSettings:
    """The settings as stored (one statement), or the defaults."""
    row = conn.execute(_READ).first()
    if row is None:
        return ModerationSettings()
    return ModerationSettings(
        mode=row.mode,
        banned_words=tuple(row.banned_words),
        suspect_words=tuple(row.suspect_words),
        max_links=row.max_links,
        flag_threshold=row.flag_threshold,
    )


def current_settings(conn: Connection) -> ModerationSettings:
    """The settings for a command in `conn`'s write transaction: read at most once in it."""
    transaction = conn.get_transaction()
    memo = conn.info.get(_MEMO)
    if memo is not None and memo[0] is transaction:
        settings: ModerationSettings = memo[1]
        return settings
    settings = read_settings(conn)
    _remember(conn, settings)
    return settings


def _remember(conn: Connection, settings: ModerationSettings) -> None:
    # The transaction object itself is kept (not its id), so no later one can pass for it.
    conn.info[_MEMO] = (conn.get_transaction(), settings)


class SettingsHandlers:
    def __init__(self, append: Append) -> None:
        self._append = append

    def change(
        self, conn: Connection, cmd: ChangeModerationSettings, ctx: RequestContext
    ) -> ModerationSettings:
        if not ctx.actor.is_admin:
            raise Forbidden("only an admin may change the moderation settings")
        current = current_settings(conn)
        wanted = _merged(current, cmd)
        if wanted == current:
            return current  # nothing changes, nothing is appended
        version = conn.execute(_SITE_VERSION).scalar() or 0
        changed = ev.ModerationSettingsChanged(
            mode=wanted.mode,  # checked by _merged
            banned_words=list(wanted.banned_words),
            suspect_words=list(wanted.suspect_words),
            max_links=wanted.max_links,
            flag_threshold=wanted.flag_threshold,
        )
        stored = self._append(conn, ctx, SITE_MODERATION_STREAM, version, changed)
        values: dict[str, Any] = changed.model_dump()
        if not insert_ignoring_conflicts(conn, moderation_settings, {"id": _ROW, **values}, ["id"]):
            conn.execute(
                moderation_settings.update().where(moderation_settings.c.id == _ROW).values(values)
            )
        record_decisions(conn, stored)
        _remember(conn, wanted)
        return wanted


def _merged(current: ModerationSettings, cmd: ChangeModerationSettings) -> ModerationSettings:
    unknown = set(cmd.given) - set(FIELDS)
    if unknown:
        raise _invalid(f"unknown settings: {sorted(unknown)}")
    given = set(cmd.given)
    mode = cmd.mode if "mode" in given else current.mode
    if mode not in MODES:
        raise _invalid(f"mode is one of {MODES}")
    max_links = cmd.max_links if "max_links" in given else current.max_links
    if max_links is not None and not 0 <= max_links <= MAX_LINKS:
        raise _invalid(f"max_links is 0-{MAX_LINKS}, or null for no limit")
    threshold = cmd.flag_threshold if "flag_threshold" in given else current.flag_threshold
    if threshold is not None and not 1 <= threshold <= MAX_FLAG_THRESHOLD:
        raise _invalid(f"flag_threshold is 1-{MAX_FLAG_THRESHOLD}, or null: flags never hold")
    return ModerationSettings(
        mode=mode,
        banned_words=(
            clean_words(cmd.banned_words, "banned_words")
            if "banned_words" in given
            else current.banned_words
        ),
        suspect_words=(
            clean_words(cmd.suspect_words, "suspect_words")
            if "suspect_words" in given
            else current.suspect_words
        ),
        max_links=max_links,
        flag_threshold=threshold,
    )


def clean_words(words: Sequence[str], name: str) -> tuple[str, ...]:
    """A word list as stored: each word trimmed, 1-64 characters, no control characters;
    at most 1,000; the first spelling of words equal once normalized is kept."""
    if len(words) > MAX_WORDS:
        raise _invalid(f"{name} holds at most {MAX_WORDS} words")
    kept: dict[str, str] = {}
    for word in words:
        trimmed = word.strip()
        if not 0 < len(trimmed) <= MAX_WORD_CHARS:
            raise _invalid(f"each of {name} is 1-{MAX_WORD_CHARS} characters after trimming")
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in trimmed):
            raise _invalid(f"{name} may not hold control characters")
        kept.setdefault(normalize(trimmed), trimmed)
    return tuple(kept.values())


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_settings")
