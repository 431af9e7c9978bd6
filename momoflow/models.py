"""Canonical models shared by the gateway, workflows, activities and provider adapters.

Everything that crosses a boundary (an HTTP request, a workflow or activity argument, a
query result, a webhook signal) is one of these pydantic models. Our own models forbid
unknown fields; amounts are integers in the currency's minor unit.

Workflow inputs here are deliberately *structural*: business validation (phone numbers for
the country, provider limits) happens in :mod:`momoflow.business_requests` before a workflow starts,
so that a change to those rules can never make an old workflow history fail to replay.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from momoflow.masking import mask_phone
from momoflow.money import Country, Currency


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class ProviderName(StrEnum):
    """The mobile-money aggregators momoflow speaks to."""

    CAURISFLUX = "caurisflux"
    NOVASEND = "novasend"
    MOBILEPAY = "mobilepay"


class Operator(StrEnum):
    """Mobile-money operators (wallets), named the same whatever the aggregator."""

    WAVE = "wave"
    ORANGE_MONEY = "orange_money"
    MTN_MOMO = "mtn_momo"
    MOOV_MONEY = "moov_money"
    FREE_MONEY = "free_money"


class Direction(StrEnum):
    """Which way the money moves, seen from the merchant."""

    PAYIN = "payin"
    PAYOUT = "payout"


class PayinMode(StrEnum):
    """How the customer is asked to pay.

    * ``direct``: the aggregator pushes a prompt (USSD/STK) to the named operator's wallet.
    * ``checkout``: the customer follows a link to a hosted page and confirms there.
    * ``qr``: the customer scans a QR code with their wallet app.
    """

    DIRECT = "direct"
    CHECKOUT = "checkout"
    QR = "qr"


class PaymentStatus(StrEnum):
    """A provider's status, normalised. Anything not explicitly final is PENDING."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True when the provider says the transaction will not change any more."""
        return self is not PaymentStatus.PENDING


class TransactionStatus(StrEnum):
    """The lifecycle of a momoflow transaction (a workflow), as the merchant sees it.

    ``reconciling`` means the outcome at the provider is not known after the deadline: money
    may or may not have moved, and an operator or the reconciliation sweep must settle it.
    It is never turned into ``failed`` without evidence.
    """

    CREATED = "created"
    QUOTING = "quoting"
    SUBMITTING = "submitting"
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: A payin the customer refused.
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    RECONCILING = "reconciling"
    #: A failed payin that the provider later reported successful (NovaSend's documented
    #: late reversal): the money did arrive. Recorded as a correction, never a silent flip.
    LATE_SUCCEEDED = "late_succeeded"

    @property
    def is_final(self) -> bool:
        """True for states that absorb every later event (but see LATE_SUCCEEDED)."""
        return self in _FINAL_TRANSACTION_STATUSES


_FINAL_TRANSACTION_STATUSES = frozenset(
    {
        TransactionStatus.SUCCEEDED,
        TransactionStatus.FAILED,
        TransactionStatus.DECLINED,
        TransactionStatus.CANCELLED,
        TransactionStatus.EXPIRED,
        TransactionStatus.LATE_SUCCEEDED,
    }
)

#: How a final provider status becomes a final transaction status.
FINAL_STATUS_FROM_PROVIDER: dict[PaymentStatus, TransactionStatus] = {
    PaymentStatus.SUCCEEDED: TransactionStatus.SUCCEEDED,
    PaymentStatus.FAILED: TransactionStatus.FAILED,
    PaymentStatus.EXPIRED: TransactionStatus.EXPIRED,
    PaymentStatus.CANCELLED: TransactionStatus.CANCELLED,
}


class Failure(_Model):
    """Why a transaction failed or needs reconciling.

    ``code`` is stable and machine-readable (a provider's code such as
    ``invalid_recipient``, or one of momoflow's such as ``create_outcome_unknown``);
    ``message`` is for humans and may be in the provider's language.
    """

    code: str
    message: str
    provider_code: str | None = None


# --------------------------------------------------------------------------- workflow input


