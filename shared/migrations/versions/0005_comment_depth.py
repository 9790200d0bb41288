"""The write side learns each comment's nesting depth, so posting can cap it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Existing rows are backfilled from their ancestors in one recursive query (SQLite and
PostgreSQL alike): top-level comments are at depth 0, a reply one deeper than its parent.
A temporary index on `parent_id` keeps each step of the recursion an index lookup.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_INDEX = "ix_comment_state_parent_backfill"
BACKFILL_TABLE = "comment_depth_backfill"

COMPUTE_DEPTHS = """
INSERT INTO comment_depth_backfill (comment_id, depth)
WITH RECURSIVE tree (comment_id, depth) AS (
    SELECT comment_id, 0 FROM comment_state WHERE parent_id IS NULL
    UNION ALL
    SELECT child.comment_id, tree.depth + 1
    FROM comment_state AS child JOIN tree ON child.parent_id = tree.comment_id
)
SELECT comment_id, depth FROM tree WHERE depth > 0
"""
COPY_DEPTHS = """
UPDATE comment_state
SET depth = (
    SELECT b.depth FROM comment_depth_backfill AS b WHERE b.comment_id = comment_state.comment_id
)
WHERE comment_id IN (SELECT comment_id FROM comment_depth_backfill)
"""


def upgrade() -> None:
    op.add_column(
        "comment_state",
        sa.Column("depth", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index(BACKFILL_INDEX, "comment_state", ["parent_id"])
    op.create_table(
        BACKFILL_TABLE,
        sa.Column("comment_id", sa.String(40), primary_key=True),
        sa.Column("depth", sa.Integer, nullable=False),
    )
    op.execute(COMPUTE_DEPTHS)
    op.execute(COPY_DEPTHS)
    op.drop_table(BACKFILL_TABLE)
    op.drop_index(BACKFILL_INDEX, "comment_state")


def downgrade() -> None:
    with op.batch_alter_table("comment_state") as batch:
        batch.drop_column("depth")
