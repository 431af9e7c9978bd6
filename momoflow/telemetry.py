"""Tracing and metrics, set up once per process (worker, gateway, CLI).

**Tracing.** :func:`setup` installs an OpenTelemetry ``TracerProvider`` named after the
process (:class:`Service`), the Temporal ``TracingInterceptor`` (every client made by
:func:`momoflow.temporal.connect_client` carries it, and workers inherit it from their
client), and the httpx and FastAPI instrumentations. One transaction is one trace: the
gateway request, ``StartWorkflow``, ``RunWorkflow``, each ``StartActivity``/``RunActivity``
and the HTTP calls to the provider below it. A webhook is its own trace; the transaction's
``HandleSignal`` span links to it, and the webhook's span names the workflow it signalled.
Spans are exported over OTLP/HTTP only when an endpoint is configured
(:func:`otlp_traces_endpoint`); every exported span first goes through
:class:`RedactingSpanProcessor`, so no secret, phone number, query string or webhook
token leaves the process whatever an instrumentation recorded.

**Metrics.** :data:`metrics` is the process's business metrics (:class:`Metrics`). The
worker records them on the Temporal SDK runtime's meter, so one Prometheus endpoint
(``MOMOFLOW_TELEMETRY__WORKER_METRICS_ADDRESS``) serves the SDK's metrics and momoflow's;
workflow code uses :func:`workflow_metrics`, Temporal's replay-safe meter, so a replayed
workflow never counts an outcome twice. The gateway records them with ``prometheus_client``
and serves ``GET /metrics`` (:func:`metrics_router`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, Status
from opentelemetry.util.types import Attributes, AttributeValue
from temporalio import workflow
from temporalio.common import MetricMeter, TypedSearchAttributes
from temporalio.contrib.opentelemetry import TracingInterceptor

import momoflow
from momoflow import search_attributes as sa
from momoflow.redaction import REDACTED, Redactor, secret_values

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI
    from prometheus_client import CollectorRegistry
    from temporalio.client import Interceptor
    from temporalio.runtime import Runtime

    from momoflow.providers.errors import ProviderError
    from momoflow.settings import Settings

log = logging.getLogger("momoflow.telemetry")


class Service(StrEnum):
    """The ``service.name`` of each kind of momoflow process."""

    WORKER = "momoflow-worker"
    GATEWAY = "momoflow-gateway"
    CLI = "momoflow-cli"


#: Attribute prefix of everything momoflow adds to spans.
ATTRIBUTE_PREFIX = "momoflow."
#: Gateway routes that are never traced (probes and scrapes would drown the traces).
UNTRACED_ROUTES = ("/healthz", "/readyz", "/metrics")


# =========================================================================== redaction

#: Span attributes that hold a URL or a path: recorded without query string or fragment.
_URL_ATTRIBUTES = frozenset(
    {"http.url", "url.full", "http.target", "url.path", "http.route", "url.template"}
)
#: Span attributes dropped outright (a query string may carry tokens or personal data).
_DROPPED_ATTRIBUTES = frozenset({"url.query"})
#: Captured HTTP header attributes whose value is never kept, whatever the header holds.
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")
_SENSITIVE_HEADER_WORDS = ("auth", "cookie", "key", "token", "secret", "signature", "password")


def _redact_value(key: str, value: AttributeValue, redactor: Redactor) -> AttributeValue:
    if key.startswith(_HEADER_PREFIXES) and any(w in key for w in _SENSITIVE_HEADER_WORDS):
        return REDACTED
    if isinstance(value, str):
        return redactor.url(value) if key in _URL_ATTRIBUTES else redactor.text(value)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        if all(isinstance(item, str) for item in value):
            return [redactor.text(str(item)) for item in value]
    return value


def redact_attributes(attributes: Attributes, redactor: Redactor) -> dict[str, AttributeValue]:
    """A redacted copy of span, event or link attributes."""
    if not attributes:
        return {}
    return {
        key: _redact_value(key, value, redactor)
        for key, value in attributes.items()
        if key not in _DROPPED_ATTRIBUTES
    }


def redact_span(span: ReadableSpan, redactor: Redactor) -> ReadableSpan:
    """A copy of a finished span with its name, attributes, events, links and status
    description redacted."""
    status = span.status
    if status.description:
        status = Status(status.status_code, redactor.text(status.description))
    return ReadableSpan(
        name=redactor.text(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=redact_attributes(span.attributes, redactor),
        events=[
            Event(
                redactor.text(event.name),
                redact_attributes(event.attributes, redactor),
                event.timestamp,
            )
            for event in span.events
        ],
        links=[
            Link(link.context, redact_attributes(link.attributes, redactor)) for link in span.links
        ],
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanProcessor(SpanProcessor):
    """Hands ``inner`` (an exporting processor) a redacted copy of every finished span."""

    def __init__(self, inner: SpanProcessor, redactor: Redactor) -> None:
        self._inner = inner
        self._redactor = redactor

    def on_start(self, span: Any, parent_context: otel_context.Context | None = None) -> None:
        """Nothing to redact yet: the span is still being written."""
        self._inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Redact, then pass on."""
        self._inner.on_end(redact_span(span, self._redactor))

    def shutdown(self) -> None:
        """Shut the inner processor down (flushes its exporter)."""
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the inner processor."""
        return self._inner.force_flush(timeout_millis)


# =========================================================================== spans


def annotate(**attributes: str | int | float | bool | None) -> None:
    """Set ``momoflow.<name>`` attributes on the current span; None values are skipped.

    Only references, providers, amounts and statuses belong here: never a phone number,
    a name or a credential (the redactor would mask them, but they must not be sent)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    for name, value in attributes.items():
        if value is not None:
            span.set_attribute(f"{ATTRIBUTE_PREFIX}{name}", value)


