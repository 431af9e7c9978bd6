"""Session fixtures: one real stack (Temporal dev server, the three sandboxes, gateway,
worker) per test process; every process is stopped at the end.

``scripts/test`` runs the suite on several pytest-xdist workers, then the leak scan alone
over what they all left behind (``tests/test_leak_scan.py``). The units of scheduling are
set here: one test, or a whole file where its tests share module state.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from temporalio.client import Client
from xdist.scheduler import LoadScopeScheduling

from momoflow.settings import TemporalSettings
from momoflow.temporal import connect_client
from tests.stack import Stack, start_stack

#: Files whose tests share a module or class fixture: each file is one unit of xdist's
#: scheduling, so that one worker sets that fixture up once. Checked at every collection
#: against the fixtures the tests really use (:func:`_check_units`).
SHARED_MODULE_STATE = frozenset(
    {
        "tests/sandbox/test_caurisflux_sandbox.py",
        "tests/sandbox/test_mobilepay_sandbox.py",
        "tests/sandbox/test_novasend_sandbox.py",
        "tests/test_amount_mismatch.py",
        "tests/test_campaign_store.py",
        "tests/test_chaos.py",
        "tests/test_client_typing.py",
        "tests/test_codec.py",
        "tests/test_compose.py",
        "tests/test_console_browser.py",
        "tests/test_conformance_caurisflux.py",
        "tests/test_conformance_novasend.py",
        "tests/test_conformance_novasend_keys.py",
        "tests/test_gateway_auth.py",
        "tests/test_notifications.py",
        "tests/test_payin_flow.py",
        "tests/test_payout_timers.py",
        "tests/test_reconcile.py",
        "tests/test_records_store.py",
        "tests/test_refunds.py",
        "tests/test_telemetry.py",
        "tests/test_temporal_ui.py",
        "tests/test_webhook_hostile.py",
        "tests/test_webhook_inbox.py",
    }
)
#: ... but these files' tests are units of their own: each is minutes long, and a module
#: stack costs seconds, so a worker of its own per test pays off.
SPREAD_OUT = frozenset({"tests/test_chaos.py"})
#: Files whose tests run in one unit although no fixture ties them: the newcomer's stack
#: holds the default ports of ``momoflow dev``, which no other test may hold meanwhile.
TOGETHER = frozenset({"tests/test_first_hour.py"})
#: The files scheduled whole; every other test is a unit of its own.
WHOLE_FILES = (SHARED_MODULE_STATE - SPREAD_OUT) | TOGETHER

#: The files that take longest (``--durations``), started first so that none of them is
#: what the other workers wait for at the end. Order matters only for speed.
LONGEST_FIRST = (
    "tests/test_chaos.py",
    "tests/test_bench_smoke.py",
    "tests/test_campaigns.py",
    "tests/test_dev_stack.py",
    "tests/test_first_hour.py",
    "tests/test_reconcile.py",
    "tests/test_fuzz_gateway.py",
    "tests/test_campaign_cli.py",
    "tests/test_client_typing.py",
)


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _shares_module_state(item: pytest.Item) -> bool:
    """Whether ``item`` uses a fixture set up once per module, class or package."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        definition.scope in ("module", "class", "package")
        for definitions in info.name2fixturedefs.values()
        for definition in definitions
    )


def _check_units(items: list[pytest.Item]) -> None:
    """:data:`SHARED_MODULE_STATE` must name exactly the collected files that share module
    state: a file missing from it would set its module stack up on every worker."""
    collected = {_file_of(item.nodeid) for item in items}
    sharing = {_file_of(item.nodeid) for item in items if _shares_module_state(item)}
    declared = SHARED_MODULE_STATE & collected
    if sharing != declared:
        raise pytest.UsageError(
            "tests/conftest.py SHARED_MODULE_STATE is out of date: add "
            f"{sorted(sharing - declared)}, remove {sorted(declared - sharing)}"
        )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Check the scheduling units, start the longest tests first, and run the leak scan
    last: it reads what the whole session left behind (a stable sort: tests keep their
    order within their file)."""
    _check_units(items)

    def rank(item: pytest.Item) -> tuple[bool, bool, int]:
        name = _file_of(item.nodeid)
        first = LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
        # A slow test that is a unit of its own starts before the rest of its file.
        ahead = item.get_closest_marker("slow") is not None and name not in WHOLE_FILES
        return (item.path.name == "test_leak_scan.py", not ahead, first)

    items.sort(key=rank)


class _Units(LoadScopeScheduling):
    """xdist's scope scheduling with momoflow's units: a whole file for
    :data:`WHOLE_FILES`, one test otherwise. (pytest-xdist's own ``loadgroup`` marks have
    no effect under pytest 9, which no longer lets a plugin rename a test.)"""

    def _split_scope(self, nodeid: str) -> str:
        file = _file_of(nodeid)
        return file if file in WHOLE_FILES else nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> _Units:
    """The scheduler of every ``-n`` run."""
    return _Units(config, log)


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
def _journal_balances(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test on the session stack: every journal entry balances, and every
    transaction that moved money has its entries (the record store's double-entry rule)."""
    yield
    if "stack" in request.fixturenames:
        stack: Stack = request.getfixturevalue("stack")
        if stack.processes["postgres"].alive():
            assert stack.journal_problems() == []


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").clear_faults()


@pytest.fixture
def reference() -> str:
    return f"T-{uuid.uuid4().hex[:16]}"
