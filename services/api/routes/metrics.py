"""`GET /metrics`: this API's instruments, plus the state of the system read at scrape time.

The state is the same from every process, so it is read from SQL and Redis on each scrape
rather than counted. The queries stay cheap (none counts the events table):

- projection lag in events: one pass over `streams` (a row per thread) joined to the
  projection's checkpoints by primary key, for each projection: linear in threads;
- projection lag in seconds: among the `LAG_SAMPLE` threads furthest behind, the oldest
  first unfolded event, each found through UNIQUE(stream_id, version). Exact while at most
  that many threads are behind, a lower bound beyond;
- dead letters and outbox rows: GROUP BY counts of those tables (the outbox by its
  (status, due_at) index; retention keeps it to a few days of mail), and in the same
  statement, so from one snapshot, the rows retention has pruned per status: the
  all-time totals are rows + pruned, whether or not a prune ran in between;
- queue depth and failed jobs: LLEN and ZCARD in Redis.

All of it is read at most once per `CHORUS_METRICS_CACHE_SECONDS` per process, and
concurrent scrapes share one reading (`services.api.scrape_cache`): the cost of scraping
does not grow with the number of scrapers. On PostgreSQL the queries get a 2 s statement
timeout. A source that does not answer is reported by `chorus_metrics_source_up{source} 0`
and its gauges are left out: the endpoint always answers.
"""

import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy.engine import Connection, Engine

from services.api.deps import ServicesDep
from services.api.metrics import CONTENT_TYPE, ApiMetrics
from services.api.scrape_cache import CachedCollector, SingleFlight
from shared.db import read_connection
from shared.log_tables import EventRecord, StreamRecord
from shared.notification_tables import FINISHED_STATUSES, email_outbox, notification_checkpoints
from shared.nudges import FOLD_QUEUE
from shared.projection_tables import DEAD_LETTERS, LIVE
from shared.retention_tables import email_outbox_pruned

EVENTS = EventRecord.__table__  # type: ignore[attr-defined]
STREAMS = StreamRecord.__table__  # type: ignore[attr-defined]
LAG_SAMPLE = 100
PROJECTIONS = {"threads": LIVE.checkpoints, "notifications": notification_checkpoints}
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "skipped")

router = APIRouter(tags=["operations"])
log = logging.getLogger(__name__)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request, services: ServicesDep) -> PlainTextResponse:
    """Prometheus metrics: requests, events appended, projection lag, mail, queue depth."""
    api_metrics: ApiMetrics = request.app.state.metrics
    cache: SingleFlight[list[Metric]] = request.app.state.scraped_state
    state = CachedCollector(cache, StateCollector(services.engine, services.redis))
    body = api_metrics.exposition(state)
    return PlainTextResponse(body, media_type=CONTENT_TYPE)


