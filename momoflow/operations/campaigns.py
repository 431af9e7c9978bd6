"""Campaigns: submit a campaign file, read a campaign, run its control updates, build its
report; shared by the gateway's ``/v1/campaigns`` routes and the console's campaign pages.

:func:`submit_campaign_file` checks the file's structure, takes one of the merchant's
pre-flight slots, stores the file under its SHA-256 and starts the campaign
(:func:`submit_campaign`: the fingerprint, the search attributes and the summary, started
once per reference with ``REJECT_DUPLICATE``). :func:`update_campaign` sends the
``approve`` / ``pause`` / ``resume`` / ``cancel`` / ``retry`` updates, whose validators in
the workflow decide what the campaign's phase allows.

Nothing here knows about HTTP: every refusal is a typed error (:class:`CampaignError` and
its subclasses, :class:`~momoflow.operations.starting.RequestProblems`,
:class:`~momoflow.operations.starting.ReferenceInUse`) that callers map to their answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from momoflow import search_attributes as sa
from momoflow.business_requests import FieldProblem
from momoflow.campaigns.models import (
    ApproveRequest,
    CampaignInput,
    CampaignOptions,
    CampaignPhase,
    CampaignProgress,
    CancelRequest,
    FileFormat,
    LineOutcome,
    LineProblem,
    PauseRequest,
    ReportRow,
    RetryRequest,
    window_for_rate,
)
from momoflow.campaigns.parsing import FileRejected, inspect_file
from momoflow.campaigns.report import build_report, outcome_from_state
from momoflow.campaigns.store import CampaignStore
from momoflow.contract import (
    APPROVE_UPDATE,
    CAMPAIGN_WORKFLOW,
    CANCEL_UPDATE,
    PAUSE_UPDATE,
    PROGRESS_QUERY,
    RESUME_UPDATE,
    RETRY_UPDATE,
    STATE_QUERY,
)
from momoflow.ids import (
    REFERENCE_PATTERN,
    campaign_workflow_id,
    is_valid_reference,
    workflow_task_queue,
)
from momoflow.models import PayoutState, ProviderName
from momoflow.operations.starting import RequestProblems, start_once
from momoflow.settings import Settings

log = logging.getLogger("momoflow.operations")

__all__ = [
    "CampaignError",
    "CampaignFileRejected",
    "CampaignFileTooLarge",
    "CampaignStateRefused",
    "NotFound",
    "PreflightSlots",
    "PreflightSlotsBusy",
    "PreflightSlotsUnavailable",
    "StateUnavailable",
    "Submission",
    "approve_campaign",
    "campaign_fingerprint",
    "campaign_options",
    "campaign_progress",
    "campaign_report",
    "cancel_campaign",
    "check_reference",
    "pause_campaign",
    "read_workflow_state",
    "resume_campaign",
    "retry_campaign",
    "submit_campaign",
    "submit_campaign_file",
    "update_campaign",
]

#: How long a read waits for a worker to answer a workflow's query (seconds).
QUERY_TIMEOUT_S = 5.0

StateT = TypeVar("StateT", bound=BaseModel)


# ---------------------------------------------------------------------- errors


class CampaignError(Exception):
    """A campaign operation was refused or could not be done."""


class CampaignFileRejected(CampaignError):
    """The file cannot be read as a campaign file; ``problems`` says why (whole-file
    problems: encoding, header, size, no lines). Nothing was stored or started."""

    def __init__(self, problems: Sequence[LineProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(p.message for p in self.problems))


class CampaignFileTooLarge(CampaignError):
    """The file is larger than ``campaigns.max_upload_bytes``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the file is larger than {limit} bytes")


class PreflightSlotsBusy(CampaignError):
    """Every pre-flight slot of the merchant is held by another campaign: nothing was
    started; retry after ``retry_after_s``."""

    def __init__(self, message: str, *, holders: list[str], retry_after_s: int) -> None:
        self.holders = holders
        self.retry_after_s = retry_after_s
        super().__init__(message)


class PreflightSlotsUnavailable(CampaignError):
    """The merchant's pre-flight slots cannot be asked (Temporal or the limits worker is
    down): nothing was started."""


class NotFound(CampaignError):
    """No campaign (or payout) of the merchant with this reference."""

    def __init__(self, what: str, reference: str) -> None:
        self.what = what
        self.reference = reference
        super().__init__(f"no {what} with reference {reference!r}")


