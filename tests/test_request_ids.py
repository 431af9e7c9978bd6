"""Every gateway answer carries ``X-Request-Id``, and the client's errors carry it.

The gateway runs in process (``httpx.ASGITransport``): a refused API key is answered by
the gateway's own middleware before any Temporal call, so no server is needed to prove it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from momoflow.client import MomoflowClient, Unauthenticated
from momoflow.contract import REQUEST_ID_HEADER
from momoflow.gateway import create_app
from momoflow.gateway.request_ids import request_id_for
from momoflow.settings import Settings

GENERATED = re.compile(r"^req_[0-9a-f]{32}$")


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
    ) as http:
        yield http


async def test_every_answer_has_a_request_id_even_a_refusal(gateway: httpx.AsyncClient) -> None:
    health = await gateway.get("/healthz")
    refused = await gateway.get("/v1/payouts/INV-1", headers={"Authorization": "Bearer nope"})

    assert health.status_code == 200 and GENERATED.match(health.headers[REQUEST_ID_HEADER])
    assert refused.status_code == 401 and GENERATED.match(refused.headers[REQUEST_ID_HEADER])
    assert health.headers[REQUEST_ID_HEADER] != refused.headers[REQUEST_ID_HEADER]


async def test_a_safe_caller_id_is_echoed_and_an_unsafe_one_replaced(
    gateway: httpx.AsyncClient,
) -> None:
    mine = await gateway.get("/healthz", headers={REQUEST_ID_HEADER: "order-42:try.1"})
    hostile = await gateway.get("/healthz", headers={REQUEST_ID_HEADER: "x" * 65})

    assert mine.headers[REQUEST_ID_HEADER] == "order-42:try.1"
    assert GENERATED.match(hostile.headers[REQUEST_ID_HEADER])


@pytest.mark.parametrize("given", ["", "a b", "a\u202eb", "é", "x" * 65, "<script>"])
def test_ids_unsafe_for_a_header_or_a_log_line_are_never_echoed(given: str) -> None:
    assert GENERATED.match(request_id_for(given))


async def test_client_errors_carry_the_request_id_and_the_answer(
    gateway: httpx.AsyncClient,
) -> None:
    async with MomoflowClient("http://gateway.test", "not-a-key", http=gateway) as client:
        with pytest.raises(Unauthenticated) as refused:
            await client.get_payout("INV-1")

    error = refused.value
    assert error.response is not None and error.response.status_code == 401
    assert error.request_id == error.response.headers[REQUEST_ID_HEADER]
    assert error.request_id is not None and GENERATED.match(error.request_id)
