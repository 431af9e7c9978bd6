"""The console's campaign pages over real HTTP to the stack's gateway: upload, every problem
of every line, four-eyes approval (refused by the page and by the workflow's validator),
live progress, pause/resume/cancel, the report, escaping, and one merchant's campaigns
hidden from another's operators. Operators are made by the real CLI."""

from __future__ import annotations

import asyncio
import concurrent.futures
import csv
import io
import json
import re
import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowUpdateFailedError

from momoflow.campaigns.models import ApproveRequest, CampaignProgress
from momoflow.console.accounts import AuditEvent, OperatorStore
from momoflow.contract import APPROVE_UPDATE
from momoflow.ids import campaign_workflow_id, payout_workflow_id
from momoflow.records.store import RecordStore
from tests.console_support import Account, ConsoleClient, add_operator, logged_in
from tests.stack import GLOBEX_KEY, Stack, wait_until

pytestmark = pytest.mark.timeout(300)

HEADER = "reference,provider,country,operator,phone,name,amount,currency,description"
_PHASE = re.compile(r'id="campaign-progress"[^>]*data-phase="([a-z_]+)"')
_PROBLEM_ROW = re.compile(r'<tr data-line="(\d+)" data-field="([^"]*)">')
_ALERT = re.compile(r'<p class="error" role="alert">(.*?)</p>', re.S)
_STATUS = re.compile(r'<p class="ok" role="status">(.*?)</p>', re.S)


def good_line(reference: str, n: int, amount: int = 10_000, name: str | None = None) -> str:
    """A CaurisFlux line whose payout succeeds at the sandbox."""
    phone = f"+22177123{1100 + n % 800:04d}"
    return f"{reference},caurisflux,SN,wave,{phone},{name or f'Awa Diallo {n}'},{amount},XOF,n{n}"


def new_reference(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}"


def upload(
    browser: ConsoleClient,
    reference: str,
    body: str | bytes,
    *,
    name: str = "",
    filename: str = "campaign.csv",
    content_type: str = "text/csv",
) -> httpx.Response:
    data = body.encode() if isinstance(body, str) else body
    return browser.post(
        "/console/campaigns",
        {"reference": reference, "name": name},
        files={"file": (filename, data, content_type)},
    )


def csv_file(rows: list[str]) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def phase_of(browser: ConsoleClient, reference: str) -> str | None:
    answer = browser.get(
        f"/console/campaigns/{reference}/progress", headers={"X-Console-Fragment": "1"}
    )
    if answer.status_code == 503:
        return None
    assert answer.status_code == 200, answer.text[-2000:]
    found = _PHASE.search(answer.text)
    assert found is not None, answer.text[:2000]
    return found.group(1)


def wait_phase(
    browser: ConsoleClient, reference: str, phases: set[str], timeout: float = 120
) -> str:
    def check() -> str | None:
        phase = phase_of(browser, reference)
        return phase if phase in phases else None

    found: str = wait_until(check, timeout=timeout, what=f"campaign {reference} in {phases}")
    return found


def audit_events(
    stack: Stack, merchant: str = "acme", *, target: str | None = None, actor: str | None = None
) -> list[AuditEvent]:
    """The merchant's audit trail as the record store holds it, newest first."""

    async def read() -> list[AuditEvent]:
        store = RecordStore.connect(stack.database_url)
        try:
            events, _ = await OperatorStore(store).audit_page(
                merchant, limit=200, target=target, actor=actor
            )
        finally:
            await store.close()
        return events

    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        # A thread of its own: the session's event loop belongs to pytest-asyncio.
        events: list[AuditEvent] = thread.submit(asyncio.run, read()).result(timeout=60)
    return events


