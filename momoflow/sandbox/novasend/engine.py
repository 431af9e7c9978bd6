"""State and lifecycles of the NovaSend simulator: payins, payouts, refunds, balances,
settlement and webhooks. The JSON shapes live in :mod:`momoflow.sandbox.novasend.payloads`.

Every transfer has three status layers (providers.md 2.4): the session ``status``, the
customer ``confirmationStatus`` and the settlement ``transaction.status``. The engine also
keeps one ``state`` per transfer, the vocabulary of the ledger and of the control API:
``processing`` → ``pending`` (in the core system) → ``completed`` | ``failed`` |
``declined`` | ``expired``.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import string
import uuid
from typing import Any

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
from .catalog import COUNTRIES, outcome_for, payin_fee, payout_fee
from .config import NovaSendSandboxConfig
from .payloads import refund_body, transfer_body
from .transfers import FINAL_STATES, Refund, Transfer
from .wire import TransferRequest

__all__ = [
    "FINAL_STATES",
    "OPERATIONS",
    "NovaSendEngine",
    "NovaSendSandboxConfig",
    "Refund",
    "Transfer",
]

#: Operation names for fault injection and the request log.
OPERATIONS = (
    "payin.sessions",
    "payin.direct",
    "payout.wallet",
    "payout.direct",
    "payin.status",
    "payout.status",
    "refund",
    "balance",
)


class NovaSendEngine:
    """Everything one simulator process knows; all of it is in memory."""

    def __init__(self, config: NovaSendSandboxConfig) -> None:
        self.initial_config = config.model_copy(deep=True)
        self.config = config.model_copy(deep=True)
        self.clock = Clock(time_scale=config.time_scale)
        self.tasks = TaskSupervisor()
        self.faults = FaultRegistry(OPERATIONS)
        self.ledger = Ledger()
        self.accounts = {
            "XOF": MerchantAccount(balance=config.balance, currency="XOF"),
            "XAF": MerchantAccount(balance=config.balance_xaf, currency="XAF"),
        }
        # Money debited at acceptance whose transfer is not final yet: it is still part of
        # `balance` but not of `availableBalance` [DOC N12].
        self.in_flight = {"XOF": 0, "XAF": 0}
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
            # [DOC N9] anything but 200 (or no answer within 5 s) is retried.
            is_success=lambda status: status == 200,
        )
        self.transfers: dict[str, Transfer] = {}
        self.by_reference: dict[str, Transfer] = {}
        self.by_tx_reference: dict[str, Transfer] = {}
        #: Older-API sessions by their system reference, the one their status path takes.
        self.by_system_reference: dict[str, Transfer] = {}
        self.by_link: dict[str, Transfer] = {}
        self.refunds: dict[str, Refund] = {}
        self._rng = random.Random(config.seed)
        self.wallet_references = {c: f"wa_{self._token(20)}" for c in self.accounts}

    # -- configuration and reset -------------------------------------------------------------

    def apply_config(self, changes: dict[str, Any]) -> None:
        """Change settings at runtime; ``balance``/``balance_xaf`` set the current wallets."""
        candidate = NovaSendSandboxConfig.model_validate({**self.config.model_dump(), **changes})
        if "balance" in changes:
            self.accounts["XOF"].balance = candidate.balance
        if "balance_xaf" in changes:
            self.accounts["XAF"].balance = candidate.balance_xaf
        self.config = candidate
        self._sync_config()

    def _sync_config(self) -> None:
        self.clock.time_scale = self.config.time_scale
        self.limiter.limit = self.config.rate_limit_per_minute
        self.limiter.window = self.config.rate_limit_window
        self.idempotency.ttl = self.config.idempotency_ttl
        self.webhooks.retry_schedule = tuple(self.config.webhook_retry_schedule)

    async def reset(self) -> None:
        """Forget all state and restore the startup configuration and balances."""
        await self.tasks.cancel_all()
        self.config = self.initial_config.model_copy(deep=True)
        self._sync_config()
        self.accounts["XOF"].balance = self.config.balance
        self.accounts["XAF"].balance = self.config.balance_xaf
        self.in_flight = {"XOF": 0, "XAF": 0}
        for store in (self.faults, self.ledger, self.limiter, self.idempotency, self.requests):
            store.clear()
        self.webhooks.clear()
        for index in (
            self.transfers,
            self.by_reference,
            self.by_tx_reference,
            self.by_system_reference,
            self.by_link,
        ):
            index.clear()
        self.refunds.clear()

    # -- lookups ------------------------------------------------------------------------------

    def _token(self, length: int, alphabet: str = string.ascii_lowercase + string.digits) -> str:
        return "".join(self._rng.choices(alphabet, k=length))

    def find(self, key: str) -> Transfer | Refund | None:
        """A transfer by merchant reference, ``pr_`` id, ``tr_`` core reference or (older
        API sessions) system reference; a refund by ``rf_`` id or its ledger key."""
        found: Transfer | Refund | None = (
            self.transfers.get(key)
            or self.by_reference.get(key)
            or self.by_tx_reference.get(key)
            or self.by_system_reference.get(key)
        )
        if found is None:
            found = self.refunds.get(key)
        if found is None:
            found = next((r for r in self.refunds.values() if r.ledger_key == key), None)
        return found

    def reference_taken(self, reference: str) -> bool:
        """Whether a merchant reference was already used (payins, payouts and refunds).

        Always ``False`` with ``idempotency_key_only``: there nothing but the idempotency key
        may stop a second transfer, so a used reference under a new key executes again."""
        if self.config.idempotency_key_only:
            return False
        return reference in self.by_reference or self.ledger.get(reference) is not None

    # -- creation -----------------------------------------------------------------------------

    def create_transfer(
        self, request: TransferRequest, base_url: str, *, older: bool = False
    ) -> Transfer:
        """Accept a checked request: debit (payouts), record the execution, start settling.

        ``older`` makes a wallet session of the older payin API (seed 004), known to the
        merchant by a system reference ``tr_…`` generated here.
        Raises :class:`InsufficientBalance` (nothing changed) when a payout does not fit.
        """
        now = self.clock.now()
        currency = COUNTRIES[request.country].currency
        fee = payin_fee(request.amount) if request.kind == "payin" else payout_fee(request.amount)
        if request.kind == "payout":
            self.accounts[currency].debit(request.amount + fee)
            self.in_flight[currency] += request.amount + fee
        tx = Transfer(
            id=f"pr_{self._token(26)}",
            kind=request.kind,
            direct=request.direct,
            reference=request.reference,
            amount=request.amount,
            fee=fee,
            currency=currency,
            country=request.country,
            provider=request.provider,
            msisdn=request.msisdn,
            customer_name=request.customer_name,
            outcome=outcome_for(request.msisdn, request.scenario, self.config.outcomes),
            created_at=now,
            older=older,
            account_id=request.account_id,
        )
        if older:
            tx.system_reference = f"tr_{self._token(26)}"
            self.by_system_reference[tx.system_reference] = tx
        if tx.kind == "payin":
            tx.expires_at = now + self.clock.scaled(self.config.payment_ttl)
            # Wallet sessions get NovaSend's hosted link [DOC N4]; among direct pushes only
            # Wave answers with a link (N9 example), the other operators push a USSD prompt.
            if not tx.direct or tx.provider == "WAVE":
                tx.link_code = self._token(6, string.ascii_uppercase + string.digits)
                tx.payment_url = f"{base_url.rstrip('/')}/link/{tx.link_code}"
                self.by_link[tx.link_code] = tx
        else:
            tx.confirmation_status = "accepted"  # payouts need no confirmation [DOC N7]
        self.transfers[tx.id] = tx
        self.by_reference[tx.reference] = tx
        self.ledger.record_execution(
            reference=tx.reference,
            transaction_id=tx.system_reference or tx.id,
            kind=tx.kind,
            amount=tx.amount,
            currency=tx.currency,
            status=tx.state,
            counterparty=tx.msisdn,
        )
        settle = self._settle_payin(tx) if tx.kind == "payin" else self._settle_payout(tx)
        self.tasks.spawn(settle, key=tx.id)
        return tx

    def create_refund(
        self, payin: Transfer, *, ledger_key: str | None, reason: str | None
    ) -> Refund:
        """Accept a full refund of ``payin`` (checked by the caller); debits the wallet.

        Raises :class:`InsufficientBalance` (nothing changed) when the wallet is short.
        """
        self.accounts[payin.currency].debit(payin.amount)
        self.in_flight[payin.currency] += payin.amount
        refund_id = f"rf_{self._token(26)}"
        refund = Refund(
            id=refund_id,
            payin=payin,
            ledger_key=ledger_key or refund_id,
            reason=reason,
            amount=payin.amount,
            fee=0,  # simulator-defined: NovaSend's refund fee is undocumented
            currency=payin.currency,
            refund_type=self.config.refund_type,
            created_at=self.clock.now(),
        )
        payin.refund = refund
        self.refunds[refund.id] = refund
        self.ledger.record_execution(
            reference=refund.ledger_key,
            transaction_id=refund.id,
            kind="refund",
            amount=refund.amount,
            currency=refund.currency,
            status=refund.state,
            counterparty=payin.msisdn,
        )
        self.tasks.spawn(self._settle_refund(refund), key=refund.id)
        return refund

    # -- lifecycles ---------------------------------------------------------------------------

    async def _settle_payin(self, tx: Transfer) -> None:
        plan = tx.outcome.payin
        third = self.config.settle_delay / 3
        await self.clock.sleep(third)
        tx.confirmation_status = "pending"  # the customer has been prompted
        if plan == "expired":
            assert tx.expires_at is not None
            await self.clock.sleep_real(tx.expires_at - self.clock.now())
            self.expire(tx)
            return
        await self.clock.sleep(third)
        if plan == "declined":
            self.decline(tx, tx.outcome.payin_error)
            return
        self.confirm(tx, will_settle=plan != "pending")
        if plan == "pending":
            return
        await self.clock.sleep(third)
        if plan == "completed":
            self.complete(tx)
            return
        self.fail(tx, tx.outcome.payin_error or "transaction_error")
        if plan == "late_reversal":
            self.tasks.spawn(self._late_reversal(tx), key=tx.id)

    async def _late_reversal(self, tx: Transfer) -> None:
        await self.clock.sleep(self.config.effective_late_reversal_delay)
        if tx.state == "failed":
            self.complete(tx)

    async def _settle_payout(self, tx: Transfer) -> None:
        half = self.config.settle_delay / 2
        await self.clock.sleep(half)
        self._enter_core(tx)
        if tx.outcome.payout == "pending":
            return
        await self.clock.sleep(self.config.settle_delay - half)
        if tx.outcome.payout == "completed":
            self.complete(tx)
        else:
            self.fail(tx, tx.outcome.payout_error or "transaction_error")

    async def _settle_refund(self, refund: Refund) -> None:
        half = self.config.settle_delay / 2
        await self.clock.sleep(half)
        refund.state = "pending"
        refund.tx_reference = refund.tx_reference or f"tr_{self._token(26)}"
        self.ledger.set_status(refund.ledger_key, refund.state)
        await self.clock.sleep(self.config.settle_delay - half)
        self.finish_refund(refund, "completed")

    # -- transitions --------------------------------------------------------------------------

    def _enter_core(self, tx: Transfer) -> None:
        """The core system has the transaction: ``transaction`` appears as ``pending``."""
        if tx.tx_reference is None:
            tx.tx_reference = f"tr_{self._token(26)}"
            self.by_tx_reference[tx.tx_reference] = tx
        if tx.settlement is None:
            tx.settlement = "pending"
            self._set_state(tx, "pending")

    def confirm(self, tx: Transfer, *, will_settle: bool) -> None:
        """The customer accepted the payin: ``processed``/``accepted``, webhook
        ``payin.confirmed`` (held back to be sent after the final one when reordering)."""
        tx.status = "processed"
        tx.confirmation_status = "accepted"
        self._enter_core(tx)
        delivery = self._prepare_webhook(tx, "payin.confirmed")
        if delivery is None:
            return
        if will_settle and self.faults.take_webhook("reorder_webhooks") is not None:
            tx.held_webhooks.append(delivery)
        else:
            self.webhooks.dispatch(delivery, order_key=tx.id)

    def complete(self, tx: Transfer) -> None:
        """Settled successfully (also the late reversal of a failed payin)."""
        was_final = tx.is_final
        tx.status = "processed"
        if tx.kind == "payin":
            tx.confirmation_status = "accepted"
            self.accounts[tx.currency].credit(tx.amount)
        elif not was_final:
            self.in_flight[tx.currency] -= tx.charged_amount
        tx.failure_code = tx.failure_message = None
        self._final(tx, "completed", "completed")

    def fail(self, tx: Transfer, code: str, text: str | None = None) -> None:
        """Settled as failed; a payout gives the gross amount back [DOC N8]."""
        tx.status = "processed"
        if tx.kind == "payout" and not tx.is_final:
            self.in_flight[tx.currency] -= tx.charged_amount
            self.accounts[tx.currency].credit(tx.charged_amount)
        tx.failure_code, tx.failure_message = code, text
        self._final(tx, "failed", "failed")

    def decline(self, tx: Transfer, code: str | None, text: str | None = None) -> None:
        """The customer refused: ``processed`` + ``declined``, transaction ``failed`` [DOC N3]."""
        tx.status = "processed"
        tx.confirmation_status = "declined"
        tx.failure_code, tx.failure_message = code or "transaction_declined", text
        self._final(tx, "declined", "failed")

    def expire(self, tx: Transfer) -> None:
        """Never confirmed: session and confirmation ``expired``, no ``transaction``."""
        tx.status = "expired"
        tx.confirmation_status = "expired"
        if tx.settlement is not None:  # forced expiry of a confirmed payin
            tx.settlement = "failed"
            tx.processed_at = self.clock.now()
        self._set_state(tx, "expired")
        self.tasks.cancel(tx.id)
        self._dispatch_final(tx, "payin.expired")

    def _final(self, tx: Transfer, state: str, settlement: str) -> None:
        self._enter_core(tx)
        tx.settlement = settlement
        tx.processed_at = self.clock.now()
        self._set_state(tx, state)
        self.tasks.cancel(tx.id)
        self._dispatch_final(tx, f"{tx.kind}.{state}")

    def _dispatch_final(self, tx: Transfer, event: str) -> None:
        final = self._prepare_webhook(tx, event)
        held, tx.held_webhooks = tx.held_webhooks, []
        self.webhooks.dispatch(*([final] if final else []), *held, order_key=tx.id)

    def finish_refund(self, refund: Refund, state: str, code: str | None = None) -> None:
        """Complete or fail a refund; a failed refund gives the amount back."""
        self.in_flight[refund.currency] -= refund.amount
        if state == "failed":
            self.accounts[refund.currency].credit(refund.amount)
            refund.failure_code = code or "transaction_error"
        refund.state = state
        refund.tx_reference = refund.tx_reference or f"tr_{self._token(26)}"
        refund.processed_at = self.clock.now()
        self.ledger.set_status(refund.ledger_key, state)
        self.tasks.cancel(refund.id)
        delivery = self._prepare_refund_webhook(refund, f"refund.{state}")
        if delivery is not None:
            self.webhooks.dispatch(delivery, order_key=refund.id)

    def _set_state(self, tx: Transfer, state: str) -> None:
        tx.state = state
        # A reference executed twice (``idempotency_key_only``) shows its latest transfer.
        if self.by_reference.get(tx.reference) is tx:
            self.ledger.set_status(tx.reference, state)

    # -- webhooks (providers.md 2.8, 2.11.5) ---------------------------------------------------

    def _event_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _prepare_webhook(self, tx: Transfer, event: str) -> Delivery | None:
        url = self.config.webhook_url
        if not url:
            return None
        payload = {"eventId": self._event_id(), "event": event, **transfer_body(tx, "en")}
        if not tx.older:
            payload["fees"] = tx.fee  # the N9 example names the fee `fees`
        body = compact_json(payload, ascii_only=True)
        return self.webhooks.prepare(url=url, event=event, body=body, transaction_id=tx.id)

    def _prepare_refund_webhook(self, refund: Refund, event: str) -> Delivery | None:
        url = self.config.webhook_url
        if not url:
            return None
        payload = {"eventId": self._event_id(), "event": event, **refund_body(refund, "en")}
        body = compact_json(payload, ascii_only=True)
        return self.webhooks.prepare(url=url, event=event, body=body, transaction_id=refund.id)

    def _webhook_headers(self, delivery: Delivery, timestamp: int) -> dict[str, str]:
        secret = self.config.webhook_secret.encode()
        signature = hmac.new(secret, delivery.body, hashlib.sha256).hexdigest()
        return {
            "Content-Type": "application/json",
            "User-Agent": "NovaSend-Webhooks/1.0 (sandbox)",
            "X-Signature-Value": signature,
        }

    # -- balances -----------------------------------------------------------------------------

    def balances(self) -> list[dict[str, Any]]:
        """``GET /v1/balance`` entries [DOC N12]."""
        return [
            {
                "balance": account.balance + self.in_flight[currency],
                "availableBalance": account.balance,
                "reference": self.wallet_references[currency],
                "currency": currency,
            }
            for currency, account in self.accounts.items()
        ]
