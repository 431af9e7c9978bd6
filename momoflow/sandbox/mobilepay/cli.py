"""The ``mobilepay`` subcommand of ``python -m momoflow.sandbox``.

Every option can also be set through ``MOBILEPAY_SANDBOX_<OPTION>`` (upper case, dashes as
underscores, e.g. ``MOBILEPAY_SANDBOX_SIGN_WEBHOOKS=1``); a command-line flag wins.
"""

from __future__ import annotations

import argparse

from ..shared.cli import env_flag, env_option, parse_schedule, serve_cli, validated_config
from .app import create_app
from .engine import MobilePaySandboxConfig

__all__ = ["ENV_PREFIX", "add_mobilepay_parser"]

ENV_PREFIX = "MOBILEPAY_SANDBOX_"
DEFAULT_PORT = 8103


def add_mobilepay_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``mobilepay`` and its options."""
    defaults = MobilePaySandboxConfig()
    parser = subparsers.add_parser(
        "mobilepay",
        help="MOBILE-PAY (mobile-pay.ci) API simulator",
        description="MOBILE-PAY API simulator. Each option also reads "
        f"{ENV_PREFIX}<OPTION> from the environment.",
    )

    def option(flag: str, default: object, help_text: str, **kwargs: object) -> None:
        env_option(parser, ENV_PREFIX, flag, default, help_text, **kwargs)

    def flag(name: str, default: bool, help_text: str) -> None:
        env_flag(parser, ENV_PREFIX, name, default, help_text)

    option("--host", "127.0.0.1", "interface to listen on")
    option("--port", DEFAULT_PORT, "TCP port (0: any free port)", type=int)
    option("--settle-delay", defaults.settle_delay, "seconds before settlement", type=float)
    option("--webhook-url", None, "URL every webhook is POSTed to (none: no webhooks)")
    option("--webhook-secret", defaults.webhook_secret, "HMAC secret when signing webhooks")
    flag("--sign-webhooks", defaults.sign_webhooks, "add X-MobilePay-Signature to webhooks")
    option("--api-token", defaults.api_token, "accepted Bearer API token")
    option("--login-email", defaults.login_email, "email accepted by /auth/login")
    option("--login-password", defaults.login_password, "password accepted by /auth/login")
    option("--session-ttl", defaults.session_ttl, "session token lifetime (real s)", type=float)
    option(
        "--rate-limit-per-hour",
        defaults.rate_limit_per_hour,
        "requests per hour and token, 0 = unlimited",
        type=int,
    )
    option("--time-scale", defaults.time_scale, "multiplier of simulated delays", type=float)
    option("--balance", defaults.balance, "initial merchant balance (XOF)", type=int)
    option(
        "--webhook-retry-schedule",
        ",".join(f"{s:g}" for s in defaults.webhook_retry_schedule),
        "comma-separated retry delays in seconds",
        type=parse_schedule,
    )
    option("--payment-ttl", defaults.payment_ttl, "QR payment lifetime in seconds", type=float)
    flag("--fcfa-currency", defaults.fcfa_currency, "write FCFA in GET /transactions")
    flag(
        "--honour-idempotency-key",
        defaults.honour_idempotency_key,
        "replay POSTs that repeat an Idempotency-Key (MOBILE-PAY has no idempotency)",
    )
    option(
        "--list-lag",
        defaults.list_lag,
        "seconds before a new transaction shows in GET /transactions",
        type=float,
    )
    option(
        "--description-max-chars",
        defaults.description_max_chars,
        "keep only the first N characters of each description (none: all)",
        type=_positive_or_none,
    )
    flag(
        "--echo-metadata",
        defaults.echo_metadata,
        "echo the undocumented metadata object in answers and the list",
    )
    option("--seed", None, "seed for generated ids", type=int)
    option("--log-level", "warning", "uvicorn log level")
    flag("--allow-remote-control", False, "serve /_sandbox to non-loopback clients")
    parser.set_defaults(run=run_mobilepay)


def _positive_or_none(value: str) -> int | None:
    """``--description-max-chars``: a positive integer, or ``none``/``0`` for no limit."""
    if value.strip().lower() in ("", "none", "0"):
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from exc
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value!r}")
    return number


def run_mobilepay(args: argparse.Namespace) -> int:
    """Build the config from ``args`` and serve until a signal; the exit code."""
    config = validated_config(
        lambda: MobilePaySandboxConfig(
            api_token=args.api_token,
            login_email=args.login_email,
            login_password=args.login_password,
            session_ttl=args.session_ttl,
            settle_delay=args.settle_delay,
            time_scale=args.time_scale,
            webhook_url=args.webhook_url or None,
            webhook_secret=args.webhook_secret,
            sign_webhooks=args.sign_webhooks,
            webhook_retry_schedule=args.webhook_retry_schedule,
            rate_limit_per_hour=args.rate_limit_per_hour,
            balance=args.balance,
            payment_ttl=args.payment_ttl,
            fcfa_currency=args.fcfa_currency,
            honour_idempotency_key=args.honour_idempotency_key,
            list_lag=args.list_lag,
            description_max_chars=args.description_max_chars,
            echo_metadata=args.echo_metadata,
            seed=args.seed,
            allow_remote_control=args.allow_remote_control,
        )
    )
    if config is None:
        return 2
    return serve_cli(
        create_app(config),
        name="mobilepay",
        host=args.host,
        port=args.port,
        log_level=args.log_level,
    )
