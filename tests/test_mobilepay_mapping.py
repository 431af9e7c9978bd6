"""Pure mapping of the MOBILE-PAY adapter, and its history search over canned pages.

``httpx.MockTransport`` only serves canned answers: the paging, duplicate-search and login
logic under test is the adapter's own.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from momoflow.models import (
    Direction,
    InitiatePayinInput,
    InitiatePayoutInput,
    ListedTransaction,
    ListTransactionsInput,
    Operator,
    PayinMode,
    PaymentStatus,
    PayoutQuoteInput,
    ProviderName,
    RefundInput,
    StatusLookup,
)
from momoflow.money import Country, Currency
from momoflow.providers import errors
from momoflow.providers.base import PaymentProvider
from momoflow.providers.mobilepay import MobilePayClient, MobilePayCredentials
from momoflow.providers.mobilepay import mapping as mp
from momoflow.providers.mobilepay.attempts import (
    HeartbeatJournal,
    MemoryJournal,
    SendRecord,
    proves_not_executed,
    record_after,
)
from momoflow.providers.mobilepay.client import CLOCK_MARGIN, MAX_SEARCH_PAGES
from momoflow.providers.mobilepay.wire import MobilePayTransactionItem

NOW = 1_800_000_000.0
NOW_DT = datetime.fromtimestamp(NOW, UTC)
BASE = "https://api.mobile-pay.test/api/v1"
TOKEN = "mp_live_secret_token"
HOOK_TOKEN = "mpwh_url_secret"
REF = "payout-acme-INV-1"
PHONE = "+2250701020304"
MARK = mp.marker(REF)
#: The consistency window the test clients use.
WINDOW_S = 600

Handler = Callable[[httpx.Request], httpx.Response]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Provider:
    """Canned MOBILE-PAY answers, routed by method and path; every request is kept."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, handler: Handler | httpx.Response) -> None:
        self.routes[(method, path)] = handler if callable(handler) else (lambda _r: handler)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            return httpx.Response(404, json={"error": {"code": "NOT_FOUND", "message": "no"}})
        return route(request)

    def sent(self, method: str, path: str | None = None) -> list[httpx.Request]:
        return [
            r for r in self.requests if r.method == method and (path is None or r.url.path == path)
        ]


def _client(
    provider: Provider,
    credentials: MobilePayCredentials | None = None,
    clock: Clock | None = None,
    journal: MemoryJournal | None = None,
) -> MobilePayClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(provider.handle))
    return MobilePayClient(
        http,
        base_url=BASE,
        credentials=credentials or MobilePayCredentials(api_token=TOKEN, webhook_token=HOOK_TOKEN),
        merchant_id="momoflow",
        consistency_window_s=WINDOW_S,
        journal=journal if journal is not None else MemoryJournal(),
        clock=clock or Clock(),
    )


def _mp_error_with_cause(cause: Exception) -> errors.ProviderError:
    error = errors.ProviderUnavailable("x", provider="mobilepay", operation="initiate_payout")
    error.__cause__ = cause
    return error


def _unknown_since(seconds_ago: float) -> MemoryJournal:
    """A journal in which an earlier attempt's outcome became unknown ``seconds_ago``."""
    journal = MemoryJournal()
    journal.write(SendRecord(reference=REF, unknown_since=NOW_DT - timedelta(seconds=seconds_ago)))
    return journal


def _payout(**changes: Any) -> InitiatePayoutInput:
    values: dict[str, Any] = {
        "provider": ProviderName.MOBILEPAY,
        "external_reference": REF,
        "idempotency_key": "k",
        "quote_id": None,
        "amount": 25_000,
        "currency": Currency.XOF,
        "country": Country.CI,
        "operator": Operator.WAVE,
        "recipient_phone": PHONE,
        "recipient_name": "Awa Kone",
        "description": "Salaire mars",
    }
    return InitiatePayoutInput(**{**values, **changes})


def _payin(**changes: Any) -> InitiatePayinInput:
    values: dict[str, Any] = {
        "provider": ProviderName.MOBILEPAY,
        "mode": PayinMode.QR,
        "external_reference": "payin-acme-ORD-9",
        "idempotency_key": "k",
        "amount": 7_500,
        "currency": Currency.XOF,
        "country": Country.CI,
        "description": "Commande 9",
    }
    return InitiatePayinInput(**{**values, **changes})


def _item(**fields: Any) -> dict[str, Any]:
    return {
        "id": "TRF1",
        "type": "transfer",
        "status": "processing",
        "amount": 25_000,
        "currency": "FCFA",
        "created_at": (NOW_DT - timedelta(minutes=5)).isoformat(),
        **fields,
    }


def _page(items: list[dict[str, Any]], *, total: int | None = None) -> httpx.Response:
    body: dict[str, Any] = {"data": items, "limit": 100, "offset": 0}
    if total is not None:
        body["total"] = total
    return httpx.Response(200, json=body)


def _created_transfer(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        201,
        json={
            "transfer_id": "TRF9",
            "status": "pending",
            "amount": 25_000,
            "currency": "XOF",
            "recipient_phone": PHONE,
            "created_at": NOW_DT.isoformat(),
        },
    )


# --------------------------------------------------------------------------- statuses


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("pending", mp.TransactionKind.TRANSFER, PaymentStatus.PENDING),
        ("processing", mp.TransactionKind.TRANSFER, PaymentStatus.PENDING),
        ("completed", mp.TransactionKind.TRANSFER, PaymentStatus.SUCCEEDED),
        ("COMPLETED", mp.TransactionKind.TRANSFER, PaymentStatus.SUCCEEDED),
        ("failed", mp.TransactionKind.TRANSFER, PaymentStatus.FAILED),
        ("expired", mp.TransactionKind.TRANSFER, PaymentStatus.PENDING),
        ("reversed", mp.TransactionKind.TRANSFER, PaymentStatus.PENDING),
        ("pending", mp.TransactionKind.PAYMENT, PaymentStatus.PENDING),
        ("received", mp.TransactionKind.PAYMENT, PaymentStatus.SUCCEEDED),
        ("failed", mp.TransactionKind.PAYMENT, PaymentStatus.FAILED),
        ("expired", mp.TransactionKind.PAYMENT, PaymentStatus.EXPIRED),
        ("completed", mp.TransactionKind.PAYMENT, PaymentStatus.PENDING),
        ("", mp.TransactionKind.PAYMENT, PaymentStatus.PENDING),
    ],
)
def test_status_words_map_conservatively(
    raw: str, kind: mp.TransactionKind, expected: PaymentStatus
) -> None:
    assert mp.map_status(raw, kind) is expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("FCFA", Currency.XOF),
        ("fcfa", Currency.XOF),
        ("F CFA", Currency.XOF),
        ("XOF", Currency.XOF),
        ("XAF", Currency.XAF),
        ("EUR", None),
        (None, None),
    ],
)
def test_fcfa_normalises_to_xof(code: str | None, expected: Currency | None) -> None:
    assert mp.normalise_currency(code) is expected


