"""The transactions pages: search and filter the operator's merchant's payouts, payins and
refunds, export them as the statement CSV, and look at one of them whole.

* ``GET /console/transactions``: newest first, 50 a page, filtered on kind, status,
  provider, country, campaign, creation dates (days in the operator's time zone) and
  reference (exact or the start of one). A filter value that cannot be used re-renders the
  page (400) with a message naming the field and the rule.
* ``GET /console/transactions/export.csv``: the statement of
  ``GET /v1/transactions/export.csv`` (the gateway's own CSV code), narrowed by the same
  filters; with nothing but dates it is byte for byte the API's statement of that period.
  Every export is in the audit trail, with its filters.
* ``GET /console/transactions/{kind}/{reference}``: one transaction: its facts, amounts,
  provider ids, timeline, merchant notifications, journal entries and a link to its run in
  the Temporal UI.

Every read goes through the record store and is limited to ``session.operator.merchant``:
another merchant's reference is a 404, exactly like one that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from momoflow.console.accounts import Permission, Session
from momoflow.console.web import (
    PREFIX,
    ConsoleError,
    allowed,
    client_address,
    console_state,
    read,
    render,
)
from momoflow.gateway.listing import statement_csv, statement_filename
from momoflow.ids import REFERENCE_PATTERN, campaign_reference
from momoflow.masking import mask_phone
from momoflow.models import (
    PayinState,
    PayoutState,
    ProviderName,
    RefundState,
    TransactionState,
    TransactionStatus,
)
from momoflow.money import Country
from momoflow.records.store import ListFilters, StoredRecord
from momoflow.records.writes import Kind

__all__ = ["PAGE_SIZE", "router"]

router = APIRouter()

#: Transactions per page of the list.
PAGE_SIZE = 50

_REFERENCE = re.compile(REFERENCE_PATTERN)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: Statuses in which money moved: only there is a fee charged (as in the statement).
_MONEY_MOVED = frozenset({TransactionStatus.SUCCEEDED, TransactionStatus.LATE_SUCCEEDED})
#: The query parameters the filters read, in the form's order.
FILTER_FIELDS = (
    "kind",
    "status",
    "provider",
    "country",
    "campaign",
    "created_from",
    "created_to",
    "reference",
)
#: Timeline actors the store writes itself, shown in the page's language.
_ACTORS = {"workflow": "tx.actor.workflow", "records verify": "tx.actor.records_verify"}

ViewSession = Annotated[Session, Depends(allowed(Permission.VIEW))]
ExportSession = Annotated[Session, Depends(allowed(Permission.EXPORT))]


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Problem:
    """A filter value that cannot be used: the query parameter, the rule it breaks, the
    catalog key of the message and its parameters."""

    field: str
    rule: str
    key: str
    params: dict[str, str] = dataclass_field(default_factory=dict)


@dataclass
class Filters:
    """The filters of a request, as read from its query string."""

    #: The kind listed (the list shows one kind at a time; payouts unless asked).
    kind: Kind
    #: The kind asked for; None when the request named none (the export then holds every
    #: kind, as the statement does).
    kind_asked: Kind | None
    search: ListFilters
    #: The raw values, to fill the form in again.
    values: dict[str, str]
    #: The cursor: the reference of the last transaction of the previous page.
    after: str | None
    problems: list[Problem]

    def query(self, *, period_only: bool = False) -> str:
        """These filters as a query string, for the export links: the kind listed and
        every filter given, or only the period (the statement: every kind)."""
        params: dict[str, str] = {}
        for name in FILTER_FIELDS:
            if period_only and name not in ("created_from", "created_to"):
                continue
            value = self.kind.value if name == "kind" else self.values.get(name, "")
            if value:
                params[name] = value
        return urlencode(params)

    def audit_detail(self) -> dict[str, str]:
        """The filters for the audit trail (only those given)."""
        detail = {name: value for name, value in self.values.items() if value}
        detail["kind"] = self.kind_asked.value if self.kind_asked else "all"
        return detail


def _shown(value: str) -> str:
    """A bad value as a message quotes it (never longer than 60 characters)."""
    return value if len(value) <= 60 else value[:57] + "..."


def _choice(
    name: str, raw: str, allowed: list[str], problems: list[Problem], *, upper: bool = False
) -> str | None:
    if not raw:
        return None
    value = raw.upper() if upper else raw
    if value in allowed:
        return value
    problems.append(
        Problem(
            name,
            "one_of",
            "tx.rule.one_of",
            {"value": _shown(raw), "allowed": ", ".join(allowed)},
        )
    )
    return None


def _reference(name: str, raw: str, problems: list[Problem]) -> str | None:
    if not raw:
        return None
    if _REFERENCE.fullmatch(raw):
        return raw
    problems.append(Problem(name, "reference_pattern", "tx.rule.reference", {"value": _shown(raw)}))
    return None


def _day(name: str, raw: str, problems: list[Problem]) -> date | None:
    if not raw:
        return None
    try:
        if not _DAY.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        problems.append(Problem(name, "date", "tx.rule.date", {"value": _shown(raw)}))
        return None


def _moment(
    name: str, day: date | None, at: time, zone: ZoneInfo, problems: list[Problem]
) -> datetime | None:
    """The moment ``at`` of ``day`` in the operator's time zone, in UTC."""
    if day is None:
        return None
    try:
        return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)
    except (OverflowError, ValueError):
        problems.append(
            Problem(name, "out_of_range", "tx.rule.out_of_range", {"value": day.isoformat()})
        )
        return None


