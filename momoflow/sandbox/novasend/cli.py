"""The ``novasend`` subcommand of ``python -m momoflow.sandbox``.

Every option can also be set through ``NOVASEND_SANDBOX_<OPTION>`` (upper case, dashes as
underscores, e.g. ``NOVASEND_SANDBOX_WEBHOOK_SECRET``); a command-line flag wins. Prints
``novasend sandbox listening on http://HOST:PORT`` once ready; exit code 2 for a bad option
or a port already in use, 0 after SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse

from ..shared.cli import env_flag, env_option, parse_schedule, serve_cli, validated_config
from .app import create_app
from .config import PAYIN_API_VERSIONS, NovaSendSandboxConfig

__all__ = ["ENV_PREFIX", "add_novasend_parser"]

ENV_PREFIX = "NOVASEND_SANDBOX_"


def _optional_float(value: str) -> float | None:
    return None if value.strip().lower() in ("", "none") else float(value)


def add_novasend_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``novasend`` on the ``python -m momoflow.sandbox`` parser."""
    defaults = NovaSendSandboxConfig()
    parser = subparsers.add_parser(
        "novasend",
        help="NovaSend API simulator",
        description="NovaSend API simulator. Each option also reads "
        f"{ENV_PREFIX}<OPTION> from the environment.",
    )

    def option(flag: str, default: object, help_text: str, **kwargs: object) -> None:
        env_option(parser, ENV_PREFIX, flag, default, help_text, **kwargs)

    option("--host", "127.0.0.1", "interface to listen on")
    option("--port", 8102, "TCP port (0: any free port)", type=int)
    option("--settle-delay", defaults.settle_delay, "seconds before settlement", type=float)
    option("--webhook-url", None, "URL webhooks are POSTed to (the dashboard setting)")
    option("--webhook-secret", defaults.webhook_secret, "HMAC secret of webhook signatures")
    option("--api-key", defaults.api_key, "accepted api_key (Basic auth user)")
    option("--api-client", defaults.api_client, "accepted api_client (Basic auth password)")
    option(
        "--rate-limit-per-minute",
        defaults.rate_limit_per_minute,
        "requests per minute and api_key, 0 = unlimited",
        type=int,
    )
    option("--time-scale", defaults.time_scale, "multiplier of simulated delays", type=float)
    option("--balance", defaults.balance, "initial XOF wallet balance", type=int)
    option("--balance-xaf", defaults.balance_xaf, "initial XAF wallet balance", type=int)
    option(
        "--webhook-retry-schedule",
        ",".join(f"{s:g}" for s in defaults.webhook_retry_schedule),
        "comma-separated retry delays in seconds",
        type=parse_schedule,
    )
    option("--payment-ttl", defaults.payment_ttl, "payin session lifetime in seconds", type=float)
    option(
        "--late-reversal-delay",
        None,
        "seconds from failure to the late success of a ...0004 payin (default 10 x settle)",
        type=_optional_float,
    )
    option(
        "--refund-type",
        defaults.refund_type,
        "refundType reported by refunds",
        choices=("full", "partial"),
    )
    option(
        "--payin-api-version",
        defaults.payin_api_version,
        "documented payin session API new wallet sessions follow (seed004: the older page)",
        choices=PAYIN_API_VERSIONS,
    )
    option("--seed", None, "seed for generated ids", type=int)
    option("--log-level", "warning", "uvicorn log level")
    env_flag(
        parser,
        ENV_PREFIX,
        "--allow-remote-control",
        False,
        "serve /_sandbox to non-loopback clients",
    )
    env_flag(
        parser,
        ENV_PREFIX,
        "--idempotency-key-only",
        defaults.idempotency_key_only,
        "only X-Idempotency-Key stops a second transfer: a used reference under a new key "
        "executes again",
    )
    parser.set_defaults(run=run_novasend)


def run_novasend(args: argparse.Namespace) -> int:
    """Build the config from ``args`` and serve until a signal; the exit code."""
    config = validated_config(
        lambda: NovaSendSandboxConfig(
            api_key=args.api_key,
            api_client=args.api_client,
            settle_delay=args.settle_delay,
            time_scale=args.time_scale,
            webhook_url=args.webhook_url or None,
            webhook_secret=args.webhook_secret,
            webhook_retry_schedule=args.webhook_retry_schedule,
            rate_limit_per_minute=args.rate_limit_per_minute,
            balance=args.balance,
            balance_xaf=args.balance_xaf,
            payment_ttl=args.payment_ttl,
            late_reversal_delay=args.late_reversal_delay,
            refund_type=args.refund_type,
            payin_api_version=args.payin_api_version,
            seed=args.seed,
            allow_remote_control=args.allow_remote_control,
            idempotency_key_only=args.idempotency_key_only,
        )
    )
    if config is None:
        return 2
    return serve_cli(
        create_app(config),
        name="novasend",
        host=args.host,
        port=args.port,
        log_level=args.log_level,
    )
