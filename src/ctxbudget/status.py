"""Status: the one picture of a window that every surface renders.

``build_status`` is a pure function from a few numbers (used tokens, local counts by
dimension, the policy) to a ``Status``. The CLI, the status line, hooks and the API
all print or serve this same value, so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .level import Level
from .policy import Policy

TYPE_CHECKING = False  # typing costs milliseconds at import: the status line imports this
if TYPE_CHECKING:
    from typing import Any

    from .model import AgentUsage

# Recommended actions by level (shown with the warnings).
RECOMMENDATIONS = {
    Level.NORMAL: "No action needed.",
    Level.WARNING: (
        'Consider compacting soon: preview with "ctxbudget compact --dry-run"; '
        "auto-compaction starts at the critical threshold."
    ),
    Level.CRITICAL: (
        'Compact now: run "ctxbudget compact" (preview with --dry-run), or finish the '
        "current task and start a fresh session."
    ),
    Level.BLOCKED: (
        'New sub-agents are blocked. Compact now with "ctxbudget compact", or raise '
        "the window with --window if the model allows more."
    ),
}


@dataclass(slots=True)
class Breakdown:
    """Where the tokens of the window are, by dimension.

    Local counts are scaled by the session's learned per-token correction so they are
    in the provider's units; ``unattributed`` is what the provider reported beyond
    what the transcript shows (system prompt, tool definitions, framing).
    """

    component: dict[str, int] = field(default_factory=dict)
    kind: dict[str, int] = field(default_factory=dict)
    tool: dict[str, int] = field(default_factory=dict)
    agent: dict[str, int] = field(default_factory=dict)
    unattributed: int = 0
    subagents: list[AgentUsage] = field(default_factory=list)
    # Of ``unattributed``, what the request's recorded shape measures: "system prompt"
    # and "tool NAME" (Claude Code 2.x transcripts); the rest is unmeasured.
    overhead: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": dict(self.component),
            "kind": dict(self.kind),
            "tool": dict(self.tool),
            "agent": dict(self.agent),
            "unattributed": self.unattributed,
            "overhead": dict(self.overhead),
            "subagents": [a.to_dict() for a in self.subagents],
        }


@dataclass(slots=True)
class Status:
    used_tokens: int
    max_tokens: int
    percent: float
    remaining_tokens: int
    level: Level
    recommendation: str
    estimated_exchanges_left: int | None
    breakdown: Breakdown
    anchored: bool
    reported_tokens: int | None
    estimated_since_report: int
    counter: str
    model: str | None = None
    session_id: str | None = None
    unknown_records: int = 0
    items: int = 0
    eta_seconds: float | None = None
    # The provider's overhead (``breakdown.unattributed``) is an estimate from earlier
    # usage: no usage has measured this context yet (right after a compaction).
    overhead_estimated: bool = False
    # The typical exchange the estimates above divide by (None: too little history).
    tokens_per_exchange: int | None = None
    seconds_per_exchange: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "model": self.model,
            "used_tokens": self.used_tokens,
            "max_tokens": self.max_tokens,
            "percent": round(self.percent, 2),
            "remaining_tokens": self.remaining_tokens,
            "level": self.level.value,
            "recommendation": self.recommendation,
            "estimated_exchanges_left": self.estimated_exchanges_left,
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds),
            "tokens_per_exchange": self.tokens_per_exchange,
            "seconds_per_exchange": (
                None if self.seconds_per_exchange is None else round(self.seconds_per_exchange, 1)
            ),
            "overhead_tokens": self.breakdown.unattributed,
            "overhead_estimated": self.overhead_estimated,
            "anchored_on_usage": self.anchored,
            "reported_tokens": self.reported_tokens,
            "estimated_since_report": self.estimated_since_report,
            "counter": self.counter,
            "items": self.items,
            "unknown_records": self.unknown_records,
            "breakdown": self.breakdown.to_dict(),
        }


def build_status(
    *,
    used_tokens: int,
    policy: Policy,
    breakdown: Breakdown,
    anchored: bool,
    reported_tokens: int | None,
    estimated_since_report: int,
    counter: str,
    recent_exchanges: Sequence[int] = (),
    exchange_gaps: Sequence[float] = (),
    model: str | None = None,
    session_id: str | None = None,
    unknown_records: int = 0,
    items: int = 0,
    overhead_estimated: bool = False,
) -> Status:
    """The Status of a window holding ``used_tokens``.

    ``recent_exchanges`` are the sizes of the latest exchanges (provider tokens) and
    ``exchange_gaps`` the seconds between their starts: exchanges left and ETA come
    from them (``ctxbudget.budget.prediction.live_estimate``); none given, both are
    unknown.
    """
    percent = 100.0 * used_tokens / policy.window
    level = policy.level_for(percent)
    remaining = max(0, policy.window - policy.reserved_output - policy.safety_margin - used_tokens)
    if remaining == 0:
        level = Level.BLOCKED  # no room left once the reserves are kept free
    exchanges = eta = per_exchange = seconds = None
    if recent_exchanges:
        # imported only here: the status line, which has no exchanges, never loads it
        from .budget.prediction import live_estimate

        estimate = live_estimate(remaining, recent_exchanges, exchange_gaps)
        exchanges, eta = estimate.exchanges_left, estimate.eta_seconds
        per_exchange, seconds = estimate.tokens_per_exchange, estimate.seconds_per_exchange
    return Status(
        eta_seconds=eta,
        used_tokens=used_tokens,
        max_tokens=policy.window,
        percent=percent,
        remaining_tokens=remaining,
        level=level,
        recommendation=RECOMMENDATIONS[level],
        estimated_exchanges_left=exchanges,
        breakdown=breakdown,
        anchored=anchored,
        reported_tokens=reported_tokens,
        estimated_since_report=estimated_since_report,
        counter=counter,
        model=model,
        session_id=session_id,
        unknown_records=unknown_records,
        items=items,
        overhead_estimated=overhead_estimated,
        tokens_per_exchange=per_exchange,
        seconds_per_exchange=seconds,
    )