# --------------------------------------------------------------------------- requests


def test_local_transfer_opens_its_description_with_the_marker() -> None:
    body = mp.build_transfer_request(_payout())
    assert mp.transfer_path(body) == "/transfers/local"
    assert json.loads(body.model_dump_json(exclude_none=True)) == {
        "recipient_phone": PHONE,
        "amount": 25_000,
        "description": f"{MARK} Salaire mars [ref {REF}]",
        "metadata": {"reference": REF},
    }


def test_other_countries_go_international() -> None:
    body = mp.build_transfer_request(
        _payout(country=Country.SN, recipient_phone="+221771234567", description="")
    )
    assert mp.transfer_path(body) == "/transfers/international"
    assert json.loads(body.model_dump_json(exclude_none=True)) == {
        "recipient_country": "SN",
        "recipient_phone": "+221771234567",
        "amount": 25_000,
        "description": f"{MARK} [ref {REF}]",
        "metadata": {"reference": REF},
    }


def test_the_marker_is_short_derived_from_the_reference_and_never_random() -> None:
    assert re.fullmatch(r"\[mf:[a-z2-7]{12}\]", MARK)
    assert len(MARK) == mp.MARKER_LENGTH == 17
    assert mp.marker(REF) == MARK
    assert mp.marker("payout-acme-INV-2") != MARK
    # Changing the derivation would orphan every transfer in flight: pin one value.
    assert mp.marker("payout-acme-INV-1") == "[mf:aoyhg7ba2hvr]"


def test_long_description_is_trimmed_but_keeps_marker_and_reference() -> None:
    text = mp.build_description("x" * 500, REF)
    assert len(text) == mp.DESCRIPTION_MAX
    assert text.startswith(f"{MARK} x")
    assert text.endswith(f"x [ref {REF}]")
    long_ref = "r" * 200
    assert mp.build_description("hello", long_ref) == f"{mp.marker(long_ref)} hello"
    assert mp.build_description("  Salaire \n mars ", REF) == f"{MARK} Salaire mars [ref {REF}]"


def test_non_xof_amounts_are_refused_before_any_call() -> None:
    with pytest.raises(errors.UnsupportedOperation):
        mp.build_transfer_request(_payout(currency=Currency.XAF))


# --------------------------------------------------------------------------- matching


def _mp_item(**fields: Any) -> MobilePayTransactionItem:
    return MobilePayTransactionItem.model_validate(_item(**fields))


def test_the_marker_survives_every_truncation_that_keeps_its_length() -> None:
    sent = mp.build_description("Salaire mars", REF)
    for kept in range(mp.MARKER_LENGTH, len(sent) + 1):
        assert mp.read_marker(sent[:kept], REF) is mp.Attribution.OURS, kept
        assert mp.read_marker(sent[:kept], "payout-acme-INV-2") is mp.Attribution.OTHER, kept
    for kept in range(mp.MARKER_LENGTH):
        # Cut inside the marker: it could be ours, so it proves nothing either way.
        assert mp.read_marker(sent[:kept], REF) is mp.Attribution.UNREADABLE, kept


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        (f"  {MARK.upper()} SALAIRE", mp.Attribution.OURS),
        (f"{MARK}", mp.Attribution.OURS),
        (f"{mp.marker('x')} Salaire", mp.Attribution.OTHER),
        ("[mf:zz", mp.Attribution.OTHER),
        (None, mp.Attribution.UNREADABLE),
        ("", mp.Attribution.UNREADABLE),
        ("Paiement salaire", mp.Attribution.UNREADABLE),
        (f"Salaire {MARK}", mp.Attribution.UNREADABLE),  # ours only when it opens the text
    ],
)
def test_markers_are_read_at_the_start_only(
    description: str | None, expected: mp.Attribution
) -> None:
    assert mp.read_marker(description, REF) is expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"metadata": {"reference": REF}, "description": "x"}, mp.Attribution.OURS),
        ({"metadata": {"reference": "other"}, "description": "x"}, mp.Attribution.OTHER),
        # Fields that contradict each other say nothing.
        ({"metadata": {"reference": "other"}, "description": MARK}, mp.Attribution.UNREADABLE),
        ({"metadata": {"reference": 42}, "description": MARK}, mp.Attribution.OURS),
        ({"reference": REF}, mp.Attribution.OURS),
        # ``reference`` may be MOBILE-PAY's own: it only ever says "ours".
        ({"reference": "MP-778812", "description": MARK}, mp.Attribution.OURS),
        ({"reference": "MP-778812"}, mp.Attribution.UNREADABLE),
        ({"description": f"x [ref {REF}]"}, mp.Attribution.OURS),
        ({"description": "x [ref payout-acme-INV-12]"}, mp.Attribution.OTHER),
        ({"description": "x [ref payout-acme-IN"}, mp.Attribution.UNREADABLE),
        ({}, mp.Attribution.UNREADABLE),
    ],
)
def test_attribution_reads_metadata_reference_marker_then_tag(
    fields: dict[str, Any], expected: mp.Attribution
) -> None:
    assert mp.attribute(_mp_item(**fields), REF) is expected


