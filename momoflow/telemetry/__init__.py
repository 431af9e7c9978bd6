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

The package's modules, bottom layer first: :mod:`~momoflow.telemetry.span_redaction`,
:mod:`~momoflow.telemetry.business_metrics`, :mod:`~momoflow.telemetry.workflow_meter`,
:mod:`~momoflow.telemetry.spans`, :mod:`~momoflow.telemetry.provider_calls`,
:mod:`~momoflow.telemetry.process` and :mod:`~momoflow.telemetry.gateway`. Import their
names from here (``from momoflow import telemetry``).
"""

from momoflow.telemetry.business_metrics import (
    ALL_METRICS,
    AMOUNT_BUCKETS,
    CAMPAIGN_LINES,
    LATENCY_BUCKETS,
    MAX_LABEL_LENGTH,
    PROVIDER_ERRORS,
    PROVIDER_REQUEST_DURATION,
    TRANSACTION_AMOUNT,
    TRANSACTIONS_FINISHED,
    TRANSACTIONS_STARTED,
    WEBHOOK_VERIFICATION_FAILURES,
    WEBHOOKS,
    Metrics,
    MetricsBackend,
    MetricSpec,
    PrometheusBackend,
    TemporalMeterBackend,
    metrics,
    worker_runtime,
)
from momoflow.telemetry.gateway import instrument_app, metrics_router
from momoflow.telemetry.process import (
    UNTRACED_ROUTES,
    Service,
    Telemetry,
    current,
    otlp_traces_endpoint,
    setup,
    shutdown,
    with_tracing,
)
from momoflow.telemetry.provider_calls import ProviderCall, provider_call
from momoflow.telemetry.span_redaction import (
    RedactingSpanProcessor,
    redact_attributes,
    redact_span,
)
from momoflow.telemetry.spans import (
    ATTRIBUTE_PREFIX,
    annotate,
    note_provider_error,
    note_transaction_start,
    note_webhook,
)
from momoflow.telemetry.workflow_meter import workflow_metrics

__all__ = [
    "ALL_METRICS",
    "AMOUNT_BUCKETS",
    "ATTRIBUTE_PREFIX",
    "CAMPAIGN_LINES",
    "LATENCY_BUCKETS",
    "MAX_LABEL_LENGTH",
    "PROVIDER_ERRORS",
    "PROVIDER_REQUEST_DURATION",
    "TRANSACTIONS_FINISHED",
    "TRANSACTIONS_STARTED",
    "TRANSACTION_AMOUNT",
    "UNTRACED_ROUTES",
    "WEBHOOKS",
    "WEBHOOK_VERIFICATION_FAILURES",
    "MetricSpec",
    "Metrics",
    "MetricsBackend",
    "PrometheusBackend",
    "ProviderCall",
    "RedactingSpanProcessor",
    "Service",
    "Telemetry",
    "TemporalMeterBackend",
    "annotate",
    "current",
    "instrument_app",
    "metrics",
    "metrics_router",
    "note_provider_error",
    "note_transaction_start",
    "note_webhook",
    "otlp_traces_endpoint",
    "provider_call",
    "redact_attributes",
    "redact_span",
    "setup",
    "shutdown",
    "with_tracing",
    "worker_runtime",
    "workflow_metrics",
]
