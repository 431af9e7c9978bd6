"""Tracing, metrics and logs, end to end on the real stack.

A gateway (uvicorn on a free port) and a worker run in this process against the session's
Temporal server and sandboxes, on their own task queue prefix, each with its own tracer
provider exporting to one in-memory exporter through momoflow's redaction. The trace of a
payout and of a payin is checked span by span, and every exported span is searched for the
phone number, the name, the API keys and the provider secrets. A worker subprocess serves
Prometheus metrics; the gateway serves ``/metrics``. JSON logs are checked in a subprocess.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from momoflow import logs, telemetry
from momoflow.business_requests import PayoutRequest
from momoflow.gateway.app import create_app
from momoflow.ids import payin_workflow_id, payout_workflow_id
from momoflow.logs import TraceContextFilter
from momoflow.operations import start_payout
from momoflow.processes import ManagedProcess, free_port, http_ready
from momoflow.records.store import RecordStore
from momoflow.redaction import Redactor, mask_phones_in, secret_values
from momoflow.sandbox.shared.serving import ThreadedServer
from momoflow.settings import DEV_API_KEY, Settings
from momoflow.telemetry import Service, Telemetry
from momoflow.temporal import connect_client
from tests.stack import (
    ACME_KEY,
    GLOBEX_KEY,
    MOBILEPAY_WEBHOOK_TOKEN,
    Stack,
    wait_until,
)
from worker import run_worker

#: Task queues of this module's in-process worker (the session worker never sees them).
PREFIX = "momoflow-otel"
#: Recipient and customer data that must appear in no span.
PHONE = "+221775550123"
NAME = "Ndeye Sokhna Thiam"
PAYIN_PHONE = "+221775550456"
PAYIN_NAME = "Moussa Kouyate Traore"
#: A webhook token nobody configured (an attacker's guess): not recorded either.
GUESSED_TOKEN = "guessed_token_0123456789abcdef"
FINAL = {"succeeded", "failed", "declined", "expired", "reconciling"}


def settings_for(stack: Stack, **env: str) -> Settings:
    """Settings as a process started with the stack's environment (plus ``env``) reads."""
    variables = {**stack.env, **env}
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("MOMOFLOW_")]:
            patch.delenv(key)
        for key, value in variables.items():
            patch.setenv(key, value)
        return Settings(_env_file=None)  # type: ignore[call-arg]


