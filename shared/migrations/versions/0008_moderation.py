"""Moderation: comment statuses, flags, settings, pre-moderation and the decisions' index.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

Frozen: the tables are spelled out here as they were created. Every existing comment is
`published` and already notified (server defaults). The audit log's index is filled from
the decisions already in the log: bans and unbans, locks and unlocks, deletions by a
moderator, in batches.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
BATCH = 1000
DECISIONS = ("UserBanned", "UserUnbanned", "ThreadLocked", "ThreadUnlocked", "CommentDeleted")

_EVENTS = sa.table(
    "events",
    sa.column("position", sa.BigInteger),
    sa.column("stream_id", sa.String),
    sa.column("type", sa.String),
    sa.column("data", sa.JSON),
)


def upgrade() -> None:
    op.add_column("thread_state", sa.Column("moderation", sa.String(20), nullable=True))
    for column in (
        sa.Column("status", sa.String(10), nullable=False, server_default="published"),
        sa.Column("flag_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("featured", sa.Boolean, nullable=False, server_default=sa.false()),
    ):
        op.add_column("comment_state", column)
    op.add_column("banned_users", sa.Column("until", TIMESTAMP, nullable=True))
    op.add_column("ban_history", sa.Column("until", TIMESTAMP, nullable=True))
    view_columns: tuple[sa.Column[object], ...] = (
        sa.Column("status", sa.String(10), nullable=False, server_default="published"),
        sa.Column("held_for", sa.String(200), nullable=True),
        sa.Column("featured", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("badges", sa.String(100), nullable=True),
        sa.Column("flag_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("flags", JSON, nullable=True),
    )
    for view_column in view_columns:
        op.add_column("comment_view", view_column)
    op.create_index("ix_comment_view_status_position", "comment_view", ["status", "position"])
    op.create_index("ix_comment_view_flagged_position", "comment_view", ["flag_count", "position"])
    for column in (
        sa.Column("parent_id", sa.String(40), nullable=True),
        sa.Column("author_name", sa.String(200), nullable=True),
        sa.Column("held_excerpt", sa.String(300), nullable=True),
        sa.Column("notified", sa.Boolean, nullable=False, server_default=sa.true()),
    ):
        op.add_column("notification_comments", column)
    op.create_table(
        "comment_flags",
        sa.Column("comment_id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("position", POSITION, nullable=False),
    )
    op.create_table(
        "moderation_settings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("banned_words", JSON, nullable=False),
        sa.Column("suspect_words", JSON, nullable=False),
        sa.Column("max_links", sa.Integer, nullable=True),
        sa.Column("flag_threshold", sa.Integer, nullable=True),
    )
    op.create_table(
        "premod_users",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("position", POSITION, nullable=False),
    )
    op.create_table(
        "trusted_authors",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("position", POSITION, nullable=False),
    )
    log = op.create_table(
        "moderation_log",
        sa.Column("position", POSITION, primary_key=True, autoincrement=False),
        sa.Column("thread_id", sa.String(200), nullable=True),
    )
    _index_earlier_decisions(log)


def _index_earlier_decisions(log: sa.Table) -> None:
    conn = op.get_bind()
    after = 0
    while True:
        rows = conn.execute(
            sa.select(_EVENTS.c.position, _EVENTS.c.stream_id, _EVENTS.c.type, _EVENTS.c.data)
            .where(_EVENTS.c.type.in_(DECISIONS), _EVENTS.c.position > after)
            .order_by(_EVENTS.c.position)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        decisions = [
            {
                "position": r.position,
                "thread_id": None if r.stream_id.startswith("~") else r.stream_id,
            }
            for r in rows
            if r.type != "CommentDeleted" or r.data.get("by_moderator")
        ]
        if decisions:
            conn.execute(log.insert(), decisions)
        after = rows[-1].position


def downgrade() -> None:
    for table in (
        "moderation_log",
        "trusted_authors",
        "premod_users",
        "moderation_settings",
        "comment_flags",
    ):
        op.drop_table(table)
    with op.batch_alter_table("notification_comments") as batch:
        for name in ("notified", "held_excerpt", "author_name", "parent_id"):
            batch.drop_column(name)
    op.drop_index("ix_comment_view_flagged_position", "comment_view")
    op.drop_index("ix_comment_view_status_position", "comment_view")
    with op.batch_alter_table("comment_view") as batch:
        for name in ("flags", "flag_count", "badges", "featured", "held_for", "status"):
            batch.drop_column(name)
    for table in ("ban_history", "banned_users"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("until")
    with op.batch_alter_table("comment_state") as batch:
        for name in ("featured", "flag_count", "status"):
            batch.drop_column(name)
    with op.batch_alter_table("thread_state") as batch:
        batch.drop_column("moderation")
