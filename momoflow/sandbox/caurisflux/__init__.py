"""CaurisFlux simulator: the documented ``/api/v1`` API, from providers.md section 1 only.

``app`` (routes and request pipeline), ``engine`` (settings, state, lifecycles, JSON
shapes), ``wire`` (request parsing, NestJS errors), ``catalog`` (operators, countries,
test numbers, messages), ``control`` (``/_sandbox``), ``cli`` (the ``caurisflux``
subcommand).
"""

from .app import create_app
from .engine import CaurisFluxEngine, CaurisFluxSandboxConfig

__all__ = ["CaurisFluxEngine", "CaurisFluxSandboxConfig", "create_app"]
