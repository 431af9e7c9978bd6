"""Reconciliation: closing what the transaction workflows cannot close alone.

* :mod:`~momoflow.reconciliation.rules`: what the sweep, the daily report and the operator's
  tools exchange, and the pure rules that compare momoflow's outcomes with a provider's;
* :mod:`~momoflow.reconciliation.operations`: the same over a Temporal client (listing,
  rechecking, resolving, running, scheduling), used by the activities and the CLI;
* :mod:`~momoflow.reconciliation.cli`: ``momoflow reconcile``.

The workflows are in ``workflows/reconcile.py`` and their activities in
``activities/reconcile.py``.
"""