@dataclass
class Traced:
    """The in-process gateway and worker, and what they exported."""

    url: str
    settings: Settings
    spans: InMemorySpanExporter

    @contextmanager
    def _untraced(self) -> Iterator[None]:
        # This test's own requests are the "business service": not part of the traces.
        with suppress_http_instrumentation():
            yield

    async def request(
        self, method: str, path: str, *, key: str | None = ACME_KEY, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        headers.update(kwargs.pop("headers", {}))
        with self._untraced():
            async with httpx.AsyncClient(base_url=self.url, timeout=15) as http:
                return await http.request(method, path, headers=headers, **kwargs)

    async def wait_for(self, path: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            answer = await self.request("GET", path)
            last = answer.json() if answer.status_code == 200 else answer.text
            if answer.status_code == 200 and last["status"] in statuses:
                state: dict[str, Any] = last
                return state
            await asyncio.sleep(0.2)
        raise AssertionError(f"{path} not in {sorted(statuses)} after {timeout}s: {last!r}")

    async def spans_until(
        self, check: Callable[[list[ReadableSpan]], bool], *, timeout: float = 30, what: str
    ) -> list[ReadableSpan]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            spans = list(self.spans.get_finished_spans())
            if check(spans):
                return spans
            await asyncio.sleep(0.1)
        names = sorted({s.name for s in self.spans.get_finished_spans()})
        raise AssertionError(f"timed out waiting for {what}; spans: {names}")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def traced(stack: Stack) -> AsyncIterator[Traced]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # CaurisFlux sends each transaction's webhooks to its callback URL: this gateway.
    settings = settings_for(
        stack,
        MOMOFLOW_TASK_QUEUE_PREFIX=PREFIX,
        MOMOFLOW_PUBLIC_URL=url,
        MOMOFLOW_GATEWAY_PORT=str(port),
        # Only the in-memory exporter, whatever the session's processes export to.
        MOMOFLOW_TELEMETRY__OTLP_ENDPOINT="",
    )
    spans = InMemorySpanExporter()
    worker_telemetry = Telemetry(Service.WORKER, settings, exporters=[spans])
    gateway_telemetry = Telemetry(Service.GATEWAY, settings, exporters=[spans])
    worker_telemetry.instrument_httpx()
    stop = asyncio.Event()
    server: uvicorn.Server | None = None
    tasks: list[asyncio.Task[None]] = []
    try:
        worker_client = await connect_client(
            settings.temporal, interceptors=[worker_telemetry.interceptor], codec=settings.codec
        )
        gateway_client = await connect_client(
            settings.temporal, interceptors=[gateway_telemetry.interceptor], codec=settings.codec
        )
        app = create_app(settings, client=gateway_client)
        gateway_telemetry.instrument_app(app)
        tasks.append(asyncio.create_task(run_worker(settings, stop=stop, client=worker_client)))
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        tasks.append(asyncio.create_task(server.serve()))
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "in-process gateway did not start"
            assert not any(t.done() for t in tasks), [t.exception() for t in tasks if t.done()]
            await asyncio.sleep(0.05)
        yield Traced(url=url, settings=settings, spans=spans)
    finally:
        if server is not None:
            server.should_exit = True
        stop.set()
        for task in tasks:
            await asyncio.wait_for(task, timeout=30)
        worker_telemetry.shutdown()
        gateway_telemetry.shutdown()


# ------------------------------------------------------------------------------ span helpers


def by_id(spans: Iterable[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in spans if s.context is not None}


def parent_of(span: ReadableSpan, index: dict[int, ReadableSpan]) -> ReadableSpan | None:
    return index.get(span.parent.span_id) if span.parent is not None else None


def ancestors(span: ReadableSpan, index: dict[int, ReadableSpan]) -> list[str]:
    names = []
    current = parent_of(span, index)
    while current is not None:
        names.append(current.name)
        current = parent_of(current, index)
    return names


def trace_of(spans: Iterable[ReadableSpan], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


def one(spans: Iterable[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert found, f"no span {name!r} in {sorted({s.name for s in spans})}"
    return found[0]


def service_of(span: ReadableSpan) -> str:
    return str(span.resource.attributes.get("service.name"))


def http_status(span: ReadableSpan) -> int | None:
    attributes = span.attributes or {}
    value = attributes.get("http.status_code", attributes.get("http.response.status_code"))
    return int(str(value)) if value is not None else None


def gateway_request(spans: list[ReadableSpan], name: str, workflow_id: str) -> ReadableSpan:
    """The gateway's server span ``name`` that started or signalled ``workflow_id``."""
    for span in spans:
        attributes = span.attributes or {}
        if span.name == name and attributes.get("momoflow.workflow_id") == workflow_id:
            return span
    raise AssertionError(f"no {name!r} span for {workflow_id}")


def texts_of(span: ReadableSpan) -> Iterator[str]:
    """Every string an exported span carries: name, status, attributes, events, links,
    resource."""
    yield span.name
    if span.status.description:
        yield span.status.description
    groups = [span.attributes, span.resource.attributes]
    groups += [event.attributes for event in span.events]
    groups += [link.attributes for link in span.links]
    yield from (event.name for event in span.events)
    for attributes in groups:
        for key, value in (attributes or {}).items():
            yield key
            items = value if isinstance(value, list | tuple) else [value]
            yield from (str(item) for item in items)


def forbidden_strings(traced: Traced, *, phones: Iterable[str], names: Iterable[str]) -> set[str]:
    values = set(secret_values(traced.settings))
    values |= {ACME_KEY, GLOBEX_KEY, DEV_API_KEY, MOBILEPAY_WEBHOOK_TOKEN, GUESSED_TOKEN}
    for phone in phones:
        values |= {phone, phone.lstrip("+"), phone[4:]}  # E.164, bare, national
    for name in names:
        values |= {name, *name.split()}
    return {v for v in values if len(v) >= 5}


def assert_nothing_private(
    spans: list[ReadableSpan], forbidden: set[str], *, what: str = "span"
) -> None:
    assert spans
    leaks = [
        (span.name, secret)
        for span in spans
        for text in texts_of(span)
        for secret in forbidden
        if secret.lower() in text.lower()
    ]
    assert not leaks, f"private data in a {what}: {leaks[:5]}"


# ------------------------------------------------------------------------------ traces


def payout_body(reference: str) -> dict[str, Any]:
    return {
        "reference": reference,
        "provider": "caurisflux",
        "country": "SN",
        "operator": "wave",
        "recipient": {"phone": PHONE, "name": NAME},
        "amount": 50_000,
        "currency": "XOF",
        "description": "traced payout",
    }


async def test_payout_is_one_trace_from_gateway_request_to_provider_calls_and_webhook(
    traced: Traced, reference: str
) -> None:
    workflow_id = payout_workflow_id("acme", reference)
    created = await traced.request("POST", "/v1/payouts", json=payout_body(reference))
    assert created.status_code == 201, created.text
    final = await traced.wait_for(f"/v1/payouts/{reference}", FINAL)
    assert final["status"] == "succeeded", final["timeline"]
    assert final["webhooks_received"] >= 1

    def complete(spans: list[ReadableSpan]) -> bool:
        mine = [s for s in spans if (s.attributes or {}).get("temporalWorkflowID") == workflow_id]
        return any(s.name == "CompleteWorkflow:PayoutWorkflow" for s in mine)

    spans = await traced.spans_until(complete, what="the payout's CompleteWorkflow span")
    request = gateway_request(spans, "POST /v1/payouts", workflow_id)
    assert request.kind is SpanKind.SERVER and request.parent is None
    assert service_of(request) == "momoflow-gateway"
    assert http_status(request) == 201
    attributes = request.attributes or {}
    assert attributes["momoflow.provider"] == "caurisflux"
    assert attributes["momoflow.amount"] == 50_000
    assert attributes["momoflow.currency"] == "XOF"
    assert attributes["momoflow.reference"] == reference
    assert attributes["momoflow.start_outcome"] == "created"

    assert request.context is not None
    tree = trace_of(spans, request.context.trace_id)
    index = by_id(tree)
    start = one(tree, "StartWorkflow:PayoutWorkflow")
    assert parent_of(start, index) is request
    run = one(tree, "RunWorkflow:PayoutWorkflow")
    assert parent_of(run, index) is start and service_of(run) == "momoflow-worker"
    one(tree, "CompleteWorkflow:PayoutWorkflow")

    for operation in ("quote_payout", "initiate_payout"):
        activity = one(tree, f"RunActivity:{operation}")
        assert ancestors(activity, index)[:2] == [f"StartActivity:{operation}", start.name]
        assert ancestors(activity, index)[-1] == "POST /v1/payouts"
        activity_attributes = activity.attributes or {}
        assert activity_attributes["momoflow.provider"] == "caurisflux"
        assert activity_attributes["momoflow.operation"] == operation
        assert activity_attributes["momoflow.amount"] == 50_000
        call = one(tree, f"POST caurisflux {operation}")
        assert parent_of(call, index) is activity
        assert call.kind is SpanKind.CLIENT
        assert (call.attributes or {})["momoflow.operation"] == operation
        assert http_status(call) in (200, 201)
    initiate = one(tree, "RunActivity:initiate_payout").attributes or {}
    assert initiate["momoflow.reference"] == workflow_id
    assert initiate["momoflow.provider_status"] in ("pending", "processing", "succeeded")
    assert initiate["momoflow.provider_transaction_id"]

    # Webhooks (pending, then the one that completed it): each its own trace, linked from
    # the transaction's HandleSignal spans.
    handled = [s for s in tree if s.name == "HandleSignal:provider_event"]
    assert handled, sorted({s.name for s in tree})
    everything = by_id(spans)
    signals = [everything[link.context.span_id] for s in handled for link in s.links]
    assert signals and all(s.name == "SignalWorkflow:provider_event" for s in signals)
    webhooks = [parent_of(signal, everything) for signal in signals]
    for webhook in webhooks:
        assert webhook is not None and webhook.name == "POST /webhooks/{provider}"
        assert webhook.parent is None and service_of(webhook) == "momoflow-gateway"
        assert webhook.context is not None
        assert webhook.context.trace_id != request.context.trace_id
        webhook_attributes = webhook.attributes or {}
        assert webhook_attributes["momoflow.workflow_id"] == workflow_id
        assert webhook_attributes["momoflow.webhook_outcome"] == "accepted"
    assert any(
        (w.attributes or {}).get("momoflow.event_status") == "succeeded"
        for w in webhooks
        if w is not None
    )

    assert_nothing_private(spans, forbidden_strings(traced, phones=[PHONE], names=[NAME]))


async def test_payin_is_one_trace_from_gateway_request_to_provider_calls(
    traced: Traced, reference: str
) -> None:
    workflow_id = payin_workflow_id("acme", reference)
    body = {
        "reference": reference,
        "provider": "caurisflux",
        "mode": "checkout",
        "country": "SN",
        "customer": {"phone": PAYIN_PHONE, "name": PAYIN_NAME},
        "amount": 15_000,
        "currency": "XOF",
        "return_url": "https://shop.example/paid",
    }
    created = await traced.request("POST", "/v1/payins", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["payment_url"]
    final = await traced.wait_for(f"/v1/payins/{reference}", FINAL)
    assert final["status"] == "succeeded", final["timeline"]

    def complete(spans: list[ReadableSpan]) -> bool:
        return any(
            s.name == "CompleteWorkflow:PayinWorkflow"
            and (s.attributes or {}).get("temporalWorkflowID") == workflow_id
            for s in spans
        )

    spans = await traced.spans_until(complete, what="the payin's CompleteWorkflow span")
    request = gateway_request(spans, "POST /v1/payins", workflow_id)
    assert request.parent is None and http_status(request) == 201
    assert (request.attributes or {})["momoflow.amount"] == 15_000
    assert request.context is not None
    tree = trace_of(spans, request.context.trace_id)
    index = by_id(tree)
    start = one(tree, "StartWorkflow:PayinWorkflow")
    assert parent_of(start, index) is request
    # The gateway waits for the payment link through an update, in the same trace.
    update = one(tree, "StartWorkflowUpdate:created")
    assert parent_of(update, index) is request
    assert parent_of(one(tree, "RunWorkflow:PayinWorkflow"), index) is start
    activity = one(tree, "RunActivity:initiate_payin")
    assert ancestors(activity, index)[-1] == "POST /v1/payins"
    assert (activity.attributes or {})["momoflow.mode"] == "checkout"
    call = one(tree, "POST caurisflux initiate_payin")
    assert parent_of(call, index) is activity and http_status(call) in (200, 201)
    assert any(s.name == "HandleSignal:provider_event" for s in tree)

    assert_nothing_private(
        spans, forbidden_strings(traced, phones=[PHONE, PAYIN_PHONE], names=[NAME, PAYIN_NAME])
    )


async def test_mobilepay_webhook_token_and_query_strings_are_not_recorded(traced: Traced) -> None:
    traced.spans.clear()
    for token in (MOBILEPAY_WEBHOOK_TOKEN, GUESSED_TOKEN):
        answer = await traced.request(
            "POST",
            f"/webhooks/mobilepay/{token}?secret={token}",
            key=None,
            content=b'{"transaction_id": "MP-UNKNOWN-1", "status": "SUCCESS"}',
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code in (200, 400, 401, 503), answer.text
    # A refused signed webhook: its span is kept, without anything from the request.
    answer = await traced.request(
        "POST",
        "/webhooks/caurisflux",
        key=None,
        content=b"{}",
        headers={"X-Webhook-Signature": "sha256=00", "X-Webhook-Timestamp": "1"},
    )
    assert answer.status_code in (400, 401)

    spans = await traced.spans_until(
        lambda spans: sum(s.name.startswith("POST /webhooks") for s in spans) >= 3,
        what="three webhook request spans",
    )
    webhook_spans = [s for s in spans if s.name.startswith("POST /webhooks/")]
    assert {s.name for s in webhook_spans} >= {"POST /webhooks/{provider}/{token}"}
    targets = [
        str(value)
        for s in webhook_spans
        for key, value in (s.attributes or {}).items()
        if key in ("http.target", "url.path", "http.url", "url.full")
    ]
    assert targets and all("?" not in t for t in targets), targets
    assert any("/webhooks/mobilepay/[REDACTED]" in t for t in targets), targets
    assert_nothing_private(spans, forbidden_strings(traced, phones=[], names=[]))


async def test_redaction_catches_what_an_instrumentation_would_leak(traced: Traced) -> None:
    """The redacting processor is the last line: feed it a span full of private data."""
    exporter = InMemorySpanExporter()
    local = Telemetry(Service.CLI, traced.settings, exporters=[exporter])
    try:
        with local.tracer.start_as_current_span(f"pay {PHONE}") as span:
            span.set_attribute("http.url", f"https://api.example/pay?to={PHONE}&k=1")
            span.set_attribute("http.request.header.authorization", ["Bearer abc"])
            span.set_attribute("url.query", "token=abc")
            span.set_attribute("note", f"declined for 221775550123 (key {ACME_KEY})")
            span.add_event("retry", {"detail": f"secret sk_test_momoflow for {PHONE}"})
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"bad number {PHONE}"))
        [exported] = exporter.get_finished_spans()
    finally:
        local.shutdown()
    assert exported.name == "pay +221*****0123"
    attributes = exported.attributes or {}
    assert attributes["http.url"] == "https://api.example/pay"
    assert attributes["http.request.header.authorization"] == "[REDACTED]"
    assert "url.query" not in attributes
    assert attributes["note"] == "declined for 221*****0123 (key [REDACTED])"
    assert exported.events[0].attributes == {"detail": "secret [REDACTED] for +221*****0123"}
    assert exported.status.description == "bad number +221*****0123"


@dataclass
class OtlpReceiver:
    """A stand-in collector: keeps every OTLP/HTTP export request it gets."""

    url: str = ""
    bodies: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spans(self) -> list[tuple[str, Any]]:
        """(service.name, span) of every span received so far."""
        found = []
        with self.lock:
            bodies = list(self.bodies)
        for body in bodies:
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                service = next(
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                )
                for scope in resource_spans.scope_spans:
                    found += [(service, span) for span in scope.spans]
        return found


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()

    async def receive(request: Request) -> Response:
        body = await request.body()
        with receiver.lock:
            receiver.bodies.append(body)
        return Response(
            ExportTraceServiceResponse().SerializeToString(),
            media_type="application/x-protobuf",
        )

    app = Starlette(routes=[Route("/v1/traces", receive, methods=["POST"])])
    with ThreadedServer(app) as server:
        receiver.url = server.url
        yield receiver


def test_gateway_exports_redacted_spans_over_otlp_http_when_an_endpoint_is_set(
    stack: Stack, otlp_receiver: OtlpReceiver, reference: str, tmp_path: Any
) -> None:
    port = free_port()
    gateway = ManagedProcess(
        "gateway-otlp",
        [sys.executable, "-m", "momoflow.cli", "gateway", "--port", str(port)],
        log_path=tmp_path / "gateway-otlp.log",
        env={
            **stack.env,
            "MOMOFLOW_GATEWAY_PORT": str(port),
            "MOMOFLOW_TELEMETRY__OTLP_ENDPOINT": otlp_receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        },
        ready=http_ready(f"http://127.0.0.1:{port}/healthz"),
    ).start(timeout=60)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15) as http:
            answer = http.post(
                "/v1/payouts",
                json=payout_body(reference),
                headers={"Authorization": f"Bearer {ACME_KEY}"},
            )
            assert answer.status_code == 201, answer.text

        def exported() -> Any:
            for service, span in otlp_receiver.spans():
                attributes = {a.key: a.value for a in span.attributes}
                ref = attributes.get("momoflow.reference")
                if span.name == "POST /v1/payouts" and ref and ref.string_value == reference:
                    return service, span
            return None

        service, span = wait_until(exported, timeout=30, what="the request span at the receiver")
        assert service == "momoflow-gateway"
        names = {s.name for _, s in otlp_receiver.spans() if s.trace_id == span.trace_id}
        assert "StartWorkflow:PayoutWorkflow" in names
        with otlp_receiver.lock:
            raw = b"".join(otlp_receiver.bodies)
        for secret in (PHONE, PHONE.lstrip("+"), NAME, ACME_KEY, "sk_test_momoflow"):
            assert secret.encode() not in raw
    finally:
        gateway.stop()


def test_nothing_is_exported_without_an_endpoint(stack: Stack, traced_settings: Settings) -> None:
    with pytest.MonkeyPatch.context() as patch:
        for variable in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            patch.delenv(variable, raising=False)
        assert telemetry.otlp_traces_endpoint(traced_settings) is None
        unexported = Telemetry(Service.CLI, traced_settings)
        assert unexported.endpoint is None
        unexported.shutdown()
        patch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
        assert telemetry.otlp_traces_endpoint(traced_settings) == "http://collector:4318/v1/traces"
        patch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:4318/v1/traces")
        assert telemetry.otlp_traces_endpoint(traced_settings) == "http://other:4318/v1/traces"
        configured = traced_settings.model_copy(
            update={
                "telemetry": traced_settings.telemetry.model_copy(
                    update={"otlp_endpoint": "http://mine:4318"}
                )
            }
        )
        assert telemetry.otlp_traces_endpoint(configured) == "http://mine:4318/v1/traces"


@pytest.fixture
def traced_settings(stack: Stack) -> Settings:
    return settings_for(stack, MOMOFLOW_TELEMETRY__OTLP_ENDPOINT="")


# ------------------------------------------------------------------------------ metrics


def samples(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def test_gateway_metrics_count_payouts_webhooks_and_provider_calls(
    traced: Traced, reference: str
) -> None:
    before = (await traced.request("GET", "/metrics", key=None)).text
    created = await traced.request("POST", "/v1/payouts", json=payout_body(reference))
    assert created.status_code == 201
    again = await traced.request("POST", "/v1/payouts", json=payout_body(reference))
    assert again.status_code == 200
    await traced.wait_for(f"/v1/payouts/{reference}", {"succeeded"})
    refused = await traced.request(
        "POST",
        "/webhooks/caurisflux",
        key=None,
        content=b"{}",
        headers={"X-Webhook-Signature": "sha256=00", "X-Webhook-Timestamp": str(int(time.time()))},
    )
    assert refused.status_code == 401

    answer = await traced.request("GET", "/metrics", key=None)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    after = answer.text

    def grew(name: str, by: float = 1, **labels: str) -> None:
        delta = samples(after, name, **labels) - samples(before, name, **labels)
        assert delta >= by, f"{name}{labels} grew by {delta}"

    payout = {"kind": "payout", "provider": "caurisflux"}
    grew("momoflow_transactions_started_total", **payout, outcome="created")
    grew("momoflow_transactions_started_total", **payout, outcome="existing")
    grew("momoflow_webhooks_total", provider="caurisflux", outcome="accepted")
    grew("momoflow_webhooks_total", provider="caurisflux", outcome="refused")
    grew("momoflow_webhook_verification_failures_total", provider="caurisflux")
    # The in-process worker records into the same registry here.
    grew(
        "momoflow_provider_request_duration_seconds_count",
        provider="caurisflux",
        operation="initiate_payout",
    )
    assert "process_cpu_seconds_total" in after
    assert "momoflow_campaign_lines" in after


def test_campaign_progress_gauge_holds_each_campaigns_latest_counts() -> None:
    recorded = telemetry.Metrics(telemetry.PrometheusBackend())
    registry = recorded.serve_prometheus()
    recorded.campaign_lines("campaign-acme-PAYROLL-11", {"paid": 3, "failed": 1, "pending": 96})
    recorded.campaign_lines("campaign-acme-PAYROLL-11", {"paid": 99, "failed": 1, "pending": 0})
    text = generate_latest(registry).decode()
    campaign = {"campaign_id": "campaign-acme-PAYROLL-11"}
    assert samples(text, "momoflow_campaign_lines", **campaign, status="paid") == 99
    assert samples(text, "momoflow_campaign_lines", **campaign, status="pending") == 0
    assert samples(text, "momoflow_campaign_lines", **campaign) == 100


async def test_worker_serves_temporal_sdk_and_business_metrics(
    stack: Stack, client: Any, reference: str
) -> None:
    port = free_port()
    prefix = "momoflow-metrics"
    stack.start_worker(
        "worker-metrics",
        prefix=prefix,
        extra_env={
            "MOMOFLOW_TELEMETRY__WORKER_METRICS_ADDRESS": f"127.0.0.1:{port}",
            "MOMOFLOW_LOG_FORMAT": "json",
        },
    )
    try:
        settings = settings_for(stack, MOMOFLOW_TASK_QUEUE_PREFIX=prefix)
        request = PayoutRequest.model_validate(payout_body(reference))
        store = RecordStore.from_settings(settings.database)
        try:
            await start_payout(client, store, "acme", request, settings)
        finally:
            await store.close()
        url = f"http://127.0.0.1:{port}/metrics"

        def finished() -> str | None:
            with suppress_http_instrumentation():
                text = httpx.get(url, timeout=5).text
            labels = {"kind": "payout", "provider": "caurisflux", "status": "succeeded"}
            # The payout is succeeded before its workflow completes (it writes its record
            # first): wait for both.
            done = samples(text, "momoflow_transactions_finished_total", **labels)
            return text if done and samples(text, "temporal_workflow_completed_total") else None

        text = await asyncio.to_thread(
            wait_until, finished, timeout=60, what="a succeeded payout in the worker's metrics"
        )
        # Temporal SDK metrics, with Prometheus conventions.
        assert samples(text, "temporal_workflow_completed_total") >= 1
        assert samples(text, "temporal_activity_execution_latency_count") >= 2
        # momoflow's, on the same endpoint.
        assert (
            samples(
                text,
                "momoflow_provider_request_duration_seconds_count",
                provider="caurisflux",
                operation="initiate_payout",
            )
            >= 1
        )
        assert (
            samples(
                text,
                "momoflow_transaction_amount_sum",
                kind="payout",
                currency="XOF",
                status="succeeded",
            )
            >= 50_000
        )
        log = stack.processes["worker-metrics"].tail(400)
        entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        assert entries and all({"ts", "level", "logger", "message"} <= set(e) for e in entries)
        assert any(e.get("trace_id") and "initiating payout" in e["message"] for e in entries)
        assert PHONE not in log and "+221*****0123" in log
    finally:
        stack.processes.pop("worker-metrics").stop()


# ------------------------------------------------------------------------------ logs


def test_json_logs_carry_trace_ids_mask_phones_and_hide_secrets(stack: Stack) -> None:
    script = (
        "import logging\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from momoflow.settings import configure_logging, get_settings\n"
        "configure_logging(get_settings())\n"
        "tracer = TracerProvider().get_tracer('t')\n"
        "with tracer.start_as_current_span('s') as span:\n"
        "    print(format(span.get_span_context().trace_id, '032x'), flush=True)\n"
        f"    logging.getLogger('momoflow.x').warning('pay %s key %s', {PHONE!r}, "
        "'sk_test_momoflow')\n"
        "    try:\n"
        f"        raise ValueError('bad number 221775550123 token mpwh_momoflow_sandbox_token')\n"
        "    except ValueError:\n"
        "        logging.getLogger('momoflow.x').exception('failed')\n"
        "logging.getLogger('momoflow.x').warning('outside')\n"
    )
    env = {**os.environ, **stack.env, "MOMOFLOW_LOG_FORMAT": "json"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    trace_id = done.stdout.strip()
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["message"] for line in lines] == [
        "pay +221*****0123 key [REDACTED]",
        "failed",
        "outside",
    ]
    assert lines[0]["trace_id"] == lines[1]["trace_id"] == trace_id
    assert len(lines[0]["span_id"]) == 16 and "trace_id" not in lines[2]
    assert lines[0]["level"] == "WARNING" and lines[0]["logger"] == "momoflow.x"
    assert "221*****0123" in lines[1]["exception"]
    for secret in ("sk_test_momoflow", "mpwh_momoflow_sandbox_token", PHONE, "221775550123"):
        assert secret not in done.stderr


def test_text_logs_mask_the_same_way_and_name_the_trace() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("text", Redactor(["sk_live_abcdef"])))
    handler.addFilter(TraceContextFilter())
    logger = logging.getLogger("momoflow.test_text_logs")
    logger.addHandler(handler)
    logger.propagate = False
    tracer = TracerProvider().get_tracer("test")
    try:
        with tracer.start_as_current_span("s") as span:
            logger.warning("to %s with %s", PHONE, "sk_live_abcdef")
            trace_id = format(span.get_span_context().trace_id, "032x")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    first, second = stream.getvalue().splitlines()
    assert first.endswith(
        f"WARNING momoflow.test_text_logs: to +221*****0123 with [REDACTED] trace_id={trace_id}"
    )
    assert second.endswith("WARNING momoflow.test_text_logs: outside")


def test_phone_masking_spares_amounts_timestamps_and_ids() -> None:
    assert mask_phones_in("amount 5000000 at 1732345678 for 2250701231002") == (
        "amount 5000000 at 1732345678 for 225******1002"
    )
    assert mask_phones_in("call +225 07 01 23 10 02 now") == "call +225******1002 now"
    assert mask_phones_in("run 0196b2d4-8c1e, tx CF-20261123-000042") == (
        "run 0196b2d4-8c1e, tx CF-20261123-000042"
    )
    assert mask_phones_in("order 20261123000042 and 2370690001234") == (
        "order 20261123000042 and 237******1234"
    )
