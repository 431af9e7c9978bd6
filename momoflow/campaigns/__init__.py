"""Bulk supplier payout campaigns: file parsing, the campaign store, reports."""
