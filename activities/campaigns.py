"""Campaign activities: everything a campaign does outside its workflow.

They read and write the campaign store (the uploaded file, the checked lines, the outcomes)
so that Temporal history only ever holds counters, cursors and the lines in flight. Provider
calls made for pre-flight (quotes, balances, availability) are *not* here: they are the
provider activities, on each provider's rate-limited task queue.

Every failure leaves as an ``ApplicationError`` of one of two kinds (:func:`step_failure`):
:data:`CAMPAIGN_STORE_UNAVAILABLE`, which may pass (an I/O error, a timeout, an S3 server error) and
is retried for a bounded while; and ``CAMPAIGN_STEP_FAILED``, non-retryable, which no retry can
cure (a path that is not a directory, a permission, a missing object, an S3 request refused,
a bug). The workflow then puts the campaign in ``blocked`` with the message, until an
operator fixes the cause and sends ``retry``.
"""

from __future__ import annotations

import asyncio
import errno
import math
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn

import httpx
from pydantic import ValidationError
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from momoflow import search_attributes as sa
from momoflow.campaigns.models import (
    CampaignInput,
    CampaignLine,
    ExistingPayout,
    LineProblem,
    OutcomeBatch,
    Preflight,
    PreflightChecks,
    PreparedCampaign,
    ProviderTotals,
    QuoteGroup,
    ReadLines,
)
from momoflow.campaigns.parsing import FileRejected, check_lines
from momoflow.campaigns.report import outcome_from_state
from momoflow.campaigns.s3 import S3StoreError
from momoflow.campaigns.store import CampaignStore
from momoflow.contract import (
    CAMPAIGN_FILE_MISSING,
    CAMPAIGN_FILE_REJECTED,
    CAMPAIGN_STEP_FAILED,
    CAMPAIGN_STORE_UNAVAILABLE,
    STATE_QUERY,
)
from momoflow.ids import payout_workflow_id
from momoflow.models import PayoutState, ProviderName
from momoflow.money import format_amount
from momoflow.providers.catalog import capabilities_of
from momoflow.records.store import RecordStore
from momoflow.settings import Settings

#: Problems carried in the workflow (the store keeps them all).
FIRST_PROBLEMS = 50
#: Workflow ids per visibility query when looking for earlier payouts.
ID_BATCH = 100
#: Failure type of a campaign step that no retry can cure (non-retryable): the campaign
#: goes ``blocked`` until its cause is fixed and an operator sends ``retry``.
#: OS errors that trying again cannot cure: the path, its type or its permissions are wrong.
PERMANENT_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.ENAMETOOLONG,
        errno.ELOOP,
        errno.EINVAL,
    }
)
#: The same, raised without an errno (``FileNotFoundError("page ... is missing")``).
_PERMANENT_OS_ERRORS = (
    FileNotFoundError,
    PermissionError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
)
#: Longest error text carried into the campaign's ``phase_reason``.
MAX_MESSAGE = 500


def is_transient(exc: BaseException) -> bool:
    """True when trying the same step again may succeed without anyone fixing anything."""
    if isinstance(exc, S3StoreError):
        # A refusal (4xx, a redirect) carries its status; no status means the server did
        # not answer, or answered 5xx on every attempt.
        return exc.status is None
    if isinstance(exc, httpx.TransportError | RPCError):
        return True
    if isinstance(exc, _PERMANENT_OS_ERRORS):
        return False
    if isinstance(exc, OSError):
        return exc.errno not in PERMANENT_ERRNOS
    return False


def describe(exc: BaseException) -> str:
    """The error as one line for an operator: its kind and message, without the values a
    validation error would quote (they may be a recipient's data)."""
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "value"
        text = (
            f"{exc.title} does not match this version of momoflow: "
            f"{exc.error_count()} error(s), first at {where}: {first['msg']}"
        )
    else:
        text = str(exc) or "no message"
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def step_failure(exc: BaseException) -> ApplicationError:
    """The ``ApplicationError`` a campaign activity fails with for ``exc``:
    :data:`CAMPAIGN_STORE_UNAVAILABLE` (retried) when it may pass, else ``CAMPAIGN_STEP_FAILED``
    (non-retryable: the campaign goes ``blocked``)."""
    if isinstance(exc, ApplicationError):
        return exc
    if is_transient(exc):
        return ApplicationError(describe(exc), type=CAMPAIGN_STORE_UNAVAILABLE)
    return ApplicationError(describe(exc), type=CAMPAIGN_STEP_FAILED, non_retryable=True)


