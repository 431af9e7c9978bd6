"""Configuration: every knob has an environment variable and a safe default.

Variables are prefixed ``MOMOFLOW_``; nested groups use ``__``, for example
``MOMOFLOW_CAURISFLUX__BASE_URL`` or ``MOMOFLOW_TEMPORAL__ADDRESS``. A ``.env`` file in the
working directory is read too. Outside ``env=local``/``test`` the development secrets are
refused, so a production deployment cannot start with them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from momoflow.codec import KEY_ID_PATTERN, decode_key, is_valid_key_id
from momoflow.ids import MERCHANT_PATTERN
from momoflow.models import PayinTimings, PayoutTimings, ProviderName
from momoflow.outbound import DestinationPolicy
from momoflow.status_reads import ReadBudget

#: Secrets shipped for local development and tests only.
DEV_SECRETS = frozenset(
    {
        "sk_test_momoflow",
        "whsec_momoflow_sandbox",
        "nsc_test_momoflow",
        "nswh_momoflow_sandbox",
        "mp_test_momoflow",
        "mpwh_momoflow_sandbox_token",
        "dev-fingerprint-secret",
        "dev-notification-secret",
    }
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


class ApiKeyEntry(BaseModel):
    """One business caller: the merchant it acts for and the SHA-256 of its key."""

    merchant: str = Field(pattern=MERCHANT_PATTERN)
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class CaurisFluxSettings(BaseModel):
    """CaurisFlux account: base URL, key pair, webhook secret and plan limit."""

    base_url: str = "http://127.0.0.1:8101/api/v1"
    public_key: str = "pk_test_momoflow"
    secret_key: SecretStr = SecretStr("sk_test_momoflow")
    webhook_secret: SecretStr = SecretStr("whsec_momoflow_sandbox")
    webhook_tolerance_s: int = Field(default=300, ge=1)
    #: Accept webhooks signed without a timestamp (an HMAC of the body alone, the legacy form
    #: the vendor plugin still accepts). Off: such a signature never expires, so a captured
    #: delivery could be replayed at any time. On: a replay is dropped by the transaction,
    #: which keeps every event id (the delivery id, else a hash of the body) for its life.
    allow_legacy_signatures: bool = False
    #: A signed final payout webhook (success or failure) is confirmed by a status read
    #: before it counts. Off saves one read per payout, but then whoever holds the webhook
    #: secret can make a payout look paid, or failed and paid again (docs/providers.md).
    confirm_payout_webhooks: bool = True
    #: The plan's request limit (Standard plan: 100/min), enforced by the Temporal server.
    rate_limit_per_minute: int = Field(default=100, ge=1)
    timeout_s: float = Field(default=20.0, gt=0)

    def rate_limit_per_second(self) -> float:
        """The plan limit as activities per second."""
        return self.rate_limit_per_minute / 60.0


class NovaSendSettings(BaseModel):
    """NovaSend account: Basic credentials, webhook secret, language."""

    base_url: str = "http://127.0.0.1:8102"
    api_key: str = "nsk_test_momoflow"
    api_client: SecretStr = SecretStr("nsc_test_momoflow")
    webhook_secret: SecretStr = SecretStr("nswh_momoflow_sandbox")
    #: Language of NovaSend's error messages (``Accept-Language``).
    language: Literal["fr", "en"] = "en"
    #: A signed final payout webhook is confirmed by a status read before it counts (see
    #: ``CaurisFluxSettings.confirm_payout_webhooks``).
    confirm_payout_webhooks: bool = True
    #: Not documented; status reads should stay under one per 5-10 s per transaction [N3].
    rate_limit_per_minute: int = Field(default=300, ge=1)
    #: The docs ask for at most 30 s per call [N3].
    timeout_s: float = Field(default=20.0, gt=0, le=30)
    #: ``accountId`` of payin sessions: required by the older payin API (seed 004), absent
    #: from the newer one [N3, N4, 2.11.1]. Sent only when set; never guessed, since another
    #: value could credit another (sub-)account. Unset, an account on the older API refuses
    #: checkout payins (nothing is created, the payin ends ``failed``).
    account_id: str | None = Field(default=None, max_length=255)

    @field_validator("account_id", mode="before")
    @classmethod
    def _blank_account_id_is_unset(cls, value: object) -> object:
        # docker-compose passes an unset variable as "" ("${VAR:-}").
        return (value.strip() or None) if isinstance(value, str) else value

    def rate_limit_per_second(self) -> float:
        """The limit as activities per second."""
        return self.rate_limit_per_minute / 60.0


class MobilePaySettings(BaseModel):
    """MOBILE-PAY account: Bearer token (or login), webhook URL token, hourly plan limit."""

    base_url: str = "http://127.0.0.1:8103/api/v1"
    api_token: SecretStr | None = SecretStr("mp_test_momoflow")
    #: When set (with the password), a session token from ``/auth/login`` is used instead.
    login_email: str | None = None
    login_password: SecretStr | None = None
    #: MOBILE-PAY signs nothing: webhooks are accepted only on
    #: ``/webhooks/mobilepay/<webhook_token>``.
    webhook_token: SecretStr = SecretStr("mpwh_momoflow_sandbox_token")
    #: ``merchant_id`` of QR payments.
    merchant_id: str = "momoflow"
    #: The plan's request limit per hour (Free: 100, Merchant: 1,000) [M1].
    rate_limit_per_hour: int = Field(default=100, ge=1)
    timeout_s: float = Field(default=20.0, gt=0)
    #: How far back a retry looks for a transfer it may already have made.
    duplicate_search_window_s: int = Field(default=2 * 24 * 3600, ge=60)
    #: MOBILE-PAY has no idempotency: after a transfer whose outcome is unknown (a
    #: timeout, a 5xx), it is never sent again. Its transaction list may lag behind its
    #: writes, so the transfer is searched for this long before the payout goes to
    #: ``reconciling``. Keep it below the payout's ``submit_timeout_s``.
    consistency_window_s: int = Field(default=900, ge=0)
    #: Status reads cost up to 10 requests each (the transaction list is the only way to
    #: read a status) out of 100 an hour on the Free plan: poll slowly, webhooks hint.
    poll_schedule_s: list[int] = Field(default_factory=lambda: [60, 300, 900, 1800], min_length=1)
    #: The share of the plan's requests that status reads may spend. All pending MOBILE-PAY
    #: transactions share one walk of the transaction list (``momoflow.status_reads``);
    #: the rest of the plan goes to the other calls (creates, balances), which the task
    #: queue's rate limit counts as activities.
    status_reads_share: float = Field(default=0.5, gt=0, lt=1)
    #: The shortest wait between two walks of the list, whatever the budget allows.
    status_read_interval_s: float = Field(default=60.0, ge=0.1)

    def status_reads_per_hour(self) -> float:
        """Requests an hour the shared status reads may spend."""
        return self.rate_limit_per_hour * self.status_reads_share

    def rate_limit_per_second(self) -> float:
        """The plan's requests left to the other calls, as activities per second."""
        return self.rate_limit_per_hour * (1 - self.status_reads_share) / 3600.0


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


