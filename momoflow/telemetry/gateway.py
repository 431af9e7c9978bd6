"""The gateway's side of telemetry: tracing its FastAPI app and serving ``GET /metrics``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from momoflow.telemetry.business_metrics import metrics
from momoflow.telemetry.process import current

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI


def instrument_app(app: FastAPI) -> None:
    """Trace ``app`` with the process's telemetry, if :func:`setup` ran."""
    process = current()
    if process is not None:
        process.instrument_app(app)


def metrics_router() -> APIRouter:
    """``GET /metrics``: the gateway's metrics in the Prometheus text format."""
    from fastapi import APIRouter, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    registry = metrics.serve_prometheus()
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