class StateUnavailable(CampaignError):
    """The workflow exists but no worker answered its query in time."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"the {what} exists but no worker answered in time; retry shortly")


class CampaignStateRefused(CampaignError):
    """The campaign refused the update: its validator's message says why (the campaign's
    phase, a blocking pre-flight problem, the four-eyes rule...)."""

    def __init__(self, update: str, message: str) -> None:
        self.update = update
        self.message = message
        super().__init__(message)


# ---------------------------------------------------------------------- fingerprint


def _canonical(campaign: CampaignInput) -> bytes:
    # What the caller asked for; the windows derived from this gateway's rate limits are
    # left out, so a retry through another gateway is still a retry.
    return json.dumps(
        {
            "file": campaign.file_sha256,
            "name": campaign.name,
            "options": campaign.options.model_dump(
                mode="json", exclude={"max_in_flight_by_provider"}
            ),
        },
        sort_keys=True,
    ).encode()


def campaign_fingerprint(campaign: CampaignInput, secret: str) -> str:
    """The keyed fingerprint of a campaign submission (an HMAC, like payouts': the memo
    never holds a hash anyone could recompute from a guess)."""
    return hmac.new(secret.encode(), _canonical(campaign), hashlib.sha256).hexdigest()


def _unkeyed_fingerprint(campaign: CampaignInput) -> str:
    """The fingerprint campaigns submitted before the keyed one carry in their memo."""
    return hashlib.sha256(_canonical(campaign)).hexdigest()


# ---------------------------------------------------------------------- submission


class PreflightSlots(Protocol):
    """What takes a pre-flight slot for a new campaign (the gateway's
    :class:`~momoflow.gateway.limits.MerchantLimiter`)."""

    async def hold_preflight(self, merchant: str, campaign_id: str) -> None:
        """Take a slot; raises ``PreflightsBusy`` or ``LimitsUnavailable``."""


@dataclass(frozen=True)
class Submission:
    """A submitted campaign: ``created`` is False when the same submission (same file,
    name and options under the reference) had already started it."""

    campaign_id: str
    created: bool
    campaign: CampaignInput
    lines: int

    def initial_progress(self) -> CampaignProgress:
        """The progress of a campaign just started (pre-flight under way)."""
        campaign = self.campaign
        return CampaignProgress(
            campaign_id=campaign.campaign_id,
            merchant=campaign.merchant,
            reference=campaign.reference,
            name=campaign.name,
            file_format=campaign.file_format,
            file_sha256=campaign.file_sha256,
            phase=CampaignPhase.PREFLIGHT,
            lines=self.lines,
            submitted_at=campaign.submitted_at,
            submitted_by=campaign.submitted_by,
            updated_at=campaign.submitted_at,
        )


def check_reference(reference: str) -> None:
    """:class:`RequestProblems` when ``reference`` cannot name a campaign."""
    if not is_valid_reference(reference):
        raise RequestProblems(
            [FieldProblem("reference", "pattern", f"must match {REFERENCE_PATTERN}")]
        )


def campaign_options(
    settings: Settings,
    *,
    auto_approve: bool = False,
    max_in_flight_per_provider: int | None = None,
    outage_error_threshold: int = 5,
    outage_probe_interval_s: int = 60,
    max_history_events: int = 3_000,
) -> CampaignOptions:
    """A campaign's options; without ``max_in_flight_per_provider``, each provider's
    window is sized from its rate limit (about 30 s of its requests, at most 50)."""
    windows: dict[ProviderName, int] = (
        {}
        if max_in_flight_per_provider is not None
        else {
            provider: window_for_rate(settings.rate_limit_per_second(provider), cap=50)
            for provider in settings.providers
        }
    )
    return CampaignOptions(
        auto_approve=auto_approve,
        max_in_flight_per_provider=max_in_flight_per_provider or 50,
        max_in_flight_by_provider=windows,
        outage_error_threshold=outage_error_threshold,
        outage_probe_interval_s=outage_probe_interval_s,
        max_history_events=max_history_events,
    )


async def submit_campaign_file(
    client: Client,
    *,
    settings: Settings,
    store: CampaignStore,
    slots: PreflightSlots,
    merchant: str,
    reference: str,
    name: str,
    file_format: FileFormat,
    data: bytes,
    submitted_by: str,
    options: CampaignOptions | None = None,
) -> Submission:
    """Check the file, take a pre-flight slot, store the file and start the campaign.

    Raises :class:`~momoflow.operations.starting.RequestProblems` (the reference),
    :class:`CampaignFileTooLarge`, :class:`CampaignFileRejected` (the whole file's
    problems; line problems are pre-flight's), :class:`PreflightSlotsBusy`,
    :class:`PreflightSlotsUnavailable`, or
    :class:`~momoflow.operations.starting.ReferenceInUse` (the reference was used for
    another file, name or options). Nothing is stored or started when it raises (but for a
    file kept under its digest when the start itself fails)."""
    check_reference(reference)
    limit = settings.campaigns.max_upload_bytes
    if len(data) > limit:
        raise CampaignFileTooLarge(limit)
    try:
        summary = await asyncio.to_thread(inspect_file, data, file_format)
    except FileRejected as exc:
        raise CampaignFileRejected(exc.problems) from None
    options = options if options is not None else campaign_options(settings)
    campaign_id = campaign_workflow_id(merchant, reference)
    await _hold_preflight_slot(client, slots, merchant, campaign_id)
    digest = await asyncio.to_thread(store.save_upload, campaign_id, file_format, data)
    campaign = CampaignInput(
        campaign_id=campaign_id,
        merchant=merchant,
        reference=reference,
        name=name,
        file_format=file_format,
        file_sha256=digest,
        submitted_at=datetime.now(UTC),
        submitted_by=submitted_by,
        options=options,
    )
    created = await submit_campaign(client, campaign, lines=summary.lines, settings=settings)
    if created:
        log.info("campaign %s submitted by %s: %d lines", campaign_id, submitted_by, summary.lines)
    return Submission(
        campaign_id=campaign_id, created=created, campaign=campaign, lines=summary.lines
    )


async def _hold_preflight_slot(
    client: Client, slots: PreflightSlots, merchant: str, campaign_id: str
) -> None:
    """Take one of the merchant's pre-flight slots for a new campaign. A campaign that
    already exists is let through (its submission is answered as a retry, or as a
    conflict)."""
    # Imported here: the gateway's package imports this module.
    from momoflow.gateway.limits import (
        PREFLIGHT_RETRY_AFTER_S,
        LimitsUnavailable,
        PreflightsBusy,
    )

    try:
        await slots.hold_preflight(merchant, campaign_id)
    except PreflightsBusy as exc:
        if await _exists(client, campaign_id):
            return
        raise PreflightSlotsBusy(
            str(exc), holders=exc.holders, retry_after_s=PREFLIGHT_RETRY_AFTER_S
        ) from None
    except LimitsUnavailable as exc:
        log.warning("campaign %s refused: pre-flight slots unavailable (%s)", campaign_id, exc)
        raise PreflightSlotsUnavailable(str(exc)) from None


async def _exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def submit_campaign(
    client: Client, campaign: CampaignInput, *, lines: int, settings: Settings
) -> bool:
    """Start the campaign's workflow; False when it already exists with the same
    submission. Raises :class:`~momoflow.operations.starting.ReferenceInUse` when the
    reference was used for another file, name or options."""
    return await start_once(
        client,
        CAMPAIGN_WORKFLOW,
        campaign,
        workflow_id=campaign.campaign_id,
        task_queue=workflow_task_queue(settings.task_queue_prefix),
        fingerprint=campaign_fingerprint(campaign, settings.fingerprint_secret.get_secret_value()),
        earlier_fingerprints=[_unkeyed_fingerprint(campaign)],
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.DIRECTION, "campaign"),
                SearchAttributePair(sa.STATUS, CampaignPhase.PREFLIGHT.value),
                SearchAttributePair(sa.MERCHANT, campaign.merchant),
                SearchAttributePair(sa.REFERENCE, campaign.reference),
                SearchAttributePair(sa.CAMPAIGN, campaign.campaign_id),
            ]
        ),
        summary=(f"Campaign {campaign.reference}: {lines} lines ({campaign.file_format.value})"),
        what="campaign",
        reference=campaign.reference,
    )


# ---------------------------------------------------------------------- reads


def campaign_id_of(merchant: str, reference: str) -> str:
    """The campaign's workflow id; :class:`NotFound` for a reference that cannot name
    one."""
    try:
        return campaign_workflow_id(merchant, reference)
    except ValueError:
        raise NotFound("campaign", reference) from None


async def read_workflow_state(
    client: Client,
    workflow_id: str,
    state_type: type[StateT],
    *,
    what: str,
    reference: str,
    query: str = STATE_QUERY,
    timeout: float = QUERY_TIMEOUT_S,
) -> StateT:
    """A workflow's state from Temporal alone: its result once completed, else the live
    ``query``. Raises :class:`NotFound` or :class:`StateUnavailable`."""
    handle = client.get_workflow_handle(workflow_id, result_type=state_type)
    try:
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.COMPLETED:
            result: StateT = await handle.result()
            return result
        return await asyncio.wait_for(handle.query(query, result_type=state_type), timeout=timeout)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(what, reference) from None
        raise StateUnavailable(what) from exc
    except TimeoutError:
        raise StateUnavailable(what) from None


async def campaign_progress(
    client: Client, merchant: str, reference: str, *, timeout: float = QUERY_TIMEOUT_S
) -> CampaignProgress:
    """The merchant's campaign's progress. Raises :class:`NotFound` (no such campaign of
    this merchant) or :class:`StateUnavailable`."""
    progress = await read_workflow_state(
        client,
        campaign_id_of(merchant, reference),
        CampaignProgress,
        what="campaign",
        reference=reference,
        query=PROGRESS_QUERY,
        timeout=timeout,
    )
    if progress.merchant != merchant:
        raise NotFound("campaign", reference)
    return progress


async def campaign_report(
    client: Client, store: CampaignStore, progress: CampaignProgress
) -> list[ReportRow]:
    """Every line of the campaign's file with its final (or current) status; lines with no
    recorded final outcome are read live from their payouts. Raises
    :class:`StateUnavailable` when a payout's worker does not answer."""

    async def live(workflow_id: str) -> LineOutcome | None:
        try:
            state = await read_workflow_state(
                client, workflow_id, PayoutState, what="payout", reference=workflow_id
            )
        except NotFound:
            return None
        return outcome_from_state(state)

    return await build_report(store, progress, live)


# ---------------------------------------------------------------------- updates


async def update_campaign(
    client: Client, merchant: str, reference: str, update: str, body: BaseModel
) -> CampaignProgress:
    """Send a control update to the merchant's campaign. Raises
    :class:`CampaignStateRefused` (the workflow's validator refused it, or the campaign
    has ended), :class:`NotFound` or :class:`StateUnavailable`."""
    campaign_id = campaign_id_of(merchant, reference)
    handle = client.get_workflow_handle(campaign_id)
    try:
        result: CampaignProgress = await handle.execute_update(
            update, body, result_type=CampaignProgress
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise CampaignStateRefused(update, message) from None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        # Missing, or closed: a closed campaign answers with its final phase.
        ended = await campaign_progress(client, merchant, reference)
        raise CampaignStateRefused(
            update, f"the campaign is {ended.phase.value}: nothing to {update}"
        ) from None
    log.info("campaign %s: %s", campaign_id, update)
    return result


async def approve_campaign(
    client: Client,
    merchant: str,
    reference: str,
    *,
    approved_by: str,
    override_blocking: bool = False,
) -> CampaignProgress:
    """Approve: the campaign's valid lines start paying (see :func:`update_campaign`)."""
    body = ApproveRequest(approved_by=approved_by, override_blocking=override_blocking)
    return await update_campaign(client, merchant, reference, APPROVE_UPDATE, body)


async def pause_campaign(
    client: Client, merchant: str, reference: str, *, by: str, provider: ProviderName | None = None
) -> CampaignProgress:
    """Stop starting lines (of ``provider`` only, or all); lines in flight finish."""
    body = PauseRequest(by=by, provider=provider)
    return await update_campaign(client, merchant, reference, PAUSE_UPDATE, body)


async def resume_campaign(
    client: Client, merchant: str, reference: str, *, by: str, provider: ProviderName | None = None
) -> CampaignProgress:
    """Start lines again (of ``provider`` only, or all)."""
    body = PauseRequest(by=by, provider=provider)
    return await update_campaign(client, merchant, reference, RESUME_UPDATE, body)


async def cancel_campaign(
    client: Client, merchant: str, reference: str, *, by: str, reason: str = ""
) -> CampaignProgress:
    """No new line starts; lines already sent finish and are reported."""
    body = CancelRequest(by=by, reason=reason)
    return await update_campaign(client, merchant, reference, CANCEL_UPDATE, body)


async def retry_campaign(
    client: Client, merchant: str, reference: str, *, by: str
) -> CampaignProgress:
    """Run the step that blocked the campaign again."""
    body = RetryRequest(by=by)
    return await update_campaign(client, merchant, reference, RETRY_UPDATE, body)
