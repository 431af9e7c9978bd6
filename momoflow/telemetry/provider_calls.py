"""Provider HTTP calls: :func:`provider_call` names each one's client span and times it,
through the httpx instrumentation's request and response hooks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from momoflow.telemetry.business_metrics import metrics
from momoflow.telemetry.spans import ATTRIBUTE_PREFIX


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
