"""Prometheus metrics of ``e2rank serve``, one registry per app (so tests and Ray replicas can build several apps).

Served at ``GET /metrics``: ``e2rank_requests_total{endpoint,status}``, ``e2rank_request_duration_seconds``
(histogram per endpoint), ``e2rank_batch_size{kind}`` (requests per shared model call), ``e2rank_queue_depth``,
``e2rank_rejected_requests_total{reason}``, and, read from the model at scrape time, ``e2rank_cache_hits_total``,
``e2rank_cache_misses_total``, ``e2rank_encoded_texts_total`` (sequences through the forward pass).

Example::

    from prometheus_client import generate_latest

    from e2rank_core.server.metrics import ServerMetrics

    metrics = ServerMetrics(lambda: None)
    metrics.batch_size.labels(kind="rerank").observe(8)
    print(generate_latest(metrics.registry).decode())
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ..model import E2RankModel


class _ModelCollector(Collector):
    """Cache and forward-pass counters read from the live model at each scrape."""

    def __init__(self, get_model: Callable[[], E2RankModel | None]) -> None:
        self._get_model = get_model

    def collect(self) -> Iterator[Any]:
        model = self._get_model()
        loaded = GaugeMetricFamily("e2rank_model_loaded", "1 once the model is loaded")
        loaded.add_metric([], 0.0 if model is None else 1.0)
        yield loaded
        if model is None:
            return
        cache = model.cache
        yield CounterMetricFamily("e2rank_cache_hits", "Embedding cache hits", value=float(cache.hits))
        yield CounterMetricFamily("e2rank_cache_misses", "Embedding cache misses", value=float(cache.misses))
        size = GaugeMetricFamily("e2rank_cache_entries", "Embeddings held in the cache")
        size.add_metric([], float(len(cache)))
        yield size
        encoded = getattr(model, "encoded_texts", None)
        if encoded is not None:
            yield CounterMetricFamily(
                "e2rank_encoded_texts", "Sequences through the model's forward pass", value=float(encoded)
            )


class ServerMetrics:
    """The app's metric objects, all in :attr:`registry`."""

    def __init__(self, get_model: Callable[[], E2RankModel | None]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "e2rank_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "e2rank_request_duration_seconds",
            "HTTP request latency",
            ["endpoint"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "e2rank_batch_size",
            "Requests per shared model call",
            ["kind"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.queue_depth = Gauge("e2rank_queue_depth", "Requests waiting for or in the model", registry=self.registry)
        self.rejected = Counter(
            "e2rank_rejected_requests", "Requests refused before the model", ["reason"], registry=self.registry
        )
        self.registry.register(_ModelCollector(get_model))

    def observe_batch(self, kind: str, size: int) -> None:
        self.batch_size.labels(kind=kind).observe(size)


class MetricsMiddleware:
    """ASGI middleware counting requests and their latency per route template (bounded label values)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
            self.metrics.latency.labels(endpoint=endpoint).observe(time.perf_counter() - start)
