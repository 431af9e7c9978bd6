"""Money in doubt: the merchant's ``reconciling`` transactions, oldest first, and their
resolution by hand.

The queue is read from the record store (:func:`momoflow.console.queries.in_doubt_page`),
so it shows even while Temporal is down. Each row's *provider view* is a live ``state``
query of its workflow (:func:`momoflow.reconciliation.operations.read_state`), bounded in
time; when Temporal does not answer, the row says so and shows the provider status last
recorded.

A resolution goes through the existing audited ``resolve`` update
(:func:`momoflow.reconciliation.operations.resolve`), with the operator's **name** as
``ManualResolution.operator`` (what ``momoflow reconcile resolve --operator NAME`` passes):
the workflow writes ``resolved by <name>: <reason>`` in the timeline, and the record store
names that entry's actor ``operator:<name>``, the operator's audit-trail actor. The audit
event is action ``resolve``, target the transaction's **workflow id** (unique across kinds
and merchants: ``payout-acme-REF``), reason the written reason, detail the kind, the
reference and the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError

from momoflow.console.accounts import Permission, Session
from momoflow.console.queries import InDoubt, in_doubt_count, in_doubt_page
from momoflow.console.web import (
    PREFIX,
    ConsoleError,
    FormDep,
    allowed,
    client_address,
    console_state,
    read,
    render,
    temporal_client,
)
from momoflow.contract import PAYIN_WORKFLOW, PAYOUT_WORKFLOW, REFUND_WORKFLOW
from momoflow.models import ManualResolution, ResolutionOutcome, TransactionStatus
from momoflow.providers.catalog import capabilities_of
from momoflow.reconciliation.operations import ResolveRefused, StateView, read_state, resolve
from momoflow.reconciliation.rules import not_readable_reason
from momoflow.records.writes import Kind

router = APIRouter()
log = logging.getLogger(__name__)

PAGE_SIZE = 50
#: A resolution's reason, once trimmed (the workflow refuses more than 500).
REASON_MIN, REASON_MAX = 5, 500
#: How long a page waits for the provider views of its rows, all together.
VIEW_BUDGET_S = 4.0
#: ``state`` queries in flight at once for one page.
VIEW_CONCURRENCY = 10
#: How long the ``resolve`` update may take before its outcome counts as unknown.
RESOLVE_TIMEOUT_S = 20.0
#: How long a resolution waits for the record store to show it before redirecting.
RECORD_CATCH_UP_S = 3.0

_WORKFLOW_TYPES = {
    Kind.PAYOUT.value: PAYOUT_WORKFLOW,
    Kind.PAYIN.value: PAYIN_WORKFLOW,
    Kind.REFUND.value: REFUND_WORKFLOW,
}
#: Failure codes that put a transaction in doubt and have their own explanation.
_REASONS = frozenset(
    {
        "settlement_unknown",
        "create_outcome_unknown",
        "amount_mismatch",
        "expiry_unconfirmed",
        "success_unconfirmed",
        "refund_outcome_unknown",
    }
)
_OK_FLAGS = {outcome.value for outcome in ResolutionOutcome}

ResolveSession = Annotated[Session, Depends(allowed(Permission.RESOLVE_IN_DOUBT))]
ViewSession = Annotated[Session, Depends(allowed(Permission.VIEW))]


@dataclass(frozen=True)
class ProviderView:
    """What the workflow last heard from the provider (a live ``state`` query)."""

    status: str
    provider_status: str | None
    provider_transaction_id: str | None
    status_polls: int
    updated_at: datetime | None
    last_note: str
    #: ``refund`` or ``id`` when a status read cannot tell anything; None otherwise.
    not_readable: str | None


@dataclass(frozen=True)
class Row:
    """One line of the queue."""

    record: InDoubt
    age: timedelta
    reason_key: str
    reason_params: dict[str, str]
    failure_message: str
    recorded_provider_status: str | None
    view: ProviderView | None


@dataclass(frozen=True)
class FormProblem:
    """A resolution that was not sent, or was refused: which row, and the message."""

    kind: str
    reference: str
    key: str
    params: dict[str, object]
    outcome: str = ""
    reason: str = ""


def age_parts(age: timedelta) -> tuple[str, dict[str, int]]:
    """The catalog key and parameters of a duration (``3 d 4 h``, ``2 h 5 min``…)."""
    seconds = max(0, int(age.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return "doubt.age.days", {"d": days, "h": hours}
    if hours:
        return "doubt.age.hours", {"h": hours, "m": minutes}
    if minutes:
        return "doubt.age.minutes", {"m": minutes}
    return "doubt.age.seconds", {}


def _reason(state: dict[str, Any]) -> tuple[str, dict[str, str], str]:
    failure = state.get("failure") or {}
    code = str(failure.get("code") or "")
    message = str(failure.get("message") or "")
    if not code:
        return "doubt.reason.none", {}, message
    if code in _REASONS:
        return f"doubt.reason.{code}", {}, message
    return "doubt.reason.other", {"code": code}, message


def _not_readable(kind: str, view: StateView) -> str | None:
    provider = view.provider
    why = not_readable_reason(
        workflow_type=_WORKFLOW_TYPES.get(kind, ""),
        provider=provider,
        provider_transaction_id=view.provider_transaction_id,
        status_by_reference=capabilities_of(provider).status_by_reference if provider else False,
    )
    if why is None:
        return None
    return "refund" if kind == Kind.REFUND.value else "id"


def _view(kind: str, state: StateView) -> ProviderView:
    return ProviderView(
        status=state.status.value,
        provider_status=state.provider_status,
        provider_transaction_id=state.provider_transaction_id,
        status_polls=state.status_polls,
        updated_at=state.updated_at,
        last_note=state.timeline[-1].note if state.timeline else "",
        not_readable=_not_readable(kind, state),
    )


async def provider_views(request: Request, records: list[InDoubt]) -> dict[str, ProviderView]:
    """Each record's provider view, read live from its workflow; records whose workflow did
    not answer within :data:`VIEW_BUDGET_S` in all (connecting included), or all of them
    when Temporal cannot be reached, are left out."""
    if not records:
        return {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + VIEW_BUDGET_S
    try:
        client = await asyncio.wait_for(temporal_client(request), timeout=VIEW_BUDGET_S)
    except (ConsoleError, TimeoutError):
        return {}
    budget = max(0.1, deadline - loop.time())
    gate = asyncio.Semaphore(VIEW_CONCURRENCY)

    async def one(record: InDoubt) -> ProviderView:
        async with gate:
            # The query: a worker answers it for a closed workflow too.
            state = await read_state(
                client,
                record.workflow_id,
                status=WorkflowExecutionStatus.RUNNING,
                timeout=budget,
            )
        return _view(record.kind, state)

    tasks = {r.workflow_id: asyncio.ensure_future(one(r)) for r in records}
    done, pending = await asyncio.wait(tasks.values(), timeout=budget)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    views: dict[str, ProviderView] = {}
    for workflow_id, task in tasks.items():
        if task not in done or task.cancelled():
            continue
        error = task.exception()
        if error is None:
            views[workflow_id] = task.result()
        elif not isinstance(error, TimeoutError | TemporalError | ValidationError):
            # Still a page: the row says its provider view is unavailable.
            log.warning("provider view of %s: %r", workflow_id, error)
    return views


async def _rows(request: Request, records: list[InDoubt]) -> list[Row]:
    views = await provider_views(request, records)
    now = datetime.now(UTC)
    rows = []
    for record in records:
        key, params, message = _reason(record.state)
        rows.append(
            Row(
                record=record,
                age=now - record.since,
                reason_key=key,
                reason_params=params,
                failure_message=message,
                recorded_provider_status=record.state.get("provider_status"),
                view=views.get(record.workflow_id),
            )
        )
    return rows


async def _page(
    request: Request,
    session: Session,
    *,
    after: str | None,
    problem: FormProblem | None = None,
    status_code: int = 200,
) -> Response:
    store = console_state(request).store
    merchant = session.operator.merchant
    after_id: int | None = None
    if after:
        if not after.isdigit() or len(after) > 18:
            raise ConsoleError(400, "doubt.error.cursor")
        after_id = int(after)
    try:
        records, more = await read(
            in_doubt_page(store, merchant, limit=PAGE_SIZE, after_id=after_id)
        )
    except LookupError:
        raise ConsoleError(400, "doubt.error.cursor") from None
    total = await read(in_doubt_count(store, merchant))
    rows = await _rows(request, records)
    ok_key, ok_params = await _success(request, session)
    return render(
        request,
        "doubt/list.html",
        {
            "rows": rows,
            "total": total,
            "next_after": records[-1].id if more and records else None,
            "after": after_id,
            "problem": problem,
            "ok_key": ok_key,
            "ok_params": ok_params,
            "age_parts": age_parts,
            "reason_min": REASON_MIN,
            "reason_max": REASON_MAX,
        },
        session=session,
        status_code=status_code,
    )


async def _success(request: Request, session: Session) -> tuple[str | None, dict[str, str]]:
    """The success message of ``?resolved=<outcome>&kind=…&reference=…``: a catalog text;
    the transaction is named only when it is one of the merchant's records (the query's
    own text is never shown)."""
    outcome = request.query_params.get("resolved")
    if outcome not in _OK_FLAGS:
        return None, {}
    kind, reference = request.query_params.get("kind"), request.query_params.get("reference")
    if kind in _WORKFLOW_TYPES and reference and len(reference) <= 128:
        record = await read(
            console_state(request).store.get(Kind(kind), session.operator.merchant, reference)
        )
        if record is not None:
            return f"doubt.ok.{outcome}", {"kind": record.kind.value, "reference": record.reference}
    return f"doubt.ok.{outcome}_any", {}


@router.get("/in-doubt", include_in_schema=False)
async def in_doubt(request: Request, session: ViewSession) -> Response:
    """The merchant's reconciling transactions, oldest first, 50 a page."""
    return await _page(request, session, after=request.query_params.get("after"))


