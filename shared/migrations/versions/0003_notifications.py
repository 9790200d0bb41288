"""Notifications: the projection, preferences and read state, people, the email outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Frozen: the tables are spelled out here as they were created, never imported from
today's modules (shared/notification_tables.py), so replaying this revision always gives
the same schema. tests/integration/test_schema.py checks that the code still agrees.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
TABLES = (
    "notifications",
    "thread_subscriptions",
    "conversation_participants",
    "notification_comments",
    "notification_checkpoints",
    "people",
    "user_preferences",
    "preference_history",
    "notification_reads",
    "notification_read_marks",
    "email_outbox",
)


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("recipient_id", sa.String(200), primary_key=True),
        sa.Column("comment_id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("thread_id", sa.String(200), nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("excerpt", sa.String(300), nullable=False),
        sa.Column("position", POSITION, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Index("ix_notifications_recipient_position", "recipient_id", "position"),
        sa.Index("ix_notifications_thread", "thread_id"),
    )
    op.create_table(
        "thread_subscriptions",
        sa.Column("thread_id", sa.String(200), primary_key=True),
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("level", sa.String(20), nullable=False),
    )
    op.create_table(
        "conversation_participants",
        sa.Column("root_id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("thread_id", sa.String(200), nullable=False),
        sa.Index("ix_conversation_participants_thread", "thread_id"),
    )
    op.create_table(
        "notification_comments",
        sa.Column("comment_id", sa.String(40), primary_key=True),
        sa.Column("thread_id", sa.String(200), nullable=False),
        sa.Column("root_id", sa.String(40), nullable=False),
        sa.Column("author_id", sa.String(200), nullable=False),
        sa.Index("ix_notification_comments_thread", "thread_id"),
    )
    op.create_table(
        "notification_checkpoints",
        sa.Column("thread_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("position", POSITION, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "people",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "user_preferences",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("notify_on", sa.String(20), nullable=False),
        sa.Column("email_frequency", sa.String(20), nullable=False),
    )
    op.create_table(
        "preference_history",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("position", POSITION, primary_key=True),
        sa.Column("notify_on", sa.String(20), nullable=False),
        sa.Column("email_frequency", sa.String(20), nullable=False),
    )
    op.create_table(
        "notification_reads",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("comment_id", sa.String(40), primary_key=True),
        sa.Column("read_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "notification_read_marks",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("up_to_position", POSITION, nullable=False),
        sa.Column("read_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "email_outbox",
        sa.Column("id", POSITION, primary_key=True, autoincrement=True),
        sa.Column("recipient_id", sa.String(200), nullable=False),
        sa.Column("comment_id", sa.String(40), nullable=False),
        sa.Column("frequency", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("due_at", TIMESTAMP, nullable=False),
        sa.Column("lease_until", TIMESTAMP, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.Column("message_id", sa.String(300), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("recipient_id", "comment_id", name="uq_email_outbox_notification"),
        sa.Index("ix_email_outbox_status_due", "status", "due_at"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
