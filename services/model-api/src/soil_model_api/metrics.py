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
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client import metrics as metrics_module
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
OUT_OF_DOMAIN_HELP = "Spectra scored outside the calibration domain (T2 or Q above its limit)"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class ServiceMetrics:
    """One registry per app, so several apps in one process (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        ns = "soil_model_api"
        self.traffic = TrafficMetrics(self.registry)
        self.model_info = Gauge(f"{ns}_model_info", "The loaded model (always 1)",
                                ["model_name", "model_version", "alias", "slot", "image_tag", "git_revision"],
                                registry=self.registry)
        self.ready = Gauge(f"{ns}_ready", "1 when a model is loaded and passed its self-check",
                           registry=self.registry)
        self.observe = self.traffic.observe_request

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class TrafficMetrics(Collector):
    """Requests by method, route template and status with their latency; spectra scored per model version.

    The families and samples are prometheus_client's ``Counter`` and ``Histogram`` ones
    (``soil_model_api_requests_total``, ``..._request_duration_seconds_bucket`` ...,
    ``..._predictions_total``, ``..._out_of_domain_total``, ``..._batch_size_bucket`` ...), ``_created``
    included, but the counts are plain Python numbers updated on the event loop and turned into
    samples when scraped: a labelled ``Counter.inc`` and ``Histogram.observe`` take a lock and a label
    lookup each, which for a one-spectrum prediction cost as much as its T2 and Q.
    Only the event loop updates them; a scrape copies each table before reading it.
    """

    def __init__(self, registry: CollectorRegistry):
        self._latency_bounds = list(LATENCY_BUCKETS)
        self._batch_bounds = list(BATCH_BUCKETS)
        # (method, route, status) -> [count, created]; (method, route) -> [bucket counts..., +Inf, sum, created]
        self._requests: dict[tuple[str, str, int], list[float]] = {}
        self._latency: dict[tuple[str, str], list[float]] = {}
        # (model_name, model_version) -> [spectra, out of domain, created]
        self._scored: dict[tuple[str, str], list[float]] = {}
        self._batches = [0] * (len(BATCH_BUCKETS) + 1) + [0.0]  # bucket counts, +Inf, sum
        self._batches_created = time.time()
        registry.register(self)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency in seconds."""
        counted = self._requests.get((method, route, status))
        if counted is None:
            counted = self._requests[(method, route, status)] = [0, time.time()]
        counted[0] += 1
        latency = self._latency.get((method, route))
        if latency is None:
            latency = self._latency[(method, route)] = [0] * (len(self._latency_bounds) + 1) + [0.0, time.time()]
        latency[bisect.bisect_left(self._latency_bounds, seconds)] += 1
        latency[-2] += seconds

    def model(self, name: str, version: str) -> list[float]:
        """The counts of one model version (created at zero): ``[spectra, out of domain, created]``."""
        counts = self._scored.get((name, version))
        if counts is None:
            counts = self._scored[(name, version)] = [0, 0, time.time()]
        return counts

    def observe_batch(self, counts: list[float], n: int, outside: int) -> None:
        """One accepted predict request of ``n`` spectra, ``outside`` of them out of domain, for ``model``'s counts."""
        counts[0] += n
        counts[1] += outside
        batches = self._batches
        batches[bisect.bisect_left(self._batch_bounds, n)] += 1
        batches[-1] += n

    def describe(self):
        return []  # collected fresh each scrape; nothing to check at registration

    def collect(self):
        ns = "soil_model_api"
        created = metrics_module._use_created  # PROMETHEUS_DISABLE_CREATED_SERIES, as for the library's own
        requests = CounterMetricFamily(f"{ns}_requests", "HTTP requests by method, route template and status",
                                       labels=["method", "route", "status"])
        for (method, route, status), (count, when) in list(self._requests.items()):
            requests.add_metric([method, route, str(status)], float(count), when if created else None)
        yield requests
        latency = Metric(f"{ns}_request_duration_seconds", "Request latency by method and route template",
                         "histogram")
        for (method, route), counts in list(self._latency.items()):
            add_histogram(latency, {"method": method, "route": route}, self._latency_bounds, counts[:-1],
                          counts[-1] if created else None)
        yield latency
        scored = list(self._scored.items())
        for index, name, doc in ((0, "predictions", "Spectra scored"),
                                 (1, "out_of_domain", OUT_OF_DOMAIN_HELP)):
            family = CounterMetricFamily(f"{ns}_{name}", doc, labels=["model_name", "model_version"])
            for labels, counts in scored:
                family.add_metric(list(labels), float(counts[index]), counts[2] if created else None)
            yield family
        batches = Metric(f"{ns}_batch_size", "Spectra per accepted predict request", "histogram")
        add_histogram(batches, {}, self._batch_bounds, list(self._batches),
                      self._batches_created if created else None)
        yield batches


def add_histogram(family: Metric, labels: dict[str, str], bounds: list[float], counts: list[float],
                  created: float | None) -> None:
    """The samples prometheus_client's ``Histogram`` gives one child, from per-bucket ``counts`` (+Inf last) and the sum."""
    name = family.name
    total = 0.0
    for bound, count in zip([*bounds, math.inf], counts, strict=False):
        total += count
        family.add_sample(f"{name}_bucket", {**labels, "le": floatToGoString(bound)}, total)
    family.add_sample(f"{name}_count", labels, total)
    family.add_sample(f"{name}_sum", labels, float(counts[len(bounds) + 1]))
    if created is not None:
        family.add_sample(f"{name}_created", labels, created)


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
