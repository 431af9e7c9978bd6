"""The names every side of momoflow agrees on: one place, imported, never copied.

Workflows, the gateway, the client, activities and the CLIs reach each other through
Temporal by *name*: workflow types, signals, queries, updates, task queues and the ``type``
of an ``ApplicationError``. A name written twice can drift apart silently (a renamed query
answers "unknown query" only at run time), so each is written here once. This module imports
only :mod:`momoflow.ids` (which imports only models), so workflow code can import it inside
the sandbox.

These strings are part of recorded histories and of running workflows: changing one breaks
replay and every workflow started before the change. Add names; never rename one.
"""

from __future__ import annotations

from momoflow.ids import (
    DEFAULT_TASK_QUEUE_PREFIX,
    campaign_task_queue,
    limits_task_queue,
    notification_task_queue,
    provider_task_queue,
    status_reads_task_queue,
    task_queue_prefix,
    workflow_task_queue,
)

__all__ = [
    "REQUEST_ID_HEADER",
    "FINGERPRINT_MEMO",
    "INVALID_NOTIFICATION_URL",
    "NOTIFICATION_SECRET_MISSING",
    "MERCHANT_ENDPOINT_UNAVAILABLE",
    "MERCHANT_ENDPOINT_GONE",
    "WEBHOOK_INBOX_GAVE_UP",
    "SHARED_READS_UNAVAILABLE",
    "CAMPAIGN_FILE_MISSING",
    "CAMPAIGN_STEP_FAILED",
    "CAMPAIGN_STORE_UNAVAILABLE",
    "DELIVER_INBOX_EVENTS_ACTIVITY",
    "DELIVER_NOTIFICATION_ACTIVITY",
    "CLAIM_TRANSACTION_ACTIVITY",
    "RECORD_TRANSACTION_ACTIVITY",
    "SWEEP_STATUS_READS_ACTIVITY",
    "REQUEST_STATUS_READ_ACTIVITY",
    "ACQUIRE_PREFLIGHT_UPDATE",
    "ANSWER_SIGNAL",
    "APPROVE_UPDATE",
    "CAMPAIGN_FILE_REJECTED",
    "CAMPAIGN_WORKFLOW",
    "CANCEL_UPDATE",
    "CONFLICT_ERROR_TYPES",
    "CREATED_UPDATE",
    "DAILY_REPORT_WORKFLOW",
    "DEFAULT_TASK_QUEUE_PREFIX",
    "DUPLICATE_REFERENCE",
    "IDEMPOTENCY_CONFLICT",
    "INBOX_SIGNAL",
    "LEASE_UPDATE",
    "LINE_SETTLED_SIGNAL",
    "MERCHANT_LIMITS_WORKFLOW",
    "NOTIFICATION_DESTINATION_REFUSED",
    "PAUSE_UPDATE",
    "PAYIN_WORKFLOW",
    "PAYOUT_WORKFLOW",
    "PROGRESS_QUERY",
    "PROVIDER_CONFLICT",
    "PROVIDER_EVENT_SIGNAL",
    "PROVIDER_NOT_CONFIGURED",
    "QUOTE_EXPIRED",
    "READ_SIGNAL",
    "RECHECK_SIGNAL",
    "REFUND_WORKFLOW",
    "RELEASE_PREFLIGHTS_UPDATE",
    "REPORT_QUERY",
    "REPORT_WORKFLOW",
    "RESOLUTION_REFUSED",
    "RESOLVE_UPDATE",
    "RESUME_UPDATE",
    "RETRY_UPDATE",
    "REVOKED_SESSION_WORKFLOW",
    "STATE_QUERY",
    "STATUS_READER_WORKFLOW",
    "SUMMARY_QUERY",
    "SWEEP_WORKFLOW",
    "TRANSACTION_WORKFLOWS",
    "WEBHOOK_INBOX_WORKFLOW",
    "campaign_task_queue",
    "limits_task_queue",
    "notification_task_queue",
    "provider_task_queue",
    "status_reads_task_queue",
    "task_queue_prefix",
    "workflow_task_queue",
]

