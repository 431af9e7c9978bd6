"""NovaSend simulator: the documented ``/v1`` API, from providers.md section 2 only.

``app`` (routes and request pipeline), ``config`` (settings), ``transfers`` (transfer and
refund records), ``engine`` (state, lifecycles, balances, webhooks), ``payloads`` (JSON
shapes of transfers and refunds), ``wire`` (request parsing, errors), ``catalog``
(countries, operators, limits, fees, test numbers, messages), ``control`` (``/_sandbox``),
``cli`` (the ``novasend`` subcommand).
"""

from .app import create_app
from .config import NovaSendSandboxConfig
from .engine import NovaSendEngine

__all__ = ["NovaSendEngine", "NovaSendSandboxConfig", "create_app"]
