"""Campaigns: the merchant's campaigns, upload, pre-flight, four-eyes approval, live
progress, pause/resume/cancel and the report.

Everything goes through :mod:`momoflow.operations.campaigns`, the code behind the business
API's ``/v1/campaigns``: the console never talks to a campaign workflow any other way.

Four-eyes: the operator who uploaded a campaign never approves it. The page refuses it
(403, a ``refused`` line in the audit trail) before sending anything, and the campaign
workflow's ``approve`` validator refuses it again, whoever sends the update.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.datastructures import FormData, UploadFile
from temporalio.client import Client
from temporalio.service import RPCError

from momoflow import search_attributes as sa
from momoflow.campaigns.models import (
    CampaignPhase,
    CampaignProgress,
    LineProblem,
    Preflight,
)
from momoflow.campaigns.parsing import detect_format
from momoflow.campaigns.report import report_csv
from momoflow.console.accounts import Permission, Session
from momoflow.console.i18n import catalog
from momoflow.console.web import (
    PREFIX,
    ConsoleError,
    FormDep,
    SessionDep,
    allowed,
    client_address,
    console_state,
    read,
    render,
    temporal_client,
    wants_fragment,
)
from momoflow.gateway.campaigns import campaign_store
from momoflow.ids import is_valid_reference
from momoflow.operations import campaigns as operations
from momoflow.operations.campaigns import (
    CampaignFileRejected,
    CampaignFileTooLarge,
    CampaignStateRefused,
    NotFound,
    PreflightSlotsBusy,
    PreflightSlotsUnavailable,
    StateUnavailable,
)
from momoflow.operations.starting import ReferenceInUse, RequestProblems

log = logging.getLogger("momoflow.console")

router = APIRouter()

T = TypeVar("T")

#: Campaigns per page of the list.
PAGE_SIZE = 25
#: Workflow runs listed at most to order the merchant's campaigns (continued-as-new runs
#: included: a campaign's first run says when it was submitted).
LISTED_RUNS = 5_000
#: Progress reads at once for a page of the list, and how long each may take.
LIST_READS = 8
LIST_READ_TIMEOUT_S = 3.0
#: Longest reason kept with a control action.
REASON_MAX = 500
#: Longest campaign name (as the business API).
NAME_MAX = 100
#: ``?done=`` of the page after a successful action: the catalog text shown.
DONE = {
    "approved": "campaigns.done.approved",
    "paused": "campaigns.done.paused",
    "resumed": "campaigns.done.resumed",
    "cancelled": "campaigns.done.cancelled",
}
#: Phases in which a campaign can still be cancelled from the page.
CANCELLABLE = frozenset(
    {
        CampaignPhase.PREFLIGHT,
        CampaignPhase.AWAITING_APPROVAL,
        CampaignPhase.RUNNING,
        CampaignPhase.PAUSED,
        CampaignPhase.BLOCKED,
    }
)

# ---------------------------------------------------------------------- helpers


async def _temporal(call: Awaitable[T]) -> T:
    """Await a campaign read or update: no such campaign is a 404 page, Temporal or a
    worker not answering a 503 page."""
    try:
        return await call
    except NotFound:
        raise ConsoleError(404, "console.error.not_found") from None
    except StateUnavailable:
        raise ConsoleError(503, "campaigns.error.no_worker") from None
    except RPCError:
        raise ConsoleError(503, "console.error.temporal_unavailable") from None
    except HTTPException:
        raise ConsoleError(503, "console.error.temporal_unavailable") from None


async def _audit(
    request: Request,
    session: Session,
    action: str,
    *,
    target: str,
    reason: str = "",
    outcome: str = "ok",
    detail: Mapping[str, Any] | None = None,
) -> None:
    operator = session.operator
    await read(
        console_state(request).operators.audit(
            operator.actor,
            action,
            merchant=operator.merchant,
            target=target,
            reason=reason,
            outcome=outcome,
            detail=detail,
            address=client_address(request),
        )
    )


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _checked(form: FormData, name: str) -> bool:
    return _text(form, name).lower() in ("1", "on", "true", "yes")


def _campaign_path(reference: str) -> str:
    return f"{PREFIX}/campaigns/{quote(reference, safe='')}"


def _check_path_reference(reference: str) -> None:
    if not is_valid_reference(reference):
        raise ConsoleError(404, "console.error.not_found")


@dataclass(frozen=True)
class Message:
    """A catalog text shown on a page (an error or a confirmation)."""

    key: str
    params: Mapping[str, object]


def _message(key: str, **params: object) -> Message:
    return Message(key, params)


def _status_keys() -> frozenset[str]:
    return frozenset(k for k in catalog() if k.startswith("campaigns.status."))


def _duration(seconds: int | None) -> Message | None:
    """An ETA as a catalog text."""
    if seconds is None:
        return None
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _message("campaigns.duration.hours", h=hours, m=minutes)
    if minutes:
        return _message("campaigns.duration.minutes", m=minutes, s=secs)
    return _message("campaigns.duration.seconds", s=secs)


def _progress_context(progress: CampaignProgress) -> dict[str, Any]:
    phase = progress.phase
    final = phase.is_final
    currencies = sorted(
        {c for count in progress.by_status.values() for c in count.by_currency} | set(progress.paid)
    )
    return {
        "progress": progress,
        "final": final,
        "refresh_url": f"{_campaign_path(progress.reference)}/progress",
        "eta": None if final else _duration(progress.eta_s),
        "currencies": currencies,
        "status_keys": _status_keys(),
        "statuses": sorted(progress.by_status.items()),
    }


# ---------------------------------------------------------------------- the list


@dataclass
class _Row:
    reference: str
    campaign_id: str
    phase: str
    first_start: datetime | None
    progress: CampaignProgress | None = None


async def _merchant_campaigns(client: Client, merchant: str) -> list[_Row]:
    """The merchant's campaigns from Temporal's visibility, newest submission first."""
    query = f'{sa.DIRECTION.name} = "campaign" AND {sa.MERCHANT.name} = "{merchant}"'
    rows: dict[str, _Row] = {}
    latest: dict[str, datetime | None] = {}
    async for execution in client.list_workflows(query, limit=LISTED_RUNS):
        attributes = execution.typed_search_attributes
        reference = attributes.get(sa.REFERENCE) or ""
        if attributes.get(sa.MERCHANT) != merchant or not reference:
            continue
        phase = attributes.get(sa.STATUS) or ""
        row = rows.get(execution.id)
        started = execution.start_time
        if row is None:
            rows[execution.id] = _Row(reference, execution.id, phase, started)
            latest[execution.id] = started
            continue
        if started is not None and (row.first_start is None or started < row.first_start):
            row.first_start = started
        newest = latest[execution.id]
        if started is not None and (newest is None or started > newest):
            latest[execution.id] = started
            row.phase = phase
    return sorted(
        rows.values(),
        key=lambda r: (r.first_start.timestamp() if r.first_start else 0.0, r.reference),
        reverse=True,
    )


async def _fill_progress(client: Client, merchant: str, rows: list[_Row]) -> None:
    gate = asyncio.Semaphore(LIST_READS)

    async def fill(row: _Row) -> None:
        async with gate:
            try:
                row.progress = await operations.campaign_progress(
                    client, merchant, row.reference, timeout=LIST_READ_TIMEOUT_S
                )
            except (operations.CampaignError, RPCError) as exc:
                log.info("campaign %s: no progress for the list (%s)", row.campaign_id, exc)

    await asyncio.gather(*(fill(row) for row in rows))


async def _list_page(
    request: Request,
    session: Session,
    *,
    page: int = 1,
    status_code: int = 200,
    upload: Mapping[str, Any] | None = None,
) -> Response:
    merchant = session.operator.merchant
    client = await temporal_client(request)
    try:
        campaigns = await _merchant_campaigns(client, merchant)
    except RPCError:
        raise ConsoleError(503, "console.error.temporal_unavailable") from None
    start = (page - 1) * PAGE_SIZE
    rows = campaigns[start : start + PAGE_SIZE]
    await _fill_progress(client, merchant, rows)
    return render(
        request,
        "campaigns/list.html",
        {
            "rows": rows,
            "page": page,
            "has_next": len(campaigns) > start + PAGE_SIZE,
            "status_keys": _status_keys(),
            "max_upload_bytes": request.app.state.settings.campaigns.max_upload_bytes,
            "upload": {
                "reference": "",
                "name": "",
                "error": None,
                "problems": [],
                **(upload or {}),
            },
        },
        session=session,
        status_code=status_code,
    )


@router.get("/campaigns", include_in_schema=False)
async def campaigns_list(
    request: Request,
    session: Annotated[Session, Depends(allowed(Permission.VIEW))],
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
) -> Response:
    """The merchant's campaigns, newest first, and the upload form."""
    return await _list_page(request, session, page=page)


