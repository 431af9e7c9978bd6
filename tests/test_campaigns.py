"""Bulk payout campaigns through the gateway, against the real stack: pre-flight, approval,
execution, pause/resume/cancel, outages, continue-as-new, the report."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from typing import Any

import httpx
import pytest

from momoflow.ids import payout_workflow_id
from tests.stack import ACME_KEY, GLOBEX_KEY, Stack, wait_until

HEADER = "reference,provider,country,operator,phone,name,amount,currency,description"
FINAL_PHASES = {"completed", "cancelled", "rejected"}
#: Test numbers that settle as completed at each sandbox (the last four digits decide).
PHONES = {
    "caurisflux": ("SN", "wave", "+22177123"),
    "novasend": ("CI", "wave", "+225070123"),
    "mobilepay": ("CI", "orange_money", "+225070123"),
}


def line(ref: str, provider: str, n: int, amount: int = 10_000, suffix: str | None = None) -> str:
    country, operator, prefix = PHONES[provider]
    digits = suffix if suffix is not None else f"{1100 + n % 800:04d}"
    return f"{ref},{provider},{country},{operator},{prefix}{digits},Awa Diallo {n},{amount},XOF,line {n}"


def lines_for(tag: str, providers: Iterable[str], per_provider: int) -> list[str]:
    rows = []
    for provider in providers:
        for n in range(per_provider):
            rows.append(line(f"{tag}-{provider[:2]}-{n}", provider, n))
    return rows


def submit(
    stack: Stack,
    rows: list[str],
    *,
    reference: str | None = None,
    key: str = ACME_KEY,
    **params: Any,
) -> tuple[str, httpx.Response]:
    reference = reference or f"C-{uuid.uuid4().hex[:12]}"
    body = "\n".join([HEADER, *rows]) + "\n"
    with stack.gateway(key) as http:
        answer = http.post(
            "/v1/campaigns",
            params={"reference": reference, **params},
            content=body.encode(),
            headers={"Content-Type": "text/csv"},
        )
    return reference, answer


def progress(stack: Stack, reference: str) -> dict[str, Any]:
    with stack.gateway() as http:
        answer = http.get(f"/v1/campaigns/{reference}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def wait_phase(
    stack: Stack, reference: str, phases: set[str], timeout: float = 120
) -> dict[str, Any]:
    seen: list[str] = [""]

    def check() -> dict[str, Any] | None:
        with stack.gateway() as http:
            answer = http.get(f"/v1/campaigns/{reference}")
        seen[0] = f"{answer.status_code} {answer.text[:500]}"
        if answer.status_code == 200 and answer.json()["phase"] in phases:
            body: dict[str, Any] = answer.json()
            return body
        return None

    try:
        result: dict[str, Any] = wait_until(check, timeout=timeout, what=f"campaign in {phases}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last answer: {seen[0]}") from None
    return result


def control(stack: Stack, reference: str, action: str, body: dict[str, Any]) -> httpx.Response:
    with stack.gateway() as http:
        return http.post(f"/v1/campaigns/{reference}/{action}", json=body)


def report(stack: Stack, reference: str) -> list[dict[str, str]]:
    with stack.gateway() as http:
        answer = http.get(f"/v1/campaigns/{reference}/report")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.text)))


def executions(stack: Stack, provider: str, reference: str) -> int:
    entry = stack.ledger_entry(payout_workflow_id("acme", reference), provider=provider)
    return 0 if entry is None else int(entry["executions"])


def test_campaign_pays_every_valid_line_once_after_approval(stack: Stack) -> None:
    rows = lines_for(f"A{uuid.uuid4().hex[:6]}", PHONES, 4)
    reference, answer = submit(stack, rows)
    assert answer.status_code == 201, answer.text

    waiting = wait_phase(stack, reference, {"awaiting_approval"})
    assert waiting["valid_lines"] == 12 and waiting["invalid_lines"] == 0
    assert waiting["started_lines"] == 0
    assert all(executions(stack, row.split(",")[1], row.split(",")[0]) == 0 for row in rows)

    approved = control(stack, reference, "approve", {"approved_by": "Fatou (finance)"})
    assert approved.status_code == 200, approved.text
    done = wait_phase(stack, reference, FINAL_PHASES)

    assert done["phase"] == "completed", done
    assert done["by_status"]["succeeded"] == {"lines": 12, "amount": 120_000}
    assert done["paid"] == {"XOF": 120_000}
    assert done["approved_by"] == "Fatou (finance)"
    lines = report(stack, reference)
    assert [r["status"] for r in lines] == ["succeeded"] * 12
    for row in lines:
        assert executions(stack, row["provider"], row["reference"]) == 1
        assert row["provider_transaction_id"]
    with stack.gateway() as http:
        payout = http.get(f"/v1/payouts/{lines[0]['reference']}").json()
    assert payout["status"] == "succeeded"
