"""The FastAPI application and its composition root."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import Depends, FastAPI
from prometheus_client.core import Metric
from redis import Redis

from services.api import live_queries, read_queries
from services.api.cors import CorsMiddleware
from services.api.deps import Services
from services.api.early_reads import EarlyReads
from services.api.errors import install_error_handlers
from services.api.fold_waits import FoldWaits
from services.api.live_hub import LiveHub
from services.api.metrics import ApiMetrics, HttpMetricsMiddleware
from services.api.metrics_access import require_metrics_access
from services.api.middleware import (
    BodyLimitMiddleware,
    RequestIdMiddleware,
    UnsafeTextMiddleware,
)
from services.api.rate_limit import RateLimited, RateLimiter, rate_limited_response
from services.api.read_caching import NotModified, not_modified_response
from services.api.routes import (
    comment_moderation,
    comments,
    demo,
    embed,
    health,
    live,
    me,
    metrics,
    moderation,
    moderation_queue,
    pages,
    personal,
    reads,
    threads,
    unsubscribe,
)
from services.api.scrape_cache import SingleFlight
from services.api.thread_versions import ThreadVersions
from shared.command_bus import CommandBus
from shared.db import create_db_engine
from shared.jwt_secret import require_secret
from shared.logging_setup import configure_logging
from shared.nudges import Nudger
from shared.settings import Settings, get_settings
from shared.store import EventStore


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Here, not only in `chorus api`: `uvicorn --factory services.api.app:create_app`
    # must not serve with a key anyone knows either.
    require_secret(settings.jwt_secret)
    configure_logging()
    api_metrics = ApiMetrics.from_environment()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_db_engine(settings.database_url, pool_size=settings.db_pool_size)
        redis = Redis.from_url(settings.redis_url, socket_connect_timeout=0.5, socket_timeout=1.0)
        store = EventStore(engine)
        nudger = Nudger(redis)
        bus = CommandBus(
            engine,
            store,
            retries=settings.append_retries,
            max_body_chars=settings.max_body_chars,
            write_timeout=settings.write_timeout_seconds,
            max_waiting=settings.write_queue_limit,
            on_appended=api_metrics.count_appended,
            on_lock_held=api_metrics.append_lock_held.inc,
            nudger=nudger,
        )
        hub = LiveHub(
            partial(live_queries.changes, engine),
            partial(live_queries.unread_counts, engine),
            queue_size=settings.live_queue_size,
            max_replay=settings.live_max_replay,
        )
        versions = ThreadVersions(settings.read_version_trust_seconds)
        waits = FoldWaits(
            settings.redis_url,
            partial(read_queries.checkpoints, engine),
            poll_seconds=settings.read_wait_poll_seconds,
            listener=hub,
            versions=versions,
        )
        await waits.start()
        app.state.services = Services(settings, engine, redis, store, bus, waits, hub, versions)
        app.state.rate_limiter = RateLimiter(redis, settings)
        # Everything built so far lives as long as the process: move it out of the
        # collector's sight, so full collections (latency spikes) walk only request garbage.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await waits.stop()
            await hub.stop()
            bus.close()
            redis.close()
            engine.dispose()

    app = FastAPI(
        title="Chorus",
        version="0.1.0",
        summary="An event-sourced comment backend for publications.",
        lifespan=lifespan,
    )
    app.add_middleware(UnsafeTextMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    # An anonymous reader's current copy (304) or page (200), before routing (decision 32).
    app.add_middleware(EarlyReads)
    # Outside everything that may refuse a request (decision 24); only the two that never
    # answer themselves are further out, so preflights are timed and carry a request id.
    app.add_middleware(CorsMiddleware, origins=settings.cors_origins)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(HttpMetricsMiddleware, metrics=api_metrics)  # outermost: times it all
    app.state.metrics = api_metrics
    app.state.scraped_state = SingleFlight[list[Metric]](settings.metrics_cache_seconds)
    install_error_handlers(app)
    app.add_exception_handler(RateLimited, rate_limited_response)
    app.add_exception_handler(NotModified, not_modified_response)
    app.include_router(health.router)
    # A bearer token, or else private peers only: the proxy forwards no /metrics either.
    app.include_router(metrics.router, dependencies=[Depends(require_metrics_access)])
    app.include_router(threads.router)
    app.include_router(comments.router)
    app.include_router(reads.router)
    app.include_router(live.router)
    app.include_router(unsubscribe.router)
    app.include_router(me.router)
    app.include_router(personal.router)
    app.include_router(moderation.router)
    app.include_router(comment_moderation.router)
    app.include_router(moderation_queue.router)
    app.include_router(embed.router)
    app.include_router(pages.router)
    if settings.demo_enabled:  # dev only: it hands out tokens (services/api/routes/demo.py)
        app.include_router(demo.router)
    return app
