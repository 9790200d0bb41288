"""Moderation tables (write side: kept in the same transaction as each ban or unban).

`banned_users` holds who is banned now, for the handlers' check; `ban_history` holds
every change with its log position, so the notification fold can ask "was this person
banned when that comment was posted?" and a refold gives the same answer.
"""

import sqlalchemy as sa

from shared.log_tables import POSITION_TYPE

METADATA = sa.MetaData()

banned_users = sa.Table(
    "banned_users",
    METADATA,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("banned_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("position", POSITION_TYPE, nullable=False),
)
ban_history = sa.Table(
    "ban_history",
    METADATA,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("position", POSITION_TYPE, primary_key=True),
    sa.Column("banned", sa.Boolean, nullable=False),
)