class Settings(BaseSettings):
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
        default_factory=lambda: [
            ProviderName.CAURISFLUX,
            ProviderName.NOVASEND,
            ProviderName.MOBILEPAY,
        ]
    )
    caurisflux: CaurisFluxSettings = Field(default_factory=CaurisFluxSettings)
    novasend: NovaSendSettings = Field(default_factory=NovaSendSettings)
    mobilepay: MobilePaySettings = Field(default_factory=MobilePaySettings)
    payout_timings: PayoutTimings = Field(default_factory=PayoutTimings)
    payin_timings: PayinTimings = Field(default_factory=PayinTimings)
    campaigns: CampaignSettings = Field(default_factory=CampaignSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    codec: CodecSettings = Field(default_factory=CodecSettings)

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
        used = [
            name
            for name, secret in self._secrets().items()
            if secret is not None and secret.get_secret_value() in DEV_SECRETS
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
        self._check_ui_origins()
        return self

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

    def _secrets(self) -> dict[str, SecretStr | None]:
        """The secrets in use: the global ones and those of the enabled providers."""
        per_provider: dict[ProviderName, dict[str, SecretStr | None]] = {
            ProviderName.CAURISFLUX: {
                "caurisflux.secret_key": self.caurisflux.secret_key,
                "caurisflux.webhook_secret": self.caurisflux.webhook_secret,
            },
            ProviderName.NOVASEND: {
                "novasend.api_client": self.novasend.api_client,
                "novasend.webhook_secret": self.novasend.webhook_secret,
            },
            ProviderName.MOBILEPAY: {
                "mobilepay.api_token": self.mobilepay.api_token,
                "mobilepay.webhook_token": self.mobilepay.webhook_token,
            },
        }
        secrets: dict[str, SecretStr | None] = {
            "fingerprint_secret": self.fingerprint_secret,
            "default_notification_secret": self.default_notification_secret,
        }
        secrets.update(
            {f"notification_secrets.{m}": v for m, v in self.notification_secrets.items()}
        )
        for provider in self.providers:
            secrets.update(per_provider[provider])
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
        match provider:
            case ProviderName.CAURISFLUX:
                return self.caurisflux.rate_limit_per_second()
            case ProviderName.NOVASEND:
                return self.novasend.rate_limit_per_second()
            case ProviderName.MOBILEPAY:
                return self.mobilepay.rate_limit_per_second()

    @field_validator("notify_allow")
    @classmethod
    def _destinations_parse(cls, entries: list[str]) -> list[str]:
        DestinationPolicy.from_entries(entries)
        return entries

    def notify_policy(self) -> DestinationPolicy:
        """Where merchant notifications may go (``notify_allow`` plus public addresses)."""
        return DestinationPolicy.from_entries(self.notify_allow)

    def confirms_payout_webhooks(self, provider: ProviderName) -> bool:
        """Whether a signed final payout webhook at ``provider`` waits for a status read.
        MOBILE-PAY signs nothing: its webhooks are only ever hints, read back anyway."""
        match provider:
            case ProviderName.CAURISFLUX:
                return self.caurisflux.confirm_payout_webhooks
            case ProviderName.NOVASEND:
                return self.novasend.confirm_payout_webhooks
            case ProviderName.MOBILEPAY:
                return True

    def status_read_budget(self, provider: ProviderName) -> ReadBudget:
        """What ``provider``'s batched status reads may spend (``momoflow.status_reads``)."""
        if provider is not ProviderName.MOBILEPAY:
            raise ValueError(f"{provider.value} has no batched status reads")
        return ReadBudget(
            per_hour=self.mobilepay.status_reads_per_hour(),
            min_interval_s=self.mobilepay.status_read_interval_s,
        )

    def notification_secret(self, merchant: str) -> str:
        """The secret that signs ``merchant``'s notifications."""
        secret = self.notification_secrets.get(merchant, self.default_notification_secret)
        return secret.get_secret_value()

    def payin_timings_for(self, provider: ProviderName) -> PayinTimings:
        """The payin timings of new payins at ``provider`` (MOBILE-PAY polls slower)."""
        timings = self.payin_timings.model_copy(
            update={"notification_horizon_s": self.notification_horizon_s}
        )
        if provider is ProviderName.MOBILEPAY:
            timings.poll_schedule_s = list(self.mobilepay.poll_schedule_s)
        return timings

    def timings_for(self, provider: ProviderName) -> PayoutTimings:
        """The payout timings of new payouts at ``provider`` (MOBILE-PAY polls slower)."""
        timings = self.payout_timings.model_copy(
            update={"notification_horizon_s": self.notification_horizon_s}
        )
        if provider is ProviderName.MOBILEPAY:
            timings.poll_schedule_s = list(self.mobilepay.poll_schedule_s)
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
        if provider is ProviderName.MOBILEPAY:
            return f"{base}/{self.mobilepay.webhook_token.get_secret_value()}"
        return base


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