def _check(outcome: str, reason: str) -> tuple[str, dict[str, object]] | None:
    """The catalog key and parameters of what is wrong with a resolution form, or None."""
    if outcome not in _OK_FLAGS:
        return "doubt.error.outcome", {}
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        return "doubt.error.reason_length", {
            "min": REASON_MIN,
            "max": REASON_MAX,
            "length": len(reason),
        }
    if any(unicodedata.category(c) == "Cc" and c not in "\n\r\t" for c in reason):
        return "doubt.error.reason_chars", {}
    return None


async def _caught_up(request: Request, kind: Kind, merchant: str, reference: str) -> None:
    """Wait (briefly) until the record store no longer shows the record reconciling, so
    that the page the operator lands on agrees with what they just did."""
    store = console_state(request).store
    deadline = time.monotonic() + RECORD_CATCH_UP_S
    while time.monotonic() < deadline:
        record = await read(store.get(kind, merchant, reference))
        if record is None or record.status is not TransactionStatus.RECONCILING:
            return
        await asyncio.sleep(0.2)


@router.post("/in-doubt/{kind}/{reference}/resolve", include_in_schema=False)
async def resolve_in_doubt(
    request: Request, kind: str, reference: str, session: ResolveSession, form: FormDep
) -> Response:
    """Resolve one reconciling transaction as paid or failed, with a written reason,
    through the workflow's audited ``resolve`` update."""
    if kind not in _WORKFLOW_TYPES or len(reference) > 128:
        raise ConsoleError(404, "console.error.not_found")
    operator = session.operator
    operators = console_state(request).operators
    record = await read(console_state(request).store.get(Kind(kind), operator.merchant, reference))
    if record is None:
        raise ConsoleError(404, "console.error.not_found")
    raw_outcome, raw_reason = form.get("outcome"), form.get("reason")
    outcome = raw_outcome if isinstance(raw_outcome, str) else ""
    reason = raw_reason.strip() if isinstance(raw_reason, str) else ""
    detail: dict[str, Any] = {"kind": kind, "reference": record.reference, "outcome": outcome}

    async def audit(result: str, *, reason: str = "", **extra: object) -> None:
        await read(
            operators.audit(
                operator.actor,
                "resolve",
                merchant=operator.merchant,
                target=record.workflow_id,
                reason=reason,
                outcome=result,
                detail={**detail, **extra},
                address=client_address(request),
            )
        )

    wrong = _check(outcome, reason)
    if wrong is not None:
        key, params = wrong
        await audit("refused", outcome=outcome[:20], error=key)
        problem = FormProblem(kind, record.reference, key, params, outcome, reason[:REASON_MAX])
        return await _page(request, session, after=None, problem=problem, status_code=400)

    try:
        client = await temporal_client(request)
    except ConsoleError:
        await audit("failed", reason=reason, error="temporal_unavailable")
        raise
    resolution = ManualResolution(
        outcome=ResolutionOutcome(outcome), reason=reason, operator=operator.name
    )
    try:
        state = await asyncio.wait_for(
            resolve(client, record.workflow_id, resolution), timeout=RESOLVE_TIMEOUT_S
        )
    except ResolveRefused as refused:
        why = str(refused)
        await audit("refused", reason=reason, refusal=why)
        problem = FormProblem(
            kind, record.reference, "doubt.error.refused", {"why": why}, outcome, reason
        )
        return await _page(request, session, after=None, problem=problem, status_code=409)
    except (TimeoutError, RPCError, TemporalError) as exc:
        await audit("failed", reason=reason, error=type(exc).__name__)
        raise ConsoleError(503, "doubt.error.outcome_unknown") from None
    await audit("ok", reason=reason, status=str(state.get("status", "")))
    await _caught_up(request, Kind(kind), operator.merchant, record.reference)
    query = urlencode({"resolved": outcome, "kind": kind, "reference": record.reference})
    return RedirectResponse(f"{PREFIX}/in-doubt?{query}", status_code=303)
