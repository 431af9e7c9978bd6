"""Campaign models: what crosses the campaign's workflow, activity and API boundaries.

A campaign's lines never travel in bulk through Temporal history: the uploaded file lives
in the campaign store (:mod:`momoflow.campaigns.store`) and activities read it a page at a
time. What the workflow carries is small: counters, cursors and the lines in flight.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from momoflow.models import (
    Operator,
    PayoutInput,
    PayoutState,
    ProviderAvailability,
    ProviderBalance,
    ProviderName,
)
from momoflow.money import Country, Currency


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CampaignPhase(StrEnum):
    """Where a campaign is in its life."""

    PREFLIGHT = "preflight"
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    PAUSED = "paused"
    #: Cancelled or out of lines: the lines already sent are finishing.
    DRAINING = "draining"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    #: Pre-flight found nothing payable; nothing was sent.
    REJECTED = "rejected"
    #: A step failed in a way no retry cures (configuration, an unreadable store, a bug):
    #: ``phase_reason`` names the step and the error; the campaign waits for ``retry`` (or
    #: ``cancel``) and then goes on from where it was. Not final.
    BLOCKED = "blocked"

    @property
    def is_final(self) -> bool:
        """True once the campaign will send nothing more and every line has an outcome."""
        return self in (CampaignPhase.COMPLETED, CampaignPhase.CANCELLED, CampaignPhase.REJECTED)


class FileFormat(StrEnum):
    """Accepted upload formats."""

    CSV = "csv"
    JSONL = "jsonl"


#: Columns of a campaign file (CSV header or JSON-lines keys). ``provider`` may be blank.
CAMPAIGN_COLUMNS = (
    "reference",
    "provider",
    "country",
    "operator",
    "phone",
    "name",
    "amount",
    "currency",
    "description",
)
REQUIRED_COLUMNS = frozenset(CAMPAIGN_COLUMNS) - {"provider", "description"}


class LineProblem(_Model):
    """One broken rule on one line of the file."""

    line: int
    reference: str | None = None
    field: str
    rule: str
    message: str


class CampaignLine(_Model):
    """A valid line, ready to become a payout (stored in the campaign store, not history)."""

    line: int
    payout: PayoutInput


#: Seconds of a provider's rate-limited requests a campaign may queue ahead of others.
QUEUE_SECONDS = 30
#: Provider requests a line needs at most before it waits for its webhook (quote, create).
REQUESTS_PER_LINE = 2


def window_for_rate(rate_per_s: float, cap: int) -> int:
    """Lines in flight that keep about :data:`QUEUE_SECONDS` of requests queued at
    ``rate_per_s``, between 1 and ``cap``."""
    return max(1, min(cap, int(rate_per_s * QUEUE_SECONDS / REQUESTS_PER_LINE)))


class CampaignOptions(_Model):
    """How a campaign runs; every field has a default that suits a large campaign."""

    #: Start paying as soon as pre-flight passes, without waiting for ``approve``.
    auto_approve: bool = False
    #: Payouts in flight per provider (started and not yet final or reconciling).
    max_in_flight_per_provider: int = Field(default=50, ge=1, le=1000)
    #: Per-provider windows overriding ``max_in_flight_per_provider``: the gateway sizes
    #: them from each provider's rate limit so that a campaign never queues more than about
    #: :data:`QUEUE_SECONDS` of a provider's requests ahead of single payouts and payins.
    max_in_flight_by_provider: dict[ProviderName, int] = Field(default_factory=dict)
    #: Consecutive provider errors (on a provider's lines) that pause that provider.
    outage_error_threshold: int = Field(default=5, ge=1)
    #: Seconds between availability checks of a provider paused by an outage.
    outage_probe_interval_s: int = Field(default=60, ge=1)
    #: History events after which the workflow continues as new (well below the limits).
    #: Kept well below the limits so that a worker that lost its cache replays a run in
    #: seconds, not minutes.
    max_history_events: int = Field(default=3_000, ge=200, le=40_000)
    #: History bytes after which the workflow continues as new (Temporal warns at 10 MB).
    max_history_bytes: int = Field(default=2 * 1024 * 1024, ge=256 * 1024, le=20 * 1024 * 1024)
    #: Outcomes buffered in the workflow before they are written to the store.
    outcome_batch_size: int = Field(default=200, ge=1, le=2_000)
    #: Lines read from the store per activity call.
    page_size: int = Field(default=200, ge=10, le=1_000)


class CampaignInput(_Model):
    """Start of a campaign: the file is already in the store under ``campaign_id``."""

    campaign_id: str
    merchant: str
    reference: str
    name: str = ""
    file_format: FileFormat
    file_sha256: str
    submitted_at: datetime
    submitted_by: str = ""
    options: CampaignOptions = Field(default_factory=CampaignOptions)
    #: Set only when the campaign continues as new: where the previous run left off.
    carry: CampaignCarry | None = None


class ProviderTotals(_Model):
    """Valid lines of one provider and currency, as pre-flight priced them."""

    provider: ProviderName
    currency: Currency
    lines: int = 0
    amount: int = 0
    #: Fees the provider quoted, plus estimates for lines no quote covered; None while no
    #: line's fee is known (a provider that quotes nothing in advance, or before pricing).
    #: With ``fees_unknown_lines`` > 0 it covers only the other lines.
    fees: int | None = None
    fees_quoted_lines: int = 0
    fees_estimated_lines: int = 0
    #: Lines whose fee is unknown until paid (the provider quotes nothing in advance, or
    #: every quote failed).
    fees_unknown_lines: int = 0
    balance: int | None = None
    available: bool | None = None
    availability_detail: str = ""

    @property
    def required(self) -> int:
        """Amount plus the known fees: what the provider account must hold at least (more
        when ``fees_unknown_lines`` > 0)."""
        return self.amount + (self.fees or 0)

    @property
    def short_by(self) -> int:
        """How much the balance lacks (0 when enough or unknown)."""
        if self.balance is None:
            return 0
        return max(0, self.required - self.balance)


class QuoteGroup(_Model):
    """Lines sharing a price: one quote prices them all."""

    provider: ProviderName
    country: Country
    operator: Operator
    currency: Currency
    amount: int
    lines: int


class PreparedCampaign(_Model):
    """What the prepare activity found in the file (problems stay in the store)."""

    lines: int
    valid_lines: int
    invalid_lines: int
    problem_count: int
    #: The first problems, for the API and the UI; the store has them all.
    first_problems: list[LineProblem] = Field(default_factory=list)
    totals: list[ProviderTotals] = Field(default_factory=list)
    #: Valid lines per provider (the pages of each provider's queue).
    lines_by_provider: dict[ProviderName, int] = Field(default_factory=dict)
    #: Prices pre-flight should ask for (the most common first, up to the limit).
    quote_groups: list[QuoteGroup] = Field(default_factory=list)
    #: Distinct prices beyond the limit (their fees are estimated).
    unquoted_groups: int = 0


class GroupQuote(_Model):
    """A quoted price (``fees`` None when the quote failed: ``error`` says why)."""

    group: QuoteGroup
    fees: int | None = None
    error: str = ""


class PreflightChecks(_Model):
    """What the workflow learnt from the providers, for :func:`finish_preflight`."""

    campaign_id: str
    prepared: PreparedCampaign
    quotes: list[GroupQuote] = Field(default_factory=list)
    balances: dict[ProviderName, list[ProviderBalance]] = Field(default_factory=dict)
    availability: dict[ProviderName, ProviderAvailability] = Field(default_factory=dict)
    #: Provider calls that failed, by provider: "balance: ...", "availability: ...".
    errors: dict[ProviderName, list[str]] = Field(default_factory=dict)


class ReadLines(_Model):
    """``read_campaign_lines``: a slice of one provider's queue."""

    campaign_id: str
    provider: ProviderName
    start: int
    count: int
    #: The provider's number of valid lines: a page missing before it is an error, not the
    #: end of the queue (None from runs recorded before it was sent).
    total: int | None = None


