"""Temporal workflows: deterministic state machines, no I/O (see docs/architecture.md)."""
