"""Session fixtures: one real stack (Temporal dev server, the three sandboxes, gateway,
worker) per test process; every process is stopped at the end.

``scripts/test`` runs the suite on several pytest-xdist workers (``--dist loadgroup``), then
the leak scan alone over what they all left behind (``tests/test_leak_scan.py``). The groups
are set here: a file's tests run in one worker, in their order, sharing its module fixtures.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from temporalio.client import Client

from momoflow.settings import TemporalSettings
from momoflow.temporal import connect_client
from tests.stack import Stack, start_stack

#: Files whose tests are scheduled one by one instead of as a file: each is long, and the
#: module stack they share costs seconds, so a worker of its own per test pays off.
SPREAD_OUT = frozenset({"test_chaos.py"})

#: The files that take longest (``--durations``), started first so that none of them is
#: what the other workers wait for at the end. Order matters only for speed.
LONGEST_FIRST = (
    "test_chaos.py",
    "test_first_hour.py",
    "test_campaigns.py",
    "test_client_typing.py",
    "test_reconcile.py",
    "test_payin_flow.py",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group each file's tests for xdist (but :data:`SPREAD_OUT`), start the longest files
    first, and run the leak scan last: it reads what the whole session left behind (a
    stable sort, every other test keeps its order within its file)."""
    for item in items:
        if item.path.name not in SPREAD_OUT:
            item.add_marker(pytest.mark.xdist_group(item.path.name))

    def rank(item: pytest.Item) -> tuple[int, int]:
        name = item.path.name
        first = LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
        return (name == "test_leak_scan.py", first)

    items.sort(key=rank)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    running = start_stack(root)
    try:
        running.start_worker("worker", prefix="momoflow-test")
        yield running
        # Read before the server stops (its state lives in memory): the leak scan reads them.
        running.keep_raw_histories()
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