class OutcomeBatch(_Model):
    """``record_campaign_outcomes``: one numbered batch of line outcomes."""

    campaign_id: str
    batch: int
    outcomes: list[LineOutcome]


class ExistingPayout(_Model):
    """A line's payout that already existed when the campaign tried to start it."""

    workflow_id: str
    campaign_workflow_id: str | None = None
    #: Its outcome when it has settled (final or reconciling), else None.
    outcome: LineOutcome | None = None


class Preflight(_Model):
    """Pre-flight's verdict, reported all at once before any money moves."""

    prepared: PreparedCampaign
    totals: list[ProviderTotals] = Field(default_factory=list)
    #: Reasons approval is refused (a short balance, an unavailable provider).
    blocking: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    checked_at: datetime


#: Outcome of a line that was not paid because its reference already paid something else.
SKIPPED = "skipped"


class LineOutcome(_Model):
    """A line's settled outcome, sent by its payout to the campaign (signal ``line_settled``)."""

    workflow_id: str
    reference: str
    provider: ProviderName
    #: A :class:`TransactionStatus` value, or :data:`SKIPPED`.
    status: str
    amount: int
    currency: Currency
    fees: int | None = None
    provider_transaction_id: str | None = None
    provider_reference: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    at: datetime
    #: What the provider says it processed, when it said (``amount_mismatch`` when it
    #: differs from ``amount``).
    provider_amount: int | None = None

    @classmethod
    def from_state(cls, state: PayoutState, *, at: datetime) -> LineOutcome:
        """The outcome a payout's state describes (final, reconciling, or in progress)."""
        return cls(
            workflow_id=state.workflow_id,
            reference=state.reference,
            provider=state.provider,
            status=state.status.value,
            amount=state.amount,
            currency=state.currency,
            fees=state.fees,
            provider_transaction_id=state.provider_transaction_id,
            provider_reference=state.provider_reference,
            failure_code=state.failure.code if state.failure else None,
            failure_message=state.failure.message if state.failure else None,
            at=at,
            provider_amount=state.provider_amount,
        )


