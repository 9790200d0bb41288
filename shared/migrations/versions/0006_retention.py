"""Retention: find expired idempotency keys by age; count outbox rows pruned per status.

Finished outbox rows are found by the existing (status, due_at) index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    op.create_table(
        "email_outbox_pruned",
        sa.Column("status", sa.String(20), primary_key=True),
        sa.Column("pruned_rows", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("email_outbox_pruned")
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
