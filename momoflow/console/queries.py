"""The console's own reads of the record store (SQLAlchemy Core on ``RecordStore.engine``),
for what :class:`~momoflow.records.store.RecordStore` does not answer itself.

Every read here is scoped to one merchant: the console never shows another merchant's
transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, cast, func, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from momoflow.models import TransactionStatus
from momoflow.records.schema import transactions
from momoflow.records.store import RecordStore

__all__ = ["InDoubt", "in_doubt_count", "in_doubt_page", "merchant_workflows"]


@dataclass(frozen=True)
class InDoubt:
    """One reconciling transaction of the queue, as the record store holds it."""

    id: int
    kind: str
    reference: str
    workflow_id: str
    provider: str
    amount: int
    currency: str
    status: str
    #: When it went reconciling (else when it was created): the queue's order.
    since: datetime
    created_at: datetime
    updated_at: datetime
    #: The state ``GET /v1/{kind}s/{reference}`` answers.
    state: dict[str, Any]


def _in_doubt_since() -> ColumnElement[datetime]:
    """When a record went ``reconciling`` (its state's ``reconciling_since``), else when it
    was created: the queue's order, oldest first."""
    since = cast(transactions.c.state["reconciling_since"].astext, DateTime(timezone=True))
    return func.coalesce(since, transactions.c.created_at)


def _in_doubt(merchant: str) -> list[ColumnElement[bool]]:
    return [
        transactions.c.merchant == merchant,
        transactions.c.status == TransactionStatus.RECONCILING.value,
        transactions.c.started.is_(True),
    ]


async def in_doubt_page(
    store: RecordStore, merchant: str, *, limit: int, after_id: int | None = None
) -> tuple[list[InDoubt], bool]:
    """``merchant``'s reconciling payouts, payins and refunds, oldest first (by when they
    went reconciling, else when they were created), ``limit`` at a time after the record
    ``after_id`` (its place in the order, even if it has left the queue since); whether
    more follow. ``LookupError`` when ``after_id`` is not one of the merchant's records."""
    since = _in_doubt_since()
    query = select(transactions, since.label("since")).where(*_in_doubt(merchant))
    async with store.engine.connect() as conn:
        if after_id is not None:
            cursor = (
                await conn.execute(
                    select(since.label("since"), transactions.c.id).where(
                        transactions.c.id == after_id, transactions.c.merchant == merchant
                    )
                )
            ).one_or_none()
            if cursor is None:
                raise LookupError(after_id)
            query = query.where(tuple_(since, transactions.c.id) > tuple_(cursor.since, cursor.id))
        rows = (await conn.execute(query.order_by(since, transactions.c.id).limit(limit + 1))).all()
    return [_in_doubt_row(row) for row in rows[:limit]], len(rows) > limit


def _in_doubt_row(row: Any) -> InDoubt:
    return InDoubt(
        id=row.id,
        kind=row.kind,
        reference=row.reference,
        workflow_id=row.workflow_id,
        provider=row.provider,
        amount=row.amount,
        currency=row.currency,
        status=row.status,
        since=row.since,
        created_at=row.created_at,
        updated_at=row.updated_at,
        state=dict(row.state),
    )


async def in_doubt_count(store: RecordStore, merchant: str) -> int:
    """How many of ``merchant``'s transactions are reconciling."""
    async with store.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).where(*_in_doubt(merchant)))).scalar_one()
    return int(total)


async def merchant_workflows(
    store: RecordStore, merchant: str, workflow_ids: Sequence[str]
) -> dict[str, tuple[str, str]]:
    """Which of ``workflow_ids`` are ``merchant``'s transactions: ``{workflow id: (kind,
    reference)}`` (the others, another merchant's or unknown, are left out)."""
    found: dict[str, tuple[str, str]] = {}
    wanted = sorted(set(workflow_ids))
    async with store.engine.connect() as conn:
        for start in range(0, len(wanted), 1000):
            rows = await conn.execute(
                select(
                    transactions.c.workflow_id, transactions.c.kind, transactions.c.reference
                ).where(
                    transactions.c.merchant == merchant,
                    transactions.c.workflow_id.in_(wanted[start : start + 1000]),
                )
            )
            found.update({r.workflow_id: (r.kind, r.reference) for r in rows})
    return found
