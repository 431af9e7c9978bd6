"""The console's money-in-doubt, balances and audit-trail pages, over real HTTP to the
stack's gateway: real reconciling payouts (CaurisFlux never settles +221770000003),
resolved through the workflow's audited ``resolve`` update by operators made with the real
CLI, and checked in the record store, the business API and the audit trail."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from momoflow.ids import payout_workflow_id
from momoflow.models import ProviderName
from momoflow.processes import ManagedProcess, free_port, http_ready
from momoflow.reconciliation.rules import Mismatch, MismatchKind, ReportMode, ReportSummary
from momoflow.records.store import Balance, RecordStore, StoredRecord
from momoflow.records.writes import Kind
from tests.console_support import ConsoleClient, add_operator, logged_in
from tests.stack import Stack, wait_until
from tests.test_payout_flow import payout_body, post_payout

pytestmark = pytest.mark.timeout(240)

#: CaurisFlux sandbox numbers: never settles (ends ``reconciling``); paid at once.
IN_DOUBT = "+221770000003"
PAID = "+221771230001"


# --------------------------------------------------------------------------- HTML


@dataclass
class Node:
    """An element of a page: its tag, attributes, children and text."""

    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Every text inside, whitespace collapsed."""
        pieces = list(self.parts)
        for child in self.children:
            pieces.append(child.text)
        return " ".join(" ".join(pieces).split())

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def all(self, tag: str | None = None, **attrs: str | None) -> list[Node]:
        """Descendants of ``tag`` whose attributes match (``None``: present, any value;
        ``class_``: one of the classes)."""
        found = []
        for child in self.children:
            if _matches(child, tag, attrs):
                found.append(child)
            found.extend(child.all(tag, **attrs))
        return found

    def one(self, tag: str | None = None, **attrs: str | None) -> Node:
        matches = self.all(tag, **attrs)
        assert len(matches) == 1, f"{len(matches)} <{tag} {attrs}> found"
        return matches[0]


def _matches(node: Node, tag: str | None, attrs: dict[str, str | None]) -> bool:
    if tag is not None and node.tag != tag:
        return False
    for name, value in attrs.items():
        if name == "class_":
            if value not in node.classes():
                return False
            continue
        name = name.replace("_", "-")
        if name not in node.attrs or (value is not None and node.attrs[name] != value):
            return False
    return True


_VOID = {"br", "input", "meta", "link", "hr", "img", "source", "wbr"}


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].parts.append(data)


def parse(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    return builder.root


# --------------------------------------------------------------------------- helpers


def _run(coro: Any) -> Any:
    """Run a coroutine on a loop of its own, in a thread of its own (the session's event
    loop may be running: it belongs to pytest-asyncio)."""
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coro).result(timeout=60)


async def _with_store(stack: Stack, use: Any) -> Any:
    store = RecordStore.connect(stack.database_url)
    try:
        return await use(store)
    finally:
        await store.close()


def stored(stack: Stack, reference: str) -> StoredRecord | None:
    result: StoredRecord | None = _run(
        _with_store(stack, lambda s: s.get(Kind.PAYOUT, "acme", reference))
    )
    return result


def timeline(stack: Stack, record_id: int) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = _run(_with_store(stack, lambda s: s.timeline(record_id)))
    return result


def store_balances(stack: Stack) -> list[Balance]:
    result: list[Balance] = _run(_with_store(stack, lambda s: s.balances()))
    return result


def in_doubt_payouts(stack: Stack, references: list[str]) -> dict[str, dict[str, Any]]:
    """Start one payout per reference that ends ``reconciling``; their states once every
    one of them is reconciling in the record store (what the console reads)."""
    for reference in references:
        post_payout(stack, payout_body(reference, phone=IN_DOUBT))
    states = {
        reference: stack.wait_for_payout(reference, {"reconciling"}, timeout=120)
        for reference in references
    }
    for reference in references:
        wait_until(
            lambda r=reference: (
                (found := stored(stack, r)) is not None and found.status.value == "reconciling"
            ),
            timeout=30,
            what=f"{reference} reconciling in the record store",
        )
    return states


def resolve_path(reference: str, kind: str = "payout") -> str:
    return f"/console/in-doubt/{kind}/{reference}/resolve"


