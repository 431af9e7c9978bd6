"""Transactions and their timeline.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transactions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("merchant", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(128), nullable=False),
        sa.Column("workflow_id", sa.String(300), nullable=False, unique=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("fees", sa.BigInteger),
        sa.Column("provider_amount", sa.BigInteger),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("failure_code", sa.String(100)),
        sa.Column("provider_transaction_id", sa.String(200)),
        sa.Column("provider_reference", sa.String(200)),
        sa.Column("campaign", sa.String(128)),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("started", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("seq", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("state", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.UniqueConstraint("merchant", "kind", "reference", name="uq_transactions_reference"),
    )
    op.create_index(
        "ix_transactions_list",
        "transactions",
        ["merchant", "kind", sa.text("created_at DESC"), sa.text("id DESC")],
    )
    op.create_index("ix_transactions_created", "transactions", ["merchant", "created_at"])
    op.create_index("ix_transactions_status", "transactions", ["status"])
    op.create_table(
        "transaction_events",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "transaction_id",
            sa.BigInteger,
            sa.ForeignKey("transactions.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("event_key", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.UniqueConstraint("transaction_id", "event_key", name="uq_transaction_events_key"),
    )


def downgrade() -> None:
    op.drop_table("transaction_events")
    op.drop_table("transactions")
