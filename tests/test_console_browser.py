"""The finance console in a real browser: Debian's Chromium driven by Playwright against the
stack's gateway, sandboxes and record store. These are the flows finance teams run: a
campaign from upload to report under four-eyes approval, money in doubt resolved with a
reason, every page in French and English, and no console error anywhere.

Set ``MOMOFLOW_CONSOLE_SCREENSHOTS=docs/console`` to refresh the screenshots of
``docs/console.md`` (otherwise they are written under the test's temporary directory).
"""

from __future__ import annotations

import csv
import io
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from momoflow.ids import payout_workflow_id
from tests.browser import ConsoleErrors, find_chromium
from tests.console_support import ROOT, Account, add_operator
from tests.stack import Stack

pytestmark = pytest.mark.timeout(300)

HEADER = "reference,provider,country,operator,phone,name,amount,currency,description"
WAIT_MS = 20_000
VIEWPORT = {"width": 1400, "height": 900}
#: Text that must stay text wherever it is shown.
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=find_chromium())
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    wanted = os.environ.get("MOMOFLOW_CONSOLE_SCREENSHOTS")
    folder = (ROOT / wanted) if wanted else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Visit:
    """One operator's browser context: every page's console errors and dialogs are kept
    (a dialog would be script injected through data)."""

    def __init__(self, browser: Browser, stack: Stack, language: str = "en") -> None:
        self.stack = stack
        self.context: BrowserContext = browser.new_context(
            viewport=VIEWPORT,  # type: ignore[arg-type]
            locale="fr-FR" if language == "fr" else "en-GB",
            timezone_id="Africa/Dakar",
            accept_downloads=True,
        )
        origin = stack.gateway_url
        self.context.route(lambda url: not url.startswith(origin), lambda route: route.abort())
        self.context.set_default_timeout(WAIT_MS)
        self.errors = ConsoleErrors(origin)
        self.dialogs: list[str] = []
        self.page = self.new_page()

    def new_page(self) -> Page:
        page = self.context.new_page()
        self.errors.attach(page)
        page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        return page

    def url(self, path: str) -> str:
        return f"{self.stack.gateway_url}{path}"

    def login(self, account: Account) -> None:
        page = self.page
        page.goto(self.url("/console/login"))
        page.locator("input[name=name]").fill(account.name)
        page.locator("input[name=password]").fill(account.password)
        page.locator("form[action='/console/login'] button[type=submit]").click()
        expect(page).to_have_url(re.compile(r"/console/transactions"))
        expect(page.locator("header .operator")).to_contain_text(account.name)

    def logout(self) -> None:
        self.page.locator("form[action='/console/logout'] button").click()
        expect(self.page).to_have_url(re.compile(r"/console/login"))

    def expect_refused(self, path: str) -> None:
        """The page just answered 403 on purpose: Chromium reports every 4xx page it
        loads as a console error, and that one (only that one) is expected."""
        refused = [e for e in self.errors.errors if "status of 403" in e and path in e]
        assert len(refused) == 1, self.errors.errors
        self.errors.errors.remove(refused[0])

    def close(self) -> None:
        self.context.close()
        assert self.errors.errors == []
        assert self.dialogs == []


def _campaign_csv(tag: str) -> tuple[bytes, list[str], int]:
    """A file with four good CaurisFlux lines and three broken ones: the good references and
    the number of problems pre-flight must list."""
    good = [f"{tag}-ok-{n}" for n in range(4)]
    rows = [
        f"{ref},caurisflux,SN,wave,+22177123{3100 + n:04d},Awa Diallo {n},{5_000 + n},XOF,salaire"
        for n, ref in enumerate(good)
    ]
    rows += [
        f"{tag}-bad-amount,caurisflux,SN,wave,+221771239001,Kofi,-5,XOF,line",
        f"{tag}-bad-phone,caurisflux,SN,wave,12345,Kofi,5000,XOF,line",
        f'"{HOSTILE}",caurisflux,SN,wave,+221771239002,Kofi,5000,XOF,line',
    ]
    return ("\n".join([HEADER, *rows]) + "\n").encode(), good, 3


def test_a_campaign_goes_from_upload_to_report_under_four_eyes(
    stack: Stack, browser: Browser, shots: Path
) -> None:
    maker = add_operator(stack, "maker")
    checker = add_operator(stack, "checker")
    tag = f"B{uuid.uuid4().hex[:6]}"
    reference = f"CAMP-{tag}"
    data, good, problems = _campaign_csv(tag)

    visit = Visit(browser, stack)
    page = visit.page
    try:
        visit.login(maker)
        page.goto(visit.url("/console/campaigns"))
        form = page.locator("form#campaign-upload")
        form.locator("input[name=reference]").fill(reference)
        form.locator("input[name=name]").fill(f"Salaires {HOSTILE}")
        form.locator("input[name=file]").set_input_files(
            {"name": "salaires.csv", "mimeType": "text/csv", "buffer": data}
        )
        form.locator("button[type=submit]").click()
        expect(page).to_have_url(re.compile(rf"/console/campaigns/{reference}$"))
        # Nobody reloads: the page renders itself again when pre-flight's verdict is in.
        expect(page.locator('#campaign-progress[data-phase="awaiting_approval"]')).to_be_visible(
            timeout=60_000
        )
        rows = page.locator("table#campaign-problems tbody tr")
        expect(rows).to_have_count(problems)
        expect(page.locator("table#campaign-problems")).to_contain_text(HOSTILE)
        expect(page.locator("table#preflight-totals")).to_contain_text("caurisflux")
        page.screenshot(path=str(shots / "campaign-preflight.png"), full_page=True)

        # The maker cannot approve their own campaign: the server refuses.
        page.locator("form#campaign-approve button[type=submit]").click()
        expect(page.locator("p.error[role=alert]")).to_be_visible()
        expect(page.locator('#campaign-progress[data-phase="awaiting_approval"]')).to_be_visible()
        visit.expect_refused(f"/console/campaigns/{reference}/approve")
        visit.logout()

        visit.login(checker)
        page.goto(visit.url(f"/console/campaigns/{reference}"))
        page.locator("form#campaign-approve button[type=submit]").click()
        expect(page.locator("p.ok[role=status]")).to_be_visible()
        # Progress refreshes itself: no reload from here on.
        expect(page.locator('#campaign-progress[data-phase="completed"]')).to_be_visible(
            timeout=120_000
        )
        page.screenshot(path=str(shots / "campaign-progress.png"), full_page=True)

        with page.expect_download() as download:
            page.locator("a#campaign-report").click()
        report = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    finally:
        visit.close()

    paid = {row["reference"]: row for row in report if row["status"] == "succeeded"}
    assert set(paid) == set(good)
    for ref, row in paid.items():
        entry = stack.ledger_entry(payout_workflow_id("acme", ref))
        assert entry is not None, ref
        assert entry["executions"] == 1
        assert entry["amount"] == int(row["amount"])
        assert entry["transactionId"] == row["provider_transaction_id"]
    assert len(report) == len(good) + problems


