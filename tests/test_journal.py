"""The journal's rules (pure: no database): every entry balances, and the entries a state
implies only grow along a transaction's life, so a write seen late or twice is harmless.
And which store errors count as "unavailable" (retried) rather than "refused" (final)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from momoflow.models import (
    Country,
    Failure,
    Operator,
    PayinMode,
    PayinState,
    PayoutState,
    ProviderName,
    RefundState,
    Resolution,
    ResolutionOutcome,
    TransactionState,
    TransactionStatus,
)
from momoflow.money import Currency
from momoflow.records.journal import balanced, entries_for
from momoflow.records.store import is_unavailable

AT = datetime(2026, 12, 1, tzinfo=UTC)
MISMATCH = Failure(code="amount_mismatch", message="153 of 300")


def payout(**changes: object) -> PayoutState:
    base = PayoutState(
        workflow_id="payout-acme-J",
        merchant="acme",
        reference="J",
        provider=ProviderName.NOVASEND,
        country=Country.CI,
        amount=300,
        currency=Currency.XOF,
        operator=Operator.ORANGE_MONEY,
        recipient_phone_masked="+225******01",
        created_at=AT,
        updated_at=AT,
    )
    return base.model_copy(update=changes)


def payin(**changes: object) -> PayinState:
    base = PayinState(
        workflow_id="payin-acme-J",
        merchant="acme",
        reference="J",
        provider=ProviderName.NOVASEND,
        country=Country.CI,
        amount=300,
        currency=Currency.XOF,
        mode=PayinMode.DIRECT,
        created_at=AT,
        updated_at=AT,
    )
    return base.model_copy(update=changes)


def refund(**changes: object) -> RefundState:
    base = RefundState(
        workflow_id="refund-payin-acme-J",
        merchant="acme",
        reference="J",
        payin_workflow_id="payin-acme-J",
        reason="cancelled",
        provider=ProviderName.NOVASEND,
        country=Country.CI,
        amount=300,
        currency=Currency.XOF,
        created_at=AT,
        updated_at=AT,
    )
    return base.model_copy(update=changes)


def resolved(outcome: ResolutionOutcome) -> Resolution:
    return Resolution(
        outcome=outcome,
        reason="statement",
        operator="fatou",
        resolved_at=AT,
        previous_failure=MISMATCH,
    )


def totals(kind: str, state: TransactionState) -> dict[str, int]:
    out: dict[str, int] = {}
    for entry in entries_for(kind, state):
        assert balanced(entry), entry
        for line in entry.lines:
            out[line.account] = out.get(line.account, 0) + line.amount
    return {k: v for k, v in out.items() if v}


FLOAT, FEES, SUSPENSE = (
    "provider:novasend:float",
    "provider:novasend:fees",
    "provider:novasend:suspense",
)


@pytest.mark.parametrize(
    ("kind", "state", "expected"),
    [
        ("payout", payout(status=TransactionStatus.PENDING), {}),
        ("payout", payout(status=TransactionStatus.FAILED), {}),
        ("payout", payout(status=TransactionStatus.RECONCILING), {}),
        (
            "payout",
            payout(status=TransactionStatus.SUCCEEDED, fees=15),
            {"recipients": 300, FEES: 15, FLOAT: -315},
        ),
        (
            "payout",
            payout(status=TransactionStatus.SUCCEEDED, fees=15, net_amount=285),
            {"recipients": 285, FEES: 15, FLOAT: -300},
        ),
        (
            "payin",
            payin(status=TransactionStatus.SUCCEEDED, fees=6),
            {"customers": -300, FLOAT: 294, FEES: 6},
        ),
        ("payin", payin(status=TransactionStatus.FAILED), {}),
        (
            "payin",
            payin(status=TransactionStatus.LATE_SUCCEEDED),
            {"customers": -300, FLOAT: 300},
        ),
        (
            "refund",
            refund(status=TransactionStatus.SUCCEEDED, fees=3),
            {"customers": 300, FEES: 3, FLOAT: -303},
        ),
        (
            "payout",
            payout(status=TransactionStatus.RECONCILING, failure=MISMATCH, provider_amount=153),
            {SUSPENSE: 153, FLOAT: -153},
        ),
        (
            "payout",
            payout(
                status=TransactionStatus.SUCCEEDED,
                provider_amount=153,
                resolution=resolved(ResolutionOutcome.PAID),
            ),
            {"recipients": 153, FLOAT: -153},
        ),
        (
            "payout",
            payout(
                status=TransactionStatus.FAILED,
                provider_amount=153,
                failure=Failure(code="operator_marked_failed", message="no"),
                resolution=resolved(ResolutionOutcome.FAILED),
            ),
            {},
        ),
        (
            "payin",
            payin(status=TransactionStatus.RECONCILING, failure=MISMATCH, provider_amount=153),
            {FLOAT: 153, SUSPENSE: -153},
        ),
        (
            "payin",
            payin(
                status=TransactionStatus.SUCCEEDED,
                provider_amount=153,
                resolution=resolved(ResolutionOutcome.PAID),
            ),
            {FLOAT: 153, "customers": -153},
        ),
    ],
)
def test_each_state_implies_balanced_entries_with_these_net_effects(
    kind: str, state: TransactionState, expected: dict[str, int]
) -> None:
    assert totals(kind, state) == expected


def test_the_entries_only_grow_along_a_life_so_a_late_or_repeated_write_is_harmless() -> None:
    lives = [
        (
            "payout",
            [
                payout(status=TransactionStatus.PENDING),
                payout(status=TransactionStatus.RECONCILING, failure=MISMATCH, provider_amount=9),
                payout(
                    status=TransactionStatus.SUCCEEDED,
                    provider_amount=9,
                    resolution=resolved(ResolutionOutcome.PAID),
                ),
            ],
        ),
        (
            "payin",
            [
                payin(status=TransactionStatus.PENDING),
                payin(status=TransactionStatus.FAILED),
                payin(status=TransactionStatus.LATE_SUCCEEDED, fees=4),
            ],
        ),
    ]
    for kind, states in lives:
        keys = [{e.key for e in entries_for(kind, s)} for s in states]
        for earlier, later in zip(keys, keys[1:], strict=False):
            assert earlier <= later, (kind, keys)


# ------------------------------------------------------------------ store errors


class _Refused(Exception):
    """What SQLAlchemy's asyncpg adapter raises: the server's SQLSTATE on the error."""

    def __init__(self, sqlstate: str | None, cause: BaseException | None = None) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate
        self.__cause__ = cause


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        # Starting up after a crash, shut down, crashed, too many connections, I/O error,
        # serialization failure, deadlock: a retry can cure them.
        *((_Refused(code), True) for code in ("57P03", "57P01", "57P02", "53300", "58030")),
        (_Refused("40001"), True),
        (_Refused("40P01"), True),
        (_Refused("08006"), True),
        # The connection died mid-statement: asyncpg's error has no SQLSTATE.
        (_Refused(None, asyncpg.exceptions.ConnectionDoesNotExistError("closed")), True),
        (_Refused(None, ConnectionResetError()), True),
        # A wrong statement or a constraint: no retry cures it.
        (_Refused("42601"), False),
        (_Refused("23505"), False),
        (_Refused(None, ValueError("bad")), False),
    ],
)
def test_only_errors_a_retry_can_cure_count_as_the_store_being_unavailable(
    error: _Refused, retry: bool
) -> None:
    assert is_unavailable(DBAPIError("SELECT 1", {}, error)) is retry
