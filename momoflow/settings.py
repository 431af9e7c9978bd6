"""Configuration: every knob has an environment variable and a safe default.

Variables are prefixed ``MOMOFLOW_``; nested groups use ``__``, for example
``MOMOFLOW_CAURISFLUX__BASE_URL`` or ``MOMOFLOW_TEMPORAL__ADDRESS``. A ``.env`` file in the
working directory is read too. Outside ``env=local``/``test`` the development secrets are
refused, so a production deployment cannot start with them.

Each provider's group (``caurisflux``, ``novasend``, ``mobilepay``, ...) is a field generated
from its :class:`~momoflow.providers.spec.ProviderSpec`: the field is named after the
provider and typed by the spec's settings model, which lives in the provider's package.
Methods about a provider ask its settings model (:meth:`Settings.for_provider`), never
branch on its name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Sequence
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from momoflow.codec import KEY_ID_PATTERN, decode_key, is_valid_key_id
from momoflow.ids import MERCHANT_PATTERN
from momoflow.models import PayinTimings, PayoutTimings, ProviderName
from momoflow.outbound import DestinationPolicy
from momoflow.providers.catalog import all_specs

# Re-exported for existing imports: each provider's model lives in its own package.
from momoflow.providers.caurisflux.settings import CaurisFluxSettings
from momoflow.providers.mobilepay.settings import MobilePaySettings
from momoflow.providers.novasend.settings import NovaSendSettings
from momoflow.providers.spec import ProviderSettingsBase, ProviderSpec
from momoflow.status_reads import ReadBudget

__all__ = [
    "DEV_API_KEY",
    "DEV_CODEC_KEY",
    "DEV_CODEC_KEY_ID",
    "DEV_OPERATOR_TOKEN",
    "DEV_SECRETS",
    "ApiKeyEntry",
    "CampaignSettings",
    "CaurisFluxSettings",
    "CodecSettings",
    "LimitSettings",
    "MerchantLimitOverride",
    "MobilePaySettings",
    "NovaSendSettings",
    "OperatorTokenEntry",
    "ProviderSettingsBase",
    "ReconcileSettings",
    "Settings",
    "TelemetrySettings",
    "TemporalSettings",
    "configure_logging",
    "get_settings",
    "hash_api_key",
    "provider_fields",
]

#: Secrets shipped for local development and tests only: momoflow's own, and the default
#: credentials of every provider's settings.
DEV_SECRETS = frozenset({"dev-fingerprint-secret", "dev-notification-secret"}).union(
    *(spec.settings_model.development_secrets() for spec in all_specs())
)

#: The API key of the ``demo`` merchant in local development (``momoflow dev``).
DEV_API_KEY = "mf_dev_demo_key"

#: The payload codec's development key (AES-256, base64) and its id: local and test only.
DEV_CODEC_KEY_ID = "dev"
DEV_CODEC_KEY = "bW9tb2Zsb3ctZGV2LWNvZGVjLWtleS0zMi1ieXRlcyE="
#: The operator token that may decode payloads in local development and tests.
DEV_OPERATOR_TOKEN = "mfop_dev_operator_token"


def hash_api_key(key: str) -> str:
    """SHA-256 hex digest of an API key, as stored in ``MOMOFLOW_API_KEYS``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class TemporalSettings(BaseModel):
    """Where the Temporal server is, and how to reach it."""

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    tls: bool = False
    api_key: SecretStr | None = None


class DatabaseSettings(BaseModel):
    """The record store: PostgreSQL, through SQLAlchemy (async, asyncpg).

    ``url`` is a SQLAlchemy URL (``postgresql+asyncpg://user:password@host:5432/momoflow``;
    ``postgresql://`` is taken to mean asyncpg). It is required in staging and production;
    ``momoflow dev`` and the tests start an embedded PostgreSQL 16 and set it.
    """

    url: SecretStr | None = None
    #: Connections each process keeps open, and how many more it may open under load.
    pool_size: int = Field(default=5, ge=1, le=100)
    max_overflow: int = Field(default=10, ge=0, le=100)
    #: How long one statement (or waiting for a connection) may take before the request
    #: answers 503 or the record write is retried.
    statement_timeout_s: float = Field(default=10.0, gt=0, le=300)