def _reconciling_payout(stack: Stack) -> str:
    reference = f"DOUBT-{uuid.uuid4().hex[:8]}"
    body = {
        "reference": reference,
        "provider": "caurisflux",
        "country": "SN",
        "operator": "wave",
        "recipient": {"phone": "+221770000003", "name": "Moussa Ba"},
        "amount": 47_250,
        "currency": "XOF",
    }
    with stack.gateway() as http:
        answer = http.post("/v1/payouts", json=body)
    assert answer.status_code in (200, 201, 202), answer.text
    stack.wait_for_payout(reference, {"reconciling"}, timeout=120)
    return reference


def test_money_in_doubt_is_resolved_with_a_reason_that_the_audit_trail_keeps(
    stack: Stack, browser: Browser, shots: Path
) -> None:
    checker = add_operator(stack, "checker")
    reference = _reconciling_payout(stack)
    reason = f"Provider statement of {reference} shows no transfer ({uuid.uuid4().hex[:6]})"

    visit = Visit(browser, stack, language="fr")
    page = visit.page
    try:
        visit.login(checker)
        page.goto(visit.url("/console/in-doubt"))
        row = page.locator(f'table#in-doubt tr[data-reference="{reference}"]')
        expect(row).to_be_visible()
        page.screenshot(path=str(shots / "money-in-doubt.png"), full_page=True)
        resolve = row.locator("form.resolve")
        resolve.locator("select[name=outcome]").select_option("failed")
        resolve.locator("textarea[name=reason]").fill(reason)
        resolve.locator("button[type=submit]").click()
        expect(page.locator("p.ok[role=status]")).to_be_visible()

        page.goto(visit.url("/console/audit"))
        entry = page.locator("table#audit tbody tr", has_text=reason)
        expect(entry).to_have_count(1)
        expect(entry).to_contain_text(checker.name)
        page.screenshot(path=str(shots / "audit-trail.png"), full_page=True)
    finally:
        visit.close()

    final = stack.wait_for_payout(reference, {"failed"}, timeout=60)
    assert final["status"] == "failed"


PAGES = ("/console/transactions", "/console/campaigns", "/console/in-doubt", "/console/balances")


def test_every_page_renders_in_french_and_in_english(
    stack: Stack, browser: Browser, shots: Path
) -> None:
    admin = add_operator(stack, "admin")
    reference = f"LANG-{uuid.uuid4().hex[:8]}"
    with stack.gateway() as http:
        answer = http.post(
            "/v1/payouts",
            json={
                "reference": reference,
                "provider": "caurisflux",
                "country": "SN",
                "operator": "wave",
                "recipient": {"phone": "+221770000001", "name": "Awa Diallo"},
                "amount": 12_500,
                "currency": "XOF",
            },
        )
    assert answer.status_code in (200, 201, 202), answer.text
    stack.wait_for_payout(reference, {"succeeded"})
    pages = [*PAGES, "/console/audit", f"/console/transactions/payout/{reference}"]
    visit = Visit(browser, stack)
    page = visit.page
    headings: dict[str, dict[str, str]] = {}
    try:
        visit.login(admin)
        for language in ("fr", "en"):
            for path in pages:
                answer = page.goto(visit.url(f"{path}?lang={language}"))
                assert answer is not None and answer.status == 200, path
                expect(page.locator("html")).to_have_attribute("lang", language)
                headings.setdefault(path, {})[language] = page.locator("h1").inner_text()
                body = page.locator("body").inner_text()
                # A catalog key shown instead of its text looks like "tx.status.failed".
                assert not re.search(r"\b[a-z]+\.[a-z_]+\.[a-z_.]+\b", body), (path, language)
            if language == "fr":
                page.goto(visit.url(f"/console/transactions/payout/{reference}"))
                expect(page.locator("#amounts")).to_contain_text("12\u202f500\u00a0FCFA")
                page.screenshot(path=str(shots / "transaction.png"), full_page=True)
                page.goto(visit.url("/console/transactions"))
                page.screenshot(path=str(shots / "transactions.png"), full_page=True)
                page.goto(visit.url("/console/balances"))
                page.screenshot(path=str(shots / "balances.png"), full_page=True)
    finally:
        visit.close()
    translated = [path for path, by in headings.items() if by["fr"] != by["en"]]
    assert len(translated) >= len(pages) - 1, headings
