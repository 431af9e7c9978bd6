"""Activities that call the providers' HTTP APIs.

They run on one task queue per provider, so the Temporal server holds each provider to its
plan's rate limit whatever the number of workers. They never retry by themselves: a
:class:`~momoflow.providers.errors.ProviderError` becomes an ``ApplicationError`` whose
type is the error's class name, non-retryable for final declines and conflicts, with the
provider's ``Retry-After`` as the next retry delay when it sent one.

Errors are raised ``from None``: the cause chain (a parser's error quoting the provider's
answer, which may hold a phone number) must never reach the workflow history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from momoflow import telemetry
from momoflow.contract import PROVIDER_NOT_CONFIGURED
from momoflow.masking import mask_phone
from momoflow.models import (
    InitiatePayinInput,
    InitiatePayoutInput,
    PayinCreated,
    PayoutQuote,
    PayoutQuoteInput,
    ProviderAvailability,
    ProviderBalance,
    ProviderName,
    ProviderTransaction,
    RefundInput,
    StatusLookup,
)
from momoflow.providers.base import PaymentProvider
from momoflow.providers.errors import (
    ProviderConflict,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
)


class InitiatePayoutResult(BaseModel):
    """The accepted payout and which activity attempt got the answer."""

    model_config = ConfigDict(extra="forbid")

    transaction: ProviderTransaction
    attempt: int


class InitiatePayinResult(BaseModel):
    """The created payin (payment link, QR, expiry) and which attempt got the answer."""

    model_config = ConfigDict(extra="forbid")

    created: PayinCreated
    attempt: int


class ProviderErrorDetails(BaseModel):
    """What an ``ApplicationError`` from a provider activity carries (no secrets, no PII)."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    operation: str
    http_status: int | None
    provider_code: str | None
    message: str
    #: The activity attempt that got this answer (create calls only). Past the first, every
    #: earlier attempt's outcome is unknown, so a refusal proves nothing was sent only
    #: once the provider's record is read (``workflows.base``).
    attempt: int | None = None


def to_application_error(exc: ProviderError, *, attempt: int | None = None) -> ApplicationError:
    """The Temporal failure for a provider error (see the module docstring)."""
    retry_delay: timedelta | None = None
    if isinstance(exc, ProviderRateLimited) and exc.retry_after is not None:
        retry_delay = timedelta(seconds=max(1.0, exc.retry_after))
    details = ProviderErrorDetails(
        provider=exc.provider,
        operation=exc.operation,
        http_status=exc.http_status,
        provider_code=exc.provider_code,
        message=exc.message,
        attempt=attempt,
    )
    return ApplicationError(
        str(exc),
        details.model_dump(mode="json"),
        type=exc.type_name,
        non_retryable=isinstance(exc, ProviderRejected | ProviderConflict),
        next_retry_delay=retry_delay,
    )


@contextmanager
def provider_operation(
    operation: str,
    provider: ProviderName,
    *,
    attempt: int | None = None,
    **attributes: str | int | None,
) -> Iterator[None]:
    """Runs one provider operation inside an activity: the activity's span gets the
    provider, the operation and ``attributes`` (references, amounts; never a phone number
    or a name), and on a :class:`ProviderError` its classification (type, HTTP status,
    provider code) before it becomes the activity's ``ApplicationError`` (with
    ``attempt`` in its details when given)."""
    telemetry.annotate(provider=provider.value, operation=operation, **attributes)
    try:
        yield
    except ProviderError as exc:
        telemetry.note_provider_error(exc)
        raise to_application_error(exc, attempt=attempt) from None


def note_transaction(transaction: ProviderTransaction) -> None:
    """What the provider answered, on the activity's span."""
    telemetry.annotate(
        provider_status=transaction.status.value,
        provider_raw_status=transaction.raw_status,
        provider_transaction_id=transaction.provider_transaction_id,
    )


