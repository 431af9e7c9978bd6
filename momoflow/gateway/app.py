"""The FastAPI application: ``create_app(settings)``; run with ``momoflow gateway``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from temporalio.client import Client

import momoflow
from momoflow import telemetry
from momoflow.codec_sessions import SessionRevocations
from momoflow.console.app import install_console
from momoflow.gateway import campaigns, codec, listing, payins, payouts, refunds, webhooks
from momoflow.gateway.deps import ApiKeyGate, TemporalConnection
from momoflow.gateway.errors import install_error_handlers
from momoflow.gateway.limits import MerchantLimiter
from momoflow.gateway.request_ids import RequestIds
from momoflow.providers.registry import open_providers
from momoflow.records.store import RecordStore
from momoflow.settings import Settings

DESCRIPTION = """
Durable payouts and payins over West African mobile-money aggregators (CaurisFlux,
NovaSend, MOBILE-PAY).

Authenticate with `Authorization: Bearer <your API key>`. Amounts are **integers in the
currency's minor unit** (XOF and XAF have none: `50000` is 50,000 francs). Every payout is
identified by *your* `reference`: sending the same request again returns the same payout,
and nothing is ever paid twice.
"""


def create_app(
    settings: Settings, *, client: Client | None = None, store: RecordStore | None = None
) -> FastAPI:
    """The gateway app. ``client`` injects a Temporal client (tests); otherwise one is
    connected on first use. ``store`` injects the record store; otherwise it is opened on
    ``settings.database.url`` (without one, every transaction route answers 503)."""
    records = store
    if records is None and settings.database.url is not None:
        records = RecordStore.from_settings(settings.database)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_providers(settings) as providers:
            app.state.providers = providers
            try:
                yield
            finally:
                if store is None and records is not None:
                    await records.close()

    app = FastAPI(
        title="momoflow",
        version=momoflow.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.temporal = TemporalConnection(settings, client)
    app.state.records = records
    app.state.codec_sessions = SessionRevocations(
        app.state.temporal.get, prefix=settings.task_queue_prefix
    )
    app.state.merchant_limits = MerchantLimiter(
        settings.limits, app.state.temporal.get, prefix=settings.task_queue_prefix
    )
    install_error_handlers(app)
    app.add_middleware(ApiKeyGate)
    # Added last, so outermost: the 401s and 429s of the gate carry an id too.
    app.add_middleware(RequestIds)
    telemetry.instrument_app(app)
    if settings.serves_gateway_metrics():
        app.include_router(telemetry.metrics_router())
    app.include_router(listing.router)
    app.include_router(payouts.router)
    app.include_router(payins.router)
    app.include_router(refunds.router)
    app.include_router(campaigns.router)
    app.include_router(webhooks.router)
    app.include_router(codec.router)
    install_console(app)

    @app.get("/healthz", tags=["health"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz", tags=["health"], summary="Readiness: Temporal and the record store reachable"
    )
    async def readyz(request: Request) -> JSONResponse:
        connection: TemporalConnection = request.app.state.temporal
        answer = {"temporal": "reachable", "records": "reachable"}
        try:
            temporal = await connection.get()
            await temporal.service_client.check_health()
        except Exception:
            answer["temporal"] = "unreachable"
        store: RecordStore | None = request.app.state.records
        if store is None:
            answer["records"] = "not configured"
        else:
            try:
                await store.ping()
            except Exception:
                answer["records"] = "unreachable"
        ok = all(value == "reachable" for value in answer.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", **answer}, 200 if ok else 503)

    return app
