"""Shared status reads hold MOBILE-PAY's plan in requests (issue 13, part 7).

The pacing rules are pure and tested as such; the list read that answers many lookups at
once runs against a MOBILE-PAY simulator over real HTTP, and every request it reports is
one the simulator received (logins included). The workflow side (the reader and the
payouts that use it) is in ``tests/test_conformance_mobilepay.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from momoflow.models import (
    Direction,
    InitiatePayoutInput,
    Operator,
    PaymentStatus,
    ProviderName,
    SharedLookup,
    StatusLookup,
)
from momoflow.money import Country, Currency
from momoflow.providers.mobilepay import MobilePayClient, MobilePayCredentials
from momoflow.providers.mobilepay.attempts import MemoryJournal
from momoflow.sandbox.mobilepay import MobilePaySandboxConfig, create_app
from momoflow.sandbox.shared import ThreadedServer
from momoflow.settings import MobilePaySettings
from momoflow.status_reads import (
    MAX_READ_COST,
    Spent,
    next_sweep_delay,
    wait_for_budget,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
EMAIL, PASSWORD = "sandbox@momoflow.local", "momoflow-sandbox"


# --------------------------------------------------------------------------- pacing


def test_a_walk_buys_its_wait_at_the_budget() -> None:
    # 3 requests at 50 an hour: 216 s before the next walk.
    assert next_sweep_delay(3, budget_per_hour=50, min_interval_s=60) == pytest.approx(216)
    # A cheap walk still waits the shortest interval.
    assert next_sweep_delay(0, budget_per_hour=50, min_interval_s=60) == 60
    assert next_sweep_delay(1, budget_per_hour=36_000, min_interval_s=2) == 2


def test_no_walk_starts_that_could_take_the_last_hour_over_the_budget() -> None:
    spent = [
        Spent(at=NOW - timedelta(minutes=50), requests=20),
        Spent(at=NOW - timedelta(minutes=20), requests=15),
    ]
    # 35 spent + one walk's worst case (11) = 46 <= 50: now.
    assert wait_for_budget(spent, now=NOW, budget_per_hour=50) == 0
    # At 40 an hour it must wait until the 20 spent 50 minutes ago leave the hour.
    assert wait_for_budget(spent, now=NOW, budget_per_hour=40) == pytest.approx(600)
    # Spending older than an hour does not count.
    old = [Spent(at=NOW - timedelta(minutes=61), requests=1_000)]
    assert wait_for_budget(old, now=NOW, budget_per_hour=MAX_READ_COST) == 0


def test_the_plan_is_split_between_shared_reads_and_the_other_calls() -> None:
    free = MobilePaySettings(rate_limit_per_hour=100)
    assert free.status_reads_per_hour() == 50
    # The task queue's activity limit gets the rest: 50 an hour.
    assert free.rate_limit_per_second() * 3600 == pytest.approx(50)
    merchant = MobilePaySettings(rate_limit_per_hour=1_000, status_reads_share=0.3)
    assert merchant.status_reads_per_hour() == pytest.approx(300)
    assert merchant.rate_limit_per_second() * 3600 == pytest.approx(700)


# --------------------------------------------------------------------------- list reads


@pytest.fixture
def sandbox() -> Iterator[ThreadedServer]:
    config = MobilePaySandboxConfig(settle_delay=0.0, rate_limit_per_hour=0)
    with ThreadedServer(create_app(config)) as server:
        yield server


@pytest.fixture
async def adapter(sandbox: ThreadedServer) -> AsyncIterator[MobilePayClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield MobilePayClient(
            http,
            base_url=f"{sandbox.url}/api/v1",
            credentials=MobilePayCredentials(
                login_email=EMAIL, login_password=PASSWORD, webhook_token="t"
            ),
            merchant_id="momoflow",
            journal=MemoryJournal(),
        )


def _requests(sandbox: ThreadedServer) -> list[dict[str, object]]:
    with httpx.Client(base_url=f"{sandbox.url}/_sandbox", timeout=5) as http:
        found: list[dict[str, object]] = http.get("/requests").json()["requests"]
    return found


def _lookup(reference: str, tx_id: str | None, *, since: datetime | None = None) -> SharedLookup:
    return SharedLookup(
        key=reference,
        direction=Direction.PAYOUT,
        lookup=StatusLookup(
            provider=ProviderName.MOBILEPAY,
            provider_transaction_id=tx_id,
            external_reference=reference,
            since=since,
        ),
    )


async def _transfer(adapter: MobilePayClient, reference: str, amount: int) -> str:
    created = await adapter.initiate_payout(
        InitiatePayoutInput(
            provider=ProviderName.MOBILEPAY,
            external_reference=reference,
            idempotency_key=reference,
            quote_id=None,
            amount=amount,
            currency=Currency.XOF,
            country=Country.CI,
            operator=Operator.ORANGE_MONEY,
            recipient_phone="+2250701231001",
            recipient_name="Awa Kone",
            description="Salaire mars",
            requested_at=datetime.now(UTC),
        )
    )
    return created.provider_transaction_id


async def test_one_walk_answers_every_lookup_and_reports_every_request_it_sent(
    adapter: MobilePayClient, sandbox: ThreadedServer
) -> None:
    tag = uuid.uuid4().hex[:8]
    references = [f"payout-acme-SR{tag}-{n}" for n in range(5)]
    ids = [await _transfer(adapter, ref, 10_000 + n) for n, ref in enumerate(references)]
    before = len(_requests(sandbox))
    since = datetime.now(UTC) - timedelta(minutes=5)

    lookups = [
        _lookup(ref, tx_id, since=since) for ref, tx_id in zip(references[:4], ids[:4], strict=True)
    ]
    # The last one's create answer was "lost": found by the marker in its description.
    lookups.append(_lookup(references[4], None, since=since))
    lookups.append(_lookup(f"payout-acme-SR{tag}-never", "mp_tx_never_made", since=since))
    outcome = await adapter.read_statuses(lookups)

    assert outcome.error is None
    assert set(outcome.found) == set(references)
    for n, ref in enumerate(references):
        found = outcome.found[ref]
        assert found.provider_transaction_id == ids[n]
        assert found.amount == 10_000 + n
        assert found.status is PaymentStatus.SUCCEEDED
    sent = _requests(sandbox)[before:]
    # The session token from the creates is reused: one page, no login.
    assert outcome.requests == len(sent) == 1
    assert sent[0]["method"] == "GET" and str(sent[0]["path"]).endswith("/transactions")


async def test_a_login_is_a_request_and_is_counted(
    adapter: MobilePayClient, sandbox: ThreadedServer
) -> None:
    outcome = await adapter.read_statuses([_lookup("payout-acme-SR-none", "mp_tx_never_made")])

    assert outcome.found == {}
    sent = _requests(sandbox)
    assert [str(r["path"]).rsplit("/", 1)[-1] for r in sent] == ["login", "transactions"]
    assert outcome.requests == 2


async def test_a_refused_walk_keeps_what_it_found_and_says_why(
    adapter: MobilePayClient, sandbox: ThreadedServer
) -> None:
    with httpx.Client(base_url=f"{sandbox.url}/_sandbox", timeout=5) as http:
        http.post(
            "/faults", json={"kind": "error", "operation": "transactions.list", "status": 503}
        ).raise_for_status()
    outcome = await adapter.read_statuses([_lookup("payout-acme-SR-x", "mp_tx_x")])

    assert outcome.found == {}
    assert outcome.error is not None and "HTTP 503" in outcome.error
    assert outcome.requests == len(_requests(sandbox)) == 2