# -- HTTP -------------------------------------------------------------------------------------

#: The gateway's id of each answer, echoed from the caller's when safe; the client puts it on
#: every error.
REQUEST_ID_HEADER = "X-Request-Id"

# -- memo -------------------------------------------------------------------------------------

#: Memo key holding the keyed fingerprint of the request that started a transaction: the
#: same reference with another body is a conflict, not a replay.
FINGERPRINT_MEMO = "request_fingerprint"

# -- workflow types ---------------------------------------------------------------------------

#: One payout (``workflows/payout.py``).
PAYOUT_WORKFLOW = "PayoutWorkflow"
#: One payin (``workflows/payin.py``).
PAYIN_WORKFLOW = "PayinWorkflow"
#: One refund of a payin (``workflows/refund.py``).
REFUND_WORKFLOW = "RefundWorkflow"
#: The three transaction workflows, which answer :data:`STATE_QUERY` with their state.
TRANSACTION_WORKFLOWS = (PAYOUT_WORKFLOW, PAYIN_WORKFLOW, REFUND_WORKFLOW)
#: One bulk campaign (``workflows/campaign.py``).
CAMPAIGN_WORKFLOW = "CampaignWorkflow"
#: The scheduled sweep of ``reconciling`` transactions (``workflows/reconcile.py``).
SWEEP_WORKFLOW = "ReconcileSweepWorkflow"
#: The scheduled comparison of momoflow's outcomes with the providers' lists.
REPORT_WORKFLOW = "ReconcileReportWorkflow"
#: The daily report of one provider (MOBILE-PAY's report file).
DAILY_REPORT_WORKFLOW = "ReconcileDailyReportWorkflow"
#: The per-provider webhook inbox (``workflows/inbox.py``).
WEBHOOK_INBOX_WORKFLOW = "WebhookInboxWorkflow"
#: The per-prefix reader that paces MOBILE-PAY status reads (``workflows/status_reads.py``).
STATUS_READER_WORKFLOW = "StatusReaderWorkflow"
#: A merchant's request limits and pre-flight slots (``workflows/merchant_limits.py``).
MERCHANT_LIMITS_WORKFLOW = "MerchantLimitsWorkflow"
#: The marker of a revoked codec session (``workflows/codec_sessions.py``).
REVOKED_SESSION_WORKFLOW = "RevokedCodecSessionWorkflow"

# -- signals ----------------------------------------------------------------------------------

#: A normalised provider event (webhook) for a transaction workflow.
PROVIDER_EVENT_SIGNAL = "provider_event"
#: An operator or the sweep asks a ``reconciling`` transaction to read its status again.
RECHECK_SIGNAL = "recheck"
#: The status reader's answer to a transaction workflow.
ANSWER_SIGNAL = "status_read"
#: A transaction workflow asks the status reader for a read.
READ_SIGNAL = "read"
#: A verified webhook delivery for the inbox workflow.
INBOX_SIGNAL = "webhook"
#: A campaign's child payout tells its parent it settled.
LINE_SETTLED_SIGNAL = "line_settled"

# -- queries ----------------------------------------------------------------------------------

#: The current state of a transaction, inbox, status reader or limits workflow.
STATE_QUERY = "state"
#: A campaign's progress.
PROGRESS_QUERY = "progress"
#: The sweep's report so far.
REPORT_QUERY = "report"
#: The reconciliation report's summary.
SUMMARY_QUERY = "summary"

# -- updates ----------------------------------------------------------------------------------

#: An operator settles a ``reconciling`` transaction (audited).
RESOLVE_UPDATE = "resolve"
#: A payin answers once the provider accepted it (checkout URL, OTP prompt).
CREATED_UPDATE = "created"
#: Campaign controls.
APPROVE_UPDATE = "approve"
PAUSE_UPDATE = "pause"
RESUME_UPDATE = "resume"
CANCEL_UPDATE = "cancel"
RETRY_UPDATE = "retry"
#: A gateway leases request tokens from a merchant's limits workflow.
LEASE_UPDATE = "lease_requests"
#: A gateway asks for a pre-flight slot for a new campaign.
ACQUIRE_PREFLIGHT_UPDATE = "acquire_preflight"
#: A gateway frees the slots of campaigns no longer in pre-flight.
RELEASE_PREFLIGHTS_UPDATE = "release_preflights"

