"""Fixtures for the sandbox tests: simulators and a webhook receiver over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from momoflow.sandbox.caurisflux import CaurisFluxSandboxConfig, create_app
from momoflow.sandbox.shared import ThreadedServer

from .helpers import CF_KEY, CF_WEBHOOK_SECRET, WebhookReceiver


@pytest.fixture(scope="module")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    with receiver.server:
        yield receiver


@pytest.fixture(scope="module")
def cf_server(webhook_receiver: WebhookReceiver) -> Iterator[ThreadedServer]:
    """A CaurisFlux simulator with test-friendly timings; reset restores this config."""
    config = CaurisFluxSandboxConfig(
        settle_delay=0.1,
        webhook_url=f"{webhook_receiver.url}/hooks/default",
        webhook_secret=CF_WEBHOOK_SECRET,
        webhook_retry_schedule=(0.05, 0.1, 0.15),
        payment_ttl=60.0,
        seed=1234,
    )
    with ThreadedServer(create_app(config)) as server:
        yield server


@pytest.fixture(scope="module")
def cf(cf_server: ThreadedServer) -> Iterator[httpx.Client]:
    """Authenticated client of the CaurisFlux API."""
    with httpx.Client(
        base_url=f"{cf_server.url}/api/v1", headers={"X-API-Key": CF_KEY}, timeout=5.0
    ) as client:
        yield client


@pytest.fixture(scope="module")
def cf_control(cf_server: ThreadedServer) -> Iterator[httpx.Client]:
    """Client of the ``/_sandbox`` control API."""
    with httpx.Client(base_url=f"{cf_server.url}/_sandbox", timeout=5.0) as client:
        yield client