class PayoutTimings(_Model):
    """Deadlines and poll schedule of one payout, fixed when it starts (seconds)."""

    #: One provider HTTP call, including the adapter's own timeout.
    provider_call_timeout_s: int = Field(default=30, ge=1)
    quote_timeout_s: int = Field(default=600, ge=1)
    submit_timeout_s: int = Field(default=3600, ge=1)
    settle_timeout_s: int = Field(default=7200, ge=1)
    poll_schedule_s: list[int] = Field(
        default_factory=lambda: [5, 10, 20, 30, 60, 120, 300], min_length=1
    )
    reconcile_poll_interval_s: int = Field(default=3600, ge=1)
    reconcile_horizon_s: int = Field(default=7 * 24 * 3600, ge=0)
    notification_horizon_s: int = Field(default=3 * 24 * 3600, ge=60)


class PayoutInput(_Model):
    """The argument of :class:`workflows.payout.PayoutWorkflow` (already validated)."""

    merchant: str
    reference: str
    provider: ProviderName
    country: Country
    operator: Operator
    recipient_phone: str
    recipient_name: str
    amount: int
    currency: Currency
    description: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)
    request_fingerprint: str
    requested_at: datetime
    #: Where the provider must send this payout's webhooks (our gateway).
    provider_callback_url: str | None = None
    #: The merchant's URL for signed notifications of every final state.
    notify_url: str | None = None
    #: False for providers without a quote step (NovaSend, MOBILE-PAY).
    quote_first: bool = True
    #: True when the provider can find a transaction by our reference (so a payout whose
    #: create answer was lost can still be read).
    status_by_reference: bool = False
    #: A signed final webhook (success or failure) is confirmed by a status read before it
    #: counts (False in histories from before that rule).
    confirm_final_webhooks: bool = False
    timings: PayoutTimings = Field(default_factory=PayoutTimings)
    #: The campaign that started this payout (a line of it): told of every settled outcome
    #: (signal ``line_settled``). None for payouts started one by one.
    campaign_workflow_id: str | None = None


# --------------------------------------------------------------------------- provider operations


class PayoutQuoteInput(_Model):
    """Ask a provider what a payout will cost."""

    provider: ProviderName
    amount: int
    currency: Currency
    country: Country
    operator: Operator


class PayoutQuote(_Model):
    """A provider's priced, time-limited offer for a payout."""

    provider: ProviderName
    quote_id: str | None
    amount: int
    fees: int
    net_amount: int
    currency: Currency
    expires_at: datetime | None = None


class InitiatePayoutInput(_Model):
    """Create a payout at the provider. Re-sending the same input is always safe.

    ``attempt`` is the activity attempt (1 for the first call): adapters of providers
    without idempotency look for an existing transfer before any re-send.
    """

    provider: ProviderName
    external_reference: str
    idempotency_key: str
    quote_id: str | None
    amount: int
    currency: Currency
    country: Country
    operator: Operator
    recipient_phone: str
    recipient_name: str
    description: str = ""
    callback_url: str | None = None
    attempt: int = 1
    requested_at: datetime | None = None


class InitiatePayinInput(_Model):
    """Ask a customer to pay. Re-sending the same input is always safe."""

    provider: ProviderName
    mode: PayinMode
    external_reference: str
    idempotency_key: str
    amount: int
    currency: Currency
    country: Country
    operator: Operator | None = None
    customer_phone: str | None = None
    customer_name: str | None = None
    description: str = ""
    #: Orange Money direct payins at NovaSend need the customer's one-time code.
    otp: str | None = None
    callback_url: str | None = None
    return_url: str | None = None
    cancel_url: str | None = None
    attempt: int = 1
    requested_at: datetime | None = None


class StatusLookup(_Model):
    """Read a transaction's status at the provider.

    ``provider_transaction_id`` is None when the create answer was lost; providers that can
    search by our reference then look for it from ``since`` on.
    """

    provider: ProviderName
    provider_transaction_id: str | None
    external_reference: str
    since: datetime | None = None


class RefundInput(_Model):
    """Refund a successful payin (in full)."""

    provider: ProviderName
    payin_reference: str
    provider_transaction_id: str | None = None
    external_reference: str
    idempotency_key: str
    reason: str


class ProviderTransaction(_Model):
    """A provider's view of one transaction, normalised."""

    provider: ProviderName
    provider_transaction_id: str
    external_reference: str | None = None
    status: PaymentStatus
    raw_status: str
    amount: int | None = None
    currency: Currency | None = None
    fees: int | None = None
    net_amount: int | None = None
    provider_reference: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    updated_at: datetime | None = None