def _judge(item: MobilePayTransactionItem, **overrides: Any) -> mp.Verdict:
    args: dict[str, Any] = {
        "kind": mp.TransactionKind.TRANSFER,
        "reference": REF,
        "amount": 25_000,
        "phone": PHONE,
        "since": NOW_DT - timedelta(hours=1),
        "until": NOW_DT + timedelta(minutes=15),
    }
    return mp.judge_existing(item, **{**args, **overrides})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"description": MARK}, mp.Verdict.MATCH),
        ({"description": MARK, "recipient_phone": PHONE}, mp.Verdict.MATCH),
        ({"description": MARK, "recipient_phone": "+225 07 01 02 03 04"}, mp.Verdict.MATCH),
        ({"description": MARK, "recipient_phone": "+225******0304"}, mp.Verdict.MATCH),
        ({"description": MARK, "amount": None}, mp.Verdict.MATCH),
        ({"description": MARK, "amount": 25_001}, mp.Verdict.CONFLICT),
        ({"description": MARK, "recipient_phone": "+2250701020399"}, mp.Verdict.CONFLICT),
        ({"description": MARK, "recipient_phone": "+225******99"}, mp.Verdict.CONFLICT),
        ({"description": MARK, "type": "payment"}, mp.Verdict.NONE),
        (
            {"description": MARK, "created_at": (NOW_DT - timedelta(hours=2)).isoformat()},
            mp.Verdict.NONE,
        ),
        (
            {"description": MARK, "created_at": (NOW_DT + timedelta(hours=1)).isoformat()},
            mp.Verdict.NONE,
        ),
        ({"description": MARK, "created_at": None}, mp.Verdict.MATCH),
        ({"description": mp.marker("payout-acme-INV-2")}, mp.Verdict.NONE),
        ({"description": MARK[:9]}, mp.Verdict.UNATTRIBUTABLE),
        ({"description": MARK[:9], "amount": 100}, mp.Verdict.NONE),
        ({"description": MARK[:9], "recipient_phone": "+2250701020399"}, mp.Verdict.NONE),
        ({}, mp.Verdict.UNATTRIBUTABLE),
    ],
)
def test_a_match_needs_the_marker_amount_number_and_time_window(
    fields: dict[str, Any], expected: mp.Verdict
) -> None:
    assert _judge(_mp_item(**fields)) is expected


def test_a_payment_is_judged_without_a_number() -> None:
    payment = _mp_item(type="payment", description=MARK, recipient_phone="+2250700000000")
    assert _judge(payment, kind=mp.TransactionKind.PAYMENT, phone=None) is mp.Verdict.MATCH


@pytest.mark.parametrize(
    ("error", "proof"),
    [
        (_mp_error_with_cause(httpx.ConnectError("refused")), True),
        (_mp_error_with_cause(httpx.PoolTimeout("pool")), True),
        (_mp_error_with_cause(httpx.ReadTimeout("read")), False),
        (_mp_error_with_cause(httpx.WriteError("write")), False),
        (
            errors.ProviderRateLimited("x", provider="mobilepay", operation="o", http_status=429),
            True,
        ),
        (
            errors.ProviderRateLimited("x", provider="mobilepay", operation="o", http_status=400),
            False,
        ),
        (errors.ProviderAuthError("x", provider="mobilepay", operation="o", http_status=401), True),
        (errors.InvalidRecipient("x", provider="mobilepay", operation="o", http_status=422), True),
        (
            errors.ProviderUnavailable("x", provider="mobilepay", operation="o", http_status=503),
            False,
        ),
        (
            errors.ProviderProtocolError("x", provider="mobilepay", operation="o", http_status=201),
            False,
        ),
        (
            errors.DuplicateReference("x", provider="mobilepay", operation="o", http_status=409),
            False,
        ),
    ],
)
def test_only_some_failures_prove_nothing_executed(
    error: errors.ProviderError, proof: bool
) -> None:
    assert proves_not_executed(error) is proof


# --------------------------------------------------------------------------- payouts


async def test_first_attempt_posts_without_searching() -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/transfers/local", _created_transfer)
    tx = await _client(provider).initiate_payout(_payout())
    assert [r.method for r in provider.requests] == ["POST"]
    sent = provider.requests[0]
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(sent.content)["metadata"] == {"reference": REF}
    assert tx.provider_transaction_id == "TRF9"
    assert tx.status is PaymentStatus.PENDING
    assert tx.external_reference == REF
    assert tx.currency is Currency.XOF


@pytest.mark.parametrize(
    "ours",
    [
        {"description": f"{MARK} Salaire mars [ref {REF}]"},
        # MOBILE-PAY kept only the start of the description: the marker survives.
        {"description": f"{MARK} Salaire mars [ref {REF}]"[: mp.MARKER_LENGTH]},
        {"description": f"{MARK} Sal"},
        {"description": MARK.upper() + " SALAIRE"},
        {"metadata": {"reference": REF}},
        {"description": f"Salaire mars [ref {REF}]"},  # written before the marker existed
        {"reference": REF, "recipient_phone": "+225 07 01 02 03 04"},
        {"description": MARK, "recipient_phone": "+225******0304"},
    ],
)
async def test_retry_after_an_unknown_outcome_returns_the_existing_transfer(
    ours: dict[str, Any],
) -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/transfers/local", _created_transfer)
    other = _item(id="OTHER", description=f"{mp.marker('payout-acme-INV-10')} Salaire mars")
    provider.on("GET", "/api/v1/transactions", _page([other, _item(**ours)]))
    requested_at = NOW_DT - timedelta(hours=1)
    tx = await _client(provider).initiate_payout(_payout(attempt=2, requested_at=requested_at))
    assert provider.sent("POST") == []
    assert tx.provider_transaction_id == "TRF1"
    assert tx.status is PaymentStatus.PENDING
    assert tx.currency is Currency.XOF
    assert tx.external_reference == REF
    params = provider.sent("GET")[0].url.params
    assert params["limit"] == "100"
    assert params["offset"] == "0"
    assert params["start_date"] == (requested_at - CLOCK_MARGIN).date().isoformat()
    assert params["end_date"] == (NOW_DT + timedelta(days=1)).date().isoformat()


