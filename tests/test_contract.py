"""The names in ``momoflow.contract`` are the names the code registers, calls and raises.

A workflow, signal, query, update or activity name written as a bare string somewhere would
drift apart from the one its handler registers, and fail only at run time ("unknown query").
These tests check that every name the worker registers is a contract name, that every
contract name is registered where its callers expect it, that each provider error type
matches its exception class, and that no module calls Temporal with a bare string.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity, workflow

from activities.inbox import InboxActivities
from activities.notifications import NotificationActivities
from activities.status_reads import StatusReadActivities
from momoflow import contract
from momoflow.providers import errors
from workflows.campaign import CampaignWorkflow
from workflows.codec_sessions import RevokedCodecSessionWorkflow
from workflows.inbox import WebhookInboxWorkflow
from workflows.merchant_limits import MerchantLimitsWorkflow
from workflows.payin import PayinWorkflow
from workflows.payout import PayoutWorkflow
from workflows.reconcile import (
    ReconcileDailyReportWorkflow,
    ReconcileReportWorkflow,
    ReconcileSweepWorkflow,
)
from workflows.refund import RefundWorkflow
from workflows.status_reads import StatusReaderWorkflow

ROOT = Path(__file__).resolve().parents[1]

WORKFLOW_CLASSES = (
    PayoutWorkflow,
    PayinWorkflow,
    RefundWorkflow,
    CampaignWorkflow,
    ReconcileSweepWorkflow,
    ReconcileReportWorkflow,
    ReconcileDailyReportWorkflow,
    WebhookInboxWorkflow,
    StatusReaderWorkflow,
    MerchantLimitsWorkflow,
    RevokedCodecSessionWorkflow,
)


def definition(cls: type) -> Any:
    return workflow._Definition.must_from_class(cls)


def contract_names(suffix: str) -> dict[str, str]:
    return {
        name: value
        for name, value in vars(contract).items()
        if name.endswith(suffix) and isinstance(value, str)
    }


def test_every_workflow_type_is_a_contract_name_and_every_contract_workflow_exists() -> None:
    registered = {definition(cls).name for cls in WORKFLOW_CLASSES}
    assert registered == set(contract_names("_WORKFLOW").values())


def test_every_signal_query_and_update_a_workflow_registers_is_a_contract_name() -> None:
    signals = set(contract_names("_SIGNAL").values())
    queries = set(contract_names("_QUERY").values())
    updates = set(contract_names("_UPDATE").values())
    for cls in WORKFLOW_CLASSES:
        defn = definition(cls)
        assert set(defn.signals) - {None} <= signals, defn.name
        assert set(defn.queries) - {None} <= queries, defn.name
        assert set(defn.updates) - {None} <= updates, defn.name


@pytest.mark.parametrize("cls", [PayoutWorkflow, PayinWorkflow, RefundWorkflow])
def test_transaction_workflows_answer_what_the_gateway_and_reconciliation_send(cls: type) -> None:
    defn = definition(cls)
    assert defn.name in contract.TRANSACTION_WORKFLOWS
    assert {contract.PROVIDER_EVENT_SIGNAL, contract.RECHECK_SIGNAL} <= set(defn.signals)
    assert contract.STATE_QUERY in defn.queries
    assert contract.RESOLVE_UPDATE in defn.updates


def test_each_workflow_answers_the_names_its_callers_use() -> None:
    assert contract.ANSWER_SIGNAL in definition(PayoutWorkflow).signals
    assert contract.ANSWER_SIGNAL in definition(PayinWorkflow).signals
    assert contract.LINE_SETTLED_SIGNAL in definition(CampaignWorkflow).signals
    assert contract.CREATED_UPDATE in definition(PayinWorkflow).updates
    campaign = definition(CampaignWorkflow)
    assert contract.PROGRESS_QUERY in campaign.queries
    assert {
        contract.APPROVE_UPDATE,
        contract.PAUSE_UPDATE,
        contract.RESUME_UPDATE,
        contract.CANCEL_UPDATE,
        contract.RETRY_UPDATE,
    } <= set(campaign.updates)
    limits = definition(MerchantLimitsWorkflow)
    assert {
        contract.LEASE_UPDATE,
        contract.ACQUIRE_PREFLIGHT_UPDATE,
        contract.RELEASE_PREFLIGHTS_UPDATE,
    } <= set(limits.updates)
    assert contract.STATE_QUERY in limits.queries
    assert contract.READ_SIGNAL in definition(StatusReaderWorkflow).signals
    assert contract.INBOX_SIGNAL in definition(WebhookInboxWorkflow).signals
    assert contract.REPORT_QUERY in definition(ReconcileSweepWorkflow).queries
    assert contract.SUMMARY_QUERY in definition(ReconcileReportWorkflow).queries


def test_activities_called_by_name_are_registered_under_that_name() -> None:
    def name(fn: Any) -> str:
        defn = activity._Definition.from_callable(fn)
        assert defn is not None and defn.name is not None
        return defn.name

    assert name(StatusReadActivities.request_status_read) == (contract.REQUEST_STATUS_READ_ACTIVITY)
    assert name(StatusReadActivities.sweep_status_reads) == contract.SWEEP_STATUS_READS_ACTIVITY
    assert name(NotificationActivities.deliver_notification) == (
        contract.DELIVER_NOTIFICATION_ACTIVITY
    )
    assert name(InboxActivities.deliver_inbox_events) == contract.DELIVER_INBOX_EVENTS_ACTIVITY


def subclasses(cls: type) -> Iterator[type]:
    yield cls
    for sub in cls.__subclasses__():
        yield from subclasses(sub)


def test_provider_error_types_match_their_exception_classes() -> None:
    for name, cls in (
        (contract.QUOTE_EXPIRED, errors.QuoteExpired),
        (contract.PROVIDER_CONFLICT, errors.ProviderConflict),
        (contract.IDEMPOTENCY_CONFLICT, errors.IdempotencyConflict),
        (contract.DUPLICATE_REFERENCE, errors.DuplicateReference),
    ):
        error = cls("m", provider="caurisflux", operation="create_payout")
        assert error.type_name == name
    # A new kind of conflict must reconcile too: the set is every ProviderConflict.
    assert contract.CONFLICT_ERROR_TYPES == {
        cls.__name__ for cls in subclasses(errors.ProviderConflict)
    }
    # Conflicts are not refusals: nothing may treat them as "nothing was created".
    assert not any(
        issubclass(cls, errors.ProviderRejected) for cls in subclasses(errors.ProviderConflict)
    )


def test_momoflow_error_types_do_not_collide_with_provider_error_classes() -> None:
    provider_types = {cls.__name__ for cls in subclasses(errors.IntegrationError)}
    own = set(contract_names("").values()) - provider_types
    named_types = {
        contract.PROVIDER_NOT_CONFIGURED,
        contract.RESOLUTION_REFUSED,
        contract.CAMPAIGN_FILE_REJECTED,
        contract.CAMPAIGN_FILE_MISSING,
        contract.CAMPAIGN_STEP_FAILED,
        contract.CAMPAIGN_STORE_UNAVAILABLE,
        contract.SHARED_READS_UNAVAILABLE,
        contract.WEBHOOK_INBOX_GAVE_UP,
        contract.MERCHANT_ENDPOINT_GONE,
        contract.MERCHANT_ENDPOINT_UNAVAILABLE,
        contract.NOTIFICATION_SECRET_MISSING,
        contract.INVALID_NOTIFICATION_URL,
        contract.NOTIFICATION_DESTINATION_REFUSED,
    }
    assert named_types <= own


#: Client-side calls whose first argument is a Temporal name.
NAMED_CALLS = {
    "query",
    "signal",
    "execute_update",
    "start_update",
    "execute_activity",
    "start_activity",
    "execute_child_workflow",
    "start_child_workflow",
    "start_workflow",
    "execute_workflow",
    "signal_with_start_workflow",
}
#: ``workflow.*`` decorators whose ``name=`` is a Temporal name. (Activities keep literal
#: names in ``@activity.defn``: workflows call them through the method, and the four called
#: by name are checked above.)
NAMED_DECORATORS = {"defn", "signal", "query", "update"}


def python_sources() -> Iterator[Path]:
    for folder in ("momoflow", "workflows", "activities"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            # The sandboxes simulate providers, and momoflow.contract is the one place.
            if "sandbox" in path.parts or path.name == "contract.py":
                continue
            yield path
    yield ROOT / "worker.py"


def bare_names(path: Path, root: Path = ROOT) -> Iterator[str]:
    where = path.relative_to(root)
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        attr = func.attr if isinstance(func, ast.Attribute) else None
        if (
            attr in NAMED_CALLS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield f"{where}:{node.lineno} {attr}({node.args[0].value!r})"
        for keyword in node.keywords:
            literal = isinstance(keyword.value, ast.Constant) and isinstance(
                keyword.value.value, str
            )
            if not literal:
                continue
            decorator_of = func.value if isinstance(func, ast.Attribute) else None
            on_workflow = isinstance(decorator_of, ast.Name) and decorator_of.id == "workflow"
            if keyword.arg == "name" and attr in NAMED_DECORATORS and on_workflow:
                yield f"{where}:{node.lineno} {attr}(name=...)"
            if (
                keyword.arg == "type"
                and isinstance(func, ast.Name)
                and (func.id == "ApplicationError")
            ):
                yield f"{where}:{node.lineno} ApplicationError(type=...)"


def test_no_module_calls_temporal_or_raises_an_error_type_by_a_bare_string() -> None:
    found = [line for path in python_sources() for line in bare_names(path)]
    assert found == [], "use a name from momoflow.contract:\n" + "\n".join(found)


def test_the_scan_finds_a_bare_name(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "@workflow.signal(name='go')\n"
        "@activity.defn(name='fine')\n"
        "async def f(handle):\n"
        "    await handle.query('state')\n"
        "    raise ApplicationError('x', type='Oops')\n"
    )
    assert len(list(bare_names(sample, tmp_path))) == 3