class ProviderActivities:
    """Provider HTTP calls, one adapter per provider, injected by ``worker.py``."""

    def __init__(self, providers: Mapping[ProviderName, PaymentProvider]) -> None:
        self._providers = dict(providers)

    def providers(self) -> list[ProviderName]:
        """The providers this worker can call."""
        return list(self._providers)

    def _provider(self, name: ProviderName) -> PaymentProvider:
        try:
            return self._providers[name]
        except KeyError:
            # A configuration error on this worker, not a payment outcome: keep retrying
            # so that a correctly configured worker can pick the task up.
            raise ApplicationError(
                f"provider {name.value} is not configured on this worker",
                type=PROVIDER_NOT_CONFIGURED,
            ) from None

    @activity.defn(name="quote_payout")
    async def quote_payout(self, request: PayoutQuoteInput) -> PayoutQuote:
        """Price a payout at the provider."""
        with provider_operation(
            "quote_payout",
            request.provider,
            amount=request.amount,
            currency=request.currency.value,
            country=request.country.value,
            operator=request.operator.value,
        ):
            quote = await self._provider(request.provider).quote_payout(request)
        telemetry.annotate(fees=quote.fees, quote_id=quote.quote_id)
        return quote

    @activity.defn(name="initiate_payout")
    async def initiate_payout(self, request: InitiatePayoutInput) -> InitiatePayoutResult:
        """Create a payout with the request's idempotency key (safe to repeat)."""
        info = activity.info()
        activity.logger.info(
            "initiating payout %s to %s (attempt %d)",
            request.external_reference,
            mask_phone(request.recipient_phone),
            info.attempt,
        )
        # Providers without idempotency look for an earlier transfer on every re-send.
        request = request.model_copy(update={"attempt": info.attempt})
        with provider_operation(
            "initiate_payout",
            request.provider,
            attempt=info.attempt,
            reference=request.external_reference,
            amount=request.amount,
            currency=request.currency.value,
            country=request.country.value,
            operator=request.operator.value,
        ):
            transaction = await self._provider(request.provider).initiate_payout(request)
        note_transaction(transaction)
        return InitiatePayoutResult(transaction=transaction, attempt=info.attempt)

    @activity.defn(name="fetch_payout_status")
    async def fetch_payout_status(self, lookup: StatusLookup) -> ProviderTransaction:
        """Read a payout's status at the provider."""
        with provider_operation(
            "payout_status",
            lookup.provider,
            reference=lookup.external_reference,
            provider_transaction_id=lookup.provider_transaction_id,
        ):
            transaction = await self._provider(lookup.provider).payout_status(lookup)
        note_transaction(transaction)
        return transaction

    @activity.defn(name="initiate_payin")
    async def initiate_payin(self, request: InitiatePayinInput) -> InitiatePayinResult:
        """Ask the customer to pay, with the request's idempotency key (safe to repeat)."""
        info = activity.info()
        request = request.model_copy(update={"attempt": info.attempt})
        with provider_operation(
            "initiate_payin",
            request.provider,
            attempt=info.attempt,
            reference=request.external_reference,
            amount=request.amount,
            currency=request.currency.value,
            country=request.country.value,
            mode=request.mode.value,
        ):
            created = await self._provider(request.provider).initiate_payin(request)
        note_transaction(created.transaction)
        return InitiatePayinResult(created=created, attempt=info.attempt)

    @activity.defn(name="fetch_payin_status")
    async def fetch_payin_status(self, lookup: StatusLookup) -> ProviderTransaction:
        """Read a payin's status at the provider."""
        with provider_operation(
            "payin_status",
            lookup.provider,
            reference=lookup.external_reference,
            provider_transaction_id=lookup.provider_transaction_id,
        ):
            transaction = await self._provider(lookup.provider).payin_status(lookup)
        note_transaction(transaction)
        return transaction

    @activity.defn(name="refund_payin")
    async def refund_payin(self, request: RefundInput) -> ProviderTransaction:
        """Refund a successful payin, with the refund's own idempotency key."""
        with provider_operation(
            "refund_payin",
            request.provider,
            reference=request.external_reference,
            payin_reference=request.payin_reference,
            provider_transaction_id=request.provider_transaction_id,
        ):
            transaction = await self._provider(request.provider).refund_payin(request)
        note_transaction(transaction)
        return transaction

    @activity.defn(name="provider_balances")
    async def provider_balances(self, provider: ProviderName) -> list[ProviderBalance]:
        """The provider account's balances (campaign pre-flight)."""
        with provider_operation("balances", provider):
            return await self._provider(provider).balances()

    @activity.defn(name="provider_availability")
    async def provider_availability(self, provider: ProviderName) -> ProviderAvailability:
        """Whether the provider answers and pays out now (pre-flight, outage probes)."""
        with provider_operation("availability", provider):
            return await self._provider(provider).availability()

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for a worker's registration."""
        return [
            self.quote_payout,
            self.initiate_payout,
            self.fetch_payout_status,
            self.initiate_payin,
            self.fetch_payin_status,
            self.refund_payin,
            self.provider_balances,
            self.provider_availability,
        ]