async def test_nothing_found_is_searched_again_within_the_window_never_sent() -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/transfers/local", _created_transfer)
    others = [_item(id=f"T{i}", description=f"{mp.marker(f'o-{i}')} x") for i in range(100)]

    def pages(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        return _page(others if offset == 0 else others[:30], total=130)

    provider.on("GET", "/api/v1/transactions", pages)
    journal = MemoryJournal()
    client = _client(provider, journal=journal)
    with pytest.raises(errors.ProviderUnavailable, match="never sending again"):
        await client.initiate_payout(_payout(attempt=3))
    assert [r.url.params["offset"] for r in provider.sent("GET")] == ["0", "100"]
    assert provider.sent("POST") == []
    # The window counts from the first time the unknown outcome was noticed.
    record = journal.read(REF)
    assert record is not None and record.unknown_since == NOW_DT


async def test_nothing_found_once_the_window_has_passed_reconciles() -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/transfers/local", _created_transfer)
    provider.on("GET", "/api/v1/transactions", _page([_item(amount=1, description="x")]))
    clock = Clock()
    journal = MemoryJournal()
    client = _client(provider, clock=clock, journal=journal)
    with pytest.raises(errors.ProviderUnavailable):
        await client.initiate_payout(_payout(attempt=2))
    clock.now += WINDOW_S - 1
    with pytest.raises(errors.ProviderUnavailable):
        await client.initiate_payout(_payout(attempt=3))
    clock.now += 1
    with pytest.raises(errors.ProviderConflict) as info:
        await client.initiate_payout(_payout(attempt=4))
    assert type(info.value) is errors.ProviderConflict
    assert MARK in info.value.message and "never sent again" in info.value.message
    assert "10 min" in info.value.message
    assert provider.sent("POST") == []


async def test_short_page_without_total_or_limit_reads_on_to_an_empty_page() -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/transfers/local", _created_transfer)
    first = [_item(id=f"T{i}", description=f"{mp.marker(f'o-{i}')}") for i in range(20)]

    def pages(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        return httpx.Response(200, json={"data": first if offset == 0 else []})

    provider.on("GET", "/api/v1/transactions", pages)
    with pytest.raises(errors.ProviderUnavailable):
        await _client(provider).initiate_payout(_payout(attempt=2))
    assert [r.url.params["offset"] for r in provider.sent("GET")] == ["0", "20"]
    assert provider.sent("POST") == []


async def test_retry_finds_the_transfer_on_a_later_page() -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/transfers/local", _created_transfer)
    others = [_item(id=f"T{i}", description=f"{mp.marker(f'o-{i}')}") for i in range(100)]

    def pages(request: httpx.Request) -> httpx.Response:
        if request.url.params["offset"] == "0":
            return _page(others)
        return _page([_item(id="MINE", description=MARK)])

    provider.on("GET", "/api/v1/transactions", pages)
    tx = await _client(provider).initiate_payout(_payout(attempt=2))
    assert provider.sent("POST") == []
    assert tx.provider_transaction_id == "MINE"


async def test_search_that_cannot_finish_refuses_to_post() -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/transfers/local", _created_transfer)
    full = [_item(id=f"T{i}", description="salary") for i in range(100)]
    provider.on("GET", "/api/v1/transactions", _page(full, total=50_000))
    with pytest.raises(errors.ProviderUnavailable):
        await _client(provider).initiate_payout(_payout(attempt=2))
    assert len(provider.sent("GET")) == MAX_SEARCH_PAGES
    assert provider.sent("POST") == []


async def test_newest_first_history_stops_at_the_window() -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/transfers/local", _created_transfer)
    requested_at = NOW_DT - timedelta(hours=2)
    items = [
        _item(id=f"T{i}", description="x", created_at=(NOW_DT - timedelta(hours=i)).isoformat())
        for i in range(100)
    ]
    provider.on("GET", "/api/v1/transactions", _page(items, total=10_000))
    with pytest.raises(errors.ProviderUnavailable):
        await _client(provider).initiate_payout(_payout(attempt=2, requested_at=requested_at))
    assert len(provider.sent("GET")) == 1
    assert provider.sent("POST") == []


@pytest.mark.parametrize(
    "item",
    [
        _item(metadata={"reference": REF}, amount=30_000),
        _item(description=MARK, recipient_phone="+2250799999999"),
        _item(description=f"{MARK} Salaire"[:20], amount=25_001),
    ],
)
async def test_our_marker_with_other_details_is_a_conflict_at_once(item: dict[str, Any]) -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/transfers/local", _created_transfer)
    provider.on("GET", "/api/v1/transactions", _page([item]))
    with pytest.raises(errors.DuplicateReference):
        await _client(provider).initiate_payout(_payout(attempt=2))
    assert provider.sent("POST") == []


@pytest.mark.parametrize(
    "item",
    [
        _item(),  # no description at all
        _item(description="[mf:"),  # cut inside a marker that may be ours
        _item(description=MARK[:10]),
        _item(description="Salaire mars [ref payo"),  # an older description, tag cut
        _item(description="Paiement", recipient_phone="+225******0304"),
    ],
)
async def test_unattributable_transfers_reconcile_once_the_window_has_passed(
    item: dict[str, Any],
) -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/transfers/local", _created_transfer)
    provider.on("GET", "/api/v1/transactions", _page([item]))
    client = _client(provider, journal=_unknown_since(WINDOW_S))
    with pytest.raises(errors.DuplicateReference, match="carry no readable marker"):
        await client.initiate_payout(_payout(attempt=2))
    assert provider.sent("POST") == []


async def test_items_outside_the_time_window_or_of_another_amount_or_number_are_not_ours() -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/transfers/local", _created_transfer)
    old = (NOW_DT - timedelta(days=3)).isoformat()
    future = (NOW_DT + CLOCK_MARGIN + timedelta(minutes=1)).isoformat()
    provider.on(
        "GET",
        "/api/v1/transactions",
        _page(
            [
                _item(amount=1),
                _item(created_at=old, description=MARK),
                _item(created_at=future),
                _item(type="payment"),
                _item(recipient_phone="+2250799999999"),
                _item(description=f"{mp.marker('payout-acme-INV-2')} Salaire mars"),
                _item(description="[mf:zz"),  # cut, and cannot be the start of ours
            ]
        ),
    )
    client = _client(provider, journal=_unknown_since(WINDOW_S))
    with pytest.raises(errors.ProviderConflict) as info:
        await client.initiate_payout(_payout(attempt=2, requested_at=NOW_DT - timedelta(hours=1)))
    assert type(info.value) is errors.ProviderConflict
    assert provider.sent("POST") == []


# ----------------------------------------------------------------- re-send only on proof


def _raises(exc: Exception) -> Handler:
    def handler(_request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("first", "proof"),
    [
        (_raises(httpx.ConnectError("connection refused")), True),
        (_raises(httpx.ConnectTimeout("connect timed out")), True),
        (httpx.Response(429, json={"error": {"code": "RATE_LIMITED", "message": "x"}}), True),
        (httpx.Response(401, json={"error": {"code": "UNAUTHORIZED", "message": "x"}}), True),
        (_raises(httpx.ReadTimeout("no answer")), False),
        (_raises(httpx.RemoteProtocolError("server disconnected")), False),
        (httpx.Response(502, text="Bad Gateway"), False),
        (
            httpx.Response(503, json={"error": {"code": "SERVICE_UNAVAILABLE", "message": "x"}}),
            False,
        ),
        (httpx.Response(201, text='{"transfer_id": "TRF9", "sta'), False),
    ],
)
async def test_a_transfer_is_sent_again_only_after_proof_that_nothing_executed(
    first: Handler | httpx.Response, proof: bool
) -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/transfers/local", first)
    provider.on("GET", "/api/v1/transactions", _page([]))
    journal = MemoryJournal()
    client = _client(provider, journal=journal)
    with pytest.raises(errors.ProviderError) as info:
        await client.initiate_payout(_payout(attempt=1))
    assert proves_not_executed(info.value) is proof

    provider.on("POST", "/api/v1/transfers/local", _created_transfer)
    if proof:
        tx = await client.initiate_payout(_payout(attempt=2))
        assert tx.provider_transaction_id == "TRF9"
        assert provider.sent("GET") == []
    else:
        with pytest.raises(errors.ProviderUnavailable, match="never sending again"):
            await client.initiate_payout(_payout(attempt=2))
        assert len(provider.sent("GET")) == 1
    assert len(provider.sent("POST")) == 1 + proof


async def test_the_proof_must_cover_every_earlier_attempt() -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/transfers/local", _raises(httpx.ConnectError("refused")))
    provider.on("GET", "/api/v1/transactions", _page([]))
    journal = MemoryJournal()
    client = _client(provider, journal=journal)
    with pytest.raises(errors.ProviderUnavailable):
        await client.initiate_payout(_payout(attempt=1))
    with pytest.raises(errors.ProviderUnavailable):
        await client.initiate_payout(_payout(attempt=2))
    assert journal.read(REF) == SendRecord(reference=REF, unsent_through=2)
    provider.on("POST", "/api/v1/transfers/local", _raises(httpx.ReadTimeout("lost")))
    with pytest.raises(errors.ProviderUnavailable):
        await client.initiate_payout(_payout(attempt=3))
    # Attempt 3 may have executed: attempt 4 searches, and so does every later one.
    assert journal.read(REF) == SendRecord(reference=REF, unsent_through=2, unknown_since=NOW_DT)
    provider.on("POST", "/api/v1/transfers/local", _created_transfer)
    for attempt in (4, 5):
        with pytest.raises(errors.ProviderUnavailable, match="never sending again"):
            await client.initiate_payout(_payout(attempt=attempt))
    assert len(provider.sent("POST")) == 3
    assert len(provider.sent("GET")) == 2


async def test_an_attempt_that_left_no_record_is_presumed_to_have_reached_mobilepay() -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/transfers/local", _created_transfer)
    provider.on("GET", "/api/v1/transactions", _page([]))
    journal = MemoryJournal()
    # Attempt 1 proved nothing executed; attempt 2 died without a word (a worker crash).
    journal.write(SendRecord(reference=REF, unsent_through=1))
    with pytest.raises(errors.ProviderUnavailable):
        await _client(provider, journal=journal).initiate_payout(_payout(attempt=3))
    assert provider.sent("POST") == []
    # A record about another payout proves nothing about this one.
    stranger = MemoryJournal()
    stranger.write(SendRecord(reference="payout-acme-OTHER", unsent_through=5))
    with pytest.raises(errors.ProviderUnavailable):
        await _client(provider, journal=stranger).initiate_payout(_payout(attempt=2))
    assert provider.sent("POST") == []


async def test_a_failed_login_is_proof_the_transfer_was_never_sent() -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/auth/login", _raises(httpx.ReadTimeout("slow login")))
    provider.on("POST", "/api/v1/transfers/local", _created_transfer)
    journal = MemoryJournal()
    client = _client(provider, _login_creds(), journal=journal)
    with pytest.raises(errors.ProviderUnavailable):
        await client.initiate_payout(_payout(attempt=1))
    provider.on("POST", "/api/v1/auth/login", httpx.Response(200, json={"access_token": "s"}))
    tx = await client.initiate_payout(_payout(attempt=2))
    assert tx.provider_transaction_id == "TRF9"
    assert len(provider.sent("POST", "/api/v1/transfers/local")) == 1


def test_record_after_keeps_the_first_unknown_moment() -> None:
    later = NOW_DT + timedelta(minutes=3)
    first = record_after(None, reference=REF, attempt=1, executed_nothing=False, now=NOW_DT)
    assert first == SendRecord(reference=REF, unknown_since=NOW_DT)
    again = record_after(first, reference=REF, attempt=2, executed_nothing=True, now=later)
    assert again == first  # a proof after an unknown attempt does not cover that attempt
    clean = record_after(None, reference=REF, attempt=1, executed_nothing=True, now=NOW_DT)
    assert clean.allows_send(2) and not clean.allows_send(3)


def test_the_heartbeat_journal_keeps_nothing_outside_an_activity() -> None:
    journal = HeartbeatJournal()
    journal.write(SendRecord(reference=REF, unsent_through=1))
    assert journal.read(REF) is None


async def test_unreadable_success_answer_is_a_protocol_error() -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/transfers/local", httpx.Response(201, text="<html>ok</html>"))
    with pytest.raises(errors.ProviderProtocolError):
        await _client(provider).initiate_payout(_payout())
    provider.on("POST", "/api/v1/transfers/local", httpx.Response(201, json={"status": "ok"}))
    with pytest.raises(errors.ProviderProtocolError):
        await _client(provider).initiate_payout(_payout())


async def test_protocol_errors_do_not_chain_the_phone_bearing_input() -> None:
    provider = Provider()
    provider.on(
        "GET",
        "/api/v1/transactions",
        _page([_item(amount="lots", recipient_phone=PHONE, metadata={"reference": REF})]),
    )
    with pytest.raises(errors.ProviderProtocolError) as info:
        await _client(provider).initiate_payout(_payout(attempt=2))
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert PHONE not in str(info.value)
    assert provider.sent("POST") == []


# --------------------------------------------------------------------------- status


async def test_status_lookup_by_id_reads_the_history() -> None:
    provider = Provider()
    provider.on(
        "GET",
        "/api/v1/transactions",
        _page(
            [
                _item(id="TX-A", transfer_id="TRF-A"),
                _item(
                    id="TX-B",
                    transfer_id="TRF-B",
                    status="failed",
                    error_code="INVALID_PHONE",
                    error_message=f"Numéro {PHONE} invalide",
                ),
            ]
        ),
    )
    lookup = StatusLookup(
        provider=ProviderName.MOBILEPAY, provider_transaction_id="TRF-B", external_reference=REF
    )
    tx = await _client(provider).payout_status(lookup)
    assert tx.provider_transaction_id == "TX-B"
    assert tx.status is PaymentStatus.FAILED
    assert tx.failure_code == "INVALID_PHONE"
    assert tx.failure_message is not None and PHONE not in tx.failure_message
    assert tx.currency is Currency.XOF


async def test_status_lookup_by_reference_when_the_id_was_lost() -> None:
    provider = Provider()
    provider.on(
        "GET",
        "/api/v1/transactions",
        _page([_item(id="T0"), _item(id="T1", status="completed", metadata={"reference": REF})]),
    )
    since = NOW_DT - timedelta(days=4)
    lookup = StatusLookup(
        provider=ProviderName.MOBILEPAY,
        provider_transaction_id=None,
        external_reference=REF,
        since=since,
    )
    tx = await _client(provider).payout_status(lookup)
    assert tx.provider_transaction_id == "T1"
    assert tx.status is PaymentStatus.SUCCEEDED
    params = provider.sent("GET")[0].url.params
    assert params["start_date"] == (since - CLOCK_MARGIN).date().isoformat()


async def test_payin_status_maps_payment_words() -> None:
    provider = Provider()
    provider.on(
        "GET",
        "/api/v1/transactions",
        _page([_item(id="PAY1", type="payment", status="expired")]),
    )
    lookup = StatusLookup(
        provider=ProviderName.MOBILEPAY, provider_transaction_id="PAY1", external_reference="r"
    )
    tx = await _client(provider).payin_status(lookup)
    assert tx.status is PaymentStatus.EXPIRED


async def test_not_found_is_not_visible_yet_never_failed() -> None:
    provider = Provider()
    provider.on("GET", "/api/v1/transactions", _page([_item(id="T0")]))
    lookup = StatusLookup(
        provider=ProviderName.MOBILEPAY, provider_transaction_id="TRF-X", external_reference=REF
    )
    with pytest.raises(errors.ProviderUnavailable, match="not visible yet"):
        await _client(provider).payout_status(lookup)


# --------------------------------------------------------------------------- errors


def _error(
    status: int, body: object, headers: dict[str, str] | None = None
) -> errors.ProviderError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return mp.classify_error("initiate_payout", status, raw, headers or {}, now=NOW)


def _err(code: str, message: str = "x") -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (429, _err("RATE_LIMITED"), errors.ProviderRateLimited),
        (500, _err("INTERNAL"), errors.ProviderUnavailable),
        (503, b"Service Unavailable", errors.ProviderUnavailable),
        (408, b"", errors.ProviderUnavailable),
        (401, _err("UNAUTHORIZED"), errors.ProviderAuthError),
        (403, b"Forbidden", errors.ProviderAuthError),
        (422, _err("INSUFFICIENT_FUNDS", "Solde insuffisant"), errors.InsufficientBalance),
        (422, _err("INVALID_PHONE"), errors.InvalidRecipient),
        (404, _err("RECIPIENT_NOT_FOUND"), errors.InvalidRecipient),
        (422, _err("INVALID_AMOUNT"), errors.InvalidAmount),
        (422, _err("INVALID_COUNTRY"), errors.OperatorUnavailable),
        (422, {"code": "invalid_phone", "message": "flat"}, errors.InvalidRecipient),
        (400, {"error": "Bad Request", "message": "nope"}, errors.InvalidRequest),
        (400, b"plain text error", errors.InvalidRequest),
        (422, _err("SOMETHING_NEW"), errors.InvalidRequest),
        (409, _err("DUPLICATE"), errors.DuplicateReference),
    ],
)
def test_errors_are_classified_by_status_and_code(
    status: int, body: object, expected: type
) -> None:
    error = _error(status, body)
    assert type(error) is expected
    assert error.provider == "mobilepay"
    assert error.http_status == status


