"""RevokedCodecSessionWorkflow: marks an operator's codec session as signed out until it
would have expired (see :mod:`momoflow.codec_sessions`). Its existence is the mark; it
only waits, then completes."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from momoflow.codec_sessions import RevokedSession
    from momoflow.contract import REVOKED_SESSION_WORKFLOW


@workflow.defn(name=REVOKED_SESSION_WORKFLOW)
class RevokedCodecSessionWorkflow:
    """A signed-out session (see the module docstring)."""

    @workflow.run
    async def run(self, revoked: RevokedSession) -> None:
        """Wait until the session would have expired."""
        remaining = revoked.expires_at - workflow.now()
        if remaining.total_seconds() > 0:
            await workflow.sleep(remaining, summary="until the session would have expired")