def read_filters(request: Request, session: Session, *, paged: bool) -> Filters:
    """The filters of ``request``; every value that cannot be used is a :class:`Problem`."""
    query = request.query_params
    values = {name: query.get(name, "").strip() for name in FILTER_FIELDS}
    problems: list[Problem] = []
    kind_value = _choice("kind", values["kind"], [k.value for k in Kind], problems)
    status = _choice("status", values["status"], [s.value for s in TransactionStatus], problems)
    provider = _choice("provider", values["provider"], [p.value for p in ProviderName], problems)
    country = _choice(
        "country", values["country"], [c.value for c in Country], problems, upper=True
    )
    merchant = session.operator.merchant
    campaign = values["campaign"]
    if campaign.startswith(f"campaign-{merchant}-"):
        campaign = campaign_reference(merchant, campaign)
    campaign_ref = _reference("campaign", campaign, problems)
    reference = _reference("reference", values["reference"], problems)
    zone = ZoneInfo(session.operator.time_zone)
    first_day = _day("created_from", values["created_from"], problems)
    last_day = _day("created_to", values["created_to"], problems)
    created_gte = _moment("created_from", first_day, time.min, zone, problems)
    created_lte = _moment("created_to", last_day, time.max, zone, problems)
    if first_day is not None and last_day is not None and last_day < first_day:
        problems.append(
            Problem(
                "created_to",
                "not_before_created_from",
                "tx.rule.period",
                {"first": first_day.isoformat(), "last": last_day.isoformat()},
            )
        )
    after: str | None = None
    if paged:
        after = _reference("after", query.get("after", "").strip(), problems)
    kind_asked = Kind(kind_value) if kind_value else None
    return Filters(
        kind=kind_asked or Kind.PAYOUT,
        kind_asked=kind_asked,
        search=ListFilters(
            status=TransactionStatus(status) if status else None,
            provider=provider,
            country=country,
            campaign=campaign_ref,
            created_gte=created_gte,
            created_lte=created_lte,
            reference_prefix=reference,
        ),
        values=values,
        after=after,
        problems=problems,
    )


# --------------------------------------------------------------------------- rows


def detail_path(kind: Kind | str, reference: str) -> str:
    """The console page of one transaction."""
    return f"{PREFIX}/transactions/{Kind(kind).value}/{quote(reference, safe='')}"


def _campaign_ref(merchant: str, campaign: str | None) -> str | None:
    """The campaign's reference (the record holds it; an older record may hold the
    campaign's workflow id)."""
    if not campaign:
        return None
    return campaign_reference(merchant, campaign)


