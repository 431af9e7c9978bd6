"""momoflow: durable payin/payout orchestration for West African mobile money, on Temporal."""

__version__ = "0.1.0"