async def _upload_size(request: Request) -> None:
    """A 413 before the form is read when the request says it is too large (the file is
    measured again once read)."""
    limit: int = request.app.state.settings.campaigns.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise ConsoleError(413, "campaigns.error.too_large", limit=limit)


@router.post("/campaigns", include_in_schema=False)
async def campaigns_upload(
    request: Request,
    session: Annotated[Session, Depends(allowed(Permission.UPLOAD_CAMPAIGN))],
    _size: Annotated[None, Depends(_upload_size)],
    form: FormDep,
) -> Response:
    """Upload a campaign file: pre-flight starts at once; nothing is paid before another
    operator approves it."""
    try:
        return await _upload(request, session, form)
    finally:
        await form.close()


async def _upload(request: Request, session: Session, form: FormData) -> Response:
    operator = session.operator
    settings = request.app.state.settings
    reference = _text(form, "reference")
    name = _text(form, "name")
    upload = form.get("file")
    values = {"reference": reference, "name": name}
    problems: list[LineProblem] = []
    if not reference:
        problems.append(LineProblem(line=0, field="reference", rule="required", message=""))
    elif not is_valid_reference(reference):
        problems.append(LineProblem(line=0, field="reference", rule="pattern", message=""))
    if len(name) > NAME_MAX:
        problems.append(LineProblem(line=0, field="name", rule="max_length", message=""))
    file_format = None
    if not isinstance(upload, UploadFile) or not upload.filename:
        problems.append(LineProblem(line=0, field="file", rule="required", message=""))
    else:
        file_format = detect_format(upload.content_type, upload.filename)
        if file_format is None:
            # A browser may send a CSV as application/vnd.ms-excel: the name decides then.
            file_format = detect_format(None, upload.filename)
        if file_format is None:
            problems.append(LineProblem(line=0, field="file", rule="format", message=""))
    target = reference[:100]

    async def refuse(
        status_code: int, error: Message | None, retry_after: int | None = None, **detail: Any
    ) -> Response:
        await _audit(
            request,
            session,
            "upload_campaign",
            target=target,
            outcome="refused",
            detail={"name": name, **detail},
        )
        page = await _list_page(
            request,
            session,
            status_code=status_code,
            upload={**values, "error": error, "problems": problems},
        )
        if retry_after is not None:
            page.headers["Retry-After"] = str(retry_after)
        return page

    if problems or file_format is None or not isinstance(upload, UploadFile):
        return await refuse(
            422,
            _message("campaigns.upload.invalid"),
            problems=[f"{p.field}: {p.rule}" for p in problems],
        )
    limit = settings.campaigns.max_upload_bytes
    if upload.size is not None and upload.size > limit:
        return await refuse(
            413, _message("campaigns.error.too_large", limit=limit), size=upload.size
        )
    data = await upload.read()
    client = await temporal_client(request)
    try:
        submission = await operations.submit_campaign_file(
            client,
            settings=settings,
            store=campaign_store(request),
            slots=request.app.state.merchant_limits,
            merchant=operator.merchant,
            reference=reference,
            name=name,
            file_format=file_format,
            data=data,
            submitted_by=operator.actor,
            options=operations.campaign_options(settings),
        )
    except RequestProblems as exc:
        problems.extend(
            LineProblem(line=0, field=p.field, rule=p.rule, message=p.message) for p in exc.problems
        )
        return await refuse(422, _message("campaigns.upload.invalid"))
    except CampaignFileTooLarge as exc:
        return await refuse(413, _message("campaigns.error.too_large", limit=exc.limit))
    except CampaignFileRejected as exc:
        problems.extend(exc.problems)
        return await refuse(
            422,
            _message("campaigns.upload.rejected", count=len(exc.problems)),
            problems=[f"{p.field}: {p.rule}" for p in exc.problems],
        )
    except PreflightSlotsBusy as exc:
        return await refuse(
            429,
            _message(
                "campaigns.error.preflights_busy",
                count=len(exc.holders),
                retry_after=exc.retry_after_s,
            ),
            retry_after=exc.retry_after_s,
            holders=exc.holders,
        )
    except PreflightSlotsUnavailable:
        return await refuse(503, _message("campaigns.error.limits_unavailable"), retry_after=5)
    except ReferenceInUse:
        return await refuse(409, _message("campaigns.error.reference_in_use"))
    except RPCError:
        raise ConsoleError(503, "console.error.temporal_unavailable") from None
    await _audit(
        request,
        session,
        "upload_campaign",
        target=reference,
        detail={
            "name": name,
            "lines": submission.lines,
            "file_format": file_format.value,
            "file_sha256": submission.campaign.file_sha256,
            "created": submission.created,
        },
    )
    return RedirectResponse(_campaign_path(reference), status_code=303)


