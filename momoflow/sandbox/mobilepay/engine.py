"""State and lifecycles of the MOBILE-PAY simulator: sessions, transfers, QR payments,
settlement, webhooks and the JSON shapes the API returns for them."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
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
)
from .catalog import (
    DEFAULT_OUTCOMES,
    PAYMENT_FINAL,
    TRANSFER_FINAL,
    ScriptedOutcome,
    error_message,
    outcome_for,
    transfer_fee,
)
from .wire import ListQuery, QrPaymentRequest, TransferRequest

__all__ = ["OPERATIONS", "MobilePayEngine", "MobilePaySandboxConfig", "Transaction", "iso_ms"]

#: Operation names for fault injection and the request log.
OPERATIONS = (
    "transfers.local",
    "transfers.international",
    "payments.qr",
    "transactions.list",
    "balance",
    "auth.login",
)

#: No retry policy is documented (3.2): three attempts in all, 1 and 10 minutes apart.
DEFAULT_RETRY_SCHEDULE = (60.0, 600.0)
#: The fallback release of a webhook held back by ``reorder_webhooks`` (real seconds).
REORDER_HOLD_SECONDS = 2.0


class MobilePaySandboxConfig(BaseModel):
    """Settings of one MOBILE-PAY simulator. Durations are simulated seconds (see
    ``time_scale``) except ``session_ttl``, ``idempotency_ttl`` and ``rate_limit_window``,
    which are real time."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    api_token: str = "mp_test_momoflow"
    login_email: str = "sandbox@momoflow.local"
    login_password: str = "momoflow-sandbox"
    session_ttl: float = Field(default=3600.0, ge=0)
    settle_delay: float = Field(default=2.0, ge=0)
    time_scale: float = Field(default=1.0, ge=0)
    webhook_url: str | None = None
    webhook_secret: str = "mpwh_momoflow_sandbox"
    sign_webhooks: bool = False
    webhook_retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    webhook_timeout: float = Field(default=5.0, gt=0)
    rate_limit_per_hour: int = Field(default=100, ge=0)
    rate_limit_window: float = Field(default=3600.0, gt=0)
    balance: int = Field(default=100_000_000, ge=0)
    payment_ttl: float = Field(default=900.0, ge=0)
    fcfa_currency: bool = True
    honour_idempotency_key: bool = False
    idempotency_ttl: float = Field(default=86_400.0, ge=0)
    #: A transaction shows in ``GET /transactions`` only this long after it was created
    #: (simulated seconds): the list lags behind the writes (3.4.5).
    list_lag: float = Field(default=0.0, ge=0)
    #: Only the first this many characters of a ``description`` are stored and shown
    #: (None: all of it), as an account that shortens descriptions would (3.4.5).
    description_max_chars: int | None = Field(default=None, ge=1)
    #: False: the undocumented ``metadata`` object is neither stored for the API's answers
    #: nor listed (M1 names no such parameter); the ledger still keys on it.
    echo_metadata: bool = True
    outcomes: dict[str, ScriptedOutcome] = Field(default_factory=lambda: dict(DEFAULT_OUTCOMES))
    allow_remote_control: bool = False
    seed: int | None = None


def iso_ms(ms: int) -> str:
    """``2026-02-26T10:30:00.123Z`` from Unix milliseconds (exact, no float rounding)."""
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass
class Transaction:
    """A transfer (payout) or a QR payment, as ``GET /transactions`` reports it."""

    id: str
    kind: Literal["transfer", "payment"]
    amount: int
    fee: int
    description: str | None
    metadata: dict[str, Any] | None
    ledger_key: str
    created_ms: int
    updated_ms: int
    outcome: ScriptedOutcome | None = None
    status: str = "pending"
    recipient_phone: str | None = None
    recipient_country: str | None = None
    merchant_id: str | None = None
    payer: str | None = None
    expires_ms: int | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def is_final(self) -> bool:
        """Whether the status is terminal for this kind."""
        return self.status in (TRANSFER_FINAL if self.kind == "transfer" else PAYMENT_FINAL)


def ledger_key(metadata: dict[str, Any] | None, description: str | None, fallback: str) -> str:
    """The merchant reference: ``metadata.reference``, else the description, else the id.

    MOBILE-PAY has no merchant reference field (3.3), so the ledger uses what the adapter
    can carry: a reference inside the free ``metadata`` object, or the ``description``.
    """
    reference = (metadata or {}).get("reference")
    if isinstance(reference, str | int) and not isinstance(reference, bool) and str(reference):
        return str(reference)
    return description or fallback