def note_transaction_start(
    *, kind: str, workflow_id: str, search_attributes: TypedSearchAttributes, outcome: str
) -> None:
    """A business request started (``created``), found (``existing``) or was refused
    (``reference_conflict``) a transaction workflow: span attributes and a counter."""
    provider = search_attributes.get(sa.PROVIDER)
    annotate(
        kind=kind,
        workflow_id=workflow_id,
        reference=search_attributes.get(sa.REFERENCE),
        merchant=search_attributes.get(sa.MERCHANT),
        provider=provider,
        country=search_attributes.get(sa.COUNTRY),
        operator=search_attributes.get(sa.OPERATOR),
        amount=search_attributes.get(sa.AMOUNT),
        currency=search_attributes.get(sa.CURRENCY),
        start_outcome=outcome,
    )
    metrics.transaction_started(kind=kind, provider=str(provider or ""), outcome=outcome)


def note_provider_error(error: ProviderError) -> None:
    """A provider call ended in ``error``: its classification on the current span (the
    activity's) and in ``momoflow_provider_errors_total``."""
    annotate(
        error_type=error.type_name,
        http_status_code=error.http_status,
        provider_error_code=error.provider_code,
    )
    metrics.provider_error(
        provider=error.provider,
        operation=error.operation,
        error_type=error.type_name,
        error_code=error.provider_code or "",
        http_status=str(error.http_status or ""),
    )


def note_webhook(
    provider: str,
    outcome: str,
    *,
    reason: str | None = None,
    workflow_id: str | None = None,
    event_type: str | None = None,
    event_status: str | None = None,
) -> None:
    """A webhook was ``accepted`` (signalled to ``workflow_id``), ``kept`` (in its webhook
    inbox, ``workflow_id``, until its transaction can be found), ``ignored``, ``refused``
    (verification failed for ``reason``) or ``not_recorded`` (to be retried)."""
    annotate(
        provider=provider,
        webhook_outcome=outcome,
        webhook_refusal=reason,
        workflow_id=workflow_id,
        event_type=event_type,
        event_status=event_status,
    )
    metrics.webhook(provider=provider, outcome=outcome)
    if outcome == "refused":
        metrics.webhook_verification_failure(provider=provider, reason=reason or "unknown")


# --------------------------------------------------------------------------- provider HTTP


@dataclass
class ProviderCall:
    """One HTTP request to a provider, as :func:`provider_call` tracks it."""

    provider: str
    operation: str
    status_code: int | None = None
    failure: str | None = None

    def failed(self, why: str) -> None:
        """No HTTP answer: ``timeout``, ``connection_error``…"""
        self.failure = why

    @property
    def outcome(self) -> str:
        """The metric label: the HTTP status code, or why there was none."""
        if self.failure:
            return self.failure
        return str(self.status_code) if self.status_code is not None else "unknown"


