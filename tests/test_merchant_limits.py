"""Per-merchant limits on the business API (issue 14, part 4).

2,000 payout POSTs at about 110/s met no limit. Now each merchant has a request budget
per window, held by its limits workflow in Temporal so that every gateway replica draws
from the same one, and a cap on its campaigns in pre-flight at once (pre-flight holds a
file in the worker's memory). Over either, the answer is a 429 with ``Retry-After`` and
nothing is started.

Real parts: the session's Temporal dev server, an in-process worker polling a fresh
limits task queue per test, and gateway apps (two of them where replicas matter) reached
over ``httpx.ASGITransport``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from momoflow.client import MomoflowClient, RateLimited
from momoflow.contract import STATE_QUERY
from momoflow.gateway.app import create_app
from momoflow.ids import (
    campaign_workflow_id,
    limits_task_queue,
    merchant_limits_workflow_id,
    payout_workflow_id,
)
from momoflow.merchant_limits import (
    LeaseRequest,
    LimitsCarry,
    SlotRequest,
    free_slots,
    grant_requests,
    lease_size,
    retry_after_s,
    take_slot,
    window_end,
)
from momoflow.records.store import RecordStore
from momoflow.settings import (
    ApiKeyEntry,
    DatabaseSettings,
    LimitSettings,
    Settings,
    TemporalSettings,
    hash_api_key,
)
from tests.stack import ACME_KEY, GLOBEX_KEY, Stack, wait_until
from tests.test_campaigns import HEADER, lines_for
from tests.test_payout_flow import payout_body
from workflows.merchant_limits import MerchantLimitsWorkflow

WINDOW_S = 120
T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)

# ---------------------------------------------------------------------- the rules


def test_a_window_grants_its_limit_in_total_whoever_asks() -> None:
    carry = LimitsCarry()
    ask = LeaseRequest(want=7, limit=20, window_s=60)
    grants = [grant_requests(carry, T0 + timedelta(seconds=i), ask).granted for i in range(5)]
    assert grants == [7, 7, 6, 0, 0]
    assert carry.granted == 20


def test_a_new_window_starts_from_nothing_and_ends_on_its_boundary() -> None:
    carry = LimitsCarry()
    ask = LeaseRequest(want=20, limit=20, window_s=60)
    first = grant_requests(carry, T0 + timedelta(seconds=59), ask)
    assert first.granted == 20 and first.window_ends_at == T0 + timedelta(seconds=60)
    assert grant_requests(carry, T0 + timedelta(seconds=59.9), ask).granted == 0
    second = grant_requests(carry, T0 + timedelta(seconds=60), ask)
    assert second.granted == 20 and second.window_ends_at == T0 + timedelta(seconds=120)


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    end = window_end(T0 + timedelta(seconds=10.2), 60)
    assert retry_after_s(end, T0 + timedelta(seconds=10.2)) == 50
    assert retry_after_s(end, end) == 1
    assert [lease_size(n) for n in (1, 19, 20, 600, 100_000)] == [1, 1, 1, 30, 5_000]


def test_a_preflight_slot_is_kept_by_its_campaign_and_freed_by_name() -> None:
    carry = LimitsCarry()
    assert take_slot(carry, T0, SlotRequest(campaign_id="a", cap=2)).granted
    assert take_slot(carry, T0, SlotRequest(campaign_id="b", cap=2)).granted
    refused = take_slot(carry, T0, SlotRequest(campaign_id="c", cap=2))
    assert not refused.granted and list(refused.holders) == ["a", "b"]
    assert take_slot(carry, T0, SlotRequest(campaign_id="a", cap=2)).granted
    free_slots(carry, ["a", "unknown"])
    assert take_slot(carry, T0, SlotRequest(campaign_id="c", cap=2)).granted


def test_limits_are_configured_per_merchant_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOMOFLOW_LIMITS__REQUESTS_PER_WINDOW", "50")
    monkeypatch.setenv(
        "MOMOFLOW_LIMITS__MERCHANTS",
        '{"acme": {"requests_per_window": 500, "concurrent_preflights": 4}}',
    )
    limits = Settings(_env_file=None).limits
    assert (limits.requests_for("acme"), limits.preflights_for("acme")) == (500, 4)
    assert (limits.requests_for("globex"), limits.preflights_for("globex")) == (50, 2)
    with pytest.raises(ValueError, match="requests_per_window"):
        LimitSettings.model_validate({"merchants": {"acme": {"requests_per_window": 0}}})


# ---------------------------------------------------------------------- through gateways


def _settings(stack: Stack, prefix: str, root: Path, **limits: Any) -> Settings:
    return Settings(
        _env_file=None,
        env="test",
        temporal=TemporalSettings(address=stack.temporal_address),
        database=DatabaseSettings(url=SecretStr(stack.database_url)),
        task_queue_prefix=prefix,
        api_keys=[
            ApiKeyEntry(merchant="acme", key_sha256=hash_api_key(ACME_KEY)),
            ApiKeyEntry(merchant="globex", key_sha256=hash_api_key(GLOBEX_KEY)),
        ],
        limits=LimitSettings(**limits),
        campaigns={"store_dir": str(root / "campaigns")},
    )


@asynccontextmanager
async def gateway(settings: Settings, client: Client, key: str) -> AsyncIterator[httpx.AsyncClient]:
    # The app's own store would be closed by its lifespan, which ASGITransport never runs.
    store = RecordStore.from_settings(settings.database)
    app = create_app(settings, client=client, store=store)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {key}"},
        ) as http:
            yield http
    finally:
        await store.close()


@asynccontextmanager
async def limits_worker(client: Client, prefix: str) -> AsyncIterator[None]:
    async with Worker(
        client, task_queue=limits_task_queue(prefix), workflows=[MerchantLimitsWorkflow]
    ):
        yield


async def _end(client: Client, *workflow_ids: str) -> None:
    for workflow_id in workflow_ids:
        try:
            await client.get_workflow_handle(workflow_id).terminate("test over")
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise


async def _exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        assert exc.status == RPCStatusCode.NOT_FOUND
        return False
    return True


@pytest.fixture
def prefix() -> Iterator[str]:
    yield f"limits-{uuid.uuid4().hex[:8]}"


def _early_in_the_window() -> None:
    """Fixed windows: start where the whole test fits in one."""
    wait_until(
        lambda: time.time() % WINDOW_S < WINDOW_S - 60,
        timeout=WINDOW_S,
        what="the start of a fresh limits window",
        every=0.5,
    )


async def test_two_gateways_share_one_merchant_budget(
    stack: Stack, client: Client, prefix: str, tmp_path: Path
) -> None:
    settings = _settings(stack, prefix, tmp_path, requests_per_window=20, window_s=WINDOW_S)
    _early_in_the_window()
    async with (
        limits_worker(client, prefix),
        gateway(settings, client, ACME_KEY) as first,
        gateway(settings, client, ACME_KEY) as second,
        gateway(settings, client, GLOBEX_KEY) as globex,
    ):
        answers = []
        for n in range(15):
            for replica in (first, second):
                answers.append(await replica.get(f"/v1/payouts/limits-{n}"))
        codes = [a.status_code for a in answers]
        assert codes.count(404) == 20 and codes.count(429) == 10, codes
        refusal = next(a for a in answers if a.status_code == 429)
        body = refusal.json()
        assert body["error"] == "rate_limited" and body["limit"] == 20
        assert body["window_s"] == WINDOW_S and "nothing was started" in body["message"]
        assert 1 <= int(refusal.headers["Retry-After"]) <= WINDOW_S
        assert int(refusal.headers["Retry-After"]) == body["retry_after_s"]
        # Another merchant's budget is its own.
        assert (await globex.get("/v1/payouts/limits-0")).status_code == 404
        limits_id = merchant_limits_workflow_id("acme", prefix)
        state = await client.get_workflow_handle(limits_id).query(
            STATE_QUERY, result_type=LimitsCarry
        )
        assert state.granted == 20
    await _end(client, limits_id, merchant_limits_workflow_id("globex", prefix))


async def test_a_refused_payout_starts_nothing_and_its_body_is_not_read(
    stack: Stack, client: Client, prefix: str, tmp_path: Path, reference: str
) -> None:
    settings = _settings(stack, prefix, tmp_path, requests_per_window=2, window_s=WINDOW_S)
    _early_in_the_window()
    async with limits_worker(client, prefix), gateway(settings, client, ACME_KEY) as http:
        assert (await http.get("/v1/payouts/spent-1")).status_code == 404
        assert (await http.get("/v1/payouts/spent-2")).status_code == 404
        refused = await http.post("/v1/payouts", json=payout_body(reference))
        assert refused.status_code == 429, refused.text
        broken = await http.post(
            "/v1/payouts", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert broken.status_code == 429
        # The Python client tells the refusal apart, with the server's hint.
        async with MomoflowClient(
            "http://gateway", ACME_KEY, http=http, max_attempts=1
        ) as momoflow:
            with pytest.raises(RateLimited) as refusal:
                await momoflow.create_payout(payout_body(reference))
        assert refusal.value.status == 429 and refusal.value.code == "rate_limited"
        assert refusal.value.retry_after is not None and refusal.value.retry_after >= 1
    assert not await _exists(client, payout_workflow_id("acme", reference))
    await _end(client, merchant_limits_workflow_id("acme", prefix))


async def test_a_gateway_counts_alone_when_the_shared_limits_do_not_answer(
    stack: Stack, client: Client, prefix: str, tmp_path: Path
) -> None:
    # No worker polls this prefix's limits queue: the shared limits cannot answer.
    settings = _settings(
        stack, prefix, tmp_path, requests_per_window=3, window_s=WINDOW_S, shared_timeout_s=0.5
    )
    _early_in_the_window()
    async with gateway(settings, client, ACME_KEY) as http:
        codes = [(await http.get(f"/v1/payouts/alone-{n}")).status_code for n in range(5)]
    assert codes == [404, 404, 404, 429, 429]
    await _end(client, merchant_limits_workflow_id("acme", prefix))


async def test_a_merchant_has_at_most_its_cap_of_campaigns_in_preflight(
    stack: Stack, client: Client, prefix: str, tmp_path: Path
) -> None:
    # No worker polls this prefix's workflow queue: a submitted campaign stays in
    # pre-flight until the test ends it.
    settings = _settings(stack, prefix, tmp_path, concurrent_preflights=1)
    file = ("\n".join([HEADER, *lines_for("cap", ["caurisflux"], 3)]) + "\n").encode()
    first, second = f"cap-a-{prefix}", f"cap-b-{prefix}"
    first_id, second_id = campaign_workflow_id("acme", first), campaign_workflow_id("acme", second)

    async def submit(http: httpx.AsyncClient, reference: str) -> httpx.Response:
        return await http.post(
            "/v1/campaigns",
            params={"reference": reference},
            content=file,
            headers={"Content-Type": "text/csv"},
        )

    async with limits_worker(client, prefix), gateway(settings, client, ACME_KEY) as http:
        assert (await submit(http, first)).status_code == 201
        busy = await submit(http, second)
        assert busy.status_code == 429, busy.text
        assert busy.headers["Retry-After"] == "30"
        assert busy.json()["error"] == "too_many_preflights"
        assert busy.json()["campaigns_in_preflight"] == [first_id]
        assert not await _exists(client, second_id)
        # Sending the first campaign again is a retry, not a new pre-flight (its progress
        # is then read from the campaign, which no worker answers here: a 503).
        again = await submit(http, first)
        assert again.status_code != 429 and "too_many_preflights" not in again.text
        # Once the first is no longer in pre-flight, its slot is free again.
        await client.get_workflow_handle(first_id).terminate("pre-flight over")
        assert (await submit(http, second)).status_code == 201
        description = await client.get_workflow_handle(second_id).describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
    await _end(client, second_id, merchant_limits_workflow_id("acme", prefix))
