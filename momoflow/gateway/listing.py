"""Lists, the CSV statement and the provider balances, read from the record store
(:mod:`momoflow.records`); no route here needs Temporal or a worker.

* ``GET /v1/payouts``, ``GET /v1/payins``, ``GET /v1/refunds``: the caller's transactions,
  newest first, page by page (Stripe-style: ``limit`` and ``starting_after=<reference>``,
  answered as ``{"data": [...], "has_more": ...}``). Each item is the body
  ``GET /v1/{kind}s/{reference}`` answers, as the record store last recorded it.
* ``GET /v1/transactions/export.csv``: every payout, payin and refund of the caller in a
  period, oldest first, streamed row by row (never all rows in memory).
* ``GET /v1/balances``: momoflow's provider accounts, what the journal expects beside what
  the provider last reported.

A transaction whose start is still being claimed (``started`` false) is never listed nor
exported: the store's reads leave it out.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Depends, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict

from momoflow.campaigns.report import formula_safe
from momoflow.gateway.deps import MerchantDep, StoreDep, records_unavailable
from momoflow.ids import REFERENCE_PATTERN
from momoflow.models import (
    PayinState,
    PayoutState,
    ProviderName,
    RefundState,
    TransactionState,
    TransactionStatus,
)
from momoflow.money import Country, Currency
from momoflow.records.store import (
    Balance,
    ListFilters,
    RecordStore,
    StoredRecord,
    is_unavailable,
)
from momoflow.records.writes import Kind

log = logging.getLogger("momoflow.gateway")

router = APIRouter(prefix="/v1")

#: The largest ``limit`` of a list page, and the default.
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
#: Statement rows written per chunk of the answer.
CSV_ROWS_PER_CHUNK = 200

StateT = TypeVar("StateT", bound=TransactionState)
T = TypeVar("T")


class ListPage(BaseModel, Generic[StateT]):
    """One page of a list, newest first. ``has_more`` is true when more items follow:
    ask again with ``starting_after`` set to the last item's ``reference``."""

    model_config = ConfigDict(extra="forbid")

    data: list[StateT]
    has_more: bool


class AccountBalance(BaseModel):
    """momoflow's account at one provider, in one currency (amounts in minor units)."""

    model_config = ConfigDict(extra="forbid")

    provider: ProviderName
    currency: Currency
    #: What the journal says the account holds: every settled payin in, every settled
    #: payout and refund out, with their fees. Money put in or taken out of the account
    #: outside momoflow (top-ups, withdrawals) is not in the journal.
    expected: int
    #: The balance the provider last reported, and when; null until it reported one.
    reported: int | None = None
    reported_at: datetime | None = None
    #: Where that report came from (``daily report``, …).
    source: str | None = None
    #: ``reported - expected``; null until the provider reported a balance.
    difference: int | None = None


class BalanceList(BaseModel):
    """Every provider account of this deployment, by provider and currency."""

    model_config = ConfigDict(extra="forbid")

    data: list[AccountBalance]


# --------------------------------------------------------------------------- parameters

