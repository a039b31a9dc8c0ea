"""Prometheus metrics: request counts and latencies per route, spectra scored per model version."""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class ServiceMetrics:
    """One registry per app, so several apps in one process (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        ns = "soil_model_api"
        self.requests = Counter(f"{ns}_requests", "HTTP requests by method, route template and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(f"{ns}_request_duration_seconds", "Request latency by method and route template",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.predictions = Counter(f"{ns}_predictions", "Spectra scored", ["model_name", "model_version"],
                                   registry=self.registry)
        self.out_of_domain = Counter(f"{ns}_out_of_domain", "Spectra scored outside the calibration domain "
                                     "(T2 or Q above its limit)", ["model_name", "model_version"],
                                     registry=self.registry)
        self.batch_size = Histogram(f"{ns}_batch_size", "Spectra per accepted predict request",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.model_info = Gauge(f"{ns}_model_info", "The loaded model (always 1)",
                                ["model_name", "model_version", "alias", "slot", "image_tag", "git_revision"],
                                registry=self.registry)
        self.ready = Gauge(f"{ns}_ready", "1 when a model is loaded and passed its self-check",
                           registry=self.registry)
        self._children: dict[tuple[str, str, int], tuple] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI timing (no BaseHTTPMiddleware overhead); routes are labelled by template, not path."""

    def __init__(self, app, metrics: ServiceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.observe(method, template, status, time.perf_counter() - start)
