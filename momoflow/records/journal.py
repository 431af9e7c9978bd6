"""The double-entry journal, derived from a transaction's state (pure: no I/O).

A transaction's entries are a function of its state: :func:`entries_for` returns every
entry the state implies, each under a key unique to the transaction. The store inserts the
ones it does not hold yet, so a repeated, replayed or reordered write adds nothing, and a
state seen only at its end (a write that came late) still yields every entry on the way.

Accounts (amounts in minor units; a debit is positive, a credit negative):

* ``provider:{p}:float`` - the money momoflow's account at provider ``p`` holds;
* ``provider:{p}:fees`` - fees that provider took;
* ``recipients`` - money paid out to mobile wallets;
* ``customers`` - money customers paid in (and got back in refunds);
* ``provider:{p}:suspense`` - money a provider says it moved for another amount than
  asked (``amount_mismatch``), held until an operator resolves it.

Every entry's lines sum to zero in its one currency (:func:`balanced`).

Assumptions, each written down in ``docs/providers.md``: a payout's fee is taken from the
float on top of the amount, unless the provider names a ``net_amount`` (then the fee is
inside the amount); a payin's fee is taken from the money received; a refund's fee is
taken from the float on top of the amount refunded.
"""

from __future__ import annotations

from dataclasses import dataclass

from momoflow.models import TransactionState, TransactionStatus

__all__ = ["JournalEntry", "JournalLine", "balanced", "entries_for"]

#: ``failure.code`` of an amount mismatch (as ``workflows.base.AMOUNT_MISMATCH_CODE``).
AMOUNT_MISMATCH = "amount_mismatch"


@dataclass(frozen=True)
class JournalLine:
    """One side of an entry."""

    account: str
    amount: int
    provider: str | None = None


@dataclass(frozen=True)
class JournalEntry:
    """A balanced set of lines, in one currency, keyed within its transaction."""

    key: str
    description: str
    currency: str
    lines: tuple[JournalLine, ...]


def balanced(entry: JournalEntry) -> bool:
    """True when the entry's lines sum to zero."""
    return sum(line.amount for line in entry.lines) == 0


def _accounts(provider: str) -> tuple[str, str, str]:
    return (
        f"provider:{provider}:float",
        f"provider:{provider}:fees",
        f"provider:{provider}:suspense",
    )


def entries_for(kind: str, state: TransactionState) -> list[JournalEntry]:
    """Every journal entry ``state`` implies (see the module docstring)."""
    provider = state.provider.value
    currency = state.currency.value
    float_, fees_account, suspense = _accounts(provider)
    status = state.status
    entries: list[JournalEntry] = []

    def entry(key: str, description: str, *lines: tuple[str, int]) -> None:
        made = JournalEntry(
            key=key,
            description=description,
            currency=currency,
            lines=tuple(
                JournalLine(account, amount, provider if account.startswith("provider:") else None)
                for account, amount in lines
                if amount != 0
            ),
        )
        assert balanced(made), made
        if made.lines:
            entries.append(made)

    mismatch_amount = _mismatch_amount(state)
    if mismatch_amount is not None:
        # The provider says it moved ``mismatch_amount``: hold it in suspense.
        if kind == "payin":
            entry(
                "amount_mismatch",
                f"payin {state.reference}: provider reports {mismatch_amount}, held",
                (float_, mismatch_amount),
                (suspense, -mismatch_amount),
            )
        else:
            entry(
                "amount_mismatch",
                f"{kind} {state.reference}: provider reports {mismatch_amount}, held",
                (suspense, mismatch_amount),
                (float_, -mismatch_amount),
            )
        if status is TransactionStatus.SUCCEEDED:
            counterpart = "customers" if kind == "payin" else "recipients"
            sign = -1 if kind == "payin" else 1
            entry(
                "amount_mismatch_cleared",
                f"{kind} {state.reference}: resolved as paid for {mismatch_amount}",
                (counterpart, sign * mismatch_amount),
                (suspense, -sign * mismatch_amount),
            )
        elif status is TransactionStatus.FAILED:
            sign = 1 if kind == "payin" else -1
            entry(
                "amount_mismatch_voided",
                f"{kind} {state.reference}: resolved as not paid",
                (suspense, sign * mismatch_amount),
                (float_, -sign * mismatch_amount),
            )
        return entries

    if status not in (TransactionStatus.SUCCEEDED, TransactionStatus.LATE_SUCCEEDED):
        return entries
    amount = state.amount
    fees = state.fees or 0
    if kind == "payout":
        net = getattr(state, "net_amount", None)
        if net is not None:
            entry(
                "settled",
                f"payout {state.reference} to a recipient",
                ("recipients", net),
                (fees_account, amount - net),
                (float_, -amount),
            )
        else:
            entry(
                "settled",
                f"payout {state.reference} to a recipient",
                ("recipients", amount),
                (fees_account, fees),
                (float_, -(amount + fees)),
            )
    elif kind == "payin":
        key = "late_success" if status is TransactionStatus.LATE_SUCCEEDED else "settled"
        what = "late success (correction)" if key == "late_success" else "received"
        entry(
            key,
            f"payin {state.reference} {what}",
            ("customers", -amount),
            (float_, amount - fees),
            (fees_account, fees),
        )
    elif kind == "refund":
        entry(
            "settled",
            f"refund of payin {state.reference}",
            ("customers", amount),
            (fees_account, fees),
            (float_, -(amount + fees)),
        )
    return entries


def _mismatch_amount(state: TransactionState) -> int | None:
    """The amount a provider reported for a success of another amount, when the transaction
    is (or was, until an operator resolved it) held for that reason."""
    failure = state.failure
    if state.resolution is not None:
        failure = state.resolution.previous_failure
    if failure is None or failure.code != AMOUNT_MISMATCH or state.provider_amount is None:
        return None
    return state.provider_amount