# ---------------------------------------------------------------------- one campaign


async def _campaign_page(
    request: Request,
    session: Session,
    reference: str,
    *,
    status_code: int = 200,
    error: Message | None = None,
    done: str | None = None,
    progress: CampaignProgress | None = None,
) -> Response:
    _check_path_reference(reference)
    merchant = session.operator.merchant
    if progress is None:
        client = await temporal_client(request)
        progress = await _temporal(operations.campaign_progress(client, merchant, reference))
    store = campaign_store(request)
    stored_preflight, problems = await asyncio.gather(
        asyncio.to_thread(store.preflight, progress.campaign_id),
        asyncio.to_thread(store.problems, progress.campaign_id),
    )
    preflight: Preflight | None = progress.preflight or stored_preflight
    operator = session.operator
    phase = progress.phase
    own = bool(progress.submitted_by) and (progress.submitted_by.lower() == operator.actor.lower())
    return render(
        request,
        "campaigns/detail.html",
        {
            **_progress_context(progress),
            "reference": reference,
            "preflight": preflight,
            "problems": problems,
            "error": error,
            "done": _message(DONE[done]) if done in DONE else None,
            "own_campaign": own,
            # The uploader sees the form too: the page says, and the server enforces, that
            # another operator must approve.
            "can_approve": (operator.can(Permission.APPROVE_CAMPAIGN) or own)
            and phase is CampaignPhase.AWAITING_APPROVAL,
            "can_pause": operator.can(Permission.CONTROL_CAMPAIGN)
            and phase is CampaignPhase.RUNNING,
            "can_resume": operator.can(Permission.CONTROL_CAMPAIGN)
            and (phase is CampaignPhase.PAUSED or bool(progress.paused_providers))
            and not phase.is_final,
            "can_cancel": operator.can(Permission.CONTROL_CAMPAIGN) and phase in CANCELLABLE,
            "reason_max": REASON_MAX,
        },
        session=session,
        status_code=status_code,
    )