class PayinCreated(_Model):
    """What the customer needs to pay, as the provider returned it."""

    transaction: ProviderTransaction
    payment_url: str | None = None
    deep_links: dict[str, str] = Field(default_factory=dict)
    qr_code: str | None = None
    expires_at: datetime | None = None
    confirmation_required: bool | None = None


class ProviderBalance(_Model):
    """Our merchant balance at a provider, in one currency (minor units)."""

    provider: ProviderName
    currency: Currency
    balance: int
    available: int


class ProviderAvailability(_Model):
    """Whether a provider answers, and what it offers right now (when it says)."""

    provider: ProviderName
    available: bool
    detail: str = ""
    operators: dict[Country, list[Operator]] | None = None


class ProviderEvent(_Model):
    """A verified webhook from a provider, normalised; sent to a workflow as a signal.

    It carries no phone number or name: only what moving the money state needs.
    ``verified`` is False for providers that sign nothing (MOBILE-PAY): such an event is
    only a hint that makes the workflow read the status, and that read decides.
    """

    provider: ProviderName
    event_id: str
    event_type: str
    external_reference: str | None = None
    provider_transaction_id: str | None = None
    status: PaymentStatus
    raw_status: str
    amount: int | None = None
    currency: Currency | None = None
    fees: int | None = None
    provider_reference: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    received_at: datetime | None = None
    verified: bool = True


# --------------------------------------------------------------------------- live state


class TimelineEntry(_Model):
    """One transition in a transaction's life, for operators and merchants."""

    at: datetime
    status: TransactionStatus
    note: str = ""


class TransactionState(_Model):
    """What every transaction's live state has (payouts and payins)."""

    workflow_id: str
    merchant: str
    reference: str
    provider: ProviderName
    country: Country
    amount: int
    currency: Currency
    #: The amount the provider last said it processed (minor units), when it said one. A
    #: success for another amount than ``amount`` is never ``succeeded``: it is
    #: ``reconciling`` with ``failure.code = amount_mismatch``.
    provider_amount: int | None = None
    description: str = ""
    status: TransactionStatus = TransactionStatus.CREATED
    fees: int | None = None
    provider_transaction_id: str | None = None
    provider_reference: str | None = None
    provider_status: str | None = None
    failure: Failure | None = None
    submit_attempts: int = 0
    status_polls: int = 0
    webhooks_received: int = 0
    created_at: datetime
    submitted_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime
    #: When the transaction last went to ``reconciling`` (its age for operators).
    reconciling_since: datetime | None = None
    #: Set when an operator closed a ``reconciling`` transaction by hand.
    resolution: Resolution | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    notifications: list[NotificationDelivery] = Field(default_factory=list)


def _started(
    workflow_id: str, input: PayoutInput | PayinInput, updated_at: datetime | None
) -> dict[str, Any]:
    """The fields every transaction's first state takes from its input."""
    return {
        "workflow_id": workflow_id,
        "merchant": input.merchant,
        "reference": input.reference,
        "provider": input.provider,
        "country": input.country,
        "amount": input.amount,
        "currency": input.currency,
        "description": input.description,
        "created_at": input.requested_at,
        "updated_at": updated_at or input.requested_at,
    }


class PayoutState(TransactionState):
    """The live state of a payout, as returned by the workflow's ``state`` query."""

    operator: Operator
    recipient_phone_masked: str
    net_amount: int | None = None
    quote_id: str | None = None
    quote_attempts: int = 0

    @classmethod
    def initial(
        cls, workflow_id: str, input: PayoutInput, *, updated_at: datetime | None = None
    ) -> PayoutState:
        """The state of a payout that has just started: the one place that derives it from
        the input (the workflow, and the gateway's answer to a new payout)."""
        return cls(
            **_started(workflow_id, input, updated_at),
            operator=input.operator,
            recipient_phone_masked=mask_phone(input.recipient_phone),
        )


# --------------------------------------------------------------------------- payins