def rows_of(page: httpx.Response) -> dict[str, Node]:
    """The in-doubt table's rows, by reference."""
    assert page.status_code == 200, page.text[-3000:]
    document = parse(page.text)
    tables = document.all("table", id="in-doubt")
    if not tables:
        return {}
    return {row.attrs["data-reference"]: row for row in tables[0].all("tr", data_reference=None)}


def whole_queue(browser: ConsoleClient) -> dict[str, Node]:
    """Every row of the queue, following the pages."""
    rows: dict[str, Node] = {}
    path = "/console/in-doubt"
    for _ in range(100):
        page = browser.get(path)
        rows.update(rows_of(page))
        following = parse(page.text).all("a", id="next-page")
        if not following:
            return rows
        path = "/console/in-doubt" + following[0].attrs["href"]
    raise AssertionError("the queue has no end")


def alert(page: httpx.Response) -> str:
    return parse(page.text).one("p", class_="error", role="alert").text


def audit_rows(browser: ConsoleClient, **filters: str) -> list[dict[str, str]]:
    page = browser.get("/console/audit", params=filters)
    assert page.status_code == 200, page.text[-3000:]
    table = parse(page.text).one("table", id="audit")
    rows = []
    for row in table.all("tr", data_id=None):
        cells = {
            name: row.one("td", class_=name).text
            for name in ("time", "actor", "action", "target", "reason", "outcome", "detail")
        }
        cells["outcome_value"] = row.attrs["data-outcome"]
        rows.append(cells)
    return rows


# --------------------------------------------------------------------------- money in doubt


