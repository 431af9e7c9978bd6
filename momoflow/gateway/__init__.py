"""The HTTP gateway: business API, provider webhook intake, health."""

from momoflow.gateway.app import create_app

__all__ = ["create_app"]