def api_progress(stack: Stack, reference: str, key: str | None = None) -> dict[str, Any]:
    with stack.gateway(key) if key else stack.gateway() as http:
        answer = http.get(f"/v1/campaigns/{reference}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def cancel_quietly(browser: ConsoleClient, reference: str) -> None:
    """End a campaign a test leaves behind (refused when it has ended already)."""
    browser.post(f"/console/campaigns/{reference}/cancel", {"reason": "test cleanup"})


def test_an_upload_lists_every_problem_of_every_line_escaped(stack: Stack) -> None:
    maker = add_operator(stack, "maker")
    reference = new_reference("CM")
    tag = uuid.uuid4().hex[:6]
    rows = [
        good_line(f"{tag}-ok-1", 1),
        good_line(f"{tag}-ok-2", 2, name="<script>alert(1)</script>"),
        f"{tag}-bad-1,caurisflux,ZZ,wave,+221771231103,Moussa,10000,XOF,bad country",
        f"{tag}-bad-2,caurisflux,SN,wave,12,Moussa,,XOF,no amount and a bad phone",
        good_line("<b>x</b>", 4),
        f"{tag}-bad-3,,SN,pigeon,+221771231105,<b>x</b>,-5,EUR,everything wrong",
    ]
    with logged_in(stack, maker) as browser:
        answer = upload(browser, reference, csv_file(rows), name="<script>alert(2)</script>")
        assert answer.status_code == 303, answer.text[-3000:]
        assert answer.headers["location"] == f"/console/campaigns/{reference}"
        wait_phase(browser, reference, {"awaiting_approval"})

        page = browser.get(f"/console/campaigns/{reference}")
        assert page.status_code == 200
        # The pre-flight table, per provider and currency.
        assert 'id="preflight-totals"' in page.text
        assert 'data-provider="caurisflux" data-currency="XOF"' in page.text
        # Every problem of every line, exactly as the business API lists them.
        with stack.gateway() as http:
            expected = http.get(f"/v1/campaigns/{reference}/problems").json()["problems"]
        shown = sorted((int(line), field) for line, field in _PROBLEM_ROW.findall(page.text))
        assert shown == sorted((p["line"], p["field"]) for p in expected)
        assert {p["line"] for p in expected} == {3, 4, 5, 6}
        # Several problems on one line are all listed, not just the first.
        assert len(expected) > 4
        # Every problem's message is on the page (escaped as HTML text).
        for problem in expected:
            assert _html(problem["message"]) in page.text
        # Data is text, never markup.
        assert "<b>x</b>" not in page.text and "&lt;b&gt;x&lt;/b&gt;" in page.text
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page.text
        assert f"operator:{maker.name}" in page.text
        # The maker who uploaded it is told another operator must approve it, and the
        # server refuses (on the campaign's page, which still shows its progress).
        assert 'id="campaign-approve"' in page.text
        refused = browser.post(f"/console/campaigns/{reference}/approve", {})
        assert refused.status_code == 403
        assert _ALERT.search(refused.text) is not None
        assert 'data-phase="awaiting_approval"' in refused.text
        assert api_progress(stack, reference)["phase"] == "awaiting_approval"

        # The list shows it, newest first.
        def listed() -> str | None:
            listing = browser.get("/console/campaigns")
            assert listing.status_code == 200
            return listing.text if f'data-reference="{reference}"' in listing.text else None

        listing = wait_until(listed, timeout=30, what="the campaign in the list")
        assert 'id="campaign-upload"' in listing
        assert "<script>alert" not in listing
        cancel_quietly(browser, reference)

    uploads = [e for e in audit_events(stack, target=reference) if e.action == "upload_campaign"]
    assert [(e.actor, e.outcome) for e in uploads] == [(f"operator:{maker.name}", "ok")]
    assert uploads[0].detail["lines"] == len(rows)
    refusals = [
        e
        for e in audit_events(stack, target=reference, actor=f"operator:{maker.name}")
        if e.action == "approve_campaign"
    ]
    assert [(e.outcome, e.detail["rule"]) for e in refusals] == [("refused", "four_eyes")]


def _html(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("'", "&#39;")
    )


async def test_four_eyes_a_checker_approves_and_the_lines_are_paid(
    stack: Stack, client: Client
) -> None:
    admin = add_operator(stack, "admin")
    checker = add_operator(stack, "checker")
    viewer = add_operator(stack, "viewer")
    maker = add_operator(stack, "maker")
    reference = new_reference("CF")
    tag = uuid.uuid4().hex[:6]
    rows = [good_line(f"{tag}-{n}", n) for n in range(3)]
    uploader = logged_in(stack, admin)
    try:
        answer = upload(uploader, reference, csv_file(rows), name="Salaires")
        assert answer.status_code == 303, answer.text[-3000:]
        wait_phase(uploader, reference, {"awaiting_approval"})

        # The uploader (an admin, who may approve others' campaigns) is refused by the page.
        page = uploader.get(f"/console/campaigns/{reference}?lang=en")
        assert 'id="campaign-approve"' in page.text
        assert "another operator must approve it" in page.text
        own = uploader.post(f"/console/campaigns/{reference}/approve", {"reason": "mine"})
        assert own.status_code == 403
        alert = _ALERT.search(own.text)
        assert alert is not None and "Four-eyes" in alert.group(1)
        assert api_progress(stack, reference)["phase"] == "awaiting_approval"
    finally:
        uploader.close()

    # ... and by the workflow's validator, whoever sends the update.
    handle = client.get_workflow_handle(campaign_workflow_id("acme", reference))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            APPROVE_UPDATE,
            ApproveRequest(approved_by=f"operator:{admin.name}"),
            result_type=CampaignProgress,
        )
    assert "four-eyes" in str(refused.value.cause)
    with stack.gateway() as http:
        through_api = http.post(
            f"/v1/campaigns/{reference}/approve", json={"approved_by": f"operator:{admin.name}"}
        )
    assert through_api.status_code == 409
    assert through_api.json()["message"].startswith("four-eyes")
    assert api_progress(stack, reference)["approved_by"] is None

    # A viewer, or a maker who did not upload it, may not approve.
    for account in (viewer, maker):
        with logged_in(stack, account) as browser:
            page = browser.get(f"/console/campaigns/{reference}")
            assert 'id="campaign-approve"' not in page.text
            forbidden = browser.post(f"/console/campaigns/{reference}/approve", {})
            assert forbidden.status_code == 403
            assert _ALERT.search(forbidden.text) is not None

    with logged_in(stack, checker) as browser:
        approved = browser.post(f"/console/campaigns/{reference}/approve", {"reason": "ok"})
        assert approved.status_code == 303, approved.text[-3000:]
        assert approved.headers["location"] == f"/console/campaigns/{reference}?done=approved"
        done = browser.get(approved.headers["location"] + "&lang=en")
        status = _STATUS.search(done.text)
        assert status is not None and "approved" in status.group(1)
        # A query text is never echoed: an unknown ?done= shows nothing.
        odd = browser.get(f"/console/campaigns/{reference}?done=%3Cb%3Ehi%3C/b%3E")
        assert _STATUS.search(odd.text) is None and "<b>hi" not in odd.text

        wait_phase(browser, reference, {"completed"})
        final = browser.get(
            f"/console/campaigns/{reference}/progress", headers={"X-Console-Fragment": "1"}
        )
        # Final: the fragment stops refreshing itself.
        assert 'data-phase="completed"' in final.text and "data-refresh-url" not in final.text
        assert final.text.lstrip().startswith('<section id="campaign-progress"')
        page = browser.get(f"/console/campaigns/{reference}")
        assert f"operator:{checker.name}" in page.text and f"operator:{admin.name}" in page.text

        report = browser.get(f"/console/campaigns/{reference}/report.csv")
        assert report.status_code == 200
        assert report.headers["content-type"].startswith("text/csv")
        lines = list(csv.DictReader(io.StringIO(report.text)))
    assert [r["status"] for r in lines] == ["succeeded"] * len(rows)
    for row in lines:
        entry = stack.ledger_entry(payout_workflow_id("acme", row["reference"]))
        assert entry is not None, row
        assert entry["transactionId"] == row["provider_transaction_id"] != ""
        assert entry["executions"] == 1

    progress = api_progress(stack, reference)
    assert progress["approved_by"] == f"operator:{checker.name}"
    assert progress["submitted_by"] == f"operator:{admin.name}"
    events = audit_events(stack, target=reference)
    actions = {(e.actor, e.action, e.outcome) for e in events}
    assert (f"operator:{admin.name}", "approve_campaign", "refused") in actions
    assert (f"operator:{checker.name}", "approve_campaign", "ok") in actions
    assert (f"operator:{checker.name}", "download_report", "ok") in actions
    four_eyes = next(
        e for e in events if e.action == "approve_campaign" and e.actor == f"operator:{admin.name}"
    )
    assert four_eyes.detail["rule"] == "four_eyes" and four_eyes.reason == "mine"
    approval = next(e for e in events if e.action == "approve_campaign" and e.outcome == "ok")
    assert approval.reason == "ok"
    for account in (viewer, maker):
        tried = audit_events(stack, target=reference, actor=f"operator:{account.name}")
        assert [(e.action, e.outcome, e.detail["missing_permission"]) for e in tried] == [
            ("approve_campaign", "refused", "approve_campaign")
        ]


