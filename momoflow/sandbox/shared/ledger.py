"""The execution ledger and the merchant account of a simulator.

The ledger answers the one question the orchestrator's tests care most about: *how many
times did money actually move for this merchant reference?* Every simulator records an
execution exactly when it accepts a transfer and debits or charges someone; replays,
retries and duplicate deliveries must leave ``executions`` at 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["InsufficientBalance", "Ledger", "LedgerEntry", "MerchantAccount"]


@dataclass
class LedgerEntry:
    """One merchant reference and the transfer(s) executed for it."""

    transaction_id: str
    reference: str
    kind: str
    amount: int
    currency: str
    status: str
    executions: int
    counterparty: str | None
    #: Every transaction executed for the reference, oldest first (``transaction_id`` is the
    #: latest). More than one id is exactly the double payment the tests look for.
    transaction_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with snake_case keys (the provider decides the public field names)."""
        return asdict(self)


class Ledger:
    """Execution ledger keyed by merchant reference."""

    def __init__(self) -> None:
        self._entries: dict[str, LedgerEntry] = {}

    def record_execution(
        self,
        *,
        reference: str,
        transaction_id: str,
        kind: str,
        amount: int,
        currency: str,
        status: str,
        counterparty: str | None,
    ) -> LedgerEntry:
        """Record that money moved for ``reference``; a second call increments ``executions``."""
        entry = self._entries.get(reference)
        if entry is None:
            entry = LedgerEntry(
                transaction_id=transaction_id,
                reference=reference,
                kind=kind,
                amount=amount,
                currency=currency,
                status=status,
                executions=1,
                counterparty=counterparty,
            )
            self._entries[reference] = entry
        else:
            entry.executions += 1
            entry.transaction_id = transaction_id
            entry.status = status
        entry.transaction_ids.append(transaction_id)
        return entry

    def set_status(self, reference: str, status: str) -> None:
        """Mirror the latest status of the transfer behind ``reference``."""
        entry = self._entries.get(reference)
        if entry is not None:
            entry.status = status

    def get(self, reference: str) -> LedgerEntry | None:
        """The entry for ``reference``, or None."""
        return self._entries.get(reference)

    def entries(self) -> list[LedgerEntry]:
        """All entries, in execution order."""
        return list(self._entries.values())

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()


class InsufficientBalance(Exception):
    """Raised when a debit exceeds the available balance."""


class MerchantAccount:
    """The merchant's balance at the provider, in integer minor units."""

    def __init__(self, *, balance: int, currency: str) -> None:
        self.balance = balance
        self.currency = currency

    def debit(self, amount: int) -> None:
        """Take ``amount`` out, or raise :class:`InsufficientBalance` and change nothing."""
        if amount < 0:
            raise ValueError("amount must be >= 0")
        if amount > self.balance:
            raise InsufficientBalance(f"balance {self.balance} < {amount}")
        self.balance -= amount

    def credit(self, amount: int) -> None:
        """Put ``amount`` back in (a failed payout) or add collected funds (a payin)."""
        if amount < 0:
            raise ValueError("amount must be >= 0")
        self.balance += amount