@router.get("/campaigns/{reference}", include_in_schema=False)
async def campaign_detail(
    request: Request,
    reference: str,
    session: Annotated[Session, Depends(allowed(Permission.VIEW))],
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """A campaign: pre-flight's verdict, every problem of every line, approval, live
    progress, control and the report."""
    return await _campaign_page(request, session, reference, done=done)


@router.get("/campaigns/{reference}/progress", include_in_schema=False)
async def campaign_progress_fragment(
    request: Request,
    reference: str,
    session: Annotated[Session, Depends(allowed(Permission.VIEW))],
) -> Response:
    """The live progress: the fragment the page's script refreshes every 2 s (a page of
    its own when asked without the script)."""
    _check_path_reference(reference)
    client = await temporal_client(request)
    progress = await _temporal(
        operations.campaign_progress(client, session.operator.merchant, reference)
    )
    template = "campaigns/_progress.html" if wants_fragment(request) else "campaigns/progress.html"
    return render(
        request,
        template,
        {**_progress_context(progress), "reference": reference},
        session=session,
    )


@router.get("/campaigns/{reference}/report.csv", include_in_schema=False)
async def campaign_report(
    request: Request,
    reference: str,
    session: Annotated[Session, Depends(allowed(Permission.EXPORT))],
) -> Response:
    """The campaign report: every line of the file, its status, provider ids, fees, error
    (the business API's report)."""
    _check_path_reference(reference)
    client = await temporal_client(request)
    merchant = session.operator.merchant
    progress = await _temporal(operations.campaign_progress(client, merchant, reference))
    rows = await _temporal(operations.campaign_report(client, campaign_store(request), progress))
    await _audit(request, session, "download_report", target=reference, detail={"rows": len(rows)})
    return StreamingResponse(
        report_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="campaign-{reference}.csv"'},
    )


# ---------------------------------------------------------------------- actions


async def _refused(
    request: Request,
    session: Session,
    reference: str,
    action: str,
    *,
    status_code: int,
    error: Message,
    reason: str,
    detail: Mapping[str, Any],
    progress: CampaignProgress | None = None,
) -> Response:
    await _audit(
        request,
        session,
        action,
        target=reference,
        reason=reason,
        outcome="refused",
        detail=detail,
    )
    return await _campaign_page(
        request, session, reference, status_code=status_code, error=error, progress=progress
    )


async def _control(
    request: Request,
    session: Session,
    reference: str,
    form: FormData,
    action: str,
    done: str,
    *,
    reason_required: bool,
) -> Response:
    """Run a control update from a form, audit it, and answer with the campaign page."""
    _check_path_reference(reference)
    operator = session.operator
    merchant = operator.merchant
    reason = _text(form, "reason")
    if reason_required and not reason:
        return await _refused(
            request,
            session,
            reference,
            action,
            status_code=422,
            error=_message("campaigns.error.reason_required"),
            reason=reason,
            detail={"rule": "reason_required"},
        )
    if len(reason) > REASON_MAX:
        return await _refused(
            request,
            session,
            reference,
            action,
            status_code=422,
            error=_message("campaigns.error.reason_too_long", max=REASON_MAX),
            reason=reason[:REASON_MAX],
            detail={"rule": "reason_max_length"},
        )
    override = False
    client = await temporal_client(request)
    call: Awaitable[CampaignProgress]
    if action == "approve_campaign":
        progress = await _temporal(operations.campaign_progress(client, merchant, reference))
        submitter = progress.submitted_by.lower()
        if submitter and submitter == operator.actor.lower():
            return await _refused(
                request,
                session,
                reference,
                action,
                status_code=403,
                error=_message("campaigns.error.four_eyes"),
                reason=reason,
                detail={"rule": "four_eyes", "submitted_by": progress.submitted_by},
                progress=progress,
            )
        if not operator.can(Permission.APPROVE_CAMPAIGN):
            return await _refused(
                request,
                session,
                reference,
                action,
                status_code=403,
                error=_message("console.error.forbidden", role=operator.role.value),
                reason=reason,
                detail={
                    "missing_permission": Permission.APPROVE_CAMPAIGN.value,
                    "role": operator.role.value,
                },
                progress=progress,
            )
        override = _checked(form, "override_blocking")
        call = operations.approve_campaign(
            client, merchant, reference, approved_by=operator.actor, override_blocking=override
        )
    elif action == "pause_campaign":
        call = operations.pause_campaign(client, merchant, reference, by=operator.actor)
    elif action == "resume_campaign":
        call = operations.resume_campaign(client, merchant, reference, by=operator.actor)
    else:
        call = operations.cancel_campaign(
            client, merchant, reference, by=operator.actor, reason=reason
        )
    try:
        await _temporal(call)
    except CampaignStateRefused as exc:
        four_eyes = exc.message.startswith("four-eyes")
        return await _refused(
            request,
            session,
            reference,
            action,
            status_code=403 if four_eyes else 409,
            error=_message("campaigns.error.refused", message=exc.message),
            reason=reason,
            detail={"message": exc.message, "override_blocking": override},
        )
    await _audit(
        request,
        session,
        action,
        target=reference,
        reason=reason,
        detail={"override_blocking": override} if action == "approve_campaign" else {},
    )
    return RedirectResponse(f"{_campaign_path(reference)}?done={done}", status_code=303)


@router.post("/campaigns/{reference}/approve", include_in_schema=False)
async def campaign_approve(
    request: Request, reference: str, session: SessionDep, form: FormDep
) -> Response:
    """Approve the campaign: its valid lines start paying. Never by its uploader (checked
    first: the uploader, whatever their role, is told so on the campaign's page), and only
    with the permission to approve (a 403 on the campaign's page otherwise); both refusals
    are in the audit trail."""
    return await _control(
        request, session, reference, form, "approve_campaign", "approved", reason_required=False
    )


@router.post("/campaigns/{reference}/pause", include_in_schema=False)
async def campaign_pause(
    request: Request,
    reference: str,
    session: Annotated[Session, Depends(allowed(Permission.CONTROL_CAMPAIGN))],
    form: FormDep,
) -> Response:
    """Pause: no new line starts; lines in flight finish."""
    return await _control(
        request, session, reference, form, "pause_campaign", "paused", reason_required=True
    )


@router.post("/campaigns/{reference}/resume", include_in_schema=False)
async def campaign_resume(
    request: Request,
    reference: str,
    session: Annotated[Session, Depends(allowed(Permission.CONTROL_CAMPAIGN))],
    form: FormDep,
) -> Response:
    """Resume a paused campaign (and every provider paused by an outage)."""
    return await _control(
        request, session, reference, form, "resume_campaign", "resumed", reason_required=True
    )


@router.post("/campaigns/{reference}/cancel", include_in_schema=False)
async def campaign_cancel(
    request: Request,
    reference: str,
    session: Annotated[Session, Depends(allowed(Permission.CONTROL_CAMPAIGN))],
    form: FormDep,
) -> Response:
    """Cancel: no new line starts; lines already sent finish and are reported."""
    return await _control(
        request, session, reference, form, "cancel_campaign", "cancelled", reason_required=True
    )
