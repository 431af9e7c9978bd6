"""Starting a payout or payin workflow exactly once per business reference.

This is the one place that turns a checked business request into a running workflow; the
gateway and :func:`momoflow.client.start_payout_on_temporal` both call it, so a payout
started either way is the same payout:

* the workflow id is ``payout-{merchant}-{reference}`` (``payin-…`` for payins);
* the reuse policy is ``REJECT_DUPLICATE`` and the conflict policy ``FAIL``: no reference can
  ever start a second workflow, even after the first one has finished;
* a keyed fingerprint of the request goes in the memo (:data:`FINGERPRINT_MEMO`): the same
  reference with the same request is recognised as a retry, with another request it is a
  :class:`ReferenceInUse`;
* the input carries the timings and the provider callback URL of the settings in force at
  start, and the search attributes make the workflow findable at once.

Nothing here knows about HTTP: callers map :class:`RequestProblems` and
:class:`ReferenceInUse` to their own errors (the gateway to 422 and 409).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from momoflow import search_attributes as sa
from momoflow import telemetry
from momoflow.codec import EncryptionCodec
from momoflow.ids import payin_workflow_id, payout_workflow_id, workflow_task_queue
from momoflow.models import Direction, PayinInput, PayoutInput, TransactionStatus
from momoflow.money import format_amount
from momoflow.privacy import mask_phone
from momoflow.providers.capabilities import CAPABILITIES
from momoflow.requests import (
    FieldProblem,
    PayinRequest,
    PayoutRequest,
    check_notify_url,
    check_payin_request,
    check_payout_request,
)
from momoflow.settings import Settings

__all__ = [
    "FINGERPRINT_MEMO",
    "PAYIN_WORKFLOW",
    "PAYOUT_WORKFLOW",
    "ReferenceInUse",
    "RequestProblems",
    "StartRefused",
    "Started",
    "UnencryptedClient",
    "start_once",
    "start_payin",
    "start_payout",
]

#: Memo key holding the request fingerprint of a transaction workflow.
FINGERPRINT_MEMO = "request_fingerprint"
#: Registered workflow type names (``@workflow.defn(name=...)``); used by name so that
#: starting a workflow does not import workflow code.
PAYOUT_WORKFLOW = "PayoutWorkflow"
PAYIN_WORKFLOW = "PayinWorkflow"

InputT = TypeVar("InputT", PayoutInput, PayinInput)


class StartRefused(Exception):
    """Nothing was started."""


class RequestProblems(StartRefused):
    """The request breaks business rules; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} in the request; nothing was started"
        )


class UnencryptedClient(StartRefused):
    """The Temporal client would store the request (phone number, name) in clear: it does
    not carry momoflow's encrypting data converter."""

    def __init__(self) -> None:
        super().__init__(
            "this Temporal client does not encrypt payloads, so the recipient's phone number "
            "and name would be stored in clear in the workflow history; connect it with "
            "momoflow.temporal.connect_client(settings.temporal, codec=settings.codec); "
            "nothing was started"
        )


class ReferenceInUse(StartRefused):
    """The reference was already used for a different request (another fingerprint)."""

    def __init__(self, what: str, reference: str) -> None:
        self.what = what
        self.reference = reference
        super().__init__(
            f"reference {reference!r} was already used for a different {what}; use a new reference"
        )


@dataclass(frozen=True)
class Started(Generic[InputT]):
    """A started (or already running) transaction workflow.

    ``created`` is False when the workflow already existed with the same request: a
    retried call, which must be answered with the existing transaction's state.
    """

    workflow_id: str
    created: bool
    input: InputT


async def start_once(
    client: Client,
    workflow: str,
    workflow_input: BaseModel,
    *,
    workflow_id: str,
    task_queue: str,
    fingerprint: str,
    search_attributes: TypedSearchAttributes,
    summary: str,
    what: str,
    reference: str,
) -> bool:
    """Start the workflow; False when it already exists with the same fingerprint.

    Raises :class:`ReferenceInUse` when it exists with another fingerprint, and
    :class:`UnencryptedClient` (before anything is sent) when ``client`` would store the
    input in clear. A finished workflow is never started again (``REJECT_DUPLICATE``).
    """
    if not isinstance(client.data_converter.payload_codec, EncryptionCodec):
        raise UnencryptedClient()
    try:
        await client.start_workflow(
            workflow,
            workflow_input,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            memo={FINGERPRINT_MEMO: fingerprint},
            search_attributes=search_attributes,
            static_summary=summary,
        )
    except WorkflowAlreadyStartedError:
        description = await client.get_workflow_handle(workflow_id).describe()
        same = await description.memo_value(FINGERPRINT_MEMO, None) == fingerprint
        telemetry.note_transaction_start(
            kind=what,
            workflow_id=workflow_id,
            search_attributes=search_attributes,
            outcome="existing" if same else "reference_conflict",
        )
        if not same:
            raise ReferenceInUse(what, reference) from None
        return False
    telemetry.note_transaction_start(
        kind=what, workflow_id=workflow_id, search_attributes=search_attributes, outcome="created"
    )
    return True


