"""The console's transactions pages over real HTTP against the session's stack: real
payouts made through the business API (and records written into the stack's record store
the way workflows write them, in days of their own years back), listed, filtered, paged,
exported and shown whole, for an operator of one merchant only."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from momoflow.console.i18n import format_amount
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
from momoflow.notifications import verify
from momoflow.records.schema import audit_events
from momoflow.records.store import RecordStore
from momoflow.records.writes import HistoryEntry, Kind, RecordWrite
from momoflow.sandbox.shared.serving import ThreadedServer
from tests.console_support import add_operator, logged_in
from tests.stack import (
    ACME_NOTIFY_SECRET,
    GLOBEX_KEY,
    LEDGER_KEY,
    MERCHANT_HOST,
    Stack,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)

#: The merchant of the seeded records (years back: no other test's period holds them).
SEEDED = "ledger"
#: This run's references start with it.
RUN = uuid.uuid4().hex[:6].upper()
#: Days of their own for the seeded records, years back (other tests seed a year back).
_BASE_DAY = date(2021, 1, 1) + timedelta(days=int(RUN, 16) % 900)
FCFA_12_500 = "12\u202f500\u00a0FCFA"
XSS = "<script>alert(1)</script>"
T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


def rows(page: httpx.Response) -> list[str]:
    """The references of the transactions table, in order."""
    return re.findall(r'<tr data-reference="([^"]+)"', page.text)


def row_html(page: httpx.Response, reference: str) -> str:
    found = re.search(rf'<tr data-reference="{re.escape(reference)}".*?</tr>', page.text, re.S)
    assert found, f"{reference} not in the page"
    return found.group(0)


def section(page: httpx.Response, name: str) -> str:
    found = re.search(rf'<section id="{name}">.*?</section>', page.text, re.S)
    assert found, f"no section #{name}"
    return found.group(0)


def href(page: httpx.Response, element_id: str) -> str | None:
    found = re.search(rf'<a id="{element_id}" href="([^"]*)"', page.text)
    return found.group(1).replace("&amp;", "&") if found else None


def with_store(stack: Stack, use: Callable[[RecordStore], Awaitable[T]]) -> T:
    async def run() -> T:
        store = RecordStore.connect(stack.database_url)
        try:
            return await use(store)
        finally:
            await store.close()

    return asyncio.run(run())


def export_audits(stack: Stack, actor: str) -> list[Any]:
    async def read(store: RecordStore) -> list[Any]:
        async with store.engine.connect() as conn:
            return list(
                (
                    await conn.execute(
                        select(audit_events)
                        .where(audit_events.c.actor == actor, audit_events.c.action == "export")
                        .order_by(audit_events.c.id)
                    )
                ).all()
            )

    return with_store(stack, read)


def payout_body(reference: str, phone: str, **extra: Any) -> dict[str, Any]:
    return {
        "reference": reference,
        "provider": "caurisflux",
        "country": "SN",
        "operator": "wave",
        "recipient": {"phone": phone, "name": "Awa Diallo"},
        "amount": 12_500,
        "currency": "XOF",
        **extra,
    }


class Receiver:
    """A merchant's notification endpoint on 127.0.0.2 (the one address the stack lets
    notifications reach): checks the signature, answers 204."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self.url = ""

    def events(self, workflow_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.received if e["data"]["workflow_id"] == workflow_id]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()

    async def receive(request: Request) -> Response:
        body = await request.body()
        verify(ACME_NOTIFY_SECRET, body, request.headers.get("momoflow-signature"), now=time.time())
        with endpoint.lock:
            endpoint.received.append(json.loads(body))
        return Response(status_code=204)

    app = Starlette(routes=[Route("/events", receive, methods=["POST"])])
    with ThreadedServer(app, host=MERCHANT_HOST) as server:
        endpoint.url = f"{server.url}/events"
        yield endpoint


# --------------------------------------------------------------------------- seeding