_provider_call: ContextVar[ProviderCall | None] = ContextVar("momoflow_provider_call", default=None)


@contextmanager
def provider_call(provider: str, operation: str) -> Iterator[ProviderCall]:
    """Wraps one HTTP request to a provider: its client span is named
    ``<METHOD> <provider> <operation>`` and carries both, and its latency and outcome go
    to ``momoflow_provider_request_duration_seconds``."""
    call = ProviderCall(provider, operation)
    token = _provider_call.set(call)
    started = time.perf_counter()
    try:
        yield call
    except BaseException:
        if call.status_code is None and call.failure is None:
            call.failed("error")
        raise
    finally:
        _provider_call.reset(token)
        metrics.provider_request(
            provider=provider,
            operation=operation,
            outcome=call.outcome,
            seconds=time.perf_counter() - started,
        )


def _on_http_request(span: trace.Span, request: Any) -> None:
    call = _provider_call.get()
    if call is None or not span.is_recording():
        return
    method = request.method.decode() if isinstance(request.method, bytes) else str(request.method)
    span.update_name(f"{method} {call.provider} {call.operation}")
    span.set_attribute(f"{ATTRIBUTE_PREFIX}provider", call.provider)
    span.set_attribute(f"{ATTRIBUTE_PREFIX}operation", call.operation)


def _on_http_response(span: trace.Span, request: Any, response: Any) -> None:
    call = _provider_call.get()
    if call is not None:
        call.status_code = int(response.status_code)


async def _on_http_request_async(span: trace.Span, request: Any) -> None:
    _on_http_request(span, request)


async def _on_http_response_async(span: trace.Span, request: Any, response: Any) -> None:
    _on_http_response(span, request, response)


# =========================================================================== setup


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


def instrument_app(app: FastAPI) -> None:
    """Trace ``app`` with the process's telemetry, if :func:`setup` ran."""
    if _process is not None:
        _process.instrument_app(app)


def shutdown() -> None:
    """Flush the process's spans (call before ``os._exit``, which skips ``atexit``)."""
    if _process is not None:
        try:
            _process.tracer_provider.force_flush(timeout_millis=5000)
        except Exception:  # a dead collector must not block the exit
            log.warning("could not flush the last spans", exc_info=True)


# =========================================================================== metrics


@dataclass(frozen=True)
class MetricSpec:
    """One business metric: its Prometheus name (without ``_total``), help, kind, labels."""

    name: str
    help: str
    kind: Literal["counter", "histogram", "gauge"]
    labels: tuple[str, ...]
    #: Integer values (counts, minor units) rather than floats (seconds).
    integer: bool = True
    buckets: tuple[float, ...] = ()


#: Amounts in minor units (XOF and XAF have none: 50000 is 50,000 francs).
AMOUNT_BUCKETS = (
    100.0,
    500.0,
    1_000.0,
    5_000.0,
    10_000.0,
    25_000.0,
    50_000.0,
    100_000.0,
    250_000.0,
    500_000.0,
    1_000_000.0,
    5_000_000.0,
)
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)

TRANSACTIONS_STARTED = MetricSpec(
    "momoflow_transactions_started",
    "Business requests for a transaction, by outcome: created, existing (same reference "
    "and request), reference_conflict (same reference, another request). Gateway.",
    "counter",
    ("kind", "provider", "outcome"),
)
TRANSACTIONS_FINISHED = MetricSpec(
    "momoflow_transactions_finished",
    "Transactions reaching a final or reconciling status (a reconciled one counts again "
    "with its final status). Worker, replay-safe.",
    "counter",
    ("kind", "provider", "status"),
)
TRANSACTION_AMOUNT = MetricSpec(
    "momoflow_transaction_amount",
    "Amounts of transactions reaching a final or reconciling status, in minor units; "
    "_sum is the value by currency and status. Worker, replay-safe.",
    "histogram",
    ("kind", "provider", "currency", "status"),
    buckets=AMOUNT_BUCKETS,
)
PROVIDER_REQUEST_DURATION = MetricSpec(
    "momoflow_provider_request_duration_seconds",
    "HTTP requests to providers: latency by outcome (HTTP status code, timeout, connection_error).",
    "histogram",
    ("provider", "operation", "outcome"),
    integer=False,
    buckets=LATENCY_BUCKETS,
)
PROVIDER_ERRORS = MetricSpec(
    "momoflow_provider_errors",
    "Provider calls that ended in an error, by momoflow's classification (error_type) and "
    "the provider's own code.",
    "counter",
    ("provider", "operation", "error_type", "error_code", "http_status"),
)
WEBHOOKS = MetricSpec(
    "momoflow_webhooks",
    "Provider webhooks received, by outcome: accepted, ignored, refused, not_recorded.",
    "counter",
    ("provider", "outcome"),
)
WEBHOOK_VERIFICATION_FAILURES = MetricSpec(
    "momoflow_webhook_verification_failures",
    "Webhooks refused by verification (bad signature, stale timestamp, bad token, body).",
    "counter",
    ("provider", "reason"),
)
CAMPAIGN_LINES = MetricSpec(
    "momoflow_campaign_lines",
    "Lines of a campaign by status (the campaign's latest counts).",
    "gauge",
    ("campaign_id", "status"),
)

