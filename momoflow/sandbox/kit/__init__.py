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
  uvicorn on 127.0.0.1.
"""

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
    "SandboxServer",
    "StoredResponse",
    "TaskSupervisor",
    "ThreadedServer",
    "WebhookDispatcher",
    "bind_socket",
    "canonical_json",
    "hang",
    "compact_json",
    "iso_timestamp",
    "redact_secret",
    "serve_until_signal",
    "server_config",
    "socket_port",
]