# -- activities called by name --------------------------------------------------------------
# (their workflows run on another task queue than the activity's class, or the activity is
# registered from a module workflow code must not import)

#: Signal-with-start the status reader with one request (workflows task queue).
REQUEST_STATUS_READ_ACTIVITY = "request_status_read"
#: One list read for a batch of status requests, then the answers (provider reads queue).
SWEEP_STATUS_READS_ACTIVITY = "sweep_status_reads"
#: POST one signed notification to a merchant (notifications task queue).
DELIVER_NOTIFICATION_ACTIVITY = "deliver_notification"
#: Activity: write a transaction's state to the record store (``activities/records.py``).
RECORD_TRANSACTION_ACTIVITY = "record_transaction"
#: Activity: claim a campaign line's reference in the record store before paying it.
CLAIM_TRANSACTION_ACTIVITY = "claim_transaction"
#: Signal a batch of inbox events to their transactions.
DELIVER_INBOX_EVENTS_ACTIVITY = "deliver_inbox_events"

# -- ApplicationError types -------------------------------------------------------------------
# A provider error crosses the activity boundary as an ApplicationError whose ``type`` is its
# class name (``ProviderError.type_name``); workflows decide on these names.
# tests/test_contract.py checks each against its class in momoflow.providers.errors.

#: CaurisFlux's quote expired before the create: re-quote (``QuoteExpired``).
QUOTE_EXPIRED = "QuoteExpired"
#: The provider holds another transaction for the key or reference: outcome unknown.
PROVIDER_CONFLICT = "ProviderConflict"
IDEMPOTENCY_CONFLICT = "IdempotencyConflict"
DUPLICATE_REFERENCE = "DuplicateReference"
#: Non-retryable errors that are still *not* a refusal: the transaction reconciles.
CONFLICT_ERROR_TYPES = frozenset({PROVIDER_CONFLICT, IDEMPOTENCY_CONFLICT, DUPLICATE_REFERENCE})

# Errors momoflow raises itself, with no exception class behind them.

#: A provider the request names has no settings in this deployment.
PROVIDER_NOT_CONFIGURED = "ProviderNotConfigured"
#: An operator's resolution of a ``reconciling`` transaction was refused.
RESOLUTION_REFUSED = "ResolutionRefused"
#: A campaign file cannot be read or checked (no retry can cure it).
CAMPAIGN_FILE_REJECTED = "CampaignFileRejected"
#: The campaign store did not answer: the step is retried a bounded while.
CAMPAIGN_STORE_UNAVAILABLE = "CampaignStoreUnavailable"
#: A campaign step failed in a way no retry can cure.
CAMPAIGN_STEP_FAILED = "CampaignStepFailed"
#: The uploaded campaign file is not in the store.
CAMPAIGN_FILE_MISSING = "CampaignFileMissing"
#: The shared status reader could not be asked (retried).
SHARED_READS_UNAVAILABLE = "SharedReadsUnavailable"
#: A webhook inbox gave up at its horizon: the events are kept in its result.
WEBHOOK_INBOX_GAVE_UP = "WebhookInboxGaveUp"
#: Notification delivery: the merchant's endpoint answered that it is gone (404/410).
MERCHANT_ENDPOINT_GONE = "MerchantEndpointGone"
#: Notification delivery: the merchant's endpoint failed or did not answer (retried).
MERCHANT_ENDPOINT_UNAVAILABLE = "MerchantEndpointUnavailable"
#: Notification delivery: the merchant has no signing secret.
NOTIFICATION_SECRET_MISSING = "NotificationSecretMissing"
#: Notification delivery: the URL is not one momoflow may call.
INVALID_NOTIFICATION_URL = "InvalidNotificationUrl"
#: A notification URL resolved to an address momoflow may not reach.
NOTIFICATION_DESTINATION_REFUSED = "NotificationDestinationRefused"