ALL_METRICS: tuple[MetricSpec, ...] = (
    TRANSACTIONS_STARTED,
    TRANSACTIONS_FINISHED,
    TRANSACTION_AMOUNT,
    PROVIDER_REQUEST_DURATION,
    PROVIDER_ERRORS,
    WEBHOOKS,
    WEBHOOK_VERIFICATION_FAILURES,
    CAMPAIGN_LINES,
)

#: Label values are cut to this length (a provider's error code is free text).
MAX_LABEL_LENGTH = 64


class MetricsBackend(Protocol):
    """Where :class:`Metrics` records."""

    def record(self, spec: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        """Add to a counter, observe in a histogram or set a gauge."""


class _NoMetrics:
    def record(self, spec: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        return None


class PrometheusBackend:
    """``prometheus_client`` metrics in a registry of their own (plus the process, platform
    and garbage-collector collectors), for the gateway's ``/metrics``."""

    def __init__(self) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            gc_collector,
            platform_collector,
            process_collector,
        )

        self.registry = CollectorRegistry()
        process_collector.ProcessCollector(registry=self.registry)
        platform_collector.PlatformCollector(registry=self.registry)
        gc_collector.GCCollector(registry=self.registry)
        self._metrics: dict[str, Any] = {}
        for spec in ALL_METRICS:
            if spec.kind == "counter":
                metric: Any = Counter(spec.name, spec.help, spec.labels, registry=self.registry)
            elif spec.kind == "histogram":
                metric = Histogram(
                    spec.name, spec.help, spec.labels, registry=self.registry, buckets=spec.buckets
                )
            else:
                metric = Gauge(spec.name, spec.help, spec.labels, registry=self.registry)
            self._metrics[spec.name] = metric

    def record(self, spec: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        """Record one value."""
        metric = self._metrics[spec.name].labels(**labels)
        if spec.kind == "counter":
            metric.inc(value)
        elif spec.kind == "histogram":
            metric.observe(value)
        else:
            metric.set(value)


class TemporalMeterBackend:
    """Metrics on a Temporal ``MetricMeter``: the worker runtime's (served with the SDK's
    own metrics) or a workflow's replay-safe one."""

    def __init__(self, meter: MetricMeter) -> None:
        self._meter = meter
        self._metrics: dict[str, Any] = {}

    def _metric(self, spec: MetricSpec) -> Any:
        metric = self._metrics.get(spec.name)
        if metric is None:
            meter = self._meter
            if spec.kind == "counter":
                metric = meter.create_counter(spec.name, spec.help)
            elif spec.kind == "histogram":
                create = meter.create_histogram if spec.integer else meter.create_histogram_float
                metric = create(spec.name, spec.help)
            else:
                create_gauge = meter.create_gauge if spec.integer else meter.create_gauge_float
                metric = create_gauge(spec.name, spec.help)
            self._metrics[spec.name] = metric
        return metric

    def record(self, spec: MetricSpec, value: float, labels: Mapping[str, str]) -> None:
        """Record one value."""
        metric = self._metric(spec)
        number = int(value) if spec.integer else float(value)
        if spec.kind == "counter":
            metric.add(number, dict(labels))
        elif spec.kind == "histogram":
            metric.record(number, dict(labels))
        else:
            metric.set(number, dict(labels))


def worker_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime serving Prometheus on ``worker_metrics_address``, or None when
    the address is unset. Counters end in ``_total`` and durations are in seconds, as
    Prometheus expects; momoflow's histograms get their own buckets."""
    address = settings.telemetry.worker_metrics_address
    if not address:
        return None
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    buckets = {spec.name: list(spec.buckets) for spec in ALL_METRICS if spec.buckets}
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=address,
                counters_total_suffix=True,
                durations_as_seconds=True,
                histogram_bucket_overrides=buckets,
            ),
            attach_service_name=False,
        )
    )


