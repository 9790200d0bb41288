"""The thread projection (trees, counts, checkpoints) and dead letters.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.projection_tables import dead_letters_table, thread_tables

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tables() -> list[sa.Table]:
    # A private MetaData: the migration creates exactly these definitions.
    metadata = sa.MetaData()
    return [*thread_tables(metadata).all(), dead_letters_table(metadata)]


def upgrade() -> None:
    bind = op.get_bind()
    for table in _tables():
        table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(_tables()):
        table.drop(bind)
