"""This process's tracing and setup: :class:`Telemetry` (tracer provider, redacted OTLP
export, Temporal interceptor, httpx and FastAPI instrumentation) and :func:`setup`."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from temporalio.contrib.opentelemetry import TracingInterceptor

import momoflow
from momoflow.redaction import Redactor, secret_values
from momoflow.telemetry.business_metrics import TemporalMeterBackend, metrics, worker_runtime
from momoflow.telemetry.provider_calls import (
    _on_http_request,
    _on_http_request_async,
    _on_http_response,
    _on_http_response_async,
)
from momoflow.telemetry.span_redaction import RedactingSpanProcessor

if TYPE_CHECKING:
    from fastapi import FastAPI
    from temporalio.client import Interceptor

    from momoflow.settings import Settings

log = logging.getLogger("momoflow.telemetry")


class Service(StrEnum):
    """The ``service.name`` of each kind of momoflow process."""

    WORKER = "momoflow-worker"
    GATEWAY = "momoflow-gateway"
    CLI = "momoflow-cli"


#: Gateway routes that are never traced (probes and scrapes would drown the traces).
UNTRACED_ROUTES = ("/healthz", "/readyz", "/metrics")


def otlp_traces_endpoint(settings: Settings) -> str | None:
    """Where spans are sent (OTLP/HTTP), or None: ``MOMOFLOW_TELEMETRY__OTLP_ENDPOINT``,
    else ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, else ``OTEL_EXPORTER_OTLP_ENDPOINT``
    (base URLs get ``/v1/traces`` appended, as the OpenTelemetry specification says)."""
    base = settings.telemetry.otlp_endpoint
    if base:
        return f"{base.rstrip('/')}/v1/traces"
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces:
        return traces
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return f"{base.rstrip('/')}/v1/traces" if base else None


class Telemetry:
    """One process's tracing: provider, exporters, Temporal interceptor, instrumentations.

    Processes get theirs from :func:`setup`. Tests build one directly with in-memory
    ``exporters`` (they go through the same redaction) and :meth:`shutdown` it after.
    """

    def __init__(
        self, service: Service, settings: Settings, *, exporters: Sequence[SpanExporter] = ()
    ) -> None:
        self.service = service
        self.redactor = Redactor(secret_values(settings))
        self.tracer_provider = TracerProvider(
            resource=Resource.create(
                {
                    "service.name": service.value,
                    "service.version": momoflow.__version__,
                    "deployment.environment.name": settings.env,
                }
            )
        )
        self.endpoint = otlp_traces_endpoint(settings)
        if self.endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self.tracer_provider.add_span_processor(
                RedactingSpanProcessor(
                    BatchSpanProcessor(OTLPSpanExporter(endpoint=self.endpoint)), self.redactor
                )
            )
        for exporter in exporters:
            self.tracer_provider.add_span_processor(
                RedactingSpanProcessor(SimpleSpanProcessor(exporter), self.redactor)
            )
        self.tracer = self.tracer_provider.get_tracer("momoflow", momoflow.__version__)
        #: Put on Temporal clients; their workers inherit it.
        self.interceptor = TracingInterceptor(
            self.tracer_provider.get_tracer("temporalio.contrib.opentelemetry")
        )
        self._httpx_instrumented = False

    def instrument_httpx(self) -> None:
        """Trace every httpx request made from now on in this process (provider calls get
        the provider and operation, see :func:`provider_call`)."""
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        instrumentor = HTTPXClientInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            return
        instrumentor.instrument(
            tracer_provider=self.tracer_provider,
            request_hook=_on_http_request,
            response_hook=_on_http_response,
            async_request_hook=_on_http_request_async,
            async_response_hook=_on_http_response_async,
        )
        self._httpx_instrumented = True

    def instrument_app(self, app: FastAPI) -> None:
        """Trace the gateway's requests (not probes nor scrapes, see
        :data:`UNTRACED_ROUTES`)."""
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.tracer_provider,
            excluded_urls=",".join(f"{route}$" for route in UNTRACED_ROUTES),
            exclude_spans=["receive", "send"],
        )

    def shutdown(self) -> None:
        """Flush and stop exporting; undo the httpx instrumentation this object did."""
        if self._httpx_instrumented:
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

            HTTPXClientInstrumentor().uninstrument()
            self._httpx_instrumented = False
        self.tracer_provider.shutdown()


_process: Telemetry | None = None


def setup(service: Service, settings: Settings) -> Telemetry:
    """This process's telemetry, set up on the first call (later calls return it).

    Sets the global tracer provider, instruments httpx, and prepares metrics: the worker
    gets a Temporal runtime serving Prometheus (when ``worker_metrics_address`` is set),
    the gateway a ``prometheus_client`` registry. Call it before connecting to Temporal.
    """
    global _process
    if _process is not None:
        return _process
    telemetry = Telemetry(service, settings)
    trace.set_tracer_provider(telemetry.tracer_provider)
    telemetry.instrument_httpx()
    if service is Service.WORKER:
        runtime = worker_runtime(settings)
        if runtime is not None:
            from temporalio.runtime import Runtime

            Runtime.set_default(runtime)
            metrics.bind(TemporalMeterBackend(runtime.metric_meter))
    elif service is Service.GATEWAY:
        metrics.serve_prometheus()
    _process = telemetry
    log.info(
        "telemetry: %s, traces %s",
        service.value,
        f"exported to {telemetry.redactor.url(telemetry.endpoint)}"
        if telemetry.endpoint
        else "not exported (no OTLP endpoint)",
    )
    return telemetry


def current() -> Telemetry | None:
    """The process's telemetry, if :func:`setup` ran."""
    return _process


def with_tracing(interceptors: Sequence[Interceptor]) -> list[Interceptor]:
    """``interceptors`` plus the process's Temporal tracing interceptor (once), if any."""
    chosen = list(interceptors)
    if _process is not None and _process.interceptor not in chosen:
        chosen.append(_process.interceptor)
    return chosen


def shutdown() -> None:
    """Flush the process's spans (call before ``os._exit``, which skips ``atexit``)."""
    if _process is not None:
        try:
            _process.tracer_provider.force_flush(timeout_millis=5000)
        except Exception:  # a dead collector must not block the exit
            log.warning("could not flush the last spans", exc_info=True)
