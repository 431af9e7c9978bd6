"""Activities of the reconciliation sweep and the daily report.

Two classes, for two kinds of task queue:

* :class:`ReconcileActivities` talks to Temporal (visibility, ``state`` queries, the
  ``recheck`` signal) and writes report files. It runs on the workflows task queue, which
  has no provider rate limit.
* :class:`ReportProviderActivities` reads a provider for the report (one list page, or one
  transaction's status, per activity). It runs on that provider's queue, so the Temporal
  server counts every report request against the provider's plan, with the live traffic.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client

from activities.providers import ProviderActivities, to_application_error
from momoflow.models import (
    ListTransactionsInput,
    StatusLookup,
    TransactionListPage,
)
from momoflow.providers.catalog import capabilities_of
from momoflow.providers.errors import ProviderError, ProviderRejected, ProviderUnavailable
from momoflow.reconciliation import operations as reconcile
from momoflow.reconciliation.rules import (
    FindReconcilingInput,
    FoundReconciling,
    OutcomePage,
    OutcomePageInput,
    ReadVerdict,
    RecheckInput,
    ReportRead,
    ReportReadInput,
    SweepItem,
    WriteReportInput,
    mismatches_csv,
)


class ReconcileActivities:
    """Temporal-side work of the sweep and the report (see the module docstring).

    **Parameters:**

    * **client** - the worker's Temporal client.
    * **reports_dir** - where report files go (``MOMOFLOW_RECONCILE__REPORTS_DIR``).
    """

    def __init__(self, client: Client, *, reports_dir: Path) -> None:
        self._client = client
        self._reports_dir = reports_dir

    @activity.defn(name="find_reconciling")
    async def find_reconciling(self, request: FindReconcilingInput) -> FoundReconciling:
        """The deployment's reconciling transactions (bounded), each with its state."""
        return await reconcile.find_reconciling(self._client, request)

    @activity.defn(name="recheck_transactions")
    async def recheck_transactions(self, request: RecheckInput) -> list[SweepItem]:
        """Ask each transaction to read its status now; wait for the reads (heartbeats)."""
        return await reconcile.recheck_and_wait(self._client, request, heartbeat=activity.heartbeat)

    @activity.defn(name="list_momoflow_outcomes")
    async def list_momoflow_outcomes(self, request: OutcomePageInput) -> OutcomePage:
        """One page of momoflow's transactions at a provider (visibility only)."""
        return await reconcile.outcome_page(self._client, request)

    @activity.defn(name="write_reconciliation_report")
    async def write_report(self, request: WriteReportInput) -> list[str]:
        """Write ``<provider>/<provider>-<day>.json`` (summary and mismatches) and ``.csv``
        (mismatches); returns their paths. Rewriting the same day replaces both."""
        summary = request.summary
        folder = self._reports_dir / summary.provider.value
        stem = f"{summary.provider.value}-{summary.day.isoformat()}"
        json_path, csv_path = folder / f"{stem}.json", folder / f"{stem}.csv"
        paths = [str(json_path.resolve()), str(csv_path.resolve())]
        body = summary.model_copy(update={"files": paths}).model_dump_json(indent=2)
        _write_atomically(json_path, body)
        _write_atomically(csv_path, mismatches_csv(summary))
        activity.logger.info(
            "reconciliation report %s written: %d mismatch(es)", stem, summary.total_mismatches
        )
        return paths

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for a worker's registration."""
        return [
            self.find_reconciling,
            self.recheck_transactions,
            self.list_momoflow_outcomes,
            self.write_report,
        ]


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ReportProviderActivities(ProviderActivities):
    """The report's provider reads, one request per activity (see the module docstring);
    the same adapters as :class:`ProviderActivities`, registered beside them."""

    @activity.defn(name="list_provider_transactions")
    async def list_provider_transactions(
        self, request: ListTransactionsInput
    ) -> TransactionListPage:
        """One page of the provider's transaction list."""
        try:
            return await self._provider(request.provider).list_transactions(request)
        except ProviderError as exc:
            raise to_application_error(exc) from None

    @activity.defn(name="read_status_for_report")
    async def read_status_for_report(self, request: ReportReadInput) -> ReportRead:
        """One momoflow transaction's status at its provider: found, not found (the
        provider answered 404), or unchecked (nothing can be read, and why)."""
        outcome, provider = request.outcome, request.provider
        if outcome.kind == "refund":
            return ReportRead(verdict=ReadVerdict.UNCHECKED, detail="no refund status endpoint")
        if outcome.provider_transaction_id is None and not (
            capabilities_of(provider).status_by_reference
        ):
            return ReportRead(
                verdict=ReadVerdict.UNCHECKED,
                detail="no provider id (never accepted, or the create answer was lost)",
            )
        lookup = StatusLookup(
            provider=provider,
            provider_transaction_id=outcome.provider_transaction_id,
            external_reference=outcome.workflow_id,
            since=outcome.started_at,
        )
        adapter = self._provider(provider)
        try:
            if outcome.kind == "payout":
                transaction = await adapter.payout_status(lookup)
            else:
                transaction = await adapter.payin_status(lookup)
        except ProviderUnavailable as exc:
            if exc.http_status == 404:
                return ReportRead(verdict=ReadVerdict.NOT_FOUND, detail=exc.message)
            raise to_application_error(exc) from None
        except ProviderRejected as exc:
            return ReportRead(verdict=ReadVerdict.UNCHECKED, detail=f"refused: {exc.message}")
        except ProviderError as exc:
            raise to_application_error(exc) from None
        return ReportRead(verdict=ReadVerdict.FOUND, transaction=transaction)

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for a worker's registration."""
        return [self.list_provider_transactions, self.read_status_for_report]