def test_money_in_doubt_is_listed_refused_without_rights_or_reason_and_resolved(
    stack: Stack,
) -> None:
    first, second = f"DBT-{_tag()}-A", f"DBT-{_tag()}-B"
    states = in_doubt_payouts(stack, [first, second])
    checker = add_operator(stack, "checker", language="en")
    viewer = add_operator(stack, "viewer", language="en")
    maker = add_operator(stack, "maker", language="en")

    with logged_in(stack, checker) as browser:
        queue = whole_queue(browser)
        assert first in queue and second in queue
        # Oldest first: by when each went reconciling.
        order = list(queue)
        since = {r: datetime.fromisoformat(states[r]["reconciling_since"]) for r in states}
        earlier, later = sorted(states, key=lambda r: (since[r], order.index(r)))
        assert order.index(earlier) < order.index(later)
        row = queue[first]
        link = row.one("a", href=f"/console/transactions/payout/{first}")
        assert link.text == first
        assert "caurisflux" in row.text
        assert "50 000 FCFA" in row.text  # (narrow and no-break spaces)
        # Why: the payout's failure, explained; the provider's view, read live.
        assert states[first]["failure"]["code"] == "settlement_unknown"
        assert "no final status before the settle deadline" in row.text
        view = row.one("td", class_="provider-view")
        assert "unavailable" not in view.text
        assert states[first]["provider_transaction_id"] in view.text
        form = row.one("form", class_="resolve")
        assert form.attrs["action"] == resolve_path(first)
        outcomes = [o.attrs["value"] for o in form.one("select", name="outcome").all("option")]
        # No outcome is chosen for the operator: the first option is a disabled prompt.
        assert outcomes == ["", "paid", "failed"]
        form.one("textarea", name="reason")

    # A viewer sees the queue without the form; a viewer or a maker cannot resolve.
    for account in (viewer, maker):
        with logged_in(stack, account) as browser:
            queue = whole_queue(browser)
            assert first in queue and not queue[first].all("form", class_="resolve")
            refused = browser.post(
                resolve_path(first), {"outcome": "failed", "reason": "the dashboard says so"}
            )
            assert refused.status_code == 403, refused.text[-2000:]
    assert stored(stack, first).status.value == "reconciling"  # type: ignore[union-attr]

    with logged_in(stack, checker) as browser:
        # No reason, a blank one, one too short: refused, naming the field; nothing sent.
        for reason in (None, "   ", " abc ", "x" * 501):
            data = {"outcome": "failed"} | ({} if reason is None else {"reason": reason})
            answer = browser.post(resolve_path(first), data)
            assert answer.status_code == 400, answer.text[-2000:]
            message = alert(answer)
            assert "reason" in message and "5 to 500 characters" in message
        for outcome in ("maybe", None):
            data = {"reason": "a long reason"} | ({} if outcome is None else {"outcome": outcome})
            wrong = browser.post(resolve_path(first), data)
            assert wrong.status_code == 400 and "outcome" in alert(wrong)
        record = stored(stack, first)
        assert record is not None and record.status.value == "reconciling"
        assert record.state.get("resolution") is None

        # Resolved failed, with the evidence.
        reason = "CaurisFlux dashboard: transfer rejected by Wave, ticket CF-4411"
        done = browser.post(resolve_path(first), {"outcome": "failed", "reason": f"  {reason} "})
        assert done.status_code == 303, done.text[-2000:]
        assert done.headers["location"].startswith("/console/in-doubt?resolved=failed")
        landed = browser.get(done.headers["location"])
        status = parse(landed.text).one("p", class_="ok", role="status")
        assert first in status.text and "failed" in status.text
        # The message is the catalog's: a forged flag shows no message, and nothing of its
        # text but in the (escaped) language links.
        forged = browser.get("/console/in-doubt?resolved=<b>pwned</b>&reference=<i>x</i>")
        assert not parse(forged.text).all("p", role="status")
        assert "<b>pwned" not in forged.text and "<i>x" not in forged.text

        record = stored(stack, first)
        assert record is not None and record.status.value == "failed"
        with stack.gateway() as http:
            api = http.get(f"/v1/payouts/{first}").json()
        assert api["status"] == "failed"
        assert api["resolution"]["operator"] == checker.name
        assert api["resolution"]["reason"] == reason
        assert api["resolution"]["outcome"] == "failed"
        assert any(e["note"] == f"resolved by {checker.name}: {reason}" for e in api["timeline"])
        actors = {e["actor"] for e in timeline(stack, record.id) if "resolved by" in e["note"]}
        assert actors == {f"operator:{checker.name}"}
        assert first not in whole_queue(browser)

        # Once final, the workflow refuses another resolution: the page says why.
        again = browser.post(resolve_path(first), {"outcome": "paid", "reason": "second try"})
        assert again.status_code == 409, again.text[-2000:]
        assert "not reconciling" in alert(again)

        # The other one is resolved paid: the money moved.
        paid = browser.post(
            resolve_path(second), {"outcome": "paid", "reason": "Wave statement shows it paid"}
        )
        assert paid.status_code == 303
        assert stack.wait_for_payout(second, {"succeeded"})["resolution"]["outcome"] == "paid"

        # The audit trail: the resolution with its reason, the refusals with theirs.
        workflow_id = payout_workflow_id("acme", first)
        events = audit_rows(browser, target=workflow_id)
        ok = [e for e in events if e["outcome_value"] == "ok"]
        assert len(ok) == 1
        assert ok[0]["actor"] == f"operator:{checker.name}"
        assert ok[0]["action"] == "resolve"
        assert ok[0]["reason"] == reason
        assert "outcome=failed" in ok[0]["detail"]
        refusals = [e for e in events if e["outcome_value"] == "refused"]
        assert len(refusals) == 7  # four reasons, two outcomes, one after the resolution
        for account in (viewer, maker):
            mine = audit_rows(browser, actor=f"operator:{account.name}")
            refused = [e for e in mine if e["outcome_value"] == "refused"]
            assert len(refused) == 1
            assert refused[0]["action"] == f"post {resolve_path(first).removeprefix('/console')}"
            assert "resolve_in_doubt" in refused[0]["detail"]


def test_the_queue_shows_without_temporal_and_refuses_to_resolve(stack: Stack) -> None:
    """A gateway whose Temporal cannot be reached still lists the money in doubt from the
    record store, each row saying its provider view is unavailable; a resolution is a 503
    that changes nothing (and is audited as failed)."""
    reference = f"DBT-{_tag()}-C"
    state = in_doubt_payouts(stack, [reference])[reference]
    checker = add_operator(stack, "checker", language="en")
    with _gateway_without_temporal(stack) as url:
        with ConsoleClient(url) as browser:
            browser.login(checker)
            row = whole_queue(browser)[reference]
            assert "Provider view unavailable" in row.one("td", class_="provider-view").text
            assert (
                f"Last recorded provider status: {state['provider_status'] or 'none'}" in row.text
            )
            answer = browser.post(
                resolve_path(reference), {"outcome": "failed", "reason": "dashboard check"}
            )
            assert answer.status_code == 503, answer.text[-2000:]
            assert "orchestration server cannot be reached" in alert(answer)
    assert stored(stack, reference).status.value == "reconciling"  # type: ignore[union-attr]
    with logged_in(stack, checker) as browser:
        events = audit_rows(browser, target=payout_workflow_id("acme", reference))
        assert [e["outcome_value"] for e in events] == ["failed"]
        # Leave nothing in doubt behind on the shared stack.
        done = browser.post(
            resolve_path(reference), {"outcome": "failed", "reason": "test clean-up check"}
        )
        assert done.status_code == 303