def _state(
    kind: Kind,
    reference: str,
    at: datetime,
    status: TransactionStatus,
    *,
    amount: int = 50_000,
    fees: int | None = 750,
    provider_amount: int | None = None,
    failure: Failure | None = None,
    payin: PayinState | None = None,
) -> TransactionState:
    common: dict[str, Any] = {
        "merchant": SEEDED,
        "reference": reference,
        "provider": ProviderName.CAURISFLUX if kind is Kind.PAYOUT else ProviderName.NOVASEND,
        "country": Country.SN if kind is Kind.PAYOUT else Country.CI,
        "amount": amount,
        "currency": Currency.XOF,
        "description": f"seeded {kind.value}",
        "status": status,
        "fees": fees,
        "provider_amount": provider_amount if provider_amount is not None else amount,
        "provider_transaction_id": f"PTX-{reference}-{kind.value}",
        "failure": failure,
        "created_at": at,
        "submitted_at": at + timedelta(seconds=1),
        "completed_at": at + timedelta(seconds=3),
        "updated_at": at + timedelta(seconds=3),
        "timeline": [
            TimelineEntry(at=at, status=TransactionStatus.CREATED, note="requested"),
            TimelineEntry(at=at + timedelta(seconds=3), status=status),
        ],
    }
    if kind is Kind.PAYOUT:
        return PayoutState(
            workflow_id=payout_workflow_id(SEEDED, reference),
            operator=Operator.WAVE,
            recipient_phone_masked=mask_phone("+221771234101"),
            **common,
        )
    if kind is Kind.PAYIN:
        return PayinState(
            workflow_id=payin_workflow_id(SEEDED, reference),
            mode=PayinMode.DIRECT,
            operator=Operator.ORANGE_MONEY,
            customer_phone_masked=mask_phone("+2250701231001"),
            **common,
        )
    assert payin is not None
    return RefundState(
        workflow_id=refund_workflow_id(payin.workflow_id),
        payin_workflow_id=payin.workflow_id,
        reason="order cancelled",
        **common,
    )


def seed(stack: Stack, records: list[tuple[Kind, TransactionState, str | None]]) -> None:
    """Write records the way a workflow's ``record_transaction`` activity does."""

    async def write(store: RecordStore) -> None:
        for kind, state, campaign in records:
            await store.write(
                RecordWrite(
                    kind=kind,
                    seq=1,
                    fingerprint=f"console-test-{RUN}",
                    campaign=campaign,
                    state=state.model_dump(mode="json"),
                    entries=[
                        HistoryEntry(index=i, at=e.at, status=e.status, note=e.note)
                        for i, e in enumerate(state.timeline)
                    ],
                )
            )

    with_store(stack, write)


# --------------------------------------------------------------------------- real payouts


