"""Prometheus metrics of the API process: request latencies and events appended.

Counted in-process; with several API processes (`chorus api --workers N`) set
`PROMETHEUS_MULTIPROC_DIR` to an empty directory shared by them before they start, and
every process's scrape then reports the sum over all of them (prometheus-client's
multiprocess mode). Otherwise the app owns a registry of its own (with the usual
process, platform and GC collectors), so two apps in one process never share counts.

What every process sees alike (projection lag, dead letters, the outbox, the queue) is
read from SQL and Redis at scrape time instead: see `services.api.routes.metrics`.
"""

import os
import time
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.store import StoredEvent

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
UNMATCHED = "unmatched"
# Anything else a client sends as a method is counted as "other": labels stay bounded.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ApiMetrics:
    """The instruments one API app records into, and the `/metrics` exposition."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        if multiprocess_dir is None:
            # Per-process figures; meaningless summed over processes, so single-process only.
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self.request_duration = Histogram(
            "chorus_http_request_duration_seconds",
            "HTTP requests by method, route template and status, and how long they took.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.events_appended = Counter(
            "chorus_events_appended_total",
            "Events appended to the log by this API, by event type.",
            ["type"],
            registry=self.registry,
        )

        # Summed over API processes this is still the lock's busy time: they share the one
        # lock, so its rate is the share of time the log's serial part is busy
        # (docs/scaling.md, "When to act").
        self.append_lock_held = Counter(
            "chorus_append_lock_held_seconds",
            "Seconds write batches held the append lock, from taking it to their commit.",
            registry=self.registry,
        )

    @classmethod
    def from_environment(cls) -> "ApiMetrics":
        # prometheus-client's own variable (read when it is imported), not a Chorus setting.
        return cls(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None)

    def count_appended(self, events: list[StoredEvent]) -> None:
        for event in events:
            self.events_appended.labels(event.type).inc()

    def exposition(self, *scraped: Collector) -> bytes:
        """The text format: this process's (or all processes') metrics, then `scraped`."""
        own: Collector = self.registry
        if self.multiprocess_dir is not None:
            own = CollectorRegistry()
            MultiProcessCollector(own, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return b"".join(generate_latest(collector) for collector in (own, *scraped))


class HttpMetricsMiddleware:
    """Times every HTTP request, labelled with the route template (not the raw path)."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.request_duration = metrics.request_duration

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before responding

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.request_duration.labels(method, route_template(scope), str(status)).observe(
                time.perf_counter() - started
            )


def route_template(scope: Scope) -> str:
    """The path template of the route that handled (or would have handled) the request."""
    path = getattr(scope.get("route"), "path", None)  # the router records API routes
    if not isinstance(path, str):
        # Plain Starlette routes (/docs), and requests answered before routing (413).
        router = getattr(scope.get("app"), "router", None)
        path = _template_in(getattr(router, "routes", []), scope)
    return path or UNMATCHED


def _template_in(routes: Iterable[object], scope: Scope) -> str | None:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's include_router
        if included is not None:
            if found := _template_in(included.routes, scope):
                return found
            continue
        path = getattr(route, "path", None)
        matches = getattr(route, "matches", None)
        if isinstance(path, str) and matches is not None and matches(scope)[0] != Match.NONE:
            return path
    return None
