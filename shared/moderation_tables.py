"""Moderation tables (write side: kept in the same transaction as each decision).

`banned_users` holds who is banned now (until when, for a suspension), for the handlers'
check; `ban_history` holds every change with its log position, so the notification fold
can ask "was this person banned when that comment was posted?" and a refold gives the
same answer.

`comment_flags` holds one flag per reader per comment; `moderation_settings` the site's
settings (one row, id 1; absent means the defaults); `premod_users` the people whose
comments are held; `trusted_authors` the people with a comment approved (mode
`first_comments` holds the others); `moderation_log` points at every decision's event by
log position, so the audit log reads the events themselves, newest first, through a
small index of its own.
"""

import sqlalchemy as sa

from shared.log_tables import JSON_TYPE, POSITION_TYPE

METADATA = sa.MetaData()

banned_users = sa.Table(
    "banned_users",
    METADATA,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("banned_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("position", POSITION_TYPE, nullable=False),
    sa.Column("until", sa.DateTime(timezone=True), nullable=True),  # None: for good
)
ban_history = sa.Table(
    "ban_history",
    METADATA,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("position", POSITION_TYPE, primary_key=True),
    sa.Column("banned", sa.Boolean, nullable=False),
    sa.Column("until", sa.DateTime(timezone=True), nullable=True),
)
comment_flags = sa.Table(
    "comment_flags",
    METADATA,
    sa.Column("comment_id", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("position", POSITION_TYPE, nullable=False),
)
moderation_settings = sa.Table(
    "moderation_settings",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("mode", sa.String(20), nullable=False),
    sa.Column("banned_words", JSON_TYPE, nullable=False),
    sa.Column("suspect_words", JSON_TYPE, nullable=False),
    sa.Column("max_links", sa.Integer, nullable=True),
    sa.Column("flag_threshold", sa.Integer, nullable=True),
)
premod_users = sa.Table(
    "premod_users",
    METADATA,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("position", POSITION_TYPE, nullable=False),
)
trusted_authors = sa.Table(
    "trusted_authors",
    METADATA,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("position", POSITION_TYPE, nullable=False),
)
moderation_log = sa.Table(
    "moderation_log",
    METADATA,
    sa.Column("position", POSITION_TYPE, primary_key=True, autoincrement=False),
    sa.Column("thread_id", sa.String(200), nullable=True),  # None: not about one thread
)