class ConsoleSettings(BaseModel):
    """The finance console (``/console``): operator sessions, logins, how pages show time.

    Operators are made with ``momoflow operators add`` and kept in the record store.
    """

    #: How long a console session lasts after its login, whatever the activity.
    session_ttl_s: int = Field(default=8 * 3600, ge=300, le=7 * 24 * 3600)
    #: A session unused for this long ends.
    idle_timeout_s: int = Field(default=30 * 60, ge=60, le=24 * 3600)
    #: Send the session cookie only over HTTPS. Browsers accept it over plain HTTP on
    #: ``localhost`` and ``127.0.0.1`` too; switch it off only behind a TLS proxy that
    #: talks to the gateway over HTTP on another host name.
    secure_cookies: bool = True
    #: Failed logins allowed per operator name, and per client address, within
    #: ``login_window_s``; the next attempt is refused without checking its password.
    login_failures_per_name: int = Field(default=5, ge=1, le=100)
    login_failures_per_address: int = Field(default=20, ge=1, le=1000)
    login_window_s: int = Field(default=15 * 60, ge=10, le=24 * 3600)
    #: The time zone of operators made without ``--time-zone`` (IANA name).
    time_zone: str = "Africa/Abidjan"
    #: The page language before an operator chooses one (``fr`` or ``en``).
    language: Literal["fr", "en"] = "fr"
    #: The Temporal UI, for the link on each transaction's page.
    temporal_ui_url: str = "http://127.0.0.1:8233"
    temporal_namespace: str = "default"

    @field_validator("time_zone")
    @classmethod
    def _check_time_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Africa/Dakar)") from None
        return value


class ApiKeyEntry(BaseModel):
    """One business caller: the merchant it acts for and the SHA-256 of its key."""

    merchant: str = Field(pattern=MERCHANT_PATTERN)
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ReconcileSettings(BaseModel):
    """Reconciliation: the sweep of ``reconciling`` transactions and the daily report per
    provider (both Temporal Schedules, made by ``momoflow reconcile schedule``)."""

    #: Seconds between two sweeps (overlapping runs are skipped).
    sweep_interval_s: int = Field(default=900, ge=60)
    #: Reconciling transactions rechecked per sweep; the rest wait for the next one.
    sweep_max_transactions: int = Field(default=500, ge=1)
    #: How long a sweep waits for the status reads it asked for.
    recheck_wait_s: int = Field(default=180, ge=10)
    #: When the daily report runs (UTC); it covers the previous UTC day.
    report_hour_utc: int = Field(default=2, ge=0, le=23)
    report_minute_utc: int = Field(default=30, ge=0, le=59)
    #: Where report files go (relative paths are under ``state_dir``); use storage every
    #: worker shares, since any worker may write a report.
    reports_dir: str = "reports"
    #: Transactions a report compares per side before it declares itself incomplete.
    report_max_transactions: int = Field(default=20_000, ge=1)
    #: Status reads a report keeps in flight (providers without a transaction list).
    report_read_concurrency: int = Field(default=10, ge=1, le=100)


class CampaignSettings(BaseModel):
    """Bulk payout campaigns: where files live and how lines without a provider route."""

    #: Local directory of the campaign store (relative paths are under ``state_dir``).
    store_dir: str = "campaigns"
    #: S3-compatible bucket for the campaign store; when set it replaces ``store_dir``.
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_prefix: str = "campaigns/"
    #: Provider of lines that name none, by ``COUNTRY/operator`` or ``COUNTRY``. JSON:
    #: ``{"CI/orange_money": "novasend", "SN": "caurisflux"}``; otherwise the first enabled
    #: provider (in ``providers`` order) that pays that operator in that country.
    routes: dict[str, ProviderName] = Field(default_factory=dict)
    #: Largest upload accepted by ``POST /v1/campaigns`` (bytes).
    max_upload_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    #: Distinct (provider, country, operator, amount) prices quoted by pre-flight per
    #: campaign; lines beyond are estimated at the highest quoted fee rate.
    preflight_quote_limit: int = Field(default=50, ge=0)

    @field_validator("routes", mode="before")
    @classmethod
    def _parse_routes(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value)
        return value


