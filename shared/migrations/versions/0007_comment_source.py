"""The thread projection keeps each comment's markdown source, for its author's edit box.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

Existing rows are filled from the log: every CommentPosted and CommentEdited in log order,
so the last edit wins, in batches (memory stays bounded whatever the log's size). A
deleted comment keeps no source, as the fold keeps none. Comments the projection has not
folded yet are left to the fold, which writes the source with the rest of the row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000

_EVENTS = sa.table(
    "events",
    sa.column("position", sa.BigInteger),
    sa.column("type", sa.String),
    sa.column("data", sa.JSON),
)
_COMMENTS = sa.table(
    "comment_view",
    sa.column("comment_id", sa.String),
    sa.column("body", sa.Text),
    sa.column("deleted", sa.Boolean),
)


def upgrade() -> None:
    op.add_column("comment_view", sa.Column("body", sa.Text, nullable=True))
    conn = op.get_bind()
    fill = (
        _COMMENTS.update()
        .where(
            _COMMENTS.c.comment_id == sa.bindparam("b_comment_id"),
            _COMMENTS.c.deleted.is_(False),
        )
        .values(body=sa.bindparam("b_body"))
    )
    after = 0
    while True:
        rows = conn.execute(
            sa.select(_EVENTS.c.position, _EVENTS.c.data)
            .where(
                _EVENTS.c.type.in_(("CommentPosted", "CommentEdited")),
                _EVENTS.c.position > after,
            )
            .order_by(_EVENTS.c.position)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        conn.execute(
            fill,
            [{"b_comment_id": r.data["comment_id"], "b_body": r.data["body"]} for r in rows],
        )
        after = rows[-1].position


def downgrade() -> None:
    with op.batch_alter_table("comment_view") as batch:
        batch.drop_column("body")
