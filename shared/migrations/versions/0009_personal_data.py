"""Personal data leaves the log: `personal_data`, and the log's existing rows moved out.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

Decision 33. Also an index on `comment_state.author_id` (erasure finds a person's
comments by it). Frozen: the table is spelled out here, and so is the split (the fields are
those `shared.personal_data` names today): CommentPosted `author.name` and `body`,
CommentEdited `body`, CommentFlagged `note`, each moved to a `personal_data` row keyed by
the event with its person as subject, "" left in its place; and every event's metadata
loses `actor.name` (the moderation log reads names from `people`).

The one rewrite of the log. `events` is append-only by triggers (revision 0001). This
revision lifts them inside its own transaction and restores them before it commits:
PostgreSQL disables the row trigger (`ALTER TABLE ... DISABLE/ENABLE TRIGGER`, the
function and both triggers stay defined); SQLite drops its two triggers and creates them
again from the very SQL `sqlite_master` held. Either the rows are moved and the triggers
are back, or nothing happened. Batches keep memory bounded whatever the log's size.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
BATCH = 1000
BLANK = ""
# Event type -> (its personal fields as paths into the data, where its subject is).
PERSONAL: dict[str, tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]] = {
    "CommentPosted": ((("author", "name"), ("body",)), ("data", "author", "id")),
    "CommentEdited": ((("body",),), ("metadata", "actor", "id")),
    "CommentFlagged": ((("note",),), ("data", "user_id")),
}
PG_ROW_TRIGGER = "events_no_update_delete"
SQLITE_TRIGGERS = ("events_no_update", "events_no_delete")

_EVENTS = sa.table(
    "events",
    sa.column("position", sa.BigInteger),
    sa.column("event_id", sa.String),
    sa.column("type", sa.String),
    sa.column("data", JSON),
    sa.column("metadata", JSON),
)


def upgrade() -> None:
    personal = op.create_table(
        "personal_data",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("subject_id", sa.String(200), nullable=False),
        sa.Column("fields", JSON, nullable=False),
    )
    op.create_index("ix_personal_data_subject_id", "personal_data", ["subject_id"])
    # Erasing a person finds their comments by author.
    op.create_index("ix_comment_state_author_id", "comment_state", ["author_id"])
    conn = op.get_bind()
    rewrite = (
        _EVENTS.update()
        .where(_EVENTS.c.position == sa.bindparam("b_position"))
        .values(data=sa.bindparam("b_data"), metadata=sa.bindparam("b_metadata"))
    )
    with _log_rewritable(conn):
        after = 0
        while True:
            rows = conn.execute(
                sa.select(
                    _EVENTS.c.position,
                    _EVENTS.c.event_id,
                    _EVENTS.c.type,
                    _EVENTS.c.data,
                    _EVENTS.c.metadata,
                )
                .where(_EVENTS.c.position > after)
                .order_by(_EVENTS.c.position)
                .limit(BATCH)
            ).all()
            if not rows:
                break
            updates, moved = [], []
            for row in rows:
                data, subject, fields = _split(row.type, row.data, row.metadata)
                metadata = _without_actor_name(row.metadata)
                if fields and subject is not None:
                    moved.append(
                        {"event_id": row.event_id, "subject_id": subject, "fields": fields}
                    )
                else:
                    data = row.data
                if data is not row.data or metadata is not row.metadata:
                    updates.append(
                        {"b_position": row.position, "b_data": data, "b_metadata": metadata}
                    )
            if moved:
                conn.execute(personal.insert(), moved)
            if updates:
                conn.execute(rewrite, updates)
            after = rows[-1].position


def downgrade() -> None:
    """Put the fields back into the log (names in metadata are not: they are gone)."""
    conn = op.get_bind()
    personal = sa.table(
        "personal_data",
        sa.column("event_id", sa.String),
        sa.column("fields", JSON),
    )
    restore = (
        _EVENTS.update()
        .where(_EVENTS.c.event_id == sa.bindparam("b_event_id"))
        .values(data=sa.bindparam("b_data"))
    )
    with _log_rewritable(conn):
        after = ""
        while True:
            rows = conn.execute(
                sa.select(personal.c.event_id, personal.c.fields, _EVENTS.c.data)
                .join(_EVENTS, _EVENTS.c.event_id == personal.c.event_id)
                .where(personal.c.event_id > after)
                .order_by(personal.c.event_id)
                .limit(BATCH)
            ).all()
            if not rows:
                break
            conn.execute(
                restore,
                [{"b_event_id": r.event_id, "b_data": _merged(r.data, r.fields)} for r in rows],
            )
            after = rows[-1].event_id
    op.drop_index("ix_comment_state_author_id", "comment_state")
    op.drop_index("ix_personal_data_subject_id", "personal_data")
    op.drop_table("personal_data")


@contextmanager
def _log_rewritable(conn: sa.Connection) -> Iterator[None]:
    """The append-only triggers lifted for this transaction's block, then restored as
    they were (an error leaves them as they were too: the transaction rolls back)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ALTER TABLE events DISABLE TRIGGER {PG_ROW_TRIGGER}")
        yield
        conn.exec_driver_sql(f"ALTER TABLE events ENABLE TRIGGER {PG_ROW_TRIGGER}")
        return
    definitions = [
        conn.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :name"),
            {"name": name},
        ).scalar_one()
        for name in SQLITE_TRIGGERS
    ]
    for name in SQLITE_TRIGGERS:
        conn.exec_driver_sql(f"DROP TRIGGER {name}")
    yield
    for definition in definitions:
        conn.exec_driver_sql(definition)


def _split(
    event_type: str, data: dict[str, Any], metadata: dict[str, Any]
) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
    spec = PERSONAL.get(event_type)
    if spec is None:
        return data, None, {}
    paths, subject_path = spec
    fields: dict[str, Any] = {}
    blanked = data
    for path in paths:
        value = _get(data, path)
        if value in (None, BLANK):
            continue
        fields[".".join(path)] = value
        blanked = _set(blanked, path, BLANK)
    source = data if subject_path[0] == "data" else metadata
    subject = _get(source, subject_path[1:])
    return blanked, subject if isinstance(subject, str) else None, fields


def _without_actor_name(metadata: dict[str, Any]) -> dict[str, Any]:
    actor = metadata.get("actor")
    if not isinstance(actor, dict) or "name" not in actor:
        return metadata
    return {**metadata, "actor": {k: v for k, v in actor.items() if k != "name"}}


def _merged(data: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    for dotted, value in fields.items():
        data = _set(data, tuple(dotted.split(".")), value)
    return data


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    head, *rest = path
    copy = dict(data)
    if rest:
        inner = copy.get(head)
        copy[head] = _set(inner if isinstance(inner, dict) else {}, tuple(rest), value)
    else:
        copy[head] = value
    return copy