def test_real_payouts_are_listed_filtered_and_shown_whole_for_one_merchant_only(
    stack: Stack, receiver: Receiver
) -> None:
    paid, failed, other = f"CTX-{RUN}-PAID", f"CTX-{RUN}-FAIL", f"CTX-{RUN}-GLOBEX"
    phone = f"+22177{int(RUN, 16) % 10}124{int(RUN, 16) % 1000:03d}"
    with stack.gateway() as api:
        answer = api.post(
            "/v1/payouts",
            json=payout_body(paid, phone, description=XSS, notify_url=receiver.url),
        )
        assert answer.status_code == 201, answer.text
        answer = api.post("/v1/payouts", json=payout_body(failed, "+221770000000"))
        assert answer.status_code == 201, answer.text
    with stack.gateway(GLOBEX_KEY) as api:
        answer = api.post("/v1/payouts", json=payout_body(other, phone))
        assert answer.status_code == 201, answer.text
    paid_read = stack.wait_for_payout(paid, {"succeeded"})
    stack.wait_for_payout(failed, {"failed"})
    stack.wait_for_payout(other, {"succeeded"}, key=GLOBEX_KEY)
    paid_workflow = payout_workflow_id("acme", paid)
    wait_until(lambda: receiver.events(paid_workflow), timeout=30, what="the notification")

    viewer = add_operator(stack, "viewer", language="en")
    with logged_in(stack, viewer) as browser:
        mine = f"/console/transactions?reference=CTX-{RUN}-"

        def listed() -> httpx.Response | None:
            page = browser.get(mine)
            both = (
                f'data-reference="{paid}" data-status="succeeded"' in page.text
                and f'data-reference="{failed}" data-status="failed"' in page.text
            )
            return page if both else None

        page = wait_until(listed, timeout=30, what="both payouts recorded final")
        assert page.status_code == 200
        # Newest first; the other merchant's payout never shows, even under the prefix.
        assert rows(page) == [failed, paid]
        assert other not in page.text
        line = row_html(page, paid)
        assert FCFA_12_500 in line
        assert f'href="/console/transactions/payout/{paid}"' in line
        assert '<span class="status status-succeeded">succeeded</span>' in line
        assert paid_read["fees"] and format_amount(paid_read["fees"], "XOF") in line
        assert '<span class="status status-failed">failed</span>' in row_html(page, failed)
        assert re.search(r'<table id="transactions">', page.text)
        assert page.text.count("<h1>") == 1

        def refs(query: str) -> list[str]:
            answer = browser.get(f"{mine}&{query}" if query else mine)
            assert answer.status_code == 200, answer.text[-2000:]
            return rows(answer)

        assert refs("status=failed") == [failed]
        assert refs("status=succeeded") == [paid]
        assert refs("provider=caurisflux") == [failed, paid]
        assert refs("provider=novasend") == []
        assert refs("country=sn") == [failed, paid]
        assert refs("country=CI") == []
        assert refs("kind=payin") == []
        created = datetime.fromisoformat(paid_read["created_at"]).astimezone(
            ZoneInfo("Africa/Abidjan")
        )
        today, yesterday = created.date(), created.date() - timedelta(days=1)
        assert refs(f"created_from={today}&created_to={today}") == [failed, paid]
        assert refs(f"created_to={yesterday}") == []
        # An exact reference, and the start of one.
        assert rows(browser.get(f"/console/transactions?reference={paid}")) == [paid]
        assert rows(browser.get(f"/console/transactions?reference={other}")) == []
        # The unfiltered first page never holds globex's (its newest payout).
        first = browser.get("/console/transactions")
        assert first.status_code == 200 and other not in first.text

        # One transaction, whole.
        detail = browser.get(f"/console/transactions/payout/{paid}")
        assert detail.status_code == 200
        assert detail.text.count("<h1>") == 1
        # The free text is escaped, never raw.
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail.text
        assert XSS not in detail.text
        amounts = section(detail, "amounts")
        assert FCFA_12_500 in amounts and 'id="amount-mismatch"' not in amounts
        ids = section(detail, "provider-ids")
        assert paid_read["provider_transaction_id"] in ids
        assert paid_workflow in ids
        timeline = section(detail, "timeline")
        assert "status-created" in timeline and "status-succeeded" in timeline
        assert "the workflow" in timeline
        journal = section(detail, "journal")
        assert "provider:caurisflux:float" in journal and "recipients" in journal
        assert FCFA_12_500 in journal
        ui = stack.env.get("MOMOFLOW_CONSOLE__TEMPORAL_UI_URL", "http://127.0.0.1:8233")
        namespace = stack.env.get("MOMOFLOW_CONSOLE__TEMPORAL_NAMESPACE", "default")
        assert href(detail, "temporal-link") == (
            f"{ui}/namespaces/{namespace}/workflows/{quote(paid_workflow, safe='')}"
        )
        # The recipient's number is masked, as the state keeps it.
        assert paid_read["recipient_phone_masked"] in section(detail, "facts")
        assert phone not in detail.text and phone.removeprefix("+221") not in detail.text

        def delivered() -> httpx.Response | None:
            again = browser.get(f"/console/transactions/payout/{paid}")
            return again if 'data-delivery="delivered"' in again.text else None

        notified = wait_until(delivered, timeout=30, what="the delivery recorded")
        notifications = section(notified, "notifications")
        assert "payout.succeeded" in notifications and "204" in notifications

        failed_page = browser.get(f"/console/transactions/payout/{failed}")
        assert failed_page.status_code == 200
        assert "None: no notification was sent" in section(failed_page, "notifications")
        assert "None: no money moved" in section(failed_page, "journal")
        failed_read = stack.wait_for_payout(failed, {"failed"})
        assert failed_read["failure"]["code"] in section(failed_page, "facts")

        # Another merchant's transaction, and one that does not exist: the same 404.
        for path in (
            f"/console/transactions/payout/{other}",
            f"/console/transactions/payout/{paid}-NOPE",
            f"/console/transactions/transfer/{paid}",
        ):
            missing = browser.get(path)
            assert missing.status_code == 404, path
            assert "Nothing found here." in missing.text

        # The same pages in French.
        french = browser.get(f"/console/transactions/payout/{paid}?lang=fr")
        assert french.status_code == 200
        for text in ("Chronologie", "Écritures comptables", "Montants et frais", "réussie"):
            assert text in french.text
        listing = browser.get(f"{mine}&lang=fr")
        assert '<th scope="col">Statut</th>' in listing.text and FCFA_12_500 in listing.text
        assert '<html lang="fr">' in listing.text


