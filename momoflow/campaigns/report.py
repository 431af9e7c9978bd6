"""The campaign report: every line of the uploaded file, with what happened to it.

Built from the campaign store (the file, pre-flight's problems, the valid lines and the
recorded outcomes). Lines whose recorded outcome is missing or not final (in flight, or
``reconciling`` and perhaps settled since) are read live from their payout workflow, so the
report is as true as the payouts API.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Awaitable, Callable, Iterator

from momoflow.campaigns.models import (
    SKIPPED,
    CampaignPhase,
    CampaignProgress,
    LineOutcome,
    LineProblem,
    ReportRow,
)
from momoflow.campaigns.parsing import amount_digits, iter_rows
from momoflow.campaigns.store import CampaignStore
from momoflow.ids import payout_workflow_id
from momoflow.masking import mask_phone
from momoflow.models import PayoutState, TransactionStatus
from momoflow.money import Country
from momoflow.phones import normalize_phone

#: Report columns, in order.
REPORT_COLUMNS = tuple(ReportRow.model_fields)
#: Payouts read live at once while building a report.
LIVE_READS = 16

#: Reads a payout's live outcome by workflow id (None when it does not exist).
LiveLookup = Callable[[str], Awaitable[LineOutcome | None]]

_FINAL = {s.value for s in TransactionStatus if s.is_final} | {SKIPPED}


async def build_report(
    store: CampaignStore, progress: CampaignProgress, live: LiveLookup
) -> list[ReportRow]:
    """Every line of the campaign's file, in file order."""
    campaign_id = progress.campaign_id
    data = await asyncio.to_thread(
        store.upload, campaign_id, progress.file_format, progress.file_sha256
    )
    problems: dict[int, list[LineProblem]] = {}
    for problem in await asyncio.to_thread(store.problems, campaign_id):
        problems.setdefault(problem.line, []).append(problem)
    outcomes = await asyncio.to_thread(store.outcomes, campaign_id)
    rows = [
        _row(number, raw, progress, problems.get(number), outcomes)
        for number, raw in iter_rows(data, progress.file_format)
    ]
    stale = [row for row in rows if row.status not in _FINAL and row.status != "invalid"]
    limit = asyncio.Semaphore(LIVE_READS)

    async def refresh(row: ReportRow) -> None:
        async with limit:
            outcome = await live(payout_workflow_id(progress.merchant, row.reference))
        if outcome is not None:
            _apply(row, outcome)
        elif progress.phase.is_final or progress.phase is CampaignPhase.DRAINING:
            row.status = "not_sent"
            row.error_reason = "the campaign ended before this line was sent"

    await asyncio.gather(*(refresh(row) for row in stale))
    return rows


def outcome_from_state(state: PayoutState) -> LineOutcome:
    """A line outcome from a payout's live state."""
    return LineOutcome.from_state(state, at=state.completed_at or state.updated_at)


def report_csv(rows: list[ReportRow]) -> Iterator[str]:
    """The report as CSV text, chunk by chunk (cells that a spreadsheet would run as a
    formula are quoted with a leading apostrophe)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(REPORT_COLUMNS)
    for count, row in enumerate(rows, start=1):
        writer.writerow([formula_safe(getattr(row, column)) for column in REPORT_COLUMNS])
        if count % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _row(
    number: int,
    raw: dict[str, str],
    progress: CampaignProgress,
    problems: list[LineProblem] | None,
    outcomes: dict[str, LineOutcome],
) -> ReportRow:
    reference = raw.get("reference", "").strip()
    amount_text = amount_digits(raw.get("amount"))
    row = ReportRow(
        line=number,
        reference=reference,
        provider=raw.get("provider", "").strip(),
        country=raw.get("country", "").strip().upper(),
        operator=raw.get("operator", "").strip(),
        recipient=mask_phone(normalize_phone(raw.get("phone"), _country(raw))),
        name=raw.get("name", "").strip(),
        amount=int(amount_text) if amount_text.isdigit() else None,
        currency=raw.get("currency", "").strip().upper(),
        status="queued",
    )
    if problems:
        row.status = "invalid"
        row.error_code = ",".join(sorted({p.rule for p in problems}))
        row.error_reason = "; ".join(f"{p.field}: {p.message}" for p in problems)
        return row
    try:
        workflow_id = payout_workflow_id(progress.merchant, reference)
    except ValueError:
        return row
    outcome = outcomes.get(workflow_id)
    if outcome is not None:
        _apply(row, outcome)
    return row


def _country(raw: dict[str, str]) -> Country | None:
    try:
        return Country(raw.get("country", "").strip().upper())
    except ValueError:
        return None


def _apply(row: ReportRow, outcome: LineOutcome) -> None:
    row.provider = outcome.provider.value
    row.status = outcome.status
    row.amount = outcome.amount
    row.currency = outcome.currency.value
    # A quote's fee is on the payout before it is sent; only a paid line was charged it.
    row.fees = outcome.fees if outcome.status == TransactionStatus.SUCCEEDED.value else None
    row.provider_transaction_id = outcome.provider_transaction_id or ""
    row.provider_reference = outcome.provider_reference or ""
    row.error_code = outcome.failure_code or ""
    row.error_reason = outcome.failure_message or ""
    row.provider_amount = outcome.provider_amount


def formula_safe(value: object) -> object:
    """A CSV cell a spreadsheet will not run: text that opens like a formula is quoted with
    a leading apostrophe; None is empty."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
