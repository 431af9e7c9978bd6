"""Local HTTP simulators ("sandboxes") of the mobile-money aggregators momoflow speaks to.

Each simulator is written from the provider's public documentation only and imports nothing
from :mod:`momoflow.providers`, so that a misreading in an adapter is caught by its sandbox
instead of being mirrored. One package per provider (:mod:`.caurisflux`, :mod:`.novasend`,
:mod:`.mobilepay`) holds what is the provider's own; the provider-neutral machinery (app
skeleton, ``/_sandbox`` control routes, ledger, faults, webhooks, rate limits, idempotency,
clock, serving, command-line plumbing) lives in :mod:`momoflow.sandbox.shared`.

Run one from the command line with ``python -m momoflow.sandbox caurisflux --port 8101``; the
command line finds each simulator through its provider's spec (``SandboxEntry``), the only
link between a simulator and :mod:`momoflow.providers`.
"""