class PayinTimings(_Model):
    """Deadlines and poll schedule of one payin, fixed when it starts (seconds)."""

    provider_call_timeout_s: int = Field(default=30, ge=1)
    submit_timeout_s: int = Field(default=3600, ge=1)
    #: When the provider gives no ``expiresAt``: how long the customer has to pay.
    default_expiry_s: int = Field(default=1800, ge=1)
    #: Wait this long past the expiry before the final read that declares ``expired``.
    expiry_grace_s: int = Field(default=60, ge=0)
    poll_schedule_s: list[int] = Field(
        default_factory=lambda: [5, 10, 20, 30, 60, 120, 300], min_length=1
    )
    #: A failed payin stays listening this long for a late success (NovaSend: 48 h, N8).
    late_reversal_window_s: int = Field(default=48 * 3600, ge=0)
    late_reversal_poll_interval_s: int = Field(default=6 * 3600, ge=1)
    reconcile_poll_interval_s: int = Field(default=3600, ge=1)
    reconcile_horizon_s: int = Field(default=7 * 24 * 3600, ge=0)
    notification_horizon_s: int = Field(default=3 * 24 * 3600, ge=60)


class PayinInput(_Model):
    """The argument of :class:`workflows.payin.PayinWorkflow` (already validated)."""

    merchant: str
    reference: str
    provider: ProviderName
    mode: PayinMode
    country: Country
    operator: Operator | None = None
    customer_phone: str | None = None
    customer_name: str | None = None
    amount: int
    currency: Currency
    description: str = ""
    otp: str | None = None
    return_url: str | None = None
    cancel_url: str | None = None
    #: The merchant's URL for signed notifications of every final state and correction.
    notify_url: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    request_fingerprint: str
    requested_at: datetime
    provider_callback_url: str | None = None
    status_by_reference: bool = False
    #: The provider may turn a failed payin into a success later (NovaSend).
    late_reversals: bool = False
    #: A signed final webhook (success or failure) is confirmed by a status read before it
    #: counts (always for new payins; False in histories from before that rule).
    confirm_final_webhooks: bool = False
    timings: PayinTimings = Field(default_factory=PayinTimings)


class Correction(_Model):
    """A change to a final outcome, reported by the provider after the fact."""

    at: datetime
    from_status: TransactionStatus
    to_status: TransactionStatus
    source: str
    provider_status: str | None = None


class PayinState(TransactionState):
    """The live state of a payin (``state`` query, ``created`` update, final result)."""

    mode: PayinMode
    operator: Operator | None = None
    customer_phone_masked: str | None = None
    payment_url: str | None = None
    deep_links: dict[str, str] = Field(default_factory=dict)
    qr_code: str | None = None
    expires_at: datetime | None = None
    corrections: list[Correction] = Field(default_factory=list)

    @classmethod
    def initial(
        cls, workflow_id: str, input: PayinInput, *, updated_at: datetime | None = None
    ) -> PayinState:
        """The state of a payin that has just started, derived from its input."""
        return cls(
            **_started(workflow_id, input, updated_at),
            mode=input.mode,
            operator=input.operator,
            customer_phone_masked=mask_phone(input.customer_phone)
            if input.customer_phone
            else None,
        )


# --------------------------------------------------------------------------- reconciliation


class ResolutionOutcome(StrEnum):
    """What an operator found out about a ``reconciling`` transaction."""

    #: The money moved: the payout reached the recipient, the customer paid, the refund
    #: was sent.
    PAID = "paid"
    #: The money did not move.
    FAILED = "failed"


class ManualResolution(_Model):
    """The argument of the ``resolve`` update: an operator closes a ``reconciling``
    transaction. It is kept in the workflow history, so every resolution is audited."""

    outcome: ResolutionOutcome
    #: Why: the evidence (a dashboard check, a support ticket). Required.
    reason: str
    #: Who decided. Required.
    operator: str


class Resolution(_Model):
    """A manual resolution as recorded in the transaction's state."""

    outcome: ResolutionOutcome
    reason: str
    operator: str
    resolved_at: datetime
    #: Why the transaction was reconciling before it was resolved.
    previous_failure: Failure | None = None


class RecheckRequest(_Model):
    """The argument of the ``recheck`` signal: read the status now (reconciling only)."""

    #: Who asks, for the activity summary in the history (a sweep run, an operator).
    requested_by: str = "operator"


