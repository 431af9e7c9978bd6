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
    BALANCE_SOURCE,
    BalanceLine,
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
from momoflow.records.store import RecordStore, is_unavailable


class ReconcileActivities:
    """Temporal-side work of the sweep and the report (see the module docstring).

    **Parameters:**

    * **client** - the worker's Temporal client.
    * **reports_dir** - where report files go (``MOMOFLOW_RECONCILE__REPORTS_DIR``).
    * **store** - the record store, for the report's balance line (None: no balance line).
    """

    def __init__(
        self, client: Client, *, reports_dir: Path, store: RecordStore | None = None
    ) -> None:
        self._client = client
        self._reports_dir = reports_dir
        self._store = store

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
        """Write ``<provider>/<provider>-<day>.json`` (summary, balance line and
        mismatches) and ``.csv`` (mismatches); returns their paths. Rewriting the same day
        replaces both. The provider's balances the report read, if any, are recorded in
        the record store first (:meth:`balance_lines`)."""
        summary = request.summary
        folder = self._reports_dir / summary.provider.value
        stem = f"{summary.provider.value}-{summary.day.isoformat()}"
        json_path, csv_path = folder / f"{stem}.json", folder / f"{stem}.csv"
        paths = [str(json_path.resolve()), str(csv_path.resolve())]
        balances, note = await self.balance_lines(request)
        body = summary.model_copy(
            update={"files": paths, "balances": balances, "balance_note": note}
        ).model_dump_json(indent=2)
        _write_atomically(json_path, body)
        _write_atomically(csv_path, mismatches_csv(summary))
        activity.logger.info(
            "reconciliation report %s written: %d mismatch(es)", stem, summary.total_mismatches
        )
        return paths

    async def balance_lines(self, request: WriteReportInput) -> tuple[list[BalanceLine], str]:
        """The report's balance line, one per currency of its provider, and a note when it
        is missing or not the report's own reading.

        The balances in ``request`` (read from the provider by the report) are recorded
        first, as reported at ``balances_read_at`` (else when the report was generated):
        a retried write records nothing twice. An unreachable record store leaves the
        report without its balance line (the note says so) rather than holding the
        report back; any other error fails the activity."""
        summary = request.summary
        provider = summary.provider.value
        if self._store is None:
            return [], "no record store: no balance line"
        at = request.balances_read_at or summary.generated_at
        try:
            for reading in request.provider_balances or []:
                await self._store.report_balance(
                    provider,
                    reading.currency.value,
                    reading.balance,
                    at=at,
                    source=BALANCE_SOURCE,
                )
            accounts = [b for b in await self._store.balances() if b.provider == provider]
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            activity.logger.warning(
                "report %s %s: record store unavailable, no balance line (%s)",
                provider,
                summary.day,
                type(exc).__name__,
            )
            return [], f"the record store could not be reached ({type(exc).__name__})"
        lines = [
            BalanceLine(
                currency=account.currency,
                expected=account.expected,
                reported=account.reported,
                reported_at=account.reported_at,
                source=account.source,
                difference=account.difference,
            )
            for account in accounts
        ]
        if request.balance_error is not None:
            note = f"the provider's balance could not be read: {request.balance_error}"
        elif request.provider_balances is None:
            note = "this report did not read the provider's balance: the last one recorded shows"
        else:
            note = ""
        return lines, note

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
