"""Reading the dead letters: events a projector could not apply."""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.db import read_connection
from shared.projection_tables import DEAD_LETTERS
from shared.timeutil import as_utc


@dataclass(frozen=True)
class DeadLetter:
    projection: str
    stream_id: str
    version: int
    event_type: str
    error: str
    failed_at: datetime


def list_dead_letters(engine: Engine, limit: int = 50) -> list[DeadLetter]:
    query = sa.select(DEAD_LETTERS).order_by(DEAD_LETTERS.c.id.desc()).limit(limit)
    with read_connection(engine) as conn:
        return [
            DeadLetter(
                projection=row.projection,
                stream_id=row.stream_id,
                version=row.version,
                event_type=row.event_type,
                error=row.error,
                failed_at=as_utc(row.failed_at),
            )
            for row in conn.execute(query)
        ]


def count_dead_letters(engine: Engine) -> int:
    with read_connection(engine) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(DEAD_LETTERS)).scalar_one())