def test_resolving_needs_a_known_transaction_of_the_merchant(stack: Stack) -> None:
    checker = add_operator(stack, "checker", language="en")
    with logged_in(stack, checker) as browser:
        data = {"outcome": "failed", "reason": "a valid reason"}
        assert browser.post(resolve_path("NOPE-" + _tag()), data).status_code == 404
        assert browser.post(resolve_path("X", kind="campaign"), data).status_code == 404
        assert browser.get("/console/in-doubt?after=abc").status_code == 400
        assert browser.get("/console/in-doubt?after=999999999999").status_code == 400
        # Without the CSRF token nothing is looked at.
        assert browser.post(resolve_path("X"), data, csrf=False).status_code == 403


# --------------------------------------------------------------------------- balances


def _balance_table(page: httpx.Response) -> dict[tuple[str, str], Node]:
    assert page.status_code == 200, page.text[-3000:]
    tables = parse(page.text).all("table", id="balances")
    if not tables:
        return {}
    return {
        (row.attrs["data-provider"], row.attrs["data-currency"]): row
        for row in tables[0].all("tr", data_provider=None)
    }


def test_balances_show_the_journal_beside_the_reports_and_the_latest_differences(
    stack: Stack,
) -> None:
    reference = f"BAL-{_tag()}"
    post_payout(stack, payout_body(reference, phone=PAID))
    stack.wait_for_payout(reference, {"succeeded"})
    wait_until(
        lambda: (
            (found := stored(stack, reference)) is not None and found.status.value == "succeeded"
        ),
        timeout=30,
        what="the payout succeeded in the record store",
    )
    viewer = add_operator(stack, "viewer", language="en")
    with logged_in(stack, viewer) as browser:
        # The page, the store and the API agree (read again until no money moved meanwhile).
        with stack.gateway() as http:
            for _ in range(50):
                before = store_balances(stack)
                table = _balance_table(browser.get("/console/balances"))
                api = http.get("/v1/balances").json()["data"]
                if store_balances(stack) == before:
                    break
            else:
                raise AssertionError("money never stood still for a balance read")
        assert {(b["provider"], b["currency"]): b["expected"] for b in api} == {
            (b.provider, b.currency): b.expected for b in before
        }
        assert set(table) == {(b.provider, b.currency) for b in before}
        assert ("caurisflux", "XOF") in table
        for balance in before:
            row = table[(balance.provider, balance.currency)]
            expected = row.one("td", data_expected=None)
            assert int(expected.attrs["data-expected"]) == balance.expected
            difference = row.one("td", data_difference=None)
            if balance.difference is None:
                assert difference.attrs["data-difference"] == ""
            else:
                assert int(difference.attrs["data-difference"]) == balance.difference
                assert ("warn" in difference.classes()) == (balance.difference != 0)

        # The newest report of a provider: only acme's differences are listed.
        with _report(stack, reference) as _path:
            page = browser.get("/console/balances")
            assert page.status_code == 200, page.text[-3000:]
            document = parse(page.text)
            # Other providers' newest reports (other tests') may list acme's differences too.
            rows = document.one("table", id="report-differences").all(
                "tr", data_provider="caurisflux"
            )
            assert [r.attrs["data-reference"] for r in rows] == [reference]
            assert rows[0].attrs["data-kind"] == "amount_differs"
            rows[0].one("a", href=f"/console/transactions/payout/{reference}")
            assert "amounts differ" in rows[0].text
            assert "GLOBEX-SECRET" not in page.text and "UNKNOWN-PTX" not in page.text
            # The other two of its three differences are counted, not shown.
            assert "difference(s) concern no transaction of yours" in page.text
            report = document.one("table", id="reports").one("tr", data_day="2999-12-31")
            assert report.attrs["data-provider"] == "caurisflux"
            assert [cell.text.strip() for cell in report.all("td")][5] == "3"