class StatusCount(_Model):
    """Lines and their total amount (``amount`` sums minor units across currencies: read
    ``by_currency`` when a campaign mixes XOF and XAF)."""

    lines: int = 0
    amount: int = 0
    by_currency: dict[str, int] = Field(default_factory=dict)


class ProviderRun(_Model):
    """Per-provider execution state, carried across continue-as-new."""

    provider: ProviderName
    #: Next line of this provider's queue to start (index into its pages).
    cursor: int = 0
    total: int = 0
    consecutive_errors: int = 0
    #: Why the provider's lines are paused, or None.
    paused_reason: str | None = None
    #: Paused by the outage threshold (probed and resumed automatically), not an operator.
    outage: bool = False


class InFlight(_Model):
    """A line whose payout was started and has not reported a settled outcome."""

    line: int
    provider: ProviderName
    amount: int


class CampaignProgress(_Model):
    """The campaign's live progress (query ``progress``, ``GET /v1/campaigns/{ref}``)."""

    campaign_id: str
    merchant: str
    reference: str
    name: str = ""
    file_format: FileFormat = FileFormat.CSV
    file_sha256: str = ""
    phase: CampaignPhase
    phase_reason: str = ""
    lines: int = 0
    valid_lines: int = 0
    invalid_lines: int = 0
    started_lines: int = 0
    in_flight: int = 0
    #: Lines skipped at start because their reference already paid something else.
    skipped_lines: int = 0
    by_status: dict[str, StatusCount] = Field(default_factory=dict)
    #: Lines with an outcome (final, reconciling or skipped).
    settled_lines: int = 0
    #: Amount paid (succeeded lines), per currency.
    paid: dict[str, int] = Field(default_factory=dict)
    paused_providers: dict[str, str] = Field(default_factory=dict)
    #: Lines settled per second over the last minute of activity.
    rate_per_s: float = 0.0
    eta_s: int | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None
    cancelled_by: str | None = None
    submitted_at: datetime
    #: Who submitted the file: the merchant (the API), or ``operator:<name>`` (the
    #: console). Empty for campaigns submitted before it was kept here.
    submitted_by: str = ""
    started_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime
    runs: int = 1
    preflight: Preflight | None = None