def test_error_details_are_read_and_phone_numbers_masked() -> None:
    error = _error(422, _err("invalid_phone", f"Le numéro {PHONE} est invalide"))
    assert error.provider_code == "INVALID_PHONE"
    assert PHONE not in str(error)
    assert "0304" in error.message
    plain = _error(400, b"montant de 1 500 000 refuse")
    assert plain.message == "montant de 1 500 000 refuse"


def test_rate_limit_honours_retry_after_when_sent() -> None:
    limited = _error(429, _err("RATE_LIMITED"), {"Retry-After": "120"})
    assert isinstance(limited, errors.ProviderRateLimited)
    assert limited.retry_after == 120
    bare = _error(429, b"")
    assert isinstance(bare, errors.ProviderRateLimited)
    assert bare.retry_after is None


# --------------------------------------------------------------------------- auth


def _login_creds() -> MobilePayCredentials:
    return MobilePayCredentials(
        login_email="ops@acme.ci", login_password="hunter2", webhook_token=HOOK_TOKEN
    )


@pytest.mark.parametrize("token_field", ["access_token", "token"])
async def test_login_token_is_cached_until_shortly_before_expiry(token_field: str) -> None:
    provider = Provider()
    logins: list[dict[str, Any]] = []

    def login(request: httpx.Request) -> httpx.Response:
        logins.append(json.loads(request.content))
        return httpx.Response(200, json={token_field: f"sess-{len(logins)}", "expires_in": 3600})

    provider.on("POST", "/api/v1/auth/login", login)
    provider.on(
        "GET", "/api/v1/balance", httpx.Response(200, json={"balance": 10, "currency": "XOF"})
    )
    clock = Clock()
    client = _client(provider, _login_creds(), clock)
    await client.balances()
    await client.balances()
    assert logins == [{"email": "ops@acme.ci", "password": "hunter2"}]
    assert "Authorization" not in provider.sent("POST", "/api/v1/auth/login")[0].headers
    assert [r.headers["Authorization"] for r in provider.sent("GET")] == ["Bearer sess-1"] * 2
    clock.now += 3600 - 30
    await client.balances()
    assert len(logins) == 2
    assert provider.sent("GET")[-1].headers["Authorization"] == "Bearer sess-2"


