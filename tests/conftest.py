"""Session fixtures: one real stack (Temporal dev server, the three sandboxes, gateway,
worker) per test process; every process is stopped at the end.

``scripts/test`` runs the suite on several pytest-xdist workers (``--dist loadgroup``), then
the leak scan alone over what they all left behind (``tests/test_leak_scan.py``). The units
of scheduling are set here: one test, or a whole file where its tests share module state.
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

#: Files whose tests must run in one worker although no module fixture ties them: the
#: newcomer's stack holds the default ports of ``momoflow dev``, which no other test may
#: hold at the same time.
TOGETHER = frozenset({"test_first_hour.py"})

#: Files whose tests are units of their own although they share a module stack: each is
#: minutes long, and a stack costs seconds, so a worker of its own per test pays off.
SPREAD_OUT = frozenset({"test_chaos.py"})

#: The files that take longest (``--durations``), started first so that none of them is
#: what the other workers wait for at the end. Order matters only for speed.
LONGEST_FIRST = (
    "test_chaos.py",
    "test_bench_smoke.py",
    "test_campaigns.py",
    "test_dev_stack.py",
    "test_first_hour.py",
    "test_fuzz_gateway.py",
    "test_campaign_cli.py",
    "test_client_typing.py",
    "test_reconcile.py",
)


def _shares_module_state(item: pytest.Item) -> bool:
    """Whether ``item`` uses a fixture set up once per module or class: its file's tests
    then run in one worker, which sets that fixture up once."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        definition.scope in ("module", "class", "package")
        for definitions in info.name2fixturedefs.values()
        for definition in definitions
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Schedule for xdist (``--dist loadgroup``): a file whose tests share a module or class
    fixture (but :data:`SPREAD_OUT`), or one of :data:`TOGETHER`, is one unit; every other
    test is a unit of its own, so the workers stay evenly loaded. Start the longest first,
    and run the leak scan last: it reads what the whole session left behind (a stable sort:
    tests keep their order within their file)."""
    grouped = {item.path.name for item in items if _shares_module_state(item)} - SPREAD_OUT
    grouped |= TOGETHER
    for item in items:
        if item.path.name in grouped:
            item.add_marker(pytest.mark.xdist_group(item.path.name))

    def rank(item: pytest.Item) -> tuple[bool, bool, int]:
        name = item.path.name
        first = LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
        # A slow test that is a unit of its own starts before the rest of its file.
        ahead = item.get_closest_marker("slow") is not None and name not in grouped
        return (name == "test_leak_scan.py", not ahead, first)

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
