"""One suite, three providers: PayoutWorkflow runs unchanged on CaurisFlux, NovaSend and
MOBILE-PAY, each behind its own adapter and sandbox, over real HTTP.

Each scenario is written once; a :class:`ProviderCase` says how to provoke it at one
provider (its test numbers, fault operation names, webhook authentication).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import pytest

from momoflow.ids import idempotency_key, payout_workflow_id
from tests.stack import ACME_KEY, Stack, signed_caurisflux_webhook

FINAL = {"succeeded", "failed", "cancelled", "expired"}


@dataclass(frozen=True)
class ProviderCase:
    provider: str
    country: str
    operator: str
    phone_prefix: str  # the test number is prefix + 4 scripted digits
    ok: str
    declined: str
    decline_code: str
    stuck: str
    create_operation: str
    below_minimum: int

    def body(self, reference: str, suffix: str, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "reference": reference,
            "provider": self.provider,
            "country": self.country,
            "operator": self.operator,
            "recipient": {"phone": self.phone_prefix + suffix, "name": "Kouadio Yao"},
            "amount": 25_000,
            "currency": "XOF",
            "description": f"conformance {self.provider}",
        }
        body.update(overrides)
        return body


CASES = [
    ProviderCase(
        provider="caurisflux",
        country="SN",
        operator="wave",
        phone_prefix="+22177123",
        ok="1001",
        declined="0000",
        decline_code="invalid_recipient",
        stuck="0003",
        create_operation="payouts.initiate",
        below_minimum=99,
    ),
    ProviderCase(
        provider="novasend",
        country="CI",
        operator="wave",
        phone_prefix="+225070123",
        ok="1001",
        declined="0001",
        decline_code="wallet_not_found",
        stuck="0003",
        create_operation="payout.direct",
        below_minimum=199,
    ),
    ProviderCase(
        provider="mobilepay",
        country="CI",
        operator="orange_money",
        phone_prefix="+225070123",
        ok="1001",
        declined="0000",
        decline_code="RECIPIENT_NOT_FOUND",
        stuck="0003",
        create_operation="transfers.local",
        below_minimum=99,
    ),
]


@pytest.fixture(params=CASES, ids=lambda case: case.provider)
def case(request: pytest.FixtureRequest) -> ProviderCase:
    return request.param  # type: ignore[no-any-return]


def _post(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    with stack.gateway() as http:
        answer = http.post("/v1/payouts", json=body)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def _executions(stack: Stack, case: ProviderCase, reference: str) -> int:
    entry = stack.ledger_entry(payout_workflow_id("acme", reference), provider=case.provider)
    return 0 if entry is None else int(entry["executions"])


def test_accepted_payout_succeeds(stack: Stack, case: ProviderCase, reference: str) -> None:
    _post(stack, case.body(reference, case.ok))
    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "succeeded", final["timeline"]
    assert final["provider"] == case.provider
    assert final["provider_transaction_id"]
    assert _executions(stack, case, reference) == 1


def test_final_decline_fails_with_the_providers_reason(
    stack: Stack, case: ProviderCase, reference: str
) -> None:
    _post(stack, case.body(reference, case.declined))
    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "failed"
    assert final["failure"]["code"] == case.decline_code


def test_5xx_then_success_pays_once(stack: Stack, case: ProviderCase, reference: str) -> None:
    stack.fault(case.provider, operation=case.create_operation, kind="error", status=503, count=2)

    _post(stack, case.body(reference, case.ok))
    if case.provider == "mobilepay":
        # No idempotency: a 5xx proves nothing was sent, so nothing is sent again. The
        # transfer is looked for over the consistency window, then the payout reconciles.
        final = stack.wait_for_payout(reference, FINAL | {"reconciling"})
        assert final["status"] == "reconciling", final
        assert final["failure"]["code"] == "provider_conflict", final
        assert _executions(stack, case, reference) == 0
        return
    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "succeeded"
    assert final["submit_attempts"] == 3
    assert _executions(stack, case, reference) == 1


def test_timeout_after_execution_pays_exactly_once(
    stack: Stack, case: ProviderCase, reference: str
) -> None:
    stack.fault(
        case.provider,
        operation=case.create_operation,
        kind="timeout_after_execute",
        seconds=20,
        count=1,
    )

    _post(stack, case.body(reference, case.ok))
    final = stack.wait_for_payout(reference, FINAL, timeout=90)

    assert final["status"] == "succeeded"
    assert final["submit_attempts"] >= 2
    assert _executions(stack, case, reference) == 1


def test_5xx_after_execution_pays_exactly_once(
    stack: Stack, case: ProviderCase, reference: str
) -> None:
    """The create executes, then the provider answers 502 (CaurisFlux's documented
    ``provider_error``): the money moved though the answer says "error". The retry with
    the same idempotency key gets the stored answer (CaurisFlux, NovaSend); MOBILE-PAY,
    with no idempotency, never sends again and finds the transfer by its marker."""
    stack.fault(
        case.provider,
        operation=case.create_operation,
        kind="error_after_execute",
        status=502,
        code="provider_error" if case.provider == "caurisflux" else None,
        count=1,
    )

    _post(stack, case.body(reference, case.ok))
    final = stack.wait_for_payout(reference, FINAL | {"reconciling"}, timeout=90)

    assert final["status"] == "succeeded", final
    assert final["submit_attempts"] >= 2
    assert _executions(stack, case, reference) == 1


def test_lost_webhooks_are_made_up_for_by_polling(
    stack: Stack, case: ProviderCase, reference: str
) -> None:
    stack.fault(case.provider, kind="drop_webhooks", count=10)

    _post(stack, case.body(reference, case.ok))
    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "succeeded"
    assert final["status_polls"] >= 1
    assert _executions(stack, case, reference) == 1


def test_duplicate_webhooks_change_nothing(
    stack: Stack, case: ProviderCase, reference: str
) -> None:
    stack.fault(case.provider, kind="duplicate_webhooks", count=10)

    _post(stack, case.body(reference, case.ok))
    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "succeeded"
    assert final["failure"] is None
    assert _executions(stack, case, reference) == 1


def test_rate_limit_429_is_honoured(stack: Stack, case: ProviderCase, reference: str) -> None:
    stack.fault(
        case.provider, operation=case.create_operation, kind="error", status=429, seconds=2, count=1
    )

    _post(stack, case.body(reference, case.ok))
    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "succeeded"
    assert final["submit_attempts"] == 2
    assert _executions(stack, case, reference) == 1


def _forged_webhook(
    case: ProviderCase, workflow_id: str, transaction_id: str
) -> tuple[str, bytes, dict[str, str]]:
    """A 'success' webhook that fails authentication: wrong secret or wrong URL token."""
    if case.provider == "caurisflux":
        body, headers = signed_caurisflux_webhook(
            {
                "event": "payout.success",
                "data": {
                    "transactionId": transaction_id,
                    "externalReference": workflow_id,
                    "status": "completed",
                },
            },
            secret="forged",
        )
        return "/webhooks/caurisflux", body, headers
    if case.provider == "novasend":
        body = json.dumps(
            {
                "id": transaction_id,
                "reference": workflow_id,
                "type": "payout",
                "status": "processed",
                "transaction": {"status": "completed"},
            },
            separators=(",", ":"),
        ).encode()
        signature = hmac.new(b"forged", body, hashlib.sha256).hexdigest()
        return "/webhooks/novasend", body, {"X-Signature-Value": signature}
    body = json.dumps(
        {
            "event": "transfer.completed",
            "timestamp": "2026-11-23T12:00:00Z",
            "data": {
                "transfer_id": transaction_id,
                "amount": 25_000,
                "currency": "FCFA",
                "status": "completed",
            },
        }
    ).encode()
    return "/webhooks/mobilepay/not-the-token", body, {"Content-Type": "application/json"}


def test_forged_webhook_is_refused_and_changes_nothing(
    stack: Stack, case: ProviderCase, reference: str
) -> None:
    _post(stack, case.body(reference, case.stuck))
    pending = stack.wait_for_payout(reference, {"pending"})

    path, body, headers = _forged_webhook(
        case, pending["workflow_id"], pending["provider_transaction_id"]
    )
    with stack.gateway(key=None) as http:
        answer = http.post(path, content=body, headers=headers)
        state = http.get(
            f"/v1/payouts/{reference}", headers={"Authorization": f"Bearer {ACME_KEY}"}
        )

    assert answer.status_code == 401
    assert state.json()["status"] == "pending"


def test_authentic_webhook_reaches_its_payout(
    stack: Stack, case: ProviderCase, reference: str
) -> None:
    """The sandbox's own webhooks reach the right workflow and are applied, never ignored
    as "another transaction" (MOBILE-PAY's through the URL token, routed by the provider's
    transaction id since it sends no reference of ours)."""
    _post(stack, case.body(reference, case.ok))
    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "succeeded"
    assert final["webhooks_received"] >= 1
    notes = [entry["note"] for entry in final["timeline"]]
    assert not [n for n in notes if "for transaction" in n or "another reference" in n], notes


def test_unknown_status_words_are_pending_never_failed() -> None:
    from momoflow.models import PaymentStatus
    from momoflow.providers.caurisflux import map_status as caurisflux_status
    from momoflow.providers.mobilepay.mapping import TransactionKind
    from momoflow.providers.mobilepay.mapping import map_status as mobilepay_status
    from momoflow.providers.novasend.mapping import map_status as novasend_status

    word = "on_hold_for_review"
    assert caurisflux_status(word) is PaymentStatus.PENDING
    assert novasend_status(status=word, confirmation_status=word, settlement_status=word) is (
        PaymentStatus.PENDING
    )
    for kind in TransactionKind:
        assert mobilepay_status(word, kind) is PaymentStatus.PENDING


def test_amount_outside_the_providers_limits_is_refused_before_any_call(
    stack: Stack, case: ProviderCase, reference: str
) -> None:
    with stack.gateway() as http:
        answer = http.post(
            "/v1/payouts", json=case.body(reference, case.ok, amount=case.below_minimum)
        )
        assert answer.status_code == 422
        assert [(p["field"], p["rule"]) for p in answer.json()["problems"]] == [
            ("amount", "provider_limits")
        ]
        # Nothing started, so nothing will ever call the provider for it. (The sandbox's
        # request count is no proof: earlier tests' payouts still poll it meanwhile.)
        assert http.get(f"/v1/payouts/{reference}").status_code == 404
    key = idempotency_key(payout_workflow_id("acme", reference), "initiate_payout")
    sent = [r for r in stack.sandbox_requests(case.provider) if r["idempotencyKey"] == key]
    assert sent == []
