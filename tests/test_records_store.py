"""The record store on a PostgreSQL of its own: migrations, and writes that are idempotent
and safe to reorder.

The flows against the whole stack are in ``tests/test_records_flows.py``; the journal's
rules as pure functions in ``tests/test_journal.py``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from momoflow.models import (
    Country,
    Failure,
    Operator,
    PayoutState,
    ProviderName,
    TimelineEntry,
    TransactionStatus,
)
from momoflow.money import Currency
from momoflow.processes import free_port
from momoflow.records import migrate
from momoflow.records.embedded import EmbeddedPostgres
from momoflow.records.schema import metadata
from momoflow.records.store import ListFilters, RecordStore
from momoflow.records.writes import HistoryEntry, Kind, RecordWrite

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this module's own (databases are created per test)."""
    root = tmp_path_factory.mktemp("records-store")
    postgres = EmbeddedPostgres(root / "data", free_port(), durable=False)
    postgres.prepare()
    process = postgres.process(root / "postgres.log").start(timeout=60)
    try:
        yield postgres
    finally:
        process.stop()


def _database(server: EmbeddedPostgres, name: str) -> str:
    """A fresh, empty database on the module's server; its URL."""

    async def create() -> None:
        engine = create_async_engine(server.url, isolation_level="AUTOCOMMIT")
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                try:
                    async with engine.connect() as conn:
                        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                        await conn.execute(text(f'CREATE DATABASE "{name}"'))
                    return
                except OSError:
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await engine.dispose()

    _in_thread(create())
    return server.url.rsplit("/", 1)[0] + f"/{name}"


def _in_thread(coro: object) -> object:
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coro).result(timeout=120)  # type: ignore[arg-type]


def _upgrade(url: str, revision: str = "head") -> None:
    """``momoflow db upgrade`` as operators run it."""
    done = subprocess.run(
        [sys.executable, "-m", "momoflow.cli", "db", "upgrade", "--revision", revision],
        env={"MOMOFLOW_DATABASE__URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest_asyncio.fixture(loop_scope="session")
async def store(
    server: EmbeddedPostgres, request: pytest.FixtureRequest
) -> AsyncIterator[RecordStore]:
    url = _database(server, f"t_{abs(hash(request.node.nodeid)) % 10**9}")
    await asyncio.to_thread(migrate.upgrade, url)
    records = RecordStore.connect(url)
    try:
        yield records
    finally:
        await records.close()


def _payout(reference: str, **changes: object) -> PayoutState:
    state = PayoutState(
        workflow_id=f"payout-acme-{reference}",
        merchant="acme",
        reference=reference,
        provider=ProviderName.CAURISFLUX,
        country=Country.SN,
        amount=50_000,
        currency=Currency.XOF,
        operator=Operator.WAVE,
        recipient_phone_masked="+22177*****01",
        created_at=T0,
        updated_at=T0,
    )
    return state.model_copy(update=changes)


def _write(seq: int, state: PayoutState, *entries: HistoryEntry) -> RecordWrite:
    return RecordWrite(
        kind=Kind.PAYOUT,
        seq=seq,
        fingerprint="fp-1",
        state=state.model_dump(mode="json"),
        entries=list(entries),
    )


# ------------------------------------------------------------------ migrations


def test_migrations_from_an_empty_database_match_the_schema(server: EmbeddedPostgres) -> None:
    url = _database(server, "from_empty")
    _upgrade(url)
    _upgrade(url)  # idempotent

    async def differences() -> list[object]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
                )
        finally:
            await engine.dispose()

    assert _in_thread(differences()) == []
    assert _in_thread(migrate.current_revision(url)) == migrate.head_revision() == "0003"


def test_an_upgrade_from_the_previous_revision_keeps_every_record(
    server: EmbeddedPostgres,
) -> None:
    url = _database(server, "from_previous")
    _upgrade(url, "0001")

    async def insert_at_0001() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO transactions (merchant, kind, reference, workflow_id, "
                        "provider, country, currency, amount, status, fingerprint, started, "
                        "seq, state, created_at, updated_at) VALUES ('acme', 'payout', 'OLD-1', "
                        "'payout-acme-OLD-1', 'caurisflux', 'SN', 'XOF', 50000, 'succeeded', "
                        "'fp', true, 3, :state, :at, :at)"
                    ),
                    {
                        "state": _payout(
                            "OLD-1", status=TransactionStatus.SUCCEEDED
                        ).model_dump_json(),
                        "at": T0,
                    },
                )
        finally:
            await engine.dispose()

    _in_thread(insert_at_0001())
    _upgrade(url)

    async def read_back() -> tuple[str | None, TransactionStatus | None, int]:
        records = RecordStore.connect(url)
        try:
            found = await records.get(Kind.PAYOUT, "acme", "OLD-1")
            balances = await records.balances()
        finally:
            await records.close()
        return (
            await migrate.current_revision(url),
            found.status if found else None,
            len(balances),
        )

    assert _in_thread(read_back()) == ("0003", TransactionStatus.SUCCEEDED, 0)


def test_db_upgrade_without_a_url_says_what_to_set() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "momoflow.cli", "db", "upgrade"],
        env={"PATH": "/usr/bin:/bin", "MOMOFLOW_ENV": "local"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path("/"),
    )
    assert done.returncode == 2
    assert "MOMOFLOW_DATABASE__URL" in done.stderr


