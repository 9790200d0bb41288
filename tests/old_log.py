"""Writing the log as releases before migration 0009 wrote it: personal fields in the
event rows themselves (no `personal_data` table yet), for tests of earlier migrations."""

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.events import DomainEvent
from shared.store import NewEvent

_INSERT = sa.text(
    "INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata,"
    " recorded_at) VALUES (:stream, :version, :id, :type, :schema, :data, :metadata, :at)"
).bindparams(sa.bindparam("data", type_=sa.JSON), sa.bindparam("metadata", type_=sa.JSON))


def append_as_before_0009(engine: Engine, stream_id: str, events: list[DomainEvent]) -> None:
    """A new stream holding `events`, every field in the row as it was then."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO streams (stream_id, version) VALUES (:stream, :version)"),
            {"stream": stream_id, "version": len(events)},
        )
        for version, event in enumerate(events, start=1):
            new = NewEvent.of(event)
            conn.execute(
                _INSERT,
                {
                    "stream": stream_id,
                    "version": version,
                    "id": new.event_id,
                    "type": new.type,
                    "schema": new.schema_version,
                    "data": new.data,
                    "metadata": {"actor": {"id": "ann", "name": "Ann"}},
                    "at": now,
                },
            )