def campaign_path(reference: str) -> str:
    """The console page of one campaign."""
    return f"{PREFIX}/campaigns/{quote(reference, safe='')}"


@dataclass(frozen=True)
class Row:
    """One line of the transactions table."""

    reference: str
    kind: str
    url: str
    created_at: datetime
    provider: str
    country: str
    currency: str
    amount: int
    #: What the provider charged (only where money moved, as in the statement).
    fees: int | None
    status: str
    campaign: str | None
    campaign_url: str | None


def _row(record: StoredRecord) -> Row:
    state = record.typed_state()
    campaign = _campaign_ref(record.merchant, record.campaign)
    return Row(
        reference=record.reference,
        kind=record.kind.value,
        url=detail_path(record.kind, record.reference),
        created_at=state.created_at,
        provider=state.provider.value,
        country=state.country.value,
        currency=state.currency.value,
        amount=state.amount,
        fees=state.fees if state.status in _MONEY_MOVED else None,
        status=state.status.value,
        campaign=campaign,
        campaign_url=campaign_path(campaign) if campaign else None,
    )


def _choices() -> dict[str, list[str]]:
    return {
        "kinds": [k.value for k in Kind],
        "statuses": [s.value for s in TransactionStatus],
        "providers": [p.value for p in ProviderName],
        "countries": [c.value for c in Country],
    }


# --------------------------------------------------------------------------- the list


@router.get("/transactions", include_in_schema=False)
async def transactions_page(request: Request, session: ViewSession) -> Response:
    """The merchant's transactions of one kind, newest first, filtered and paged."""
    filters = read_filters(request, session, paged=True)
    rows: list[Row] = []
    has_more = False
    if not filters.problems:
        store = console_state(request).store
        try:
            records, has_more = await read(
                store.page(
                    filters.kind,
                    session.operator.merchant,
                    filters.search,
                    limit=PAGE_SIZE,
                    starting_after=filters.after,
                )
            )
        except LookupError:
            filters.problems.append(
                Problem(
                    "after",
                    "unknown_reference",
                    "tx.rule.after",
                    {"value": _shown(filters.after or "")},
                )
            )
        else:
            rows = [_row(record) for record in records]
    return _list_page(request, session, filters, rows, has_more)


def _list_page(
    request: Request, session: Session, filters: Filters, rows: list[Row], has_more: bool
) -> Response:
    """The list page (400 when a filter value cannot be used)."""
    return render(
        request,
        "transactions/list.html",
        {
            "filters": filters,
            "values": filters.values,
            "kind": filters.kind.value,
            "rows": rows,
            "has_more": has_more,
            "next_after": rows[-1].reference if has_more and rows else None,
            "problems": filters.problems,
            "export_query": filters.query(),
            "statement_query": filters.query(period_only=True),
            "page_size": PAGE_SIZE,
            **_choices(),
        },
        session=session,
        status_code=400 if filters.problems else 200,
    )


# --------------------------------------------------------------------------- the export


async def _first(records: AsyncIterator[StoredRecord]) -> StoredRecord | None:
    return await anext(records, None)