async def start_payout(
    client: Client,
    merchant: str,
    request: PayoutRequest,
    settings: Settings,
    *,
    requested_at: datetime | None = None,
) -> Started[PayoutInput]:
    """Check ``request`` and start its :class:`~workflows.payout.PayoutWorkflow` once.

    Raises :class:`RequestProblems` (nothing started) or :class:`ReferenceInUse`;
    ``ValueError`` for a merchant id that cannot be part of a workflow id.
    """
    problems = check_payout_request(request) + _notify_url_problems(request.notify_url, settings)
    if problems:
        raise RequestProblems(problems)
    workflow_id = payout_workflow_id(merchant, request.reference)
    payout_input = request.to_input(
        merchant=merchant,
        secret=settings.fingerprint_secret.get_secret_value(),
        requested_at=requested_at or datetime.now(UTC),
        timings=settings.timings_for(request.provider),
        confirm_final_webhooks=settings.confirms_payout_webhooks(request.provider),
    )
    if CAPABILITIES[request.provider].per_request_callback:
        payout_input.provider_callback_url = settings.webhook_url(request.provider)
    created = await start_once(
        client,
        PAYOUT_WORKFLOW,
        payout_input,
        workflow_id=workflow_id,
        task_queue=workflow_task_queue(settings.task_queue_prefix),
        fingerprint=payout_input.request_fingerprint,
        search_attributes=sa.transaction_attributes(
            direction=Direction.PAYOUT.value,
            provider=request.provider.value,
            status=TransactionStatus.CREATED.value,
            country=request.country.value,
            operator=request.operator.value,
            amount=request.amount,
            currency=request.currency.value,
            merchant=merchant,
            reference=request.reference,
        ),
        summary=(
            f"Payout {format_amount(request.amount, request.currency)} to "
            f"{mask_phone(request.recipient.phone)} via {request.provider.value}/"
            f"{request.operator.value}"
        ),
        what="payout",
        reference=request.reference,
    )
    return Started(workflow_id=workflow_id, created=created, input=payout_input)


async def start_payin(
    client: Client,
    merchant: str,
    request: PayinRequest,
    settings: Settings,
    *,
    requested_at: datetime | None = None,
) -> Started[PayinInput]:
    """Check ``request`` and start its :class:`~workflows.payin.PayinWorkflow` once.

    Raises :class:`RequestProblems` (nothing started) or :class:`ReferenceInUse`;
    ``ValueError`` for a merchant id that cannot be part of a workflow id. It does not wait
    for the provider's payment link: the gateway does that with the ``created`` update.
    """
    problems = check_payin_request(request) + _notify_url_problems(request.notify_url, settings)
    if problems:
        raise RequestProblems(problems)
    workflow_id = payin_workflow_id(merchant, request.reference)
    payin_input = request.to_input(
        merchant=merchant,
        secret=settings.fingerprint_secret.get_secret_value(),
        requested_at=requested_at or datetime.now(UTC),
        timings=settings.payin_timings_for(request.provider),
    )
    if CAPABILITIES[request.provider].per_request_callback:
        payin_input.provider_callback_url = settings.webhook_url(request.provider)
    who = mask_phone(request.customer.phone) if request.customer.phone else "a customer"
    created = await start_once(
        client,
        PAYIN_WORKFLOW,
        payin_input,
        workflow_id=workflow_id,
        task_queue=workflow_task_queue(settings.task_queue_prefix),
        fingerprint=payin_input.request_fingerprint,
        search_attributes=sa.transaction_attributes(
            direction=Direction.PAYIN.value,
            provider=request.provider.value,
            status=TransactionStatus.CREATED.value,
            country=request.country.value,
            operator=request.operator.value if request.operator else request.mode.value,
            amount=request.amount,
            currency=request.currency.value,
            merchant=merchant,
            reference=request.reference,
        ),
        summary=(
            f"Payin {format_amount(request.amount, request.currency)} from {who} via "
            f"{request.provider.value} ({request.mode.value})"
        ),
        what="payin",
        reference=request.reference,
    )
    return Started(workflow_id=workflow_id, created=created, input=payin_input)


def _notify_url_problems(url: object | None, settings: Settings) -> list[FieldProblem]:
    problem = check_notify_url(
        str(url) if url else None,
        local=settings.env in ("local", "test"),
        policy=settings.notify_policy(),
    )
    return [problem] if problem else []