async def test_401_drops_the_cached_token_and_the_next_attempt_logs_in_again() -> None:
    provider = Provider()
    count = {"login": 0, "balance": 0}

    def login(_request: httpx.Request) -> httpx.Response:
        count["login"] += 1
        return httpx.Response(200, json={"access_token": f"sess-{count['login']}"})

    def balance(_request: httpx.Request) -> httpx.Response:
        count["balance"] += 1
        if count["balance"] == 1:
            return httpx.Response(401, json=_err("UNAUTHORIZED", "token expired"))
        return httpx.Response(200, json={"balance": 10})

    provider.on("POST", "/api/v1/auth/login", login)
    provider.on("GET", "/api/v1/balance", balance)
    client = _client(provider, _login_creds())
    with pytest.raises(errors.ProviderAuthError):
        await client.balances()
    assert count["login"] == 1
    await client.balances()
    assert count["login"] == 2


async def test_refused_login_is_an_auth_error_not_a_decline() -> None:
    provider = Provider()
    provider.on("POST", "/api/v1/auth/login", httpx.Response(422, json=_err("INVALID_CREDENTIALS")))
    with pytest.raises(errors.ProviderAuthError) as info:
        await _client(provider, _login_creds()).initiate_payout(_payout())
    assert "hunter2" not in str(info.value)
    assert provider.sent("POST", "/api/v1/transfers/local") == []