# ------------------------------------------------------------------ writes


async def test_writes_are_idempotent_and_an_older_state_never_overwrites_a_newer(
    store: RecordStore,
) -> None:
    created = _payout("R-1")
    claim = await store.claim(Kind.PAYOUT, created, fingerprint="fp-1", actor="api:acme")
    assert claim.inserted and not claim.record.started
    pending = _payout("R-1", status=TransactionStatus.PENDING, updated_at=T0 + timedelta(seconds=1))
    paid = _payout(
        "R-1",
        status=TransactionStatus.SUCCEEDED,
        fees=750,
        updated_at=T0 + timedelta(seconds=5),
        completed_at=T0 + timedelta(seconds=5),
    )
    entry = HistoryEntry(index=1, at=paid.updated_at, status=paid.status, note="paid")
    # The newer write lands first; the older one (a retried activity) after it.
    assert await store.write(_write(2, paid, entry))
    assert not await store.write(_write(1, pending))
    assert not await store.write(_write(2, paid, entry))  # replayed
    record = await store.get(Kind.PAYOUT, "acme", "R-1")
    assert record is not None
    assert (record.status, record.seq, record.started) == (TransactionStatus.SUCCEEDED, 2, True)
    [settled] = await store.journal(record.id)
    assert sum(line.amount for line in settled.lines) == 0
    timeline = await store.timeline(record.id)
    assert [(e["status"], e["note"], e["actor"]) for e in timeline] == [
        ("created", "requested", "api:acme"),
        ("succeeded", "paid", "workflow"),
    ]
    # A second claim of the same reference finds the record, never a second one.
    again = await store.claim(Kind.PAYOUT, created, fingerprint="fp-2", actor="api:acme")
    assert not again.inserted and again.record.id == record.id and again.record.started


async def test_a_claim_whose_start_failed_is_removed_but_a_written_record_is_kept(
    store: RecordStore,
) -> None:
    claim = await store.claim(Kind.PAYOUT, _payout("R-2"), fingerprint="fp", actor="api:acme")
    assert await store.forget_unstarted(claim.record.id)
    assert await store.get(Kind.PAYOUT, "acme", "R-2") is None
    kept = await store.claim(Kind.PAYOUT, _payout("R-3"), fingerprint="fp", actor="api:acme")
    await store.write(_write(1, _payout("R-3", status=TransactionStatus.PENDING)))
    assert not await store.forget_unstarted(kept.record.id)
    assert await store.get(Kind.PAYOUT, "acme", "R-3") is not None


async def test_a_repair_applies_only_a_newer_state(store: RecordStore) -> None:
    pending = _payout(
        "R-4",
        status=TransactionStatus.PENDING,
        updated_at=T0 + timedelta(seconds=1),
        timeline=[TimelineEntry(at=T0, status=TransactionStatus.CREATED, note="pay")],
    )
    await store.write(_write(1, pending))
    failed = _payout(
        "R-4",
        status=TransactionStatus.FAILED,
        failure=Failure(code="provider_declined", message="declined"),
        updated_at=T0 + timedelta(seconds=9),
        timeline=[
            TimelineEntry(at=T0, status=TransactionStatus.CREATED, note="pay"),
            TimelineEntry(
                at=T0 + timedelta(seconds=9), status=TransactionStatus.FAILED, note="declined"
            ),
        ],
    )
    assert await store.repair(Kind.PAYOUT, failed, fingerprint="fp-1")
    assert not await store.repair(Kind.PAYOUT, pending, fingerprint="fp-1")
    record = await store.get(Kind.PAYOUT, "acme", "R-4")
    assert record is not None and record.status is TransactionStatus.FAILED
    # A late workflow write of the older state changes nothing either.
    assert not await store.write(_write(2, pending))
    record = await store.get(Kind.PAYOUT, "acme", "R-4")
    assert record is not None and record.status is TransactionStatus.FAILED
    notes = [e["note"] for e in await store.timeline(record.id)]
    assert notes.count("declined") == 1 and notes.count("pay") == 1


async def test_pages_follow_the_cursor_newest_first_without_claims(store: RecordStore) -> None:
    for n in range(7):
        state = _payout(
            f"P-{n}",
            status=TransactionStatus.SUCCEEDED if n % 2 else TransactionStatus.FAILED,
            created_at=T0 + timedelta(minutes=n),
            updated_at=T0 + timedelta(minutes=n),
        )
        await store.write(_write(1, state))
    await store.claim(
        Kind.PAYOUT,
        _payout("P-claim", created_at=T0 + timedelta(hours=1)),
        fingerprint="fp",
        actor="api:acme",
    )
    seen: list[str] = []
    after: str | None = None
    while True:
        page, more = await store.page(
            Kind.PAYOUT, "acme", ListFilters(), limit=3, starting_after=after
        )
        seen += [r.reference for r in page]
        if not more:
            break
        after = page[-1].reference
    assert seen == [f"P-{n}" for n in reversed(range(7))]
    paid, _ = await store.page(
        Kind.PAYOUT, "acme", ListFilters(status=TransactionStatus.SUCCEEDED), limit=100
    )
    assert [r.reference for r in paid] == ["P-5", "P-3", "P-1"]
    with pytest.raises(LookupError):
        await store.page(Kind.PAYOUT, "acme", ListFilters(), limit=3, starting_after="nope")
