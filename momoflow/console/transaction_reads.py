"""The transactions pages' own reads of the record store: what
:meth:`~momoflow.records.store.RecordStore.page` and
:meth:`~momoflow.records.store.RecordStore.export` cannot filter on (a reference prefix,
the filters of the statement beyond its period).

Both reads keep the store's rules: one merchant's records only, never a record whose start
is still being claimed (``started`` false), newest first for pages (a page continues after
the record with reference ``starting_after``), oldest first for exports, in the same order
(creation time, then id) as the store's own reads.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_

from momoflow.models import TransactionStatus
from momoflow.records.schema import transactions
from momoflow.records.store import ListFilters, RecordStore, StoredRecord
from momoflow.records.writes import Kind

__all__ = ["Search", "export_records", "page_records"]


@dataclass(frozen=True)
class Search:
    """What an operator searches: the store's list filters, and a reference or the start
    of one (``reference`` matches every reference it starts, itself included)."""

    filters: ListFilters
    reference: str | None = None

    @property
    def beyond_period(self) -> bool:
        """Whether anything but the period narrows the search."""
        f = self.filters
        return any(
            value is not None
            for value in (f.status, f.provider, f.country, f.campaign, self.reference)
        )


def _like_prefix(prefix: str) -> str:
    """``prefix`` as a ``LIKE`` pattern that matches what starts with it."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _clauses(merchant: str, kind: Kind | None, search: Search) -> list[Any]:
    f = search.filters
    clauses: list[Any] = [
        transactions.c.merchant == merchant,
        transactions.c.started.is_(True),
    ]
    if kind is not None:
        clauses.append(transactions.c.kind == kind.value)
    if f.status is not None:
        clauses.append(transactions.c.status == f.status.value)
    if f.provider is not None:
        clauses.append(transactions.c.provider == f.provider)
    if f.country is not None:
        clauses.append(transactions.c.country == f.country)
    if f.campaign is not None:
        clauses.append(transactions.c.campaign == f.campaign)
    if f.created_gte is not None:
        clauses.append(transactions.c.created_at >= f.created_gte)
    if f.created_lte is not None:
        clauses.append(transactions.c.created_at <= f.created_lte)
    if search.reference is not None:
        clauses.append(transactions.c.reference.like(_like_prefix(search.reference), escape="\\"))
    return clauses


def _record(row: Any) -> StoredRecord:
    return StoredRecord(
        id=row.id,
        kind=Kind(row.kind),
        merchant=row.merchant,
        reference=row.reference,
        workflow_id=row.workflow_id,
        fingerprint=row.fingerprint,
        started=row.started,
        seq=row.seq,
        status=TransactionStatus(row.status),
        campaign=row.campaign,
        state=row.state,
        created_at=row.created_at,
        updated_at=row.updated_at,
        run_id=row.run_id,
    )


async def page_records(
    store: RecordStore,
    kind: Kind,
    merchant: str,
    search: Search,
    *,
    limit: int,
    starting_after: str | None = None,
) -> tuple[list[StoredRecord], bool]:
    """One page of ``merchant``'s transactions of ``kind``, newest first, and whether more
    follow: :meth:`RecordStore.page` itself unless a reference narrows the search.
    ``LookupError`` when ``starting_after`` is none of the merchant's references."""
    if search.reference is None:
        return await store.page(
            kind, merchant, search.filters, limit=limit, starting_after=starting_after
        )
    query = select(transactions).where(*_clauses(merchant, kind, search))
    async with store.engine.connect() as conn:
        if starting_after is not None:
            cursor = (
                await conn.execute(
                    select(transactions.c.created_at, transactions.c.id).where(
                        transactions.c.merchant == merchant,
                        transactions.c.kind == kind.value,
                        transactions.c.reference == starting_after,
                    )
                )
            ).one_or_none()
            if cursor is None:
                raise LookupError(starting_after)
            query = query.where(
                tuple_(transactions.c.created_at, transactions.c.id)
                < tuple_(cursor.created_at, cursor.id)
            )
        rows = (
            await conn.execute(
                query.order_by(transactions.c.created_at.desc(), transactions.c.id.desc()).limit(
                    limit + 1
                )
            )
        ).all()
    return [_record(row) for row in rows[:limit]], len(rows) > limit


async def export_records(
    store: RecordStore,
    merchant: str,
    kind: Kind | None,
    search: Search,
    *,
    page_size: int = 500,
) -> AsyncGenerator[StoredRecord, None]:
    """Every started record of ``merchant`` the search finds (of ``kind``; every kind when
    None), oldest first, page by page (no connection held between pages). With nothing
    but a period, it is :meth:`RecordStore.export` itself: the statement of
    ``GET /v1/transactions/export.csv``."""
    if kind is None and not search.beyond_period:
        async for record in store.export(
            merchant,
            created_gte=search.filters.created_gte,
            created_lte=search.filters.created_lte,
            page_size=page_size,
        ):
            yield record
        return
    after: tuple[Any, int] | None = None
    clauses = _clauses(merchant, kind, search)
    while True:
        query = select(transactions).where(*clauses)
        if after is not None:
            query = query.where(
                tuple_(transactions.c.created_at, transactions.c.id) > tuple_(*after)
            )
        async with store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    query.order_by(transactions.c.created_at, transactions.c.id).limit(page_size)
                )
            ).all()
        for row in rows:
            yield _record(row)
        if len(rows) < page_size:
            return
        after = (rows[-1].created_at, rows[-1].id)