class Metrics:
    """momoflow's business metrics (names and labels: :data:`ALL_METRICS`).

    Recording never raises: a metrics problem must not fail a payment or a workflow task.
    """

    def __init__(self, backend: MetricsBackend | None = None) -> None:
        self._backend: MetricsBackend = backend or _NoMetrics()

    def bind(self, backend: MetricsBackend) -> None:
        """Record on ``backend`` from now on."""
        self._backend = backend

    def serve_prometheus(self) -> CollectorRegistry:
        """Record with ``prometheus_client`` (if not already) and return the registry to
        expose."""
        if not isinstance(self._backend, PrometheusBackend):
            self._backend = PrometheusBackend()
        return self._backend.registry

    def _record(self, spec: MetricSpec, value: float, **labels: str) -> None:
        try:
            self._backend.record(
                spec, value, {k: str(v)[:MAX_LABEL_LENGTH] for k, v in labels.items()}
            )
        except Exception:
            log.warning("could not record metric %s", spec.name, exc_info=True)

    def transaction_started(self, *, kind: str, provider: str, outcome: str) -> None:
        """A business request for a transaction (gateway)."""
        self._record(TRANSACTIONS_STARTED, 1, kind=kind, provider=provider, outcome=outcome)

    def transaction_finished(
        self, *, kind: str, provider: str, status: str, amount: int, currency: str
    ) -> None:
        """A transaction reached a final or reconciling status (from workflow code, on
        :func:`workflow_metrics`)."""
        self._record(TRANSACTIONS_FINISHED, 1, kind=kind, provider=provider, status=status)
        self._record(
            TRANSACTION_AMOUNT,
            amount,
            kind=kind,
            provider=provider,
            currency=currency,
            status=status,
        )

    def provider_request(
        self, *, provider: str, operation: str, outcome: str, seconds: float
    ) -> None:
        """One HTTP request to a provider."""
        self._record(
            PROVIDER_REQUEST_DURATION,
            seconds,
            provider=provider,
            operation=operation,
            outcome=outcome,
        )

    def provider_error(
        self, *, provider: str, operation: str, error_type: str, error_code: str, http_status: str
    ) -> None:
        """A provider call that ended in an error."""
        self._record(
            PROVIDER_ERRORS,
            1,
            provider=provider,
            operation=operation,
            error_type=error_type,
            error_code=error_code,
            http_status=http_status,
        )

    def webhook(self, *, provider: str, outcome: str) -> None:
        """A webhook received by the gateway."""
        self._record(WEBHOOKS, 1, provider=provider, outcome=outcome)

    def webhook_verification_failure(self, *, provider: str, reason: str) -> None:
        """A webhook refused by verification."""
        self._record(WEBHOOK_VERIFICATION_FAILURES, 1, provider=provider, reason=reason)

    def campaign_lines(self, campaign_id: str, counts: Mapping[str, int]) -> None:
        """A campaign's line counts by status (``{"paid": 120, "failed": 3, ...}``); call it
        with the complete counts each time they change. From workflow code use
        :func:`workflow_metrics` so a replay sets nothing."""
        for status, count in counts.items():
            self._record(CAMPAIGN_LINES, count, campaign_id=campaign_id, status=status)


#: The process's business metrics (see the module docstring for where they go).
metrics = Metrics()


def workflow_metrics() -> Metrics:
    """Business metrics for workflow code, on the workflow's replay-safe Temporal meter
    (labelled with namespace, task queue and workflow type). Only inside a workflow."""
    return Metrics(TemporalMeterBackend(workflow.metric_meter()))


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
