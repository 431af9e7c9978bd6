"""Business metrics from workflow code, on Temporal's replay-safe meter (a replayed
workflow never counts an outcome twice)."""

from __future__ import annotations

from temporalio import workflow

from momoflow.telemetry.business_metrics import Metrics, TemporalMeterBackend


def workflow_metrics() -> Metrics:
    """Business metrics for workflow code, on the workflow's replay-safe Temporal meter
    (labelled with namespace, task queue and workflow type). Only inside a workflow."""
    return Metrics(TemporalMeterBackend(workflow.metric_meter()))
