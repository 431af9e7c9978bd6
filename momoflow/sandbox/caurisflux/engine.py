"""State and lifecycles of the CaurisFlux simulator: quotes, transactions, settlement,
webhooks and the JSON shapes the API returns for them."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import string
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..shared import (
    Clock,
    Delivery,
    FaultRegistry,
    FixedWindowRateLimiter,
    IdempotencyStore,
    Ledger,
    MerchantAccount,
    RequestLog,
    TaskSupervisor,
    WebhookDispatcher,
    compact_json,
    iso_timestamp,
)
from .catalog import (
    DEFAULT_OUTCOMES,
    PAYIN_FINAL,
    PAYOUT_FINAL,
    PROVIDERS,
    ScriptedOutcome,
    error_message,
    outcome_for,
    status_message,
)

__all__ = ["OPERATIONS", "CaurisFluxEngine", "CaurisFluxSandboxConfig", "Quote", "Transaction"]

#: Operation names for fault injection and the request log.
OPERATIONS = (
    "payouts.quote",
    "payouts.initiate",
    "payments.initiate",
    "payments.status",
    "payments.balance",
    "payments.providers",
    "countries.active",
)

#: [1, 5, 30, 120, 360] minutes (providers.md 1.12.4), in simulated seconds.
DEFAULT_RETRY_SCHEDULE = (60.0, 300.0, 1800.0, 7200.0, 21600.0)


class CaurisFluxSandboxConfig(BaseModel):
    """Settings of one CaurisFlux simulator. Durations are simulated seconds (see
    ``time_scale``) except ``idempotency_ttl`` and ``rate_limit_window``, which are real."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    public_key: str = "pk_test_momoflow"
    secret_key: str = "sk_test_momoflow"
    settle_delay: float = Field(default=2.0, ge=0)
    time_scale: float = Field(default=1.0, ge=0)
    webhook_url: str | None = None
    webhook_secret: str = "whsec_momoflow_sandbox"
    webhook_retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    webhook_timeout: float = Field(default=5.0, gt=0)
    rate_limit_per_minute: int = Field(default=100, ge=0)
    rate_limit_window: float = Field(default=60.0, gt=0)
    balance: int = Field(default=100_000_000, ge=0)
    currency: str = "XOF"
    quote_ttl: float = Field(default=900.0, ge=0)
    payment_ttl: float = Field(default=1800.0, ge=0)
    idempotency_ttl: float = Field(default=86_400.0, ge=0)
    outcomes: dict[str, ScriptedOutcome] = Field(default_factory=lambda: dict(DEFAULT_OUTCOMES))
    #: Only ``X-Idempotency-Key`` protects against a second transfer: a reused
    #: ``externalReference`` (or quote) under a new or no key executes again instead of
    #: answering 409 ``duplicate_reference`` (or 400 ``quote_expired``). Tests use it to see
    #: a client whose key changes between retries, which those checks would otherwise hide.
    idempotency_key_only: bool = False
    allow_remote_control: bool = False
    seed: int | None = None


@dataclass
class Quote:
    """A payout quote: amount, fees and method locked until ``expires_at``."""

    id: str
    amount: int
    fees: int
    currency: str
    country: str
    method: str
    provider: str
    created_at: float
    expires_at: float
    used: bool = False

    def to_body(self) -> dict[str, Any]:
        """The 201 body of ``POST /payouts/quote`` (shape assumed, providers.md 1.12.6)."""
        return {
            "quoteId": self.id,
            "amount": self.amount,
            "fees": self.fees,
            "netAmount": self.amount - self.fees,
            "currency": self.currency,
            "method": self.method,
            "provider": self.provider,
            "country": self.country,
            "expiresAt": iso_timestamp(self.expires_at),
        }


@dataclass
class Transaction:
    """A payout or a payin (``collect``) and everything the status endpoint reports."""

    id: str
    kind: Literal["payout", "payin"]
    external_reference: str
    amount: int
    fees: int
    currency: str
    country: str | None
    provider: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    callback_url: str | None
    metadata: dict[str, Any] | None
    outcome: ScriptedOutcome
    created_at: float
    expires_at: float | None = None
    payin_type: str | None = None
    customer_email: str | None = None
    description: str | None = None
    token: str = ""
    status: str = "pending"
    updated_at: float = 0.0
    completed_at: float | None = None
    provider_reference: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    held_webhooks: list[Delivery] = field(default_factory=list)
    reorder: bool = False

    @property
    def is_final(self) -> bool:
        """Whether the status is terminal for this kind."""
        return self.status in (PAYOUT_FINAL if self.kind == "payout" else PAYIN_FINAL)

    @property
    def full_name(self) -> str | None:
        """Recipient (payout) or customer (payin) name."""
        parts = [p for p in (self.first_name, self.last_name) if p]
        return " ".join(parts) or None


