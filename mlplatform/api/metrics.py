"""Prometheus metrics: request count and latency by route and status.

With several web workers, prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set
by the runner) aggregates every worker's numbers at scrape time.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "mlplatform_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
LATENCY = Histogram(
    "mlplatform_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def route_label(scope) -> str:
    """The matched route template (bounded cardinality), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", "")
    return path or "ui"


def observe(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route, str(status)).observe(seconds)


def render(multiproc_dir: str) -> tuple[bytes, str]:
    if multiproc_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