class MobilePayEngine:
    """Everything one simulator process knows; all of it is in memory."""

    def __init__(self, config: MobilePaySandboxConfig) -> None:
        self.initial_config = config.model_copy(deep=True)
        self.config = config.model_copy(deep=True)
        self.clock = Clock(time_scale=config.time_scale)
        self.tasks = TaskSupervisor()
        self.faults = FaultRegistry(OPERATIONS)
        self.ledger = Ledger()
        self.account = MerchantAccount(balance=config.balance, currency="XOF")
        self.limiter = FixedWindowRateLimiter(
            self.clock, limit=config.rate_limit_per_hour, window=config.rate_limit_window
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
        self.sessions: dict[str, float] = {}
        self._held: Delivery | None = None
        rng = random.Random(config.seed)
        # Not reset by reset(): ids stay unique for the life of the process.
        self._ids = itertools.count(rng.randrange(100_000, 900_000))

    # -- configuration and reset -------------------------------------------------------------

    def apply_config(self, changes: dict[str, Any]) -> None:
        """Change settings at runtime (``balance`` sets the current merchant balance)."""
        changes = dict(changes)
        balance = changes.pop("balance", None)
        # Validate the whole candidate first so that a bad value changes nothing.
        candidate = MobilePaySandboxConfig.model_validate({**self.config.model_dump(), **changes})
        if balance is not None:
            self.account.balance = int(balance)
        self.config = candidate
        self._sync_config()

    def _sync_config(self) -> None:
        self.clock.time_scale = self.config.time_scale
        self.limiter.limit = self.config.rate_limit_per_hour
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
        self.sessions.clear()
        self._held = None

    # -- authentication -----------------------------------------------------------------------

    def login(self, email: str, password: str) -> tuple[str, int] | None:
        """A new session token and its lifetime in seconds, or None for bad credentials."""
        config = self.config
        good_email = hmac.compare_digest(email.encode(), config.login_email.encode())
        good_password = hmac.compare_digest(password.encode(), config.login_password.encode())
        if not (good_email and good_password):
            return None
        now = self.clock.now()
        self.sessions = {t: exp for t, exp in self.sessions.items() if exp > now}
        token = "mps_" + secrets.token_hex(24)
        self.sessions[token] = now + config.session_ttl
        return token, int(config.session_ttl)

    def token_is_valid(self, token: str) -> bool:
        """The configured API token, or a session token that has not expired."""
        if hmac.compare_digest(token.encode(), self.config.api_token.encode()):
            return True
        expires_at = self.sessions.get(token)
        return expires_at is not None and expires_at > self.clock.now()

    # -- creation -----------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    def new_transfer(self, request: TransferRequest) -> Transaction | None:
        """Debit amount + fee and start the transfer; None when the balance is too low."""
        international = request.recipient_country is not None
        fee = transfer_fee(request.amount, international=international)
        if request.amount + fee > self.account.balance:
            return None
        self.account.debit(request.amount + fee)
        tx_id = f"TRF{next(self._ids)}"
        now = self._now_ms()
        tx = Transaction(
            id=tx_id,
            kind="transfer",
            amount=request.amount,
            fee=fee,
            description=self._stored(request.description),
            metadata=request.metadata,
            ledger_key=ledger_key(request.metadata, request.description, tx_id),
            created_ms=now,
            updated_ms=now,
            outcome=outcome_for(request.recipient_phone, self.config.outcomes),
            recipient_phone=request.recipient_phone,
            recipient_country=request.recipient_country,
        )
        self._register(tx, counterparty=tx.recipient_phone)
        self.tasks.spawn(self._settle(tx), key=tx.id)
        return tx

    def new_payment(self, request: QrPaymentRequest) -> Transaction:
        """Create a QR payment that waits for a payer until ``expires_ms``."""
        tx_id = f"PAY{next(self._ids)}"
        now = self._now_ms()
        tx = Transaction(
            id=tx_id,
            kind="payment",
            amount=request.amount,
            fee=0,
            description=self._stored(request.description),
            metadata=request.metadata,
            ledger_key=ledger_key(request.metadata, request.description, tx_id),
            created_ms=now,
            updated_ms=now,
            merchant_id=request.merchant_id,
            expires_ms=now + int(self.clock.scaled(self.config.payment_ttl) * 1000),
        )
        self._register(tx, counterparty=None)
        self.tasks.spawn(self._expire(tx), key=tx.id)
        return tx

    def _stored(self, description: str | None) -> str | None:
        """The description as kept: its first ``description_max_chars`` characters."""
        limit = self.config.description_max_chars
        if description is None or limit is None:
            return description
        return description[:limit]

    def _register(self, tx: Transaction, *, counterparty: str | None) -> None:
        self.transactions[tx.id] = tx
        self.ledger.record_execution(
            reference=tx.ledger_key,
            transaction_id=tx.id,
            kind=tx.kind,
            amount=tx.amount,
            currency="XOF",
            status=tx.status,
            counterparty=counterparty,
        )

    # -- lifecycle ----------------------------------------------------------------------------

    async def _settle(self, tx: Transaction) -> None:
        assert tx.outcome is not None
        # Half the delay in pending, then processing, so that pollers can observe both.
        half = self.config.settle_delay / 2
        await self.clock.sleep(half)
        self._set_status(tx, "processing")
        if tx.outcome.status is None:
            return
        await self.clock.sleep(self.config.settle_delay - half)
        self.finalize(tx, tx.outcome.status, tx.outcome.error_code)

    async def _expire(self, tx: Transaction) -> None:
        assert tx.expires_ms is not None
        await self.clock.sleep_real(tx.expires_ms / 1000 - self.clock.now())
        if tx.status == "pending":
            self.finalize(tx, "expired")

    def finalize(
        self,
        tx: Transaction,
        status: str,
        error_code: str | None = None,
        message: str | None = None,
        *,
        payer: str | None = None,
    ) -> None:
        """Move ``tx`` to a final status: balance effects, then its webhook (if any)."""
        previous = tx.status
        if status == "failed":
            tx.error_code = error_code or "OPERATOR_ERROR"
            tx.error_message = message or error_message(tx.error_code)
        else:
            tx.error_code = tx.error_message = None
        if tx.kind == "transfer" and status == "failed":
            self.account.credit(tx.amount + tx.fee)  # the transfer did not happen
        if tx.kind == "payment" and status == "received":
            tx.payer = payer
            if previous != "received":
                self.account.credit(tx.amount)  # collected funds, no payin fee (assumed)
        self._set_status(tx, status)
        self.tasks.cancel(tx.id)
        delivery = self._prepare_webhook(tx)
        if delivery is not None:
            self._emit(delivery, tx.id)

    def _set_status(self, tx: Transaction, status: str) -> None:
        tx.status = status
        tx.updated_ms = self._now_ms()
        entry = self.ledger.get(tx.ledger_key)
        # The entry mirrors its latest transaction, not an older duplicate settling late.
        if entry is not None and entry.transaction_id == tx.id:
            self.ledger.set_status(tx.ledger_key, status)

    # -- webhooks (envelope of M1; signature assumed, 3.4.7) -----------------------------------

    def _prepare_webhook(self, tx: Transaction) -> Delivery | None:
        url = self.config.webhook_url
        if not url:
            return None
        data: dict[str, Any]
        if tx.status == "completed":
            event = "transfer.completed"
            data = {
                "transfer_id": tx.id,
                "amount": tx.amount,
                "currency": "FCFA",
                "status": "completed",
            }
        elif tx.status == "received":
            event = "payment.received"
            data = {
                "payment_id": tx.id,
                "amount": tx.amount,
                "payer": tx.payer,
                "status": "received",
            }
        elif tx.status == "failed":
            event = "transaction.failed"
            data = {
                "transaction_id": tx.id,
                "error_code": tx.error_code,
                "error_message": tx.error_message,
            }
        else:
            return None  # no documented event for an expired QR payment (3.2)
        timestamp = datetime.fromtimestamp(int(self.clock.now()), tz=UTC)
        envelope = {"event": event, "timestamp": timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")}
        body = compact_json({**envelope, "data": data})
        return self.webhooks.prepare(url=url, event=event, body=body, transaction_id=tx.id)

    def _emit(self, delivery: Delivery, order_key: str) -> None:
        """Dispatch ``delivery``; ``reorder_webhooks`` holds one back behind the next one.

        A MOBILE-PAY transaction emits a single event, so reordering swaps the events of two
        transactions: the held delivery goes out right after the next webhook, or after
        the fault's ``seconds`` (default 2, real time) when no other webhook comes.
        """
        held = self._held
        if held is not None:
            self._held = None
            self.tasks.cancel("reorder-hold")
            self.webhooks.dispatch(delivery, held, order_key="reorder")
            return
        fault = self.faults.take_webhook("reorder_webhooks")
        if fault is None:
            self.webhooks.dispatch(delivery, order_key=order_key)
            return
        self._held = delivery
        self.tasks.spawn(
            self._release_held(fault.seconds or REORDER_HOLD_SECONDS), key="reorder-hold"
        )

    async def _release_held(self, seconds: float) -> None:
        await self.clock.sleep_real(seconds)
        held, self._held = self._held, None
        if held is not None:
            self.webhooks.dispatch(held, order_key="reorder")

    def _webhook_headers(self, delivery: Delivery, timestamp: int) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "MobilePay-Webhooks/1.0 (sandbox)",
        }
        if self.config.sign_webhooks:
            secret = self.config.webhook_secret.encode()
            signature = hmac.new(secret, delivery.body, hashlib.sha256).hexdigest()
            headers["X-MobilePay-Signature"] = signature
        return headers

    # -- queries and response bodies --------------------------------------------------------------

    def list_transactions(self, query: ListQuery) -> tuple[list[Transaction], int]:
        """One page of the transactions in the date range, newest first, and the total.
        Transactions younger than ``list_lag`` are not listed yet."""
        visible_ms = self._now_ms() - int(self.clock.scaled(self.config.list_lag) * 1000)
        matching = [
            tx
            for tx in reversed(self.transactions.values())
            if tx.created_ms <= visible_ms
            and (query.start_ms is None or tx.created_ms >= query.start_ms)
            and (query.end_ms is None or tx.created_ms <= query.end_ms)
        ]
        return matching[query.offset : query.offset + query.limit], len(matching)

    def _echoed(self, tx: Transaction) -> dict[str, Any] | None:
        return tx.metadata if self.config.echo_metadata else None

    def transfer_created_body(self, tx: Transaction) -> dict[str, Any]:
        """201 body of ``POST /transfers/*`` (shape assumed, 3.4.2)."""
        body: dict[str, Any] = {
            "transfer_id": tx.id,
            "status": tx.status,
            "amount": tx.amount,
            "currency": "XOF",
            "recipient_phone": tx.recipient_phone,
        }
        if tx.recipient_country is not None:
            body["recipient_country"] = tx.recipient_country
        body.update(
            {
                "description": tx.description,
                "metadata": self._echoed(tx),
                "reference": None,
                "fee": tx.fee,
                "created_at": iso_ms(tx.created_ms),
            }
        )
        return body

    def payment_created_body(self, tx: Transaction, base_url: str) -> dict[str, Any]:
        """201 body of ``POST /payments/qr`` (shape assumed, 3.4.2)."""
        assert tx.expires_ms is not None
        return {
            "payment_id": tx.id,
            "qr_code": f"{base_url.rstrip('/')}/qr/{tx.id}",
            "amount": tx.amount,
            "currency": "XOF",
            "status": tx.status,
            "description": tx.description,
            "merchant_id": tx.merchant_id,
            "metadata": self._echoed(tx),
            "expires_at": iso_ms(tx.expires_ms),
            "created_at": iso_ms(tx.created_ms),
        }

    def list_item(self, tx: Transaction) -> dict[str, Any]:
        """One item of ``GET /transactions`` (shape assumed, 3.4.2; ``FCFA`` quirk of 3.2)."""
        item: dict[str, Any] = {
            "id": tx.id,
            "type": tx.kind,
            "status": tx.status,
            "amount": tx.amount,
            "currency": "FCFA" if self.config.fcfa_currency else "XOF",
            "description": tx.description,
            "metadata": self._echoed(tx),
        }
        if tx.kind == "transfer":
            item["recipient_phone"] = tx.recipient_phone
            if tx.recipient_country is not None:
                item["recipient_country"] = tx.recipient_country
            item["fee"] = tx.fee
        else:
            item["payer"] = tx.payer
            item["merchant_id"] = tx.merchant_id
            item["expires_at"] = iso_ms(tx.expires_ms) if tx.expires_ms is not None else None
        item.update(
            {
                "error_code": tx.error_code,
                "error_message": tx.error_message,
                "created_at": iso_ms(tx.created_ms),
                "updated_at": iso_ms(tx.updated_ms),
            }
        )
        return item
