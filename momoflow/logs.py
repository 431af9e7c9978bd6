"""Log lines that carry trace ids and never carry secrets or phone numbers.

:func:`install` (called by :func:`momoflow.settings.configure_logging`) puts one formatter
on the root logger's handlers: readable text (``MOMOFLOW_LOG_FORMAT=text``, the default) or
one JSON object per line (``json``). Both add the current OpenTelemetry ``trace_id`` and
``span_id``, so a log line leads to its transaction's trace, and both pass the whole
output, traceback included, through a :class:`~momoflow.redaction.Redactor`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry import trace

from momoflow.redaction import Redactor

#: ``extra`` dictionaries that Temporal's workflow and activity loggers attach: ids and
#: types only (workflow id, run id, activity type, attempt, task queue).
_TEMPORAL_EXTRAS = ("temporal_workflow", "temporal_activity")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def trace_ids() -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of the current span in hex, or None outside any trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class TraceContextFilter(logging.Filter):
    """Sets ``record.trace_id`` and ``record.span_id`` ("" outside a trace)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record; never drops it."""
        ids = trace_ids()
        record.trace_id, record.span_id = ids if ids else ("", "")
        return True


class RedactingTextFormatter(logging.Formatter):
    """The classic one-line format plus `` trace_id=…`` inside a trace, redacted."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__(TEXT_FORMAT)
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """Format, append the trace id, redact the whole line."""
        line = super().format(record)
        trace_id = getattr(record, "trace_id", "")
        if trace_id:
            first, newline, rest = line.partition("\n")
            line = f"{first} trace_id={trace_id}{newline}{rest}"
        return self._redactor.text(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, ``trace_id``,
    ``span_id``, Temporal's ids when present, ``exception`` when there is one; redacted."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """Serialise ``record`` (redacted)."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        trace_id = getattr(record, "trace_id", "")
        if trace_id:
            entry["trace_id"] = trace_id
            entry["span_id"] = getattr(record, "span_id", "")
        for extra in _TEMPORAL_EXTRAS:
            value = getattr(record, extra, None)
            if isinstance(value, dict):
                entry[extra] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return self._redactor.text(json.dumps(entry, default=str, ensure_ascii=False))


def formatter(fmt: Literal["text", "json"], redactor: Redactor) -> logging.Formatter:
    """The formatter for ``MOMOFLOW_LOG_FORMAT``."""
    if fmt == "json":
        return JsonFormatter(redactor)
    return RedactingTextFormatter(redactor)


def install(fmt: Literal["text", "json"], redactor: Redactor) -> None:
    """Give every handler of the root logger the chosen formatter and the trace filter."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter(fmt, redactor))
        if not any(isinstance(f, TraceContextFilter) for f in handler.filters):
            handler.addFilter(TraceContextFilter())