class MerchantLimitOverride(BaseModel):
    """One merchant's own limits; what is left out follows :class:`LimitSettings`."""

    requests_per_window: int | None = Field(default=None, ge=1)
    concurrent_preflights: int | None = Field(default=None, ge=1)


class LimitSettings(BaseModel):
    """Per-merchant limits on the business API (``/v1``), held across gateway replicas
    (:mod:`momoflow.merchant_limits`). Over the limit, a request is answered 429 with
    ``Retry-After`` and starts nothing."""

    #: Requests each merchant may send per window, all ``/v1`` routes together.
    requests_per_window: int = Field(default=600, ge=1)
    #: The window, in seconds (fixed windows: ``floor(now / window_s)``).
    window_s: int = Field(default=10, ge=1, le=3600)
    #: Campaigns of one merchant in pre-flight at once (pre-flight holds a file's lines in
    #: the worker's memory).
    concurrent_preflights: int = Field(default=2, ge=1)
    #: Per-merchant exceptions. JSON:
    #: ``{"acme": {"requests_per_window": 3000, "concurrent_preflights": 4}}``.
    merchants: dict[str, MerchantLimitOverride] = Field(default_factory=dict)
    #: How long the gateway waits for the shared limits before it counts on its own.
    shared_timeout_s: float = Field(default=2.0, gt=0, le=30)

    @field_validator("merchants", mode="before")
    @classmethod
    def _parse_merchants(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value)
        return value

    def requests_for(self, merchant: str) -> int:
        """The requests ``merchant`` may send per window."""
        override = self.merchants.get(merchant)
        if override is not None and override.requests_per_window is not None:
            return override.requests_per_window
        return self.requests_per_window

    def preflights_for(self, merchant: str) -> int:
        """The campaigns ``merchant`` may have in pre-flight at once."""
        override = self.merchants.get(merchant)
        if override is not None and override.concurrent_preflights is not None:
            return override.concurrent_preflights
        return self.concurrent_preflights


class OperatorTokenEntry(BaseModel):
    """One operator allowed to use the codec endpoints, and the SHA-256 of their token."""

    operator: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


def _https_or_loopback(origin: str) -> bool:
    scheme, _, rest = origin.partition("://")
    host = rest.split("/", 1)[0].rsplit(":", 1)[0].strip("[]").lower()
    return scheme == "https" or (scheme == "http" and host in ("localhost", "127.0.0.1", "::1"))