# --------------------------------------------------------------------------- seeded records


def test_the_export_is_the_apis_statement_in_the_operators_days_and_is_audited(
    stack: Stack,
) -> None:
    day = _BASE_DAY
    douala = ZoneInfo("Africa/Douala")  # UTC+1 all year

    def at(days: int, hour: int, minute: int) -> datetime:
        return datetime.combine(day + timedelta(days=days), datetime.min.time(), douala).replace(
            hour=hour, minute=minute
        )

    ref = f"EX-{RUN}"
    payin = _state(Kind.PAYIN, f"{ref}-IN", at(0, 13, 0), TransactionStatus.SUCCEEDED)
    assert isinstance(payin, PayinState)
    records: list[tuple[Kind, TransactionState, str | None]] = [
        # 00:10 in Douala is still the day before in UTC: only the operator's day holds it.
        (
            Kind.PAYOUT,
            _state(Kind.PAYOUT, f"{ref}-P1", at(0, 0, 10), TransactionStatus.SUCCEEDED),
            None,
        ),
        (
            Kind.PAYOUT,
            _state(
                Kind.PAYOUT,
                f"{ref}-P2",
                at(0, 12, 0),
                TransactionStatus.FAILED,
                failure=Failure(code="recipient_unknown", message="=1+1 unknown wallet"),
            ),
            None,
        ),
        (Kind.PAYIN, payin, None),
        (
            Kind.REFUND,
            _state(
                Kind.REFUND, payin.reference, at(0, 14, 0), TransactionStatus.SUCCEEDED, payin=payin
            ),
            None,
        ),
        # 00:30 the next day in Douala is still this day in UTC: the operator's day leaves
        # it out.
        (
            Kind.PAYOUT,
            _state(Kind.PAYOUT, f"{ref}-LATE", at(1, 0, 30), TransactionStatus.SUCCEEDED),
            None,
        ),
    ]
    seed(stack, records)
    viewer = add_operator(
        stack, "viewer", merchant=SEEDED, language="en", time_zone="Africa/Douala"
    )
    gte = at(0, 0, 0).astimezone(UTC)
    lte = (at(1, 0, 0) - timedelta(microseconds=1)).astimezone(UTC)
    with stack.gateway(LEDGER_KEY) as api:
        statement = api.get(
            "/v1/transactions/export.csv",
            params={"created_gte": gte.isoformat(), "created_lte": lte.isoformat()},
        )
    assert statement.status_code == 200, statement.text
    with logged_in(stack, viewer) as browser:
        # The list page's statement link: the period only.
        listing = browser.get(f"/console/transactions?created_from={day}&created_to={day}")
        assert rows(listing) == [f"{ref}-P2", f"{ref}-P1"]
        statement_link = href(listing, "statement-export")
        assert (
            statement_link
            == f"/console/transactions/export.csv?created_from={day}&created_to={day}"
        )
        export = browser.get(statement_link)
        assert export.status_code == 200, export.text[-2000:]
        assert export.content == statement.content
        assert export.headers["content-type"] == statement.headers["content-type"]
        assert export.headers["content-disposition"] == statement.headers["content-disposition"]
        kept = [r["reference"] for r in csv.DictReader(io.StringIO(export.text))]
        assert kept == [f"{ref}-P1", f"{ref}-P2", f"{ref}-IN", f"{ref}-IN"]

        # Narrowed by the list's filters: the statement's rows, fewer of them.
        filtered_link = href(
            browser.get(f"/console/transactions?created_from={day}&created_to={day}&status=failed"),
            "transactions-export",
        )
        assert filtered_link is not None and "kind=payout" in filtered_link
        filtered = browser.get(filtered_link)
        assert filtered.status_code == 200
        whole = list(csv.DictReader(io.StringIO(statement.text)))
        assert list(csv.DictReader(io.StringIO(filtered.text))) == [
            r for r in whole if r["reference"] == f"{ref}-P2"
        ]
        assert filtered.text.splitlines()[0] == statement.text.splitlines()[0]
        assert "'=1+1 unknown wallet" in filtered.text  # formula-safe, as the API's

        refunds = browser.get(
            f"/console/transactions/export.csv?kind=refund&created_from={day}&created_to={day}"
        )
        assert [r["kind"] for r in csv.DictReader(io.StringIO(refunds.text))] == ["refund"]

        bad = browser.get("/console/transactions/export.csv?created_from=yesterday")
        assert bad.status_code == 400 and 'data-field="created_from"' in bad.text

        # The refund's page links to its payin; the payin's page exists.
        refund_page = browser.get(f"/console/transactions/refund/{ref}-IN")
        assert refund_page.status_code == 200
        assert f'href="/console/transactions/payin/{ref}-IN"' in refund_page.text
        assert "order cancelled" in refund_page.text
        assert browser.get(f"/console/transactions/payin/{ref}-IN").status_code == 200

    audits = export_audits(stack, f"operator:{viewer.name}")
    assert [(a.outcome, a.merchant, a.target) for a in audits] == [
        ("ok", SEEDED, "transactions"),
        ("ok", SEEDED, "transactions"),
        ("ok", SEEDED, "transactions"),
        ("refused", SEEDED, "transactions"),
    ]
    assert audits[0].detail == {
        "created_from": day.isoformat(),
        "created_to": day.isoformat(),
        "kind": "all",
    }
    assert audits[1].detail["status"] == "failed" and audits[1].detail["kind"] == "payout"
    assert audits[3].detail["created_from"] == "yesterday"


