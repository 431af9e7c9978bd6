"""``/v1/campaigns``: bulk supplier payouts from a CSV or JSON-lines file.

Submit the file as the request body (``Content-Type: text/csv`` or
``application/x-ndjson``); the campaign checks every line (pre-flight), waits for approval,
then pays each valid line once. See ``docs/campaigns.md``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from temporalio.client import Client

from momoflow.business_requests import FieldProblem
from momoflow.campaigns.models import (
    ApproveRequest,
    CampaignPhase,
    CampaignProblems,
    CampaignProgress,
    CancelRequest,
    PauseRequest,
    RetryRequest,
)
from momoflow.campaigns.parsing import detect_format
from momoflow.campaigns.report import report_csv
from momoflow.campaigns.store import CampaignStore, store_for
from momoflow.contract import (
    APPROVE_UPDATE,
    CANCEL_UPDATE,
    PAUSE_UPDATE,
    PROGRESS_QUERY,
    RESUME_UPDATE,
    RETRY_UPDATE,
)
from momoflow.gateway.deps import MerchantDep, SettingsDep, TemporalDep
from momoflow.gateway.errors import problems_response
from momoflow.gateway.limits import MerchantLimiter
from momoflow.gateway.transactions import (
    ERROR_RESPONSES,
    WaitSeconds,
    not_found,
    read_workflow_state,
    read_workflow_state_waiting,
    reference_conflict,
    state_unavailable,
)
from momoflow.ids import campaign_workflow_id
from momoflow.operations import campaigns as campaign_operations
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

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])


_FILE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def campaign_store(request: Request) -> CampaignStore:
    """The app's campaign store (made on first use from the app's settings), shared by the
    business API and the console."""
    store: CampaignStore | None = getattr(request.app.state, "campaign_store", None)
    if store is None:
        store = store_for(request.app.state.settings)
        request.app.state.campaign_store = store
    return store


def _campaign_id(merchant: str, reference: str) -> str:
    try:
        return campaign_workflow_id(merchant, reference)
    except ValueError:
        raise not_found("campaign", reference) from None


@router.post(
    "",
    response_model=CampaignProgress,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_FILE_BODY,
    responses={
        200: {"description": "Existing campaign with this reference and file"},
        413: {"description": "The file is larger than the configured limit"},
        415: {"description": "Not CSV or JSON lines"},
        **ERROR_RESPONSES,
    },
    summary="Submit a payout campaign (idempotent on `reference`)",
)
async def submit_campaign(
    request: Request,
    response: Response,
    merchant: MerchantDep,
    settings: SettingsDep,
    client: TemporalDep,
    reference: Annotated[str, Query(description="Your unique campaign reference")],
    name: Annotated[str, Query(max_length=100)] = "",
    auto_approve: bool = False,
    max_in_flight_per_provider: Annotated[
        int | None,
        Query(
            ge=1,
            le=1000,
            description="Lines in flight per provider; by default sized from each "
            "provider's rate limit (about 30 s of its requests, at most 50)",
        ),
    ] = None,
    outage_error_threshold: Annotated[int, Query(ge=1)] = 5,
    outage_probe_interval_s: Annotated[int, Query(ge=1)] = 60,
    max_history_events: Annotated[int, Query(ge=200, le=40_000)] = 3_000,
) -> CampaignProgress | Response:
    """Store the file, then start the campaign: pre-flight checks every line and reports
    all problems at once; nothing is paid before approval (unless ``auto_approve``)."""
    try:
        campaign_operations.check_reference(reference)
    except RequestProblems as exc:
        return problems_response(exc.problems)
    file_format = detect_format(request.headers.get("content-type"))
    if file_format is None:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail={
                "error": "unsupported_media_type",
                "message": "send the file as text/csv or application/x-ndjson",
            },
        )
    limit = settings.campaigns.max_upload_bytes
    data = await _read_body(request, limit)
    options = campaign_operations.campaign_options(
        settings,
        auto_approve=auto_approve,
        max_in_flight_per_provider=max_in_flight_per_provider,
        outage_error_threshold=outage_error_threshold,
        outage_probe_interval_s=outage_probe_interval_s,
        max_history_events=max_history_events,
    )
    limiter: MerchantLimiter = request.app.state.merchant_limits
    try:
        submission = await campaign_operations.submit_campaign_file(
            client,
            settings=settings,
            store=campaign_store(request),
            slots=limiter,
            merchant=merchant,
            reference=reference,
            name=name,
            file_format=file_format,
            data=data,
            submitted_by=merchant,
            options=options,
        )
    except CampaignFileTooLarge:
        raise _too_large(limit) from None
    except CampaignFileRejected as exc:
        return problems_response([FieldProblem(p.field, p.rule, p.message) for p in exc.problems])
    except PreflightSlotsBusy as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail={
                "error": "too_many_preflights",
                "message": str(exc),
                "campaigns_in_preflight": exc.holders,
                "retry_after_s": exc.retry_after_s,
            },
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None
    except PreflightSlotsUnavailable:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail={
                "error": "limits_unavailable",
                "message": "the merchant's pre-flight slots cannot be checked right now; "
                "nothing was started, retry later",
            },
            headers={"Retry-After": "5"},
        ) from None
    except ReferenceInUse as exc:
        raise reference_conflict(exc) from None
    if not submission.created:
        response.status_code = status.HTTP_200_OK
        return await _progress(client, submission.campaign_id, reference)
    return submission.initial_progress()


@router.get(
    "/{reference}",
    response_model=CampaignProgress,
    responses={404: {"description": "No campaign with this reference"}, **ERROR_RESPONSES},
    summary="A campaign's progress: counts and amounts by status, rate, ETA",
)
async def get_campaign(
    reference: str,
    request: Request,
    merchant: MerchantDep,
    client: TemporalDep,
    wait_s: WaitSeconds = None,
    while_phase: Annotated[
        CampaignPhase | None,
        Query(
            description="With `wait_s`: answer as soon as the phase is no longer this one; "
            "without it, as soon as the campaign is final or blocked",
        ),
    ] = None,
) -> CampaignProgress:
    """Live progress (only the caller's own campaigns are visible). With ``wait_s``, the
    answer waits until the campaign is final or ``blocked`` or, with ``while_phase``, until
    its phase is another one; at the latest ``wait_s`` seconds."""

    def ready(progress: CampaignProgress) -> bool:
        if while_phase is not None:
            return progress.phase is not while_phase
        return progress.phase.is_final or progress.phase is CampaignPhase.BLOCKED

    return await read_workflow_state_waiting(
        request,
        client,
        _campaign_id(merchant, reference),
        CampaignProgress,
        what="campaign",
        reference=reference,
        wait_s=wait_s,
        ready=ready,
        query=PROGRESS_QUERY,
    )


@router.get(
    "/{reference}/problems",
    response_model=CampaignProblems,
    responses={404: {"description": "No campaign with this reference"}, **ERROR_RESPONSES},
    summary="Pre-flight's verdict and every problem of every invalid line",
)
async def get_problems(
    reference: str, request: Request, merchant: MerchantDep, client: TemporalDep
) -> CampaignProblems:
    """Every line problem found by pre-flight (empty until pre-flight has run)."""
    campaign_id = _campaign_id(merchant, reference)
    progress = await _progress(client, campaign_id, reference)
    store = campaign_store(request)
    preflight, problems = await asyncio.gather(
        asyncio.to_thread(store.preflight, campaign_id),
        asyncio.to_thread(store.problems, campaign_id),
    )
    return CampaignProblems(
        phase=progress.phase,
        phase_reason=progress.phase_reason,
        preflight=preflight,
        problems=problems,
    )


@router.get(
    "/{reference}/report",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per line of the file"},
        404: {"description": "No campaign with this reference"},
    },
    summary="The campaign report (CSV): every line, status, provider reference, fees, error",
)
async def get_report(
    reference: str, request: Request, merchant: MerchantDep, client: TemporalDep
) -> StreamingResponse:
    """Every line of the uploaded file with its final (or current) status."""
    campaign_id = _campaign_id(merchant, reference)
    progress = await _progress(client, campaign_id, reference)
    try:
        rows = await campaign_operations.campaign_report(client, campaign_store(request), progress)
    except StateUnavailable as exc:
        raise state_unavailable(exc.what) from None
    return StreamingResponse(
        report_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="campaign-{reference}.csv"'},
    )


async def _update(
    client: Client, merchant: str, reference: str, name: str, body: BaseModel
) -> CampaignProgress:
    try:
        return await campaign_operations.update_campaign(client, merchant, reference, name, body)
    except CampaignStateRefused as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail={"error": "campaign_state", "message": exc.message}
        ) from None
    except NotFound as exc:
        raise not_found(exc.what, exc.reference) from None
    except StateUnavailable as exc:
        raise state_unavailable(exc.what) from None


_CONTROL_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No campaign with this reference"},
    409: {"description": "Not possible in the campaign's current phase"},
    **ERROR_RESPONSES,
}


@router.post(
    "/{reference}/approve",
    response_model=CampaignProgress,
    responses=_CONTROL_RESPONSES,
    summary="Approve the campaign: its valid lines start paying",
)
async def approve_campaign(
    reference: str, body: ApproveRequest, merchant: MerchantDep, client: TemporalDep
) -> CampaignProgress:
    """Refused (409) unless the campaign awaits approval, and when pre-flight found a
    blocking problem unless ``override_blocking`` is set."""
    return await _update(client, merchant, reference, APPROVE_UPDATE, body)


@router.post(
    "/{reference}/pause",
    response_model=CampaignProgress,
    responses=_CONTROL_RESPONSES,
    summary="Pause the campaign (or one provider's lines); lines in flight finish",
)
async def pause_campaign(
    reference: str, body: PauseRequest, merchant: MerchantDep, client: TemporalDep
) -> CampaignProgress:
    """Stop starting lines of the campaign, or of ``provider`` only."""
    return await _update(client, merchant, reference, PAUSE_UPDATE, body)


@router.post(
    "/{reference}/resume",
    response_model=CampaignProgress,
    responses=_CONTROL_RESPONSES,
    summary="Resume the campaign (or one provider's lines)",
)
async def resume_campaign(
    reference: str, body: PauseRequest, merchant: MerchantDep, client: TemporalDep
) -> CampaignProgress:
    """Start lines again; also lifts an outage pause before the next probe."""
    return await _update(client, merchant, reference, RESUME_UPDATE, body)


@router.post(
    "/{reference}/cancel",
    response_model=CampaignProgress,
    responses=_CONTROL_RESPONSES,
    summary="Cancel: no new line starts; lines already sent finish and are reported",
)
async def cancel_campaign(
    reference: str, body: CancelRequest, merchant: MerchantDep, client: TemporalDep
) -> CampaignProgress:
    """Stop the campaign for good; the report lists unsent lines as ``not_sent``. Also
    while ``blocked``: the step that failed is given up."""
    return await _update(client, merchant, reference, CANCEL_UPDATE, body)


@router.post(
    "/{reference}/retry",
    response_model=CampaignProgress,
    responses=_CONTROL_RESPONSES,
    summary="Retry a blocked campaign: the step that failed runs again",
)
async def retry_campaign(
    reference: str, body: RetryRequest, merchant: MerchantDep, client: TemporalDep
) -> CampaignProgress:
    """Once the cause named in ``phase_reason`` is fixed, run the failed step again; the
    campaign goes on from where it was. Refused (409) unless the campaign is ``blocked``."""
    return await _update(client, merchant, reference, RETRY_UPDATE, body)


async def _progress(client: Client, campaign_id: str, reference: str) -> CampaignProgress:
    return await read_workflow_state(
        client,
        campaign_id,
        CampaignProgress,
        what="campaign",
        reference=reference,
        query=PROGRESS_QUERY,
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        detail={"error": "too_large", "message": f"the file is larger than {limit} bytes"},
    )


__all__ = ["campaign_store", "router"]
