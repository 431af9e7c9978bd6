"""MOBILE-PAY (mobile-pay.ci) simulator, written from providers.md section 3 only.

``app`` (routes and request pipeline), ``engine`` (settings, sessions, transfers, QR
payments, webhooks, JSON shapes), ``wire`` (request parsing, errors), ``catalog`` (limits,
fees, test numbers, messages), ``control`` (``/_sandbox``), ``cli`` (the ``mobilepay``
subcommand).
"""

from .app import create_app, describe_credential
from .engine import MobilePayEngine, MobilePaySandboxConfig

__all__ = ["MobilePayEngine", "MobilePaySandboxConfig", "create_app", "describe_credential"]
