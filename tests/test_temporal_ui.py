"""The Temporal UI (2.54, served by the dev server) shows payments by business status: the
links of ``momoflow.temporal_ui`` filter the workflow list, the columns docs/operations.md
tells operators to add show each payment's status and amount, and a saved view brings the
list back in one click. Driven in headless Chromium with Playwright; the screenshot of
docs/operations.md is taken here (``docs/img/temporal-ui-payments.png``).

Real payouts make the rows: a Temporal dev server with its UI, the CaurisFlux sandbox and a
worker, each a child process on free ports (no gateway: payouts are started on Temporal as
the gateway starts them). One succeeds, one is declined by the provider (a payout refused
by the provider ends ``failed``) and one never settles and goes to ``reconciling``.
"""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import (
    Locator,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)
from pydantic import SecretStr

from momoflow import search_attributes, temporal_ui
from momoflow.client import start_payout_on_temporal
from momoflow.models import PayoutTimings
from momoflow.processes import (
    ManagedProcess,
    free_port,
    http_ready,
    tcp_ready,
    temporal_dev_server_argv,
)
from momoflow.records.embedded import EmbeddedPostgres
from momoflow.settings import DatabaseSettings, Settings, TemporalSettings
from momoflow.temporal import connect_client
from tests.browser import ConsoleErrors, find_chromium
from tests.stack import migrate_records, wait_until

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "img" / "temporal-ui-payments.png"
OPERATIONS_MD = ROOT / "docs" / "operations.md"
PREFIX = "momoflow-ui-test"
#: Where the sandbox sends webhooks: nobody listens (the discard port), so every payout is
#: settled by polling, as when webhooks are lost.
NO_WEBHOOKS = "http://127.0.0.1:9"
TIMINGS = PayoutTimings(
    provider_call_timeout_s=5,
    quote_timeout_s=20,
    submit_timeout_s=40,
    settle_timeout_s=4,
    poll_schedule_s=[1],
    reconcile_poll_interval_s=3600,
    reconcile_horizon_s=3600,
)
#: The rows of the list: (what, CaurisFlux test number, amount, the PaymentStatus it ends with).
PAYOUTS = [
    ("paid", "+221770000001", 12_500, "succeeded"),
    ("declined", "+221770000000", 31_000, "failed"),
    ("stuck", "+221770000003", 47_250, "reconciling"),
]
#: Default columns the documented steps remove, to make room (docs/operations.md).
REMOVED_COLUMNS = ("Run ID", "Type", "End")
#: A common laptop screen: the documented columns fit without scrolling the table.
VIEWPORT: ViewportSize = {"width": 1536, "height": 600}
ROW = "[data-testid=workflows-summary-configurable-table-row]"
WAIT_MS = 20_000


@pytest.fixture(scope="session")
def chromium() -> str:
    return find_chromium()


@dataclass
class UiStack:
    """A Temporal dev server with its UI, the CaurisFlux sandbox and a worker."""

    root: Path
    ui_url: str
    temporal_address: str
    processes: list[ManagedProcess] = field(default_factory=list)
    #: what (as in PAYOUTS) → workflow id.
    workflow_ids: dict[str, str] = field(default_factory=dict)


def _settings(database_url: str) -> Settings:
    """The settings the gateway would start these payouts with."""
    return Settings(
        _env_file=None,
        env="test",
        task_queue_prefix=PREFIX,
        public_url=NO_WEBHOOKS,
        payout_timings=TIMINGS,
        database=DatabaseSettings(url=SecretStr(database_url)),
    )


async def _start_payouts(stack: UiStack, settings: Settings, run: str) -> None:
    client = await connect_client(
        TemporalSettings(address=stack.temporal_address), codec=settings.codec
    )
    for what, phone, amount, _status in PAYOUTS:
        body = {
            "reference": f"UI-{run}-{what}",
            "provider": "caurisflux",
            "country": "SN",
            "operator": "wave",
            "recipient": {"phone": phone, "name": "Awa Diallo"},
            "amount": amount,
            "currency": "XOF",
        }
        stack.workflow_ids[what] = await start_payout_on_temporal(client, "demo", body, settings)


def _ui_count(ui_url: str, query: str) -> int | None:
    """The UI's own count of workflows matching ``query`` (None while its API answers
    503, as it does for a moment after startup)."""
    try:
        answer = httpx.get(
            f"{ui_url}/api/v1/namespaces/default/workflow-count",
            params={"query": query},
            timeout=5,
        )
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    return int(answer.json().get("count", 0))


def _ui_count_is(ui_url: str, query: str, count: int) -> bool:
    return _ui_count(ui_url, query) == count