def test_pause_resume_and_cancel_need_a_reason_and_are_audited(stack: Stack) -> None:
    maker = add_operator(stack, "maker")
    reference = new_reference("CC")
    tag = uuid.uuid4().hex[:6]
    with logged_in(stack, maker) as browser:
        answer = upload(browser, reference, csv_file([good_line(f"{tag}-1", 1)]))
        assert answer.status_code == 303, answer.text[-3000:]
        wait_phase(browser, reference, {"awaiting_approval"})
        page = browser.get(f"/console/campaigns/{reference}")
        assert 'id="campaign-cancel"' in page.text

        no_reason = browser.post(f"/console/campaigns/{reference}/pause", {"reason": "  "})
        assert no_reason.status_code == 422
        assert _ALERT.search(no_reason.text) is not None
        paused = browser.post(f"/console/campaigns/{reference}/pause", {"reason": "check IBAN"})
        assert paused.status_code == 303
        assert paused.headers["location"].endswith("?done=paused")
        resumed = browser.post(f"/console/campaigns/{reference}/resume", {"reason": "checked"})
        assert resumed.status_code == 303
        cancelled = browser.post(f"/console/campaigns/{reference}/cancel", {"reason": "wrong file"})
        assert cancelled.status_code == 303
        wait_phase(browser, reference, {"cancelled"})
        # The workflow's refusal is shown on the page, with a 409.
        again = browser.post(f"/console/campaigns/{reference}/cancel", {"reason": "again"})
        assert again.status_code == 409
        alert = _ALERT.search(again.text)
        assert alert is not None and "cancelled" in alert.group(1)
        assert 'id="campaign-cancel"' not in again.text
    progress = api_progress(stack, reference)
    assert progress["cancelled_by"] == f"operator:{maker.name}"
    assert "wrong file" in progress["phase_reason"]
    events = audit_events(stack, target=reference)
    trail = [(e.action, e.outcome, e.reason) for e in reversed(events)]
    assert trail == [
        ("upload_campaign", "ok", ""),
        ("pause_campaign", "refused", ""),
        ("pause_campaign", "ok", "check IBAN"),
        ("resume_campaign", "ok", "checked"),
        ("cancel_campaign", "ok", "wrong file"),
        ("cancel_campaign", "refused", "again"),
    ]


