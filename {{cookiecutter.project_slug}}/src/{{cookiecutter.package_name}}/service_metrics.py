"""The prediction service's Prometheus metrics (prometheus_client), served at /metrics.

- `prediction_http_request_duration_seconds{endpoint}`: latency histogram;
- `prediction_http_requests_total{endpoint,status}`: answers by HTTP status;
- `prediction_entities_total{status}`: ids scored (`ok`) or unknown (`unknown_entity`):
  their ratio is the unknown-entity share;
- `prediction_score`: histogram of the scores returned;
- `prediction_model_info{model_name,model_version}`: the version serving now.

Each app has a registry of its own (several apps in one process, as in tests, do not
share counts). Endpoints outside the app's routes count as `other`, so a scan of
random paths cannot grow the label set.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# seconds: the service answers one id in a few milliseconds, a batch of 1,000 in more
LATENCY_BUCKETS = (0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 1, 5)
SCORE_BUCKETS = tuple(i / 10 for i in range(1, 11))


class ServiceMetrics:
    def __init__(self, endpoints: Iterable[str]) -> None:
        self.registry = CollectorRegistry()
        self.endpoints = frozenset(endpoints)
        self.latency = Histogram(
            "prediction_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "prediction_http_requests",
            "HTTP requests answered, by status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.entities = Counter(
            "prediction_entities",
            "Ids asked for: scored (ok) or without online features (unknown_entity)",
            ["status"],
            registry=self.registry,
        )
        self.scores = Histogram(
            "prediction_score", "Scores returned", buckets=SCORE_BUCKETS, registry=self.registry
        )
        self.model = Info("prediction_model", "The model version serving", registry=self.registry)
        self._model_seen: tuple[str, str] | None = None

    def observe_predictions(self, scores: list[float], unknown: int) -> None:
        if scores:
            self.entities.labels("ok").inc(len(scores))
            for score in scores:
                self.scores.observe(score)
        if unknown:
            self.entities.labels("unknown_entity").inc(unknown)

    def serving(self, name: str, version: str) -> None:
        if self._model_seen != (name, version):
            self.model.info({"model_name": name, "model_version": version})
            self._model_seen = (name, version)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class TimedRequests:
    """ASGI middleware: times every HTTP request and counts its status in `metrics`."""

    def __init__(self, app: App, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        endpoint = path if path in self.metrics.endpoints else "other"
        status = "500"  # unless a response starts
        started = time.perf_counter()

        async def recorded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recorded)
        finally:
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
            self.metrics.requests.labels(endpoint, status).inc()
