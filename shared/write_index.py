"""The write-side index: the little state the command handlers check.

Updated in the same transaction as each append, so a check never replays a
thread. Like the projections it is derived from the log, but it belongs to the
write model: the API reads it only to decide whether a command is allowed.
"""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.log_tables import JSON_TYPE


class ThreadState(SQLModel, table=True):
    __tablename__ = "thread_state"

    thread_id: str = Field(primary_key=True, max_length=200)
    title: str | None = None
    url: str | None = None
    locked: bool = False
    # The thread's own moderation mode (post | pre | first_comments); None: the site's.
    moderation: str | None = Field(default=None, max_length=20)


class CommentState(SQLModel, table=True):
    __tablename__ = "comment_state"

    comment_id: str = Field(primary_key=True, max_length=40)
    thread_id: str = Field(max_length=200)
    # Indexed (migration 0009): erasing a person finds their comments by it.
    author_id: str = Field(max_length=200, index=True)
    parent_id: str | None = Field(default=None, max_length=40)
    deleted: bool = False
    like_count: int = 0
    # 0 for a top-level comment, one more than its parent for a reply (migration 0005).
    depth: int = 0
    # published | pending | rejected (migration 0008).
    status: str = Field(
        default="published",
        sa_column=sa.Column(sa.String(10), nullable=False, server_default="published"),
    )
    # Flags since the last approval: reaching the site's threshold holds the comment.
    flag_count: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    featured: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false())
    )


class CommentLike(SQLModel, table=True):
    __tablename__ = "comment_likes"

    comment_id: str = Field(primary_key=True, max_length=40)
    user_id: str = Field(primary_key=True, max_length=200)


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a user's `Idempotency-Key`, replayed for every retry.

    Kept `CHORUS_IDEMPOTENCY_RETENTION_HOURS`; the retention job finds expired keys by
    `created_at` (migration 0006 adds its index).
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.Index("ix_idempotency_keys_created_at", "created_at"),)

    user_id: str = Field(primary_key=True, max_length=200)
    key: str = Field(primary_key=True, max_length=200)
    fingerprint: str = Field(max_length=64)
    response: dict[str, Any] = Field(sa_column=sa.Column(JSON_TYPE, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
