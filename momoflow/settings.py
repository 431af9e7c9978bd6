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
from datetime import timedelta
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from momoflow.ids import MERCHANT_PATTERN
from momoflow.models import PayoutTimings, ProviderName

#: Secrets shipped for local development and tests only.
DEV_SECRETS = frozenset(
    {
        "sk_test_momoflow",
        "whsec_momoflow_sandbox",
        "dev-fingerprint-secret",
    }
)

#: The API key of the ``demo`` merchant in local development (``momoflow dev``).
DEV_API_KEY = "mf_dev_demo_key"


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
    #: The plan's request limit (Standard plan: 100/min), enforced by the Temporal server.
    rate_limit_per_minute: int = Field(default=100, ge=1)
    timeout_s: float = Field(default=20.0, gt=0)


class Settings(BaseSettings):
    """All of momoflow's settings. Build with :func:`get_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="MOMOFLOW_",
        env_nested_delimiter="__",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
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

    caurisflux: CaurisFluxSettings = Field(default_factory=CaurisFluxSettings)
    payout_timings: PayoutTimings = Field(default_factory=PayoutTimings)

    log_level: str = "INFO"
    #: How long a stopping worker lets in-flight tasks finish.
    graceful_shutdown_s: int = Field(default=15, ge=0)

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
        if used:
            raise ValueError(
                f"development secrets are not allowed with env={self.env}: set {', '.join(used)}"
            )
        return self

    def _secrets(self) -> dict[str, SecretStr | None]:
        return {
            "fingerprint_secret": self.fingerprint_secret,
            "caurisflux.secret_key": self.caurisflux.secret_key,
            "caurisflux.webhook_secret": self.caurisflux.webhook_secret,
        }

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
        if provider is ProviderName.CAURISFLUX:
            return self.caurisflux.rate_limit_per_minute / 60.0
        raise ValueError(f"provider {provider.value} is not configured")

    def graceful_shutdown(self) -> timedelta:
        """``graceful_shutdown_s`` as a timedelta."""
        return timedelta(seconds=self.graceful_shutdown_s)

    def webhook_url(self, provider: ProviderName) -> str:
        """The URL a provider must call with its webhooks."""
        return f"{self.public_url.rstrip('/')}/webhooks/{provider.value}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
