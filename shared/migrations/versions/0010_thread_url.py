"""Threads found by their URL: `GET /v1/threads?url=` (imported threads without an id).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

A hash index on PostgreSQL (equality only, and no key size limit: a B-tree refuses a key
over ~2.7 kB, which a long non-ASCII URL can be); a B-tree on SQLite.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_thread_view_url", "thread_view", ["url"], postgresql_using="hash")


def downgrade() -> None:
    op.drop_index("ix_thread_view_url", table_name="thread_view")
