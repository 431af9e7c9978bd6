"""What a provider package tells the rest of momoflow: one :class:`ProviderSpec`.

Each package ``momoflow/providers/<name>/`` defines ``SPEC`` in its ``spec`` module, and
:mod:`momoflow.providers.catalog` finds it there. Settings, request validation, the adapter
registry, refunds, reconciliation and the sandbox command line read what they need from the
specs; none of them names a provider.

Per-provider configuration behaviour (which fields are secrets, the plan's rate limit, a
slower poll schedule, a secret part of the webhook URL) is a method of the provider's
settings model, a :class:`ProviderSettingsBase`; the spec carries the rest: capabilities,
the adapter factory, extra request rules, refund guidance and the sandbox's entry point.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

import httpx
from pydantic import BaseModel, SecretStr

from momoflow.models import ProviderName
from momoflow.problems import FieldProblem
from momoflow.providers.base import PaymentProvider
from momoflow.providers.capabilities import ProviderCapabilities
from momoflow.status_reads import ReadBudget

if TYPE_CHECKING:
    from momoflow.business_requests import PayinRequest, PayoutRequest


@dataclass(frozen=True)
class SandboxLaunch:
    """How ``momoflow dev`` starts a provider's sandbox for one set of settings: command-line
    arguments, and environment variables for the values that must not show in ``ps``."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)


class ProviderSettingsBase(BaseModel):
    """The settings of one provider account (``MOMOFLOW_<NAME>__*``).

    Every provider has a base URL and a per-call timeout; the methods are what settings,
    the registry and the dev stack ask of any provider. The defaults fit a provider that
    signs its webhooks, polls on the global schedule and reads statuses one by one.
    """

    base_url: str
    timeout_s: float

    @abstractmethod
    def secrets(self) -> dict[str, SecretStr | None]:
        """The credentials, by field name, that production refuses to run with at their
        development values."""

    @classmethod
    def development_secrets(cls) -> frozenset[str]:
        """The default values of :meth:`secrets`: development values, refused in
        production (every field of a provider's settings has a default)."""
        return frozenset(
            secret.get_secret_value()
            for secret in cls.model_validate({}).secrets().values()
            if secret is not None
        )

    @abstractmethod
    def rate_limit_per_second(self) -> float:
        """The activity rate the Temporal server holds this provider's task queue to."""

    @abstractmethod
    def sandbox_launch(self, webhook_url: str) -> SandboxLaunch:
        """How to start this provider's sandbox so that it accepts these credentials and
        sends its webhooks to ``webhook_url``."""

    def confirms_payout_webhooks(self) -> bool:
        """Whether a signed final payout webhook waits for a status read before it counts."""
        return True

    def status_read_budget(self) -> ReadBudget | None:
        """What batched status reads may spend; None for a provider that reads statuses
        one transaction at a time."""
        return None

    def poll_schedule_override(self) -> list[int] | None:
        """Status-poll delays of new payouts and payins in place of the global schedule,
        or None to keep it."""
        return None

    def webhook_path(self) -> str:
        """What follows ``/webhooks/<name>`` in the webhook URL (empty, or ``/<secret>``
        for a provider that authenticates its webhooks by URL)."""
        return ""


SettingsT = TypeVar("SettingsT", bound=ProviderSettingsBase)

#: Extra rules of a provider for a payin request (after the common ones on mode, phone and
#: operator presence, before currency, country and limits).
PayinRules = Callable[["PayinRequest"], list[FieldProblem]]
#: Extra rules of a provider for a payout request (after the common ones).
PayoutRules = Callable[["PayoutRequest"], list[FieldProblem]]


def no_payin_rules(request: PayinRequest) -> list[FieldProblem]:
    """The rules of a provider that adds none to payins."""
    return []


def no_payout_rules(request: PayoutRequest) -> list[FieldProblem]:
    """The rules of a provider that adds none to payouts."""
    return []


@dataclass(frozen=True)
class SandboxEntry:
    """A provider's simulator in ``momoflow.sandbox``, named by strings so that nothing
    imports a sandbox until it is run."""

    #: Subcommand of ``python -m momoflow.sandbox``.
    command: str
    #: ``module:function`` that registers the subcommand on an argparse subparsers object.
    add_parser: str
    #: Port of ``momoflow dev`` and ``momoflow sandboxes`` when none is given.
    default_port: int
    #: Path of the API under the sandbox's root (``/api/v1``), for ``base_url``.
    api_path: str = ""
    #: Path that answers 200 once the sandbox serves.
    health_path: str = "/health"


@dataclass(frozen=True)
class ProviderSpec(Generic[SettingsT]):
    """Everything momoflow needs to know about one provider, outside its own package."""

    name: ProviderName
    #: Human name, for logs and the dev stack's banner (``MOBILE-PAY``).
    title: str
    capabilities: ProviderCapabilities
    #: The model of ``MOMOFLOW_<NAME>__*``; ``Settings`` has one field of it per provider.
    settings_model: type[SettingsT]
    #: The adapter, sharing ``http`` (whose timeout is the settings' ``timeout_s``).
    build_adapter: Callable[[SettingsT, httpx.AsyncClient], PaymentProvider]
    sandbox: SandboxEntry
    payin_rules: PayinRules = no_payin_rules
    payout_rules: PayoutRules = no_payout_rules
    #: What to do instead of a refund, for a provider without a refund API.
    refund_guidance: str | None = None
    #: The fingerprint the provider keeps of our reference when it cannot keep the
    #: reference itself (read by the daily report to match listed transactions).
    reference_marker: Callable[[str], str] | None = None
    #: Settings that suit a local sandbox in ``momoflow dev`` (field name -> value,
    #: as ``MOMOFLOW_<NAME>__<FIELD>`` would give it).
    dev_settings: Mapping[str, str] = field(default_factory=dict)

    def settings_in(self, settings: BaseModel) -> SettingsT:
        """This provider's settings within ``settings`` (a ``momoflow.settings.Settings``)."""
        value = getattr(settings, self.name.value, None)
        if not isinstance(value, self.settings_model):
            raise TypeError(
                f"settings have no {self.settings_model.__name__} for {self.name.value}"
            )
        return value

    def adapter(self, settings: BaseModel, http: httpx.AsyncClient) -> PaymentProvider:
        """The adapter configured by this provider's part of ``settings``."""
        return self.build_adapter(self.settings_in(settings), http)
