"""The contract every provider adapter fulfils."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from momoflow.models import (
    InitiatePayoutInput,
    PayoutQuote,
    PayoutQuoteInput,
    ProviderEvent,
    ProviderName,
    ProviderTransaction,
    StatusLookup,
)


@runtime_checkable
class PaymentProvider(Protocol):
    """One aggregator's API, normalised.

    Every method either returns a normalised result or raises a
    :class:`~momoflow.providers.errors.ProviderError` subclass; none of them retries:
    Temporal owns retries so that every attempt is visible in the workflow history.
    """

    name: ProviderName

    async def quote_payout(self, request: PayoutQuoteInput) -> PayoutQuote:
        """Price a payout (fees, net amount) before creating it."""
        ...

    async def initiate_payout(self, request: InitiatePayoutInput) -> ProviderTransaction:
        """Create a payout; safe to re-send with the same idempotency key."""
        ...

    async def payout_status(self, lookup: StatusLookup) -> ProviderTransaction:
        """Read a payout's current status at the provider."""
        ...

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """Verify and normalise a webhook delivery, or raise WebhookVerificationError."""
        ...
