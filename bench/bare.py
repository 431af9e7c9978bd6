"""The floor under a momoflow payout: the same provider calls, with less around them.

* :class:`BarePayoutWorkflow`: a bare Temporal workflow with one activity that makes the
  provider calls of a CaurisFlux payout (quote, then create with an idempotency key)
  through momoflow's own CaurisFlux adapter. Default data converter (no encryption), no
  search attributes, no webhook wait, no state.
* :func:`plain_payout`: the same two calls from a plain asyncio loop, without Temporal.

Run a worker for the bare workflow with ``python -m bench.bare`` (it reads the same
``MOMOFLOW_*`` settings as momoflow's worker); ``bench/run.py`` starts and stops it.
The workflow lives in its own module because Temporal's sandbox re-imports it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import asyncio
    import os
    import signal
    import sys

    from temporalio.client import Client
    from temporalio.worker import Worker

    from momoflow.models import (
        InitiatePayoutInput,
        Operator,
        PayoutQuoteInput,
        ProviderName,
    )
    from momoflow.money import Country, Currency
    from momoflow.providers.base import PaymentProvider
    from momoflow.providers.registry import open_providers
    from momoflow.settings import get_settings

#: Task queue of the bare workflow and its activity.
BARE_QUEUE = "bench-bare"
AMOUNT_XOF = 25_000
PHONE_PREFIX = "+22177123"
READY_LINE = "bare worker ready"


async def plain_payout(provider: PaymentProvider, reference: str, index: int) -> str:
    """Quote then create one CaurisFlux payout (a test number that succeeds); returns the
    provider's transaction id."""
    quote = await provider.quote_payout(
        PayoutQuoteInput(
            provider=ProviderName.CAURISFLUX,
            amount=AMOUNT_XOF,
            currency=Currency.XOF,
            country=Country.SN,
            operator=Operator.WAVE,
        )
    )
    transaction = await provider.initiate_payout(
        InitiatePayoutInput(
            provider=ProviderName.CAURISFLUX,
            external_reference=reference,
            idempotency_key=f"{reference}:initiate_payout",
            quote_id=quote.quote_id,
            amount=AMOUNT_XOF,
            currency=Currency.XOF,
            country=Country.SN,
            operator=Operator.WAVE,
            recipient_phone=f"{PHONE_PREFIX}{1000 + index % 9000:04d}",
            recipient_name="Awa Diallo",
            description="bench floor",
        )
    )
    return transaction.provider_transaction_id


class BareActivities:
    """The one activity, with momoflow's CaurisFlux adapter injected."""

    def __init__(self, provider: PaymentProvider) -> None:
        self._provider = provider

    @activity.defn(name="bare_payout_calls")
    async def payout_calls(self, reference: str) -> str:
        """The provider calls of one payout."""
        index = int(reference.rsplit("-", 1)[-1]) if reference[-1].isdigit() else 0
        return await plain_payout(self._provider, reference, index)


@workflow.defn(name="BarePayoutWorkflow")
class BarePayoutWorkflow:
    """One activity, its result returned."""

    @workflow.run
    async def run(self, reference: str) -> str:
        """Run the payout's provider calls as one activity."""
        result: str = await workflow.execute_activity(
            "bare_payout_calls",
            reference,
            start_to_close_timeout=timedelta(seconds=30),
        )
        return result


async def serve(stop: asyncio.Event) -> None:
    """Poll ``BARE_QUEUE`` until ``stop`` is set."""
    settings = get_settings()
    client = await Client.connect(settings.temporal.address, namespace=settings.temporal.namespace)
    async with open_providers(settings) as providers:
        activities = BareActivities(providers[ProviderName.CAURISFLUX])
        async with Worker(
            client,
            task_queue=BARE_QUEUE,
            workflows=[BarePayoutWorkflow],
            activities=[activities.payout_calls],
        ):
            print(READY_LINE, flush=True)
            await stop.wait()


def main() -> None:
    """Entry point: run the bare worker until SIGTERM/SIGINT."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(stop)

    asyncio.run(run())
    sys.stdout.flush()
    os._exit(0)  # temporalio/sdk-python#300


if __name__ == "__main__":
    main()
