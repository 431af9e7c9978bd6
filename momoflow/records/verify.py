"""``momoflow records verify``: compare the record store with Temporal and repair any lag.

Workflows write their records themselves (``activities/records.py``), and a write that
fails while PostgreSQL is down is retried until it is back. What can still lag:

* a record whose workflow moved on while the database was down, and whose write has not
  landed yet (the workflow's own retry will land it too; verify does not wait);
* a transaction whose workflow started before the record store existed (no writes at all);
* a claim whose workflow never started (the caller was told nothing started): removed once
  it is older than :data:`ORPHAN_AGE`.

Every repair goes through :meth:`RecordStore.repair`, which applies a state only when it is
newer than the record: verify can run at any time, as often as wanted, beside running
workflows.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from momoflow import search_attributes as sa
from momoflow.contract import (
    FINGERPRINT_MEMO,
    PAYIN_WORKFLOW,
    PAYOUT_WORKFLOW,
    REFUND_WORKFLOW,
    STATE_QUERY,
)
from momoflow.ids import campaign_reference
from momoflow.models import TransactionState
from momoflow.records.store import RecordStore, StoredRecord
from momoflow.records.writes import STATE_TYPES, Kind

__all__ = ["ORPHAN_AGE", "VerifyReport", "verify"]

#: A claim older than this whose workflow does not exist is removed.
ORPHAN_AGE = timedelta(minutes=10)
#: How long one ``state`` query may take.
QUERY_TIMEOUT_S = 5.0

_KINDS = {PAYOUT_WORKFLOW: Kind.PAYOUT, PAYIN_WORKFLOW: Kind.PAYIN, REFUND_WORKFLOW: Kind.REFUND}


@dataclass
class VerifyReport:
    """What one verification found and did."""

    checked_records: int = 0
    #: Workflows read from Temporal's visibility (each looked up in the store).
    checked_workflows: int = 0
    #: Records brought up to their workflow's state.
    repaired: list[str] = field(default_factory=list)
    #: Workflows that had no record, now recorded.
    created: list[str] = field(default_factory=list)
    #: Claims whose workflow never started, removed.
    orphans_removed: list[str] = field(default_factory=list)
    #: Records not final whose workflow Temporal no longer has (retention, or deleted):
    #: an operator must settle them with the provider.
    unverifiable: list[str] = field(default_factory=list)
    #: Workflows that did not answer (no worker): run verify again later.
    unanswered: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        """True when nothing was left unverified."""
        return not self.unverifiable and not self.unanswered


async def verify(
    client: Client,
    store: RecordStore,
    *,
    since: datetime | None,
    page_size: int = 500,
    concurrency: int = 10,
    now: datetime | None = None,
) -> VerifyReport:
    """Check every record not final or changed since ``since`` against its workflow, and
    every transaction workflow started since ``since`` against its record; repair lag.
    Records are read ``page_size`` at a time; workflows without a record are collected from
    Temporal's visibility first (their ids only)."""
    report = VerifyReport()
    now = now or datetime.now(UTC)
    gate = asyncio.Semaphore(concurrency)

    async def check_record(record: StoredRecord) -> None:
        async with gate:
            await _check_record(client, store, record, report, now)

    after_id = 0
    while True:
        # Page by page: a store of years is never held in memory at once.
        records = await store.records_since(since, after_id=after_id, limit=page_size)
        if not records:
            break
        await asyncio.gather(*(check_record(r) for r in records))
        report.checked_records += len(records)
        after_id = records[-1].id

    query = f"WorkflowType IN ('{PAYOUT_WORKFLOW}', '{PAYIN_WORKFLOW}', '{REFUND_WORKFLOW}')"
    if since is not None:
        query += f" AND StartTime >= '{since.astimezone(UTC).isoformat()}'"

    async def check_workflow(workflow_id: str, workflow_type: str) -> None:
        async with gate:
            if await _repair_from_workflow(client, store, workflow_id, _KINDS[workflow_type]):
                report.created.append(workflow_id)
            else:
                report.unanswered.append(workflow_id)

    async def check_batch(batch: list[tuple[str, str]]) -> None:
        recorded = await store.recorded_workflow_ids([w for w, _ in batch])
        missing = [(w, t) for w, t in batch if w not in recorded]
        await asyncio.gather(*(check_workflow(w, t) for w, t in missing))
        report.checked_workflows += len(batch)

    # Temporal's visibility holds only what its retention keeps: batch by batch.
    batch: list[tuple[str, str]] = []
    async for execution in client.list_workflows(query):
        batch.append((execution.id, execution.workflow_type))
        if len(batch) >= page_size:
            await check_batch(batch)
            batch = []
    if batch:
        await check_batch(batch)
    for names in (
        report.repaired,
        report.created,
        report.orphans_removed,
        report.unverifiable,
        report.unanswered,
    ):
        names.sort()
    return report


async def _check_record(
    client: Client, store: RecordStore, record: StoredRecord, report: VerifyReport, now: datetime
) -> None:
    handle = client.get_workflow_handle(record.workflow_id)
    try:
        await handle.describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            report.unanswered.append(record.workflow_id)
            return
        if not record.started:
            if now - record.created_at > ORPHAN_AGE and await store.forget_unstarted(record.id):
                report.orphans_removed.append(record.workflow_id)
            return
        if not record.status.is_final:
            report.unverifiable.append(record.workflow_id)
        return
    state = await _workflow_state(client, record.workflow_id, record.kind)
    if state is None:
        report.unanswered.append(record.workflow_id)
        return
    if await store.repair(
        record.kind, state, fingerprint=record.fingerprint, campaign=record.campaign
    ):
        report.repaired.append(record.workflow_id)


async def _repair_from_workflow(
    client: Client, store: RecordStore, workflow_id: str, kind: Kind
) -> bool:
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError:
        return False
    fingerprint = await description.memo_value(FINGERPRINT_MEMO, "")
    campaign_id = description.typed_search_attributes.get(sa.CAMPAIGN)
    state = await _workflow_state(client, workflow_id, kind)
    if state is None:
        return False
    campaign = campaign_reference(state.merchant, campaign_id) if campaign_id else None
    await store.repair(kind, state, fingerprint=str(fingerprint), campaign=campaign)
    return True


async def _workflow_state(client: Client, workflow_id: str, kind: Kind) -> TransactionState | None:
    state_type = STATE_TYPES[kind]
    handle = client.get_workflow_handle(workflow_id, result_type=state_type)
    try:
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.COMPLETED:
            result: TransactionState = await handle.result()
            return result
        if description.status != WorkflowExecutionStatus.RUNNING:
            return None
        return await asyncio.wait_for(
            handle.query(STATE_QUERY, result_type=state_type), timeout=QUERY_TIMEOUT_S
        )
    except (RPCError, TimeoutError):
        return None
