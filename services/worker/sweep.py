"""Finding threads whose log is ahead of their projection (a lost nudge, a Redis flush)."""

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.db import read_connection
from shared.log_tables import StreamRecord
from shared.notification_tables import notification_checkpoints
from shared.projection_tables import LIVE
from shared.streams import NOT_A_THREAD_PREFIX

STREAMS = StreamRecord.__table__  # type: ignore[attr-defined]


def threads_behind(engine: Engine, limit: int = 1000) -> list[str]:
    """Threads whose tree or notification projection is behind the head of their stream."""
    found: list[str] = []
    with read_connection(engine) as conn:
        for checkpoints in (LIVE.checkpoints, notification_checkpoints):
            query = (
                sa.select(STREAMS.c.stream_id)
                .outerjoin(checkpoints, checkpoints.c.thread_id == STREAMS.c.stream_id)
                .where(
                    sa.or_(
                        checkpoints.c.version.is_(None),
                        checkpoints.c.version < STREAMS.c.version,
                    )
                )
                # Users' and the site's streams (`~...`) have no thread to fold.
                .where(~STREAMS.c.stream_id.startswith(NOT_A_THREAD_PREFIX))
                .limit(limit)
            )
            found.extend(conn.execute(query).scalars())
    return sorted(set(found))
