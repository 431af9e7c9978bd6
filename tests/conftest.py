"""Session fixtures: one real stack (Temporal dev server, CaurisFlux sandbox, gateway,
worker) for the whole run; every process is stopped at the end."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from temporalio.client import Client

from momoflow.settings import TemporalSettings
from momoflow.temporal import connect_client
from tests.stack import Stack, start_stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The leak scan reads what the whole session left behind, so it runs last (a stable
    sort: every other test keeps its order)."""
    items.sort(key=lambda item: item.path.name == "test_leak_scan.py")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    running = start_stack(root)
    try:
        running.start_worker("worker", prefix="momoflow-test")
        yield running
    finally:
        running.stop_all()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def client(stack: Stack) -> AsyncIterator[Client]:
    yield await connect_client(TemporalSettings(address=stack.temporal_address))


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").clear_faults()


@pytest.fixture
def reference() -> str:
    return f"T-{uuid.uuid4().hex[:16]}"
