"""The event log table: append-only, the only source of truth.

The DDL lives in the Alembic migrations (which add the append-only triggers);
this class is the typed description the store's queries are built from.
"""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

# SQLite only auto-increments an INTEGER PRIMARY KEY, so BIGINT maps to INTEGER there.
POSITION_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_TYPE = sa.JSON().with_variant(JSONB(), "postgresql")


class EventRecord(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        sa.UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
        {"sqlite_autoincrement": True},
    )

    position: int | None = Field(
        default=None, sa_column=sa.Column(POSITION_TYPE, primary_key=True, autoincrement=True)
    )
    stream_id: str = Field(max_length=200)
    version: int
    event_id: str = Field(max_length=36, unique=True)
    type: str = Field(max_length=100)
    schema_version: int
    data: dict[str, Any] = Field(sa_column=sa.Column(JSON_TYPE, nullable=False))
    metadata_: dict[str, Any] = Field(sa_column=sa.Column("metadata", JSON_TYPE, nullable=False))
    recorded_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class StreamRecord(SQLModel, table=True):
    """The head of each stream: its current version, the target of the optimistic check."""

    __tablename__ = "streams"

    stream_id: str = Field(primary_key=True, max_length=200)
    version: int


# A person's words and name, kept beside the log rather than in it (decision 33): the
# store blanks them in `events.data` and writes them here, keyed by the event, so that
# erasing a person deletes rows without rewriting the append-only log.
PERSONAL_DATA = sa.Table(
    "personal_data",
    SQLModel.metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("subject_id", sa.String(200), nullable=False, index=True),
    sa.Column("fields", JSON_TYPE, nullable=False),
)
