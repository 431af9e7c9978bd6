"""The operations layer: the only code that starts money movement.

Each function checks what it is given, derives the workflow id, the fingerprint, the search
attributes and the summary, and starts the workflow exactly once per business reference
(:func:`~momoflow.operations.starting.start_once`). The gateway's routes, the finance
console, the Python client and the CLIs translate to and from these; they never start a
payment workflow themselves.

* :mod:`~momoflow.operations.transactions`: :func:`start_payout`, :func:`start_payin`;
* :mod:`~momoflow.operations.refunds`: :func:`start_refund`;
* :mod:`~momoflow.operations.campaigns`: ``submit_campaign_file`` (inspect, store, take a
  pre-flight slot, start) and :func:`submit_campaign`; ``campaign_progress``,
  ``campaign_report`` and the controls ``approve_campaign``, ``pause_campaign``,
  ``resume_campaign``, ``cancel_campaign`` and ``retry_campaign``, for the business API and
  the finance console alike;
* :mod:`~momoflow.operations.starting`: :func:`start_once` and the errors of a refused start.

(A campaign's child payouts are started by the campaign workflow itself, with the same
workflow id, reuse policy, fingerprint memo and search attributes as
:func:`start_payout`: ``workflows/campaign.py``.)
"""

from momoflow.operations.campaigns import submit_campaign
from momoflow.operations.refunds import PayinNotRefundable, RefundNotSupported, start_refund
from momoflow.operations.starting import (
    RecordsUnavailable,
    ReferenceInUse,
    RequestProblems,
    Started,
    StartRefused,
    UnencryptedClient,
    start_once,
    start_recorded,
)
from momoflow.operations.transactions import start_payin, start_payout

__all__ = [
    "PayinNotRefundable",
    "RecordsUnavailable",
    "ReferenceInUse",
    "RefundNotSupported",
    "RequestProblems",
    "StartRefused",
    "Started",
    "UnencryptedClient",
    "start_once",
    "start_recorded",
    "start_payin",
    "start_payout",
    "start_refund",
    "submit_campaign",
]