class ListTransactionsInput(_Model):
    """One page of a provider's transaction list, created between two days (inclusive)."""

    provider: ProviderName
    start: date
    end: date
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=100)


class ListedTransaction(_Model):
    """One item of a provider's transaction list, normalised (no phone number, no name)."""

    provider: ProviderName
    provider_transaction_id: str
    #: Our reference (the workflow id) when the provider echoes it.
    external_reference: str | None = None
    #: The fingerprint of our reference that the provider kept when it kept no more of it
    #: (MOBILE-PAY: the marker that opens the description; see
    #: :mod:`momoflow.providers.markers`).
    marker: str | None = None
    direction: Direction | None = None
    status: PaymentStatus
    raw_status: str
    amount: int | None = None
    currency: Currency | None = None
    created_at: datetime | None = None


class TransactionListPage(_Model):
    """A page of :class:`ListedTransaction`; ``next_offset`` is None on the last page."""

    items: list[ListedTransaction] = Field(default_factory=list)
    total: int | None = None
    next_offset: int | None = None


# --------------------------------------------------------------------------- merchant notifications


class MerchantNotification(_Model):
    """One event to tell a merchant about, POSTed (signed) to its callback URL.

    ``event_id`` is derived from the workflow id and the transition, so a re-delivery is
    recognisable by the merchant. ``data`` holds the transaction's public view (masked phone
    number, no secrets).
    """

    merchant: str
    url: str
    event_id: str
    event_type: str
    data: dict[str, Any]
    occurred_at: datetime


class DeliveryStatus(StrEnum):
    """Where a merchant notification stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    GIVEN_UP = "given_up"


class NotificationDelivery(_Model):
    """A notification's delivery state, shown in the transaction's query result."""

    event_id: str
    event_type: str
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    http_status: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None


class DeliveryReport(_Model):
    """What one successful delivery attempt returned."""

    attempt: int
    http_status: int
    delivered_at: datetime


# --- refunds


class RefundTimings(_Model):
    """Deadlines of one payin refund, fixed when it starts (seconds)."""

    provider_call_timeout_s: int = Field(default=30, ge=1)
    #: How long to keep re-sending the refund call with the same key before ``reconciling``.
    submit_timeout_s: int = Field(default=3600, ge=1)
    #: How long after acceptance to wait for the provider's final webhook (NovaSend has no
    #: refund status endpoint, so nothing can be polled) before ``reconciling``.
    settle_timeout_s: int = Field(default=48 * 3600, ge=1)
    #: How long a ``reconciling`` refund keeps listening for a late final webhook.
    reconcile_horizon_s: int = Field(default=7 * 24 * 3600, ge=0)
    notification_horizon_s: int = Field(default=3 * 24 * 3600, ge=60)


class RefundWorkflowInput(_Model):
    """The argument of :class:`workflows.refund.RefundWorkflow`: a full refund of one
    successful payin, checked by the gateway (provider with a refund API, payin succeeded)."""

    merchant: str
    payin_reference: str
    #: Also the reference momoflow sent to the provider for the payin.
    payin_workflow_id: str
    provider: ProviderName
    country: Country
    #: The payin's id at the provider.
    provider_transaction_id: str | None = None
    amount: int
    currency: Currency
    reason: str
    #: The merchant's URL for signed notifications of the refund's outcome.
    notify_url: str | None = None
    requested_at: datetime
    timings: RefundTimings = Field(default_factory=RefundTimings)


class RefundState(TransactionState):
    """The live state of a refund (``state`` query and final result).

    ``reference`` is the refunded payin's reference (a refund has none of its own);
    ``provider_transaction_id`` is the refund's own id at the provider (NovaSend ``rf_…``).
    """

    payin_workflow_id: str
    reason: str
    status: TransactionStatus = TransactionStatus.SUBMITTING


class SharedLookup(_Model):
    """One transaction's status read, batched with others into one list read
    (:mod:`momoflow.status_reads`). ``key`` names it in the answer."""

    key: str
    direction: Direction
    lookup: StatusLookup


class SharedReadOutcome(_Model):
    """What one batched list read found: the transactions by lookup key, the HTTP
    requests it cost (logins included), and why it stopped early, if it did."""

    found: dict[str, ProviderTransaction] = Field(default_factory=dict)
    requests: int = 0
    error: str | None = None