class CodecSettings(BaseModel):
    """Encryption of Temporal payloads (``momoflow/codec.py``) and the gateway's codec
    endpoints that let operators read them in the Temporal UI."""

    # Validation errors must not echo keys.
    model_config = ConfigDict(hide_input_in_errors=True)

    #: Key id -> base64 AES-256 key. JSON: ``{"2026-01": "<base64>"}``. Keep retired keys
    #: as long as histories encrypted with them are kept.
    keys: dict[str, SecretStr] = Field(
        default_factory=lambda: {DEV_CODEC_KEY_ID: SecretStr(DEV_CODEC_KEY)}
    )
    #: The key new payloads are encrypted with.
    active_key_id: str = DEV_CODEC_KEY_ID
    #: Who may call ``/codec/encode`` and ``/codec/decode``. JSON:
    #: ``[{"operator": "awa", "token_sha256": "<hex>"}]``; make entries with
    #: ``momoflow keys operator NAME``.
    operator_tokens: list[OperatorTokenEntry] = Field(
        default_factory=lambda: [
            OperatorTokenEntry(operator="dev", token_sha256=hash_api_key(DEV_OPERATOR_TOKEN))
        ]
    )
    #: Origins of the Temporal UI allowed to call the codec endpoints from a browser (CORS).
    #: JSON: ``["https://temporal.example.com"]``.
    ui_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8233", "http://localhost:8233"]
    )
    #: Lifetime of an operator's browser session (``/codec/login``).
    session_ttl_s: int = Field(default=8 * 3600, ge=60, le=7 * 24 * 3600)

    @field_validator("keys", "operator_tokens", "ui_origins", mode="before")
    @classmethod
    def _parse_json(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value)
        return value

    @field_validator("keys")
    @classmethod
    def _check_keys(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        if not value:
            raise ValueError("at least one codec key is required")
        for key_id, key in value.items():
            if not is_valid_key_id(key_id):
                raise ValueError(f"invalid codec key id {key_id!r}: must match {KEY_ID_PATTERN}")
            try:
                decode_key(key.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"codec key {key_id!r}: {exc}") from None
        return value

    @field_validator("ui_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not re.fullmatch(r"https?://[^/\s?#]+", origin):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path)")
        return value

    @model_validator(mode="after")
    def _active_key_exists(self) -> CodecSettings:
        if self.active_key_id not in self.keys:
            raise ValueError(f"active_key_id {self.active_key_id!r} is not one of the keys")
        return self

    def key_bytes(self) -> dict[str, bytes]:
        """Every key, decoded."""
        return {key_id: decode_key(key.get_secret_value()) for key_id, key in self.keys.items()}

    def operator_for_token(self, token: str) -> str | None:
        """The operator owning ``token``, or None; constant-time over every entry."""
        digest = hash_api_key(token)
        found: str | None = None
        for entry in self.operator_tokens:
            if hmac.compare_digest(entry.token_sha256, digest):
                found = entry.operator
        return found


class TelemetrySettings(BaseModel):
    """Where traces go and where metrics are served (``momoflow/telemetry/``)."""

    #: OTLP/HTTP base URL of an OpenTelemetry collector, e.g. ``http://otel-collector:4318``
    #: (spans go to ``<url>/v1/traces``). Unset, the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``
    #: or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is used; with none of them, nothing is
    #: exported (trace ids still reach the logs).
    otlp_endpoint: str | None = None
    #: ``host:port`` where a worker serves Prometheus metrics (Temporal SDK and momoflow's
    #: business metrics) at ``/metrics``, e.g. ``0.0.0.0:9464``. Unset: not served.
    worker_metrics_address: str | None = Field(default=None, pattern=r"^\S*:[0-9]{1,5}$")
    #: Whether the gateway serves ``GET /metrics`` (Prometheus text format). Unset: in
    #: ``env=local``/``test`` only; a public gateway must not publish its metrics unless
    #: asked to (then block ``/metrics`` at the load balancer).
    gateway_metrics: bool | None = None


def provider_fields(specs: Sequence[ProviderSpec[Any]]) -> dict[str, Any]:
    """One settings field per spec, for :func:`pydantic.create_model`: named after the
    provider (so ``MOMOFLOW_<NAME>__<FIELD>`` sets it), typed by its settings model and
    defaulting to that model's defaults."""
    return {
        spec.name.value: (
            spec.settings_model,
            Field(
                default_factory=spec.settings_model,
                description=f"{spec.title} account (MOMOFLOW_{spec.name.value.upper()}__*)",
            ),
        )
        for spec in specs
    }


# The provider fields come from the discovered specs, so a new provider package adds its
# group without an edit here. Type checkers see a plain model: typed access to one
# provider's settings goes through its spec (``SPEC.settings_in(settings)``) or
# :meth:`Settings.for_provider`.
if TYPE_CHECKING:
    _ProviderAccounts = BaseModel
else:
    _ProviderAccounts = create_model(
        "ProviderAccounts",
        __doc__="The settings of every provider account, one field per provider spec.",
        **provider_fields(all_specs()),
    )


class Settings(BaseSettings, _ProviderAccounts):
    """All of momoflow's settings. Build with :func:`get_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="MOMOFLOW_",
        env_nested_delimiter="__",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        # A refused setting must not print the secrets beside it.
        hide_input_in_errors=True,
    )

    env: Literal["local", "test", "staging", "production"] = "local"
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    #: Task queues are ``<prefix>-workflows`` and ``<prefix>-provider-<name>``.
    task_queue_prefix: str = Field(default="momoflow", pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    #: Where ``momoflow dev`` keeps the Temporal database and logs.
    state_dir: str = ".momoflow"

    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    #: The URL providers use to reach this gateway's webhooks.
    public_url: str = "http://127.0.0.1:8000"
    #: Business callers. JSON: ``[{"merchant": "acme", "key_sha256": "<hex>"}]``.
    api_keys: list[ApiKeyEntry] = Field(
        default_factory=lambda: [ApiKeyEntry(merchant="demo", key_sha256=hash_api_key(DEV_API_KEY))]
    )
    #: Keys the fingerprint of each request (detects a reused reference with another body).
    fingerprint_secret: SecretStr = SecretStr("dev-fingerprint-secret")
    #: Per-merchant secrets that sign notifications to merchants. JSON:
    #: ``{"acme": "<secret>"}``; merchants not listed use ``default_notification_secret``.
    notification_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    default_notification_secret: SecretStr = SecretStr("dev-notification-secret")
    #: How long a merchant notification is retried before it is given up.
    notification_horizon_s: int = Field(default=3 * 24 * 3600, ge=60)
    #: Non-public destinations that notifications may reach anyway (``momoflow.outbound``):
    #: ``ADDRESS[/BITS][:PORT[-PORT]]``, JSON list. Empty: public addresses only. The local
    #: stack and the tests allow ``127.0.0.2``, where nothing of momoflow listens.
    notify_allow: list[str] = Field(default_factory=list)
    #: How long a verified webhook that cannot reach its transaction yet is kept and
    #: offered again before its inbox gives up, visibly (``momoflow.inbox``). Fixed in each
    #: inbox when its first event arrives; longer than any create deadline.
    webhook_inbox_horizon_s: int = Field(default=7 * 24 * 3600, ge=1)

    #: Providers this deployment talks to (workers poll their queues, the gateway takes
    #: their webhooks and requests). Comma-separated (``caurisflux,novasend``) or JSON
    #: (``["caurisflux", "novasend"]``).
    providers: Annotated[list[ProviderName], NoDecode] = Field(
        default_factory=lambda: [spec.name for spec in all_specs()]
    )
    payout_timings: PayoutTimings = Field(default_factory=PayoutTimings)
    payin_timings: PayinTimings = Field(default_factory=PayinTimings)
    campaigns: CampaignSettings = Field(default_factory=CampaignSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    codec: CodecSettings = Field(default_factory=CodecSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    log_level: str = "INFO"
    #: ``text`` (readable lines) or ``json`` (one object per line); both carry trace ids and
    #: mask phone numbers and secrets.
    log_format: Literal["text", "json"] = "text"
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    #: How long a stopping worker lets in-flight tasks finish.
    graceful_shutdown_s: int = Field(default=15, ge=0)

    @field_validator("providers", mode="before")
    @classmethod
    def _parse_providers(cls, value: object) -> object:
        # NoDecode keeps pydantic-settings from requiring JSON: the documented form is a
        # comma-separated list, and JSON is accepted too.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip().lower() for part in text.split(",") if part.strip()]
        return value

    @field_validator("notification_secrets", mode="before")
    @classmethod
    def _parse_notification_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value)
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value)
        return value

    @model_validator(mode="after")
    def _no_dev_secrets_outside_local(self) -> Settings:
        if self.env in ("local", "test"):
            return self
        dev_secrets = DEV_SECRETS.union(
            *(type(self.for_provider(p)).development_secrets() for p in self.providers)
        )
        used = [
            name
            for name, secret in self._secrets().items()
            if secret is not None and secret.get_secret_value() in dev_secrets
        ]
        dev_key = hash_api_key(DEV_API_KEY)
        if any(hmac.compare_digest(entry.key_sha256, dev_key) for entry in self.api_keys):
            used.append("api_keys")
        dev_codec_key = decode_key(DEV_CODEC_KEY)
        used += [
            f"codec.keys.{key_id}"
            for key_id, key in self.codec.key_bytes().items()
            if hmac.compare_digest(key, dev_codec_key)
        ]
        dev_operator = hash_api_key(DEV_OPERATOR_TOKEN)
        if any(
            hmac.compare_digest(e.token_sha256, dev_operator) for e in self.codec.operator_tokens
        ):
            used.append("codec.operator_tokens")
        if used:
            raise ValueError(
                f"development secrets are not allowed with env={self.env}: set {', '.join(used)}"
            )
        self._check_database()
        self._check_ui_origins()
        return self

    def _check_database(self) -> None:
        """Outside local and test, the record store is named: without it the worker refuses
        to start and the gateway answers 503 on every transaction route."""
        url = self.database.url
        if url is None or not url.get_secret_value().strip():
            raise ValueError(
                f"with env={self.env}, set MOMOFLOW_DATABASE__URL to the record store's "
                "PostgreSQL URL, e.g. postgresql://momoflow:<password>@<host>:5432/momoflow "
                "(a database of its own, migrated with `momoflow db upgrade`)"
            )

    def _check_ui_origins(self) -> None:
        """Outside local and test, the Temporal UI's origins are set on purpose, and use
        https (plain http only on a loopback host, reachable from this machine alone)."""
        if "ui_origins" not in self.codec.model_fields_set:
            raise ValueError(
                f"with env={self.env}, set MOMOFLOW_CODEC__UI_ORIGINS to the Temporal UI's "
                'https origin(s), e.g. ["https://temporal.example.com"] ([] for none)'
            )
        plain = [o for o in self.codec.ui_origins if not _https_or_loopback(o)]
        if plain:
            raise ValueError(
                f"with env={self.env}, codec.ui_origins must use https (plain http only on "
                f"localhost or 127.0.0.1): {', '.join(plain)}"
            )

    def serves_gateway_metrics(self) -> bool:
        """Whether the gateway serves ``/metrics`` (see ``TelemetrySettings``)."""
        if self.telemetry.gateway_metrics is None:
            return self.env in ("local", "test")
        return self.telemetry.gateway_metrics

    def for_provider(self, provider: ProviderName) -> ProviderSettingsBase:
        """``provider``'s settings (the group ``MOMOFLOW_<PROVIDER>__*``)."""
        account = getattr(self, provider.value, None)
        if not isinstance(account, ProviderSettingsBase):
            raise KeyError(f"no settings for provider {provider.value}")
        return account

    def _secrets(self) -> dict[str, SecretStr | None]:
        """The secrets in use: the global ones and those of the enabled providers."""
        secrets: dict[str, SecretStr | None] = {
            "fingerprint_secret": self.fingerprint_secret,
            "default_notification_secret": self.default_notification_secret,
            "database.url": self.database.url,
        }
        secrets.update(
            {f"notification_secrets.{m}": v for m, v in self.notification_secrets.items()}
        )
        for provider in self.providers:
            secrets.update(
                {
                    f"{provider.value}.{name}": secret
                    for name, secret in self.for_provider(provider).secrets().items()
                }
            )
        return secrets

    def merchant_for_key(self, key: str) -> str | None:
        """The merchant that owns ``key``, or None; constant-time over every entry."""
        digest = hash_api_key(key)
        found: str | None = None
        for entry in self.api_keys:
            if hmac.compare_digest(entry.key_sha256, digest):
                found = entry.merchant
        return found

    def rate_limit_per_second(self, provider: ProviderName) -> float:
        """The activity rate the Temporal server must hold a provider's task queue to."""
        return self.for_provider(provider).rate_limit_per_second()

    @field_validator("notify_allow")
    @classmethod
    def _destinations_parse(cls, entries: list[str]) -> list[str]:
        DestinationPolicy.from_entries(entries)
        return entries

    def notify_policy(self) -> DestinationPolicy:
        """Where merchant notifications may go (``notify_allow`` plus public addresses)."""
        return DestinationPolicy.from_entries(self.notify_allow)

    def confirms_payout_webhooks(self, provider: ProviderName) -> bool:
        """Whether a signed final payout webhook at ``provider`` waits for a status read
        (always, for a provider that signs nothing: its webhooks are only ever hints)."""
        return self.for_provider(provider).confirms_payout_webhooks()

    def status_read_budget(self, provider: ProviderName) -> ReadBudget:
        """What ``provider``'s batched status reads may spend (``momoflow.status_reads``)."""
        budget = self.for_provider(provider).status_read_budget()
        if budget is None:
            raise ValueError(f"{provider.value} has no batched status reads")
        return budget

    def notification_secret(self, merchant: str) -> str:
        """The secret that signs ``merchant``'s notifications."""
        secret = self.notification_secrets.get(merchant, self.default_notification_secret)
        return secret.get_secret_value()

    def payin_timings_for(self, provider: ProviderName) -> PayinTimings:
        """The payin timings of new payins at ``provider`` (with the provider's own poll
        schedule, where it has one: MOBILE-PAY polls slower)."""
        timings = self.payin_timings.model_copy(
            update={"notification_horizon_s": self.notification_horizon_s}
        )
        schedule = self.for_provider(provider).poll_schedule_override()
        if schedule is not None:
            timings.poll_schedule_s = schedule
        return timings

    def timings_for(self, provider: ProviderName) -> PayoutTimings:
        """The payout timings of new payouts at ``provider`` (with the provider's own poll
        schedule, where it has one: MOBILE-PAY polls slower)."""
        timings = self.payout_timings.model_copy(
            update={"notification_horizon_s": self.notification_horizon_s}
        )
        schedule = self.for_provider(provider).poll_schedule_override()
        if schedule is not None:
            timings.poll_schedule_s = schedule
        return timings

    def reports_dir(self) -> Path:
        """Where reconciliation reports are written (``reconcile.reports_dir`` under
        ``state_dir`` when relative)."""
        path = Path(self.reconcile.reports_dir)
        return path if path.is_absolute() else Path(self.state_dir) / path

    def campaign_store_dir(self) -> Path:
        """The local campaign store directory (``campaigns.store_dir`` under ``state_dir``
        when relative)."""
        path = Path(self.campaigns.store_dir)
        return path if path.is_absolute() else Path(self.state_dir) / path

    def graceful_shutdown(self) -> timedelta:
        """``graceful_shutdown_s`` as a timedelta."""
        return timedelta(seconds=self.graceful_shutdown_s)

    def webhook_url(self, provider: ProviderName) -> str:
        """The URL a provider must call with its webhooks (MOBILE-PAY's carries the secret
        token that authenticates it: configure it in their dashboard, never log it)."""
        base = f"{self.public_url.rstrip('/')}/webhooks/{provider.value}"
        return base + self.for_provider(provider).webhook_path()


def configure_logging(settings: Settings) -> None:
    """Process-wide logging: readable lines; httpx's per-request lines (which print full
    URLs, and some URLs carry secret tokens) only at WARNING."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Imported here: momoflow.logs needs the settings' secrets, not the other way round.
    from momoflow.logs import install
    from momoflow.redaction import Redactor, secret_values

    install(settings.log_format, Redactor(secret_values(settings)))
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
