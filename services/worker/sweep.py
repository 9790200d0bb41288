"""Finding threads whose log is ahead of their projection (a lost nudge, a Redis flush)."""

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.db import read_connection
from shared.log_tables import StreamRecord
from shared.projection_tables import LIVE

STREAMS = StreamRecord.__table__  # type: ignore[attr-defined]


def threads_behind(engine: Engine, limit: int = 1000) -> list[str]:
    checkpoints = LIVE.checkpoints
    query = (
        sa.select(STREAMS.c.stream_id)
        .outerjoin(checkpoints, checkpoints.c.thread_id == STREAMS.c.stream_id)
        .where(sa.or_(checkpoints.c.version.is_(None), checkpoints.c.version < STREAMS.c.version))
        .limit(limit)
    )
    with read_connection(engine) as conn:
        return list(conn.execute(query).scalars())