def test_another_merchants_campaign_is_not_found(stack: Stack) -> None:
    globex_maker = add_operator(stack, "maker", merchant="globex")
    acme_checker = add_operator(stack, "checker")
    reference = new_reference("CG")
    tag = uuid.uuid4().hex[:6]
    jsonl = (
        "\n".join(
            json.dumps(
                {
                    "reference": f"{tag}-{n}",
                    "provider": "caurisflux",
                    "country": "SN",
                    "operator": "wave",
                    "phone": f"+22177123{1200 + n:04d}",
                    "name": "Aminata",
                    "amount": 5000,
                    "currency": "XOF",
                }
            )
            for n in range(2)
        )
        + "\n"
    )
    with logged_in(stack, globex_maker) as owner:
        answer = upload(
            owner, reference, jsonl, filename="campaign.jsonl", content_type="application/x-ndjson"
        )
        assert answer.status_code == 303, answer.text[-3000:]
        assert owner.get(f"/console/campaigns/{reference}").status_code == 200
        with logged_in(stack, acme_checker) as stranger:
            for path in ("", "/progress", "/report.csv"):
                assert stranger.get(f"/console/campaigns/{reference}{path}").status_code == 404
            refused = stranger.post(f"/console/campaigns/{reference}/approve", {})
            assert refused.status_code == 404
            assert f'data-reference="{reference}"' not in stranger.get("/console/campaigns").text
        wait_phase(owner, reference, {"awaiting_approval"})
        assert api_progress(stack, reference, key=GLOBEX_KEY)["file_format"] == "jsonl"
        cancel_quietly(owner, reference)
        wait_phase(owner, reference, {"cancelled"})


