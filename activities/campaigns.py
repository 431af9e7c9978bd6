"""Campaign activities: everything a campaign does outside its workflow.

They read and write the campaign store (the uploaded file, the checked lines, the outcomes)
so that Temporal history only ever holds counters, cursors and the lines in flight. Provider
calls made for pre-flight (quotes, balances, availability) are *not* here: they are the
provider activities, on each provider's rate-limited task queue.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

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
from momoflow.campaigns.store import CampaignStore
from momoflow.ids import payout_workflow_id
from momoflow.models import PayoutState, ProviderName
from momoflow.money import format_amount
from momoflow.providers.capabilities import CAPABILITIES
from momoflow.settings import Settings

#: Problems carried in the workflow (the store keeps them all).
FIRST_PROBLEMS = 50
#: Workflow ids per visibility query when looking for earlier payouts.
ID_BATCH = 100


class CampaignActivities:
    """Campaign store and visibility work, injected with settings, store and client."""

    def __init__(self, settings: Settings, store: CampaignStore, client: Client) -> None:
        self._settings = settings
        self._store = store
        self._client = client

    @activity.defn(name="prepare_campaign")
    async def prepare_campaign(self, campaign: CampaignInput) -> PreparedCampaign:
        """Check every line of the uploaded file, store the valid ones per provider and the
        problems of the others; nothing is paid here. Safe to repeat."""
        try:
            data = await asyncio.to_thread(
                self._store.upload, campaign.campaign_id, campaign.file_format, campaign.file_sha256
            )
        except FileNotFoundError as exc:
            raise ApplicationError(
                str(exc), type="CampaignFileMissing", non_retryable=True
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
                type="CampaignFileRejected",
                non_retryable=True,
            ) from None
        activity.heartbeat("lines checked")
        problems = list(checked.problems)
        ids = {
            number: payout_workflow_id(campaign.merchant, request.reference)
            for number, request in checked.requests.items()
        }
        existing = await self._existing_workflows(sorted(ids.values()))
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
            )
            if CAPABILITIES[request.provider].per_request_callback:
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
        preflight = await asyncio.to_thread(self._finish_preflight, checks)
        await asyncio.to_thread(self._store.save_preflight, checks.campaign_id, preflight)
        return preflight

    @activity.defn(name="read_campaign_lines")
    async def read_lines(self, request: ReadLines) -> list[CampaignLine]:
        """A slice of one provider's queue of valid lines."""
        return await asyncio.to_thread(
            self._store.read_lines,
            request.campaign_id,
            request.provider,
            request.start,
            request.count,
        )

    @activity.defn(name="record_campaign_outcomes")
    async def record_outcomes(self, batch: OutcomeBatch) -> None:
        """Write one batch of line outcomes (the same batch number replaces itself)."""
        await asyncio.to_thread(
            self._store.save_outcomes, batch.campaign_id, batch.batch, batch.outcomes
        )

    @activity.defn(name="existing_payout")
    async def existing_payout(self, workflow_id: str) -> ExistingPayout:
        """The campaign and settled outcome of a payout that already existed."""
        handle = self._client.get_workflow_handle(workflow_id)
        description = await handle.describe()
        campaign = description.typed_search_attributes.get(sa.CAMPAIGN)
        try:
            state = await handle.query("state", result_type=PayoutState)
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

    def _finish_preflight(self, checks: PreflightChecks) -> Preflight:
        prepared = checks.prepared
        quoted = {_group_key(q.group): q.fees for q in checks.quotes if q.fees is not None}
        rates: dict[ProviderName, float] = {}
        for q in checks.quotes:
            if q.fees is not None and q.group.amount > 0:
                rate = q.fees / q.group.amount
                rates[q.group.provider] = max(rates.get(q.group.provider, 0.0), rate)
        totals = {(t.provider, t.currency): t.model_copy() for t in prepared.totals}
        for provider in prepared.lines_by_provider:
            quotes_payouts = CAPABILITIES[provider].quotes_payouts
            for line in self._store.iter_lines(checks.campaign_id, provider):
                payout = line.payout
                total = totals[(provider, payout.currency)]
                if not quotes_payouts:
                    total.fees_unknown_lines += 1
                    continue
                key = (provider, payout.country, payout.operator, payout.currency, payout.amount)
                if key in quoted:
                    total.fees += quoted[key]
                    total.fees_quoted_lines += 1
                elif provider in rates:
                    total.fees += math.ceil(payout.amount * rates[provider])
                    total.fees_estimated_lines += 1
                else:
                    total.fees_unknown_lines += 1
        blocking: list[str] = []
        warnings: list[str] = []
        for (provider, currency), total in sorted(totals.items()):
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
                    blocking.append(
                        f"{provider.value} {currency.value} balance "
                        f"{format_amount(total.balance, currency)} is short by "
                        f"{format_amount(total.short_by, currency)} of the "
                        f"{format_amount(total.required, currency)} the campaign needs "
                        "(amounts plus fees)"
                    )
            elif provider in checks.balances:
                warnings.append(f"{provider.value} reports no {currency.value} balance")
            if total.fees_estimated_lines:
                warnings.append(
                    f"{provider.value}: fees of {total.fees_estimated_lines} line(s) are "
                    "estimated at the highest quoted rate"
                )
            if total.fees_unknown_lines:
                warnings.append(
                    f"{provider.value}: fees of {total.fees_unknown_lines} line(s) are not "
                    "known before payment (the provider quotes nothing in advance)"
                )
        for provider, errors in sorted(checks.errors.items()):
            warnings.extend(f"{provider.value} {error}" for error in errors)
        return Preflight(
            prepared=prepared,
            totals=list(totals.values()),
            blocking=blocking,
            warnings=warnings,
            checked_at=activity.info().current_attempt_scheduled_time,
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
        if not CAPABILITIES[provider].quotes_payouts:
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
