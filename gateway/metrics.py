"""Prometheus metrics (their names are a contract: docs/metrics.md) and the middleware recording them."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import REASONS

# 5 ms to 30 s: from a cache-hot tiny model to a cold ViT-L batch on CPU.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Paths that match no route share one label value, so scanners cannot explode cardinality.
UNMATCHED = "unmatched"
PREDICTORS = ("image", "text")
# Any token is a valid HTTP method on the wire; only these get a label value of their own.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """The gateway's metrics, on a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # process_cpu_seconds_total, process_resident_memory_bytes, ...: the dashboard's resource panels.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by route template and status code.",
            ["method", "handler", "http_status"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["method", "handler"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.rejected = Counter(
            "gateway_rejected_requests_total",
            "Requests refused with 503 at once: GATEWAY_MAX_CONCURRENCY requests were in flight.",
            registry=self.registry,
        )
        self.predictor_duration = Histogram(
            "predictor_request_duration_seconds",
            "Time of one predictor call, retry included.",
            ["predictor"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.predictor_errors = Counter(
            "predictor_errors_total",
            f"Failed predictor calls, by reason ({', '.join(REASONS)}).",
            ["predictor", "reason"],
            registry=self.registry,
        )
        self.text_cache_hits = Counter(
            "gateway_text_cache_hits_total",
            "Texts of /compare/ requests whose embedding came from the gateway's cache.",
            registry=self.registry,
        )
        self.text_cache_misses = Counter(
            "gateway_text_cache_misses_total",
            "Texts of /compare/ requests that the text predictor had to encode.",
            registry=self.registry,
        )
        self.text_cache_entries = Gauge(
            "gateway_text_cache_entries",
            "Text embeddings held in the gateway's cache.",
            registry=self.registry,
        )
        # Every series a panel or alert reads exists from the start at 0, so rate() and alerts see the
        # first event and panels show 0 rather than no data. (Unlabelled metrics start at 0 by themselves.)
        for predictor in PREDICTORS:
            self.predictor_duration.labels(predictor)
            for reason in REASONS:
                self.predictor_errors.labels(predictor, reason)

    def declare_routes(self, routes: Iterable[tuple[str, str, Iterable[int]]]) -> None:
        """Start the series of each (method, route template, statuses) at 0: the request counter for
        200 and for each status given (the 5xx the route can answer: what the error-ratio alert and
        the requests panel read), and the duration histogram."""
        for method, handler, statuses in routes:
            self.request_duration.labels(method, handler)
            for status in {200, *statuses}:
                self.requests.labels(method, handler, str(status))


class MetricsMiddleware:
    """Counts and times every HTTP request, labelled with the route template, never the raw path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # The labelled series of each (method, handler, status) seen, looked up once: `labels()` takes
        # a lock and builds its key on every call. Bounded like the label values themselves.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            # The matched route, which Starlette's router puts in the scope: an undocumented key,
            # checked against starlette 1.10.0 and fastapi 0.165.0.
            route = scope.get("route")
            handler = getattr(route, "path", None) or UNMATCHED
            method = scope["method"] if scope["method"] in METHODS else "other"
            series = self._series.get((method, handler, status))
            if series is None:
                series = self._series[method, handler, status] = (
                    self.metrics.requests.labels(method, handler, str(status)),
                    self.metrics.request_duration.labels(method, handler),
                )
            series[0].inc()
            series[1].observe(time.perf_counter() - start)