@pytest.fixture(scope="module")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiStack]:
    root = tmp_path_factory.mktemp("temporal-ui")
    temporal_port, ui_port, sandbox_port = free_port(), free_port(), free_port()
    postgres = EmbeddedPostgres(root / "postgres", free_port(), durable=False)
    stack = UiStack(
        root=root,
        ui_url=f"http://127.0.0.1:{ui_port}",
        temporal_address=f"127.0.0.1:{temporal_port}",
    )
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    env = {
        "MOMOFLOW_ENV": "test",
        "MOMOFLOW_TEMPORAL__ADDRESS": stack.temporal_address,
        "MOMOFLOW_DATABASE__URL": postgres.url,
        "MOMOFLOW_PROVIDERS": "caurisflux",
        "MOMOFLOW_CAURISFLUX__BASE_URL": f"{sandbox_url}/api/v1",
        "MOMOFLOW_CAURISFLUX__TIMEOUT_S": "3",
        "MOMOFLOW_CAURISFLUX__RATE_LIMIT_PER_MINUTE": "60000",
        "MOMOFLOW_TASK_QUEUE_PREFIX": PREFIX,
        "MOMOFLOW_PUBLIC_URL": NO_WEBHOOKS,
        "MOMOFLOW_STATE_DIR": str(root),
        "MOMOFLOW_GRACEFUL_SHUTDOWN_S": "1",
        "PYTHONUNBUFFERED": "1",
    }
    logs = root / "logs"
    temporal = ManagedProcess(
        "temporal",
        temporal_dev_server_argv(
            port=temporal_port,
            ui_port=ui_port,
            db_file=None,
            search_attribute_flags=search_attributes.cli_flags(),
        ),
        log_path=logs / "temporal.log",
    )
    sandbox = ManagedProcess(
        "sandbox-caurisflux",
        [sys.executable, "-m", "momoflow.sandbox", "caurisflux", "--port", str(sandbox_port)]
        + ["--settle-delay", "0.3", "--rate-limit-per-minute", "0"],
        log_path=logs / "sandbox-caurisflux.log",
        env=env,
    )
    worker = ManagedProcess(
        "worker",
        [sys.executable, "-m", "momoflow.cli", "worker"],
        log_path=logs / "worker.log",
        env=env,
    )
    try:
        # Started side by side (a start without a readiness check returns at once); the
        # worker needs Temporal up when it connects.
        postgres.prepare()
        stack.processes += [postgres.process(logs / "postgres.log").start(timeout=60)]
        migrate_records(env, logs / "db-upgrade.log")
        stack.processes += [temporal.start(), sandbox.start()]
        temporal.wait_until(tcp_ready("127.0.0.1", temporal_port), timeout=60, what="ready")
        stack.processes.append(worker.start())
        sandbox.wait_until(http_ready(f"{sandbox_url}/health"), timeout=60, what="ready")
        worker.wait_until(
            lambda: "momoflow worker ready" in worker.tail(100), timeout=90, what="polling"
        )
        settings = _settings(postgres.url)
        asyncio.run(_start_payouts(stack, settings, uuid.uuid4().hex[:8]))
        # Every payout at its final PaymentStatus, as the UI's own API counts them.
        for _what, _phone, _amount, status in PAYOUTS:
            query = temporal_ui.payment_query(statuses=[status])
            wait_until(
                partial(_ui_count_is, stack.ui_url, query, 1),
                timeout=60,
                what=f"one payout with {query} in the UI",
            )
        yield stack
    finally:
        for proc in reversed(stack.processes):
            proc.stop()


def rows(page: Page) -> Locator:
    return page.locator(ROW)


def _listed(ui_url: str, query: str) -> set[str]:
    """The workflow ids the UI's own API lists for ``query``."""
    answer = httpx.get(
        f"{ui_url}/api/v1/namespaces/default/workflows", params={"query": query}, timeout=10
    )
    answer.raise_for_status()
    return {e["execution"]["workflowId"] for e in answer.json().get("executions", [])}


def test_each_view_lists_exactly_its_payments(ui_stack: UiStack) -> None:
    ids = ui_stack.workflow_ids
    expected = {
        temporal_ui.NEEDS_ATTENTION_VIEW: {"declined", "stuck"},
        temporal_ui.MONEY_IN_DOUBT: {"stuck"},
        temporal_ui.NOT_PAID_VIEW: {"declined"},
        temporal_ui.provider_view("caurisflux"): {"declined", "stuck"},
        temporal_ui.provider_view("novasend"): set(),
        temporal_ui.provider_view("mobilepay"): set(),
    }
    assert set(expected) == set(temporal_ui.standard_views())
    for view, whats in expected.items():
        # The query the link carries, as the UI decodes it.
        (query,) = parse_qs(urlsplit(view.url(ui_stack.ui_url)).query)["query"]
        assert query == view.query
        assert _listed(ui_stack.ui_url, query) == {ids[what] for what in whats}, view.name