def test_credentials_repr_hides_secrets() -> None:
    creds = MobilePayCredentials(
        api_token=TOKEN,
        login_email="ops@acme.ci",
        login_password="hunter2",
        webhook_token=HOOK_TOKEN,
    )
    text = repr(creds)
    assert TOKEN not in text and "hunter2" not in text and HOOK_TOKEN not in text
    assert "ops@acme.ci" in text


# --------------------------------------------------------------------------- payins, account


async def test_qr_payin_is_created_with_reference_and_merchant() -> None:
    provider = Provider()
    provider.on(
        "POST",
        "/api/v1/payments/qr",
        httpx.Response(
            201,
            json={
                "payment_id": "PAY1",
                "qr_code": "mobilepay://pay/PAY1",
                "amount": 7_500,
                "status": "pending",
                "expires_at": "2027-01-15T08:30:00Z",
            },
        ),
    )
    created = await _client(provider).initiate_payin(_payin())
    body = json.loads(provider.requests[0].content)
    assert body == {
        "amount": 7_500,
        "description": f"{mp.marker('payin-acme-ORD-9')} Commande 9 [ref payin-acme-ORD-9]",
        "merchant_id": "momoflow",
        "metadata": {"reference": "payin-acme-ORD-9"},
    }
    assert created.qr_code == "mobilepay://pay/PAY1"
    assert created.expires_at is not None
    assert created.transaction.provider_transaction_id == "PAY1"
    assert created.transaction.status is PaymentStatus.PENDING


async def test_qr_payin_retry_returns_the_existing_payment() -> None:
    provider = Provider()
    provider.on(
        "GET",
        "/api/v1/transactions",
        _page(
            [
                _item(
                    id="PAY1",
                    type="payment",
                    status="pending",
                    amount=7_500,
                    metadata={"reference": "payin-acme-ORD-9"},
                    qr_code="mobilepay://pay/PAY1",
                )
            ]
        ),
    )
    created = await _client(provider).initiate_payin(_payin(attempt=2))
    assert provider.sent("POST") == []
    assert created.transaction.provider_transaction_id == "PAY1"
    assert created.qr_code == "mobilepay://pay/PAY1"


@pytest.mark.parametrize("mode", [PayinMode.DIRECT, PayinMode.CHECKOUT])
async def test_push_and_checkout_payins_are_unsupported(mode: PayinMode) -> None:
    provider = Provider()
    with pytest.raises(errors.UnsupportedOperation):
        await _client(provider).initiate_payin(_payin(mode=mode, customer_phone=PHONE))
    assert provider.requests == []


async def test_quote_and_refund_are_unsupported() -> None:
    client = _client(Provider())
    with pytest.raises(errors.UnsupportedOperation):
        await client.quote_payout(
            PayoutQuoteInput(
                provider=ProviderName.MOBILEPAY,
                amount=1,
                currency=Currency.XOF,
                country=Country.CI,
                operator=Operator.WAVE,
            )
        )
    with pytest.raises(errors.UnsupportedOperation, match="no refund API"):
        await client.refund_payin(
            RefundInput(
                provider=ProviderName.MOBILEPAY,
                payin_reference="p",
                external_reference="r",
                idempotency_key="k",
                reason="x",
            )
        )


async def test_balance_in_fcfa_is_xof_and_all_available() -> None:
    provider = Provider()
    provider.on(
        "GET",
        "/api/v1/balance",
        httpx.Response(200, json={"balance": 1_250_000, "currency": "FCFA"}),
    )
    [balance] = await _client(provider).balances()
    assert balance.currency is Currency.XOF
    assert balance.balance == balance.available == 1_250_000


async def test_availability_reads_health_at_the_host_root() -> None:
    provider = Provider()
    provider.on("GET", "/health", httpx.Response(200, json={"status": "ok"}))
    availability = await _client(provider).availability()
    assert availability.available
    assert [r.url.path for r in provider.requests] == ["/health"]


async def test_availability_falls_back_to_balance_and_never_raises() -> None:
    provider = Provider()
    provider.on("GET", "/api/v1/balance", httpx.Response(200, json={"balance": 1}))
    assert (await _client(provider).availability()).available

    def down(_request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    dead = Provider()
    dead.on("GET", "/health", down)
    dead.on("GET", "/api/v1/balance", down)
    availability = await _client(dead).availability()
    assert not availability.available
    assert TOKEN not in availability.detail


def test_the_client_is_a_payment_provider() -> None:
    client: PaymentProvider = _client(Provider())
    assert isinstance(client, PaymentProvider)
    assert client.name is ProviderName.MOBILEPAY


# --------------------------------------------------------------------------- webhooks


def _hook(event: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"event": event, "timestamp": "2027-01-15T08:00:00Z", "data": data}).encode()


TOKEN_HEADERS = {"X-Momoflow-Webhook-Token": HOOK_TOKEN}


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({}, _hook("transfer.completed", {"transfer_id": "T"}), "missing"),
        ({"x-momoflow-webhook-token": ""}, _hook("transfer.completed", {}), "missing"),
        ({"x-momoflow-webhook-token": "guess"}, _hook("transfer.completed", {}), "mismatch"),
        (TOKEN_HEADERS, b"not json", "bad_body"),
        (TOKEN_HEADERS, b'{"event": "transfer.completed"}', "bad_body"),
        (TOKEN_HEADERS, b"[1, 2]", "bad_body"),
        (TOKEN_HEADERS, _hook("transfer.completed", {"status": "completed"}), "bad_body"),
    ],
)
def test_bad_webhooks_are_refused_with_a_reason(
    headers: dict[str, str], body: bytes, reason: str
) -> None:
    with pytest.raises(errors.WebhookVerificationError) as info:
        _client(Provider()).parse_webhook(headers, body)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("body", "tx_id", "status", "raw"),
    [
        (
            _hook(
                "transfer.completed",
                {
                    "transfer_id": "TRF123456",
                    "amount": 25000,
                    "currency": "FCFA",
                    "status": "completed",
                },
            ),
            "TRF123456",
            PaymentStatus.SUCCEEDED,
            "completed",
        ),
        (
            _hook(
                "payment.received",
                {"payment_id": "PAY123456", "amount": 7500, "payer": PHONE, "status": "received"},
            ),
            "PAY123456",
            PaymentStatus.SUCCEEDED,
            "received",
        ),
        (
            _hook(
                "transaction.failed",
                {
                    "transaction_id": "TXN123456",
                    "error_code": "INSUFFICIENT_FUNDS",
                    "error_message": "Solde insuffisant",
                },
            ),
            "TXN123456",
            PaymentStatus.FAILED,
            "failed",
        ),
        (
            _hook("transfer.reversed", {"transfer_id": "TRF1"}),
            "TRF1",
            PaymentStatus.PENDING,
            "transfer.reversed",
        ),
    ],
)
def test_webhooks_normalise_as_unverified_hints(
    body: bytes, tx_id: str, status: PaymentStatus, raw: str
) -> None:
    event = _client(Provider()).parse_webhook(TOKEN_HEADERS, body)
    assert event.provider is ProviderName.MOBILEPAY
    assert event.provider_transaction_id == tx_id
    assert event.status is status
    assert event.raw_status == raw
    assert event.verified is False
    assert event.external_reference is None
    assert event.event_id == hashlib.sha256(body).hexdigest()
    assert PHONE.lstrip("+") not in event.model_dump_json()


