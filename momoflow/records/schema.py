"""The record store's tables (SQLAlchemy Core). Migrations in ``migrations/versions`` create
exactly these; ``tests/test_records_migrations.py`` checks that they agree.

* ``transactions``: one row per payout, payin and refund, unique on (merchant, kind,
  reference). ``state`` holds the body that ``GET /v1/{kind}s/{reference}`` answers; the
  other columns are what lists filter and sort on. ``seq`` counts the workflow's writes:
  an older write never overwrites a newer one.
* ``transaction_events``: the append-only timeline, with who or what made each change.
* ``journal_entries`` and ``journal_lines``: the double-entry journal. Every entry's lines
  sum to zero per currency; an entry is keyed per transaction, so a repeated write adds
  nothing.
* ``reported_balances``: what the providers said their balances were, and when.
* ``operators``, ``console_sessions`` and ``audit_events``: the finance console's people,
  their sessions (only a SHA-256 of each session token), and the append-only audit trail
  of what they did.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

transactions = Table(
    "transactions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("merchant", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("reference", String(128), nullable=False),
    Column("workflow_id", String(300), nullable=False, unique=True),
    Column("provider", String(32), nullable=False),
    Column("country", String(2), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("fees", BigInteger),
    Column("provider_amount", BigInteger),
    Column("status", String(32), nullable=False),
    Column("failure_code", String(100)),
    Column("provider_transaction_id", String(200)),
    Column("provider_reference", String(200)),
    Column("campaign", String(128)),
    Column("fingerprint", String(128), nullable=False),
    #: The workflow run that owns the record (set by its first write or claim).
    Column("run_id", String(64)),
    #: False until the workflow is known to exist (the start path inserts first).
    Column("started", Boolean, nullable=False, server_default=text("false")),
    Column("seq", Integer, nullable=False, server_default=text("0")),
    Column("state", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    UniqueConstraint("merchant", "kind", "reference", name="uq_transactions_reference"),
)
Index(
    "ix_transactions_list",
    transactions.c.merchant,
    transactions.c.kind,
    transactions.c.created_at.desc(),
    transactions.c.id.desc(),
)
Index("ix_transactions_created", transactions.c.merchant, transactions.c.created_at)
Index("ix_transactions_status", transactions.c.status)

transaction_events = Table(
    "transaction_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "transaction_id",
        BigInteger,
        ForeignKey("transactions.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    #: Unique per transaction: the workflow's entry number, or a repair's own key.
    Column("event_key", String(100), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status", String(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    UniqueConstraint("transaction_id", "event_key", name="uq_transaction_events_key"),
)

journal_entries = Table(
    "journal_entries",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "transaction_id",
        BigInteger,
        ForeignKey("transactions.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("entry_key", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("posted_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    UniqueConstraint("transaction_id", "entry_key", name="uq_journal_entries_key"),
)

journal_lines = Table(
    "journal_lines",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "entry_id",
        BigInteger,
        ForeignKey("journal_entries.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("account", String(100), nullable=False),
    Column("provider", String(32)),
    Column("currency", String(3), nullable=False),
    #: Minor units; a debit is positive, a credit negative.
    Column("amount", BigInteger, nullable=False),
)
Index("ix_journal_lines_account", journal_lines.c.account, journal_lines.c.currency)

reported_balances = Table(
    "reported_balances",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("balance", BigInteger, nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    Column("source", String(100), nullable=False),
    UniqueConstraint("provider", "currency", "reported_at", name="uq_reported_balances_at"),
)

operators = Table(
    "operators",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("merchant", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("language", String(2), nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("password_changed_at", DateTime(timezone=True), nullable=False),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column(
        "operator_id",
        BigInteger,
        ForeignKey("operators.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("address", String(64), nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    #: ``operator:<name>``, or the name tried at a failed login.
    Column("actor", String(200), nullable=False),
    Column("merchant", String(64)),
    Column("action", String(64), nullable=False),
    Column("target", String(300), nullable=False, server_default=text("''")),
    Column("reason", Text, nullable=False, server_default=text("''")),
    #: ``ok``, ``refused`` or ``failed``.
    Column("outcome", String(16), nullable=False),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("address", String(64), nullable=False, server_default=text("''")),
)
Index("ix_audit_events_at", audit_events.c.at)
Index("ix_audit_events_login", audit_events.c.action, audit_events.c.actor, audit_events.c.at)