class StateCollector:
    """Gauges read from SQL and Redis when collected (a Prometheus collector)."""

    def __init__(self, engine: Engine, redis: Redis) -> None:
        self.engine = engine
        self.redis = redis

    def collect(self) -> list[Metric]:
        up = GaugeMetricFamily(
            "chorus_metrics_source_up",
            "Whether this scrape could read the source (1) or not (0, its gauges are missing).",
            labels=["source"],
        )
        families: list[Metric] = []
        for source, read in (("database", self._database), ("redis", self._redis)):
            try:
                families.extend(read())
                up.add_metric([source], 1)
            except Exception as exc:
                # Whatever went wrong, the scrape still answers with what it could read.
                expected = isinstance(exc, sa.exc.SQLAlchemyError | RedisError)
                log.warning(
                    "metrics: could not read the %s: %s", source, exc, exc_info=not expected
                )
                up.add_metric([source], 0)
        return [*families, up]

    def _database(self) -> list[Metric]:
        lag_events = GaugeMetricFamily(
            "chorus_projection_lag_events",
            "Events of thread streams not yet folded into the projection.",
            labels=["projection"],
        )
        lag_seconds = GaugeMetricFamily(
            "chorus_projection_lag_seconds",
            f"Age of the oldest event not yet folded (of the {LAG_SAMPLE} threads most behind).",
            labels=["projection"],
        )
        dead = GaugeMetricFamily(
            "chorus_dead_letters", "Events a projector could not apply.", labels=["projection"]
        )
        outbox = GaugeMetricFamily(
            "chorus_email_outbox_rows",
            "Email outbox rows by status, as the table holds them now (retention prunes "
            "finished ones).",
            labels=["status"],
        )
        finished = CounterMetricFamily(
            "chorus_email_outbox_finished",
            "Outbox rows that ever reached a final status: in the table plus pruned.",
            labels=["status"],
        )
        with read_connection(self.engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL statement_timeout = 2000")
            for name, checkpoints in PROJECTIONS.items():
                behind, oldest = projection_lag(conn, checkpoints)
                age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
                lag_events.add_metric([name], behind)
                lag_seconds.add_metric([name], max(age, 0.0))
            dead_letters = _count_by(conn, DEAD_LETTERS.c.projection)
            outbox_rows, pruned = outbox_counts(conn)
        for name in {*PROJECTIONS, *dead_letters}:
            dead.add_metric([name], dead_letters.get(name, 0))
        for status in {*OUTBOX_STATUSES, *outbox_rows}:
            outbox.add_metric([status], outbox_rows.get(status, 0))
        for status in FINISHED_STATUSES:
            finished.add_metric([status], outbox_rows.get(status, 0) + pruned.get(status, 0))
        return [lag_events, lag_seconds, dead, outbox, finished]

    def _redis(self) -> list[Metric]:
        queue = Queue(FOLD_QUEUE, connection=self.redis)
        depth = GaugeMetricFamily(
            "chorus_queue_depth", "Jobs waiting in the RQ queue.", labels=["queue"]
        )
        failed = GaugeMetricFamily(
            "chorus_queue_failed_jobs", "Jobs in the queue's failed-job registry.", labels=["queue"]
        )
        depth.add_metric([FOLD_QUEUE], queue.count)
        # Without cleanup: a scrape only reads (workers' maintenance expires old entries).
        failed.add_metric([FOLD_QUEUE], queue.failed_job_registry.get_job_count(cleanup=False))
        return [depth, failed]


def projection_lag(conn: Connection, checkpoints: sa.Table) -> tuple[int, datetime | None]:
    """Events not yet folded over all thread streams, and the oldest one's time (sampled)."""
    folded = sa.func.coalesce(checkpoints.c.version, 0)
    behind = (
        sa.select(
            STREAMS.c.stream_id,
            (STREAMS.c.version - folded).label("gap"),
            (folded + 1).label("next_version"),
        )
        .outerjoin(checkpoints, checkpoints.c.thread_id == STREAMS.c.stream_id)
        .where(~STREAMS.c.stream_id.startswith("~"), STREAMS.c.version > folded)
    )
    every = behind.subquery()
    total = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(every.c.gap), 0))).scalar_one()
    most = behind.order_by(sa.desc("gap")).limit(LAG_SAMPLE).subquery()
    first_unfolded = EVENTS.join(
        most,
        sa.and_(EVENTS.c.stream_id == most.c.stream_id, EVENTS.c.version == most.c.next_version),
    )
    oldest = conn.execute(
        sa.select(sa.func.min(EVENTS.c.recorded_at)).select_from(first_unfolded)
    ).scalar()
    if oldest is not None and oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=UTC)
    return int(total), oldest


def outbox_counts(conn: Connection) -> tuple[dict[str, int], dict[str, int]]:
    """Outbox rows by status, and rows pruned by status, in one statement: one snapshot,
    so a prune committing meanwhile is seen whole or not at all."""
    rows = sa.select(
        sa.literal_column("'rows'").label("kind"),
        email_outbox.c.status,
        sa.func.count().label("n"),
    ).group_by(email_outbox.c.status)
    pruned = sa.select(
        sa.literal_column("'pruned'"),
        email_outbox_pruned.c.status,
        email_outbox_pruned.c.pruned_rows,
    )
    counts: dict[str, dict[str, int]] = {"rows": {}, "pruned": {}}
    for kind, status, n in conn.execute(sa.union_all(rows, pruned)):
        counts[kind][status] = int(n)
    return counts["rows"], counts["pruned"]


def _count_by(conn: Connection, column: sa.Column[str]) -> dict[str, int]:
    rows = conn.execute(sa.select(column, sa.func.count()).group_by(column))
    return {key: int(count) for key, count in rows}
