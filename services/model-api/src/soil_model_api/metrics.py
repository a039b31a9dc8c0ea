"""Prometheus metrics: request counts and latencies per route, spectra scored per model version."""

from __future__ import annotations

import bisect
import math
import time

import numpy as np
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
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

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


# Hotelling T2 and Q as multiples of their flag limit (1.0 = the limit in domain.json), so one set of
# buckets fits every model; Prometheus computes quantiles and "share above 1" from these.
LIMIT_RATIO_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 100.0)
DRIFT_STATUSES = ("pass", "fail", "insufficient_data", "unavailable")


class RatioHistogram:
    """A Prometheus histogram fed a whole batch at once (one ``searchsorted``, not one call per value).

    prometheus_client's ``Histogram.observe`` costs a few microseconds per value and takes one value;
    a 1000-spectrum request would spend more time there than in the model.
    """

    def __init__(self, name: str, documentation: str, labels: dict[str, str], buckets: tuple[float, ...]):
        self.name, self.documentation, self.labels = name, documentation, labels
        self.bounds = np.asarray(buckets, dtype=np.float64)
        self._bounds = [float(b) for b in buckets]
        # Python ints: one of them grows by one per spectrum, which is cheaper than indexing numpy.
        self.counts = [0] * (len(buckets) + 1)  # last: above the highest bound (+Inf)
        self.total = 0.0

    def observe_one(self, value: float) -> None:
        """Add one value (a few hundred nanoseconds: the single-spectrum request path)."""
        if math.isfinite(value):
            self.counts[bisect.bisect_left(self._bounds, value)] += 1
            self.total += value

    def observe_many(self, values: np.ndarray) -> None:
        """Add every finite value of ``values`` (any shape)."""
        values = values[np.isfinite(values)]
        added = np.bincount(np.searchsorted(self.bounds, values, side="left"), minlength=len(self.counts))
        self.counts = [a + b for a, b in zip(self.counts, added.tolist(), strict=True)]
        self.total += float(values.sum())

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.documentation, labels=list(self.labels))
        cumulative = np.cumsum(self.counts).tolist()
        buckets = [(f"{b:g}", c) for b, c in zip(self.bounds.tolist(), cumulative, strict=False)]
        buckets.append(("+Inf", cumulative[-1]))
        family.add_metric(list(self.labels.values()), buckets, self.total)
        return family


class LiveTrafficMetrics(Collector):
    """The served model's traffic against its calibration domain, and the live drift check's verdict.

    Labels ``model_name``, ``model_version``, ``slot`` (blue/green; empty outside a Deployment).
    """

    def __init__(self, registry: CollectorRegistry, model_name: str, model_version: str, slot: str):
        ns = "soil_model_api"
        labels = {"model_name": model_name, "model_version": model_version, "slot": slot}
        names, values = list(labels), list(labels.values())
        self.t2 = RatioHistogram(f"{ns}_hotelling_t2_limit_ratio", "Hotelling T2 of each scored spectrum divided "
                                 "by its flag limit (above 1: out of domain)", labels, LIMIT_RATIO_BUCKETS)
        self.q = RatioHistogram(f"{ns}_q_residual_limit_ratio", "Q residual of each scored spectrum divided by "
                                "its flag limit (above 1: out of domain)", labels, LIMIT_RATIO_BUCKETS)
        registry.register(self)
        self.window_rows = Gauge(f"{ns}_drift_window_spectra", "Recent spectra held for the live drift check",
                                 names, registry=registry).labels(*values)
        self.window_out_of_domain = Gauge(
            f"{ns}_drift_window_out_of_domain_ratio", "Share of the spectra in the drift window scored out of "
            "domain", names, registry=registry).labels(*values)
        self.p_value = Gauge(f"{ns}_drift_p_value", "Smallest Holm-adjusted p-value of the last live drift check "
                             "(NaN: not enough spectra or no calibration sample)", names,
                             registry=registry).labels(*values)
        self.p_value.set(float("nan"))
        status = Gauge(f"{ns}_drift_status", "Result of the last live drift check: 1 for the current status",
                       [*names, "status"], registry=registry)
        self.status = {s: status.labels(*values, s) for s in DRIFT_STATUSES}
        self.checks = Counter(f"{ns}_drift_checks", "Live drift checks run, by result", [*names, "status"],
                              registry=registry)
        self._check_labels = values
        self.last_check = Gauge(f"{ns}_drift_last_check_timestamp_seconds", "Unix time of the last live drift "
                                "check", names, registry=registry).labels(*values)
        self.check_seconds = Gauge(f"{ns}_drift_check_duration_seconds", "How long the last live drift check "
                                   "took", names, registry=registry).labels(*values)

    def collect(self):
        yield self.t2.family()
        yield self.q.family()

    def describe(self):
        return []  # collected fresh each scrape; nothing to check at registration

    def record_check(self, status: str, p_value: float | None, seconds: float, when: float) -> None:
        """Publish one check's result."""
        for name, child in self.status.items():
            child.set(1 if name == status else 0)
        self.p_value.set(float("nan") if p_value is None else p_value)
        self.checks.labels(*self._check_labels, status).inc()
        self.last_check.set(when)
        self.check_seconds.set(seconds)
