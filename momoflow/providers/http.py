"""Small HTTP helpers shared by the provider clients (no retries: Temporal owns them)."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from momoflow.providers.errors import ProviderProtocolError, ProviderUnavailable
from momoflow.telemetry import provider_call


@contextmanager
def map_httpx_errors(provider: str, operation: str) -> Iterator[None]:
    """Turn httpx transport failures into :class:`ProviderUnavailable` (outcome unknown).

    Wrap exactly one HTTP request: its span and latency metric are labelled with
    ``provider`` and ``operation`` (:func:`momoflow.telemetry.provider_call`)."""
    with provider_call(provider, operation) as call:
        try:
            yield
        except httpx.TimeoutException as exc:
            call.failed("timeout")
            raise ProviderUnavailable(
                f"no answer in time ({type(exc).__name__})", provider=provider, operation=operation
            ) from exc
        except httpx.TransportError as exc:
            call.failed("connection_error")
            raise ProviderUnavailable(
                f"connection failed ({type(exc).__name__})", provider=provider, operation=operation
            ) from exc


def json_body(body: bytes, *, provider: str, operation: str, http_status: int) -> Any:
    """Decode a JSON body, or raise :class:`ProviderProtocolError`."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProviderProtocolError(
            f"answer is not JSON ({len(body)} bytes)",
            provider=provider,
            operation=operation,
            http_status=http_status,
        ) from exc


def retry_after_seconds(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta or HTTP date) or ``X-RateLimit-Reset``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            return max(0.0, parsed.timestamp() - now)
    reset = lowered.get("x-ratelimit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            return None
    return None