StatusFilter = Annotated[
    TransactionStatus | None, Query(description="Only transactions in this status")
]
ProviderFilter = Annotated[ProviderName | None, Query(description="Only this provider's")]
CountryFilter = Annotated[Country | None, Query(description="Only this country's")]
CampaignFilter = Annotated[
    str | None,
    Query(
        pattern=REFERENCE_PATTERN,
        description="Only the payouts of this campaign (its reference)",
    ),
]
CreatedGte = Annotated[
    AwareDatetime | None,
    Query(
        description="Only transactions created at or after this time: ISO 8601 with a "
        "timezone (`2026-03-01T00:00:00Z`; encode `+` as `%2B` in a URL)",
    ),
]
CreatedLte = Annotated[
    AwareDatetime | None,
    Query(
        description="Only transactions created at or before this time: ISO 8601 with a "
        "timezone (`2026-03-31T23:59:59Z`)",
    ),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, 1 to {MAX_LIMIT}")]
StartingAfter = Annotated[
    str | None,
    Query(
        pattern=REFERENCE_PATTERN,
        description="The `reference` of the last item of the previous page: the page "
        "continues after it",
    ),
]


def _problem(field: str, rule: str, message: str, value: object) -> RequestValidationError:
    """A 422 naming ``field`` and ``rule``, in the gateway's error body."""
    return RequestValidationError(
        [{"type": rule, "loc": ("query", field), "msg": message, "input": value}]
    )


def _utc(field: str, moment: datetime | None) -> datetime | None:
    """``moment`` in UTC; 422 for one that UTC cannot hold (year 1 at +14:00, …)."""
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _problem(
            field, "out_of_range", "the time is outside the years 1 to 9999 in UTC", str(moment)
        ) from None


def _period(
    created_gte: datetime | None, created_lte: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """The period's bounds in UTC; 422 naming the field for one that cannot be used."""
    gte, lte = _utc("created_gte", created_gte), _utc("created_lte", created_lte)
    if gte is not None and lte is not None and gte > lte:
        raise _problem(
            "created_lte",
            "not_before_created_gte",
            "created_lte must not be before created_gte",
            lte.isoformat(),
        )
    return gte, lte


def list_filters(
    status: StatusFilter = None,
    provider: ProviderFilter = None,
    country: CountryFilter = None,
    campaign: CampaignFilter = None,
    created_gte: CreatedGte = None,
    created_lte: CreatedLte = None,
) -> ListFilters:
    """The filters of a list request (422 naming the field for a bad one)."""
    created_gte, created_lte = _period(created_gte, created_lte)
    return ListFilters(
        status=status,
        provider=provider.value if provider is not None else None,
        country=country.value if country is not None else None,
        campaign=campaign,
        created_gte=created_gte,
        created_lte=created_lte,
    )


FiltersDep = Annotated[ListFilters, Depends(list_filters)]

LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown API key"},
    422: {
        "description": "A bad filter, `limit` outside 1-100, or a `starting_after` that is "
        "not one of your references: the field and the rule are named"
    },
    503: {"description": "The record store cannot be reached; retry"},
}


async def _read(what: Callable[[], Awaitable[T]]) -> T:
    """``what()``, with an unreachable record store answered 503."""
    try:
        return await what()
    except Exception as exc:
        if is_unavailable(exc):
            log.warning("record store unavailable for a read (%s)", type(exc).__name__)
            raise records_unavailable("the record store cannot be reached; retry shortly") from None
        raise


async def _page(
    store: RecordStore,
    kind: Kind,
    state_type: type[StateT],
    merchant: str,
    filters: ListFilters,
    limit: int,
    starting_after: str | None,
) -> tuple[list[StateT], bool]:
    """One page of ``merchant``'s transactions of ``kind``, and whether more follow."""

    async def read() -> tuple[list[StoredRecord], bool]:
        return await store.page(kind, merchant, filters, limit=limit, starting_after=starting_after)

    try:
        records, has_more = await _read(read)
    except LookupError as exc:
        # The store's answer for an unknown cursor (not a KeyError or IndexError).
        if starting_after is None or type(exc) is not LookupError:
            raise
        raise _problem(
            "starting_after",
            "unknown_reference",
            f"no {kind.value} of yours has the reference {starting_after!r}: pass the "
            "reference of the last item of the previous page",
            starting_after,
        ) from None
    return [state_type.model_validate(record.state) for record in records], has_more


@router.get(
    "/payouts",
    response_model=ListPage[PayoutState],
    responses=LIST_RESPONSES,
    tags=["payouts"],
    summary="List your payouts, newest first",
)
async def list_payouts(
    merchant: MerchantDep,
    store: StoreDep,
    filters: FiltersDep,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: StartingAfter = None,
) -> ListPage[PayoutState]:
    """Your payouts, newest first (by creation time), ``limit`` per page. Each item is the
    body ``GET /v1/payouts/{reference}`` answers, as the record store last recorded it (a
    payout still moving may be a moment behind its live read). When ``has_more`` is true,
    ask again with ``starting_after`` set to the last item's ``reference``. Pages never
    repeat an item nor skip one that was listed when the first page was read; payouts
    created meanwhile are newer than the pages already read, so they show in the next
    walk, not in this one."""
    data, has_more = await _page(
        store, Kind.PAYOUT, PayoutState, merchant, filters, limit, starting_after
    )
    return ListPage[PayoutState](data=data, has_more=has_more)


@router.get(
    "/payins",
    response_model=ListPage[PayinState],
    responses=LIST_RESPONSES,
    tags=["payins"],
    summary="List your payins, newest first",
)
async def list_payins(
    merchant: MerchantDep,
    store: StoreDep,
    filters: FiltersDep,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: StartingAfter = None,
) -> ListPage[PayinState]:
    """Your payins, newest first, paged like ``GET /v1/payouts``."""
    data, has_more = await _page(
        store, Kind.PAYIN, PayinState, merchant, filters, limit, starting_after
    )
    return ListPage[PayinState](data=data, has_more=has_more)


@router.get(
    "/refunds",
    response_model=ListPage[RefundState],
    responses=LIST_RESPONSES,
    tags=["refunds"],
    summary="List your refunds, newest first",
)
async def list_refunds(
    merchant: MerchantDep,
    store: StoreDep,
    filters: FiltersDep,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: StartingAfter = None,
) -> ListPage[RefundState]:
    """Your refunds, newest first, paged like ``GET /v1/payouts``. A refund's
    ``reference`` is its payin's (a payin has at most one refund), and so is the value
    ``starting_after`` takes."""
    data, has_more = await _page(
        store, Kind.REFUND, RefundState, merchant, filters, limit, starting_after
    )
    return ListPage[RefundState](data=data, has_more=has_more)


# --------------------------------------------------------------------------- the statement

#: The statement's columns, in order.
STATEMENT_COLUMNS = (
    "kind",
    "reference",
    "workflow_id",
    "created_at",
    "completed_at",
    "status",
    "provider",
    "country",
    "operator",
    "currency",
    "amount",
    "fees",
    "provider_amount",
    "net",
    "provider_transaction_id",
    "provider_reference",
    "campaign",
    "failure_code",
    "failure_message",
    "phone_masked",
    "description",
)

_MONEY_MOVED = frozenset({TransactionStatus.SUCCEEDED, TransactionStatus.LATE_SUCCEEDED})


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def statement_row(record: StoredRecord) -> list[object]:
    """One statement row (the columns of :data:`STATEMENT_COLUMNS`), every cell
    formula-safe.

    ``fees`` is what the provider charged, so only on a transaction that moved money
    (``succeeded``, ``late_succeeded``): a quoted fee on a payout that did not pay was not
    charged. ``net`` is ``amount - fees`` where the fee comes out of the amount: a payin
    (what reached momoflow's account), and a payout whose provider reported the amount net
    of its fee (``net_amount``, what the recipient received); a payout whose fee is
    charged on top, and a refund, have none."""
    state = record.typed_state()
    moved = state.status in _MONEY_MOVED
    fees = state.fees if moved else None
    net: int | None = None
    operator: str | None = None
    phone: str | None = None
    if isinstance(state, PayoutState):
        operator, phone = state.operator.value, state.recipient_phone_masked
        if moved and state.net_amount is not None:
            net = state.net_amount
    elif isinstance(state, PayinState):
        operator = state.operator.value if state.operator is not None else None
        phone = state.customer_phone_masked
        if fees is not None:
            net = state.amount - fees
    failure = state.failure
    values: list[object] = [
        record.kind.value,
        state.reference,
        state.workflow_id,
        _when(state.created_at),
        _when(state.completed_at),
        state.status.value,
        state.provider.value,
        state.country.value,
        operator,
        state.currency.value,
        state.amount,
        fees,
        state.provider_amount,
        net,
        state.provider_transaction_id,
        state.provider_reference,
        record.campaign,
        failure.code if failure is not None else None,
        failure.message if failure is not None else None,
        phone,
        state.description,
    ]
    return [formula_safe(value) for value in values]


async def _close(iterator: AsyncIterator[Any]) -> None:
    """Close an async generator (the store's export) that may not have run to its end."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


async def statement_csv(
    first: StoredRecord | None, rest: AsyncIterator[StoredRecord]
) -> AsyncIterator[str]:
    """The statement as CSV text, a chunk per :data:`CSV_ROWS_PER_CHUNK` rows: the header,
    ``first`` (already read), then ``rest``. A read that fails half-way ends the answer
    without its last chunk, so a client sees a cut download, never a short statement."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(STATEMENT_COLUMNS)
    try:
        if first is not None:
            writer.writerow(statement_row(first))
            count = 1
            async for record in rest:
                writer.writerow(statement_row(record))
                count += 1
                if count % CSV_ROWS_PER_CHUNK == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
    finally:
        await _close(rest)
    yield buffer.getvalue()


def statement_filename(created_gte: datetime | None, created_lte: datetime | None) -> str:
    """``momoflow-transactions-<dates>.csv``: ``2026-03-01_2026-03-31``,
    ``from-2026-03-01``, ``until-2026-03-31`` or ``all``."""
    gte = created_gte.date().isoformat() if created_gte is not None else None
    lte = created_lte.date().isoformat() if created_lte is not None else None
    if gte and lte:
        dates = f"{gte}_{lte}"
    elif gte:
        dates = f"from-{gte}"
    elif lte:
        dates = f"until-{lte}"
    else:
        dates = "all"
    return f"momoflow-transactions-{dates}.csv"


@router.get(
    "/transactions/export.csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "One row per payout, payin and refund, oldest first",
        },
        **{code: LIST_RESPONSES[code] for code in (401, 503)},
        422: {"description": "A date without a timezone, or a period that ends first"},
    },
    tags=["transactions"],
    summary="Your statement (CSV): every payout, payin and refund of a period",
)
async def export_transactions(
    merchant: MerchantDep,
    store: StoreDep,
    created_gte: CreatedGte = None,
    created_lte: CreatedLte = None,
) -> StreamingResponse:
    """Every payout, payin and refund you made in the period (both bounds optional and
    inclusive, on the creation time), oldest first, streamed as it is read. Columns:
    ``kind, reference, workflow_id, created_at, completed_at, status, provider, country,
    operator, currency, amount, fees, provider_amount, net, provider_transaction_id,
    provider_reference, campaign, failure_code, failure_message, phone_masked,
    description``. Amounts are integers in the currency's minor unit; ``fees`` only where
    money moved (``succeeded``, ``late_succeeded``); ``net`` is ``amount - fees`` where
    the fee comes out of the amount (payins; payouts whose provider reports a
    ``net_amount``). Phone numbers are masked, and a cell a spreadsheet would run as a
    formula (``=``, ``+``, ``-``, ``@``, tab, CR first) starts with an apostrophe. A
    read that fails half-way cuts the download: retry it whole."""
    created_gte, created_lte = _period(created_gte, created_lte)
    records = store.export(merchant, created_gte=created_gte, created_lte=created_lte)
    # The first read happens now, so that an unreachable store is a 503, not a cut answer.
    try:
        first = await _read(lambda: anext(records, None))
    except BaseException:
        await _close(records)
        raise
    filename = statement_filename(created_gte, created_lte)
    return StreamingResponse(
        statement_csv(first, records),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --------------------------------------------------------------------------- balances


def _balance(row: Balance) -> AccountBalance:
    return AccountBalance(
        provider=ProviderName(row.provider),
        currency=Currency(row.currency),
        expected=row.expected,
        reported=row.reported,
        reported_at=row.reported_at,
        source=row.source,
        difference=row.difference,
    )


@router.get(
    "/balances",
    response_model=BalanceList,
    responses={code: LIST_RESPONSES[code] for code in (401, 503)},
    tags=["balances"],
    summary="momoflow's provider accounts: expected by the journal, reported by the provider",
)
async def balances(merchant: MerchantDep, store: StoreDep) -> BalanceList:
    """momoflow's accounts at its providers, one per provider and currency. **These are
    this deployment's provider accounts, shared by every merchant it serves**, not a
    balance of yours: every merchant's payouts, payins and refunds move them.

    ``expected`` is what momoflow's double-entry journal says the account holds (every
    settled payin in, less its fee; every settled payout and refund out, with its fee),
    ``reported`` what the provider last reported (its daily reconciliation report records
    it), with ``reported_at`` and ``source``, and ``difference`` is ``reported -
    expected`` (null until a balance was reported). Money put in or taken out of the
    account outside momoflow (top-ups, withdrawals) is not in the journal, so a steady
    ``difference`` is normal; a change of it between two reports is worth a look. Amounts
    are integers in the currency's minor unit."""
    del merchant  # authenticated; the accounts are the deployment's
    rows = await _read(store.balances)
    return BalanceList(data=[_balance(row) for row in rows])