class CampaignCarry(_Model):
    """Everything a continued-as-new run needs (bounded: no per-line data but in-flight)."""

    progress: CampaignProgress
    providers: list[ProviderRun] = Field(default_factory=list)
    in_flight: dict[str, InFlight] = Field(default_factory=dict)
    #: Lines that reported ``reconciling`` and may still report a final status.
    reconciling: dict[str, InFlight] = Field(default_factory=dict)
    outcome_batches: int = 0
    paused_by_operator: bool = False
    cancel_requested: bool = False
    #: (unix seconds, settled lines) samples for the rate, newest last.
    rate_samples: list[tuple[float, int]] = Field(default_factory=list)


class CampaignProblems(_Model):
    """``GET /v1/campaigns/{ref}/problems``: pre-flight's verdict and every problem of every
    invalid line, with the campaign's phase (``blocked`` and its reason when pre-flight
    cannot finish)."""

    phase: CampaignPhase
    phase_reason: str
    preflight: Preflight | None
    problems: list[LineProblem]


class ApproveRequest(_Model):
    """``approve`` update: who approves, and whether a short balance is accepted."""

    approved_by: str = Field(min_length=1, max_length=100)
    #: Approve although pre-flight found a blocking problem (a short balance, a provider
    #: unavailable at pre-flight): the approver takes responsibility, and it is recorded.
    override_blocking: bool = False


class PauseRequest(_Model):
    """``pause`` / ``resume`` update: the whole campaign, or one provider's lines."""

    by: str = Field(default="operator", min_length=1, max_length=100)
    provider: ProviderName | None = None


class CancelRequest(_Model):
    """``cancel`` update: no new line starts; lines already sent finish and are reported."""

    by: str = Field(min_length=1, max_length=100)
    reason: str = Field(default="", max_length=500)


class RetryRequest(_Model):
    """``retry`` update: run the step that blocked the campaign again (its cause fixed)."""

    by: str = Field(min_length=1, max_length=100)


class ReportRow(_Model):
    """One line of the campaign report."""

    line: int
    reference: str
    provider: str
    country: str
    operator: str
    recipient: str
    name: str
    amount: int | None
    currency: str
    status: str
    provider_transaction_id: str = ""
    provider_reference: str = ""
    fees: int | None = None
    error_code: str = ""
    error_reason: str = ""
    #: What the provider says it processed, when it said; differs from ``amount`` only for
    #: an ``amount_mismatch`` line.
    provider_amount: int | None = None


__all__ = [
    "CampaignProblems",
    "CAMPAIGN_COLUMNS",
    "QUEUE_SECONDS",
    "SKIPPED",
    "REQUIRED_COLUMNS",
    "ApproveRequest",
    "CampaignCarry",
    "CampaignInput",
    "CampaignLine",
    "CampaignOptions",
    "CampaignPhase",
    "CampaignProgress",
    "CancelRequest",
    "ExistingPayout",
    "FileFormat",
    "GroupQuote",
    "InFlight",
    "LineOutcome",
    "LineProblem",
    "OutcomeBatch",
    "PauseRequest",
    "Preflight",
    "PreflightChecks",
    "PreparedCampaign",
    "ProviderRun",
    "ProviderTotals",
    "QuoteGroup",
    "ReadLines",
    "ReportRow",
    "RetryRequest",
    "StatusCount",
    "window_for_rate",
]

CampaignInput.model_rebuild()
