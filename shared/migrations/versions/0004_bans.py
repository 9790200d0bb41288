"""Bans: who is banned now, and every ban and unban by log position.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

Frozen: the tables are spelled out here as they were created, never imported from
today's modules (shared/moderation_tables.py), so replaying this revision always gives
the same schema. tests/integration/test_schema.py checks that the code still agrees.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "banned_users",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("banned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("position", POSITION, nullable=False),
    )
    op.create_table(
        "ban_history",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("position", POSITION, primary_key=True),
        sa.Column("banned", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ban_history")
    op.drop_table("banned_users")
