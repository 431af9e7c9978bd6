"""Balances: momoflow's accounts at each provider, expected (the journal) beside reported,
and the differences of the latest daily reconciliation report.

The balances are the deployment's provider floats, shared by every merchant: every
operator sees them. The report is read from the files the daily report writes
(``<reports_dir>/<provider>/<provider>-<day>.json``, see ``activities/reconcile.py``): the
newest day of each provider. Of its differences, only those about the operator's merchant's
transactions are listed; the others are counted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from momoflow.console.accounts import Permission, Session
from momoflow.console.i18n import catalog
from momoflow.console.queries import merchant_workflows
from momoflow.console.web import allowed, console_state, read, render
from momoflow.models import ProviderName
from momoflow.reconciliation.rules import Mismatch, ReportSummary

router = APIRouter()

ViewSession = Annotated[Session, Depends(allowed(Permission.VIEW))]


@dataclass(frozen=True)
class Difference:
    """One difference of a report, about one of the merchant's transactions."""

    provider: str
    day: date
    mismatch: Mismatch
    #: The catalog key of its kind (None for a kind this console does not know yet).
    kind_key: str | None
    #: The transaction (kind, reference) of the merchant it is about.
    transaction: tuple[str, str]


@dataclass(frozen=True)
class LatestReports:
    """Each provider's newest report, and the providers whose newest could not be read."""

    reports: list[ReportSummary]
    unreadable: list[str]


def _day_of(path: Path, provider: ProviderName) -> date | None:
    try:
        return date.fromisoformat(path.stem.removeprefix(f"{provider.value}-"))
    except ValueError:
        return None


def latest_reports(folder: Path) -> LatestReports:
    """The newest report file of each provider under ``folder`` (blocking: file reads)."""
    reports: list[ReportSummary] = []
    unreadable: list[str] = []
    for provider in ProviderName:
        directory = folder / provider.value
        if not directory.is_dir():
            continue
        dated = [
            (day, path)
            for path in directory.glob(f"{provider.value}-*.json")
            if (day := _day_of(path, provider)) is not None
        ]
        if not dated:
            continue
        _, newest = max(dated)
        try:
            reports.append(ReportSummary.model_validate_json(newest.read_bytes()))
        except (OSError, ValidationError):
            unreadable.append(provider.value)
    return LatestReports(reports=reports, unreadable=unreadable)


@router.get("/balances", include_in_schema=False)
async def balances(request: Request, session: ViewSession) -> Response:
    """Expected and reported balances per provider and currency, and the latest report's
    differences about this merchant's transactions."""
    state = console_state(request)
    store = state.store
    accounts = await read(store.balances())
    latest = await asyncio.to_thread(latest_reports, state.settings.reports_dir())
    mismatches = [(report, mismatch) for report in latest.reports for mismatch in report.mismatches]
    ids = [m.workflow_id for _, m in mismatches if m.workflow_id]
    mine = await read(merchant_workflows(store, session.operator.merchant, ids))
    known = catalog()
    differences: list[Difference] = []
    for report, mismatch in mismatches:
        transaction = mine.get(mismatch.workflow_id) if mismatch.workflow_id else None
        if transaction is None:
            continue
        key = f"balances.mismatch.{mismatch.kind.value}"
        differences.append(
            Difference(
                provider=report.provider.value,
                day=report.day,
                mismatch=mismatch,
                kind_key=key if key in known else None,
                transaction=transaction,
            )
        )
    total = sum(report.total_mismatches for report in latest.reports)
    return render(
        request,
        "balances/page.html",
        {
            "accounts": accounts,
            "reports": latest.reports,
            "unreadable": latest.unreadable,
            "differences": differences,
            "hidden": max(0, total - len(differences)),
        },
        session=session,
    )
