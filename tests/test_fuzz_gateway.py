"""The gateway's OpenAPI, fuzzed with schemathesis against the session's real gateway.

Every operation the gateway publishes (payouts, payins, refunds, campaigns, webhooks, the
codec endpoints, health) is called with requests generated from its schema: valid ones
(positive) and ones that break the schema on purpose (negative), with a merchant's API key
(and an operator's token for the codec endpoints) and without. Generation is derandomised,
so a run is repeatable, and bounded: a few hundred requests in the default run, more in the
``slow`` variant.

What must hold for every answer:

* never a 500, and no other 5xx than the documented "retry later" answers (503 with
  ``not_recorded``, ``state_unavailable`` or ``temporal_unavailable``);
* every 4xx carries momoflow's error body (``{"error": code, "message": ...}``), so a
  caller always learns why;
* without credentials, every ``/v1`` operation is a 401;
* afterwards the gateway process still runs and answers ``/healthz``;
* no workflow was started but those a 2xx answer reported. The authenticated requests use
  the ``fuzz`` merchant's key, which no other test uses, so every workflow carrying
  ``MerchantId = "fuzz"`` must be one a 2xx answer named (or a child of one): a refused
  request never starts anything.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.internal.conjecture import providers
from hypothesis.internal.constants_ast import Constants
from schemathesis import GenerationMode
from schemathesis.schemas import APIOperation, BaseSchema
from temporalio.client import Client

from momoflow.settings import DEV_OPERATOR_TOKEN
from tests.stack import ACME_KEY, FUZZ_KEY, Stack

FUZZ_MERCHANT = "fuzz"
#: 503 answers that mean "not now, retry": documented, and never a crash.
RETRY_LATER = {"not_recorded", "state_unavailable", "temporal_unavailable"}
#: Requests per operation and generation mode: the default run, and the ``slow`` one.
QUICK_EXAMPLES = 5
THOROUGH_EXAMPLES = 40


@dataclass
class Answer:
    """One generated request and what the gateway said."""

    label: str
    authenticated: bool
    status: int
    body: bytes
    curl: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def describe(self) -> str:
        return f"{self.label} -> {self.status} {self.body[:300]!r}\n    {self.curl}"


@dataclass
class FuzzRun:
    """Every answer of one fuzzing run, and the operations that could not be fuzzed."""

    answers: list[Answer] = field(default_factory=list)
    not_generated: list[str] = field(default_factory=list)

    def started_workflows(self) -> set[str]:
        """Workflow ids that 2xx answers named (payouts, payins, refunds, campaigns)."""
        ids: set[str] = set()
        for answer in self.answers:
            body = answer.json() if 200 <= answer.status < 300 else None
            if isinstance(body, dict):
                for key in ("workflow_id", "campaign_id"):
                    if isinstance(body.get(key), str):
                        ids.add(body[key])
        return ids


def _credentials(operation: APIOperation) -> dict[str, str]:
    if operation.path.startswith("/v1/"):
        # Both headers the gateway reads (X-API-Key wins), so that no generated value of
        # either can turn the request into an unauthenticated one.
        return {"authorization": f"Bearer {FUZZ_KEY}", "x-api-key": FUZZ_KEY}
    if operation.path.startswith("/codec/"):
        return {"authorization": f"Bearer {DEV_OPERATOR_TOKEN}"}
    return {}


def _operations(schema: BaseSchema) -> Iterator[APIOperation]:
    for result in schema.get_all_operations():
        yield result.ok()


#: Parameter schemas that accept any value, so that no request can break them.
_FREE_FORM: list[dict[str, Any]] = [
    {"type": "string"},
    {"anyOf": [{"type": "string"}, {"type": "null"}]},
]


def _can_be_broken(operation: APIOperation) -> bool:
    """Whether negative generation has anything to break: a body, or a parameter with a
    type or constraint. Without either, Hypothesis would only search in vain for seconds;
    the positive requests cover such an operation."""
    definition = operation.definition.raw
    if "requestBody" in definition:
        return True
    for parameter in definition.get("parameters", []):
        schema = parameter.get("schema", {})
        if {k: v for k, v in schema.items() if k not in ("title", "description")} not in _FREE_FORM:
            return True
    return False


@contextmanager
def no_constants_from_our_code() -> Iterator[None]:
    """Hypothesis mixes string literals it finds in the code under test (momoflow's and the
    tests' own, API keys and secrets among them) into what it generates, and which modules
    are loaded changes that pool from one run to the next. Without them, generation
    depends on the schema and the seed alone, and the fuzzer never types a key into a URL
    (where the leak scan would then rightly find it, in the gateway's request spans)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(providers, "_get_local_constants", Constants)
        providers.CONSTANTS_CACHE.cache.clear()
        try:
            yield
        finally:
            providers.CONSTANTS_CACHE.cache.clear()


def fuzz(base_url: str, *, authenticated: bool, examples: int) -> FuzzRun:
    """Call every operation of the gateway's schema with generated requests."""
    with no_constants_from_our_code():
        return _fuzz(base_url, authenticated=authenticated, examples=examples)


def _fuzz(base_url: str, *, authenticated: bool, examples: int) -> FuzzRun:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    run = FuzzRun()
    session = requests.Session()
    for operation in _operations(schema):
        fixed = _credentials(operation) if authenticated else {}
        modes = [GenerationMode.POSITIVE]
        if _can_be_broken(operation):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            strategy = operation.as_strategy(generation_mode=mode, headers=fixed or None)

            @settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def call(case: Any) -> None:
                response = case.call(base_url=base_url, session=session, timeout=60)
                run.answers.append(
                    Answer(
                        label=case.operation.label,
                        authenticated=authenticated,
                        status=response.status_code,
                        body=response.content,
                        curl=case.as_curl_command(base_url=base_url),
                    )
                )

            try:
                call()
            except Unsatisfiable:
                # Nothing in this operation can be made invalid (no parameters, or only
                # free-form strings): its positive requests cover it.
                run.not_generated.append(f"{operation.label} ({mode.value})")
    session.close()
    return run


def problems_of(run: FuzzRun) -> list[str]:
    """Every answer that breaks the rules in the module docstring."""
    problems: list[str] = []
    for answer in run.answers:
        body = answer.json()
        if answer.status >= 500:
            retry = answer.status == 503 and isinstance(body, dict)
            if not (retry and body.get("error") in RETRY_LATER):
                problems.append(f"server error: {answer.describe()}")
        elif answer.status >= 400:
            if not (isinstance(body, dict) and body.get("error") and body.get("message")):
                problems.append(f"4xx without an error body: {answer.describe()}")
        if not answer.authenticated and answer.label.split(" ", 1)[1].startswith("/v1/"):
            # A path the router cannot match is a plain 404 before any authentication.
            unrouted = answer.status == 404 and isinstance(body, dict)
            unrouted = unrouted and body.get("message") == "Not Found"
            if answer.status != 401 and not unrouted:
                problems.append(f"answered without an API key: {answer.describe()}")
    return problems


async def fuzz_merchant_workflows(client: Client) -> dict[str, str | None]:
    """Every workflow of the ``fuzz`` merchant: id -> parent workflow id."""
    found: dict[str, str | None] = {}
    async for execution in client.list_workflows(f'MerchantId = "{FUZZ_MERCHANT}"'):
        found[execution.id] = execution.parent_id
    return found


async def check_fuzzing(stack: Stack, client: Client, *, examples: int) -> FuzzRun:
    before = await fuzz_merchant_workflows(client)
    authenticated = await asyncio.to_thread(
        fuzz, stack.gateway_url, authenticated=True, examples=examples
    )
    anonymous = await asyncio.to_thread(
        fuzz, stack.gateway_url, authenticated=False, examples=examples
    )
    run = FuzzRun(
        answers=authenticated.answers + anonymous.answers,
        not_generated=authenticated.not_generated + anonymous.not_generated,
    )

    assert stack.processes["gateway"].alive(), "the gateway process died"
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
    problems = problems_of(run)
    assert not problems, f"{len(problems)} bad answers:\n" + "\n".join(problems[:20])

    reported = run.started_workflows()

    async def visible() -> dict[str, str | None]:
        return await fuzz_merchant_workflows(client)

    # Visibility lags a little: wait until what 2xx answers reported is listed.
    deadline = asyncio.get_running_loop().time() + 15
    after = await visible()
    while not reported <= set(after) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        after = await visible()
    new = {wid: parent for wid, parent in after.items() if wid not in before}
    unexplained = {
        wid for wid, parent in new.items() if wid not in reported and parent not in reported
    }
    assert not unexplained, f"workflows no 2xx answer started: {sorted(unexplained)}"
    return run


async def test_fuzzed_requests_never_crash_the_gateway_nor_start_anything_when_refused(
    stack: Stack, client: Client
) -> None:
    run = await check_fuzzing(stack, client, examples=QUICK_EXAMPLES)
    # The run is bounded, and it did reach every operation, refusals and successes alike.
    assert 150 <= len(run.answers) <= 600, len(run.answers)
    labels = {a.label for a in run.answers}
    assert {"POST /v1/payouts", "POST /v1/campaigns", "POST /codec/decode"} <= labels
    assert {"POST /webhooks/{provider}", "POST /webhooks/{provider}/{token}"} <= labels
    statuses = {a.status for a in run.answers if a.authenticated}
    assert {200, 401, 404, 422} <= statuses, statuses


@pytest.mark.slow
async def test_thorough_fuzzing_never_crashes_the_gateway_nor_starts_anything_when_refused(
    stack: Stack, client: Client
) -> None:
    run = await check_fuzzing(stack, client, examples=THOROUGH_EXAMPLES)
    assert len(run.answers) >= 1000, len(run.answers)


# ------------------------------------------------------------------------------ hostile bodies
# Inputs that generation from the schema does not reach: nesting deep enough to exhaust the
# JSON parser's recursion, oversized CSV fields. Each must be a clear 4xx.

DEEP_JSON = b"[" * 50_000 + b"]" * 50_000


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/payouts", "application/json"),
        ("/v1/payins", "application/json"),
        ("/v1/payins/ANY-REF/refund", "application/json"),
        ("/v1/campaigns/ANY-REF/approve", "application/json"),
    ],
)
def test_json_nested_too_deep_is_a_4xx(stack: Stack, path: str, content_type: str) -> None:
    with stack.gateway(key=FUZZ_KEY) as http:
        answer = http.post(path, content=DEEP_JSON, headers={"Content-Type": content_type})
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["error"]


