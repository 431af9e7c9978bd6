"""Redaction of finished spans before export: attributes, events, links and status
(:class:`RedactingSpanProcessor` wraps every exporting processor)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.trace import Link, Status
from opentelemetry.util.types import Attributes, AttributeValue

from momoflow.redaction import REDACTED, Redactor

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