def test_a_rejected_file_is_shown_with_its_problems_and_starts_nothing(stack: Stack) -> None:
    maker = add_operator(stack, "maker")
    with logged_in(stack, maker) as browser:
        # A multi-megabyte upload reaches the campaign checks (the form's part limit is for
        # text fields only); its header is wrong, so the whole file is refused.
        reference = new_reference("CR")
        header = "reference,amount,<script>alert(3)</script>\n"
        body = header + "x,1,2\n" * 600_000
        assert len(body) > 3 * 1024 * 1024
        rejected = upload(browser, reference, body, name="big")
        assert rejected.status_code == 422, rejected.text[-3000:]
        assert 'id="upload-problems"' in rejected.text
        assert 'id="campaign-upload"' in rejected.text
        assert "<script>alert(3)" not in rejected.text
        assert "&lt;script&gt;alert(3)&lt;/script&gt;" in rejected.text
        assert rejected.text.count('<tr data-field="header">') == 2
        with stack.gateway() as http:
            assert http.get(f"/v1/campaigns/{reference}").status_code == 404

        # Not CSV nor JSON lines; a bad reference: every problem of the form at once.
        odd = upload(
            browser, "bad reference!", "hello", filename="notes.txt", content_type="text/plain"
        )
        assert odd.status_code == 422
        assert 'data-field="reference"' in odd.text and 'data-field="file"' in odd.text
        # The form keeps what was typed, as text.
        assert 'value="bad reference!"' in odd.text
    events = audit_events(stack, target=reference)
    assert [(e.action, e.outcome) for e in events] == [("upload_campaign", "refused")]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_campaign_pages_render_in_both_languages(stack: Stack, lang: str) -> None:
    account: Account = add_operator(stack, "admin", language=lang)
    reference = new_reference("CL")
    with logged_in(stack, account) as browser:
        answer = upload(browser, reference, csv_file([good_line(uuid.uuid4().hex[:8], 7)]))
        assert answer.status_code == 303, answer.text[-3000:]
        wait_phase(browser, reference, {"awaiting_approval"})
        for path in ("", f"/{reference}", f"/{reference}/progress"):
            page = browser.get(f"/console/campaigns{path}?lang={lang}")
            assert page.status_code == 200, page.text[-3000:]
            assert page.text.count("<h1") == 1
            assert f'<html lang="{lang}">' in page.text
        assert browser.get("/console/campaigns/no-such-campaign").status_code == 404
        assert browser.get("/console/campaigns/not%20a%20reference").status_code == 404
        cancel_quietly(browser, reference)
