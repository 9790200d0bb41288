"""The thread projection (trees, counts, checkpoints) and dead letters.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Frozen: the tables are spelled out here as they were created, never imported from
today's modules (shared/projection_tables.py), so replaying this revision always gives the
same schema. tests/integration/test_schema.py checks that the code still agrees.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
TABLES = ("thread_view", "comment_view", "thread_participants", "thread_checkpoints")


def upgrade() -> None:
    op.create_table(
        "thread_view",
        sa.Column("thread_id", sa.String(200), primary_key=True),
        sa.Column("title", sa.String, nullable=True),
        sa.Column("url", sa.String, nullable=True),
        sa.Column("locked", sa.Boolean, nullable=False),
        sa.Column("comment_count", sa.Integer, nullable=False),
        sa.Column("top_level_count", sa.Integer, nullable=False),
        sa.Column("participant_count", sa.Integer, nullable=False),
        sa.Column("last_comment_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "comment_view",
        sa.Column("comment_id", sa.String(40), primary_key=True),
        sa.Column("thread_id", sa.String(200), nullable=False),
        sa.Column("parent_id", sa.String(40), nullable=True),
        sa.Column("root_id", sa.String(40), nullable=False),
        sa.Column("depth", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("position", POSITION, nullable=False),
        sa.Column("author_id", sa.String(200), nullable=False),
        sa.Column("author_name", sa.String(200), nullable=False),
        sa.Column("body_html", sa.Text, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("edited_at", TIMESTAMP, nullable=True),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("like_count", sa.Integer, nullable=False),
        sa.Column("reply_count", sa.Integer, nullable=False),
        sa.Column("descendant_count", sa.Integer, nullable=False),
        sa.Index("ix_comment_view_thread_depth_seq", "thread_id", "depth", "seq"),
        sa.Index("ix_comment_view_thread_depth_likes", "thread_id", "depth", "like_count", "seq"),
        sa.Index("ix_comment_view_parent_seq", "parent_id", "seq"),
    )
    op.create_table(
        "thread_participants",
        sa.Column("thread_id", sa.String(200), primary_key=True),
        sa.Column("author_id", sa.String(200), primary_key=True),
        sa.Column("visible_comments", sa.Integer, nullable=False),
    )
    op.create_table(
        "thread_checkpoints",
        sa.Column("thread_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("position", POSITION, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", POSITION, primary_key=True, autoincrement=True),
        sa.Column("projection", sa.String(50), nullable=False),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("position", POSITION, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("failed_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("projection", "event_id", name="uq_dead_letters_projection_event"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("dead_letters")
    for table in reversed(TABLES):
        op.drop_table(table)