def test_pages_of_fifty_newest_first_campaigns_and_a_provider_amount_that_differs(
    stack: Stack,
) -> None:
    day = _BASE_DAY + timedelta(days=3)
    start = datetime.combine(day, datetime.min.time(), UTC)
    ref, campaign = f"PG-{RUN}", f"CMP-{RUN}"
    records: list[tuple[Kind, TransactionState, str | None]] = []
    for i in range(55):
        state = _state(
            Kind.PAYOUT,
            f"{ref}-{i:03d}",
            start + timedelta(minutes=i),
            TransactionStatus.SUCCEEDED if i != 7 else TransactionStatus.FAILED,
            amount=10_000 + i,
            provider_amount=9_000 if i == 7 else None,
        )
        records.append((Kind.PAYOUT, state, campaign if i % 11 == 0 else None))
    seed(stack, records)
    newest_first = [f"{ref}-{i:03d}" for i in reversed(range(55))]
    viewer = add_operator(stack, "viewer", merchant=SEEDED, language="en")
    with logged_in(stack, viewer) as browser:
        # The store's own pages (a period), and the reference search's (a prefix).
        for query in (f"created_from={day}&created_to={day}", f"reference={ref}-"):
            first = browser.get(f"/console/transactions?{query}")
            assert rows(first) == newest_first[:50]
            following = href(first, "next-page")
            assert following is not None and f"after={ref}-005" in following
            second = browser.get(f"/console/transactions{following}")
            assert rows(second) == newest_first[50:]
            assert href(second, "next-page") is None
            assert href(second, "first-page") is not None

        in_campaign = browser.get(f"/console/transactions?campaign={campaign}")
        assert rows(in_campaign) == [f"{ref}-{i:03d}" for i in (44, 33, 22, 11, 0)]
        assert f'href="/console/campaigns/{campaign}"' in row_html(in_campaign, f"{ref}-000")
        detail = browser.get(f"/console/transactions/payout/{ref}-000")
        assert f'<a id="campaign-link" href="/console/campaigns/{campaign}"' in detail.text

        differs = browser.get(f"/console/transactions/payout/{ref}-007")
        amounts = section(differs, "amounts")
        assert 'id="amount-mismatch"' in amounts
        assert "9\u202f000\u00a0FCFA" in amounts and "10\u202f007\u00a0FCFA" in amounts
        # A fee quoted on a payout that did not pay was not charged: the list shows none.
        listed = browser.get(f"/console/transactions?reference={ref}-00")
        assert '<td class="num">\u2014</td>' in row_html(listed, f"{ref}-007")
        assert '<td class="num">750\u00a0FCFA</td>' in row_html(listed, f"{ref}-006")


