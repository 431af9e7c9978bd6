"""Campaigns: start a checked, stored campaign file's workflow once per reference.

The caller (the gateway's ``POST /v1/campaigns``) has already read and inspected the file,
stored it under its SHA-256 and taken a pre-flight slot; :func:`submit_campaign` derives
the fingerprint, the search attributes and the summary, and starts the
:class:`~workflows.campaign.CampaignWorkflow` with ``REJECT_DUPLICATE``.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from momoflow import search_attributes as sa
from momoflow.campaigns.models import CampaignInput, CampaignPhase
from momoflow.contract import CAMPAIGN_WORKFLOW
from momoflow.ids import workflow_task_queue
from momoflow.operations.starting import start_once
from momoflow.settings import Settings

__all__ = ["campaign_fingerprint", "submit_campaign"]


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
