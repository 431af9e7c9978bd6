"""Starting a workflow exactly once per business reference, and the errors of a refused start.

Every start of money movement (payouts, payins, refunds, campaigns) goes through
:func:`start_once`:

* the workflow id comes from the business reference (``payout-{merchant}-{reference}``…);
* the reuse policy is ``REJECT_DUPLICATE`` and the conflict policy ``FAIL``: no reference can
  ever start a second workflow, even after the first one has finished;
* a fingerprint of the request goes in the memo (:data:`~momoflow.contract.FINGERPRINT_MEMO`):
  the same reference with the same request is recognised as a retry, with another request it
  is a :class:`ReferenceInUse`;
* the search attributes make the workflow findable at once;
* a client that would store the input in clear is refused before anything is sent.

Payouts, payins and refunds are first claimed in the record store
(:func:`start_recorded`): the record is inserted under (merchant, kind, reference), then the
workflow is started, and "already started" is success. A reference whose record exists is
never started again, even once Temporal has forgotten the workflow.

Nothing here knows about HTTP: callers map :class:`RequestProblems`,
:class:`ReferenceInUse` and :class:`RecordsUnavailable` to their own errors (the gateway to
422, 409 and 503).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from momoflow import telemetry
from momoflow.business_requests import FieldProblem
from momoflow.codec import EncryptionCodec
from momoflow.contract import FINGERPRINT_MEMO
from momoflow.models import PayinInput, PayoutInput, RefundWorkflowInput, TransactionState
from momoflow.records.store import RecordStore, StoredRecord, is_unavailable
from momoflow.records.writes import Kind

log = logging.getLogger("momoflow.operations")

__all__ = [
    "RecordsUnavailable",
    "ReferenceInUse",
    "RequestProblems",
    "StartRefused",
    "Started",
    "UnencryptedClient",
    "start_once",
    "start_recorded",
]

InputT = TypeVar("InputT", PayoutInput, PayinInput, RefundWorkflowInput)


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


class RecordsUnavailable(StartRefused):
    """The record store cannot be reached: nothing was started."""

    def __init__(self) -> None:
        super().__init__(
            "the record store cannot be reached, so nothing was started; retry shortly"
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
    #: The record as the store held it when the transaction already existed.
    existing: StoredRecord | None = None


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
    earlier_fingerprints: Sequence[str] = (),
) -> bool:
    """Start the workflow; False when it already exists with the same fingerprint.

    Raises :class:`ReferenceInUse` when it exists with another fingerprint, and
    :class:`UnencryptedClient` (before anything is sent) when ``client`` would store the
    input in clear. A finished workflow is never started again (``REJECT_DUPLICATE``).
    ``earlier_fingerprints`` are the same request's fingerprints as an earlier version of
    momoflow wrote them: a retry of a request started before an upgrade is still a retry.
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
        same = await description.memo_value(FINGERPRINT_MEMO, None) in {
            fingerprint,
            *earlier_fingerprints,
        }
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


async def start_recorded(
    store: RecordStore,
    kind: Kind,
    initial: TransactionState,
    *,
    fingerprint: str,
    actor: str,
    what: str,
    search_attributes: TypedSearchAttributes,
    start: Callable[[], Awaitable[bool]],
    earlier_fingerprints: Sequence[str] = (),
) -> tuple[bool, StoredRecord | None]:
    """Claim the record, then ``start`` the workflow (a :func:`start_once` call).

    Returns ``(created, existing)``: ``existing`` is the record when the reference was
    already in the store with the same request (nothing is started again, even if Temporal
    no longer has its workflow). Raises :class:`ReferenceInUse` for another request under
    the same reference, :class:`RecordsUnavailable` when the store cannot be reached (nothing
    started). A claim whose start failed is removed again, so that the caller, told that
    nothing started, may send another request under the reference.
    """
    try:
        claim = await store.claim(kind, initial, fingerprint=fingerprint, actor=actor)
    except Exception as exc:
        if is_unavailable(exc):
            raise RecordsUnavailable() from None
        raise
    record = claim.record
    if not claim.inserted:
        if record.fingerprint not in {fingerprint, *earlier_fingerprints}:
            telemetry.note_transaction_start(
                kind=what,
                workflow_id=record.workflow_id,
                search_attributes=search_attributes,
                outcome="reference_conflict",
            )
            raise ReferenceInUse(what, initial.reference)
        if record.started:
            telemetry.note_transaction_start(
                kind=what,
                workflow_id=record.workflow_id,
                search_attributes=search_attributes,
                outcome="existing",
            )
            return False, record
    try:
        created = await start()
    except BaseException:
        if claim.inserted:
            with contextlib.suppress(Exception):
                await store.forget_unstarted(record.id)
        raise
    try:
        await store.mark_started(record.id)
    except Exception as exc:
        # The workflow's first write marks it too.
        log.warning("%s: could not mark the record started (%s)", record.workflow_id, exc)
    return created, None