def test_views_and_columns_show_payments_by_business_status(
    ui_stack: UiStack, chromium: str
) -> None:
    ui = ui_stack.ui_url
    ids = ui_stack.workflow_ids
    view = temporal_ui.NEEDS_ATTENTION_VIEW
    local = re.compile(rf"^{re.escape(ui)}(/|$)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        context = browser.new_context(viewport=VIEWPORT)
        context.route(lambda url: not local.match(url), lambda route: route.abort())
        context.set_default_timeout(WAIT_MS)
        expect.set_options(timeout=WAIT_MS)
        page = context.new_page()
        errors = ConsoleErrors(ui)
        errors.attach(page)
        try:
            # The documented steps: the one-click link, the columns, the saved view.
            page.goto(view.url(ui))
            expect(rows(page)).to_have_count(2)
            page.get_by_role("button", name="Configure Columns").click()
            for column in temporal_ui.COLUMNS:
                page.get_by_role("button", name=f"Add {column} column").click()
            for column in REMOVED_COLUMNS:
                page.get_by_role("button", name=f"Remove {column} column").click()
            page.get_by_role("button", name="Close Workflows Table configuration").click()
            expect(page.get_by_text("Configure Workflows Table")).to_be_hidden()
            page.get_by_role("button", name="Save as New").click()
            dialog = page.get_by_role("dialog").filter(has_text="Save as New View")
            dialog.get_by_placeholder("Name of view").fill(view.name)
            dialog.get_by_role("button", name="Save", exact=True).click()
            expect(page.get_by_test_id("saved-views-bar")).to_contain_text(view.name)

            # Status and amount in the list, in view (the screenshot shows them).
            for column in temporal_ui.COLUMNS:
                header = page.get_by_test_id(f"workflows-summary-table-header-cell-{column}")
                expect(header).to_be_in_viewport(ratio=1)
            for column in REMOVED_COLUMNS:
                header = page.get_by_test_id(f"workflows-summary-table-header-cell-{column}")
                expect(header).to_have_count(0)
            expect_rows(page, ids, ["declined", "stuck"])
            # The execution status says nothing of the money: the declined payout completed,
            # the reconciling one is still running.
            expect(rows(page).filter(has_text=ids["declined"])).to_contain_text(
                re.compile("completed", re.I)
            )
            expect(rows(page).filter(has_text=ids["stuck"])).to_contain_text(
                re.compile("running", re.I)
            )
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))

            # Another one-click link; the browser keeps the columns.
            page.goto(temporal_ui.MONEY_IN_DOUBT.url(ui))
            expect_rows(page, ids, ["stuck"])

            # Every payout under "All"; the saved view is one click away.
            page.get_by_test_id("all").click()
            expect_rows(page, ids, ["paid", "declined", "stuck"])
            page.get_by_test_id("saved-views-button").click()
            page.get_by_role("menuitem", name=view.name).click()
            expect_rows(page, ids, ["declined", "stuck"])
            assert errors.errors == []
        except BaseException:
            page.screenshot(path=str(ui_stack.root / "failure.png"))
            raise
        finally:
            browser.close()

    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert SCREENSHOT.stat().st_size > 10_000


def expect_rows(page: Page, ids: dict[str, str], whats: list[str]) -> None:
    """The list shows exactly the payouts ``whats``, each with its PaymentStatus, amount
    and currency."""
    expect(rows(page)).to_have_count(len(whats))
    for what, _phone, amount, status in PAYOUTS:
        row = rows(page).filter(has_text=ids[what])
        if what not in whats:
            expect(row).to_have_count(0)
            continue
        expect(row).to_have_count(1)
        expect(row).to_contain_text(status)
        expect(row).to_contain_text(str(amount))
        expect(row).to_contain_text("XOF")


def test_documented_links_are_the_modules() -> None:
    """docs/operations.md shows the links of the local UI as ``momoflow.temporal_ui`` builds
    them, and the columns it names."""
    text = OPERATIONS_MD.read_text(encoding="utf-8")
    section = text.split("## Finding payments in the Temporal UI", 1)[1].split("\n## ", 1)[0]
    for view in temporal_ui.standard_views():
        assert view.url("http://127.0.0.1:8233") in section, view.name
        assert f"`{view.query}`" in section, view.name
    assert f"**{temporal_ui.NEEDS_ATTENTION_VIEW.name}**" in section
    for column in temporal_ui.COLUMNS:
        assert f"**{column}**" in section
    assert "img/temporal-ui-payments.png" in section


def test_links_encode_the_query_the_namespace_and_odd_values() -> None:
    query = temporal_ui.payment_query(merchant='a"b\\c', direction="payout", statuses=["failed"])
    assert (
        query
        == 'PaymentDirection = "payout" AND MerchantId = "a\\"b\\\\c" AND PaymentStatus = "failed"'
    )
    url = temporal_ui.workflows_url(
        "https://ops.example.com/temporal/", query, namespace="pay ments"
    )
    parts = urlsplit(url)
    assert parts.path == "/temporal/namespaces/pay%20ments/workflows"
    assert parse_qs(parts.query) == {"query": [query]}
    assert " " not in url and '"' not in url and "+" not in url
    assert temporal_ui.payment_query() == ""
    assert temporal_ui.workflows_url("http://ui") == "http://ui/namespaces/default/workflows"
    links = temporal_ui.view_links("http://ui", providers=["caurisflux"])
    assert list(links) == [
        "Needs attention",
        "Money in doubt",
        "Failed or declined",
        "Needs attention: caurisflux",
    ]