class CaurisFluxEngine:
    """Everything one simulator process knows; all of it is in memory."""

    def __init__(self, config: CaurisFluxSandboxConfig) -> None:
        self.initial_config = config.model_copy(deep=True)
        self.config = config.model_copy(deep=True)
        self.clock = Clock(time_scale=config.time_scale)
        self.tasks = TaskSupervisor()
        self.faults = FaultRegistry(OPERATIONS)
        self.ledger = Ledger()
        self.account = MerchantAccount(balance=config.balance, currency=config.currency)
        self.limiter = FixedWindowRateLimiter(
            self.clock, limit=config.rate_limit_per_minute, window=config.rate_limit_window
        )
        self.idempotency = IdempotencyStore(self.clock, ttl=config.idempotency_ttl)
        self.requests = RequestLog()
        self.webhooks = WebhookDispatcher(
            clock=self.clock,
            tasks=self.tasks,
            faults=self.faults,
            headers=self._webhook_headers,
            retry_schedule=config.webhook_retry_schedule,
            timeout=config.webhook_timeout,
        )
        self.transactions: dict[str, Transaction] = {}
        self.by_reference: dict[str, Transaction] = {}
        self.quotes: dict[str, Quote] = {}
        self._rng = random.Random(config.seed)
        # Not reset by reset(): ids stay unique for the life of the process, so a client
        # that outlives a reset never sees an id reused for another transaction.
        self._payin_ids = itertools.count(self._rng.randrange(1_000, 900_000))
        self._provider_refs = itertools.count(self._rng.randrange(100_000, 800_000))

    # -- configuration and reset -------------------------------------------------------------

    def apply_config(self, changes: dict[str, Any]) -> None:
        """Change settings at runtime (``balance`` sets the current merchant balance)."""
        changes = dict(changes)
        balance = changes.pop("balance", None)
        # Validate the whole candidate first so that a bad value changes nothing.
        candidate = CaurisFluxSandboxConfig.model_validate({**self.config.model_dump(), **changes})
        if balance is not None:
            self.account.balance = int(balance)
        self.config = candidate
        self._sync_config()

    def _sync_config(self) -> None:
        self.clock.time_scale = self.config.time_scale
        self.limiter.limit = self.config.rate_limit_per_minute
        self.limiter.window = self.config.rate_limit_window
        self.idempotency.ttl = self.config.idempotency_ttl
        self.webhooks.retry_schedule = tuple(self.config.webhook_retry_schedule)

    async def reset(self) -> None:
        """Forget all state and restore the startup configuration and balance."""
        await self.tasks.cancel_all()
        self.config = self.initial_config.model_copy(deep=True)
        self._sync_config()
        self.account.balance = self.config.balance
        for store in (self.faults, self.ledger, self.limiter, self.idempotency, self.requests):
            store.clear()
        self.webhooks.clear()
        self.transactions.clear()
        self.by_reference.clear()
        self.quotes.clear()

    # -- creation -----------------------------------------------------------------------------

    def _alnum(self, length: int) -> str:
        return "".join(self._rng.choices(string.ascii_uppercase + string.digits, k=length))

    def new_quote(
        self, *, amount: int, fees: int, currency: str, country: str, method: str, provider: str
    ) -> Quote:
        """Create and keep a quote."""
        now = self.clock.now()
        quote = Quote(
            id=f"QT-{self._alnum(12)}",
            amount=amount,
            fees=fees,
            currency=currency,
            country=country,
            method=method,
            provider=provider,
            created_at=now,
            expires_at=now + self.clock.scaled(self.config.quote_ttl),
        )
        self.quotes[quote.id] = quote
        return quote

    def usable_quote(self, quote_id: str) -> Quote | None:
        """The quote if it exists, is unused and has not expired (quotes are single-use,
        except with ``idempotency_key_only``: there nothing but the key may stop a re-send)."""
        quote = self.quotes.get(quote_id)
        if quote is None or quote.expires_at <= self.clock.now():
            return None
        if quote.used and not self.config.idempotency_key_only:
            return None
        return quote

    def new_transaction(self, kind: Literal["payout", "payin"], **fields: Any) -> Transaction:
        """Register an accepted transaction, record its execution and start its settlement."""
        now = self.clock.now()
        tx_id = f"PO{self._alnum(14)}" if kind == "payout" else f"TX{next(self._payin_ids):09d}"
        outcome = outcome_for(fields.get("phone"), self.config.outcomes)
        tx = Transaction(
            id=tx_id, kind=kind, outcome=outcome, created_at=now, updated_at=now, **fields
        )
        tx.token = self._alnum(10).lower()
        if kind == "payin":
            tx.expires_at = now + self.clock.scaled(self.config.payment_ttl)
        self.transactions[tx.id] = tx
        self.by_reference[tx.external_reference] = tx
        self.ledger.record_execution(
            reference=tx.external_reference,
            transaction_id=tx.id,
            kind=kind,
            amount=tx.amount,
            currency=tx.currency,
            status=tx.status,
            counterparty=tx.phone,
        )
        self.tasks.spawn(self._settle(tx), key=tx.id)
        return tx

    # -- lifecycle ----------------------------------------------------------------------------

    async def _settle(self, tx: Transaction) -> None:
        outcome = tx.outcome
        final = outcome.payout_status if tx.kind == "payout" else outcome.payin_status
        error = outcome.payout_error if tx.kind == "payout" else outcome.payin_error
        if tx.kind == "payin" and final is None:
            assert tx.expires_at is not None
            await self.clock.sleep_real(tx.expires_at - self.clock.now())
            self.finalize(tx, "expired")
            return
        # Half the delay in pending, then processing, so that pollers can observe both.
        half = self.config.settle_delay / 2
        await self.clock.sleep(half)
        self.mark_processing(tx, will_settle=final is not None)
        if final is None:
            return
        await self.clock.sleep(self.config.settle_delay * outcome.delay_factor - half)
        self.finalize(tx, final, error)

    def mark_processing(self, tx: Transaction, *, will_settle: bool) -> None:
        """pending → processing, with its webhook (held back when reordering)."""
        if tx.status != "pending":
            return
        self._set_status(tx, "processing")
        if will_settle and self.faults.take_webhook("reorder_webhooks") is not None:
            tx.reorder = True
        delivery = self._prepare_webhook(tx)
        if delivery is None:
            return
        if tx.reorder:
            tx.held_webhooks.append(delivery)
        else:
            self.webhooks.dispatch(delivery, order_key=tx.id)

    def finalize(
        self,
        tx: Transaction,
        status: str,
        error_code: str | None = None,
        message: str | None = None,
    ) -> None:
        """Move ``tx`` to a final status: balance effects, then the final webhook."""
        was_final = tx.is_final
        provider_name = PROVIDERS[tx.provider].name if tx.provider in PROVIDERS else "mobile"
        failed = status in ("failed", "cancelled", "expired")
        tx.error_code = error_code if status == "failed" else None
        tx.error_message = (message or error_message(error_code, provider_name)) if failed else None
        if status == "failed" and tx.error_message is None:
            tx.error_message = status_message(tx.kind, status)
        if status in ("completed", "success"):
            prefix = PROVIDERS[tx.provider].reference_prefix if tx.provider in PROVIDERS else "CF"
            tx.provider_reference = f"{prefix}-PAY-{next(self._provider_refs)}"
            tx.completed_at = self.clock.now()
        if tx.kind == "payout" and failed and not was_final:
            self.account.credit(tx.amount)  # the payout did not happen: the debit is reversed
        if tx.kind == "payin" and status == "success":
            self.account.credit(tx.amount - tx.fees)
        self._set_status(tx, status)
        self.tasks.cancel(tx.id)
        final = self._prepare_webhook(tx)
        held, tx.held_webhooks = tx.held_webhooks, []
        deliveries = ([final] if final else []) + held
        self.webhooks.dispatch(*deliveries, order_key=tx.id)

    def _set_status(self, tx: Transaction, status: str) -> None:
        tx.status = status
        tx.updated_at = self.clock.now()
        self.ledger.set_status(tx.external_reference, status)

    # -- webhooks (scheme of providers.md 1.8 [CODE S7]) -----------------------------------------

    def _prepare_webhook(self, tx: Transaction) -> Delivery | None:
        url = tx.callback_url or self.config.webhook_url
        if not url:
            return None
        family = "payout" if tx.kind == "payout" else "payment"
        word = "success" if tx.status == "completed" else tx.status
        event = f"{family}.{word}"
        body = compact_json({"event": event, "data": self.webhook_data(tx)})
        return self.webhooks.prepare(url=url, event=event, body=body, transaction_id=tx.id)

    def _webhook_headers(self, delivery: Delivery, timestamp: int) -> dict[str, str]:
        secret = self.config.webhook_secret.encode()
        signed = f"{timestamp}.".encode() + delivery.body
        signature = hmac.new(secret, signed, hashlib.sha256).hexdigest()
        return {
            "Content-Type": "application/json",
            "User-Agent": "CaurisFlux-Webhooks/1.0 (sandbox)",
            "X-Webhook-Signature": f"sha256={signature}",
            "X-Webhook-Timestamp": str(timestamp),
            "X-Webhook-Event": delivery.event,
            "X-Webhook-Delivery-Id": delivery.id,
        }

    def webhook_data(self, tx: Transaction) -> dict[str, Any]:
        """The ``data`` object of a webhook (fields the S7 plugin reads, plus context)."""
        return {
            "transactionId": tx.id,
            "externalReference": tx.external_reference,
            "providerTransactionId": tx.provider_reference,
            "provider": tx.provider,
            "type": "payout" if tx.kind == "payout" else "collect",
            "status": tx.status,
            "amount": tx.amount,
            "currency": tx.currency,
            "fees": tx.fees,
            "netAmount": tx.amount - tx.fees,
            "failureReason": tx.error_code,
            "failureMessage": tx.error_message,
            "errorCode": tx.error_code,
            "errorMessage": tx.error_message,
            "completedAt": _iso_or_none(tx.completed_at),
            "updatedAt": iso_timestamp(tx.updated_at),
            "metadata": tx.metadata,
        }

    # -- response bodies ------------------------------------------------------------------------

    def payout_created_body(self, tx: Transaction) -> dict[str, Any]:
        """201 body of ``POST /payouts/initiate`` [DOC S4]."""
        return {
            "transactionId": tx.id,
            "externalReference": tx.external_reference,
            "status": tx.status,
            "amount": tx.amount,
            "currency": tx.currency,
            "fees": tx.fees,
            "netAmount": tx.amount - tx.fees,
            "method": "mobile_money",
            "recipient": {
                "name": tx.full_name,
                "firstName": tx.first_name,
                "lastName": tx.last_name,
                "phone": tx.phone,
            },
            "mobileWallet": {"provider": tx.provider},
            "createdAt": iso_timestamp(tx.created_at),
            "updatedAt": iso_timestamp(tx.updated_at),
        }

    def payin_created_body(self, tx: Transaction, base_url: str) -> dict[str, Any]:
        """``{success, data}`` body of ``POST /payments/initiate`` [DOC S2]."""
        provider = PROVIDERS.get(tx.provider or "")
        method = (
            {"code": provider.code, "name": provider.name, "logoUrl": provider.logo_url}
            if provider
            else None
        )
        deep_links: dict[str, str] = {}
        if provider is not None and provider.deep_link:
            deep_links[provider.code] = f"{provider.deep_link}://pay?token={tx.token}"
        data = {
            "transactionId": tx.id,
            "status": tx.status,
            "type": "collect",
            "amount": tx.amount,
            "currency": tx.currency,
            "paymentMethod": method,
            "country": tx.country,
            "redirectUrl": f"{base_url.rstrip('/')}/checkout/{tx.id}?token={tx.token}",
            "externalReference": tx.external_reference,
            "expiresAt": _iso_or_none(tx.expires_at),
            "createdAt": iso_timestamp(tx.created_at),
            "metadata": tx.metadata,
            "qrCode": None,
            "deepLinks": deep_links,
        }
        return {"success": True, "data": data}

    def status_body(self, tx: Transaction) -> dict[str, Any]:
        """Bare body of ``GET /payments/status/{id}`` [DOC S3; payin shape assumed]."""
        body: dict[str, Any] = {
            "transactionId": tx.id,
            "externalReference": tx.external_reference,
            "type": "payout" if tx.kind == "payout" else "collect",
            "status": tx.status,
            "amount": tx.amount,
            "currency": tx.currency,
            "fees": tx.fees,
            "method": "mobile_money",
            "mobileProvider": tx.provider,
        }
        if tx.kind == "payout":
            body["recipientPhone"] = tx.phone
            body["recipientName"] = tx.full_name
        else:
            body["paymentType"] = tx.payin_type
            body["country"] = tx.country
            body["customerPhone"] = tx.phone
            body["customerName"] = tx.full_name
            body["expiresAt"] = _iso_or_none(tx.expires_at)
        body.update(
            {
                "providerReference": tx.provider_reference,
                "message": status_message(tx.kind, tx.status),
                "errorCode": tx.error_code,
                "errorMessage": tx.error_message,
                "completedAt": _iso_or_none(tx.completed_at),
                "createdAt": iso_timestamp(tx.created_at),
                "updatedAt": iso_timestamp(tx.updated_at),
                "metadata": tx.metadata,
            }
        )
        return body


def _iso_or_none(epoch: float | None) -> str | None:
    return None if epoch is None else iso_timestamp(epoch)
