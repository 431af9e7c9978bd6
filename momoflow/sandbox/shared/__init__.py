"""Provider-neutral machinery shared by the sandboxes.

- :class:`Clock`: wall time and simulated delays compressed by ``time_scale``;
- :class:`TaskSupervisor`: background asyncio tasks cancelled together on shutdown/reset;
- :class:`Ledger`, :class:`MerchantAccount`: executed transfers and the merchant balance;
- :class:`FaultRegistry`, :class:`FaultSpec`: scripted misbehaviour (errors, delays,
  timeouts after execution, garbage bodies, dropped/duplicated/reordered webhooks);
- :class:`WebhookDispatcher`: background webhook delivery with retries and a delivery log;
- :class:`FixedWindowRateLimiter`: per-key fixed-window limits with header values;
- :class:`IdempotencyStore`: responses by (scope, key) with TTL and body fingerprint;
- :class:`RequestLog`, :class:`RequestLogMiddleware`: received requests, secrets redacted;
- :class:`ThreadedServer`, :func:`serve_until_signal`, :func:`bind_socket`: run an app under
  uvicorn on 127.0.0.1;
- :func:`sandbox_app`: the FastAPI skeleton of a simulator (lifespan, state, request log,
  error handlers); :func:`with_request_fault` and :func:`replay_or_execute`: the shared
  steps of its request pipeline;
- :class:`SandboxControl`: the ``/_sandbox`` control routes (:mod:`.control`);
- :mod:`.cli`: the plumbing of the ``python -m momoflow.sandbox`` subcommands.
"""

from .app import SandboxEngine, sandbox_app
from .control import SandboxControl, SettleOrder
from .core import Clock, TaskSupervisor, canonical_json, compact_json, iso_timestamp
from .faults import (
    REQUEST_FAULT_KINDS,
    WEBHOOK_FAULT_KINDS,
    Fault,
    FaultKind,
    FaultRegistry,
    FaultSpec,
    hang,
)
from .idempotency import IdempotencyKeyReuse, IdempotencyStore, StoredResponse
from .ledger import InsufficientBalance, Ledger, LedgerEntry, MerchantAccount
from .limits import FixedWindowRateLimiter, RateDecision
from .pipeline import ready, replay_or_execute, with_request_fault
from .requestlog import (
    OPERATION_STATE_KEY,
    RequestLog,
    RequestLogMiddleware,
    RequestRecord,
    redact_secret,
)
from .serving import (
    PortInUseError,
    SandboxServer,
    ThreadedServer,
    bind_socket,
    serve_until_signal,
    server_config,
    socket_port,
)
from .webhooks import Delivery, DeliveryAttempt, HeaderBuilder, WebhookDispatcher

__all__ = [
    "OPERATION_STATE_KEY",
    "REQUEST_FAULT_KINDS",
    "WEBHOOK_FAULT_KINDS",
    "Clock",
    "Delivery",
    "DeliveryAttempt",
    "Fault",
    "FaultKind",
    "FaultRegistry",
    "FaultSpec",
    "FixedWindowRateLimiter",
    "HeaderBuilder",
    "IdempotencyKeyReuse",
    "IdempotencyStore",
    "InsufficientBalance",
    "Ledger",
    "LedgerEntry",
    "MerchantAccount",
    "PortInUseError",
    "RateDecision",
    "RequestLog",
    "RequestLogMiddleware",
    "RequestRecord",
    "SandboxControl",
    "SandboxEngine",
    "SandboxServer",
    "SettleOrder",
    "StoredResponse",
    "TaskSupervisor",
    "ThreadedServer",
    "WebhookDispatcher",
    "bind_socket",
    "canonical_json",
    "hang",
    "compact_json",
    "iso_timestamp",
    "ready",
    "redact_secret",
    "replay_or_execute",
    "sandbox_app",
    "serve_until_signal",
    "server_config",
    "socket_port",
    "with_request_fault",
]