@router.get("/transactions/export.csv", include_in_schema=False)
async def export_transactions(request: Request, session: ExportSession) -> Response:
    """The statement CSV of the filtered transactions (every kind unless one is asked),
    oldest first: the gateway's statement, row for row."""
    filters = read_filters(request, session, paged=False)
    operator = session.operator
    state = console_state(request)
    if filters.problems:
        await state.operators.audit(
            operator.actor,
            "export",
            merchant=operator.merchant,
            target="transactions",
            outcome="refused",
            detail={**filters.audit_detail(), "problems": [p.field for p in filters.problems]},
            address=client_address(request),
        )
        return _list_page(request, session, filters, [], False)
    search = filters.search
    # With nothing but a period, this is the statement of GET /v1/transactions/export.csv.
    records = state.store.export(operator.merchant, kind=filters.kind_asked, filters=search)
    # The first read happens now: an unreachable store is a 503 page, not a cut download.
    try:
        first = await read(_first(records))
    except BaseException:
        await records.aclose()
        raise
    await state.operators.audit(
        operator.actor,
        "export",
        merchant=operator.merchant,
        target="transactions",
        detail=filters.audit_detail(),
        address=client_address(request),
    )
    filename = statement_filename(search.created_gte, search.created_lte)
    return StreamingResponse(
        statement_csv(first, records),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --------------------------------------------------------------------------- one transaction


@dataclass(frozen=True)
class JournalLineView:
    """One line of a journal entry."""

    account: str
    provider: str | None
    amount: int


@dataclass(frozen=True)
class JournalEntryView:
    """One journal entry, its lines and their sum per currency (zero when balanced)."""

    key: str
    description: str
    currency: str
    lines: list[JournalLineView]
    total: int


def _phone(state: TransactionState) -> str | None:
    """The counterpart's phone number as the state keeps it: masked (masked again should a
    record ever hold a clear number, as the logs would be)."""
    phone: str | None = None
    if isinstance(state, PayoutState):
        phone = state.recipient_phone_masked
    elif isinstance(state, PayinState):
        phone = state.customer_phone_masked
    if phone and "*" not in phone:
        phone = mask_phone(phone)
    return phone


def temporal_url(request: Request, workflow_id: str) -> str:
    """The transaction's workflow in the Temporal UI."""
    console = console_state(request).settings.console
    base = console.temporal_ui_url.rstrip("/")
    namespace = quote(console.temporal_namespace, safe="")
    return f"{base}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"


def _facts(state: TransactionState) -> Mapping[str, Any]:
    operator_network: str | None = None
    if isinstance(state, PayoutState | PayinState) and state.operator is not None:
        operator_network = state.operator.value
    return {
        "operator_network": operator_network,
        "phone": _phone(state),
        "mode": state.mode.value if isinstance(state, PayinState) else None,
        "refund_reason": state.reason if isinstance(state, RefundState) else None,
        "net_amount": state.net_amount if isinstance(state, PayoutState) else None,
    }


@router.get("/transactions/{kind}/{reference}", include_in_schema=False)
async def transaction_page(
    request: Request, kind: str, reference: str, session: ViewSession
) -> Response:
    """One transaction of the operator's merchant; a 404 page for any other."""
    if kind not in {k.value for k in Kind} or not _REFERENCE.fullmatch(reference):
        raise ConsoleError(404, "console.error.not_found")
    store = console_state(request).store
    merchant = session.operator.merchant
    record = await read(store.get(Kind(kind), merchant, reference))
    if record is None or not record.started or record.merchant != merchant:
        raise ConsoleError(404, "console.error.not_found")
    state = record.typed_state()
    timeline = await read(store.timeline(record.id))
    entries = await read(store.journal(record.id))
    journal = [
        JournalEntryView(
            key=entry.key,
            description=entry.description,
            currency=entry.currency,
            lines=[
                JournalLineView(line.account, line.provider, line.amount) for line in entry.lines
            ],
            total=sum(line.amount for line in entry.lines),
        )
        for entry in entries
    ]
    campaign = _campaign_ref(merchant, record.campaign)
    payin_url = detail_path(Kind.PAYIN, reference) if isinstance(state, RefundState) else None
    return render(
        request,
        "transactions/detail.html",
        {
            "record": record,
            "state": state,
            "kind": record.kind.value,
            "status": state.status.value,
            "moved": state.status in _MONEY_MOVED,
            "amount_differs": state.provider_amount is not None
            and state.provider_amount != state.amount,
            "timeline": [
                {**event, "actor_key": _ACTORS.get(str(event["actor"]))} for event in timeline
            ],
            "journal": journal,
            "notifications": state.notifications,
            "temporal_url": temporal_url(request, record.workflow_id),
            "campaign": campaign,
            "campaign_url": campaign_path(campaign) if campaign else None,
            "payin_url": payin_url,
            "list_url": f"{PREFIX}/transactions?{urlencode({'kind': record.kind.value})}",
            **_facts(state),
        },
        session=session,
    )
