"""The providers momoflow knows: every subpackage of :mod:`momoflow.providers` whose
``spec`` module defines ``SPEC``, a :class:`~momoflow.providers.spec.ProviderSpec`.

They are found once, when this module is first imported, and ordered as
:class:`~momoflow.models.ProviderName` declares them. Functions that take ``specs`` use the
discovered ones by default; passing a list runs the same code for other specs (tests).

Import this module from code that *uses* providers, never from a provider package: the
packages are imported from here.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Iterable, Sequence
from typing import Any

import momoflow.providers
from momoflow.models import ProviderName
from momoflow.providers.capabilities import ProviderCapabilities
from momoflow.providers.spec import ProviderSpec

#: The module of a provider package that defines ``SPEC``.
SPEC_MODULE = "spec"


def discover(package_name: str = momoflow.providers.__name__) -> tuple[ProviderSpec[Any], ...]:
    """The ``SPEC`` of each subpackage of ``package_name`` that has a ``spec`` module, in
    :class:`ProviderName` order. Raises ``TypeError`` for a ``SPEC`` that is not a spec and
    ``ValueError`` for two specs of one provider."""
    package = importlib.import_module(package_name)
    found: list[ProviderSpec[Any]] = []
    for module in pkgutil.iter_modules(package.__path__):
        if not module.ispkg:
            continue
        name = f"{package_name}.{module.name}.{SPEC_MODULE}"
        if importlib.util.find_spec(name) is None:
            continue
        spec = getattr(importlib.import_module(name), "SPEC", None)
        if not isinstance(spec, ProviderSpec):
            raise TypeError(f"{name}.SPEC is not a ProviderSpec")
        found.append(spec)
    return ordered(found)


def ordered(specs: Iterable[ProviderSpec[Any]]) -> tuple[ProviderSpec[Any], ...]:
    """``specs`` in :class:`ProviderName` order; ``ValueError`` when a name repeats."""
    by_name: dict[ProviderName, ProviderSpec[Any]] = {}
    for spec in specs:
        if spec.name in by_name:
            raise ValueError(f"two provider specs are named {spec.name.value}")
        by_name[spec.name] = spec
    order = list(ProviderName)
    return tuple(sorted(by_name.values(), key=lambda spec: order.index(spec.name)))


_SPECS = discover()


def all_specs() -> tuple[ProviderSpec[Any], ...]:
    """Every discovered provider spec, in :class:`ProviderName` order."""
    return _SPECS


def find_spec(
    name: ProviderName, specs: Sequence[ProviderSpec[Any]] | None = None
) -> ProviderSpec[Any] | None:
    """The spec of ``name`` among ``specs`` (default: the discovered ones), or None."""
    for spec in _SPECS if specs is None else specs:
        if spec.name is name:
            return spec
    return None


def spec_for(
    name: ProviderName, specs: Sequence[ProviderSpec[Any]] | None = None
) -> ProviderSpec[Any]:
    """The spec of ``name`` among ``specs`` (default: the discovered ones); ``KeyError``
    when there is none."""
    spec = find_spec(name, specs)
    if spec is None:
        raise KeyError(f"no provider spec for {name.value}")
    return spec


def capabilities_of(name: ProviderName) -> ProviderCapabilities:
    """The static capabilities of a discovered provider."""
    return spec_for(name).capabilities


#: Providers whose status reads are batched (their status read is a list read). Read from
#: the providers' code, never from settings: it decides which path a workflow takes, so it
#: must not change with a deployment's configuration.
SHARED_READ_PROVIDERS = frozenset(
    spec.name for spec in _SPECS if spec.capabilities.shared_status_reads
)