def test_bad_filters_are_a_400_naming_the_field_and_the_rule(stack: Stack) -> None:
    viewer = add_operator(stack, "viewer", language="en")
    cases = [
        ("status=paid", "status", "one_of"),
        ("provider=paypal", "provider", "one_of"),
        ("country=FR", "country", "one_of"),
        ("kind=transfer", "kind", "one_of"),
        ("created_from=2026-13-45", "created_from", "date"),
        ("created_to=01/02/2026", "created_to", "date"),
        ("created_from=2026-03-02&created_to=2026-03-01", "created_to", "not_before_created_from"),
        ("reference=not+a+reference!", "reference", "reference_pattern"),
        ("campaign=%3Cb%3Ecmp", "campaign", "reference_pattern"),
        ("after=NOPE-NEVER-A-REFERENCE", "after", "unknown_reference"),
    ]
    with logged_in(stack, viewer) as browser:
        for query, field, rule in cases:
            page = browser.get(f"/console/transactions?{query}")
            assert page.status_code == 400, (query, page.text[-2000:])
            problem = re.search(
                rf'<li data-field="{field}" data-rule="{rule}">(.*?)</li>', page.text
            )
            assert problem, (query, page.text[-3000:])
            assert f"({field})" in problem.group(1) and rule in problem.group(1)
            assert 'id="transactions"' not in page.text
            assert 'id="transactions-export"' not in page.text
        hostile = browser.get("/console/transactions?status=%3Cscript%3Ealert(1)%3C/script%3E")
        assert hostile.status_code == 400
        assert XSS not in hostile.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile.text
        # The form keeps what was typed; the message is in the page's language.
        french = browser.get("/console/transactions?status=paid&lang=fr")
        assert french.status_code == 400
        assert "Statut (status)" in french.text and "règle : one_of" in french.text
        assert "Rechercher" in french.text
