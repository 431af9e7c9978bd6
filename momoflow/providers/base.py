"""The contract every provider adapter fulfils."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from momoflow.models import (
    InitiatePayinInput,
    InitiatePayoutInput,
    ListTransactionsInput,
    PayinCreated,
    PayoutQuote,
    PayoutQuoteInput,
    ProviderAvailability,
    ProviderBalance,
    ProviderEvent,
    ProviderName,
    ProviderTransaction,
    RefundInput,
    SharedLookup,
    SharedReadOutcome,
    StatusLookup,
    TransactionListPage,
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

    async def initiate_payin(self, request: InitiatePayinInput) -> PayinCreated:
        """Ask the customer to pay; safe to re-send with the same idempotency key."""
        ...

    async def payin_status(self, lookup: StatusLookup) -> ProviderTransaction:
        """Read a payin's current status at the provider."""
        ...

    async def refund_payin(self, request: RefundInput) -> ProviderTransaction:
        """Refund a successful payin, or raise UnsupportedOperation."""
        ...

    async def list_transactions(self, request: ListTransactionsInput) -> TransactionListPage:
        """One page of the provider's transaction list (the reconciliation report), or raise
        UnsupportedOperation where the provider has none (``lists_transactions``)."""
        ...

    async def balances(self) -> list[ProviderBalance]:
        """Our balances at the provider."""
        ...

    async def availability(self) -> ProviderAvailability:
        """Whether the provider answers, and which operators it offers now."""
        ...

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """Verify and normalise a webhook delivery, or raise WebhookVerificationError.

        ``headers`` may carry ``x-momoflow-webhook-token``: the secret path token of
        providers that sign nothing (MOBILE-PAY), set by the gateway from the URL.
        """
        ...


@runtime_checkable
class SharedStatusReader(Protocol):
    """A provider whose status reads are list reads (MOBILE-PAY, providers.md 3.3): one
    read of its transaction list answers many transactions at once, so momoflow batches
    them (:mod:`momoflow.status_reads`) to keep a request budget."""

    async def read_statuses(self, lookups: Sequence[SharedLookup]) -> SharedReadOutcome:
        """Read the list once, newest first, for every lookup; never raises a provider
        error (it ends the read early and says why in ``error``)."""
        ...
