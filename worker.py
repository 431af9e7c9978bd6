"""momoflow worker: runs the workflows and each provider's rate-limited activities.

Run with ``momoflow worker`` (or ``python worker.py``). It is stateless: start as many as
you like; the Temporal server shares the work and holds every provider queue to its limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from temporalio.client import Client
from temporalio.worker import Worker

from activities.campaigns import CampaignActivities
from activities.inbox import InboxActivities
from activities.notifications import NotificationActivities
from activities.providers import ProviderActivities
from activities.reconcile import ReconcileActivities, ReportProviderActivities
from activities.records import RecordActivities
from activities.status_reads import StatusReadActivities
from momoflow import telemetry
from momoflow.campaigns.store import store_for
from momoflow.ids import (
    campaign_task_queue,
    limits_task_queue,
    notification_task_queue,
    provider_task_queue,
    status_reads_task_queue,
    workflow_task_queue,
)
from momoflow.outbound import notification_client
from momoflow.providers.catalog import SHARED_READ_PROVIDERS
from momoflow.providers.registry import open_providers
from momoflow.records.store import RecordStore
from momoflow.settings import Settings, configure_logging, get_settings
from momoflow.temporal import connect_client
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

log = logging.getLogger("momoflow.worker")

#: Reconciliation: the sweep and the daily reports (started by schedules).
RECONCILE_WORKFLOWS: Sequence[type] = (
    ReconcileSweepWorkflow,
    ReconcileReportWorkflow,
    ReconcileDailyReportWorkflow,
)

WORKFLOWS: Sequence[type] = (PayoutWorkflow, PayinWorkflow, RefundWorkflow, CampaignWorkflow)

#: Verified webhooks that could not reach their transaction yet (``momoflow.inbox``).
INBOX_WORKFLOWS: Sequence[type] = (WebhookInboxWorkflow,)

#: Batched status reads of providers whose status read is a list read, and the marks of
#: signed-out codec sessions (``momoflow.codec_sessions``).
STATUS_READ_WORKFLOWS: Sequence[type] = (StatusReaderWorkflow, RevokedCodecSessionWorkflow)


async def run_worker(
    settings: Settings, *, stop: asyncio.Event, client: Client | None = None
) -> None:
    """Poll momoflow's task queues until ``stop`` is set, then drain and return.

    Refuses to start without a record store (``MOMOFLOW_DATABASE__URL``): the workflows
    write every transaction there."""
    store = RecordStore.from_settings(settings.database)
    client = client or await connect_client(settings.temporal, codec=settings.codec)
    prefix = settings.task_queue_prefix
    async with (
        open_providers(settings) as providers,
        notification_client(settings.notify_policy()) as notify_http,
        contextlib.aclosing(store) as _,
    ):
        records = RecordActivities(store)
        activities = ProviderActivities(providers)
        reconciliation = ReconcileActivities(
            client, reports_dir=settings.reports_dir(), store=store
        )
        inbox = InboxActivities(client)
        status_reads = StatusReadActivities(client, providers, settings.status_read_budget)
        report_reads = ReportProviderActivities(providers)
        notifications = NotificationActivities(notify_http, secret_for=settings.notification_secret)
        workers = [
            Worker(
                client,
                task_queue=workflow_task_queue(prefix),
                workflows=[
                    *WORKFLOWS,
                    *RECONCILE_WORKFLOWS,
                    *INBOX_WORKFLOWS,
                    *STATUS_READ_WORKFLOWS,
                ],
                # Temporal-only activities: no provider rate limit applies.
                activities=[
                    *reconciliation.all(),
                    *inbox.all(),
                    status_reads.request_status_read,
                    *records.all(),
                ],
                graceful_shutdown_timeout=settings.graceful_shutdown(),
            )
        ]
        workers.append(
            Worker(
                client,
                task_queue=limits_task_queue(prefix),
                # Apart from the payment workflows: the gateway waits on these.
                workflows=[MerchantLimitsWorkflow],
                graceful_shutdown_timeout=settings.graceful_shutdown(),
            )
        )
        campaigns = CampaignActivities(settings, store_for(settings), client, records=store)
        workers.append(
            Worker(
                client,
                task_queue=campaign_task_queue(prefix),
                activities=campaigns.all(),
                graceful_shutdown_timeout=settings.graceful_shutdown(),
            )
        )
        workers.append(
            Worker(
                client,
                task_queue=notification_task_queue(prefix),
                activities=[notifications.deliver_notification],
                graceful_shutdown_timeout=settings.graceful_shutdown(),
            )
        )
        for provider in activities.providers():
            workers.append(
                Worker(
                    client,
                    task_queue=provider_task_queue(provider, prefix),
                    activities=[*activities.all(), *report_reads.all()],
                    max_task_queue_activities_per_second=settings.rate_limit_per_second(provider),
                    graceful_shutdown_timeout=settings.graceful_shutdown(),
                )
            )
        for provider in activities.providers():
            if provider not in SHARED_READ_PROVIDERS:
                continue
            workers.append(
                Worker(
                    client,
                    task_queue=status_reads_task_queue(provider, prefix),
                    # No server rate limit: the provider's reader paces these in requests.
                    activities=[status_reads.sweep_status_reads],
                    graceful_shutdown_timeout=settings.graceful_shutdown(),
                )
            )
        async with contextlib.AsyncExitStack() as stack:
            for worker in workers:
                await stack.enter_async_context(worker)
            queues = ", ".join(w.task_queue for w in workers)
            log.info("worker polling %s on %s", queues, settings.temporal.address)
            print(f"momoflow worker ready: {queues}", flush=True)
            await stop.wait()
            log.info("worker stopping: finishing in-flight tasks")


def main() -> None:
    """Entry point: run until SIGINT/SIGTERM."""
    settings = get_settings()
    configure_logging(settings)
    # Before any Temporal client: tracing interceptor, and the runtime serving metrics.
    telemetry.setup(telemetry.Service.WORKER, settings)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop=stop)

    rc = 0
    try:
        asyncio.run(_main())
    except Exception:
        log.exception("worker crashed")
        rc = 1
    telemetry.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal SDK can crash the interpreter at exit (sdk-python#300); leave directly.
    os._exit(rc)


if __name__ == "__main__":
    main()