def _raise_step_failure(exc: Exception) -> NoReturn:
    # A validation error's own text quotes the values it read: it is left out.
    raise step_failure(exc) from (None if isinstance(exc, ValidationError) else exc)


class CampaignActivities:
    """Campaign store and visibility work, injected with settings, store and client."""

    def __init__(
        self,
        settings: Settings,
        store: CampaignStore,
        client: Client,
        records: RecordStore | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._client = client
        #: The record store: a reference it holds is taken even once Temporal has
        #: forgotten its workflow.
        self._records = records

    @activity.defn(name="prepare_campaign")
    async def prepare_campaign(self, campaign: CampaignInput) -> PreparedCampaign:
        """Check every line of the uploaded file, store the valid ones per provider and the
        problems of the others; nothing is paid here. Safe to repeat."""
        try:
            return await self._prepare(campaign)
        except ApplicationError:
            raise
        except Exception as exc:
            _raise_step_failure(exc)

    async def _prepare(self, campaign: CampaignInput) -> PreparedCampaign:
        try:
            data = await asyncio.to_thread(
                self._store.upload, campaign.campaign_id, campaign.file_format, campaign.file_sha256
            )
        except FileNotFoundError as exc:
            # Missing from this worker's store (another store configured than the
            # gateway's?) or changed: fixed by an operator, then retried.
            raise ApplicationError(
                str(exc), type=CAMPAIGN_FILE_MISSING, non_retryable=True
            ) from None
        try:
            checked = await asyncio.to_thread(
                check_lines,
                data,
                campaign.file_format,
                routes=self._settings.campaigns.routes,
                enabled=self._settings.providers,
            )
        except FileRejected as exc:
            raise ApplicationError(
                f"the campaign file cannot be read: {exc}",
                type=CAMPAIGN_FILE_REJECTED,
                non_retryable=True,
            ) from None
        activity.heartbeat("lines checked")
        problems = list(checked.problems)
        ids = {
            number: payout_workflow_id(campaign.merchant, request.reference)
            for number, request in checked.requests.items()
        }
        existing = await self._existing_workflows(sorted(ids.values()))
        if self._records is not None:
            existing |= await self._records.recorded_workflow_ids(sorted(ids.values()))
        for number, workflow_id in ids.items():
            if workflow_id in existing:
                request = checked.requests.pop(number)
                problems.append(
                    LineProblem(
                        line=number,
                        reference=request.reference,
                        field="reference",
                        rule="unique_reference",
                        message=f"reference {request.reference!r} was already used by payout "
                        f"{workflow_id}; a reference is never paid twice",
                    )
                )
        problems.sort(key=lambda p: (p.line, p.field))
        by_provider: dict[ProviderName, list[CampaignLine]] = defaultdict(list)
        for number in sorted(checked.requests):
            request = checked.requests[number]
            payout = request.to_input(
                merchant=campaign.merchant,
                secret=self._settings.fingerprint_secret.get_secret_value(),
                requested_at=campaign.submitted_at,
                timings=self._settings.timings_for(request.provider),
                confirm_final_webhooks=self._settings.confirms_payout_webhooks(request.provider),
            )
            if capabilities_of(request.provider).per_request_callback:
                payout.provider_callback_url = self._settings.webhook_url(request.provider)
            payout.campaign_workflow_id = campaign.campaign_id
            payout.metadata = {"campaign": campaign.reference, "line": str(number)}
            by_provider[request.provider].append(CampaignLine(line=number, payout=payout))
        await asyncio.to_thread(self._save, campaign.campaign_id, by_provider, problems)
        totals = _totals(by_provider)
        groups = _quote_groups(by_provider)
        limit = self._settings.campaigns.preflight_quote_limit
        return PreparedCampaign(
            lines=checked.lines,
            valid_lines=sum(len(lines) for lines in by_provider.values()),
            invalid_lines=len({p.line for p in problems}),
            problem_count=len(problems),
            first_problems=problems[:FIRST_PROBLEMS],
            totals=totals,
            lines_by_provider={p: len(lines) for p, lines in by_provider.items()},
            quote_groups=groups[:limit],
            unquoted_groups=max(0, len(groups) - limit),
        )

    @activity.defn(name="finish_campaign_preflight")
    async def finish_preflight(self, checks: PreflightChecks) -> Preflight:
        """Price every line (quoted, or estimated at the highest quoted fee rate), compare
        each provider account's balance with what it must pay, and store the verdict."""
        try:
            preflight = await asyncio.to_thread(
                judge_preflight,
                checks,
                self._store,
                checked_at=activity.info().current_attempt_scheduled_time,
            )
            await asyncio.to_thread(self._store.save_preflight, checks.campaign_id, preflight)
        except Exception as exc:
            _raise_step_failure(exc)
        return preflight

    @activity.defn(name="read_campaign_lines")
    async def read_lines(self, request: ReadLines) -> list[CampaignLine]:
        """A slice of one provider's queue of valid lines (a page missing before the
        provider's ``total`` is an error, not the end of the queue)."""
        try:
            return await asyncio.to_thread(
                lambda: self._store.read_lines(
                    request.campaign_id,
                    request.provider,
                    request.start,
                    request.count,
                    total=request.total,
                )
            )
        except Exception as exc:
            _raise_step_failure(exc)

    @activity.defn(name="record_campaign_outcomes")
    async def record_outcomes(self, batch: OutcomeBatch) -> None:
        """Write one batch of line outcomes (the same batch number replaces itself)."""
        try:
            await asyncio.to_thread(
                self._store.save_outcomes, batch.campaign_id, batch.batch, batch.outcomes
            )
        except Exception as exc:
            _raise_step_failure(exc)

    @activity.defn(name="existing_payout")
    async def existing_payout(self, workflow_id: str) -> ExistingPayout:
        """The campaign and settled outcome of a payout that already existed."""
        try:
            return await self._existing_payout(workflow_id)
        except Exception as exc:
            _raise_step_failure(exc)

    async def _existing_payout(self, workflow_id: str) -> ExistingPayout:
        handle = self._client.get_workflow_handle(workflow_id)
        description = await handle.describe()
        campaign = description.typed_search_attributes.get(sa.CAMPAIGN)
        try:
            state = await handle.query(STATE_QUERY, result_type=PayoutState)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                raise
            return ExistingPayout(workflow_id=workflow_id, campaign_workflow_id=campaign)
        outcome = None
        if state.status.is_final or state.status.value == "reconciling":
            outcome = outcome_from_state(state)
        return ExistingPayout(
            workflow_id=workflow_id, campaign_workflow_id=campaign, outcome=outcome
        )

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for a worker's registration."""
        return [
            self.prepare_campaign,
            self.finish_preflight,
            self.read_lines,
            self.record_outcomes,
            self.existing_payout,
        ]

    # ------------------------------------------------------------------ helpers

    async def _existing_workflows(self, workflow_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(workflow_ids), ID_BATCH):
            batch = workflow_ids[start : start + ID_BATCH]
            quoted = ", ".join(f"'{wid}'" for wid in batch)
            async for execution in self._client.list_workflows(f"WorkflowId IN ({quoted})"):
                found.add(execution.id)
            activity.heartbeat(f"checked {start + len(batch)} references")
        return found

    def _save(
        self,
        campaign_id: str,
        by_provider: dict[ProviderName, list[CampaignLine]],
        problems: list[LineProblem],
    ) -> None:
        for provider, lines in by_provider.items():
            self._store.save_lines(campaign_id, provider, lines)
        self._store.save_problems(campaign_id, problems)


def judge_preflight(
    checks: PreflightChecks, store: CampaignStore, *, checked_at: datetime
) -> Preflight:
    """Price every line (quoted, estimated at the highest quoted fee rate, or unknown),
    compare each provider account's balance with what it must pay, and sort what was found
    into blocking problems and warnings (one sentence per provider and currency)."""
    prepared = checks.prepared
    quoted = {_group_key(q.group): q.fees for q in checks.quotes if q.fees is not None}
    rates: dict[ProviderName, float] = {}
    for q in checks.quotes:
        if q.fees is not None and q.group.amount > 0:
            rate = q.fees / q.group.amount
            rates[q.group.provider] = max(rates.get(q.group.provider, 0.0), rate)
    totals = {(t.provider, t.currency): t.model_copy() for t in prepared.totals}
    for total in totals.values():
        total.fees = None
        total.fees_quoted_lines = total.fees_estimated_lines = total.fees_unknown_lines = 0
    for provider in prepared.lines_by_provider:
        quotes_payouts = capabilities_of(provider).quotes_payouts
        for line in store.iter_lines(checks.campaign_id, provider):
            payout = line.payout
            total = totals[(provider, payout.currency)]
            key = (provider, payout.country, payout.operator, payout.currency, payout.amount)
            if quotes_payouts and key in quoted:
                total.fees = (total.fees or 0) + quoted[key]
                total.fees_quoted_lines += 1
            elif quotes_payouts and provider in rates:
                total.fees = (total.fees or 0) + math.ceil(payout.amount * rates[provider])
                total.fees_estimated_lines += 1
            else:
                total.fees_unknown_lines += 1
    blocking: list[str] = []
    warnings: list[str] = []
    for (provider, currency), total in sorted(totals.items()):
        # One sentence per provider and currency, each naming both.
        where = f"{provider.value} {currency.value}"
        availability = checks.availability.get(provider)
        if availability is not None:
            total.available = availability.available
            total.availability_detail = availability.detail
            if not availability.available:
                blocking.append(
                    f"{provider.value} is unavailable: {availability.detail or 'no detail'}"
                )
        balances = [b for b in checks.balances.get(provider, []) if b.currency is currency]
        if balances:
            total.balance = sum(b.available for b in balances)
            if total.short_by:
                needs = "amounts plus fees" + (
                    f", not counting the unknown fees of {total.fees_unknown_lines} line(s)"
                    if total.fees_unknown_lines
                    else ""
                )
                blocking.append(
                    f"{where} balance "
                    f"{format_amount(total.balance, currency)} is short by "
                    f"{format_amount(total.short_by, currency)} of the "
                    f"{format_amount(total.required, currency)} the campaign needs "
                    f"({needs})"
                )
        elif provider in checks.balances:
            warnings.append(f"{provider.value} reports no {currency.value} balance")
        if total.fees_estimated_lines:
            warnings.append(
                f"{where}: fees of {total.fees_estimated_lines} line(s) are "
                "estimated at the highest quoted rate"
            )
        if total.fees_unknown_lines:
            why = (
                "the provider quotes nothing in advance"
                if not capabilities_of(provider).quotes_payouts
                else "no quote of this provider succeeded"
            )
            warnings.append(
                f"{where}: fees of {total.fees_unknown_lines} line(s) are not known "
                f"before payment ({why})"
            )
    for provider, errors in sorted(checks.errors.items()):
        # Several prices of one amount (other countries or operators) can fail with the
        # same sentence: said once, with how many times.
        for error, times in Counter(errors).items():
            warnings.append(
                f"{provider.value} {error}" + (f" ({times} times)" if times > 1 else "")
            )
    return Preflight(
        prepared=prepared,
        totals=list(totals.values()),
        blocking=blocking,
        warnings=warnings,
        checked_at=checked_at,
    )


def _totals(by_provider: dict[ProviderName, list[CampaignLine]]) -> list[ProviderTotals]:
    totals: dict[tuple[ProviderName, str], ProviderTotals] = {}
    for provider, lines in sorted(by_provider.items()):
        for line in lines:
            key = (provider, line.payout.currency.value)
            total = totals.setdefault(
                key, ProviderTotals(provider=provider, currency=line.payout.currency)
            )
            total.lines += 1
            total.amount += line.payout.amount
    return list(totals.values())


def _quote_groups(by_provider: dict[ProviderName, list[CampaignLine]]) -> list[QuoteGroup]:
    counts: Counter[tuple[Any, ...]] = Counter()
    for provider, lines in by_provider.items():
        if not capabilities_of(provider).quotes_payouts:
            continue
        for line in lines:
            p = line.payout
            counts[(provider, p.country, p.operator, p.currency, p.amount)] += 1
    return [
        QuoteGroup(
            provider=key[0],
            country=key[1],
            operator=key[2],
            currency=key[3],
            amount=key[4],
            lines=n,
        )
        for key, n in sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    ]


def _group_key(group: QuoteGroup) -> tuple[Any, ...]:
    return (group.provider, group.country, group.operator, group.currency, group.amount)
