"""metrics.TrafficMetrics: plain counters exposed as prometheus_client's Counter and Histogram would expose them."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from soil_model_api.metrics import BATCH_BUCKETS, LATENCY_BUCKETS, OUT_OF_DOMAIN_HELP, ServiceMetrics

FAMILIES = re.compile(r"(# (HELP|TYPE) )?soil_model_api_(requests|request_duration_seconds|predictions|out_of_domain|"
                      r"batch_size)")


def exposed(text: bytes) -> list[str]:
    """The traffic families' lines, each ``_created`` timestamp replaced by T."""
    return sorted(re.sub(r"(_created(\{.*\})?) \S+$", r"\1 T", line)
                  for line in text.decode().splitlines() if FAMILIES.match(line))


def test_traffic_metrics_expose_what_prometheus_clients_own_metrics_would():
    ours = ServiceMetrics()
    reference = CollectorRegistry()
    requests = Counter("soil_model_api_requests", "HTTP requests by method, route template and status",
                       ["method", "route", "status"], registry=reference)
    latency = Histogram("soil_model_api_request_duration_seconds", "Request latency by method and route template",
                        ["method", "route"], buckets=LATENCY_BUCKETS, registry=reference)
    predictions = Counter("soil_model_api_predictions", "Spectra scored", ["model_name", "model_version"],
                          registry=reference)
    outside = Counter("soil_model_api_out_of_domain", OUT_OF_DOMAIN_HELP, ["model_name", "model_version"],
                      registry=reference)
    batches = Histogram("soil_model_api_batch_size", "Spectra per accepted predict request", buckets=BATCH_BUCKETS,
                        registry=reference)

    # on a bucket bound, between bounds, above every bound; several routes and statuses
    for method, route, status, seconds in [("POST", "/v1/predict", 200, 0.0003), ("POST", "/v1/predict", 200, 0.001),
                                           ("POST", "/v1/predict", 422, 0.0017), ("GET", "/metrics", 200, 3.0),
                                           ("POST", "/v1/predict", 200, 0.0004)]:
        ours.observe(method, route, status, seconds)
        requests.labels(method, route, str(status)).inc()
        latency.labels(method, route).observe(seconds)
    for name, version in [("soil-soc", "7"), ("soil-soc", "8")]:  # a model loaded counts from zero at once
        ours.traffic.model(name, version)
        predictions.labels(name, version)
        outside.labels(name, version)
    counts = ours.traffic.model("soil-soc", "7")
    for n, out in [(1, 0), (100, 3), (1000, 1), (5001, 0), (1, 1)]:
        ours.traffic.observe_batch(counts, n, out)
        predictions.labels("soil-soc", "7").inc(n)
        outside.labels("soil-soc", "7").inc(out)
        batches.observe(n)

    got, expected = exposed(ours.exposition()[0]), exposed(generate_latest(reference))
    assert got == expected
    assert 'soil_model_api_requests_total{method="POST",route="/v1/predict",status="200"} 3.0' in got
