"""Activity options and helpers shared by momoflow's workflows."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from momoflow.ids import (
        notification_task_queue,
        provider_task_queue,
        status_reads_task_queue,
        task_queue_prefix,
    )
    from momoflow.models import Failure, ProviderName

#: Provider calls: back off from 1 s to 1 min; attempts are bounded by each call's
#: schedule-to-close deadline, so a provider outage is waited out, visibly.
PROVIDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
)


def provider_queue(provider: ProviderName) -> str:
    """The task queue of ``provider``'s HTTP activities that pairs with this workflow's.

    ``<prefix>-workflows`` pairs with ``<prefix>-provider-<name>``, so a deployment (or a
    test) with another prefix keeps the pairing without storing queue names in inputs.
    """
    return provider_task_queue(provider, task_queue_prefix(workflow.info().task_queue))


def status_reads_queue(provider: ProviderName) -> str:
    """The task queue of ``provider``'s batched status reads that pairs with this
    workflow's (no rate limit: the reader paces them, :mod:`momoflow.status_reads`)."""
    return status_reads_task_queue(provider, task_queue_prefix(workflow.info().task_queue))


def notification_queue() -> str:
    """The task queue of merchant notifications that pairs with this workflow's."""
    return notification_task_queue(task_queue_prefix(workflow.info().task_queue))


def history_is_long(limit: int) -> bool:
    """Whether this run's history has reached ``limit`` events, or Temporal suggests
    continuing as new."""
    info = workflow.info()
    return info.get_current_history_length() >= limit or info.is_continue_as_new_suggested()


def application_error(err: ActivityError) -> ApplicationError | None:
    """The ``ApplicationError`` an activity failed with, or None (timeout, cancel)."""
    cause = err.cause
    return cause if isinstance(cause, ApplicationError) else None


def failure_from(err: ActivityError, *, default_code: str) -> Failure:
    """A merchant-facing :class:`Failure` for an activity error."""
    app = application_error(err)
    if app is not None:
        details = app.details[0] if app.details else {}
        provider_code = details.get("provider_code") if isinstance(details, dict) else None
        message = details.get("message") if isinstance(details, dict) else None
        return Failure(
            code=_snake(app.type or default_code),
            message=str(message or app.message),
            provider_code=provider_code,
        )
    cause = err.cause
    if isinstance(cause, TimeoutError):
        return Failure(code=default_code, message=f"no answer before the deadline ({cause})")
    return Failure(code=default_code, message=str(cause or err))


def _snake(name: str) -> str:
    out = [f"_{c.lower()}" if c.isupper() else c for c in name]
    return "".join(out).lstrip("_")