def test_webhook_fields_are_normalised() -> None:
    transfer = _hook(
        "transfer.completed", {"transfer_id": "T", "amount": 25000, "currency": "FCFA"}
    )
    event = _client(Provider()).parse_webhook(TOKEN_HEADERS, transfer)
    assert event.amount == 25000
    assert event.currency is Currency.XOF
    failed = _hook(
        "transaction.failed",
        {"transaction_id": "X", "error_code": "INSUFFICIENT_FUNDS", "error_message": "Solde"},
    )
    event = _client(Provider()).parse_webhook(TOKEN_HEADERS, failed)
    assert (event.failure_code, event.failure_message) == ("INSUFFICIENT_FUNDS", "Solde")


# --------------------------------------------------------------------------- transaction list


def _listing(**changes: Any) -> ListTransactionsInput:
    values: dict[str, Any] = {
        "provider": ProviderName.MOBILEPAY,
        "start": date(2026, 11, 22),
        "end": date(2026, 11, 23),
    }
    return ListTransactionsInput(**{**values, **changes})


def test_the_list_is_asked_for_whole_days_page_by_page() -> None:
    assert mp.build_list_params(_listing(offset=200, limit=50)) == {
        "limit": 50,
        "offset": 200,
        "start_date": "2026-11-22",
        "end_date": "2026-11-23",
    }


def test_list_items_normalise_for_the_report_without_phone_numbers() -> None:
    item = MobilePayTransactionItem.model_validate(
        _item(status="completed", metadata={"reference": REF}, recipient_phone=PHONE)
    )
    listed = mp.to_listed_transaction(item)
    assert listed == ListedTransaction(
        provider=ProviderName.MOBILEPAY,
        provider_transaction_id="TRF1",
        external_reference=REF,
        direction=Direction.PAYOUT,
        status=PaymentStatus.SUCCEEDED,
        raw_status="completed",
        amount=25_000,
        currency=Currency.XOF,
        created_at=NOW_DT - timedelta(minutes=5),
    )
    assert PHONE not in listed.model_dump_json()


@pytest.mark.parametrize(
    ("fields", "reference"),
    [
        ({"description": "Salaire mars [ref payout-acme-INV-7]"}, "payout-acme-INV-7"),
        ({"reference": "payout-acme-INV-8", "description": "x [ref other]"}, "payout-acme-INV-8"),
        ({"metadata": {"reference": 42}, "description": "no marker"}, None),
        ({}, None),
    ],
)
def test_the_reference_is_read_from_metadata_reference_or_the_description_marker(
    fields: dict[str, Any], reference: str | None
) -> None:
    item = MobilePayTransactionItem.model_validate(_item(**fields))
    listed = mp.to_listed_transaction(item)
    assert listed is not None and listed.external_reference == reference


@pytest.mark.parametrize(
    ("item_type", "raw", "status", "direction"),
    [
        ("payment", "received", PaymentStatus.SUCCEEDED, Direction.PAYIN),
        ("payment", "expired", PaymentStatus.EXPIRED, Direction.PAYIN),
        ("transfer", "received", PaymentStatus.PENDING, Direction.PAYOUT),
        (None, "received", PaymentStatus.SUCCEEDED, None),
        (None, "completed", PaymentStatus.SUCCEEDED, None),
        (None, "failed", PaymentStatus.FAILED, None),
        (None, "en_cours", PaymentStatus.PENDING, None),
    ],
)
def test_list_statuses_follow_the_item_type_and_never_guess_a_failure(
    item_type: str | None, raw: str, status: PaymentStatus, direction: Direction | None
) -> None:
    item = MobilePayTransactionItem.model_validate(_item(type=item_type, status=raw))
    listed = mp.to_listed_transaction(item)
    assert listed is not None
    assert (listed.status, listed.direction) == (status, direction)


def test_a_list_item_without_any_id_is_left_out() -> None:
    item = MobilePayTransactionItem.model_validate(_item(id=None))
    assert mp.to_listed_transaction(item) is None


@pytest.mark.parametrize(
    ("body", "offset", "next_offset"),
    [
        ({"data": [_item()], "total": 3, "limit": 1}, 0, 1),
        ({"data": [_item()], "total": 3, "limit": 1}, 2, None),
        ({"data": [_item()], "limit": 100}, 0, None),
        ({"data": [_item()]}, 0, 1),
        ({"data": []}, 5, None),
        ([_item(), _item(id="TRF2")], 0, 2),
    ],
)
def test_list_pages_end_at_the_total_a_short_page_or_an_empty_page(
    body: Any, offset: int, next_offset: int | None
) -> None:
    page = mp.parse_transaction_list(
        200, json.dumps(body).encode(), request=_listing(offset=offset)
    )
    assert page.next_offset == next_offset
    assert [i.provider_transaction_id for i in page.items] == [
        i["id"] for i in (body if isinstance(body, list) else body["data"])
    ]


async def test_the_client_lists_transactions_with_the_day_bounds() -> None:
    provider = Provider()
    provider.on("GET", "/api/v1/transactions", _page([_item(status="completed")], total=1))
    page = await _client(provider).list_transactions(_listing())
    (sent,) = provider.sent("GET", "/api/v1/transactions")
    assert dict(sent.url.params) == {
        "limit": "100",
        "offset": "0",
        "start_date": "2026-11-22",
        "end_date": "2026-11-23",
    }
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert [i.status for i in page.items] == [PaymentStatus.SUCCEEDED] and page.next_offset is None
