"""The record store: every payout, payin and refund in PostgreSQL, for as long as the
business keeps it (see :mod:`momoflow.records`).

All writes are idempotent and safe to reorder:

* :meth:`RecordStore.claim` inserts a transaction under its unique key before its workflow
  starts, or finds the one already there;
* :meth:`RecordStore.write` applies a workflow's write only when it is newer (``seq`` and
  ``updated_at``), appends timeline entries under their numbers, and posts the journal
  entries the state implies under their keys;
* :meth:`RecordStore.repair` (``momoflow records verify``) applies a state read from
  Temporal only when it is newer than the record.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import and_, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from momoflow.models import TransactionState, TransactionStatus
from momoflow.records.journal import JournalEntry, entries_for
from momoflow.records.schema import (
    journal_entries,
    journal_lines,
    reported_balances,
    transaction_events,
    transactions,
)
from momoflow.records.writes import STATE_TYPES, HistoryEntry, Kind, RecordClaim, RecordWrite
from momoflow.settings import DatabaseSettings

__all__ = [
    "Claim",
    "ListFilters",
    "RecordStore",
    "StoreUnavailable",
    "StoredRecord",
    "async_url",
    "is_unavailable",
]

#: The store's own actor names in the timeline.
ACTOR_WORKFLOW = "workflow"
ACTOR_VERIFY = "records verify"

_RESOLVED = re.compile(r"^resolved by (?P<who>[^:]{1,100}):")


class StoreUnavailable(Exception):
    """PostgreSQL could not be reached or did not answer in time."""


#: SQLSTATE classes and codes that mean "the database is down, starting, stopping or busy",
#: never "this statement is wrong": a retry can cure them.
_TRANSIENT_SQLSTATES = ("08", "53", "57P", "58", "40001", "40P01", "55P03")


def is_unavailable(exc: BaseException) -> bool:
    """True for errors that mean "the database is down, restarting or overloaded" (a retry
    can cure them), not "the statement is wrong"."""
    if isinstance(exc, StoreUnavailable | OperationalError | PoolTimeout | OSError):
        return True
    if isinstance(exc, asyncio.TimeoutError | ConnectionError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        sqlstate = getattr(orig, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_TRANSIENT_SQLSTATES):
            return True
        # asyncpg's own connection errors carry no SQLSTATE ("connection was closed in the
        # middle of operation"): the adapted error keeps the original as its cause.
        cause = getattr(orig, "__cause__", None)
        if isinstance(cause, asyncpg.InterfaceError | asyncpg.PostgresConnectionError):
            return True
        return isinstance(cause, OSError | ConnectionError | asyncio.TimeoutError)
    return False


def async_url(url: str) -> str:
    """``url`` with the asyncpg driver (``postgresql://`` and ``postgres://`` mean it)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    return url


@dataclass(frozen=True)
class StoredRecord:
    """One transaction as the store holds it."""

    id: int
    kind: Kind
    merchant: str
    reference: str
    workflow_id: str
    fingerprint: str
    started: bool
    seq: int
    status: TransactionStatus
    campaign: str | None
    state: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    #: The workflow run that owns the record (None until its first write).
    run_id: str | None = None

    def typed_state(self) -> TransactionState:
        """The state as its model (:class:`~momoflow.models.PayoutState`…)."""
        return STATE_TYPES[self.kind].model_validate(self.state)


@dataclass(frozen=True)
class Claim:
    """The outcome of :meth:`RecordStore.claim`: the record under the key, and whether this
    call inserted it."""

    record: StoredRecord
    inserted: bool


@dataclass(frozen=True)
class ListFilters:
    """The filters of ``GET /v1/payouts`` (and payins, refunds); None means any."""

    status: TransactionStatus | None = None
    provider: str | None = None
    country: str | None = None
    campaign: str | None = None
    created_gte: datetime | None = None
    created_lte: datetime | None = None
    #: A reference, or the start of one (it matches every reference it starts, itself
    #: included).
    reference_prefix: str | None = None


@dataclass(frozen=True)
class Balance:
    """A provider account in one currency: what the journal expects, what the provider
    last reported."""

    provider: str
    currency: str
    expected: int
    reported: int | None
    reported_at: datetime | None
    source: str | None

    @property
    def difference(self) -> int | None:
        """Reported minus expected (None until the provider reported a balance)."""
        return None if self.reported is None else self.reported - self.expected


def _columns(kind: Kind, state: TransactionState) -> dict[str, Any]:
    """The indexed columns that mirror ``state``."""
    return {
        "merchant": state.merchant,
        "kind": kind.value,
        "reference": state.reference,
        "workflow_id": state.workflow_id,
        "provider": state.provider.value,
        "country": state.country.value,
        "currency": state.currency.value,
        "amount": state.amount,
        "fees": state.fees,
        "provider_amount": state.provider_amount,
        "status": state.status.value,
        "failure_code": state.failure.code if state.failure else None,
        "provider_transaction_id": state.provider_transaction_id,
        "provider_reference": state.provider_reference,
        "created_at": state.created_at,
        "updated_at": state.updated_at,
        "completed_at": state.completed_at,
    }


def _actor(note: str) -> str:
    match = _RESOLVED.match(note)
    return f"operator:{match.group('who').strip()}" if match else ACTOR_WORKFLOW


def _record(row: Any) -> StoredRecord:
    return StoredRecord(
        id=row.id,
        kind=Kind(row.kind),
        merchant=row.merchant,
        reference=row.reference,
        workflow_id=row.workflow_id,
        fingerprint=row.fingerprint,
        started=row.started,
        seq=row.seq,
        status=TransactionStatus(row.status),
        campaign=row.campaign,
        state=row.state,
        created_at=row.created_at,
        updated_at=row.updated_at,
        run_id=row.run_id,
    )


def encode_cursor(record: StoredRecord) -> str:
    """An opaque cursor for a record (used by exports that page internally)."""
    raw = json.dumps([record.created_at.isoformat(), record.id])
    return base64.urlsafe_b64encode(raw.encode()).decode()


class RecordStore:
    """Reads and writes the record store (one engine, one connection pool per process)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def connect(cls, url: str, settings: DatabaseSettings | None = None) -> RecordStore:
        """A store on ``url`` (no connection is opened until the first use)."""
        settings = settings or DatabaseSettings()
        timeout = settings.statement_timeout_s
        engine = create_async_engine(
            async_url(url),
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=timeout,
            # A restarted server leaves dead connections in the pool: test before use.
            pool_pre_ping=True,
            connect_args={
                "timeout": timeout,
                "command_timeout": timeout,
                "server_settings": {"application_name": "momoflow"},
            },
        )
        return cls(engine)

    @classmethod
    def from_settings(cls, settings: DatabaseSettings) -> RecordStore:
        """A store on ``settings.url``; ``ValueError`` when it is not set."""
        if settings.url is None:
            raise ValueError(
                "no record store: set MOMOFLOW_DATABASE__URL to a PostgreSQL URL "
                "(`momoflow dev` starts an embedded one)"
            )
        return cls.connect(settings.url.get_secret_value(), settings)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    async def aclose(self) -> None:
        """:meth:`close` (for ``contextlib.aclosing``)."""
        await self.close()

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers ``SELECT 1``."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(select(1))
        except Exception as exc:
            if is_unavailable(exc):
                raise StoreUnavailable(str(exc)) from exc
            raise

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the database answers (a server that just started may refuse at first)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                await self.ping()
                return
            except StoreUnavailable:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(0.2)

    # ------------------------------------------------------------------ the start path

    async def claim(
        self, kind: Kind, state: TransactionState, *, fingerprint: str, actor: str
    ) -> Claim:
        """Insert the record of a transaction about to start, or find the one under its
        (merchant, kind, reference). The caller compares fingerprints."""
        values = {
            **_columns(kind, state),
            "fingerprint": fingerprint,
            "seq": 0,
            "state": state.model_dump(mode="json"),
        }
        async with self.engine.begin() as conn:
            inserted = (
                await conn.execute(
                    insert(transactions)
                    .values(**values)
                    .on_conflict_do_nothing(constraint="uq_transactions_reference")
                    .returning(transactions.c.id)
                )
            ).scalar_one_or_none()
            row = (
                await conn.execute(
                    select(transactions).where(
                        transactions.c.merchant == state.merchant,
                        transactions.c.kind == kind.value,
                        transactions.c.reference == state.reference,
                    )
                )
            ).one()
            if inserted is not None:
                await self._requested(conn, row.id, state, actor)
        return Claim(record=_record(row), inserted=inserted is not None)

    async def claim_run(self, claim: RecordClaim, *, actor: str) -> bool:
        """Claim a reference for one workflow run (a campaign's line, which no start path
        claimed). True when the record is this run's: inserted now, or by an earlier try
        of the same claim. False when the reference belongs to another transaction, past
        or present: the run must not pay it."""
        kind = claim.kind
        state = STATE_TYPES[kind].model_validate(claim.state)
        values = {
            **_columns(kind, state),
            "fingerprint": claim.fingerprint,
            "campaign": claim.campaign,
            "run_id": claim.run_id,
            "started": True,
            "seq": 0,
            "state": claim.state,
        }
        async with self.engine.begin() as conn:
            inserted = (
                await conn.execute(
                    insert(transactions)
                    .values(**values)
                    .on_conflict_do_nothing(constraint="uq_transactions_reference")
                    .returning(transactions.c.id)
                )
            ).scalar_one_or_none()
            if inserted is not None:
                await self._requested(conn, inserted, state, actor)
                return True
            owner = (
                await conn.execute(
                    select(transactions.c.run_id).where(
                        transactions.c.merchant == state.merchant,
                        transactions.c.kind == kind.value,
                        transactions.c.reference == state.reference,
                    )
                )
            ).scalar_one()
        return bool(owner == claim.run_id)

    async def mark_started(self, record_id: int) -> None:
        """The record's workflow exists."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(transactions)
                .where(transactions.c.id == record_id, transactions.c.started.is_(False))
                .values(started=True)
            )

    async def forget_unstarted(self, record_id: int) -> bool:
        """Delete a claim whose workflow never started (the start was refused or failed):
        the caller was told nothing started. True when it was deleted; a record the
        workflow already wrote is kept."""
        async with self.engine.begin() as conn:
            found = (
                await conn.execute(
                    select(transactions.c.id)
                    .where(
                        transactions.c.id == record_id,
                        transactions.c.started.is_(False),
                        transactions.c.seq == 0,
                    )
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if found is None:
                return False
            await conn.execute(
                delete(transaction_events).where(transaction_events.c.transaction_id == found)
            )
            await conn.execute(delete(transactions).where(transactions.c.id == found))
            return True

    # ------------------------------------------------------------------ workflow writes

    async def write(self, write: RecordWrite) -> bool:
        """Apply one workflow write; True when its state was newer than the record's."""
        kind = write.kind
        state = STATE_TYPES[kind].model_validate(write.state)
        values = {
            **_columns(kind, state),
            "fingerprint": write.fingerprint,
            "campaign": write.campaign,
            "run_id": write.run_id,
            "started": True,
            "seq": write.seq,
            "state": write.state,
        }
        statement = insert(transactions).values(**values)
        newer = and_(
            transactions.c.seq < statement.excluded.seq,
            transactions.c.updated_at <= statement.excluded.updated_at,
        )
        async with self.engine.begin() as conn:
            applied = (
                await conn.execute(
                    statement.on_conflict_do_update(
                        constraint="uq_transactions_reference",
                        set_={
                            **{
                                k: statement.excluded[k]
                                for k in values
                                if k not in ("merchant", "kind", "reference", "created_at")
                            },
                            "run_id": func.coalesce(
                                transactions.c.run_id, statement.excluded.run_id
                            ),
                        },
                        where=newer,
                    ).returning(transactions.c.id)
                )
            ).scalar_one_or_none()
            record_id = applied
            if record_id is None:
                record_id = (
                    await conn.execute(
                        select(transactions.c.id).where(
                            transactions.c.merchant == state.merchant,
                            transactions.c.kind == kind.value,
                            transactions.c.reference == state.reference,
                        )
                    )
                ).scalar_one()
                await conn.execute(
                    update(transactions)
                    .where(transactions.c.id == record_id, transactions.c.started.is_(False))
                    .values(started=True)
                )
            await self._append(conn, record_id, write.entries, actor=None, key_prefix="")
            await self._post(conn, record_id, kind, state)
        return applied is not None

    async def repair(
        self,
        kind: Kind,
        state: TransactionState,
        *,
        fingerprint: str,
        campaign: str | None = None,
    ) -> bool:
        """Apply a state read from Temporal when it is newer than the record (or there is
        none); True when something changed. Its timeline entries are added under keys of
        their own, and the journal gets the entries the state implies."""
        values = {
            **_columns(kind, state),
            "fingerprint": fingerprint,
            "campaign": campaign,
            "started": True,
            "seq": 0,
            "state": state.model_dump(mode="json"),
        }
        statement = insert(transactions).values(**values)
        async with self.engine.begin() as conn:
            applied = (
                await conn.execute(
                    statement.on_conflict_do_update(
                        constraint="uq_transactions_reference",
                        set_={
                            k: statement.excluded[k]
                            for k in values
                            if k not in ("merchant", "kind", "reference", "created_at", "seq")
                        },
                        where=or_(
                            transactions.c.updated_at < statement.excluded.updated_at,
                            and_(
                                transactions.c.updated_at == statement.excluded.updated_at,
                                transactions.c.status != statement.excluded.status,
                            ),
                            transactions.c.started.is_(False),
                        ),
                    ).returning(transactions.c.id)
                )
            ).scalar_one_or_none()
            record_id = (
                applied
                or (
                    await conn.execute(
                        select(transactions.c.id).where(
                            transactions.c.merchant == state.merchant,
                            transactions.c.kind == kind.value,
                            transactions.c.reference == state.reference,
                        )
                    )
                ).scalar_one()
            )
            known = {
                (r.at, r.status, r.note)
                for r in await conn.execute(
                    select(
                        transaction_events.c.at,
                        transaction_events.c.status,
                        transaction_events.c.note,
                    ).where(transaction_events.c.transaction_id == record_id)
                )
            }
            missing = [
                HistoryEntry(index=i, at=e.at, status=e.status, note=e.note)
                for i, e in enumerate(state.timeline)
                if (e.at, e.status.value, e.note) not in known
            ]
            await self._append(
                conn,
                record_id,
                missing,
                actor=None,
                key_prefix=f"verify:{state.updated_at.isoformat()}:",
            )
            posted = await self._post(conn, record_id, kind, state)
        return applied is not None or bool(missing) or posted > 0

    async def _requested(
        self, conn: AsyncConnection, record_id: int, state: TransactionState, actor: str
    ) -> None:
        """The first timeline entry of a claimed record: who asked for it."""
        entry = HistoryEntry(index=0, at=state.created_at, status=state.status, note="requested")
        await self._append(conn, record_id, [entry], actor=actor, key_prefix="start:")

    async def _append(
        self,
        conn: AsyncConnection,
        record_id: int,
        entries: Sequence[HistoryEntry],
        *,
        actor: str | None,
        key_prefix: str,
    ) -> None:
        if not entries:
            return
        await conn.execute(
            insert(transaction_events)
            .values(
                [
                    {
                        "transaction_id": record_id,
                        "event_key": f"{key_prefix}{entry.index}",
                        "at": entry.at,
                        "status": entry.status.value,
                        "note": entry.note,
                        "actor": actor or _actor(entry.note),
                    }
                    for entry in entries
                ]
            )
            .on_conflict_do_nothing(constraint="uq_transaction_events_key")
        )

    async def _post(
        self, conn: AsyncConnection, record_id: int, kind: Kind, state: TransactionState
    ) -> int:
        """Post the journal entries ``state`` implies that are not posted yet; how many."""
        wanted = entries_for(kind.value, state)
        if not wanted:
            return 0
        posted = 0
        for entry in wanted:
            entry_id = (
                await conn.execute(
                    insert(journal_entries)
                    .values(
                        transaction_id=record_id,
                        entry_key=entry.key,
                        description=entry.description,
                        posted_at=state.completed_at or state.updated_at,
                    )
                    .on_conflict_do_nothing(constraint="uq_journal_entries_key")
                    .returning(journal_entries.c.id)
                )
            ).scalar_one_or_none()
            if entry_id is None:
                continue
            posted += 1
            await conn.execute(
                insert(journal_lines).values(
                    [
                        {
                            "entry_id": entry_id,
                            "account": line.account,
                            "provider": line.provider,
                            "currency": entry.currency,
                            "amount": line.amount,
                        }
                        for line in entry.lines
                    ]
                )
            )
        return posted

    # ------------------------------------------------------------------ reads

    async def get(self, kind: Kind, merchant: str, reference: str) -> StoredRecord | None:
        """The record under (merchant, kind, reference), started or not."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(transactions).where(
                        transactions.c.merchant == merchant,
                        transactions.c.kind == kind.value,
                        transactions.c.reference == reference,
                    )
                )
            ).one_or_none()
        return _record(row) if row is not None else None

    async def by_workflow_id(self, workflow_id: str) -> StoredRecord | None:
        """The record of the workflow ``workflow_id``."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(transactions).where(transactions.c.workflow_id == workflow_id)
                )
            ).one_or_none()
        return _record(row) if row is not None else None

    async def page(
        self,
        kind: Kind,
        merchant: str,
        filters: ListFilters,
        *,
        limit: int,
        starting_after: str | None = None,
    ) -> tuple[list[StoredRecord], bool]:
        """Newest first; the records after the one with reference ``starting_after``, and
        whether more follow. ``LookupError`` when that reference is not in the store."""
        query = select(transactions).where(
            transactions.c.merchant == merchant,
            transactions.c.kind == kind.value,
            transactions.c.started.is_(True),
            *_filter_clauses(filters),
        )
        async with self.engine.connect() as conn:
            if starting_after is not None:
                cursor = (
                    await conn.execute(
                        select(transactions.c.created_at, transactions.c.id).where(
                            transactions.c.merchant == merchant,
                            transactions.c.kind == kind.value,
                            transactions.c.reference == starting_after,
                        )
                    )
                ).one_or_none()
                if cursor is None:
                    raise LookupError(starting_after)
                query = query.where(
                    tuple_(transactions.c.created_at, transactions.c.id)
                    < tuple_(cursor.created_at, cursor.id)
                )
            rows = (
                await conn.execute(
                    query.order_by(
                        transactions.c.created_at.desc(), transactions.c.id.desc()
                    ).limit(limit + 1)
                )
            ).all()
        records = [_record(row) for row in rows[:limit]]
        return records, len(rows) > limit

    async def export(
        self,
        merchant: str,
        *,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
        kind: Kind | None = None,
        filters: ListFilters | None = None,
        page_size: int = 500,
    ) -> AsyncGenerator[StoredRecord, None]:
        """Every started record of ``merchant`` in the period (of ``kind``, every kind when
        None; narrowed by ``filters`` when given, whose period then applies), oldest first,
        page by page (no connection is held between pages)."""
        after: tuple[datetime, int] | None = None
        filters = filters or ListFilters(created_gte=created_gte, created_lte=created_lte)
        kinds = [transactions.c.kind == kind.value] if kind is not None else []
        while True:
            query = select(transactions).where(
                transactions.c.merchant == merchant,
                transactions.c.started.is_(True),
                *kinds,
                *_filter_clauses(filters),
            )
            if after is not None:
                query = query.where(
                    tuple_(transactions.c.created_at, transactions.c.id) > tuple_(*after)
                )
            async with self.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        query.order_by(transactions.c.created_at, transactions.c.id).limit(
                            page_size
                        )
                    )
                ).all()
            for row in rows:
                yield _record(row)
            if len(rows) < page_size:
                return
            after = (rows[-1].created_at, rows[-1].id)

    async def recorded_workflow_ids(self, workflow_ids: Sequence[str]) -> set[str]:
        """Which of ``workflow_ids`` have a record (a reference taken, past or present)."""
        found: set[str] = set()
        async with self.engine.connect() as conn:
            for start in range(0, len(workflow_ids), 1000):
                batch = list(workflow_ids[start : start + 1000])
                rows = await conn.execute(
                    select(transactions.c.workflow_id).where(transactions.c.workflow_id.in_(batch))
                )
                found.update(r.workflow_id for r in rows)
        return found

    async def timeline(self, record_id: int) -> list[dict[str, Any]]:
        """The record's whole timeline, oldest first."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(transaction_events)
                .where(transaction_events.c.transaction_id == record_id)
                .order_by(transaction_events.c.at, transaction_events.c.id)
            )
            return [
                {"at": r.at, "status": r.status, "note": r.note, "actor": r.actor} for r in rows
            ]

    async def journal(self, record_id: int) -> list[JournalEntry]:
        """The journal entries posted for a record."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        journal_entries.c.id,
                        journal_entries.c.entry_key,
                        journal_entries.c.description,
                        journal_lines.c.account,
                        journal_lines.c.provider,
                        journal_lines.c.currency,
                        journal_lines.c.amount,
                    )
                    .join(journal_lines, journal_lines.c.entry_id == journal_entries.c.id)
                    .where(journal_entries.c.transaction_id == record_id)
                    .order_by(journal_entries.c.id, journal_lines.c.id)
                )
            ).all()
        from momoflow.records.journal import JournalLine

        grouped: dict[int, JournalEntry] = {}
        for r in rows:
            line = JournalLine(r.account, r.amount, r.provider)
            found = grouped.get(r.id)
            grouped[r.id] = JournalEntry(
                key=r.entry_key,
                description=r.description,
                currency=r.currency,
                lines=(found.lines if found else ()) + (line,),
            )
        return list(grouped.values())

    async def unbalanced_entries(self) -> list[tuple[int, str, str, int]]:
        """Journal entries whose lines do not sum to zero per currency (there must be
        none): (transaction id, entry key, currency, sum)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(
                    journal_entries.c.transaction_id,
                    journal_entries.c.entry_key,
                    journal_lines.c.currency,
                    func.sum(journal_lines.c.amount).label("total"),
                )
                .join(journal_lines, journal_lines.c.entry_id == journal_entries.c.id)
                .group_by(
                    journal_entries.c.id,
                    journal_entries.c.transaction_id,
                    journal_entries.c.entry_key,
                    journal_lines.c.currency,
                )
                .having(func.sum(journal_lines.c.amount) != 0)
            )
            return [(r.transaction_id, r.entry_key, r.currency, int(r.total)) for r in rows]

    async def unjournaled(self) -> list[str]:
        """Workflow ids of records that moved money (succeeded, late succeeded) but have no
        journal entry (there must be none)."""
        moved = [TransactionStatus.SUCCEEDED.value, TransactionStatus.LATE_SUCCEEDED.value]
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(transactions.c.workflow_id).where(
                    transactions.c.status.in_(moved),
                    ~select(journal_entries.c.id)
                    .where(journal_entries.c.transaction_id == transactions.c.id)
                    .exists(),
                )
            )
            return sorted(r.workflow_id for r in rows)

    async def balances(self) -> list[Balance]:
        """Every provider float per currency: the journal's expectation beside the latest
        balance the provider reported."""
        async with self.engine.connect() as conn:
            expected = {
                (r.provider, r.currency): int(r.total)
                for r in await conn.execute(
                    select(
                        journal_lines.c.provider,
                        journal_lines.c.currency,
                        func.sum(journal_lines.c.amount).label("total"),
                    )
                    .where(journal_lines.c.account.like("provider:%:float"))
                    .group_by(journal_lines.c.provider, journal_lines.c.currency)
                )
            }
            latest = (
                select(
                    reported_balances,
                    func.row_number()
                    .over(
                        partition_by=(reported_balances.c.provider, reported_balances.c.currency),
                        order_by=reported_balances.c.reported_at.desc(),
                    )
                    .label("n"),
                )
            ).subquery()
            reported = {
                (r.provider, r.currency): r
                for r in await conn.execute(select(latest).where(latest.c.n == 1))
            }
        keys = sorted(set(expected) | set(reported))
        return [
            Balance(
                provider=provider,
                currency=currency,
                expected=expected.get((provider, currency), 0),
                reported=reported[(provider, currency)].balance
                if (provider, currency) in reported
                else None,
                reported_at=reported[(provider, currency)].reported_at
                if (provider, currency) in reported
                else None,
                source=reported[(provider, currency)].source
                if (provider, currency) in reported
                else None,
            )
            for provider, currency in keys
        ]

    async def report_balance(
        self, provider: str, currency: str, balance: int, *, at: datetime, source: str
    ) -> None:
        """Keep a balance a provider reported (the same provider, currency and time once)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(reported_balances)
                .values(
                    provider=provider,
                    currency=currency,
                    balance=balance,
                    reported_at=at,
                    source=source,
                )
                .on_conflict_do_nothing(constraint="uq_reported_balances_at")
            )

    async def records_since(
        self, since: datetime | None, *, after_id: int = 0, limit: int
    ) -> list[StoredRecord]:
        """Records not final yet, or updated since ``since`` (every record when None), in
        id order after ``after_id``, at most ``limit`` (``records verify`` pages through
        them)."""
        query = select(transactions).where(transactions.c.id > after_id)
        if since is not None:
            query = query.where(
                or_(
                    transactions.c.updated_at >= since,
                    transactions.c.status.in_(
                        [s.value for s in TransactionStatus if not s.is_final]
                    ),
                )
            )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(transactions.c.id).limit(limit))).all()
        return [_record(row) for row in rows]


def _filter_clauses(filters: ListFilters) -> list[Any]:
    clauses: list[Any] = []
    if filters.status is not None:
        clauses.append(transactions.c.status == filters.status.value)
    if filters.provider is not None:
        clauses.append(transactions.c.provider == filters.provider)
    if filters.country is not None:
        clauses.append(transactions.c.country == filters.country)
    if filters.campaign is not None:
        clauses.append(transactions.c.campaign == filters.campaign)
    if filters.created_gte is not None:
        clauses.append(transactions.c.created_at >= filters.created_gte)
    if filters.created_lte is not None:
        clauses.append(transactions.c.created_at <= filters.created_lte)
    if filters.reference_prefix is not None:
        clauses.append(
            transactions.c.reference.like(_like_prefix(filters.reference_prefix), escape="\\")
        )
    return clauses


def _like_prefix(prefix: str) -> str:
    """``prefix`` as a ``LIKE`` pattern that matches what starts with it."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
