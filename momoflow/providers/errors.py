"""The error tree every provider adapter raises.

::

    IntegrationError
    ├── ProviderError                    (provider, operation, http_status, provider_code)
    │   ├── ProviderUnavailable          retry; for a write, the outcome is UNKNOWN
    │   │   ├── ProviderRateLimited      retry after ``retry_after`` seconds
    │   │   └── UpstreamError            the provider says it (or its operator) failed
    │   ├── ProviderProtocolError        unparseable answer; for a write, outcome UNKNOWN
    │   ├── ProviderAuthError            401/403: our credentials or IP are refused
    │   ├── ListTruncated                a list has more pages than momoflow reads
    │   ├── ProviderConflict             the provider holds another transaction for this
    │   │   │                            key or reference: outcome UNKNOWN, reconcile
    │   │   ├── IdempotencyConflict
    │   │   └── DuplicateReference
    │   └── ProviderRejected             a final, known "no": nothing was created
    │       ├── InvalidRecipient
    │       ├── InsufficientBalance
    │       ├── InsufficientFunds        (the payer's wallet, not our balance)
    │       ├── InvalidAmount
    │       ├── LimitExceeded
    │       ├── RecipientAccountBlocked
    │       ├── OperatorUnavailable
    │       ├── QuoteExpired             (momoflow re-quotes)
    │       ├── OtpRequired
    │       ├── UnsupportedOperation     (e.g. refunds where the provider has no API)
    │       └── InvalidRequest
    └── WebhookVerificationError         signature, timestamp or body refused

A create call therefore has three outcomes: a returned transaction (accepted),
:class:`ProviderRejected` (rejected), anything else (unknown: re-send with the same
idempotency key, never record "failed"). Messages never contain credentials.
"""

from __future__ import annotations


class IntegrationError(Exception):
    """Base of the errors of a provider integration: a call that gave no usable answer
    (:class:`ProviderError`) and a webhook refused (:class:`WebhookVerificationError`).
    (The Python client's errors have their own root, ``momoflow.client.MomoflowError``.)"""


class ProviderError(IntegrationError):
    """A provider call did not produce a usable answer."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        operation: str,
        http_status: int | None = None,
        provider_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.operation = operation
        self.http_status = http_status
        self.provider_code = provider_code
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [f"{self.provider} {self.operation}"]
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.provider_code:
            parts.append(self.provider_code)
        return f"[{' '.join(parts)}] {self.message}"

    @property
    def type_name(self) -> str:
        """Stable error type, used as the Temporal ``ApplicationError`` type."""
        return type(self).__name__


class ProviderUnavailable(ProviderError):
    """Timeout, connection failure, 5xx: try again later with the same key."""


class ProviderRateLimited(ProviderUnavailable):
    """HTTP 429. ``retry_after`` is the provider's ``Retry-After`` in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class UpstreamError(ProviderUnavailable):
    """The provider answered that it, or the operator behind it, failed (CaurisFlux's
    ``provider_error``). Retried like any unavailability; for a write the outcome is
    UNKNOWN: nothing says the request was not executed."""


class ProviderProtocolError(ProviderError):
    """The provider answered something we cannot read (not JSON, missing fields)."""


class ProviderAuthError(ProviderError):
    """The provider refused our credentials (or our IP): an operator must fix settings."""


class ListTruncated(ProviderError):
    """A paginated list has more pages than the adapter's hard cap: the items read are not
    the whole list, and no caller may take them for it."""

    def __init__(
        self, message: str, *, pages_read: int, total: int | None = None, **kwargs: object
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.pages_read = pages_read
        self.total = total


class ProviderConflict(ProviderError):
    """The provider already holds a transaction for this key or reference, with other
    details. Money may have moved: never retry blindly, never record "failed"."""


class IdempotencyConflict(ProviderConflict):
    """Same idempotency key, different request body."""


class DuplicateReference(ProviderConflict):
    """The provider already has a transaction with this external reference."""


class ProviderRejected(ProviderError):
    """A final decline: the provider understood the request and refused it."""


class InvalidRecipient(ProviderRejected):
    """The recipient number has no usable wallet."""


class InsufficientBalance(ProviderRejected):
    """Our merchant balance at the provider does not cover the payout."""


class InsufficientFunds(ProviderRejected):
    """The payer's wallet does not cover the amount (a payin's customer, not our balance)."""


class InvalidAmount(ProviderRejected):
    """The amount is outside what the provider or operator accepts."""


class LimitExceeded(ProviderRejected):
    """A daily or per-transaction limit was reached."""


class RecipientAccountBlocked(ProviderRejected):
    """The recipient's wallet is blocked."""


class OperatorUnavailable(ProviderRejected):
    """The operator is not available for this country at this provider."""


class QuoteExpired(ProviderRejected):
    """The quote is unknown or expired: ask for a new one."""


class OtpRequired(ProviderRejected):
    """The operator needs the customer's one-time code (Orange Money at NovaSend)."""


class UnsupportedOperation(ProviderRejected):
    """The provider does not offer this operation through its API."""


class InvalidRequest(ProviderRejected):
    """The provider refused the request as malformed."""


class WebhookVerificationError(IntegrationError):
    """A webhook failed verification; it must change nothing."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
