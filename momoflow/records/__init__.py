"""The system of record: every payout, payin and refund in PostgreSQL, with its timeline and
its double-entry journal, for as long as the business keeps them (Temporal keeps a
workflow only for its namespace's retention).

* :mod:`~momoflow.records.store` - :class:`RecordStore`, the reads and idempotent writes;
* :mod:`~momoflow.records.schema` and ``migrations/`` - the tables and their Alembic
  revisions (``momoflow db upgrade``);
* :mod:`~momoflow.records.journal` - the journal entries a transaction's state implies;
* :mod:`~momoflow.records.writes` - what a workflow sends at a state change;
* :mod:`~momoflow.records.embedded` - the embedded PostgreSQL of ``momoflow dev`` and the
  tests.
"""