class _report:
    """A daily report of CaurisFlux for a far day (the newest while it exists), with a
    difference about acme's ``reference``, one about another merchant's payout and one
    about a transfer momoflow does not know."""

    def __init__(self, stack: Stack, reference: str) -> None:
        folder = Path(stack.env["MOMOFLOW_RECONCILE__REPORTS_DIR"]) / "caurisflux"
        self.path = folder / "caurisflux-2999-12-31.json"
        summary = ReportSummary(
            provider=ProviderName.CAURISFLUX,
            day=datetime(2999, 12, 31).date(),
            mode=ReportMode.STATUS_READS,
            method="test",
            generated_at=datetime.now(UTC),
            momoflow_transactions=3,
            matched=2,
        )
        for mismatch in (
            Mismatch(
                kind=MismatchKind.AMOUNT_DIFFERS,
                workflow_id=payout_workflow_id("acme", reference),
                provider_transaction_id="PTX-ACME",
                momoflow_status="succeeded",
                provider_status="completed",
                momoflow_amount=50_000,
                provider_amount=49_000,
                currency="XOF",
                detail="momoflow 50000 XOF, provider 49000 XOF",
            ),
            Mismatch(
                kind=MismatchKind.PROVIDER_SUCCEEDED_MOMOFLOW_FAILED,
                workflow_id=payout_workflow_id("globex", "GLOBEX-SECRET"),
                provider_transaction_id="PTX-GLOBEX",
                currency="XOF",
            ),
            Mismatch(
                kind=MismatchKind.UNKNOWN_AT_MOMOFLOW,
                provider_transaction_id="UNKNOWN-PTX",
                provider_amount=10_000,
                currency="XOF",
            ),
        ):
            summary.add(mismatch)
        self.body = summary.model_dump_json()

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.body)
        return self.path

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- languages


H1 = re.compile(r"<h1>(.*?)</h1>", re.S)


def test_the_three_pages_render_in_french_and_english(stack: Stack) -> None:
    checker = add_operator(stack, "checker", language="fr")
    viewer = add_operator(stack, "viewer")
    expected = {
        "/console/in-doubt": ("Argent en suspens", "Money in doubt"),
        "/console/balances": ("Soldes", "Balances"),
        "/console/audit": ("Journal d&#39;audit", "Audit trail"),
    }
    with logged_in(stack, checker) as browser:
        for path, (french, english) in expected.items():
            page = browser.get(path)
            assert page.status_code == 200, page.text[-3000:]
            assert H1.findall(page.text) == [french]
            assert '<html lang="fr">' in page.text
            page = browser.get(f"{path}?lang=en")
            assert page.status_code == 200, page.text[-3000:]
            assert H1.findall(page.text) == [english]
            browser.get(f"{path}?lang=fr")
        # Filters and pages of the audit trail.
        assert browser.get("/console/audit?before=x").status_code == 400
        assert browser.get("/console/audit", params={"target": "x" * 301}).status_code == 400
        mine = audit_rows(browser, actor=f"operator:{checker.name}")
        assert mine and all(e["actor"] == f"operator:{checker.name}" for e in mine)
        assert any(e["action"] == "login" for e in mine)
    with logged_in(stack, viewer) as browser:
        assert browser.get("/console/audit").status_code == 403


# --------------------------------------------------------------------------- plumbing


def _tag() -> str:
    return uuid.uuid4().hex[:10]


class _gateway_without_temporal:
    """A second gateway on the stack's record store whose Temporal address answers
    nothing (a closed port)."""

    def __init__(self, stack: Stack) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **stack.env,
            "MOMOFLOW_TEMPORAL__ADDRESS": f"127.0.0.1:{free_port()}",
            "MOMOFLOW_GATEWAY_PORT": str(port),
            "MOMOFLOW_PUBLIC_URL": self.url,
        }
        self.process = ManagedProcess(
            "gateway-no-temporal",
            [sys.executable, "-m", "momoflow.cli", "gateway", "--port", str(port)],
            log_path=stack.root / "logs" / f"gateway-no-temporal-{port}.log",
            env=env,
            ready=http_ready(f"{self.url}/healthz"),
        )

    def __enter__(self) -> str:
        self.process.start(timeout=60)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.process.stop()