def test_codec_payloads_nested_too_deep_are_a_400(stack: Stack) -> None:
    body = b'{"payloads": ' + DEEP_JSON + b"}"
    with stack.gateway(key=DEV_OPERATOR_TOKEN) as http:
        answer = http.post(
            "/codec/decode", content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_payloads"


CAMPAIGN_HEADER = "reference,provider,country,operator,phone,name,amount,currency,description\n"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            "text/csv",
            CAMPAIGN_HEADER + "L1,caurisflux,SN,wave,+221771230001," + "A" * 200_000 + ",1,XOF,x\n",
        ),
        ("application/x-ndjson", '{"reference": ' + "[" * 50_000 + "]" * 50_000 + "}\n"),
    ],
    ids=["csv-field-over-the-csv-module-limit", "jsonl-line-nested-too-deep"],
)
def test_unreadable_campaign_file_is_a_422_and_starts_nothing(
    stack: Stack, reference: str, content_type: str, body: str
) -> None:
    with stack.gateway(key=FUZZ_KEY) as http:
        answer = http.post(
            "/v1/campaigns",
            params={"reference": reference},
            content=body.encode(),
            headers={"Content-Type": content_type},
        )
        read = http.get(f"/v1/campaigns/{reference}")
    assert answer.status_code == 422, answer.text
    assert read.status_code == 404


def test_payin_whose_provider_is_slow_to_answer_is_a_201_with_its_state(
    stack: Stack, reference: str
) -> None:
    """Found while fuzzing: when the provider had not answered the payin's create call
    within the gateway's wait, the update's RPC timeout escaped as a 500, though the payin
    was started. The answer is now the payin's current state."""
    stack.fault("caurisflux", kind="error", operation="payments.initiate", count=None, status=503)
    body = {
        "reference": reference,
        "provider": "caurisflux",
        "mode": "checkout",
        "country": "SN",
        "customer": {"phone": "+221771230001", "name": "Awa Diallo"},
        "amount": 15_000,
        "currency": "XOF",
        "return_url": "https://shop.example/paid",
    }
    with httpx.Client(base_url=stack.gateway_url, timeout=60) as http:
        answer = http.post("/v1/payins", json=body, headers={"Authorization": f"Bearer {ACME_KEY}"})
    assert answer.status_code == 201, answer.text
    state = answer.json()
    assert state["workflow_id"] == f"payin-acme-{reference}"
    assert state["status"] in {"created", "submitting"}
    assert state.get("payment_url") is None
