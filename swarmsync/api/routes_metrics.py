"""/metrics: Prometheus' text format, for admins and scrapers (a token with the `metrics:read` scope).

Jobs, workers and archives are read from the databases at each scrape (`swarmsync.metrics.JobMetrics`),
so every API replica answers the same; the API's own request latency is this process's
(`RequestLatency`), labelled by route template, never by raw path (bounded label values).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from swarmsync.api.deps import require
from swarmsync.api.errors import responses
from swarmsync.auth.roles import Permission, Principal
from swarmsync.metrics import JobMetrics

REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(JobMetrics())
REQUEST_SECONDS = Histogram(
    "swarmsync_api_request_duration_seconds", "Time the API took to answer, by route template, method and status "
    "(this API process)", ["route", "method", "status"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
UNMATCHED = "(unmatched)"  # a path no route has (404s, probes): one label value, not one per path

router = APIRouter(tags=["metrics"], responses=responses(401, 403))


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(principal: Principal = Depends(require(Permission.METRICS_READ))) -> Response:
    """Prometheus metrics: jobs by state, pool and project; running and queued jobs; duration and queue-wait
    histograms; workers and their heartbeats; archive bytes; this process's request latency (docs:
    alerts-and-monitoring.md)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class RequestLatency:
    """Times every HTTP request into `swarmsync_api_request_duration_seconds` (route template, method,
    status); the route is known only after routing, so it is read from the scope when the answer starts."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception with no answer sent

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            REQUEST_SECONDS.labels(route, scope["method"], str(status)).observe(time.perf_counter() - started)
