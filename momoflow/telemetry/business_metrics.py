"""momoflow's business metrics: their catalogue (:data:`ALL_METRICS`), the backends they
record on (``prometheus_client``, a Temporal meter) and the process's :data:`metrics`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from temporalio.common import MetricMeter

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from temporalio.runtime import Runtime

    from momoflow.settings import Settings

log = logging.getLogger("momoflow.telemetry")


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


#: The process's business metrics (see the package docstring for where they go).
metrics = Metrics()
